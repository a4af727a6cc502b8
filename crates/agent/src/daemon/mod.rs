//! The agent as stages: sampler -> writer -> detector -> incidents -> alerts (and the gauge
//! scraper beside them). Each stage is a thread that owns its loop and its state, receives
//! its work through a bounded inbox, and publishes what others read (the latest sample, the
//! findings, the silences, the delivery counters) as snapshots in [`Shared`].
//!
//! | stage | module | inbox | publishes |
//! |---|---|---|---|
//! | `lw-sampler` | [`sampler`] | (the clock) | `latest` |
//! | `lw-writer` | [`writer`] | [`writer::WriterEvent`]: intervals, supervised restarts | stats |
//! | `lw-detect` | [`detector`] | (the clock; reads the store) | `findings` |
//! | `lw-evidence` | [`incidents`] | [`incidents::EvidenceJob`]: captures, restarts | stats; what grows, to `lw-detect` |
//! | `lw-alerts` | [`alerts`] | [`alerts::AlertEvent`]: findings, silences, announcements | `silences`, `alert_counters` |
//! | `lw-gauges` | `crate::gauges` | (the clock) | `gauges` |
//!
//! Collection never waits on a slow consumer: every send to an inbox is a `try_send`; a
//! full inbox drops the item and counts it (`leakwatch_agent_samples_dropped_total`,
//! `incidents_dropped`), never blocks the sender.

pub mod alerts;
pub mod detector;
pub mod incidents;
pub mod sampler;
pub mod writer;

pub use alerts::{AlertEvent, SilenceOp, ALERT_INBOX};

use crate::config::Config;
use crate::evidence::{self, Registry};
use crate::sync::Published;
use crate::tail::Tail;
use crate::targets::Targeting;
use leakwatch_alert::Silence;
use leakwatch_model::TargetKind;
use leakwatch_proc::{Options, Sampler, Selection};
use leakwatch_store::{SeriesKey, StoreWriter};
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender};
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
    /// Per target: who its processes are (at most `MAX_LISTED` described).
    pub processes: BTreeMap<String, crate::processes::TargetProcesses>,
}

/// The stderr and stdout tails of a supervised command's current life.
pub type OutputTails = (Arc<Mutex<Tail>>, Arc<Mutex<Tail>>);

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
    /// [`leakwatch_store::Store::catalog_slots`] of the writer, after its last interval.
    pub store_catalog_slots: AtomicU64,
    /// The same for the detection stage's reader, after its last refresh.
    pub detect_catalog_slots: AtomicU64,
    pub detect_runs: AtomicU64,
    pub incidents_captured: AtomicU64,
    pub incidents_dropped: AtomicU64,
    pub mitigations_run: AtomicU64,
    /// HTTP connections closed at accept because the cap was reached.
    pub http_refused: AtomicU64,
    /// HTTP `accept` calls that failed (EMFILE and the like).
    pub http_accept_errors: AtomicU64,
    /// Alerting is configured but cannot work (its outbox cannot be opened, or every write
    /// or delivery round fails): `/healthz` says so.
    pub alerting_down: std::sync::atomic::AtomicBool,
}

/// What the stages publish and where others send them work. Snapshots are replaced whole
/// by their one writer; readers take an `Arc` and never hold a lock while they work.
pub struct Shared {
    /// The alert outbox, when alerting is configured (read by the API).
    pub alerts_db: Option<PathBuf>,
    /// Per-channel delivery counters, published by the alert stage (for `/metrics`).
    pub alert_counters: Published<Vec<leakwatch_alert::ChannelCounters>>,
    /// App gauges scraped from the targets' metrics endpoints.
    pub gauges: crate::gauges::Gauges,
    /// The latest findings of the detector, ranked.
    pub findings: Published<Vec<leakwatch_detect::Finding>>,
    /// The latest sample, grouped into targets (published by the sampler).
    pub latest: Published<Latest>,
    /// `DATA_DIR/incidents`.
    pub incidents_dir: PathBuf,
    /// The alert engine's silences as of its last step (for the API).
    pub silences: Published<Vec<Silence>>,
    /// The alert stage's inbox: silence changes from the API go here (`None` without
    /// alerting).
    pub alert_inbox: Option<SyncSender<AlertEvent>>,
    /// The writer's inbox: the supervisor (`leakwatch run`) sends its restarts here.
    pub writer_inbox: SyncSender<writer::WriterEvent>,
    /// The evidence stage's inbox: captures asked for through the API go here (`None`
    /// when evidence is off).
    pub evidence_inbox: Option<SyncSender<incidents::EvidenceJob>>,
    /// The stage that panicked, if one did (the agent is stopping).
    pub failed_stage: Published<Option<String>>,
    /// Each stage's heartbeat: a stage that stops beating is reported stalled.
    pub heartbeats: crate::health::Heartbeats,
    /// Supervised mode: the output tails of the command's current life, for evidence.
    pub supervised_output: Published<Option<OutputTails>>,
    pub stats: AgentStats,
    pub stop: AtomicBool,
    pub db_path: PathBuf,
    pub privileged: bool,
    pub started: Instant,
}

