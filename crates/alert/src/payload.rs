//! Wire formats of the channels: the webhook JSON, Slack text, Alertmanager alerts, mail.
//! Documented in docs/alerts.md; change both together.

use serde_json::{json, Value};

use crate::lifecycle::{AlertState, Notification, Reason};
use crate::time::rfc3339_ms;

/// Marks test alerts in every human-readable rendering.
pub(crate) const TEST_MARK: &str = "[TEST] ";

/// The generic webhook body (also the exec channel's stdin), format version 1.
pub fn webhook_body(n: &Notification, sent_ms: u64) -> Value {
    let a = &n.alert;
    json!({
        "version": 1,
        "id": n.id,
        "reason": n.reason.as_str(),
        "test": n.is_test(),
        "channel": n.channel,
        "created_at": rfc3339_ms(n.created_ms),
        "sent_at": rfc3339_ms(sent_ms),
        "alert": {
            "fingerprint": a.fingerprint,
            "alertname": a.alertname,
            "kind": a.kind,
            "severity": a.severity.as_str(),
            "state": a.state.as_str(),
            "target": a.target,
            "resource": a.resource,
            "attribution": a.attribution,
            "starts_at": rfc3339_ms(a.starts_ms),
            "ends_at": a.ends_ms.map(rfc3339_ms),
            "summary": a.summary,
            "finding": a.finding,
            "incident": a.incident,
        },
        "text": one_line(n),
    })
}

/// One line for people: `[FIRING critical] analytics threads Analytics-#: <summary>`.
pub(crate) fn one_line(n: &Notification) -> String {
    let a = &n.alert;
    let test = if n.is_test() { TEST_MARK } else { "" };
    let state = match (n.reason, a.state) {
        (Reason::Resolved, _) | (_, AlertState::Resolved) => "RESOLVED".to_string(),
        (Reason::Escalated, _) => "ESCALATED".to_string(),
        (Reason::ChannelRecovered, _) => "RECOVERED".to_string(),
        (Reason::Mitigation, _) => "MITIGATION".to_string(),
        (Reason::Evidence, _) => "EVIDENCE".to_string(),
        _ => "FIRING".to_string(),
    };
    let what = if a.attribution.is_empty() {
        format!("{} {}", a.target, a.resource)
    } else {
        format!("{} {} {}", a.target, a.resource, a.attribution)
    };
    let evidence = match &a.incident {
        Some(id) => format!(" (evidence: leakwatch incident {id})"),
        None => String::new(),
    };
    let processes = a.finding.as_ref().map(processes_brief).unwrap_or_default();
    format!(
        "{test}[{state} {}] {what}{processes}: {}{evidence}",
        a.severity.as_str(),
        a.summary
    )
}

/// ` [pid 4037 java, unit orders.service +2 more]`: which processes, in a few words; empty
/// when the finding names none.
pub(crate) fn processes_brief(f: &leakwatch_api::FindingRecord) -> String {
    let Some(first) = f.processes.first() else {
        return String::new();
    };
    let mut text = format!("pid {} {}", first.pid, first.comm);
    if let Some(unit) = &first.unit {
        text.push_str(&format!(", unit {unit}"));
    }
    if let Some(container) = &first.container {
        text.push_str(&format!(", container {container}"));
    }
    if let Some(pod) = &first.pod {
        text.push_str(&format!(", pod {pod}"));
    }
    let total = f.pids.len().max(f.processes.len());
    if total > 1 {
        text.push_str(&format!(" +{} more", total - 1));
    }
    format!(" [{text}]")
}

pub(crate) fn slack_body(n: &Notification) -> Value {
    json!({ "text": format!("{}\n(leakwatch alert {}, id {})", one_line(n), n.alert.fingerprint, n.id) })
}

