//! Human-readable listings of one process, read from /proc when evidence is captured: the
//! threads grouped by name, the fd table, the TCP sockets with their owning fd, memory.
//! Rare and small, so plain `std::fs` reads; every read failure becomes a line of text.

use leakwatch_model::{Attribution, TcpState};
use leakwatch_proc::parse::{fdlink, thread_name};
use leakwatch_proc::sockets::{SocketInfo, SocketReader, SocketTable};
use leakwatch_view::escape::{terminal, terminal_bytes};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::Path;

/// Threads listed per name group; the group counts are always complete.
const THREADS_PER_GROUP: usize = 200;
/// Sockets listed per process.
const SOCKETS_PER_PROCESS: usize = 5_000;

fn read_trimmed(path: &Path) -> Result<String, String> {
    std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).trim_end().to_string())
        .map_err(|e| e.to_string())
}

/// The process's name, escaped: evidence files are read on terminals (issue 16: a name
/// with escape sequences or newlines must not drive the terminal or forge lines).
fn comm(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/comm")).map_or_else(
        |_| "?".into(),
        |name| terminal_bytes(name.strip_suffix(b"\n").unwrap_or(&name)),
    )
}

/// The state letter from `/proc/PID/task/TID/stat` (the field after the command's `)`).
fn task_state(stat: &str) -> String {
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .unwrap_or("?")
        .to_string()
}

/// `pid 1234 (java): 30,412 threads in 7 groups`, the groups by size, then every thread
/// (tid, name, state, wchan) under its group.
pub fn threads(pid: u32) -> String {
    let mut out = String::new();
    let task_dir = format!("/proc/{pid}/task");
    let entries = match std::fs::read_dir(&task_dir) {
        Ok(entries) => entries,
        Err(error) => return format!("pid {pid}: cannot list {task_dir}: {error}\n"),
    };
    let mut groups: BTreeMap<String, Vec<(u32, String, String, String)>> = BTreeMap::new();
    for entry in entries.flatten() {
        let Some(tid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let dir = entry.path();
        // A thread may end between the listing and these reads: keep what we got.
        let Ok(name) = std::fs::read(dir.join("comm")) else {
            continue;
        };
        let name = name.strip_suffix(b"\n").unwrap_or(&name);
        let group = terminal(&thread_name::normalise(name));
        let name = terminal_bytes(name);
        let state = read_trimmed(&dir.join("stat"))
            .map(|s| task_state(&s))
            .unwrap_or_else(|_| "?".into());
        let wchan = read_trimmed(&dir.join("wchan")).unwrap_or_else(|_| "?".into());
        let wchan = if wchan.is_empty() || wchan == "0" {
            "-".to_string()
        } else {
            wchan
        };
        groups
            .entry(group)
            .or_default()
            .push((tid, name, state, wchan));
    }
    let total: usize = groups.values().map(Vec::len).sum();
    let mut ranked: Vec<(&String, &Vec<_>)> = groups.iter().collect();
    ranked.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(b.0)));
    let _ = writeln!(
        out,
        "pid {pid} ({}): {total} threads in {} name groups (digits collapsed to #)",
        comm(pid),
        ranked.len()
    );
    let _ = writeln!(out, "\n  count  group");
    for (group, threads) in &ranked {
        let _ = writeln!(out, "  {:>5}  {group}", threads.len());
    }
    let _ = writeln!(out, "\n  tid      state  wchan                     name");
    for (group, threads) in &ranked {
        let _ = writeln!(out, "\n  [{group}] {} threads", threads.len());
        let mut sorted: Vec<_> = threads.iter().collect();
        sorted.sort_by_key(|t| t.0);
        for (tid, name, state, wchan) in sorted.iter().take(THREADS_PER_GROUP) {
            let _ = writeln!(out, "  {tid:<8} {state:<6} {wchan:<25} {name}");
        }
        if sorted.len() > THREADS_PER_GROUP {
            let _ = writeln!(
                out,
                "  ... {} more in this group",
                sorted.len() - THREADS_PER_GROUP
            );
        }
    }
    out
}

/// Every fd of the process as (fd number, link target), or why not.
fn fd_links(pid: u32) -> Result<Vec<(u32, String)>, String> {
    leakwatch_proc::items::fd_links(pid).map_err(|e| format!("cannot list /proc/{pid}/fd: {e}"))
}

