//! [`Program`]: one run of a configured program, from argv to [`Finished`].

use std::borrow::Cow;
use std::fmt;
use std::io::{Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::group::{kill_group, own_group};

/// How often the wait loop looks at the child, the clock and the cancel flag.
const POLL: Duration = Duration::from_millis(10);

/// Replaces `{name}` placeholders in every argument. Unknown placeholders stay as written.
/// Per argument, so a value with spaces or quotes stays one argument.
pub fn expand(argv: &[String], values: &[(&str, &str)]) -> Vec<String> {
    argv.iter()
        .map(|arg| {
            let mut arg = arg.clone();
            for (name, value) in values {
                arg = arg.replace(&format!("{{{name}}}"), value);
            }
            arg
        })
        .collect()
}

/// Which bytes of an output stream to keep once it is longer than the cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// The first bytes (evidence: what the program said first, e.g. a thread dump's top).
    Head,
    /// The last bytes (a failure message: what it said just before it gave up).
    Tail,
}

/// The kept part of an output stream, and how many bytes beyond the cap were dropped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Captured {
    pub bytes: Vec<u8>,
    pub dropped: u64,
}

impl Captured {
    fn push(&mut self, data: &[u8], cap: usize, keep: Keep) {
        match keep {
            Keep::Head => {
                let room = cap.saturating_sub(self.bytes.len());
                let kept = data.len().min(room);
                self.bytes.extend_from_slice(&data[..kept]);
                self.dropped += (data.len() - kept) as u64;
            }
            Keep::Tail => {
                self.bytes.extend_from_slice(data);
                let excess = self.bytes.len().saturating_sub(cap);
                self.bytes.drain(..excess);
                self.dropped += excess as u64;
            }
        }
    }

    /// The kept bytes as text (invalid UTF-8 replaced).
    pub fn text(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.bytes)
    }
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    /// It exited with this code.
    Code(i32),
    /// A signal it did not catch ended it (not ours: ours are [`Exit::TimedOut`] and
    /// [`Exit::Cancelled`]).
    Signal(i32),
    /// It ran past the timeout; its process group was killed.
    TimedOut,
    /// The caller gave up (its cancel flag was set); its process group was killed.
    Cancelled,
    /// It could not be started (the OS error, or "empty command").
    NotStarted(String),
    /// Waiting for it failed; its process group was killed.
    WaitFailed(String),
}

/// `exit status: 3`, `signal: 9 (SIGKILL)` (std's wording), or what else happened.
impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Exit::Code(code) => write!(f, "exit status: {code}"),
            Exit::Signal(signal) => write!(f, "{}", ExitStatus::from_raw(*signal)),
            Exit::TimedOut => f.write_str("timed out"),
            Exit::Cancelled => f.write_str("cancelled"),
            Exit::NotStarted(error) => write!(f, "cannot start: {error}"),
            Exit::WaitFailed(error) => write!(f, "cannot wait for it: {error}"),
        }
    }
}

impl From<ExitStatus> for Exit {
    fn from(status: ExitStatus) -> Exit {
        match (status.code(), status.signal()) {
            (Some(code), _) => Exit::Code(code),
            (None, Some(signal)) => Exit::Signal(signal),
            // Stopped or continued: `wait` does not report those.
            (None, None) => Exit::WaitFailed(format!("{status}")),
        }
    }
}

/// What one run of a [`Program`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    /// `argv[0]`, for messages.
    pub program: String,
    pub exit: Exit,
    /// Its stdout; with [`Program::merged`], stdout and stderr interleaved as they came.
    pub stdout: Captured,
    /// Its stderr; empty with [`Program::merged`].
    pub stderr: Captured,
    pub elapsed: Duration,
    /// The timeout it ran under.
    pub timeout: Duration,
}

impl Finished {
    /// Exit code 0 (so not timed out, cancelled or failed to start).
    pub fn success(&self) -> bool {
        self.exit == Exit::Code(0)
    }

