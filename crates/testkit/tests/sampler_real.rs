//! The sampler's counts against independent oracles, on real processes: `/proc` read with
//! `std::fs`, and `ss -tanp` for sockets.

use leakwatch_proc::{Direction, FdKind, Options, ProcessSample, Sampler, Selection, TcpState};
use leakwatch_testkit::*;
use std::collections::{BTreeMap, HashSet};
use std::net::{TcpListener, TcpStream};

fn sample_one(sampler: &mut Sampler, pid: u32) -> ProcessSample {
    let sample = sampler.sample().expect("sample");
    sample
        .processes
        .into_iter()
        .find(|p| p.identity.pid == pid)
        .expect("process sampled")
}

fn only(pid: u32, options: Options) -> Sampler {
    Sampler::new(options, Selection::Pids(HashSet::from([pid]))).unwrap()
}

/// Fd kinds from `readlink /proc/PID/fd/*`, classified with plain string tests.
fn oracle_fd_kinds(pid: u32) -> BTreeMap<FdKind, u32> {
    let mut kinds = BTreeMap::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap() {
        let Ok(link) = std::fs::read_link(entry.unwrap().path()) else {
            continue;
        };
        let link = link.to_string_lossy().into_owned();
        let kind = if link.starts_with("socket:") {
            FdKind::Socket
        } else if link.starts_with("pipe:") {
            FdKind::Pipe
        } else if link == "anon_inode:[eventfd]" {
            FdKind::Eventfd
        } else if link == "anon_inode:[eventpoll]" {
            FdKind::Eventpoll
        } else if link.starts_with("/dev/") {
            FdKind::Device
        } else if link.starts_with('/') {
            FdKind::File
        } else {
            FdKind::AnonInode
        };
        *kinds.entry(kind).or_insert(0) += 1;
    }
    kinds
}

/// A server that accepts `n` connections and closes every second one, leaving the
/// client's end of those in CLOSE_WAIT (the peer said FIN; the client never closed).
struct HalfClosingServer {
    listener: TcpListener,
    kept: Vec<TcpStream>,
}

impl HalfClosingServer {
    fn new() -> HalfClosingServer {
        HalfClosingServer {
            listener: TcpListener::bind("127.0.0.1:0").unwrap(),
            kept: Vec::new(),
        }
    }
    fn addr(&self) -> String {
        self.listener.local_addr().unwrap().to_string()
    }
    fn accept_and_close_half(&mut self, n: usize) {
        for i in 0..n {
            let (stream, _) = self.listener.accept().unwrap();
            if i % 2 == 1 {
                self.kept.push(stream);
            }
        }
    }
}

#[test]
fn counts_match_proc_and_ss() {
    let mut server = HalfClosingServer::new();
    let addr = server.addr();
    let connect = format!("connect={addr}:20");
    let leaky = Leaky::start(&[
        "threads=Analytics:40",
        "threads=worker:4",
        "files=7",
        "pipes=3",
        "eventfds=2",
        &connect,
    ]);
    server.accept_and_close_half(20);
    let pid = leaky.pid();
    assert!(
        eventually(10, || ss_states(&ss_tcp(pid)).get("CLOSE_WAIT")
            == Some(&10)),
        "ss never showed 10 CLOSE_WAIT: {:?}",
        ss_tcp(pid)
    );

    for options in [
        Options::default(),
        Options {
            proc_net_sockets: true,
            ..Options::default()
        },
    ] {
        let fallback = options.proc_net_sockets;
        let mut sampler = only(pid, options);
        let sample = sample_one(&mut sampler, pid);

        // Threads: total and every name group, against /proc/PID/task/*/comm.
        let groups: BTreeMap<String, u32> = sample
            .threads
            .groups
            .iter()
            .map(|g| (g.name.clone(), g.count))
            .collect();
        assert_eq!(groups, proc_thread_groups(pid));
        assert_eq!(groups["Analytics-#"], 40);
        assert_eq!(groups["worker-#"], 4);
        assert_eq!(sample.threads.total, 1 + 40 + 4);

        // Fds: total against `ls /proc/PID/fd | wc -l`, kinds against readlink.
        assert_eq!(sample.fds.total as usize, proc_fd_count(pid));
        assert_eq!(sample.fds.by_kind, oracle_fd_kinds(pid));
        assert!(sample.fds.by_kind[&FdKind::File] >= 7);
        assert_eq!(sample.fds.by_kind[&FdKind::Eventfd], 2);
        assert!(sample.limits.nofile_soft.is_some());

        // Sockets: per state against ss, and the CLOSE_WAIT peer as one row.
        let ss = ss_tcp(pid);
        let ours: BTreeMap<String, u32> = sample
            .sockets
            .tcp
            .iter()
            .map(|(state, n)| (state.as_str().to_string(), *n))
            .collect();
        assert_eq!(ours, ss_states(&ss), "fallback={fallback}");
        assert_eq!(sample.sockets.tcp[&TcpState::CloseWait], 10);
        assert_eq!(sample.sockets.tcp[&TcpState::Established], 10);
        let port: u16 = addr.rsplit(':').next().unwrap().parse().unwrap();
        let close_wait = sample
            .sockets
            .tcp_peers
            .iter()
            .find(|p| p.state == TcpState::CloseWait)
            .expect("a CLOSE_WAIT peer row");
        assert_eq!(close_wait.count, 10);
        assert_eq!(close_wait.peer.direction, Direction::Outbound);
        assert_eq!(close_wait.peer.port, port);
        assert_eq!(close_wait.peer.to_string(), addr);
        // Every ss peer of a CLOSE_WAIT socket is that address.
        assert!(ss
            .iter()
            .filter(|s| s.state == "CLOSE_WAIT")
            .all(|s| s.peer == addr));
        assert!(sample.partial.is_empty(), "{:?}", sample.partial);
    }
}