/// Link targets with inode numbers folded, so 500 `socket:[...]` are one line.
fn fold_link(link: &str) -> String {
    match link.split_once(":[") {
        Some((kind, _)) if link.ends_with(']') => format!("{kind}:[*]"),
        _ => link.to_string(),
    }
}

fn fd_limit(pid: u32) -> String {
    let Ok(limits) = std::fs::read_to_string(format!("/proc/{pid}/limits")) else {
        return "?".into();
    };
    limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .unwrap_or("?")
        .to_string()
}

/// The fd table summary: counts by kind, the most repeated targets, the limit.
pub fn fds(pid: u32) -> String {
    let mut out = String::new();
    let links = match fd_links(pid) {
        Ok(links) => links,
        Err(error) => return format!("pid {pid}: {error}\n"),
    };
    let mut kinds: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut targets: HashMap<String, usize> = HashMap::new();
    for (_, link) in &links {
        *kinds
            .entry(fdlink::classify(link.as_bytes()).kind().as_str())
            .or_default() += 1;
        *targets.entry(terminal(&fold_link(link))).or_default() += 1;
    }
    let _ = writeln!(
        out,
        "pid {pid} ({}): {} fds open, soft limit {}",
        comm(pid),
        links.len(),
        fd_limit(pid)
    );
    let _ = writeln!(out, "\n  count  kind");
    let mut by_count: Vec<_> = kinds.into_iter().collect();
    by_count.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    for (kind, n) in by_count {
        let _ = writeln!(out, "  {n:>5}  {kind}");
    }
    let mut repeated: Vec<_> = targets.into_iter().collect();
    repeated.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let _ = writeln!(out, "\n  count  target (inodes folded to *)");
    for (target, n) in repeated.iter().take(30) {
        let _ = writeln!(out, "  {n:>5}  {target}");
    }
    if repeated.len() > 30 {
        let _ = writeln!(out, "  ... {} more distinct targets", repeated.len() - 30);
    }
    out
}

/// Which sockets to list in full: those of the leaking class, or all TCP sockets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketFilter {
    /// `CLOSE_WAIT` etc.; `None`: every state.
    pub state: Option<String>,
    /// `127.0.0.1:18443` (a remote endpoint) or `:8080` style service port; `None`: any.
    pub peer: Option<String>,
}

impl SocketFilter {
    /// From the finding's attribution (a TCP state, or a state and a peer); anything else
    /// lists every TCP socket.
    pub fn for_finding(attribution: &Attribution) -> SocketFilter {
        match attribution {
            Attribution::TcpState(state) => SocketFilter {
                state: Some(state.as_str().to_string()),
                peer: None,
            },
            Attribution::TcpPeer { state, peer } => SocketFilter {
                state: Some(state.as_str().to_string()),
                peer: Some(peer.clone()),
            },
            _ => SocketFilter {
                state: None,
                peer: None,
            },
        }
    }

    /// `3 TCP sockets in CLOSE_WAIT with peer 127.0.0.1:8443`, `12 TCP sockets (any state)`.
    fn describe(&self, n: usize) -> String {
        let noun = if n == 1 { "TCP socket" } else { "TCP sockets" };
        match (&self.state, &self.peer) {
            (None, _) => format!("{n} {noun} (any state)"),
            (Some(s), None) => format!("{n} {noun} in {s}"),
            (Some(s), Some(p)) => format!("{n} {noun} in {s} with peer {p}"),
        }
    }

    fn matches(&self, state: &str, local: &str, remote: &str) -> bool {
        let state_ok = self.state.as_deref().is_none_or(|s| s == state);
        let peer_ok = self.peer.as_deref().is_none_or(|p| {
            // Inbound peers are folded to (remote address, local service port).
            remote == p || local.ends_with(p.rsplit_once(':').map(|(_, port)| port).unwrap_or(p))
        });
        state_ok && peer_ok
    }
}

fn endpoint(addr: (std::net::IpAddr, u16)) -> String {
    match addr.0 {
        std::net::IpAddr::V6(v6) => format!("[{v6}]:{}", addr.1),
        v4 => format!("{v4}:{}", addr.1),
    }
}

