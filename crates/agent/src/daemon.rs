//! The sampling loop and the store writer, as two threads joined by a bounded queue.
//!
//! Sampling never waits on storage: the sampler thread hands each interval to the writer
//! through a queue of `agent.queue` entries; when it is full the interval is dropped and
//! counted (`leakwatch_agent_samples_dropped_total`), never blocked on.

use crate::config::Config;
use crate::evidence::{self, CaptureJob, MitigationLog, Registry};
use crate::sync::Locked;
use crate::targets::{self, Admission, RestartTracker, Targeting};
use leakwatch_alert::{AlertPayload, Silence};
use leakwatch_model::{Attribution, Resource, TargetKind};
use leakwatch_proc::{Options, Sampler, Selection};
use leakwatch_store::{Restart, SeriesKey, Store};
use std::collections::{BTreeMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the agent knows right now, for the HTTP API and `/metrics`.
#[derive(Default)]
pub struct Latest {
    pub time_unix_ms: i64,
    /// Per target: kind and current series values.
    pub targets: BTreeMap<String, (TargetKind, Vec<(SeriesKey, f64)>)>,
    /// Per target: its live processes.
    pub pids: BTreeMap<String, Vec<u32>>,
}

/// A change to the silences, asked for through the API, applied by the alert loop.
#[derive(Debug, Clone)]
pub enum SilenceOp {
    Add(Silence),
    Expire {
        target: String,
        resource: Option<String>,
    },
}

/// Most silence changes waiting for the alert loop; more are refused (HTTP 503).
pub const MAX_SILENCE_OPS: usize = 100;
/// Most announcements (mitigations) waiting for the alert loop; the oldest are dropped.
const MAX_ANNOUNCEMENTS: usize = 32;

/// The stderr and stdout tails of a supervised command's current life.
pub type OutputTails = (
    Arc<Mutex<crate::supervise::Tail>>,
    Arc<Mutex<crate::supervise::Tail>>,
);

/// Counters about the agent itself.
#[derive(Default)]
pub struct AgentStats {
    pub samples: AtomicU64,
    pub dropped: AtomicU64,
    pub store_errors: AtomicU64,
    pub last_sample_cpu_us: AtomicU64,
    pub last_sample_wall_us: AtomicU64,
    pub last_store_us: AtomicU64,
    pub restarts_seen: AtomicU64,
    pub series_written: AtomicU64,
    pub targets: AtomicU64,
    pub partial_processes: AtomicU64,
    pub last_detect_us: AtomicU64,
    pub detect_runs: AtomicU64,
    pub incidents_captured: AtomicU64,
    pub incidents_dropped: AtomicU64,
    pub mitigations_run: AtomicU64,
}

pub struct Shared {
    /// The alert outbox, when alerting is configured (read by the API).
    pub alerts_db: Option<PathBuf>,
    /// Per-channel delivery counters, refreshed by the alert thread (for `/metrics`).
    pub alert_counters: Mutex<Vec<leakwatch_alert::ChannelCounters>>,
    /// App gauges scraped from the targets' metrics endpoints.
    pub gauges: crate::gauges::Gauges,
    /// The latest findings of the detection loop, ranked.
    pub findings: Mutex<Vec<leakwatch_detect::Finding>>,
    /// Restarts known precisely by a supervisor (`leakwatch run`), for the writer to store.
    pub supervised_restarts: Mutex<Vec<Restart>>,
    pub latest: Mutex<Latest>,
    /// Open incidents (findings whose evidence was captured), for alerts to point at.
    pub incidents: Mutex<Registry>,
    /// `DATA_DIR/incidents`.
    pub incidents_dir: PathBuf,
    /// Mitigation announcements for the alert loop to send.
    pub announcements: Mutex<VecDeque<AlertPayload>>,
    /// Silence changes from the API, for the alert loop.
    pub silence_ops: Mutex<Vec<SilenceOp>>,
    /// The alert engine's silences as of its last step (for the API).
    pub silences: Mutex<Vec<Silence>>,
    /// Supervised mode: the command's output tails, for evidence.
    pub supervised_output: Mutex<Option<OutputTails>>,
    pub stats: AgentStats,
    pub stop: AtomicBool,
    pub db_path: PathBuf,
    pub privileged: bool,
    pub started: Instant,
}

struct Batch {
    ts_ms: i64,
    points: Vec<(SeriesKey, f64)>,
    kinds: Vec<(String, TargetKind)>,
    restarts: Vec<Restart>,
}

/// Default data dir: `/var/lib/leakwatch` for root, else `$XDG_DATA_HOME/leakwatch` (or
/// `~/.local/share/leakwatch`).
pub fn default_data_dir() -> PathBuf {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return PathBuf::from("/var/lib/leakwatch");
    }
    if let Some(xdg) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(xdg).join("leakwatch");
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| ".".into());
    PathBuf::from(home).join(".local/share/leakwatch")
}

