//! The sampler: one pass over every (selected) process, doing only the work that changed.
//!
//! A naive pass reads every thread's `comm` and `readlink`s every fd: on a busy host that
//! is tens of thousands of syscalls for values that almost never change. The sampler keeps,
//! per live process, the thread names by TID and the fd targets by fd number, and per pass
//! re-reads only:
//! - thread names when the thread count changed (only the new TIDs are read);
//! - fd targets when the fd count (`st_size` of `/proc/PID/fd`, kernel 6.2+) changed, or a
//!   socket the process held disappeared from the socket table (its fd was closed, so the
//!   number may have been reused) — only the new fd numbers are read;
//! - everything of one process, once every `revalidate_every` passes, staggered by pid so
//!   the cost is spread evenly. This bounds how stale a cached name or fd kind can be when a
//!   thread renames itself or an fd is swapped for another at the same count.
//!
//! The caches are keyed by `(pid, start time)`, so a reused pid starts from nothing, and the
//! state of every process that is no longer listed is dropped at the end of the pass.
//!
//! A file fd's path group (`/tmp/upload-#.tmp`, [`parse::fd_path`]) is computed when its
//! target is read, so it costs nothing on a pass that reads no fd target; the groups of a
//! process are counted again only when its fd targets were re-read.

use crate::model::*;
use crate::parse::{
    self, cgroup, fd_path, fdlink::FdTarget, limits, stat, statm, status, thread_name,
};
use crate::sockets::{SocketInfo, SocketReader, SocketTable};
use crate::sys::{self, Dir, Part as P, PathBuf};
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use std::collections::BTreeMap;
use std::io;
use std::sync::Arc;
use std::time::Instant;

/// Knobs with production defaults.
#[derive(Debug, Clone)]
pub struct Options {
    /// Re-read all thread names and fd targets of a process every this many passes.
    pub revalidate_every: u64,
    /// Re-read cgroup membership and rlimits every this many passes (they change rarely).
    pub identity_refresh_every: u64,
    /// Read thread names (the thread count is always read).
    pub thread_names: bool,
    /// Read fd targets and join sockets (the fd count is always read).
    pub fd_details: bool,
    /// Dump the socket table.
    pub sockets: bool,
    /// Include kernel threads (they hold no fds and no sockets).
    pub kernel_threads: bool,
    /// Use `/proc/net/*` instead of netlink sock_diag.
    pub proc_net_sockets: bool,
    /// Most file path groups reported per process (`Fds::paths`, largest first); 0 reads no
    /// path groups at all.
    pub max_fd_paths: usize,
}

/// Distinct path groups one process's cache shares before it starts afresh (the groups of
/// its fds stay; only later fds stop sharing their text with earlier ones).
const MAX_INTERNED_PATHS: usize = 4096;

impl Default for Options {
    fn default() -> Self {
        Options {
            revalidate_every: 16,
            identity_refresh_every: 60,
            thread_names: true,
            fd_details: true,
            sockets: true,
            kernel_threads: false,
            proc_net_sockets: false,
            max_fd_paths: 64,
        }
    }
}

/// Which processes to sample.
pub enum Selection {
    All,
    Pids(std::collections::HashSet<u32>),
    /// Processes whose identity matches (evaluated once per process life and on exec).
    Filter(Box<dyn Fn(&Identity) -> bool + Send>),
}

impl Selection {
    fn wants_pid(&self, pid: u32) -> bool {
        match self {
            Selection::Pids(pids) => pids.contains(&pid),
            _ => true,
        }
    }
}

struct ThreadEntry {
    group: Box<str>,
}

/// What one fd number points at, and its path group when it is a file.
struct FdEntry {
    target: FdTarget,
    /// Shared between the fds of one group ([`ProcState::paths`]).
    path: Option<Arc<str>>,
}

struct ProcState {
    start_time_ticks: u64,
    comm: Vec<u8>,
    identity: Identity,
    selected: bool,
    identity_pass: u64,
    identity_partial: Vec<Partial>,
    cgroups: cgroup::ProcCgroups,
    limits: Option<limits::ProcLimits>,
    threads: HashMap<u32, ThreadEntry>,
    /// Name groups computed from `threads`; dropped whenever `threads` changes.
    groups: Option<Vec<NameCount>>,
    /// The fields only `status` has, from its last read (every revalidation pass).
    status_detail: Option<status::Status>,
    /// Thread count when the names were last listed.
    threads_listed_count: Option<u32>,
    fds: HashMap<u32, FdEntry>,
    /// Fd count when the fd table was last listed.
    fds_listed_count: Option<u64>,
    /// The path groups of `fds`, interned (at most [`MAX_INTERNED_PATHS`]); cleared with
    /// `fds` on revalidation.
    paths: HashSet<Arc<str>>,
    /// Path groups counted from `fds`; dropped whenever `fds` is refreshed.
    path_groups: Option<Vec<NameCount>>,
    /// The process's network namespace, when it is not the sampler's own: its sockets are
    /// looked up in that namespace's table (`/proc/PID/net/*`). Read with the identity.
    netns: Option<u64>,
    seen_pass: u64,
}

