//! Targets: what a user thinks of as "the service". Processes are grouped by a configured
//! rule, else their systemd service, else their container, else their executable and
//! command line; all processes of a target, across restarts, form one history.

use crate::config::TargetRule;
use leakwatch_model::{
    Attribution, FdKind, MemoryKind, Resource, SeriesKey, SocketKind, TargetKind, TcpState,
};
use leakwatch_proc::parse::cgroup::{cgroup_kind, CgroupKind};
use leakwatch_proc::{HostInfo, MemoryCgroup, Part, ProcessSample};
use regex::Regex;
use std::collections::{BTreeMap, BTreeSet, HashMap};

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TargetName {
    pub name: String,
    pub kind: TargetKind,
}

struct CompiledRule {
    name: String,
    comm: Option<Regex>,
    cmdline: Option<Regex>,
    uid: Option<u32>,
}

/// Decides the target of each process.
pub struct Targeting {
    rules: Vec<CompiledRule>,
    /// Every process belongs to this target (`leakwatch run`).
    single: Option<String>,
}

impl Targeting {
    /// Rules must have been validated (`Config::validate`), so their regexes compile.
    pub fn new(rules: &[TargetRule]) -> Targeting {
        let compile = |p: &Option<String>| p.as_deref().map(|p| Regex::new(p).expect("validated"));
        Targeting {
            rules: rules
                .iter()
                .map(|rule| CompiledRule {
                    name: rule.name.clone(),
                    comm: compile(&rule.comm),
                    cmdline: compile(&rule.cmdline),
                    uid: rule.uid,
                })
                .collect(),
            single: None,
        }
    }

    /// Every process is this one target: what `leakwatch run` supervises.
    pub fn single(name: &str) -> Targeting {
        Targeting {
            rules: Vec::new(),
            single: Some(name.to_string()),
        }
    }

    pub fn is_single(&self) -> bool {
        self.single.is_some()
    }

    pub fn target_of(&self, process: &ProcessSample) -> TargetName {
        if let Some(name) = &self.single {
            return TargetName {
                name: name.clone(),
                kind: TargetKind::Run,
            };
        }
        let id = &process.identity;
        let cmdline = id.cmdline.join(" ");
        for rule in &self.rules {
            let comm_ok = rule.comm.as_ref().is_none_or(|re| re.is_match(&id.comm));
            let cmdline_ok = rule.cmdline.as_ref().is_none_or(|re| re.is_match(&cmdline));
            let uid_ok = rule.uid.is_none_or(|uid| id.uid == Some(uid));
            if comm_ok && cmdline_ok && uid_ok {
                return TargetName {
                    name: rule.name.clone(),
                    kind: TargetKind::Rule,
                };
            }
        }
        if let Some(cgroup) = &id.cgroup {
            if let Some(unit) = cgroup.unit.as_deref().filter(|u| u.ends_with(".service")) {
                return TargetName {
                    name: leakwatch_model::text::visible(unit),
                    kind: TargetKind::Unit,
                };
            }
            if let Some(container) = &cgroup.container_id {
                return TargetName {
                    name: format!("container-{}", &container[..12]),
                    kind: TargetKind::Container,
                };
            }
        }
        TargetName {
            name: exe_target_name(id.exe.as_deref(), &id.comm, &id.cmdline),
            kind: TargetKind::Exe,
        }
    }
}

/// `java-3fa2c1`: the executable's base name and a hash of executable and command line with
/// digits collapsed, so a restart with a new port or pid file in its arguments is the same
/// target, while two different services run by the same interpreter are not.
pub fn exe_target_name(exe: Option<&str>, comm: &str, cmdline: &[String]) -> String {
    let base = exe
        .and_then(|e| e.rsplit('/').next())
        .map(|e| e.trim_end_matches(" (deleted)"))
        .filter(|e| !e.is_empty())
        .unwrap_or(comm);
    // FNV-1a: stable across releases and platforms, unlike std's hasher.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        let mut previous_digit = false;
        for &b in bytes {
            let digit = b.is_ascii_digit();
            if digit && previous_digit {
                continue;
            }
            previous_digit = digit;
            hash ^= u64::from(if digit { b'#' } else { b });
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        hash ^= 0xff;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    };
    feed(exe.unwrap_or(comm).as_bytes());
    for arg in cmdline.iter().skip(1) {
        feed(arg.as_bytes());
    }
    // The name is a key, a label and a line of text everywhere: never raw control characters.
    format!(
        "{}-{:06x}",
        leakwatch_model::text::visible(base),
        hash & 0xff_ffff
    )
}

