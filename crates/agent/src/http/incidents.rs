//! HTTP routes for incidents (captured evidence) and silences.
//!
//! - `GET /api/v1/incidents`: every incident, newest first (`incident.json` of each).
//! - `GET /api/v1/incidents/{id}`: one incident.
//! - `GET /api/v1/incidents/{id}/files/{name}`: one evidence file, as text.
//! - `POST /api/v1/incidents/{id}/captures` `{"what": "heap" | "heap-dump"}`: capture
//!   again, on request (202; the result appears among the incident's files).
//! - `GET /api/v1/silences`: the alert engine's silences.
//! - `POST /api/v1/silences` `{"target", "resource"?, "for": "2h", "reason"}`: add one.
//! - `DELETE /api/v1/silences?target=T[&resource=R]`: end them.

use super::{error, AppState};
use crate::daemon::{AlertEvent, SilenceOp};
use crate::evidence;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use leakwatch_alert::{Silence, Timestamp};
use leakwatch_api::{self as api, paths, NewSilence, SilenceMatch};

/// Active silences at most: the alert state (and every update) grows with them.
const MAX_SILENCES: usize = 1000;

/// Silences added per minute at most (`POST /api/v1/silences` that passed validation);
/// beyond, 429 with `Retry-After`. Each one rewrites the alert state on disk.
pub(crate) const MAX_SILENCES_PER_MINUTE: usize = 60;

/// At most `max` events in any `window` (a sliding window of their times).
#[derive(Debug)]
pub(crate) struct RateLimit {
    max: usize,
    window: std::time::Duration,
    times: std::sync::Mutex<std::collections::VecDeque<std::time::Instant>>,
}

impl RateLimit {
    pub(crate) fn new(max: usize, window: std::time::Duration) -> RateLimit {
        RateLimit {
            max,
            window,
            times: std::sync::Mutex::default(),
        }
    }

    /// Counts one event at `now`, or says how long until one more is allowed.
    fn admit(&self, now: std::time::Instant) -> Result<(), std::time::Duration> {
        let mut times = self.times.lock().unwrap_or_else(|e| e.into_inner());
        while times
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= self.window)
        {
            times.pop_front();
        }
        if times.len() >= self.max {
            let oldest = times.front().copied().unwrap_or(now);
            return Err(self
                .window
                .saturating_sub(now.saturating_duration_since(oldest)));
        }
        times.push_back(now);
        Ok(())
    }
}

/// A 429 with `Retry-After`: the rate limit allows one more in `wait`; `message` gets the
/// whole seconds to say.
fn too_many(wait: std::time::Duration, message: impl FnOnce(u64) -> String) -> Response {
    let seconds = wait.as_secs() + 1;
    let mut response = error(StatusCode::TOO_MANY_REQUESTS, message(seconds));
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, header::HeaderValue::from(seconds));
    response
}

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route(paths::INCIDENTS, get(list))
        .route(paths::INCIDENT, get(show))
        .route(paths::INCIDENT_FILE, get(file))
        .route(paths::INCIDENT_CAPTURES, post(request_capture))
        .route(
            paths::SILENCES,
            get(silences).post(add_silence).delete(expire_silence),
        )
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| e.to_string())?
}

fn not_found_or_500(message: String) -> Response {
    let status = if message.starts_with("no incident") || message.contains("has no file") {
        StatusCode::NOT_FOUND
    } else if message.contains("is not an incident ID") {
        StatusCode::BAD_REQUEST
    } else if message.contains("is a heap dump") {
        StatusCode::FORBIDDEN
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    };
    error(status, message)
}

async fn list(State(state): State<AppState>) -> Response {
    let root = state.shared.incidents_dir.clone();
    match blocking(move || evidence::list(&root)).await {
        Ok(incidents) => Json(api::Incidents {
            dir: state.shared.incidents_dir.display().to_string(),
            incidents,
        })
        .into_response(),
        Err(message) => error(StatusCode::INTERNAL_SERVER_ERROR, message),
    }
}

async fn show(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    let root = state.shared.incidents_dir.clone();
    let dir = root.join(&id).display().to_string();
    match blocking(move || evidence::load(&root, &id)).await {
        Ok(incident) => Json(api::IncidentDetail { incident, dir }).into_response(),
        Err(message) => not_found_or_500(message),
    }
}

async fn file(State(state): State<AppState>, Path((id, name)): Path<(String, String)>) -> Response {
    let root = state.shared.incidents_dir.clone();
    match blocking(move || evidence::read_file(&root, &id, &name)).await {
        Ok(bytes) => ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], bytes).into_response(),
        Err(message) => not_found_or_500(message),
    }
}

