//! Which findings open an incident and which join one: one incident per series key while
//! it keeps being reported (and `reopen_after` beyond), further findings of the same target
//! within ten minutes joining it; open incidents survive a restart (`open.json`).

use super::folder::{incident_id, write_atomic};
use leakwatch_detect::Finding;
use leakwatch_model::SeriesKey;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Open incidents remembered at most (oldest forgotten first).
const MAX_OPEN: usize = 10_000;

type Key = SeriesKey;

fn key_of(finding: &Finding) -> Key {
    finding.key.clone()
}

/// A line of `open.json`: the key's text fields (`target`, `resource`, `attribution`), the
/// incident and when the key was last seen.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct OpenEntry {
    #[serde(flatten)]
    key: SeriesKey,
    id: String,
    last_seen_ms: i64,
    /// What the capture found growing (see [`Registry::set_evidence`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    evidence: Option<String>,
}

/// One open incident of a key.
#[derive(Debug, Clone)]
struct Open {
    id: String,
    last_seen_ms: i64,
    evidence: Option<String>,
}

/// A new finding of a target joins the target's incident opened less than this long ago
/// instead of opening another (the findings of one leak arrive over a few detection runs).
const JOIN_WINDOW_MS: i64 = 10 * 60 * 1000;

/// What `Registry::observe` decided for a finding seen for the first time.
#[derive(Debug, Clone, PartialEq)]
pub enum Opened {
    /// A new incident: capture evidence.
    New { id: String, finding: Finding },
    /// A further finding of a target whose incident was opened moments ago.
    Joined { id: String, finding: Finding },
}

/// Which findings already have an incident. Shared by the detection loop (which opens
/// incidents) and the alert loop (which puts their IDs on notifications).
#[derive(Debug, Default)]
pub struct Registry {
    open: HashMap<Key, Open>,
    /// Per target: its latest incident and when it was opened (within the join window).
    recent: HashMap<String, (String, i64)>,
    reopen_after_ms: i64,
    /// Where `open.json` lives; `None` in tests.
    root: Option<PathBuf>,
    last_saved_ms: i64,
    dirty: bool,
}

impl Registry {
    pub fn new(root: Option<PathBuf>, reopen_after: Duration) -> Registry {
        Registry {
            reopen_after_ms: reopen_after.as_millis() as i64,
            root,
            ..Registry::default()
        }
    }

    /// Loads the incidents that were open when the agent stopped.
    pub fn load(root: &Path, reopen_after: Duration, now_ms: i64) -> Registry {
        let mut registry = Registry::new(Some(root.to_path_buf()), reopen_after);
        let Ok(text) = std::fs::read(root.join("open.json")) else {
            return registry;
        };
        match serde_json::from_slice::<Vec<OpenEntry>>(&text) {
            Ok(entries) => {
                for e in entries {
                    if now_ms - e.last_seen_ms < registry.reopen_after_ms {
                        let open = Open {
                            id: e.id,
                            last_seen_ms: e.last_seen_ms,
                            evidence: e.evidence,
                        };
                        registry.open.insert(e.key, open);
                    }
                }
            }
            Err(error) => tracing::warn!(error = %error, "ignoring unreadable incidents/open.json"),
        }
        registry
    }

    /// Notes the current findings. Returns the ones seen for the first time: each opens an
    /// incident, or joins its target's incident opened within the last ten minutes.
    pub fn observe(&mut self, findings: &[Finding], now_ms: i64) -> Vec<Opened> {
        self.recent
            .retain(|_, (_, opened)| now_ms - *opened < JOIN_WINDOW_MS);
        // The most urgent first, so it is the one that opens (and names) the incident.
        let mut ordered: Vec<&Finding> = findings.iter().collect();
        ordered.sort_by(|a, b| urgency(a).total_cmp(&urgency(b)));
        let mut new = Vec::new();
        for finding in ordered {
            let key = key_of(finding);
            match self.open.get_mut(&key) {
                Some(open) => open.last_seen_ms = now_ms,
                None => {
                    let opened = match self.recent.get(&finding.key.target) {
                        Some((id, _)) => Opened::Joined {
                            id: id.clone(),
                            finding: finding.clone(),
                        },
                        None => {
                            let id = incident_id(finding, now_ms);
                            self.recent
                                .insert(finding.key.target.clone(), (id.clone(), now_ms));
                            Opened::New {
                                id,
                                finding: finding.clone(),
                            }
                        }
                    };
                    let id = match &opened {
                        Opened::New { id, .. } | Opened::Joined { id, .. } => id.clone(),
                    };
                    let open = Open {
                        id,
                        last_seen_ms: now_ms,
                        evidence: None,
                    };
                    self.open.insert(key, open);
                    new.push(opened);
                    self.dirty = true;
                }
            }
        }
        let reopen = self.reopen_after_ms;
        let before = self.open.len();
        self.open
            .retain(|_, open| now_ms - open.last_seen_ms < reopen);
        if self.open.len() > MAX_OPEN {
            let mut by_age: Vec<(Key, i64)> = self
                .open
                .iter()
                .map(|(k, open)| (k.clone(), open.last_seen_ms))
                .collect();
            by_age.sort_by_key(|(_, seen)| *seen);
            for (key, _) in by_age.into_iter().take(self.open.len() - MAX_OPEN) {
                self.open.remove(&key);
            }
        }
        self.dirty |= self.open.len() != before;
        // Last-seen times matter only at the scale of `reopen_after`: save them now and then.
        if self.dirty || now_ms - self.last_saved_ms > (reopen / 6).max(60_000) {
            self.save(now_ms);
        }
        new
    }

