//! Root cause and consequences: findings of one target that are one mechanism become one
//! finding, named by its most specific series, with the others attached as
//! [`Consequence`]s. Decided by structure (which series contains which, from the typed
//! [`Resource`]/[`Attribution`]) and by evidence (rates that agree within their confidence
//! intervals over overlapping windows; for memory, a plausible cost per leaked object).
//! The rules are specified in docs/detection.md, "Grouping".

use crate::model::{Consequence, Finding, FindingKind, FindingState};
use crate::Params;
use leakwatch_model::{Attribution, FdKind, MemoryKind, Resource, SeriesKey};
use std::collections::BTreeMap;

/// A finding as the engine produced it, with the confidence interval of its rate (per
/// hour; leaks only).
pub(crate) struct Candidate {
    pub finding: Finding,
    pub interval: Option<(f64, f64)>,
    /// A suspected leak that is a fill levelling off below its limit: a confirmed leak
    /// among its consequences (its memory, with no limit) does not confirm it.
    pub levelling_off: bool,
}

/// The series that directly contains `key`'s quantity, if any: `tcp_peer{STATE peer}` ⊂
/// `tcp{STATE}` ⊂ `fds{socket}` ⊂ `fds`; `sockets{udp|unix}` ⊂ `fds{socket}`; a file path
/// group (and "other files") ⊂ `fds{file}` ⊂ `fds`; a thread group ⊂ `threads`;
/// `memory{anon}` ⊂ `memory{rss}` ⊂ `memory{cgroup}`.
pub(crate) fn parent(key: &SeriesKey) -> Option<SeriesKey> {
    use Attribution as A;
    use Resource as R;
    if key.is_limit {
        return None;
    }
    let (resource, attribution) = match (&key.resource, &key.attribution) {
        (R::TcpPeer, A::TcpPeer { state, .. }) => (R::Tcp, A::TcpState(*state)),
        (R::Tcp, A::TcpState(_)) | (R::Sockets, A::Socket(_)) => {
            (R::Fds, A::FdKind(FdKind::Socket))
        }
        (R::Fds, A::FdPath(_) | A::FdPathOther) => (R::Fds, A::FdKind(FdKind::File)),
        (R::Fds, A::FdKind(_)) => (R::Fds, A::Total),
        (R::Threads, A::ThreadGroup(_) | A::Other) => (R::Threads, A::Total),
        (R::Memory, A::Memory(MemoryKind::Anon)) => (R::Memory, A::Memory(MemoryKind::Rss)),
        (R::Memory, A::Memory(MemoryKind::Rss)) => (R::Memory, A::Memory(MemoryKind::Cgroup)),
        _ => return None,
    };
    Some(SeriesKey::new(key.target.clone(), resource, attribution))
}

/// True when `outer`'s quantity includes all of `inner`'s (strictly, at any depth).
pub(crate) fn contains(outer: &SeriesKey, inner: &SeriesKey) -> bool {
    let mut next = parent(inner);
    while let Some(key) = next {
        if key == *outer {
            return true;
        }
        next = parent(&key);
    }
    false
}

/// How many series contain `key`: the deeper, the more specific.
fn depth(key: &SeriesKey) -> usize {
    std::iter::successors(parent(key), parent).count()
}

/// Per-process maxima only carry the limit: never a finding of their own.
fn is_max_process(key: &SeriesKey) -> bool {
    key.attribution == Attribution::MaxProcess
}

/// Most objects (threads, fds, sockets) and bytes one new process of a target can
/// plausibly bring: how much growth a growing process count explains.
const PROCESS_OBJECTS_MAX: f64 = 4096.0;
const PROCESS_BYTES_MAX: f64 = 1024.0 * 1024.0 * 1024.0;

/// Most bytes one leaked object of `resource` can plausibly hold; `None` when its growth
/// cannot explain memory.
fn bytes_per_object(resource: &Resource, params: &Params) -> Option<f64> {
    match resource {
        Resource::Threads => Some(params.thread_bytes_max),
        Resource::Fds | Resource::Tcp | Resource::TcpPeer | Resource::Sockets | Resource::Gauge => {
            Some(params.object_bytes_max)
        }
        _ => None,
    }
}

