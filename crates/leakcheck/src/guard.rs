//! The per-test guard: an inventory of this process when the guard is made, compared with
//! one taken when it is checked, reporting every thread, fd and socket that appeared and did
//! not go away within the settle time.
//!
//! This is incident 001's before/after leased-connection check, generalised: instead of
//! one pool's counter, everything the process holds, item by item.

use crate::inventory::{group_of, Fd, Inventory, Reader};
use crate::rules::{Class, Finding, Ignore, Key};
use crate::settle::{FIRST_DELAY, MAX_DELAY};
use std::collections::BTreeSet;
use std::fmt;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

/// What to check and how long to wait; build a [`Guard`] (or run [`Config::repeat`] or a
/// [`crate::Suite`]) from it.
///
/// ```
/// use std::time::Duration;
///
/// let guard = leakcheck::Config::new()
///     .settle(Duration::from_millis(500))
///     .ignore("threads:tokio-runtime-*")
///     .sockets(false)
///     .guard();
/// // ... the code under test ...
/// guard.check().expect("no leaks");
/// ```
#[derive(Debug, Clone)]
pub struct Config {
    pub(crate) settle: Duration,
    pub(crate) threads: bool,
    pub(crate) fds: bool,
    pub(crate) sockets: bool,
    pub(crate) ignores: Vec<Ignore>,
    pub(crate) warmup: usize,
    pub(crate) rounds: usize,
    pub(crate) exclusive: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            settle: Duration::from_secs(1),
            threads: true,
            fds: true,
            sockets: true,
            ignores: Vec::new(),
            warmup: 2,
            rounds: 5,
            exclusive: true,
        }
    }
}

impl Config {
    /// Threads, fds and sockets checked; 1 s settle; 2 warm-up and 5 measured rounds for
    /// [`Config::repeat`].
    pub fn new() -> Config {
        Config::default()
    }

    /// How long a check waits for resources to go away (threads still exiting, sockets still
    /// closing) before it reports them. Clean code is never slowed down: the check returns
    /// as soon as nothing is left over.
    pub fn settle(mut self, settle: Duration) -> Config {
        self.settle = settle;
        self
    }

    /// Check threads (on by default).
    pub fn threads(mut self, on: bool) -> Config {
        self.threads = on;
        self
    }

    /// Check fds that are not sockets: files, pipes, eventfds, ... (on by default).
    pub fn fds(mut self, on: bool) -> Config {
        self.fds = on;
        self
    }

    /// Check sockets (on by default). Turning this off also skips resolving sockets to
    /// their TCP state and peer, so no netlink socket is opened.
    pub fn sockets(mut self, on: bool) -> Config {
        self.sockets = on;
        self
    }

    /// Accepts known, intended resources, with the rule syntax of `leakwatch check
    /// --ignore`: `threads:PATTERN` matches a thread's name or its group (`worker-#`),
    /// `fds:PATTERN` an fd's kind (`file`, `pipe`) or target (`/var/log/*`),
    /// `sockets:PATTERN` a socket's state (`CLOSE_WAIT`), its peer row
    /// (`ESTABLISHED -> 127.0.0.1:5432`) or family (`udp`, `unix`). `*` and `?` are
    /// wildcards.
    ///
    /// # Panics
    /// On a malformed rule: it is a typo in a test, better loud than silently ignored.
    pub fn ignore(mut self, rule: &str) -> Config {
        let rule = rule
            .parse()
            .unwrap_or_else(|error| panic!("leakcheck: bad ignore rule: {error}"));
        self.ignores.push(rule);
        self
    }

    /// Ignores threads whose name or group matches `pattern` (`ignore("threads:PATTERN")`).
    pub fn ignore_threads(self, pattern: &str) -> Config {
        self.ignore(&format!("threads:{pattern}"))
    }

    /// Rounds run before the baseline of [`Config::repeat`], so that one-time
    /// initialisation (a lazily started pool, a cache filled once) is not growth.
    pub fn warmup(mut self, rounds: usize) -> Config {
        self.warmup = rounds;
        self
    }

