//! `leakwatch analyze`: the detection engine on recorded series, from a CSV file, a saved
//! Prometheus response, and a real Prometheus server.

use leakwatch_testkit::*;
use std::process::{Command, Stdio};

fn leakwatch(args: &[&str]) -> std::process::Output {
    Command::new(workspace_bin("leakwatch"))
        .args(args)
        .output()
        .expect("run leakwatch")
}

/// Two days at 10-minute steps: a thread group that grows steadily, and a flat fd count.
fn csv(leaking: bool) -> String {
    let mut out = String::from("time,series,value,limit\n");
    let start = 1_790_000_000u64;
    for i in 0..288u64 {
        let t = start + i * 600;
        let wobble = [0.0, 2.0, 1.0, 3.0, 0.0, 1.0][(i % 6) as usize];
        let threads = if leaking {
            50.0 + i as f64 * 4.0 + wobble
        } else {
            50.0 + wobble
        };
        out.push_str(&format!("{t},svc/threads{{Analytics-#}},{threads},4096\n"));
        out.push_str(&format!("{t},svc/fds,{},1024\n", 120.0 + wobble));
    }
    out
}

#[test]
fn a_csv_leak_is_found_and_a_flat_one_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let leaking = dir.path().join("leaking.csv");
    std::fs::write(&leaking, csv(true)).unwrap();
    let out = leakwatch(&["analyze", leaking.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("LEAK"), "{text}");
    assert!(text.contains("Analytics-#"), "{text}");
    assert!(!text.contains("fds"), "the flat series was flagged: {text}");

    let flat = dir.path().join("flat.csv");
    std::fs::write(&flat, csv(false)).unwrap();
    let out = leakwatch(&["analyze", "--json", flat.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["findings"].as_array().unwrap().len(), 0);
    assert_eq!(json["series"], 2);
}

#[test]
fn bad_input_names_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "time,series,value\n100,a,1\n50,a,2\n").unwrap();
    let out = leakwatch(&["analyze", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 3"), "{err}");

    std::fs::write(&bad, "when,what\n").unwrap();
    let out = leakwatch(&["analyze", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("header"));

    let out = leakwatch(&["analyze", "/nonexistent/file.csv"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read"));
}

/// A real Prometheus (Debian's package) scraping itself: `analyze --prometheus` reads a
/// query_range from it and judges the series.
#[test]
fn reads_from_a_real_prometheus() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: self\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
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
    let url = format!("http://127.0.0.1:{port}");
    // Wait until it has scraped itself a few times.
    let ready = eventually(60, || {
        let out = leakwatch(&[
            "analyze",
            "--prometheus",
            &url,
            "--query",
            "up",
            "--range",
            "1m",
            "--step",
            "1s",
            "--json",
        ]);
        out.status.success()
            && serde_json::from_slice::<serde_json::Value>(&out.stdout)
                .map(|j| j["points"].as_u64().unwrap_or(0) >= 5)
                .unwrap_or(false)
    });
    let bad = leakwatch(&[
        "analyze",
        "--prometheus",
        &url,
        "--query",
        "up{",
        "--range",
        "1m",
    ]);
    let _ = prometheus.kill();
    let _ = prometheus.wait();
    assert!(ready, "no samples of `up` from Prometheus within 60 s");
    // A PromQL syntax error is Prometheus' answer, passed on clearly.
    assert_eq!(bad.status.code(), Some(2));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("parse error") || err.contains("bad_data"),
        "{err}"
    );
}