/// The resources of all processes of one target at one instant.
#[derive(Debug, Default, Clone)]
pub struct TargetSample {
    /// `(pid, start time)` of each live process.
    pub processes: Vec<(u32, u64)>,
    pub threads: u64,
    pub thread_groups: HashMap<String, u64>,
    pub threads_max_process: u64,
    pub thread_limit: Option<u64>,
    pub fds: u64,
    pub fd_kinds: BTreeMap<FdKind, u64>,
    pub fds_max_process: u64,
    /// The fd limit of the process with the most fds.
    pub fd_limit: Option<u64>,
    pub tcp_states: BTreeMap<TcpState, u64>,
    /// Per (state, peer), the peer as `leakwatch_proc::Peer` displays it.
    pub tcp_peers: HashMap<(TcpState, String), u64>,
    pub udp: u64,
    pub unix: u64,
    pub rss: u64,
    pub anon: u64,
    pub swap: u64,
    pub cgroup_memory: Option<u64>,
    pub memory_limit: Option<u64>,
    /// Processes whose fds could not be read (not root).
    pub partial: u64,
    /// The memory cgroups of its processes, to tell whether the cgroup's memory is the
    /// target's own ([`cgroup_ownership`]).
    pub memory_cgroups: BTreeSet<MemoryCgroup>,
}

impl TargetSample {
    pub fn add(&mut self, p: &ProcessSample, host: &HostInfo) {
        self.processes
            .push((p.identity.pid, p.identity.start_time_ticks));
        let threads = u64::from(p.threads.total);
        self.threads += threads;
        for group in &p.threads.groups {
            *self.thread_groups.entry(group.name.clone()).or_default() += u64::from(group.count);
        }
        if threads >= self.threads_max_process {
            self.threads_max_process = threads;
            self.thread_limit = p.thread_limit(host).map(|l| l.value);
        }
        let fds = u64::from(p.fds.total);
        self.fds += fds;
        for (kind, n) in &p.fds.by_kind {
            *self.fd_kinds.entry(*kind).or_default() += u64::from(*n);
        }
        if fds >= self.fds_max_process {
            self.fds_max_process = fds;
            self.fd_limit = p.fd_limit().map(|l| l.value);
        }
        for (state, n) in &p.sockets.tcp {
            *self.tcp_states.entry(*state).or_default() += u64::from(*n);
        }
        for peer in &p.sockets.tcp_peers {
            let key = (peer.state, peer.peer.to_string());
            *self.tcp_peers.entry(key).or_default() += u64::from(peer.count);
        }
        self.udp += u64::from(p.sockets.udp);
        self.unix += u64::from(p.sockets.unix);
        self.rss += p.memory.rss;
        self.anon += p.memory.rss_anon.unwrap_or(0);
        self.swap += p.memory.swap.unwrap_or(0);
        if p.memory.cgroup_current.is_some() {
            self.cgroup_memory = p.memory.cgroup_current;
            self.memory_limit = p.memory.cgroup_max;
        }
        if !p.partial.is_empty() {
            self.partial += 1;
        }
        // A cgroup file read only in part is no evidence of where the memory is.
        let cgroup_unread = p.partial.iter().any(|partial| partial.part == Part::Cgroup);
        self.memory_cgroups.insert(if cgroup_unread {
            MemoryCgroup::Unknown
        } else {
            p.memory.cgroup.clone()
        });
    }

    /// The series of this target, with `max_groups` thread groups and `max_peers` socket
    /// peers at most (the rest summed into "other"), so cardinality is bounded whatever
    /// the processes do.
    pub fn points(
        &self,
        target: &str,
        max_groups: usize,
        max_peers: usize,
    ) -> Vec<(SeriesKey, f64)> {
        let key = |resource: Resource, attribution: Attribution| {
            SeriesKey::new(target, resource, attribution)
        };
        let mut out = Vec::with_capacity(64);
        let mut push = |key: SeriesKey, value: f64| out.push((key, value));
        let n_processes = self.processes.len() as f64;
        push(key(Resource::Processes, Attribution::Total), n_processes);
        push(
            key(Resource::Threads, Attribution::Total),
            self.threads as f64,
        );
        for (name, value) in top_with_other(&self.thread_groups, max_groups) {
            let part = name.map_or(Attribution::Other, Attribution::ThreadGroup);
            push(key(Resource::Threads, part), value as f64);
        }
        let max_threads = key(Resource::Threads, Attribution::MaxProcess);
        if let Some(limit) = self.thread_limit {
            push(max_threads.limit(), limit as f64);
        }
        push(max_threads, self.threads_max_process as f64);
        if self.partial < self.processes.len() as u64 {
            push(key(Resource::Fds, Attribution::Total), self.fds as f64);
            for (kind, n) in &self.fd_kinds {
                push(key(Resource::Fds, Attribution::FdKind(*kind)), *n as f64);
            }
            let max_fds = key(Resource::Fds, Attribution::MaxProcess);
            if let Some(limit) = self.fd_limit {
                push(max_fds.limit(), limit as f64);
            }
            push(max_fds, self.fds_max_process as f64);
            for (state, n) in &self.tcp_states {
                push(key(Resource::Tcp, Attribution::TcpState(*state)), *n as f64);
            }
            for (peer, n) in top_with_other(&self.tcp_peers, max_peers) {
                let part = peer.map_or(Attribution::Other, |(state, peer)| Attribution::TcpPeer {
                    state,
                    peer,
                });
                push(key(Resource::TcpPeer, part), n as f64);
            }
            for (kind, n) in [(SocketKind::Udp, self.udp), (SocketKind::Unix, self.unix)] {
                push(key(Resource::Sockets, Attribution::Socket(kind)), n as f64);
            }
        }
        for (kind, value) in [
            (MemoryKind::Rss, self.rss),
            (MemoryKind::Anon, self.anon),
            (MemoryKind::Swap, self.swap),
        ] {
            push(
                key(Resource::Memory, Attribution::Memory(kind)),
                value as f64,
            );
        }
        if let Some(current) = self.cgroup_memory {
            let cgroup = key(Resource::Memory, Attribution::Memory(MemoryKind::Cgroup));
            if let Some(limit) = self.memory_limit {
                push(cgroup.limit(), limit as f64);
            }
            push(cgroup, current as f64);
        }
        out
    }
}

