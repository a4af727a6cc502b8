//! Runs the crate's examples as child processes, as a developer would. `examples/suite.rs`:
//! clean, it passes; with `LEAK=1`, the check after all tests fails the run and names the
//! CLOSE_WAIT socket and the thread. `examples/incident_001.rs`: the guard and repeat mode
//! tell the leaky client from the fixed one.

use std::path::PathBuf;
use std::process::{Command, Output};

fn example(name: &str) -> PathBuf {
    // `cargo test` builds the examples next to the test binaries: target/debug/examples.
    let exe = std::env::current_exe().unwrap();
    let path = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join(name);
    assert!(path.exists(), "{} not built", path.display());
    path
}

fn run(leak: bool) -> (Output, String) {
    let mut command = Command::new(example("suite"));
    command.env_remove("LEAK");
    if leak {
        command.env("LEAK", "1");
    }
    let output = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    (output, stdout)
}

#[test]
fn a_clean_suite_passes() {
    let (output, stdout) = run(false);
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains("leaks after all tests: none"), "{stdout}");
    assert!(
        stdout.contains("test result: ok. 2 passed; 0 failed"),
        "{stdout}"
    );
}

#[test]
fn a_leak_in_any_test_fails_the_suite_with_a_report() {
    let (output, stdout) = run(true);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("test leaks_a_connection_and_a_thread ... ok"),
        "{stdout}"
    );
    assert!(stdout.contains("thread \"stats-flusher\""), "{stdout}");
    assert!(stdout.contains("TCP CLOSE_WAIT 127.0.0.1:"), "{stdout}");
    assert!(
        stdout.contains("test result: FAILED. 3 passed; 0 failed"),
        "{stdout}"
    );
}

#[test]
fn incident_001_example_tells_the_leaky_client_from_the_fixed_one() {
    let output = Command::new(example("incident_001")).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains("fixed client: no leaks"), "{stdout}");
    assert!(
        stdout.contains("fixed client, repeated: nothing grew"),
        "{stdout}"
    );
    assert!(
        stdout.contains("sockets CLOSE_WAIT -> 127.0.0.1:"),
        "{stdout}"
    );
    assert!(
        stdout.contains("+1 per round (baseline 3; 3 rounds: 4, 5, 6)"),
        "{stdout}"
    );
}
