//! Alert configuration: serde structs ready for a `[alert]` TOML table, strict about unknown
//! keys, and [`AlertConfig::validate`], which reports every problem with its key.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A duration written the human way in configuration: `"30s"`, `"5m"`, `"24h"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Dur(pub Duration);

impl Dur {
    pub const fn secs(s: u64) -> Dur {
        Dur(Duration::from_secs(s))
    }
    pub const fn millis(ms: u64) -> Dur {
        Dur(Duration::from_millis(ms))
    }
    pub fn as_ms(self) -> u64 {
        self.0.as_millis() as u64
    }
}

impl Serialize for Dur {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(self.0).to_string())
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text)
            .map(Dur)
            .map_err(|e| serde::de::Error::custom(format!("bad duration {text:?}: {e}")))
    }
}

/// A point in time written as RFC 3339 (`"2026-05-01T12:00:00Z"`), kept as milliseconds
/// since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp(pub u64);

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::time::rfc3339_ms(self.0))
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let time = humantime::parse_rfc3339_weak(&text).map_err(|e| {
            serde::de::Error::custom(format!("bad time {text:?} (want RFC 3339): {e}"))
        })?;
        let ms = time
            .duration_since(UNIX_EPOCH)
            .map_err(|_| serde::de::Error::custom(format!("time {text:?} is before 1970")))?
            .as_millis() as u64;
        Ok(Timestamp(ms))
    }
}

/// Everything about alerting. Every key has a default; with no channels, alerting is off.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertConfig {
    /// How long a finding must persist before its alert fires (0: at once; the detector
    /// already demands evidence).
    pub pending_for: Dur,
    /// How long a firing alert's finding must be absent before the alert resolves; stops a
    /// flapping finding from paging twice.
    pub resolve_after: Dur,
    /// Re-notify a still-firing alert this often (Alertmanager channels use their own
    /// `resend`).
    pub renotify: Dur,
    /// A leak is critical when its conservative forecast reaches the limit within this.
    pub critical_horizon: Dur,
    /// A saturation finding is critical at or above this fraction of the limit.
    pub saturation_critical: f64,
    pub routes: Routes,
    pub channels: BTreeMap<String, ChannelConfig>,
    pub silences: Vec<Silence>,
    pub delivery: DeliveryConfig,
    pub heartbeat: Option<HeartbeatConfig>,
}

impl Default for AlertConfig {
    fn default() -> Self {
        AlertConfig {
            pending_for: Dur::secs(0),
            resolve_after: Dur::secs(10 * 60),
            renotify: Dur::secs(4 * 3600),
            critical_horizon: Dur::secs(24 * 3600),
            saturation_critical: 0.9,
            routes: Routes::default(),
            channels: BTreeMap::new(),
            silences: Vec::new(),
            delivery: DeliveryConfig::default(),
            heartbeat: None,
        }
    }
}

/// Which channels hear about each severity. A critical alert goes only to `critical`'s
/// channels; list a channel in both to hear both.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Routes {
    pub warning: Vec<String>,
    pub critical: Vec<String>,
}

/// How the outbox retries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliveryConfig {
    /// First retry delay; doubles per attempt, with jitter (50-100% of the step).
    pub backoff_initial: Dur,
    pub backoff_max: Dur,
    /// A notification not delivered this long after it was written is marked expired.
    pub expire_after: Dur,
    /// A channel is failing after this many consecutive failed attempts...
    pub failing_after_failures: u32,
    /// ...spanning at least this long; then the other channels get a "channel failing" alert.
    pub failing_after: Dur,
    /// Delivered, failed and expired rows are kept this long for `leakwatch alerts`.
    pub keep: Dur,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            backoff_initial: Dur::secs(5),
            backoff_max: Dur::secs(10 * 60),
            expire_after: Dur::secs(24 * 3600),
            failing_after_failures: 5,
            failing_after: Dur::secs(10 * 60),
            keep: Dur::secs(7 * 24 * 3600),
        }
    }
}

/// One delivery channel; `type` picks the kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ChannelConfig {
    Webhook(WebhookConfig),
    Slack(SlackConfig),
    Alertmanager(AlertmanagerConfig),
    Exec(ExecConfig),
    Email(EmailConfig),
}

