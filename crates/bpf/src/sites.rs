//! What a trace found, ranked by creation site and rendered as `creation.txt`; no I/O.

use leakwatch_model::{Resource, TcpState};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// What was created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Thread,
    Process,
    File,
    Socket,
    Accept,
    Pipe,
    Eventfd,
    Epoll,
    Dup,
    OtherFd,
}

impl Kind {
    /// The program's code for it (`enum kind` in `creation.bpf.c`).
    pub fn from_code(code: u32) -> Kind {
        match code {
            0 => Kind::Thread,
            1 => Kind::Process,
            2 => Kind::File,
            3 => Kind::Socket,
            4 => Kind::Accept,
            5 => Kind::Pipe,
            6 => Kind::Eventfd,
            7 => Kind::Epoll,
            8 => Kind::Dup,
            _ => Kind::OtherFd,
        }
    }

    /// Plural noun: "threads", "files".
    pub fn noun(self) -> &'static str {
        match self {
            Kind::Thread => "threads",
            Kind::Process => "processes",
            Kind::File => "files",
            Kind::Socket => "sockets",
            Kind::Accept => "connections",
            Kind::Pipe => "pipes",
            Kind::Eventfd => "eventfds",
            Kind::Epoll => "epoll fds",
            Kind::Dup => "duplicated fds",
            Kind::OtherFd => "other fds",
        }
    }

    /// The verb of the headline: "threads were started from".
    fn verb(self) -> &'static str {
        match self {
            Kind::Thread | Kind::Process => "started",
            Kind::File => "opened",
            Kind::Accept => "accepted",
            Kind::Dup => "duplicated",
            _ => "created",
        }
    }

    /// Every kind.
    pub const ALL: [Kind; 10] = [
        Kind::Thread,
        Kind::Process,
        Kind::File,
        Kind::Socket,
        Kind::Accept,
        Kind::Pipe,
        Kind::Eventfd,
        Kind::Epoll,
        Kind::Dup,
        Kind::OtherFd,
    ];

    /// The program's code for it.
    pub fn code(self) -> u32 {
        Kind::ALL.iter().position(|&k| k == self).unwrap_or(9) as u32
    }

    /// The program's mask of the kinds that make `resource` grow (every kind when `None`).
    pub fn mask_for(resource: Option<&Resource>) -> u32 {
        Kind::ALL
            .iter()
            .filter(|k| resource.is_none_or(|r| k.grows(r)))
            .fold(0, |mask, k| mask | 1 << k.code())
    }

    /// Whether creations of this kind make a series of `resource` grow.
    pub fn grows(self, resource: &Resource) -> bool {
        match resource {
            Resource::Threads => self == Kind::Thread,
            Resource::Processes => self == Kind::Process,
            Resource::Fds => !matches!(self, Kind::Thread | Kind::Process),
            Resource::Tcp | Resource::TcpPeer | Resource::Sockets => {
                matches!(self, Kind::Socket | Kind::Accept)
            }
            _ => false,
        }
    }
}

/// One frame of a user stack.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frame {
    pub addr: u64,
    /// The function, demangled.
    pub symbol: Option<String>,
    /// The file it is mapped from, its name only.
    pub module: Option<String>,
    /// `file:line` where debug info has it.
    pub place: Option<String>,
}

impl Frame {
    fn name(&self) -> String {
        match (&self.symbol, &self.module) {
            (Some(symbol), _) => symbol.clone(),
            (None, Some(module)) => format!("{:#x} in {module}", self.addr),
            (None, None) => format!("{:#x}", self.addr),
        }
    }

    fn line(&self) -> String {
        let mut line = self.name();
        if let Some(place) = &self.place {
            let _ = write!(line, " ({place})");
        }
        if let (Some(module), Some(_)) = (&self.module, &self.symbol) {
            let _ = write!(line, " [{module}]");
        }
        line
    }

    /// Frames of the C library, the loader, and the runtimes' own creation machinery: how
    /// a thread or fd is created, not where.
    fn is_platform(&self) -> bool {
        const MODULES: &[&str] = &["libc.so", "libc-", "libpthread", "ld-linux", "libstdc++"];
        const SYMBOLS: &[&str] = &[
            "std::",
            "<std::",
            "core::",
            "<core::",
            "alloc::",
            "<alloc::",
            "__",
            "runtime.",
            "runtime/",
            "syscall.",
            "internal/",
            "os.",
            "net.",
            "net/",
            "sync.",
            "io.",
            "bufio.",
        ];
        self.module
            .as_deref()
            .is_some_and(|m| MODULES.iter().any(|p| m.starts_with(p)))
            || self
                .symbol
                .as_deref()
                .is_some_and(|s| SYMBOLS.iter().any(|p| s.starts_with(p)))
    }
}

