//! `/api/v1/findings` and the finding record that the API, `incident.json` and the alert
//! outbox carry.

use leakwatch_detect::{Consequence, Finding, FindingKind, FindingState, Resolution};
use leakwatch_model::{ProcessInfo, SeriesKey};
use serde::{Deserialize, Serialize};

/// `GET /api/v1/findings`: the current findings, soonest exhaustion first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Findings {
    /// Detection runs since the agent started; 0 means the list is not computed yet.
    pub detect_runs: u64,
    pub findings: Vec<FindingRecord>,
}

/// One finding as it leaves the engine: on the wire, in `incident.json`, in the alert
/// outbox and the alert engine's saved state. The engine's `Finding` is free to change; this
/// record changes only with a version of the records that hold it. The JSON is the one
/// `Finding` has always had: the kind, the key's text fields (`target`, `resource`,
/// `attribution`) and the numbers (docs/detection.md).
///
/// Everything but the kind and the key defaults when absent, so a record from an older
/// writer (or a newer one that dropped a field) still loads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FindingRecord {
    pub kind: FindingKind,
    /// `suspected`, `confirmed` or `resolved` (docs/detection.md, "Lifecycle"); records
    /// written before states existed read as confirmed.
    #[serde(default)]
    pub state: FindingState,
    /// How and when it resolved: `{"cause": "gone"|"stopped", "at": unix seconds,
    /// "last_value": ...}`; absent unless resolved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<Resolution>,
    /// The series it is about; for crash loops the target's `restarts`.
    #[serde(flatten)]
    pub key: SeriesKey,
    /// The target's live processes (the agent's latest sample); for `analyze`, those
    /// restarts told.
    #[serde(default)]
    pub pids: Vec<u32>,
    /// Who they are: pid, start, user, executable, command line, parent, unit, container,
    /// pod (at most 16; `pids` has them all). Absent when not known.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub processes: Vec<ProcessInfo>,
    /// Latest value; for crash loops, the restart count.
    #[serde(default)]
    pub current: f64,
    #[serde(default)]
    pub limit: Option<f64>,
    /// Growth of the floor per hour (leaks), or restarts per hour (crash loops).
    #[serde(default)]
    pub rate_per_hour: f64,
    /// Point forecast of the seconds until the limit.
    #[serde(default)]
    pub eta_seconds: Option<f64>,
    /// Earlier forecast from the upper confidence bound of the rate.
    #[serde(default)]
    pub eta_conservative_seconds: Option<f64>,
    /// Unix seconds when the growth regime (or restart streak) began.
    #[serde(default)]
    pub first_seen: f64,
    /// Unix seconds: the span of samples the finding rests on.
    #[serde(default)]
    pub evidence_window: (f64, f64),
    #[serde(default)]
    pub confidence: f64,
    #[serde(default)]
    pub p_value: f64,
    /// Restarts of the target inside the evidence window.
    #[serde(default)]
    pub restarts: usize,
    /// One line for people; a root's ends with `; also: ...` (its consequences).
    #[serde(default)]
    pub summary: String,
    /// The findings folded into this one (its total, the memory its objects hold:
    /// docs/detection.md, "Grouping"). Written only when there are some, so a finding
    /// without consequences has the JSON it always had; absent reads as none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub consequences: Vec<ConsequenceRecord>,
    /// What the incident's evidence found growing (the class, allocation site or thread
    /// creator), once captured: `memory leak: java.util.HashMap$Node +31 MiB/min (74% of
    /// heap growth)`. Absent until then, and for findings without an incident.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<String>,
}

/// One consequence of a root finding, as records carry it: the series' key (text fields,
/// flat), what it showed and its numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsequenceRecord {
    pub kind: FindingKind,
    #[serde(flatten)]
    pub key: SeriesKey,
    #[serde(default)]
    pub current: f64,
    #[serde(default)]
    pub limit: Option<f64>,
    #[serde(default)]
    pub rate_per_hour: f64,
    #[serde(default)]
    pub evidence_window: (f64, f64),
}

impl From<&Consequence> for ConsequenceRecord {
    fn from(c: &Consequence) -> ConsequenceRecord {
        ConsequenceRecord {
            kind: c.kind,
            key: c.key.clone(),
            current: c.current,
            limit: c.limit,
            rate_per_hour: c.rate_per_hour,
            evidence_window: c.evidence_window,
        }
    }
}

impl From<ConsequenceRecord> for Consequence {
    fn from(r: ConsequenceRecord) -> Consequence {
        Consequence {
            kind: r.kind,
            key: r.key,
            current: r.current,
            limit: r.limit,
            rate_per_hour: r.rate_per_hour,
            evidence_window: r.evidence_window,
        }
    }
}

impl ConsequenceRecord {
    /// How it reads after "also:" (`fds socket +725`, `memory rss +3.8 MiB`).
    pub fn brief(&self) -> String {
        Consequence::from(self.clone()).brief()
    }
}

impl From<&Finding> for FindingRecord {
    fn from(f: &Finding) -> FindingRecord {
        FindingRecord {
            kind: f.kind,
            state: f.state,
            resolution: f.resolution,
            key: f.key.clone(),
            pids: f.pids.clone(),
            processes: f.processes.clone(),
            current: f.current,
            limit: f.limit,
            rate_per_hour: f.rate_per_hour,
            eta_seconds: f.eta_seconds,
            eta_conservative_seconds: f.eta_conservative_seconds,
            first_seen: f.first_seen,
            evidence_window: f.evidence_window,
            confidence: f.confidence,
            p_value: f.p_value,
            restarts: f.restarts,
            summary: f.summary.clone(),
            consequences: f.consequences.iter().map(ConsequenceRecord::from).collect(),
            evidence: f.evidence.clone(),
        }
    }
}

/// Back to the engine's type, for code that takes findings from the engine and from the
/// API alike (the charts of `leakwatch-view`).
impl From<FindingRecord> for Finding {
    fn from(r: FindingRecord) -> Finding {
        Finding {
            kind: r.kind,
            state: r.state,
            resolution: r.resolution,
            key: r.key,
            pids: r.pids,
            processes: r.processes,
            current: r.current,
            limit: r.limit,
            rate_per_hour: r.rate_per_hour,
            eta_seconds: r.eta_seconds,
            eta_conservative_seconds: r.eta_conservative_seconds,
            first_seen: r.first_seen,
            evidence_window: r.evidence_window,
            confidence: r.confidence,
            p_value: r.p_value,
            restarts: r.restarts,
            summary: r.summary,
            consequences: r.consequences.into_iter().map(Consequence::from).collect(),
            evidence: r.evidence,
        }
    }
}

impl FindingRecord {
    /// The forecast used for ranking: the conservative one when there is one.
    pub fn eta(&self) -> Option<f64> {
        self.eta_conservative_seconds.or(self.eta_seconds)
    }
}
