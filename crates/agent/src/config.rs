//! The agent's TOML configuration: parsed strictly (unknown keys are errors that name the
//! key and line) and validated before anything starts.

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The toml crate's message names the line, column and key.
    #[error("invalid config {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid config {path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// The whole file. Every section and key is optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub agent: AgentSection,
    /// `[detect]`: which parameter preset the detection loop uses, and overrides.
    #[serde(default)]
    pub detect: DetectSection,
    /// `[[target]]` rules, tried in order before the automatic grouping.
    #[serde(default, rename = "target")]
    pub targets: Vec<TargetRule>,
    /// `[alerts]`: channels, routes, silences, heartbeat (docs/alerts.md). Without channels,
    /// alerting is off.
    #[serde(default)]
    pub alerts: leakwatch_alert::AlertConfig,
    /// `[evidence]`: what is captured when a finding first appears (docs/evidence.md).
    #[serde(default)]
    pub evidence: EvidenceSection,
}

/// `[evidence]`: incident folders in the data dir.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvidenceSection {
    /// Capture evidence at all (default true).
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Incident folders kept; the oldest are deleted beyond this.
    #[serde(default = "default_max_incidents")]
    pub max_incidents: usize,
    /// Longest any one capture step (a command, a URL) may take.
    #[serde(default = "default_capture_timeout", with = "humantime_serde_compat")]
    pub timeout: Duration,
    /// Bytes kept of any one capture step's output.
    #[serde(default = "default_max_output")]
    pub max_output_bytes: usize,
    /// A finding absent this long closes its incident; when it comes back, that is a new
    /// incident with new evidence.
    #[serde(default = "default_reopen_after", with = "humantime_serde_compat")]
    pub reopen_after: Duration,
    /// Time between the two snapshots of a leaking process's memory (smaps, and a JVM's
    /// class histogram) whose difference `heap-growth.txt` ranks; `"0s"` turns that step
    /// off. At most 10 minutes: the evidence stage waits it out.
    #[serde(default = "default_heap_interval", with = "humantime_serde_compat")]
    pub heap_interval: Duration,
    /// Length of the JFR recording of thread starts taken in a JVM whose threads leak
    /// (`creation.txt`: where the new threads are started from); `"0s"` turns it off. At
    /// most 10 minutes: the evidence stage waits it out.
    #[serde(default = "default_creation_window", with = "humantime_serde_compat")]
    pub creation_window: Duration,
    /// Trace, with eBPF, where native code (C, C++, Rust, Go) creates the threads,
    /// processes, fds or sockets that leak, for `creation_window` (at most 100,000
    /// creations), into `creation.txt`. Off by default: while it runs, every system call on
    /// the host passes a check in the kernel. Needs root (or CAP_BPF, CAP_PERFMON and
    /// CAP_SYS_PTRACE). `leakwatch why` traces regardless of this setting.
    #[serde(default)]
    pub creation_sites: bool,
}

impl Default for EvidenceSection {
    fn default() -> Self {
        EvidenceSection {
            enabled: true,
            max_incidents: default_max_incidents(),
            timeout: default_capture_timeout(),
            max_output_bytes: default_max_output(),
            reopen_after: default_reopen_after(),
            heap_interval: default_heap_interval(),
            creation_window: default_creation_window(),
            creation_sites: false,
        }
    }
}

impl EvidenceSection {
    /// How long a heap dump (on request) may take: four capture timeouts, since it walks
    /// the whole heap.
    pub fn heap_dump_timeout(&self) -> Duration {
        self.timeout.saturating_mul(4)
    }
}

fn default_true() -> bool {
    true
}
fn default_max_incidents() -> usize {
    100
}
fn default_capture_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_max_output() -> usize {
    16 * 1024 * 1024
}
fn default_creation_window() -> Duration {
    Duration::from_secs(30)
}
fn default_heap_interval() -> Duration {
    Duration::from_secs(60)
}
/// The longest `evidence.heap_interval`.
pub const MAX_HEAP_INTERVAL: Duration = Duration::from_secs(600);
fn default_reopen_after() -> Duration {
    Duration::from_secs(3600)
}