pub fn db_path(data_dir: &Path) -> PathBuf {
    data_dir.join("leakwatch.db")
}

/// What the agent watches.
pub enum Mode {
    /// Every process on the host, grouped into targets.
    Host,
    /// Only the processes of one supervised command (`leakwatch run`): the pids in the set
    /// and their children, all under one target whose restarts the supervisor records.
    Supervised {
        target: String,
        pids: Arc<Mutex<HashSet<u32>>>,
    },
}

/// Starts the sampler and writer threads. Returns their handles; they stop when
/// `shared.stop` is set.
pub fn start(
    config: &Config,
    data_dir: &Path,
    mode: Mode,
) -> Result<(Arc<Shared>, Vec<std::thread::JoinHandle<()>>), String> {
    std::fs::create_dir_all(data_dir)
        .map_err(|e| format!("cannot create data dir {}: {e}", data_dir.display()))?;
    let db = db_path(data_dir);
    // SAFETY: geteuid has no preconditions.
    let privileged = unsafe { libc::geteuid() } == 0;
    let alerts_db = (!config.alerts.channels.is_empty()).then(|| data_dir.join("alerts.db"));
    let incidents_dir = evidence::incidents_dir(data_dir);
    let registry = Registry::load(
        &incidents_dir,
        config.evidence.reopen_after,
        leakwatch_alert::now_ms() as i64,
    );
    let shared = Arc::new(Shared {
        alerts_db,
        alert_counters: Mutex::new(Vec::new()),
        gauges: crate::gauges::Gauges::default(),
        findings: Mutex::new(Vec::new()),
        supervised_restarts: Mutex::new(Vec::new()),
        latest: Mutex::new(Latest::default()),
        incidents: Mutex::new(registry),
        incidents_dir,
        announcements: Mutex::new(VecDeque::new()),
        silence_ops: Mutex::new(Vec::new()),
        silences: Mutex::new(config.alerts.silences.clone()),
        supervised_output: Mutex::new(None),
        stats: AgentStats::default(),
        stop: AtomicBool::new(false),
        db_path: db,
        privileged,
        started: Instant::now(),
    });
    let (selection, targeting) = match mode {
        Mode::Host => (Selection::All, Targeting::new(&config.targets)),
        Mode::Supervised { target, pids } => {
            let selection = Selection::Filter(Box::new(move |identity| {
                let pids = pids.locked();
                pids.contains(&identity.pid) || pids.contains(&identity.ppid)
            }));
            (selection, Targeting::single(&target))
        }
    };
    let sampler = Sampler::new(Options::default(), selection)
        .map_err(|e| format!("cannot read /proc: {e}"))?;
    if let Some(why) = sampler.netlink_error() {
        tracing::warn!(
            error = why,
            "netlink sock_diag unavailable, reading /proc/net"
        );
    }
    let (sender, receiver) = sync_channel::<Batch>(config.agent.queue);
    let sampling = {
        let shared = shared.clone();
        let config = config.clone();
        std::thread::Builder::new()
            .name("lw-sampler".into())
            .spawn(move || sample_loop(sampler, targeting, &config, &shared, sender))
            .map_err(|e| e.to_string())?
    };
    // The store holds a SQLite connection, which stays on the thread that opened it: open
    // it there and wait for the verdict, so a bad data dir fails the start, not later.
    let (opened_tx, opened_rx) = std::sync::mpsc::channel::<Result<(), String>>();
    let writing = {
        let shared = shared.clone();
        std::thread::Builder::new()
            .name("lw-writer".into())
            .spawn(move || {
                let store = match Store::open(&shared.db_path) {
                    Ok(store) => {
                        let _ = opened_tx.send(Ok(()));
                        store
                    }
                    Err(e) => {
                        let _ = opened_tx.send(Err(format!(
                            "cannot open store {}: {e}",
                            shared.db_path.display()
                        )));
                        shared.stop.store(true, Ordering::Relaxed);
                        return;
                    }
                };
                write_loop(store, &shared, receiver)
            })
            .map_err(|e| e.to_string())?
    };
    let sources: Vec<crate::gauges::GaugeSource> = config
        .targets
        .iter()
        .filter_map(|rule| {
            rule.metrics_url
                .as_ref()
                .map(|url| crate::gauges::GaugeSource {
                    target: rule.name.clone(),
                    url: url.clone(),
                    gauges: rule.gauges.clone(),
                })
        })
        .collect();
    let scraping = {
        let shared = shared.clone();
        let interval = config.agent.interval;
        std::thread::Builder::new()
            .name("lw-gauges".into())
            .spawn(move || {
                crate::gauges::scrape_loop(sources, interval, &shared.gauges, &shared.stop)
            })
            .map_err(|e| e.to_string())?
    };
    let alerting = {
        let shared = shared.clone();
        let alerts = config.alerts.clone();
        std::thread::Builder::new()
            .name("lw-alerts".into())
            .spawn(move || {
                if let Some(path) = shared.alerts_db.clone() {
                    if let Err(error) = alert_loop(&shared, &alerts, &path) {
                        tracing::error!(error = %error, "alerting stopped");
                    }
                }
            })
            .map_err(|e| e.to_string())?
    };
    let (jobs, job_receiver) = sync_channel::<EvidenceJob>(EVIDENCE_QUEUE);
    let collecting = {
        let shared = shared.clone();
        let settings = config.evidence.clone();
        std::thread::Builder::new()
            .name("lw-evidence".into())
            .spawn(move || evidence_loop(&shared, &settings, job_receiver))
            .map_err(|e| e.to_string())?
    };
    let detecting = {
        let shared = shared.clone();
        let config = config.clone();
        std::thread::Builder::new()
            .name("lw-detect".into())
            .spawn(move || detect_loop(&shared, &config, jobs))
            .map_err(|e| e.to_string())?
    };
    match opened_rx.recv() {
        Ok(Ok(())) => {}
        Ok(Err(message)) => {
            shared.stop.store(true, Ordering::Relaxed);
            let _ = sampling.join();
            let _ = writing.join();
            let _ = detecting.join();
            let _ = collecting.join();
            let _ = scraping.join();
            let _ = alerting.join();
            return Err(message);
        }
        Err(_) => return Err("store writer thread died while opening the store".into()),
    }
    Ok((
        shared,
        vec![sampling, writing, detecting, collecting, scraping, alerting],
    ))
}

