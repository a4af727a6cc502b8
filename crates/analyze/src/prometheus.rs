//! Prometheus `/api/v1/query_range` responses (`resultType: matrix`) as series.
//!
//! Series keys come from labels:
//! - target: the `target` label, else `instance`, else `job`, else empty;
//! - resource and attribution: leakwatch's own labels `resource` and `attribution` when
//!   present; otherwise the metric is an application gauge: resource `gauge`, attribution
//!   the metric name (`__name__`) followed by any remaining labels as `{k=v,...}` sorted
//!   by name (so `go_goroutines{job="api"}` is `api/gauge{go_goroutines}`);
//! - limit: a numeric `limit` label, if any.
//!
//! Samples whose value is `NaN` or infinite are skipped: PromQL produces them routinely
//! (a ratio with a zero denominator), and one of them should not make a week unusable.
//!
//! Series of `process_start_time_seconds` are not judged: they are the processes' restart
//! records. Each change of a target's start time is a restart of that target, at the new
//! start time when it falls between the two samples (else at the sample that showed it),
//! so a leak that crashes and restarts is cut into process lives offline as the agent's
//! own restart records cut it.

use crate::error::InputError;
use leakwatch_detect::{Point, Restart, Series, SeriesKey};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet, HashSet};

#[derive(Deserialize)]
struct Response {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct Data {
    #[serde(rename = "resultType")]
    result_type: String,
    result: serde_json::Value,
}

#[derive(Deserialize)]
struct Matrix {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    #[serde(default)]
    values: Vec<(serde_json::Value, serde_json::Value)>,
}

/// Labels that name the series rather than distinguish a part of the resource.
const IDENTITY_LABELS: [&str; 7] = [
    "__name__",
    "target",
    "instance",
    "job",
    "resource",
    "attribution",
    "limit",
];

fn key_of(labels: &BTreeMap<String, String>) -> SeriesKey {
    let target = ["target", "instance", "job"]
        .iter()
        .find_map(|name| labels.get(*name))
        .cloned()
        .unwrap_or_default();
    if let Some(resource) = labels.get("resource") {
        let attribution = labels.get("attribution").cloned().unwrap_or_default();
        return SeriesKey::from_text(target, resource, attribution);
    }
    let mut attribution = labels.get("__name__").cloned().unwrap_or_default();
    let rest: Vec<String> = labels
        .iter()
        .filter(|(name, _)| !IDENTITY_LABELS.contains(&name.as_str()))
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    if !rest.is_empty() {
        attribution.push('{');
        attribution.push_str(&rest.join(","));
        attribution.push('}');
    }
    SeriesKey::from_text(target, "gauge", attribution)
}

fn number(value: &serde_json::Value) -> Option<f64> {
    match value {
        serde_json::Value::Number(n) => n.as_f64(),
        // Prometheus sends sample values as strings ("1.5", "NaN", "+Inf").
        serde_json::Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
}

/// The metric whose changes are restarts.
pub const START_TIME_METRIC: &str = "process_start_time_seconds";

/// A start time moving by less than this (seconds) is the same process: exporters that
/// compute it from boot time and clock ticks can wobble by a tick.
const START_TIME_TOLERANCE: f64 = 0.5;

/// What a `query_range` response holds: the series to judge, and the restarts read from
/// its `process_start_time_seconds` series (sorted by time).
#[derive(Debug, Default)]
pub struct QueryRange {
    pub series: Vec<Series>,
    pub restarts: Vec<Restart>,
    /// Targets with a start-time series, changed or not: their restarts are known.
    pub start_time_targets: BTreeSet<String>,
}

/// The restarts of `target` that a start-time series shows: every change of its value.
fn restarts_of(target: &str, points: &[Point]) -> Vec<Restart> {
    points
        .windows(2)
        .filter(|pair| (pair[1].v - pair[0].v).abs() > START_TIME_TOLERANCE)
        .map(|pair| {
            let started = pair[1].v;
            Restart {
                target: target.to_string(),
                t: if started > pair[0].t && started <= pair[1].t {
                    started
                } else {
                    pair[1].t
                },
                old_pid: None,
                new_pid: None,
                reason: format!("{START_TIME_METRIC} changed"),
            }
        })
        .collect()
}

/// Parses the JSON body of a `query_range` call.
pub fn parse_prometheus_query_range(bytes: &[u8]) -> Result<QueryRange, InputError> {
    let response: Response = serde_json::from_slice(bytes)
        .map_err(|e| InputError::Prometheus(format!("not a query_range response: {e}")))?;
    if response.status != "success" {
        return Err(InputError::Prometheus(format!(
            "status {:?}: {} ({})",
            response.status,
            response
                .error
                .unwrap_or_else(|| "no error message".to_string()),
            response
                .error_type
                .unwrap_or_else(|| "no error type".to_string())
        )));
    }
    let data = response
        .data
        .ok_or_else(|| InputError::Prometheus("status success but no data".to_string()))?;
    if data.result_type != "matrix" {
        return Err(InputError::Prometheus(format!(
            "resultType is {:?}, expected \"matrix\" (use /api/v1/query_range, not /api/v1/query)",
            data.result_type
        )));
    }
    let matrix: Vec<Matrix> = serde_json::from_value(data.result)
        .map_err(|e| InputError::Prometheus(format!("result is not a list of series: {e}")))?;
    let mut seen = HashSet::new();
    let mut series = Vec::with_capacity(matrix.len());
    let mut restarts = Vec::new();
    let mut start_time_targets = BTreeSet::new();
    for (position, entry) in matrix.into_iter().enumerate() {
        let key = key_of(&entry.metric);
        let name = format!("#{} {key}", position + 1);
        let start_times =
            entry.metric.get("__name__").map(String::as_str) == Some(START_TIME_METRIC);
        // Start times are not judged: two of one target (two jobs on one instance) are fine.
        if !start_times && !seen.insert(key.clone()) {
            return Err(InputError::PrometheusSeries {
                series: name,
                message: "another series has the same target, resource and attribution".to_string(),
            });
        }
        let limit = match entry.metric.get("limit") {
            None => None,
            Some(text) => match text.parse::<f64>() {
                Ok(limit) if limit.is_finite() && limit > 0.0 => Some(limit),
                _ => {
                    return Err(InputError::PrometheusSeries {
                        series: name,
                        message: format!("limit label {text:?} is not a positive number"),
                    })
                }
            },
        };
        let mut points = Vec::with_capacity(entry.values.len());
        for (index, (time, value)) in entry.values.iter().enumerate() {
            let Some(t) = number(time).filter(|t| t.is_finite()) else {
                return Err(InputError::PrometheusSeries {
                    series: name,
                    message: format!("sample {}: time {time} is not a number", index + 1),
                });
            };
            let Some(v) = number(value) else {
                return Err(InputError::PrometheusSeries {
                    series: name,
                    message: format!("sample {}: value {value} is not a number", index + 1),
                });
            };
            if !v.is_finite() {
                continue;
            }
            if points.last().is_some_and(|p: &Point| t < p.t) {
                return Err(InputError::PrometheusSeries {
                    series: name,
                    message: format!("sample {}: time {t} goes back in time", index + 1),
                });
            }
            points.push(Point::new(t, v));
        }
        if start_times {
            restarts.extend(restarts_of(&key.target, &points));
            start_time_targets.insert(key.target);
            continue;
        }
        series.push(Series::new(key, points, limit));
    }
    restarts.sort_by(|a, b| a.t.total_cmp(&b.t));
    Ok(QueryRange {
        series,
        restarts,
        start_time_targets,
    })
}