    /// Measured rounds of [`Config::repeat`] (at least 1; 5 by default).
    pub fn rounds(mut self, rounds: usize) -> Config {
        self.rounds = rounds.max(1);
        self
    }

    /// Takes the baseline now. See [`Guard`].
    pub fn guard(self) -> Guard {
        Guard::with_config(self)
    }

    /// For a whole-suite check, which must not hold the per-test lock while tests that may
    /// themselves take guards run.
    pub(crate) fn shared(mut self) -> Config {
        self.exclusive = false;
        self
    }

    pub(crate) fn reader(&self) -> Reader {
        if self.sockets {
            Reader::new()
        } else {
            Reader::without_sockets()
        }
    }

    fn ignored(&self, class: Class, names: &[&str], keys: &[Key]) -> bool {
        self.ignores.iter().any(|rule| {
            names.iter().any(|name| rule.matches_name(class, name))
                || keys.iter().any(|key| rule.matches(key))
        })
    }
}

/// A resource that appeared and stayed.
#[derive(Debug, Clone, PartialEq)]
pub enum Leaked {
    Thread {
        tid: u32,
        name: String,
    },
    /// An fd that is not a socket.
    Fd {
        fd: u32,
        detail: Fd,
    },
    Socket {
        fd: u32,
        detail: Fd,
    },
}

impl Leaked {
    pub fn class(&self) -> Class {
        match self {
            Leaked::Thread { .. } => Class::Threads,
            Leaked::Fd { .. } => Class::Fds,
            Leaked::Socket { .. } => Class::Sockets,
        }
    }
}

impl fmt::Display for Leaked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Leaked::Thread { tid, name } => {
                write!(f, "thread {name:?} (tid {tid}, group {})", group_of(name))
            }
            Leaked::Fd { fd, detail } | Leaked::Socket { fd, detail } => {
                write!(f, "fd {fd} -> {detail}")
            }
        }
    }
}

/// Items of `after` that were not in `before` (a thread id, or an fd number holding a
/// different target) and that count toward `key`: the evidence for a growing count.
pub fn evidence(key: &Key, before: &Inventory, after: &Inventory) -> Vec<Leaked> {
    new_items(before, after)
        .into_iter()
        .filter(|item| match item {
            Leaked::Thread { name, .. } => {
                key.class == Class::Threads && key.name == group_of(name)
            }
            Leaked::Fd { detail, .. } | Leaked::Socket { detail, .. } => {
                detail.keys().contains(key)
            }
        })
        .collect()
}

/// Every thread and fd of `after` that `before` did not have.
pub fn new_items(before: &Inventory, after: &Inventory) -> Vec<Leaked> {
    let mut items = Vec::new();
    for (tid, name) in &after.threads {
        if !before.threads.contains_key(tid) {
            items.push(Leaked::Thread {
                tid: *tid,
                name: name.clone(),
            });
        }
    }
    for (fd, detail) in &after.fds {
        let existed = before
            .fds
            .get(fd)
            .is_some_and(|old| old.target == detail.target);
        if existed {
            continue;
        }
        let (fd, detail) = (*fd, detail.clone());
        items.push(
            if detail.socket.is_some() || detail.target.starts_with("socket:") {
                Leaked::Socket { fd, detail }
            } else {
                Leaked::Fd { fd, detail }
            },
        );
    }
    items
}

/// Takes an inventory of this process when made; [`Guard::check`] fails if threads, fds or
/// sockets appeared since and do not go away within the settle time.
///
/// ```
/// let guard = leakcheck::Guard::new();
/// let worker = std::thread::spawn(|| 6 * 7);
/// assert_eq!(worker.join().unwrap(), 42);
/// guard.check().expect("the joined thread is gone");
/// ```
///
/// # One guard at a time
/// A guard sees the whole process, so it cannot tell which parallel test opened what. Guards
/// therefore take a process-wide lock: guarded tests run one at a time even under cargo's
/// parallel test runner, and the threads of guarded tests waiting for their turn are not
/// counted. Tests *without* a guard in the same binary still run alongside and can be
/// blamed for their resources: keep guarded tests in their own integration-test file (its
/// own binary), guard every test in it, and make the guard the first thing each test does.
/// A guard created while the same thread holds one nests without locking.
#[must_use = "call .check() or .assert() at the end of the guarded code"]
pub struct Guard {
    config: Config,
    reader: Reader,
    baseline: Inventory,
    _turn: Option<Turn>,
}

