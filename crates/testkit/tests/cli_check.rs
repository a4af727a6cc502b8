//! `leakwatch check` as a user and a CI job run it: attaching by pid and by regex, ignore
//! rules, `--json` and `--junit`, memory growth, errors with exit 2, and no orphans left
//! behind when the check ends, fails or is interrupted.

use leakwatch_testkit::*;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

fn leakwatch(args: &[&str]) -> Output {
    Command::new(workspace_bin("leakwatch"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run leakwatch")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn gone(pid: u32) -> bool {
    // A zombie still has a /proc entry; its state letter is Z.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .unwrap()
            .trim_start()
            .starts_with('Z'),
        Err(_) => true,
    }
}

/// A process that starts a thread `Tick-N` every 100 ms: grows in every round.
fn ticking() -> Leaky {
    Leaky::start(&["threads=steady:3", "leak-threads=Tick:100"])
}

#[test]
fn attached_by_pid_a_growing_thread_group_is_a_leak_and_the_process_is_left_running() {
    // A thread every 5 ms: no two samples agree, so it never settles either.
    let leaky = Leaky::start(&["threads=steady:3", "leak-threads=Tick:5"]);
    let pid = leaky.pid().to_string();
    let out = leakwatch(&[
        "check",
        "--pid",
        &pid,
        "--workload",
        "sleep 0.3",
        "--warmup",
        "1",
        "--rounds",
        "3",
        "--settle",
        "200ms",
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    assert!(stdout.contains("LEAK    threads Tick-# +"), "{stdout}");
    assert!(stdout.contains("thread \"Tick-"), "{stdout}");
    // A process that never stops changing is judged on its last sample, with a note.
    assert!(stdout.contains("did not settle within 200ms"), "{stdout}");
    assert!(
        !stdout.contains("steady-#"),
        "steady threads are not reported: {stdout}"
    );
    assert!(!gone(leaky.pid()), "an attached process is not stopped");
}

#[test]
fn why_names_the_function_that_creates_the_leaking_threads() {
    // --why traces the measured rounds with eBPF (the suite runs as root): the leak's
    // line says which function starts the threads, from the process's own symbols.
    let leaky = ticking();
    let pid = leaky.pid().to_string();
    let out = leakwatch(&[
        "check",
        "--pid",
        &pid,
        "--workload",
        "sleep 0.4",
        "--warmup",
        "1",
        "--rounds",
        "3",
        "--settle",
        "200ms",
        "--why",
        "--json",
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let leak = report["processes"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["verdict"] == "leak")
        .expect("a leak")
        .clone();
    assert_eq!(leak["resource"], "threads Tick-#", "{leak}");
    let why = leak["why"].as_str().unwrap_or("");
    assert!(
        why.contains(" new threads still running after ")
            && why.contains(" were started from leaky::spawn_named (leaky.rs:"),
        "{leak}"
    );
    // Only leaks get a why; steady resources do not.
    assert!(report["processes"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .all(|f| f["verdict"] == "leak" || f.get("why").is_none()));
}

#[test]
fn why_names_the_java_code_that_starts_a_jvms_leaking_threads() {
    // Incident 000 in miniature: a JVM starting an Analytics-N thread every 100 ms from
    // Analytics.request. --why records thread starts with JFR during the measured rounds.
    let java = Jvm::analytics(&["0", "100"]);
    let pid = java.pid().to_string();
    let out = leakwatch(&[
        "check",
        "--pid",
        &pid,
        "--workload",
        "sleep 1",
        "--warmup",
        "1",
        "--rounds",
        "3",
        "--settle",
        "300ms",
        "--why",
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    let why = stdout
        .lines()
        .skip_while(|l| !l.contains("LEAK    threads Analytics-#"))
        .nth(1)
        .unwrap_or("");
    assert!(
        why.trim_start().starts_with("why: ")
            && why.contains("% of new threads were started from")
            && why.contains("Analytics.request"),
        "{stdout}"
    );
}

#[test]
fn ignored_growth_is_reported_but_does_not_fail() {
    let leaky = ticking();
    let pid = leaky.pid().to_string();
    let out = leakwatch(&[
        "check",
        "--pid",
        &pid,
        "--workload",
        "sleep 0.3",
        "--warmup",
        "0",
        "--rounds",
        "3",
        "--settle",
        "100ms",
        "--ignore",
        "threads:Tick-*",
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    assert!(stdout.contains("ignored threads Tick-# +"), "{stdout}");
    assert!(stdout.contains("[--ignore threads:Tick-*]"), "{stdout}");
    assert!(stdout.contains("1 accepted by --ignore"), "{stdout}");
}

#[test]
fn json_and_junit_for_ci() {
    let leaky = ticking();
    let pid = leaky.pid().to_string();
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("leaks.xml");
    let out = leakwatch(&[
        "check",
        "--pid",
        &pid,
        "--workload",
        "sleep 0.3",
        "--warmup",
        "1",
        "--rounds",
        "3",
        "--settle",
        "100ms",
        "--json",
        "--junit",
        junit.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("only JSON");
    assert_eq!(json["verdict"], "leak");
    assert_eq!(json["rounds"], 3);
    let process = &json["processes"][0];
    assert_eq!(process["pid"].as_u64(), Some(u64::from(leaky.pid())));
    let tick = process["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["resource"] == "threads Tick-#")
        .expect("the ticking group is a finding");
    assert_eq!(tick["verdict"], "leak");
    assert_eq!(tick["key"]["class"], "threads");
    assert_eq!(tick["rounds"].as_array().unwrap().len(), 3);
    assert!(tick["evidence"][0].as_str().unwrap().contains("Tick-"));
    let steady = process["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["resource"] == "threads steady-#")
        .unwrap();
    assert_eq!(steady["verdict"], "steady");
    assert_eq!(steady["baseline"], 3);

    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.starts_with("<?xml"), "{xml}");
    assert!(
        xml.contains("<testcase classname=\"leakwatch.check.threads\" name=\"Tick-#\">"),
        "{xml}"
    );
    assert!(
        xml.contains("<failure type=\"leak\" message=\"threads Tick-# +"),
        "{xml}"
    );
    assert!(
        xml.contains("<testcase classname=\"leakwatch.check.threads\" name=\"steady-#\"/>"),
        "{xml}"
    );
    assert!(xml.contains("failures=\"1\""), "{xml}");
}

#[test]
fn match_selects_by_name_and_a_steady_process_is_clean() {
    let name = format!("lwchk{}", std::process::id() % 100_000);
    let leaky = Leaky::start(&["threads=worker:4", "pipes=2", &format!("comm={name}")]);
    let out = leakwatch(&[
        "check",
        "--match",
        &format!("^{name}$"),
        "--workload",
        "true",
        "--rounds",
        "3",
        "--warmup",
        "1",
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("pid {} ({name})", leaky.pid())),
        "{stdout}"
    );
    assert!(stdout.contains("result: clean:"), "{stdout}");
}

#[test]
fn memory_that_grows_every_round_is_a_leak() {
    // A std-only Python server that keeps 4 MiB per request, touched so it is resident.
    let port = free_port();
    let server = format!(
        r#"
import http.server
kept = []
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        kept.append(bytearray(b"x" * (4 << 20)))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", {port}), Handler).serve_forever()
"#
    );
    let workload = format!(
        "{} http://127.0.0.1:{port}/grow",
        workspace_bin("http-get").display()
    );
    let out = leakwatch(&[
        "check",
        "--workload",
        &workload,
        "--ready-port",
        &port.to_string(),
        "--rounds",
        "3",
        "--",
        "python3",
        "-c",
        &server,
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    assert!(stdout.contains("LEAK    memory rss_anon +4."), "{stdout}");
    assert!(stdout.contains("MiB per round"), "{stdout}");

    // With a tolerance above the growth, it is not.
    let out = leakwatch(&[
        "check",
        "--workload",
        &workload,
        "--ready-port",
        &port.to_string(),
        "--rounds",
        "3",
        "--memory-tolerance",
        "8MiB",
        "--",
        "python3",
        "-c",
        &server,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
}

#[test]
fn usage_and_runtime_errors_exit_2_with_the_reason() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["check", "--workload", "true"],
            "give --pid PID, --match REGEX, or -- SERVER",
        ),
        (
            &["check", "--workload", "true", "--pid", "1", "--match", "x"],
            "only one of",
        ),
        (
            &["check", "--workload", "echo 'unclosed", "--pid", "1"],
            "unbalanced quotes",
        ),
        (
            &["check", "--workload", "true", "--pid", "2147483646"],
            "no such process",
        ),
        (
            &["check", "--workload", "true", "--match", "(("],
            "invalid regular expression",
        ),
        (
            &["check", "--workload", "true", "--rounds", "1", "--pid", "1"],
            "--rounds",
        ),
        (
            &[
                "check",
                "--workload",
                "true",
                "--ignore",
                "thread:x",
                "--pid",
                "1",
            ],
            "CLASS",
        ),
        (&["check", "--workload", "true", "--", "false"], "exited"),
        (
            &["check", "--workload", "true", "--", "/nonexistent/server"],
            "cannot start server",
        ),
        (
            &[
                "check",
                "--workload",
                "sh -c 'echo oops >&2; exit 3'",
                "--",
                "sleep",
                "30",
            ],
            "oops",
        ),
    ];
    for (args, expected) in cases {
        let out = leakwatch(args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}

#[test]
fn a_check_that_cannot_run_still_leaves_a_junit_error_for_ci() {
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("leaks.xml");
    let out = leakwatch(&[
        "check",
        "--workload",
        "false",
        "--junit",
        junit.to_str().unwrap(),
        "--",
        "sleep",
        "30",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains("<error message=\"workload, warm-up 1/2"),
        "{xml}"
    );
}

/// Reads leakwatch's stderr until it names the process under test; returns its pid.
fn checked_pid(stderr: &mut impl BufRead) -> u32 {
    let mut line = String::new();
    loop {
        line.clear();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "leakwatch ended early"
        );
        if let Some(rest) = line.split(" against pid ").nth(1) {
            return rest.split_whitespace().next().unwrap().parse().unwrap();
        }
    }
}

#[test]
fn a_started_server_is_stopped_after_the_check() {
    let port = free_port();
    let out = leakwatch(&[
        "check",
        "--workload",
        "true",
        "--rounds",
        "2",
        "--warmup",
        "0",
        "--json",
        "--ready-port",
        &port.to_string(),
        "--",
        workspace_bin("analytics-service").to_str().unwrap(),
        "--listen",
        &format!("127.0.0.1:{port}"),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let pid = json["processes"][0]["pid"].as_u64().unwrap() as u32;
    assert!(json["started_by_check"].as_bool().unwrap());
    assert!(gone(pid), "server {pid} outlived the check");
}

#[test]
fn ctrl_c_stops_the_server_and_the_workload() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("workload.pid");
    let workload = format!("sh -c 'echo $$ > {}; exec sleep 60'", pid_file.display());
    let mut check = Command::new(workspace_bin("leakwatch"))
        .args([
            "check",
            "--workload",
            &workload,
            "--ready-port",
            &port.to_string(),
            "--",
            workspace_bin("analytics-service").to_str().unwrap(),
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(check.stderr.take().unwrap());
    let server = checked_pid(&mut stderr);
    assert!(eventually(10, || Path::new(&pid_file).exists()
        && std::fs::read_to_string(&pid_file).unwrap().ends_with('\n')));
    let workload_pid: u32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(!gone(server) && !gone(workload_pid));

    // SAFETY: signalling a child we started.
    unsafe { libc::kill(check.id() as i32, libc::SIGINT) };
    let status = check.wait().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    assert_eq!(status.code(), Some(2), "{rest}");
    assert!(rest.contains("interrupted"), "{rest}");
    assert!(
        eventually(5, || gone(server)),
        "server {server} outlived the check"
    );
    assert!(
        eventually(5, || gone(workload_pid)),
        "workload outlived the check"
    );
    std::thread::sleep(Duration::from_millis(10));
}
