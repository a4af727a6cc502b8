//! The JSON API: `/api/v1/{agent,targets,series,restarts,findings,alerts}`, each answer a
//! leakwatch-api type.

use super::{error, range, with_store, AppState};
use crate::daemon::own_rss_bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use leakwatch_api as api;
use leakwatch_model::{ProcessInfo, SeriesKey};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

pub(super) async fn agent(State(state): State<AppState>) -> Json<api::AgentStatus> {
    let s = &state.shared.stats;
    Json(api::AgentStatus {
        privileged: state.shared.privileged,
        uptime_seconds: state.shared.started.elapsed().as_secs(),
        samples: s.samples.load(Ordering::Relaxed),
        samples_dropped: s.dropped.load(Ordering::Relaxed),
        store_errors: s.store_errors.load(Ordering::Relaxed),
        last_sample_cpu_us: s.last_sample_cpu_us.load(Ordering::Relaxed),
        last_sample_wall_us: s.last_sample_wall_us.load(Ordering::Relaxed),
        last_store_us: s.last_store_us.load(Ordering::Relaxed),
        targets: s.targets.load(Ordering::Relaxed),
        restarts_seen: s.restarts_seen.load(Ordering::Relaxed),
        detect_runs: s.detect_runs.load(Ordering::Relaxed),
        last_detect_us: s.last_detect_us.load(Ordering::Relaxed),
        store_catalog_slots: s.store_catalog_slots.load(Ordering::Relaxed),
        detect_catalog_slots: s.detect_catalog_slots.load(Ordering::Relaxed),
        rss_bytes: own_rss_bytes(),
        db_path: state.shared.db_path.display().to_string(),
        stages: state
            .shared
            .heartbeats
            .report()
            .into_iter()
            .map(|s| api::StageStatus {
                name: s.name,
                state: s.state.as_str().into(),
                heartbeat_age_ms: u64::try_from(s.age.as_millis()).unwrap_or(u64::MAX),
                stall_after_ms: u64::try_from(s.bound.as_millis()).unwrap_or(u64::MAX),
            })
            .collect(),
    })
}

/// Current findings, ranked: soonest exhaustion first (docs/detection.md).
pub(super) async fn findings(State(state): State<AppState>) -> Json<api::Findings> {
    let findings = state
        .shared
        .findings
        .get()
        .iter()
        .map(api::FindingRecord::from)
        .collect();
    Json(api::Findings {
        detect_runs: state.shared.stats.detect_runs.load(Ordering::Relaxed),
        findings,
    })
}

/// Delivery state of every notification per channel, and per-channel counters.
pub(super) async fn alerts(State(state): State<AppState>) -> Response {
    let Some(path) = state.shared.alerts_db.clone() else {
        return Json(api::Alerts::default()).into_response();
    };
    let result = tokio::task::spawn_blocking(move || {
        let outbox = leakwatch_alert::Outbox::open(&path).map_err(|e| e.to_string())?;
        let deliveries = outbox.delivery_state().map_err(|e| e.to_string())?;
        let counters = outbox.counters().map_err(|e| e.to_string())?;
        // The alert engine's alerts (target, series, state, severity), which the
        // deliveries name only by fingerprint.
        let engine = outbox.load_engine_state().map_err(|e| e.to_string())?;
        let alerts = engine.map(|e| e.alerts).unwrap_or_default();
        Ok::<_, String>(api::Alerts {
            enabled: true,
            alerts: alerts.iter().map(alert_record).collect(),
            deliveries: deliveries.iter().map(delivery).collect(),
            channels: counters.iter().map(channel_counters).collect(),
        })
    })
    .await;
    match result {
        Ok(Ok(body)) => Json(body).into_response(),
        Ok(Err(message)) => error(StatusCode::INTERNAL_SERVER_ERROR, message),
        Err(join) => error(StatusCode::INTERNAL_SERVER_ERROR, join.to_string()),
    }
}

fn severity(severity: leakwatch_alert::Severity) -> api::Severity {
    match severity {
        leakwatch_alert::Severity::Warning => api::Severity::Warning,
        leakwatch_alert::Severity::Critical => api::Severity::Critical,
    }
}