/// `[target.mitigation]`: restart a target whose leak is about to exhaust its limit.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mitigation {
    /// The program and its arguments (no shell); `{pid}` and `{target}` are replaced.
    pub restart_command: Vec<String>,
    /// Run when a leak's conservative forecast reaches the limit sooner than this.
    #[serde(with = "humantime_serde_compat")]
    pub when_eta_below: Duration,
    /// At most this many runs per target in any 24 hours.
    #[serde(default = "default_max_per_day")]
    pub max_per_day: u32,
    #[serde(
        default = "default_mitigation_timeout",
        with = "humantime_serde_compat"
    )]
    pub timeout: Duration,
}

fn default_max_per_day() -> u32 {
    1
}
fn default_mitigation_timeout() -> Duration {
    Duration::from_secs(60)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentSection {
    /// Sampling interval, e.g. "10s" or "1s".
    #[serde(default = "default_interval", with = "humantime_serde_compat")]
    pub interval: Duration,
    /// Where the history database lives.
    pub data_dir: Option<PathBuf>,
    /// HTTP listen address.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Required to listen beyond loopback: the bearer token every request must carry.
    pub token: Option<String>,
    /// Most thread-name groups kept per target; the rest are folded into "other".
    #[serde(default = "default_max_groups")]
    pub max_thread_groups: usize,
    /// Most (state, peer) socket rows kept per target; the rest are folded into "other".
    #[serde(default = "default_max_peers")]
    pub max_socket_peers: usize,
    /// Most file path groups (`fds{/tmp/upload-#.tmp}`) kept per target; the rest are
    /// folded into "other files". 0 reads no paths.
    #[serde(default = "default_max_fd_paths")]
    pub max_fd_paths: usize,
    /// Samples waiting for the store before new ones are dropped (and counted).
    #[serde(default = "default_queue")]
    pub queue: usize,
    /// Host names (beyond loopback names and addresses) the HTTP API answers to when it
    /// listens on loopback without a token: a browser's request for any other `Host` is
    /// refused (DNS rebinding).
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    /// Most HTTP connections open at once; more are closed at accept. Also kept below
    /// `RLIMIT_NOFILE` minus the fds the sampler and the store need.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// A client must send a request's headers within this time, or its connection closes.
    #[serde(default = "default_header_timeout", with = "humantime_serde_compat")]
    pub http_header_timeout: Duration,
    /// A request must be answered (its body read included) within this time, else 503.
    #[serde(default = "default_request_timeout", with = "humantime_serde_compat")]
    pub http_request_timeout: Duration,
    /// A stage (sampler, writer, detector, alerts, evidence, gauges) that has not gone
    /// around its loop for this long is reported stalled (`/healthz` answers 503). Default
    /// ten intervals and at least a minute; the alert and evidence stages get their
    /// slowest step (a delivery, a capture command) on top.
    #[serde(default, with = "humantime_serde_compat::option")]
    pub stall_after: Option<Duration>,
}

impl Default for AgentSection {
    fn default() -> Self {
        AgentSection {
            interval: default_interval(),
            data_dir: None,
            listen: default_listen(),
            token: None,
            max_thread_groups: default_max_groups(),
            max_socket_peers: default_max_peers(),
            max_fd_paths: default_max_fd_paths(),
            queue: default_queue(),
            allowed_hosts: Vec::new(),
            max_connections: default_max_connections(),
            http_header_timeout: default_header_timeout(),
            http_request_timeout: default_request_timeout(),
            stall_after: None,
        }
    }
}

fn default_interval() -> Duration {
    Duration::from_secs(10)
}
fn default_listen() -> SocketAddr {
    "127.0.0.1:9464".parse().expect("valid literal")
}
fn default_max_groups() -> usize {
    20
}
fn default_max_peers() -> usize {
    20
}
fn default_max_fd_paths() -> usize {
    20
}
/// Most groups, peers or paths any `agent.max_*` keeps per target: each is a series stored
/// at every pass.
pub const MAX_GROUPS_PER_TARGET: usize = 1000;
fn default_queue() -> usize {
    16
}
fn default_max_connections() -> usize {
    128
}
fn default_header_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_request_timeout() -> Duration {
    Duration::from_secs(30)
}

/// Parameter presets of the leak engine.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    /// `Params::for_interval(interval)`: an hour of evidence, a day's season.
    #[default]
    Production,
    /// `Params::fast(interval)`: about 20 samples of evidence, no season; for live tests
    /// and demos of minutes (see docs/detection.md).
    Fast,
}

