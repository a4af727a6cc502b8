//! The dashboard: HTML pages rendered by `leakwatch-view` from the store (read-only, on a
//! blocking thread, like the JSON API) and the agent's memory (latest sample, findings).
//! Routes: `/` (overview) and `/target/{name}`; both take `?since=6h` or
//! `?from_ms=&to_ms=`, and sit behind the same token check as the API.

use super::{range, with_store, AppState};
use crate::daemon::Shared;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use leakwatch_detect::Finding;
use leakwatch_model::{Attribution, FdKind, MemoryKind, Resource, SeriesKey, TargetKind};
use leakwatch_store::Store;
use leakwatch_view::model::{
    self, AlertView, DeliveryView, IncidentView, Overview, OverviewRow, RestartView, SeriesView,
    Spark, TargetView,
};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;

/// Rows of the overview that get sparklines (the riskiest); the rest are listed without.
const OVERVIEW_CHARTS: usize = 40;
/// Incidents listed on a target's page (newest first).
const PAGE_INCIDENTS: usize = 20;

#[derive(Deserialize)]
pub(super) struct PageQuery {
    since: Option<String>,
    from_ms: Option<i64>,
    to_ms: Option<i64>,
}

impl PageQuery {
    /// The range to draw (default: the last 6 hours) and the `since` choice to highlight.
    fn range(&self) -> Result<(i64, i64, Option<String>), String> {
        let since = match (&self.since, self.from_ms) {
            (None, None) => Some("6h".to_string()),
            (since, _) => since.clone(),
        };
        let (from, to) = range(&since, self.from_ms, self.to_ms)?;
        if from >= to {
            return Err(format!(
                "empty range: from_ms {from} is not before to_ms {to}"
            ));
        }
        Ok((from, to, since.filter(|_| self.from_ms.is_none())))
    }
}

fn page_error(status: StatusCode, message: &str) -> Response {
    let body = leakwatch_view::page::document(
        "leakwatch: error",
        "<a href=\"/\">leakwatch</a>",
        &format!(
            "<h1>{}</h1><p>{}</p>",
            status,
            leakwatch_view::escape::html(message)
        ),
        None,
    );
    (status, Html(body)).into_response()
}

fn agent_line(shared: &Shared) -> String {
    let uptime = shared.started.elapsed().as_secs();
    format!(
        "agent up {}, {} samples{}",
        leakwatch_view::format::duration(uptime as f64),
        shared.stats.samples.load(Ordering::Relaxed),
        if shared.privileged {
            ""
        } else {
            " (not root: other users' fds and sockets unseen)"
        }
    )
}

/// A live target's kind and current values.
type Live = (TargetKind, Vec<(SeriesKey, f64)>);

/// Every live target, from the latest sample.
fn live_targets(shared: &Shared) -> BTreeMap<String, Live> {
    let latest = shared.latest.get();
    latest
        .targets
        .iter()
        .map(|(name, (kind, points))| (name.clone(), (*kind, points.clone())))
        .collect()
}

pub(super) async fn overview(
    State(state): State<AppState>,
    Query(query): Query<PageQuery>,
) -> Response {
    let (from, to, since) = match query.range() {
        Ok(range) => range,
        Err(message) => return page_error(StatusCode::BAD_REQUEST, &message),
    };
    let live = live_targets(&state.shared);
    let mut findings: HashMap<String, Vec<Finding>> = HashMap::new();
    for f in state.shared.findings.get().iter() {
        findings
            .entry(f.key.target.clone())
            .or_default()
            .push(f.clone());
    }
    let rows = with_store(&state.shared, move |store| {
        let mut rows: Vec<OverviewRow> = store
            .targets()
            .into_iter()
            .map(|t| {
                let current = live.get(&t.name);
                OverviewRow {
                    kind: current
                        .map(|c| c.0)
                        .or(t.kind)
                        .map_or_else(String::new, |kind| kind.to_string()),
                    live: current.is_some(),
                    last_seen_ms: t.last_seen_ms,
                    findings: findings.remove(&t.name).unwrap_or_default(),
                    closeness: current.and_then(|c| model::closeness(&c.1)),
                    sparks: Vec::new(),
                    name: t.name,
                }
            })
            .collect();
        model::rank(&mut rows);
        for row in rows.iter_mut().take(OVERVIEW_CHARTS) {
            row.sparks = sparks(store, &row.name, from, to);
        }
        Ok(rows)
    })
    .await;
    let rows = match rows {
        Ok(rows) => rows,
        Err(response) => return response,
    };
    let page = leakwatch_view::page::overview(
        &Overview {
            from_ms: from,
            to_ms: to,
            rows,
            agent: agent_line(&state.shared),
        },
        since.as_deref(),
    );
    Html(page).into_response()
}