fn alert_record(a: &leakwatch_alert::Alert) -> api::AlertRecord {
    use leakwatch_alert::AlertState as State;
    api::AlertRecord {
        fingerprint: a.fingerprint.clone(),
        key: SeriesKey::from_text(&a.target, &a.resource, &a.attribution),
        kind: a.kind,
        severity: severity(a.severity),
        state: match a.state {
            State::Pending => api::AlertState::Pending,
            State::Firing => api::AlertState::Firing,
            State::Resolved => api::AlertState::Resolved,
        },
        pending_since_ms: a.pending_since_ms,
        firing_since_ms: a.firing_since_ms,
        resolved_ms: a.resolved_ms,
        last_seen_ms: a.last_seen_ms,
        finding: a.finding.clone(),
        silenced: a.silenced.clone(),
        channels: a
            .channels
            .iter()
            .map(|(name, mark)| {
                let mark = api::ChannelMark {
                    last_sent_ms: mark.last_sent_ms,
                    severity: severity(mark.severity),
                };
                (name.clone(), mark)
            })
            .collect(),
    }
}

fn delivery(d: &leakwatch_alert::DeliveryRow) -> api::Delivery {
    api::Delivery {
        id: d.id.clone(),
        fingerprint: d.fingerprint.clone(),
        channel: d.channel.clone(),
        reason: d.reason.clone(),
        // One type on both sides: the outbox stores the API's status.
        status: d.status,
        attempts: d.attempts,
        created_ms: d.created_ms,
        next_attempt_ms: d.next_attempt_ms,
        expires_ms: d.expires_ms,
        delivered_ms: d.delivered_ms,
        detail: d.detail.clone(),
    }
}

fn channel_counters(c: &leakwatch_alert::ChannelCounters) -> api::ChannelCounters {
    api::ChannelCounters {
        channel: c.channel.clone(),
        sent: c.sent,
        failed: c.failed,
        retried: c.retried,
        expired: c.expired,
        consecutive_failures: c.consecutive_failures,
        failing_since_ms: c.failing_since_ms,
        failing_alerted: c.failing_alerted,
    }
}

pub(super) async fn targets(State(state): State<AppState>) -> Response {
    let latest = state.shared.latest.get();
    let live: BTreeMap<String, api::Current> = latest
        .targets
        .iter()
        .map(|(name, (_, points))| (name.clone(), points.iter().cloned().collect()))
        .collect();
    let processes = |name: &str| -> (Vec<ProcessInfo>, usize) {
        latest.processes.get(name).map_or((Vec::new(), 0), |p| {
            (p.listed.iter().map(|p| (**p).clone()).collect(), p.total)
        })
    };
    let gauge_errors = state.shared.gauges.errors();
    let stored = match with_store(&state.shared, |store| Ok(store.targets())).await {
        Ok(stored) => stored,
        Err(response) => return response,
    };
    let targets = stored
        .into_iter()
        .map(|target| {
            let (processes, processes_total) = processes(&target.name);
            api::Target {
                processes,
                processes_total,
                kind: target.kind,
                first_seen_ms: target.first_seen_ms,
                last_seen_ms: target.last_seen_ms,
                live: live.contains_key(&target.name),
                current: live.get(&target.name).cloned(),
                gauge_error: gauge_errors.get(&target.name).cloned(),
                name: target.name,
            }
        })
        .collect();
    Json(api::Targets { targets }).into_response()
}

pub(super) async fn series(
    State(state): State<AppState>,
    Query(query): Query<api::SeriesQuery>,
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
    let series: Vec<api::SeriesPoints> = data
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
        .map(|s| api::SeriesPoints {
            key: SeriesKey {
                target: String::new(),
                ..s.key
            },
            points: s.points,
        })
        .collect();
    if series.is_empty() {
        return error(
            StatusCode::NOT_FOUND,
            format!("no series for target {:?} in that range", query.target),
        );
    }
    Json(api::SeriesBody {
        target: query.target,
        from_ms: from,
        to_ms: to,
        series,
    })
    .into_response()
}

pub(super) async fn restarts(
    State(state): State<AppState>,
    Query(query): Query<api::RestartsQuery>,
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
        Ok(list) => Json(api::Restarts {
            target: query.target,
            restarts: list
                .into_iter()
                .map(|r| api::Restart {
                    ts_ms: r.ts_ms,
                    old_pid: r.old_pid,
                    old_start_time: r.old_start_time,
                    new_pid: r.new_pid,
                    new_start_time: r.new_start_time,
                    exit_code: r.exit_code,
                    signal: r.signal,
                    oom_killed: r.oom_killed,
                    stderr_tail: r.stderr_tail,
                })
                .collect(),
        })
        .into_response(),
        Err(response) => response,
    }
}
