//! The host's socket table, one dump per pass: TCP (v4 and v6) with state and endpoints,
//! and the inodes of UDP and unix sockets, joined to processes later by socket inode.
//!
//! Read through netlink sock_diag, as `ss` does: one request per family and protocol, no
//! text to format or parse. When netlink is unavailable (an old kernel, a seccomp filter)
//! the same table is built from `/proc/net/{tcp,tcp6,udp,udp6,unix}`.

use crate::model::SocketSource;
use crate::parse::net_tcp;
use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_sock_diag::{
    constants::{AF_INET, AF_INET6, IPPROTO_TCP, IPPROTO_UDP},
    inet::{ExtensionFlags, InetRequest, SocketId, StateFlags},
    unix::{ShowFlags, StateFlags as UnixStateFlags, UnixRequest},
    SockDiagMessage,
};
use netlink_sys::{protocols::NETLINK_SOCK_DIAG, Socket, SocketAddr};
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use std::io;
use std::net::IpAddr;

/// What a TCP socket looks like from outside the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpSocket {
    pub state: u8,
    pub local: (IpAddr, u16),
    pub remote: (IpAddr, u16),
    pub recv_queue: u32,
    pub send_queue: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketInfo {
    Tcp(TcpSocket),
    Udp,
    Unix,
}

/// Every socket on the host (in this network namespace), by inode.
#[derive(Default)]
pub struct SocketTable {
    pub by_inode: HashMap<u64, SocketInfo>,
    /// Ports with a LISTEN socket: a connection whose local port is one of these is inbound.
    pub listening_ports: HashSet<u16>,
    pub source: Option<SocketSource>,
}

impl SocketTable {
    fn clear(&mut self) {
        // Keep the allocation across passes, but not a spike's worth of it forever.
        if self.by_inode.capacity() > 4 * self.by_inode.len().max(1024) {
            self.by_inode = HashMap::default();
        }
        self.by_inode.clear();
        self.listening_ports.clear();
    }

    fn insert_tcp(&mut self, inode: u64, socket: TcpSocket) {
        if socket.state == 10 {
            self.listening_ports.insert(socket.local.1);
        }
        // Inode 0 is a socket no process owns any more (TIME_WAIT, orphaned FIN_WAIT).
        if inode != 0 {
            self.by_inode.insert(inode, SocketInfo::Tcp(socket));
        }
    }
}

/// Reads socket tables, preferring netlink and remembering if it had to fall back.
pub struct SocketReader {
    netlink: Option<Socket>,
    receive: Vec<u8>,
    sequence: u32,
    netlink_error: Option<String>,
    file_buf: Vec<u8>,
}

impl SocketReader {
    pub fn new() -> SocketReader {
        let (netlink, netlink_error) = match open_netlink() {
            Ok(socket) => (Some(socket), None),
            Err(error) => (None, Some(error.to_string())),
        };
        SocketReader {
            netlink,
            receive: vec![0; 64 * 1024],
            sequence: 0,
            netlink_error,
            file_buf: Vec::new(),
        }
    }

    /// Forces the `/proc/net` fallback (for tests and for comparing the two paths).
    pub fn proc_net_only() -> SocketReader {
        let mut reader = SocketReader::new();
        reader.netlink = None;
        reader.netlink_error = Some("disabled by caller".into());
        reader
    }

    /// Why netlink is not used, if it is not.
    pub fn netlink_error(&self) -> Option<&str> {
        self.netlink_error.as_deref()
    }

    pub fn read(&mut self, table: &mut SocketTable) -> io::Result<()> {
        table.clear();
        if self.netlink.is_some() {
            match self.read_netlink(table) {
                Ok(()) => {
                    table.source = Some(SocketSource::Netlink);
                    return Ok(());
                }
                Err(error) => {
                    // Fall back for this and every later pass: a netlink failure is not
                    // transient in practice (seccomp, missing module).
                    self.netlink_error = Some(error.to_string());
                    self.netlink = None;
                    table.clear();
                }
            }
        }
        self.read_proc_net(table)?;
        table.source = Some(SocketSource::ProcNet);
        Ok(())
    }