    fn save(&mut self, now_ms: i64) {
        let Some(root) = &self.root else {
            self.dirty = false;
            return;
        };
        let entries: Vec<OpenEntry> = self
            .open
            .iter()
            .map(|(key, open)| OpenEntry {
                key: key.clone(),
                id: open.id.clone(),
                last_seen_ms: open.last_seen_ms,
                evidence: open.evidence.clone(),
            })
            .collect();
        let result = std::fs::create_dir_all(root).and_then(|()| {
            write_atomic(
                &root.join("open.json"),
                &serde_json::to_vec(&entries).unwrap_or_default(),
            )
        });
        match result {
            Ok(()) => {
                self.dirty = false;
                self.last_saved_ms = now_ms;
            }
            Err(error) => tracing::warn!(error = %error, "cannot save incidents/open.json"),
        }
    }

    /// The open incident of a finding's key.
    pub fn id_for(&self, key: &SeriesKey) -> Option<String> {
        self.open.get(key).map(|open| open.id.clone())
    }

    /// Notes what the capture of `key`'s incident found growing (its one line); dropped
    /// when the incident closes, kept across a restart with it. False when the key has no
    /// open incident (any more).
    pub fn set_evidence(&mut self, key: &SeriesKey, line: String) -> bool {
        match self.open.get_mut(key) {
            Some(open) => {
                open.evidence = Some(line);
                self.dirty = true;
                true
            }
            None => false,
        }
    }

    /// The line [`Self::set_evidence`] noted for the open incident of `key`.
    pub fn evidence_for(&self, key: &SeriesKey) -> Option<&str> {
        self.open.get(key)?.evidence.as_deref()
    }

    pub fn len(&self) -> usize {
        self.open.len()
    }

    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }
}

/// Smaller is more urgent: leaks by their conservative forecast, then saturation, then
/// everything else.
fn urgency(f: &Finding) -> f64 {
    let base = match f.kind {
        leakwatch_detect::FindingKind::Leak => 0.0,
        leakwatch_detect::FindingKind::Saturation => 1e12,
        leakwatch_detect::FindingKind::CrashLoop => 2e12,
    };
    base + f.eta_conservative_seconds.unwrap_or(1e11).clamp(0.0, 1e11)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::test_finding as finding;
    use crate::evidence::*;
    use std::time::Duration;

    #[test]
    fn one_incident_per_key_until_it_goes_quiet() {
        let mut r = Registry::new(None, Duration::from_secs(3600));
        let a = finding("svc", "threads", "Leaky-#");
        let new = r.observe(std::slice::from_ref(&a), 1_000);
        assert_eq!(new.len(), 1);
        let Opened::New { id, .. } = new[0].clone() else {
            panic!("{new:?}")
        };
        assert!(valid_id(&id), "{id}");
        assert!(id.contains("svc-threads"), "{id}");
        assert!(r.observe(std::slice::from_ref(&a), 2_000).is_empty());
        // Absent for less than an hour: still the same incident.
        assert!(r.observe(&[], 1_000_000).is_empty());
        assert_eq!(
            r.id_for(&SeriesKey::from_text("svc", "threads", "Leaky-#")),
            Some(id.clone())
        );
        // Absent for more than an hour: closed; it comes back as a new one.
        assert!(r.observe(&[], 2_000 + 3_600_001).is_empty());
        assert!(r.is_empty());
        let again = r.observe(&[a], 2_000 + 3_600_002);
        assert!(matches!(&again[..], [Opened::New { id: other, .. }] if *other != id));
    }

    #[test]
    fn findings_of_one_target_share_an_incident() {
        let mut r = Registry::new(None, Duration::from_secs(3600));
        let mut threads = finding("svc", "threads", "Pool-#");
        threads.eta_conservative_seconds = Some(600.0);
        let memory = finding("svc", "memory", "rss");
        let other = finding("db", "fds", "socket");
        // The most urgent opens; the others of the same target join it.
        let opened = r.observe(&[memory.clone(), threads.clone(), other], 0);
        let id = match &opened[0] {
            Opened::New { id, finding }
                if finding.key.resource == leakwatch_model::Resource::Threads =>
            {
                id.clone()
            }
            o => panic!("{o:?}"),
        };
        assert!(opened.contains(&Opened::Joined {
            id: id.clone(),
            finding: memory
        }));
        assert_eq!(
            opened
                .iter()
                .filter(|o| matches!(o, Opened::New { .. }))
                .count(),
            2
        );
        // Later within the window: joins; after it: a new incident.
        let fds = finding("svc", "fds", "pipe");
        assert!(
            matches!(&r.observe(&[fds], 60_000)[..], [Opened::Joined { id: j, .. }] if *j == id)
        );
        let tcp = finding("svc", "tcp", "CLOSE_WAIT");
        assert!(matches!(
            &r.observe(&[tcp], 11 * 60_000)[..],
            [Opened::New { .. }]
        ));
    }

    #[test]
    fn open_incidents_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = Registry::new(Some(dir.path().into()), Duration::from_secs(3600));
        let new = r.observe(&[finding("svc", "fds", "socket")], 5_000);
        let Opened::New { id, .. } = new[0].clone() else {
            panic!("{new:?}")
        };
        let key = SeriesKey::from_text("svc", "fds", "socket");
        assert!(r.set_evidence(&key, "created by Pool.open".into()));
        assert!(!r.set_evidence(&SeriesKey::from_text("svc", "fds", "pipe"), "x".into()));
        r.observe(&[finding("svc", "fds", "socket")], 6_000);
        let r2 = Registry::load(dir.path(), Duration::from_secs(3600), 10_000);
        assert_eq!(r2.id_for(&key), Some(id));
        assert_eq!(r2.evidence_for(&key), Some("created by Pool.open"));
        let r3 = Registry::load(dir.path(), Duration::from_secs(3600), 6_000 + 3_600_001);
        assert!(r3.is_empty());
    }
}
