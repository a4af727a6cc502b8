//! A fleet on one machine (issue 15): three "hosts", each a network namespace made by the
//! test with its own agent (`leakwatch run`, so each watches only its own service) and
//! data dir, reached over veth; one real Prometheus scraping them with the shipped rules
//! and one real Alertmanager receiving those rules' alerts. A leak planted on host1 appears
//! once in Alertmanager, with its host; `leakwatch fleet` lists it by host; killing the
//! agents of host2 and host3 fires the "agent down" rule for each, grouped into one
//! notification. The rules are the shipped file with `for: 5m` shortened to `for: 5s`
//! (the 5-minute version is covered by `promtool test rules`). Needs root (`ip netns`).

use leakwatch_testkit::http::webhook_receiver;
use leakwatch_testkit::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .expect("ip (iproute2)");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A network namespace with a veth pair to this one: `10.N.i.1` here, `10.N.i.2` inside.
struct Host {
    name: String,
    netns: String,
    addr: String,
    agent: Option<Child>,
    _data: tempfile::TempDir,
}

impl Host {
    fn new(i: u8, subnet: u8) -> Host {
        let pid = std::process::id();
        let netns = format!("lwfleet-{pid}-{i}");
        let (outside, inside) = (format!("lwo{pid}x{i}"), format!("lwi{pid}x{i}"));
        ip(&["netns", "add", &netns]);
        ip(&[
            "link", "add", &outside, "type", "veth", "peer", "name", &inside,
        ]);
        ip(&["link", "set", &inside, "netns", &netns]);
        ip(&[
            "addr",
            "add",
            &format!("10.{subnet}.{i}.1/24"),
            "dev",
            &outside,
        ]);
        ip(&["link", "set", &outside, "up"]);
        let addr = format!("10.{subnet}.{i}.2");
        for args in [
            vec!["addr", "add", &format!("{addr}/24"), "dev", &inside],
            vec!["link", "set", &inside, "up"],
            vec!["link", "set", "lo", "up"],
        ] {
            let mut full = vec!["netns", "exec", &netns, "ip"];
            full.extend(args.iter().copied());
            ip(&full);
        }
        Host {
            name: format!("host{i}"),
            netns,
            addr,
            agent: None,
            _data: tempfile::tempdir().unwrap(),
        }
    }

    /// Starts the host's agent, `leakwatch run` supervising `workload` (leaky's arguments).
    fn start(&mut self, config: &Path, workload: &[&str]) {
        let data = self._data.path().join("data");
        let child = Command::new("ip")
            .args(["netns", "exec", &self.netns])
            .arg(workspace_bin("leakwatch"))
            .args(["run", "--name", "svc", "--interval", "1s", "--config"])
            .arg(config)
            .arg("--data-dir")
            .arg(&data)
            .args(["--listen", &format!("{}:9464", self.addr), "--"])
            .arg(workspace_bin("leaky"))
            .args(workload)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.agent = Some(child);
        let url = format!("http://{}:9464/healthz", self.addr);
        assert!(
            eventually(30, || reqwest::blocking::get(&url)
                .is_ok_and(|r| r.status().is_success())),
            "{}'s agent did not answer at {url}",
            self.name
        );
    }

    /// Stops the agent (SIGTERM: it stops its workload too).
    fn stop(&mut self) {
        if let Some(mut child) = self.agent.take() {
            // SAFETY: signalling our own child.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let _ = child.wait();
        }
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        self.stop();
        // Deleting the namespace deletes the veth pair with it.
        let _ = Command::new("ip")
            .args(["netns", "del", &self.netns])
            .status();
    }
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn rules_file(dir: &Path) -> PathBuf {
    let shipped = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../dist/prometheus/leakwatch-rules.yml"
    );
    let text = std::fs::read_to_string(shipped).unwrap();
    assert!(
        text.contains("for: 5m"),
        "the rules changed: revisit this test"
    );
    let path = dir.join("leakwatch-rules.yml");
    std::fs::write(&path, text.replace("for: 5m", "for: 5s")).unwrap();
    path
}

fn get_json(url: &str) -> Option<Value> {
    reqwest::blocking::get(url).ok()?.json().ok()
}

/// Alertmanager's active alerts named `name`.
fn am_alerts(am: &str, name: &str) -> Vec<Value> {
    get_json(&format!("{am}/api/v2/alerts"))
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
        .into_iter()
        .filter(|a| a["labels"]["alertname"] == name)
        .collect()
}

