//! The sender: drains the outbox through the channels, with exponential backoff and
//! jitter, and watches channel health.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tracing::{error, info, warn};

use crate::channels::Channel;
use crate::config::{AlertConfig, ConfigError, DeliveryConfig};
use crate::lifecycle::{fingerprint, AlertPayload, AlertState, Notification, Reason, Severity};
use crate::outbox::{Outbox, OutboxError, Queued};
use crate::time::now_ms;

/// What one [`Dispatcher::run_once`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DispatchStats {
    pub delivered: usize,
    /// Failed attempts scheduled again.
    pub retried: usize,
    /// Rejected for good.
    pub failed: usize,
    pub expired: usize,
    /// "Channel failing" / "channel recovered" notifications written.
    pub health_alerts: usize,
}

/// Owns the outbox and the channels. Run it on its own thread ([`Dispatcher::run`]) or step
/// it ([`Dispatcher::run_once`]).
pub struct Dispatcher {
    outbox: Outbox,
    channels: BTreeMap<String, Channel>,
    delivery: DeliveryConfig,
    /// Jitter only has to spread retries, not be unpredictable.
    jitter: fastrand::Rng,
    /// Called before each delivery (the agent's stage heartbeat).
    progress: Option<Box<dyn FnMut() + Send>>,
}

impl Dispatcher {
    /// Builds every configured channel. The configuration should have passed `validate`.
    pub fn new(outbox: Outbox, config: &AlertConfig) -> Result<Dispatcher, ConfigError> {
        let mut channels = BTreeMap::new();
        let mut problems = Vec::new();
        for (name, channel) in &config.channels {
            match Channel::from_config(name, channel) {
                Ok(c) => {
                    channels.insert(name.clone(), c);
                }
                Err(e) => problems.extend(e.problems),
            }
        }
        if !problems.is_empty() {
            return Err(ConfigError { problems });
        }
        Ok(Dispatcher {
            outbox,
            channels,
            delivery: config.delivery.clone(),
            jitter: fastrand::Rng::with_seed(now_ms()),
            progress: None,
        })
    }

    /// Calls `progress` before each delivery attempt of [`Dispatcher::run_once`]: a round
    /// of many deliveries is long, but each step of it is bounded by its channel's timeout.
    pub fn on_progress(&mut self, progress: impl FnMut() + Send + 'static) {
        self.progress = Some(Box::new(progress));
    }

    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    pub fn channel(&self, name: &str) -> Option<&Channel> {
        self.channels.get(name)
    }

    /// Writes notifications to the outbox (durably) before anything is sent.
    pub fn enqueue(
        &mut self,
        notifications: &[Notification],
        now_ms: u64,
    ) -> Result<usize, OutboxError> {
        self.outbox
            .enqueue(notifications, now_ms, self.delivery.expire_after.as_ms())
    }

    /// The delay before retry number `attempts` (1-based): `backoff_initial * 2^(attempts-1)`
    /// capped at `backoff_max`, then scaled by a random factor in [0.5, 1).
    fn backoff_ms(&mut self, attempts: u32) -> u64 {
        let initial = self.delivery.backoff_initial.as_ms().max(1);
        let step = initial
            .saturating_mul(1u64 << attempts.saturating_sub(1).min(40))
            .min(self.delivery.backoff_max.as_ms().max(initial));
        step / 2 + self.jitter.u64(0..=step / 2)
    }

