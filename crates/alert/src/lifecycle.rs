//! The alert lifecycle: findings in, notifications out, time as an input, no I/O.
//!
//! An alert is identified by (target, resource, attribution); every finding with that key
//! (a leak and a saturation of the same resource, say) feeds one alert, at the highest
//! severity among them.

use std::collections::{BTreeMap, BTreeSet};

use leakwatch_api::FindingRecord;
use leakwatch_detect::{Finding, FindingKind, FindingState};
use serde::{Deserialize, Serialize};

use crate::config::{AlertConfig, ChannelConfig};

/// Resolved alerts are kept this long for display, then forgotten.
const KEEP_RESOLVED_MS: u64 = 3600 * 1000;

/// Severities and states are the API's (the alert state files and the wire agree).
pub use leakwatch_api::{AlertState, Severity};

/// Why a notification was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// First notification of a firing alert on this channel.
    Firing,
    /// Still firing, `renotify` (or the Alertmanager `resend`) after the last one.
    Renotify,
    /// Still firing, and its severity went up since this channel last heard.
    Escalated,
    Resolved,
    /// A delivery channel keeps failing (raised by the dispatcher on the other channels).
    ChannelFailing,
    ChannelRecovered,
    /// `send_test`: not a real alert.
    Test,
    /// The always-firing heartbeat alert.
    Watchdog,
    /// The agent ran (or declined to run) a target's restart command.
    Mitigation,
    /// Still firing, and the evidence captured for it now names what grows (the class,
    /// allocation site or thread creator): sent once to each channel told it fires.
    Evidence,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Firing => "firing",
            Reason::Renotify => "renotify",
            Reason::Escalated => "escalated",
            Reason::Resolved => "resolved",
            Reason::ChannelFailing => "channel_failing",
            Reason::ChannelRecovered => "channel_recovered",
            Reason::Test => "test",
            Reason::Watchdog => "watchdog",
            Reason::Mitigation => "mitigation",
            Reason::Evidence => "evidence",
        }
    }
}

pub use crate::config::Silence;

/// What every channel renders: one alert as of the moment the notification was made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertPayload {
    /// Stable hex id of (target, resource, attribution).
    pub fingerprint: String,
    /// `LeakwatchLeak`, `LeakwatchSaturation`, `LeakwatchCrashLoop`, `LeakwatchChannelFailing`,
    /// `LeakwatchWatchdog` or `LeakwatchTest`.
    pub alertname: String,
    pub kind: String,
    pub severity: Severity,
    pub state: AlertState,
    pub target: String,
    pub resource: String,
    pub attribution: String,
    pub starts_ms: u64,
    pub ends_ms: Option<u64>,
    pub summary: String,
    pub finding: Option<FindingRecord>,
    /// The incident folder holding the evidence captured for it (`leakwatch incident ID`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident: Option<String>,
}

/// The version of the records this crate persists ([`Notification`] in the outbox rows,
/// [`EngineState`]); a record without one is version 1. Bumped on a change an older reader
/// would misread; a new field with a default does not need it.
pub const RECORD_VERSION: u32 = 1;

fn version_1() -> u32 {
    1
}

/// One message for one channel. `id` is unique and stable: the outbox stores it once and
/// receivers can deduplicate on it. Persisted as JSON in the outbox (versioned).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    #[serde(default = "version_1")]
    pub version: u32,
    pub id: String,
    pub channel: String,
    pub reason: Reason,
    pub created_ms: u64,
    pub alert: AlertPayload,
}

impl Notification {
    pub fn new(channel: &str, reason: Reason, created_ms: u64, alert: AlertPayload) -> Self {
        Notification {
            version: RECORD_VERSION,
            id: format!(
                "{}-{}-{}-{}",
                alert.fingerprint,
                reason.as_str(),
                created_ms,
                channel
            ),
            channel: channel.to_string(),
            reason,
            created_ms,
            alert,
        }
    }

    pub fn is_test(&self) -> bool {
        self.reason == Reason::Test
    }
}

/// What a channel was last told about an alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelMark {
    pub last_sent_ms: u64,
    pub severity: Severity,
    /// Whether it was told what the evidence found growing (absent in older state, and
    /// not written while false: no).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub evidence: bool,
}

