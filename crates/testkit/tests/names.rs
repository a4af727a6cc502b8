//! Readable automatic names on a real agent: a JVM started as `java -cp DIR AnalyticsServer`
//! and a Python script `order_worker.py`, matched by no rule, service or container, are the
//! targets `AnalyticsServer` and `order_worker.py` in the API and in `leakwatch targets`;
//! the JVM's thread leak is a finding carrying its pid and command line.

use leakwatch_testkit::{eventually, workspace_bin, Agent};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A child killed and reaped on drop.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `command`, waiting until it printed `ready`.
fn start(command: &mut Command) -> Killed {
    let mut child = Killed(
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    BufReader::new(child.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready", "{command:?} did not start");
    child
}

fn jvm(dir: &Path) -> Killed {
    if Command::new("javac").arg("-version").output().is_err() {
        panic!("javac not found: install openjdk-17-jdk-headless (see .ci/run)");
    }
    let source = dir.join("AnalyticsServer.java");
    std::fs::write(
        &source,
        "public class AnalyticsServer {\n\
         public static void main(String[] args) throws Exception {\n\
         System.out.println(\"ready\");\n\
         for (int i = 0; i < 1200; i++) {\n\
         Thread t = new Thread(() -> {\n\
         try { Thread.sleep(Long.MAX_VALUE); } catch (InterruptedException e) { }\n\
         }, \"Analytics-\" + i);\n\
         t.setDaemon(true);\n\
         t.start();\n\
         Thread.sleep(100);\n\
         }\n\
         Thread.sleep(120_000);\n\
         }\n\
         }\n",
    )
    .unwrap();
    let status = Command::new("javac")
        .arg("-d")
        .arg(dir)
        .arg(&source)
        .status()
        .unwrap();
    assert!(status.success(), "javac failed");
    start(
        Command::new("java")
            .args(["-Xmx32m", "-cp"])
            .arg(dir)
            .arg("AnalyticsServer"),
    )
}

fn python(dir: &Path) -> Killed {
    let script = dir.join("order_worker.py");
    std::fs::write(
        &script,
        "import time\nprint('ready', flush=True)\ntime.sleep(120)\n",
    )
    .unwrap();
    start(Command::new("python3").arg("-u").arg(&script))
}

/// The target whose processes include `pid`, from `/api/v1/targets`.
fn target_of(targets: &Value, pid: u32) -> Option<Value> {
    targets["targets"]
        .as_array()?
        .iter()
        .find(|t| {
            t["processes"]
                .as_array()
                .is_some_and(|ps| ps.iter().any(|p| p["pid"] == pid))
        })
        .cloned()
}

#[test]
fn interpreters_are_named_after_their_program() {
    let dir = tempfile::tempdir().unwrap();
    let java = jvm(dir.path());
    let worker = python(dir.path());
    let agent = Agent::start("[detect]\npreset = \"fast\"\n");
    let (java_pid, worker_pid) = (java.0.id(), worker.0.id());
    // Automatic targets are admitted on their third consecutive pass (1 s each).
    let mut last = Value::Null;
    let found = eventually(20, || {
        last = agent.get_json("/api/v1/targets").unwrap_or(Value::Null);
        target_of(&last, java_pid).is_some() && target_of(&last, worker_pid).is_some()
    });
    assert!(found, "not listed: {last:#}");
    let java_target = target_of(&last, java_pid).unwrap();
    assert_eq!(java_target["name"], "AnalyticsServer", "{java_target:#}");
    assert_eq!(java_target["kind"], "exe");
    let worker_target = target_of(&last, worker_pid).unwrap();
    assert_eq!(
        worker_target["name"], "order_worker.py",
        "{worker_target:#}"
    );
    assert_eq!(worker_target["kind"], "exe");

    let out = Command::new(workspace_bin("leakwatch"))
        .args(["targets", "--json", "--url", &agent.url()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = listed["targets"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(names.contains(&"AnalyticsServer"), "{names:?}");
    assert!(names.contains(&"order_worker.py"), "{names:?}");

    // The JVM starts an "Analytics-N" thread every 100 ms (incident 000): its finding is
    // on the target AnalyticsServer and carries the JVM's pid and command line.
    let mut finding = Value::Null;
    let found = eventually(90, || {
        finding = agent
            .get_json("/api/v1/findings")
            .and_then(|v| {
                v["findings"]
                    .as_array()?
                    .iter()
                    .find(|f| f["target"] == "AnalyticsServer" && f["resource"] == "threads")
                    .cloned()
            })
            .unwrap_or(Value::Null);
        !finding.is_null()
    });
    assert!(
        found,
        "no thread finding on AnalyticsServer: {:#}",
        agent.get_json("/api/v1/findings").unwrap_or_default()
    );
    assert_eq!(finding["resource"], "threads", "{finding:#}");
    assert_eq!(finding["attribution"], "Analytics-#", "{finding:#}");
    assert_eq!(
        finding["pids"],
        serde_json::json!([java_pid]),
        "{finding:#}"
    );
    let process = &finding["processes"][0];
    assert_eq!(process["pid"], java_pid, "{finding:#}");
    assert!(
        process["cmdline"]
            .as_str()
            .is_some_and(|c| c.starts_with("java -Xmx32m -cp ") && c.ends_with(" AnalyticsServer")),
        "{process:#}"
    );
}
