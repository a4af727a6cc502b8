//! What is captured into an incident folder at first detection: listings of threads, fds
//! and sockets, memory, a JVM's thread dump, a Go service's goroutines, the supervised
//! command's output, the triggering series, and the target's capture commands (bounded,
//! never through a shell).

use super::folder::{save_meta, FileEntry, IncidentMeta};
use crate::config::{EvidenceSection, TargetRule};
use crate::listing;
use leakwatch_api::CaptureKind;
use leakwatch_detect::{Finding, FindingKind};
use leakwatch_exec::{expand, quote, Finished, Keep, Program};
use leakwatch_model::{Attribution, Resource, UnixMs};
use std::fmt::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Processes of one target whose threads, fds and sockets are listed.
const MAX_PIDS: usize = 8;

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
    stop: &AtomicBool,
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
        evidence: None,
    };
    save_meta(&dir, &meta)?;
    let cap = settings.max_output_bytes;
    let mut put = |name: &str, bytes: &[u8], note: String| {
        meta.files.push(write_file(&dir, name, bytes, note, cap));
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
            let out = super::jdk::run_jcmd(&jcmd, pid, &["Thread.print"], settings.timeout, cap);
            let note = out.describe();
            put(&format!("jcmd-threads-{pid}.txt"), &out.stdout.bytes, note);
        }
    }
    let pprof_url = job.rule.as_ref().and_then(|r| r.pprof_url.as_deref());
    let mut goroutines = None;
    if let Some(url) = pprof_url {
        let (bytes, note) = fetch_pprof(url, "goroutine?debug=2", settings.timeout, cap);
        put("goroutines.txt", &bytes, note);
        goroutines = Some(bytes);
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
    let headline = if f.kind == FindingKind::Leak
        && f.key.resource.is_bytes()
        && !settings.heap_interval.is_zero()
    {
        let growth = heap_growth(f, &pids, pprof_url, settings, stop);
        put("heap-growth.txt", growth.text.as_bytes(), growth.note);
        for (name, bytes, note) in growth.raw {
            put(&name, &bytes, note);
        }
        growth.headline
    } else {
        None
    };
    let creation = if f.kind != FindingKind::Leak || settings.creation_window.is_zero() {
        None
    } else if f.key.resource == Resource::Threads {
        thread_creation(thread_group(f), &pids, &dir, settings, stop, &|| false)
    } else {
        None
    };
    // A Go service leaking anything but memory (whose allocation sites heap-growth.txt
    // has): which code starts the goroutines that grow.
    let creation = match (creation, pprof_url, goroutines) {
        (None, Some(url), Some(first))
            if f.kind == FindingKind::Leak
                && !f.key.resource.is_bytes()
                && !settings.creation_window.is_zero() =>
        {
            Some(go_creation(url, &first, settings, stop))
        }
        (creation, _, _) => creation,
    };
    // Native code (and Go's OS threads), when the configuration allows tracing.
    let creation = match creation {
        None if f.kind == FindingKind::Leak
            && settings.creation_sites
            && !settings.creation_window.is_zero()
            && leakwatch_bpf::Kind::mask_for(Some(&f.key.resource)) != 0 =>
        {
            native_creation(&pids, Some(&f.key.resource), settings, stop)
        }
        creation => creation,
    };
    // CPython: said plainly rather than guessed.
    let creation = match creation {
        None if f.kind == FindingKind::Leak && f.key.resource == Resource::Threads => {
            python_creation(&pids)
        }
        creation => creation,
    };
    let headline = match creation {
        Some(creation) => {
            put("creation.txt", creation.text.as_bytes(), creation.note);
            for (name, bytes, note) in creation.raw {
                put(&name, &bytes, note);
            }
            creation.headline.or(headline)
        }
        None => headline,
    };
    if let Some(line) = headline {
        meta.summary = format!("{}; {line}", meta.summary);
        meta.evidence = Some(line);
    }
    meta.status = "complete".into();
    meta.capture_ms = started.elapsed().as_millis() as u64;
    save_meta(&dir, &meta)?;
    Ok(meta)
}