/// `[detect]`: the preset and the few overrides worth having without recompiling.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectSection {
    #[serde(default)]
    pub preset: Preset,
    /// How often detection runs. Default: every 6 intervals, at least 5 s (production);
    /// every 2 intervals (fast), so a verdict is not held back by the loop.
    #[serde(default, with = "humantime_serde_compat::option")]
    pub every: Option<Duration>,
    pub min_regime_samples: Option<usize>,
    pub warmup_samples: Option<usize>,
    pub season_samples: Option<usize>,
    pub trend_p_value: Option<f64>,
}

impl DetectSection {
    /// The engine parameters for samples taken every `interval`.
    pub fn params(&self, interval: Duration) -> leakwatch_detect::Params {
        let seconds = interval.as_secs_f64();
        let mut params = match self.preset {
            Preset::Production => leakwatch_detect::Params::for_interval(seconds),
            Preset::Fast => leakwatch_detect::Params::fast(seconds),
        };
        if let Some(samples) = self.min_regime_samples {
            params.min_regime_samples = samples;
        }
        if let Some(samples) = self.warmup_samples {
            params.warmup_samples = samples;
        }
        if let Some(samples) = self.season_samples {
            params.season_samples = samples;
        }
        if let Some(p_value) = self.trend_p_value {
            params.trend_p_value = p_value;
        }
        params
    }

    /// How often the detection loop runs.
    pub fn every(&self, interval: Duration) -> Duration {
        self.every.unwrap_or(match self.preset {
            Preset::Production => (interval * 6).max(Duration::from_secs(5)),
            Preset::Fast => interval * 2,
        })
    }
}

/// A configured target: the processes matching it are one service across restarts.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetRule {
    pub name: String,
    /// Regex on the process name (comm).
    pub comm: Option<String>,
    /// Regex on the command line (arguments joined by spaces).
    pub cmdline: Option<String>,
    /// Only processes of this uid.
    pub uid: Option<u32>,
    /// A Prometheus text endpoint of the service, scraped every interval for `gauges`.
    pub metrics_url: Option<String>,
    /// Gauges to follow from `metrics_url`, e.g. `["go_goroutines",
    /// 'jvm_memory_used_after_last_gc_bytes{area="heap"}']` (samples with those labels are
    /// summed); stored as `gauge{SELECTOR}` series of the target. Empty with a
    /// `metrics_url`: the well-known gauges the endpoint has (`gauges::DEFAULT_GAUGES`).
    #[serde(default)]
    pub gauges: Vec<String>,
    /// A Go service's pprof address (`http://127.0.0.1:6060`): evidence includes
    /// `/debug/pprof/goroutine?debug=2`.
    pub pprof_url: Option<String>,
    /// Extra evidence commands, each a program and its arguments (no shell); `{pid}` and
    /// `{dir}` (the incident folder) are replaced. E.g.
    /// `[["jcmd", "{pid}", "GC.class_histogram"]]`.
    #[serde(default)]
    pub capture: Vec<Vec<String>>,
    /// Optional restart when a leak is about to exhaust a limit (off unless set).
    pub mitigation: Option<Mitigation>,
    /// Capacities of the service's own resources (`[[target.limit]]`): detection forecasts
    /// against the tighter of each and the host's limit, and names it.
    #[serde(default)]
    pub limit: Vec<LimitRule>,
}