impl ProcState {
    /// The state of a process first seen (or seen with a new start time) in pass `pass`:
    /// nothing read or cached yet.
    fn new(start_time_ticks: u64, pass: u64) -> ProcState {
        ProcState {
            start_time_ticks,
            comm: Vec::new(),
            identity: Identity::default(),
            selected: false,
            identity_pass: 0,
            identity_partial: Vec::new(),
            cgroups: cgroup::ProcCgroups::default(),
            limits: None,
            threads: HashMap::default(),
            groups: None,
            status_detail: None,
            threads_listed_count: None,
            fds: HashMap::default(),
            fds_listed_count: None,
            paths: HashSet::default(),
            path_groups: None,
            netns: None,
            seen_pass: pass,
        }
    }
}

/// Per-cgroup values, read once per pass however many processes share the cgroup.
#[derive(Clone, Copy, Default)]
struct CgroupValues {
    memory_current: Option<u64>,
    memory_max: Option<u64>,
    pids_current: Option<u64>,
    pids_max: Option<u64>,
}

pub struct Sampler {
    options: Options,
    selection: Selection,
    proc_dir: Dir,
    ticks_per_second: u64,
    page_size: u64,
    boot_time_unix_ms: i64,
    mounts: cgroup::CgroupMounts,
    socket_reader: Option<SocketReader>,
    socket_table: SocketTable,
    /// The sampler's own network namespace inode (`/proc/self/ns/net`).
    own_netns: Option<u64>,
    /// Socket tables of other network namespaces (containers), read at most once per pass
    /// each, when a process in one is sampled; cleared every pass.
    netns_tables: HashMap<u64, SocketTable>,
    processes: HashMap<u32, ProcState>,
    cgroup_values: HashMap<String, CgroupValues>,
    pass: u64,
    reads: u64,
    // Reused buffers: the pass allocates only for what it reports.
    buf: Vec<u8>,
    dents: Vec<u8>,
    path: PathBuf,
    pids: Vec<u32>,
    ids: Vec<u32>,
}

impl Sampler {
    pub fn new(options: Options, selection: Selection) -> io::Result<Sampler> {
        let proc_dir = Dir::open(c"/proc")?;
        let mut buf = Vec::new();
        proc_dir.read(c"stat", &mut buf)?;
        let boot_time_secs = buf
            .split(|&b| b == b'\n')
            .find_map(|line| line.strip_prefix(b"btime "))
            .and_then(|v| parse::parse_u64(parse::trim(v)))
            .ok_or_else(|| io::Error::other("no btime in /proc/stat"))?;
        let mounts = match sys::read_at(libc::AT_FDCWD, c"/proc/self/mountinfo", &mut buf) {
            Ok(()) => cgroup::parse_mountinfo(&buf),
            Err(_) => cgroup::CgroupMounts::default(),
        };
        let socket_reader = if !options.sockets || !options.fd_details {
            None
        } else if options.proc_net_sockets {
            Some(SocketReader::proc_net_only())
        } else {
            Some(SocketReader::new())
        };
        let own_netns = std::fs::read_link("/proc/self/ns/net")
            .ok()
            .and_then(|link| netns_inode(link.as_os_str().as_encoded_bytes()));
        Ok(Sampler {
            own_netns,
            netns_tables: HashMap::default(),
            options,
            selection,
            proc_dir,
            ticks_per_second: sys::clock_ticks_per_second(),
            page_size: sys::page_size(),
            boot_time_unix_ms: boot_time_secs as i64 * 1000,
            mounts,
            socket_reader,
            socket_table: SocketTable::default(),
            processes: HashMap::default(),
            cgroup_values: HashMap::default(),
            pass: 0,
            reads: 0,
            buf,
            dents: Vec::new(),
            path: PathBuf::default(),
            pids: Vec::new(),
            ids: Vec::new(),
        })
    }

    /// Why socket states are not read through netlink, if they are not.
    pub fn netlink_error(&self) -> Option<&str> {
        self.socket_reader.as_ref().and_then(|r| r.netlink_error())
    }

    /// Number of processes with cached state (bounded by the processes alive at the last pass).
    pub fn cached_processes(&self) -> usize {
        self.processes.len()
    }

