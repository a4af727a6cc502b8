//! The JSON API: `/api/v1/{agent,targets,series,restarts,findings,alerts}`.

use super::{error, range, with_store, AppState};
use crate::daemon::own_rss_bytes;
use crate::sync::Locked;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::atomic::Ordering;

pub(super) async fn agent(State(state): State<AppState>) -> Response {
    let s = &state.shared.stats;
    Json(json!({
        "privileged": state.shared.privileged,
        "uptime_seconds": state.shared.started.elapsed().as_secs(),
        "samples": s.samples.load(Ordering::Relaxed),
        "samples_dropped": s.dropped.load(Ordering::Relaxed),
        "store_errors": s.store_errors.load(Ordering::Relaxed),
        "last_sample_cpu_us": s.last_sample_cpu_us.load(Ordering::Relaxed),
        "last_sample_wall_us": s.last_sample_wall_us.load(Ordering::Relaxed),
        "last_store_us": s.last_store_us.load(Ordering::Relaxed),
        "targets": s.targets.load(Ordering::Relaxed),
        "restarts_seen": s.restarts_seen.load(Ordering::Relaxed),
        "detect_runs": s.detect_runs.load(Ordering::Relaxed),
        "last_detect_us": s.last_detect_us.load(Ordering::Relaxed),
        "rss_bytes": own_rss_bytes(),
        "db_path": state.shared.db_path.display().to_string(),
    }))
    .into_response()
}

/// Current findings, ranked: soonest exhaustion first. Each is the engine's `Finding`
/// (docs/detection.md) as JSON.
pub(super) async fn findings(State(state): State<AppState>) -> Response {
    let findings = state.shared.findings.locked().clone();
    Json(json!({
        "detect_runs": state.shared.stats.detect_runs.load(Ordering::Relaxed),
        "findings": findings,
    }))
    .into_response()
}

/// Delivery state of every notification per channel, and per-channel counters.
pub(super) async fn alerts(State(state): State<AppState>) -> Response {
    let Some(path) = state.shared.alerts_db.clone() else {
        return Json(json!({ "enabled": false, "deliveries": [], "channels": [], "alerts": [] }))
            .into_response();
    };
    let result = tokio::task::spawn_blocking(move || {
        let outbox = leakwatch_alert::Outbox::open(&path).map_err(|e| e.to_string())?;
        let deliveries = outbox.delivery_state().map_err(|e| e.to_string())?;
        let counters = outbox.counters().map_err(|e| e.to_string())?;
        // The alert engine's alerts (target, series, state, severity), which the
        // deliveries name only by fingerprint.
        let engine = outbox.load_engine_state().map_err(|e| e.to_string())?;
        let alerts = engine.map(|e| e.alerts).unwrap_or_default();
        Ok::<_, String>((deliveries, counters, alerts))
    })
    .await;
    match result {
        Ok(Ok((deliveries, counters, alerts))) => Json(json!({
            "enabled": true,
            "deliveries": deliveries,
            "channels": counters,
            "alerts": alerts,
        }))
        .into_response(),
        Ok(Err(message)) => error(StatusCode::INTERNAL_SERVER_ERROR, message),
        Err(join) => error(StatusCode::INTERNAL_SERVER_ERROR, join.to_string()),
    }
}

pub(super) async fn targets(State(state): State<AppState>) -> Response {
    let live: std::collections::BTreeMap<String, Value> = {
        let latest = state.shared.latest.locked();
        latest
            .targets
            .iter()
            .map(|(name, (_, points))| {
                let current: serde_json::Map<String, Value> = points
                    .iter()
                    .map(|(key, value)| (key.label(), json!(value)))
                    .collect();
                (name.clone(), Value::Object(current))
            })
            .collect()
    };
    let gauge_errors = state.shared.gauges.errors();
    let stored = match with_store(&state.shared, |store| Ok(store.targets())).await {
        Ok(stored) => stored,
        Err(response) => return response,
    };
    let mut out = Vec::new();
    for target in stored {
        out.push(json!({
            "name": target.name,
            "kind": target.kind.map_or("", |kind| kind.as_str()),
            "first_seen_ms": target.first_seen_ms,
            "last_seen_ms": target.last_seen_ms,
            "live": live.contains_key(&target.name),
            "current": live.get(&target.name),
            "gauge_error": gauge_errors.get(&target.name),
        }));
    }
    Json(json!({ "targets": out })).into_response()
}

#[derive(Deserialize)]
pub(super) struct SeriesQuery {
    target: String,
    resource: Option<String>,
    attribution: Option<String>,
    /// A duration back from now, e.g. `6h` (default 1h).
    since: Option<String>,
    from_ms: Option<i64>,
    to_ms: Option<i64>,
}

pub(super) async fn series(
    State(state): State<AppState>,
    Query(query): Query<SeriesQuery>,
) -> Response {
    let (from, to) = match range(&query.since, query.from_ms, query.to_ms) {
        Ok(range) => range,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    let target = query.target.clone();
    let result = with_store(&state.shared, move |store| {
        store
            .query_target(&target, from, to)
            .map_err(|e| e.to_string())
    })
    .await;
    let data = match result {
        Ok(data) => data,
        Err(response) => return response,
    };
    let series: Vec<Value> = data
        .into_iter()
        .filter(|s| {
            query
                .resource
                .as_ref()
                .is_none_or(|r| s.key.resource_text() == *r)
        })
        .filter(|s| {
            query
                .attribution
                .as_ref()
                .is_none_or(|a| s.key.attribution_text() == *a)
        })
        .map(|s| {
            json!({
                "resource": s.key.resource_text(),
                "attribution": s.key.attribution_text(),
                "points": s.points,
            })
        })
        .collect();
    if series.is_empty() {
        return error(
            StatusCode::NOT_FOUND,
            format!("no series for target {:?} in that range", query.target),
        );
    }
    Json(json!({ "target": query.target, "from_ms": from, "to_ms": to, "series": series }))
        .into_response()
}

#[derive(Deserialize)]
pub(super) struct RestartsQuery {
    target: String,
    since: Option<String>,
}

pub(super) async fn restarts(
    State(state): State<AppState>,
    Query(query): Query<RestartsQuery>,
) -> Response {
    let since = query.since.clone().or(Some("24h".into()));
    let (from, to) = match range(&since, None, None) {
        Ok(range) => range,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    let target = query.target.clone();
    let result = with_store(&state.shared, move |store| {
        store.restarts(&target, from, to).map_err(|e| e.to_string())
    })
    .await;
    match result {
        Ok(list) => Json(json!({
            "target": query.target,
            "restarts": list.into_iter().map(|r| json!({
                "ts_ms": r.ts_ms,
                "old_pid": r.old_pid,
                "old_start_time": r.old_start_time,
                "new_pid": r.new_pid,
                "new_start_time": r.new_start_time,
                "exit_code": r.exit_code,
                "signal": r.signal,
                "oom_killed": r.oom_killed,
                "stderr_tail": r.stderr_tail,
            })).collect::<Vec<_>>(),
        }))
        .into_response(),
        Err(response) => response,
    }
}
