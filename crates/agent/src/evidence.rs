//! Evidence, captured once per incident when a finding first appears, while the process
//! still has room to be looked at (incident 004's heap dump came too late and killed the
//! JVM). Each incident is a folder `DATA_DIR/incidents/ID/` with `incident.json` and one
//! text file per piece of evidence; alerts carry the ID.
//!
//! An incident is keyed by (target, resource, attribution). It stays open while the
//! finding keeps being reported and for `reopen_after` after it was last seen; a finding
//! that comes back later is a new incident. Open incidents survive an agent restart
//! (`open.json`). Folders beyond `max_incidents` are deleted oldest first.

use crate::config::{EvidenceSection, Mitigation, TargetRule};
use crate::listing;
use leakwatch_detect::Finding;
use leakwatch_exec::{expand, quote, Finished, Keep, Program};
use leakwatch_model::SeriesKey;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Processes of one target whose threads, fds and sockets are listed.
const MAX_PIDS: usize = 8;
/// Open incidents remembered at most (oldest forgotten first).
const MAX_OPEN: usize = 10_000;
/// Bytes of an incident file served or shown at most.
pub const MAX_SHOWN_BYTES: u64 = 32 * 1024 * 1024;

pub fn incidents_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("incidents")
}

/// `incident.json` is a record of the API crate (versioned, with the opening finding as a
/// `FindingRecord`): the agent writes it, the API serves it, the CLI reads it.
pub use leakwatch_api::{FileEntry, IncidentRecord as IncidentMeta, MitigationRecord};

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
    open: HashMap<Key, (String, i64)>,
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
                        registry.open.insert(e.key, (e.id, e.last_seen_ms));
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
                Some((_, last_seen)) => *last_seen = now_ms,
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
                    self.open.insert(key, (id, now_ms));
                    new.push(opened);
                    self.dirty = true;
                }
            }
        }
        let reopen = self.reopen_after_ms;
        let before = self.open.len();
        self.open.retain(|_, (_, seen)| now_ms - *seen < reopen);
        if self.open.len() > MAX_OPEN {
            let mut by_age: Vec<(Key, i64)> = self
                .open
                .iter()
                .map(|(k, (_, seen))| (k.clone(), *seen))
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
            .map(|(key, (id, seen))| OpenEntry {
                key: key.clone(),
                id: id.clone(),
                last_seen_ms: *seen,
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
        self.open.get(key).map(|(id, _)| id.clone())
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

fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

/// What the capture needs besides the finding.
pub struct CaptureJob {
    pub id: String,
    pub finding: Finding,
    /// The target's processes at detection time.
    pub pids: Vec<u32>,
    /// The target's rule, for pprof and capture commands.
    pub rule: Option<TargetRule>,
    /// Supervised targets: the tails of stderr and stdout of the current life.
    pub output: Option<(String, String)>,
    pub created_ms: i64,
}

/// Writes the incident folder. Each step is bounded by `settings.timeout` and
/// `settings.max_output_bytes`; a failing step is noted in `incident.json`, never fatal.
pub fn capture(
    root: &Path,
    db_path: &Path,
    job: &CaptureJob,
    settings: &EvidenceSection,
) -> Result<IncidentMeta, String> {
    let started = Instant::now();
    let dir = root.join(&job.id);
    std::fs::create_dir_all(&dir)
        .map_err(|e| format!("cannot create incident folder {}: {e}", dir.display()))?;
    let mut pids = job.pids.clone();
    pids.sort_unstable();
    pids.dedup();
    pids.truncate(MAX_PIDS);
    let f = &job.finding;
    let mut meta = IncidentMeta {
        version: IncidentMeta::VERSION,
        id: job.id.clone(),
        created_ms: job.created_ms,
        target: f.key.target.clone(),
        resource: f.key.resource_text(),
        attribution: f.key.attribution_text(),
        kind: f.kind,
        summary: f.summary.clone(),
        finding: f.into(),
        findings: vec![f.into()],
        pids: pids.clone(),
        status: "capturing".into(),
        capture_ms: 0,
        files: Vec::new(),
        mitigations: Vec::new(),
    };
    save_meta(&dir, &meta)?;
    let cap = settings.max_output_bytes;
    let mut put = |name: &str, bytes: &[u8], note: String| {
        let kept = &bytes[..bytes.len().min(cap)];
        let mut note = note;
        if kept.len() < bytes.len() {
            note = format!("{note}; cut at {} of {} bytes", kept.len(), bytes.len());
        }
        let note = match std::fs::write(dir.join(name), kept) {
            Ok(()) => note,
            Err(error) => format!("cannot write: {error}"),
        };
        meta.files.push(FileEntry {
            name: name.to_string(),
            bytes: kept.len() as u64,
            note,
        });
    };
    if pids.is_empty() {
        put(
            "processes.txt",
            b"the target had no live process when the finding was made\n",
            "ok".into(),
        );
    }
    let join = |each: &dyn Fn(u32) -> String| {
        pids.iter()
            .map(|&pid| each(pid))
            .collect::<Vec<_>>()
            .join("\n")
    };
    put(
        "threads.txt",
        join(&listing::threads).as_bytes(),
        "ok".into(),
    );
    put("fds.txt", join(&listing::fds).as_bytes(), "ok".into());
    match listing::socket_table() {
        Ok(table) => {
            let filter = listing::SocketFilter::for_finding(&f.key.attribution);
            let text = join(&|pid| listing::sockets(pid, &table, &filter));
            put("sockets.txt", text.as_bytes(), "ok".into());
        }
        Err(error) => put(
            "sockets.txt",
            format!("cannot read the socket table: {error}\n").as_bytes(),
            format!("socket table: {error}"),
        ),
    }
    put("memory.txt", join(&listing::memory).as_bytes(), "ok".into());
    for &pid in &pids {
        if let Some(jcmd) = listing::is_jvm(pid) {
            let argv = vec![
                jcmd.display().to_string(),
                pid.to_string(),
                "Thread.print".to_string(),
            ];
            let out = run(argv, settings.timeout, cap);
            let note = out.describe();
            put(&format!("jcmd-threads-{pid}.txt"), &out.stdout.bytes, note);
        }
    }
    if let Some(url) = job.rule.as_ref().and_then(|r| r.pprof_url.as_ref()) {
        let (bytes, note) = fetch_goroutines(url, settings.timeout, cap);
        put("goroutines.txt", &bytes, note);
    }
    if let Some((stderr, stdout)) = &job.output {
        put("stderr-tail.txt", stderr.as_bytes(), "ok".into());
        put("stdout-tail.txt", stdout.as_bytes(), "ok".into());
    }
    match series_csv(db_path, f) {
        Ok(csv) => put("series.csv", csv.as_bytes(), "ok".into()),
        Err(error) => put(
            "series.csv",
            b"",
            format!("cannot read the history: {error}"),
        ),
    }
    if let (Some(rule), Some(&pid)) = (&job.rule, pids.first()) {
        for (i, template) in rule.capture.iter().enumerate() {
            let pid = pid.to_string();
            let dir_text = dir.display().to_string();
            let argv = expand(
                template,
                &[("pid", &pid), ("dir", &dir_text), ("target", &f.key.target)],
            );
            let line = quote::join(&argv);
            let out = run(argv, settings.timeout, cap);
            let note = out.describe();
            let mut text = format!("$ {line}\n# {note}\n").into_bytes();
            text.extend_from_slice(&out.stdout.bytes);
            put(&format!("capture-{}.txt", i + 1), &text, note);
        }
    }
    meta.status = "complete".into();
    meta.capture_ms = started.elapsed().as_millis() as u64;
    save_meta(&dir, &meta)?;
    Ok(meta)
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

/// Runs a capture or restart command (argv, no shell, stdin from /dev/null): its own
/// process group killed whole at `timeout`, stdout and stderr together, the first `cap`
/// bytes kept. What it leaves running after a normal exit is left alone: a restart command
/// may start the service again.
fn run(argv: Vec<String>, timeout: Duration, cap: usize) -> Finished {
    Program::new(argv, timeout)
        .cap(cap, Keep::Head)
        .merged()
        .run()
}

fn fetch_goroutines(base: &str, timeout: Duration, cap: usize) -> (Vec<u8>, String) {
    let base = base.trim_end_matches('/');
    let url = if base.ends_with("/debug/pprof") {
        format!("{base}/goroutine?debug=2")
    } else {
        format!("{base}/debug/pprof/goroutine?debug=2")
    };
    let client = match reqwest::blocking::Client::builder()
        .timeout(timeout)
        .build()
    {
        Ok(client) => client,
        Err(error) => return (Vec::new(), format!("http client: {error}")),
    };
    match client.get(&url).send() {
        Ok(response) if response.status().is_success() => {
            let mut bytes = Vec::new();
            use std::io::Read;
            let mut limited = response.take(cap as u64 + 1);
            match limited.read_to_end(&mut bytes) {
                Ok(_) => (bytes, format!("ok ({url})")),
                Err(error) => (bytes, format!("{url}: read failed: {error}")),
            }
        }
        Ok(response) => (Vec::new(), format!("{url}: HTTP {}", response.status())),
        Err(error) => (Vec::new(), format!("{url}: {error}")),
    }
}

/// The triggering series (and its limit) since a little before the finding's regime began.
fn series_csv(db_path: &Path, f: &Finding) -> Result<String, String> {
    let store = leakwatch_store::Store::open_read_only(db_path).map_err(|e| e.to_string())?;
    let to = (f.evidence_window.1 * 1000.0) as i64 + 60_000;
    let span = ((f.evidence_window.1 - f.evidence_window.0) * 1000.0) as i64;
    let from = (f.evidence_window.0 * 1000.0) as i64 - span / 2;
    let data = store
        .query_target(&f.key.target, from, to)
        .map_err(|e| e.to_string())?;
    let mut out = String::from("series,ts_ms,value\n");
    for series in &data {
        let limit = f.key.resource.limit_series(&series.key.target);
        let wanted = (!series.key.is_limit
            && series.key.resource == f.key.resource
            && series.key.attribution == f.key.attribution)
            || limit.as_ref() == Some(&series.key);
        if !wanted {
            continue;
        }
        let label = series.key.label();
        let label = label.replace('"', "\"\"");
        for (ms, value) in &series.points {
            out.push_str(&format!("\"{label}\",{ms},{value}\n"));
        }
    }
    Ok(out)
}

fn save_meta(dir: &Path, meta: &IncidentMeta) -> Result<(), String> {
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
    let file = std::fs::File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut bytes = Vec::new();
    use std::io::Read;
    file.take(MAX_SHOWN_BYTES)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(bytes)
}

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
    use leakwatch_detect::FindingKind;

    fn finding(target: &str, resource: &str, attribution: &str) -> Finding {
        Finding {
            kind: FindingKind::Leak,
            key: SeriesKey::from_text(target, resource, attribution),
            pids: vec![],
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
        }
    }

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
        let r2 = Registry::load(dir.path(), Duration::from_secs(3600), 10_000);
        assert_eq!(
            r2.id_for(&SeriesKey::from_text("svc", "fds", "socket")),
            Some(id)
        );
        let r3 = Registry::load(dir.path(), Duration::from_secs(3600), 5_000 + 3_600_001);
        assert!(r3.is_empty());
    }

    #[test]
    fn capture_writes_listings_and_bounded_commands() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("incidents");
        let db = dir.path().join("missing.db");
        let rule: TargetRule = toml::from_str(
            r#"name = "me"
comm = "x"
capture = [["cat", "/proc/{pid}/comm"], ["sleep", "20"], ["head", "-c", "100000", "/dev/zero"], ["/no/such/program"]]
"#,
        )
        .unwrap();
        let settings = EvidenceSection {
            timeout: Duration::from_millis(500),
            max_output_bytes: 10_000,
            ..EvidenceSection::default()
        };
        let job = CaptureJob {
            id: "20260101-000000-me-threads-0001".into(),
            finding: finding("me", "threads", "lw-#"),
            pids: vec![std::process::id()],
            rule: Some(rule),
            output: Some(("fatal error: boom\n".into(), String::new())),
            created_ms: 1,
        };
        let meta = capture(&root, &db, &job, &settings).unwrap();
        assert_eq!(meta.status, "complete");
        let names: Vec<&str> = meta.files.iter().map(|f| f.name.as_str()).collect();
        for expected in [
            "threads.txt",
            "fds.txt",
            "sockets.txt",
            "memory.txt",
            "stderr-tail.txt",
            "series.csv",
            "capture-1.txt",
            "capture-4.txt",
        ] {
            assert!(names.contains(&expected), "{names:?}");
        }
        let note = |name: &str| {
            meta.files
                .iter()
                .find(|f| f.name == name)
                .unwrap()
                .note
                .clone()
        };
        assert!(
            note("capture-2.txt").contains("timeout"),
            "{}",
            note("capture-2.txt")
        );
        assert!(
            note("capture-3.txt").contains("cut at"),
            "{}",
            note("capture-3.txt")
        );
        assert!(note("capture-4.txt").contains("cannot start"));
        assert!(note("series.csv").contains("cannot read the history"));
        let comm = std::fs::read_to_string(root.join(&job.id).join("capture-1.txt")).unwrap();
        assert!(comm.starts_with("$ cat /proc/"), "{comm}");
        let threads = String::from_utf8(read_file(&root, &job.id, "threads.txt").unwrap()).unwrap();
        assert!(
            threads.contains(&format!("pid {}", std::process::id())),
            "{threads}"
        );
        assert!(read_file(&root, &job.id, "../../etc/passwd").is_err());
        assert!(load(&root, "../x").is_err());
        assert_eq!(list(&root).unwrap().len(), 1);
        // A further finding joins the record once.
        let memory = finding("me", "memory", "rss");
        join(&root, &job.id, &memory).unwrap();
        join(&root, &job.id, &memory).unwrap();
        assert_eq!(load(&root, &job.id).unwrap().findings.len(), 2);
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
            kind: FindingKind::Leak,
            summary: String::new(),
            finding: (&finding("svc", "threads", "x")).into(),
            findings: vec![],
            pids: vec![1],
            status: "capturing".into(),
            capture_ms: 0,
            files: vec![],
            mitigations: vec![],
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
