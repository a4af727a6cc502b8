//! Incidents: the record the agent writes as `incident.json` in each incident folder, and
//! `/api/v1/incidents[/{id}]`, which serve it.

use crate::FindingRecord;
use leakwatch_detect::FindingKind;
use leakwatch_model::SeriesKey;
use serde::{Deserialize, Serialize};

/// `GET /api/v1/incidents`: every incident, newest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Incidents {
    /// The agent's incident folder.
    pub dir: String,
    pub incidents: Vec<IncidentRecord>,
}

/// `GET /api/v1/incidents/{id}`: the incident and its folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentDetail {
    #[serde(flatten)]
    pub incident: IncidentRecord,
    /// The incident's folder on the agent's host.
    #[serde(default)]
    pub dir: String,
}

fn version_1() -> u32 {
    1
}

/// `incident.json`: evidence captured for one incident, as written and served.
///
/// Versioned: [`IncidentRecord::VERSION`] is written; a file without `version` is version 1
/// (written before the field existed, in the same shape). A change that an older reader
/// would misread bumps the version; adding a field with a default does not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentRecord {
    #[serde(default = "version_1")]
    pub version: u32,
    /// `YYYYMMDD-HHMMSS-target-resource` (the agent's `evidence::incident_id`).
    pub id: String,
    pub created_ms: i64,
    /// The opening finding's key as text (`SeriesKey::from_text` reads it; see [`Self::key`]),
    /// kept beside the finding for people reading the file.
    pub target: String,
    pub resource: String,
    pub attribution: String,
    pub kind: FindingKind,
    pub summary: String,
    /// The finding that opened the incident.
    pub finding: FindingRecord,
    /// Every finding of the target that joined the incident (the opening one first): a
    /// leaking thread pool is usually also a memory finding, one incident for both.
    #[serde(default)]
    pub findings: Vec<FindingRecord>,
    #[serde(default)]
    pub pids: Vec<u32>,
    /// `capturing`, then `complete`.
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub capture_ms: u64,
    #[serde(default)]
    pub files: Vec<FileEntry>,
    #[serde(default)]
    pub mitigations: Vec<MitigationRecord>,
    /// The one line of what the capture found growing (the class, allocation site or
    /// thread creator); the finding and its alert carry it too. Absent when the capture
    /// named nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<String>,
}

impl IncidentRecord {
    /// The version this crate writes.
    pub const VERSION: u32 = 1;

    /// The series the incident is about.
    pub fn key(&self) -> SeriesKey {
        SeriesKey::from_text(&self.target, &self.resource, &self.attribution)
    }
}

/// One file of evidence and what happened when it was made.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FileEntry {
    pub name: String,
    pub bytes: u64,
    /// `ok`, or what went wrong (`killed after the 30s timeout`, `output cut at ...`).
    pub note: String,
}

/// A restart command the agent ran (or declined to run) for the incident.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MitigationRecord {
    pub ts_ms: i64,
    pub command: Vec<String>,
    pub ran: bool,
    pub success: bool,
    /// `exit 0 in 1.20s`, or why it did not run.
    pub outcome: String,
}

/// What can be captured on request (`leakwatch incident ID --capture WHAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CaptureKind {
    /// Two snapshots of what grows, `evidence.heap_interval` apart (as at first detection).
    Heap,
    /// A JVM's full heap dump (`GC.heap_dump`), only with headroom to spare.
    HeapDump,
}

impl CaptureKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CaptureKind::Heap => "heap",
            CaptureKind::HeapDump => "heap-dump",
        }
    }
}

/// `POST /api/v1/incidents/{id}/captures`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaptureRequest {
    pub what: CaptureKind,
}

/// The `202 Accepted` answer: the capture is queued, and `file` will appear among the
/// incident's files when it is done (with the outcome in its note).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaptureAccepted {
    pub incident: String,
    pub what: CaptureKind,
    pub file: String,
    /// The target's processes it will look at.
    pub pids: Vec<u32>,
}
