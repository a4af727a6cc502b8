//! The sample: what leakwatch knows about every process at one instant.
//!
//! These types are plain data. They derive `serde` traits so the edge (CLI, HTTP API) can
//! render them, but nothing in this crate chooses a wire format.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// One pass over the host.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HostSample {
    /// Wall-clock time the pass started, milliseconds since the Unix epoch.
    pub time_unix_ms: i64,
    /// Host-wide limits that a leak in one process can still hit.
    pub host: HostInfo,
    /// Where socket states came from: `netlink` (sock_diag) or `proc_net` (fallback).
    pub socket_source: SocketSource,
    /// The selected processes, in ascending pid order.
    pub processes: Vec<ProcessSample>,
    /// What the pass itself cost and how many processes it could only partly read.
    pub stats: PassStats,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SocketSource {
    Netlink,
    ProcNet,
    None,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct HostInfo {
    /// `/proc/sys/kernel/threads-max`: the most tasks the kernel allows at once.
    pub threads_max: Option<u64>,
    /// `/proc/sys/kernel/pid_max`: thread ids come from the same space.
    pub pid_max: Option<u64>,
    /// Tasks (threads) on the host now, summed over every process seen.
    pub tasks_total: u64,
    /// Whether the cgroup hierarchy is `v1`, `v2` or `hybrid` (v1 controllers, v2 mounted).
    pub cgroup_layout: String,
    /// Processes on the host, selected or not.
    pub processes_total: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct PassStats {
    /// Wall time of the pass in microseconds.
    pub wall_us: u64,
    /// CPU time (user + system) the pass cost this process, in microseconds.
    pub cpu_us: u64,
    /// Processes that vanished between listing and reading.
    pub vanished: u64,
    /// Processes reported with at least one part missing.
    pub partial: u64,
    /// Entries in the sampler's caches after the pass (threads + fds + processes).
    pub cache_entries: u64,
    /// Files opened or links read during this pass: the work that caches save.
    pub reads: u64,
}

/// Everything about one process at one instant.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ProcessSample {
    pub identity: Identity,
    /// Process state letter from `/proc/PID/stat` (R, S, D, Z, T, ...).
    pub state: char,
    pub threads: Threads,
    pub fds: Fds,
    pub sockets: Sockets,
    pub memory: Memory,
    pub limits: Limits,
    pub cpu: Cpu,
    /// Parts that could not be read, and why. Empty when the sample is complete.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub partial: Vec<Partial>,
}

/// Who the process is. `(pid, start_time_ticks)` is unique on a host for its uptime, so a
/// reused pid is never mistaken for the same process.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct Identity {
    pub pid: u32,
    pub ppid: u32,
    /// Process group and session ids (0 when unknown).
    #[serde(default)]
    pub pgid: u32,
    #[serde(default)]
    pub sid: u32,
    /// Start time in clock ticks since boot (field 22 of `/proc/PID/stat`).
    pub start_time_ticks: u64,
    /// Start time as milliseconds since the Unix epoch (derived from boot time).
    pub start_time_unix_ms: i64,
    /// `comm`, decoded lossily: the kernel allows any bytes here.
    pub comm: String,
    pub exe: Option<String>,
    pub cmdline: Vec<String>,
    pub uid: Option<u32>,
    pub cgroup: Option<Cgroup>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct Cgroup {
    /// The process's path in the unified (v2) hierarchy, or the systemd (v1) one.
    pub path: String,
    /// systemd unit (`foo.service`, `session-3.scope`) when the path names one.
    pub unit: Option<String>,
    /// Container id (64 hex digits) when the path names one (docker, containerd, podman).
    pub container_id: Option<String>,
    /// Kubernetes pod UID when the path is under `kubepods` and names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Threads {
    pub total: u32,
    /// Thread-name groups, largest first: digits collapsed, so `worker-1..worker-4` are one
    /// group `worker-#`.
    pub groups: Vec<NameCount>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct NameCount {
    pub name: String,
    pub count: u32,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Fds {
    pub total: u32,
    pub by_kind: BTreeMap<FdKind, u32>,
    /// File fds (kind `file`) by path group, largest first: digit runs and hex ids
    /// collapsed (`/tmp/upload-#.tmp`), deleted files marked ` (deleted)`, escaped and cut
    /// to a bounded length (`parse::fd_path`). At most `Options::max_fd_paths` groups: the
    /// file fds of the groups left out are the kind's count minus these.
    #[serde(default)]
    pub paths: Vec<NameCount>,
}

pub use crate::parse::cgroup::MemoryCgroup;
pub use leakwatch_model::{FdKind, TcpState};

/// Sockets this process holds, by protocol and TCP state.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Sockets {
    /// TCP and TCP6 sockets per state.
    pub tcp: BTreeMap<TcpState, u32>,
    /// TCP sockets per (state, peer), largest first, so "312 CLOSE_WAIT to 127.0.0.1:8443"
    /// is one row. LISTEN sockets are not listed here.
    pub tcp_peers: Vec<PeerCount>,
    pub udp: u32,
    pub unix: u32,
    /// Socket fds found in no dump (netlink, packet, raw, or another network namespace).
    pub other: u32,
}

impl Sockets {
    pub fn tcp_total(&self) -> u32 {
        self.tcp.values().sum()
    }
    pub fn total(&self) -> u32 {
        self.tcp_total() + self.udp + self.unix + self.other
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PeerCount {
    pub state: TcpState,
    pub peer: Peer,
    pub count: u32,
}

/// The other end of a TCP connection, with ephemeral ports folded away.
///
/// For an outbound connection the peer is the remote address and port (`127.0.0.1:8443`).
/// For an inbound one (the local port is one this host listens on) the remote port is
/// ephemeral, so the peer is the remote address and the local service port.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Peer {
    pub direction: Direction,
    pub addr: IpAddr,
    /// Remote port when outbound; local (service) port when inbound.
    pub port: u16,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Outbound,
    Inbound,
}

impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let addr = match self.addr {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => v4.to_string(),
                None => format!("[{v6}]"),
            },
            IpAddr::V4(v4) => v4.to_string(),
        };
        match self.direction {
            Direction::Outbound => write!(f, "{addr}:{}", self.port),
            Direction::Inbound => write!(f, "{addr} -> :{}", self.port),
        }
    }
}

