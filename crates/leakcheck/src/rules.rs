//! The rules that decide whether a count leaks across rounds of a workload. Pure: counts in,
//! findings out, no I/O and no clock, so `leakwatch check` and [`crate::repeat`] decide the
//! same way and every decision can be replayed in a unit test.
//!
//! # The rules
//!
//! A run is a baseline (counts after the warm-up rounds, once the process settled) and `N`
//! rounds (counts after each round, settled). Every counted resource — threads per name
//! group, fds per kind, TCP sockets per state and per (state, peer), UDP and unix sockets —
//! gets a series `baseline, r1, ..., rN`, missing values being 0.
//!
//! - **A count leaks** when all three hold:
//!   1. it is higher after the last round than at the baseline (`rN > baseline`);
//!   2. it never fell from one round to the next (`r(i) >= r(i-1)`, with `r0 = baseline`):
//!      something that gives resources back is a pool or a cache, not a leak;
//!   3. it grew in at least `N - 1` of the `N` rounds (at least 1 when `N` is 1): one
//!      flat round is allowed, for a leak that lags (a FIN that arrives just after a
//!      sample), but a single step up followed by a plateau is a lazily started pool.
//!
//!   There is no minimum growth: one CLOSE_WAIT socket per round is exactly the leak of
//!   incident 001.
//! - **Memory leaks** only when it grew in *every* round by more than a tolerance (1 MiB by
//!   default). Resident memory moves in pages, allocators keep freed memory, and runtimes
//!   grow heaps while warming up, so a count-style rule would cry wolf. This is the rule
//!   CPython's reference-leak hunter (`regrtest -R`) applies to its memory-block deltas:
//!   every run after warm-up must grow (`all(delta >= 1)`), which ignores one-off jumps
//!   such as `[3, 0, 0]` and `[8, -8, 1]`.
//! - **Ignored** resources (see [`Ignore`]) are judged and reported, but never fail.

use leakwatch_proc::{Direction, FdKind, Peer, ProcessSample, TcpState};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// What kind of resource a count is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    Threads,
    Fds,
    Sockets,
    Memory,
}

impl Class {
    pub const ALL: [Class; 4] = [Class::Threads, Class::Fds, Class::Sockets, Class::Memory];

    pub fn as_str(self) -> &'static str {
        match self {
            Class::Threads => "threads",
            Class::Fds => "fds",
            Class::Sockets => "sockets",
            Class::Memory => "memory",
        }
    }

    fn parse(text: &str) -> Option<Class> {
        Class::ALL.into_iter().find(|class| class.as_str() == text)
    }
}

/// One counted resource: `threads Analytics-#`, `fds socket`, `sockets CLOSE_WAIT`,
/// `sockets CLOSE_WAIT -> 127.0.0.1:8443`, `memory rss_anon`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Key {
    pub class: Class,
    pub name: String,
}

impl Key {
    /// A thread-name group, digits already collapsed (`pool-#-thread-#`).
    pub fn thread_group(group: &str) -> Key {
        Key {
            class: Class::Threads,
            name: group.to_string(),
        }
    }

    pub fn fd_kind(kind: FdKind) -> Key {
        Key {
            class: Class::Fds,
            name: kind.as_str().to_string(),
        }
    }

    /// TCP sockets in one state, whoever the peer.
    pub fn tcp_state(state: TcpState) -> Key {
        Key {
            class: Class::Sockets,
            name: state.as_str().to_string(),
        }
    }

    /// TCP sockets in one state to one peer: `CLOSE_WAIT -> 127.0.0.1:8443` for a
    /// connection this process made, `ESTABLISHED <- 10.0.0.7 on :8080` for one it accepted
    /// (the remote port of an accepted connection is ephemeral, so it is folded away).
    pub fn tcp_peer(state: TcpState, peer: &Peer) -> Key {
        let addr = display_addr(peer.addr);
        let name = match peer.direction {
            Direction::Outbound => format!("{} -> {addr}:{}", state.as_str(), peer.port),
            Direction::Inbound => format!("{} <- {addr} on :{}", state.as_str(), peer.port),
        };
        Key {
            class: Class::Sockets,
            name,
        }
    }

    /// Non-TCP sockets: `udp`, `unix`, or `other` (netlink, packet, another namespace).
    pub fn socket_family(family: &str) -> Key {
        Key {
            class: Class::Sockets,
            name: family.to_string(),
        }
    }

