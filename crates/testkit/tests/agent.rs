//! `leakwatch agent` end to end: a real agent process sampling every second, a real leaking
//! process, the HTTP API, `/metrics` checked by Prometheus' own `promtool`, restarts of a
//! target recorded across pids, and the agent staying flat under process churn.

use leakwatch_testkit::*;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::Duration;

fn series_values(agent: &Agent, target: &str, resource: &str, attribution: &str) -> Vec<f64> {
    let path = format!("/api/v1/series?target={target}&resource={resource}&since=10m");
    let Some(body) = agent.get_json(&path) else {
        return Vec::new();
    };
    body["series"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["attribution"] == attribution)
        .flat_map(|s| s["points"].as_array().cloned().unwrap_or_default())
        .filter_map(|p| p[1].as_f64())
        .collect()
}

#[test]
fn a_growing_thread_group_is_stored_and_exposed() {
    let agent = Agent::start("[[target]]\nname = \"grower\"\ncmdline = \"leak-threads=Grow\"\n");
    let _leaky = Leaky::start(&["threads=Base:3", "leak-threads=Grow:250"]);
    // At 4 new threads a second, a few seconds of history show a steady climb.
    assert!(
        eventually(30, || series_values(&agent, "grower", "threads", "Grow-#")
            .len()
            >= 5),
        "no history for grower"
    );
    let values = series_values(&agent, "grower", "threads", "Grow-#");
    assert!(
        values.last().unwrap() > values.first().unwrap(),
        "no growth: {values:?}"
    );
    assert!(values.windows(2).all(|w| w[1] >= w[0]), "{values:?}");

    let targets = agent.get_json("/api/v1/targets").unwrap();
    let grower = targets["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "grower")
        .expect("grower listed");
    assert_eq!(grower["kind"], "rule");
    assert_eq!(grower["live"], true);
    assert_eq!(grower["current"]["threads{Base-#}"], 3.0);

    let metrics = agent.get_text("/metrics").unwrap();
    assert!(
        metrics
            .contains("leakwatch_target_thread_group_threads{target=\"grower\",group=\"Grow-#\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("leakwatch_agent_sample_cpu_seconds"));
    // The writer's catalog holds at least the series it writes each interval, twice (its
    // maps of series by id and by key).
    let gauge = |name: &str| {
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
            .and_then(|value| value.trim().parse::<f64>().ok())
    };
    let written = gauge("leakwatch_agent_series").expect("leakwatch_agent_series");
    let slots = gauge("leakwatch_agent_store_catalog_slots").expect("catalog slots");
    assert!(written >= 5.0 && slots >= 2.0 * written, "{metrics}");
    let status = agent.get_json("/api/v1/agent").unwrap();
    assert!(
        status["store_catalog_slots"].as_f64().unwrap_or(0.0) >= 2.0 * written,
        "{status}"
    );
    // Without an Accept for OpenMetrics: the classic text format, counters named `_total`.
    assert!(!metrics.contains("# EOF"), "{metrics}");
    assert!(metrics.contains("# TYPE leakwatch_agent_samples_total counter\n"));
    // Prometheus asks for OpenMetrics and gets it.
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", agent.port)).unwrap();
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: localhost\r\nAccept: application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut openmetrics = String::new();
    stream.read_to_string(&mut openmetrics).unwrap();
    assert!(
        openmetrics.contains("content-type: application/openmetrics-text"),
        "{openmetrics}"
    );
    assert!(openmetrics.trim_end().ends_with("# EOF"), "{openmetrics}");
    assert!(openmetrics.contains("# TYPE leakwatch_agent_samples counter\n"));
    // Prometheus' own tool must accept the classic exposition without a lint remark.
    if let Ok(mut promtool) = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        promtool
            .stdin
            .take()
            .unwrap()
            .write_all(metrics.as_bytes())
            .unwrap();
        let out = promtool.wait_with_output().unwrap();
        // promtool exits 3 for lint problems (counters without `_total`, missing help) and
        // for parse errors.
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stderr.trim().is_empty() && stdout.trim().is_empty(),
            "promtool check metrics: {:?} {stdout} {stderr}",
            out.status
        );
    } else {
        panic!("promtool not found: install the prometheus package (see scripts/test.sh)");
    }

    // The CLI over the API.
    let url = format!("http://127.0.0.1:{}", agent.port);
    let out = Command::new(workspace_bin("leakwatch"))
        .args(["history", "grower", "--resource", "threads", "--url", &url])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text} {:?}", out.stderr);
    assert!(text.contains("threads{Grow-#}"), "{text}");
    let out = Command::new(workspace_bin("leakwatch"))
        .args(["targets", "--url", &url])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("grower"));

    // Silences need alerting; bad input is refused before it reaches the agent.
    let out = leakwatch(&["silence", "grower", "--for", "1h", "--url", &url]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("alerting is not configured"), "{stderr}");
    let out = leakwatch(&["silence", "grower", "--for", "soon", "--url", &url]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not a duration"),
        "{out:?}"
    );
    let out = leakwatch(&["silence", "grower", "--url", &url]);
    assert!(
        !out.status.success(),
        "--for or --expire is required: {out:?}"
    );
    // No incident yet for a made-up ID, and path tricks are refused.
    let out = leakwatch(&["incident", "20260101-000000-nope-0000", "--url", &url]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no incident"),
        "{out:?}"
    );
    let out = leakwatch(&["incident", "../../etc", "--url", &url]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not an incident ID"),
        "{out:?}"
    );
}