impl ChannelConfig {
    pub fn kind(&self) -> &'static str {
        match self {
            ChannelConfig::Webhook(_) => "webhook",
            ChannelConfig::Slack(_) => "slack",
            ChannelConfig::Alertmanager(_) => "alertmanager",
            ChannelConfig::Exec(_) => "exec",
            ChannelConfig::Email(_) => "email",
        }
    }

    /// The longest one delivery on this channel may wait on its peer (a request, a
    /// command, an SMTP exchange's step).
    pub fn timeout(&self) -> Duration {
        match self {
            ChannelConfig::Webhook(c) => c.timeout.0,
            ChannelConfig::Slack(c) => c.timeout.0,
            ChannelConfig::Alertmanager(c) => c.timeout.0,
            ChannelConfig::Exec(c) => c.timeout.0,
            ChannelConfig::Email(c) => c.timeout.0,
        }
    }
}

impl AlertConfig {
    /// The longest one step of the alert loop may block on the outside world: one
    /// delivery, or the heartbeat's ping. An SMTP exchange waits up to its timeout at
    /// each of its steps (connect, TLS, commands), so an email channel counts four times.
    pub fn slowest_step(&self) -> Duration {
        let channels = self.channels.values().map(|c| match c {
            ChannelConfig::Email(_) => c.timeout().saturating_mul(4),
            _ => c.timeout(),
        });
        let heartbeat = self.heartbeat.iter().map(|h| h.timeout.0);
        channels.chain(heartbeat).max().unwrap_or_default()
    }
}

fn default_http_timeout() -> Dur {
    Dur::secs(10)
}

/// POSTs the documented JSON payload (docs/alerts.md) to `url`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    pub url: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default = "default_http_timeout")]
    pub timeout: Dur,
    /// A PEM bundle of extra root certificates to trust (an internal CA), added to the
    /// built-in roots. Verification always stays on.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

/// POSTs `{"text": ...}` to a Slack (or Mattermost, Rocket.Chat...) incoming webhook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackConfig {
    pub url: String,
    #[serde(default = "default_http_timeout")]
    pub timeout: Dur,
    /// A PEM bundle of extra root certificates to trust (an internal CA), added to the
    /// built-in roots. Verification always stays on.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

fn default_resend() -> Dur {
    Dur::secs(60)
}

/// POSTs to `<url>/api/v2/alerts`; firing alerts are re-sent every `resend` with `endsAt` 4
/// resends ahead, so Alertmanager resolves them by itself if leakwatch goes silent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertmanagerConfig {
    /// Base URL, e.g. `http://127.0.0.1:9093`.
    pub url: String,
    #[serde(default = "default_resend")]
    pub resend: Dur,
    /// Extra labels on every alert (e.g. `cluster = "prod"`).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default = "default_http_timeout")]
    pub timeout: Dur,
    /// A PEM bundle of extra root certificates to trust (an internal CA), added to the
    /// built-in roots. Verification always stays on.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

fn default_exec_output() -> usize {
    64 * 1024
}

/// Runs `program` with `args` (no shell) and the webhook JSON on stdin; exit 0 is delivery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecConfig {
    pub program: String,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default = "default_http_timeout")]
    pub timeout: Dur,
    /// stdout and stderr beyond this many bytes each are read and discarded.
    #[serde(default = "default_exec_output")]
    pub max_output_bytes: usize,
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmtpSecurity {
    /// Plain text; only sensible on 127.0.0.1 or a trusted relay.
    None,
    /// Plain connection upgraded with STARTTLS (usually port 587); fails if not offered.
    Starttls,
    /// TLS from the first byte (usually port 465).
    Tls,
}

fn default_smtp_port() -> u16 {
    587
}

fn default_smtp_security() -> SmtpSecurity {
    SmtpSecurity::Starttls
}

/// Sends one plain-text mail per notification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    pub host: String,
    #[serde(default = "default_smtp_port")]
    pub port: u16,
    #[serde(default = "default_smtp_security")]
    pub security: SmtpSecurity,
    pub username: Option<String>,
    /// Prefer `password_env`; a password here is readable by anyone who can read the file.
    pub password: Option<String>,
    /// Name of an environment variable holding the password.
    pub password_env: Option<String>,
    pub from: String,
    pub to: Vec<String>,
    #[serde(default = "default_http_timeout")]
    pub timeout: Dur,
    /// A PEM bundle of extra root certificates to trust (an internal CA) for
    /// `starttls` and `tls`, added to the built-in roots. Verification always stays on.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

fn default_heartbeat_every() -> Dur {
    Dur::secs(60)
}