fn overlap(a: (f64, f64), b: (f64, f64)) -> bool {
    a.0.max(b.0) <= a.1.min(b.1)
}

/// A rate and its interval, per hour.
#[derive(Clone, Copy)]
struct Rate {
    rate: f64,
    low: f64,
    high: f64,
}

impl Rate {
    fn of(candidate: &Candidate) -> Rate {
        let rate = candidate.finding.rate_per_hour;
        let (low, high) = candidate.interval.unwrap_or((rate, rate));
        Rate { rate, low, high }
    }

    /// The interval widened by `tolerance` of the rate on both sides.
    fn widened(self, tolerance: f64) -> (f64, f64) {
        let slack = tolerance * self.rate.abs();
        (
            self.low.min(self.rate) - slack,
            self.high.max(self.rate) + slack,
        )
    }
}

/// Rates agree when their intervals, each widened by `tolerance` of its rate, overlap.
fn agree(parts: Rate, whole: Rate, tolerance: f64) -> bool {
    let (a, b) = (parts.widened(tolerance), whole.widened(tolerance));
    a.0 <= b.1 && b.0 <= a.1
}

/// Folds consequences into their roots: the post-processing step after the per-series
/// findings. Crash loops pass through; per-process maxima are dropped; saturation of a
/// series that is a consequence of a leak joins that leak.
pub(crate) fn group(candidates: Vec<Candidate>, params: &Params) -> Vec<Finding> {
    let mut by_target: BTreeMap<String, Vec<Candidate>> = BTreeMap::new();
    let mut out = Vec::new();
    for candidate in candidates {
        if is_max_process(&candidate.finding.key) {
            continue;
        }
        if candidate.finding.kind == FindingKind::CrashLoop {
            out.push(candidate.finding);
            continue;
        }
        by_target
            .entry(candidate.finding.key.target.clone())
            .or_default()
            .push(candidate);
    }
    for (_, findings) in by_target {
        out.extend(group_target(findings, params));
    }
    out
}