#[test]
fn restarts_keep_one_history() {
    let agent = Agent::start("[[target]]\nname = \"flappy\"\ncmdline = \"comm=flappy\"\n");
    // A service: it listens. Started by the test (a parent the agent does not know) and
    // living seconds, a process that did not serve would be a run of a periodic job, not a
    // restart (docs/detection.md, "Crash loops and periodic jobs").
    let first = Leaky::start(&["comm=flappy", "threads=W:2", "listen=127.0.0.1:0"]);
    let first_pid = first.pid();
    // Alive for a few passes, so it is a service that lived, not a passing command.
    assert!(eventually(20, || series_values(
        &agent, "flappy", "threads", ""
    )
    .len()
        >= 4));
    drop(first);
    std::thread::sleep(Duration::from_millis(1500));
    let second = Leaky::start(&["comm=flappy", "threads=W:2", "listen=127.0.0.1:0"]);
    let second_pid = second.pid();
    let found = eventually(20, || {
        agent
            .get_json("/api/v1/restarts?target=flappy")
            .and_then(|body| body["restarts"].as_array().cloned())
            .is_some_and(|list| {
                list.iter()
                    .any(|r| r["old_pid"] == first_pid && r["new_pid"] == second_pid)
            })
    });
    assert!(
        found,
        "first {first_pid} second {second_pid}: {:?} / {:?} / {:?}",
        agent.get_text("/api/v1/series?target=flappy&resource=processes&since=10m"),
        agent.get_text("/api/v1/series?target=flappy&resource=threads&since=10m"),
        agent.get_json("/api/v1/restarts?target=flappy")
    );
}

#[test]
fn process_churn_does_not_grow_the_agent() {
    let agent = Agent::start("");
    let rss = |agent: &Agent| {
        agent.get_json("/api/v1/agent").unwrap()["rss_bytes"]
            .as_f64()
            .unwrap()
    };
    std::thread::sleep(Duration::from_secs(3));
    let before = rss(&agent);
    // Thousands of short-lived processes with ever-changing pids and arguments.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let mut started = 0;
    while std::time::Instant::now() < deadline {
        let _ = Command::new("sh")
            .args(["-c", &format!("exit 0 # {started}")])
            .status();
        started += 1;
    }
    std::thread::sleep(Duration::from_secs(2));
    let after = rss(&agent);
    let stats = agent.get_json("/api/v1/agent").unwrap();
    assert!(started > 500, "churn too slow: {started}");
    assert_eq!(stats["samples_dropped"], 0);
    // Short-lived processes share a target (digits in arguments collapse), so the target
    // count stays small, and the agent's memory does not follow the churn.
    assert!(stats["targets"].as_u64().unwrap() < 100, "{stats}");
    assert!(
        after < before * 1.5 + 4.0 * 1024.0 * 1024.0,
        "agent grew from {before} to {after} bytes over {started} processes"
    );
}

