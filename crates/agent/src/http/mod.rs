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
pub mod server;

/// What the router checks on every request.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// The bearer token every request must carry, if any.
    pub token: Option<String>,
    /// When set, only these `Host`s are answered (loopback names and addresses always):
    /// a loopback agent without a token refuses a browser sent to it under another name
    /// (DNS rebinding). `None` answers any `Host` (the agent listens beyond loopback and
    /// every request carries the token).
    pub allowed_hosts: Option<Vec<String>>,
    pub request_timeout: std::time::Duration,
}

impl Settings {
    pub fn of(agent: &crate::config::AgentSection) -> Settings {
        let guarded = agent.listen.ip().is_loopback() && agent.token.is_none();
        Settings {
            token: agent.token.clone(),
            allowed_hosts: guarded.then(|| {
                let mut hosts: Vec<String> = agent
                    .allowed_hosts
                    .iter()
                    .map(|h| h.to_ascii_lowercase())
                    .collect();
                hosts.push(agent.listen.ip().to_string());
                hosts
            }),
            request_timeout: agent.http_request_timeout,
        }
    }
}

#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) shared: Arc<Shared>,
    token: Option<Arc<str>>,
    allowed_hosts: Option<Arc<[String]>>,
    request_timeout: std::time::Duration,
    /// `POST /api/v1/silences` accepted in the last minute.
    silence_posts: Arc<incidents::RateLimit>,
    /// `POST /api/v1/incidents/{id}/captures`, rate-limited.
    capture_requests: Arc<incidents::RateLimit>,
}

/// Every route [`router`] serves and its methods (kept in step with it; the route fuzz test,
/// `tests/http_routes_fuzz.rs`, drives each of them and fails on one that is not routed).
pub const ROUTES: &[(&str, &[&str])] = &[
    ("/", &["GET"]),
    ("/target/{name}", &["GET"]),
    ("/api", &["GET"]),
    ("/healthz", &["GET"]),
    ("/metrics", &["GET"]),
    (paths::AGENT, &["GET"]),
    (paths::TARGETS, &["GET"]),
    (paths::SERIES, &["GET"]),
    (paths::RESTARTS, &["GET"]),
    (paths::FINDINGS, &["GET"]),
    (paths::ALERTS, &["GET"]),
    (paths::INCIDENTS, &["GET"]),
    (paths::INCIDENT, &["GET"]),
    (paths::INCIDENT_FILE, &["GET"]),
    (paths::INCIDENT_CAPTURES, &["POST"]),
    (paths::SILENCES, &["GET", "POST", "DELETE"]),
];

pub fn router(shared: Arc<Shared>, settings: Settings) -> Router {
    let state = AppState {
        shared,
        token: settings.token.map(Arc::from),
        allowed_hosts: settings.allowed_hosts.map(Arc::from),
        request_timeout: settings.request_timeout,
        silence_posts: Arc::new(incidents::RateLimit::new(
            incidents::MAX_SILENCES_PER_MINUTE,
            std::time::Duration::from_secs(60),
        )),
        capture_requests: Arc::new(incidents::RateLimit::new(
            incidents::MAX_CAPTURE_REQUESTS,
            incidents::CAPTURE_WINDOW,
        )),
    };
    Router::new()
        .route("/", get(dashboard::overview))
        .route("/target/{name}", get(dashboard::target))
        .route("/api", get(index))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics::metrics))
        .route(paths::AGENT, get(api::agent))
        .route(paths::TARGETS, get(api::targets))
        .route(paths::SERIES, get(api::series))
        .route(paths::RESTARTS, get(api::restarts))
        .route(paths::FINDINGS, get(api::findings))
        .route(paths::ALERTS, get(api::alerts))
        .merge(incidents::routes())
        .fallback(no_route)
        .method_not_allowed_fallback(wrong_method)
        .layer(middleware::from_fn_with_state(state.clone(), authorize))
        .layer(middleware::from_fn_with_state(state.clone(), guard))
        .with_state(state)
}

/// Outermost: security headers on every answer, the `Host` allow-list, the request
/// timeout.
async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let mut response = if let Some(host) = refused_host(&state, &request) {
        error(
            StatusCode::MISDIRECTED_REQUEST,
            format!(
                "this agent does not answer to Host {host:?} (loopback names and agent.allowed_hosts only)"
            ),
        )
    } else {
        match tokio::time::timeout(state.request_timeout, next.run(request)).await {
            Ok(response) => response,
            Err(_) => error(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "the request took longer than {:?} (agent.http_request_timeout)",
                    state.request_timeout
                ),
            ),
        }
    };
    if response.status().is_client_error() || response.status().is_server_error() {
        response = json_error(response).await;
    }
    let headers = response.headers_mut();
    for (name, value) in SECURITY_HEADERS {
        headers.insert(name.clone(), header::HeaderValue::from_static(value));
    }
    response
}