/// Memory in bytes.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Memory {
    pub rss: u64,
    pub rss_anon: Option<u64>,
    pub rss_file: Option<u64>,
    pub rss_shmem: Option<u64>,
    pub swap: Option<u64>,
    pub vm_data: Option<u64>,
    pub vm_size: u64,
    /// The process's cgroup memory use (`memory.current`, or v1 `memory.usage_in_bytes`).
    pub cgroup_current: Option<u64>,
    /// The cgroup memory limit; `None` when unlimited or unknown.
    pub cgroup_max: Option<u64>,
    /// The cgroup those two were read from (whether it is the process's own is decided by
    /// whoever groups processes: the agent's `targets::group`).
    #[serde(default)]
    pub cgroup: MemoryCgroup,
}

/// Limits that the leaking resources run into.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Limits {
    /// RLIMIT_NOFILE soft and hard; `None` means unlimited.
    pub nofile_soft: Option<u64>,
    pub nofile_hard: Option<u64>,
    /// RLIMIT_NPROC soft (counts every task of the user, threads included).
    pub nproc_soft: Option<u64>,
    pub nproc_hard: Option<u64>,
    /// cgroup `pids.max` and `pids.current` for the process's cgroup.
    pub cgroup_pids_max: Option<u64>,
    pub cgroup_pids_current: Option<u64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Cpu {
    pub user_ms: u64,
    pub system_ms: u64,
    pub voluntary_ctxt_switches: Option<u64>,
    pub nonvoluntary_ctxt_switches: Option<u64>,
}

/// One part of a sample that could not be read.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Partial {
    pub part: Part,
    pub reason: Reason,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Part {
    Status,
    Cmdline,
    Exe,
    Cgroup,
    Limits,
    Threads,
    ThreadNames,
    Fds,
    Memory,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// EACCES/EPERM: another user's process and we are not root.
    PermissionDenied,
    /// The process (or thread) exited while we read it.
    Exited,
    /// The file was there but did not parse.
    Malformed,
    /// Any other I/O error.
    Io,
}

impl Part {
    pub fn as_str(self) -> &'static str {
        match self {
            Part::Status => "status",
            Part::Cmdline => "cmdline",
            Part::Exe => "exe",
            Part::Cgroup => "cgroup",
            Part::Limits => "limits",
            Part::Threads => "threads",
            Part::ThreadNames => "thread names",
            Part::Fds => "fds",
            Part::Memory => "memory",
        }
    }
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::PermissionDenied => "permission denied",
            Reason::Exited => "exited",
            Reason::Malformed => "malformed",
            Reason::Io => "I/O error",
        }
    }

    pub fn from_io(error: &std::io::Error) -> Reason {
        match error.raw_os_error() {
            Some(libc::EACCES) | Some(libc::EPERM) => Reason::PermissionDenied,
            Some(libc::ENOENT) | Some(libc::ESRCH) => Reason::Exited,
            _ => Reason::Io,
        }
    }
}

/// A limit and the name of where it comes from, e.g. `(1024, "RLIMIT_NOFILE")`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct EffectiveLimit {
    pub value: u64,
    pub source: &'static str,
}

impl ProcessSample {
    /// The limit the thread count of this process will hit first: the cgroup's `pids.max`,
    /// RLIMIT_NPROC (per user, ignored for root, which the kernel exempts), or the host's
    /// `threads-max` / `pid_max`.
    pub fn thread_limit(&self, host: &HostInfo) -> Option<EffectiveLimit> {
        let nproc = match self.identity.uid {
            Some(0) | None => None,
            Some(_) => self.limits.nproc_soft,
        };
        [
            (self.limits.cgroup_pids_max, "pids.max"),
            (nproc, "RLIMIT_NPROC"),
            (host.threads_max, "threads-max"),
            (host.pid_max, "pid_max"),
        ]
        .into_iter()
        .filter_map(|(value, source)| value.map(|value| EffectiveLimit { value, source }))
        .min_by_key(|limit| limit.value)
    }

    /// The fd limit: the soft RLIMIT_NOFILE.
    pub fn fd_limit(&self) -> Option<EffectiveLimit> {
        self.limits.nofile_soft.map(|value| EffectiveLimit {
            value,
            source: "RLIMIT_NOFILE",
        })
    }

    /// The memory limit: the cgroup's `memory.max`.
    pub fn memory_limit(&self) -> Option<EffectiveLimit> {
        self.memory.cgroup_max.map(|value| EffectiveLimit {
            value,
            source: "memory.max",
        })
    }
}