/// The `n` largest entries by value (ties by key), and the sum of the rest as `None` (the
/// folded "other").
fn top_with_other<K: Ord + Clone>(map: &HashMap<K, u64>, n: usize) -> Vec<(Option<K>, u64)> {
    let mut entries: Vec<(&K, &u64)> = map.iter().collect();
    entries.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
    let mut out: Vec<(Option<K>, u64)> = entries
        .iter()
        .take(n)
        .map(|(k, v)| (Some((*k).clone()), **v))
        .collect();
    let rest: u64 = entries.iter().skip(n).map(|(_, v)| **v).sum();
    if rest > 0 {
        out.push((None, rest));
    }
    out
}

/// Groups one host sample into targets.
pub fn group(
    targeting: &Targeting,
    sample: &leakwatch_proc::HostSample,
) -> BTreeMap<TargetName, TargetSample> {
    let mut targets: BTreeMap<TargetName, TargetSample> = BTreeMap::new();
    for process in &sample.processes {
        targets
            .entry(targeting.target_of(process))
            .or_default()
            .add(process, &sample.host);
    }
    let mut holders: HashMap<&str, usize> = HashMap::new();
    for target in targets.values() {
        for path in target.memory_cgroups.iter().filter_map(MemoryCgroup::path) {
            *holders.entry(path).or_default() += 1;
        }
    }
    let owned: Vec<bool> = targets
        .iter()
        .map(|(name, target)| {
            let holders = |path: &str| holders.get(path).copied().unwrap_or(0);
            cgroup_ownership(name.kind, &target.memory_cgroups, holders) == CgroupOwnership::Owned
        })
        .collect();
    for (target, owned) in targets.values_mut().zip(owned) {
        if !owned {
            target.cgroup_memory = None;
            target.memory_limit = None;
        }
    }
    targets
}

/// Whether a target's cgroup memory (`memory{cgroup}` and its limit) is its own, or why not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupOwnership {
    Owned,
    /// The memory cgroup of one of its processes is not known (its `/proc/PID/cgroup` read
    /// failed or only in part, the memory hierarchy is not mounted, or the path lies outside
    /// the mount): unknown is not owned.
    Unknown,
    /// A process in the root cgroup: the whole host (or a whole cgroup namespace).
    Root,
    /// Its processes are in more than one memory cgroup.
    Split,
    /// Another target has processes in the cgroup.
    Shared,
    /// Not a cgroup a service owns: a login's (`user.slice`, `session-*.scope`), systemd's
    /// `init.scope`, a slice, or, for an automatic target, a cgroup that is neither a
    /// service, a container nor a pod.
    NotOwnable(CgroupKind),
}