    /// One pass over the host.
    pub fn sample(&mut self) -> io::Result<HostSample> {
        let started = Instant::now();
        let cpu_before = sys::thread_cpu_us();
        let time_unix_ms = leakwatch_model::time::now_ms();
        self.pass += 1;
        self.reads = 0;
        self.cgroup_values.clear();
        self.netns_tables.clear();

        let socket_source = match self.socket_reader.as_mut() {
            Some(reader) => match reader.read(&mut self.socket_table) {
                Ok(()) => self.socket_table.source.unwrap_or(SocketSource::None),
                Err(_) => SocketSource::None,
            },
            None => SocketSource::None,
        };

        let mut pids = std::mem::take(&mut self.pids);
        self.proc_dir.numeric_entries(&mut pids, &mut self.dents)?;
        pids.sort_unstable();

        let mut processes = Vec::new();
        let mut stats = PassStats::default();
        let mut tasks_total = 0u64;
        for &pid in &pids {
            match self.sample_process(pid, &mut tasks_total) {
                Ok(Some(process)) => {
                    if !process.partial.is_empty() {
                        stats.partial += 1;
                    }
                    processes.push(process);
                }
                Ok(None) => {}
                Err(_) => stats.vanished += 1,
            }
        }
        let processes_total = pids.len() as u64;
        self.pids = pids;

        // Forget every process that was not seen in this pass: the caches never outlive it.
        let pass = self.pass;
        self.processes.retain(|_, state| state.seen_pass == pass);
        if self.processes.capacity() > 4 * self.processes.len().max(256) {
            self.processes.shrink_to_fit();
        }

        let host = HostInfo {
            threads_max: self.read_limit(c"sys/kernel/threads-max"),
            pid_max: self.read_limit(c"sys/kernel/pid_max"),
            tasks_total,
            cgroup_layout: self.mounts.layout().to_string(),
            processes_total,
        };
        stats.cache_entries = self
            .processes
            .values()
            .map(|p| 1 + p.threads.len() as u64 + p.fds.len() as u64)
            .sum();
        stats.reads = self.reads;
        stats.wall_us = started.elapsed().as_micros() as u64;
        stats.cpu_us = sys::thread_cpu_us().saturating_sub(cpu_before);
        Ok(HostSample {
            time_unix_ms,
            host,
            socket_source,
            processes,
            stats,
        })
    }

    fn read_limit(&mut self, name: &std::ffi::CStr) -> Option<u64> {
        self.proc_dir.read(name, &mut self.buf).ok()?;
        parse::limit_value(&self.buf)
    }

    /// Samples one process. `Err` means it vanished before anything could be read;
    /// `Ok(None)` that it is not selected.
    fn sample_process(
        &mut self,
        pid: u32,
        tasks_total: &mut u64,
    ) -> io::Result<Option<ProcessSample>> {
        let pass = self.pass;
        let dir = Dir::open_at(
            self.proc_dir.fd(),
            self.path.build(&[P::Num(u64::from(pid))]),
        )?;
        dir.read(c"stat", &mut self.buf)?;
        self.reads += 2;
        let stat = stat::parse(&self.buf).map_err(io::Error::other)?;
        *tasks_total += u64::from(stat.num_threads);
        if !self.options.kernel_threads && stat.flags & stat::PF_KTHREAD != 0 {
            return Ok(None);
        }
        if !self.selection.wants_pid(pid) {
            return Ok(None);
        }
        let start_time_ticks = stat.start_time_ticks;
        let fresh = self
            .processes
            .get(&pid)
            .is_none_or(|state| state.start_time_ticks != start_time_ticks);
        if fresh {
            self.processes
                .insert(pid, ProcState::new(start_time_ticks, pass));
        }
        let state_letter = stat.state as char;
        let ppid = stat.ppid;
        let (pgid, sid) = (stat.pgrp, stat.session);
        let num_threads = stat.num_threads;
        let mut cpu = Cpu {
            user_ms: stat.utime_ticks * 1000 / self.ticks_per_second,
            system_ms: stat.stime_ticks * 1000 / self.ticks_per_second,
            voluntary_ctxt_switches: None,
            nonvoluntary_ctxt_switches: None,
        };
        let mut memory = Memory {
            rss: stat.rss_pages * self.page_size,
            vm_size: stat.vsize,
            ..Memory::default()
        };
        // exec keeps the pid and start time but changes comm: re-read the identity then.
        let comm_changed = self.processes[&pid].comm != stat.comm;
        let comm = stat.comm.to_vec();

        let refresh_identity = fresh
            || comm_changed
            || pass.saturating_sub(self.processes[&pid].identity_pass)
                >= self.options.identity_refresh_every;
        if refresh_identity {
            self.refresh_identity(&dir, pid, ppid, start_time_ticks, comm);
        }
        let state = self.processes.get_mut(&pid).expect("inserted above");
        state.seen_pass = pass;
        state.identity.ppid = ppid;
        state.identity.pgid = pgid;
        state.identity.sid = sid;
        if !state.selected {
            return Ok(None);
        }

        let mut partial = state.identity_partial.clone();
        let revalidate =
            (u64::from(pid) + pass).is_multiple_of(self.options.revalidate_every.max(1));
        self.sample_memory(&dir, pid, revalidate, &mut memory, &mut cpu, &mut partial);
        let threads = self.sample_threads(&dir, pid, num_threads, revalidate, &mut partial);
        let (fds, sockets) = self.sample_fds(&dir, pid, revalidate, &mut partial);
        let limits = self.sample_limits(pid, &mut memory);
        let identity = self.processes[&pid].identity.clone();
        partial.sort_by_key(|p| p.part);
        partial.dedup_by_key(|p| p.part);
        Ok(Some(ProcessSample {
            identity,
            state: state_letter,
            threads,
            fds,
            sockets,
            memory,
            limits,
            cpu,
            partial,
        }))
    }