/// A dead-man's switch: something outside this host that pages when the pings stop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatConfig {
    /// healthchecks.io-style ping URL; `<url>/fail` is pinged when leakwatch is unhealthy.
    pub url: Option<String>,
    #[serde(default = "default_heartbeat_every")]
    pub every: Dur,
    #[serde(default = "default_http_timeout")]
    pub timeout: Dur,
    /// An Alertmanager channel that gets an always-firing `LeakwatchWatchdog` alert.
    pub watchdog_channel: Option<String>,
}

/// Every problem found in a configuration, one per line, each naming its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub problems: Vec<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid alert configuration: {}",
            self.problems.join("; ")
        )
    }
}

impl std::error::Error for ConfigError {}

fn check_url(problems: &mut Vec<String>, key: &str, url: &str) {
    match reqwest::Url::parse(url) {
        Ok(parsed) if matches!(parsed.scheme(), "http" | "https") && parsed.host().is_some() => {}
        Ok(parsed) => problems.push(format!(
            "{key}: {url:?} must be an http:// or https:// URL with a host (scheme is {:?})",
            parsed.scheme()
        )),
        Err(e) => problems.push(format!("{key}: {url:?} is not a URL: {e}")),
    }
}

fn check_ca_file(problems: &mut Vec<String>, key: &str, path: &Option<PathBuf>) {
    if let Some(path) = path {
        if let Err(e) = read_ca_file(path) {
            problems.push(format!("{key}: {e}"));
        }
    }
}

fn check_positive(problems: &mut Vec<String>, key: &str, d: Dur) {
    if d.0.is_zero() {
        problems.push(format!("{key}: must be more than 0"));
    }
}