    fn read_netlink(&mut self, table: &mut SocketTable) -> io::Result<()> {
        for family in [AF_INET, AF_INET6] {
            for protocol in [IPPROTO_TCP, IPPROTO_UDP] {
                let socket_id = if family == AF_INET {
                    SocketId::new_v4()
                } else {
                    SocketId::new_v6()
                };
                let request = SockDiagMessage::InetRequest(InetRequest {
                    family,
                    protocol,
                    extensions: ExtensionFlags::empty(),
                    // TIME_WAIT and SYN_RECV sockets belong to no process (inode 0: a
                    // closed socket's remains, a connection not yet accepted), and a busy
                    // host can hold tens of thousands of TIME_WAIT ones: not asked for.
                    states: StateFlags::all() - StateFlags::TIME_WAIT - StateFlags::SYN_RECV,
                    socket_id,
                });
                self.dump(request, |message| {
                    if let SockDiagMessage::InetResponse(response) = message {
                        let header = &response.header;
                        let inode = u64::from(header.inode);
                        if protocol == IPPROTO_TCP {
                            let id = &header.socket_id;
                            table.insert_tcp(
                                inode,
                                TcpSocket {
                                    state: header.state,
                                    local: (id.source_address, id.source_port),
                                    remote: (id.destination_address, id.destination_port),
                                    recv_queue: header.recv_queue,
                                    send_queue: header.send_queue,
                                },
                            );
                        } else if inode != 0 {
                            table.by_inode.insert(inode, SocketInfo::Udp);
                        }
                    }
                })?;
            }
        }
        let request = SockDiagMessage::UnixRequest(UnixRequest {
            state_flags: UnixStateFlags::all(),
            inode: 0,
            show_flags: ShowFlags::empty(),
            cookie: [0xff; 8],
        });
        self.dump(request, |message| {
            if let SockDiagMessage::UnixResponse(response) = message {
                table
                    .by_inode
                    .insert(u64::from(response.header.inode), SocketInfo::Unix);
            }
        })
    }

    fn dump(
        &mut self,
        request: SockDiagMessage,
        mut each: impl FnMut(SockDiagMessage),
    ) -> io::Result<()> {
        let socket = self
            .netlink
            .as_ref()
            .ok_or_else(|| io::Error::other("netlink closed"))?;
        self.sequence = self.sequence.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_DUMP;
        header.sequence_number = self.sequence;
        let mut packet = NetlinkMessage::new(header, request.into());
        packet.finalize();
        let mut out = vec![0u8; packet.buffer_len()];
        packet.serialize(&mut out);
        socket.send(&out, 0)?;
        loop {
            let size = socket.recv(&mut &mut self.receive[..], 0)?;
            let mut offset = 0;
            while offset < size {
                let message =
                    NetlinkMessage::<SockDiagMessage>::deserialize(&self.receive[offset..size])
                        .map_err(|e| io::Error::other(format!("sock_diag decode: {e}")))?;
                let length = message.header.length as usize;
                if message.header.sequence_number != self.sequence {
                    // A late answer to an earlier, abandoned request: skip it.
                } else {
                    match message.payload {
                        NetlinkPayload::Done(_) => return Ok(()),
                        NetlinkPayload::Error(error) => {
                            return Err(io::Error::other(format!("sock_diag error: {error:?}")));
                        }
                        NetlinkPayload::InnerMessage(inner) => each(inner),
                        _ => {}
                    }
                }
                if length == 0 {
                    break;
                }
                offset += (length + 3) & !3;
            }
        }
    }

    fn read_proc_net(&mut self, table: &mut SocketTable) -> io::Result<()> {
        self.read_proc_net_dir("/proc/net", table)
    }

    /// The socket table of the network namespace process `pid` is in, from
    /// `/proc/PID/net/*` (netlink would need to enter the namespace). For processes in
    /// containers; the agent's own namespace is read with [`SocketReader::read`].
    pub fn read_proc_net_of(&mut self, pid: u32, table: &mut SocketTable) -> io::Result<()> {
        table.clear();
        self.read_proc_net_dir(&format!("/proc/{pid}/net"), table)?;
        table.source = Some(SocketSource::ProcNet);
        Ok(())
    }

    fn read_proc_net_dir(&mut self, dir: &str, table: &mut SocketTable) -> io::Result<()> {
        let path = |name: &str| {
            std::ffi::CString::new(format!("{dir}/{name}")).expect("no NUL in a /proc path")
        };
        let mut any = false;
        for (path, is_tcp) in [
            (path("tcp"), true),
            (path("tcp6"), true),
            (path("udp"), false),
            (path("udp6"), false),
        ] {
            match crate::sys::read_at(libc::AT_FDCWD, &path, &mut self.file_buf) {
                Ok(()) => any = true,
                // IPv6 may be disabled: a missing file is an empty table.
                Err(error) if error.raw_os_error() == Some(libc::ENOENT) => continue,
                Err(error) => return Err(error),
            }
            net_tcp::parse(&self.file_buf, |row| {
                if is_tcp {
                    table.insert_tcp(
                        row.inode,
                        TcpSocket {
                            state: row.state,
                            local: row.local,
                            remote: row.remote,
                            recv_queue: row.rx_queue,
                            send_queue: row.tx_queue,
                        },
                    );
                } else if row.inode != 0 {
                    table.by_inode.insert(row.inode, SocketInfo::Udp);
                }
            });
        }
        if crate::sys::read_at(libc::AT_FDCWD, &path("unix"), &mut self.file_buf).is_ok() {
            net_tcp::parse_unix_inodes(&self.file_buf, |inode| {
                table.by_inode.insert(inode, SocketInfo::Unix);
            });
        }
        if any {
            Ok(())
        } else {
            Err(io::Error::other(format!(
                "no socket table readable in {dir}"
            )))
        }
    }
}

