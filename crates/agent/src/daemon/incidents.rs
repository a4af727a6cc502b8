//! The evidence stage (`lw-evidence`): captures evidence into incident folders and runs
//! restart commands, one job at a time, off the detection path; announces each mitigation
//! to the alert stage.

use super::{AlertEvent, Shared};
use crate::evidence::{self, CaptureJob, MitigationLog};
use leakwatch_alert::AlertPayload;
use leakwatch_model::SeriesKey;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::time::Duration;

/// Work for the evidence thread, in order: a capture always precedes the mitigation of
/// the same incident.
pub enum EvidenceJob {
    Capture(Box<CaptureJob>),
    /// A capture asked for through the API.
    Request(Box<evidence::capture::RequestJob>),
    Join {
        id: String,
        finding: Box<leakwatch_detect::Finding>,
    },
    Mitigate {
        id: String,
        mitigation: crate::config::Mitigation,
        pids: Vec<u32>,
    },
}

/// What a capture found growing in an incident (its one line), for the detector to put on
/// the incident's finding.
pub struct Found {
    pub key: SeriesKey,
    pub line: String,
}

/// Capture requests waiting; beyond this they are dropped and counted (detection never
/// waits on a slow capture command).
pub const EVIDENCE_INBOX: usize = 64;

/// Captures evidence and runs restart commands, one job at a time, off the detection path.
pub fn run(
    shared: &Shared,
    settings: &crate::config::EvidenceSection,
    rules: &[crate::config::TargetRule],
    jobs: Receiver<EvidenceJob>,
    found: SyncSender<Found>,
) {
    let root = shared.incidents_dir.clone();
    let mut log = MitigationLog::load(&root);
    while !shared.stop.load(Ordering::Relaxed) {
        crate::health::beat();
        let job = match jobs.recv_timeout(Duration::from_millis(200)) {
            Ok(job) => job,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => continue,
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
        };
        match job {
            EvidenceJob::Capture(job) => {
                match evidence::capture(&root, &shared.db_path, &job, settings, &shared.stop) {
                    Ok(meta) => {
                        if let Some(line) = meta.evidence.clone() {
                            // Full: the detector is behind; the incident folder has it.
                            let _ = found.try_send(Found {
                                key: job.finding.key.clone(),
                                line,
                            });
                        }
                        shared
                            .stats
                            .incidents_captured
                            .fetch_add(1, Ordering::Relaxed);
                        tracing::info!(
                            incident = %meta.id,
                            files = meta.files.len(),
                            ms = meta.capture_ms,
                            "evidence captured in {}",
                            root.join(&meta.id).display()
                        );
                    }
                    Err(error) => {
                        tracing::error!(incident = %job.id, error = %error, "evidence capture failed")
                    }
                }
                let removed = evidence::prune(&root, settings.max_incidents);
                if removed > 0 {
                    tracing::info!(removed, "old incident folders deleted");
                }
            }
            EvidenceJob::Request(job) => {
                let rule = evidence::load(&root, &job.id)
                    .ok()
                    .and_then(|meta| rules.iter().find(|r| r.name == meta.target));
                match evidence::capture::capture_on_request(
                    &root,
                    &job,
                    rule,
                    settings,
                    &shared.stop,
                ) {
                    Ok(_) => tracing::info!(
                        incident = %job.id,
                        what = job.what.as_str(),
                        "capture on request done: {}.txt",
                        job.stem
                    ),
                    Err(error) => {
                        tracing::error!(incident = %job.id, error = %error, "capture on request failed")
                    }
                }
            }
            EvidenceJob::Join { id, finding } => {
                if let Err(error) = evidence::join(&root, &id, &finding) {
                    tracing::warn!(incident = %id, error = %error, "cannot add a finding to the incident");
                }
            }
            EvidenceJob::Mitigate {
                id,
                mitigation,
                pids,
            } => {
                let now = leakwatch_alert::now_ms() as i64;
                let Some((meta, record)) =
                    evidence::mitigate(&root, &id, &mitigation, &pids, &mut log, now)
                else {
                    continue;
                };
                if record.ran {
                    shared.stats.mitigations_run.fetch_add(1, Ordering::Relaxed);
                }
                let summary = if record.ran {
                    format!(
                        "leakwatch ran the restart command of {} because {} ({}): `{}` -> {}",
                        meta.target,
                        meta.summary,
                        meta.kind,
                        leakwatch_exec::quote::join(&record.command),
                        record.outcome
                    )
                } else {
                    format!(
                        "leakwatch did NOT restart {} although {}: {}",
                        meta.target, meta.summary, record.outcome
                    )
                };
                tracing::warn!(incident = %id, "{summary}");
                let payload = AlertPayload {
                    fingerprint: format!("mitigation-{id}-{}", meta.mitigations.len()),
                    alertname: "LeakwatchMitigation".into(),
                    kind: "mitigation".into(),
                    severity: leakwatch_alert::Severity::Critical,
                    state: leakwatch_alert::AlertState::Firing,
                    target: meta.target.clone(),
                    resource: meta.resource.clone(),
                    attribution: meta.attribution.clone(),
                    starts_ms: now as u64,
                    ends_ms: None,
                    summary,
                    finding: Some(meta.finding.clone()),
                    incident: Some(id.clone()),
                };
                let sent = shared
                    .alert_inbox
                    .as_ref()
                    .map(|alerts| alerts.try_send(AlertEvent::Announce(Box::new(payload))));
                if let Some(Err(TrySendError::Full(_))) = sent {
                    tracing::error!(incident = %id, "alert inbox full: mitigation not announced");
                }
            }
        }
    }
}
