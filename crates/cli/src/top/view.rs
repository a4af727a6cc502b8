//! Pure functions from the model to what is drawn: table rows (filtered, ranked), the
//! text sparklines, and the lines of the detail pane. No terminal here, so all of it is
//! unit-tested.

use super::model::{total, FindingView, Ring, Target};
use crate::format;
use leakwatch_model::{Attribution, MemoryKind, Resource, SeriesKey, TcpState};
use std::cmp::Ordering;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    /// Findings first by forecast, then closeness to a limit.
    Risk,
    Threads,
    Fds,
    Sockets,
    Memory,
    Name,
}

impl Sort {
    pub fn next(self) -> Sort {
        match self {
            Sort::Risk => Sort::Threads,
            Sort::Threads => Sort::Fds,
            Sort::Fds => Sort::Sockets,
            Sort::Sockets => Sort::Memory,
            Sort::Memory => Sort::Name,
            Sort::Name => Sort::Risk,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Sort::Risk => "risk",
            Sort::Threads => "threads",
            Sort::Fds => "fds",
            Sort::Sockets => "sockets",
            Sort::Memory => "memory",
            Sort::Name => "name",
        }
    }
}

/// Points shown in a table sparkline.
pub const SPARK_WIDTH: usize = 8;

/// One table row, everything already reduced to what is shown.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub name: String,
    pub threads: Option<u64>,
    pub threads_spark: String,
    pub fds: Option<u64>,
    pub fds_spark: String,
    pub sockets: Option<u64>,
    pub sockets_spark: String,
    pub rss: Option<u64>,
    pub rss_spark: String,
    /// The fullest resource against its limit: `(fraction, resource)`.
    pub worst: Option<(f64, String)>,
    pub top_group: Option<(String, u64)>,
    pub top_close_wait: Option<(String, u64)>,
    /// The finding shown: the most urgent one naming a specific group, kind or peer
    /// (`threads Analytics-#` rather than `threads max_process`), else the most urgent.
    pub finding: Option<FindingView>,
    /// The soonest forecast exhaustion over all findings, for ranking.
    pub eta: Option<f64>,
    /// Findings beyond the first.
    pub more_findings: usize,
}

impl Row {
    pub fn from_target(target: &Target) -> Row {
        let count = |resource: Resource| target.value(&total(resource)).map(|v| v.max(0.0) as u64);
        let rss = SeriesKey::new("", Resource::Memory, Attribution::Memory(MemoryKind::Rss));
        let spark_of = |ring: Option<&Ring>| {
            ring.map(|r| {
                let values: Vec<f64> = r.values().collect();
                sparkline(&values, SPARK_WIDTH)
            })
            .unwrap_or_default()
        };
        let top_group = target
            .current
            .iter()
            .filter_map(|(key, n)| match (&key.resource, &key.attribution) {
                (Resource::Threads, Attribution::ThreadGroup(group)) if !key.is_limit => {
                    Some((group, n))
                }
                _ => None,
            })
            .max_by(|a, b| a.1.total_cmp(b.1).then_with(|| b.0.cmp(a.0)))
            .map(|(group, n)| (group.clone(), *n as u64));
        let top_close_wait = target
            .current
            .iter()
            .filter_map(|(key, n)| match &key.attribution {
                Attribution::TcpPeer {
                    state: TcpState::CloseWait,
                    peer,
                } if !key.is_limit => Some((peer.clone(), *n as u64)),
                _ => None,
            })
            .max_by(|a, b| a.1.cmp(&b.1).then_with(|| b.0.cmp(&a.0)));
        Row {
            name: target.name.clone(),
            threads: count(Resource::Threads),
            threads_spark: spark_of(target.ring(&total(Resource::Threads))),
            fds: count(Resource::Fds),
            fds_spark: spark_of(target.ring(&total(Resource::Fds))),
            sockets: target.tcp_total().map(|v| v as u64),
            sockets_spark: if target.tcp_total().is_some() {
                spark_of(Some(&target.sockets))
            } else {
                String::new()
            },
            rss: target.value(&rss).map(|v| v as u64),
            rss_spark: spark_of(target.ring(&rss)),
            worst: worst_against_limit(target),
            top_group,
            top_close_wait,
            finding: target
                .findings
                .iter()
                .find(|f| {
                    !matches!(
                        f.key().attribution,
                        Attribution::Total | Attribution::MaxProcess
                    )
                })
                .or(target.findings.first())
                .cloned(),
            eta: target
                .findings
                .iter()
                .filter_map(FindingView::eta)
                .min_by(f64::total_cmp),
            more_findings: target.findings.len().saturating_sub(1),
        }
    }
}