/// Captures asked for through the API, at most, per [`CAPTURE_WINDOW`]: each may take a
/// heap interval or a heap dump, and the evidence stage does one job at a time.
pub(crate) const MAX_CAPTURE_REQUESTS: usize = 6;
pub(crate) const CAPTURE_WINDOW: std::time::Duration = std::time::Duration::from_secs(600);

/// `POST /api/v1/incidents/{id}/captures`: queues a capture of the incident's target's
/// live processes on the evidence stage. 202 with the file that will hold the outcome.
async fn request_capture(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Option<Json<api::CaptureRequest>>,
) -> Response {
    let Some(Json(body)) = body else {
        return error(
            StatusCode::BAD_REQUEST,
            "expected a JSON body {\"what\": \"heap\" | \"heap-dump\"}",
        );
    };
    if !evidence::valid_id(&id) {
        return error(
            StatusCode::BAD_REQUEST,
            format!("{id:?} is not an incident ID"),
        );
    }
    let Some(inbox) = state.shared.evidence_inbox.clone() else {
        return error(
            StatusCode::CONFLICT,
            "evidence is off on this agent ([evidence] enabled = false)",
        );
    };
    let root = state.shared.incidents_dir.clone();
    let meta = match blocking({
        let id = id.clone();
        move || evidence::load(&root, &id)
    })
    .await
    {
        Ok(meta) => meta,
        Err(message) => return not_found_or_500(message),
    };
    let pids = state
        .shared
        .latest
        .get()
        .pids
        .get(&meta.target)
        .cloned()
        .unwrap_or_default();
    if pids.is_empty() {
        return error(
            StatusCode::CONFLICT,
            format!(
                "the target {} has no live process now: nothing to capture",
                meta.target
            ),
        );
    }
    if let Err(wait) = state.capture_requests.admit(std::time::Instant::now()) {
        return too_many(wait, |seconds| {
            format!(
                "{MAX_CAPTURE_REQUESTS} captures were asked for in the last {} minutes: try again in {seconds} s",
                CAPTURE_WINDOW.as_secs() / 60
            )
        });
    }
    // Unique even for two requests in one millisecond.
    static SEQUENCE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = SEQUENCE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let stem = format!("{}-{}-{n}", body.what.as_str(), leakwatch_alert::now_ms());
    let answer = api::CaptureAccepted {
        incident: id.clone(),
        what: body.what,
        file: format!("{stem}.txt"),
        pids: pids.clone(),
    };
    let job =
        crate::daemon::incidents::EvidenceJob::Request(Box::new(evidence::capture::RequestJob {
            id,
            what: body.what,
            stem,
            pids,
        }));
    match inbox.try_send(job) {
        Ok(()) => (StatusCode::ACCEPTED, Json(answer)).into_response(),
        Err(_) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the evidence stage has too much work waiting; try again later",
        ),
    }
}

fn silence_view(s: &Silence) -> api::Silence {
    api::Silence {
        target: s.target.clone(),
        resource: s.resource.clone(),
        until_ms: s.until.0,
        until: leakwatch_alert::rfc3339_ms(s.until.0),
        reason: s.reason.clone(),
    }
}

async fn silences(State(state): State<AppState>) -> Response {
    let now = leakwatch_alert::now_ms();
    let silences = state
        .shared
        .silences
        .get()
        .iter()
        .filter(|s| s.until.0 > now)
        .map(silence_view)
        .collect();
    Json(api::Silences {
        enabled: state.shared.alerts_db.is_some(),
        silences,
    })
    .into_response()
}

fn queue(state: &AppState, op: SilenceOp) -> Result<(), Box<Response>> {
    let Some(alerts) = &state.shared.alert_inbox else {
        return Err(Box::new(error(
            StatusCode::CONFLICT,
            "alerting is not configured on this agent ([alerts] has no channels): nothing to silence",
        )));
    };
    if matches!(op, SilenceOp::Add(_)) && state.shared.silences.get().len() >= MAX_SILENCES {
        return Err(Box::new(error(
            StatusCode::CONFLICT,
            format!("{MAX_SILENCES} silences are active already: expire some first"),
        )));
    }
    alerts.try_send(AlertEvent::Silence(op)).map_err(|_| {
        Box::new(error(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many alert changes waiting; try again in a second",
        ))
    })
}

