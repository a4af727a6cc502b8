//! The docs name only commands and options that exist (issue 15): every `leakwatch
//! COMMAND [SUBCOMMAND] --option` in a code span or code block of README.md and docs/*.md
//! is checked against the binary's own `--help`; and the list of commands in `leakwatch
//! --help` is a golden file (tests/golden/commands.txt), so a command is never removed or
//! renamed without the docs being revisited.

use leakwatch_testkit::workspace_bin;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;

fn help(args: &[&str]) -> Option<String> {
    let out = Command::new(workspace_bin("leakwatch"))
        .args(args)
        .arg("--help")
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The subcommands a `--help` lists under "Commands:".
fn commands(help: &str) -> BTreeSet<String> {
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| {
            let word = l.split_whitespace().next()?;
            (l.starts_with("  ") && !l.starts_with("   ")).then(|| word.to_string())
        })
        .filter(|w| w != "help")
        .collect()
}

/// The code of a markdown file: its fenced blocks and its inline code spans.
fn code_of(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            out.push(line.to_string());
            continue;
        }
        let mut parts = line.split('`');
        parts.next();
        while let Some(code) = parts.next() {
            out.push(code.to_string());
            parts.next();
        }
    }
    out
}

fn docs() -> Vec<PathBuf> {
    let root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    let mut files = vec![root.join("README.md")];
    let mut more: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    more.sort();
    files.extend(more);
    files
}

#[test]
fn every_command_and_option_the_docs_name_exists() {
    let top = help(&[]).expect("leakwatch --help");
    let known = commands(&top);
    let mut helps: BTreeMap<Vec<String>, Option<String>> = BTreeMap::new();
    let mut problems = Vec::new();
    let mut checked = 0;
    for file in docs() {
        let text = std::fs::read_to_string(&file).unwrap();
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        for code in code_of(&text) {
            // Each `leakwatch WORD ...` up to a shell separator.
            for (at, _) in code.match_indices("leakwatch ") {
                // Not a path or another word ending in leakwatch (`/usr/bin/leakwatch` is
                // still the command; `leakwatch-agent` is not).
                let before = code[..at].chars().last();
                if before.is_some_and(|c| c.is_alphanumeric() || c == '-' || c == '_') {
                    continue;
                }
                let rest = &code[at + "leakwatch ".len()..];
                let rest = rest
                    .split(['|', ';', '&', '>', '<', '(', ')', '`'])
                    .next()
                    .unwrap_or("");
                let mut words: Vec<&str> = rest.split_whitespace().collect();
                // `cargo run -p leakwatch -- agent`: the command follows `--`.
                if words.first() == Some(&"--") {
                    words.remove(0);
                }
                let Some(&command) = words.first() else {
                    continue;
                };
                if !command.starts_with(|c: char| c.is_ascii_lowercase())
                    || !command.chars().all(|c| c.is_ascii_lowercase() || c == '-')
                {
                    continue;
                }
                if !known.contains(command) {
                    problems.push(format!("{name}: `leakwatch {command}` is not a command"));
                    continue;
                }
                // A subcommand of the command (`alert test`, `config check`), if named.
                let mut path = vec![command.to_string()];
                let first_help = helps
                    .entry(path.clone())
                    .or_insert_with(|| help(&[command]))
                    .clone()
                    .unwrap_or_default();
                if let Some(sub) = words.get(1) {
                    if commands(&first_help).contains(*sub) {
                        path.push(sub.to_string());
                    }
                }
                let args: Vec<&str> = path.iter().map(String::as_str).collect();
                let text = helps
                    .entry(path.clone())
                    .or_insert_with(|| help(&args))
                    .clone()
                    .unwrap_or_default();
                for word in &words[path.len()..] {
                    let Some(option) = word.strip_prefix("--") else {
                        continue;
                    };
                    let option = option.split('=').next().unwrap_or("");
                    if option.is_empty()
                        || !option.chars().all(|c| c.is_ascii_lowercase() || c == '-')
                    {
                        continue;
                    }
                    checked += 1;
                    if !text.contains(&format!("--{option}")) {
                        problems.push(format!(
                            "{name}: `leakwatch {} --{option}`: no such option",
                            path.join(" ")
                        ));
                    }
                }
                checked += 1;
            }
        }
    }
    problems.sort();
    problems.dedup();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(
        checked > 100,
        "only {checked} mentions checked: is the parser broken?"
    );
}

#[test]
fn the_list_of_commands_is_the_golden_one() {
    let top = help(&[]).expect("leakwatch --help");
    let now: Vec<String> = commands(&top).into_iter().collect();
    let golden = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/golden/commands.txt"
    ));
    if std::env::var_os("LEAKWATCH_BLESS").is_some() {
        std::fs::create_dir_all(golden.parent().unwrap()).unwrap();
        std::fs::write(&golden, now.join("\n") + "\n").unwrap();
    }
    let want: Vec<String> = std::fs::read_to_string(&golden)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(
        now, want,
        "the commands changed: update the docs, then LEAKWATCH_BLESS=1 to accept"
    );
}