    /// Fills in memory from `statm` (every pass: cheap) and, with the context switches,
    /// from `status` (only when revalidating or never read, for the slow-moving fields
    /// only it has: shared memory, swap, context switches).
    fn sample_memory(
        &mut self,
        dir: &Dir,
        pid: u32,
        revalidate: bool,
        memory: &mut Memory,
        cpu: &mut Cpu,
        partial: &mut Vec<Partial>,
    ) {
        match dir.read(c"statm", &mut self.buf) {
            Ok(()) => match statm::parse(&self.buf) {
                Some(pages) => {
                    memory.rss = pages.resident * self.page_size;
                    memory.rss_anon =
                        Some(pages.resident.saturating_sub(pages.shared) * self.page_size);
                    memory.rss_file = Some(pages.shared * self.page_size);
                    memory.vm_data = Some(pages.data * self.page_size);
                }
                None => partial.push(Partial {
                    part: Part::Memory,
                    reason: Reason::Malformed,
                }),
            },
            Err(error) => partial.push(Partial {
                part: Part::Memory,
                reason: Reason::from_io(&error),
            }),
        }
        self.reads += 1;
        let state = self.processes.get_mut(&pid).expect("state exists");
        if revalidate || state.status_detail.is_none() {
            self.reads += 1;
            match dir.read(c"status", &mut self.buf) {
                Ok(()) => state.status_detail = Some(status::parse(&self.buf)),
                Err(error) => partial.push(Partial {
                    part: Part::Status,
                    reason: Reason::from_io(&error),
                }),
            }
        }
        if let Some(detail) = &state.status_detail {
            memory.rss_shmem = detail.rss_shmem;
            memory.swap = detail.vm_swap;
            cpu.voluntary_ctxt_switches = detail.voluntary_ctxt_switches;
            cpu.nonvoluntary_ctxt_switches = detail.nonvoluntary_ctxt_switches;
        }
    }

    /// The process's limits: its rlimits (read with the identity) and its cgroup's pids
    /// values; fills in the cgroup's memory values on the way.
    fn sample_limits(&mut self, pid: u32, memory: &mut Memory) -> Limits {
        let state = &self.processes[&pid];
        let limits_read = state.limits.clone().unwrap_or_default();
        let cgroups = state.cgroups.clone();
        let values = self.cgroup_values(&cgroups);
        memory.cgroup = cgroup::memory_cgroup(&cgroups, &self.mounts);
        memory.cgroup_current = values.memory_current;
        memory.cgroup_max = values.memory_max;
        Limits {
            nofile_soft: limits_read.nofile.soft,
            nofile_hard: limits_read.nofile.hard,
            nproc_soft: limits_read.nproc.soft,
            nproc_hard: limits_read.nproc.hard,
            cgroup_pids_max: values.pids_max,
            cgroup_pids_current: values.pids_current,
        }
    }