/// Reads the host's socket table once (netlink, else /proc/net).
pub fn socket_table() -> Result<SocketTable, String> {
    let mut reader = SocketReader::new();
    let mut table = SocketTable::default();
    reader.read(&mut table).map_err(|e| e.to_string())?;
    Ok(table)
}

/// The process's TCP sockets matching `filter`, one line each with the owning fd, local and
/// remote endpoints, state and queue sizes; then counts per state of all its TCP sockets.
pub fn sockets(pid: u32, table: &SocketTable, filter: &SocketFilter) -> String {
    let mut out = String::new();
    let links = match fd_links(pid) {
        Ok(links) => links,
        Err(error) => return format!("pid {pid}: {error}\n"),
    };
    let mut per_state: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut lines = Vec::new();
    let mut other_netns = 0usize;
    for (fd, link) in &links {
        let fdlink::FdTarget::Socket(inode) = fdlink::classify(link.as_bytes()) else {
            continue;
        };
        match table.by_inode.get(&inode) {
            Some(SocketInfo::Tcp(tcp)) => {
                let state = TcpState::from_kernel(tcp.state).as_str();
                *per_state.entry(state).or_default() += 1;
                let local = endpoint(tcp.local);
                let remote = endpoint(tcp.remote);
                if filter.matches(state, &local, &remote) {
                    lines.push(format!(
                        "  fd {fd:<6} socket:[{inode}]  {state:<12} {local:<22} -> {remote:<22} recv-q {:<6} send-q {}",
                        tcp.recv_queue, tcp.send_queue
                    ));
                }
            }
            Some(_) => {}
            None => other_netns += 1,
        }
    }
    let _ = writeln!(
        out,
        "pid {pid} ({}): {}",
        comm(pid),
        filter.describe(lines.len())
    );
    for line in lines.iter().take(SOCKETS_PER_PROCESS) {
        let _ = writeln!(out, "{line}");
    }
    if lines.len() > SOCKETS_PER_PROCESS {
        let _ = writeln!(out, "  ... {} more", lines.len() - SOCKETS_PER_PROCESS);
    }
    let _ = writeln!(out, "\n  all TCP sockets of the process by state:");
    for (state, n) in &per_state {
        let _ = writeln!(out, "  {n:>5}  {state}");
    }
    if other_netns > 0 {
        let _ = writeln!(
            out,
            "  {other_netns} socket fds not in this network namespace's table (other netns, or closed meanwhile)"
        );
    }
    out
}

/// `smaps_rollup` and the memory lines of `status`.
pub fn memory(pid: u32) -> String {
    let mut out = format!("pid {pid} ({})\n\n", comm(pid));
    match std::fs::read_to_string(format!("/proc/{pid}/status")) {
        Ok(status) => {
            for line in status
                .lines()
                .filter(|l| l.starts_with("Vm") || l.starts_with("Rss") || l.starts_with("Threads"))
            {
                let _ = writeln!(out, "{line}");
            }
        }
        Err(error) => {
            let _ = writeln!(out, "status: {error}");
        }
    }
    out.push_str("\n/proc/PID/smaps_rollup:\n");
    match std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")) {
        Ok(rollup) => out.push_str(&rollup),
        Err(error) => {
            let _ = writeln!(out, "cannot read: {error}");
        }
    }
    out
}

/// Is this process a JVM (so `jcmd PID Thread.print` applies)?
pub fn is_jvm(pid: u32) -> Option<std::path::PathBuf> {
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok()?;
    if exe.file_name()? != "java" {
        return None;
    }
    // The JDK's own jcmd, next to its java, speaks that JVM's attach protocol best.
    let beside = exe.with_file_name("jcmd");
    if beside.exists() {
        return Some(beside);
    }
    Some(std::path::PathBuf::from("jcmd"))
}

/// The effective uid and gid of `pid` (`/proc/PID/status`).
pub fn owner(pid: u32) -> Option<(u32, u32)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let effective = |key: &str| -> Option<u32> {
        let line = status.lines().find_map(|l| l.strip_prefix(key))?;
        line.split_whitespace().nth(1)?.parse().ok()
    };
    Some((effective("Uid:")?, effective("Gid:")?))
}

