//! What one process holds right now, item by item: every thread with its name, every fd with
//! its link target, every socket resolved to its state and endpoints.
//!
//! The sampler counts; a leak report also needs evidence a person can act on
//! (`fd 12 -> socket:[88123] TCP CLOSE_WAIT 127.0.0.1:51234 -> 127.0.0.1:8443`,
//! `thread Analytics-17`). Items keep their identity (thread id, fd number and target), so
//! two inventories can say exactly what appeared in between.

use crate::rules::{Counts, Key};
use leakwatch_proc::items::{fd_links, numeric_entries, vanished};
use leakwatch_proc::parse::{fdlink, thread_name};
use leakwatch_proc::sockets::{SocketInfo, SocketReader, SocketTable};
use leakwatch_proc::{Direction, FdKind, Peer, TcpState};
use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::net::SocketAddr;

/// One process's threads and fds at one instant.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Inventory {
    pub pid: u32,
    /// Thread id to name (`/proc/PID/task/TID/comm`, at most 15 bytes, as the kernel keeps).
    pub threads: BTreeMap<u32, String>,
    /// Fd number to what it points at.
    pub fds: BTreeMap<u32, Fd>,
}

/// One open file descriptor.
#[derive(Debug, Clone, PartialEq)]
pub struct Fd {
    /// The `/proc/PID/fd/N` link text: `/tmp/x.log`, `socket:[88123]`, `pipe:[42]`.
    pub target: String,
    pub kind: FdKind,
    /// For a socket, what the host's socket table says about it.
    pub socket: Option<SocketDetail>,
}

/// A socket fd resolved through the socket table (netlink sock_diag, or `/proc/net`).
#[derive(Debug, Clone, PartialEq)]
pub enum SocketDetail {
    Tcp {
        state: TcpState,
        local: SocketAddr,
        remote: SocketAddr,
        /// The peer as leakwatch folds it (see [`leakwatch_proc::Peer`]).
        peer: Peer,
    },
    Udp,
    Unix,
    /// In no dump: netlink, packet or raw sockets, or another network namespace.
    Unlisted,
}

impl fmt::Display for SocketDetail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SocketDetail::Tcp {
                state: TcpState::Listen,
                local,
                ..
            } => write!(f, "TCP LISTEN {}", show(local)),
            SocketDetail::Tcp {
                state,
                local,
                remote,
                ..
            } => write!(
                f,
                "TCP {} {} -> {}",
                state.as_str(),
                show(local),
                show(remote)
            ),
            SocketDetail::Udp => f.write_str("UDP"),
            SocketDetail::Unix => f.write_str("unix"),
            SocketDetail::Unlisted => f.write_str("not in the TCP/UDP/unix tables"),
        }
    }
}

fn show(addr: &SocketAddr) -> String {
    format!("{}:{}", crate::rules::display_addr(addr.ip()), addr.port())
}

impl fmt::Display for Fd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.target)?;
        match &self.socket {
            Some(detail) => write!(f, " {detail}"),
            None => write!(f, " ({})", self.kind.as_str()),
        }
    }
}

impl Fd {
    /// The counted keys this fd contributes to: its kind, and for a TCP socket its state
    /// and (state, peer) row, the way [`crate::rules::counts_of`] counts a sample.
    pub fn keys(&self) -> Vec<Key> {
        let mut keys = vec![Key::fd_kind(self.kind)];
        match &self.socket {
            Some(SocketDetail::Tcp { state, peer, .. }) => {
                keys.push(Key::tcp_state(*state));
                if *state != TcpState::Listen {
                    keys.push(Key::tcp_peer(*state, peer));
                }
            }
            Some(SocketDetail::Udp) => keys.push(Key::socket_family("udp")),
            Some(SocketDetail::Unix) => keys.push(Key::socket_family("unix")),
            Some(SocketDetail::Unlisted) => keys.push(Key::socket_family("other")),
            None => {}
        }
        keys
    }
}

impl Inventory {
    /// Counts by thread group, fd kind, TCP state and peer, and socket family: the same keys
    /// the sampler's counts get (memory is not inventoried).
    pub fn counts(&self) -> Counts {
        let mut counts = Counts::new();
        for name in self.threads.values() {
            *counts
                .entry(Key::thread_group(&group_of(name)))
                .or_default() += 1;
        }
        for fd in self.fds.values() {
            for key in fd.keys() {
                *counts.entry(key).or_default() += 1;
            }
        }
        counts
    }
}

/// A thread's name group: digits collapsed, as the sampler groups them.
pub fn group_of(name: &str) -> String {
    thread_name::normalise(name.as_bytes())
}

/// Reads inventories, keeping one socket-table reader (and its netlink socket) for its life.
///
/// Keep the reader alive across the inventories you compare: its netlink socket is an fd of
/// this process, and one opened between two inventories of this process would look like a
/// leak.
pub struct Reader {
    sockets: Option<SocketReader>,
    table: SocketTable,
}

