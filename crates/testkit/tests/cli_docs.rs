//! `leakwatch completions` and `leakwatch man`, checked by the real consumers: bash's own
//! completion machinery, and groff/man rendering every page.

use leakwatch_testkit::workspace_bin;
use std::process::Command;

fn leakwatch(args: &[&str]) -> std::process::Output {
    Command::new(workspace_bin("leakwatch"))
        .args(args)
        .output()
        .expect("run leakwatch")
}

/// What bash completes for the words `line` (the last one being completed).
fn bash_complete(script: &std::path::Path, line: &[&str]) -> Vec<String> {
    let words = line
        .iter()
        .map(|w| format!("'{w}'"))
        .collect::<Vec<_>>()
        .join(" ");
    let program = format!(
        "source '{}' || exit 9\n\
         COMP_WORDS=({words}); COMP_CWORD={}; COMP_LINE=\"${{COMP_WORDS[*]}}\"; COMP_POINT=${{#COMP_LINE}}\n\
         func=$(complete -p leakwatch | sed -E 's/.*-F ([^ ]+).*/\\1/')\n\
         \"$func\" leakwatch \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"\n\
         printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script.display(),
        line.len() - 1
    );
    let out = Command::new("bash")
        .args(["-c", &program])
        .output()
        .expect("run bash");
    assert!(
        out.status.success(),
        "bash: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn bash_completes_commands_and_options_from_the_generated_script() {
    let out = leakwatch(&["completions", "bash"]);
    assert!(out.status.success());
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("leakwatch.bash");
    std::fs::write(&script, &out.stdout).unwrap();

    let commands = bash_complete(&script, &["leakwatch", "sn"]);
    assert_eq!(commands, vec!["snapshot"], "{commands:?}");
    let all = bash_complete(&script, &["leakwatch", ""]);
    for command in ["agent", "leaks", "run", "top", "completions", "man"] {
        assert!(all.iter().any(|c| c == command), "{command}: {all:?}");
    }
    let options = bash_complete(&script, &["leakwatch", "agent", "--inter"]);
    assert_eq!(options, vec!["--interval"], "{options:?}");

    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let out = leakwatch(&["completions", shell]);
        assert!(out.status.success(), "{shell}");
        let text = String::from_utf8_lossy(&out.stdout);
        // fish names long options without their dashes (`-l interval`).
        assert!(
            text.contains("snapshot") && text.contains("interval"),
            "{shell}"
        );
    }
    let out = leakwatch(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid value 'tcsh'"));
}

#[test]
fn man_pages_are_written_for_every_command_and_render_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let pages = dir.path().join("man1");
    let out = leakwatch(&["man", "--dir", pages.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut names: Vec<String> = std::fs::read_dir(&pages)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for page in [
        "leakwatch.1",
        "leakwatch-agent.1",
        "leakwatch-leaks.1",
        "leakwatch-alert-test.1",
        "leakwatch-config.1",
        "leakwatch-man.1",
    ] {
        assert!(names.iter().any(|n| n == page), "{page}: {names:?}");
    }
    assert!(!names.iter().any(|n| n.contains("help")), "{names:?}");
    // Every page renders with groff's man macros and no warning.
    for name in &names {
        let out = Command::new("groff")
            .args(["-man", "-Tutf8", "-ww", "-z"])
            .arg(pages.join(name))
            .output()
            .expect("groff (groff-base)");
        assert!(out.status.success(), "{name}");
        assert!(
            out.stderr.is_empty(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // And man shows the agent's options, with their help.
    let out = Command::new("man")
        .args(["-P", "cat", "-l"])
        .arg(pages.join("leakwatch-agent.1"))
        .env("MANWIDTH", "100")
        .output()
        .expect("man");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("--interval"), "{text}");
    assert!(text.contains("leakwatch-agent"), "{text}");
}
