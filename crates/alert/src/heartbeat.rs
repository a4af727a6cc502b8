//! Proof of life for the alerting itself: a dead-man's-switch ping (healthchecks.io style)
//! and an always-firing `LeakwatchWatchdog` alert in Alertmanager. If leakwatch, its host or
//! its network dies, these stop, and something outside pages.

use reqwest::blocking::Client;

use crate::channels::{Channel, DeliveryReport, SendError};
use crate::config::{AlertConfig, ConfigError, HeartbeatConfig};
use crate::lifecycle::{fingerprint, AlertPayload, AlertState, Notification, Reason, Severity};

/// What one due tick sent.
#[derive(Debug, Clone, PartialEq)]
pub struct HeartbeatOutcome {
    /// The ping (to `url`, or `url/fail` when unhealthy), if a URL is configured.
    pub ping: Option<Result<DeliveryReport, SendError>>,
    pub watchdog: Option<Result<DeliveryReport, SendError>>,
}

/// Call [`Heartbeat::tick`] often (e.g. every second); it acts every `every`.
pub struct Heartbeat {
    config: HeartbeatConfig,
    client: Client,
    watchdog: Option<Channel>,
    last_ms: Option<u64>,
    started_ms: u64,
}

impl Heartbeat {
    /// `None` when the configuration has no heartbeat.
    pub fn new(config: &AlertConfig, now_ms: u64) -> Result<Option<Heartbeat>, ConfigError> {
        let Some(hb) = &config.heartbeat else {
            return Ok(None);
        };
        let watchdog = match &hb.watchdog_channel {
            Some(name) => {
                let channel_config = config.channels.get(name).ok_or_else(|| ConfigError {
                    problems: vec![format!(
                        "heartbeat.watchdog_channel: {name:?} is not defined"
                    )],
                })?;
                Some(Channel::from_config(name, channel_config)?)
            }
            None => None,
        };
        let client = crate::channels::http_client(hb.timeout.0, None).map_err(|e| ConfigError {
            problems: vec![format!("heartbeat: {e}")],
        })?;
        Ok(Some(Heartbeat {
            config: hb.clone(),
            client,
            watchdog,
            last_ms: None,
            started_ms: now_ms,
        }))
    }

    /// When due, pings `url` (or `url/fail` if `healthy` is false) and re-sends the watchdog
    /// alert. Returns `None` when nothing was due.
    pub fn tick(&mut self, now_ms: u64, healthy: bool) -> Option<HeartbeatOutcome> {
        if let Some(last) = self.last_ms {
            if now_ms.saturating_sub(last) < self.config.every.as_ms() {
                return None;
            }
        }
        self.last_ms = Some(now_ms);
        let ping = self.config.url.as_ref().map(|url| {
            let url = if healthy {
                url.clone()
            } else {
                format!("{}/fail", url.trim_end_matches('/'))
            };
            let started = std::time::Instant::now();
            match self.client.get(&url).send() {
                Ok(r) if r.status().is_success() => Ok(DeliveryReport {
                    channel: "heartbeat".into(),
                    kind: "heartbeat".into(),
                    detail: format!("HTTP {}", r.status().as_u16()),
                    http_status: Some(r.status().as_u16()),
                    elapsed_ms: started.elapsed().as_millis() as u64,
                }),
                Ok(r) => Err(SendError {
                    retryable: true,
                    message: format!("heartbeat {url}: HTTP {}", r.status().as_u16()),
                    http_status: Some(r.status().as_u16()),
                }),
                Err(e) => Err(SendError {
                    retryable: true,
                    message: format!("heartbeat {url}: {e}"),
                    http_status: None,
                }),
            }
        });
        let started_ms = self.started_ms;
        let watchdog = self.watchdog.as_ref().map(|channel| {
            let alert = AlertPayload {
                fingerprint: fingerprint(&["leakwatch", "watchdog", ""]),
                alertname: "LeakwatchWatchdog".into(),
                kind: "watchdog".into(),
                severity: Severity::Warning,
                state: AlertState::Firing,
                target: "leakwatch".into(),
                resource: "watchdog".into(),
                attribution: String::new(),
                starts_ms: started_ms,
                ends_ms: None,
                summary: "always firing while leakwatch alerting is alive; page when it stops"
                    .into(),
                finding: None,
                incident: None,
            };
            channel.send(&Notification::new(
                channel.name(),
                Reason::Watchdog,
                now_ms,
                alert,
            ))
        });
        if let Some(Err(e)) = &ping {
            tracing::warn!(error = %e, "heartbeat ping failed");
        }
        if let Some(Err(e)) = &watchdog {
            tracing::warn!(error = %e, "watchdog alert failed");
        }
        Some(HeartbeatOutcome { ping, watchdog })
    }
}
