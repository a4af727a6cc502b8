//! Evidence capture against real runtimes: a JVM with 40 leaked "Analytics-N" threads gets
//! its `jcmd Thread.print` dump and a thread listing naming the group; a Go service with
//! net/http/pprof gets its goroutine dump naming the leaking function, its leaking
//! goroutines traced to their creator, and its heap growth to its allocation site.

use leakwatch_agent::config::{EvidenceSection, TargetRule};
use leakwatch_agent::evidence::{capture, CaptureJob};
use leakwatch_detect::{Finding, FindingKind};
use leakwatch_testkit::{go_build, Jvm};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

fn finding(target: &str, resource: &str, attribution: &str) -> Finding {
    Finding {
        kind: FindingKind::Leak,
        state: leakwatch_detect::FindingState::Confirmed,
        resolution: None,
        key: leakwatch_detect::SeriesKey::from_text(target, resource, attribution),
        pids: vec![],
        processes: Vec::new(),
        current: 40.0,
        limit: None,
        rate_per_hour: 100.0,
        eta_seconds: None,
        eta_conservative_seconds: None,
        first_seen: 0.0,
        evidence_window: (0.0, 1.0),
        confidence: 0.99,
        p_value: 0.01,
        restarts: 0,
        summary: format!("{resource} {attribution} growing"),
        consequences: Vec::new(),
        evidence: None,
    }
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn first_line(child: &mut Child) -> String {
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    line.trim().to_string()
}

#[test]
fn a_jvm_gets_its_thread_dump() {
    let dir = tempfile::tempdir().unwrap();
    let java = Jvm::analytics(&["40"]);
    let pid = java.pid();
    let root = dir.path().join("incidents");
    let job = CaptureJob {
        id: "20260101-000000-analytics-threads-0001".into(),
        finding: finding("analytics", "threads", "Analytics-#"),
        pids: vec![pid],
        rule: None,
        output: None,
        created_ms: 0,
    };
    let meta = capture(
        &root,
        &dir.path().join("none.db"),
        &job,
        // The thread dump alone: no creation recording (its own test below).
        &EvidenceSection {
            creation_window: Duration::ZERO,
            ..EvidenceSection::default()
        },
        &AtomicBool::new(false),
    )
    .unwrap();
    eprintln!("JVM capture took {} ms", meta.capture_ms);
    let name = format!("jcmd-threads-{pid}.txt");
    let entry = meta
        .files
        .iter()
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("no {name}: {:?}", meta.files));
    assert!(entry.note.starts_with("exit 0"), "{entry:?}");
    let dump = std::fs::read_to_string(root.join(&job.id).join(&name)).unwrap();
    let analytics = dump
        .lines()
        .filter(|l| l.starts_with("\"Analytics-"))
        .count();
    assert_eq!(analytics, 40, "{dump}");
    let threads = std::fs::read_to_string(root.join(&job.id).join("threads.txt")).unwrap();
    assert!(threads.contains("[Analytics-#] 40 threads"), "{threads}");
}

/// A Go test program (`crates/testkit/go/NAME.go`) started with `args`, a rule naming its
/// pprof endpoint, and the capture of `finding` made against it after `settle`.
struct GoCapture {
    dir: tempfile::TempDir,
    meta: leakwatch_agent::evidence::IncidentMeta,
    folder: std::path::PathBuf,
}

impl GoCapture {
    fn run(
        name: &str,
        args: &[&str],
        settle: Duration,
        finding: Finding,
        settings: EvidenceSection,
    ) -> GoCapture {
        let dir = tempfile::tempdir().unwrap();
        let binary = go_build(dir.path(), name);
        let mut service = Killed(
            Command::new(&binary)
                .args(args)
                .stdout(Stdio::piped())
                .spawn()
                .unwrap(),
        );
        let ready = first_line(&mut service.0);
        let port = ready.strip_prefix("ready ").expect("ready PORT");
        let rule: TargetRule = toml::from_str(&format!(
            "name = \"{}\"\ncomm = \"{name}\"\npprof_url = \"http://127.0.0.1:{port}\"\n",
            finding.key.target
        ))
        .unwrap();
        // As it had grown by the time a leak was found.
        std::thread::sleep(settle);
        let root = dir.path().join("incidents");
        let job = CaptureJob {
            id: format!("20260101-000000-{}-0001", finding.key.target),
            finding,
            pids: vec![service.0.id()],
            rule: Some(rule),
            output: None,
            created_ms: 0,
        };
        let settings = EvidenceSection {
            timeout: Duration::from_secs(10),
            ..settings
        };
        let meta = capture(
            &root,
            &dir.path().join("none.db"),
            &job,
            &settings,
            &AtomicBool::new(false),
        )
        .unwrap();
        eprintln!("Go capture took {} ms", meta.capture_ms);
        let folder = root.join(&job.id);
        GoCapture { dir, meta, folder }
    }