fn sample_loop(
    mut sampler: Sampler,
    targeting: Targeting,
    config: &Config,
    shared: &Shared,
    sender: SyncSender<Batch>,
) {
    let interval = config.agent.interval;
    // Remember a vanished target for ten minutes' worth of passes: crash loops restart
    // after a back-off, and the restart must still be attributed to the same target.
    let grace = (600 / interval.as_secs().max(1)).max(3);
    let mut tracker = RestartTracker::new(grace);
    let mut admission = Admission::new(grace);
    let mut next = Instant::now();
    let mut logged_cost = false;
    while !shared.stop.load(Ordering::Relaxed) {
        let sample = match sampler.sample() {
            Ok(sample) => sample,
            Err(error) => {
                tracing::error!(error = %error, "sampling pass failed");
                sleep_until(&mut next, interval, shared);
                continue;
            }
        };
        let stats = &shared.stats;
        stats.samples.fetch_add(1, Ordering::Relaxed);
        stats
            .last_sample_cpu_us
            .store(sample.stats.cpu_us, Ordering::Relaxed);
        stats
            .last_sample_wall_us
            .store(sample.stats.wall_us, Ordering::Relaxed);
        stats
            .partial_processes
            .store(sample.stats.partial, Ordering::Relaxed);
        if !logged_cost {
            tracing::info!(
                processes = sample.processes.len(),
                cpu_ms = sample.stats.cpu_us / 1000,
                wall_ms = sample.stats.wall_us / 1000,
                partial = sample.stats.partial,
                "first sample"
            );
            logged_cost = true;
        }
        // Short-lived commands (compilers, shell pipelines) get no history of their own.
        let grouped = admission.filter(targets::group(&targeting, &sample));
        // A supervisor knows its restarts better (exit status, stderr): don't guess them.
        let seen = tracker.observe(&grouped, &|_| targeting.is_single());
        let mut points = Vec::new();
        let mut latest_targets = BTreeMap::new();
        let mut latest_pids = BTreeMap::new();
        let mut kinds = Vec::new();
        for (target, target_sample) in &grouped {
            let mut target_points = target_sample.points(
                &target.name,
                config.agent.max_thread_groups,
                config.agent.max_socket_peers,
            );
            // App gauges scraped within the last two intervals; older ones are stale.
            for (name, value) in shared.gauges.fresh(&target.name, interval * 2) {
                let key = SeriesKey::new(&target.name, Resource::Gauge, Attribution::Gauge(name));
                target_points.push((key, value));
            }
            points.extend(target_points.iter().cloned());
            kinds.push((target.name.clone(), target.kind));
            latest_pids.insert(
                target.name.clone(),
                target_sample
                    .processes
                    .iter()
                    .map(|(pid, _)| *pid)
                    .collect(),
            );
            latest_targets.insert(target.name.clone(), (target.kind, target_points));
        }
        stats.targets.store(grouped.len() as u64, Ordering::Relaxed);
        let restarts: Vec<Restart> = seen
            .into_iter()
            .map(|r| {
                tracing::info!(target = %r.target, old_pid = r.old.0, new_pid = r.new.0, "restart");
                Restart {
                    target: r.target,
                    ts_ms: sample.time_unix_ms,
                    old_pid: Some(r.old.0),
                    old_start_time: Some(r.old.1),
                    new_pid: Some(r.new.0),
                    new_start_time: Some(r.new.1),
                    exit_code: None,
                    signal: None,
                    oom_killed: None,
                    stderr_tail: None,
                }
            })
            .collect();
        stats
            .restarts_seen
            .fetch_add(restarts.len() as u64, Ordering::Relaxed);
        {
            let mut latest = shared.latest.locked();
            latest.time_unix_ms = sample.time_unix_ms;
            latest.targets = latest_targets;
            latest.pids = latest_pids;
        }
        let batch = Batch {
            ts_ms: sample.time_unix_ms,
            points,
            kinds,
            restarts,
        };
        match sender.try_send(batch) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                stats.dropped.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("store is behind: dropped one interval");
            }
            Err(TrySendError::Disconnected(_)) => {
                tracing::error!("store writer stopped; sampling stops too");
                shared.stop.store(true, Ordering::Relaxed);
                return;
            }
        }
        sleep_until(&mut next, interval, shared);
    }
}