/// Threads, fds, sockets (socket fds) and RSS of one target: one read of its blocks for
/// the range (a block holds all of a target's series for an hour).
fn sparks(store: &Store, target: &str, from: i64, to: i64) -> Vec<Spark> {
    let Ok(mut data) = store.query_target(target, from, to) else {
        return Vec::new();
    };
    [
        ("threads", Resource::Threads, Attribution::Total),
        ("fds", Resource::Fds, Attribution::Total),
        (
            "sockets",
            Resource::Fds,
            Attribution::FdKind(FdKind::Socket),
        ),
        (
            "memory",
            Resource::Memory,
            Attribution::Memory(MemoryKind::Rss),
        ),
    ]
    .into_iter()
    .filter_map(|(title, resource, attribution)| {
        let i = data.iter().position(|s| {
            !s.key.is_limit && s.key.resource == resource && s.key.attribution == attribution
        })?;
        Some(Spark {
            title: title.to_string(),
            resource,
            points: std::mem::take(&mut data[i].points),
            limit: None,
        })
    })
    .collect()
}

pub(super) async fn target(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(query): Query<PageQuery>,
) -> Response {
    let (from, to, since) = match query.range() {
        Ok(range) => range,
        Err(message) => return page_error(StatusCode::BAD_REQUEST, &message),
    };
    let live = live_targets(&state.shared).remove(&name);
    let findings: Vec<Finding> = state
        .shared
        .findings
        .get()
        .iter()
        .filter(|f| f.key.target == name)
        .cloned()
        .collect();
    let alerts_db = state.shared.alerts_db.clone();
    let incidents_dir = state.shared.incidents_dir.clone();
    let query_from = query.from_ms;
    let target = name.clone();
    let result = with_store(&state.shared, move |store| {
        let Some(info) = store.targets().into_iter().find(|t| t.name == target) else {
            return Ok(None);
        };
        // A range back from now that reaches before the target's first sample starts at
        // that sample (an explicit from_ms is kept as asked).
        let from = match (query_from, info.first_seen_ms) {
            (None, Some(first)) if first > from && first < to => first,
            _ => from,
        };
        let series = store
            .query_target(&target, from, to)
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|s| SeriesView::new(s.key, s.points))
            .collect();
        let restarts = store
            .restarts(&target, from, to)
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|r| RestartView {
                ts_ms: r.ts_ms,
                old_pid: r.old_pid,
                new_pid: r.new_pid,
                exit_code: r.exit_code,
                signal: r.signal,
                oom_killed: r.oom_killed,
                stderr_tail: r.stderr_tail,
            })
            .collect();
        // Alerts are a convenience on this page: an unreadable outbox shows none.
        let alerts = alerts_db
            .as_deref()
            .map(|path| alert_views(path, Some(&target)).unwrap_or_default())
            .unwrap_or_default();
        let incidents = crate::evidence::list(&incidents_dir)
            .unwrap_or_default()
            .into_iter()
            .filter(|i| i.target == target)
            .take(PAGE_INCIDENTS)
            .map(|i| IncidentView {
                files: i.files.iter().map(|f| (f.name.clone(), f.bytes)).collect(),
                id: i.id,
                created_ms: i.created_ms,
                resource: i.resource,
                attribution: i.attribution,
                summary: i.summary,
                excerpts: Vec::new(),
            })
            .collect();
        Ok(Some(TargetView {
            kind: live
                .as_ref()
                .map(|l| l.0)
                .or(info.kind)
                .map_or_else(String::new, |kind| kind.to_string()),
            live: live.is_some(),
            name: target,
            from_ms: from,
            to_ms: to,
            series,
            restarts,
            findings,
            alerts,
            incidents,
        }))
    })
    .await;
    match result {
        Ok(Some(view)) => Html(leakwatch_view::page::target(
            &view,
            since.as_deref(),
            &agent_line(&state.shared),
        ))
        .into_response(),
        Ok(None) => page_error(
            StatusCode::NOT_FOUND,
            &format!("no target named {name:?} in the history"),
        ),
        Err(response) => response,
    }
}