impl Default for SocketReader {
    fn default() -> Self {
        SocketReader::new()
    }
}

fn open_netlink() -> io::Result<Socket> {
    let mut socket = Socket::new(NETLINK_SOCK_DIAG)?;
    socket.bind_auto()?;
    socket.connect(&SocketAddr::new(0, 0))?;
    Ok(socket)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn own_inode(fd: std::os::fd::RawFd) -> u64 {
        let link = std::fs::read_link(format!("/proc/self/fd/{fd}")).unwrap();
        let text = link.to_string_lossy().into_owned();
        text.trim_start_matches("socket:[")
            .trim_end_matches(']')
            .parse()
            .unwrap()
    }

    #[test]
    fn netlink_and_proc_net_agree_on_a_listener() {
        use std::os::fd::AsRawFd;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let inode = own_inode(listener.as_raw_fd());
        for mut reader in [SocketReader::new(), SocketReader::proc_net_only()] {
            let mut table = SocketTable::default();
            reader.read(&mut table).unwrap();
            match table.by_inode.get(&inode) {
                Some(SocketInfo::Tcp(socket)) => {
                    assert_eq!(socket.state, 10);
                    assert_eq!(socket.local.1, port);
                }
                other => panic!("{:?}: listener not found: {other:?}", table.source),
            }
            assert!(table.listening_ports.contains(&port));
        }
    }

    /// The netlink dump leaves out TIME_WAIT and SYN_RECV sockets (no process holds
    /// them); the table it gives must hold every socket `/proc/net/tcp` attributes, with
    /// TIME_WAIT ones present: connections the client closed first (TIME_WAIT), others
    /// whose server end was left open (CLOSE_WAIT), an established pair and the listener.
    #[test]
    fn netlink_leaves_out_only_sockets_no_process_holds() {
        use std::net::TcpStream;
        use std::os::fd::AsRawFd;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut servers = Vec::new();
        for i in 0..10 {
            let client = TcpStream::connect(("127.0.0.1", port)).unwrap();
            let server = listener.accept().unwrap().0;
            drop(client);
            if i % 2 == 0 {
                // Both closed, the client first: the client's end goes to TIME_WAIT.
                std::thread::sleep(std::time::Duration::from_millis(10));
                drop(server);
            } else {
                // Only the client closed: the server's end stays in CLOSE_WAIT.
                servers.push(server);
            }
        }
        let kept_client = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let kept_server = listener.accept().unwrap().0;
        std::thread::sleep(std::time::Duration::from_millis(100));
        let ours = |table: &SocketTable| -> Vec<(u64, u8)> {
            let mut out: Vec<(u64, u8)> = table
                .by_inode
                .iter()
                .filter_map(|(inode, info)| match info {
                    SocketInfo::Tcp(s) if s.local.1 == port || s.remote.1 == port => {
                        Some((*inode, s.state))
                    }
                    _ => None,
                })
                .collect();
            out.sort_unstable();
            out
        };
        let mut netlink = SocketTable::default();
        SocketReader::new().read(&mut netlink).unwrap();
        assert_eq!(netlink.source, Some(SocketSource::Netlink));
        let mut proc_net = SocketTable::default();
        SocketReader::proc_net_only().read(&mut proc_net).unwrap();
        let text = std::fs::read_to_string("/proc/net/tcp").unwrap();
        let time_wait = text
            .lines()
            .filter(|l| {
                l.contains(&format!(":{port:04X} ")) && l.split_whitespace().nth(3) == Some("06")
            })
            .count();
        assert!(
            time_wait >= 5,
            "{time_wait} TIME_WAIT sockets in /proc/net/tcp"
        );
        let held = ours(&netlink);
        assert_eq!(held, ours(&proc_net));
        let close_wait = held.iter().filter(|(_, state)| *state == 8).count();
        assert_eq!(close_wait, 5, "{held:?}");
        for fd in [
            listener.as_raw_fd(),
            kept_client.as_raw_fd(),
            kept_server.as_raw_fd(),
        ] {
            assert!(held.iter().any(|(inode, _)| *inode == own_inode(fd)));
        }
        drop(servers);
    }
}
