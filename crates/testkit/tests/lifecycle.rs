//! The lifecycle of a finding on a real agent and a real leaking process (issue 12,
//! docs/detection.md "Lifecycle"): a thread leak is first *suspected* (its life is younger
//! than `confirm_samples`, 60 samples with the fast preset) and not alerted; it is
//! *confirmed* and alerted once the life is old enough; when the process is killed the
//! finding resolves at once ("process exited at ..., last value N"), stops forecasting, and
//! its alert resolves with that reason long before `resolve_after` (10 minutes).

use leakwatch_testkit::http::webhook_receiver;
use leakwatch_testkit::{eventually, Agent, Leaky};
use serde_json::Value;
use std::time::Instant;

/// The target's thread-group leak, as `/api/v1/findings` lists it.
fn group_finding(agent: &Agent) -> Option<Value> {
    agent
        .get_json("/api/v1/findings")?
        .get("findings")?
        .as_array()?
        .iter()
        .find(|f| f["target"] == "lifer" && f["kind"] == "leak")
        .cloned()
}

fn hook_bodies(bodies: &std::sync::Mutex<Vec<String>>) -> Vec<Value> {
    bodies
        .lock()
        .unwrap()
        .iter()
        .filter_map(|b| serde_json::from_str::<Value>(b).ok())
        .filter(|v| v["alert"]["target"] == "lifer")
        .collect()
}

#[test]
fn a_leak_is_suspected_then_confirmed_then_resolved_when_its_process_exits() {
    let (hook, bodies) = webhook_receiver();
    let agent = Agent::start(&format!(
        "[detect]\npreset = \"fast\"\n\
         [[target]]\nname = \"lifer\"\ncmdline = \"leak-threads=Lifer\"\n\
         [alerts]\npending_for = \"0s\"\n\
         [alerts.routes]\nwarning = [\"hook\"]\ncritical = [\"hook\"]\n\
         [alerts.channels.hook]\ntype = \"webhook\"\nurl = \"http://127.0.0.1:{hook}/hook\"\n"
    ));
    // Ten threads a second: no limit near (threads-max is far), so nothing is urgent.
    let mut leaky = Leaky::start(&["threads=Base:2", "leak-threads=Lifer:100"]);
    let started = Instant::now();

    // Suspected first, and not alerted while suspected.
    assert!(
        eventually(90, || group_finding(&agent).is_some_and(|f| f["state"]
            == "suspected"
            || f["state"] == "confirmed")),
        "no finding: {:?}",
        agent.get_json("/api/v1/findings")
    );
    let first = group_finding(&agent).unwrap();
    assert_eq!(first["state"], "suspected", "{first}");
    let suspected_after = started.elapsed().as_secs();
    assert!(
        hook_bodies(&bodies).is_empty(),
        "alerted while suspected: {:?}",
        hook_bodies(&bodies)
    );
    let out = std::process::Command::new(leakwatch_testkit::workspace_bin("leakwatch"))
        .args(["leaks", "--url", &agent.url()])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("(suspected"),
        "{out:?}"
    );

    // Confirmed once the life spans 60 samples; then alerted, as confirmed.
    assert!(
        eventually(90, || group_finding(&agent)
            .is_some_and(|f| f["state"] == "confirmed")),
        "never confirmed: {:?}",
        group_finding(&agent)
    );
    let confirmed_after = started.elapsed().as_secs();
    assert!(
        confirmed_after >= 55,
        "confirmed after {confirmed_after} s, before the life spanned 60 samples"
    );
    assert!(
        eventually(30, || hook_bodies(&bodies)
            .iter()
            .any(|b| b["reason"] == "firing")),
        "no firing alert: {:?}",
        hook_bodies(&bodies)
    );
    for body in hook_bodies(&bodies) {
        assert_eq!(body["alert"]["finding"]["state"], "confirmed", "{body}");
    }

    // Which process (issue 13): the finding, the alert and `leakwatch targets` name it.
    let pid = leaky.pid();
    let finding = group_finding(&agent).unwrap();
    assert_eq!(finding["pids"], serde_json::json!([pid]), "{finding}");
    let process = &finding["processes"][0];
    assert_eq!(process["pid"], pid, "{finding}");
    assert_eq!(process["comm"], "leaky", "{process}");
    assert_eq!(process["ppid"], std::process::id(), "{process}");
    assert_eq!(process["uid"], own_uid(), "{process}");
    assert!(
        process["cmdline"]
            .as_str()
            .is_some_and(|c| c.ends_with("leaky 'threads=Base:2' 'leak-threads=Lifer:100'")),
        "{process}"
    );
    let started_ms = process["start_ms"].as_i64().unwrap();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let age_ms = started.elapsed().as_millis() as i64;
    assert!(
        (now_ms - age_ms - started_ms).abs() < 3_000,
        "start {started_ms}, expected ~{}",
        now_ms - age_ms
    );
    let firing = hook_bodies(&bodies)
        .into_iter()
        .find(|b| b["reason"] == "firing")
        .unwrap();
    assert!(
        firing["text"]
            .as_str()
            .is_some_and(|t| t.contains(&format!("[pid {pid} leaky]"))),
        "{firing}"
    );
    let out = std::process::Command::new(leakwatch_testkit::workspace_bin("leakwatch"))
        .args(["targets", "--url", &agent.url()])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    let row = table
        .lines()
        .find(|l| l.starts_with("lifer "))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(
        row.contains(&format!(" {pid} ")) && row.contains("/leaky 'threads=Base:2'"),
        "{table}"
    );

    // Killed: resolved at once, with the reason and the last value, and no forecast.
    let threads_before = group_finding(&agent).unwrap()["current"].as_f64().unwrap();
    let _ = leaky.child.kill();
    let _ = leaky.child.wait();
    let killed = Instant::now();
    assert!(
        eventually(40, || group_finding(&agent)
            .is_some_and(|f| f["state"] == "resolved")),
        "not resolved after the process exited: {:?}",
        group_finding(&agent)
    );
    let resolved = group_finding(&agent).unwrap();
    assert_eq!(resolved["resolution"]["cause"], "gone", "{resolved}");
    assert!(resolved["eta_seconds"].is_null(), "{resolved}");
    assert!(resolved["eta_conservative_seconds"].is_null(), "{resolved}");
    let summary = resolved["summary"].as_str().unwrap();
    assert!(summary.contains("process exited at"), "{summary}");
    let last = resolved["resolution"]["last_value"].as_f64().unwrap();
    // The exited process is still named.
    assert_eq!(resolved["processes"][0]["pid"], pid, "{resolved}");
    assert!(last >= threads_before, "last {last} < {threads_before}");
    // Its alert resolves with that reason, well before resolve_after (10 min).
    assert!(
        eventually(30, || hook_bodies(&bodies).iter().any(|b| b["reason"]
            == "resolved"
            && b["alert"]["summary"]
                .as_str()
                .is_some_and(|s| s.contains("process exited")))),
        "no resolved alert naming the exit: {:?}",
        hook_bodies(&bodies)
    );
    eprintln!(
        "suspected after {suspected_after} s, confirmed after {confirmed_after} s, \
         resolved alert {} s after the kill",
        killed.elapsed().as_secs()
    );
}

/// This test's uid, from `/proc/self/status` (the leaky child runs as the same user).
fn own_uid() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|uid| uid.parse().ok())
        .unwrap()
}