/// Default data dir: `/var/lib/leakwatch` for root, else `$XDG_DATA_HOME/leakwatch` (or
/// `~/.local/share/leakwatch`).
pub fn default_data_dir() -> PathBuf {
    // A system agent (root, or the packaged unit's user with its capabilities).
    if can_read_every_process() {
        return PathBuf::from("/var/lib/leakwatch");
    }
    if let Some(xdg) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(xdg).join("leakwatch");
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| ".".into());
    PathBuf::from(home).join(".local/share/leakwatch")
}

/// The capabilities that let a process read every other process's fds, executable and
/// sockets' owners (measured by `scripts/test-deb.sh`): `CAP_DAC_READ_SEARCH` (2) and
/// `CAP_SYS_PTRACE` (19).
const READ_EVERY_PROCESS: u64 = (1 << 2) | (1 << 19);

/// Root, or a user holding [`READ_EVERY_PROCESS`] in its effective set (the packaged
/// unit's `leakwatch` user).
pub fn can_read_every_process() -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    effective_caps(&status).is_some_and(|caps| caps & READ_EVERY_PROCESS == READ_EVERY_PROCESS)
}

/// `CapEff:` of a `/proc/PID/status`.
fn effective_caps(status: &str) -> Option<u64> {
    let hex = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?;
    u64::from_str_radix(hex.trim(), 16).ok()
}

/// Fixes glibc malloc's thresholds before any stage thread starts. By default glibc raises
/// its mmap threshold to the size of the largest block freed (up to 32 MiB) and its trim
/// threshold to twice that, so after one capture grew a 16 MiB output buffer, later big
/// buffers come from a thread's arena and stay resident when freed, `malloc_trim`
/// notwithstanding (it does not shrink the top of a thread's arena): the 2-hour soak held
/// 160 MB anonymous memory with 61 MB in use after a test run's captures (BENCHMARKS.md
/// §2). Fixed thresholds (blocks of 256 KiB and more mmapped and unmapped when freed, tops
/// above 1 MiB trimmed) give it back. `LEAKWATCH_MALLOC_TUNE=0` keeps glibc's defaults, for
/// comparisons.
pub fn tune_malloc() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var("LEAKWATCH_MALLOC_TUNE").as_deref() != Ok("0") {
        // SAFETY: mallopt has no preconditions; it only sets allocator parameters.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
            libc::mallopt(libc::M_TRIM_THRESHOLD, 1024 * 1024);
        }
    }
}

/// Gives the memory a detection pass freed back to the system. glibc keeps freed memory in
/// its per-thread arenas; a pass reads the recent history of every target, so without this
/// the agent's RSS swings by tens of MiB with the passes (BENCHMARKS.md §2).
/// `LEAKWATCH_MALLOC_TRIM=0` turns it off, for the soak's side-by-side comparison.
pub fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        let on = *ON.get_or_init(|| std::env::var("LEAKWATCH_MALLOC_TRIM").as_deref() != Ok("0"));
        if on {
            // SAFETY: malloc_trim has no preconditions; it only returns free pages.
            unsafe { libc::malloc_trim(0) };
        }
    }
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