    fn refresh_identity(&mut self, dir: &Dir, pid: u32, ppid: u32, start: u64, comm: Vec<u8>) {
        let mut partial = Vec::new();
        let mut note = |part: Part, error: &io::Error| {
            partial.push(Partial {
                part,
                reason: Reason::from_io(error),
            })
        };
        let cmdline = match dir.read(c"cmdline", &mut self.buf) {
            Ok(()) => parse::cmdline(&self.buf),
            Err(error) => {
                note(Part::Cmdline, &error);
                Vec::new()
            }
        };
        let exe = match dir.readlink(c"exe", &mut self.buf) {
            Ok(()) => Some(String::from_utf8_lossy(&self.buf).into_owned()),
            Err(error) => {
                note(Part::Exe, &error);
                None
            }
        };
        let uid = match dir.read(c"status", &mut self.buf) {
            Ok(()) => status::parse(&self.buf).uid,
            Err(error) => {
                note(Part::Status, &error);
                None
            }
        };
        let cgroups = match dir.read(c"cgroup", &mut self.buf) {
            Ok(()) => cgroup::parse(&self.buf),
            Err(error) => {
                note(Part::Cgroup, &error);
                cgroup::ProcCgroups::default()
            }
        };
        let proc_limits = match dir.read(c"limits", &mut self.buf) {
            Ok(()) => Some(limits::parse(&self.buf)),
            Err(error) => {
                note(Part::Limits, &error);
                None
            }
        };
        self.reads += 5;
        // Only worth knowing when sockets are joined: a process in another network
        // namespace (a container) has its sockets in that namespace's table.
        let netns = if self.socket_reader.is_some() && self.own_netns.is_some() {
            self.reads += 1;
            match dir.readlink(c"ns/net", &mut self.buf) {
                Ok(()) => netns_inode(&self.buf).filter(|ns| Some(*ns) != self.own_netns),
                Err(_) => None,
            }
        } else {
            None
        };
        let cgroup = cgroups.display_path().map(|path| Cgroup {
            path: path.to_string(),
            unit: cgroup::systemd_unit(path),
            container_id: cgroup::container_id(path),
            pod: cgroup::pod_uid(path),
        });
        let identity = Identity {
            pid,
            ppid,
            // Set with ppid on every pass (`setsid` can change them).
            pgid: 0,
            sid: 0,
            start_time_ticks: start,
            start_time_unix_ms: self.boot_time_unix_ms
                + (start * 1000 / self.ticks_per_second) as i64,
            comm: String::from_utf8_lossy(&comm).into_owned(),
            exe,
            cmdline,
            uid,
            cgroup,
        };
        let selected = match &self.selection {
            Selection::Filter(filter) => filter(&identity),
            _ => true,
        };
        let state = self
            .processes
            .get_mut(&pid)
            .expect("caller inserted the state");
        state.comm = comm;
        state.identity = identity;
        state.selected = selected;
        state.identity_pass = self.pass;
        state.identity_partial = partial;
        state.cgroups = cgroups;
        state.limits = proc_limits;
        state.netns = netns;
    }

    fn sample_threads(
        &mut self,
        dir: &Dir,
        pid: u32,
        num_threads: u32,
        revalidate: bool,
        partial: &mut Vec<Partial>,
    ) -> Threads {
        let state = self.processes.get_mut(&pid).expect("state exists");
        let unchanged = state.threads_listed_count == Some(num_threads);
        if self.options.thread_names && (!unchanged || revalidate) {
            let listed = Dir::open_at(dir.fd(), c"task")
                .and_then(|task| task.numeric_entries(&mut self.ids, &mut self.dents));
            self.reads += 1;
            match listed {
                Ok(()) => {
                    state.groups = None;
                    if revalidate {
                        state.threads.clear();
                    }
                    let live: HashSet<u32> = self.ids.iter().copied().collect();
                    state.threads.retain(|tid, _| live.contains(tid));
                    for &tid in &self.ids {
                        if state.threads.contains_key(&tid) {
                            continue;
                        }
                        let name = self.path.build(&[
                            P::Str("task/"),
                            P::Num(u64::from(tid)),
                            P::Str("/comm"),
                        ]);
                        self.reads += 1;
                        match dir.read(name, &mut self.buf) {
                            Ok(()) => {
                                let group = thread_name::normalise(&self.buf).into_boxed_str();
                                state.threads.insert(tid, ThreadEntry { group });
                            }
                            // The thread exited between the listing and the read.
                            Err(error) if Reason::from_io(&error) == Reason::Exited => {}
                            Err(error) => {
                                partial.push(Partial {
                                    part: Part::ThreadNames,
                                    reason: Reason::from_io(&error),
                                });
                                break;
                            }
                        }
                    }
                    state.threads_listed_count = Some(num_threads);
                }
                Err(error) => partial.push(Partial {
                    part: Part::Threads,
                    reason: Reason::from_io(&error),
                }),
            }
        }
        if let Some(groups) = &state.groups {
            return Threads {
                total: num_threads,
                groups: groups.clone(),
            };
        }
        let groups = ranked(state.threads.values().map(|entry| &*entry.group));
        state.groups = Some(groups.clone());
        Threads {
            total: num_threads,
            groups,
        }
    }

