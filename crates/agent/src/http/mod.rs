//! The agent's HTTP interface: the router, the token check and what the routes share
//! (error answers, store reads on a blocking thread, time ranges). The routes:
//! `api.rs` (the JSON API), `incidents.rs` (incidents and silences), `metrics.rs`
//! (`/metrics`), `dashboard.rs` (the HTML pages). Every JSON answer is a leakwatch-api type,
//! so the agent and the CLI cannot disagree about a field.

use crate::daemon::Shared;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use leakwatch_api::{paths, ErrorBody};
use leakwatch_store::Store;
use std::sync::Arc;

mod api;
mod dashboard;
mod incidents;
mod metrics;

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
        .route("/metrics", get(metrics::metrics))
        .route(paths::AGENT, get(api::agent))
        .route(paths::TARGETS, get(api::targets))
        .route(paths::SERIES, get(api::series))
        .route(paths::RESTARTS, get(api::restarts))
        .route(paths::FINDINGS, get(api::findings))
        .route(paths::ALERTS, get(api::alerts))
        .merge(incidents::routes())
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
    (status, Json(ErrorBody::new(message))).into_response()
}

/// Runs a read against a fresh read-only connection on a blocking thread: SQLite in WAL
/// mode serves readers while the writer thread appends.
pub(crate) async fn with_store<T: Send + 'static>(
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

use leakwatch_model::time::now_ms;

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
