//! Alerting for leakwatch: turns findings into alerts and delivers them so that delivery can
//! be proven, not assumed.
//!
//! Three parts, each usable on its own:
//!
//! - [`AlertEngine`] (pure, time is an input): findings -> alerts that go pending -> firing
//!   -> resolved, deduplicated per (target, resource, attribution), with severities,
//!   routing to channels, re-notification and silences. `update` returns the
//!   [`Notification`]s to send; it does no I/O.
//! - [`Outbox`] (SQLite, its own file, WAL): every notification is written before any
//!   attempt to send it, so a crash or `kill -9` loses nothing. [`Dispatcher`] drains it with
//!   exponential backoff and jitter until each notification is delivered, rejected (4xx) or
//!   expired, counts every outcome, and raises a "channel failing" alert on the other
//!   channels when one keeps failing.
//! - [`Channel`]s: generic webhook, Slack-compatible webhook, Prometheus Alertmanager, exec,
//!   and SMTP email; [`send_test`] sends a clearly marked test alert through one of them.
//!   [`Heartbeat`] pings a dead-man's switch and keeps an always-firing watchdog alert in
//!   Alertmanager.
//!
//! Delivery is at least once: a notification is marked delivered only after the receiver
//! acknowledged it, so a crash between the acknowledgement and the mark re-sends it. Every
//! payload carries a stable `id` (and HTTP requests an `Idempotency-Key` header) so a
//! receiver can drop the duplicate; Alertmanager deduplicates by labels by itself.
//!
//! The wire formats are documented in `docs/alerts.md`.

#![forbid(unsafe_code)]

mod channels;
mod config;
mod dispatch;
mod heartbeat;
mod lifecycle;
mod outbox;
mod payload;
mod time;

pub use channels::{send_test, Channel, DeliveryReport, SendError};
pub use config::{
    AlertConfig, AlertmanagerConfig, ChannelConfig, ConfigError, DeliveryConfig, Dur, EmailConfig,
    ExecConfig, HeartbeatConfig, Routes, SlackConfig, SmtpSecurity, Timestamp, WebhookConfig,
};
pub use dispatch::{DispatchStats, Dispatcher};
pub use heartbeat::{Heartbeat, HeartbeatOutcome};
pub use lifecycle::{
    severity_of, Alert, AlertEngine, AlertPayload, AlertState, EngineState, Notification, Reason,
    Severity, Silence, RECORD_VERSION,
};
pub use outbox::{ChannelCounters, DeliveryRow, DeliveryStatus, Outbox, OutboxError, Queued};
pub use payload::webhook_body;
pub use time::{now_ms, rfc3339_ms};
