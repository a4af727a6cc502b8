//! Incident folders: `DATA_DIR/incidents/ID/` with `incident.json` ([`IncidentMeta`]) and
//! one file per piece of evidence; IDs, listing, loading, bounded reads and pruning.

use leakwatch_detect::Finding;
use std::io::Write;
use std::path::Path;

/// `incident.json` is a record of the API crate (versioned, with the opening finding as a
/// `FindingRecord`): the agent writes it, the API serves it, the CLI reads it.
pub use leakwatch_api::{FileEntry, IncidentRecord as IncidentMeta, MitigationRecord};

/// Bytes of an incident file served or shown at most.
pub const MAX_SHOWN_BYTES: u64 = 32 * 1024 * 1024;

fn slug(text: &str, max: usize) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if out.len() >= max {
            break;
        }
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_string()
}

/// `20261122-181503-analytics-threads-3f2a`: sorts by time, readable, unique per key.
pub fn incident_id(finding: &Finding, now_ms: i64) -> String {
    let stamp = leakwatch_alert::rfc3339_ms(now_ms.max(0) as u64);
    // 2026-11-22T18:15:03.123Z -> 20261122-181503
    let digits: String = stamp.chars().filter(|c| c.is_ascii_digit()).collect();
    let stamp = format!(
        "{}-{}",
        &digits[..8.min(digits.len())],
        &digits[8.min(digits.len())..14.min(digits.len())]
    );
    let mut hash: u32 = 0x811c_9dc5;
    for byte in format!(
        "{}\0{}\0{}\0{now_ms}",
        finding.key.target,
        finding.key.resource_text(),
        finding.key.attribution_text()
    )
    .bytes()
    {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    let mut id = format!("{stamp}-{}", slug(&finding.key.target, 40));
    let resource = slug(finding.key.resource.as_str(), 20);
    if !resource.is_empty() {
        id.push('-');
        id.push_str(&resource);
    }
    format!("{id}-{:04x}", hash & 0xffff)
}

/// An incident ID as typed by a user: no path tricks.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

/// Records a further finding on an incident (after its capture, which runs first on the
/// same queue). At most 50 are kept.
pub fn join(root: &Path, id: &str, finding: &Finding) -> Result<(), String> {
    let mut meta = load(root, id)?;
    let same = |f: &leakwatch_api::FindingRecord| {
        f.key.resource == finding.key.resource
            && f.key.attribution == finding.key.attribution
            && f.kind == finding.kind
    };
    if meta.findings.len() < 50 && !meta.findings.iter().any(same) {
        meta.findings.push(finding.into());
        save_meta(&root.join(id), &meta)?;
    }
    Ok(())
}

pub(crate) fn save_meta(dir: &Path, meta: &IncidentMeta) -> Result<(), String> {
    let bytes = serde_json::to_vec_pretty(meta).map_err(|e| e.to_string())?;
    write_atomic(&dir.join("incident.json"), &bytes)
        .map_err(|e| format!("cannot write {}/incident.json: {e}", dir.display()))
}

/// Deletes the oldest incident folders beyond `keep`. IDs start with the time, so their
/// order is their age.
pub fn prune(root: &Path, keep: usize) -> usize {
    let Ok(entries) = std::fs::read_dir(root) else {
        return 0;
    };
    let mut ids: Vec<String> = entries
        .flatten()
        .filter(|e| e.path().join("incident.json").exists())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|id| valid_id(id))
        .collect();
    ids.sort();
    let excess = ids.len().saturating_sub(keep);
    let mut removed = 0;
    for id in ids.into_iter().take(excess) {
        match std::fs::remove_dir_all(root.join(&id)) {
            Ok(()) => removed += 1,
            Err(error) => {
                tracing::warn!(incident = %id, error = %error, "cannot delete old incident")
            }
        }
    }
    removed
}