/// Writes one evidence file, its first `cap` bytes, and says how that went.
fn write_file(dir: &Path, name: &str, bytes: &[u8], note: String, cap: usize) -> FileEntry {
    let kept = &bytes[..bytes.len().min(cap)];
    let mut note = note;
    if kept.len() < bytes.len() {
        note = format!("{note}; cut at {} of {} bytes", kept.len(), bytes.len());
    }
    let note = match std::fs::write(dir.join(name), kept) {
        Ok(()) => note,
        Err(error) => format!("cannot write: {error}"),
    };
    FileEntry {
        name: name.to_string(),
        bytes: kept.len() as u64,
        note,
    }
}

/// A capture asked for through the API (`leakwatch incident ID --capture WHAT`).
pub struct RequestJob {
    pub id: String,
    pub what: CaptureKind,
    /// The outcome is `STEM.txt`; raw files beside it start with `STEM-`.
    pub stem: String,
    /// The target's live processes when it was asked for.
    pub pids: Vec<u32>,
}

/// Runs a requested capture into the incident's folder and adds its files to
/// `incident.json`. `rule` is the incident's target's rule (for its `pprof_url`).
pub fn capture_on_request(
    root: &Path,
    job: &RequestJob,
    rule: Option<&TargetRule>,
    settings: &EvidenceSection,
    stop: &AtomicBool,
) -> Result<IncidentMeta, String> {
    let started = Instant::now();
    let dir = root.join(&job.id);
    let mut meta = super::folder::load(root, &job.id)?;
    let finding = Finding::from(meta.finding.clone());
    let cap = settings.max_output_bytes;
    let mut pids = job.pids.clone();
    pids.sort_unstable();
    pids.dedup();
    let (text, raw, note) = match job.what {
        CaptureKind::Heap => {
            let pprof_url = rule.and_then(|r| r.pprof_url.as_deref());
            let growth = heap_growth(&finding, &pids, pprof_url, settings, stop);
            (growth.text, growth.raw, growth.note)
        }
        CaptureKind::HeapDump => {
            let dumps = super::dump::heap_dumps(root, &dir, &pids, &job.stem, settings);
            (dumps.text, Vec::new(), dumps.note)
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    let text = format!(
        "{} asked for on request; processes {pids:?}; {seconds:.1} s\n\n{text}",
        job.what.as_str()
    );
    // The raw files of a first capture keep their names; a request's carry its stem.
    for (name, bytes, note) in raw {
        meta.files.push(write_file(
            &dir,
            &format!("{}-{name}", job.stem),
            &bytes,
            note,
            cap,
        ));
    }
    for dump in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        let name = dump.file_name().to_string_lossy().into_owned();
        if name.starts_with(&job.stem) && name.ends_with(".hprof") {
            let bytes = dump.metadata().map(|m| m.len()).unwrap_or(0);
            meta.files.push(FileEntry {
                name,
                bytes,
                note: "ok (jcmd GC.heap_dump: open with Eclipse MAT or VisualVM)".into(),
            });
        }
    }
    // Last, so a client waiting for it finds the raw files listed too.
    meta.files.push(write_file(
        &dir,
        &format!("{}.txt", job.stem),
        text.as_bytes(),
        note,
        cap,
    ));
    save_meta(&dir, &meta)?;
    Ok(meta)
}

/// `heap-growth.txt` and the raw snapshots beside it (see [`super::heap`]).
struct HeapGrowth {
    text: String,
    note: String,
    raw: Vec<(String, Vec<u8>, String)>,
    headline: Option<String>,
}

/// Two snapshots of the memory of the target's first processes, `heap_interval` apart
/// (cut short, and said so, when the agent stops), and their difference.
fn heap_growth(
    finding: &Finding,
    pids: &[u32],
    pprof_url: Option<&str>,
    settings: &EvidenceSection,
    stop: &AtomicBool,
) -> HeapGrowth {
    let pids: Vec<u32> = pids.iter().copied().take(super::heap::MAX_PIDS).collect();
    let refused = super::heap::headroom(finding).err();
    let jvms: Vec<Option<std::path::PathBuf>> = pids.iter().map(|&p| listing::is_jvm(p)).collect();
    let cap = settings.max_output_bytes;
    // `with_heap`: the heap's sizes, read once, with the second snapshot (the only one
    // heap-growth.txt shows them for).
    let take = |allowed: bool, with_heap: bool| -> Vec<super::heap::Snapshot> {
        pids.iter()
            .zip(&jvms)
            .map(|(&pid, jcmd)| {
                let histogram = jcmd.as_deref().filter(|_| allowed).map(|jcmd| {
                    let out = super::jdk::run_jcmd(
                        jcmd,
                        pid,
                        &["GC.class_histogram"],
                        settings.timeout,
                        cap,
                    );
                    let note = out.describe();
                    (out.stdout.bytes, note)
                });
                let mut snapshot = super::heap::snapshot(pid, histogram);
                snapshot.heap = jcmd.as_deref().filter(|_| with_heap).and_then(|jcmd| {
                    let out = super::jdk::run_jcmd(
                        jcmd,
                        pid,
                        &["PerfCounter.print"],
                        settings.timeout,
                        cap,
                    );
                    super::heap::parse_perf_heap(&String::from_utf8_lossy(&out.stdout.bytes))
                });
                snapshot
            })
            .collect()
    };
    let go_heap = || pprof_url.map(|url| fetch_pprof(url, "heap", settings.timeout, cap));
    let first = Instant::now();
    let go_before = go_heap();
    let before = take(refused.is_none(), false);
    if !wait_until(first + settings.heap_interval, stop, || false) {
        return HeapGrowth {
            text: "the agent stopped before the second snapshot\n".into(),
            note: "cut short: the agent stopped".into(),
            raw: Vec::new(),
            headline: None,
        };
    }
    let seconds = first.elapsed().as_secs_f64();
    let go_after = go_heap();
    let after = take(refused.is_none(), true);
    let mut text = String::new();
    let mut raw = Vec::new();
    let mut go_headline = None;
    if let (Some(b), Some(a)) = (go_before, go_after) {
        let growth = super::heap::compare_go(b, a, seconds);
        text.push_str(&growth.text);
        text.push('\n');
        raw.extend(growth.raw);
        go_headline = growth.headline;
    }
    // A JVM's class (the one that grew most among the target's JVMs) beats a Go site,
    // which beats a mapping (the first process's).
    let mut class_headline: Option<(i128, String)> = None;
    let mut mapping_headline = None;
    for (((pid, jvm), b), a) in pids.iter().zip(&jvms).zip(before).zip(after) {
        let reason = refused.as_deref().filter(|_| jvm.is_some());
        let growth = super::heap::compare(*pid, b, a, seconds, reason);
        text.push_str(&growth.text);
        text.push('\n');
        raw.extend(growth.raw);
        if let Some((bytes, line)) = growth.class_headline {
            if class_headline
                .as_ref()
                .is_none_or(|(best, _)| bytes > *best)
            {
                class_headline = Some((bytes, line));
            }
        }
        mapping_headline = mapping_headline.or(growth.headline);
    }
    let headline = class_headline
        .map(|(_, line)| line)
        .or(go_headline)
        .or(mapping_headline);
    if pids.is_empty() {
        text.push_str("the target had no live process to snapshot\n");
    }
    HeapGrowth {
        text,
        note: format!("ok ({seconds:.0} s between snapshots)"),
        raw,
        headline,
    }
}

/// The thread group a finding is about, if it is about one.
fn thread_group(finding: &Finding) -> Option<&str> {
    match &finding.key.attribution {
        Attribution::ThreadGroup(name) => Some(name.as_str()),
        _ => None,
    }
}

/// What runs in a process, as far as creation sites go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    /// JIT-compiled and interpreted Java: JFR for threads; a kernel stack names nothing.
    Jvm,
    /// CPython: nothing can be read from outside.
    Python,
    /// Anything else, Go included: eBPF.
    Native,
}