/// Creations of one kind by one process from one stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    pub pid: u32,
    pub kind: Kind,
    pub count: u64,
    /// Innermost first.
    pub frames: Vec<Frame>,
    /// Whether the frames were found by scanning the stack for return addresses (the walk
    /// along frame pointers broke): likely, not certain.
    pub scanned: bool,
    /// Of those created, still there when the trace ended (a thread still running, an fd
    /// still open); pipes are not tracked (0).
    pub alive: u64,
    /// TCP states of the sockets among `alive`.
    pub states: Vec<(TcpState, u64)>,
}

/// What one trace counted.
#[derive(Debug, Clone, PartialEq)]
pub struct Traced {
    pub pids: Vec<u32>,
    pub seconds: f64,
    /// Creations the program saw.
    pub events: u64,
    /// Of those, not sent: the ring buffer was full.
    pub dropped: u64,
    /// Of those sent, not kept: too many distinct stacks.
    pub lost: u64,
    /// Of those kept, whose object could not be followed to the end of the trace.
    pub untracked: u64,
    /// What went wrong on the way, said in the text.
    pub notes: Vec<String>,
    pub sites: Vec<Site>,
}

/// Callers shown after the creation site in its one-line name.
const CALLERS: usize = 2;
/// Sites listed per kind.
const TOP: usize = 10;

/// The creation site of a stack: its innermost frame outside the platform and up to
/// `CALLERS` callers outside it; `None` when the stack has no frame outside it.
fn site_name(frames: &[Frame]) -> Option<String> {
    let mut outside = frames
        .iter()
        .filter(|f| f.symbol.is_some() && !f.is_platform());
    let first = outside.next()?;
    let mut name = first.name();
    if let Some(place) = &first.place {
        let _ = write!(name, " ({place})");
    }
    for caller in outside.take(CALLERS) {
        let _ = write!(name, " <- {}", caller.name());
    }
    Some(name)
}

/// `creation.txt` of a trace and its one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Creation {
    pub text: String,
    /// "97% of new threads were started from `leak <- handle <- main`".
    pub headline: Option<String>,
}