impl Default for Guard {
    fn default() -> Self {
        Guard::new()
    }
}

impl Guard {
    /// A guard with the default [`Config`].
    ///
    /// # Panics
    /// If `/proc/self` cannot be read (not Linux, or no procfs mounted): a leak check that
    /// silently checks nothing would be worse.
    pub fn new() -> Guard {
        Config::default().guard()
    }

    fn with_config(config: Config) -> Guard {
        let turn = if config.exclusive { Turn::take() } else { None };
        // The reader (and its netlink socket) exists before the baseline, so it is part
        // of it.
        let mut reader = config.reader();
        let baseline = reader
            .read(std::process::id())
            .unwrap_or_else(|error| panic!("leakcheck: cannot read /proc/self: {error}"));
        Guard {
            config,
            reader,
            baseline,
            _turn: turn,
        }
    }

    /// What this process held when the guard was made.
    pub fn baseline(&self) -> &Inventory {
        &self.baseline
    }

    /// Waits up to the settle time for everything that appeared since the guard was made to
    /// go away; returns the [`Report`] of what did not.
    pub fn check(mut self) -> Result<(), Report> {
        let started = Instant::now();
        let mut delay = FIRST_DELAY;
        loop {
            let leaked = self.leaked_now();
            if leaked.is_empty() {
                return Ok(());
            }
            let remaining = self.config.settle.saturating_sub(started.elapsed());
            if remaining.is_zero() {
                return Err(Report {
                    leaked,
                    growing: Vec::new(),
                    waited: started.elapsed(),
                });
            }
            std::thread::sleep(delay.min(remaining));
            delay = (delay * 2).min(MAX_DELAY);
        }
    }

    /// Like [`Guard::check`], but panics with the report: for `#[test]` functions.
    #[track_caller]
    pub fn assert(self) {
        if let Err(report) = self.check() {
            panic!("{report}");
        }
    }

    fn leaked_now(&mut self) -> Vec<Leaked> {
        let now = match self.reader.read(std::process::id()) {
            Ok(now) => now,
            Err(error) => panic!("leakcheck: cannot read /proc/self: {error}"),
        };
        let waiting = waiting_threads();
        new_items(&self.baseline, &now)
            .into_iter()
            .filter(|item| match item {
                Leaked::Thread { tid, name } => {
                    self.config.threads
                        && !waiting.contains(tid)
                        && !self.config.ignored(
                            Class::Threads,
                            &[name, &group_of(name)],
                            &[Key::thread_group(&group_of(name))],
                        )
                }
                Leaked::Fd { detail, .. } => {
                    self.config.fds
                        && !self.config.ignored(
                            Class::Fds,
                            &[&detail.target, detail.kind.as_str()],
                            &detail.keys(),
                        )
                }
                Leaked::Socket { detail, .. } => {
                    self.config.sockets && !self.config.ignored(Class::Sockets, &[], &detail.keys())
                }
            })
            .collect()
    }
}

/// Runs `code` under a [`Guard`] with the default [`Config`] and panics with the report if
/// it leaked; returns what `code` returned.
///
/// ```
/// let total = leakcheck::assert_no_leaks(|| {
///     let file = tempfile::tempfile().unwrap();
///     drop(file);
///     1 + 1
/// });
/// assert_eq!(total, 2);
/// ```
#[track_caller]
pub fn assert_no_leaks<T>(code: impl FnOnce() -> T) -> T {
    let guard = Guard::new();
    let value = code();
    guard.assert();
    value
}

/// What a check found: resources that appeared and stayed (a guard, or the evidence of a
/// repeat), and counts that grew round after round (a repeat).
#[derive(Debug, Clone)]
pub struct Report {
    pub leaked: Vec<Leaked>,
    pub growing: Vec<Finding>,
    /// How long the check waited for the leftovers to go away.
    pub waited: Duration,
}

