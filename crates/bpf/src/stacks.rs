//! The user stacks of the program's events, aggregated as they arrive and recovered at the
//! end of a trace.
//!
//! The kernel walks a user stack along frame pointers. Where a frame has none the walk
//! breaks: Debian's C library is built without them, so a call into `open()` ends the walk
//! at the wrapper or continues from garbage. Each event therefore also carries the 512 words
//! above the stack pointer; where the walk breaks, or skips the frame that called the
//! wrapper, the frames are recovered by scanning those words for return addresses: a word
//! pointing into an executable mapping of the process, just after a call instruction (read
//! from `/proc/PID/mem`). Scanning can pick up a stale return address left in a frame; the
//! trace's text says which stacks were scanned.

use crate::sites::{Frame, Kind, Site};
use leakwatch_model::TcpState;
use leakwatch_proc::parse::fdlink::{classify, FdTarget};
use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

/// Distinct (process, kind, stack) kept while tracing; further new ones are counted as lost.
/// A key holds at most `FP_WORDS + MAX_CANDIDATES` words: 4 MiB of keys at most.
const MAX_KEYS: usize = 4_096;
/// Words of the scan kept per event (those pointing into executable mappings).
const MAX_CANDIDATES: usize = 64;
/// Words of the event (see `struct event` in `creation.bpf.c`).
const FP_WORDS: usize = 64;
const SCAN_WORDS: usize = 512;
const HEADER: usize = 48;
const EVENT_BYTES: usize = HEADER + 8 * (FP_WORDS + SCAN_WORDS);
/// Frames kept of a recovered stack.
const MAX_FRAMES: usize = 32;
/// A process's executable mappings kept (a JIT can map many).
const MAX_MAPPINGS: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    tgid: u32,
    kind: u32,
    ip: u64,
    /// The kernel's walk, innermost first (its first entry is `ip`).
    walked: Vec<u64>,
    /// Words above the stack pointer that point into executable mappings, in stack order.
    candidates: Vec<u64>,
    walk_error: bool,
}

/// Creations whose object (thread, process, fd) is remembered, to tell at the end which are
/// still there: 1.5 MiB at most.
const MAX_TRACKED: usize = 65_536;

/// What a creation made, to look for at the end of the trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Made {
    Thread(u32),
    Process(u32),
    Fd(i32),
}

/// Events as they arrive, aggregated by stack.
#[derive(Default)]
pub struct Raw {
    /// Stack -> its index in `keys`.
    index: HashMap<Key, usize>,
    /// Each stack: its process and kind, its frames as recovered when it first came (while
    /// the process surely ran), whether scanned, and its number of creations.
    keys: Vec<Stack>,
    code: Code,
    /// The last creation of each object, by process: a reused fd belongs to its last
    /// creation.
    made: HashMap<(u32, Made), usize>,
    /// Creations whose object could not be remembered (`MAX_TRACKED` reached).
    pub untracked: u64,
    /// Executable mappings per process (start, end), read at its first event and again
    /// (at most once a second) when a new stack comes: code loaded later is found.
    exec: HashMap<u32, (Instant, Vec<(u64, u64)>)>,
    /// Events not kept: too many distinct stacks, or malformed.
    pub lost: u64,
}

struct Stack {
    tgid: u32,
    kind: u32,
    frames: Vec<u64>,
    scanned: bool,
    count: u64,
}

fn word(bytes: &[u8], at: usize) -> u64 {
    bytes
        .get(at..at + 8)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_ne_bytes)
        .unwrap_or(0)
}

/// Executable mappings from `/proc/PID/maps`, sorted.
fn exec_mappings(pid: u32) -> Vec<(u64, u64)> {
    let mut text = String::new();
    let Ok(mut file) = std::fs::File::open(format!("/proc/{pid}/maps")) else {
        return Vec::new();
    };
    if file.read_to_string(&mut text).is_err() {
        return Vec::new();
    }
    let mut out: Vec<(u64, u64)> = text
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_ascii_whitespace();
            let range = fields.next()?;
            let perms = fields.next()?;
            if perms.as_bytes().get(2) != Some(&b'x') {
                return None;
            }
            let (lo, hi) = range.split_once('-')?;
            Some((
                u64::from_str_radix(lo, 16).ok()?,
                u64::from_str_radix(hi, 16).ok()?,
            ))
        })
        .take(MAX_MAPPINGS)
        .collect();
    out.sort_unstable();
    out
}

