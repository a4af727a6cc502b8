//! Golden tests of the wire: every endpoint's answer as the agent served it before this
//! crate existed (`tests/fixtures/*.json`, captured from a real agent with `json!`-built
//! bodies, trimmed to a few items) must read into its type and serialize back to the same
//! JSON. A field renamed, dropped or reshaped here fails the test for its endpoint; then an
//! older CLI would misread a newer agent, or the other way round.

use leakwatch_api::*;
use leakwatch_model::{Attribution, Resource, TcpState};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Reads the captured answer `name` into `T`, and checks that `T` writes the same JSON
/// (plus `added`, fields this version adds on purpose).
fn golden_with<T: Serialize + DeserializeOwned>(name: &str, added: impl Fn(&mut Value)) -> T {
    let text = fixture(name);
    let mut expected: Value = serde_json::from_str(&text).unwrap();
    added(&mut expected);
    let typed: T = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
    let written = serde_json::to_value(&typed).unwrap();
    assert_eq!(
        written,
        expected,
        "{name}: the type writes\n{}\nbut the agent served\n{}",
        serde_json::to_string_pretty(&written).unwrap(),
        serde_json::to_string_pretty(&expected).unwrap()
    );
    typed
}

fn golden<T: Serialize + DeserializeOwned>(name: &str) -> T {
    golden_with(name, |_| {})
}

#[test]
fn agent_status() {
    // The catalog slots were added after the capture: an older agent's answer reads them
    // as 0.
    let status: AgentStatus = golden_with("agent.json", |v| {
        v["store_catalog_slots"] = json!(0);
        v["detect_catalog_slots"] = json!(0);
    });
    assert!(status.samples > 0 && status.detect_runs > 0, "{status:?}");
    assert!(status.db_path.ends_with("leakwatch.db"), "{status:?}");
}

#[test]
fn targets() {
    let body: Targets = golden("targets.json");
    let grower = body.targets.iter().find(|t| t.name == "grower").unwrap();
    assert_eq!(grower.kind, Some(TargetKind::Rule));
    assert!(grower.live && grower.gauge_error.is_none());
    let current = grower.current.as_ref().unwrap();
    let base = SeriesKey::new(
        "",
        Resource::Threads,
        Attribution::ThreadGroup("Base-#".into()),
    );
    assert_eq!(current.get(&base), Some(2.0));
    assert!(
        current
            .get(&SeriesKey::total("", Resource::Threads))
            .unwrap()
            > 2.0
    );
    let limit = SeriesKey::new("", Resource::Fds, Attribution::MaxProcess).limit();
    assert!(current.get(&limit).is_some(), "{current:?}");
    let gone = body.targets.iter().find(|t| !t.live).unwrap();
    assert!(gone.current.is_none());
}

/// A target the store has no kind for is `"kind": ""`, and a kind this version does not
/// know reads as none rather than failing the whole list.
#[test]
fn target_kinds_unknown_to_either_side() {
    let target = Target {
        name: "old".into(),
        kind: None,
        ..Target::default()
    };
    assert_eq!(
        serde_json::to_value(&target).unwrap(),
        json!({"name": "old", "kind": "", "first_seen_ms": null, "last_seen_ms": null,
               "live": false, "current": null, "gauge_error": null})
    );
    let newer: Target = serde_json::from_value(json!({"name": "n", "kind": "pod"})).unwrap();
    assert_eq!(newer.kind, None);
    let current: Current = serde_json::from_value(json!({
        "tcp{CLOSE_WAIT}": 3.0, "tcp_peer{CLOSE_WAIT 127.0.0.1:18443}": 12.0
    }))
    .unwrap();
    let peer = SeriesKey::new(
        "",
        Resource::TcpPeer,
        Attribution::TcpPeer {
            state: TcpState::CloseWait,
            peer: "127.0.0.1:18443".into(),
        },
    );
    assert_eq!(current.get(&peer), Some(12.0));
}

/// File path groups (issue 13 part 3) travel in `current` as `fds{/path}` and
/// `fds{other files}`, typed on both sides, and write back as they came.
#[test]
fn fd_path_groups_in_current() {
    let body = json!({
        "fds{file}": 729.0,
        "fds{/srv/orders/order-audit.log}": 725.0,
        "fds{/tmp/upload-#.tmp (deleted)}": 3.0,
        "fds{other files}": 1.0
    });
    let current: Current = serde_json::from_value(body.clone()).unwrap();
    let path = |p: &str| SeriesKey::new("", Resource::Fds, Attribution::FdPath(p.into()));
    assert_eq!(
        current.get(&path("/srv/orders/order-audit.log")),
        Some(725.0)
    );
    assert_eq!(current.get(&path("/tmp/upload-#.tmp (deleted)")), Some(3.0));
    let other = SeriesKey::new("", Resource::Fds, Attribution::FdPathOther);
    assert_eq!(current.get(&other), Some(1.0));
    assert_eq!(serde_json::to_value(&current).unwrap(), body);
}