impl std::error::Error for Report {}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.growing.is_empty() {
            writeln!(
                f,
                "leakcheck: {} grew round after round:",
                plural(self.growing.len(), "resource")
            )?;
            let mut shown: Vec<Vec<&Leaked>> = Vec::new();
            for finding in &self.growing {
                writeln!(f, "  {} {}", finding.key, finding.describe())?;
                let evidence: Vec<&Leaked> = self
                    .leaked
                    .iter()
                    .filter(|item| match item {
                        Leaked::Thread { name, .. } => {
                            finding.key == Key::thread_group(&group_of(name))
                        }
                        Leaked::Fd { detail, .. } | Leaked::Socket { detail, .. } => {
                            detail.keys().contains(&finding.key)
                        }
                    })
                    .collect();
                if !evidence.is_empty() && shown.contains(&evidence) {
                    writeln!(f, "      (the same as above)")?;
                    continue;
                }
                write_items(f, &evidence, "      ")?;
                shown.push(evidence);
            }
            return Ok(());
        }
        writeln!(
            f,
            "leakcheck: {} appeared and {} still there after {:.1}s:",
            plural(self.leaked.len(), "resource"),
            if self.leaked.len() == 1 {
                "was"
            } else {
                "were"
            },
            self.waited.as_secs_f64()
        )?;
        for class in [Class::Threads, Class::Fds, Class::Sockets] {
            let items: Vec<&Leaked> = self.leaked.iter().filter(|i| i.class() == class).collect();
            if !items.is_empty() {
                writeln!(f, "  {} ({} new):", class.as_str(), items.len())?;
                write_items(f, &items, "    ")?;
            }
        }
        Ok(())
    }
}

/// At most this many items per resource, so a leak of 30,000 threads stays readable.
const SHOWN: usize = 10;

fn write_items(f: &mut fmt::Formatter<'_>, items: &[&Leaked], indent: &str) -> fmt::Result {
    for item in items.iter().take(SHOWN) {
        writeln!(f, "{indent}{item}")?;
    }
    if items.len() > SHOWN {
        writeln!(f, "{indent}... and {} more", items.len() - SHOWN)?;
    }
    Ok(())
}

fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// The process-wide turn of guarded code: who holds it, and the threads waiting for it
/// (by kernel thread id, so a check can leave them out).
struct Exclusive {
    owner: Mutex<Option<ThreadId>>,
    released: Condvar,
    waiting: Mutex<BTreeSet<u32>>,
}

static EXCLUSIVE: Exclusive = Exclusive {
    owner: Mutex::new(None),
    released: Condvar::new(),
    waiting: Mutex::new(BTreeSet::new()),
};

/// A test that panicked while holding a lock poisons it; the data (who owns the turn) is
/// still right, and the next test must be able to run.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn gettid() -> u32 {
    // SAFETY: gettid takes no arguments and cannot fail.
    unsafe { libc::syscall(libc::SYS_gettid) as u32 }
}

fn waiting_threads() -> BTreeSet<u32> {
    lock(&EXCLUSIVE.waiting).clone()
}

/// Holding the turn; released on drop (also when the test panics and unwinds).
pub(crate) struct Turn;

impl Turn {
    /// Waits for the turn; `None` when this thread already holds it (a nested guard).
    pub(crate) fn take() -> Option<Turn> {
        let me = std::thread::current().id();
        let mut owner = lock(&EXCLUSIVE.owner);
        if *owner == Some(me) {
            return None;
        }
        if owner.is_some() {
            let tid = gettid();
            lock(&EXCLUSIVE.waiting).insert(tid);
            while owner.is_some() {
                owner = EXCLUSIVE
                    .released
                    .wait(owner)
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
            }
            lock(&EXCLUSIVE.waiting).remove(&tid);
        }
        *owner = Some(me);
        Some(Turn)
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        *lock(&EXCLUSIVE.owner) = None;
        EXCLUSIVE.released.notify_one();
    }
}
