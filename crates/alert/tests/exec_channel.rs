//! The exec channel: arguments reach the program verbatim (no shell), the alert JSON
//! arrives on stdin, runaway programs are killed at the timeout, output is capped.

mod common;

use std::time::{Duration, Instant};

use common::*;
use leakwatch_alert::*;

fn exec(program: &str, args: &[&str], timeout: Duration, cap: usize) -> Channel {
    Channel::from_config(
        "run",
        &ChannelConfig::Exec(ExecConfig {
            program: program.into(),
            args: args.iter().map(|a| a.to_string()).collect(),
            timeout: Dur(timeout),
            max_output_bytes: cap,
        }),
    )
    .unwrap()
}

fn notification() -> Notification {
    let config = config_with(vec![(
        "run",
        ChannelConfig::Exec(ExecConfig {
            program: "true".into(),
            args: vec![],
            timeout: Dur::secs(1),
            max_output_bytes: 10,
        }),
    )]);
    firing_notifications(&config, "exec-svc", now_ms()).remove(0)
}

#[test]
fn exec_passes_arguments_without_a_shell_and_the_alert_on_stdin() {
    let dir = tempfile::tempdir().unwrap();
    // A shell would run the substitution and split on the space.
    let path = dir.path().join("out $(touch pwned) ;x.json");
    let channel = exec("tee", &[path.to_str().unwrap()], Duration::from_secs(5), 64);
    let n = notification();
    let report = channel.send(&n).unwrap();
    assert!(
        report.detail.starts_with("exit 0, 64 bytes of output"),
        "{report:?}"
    );
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(written["id"], n.id.as_str());
    assert_eq!(written["alert"]["target"], "exec-svc");
    assert!(!std::path::Path::new("pwned").exists() && !dir.path().join("pwned").exists());
}

#[test]
fn exec_kills_a_program_that_overruns_its_timeout() {
    let channel = exec("sleep", &["30"], Duration::from_millis(300), 64);
    let started = Instant::now();
    let error = channel.send(&notification()).unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(error.retryable);
    assert!(error.message.contains("killed after"), "{}", error.message);
}

#[test]
fn exec_caps_output_and_reports_failures_with_stderr() {
    // 5 MB of output against a 1 KiB cap: the program finishes, we keep 1 KiB.
    let channel = exec(
        "head",
        &["-c", "5000000", "/dev/zero"],
        Duration::from_secs(10),
        1024,
    );
    let report = channel.send(&notification()).unwrap();
    assert!(
        report.detail.starts_with("exit 0, 1024 bytes of output"),
        "{}",
        report.detail
    );

    let channel = exec(
        "ls",
        &["/definitely/not/here"],
        Duration::from_secs(5),
        1024,
    );
    let error = channel.send(&notification()).unwrap_err();
    assert!(error.retryable);
    assert!(error.message.contains("No such file"), "{}", error.message);

    let channel = exec("/nonexistent/notifier", &[], Duration::from_secs(5), 1024);
    let error = channel.send(&notification()).unwrap_err();
    assert!(error.message.contains("cannot run"), "{}", error.message);
}

/// Whether `pid` is gone (or a zombie nobody reaped yet: dead all the same).
fn gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().next())
            .is_some_and(|state| state == "Z" || state == "X"),
    }
}

#[test]
fn exec_timeout_kills_what_the_program_started_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("grandchild.pid");
    // The configured program is a shell script here; leakwatch still starts it from argv.
    let channel = exec(
        "sh",
        &[
            "-c",
            "sleep 100 & echo $! > \"$1\"; sleep 100",
            "sh",
            pid_file.to_str().unwrap(),
        ],
        Duration::from_millis(500),
        64,
    );
    let error = channel.send(&notification()).unwrap_err();
    assert!(error.message.contains("killed after"), "{}", error.message);
    let grandchild: u32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !gone(grandchild) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let survived = !gone(grandchild);
    if survived {
        // Do not leave it behind for the other tests.
        let _ = std::process::Command::new("kill")
            .args(["-9", &grandchild.to_string()])
            .status();
    }
    assert!(
        !survived,
        "the background sleep {grandchild} outlived the exec channel's timeout"
    );
}