pub fn runtime_of(pid: u32) -> Runtime {
    if listing::is_jvm(pid).is_some() {
        Runtime::Jvm
    } else if listing::is_python(pid).is_some() {
        Runtime::Python
    } else {
        Runtime::Native
    }
}

/// `leakwatch check --why` for JVMs: a JFR recording of thread starts in (the first two
/// of) `pids` from now until `end` says stop (at most 10 minutes); `creation.txt`'s text
/// and its line. Recordings go to `dir`. `None` when none of `pids` is a JVM.
pub fn jvm_thread_starts_until(
    pids: &[u32],
    dir: &Path,
    settings: &EvidenceSection,
    end: &dyn Fn() -> bool,
) -> Option<(String, Option<String>)> {
    let settings = EvidenceSection {
        creation_window: MAX_CREATION_WINDOW,
        ..settings.clone()
    };
    thread_creation(None, pids, dir, &settings, &AtomicBool::new(false), end)
        .map(|c| (c.text, c.headline))
}

/// The longest recording `jvm_thread_starts_until` takes.
pub const MAX_CREATION_WINDOW: Duration = Duration::from_secs(600);

/// What `leakwatch why` watches.
#[derive(Debug, Clone, Copy)]
pub struct Watch<'a> {
    pub pids: &'a [u32],
    /// What to watch the creation of; `None`: all.
    pub resource: Option<&'a Resource>,
    /// Only threads of this group (JVMs).
    pub group: Option<&'a str>,
    /// A Go service's net/http/pprof address.
    pub pprof_url: Option<&'a str>,
    pub window: Duration,
    /// Native code: stop the trace after this many creations.
    pub max_events: u64,
}