/// Decides whether a target owns its memory cgroup, over what was read: the target's kind,
/// the memory cgroups of its processes, and `holders(path)`, the number of targets with
/// processes in a cgroup. Owners are a systemd service (`*.service`), a container, a
/// Kubernetes pod, or, for a configured rule (`[[target]]`), any cgroup of its own below the
/// root; never the root, a login's or systemd's cgroup, a slice, a cgroup that also holds
/// another target's processes, or one not known. `leakwatch run`'s target samples only its
/// own process tree, so it cannot see who else is in the cgroup: it is judged as an
/// automatic target, by the cgroup's kind.
pub fn cgroup_ownership(
    kind: TargetKind,
    cgroups: &BTreeSet<MemoryCgroup>,
    holders: impl Fn(&str) -> usize,
) -> CgroupOwnership {
    if cgroups.is_empty() || cgroups.contains(&MemoryCgroup::Unknown) {
        return CgroupOwnership::Unknown;
    }
    if cgroups.contains(&MemoryCgroup::Root) {
        return CgroupOwnership::Root;
    }
    let mut paths = cgroups.iter().filter_map(MemoryCgroup::path);
    let (Some(path), None) = (paths.next(), paths.next()) else {
        return CgroupOwnership::Split;
    };
    let cgroup = cgroup_kind(path);
    let ownable = match cgroup {
        CgroupKind::Service | CgroupKind::Container | CgroupKind::Pod => true,
        CgroupKind::Other => kind == TargetKind::Rule,
        CgroupKind::Session | CgroupKind::Slice => false,
    };
    if !ownable {
        return CgroupOwnership::NotOwnable(cgroup);
    }
    if holders(path) > 1 {
        return CgroupOwnership::Shared;
    }
    CgroupOwnership::Owned
}

/// Which automatically named targets get a history. A compiler, a shell pipeline or a cron
/// job lives a pass or two under a name of its own (its executable and arguments), and each
/// such name would otherwise be stored with all its series: on a build host, thousands of
/// targets an hour that the agent keeps in memory until they expire. An automatic target is
/// admitted once seen in [`ADMIT_AFTER_PASSES`] consecutive passes, and stays admitted while
/// it comes back within `grace_passes` (a restart, a periodic job). Configured targets
/// (`rule`) and supervised ones (`run`) are admitted at once. Bounded by the targets seen in
/// the last `grace_passes` passes.
pub struct Admission {
    /// Per target: first pass of its current streak, last pass seen, admitted.
    seen: HashMap<String, (u64, u64, bool)>,
    pass: u64,
    grace_passes: u64,
}

/// Consecutive passes before an automatically named target is stored.
pub const ADMIT_AFTER_PASSES: u64 = 3;

impl Admission {
    pub fn new(grace_passes: u64) -> Admission {
        Admission {
            seen: HashMap::new(),
            pass: 0,
            grace_passes,
        }
    }

    /// Keeps the admitted targets of this pass.
    pub fn filter(
        &mut self,
        targets: BTreeMap<TargetName, TargetSample>,
    ) -> BTreeMap<TargetName, TargetSample> {
        self.pass += 1;
        let pass = self.pass;
        let grace = self.grace_passes;
        let admitted = targets
            .into_iter()
            .filter(|(target, _)| {
                // Known targets (nearly all, every pass) without cloning their name.
                if !self.seen.contains_key(&target.name) {
                    self.seen.insert(target.name.clone(), (pass, pass, false));
                }
                let entry = self.seen.get_mut(&target.name).expect("inserted above");
                let (start, last, admitted) = entry;
                if *last + 1 < pass && !(*admitted && pass - *last <= grace) {
                    // A gap: a new streak (an admitted target that was gone too long
                    // starts over too).
                    *start = pass;
                    *admitted = false;
                }
                *last = pass;
                if pass - *start + 1 >= ADMIT_AFTER_PASSES {
                    *admitted = true;
                }
                *admitted || target.kind.is_configured()
            })
            .collect();
        self.seen.retain(|_, (_, last, _)| pass - *last <= grace);
        admitted
    }

    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

/// A process of a target replaced by another, as seen from outside (no exit status).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenRestart {
    pub target: String,
    pub old: (u32, u64),
    pub new: (u32, u64),
}

/// Remembers each target's processes between passes to notice restarts. A target whose
/// processes all vanished is remembered for `grace_passes` passes (a crash loop restarts
/// after a back-off), then forgotten, so the tracker is bounded by live targets.
///
/// Only a process seen in at least [`MIN_LIFE_PASSES`] passes counts as replaced when it
/// goes: a shell pipeline or a cron job that runs `grep` every few seconds is not a service
/// crashing, and reporting it as a crash loop would be crying wolf.
pub struct RestartTracker {
    /// Per target: its processes with the number of passes each was seen, and the pass
    /// the target was last seen in.
    last: HashMap<String, (Vec<Seen>, u64)>,
    pass: u64,
    grace_passes: u64,
}

/// `(pid, start time)`: unique for the uptime of a host.
type ProcessId = (u32, u64);

/// One process of a target as the tracker remembers it.
#[derive(Debug, Clone, Copy)]
struct Seen {
    id: ProcessId,
    /// Passes it has been seen in.
    passes: u32,
    /// Already paired as the successor of a process that went (or there from the start).
    replaced: bool,
}

/// Passes a process must have been seen in before its disappearance counts as a restart.
pub const MIN_LIFE_PASSES: u32 = 3;