/// Sleeps to the next tick of a fixed schedule (no drift), waking early on stop.
fn sleep_until(next: &mut Instant, interval: Duration, shared: &Shared) {
    *next += interval;
    let now = Instant::now();
    if *next < now {
        // We fell behind (a pass longer than the interval): skip missed ticks.
        *next = now + interval;
    }
    while !shared.stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if now >= *next {
            return;
        }
        std::thread::sleep((*next - now).min(Duration::from_millis(200)));
    }
}

fn write_loop(mut store: Store, shared: &Shared, receiver: Receiver<Batch>) {
    // Targets whose kind was written this run; cleared with retention so it stays bounded.
    let mut known: HashSet<String> = HashSet::new();
    let mut last_retention = Instant::now();
    loop {
        let batch = match receiver.recv_timeout(Duration::from_millis(200)) {
            Ok(batch) => batch,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                if shared.stop.load(Ordering::Relaxed) {
                    return;
                }
                continue;
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
        };
        let started = Instant::now();
        let result = (|| -> leakwatch_store::Result<usize> {
            for (name, kind) in &batch.kinds {
                if !known.contains(name) {
                    store.set_target(name, *kind)?;
                    known.insert(name.clone());
                }
            }
            let report = store.append_keyed(batch.ts_ms, &batch.points)?;
            let supervised = std::mem::take(&mut *shared.supervised_restarts.locked());
            for restart in batch.restarts.iter().chain(supervised.iter()) {
                store.record_restart(restart)?;
            }
            Ok(report.written)
        })();
        match result {
            Ok(written) => {
                shared
                    .stats
                    .series_written
                    .store(written as u64, Ordering::Relaxed);
            }
            Err(error) => {
                shared.stats.store_errors.fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %error, "could not store an interval");
            }
        }
        if last_retention.elapsed() > Duration::from_secs(3600) {
            match store.apply_retention(batch.ts_ms) {
                Ok(report) => tracing::info!(
                    series_deleted = report.series_deleted,
                    targets_deleted = report.targets_deleted,
                    "retention applied"
                ),
                Err(error) => tracing::error!(error = %error, "retention failed"),
            }
            known.clear();
            last_retention = Instant::now();
        }
        shared
            .stats
            .last_store_us
            .store(started.elapsed().as_micros() as u64, Ordering::Relaxed);
    }
}

