//! The agent's own state, its targets and their history: `/api/v1/agent`, `/api/v1/targets`,
//! `/api/v1/series`, `/api/v1/restarts`.

use leakwatch_model::{ProcessInfo, SeriesKey, TargetKind};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeMap;

/// `GET /api/v1/agent`: the agent's own cost and state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AgentStatus {
    /// Running as root: every process's fds and sockets are seen.
    pub privileged: bool,
    pub uptime_seconds: u64,
    /// Sampling passes since start.
    pub samples: u64,
    /// Intervals dropped because the store was behind.
    pub samples_dropped: u64,
    pub store_errors: u64,
    pub last_sample_cpu_us: u64,
    pub last_sample_wall_us: u64,
    pub last_store_us: u64,
    /// Targets in the last pass.
    pub targets: u64,
    pub restarts_seen: u64,
    /// Detection runs since start (0: no findings computed yet).
    pub detect_runs: u64,
    pub last_detect_us: u64,
    /// Slots of the writer's in-memory catalog (targets and series named since the last
    /// retention pass, with their name indexes): churn of short-lived targets shows here.
    pub store_catalog_slots: u64,
    /// The same for the detection stage's kept reader.
    pub detect_catalog_slots: u64,
    pub rss_bytes: u64,
    pub db_path: String,
    /// Each stage thread's heartbeat (docs/agent.md, Health); left out when empty, so
    /// records from before stages were reported read and write as they were.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stages: Vec<StageStatus>,
}

/// One stage thread of [`AgentStatus`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StageStatus {
    /// `lw-sampler`, `lw-writer`, `lw-detect`, `lw-evidence`, `lw-alerts`, `lw-gauges`.
    pub name: String,
    /// `running`; `stalled` (no heartbeat for longer than `stall_after_ms`: stuck);
    /// `finished` (its loop returned: the agent is stopping, or it has nothing to do).
    pub state: String,
    /// Since its last heartbeat.
    pub heartbeat_age_ms: u64,
    pub stall_after_ms: u64,
}

/// `GET /api/v1/targets`: every target with history, live or not.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Targets {
    pub targets: Vec<Target>,
}

/// One target of [`Targets`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Target {
    pub name: String,
    /// How it was named; `""` on the wire when the store does not know (or, read from a
    /// newer agent, when this version does not know the kind).
    #[serde(with = "kind_text")]
    pub kind: Option<TargetKind>,
    pub first_seen_ms: Option<i64>,
    pub last_seen_ms: Option<i64>,
    /// In the latest sample.
    pub live: bool,
    /// Its values in the latest sample; `null` when not live.
    pub current: Option<Current>,
    /// Why its app gauges could not be scraped, if they could not.
    pub gauge_error: Option<String>,
    /// Who its live processes are (at most 16, oldest first); empty when not live.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub processes: Vec<ProcessInfo>,
    /// How many live processes it has (`processes` lists at most 16).
    #[serde(skip_serializing_if = "is_zero")]
    pub processes_total: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// `"kind"`: a [`TargetKind`] or `""`.
mod kind_text {
    use super::*;

    pub fn serialize<S: Serializer>(kind: &Option<TargetKind>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(kind.map_or("", TargetKind::as_str))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<TargetKind>, D::Error> {
        let text = Option::<String>::deserialize(d)?;
        Ok(text.as_deref().and_then(TargetKind::parse))
    }
}

/// A live target's value per series in the latest sample; keys have an empty target. On
/// the wire an object keyed by the series label (`"threads"`, `"threads{Analytics-#}"`,
/// `"tcp{CLOSE_WAIT}"`, `"fds.limit{max_process}"`), as `SeriesKey::label` spells it and
/// its `FromStr` reads it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Current(pub BTreeMap<SeriesKey, f64>);

impl Current {
    pub fn get(&self, key: &SeriesKey) -> Option<f64> {
        self.0.get(key).copied()
    }
}

impl FromIterator<(SeriesKey, f64)> for Current {
    fn from_iter<I: IntoIterator<Item = (SeriesKey, f64)>>(iter: I) -> Current {
        Current(
            iter.into_iter()
                .map(|(key, value)| (key.without_target(), value))
                .collect(),
        )
    }
}

impl Serialize for Current {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // Ordered by label, as the object has always been.
        let labelled: BTreeMap<String, f64> = self
            .0
            .iter()
            .map(|(key, value)| (key.label(), *value))
            .collect();
        labelled.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Current {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let labelled = BTreeMap::<String, f64>::deserialize(deserializer)?;
        Ok(Current(
            labelled
                .into_iter()
                .map(|(label, value)| {
                    let key = label
                        .parse()
                        .unwrap_or_else(|_| SeriesKey::from_text("", &label, ""));
                    (key, value)
                })
                .collect(),
        ))
    }
}

/// `GET /api/v1/series?target=T[&resource=R][&attribution=A][&since=6h | &from_ms=&to_ms=]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeriesQuery {
    pub target: String,
    /// Only series of this resource (its text, e.g. `threads`, `fds.limit`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// Only series with this attribution (its text; `""` is the total).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribution: Option<String>,
    /// A duration back from `to_ms` (or now), e.g. `6h`; default one hour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_ms: Option<i64>,
}

/// The answer to [`SeriesQuery`] (a 404 [`crate::ErrorBody`] when the target has no series
/// in the range).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SeriesBody {
    pub target: String,
    pub from_ms: i64,
    pub to_ms: i64,
    pub series: Vec<SeriesPoints>,
}

/// One series of [`SeriesBody`]: `{"resource", "attribution", "points": [[ms, value], ...]}`
/// on the wire (the key's text fields without the target, which is the body's).
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesPoints {
    /// The series; its target is left empty.
    pub key: SeriesKey,
    /// `(ms since the epoch, value)`, oldest first.
    pub points: Vec<(i64, f64)>,
}

#[derive(Serialize, Deserialize)]
struct SeriesFields {
    #[serde(default)]
    resource: String,
    #[serde(default)]
    attribution: String,
    #[serde(default)]
    points: Vec<(i64, f64)>,
}

impl Serialize for SeriesPoints {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        SeriesFields {
            resource: self.key.resource_text(),
            attribution: self.key.attribution_text(),
            points: self.points.clone(),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for SeriesPoints {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let fields = SeriesFields::deserialize(deserializer)?;
        Ok(SeriesPoints {
            key: SeriesKey::from_text("", &fields.resource, &fields.attribution),
            points: fields.points,
        })
    }
}

/// `GET /api/v1/restarts?target=T[&since=24h]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestartsQuery {
    pub target: String,
    /// A duration back from now; default 24 hours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
}

/// The answer to [`RestartsQuery`], oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Restarts {
    pub target: String,
    pub restarts: Vec<Restart>,
}

/// A process of the target replaced by another, or (under `leakwatch run`) an exit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Restart {
    pub ts_ms: i64,
    pub old_pid: Option<u32>,
    pub old_start_time: Option<u64>,
    pub new_pid: Option<u32>,
    pub new_start_time: Option<u64>,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub oom_killed: Option<bool>,
    /// The end of the old process's stderr (`leakwatch run` only).
    pub stderr_tail: Option<String>,
}