/// Every incident, newest first. Unreadable ones are skipped with a warning.
pub fn list(root: &Path) -> Result<Vec<IncidentMeta>, String> {
    let entries = match std::fs::read_dir(root) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(format!("cannot list {}: {error}", root.display())),
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let Some(id) = entry
            .file_name()
            .into_string()
            .ok()
            .filter(|id| valid_id(id))
        else {
            continue;
        };
        match load(root, &id) {
            Ok(meta) => out.push(meta),
            Err(error) => tracing::debug!(incident = %id, error = %error, "skipping"),
        }
    }
    out.sort_by(|a, b| b.created_ms.cmp(&a.created_ms).then(b.id.cmp(&a.id)));
    Ok(out)
}

pub fn load(root: &Path, id: &str) -> Result<IncidentMeta, String> {
    if !valid_id(id) {
        return Err(format!("{id:?} is not an incident ID"));
    }
    let path = root.join(id).join("incident.json");
    let bytes = std::fs::read(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => format!("no incident {id}"),
        _ => format!("cannot read {}: {e}", path.display()),
    })?;
    serde_json::from_slice(&bytes).map_err(|e| format!("{} is damaged: {e}", path.display()))
}

/// One evidence file of an incident, at most `MAX_SHOWN_BYTES`.
pub fn read_file(root: &Path, id: &str, name: &str) -> Result<Vec<u8>, String> {
    let meta = load(root, id)?;
    if !meta.files.iter().any(|f| f.name == name) && name != "incident.json" {
        return Err(format!(
            "incident {id} has no file {name:?} (it has: {})",
            meta.files
                .iter()
                .map(|f| f.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let path = root.join(id).join(name);
    if name.ends_with(".hprof") {
        // A heap dump holds the heap's data (its secrets) and is as large as the heap:
        // never served, only pointed at.
        return Err(format!(
            "{name} is a heap dump: it is not shown or served; open {} with Eclipse MAT or \
             VisualVM on the agent's host",
            path.display()
        ));
    }
    // Never through a symlink: the agent reads with privileges.
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if !file.metadata().is_ok_and(|m| m.is_file()) {
        return Err(format!("{}: not a regular file", path.display()));
    }
    let mut bytes = Vec::new();
    use std::io::Read;
    file.take(MAX_SHOWN_BYTES)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evidence_files_are_never_read_through_a_symlink_and_dumps_are_not_served() {
        let root = tempfile::tempdir().unwrap();
        let id = "20260101-000000-a-0001";
        let dir = root.path().join(id);
        std::fs::create_dir_all(&dir).unwrap();
        std::os::unix::fs::symlink("/etc/hostname", dir.join("threads.txt")).unwrap();
        std::fs::write(dir.join("heap-dump-1-2-3.hprof"), "JAVA PROFILE").unwrap();
        std::fs::write(
            dir.join("incident.json"),
            serde_json::json!({
                "id": id, "created_ms": 0, "target": "a", "resource": "threads",
                "attribution": "", "kind": "leak", "summary": "",
                "finding": {"kind": "leak", "target": "a", "resource": "threads", "attribution": ""},
                "files": [{"name": "threads.txt"}, {"name": "heap-dump-1-2-3.hprof"}],
            })
            .to_string(),
        )
        .unwrap();
        let err = read_file(root.path(), id, "threads.txt").unwrap_err();
        assert!(err.contains("threads.txt"), "{err}");
        let err = read_file(root.path(), id, "heap-dump-1-2-3.hprof").unwrap_err();
        assert!(err.contains("is a heap dump"), "{err}");
    }

    #[test]
    fn prune_keeps_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        for id in [
            "20260101-000000-a-0001",
            "20260102-000000-b-0002",
            "20260103-000000-c-0003",
        ] {
            std::fs::create_dir_all(dir.path().join(id)).unwrap();
            std::fs::write(dir.path().join(id).join("incident.json"), "{}").unwrap();
        }
        assert_eq!(prune(dir.path(), 2), 1);
        assert!(!dir.path().join("20260101-000000-a-0001").exists());
        assert!(dir.path().join("20260103-000000-c-0003").exists());
    }
}