/// Work for the evidence thread, in order: a capture always precedes the mitigation of
/// the same incident.
enum EvidenceJob {
    Capture(Box<CaptureJob>),
    Join {
        id: String,
        finding: Box<leakwatch_detect::Finding>,
    },
    Mitigate {
        id: String,
        mitigation: crate::config::Mitigation,
        pids: Vec<u32>,
    },
}

/// Capture requests waiting; beyond this they are dropped and counted (detection never
/// waits on a slow capture command).
const EVIDENCE_QUEUE: usize = 64;

/// Recomputes findings from the stored history every `[detect] every`, on its own
/// read-only connection, so detection never delays sampling or storing. New findings open
/// incidents (evidence is captured on `lw-evidence`); leaks whose forecast falls inside a
/// target's mitigation threshold ask for the restart command.
fn detect_loop(shared: &Shared, config: &Config, jobs: SyncSender<EvidenceJob>) {
    let interval = config.agent.interval;
    let params = config.detect.params(interval);
    let every = config.detect.every(interval);
    // Judge the last 8,640 intervals: a day at 10 s, 2.4 hours at 1 s.
    let window_ms = interval.as_millis() as i64 * 8_640;
    let mut next = Instant::now() + every;
    while !shared.stop.load(Ordering::Relaxed) {
        if Instant::now() < next {
            std::thread::sleep(Duration::from_millis(200));
            continue;
        }
        next = Instant::now() + every;
        let started = Instant::now();
        let store = match Store::open_read_only(&shared.db_path) {
            Ok(store) => store,
            Err(error) => {
                tracing::warn!(error = %error, "detection cannot open the store");
                continue;
            }
        };
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        let found = crate::findings::compute(&store, now_ms, window_ms, &params);
        drop(store);
        {
            let findings = shared.findings.locked();
            for finding in &found {
                let new = !findings
                    .iter()
                    .any(|f| f.key == finding.key && f.kind == finding.kind);
                if new {
                    tracing::warn!(kind = %finding.kind, target = %finding.key.target, "{}", finding.summary);
                }
            }
        }
        // Incidents first, so the alert loop (woken by `detect_runs`) finds their IDs.
        if config.evidence.enabled {
            open_incidents(shared, config, &found, now_ms, &jobs);
        }
        *shared.findings.locked() = found;
        shared.stats.detect_runs.fetch_add(1, Ordering::Relaxed);
        shared
            .stats
            .last_detect_us
            .store(started.elapsed().as_micros() as u64, Ordering::Relaxed);
    }
}

fn open_incidents(
    shared: &Shared,
    config: &Config,
    found: &[leakwatch_detect::Finding],
    now_ms: i64,
    jobs: &SyncSender<EvidenceJob>,
) {
    let new = shared.incidents.locked().observe(found, now_ms);
    let pids_of = |target: &str| -> Vec<u32> {
        shared
            .latest
            .locked()
            .pids
            .get(target)
            .cloned()
            .unwrap_or_default()
    };
    let rule_of = |target: &str| config.targets.iter().find(|r| r.name == target);
    for opened in new {
        let (id, finding) = match opened {
            evidence::Opened::New { id, finding } => (id, finding),
            evidence::Opened::Joined { id, finding } => {
                let _ = jobs.try_send(EvidenceJob::Join {
                    id,
                    finding: Box::new(finding),
                });
                continue;
            }
        };
        let output = shared
            .supervised_output
            .locked()
            .as_ref()
            .map(|(err, out)| (err.locked().text(), out.locked().text()));
        let job = CaptureJob {
            id: id.clone(),
            pids: pids_of(&finding.key.target),
            rule: rule_of(&finding.key.target).cloned(),
            finding,
            output,
            created_ms: now_ms,
        };
        tracing::info!(incident = %id, "capturing evidence");
        if jobs.try_send(EvidenceJob::Capture(Box::new(job))).is_err() {
            shared
                .stats
                .incidents_dropped
                .fetch_add(1, Ordering::Relaxed);
            tracing::error!(incident = %id, "evidence queue full: capture dropped");
        }
    }
    for finding in found {
        if finding.kind != leakwatch_detect::FindingKind::Leak {
            continue;
        }
        let Some(mitigation) = rule_of(&finding.key.target).and_then(|r| r.mitigation.as_ref())
        else {
            continue;
        };
        let soon = finding
            .eta_conservative_seconds
            .is_some_and(|eta| eta < mitigation.when_eta_below.as_secs_f64());
        if !soon {
            continue;
        }
        let id = shared.incidents.locked().id_for(&finding.key);
        if let Some(id) = id {
            // Full queue: asked again at the next detection run.
            let _ = jobs.try_send(EvidenceJob::Mitigate {
                id,
                mitigation: mitigation.clone(),
                pids: pids_of(&finding.key.target),
            });
        }
    }
}