fn fleet(prometheus: &str, json: bool) -> String {
    let mut command = Command::new(workspace_bin("leakwatch"));
    command.args(["fleet", "--prometheus", prometheus]);
    if json {
        command.arg("--json");
    }
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_fleet_of_three_hosts_alerts_once_per_leak_and_when_an_agent_dies() {
    let dir = tempfile::tempdir().unwrap();
    let subnet = 200 + (std::process::id() % 50) as u8;
    let config = dir.path().join("agent.toml");
    // Beyond loopback an agent requires a token: Prometheus sends it.
    std::fs::write(
        &config,
        "[agent]\ntoken = \"fleet\"\n[detect]\npreset = \"fast\"\n",
    )
    .unwrap();
    let mut hosts: Vec<Host> = (1..=3).map(|i| Host::new(i, subnet)).collect();
    // Leaky exits when its stdin closes; under `leakwatch run` its stdin is /dev/null, so it
    // gets a lifetime instead (longer than the test; the agent stops it on drop).
    let steady = ["threads=Base:2", "exit-after=900000"];
    let leaking = [
        "threads=Base:2",
        "leak-threads=FleetLeak:100",
        "exit-after=900000",
    ];
    hosts[0].start(&config, &leaking);
    hosts[1].start(&config, &steady);
    hosts[2].start(&config, &steady);

    let (hook, bodies) = webhook_receiver();
    let am_port = free_port();
    std::fs::write(
        dir.path().join("alertmanager.yml"),
        format!(
            "route:\n  receiver: hook\n  group_by: [alertname]\n  group_wait: 2s\n  \
             group_interval: 2s\n  repeat_interval: 1h\n\
             receivers:\n  - name: hook\n    webhook_configs:\n      - url: http://127.0.0.1:{hook}/hook\n"
        ),
    )
    .unwrap();
    let _alertmanager = Killed(
        Command::new("/usr/bin/prometheus-alertmanager")
            .arg(format!(
                "--config.file={}",
                dir.path().join("alertmanager.yml").display()
            ))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("am").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{am_port}"))
            .arg("--cluster.listen-address=")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus-alertmanager (Debian package): see scripts/test.sh"),
    );
    let am = format!("http://127.0.0.1:{am_port}");
    let prom_port = free_port();
    let targets: String = hosts
        .iter()
        .map(|h| {
            format!(
                "      - targets: ['{}:9464']\n        labels: {{host: {}}}\n",
                h.addr, h.name
            )
        })
        .collect();
    std::fs::write(
        dir.path().join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n  - {}\n\
             alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['127.0.0.1:{am_port}']\n\
             scrape_configs:\n  - job_name: leakwatch\n    authorization:\n      credentials: fleet\n    \
             static_configs:\n{targets}",
            rules_file(dir.path()).display()
        ),
    )
    .unwrap();
    let _prometheus = Killed(
        Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                dir.path().join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus (Debian package): see scripts/test.sh"),
    );
    let prometheus = format!("http://127.0.0.1:{prom_port}");

    // The leak on host1: once in Alertmanager, with its host, and from no other host.
    let leaks = || am_alerts(&am, "LeakwatchLeakConfirmed");
    assert!(
        eventually(180, || !leaks().is_empty()),
        "no leak alert in Alertmanager; Prometheus's scrapes: {:?}",
        get_json(&format!("{prometheus}/api/v1/targets")).map(|t| t["data"]["activeTargets"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| format!("{} {} {}", t["scrapeUrl"], t["health"], t["lastError"]))
            .collect::<Vec<_>>())
    );
    std::thread::sleep(Duration::from_secs(3));
    let leaks = leaks();
    eprintln!(
        "Alertmanager's view of the planted leak: {:#}",
        Value::from(leaks.clone())
    );
    assert_eq!(leaks.len(), 1, "{leaks:#?}");
    assert_eq!(leaks[0]["labels"]["host"], "host1", "{leaks:#?}");
    assert_eq!(leaks[0]["labels"]["target"], "svc");
    assert_eq!(leaks[0]["labels"]["attribution"], "FleetLeak-#");

    // `leakwatch fleet`: the leak by host, every agent up.
    let table = fleet(&prometheus, false);
    eprintln!("{table}");
    assert!(table.starts_with("3 agents scraped by "), "{table}");
    assert!(table.contains(", 0 down"), "{table}");
    let leak_lines: Vec<&str> = table
        .lines()
        .filter(|l| l.contains(" leak ") && l.contains("FleetLeak-#"))
        .collect();
    assert!(
        leak_lines.len() == 1 && leak_lines[0].starts_with("host1 "),
        "{table}"
    );
    let json: Value = serde_json::from_str(&fleet(&prometheus, true)).unwrap();
    assert_eq!(json["agents"].as_array().map(Vec::len), Some(3), "{json}");

    // Two agents die: the "agent down" rule fires for each, in one grouped notification.
    hosts[1].stop();
    hosts[2].stop();
    let down = || am_alerts(&am, "LeakwatchAgentDown");
    assert!(
        eventually(90, || down().len() == 2),
        "agent-down alerts: {:#?}",
        down()
    );
    let mut down_hosts: Vec<String> = down()
        .iter()
        .map(|a| a["labels"]["host"].as_str().unwrap_or("").to_string())
        .collect();
    down_hosts.sort();
    assert_eq!(down_hosts, ["host2", "host3"]);
    let grouped = || -> Option<Value> {
        bodies
            .lock()
            .unwrap()
            .iter()
            .filter_map(|b| serde_json::from_str::<Value>(b).ok())
            .find(|n| {
                n["groupLabels"]["alertname"] == "LeakwatchAgentDown"
                    && n["alerts"].as_array().is_some_and(|a| a.len() == 2)
            })
    };
    assert!(
        eventually(30, || grouped().is_some()),
        "no notification grouping both agent-down alerts: {:#?}",
        bodies.lock().unwrap()
    );
    // The leak's notification named its host too.
    let leak_note = bodies
        .lock()
        .unwrap()
        .iter()
        .filter_map(|b| serde_json::from_str::<Value>(b).ok())
        .find(|n| n["groupLabels"]["alertname"] == "LeakwatchLeakConfirmed");
    assert!(
        leak_note.is_some_and(|n| n["alerts"][0]["labels"]["host"] == "host1"),
        "{:#?}",
        bodies.lock().unwrap()
    );
    let table = fleet(&prometheus, false);
    eprintln!("{table}");
    assert!(table.contains(", 2 down"), "{table}");
    assert!(
        table.contains("DOWN  host2") && table.contains("DOWN  host3"),
        "{table}"
    );
}
