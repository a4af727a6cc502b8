//! `leakwatch top` in a real terminal: tmux runs it in a detached 200x50 pane, the test
//! types keys with `send-keys` and reads the screen with `capture-pane`, as a user would.
//! Each test has its own tmux server (`-S` in a temporary directory), killed on drop, so
//! a failing test leaves no session behind.

use leakwatch_testkit::*;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// `leakwatch top ARGS` in its own tmux server, whose socket lives in a temporary
/// directory. Its stderr and exit status go to files there, since the pane closes when
/// top exits.
struct Tmux {
    socket: PathBuf,
    dir: tempfile::TempDir,
}

impl Tmux {
    fn start(args: &str) -> Tmux {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("tmux.sock");
        let command = format!(
            "'{}' top {args} 2>'{}'; echo $? >'{}'",
            workspace_bin("leakwatch").display(),
            dir.path().join("stderr").display(),
            dir.path().join("status").display(),
        );
        let tmux = Tmux { socket, dir };
        let status = tmux
            .tmux()
            .args([
                "-f",
                "/dev/null",
                "new-session",
                "-d",
                "-x",
                "200",
                "-y",
                "50",
            ])
            .args(["-s", "top", &command])
            .status()
            .expect("tmux must be installed (scripts/test.sh installs it)");
        assert!(status.success(), "tmux new-session failed");
        tmux
    }

    fn tmux(&self) -> Command {
        let mut command = Command::new("tmux");
        command.arg("-S").arg(&self.socket);
        command
    }

