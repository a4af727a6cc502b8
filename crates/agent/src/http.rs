//! The agent's HTTP interface: a JSON API over the history and `/metrics` in the Prometheus
//! text format. This module and the CLI are the only places that know wire formats.

use crate::daemon::{own_rss_bytes, Shared};
use axum::extract::{Query, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use leakwatch_model::{Attribution, Resource};
use leakwatch_store::Store;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

mod dashboard;

#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) shared: Arc<Shared>,
    token: Option<Arc<str>>,
}

pub fn router(shared: Arc<Shared>, token: Option<String>) -> Router {
    let state = AppState {
        shared,
        token: token.map(Arc::from),
    };
    Router::new()
        .route("/", get(dashboard::overview))
        .route("/target/{name}", get(dashboard::target))
        .route("/api", get(index))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics))
        .route("/api/v1/agent", get(agent))
        .route("/api/v1/targets", get(targets))
        .route("/api/v1/series", get(series))
        .route("/api/v1/restarts", get(restarts))
        .route("/api/v1/findings", get(findings))
        .route("/api/v1/alerts", get(alerts))
        .merge(crate::http_incidents::routes())
        .layer(middleware::from_fn_with_state(state.clone(), authorize))
        .with_state(state)
}

async fn authorize(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if let Some(token) = &state.token {
        let expected = format!("Bearer {token}");
        let given = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if given != Some(expected.as_str()) {
            return (StatusCode::UNAUTHORIZED, "missing or wrong bearer token\n").into_response();
        }
    }
    next.run(request).await
}

async fn index() -> impl IntoResponse {
    "leakwatch agent\n\nGET / (dashboard)\nGET /target/T[?since=6h | ?from_ms=&to_ms=] (dashboard)\nGET /api/v1/targets\nGET /api/v1/series?target=T[&resource=R][&attribution=A][&since=6h]\nGET /api/v1/restarts?target=T[&since=24h]\nGET /api/v1/findings\nGET /api/v1/alerts\nGET /api/v1/incidents[/ID[/files/NAME]]\nGET|POST|DELETE /api/v1/silences\nGET /api/v1/agent\nGET /metrics\n"
}

pub(crate) fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

/// Runs a read against a fresh read-only connection on a blocking thread: SQLite in WAL
/// mode serves readers while the writer thread appends.
async fn with_store<T: Send + 'static>(
    shared: &Shared,
    read: impl FnOnce(&Store) -> Result<T, String> + Send + 'static,
) -> Result<T, Response> {
    let path = shared.db_path.clone();
    tokio::task::spawn_blocking(move || {
        let store = Store::open_read_only(&path).map_err(|e| e.to_string())?;
        read(&store)
    })
    .await
    .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
    .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e))
}