#[test]
fn the_server_side_sees_inbound_peers() {
    // The test process is the server here: its accepted sockets are inbound connections to
    // its listening port, folded into one row whatever the clients' ephemeral ports.
    let mut server = HalfClosingServer::new();
    let addr = server.addr();
    let port: u16 = addr.rsplit(':').next().unwrap().parse().unwrap();
    let connect = format!("connect={addr}:6");
    let _leaky = Leaky::start(&[&connect]);
    server.accept_and_close_half(6);
    let me = std::process::id();
    let mut sampler = only(me, Options::default());
    let sample = sample_one(&mut sampler, me);
    let inbound: u32 = sample
        .sockets
        .tcp_peers
        .iter()
        .filter(|p| p.peer.direction == Direction::Inbound && p.peer.port == port)
        .map(|p| p.count)
        .sum();
    // Other tests run in this process too, so count only our port.
    assert_eq!(inbound, 3);
}

#[test]
fn cache_follows_changes_within_bounds() {
    let mut server = HalfClosingServer::new();
    let addr = server.addr();
    let connect = format!("connect={addr}:4");
    let mut leaky = Leaky::start(&["files=3", "pipes=1", &connect]);
    server.accept_and_close_half(4);
    let pid = leaky.pid();
    let revalidate_every = 4;
    let mut sampler = only(
        pid,
        Options {
            revalidate_every,
            ..Options::default()
        },
    );
    let before = sample_one(&mut sampler, pid);
    assert_eq!(before.fds.by_kind, oracle_fd_kinds(pid));

    // Count changes: seen on the very next pass.
    leaky.command("open-pipe");
    leaky.command("thread Late-1");
    let after = sample_one(&mut sampler, pid);
    assert_eq!(after.fds.total, before.fds.total + 2);
    assert_eq!(after.fds.by_kind, oracle_fd_kinds(pid));
    assert!(after.threads.groups.iter().any(|g| g.name == "Late-#"));

    // A socket closed and its fd number reused by a file, at the same count: the socket's
    // inode leaves the socket table, so the next pass re-reads that fd.
    leaky.command("close-conn");
    leaky.command("open-file");
    let swapped = sample_one(&mut sampler, pid);
    assert_eq!(swapped.fds.total, after.fds.total);
    assert_eq!(swapped.fds.by_kind, oracle_fd_kinds(pid));

    // A file swapped for a pipe at the same count is invisible to counts and to the socket
    // table; the staggered revalidation must catch it within `revalidate_every` passes.
    leaky.command("close-file");
    leaky.command("open-pipe");
    leaky.command("close-file");
    let expected = oracle_fd_kinds(pid);
    assert_eq!(proc_fd_count(pid) as u32, swapped.fds.total);
    let mut passes = 0;
    loop {
        passes += 1;
        let sample = sample_one(&mut sampler, pid);
        if sample.fds.by_kind == expected {
            break;
        }
        assert!(
            passes <= revalidate_every,
            "stale after {passes} passes: {:?} vs {expected:?}",
            sample.fds.by_kind
        );
    }
}