/// The alert engine's alerts (of `target`, or all) with their latest delivery per channel,
/// from the outbox file.
pub(super) fn alert_views(
    path: &std::path::Path,
    target: Option<&str>,
) -> Result<Vec<AlertView>, String> {
    let outbox = leakwatch_alert::Outbox::open(path).map_err(|e| e.to_string())?;
    let engine = outbox
        .load_engine_state()
        .map_err(|e| e.to_string())?
        .unwrap_or_default();
    let deliveries = outbox.delivery_state().map_err(|e| e.to_string())?;
    Ok(engine
        .alerts
        .into_iter()
        .filter(|a| target.is_none_or(|t| a.target == t))
        .map(|a| AlertView {
            deliveries: deliveries
                .iter()
                .filter(|d| d.fingerprint == a.fingerprint)
                .map(|d| DeliveryView {
                    channel: d.channel.clone(),
                    status: format!("{:?}", d.status).to_lowercase(),
                    attempts: d.attempts,
                    detail: d.detail.clone(),
                })
                .collect(),
            since_ms: Some(a.firing_since_ms.unwrap_or(a.pending_since_ms) as i64),
            kind: a.kind.to_string(),
            severity: a.severity.as_str().to_string(),
            state: a.state.as_str().to_string(),
            silenced: a.silenced,
            summary: a.finding.summary,
            target: a.target,
            resource: a.resource,
            attribution: a.attribution,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::PageQuery;

    fn page(from_ms: Option<i64>, to_ms: Option<i64>, since: Option<&str>) -> PageQuery {
        PageQuery {
            since: since.map(str::to_string),
            from_ms,
            to_ms,
        }
    }

    /// Regression (issue 16): `from_ms=i64::MIN&to_ms=i64::MAX` overflowed the length check
    /// and the agent allocated until the OOM killer stopped it.
    #[test]
    fn extreme_ranges_are_refused_not_computed() {
        for (from, to) in [
            (i64::MIN, i64::MAX),
            (i64::MIN, 0),
            (0, i64::MAX),
            (-(1 << 60), 1 << 60),
        ] {
            let refused = page(Some(from), Some(to), None).range();
            assert!(refused.is_err(), "{from}..{to} was accepted: {refused:?}");
        }
        let too_long = page(Some(0), Some(36 * 86_400_000), None).range();
        assert!(too_long.unwrap_err().contains("longer than 35 days"));
        let since = page(None, Some(1 << 40), Some("10000y")).range();
        assert!(since.unwrap_err().contains("longer than 35 days"));
        let ok = page(Some(1_000), Some(61_000), None).range().unwrap();
        assert_eq!((ok.0, ok.1), (1_000, 61_000));
        let default = page(None, Some(1 << 40), None).range().unwrap();
        assert_eq!(default.1 - default.0, 6 * 3_600_000);
    }
}
