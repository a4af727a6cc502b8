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

/// A real Prometheus (Debian's package) on `port`, scraping itself every second, its data in
/// `dir` (so a second one started on the same `dir` keeps the first one's samples).
fn prometheus(dir: &std::path::Path, port: u16) -> std::process::Child {
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: self\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
        ),
    )
    .unwrap();
    Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus (Debian package) must be installed: see scripts/test.sh")
}

/// `analyze --prometheus URL --query Q --range 2m --step 1s --json`, parsed, when it exits
/// 0 or 3 (judged, or too short to judge).
fn analyze_prometheus(url: &str, query: &str) -> Option<serde_json::Value> {
    let out = leakwatch(&[
        "analyze",
        "--prometheus",
        url,
        "--query",
        query,
        "--range",
        "2m",
        "--step",
        "1s",
        "--json",
    ]);
    if !matches!(out.status.code(), Some(0 | 3)) {
        return None;
    }
    serde_json::from_slice(&out.stdout).ok()
}

/// A real Prometheus (Debian's package) scraping itself: `analyze --prometheus` reads a
/// query_range from it and judges the series.
#[test]
fn reads_from_a_real_prometheus() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut prometheus = prometheus(dir.path(), port);
    let url = format!("http://127.0.0.1:{port}");
    // Wait until it has scraped itself a few times.
    // Two minutes of `up` are too short to judge with the production preset (exit 3):
    // what matters here is that the samples were read.
    let ready = eventually(60, || {
        analyze_prometheus(&url, "up").is_some_and(|j| j["points"].as_u64().unwrap_or(0) >= 5)
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

/// A real Prometheus killed and started again on its own data: its
/// `process_start_time_seconds` changes, and `analyze --prometheus` reads that as a restart
/// of its target without being given a restarts file.
#[test]
fn a_real_prometheus_restart_is_read_from_its_start_time() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let mut first = prometheus(dir.path(), port);
    let scraped = eventually(60, || {
        analyze_prometheus(&url, "up").is_some_and(|j| j["points"].as_u64().unwrap_or(0) >= 3)
    });
    let before = analyze_prometheus(&url, "up");
    let _ = first.kill();
    let _ = first.wait();
    assert!(scraped, "no samples of `up` from Prometheus within 60 s");
    let before = before.expect("an answer before the restart");
    assert_eq!(before["restarts"], 0, "{before}");
    // Start times have a resolution of a clock tick; a second apart they differ.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let mut second = prometheus(dir.path(), port);
    let mut last = None;
    let restarted = eventually(90, || {
        last = analyze_prometheus(&url, "up");
        last.as_ref()
            .is_some_and(|j| j["restarts_from_start_times"].as_u64().unwrap_or(0) >= 1)
    });
    let _ = second.kill();
    let _ = second.wait();
    assert!(
        restarted,
        "no restart read from process_start_time_seconds: {last:?}"
    );
    let last = last.unwrap();
    assert_eq!(last["restarts"], 1, "one restart, read once: {last}");
    assert_eq!(last["restarts_from_start_times"], 1, "{last}");
}

fn run_in(
    dir: &std::path::Path,
    name: &str,
    content: &str,
    args: &[&str],
) -> (Option<i32>, String, String) {
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    let mut all = vec!["analyze", path.to_str().unwrap()];
    all.extend_from_slice(args);
    let out = leakwatch(&all);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `n` one-second samples of a thread count growing two a second from 50.
fn one_second_leak(n: u64) -> String {
    let mut out = String::from("time,series,value\n");
    for i in 0..n {
        out.push_str(&format!(
            "{},svc/threads,{}\n",
            1_790_000_000 + i,
            50 + 2 * i + i % 3
        ));
    }
    out
}

#[test]
fn too_little_data_for_the_preset_is_said_and_the_fast_preset_judges_it() {
    let dir = tempfile::tempdir().unwrap();
    let csv = one_second_leak(180);
    // Production needs an hour of samples (3,600) after a warm-up of 300: not "no leaks".
    let (code, out, _) = run_in(dir.path(), "short.csv", &csv, &[]);
    assert_eq!(code, Some(3), "{out}");
    assert!(
        out.contains("not enough data for the production preset: 180 samples at 1 s, needs 3,900 — try --preset fast"),
        "{out}"
    );
    assert!(!out.contains("no leaks"), "{out}");
    let (code, out, _) = run_in(dir.path(), "short.csv", &csv, &["--preset", "fast"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("fast preset") && out.contains("LEAK"), "{out}");
    // Too short even for the fast preset: collect for longer.
    let (code, out, _) = run_in(
        dir.path(),
        "tiny.csv",
        &one_second_leak(12),
        &["--preset", "fast"],
    );
    assert_eq!(code, Some(3), "{out}");
    assert!(out.contains("needs 22 — collect for longer"), "{out}");
    // JSON says so too.
    let (code, out, _) = run_in(dir.path(), "short.csv", &csv, &["--json"]);
    assert_eq!(code, Some(3));
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["samples_needed"], 3900);
    assert!(json["not_enough_data"]
        .as_str()
        .unwrap()
        .contains("180 samples"));
}

#[test]
fn the_interval_and_the_agents_overrides_set_the_parameters() {
    let dir = tempfile::tempdir().unwrap();
    let csv = one_second_leak(180);
    // Read as one sample a minute, 180 samples are three hours: enough to judge, too young
    // to confirm without a limit.
    let (code, out, _) = run_in(dir.path(), "a.csv", &csv, &["--interval", "1m"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("one every 1 min; production preset"), "{out}");
    assert!(out.contains("suspected"), "{out}");
    assert!(
        out.contains("confirms a trend once one process life spans 1,440 samples (1d)"),
        "{out}"
    );
    let (_, out, _) = run_in(
        dir.path(),
        "a.csv",
        &csv,
        &[
            "--json",
            "--preset",
            "fast",
            "--min-regime-samples",
            "40",
            "--warmup-samples",
            "7",
            "--season-samples",
            "90",
            "--trend-p-value",
            "0.0001",
        ],
    );
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    let params = &json["params"];
    assert_eq!(params["min_regime_samples"], 40, "{params}");
    assert_eq!(params["warmup_samples"], 7);
    assert_eq!(params["season_samples"], 90);
    assert_eq!(params["trend_p_value"], 0.0001);
    assert_eq!(json["preset"], "fast");
    // 44 samples: a warm-up of 7 is capped at 10% of the life (4).
    assert_eq!(json["samples_needed"], 44);
    // A longer minimal window than the data: not enough data.
    let (code, out, _) = run_in(
        dir.path(),
        "a.csv",
        &csv,
        &["--preset", "fast", "--min-regime-samples", "400"],
    );
    assert_eq!(code, Some(3), "{out}");
    // Out of range, as the agent's config check says.
    for bad in [
        ["--min-regime-samples", "3"],
        ["--season-samples", "0"],
        ["--trend-p-value", "0.7"],
        ["--interval", "soon"],
    ] {
        let (code, _, err) = run_in(dir.path(), "a.csv", &csv, &bad);
        assert_eq!(code, Some(2), "{bad:?}");
        assert!(err.contains(bad[0]), "{bad:?}: {err}");
    }
}

#[test]
fn explain_prints_the_reasoning_for_one_series() {
    let dir = tempfile::tempdir().unwrap();
    let csv = one_second_leak(180);
    let (code, out, _) = run_in(
        dir.path(),
        "a.csv",
        &csv,
        &["--preset", "fast", "--explain", "svc/threads"],
    );
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("explain svc/threads:"), "{out}");
    assert!(
        out.contains("regime from") && out.contains("=> leak: threads"),
        "{out}"
    );
    // Without the target when that is unambiguous; JSON carries the lines.
    let (_, out, _) = run_in(
        dir.path(),
        "a.csv",
        &csv,
        &["--preset", "fast", "--explain", "threads", "--json"],
    );
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["explain"]["series"], "svc/threads");
    assert!(json["explain"]["lines"].as_array().unwrap().len() >= 2);
    // Not enough data: explain says why the series was not judged.
    let (code, out, _) = run_in(dir.path(), "a.csv", &csv, &["--explain", "threads"]);
    assert_eq!(code, Some(3));
    assert!(out.contains("too short"), "{out}");
    let (code, _, err) = run_in(dir.path(), "a.csv", &csv, &["--explain", "svc/fds"]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("no such series") && err.contains("svc/threads"),
        "{err}"
    );
}

/// Two days at 10 s of a memory utilisation in percent climbing from 60%.
fn percent_memory(name: &str, limit: &str) -> String {
    let mut out = String::from("time,series,value,limit\n");
    for i in 0..17_280u64 {
        let v = 60.0 + i as f64 * 0.0012 + (i as f64 / 50.0).sin() * 0.3;
        out.push_str(&format!(
            "{},{name},{v:.3},{limit}\n",
            1_790_000_000 + 10 * i
        ));
    }
    out
}

#[test]
fn percent_values_do_not_print_as_bytes() {
    let dir = tempfile::tempdir().unwrap();
    // A series called memory with a limit of 100 is a utilisation: percent.
    let (code, out, _) = run_in(
        dir.path(),
        "m.csv",
        &percent_memory("vm/memory", "100"),
        &[],
    );
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("memory +") && out.contains("%/h), limit 100% in"),
        "{out}"
    );
    assert!(!out.contains(" B"), "{out}");
    // So is a name that says so.
    let (_, out, _) = run_in(
        dir.path(),
        "m.csv",
        &percent_memory("vm/mem_used_percent", "100"),
        &[],
    );
    assert!(out.contains("%/h)") && !out.contains(" B"), "{out}");
    // --unit decides.
    let (_, out, _) = run_in(
        dir.path(),
        "m.csv",
        &percent_memory("vm/memory", "100"),
        &["--unit", "bytes"],
    );
    assert!(out.contains(" B/h)"), "{out}");
    let (_, out, _) = run_in(
        dir.path(),
        "m.csv",
        &percent_memory("vm/heap_used", "100"),
        &["--unit", "percent"],
    );
    assert!(out.contains("heap_used +") && out.contains("%/h)"), "{out}");
}

