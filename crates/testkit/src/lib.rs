//! Test support for leakwatch: start real leaky processes, and count what they hold with
//! oracles that share no code with the sampler (`/proc` read with `std::fs`, `ss -tanp`,
//! `jstack`).

mod agent;
pub use agent::{consequence_labels, Agent};

pub mod http;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};

/// Path of a binary built in this workspace (`leaky`, `leakwatch`), found next to the
/// running test executable. Build them first with `cargo build --workspace --bins` (as
/// `scripts/test.sh` does): `cargo test` builds a package's binaries only for that
/// package's own integration tests.
pub fn workspace_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().expect("deps dir");
    let dir = if dir.ends_with("deps") {
        dir.parent().unwrap()
    } else {
        dir
    };
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} not built: run `cargo build --workspace --bins` first (scripts/test.sh does)",
        path.display()
    );
    path
}

/// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, then released).
/// Another process may take it in between; tests that need certainty bind the listener
/// themselves.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind 127.0.0.1:0")
        .local_addr()
        .expect("local addr")
        .port()
}

/// A running `leaky` process; killed and reaped on drop.
pub struct Leaky {
    pub child: Child,
    stdin: ChildStdin,
    stdout: BufReader<std::process::ChildStdout>,
}

impl Leaky {
    pub fn start(args: &[&str]) -> Leaky {
        let mut child = Command::new(workspace_bin("leaky"))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start leaky");
        let stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).expect("leaky stdout");
        assert_eq!(line.trim(), "ready", "leaky did not start: {line:?}");
        Leaky {
            child,
            stdin,
            stdout,
        }
    }

    /// Sends one command line (see `leaky`'s doc) and waits for its `ok`.
    pub fn command(&mut self, line: &str) {
        use std::io::Write;
        writeln!(self.stdin, "{line}").expect("leaky stdin");
        self.stdin.flush().unwrap();
        let mut reply = String::new();
        self.stdout.read_line(&mut reply).expect("leaky reply");
        assert_eq!(reply.trim(), "ok", "leaky answered {reply:?} to {line:?}");
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Leaky {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Thread names of `pid` by `/proc/PID/task/*/comm`, digits collapsed, counted.
pub fn proc_thread_groups(pid: u32) -> BTreeMap<String, u32> {
    let mut groups = BTreeMap::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let path = entry.unwrap().path().join("comm");
        if let Ok(name) = std::fs::read_to_string(path) {
            *groups.entry(collapse_digits(name.trim_end())).or_insert(0) += 1;
        }
    }
    groups
}

/// Independent of the sampler's normalisation on purpose: a regex-free char walk.
pub fn collapse_digits(name: &str) -> String {
    let mut out = String::new();
    let mut previous_was_digit = false;
    for ch in name.chars() {
        let is_digit = ch.is_ascii_digit();
        if !is_digit {
            out.push(ch);
        } else if !previous_was_digit {
            out.push('#');
        }
        previous_was_digit = is_digit;
    }
    out
}

/// Number of entries in `/proc/PID/fd` (what `ls /proc/PID/fd | wc -l` says).
pub fn proc_fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

/// One TCP socket as `ss -tanp` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsSocket {
    /// The kernel state name as leakwatch spells it (`CLOSE_WAIT`, `ESTABLISHED`, ...).
    pub state: String,
    pub local: String,
    pub peer: String,
}

/// TCP sockets owned by `pid`, from `ss -tanp` (needs `iproute2`).
pub fn ss_tcp(pid: u32) -> Vec<SsSocket> {
    let output = Command::new("ss")
        .args(["-tanpH"])
        .output()
        .expect("ss (iproute2) must be installed");
    assert!(output.status.success(), "ss failed");
    let text = String::from_utf8_lossy(&output.stdout);
    let needle = format!("pid={pid},");
    text.lines()
        .filter(|line| line.contains(&needle))
        .map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            SsSocket {
                state: ss_state(fields[0]).to_string(),
                local: fields[3].to_string(),
                peer: fields[4].to_string(),
            }
        })
        .collect()
}

fn ss_state(name: &str) -> &str {
    match name {
        "ESTAB" => "ESTABLISHED",
        "CLOSE-WAIT" => "CLOSE_WAIT",
        "SYN-SENT" => "SYN_SENT",
        "SYN-RECV" => "SYN_RECV",
        "FIN-WAIT-1" => "FIN_WAIT1",
        "FIN-WAIT-2" => "FIN_WAIT2",
        "TIME-WAIT" => "TIME_WAIT",
        "LAST-ACK" => "LAST_ACK",
        "LISTEN" => "LISTEN",
        "CLOSING" => "CLOSING",
        "UNCONN" => "CLOSE",
        other => other,
    }
}

/// Counts of `ss` sockets per state.
pub fn ss_states(sockets: &[SsSocket]) -> BTreeMap<String, u32> {
    let mut states = BTreeMap::new();
    for socket in sockets {
        *states.entry(socket.state.clone()).or_insert(0) += 1;
    }
    states
}

/// Polls `check` every 50 ms for up to `seconds`; returns whether it became true.
pub fn eventually(seconds: u64, mut check: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    while std::time::Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    check()
}

/// A real JVM running one of the programs in `java/` (`Analytics`: incident 000 in
/// miniature; `Memo`: incident 004), compiled into its own temporary directory. Started
/// once it printed `ready`; killed and reaped on drop.
pub struct Jvm {
    pub child: Child,
    _classes: tempfile::TempDir,
}

impl Jvm {
    /// `java JVM_ARGS... PROGRAM ARGS...` for `java/PROGRAM.java`.
    pub fn start(program: &str, jvm_args: &[&str], args: &[&str]) -> Jvm {
        if Command::new("javac").arg("-version").output().is_err() {
            // .ci/run installs openjdk-17-jdk-headless; a developer machine without it gets
            // a loud failure rather than a silent pass.
            panic!("javac not found: install openjdk-17-jdk-headless (see .ci/run)");
        }
        let classes = tempfile::tempdir().unwrap();
        let source = format!("{}/java/{program}.java", env!("CARGO_MANIFEST_DIR"));
        let status = Command::new("javac")
            .args(["-d", classes.path().to_str().unwrap(), &source])
            .status()
            .unwrap();
        assert!(status.success(), "javac failed");
        let mut child = Command::new("java")
            .args(jvm_args)
            .args(["-cp", classes.path().to_str().unwrap(), program])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready", "the JVM did not start");
        Jvm {
            child,
            _classes: classes,
        }
    }

    /// `java Analytics ARGS`: `["40"]` (40 leaked "Analytics-N" threads) or `["0", "200"]`
    /// (then one more every 200 ms).
    pub fn analytics(args: &[&str]) -> Jvm {
        Jvm::start("Analytics", &["-Xmx64m"], args)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Jvm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Builds `go/NAME.go` into `dir` (GOPATH mode, a shared build cache); the binary's path.
pub fn go_build(dir: &std::path::Path, name: &str) -> std::path::PathBuf {
    let binary = dir.join(name);
    let built = Command::new("go")
        .args(["build", "-o"])
        .arg(&binary)
        .arg(format!("{}/go/{name}.go", env!("CARGO_MANIFEST_DIR")))
        .env("GOCACHE", std::env::temp_dir().join("leakwatch-go-cache"))
        .env("GOFLAGS", "-mod=mod")
        .env("GO111MODULE", "off")
        .output()
        .unwrap_or_else(|e| panic!("go not found ({e}): install golang-go (see .ci/run)"));
    assert!(built.status.success(), "go build failed: {built:?}");
    binary
}