/// One alert and where it stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub fingerprint: String,
    pub target: String,
    pub resource: String,
    pub attribution: String,
    pub kind: FindingKind,
    pub severity: Severity,
    pub state: AlertState,
    pub pending_since_ms: u64,
    pub firing_since_ms: Option<u64>,
    pub resolved_ms: Option<u64>,
    pub last_seen_ms: u64,
    /// The latest finding behind the alert (the most severe, when several share the key).
    pub finding: FindingRecord,
    /// The reason of the silence covering it, as of the last update.
    pub silenced: Option<String>,
    /// Channels told that it fires, and when.
    pub channels: BTreeMap<String, ChannelMark>,
}

impl Alert {
    pub fn payload(&self) -> AlertPayload {
        AlertPayload {
            fingerprint: self.fingerprint.clone(),
            alertname: alertname(self.kind).to_string(),
            kind: self.kind.to_string(),
            severity: self.severity,
            state: self.state,
            target: self.target.clone(),
            resource: self.resource.clone(),
            attribution: self.attribution.clone(),
            starts_ms: self.firing_since_ms.unwrap_or(self.pending_since_ms),
            ends_ms: self.resolved_ms,
            // What the evidence found growing is one more clause of the summary.
            summary: match &self.finding.evidence {
                Some(line) => format!("{}; {line}", self.finding.summary),
                None => self.finding.summary.clone(),
            },
            finding: Some(self.finding.clone()),
            incident: None,
        }
    }
}

fn alertname(kind: FindingKind) -> &'static str {
    match kind {
        FindingKind::Leak => "LeakwatchLeak",
        FindingKind::Saturation => "LeakwatchSaturation",
        FindingKind::CrashLoop => "LeakwatchCrashLoop",
    }
}

/// FNV-1a over the key, as 16 hex digits: stable across versions and processes.
pub(crate) fn fingerprint(parts: &[&str]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in part.bytes().chain([0u8]) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    format!("{hash:016x}")
}

/// Warning when a leak (or saturation, or crash loop) is confirmed; critical when a leak's
/// conservative forecast reaches the limit within `horizon_ms`, or a resource is at or above
/// `saturation_critical` of its limit.
pub fn severity_of(finding: &Finding, horizon_ms: u64, saturation_critical: f64) -> Severity {
    let near_limit = match finding.limit {
        Some(limit) if limit > 0.0 => finding.current / limit >= saturation_critical,
        _ => false,
    };
    let soon = finding
        .eta_conservative_seconds
        .is_some_and(|eta| eta * 1000.0 <= horizon_ms as f64);
    match finding.kind {
        FindingKind::Leak if soon || near_limit => Severity::Critical,
        FindingKind::Saturation if near_limit => Severity::Critical,
        _ => Severity::Warning,
    }
}

/// The engine's memory, so alerts survive a restart without paging again. Persisted as JSON
/// in the outbox file (versioned, see [`RECORD_VERSION`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EngineState {
    #[serde(default = "version_1")]
    pub version: u32,
    pub alerts: Vec<Alert>,
    pub silences: Vec<Silence>,
}

impl Default for EngineState {
    fn default() -> Self {
        EngineState {
            version: RECORD_VERSION,
            alerts: Vec::new(),
            silences: Vec::new(),
        }
    }
}

/// Findings -> alerts -> notifications. See the module documentation.
#[derive(Debug, Clone)]
pub struct AlertEngine {
    pending_for_ms: u64,
    resolve_after_ms: u64,
    renotify_ms: u64,
    horizon_ms: u64,
    saturation_critical: f64,
    warning_channels: Vec<String>,
    critical_channels: Vec<String>,
    /// Channels with their own re-notify interval (Alertmanager's `resend`).
    renotify_override_ms: BTreeMap<String, u64>,
    alerts: BTreeMap<String, Alert>,
    silences: Vec<Silence>,
}

impl AlertEngine {
    /// The configuration should have passed [`AlertConfig::validate`].
    pub fn new(config: &AlertConfig) -> Self {
        let renotify_override_ms = config
            .channels
            .iter()
            .filter_map(|(name, c)| match c {
                ChannelConfig::Alertmanager(am) => Some((name.clone(), am.resend.as_ms())),
                _ => None,
            })
            .collect();
        AlertEngine {
            pending_for_ms: config.pending_for.as_ms(),
            resolve_after_ms: config.resolve_after.as_ms(),
            renotify_ms: config.renotify.as_ms().max(1),
            horizon_ms: config.critical_horizon.as_ms(),
            saturation_critical: config.saturation_critical,
            warning_channels: config.routes.warning.clone(),
            critical_channels: config.routes.critical.clone(),
            renotify_override_ms,
            alerts: BTreeMap::new(),
            silences: config.silences.clone(),
        }
    }