#[test]
fn pathological_comm_is_read_exactly() {
    let leaky = Leaky::start(&["comm=a) b (c) d"]);
    let pid = leaky.pid();
    let mut sampler = only(pid, Options::default());
    let sample = sample_one(&mut sampler, pid);
    assert_eq!(sample.identity.comm, "a) b (c) d");
    assert_eq!(
        std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .unwrap()
            .trim_end(),
        "a) b (c) d"
    );
    assert_eq!(sample.threads.total, 1);
}

#[test]
fn vanishing_processes_never_fail_a_pass_and_caches_are_evicted() {
    // Churn: hundreds of short-lived processes while sampling the whole host.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let churn = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut started = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = std::process::Command::new("true").status();
                started += 1;
            }
            started
        })
    };
    let mut sampler = Sampler::new(Options::default(), Selection::All).unwrap();
    let mut max_cached = 0;
    for _ in 0..30 {
        let sample = sampler
            .sample()
            .expect("a pass never fails because a process exited");
        assert!(sample
            .processes
            .iter()
            .any(|p| p.identity.pid == std::process::id()));
        max_cached = max_cached.max(sampler.cached_processes());
        // Cached state never exceeds what was alive during the pass.
        assert!(sampler.cached_processes() as u64 <= sample.host.processes_total);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let started = churn.join().unwrap();
    assert!(started > 30, "churn too slow to mean anything: {started}");
    assert!(max_cached > 0);
}

/// A process in its own network namespace (a container's situation): its sockets are not in
/// the agent's netlink dump, so they are read from that namespace's `/proc/PID/net/*`. The
/// oracle is `ss` run inside the namespace (`nsenter -n`).
#[test]
fn sockets_in_another_network_namespace_are_seen() {
    // One Python process in a fresh netns: a listener, 6 connections to it, and the server
    // side of 4 closed, so 4 of the client ends sit in CLOSE_WAIT.
    let script = r#"
import socket, sys
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(16)
clients = [socket.create_connection(srv.getsockname()) for _ in range(6)]
accepted = [srv.accept()[0] for _ in range(6)]
for s in accepted[:4]:
    s.close()
print("ready", flush=True)
sys.stdin.read()
"#;
    let mut child = std::process::Command::new("unshare")
        .args([
            "--net",
            "--",
            "sh",
            "-c",
            "ip link set lo up && exec python3 -c \"$0\"",
        ])
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("unshare (util-linux) must be installed");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line.trim(), "ready", "the netns process did not start");
    let pid = child.id();
    let inside = std::process::Command::new("nsenter")
        .args(["-t", &pid.to_string(), "-n", "ss", "-tanpH"])
        .output()
        .expect("nsenter");
    let inside = String::from_utf8_lossy(&inside.stdout).to_string();
    let count = |state: &str| {
        inside
            .lines()
            .filter(|l| l.starts_with(state) && l.contains(&format!("pid={pid},")))
            .count() as u32
    };
    assert_eq!(count("CLOSE-WAIT"), 4, "{inside}");
    // Our own netns does not have them: the agent would have counted "other" before.
    assert!(ss_tcp(pid).is_empty());

    let mut sampler = only(pid, Options::default());
    let process = sample_one(&mut sampler, pid);
    let tcp = &process.sockets.tcp;
    assert_eq!(tcp.get(&TcpState::CloseWait).copied(), Some(4), "{tcp:?}");
    assert_eq!(
        tcp.get(&TcpState::Established).copied(),
        Some(count("ESTAB")),
        "{tcp:?}\n{inside}"
    );
    assert_eq!(tcp.get(&TcpState::Listen).copied(), Some(1), "{tcp:?}");
    assert_eq!(process.sockets.other, 0);
    // And still so on a later pass (the namespace's table is re-read each pass).
    let again = sample_one(&mut sampler, pid);
    assert_eq!(
        again.sockets.tcp.get(&TcpState::CloseWait).copied(),
        Some(4)
    );
    drop(child.stdin.take());
    let _ = child.kill();
    let _ = child.wait();
}
