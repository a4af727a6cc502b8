//! Memory leaks named by what grows (issue 18): a real JVM leaking a memoize cache is found
//! by a real agent, whose incident holds `heap-growth.txt` — two class histograms 10 s apart
//! and their difference — naming the map's node class first, and the one line in the
//! incident's summary, on the finding, in `leakwatch leaks` and in an `evidence`
//! notification of its alert. Asked for a heap dump, the agent dumps that JVM and refuses
//! to dump a second one whose heap is full, saying why.

use leakwatch_testkit::http::webhook_receiver;
use leakwatch_testkit::*;

/// The Memo JVM (incident 004 in miniature): `heap` are its heap options, `args` its own.
fn memo_jvm(heap: &[&str], args: &[&str]) -> Jvm {
    let mut options = vec!["-Dlw.test=heap-growth", "-XX:+UseSerialGC"];
    options.extend_from_slice(heap);
    Jvm::start("Memo", &options, args)
}

#[test]
fn a_leaking_memo_cache_is_named_by_its_class() {
    let started = std::time::Instant::now();
    let (hook, bodies) = webhook_receiver();
    let agent = Agent::start(&format!(
        "[detect]\npreset = \"fast\"\n\
         [evidence]\nheap_interval = \"10s\"\n\
         [[target]]\nname = \"memo\"\ncmdline = \"lw.test=heap-growth\"\n\
         [alerts]\npending_for = \"0s\"\n\
         [alerts.routes]\nwarning = [\"hook\"]\ncritical = [\"hook\"]\n\
         [alerts.channels.hook]\ntype = \"webhook\"\nurl = \"http://127.0.0.1:{hook}/hook\"\n"
    ));
    // A JVM whose heap is full and held there, in the same target: its heap is never
    // dumped. Started first, so its own filling is over before the leak is judged.
    let full = memo_jvm(&["-Xms64m", "-Xmx64m"], &["fill"]);
    // The heap is bounded (1 GiB at 4.8 MB/s lasts minutes): no risk to the host.
    let jvm = memo_jvm(&["-Xms64m", "-Xmx1g"], &[]);
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
    // The first class under the leaking JVM's heading is the map's node.
    let section = &growth[growth
        .find(&format!("pid {pid}: "))
        .expect("the leaking JVM's part")..];
    let first_class = section
        .lines()
        .skip_while(|l| !l.starts_with("JVM heap by class"))
        .nth(2)
        .unwrap_or_default()
        .to_string();
    assert!(
        first_class.trim_end().ends_with("java.util.HashMap$Node"),
        "{first_class:?}\n{growth}"
    );
    assert!(growth.contains(&format!("pid {pid}: ")), "{growth}");
    assert!(growth.contains("resident memory by mapping"), "{growth}");
    assert!(
        section.contains("JVM heap (jcmd PerfCounter.print): maximum 1"),
        "{section}"
    );
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

    // The finding carries the line (the detector learns it from the capture) ...
    let line = |f: &serde_json::Value| f["evidence"].as_str().unwrap_or_default().to_string();
    let mut finding = serde_json::Value::Null;
    assert!(
        eventually(30, || {
            finding = agent
                .findings_of("memo")
                .into_iter()
                .find(|f| f["resource"] == "memory" && f["state"] == "confirmed")
                .unwrap_or_default();
            line(&finding).starts_with("memory leak: java.util.HashMap$Node +")
        }),
        "the finding has no evidence line: {finding}"
    );
    // ... `leakwatch leaks` prints it ...
    let leaks = std::process::Command::new(workspace_bin("leakwatch"))
        .args(["leaks", "--url", &agent.url()])
        .output()
        .unwrap();
    let leaks = String::from_utf8_lossy(&leaks.stdout).into_owned();
    assert!(leaks.contains(&line(&finding)), "{leaks}");
    // ... and the alert that fired before the capture was done says it in a notification
    // of its own, once.
    let evidence_notes = || -> Vec<serde_json::Value> {
        bodies
            .lock()
            .unwrap()
            .iter()
            .filter_map(|b| serde_json::from_str::<serde_json::Value>(b).ok())
            .filter(|v| v["alert"]["target"] == "memo" && v["reason"] == "evidence")
            .collect()
    };
    assert!(
        eventually(30, || !evidence_notes().is_empty()),
        "no evidence notification: {:?}",
        bodies.lock().unwrap()
    );
    let note = &evidence_notes()[0];
    let summary = note["alert"]["summary"].as_str().unwrap_or_default();
    assert!(
        summary.ends_with(&format!("; {}", line(&finding))),
        "{summary}"
    );
    assert!(note["text"]
        .as_str()
        .unwrap_or_default()
        .starts_with("[EVIDENCE "));

    // A heap dump on request: the leaking JVM is dumped; the full one is refused.
    let out = std::process::Command::new(workspace_bin("leakwatch"))
        .args([
            "incident",
            id,
            "--capture",
            "heap-dump",
            "--wait",
            "3m",
            "--url",
            &agent.url(),
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    eprintln!("{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{text}");
    let full_pid = full.child.id();
    assert!(
        text.contains(&format!("pid {full_pid}: refused: the heap is "))
            && text.contains("% full")
            && text.contains("incident 004"),
        "{text}"
    );
    assert!(
        text.contains(&format!("pid {pid}: heap dump written in ")),
        "{text}"
    );
    let meta = agent
        .get_json(&format!("/api/v1/incidents/{id}"))
        .unwrap_or_default();
    let dump = meta["files"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|f| {
            f["name"]
                .as_str()
                .is_some_and(|n| n.ends_with(&format!("-{pid}.hprof")))
        })
        .cloned()
        .unwrap_or_default();
    assert!(dump["bytes"].as_u64().unwrap_or(0) > 1 << 20, "{meta}");
    let path =
        std::path::Path::new(meta["dir"].as_str().unwrap()).join(dump["name"].as_str().unwrap());
    let mut magic = [0u8; 12];
    use std::io::Read;
    std::fs::File::open(&path)
        .unwrap()
        .read_exact(&mut magic)
        .unwrap();
    assert_eq!(&magic, b"JAVA PROFILE", "{}", path.display());
    // Nothing is left behind in the JVM's /tmp.
    assert!(!std::fs::read_dir("/tmp").unwrap().flatten().any(|e| e
        .file_name()
        .to_string_lossy()
        .starts_with("leakwatch-heap-dump-")));
    drop(full);
}
