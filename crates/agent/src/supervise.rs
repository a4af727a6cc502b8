//! `leakwatch run`: supervise a command as a target. It is restarted per policy with
//! back-off; every exit is recorded (code, signal, OOM kill when the cgroup says so) with
//! the tail of its stderr, and its processes are sampled like the agent samples a host.
//!
//! This is what makes a leak masked by crashes visible (incident 002): the history spans
//! every life, and "it crashed 37 times; last stderr: fatal error: ..." is one query away.

use crate::config::Config;
use crate::daemon::{self, writer::WriterEvent, Mode, Shared};
use crate::sync::Locked;
use crate::tail::Tail;
use leakwatch_exec::signals::{self, Signal};
use leakwatch_store::Restart;
use std::collections::HashSet;
use std::io::{Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    OnFailure,
    Always,
    Never,
}

impl std::str::FromStr for Policy {
    type Err = String;
    fn from_str(s: &str) -> Result<Policy, String> {
        match s {
            "on-failure" => Ok(Policy::OnFailure),
            "always" => Ok(Policy::Always),
            "never" => Ok(Policy::Never),
            other => Err(format!(
                "unknown restart policy {other:?}: use on-failure, always or never"
            )),
        }
    }
}

pub struct RunOptions {
    pub target: String,
    pub command: Vec<String>,
    pub policy: Policy,
    /// Stop restarting after this many restarts (None: never stop).
    pub max_restarts: Option<u32>,
    /// Bytes of stderr (and stdout) kept per life.
    pub tail_bytes: usize,
    /// Serve the HTTP API while supervising.
    pub serve: bool,
}

/// Hands a restart to the writer (waiting for room: an exit status is worth the wait).
fn record_restart(shared: &Shared, restart: Restart) {
    if shared
        .writer_inbox
        .send(WriterEvent::Restart(restart))
        .is_err()
    {
        tracing::error!("the store writer has stopped: a restart was not recorded");
    }
}

/// Copies a child's stream to ours while keeping its tail.
fn tee(
    mut from: impl Read + Send + 'static,
    mut to: impl Write + Send + 'static,
    tail: Arc<Mutex<Tail>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buffer = [0u8; 8192];
        loop {
            match from.read(&mut buffer) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    tail.locked().push(&buffer[..n]);
                    let _ = to.write_all(&buffer[..n]);
                    let _ = to.flush();
                }
            }
        }
    })
}

fn start_time_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read(format!("/proc/{pid}/stat")).ok()?;
    leakwatch_proc::parse::stat::parse(&stat)
        .ok()
        .map(|s| s.start_time_ticks)
}

use leakwatch_model::time::now_ms;

/// The cgroup v2 `oom_kill` counter of this process's own cgroup (children inherit it).
fn oom_kills() -> Option<u64> {
    let cgroup = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let path = cgroup.lines().find_map(|l| l.strip_prefix("0::"))?;
    let events = std::fs::read_to_string(format!("/sys/fs/cgroup{path}/memory.events")).ok()?;
    events
        .lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .and_then(|v| v.trim().parse().ok())
}

