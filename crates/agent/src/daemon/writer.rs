//! The writer stage (`lw-writer`): owns the store's one read-write connection and writes
//! each interval the sampler sends (and each restart the supervisor records) in its own
//! transaction; applies retention hourly.

use super::Shared;
use leakwatch_model::TargetKind;
use leakwatch_store::{Restart, SeriesKey, StoreWriter};
use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

/// One sampling interval, grouped into targets.
pub struct Interval {
    pub ts_ms: i64,
    pub points: Vec<(SeriesKey, f64)>,
    pub kinds: Vec<(String, TargetKind)>,
    /// Restarts the sampler saw (a process of a target replaced by another).
    pub restarts: Vec<Restart>,
}

/// The writer's inbox.
pub enum WriterEvent {
    Interval(Interval),
    /// A restart known precisely by a supervisor (`leakwatch run`): exit status, stderr.
    Restart(Restart),
}

/// Writes what arrives in its inbox until `shared.stop` (or every sender is gone).
pub fn run(mut store: StoreWriter, shared: &Shared, inbox: Receiver<WriterEvent>) {
    // Targets whose kind was written this run; cleared with retention so it stays bounded.
    let mut known: HashSet<String> = HashSet::new();
    let mut last_retention = Instant::now();
    loop {
        crate::health::beat();
        let batch = match inbox.recv_timeout(Duration::from_millis(200)) {
            Ok(WriterEvent::Interval(batch)) => batch,
            Ok(WriterEvent::Restart(restart)) => {
                if let Err(error) = store.record_restart(&restart) {
                    shared.stats.store_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(error = %error, "could not store a restart");
                }
                continue;
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                if shared.stop.load(Ordering::Relaxed) {
                    return;
                }
                continue;
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
        };
        let started = Instant::now();
        let result = (|| -> leakwatch_store::Result<usize> {
            for (name, kind) in &batch.kinds {
                if !known.contains(name) {
                    store.set_target(name, *kind)?;
                    known.insert(name.clone());
                }
            }
            let report = store.append_keyed(batch.ts_ms, &batch.points)?;
            for restart in &batch.restarts {
                store.record_restart(restart)?;
            }
            Ok(report.written)
        })();
        match result {
            Ok(written) => {
                shared
                    .stats
                    .series_written
                    .store(written as u64, Ordering::Relaxed);
                shared
                    .stats
                    .store_catalog_slots
                    .store(store.catalog_slots() as u64, Ordering::Relaxed);
            }
            Err(error) => {
                shared.stats.store_errors.fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %error, "could not store an interval");
            }
        }
        if last_retention.elapsed() > Duration::from_secs(3600) {
            match store.apply_retention(batch.ts_ms) {
                Ok(report) => tracing::info!(
                    series_deleted = report.series_deleted,
                    targets_deleted = report.targets_deleted,
                    "retention applied"
                ),
                Err(error) => tracing::error!(error = %error, "retention failed"),
            }
            // A new set, not `clear()`: a cleared set keeps the capacity of the busiest hour.
            known = HashSet::new();
            last_retention = Instant::now();
        }
        shared
            .stats
            .last_store_us
            .store(started.elapsed().as_micros() as u64, Ordering::Relaxed);
    }
}
