//! Process and thread names are the processes' own, and a hostile one must not reach a
//! terminal raw (issues 13 and 16): `leakwatch snapshot` once emitted a clear-screen and a
//! title-setting OSC sequence and raw CR/LF for them, and an agent's targets carried them.

use leakwatch_testkit::{eventually, workspace_bin, Agent, Leaky};
use std::process::Command;

/// Bytes a terminal would act on: C0 controls but newline (ends our own lines), DEL, and
/// the C1 range as UTF-8 (`\u{80}`..`\u{9f}` start with 0xc2).
fn raw_controls(output: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(output);
    text.chars()
        .filter(|&c| c != '\n' && c.is_control())
        .map(|c| c as u32 as u8)
        .collect()
}

#[test]
fn hostile_process_and_thread_names_are_escaped_in_cli_output() {
    // comm keeps 15 bytes: a clear-screen, and a carriage return that would overwrite.
    let comm = "\u{1b}[2Jx\rfake";
    let threads = "\u{1b}]0;own\u{7}:3";
    let leaky = Leaky::start(&[&format!("comm={comm}"), &format!("threads={threads}")]);
    let pid = leaky.child.id().to_string();

    let snapshot = Command::new(workspace_bin("leakwatch"))
        .args(["snapshot", "--pid", &pid])
        .output()
        .unwrap();
    assert!(snapshot.status.success(), "{snapshot:?}");
    let text = String::from_utf8_lossy(&snapshot.stdout);
    assert_eq!(raw_controls(&snapshot.stdout), Vec::<u8>::new(), "{text}");
    assert!(text.contains("\\e[2Jx\\rfake"), "{text}");
    assert!(text.contains("\\e]#;own\\x07-# 3"), "{text}");

    // An agent's targets and their labels.
    let agent = Agent::start("");
    assert!(eventually(20, || agent
        .get_text("/api/v1/targets")
        .is_some_and(|t| t.contains("own"))));
    let targets = Command::new(workspace_bin("leakwatch"))
        .args(["targets", "--url", &agent.url()])
        .output()
        .unwrap();
    assert!(targets.status.success(), "{targets:?}");
    let text = String::from_utf8_lossy(&targets.stdout);
    assert_eq!(raw_controls(&targets.stdout), Vec::<u8>::new(), "{text}");
    drop(leaky);
}