/// Every resource that has a limit series (`X.limit{A}` bounds `X{A}`), as
/// `(fraction of the limit, resource)`, fullest first.
pub fn against_limits(target: &Target) -> Vec<(f64, Resource, f64, f64)> {
    let mut out: Vec<(f64, Resource, f64, f64)> = target
        .current
        .iter()
        .filter(|(key, _)| key.is_limit)
        .filter_map(|(key, limit)| {
            let bounded = SeriesKey {
                is_limit: false,
                ..key.clone()
            };
            let value = target.value(&bounded)?;
            (*limit > 0.0).then(|| (value / limit, key.resource.clone(), value, *limit))
        })
        .collect();
    out.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    out
}

fn worst_against_limit(target: &Target) -> Option<(f64, String)> {
    against_limits(target)
        .into_iter()
        .next()
        .map(|(fraction, resource, _, _)| (fraction, resource.to_string()))
}

/// Leak risk, most urgent first: targets with a finding that forecasts exhaustion (soonest
/// first), then other findings, then the rest by how close their fullest resource is to
/// its limit; the name breaks ties so the order is stable.
pub fn risk_order(a: &Row, b: &Row) -> Ordering {
    let tier = |r: &Row| match (&r.finding, r.eta) {
        (Some(_), Some(_)) => 0,
        (Some(_), None) => 1,
        (None, _) => 2,
    };
    let fullness = |r: &Row| r.worst.as_ref().map_or(-1.0, |(f, _)| *f);
    tier(a)
        .cmp(&tier(b))
        .then_with(|| match (a.eta, b.eta) {
            (Some(x), Some(y)) => x.total_cmp(&y),
            _ => Ordering::Equal,
        })
        .then_with(|| fullness(b).total_cmp(&fullness(a)))
        .then_with(|| a.name.cmp(&b.name))
}

pub fn order(sort: Sort, a: &Row, b: &Row) -> Ordering {
    let desc = |x: Option<u64>, y: Option<u64>| y.unwrap_or(0).cmp(&x.unwrap_or(0));
    let by = match sort {
        Sort::Risk => return risk_order(a, b),
        Sort::Threads => desc(a.threads, b.threads),
        Sort::Fds => desc(a.fds, b.fds),
        Sort::Sockets => desc(a.sockets, b.sockets),
        Sort::Memory => desc(a.rss, b.rss),
        Sort::Name => Ordering::Equal,
    };
    by.then_with(|| a.name.cmp(&b.name))
}

/// Whether a target matches the filter: a case-insensitive substring of its name, kind,
/// or (standalone) one of its processes' names or pids. An empty filter matches all.
pub fn matches(target: &Target, filter: &str) -> bool {
    let filter = filter.trim().to_lowercase();
    if filter.is_empty() {
        return true;
    }
    target.name.to_lowercase().contains(&filter)
        || target.kind.to_lowercase().contains(&filter)
        || target
            .processes
            .iter()
            .any(|(pid, comm)| comm.to_lowercase().contains(&filter) || pid.to_string() == filter)
}