/// An error answered in plain text (axum's rejections of a query, a path or a body that
/// does not parse) as the documented JSON `{"error": ...}`, its status kept.
async fn json_error(response: Response) -> Response {
    let plain = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/plain"));
    if !plain {
        return response;
    }
    let (parts, body) = response.into_parts();
    // Rejection messages are a line; a longer body is cut, not buffered whole.
    let text = match axum::body::to_bytes(body, 64 * 1024).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(_) => parts
            .status
            .canonical_reason()
            .unwrap_or("error")
            .to_string(),
    };
    let mut json = error(parts.status, truncated(text.trim(), 4096));
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            json.headers_mut().insert(name.clone(), value.clone());
        }
    }
    json
}

/// Sent with every answer. The dashboard's pages carry their CSS and a small script inline
/// and load nothing else.
const SECURITY_HEADERS: &[(header::HeaderName, &str)] = &[
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::X_FRAME_OPTIONS, "DENY"),
    (header::REFERRER_POLICY, "no-referrer"),
    (
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
         img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; \
         frame-ancestors 'none'",
    ),
];

/// The `Host` of a request this agent must not answer, if any.
fn refused_host(state: &AppState, request: &Request) -> Option<String> {
    let allowed = state.allowed_hosts.as_ref()?;
    // HTTP/1.0 clients may send no Host; browsers always do.
    let host = request.headers().get(header::HOST)?;
    let Ok(host) = host.to_str() else {
        return Some(String::from_utf8_lossy(host.as_bytes()).into_owned());
    };
    let name = host_name(host).to_ascii_lowercase();
    let loopback = name == "localhost"
        || name.ends_with(".localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    (!loopback && !allowed.contains(&name)).then(|| host.to_string())
}

/// `example.org:9464` -> `example.org`, `[::1]:9464` -> `::1`.
fn host_name(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    host.rsplit_once(':')
        .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
        .map_or(host, |(name, _)| name)
}

/// The bearer token, on every route but `/healthz` (liveness probes carry no token, and it
/// tells nothing but "ok").
async fn authorize(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if let Some(token) = state
        .token
        .as_ref()
        .filter(|_| request.uri().path() != "/healthz")
    {
        let expected = format!("Bearer {token}");
        let given = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if given != Some(expected.as_str()) {
            let mut response = error(StatusCode::UNAUTHORIZED, "missing or wrong bearer token");
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
            return response;
        }
    }
    next.run(request).await
}

/// 200 `ok`, or 503 with the reason when a configured part of the agent is down.
async fn healthz(State(state): State<AppState>) -> Response {
    let shared = &state.shared;
    if let Some(stage) = shared.failed_stage.get().as_ref() {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("stage {stage} panicked: the agent is stopping"),
        );
    }
    if let Some(stalled) = shared.heartbeats.stalled().first() {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "stage {} stalled: no heartbeat for {} s (bound {} s)",
                stalled.name,
                stalled.age.as_secs(),
                stalled.bound.as_secs()
            ),
        );
    }
    if shared.alerts_db.is_some()
        && shared
            .stats
            .alerting_down
            .load(std::sync::atomic::Ordering::Relaxed)
    {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "alerting down: the alert outbox cannot be written or read (see the agent's log)",
        );
    }
    "ok\n".into_response()
}

/// Any path the router does not serve: a JSON 404 like every other error (axum's own has
/// an empty body).
async fn no_route(request: Request) -> Response {
    error(
        StatusCode::NOT_FOUND,
        format!(
            "no route {} (GET /api lists the routes)",
            truncated(request.uri().path(), 200)
        ),
    )
}

/// A served path asked with a method it does not take: a JSON 405.
async fn wrong_method(request: Request) -> Response {
    error(
        StatusCode::METHOD_NOT_ALLOWED,
        format!(
            "{} is not served on {} (GET /api lists the routes)",
            request.method(),
            truncated(request.uri().path(), 200)
        ),
    )
}

/// At most `max` bytes of `text` (on a character boundary), marked when cut.
fn truncated(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &text[..end], text.len())
}

async fn index() -> impl IntoResponse {
    "leakwatch agent\n\nGET / (dashboard)\nGET /target/T[?since=6h | ?from_ms=&to_ms=] (dashboard)\nGET /api/v1/targets\nGET /api/v1/series?target=T[&resource=R][&attribution=A][&since=6h]\nGET /api/v1/restarts?target=T[&since=24h]\nGET /api/v1/findings\nGET /api/v1/alerts\nGET /api/v1/incidents[/ID[/files/NAME]]\nPOST /api/v1/incidents/ID/captures\nGET|POST|DELETE /api/v1/silences\nGET /api/v1/agent\nGET /metrics\n"
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
