//! `incident.json` as the version before `IncidentRecord::VERSION` wrote it
//! (tests/fixtures/incident-v1.json, captured from a real agent by
//! crates/api/tests/capture.sh) still loads, lists and takes new findings.

use leakwatch_agent::evidence::{self, IncidentMeta};
use leakwatch_detect::{Finding, FindingKind, SeriesKey};
use serde_json::{json, Value};

const OLD: &str = include_str!("fixtures/incident-v1.json");

#[test]
fn an_incident_written_by_the_earlier_version_loads() {
    let old: Value = serde_json::from_str(OLD).unwrap();
    assert!(
        old.get("version").is_none(),
        "the fixture predates the field"
    );
    let id = old["id"].as_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join(id)).unwrap();
    std::fs::write(dir.path().join(id).join("incident.json"), OLD).unwrap();

    let meta: IncidentMeta = evidence::load(dir.path(), id).unwrap();
    assert_eq!(meta.version, 1);
    assert_eq!(meta.kind, FindingKind::Leak);
    assert_eq!(meta.finding.key, meta.key());
    assert_eq!(meta.status, "complete");
    assert!(meta.findings.len() > 1 && !meta.mitigations.is_empty());
    assert!(meta.files.iter().any(|f| f.name == "threads.txt"));
    assert_eq!(evidence::list(dir.path()).unwrap(), vec![meta.clone()]);

    // Written back, it is the same JSON with the version added, and the findings' state
    // (the old records' findings were all confirmed: there were no other states).
    let mut expected = old.clone();
    expected
        .as_object_mut()
        .unwrap()
        .insert("version".into(), json!(1));
    expected["finding"]["state"] = json!("confirmed");
    for finding in expected["findings"].as_array_mut().unwrap() {
        finding["state"] = json!("confirmed");
    }
    assert_eq!(serde_json::to_value(&meta).unwrap(), expected);

    // A further finding of the target joins it, and the file stays readable.
    let joining = Finding {
        kind: FindingKind::Saturation,
        state: leakwatch_detect::FindingState::Confirmed,
        resolution: None,
        key: SeriesKey::from_text(&meta.target, "fds", ""),
        pids: vec![],
        processes: Vec::new(),
        current: 900.0,
        limit: Some(1024.0),
        rate_per_hour: 0.0,
        eta_seconds: None,
        eta_conservative_seconds: None,
        first_seen: 0.0,
        evidence_window: (0.0, 1.0),
        confidence: 1.0,
        p_value: 0.0,
        restarts: 0,
        summary: "fds at 88% of the limit".into(),
        consequences: Vec::new(),
        evidence: None,
    };
    evidence::join(dir.path(), id, &joining).unwrap();
    let joined = evidence::load(dir.path(), id).unwrap();
    assert_eq!(joined.findings.len(), meta.findings.len() + 1);
    assert_eq!(joined.findings.last().unwrap().key, joining.key);
}