/// The table: targets matching `filter`, as rows, in `sort` order.
pub fn rows<'a>(targets: impl Iterator<Item = &'a Target>, sort: Sort, filter: &str) -> Vec<Row> {
    let mut rows: Vec<Row> = targets
        .filter(|t| matches(t, filter))
        .map(Row::from_target)
        .collect();
    rows.sort_by(|a, b| order(sort, a, b));
    rows
}

/// The last `width` values as block characters, scaled from their minimum over a span of
/// at least a fifth of their maximum: a climb shows its shape even on a large number,
/// while 8 -> 9 fds does not look like a cliff. Flat is `▁`s.
pub fn sparkline(values: &[f64], width: usize) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let tail = &values[values.len().saturating_sub(width)..];
    let min = tail.iter().copied().fold(f64::INFINITY, f64::min);
    let max = tail.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let span = (max - min).max(max.abs() / 5.0);
    tail.iter()
        .map(|v| {
            if span > 0.0 {
                let level = ((v - min) / span * 7.0).round() as usize;
                BARS[level.min(7)]
            } else {
                BARS[0]
            }
        })
        .collect()
}

/// A count for a column: `12,431`, or `-` when unknown (fds of another user's process).
pub fn count_cell(value: Option<u64>) -> String {
    value.map_or_else(|| "-".to_string(), format::count)
}

pub fn bytes_cell(value: Option<u64>) -> String {
    value.map_or_else(|| "-".to_string(), format::bytes)
}

/// `fds 79%`.
pub fn worst_cell(worst: &Option<(f64, String)>) -> String {
    match worst {
        Some((fraction, resource)) => format!("{resource} {:.0}%", fraction * 100.0),
        None => "-".to_string(),
    }
}

/// `~38m` from seconds.
pub fn eta_text(seconds: f64) -> String {
    if !seconds.is_finite() || seconds < 0.0 {
        return "?".to_string();
    }
    format!("~{}", format::duration(seconds as u64))
}