#[test]
fn series() {
    let body: SeriesBody = golden("series.json");
    assert_eq!(body.target, "grower");
    assert!(body.from_ms < body.to_ms);
    let group = SeriesKey::new(
        "",
        Resource::Threads,
        Attribution::ThreadGroup("Leaky-#".into()),
    );
    let leaking = body.series.iter().find(|s| s.key == group).unwrap();
    assert!(leaking.points.len() >= 2);
    assert!(body.series.iter().any(|s| s.key.is_limit));
}

#[test]
fn series_query_is_the_query_string() {
    let query = SeriesQuery {
        target: "svc".into(),
        resource: Some("threads".into()),
        since: Some("6h".into()),
        ..SeriesQuery::default()
    };
    assert_eq!(
        serde_json::to_value(&query).unwrap(),
        json!({"target": "svc", "resource": "threads", "since": "6h"})
    );
}

#[test]
fn restarts_of_a_supervised_command() {
    let body: Restarts = golden("restarts.json");
    assert_eq!(body.target, "crasher");
    let exit = &body.restarts[0];
    assert_eq!(exit.exit_code, Some(2));
    assert!(exit
        .stderr_tail
        .as_deref()
        .unwrap()
        .contains("fatal error: boom"));
}

#[test]
fn restarts_seen_on_the_host() {
    let body: Restarts = golden("restarts_host.json");
    assert!(body.restarts[0].old_pid.is_some() && body.restarts[0].exit_code.is_none());
}

#[test]
fn findings() {
    let body: Findings = golden_with("findings.json", with_states);
    assert!(body.detect_runs > 0);
    let leak = body
        .findings
        .iter()
        .find(|f| f.key.attribution == Attribution::ThreadGroup("Hush-#".into()))
        .unwrap();
    assert_eq!(leak.kind, FindingKind::Leak);
    assert_eq!(leak.key.target, "hushed");
    assert!(leak.rate_per_hour > 0.0 && !leak.summary.is_empty());
}

/// The record writes what the engine's `Finding` writes: the JSON of findings did not
/// change when the record took its place. A field added to `Finding` fails here until the
/// record decides about it.
#[test]
fn a_finding_record_is_the_findings_json() {
    let body: Value = serde_json::from_str(&fixture("findings.json")).unwrap();
    for json in body["findings"].as_array().unwrap() {
        let finding: leakwatch_detect::Finding = serde_json::from_value(json.clone()).unwrap();
        let record = FindingRecord::from(&finding);
        assert_eq!(
            serde_json::to_value(&record).unwrap(),
            serde_json::to_value(&finding).unwrap()
        );
        assert_eq!(leakwatch_detect::Finding::from(record), finding);
    }
}

#[test]
fn alerts() {
    let body: Alerts = golden_with("alerts.json", with_states);
    assert!(body.enabled);
    let firing = body
        .alerts
        .iter()
        .find(|a| a.key.attribution == Attribution::ThreadGroup("Leaky-#".into()))
        .unwrap();
    assert_eq!(firing.state, AlertState::Firing);
    assert_eq!(firing.key.target, "grower");
    assert!(firing.channels.contains_key("hook"));
    let silenced = body
        .alerts
        .iter()
        .find(|a| a.key.target == "hushed")
        .unwrap();
    assert_eq!(silenced.silenced.as_deref(), Some("known issue"));
    assert!(body
        .deliveries
        .iter()
        .any(|d| d.fingerprint == firing.fingerprint && d.status == DeliveryStatus::Delivered));
    assert_eq!(body.channels[0].channel, "hook");
    assert!(body.channels[0].sent > 0);
}

#[test]
fn alerts_when_alerting_is_off() {
    let body: Alerts = golden("alerts_disabled.json");
    assert!(!body.enabled && body.alerts.is_empty());
}

/// Incidents gained `"version": 1`, their findings a state.
fn with_version(incident: &mut Value) {
    incident
        .as_object_mut()
        .unwrap()
        .insert("version".into(), json!(1));
    with_states(incident);
}

/// Findings gained `"state"`; every finding before states existed was confirmed. (Finding
/// records are the objects with a `p_value`.)
fn with_states(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if map.contains_key("p_value") && !map.contains_key("state") {
                map.insert("state".into(), json!("confirmed"));
            }
            map.values_mut().for_each(with_states);
        }
        Value::Array(items) => items.iter_mut().for_each(with_states),
        _ => {}
    }
}

