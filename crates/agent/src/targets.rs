//! Targets: what a user thinks of as "the service". Processes are grouped by a configured
//! rule, else their systemd service, else their container, else the program they run
//! (`crate::naming`); all processes of a target, across restarts, form one history.

use crate::config::TargetRule;
use crate::naming::Names;
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
    /// Which command line owns each automatic name.
    names: Names,
    /// Kubernetes pod and container names of container ids (`None`: `leakwatch run`).
    kubelet: Option<crate::kubernetes::Kubelet>,
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
            names: Names::new(rules.iter().map(|rule| rule.name.clone())),
            kubelet: Some(crate::kubernetes::Kubelet::new(
                crate::kubernetes::DEFAULT_DIR,
            )),
        }
    }

    /// Reads Kubernetes names from `dir` instead of `/var/log/containers`.
    pub fn with_kubelet_dir(mut self, dir: impl Into<std::path::PathBuf>) -> Targeting {
        self.kubelet = Some(crate::kubernetes::Kubelet::new(dir));
        self
    }

    /// Every process is this one target: what `leakwatch run` supervises.
    pub fn single(name: &str) -> Targeting {
        Targeting {
            rules: Vec::new(),
            single: Some(name.to_string()),
            names: Names::default(),
            kubelet: None,
        }
    }

    /// The names of the automatic targets already stored: see [`Names::seed`].
    pub fn seed_names<'a>(&mut self, stored: impl IntoIterator<Item = &'a str>) {
        self.names.seed(stored);
    }

    pub fn is_single(&self) -> bool {
        self.single.is_some()
    }

    /// The target of `process`. Automatic names are remembered ([`Names`]): call it for the
    /// processes of a pass oldest first, as [`group`] does.
    pub fn target_of(&mut self, process: &ProcessSample) -> TargetName {
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
                // A pod's container by its Kubernetes names, when the kubelet gives them.
                let pod = self.kubelet.as_mut().and_then(|k| k.name_of(container));
                return TargetName {
                    name: match pod {
                        Some(name) => leakwatch_model::text::visible(&name),
                        None => format!("container-{}", &container[..12]),
                    },
                    kind: TargetKind::Container,
                };
            }
        }
        TargetName {
            name: self
                .names
                .exe_target_name(id.exe.as_deref(), &id.comm, &id.cmdline),
            kind: TargetKind::Exe,
        }
    }
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
    /// File fds per path group (`/tmp/upload-#.tmp`), summed over the processes' own
    /// (bounded) groups.
    pub fd_paths: HashMap<String, u64>,
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
    /// Per live process (keyed as in `processes`), what tells a service from a job.
    pub facts: HashMap<(u32, u64), ProcessFacts>,
}

/// What one process shows of itself in one pass that tells a service from a job, for
/// [`RestartTracker`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ProcessFacts {
    /// It holds a TCP socket in LISTEN: it serves. Needs its fds read (root, or the same
    /// user); an unreadable process never listens.
    pub listening: bool,
    /// Who started it, judged by its parent's name in the same sample.
    pub parent: ParentKind,
    /// It leads its process group or its session. Supervisors start each service so
    /// (systemd, s6, supervisord, runc, tini, dumb-init and `leakwatch run` all do); a
    /// process under a supervisor that leads neither was adopted (an orphaned job: init
    /// and subreapers adopt every orphan) or forked by the service itself.
    pub leader: bool,
}

/// What the parent of a process is, by the parent's `comm`: a process a supervisor runs is
/// a service, what a shell, a scheduler or a build tool runs is a job.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum ParentKind {
    /// An init system, a process supervisor or a container runtime: it restarts services.
    Supervisor,
    /// A shell, a scheduler, a build tool or a CI runner: it runs jobs, again and again.
    Runner,
    /// Anything else (a service's own master process, an interpreter, a browser), or a
    /// parent not in the sample.
    #[default]
    Unknown,
}