#[test]
fn restarts_cut_offline_series_into_lives() {
    let dir = tempfile::tempdir().unwrap();
    // A goroutine gauge growing within each 15-second life and reset by each crash: without
    // restart records it is a flat sawtooth.
    let mut csv = String::from("time,series,value\n");
    let mut restarts = String::from("time,target,reason\n");
    for i in 0..600u64 {
        let t = 1_790_000_000 + i;
        if i % 15 == 0 && i > 0 {
            restarts.push_str(&format!("{t},svc,exit 2\n"));
        }
        csv.push_str(&format!(
            "{t},svc/gauge{{go_goroutines}},{}\n",
            20 + 3 * (i % 15) + i % 2
        ));
    }
    let (code, out, _) = run_in(dir.path(), "g.csv", &csv, &["--preset", "fast"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(!out.contains("LEAK"), "{out}");
    std::fs::write(dir.path().join("restarts.csv"), &restarts).unwrap();
    let restarts_path = dir.path().join("restarts.csv");
    let (code, out, _) = run_in(
        dir.path(),
        "g.csv",
        &csv,
        &[
            "--preset",
            "fast",
            "--restarts",
            restarts_path.to_str().unwrap(),
        ],
    );
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("39 restarts"), "{out}");
    assert!(out.contains("LEAK") && out.contains("per life"), "{out}");
    assert!(out.contains("CRASH_LOOP"), "{out}");
    // Restarts of a target no series has are a mistake worth saying.
    std::fs::write(&restarts_path, "time,target\n1790000100,other\n").unwrap();
    let (code, _, err) = run_in(
        dir.path(),
        "g.csv",
        &csv,
        &["--restarts", restarts_path.to_str().unwrap()],
    );
    assert_eq!(code, Some(2));
    assert!(
        err.contains("\"other\"") && err.contains("\"svc\""),
        "{err}"
    );
}

/// The same crash-masked goroutine leak as above, saved from Prometheus with the
/// process's `process_start_time_seconds`: the start times cut it into lives, no restarts
/// file needed.
#[test]
fn a_saved_prometheus_answer_is_cut_into_lives_by_its_start_times() {
    let dir = tempfile::tempdir().unwrap();
    let mut goroutines = Vec::new();
    let mut started = Vec::new();
    let mut start = 1_789_999_990.0;
    for i in 0..600u64 {
        let t = 1_790_000_000 + i;
        if i % 15 == 0 && i > 0 {
            // The new process started a little before the scrape that saw it.
            start = t as f64 - 0.4;
        }
        goroutines.push(format!("[{t},\"{}\"]", 20 + 3 * (i % 15) + i % 2));
        started.push(format!("[{t},\"{start}\"]"));
    }
    let labels = r#""instance":"api:8080","job":"api""#;
    let entry = |name: &str, values: &[String]| {
        format!(
            r#"{{"metric":{{"__name__":"{name}",{labels}}},"values":[{}]}}"#,
            values.join(",")
        )
    };
    let answer = |entries: &[String]| {
        format!(
            r#"{{"status":"success","data":{{"resultType":"matrix","result":[{}]}}}}"#,
            entries.join(",")
        )
    };
    let body = answer(&[
        entry("go_goroutines", &goroutines),
        entry("process_start_time_seconds", &started),
    ]);
    let (code, out, err) = run_in(dir.path(), "answer.json", &body, &["--preset", "fast"]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(
        out.contains("39 restarts (39 from process_start_time_seconds)"),
        "{out}"
    );
    assert!(out.contains("LEAK") && out.contains("per life"), "{out}");
    // Without its start times the same gauge is a flat sawtooth.
    let alone = answer(&[entry("go_goroutines", &goroutines)]);
    let (code, out, _) = run_in(dir.path(), "alone.json", &alone, &["--preset", "fast"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(!out.contains("LEAK"), "{out}");
    // A restarts file wins for its targets: its restarts, not the start times', counted once.
    let file = dir.path().join("restarts.csv");
    std::fs::write(
        &file,
        "time,target\n1790000100,api:8080\n1790000300,api:8080\n",
    )
    .unwrap();
    let (_, out, err) = run_in(
        dir.path(),
        "answer.json",
        &body,
        &[
            "--preset",
            "fast",
            "--json",
            "--restarts",
            file.to_str().unwrap(),
        ],
    );
    let json: serde_json::Value = serde_json::from_str(&out).expect(&err);
    assert_eq!(json["restarts"], 2, "{out}");
    assert_eq!(json["restarts_from_start_times"], 0, "{out}");
    // A start time that never changes says there was no restart: nothing is inferred for
    // that target, and no hint that its drops might be restarts.
    let constant: Vec<String> = goroutines
        .iter()
        .map(|sample| format!("{},\"1789999990\"]", sample.split(',').next().unwrap()))
        .collect();
    let steady = answer(&[
        entry("go_goroutines", &goroutines),
        entry("process_start_time_seconds", &constant),
    ]);
    let (code, out, _) = run_in(
        dir.path(),
        "steady.json",
        &steady,
        &["--preset", "fast", "--infer-restarts", "--json"],
    );
    assert_eq!(code, Some(0), "{out}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["restarts"], 0, "{out}");
    assert_eq!(json["restarts_inferred"], 0, "{out}");
    let (_, out, _) = run_in(dir.path(), "steady.json", &steady, &["--preset", "fast"]);
    assert!(!out.contains("drops back"), "{out}");
}

/// A goroutine gauge reset by every crash (lives of 40 samples), as a plain CSV with no
/// restart records: a flat sawtooth to the engine, with a hint that its drops may be
/// restarts; with `--infer-restarts` the drops cut it into lives and the leak is found.
#[test]
fn infer_restarts_cuts_a_plain_csv_at_its_resets() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("time,series,value\n");
    for i in 0..800u64 {
        csv.push_str(&format!(
            "{},svc/gauge{{go_goroutines}},{}\n",
            1_790_000_000 + i,
            20 + 3 * (i % 40) + i % 2
        ));
    }
    let (code, out, _) = run_in(dir.path(), "g.csv", &csv, &["--preset", "fast"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(!out.contains("LEAK"), "{out}");
    assert!(
        out.contains("svc/gauge{go_goroutines} drops back to where its life started")
            && out.contains("--infer-restarts"),
        "{out}"
    );
    let (code, out, _) = run_in(
        dir.path(),
        "g.csv",
        &csv,
        &["--preset", "fast", "--infer-restarts"],
    );
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("19 restarts (19 inferred from resets)"),
        "{out}"
    );
    assert!(out.contains("LEAK") && out.contains("per life"), "{out}");
    assert!(!out.contains("drops back"), "{out}");
    // A flat series with noise has no resets to infer and stays quiet.
    let mut flat = String::from("time,series,value\n");
    for i in 0..800u64 {
        flat.push_str(&format!("{},svc/fds,{}\n", 1_790_000_000 + i, 40 + i % 3));
    }
    let (code, out, _) = run_in(
        dir.path(),
        "flat.csv",
        &flat,
        &["--preset", "fast", "--infer-restarts", "--json"],
    );
    assert_eq!(code, Some(0), "{out}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["restarts_inferred"], 0, "{out}");
}

#[test]
fn an_incident_folder_is_read_with_its_target_and_limit() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("20261122-181503-grower-threads-3f2a");
    std::fs::create_dir(&folder).unwrap();
    // As the agent's evidence capture writes them (crates/agent/src/evidence): the finding's
    // series without its target, the limit it runs into as a `.limit` series, times in ms.
    let mut csv = String::from("series,ts_ms,value\n");
    for i in 0..120u64 {
        csv.push_str(&format!(
            "\"threads{{Leaky-#}}\",{},{}\n",
            1_790_000_000_000 + 1000 * i,
            10 + i
        ));
    }
    for i in 0..120u64 {
        csv.push_str(&format!(
            "\"threads.limit{{max_process}}\",{},4096\n",
            1_790_000_000_000 + 1000 * i
        ));
    }
    std::fs::write(folder.join("series.csv"), csv).unwrap();
    std::fs::write(
        folder.join("incident.json"),
        r#"{"version":1,"id":"20261122-181503-grower-threads-3f2a","target":"grower","resource":"threads","attribution":"Leaky-#"}"#,
    )
    .unwrap();
    let out = leakwatch(&["analyze", folder.to_str().unwrap(), "--preset", "fast"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.starts_with("1 series, 120 points, one every 1 s"),
        "{text}"
    );
    assert!(text.contains("grower threads{Leaky-#}"), "{text}");
    assert!(text.contains("limit 4,096 in"), "{text}");
    // The file itself reads the same.
    let file = folder.join("series.csv");
    let out = leakwatch(&[
        "analyze",
        file.to_str().unwrap(),
        "--preset",
        "fast",
        "--json",
    ]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["findings"][0]["target"], "grower", "{json}");
    assert_eq!(json["findings"][0]["limit"], 4096.0, "{json}");
}
