//! The rate-limited restart command: run once an incident's evidence is complete, when a
//! leak's conservative forecast falls below the target's threshold, at most `max_per_day`
//! times a day (the cap survives restarts: `mitigations.json`).

use super::capture::run;
use super::folder::{load, save_meta, write_atomic, FileEntry, IncidentMeta, MitigationRecord};
use crate::config::Mitigation;
use leakwatch_exec::{expand, quote};
use std::path::{Path, PathBuf};

/// Restarts run per target, persisted so the daily cap holds across agent restarts.
pub struct MitigationLog {
    path: PathBuf,
    runs: Vec<(String, i64)>,
}

const DAY_MS: i64 = 24 * 3600 * 1000;

impl MitigationLog {
    pub fn load(root: &Path) -> MitigationLog {
        let path = root.join("mitigations.json");
        let runs = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        MitigationLog { path, runs }
    }

    pub fn runs_last_day(&self, target: &str, now_ms: i64) -> usize {
        self.runs
            .iter()
            .filter(|(t, ts)| t == target && now_ms - ts < DAY_MS)
            .count()
    }

    fn record(&mut self, target: &str, now_ms: i64) {
        self.runs.retain(|(_, ts)| now_ms - ts < DAY_MS);
        self.runs.push((target.to_string(), now_ms));
        if let Err(error) = write_atomic(
            &self.path,
            &serde_json::to_vec(&self.runs).unwrap_or_default(),
        ) {
            tracing::error!(error = %error, "cannot save mitigations.json: the daily cap may not survive a restart");
        }
    }
}

/// Runs a target's restart command for an incident whose evidence is complete, unless the
/// daily cap is reached. Returns the record to announce, or `None` when nothing new
/// happened (evidence not captured yet, or the cap was already announced).
pub fn mitigate(
    root: &Path,
    id: &str,
    mitigation: &Mitigation,
    pids: &[u32],
    log: &mut MitigationLog,
    now_ms: i64,
) -> Option<(IncidentMeta, MitigationRecord)> {
    let mut meta = load(root, id).ok()?;
    if meta.status != "complete" {
        return None;
    }
    let pid = pids.iter().min().map(|p| p.to_string()).unwrap_or_default();
    let argv = expand(
        &mitigation.restart_command,
        &[("pid", &pid), ("target", &meta.target)],
    );
    let done = log.runs_last_day(&meta.target, now_ms);
    let record = if done >= mitigation.max_per_day as usize {
        // Say so once per incident, not at every detection run.
        if meta.mitigations.iter().any(|m| !m.ran) {
            return None;
        }
        MitigationRecord {
            ts_ms: now_ms,
            command: argv,
            ran: false,
            success: false,
            outcome: format!(
                "not run: {done} restart(s) of {} in the last 24h already (max_per_day = {})",
                meta.target, mitigation.max_per_day
            ),
        }
    } else {
        log.record(&meta.target, now_ms);
        let out = run(argv.clone(), mitigation.timeout, 64 * 1024);
        let outcome = out.describe();
        let mut text = format!("$ {}\n# {outcome}\n", quote::join(&argv)).into_bytes();
        text.extend_from_slice(&out.stdout.bytes);
        let name = format!("mitigation-{}.txt", meta.mitigations.len() + 1);
        let _ = std::fs::write(root.join(id).join(&name), &text);
        meta.files.push(FileEntry {
            name,
            bytes: text.len() as u64,
            note: outcome.clone(),
        });
        MitigationRecord {
            ts_ms: now_ms,
            command: argv,
            ran: true,
            success: out.success(),
            outcome,
        }
    };
    meta.mitigations.push(record.clone());
    if let Err(error) = save_meta(&root.join(id), &meta) {
        tracing::error!(error = %error, "cannot record the mitigation");
    }
    Some((meta, record))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::test_finding as finding;
    use std::time::Duration;

    #[test]
    fn mitigation_is_capped_per_day_and_says_so_once() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let id = "20260101-000000-svc-threads-0001";
        std::fs::create_dir_all(root.join(id)).unwrap();
        let mut meta = IncidentMeta {
            version: IncidentMeta::VERSION,
            id: id.into(),
            created_ms: 0,
            target: "svc".into(),
            resource: "threads".into(),
            attribution: "x".into(),
            kind: leakwatch_detect::FindingKind::Leak,
            summary: String::new(),
            finding: (&finding("svc", "threads", "x")).into(),
            findings: vec![],
            pids: vec![1],
            status: "capturing".into(),
            capture_ms: 0,
            files: vec![],
            mitigations: vec![],
            evidence: None,
        };
        save_meta(&root.join(id), &meta).unwrap();
        let m = Mitigation {
            restart_command: vec![
                "echo".into(),
                "restart".into(),
                "{target}".into(),
                "{pid}".into(),
            ],
            when_eta_below: Duration::from_secs(3600),
            max_per_day: 1,
            timeout: Duration::from_secs(5),
        };
        let mut log = MitigationLog::load(root);
        // Evidence first: nothing runs while the capture is not complete.
        assert!(mitigate(root, id, &m, &[7], &mut log, 1_000).is_none());
        meta.status = "complete".into();
        save_meta(&root.join(id), &meta).unwrap();
        let (_, first) = mitigate(root, id, &m, &[7], &mut log, 1_000).unwrap();
        assert!(first.ran && first.success, "{first:?}");
        assert_eq!(first.command, vec!["echo", "restart", "svc", "7"]);
        let text = std::fs::read_to_string(root.join(id).join("mitigation-1.txt")).unwrap();
        assert!(text.contains("restart svc 7"), "{text}");
        let (_, second) = mitigate(root, id, &m, &[7], &mut log, 2_000).unwrap();
        assert!(
            !second.ran && second.outcome.contains("max_per_day"),
            "{second:?}"
        );
        assert!(mitigate(root, id, &m, &[7], &mut log, 3_000).is_none());
        // The cap survives a restart of the agent, and lifts after a day.
        let log2 = MitigationLog::load(root);
        assert_eq!(log2.runs_last_day("svc", 5_000), 1);
        assert_eq!(log2.runs_last_day("svc", 1_000 + DAY_MS), 0);
    }
}
