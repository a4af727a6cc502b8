//! The alert stage (`lw-alerts`): owns the alert engine and the durable outbox. It wakes
//! when its inbox brings work (a detection run's findings, a silence change from the API,
//! a mitigation to announce) and at least once a second to deliver due notifications and
//! send heartbeats. The API reads the outbox through its own connection.

use super::Shared;
use leakwatch_alert::{
    AlertConfig, AlertEngine, AlertPayload, Dispatcher, Heartbeat, Notification, Outbox, Reason,
    Silence,
};
use leakwatch_detect::Finding;
use leakwatch_model::SeriesKey;
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Most events waiting for the alert stage; beyond it a sender's `try_send` fails (the API
/// answers 503, a detection run is skipped, an announcement is dropped and logged).
pub const ALERT_INBOX: usize = 128;

/// A change to the silences, asked for through the API.
#[derive(Debug, Clone)]
pub enum SilenceOp {
    Add(Silence),
    Expire {
        target: String,
        resource: Option<String>,
    },
}

/// Work for the alert stage.
pub enum AlertEvent {
    /// A detection run's complete findings, with the open incident of each key.
    Findings {
        findings: Arc<Vec<Finding>>,
        incidents: HashMap<SeriesKey, String>,
    },
    Silence(SilenceOp),
    /// A restart command ran (or was refused): every channel hears of it.
    Announce(Box<AlertPayload>),
}

/// How often due notifications are delivered and heartbeats sent, at the least.
const TICK: Duration = Duration::from_secs(1);

/// Runs until `shared.stop`. Fails only if the outbox cannot be opened.
pub fn run(
    shared: &Shared,
    config: &AlertConfig,
    path: &Path,
    inbox: Receiver<AlertEvent>,
) -> Result<(), String> {
    let outbox = match open_outbox(path) {
        Ok(outbox) => outbox,
        Err(error) => {
            shared.stats.alerting_down.store(true, Ordering::Relaxed);
            return Err(error);
        }
    };
    let mut engine = AlertEngine::new(config);
    // After a restart, firing alerts stay firing instead of paging again.
    if let Ok(Some(state)) = outbox.load_engine_state() {
        engine.restore(state);
    }
    let mut dispatcher = Dispatcher::new(outbox, config).map_err(|e| e.to_string())?;
    let mut heartbeat =
        Heartbeat::new(config, leakwatch_alert::now_ms()).map_err(|e| e.to_string())?;
    let mut findings: Arc<Vec<Finding>> = Arc::default();
    let mut incidents: HashMap<SeriesKey, String> = HashMap::new();
    let mut seen_samples = 0;
    let mut next_tick = Instant::now();
    let mut errors = ErrorLog::default();
    tracing::info!(db = %path.display(), channels = config.channels.len(), "alerting on");
    // A delivery round may hold many deliveries, each bounded by its channel's timeout.
    dispatcher.on_progress(crate::health::beat);
    while !shared.stop.load(Ordering::Relaxed) {
        crate::health::beat();
        // Wait for work until the next tick (in short steps, to notice `stop`).
        let wait = next_tick
            .saturating_duration_since(Instant::now())
            .min(Duration::from_millis(200));
        let mut events = Vec::new();
        match inbox.recv_timeout(wait) {
            Ok(event) => events.push(event),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return Ok(()),
        }
        events.extend(inbox.try_iter());
        let now = leakwatch_alert::now_ms();
        let mut failed = false;
        if !events.is_empty() {
            let mut announcements = Vec::new();
            for event in events {
                match event {
                    AlertEvent::Findings {
                        findings: latest,
                        incidents: open,
                    } => {
                        findings = latest;
                        incidents = open;
                    }
                    AlertEvent::Silence(op) => apply_silence(&mut engine, op),
                    AlertEvent::Announce(payload) => announcements.push(*payload),
                }
            }
            let notifications = step(
                &mut engine,
                &findings,
                &incidents,
                announcements,
                config,
                now,
            );
            shared.silences.publish(engine.silences().to_vec());
            if !notifications.is_empty() {
                if let Err(error) = dispatcher.enqueue(&notifications, now) {
                    failed = true;
                    errors.log(&error, "cannot write alerts to the outbox");
                }
            }
            if let Err(error) = dispatcher.outbox().save_engine_state(&engine.state()) {
                tracing::warn!(error = %error, "cannot save the alert state");
            }
        }
        if Instant::now() < next_tick {
            continue;
        }
        next_tick = Instant::now() + TICK;
        // Ended silences leave the state (in memory, on disk) even with no findings coming.
        if engine.expire_silences(now) > 0 {
            shared.silences.publish(engine.silences().to_vec());
            if let Err(error) = dispatcher.outbox().save_engine_state(&engine.state()) {
                tracing::warn!(error = %error, "cannot save the alert state");
            }
        }
        failed |= !deliver(&mut dispatcher, shared, now, &mut errors);
        shared.stats.alerting_down.store(failed, Ordering::Relaxed);
        if let Some(heartbeat) = heartbeat.as_mut() {
            // Healthy while sampling advances.
            let samples = shared.stats.samples.load(Ordering::Relaxed);
            let healthy = samples != seen_samples;
            seen_samples = samples;
            heartbeat.tick(now, healthy);
        }
    }
    Ok(())
}

