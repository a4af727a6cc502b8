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
