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