    /// Counts the fds of one process by kind and its sockets by protocol, state and peer,
    /// reading fd targets only when the fd table may have changed (see the module doc).
    fn sample_fds(
        &mut self,
        dir: &Dir,
        pid: u32,
        revalidate: bool,
        partial: &mut Vec<Partial>,
    ) -> (Fds, Sockets) {
        let foreign = self.processes.get(&pid).and_then(|s| s.netns);
        if let Some(ns) = foreign {
            self.load_netns_table(ns, pid);
        }
        self.reads += 1;
        let count = match dir.stat_size(c"fd") {
            Ok(size) => size,
            Err(error) => {
                partial.push(Partial {
                    part: Part::Fds,
                    reason: Reason::from_io(&error),
                });
                return (Fds::default(), Sockets::default());
            }
        };
        let total = self
            .refresh_fd_targets(dir, pid, foreign, count, revalidate, partial)
            .unwrap_or(count as u32);
        let socket_table = socket_table_of(&self.netns_tables, &self.socket_table, foreign);
        let state = self.processes.get_mut(&pid).expect("state exists");
        let (by_kind, sockets) = count_fds(&state.fds, socket_table);
        let paths = match &state.path_groups {
            Some(groups) => groups.clone(),
            None => {
                let groups = count_paths(&state.fds, self.options.max_fd_paths);
                state.path_groups = Some(groups.clone());
                groups
            }
        };
        (
            Fds {
                total,
                by_kind,
                paths,
            },
            sockets,
        )
    }

    /// Reads the socket table of the foreign network namespace `ns` through `pid`, once
    /// per pass. A failure leaves the table empty: its sockets count as "other".
    fn load_netns_table(&mut self, ns: u64, pid: u32) {
        if self.netns_tables.contains_key(&ns) {
            return;
        }
        let mut table = SocketTable::default();
        if let Some(reader) = self.socket_reader.as_mut() {
            self.reads += 5;
            let _ = reader.read_proc_net_of(pid, &mut table);
        }
        self.netns_tables.insert(ns, table);
    }

    /// Brings the cached fd targets of `pid` up to date when its fd count (`count`, the
    /// `st_size` of its fd directory) changed, a socket it held vanished, or it is
    /// revalidated: lists the fd directory and reads the targets of new fd numbers only.
    /// Returns the listed number of fds when the kernel reports no count (`st_size` 0).
    fn refresh_fd_targets(
        &mut self,
        dir: &Dir,
        pid: u32,
        foreign: Option<u64>,
        count: u64,
        revalidate: bool,
        partial: &mut Vec<Partial>,
    ) -> Option<u32> {
        let socket_table = socket_table_of(&self.netns_tables, &self.socket_table, foreign);
        let state = self.processes.get_mut(&pid).expect("state exists");
        // A socket we cached that is gone from the table means its fd was closed, and the
        // number may now hold something else.
        let check_sockets = self.socket_reader.is_some();
        let socket_vanished = check_sockets
            && state.fds.values().any(|entry| match entry.target {
                FdTarget::Socket(inode) => !socket_table.by_inode.contains_key(&inode),
                FdTarget::Other(_) => false,
            });
        // Kernels before 6.2 report st_size 0 for the fd directory: then always list.
        let count_known = count > 0;
        let unchanged = count_known && state.fds_listed_count == Some(count);
        let refresh = self.options.fd_details && (!unchanged || revalidate || socket_vanished);
        if !refresh {
            return None;
        }
        let listed = Dir::open_at(dir.fd(), c"fd")
            .and_then(|fd_dir| fd_dir.numeric_entries(&mut self.ids, &mut self.dents));
        self.reads += 1;
        if let Err(error) = listed {
            partial.push(Partial {
                part: Part::Fds,
                reason: Reason::from_io(&error),
            });
            return None;
        }
        state.path_groups = None;
        if revalidate {
            state.fds.clear();
            state.paths.clear();
        }
        if state.paths.len() > MAX_INTERNED_PATHS {
            state.paths.clear();
        }
        let live: HashSet<u32> = self.ids.iter().copied().collect();
        let table = &socket_table.by_inode;
        state.fds.retain(|fd, entry| {
            live.contains(fd)
                && match entry.target {
                    FdTarget::Socket(inode) => !check_sockets || table.contains_key(&inode),
                    FdTarget::Other(_) => true,
                }
        });
        let max_fd_paths = self.options.max_fd_paths;
        for &fd in &self.ids {
            if state.fds.contains_key(&fd) {
                continue;
            }
            let name = self.path.build(&[P::Str("fd/"), P::Num(u64::from(fd))]);
            self.reads += 1;
            match dir.readlink(name, &mut self.buf) {
                Ok(()) => {
                    let target = parse::fdlink::classify(&self.buf);
                    let path = (max_fd_paths > 0 && target == FdTarget::Other(FdKind::File))
                        .then(|| intern(&mut state.paths, fd_path::group(&self.buf)));
                    state.fds.insert(fd, FdEntry { target, path });
                }
                // Closed between the listing and the readlink.
                Err(error) if Reason::from_io(&error) == Reason::Exited => {}
                Err(error) => {
                    partial.push(Partial {
                        part: Part::Fds,
                        reason: Reason::from_io(&error),
                    });
                    break;
                }
            }
        }
        let n_listed = self.ids.len() as u64;
        state.fds_listed_count = Some(if count_known { count } else { n_listed });
        (!count_known).then_some(n_listed as u32)
    }