fn group_target(candidates: Vec<Candidate>, params: &Params) -> Vec<Finding> {
    let n = candidates.len();
    let is_leak = |i: usize| candidates[i].finding.kind == FindingKind::Leak;
    let is_memory = |i: usize| candidates[i].finding.key.resource == Resource::Memory;
    let key = |i: usize| &candidates[i].finding.key;
    let window = |i: usize| candidates[i].finding.evidence_window;
    // owner[i]: the finding that `i` is a consequence of.
    let mut owner: Vec<Option<usize>> = vec![None; n];
    let mut roots: Vec<usize> = Vec::new();

    // Leaks, most specific first: a series containing leaking roots is their consequence
    // when the roots' summed rate agrees with its own over overlapping windows.
    let mut order: Vec<usize> = (0..n).filter(|&i| is_leak(i)).collect();
    order.sort_by(|&a, &b| depth(key(b)).cmp(&depth(key(a))).then(key(a).cmp(key(b))));
    for &i in &order {
        let inside: Vec<usize> = roots
            .iter()
            .copied()
            .filter(|&r| contains(key(i), key(r)))
            .filter(|&r| {
                !roots
                    .iter()
                    .any(|&m| m != r && contains(key(i), key(m)) && contains(key(m), key(r)))
            })
            .collect();
        let explains = !inside.is_empty()
            && inside.iter().all(|&r| overlap(window(r), window(i)))
            && agree(
                inside.iter().fold(
                    Rate {
                        rate: 0.0,
                        low: 0.0,
                        high: 0.0,
                    },
                    |sum, &r| {
                        let rate = Rate::of(&candidates[r]);
                        Rate {
                            rate: sum.rate + rate.rate,
                            low: sum.low + rate.low,
                            high: sum.high + rate.high,
                        }
                    },
                ),
                Rate::of(&candidates[i]),
                params.rate_tolerance,
            );
        if explains {
            let biggest = inside
                .iter()
                .copied()
                .max_by(|&a, &b| {
                    candidates[a]
                        .finding
                        .rate_per_hour
                        .total_cmp(&candidates[b].finding.rate_per_hour)
                })
                .expect("not empty");
            owner[i] = Some(biggest);
        } else {
            roots.push(i);
        }
    }

    // Memory roots explained by a leak of objects (threads, fds, sockets, a gauge) at a
    // plausible cost per object, over overlapping windows, join that leak.
    for &m in roots.iter().filter(|&&m| is_memory(m)) {
        let memory = Rate::of(&candidates[m]);
        let cause = roots
            .iter()
            .copied()
            .filter(|&x| !is_memory(x))
            .filter_map(|x| {
                let cost = bytes_per_object(&key(x).resource, params)?;
                let objects = Rate::of(&candidates[x]);
                let affordable = cost * objects.high.max(objects.rate);
                (objects.rate > 0.0
                    && overlap(window(m), window(x))
                    && memory.low.min(memory.rate) <= affordable)
                    .then_some((x, affordable))
            })
            .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)));
        if let Some((x, _)) = cause {
            owner[m] = Some(x);
        }
    }
    // A growing process count explains the growth of what its processes hold: a server
    // forking a process per leaked connection (PostgreSQL's backends, seed 003's server
    // side) grows its threads, fds, sockets and memory with it. Every other root of the
    // target over an overlapping window whose growth fits a plausible amount per new
    // process joins the process leak.
    let process_root = roots
        .iter()
        .copied()
        .find(|&p| key(p).resource == Resource::Processes && owner[p].is_none());
    if let Some(p) = process_root {
        let processes = Rate::of(&candidates[p]);
        let new_processes = processes.high.max(processes.rate);
        if processes.rate > 0.0 {
            for &x in &roots {
                if x == p || owner[x].is_some() {
                    continue;
                }
                let per_process = if key(x).resource.is_bytes() {
                    PROCESS_BYTES_MAX
                } else {
                    PROCESS_OBJECTS_MAX
                };
                let grows = Rate::of(&candidates[x]);
                if overlap(window(p), window(x))
                    && grows.low.min(grows.rate) <= per_process * new_processes
                {
                    owner[x] = Some(p);
                }
            }
        }
    }
    let root_of = |mut i: usize, owner: &[Option<usize>]| {
        while let Some(next) = owner[i] {
            i = next;
        }
        i
    };

    // Saturation of a series that is a consequence of a leak joins that leak.
    for i in (0..n).filter(|&i| candidates[i].finding.kind == FindingKind::Saturation) {
        let absorbed = (0..n).find(|&j| is_leak(j) && owner[j].is_some() && key(j) == key(i));
        if let Some(j) = absorbed {
            owner[i] = Some(root_of(j, &owner));
        }
    }

    let mut consequences: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for i in 0..n {
        if owner[i].is_some() {
            consequences.entry(root_of(i, &owner)).or_default().push(i);
        }
    }
    let levelling_off: Vec<bool> = candidates.iter().map(|c| c.levelling_off).collect();
    let mut findings: Vec<Option<Finding>> =
        candidates.into_iter().map(|c| Some(c.finding)).collect();
    for (root, mut members) in consequences {
        members.sort_by(|&a, &b| {
            let (ka, kb) = (
                &findings[a].as_ref().expect("member").key,
                &findings[b].as_ref().expect("member").key,
            );
            (
                ka.resource.is_bytes(),
                std::cmp::Reverse(depth(ka)),
                ka,
                findings[a].as_ref().expect("member").kind,
            )
                .cmp(&(
                    kb.resource.is_bytes(),
                    std::cmp::Reverse(depth(kb)),
                    kb,
                    findings[b].as_ref().expect("member").kind,
                ))
        });
        // A root is as sure as its surest part: a confirmed total, or a saturation seen
        // through it, confirms a suspected part; a fill levelling off below its limit only
        // by a saturation.
        let confirmed = members.iter().any(|&i| {
            let member = findings[i].as_ref().expect("member");
            member.state == FindingState::Confirmed
                && (member.kind == FindingKind::Saturation || !levelling_off[root])
        });
        let attached: Vec<Consequence> = members
            .iter()
            .map(|&i| findings[i].take().expect("a finding is attached once"))
            .map(|f| Consequence {
                kind: f.kind,
                key: f.key,
                current: f.current,
                limit: f.limit,
                rate_per_hour: f.rate_per_hour,
                evidence_window: f.evidence_window,
            })
            .collect();
        let root = findings[root].as_mut().expect("a root stays");
        let also: Vec<String> = attached.iter().map(Consequence::brief).collect();
        root.summary = format!("{}; also: {}", root.summary, also.join(", "));
        if confirmed {
            root.state = FindingState::Confirmed;
        }
        root.consequences = attached;
    }
    findings.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use leakwatch_model::TcpState;

    const MIB: f64 = 1024.0 * 1024.0;

    fn key(resource: &str, attribution: &str) -> SeriesKey {
        SeriesKey::from_text("svc", resource, attribution)
    }

    /// A leak of `rate` per hour (interval ±10%) seen over the last hour.
    fn leak(key: SeriesKey, rate: f64) -> Candidate {
        leak_over(key, rate, (0.0, 3600.0))
    }

    fn leak_over(key: SeriesKey, rate: f64, window: (f64, f64)) -> Candidate {
        Candidate {
            finding: Finding {
                kind: FindingKind::Leak,
                state: FindingState::Confirmed,
                resolution: None,
                summary: format!("{} grows", crate::label(&key)),
                key,
                pids: Vec::new(),
                processes: Vec::new(),
                current: 100.0,
                limit: None,
                rate_per_hour: rate,
                eta_seconds: None,
                eta_conservative_seconds: None,
                first_seen: window.0,
                evidence_window: window,
                confidence: 0.999,
                p_value: 0.001,
                restarts: 0,
                consequences: Vec::new(),
                evidence: None,
            },
            interval: Some((0.9 * rate, 1.1 * rate)),
            levelling_off: false,
        }
    }

    fn saturated(key: SeriesKey, current: f64, limit: f64) -> Candidate {
        let mut candidate = leak(key, 0.0);
        candidate.finding.kind = FindingKind::Saturation;
        candidate.finding.current = current;
        candidate.finding.limit = Some(limit);
        candidate.interval = None;
        candidate
    }

    fn labels(finding: &Finding) -> Vec<String> {
        finding
            .consequences
            .iter()
            .map(|c| format!("{} {}", c.kind, c.key.label()))
            .collect()
    }

    #[test]
    fn containment_follows_the_typed_keys() {
        let peer = key("tcp_peer", "CLOSE_WAIT 127.0.0.1:8443");
        let state = key("tcp", "CLOSE_WAIT");
        let socket = key("fds", "socket");
        let fds = key("fds", "");
        assert_eq!(parent(&peer), Some(state.clone()));
        assert!(contains(&state, &peer) && contains(&socket, &peer) && contains(&fds, &peer));
        assert!(contains(&fds, &socket) && contains(&socket, &key("sockets", "udp")));
        assert!(
            !contains(&key("tcp", "ESTABLISHED"), &peer),
            "another state"
        );
        assert!(!contains(&key("fds", "pipe"), &state) && !contains(&peer, &state));
        assert!(contains(
            &key("threads", ""),
            &key("threads", "Analytics-#")
        ));
        assert!(contains(&key("memory", "rss"), &key("memory", "anon")));
        assert!(!contains(
            &key("threads", ""),
            &key("threads", "max_process")
        ));
        let mut other_target = fds.clone();
        other_target.target = "other".into();
        assert!(!contains(&other_target, &peer), "another target");
        assert_eq!(
            key("tcp", "CLOSE_WAIT").attribution,
            Attribution::TcpState(TcpState::CloseWait)
        );
    }

    #[test]
    fn a_close_wait_leak_is_one_finding_rooted_at_its_peer() {
        let found = group(
            vec![
                leak(key("fds", ""), 725.0),
                leak(key("fds", "max_process"), 725.0),
                leak(key("fds", "socket"), 722.0),
                leak(key("tcp", "CLOSE_WAIT"), 720.0),
                leak(key("tcp_peer", "CLOSE_WAIT 127.0.0.1:8443"), 720.0),
            ],
            &Params::production(),
        );
        assert_eq!(found.len(), 1, "{found:#?}");
        let root = &found[0];
        assert_eq!(root.key, key("tcp_peer", "CLOSE_WAIT 127.0.0.1:8443"));
        assert_eq!(
            labels(root),
            ["leak tcp{CLOSE_WAIT}", "leak fds{socket}", "leak fds"],
            "per-process maxima are dropped"
        );
        assert_eq!(
            root.summary,
            "tcp_peer CLOSE_WAIT 127.0.0.1:8443 grows; also: tcp CLOSE_WAIT +720, \
             fds socket +722, fds +725"
        );
    }

    #[test]
    fn a_file_handle_leak_is_one_finding_rooted_at_its_path_group() {
        let path = key("fds", "/srv/orders/order-audit.log");
        assert_eq!(
            path.attribution,
            Attribution::FdPath("/srv/orders/order-audit.log".into())
        );
        assert_eq!(parent(&path), Some(key("fds", "file")));
        assert_eq!(parent(&key("fds", "other files")), Some(key("fds", "file")));
        assert!(contains(&key("fds", ""), &path));
        assert!(!contains(&key("fds", "socket"), &path));
        assert!(!contains(&key("fds", "/srv/orders/other.log"), &path));
        let found = group(
            vec![
                leak(key("fds", ""), 21_750.0),
                leak(key("fds", "max_process"), 21_750.0),
                leak(key("fds", "file"), 21_760.0),
                leak(path.clone(), 21_700.0),
            ],
            &Params::production(),
        );
        assert_eq!(found.len(), 1, "{found:#?}");
        let root = &found[0];
        assert_eq!(root.key, path);
        assert_eq!(labels(root), ["leak fds{file}", "leak fds"]);
        assert_eq!(
            root.summary,
            "fds file /srv/orders/order-audit.log grows; also: fds file +21,760, fds +21,750"
        );
    }

    #[test]
    fn a_thread_leak_takes_its_total_and_the_memory_of_its_stacks() {
        let found = group(
            vec![
                leak(key("threads", "Analytics-#"), 3000.0),
                leak(key("threads", ""), 3010.0),
                leak(key("threads", "max_process"), 3010.0),
                // 3,000 threads/h holding 64 KiB each.
                leak(key("memory", "rss"), 3000.0 * 64.0 * 1024.0),
                leak(key("memory", "anon"), 3000.0 * 60.0 * 1024.0),
            ],
            &Params::production(),
        );
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!(found[0].key, key("threads", "Analytics-#"));
        assert_eq!(
            labels(&found[0]),
            ["leak threads", "leak memory{anon}", "leak memory{rss}"]
        );
        assert!(
            found[0]
                .summary
                .ends_with("also: threads +3,010, memory anon +175.8 MiB, memory rss +187.5 MiB"),
            "{}",
            found[0].summary
        );
    }

    #[test]
    fn a_fill_levelling_off_is_not_confirmed_by_the_memory_it_drags_along() {
        // A pool filling toward its limit (suspected: levelling off) whose threads' stacks
        // grow the memory, which has no limit and is confirmed by its size.
        let candidates = |levelling_off: bool| {
            let mut pool = leak(key("threads", "pool-#"), 3000.0);
            pool.finding.state = FindingState::Suspected;
            pool.finding.limit = Some(32_768.0);
            pool.levelling_off = levelling_off;
            vec![pool, leak(key("memory", "rss"), 3000.0 * 64.0 * 1024.0)]
        };
        let found = group(candidates(true), &Params::production());
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!(labels(&found[0]), ["leak memory{rss}"]);
        assert_eq!(found[0].state, FindingState::Suspected);
        // Without the fill verdict (a young trend), the confirmed memory confirms it.
        let found = group(candidates(false), &Params::production());
        assert_eq!(found[0].state, FindingState::Confirmed);
    }

    #[test]
    fn a_growing_process_count_explains_what_its_processes_hold() {
        // PostgreSQL forking a backend per leaked connection: 900 processes/h, each with
        // its thread, fds of several kinds, a socket and a few MiB.
        let found = group(
            vec![
                leak(key("processes", ""), 900.0),
                leak(key("threads", "postgres"), 900.0),
                leak(key("threads", ""), 900.0),
                leak(key("fds", "eventpoll"), 1800.0),
                leak(key("fds", "/tmp/pg/log"), 1800.0),
                leak(key("tcp_peer", "ESTABLISHED 127.0.0.1 -> :5432"), 900.0),
                leak(key("memory", "rss"), 900.0 * 3.0 * MIB),
            ],
            &Params::production(),
        );
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!(found[0].key, key("processes", ""));
        assert_eq!(found[0].consequences.len(), 6, "{found:#?}");
        // Growth far beyond what new processes bring stays a finding of its own.
        let found = group(
            vec![
                leak(key("processes", ""), 10.0),
                leak(key("threads", "Analytics-#"), 100_000.0),
            ],
            &Params::production(),
        );
        assert_eq!(found.len(), 2, "{found:#?}");
        // Over windows that do not overlap, nothing joins.
        let found = group(
            vec![
                leak_over(key("processes", ""), 900.0, (0.0, 600.0)),
                leak_over(key("fds", "pipe"), 900.0, (1200.0, 3600.0)),
            ],
            &Params::production(),
        );
        assert_eq!(found.len(), 2, "{found:#?}");
    }

    #[test]
    fn rates_that_disagree_stay_two_findings() {
        // The socket fds explain a tenth of the fds' growth: something else leaks too.
        let found = group(
            vec![
                leak(key("fds", ""), 1000.0),
                leak(key("fds", "socket"), 100.0),
            ],
            &Params::production(),
        );
        assert_eq!(found.len(), 2, "{found:#?}");
        assert!(found.iter().all(|f| f.consequences.is_empty()));
        // Memory growing by 100 MiB per leaked thread is a leak of its own.
        let found = group(
            vec![
                leak(key("threads", "W-#"), 10.0),
                leak(key("memory", "rss"), 1000.0 * MIB),
            ],
            &Params::production(),
        );
        assert_eq!(found.len(), 2, "{found:#?}");
        // Windows that do not overlap are two episodes, not one mechanism.
        let found = group(
            vec![
                leak_over(key("tcp", "CLOSE_WAIT"), 50.0, (0.0, 3600.0)),
                leak_over(key("fds", "socket"), 50.0, (7200.0, 9000.0)),
            ],
            &Params::production(),
        );
        assert_eq!(found.len(), 2, "{found:#?}");
    }

    #[test]
    fn parts_explain_a_total_together() {
        // Two thread groups (two mechanisms) leaking: the total goes to the faster one.
        let found = group(
            vec![
                leak(key("threads", ""), 300.0),
                leak(key("threads", "A-#"), 200.0),
                leak(key("threads", "B-#"), 100.0),
            ],
            &Params::production(),
        );
        assert_eq!(found.len(), 2, "{found:#?}");
        let a = found
            .iter()
            .find(|f| f.key == key("threads", "A-#"))
            .unwrap();
        assert_eq!(labels(a), ["leak threads"]);
    }

    #[test]
    fn a_gauge_explains_the_memory_it_drags_along() {
        let found = group(
            vec![
                leak(key("gauge", "cache_entries"), 1000.0),
                leak(key("memory", "anon"), 1000.0 * 4096.0),
            ],
            &Params::production(),
        );
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!(found[0].key, key("gauge", "cache_entries"));
        assert_eq!(labels(&found[0]), ["leak memory{anon}"]);
    }

    #[test]
    fn saturation_of_a_consequence_joins_the_root_and_maxima_never_show() {
        let found = group(
            vec![
                leak(key("tcp", "CLOSE_WAIT"), 100.0),
                leak(key("fds", ""), 100.0),
                saturated(key("fds", ""), 900.0, 1024.0),
                saturated(key("fds", "max_process"), 900.0, 1024.0),
                // Saturated without leaking: still its own finding.
                saturated(key("threads", ""), 900.0, 1000.0),
            ],
            &Params::production(),
        );
        assert_eq!(found.len(), 2, "{found:#?}");
        let root = found.iter().find(|f| f.kind == FindingKind::Leak).unwrap();
        assert_eq!(root.key, key("tcp", "CLOSE_WAIT"));
        assert_eq!(labels(root), ["leak fds", "saturation fds"]);
        assert!(
            root.summary
                .ends_with("also: fds +100, fds at 88% of limit"),
            "{}",
            root.summary
        );
        assert!(found
            .iter()
            .all(|f| f.key.attribution != Attribution::MaxProcess));
    }
}
