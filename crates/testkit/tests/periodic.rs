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

/// A stand-in for an init system: a Python process named `init` that is a child subreaper
/// (`PR_SET_CHILD_SUBREAPER`), so orphans below it are adopted by it as they are by
/// systemd (pid 1 and user managers). In `orphans` mode it runs a shell loop that starts a
/// 4-second job in the background and moves on, `(job &)`, so each run is orphaned at once
/// and adopted; in `services` mode it starts the same program itself in a session of its
/// own (`setsid`, as systemd starts a service) and starts it again when it exits. Killed
/// whole (its process group) on drop.
struct FakeInit(Child);

const FAKE_INIT: &str = r#"
import ctypes, os, sys, time
libc = ctypes.CDLL(None, use_errno=True)
libc.prctl(36, 1, 0, 0, 0)          # PR_SET_CHILD_SUBREAPER
libc.prctl(15, b"init", 0, 0, 0)    # PR_SET_NAME
mode, program, args = sys.argv[1], sys.argv[2], sys.argv[3:]
if mode == "orphans":
    os.spawnvp(os.P_NOWAIT, "sh", ["sh", "-c", 'while :; do ("$0" "$@" &); sleep 4.5; done', program] + args)
    while True:
        try:
            os.wait()
        except ChildProcessError:
            time.sleep(0.2)
else:
    while True:
        pid = os.fork()
        if pid == 0:
            os.setsid()
            os.execv(program, [program] + args)
        os.waitpid(pid, 0)
        time.sleep(0.5)
"#;

impl FakeInit {
    fn start(mode: &str, program: &std::path::Path, args: &[&str]) -> FakeInit {
        let child = Command::new("python3")
            .args(["-c", FAKE_INIT, mode])
            .arg(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("start python3");
        FakeInit(child)
    }
}

impl Drop for FakeInit {
    fn drop(&mut self) {
        // The services run in sessions of their own: kill them by name first, then the
        // group of the init and its shell loop with the orphans it adopted.
        let _ = Command::new("pkill")
            .args(["-KILL", "-x", "lwsvc"])
            .status();
        // SAFETY: killing the process group of our own child (its pid is the group id).
        unsafe { libc::kill(-(self.0.id() as i32), libc::SIGKILL) };
        let _ = self.0.wait();
        let _ = Command::new("pkill")
            .args(["-KILL", "-x", "lworphan"])
            .status();
    }
}

/// Jobs that a shell loop starts in the background and leaves (`(job &)`) are orphaned and
/// adopted by init, whose name makes it a supervisor: they must still read as runs of a
/// periodic job, since they lead no process group or session, whereas the same program
/// started by the init itself in a session of its own (as systemd starts a service) and
/// dying every 4 s is a crash loop.
#[test]
fn orphaned_jobs_adopted_by_init_are_not_a_crash_loop() {
    let started = Instant::now();
    let agent = Agent::start(
        "[detect]\npreset = \"fast\"\n\
         [[target]]\nname = \"orphaned\"\ncmdline = \"comm=lworphan\"\n\
         [[target]]\nname = \"initsvc\"\ncmdline = \"comm=lwsvc\"\n",
    );
    let leaky = workspace_bin("leaky");
    let _orphans = FakeInit::start("orphans", &leaky, &["comm=lworphan", "exit-after=4000"]);
    let _services = FakeInit::start("services", &leaky, &["comm=lwsvc", "exit-after=4000"]);
    assert!(
        eventually(60, || findings(&agent, "initsvc")
            .contains(&"crash_loop".to_string())),
        "no crash loop for the service init restarts: {:?} / {:?}",
        restarts(&agent, "initsvc"),
        agent.get_json("/api/v1/findings")
    );
    // As long again for the orphans: about five runs, each seen in about four passes.
    assert!(
        watched(&agent, "orphaned") >= 15,
        "{}",
        watched(&agent, "orphaned")
    );
    assert_eq!(restarts(&agent, "orphaned"), Some(Vec::new()));
    assert!(
        findings(&agent, "orphaned").is_empty(),
        "{:?}",
        findings(&agent, "orphaned")
    );
    eprintln!("orphans: {:.1}s", started.elapsed().as_secs_f64());
}