/// The kind of a process's parent: `ppid`, and the parent's `comm` when the parent is in
/// the same sample. Judged by name only, exactly (a `comm` is at most 15 bytes, so
/// `containerd-shim-runc-v2` reads `containerd-shim`). Pid 1 is judged by its name too (in
/// a container's pid namespace it may be a shell), and is a supervisor when its name is
/// not known.
///
/// - supervisors: `systemd` (pid 1 and user managers), `init`, `runit`, `runsv`,
///   `supervise` (daemontools), `s6-supervise`, `supervisord`, `monit`, `containerd-shim*`,
///   `conmon` (podman), `tini`, `dumb-init`, `docker-init`, `leakwatch` (`leakwatch run`);
/// - runners: the shells `sh`, `bash`, `dash`, `ash`, `zsh`, `ksh`, `fish`; the schedulers
///   `cron`, `crond`, `anacron`, `atd`; `watch`, `timeout`, `xargs`, `env`; the build tools
///   `make`, `ninja`, `cargo`, `npm`, `node`; the CI runners `gitlab-runner`,
///   `Runner.Worker` (GitHub Actions), `buildkite-agent`.
pub fn parent_kind(ppid: u32, parent_comm: Option<&str>) -> ParentKind {
    let Some(comm) = parent_comm else {
        return if ppid == 1 {
            ParentKind::Supervisor
        } else {
            ParentKind::Unknown
        };
    };
    match comm {
        "systemd" | "init" | "runit" | "runsv" | "supervise" | "s6-supervise" | "supervisord"
        | "monit" | "conmon" | "tini" | "dumb-init" | "docker-init" | "leakwatch" => {
            ParentKind::Supervisor
        }
        _ if comm.starts_with("containerd-shim") => ParentKind::Supervisor,
        "sh" | "bash" | "dash" | "ash" | "zsh" | "ksh" | "fish" | "cron" | "crond" | "anacron"
        | "atd" | "watch" | "timeout" | "xargs" | "env" | "make" | "ninja" | "cargo" | "npm"
        | "node" | "gitlab-runner" | "Runner.Worker" | "buildkite-agent" => ParentKind::Runner,
        _ => ParentKind::Unknown,
    }
}

