//! `/api/v1/alerts` (the alert engine's alerts and their deliveries) and
//! `/api/v1/silences`.

use crate::FindingRecord;
use leakwatch_detect::FindingKind;
use leakwatch_model::SeriesKey;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `GET /api/v1/alerts`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Alerts {
    /// False when the agent has no `[alerts]` channels; the lists are then empty.
    pub enabled: bool,
    /// Pending, firing, and resolved within the last hour.
    pub alerts: Vec<AlertRecord>,
    /// The latest notification per alert and channel.
    pub deliveries: Vec<Delivery>,
    /// Per-channel counters, by channel name.
    pub channels: Vec<ChannelCounters>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    Pending,
    Firing,
    Resolved,
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
            AlertState::Resolved => "resolved",
        }
    }
}

/// One alert of the engine: one per (target, resource, attribution).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertRecord {
    /// Stable hex id of the key; deliveries name their alert by it.
    pub fingerprint: String,
    /// The key's text fields `target`, `resource`, `attribution`.
    #[serde(flatten)]
    pub key: SeriesKey,
    pub kind: FindingKind,
    pub severity: Severity,
    pub state: AlertState,
    #[serde(default)]
    pub pending_since_ms: u64,
    #[serde(default)]
    pub firing_since_ms: Option<u64>,
    #[serde(default)]
    pub resolved_ms: Option<u64>,
    #[serde(default)]
    pub last_seen_ms: u64,
    /// The latest finding behind the alert.
    pub finding: FindingRecord,
    /// The reason of the silence covering it, if one does.
    #[serde(default)]
    pub silenced: Option<String>,
    /// Channels told that it fires, and when.
    #[serde(default)]
    pub channels: BTreeMap<String, ChannelMark>,
}

impl AlertRecord {
    /// Since when it fires, or else since when it is pending.
    pub fn since_ms(&self) -> u64 {
        self.firing_since_ms.unwrap_or(self.pending_since_ms)
    }
}

/// What a channel was last told about an alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelMark {
    pub last_sent_ms: u64,
    pub severity: Severity,
}

/// Where one notification stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Waiting for its first attempt or a retry.
    Pending,
    Delivered,
    /// Rejected for good, or its channel is no longer configured.
    Failed,
    /// Not delivered within `delivery.expire_after`.
    Expired,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::Expired => "expired",
        }
    }
}

/// One notification to one channel (a row of the agent's outbox).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    pub id: String,
    /// The alert's ([`AlertRecord::fingerprint`]).
    pub fingerprint: String,
    pub channel: String,
    /// `firing`, `renotify`, `escalated`, `resolved`, `channel_failing`, ... (docs/alerts.md).
    pub reason: String,
    pub status: DeliveryStatus,
    #[serde(default)]
    pub attempts: u32,
    #[serde(default)]
    pub created_ms: u64,
    #[serde(default)]
    pub next_attempt_ms: u64,
    #[serde(default)]
    pub expires_ms: u64,
    #[serde(default)]
    pub delivered_ms: Option<u64>,
    /// The last error, or on success the receiver's reply (e.g. `HTTP 200`).
    #[serde(default)]
    pub detail: Option<String>,
}

/// Per-channel totals since the outbox was created, and current health.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ChannelCounters {
    pub channel: String,
    pub sent: u64,
    pub failed: u64,
    pub retried: u64,
    pub expired: u64,
    pub consecutive_failures: u64,
    pub failing_since_ms: Option<u64>,
    /// A "channel failing" alert is out for this channel.
    pub failing_alerted: bool,
}

/// `GET /api/v1/silences`: the active silences.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Silences {
    /// False when the agent has no `[alerts]` channels.
    pub enabled: bool,
    pub silences: Vec<Silence>,
}

/// A silence: no notifications for the target's alerts (of one resource, or all) until
/// `until`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Silence {
    pub target: String,
    /// `null`: every resource of the target.
    pub resource: Option<String>,
    pub until_ms: u64,
    /// `until_ms` as RFC 3339 (UTC, milliseconds).
    pub until: String,
    pub reason: String,
}

/// `POST /api/v1/silences`: `{"target", "resource"?, "for": "2h", "reason"?}`. Unknown fields
/// are refused (a misspelt `"resource"` must not silence the whole target).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSilence {
    pub target: String,
    #[serde(default)]
    pub resource: Option<String>,
    /// A duration from now, e.g. `2h` (at most 365 days).
    #[serde(rename = "for")]
    pub duration: String,
    #[serde(default)]
    pub reason: String,
}

/// The answer to [`NewSilence`] (201 Created).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SilenceCreated {
    pub silence: Silence,
}

/// `DELETE /api/v1/silences?target=T[&resource=R]` (as the query), and which silences the
/// answer says were ended.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SilenceMatch {
    pub target: String,
    /// Only the silences of this resource; absent: every one of the target's.
    #[serde(default)]
    pub resource: Option<String>,
}

/// The answer to `DELETE /api/v1/silences`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SilencesExpired {
    pub expired: SilenceMatch,
}
