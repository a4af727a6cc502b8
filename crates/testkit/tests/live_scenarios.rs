//! A short subset of the live scenarios (`scenarios/`, docs/detection.md "Live scenarios"):
//! a real `leakwatch agent` sampling every second with `[detect] preset = "fast"` watches
//! two real leaks (incident 000's Analytics threads in a JVM, incident 001's CLOSE_WAIT
//! sockets) and two healthy JVMs (a pool warming up to its cap, bursts of short-lived
//! threads). Each leak must be reported within 30 samples of its start, on the expected
//! series itself; the healthy ones must raise nothing. The full set runs with `scenarios/run.sh`.

use leakwatch_testkit::workspace_bin;
use serde_json::Value;
use std::process::Command;

#[test]
fn fast_preset_finds_live_leaks_within_30_samples_and_healthy_jvms_stay_silent() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let bin_dir = workspace_bin("leakwatch").parent().unwrap().to_path_buf();
    let results_dir = tempfile::tempdir().unwrap();
    let results_path = results_dir.path().join("results.json");
    let output = Command::new("python3")
        .arg(root.join("scenarios/run.py"))
        .args([
            "--only",
            "000,001,healthy-pool-warmup,healthy-thread-bursts",
            "--duration",
            "75",
            // The runner's own pass/fail bound on the expected series, the same as below.
            "--max-delay",
            "30",
        ])
        .arg("--bin-dir")
        .arg(&bin_dir)
        .arg("--json")
        .arg(&results_path)
        .output()
        .expect("python3 runs scenarios/run.py");
    let report = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let results: Value = serde_json::from_str(
        &std::fs::read_to_string(&results_path)
            .unwrap_or_else(|e| panic!("no results ({e}):\n{report}")),
    )
    .unwrap();
    let results = results.as_array().unwrap();
    assert_eq!(results.len(), 4, "{report}");
    for result in results {
        let name = result["scenario"].as_str().unwrap();
        let false_alarms = result["false_alarms"].as_array().unwrap();
        assert!(false_alarms.is_empty(), "{name}: false alarms\n{report}");
        if result["truth"] == "leak" {
            assert_eq!(result["detected"], true, "{name}: missed\n{report}");
            // The leak is reported (on any series growing with it) within 30 samples...
            let first = result["delay_samples"]
                .as_u64()
                .unwrap_or_else(|| panic!("{name}: no delay recorded\n{report}"));
            assert!(
                first <= 30,
                "{name}: first finding after {first} samples\n{report}"
            );
            // ...and on the expected series itself (threads Analytics-#, CLOSE_WAIT sockets),
            // within the same 30. Measured: 23 samples for both (docs/detection.md, "000
            // corrected").
            let delay = result["expected_delay_samples"]
                .as_u64()
                .unwrap_or_else(|| panic!("{name}: expected series never reported\n{report}"));
            assert!(delay <= 30, "{name}: {delay} samples\n{report}");
        }
    }
    assert!(output.status.success(), "{report}");
}