/// The detail pane of one target: every thread group, fd kind, TCP state and peer,
/// memory, limits and findings. `(heading, lines)` sections.
pub fn detail(target: &Target) -> Vec<(String, Vec<String>)> {
    let mut sections = Vec::new();
    let attributed = |resource: Resource| -> Vec<(String, f64)> {
        let mut items: Vec<(String, f64)> = target
            .current
            .iter()
            .filter(|(key, _)| {
                !key.is_limit
                    && key.resource == resource
                    && !matches!(
                        key.attribution,
                        Attribution::Total | Attribution::MaxProcess
                    )
            })
            .map(|(key, v)| (key.attribution.to_string(), *v))
            .collect();
        items.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        items
    };
    let number = |v: f64| format::count(v.max(0.0) as u64);

    let mut findings = Vec::new();
    for f in &target.findings {
        let mut line = format!("{} {}", f.kind, f.summary);
        if let Some(eta) = f.eta_seconds {
            line.push_str(&format!(" · ETA {}", eta_text(eta)));
            if let Some(early) = f.eta_conservative_seconds {
                line.push_str(&format!(" (conservative {})", eta_text(early)));
            }
        }
        findings.push(line);
    }
    if findings.is_empty() {
        findings.push("none".to_string());
    }
    sections.push(("findings".to_string(), findings));

    let mut threads = vec![format!(
        "total {}",
        target
            .value(&total(Resource::Threads))
            .map_or("-".into(), number)
    )];
    threads.extend(
        attributed(Resource::Threads)
            .into_iter()
            .map(|(group, n)| format!("{:>8}  {group}", number(n))),
    );
    sections.push(("threads".to_string(), threads));

    let fds = match target.value(&total(Resource::Fds)) {
        Some(total) => {
            let mut lines = vec![format!("total {}", number(total))];
            lines.extend(
                attributed(Resource::Fds)
                    .into_iter()
                    .map(|(kind, n)| format!("{:>8}  {kind}", number(n))),
            );
            lines
        }
        None => vec!["not readable (another user's process: run as root)".to_string()],
    };
    sections.push(("fds".to_string(), fds));

    let mut tcp: Vec<String> = attributed(Resource::Tcp)
        .into_iter()
        .map(|(state, n)| format!("{:>8}  {state}", number(n)))
        .collect();
    let peers = attributed(Resource::TcpPeer);
    if !peers.is_empty() {
        tcp.push("by state and peer:".to_string());
        tcp.extend(
            peers
                .into_iter()
                .map(|(peer, n)| format!("{:>8}  {peer}", number(n))),
        );
    }
    for (kind, n) in attributed(Resource::Sockets) {
        tcp.push(format!("{:>8}  {kind} sockets", number(n)));
    }
    if tcp.is_empty() {
        tcp.push("none".to_string());
    }
    sections.push(("sockets".to_string(), tcp));

    let memory: Vec<String> = attributed(Resource::Memory)
        .into_iter()
        .map(|(kind, v)| format!("{:>10}  {kind}", format::bytes(v.max(0.0) as u64)))
        .collect();
    sections.push(("memory".to_string(), memory));

    let limits: Vec<String> = against_limits(target)
        .into_iter()
        .map(|(fraction, resource, value, limit)| {
            let show = |v: f64| {
                if resource.is_bytes() {
                    format::bytes(v as u64)
                } else {
                    number(v)
                }
            };
            format!(
                "{resource:<8} {} of {} ({:.0}%)",
                show(value),
                show(limit),
                fraction * 100.0
            )
        })
        .collect();
    sections.push((
        "limits".to_string(),
        if limits.is_empty() {
            vec!["none known".to_string()]
        } else {
            limits
        },
    ));

    if !target.processes.is_empty() {
        let mut processes: Vec<String> = target
            .processes
            .iter()
            .take(20)
            .map(|(pid, comm)| format!("{pid:>8}  {comm}"))
            .collect();
        if target.processes.len() > 20 {
            processes.push(format!("… {} more", target.processes.len() - 20));
        }
        for (_, old, new) in target.restarts.iter().rev().take(3) {
            processes.push(format!("restart: {old} replaced by {new}"));
        }
        sections.push(("processes".to_string(), processes));
    }
    sections
}

#[cfg(test)]
mod tests {
    use super::super::model::{parse_label, Target};
    use super::*;

    fn target(name: &str, pairs: &[(&str, f64)]) -> Target {
        Target {
            name: name.into(),
            kind: "exe".into(),
            current: pairs.iter().map(|(l, v)| (parse_label(l), *v)).collect(),
            ..Target::default()
        }
    }

    fn finding(target: &str, eta: Option<f64>, summary: &str) -> FindingView {
        FindingView {
            kind: "leak".into(),
            target: target.into(),
            resource: "threads".into(),
            eta_seconds: eta,
            summary: summary.into(),
            ..FindingView::default()
        }
    }

    fn names(rows: &[Row]) -> Vec<&str> {
        rows.iter().map(|r| r.name.as_str()).collect()
    }

    #[test]
    fn risk_puts_findings_by_eta_first_then_closeness_to_a_limit() {
        let mut soon = target("soon", &[("threads", 10.0)]);
        soon.findings = vec![finding("soon", Some(600.0), "threads +")];
        let mut later = target("later", &[("threads", 10.0)]);
        later.findings = vec![finding("later", Some(7200.0), "fds +")];
        let mut unbounded = target("unbounded", &[("threads", 10.0)]);
        unbounded.findings = vec![finding("unbounded", None, "memory +")];
        let full = target(
            "full",
            &[
                ("fds", 900.0),
                ("fds{max_process}", 900.0),
                ("fds.limit{max_process}", 1000.0),
            ],
        );
        let half = target(
            "half",
            &[
                ("threads", 5000.0),
                ("threads{max_process}", 5000.0),
                ("threads.limit{max_process}", 10_000.0),
            ],
        );
        let plain = target("plain", &[("threads", 99_999.0)]);
        let all = [plain, half, full, unbounded, later, soon];
        let rows = rows(all.iter(), Sort::Risk, "");
        assert_eq!(
            names(&rows),
            vec!["soon", "later", "unbounded", "full", "half", "plain"]
        );
        assert_eq!(rows[3].worst, Some((0.9, "fds".to_string())));
        assert_eq!(worst_cell(&rows[3].worst), "fds 90%");
    }