    fn file(&self, name: &str) -> String {
        std::fs::read_to_string(self.folder.join(name))
            .unwrap_or_else(|e| panic!("{name}: {e} ({:?})", self.meta.files))
    }
}

#[test]
fn a_go_service_gets_its_goroutine_dump() {
    let go = GoCapture::run(
        "pprofleak",
        &["37"],
        Duration::ZERO,
        finding("gosvc", "memory", "anon"),
        EvidenceSection {
            heap_interval: Duration::ZERO,
            ..EvidenceSection::default()
        },
    );
    let entry = go
        .meta
        .files
        .iter()
        .find(|f| f.name == "goroutines.txt")
        .unwrap_or_else(|| panic!("no goroutines.txt: {:?}", go.meta.files));
    assert!(entry.note.starts_with("ok"), "{entry:?}");
    let dump = go.file("goroutines.txt");
    let leaked = dump.matches("main.leakyWait(").count();
    assert_eq!(leaked, 37, "{dump}");
    assert!(go.dir.path().exists());
}

/// Issue 14, Go: a service whose request handler starts a goroutine 20 times a second that
/// never ends (incident 002). Its leak's `creation.txt` (two goroutine dumps 3 s apart)
/// puts the goroutines created by `main.handle` first, and the summary says so.
#[test]
fn a_go_goroutine_leak_is_traced_to_its_creator() {
    let go = GoCapture::run(
        "pprofleak",
        &["5", "20"],
        Duration::from_secs(1),
        finding("gosvc", "threads", ""),
        EvidenceSection {
            creation_window: Duration::from_secs(3),
            ..EvidenceSection::default()
        },
    );
    let creation = go.file("creation.txt");
    eprintln!("{creation}");
    let first = creation
        .lines()
        .skip_while(|l| !l.contains("created by (where)"))
        .nth(1)
        .unwrap_or_default()
        .to_string();
    assert!(
        first.contains("main.handle (pprofleak.go:")
            && first.ends_with("-> main.leakyWait [chan receive]"),
        "{first:?}\n{creation}"
    );
    let growth: i64 = first.split_whitespace().next().unwrap().parse().unwrap();
    assert!((30..=100).contains(&growth), "{growth}: {first}");
    assert!(go
        .file("goroutines-2.txt")
        .contains("created by main.handle"));
    // Nearly all: an HTTP connection's goroutine may come and go meanwhile.
    let share: f64 = go
        .meta
        .summary
        .split_once("; goroutine leak: ")
        .and_then(|(_, rest)| rest.split_once("% of"))
        .and_then(|(n, _)| n.parse().ok())
        .unwrap_or(0.0);
    assert!(
        share >= 90.0
            && go
                .meta
                .summary
                .contains("created by main.handle (pprofleak.go:"),
        "{}",
        go.meta.summary
    );
    assert_eq!(
        go.meta.evidence.as_deref(),
        go.meta.summary.split("; ").last()
    );
}

/// Issue 18, Go: a service whose cache keeps a new 64 KiB buffer 50 times a second. The
/// memory leak's `heap-growth.txt` holds its two heap profiles 5 s apart, decoded, with the
/// allocation site `main.remember` first, and the summary line names it.
#[test]
fn a_go_memory_leak_is_named_by_its_allocation_site() {
    let go = GoCapture::run(
        "heapleak",
        &[],
        Duration::from_secs(2),
        finding("gocache", "memory", "anon"),
        EvidenceSection {
            heap_interval: Duration::from_secs(5),
            ..EvidenceSection::default()
        },
    );
    let growth = go.file("heap-growth.txt");
    eprintln!("{growth}");
    let first_site = growth
        .lines()
        .skip_while(|l| !l.starts_with("Go heap by allocation site"))
        .nth(2)
        .unwrap_or_default()
        .to_string();
    assert!(
        first_site.contains("main.remember"),
        "{first_site:?}\n{growth}"
    );
    for name in ["heap-profile-1.pb.gz", "heap-profile-2.pb.gz"] {
        let bytes = std::fs::read(go.folder.join(name)).unwrap();
        assert!(bytes.starts_with(&[0x1f, 0x8b]), "{name} is not gzipped");
    }
    assert!(
        go.meta.summary.contains("; memory leak: main.remember"),
        "{}",
        go.meta.summary
    );
}