/// TCP sockets of a process's network namespace by inode, from `/proc/PID/net/tcp{,6}`.
fn tcp_states(pid: u32) -> HashMap<u64, TcpState> {
    let mut out = HashMap::new();
    for file in ["tcp", "tcp6"] {
        if let Ok(bytes) = std::fs::read(format!("/proc/{pid}/net/{file}")) {
            leakwatch_proc::parse::net_tcp::parse(&bytes, |row| {
                out.insert(row.inode, TcpState::from_kernel(row.state));
            });
        }
    }
    out
}

fn in_exec(maps: &[(u64, u64)], addr: u64) -> bool {
    let i = maps.partition_point(|&(lo, _)| lo <= addr);
    i > 0 && addr < maps[i - 1].1
}

impl Raw {
    /// One event from the ring buffer.
    pub fn add(&mut self, bytes: &[u8]) {
        if bytes.len() < EVENT_BYTES {
            self.lost += 1;
            return;
        }
        let tgid = u32::from_ne_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        let kind = u32::from_ne_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
        let ip = word(bytes, 8);
        let fp_bytes = word(bytes, 24) as i64;
        let scan_bytes = word(bytes, 32) as i64;
        let ret = word(bytes, 40) as i64;
        let known = self
            .exec
            .entry(tgid)
            .or_insert_with(|| (Instant::now(), exec_mappings(tgid)));
        let walked: Vec<u64> = (0..(fp_bytes.max(0) as usize / 8).min(FP_WORDS))
            .map(|i| word(bytes, HEADER + 8 * i))
            .take_while(|&a| a != 0)
            .collect();
        let candidates: Vec<u64> = (0..(scan_bytes.max(0) as usize / 8).min(SCAN_WORDS))
            .map(|i| word(bytes, HEADER + 8 * FP_WORDS + 8 * i))
            .filter(|&w| in_exec(&known.1, w))
            .take(MAX_CANDIDATES)
            .collect();
        let key = Key {
            tgid,
            kind,
            ip,
            walked,
            candidates,
            walk_error: fp_bytes < 0,
        };
        let at = match self.index.get(&key) {
            Some(&at) => at,
            None if self.keys.len() < MAX_KEYS => {
                // A new stack: recovered now, while the process surely runs.
                if known.0.elapsed() >= Duration::from_secs(1) {
                    *known = (Instant::now(), exec_mappings(tgid));
                }
                let (frames, scanned) = recover(&key, &known.1, &mut self.code);
                self.index.insert(key, self.keys.len());
                self.keys.push(Stack {
                    tgid,
                    kind,
                    frames,
                    scanned,
                    count: 0,
                });
                self.keys.len() - 1
            }
            None => {
                self.lost += 1;
                return;
            }
        };
        self.keys[at].count += 1;
        // pipe() and socketpair() return 0 and write their fds to memory: not tracked.
        let made = match Kind::from_code(kind) {
            Kind::Thread => u32::try_from(ret).ok().map(Made::Thread),
            Kind::Process => u32::try_from(ret).ok().map(Made::Process),
            Kind::Pipe => None,
            _ if ret > 0 => i32::try_from(ret).ok().map(Made::Fd),
            _ => None,
        };
        if let Some(made) = made {
            if self.made.len() < MAX_TRACKED || self.made.contains_key(&(tgid, made)) {
                self.made.insert((tgid, made), at);
            } else {
                self.untracked += 1;
            }
        }
    }

    /// Which of the remembered objects are still there now, per stack: how many, and the
    /// TCP states of the sockets among them.
    fn alive(&self) -> Vec<(u64, BTreeMap<TcpState, u64>)> {
        let mut alive = vec![(0u64, BTreeMap::new()); self.keys.len()];
        let mut tables: HashMap<u32, HashMap<u64, TcpState>> = HashMap::new();
        for (&(tgid, made), &at) in &self.made {
            let there = match made {
                Made::Thread(tid) => {
                    std::path::Path::new(&format!("/proc/{tgid}/task/{tid}")).exists()
                }
                Made::Process(pid) => std::path::Path::new(&format!("/proc/{pid}")).exists(),
                Made::Fd(fd) => match std::fs::read_link(format!("/proc/{tgid}/fd/{fd}")) {
                    Err(_) => false,
                    Ok(link) => {
                        if let FdTarget::Socket(inode) = classify(link.as_os_str().as_bytes()) {
                            let table = tables.entry(tgid).or_insert_with(|| tcp_states(tgid));
                            if let Some(&state) = table.get(&inode) {
                                *alive[at].1.entry(state).or_default() += 1;
                            }
                        }
                        true
                    }
                },
            };
            if there {
                alive[at].0 += 1;
            }
        }
        alive
    }