/// `[[target.limit]]`: `series = "tcp{CLOSE_WAIT}"` (or a list sharing the capacity; `*`
/// matches any run of characters: `"tcp_peer{* *:8443}"`), `capacity = 1024`, and
/// optionally `name = "pool"` (how summaries call it: `limit 1,024 (pool, declared)`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitRule {
    pub series: OneOrMany,
    pub capacity: f64,
    pub name: Option<String>,
}

/// A string or a list of strings.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            OneOrMany::One(one) => vec![one.clone()],
            OneOrMany::Many(many) => many.clone(),
        }
    }
}

impl Config {
    /// The heartbeat bound of the ordinary stages (`agent.stall_after`, else ten intervals
    /// and at least a minute).
    pub fn stall_after(&self) -> Duration {
        self.agent
            .stall_after
            .unwrap_or_else(|| crate::health::default_stall_after(self.agent.interval))
    }

    /// The heartbeat bound of the evidence stage: one capture step or restart command may
    /// legitimately run up to its timeout between two beats.
    pub fn evidence_stall_after(&self) -> Duration {
        let slowest = self
            .targets
            .iter()
            .filter_map(|t| t.mitigation.as_ref().map(|m| m.timeout))
            // A heap dump (on request) may take several capture timeouts.
            .chain([self.evidence.heap_dump_timeout()])
            .max()
            .unwrap_or_default();
        self.stall_after() + slowest
    }

    /// The heartbeat bound of the alert stage: one delivery may wait up to its channel's
    /// timeout between two beats.
    pub fn alerts_stall_after(&self) -> Duration {
        self.stall_after() + self.alerts.slowest_step()
    }

    /// The capacities declared by `[[target.limit]]`, by target (checked by `validate`).
    pub fn capacities(&self) -> crate::capacity::Capacities {
        let mut capacities = crate::capacity::Capacities::default();
        for rule in &self.targets {
            for limit in &rule.limit {
                capacities.declare(
                    &rule.name,
                    limit.series.to_vec(),
                    limit.capacity,
                    limit.name.clone(),
                );
            }
        }
        capacities
    }

    /// The gauge sources of the configured targets (those with a `metrics_url`). Selectors
    /// that do not parse were refused by `validate`; here they are skipped.
    pub fn gauge_sources(&self) -> Vec<crate::gauges::GaugeSource> {
        self.targets
            .iter()
            .filter_map(|rule| {
                rule.metrics_url
                    .as_ref()
                    .map(|url| crate::gauges::GaugeSource {
                        target: rule.name.clone(),
                        url: url.clone(),
                        gauges: rule
                            .gauges
                            .iter()
                            .filter_map(|g| crate::gauges::Selector::parse(g).ok())
                            .collect(),
                    })
            })
            .collect()
    }

    pub fn load(path: &std::path::Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse(&text, path)
    }