async fn agent(State(state): State<AppState>) -> Response {
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
async fn findings(State(state): State<AppState>) -> Response {
    let findings = (*state.shared.findings.get()).clone();
    Json(json!({
        "detect_runs": state.shared.stats.detect_runs.load(Ordering::Relaxed),
        "findings": findings,
    }))
    .into_response()
}

/// Delivery state of every notification per channel, and per-channel counters.
async fn alerts(State(state): State<AppState>) -> Response {
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

async fn targets(State(state): State<AppState>) -> Response {
    let live: std::collections::BTreeMap<String, Value> = {
        let latest = state.shared.latest.get();
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
struct SeriesQuery {
    target: String,
    resource: Option<String>,
    attribution: Option<String>,
    /// A duration back from now, e.g. `6h` (default 1h).
    since: Option<String>,
    from_ms: Option<i64>,
    to_ms: Option<i64>,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The longest range the API and the dashboard serve: the longest history kept.
pub(crate) const MAX_RANGE_MS: i64 = 35 * 86_400_000;

/// Timestamps beyond ±2^53 ms (±285,000 years) are refused, as the store refuses them; the
/// bound keeps every difference of two timestamps far from overflow.
const MAX_TIMESTAMP_MS: i64 = 1 << 53;

/// The queried range: `from_ms`/`to_ms` as given, or `since` back from `to` (default the
/// last hour). Refuses timestamps out of range and ranges longer than [`MAX_RANGE_MS`],
/// whatever the numbers (a range is never computed with overflowing arithmetic).
fn range(since: &Option<String>, from: Option<i64>, to: Option<i64>) -> Result<(i64, i64), String> {
    let bounded = |name: &str, value: i64| {
        if value.unsigned_abs() > MAX_TIMESTAMP_MS.unsigned_abs() {
            Err(format!(
                "{name}={value} is out of range (at most {MAX_TIMESTAMP_MS} ms from 1970)"
            ))
        } else {
            Ok(value)
        }
    };
    let to = bounded("to_ms", to.unwrap_or_else(now_ms))?;
    let from = match (from, since) {
        (Some(from), _) => bounded("from_ms", from)?,
        (None, Some(since)) => {
            let duration =
                humantime::parse_duration(since).map_err(|e| format!("since={since:?}: {e}"))?;
            let ms = i64::try_from(duration.as_millis())
                .ok()
                .filter(|ms| *ms <= MAX_RANGE_MS)
                .ok_or_else(|| {
                    format!("since={since:?} is longer than 35 days (the longest history kept)")
                })?;
            to - ms
        }
        (None, None) => to - 3_600_000,
    };
    // Both ends are within ±2^53, so the difference cannot overflow.
    if to - from > MAX_RANGE_MS {
        return Err(format!(
            "range from_ms={from} to_ms={to} is longer than 35 days (the longest history kept)"
        ));
    }
    Ok((from, to))
}

async fn series(State(state): State<AppState>, Query(query): Query<SeriesQuery>) -> Response {
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
struct RestartsQuery {
    target: String,
    since: Option<String>,
}

async fn restarts(State(state): State<AppState>, Query(query): Query<RestartsQuery>) -> Response {
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

type Labels = Vec<(String, String)>;
type GaugeFamily = Family<Labels, Gauge<f64, AtomicU64>>;

/// `/metrics`: a registry built from the latest sample on each scrape, so a target that
/// vanished is gone from the next scrape and label cardinality is bounded by the caps on
/// thread groups and peers.
async fn metrics(State(state): State<AppState>) -> Response {
    let mut registry = Registry::with_prefix("leakwatch");
    let family = |registry: &mut Registry, name: &str, help: &str| {
        let family = GaugeFamily::default();
        registry.register(name, help, family.clone());
        family
    };
    let processes = family(&mut registry, "target_processes", "Processes in the target");
    let threads = family(
        &mut registry,
        "target_threads",
        "Threads of all processes of the target",
    );
    let groups = family(
        &mut registry,
        "target_thread_group_threads",
        "Threads per thread-name group (digits collapsed to #)",
    );
    let fds = family(
        &mut registry,
        "target_fds",
        "Open file descriptors, by kind (kind=\"\" is the total)",
    );
    let tcp = family(&mut registry, "target_tcp_sockets", "TCP sockets by state");
    let peers = family(
        &mut registry,
        "target_tcp_peer_sockets",
        "TCP sockets by state and peer",
    );
    let memory = family(&mut registry, "target_memory_bytes", "Memory by kind");
    let limits = family(
        &mut registry,
        "target_limit",
        "The limit a resource runs into",
    );
    let app_gauges = family(
        &mut registry,
        "target_app_value",
        "Gauges scraped from the target's own metrics endpoint",
    );
    {
        let latest = state.shared.latest.get();
        for (target, (_, points)) in &latest.targets {
            for (key, value) in points {
                let label = |pairs: &[(&str, &str)]| -> Labels {
                    std::iter::once(("target".to_string(), target.clone()))
                        .chain(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
                        .collect()
                };
                let gauge = if key.is_limit {
                    limits.get_or_create(&label(&[("resource", key.resource.as_str())]))
                } else {
                    match (&key.resource, &key.attribution) {
                        (_, Attribution::MaxProcess) => continue,
                        (Resource::Processes, _) => processes.get_or_create(&label(&[])),
                        (Resource::Threads, Attribution::Total) => {
                            threads.get_or_create(&label(&[]))
                        }
                        (Resource::Threads, group) => {
                            groups.get_or_create(&label(&[("group", &group.to_string())]))
                        }
                        (Resource::Fds, kind) => {
                            fds.get_or_create(&label(&[("kind", &kind.to_string())]))
                        }
                        (Resource::TcpPeer, Attribution::TcpPeer { state, peer }) => peers
                            .get_or_create(&label(&[("state", state.as_str()), ("peer", peer)])),
                        (Resource::TcpPeer, other) => peers
                            .get_or_create(&label(&[("state", &other.to_string()), ("peer", "")])),
                        // UDP and UNIX sockets share the family of TCP states (state="udp").
                        (Resource::Tcp | Resource::Sockets, state) => {
                            tcp.get_or_create(&label(&[("state", &state.to_string())]))
                        }
                        (Resource::Memory, kind) => {
                            memory.get_or_create(&label(&[("kind", &kind.to_string())]))
                        }
                        (Resource::Gauge, name) => {
                            app_gauges.get_or_create(&label(&[("name", &name.to_string())]))
                        }
                        _ => continue,
                    }
                };
                gauge.set(*value);
            }
        }
    }
    {
        let eta = family(
            &mut registry,
            "finding_eta_seconds",
            "Forecast seconds until the resource reaches its limit (conservative bound)",
        );
        let rate = family(
            &mut registry,
            "finding_rate_per_hour",
            "Growth of the resource per hour (restarts per hour for crash loops)",
        );
        let current = family(
            &mut registry,
            "finding_current",
            "Current value of the finding's resource",
        );
        for finding in state.shared.findings.get().iter() {
            let kind = finding.kind.to_string();
            let labels: Labels = vec![
                ("target".into(), finding.key.target.clone()),
                ("kind".into(), kind),
                ("resource".into(), finding.key.resource_text()),
                ("attribution".into(), finding.key.attribution_text()),
            ];
            if let Some(seconds) = finding.eta_conservative_seconds.or(finding.eta_seconds) {
                eta.get_or_create(&labels).set(seconds);
            }
            rate.get_or_create(&labels).set(finding.rate_per_hour);
            current.get_or_create(&labels).set(finding.current);
        }
    }
    {
        let deliveries = family(
            &mut registry,
            "alert_notifications",
            "Alert notifications per channel and outcome since the outbox was created",
        );
        for c in state.shared.alert_counters.get().iter() {
            for (outcome, value) in [
                ("sent", c.sent),
                ("failed", c.failed),
                ("retried", c.retried),
                ("expired", c.expired),
            ] {
                deliveries
                    .get_or_create(&vec![
                        ("channel".to_string(), c.channel.clone()),
                        ("outcome".to_string(), outcome.to_string()),
                    ])
                    .set(value as f64);
            }
        }
    }
    let s = &state.shared.stats;
    let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed) as f64;
    let agent_metrics: [(&str, &str, f64); 14] = [
        (
            "agent_sample_cpu_seconds",
            "CPU time of the last sampling pass",
            load(&s.last_sample_cpu_us) / 1e6,
        ),
        (
            "agent_sample_wall_seconds",
            "Wall time of the last sampling pass",
            load(&s.last_sample_wall_us) / 1e6,
        ),
        (
            "agent_store_seconds",
            "Time to store the last interval",
            load(&s.last_store_us) / 1e6,
        ),
        (
            "agent_samples",
            "Sampling passes since start",
            load(&s.samples),
        ),
        (
            "agent_samples_dropped",
            "Intervals dropped because the store was behind",
            load(&s.dropped),
        ),
        (
            "agent_store_errors",
            "Intervals that could not be stored",
            load(&s.store_errors),
        ),
        (
            "agent_targets",
            "Targets in the last pass",
            load(&s.targets),
        ),
        (
            "agent_series",
            "Series written in the last interval",
            load(&s.series_written),
        ),
        (
            "agent_app_scrape_errors",
            "Failed scrapes of app gauge endpoints since start",
            load(&state.shared.gauges.errors),
        ),
        (
            "agent_restarts_seen",
            "Target restarts seen since start",
            load(&s.restarts_seen),
        ),
        (
            "agent_incidents_captured",
            "Incident folders of evidence written since start",
            load(&s.incidents_captured),
        ),
        (
            "agent_incidents_dropped",
            "Evidence captures dropped because the capture queue was full",
            load(&s.incidents_dropped),
        ),
        (
            "agent_mitigations_run",
            "Restart commands run since start",
            load(&s.mitigations_run),
        ),
        (
            "agent_resident_memory_bytes",
            "Resident memory of the agent",
            own_rss_bytes() as f64,
        ),
    ];
    for (name, help, value) in agent_metrics {
        let gauge = Gauge::<f64, AtomicU64>::default();
        gauge.set(value);
        registry.register(name, help, gauge);
    }
    let mut body = String::new();
    if let Err(e) = encode(&mut body, &registry) {
        return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
        .into_response()
}