    /// The stacks, recovered, as sites (frames unnamed), merged where recovery made two
    /// keys one stack.
    /// Counts which of the creations' objects are still there: call it at the end of the
    /// trace, while the processes run.
    pub fn sites(&self) -> Vec<Site> {
        let alive = self.alive();
        type Merged = (u64, u64, BTreeMap<TcpState, u64>);
        let mut merged: HashMap<(u32, u32, &[u64], bool), Merged> = HashMap::new();
        for (stack, (living, states)) in self.keys.iter().zip(alive) {
            let entry = merged
                .entry((stack.tgid, stack.kind, &stack.frames, stack.scanned))
                .or_default();
            entry.0 += stack.count;
            entry.1 += living;
            for (state, k) in states {
                *entry.2.entry(state).or_default() += k;
            }
        }
        merged
            .into_iter()
            .map(
                |((pid, kind, frames, scanned), (count, alive, states))| Site {
                    pid,
                    kind: Kind::from_code(kind),
                    count,
                    alive,
                    states: states.into_iter().collect(),
                    frames: frames
                        .iter()
                        .map(|&addr| Frame {
                            addr,
                            ..Frame::default()
                        })
                        .collect(),
                    scanned,
                },
            )
            .collect()
    }
}

/// Reads the bytes before return addresses from `/proc/PID/mem`, once per address.
#[derive(Default)]
struct Code {
    mem: HashMap<u32, Option<std::fs::File>>,
    seen: HashMap<(u32, u64), bool>,
}

impl Code {
    /// Whether the instruction before `addr` in process `pid` is a call.
    fn after_call(&mut self, pid: u32, addr: u64) -> bool {
        if let Some(&known) = self.seen.get(&(pid, addr)) {
            return known;
        }
        let file = self
            .mem
            .entry(pid)
            .or_insert_with(|| std::fs::File::open(format!("/proc/{pid}/mem")).ok());
        let mut before = [0u8; 7];
        let ok = match (file, addr.checked_sub(7)) {
            (Some(file), Some(at)) => file.read_exact_at(&mut before, at).is_ok(),
            _ => false,
        };
        let known = ok && is_call_before(&before);
        if self.seen.len() < 65_536 {
            self.seen.insert((pid, addr), known);
        }
        known
    }
}

/// Whether the 7 bytes `b` end with an x86-64 call instruction: `call rel32`, or
/// `call r/m64` (opcode 0xff /2) in its register, displacement and RIP-relative forms.
pub fn is_call_before(b: &[u8; 7]) -> bool {
    let modrm_call = |m: u8| (m >> 3) & 7 == 2;
    // call rel32: e8 xx xx xx xx
    if b[2] == 0xe8 {
        return true;
    }
    // call reg: [rex] ff d0+r
    if b[5] == 0xff && b[6] >> 6 == 3 && modrm_call(b[6]) {
        return true;
    }
    // call [reg]: ff 1x (mod 0, not SIB, not RIP-relative)
    if b[5] == 0xff && b[6] >> 6 == 0 && modrm_call(b[6]) && b[6] & 7 != 4 && b[6] & 7 != 5 {
        return true;
    }
    // call [reg+disp8]: ff 5x d8; call [sib]: ff 14 sib (a SIB base of 5 would add a disp32)
    if b[4] == 0xff && modrm_call(b[5]) {
        let (md, rm) = (b[5] >> 6, b[5] & 7);
        if (md == 1 && rm != 4) || (md == 0 && rm == 4 && b[6] & 7 != 5) {
            return true;
        }
    }
    // call [sib+disp8]: ff 54 sib d8
    if b[3] == 0xff && modrm_call(b[4]) && b[4] >> 6 == 1 && b[4] & 7 == 4 {
        return true;
    }
    // call [index*scale+disp32] (SIB base 5, no base register): ff 14 sib d32
    if b[0] == 0xff && modrm_call(b[1]) && b[1] >> 6 == 0 && b[1] & 7 == 4 && b[2] & 7 == 5 {
        return true;
    }
    // call [reg+disp32] / [rip+disp32]: ff 9x d32 / ff 15 d32
    if b[1] == 0xff && modrm_call(b[2]) {
        let (md, rm) = (b[2] >> 6, b[2] & 7);
        if (md == 2 && rm != 4) || (md == 0 && rm == 5) {
            return true;
        }
    }
    // call [sib+disp32]: ff 94 sib d32
    b[0] == 0xff && modrm_call(b[1]) && b[1] >> 6 == 2 && b[1] & 7 == 4
}

