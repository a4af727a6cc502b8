//! `leakwatch why` (issue 14) against real runtimes: a JVM starting `Analytics-N` threads
//! from `Analytics.request` and a Go service starting goroutines from `main.handle` are
//! traced to those functions; a process of neither kind gets a clear error.

use leakwatch_testkit::{go_build, workspace_bin, Jvm};
use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};

fn why(args: &[&str]) -> Output {
    Command::new(workspace_bin("leakwatch"))
        .arg("why")
        .args(args)
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn why_traces_new_jvm_threads_to_the_code_that_starts_them() {
    let java = Jvm::analytics(&["0", "100"]);
    let pid = java.pid().to_string();
    let out = why(&["analytics", "Analytics-#", "--for", "4s", "--pid", &pid]);
    let text = text(&out);
    eprintln!("{text}");
    assert!(out.status.success(), "{text}");
    let headline = text
        .lines()
        .find(|l| !l.starts_with("watching"))
        .unwrap_or("");
    assert!(
        headline.contains("% of new Analytics-# threads were started from")
            && headline.contains("Analytics.request"),
        "{text}"
    );
    // --json for scripts: the same line.
    let out = why(&["analytics", "--for", "2s", "--pid", &pid, "--json"]);
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        value["headline"]
            .as_str()
            .is_some_and(|h| h.contains("Analytics.request")),
        "{value}"
    );
    assert_eq!(value["pids"][0].as_u64(), Some(java.pid() as u64));
}

#[test]
fn why_groups_a_go_services_new_goroutines_by_creator() {
    let dir = tempfile::tempdir().unwrap();
    let binary = go_build(dir.path(), "pprofleak");
    let mut service = Command::new(&binary)
        .args(["5", "20"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut ready = String::new();
    BufReader::new(service.stdout.take().unwrap())
        .read_line(&mut ready)
        .unwrap();
    let port = ready.trim().strip_prefix("ready ").expect("ready PORT");
    let out = why(&[
        "gosvc",
        "--for",
        "2s",
        "--pid",
        &service.id().to_string(),
        "--pprof",
        &format!("http://127.0.0.1:{port}"),
    ]);
    let _ = service.kill();
    let _ = service.wait();
    let text = text(&out);
    eprintln!("{text}");
    assert!(out.status.success(), "{text}");
    // Nearly all: an HTTP connection's goroutine may come and go meanwhile.
    let share: f64 = text
        .split_once("goroutine leak: ")
        .and_then(|(_, rest)| rest.split_once("% of"))
        .and_then(|(n, _)| n.parse().ok())
        .unwrap_or(0.0);
    assert!(
        share >= 90.0 && text.contains("were created by main.handle (pprofleak.go:"),
        "{text}"
    );
}

#[test]
fn why_says_what_it_cannot_watch() {
    let mut sleep = Command::new("sleep").arg("30").spawn().unwrap();
    let out = why(&["sleeper", "--for", "1s", "--pid", &sleep.id().to_string()]);
    let _ = sleep.kill();
    let _ = sleep.wait();
    let text = text(&out);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("is a JVM or CPython, and no --pprof was given"),
        "{text}"
    );
    // Bad durations are refused before anything runs.
    let out = why(&["x", "--for", "2h", "--pid", "1"]);
    assert!(
        text_of_err(&out).contains("longer than"),
        "{}",
        text_of_err(&out)
    );
}

fn text_of_err(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}