    /// Every alert the engine knows (pending, firing, and resolved within the last hour).
    pub fn alerts(&self) -> impl Iterator<Item = &Alert> {
        self.alerts.values()
    }

    pub fn silences(&self) -> &[Silence] {
        &self.silences
    }

    /// Adds a silence; it takes effect at the next `update`. A silence for the same target
    /// and resource replaces the earlier one (so a shorter `--for` shortens it).
    pub fn add_silence(&mut self, silence: Silence) {
        self.silences
            .retain(|s| !(s.target == silence.target && s.resource == silence.resource));
        self.silences.push(silence);
    }

    /// Ends the silences of `target` (only those for `resource`, when given; every one of
    /// the target's otherwise). Returns how many ended.
    pub fn remove_silences(&mut self, target: &str, resource: Option<&str>) -> usize {
        let before = self.silences.len();
        self.silences.retain(|s| {
            !(s.target == target && resource.is_none_or(|r| s.resource.as_deref() == Some(r)))
        });
        before - self.silences.len()
    }

    /// Drops the silences that ended by `now_ms` (also done by each `update`). Returns how
    /// many.
    pub fn expire_silences(&mut self, now_ms: u64) -> usize {
        let before = self.silences.len();
        self.silences.retain(|s| s.until.0 > now_ms);
        before - self.silences.len()
    }

    pub fn state(&self) -> EngineState {
        EngineState {
            version: RECORD_VERSION,
            alerts: self.alerts.values().cloned().collect(),
            silences: self.silences.clone(),
        }
    }

    /// Replaces the engine's alerts and adds the saved silences that are not configured.
    pub fn restore(&mut self, state: EngineState) {
        self.alerts = state
            .alerts
            .into_iter()
            .map(|a| (a.fingerprint.clone(), a))
            .collect();
        for silence in state.silences {
            if !self.silences.contains(&silence) {
                self.silences.push(silence);
            }
        }
    }

    fn channels_for(&self, severity: Severity) -> &[String] {
        match severity {
            Severity::Warning => &self.warning_channels,
            Severity::Critical => &self.critical_channels,
        }
    }