/// Characters that reorder a line (bidi embeddings, overrides, isolates) or end one without
/// a newline (U+2028/9): shown escaped, like control characters.
fn raw_reordering(output: &[u8]) -> Vec<char> {
    String::from_utf8_lossy(output)
        .chars()
        .filter(|c| {
            matches!(*c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{2028}' | '\u{2029}')
        })
        .collect()
}

fn leakwatch(args: &[&str]) -> std::process::Output {
    Command::new(workspace_bin("leakwatch"))
        .args(args)
        .output()
        .unwrap()
}

/// Every command that prints what an agent knows about a hostile process (issue 13, part 6):
/// its name sets the terminal's title and clears the screen, its threads carry a bidi
/// override and a title-setting OSC, and they leak, so the agent has a finding, an incident
/// and a delivered alert about them. No command may print a raw control character or a bidi
/// override, in its table or its JSON; `top` runs in a real terminal (tmux), whose raw output
/// stream must not carry the sequences and whose title must not change.
#[test]
fn no_command_prints_a_hostile_name_raw() {
    let (hook, bodies) = leakwatch_testkit::http::webhook_receiver();
    let agent = Agent::start(&format!(
        "[detect]\npreset = \"fast\"\n\
         [alerts]\npending_for = \"0s\"\n\
         [alerts.routes]\nwarning = [\"hook\"]\ncritical = [\"hook\"]\n\
         [alerts.channels.hook]\ntype = \"webhook\"\nurl = \"http://127.0.0.1:{hook}/hook\"\n"
    ));
    let url = agent.url();
    let leaky = Leaky::start(&[
        "comm=\u{1b}]0;pwn\u{7}\u{1b}[2J",
        "threads=\u{202e}evil:2",
        "leak-threads=\u{1b}]2;pwn\u{7}:150",
    ]);
    let pid = leaky.child.id().to_string();

    // The finding, its incident and its alert.
    let mut finding = serde_json::Value::Null;
    assert!(
        eventually(120, || {
            let found = agent.get_json("/api/v1/findings").and_then(|v| {
                v["findings"].as_array().and_then(|all| {
                    all.iter()
                        .find(|f| f["attribution"].as_str().is_some_and(|a| a.contains("pwn")))
                        .cloned()
                })
            });
            if let Some(f) = found {
                finding = f;
            }
            !finding.is_null() && !bodies.lock().unwrap().is_empty()
        }),
        "no finding and alert for the hostile thread leak: {finding}"
    );
    let target = finding["target"].as_str().unwrap().to_string();
    let mut incident = String::new();
    assert!(
        eventually(30, || {
            let listed = leakwatch(&["incidents", "--json", "--url", &url]);
            let listed: serde_json::Value =
                serde_json::from_slice(&listed.stdout).unwrap_or_default();
            if let Some(id) = listed["incidents"]
                .as_array()
                .and_then(|l| l.iter().find(|i| i["target"] == target.as_str()))
                .and_then(|i| i["id"].as_str())
            {
                incident = id.to_string();
            }
            !incident.is_empty()
        }),
        "no incident for {target}"
    );

    let runs: Vec<Vec<&str>> = vec![
        vec!["snapshot", "--pid", &pid],
        vec!["snapshot", "--pid", &pid, "--json"],
        vec!["targets", "--url", &url],
        vec!["targets", "--url", &url, "--json"],
        vec!["leaks", "--url", &url],
        vec!["leaks", "--url", &url, "--json"],
        vec!["history", &target, "--url", &url],
        vec!["history", &target, "--url", &url, "--json"],
        vec!["restarts", &target, "--url", &url],
        vec!["incidents", "--url", &url],
        vec!["incident", &incident, "--url", &url],
        vec!["incident", &incident, "--url", &url, "--json"],
        vec![
            "incident",
            &incident,
            "--url",
            &url,
            "--file",
            "threads.txt",
        ],
        vec!["alerts", "--url", &url],
        vec!["alerts", "--url", &url, "--json"],
        vec!["report", &target, "--url", &url, "--format", "md"],
        vec!["report", &incident, "--url", &url, "--format", "md"],
    ];
    for args in &runs {
        let out = leakwatch(args);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "leakwatch {args:?}: {out:?}");
        assert!(
            !text.trim().is_empty(),
            "leakwatch {args:?} printed nothing"
        );
        assert_eq!(
            raw_controls(&out.stdout),
            Vec::<u8>::new(),
            "leakwatch {args:?}:\n{text}"
        );
        assert_eq!(
            raw_reordering(&out.stdout),
            Vec::<char>::new(),
            "leakwatch {args:?}:\n{text}"
        );
        assert_eq!(
            raw_controls(&out.stderr),
            Vec::<u8>::new(),
            "leakwatch {args:?} (stderr)"
        );
    }
    // The tables show the names, escaped (not dropped): the thread group in `leaks`.
    let leaks = leakwatch(&["leaks", "--url", &url]);
    assert!(
        String::from_utf8_lossy(&leaks.stdout).contains("\\e]#;pwn\\x07-#"),
        "{}",
        String::from_utf8_lossy(&leaks.stdout)
    );

    // `check` samples the process itself; it leaks, so exit 1 (found) — never 2 (error).
    let check = leakwatch(&[
        "check",
        "--pid",
        &pid,
        "--workload",
        "true",
        "--rounds",
        "2",
        "--warmup",
        "0",
    ]);
    assert!(matches!(check.status.code(), Some(0 | 1)), "{check:?}");
    assert_eq!(raw_controls(&check.stdout), Vec::<u8>::new(), "{check:?}");
    assert_eq!(
        raw_reordering(&check.stdout),
        Vec::<char>::new(),
        "{check:?}"
    );

    // `top` in a real terminal: tmux keeps the raw byte stream (pipe-pane) and the title.
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("tmux.sock");
    let raw = dir.path().join("raw");
    let tmux = |args: &[&str]| {
        Command::new("tmux")
            .arg("-S")
            .arg(&socket)
            .args(args)
            .output()
            .expect("tmux must be installed (scripts/test.sh installs it)")
    };
    let command = format!("'{}' top --url {url}", workspace_bin("leakwatch").display());
    let started = tmux(&[
        "-f",
        "/dev/null",
        "new-session",
        "-d",
        "-x",
        "200",
        "-y",
        "50",
        "-s",
        "top",
        &command,
    ]);
    assert!(started.status.success(), "{started:?}");
    let piped = tmux(&[
        "pipe-pane",
        "-o",
        "-t",
        "top",
        &format!("cat >> '{}'", raw.display()),
    ]);
    assert!(piped.status.success(), "{piped:?}");
    // Filter to the hostile target so its row and details are on screen.
    let shown = eventually(20, || {
        String::from_utf8_lossy(&tmux(&["capture-pane", "-p", "-t", "top"]).stdout).contains("pwn")
    });
    let screen =
        String::from_utf8_lossy(&tmux(&["capture-pane", "-p", "-t", "top"]).stdout).into_owned();
    let title =
        String::from_utf8_lossy(&tmux(&["display", "-p", "-t", "top", "#{pane_title}"]).stdout)
            .into_owned();
    let _ = tmux(&["send-keys", "-t", "top", "q"]);
    std::thread::sleep(std::time::Duration::from_millis(500));
    let _ = tmux(&["kill-server"]);
    assert!(
        shown,
        "the hostile thread group is not on top's screen:\n{screen}"
    );
    assert!(
        !title.contains("pwn"),
        "top let a name set the terminal title: {title:?}"
    );
    let stream = std::fs::read(&raw).unwrap_or_default();
    assert!(!stream.is_empty(), "tmux pipe-pane captured nothing");
    for hostile in [&b"\x1b]0;pwn"[..], b"\x1b]2;pwn", "\u{202e}".as_bytes()] {
        assert!(
            !stream.windows(hostile.len()).any(|w| w == hostile),
            "top wrote {hostile:?} raw to the terminal"
        );
    }
    drop(leaky);
}
