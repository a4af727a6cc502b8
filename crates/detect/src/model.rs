//! The engine's input (series of samples, restarts) and output (findings): plain data.

use crate::format::Unit;
use serde::{Deserialize, Serialize};
use std::fmt;

pub use leakwatch_model::{Attribution, ParseKeyError, ProcessInfo, Resource, SeriesKey};

/// One sample: `v` measured at `t` (unix seconds).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Point {
    pub t: f64,
    pub v: f64,
}

impl Point {
    pub fn new(t: f64, v: f64) -> Point {
        Point { t, v }
    }
}

/// The samples of one quantity, sorted by time, with the hard limit it runs into if known.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Series {
    pub key: SeriesKey,
    /// Sorted by `t`. Points after the analysis time `now` are ignored.
    pub points: Vec<Point>,
    /// The real ceiling: RLIMIT_NOFILE, pids.max, memory.max, or a declared capacity such
    /// as a connection-pool size. `None` when nothing caps the resource.
    pub limit: Option<f64>,
    /// How values read in summaries, when not the resource's own ([`Unit::of`]): a CSV
    /// column called `memory` that holds a utilisation in percent. Display only: the
    /// analysis does not depend on it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<Unit>,
    /// What `limit` is, for summaries (`RLIMIT_NOFILE`); `None` reads as plain "limit".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit_name: Option<String>,
    /// A capacity declared in the configuration or reported by the service itself. The
    /// forecast uses whichever of it and `limit` leaves the least headroom.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<Capacity>,
}

/// A capacity other than the host's limits: a connection pool of 1,024 declared in the
/// configuration, or a `*_max` gauge the service reports (`hikaricp_connections_max`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Capacity {
    pub value: f64,
    /// How summaries name it: `pool`, `hikaricp_connections_max`.
    pub name: String,
    pub source: CapacitySource,
    /// Series of one target with the same group share the capacity (sockets of one pool in
    /// CLOSE_WAIT and ESTABLISHED): each one's headroom counts the others' current values.
    #[serde(default)]
    pub group: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CapacitySource {
    /// Written in the configuration by a person.
    Declared,
    /// Reported by the service (a gauge named like the series with `max` or `limit`).
    Reported,
}

impl Capacity {
    /// `pool, declared`.
    pub fn label(&self) -> String {
        let source = match self.source {
            CapacitySource::Declared => "declared",
            CapacitySource::Reported => "reported",
        };
        format!("{}, {source}", self.name)
    }
}

impl Series {
    pub fn new(key: SeriesKey, points: Vec<Point>, limit: Option<f64>) -> Series {
        Series {
            key,
            points,
            limit,
            unit: None,
            limit_name: None,
            capacity: None,
        }
    }

    /// The same series, its `limit` named (`RLIMIT_NOFILE`).
    pub fn with_limit_name(mut self, name: impl Into<String>) -> Series {
        self.limit_name = Some(name.into());
        self
    }

    /// The same series with a declared or reported capacity.
    pub fn with_capacity(mut self, capacity: Capacity) -> Series {
        self.capacity = Some(capacity);
        self
    }

    /// The same series, its values read in `unit`.
    pub fn with_unit(mut self, unit: Unit) -> Series {
        self.unit = Some(unit);
        self
    }

    /// The unit its values read in: its own, else the resource's.
    pub fn display_unit(&self) -> Unit {
        self.unit.unwrap_or_else(|| Unit::of_key(&self.key))
    }
}

/// A target's process was replaced (crash and restart, deploy, OOM kill) at time `t`.
///
/// The collector notices restarts as a change of PID; `reason` is whatever it could learn
/// ("exit 2", "signal 9", "oom", or "unknown").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Restart {
    pub target: String,
    pub t: f64,
    pub old_pid: Option<u32>,
    pub new_pid: Option<u32>,
    pub reason: String,
}

/// What a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// Sustained growth of the resource's floor: a leak.
    Leak,
    /// The resource is already close to its limit.
    Saturation,
    /// The target keeps restarting.
    CrashLoop,
}

impl fmt::Display for FindingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FindingKind::Leak => "leak",
            FindingKind::Saturation => "saturation",
            FindingKind::CrashLoop => "crash_loop",
        })
    }
}

/// Where a finding stands (docs/detection.md, "Lifecycle").
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum FindingState {
    /// Seen, but not yet on enough evidence: the trend passes every test, but the process
    /// life it was seen in is younger than `confirm_samples` (warm-up, a young service, a
    /// trend not yet seen over a day with the production preset) and its limit is not
    /// near; or the climb is visibly levelling off below its limit (a fill). Shown, never
    /// alerted.
    Suspected,
    /// Enough evidence, or urgent (the conservative forecast reaches the limit within
    /// `urgent_horizon_samples`). Alerted. Records written before states existed read as
    /// confirmed.
    #[default]
    Confirmed,
    /// No longer true: the growth stopped, or the target's processes are gone
    /// ([`Resolution`]). Kept for a while for display; its alert resolves at once.
    Resolved,
}

