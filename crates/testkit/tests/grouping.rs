//! One leak, one finding (issue 12, "Root cause, consequences"), on real processes watched
//! by a real agent at 1 s with the fast preset: a CLOSE_WAIT leak is one finding rooted at
//! its TCP state (or peer) with the fd series attached as consequences; a thread leak is one
//! finding rooted at its thread group. Per-process maxima never show.

use leakwatch_testkit::*;
use serde_json::Value;
use std::net::TcpListener;
use std::process::Command;

/// Watches `target` until `done` holds for its findings, asserting on every poll that it
/// never has more than one finding and that no per-process maximum is one of them.
fn watch(agent: &Agent, target: &str, seconds: u64, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let mut seen = Vec::new();
    let ok = eventually(seconds, || {
        seen = agent.findings_of(target);
        assert!(
            seen.len() <= 1,
            "more than one finding for one leak: {seen:#?}"
        );
        assert!(
            seen.iter().all(|f| f["attribution"] != "max_process"),
            "{seen:#?}"
        );
        done(&seen)
    });
    assert!(ok, "{target}: not reached within {seconds}s: {seen:#?}");
    seen
}

#[test]
fn a_close_wait_leak_is_one_finding_with_its_fds_as_consequences() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    // The server closes every connection at once: the client keeps each in CLOSE_WAIT.
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            drop(stream);
        }
    });
    // The rule names this test's own server: another leaky process connecting elsewhere
    // (a parallel test, a benchmark's planted leak) is not part of this target.
    let agent = Agent::start(&format!(
        "[detect]\npreset = \"fast\"\n\
         [[target]]\nname = \"waiter\"\ncmdline = \"leak-connect={}:\"\n",
        addr.replace('.', "\\\\.")
    ));
    let _leaky = Leaky::start(&[&format!("leak-connect={addr}:200")]);
    let found = watch(&agent, "waiter", 120, |f| {
        f.len() == 1
            && consequence_labels(&f[0])
                .iter()
                .any(|l| l.starts_with("fds{"))
    });
    let root = &found[0];
    assert_eq!(root["kind"], "leak", "{root:#}");
    assert!(
        root["resource"] == "tcp" || root["resource"] == "tcp_peer",
        "rooted at {root:#}"
    );
    assert!(
        root["attribution"]
            .as_str()
            .unwrap()
            .starts_with("CLOSE_WAIT"),
        "{root:#}"
    );
    let summary = root["summary"].as_str().unwrap();
    assert!(
        summary.contains("; also: ") && summary.contains(", fds"),
        "{summary}"
    );
    // Counts are integers: no "+2.581" anywhere in the line.
    let also = summary.split("; also: ").nth(1).unwrap();
    for piece in also.split(", ") {
        let amount = piece.rsplit_once(" +").map_or("", |(_, amount)| amount);
        assert!(
            !amount.contains('.') || amount.ends_with("iB"),
            "{piece} in {summary}"
        );
    }
    // A few more detections later it is still one finding.
    std::thread::sleep(std::time::Duration::from_secs(4));
    watch(&agent, "waiter", 5, |f| f.len() == 1);

    // `leakwatch leaks` prints it as one entry, with its "also:".
    let url = format!("http://127.0.0.1:{}", agent.port);
    let out = Command::new(workspace_bin("leakwatch"))
        .args(["leaks", "--url", &url])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    let entries: Vec<&str> = text.lines().filter(|l| l.contains(" waiter ")).collect();
    assert_eq!(entries.len(), 1, "{text}");
    assert!(text.contains("also: "), "{text}");
    assert!(!text.contains("max_process"), "{text}");
}

#[test]
fn a_thread_leak_is_one_finding_rooted_at_its_thread_group() {
    let agent = Agent::start(
        "[detect]\npreset = \"fast\"\n\
         [[target]]\nname = \"spawner\"\ncmdline = \"leak-threads=Spawn\"\n",
    );
    let _leaky = Leaky::start(&["threads=Base:2", "leak-threads=Spawn:200"]);
    let found = watch(&agent, "spawner", 120, |f| {
        f.len() == 1 && f[0]["attribution"] == "Spawn-#"
    });
    assert_eq!(found[0]["resource"], "threads");
    assert_eq!(found[0]["kind"], "leak");
    // Its total and memory, when they leak too, are folded in; keep watching a while.
    std::thread::sleep(std::time::Duration::from_secs(5));
    let found = watch(&agent, "spawner", 5, |f| f.len() == 1);
    assert_eq!(found[0]["attribution"], "Spawn-#", "{found:#?}");
}