    pub fn parse(text: &str, path: &std::path::Path) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|error| ConfigError::Parse {
            path: path.to_path_buf(),
            message: error.to_string().trim_end().to_string(),
        })?;
        config.validate(path)?;
        Ok(config)
    }

    pub fn validate(&self, path: &std::path::Path) -> Result<(), ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        self.check_agent().map_err(invalid)?;
        self.check_detect().map_err(invalid)?;
        let mut names = std::collections::HashSet::new();
        for (i, rule) in self.targets.iter().enumerate() {
            if !names.insert(&rule.name) {
                return Err(invalid(format!("target {:?} is defined twice", rule.name)));
            }
            self.check_target(i, rule).map_err(invalid)?;
        }
        if !self.alerts.channels.is_empty() {
            self.alerts
                .validate()
                .map_err(|error| invalid(format!("[alerts]: {error}")))?;
        }
        Ok(())
    }

    /// `[agent]` and `[evidence]`: interval, token, HTTP limits, queue, incidents.
    fn check_agent(&self) -> Result<(), String> {
        // Problems are messages here; `validate` names the file.
        let invalid = |message: String| message;
        if self.agent.interval > Duration::from_secs(3600) {
            return Err(invalid(format!(
                "agent.interval must be at most 1h, got {:?}",
                self.agent.interval
            )));
        }
        if self.agent.interval < Duration::from_secs(1) {
            return Err(invalid(format!(
                "agent.interval must be at least 1s, got {:?}",
                self.agent.interval
            )));
        }
        if self
            .agent
            .token
            .as_deref()
            .is_some_and(|token| token.trim().is_empty())
        {
            return Err(invalid(
                "agent.token is empty: give a token (every request must then carry it), or none"
                    .into(),
            ));
        }
        if self
            .agent
            .token
            .as_ref()
            .is_some_and(|token| token.len() > 4096)
        {
            return Err(invalid("agent.token is longer than 4096 bytes".into()));
        }
        if !(1..=65_536).contains(&self.agent.max_connections) {
            return Err(invalid(format!(
                "agent.max_connections must be between 1 and 65536, got {}",
                self.agent.max_connections
            )));
        }
        for (name, value) in [
            ("agent.http_header_timeout", self.agent.http_header_timeout),
            (
                "agent.http_request_timeout",
                self.agent.http_request_timeout,
            ),
        ] {
            if value < Duration::from_millis(100) || value > Duration::from_secs(3600) {
                return Err(invalid(format!(
                    "{name} must be between 100ms and 1h, got {value:?}"
                )));
            }
        }
        if let Some(stall_after) = self.agent.stall_after {
            if stall_after < Duration::from_secs(1) {
                return Err(invalid(format!(
                    "agent.stall_after must be at least 1s, got {stall_after:?}"
                )));
            }
        }
        if let Some(host) = self
            .agent
            .allowed_hosts
            .iter()
            .find(|h| h.is_empty() || h.len() > 253 || h.contains(['/', ' ', ':']))
        {
            return Err(invalid(format!(
                "agent.allowed_hosts: {host:?} is not a host name (no port, no scheme)"
            )));
        }
        if !self.agent.listen.ip().is_loopback() && self.agent.token.is_none() {
            return Err(invalid(format!(
                "agent.listen = {} is not loopback: set agent.token so requests need a bearer token",
                self.agent.listen
            )));
        }
        if self.evidence.max_incidents == 0 {
            return Err(invalid(
                "evidence.max_incidents must be at least 1 (set evidence.enabled = false to turn capture off)".into(),
            ));
        }
        if self.evidence.heap_interval > MAX_HEAP_INTERVAL {
            return Err(invalid(format!(
                "evidence.heap_interval must be at most 10m (the evidence stage waits it out), got {}",
                humantime::format_duration(self.evidence.heap_interval)
            )));
        }
        if self.evidence.creation_window > MAX_HEAP_INTERVAL {
            return Err(invalid(format!(
                "evidence.creation_window must be at most 10m (the evidence stage waits it out), got {}",
                humantime::format_duration(self.evidence.creation_window)
            )));
        }
        if self.agent.queue == 0 {
            return Err(invalid("agent.queue must be at least 1".into()));
        }
        for (name, value) in [
            ("agent.max_thread_groups", self.agent.max_thread_groups),
            ("agent.max_socket_peers", self.agent.max_socket_peers),
            ("agent.max_fd_paths", self.agent.max_fd_paths),
        ] {
            if value > MAX_GROUPS_PER_TARGET {
                return Err(invalid(format!(
                    "{name} must be at most {MAX_GROUPS_PER_TARGET}, got {value}"
                )));
            }
        }
        Ok(())
    }

    /// `[detect]`: the engine's overrides within their ranges.
    fn check_detect(&self) -> Result<(), String> {
        // Problems are messages here; `validate` names the file.
        let invalid = |message: String| message;
        let detect = &self.detect;
        if detect
            .every
            .is_some_and(|every| every < Duration::from_secs(1))
        {
            return Err(invalid("detect.every must be at least 1s".into()));
        }
        if detect.min_regime_samples.is_some_and(|n| n < 8) {
            return Err(invalid(
                "detect.min_regime_samples must be at least 8: fewer samples cannot make a trend significant".into(),
            ));
        }
        if detect.season_samples == Some(0) {
            return Err(invalid("detect.season_samples must be at least 1".into()));
        }
        if let Some(p_value) = detect.trend_p_value {
            if !(p_value > 0.0 && p_value < 0.5) {
                return Err(invalid(format!(
                    "detect.trend_p_value must be between 0 and 0.5, got {p_value}"
                )));
            }
        }
        Ok(())
    }

    /// One `[[target]]` rule: a name, something to match, consistent gauges, non-empty
    /// commands, a mitigation that can be announced, regexes that compile.
    fn check_target(&self, i: usize, rule: &TargetRule) -> Result<(), String> {
        // Problems are messages here; `validate` names the file.
        let invalid = |message: String| message;
        if rule.name.trim().is_empty() {
            return Err(invalid(format!("target #{}: name is empty", i + 1)));
        }
        if rule.comm.is_none() && rule.cmdline.is_none() && rule.uid.is_none() {
            return Err(invalid(format!(
                "target {:?} matches everything: give comm, cmdline or uid",
                rule.name
            )));
        }
        match (&rule.metrics_url, rule.gauges.is_empty()) {
            // Endpoints of local processes: plain HTTP (TLS arrives with the alert channels).
            (Some(url), _) if !url.starts_with("http://") => {
                return Err(invalid(format!(
                    "target {:?}: metrics_url {url:?} must start with http:// (https is not supported yet)",
                    rule.name
                )));
            }
            (None, false) => {
                return Err(invalid(format!(
                    "target {:?}: gauges need a metrics_url to scrape",
                    rule.name
                )));
            }
            _ => {}
        }
        crate::gauges::selectors(&rule.gauges)
            .map_err(|why| invalid(format!("target {:?}: {why}", rule.name)))?;
        if let Some(url) = &rule.pprof_url {
            if !url.starts_with("http://") {
                return Err(invalid(format!(
                    "target {:?}: pprof_url {url:?} must start with http://",
                    rule.name
                )));
            }
        }
        if rule.limit.len() > crate::capacity::MAX_LIMITS_PER_TARGET {
            return Err(invalid(format!(
                "target {:?}: at most {} [[target.limit]] entries",
                rule.name,
                crate::capacity::MAX_LIMITS_PER_TARGET
            )));
        }
        for (i, limit) in rule.limit.iter().enumerate() {
            crate::capacity::check(
                &limit.series.to_vec(),
                limit.capacity,
                limit.name.as_deref(),
            )
            .map_err(|why| invalid(format!("target {:?}: limit[{i}]: {why}", rule.name)))?;
        }
        for (i, command) in rule.capture.iter().enumerate() {
            if command.first().is_none_or(|p| p.trim().is_empty()) {
                return Err(invalid(format!(
                    "target {:?}: capture[{i}] is empty: give a program and its arguments",
                    rule.name
                )));
            }
        }
        if let Some(m) = &rule.mitigation {
            if m.restart_command
                .first()
                .is_none_or(|p| p.trim().is_empty())
            {
                return Err(invalid(format!(
                    "target {:?}: mitigation.restart_command is empty",
                    rule.name
                )));
            }
            if m.max_per_day == 0 {
                return Err(invalid(format!(
                    "target {:?}: mitigation.max_per_day must be at least 1 (remove [target.mitigation] to turn it off)",
                    rule.name
                )));
            }
            if self.alerts.channels.is_empty() {
                return Err(invalid(format!(
                    "target {:?}: mitigation needs [alerts] channels: every restart is announced",
                    rule.name
                )));
            }
            if !self.evidence.enabled {
                return Err(invalid(format!(
                    "target {:?}: mitigation needs [evidence] enabled: evidence is captured before any restart",
                    rule.name
                )));
            }
        }
        for (key, pattern) in [("comm", &rule.comm), ("cmdline", &rule.cmdline)] {
            if let Some(pattern) = pattern {
                regex::Regex::new(pattern)
                    .map_err(|error| invalid(format!("target {:?}: {key}: {error}", rule.name)))?;
            }
        }
        Ok(())
    }
}