    #[test]
    fn rows_show_the_most_specific_finding_but_rank_by_the_soonest() {
        let mut t = target("svc", &[("fds", 70.0)]);
        t.findings = vec![
            FindingView {
                attribution: "max_process".into(),
                ..finding("svc", Some(100.0), "fds max_process +58")
            },
            FindingView {
                attribution: "CLOSE_WAIT 127.0.0.1:18443".into(),
                ..finding(
                    "svc",
                    Some(120.0),
                    "tcp_peer CLOSE_WAIT 127.0.0.1:18443 +58",
                )
            },
        ];
        let row = Row::from_target(&t);
        assert_eq!(row.finding.unwrap().eta_seconds, Some(120.0));
        assert_eq!(row.eta, Some(100.0));
        assert_eq!(row.more_findings, 1);
        let mut only_generic = target("g", &[]);
        only_generic.findings = vec![finding("g", None, "threads +5")];
        let row = Row::from_target(&only_generic);
        assert_eq!(row.finding.unwrap().summary, "threads +5");
        assert_eq!(row.eta, None);
    }

    #[test]
    fn each_sort_key_ranks_by_its_column_with_name_as_tiebreak() {
        let a = target(
            "a",
            &[("threads", 1.0), ("fds", 50.0), ("memory{rss}", 10.0)],
        );
        let b = target(
            "b",
            &[
                ("threads", 9.0),
                ("fds", 5.0),
                ("tcp{ESTABLISHED}", 3.0),
                ("memory{rss}", 5.0),
            ],
        );
        let c = target("c", &[("threads", 9.0), ("memory{rss}", 99.0)]);
        let all = [c, b, a];
        let by = |sort| {
            rows(all.iter(), sort, "")
                .iter()
                .map(|r| r.name.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(by(Sort::Threads), vec!["b", "c", "a"]);
        assert_eq!(by(Sort::Fds), vec!["a", "b", "c"]);
        assert_eq!(by(Sort::Sockets), vec!["b", "a", "c"]);
        assert_eq!(by(Sort::Memory), vec!["c", "a", "b"]);
        assert_eq!(by(Sort::Name), vec!["a", "b", "c"]);
        let mut sort = Sort::Risk;
        for _ in 0..6 {
            sort = sort.next();
        }
        assert_eq!(sort, Sort::Risk, "s cycles through all six");
    }

    #[test]
    fn the_filter_matches_name_kind_and_process_names_case_insensitively() {
        let mut a = target("leaky-3fa2c1", &[("threads", 1.0)]);
        a.processes = vec![(4242, "lwTopLeak".into())];
        let b = target("nginx.service", &[("threads", 1.0)]);
        let all = [a, b];
        assert_eq!(
            names(&rows(all.iter(), Sort::Name, "LWTOP")),
            vec!["leaky-3fa2c1"]
        );
        assert_eq!(
            names(&rows(all.iter(), Sort::Name, "4242")),
            vec!["leaky-3fa2c1"]
        );
        assert_eq!(
            names(&rows(all.iter(), Sort::Name, "service")),
            vec!["nginx.service"]
        );
        assert_eq!(rows(all.iter(), Sort::Name, "  ").len(), 2);
        assert!(rows(all.iter(), Sort::Name, "nothing-like-this").is_empty());
    }

    #[test]
    fn rows_pick_the_top_thread_group_and_close_wait_peer() {
        let t = target(
            "svc",
            &[
                ("threads", 60.0),
                ("threads{max_process}", 60.0),
                ("threads{other}", 55.0),
                ("threads{Analytics-#}", 40.0),
                ("threads{worker-#}", 4.0),
                ("fds", 30.0),
                ("tcp{CLOSE_WAIT}", 12.0),
                ("tcp{ESTABLISHED}", 3.0),
                ("tcp_peer{ESTABLISHED 10.0.0.1:5432}", 3.0),
                ("tcp_peer{CLOSE_WAIT 127.0.0.1:18443}", 10.0),
                ("tcp_peer{CLOSE_WAIT 127.0.0.1:9000}", 2.0),
                ("memory{rss}", 2048.0),
            ],
        );
        let row = Row::from_target(&t);
        assert_eq!(row.top_group, Some(("Analytics-#".to_string(), 40)));
        assert_eq!(
            row.top_close_wait,
            Some(("127.0.0.1:18443".to_string(), 10))
        );
        assert_eq!(row.sockets, Some(15));
        assert_eq!(row.rss, Some(2048));
        assert_eq!(row.finding, None);
        // Without fds (unreadable), sockets are unknown, not zero.
        let other_user = target("other", &[("threads", 3.0)]);
        assert_eq!(Row::from_target(&other_user).sockets, None);
        assert_eq!(count_cell(None), "-");
    }

    #[test]
    fn sparklines_scale_between_min_and_max_of_the_shown_tail() {
        assert_eq!(sparkline(&[], 8), "");
        assert_eq!(sparkline(&[5.0, 5.0, 5.0], 8), "▁▁▁");
        assert_eq!(
            sparkline(&[0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0], 8),
            "▁▂▃▄▅▆▇█"
        );
        // Only the last `width` values count: the early spike does not flatten the rest.
        assert_eq!(sparkline(&[1000.0, 10.0, 20.0, 30.0], 3), "▁▅█");
        // A small change of a large number stays small: 8 -> 9 is a fifth of the way up.
        assert_eq!(sparkline(&[8.0, 9.0, 9.0], 8), "▁▅▅");
        assert_eq!(sparkline(&[1000.0, 1001.0], 8), "▁▁");
    }

    #[test]
    fn the_detail_pane_lists_groups_kinds_peers_limits_and_findings() {
        let mut t = target(
            "svc",
            &[
                ("threads", 45.0),
                ("threads{Analytics-#}", 40.0),
                ("threads{worker-#}", 4.0),
                ("threads{max_process}", 45.0),
                ("threads.limit{max_process}", 32_768.0),
                ("fds", 22.0),
                ("fds{socket}", 12.0),
                ("fds{max_process}", 22.0),
                ("fds.limit{max_process}", 1024.0),
                ("tcp{CLOSE_WAIT}", 12.0),
                ("tcp_peer{CLOSE_WAIT 127.0.0.1:18443}", 12.0),
                ("memory{rss}", 2.0 * 1024.0 * 1024.0),
            ],
        );
        t.findings = vec![FindingView {
            eta_conservative_seconds: Some(1800.0),
            ..finding("svc", Some(3600.0), "threads Analytics-# +40 in 1m")
        }];
        let text: Vec<String> = detail(&t)
            .into_iter()
            .flat_map(|(heading, lines)| std::iter::once(heading).chain(lines))
            .collect();
        let has = |needle: &str| text.iter().any(|l| l.contains(needle));
        assert!(has(
            "leak threads Analytics-# +40 in 1m · ETA ~1h0m (conservative ~30m0s)"
        ));
        assert!(has("      40  Analytics-#"), "{text:#?}");
        assert!(has("      12  socket"));
        assert!(!has("max_process"), "{text:#?}");
        assert!(has("      12  CLOSE_WAIT 127.0.0.1:18443"));
        assert!(has("fds      22 of 1,024 (2%)"), "{text:#?}");
        assert!(has("   2.0 MiB  rss"), "{text:#?}");
    }
}