/// Incident 002: a service that crashes every few seconds with its fatal error only on
/// stderr. `leakwatch run` keeps every exit with its code and stderr tail.
#[test]
fn run_records_every_crash_with_its_stderr() {
    let dir = tempfile::tempdir().unwrap();
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
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--listen", &format!("127.0.0.1:{port}"), "--"])
        .args([
            "sh",
            "-c",
            "echo starting; echo 'fatal error: concurrent map writes' >&2; sleep 0.5; exit 2",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let agent = Agent::wrap(
        Command::new("true").spawn().unwrap(),
        port,
        dir.path().join("data"),
    );
    let crashes = || -> Vec<Value> {
        agent
            .get_json("/api/v1/restarts?target=crashy")
            .and_then(|b| b["restarts"].as_array().cloned())
            .unwrap_or_default()
    };
    // Lives last 0.5 s with back-off 1 s, 2 s, 4 s: three restarts within ~10 s.
    assert!(eventually(30, || crashes().len() >= 3), "{:?}", crashes());
    for crash in crashes() {
        assert_eq!(crash["exit_code"], 2, "{crash}");
        assert!(crash["new_pid"].is_u64(), "{crash}");
        assert!(
            crash["stderr_tail"]
                .as_str()
                .unwrap()
                .contains("fatal error: concurrent map writes"),
            "{crash}"
        );
    }
    // The pids chain: each restart's new process is the next one's old process.
    let list = crashes();
    for pair in list.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        assert!(
            a["new_pid"] == b["old_pid"] || a["old_pid"] == b["new_pid"],
            "{a} / {b}"
        );
    }
    // SAFETY: signalling our own child.
    unsafe { libc::kill(run.id() as i32, libc::SIGTERM) };
    let status = run.wait().unwrap();
    assert!(
        status.code().is_some(),
        "leakwatch run died of a signal: {status:?}"
    );
}

/// A tiny metrics server in the test: `/metrics` reports a goroutine count that grows with
/// every scrape, `/garbage` answers HTML, `/slow` never answers in time.
fn serve_metrics() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut goroutines = 10u64;
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request = [0u8; 1024];
            let n = stream.read(&mut request).unwrap_or(0);
            let request = String::from_utf8_lossy(&request[..n]).to_string();
            let body = if request.starts_with("GET /metrics") {
                goroutines += 3;
                format!("# TYPE go_goroutines gauge\ngo_goroutines {goroutines}\n")
            } else if request.starts_with("GET /slow") {
                // Hold this connection without answering, on its own thread.
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_secs(20));
                    drop(stream);
                });
                continue;
            } else {
                "<html><body>not metrics</body></html>\n".to_string()
            };
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