/// The longest silence: a year. Longer ones are refused rather than overflowing the clock.
const MAX_SILENCE: std::time::Duration = std::time::Duration::from_secs(365 * 86_400);
/// Longest target or resource name accepted in a silence (bytes).
const MAX_SILENCE_NAME: usize = 512;
/// Longest silence reason (bytes).
const MAX_SILENCE_REASON: usize = 1024;

/// Checks a requested silence: names and reason within their caps, a duration between 0s
/// and [`MAX_SILENCE`]; `until` computed without overflow.
fn validate_silence(body: NewSilence, now_ms: u64) -> Result<Silence, String> {
    if body.target.trim().is_empty() {
        return Err("target must not be empty".to_string());
    }
    if body.target.len() > MAX_SILENCE_NAME {
        return Err(format!("target is longer than {MAX_SILENCE_NAME} bytes"));
    }
    if body
        .resource
        .as_ref()
        .is_some_and(|r| r.len() > MAX_SILENCE_NAME)
    {
        return Err(format!("resource is longer than {MAX_SILENCE_NAME} bytes"));
    }
    if body.reason.len() > MAX_SILENCE_REASON {
        return Err(format!("reason is longer than {MAX_SILENCE_REASON} bytes"));
    }
    let duration = match humantime::parse_duration(&body.duration) {
        Ok(d) if d.is_zero() => return Err("for must be longer than 0s".to_string()),
        Ok(d) if d > MAX_SILENCE => {
            return Err(format!(
                "for = {:?} is longer than the longest silence, 365 days",
                body.duration
            ))
        }
        Ok(d) => d,
        Err(e) => return Err(format!("for = {:?} is not a duration: {e}", body.duration)),
    };
    // At most a year of milliseconds: the sum cannot overflow for any real clock.
    let until = now_ms.saturating_add(duration.as_millis() as u64);
    Ok(Silence {
        target: body.target,
        resource: body.resource.filter(|r| !r.is_empty()),
        until: Timestamp(until),
        reason: body.reason,
    })
}

async fn add_silence(State(state): State<AppState>, body: Option<Json<NewSilence>>) -> Response {
    let Some(Json(body)) = body else {
        return error(
            StatusCode::BAD_REQUEST,
            "expected a JSON body {\"target\", \"resource\"?, \"for\": \"2h\", \"reason\"}",
        );
    };
    let silence = match validate_silence(body, leakwatch_alert::now_ms()) {
        Ok(silence) => silence,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    if let Err(wait) = state.silence_posts.admit(std::time::Instant::now()) {
        return too_many(wait, |seconds| {
            format!(
                "more than {MAX_SILENCES_PER_MINUTE} silences added in a minute: try again in {seconds} s"
            )
        });
    }
    let answer = api::SilenceCreated {
        silence: silence_view(&silence),
    };
    match queue(&state, SilenceOp::Add(silence)) {
        Ok(()) => (StatusCode::CREATED, Json(answer)).into_response(),
        Err(response) => *response,
    }
}

async fn expire_silence(
    State(state): State<AppState>,
    Query(query): Query<SilenceMatch>,
) -> Response {
    let op = SilenceOp::Expire {
        target: query.target.clone(),
        resource: query.resource.clone().filter(|r| !r.is_empty()),
    };
    match queue(&state, op) {
        Ok(()) => Json(api::SilencesExpired { expired: query }).into_response(),
        Err(response) => *response,
    }
}

#[cfg(test)]
mod tests {
    use super::{validate_silence, NewSilence};

    fn body(duration: &str, reason: String) -> NewSilence {
        NewSilence {
            target: "svc".into(),
            resource: None,
            duration: duration.into(),
            reason,
        }
    }

    /// Regression (issue 16): `"for": "10000y"` overflowed and panicked the handler; 2 MB
    /// reasons were stored whole.
    #[test]
    fn silences_are_bounded_in_duration_and_size() {
        let now = 1_800_000_000_000;
        let long = validate_silence(body("10000y", String::new()), now).unwrap_err();
        assert!(long.contains("365 days"), "{long}");
        let huge = validate_silence(body("2h", "x".repeat(2 << 20)), now).unwrap_err();
        assert!(huge.contains("reason is longer"), "{huge}");
        assert!(validate_silence(body("0s", String::new()), now).is_err());
        assert!(validate_silence(body("soon", String::new()), now).is_err());
        let ok = validate_silence(body("2h", "deploy".into()), now).unwrap();
        assert_eq!(ok.until.0, now + 7_200_000);
        let near_end = validate_silence(body("365days", String::new()), u64::MAX - 5).unwrap();
        assert_eq!(near_end.until.0, u64::MAX);
    }
}