/// Ranks the sites of the kinds that make `resource` grow (every kind when `None`): by the
/// objects still there at the end of the trace (threads running, fds open) when any were
/// followed, else by creations.
pub fn summarise(traced: &Traced, resource: Option<&Resource>) -> Creation {
    let pids: Vec<String> = traced.pids.iter().map(u32::to_string).collect();
    let seconds = traced.seconds;
    let mut text = format!(
        "eBPF trace of pid {} for {seconds:.0} s (raw tracepoint sys_exit: clone, clone3, fork \
         and the calls that return a new fd; user stacks)\n{} creations counted",
        pids.join(", "),
        traced.events.saturating_sub(traced.dropped),
    );
    if traced.dropped > 0 {
        let _ = write!(
            text,
            ", {} more not sent (the ring buffer was full)",
            traced.dropped
        );
    }
    if traced.lost > 0 {
        let _ = write!(
            text,
            ", {} not kept (too many distinct stacks)",
            traced.lost
        );
    }
    text.push('\n');
    for note in &traced.notes {
        let _ = writeln!(text, "note: {note}");
    }
    let mut by_kind: BTreeMap<Kind, Vec<&Site>> = BTreeMap::new();
    for site in &traced.sites {
        if resource.is_none_or(|r| site.kind.grows(r)) {
            by_kind.entry(site.kind).or_default().push(site);
        }
    }
    if by_kind.is_empty() {
        let what = resource.map_or("anything ".to_string(), |r| format!("{} ", r.as_str()));
        let _ = writeln!(
            text,
            "\nno creation of {what}was seen in the window: what grows may be created by \
             processes started later, or it stopped growing"
        );
        return Creation {
            text,
            headline: None,
        };
    }
    // The headline's kind: one with creations still there at the end (what leaks) before
    // one without, then the most of them. Compared as they are weighed: a count of sockets
    // still open against one of connections accepted and closed again would let churn win.
    let mut headline: Option<((bool, u64), String)> = None;
    let mut shallow = 0u64;
    let mut scanned = 0u64;
    let mut all = 0u64;
    for (kind, sites) in &by_kind {
        let created: u64 = sites.iter().map(|s| s.count).sum();
        let alive: u64 = sites.iter().map(|s| s.alive).sum();
        // Ranked by what is still there when anything is: that is what leaks.
        let by_alive = alive > 0;
        let weight = |s: &Site| if by_alive { s.alive } else { s.count };
        let total = if by_alive { alive } else { created };
        // Per site name: its weight, creations, TCP states, and its largest stack.
        type Named<'a> = (u64, u64, Vec<(TcpState, u64)>, &'a Site);
        let mut named: BTreeMap<String, Named> = BTreeMap::new();
        let mut unnamed = 0u64;
        let mut unnamed_example: Option<&Site> = None;
        for site in sites {
            all += site.count;
            if site.frames.len() <= 2 {
                shallow += site.count;
            }
            if site.scanned {
                scanned += site.count;
            }
            match site_name(&site.frames) {
                Some(name) => {
                    let entry = named.entry(name).or_insert((0, 0, Vec::new(), site));
                    entry.0 += weight(site);
                    entry.1 += site.count;
                    for &(state, n) in &site.states {
                        match entry.2.iter_mut().find(|(s, _)| *s == state) {
                            Some(e) => e.1 += n,
                            None => entry.2.push((state, n)),
                        }
                    }
                    if site.count > entry.3.count {
                        entry.3 = site;
                    }
                }
                None => {
                    unnamed += weight(site);
                    if unnamed_example.is_none_or(|e| site.count > e.count) {
                        unnamed_example = Some(site);
                    }
                }
            }
        }
        let mut ranked: Vec<_> = named.into_iter().collect();
        ranked.sort_by(|a, b| (b.1).0.cmp(&(a.1).0).then_with(|| a.0.cmp(&b.0)));
        let still = match kind {
            Kind::Thread | Kind::Process => "still running",
            _ => "still open",
        };
        if by_alive {
            let _ = writeln!(
                text,
                "\n{} ({created} created, {alive} {still} at the end), ranked by those {still}:",
                kind.noun()
            );
        } else {
            let _ = writeln!(text, "\n{} ({created} created):", kind.noun());
        }
        for (name, (weight, count, states, example)) in ranked.iter().take(TOP) {
            let share = if total > 0 {
                *weight as f64 * 100.0 / total as f64
            } else {
                0.0
            };
            let _ = write!(
                text,
                "{share:>5.1}% {weight:>8}  {name}  (pid {}",
                example.pid
            );
            if by_alive {
                let _ = write!(text, "; {count} created");
            }
            let mut states = states.clone();
            states.sort_by_key(|s| std::cmp::Reverse(s.1));
            for (state, n) in states.iter().take(3) {
                let _ = write!(text, "; {n} {}", state.as_str());
            }
            text.push_str(")\n");
            let how = if example.scanned { " (scanned)" } else { "" };
            let _ = writeln!(text, "                   stack{how}:");
            for frame in &example.frames {
                let _ = writeln!(text, "                   {}", frame.line());
            }
        }
        if let Some(example) = unnamed_example {
            let _ = writeln!(
                text,
                "  {unnamed} with no named frame outside the C library and the runtime (no \
                 stack, or one cut short by code built without frame pointers), such as:"
            );
            for frame in &example.frames {
                let _ = writeln!(text, "                   {}", frame.line());
            }
        }
        let go_scheduler = unnamed_example.is_some_and(|e| {
            e.frames
                .iter()
                .any(|f| f.symbol.as_deref() == Some("runtime.newm"))
        });
        if *kind == Kind::Thread && go_scheduler {
            let _ = writeln!(
                text,
                "  Go starts OS threads from its scheduler (runtime.newm), not from the code \
                 that needs them: OS threads of a Go program grow with goroutines locked to \
                 their thread (runtime.LockOSThread) or blocked in system calls or cgo. The \
                 goroutine dump (pprof_url) shows which goroutines those are."
            );
        }
        // A site behind less than a quarter of them is no answer: no headline.
        let leading = ranked
            .first()
            .filter(|(_, (w, ..))| w * 4 >= total && *w > 0);
        if let Some((name, (w, _, states, _))) = leading {
            if headline
                .as_ref()
                .is_none_or(|(best, _)| (by_alive, total) > *best)
            {
                let share = *w as f64 * 100.0 / total as f64;
                let line = if by_alive {
                    let mut line = format!(
                        "{share:.0}% of the {total} new {} {still} after {seconds:.0} s were {} \
                         from {name}",
                        kind.noun(),
                        kind.verb()
                    );
                    // Incident 001's sign: the peer hung up and nobody closed them.
                    let close_wait = states
                        .iter()
                        .find(|(s, _)| *s == TcpState::CloseWait)
                        .map_or(0, |(_, n)| *n);
                    if close_wait * 2 >= *w && close_wait > 0 {
                        let _ = write!(line, ", {close_wait} of them in CLOSE_WAIT");
                    }
                    line
                } else {
                    format!(
                        "{share:.0}% of new {} were {} from {name}",
                        kind.noun(),
                        kind.verb()
                    )
                };
                headline = Some(((by_alive, total), line));
            }
        }
    }
    if all > 0 && shallow * 2 > all {
        let _ = writeln!(
            text,
            "\nmost stacks ({shallow} of {all} creations) end after one or two frames: the \
             code is likely built without frame pointers, so the kernel cannot walk past it. \
             Rebuild with -fno-omit-frame-pointer (C, C++) or -C force-frame-pointers=yes \
             (Rust) to see the creation sites; Go keeps frame pointers."
        );
    }
    if scanned > 0 {
        let _ = writeln!(
            text,
            "\n{scanned} of {all} creations had a stack the kernel could not walk along frame \
             pointers (code built without them: Debian's C library, assembly stubs): their \
             frames were found by scanning the stack for return addresses, marked (scanned). \
             A scan can include a stale return address: read those frames as likely, not \
             certain."
        );
    }
    if traced.untracked > 0 {
        let _ = writeln!(
            text,
            "\n{} creations were not followed to the end (too many to remember).",
            traced.untracked
        );
    }
    Creation {
        text,
        headline: headline.map(|(_, h)| h),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(symbol: &str, module: &str) -> Frame {
        Frame {
            addr: 0x1000,
            symbol: Some(symbol.into()),
            module: Some(module.into()),
            place: None,
        }
    }

    #[test]
    fn the_site_is_the_innermost_frame_outside_the_c_library_and_runtimes() {
        let leak = vec![
            frame("__open64", "libc.so.6"),
            frame("leak_log_file", "leaky"),
            frame("handle_request", "leaky"),
            frame("main", "leaky"),
            frame("__libc_start_call_main", "libc.so.6"),
        ];
        let other = vec![frame("open", "libc.so.6"), frame("load_config", "leaky")];
        let thread = vec![frame("clone3", "libc.so.6"), frame("spawn_worker", "leaky")];
        let traced = Traced {
            pids: vec![42],
            seconds: 10.2,
            events: 104,
            dropped: 0,
            lost: 0,
            untracked: 0,
            notes: Vec::new(),
            sites: vec![
                Site {
                    pid: 42,
                    kind: Kind::File,
                    count: 97,
                    frames: leak,
                    scanned: false,
                    alive: 0,
                    states: Vec::new(),
                },
                Site {
                    pid: 42,
                    kind: Kind::File,
                    count: 3,
                    frames: other,
                    scanned: false,
                    alive: 0,
                    states: Vec::new(),
                },
                Site {
                    pid: 42,
                    kind: Kind::Thread,
                    count: 4,
                    frames: thread,
                    scanned: false,
                    alive: 0,
                    states: Vec::new(),
                },
            ],
        };
        let fds = summarise(&traced, Some(&Resource::Fds));
        assert_eq!(
            fds.headline.as_deref(),
            Some("97% of new files were opened from leak_log_file <- handle_request <- main")
        );
        assert!(fds.text.contains("files (100 created):"), "{}", fds.text);
        assert!(!fds.text.contains("threads ("), "{}", fds.text);
        assert!(
            fds.text.contains("  3.0%        3  load_config"),
            "{}",
            fds.text
        );
        let threads = summarise(&traced, Some(&Resource::Threads));
        assert_eq!(
            threads.headline.as_deref(),
            Some("100% of new threads were started from spawn_worker")
        );
        assert_eq!(Kind::mask_for(Some(&Resource::Threads)), 1);
        assert_eq!(Kind::mask_for(Some(&Resource::Tcp)), 0b11000);
        assert_eq!(Kind::mask_for(None), 0b11_1111_1111);
        assert!(Kind::ALL.iter().all(|k| Kind::from_code(k.code()) == *k));
        // Every kind: the headline is the kind with the most creations.
        assert!(summarise(&traced, None)
            .headline
            .unwrap()
            .contains("new files"));
        // Most stacks of two frames or fewer: said.
        assert!(threads.text.contains("built without frame pointers"));
        assert!(!fds.text.contains("most stacks"));
    }

    #[test]
    fn nothing_seen_and_stacks_without_names_are_said() {
        let traced = Traced {
            pids: vec![1, 2],
            seconds: 5.0,
            events: 9,
            dropped: 7,
            lost: 0,
            untracked: 0,
            notes: Vec::new(),
            sites: vec![Site {
                pid: 1,
                kind: Kind::Socket,
                count: 2,
                frames: vec![frame("socket", "libc.so.6")],
                scanned: false,
                alive: 0,
                states: Vec::new(),
            }],
        };
        let tcp = summarise(&traced, Some(&Resource::Tcp));
        assert!(tcp.headline.is_none());
        assert!(
            tcp.text.contains("2 with no named frame outside"),
            "{}",
            tcp.text
        );
        assert!(
            tcp.text.contains("2 creations counted, 7 more not sent"),
            "{}",
            tcp.text
        );
        assert!(tcp.text.starts_with("eBPF trace of pid 1, 2 for 5 s"));
        let threads = summarise(&traced, Some(&Resource::Threads));
        assert!(threads.text.contains("no creation of threads was seen"));
        assert!(threads.headline.is_none());
    }

    #[test]
    fn a_kind_with_creations_still_open_heads_one_whose_creations_all_closed() {
        // Incident 001 in miniature, as one CI run saw it: 139 sockets made and all still
        // open, 140 connections accepted and all closed again.
        let site = |kind, name: &str, count, alive| Site {
            pid: 9,
            kind,
            count,
            frames: vec![frame("socket", "libc.so.6"), frame(name, "svc")],
            scanned: false,
            alive,
            states: Vec::new(),
        };
        let traced = Traced {
            pids: vec![9],
            seconds: 3.0,
            events: 279,
            dropped: 0,
            lost: 0,
            untracked: 0,
            notes: Vec::new(),
            sites: vec![
                site(Kind::Accept, "serve", 140, 0),
                site(Kind::Socket, "Pool::get", 139, 139),
            ],
        };
        let creation = summarise(&traced, Some(&Resource::Sockets));
        assert_eq!(
            creation.headline.as_deref(),
            Some("100% of the 139 new sockets still open after 3 s were created from Pool::get")
        );
    }

    #[test]
    fn what_is_still_open_at_the_end_ranks_the_sites() {
        let site = |name: &str, count, alive, states: Vec<(TcpState, u64)>| Site {
            pid: 9,
            kind: Kind::Socket,
            count,
            frames: vec![frame("socket", "libc.so.6"), frame(name, "svc")],
            scanned: false,
            alive,
            states,
        };
        let traced = Traced {
            pids: vec![9],
            seconds: 30.0,
            events: 300,
            dropped: 0,
            lost: 0,
            untracked: 0,
            notes: vec!["pid 9 exited".into()],
            sites: vec![
                // Churn: many created, all closed again.
                site("health_probe", 250, 0, Vec::new()),
                // The leak: fewer created, all still open, most in CLOSE_WAIT.
                site("fetch_profile", 50, 48, vec![(TcpState::CloseWait, 41)]),
            ],
        };
        let creation = summarise(&traced, Some(&Resource::Tcp));
        assert_eq!(
            creation.headline.as_deref(),
            Some(
                "100% of the 48 new sockets still open after 30 s were created from \
                 fetch_profile, 41 of them in CLOSE_WAIT"
            )
        );
        assert!(
            creation
                .text
                .contains("sockets (300 created, 48 still open at the end)"),
            "{}",
            creation.text
        );
        assert!(
            creation
                .text
                .contains("fetch_profile  (pid 9; 50 created; 41 CLOSE_WAIT)"),
            "{}",
            creation.text
        );
        assert!(creation.text.contains("note: pid 9 exited"));
    }
}