/// Where the threads of `pids` (JVMs, CPython) or a Go service's goroutines (`pprof_url`)
/// are created, or (native code, by eBPF) what makes `resource` grow, watched for `window`
/// from now (`leakwatch why`): the text of a `creation.txt` and its one line. Recordings go
/// to `dir`. `Err` says why nothing could be watched.
pub fn creation_now(
    watch: &Watch<'_>,
    dir: &Path,
    settings: &EvidenceSection,
    stop: &AtomicBool,
) -> Result<(String, Option<String>), String> {
    let Watch {
        pids,
        resource,
        group,
        pprof_url,
        window,
        max_events,
    } = *watch;
    let settings = EvidenceSection {
        creation_window: window,
        ..settings.clone()
    };
    let threads = resource.is_none_or(|r| *r == Resource::Threads);
    let creation = threads
        .then(|| thread_creation(group, pids, dir, &settings, stop, &|| false))
        .flatten()
        .or_else(|| {
            pprof_url.map(|url| {
                let (first, _) = fetch_pprof(
                    url,
                    "goroutine?debug=2",
                    settings.timeout,
                    settings.max_output_bytes,
                );
                go_creation(url, &first, &settings, stop)
            })
        });
    let mut native_error = None;
    let creation =
        creation.or_else(
            || match native_trace(pids, resource, &settings, max_events, stop) {
                Ok(native) => native,
                Err(error) => {
                    native_error = Some(error);
                    None
                }
            },
        );
    creation
        .or_else(|| threads.then(|| python_creation(pids)).flatten())
        .map(|c| (c.text, c.headline))
        .ok_or_else(|| {
            native_error.unwrap_or_else(|| {
                format!(
                    "none of the processes {pids:?} runs native code leakwatch can trace, and \
                     no --pprof was given"
                )
            })
        })
}