/// The frames of one stack, innermost first, and whether any was found by scanning.
///
/// The kernel's walk is trusted as far as each frame points into executable code just after
/// a call. When it goes on for at least two callers that way, it is the stack's spine: return
/// addresses the scan finds between two of its frames (or before its first caller, or after
/// its last) are frames the walk skipped, code without frame pointers, and are put in their
/// place. Otherwise the stack is the instruction pointer and the scan's return addresses.
fn recover(key: &Key, maps: &[(u64, u64)], code: &mut Code) -> (Vec<u64>, bool) {
    let mut valid = 0;
    for &addr in key.walked.iter().skip(1) {
        if in_exec(maps, addr) && code.after_call(key.tgid, addr) {
            valid += 1;
        } else {
            break;
        }
    }
    let returns: Vec<u64> = key
        .candidates
        .iter()
        .copied()
        .filter(|&w| code.after_call(key.tgid, w))
        .collect();
    let mut frames = vec![key.ip];
    if valid < 2 {
        frames.extend(returns);
        frames.dedup();
        frames.truncate(MAX_FRAMES);
        return (frames, true);
    }
    let spine = &key.walked[1..=valid];
    let mut scanned = false;
    // Position in `returns` after the last spine frame placed.
    let mut at = 0;
    let mut last_found = false;
    for &frame in spine {
        last_found = false;
        if let Some(found) = returns[at..].iter().position(|&r| r == frame) {
            scanned |= found > 0;
            frames.extend_from_slice(&returns[at..at + found]);
            at += found + 1;
            last_found = true;
        }
        frames.push(frame);
    }
    // Past the walk's end, the scan goes on from its outermost frame (only when that frame
    // was in the scan: otherwise what is left of the scan lies inside the walk).
    if last_found && at < returns.len() {
        scanned = true;
        frames.extend_from_slice(&returns[at..]);
    }
    frames.dedup();
    frames.truncate(MAX_FRAMES);
    (frames, scanned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_instructions_before_a_return_address_are_recognised() {
        // call rel32
        assert!(is_call_before(&[0x90, 0x90, 0xe8, 1, 2, 3, 4]));
        // call rax; call r8 (41 ff d0)
        assert!(is_call_before(&[0, 0, 0, 0, 0, 0xff, 0xd0]));
        assert!(is_call_before(&[0, 0, 0, 0, 0x41, 0xff, 0xd0]));
        // call [rip+disp32]
        assert!(is_call_before(&[0, 0xff, 0x15, 1, 2, 3, 4]));
        // call [rax+8]; call [rax]; call [tbl+rax*8] (ff 14 c5 disp32)
        assert!(is_call_before(&[0, 0, 0, 0, 0xff, 0x50, 0x08]));
        assert!(is_call_before(&[0, 0, 0, 0, 0, 0xff, 0x10]));
        assert!(is_call_before(&[0xff, 0x14, 0xc5, 1, 2, 3, 4]));
        // ff 14 with a SIB base of 5 is 7 bytes long: not a 3-byte call ending here
        assert!(!is_call_before(&[0x90, 0x90, 0x90, 0x90, 0xff, 0x14, 0xc5]));
        // jmp rax (ff e0), a mov, and data: not calls
        assert!(!is_call_before(&[0, 0, 0, 0, 0, 0xff, 0xe0]));
        assert!(!is_call_before(&[0x48, 0x89, 0xc7, 0x48, 0x89, 0xc6, 0x90]));
        assert!(!is_call_before(&[0x6c, 0, 0x6f, 0x70, 0x65, 0x6e, 0]));
    }

    #[test]
    fn malformed_events_are_counted_not_read() {
        let mut raw = Raw::default();
        raw.add(&[0u8; 10]);
        assert_eq!(raw.lost, 1);
        assert_eq!(raw.untracked, 0);
        assert!(raw.sites().is_empty());
    }
}
