//! Crash loop is a service that keeps dying (issue 12): on real processes, a job that a
//! shell loop runs again and again is a periodic job, not a crash loop, while the same loop
//! running a server that listens, and a command restarted by a supervisor, are.

use leakwatch_testkit::*;
use serde_json::Value;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

/// `sh -c 'while :; do PROGRAM ARGS; done'` in a process group of its own, killed whole on
/// drop, so no run of the loop outlives the test.
struct ShellLoop(Child);

impl ShellLoop {
    fn start(program: &std::path::Path, args: &[&str]) -> ShellLoop {
        let child = Command::new("sh")
            .args(["-c", "while :; do \"$0\" \"$@\"; done"])
            .arg(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("start sh");
        ShellLoop(child)
    }
}

impl Drop for ShellLoop {
    fn drop(&mut self) {
        // SAFETY: killing the process group of our own child (its pid is the group id).
        unsafe { libc::kill(-(self.0.id() as i32), libc::SIGKILL) };
        let _ = self.0.wait();
    }
}

fn restarts(agent: &Agent, target: &str) -> Option<Vec<Value>> {
    agent
        .get_json(&format!("/api/v1/restarts?target={target}"))
        .and_then(|body| body["restarts"].as_array().cloned())
}

/// The kinds of the findings of `target`.
fn findings(agent: &Agent, target: &str) -> Vec<String> {
    agent
        .get_json("/api/v1/findings")
        .and_then(|body| body["findings"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter(|f| f["target"] == target)
        .filter_map(|f| f["kind"].as_str().map(str::to_string))
        .collect()
}

/// Points of the target's `processes` series: how long the agent has watched it.
fn watched(agent: &Agent, target: &str) -> usize {
    let path = format!("/api/v1/series?target={target}&resource=processes&since=10m");
    agent
        .get_json(&path)
        .and_then(|body| body["series"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|s| s["points"].as_array().map(Vec::len))
        .sum()
}

/// Two shell loops side by side, each running a 4-second job again and again: each job is
/// seen in four passes, long enough to count as a process that lived. They differ in one
/// thing: the server's job listens on a TCP port. The server's loop is a crash loop (the
/// control: the agent sees these replacements), the job's loop is not.
#[test]
fn a_shell_loop_of_jobs_is_not_a_crash_loop() {
    let started = Instant::now();
    let agent = Agent::start(
        "[detect]\npreset = \"fast\"\n\
         [[target]]\nname = \"nightly\"\ncmdline = \"comm=lwjob\"\n\
         [[target]]\nname = \"looped-server\"\ncmdline = \"comm=lwserver\"\n",
    );
    let leaky = workspace_bin("leaky");
    let _job = ShellLoop::start(&leaky, &["comm=lwjob", "exit-after=4000"]);
    let _server = ShellLoop::start(
        &leaky,
        &["comm=lwserver", "exit-after=4000", "listen=127.0.0.1:0"],
    );
    // Six replacements of the server: about 25 s of both loops.
    assert!(
        eventually(60, || restarts(&agent, "looped-server")
            .is_some_and(|list| list.len() >= 6)),
        "the listening job's replacements were not seen: {:?}",
        restarts(&agent, "looped-server")
    );
    assert!(
        eventually(20, || findings(&agent, "looped-server")
            .contains(&"crash_loop".to_string())),
        "no crash loop for the looped server: {:?}",
        agent.get_json("/api/v1/findings")
    );
    // The job ran as many times, watched all along (about 25 passes; five runs at least),
    // and none of its runs is a restart.
    assert!(
        watched(&agent, "nightly") >= 15,
        "{}",
        watched(&agent, "nightly")
    );
    assert_eq!(restarts(&agent, "nightly"), Some(Vec::new()));
    assert!(
        findings(&agent, "nightly").is_empty(),
        "{:?}",
        findings(&agent, "nightly")
    );
    eprintln!("shell loops: {:.1}s", started.elapsed().as_secs_f64());
}

/// A command restarted by a supervisor (`leakwatch run --restart always`) that exits 2
/// after 3.5 s: a crash loop for `leakwatch run` itself, which records the exits, and for a
/// host agent watching from outside, which sees a process whose parent is a supervisor
/// replaced again and again.
#[test]
fn a_supervised_command_that_keeps_dying_is_a_crash_loop() {
    let started = Instant::now();
    let command = "sleep 3.5; exit 2";
    // The rule matches the supervised shell, not `leakwatch run` (whose arguments hold the
    // command too).
    let agent = Agent::start(&format!(
        "[detect]\npreset = \"fast\"\n\
         [[target]]\nname = \"crashy\"\ncmdline = \"^sh -c {command}$\"\n"
    ));
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("run.toml");
    std::fs::write(&config, "[detect]\npreset = \"fast\"\n").unwrap();
    let port = free_port();
    let mut run = Command::new(workspace_bin("leakwatch"))
        .args([
            "run",
            "--name",
            "crashy",
            "--restart",
            "always",
            "--interval",
            "1s",
        ])
        .arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["--listen", &format!("127.0.0.1:{port}"), "--"])
        .args(["sh", "-c", command])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let supervised = Agent::wrap(
        Command::new("true").spawn().unwrap(),
        port,
        dir.path().join("data"),
    );
    // Lives of 3.5 s with back-off 1 s, 2 s, 4 s: three restarts within ~18 s.
    assert!(
        eventually(50, || findings(&supervised, "crashy")
            .contains(&"crash_loop".to_string())),
        "leakwatch run: {:?} / {:?}",
        restarts(&supervised, "crashy"),
        supervised.get_json("/api/v1/findings")
    );
    let recorded = restarts(&supervised, "crashy").unwrap_or_default();
    assert!(recorded.iter().all(|r| r["exit_code"] == 2), "{recorded:?}");
    // From outside: the same replacements, without exit status.
    assert!(
        eventually(20, || findings(&agent, "crashy")
            .contains(&"crash_loop".to_string())),
        "host agent: {:?} / {:?}",
        restarts(&agent, "crashy"),
        agent.get_json("/api/v1/findings")
    );
    let seen = restarts(&agent, "crashy").unwrap_or_default();
    assert!(seen.len() >= 3, "{seen:?}");
    assert!(seen.iter().all(|r| r["exit_code"].is_null()), "{seen:?}");
    // SAFETY: signalling our own child.
    unsafe { libc::kill(run.id() as i32, libc::SIGTERM) };
    let _ = run.wait();
    eprintln!("supervised: {:.1}s", started.elapsed().as_secs_f64());
}