    fn screen(&self) -> String {
        let output = self
            .tmux()
            .args(["capture-pane", "-p", "-t", "top"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    fn keys(&self, keys: &[&str]) {
        let status = self
            .tmux()
            .args(["send-keys", "-t", "top"])
            .args(keys)
            .status()
            .unwrap();
        assert!(status.success(), "send-keys {keys:?}");
    }

    fn typed(&self, text: &str) {
        let status = self
            .tmux()
            .args(["send-keys", "-t", "top", "-l", text])
            .status()
            .unwrap();
        assert!(status.success(), "send-keys -l {text:?}");
    }

    fn alive(&self) -> bool {
        self.tmux()
            .args(["has-session", "-t", "top"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default()
    }

    /// The screen once `check` accepts it; fails with the last screen and top's stderr.
    fn wait_for(&self, seconds: u64, what: &str, check: impl Fn(&str) -> bool) -> String {
        let mut last = String::new();
        let found = eventually(seconds, || {
            last = self.screen();
            check(&last)
        });
        assert!(
            found,
            "{what}: not on screen within {seconds}s\n--- screen ---\n{last}\n--- top's stderr ---\n{}",
            self.read("stderr")
        );
        last
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self
            .tmux()
            .arg("kill-server")
            .stderr(Stdio::null())
            .status();
    }
}

/// The table rows: the lines after the column header, up to the first blank line.
fn table_rows(screen: &str) -> Vec<&str> {
    screen
        .lines()
        .skip_while(|l| !l.starts_with("TARGET"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty() && !l.starts_with('┌'))
        .collect()
}

/// The THREADS column of a row: the number after the target name.
fn threads_of(row: &str) -> u64 {
    let field = row.split_whitespace().nth(1).unwrap_or("");
    field
        .replace(',', "")
        .parse()
        .unwrap_or_else(|_| panic!("no thread count in {row:?}"))
}

/// `shown N of M targets` from the status line.
fn shown(screen: &str) -> Option<(u64, u64)> {
    let rest = screen.split("shown ").nth(1)?;
    let mut words = rest.split_whitespace();
    let n = words.next()?.parse().ok()?;
    words.next()?; // "of"
    let m = words.next()?.parse().ok()?;
    Some((n, m))
}

#[test]
fn standalone_top_shows_a_growing_thread_leak_filters_details_and_quits() {
    let leaky = Leaky::start(&[
        "comm=lwtopleak",
        "threads=Base:2",
        "leak-threads=TopLeak:100",
    ]);
    let top = Tmux::start("--standalone --interval 1s");

    let leak_row = |screen: &str| {
        table_rows(screen)
            .into_iter()
            .find(|row| row.contains("TopLeak-#"))
            .map(str::to_string)
    };
    let screen = top.wait_for(30, "the leaking process's row", |s| leak_row(s).is_some());
    let first = threads_of(&leak_row(&screen).unwrap());
    let oracle = proc_thread_groups(leaky.pid()).values().sum::<u32>() as u64;
    assert!(
        first > 2 && first <= oracle,
        "threads shown {first}, /proc says {oracle} now (and it only grows)"
    );
    let screen = top.wait_for(20, "a higher thread count", |s| {
        leak_row(s).is_some_and(|row| threads_of(&row) >= first + 10)
    });
    let (_, all) = shown(&screen).expect("status line");
    assert!(all >= 2, "this host has more than one target: {screen}");
    assert!(table_rows(&screen).len() >= 2, "{screen}");

    // `/` + text + Enter: only the matching target is left.
    top.keys(&["/"]);
    top.typed("lwtopleak");
    top.keys(&["Enter"]);
    let screen = top.wait_for(10, "the filtered table", |s| {
        s.contains("filter \"lwtopleak\"") && shown(s).is_some_and(|(n, _)| n == 1)
    });
    let rows = table_rows(&screen);
    assert_eq!(rows.len(), 1, "{screen}");
    assert!(rows[0].contains("TopLeak-#"), "{screen}");

    // Enter: the detail pane, with every thread group and the process.
    top.keys(&["Enter"]);
    // Waited for whole, down to its list of processes: a capture taken while the pane
    // is still being drawn has its top half only (one CI run).
    let process_line = format!("{}  lwtopleak", leaky.pid());
    let screen = top.wait_for(10, "the detail pane", |s| {
        s.contains("(exe) · Enter/Esc close")
            && s.contains("  TopLeak-#")
            && s.contains(&process_line)
    });
    let group_line = screen
        .lines()
        .find(|l| l.contains("  TopLeak-#") && l.starts_with('│'))
        .unwrap_or_else(|| panic!("no TopLeak-# line in the pane: {screen}"));
    let in_pane: u64 = group_line
        .trim_start_matches('│')
        .split_whitespace()
        .next()
        .unwrap()
        .replace(',', "")
        .parse()
        .unwrap();
    assert!(in_pane >= first, "{group_line}");
    assert!(screen.contains("Base-#"), "{screen}");
    assert!(
        screen.contains(&process_line),
        "the pane lists the process: {screen}"
    );

    // q: top exits cleanly and its pane (so the session) is gone.
    top.keys(&["q"]);
    assert!(
        eventually(10, || !top.alive()),
        "top still running after q: {}",
        top.screen()
    );
    assert_eq!(
        top.read("status").trim(),
        "0",
        "stderr: {}",
        top.read("stderr")
    );
}

#[test]
fn agent_top_shows_the_agents_finding_and_survives_the_agent_going_away() {
    let agent = Agent::start(
        "[detect]\npreset = \"fast\"\n\
         [[target]]\nname = \"lwtop-grower\"\ncmdline = \"leak-threads=TopAgentLeak\"\n",
    );
    let _leaky = Leaky::start(&[
        "comm=lwtopagent",
        "threads=Base:2",
        "leak-threads=TopAgentLeak:100",
    ]);
    let top = Tmux::start(&format!(
        "--url http://127.0.0.1:{} --interval 1s",
        agent.port
    ));
    top.wait_for(30, "the agent's target", |s| {
        table_rows(s)
            .iter()
            .any(|r| r.starts_with("lwtop-grower") && r.contains("TopAgentLeak-#"))
    });

    // The API has the finding first; then top shows its summary on the target's row.
    let summary = |agent: &Agent| -> Option<String> {
        let body = agent.get_json("/api/v1/findings")?;
        body["findings"]
            .as_array()?
            .iter()
            .find(|f| f["target"] == "lwtop-grower" && f["attribution"] == "TopAgentLeak-#")
            .and_then(|f| f["summary"].as_str().map(str::to_string))
    };
    let mut api_summary = None;
    assert!(
        eventually(120, || {
            api_summary = summary(&agent);
            api_summary.is_some()
        }),
        "the agent found no leak in lwtop-grower: {:?}",
        agent.get_json("/api/v1/findings")
    );
    // Summaries carry the latest counts ("+290 in 29s"): compare the stable part.
    let api_summary = api_summary.unwrap();
    let stable = api_summary.split(" +").next().unwrap().to_string();
    assert_eq!(stable, "threads TopAgentLeak-#");
    let screen = top.wait_for(20, "the finding on the target's row", |s| {
        table_rows(s)
            .iter()
            .any(|r| r.starts_with("lwtop-grower") && r.contains(&format!("{stable} +")))
    });
    assert!(
        screen.contains(&format!("agent http://127.0.0.1:{}", agent.port)),
        "{screen}"
    );

    // The agent goes away: top shows why and keeps the last data, without exiting.
    drop(agent);
    let screen = top.wait_for(15, "the connection error", |s| {
        s.contains("cannot reach the agent") && s.contains("retrying every 1s")
    });
    assert!(screen.contains("lwtop-grower"), "{screen}");
    assert!(top.alive());
    top.keys(&["q"]);
    assert!(eventually(10, || !top.alive()), "top did not exit on q");
    assert_eq!(
        top.read("status").trim(),
        "0",
        "stderr: {}",
        top.read("stderr")
    );
}

#[test]
fn top_without_a_terminal_exits_2_and_points_to_the_script_commands() {
    let output = Command::new(workspace_bin("leakwatch"))
        .args(["top", "--standalone"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("needs a terminal"), "{stderr}");
    assert!(stderr.contains("leakwatch snapshot --json"), "{stderr}");
    assert!(stderr.contains("leakwatch targets --json"), "{stderr}");
    assert!(output.stdout.is_empty(), "nothing is drawn on a pipe");
}