#[test]
fn incidents() {
    let body: Incidents = golden_with("incidents.json", |v| {
        for incident in v["incidents"].as_array_mut().unwrap() {
            with_version(incident);
        }
    });
    assert!(body.dir.ends_with("incidents"));
    assert!(body.incidents.iter().all(|i| i.version == 1));
}

#[test]
fn one_incident() {
    let detail: IncidentDetail = golden_with("incident.json", with_version);
    let incident = &detail.incident;
    assert!(detail.dir.ends_with(&incident.id));
    assert_eq!(incident.key().target, "grower");
    assert_eq!(incident.finding.key, incident.key());
    assert_eq!(incident.status, "complete");
    assert!(incident.files.iter().any(|f| f.name == "threads.txt"));
    assert!(incident.findings.len() > 1);
}

#[test]
fn silences() {
    let body: Silences = golden("silences.json");
    assert!(body.enabled);
    let hushed = body.silences.iter().find(|s| s.target == "hushed").unwrap();
    assert_eq!(hushed.resource, None);
    assert_eq!(hushed.reason, "known issue");
    assert!(hushed.until.ends_with('Z') && hushed.until_ms > 0);
    let off: Silences = golden("silences_disabled.json");
    assert!(!off.enabled && off.silences.is_empty());
}

#[test]
fn silence_added_and_expired() {
    let created: SilenceCreated = golden("silences_post.json");
    assert_eq!(created.silence.target, "hushed");
    let expired: SilencesExpired = golden("silences_delete.json");
    assert_eq!(expired.expired.resource.as_deref(), Some("fds"));
    let all: SilencesExpired = golden("silences_delete_all.json");
    assert_eq!(
        all.expired,
        SilenceMatch {
            target: "nobody".into(),
            resource: None
        }
    );
}

/// What `leakwatch silence` posts; the agent refuses fields it does not know.
#[test]
fn a_new_silence_is_strict() {
    let new = NewSilence {
        target: "hushed".into(),
        resource: None,
        duration: "1h".into(),
        reason: "known issue".into(),
    };
    assert_eq!(
        serde_json::to_value(&new).unwrap(),
        json!({"target": "hushed", "resource": null, "for": "1h", "reason": "known issue"})
    );
    let minimal: NewSilence = serde_json::from_value(json!({"target": "t", "for": "2h"})).unwrap();
    assert_eq!(minimal.reason, "");
    assert!(serde_json::from_value::<NewSilence>(
        json!({"target": "t", "for": "2h", "resources": "fds"})
    )
    .is_err());
}

#[test]
fn error_bodies() {
    for name in [
        "error_404.json",
        "error_400.json",
        "error_409.json",
        "error_silence.json",
        "error_incident.json",
    ] {
        let body: ErrorBody = golden(name);
        assert!(!body.error.is_empty(), "{name}");
    }
    assert_eq!(
        serde_json::to_value(ErrorBody::new("no incident x")).unwrap(),
        json!({"error": "no incident x"})
    );
}

/// A record written before findings had consequences (no `consequences` field) still
/// loads, with none; one with consequences writes and reads them back.
#[test]
fn finding_records_with_and_without_consequences() {
    let old = r#"{"kind":"leak","target":"svc","resource":"tcp","attribution":"CLOSE_WAIT",
        "pids":[42],"current":120.0,"limit":1024.0,"rate_per_hour":360.0,
        "eta_seconds":9000.0,"eta_conservative_seconds":8000.0,"first_seen":1.0,
        "evidence_window":[1.0,1201.0],"confidence":0.999,"p_value":0.001,"restarts":0,
        "summary":"tcp CLOSE_WAIT +120 in 20m (360/h), limit 1,024 in ~2h30m"}"#;
    let record: FindingRecord = serde_json::from_str(old).unwrap();
    assert!(record.consequences.is_empty());
    assert_eq!(
        record.key.attribution,
        Attribution::TcpState(TcpState::CloseWait)
    );
    assert!(!serde_json::to_string(&record)
        .unwrap()
        .contains("consequences"));

    let mut finding = leakwatch_detect::Finding::from(record);
    finding.consequences.push(leakwatch_detect::Consequence {
        kind: FindingKind::Leak,
        key: SeriesKey::new("svc", Resource::Fds, Attribution::Total),
        current: 140.0,
        limit: Some(1024.0),
        rate_per_hour: 362.0,
        evidence_window: (1.0, 1201.0),
    });
    let record = FindingRecord::from(&finding);
    let json = serde_json::to_value(&record).unwrap();
    assert_eq!(json["consequences"][0]["resource"], "fds");
    assert_eq!(json["consequences"][0]["attribution"], "");
    assert_eq!(json, serde_json::to_value(&finding).unwrap());
    let back: FindingRecord = serde_json::from_value(json).unwrap();
    assert_eq!(back, record);
    assert_eq!(back.consequences[0].brief(), "fds +121");
}