/// The interpreter's name (`python3.11`) when `pid` runs CPython.
pub fn is_python(pid: u32) -> Option<String> {
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok()?;
    let name = exe.file_name()?.to_string_lossy().into_owned();
    name.starts_with("python").then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_threads_are_grouped() {
        // A thread names itself once running: wait for each to say it started.
        let (started, running) = std::sync::mpsc::channel();
        let handles: Vec<_> = (0..3)
            .map(|i| {
                let started = started.clone();
                std::thread::Builder::new()
                    .name(format!("lwtest-{i}"))
                    .spawn(move || {
                        started.send(()).unwrap();
                        std::thread::sleep(std::time::Duration::from_millis(800))
                    })
                    .unwrap()
            })
            .collect();
        for _ in 0..3 {
            running.recv().unwrap();
        }
        let text = threads(std::process::id());
        for h in handles {
            h.join().unwrap();
        }
        assert!(text.contains("  [lwtest-#] 3 threads"), "{text}");
        assert!(text.contains("lwtest-2"), "{text}");
    }

    /// Regression (issue 16): a thread named with escape sequences or newlines reached
    /// `threads.txt` raw (clear-screen on `cat`, forged lines).
    #[test]
    fn hostile_thread_names_are_escaped_in_the_listing() {
        let (started, running) = std::sync::mpsc::channel();
        // The kernel keeps 15 bytes of a thread name.
        let names = ["a\nb\nc", "\u{1b}[2Jlw", "lw\u{1b}]0;x\u{7}"];
        let handles: Vec<_> = names
            .iter()
            .map(|name| {
                let started = started.clone();
                std::thread::Builder::new()
                    .name(name.to_string())
                    .spawn(move || {
                        started.send(()).unwrap();
                        std::thread::sleep(std::time::Duration::from_millis(800))
                    })
                    .unwrap()
            })
            .collect();
        for _ in 0..names.len() {
            running.recv().unwrap();
        }
        let text = threads(std::process::id());
        for h in handles {
            h.join().unwrap();
        }
        assert!(text.contains("a\\nb\\nc"), "{text}");
        assert!(text.contains("\\e[2Jlw"), "{text}");
        assert!(text.contains("lw\\e]0;x\\x07"), "{text}");
        assert!(
            !text.chars().any(|c| c.is_control() && c != '\n'),
            "a raw control character reached the listing"
        );
        // Every line is the listing's own: no name starts a line of its own.
        assert!(
            !text.lines().any(|l| l == "b" || l.starts_with("c ")),
            "{text}"
        );
    }

    #[test]
    fn socket_filter_from_findings() {
        let f = SocketFilter::for_finding(&Attribution::TcpPeer {
            state: TcpState::CloseWait,
            peer: "127.0.0.1:18443".into(),
        });
        assert!(f.matches("CLOSE_WAIT", "127.0.0.1:40000", "127.0.0.1:18443"));
        assert!(!f.matches("ESTABLISHED", "127.0.0.1:40000", "127.0.0.1:18443"));
        assert!(!f.matches("CLOSE_WAIT", "127.0.0.1:40000", "127.0.0.1:9999"));
        let f = SocketFilter::for_finding(&Attribution::TcpState(TcpState::CloseWait));
        assert!(f.matches("CLOSE_WAIT", "a:1", "b:2"));
        let f = SocketFilter::for_finding(&Attribution::ThreadGroup("x-#".into()));
        assert!(f.matches("LISTEN", "a:1", "b:2"));
    }

    #[test]
    fn a_vanished_process_is_a_line_not_a_failure() {
        let text = fds(u32::MAX - 1);
        assert!(text.contains("cannot list"), "{text}");
        assert!(threads(u32::MAX - 1).contains("cannot list"));
    }

    #[test]
    fn fd_summary_counts_kinds() {
        let _file = std::fs::File::open("/proc/self/stat").unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let text = fds(std::process::id());
        assert!(text.contains("socket"), "{text}");
        assert!(text.contains("/proc/"), "{text}");
        let table = socket_table().unwrap();
        let text = sockets(
            std::process::id(),
            &table,
            &SocketFilter::for_finding(&Attribution::TcpState(TcpState::Listen)),
        );
        let port = listener.local_addr().unwrap().port();
        assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
        assert!(text.contains("LISTEN"), "{text}");
        // Other tests of this process may listen too: at least ours.
        assert!(
            text.contains(" TCP socket in LISTEN") || text.contains(" TCP sockets in LISTEN"),
            "{text}"
        );
    }
}
