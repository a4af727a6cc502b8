//! The sampler stage (`lw-sampler`): one pass over the host per interval, grouped into
//! targets, published as the latest sample and sent to the writer. It never waits: a full
//! writer inbox drops the interval and counts it.

use super::writer::{Interval, WriterEvent};
use super::{sleep_until, Latest, Shared};
use crate::config::Config;
use crate::targets::{self, Admission, RestartTracker, Targeting};
use leakwatch_model::{Attribution, Resource};
use leakwatch_proc::Sampler;
use leakwatch_store::{Restart, SeriesKey};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, TrySendError};
use std::time::Instant;

/// Samples the host every interval until `shared.stop`, once the store has opened and sent
/// the names of the automatic targets it holds (`stored`).
pub fn run(
    mut sampler: Sampler,
    mut targeting: Targeting,
    stored: Receiver<Vec<String>>,
    config: &Config,
    shared: &Shared,
) {
    // Who owned which automatic name before a restart (`Names::seed`). Nothing comes if the
    // store failed to open, and the agent stops.
    if let Ok(names) = stored.recv() {
        targeting.seed_names(names.iter().map(String::as_str));
    }
    let interval = config.agent.interval;
    // Remember a vanished target for ten minutes' worth of passes: crash loops restart
    // after a back-off, and the restart must still be attributed to the same target.
    let grace = (600 / interval.as_secs().max(1)).max(3);
    let mut tracker = RestartTracker::new(grace);
    let mut admission = Admission::new(grace);
    let mut directory = crate::processes::Directory::new();
    let mut next = Instant::now();
    let mut logged_cost = false;
    while !shared.stop.load(Ordering::Relaxed) {
        crate::health::beat();
        let sample = match sampler.sample() {
            Ok(sample) => sample,
            Err(error) => {
                tracing::error!(error = %error, "sampling pass failed");
                sleep_until(&mut next, interval, shared);
                continue;
            }
        };
        let stats = &shared.stats;
        stats.samples.fetch_add(1, Ordering::Relaxed);
        stats
            .last_sample_cpu_us
            .store(sample.stats.cpu_us, Ordering::Relaxed);
        stats
            .last_sample_wall_us
            .store(sample.stats.wall_us, Ordering::Relaxed);
        stats
            .partial_processes
            .store(sample.stats.partial, Ordering::Relaxed);
        if !logged_cost {
            tracing::info!(
                processes = sample.processes.len(),
                cpu_ms = sample.stats.cpu_us / 1000,
                wall_ms = sample.stats.wall_us / 1000,
                partial = sample.stats.partial,
                "first sample"
            );
            logged_cost = true;
        }
        // Short-lived commands (compilers, shell pipelines) get no history of their own.
        let grouped = admission.filter(targets::group(&mut targeting, &sample));
        // A supervisor knows its restarts better (exit status, stderr): don't guess them.
        let seen = tracker.observe(&grouped, &|_| targeting.is_single());
        let processes = directory.update(&sample, &grouped);
        let mut points = Vec::new();
        let mut latest_targets = BTreeMap::new();
        let mut latest_pids = BTreeMap::new();
        let mut kinds = Vec::new();
        for (target, target_sample) in &grouped {
            let mut target_points = target_sample.points(
                &target.name,
                config.agent.max_thread_groups,
                config.agent.max_socket_peers,
                config.agent.max_fd_paths,
            );
            // App gauges scraped within the last two intervals; older ones are stale.
            for (name, value) in shared.gauges.fresh(&target.name, interval * 2) {
                let key = SeriesKey::new(&target.name, Resource::Gauge, Attribution::Gauge(name));
                target_points.push((key, value));
            }
            points.extend(target_points.iter().cloned());
            kinds.push((target.name.clone(), target.kind));
            latest_pids.insert(
                target.name.clone(),
                target_sample
                    .processes
                    .iter()
                    .map(|(pid, _)| *pid)
                    .collect(),
            );
            latest_targets.insert(target.name.clone(), (target.kind, target_points));
        }
        stats.targets.store(grouped.len() as u64, Ordering::Relaxed);
        let restarts: Vec<Restart> = seen
            .into_iter()
            .map(|r| {
                tracing::info!(target = %r.target, old_pid = r.old.0, new_pid = r.new.0, "restart");
                Restart {
                    target: r.target,
                    ts_ms: sample.time_unix_ms,
                    old_pid: Some(r.old.0),
                    old_start_time: Some(r.old.1),
                    new_pid: Some(r.new.0),
                    new_start_time: Some(r.new.1),
                    exit_code: None,
                    signal: None,
                    oom_killed: None,
                    stderr_tail: None,
                }
            })
            .collect();
        stats
            .restarts_seen
            .fetch_add(restarts.len() as u64, Ordering::Relaxed);
        shared.latest.publish(Latest {
            time_unix_ms: sample.time_unix_ms,
            targets: latest_targets,
            pids: latest_pids,
            processes,
        });
        let batch = Interval {
            ts_ms: sample.time_unix_ms,
            points,
            kinds,
            restarts,
        };
        match shared.writer_inbox.try_send(WriterEvent::Interval(batch)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                stats.dropped.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("store is behind: dropped one interval");
            }
            Err(TrySendError::Disconnected(_)) => {
                tracing::error!("store writer stopped; sampling stops too");
                shared.stop.store(true, Ordering::Relaxed);
                return;
            }
        }
        sleep_until(&mut next, interval, shared);
    }
}
