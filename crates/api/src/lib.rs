//! `leakwatch-api`: the agent's HTTP API as types (tokio-console's `console-api` shape).
//! The agent serializes them, the CLI deserializes them, and a renamed field is a compile
//! error on both sides instead of an empty string on one. Every endpoint of docs/agent.md
//! has its request and response types here:
//!
//! | endpoint | request | response |
//! |---|---|---|
//! | `GET /api/v1/agent` | | [`AgentStatus`] |
//! | `GET /api/v1/targets` | | [`Targets`] |
//! | `GET /api/v1/series` | [`SeriesQuery`] | [`SeriesBody`] |
//! | `GET /api/v1/restarts` | [`RestartsQuery`] | [`Restarts`] |
//! | `GET /api/v1/findings` | | [`Findings`] |
//! | `GET /api/v1/alerts` | | [`Alerts`] |
//! | `GET /api/v1/incidents` | | [`Incidents`] |
//! | `GET /api/v1/incidents/{id}` | | [`IncidentDetail`] |
//! | `GET /api/v1/silences` | | [`Silences`] |
//! | `POST /api/v1/silences` | [`NewSilence`] | [`SilenceCreated`] |
//! | `DELETE /api/v1/silences` | [`SilenceMatch`] (query) | [`SilencesExpired`] |
//! | any error (4xx, 5xx) | | [`ErrorBody`] |
//!
//! The JSON is the one earlier versions served, field for field (`tests/wire.rs` holds each
//! endpoint to a captured answer), so an older CLI talks to a newer agent and the other way
//! round. Tolerance is declared here, not left to readers: fields that an older agent may
//! lack are `#[serde(default)]`, unknown fields are ignored (except in [`NewSilence`], which
//! the agent checks strictly).
//!
//! The crate also holds the records that carry a finding to disk: [`FindingRecord`] (the
//! engine's `leakwatch_detect::Finding`, converted at the edge with `From<&Finding>`) and
//! [`IncidentRecord`] (`incident.json`), versioned ([`IncidentRecord::VERSION`]; absent =
//! 1). The alert crate's outbox rows and saved state hold `FindingRecord`s too.
//!
//! No I/O, no HTTP client or server: serde derives over `leakwatch-model`'s vocabulary.

#![forbid(unsafe_code)]

mod alerts;
mod findings;
mod incidents;
mod targets;

pub use alerts::{
    AlertRecord, AlertState, Alerts, ChannelCounters, ChannelMark, Delivery, DeliveryStatus,
    NewSilence, Severity, Silence, SilenceCreated, SilenceMatch, Silences, SilencesExpired,
};
pub use findings::{ConsequenceRecord, FindingRecord, Findings};
pub use incidents::{
    CaptureAccepted, CaptureKind, CaptureRequest, FileEntry, IncidentDetail, IncidentRecord,
    Incidents, MitigationRecord,
};
pub use targets::{
    AgentStatus, Current, Restart, Restarts, RestartsQuery, SeriesBody, SeriesPoints, SeriesQuery,
    StageStatus, Target, Targets,
};

/// Re-exported so users of the API name the same types the API is written in.
pub use leakwatch_detect::FindingKind;
pub use leakwatch_model::{SeriesKey, TargetKind};

use serde::{Deserialize, Serialize};

/// The paths of the API, for the router and its clients.
pub mod paths {
    pub const AGENT: &str = "/api/v1/agent";
    pub const TARGETS: &str = "/api/v1/targets";
    pub const SERIES: &str = "/api/v1/series";
    pub const RESTARTS: &str = "/api/v1/restarts";
    pub const FINDINGS: &str = "/api/v1/findings";
    pub const ALERTS: &str = "/api/v1/alerts";
    pub const INCIDENTS: &str = "/api/v1/incidents";
    /// The axum route of one incident; clients append `/ID` to [`INCIDENTS`].
    pub const INCIDENT: &str = "/api/v1/incidents/{id}";
    /// The axum route of one evidence file (plain text, not JSON).
    pub const INCIDENT_FILE: &str = "/api/v1/incidents/{id}/files/{name}";
    /// The axum route asking for a capture on an open incident (`POST`, a
    /// [`crate::CaptureRequest`]); clients append `/ID/captures` to [`INCIDENTS`].
    pub const INCIDENT_CAPTURES: &str = "/api/v1/incidents/{id}/captures";
    pub const SILENCES: &str = "/api/v1/silences";
}

/// The body of every 4xx and 5xx answer: `{"error": "..."}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ErrorBody {
    pub error: String,
}

impl ErrorBody {
    pub fn new(message: impl Into<String>) -> ErrorBody {
        ErrorBody {
            error: message.into(),
        }
    }
}
