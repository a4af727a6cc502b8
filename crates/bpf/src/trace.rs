//! Loads the eBPF program, watches the given processes for a bounded window, and reads back
//! the counted creation sites with their user stacks.

use crate::sites::Traced;
use crate::{stacks, symbols, Unavailable};
use libbpf_rs::{MapCore, MapFlags, ObjectBuilder, RingBufferBuilder};
use std::time::{Duration, Instant};

/// The compiled program (see `build.rs`).
static OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/creation.bpf.o"));

/// Processes one trace may watch (the program's `targets` map).
pub const MAX_PIDS: usize = 64;
/// The longest window a trace may be asked for.
pub const MAX_WINDOW: Duration = Duration::from_secs(600);

/// How long and how much.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Watch this long (at most [`MAX_WINDOW`]).
    pub window: Duration,
    /// Stop early once this many creations were counted: enough to rank the sites.
    pub max_events: u64,
    /// The kinds to report ([`crate::Kind::mask_for`]): what a finding is about, so that
    /// other creations neither fill the ring buffer nor count towards `max_events`.
    pub kinds: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            window: Duration::from_secs(30),
            max_events: 100_000,
            kinds: crate::Kind::mask_for(None),
        }
    }
}

/// Whether a trace can run on this host, as far as can be told without loading one.
pub fn available() -> Result<(), Unavailable> {
    if !cfg!(target_arch = "x86_64") {
        return Err(Unavailable(
            "not available: creation-site tracing is built for x86-64 only (syscall numbers)"
                .into(),
        ));
    }
    // CAP_SYS_ADMIN (21), or CAP_PERFMON (38) and CAP_BPF (39).
    let caps = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(0);
    let has = |bit: u32| caps & (1u64 << bit) != 0;
    if !(has(21) || (has(38) && has(39))) {
        return Err(Unavailable(
            "not available: tracing creation sites needs root (or CAP_BPF and CAP_PERFMON); \
             the agent runs without them"
                .into(),
        ));
    }
    Ok(())
}

/// Watches `pids` (their threads, and the threads they start meanwhile) for `limits.window`,
/// or until `keep_going` (first called once the program is attached, then about every
/// 100 ms) says stop, or `limits.max_events` creations were counted. Stacks are recovered
/// as they come and symbolised at the end, while the processes still run.
pub fn trace(
    pids: &[u32],
    limits: Limits,
    keep_going: &mut dyn FnMut() -> bool,
) -> Result<Traced, Unavailable> {
    available()?;
    if pids.is_empty() {
        return Err(Unavailable("no process to trace".into()));
    }
    let pids = &pids[..pids.len().min(MAX_PIDS)];
    let window = limits.window.min(MAX_WINDOW);
    let open = ObjectBuilder::default()
        .open_memory(OBJECT)
        .map_err(|e| Unavailable(format!("not available: cannot open the eBPF object: {e}")))?;
    let object = open.load().map_err(|e| {
        Unavailable(format!(
            "not available: the kernel refused the eBPF program ({e}); it needs root (or \
             CAP_BPF and CAP_PERFMON) and a kernel with raw tracepoints (4.17+)"
        ))
    })?;
    let map = |name: &str| {
        object
            .maps()
            .find(|m| m.name() == name)
            .ok_or_else(|| Unavailable(format!("the eBPF object has no map {name}")))
    };
    let targets = map("targets")?;
    for pid in pids {
        targets
            .update(&pid.to_ne_bytes(), &[1u8], MapFlags::ANY)
            .map_err(|e| Unavailable(format!("cannot watch pid {pid}: {e}")))?;
    }
    map("wanted")?
        .update(
            &0u32.to_ne_bytes(),
            &limits.kinds.to_ne_bytes(),
            MapFlags::ANY,
        )
        .map_err(|e| Unavailable(format!("cannot set the kinds to trace: {e}")))?;
    let events_map = map("events")?;
    let mut raw = stacks::Raw::default();
    let mut links = Vec::new();
    for prog in object.progs_mut() {
        if prog.name().to_str() == Some("on_sys_exit") {
            links.push(prog.attach_raw_tracepoint("sys_exit").map_err(|e| {
                Unavailable(format!(
                    "not available: cannot attach to the raw tracepoint sys_exit: {e}"
                ))
            })?);
        }
    }
    if links.is_empty() {
        return Err(Unavailable(
            "the eBPF object has no program on_sys_exit".into(),
        ));
    }
    let totals = map("totals")?;
    let total = |index: u32| -> u64 {
        totals
            .lookup(&index.to_ne_bytes(), MapFlags::ANY)
            .ok()
            .flatten()
            .and_then(|v| v.get(..8).and_then(|b| b.try_into().ok()))
            .map(u64::from_ne_bytes)
            .unwrap_or(0)
    };
    let started = Instant::now();
    let seconds;
    {
        let mut builder = RingBufferBuilder::new();
        builder
            .add(&events_map, |bytes: &[u8]| {
                raw.add(bytes);
                0
            })
            .map_err(|e| Unavailable(format!("cannot read the eBPF ring buffer: {e}")))?;
        let ring = builder
            .build()
            .map_err(|e| Unavailable(format!("cannot read the eBPF ring buffer: {e}")))?;
        while keep_going() && started.elapsed() < window && total(0) < limits.max_events {
            let left = window.saturating_sub(started.elapsed());
            let _ = ring.poll(Duration::from_millis(100).min(left));
        }
        seconds = started.elapsed().min(window).as_secs_f64();
        // Detach, then take what is still in the buffer: the counts are the window's.
        drop(links);
        let _ = ring.consume();
    }
    let (events, dropped) = (total(0), total(1));
    let mut sites = raw.sites();
    let mut notes = Vec::new();
    if let Err(note) = symbols::symbolise(&mut sites) {
        notes.push(note);
    }
    Ok(Traced {
        pids: pids.to_vec(),
        seconds,
        events,
        dropped,
        lost: raw.lost,
        untracked: raw.untracked,
        notes,
        sites,
    })
}