impl RestartTracker {
    pub fn new(grace_passes: u64) -> RestartTracker {
        RestartTracker {
            last: HashMap::new(),
            pass: 0,
            grace_passes,
        }
    }

    pub fn observe(
        &mut self,
        targets: &BTreeMap<TargetName, TargetSample>,
        ignore: &dyn Fn(&str) -> bool,
    ) -> Vec<SeenRestart> {
        self.pass += 1;
        let mut restarts = Vec::new();
        for (target, sample) in targets {
            if ignore(&target.name) {
                continue;
            }
            let now = &sample.processes;
            let first_sight = !self.last.contains_key(&target.name);
            let before: Vec<Seen> = self
                .last
                .get(&target.name)
                .map(|(before, _)| before.clone())
                .unwrap_or_default();
            let known = |p: &ProcessId| before.iter().find(|s| s.id == *p);
            let mut updated: Vec<Seen> = now
                .iter()
                .map(|p| match known(p) {
                    Some(seen) => Seen {
                        passes: seen.passes.saturating_add(1),
                        ..*seen
                    },
                    // Processes there when the target is first seen replaced nobody.
                    None => Seen {
                        id: *p,
                        passes: 1,
                        replaced: first_sight,
                    },
                })
                .collect();
            // A process that lived is gone: it was replaced by the youngest process that
            // replaced nobody yet. The successor may have appeared a pass or two before
            // the old one was gone (a graceful restart overlaps), or after a gap.
            for old in before
                .iter()
                .filter(|s| s.passes >= MIN_LIFE_PASSES && !now.contains(&s.id))
            {
                let successor = updated
                    .iter_mut()
                    .filter(|s| !s.replaced && s.passes <= self.grace_passes as u32)
                    .min_by_key(|s| s.passes);
                if let Some(successor) = successor {
                    successor.replaced = true;
                    restarts.push(SeenRestart {
                        target: target.name.clone(),
                        old: old.id,
                        new: successor.id,
                    });
                }
            }
            self.last.insert(target.name.clone(), (updated, self.pass));
        }
        let (pass, grace) = (self.pass, self.grace_passes);
        self.last.retain(|_, (_, seen)| pass - *seen <= grace);
        restarts
    }

    pub fn len(&self) -> usize {
        self.last.len()
    }

