//! The Prometheus rules shipped in `dist/prometheus/` and the Grafana dashboard in
//! `dist/grafana/` (issue 15): promtool checks the rules and runs their unit tests, and a
//! real Prometheus, scraping a real agent that watches a real leaking process and cannot
//! deliver its own alerts, fires the leak rule, counts the failed deliveries, and answers
//! every query of the dashboard with data.

use leakwatch_testkit::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};

fn rules_dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../dist/prometheus"
    ))
}

/// One HTTP/1.0 GET (no chunking, the server closes): the body, when the status is 200.
fn get(port: u16, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.0 200").then(|| body.to_string())
}

#[test]
fn rules_and_config_pass_promtool_and_the_rules_unit_tests() {
    for args in [
        &["check", "rules", "leakwatch-rules.yml"][..],
        &["test", "rules", "leakwatch-rules.test.yml"][..],
        &["check", "config", "prometheus.yml"][..],
    ] {
        let out = Command::new("promtool")
            .args(args)
            .current_dir(rules_dir())
            .output()
            .expect("promtool (Debian package prometheus) must be installed: see scripts/test.sh");
        assert!(
            out.status.success(),
            "promtool {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Every `leakwatch_...` metric the rules read, as written in the rules file.
fn metrics_read_by_the_rules() -> Vec<String> {
    let text = std::fs::read_to_string(rules_dir().join("leakwatch-rules.yml")).unwrap();
    let mut names: Vec<String> = Vec::new();
    for (i, _) in text.match_indices("leakwatch_") {
        // Recorded names (`instance:leakwatch_...:rate5m`) are the rules' own.
        if text[..i].ends_with(':') {
            continue;
        }
        let name: String = text[i..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

/// Percent-encoding of a query parameter.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The PromQL of every panel of `dist/grafana/leakwatch-dashboard.json`.
fn dashboard_queries() -> Vec<String> {
    let path = rules_dir().join("../grafana/leakwatch-dashboard.json");
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let queries: Vec<String> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .filter_map(|t| t["expr"].as_str().map(str::to_string))
        .collect();
    assert!(queries.len() >= 10, "{queries:?}");
    queries
}

#[test]
fn a_real_prometheus_fires_the_rules_on_a_real_agent() {
    let agent = Agent::start(
        "[detect]\npreset = \"fast\"\n\
         [[target]]\nname = \"grower\"\ncmdline = \"leak-threads=PromGrow\"\n\
         [alerts]\npending_for = \"0s\"\n\
         [alerts.routes]\nwarning = [\"hook\"]\ncritical = [\"hook\"]\n\
         [alerts.channels.hook]\ntype = \"webhook\"\nurl = \"http://127.0.0.1:1/hook\"\n",
    );
    // It listens too, so the dashboard's socket panel has data.
    let _leaky = Leaky::start(&[
        "threads=Base:2",
        "leak-threads=PromGrow:100",
        "listen=127.0.0.1:0",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n  - {}\n\
             scrape_configs:\n  - job_name: leakwatch\n    static_configs:\n      - targets: ['127.0.0.1:{}']\n",
            rules_dir().join("leakwatch-rules.yml").display(),
            agent.port
        ),
    )
    .unwrap();
    let mut prometheus = Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus (Debian package) must be installed: see scripts/test.sh");
    let firing = |name: &str| -> Option<serde_json::Value> {
        let body = get(port, "/api/v1/alerts")?;
        let json: serde_json::Value = serde_json::from_str(&body).ok()?;
        json["data"]["alerts"]
            .as_array()?
            .iter()
            .find(|a| a["labels"]["alertname"] == name && a["state"] == "firing")
            .cloned()
    };
    let leak = eventually(150, || {
        firing("LeakwatchLeakConfirmed").is_some_and(|a| a["labels"]["target"] == "grower")
    });
    let delivery = leak
        && eventually(60, || {
            firing("LeakwatchAlertDeliveryFailing").is_none()
                && get(
                    port,
                    "/api/v1/query?query=leakwatch_alert_notifications_total",
                )
                .is_some_and(|b| b.contains("\"outcome\":\"failed\""))
        });
    // The agent up and sampling: neither rule about the agent fires.
    let agent_ok =
        firing("LeakwatchAgentDown").is_none() && firing("LeakwatchAgentNotSampling").is_none();
    // Every query of the Grafana dashboard, for this host and target, returns data.
    let instance = format!("127.0.0.1:{}", agent.port);
    let empty: Vec<String> = dashboard_queries()
        .into_iter()
        .filter(|expr| {
            let expr = expr
                .replace("$instance", &instance)
                .replace("$target", "grower");
            let path = format!("/api/v1/query?query={}", encode(&expr));
            let result = get(port, &path)
                .and_then(|b| serde_json::from_str::<serde_json::Value>(&b).ok())
                .and_then(|j| j["data"]["result"].as_array().map(Vec::len));
            result.unwrap_or(0) == 0
        })
        .collect();
    let instances = get(
        port,
        &format!(
            "/api/v1/label/instance/values?match[]={}",
            encode("leakwatch_agent_samples_total")
        ),
    )
    .unwrap_or_default();
    let targets = get(
        port,
        &format!(
            "/api/v1/label/target/values?match[]={}",
            encode(&format!(
                "leakwatch_target_threads{{instance=~\"{instance}\"}}"
            ))
        ),
    )
    .unwrap_or_default();
    let exposition = agent.get_text("/metrics").unwrap_or_default();
    let _ = prometheus.kill();
    let _ = prometheus.wait();
    assert!(
        leak,
        "LeakwatchLeakConfirmed never fired for grower: {:?}",
        agent.get_json("/api/v1/findings")
    );
    // Failed deliveries are counted in Prometheus; the rule waits 10 minutes (`for`), so it
    // is pending, not firing, within the test (its firing is in the promtool unit test).
    assert!(delivery, "no failed deliveries counted in Prometheus");
    assert!(agent_ok, "an agent rule fired on a healthy agent");
    assert!(
        empty.is_empty(),
        "dashboard queries without data: {empty:#?}"
    );
    assert!(instances.contains(&instance), "{instances}");
    assert!(targets.contains("\"grower\""), "{targets}");
    // Every metric the rules read exists in the agent's exposition.
    let names = metrics_read_by_the_rules();
    assert!(names.len() >= 6, "{names:?}");
    for name in names {
        assert!(
            exposition.contains(&format!("# TYPE {name} ")),
            "the rules read {name}, which the agent does not export"
        );
    }
}