/// Captures evidence and runs restart commands, one job at a time, off the detection path.
fn evidence_loop(
    shared: &Shared,
    settings: &crate::config::EvidenceSection,
    jobs: Receiver<EvidenceJob>,
) {
    let root = shared.incidents_dir.clone();
    let mut log = MitigationLog::load(&root);
    while !shared.stop.load(Ordering::Relaxed) {
        let job = match jobs.recv_timeout(Duration::from_millis(200)) {
            Ok(job) => job,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => continue,
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
        };
        match job {
            EvidenceJob::Capture(job) => {
                match evidence::capture(&root, &shared.db_path, &job, settings) {
                    Ok(meta) => {
                        shared
                            .stats
                            .incidents_captured
                            .fetch_add(1, Ordering::Relaxed);
                        tracing::info!(
                            incident = %meta.id,
                            files = meta.files.len(),
                            ms = meta.capture_ms,
                            "evidence captured in {}",
                            root.join(&meta.id).display()
                        );
                    }
                    Err(error) => {
                        tracing::error!(incident = %job.id, error = %error, "evidence capture failed")
                    }
                }
                let removed = evidence::prune(&root, settings.max_incidents);
                if removed > 0 {
                    tracing::info!(removed, "old incident folders deleted");
                }
            }
            EvidenceJob::Join { id, finding } => {
                if let Err(error) = evidence::join(&root, &id, &finding) {
                    tracing::warn!(incident = %id, error = %error, "cannot add a finding to the incident");
                }
            }
            EvidenceJob::Mitigate {
                id,
                mitigation,
                pids,
            } => {
                let now = leakwatch_alert::now_ms() as i64;
                let Some((meta, record)) =
                    evidence::mitigate(&root, &id, &mitigation, &pids, &mut log, now)
                else {
                    continue;
                };
                if record.ran {
                    shared.stats.mitigations_run.fetch_add(1, Ordering::Relaxed);
                }
                let summary = if record.ran {
                    format!(
                        "leakwatch ran the restart command of {} because {} ({}): `{}` -> {}",
                        meta.target,
                        meta.summary,
                        meta.kind,
                        leakwatch_exec::quote::join(&record.command),
                        record.outcome
                    )
                } else {
                    format!(
                        "leakwatch did NOT restart {} although {}: {}",
                        meta.target, meta.summary, record.outcome
                    )
                };
                tracing::warn!(incident = %id, "{summary}");
                let payload = AlertPayload {
                    fingerprint: format!("mitigation-{id}-{}", meta.mitigations.len()),
                    alertname: "LeakwatchMitigation".into(),
                    kind: "mitigation".into(),
                    severity: leakwatch_alert::Severity::Critical,
                    state: leakwatch_alert::AlertState::Firing,
                    target: meta.target.clone(),
                    resource: meta.resource.clone(),
                    attribution: meta.attribution.clone(),
                    starts_ms: now as u64,
                    ends_ms: None,
                    summary,
                    finding: Some(meta.finding.clone()),
                    incident: Some(id.clone()),
                };
                let mut queue = shared.announcements.locked();
                if queue.len() >= MAX_ANNOUNCEMENTS {
                    queue.pop_front();
                }
                queue.push_back(payload);
            }
        }
    }
}