/// Starts a named stage thread. A stage that panics is not left dead behind a healthy
/// face: it is named in `failed_stage` (`/healthz` answers 503), and the agent stops, so
/// `run` exits with an error for its supervisor (systemd, Kubernetes) to restart it.
/// A stage that hangs is not either: it must call [`crate::health::beat`] at least once
/// per `bound`, else it is reported stalled (`/healthz` answers 503).
fn spawn(
    shared: &Arc<Shared>,
    name: &str,
    bound: Duration,
    body: impl FnOnce() + Send + 'static,
) -> crate::Result<std::thread::JoinHandle<()>> {
    let shared = shared.clone();
    let stage = name.to_string();
    let heartbeat = shared.heartbeats.register(name, bound);
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let stall = failpoint_is("stall:", &stage).then(|| {
                let shared = shared.clone();
                Box::new(move || shared.stop.load(Ordering::Relaxed)) as crate::health::Stall
            });
            crate::health::enter(heartbeat, stall);
            let run = || {
                failpoint(&stage);
                body();
                crate::health::finish();
            };
            if let Err(panic) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)) {
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                tracing::error!(stage = %stage, panic = %message, "stage panicked: the agent stops for its supervisor to restart it");
                shared.failed_stage.publish(Some(stage));
                shared.stop.store(true, Ordering::Relaxed);
                // As if signalled: the HTTP server and `leakwatch run`'s supervisor stop too.
                leakwatch_exec::signals::flag().store(true, Ordering::SeqCst);
            }
        })
        .map_err(|source| crate::Error::Thread {
            name: name.to_string(),
            source,
        })
}

/// Fault injection for the tests of the above: `LEAKWATCH_FAILPOINT=panic:lw-detect` makes
/// that stage panic as it starts; `stall:lw-detect` makes its first heartbeat hang until
/// the agent stops. Unset in production.
fn failpoint(stage: &str) {
    if failpoint_is("panic:", stage) {
        panic!("failpoint {stage}");
    }
}

fn failpoint_is(kind: &str, stage: &str) -> bool {
    std::env::var("LEAKWATCH_FAILPOINT").is_ok_and(|v| v.strip_prefix(kind) == Some(stage))
}