/// Native processes among `pids` (neither a JVM nor CPython, whose own frames a kernel
/// stack cannot name): an eBPF trace of what they create for `creation_window`
/// (see [`leakwatch_bpf`]). `None` when there is none, or the trace cannot run here (then
/// `creation.txt` says why).
fn native_creation(
    pids: &[u32],
    resource: Option<&Resource>,
    settings: &EvidenceSection,
    stop: &AtomicBool,
) -> Option<ThreadCreation> {
    match native_trace(
        pids,
        resource,
        settings,
        leakwatch_bpf::Limits::default().max_events,
        stop,
    ) {
        Ok(found) => found,
        Err(error) => Some(ThreadCreation {
            text: format!("{error}\n"),
            note: "not available (said in the file)".into(),
            raw: Vec::new(),
            headline: None,
        }),
    }
}

fn native_trace(
    pids: &[u32],
    resource: Option<&Resource>,
    settings: &EvidenceSection,
    max_events: u64,
    stop: &AtomicBool,
) -> Result<Option<ThreadCreation>, String> {
    let native: Vec<u32> = pids
        .iter()
        .copied()
        .filter(|&pid| listing::is_jvm(pid).is_none() && listing::is_python(pid).is_none())
        .collect();
    if native.is_empty() {
        return Ok(None);
    }
    let limits = leakwatch_bpf::Limits {
        window: settings.creation_window,
        max_events,
        kinds: leakwatch_bpf::Kind::mask_for(resource),
    };
    let traced = leakwatch_bpf::trace(&native, limits, &mut || {
        crate::health::beat();
        !stop.load(Ordering::Relaxed)
    })
    .map_err(|e| e.to_string())?;
    let creation = leakwatch_bpf::sites::summarise(&traced, resource);
    Ok(Some(ThreadCreation {
        text: creation.text,
        note: format!("ok: {} creations traced", traced.events),
        raw: Vec::new(),
        headline: creation.headline,
    }))
}

/// `creation.txt` and the recordings beside it (see [`super::creation`]).
struct ThreadCreation {
    text: String,
    note: String,
    raw: Vec<(String, Vec<u8>, String)>,
    headline: Option<String>,
}