    pub fn memory(name: &str) -> Key {
        Key {
            class: Class::Memory,
            name: name.to_string(),
        }
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.class.as_str(), self.name)
    }
}

/// `127.0.0.1` for an IPv4-mapped IPv6 address, `[::1]` for IPv6, as `ss` prints them.
pub fn display_addr(addr: IpAddr) -> String {
    match addr {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => format!("[{v6}]"),
        },
        IpAddr::V4(v4) => v4.to_string(),
    }
}

/// Counts per resource at one instant.
pub type Counts = BTreeMap<Key, u64>;

/// The counts of one sampled process: thread groups, fd kinds, TCP states and peers, other
/// socket families, and anonymous resident memory (resident memory when the kernel does
/// not split it).
pub fn counts_of(sample: &ProcessSample) -> Counts {
    let mut counts = Counts::new();
    for group in &sample.threads.groups {
        counts.insert(Key::thread_group(&group.name), u64::from(group.count));
    }
    for (kind, n) in &sample.fds.by_kind {
        counts.insert(Key::fd_kind(*kind), u64::from(*n));
    }
    for (state, n) in &sample.sockets.tcp {
        counts.insert(Key::tcp_state(*state), u64::from(*n));
    }
    for row in &sample.sockets.tcp_peers {
        *counts
            .entry(Key::tcp_peer(row.state, &row.peer))
            .or_default() += u64::from(row.count);
    }
    for (family, n) in [
        ("udp", sample.sockets.udp),
        ("unix", sample.sockets.unix),
        ("other", sample.sockets.other),
    ] {
        if n > 0 {
            counts.insert(Key::socket_family(family), u64::from(n));
        }
    }
    match sample.memory.rss_anon {
        Some(anon) => counts.insert(Key::memory("rss_anon"), anon),
        None => counts.insert(Key::memory("rss"), sample.memory.rss),
    };
    counts
}

/// Whether two samples agree on every count except memory, which never stands still: the
/// test for "the process settled" after a round.
pub fn agree(a: &Counts, b: &Counts) -> bool {
    differing(a, b).is_empty()
}

/// The non-memory keys whose counts differ between two samples.
pub fn differing(a: &Counts, b: &Counts) -> Vec<Key> {
    let keys: BTreeSet<&Key> = a.keys().chain(b.keys()).collect();
    keys.into_iter()
        .filter(|key| key.class != Class::Memory)
        .filter(|key| a.get(*key).copied().unwrap_or(0) != b.get(*key).copied().unwrap_or(0))
        .cloned()
        .collect()
}

/// A rule for known, accepted growth: `CLASS` or `CLASS:PATTERN`, e.g. `threads:GC Thread#`,
/// `fds:file`, `sockets:CLOSE_WAIT`, `sockets:* -> 10.0.0.5:5432`, `memory`.
///
/// The pattern is a glob over the resource's name (`*` any run of characters, `?` one
/// character, everything else literal; `#` is literal and is what digits collapse to in
/// thread names). A sockets pattern that names a state also covers that state's peer rows:
/// `sockets:CLOSE_WAIT` ignores `CLOSE_WAIT -> 127.0.0.1:8443` too.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ignore {
    pub class: Class,
    /// `None` ignores the whole class.
    pub pattern: Option<String>,
}

impl FromStr for Ignore {
    type Err = String;

    fn from_str(text: &str) -> Result<Ignore, String> {
        let (class_text, pattern) = match text.split_once(':') {
            Some((class, pattern)) => (class, Some(pattern)),
            None => (text, None),
        };
        let class = Class::parse(class_text.trim()).ok_or_else(|| {
            format!(
                "{text:?}: expected CLASS or CLASS:PATTERN where CLASS is threads, fds, \
                 sockets or memory (e.g. threads:GC Thread#, fds:file, sockets:CLOSE_WAIT)"
            )
        })?;
        let pattern = match pattern {
            Some("") => return Err(format!("{text:?}: empty pattern after ':'")),
            Some(pattern) => Some(pattern.to_string()),
            None => None,
        };
        Ok(Ignore { class, pattern })
    }
}

impl fmt::Display for Ignore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.pattern {
            Some(pattern) => write!(f, "{}:{pattern}", self.class.as_str()),
            None => f.write_str(self.class.as_str()),
        }
    }
}

