//! Memory leaks named by what grows (issue 18): a real JVM leaking a memoize cache is found
//! by a real agent, whose incident holds `heap-growth.txt` — two class histograms 10 s apart
//! and their difference — naming the map's node class first, and the one line in the
//! incident's summary.

use leakwatch_testkit::*;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// The JVM, killed on drop, and its classes' directory, removed after it.
struct Jvm {
    child: Child,
    _classes: tempfile::TempDir,
}

impl Drop for Jvm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn memo_jvm() -> Jvm {
    if Command::new("javac").arg("-version").output().is_err() {
        panic!("javac not found: install openjdk-17-jdk-headless (see .ci/run)");
    }
    let classes = tempfile::tempdir().unwrap();
    let source = concat!(env!("CARGO_MANIFEST_DIR"), "/java/Memo.java");
    let status = Command::new("javac")
        .args(["-d", classes.path().to_str().unwrap(), source])
        .status()
        .unwrap();
    assert!(status.success(), "javac failed");
    // The heap is bounded (1 GiB at 4.8 MB/s lasts minutes): no risk to the host.
    let mut child = Command::new("java")
        .args([
            "-Dlw.test=heap-growth",
            "-Xms64m",
            "-Xmx1g",
            "-XX:+UseSerialGC",
            "-cp",
            classes.path().to_str().unwrap(),
            "Memo",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready", "the JVM did not start");
    Jvm {
        child,
        _classes: classes,
    }
}

#[test]
fn a_leaking_memo_cache_is_named_by_its_class() {
    let started = std::time::Instant::now();
    let agent = Agent::start(
        "[detect]\npreset = \"fast\"\n\
         [evidence]\nheap_interval = \"10s\"\n\
         [[target]]\nname = \"memo\"\ncmdline = \"lw.test=heap-growth\"\n",
    );
    let jvm = memo_jvm();
    let pid = jvm.child.id();
    // An incident of the target whose capture is complete.
    let mut incident = None;
    let found = eventually(180, || {
        let list = agent.get_json("/api/v1/incidents").unwrap_or_default();
        incident = list["incidents"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|i| i["target"] == "memo" && i["status"] == "complete")
            .cloned();
        incident.is_some()
    });
    assert!(
        found,
        "no complete incident: {:?} / {:?}",
        agent.get_json("/api/v1/incidents"),
        agent.get_json("/api/v1/findings")
    );
    let incident = incident.unwrap();
    let id = incident["id"].as_str().unwrap();
    assert_eq!(incident["resource"], "memory", "{incident}");
    let growth = agent
        .get_text(&format!("/api/v1/incidents/{id}/files/heap-growth.txt"))
        .expect("heap-growth.txt");
    eprintln!("{growth}");
    // The first class under the JVM heading is the map's node.
    let first_class = growth
        .lines()
        .skip_while(|l| !l.starts_with("JVM heap by class"))
        .nth(2)
        .unwrap_or_default()
        .to_string();
    assert!(
        first_class.trim_end().ends_with("java.util.HashMap$Node"),
        "{first_class:?}\n{growth}"
    );
    assert!(growth.starts_with(&format!("pid {pid}: ")), "{growth}");
    assert!(growth.contains("resident memory by mapping"), "{growth}");
    for n in [1, 2] {
        let raw = agent
            .get_text(&format!(
                "/api/v1/incidents/{id}/files/class-histogram-{pid}-{n}.txt"
            ))
            .expect("raw histogram");
        assert!(raw.contains("java.util.HashMap$Node"), "{raw}");
    }
    let summary = incident["summary"].as_str().unwrap_or_default();
    assert!(
        summary.contains("; memory leak: java.util.HashMap$Node +")
            && summary.contains("% of heap growth)"),
        "{summary}"
    );
    eprintln!("heap growth: {:.1}s", started.elapsed().as_secs_f64());
}