impl Default for Reader {
    fn default() -> Self {
        Reader::new()
    }
}

impl Reader {
    pub fn new() -> Reader {
        Reader {
            sockets: Some(SocketReader::new()),
            table: SocketTable::default(),
        }
    }

    /// A reader that does not resolve sockets (no netlink socket is opened).
    pub fn without_sockets() -> Reader {
        Reader {
            sockets: None,
            table: SocketTable::default(),
        }
    }

    /// Everything `pid` holds now. Threads and fds that go away while they are read are
    /// skipped; the process itself being gone, or its fds unreadable, is an error.
    pub fn read(&mut self, pid: u32) -> io::Result<Inventory> {
        let threads = read_threads(pid)?;
        let links = fd_links(pid)?;
        let resolve = match self.sockets.as_mut() {
            Some(reader) => reader.read(&mut self.table).is_ok(),
            None => false,
        };
        let fds = links
            .into_iter()
            .map(|(fd, target)| {
                let classified = fdlink::classify(target.as_bytes());
                let socket = match classified {
                    fdlink::FdTarget::Socket(inode) if resolve => Some(self.resolve(inode)),
                    _ => None,
                };
                let kind = classified.kind();
                (
                    fd,
                    Fd {
                        target,
                        kind,
                        socket,
                    },
                )
            })
            .collect();
        Ok(Inventory { pid, threads, fds })
    }

    fn resolve(&self, inode: u64) -> SocketDetail {
        match self.table.by_inode.get(&inode) {
            Some(SocketInfo::Tcp(socket)) => {
                let state = TcpState::from_kernel(socket.state);
                // The sampler's rule: a local port with a LISTEN socket marks an accepted
                // connection, whose remote port is ephemeral and folded away.
                let peer = if self.table.listening_ports.contains(&socket.local.1) {
                    Peer {
                        direction: Direction::Inbound,
                        addr: socket.remote.0,
                        port: socket.local.1,
                    }
                } else {
                    Peer {
                        direction: Direction::Outbound,
                        addr: socket.remote.0,
                        port: socket.remote.1,
                    }
                };
                SocketDetail::Tcp {
                    state,
                    local: SocketAddr::new(socket.local.0, socket.local.1),
                    remote: SocketAddr::new(socket.remote.0, socket.remote.1),
                    peer,
                }
            }
            Some(SocketInfo::Udp) => SocketDetail::Udp,
            Some(SocketInfo::Unix) => SocketDetail::Unix,
            None => SocketDetail::Unlisted,
        }
    }
}

fn read_threads(pid: u32) -> io::Result<BTreeMap<u32, String>> {
    let mut threads = BTreeMap::new();
    for tid in numeric_entries(&format!("/proc/{pid}/task"))? {
        match std::fs::read(format!("/proc/{pid}/task/{tid}/comm")) {
            Ok(name) => {
                let name = name.strip_suffix(b"\n").unwrap_or(&name);
                threads.insert(tid, String::from_utf8_lossy(name).into_owned());
            }
            // The thread exited between the listing and the read.
            Err(error) if vanished(&error) => {}
            Err(error) => return Err(error),
        }
    }
    Ok(threads)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream};

    #[test]
    fn sees_own_threads_files_and_sockets_with_targets() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.log");
        let file = std::fs::File::create(&path).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let client = TcpStream::connect(addr).unwrap();
        let (accepted, _) = listener.accept().unwrap();

        let mut reader = Reader::new();
        let inventory = reader.read(std::process::id()).unwrap();
        let path_text = path.to_str().unwrap();
        let file_fd = inventory
            .fds
            .values()
            .find(|fd| fd.target == path_text)
            .expect("the open file is listed with its path");
        assert_eq!(file_fd.kind, FdKind::File);
        assert_eq!(file_fd.to_string(), format!("{path_text} (file)"));

        let client_port = client.local_addr().unwrap().port();
        let client_fd = inventory
            .fds
            .values()
            .find(|fd| {
                matches!(&fd.socket, Some(SocketDetail::Tcp { local, .. }) if local.port() == client_port)
            })
            .expect("the client socket is resolved through the socket table");
        assert!(client_fd.target.starts_with("socket:["));
        assert_eq!(
            client_fd.socket.as_ref().unwrap().to_string(),
            format!("TCP ESTABLISHED 127.0.0.1:{client_port} -> {addr}")
        );
        let counts = inventory.counts();
        assert!(counts[&Key::tcp_state(TcpState::Listen)] >= 1);
        assert!(counts[&Key::fd_kind(FdKind::File)] >= 1);
        // No thread of this test process is missing a name.
        assert!(inventory.threads.values().all(|name| !name.is_empty()));
        assert!(!inventory
            .fds
            .values()
            .any(|fd| fd.target == format!("/proc/{}/fd", std::process::id())));
        drop((file, client, accepted));
    }

    #[test]
    fn a_process_that_is_gone_is_an_error() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(Reader::without_sockets().read(pid).is_err());
    }
}