    /// One step: `findings` is the detector's complete current list. Returns what to send,
    /// one notification per channel.
    ///
    /// Confirmed findings feed alerts (suspected ones wait: the engine confirms an urgent
    /// trend without waiting for a day); a resolved
    /// finding resolves its firing alert at once, with the resolution as its summary
    /// ("process exited at ..."); an alert whose finding is simply absent resolves after
    /// `resolve_after`.
    pub fn update(&mut self, findings: &[Finding], now_ms: u64) -> Vec<Notification> {
        self.silences.retain(|s| s.until.0 > now_ms);

        // The most severe finding per key. Suspected findings are not alerted (the engine
        // confirms a trend at once when its forecast is urgent); resolved ones end their
        // alert at once, with the reason in its summary.
        let mut current: BTreeMap<String, (Severity, &Finding)> = BTreeMap::new();
        let mut ended: BTreeMap<String, &Finding> = BTreeMap::new();
        for finding in findings {
            let severity = severity_of(finding, self.horizon_ms, self.saturation_critical);
            // The text encodings keep fingerprints stable across versions.
            let key = fingerprint(&[
                &finding.key.target,
                &finding.key.resource_text(),
                &finding.key.attribution_text(),
            ]);
            match finding.state {
                FindingState::Resolved => {
                    ended.insert(key, finding);
                    continue;
                }
                // The engine confirms an urgent trend at once; a suspected one waits.
                FindingState::Suspected => continue,
                _ => {}
            }
            let replace = match current.get(&key) {
                None => true,
                Some((existing, existing_finding)) => {
                    severity > *existing
                        || (severity == *existing
                            && finding.kind == FindingKind::Leak
                            && existing_finding.kind != FindingKind::Leak)
                }
            };
            if replace {
                current.insert(key, (severity, finding));
            }
        }

        let mut notifications = Vec::new();
        for (key, (severity, finding)) in &current {
            let alert = self.alerts.entry(key.clone()).or_insert_with(|| Alert {
                fingerprint: key.clone(),
                target: finding.key.target.clone(),
                resource: finding.key.resource_text(),
                attribution: finding.key.attribution_text(),
                kind: finding.kind,
                severity: *severity,
                state: AlertState::Pending,
                pending_since_ms: now_ms,
                firing_since_ms: None,
                resolved_ms: None,
                last_seen_ms: now_ms,
                finding: FindingRecord::from(*finding),
                silenced: None,
                channels: BTreeMap::new(),
            });
            if alert.state == AlertState::Resolved {
                // Back after resolving: a new episode.
                alert.state = AlertState::Pending;
                alert.pending_since_ms = now_ms;
                alert.firing_since_ms = None;
                alert.resolved_ms = None;
                alert.channels.clear();
                alert.finding.evidence = None;
            }
            alert.kind = finding.kind;
            alert.severity = *severity;
            // The evidence line, once known, stays for the episode.
            let evidence = finding
                .evidence
                .clone()
                .or_else(|| alert.finding.evidence.take());
            alert.finding = FindingRecord::from(*finding);
            alert.finding.evidence = evidence;
            alert.last_seen_ms = now_ms;
            if alert.state == AlertState::Pending
                && now_ms.saturating_sub(alert.pending_since_ms) >= self.pending_for_ms
            {
                alert.state = AlertState::Firing;
                alert.firing_since_ms = Some(now_ms);
            }
        }

        // Absent findings: pending alerts vanish, firing ones resolve after `resolve_after`.
        let mut forget = Vec::new();
        for (key, alert) in self.alerts.iter_mut() {
            if current.contains_key(key) {
                continue;
            }
            match alert.state {
                AlertState::Pending => forget.push(key.clone()),
                AlertState::Firing => {
                    let ended = ended.get(key);
                    if let Some(finding) = ended {
                        alert.finding = FindingRecord::from(*finding);
                    }
                    if ended.is_some()
                        || now_ms.saturating_sub(alert.last_seen_ms) >= self.resolve_after_ms
                    {
                        alert.state = AlertState::Resolved;
                        alert.resolved_ms = Some(now_ms);
                        let payload = alert.payload();
                        // Everyone told it fired hears that it resolved, silenced or not:
                        // Alertmanager would otherwise hold it until endsAt.
                        for channel in std::mem::take(&mut alert.channels).into_keys() {
                            notifications.push(Notification::new(
                                &channel,
                                Reason::Resolved,
                                now_ms,
                                payload.clone(),
                            ));
                        }
                    }
                }
                AlertState::Resolved => {
                    if now_ms.saturating_sub(alert.resolved_ms.unwrap_or(now_ms))
                        >= KEEP_RESOLVED_MS
                    {
                        forget.push(key.clone());
                    }
                }
            }
        }
        for key in forget {
            self.alerts.remove(&key);
        }

        // Firing alerts: first notification, escalation, re-notification.
        let keys: Vec<String> = current.keys().cloned().collect();
        for key in keys {
            let silence = {
                let alert = &self.alerts[&key];
                self.silences
                    .iter()
                    .find(|s| s.matches(&alert.target, &alert.resource, now_ms))
                    .map(|s| s.reason.clone())
            };
            let routed: Vec<String> = self.channels_for(self.alerts[&key].severity).to_vec();
            let alert = self.alerts.get_mut(&key).expect("alert exists");
            alert.silenced = silence.clone();
            if alert.state != AlertState::Firing || silence.is_some() {
                continue;
            }
            let payload = alert.payload();
            let unique: BTreeSet<&String> = routed.iter().collect();
            for channel in unique {
                let interval = self
                    .renotify_override_ms
                    .get(channel)
                    .copied()
                    .unwrap_or(self.renotify_ms);
                let reason = match alert.channels.get(channel) {
                    None => Some(Reason::Firing),
                    Some(mark) if mark.severity < alert.severity => Some(Reason::Escalated),
                    Some(mark) if !mark.evidence && alert.finding.evidence.is_some() => {
                        Some(Reason::Evidence)
                    }
                    Some(mark) if now_ms.saturating_sub(mark.last_sent_ms) >= interval => {
                        Some(Reason::Renotify)
                    }
                    Some(_) => None,
                };
                if let Some(reason) = reason {
                    alert.channels.insert(
                        channel.clone(),
                        ChannelMark {
                            last_sent_ms: now_ms,
                            severity: alert.severity,
                            evidence: alert.finding.evidence.is_some(),
                        },
                    );
                    notifications.push(Notification::new(channel, reason, now_ms, payload.clone()));
                }
            }
        }
        notifications
    }
}