    /// `exit 0 in 0.31s`, `killed after the 30s timeout`, `cannot start: PROGRAM: ...`,
    /// with `; output cut at N bytes (M more dropped)` when the cap was reached.
    pub fn describe(&self) -> String {
        let secs = self.elapsed.as_secs_f64();
        let mut text = match &self.exit {
            Exit::NotStarted(error) if self.program.is_empty() => {
                return format!("cannot start: {error}")
            }
            Exit::NotStarted(error) => return format!("cannot start: {}: {error}", self.program),
            Exit::TimedOut => format!(
                "killed after the {} timeout",
                humantime::format_duration(self.timeout)
            ),
            Exit::Code(code) => format!("exit {code} in {secs:.2}s"),
            Exit::Signal(signal) => format!("killed by signal {signal} after {secs:.2}s"),
            Exit::Cancelled => format!("killed after {secs:.2}s: cancelled"),
            Exit::WaitFailed(error) => format!("killed after {secs:.2}s: cannot wait: {error}"),
        };
        let dropped = self.stdout.dropped + self.stderr.dropped;
        if dropped > 0 {
            text.push_str(&format!(
                "; output cut at {} bytes ({dropped} more dropped)",
                self.stdout.bytes.len() + self.stderr.bytes.len(),
            ));
        }
        text
    }
}

/// A configured program to run: argv (never a shell), what it gets on stdin, how long it
/// may take and how much of its output to keep.
///
/// It runs in a process group of its own. At the timeout, when the caller's cancel flag is
/// set ([`Program::run_until`]), or if the caller unwinds while it runs, the whole group
/// gets SIGKILL, so children it started die with it. After a normal exit, what it left
/// running in its group is killed too only with [`Program::kill_leftovers`] (a restart
/// command may well start a service that must stay up).
#[derive(Debug, Clone)]
pub struct Program {
    argv: Vec<String>,
    env: Vec<(String, String)>,
    stdin: Option<Vec<u8>>,
    timeout: Duration,
    cap: usize,
    keep: Keep,
    merged: bool,
    die_with_parent: bool,
    kill_leftovers: bool,
    grace: Duration,
    /// Run as this (uid, gid), supplementary groups dropped (needs root).
    user: Option<(u32, u32)>,
    /// Clear the ambient capabilities it would inherit.
    no_ambient_caps: bool,
}

impl Program {
    /// `argv[0]` is looked up in `PATH`; the rest are its arguments, verbatim. Defaults:
    /// stdin from /dev/null, 64 KiB of each stream kept from the start, stdout and stderr
    /// apart, 500 ms for the output of an ended program to arrive.
    pub fn new(argv: Vec<String>, timeout: Duration) -> Program {
        Program {
            argv,
            env: Vec::new(),
            stdin: None,
            timeout,
            cap: 64 * 1024,
            keep: Keep::Head,
            merged: false,
            die_with_parent: false,
            kill_leftovers: false,
            grace: Duration::from_millis(500),
            user: None,
            no_ambient_caps: false,
        }
    }

    /// Runs it as `uid`/`gid` with no supplementary groups. From root that also clears
    /// every capability (the kernel does on the switch to a non-zero uid); from another
    /// user it cannot start (`NotStarted`).
    pub fn as_user(mut self, uid: u32, gid: u32) -> Program {
        self.user = Some((uid, gid));
        self
    }

    /// Starts it without the ambient capabilities the caller holds (a unit's
    /// `AmbientCapabilities` are inherited by every program it runs otherwise).
    pub fn no_ambient_caps(mut self) -> Program {
        self.no_ambient_caps = true;
        self
    }

    /// Sets an environment variable for it (the rest is inherited).
    pub fn env(mut self, name: &str, value: &str) -> Program {
        self.env.push((name.to_string(), value.to_string()));
        self
    }

    /// Feeds `bytes` on its stdin, then closes it (instead of /dev/null). A program that
    /// does not read them is not a failure, and cannot make the run hang.
    pub fn stdin(mut self, bytes: Vec<u8>) -> Program {
        self.stdin = Some(bytes);
        self
    }

    /// Keeps at most `cap` bytes per stream (in all, with [`Program::merged`]), still
    /// draining the rest so the program never blocks on a full pipe; the rest is counted.
    pub fn cap(mut self, cap: usize, keep: Keep) -> Program {
        self.cap = cap;
        self.keep = keep;
        self
    }