/// Turns each new set of findings into alert notifications (written to the durable outbox
/// before any send), delivers due notifications with retries, and sends heartbeats. One
/// thread owns the outbox; the API reads it through its own connection.
fn alert_loop(
    shared: &Shared,
    config: &leakwatch_alert::AlertConfig,
    path: &Path,
) -> Result<(), String> {
    use leakwatch_alert::{AlertEngine, Dispatcher, Heartbeat, Outbox};
    let outbox = Outbox::open(path).map_err(|e| format!("alert outbox {}: {e}", path.display()))?;
    let mut engine = AlertEngine::new(config);
    // After a restart, firing alerts stay firing instead of paging again.
    if let Ok(Some(state)) = outbox.load_engine_state() {
        engine.restore(state);
    }
    let mut dispatcher = Dispatcher::new(outbox, config).map_err(|e| e.to_string())?;
    let mut heartbeat =
        Heartbeat::new(config, leakwatch_alert::now_ms()).map_err(|e| e.to_string())?;
    let mut seen_runs = 0;
    let mut seen_samples = 0;
    tracing::info!(db = %path.display(), channels = config.channels.len(), "alerting on");
    while !shared.stop.load(Ordering::Relaxed) {
        let now = leakwatch_alert::now_ms();
        let ops = std::mem::take(&mut *shared.silence_ops.locked());
        for op in &ops {
            match op {
                SilenceOp::Add(silence) => {
                    tracing::info!(target = %silence.target, resource = ?silence.resource, reason = %silence.reason, "silence added");
                    engine.add_silence(silence.clone());
                }
                SilenceOp::Expire { target, resource } => {
                    let n = engine.remove_silences(target, resource.as_deref());
                    tracing::info!(target = %target, resource = ?resource, removed = n, "silence expired");
                }
            }
        }
        let runs = shared.stats.detect_runs.load(Ordering::Relaxed);
        let announcing = !shared.announcements.locked().is_empty();
        if runs != seen_runs || !ops.is_empty() || announcing {
            seen_runs = runs;
            let findings = shared.findings.locked().clone();
            let mut notifications = engine.update(&findings, now);
            {
                let incidents = shared.incidents.locked();
                for n in &mut notifications {
                    let a = &mut n.alert;
                    if a.incident.is_none() {
                        let key = SeriesKey::from_text(&a.target, &a.resource, &a.attribution);
                        a.incident = incidents.id_for(&key);
                    }
                }
            }
            let announcements: Vec<AlertPayload> =
                shared.announcements.locked().drain(..).collect();
            for payload in announcements {
                // Every channel hears about a restart, whatever its routes.
                for channel in config.channels.keys() {
                    notifications.push(leakwatch_alert::Notification::new(
                        channel,
                        leakwatch_alert::Reason::Mitigation,
                        now,
                        payload.clone(),
                    ));
                }
            }
            *shared.silences.locked() = engine.silences().to_vec();
            if !notifications.is_empty() {
                if let Err(error) = dispatcher.enqueue(&notifications, now) {
                    tracing::error!(error = %error, "cannot write alerts to the outbox");
                }
            }
            if let Err(error) = dispatcher.outbox().save_engine_state(&engine.state()) {
                tracing::warn!(error = %error, "cannot save the alert state");
            }
        }
        match dispatcher.run_once(now) {
            Ok(stats) if stats.delivered + stats.failed + stats.retried > 0 => tracing::info!(
                delivered = stats.delivered,
                retried = stats.retried,
                failed = stats.failed,
                "alert deliveries"
            ),
            Ok(_) => {}
            Err(error) => tracing::error!(error = %error, "alert delivery round failed"),
        }
        if let Ok(counters) = dispatcher.outbox().counters() {
            *shared.alert_counters.locked() = counters;
        }
        if let Some(heartbeat) = heartbeat.as_mut() {
            // Healthy while sampling advances.
            let samples = shared.stats.samples.load(Ordering::Relaxed);
            let healthy = samples != seen_samples;
            seen_samples = samples;
            heartbeat.tick(now, healthy);
        }
        let until = Instant::now() + Duration::from_secs(1);
        while Instant::now() < until && !shared.stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    Ok(())
}

/// Resident memory of this process in bytes (for its own `/metrics`).
pub fn own_rss_bytes() -> u64 {
    let Ok(statm) = std::fs::read_to_string("/proc/self/statm") else {
        return 0;
    };
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    pages * unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64
}