    pub fn is_empty(&self) -> bool {
        self.last.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(name: &str, kind: &str) -> BTreeMap<TargetName, TargetSample> {
        BTreeMap::from([(
            TargetName {
                name: name.to_string(),
                kind: TargetKind::parse(kind).unwrap(),
            },
            TargetSample::default(),
        )])
    }

    mod cgroup_memory {
        use super::super::*;
        use leakwatch_proc::parse::cgroup::{
            container_id, memory_cgroup, parse, parse_mountinfo, systemd_unit,
        };
        use leakwatch_proc::{
            Cgroup, Cpu, Fds, HostSample, Identity, Limits, Memory, Partial, PassStats, Reason,
            SocketSource, Sockets, Threads,
        };

        macro_rules! fixture {
            ($name:literal) => {
                include_bytes!(concat!("../../proc/tests/fixtures/", $name)).as_slice()
            };
        }
        const HYBRID: &[u8] = fixture!("mountinfo-hybrid.txt");
        const V2: &[u8] = fixture!("mountinfo-v2.txt");
        const GIB: u64 = 1 << 30;

        /// A process as the sampler reports it, from a `/proc/PID/cgroup` and a mountinfo.
        fn process(pid: u32, comm: &str, cgroup: &[u8], mountinfo: &[u8]) -> ProcessSample {
            let cgroups = parse(cgroup);
            let memory = memory_cgroup(&cgroups, &parse_mountinfo(mountinfo));
            let read = memory != MemoryCgroup::Unknown;
            ProcessSample {
                identity: Identity {
                    pid,
                    start_time_ticks: u64::from(pid),
                    comm: comm.into(),
                    exe: Some(format!("/usr/bin/{comm}")),
                    cmdline: vec![comm.into()],
                    cgroup: cgroups.display_path().map(|path| Cgroup {
                        path: path.into(),
                        unit: systemd_unit(path),
                        container_id: container_id(path),
                    }),
                    ..Identity::default()
                },
                state: 'S',
                threads: Threads::default(),
                fds: Fds::default(),
                sockets: Sockets::default(),
                memory: Memory {
                    rss: 9 << 20,
                    cgroup_current: read.then_some(6 * GIB),
                    cgroup_max: read.then_some(8 * GIB),
                    cgroup: memory,
                    ..Memory::default()
                },
                limits: Limits::default(),
                cpu: Cpu::default(),
                partial: Vec::new(),
            }
        }

        fn host(processes: Vec<ProcessSample>) -> HostSample {
            HostSample {
                time_unix_ms: 0,
                host: HostInfo::default(),
                socket_source: SocketSource::ProcNet,
                processes,
                stats: PassStats::default(),
            }
        }

        fn rule(name: &str, comm: &str) -> TargetRule {
            TargetRule {
                name: name.into(),
                comm: Some(format!("^{comm}$")),
                cmdline: None,
                uid: None,
                metrics_url: None,
                gauges: Vec::new(),
                pprof_url: None,
                capture: Vec::new(),
                mitigation: None,
            }
        }

        /// `memory{cgroup}` of the target named `name`, checked against its limit.
        fn cgroup_memory(targets: &BTreeMap<TargetName, TargetSample>, name: &str) -> Option<u64> {
            let (target, sample) = targets
                .iter()
                .find(|(target, _)| target.name.starts_with(name))
                .unwrap_or_else(|| panic!("no target {name} in {:?}", targets.keys()));
            let points = sample.points(&target.name, 8, 8);
            let cgroup = SeriesKey::new(
                target.name.as_str(),
                Resource::Memory,
                Attribution::Memory(MemoryKind::Cgroup),
            );
            let has = |key: &SeriesKey| points.iter().any(|(k, _)| k == key);
            assert_eq!(
                has(&cgroup),
                has(&cgroup.limit()),
                "{name}: value and limit together"
            );
            assert_eq!(has(&cgroup), sample.cgroup_memory.is_some());
            sample.cgroup_memory
        }

        fn owner(
            kind: TargetKind,
            processes: &[&ProcessSample],
            holders: usize,
        ) -> CgroupOwnership {
            let cgroups = processes.iter().map(|p| p.memory.cgroup.clone()).collect();
            cgroup_ownership(kind, &cgroups, |_| holders)
        }

        #[test]
        fn a_service_alone_in_its_cgroup_owns_it_on_v2() {
            let postgres = process(10, "postgres", fixture!("cgroup-v2-service.txt"), V2);
            assert_eq!(
                owner(TargetKind::Unit, &[&postgres], 1),
                CgroupOwnership::Owned
            );
            let targets = group(&Targeting::new(&[]), &host(vec![postgres]));
            assert_eq!(
                cgroup_memory(&targets, "postgresql@15-main.service"),
                Some(6 * GIB)
            );
        }

        #[test]
        fn containers_own_theirs_on_v1_hybrid_and_v2() {
            let docker = process(10, "nginx", fixture!("cgroup-v1-hybrid.txt"), HYBRID);
            let pod = process(11, "java", fixture!("cgroup-v2-kubepods.txt"), V2);
            let targets = group(&Targeting::new(&[]), &host(vec![docker]));
            assert_eq!(
                cgroup_memory(&targets, "container-0123456789ab"),
                Some(6 * GIB)
            );
            let targets = group(&Targeting::new(&[]), &host(vec![pod]));
            assert_eq!(
                cgroup_memory(&targets, "container-89abcdef0123"),
                Some(6 * GIB)
            );
        }

        #[test]
        fn never_the_root_cgroup() {
            let v2 = process(10, "python3", fixture!("cgroup-v2-root.txt"), V2);
            let v1 = process(
                11,
                "python3",
                fixture!("cgroup-v1-hybrid-dev-init.txt"),
                HYBRID,
            );
            for p in [v2, v1] {
                assert_eq!(owner(TargetKind::Rule, &[&p], 1), CgroupOwnership::Root);
                // Even alone and configured: the root is the whole host.
                let targets = group(&Targeting::new(&[rule("py", "python3")]), &host(vec![p]));
                assert_eq!(cgroup_memory(&targets, "py"), None);
            }
        }

        #[test]
        fn never_a_login_or_systemd_itself() {
            let session = process(10, "python3", fixture!("cgroup-v2-session.txt"), V2);
            let init = process(1, "systemd", fixture!("cgroup-v2-init.txt"), V2);
            assert_eq!(
                owner(TargetKind::Rule, &[&session], 1),
                CgroupOwnership::NotOwnable(CgroupKind::Session)
            );
            assert_eq!(
                owner(TargetKind::Exe, &[&init], 1),
                CgroupOwnership::NotOwnable(CgroupKind::Session)
            );
            let targets = group(
                &Targeting::new(&[rule("py", "python3")]),
                &host(vec![session, init]),
            );
            assert_eq!(cgroup_memory(&targets, "py"), None);
            assert_eq!(cgroup_memory(&targets, "systemd-"), None);
        }

        /// The observed case: a small Python process in a cgroup it shares with a build
        /// (this machine's per-command v1 memory cgroup, the unified and systemd paths `/`).
        #[test]
        fn never_a_cgroup_shared_with_another_target_on_v1_hybrid() {
            let shell = fixture!("cgroup-v1-hybrid-dev-shell.txt");
            let python = process(10, "python3", shell, HYBRID);
            let cargo = process(11, "cargo", shell, HYBRID);
            // An automatic target: the cgroup is neither a service, a container nor a pod.
            let targets = group(&Targeting::new(&[]), &host(vec![python.clone()]));
            assert_eq!(cgroup_memory(&targets, "python3-"), None);
            assert_eq!(
                owner(TargetKind::Exe, &[&python], 1),
                CgroupOwnership::NotOwnable(CgroupKind::Other)
            );
            // A configured rule alone in it owns it...
            let rules = [rule("py", "python3")];
            let targets = group(&Targeting::new(&rules), &host(vec![python.clone()]));
            assert_eq!(cgroup_memory(&targets, "py"), Some(6 * GIB));
            // ...and not once another target has processes there.
            let targets = group(&Targeting::new(&rules), &host(vec![python, cargo]));
            assert_eq!(cgroup_memory(&targets, "py"), None);
            assert_eq!(cgroup_memory(&targets, "cargo-"), None);
            // Same on v2: two services' processes under one unit are one target, but a
            // rule that takes one process out of a service leaves the cgroup shared.
            let service = fixture!("cgroup-v2-service.txt");
            let postgres = process(20, "postgres", service, V2);
            let backup = process(21, "pg_dump", service, V2);
            let targets = group(
                &Targeting::new(&[rule("backup", "pg_dump")]),
                &host(vec![postgres, backup]),
            );
            assert_eq!(cgroup_memory(&targets, "backup"), None);
            assert_eq!(cgroup_memory(&targets, "postgresql@15-main.service"), None);
        }

        #[test]
        fn unknown_is_not_owned() {
            let service = fixture!("cgroup-v2-service.txt");
            // /proc/PID/cgroup not readable: nothing parsed.
            let unread = process(10, "postgres", b"", V2);
            assert_eq!(
                owner(TargetKind::Exe, &[&unread], 1),
                CgroupOwnership::Unknown
            );
            // Read, but without the line of the hierarchy that holds memory (v1 memory
            // controller on a hybrid host).
            let no_memory_line = process(11, "postgres", b"0::/system.slice/a.service\n", HYBRID);
            assert_eq!(
                owner(TargetKind::Unit, &[&no_memory_line], 1),
                CgroupOwnership::Unknown
            );
            // One process of a service whose cgroup read failed this time: the sampler says
            // so in `partial`; the whole target is then not sure of its cgroup.
            let complete = process(12, "postgres", service, V2);
            let mut part = process(13, "postgres", service, V2);
            part.partial.push(Partial {
                part: Part::Cgroup,
                reason: Reason::Exited,
            });
            let targets = group(&Targeting::new(&[]), &host(vec![complete.clone()]));
            assert_eq!(
                cgroup_memory(&targets, "postgresql@15-main.service"),
                Some(6 * GIB)
            );
            let targets = group(&Targeting::new(&[]), &host(vec![complete, part]));
            assert_eq!(cgroup_memory(&targets, "postgresql@15-main.service"), None);
        }

        #[test]
        fn one_target_in_several_cgroups_owns_none() {
            let a = process(10, "worker", fixture!("cgroup-v2-service.txt"), V2);
            let b = process(11, "worker", fixture!("cgroup-v2-kubepods.txt"), V2);
            assert_eq!(
                owner(TargetKind::Rule, &[&a, &b], 1),
                CgroupOwnership::Split
            );
            let targets = group(
                &Targeting::new(&[rule("workers", "worker")]),
                &host(vec![a, b]),
            );
            assert_eq!(cgroup_memory(&targets, "workers"), None);
        }

        /// `leakwatch run` sees only its own tree: judged by the cgroup's kind alone.
        #[test]
        fn a_supervised_target_needs_a_service_or_container() {
            let shell = process(
                10,
                "app",
                fixture!("cgroup-v1-hybrid-dev-shell.txt"),
                HYBRID,
            );
            let unit = process(11, "app", fixture!("cgroup-v2-service.txt"), V2);
            assert_eq!(
                owner(TargetKind::Run, &[&shell], 1),
                CgroupOwnership::NotOwnable(CgroupKind::Other)
            );
            assert_eq!(owner(TargetKind::Run, &[&unit], 1), CgroupOwnership::Owned);
        }
    }

    #[test]
    fn short_lived_automatic_targets_are_not_stored() {
        let mut admission = Admission::new(10);
        // A two-pass command never gets a history.
        assert!(admission.filter(named("cc1-1a2b3c", "exe")).is_empty());
        assert!(admission.filter(named("cc1-1a2b3c", "exe")).is_empty());
        assert!(admission.filter(BTreeMap::new()).is_empty());
        // A service does, from its third consecutive pass, and keeps it across a restart gap.
        assert!(admission.filter(named("api-9f", "exe")).is_empty());
        assert!(admission.filter(named("api-9f", "exe")).is_empty());
        assert_eq!(admission.filter(named("api-9f", "exe")).len(), 1);
        admission.filter(BTreeMap::new());
        admission.filter(BTreeMap::new());
        assert_eq!(admission.filter(named("api-9f", "exe")).len(), 1);
        // Configured and supervised targets at once.
        assert_eq!(admission.filter(named("analytics", "rule")).len(), 1);
        assert_eq!(admission.filter(named("crashy", "run")).len(), 1);
        // Bounded: gone for longer than the grace, forgotten.
        for _ in 0..11 {
            admission.filter(BTreeMap::new());
        }
        assert!(admission.is_empty());
    }

    #[test]
    fn exe_names_survive_changing_numbers() {
        let a = exe_target_name(
            Some("/usr/bin/java"),
            "java",
            &["java".into(), "-Dport=8080".into(), "Main".into()],
        );
        let b = exe_target_name(
            Some("/usr/bin/java"),
            "java",
            &["java".into(), "-Dport=9191".into(), "Main".into()],
        );
        let c = exe_target_name(
            Some("/usr/bin/java"),
            "java",
            &["java".into(), "Other".into()],
        );
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(a.starts_with("java-"));
    }

    #[test]
    fn top_folds_the_rest() {
        let map: HashMap<String, u64> = [("a", 5), ("b", 3), ("c", 1), ("d", 1)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        assert_eq!(
            top_with_other(&map, 2),
            vec![(Some("a".into()), 5), (Some("b".into()), 3), (None, 2)]
        );
    }

    fn target(name: &str, processes: &[(u32, u64)]) -> BTreeMap<TargetName, TargetSample> {
        let mut map = BTreeMap::new();
        map.insert(
            TargetName {
                name: name.into(),
                kind: TargetKind::Exe,
            },
            TargetSample {
                processes: processes.to_vec(),
                ..TargetSample::default()
            },
        );
        map
    }

    #[test]
    fn restarts_are_seen_across_a_gap_and_forgotten_after_grace() {
        let mut tracker = RestartTracker::new(3);
        let none = |_: &str| false;
        assert!(tracker
            .observe(&target("svc", &[(10, 1)]), &none)
            .is_empty());
        assert!(tracker
            .observe(&target("svc", &[(10, 1)]), &none)
            .is_empty());
        // A third pass: now it counts as a service that lived, not a passing command.
        assert!(tracker
            .observe(&target("svc", &[(10, 1)]), &none)
            .is_empty());
        // Crashed: absent for two passes, then back with a new pid.
        assert!(tracker.observe(&BTreeMap::new(), &none).is_empty());
        assert!(tracker.observe(&BTreeMap::new(), &none).is_empty());
        let seen = tracker.observe(&target("svc", &[(11, 2)]), &none);
        assert_eq!(
            seen,
            vec![SeenRestart {
                target: "svc".into(),
                old: (10, 1),
                new: (11, 2)
            }]
        );
        // Gone for longer than the grace: forgotten, so memory stays bounded.
        for _ in 0..5 {
            tracker.observe(&BTreeMap::new(), &none);
        }
        assert!(tracker.is_empty());
    }

    #[test]
    fn an_overlapping_restart_is_paired() {
        let mut tracker = RestartTracker::new(10);
        let none = |_: &str| false;
        for _ in 0..4 {
            assert!(tracker
                .observe(&target("svc", &[(10, 1)]), &none)
                .is_empty());
        }
        // The new process starts before the old one is gone (one pass with both).
        assert!(tracker
            .observe(&target("svc", &[(10, 1), (11, 2)]), &none)
            .is_empty());
        let seen = tracker.observe(&target("svc", &[(11, 2)]), &none);
        assert_eq!(seen.len(), 1);
        assert_eq!((seen[0].old, seen[0].new), ((10, 1), (11, 2)));
        // A long-running sibling in a two-process target is not taken for a successor.
        let mut tracker = RestartTracker::new(10);
        for _ in 0..4 {
            tracker.observe(&target("pool", &[(20, 1), (21, 1)]), &none);
        }
        assert!(tracker
            .observe(&target("pool", &[(21, 1)]), &none)
            .is_empty());
    }

    #[test]
    fn short_lived_commands_are_not_restarts() {
        let mut tracker = RestartTracker::new(3);
        let none = |_: &str| false;
        // `grep` run every pass by a script: a new pid each time, each seen once.
        for pid in 100..120 {
            assert!(tracker
                .observe(&target("grep", &[(pid, pid as u64)]), &none)
                .is_empty());
        }
    }
}