impl TargetSample {
    /// Adds one process, whose parent is of kind `parent` ([`parent_kind`]).
    pub fn add(&mut self, p: &ProcessSample, host: &HostInfo, parent: ParentKind) {
        let id = (p.identity.pid, p.identity.start_time_ticks);
        self.processes.push(id);
        let listening = p.sockets.tcp.get(&TcpState::Listen).is_some_and(|n| *n > 0);
        let pid = p.identity.pid;
        let leader = pid != 0 && (p.identity.pgid == pid || p.identity.sid == pid);
        self.facts.insert(
            id,
            ProcessFacts {
                listening,
                parent,
                leader,
            },
        );
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
        for group in &p.fds.paths {
            // Bounded as the thread groups are: once a target holds this many distinct
            // groups (many processes, each with its own), new ones are left to "other files".
            if self.fd_paths.len() < MAX_FD_PATHS_SUMMED || self.fd_paths.contains_key(&group.name)
            {
                *self.fd_paths.entry(group.name.clone()).or_default() += u64::from(group.count);
            }
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

    /// The series of this target, with `max_groups` thread groups, `max_peers` socket peers
    /// and `max_paths` file path groups at most (the rest summed into "other", or "other
    /// files": the file fds in no named group), so cardinality is bounded whatever the
    /// processes do.
    pub fn points(
        &self,
        target: &str,
        max_groups: usize,
        max_peers: usize,
        max_paths: usize,
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
            if max_paths > 0 {
                let mut named = 0u64;
                for (path, n) in top_with_other(&self.fd_paths, max_paths) {
                    if let Some(path) = path {
                        named = named.saturating_add(n);
                        push(key(Resource::Fds, Attribution::FdPath(path)), n as f64);
                    }
                }
                // Every file fd in no named group: those of groups past the top N, and those
                // the processes themselves left out of their bounded lists.
                let files = self.fd_kinds.get(&FdKind::File).copied().unwrap_or(0);
                let rest = files.saturating_sub(named);
                if rest > 0 {
                    push(key(Resource::Fds, Attribution::FdPathOther), rest as f64);
                }
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

/// Most distinct fd path groups one target sums in one pass before it names no new ones
/// (their fds still count in "other files"): processes report a bounded list each, but a
/// target may have thousands of processes.
const MAX_FD_PATHS_SUMMED: usize = 4096;

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
    targeting: &mut Targeting,
    sample: &leakwatch_proc::HostSample,
) -> BTreeMap<TargetName, TargetSample> {
    let mut targets: BTreeMap<TargetName, TargetSample> = BTreeMap::new();
    // Parents are looked up in the same sample: one map per pass, as large as the sample.
    let comms: HashMap<u32, &str> = sample
        .processes
        .iter()
        .map(|p| (p.identity.pid, p.identity.comm.as_str()))
        .collect();
    // Named oldest first: of two command lines that run programs of the same name, the
    // longer-running one gets the plain name, also after an agent restart.
    let mut oldest_first: Vec<&ProcessSample> = sample.processes.iter().collect();
    oldest_first.sort_by_key(|p| (p.identity.start_time_ticks, p.identity.pid));
    for process in oldest_first {
        let ppid = process.identity.ppid;
        let parent = parent_kind(ppid, comms.get(&ppid).copied());
        targets
            .entry(targeting.target_of(process))
            .or_default()
            .add(process, &sample.host, parent);
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
///
/// A crash loop is a service that keeps dying; a job that runs, ends and runs again is a
/// periodic job. From outside, without an exit status, what tells them apart is how the
/// process lived ([`ProcessFacts`]): the end of a process that lived is a restart only if
/// it served (held a TCP socket in LISTEN in any pass it was seen in), or its parent (as
/// last seen) is a supervisor and it leads its process group or session (as a supervisor
/// starts a service; an orphaned job adopted by init leads neither), or it lived at least
/// [`LONG_LIFE_PASSES`] under a parent that is not a runner. Any other end is a run of a periodic job: no restart, counted in
/// [`RestartTracker::runs`]; its successor is still taken, so it is not paired again later.
pub struct RestartTracker {
    last: HashMap<String, Tracked>,
    pass: u64,
    grace_passes: u64,
}

/// One target as the tracker remembers it.
struct Tracked {
    /// Its processes with the number of passes each was seen in.
    processes: Vec<Seen>,
    /// The pass the target was last seen in.
    last_seen: u64,
    runs: Option<JobRuns>,
}

/// The runs of a periodic job noticed in a target: ends of processes that lived (seen in
/// at least [`MIN_LIFE_PASSES`] passes) but were not restarts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobRuns {
    /// Runs since the tracker first saw the target (or last forgot it).
    pub runs: u64,
    /// The tracker's pass in which the last run was noticed to have ended.
    pub last_end_pass: u64,
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
    /// Held a TCP socket in LISTEN in any pass.
    listened: bool,
    /// Its parent as last seen (the last known kind: a pass where the parent was not
    /// found does not forget it).
    parent: ParentKind,
    /// Led its process group or session when last seen.
    leader: bool,
}

impl Seen {
    /// Whether its end is a restart of a service, not the end of a run of a job.
    fn ends_as_restart(&self) -> bool {
        self.listened
            || match self.parent {
                // Adopted or forked under a supervisor: judged as an unknown parent's.
                ParentKind::Supervisor => self.leader || self.passes >= LONG_LIFE_PASSES,
                ParentKind::Runner => false,
                ParentKind::Unknown => self.passes >= LONG_LIFE_PASSES,
            }
    }
}

/// Passes a process must have been seen in before its disappearance counts as a restart.
pub const MIN_LIFE_PASSES: u32 = 3;

/// Passes a process whose parent is neither a supervisor nor a runner ([`ParentKind`]) and
/// that never listened must have been seen in for its end to be a restart: 10 minutes at
/// the default 10 s interval, a minute at 1 s. The workers a service forks for itself
/// (PostgreSQL backends, a compiler driver's `cc1`, a browser's renderers) come and go
/// within that; a service run by a supervisor this table does not know, that dies after
/// living longer, still counts. Its faster crash loop is not seen from outside:
/// `leakwatch run` records those.
pub const LONG_LIFE_PASSES: u32 = 60;

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
            let previous = self.last.remove(&target.name);
            let first_sight = previous.is_none();
            let (before, mut runs) = previous
                .map(|tracked| (tracked.processes, tracked.runs))
                .unwrap_or_default();
            let known = |p: &ProcessId| before.iter().find(|s| s.id == *p);
            let mut updated: Vec<Seen> = now
                .iter()
                .map(|p| {
                    let facts = sample.facts.get(p).copied().unwrap_or_default();
                    match known(p) {
                        Some(seen) => Seen {
                            passes: seen.passes.saturating_add(1),
                            listened: seen.listened || facts.listening,
                            parent: match facts.parent {
                                ParentKind::Unknown => seen.parent,
                                parent => parent,
                            },
                            leader: facts.leader,
                            ..*seen
                        },
                        // Processes there when the target is first seen replaced nobody.
                        None => Seen {
                            id: *p,
                            passes: 1,
                            replaced: first_sight,
                            listened: facts.listening,
                            parent: facts.parent,
                            leader: facts.leader,
                        },
                    }
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
                let restart = old.ends_as_restart();
                if !restart {
                    tracing::debug!(
                        target = %target.name,
                        pid = old.id.0,
                        passes = old.passes,
                        parent = ?old.parent,
                        "a run of a periodic job ended"
                    );
                    let runs = runs.get_or_insert(JobRuns {
                        runs: 0,
                        last_end_pass: 0,
                    });
                    runs.runs += 1;
                    runs.last_end_pass = self.pass;
                }
                if let Some(successor) = successor {
                    successor.replaced = true;
                    if restart {
                        restarts.push(SeenRestart {
                            target: target.name.clone(),
                            old: old.id,
                            new: successor.id,
                        });
                    }
                }
            }
            let tracked = Tracked {
                processes: updated,
                last_seen: self.pass,
                runs,
            };
            self.last.insert(target.name.clone(), tracked);
        }
        let (pass, grace) = (self.pass, self.grace_passes);
        self.last
            .retain(|_, tracked| pass - tracked.last_seen <= grace);
        restarts
    }

    /// The runs of a periodic job noticed in `target` (none once the target is forgotten).
    pub fn runs(&self, target: &str) -> Option<JobRuns> {
        self.last.get(target).and_then(|tracked| tracked.runs)
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
                        pod: None,
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
                limit: Vec::new(),
            }
        }

        /// `memory{cgroup}` of the target named `name`, checked against its limit.
        fn cgroup_memory(targets: &BTreeMap<TargetName, TargetSample>, name: &str) -> Option<u64> {
            let (target, sample) = targets
                .iter()
                .find(|(target, _)| target.name == name)
                .unwrap_or_else(|| panic!("no target {name} in {:?}", targets.keys()));
            let points = sample.points(&target.name, 8, 8, 8);
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
            let targets = group(&mut Targeting::new(&[]), &host(vec![postgres]));
            assert_eq!(
                cgroup_memory(&targets, "postgresql@15-main.service"),
                Some(6 * GIB)
            );
        }

        #[test]
        fn containers_own_theirs_on_v1_hybrid_and_v2() {
            let docker = process(10, "nginx", fixture!("cgroup-v1-hybrid.txt"), HYBRID);
            let pod = process(11, "java", fixture!("cgroup-v2-kubepods.txt"), V2);
            let targets = group(&mut Targeting::new(&[]), &host(vec![docker]));
            assert_eq!(
                cgroup_memory(&targets, "container-0123456789ab"),
                Some(6 * GIB)
            );
            let targets = group(&mut Targeting::new(&[]), &host(vec![pod]));
            assert_eq!(
                cgroup_memory(&targets, "container-89abcdef0123"),
                Some(6 * GIB)
            );
        }

        #[test]
        fn pod_containers_are_named_by_namespace_pod_and_container_on_v1_and_v2() {
            let kubelet = tempfile::tempdir().unwrap();
            for (pod, id) in [
                (
                    "web-7d9c8f6b5-x2kqz_shop_app",
                    "89abcdef0123456789abcdef0123456789abcdef0123456789abcdef01234567",
                ),
                (
                    "db-0_data_postgres",
                    "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210",
                ),
            ] {
                std::fs::write(kubelet.path().join(format!("{pod}-{id}.log")), "").unwrap();
            }
            let v2 = process(11, "java", fixture!("cgroup-v2-kubepods.txt"), V2);
            let v1 = process(12, "postgres", fixture!("cgroup-v1-kubepods.txt"), HYBRID);
            let docker = process(13, "nginx", fixture!("cgroup-v1-hybrid.txt"), HYBRID);
            let mut targeting = Targeting::new(&[]).with_kubelet_dir(kubelet.path());
            let targets = group(&mut targeting, &host(vec![v2, v1, docker]));
            let names: Vec<(&str, TargetKind)> =
                targets.keys().map(|t| (t.name.as_str(), t.kind)).collect();
            assert_eq!(
                names,
                [
                    ("container-0123456789ab", TargetKind::Container),
                    ("data/db-0/postgres", TargetKind::Container),
                    ("shop/web-7d9c8f6b5-x2kqz/app", TargetKind::Container),
                ],
                "a pod's containers by name; a plain docker container by id"
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
                let targets = group(
                    &mut Targeting::new(&[rule("py", "python3")]),
                    &host(vec![p]),
                );
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
                &mut Targeting::new(&[rule("py", "python3")]),
                &host(vec![session, init]),
            );
            assert_eq!(cgroup_memory(&targets, "py"), None);
            assert_eq!(cgroup_memory(&targets, "systemd"), None);
        }

        /// The observed case: a small Python process in a cgroup it shares with a build
        /// (this machine's per-command v1 memory cgroup, the unified and systemd paths `/`).
        #[test]
        fn never_a_cgroup_shared_with_another_target_on_v1_hybrid() {
            let shell = fixture!("cgroup-v1-hybrid-dev-shell.txt");
            let python = process(10, "python3", shell, HYBRID);
            let cargo = process(11, "cargo", shell, HYBRID);
            // An automatic target: the cgroup is neither a service, a container nor a pod.
            let targets = group(&mut Targeting::new(&[]), &host(vec![python.clone()]));
            assert_eq!(cgroup_memory(&targets, "python3"), None);
            assert_eq!(
                owner(TargetKind::Exe, &[&python], 1),
                CgroupOwnership::NotOwnable(CgroupKind::Other)
            );
            // A configured rule alone in it owns it...
            let rules = [rule("py", "python3")];
            let targets = group(&mut Targeting::new(&rules), &host(vec![python.clone()]));
            assert_eq!(cgroup_memory(&targets, "py"), Some(6 * GIB));
            // ...and not once another target has processes there.
            let targets = group(&mut Targeting::new(&rules), &host(vec![python, cargo]));
            assert_eq!(cgroup_memory(&targets, "py"), None);
            assert_eq!(cgroup_memory(&targets, "cargo"), None);
            // Same on v2: two services' processes under one unit are one target, but a
            // rule that takes one process out of a service leaves the cgroup shared.
            let service = fixture!("cgroup-v2-service.txt");
            let postgres = process(20, "postgres", service, V2);
            let backup = process(21, "pg_dump", service, V2);
            let targets = group(
                &mut Targeting::new(&[rule("backup", "pg_dump")]),
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
            let targets = group(&mut Targeting::new(&[]), &host(vec![complete.clone()]));
            assert_eq!(
                cgroup_memory(&targets, "postgresql@15-main.service"),
                Some(6 * GIB)
            );
            let targets = group(&mut Targeting::new(&[]), &host(vec![complete, part]));
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
                &mut Targeting::new(&[rule("workers", "worker")]),
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

    #[test]
    fn fd_path_groups_are_bounded_with_other_files() {
        let sample = TargetSample {
            processes: vec![(1, 1)],
            fds: 30,
            fd_kinds: BTreeMap::from([(FdKind::File, 27), (FdKind::Pipe, 3)]),
            // The process listed only these groups (its own bound): 25 of its 27 files.
            fd_paths: [
                ("/srv/orders/order-audit.log", 20),
                ("/tmp/upload-#.tmp", 3),
                ("/etc/hosts", 1),
                ("/etc/passwd", 1),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
            ..TargetSample::default()
        };
        let fd_points = |max_paths: usize| -> Vec<(String, f64)> {
            sample
                .points("svc", 8, 8, max_paths)
                .into_iter()
                .filter(|(k, _)| {
                    matches!(
                        k.attribution,
                        Attribution::FdPath(_) | Attribution::FdPathOther
                    )
                })
                .map(|(k, v)| (k.label(), v))
                .collect()
        };
        assert_eq!(
            fd_points(2),
            vec![
                ("fds{/srv/orders/order-audit.log}".to_string(), 20.0),
                ("fds{/tmp/upload-#.tmp}".to_string(), 3.0),
                ("fds{other files}".to_string(), 4.0),
            ]
        );
        // All named: "other files" is what the process left out of its own list.
        assert_eq!(fd_points(10).last().unwrap().1, 2.0);
        assert!(fd_points(0).is_empty());
        // The labels read back as the same typed keys.
        for (label, _) in fd_points(10) {
            let key: SeriesKey = format!("svc/{label}").parse().unwrap();
            assert_eq!(key.label(), label);
        }
    }

    /// A target of `processes`, each a service run by a supervisor.
    fn target(name: &str, processes: &[(u32, u64)]) -> BTreeMap<TargetName, TargetSample> {
        let service = ProcessFacts {
            listening: false,
            parent: ParentKind::Supervisor,
            leader: true,
        };
        target_with(name, processes, service)
    }

    /// A target of `processes` that all show `facts`.
    fn target_with(
        name: &str,
        processes: &[(u32, u64)],
        facts: ProcessFacts,
    ) -> BTreeMap<TargetName, TargetSample> {
        let mut map = BTreeMap::new();
        map.insert(
            TargetName {
                name: name.into(),
                kind: TargetKind::Exe,
            },
            TargetSample {
                processes: processes.to_vec(),
                facts: processes.iter().map(|p| (*p, facts)).collect(),
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

    mod periodic {
        use super::super::*;
        use super::{target, target_with};
        use leakwatch_proc::{HostSample, Identity, PassStats, SocketSource};

        const NONE: &dyn Fn(&str) -> bool = &|_| false;

        fn job(parent: ParentKind) -> ProcessFacts {
            ProcessFacts {
                listening: false,
                parent,
                leader: true,
            }
        }

        /// Runs `lives + 1` processes one after the other in target `name`, each seen in
        /// `passes` passes (showing `facts(pass of its life)`), the next starting in the
        /// pass the previous one is gone. Returns the restarts seen.
        fn replace(
            tracker: &mut RestartTracker,
            name: &str,
            lives: u32,
            passes: u32,
            facts: impl Fn(u32) -> ProcessFacts,
        ) -> Vec<SeenRestart> {
            let mut seen = Vec::new();
            for life in 0..=lives {
                let id = (1000 + life, u64::from(life) * 100);
                for pass in 0..passes {
                    seen.extend(tracker.observe(&target_with(name, &[id], facts(pass)), NONE));
                }
            }
            seen
        }

        #[test]
        fn a_shell_loop_of_short_jobs_is_not_a_crash_loop() {
            let mut tracker = RestartTracker::new(10);
            // `while true; do ./job; done`: ten runs of four passes each, then an eleventh.
            let seen = replace(&mut tracker, "job", 10, 4, |_| job(ParentKind::Runner));
            assert_eq!(seen, Vec::new());
            assert_eq!(
                tracker.runs("job"),
                Some(JobRuns {
                    runs: 10,
                    last_end_pass: 41
                })
            );
            // After a sleep between runs too (the loop's `sleep` is another target).
            tracker.observe(&BTreeMap::new(), NONE);
            let next = target_with("job", &[(2000, 9000)], job(ParentKind::Runner));
            assert!(tracker.observe(&next, NONE).is_empty());
            assert_eq!(tracker.runs("job").map(|r| r.runs), Some(11));
            // Forgotten with the target, after the grace.
            for _ in 0..11 {
                tracker.observe(&BTreeMap::new(), NONE);
            }
            assert!(tracker.is_empty());
            assert_eq!(tracker.runs("job"), None);
        }

        #[test]
        fn a_listening_process_replaced_is_a_restart() {
            let mut tracker = RestartTracker::new(10);
            // Run by a shell loop, but it served: listening in one pass of four is enough.
            let seen = replace(&mut tracker, "server", 3, 4, |_| job(ParentKind::Runner));
            assert!(seen.is_empty());
            let mut tracker = RestartTracker::new(10);
            let seen = replace(&mut tracker, "server", 3, 4, |pass| ProcessFacts {
                listening: pass == 1,
                parent: ParentKind::Runner,
                leader: false,
            });
            assert_eq!(seen.len(), 3, "{seen:?}");
            assert_eq!((seen[0].old, seen[0].new), ((1000, 0), (1001, 100)));
            assert_eq!(tracker.runs("server"), None);
        }

        #[test]
        fn a_supervised_process_replaced_is_a_restart() {
            let mut tracker = RestartTracker::new(10);
            let seen = replace(&mut tracker, "worker", 3, 4, |_| {
                job(ParentKind::Supervisor)
            });
            assert_eq!(seen.len(), 3);
            assert_eq!(tracker.runs("worker"), None);
            // The parent as last seen: not found in a pass, it is not forgotten.
            let mut tracker = RestartTracker::new(10);
            let seen = replace(&mut tracker, "worker", 3, 4, |pass| {
                job(if pass == 3 {
                    ParentKind::Unknown
                } else {
                    ParentKind::Supervisor
                })
            });
            assert_eq!(seen.len(), 3);
        }

        #[test]
        fn an_orphan_adopted_by_init_is_a_job_not_a_service() {
            // `(./job &)` in a loop: each run is orphaned at once and adopted by init, whose
            // name makes it a supervisor, but it leads no group or session of its own.
            let mut tracker = RestartTracker::new(10);
            let seen = replace(&mut tracker, "orphan", 5, 4, |_| ProcessFacts {
                listening: false,
                parent: ParentKind::Supervisor,
                leader: false,
            });
            assert_eq!(seen, Vec::new());
            assert_eq!(tracker.runs("orphan").map(|r| r.runs), Some(5));
            // The same processes leading their own group (as systemd starts a service) are
            // restarts.
            let mut tracker = RestartTracker::new(10);
            let seen = replace(&mut tracker, "service", 5, 4, |_| {
                job(ParentKind::Supervisor)
            });
            assert_eq!(seen.len(), 5);
        }

        #[test]
        fn an_unknown_parent_counts_only_long_lives() {
            let mut tracker = RestartTracker::new(100);
            // A worker forked by its service's own master: short lives are runs...
            let seen = replace(&mut tracker, "backend", 3, 4, |_| job(ParentKind::Unknown));
            assert!(seen.is_empty());
            assert_eq!(tracker.runs("backend").map(|r| r.runs), Some(3));
            // ...and a process that lived long and went is a restart.
            let seen = replace(&mut tracker, "daemon", 2, LONG_LIFE_PASSES, |_| {
                job(ParentKind::Unknown)
            });
            assert_eq!(seen.len(), 2);
            let seen = replace(&mut tracker, "daemon2", 2, LONG_LIFE_PASSES - 1, |_| {
                job(ParentKind::Unknown)
            });
            assert!(seen.is_empty());
            // A runner's job that lived long is still a job.
            let seen = replace(&mut tracker, "batch", 2, 90, |_| job(ParentKind::Runner));
            assert!(seen.is_empty());
        }

        /// A run's successor is taken: a later end is not paired with it.
        #[test]
        fn a_runs_successor_is_not_paired_again() {
            let mut tracker = RestartTracker::new(10);
            let shell = job(ParentKind::Runner);
            for _ in 0..4 {
                tracker.observe(&target_with("mixed", &[(1, 1)], shell), NONE);
            }
            // The job (1) ends while a new job (2) starts.
            assert!(tracker
                .observe(&target_with("mixed", &[(2, 2)], shell), NONE)
                .is_empty());
            // The new job then lives on as a service would; a supervised process that lived
            // ends with nobody new: no restart, and (2) was not free to pair.
            let mut map = target_with("mixed", &[(2, 2), (3, 3)], shell);
            let sample = map.values_mut().next().unwrap();
            sample.facts.insert((3, 3), job(ParentKind::Supervisor));
            for _ in 0..3 {
                assert!(tracker.observe(&map, NONE).is_empty());
            }
            // (3) goes and nothing new came: (2) already replaced (1).
            assert!(tracker
                .observe(&target("mixed", &[(2, 2)]), NONE)
                .is_empty());
        }

        #[test]
        fn parents_are_classified_by_name() {
            use ParentKind::*;
            for (ppid, comm, kind) in [
                (1, Some("systemd"), Supervisor),
                (1, Some("init"), Supervisor),
                (1, None, Supervisor),
                (1, Some("bash"), Runner),
                (1, Some("python3"), Unknown),
                (812, Some("systemd"), Supervisor),
                (812, Some("containerd-shim"), Supervisor),
                (812, Some("containerd-shim-runc-v2"), Supervisor),
                (812, Some("conmon"), Supervisor),
                (812, Some("tini"), Supervisor),
                (812, Some("dumb-init"), Supervisor),
                (812, Some("docker-init"), Supervisor),
                (812, Some("runsv"), Supervisor),
                (812, Some("s6-supervise"), Supervisor),
                (812, Some("supervisord"), Supervisor),
                (812, Some("leakwatch"), Supervisor),
                (812, Some("monit"), Supervisor),
                (812, Some("sh"), Runner),
                (812, Some("bash"), Runner),
                (812, Some("dash"), Runner),
                (812, Some("zsh"), Runner),
                (812, Some("cron"), Runner),
                (812, Some("crond"), Runner),
                (812, Some("make"), Runner),
                (812, Some("cargo"), Runner),
                (812, Some("ninja"), Runner),
                (812, Some("node"), Runner),
                (812, Some("xargs"), Runner),
                (812, Some("timeout"), Runner),
                (812, Some("Runner.Worker"), Runner),
                (812, Some("gitlab-runner"), Runner),
                (812, Some("postgres"), Unknown),
                (812, Some("java"), Unknown),
                (812, Some("gcc"), Unknown),
                // Exact names: not a prefix of something else.
                (812, Some("bashful"), Unknown),
                (812, Some("systemd-journal"), Unknown),
                (812, Some(""), Unknown),
                (812, None, Unknown),
                (0, None, Unknown),
            ] {
                assert_eq!(parent_kind(ppid, comm), kind, "{ppid} {comm:?}");
            }
        }

        fn process(pid: u32, ppid: u32, comm: &str, listening: bool) -> ProcessSample {
            let mut sockets = leakwatch_proc::Sockets::default();
            if listening {
                sockets.tcp.insert(TcpState::Listen, 1);
            }
            sockets.tcp.insert(TcpState::Established, 2);
            ProcessSample {
                identity: Identity {
                    pid,
                    ppid,
                    pgid: pid,
                    start_time_ticks: u64::from(pid) * 10,
                    comm: comm.into(),
                    cmdline: vec![comm.into()],
                    ..Identity::default()
                },
                state: 'S',
                threads: Default::default(),
                fds: Default::default(),
                sockets,
                memory: Default::default(),
                limits: Default::default(),
                cpu: Default::default(),
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

        /// The facts as `group` finds them: the parent's name from the same sample.
        #[test]
        fn group_records_listening_and_the_parents_kind() {
            let mut targeting = Targeting::new(&[]);
            let sample = host(vec![
                process(1, 0, "systemd", false),
                process(40, 1, "bash", false),
                process(41, 40, "job", false),
                process(50, 1, "api", true),
                process(60, 999, "orphan", false),
            ]);
            let targets = group(&mut targeting, &sample);
            let facts = |comm: &str| {
                let (_, target) = targets.iter().find(|(name, _)| name.name == comm).unwrap();
                assert_eq!(target.facts.len(), 1);
                *target.facts.values().next().unwrap()
            };
            assert_eq!(facts("job"), job(ParentKind::Runner));
            assert_eq!(
                facts("api"),
                ProcessFacts {
                    listening: true,
                    parent: ParentKind::Supervisor,
                    leader: true,
                }
            );
            assert_eq!(facts("orphan"), job(ParentKind::Unknown));
            assert_eq!(facts("bash"), job(ParentKind::Supervisor));
        }

        /// Two command lines running programs of the same name: the older process gets the
        /// plain name whatever the pid order, the other one keeps its hash, pass after pass.
        #[test]
        fn the_oldest_process_gets_the_plain_name() {
            let mut targeting = Targeting::new(&[]);
            let worker = |pid: u32, started: u64, dir: &str| {
                let mut p = process(pid, 1, "python3", false);
                p.identity.exe = Some("/usr/bin/python3.11".into());
                p.identity.cmdline = vec!["python3".into(), format!("/srv/{dir}/worker.py")];
                p.identity.start_time_ticks = started;
                p
            };
            let sample = host(vec![worker(10, 500, "new"), worker(20, 100, "old")]);
            for _ in 0..3 {
                let targets = group(&mut targeting, &sample);
                let names: Vec<(&str, Vec<u32>)> = targets
                    .iter()
                    .map(|(name, t)| {
                        let pids = t.processes.iter().map(|(pid, _)| *pid).collect();
                        (name.name.as_str(), pids)
                    })
                    .collect();
                assert_eq!(names.len(), 2, "{names:?}");
                assert_eq!(names[0], ("worker.py", vec![20]), "{names:?}");
                assert!(names[1].0.starts_with("worker.py-"), "{names:?}");
                assert_eq!(names[1].1, vec![10]);
            }
        }

        /// End to end over `group`: the same job under a shell and under pid 1.
        #[test]
        fn a_job_restarted_by_init_counts_and_by_a_shell_does_not() {
            let rules = [TargetRule {
                name: "job".into(),
                comm: Some("^job$".into()),
                cmdline: None,
                uid: None,
                metrics_url: None,
                gauges: Vec::new(),
                pprof_url: None,
                capture: Vec::new(),
                mitigation: None,
                limit: Vec::new(),
            }];
            let mut targeting = Targeting::new(&rules);
            for (parent, restarts) in [(40, 0), (1, 5)] {
                let mut tracker = RestartTracker::new(10);
                let mut seen = Vec::new();
                for life in 0..6 {
                    for _ in 0..4 {
                        let sample = host(vec![
                            process(40, 1, "bash", false),
                            process(100 + life, parent, "job", false),
                        ]);
                        seen.extend(tracker.observe(&group(&mut targeting, &sample), NONE));
                    }
                }
                assert_eq!(seen.len(), restarts, "parent {parent}: {seen:?}");
            }
        }
    }
}