fn apply_silence(engine: &mut AlertEngine, op: SilenceOp) {
    match op {
        SilenceOp::Add(silence) => {
            tracing::info!(target = %silence.target, resource = ?silence.resource, reason = %silence.reason, "silence added");
            engine.add_silence(silence);
        }
        SilenceOp::Expire { target, resource } => {
            let n = engine.remove_silences(&target, resource.as_deref());
            tracing::info!(target = %target, resource = ?resource, removed = n, "silence expired");
        }
    }
}

/// One engine step over the current findings: the notifications to write, each naming the
/// incident of its key, plus one per channel for every announcement.
fn step(
    engine: &mut AlertEngine,
    findings: &[Finding],
    incidents: &HashMap<SeriesKey, String>,
    announcements: Vec<AlertPayload>,
    config: &AlertConfig,
    now: u64,
) -> Vec<Notification> {
    let mut notifications = engine.update(findings, now);
    for n in &mut notifications {
        let a = &mut n.alert;
        if a.incident.is_none() {
            let key = SeriesKey::from_text(&a.target, &a.resource, &a.attribution);
            a.incident = incidents.get(&key).cloned();
        }
    }
    for payload in announcements {
        // Every channel hears about a restart, whatever its routes.
        for channel in config.channels.keys() {
            notifications.push(Notification::new(
                channel,
                Reason::Mitigation,
                now,
                payload.clone(),
            ));
        }
    }
    notifications
}

/// Opens the outbox. One that cannot be opened or read (a corrupt file) is moved aside as
/// `alerts.db.corrupt-MS`, with its WAL, and a fresh one started: alerting goes on, and the
/// old file is kept for inspection.
fn open_outbox(path: &Path) -> Result<Outbox, String> {
    let readable =
        |path: &Path| Outbox::open(path).and_then(|outbox| outbox.counters().map(|_| outbox));
    let first = match readable(path) {
        Ok(outbox) => return Ok(outbox),
        Err(error) => error,
    };
    if !path.exists() {
        return Err(format!("alert outbox {}: {first}", path.display()));
    }
    let stamp = leakwatch_alert::now_ms();
    let aside = path.with_file_name(format!(
        "{}.corrupt-{stamp}",
        path.file_name()
            .map_or("alerts.db".into(), |n| n.to_string_lossy())
    ));
    std::fs::rename(path, &aside).map_err(|e| {
        format!(
            "alert outbox {} is unreadable ({first}) and cannot be moved aside: {e}",
            path.display()
        )
    })?;
    for suffix in ["-wal", "-shm"] {
        let mut side = path.as_os_str().to_owned();
        side.push(suffix);
        let _ = std::fs::remove_file(std::path::PathBuf::from(side));
    }
    tracing::error!(
        error = %first,
        moved_to = %aside.display(),
        "the alert outbox could not be read: moved aside, starting a fresh one"
    );
    readable(path).map_err(|e| format!("alert outbox {}: {e}", path.display()))
}

/// Repeated errors logged once a minute with a count, not once a second.
#[derive(Default)]
struct ErrorLog {
    last: Option<Instant>,
    suppressed: u64,
}

impl ErrorLog {
    fn log(&mut self, error: &dyn std::fmt::Display, what: &str) {
        if self
            .last
            .is_some_and(|at| at.elapsed() < Duration::from_secs(60))
        {
            self.suppressed += 1;
            return;
        }
        tracing::error!(error = %error, repeated = self.suppressed, "{what}");
        self.last = Some(Instant::now());
        self.suppressed = 0;
    }
}

/// Delivers due notifications and publishes the delivery counters. False when the round
/// or the counters could not be read (the outbox is failing).
fn deliver(dispatcher: &mut Dispatcher, shared: &Shared, now: u64, errors: &mut ErrorLog) -> bool {
    let mut ok = true;
    match dispatcher.run_once(now) {
        Ok(stats) if stats.delivered + stats.failed + stats.retried > 0 => tracing::info!(
            delivered = stats.delivered,
            retried = stats.retried,
            failed = stats.failed,
            "alert deliveries"
        ),
        Ok(_) => {}
        Err(error) => {
            ok = false;
            errors.log(&error, "alert delivery round failed");
        }
    }
    match dispatcher.outbox().counters() {
        Ok(counters) => shared.alert_counters.publish(counters),
        Err(error) => {
            ok = false;
            errors.log(&error, "cannot read the alert outbox");
        }
    }
    ok
}