impl Ignore {
    pub fn matches(&self, key: &Key) -> bool {
        if key.class != self.class {
            return false;
        }
        let Some(pattern) = &self.pattern else {
            return true;
        };
        if glob(pattern, &key.name) {
            return true;
        }
        // A peer row starts with its state: `CLOSE_WAIT -> 127.0.0.1:8443`.
        key.class == Class::Sockets
            && key
                .name
                .split_once(' ')
                .is_some_and(|(state, _)| glob(pattern, state))
    }

    /// Matches a name directly (for the guard, which has thread names and fd targets rather
    /// than counted keys).
    pub fn matches_name(&self, class: Class, name: &str) -> bool {
        class == self.class && self.pattern.as_deref().is_none_or(|p| glob(p, name))
    }
}

/// `*` matches any run of characters (also none), `?` exactly one; everything else is
/// literal. Iterative with one backtrack point, so it is linear-ish and cannot blow up.
pub fn glob(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == '?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == '*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((star_p, star_t)) = star {
            // Let the last star swallow one more character and retry.
            p = star_p + 1;
            t = star_t + 1;
            star = Some((star_p, star_t + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

/// Tunables of the rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Policy {
    /// Memory must grow by more than this many bytes in every round to leak.
    pub memory_tolerance_bytes: u64,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            memory_tolerance_bytes: 1 << 20,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Grew round after round: fails the check.
    Leak,
    /// Would be a leak, but an [`Ignore`] rule accepts it.
    IgnoredLeak,
    /// Did not grow the way a leak does.
    Steady,
}

/// The judgement of one resource over a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub key: Key,
    pub verdict: Verdict,
    /// The count after warm-up, before the first measured round.
    pub baseline: u64,
    /// The count after each round.
    pub rounds: Vec<u64>,
    /// Rounds in which the count grew.
    pub growing_rounds: usize,
    /// `(last - baseline) / rounds`, negative when it shrank.
    pub per_round: f64,
    /// The rule that accepted this growth, when one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ignored_by: Option<String>,
}

impl Finding {
    /// `+10 per round (baseline 4; 5 rounds: 14, 24, 34, 44, 54)`; memory in bytes.
    pub fn describe(&self) -> String {
        let memory = self.key.class == Class::Memory;
        let per_round = if memory {
            signed_bytes(self.per_round)
        } else if self.per_round.fract() == 0.0 {
            format!("{:+}", self.per_round as i64)
        } else {
            format!("{:+.1}", self.per_round)
        };
        let values: Vec<String> = self
            .rounds
            .iter()
            .map(|&v| if memory { bytes(v) } else { v.to_string() })
            .collect();
        let baseline = if memory {
            bytes(self.baseline)
        } else {
            self.baseline.to_string()
        };
        format!(
            "{per_round} per round (baseline {baseline}; {} rounds: {})",
            self.rounds.len(),
            values.join(", ")
        )
    }
}

/// Bytes in binary units with one decimal: `1.5 MiB`.
pub fn bytes(value: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut scaled = value as f64;
    let mut unit = 0;
    while scaled >= 1024.0 && unit < UNITS.len() - 1 {
        scaled /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{value} B")
    } else {
        format!("{scaled:.1} {}", UNITS[unit])
    }
}

fn signed_bytes(value: f64) -> String {
    let sign = if value < 0.0 { "-" } else { "+" };
    format!("{sign}{}", bytes(value.abs() as u64))
}

/// The count rule (see the module documentation): higher at the end, never fell, and grew
/// in at least `N - 1` of `N` rounds (at least one when `N` is 1).
pub fn count_leaks(baseline: u64, rounds: &[u64]) -> bool {
    let Some(&last) = rounds.last() else {
        return false;
    };
    let mut previous = baseline;
    let mut growing = 0;
    for &value in rounds {
        if value < previous {
            return false;
        }
        if value > previous {
            growing += 1;
        }
        previous = value;
    }
    last > baseline && growing >= rounds.len().saturating_sub(1).max(1)
}

/// The memory rule: every round grew by more than `tolerance` bytes.
pub fn memory_leaks(baseline: u64, rounds: &[u64], tolerance: u64) -> bool {
    let mut previous = baseline;
    !rounds.is_empty()
        && rounds.iter().all(|&value| {
            let grew = value > previous.saturating_add(tolerance);
            previous = value;
            grew
        })
}

/// Judges every resource seen in any sample. `samples[0]` is the baseline and the rest are
/// the rounds, in order. Leaks come first, then ignored leaks, then steady resources; within
/// each, threads, socket peers, socket states, fd kinds, then memory.
pub fn judge(samples: &[Counts], ignores: &[Ignore], policy: &Policy) -> Vec<Finding> {
    let Some((baseline_counts, round_counts)) = samples.split_first() else {
        return Vec::new();
    };
    let keys: BTreeSet<&Key> = samples.iter().flat_map(|counts| counts.keys()).collect();
    let mut findings: Vec<Finding> = keys
        .into_iter()
        .map(|key| {
            let value = |counts: &Counts| counts.get(key).copied().unwrap_or(0);
            let baseline = value(baseline_counts);
            let rounds: Vec<u64> = round_counts.iter().map(value).collect();
            let leaks = if key.class == Class::Memory {
                memory_leaks(baseline, &rounds, policy.memory_tolerance_bytes)
            } else {
                count_leaks(baseline, &rounds)
            };
            let mut previous = baseline;
            let growing_rounds = rounds
                .iter()
                .filter(|&&v| {
                    let grew = v > previous;
                    previous = v;
                    grew
                })
                .count();
            let last = rounds.last().copied().unwrap_or(baseline);
            let per_round = if rounds.is_empty() {
                0.0
            } else {
                (last as f64 - baseline as f64) / rounds.len() as f64
            };
            let ignored_by = ignores
                .iter()
                .find(|rule| rule.matches(key))
                .map(|rule| rule.to_string());
            let verdict = match (leaks, &ignored_by) {
                (true, None) => Verdict::Leak,
                (true, Some(_)) => Verdict::IgnoredLeak,
                (false, _) => Verdict::Steady,
            };
            Finding {
                key: key.clone(),
                verdict,
                baseline,
                rounds,
                growing_rounds,
                per_round,
                ignored_by,
            }
        })
        .collect();
    let rank = |verdict: Verdict| match verdict {
        Verdict::Leak => 0,
        Verdict::IgnoredLeak => 1,
        Verdict::Steady => 2,
    };
    findings.sort_by(|a, b| {
        rank(a.verdict)
            .cmp(&rank(b.verdict))
            .then_with(|| specificity(&a.key).cmp(&specificity(&b.key)))
            .then_with(|| a.key.cmp(&b.key))
    });
    findings
}

/// The most telling resource first: one CLOSE_WAIT leak shows up as a peer row, a state
/// and an fd kind, and the peer row is the one that says where to look.
fn specificity(key: &Key) -> u8 {
    match key.class {
        Class::Threads => 0,
        Class::Sockets if key.name.contains(" -> ") || key.name.contains(" <- ") => 1,
        Class::Sockets => 2,
        Class::Fds => 3,
        Class::Memory => 4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn a_steady_leak_of_ten_threads_per_round_is_caught() {
        assert!(count_leaks(4, &[14, 24, 34, 44, 54]));
    }

    #[test]
    fn one_socket_per_round_is_enough_incident_001() {
        assert!(count_leaks(2, &[3, 4, 5, 6, 7]));
    }

    #[test]
    fn one_flat_round_is_tolerated_for_a_leak_that_lags() {
        assert!(count_leaks(2, &[2, 3, 4, 5, 6]));
        assert!(count_leaks(2, &[3, 4, 4, 5, 6]));
    }

    #[test]
    fn two_flat_rounds_are_not_a_leak() {
        assert!(!count_leaks(2, &[3, 3, 4, 4, 5]));
    }

    #[test]
    fn a_lazily_started_pool_is_a_step_not_a_leak() {
        assert!(!count_leaks(1, &[9, 9, 9, 9, 9]));
    }

    #[test]
    fn a_count_that_falls_is_given_back_so_not_a_leak() {
        assert!(!count_leaks(10, &[11, 12, 11, 13, 14]));
        assert!(!count_leaks(10, &[11, 12, 13, 14, 10]));
    }

    #[test]
    fn flat_and_empty_series_are_clean() {
        assert!(!count_leaks(5, &[5, 5, 5]));
        assert!(!count_leaks(0, &[0, 0]));
        assert!(!count_leaks(5, &[]));
    }

    #[test]
    fn a_single_round_counts_any_growth() {
        assert!(count_leaks(1, &[2]));
        assert!(!count_leaks(1, &[1]));
    }

    #[test]
    fn two_rounds_need_one_growing_and_none_falling() {
        assert!(count_leaks(1, &[1, 2]));
        assert!(!count_leaks(1, &[3, 2]));
    }

    #[test]
    fn memory_must_grow_in_every_round_by_more_than_the_tolerance() {
        let mib = 1 << 20;
        // CPython's examples of noise: one-off jumps and a jump that is given back.
        assert!(!memory_leaks(
            100 * mib,
            &[103 * mib, 103 * mib, 103 * mib],
            mib
        ));
        assert!(!memory_leaks(
            100 * mib,
            &[108 * mib, 100 * mib, 101 * mib],
            mib
        ));
        // and of leaks: growth in every round.
        assert!(memory_leaks(
            100 * mib,
            &[105 * mib, 110 * mib, 116 * mib],
            mib
        ));
        // Growth below the tolerance is page-level noise.
        assert!(!memory_leaks(
            100 * mib,
            &[100 * mib + 4096, 100 * mib + 8192, 100 * mib + 12288],
            mib
        ));
        assert!(!memory_leaks(100 * mib, &[], mib));
    }

    #[test]
    fn ignore_rules_parse_and_match_like_the_help_says() {
        let gc: Ignore = "threads:GC Thread#".parse().unwrap();
        assert!(gc.matches(&Key::thread_group("GC Thread#")));
        assert!(!gc.matches(&Key::thread_group("Analytics-#")));
        let files: Ignore = "fds:file".parse().unwrap();
        assert!(files.matches(&Key::fd_kind(FdKind::File)));
        assert!(!files.matches(&Key::fd_kind(FdKind::Socket)));
        let pools: Ignore = "threads:pool-*".parse().unwrap();
        assert!(pools.matches(&Key::thread_group("pool-#-thread-#")));
        let memory: Ignore = "memory".parse().unwrap();
        assert!(memory.matches(&Key::memory("rss_anon")));
        assert!(!memory.matches(&Key::thread_group("rss_anon")));
        assert_eq!(memory.to_string(), "memory");
        assert_eq!(gc.to_string(), "threads:GC Thread#");

        assert!("thread:x".parse::<Ignore>().is_err());
        assert!("threads:".parse::<Ignore>().is_err());
    }

    #[test]
    fn a_socket_state_rule_covers_its_peer_rows() {
        let peer = Peer {
            direction: Direction::Outbound,
            addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 8443,
        };
        let close_wait: Ignore = "sockets:CLOSE_WAIT".parse().unwrap();
        assert!(close_wait.matches(&Key::tcp_state(TcpState::CloseWait)));
        assert!(close_wait.matches(&Key::tcp_peer(TcpState::CloseWait, &peer)));
        assert!(!close_wait.matches(&Key::tcp_peer(TcpState::Established, &peer)));
        let to_peer: Ignore = "sockets:* -> 127.0.0.1:8443".parse().unwrap();
        assert!(to_peer.matches(&Key::tcp_peer(TcpState::Established, &peer)));
        assert!(!to_peer.matches(&Key::tcp_state(TcpState::Established)));
    }

    #[test]
    fn peers_are_named_by_direction() {
        let out = Peer {
            direction: Direction::Outbound,
            addr: "::ffff:127.0.0.1".parse().unwrap(),
            port: 8443,
        };
        assert_eq!(
            Key::tcp_peer(TcpState::CloseWait, &out).to_string(),
            "sockets CLOSE_WAIT -> 127.0.0.1:8443"
        );
        let inbound = Peer {
            direction: Direction::Inbound,
            addr: "::1".parse().unwrap(),
            port: 8080,
        };
        assert_eq!(
            Key::tcp_peer(TcpState::Established, &inbound).to_string(),
            "sockets ESTABLISHED <- [::1] on :8080"
        );
    }

    #[test]
    fn globs() {
        assert!(glob("*", ""));
        assert!(glob("a*c", "abbbc"));
        assert!(glob("a?c", "abc"));
        assert!(!glob("a?c", "ac"));
        assert!(glob("*Thread#", "GC Thread#"));
        assert!(!glob("GC", "GC Thread#"));
        assert!(glob("*a*b*", "xxaxxbxx"));
        assert!(!glob("*a*b", "xxaxxbxx"));
    }

    fn counts(pairs: &[(Key, u64)]) -> Counts {
        pairs.iter().cloned().collect()
    }

    #[test]
    fn judge_names_the_leak_and_how_much_per_round() {
        let analytics = Key::thread_group("Analytics-#");
        let main = Key::thread_group("main");
        let gc = Key::thread_group("GC Thread#");
        let samples: Vec<Counts> = [4, 14, 24, 34, 44, 54]
            .iter()
            .enumerate()
            .map(|(i, &n)| {
                counts(&[
                    (analytics.clone(), n),
                    (main.clone(), 1),
                    (gc.clone(), 2 + i as u64),
                ])
            })
            .collect();
        let ignores = vec!["threads:GC Thread#".parse().unwrap()];
        let findings = judge(&samples, &ignores, &Policy::default());
        assert_eq!(findings.len(), 3);
        assert_eq!(findings[0].key, analytics);
        assert_eq!(findings[0].verdict, Verdict::Leak);
        assert_eq!(
            format!("{} {}", findings[0].key, findings[0].describe()),
            "threads Analytics-# +10 per round (baseline 4; 5 rounds: 14, 24, 34, 44, 54)"
        );
        assert_eq!(findings[1].key, gc);
        assert_eq!(findings[1].verdict, Verdict::IgnoredLeak);
        assert_eq!(
            findings[1].ignored_by.as_deref(),
            Some("threads:GC Thread#")
        );
        assert_eq!(findings[2].key, main);
        assert_eq!(findings[2].verdict, Verdict::Steady);
    }

    #[test]
    fn a_resource_that_appears_after_the_baseline_counts_from_zero() {
        let close_wait = Key::tcp_state(TcpState::CloseWait);
        let mut samples = vec![Counts::new()];
        for n in 1..=5 {
            samples.push(counts(&[(close_wait.clone(), n)]));
        }
        let findings = judge(&samples, &[], &Policy::default());
        assert_eq!(findings[0].verdict, Verdict::Leak);
        assert_eq!(findings[0].baseline, 0);
        assert_eq!(
            findings[0].describe(),
            "+1 per round (baseline 0; 5 rounds: 1, 2, 3, 4, 5)"
        );
    }

    #[test]
    fn one_close_wait_leak_is_listed_peer_first() {
        let peer = Peer {
            direction: Direction::Outbound,
            addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 8443,
        };
        let keys = [
            Key::fd_kind(FdKind::Socket),
            Key::tcp_state(TcpState::CloseWait),
            Key::tcp_peer(TcpState::CloseWait, &peer),
        ];
        let samples: Vec<Counts> = (0..4)
            .map(|n| keys.iter().map(|key| (key.clone(), n)).collect())
            .collect();
        let order: Vec<String> = judge(&samples, &[], &Policy::default())
            .iter()
            .map(|f| f.key.to_string())
            .collect();
        assert_eq!(
            order,
            [
                "sockets CLOSE_WAIT -> 127.0.0.1:8443",
                "sockets CLOSE_WAIT",
                "fds socket"
            ]
        );
    }

    #[test]
    fn memory_is_described_in_bytes() {
        let mib = 1 << 20;
        let key = Key::memory("rss_anon");
        let samples: Vec<Counts> = (0..4)
            .map(|i| counts(&[(key.clone(), 10 * mib + i * 2 * mib)]))
            .collect();
        let findings = judge(&samples, &[], &Policy::default());
        assert_eq!(findings[0].verdict, Verdict::Leak);
        assert_eq!(
            findings[0].describe(),
            "+2.0 MiB per round (baseline 10.0 MiB; 3 rounds: 12.0 MiB, 14.0 MiB, 16.0 MiB)"
        );
    }

    #[test]
    fn settling_ignores_memory() {
        let a = counts(&[(Key::memory("rss"), 1), (Key::fd_kind(FdKind::File), 3)]);
        let b = counts(&[(Key::memory("rss"), 2), (Key::fd_kind(FdKind::File), 3)]);
        assert!(agree(&a, &b));
        let c = counts(&[(Key::fd_kind(FdKind::File), 4)]);
        assert_eq!(differing(&a, &c), vec![Key::fd_kind(FdKind::File)]);
        // A key missing on one side is a zero.
        let d = counts(&[
            (Key::fd_kind(FdKind::File), 3),
            (Key::fd_kind(FdKind::Pipe), 0),
        ]);
        assert!(agree(&a, &d));
    }
}