/// JVMs only: a JFR recording of thread starts, `creation_window` long, in the target's
/// first two JVMs, and where the new threads of the finding's group were started from.
/// `None` when the target runs no JVM.
fn thread_creation(
    group: Option<&str>,
    pids: &[u32],
    dir: &Path,
    settings: &EvidenceSection,
    stop: &AtomicBool,
    end_early: &dyn Fn() -> bool,
) -> Option<ThreadCreation> {
    let jvms: Vec<(u32, std::path::PathBuf)> = pids
        .iter()
        .filter_map(|&pid| listing::is_jvm(pid).map(|jcmd| (pid, jcmd)))
        .take(2)
        .collect();
    if jvms.is_empty() {
        return None;
    }
    let cap = settings.max_output_bytes;
    let window = settings.creation_window;
    let jfc = dir.join(".leakwatch-threads.jfc");
    if let Err(error) = std::fs::write(&jfc, super::creation::JFC) {
        return Some(ThreadCreation {
            text: format!("cannot write the recording settings: {error}\n"),
            note: format!("cannot write {}: {error}", jfc.display()),
            raw: Vec::new(),
            headline: None,
        });
    }
    let started = Instant::now();
    let mut recordings = Vec::new();
    let mut notes = Vec::new();
    for (pid, jcmd) in &jvms {
        let file = dir.join(format!("creation-{pid}.jfr"));
        let out = super::jdk::run_jcmd(
            jcmd,
            *pid,
            &[
                "JFR.start",
                "name=leakwatch-creation",
                &format!("settings={}", jfc.display()),
                &format!("duration={}s", window.as_secs().max(1)),
                &format!("filename={}", file.display()),
            ],
            settings.timeout,
            cap,
        );
        // jcmd exits 0 also when the JVM refused; it says "Started recording N" when not.
        if out.success() && String::from_utf8_lossy(&out.stdout.bytes).contains("Started recording")
        {
            recordings.push((*pid, jcmd.clone(), file));
        } else {
            notes.push(format!(
                "pid {pid}: JFR.start failed: {}: {}",
                out.describe(),
                String::from_utf8_lossy(&out.stdout.bytes).trim()
            ));
        }
    }
    // The JVM writes the file when the duration ends, or when the recording is stopped
    // early (`end_early`); wait for it (a few seconds more at most).
    let written = |recordings: &[(u32, std::path::PathBuf, std::path::PathBuf)]| {
        recordings
            .iter()
            .all(|(_, _, f)| std::fs::metadata(f).is_ok_and(|m| m.len() > 0))
    };
    let mut finished = wait_until(started + window, stop, end_early);
    let elapsed = started.elapsed().min(window);
    if finished && elapsed < window {
        for (pid, jcmd, _) in &recordings {
            let _ = super::jdk::run_jcmd(
                jcmd,
                *pid,
                &["JFR.stop", "name=leakwatch-creation"],
                settings.timeout,
                cap,
            );
        }
    }
    if finished {
        let deadline = Instant::now() + Duration::from_secs(10);
        finished = wait_until(deadline, stop, || written(&recordings));
    }
    let _ = std::fs::remove_file(&jfc);
    if !finished {
        return Some(ThreadCreation {
            text: "the agent stopped before the recording ended\n".into(),
            note: "cut short: the agent stopped".into(),
            raw: Vec::new(),
            headline: None,
        });
    }
    let seconds = elapsed.as_secs_f64();
    let mut text = String::new();
    let mut raw = Vec::new();
    let mut headline = None;
    for note in &notes {
        text.push_str(note);
        text.push_str("\n\n");
    }
    for (pid, jcmd, file) in recordings {
        let jfr = jcmd.with_file_name("jfr");
        let jfr = if jfr.exists() { jfr } else { "jfr".into() };
        let argv = vec![
            jfr.display().to_string(),
            "print".to_string(),
            "--json".to_string(),
            "--events".to_string(),
            "jdk.ThreadStart".to_string(),
            file.display().to_string(),
        ];
        let out = super::jdk::run_as_jvm_user(pid, argv, settings.timeout, cap);
        match super::creation::parse_starts(&String::from_utf8_lossy(&out.stdout.bytes)) {
            Ok(parsed) => {
                // jfr's JSON is 6-11 KB a start: a busy recording is cut at the cap,
                // and the ranking is of the first starts; `jfr summary` says how many
                // there were in all.
                let recorded = if parsed.complete {
                    None
                } else {
                    let argv = vec![
                        jfr.display().to_string(),
                        "summary".to_string(),
                        file.display().to_string(),
                    ];
                    let summary = super::jdk::run_as_jvm_user(pid, argv, settings.timeout, cap);
                    super::creation::starts_in_summary(&summary.stdout.text())
                };
                let creation = super::creation::summarise(pid, &parsed, recorded, group, seconds);
                text.push_str(&creation.text);
                headline = headline.or(creation.headline);
            }
            Err(error) => {
                let _ = writeln!(text, "pid {pid}: {error} ({})", out.describe());
            }
        }
        text.push('\n');
        // The recording itself, for `jfr print` or JDK Mission Control.
        match std::fs::read(&file) {
            Ok(bytes) => raw.push((format!("creation-{pid}.jfr"), bytes, "ok".to_string())),
            Err(error) => raw.push((
                format!("creation-{pid}.jfr"),
                Vec::new(),
                format!("{error}"),
            )),
        }
    }
    Some(ThreadCreation {
        text,
        note: format!("ok ({seconds:.0} s recording)"),
        raw,
        headline,
    })
}

