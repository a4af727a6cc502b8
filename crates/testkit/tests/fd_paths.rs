//! File fds grouped by path (issue 13 part 3), on a real process watched by a real agent at
//! 1 s with the fast preset: a Python worker that leaks append handles to one log file gets
//! ONE finding naming that file (`fds file …/orders/order-audit.log`), rooted at the path
//! group with `fds{file}` and `fds` attached as consequences, forecast against
//! RLIMIT_NOFILE. Its numbered temp files are one group `upload-#.tmp`. The sampler's count
//! per path group is checked against the test's own count of `/proc/PID/fd` links.

use leakwatch_proc::{Options, Sampler, Selection};
use leakwatch_testkit::*;
use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// Opens a new append handle to `orders/order-audit.log` every 100 ms and never closes it
/// (up to 1,500), after holding four `upload-<n>.tmp` files. Raises its soft RLIMIT_NOFILE
/// to 2,048 (or its hard limit) so the leak runs for minutes, not seconds.
const WORKER: &str = r#"
import os, resource, sys, time
base = sys.argv[2]
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
want = 2048 if hard == resource.RLIM_INFINITY else min(2048, hard)
resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
held = [open(os.path.join(base, "upload-%d.tmp" % n), "w") for n in (3, 17, 123, 4096)]
log = os.path.join(base, "orders", "order-audit.log")
print("ready", flush=True)
while True:
    if len(held) < 1500:
        held.append(open(log, "ab", buffering=0))  # unbuffered: no 8 KiB per handle
    time.sleep(0.1)
"#;

/// A directory under /tmp whose name has no digits (so its path group is itself), removed
/// on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Scratch {
        // Letters only: the pid and the time spelled with g..p (no hex digit, no digit).
        let letters = |n: u128| -> String {
            n.to_string()
                .bytes()
                .map(|d| char::from(b'g' + (d - b'0')))
                .collect()
        };
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir = PathBuf::from(format!(
            "/tmp/leakwatch-fdpaths-{}-{}",
            letters(u128::from(std::process::id())),
            letters(nanos % 1_000_000_000_000)
        ));
        std::fs::create_dir_all(dir.join("orders")).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct Worker(Child);

impl Worker {
    fn start(dir: &Path) -> Worker {
        let mut child = Command::new("python3")
            .args(["-c", WORKER, "fd-paths-worker"])
            .arg(dir)
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready", "worker did not start");
        Worker(child)
    }
    fn pid(&self) -> u32 {
        self.0.id()
    }
    fn signal(&self, signal: i32) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.0.id() as i32, signal) };
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.signal(libc::SIGCONT);
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The oracle: `/proc/PID/fd` links that name `file` exactly, read with `std::fs`.
fn links_to(pid: u32, file: &Path) -> u32 {
    let mut n = 0;
    for entry in std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap() {
        if std::fs::read_link(entry.unwrap().path()).is_ok_and(|link| link == file) {
            n += 1;
        }
    }
    n
}

/// `/proc/PID/fd` links to files named `upload-<digits>.tmp` in `dir`, matched by hand.
fn uploads(pid: u32, dir: &Path) -> u32 {
    let mut n = 0;
    for entry in std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap() {
        let Ok(link) = std::fs::read_link(entry.unwrap().path()) else {
            continue;
        };
        if link.parent() != Some(dir) {
            continue;
        }
        let name = link.file_name().unwrap().to_string_lossy().into_owned();
        let digits = name
            .strip_prefix("upload-")
            .and_then(|rest| rest.strip_suffix(".tmp"));
        if digits.is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit())) {
            n += 1;
        }
    }
    n
}