    /// Collects stdout and stderr into one [`Finished::stdout`], in the order they came.
    pub fn merged(mut self) -> Program {
        self.merged = true;
        self
    }

    /// Has the kernel kill it if the calling thread ends first (see [`crate::own_group`]).
    pub fn die_with_parent(mut self) -> Program {
        self.die_with_parent = true;
        self
    }

    /// After it exits, kills whatever it left running in its process group.
    pub fn kill_leftovers(mut self) -> Program {
        self.kill_leftovers = true;
        self
    }

    /// How long to wait, once it ended, for the rest of its output: a child that escaped
    /// its group may hold the pipes open, and is not waited for longer.
    pub fn grace(mut self, grace: Duration) -> Program {
        self.grace = grace;
        self
    }

    /// Runs it to the end (or the timeout).
    pub fn run(&self) -> Finished {
        self.run_until(&AtomicBool::new(false))
    }

    /// Runs it to the end, the timeout, or until `cancel` is set (e.g. by
    /// [`crate::signals`]), whichever comes first. Blocks the calling thread.
    pub fn run_until(&self, cancel: &AtomicBool) -> Finished {
        let started = Instant::now();
        let program = self.argv.first().cloned().unwrap_or_default();
        let finished = |exit, stdout, stderr| Finished {
            program: program.clone(),
            exit,
            stdout,
            stderr,
            elapsed: started.elapsed(),
            timeout: self.timeout,
        };
        if self.argv.is_empty() {
            let exit = Exit::NotStarted("empty command".into());
            return finished(exit, Captured::default(), Captured::default());
        }
        let mut command = Command::new(&program);
        command
            .args(&self.argv[1..])
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        own_group(&mut command, self.die_with_parent);
        if let Some((uid, gid)) = self.user {
            use std::os::unix::process::CommandExt;
            // std drops the supplementary groups when it switches from root.
            command.uid(uid).gid(gid);
        }
        if self.no_ambient_caps {
            crate::group::clear_ambient_caps(&mut command);
        }
        let child = match command.spawn() {
            Ok(child) => child,
            Err(error) => {
                let exit = Exit::NotStarted(error.to_string());
                return finished(exit, Captured::default(), Captured::default());
            }
        };
        let mut group = Group {
            child,
            reaped: false,
        };
        let stdout = Arc::new(Mutex::new(Captured::default()));
        let stderr = if self.merged {
            Arc::clone(&stdout)
        } else {
            Arc::new(Mutex::new(Captured::default()))
        };
        let readers = [
            self.reader(group.child.stdout.take(), &stdout),
            self.reader(group.child.stderr.take(), &stderr),
        ];
        if let (Some(data), Some(mut pipe)) = (&self.stdin, group.child.stdin.take()) {
            let data = data.clone();
            // Its own thread: a program that does not read its stdin must not hang us. The
            // write ends (EPIPE) when the group is gone and the pipe closes.
            std::thread::spawn(move || {
                let _ = pipe.write_all(&data);
            });
        }
        let exit = group.wait(self.timeout, started, cancel);
        if self.kill_leftovers {
            kill_group(group.child.id());
        }
        // Children of the program may hold the pipes open: give the readers a moment after
        // it ended, then stop waiting for them (they end when the pipes close).
        let deadline = Instant::now() + self.grace;
        for reader in readers.into_iter().flatten() {
            while !reader.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            if reader.is_finished() {
                let _ = reader.join();
            }
        }
        let take = |sink: &Mutex<Captured>| {
            std::mem::take(&mut *sink.lock().unwrap_or_else(|p| p.into_inner()))
        };
        let out = take(&stdout);
        let err = take(&stderr);
        finished(exit, out, err)
    }

    fn reader(
        &self,
        stream: Option<impl Read + Send + 'static>,
        sink: &Arc<Mutex<Captured>>,
    ) -> Option<JoinHandle<()>> {
        let mut stream = stream?;
        let sink = Arc::clone(sink);
        let (cap, keep) = (self.cap, self.keep);
        Some(std::thread::spawn(move || {
            let mut buffer = [0u8; 16 * 1024];
            // Keep draining past the cap, so the program never blocks on a full pipe.
            while let Ok(n) = stream.read(&mut buffer) {
                if n == 0 {
                    break;
                }
                let mut captured = sink.lock().unwrap_or_else(|p| p.into_inner());
                captured.push(&buffer[..n], cap, keep);
            }
        }))
    }
}