/// Runs the supervisor until the command ends for good (policy, max restarts) or we get
/// SIGINT/SIGTERM (forwarded to the command). Returns the command's last exit code.
pub fn run(config: Config, data_dir: &Path, options: RunOptions) -> crate::Result<i32> {
    let pids: Arc<Mutex<HashSet<u32>>> = Arc::new(Mutex::new(HashSet::new()));
    let (shared, threads) = daemon::start(
        &config,
        data_dir,
        Mode::Supervised {
            target: options.target.clone(),
            pids: pids.clone(),
        },
    )?;
    // Set by SIGINT/SIGTERM, and by us when the command ends for good (to stop the HTTP
    // thread): this function runs once per process.
    let stop = signals::install(&[Signal::Interrupt, Signal::Terminate]);
    let http = if options.serve {
        let shared = shared.clone();
        let config = config.clone();
        Some(std::thread::spawn(move || {
            let until = async move {
                while !stop.load(Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            };
            if let Err(error) = crate::serve_http(&config, shared, until) {
                tracing::error!(error = %error, "HTTP server failed");
            }
        }))
    } else {
        None
    };
    let result = supervise(&options, &shared, &pids, stop);
    stop.store(true, Ordering::Relaxed);
    // Let the writer store the last exit before stopping it.
    std::thread::sleep(Duration::from_millis(300));
    shared.stop.store(true, Ordering::Relaxed);
    for thread in threads {
        let _ = thread.join();
    }
    if let Some(http) = http {
        let _ = http.join();
    }
    if let Some(stage) = shared.failed_stage.get().as_ref().clone() {
        return Err(crate::Error::StageFailed(stage));
    }
    result
}

fn supervise(
    options: &RunOptions,
    shared: &Shared,
    pids: &Mutex<HashSet<u32>>,
    stop: &AtomicBool,
) -> crate::Result<i32> {
    let mut restarts = 0u32;
    let mut backoff = Duration::from_secs(1);
    let mut previous: Option<(u32, Option<u64>, Restart)> = None;
    loop {
        // In a process group of its own, as supervisors start services: the host agent
        // tells a supervised service from an orphaned job by that (docs/detection.md,
        // "Crash loops and periodic jobs"), and a stop reaches the command's children too.
        let mut child = Command::new(&options.command[0])
            .args(&options.command[1..])
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| crate::Error::Spawn {
                program: options.command[0].clone(),
                source,
            })?;
        let pid = child.id();
        let started = Instant::now();
        let start_time = start_time_ticks(pid);
        pids.locked().insert(pid);
        if let Some((_, _, mut restart)) = previous.take() {
            restart.new_pid = Some(pid);
            restart.new_start_time = start_time;
            record_restart(shared, restart);
        }
        let stderr_tail = Arc::new(Mutex::new(Tail::new(options.tail_bytes)));
        let stdout_tail = Arc::new(Mutex::new(Tail::new(options.tail_bytes)));
        let tees = [
            tee(
                child.stdout.take().expect("piped"),
                std::io::stdout(),
                stdout_tail.clone(),
            ),
            tee(
                child.stderr.take().expect("piped"),
                std::io::stderr(),
                stderr_tail.clone(),
            ),
        ];
        // Evidence shows the current life's output.
        shared
            .supervised_output
            .publish(Some((stderr_tail.clone(), stdout_tail.clone())));
        let oom_before = oom_kills();
        tracing::info!(pid, life = restarts + 1, "started {:?}", options.command);
        let status = loop {
            if let Some(status) = child.try_wait().map_err(crate::Error::Wait)? {
                break status;
            }
            if stop.load(Ordering::Relaxed) {
                // SAFETY: signalling our own child's process group (its pid is the id).
                unsafe { libc::kill(-(pid as i32), libc::SIGTERM) };
                let status = child.wait().map_err(crate::Error::Wait)?;
                for t in tees {
                    let _ = t.join();
                }
                pids.locked().remove(&pid);
                return Ok(status.code().unwrap_or(128 + status.signal().unwrap_or(0)));
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        for t in tees {
            let _ = t.join();
        }
        pids.locked().remove(&pid);
        let oom = match (oom_before, oom_kills()) {
            (Some(before), Some(after)) => Some(after > before),
            _ => None,
        };
        let exit_code = status.code();
        let signal = status.signal();
        let stderr = stderr_tail.locked().text();
        let last_line = stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        tracing::warn!(
            pid,
            exit_code,
            signal,
            life_s = started.elapsed().as_secs(),
            last_stderr = last_line,
            "command exited"
        );
        let code = exit_code.unwrap_or(128 + signal.unwrap_or(0));
        let failed = !status.success();
        let restart_wanted = match options.policy {
            Policy::Always => true,
            Policy::OnFailure => failed,
            Policy::Never => false,
        };
        let restart = Restart {
            target: options.target.clone(),
            ts_ms: now_ms(),
            old_pid: Some(pid),
            old_start_time: start_time,
            new_pid: None,
            new_start_time: None,
            exit_code,
            signal,
            oom_killed: oom,
            stderr_tail: Some(stderr),
        };
        let out_of_restarts = options.max_restarts.is_some_and(|max| restarts >= max);
        if !restart_wanted || out_of_restarts || stop.load(Ordering::Relaxed) {
            // The final exit is a restart record without a successor.
            record_restart(shared, restart);
            return Ok(code);
        }
        previous = Some((pid, start_time, restart));
        restarts += 1;
        // Back off exponentially, but start over after a life that looked healthy.
        if started.elapsed() > Duration::from_secs(60) {
            backoff = Duration::from_secs(1);
        }
        let until = Instant::now() + backoff;
        while Instant::now() < until && !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(50));
        }
        backoff = (backoff * 2).min(Duration::from_secs(60));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_end() {
        let mut tail = Tail::new(8);
        tail.push(b"hello ");
        tail.push(b"world!");
        assert_eq!(tail.text(), "o world!");
        tail.push(b"0123456789abcdef");
        assert_eq!(tail.text(), "89abcdef");
    }

    #[test]
    fn policies_parse() {
        assert_eq!("always".parse::<Policy>(), Ok(Policy::Always));
        assert!("sometimes"
            .parse::<Policy>()
            .unwrap_err()
            .contains("on-failure"));
    }
}
