//! `leakwatch snapshot` as a user runs it: table, JSON, selection, errors, and not-root.

use leakwatch_testkit::*;
use std::net::TcpListener;
use std::process::Command;

fn leakwatch(args: &[&str]) -> std::process::Output {
    Command::new(workspace_bin("leakwatch"))
        .args(args)
        .output()
        .expect("run leakwatch")
}

#[test]
fn table_names_the_leak_and_the_close_wait_peer() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let connect = format!("connect={addr}:6");
    let leaky = Leaky::start(&["threads=Analytics:25", &connect]);
    // Accept and close all six: the client is left with six CLOSE_WAIT sockets.
    for _ in 0..6 {
        drop(listener.accept().unwrap());
    }
    let pid = leaky.pid().to_string();
    assert!(eventually(10, || ss_states(&ss_tcp(leaky.pid()))
        .get("CLOSE_WAIT")
        == Some(&6)));
    let out = leakwatch(&["snapshot", "--pid", &pid]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("Analytics-# 25"), "{text}");
    assert!(text.contains(&format!("6 CLOSE_WAIT {addr}")), "{text}");
    assert!(text.contains("CLOSE_WAIT 6"), "{text}");
    // fds against RLIMIT_NOFILE, as "n/limit (p%)".
    assert!(text.contains("  fds      "), "{text}");
    assert!(text.contains('%'), "{text}");
}

#[test]
fn json_is_the_full_sample() {
    let leaky = Leaky::start(&["threads=worker:3", "pipes=2"]);
    let out = leakwatch(&["snapshot", "--json", "--match", "^leaky$"]);
    assert!(out.status.success());
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let process = json["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["identity"]["pid"].as_u64() == Some(leaky.pid() as u64))
        .expect("leaky selected by --match");
    assert_eq!(process["threads"]["total"], 4);
    let groups = process["threads"]["groups"].as_array().unwrap();
    assert!(groups
        .iter()
        .any(|g| g["name"] == "worker-#" && g["count"] == 3));
    assert!(process["fds"]["by_kind"]["pipe"].as_u64().unwrap() >= 4);
    assert!(json["host"]["threads_max"].as_u64().unwrap() > 0);
    assert!(json["stats"]["cpu_us"].is_u64());
}

#[test]
fn sort_and_top() {
    let _a = Leaky::start(&["threads=many:30"]);
    let out = leakwatch(&["snapshot", "--json", "--sort", "threads", "--top", "1"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let processes = json["processes"].as_array().unwrap();
    assert_eq!(processes.len(), 1);
    assert!(processes[0]["threads"]["total"].as_u64().unwrap() >= 31);
}

#[test]
fn bad_input_gets_a_clear_error() {
    let out = leakwatch(&["snapshot", "--match", "(unclosed"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("--match: invalid regular expression"), "{err}");

    let out = leakwatch(&["snapshot", "--pid", "2147483646"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8(out.stderr)
        .unwrap()
        .contains("no such process"));

    let out = leakwatch(&["snapshot", "--sort", "bananas"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8(out.stderr)
        .unwrap()
        .contains("threads, fds, sockets, memory"));
}

/// As an unprivileged user, another user's process is still listed with its threads and
/// memory, and marked partial for the fds it may not read.
#[test]
fn not_root_reports_partial_instead_of_failing() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        // Already unprivileged: the root-owned init process is the "other user".
        let out = leakwatch(&["snapshot", "--json", "--pid", "1"]);
        check_partial(&out, "1");
        return;
    }
    let leaky = Leaky::start(&["threads=secret:2", "pipes=1"]);
    let pid = leaky.pid().to_string();
    let bin = workspace_bin("leakwatch");
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&bin)
        .args(["snapshot", "--json", "--pid", &pid])
        .output()
        .expect("setpriv (util-linux)");
    check_partial(&out, &pid);
}

fn check_partial(out: &std::process::Output, pid: &str) {
    assert!(out.status.success(), "{out:?}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let process = &json["processes"][0];
    assert_eq!(process["identity"]["pid"].to_string(), pid);
    assert!(process["threads"]["total"].as_u64().unwrap() >= 1);
    assert!(process["memory"]["rss"].as_u64().unwrap() > 0);
    let partial = process["partial"].as_array().expect("partial markers");
    assert!(
        partial
            .iter()
            .any(|m| m["part"] == "fds" && m["reason"] == "permission_denied"),
        "{partial:?}"
    );
}