impl FindingState {
    pub fn as_str(self) -> &'static str {
        match self {
            FindingState::Suspected => "suspected",
            FindingState::Confirmed => "confirmed",
            FindingState::Resolved => "resolved",
        }
    }
}

impl fmt::Display for FindingState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a finding resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResolutionCause {
    /// Every process of the target exited (and none replaced it).
    Gone,
    /// The target lives on, but the engine no longer sees the growth (or the saturation).
    Stopped,
}

/// How and when a finding resolved.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Resolution {
    pub cause: ResolutionCause,
    /// Unix seconds: when the target was last seen (gone), or when the engine first no
    /// longer reported it (stopped).
    pub at: f64,
    /// The finding's last value.
    pub last_value: f64,
}

/// One conclusion of the engine, with the numbers that support it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub kind: FindingKind,
    /// Suspected or confirmed as the engine sees it; resolved only by [`crate::Lifecycle`].
    #[serde(default)]
    pub state: FindingState,
    /// Set when `state` is resolved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<Resolution>,
    /// The series it is about; for crash loops the target's `restarts`.
    #[serde(flatten)]
    pub key: SeriesKey,
    /// Processes involved: the engine knows those restarts told it (newest last); the agent
    /// sets the target's live processes.
    pub pids: Vec<u32>,
    /// Who the target's processes are (at most `MAX_LISTED`), set by the agent from its
    /// latest sample; kept as they were when the target is gone. Empty from the engine.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub processes: Vec<ProcessInfo>,
    /// Latest value (median of the last few samples); for crash loops, the restart count.
    pub current: f64,
    pub limit: Option<f64>,
    /// Growth of the floor per hour (leaks), or restarts per hour (crash loops).
    pub rate_per_hour: f64,
    /// Point forecast of the seconds until the resource reaches its limit.
    pub eta_seconds: Option<f64>,
    /// Earlier forecast using the upper confidence bound of the growth rate.
    pub eta_conservative_seconds: Option<f64>,
    /// When the growth regime (or the restart streak) began.
    pub first_seen: f64,
    /// The span of samples the finding rests on.
    pub evidence_window: (f64, f64),
    /// `1 - p_value`.
    pub confidence: f64,
    /// One-sided p-value of the trend test (autocorrelation-corrected Mann-Kendall); 0 for
    /// findings that are plain observations (saturation, crash loop).
    pub p_value: f64,
    /// Restarts of the target inside the evidence window (growth seen through them).
    pub restarts: usize,
    /// One line for people, e.g.
    /// `threads Analytics-# +29,412 in 6h (4,902/h), limit 32,768 in ~38m`; for a root
    /// with consequences it ends with `; also: threads +29,412, memory rss +3.8 MiB`.
    pub summary: String,
    /// Findings of the same target that are this one's mechanism seen through another
    /// series (the total containing it, the memory its objects hold), folded in here
    /// instead of being reported on their own (docs/detection.md, "Grouping"). Empty for
    /// most findings.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub consequences: Vec<Consequence>,
    /// What the evidence captured for it found (issue 18): the class, allocation site or
    /// thread creator behind the growth, e.g. `memory leak: java.util.HashMap$Node
    /// +31 MiB/min (74% of heap growth)`. `None` from the engine: the agent sets it once
    /// the finding's incident has been captured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<String>,
}

/// A finding folded into its root cause: what the series it is about showed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Consequence {
    /// What the series itself showed (a leak, or saturation).
    pub kind: FindingKind,
    #[serde(flatten)]
    pub key: SeriesKey,
    /// Latest value of the series.
    pub current: f64,
    pub limit: Option<f64>,
    /// Growth of its floor per hour (0 for a saturation without a trend).
    pub rate_per_hour: f64,
    /// The span of samples its own finding rested on.
    pub evidence_window: (f64, f64),
}

impl Consequence {
    /// The growth over its evidence window: `rate_per_hour` times the window.
    pub fn growth(&self) -> f64 {
        self.rate_per_hour * (self.evidence_window.1 - self.evidence_window.0).max(0.0) / 3600.0
    }

    /// How it reads after "also:": `fds socket +725`, `memory rss +3.8 MiB`, or
    /// `fds at 80% of limit` for a saturation; counts as integers, memory in bytes.
    pub fn brief(&self) -> String {
        let label = crate::label(&self.key);
        match (self.kind, self.limit) {
            (FindingKind::Saturation, Some(limit)) if limit > 0.0 => {
                format!("{label} at {:.0}% of limit", 100.0 * self.current / limit)
            }
            _ => format!(
                "{label} +{}",
                crate::format::quantity_of(&self.key, self.growth())
            ),
        }
    }
}