    /// The root cgroup is the whole host, not a limit on the process: it gives no values.
    fn cgroup_values(&mut self, cgroups: &cgroup::ProcCgroups) -> CgroupValues {
        let memory_mount = self
            .mounts
            .memory_v1
            .as_ref()
            .or(self.mounts.unified.as_ref());
        let memory_dir = cgroup::memory_cgroup(cgroups, &self.mounts)
            .path()
            .zip(memory_mount)
            .and_then(|(path, mount)| mount.dir(path));
        let pids_dir = match (&self.mounts.unified, &cgroups.unified) {
            // Pure v2: every controller lives in the unified hierarchy.
            (Some(mount), Some(path)) if self.mounts.memory_v1.is_none() => {
                (path != "/").then(|| mount.dir(path)).flatten()
            }
            _ => self
                .mounts
                .pids_v1
                .as_ref()
                .zip(cgroups.pids.as_ref())
                .and_then(|(m, p)| (p != "/").then(|| m.dir(p)).flatten()),
        };
        let v1 = self.mounts.memory_v1.is_some();
        let key = format!(
            "{}\0{}",
            memory_dir.as_deref().unwrap_or(""),
            pids_dir.as_deref().unwrap_or("")
        );
        if let Some(values) = self.cgroup_values.get(&key) {
            return *values;
        }
        let mut values = CgroupValues::default();
        let mut read = |dir: &Option<String>, file: &str| -> Option<u64> {
            let path = std::ffi::CString::new(format!("{}/{file}", dir.as_deref()?)).ok()?;
            sys::read_at(libc::AT_FDCWD, &path, &mut self.buf).ok()?;
            parse::limit_value(&self.buf)
        };
        if v1 {
            values.memory_current = read(&memory_dir, "memory.usage_in_bytes");
            values.memory_max = read(&memory_dir, "memory.limit_in_bytes");
        } else {
            values.memory_current = read(&memory_dir, "memory.current");
            values.memory_max = read(&memory_dir, "memory.max");
        }
        values.pids_current = read(&pids_dir, "pids.current");
        values.pids_max = read(&pids_dir, "pids.max");
        self.reads += 4;
        self.cgroup_values.insert(key, values);
        values
    }
}

/// The socket table that holds a process's sockets: its network namespace's when that is
/// not the sampler's own (`netns`), else the sampler's.
fn socket_table_of<'a>(
    netns_tables: &'a HashMap<u64, SocketTable>,
    own: &'a SocketTable,
    netns: Option<u64>,
) -> &'a SocketTable {
    match netns.and_then(|ns| netns_tables.get(&ns)) {
        Some(table) => table,
        None => own,
    }
}

/// Counts fds by kind and joins the sockets among them to the socket table: TCP by state
/// and by peer (most first), UDP, Unix, and sockets not in the table as "other".
fn count_fds(
    fds: &HashMap<u32, FdEntry>,
    socket_table: &SocketTable,
) -> (BTreeMap<FdKind, u32>, Sockets) {
    let mut by_kind = BTreeMap::new();
    let mut sockets = Sockets::default();
    let mut peers: HashMap<(TcpState, Peer), u32> = HashMap::default();
    for FdEntry { target, .. } in fds.values() {
        *by_kind.entry(target.kind()).or_insert(0u32) += 1;
        let FdTarget::Socket(inode) = target else {
            continue;
        };
        match socket_table.by_inode.get(inode) {
            Some(SocketInfo::Tcp(socket)) => {
                let tcp_state = TcpState::from_kernel(socket.state);
                *sockets.tcp.entry(tcp_state).or_insert(0) += 1;
                if tcp_state != TcpState::Listen {
                    let inbound = socket_table.listening_ports.contains(&socket.local.1);
                    let peer = if inbound {
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
                    *peers.entry((tcp_state, peer)).or_insert(0) += 1;
                }
            }
            Some(SocketInfo::Udp) => sockets.udp += 1,
            Some(SocketInfo::Unix) => sockets.unix += 1,
            None => sockets.other += 1,
        }
    }
    sockets.tcp_peers = peers
        .into_iter()
        .map(|((state, peer), count)| PeerCount { state, peer, count })
        .collect();
    sockets.tcp_peers.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then_with(|| a.state.cmp(&b.state))
            .then_with(|| a.peer.cmp(&b.peer))
    });
    (by_kind, sockets)
}

/// The shared copy of `group` in `paths`, added when it is new.
fn intern(paths: &mut HashSet<Arc<str>>, group: String) -> Arc<str> {
    if let Some(shared) = paths.get(group.as_str()) {
        return Arc::clone(shared);
    }
    let shared: Arc<str> = Arc::from(group);
    paths.insert(Arc::clone(&shared));
    shared
}