#[test]
fn a_log_file_handle_leak_is_one_finding_naming_the_file() {
    let scratch = Scratch::new();
    let log = scratch.0.join("orders").join("order-audit.log");
    let log_group = log.to_str().unwrap().to_string();
    let upload_group = format!("{}/upload-#.tmp", scratch.0.display());

    let agent = Agent::start(
        "[detect]\npreset = \"fast\"\n\
         [[target]]\nname = \"auditor\"\ncmdline = \"fd-paths-worker\"\n",
    );
    let worker = Worker::start(&scratch.0);
    let pid = worker.pid();

    // The sampler against the oracle, with the worker stopped so the fd table holds still;
    // then again after it leaked more: the targets are re-read because the count changed.
    let mut sampler =
        Sampler::new(Options::default(), Selection::Pids(HashSet::from([pid]))).unwrap();
    for _ in 0..2 {
        std::thread::sleep(std::time::Duration::from_millis(700));
        worker.signal(libc::SIGSTOP);
        std::thread::sleep(std::time::Duration::from_millis(50));
        let sample = sampler.sample().unwrap();
        let process = sample
            .processes
            .iter()
            .find(|p| p.identity.pid == pid)
            .expect("worker sampled");
        let count_of = |name: &str| {
            process
                .fds
                .paths
                .iter()
                .find(|g| g.name == name)
                .map(|g| g.count)
        };
        let expected = links_to(pid, &log);
        assert!(expected >= 1);
        assert_eq!(count_of(&log_group), Some(expected), "{:#?}", process.fds);
        assert_eq!(count_of(&upload_group), Some(uploads(pid, &scratch.0)));
        assert_eq!(count_of(&upload_group), Some(4));
        // The path groups are the file fds (python3 may hold a few files of its own).
        let files = process.fds.by_kind[&leakwatch_proc::FdKind::File];
        let grouped: u32 = process.fds.paths.iter().map(|g| g.count).sum();
        assert_eq!(grouped, files, "{:#?}", process.fds);
        worker.signal(libc::SIGCONT);
    }

    // The agent: one finding for the target, rooted at the log file's path group.
    let mut seen = Vec::new();
    let ok = eventually(150, || {
        seen = agent.findings_of("auditor");
        assert!(
            seen.len() <= 1,
            "more than one finding for one leak: {seen:#?}"
        );
        assert!(
            seen.iter().all(|f| f["attribution"] != "max_process"),
            "{seen:#?}"
        );
        seen.len() == 1
            && seen[0]["attribution"] == log_group.as_str()
            && consequence_labels(&seen[0]).len() >= 2
    });
    assert!(ok, "no finding rooted at {log_group}: {seen:#?}");
    let root = &seen[0];
    assert_eq!(root["kind"], "leak", "{root:#}");
    assert_eq!(root["resource"], "fds", "{root:#}");
    let labels = consequence_labels(root);
    assert!(labels.contains(&"fds{file}".to_string()), "{labels:?}");
    assert!(labels.contains(&"fds{}".to_string()), "{labels:?}");
    let summary = root["summary"].as_str().unwrap();
    assert!(
        summary.starts_with(&format!("fds file {log_group} +")),
        "{summary}"
    );
    assert!(summary.contains("RLIMIT_NOFILE"), "{summary}");
    assert!(summary.contains("also: fds file +"), "{summary}");

    // The agent's own series for the group matches the oracle once the worker holds still.
    worker.signal(libc::SIGSTOP);
    let expected = links_to(pid, &log);
    let current = |agent: &Agent| -> Option<f64> {
        let targets = agent.get_json("/api/v1/targets")?;
        targets["targets"]
            .as_array()?
            .iter()
            .find(|t| t["name"] == "auditor")?["current"][format!("fds{{{log_group}}}")]
        .as_f64()
    };
    assert!(
        eventually(10, || current(&agent) == Some(f64::from(expected))),
        "agent's fds{{{log_group}}} = {:?}, /proc says {expected}",
        current(&agent)
    );
    worker.signal(libc::SIGCONT);

    // `leakwatch leaks` prints it as one entry naming the file, with its "also:".
    let out = Command::new(workspace_bin("leakwatch"))
        .args(["leaks", "--url", &agent.url()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    let entries: Vec<&str> = text.lines().filter(|l| l.contains(" auditor ")).collect();
    assert_eq!(entries.len(), 1, "{text}");
    assert!(text.contains(&format!("fds file {log_group}")), "{text}");
    assert!(text.contains("also: "), "{text}");
    drop(worker);
}