#[test]
fn app_gauges_are_scraped_and_broken_endpoints_are_reported() {
    let metrics = serve_metrics();
    let agent = Agent::start(&format!(
        "[[target]]\nname = \"gosvc\"\ncmdline = \"comm=gosvc\"\nmetrics_url = \"http://127.0.0.1:{metrics}/metrics\"\ngauges = [\"go_goroutines\"]\n\
         [[target]]\nname = \"htmlsvc\"\ncmdline = \"comm=htmlsvc\"\nmetrics_url = \"http://127.0.0.1:{metrics}/garbage\"\ngauges = [\"go_goroutines\"]\n\
         [[target]]\nname = \"slowsvc\"\ncmdline = \"comm=slowsvc\"\nmetrics_url = \"http://127.0.0.1:{metrics}/slow\"\ngauges = [\"go_goroutines\"]\n"
    ));
    let _a = Leaky::start(&["comm=gosvc"]);
    let _b = Leaky::start(&["comm=htmlsvc"]);
    let _c = Leaky::start(&["comm=slowsvc"]);
    assert!(
        eventually(30, || series_values(
            &agent,
            "gosvc",
            "gauge",
            "go_goroutines"
        )
        .len()
            >= 4),
        "no gauge history"
    );
    let values = series_values(&agent, "gosvc", "gauge", "go_goroutines");
    assert!(values.windows(2).all(|w| w[1] > w[0]), "{values:?}");

    let error_of = |name: &str| -> String {
        let targets = agent.get_json("/api/v1/targets").unwrap();
        targets["targets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == name)
            .and_then(|t| t["gauge_error"].as_str().map(str::to_string))
            .unwrap_or_default()
    };
    assert!(
        eventually(20, || error_of("htmlsvc").contains("not Prometheus text")),
        "{}",
        error_of("htmlsvc")
    );
    assert!(
        eventually(20, || error_of("slowsvc").contains("timed out")),
        "{}",
        error_of("slowsvc")
    );
    // A broken endpoint costs nothing to sampling: still every interval, nothing dropped.
    let stats = agent.get_json("/api/v1/agent").unwrap();
    assert_eq!(stats["samples_dropped"], 0);
    assert!(series_values(&agent, "slowsvc", "gauge", "go_goroutines").is_empty());
    let metrics_text = agent.get_text("/metrics").unwrap();
    assert!(
        metrics_text
            .contains("leakwatch_target_app_value{target=\"gosvc\",name=\"go_goroutines\"}"),
        "{metrics_text}"
    );
}

fn leakwatch(args: &[&str]) -> std::process::Output {
    Command::new(workspace_bin("leakwatch"))
        .args(args)
        .output()
        .unwrap()
}

/// End to end: a real leaking process -> finding -> evidence captured into an incident
/// folder -> alert written to the outbox -> delivered to a webhook, naming the incident,
/// whose thread listing names the leaking group. In the same run: a second leaking target
/// silenced with `leakwatch silence` stays quiet until `--expire`; the first target's
/// restart command runs once (max_per_day = 1) after its evidence, and is announced;
/// `leakwatch alert test` and `leakwatch alerts` on the same config.
#[test]
fn a_real_leak_becomes_a_delivered_alert() {
    let (hook, bodies) = leakwatch_testkit::http::webhook_receiver();
    let marks = tempfile::tempdir().unwrap();
    let mark = marks.path().join("restarted-{pid}");
    let alerts = format!(
        "[detect]\npreset = \"fast\"\n\
         [[target]]\nname = \"grower\"\ncmdline = \"leak-threads=Leaky\"\n\
         capture = [[\"cat\", \"/proc/{{pid}}/status\"]]\n\
         [target.mitigation]\nrestart_command = [\"touch\", \"{}\"]\nwhen_eta_below = \"365d\"\nmax_per_day = 1\n\
         [[target]]\nname = \"hushed\"\ncmdline = \"leak-threads=Hush\"\n\
         [alerts]\npending_for = \"0s\"\n\
         [alerts.routes]\nwarning = [\"hook\"]\ncritical = [\"hook\"]\n\
         [alerts.channels.hook]\ntype = \"webhook\"\nurl = \"http://127.0.0.1:{hook}/hook\"\n",
        mark.display()
    );
    let agent = Agent::start(&alerts);
    let url = format!("http://127.0.0.1:{}", agent.port);
    // Silence one target before its leak starts.
    let out = leakwatch(&[
        "silence",
        "hushed",
        "--for",
        "1h",
        "--reason",
        "known issue",
        "--url",
        &url,
    ]);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("silenced hushed until"));
    let listed = leakwatch(&["silences", "--json", "--url", &url]);
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert!(
        eventually(10, || {
            let out = leakwatch(&["silences", "--json", "--url", &url]);
            serde_json::from_slice::<Value>(&out.stdout).is_ok_and(|v| {
                v["silences"]
                    .as_array()
                    .is_some_and(|l| l.iter().any(|s| s["target"] == "hushed"))
            })
        }),
        "{listed}"
    );

    let leaky = Leaky::start(&["threads=Base:2", "leak-threads=Leaky:100"]);
    let _hush = Leaky::start(&["threads=Base:2", "leak-threads=Hush:100"]);
    // The firing alert of the thread group itself (the mitigation announcement, or the
    // alert of the process's thread total, may arrive first and mention it too).
    let firing_for_group = || -> Option<Value> {
        bodies
            .lock()
            .unwrap()
            .iter()
            .filter_map(|b| serde_json::from_str::<Value>(b).ok())
            .find(|v| {
                v["alert"]["target"] == "grower"
                    && v["alert"]["attribution"] == "Leaky-#"
                    && v["reason"] == "firing"
            })
    };
    assert!(
        eventually(120, || firing_for_group().is_some()),
        "no firing alert for grower/Leaky-#: {:?}",
        bodies.lock().unwrap()
    );
    // The alert names its incident; the folder's thread listing names the leaking group.
    let alert = firing_for_group().unwrap();
    let id = alert["alert"]["incident"]
        .as_str()
        .unwrap_or_else(|| panic!("no incident on the alert: {alert}"))
        .to_string();
    assert!(alert["text"].as_str().unwrap().contains(&id), "{alert}");
    let folder = agent.data.join("incidents").join(&id);
    assert!(
        eventually(30, || std::fs::read_to_string(folder.join("incident.json"))
            .is_ok_and(|t| t.contains("\"complete\""))),
        "evidence not captured in {}",
        folder.display()
    );
    let threads = std::fs::read_to_string(folder.join("threads.txt")).unwrap();
    assert!(threads.contains("[Leaky-#]"), "{threads}");
    assert!(
        threads.contains(&format!("pid {} ", leaky.pid())),
        "{threads}"
    );
    let capture = std::fs::read_to_string(folder.join("capture-1.txt")).unwrap();
    assert!(capture.contains("Threads:"), "{capture}");
    let series = std::fs::read_to_string(folder.join("series.csv")).unwrap();
    assert!(series.lines().count() > 10, "{series}");
    // `leakwatch analyze` reads the folder as the agent wrote it: its series.csv, with the
    // limit series folded into the limit and the target from incident.json.
    let out = leakwatch(&[
        "analyze",
        folder.to_str().unwrap(),
        "--preset",
        "fast",
        "--json",
    ]);
    assert!(matches!(out.status.code(), Some(0 | 1 | 3)), "{out:?}");
    let analyzed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(analyzed["points"].as_u64().unwrap_or(0) > 10, "{analyzed}");
    for finding in analyzed["findings"].as_array().unwrap() {
        assert_eq!(finding["target"], "grower", "{analyzed}");
    }
    // The CLI, through the agent and straight from the folder.
    let out = leakwatch(&["incident", &id, "--url", &url]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("Leaky-#"), "{out:?}");
    let data = agent.data.display().to_string();
    let out = leakwatch(&["incidents", "--data-dir", &data]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&id),
        "{out:?}"
    );
    // One leak, one incident: the target's thread total and memory are consequences of the
    // thread group's finding (docs/detection.md, "Grouping"), and any finding of the target
    // seen before them joins the incident instead of opening its own.
    let grower_incidents = || -> Vec<Value> {
        let out = leakwatch(&["incidents", "--json", "--data-dir", &data]);
        let list: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        list["incidents"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|i| i["target"] == "grower")
            .cloned()
            .collect()
    };
    assert!(
        eventually(30, || {
            let list = grower_incidents();
            list.len() == 1
                && list[0]["findings"]
                    .as_array()
                    .is_some_and(|f| !f.is_empty())
        }),
        "{:#?}",
        grower_incidents()
    );
    let out = leakwatch(&["incident", &id, "--file", "nope.txt", "--url", &url]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("has no file"),
        "{out:?}"
    );

    // The restart command ran once, after the evidence, and was announced.
    assert!(
        eventually(30, || bodies.lock().unwrap().iter().any(|b| b
            .contains("\"reason\":\"mitigation\"")
            && b.contains("grower"))),
        "no mitigation announcement: {:?}",
        bodies.lock().unwrap()
    );
    let marks_made = || std::fs::read_dir(marks.path()).unwrap().count();
    assert_eq!(marks_made(), 1);
    assert!(marks
        .path()
        .join(format!("restarted-{}", leaky.pid()))
        .exists());

    // The silenced target leaks too, and is found, but nobody was told.
    let findings_of = |target: &str| {
        agent.get_json("/api/v1/findings").is_some_and(|f| {
            f["findings"]
                .as_array()
                .is_some_and(|l| l.iter().any(|x| x["target"] == target))
        })
    };
    assert!(
        eventually(60, || findings_of("hushed")),
        "hushed never found"
    );
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        !bodies.lock().unwrap().iter().any(|b| b.contains("hushed")),
        "a silenced target notified"
    );
    // Still only one restart, though the leak goes on and detection keeps running.
    assert_eq!(marks_made(), 1);
    let out = leakwatch(&["silence", "hushed", "--expire", "--url", &url]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        eventually(30, || bodies.lock().unwrap().iter().any(|b| b
            .contains("hushed")
            && b.contains("\"reason\":\"firing\""))),
        "the silence ended but the firing alert was not sent"
    );

    let out = Command::new(workspace_bin("leakwatch"))
        .args(["alerts", "--json", "--url", &url])
        .output()
        .unwrap();
    let state: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(state["enabled"], true);
    assert!(
        state["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["status"] == "delivered" && d["channel"] == "hook"),
        "{state}"
    );
    let metrics = agent.get_text("/metrics").unwrap();
    assert!(
        metrics.contains("leakwatch_alert_notifications_total{channel=\"hook\",outcome=\"sent\"}"),
        "{metrics}"
    );

    // The test command, on a config file with the same channel.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("alerts.toml");
    std::fs::write(&config, &alerts).unwrap();
    let before = bodies.lock().unwrap().len();
    let out = Command::new(workspace_bin("leakwatch"))
        .args(["alert", "test", "--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("ok") && text.contains("hook"), "{text}");
    assert!(bodies.lock().unwrap().len() > before);
    let out = Command::new(workspace_bin("leakwatch"))
        .args(["config", "check", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{:?}", out);
}
