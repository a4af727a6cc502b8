//! The detector stage (`lw-detect`): recomputes findings from the stored history on its
//! own read-only connection, owns the registry of open incidents, asks the evidence stage
//! for captures and restarts, publishes the findings, and hands them (with their incident
//! IDs) to the alert stage.

use super::incidents::{EvidenceJob, Found};
use super::{AlertEvent, Shared};
use crate::config::Config;
use crate::evidence::{self, CaptureJob, Registry};
use crate::sync::Locked;
use leakwatch_detect::{FindingState, Lifecycle, LifecycleParams};
use leakwatch_model::UnixMs;
use leakwatch_store::{Options, Store};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Recomputes findings from the stored history every `[detect] every`, on its own
/// read-only connection, so detection never delays sampling or storing. New findings open
/// incidents (evidence is captured on `lw-evidence`); leaks whose forecast falls inside a
/// target's mitigation threshold ask for the restart command.
pub fn run(
    shared: &Shared,
    config: &Config,
    mut registry: Registry,
    jobs: SyncSender<EvidenceJob>,
    found_by_captures: Receiver<Found>,
) {
    let interval = config.agent.interval;
    let params = config.detect.params(interval);
    let every = config.detect.every(interval);
    let windows = crate::findings::Windows::for_engine(
        i64::try_from(interval.as_millis()).unwrap_or(i64::MAX),
        &params,
    );
    let mut pass: u64 = 0;
    let capacities = config.capacities();
    let lifecycle_params = LifecycleParams::for_engine(&params);
    let mut lifecycle = Lifecycle::new(lifecycle_params.clone());
    let mut next = Instant::now() + every;
    let mut reader: Option<Store> = None;
    while !shared.stop.load(Ordering::Relaxed) {
        crate::health::beat();
        if Instant::now() < next {
            std::thread::sleep(Duration::from_millis(200));
            continue;
        }
        next = Instant::now() + every;
        let started = Instant::now();
        // Only the targets this pass can judge or hold (see `catalog_since`): a store keeps
        // thousands of targets that left hours ago.
        let since_ms = crate::findings::catalog_since(
            leakwatch_model::time::now_ms(),
            &windows,
            &lifecycle_params,
            i64::try_from(every.as_millis()).unwrap_or(i64::MAX),
        );
        // Kept across passes and refreshed: a pass reads the intervals appended since the
        // last one, not the whole open hour (reopened after any error).
        let refreshed = match reader.as_mut() {
            Some(store) => store.refresh(Some(since_ms)),
            None => Store::open_read_only_recent(&shared.db_path, Options::default(), since_ms)
                .map(|store| {
                    reader = Some(store);
                }),
        };
        if let Err(error) = refreshed {
            reader = None;
            tracing::warn!(error = %error, "detection cannot read the store");
            continue;
        }
        let Some(store) = reader.as_ref() else {
            continue;
        };
        shared
            .stats
            .detect_catalog_slots
            .store(store.catalog_slots() as u64, Ordering::Relaxed);
        let now_ms = leakwatch_model::time::now_ms();
        pass = pass.wrapping_add(1);
        let (found, lives) = crate::findings::compute(
            store,
            now_ms,
            &windows,
            &params,
            &lifecycle,
            pass,
            &capacities,
        );
        // Not held between passes: the writer's WAL checkpoints past it.
        if let Some(Err(error)) = reader.as_mut().map(Store::release_snapshot) {
            tracing::warn!(error = %error, "detection cannot end its read snapshot");
            reader = None;
        }
        let found = with_processes(found, &shared.latest.get());
        let mut found = lifecycle.update(found, &lives, UnixMs(now_ms).as_secs_f64());
        crate::findings::rank(&mut found);
        {
            // Logged when they first reach a state: suspected, confirmed, resolved.
            let findings = shared.findings.get();
            for finding in found.iter() {
                let new = !findings.iter().any(|f| {
                    f.key == finding.key && f.kind == finding.kind && f.state == finding.state
                });
                if new {
                    if finding.state == FindingState::Suspected {
                        tracing::info!(kind = %finding.kind, target = %finding.key.target, state = %finding.state, "{}", finding.summary);
                    } else {
                        tracing::warn!(kind = %finding.kind, target = %finding.key.target, state = %finding.state, "{}", finding.summary);
                    }
                }
            }
        }
        // Incidents first, so the alerts that name them carry their IDs. Only confirmed
        // findings open one (or join one): a suspected trend captures no evidence yet.
        if config.evidence.enabled {
            let confirmed: Vec<leakwatch_detect::Finding> = found
                .iter()
                .filter(|f| f.state == FindingState::Confirmed)
                .cloned()
                .collect();
            open_incidents(shared, config, &mut registry, &confirmed, now_ms, &jobs);
        }
        // What the captures found growing: kept with the open incident, shown on its
        // finding (and so in the API, the alert, `leakwatch leaks`).
        for capture in found_by_captures.try_iter() {
            registry.set_evidence(&capture.key, capture.line);
        }
        for finding in found.iter_mut() {
            if let Some(line) = registry.evidence_for(&finding.key) {
                finding.evidence = Some(line.to_string());
            }
        }
        let found = Arc::new(found);
        shared.findings.publish_arc(found.clone());
        shared.stats.detect_runs.fetch_add(1, Ordering::Relaxed);
        if let Some(alerts) = &shared.alert_inbox {
            let incidents = found
                .iter()
                .filter_map(|f| Some((f.key.clone(), registry.id_for(&f.key)?)))
                .collect();
            let event = AlertEvent::Findings {
                findings: found,
                incidents,
            };
            if let Err(TrySendError::Full(_)) = alerts.try_send(event) {
                // The alert stage is behind; it gets the next run's findings.
                tracing::warn!("alert inbox full: one detection run not sent");
            }
        }
        shared
            .stats
            .last_detect_us
            .store(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        super::trim_heap();
    }
}

/// Each finding of a live target names its processes as the latest sample saw them (the
/// lifecycle keeps them when the target is gone).
fn with_processes(
    mut found: Vec<leakwatch_detect::Finding>,
    latest: &super::Latest,
) -> Vec<leakwatch_detect::Finding> {
    for finding in &mut found {
        let target = &finding.key.target;
        if let Some(pids) = latest.pids.get(target) {
            finding.pids = pids.clone();
        }
        if let Some(processes) = latest.processes.get(target) {
            finding.processes = processes.listed.iter().map(|p| (**p).clone()).collect();
        }
    }
    found
}

fn open_incidents(
    shared: &Shared,
    config: &Config,
    registry: &mut Registry,
    found: &[leakwatch_detect::Finding],
    now_ms: i64,
    jobs: &SyncSender<EvidenceJob>,
) {
    let new = registry.observe(found, now_ms);
    let latest = shared.latest.get();
    let pids_of =
        |target: &str| -> Vec<u32> { latest.pids.get(target).cloned().unwrap_or_default() };
    let rule_of = |target: &str| config.targets.iter().find(|r| r.name == target);
    for opened in new {
        let (id, finding) = match opened {
            evidence::Opened::New { id, finding } => (id, finding),
            evidence::Opened::Joined { id, finding } => {
                let _ = jobs.try_send(EvidenceJob::Join {
                    id,
                    finding: Box::new(finding),
                });
                continue;
            }
        };
        let output = shared
            .supervised_output
            .get()
            .as_ref()
            .as_ref()
            .map(|(err, out)| (err.locked().text(), out.locked().text()));
        let job = CaptureJob {
            id: id.clone(),
            pids: pids_of(&finding.key.target),
            rule: rule_of(&finding.key.target).cloned(),
            finding,
            output,
            created_ms: now_ms,
        };
        tracing::info!(incident = %id, "capturing evidence");
        if jobs.try_send(EvidenceJob::Capture(Box::new(job))).is_err() {
            shared
                .stats
                .incidents_dropped
                .fetch_add(1, Ordering::Relaxed);
            tracing::error!(incident = %id, "evidence queue full: capture dropped");
        }
    }
    for finding in found {
        if finding.kind != leakwatch_detect::FindingKind::Leak {
            continue;
        }
        let Some(mitigation) = rule_of(&finding.key.target).and_then(|r| r.mitigation.as_ref())
        else {
            continue;
        };
        let soon = finding
            .eta_conservative_seconds
            .is_some_and(|eta| eta < mitigation.when_eta_below.as_secs_f64());
        if !soon {
            continue;
        }
        let id = registry.id_for(&finding.key);
        if let Some(id) = id {
            // Full queue: asked again at the next detection run.
            let _ = jobs.try_send(EvidenceJob::Mitigate {
                id,
                mitigation: mitigation.clone(),
                pids: pids_of(&finding.key.target),
            });
        }
    }
}
