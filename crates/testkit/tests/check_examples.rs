//! The `leakwatch check` examples of `examples/check/`, run exactly as documented: the
//! incident-001 client that leaks CLOSE_WAIT sockets on a 403 with a body (caught), the
//! same client fixed (clean), the bug hidden by a body-less 403 (clean, as the team's mocked
//! tests were), and the thread-per-call executor of incident 000 (caught).
//!
//! The example programs are also checked against `ss`, independently of leakwatch, so a
//! passing "clean" run means the fixed client really closes its sockets.

use leakwatch_testkit::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn bin_dir() -> PathBuf {
    workspace_bin("leakwatch").parent().unwrap().to_path_buf()
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/check")
        .join(name)
}

/// Runs an example script on free ports; returns its output and stdout.
fn run_example(name: &str, args: &[&str], ports: &[(&str, u16)]) -> (Output, String) {
    let mut command = Command::new("bash");
    command
        .arg(script(name))
        .args(args)
        .env("BIN_DIR", bin_dir())
        .env("LEAKWATCH", workspace_bin("leakwatch"));
    for (name, port) in ports {
        command.env(name, port.to_string());
    }
    let output = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    (output, stdout)
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn close_wait_on_403_with_a_body_is_caught_with_its_peer() {
    let downstream = free_port();
    let ports = [
        ("SERVICE_PORT", free_port()),
        ("DOWNSTREAM_PORT", downstream),
    ];
    let (output, stdout) = run_example("close-wait-403.sh", &[], &ports);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{stdout}\n{}",
        stderr(&output)
    );
    let row = format!("LEAK    sockets CLOSE_WAIT -> 127.0.0.1:{downstream} +1 per round");
    assert!(stdout.contains(&row), "{stdout}");
    assert!(
        stdout.contains("LEAK    sockets CLOSE_WAIT +1 per round"),
        "{stdout}"
    );
    assert!(
        stdout.contains("LEAK    fds socket +1 per round"),
        "{stdout}"
    );
    // Evidence: the sockets themselves, resolved to state and both ends.
    assert!(
        stdout.contains("TCP CLOSE_WAIT 127.0.0.1:")
            && stdout.contains(&format!("-> 127.0.0.1:{downstream}")),
        "{stdout}"
    );
    assert!(stdout.contains("result: LEAK: 3 of"), "{stdout}");
}

#[test]
fn the_fixed_client_is_clean() {
    let ports = [
        ("SERVICE_PORT", free_port()),
        ("DOWNSTREAM_PORT", free_port()),
    ];
    let (output, stdout) = run_example("close-wait-403.sh", &["--fixed"], &ports);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}\n{}",
        stderr(&output)
    );
    assert!(stdout.contains("result: clean:"), "{stdout}");
    assert!(!stdout.contains("LEAK"), "{stdout}");
}

#[test]
fn a_body_less_403_hides_the_bug_as_the_mocked_tests_did() {
    let ports = [
        ("SERVICE_PORT", free_port()),
        ("DOWNSTREAM_PORT", free_port()),
    ];
    let (output, stdout) = run_example("close-wait-403.sh", &["--empty-403"], &ports);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}\n{}",
        stderr(&output)
    );
    assert!(stdout.contains("result: clean:"), "{stdout}");
}

#[test]
fn a_thread_per_call_executor_is_caught_ten_threads_per_round() {
    let ports = [("SERVICE_PORT", free_port())];
    let (output, stdout) = run_example("thread-per-call.sh", &[], &ports);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{stdout}\n{}",
        stderr(&output)
    );
    assert!(
        stdout.contains(
            "LEAK    threads Analytics-# +10 per round (baseline 20; 5 rounds: 30, 40, 50, 60, 70)"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("thread \"Analytics-2"), "{stdout}");
    assert!(stdout.contains("... and 45 more"), "{stdout}");
}

#[test]
fn the_executor_shut_down_after_each_call_is_clean_and_json_says_so() {
    let ports = [("SERVICE_PORT", free_port())];
    let (output, stdout) = run_example("thread-per-call.sh", &["--fixed", "--json"], &ports);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}\n{}",
        stderr(&output)
    );
    let json: serde_json::Value = serde_json::from_str(&stdout).expect("stdout is only JSON");
    assert_eq!(json["verdict"], "clean");
    let findings = json["processes"][0]["findings"].as_array().unwrap();
    assert!(
        findings.iter().all(|f| f["verdict"] == "steady"),
        "{stdout}"
    );
}

/// The example programs, without leakwatch: `ss` sees one CLOSE_WAIT socket per 403 from
/// the leaky client to the downstream, and none from the fixed one.
#[test]
fn ss_agrees_the_leaky_client_leaks_and_the_fixed_one_does_not() {
    let downstream = free_port();
    let mut server = Command::new(bin_dir().join("forbidding-server"))
        .arg(format!("127.0.0.1:{downstream}"))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(server.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    assert!(line.starts_with("listening"), "{line}");
    for fixed in [false, true] {
        let port = free_port();
        let mut args = vec![
            "--listen".to_string(),
            format!("127.0.0.1:{port}"),
            "--downstream".to_string(),
            format!("127.0.0.1:{downstream}"),
        ];
        if fixed {
            args.push("--fixed".into());
        }
        let mut client = Command::new(bin_dir().join("session-client"))
            .args(&args)
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        assert!(eventually(10, || std::net::TcpStream::connect((
            "127.0.0.1",
            port
        ))
        .is_ok()));
        let url = format!("http://127.0.0.1:{port}/orders");
        for cookie in [
            "session=expired",
            "session=expired",
            "session=expired",
            "session=valid",
        ] {
            let status = Command::new(bin_dir().join("http-get"))
                .args(["--cookie", cookie, &url])
                .stdout(Stdio::null())
                .status()
                .unwrap();
            assert!(status.success());
        }
        let peer = format!("127.0.0.1:{downstream}");
        let close_wait = || {
            ss_tcp(client.id())
                .iter()
                .filter(|s| s.state == "CLOSE_WAIT" && s.peer == peer)
                .count()
        };
        let expected = if fixed { 0 } else { 3 };
        assert!(
            eventually(10, || close_wait() == expected),
            "fixed={fixed}: {} CLOSE_WAIT to {peer}, expected {expected}",
            close_wait()
        );
        // The valid session's connection is back in the pool, alive.
        assert!(ss_tcp(client.id())
            .iter()
            .any(|s| s.state == "ESTABLISHED" && s.peer == peer));
        client.kill().unwrap();
        client.wait().unwrap();
    }
    server.kill().unwrap();
    server.wait().unwrap();
}