/// One element of Alertmanager's `POST /api/v2/alerts` array. Firing alerts get `endsAt`
/// `ends_after_ms` after sending, so Alertmanager resolves them if the re-sends stop.
pub(crate) fn alertmanager_alert(
    n: &Notification,
    sent_ms: u64,
    ends_after_ms: u64,
    extra_labels: &std::collections::BTreeMap<String, String>,
) -> Value {
    let a = &n.alert;
    let mut labels = serde_json::Map::new();
    for (k, v) in extra_labels {
        labels.insert(k.clone(), json!(v));
    }
    let mut put = |k: &str, v: &str| {
        if !v.is_empty() {
            labels.insert(k.to_string(), json!(v));
        }
    };
    put("alertname", &a.alertname);
    put("source", "leakwatch");
    put("severity", a.severity.as_str());
    put("kind", &a.kind);
    put("target", &a.target);
    put("resource", &a.resource);
    put("attribution", &a.attribution);
    if n.is_test() {
        put("test", "true");
    }
    let mut annotations = serde_json::Map::new();
    annotations.insert("summary".into(), json!(one_line(n)));
    annotations.insert("fingerprint".into(), json!(a.fingerprint));
    if let Some(id) = &a.incident {
        annotations.insert("incident".into(), json!(id));
    }
    if let Some(f) = &a.finding {
        annotations.insert("description".into(), json!(f.summary));
        if let Some(first) = f.processes.first() {
            annotations.insert("process".into(), json!(first.brief()));
        }
        annotations.insert("current".into(), json!(f.current.to_string()));
        if let Some(limit) = f.limit {
            annotations.insert("limit".into(), json!(limit.to_string()));
        }
        annotations.insert(
            "rate_per_hour".into(),
            json!(format!("{:.1}", f.rate_per_hour)),
        );
        if let Some(eta) = f.eta_conservative_seconds {
            annotations.insert(
                "eta_conservative_seconds".into(),
                json!(format!("{eta:.0}")),
            );
        }
    }
    let resolved = n.reason == Reason::Resolved || a.state == AlertState::Resolved;
    let ends_ms = if resolved {
        // Never in the future, or Alertmanager would keep it active until then.
        a.ends_ms.unwrap_or(sent_ms).min(sent_ms)
    } else {
        sent_ms + ends_after_ms
    };
    json!({
        "labels": labels,
        "annotations": annotations,
        "startsAt": rfc3339_ms(a.starts_ms),
        "endsAt": rfc3339_ms(ends_ms),
    })
}

pub(crate) fn email_subject(n: &Notification) -> String {
    let mut line = format!("[leakwatch] {}", one_line(n));
    if line.chars().count() > 200 {
        line = line.chars().take(197).collect::<String>() + "...";
    }
    line
}

pub(crate) fn email_body(n: &Notification, sent_ms: u64) -> String {
    let a = &n.alert;
    let mut body = String::new();
    if n.is_test() {
        body.push_str("THIS IS A TEST ALERT sent by `leakwatch alert test`. No action needed.\n\n");
    }
    body.push_str(&format!(
        "{}\n\ntarget:      {}\nresource:    {}\nattribution: {}\nkind:        {}\nseverity:    {}\nstate:       {}\nsince:       {}\n",
        one_line(n),
        a.target,
        a.resource,
        a.attribution,
        a.kind,
        a.severity.as_str(),
        a.state.as_str(),
        rfc3339_ms(a.starts_ms),
    ));
    if let Some(ends) = a.ends_ms {
        body.push_str(&format!("resolved:    {}\n", rfc3339_ms(ends)));
    }
    body.push_str(&format!(
        "\nnotification {} ({}), sent {}\n",
        n.id,
        n.reason.as_str(),
        rfc3339_ms(sent_ms)
    ));
    if let Some(f) = &a.finding {
        body.push_str("\nfinding:\n");
        body.push_str(&serde_json::to_string_pretty(f).unwrap_or_default());
        body.push('\n');
    }
    body
}