    /// Expires overdue notifications, then tries every due one once. Time for scheduling is
    /// `now_ms`; the sends themselves happen now.
    pub fn run_once(&mut self, now_ms: u64) -> Result<DispatchStats, OutboxError> {
        let mut stats = DispatchStats::default();
        for row in self.outbox.expire(now_ms)? {
            stats.expired += 1;
            error!(
                id = %row.id,
                channel = %row.channel,
                attempts = row.attempts,
                last_error = row.detail.as_deref().unwrap_or(""),
                "alert notification expired undelivered"
            );
        }
        for queued in self.outbox.due(now_ms, 1000)? {
            if let Some(progress) = self.progress.as_mut() {
                progress();
            }
            let Some(channel) = self.channels.get(&queued.notification.channel) else {
                let message = format!(
                    "channel {:?} is no longer configured",
                    queued.notification.channel
                );
                error!(id = %queued.notification.id, %message, "alert notification cannot be delivered");
                self.outbox
                    .record_failure(&queued, now_ms, &message, None)?;
                stats.failed += 1;
                continue;
            };
            match channel.send(&queued.notification) {
                Ok(report) => {
                    info!(
                        id = %queued.notification.id,
                        channel = %report.channel,
                        detail = %report.detail,
                        elapsed_ms = report.elapsed_ms,
                        "alert notification delivered"
                    );
                    stats.delivered += 1;
                    let was_failing =
                        self.outbox
                            .record_delivered(&queued, now_ms, &report.detail)?;
                    if was_failing {
                        stats.health_alerts +=
                            self.raise_channel_health(&queued.notification.channel, false, now_ms)?;
                    }
                }
                Err(e) => {
                    let retry_at = if e.retryable {
                        Some(now_ms + self.backoff_ms(queued.attempts + 1))
                    } else {
                        None
                    };
                    let health = self.record_failure(&queued, now_ms, &e.message, retry_at)?;
                    if retry_at.is_some() {
                        stats.retried += 1;
                        warn!(id = %queued.notification.id, channel = %health.channel, error = %e.message,
                              attempts = queued.attempts + 1, "alert notification failed; will retry");
                    } else {
                        stats.failed += 1;
                        error!(id = %queued.notification.id, channel = %health.channel, error = %e.message,
                               "alert notification rejected; not retrying");
                    }
                    let failing = health.consecutive_failures
                        >= u64::from(self.delivery.failing_after_failures)
                        && now_ms.saturating_sub(health.failing_since_ms.unwrap_or(now_ms))
                            >= self.delivery.failing_after.as_ms();
                    if failing && !health.failing_alerted {
                        self.outbox.set_failing_alerted(&health.channel)?;
                        stats.health_alerts +=
                            self.raise_channel_health(&health.channel, true, now_ms)?;
                    }
                }
            }
        }
        let keep = self.delivery.keep.as_ms();
        if now_ms > keep {
            self.outbox.prune(now_ms - keep)?;
        }
        Ok(stats)
    }

    fn record_failure(
        &mut self,
        queued: &Queued,
        now_ms: u64,
        message: &str,
        retry_at: Option<u64>,
    ) -> Result<crate::outbox::ChannelCounters, OutboxError> {
        self.outbox
            .record_failure(queued, now_ms, message, retry_at)
    }

    /// Tells every other channel that `channel` is failing (or works again).
    fn raise_channel_health(
        &mut self,
        channel: &str,
        failing: bool,
        now_ms: u64,
    ) -> Result<usize, OutboxError> {
        let others: Vec<String> = self
            .channels
            .keys()
            .filter(|c| *c != channel)
            .cloned()
            .collect();
        if others.is_empty() {
            error!(
                channel,
                "the only alert channel is failing; nobody can be told"
            );
            return Ok(0);
        }
        let (reason, state, summary) = if failing {
            let c = self
                .outbox
                .counters()?
                .into_iter()
                .find(|c| c.channel == channel)
                .unwrap_or_default();
            (
                Reason::ChannelFailing,
                AlertState::Firing,
                format!(
                    "alert channel {channel:?} is failing: {} consecutive failed deliveries; alerts routed only to it are not arriving",
                    c.consecutive_failures
                ),
            )
        } else {
            (
                Reason::ChannelRecovered,
                AlertState::Resolved,
                format!("alert channel {channel:?} delivers again"),
            )
        };
        let alert = AlertPayload {
            fingerprint: fingerprint(&["leakwatch", "channel", channel]),
            alertname: "LeakwatchChannelFailing".into(),
            kind: "channel_failing".into(),
            severity: Severity::Critical,
            state,
            target: "leakwatch".into(),
            resource: "channel".into(),
            attribution: channel.to_string(),
            starts_ms: now_ms,
            ends_ms: (!failing).then_some(now_ms),
            summary,
            finding: None,
            incident: None,
        };
        let notifications: Vec<Notification> = others
            .iter()
            .map(|other| Notification::new(other, reason, now_ms, alert.clone()))
            .collect();
        if failing {
            error!(channel, "alert channel failing; telling the other channels");
        }
        self.enqueue(&notifications, now_ms)
    }

    /// Loops until `stop` is set: sends what is due, then sleeps until the next due time
    /// (at most `poll`). New notifications enqueued by other `Outbox` handles on the same
    /// file are picked up within `poll`.
    pub fn run(&mut self, stop: &AtomicBool, poll: Duration) {
        while !stop.load(Ordering::Relaxed) {
            let now = now_ms();
            if let Err(e) = self.run_once(now) {
                error!(error = %e, "alert dispatcher pass failed");
            }
            let next = self.outbox.next_due_ms().ok().flatten();
            let wait = match next {
                Some(at) => Duration::from_millis(at.saturating_sub(now_ms())).min(poll),
                None => poll,
            };
            std::thread::sleep(wait.max(Duration::from_millis(10)));
        }
    }
}
