//! Evidence capture against real runtimes: a JVM with 40 leaked "Analytics-N" threads gets
//! its `jcmd Thread.print` dump and a thread listing naming the group; a Go service with
//! net/http/pprof gets its goroutine dump naming the leaking function.

use leakwatch_agent::config::{EvidenceSection, TargetRule};
use leakwatch_agent::evidence::{capture, CaptureJob};
use leakwatch_detect::{Finding, FindingKind};
use leakwatch_testkit::AnalyticsJvm;
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
    let java = AnalyticsJvm::start(&["40"]);
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

/// Builds `go/NAME.go` into `dir`.
fn go_build(dir: &std::path::Path, name: &str) -> std::path::PathBuf {
    let binary = dir.join(name);
    let built = Command::new("go")
        .args(["build", "-o"])
        .arg(&binary)
        .arg(format!("{}/go/{name}.go", env!("CARGO_MANIFEST_DIR")))
        .env("GOCACHE", std::env::temp_dir().join("leakwatch-go-cache"))
        .env("GOFLAGS", "-mod=mod")
        .env("GO111MODULE", "off")
        .output()
        .unwrap_or_else(|e| panic!("go not found ({e}): install golang-go (see .ci/run)"));
    assert!(built.status.success(), "go build failed: {built:?}");
    binary
}

#[test]
fn a_go_service_gets_its_goroutine_dump() {
    let dir = tempfile::tempdir().unwrap();
    let binary = go_build(dir.path(), "pprofleak");
    let mut service = Killed(
        Command::new(&binary)
            .arg("37")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let ready = first_line(&mut service.0);
    let port = ready.strip_prefix("ready ").expect("ready PORT");
    let rule: TargetRule = toml::from_str(&format!(
        "name = \"gosvc\"\ncomm = \"pprofleak\"\npprof_url = \"http://127.0.0.1:{port}\"\n"
    ))
    .unwrap();
    let root = dir.path().join("incidents");
    let job = CaptureJob {
        id: "20260101-000000-gosvc-fds-0001".into(),
        finding: finding("gosvc", "fds", "pipe"),
        pids: vec![service.0.id()],
        rule: Some(rule),
        output: None,
        created_ms: 0,
    };
    let settings = EvidenceSection {
        timeout: Duration::from_secs(10),
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
    eprintln!("Go capture took {} ms", meta.capture_ms);
    let entry = meta
        .files
        .iter()
        .find(|f| f.name == "goroutines.txt")
        .unwrap_or_else(|| panic!("no goroutines.txt: {:?}", meta.files));
    assert!(entry.note.starts_with("ok"), "{entry:?}");
    let dump = std::fs::read_to_string(root.join(&job.id).join("goroutines.txt")).unwrap();
    let leaked = dump.matches("main.leakyWait(").count();
    assert_eq!(leaked, 37, "{dump}");
}

/// Issue 18, Go: a service whose cache keeps a new 64 KiB buffer 50 times a second. The
/// memory leak's `heap-growth.txt` holds its two heap profiles 5 s apart, decoded, with the
/// allocation site `main.remember` first, and the summary line names it.
#[test]
fn a_go_memory_leak_is_named_by_its_allocation_site() {
    let dir = tempfile::tempdir().unwrap();
    let binary = go_build(dir.path(), "heapleak");
    let mut service = Killed(
        Command::new(&binary)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let ready = first_line(&mut service.0);
    let port = ready.strip_prefix("ready ").expect("ready PORT");
    let rule: TargetRule = toml::from_str(&format!(
        "name = \"gocache\"\ncomm = \"heapleak\"\npprof_url = \"http://127.0.0.1:{port}\"\n"
    ))
    .unwrap();
    // Let the cache grow a little first, as it had by the time a leak was found.
    std::thread::sleep(Duration::from_secs(2));
    let root = dir.path().join("incidents");
    let job = CaptureJob {
        id: "20260101-000000-gocache-memory-0001".into(),
        finding: finding("gocache", "memory", "anon"),
        pids: vec![service.0.id()],
        rule: Some(rule),
        output: None,
        created_ms: 0,
    };
    let settings = EvidenceSection {
        timeout: Duration::from_secs(10),
        heap_interval: Duration::from_secs(5),
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
    let growth = std::fs::read_to_string(folder.join("heap-growth.txt")).unwrap();
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
        let bytes = std::fs::read(folder.join(name)).unwrap();
        assert!(bytes.starts_with(&[0x1f, 0x8b]), "{name} is not gzipped");
    }
    assert!(
        meta.summary.contains("; memory leak: main.remember"),
        "{}",
        meta.summary
    );
}

/// Issue 14, JVM: a JVM starting a new `Analytics-N` pool thread every 100 ms from
/// `Analytics.request()`. The thread leak's `creation.txt` (a 5 s JFR recording of thread
/// starts) traces nearly all new `Analytics-#` threads to `Analytics.request`, past the
/// JDK's own `ThreadPoolExecutor` frames, and the summary says so.
#[test]
fn a_jvm_thread_leak_is_traced_to_its_creation_site() {
    let dir = tempfile::tempdir().unwrap();
    let java = AnalyticsJvm::start(&["0", "100"]);
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
