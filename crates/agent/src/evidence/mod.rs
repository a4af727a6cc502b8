//! Evidence, captured once per incident when a finding first appears, while the process
//! still has room to be looked at (incident 004's heap dump came too late and killed the
//! JVM). Each incident is a folder `DATA_DIR/incidents/ID/` with `incident.json` and one
//! text file per piece of evidence; alerts carry the ID.
//!
//! An incident is keyed by (target, resource, attribution). It stays open while the
//! finding keeps being reported and for `reopen_after` after it was last seen; a finding
//! that comes back later is a new incident. Open incidents survive an agent restart
//! (`open.json`). Folders beyond `max_incidents` are deleted oldest first.
//!
//! Split by job: [`registry`] (which findings open or join an incident), [`folder`] (the
//! incident folders and their `incident.json`), [`capture`] (what is written into a folder
//! at first detection), [`creation`] (which code starts a JVM's leaking threads), [`goroutines`] (which code
//! starts a Go service's leaking goroutines), [`heap`] (what grows in a memory leak: two snapshots and their
//! difference), [`dump`] (heap dumps on request), [`jdk`] (jcmd and jfr, as the JVM's user), [`mitigation`] (the rate-limited restart command).

pub mod capture;
pub mod creation;
pub mod dump;
pub mod folder;
pub mod goroutines;
pub mod heap;
pub mod jdk;
pub mod mitigation;
pub mod pprof;
pub mod registry;

pub use capture::{capture, CaptureJob};
pub use folder::{
    incident_id, join, list, load, prune, read_file, valid_id, FileEntry, IncidentMeta,
    MitigationRecord, MAX_SHOWN_BYTES,
};
pub use mitigation::{mitigate, MitigationLog};
pub use registry::{Opened, Registry};

use std::path::{Path, PathBuf};

pub fn incidents_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("incidents")
}

#[cfg(test)]
pub(crate) fn test_finding(
    target: &str,
    resource: &str,
    attribution: &str,
) -> leakwatch_detect::Finding {
    use leakwatch_detect::{Finding, FindingKind};
    use leakwatch_model::SeriesKey;
    Finding {
        kind: FindingKind::Leak,
        state: leakwatch_detect::FindingState::Confirmed,
        resolution: None,
        key: SeriesKey::from_text(target, resource, attribution),
        pids: vec![],
        processes: Vec::new(),
        current: 10.0,
        limit: Some(100.0),
        rate_per_hour: 5.0,
        eta_seconds: Some(3600.0),
        eta_conservative_seconds: Some(1800.0),
        first_seen: 1_700_000_000.0,
        evidence_window: (1_700_000_000.0, 1_700_000_100.0),
        confidence: 0.99,
        p_value: 0.01,
        restarts: 0,
        summary: "threads Leaky-# +5/h".into(),
        consequences: Vec::new(),
        evidence: None,
    }
}