/// Issue 14, JVM: a JVM starting a new `Analytics-N` pool thread every 100 ms from
/// `Analytics.request()`. The thread leak's `creation.txt` (a 5 s JFR recording of thread
/// starts) traces nearly all new `Analytics-#` threads to `Analytics.request`, past the
/// JDK's own `ThreadPoolExecutor` frames, and the summary says so.
#[test]
fn a_jvm_thread_leak_is_traced_to_its_creation_site() {
    let dir = tempfile::tempdir().unwrap();
    let java = Jvm::analytics(&["0", "100"]);
    let pid = java.pid();
    let root = dir.path().join("incidents");
    let job = CaptureJob {
        id: "20260101-000000-analytics-threads-0002".into(),
        finding: finding("analytics", "threads", "Analytics-#"),
        pids: vec![pid],
        rule: None,
        output: None,
        created_ms: 0,
    };
    let settings = EvidenceSection {
        creation_window: Duration::from_secs(5),
        ..EvidenceSection::default()
    };
    let meta = capture(
        &root,
        &dir.path().join("none.db"),
        &job,
        &settings,
        &AtomicBool::new(false),
    )
    .unwrap();
    let folder = root.join(&job.id);
    let creation = std::fs::read_to_string(folder.join("creation.txt")).unwrap();
    eprintln!("{creation}");
    assert!(creation.starts_with(&format!("pid {pid}: ")), "{creation}");
    // About 50 starts in 5 s; the first listed site is the request's.
    let first_site = creation
        .lines()
        .find(|l| l.contains('%'))
        .unwrap_or_default()
        .to_string();
    assert!(
        first_site.contains("Analytics.request <- Analytics.lambda$main$"),
        "{first_site:?}\n{creation}"
    );
    let share: f64 = first_site
        .split('%')
        .next()
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(share >= 90.0, "{first_site}");
    assert!(creation.contains("java.util.concurrent.ThreadPoolExecutor.addWorker"));
    let recording = meta
        .files
        .iter()
        .find(|f| f.name == format!("creation-{pid}.jfr"))
        .expect("the recording is kept");
    assert!(recording.bytes > 1000, "{recording:?}");
    assert!(
        meta.summary
            .contains("% of new Analytics-# threads were started from Analytics.request <- "),
        "{}",
        meta.summary
    );
}

/// Issue 14, Python: CPython keeps no record of who started a thread. A thread leak in a
/// CPython process gets a `creation.txt` that says so and what can be had instead, and no
/// guessed line in the summary.
#[test]
fn a_python_thread_leak_says_its_creation_site_cannot_be_read() {
    let dir = tempfile::tempdir().unwrap();
    let mut python = Killed(
        Command::new("python3")
            .args([
                "-c",
                "import threading, time\n\
                 for _ in range(5): threading.Thread(target=time.sleep, args=(600,)).start()\n\
                 print('ready', flush=True)\n\
                 time.sleep(600)\n",
            ])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    assert_eq!(first_line(&mut python.0), "ready");
    let root = dir.path().join("incidents");
    let job = CaptureJob {
        id: "20260101-000000-py-threads-0001".into(),
        finding: finding("py", "threads", "python3"),
        pids: vec![python.0.id()],
        rule: None,
        output: None,
        created_ms: 0,
    };
    let meta = capture(
        &root,
        &dir.path().join("none.db"),
        &job,
        &EvidenceSection::default(),
        &AtomicBool::new(false),
    )
    .unwrap();
    let creation = std::fs::read_to_string(root.join(&job.id).join("creation.txt")).unwrap();
    assert!(
        creation.contains(&format!("pid {} runs CPython (python3", python.0.id()))
            && creation.contains("cannot be read from outside the process"),
        "{creation}"
    );
    assert_eq!(meta.evidence, None);
    assert_eq!(meta.summary, "threads python3 growing");
}

#[test]
fn a_native_thread_leak_is_traced_to_its_creation_site_when_configured() {
    let dir = tempfile::tempdir().unwrap();
    let leaky = leakwatch_testkit::Leaky::start(&["leak-threads=Tick:20"]);
    let root = dir.path().join("incidents");
    let job = |id: &str| CaptureJob {
        id: id.into(),
        finding: finding("leaky", "threads", "Tick-#"),
        pids: vec![leaky.pid()],
        rule: None,
        output: None,
        created_ms: 0,
    };
    // Off by default: no trace, no creation.txt.
    let off = job("20260101-000000-leaky-threads-0001");
    let meta = capture(
        &root,
        &dir.path().join("none.db"),
        &off,
        &EvidenceSection::default(),
        &AtomicBool::new(false),
    )
    .unwrap();
    assert!(!root.join(&off.id).join("creation.txt").exists());
    assert_eq!(meta.evidence, None);
    // `creation_sites = true`: an eBPF trace for `creation_window`.
    let settings = EvidenceSection {
        creation_sites: true,
        creation_window: Duration::from_secs(2),
        ..EvidenceSection::default()
    };
    let on = job("20260101-000000-leaky-threads-0002");
    let meta = capture(
        &root,
        &dir.path().join("none.db"),
        &on,
        &settings,
        &AtomicBool::new(false),
    )
    .unwrap();
    let creation = std::fs::read_to_string(root.join(&on.id).join("creation.txt")).unwrap();
    assert!(
        creation.starts_with(&format!("eBPF trace of pid {} for 2 s", leaky.pid())),
        "{creation}"
    );
    let line = meta.evidence.expect("the creation site's line");
    assert!(
        line.starts_with("100% of the ")
            && line.contains(" new threads still running after 2 s were started from leaky::spawn_named (leaky.rs:"),
        "{line}"
    );
    assert!(meta.summary.ends_with(&line), "{}", meta.summary);
}