/// File fds per path group, the `max` largest (ties by name).
fn count_paths(fds: &HashMap<u32, FdEntry>, max: usize) -> Vec<NameCount> {
    if max == 0 {
        return Vec::new();
    }
    let mut groups = ranked(fds.values().filter_map(|entry| entry.path.as_deref()));
    groups.truncate(max);
    groups
}

/// How often each name occurs, most frequent first (ties by name): thread groups and fd
/// path groups.
fn ranked<'a>(names: impl Iterator<Item = &'a str>) -> Vec<NameCount> {
    let mut counts: HashMap<&str, u32> = HashMap::default();
    for name in names {
        *counts.entry(name).or_default() += 1;
    }
    let mut groups: Vec<NameCount> = counts
        .into_iter()
        .map(|(name, count)| NameCount {
            name: name.to_string(),
            count,
        })
        .collect();
    groups.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.name.cmp(&b.name)));
    groups
}

/// `net:[4026531840]` -> 4026531840.
fn netns_inode(link: &[u8]) -> Option<u64> {
    link.strip_prefix(b"net:[")
        .and_then(|rest| rest.strip_suffix(b"]"))
        .and_then(parse::parse_u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str) -> FdEntry {
        FdEntry {
            target: FdTarget::Other(FdKind::File),
            path: Some(Arc::from(path)),
        }
    }

    #[test]
    fn path_groups_are_counted_largest_first_and_bounded() {
        let mut fds: HashMap<u32, FdEntry> = HashMap::default();
        for fd in 0..5 {
            fds.insert(fd, file("/srv/orders/order-audit.log"));
        }
        for fd in 5..8 {
            fds.insert(fd, file("/tmp/upload-#.tmp"));
        }
        fds.insert(8, file("/tmp/b"));
        fds.insert(9, file("/tmp/a"));
        fds.insert(
            10,
            FdEntry {
                target: FdTarget::Socket(7),
                path: None,
            },
        );
        let groups = count_paths(&fds, 3);
        let got: Vec<(&str, u32)> = groups.iter().map(|g| (g.name.as_str(), g.count)).collect();
        assert_eq!(
            got,
            [
                ("/srv/orders/order-audit.log", 5),
                ("/tmp/upload-#.tmp", 3),
                ("/tmp/a", 1)
            ]
        );
        assert!(count_paths(&fds, 0).is_empty());
        assert_eq!(count_paths(&fds, 100).len(), 4);
    }

    #[test]
    fn interned_groups_share_their_text() {
        let mut paths = HashSet::default();
        let a = intern(&mut paths, "/x/#.log".to_string());
        let b = intern(&mut paths, "/x/#.log".to_string());
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(paths.len(), 1);
    }

    /// This test process itself: handles to one log file, numbered temp files collapsed into
    /// one group, a deleted file marked. Other tests open and close fds in this process at
    /// the same time (an open and a close between two passes leave the count unchanged), so
    /// every pass re-reads here; the count-driven refresh is tested on a process of its own
    /// (`crates/testkit/tests/fd_paths.rs`).
    #[test]
    fn own_files_are_grouped_by_path() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("order-audit.log");
        let mut held = Vec::new();
        for _ in 0..6 {
            held.push(std::fs::File::create(&log).unwrap());
        }
        for n in [1, 22, 333] {
            held.push(std::fs::File::create(dir.path().join(format!("upload-{n}.tmp"))).unwrap());
        }
        let gone = dir.path().join("gone-1.dat");
        held.push(std::fs::File::create(&gone).unwrap());
        std::fs::remove_file(&gone).unwrap();

        let pid = std::process::id();
        let options = Options {
            sockets: false,
            revalidate_every: 1,
            ..Options::default()
        };
        let mut sampler =
            Sampler::new(options, Selection::Pids([pid].into_iter().collect())).unwrap();
        let count_of = |sampler: &mut Sampler, name: &str| -> u32 {
            let sample = sampler.sample().unwrap();
            let me = sample
                .processes
                .iter()
                .find(|p| p.identity.pid == pid)
                .unwrap();
            me.fds
                .paths
                .iter()
                .find(|g| g.name == name)
                .map_or(0, |g| g.count)
        };
        let base = dir.path().to_str().unwrap().to_string();
        // The temp dir's own name may hold digits: group it the same way.
        let base = fd_path::group(base.as_bytes());
        assert_eq!(
            count_of(&mut sampler, &format!("{base}/order-audit.log")),
            6
        );
        assert_eq!(count_of(&mut sampler, &format!("{base}/upload-#.tmp")), 3);
        assert_eq!(
            count_of(&mut sampler, &format!("{base}/gone-#.dat (deleted)")),
            1
        );
        held.push(std::fs::File::open(&log).unwrap());
        assert_eq!(
            count_of(&mut sampler, &format!("{base}/order-audit.log")),
            7
        );
    }
}
