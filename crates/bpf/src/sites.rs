//! What a trace found, ranked by creation site and rendered as `creation.txt`; no I/O.

use leakwatch_model::Resource;
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
}

/// What one trace counted.
#[derive(Debug, Clone, PartialEq)]
pub struct Traced {
    pub pids: Vec<u32>,
    pub seconds: f64,
    /// Creations counted.
    pub events: u64,
    /// Creations not counted because the kernel's table of sites was full.
    pub lost: u64,
    pub sites: Vec<Site>,
}

/// Callers shown after the creation site in its one-line name.
const CALLERS: usize = 2;
/// Sites listed per kind.
const TOP: usize = 10;

/// The creation site of a stack: its innermost frame outside the platform and up to
/// `CALLERS` callers outside it; `None` when the stack has no frame outside it.
fn site_name(frames: &[Frame]) -> Option<String> {
    let mut outside = frames.iter().filter(|f| !f.is_platform());
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

/// Ranks the sites of the kinds that make `resource` grow (every kind when `None`).
pub fn summarise(traced: &Traced, resource: Option<&Resource>) -> Creation {
    let pids: Vec<String> = traced.pids.iter().map(u32::to_string).collect();
    let mut text = format!(
        "eBPF trace of pid {} for {:.0} s (raw tracepoint sys_exit: clone, clone3, fork and \
         the calls that return a new fd; user stacks)\n{} creations counted",
        pids.join(", "),
        traced.seconds,
        traced.events
    );
    if traced.lost > 0 {
        let _ = write!(
            text,
            ", {} not counted (the kernel's table of sites was full)",
            traced.lost
        );
    }
    text.push('\n');
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
    let mut headline: Option<(u64, String)> = None;
    let mut shallow = 0u64;
    let mut scanned = 0u64;
    let mut all = 0u64;
    for (kind, sites) in &by_kind {
        let total: u64 = sites.iter().map(|s| s.count).sum();
        let mut named: BTreeMap<String, (u64, &Site)> = BTreeMap::new();
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
                    let entry = named.entry(name).or_insert((0, site));
                    entry.0 += site.count;
                    if site.count > entry.1.count {
                        entry.1 = site;
                    }
                }
                None => {
                    unnamed += site.count;
                    if unnamed_example.is_none_or(|e| site.count > e.count) {
                        unnamed_example = Some(site);
                    }
                }
            }
        }
        let mut ranked: Vec<(String, u64, &Site)> =
            named.into_iter().map(|(k, (n, s))| (k, n, s)).collect();
        ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let _ = writeln!(text, "\n{} ({total}):", kind.noun());
        for (name, n, example) in ranked.iter().take(TOP) {
            let share = *n as f64 * 100.0 / total as f64;
            let _ = writeln!(text, "{share:>5.1}% {n:>8}  {name}  (pid {})", example.pid);
            let how = if example.scanned { " (scanned)" } else { "" };
            let _ = writeln!(text, "                   stack{how}:");
            for frame in &example.frames {
                let _ = writeln!(text, "                   {}", frame.line());
            }
        }
        if let Some(example) = unnamed_example {
            let _ = writeln!(
                text,
                "  {unnamed} with no frame outside the C library and the runtime (no stack, or \
                 one cut short by code built without frame pointers), such as:"
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
        // A site behind less than a quarter of the creations is no answer: no headline.
        let leading = ranked.first().filter(|(_, n, _)| n * 4 >= total);
        if let Some((name, n, _)) = leading {
            if headline.as_ref().is_none_or(|(best, _)| total > *best) {
                let share = *n as f64 * 100.0 / total as f64;
                headline = Some((
                    total,
                    format!(
                        "{share:.0}% of new {} were {} from {name}",
                        kind.noun(),
                        kind.verb()
                    ),
                ));
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
             pointers (code built without them: Debian's C library, assembly stubs): their frames were \
             found by scanning the stack for return addresses, marked (scanned). A scan can \
             include a stale return address: read those frames as likely, not certain."
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
            lost: 0,
            sites: vec![
                Site {
                    pid: 42,
                    kind: Kind::File,
                    count: 97,
                    frames: leak,
                    scanned: false,
                },
                Site {
                    pid: 42,
                    kind: Kind::File,
                    count: 3,
                    frames: other,
                    scanned: false,
                },
                Site {
                    pid: 42,
                    kind: Kind::Thread,
                    count: 4,
                    frames: thread,
                    scanned: false,
                },
            ],
        };
        let fds = summarise(&traced, Some(&Resource::Fds));
        assert_eq!(
            fds.headline.as_deref(),
            Some("97% of new files were opened from leak_log_file <- handle_request <- main")
        );
        assert!(fds.text.contains("files (100):"), "{}", fds.text);
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
            events: 2,
            lost: 7,
            sites: vec![Site {
                pid: 1,
                kind: Kind::Socket,
                count: 2,
                frames: vec![frame("socket", "libc.so.6")],
                scanned: false,
            }],
        };
        let tcp = summarise(&traced, Some(&Resource::Tcp));
        assert!(tcp.headline.is_none());
        assert!(tcp.text.contains("2 with no frame outside"), "{}", tcp.text);
        assert!(tcp.text.contains("7 not counted"), "{}", tcp.text);
        assert!(tcp.text.starts_with("eBPF trace of pid 1, 2 for 5 s"));
        let threads = summarise(&traced, Some(&Resource::Threads));
        assert!(threads.text.contains("no creation of threads was seen"));
        assert!(threads.headline.is_none());
    }
}
