//! Running a configured program (capture commands, restart commands) safely: no shell, a
//! timeout after which its whole process group is killed, and a cap on the output kept.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What happened to one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// `None` when it was killed by a signal (a timeout included) or could not start.
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub timed_out: bool,
    /// Combined stdout and stderr, at most the cap.
    pub output: Vec<u8>,
    /// Bytes of output dropped beyond the cap.
    pub dropped: u64,
    pub elapsed: Duration,
    /// Set when the program could not be started at all.
    pub spawn_error: Option<String>,
}

impl Outcome {
    pub fn success(&self) -> bool {
        self.exit_code == Some(0) && !self.timed_out
    }

    /// `exit 0 in 0.31s`, `killed after the 30s timeout`, `cannot start: ...`.
    pub fn describe(&self, timeout: Duration) -> String {
        if let Some(error) = &self.spawn_error {
            return format!("cannot start: {error}");
        }
        let mut text = if self.timed_out {
            format!(
                "killed after the {} timeout",
                humantime::format_duration(timeout)
            )
        } else if let Some(code) = self.exit_code {
            format!("exit {code} in {:.2}s", self.elapsed.as_secs_f64())
        } else {
            format!(
                "killed by signal {} after {:.2}s",
                self.signal.unwrap_or(0),
                self.elapsed.as_secs_f64()
            )
        };
        if self.dropped > 0 {
            text.push_str(&format!(
                "; output cut at {} bytes ({} more dropped)",
                self.output.len(),
                self.dropped
            ));
        }
        text
    }
}

/// Replaces `{name}` placeholders in every argument. Unknown placeholders stay as written.
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

/// Runs `argv` (no shell), feeding `stdin` if given, for at most `timeout`, keeping at
/// most `cap` bytes of its combined output. The program runs in its own process group;
/// on timeout the whole group gets SIGKILL, so children it started die with it.
pub fn run(argv: &[String], stdin: Option<&[u8]>, timeout: Duration, cap: usize) -> Outcome {
    let started = Instant::now();
    let failed = |error: String| Outcome {
        exit_code: None,
        signal: None,
        timed_out: false,
        output: Vec::new(),
        dropped: 0,
        elapsed: started.elapsed(),
        spawn_error: Some(error),
    };
    let Some(program) = argv.first() else {
        return failed("empty command".into());
    };
    let mut child = match Command::new(program)
        .args(&argv[1..])
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
    {
        Ok(child) => child,
        Err(error) => return failed(format!("{program}: {error}")),
    };
    let pgid = child.id() as i32;
    let output = Arc::new(Mutex::new((Vec::<u8>::new(), 0u64)));
    let mut readers = Vec::new();
    let streams: Vec<Box<dyn Read + Send>> = vec![
        Box::new(child.stdout.take().expect("piped")),
        Box::new(child.stderr.take().expect("piped")),
    ];
    for mut stream in streams {
        let output = output.clone();
        readers.push(std::thread::spawn(move || {
            let mut buffer = [0u8; 16 * 1024];
            // Keep draining past the cap, so the program never blocks on a full pipe.
            while let Ok(n) = stream.read(&mut buffer) {
                if n == 0 {
                    break;
                }
                let mut guard = output.lock().expect("output lock");
                let room = cap.saturating_sub(guard.0.len());
                let keep = n.min(room);
                guard.0.extend_from_slice(&buffer[..keep]);
                guard.1 += (n - keep) as u64;
            }
        }));
    }
    if let (Some(data), Some(mut pipe)) = (stdin, child.stdin.take()) {
        let data = data.to_vec();
        // A writer thread: a program that does not read its stdin must not hang us.
        std::thread::spawn(move || {
            use std::io::Write;
            let _ = pipe.write_all(&data);
        });
    }
    let mut timed_out = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) => {}
            Err(_) => break None,
        }
        if started.elapsed() >= timeout {
            timed_out = true;
            // SAFETY: signalling the process group we created for this child.
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
            break child.wait().ok();
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // Children of the program may hold the pipes open: after our child ended, give the
    // readers a moment, then stop waiting for them (they end when the pipes close).
    let deadline = Instant::now() + Duration::from_millis(500);
    for reader in readers {
        while !reader.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        if reader.is_finished() {
            let _ = reader.join();
        }
    }
    let (bytes, dropped) = std::mem::take(&mut *output.lock().expect("output lock"));
    use std::os::unix::process::ExitStatusExt;
    Outcome {
        exit_code: status.and_then(|s| s.code()),
        signal: status.and_then(|s| s.signal()),
        timed_out,
        output: bytes,
        dropped,
        elapsed: started.elapsed(),
        spawn_error: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn arguments_are_not_interpreted_by_a_shell() {
        let out = run(
            &argv(&["echo", "$HOME; rm -rf /", "`id`"]),
            None,
            Duration::from_secs(10),
            1024,
        );
        assert!(out.success(), "{out:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.output),
            "$HOME; rm -rf / `id`\n"
        );
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
        let out = run(
            &argv(&["sh", "-c", "sleep 30 & sleep 30"]),
            None,
            Duration::from_millis(300),
            1024,
        );
        assert!(out.timed_out);
        assert!(!out.success());
        assert!(out.elapsed < Duration::from_secs(5), "{:?}", out.elapsed);
        assert!(out.describe(Duration::from_millis(300)).contains("timeout"));
    }

    #[test]
    fn output_is_capped_and_the_rest_counted() {
        let out = run(
            &argv(&["head", "-c", "1000000", "/dev/zero"]),
            None,
            Duration::from_secs(10),
            4096,
        );
        assert!(out.success(), "{out:?}");
        assert_eq!(out.output.len(), 4096);
        assert_eq!(out.dropped, 1_000_000 - 4096);
        assert!(out.describe(Duration::from_secs(1)).contains("cut at 4096"));
    }

    #[test]
    fn failures_are_reported() {
        let out = run(
            &argv(&["/nonexistent/program"]),
            None,
            Duration::from_secs(1),
            10,
        );
        assert!(out.spawn_error.is_some());
        assert!(out
            .describe(Duration::from_secs(1))
            .starts_with("cannot start"));
        let out = run(
            &argv(&["sh", "-c", "exit 3"]),
            None,
            Duration::from_secs(5),
            10,
        );
        assert_eq!(out.exit_code, Some(3));
        let out = run(&argv(&["cat"]), Some(b"hello"), Duration::from_secs(5), 100);
        assert_eq!(out.output, b"hello");
    }
}
