//! The records this crate persists still load when an earlier version wrote them: an
//! outbox row's notification and the engine's saved state, exactly as the version before
//! `RECORD_VERSION` wrote them (tests/fixtures/*-v1.json, captured from a real agent by
//! crates/api/tests/capture.sh).

use leakwatch_alert::{
    AlertEngine, AlertState, EngineState, Notification, Outbox, Reason, RECORD_VERSION,
};
use leakwatch_detect::FindingKind;
use serde_json::{json, Value};

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// What this version writes for an old record: the same JSON with `"version": 1` added,
/// and each finding's `"state": "confirmed"` (old findings were all confirmed: there were
/// no other states).
fn rewritten_as_v1(old: &str, record: &impl serde::Serialize) {
    let mut expected: Value = serde_json::from_str(old).unwrap();
    expected
        .as_object_mut()
        .unwrap()
        .insert("version".into(), json!(1));
    confirmed(&mut expected);
    assert_eq!(serde_json::to_value(record).unwrap(), expected);
}

/// Adds `"state": "confirmed"` to every finding record (the objects with a `p_value`).
fn confirmed(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if map.contains_key("p_value") && !map.contains_key("state") {
                map.insert("state".into(), json!("confirmed"));
            }
            map.values_mut().for_each(confirmed);
        }
        Value::Array(items) => items.iter_mut().for_each(confirmed),
        _ => {}
    }
}

#[test]
fn an_outbox_notification_without_a_version_loads_as_version_1() {
    let old = fixture("outbox-notification-v1.json");
    let n: Notification = serde_json::from_str(&old).unwrap();
    assert_eq!(n.version, 1);
    assert_eq!(n.reason, Reason::Firing);
    assert_eq!(n.channel, "hook");
    let finding = n
        .alert
        .finding
        .as_ref()
        .expect("the finding behind the alert");
    assert_eq!(finding.kind, FindingKind::Leak);
    assert_eq!(finding.key.target, n.alert.target);
    assert_eq!(finding.key.resource_text(), n.alert.resource);
    assert_eq!(finding.key.attribution_text(), n.alert.attribution);
    assert!(finding.rate_per_hour > 0.0);
    rewritten_as_v1(&old, &n);
}

#[test]
fn a_saved_engine_state_without_a_version_loads_and_restores() {
    let old = fixture("engine-state-v1.json");
    let state: EngineState = serde_json::from_str(&old).unwrap();
    assert_eq!(state.version, 1);
    assert!(!state.alerts.is_empty());
    for alert in &state.alerts {
        assert_eq!(alert.finding.key.target, alert.target);
        assert_eq!(alert.finding.kind, alert.kind);
    }
    assert!(state.silences.iter().any(|s| s.target == "hushed"));
    rewritten_as_v1(&old, &state);

    let mut engine = AlertEngine::new(&leakwatch_alert::AlertConfig::default());
    engine.restore(state.clone());
    assert_eq!(engine.alerts().count(), state.alerts.len());
    assert!(engine.alerts().all(|a| a.state == AlertState::Firing));
    assert_eq!(engine.state().version, RECORD_VERSION);
}

/// Through the outbox file itself: a row and a state written by the earlier version are
/// read by `due` and `load_engine_state`.
#[test]
fn an_outbox_file_of_the_earlier_version_still_loads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alerts.db");
    let outbox = Outbox::open(&path).unwrap();
    let old = fixture("outbox-notification-v1.json");
    let n: Notification = serde_json::from_str(&old).unwrap();
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute(
            "INSERT INTO outbox (id, channel, fingerprint, reason, notification, status, \
             created_ms, next_attempt_ms, expires_ms) VALUES (?1, ?2, ?3, 'firing', ?4, \
             'pending', 1000, 1000, 99000)",
            rusqlite::params![n.id, n.channel, n.alert.fingerprint, old],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO engine_state (id, state) VALUES (1, ?1)",
            rusqlite::params![fixture("engine-state-v1.json")],
        )
        .unwrap();
    }
    let due = outbox.due(2000, 10).unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].notification, n);
    let state = outbox.load_engine_state().unwrap().unwrap();
    assert_eq!(state.version, 1);
    assert!(!state.alerts.is_empty());
}