/// Durations written as "10s", "1m30s" (humantime), for serde.
mod humantime_serde_compat {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    /// The longest duration any setting takes: longer ones are mistakes (`"100000000000y"`
    /// once passed `config check` and then panicked the detection thread).
    pub const MAX: Duration = Duration::from_secs(366 * 86_400);

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        let duration = humantime::parse_duration(&text)
            .map_err(|e| serde::de::Error::custom(format!("{text:?} is not a duration: {e}")))?;
        if duration > MAX {
            return Err(serde::de::Error::custom(format!(
                "{text:?} is longer than 366 days, the longest duration a setting takes"
            )));
        }
        Ok(duration)
    }

    /// The same for an optional key.
    pub mod option {
        use serde::Deserializer;
        use std::time::Duration;

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
            super::deserialize(d).map(Some)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn empty_file_is_all_defaults() {
        let config = Config::parse("", Path::new("x.toml")).unwrap();
        assert_eq!(config.agent.interval, Duration::from_secs(10));
        assert_eq!(config.agent.listen.to_string(), "127.0.0.1:9464");
    }

    #[test]
    fn full_file() {
        let config = Config::parse(
            r#"
[agent]
interval = "2s"
listen = "127.0.0.1:9999"

[[target]]
name = "analytics"
cmdline = "Analytics"
"#,
            Path::new("x.toml"),
        )
        .unwrap();
        assert_eq!(config.agent.interval, Duration::from_secs(2));
        assert_eq!(config.targets[0].name, "analytics");
    }

    #[test]
    fn unknown_key_names_key_and_line() {
        let error = Config::parse(
            "[agent]\ninterval = \"2s\"\nintervall = \"3s\"\n",
            Path::new("a.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("intervall"), "{error}");
        assert!(error.contains("line 3"), "{error}");
    }

    #[test]
    fn detect_section_picks_the_preset_and_overrides() {
        let config = Config::parse("", Path::new("x.toml")).unwrap();
        assert_eq!(config.detect.preset, Preset::Production);
        let second = Duration::from_secs(1);
        assert_eq!(config.detect.params(second).min_regime_samples, 3600);
        assert_eq!(config.detect.every(second), Duration::from_secs(6));

        let config = Config::parse(
            "[agent]\ninterval = \"1s\"\n[detect]\npreset = \"fast\"\nseason_samples = 90\n",
            Path::new("x.toml"),
        )
        .unwrap();
        let params = config.detect.params(second);
        assert_eq!(params.min_regime_samples, 20);
        assert_eq!(params.season_samples, 90);
        assert_eq!(config.detect.every(second), Duration::from_secs(2));

        let config = Config::parse(
            "[detect]\nevery = \"3s\"\nmin_regime_samples = 40\n",
            Path::new("x.toml"),
        )
        .unwrap();
        assert_eq!(config.detect.every(second), Duration::from_secs(3));
        assert_eq!(config.detect.params(second).min_regime_samples, 40);
    }

    #[test]
    fn bad_values_are_explained() {
        let cases = [
            ("[agent]\ninterval = \"soon\"\n", "not a duration"),
            ("[agent]\ninterval = \"100ms\"\n", "at least 1s"),
            // Regression (issue 16): passed `config check`, then panicked detection.
            ("[agent]\ninterval = \"100000000000y\"\n", "longer than 366 days"),
            ("[agent]\ninterval = \"2h\"\n", "at most 1h"),
            ("[evidence]\nreopen_after = \"400days\"\n", "longer than 366 days"),
            ("[evidence]\nheap_interval = \"1h\"\n", "heap_interval must be at most 10m"),
            ("[agent]\nlisten = \"0.0.0.0:9464\"\n", "bearer token"),
            // Regression (issue 16): an empty token was accepted, then every request was 401.
            ("[agent]\ntoken = \"\"\n", "agent.token is empty"),
            ("[agent]\ntoken = \"  \"\n", "agent.token is empty"),
            ("[agent]\nmax_connections = 0\n", "between 1 and 65536"),
            ("[agent]\nmax_fd_paths = 5000\n", "agent.max_fd_paths must be at most 1000"),
            ("[agent]\nmax_thread_groups = 1001\n", "at most 1000"),
            ("[agent]\nhttp_header_timeout = \"1ms\"\n", "between 100ms and 1h"),
            ("[agent]\nhttp_request_timeout = \"2h\"\n", "between 100ms and 1h"),
            ("[agent]\nallowed_hosts = [\"evil.example:80\"]\n", "not a host name"),
            ("[[target]]\nname = \"x\"\n", "matches everything"),
            (
                "[[target]]\nname = \"x\"\ncomm = \"a\"\nmetrics_url = \"localhost:6060\"\ngauges = [\"g\"]\n",
                "must start with http://",
            ),
            (
                "[[target]]\nname = \"x\"\ncomm = \"a\"\nmetrics_url = \"http://127.0.0.1:6060/metrics\"\ngauges = [\"a{b=c}\"]\n",
                "bad label set",
            ),
            (
                "[[target]]\nname = \"x\"\ncomm = \"a\"\n[[target.limit]]\nseries = \"tcp{CLOSE_WAIT}\"\ncapacity = 0\n",
                "limit[0]: capacity 0 must be",
            ),
            (
                "[[target]]\nname = \"x\"\ncomm = \"a\"\n[[target.limit]]\nseries = [\"sockts{x}\"]\ncapacity = 5\n",
                "unknown resource",
            ),
            (
                "[[target]]\nname = \"x\"\ncomm = \"a\"\n[[target.limit]]\nseries = \"tcp\"\ncapacity = 5\nsize = 3\n",
                "unknown field",
            ),
            ("[[target]]\nname = \"x\"\ncomm = \"a\"\ngauges = [\"g\"]\n", "need a metrics_url"),
            ("[detect]\npreset = \"quick\"\n", "unknown variant"),
            ("[detect]\nprest = \"fast\"\n", "prest"),
            ("[detect]\nmin_regime_samples = 3\n", "at least 8"),
            ("[detect]\ntrend_p_value = 0.9\n", "between 0 and 0.5"),
            ("[detect]\nevery = \"10ms\"\n", "at least 1s"),
            (
                "[[target]]\nname = \"x\"\ncomm = \"(\"\n",
                "target \"x\": comm",
            ),
            (
                "[[target]]\nname = \"x\"\ncomm = \"a\"\n[[target]]\nname = \"x\"\ncomm = \"b\"\n",
                "defined twice",
            ),
            (
                "[[target]]\nname = \"x\"\ncomm = \"a\"\ncapture = [[]]\n",
                "capture[0] is empty",
            ),
            (
                "[[target]]\nname = \"x\"\ncomm = \"a\"\npprof_url = \"127.0.0.1:6060\"\n",
                "pprof_url",
            ),
            (
                "[[target]]\nname = \"x\"\ncomm = \"a\"\n[target.mitigation]\nrestart_command = [\"true\"]\nwhen_eta_below = \"2h\"\n",
                "mitigation needs [alerts] channels",
            ),
            (
                "[[target]]\nname = \"x\"\ncomm = \"a\"\n[target.mitigation]\nrestart_command = [\"true\"]\n",
                "when_eta_below",
            ),
            ("[evidence]\nmax_incidents = 0\n", "max_incidents"),
        ];
        for (text, expected) in cases {
            let error = Config::parse(text, Path::new("a.toml"))
                .unwrap_err()
                .to_string();
            assert!(error.contains(expected), "{text:?}: {error}");
        }
    }
}