/// A Go service (`pprof_url`): a second goroutine dump `creation_window` after `first`, and
/// the goroutines grouped by creator, ranked by growth (see [`super::goroutines`]).
fn go_creation(
    url: &str,
    first: &[u8],
    settings: &EvidenceSection,
    stop: &AtomicBool,
) -> ThreadCreation {
    let started = Instant::now();
    if !wait_until(started + settings.creation_window, stop, || false) {
        return ThreadCreation {
            text: "the agent stopped before the second goroutine dump\n".into(),
            note: "cut short: the agent stopped".into(),
            raw: Vec::new(),
            headline: None,
        };
    }
    let cap = settings.max_output_bytes;
    let (second, note) = fetch_pprof(url, "goroutine?debug=2", settings.timeout, cap);
    let seconds = started.elapsed().as_secs_f64();
    let before = super::goroutines::parse(&String::from_utf8_lossy(first));
    let after = super::goroutines::parse(&String::from_utf8_lossy(&second));
    let creators = if before.is_empty() || after.is_empty() {
        super::goroutines::Creators {
            text: format!("no goroutines read from the two dumps ({note})\n"),
            headline: None,
        }
    } else {
        super::goroutines::compare(&before, &after, seconds)
    };
    ThreadCreation {
        text: creators.text,
        note: format!("ok ({seconds:.0} s between goroutine dumps)"),
        raw: vec![("goroutines-2.txt".to_string(), second, note)],
        headline: creators
            .headline
            .map(|line| format!("goroutine leak: {line}")),
    }
}

/// CPython processes among `pids`: what can and cannot be known of where their threads
/// are started. `None` when none runs CPython.
fn python_creation(pids: &[u32]) -> Option<ThreadCreation> {
    let pythons: Vec<(u32, String)> = pids
        .iter()
        .filter_map(|&pid| listing::is_python(pid).map(|name| (pid, name)))
        .collect();
    if pythons.is_empty() {
        return None;
    }
    let mut text = String::new();
    for (pid, name) in &pythons {
        let _ = writeln!(
            text,
            "pid {pid} runs CPython ({name}): where its threads are started cannot be read from \
             outside the process. CPython keeps no record of the code that called \
             Thread.start(), and its OS threads carry no Python name unless the program sets \
             one; a tool that reads the interpreter's memory (py-spy dump --pid {pid}) shows \
             where each thread runs now, usually the target function it was started with, \
             not who started it. threads.txt has the threads by name."
        );
    }
    Some(ThreadCreation {
        text,
        note: "not available for CPython (said in the file)".into(),
        raw: Vec::new(),
        headline: None,
    })
}

/// Waits until `deadline` or until `done()`, beating the evidence stage's heartbeat
/// (waiting is not being stuck). False when the agent is stopping.
fn wait_until(deadline: Instant, stop: &AtomicBool, done: impl Fn() -> bool) -> bool {
    while !done() && Instant::now() < deadline {
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        crate::health::beat();
        let left = deadline.saturating_duration_since(Instant::now());
        std::thread::sleep(Duration::from_millis(100).min(left));
    }
    true
}

/// Runs a capture or restart command (argv, no shell, stdin from /dev/null): its own
/// process group killed whole at `timeout`, stdout and stderr together, the first `cap`
/// bytes kept. What it leaves running after a normal exit is left alone: a restart command
/// may start the service again.
pub(crate) fn run(argv: Vec<String>, timeout: Duration, cap: usize) -> Finished {
    // One step of a capture or a restart: the evidence stage's heartbeat allows for it.
    crate::health::beat();
    Program::new(argv, timeout)
        .cap(cap, Keep::Head)
        .merged()
        .run()
}

/// One pprof endpoint of a Go service (`profile`: `goroutine?debug=2`, `heap`), the body
/// cut at `cap`.
fn fetch_pprof(base: &str, profile: &str, timeout: Duration, cap: usize) -> (Vec<u8>, String) {
    crate::health::beat();
    let base = base.trim_end_matches('/');
    let url = if base.ends_with("/debug/pprof") {
        format!("{base}/{profile}")
    } else {
        format!("{base}/debug/pprof/{profile}")
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
    let (start, end) = (
        UnixMs::from_secs_f64(f.evidence_window.0).0,
        UnixMs::from_secs_f64(f.evidence_window.1).0,
    );
    let to = end.saturating_add(60_000);
    let from = start.saturating_sub(end.saturating_sub(start) / 2);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::test_finding as finding;
    use crate::evidence::*;
    use std::time::Duration;

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
        let meta = capture(&root, &db, &job, &settings, &AtomicBool::new(false)).unwrap();
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
}