/// Starts every stage. Returns the shared snapshots and the threads' handles; the stages
/// stop when `shared.stop` is set.
pub fn start(
    config: &Config,
    data_dir: &Path,
    mode: Mode,
) -> crate::Result<(Arc<Shared>, Vec<std::thread::JoinHandle<()>>)> {
    tune_malloc();
    std::fs::create_dir_all(data_dir).map_err(|source| crate::Error::DataDir {
        path: data_dir.to_path_buf(),
        source,
    })?;
    let privileged = can_read_every_process();
    let alerts_db = (!config.alerts.channels.is_empty()).then(|| data_dir.join("alerts.db"));
    let incidents_dir = evidence::incidents_dir(data_dir);
    let registry = Registry::load(
        &incidents_dir,
        config.evidence.reopen_after,
        leakwatch_alert::now_ms() as i64,
    );
    let (writer_inbox, writer_receiver) = sync_channel(config.agent.queue);
    let (alert_inbox, alert_receiver) = sync_channel(ALERT_INBOX);
    let (evidence_inbox, evidence_receiver) = sync_channel(incidents::EVIDENCE_INBOX);
    // What each capture found growing, back to the detector (which annotates the finding).
    let (found_tx, found_rx) = sync_channel(incidents::EVIDENCE_INBOX);
    let shared = Arc::new(Shared {
        alert_inbox: alerts_db.is_some().then_some(alert_inbox),
        alerts_db,
        alert_counters: Published::default(),
        gauges: crate::gauges::Gauges::default(),
        findings: Published::default(),
        latest: Published::default(),
        incidents_dir,
        silences: Published::new(config.alerts.silences.clone()),
        writer_inbox,
        evidence_inbox: config.evidence.enabled.then(|| evidence_inbox.clone()),
        failed_stage: Published::default(),
        heartbeats: crate::health::Heartbeats::default(),
        supervised_output: Published::default(),
        stats: AgentStats::default(),
        stop: AtomicBool::new(false),
        db_path: db_path(data_dir),
        privileged,
        started: Instant::now(),
    });
    let (selection, targeting) = match mode {
        Mode::Host => (Selection::All, Targeting::new(&config.targets)),
        Mode::Supervised { target, pids } => {
            let selection = Selection::Filter(Box::new(move |identity| {
                use crate::sync::Locked;
                let pids = pids.locked();
                pids.contains(&identity.pid) || pids.contains(&identity.ppid)
            }));
            (selection, Targeting::single(&target))
        }
    };
    // Each process reports as many path groups as a target keeps: the target's top N are
    // the largest of those (exactly so for a target of one process).
    let options = Options {
        max_fd_paths: config.agent.max_fd_paths,
        ..Options::default()
    };
    let sampler = Sampler::new(options, selection).map_err(crate::Error::Proc)?;
    if let Some(why) = sampler.netlink_error() {
        tracing::warn!(
            error = why,
            "netlink sock_diag unavailable, reading /proc/net"
        );
    }
    let mut threads = Vec::new();
    // The store holds a SQLite connection, which stays on the thread that opened it: open
    // it there and wait for the verdict, so a bad data dir fails the start, not later.
    let (opened_tx, opened_rx) = std::sync::mpsc::channel::<crate::Result<()>>();
    // The automatic targets already stored, for the sampler's first pass (`Names::seed`);
    // dropped unsent if the store does not open.
    let (stored_tx, stored_rx) = std::sync::mpsc::channel::<Vec<String>>();
    threads.push({
        let hub = shared.clone();
        let shared = shared.clone();
        spawn(&hub, "lw-writer", config.stall_after(), move || {
            let store = match StoreWriter::open(&shared.db_path) {
                Ok(store) => {
                    let _ = opened_tx.send(Ok(()));
                    let _ = stored_tx.send(
                        store
                            .targets()
                            .into_iter()
                            .filter(|t| t.kind == Some(leakwatch_model::TargetKind::Exe))
                            .map(|t| t.name)
                            .collect(),
                    );
                    store
                }
                Err(e) => {
                    let _ = opened_tx.send(Err(crate::Error::Store {
                        path: shared.db_path.clone(),
                        message: e.to_string(),
                    }));
                    shared.stop.store(true, Ordering::Relaxed);
                    return;
                }
            };
            writer::run(store, &shared, writer_receiver)
        })?
    });
    threads.push({
        let hub = shared.clone();
        let shared = shared.clone();
        let config = config.clone();
        spawn(&hub, "lw-sampler", config.stall_after(), move || {
            sampler::run(sampler, targeting, stored_rx, &config, &shared)
        })?
    });
    threads.push({
        let hub = shared.clone();
        let shared = shared.clone();
        let sources = config.gauge_sources();
        let interval = config.agent.interval;
        spawn(&hub, "lw-gauges", config.stall_after(), move || {
            crate::gauges::scrape_loop(sources, interval, &shared.gauges, &shared.stop)
        })?
    });
    threads.push({
        let hub = shared.clone();
        let shared = shared.clone();
        let alerts = config.alerts.clone();
        spawn(&hub, "lw-alerts", config.alerts_stall_after(), move || {
            if let Some(path) = shared.alerts_db.clone() {
                if let Err(error) = alerts::run(&shared, &alerts, &path, alert_receiver) {
                    tracing::error!(error = %error, "alerting stopped");
                }
            }
        })?
    });
    threads.push({
        let hub = shared.clone();
        let shared = shared.clone();
        let settings = config.evidence.clone();
        let rules = config.targets.clone();
        spawn(
            &hub,
            "lw-evidence",
            config.evidence_stall_after(),
            move || incidents::run(&shared, &settings, &rules, evidence_receiver, found_tx),
        )?
    });
    threads.push({
        let hub = shared.clone();
        let shared = shared.clone();
        let config = config.clone();
        spawn(&hub, "lw-detect", config.stall_after(), move || {
            detector::run(&shared, &config, registry, evidence_inbox, found_rx)
        })?
    });
    match opened_rx.recv() {
        Ok(Ok(())) => Ok((shared, threads)),
        Ok(Err(error)) => {
            shared.stop.store(true, Ordering::Relaxed);
            for thread in threads {
                let _ = thread.join();
            }
            Err(error)
        }
        Err(_) => Err(crate::Error::WriterDied),
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
        crate::health::beat();
        let now = Instant::now();
        if now >= *next {
            return;
        }
        std::thread::sleep((*next - now).min(Duration::from_millis(200)));
    }
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

#[cfg(test)]
mod caps_tests {
    #[test]
    fn the_effective_capabilities_are_read_from_status() {
        let status = "Name:\tx\nCapInh:\t0000000000000000\nCapEff:\t0000000000080004\n";
        let caps = super::effective_caps(status).unwrap();
        assert_eq!(caps & super::READ_EVERY_PROCESS, super::READ_EVERY_PROCESS);
        assert_eq!(super::effective_caps("CapEff:\tzz\n"), None);
        assert_eq!(super::effective_caps(""), None);
    }
}