/// The running child, as the leader of its process group: killed whole (and reaped) if
/// dropped before it was reaped, so not even a panic in the caller leaves it running.
struct Group {
    child: Child,
    reaped: bool,
}

impl Group {
    fn wait(&mut self, timeout: Duration, started: Instant, cancel: &AtomicBool) -> Exit {
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    self.reaped = true;
                    return status.into();
                }
                Ok(None) => {}
                Err(error) => {
                    self.kill();
                    return Exit::WaitFailed(error.to_string());
                }
            }
            if cancel.load(Ordering::SeqCst) {
                self.kill();
                return Exit::Cancelled;
            }
            if started.elapsed() >= timeout {
                self.kill();
                return Exit::TimedOut;
            }
            std::thread::sleep(POLL);
        }
    }

    fn kill(&mut self) {
        kill_group(self.child.id());
        let _ = self.child.wait();
        self.reaped = true;
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        if !self.reaped {
            self.kill();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    fn run(words: &[&str], timeout: Duration, cap: usize) -> Finished {
        Program::new(argv(words), timeout)
            .cap(cap, Keep::Head)
            .merged()
            .run()
    }

    /// Whether `pid` is gone (or a zombie nobody reaped yet: dead all the same).
    fn gone(pid: u32) -> bool {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => true,
            Ok(stat) => stat
                .rfind(')')
                .and_then(|i| stat[i + 1..].split_whitespace().next())
                .is_some_and(|state| state == "Z" || state == "X"),
        }
    }

    fn eventually(mut done: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if done() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        done()
    }

    #[test]
    fn arguments_are_not_interpreted_by_a_shell() {
        let out = run(
            &["echo", "$HOME; rm -rf /", "`id`"],
            Duration::from_secs(10),
            1024,
        );
        assert!(out.success(), "{out:?}");
        assert_eq!(out.stdout.text(), "$HOME; rm -rf / `id`\n");
    }

    #[test]
    fn placeholders_are_expanded_per_argument() {
        let expanded = expand(
            &argv(&[
                "jcmd",
                "{pid}",
                "GC.heap_dump",
                "{dir}/heap.hprof",
                "{other}",
            ]),
            &[("pid", "42"), ("dir", "/var/x")],
        );
        assert_eq!(
            expanded,
            argv(&["jcmd", "42", "GC.heap_dump", "/var/x/heap.hprof", "{other}"])
        );
    }

    #[test]
    fn a_slow_program_is_killed_with_its_children() {
        // `sh` here is the program under test, started by us without a shell of our own.
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("pid");
        let out = Program::new(
            argv(&[
                "sh",
                "-c",
                "sleep 30 & echo $! > \"$1\"; sleep 30",
                "sh",
                pid_file.to_str().unwrap(),
            ]),
            Duration::from_millis(300),
        )
        .run();
        assert_eq!(out.exit, Exit::TimedOut);
        assert!(!out.success());
        assert!(out.elapsed < Duration::from_secs(5), "{:?}", out.elapsed);
        assert!(out.describe().contains("timeout"));
        let grandchild: u32 = std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(
            eventually(|| gone(grandchild)),
            "{grandchild} outlived the timeout"
        );
    }

    #[test]
    fn a_cancelled_run_is_killed_with_its_children() {
        let cancel = Arc::new(AtomicBool::new(false));
        let setter = {
            let cancel = Arc::clone(&cancel);
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(200));
                cancel.store(true, Ordering::SeqCst);
            })
        };
        let out = Program::new(
            argv(&["sh", "-c", "sleep 30 & sleep 30"]),
            Duration::from_secs(30),
        )
        .run_until(&cancel);
        setter.join().unwrap();
        assert_eq!(out.exit, Exit::Cancelled);
        assert!(out.elapsed < Duration::from_secs(5), "{:?}", out.elapsed);
    }

    #[test]
    fn leftovers_are_killed_after_a_normal_exit_only_when_asked() {
        for kill in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let pid_file = dir.path().join("pid");
            let mut program = Program::new(
                argv(&[
                    "sh",
                    "-c",
                    // The background sleep lets go of the pipes, so the run does not wait.
                    "sleep 30 >/dev/null 2>&1 & echo $! > \"$1\"",
                    "sh",
                    pid_file.to_str().unwrap(),
                ]),
                Duration::from_secs(10),
            );
            if kill {
                program = program.kill_leftovers();
            }
            let out = program.run();
            assert!(out.success(), "{out:?}");
            let left: u32 = std::fs::read_to_string(&pid_file)
                .unwrap()
                .trim()
                .parse()
                .unwrap();
            if kill {
                assert!(eventually(|| gone(left)), "{left} survived kill_leftovers");
            } else {
                assert!(!gone(left), "{left} was killed without kill_leftovers");
                kill_group(pgid_of(left));
            }
        }
    }

    /// The process group `pid` belongs to.
    fn pgid_of(pid: u32) -> u32 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        stat.rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().nth(2))
            .and_then(|g| g.parse().ok())
            .unwrap_or(0)
    }

    #[test]
    fn output_is_capped_and_the_rest_counted() {
        let out = run(
            &["head", "-c", "1000000", "/dev/zero"],
            Duration::from_secs(10),
            4096,
        );
        assert!(out.success(), "{out:?}");
        assert_eq!(out.stdout.bytes.len(), 4096);
        assert_eq!(out.stdout.dropped, 1_000_000 - 4096);
        assert!(out.describe().contains("cut at 4096"));
    }

    #[test]
    fn the_tail_is_kept_per_stream_when_asked() {
        let out = Program::new(
            argv(&[
                "sh",
                "-c",
                "seq 1 10000; echo err-first >&2; echo err-last >&2",
            ]),
            Duration::from_secs(10),
        )
        .cap(11, Keep::Tail)
        .run();
        assert!(out.success(), "{out:?}");
        assert_eq!(out.stdout.text(), "9999\n10000\n");
        assert_eq!(out.stderr.text(), "t\nerr-last\n");
        assert_eq!(out.stderr.dropped, 8);
        let all: u64 = (1..=10000)
            .map(|n: u32| n.to_string().len() as u64 + 1)
            .sum();
        assert_eq!(out.stdout.dropped, all - 11);
    }

    #[test]
    fn failures_are_reported() {
        let out = run(&["/nonexistent/program"], Duration::from_secs(1), 10);
        assert!(matches!(out.exit, Exit::NotStarted(_)), "{out:?}");
        assert!(out.describe().starts_with("cannot start"));
        let out = run(&[], Duration::from_secs(1), 10);
        assert_eq!(out.describe(), "cannot start: empty command");
        let out = run(&["sh", "-c", "exit 3"], Duration::from_secs(5), 10);
        assert_eq!(out.exit, Exit::Code(3));
        assert_eq!(out.exit.to_string(), "exit status: 3");
        let out = run(&["sh", "-c", "kill -9 $$"], Duration::from_secs(5), 10);
        assert_eq!(out.exit, Exit::Signal(9));
        assert_eq!(out.exit.to_string(), "signal: 9 (SIGKILL)");
        assert!(out.describe().starts_with("killed by signal 9"));
        let out = Program::new(argv(&["cat"]), Duration::from_secs(5))
            .stdin(b"hello".to_vec())
            .cap(100, Keep::Head)
            .run();
        assert_eq!(out.stdout.bytes, b"hello");
    }

    #[test]
    fn environment_is_passed_and_unread_stdin_does_not_hang() {
        let out = Program::new(
            argv(&["sh", "-c", "echo \"$LEAKWATCH_X\""]),
            Duration::from_secs(5),
        )
        .env("LEAKWATCH_X", "a b")
        .stdin(vec![b'x'; 1 << 20])
        .run();
        assert!(out.success(), "{out:?}");
        assert_eq!(out.stdout.text(), "a b\n");
    }
}