impl AlertConfig {
    /// Checks what serde cannot: URLs, addresses, CA files, that every route names a defined channel,
    /// that every severity reaches at least one channel, and that durations make sense.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        for (name, channel) in &self.channels {
            let key = format!("channels.{name}");
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c))
            {
                problems.push(format!("{key}: channel names use letters, digits, - and _"));
            }
            match channel {
                ChannelConfig::Webhook(c) => {
                    check_url(&mut problems, &format!("{key}.url"), &c.url);
                    check_positive(&mut problems, &format!("{key}.timeout"), c.timeout);
                    check_ca_file(&mut problems, &format!("{key}.ca_file"), &c.ca_file);
                    for header in c.headers.keys() {
                        if reqwest::header::HeaderName::from_bytes(header.as_bytes()).is_err() {
                            problems
                                .push(format!("{key}.headers: {header:?} is not a header name"));
                        }
                    }
                }
                ChannelConfig::Slack(c) => {
                    check_url(&mut problems, &format!("{key}.url"), &c.url);
                    check_positive(&mut problems, &format!("{key}.timeout"), c.timeout);
                    check_ca_file(&mut problems, &format!("{key}.ca_file"), &c.ca_file);
                }
                ChannelConfig::Alertmanager(c) => {
                    check_url(&mut problems, &format!("{key}.url"), &c.url);
                    check_positive(&mut problems, &format!("{key}.timeout"), c.timeout);
                    check_positive(&mut problems, &format!("{key}.resend"), c.resend);
                    check_ca_file(&mut problems, &format!("{key}.ca_file"), &c.ca_file);
                    for label in c.labels.keys() {
                        let valid = label.chars().enumerate().all(|(i, ch)| {
                            ch == '_' || ch.is_ascii_alphabetic() || (i > 0 && ch.is_ascii_digit())
                        });
                        if label.is_empty() || !valid {
                            problems.push(format!(
                                "{key}.labels: {label:?} is not a Prometheus label name"
                            ));
                        }
                    }
                }
                ChannelConfig::Exec(c) => {
                    if c.program.is_empty() {
                        problems.push(format!("{key}.program: must not be empty"));
                    }
                    check_positive(&mut problems, &format!("{key}.timeout"), c.timeout);
                }
                ChannelConfig::Email(c) => {
                    if c.host.is_empty() {
                        problems.push(format!("{key}.host: must not be empty"));
                    }
                    if c.from.parse::<lettre::message::Mailbox>().is_err() {
                        problems.push(format!("{key}.from: {:?} is not a mail address", c.from));
                    }
                    if c.to.is_empty() {
                        problems.push(format!("{key}.to: needs at least one address"));
                    }
                    for to in &c.to {
                        if to.parse::<lettre::message::Mailbox>().is_err() {
                            problems.push(format!("{key}.to: {to:?} is not a mail address"));
                        }
                    }
                    if c.password.is_some() && c.password_env.is_some() {
                        problems.push(format!("{key}: set password or password_env, not both"));
                    }
                    if (c.password.is_some() || c.password_env.is_some()) && c.username.is_none() {
                        problems.push(format!("{key}: a password needs a username"));
                    }
                    check_ca_file(&mut problems, &format!("{key}.ca_file"), &c.ca_file);
                    if c.ca_file.is_some() && c.security == SmtpSecurity::None {
                        problems.push(format!(
                            "{key}.ca_file: has no effect with security = \"none\"; use \"starttls\" or \"tls\""
                        ));
                    }
                    check_positive(&mut problems, &format!("{key}.timeout"), c.timeout);
                }
            }
        }
        for (severity, route) in [
            ("warning", &self.routes.warning),
            ("critical", &self.routes.critical),
        ] {
            for name in route {
                if !self.channels.contains_key(name) {
                    problems.push(format!(
                        "routes.{severity}: channel {name:?} is not defined (defined: {})",
                        self.channel_list()
                    ));
                }
            }
            if !self.channels.is_empty() && route.is_empty() {
                problems.push(format!(
                    "routes.{severity}: no channel receives {severity} alerts; list at least one"
                ));
            }
        }
        if !(self.saturation_critical > 0.0 && self.saturation_critical <= 1.0) {
            problems.push(format!(
                "saturation_critical: {} must be in (0, 1]",
                self.saturation_critical
            ));
        }
        check_positive(&mut problems, "renotify", self.renotify);
        check_positive(&mut problems, "critical_horizon", self.critical_horizon);
        let d = &self.delivery;
        check_positive(&mut problems, "delivery.backoff_initial", d.backoff_initial);
        check_positive(&mut problems, "delivery.expire_after", d.expire_after);
        if d.backoff_max < d.backoff_initial {
            problems.push("delivery.backoff_max: must be at least backoff_initial".into());
        }
        if d.failing_after_failures == 0 {
            problems.push("delivery.failing_after_failures: must be at least 1".into());
        }
        for (i, silence) in self.silences.iter().enumerate() {
            if silence.target.is_empty() {
                problems.push(format!("silences[{i}].target: must not be empty"));
            }
        }
        if let Some(hb) = &self.heartbeat {
            if let Some(url) = &hb.url {
                check_url(&mut problems, "heartbeat.url", url);
            }
            check_positive(&mut problems, "heartbeat.every", hb.every);
            match hb.watchdog_channel.as_deref().map(|n| (n, self.channels.get(n))) {
                None => {}
                Some((_, Some(ChannelConfig::Alertmanager(_)))) => {}
                Some((name, Some(other))) => problems.push(format!(
                    "heartbeat.watchdog_channel: {name:?} is a {} channel; the watchdog needs an alertmanager channel",
                    other.kind()
                )),
                Some((name, None)) => problems.push(format!(
                    "heartbeat.watchdog_channel: channel {name:?} is not defined (defined: {})",
                    self.channel_list()
                )),
            }
            if hb.url.is_none() && hb.watchdog_channel.is_none() {
                problems.push("heartbeat: set url, watchdog_channel, or both".into());
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError { problems })
        }
    }

    fn channel_list(&self) -> String {
        if self.channels.is_empty() {
            "none".into()
        } else {
            self.channels.keys().cloned().collect::<Vec<_>>().join(", ")
        }
    }
}

/// A silence: no notifications for matching alerts until `until`. Alerts still change state
/// underneath; when the silence ends, a still-firing alert notifies at once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Silence {
    pub target: String,
    /// Absent: every resource of the target.
    #[serde(default)]
    pub resource: Option<String>,
    pub until: Timestamp,
    #[serde(default)]
    pub reason: String,
}

impl Silence {
    pub fn matches(&self, target: &str, resource: &str, now_ms: u64) -> bool {
        now_ms < self.until.0
            && self.target == target
            && self.resource.as_deref().is_none_or(|r| r == resource)
    }
}

/// Reads `path`, a PEM bundle of extra trusted root certificates: its bytes and the
/// certificates in it. Errors (unreadable, not PEM, no certificate) name the path.
pub(crate) fn read_ca_file(path: &Path) -> Result<(Vec<u8>, Vec<reqwest::Certificate>), String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem)
        .map_err(|e| format!("{}: not a PEM certificate bundle: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "{} holds no PEM certificate (want -----BEGIN CERTIFICATE----- blocks)",
            path.display()
        ));
    }
    Ok((pem, certs))
}
