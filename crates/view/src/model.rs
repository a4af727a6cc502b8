//! What the pages and reports are made from: plain data, filled by the HTTP layer (from the
//! store and the agent's memory) or by the CLI (from the agent's JSON API).

pub use leakwatch_detect::{Finding, FindingKind, FindingState};

pub use leakwatch_model::{Attribution, Resource, SeriesKey};

/// One stored series of a target (`threads{Leaky-#}`, a limit `threads.limit{max_process}`).
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesView {
    pub key: SeriesKey,
    /// `(ms since the epoch, value)`, time-ordered.
    pub points: Vec<(i64, f64)>,
}

impl SeriesView {
    pub fn new(key: SeriesKey, points: Vec<(i64, f64)>) -> SeriesView {
        SeriesView { key, points }
    }

    /// A series of the page's target from the text encoding (`"threads"`, `"Leaky-#"`).
    pub fn from_text(resource: &str, attribution: &str, points: Vec<(i64, f64)>) -> SeriesView {
        SeriesView::new(SeriesKey::from_text("", resource, attribution), points)
    }

    /// `threads{Leaky-#}`, or `threads` for the total: the spelling of the API and CLI.
    pub fn label(&self) -> String {
        self.key.label()
    }

    pub fn is_limit(&self) -> bool {
        self.key.is_limit
    }

    pub fn last(&self) -> Option<f64> {
        self.points.last().map(|p| p.1)
    }

    pub fn first(&self) -> Option<f64> {
        self.points.first().map(|p| p.1)
    }

    pub fn max(&self) -> Option<f64> {
        self.points.iter().map(|p| p.1).reduce(f64::max)
    }
}

/// `threads{Leaky-#}`, or `threads` when the attribution is empty, for records that carry
/// the text encoding (alerts, incidents).
pub fn label(resource: &str, attribution: &str) -> String {
    SeriesKey::from_text("", resource, attribution).label()
}

/// A process of the target was replaced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RestartView {
    pub ts_ms: i64,
    pub old_pid: Option<u32>,
    pub new_pid: Option<u32>,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub oom_killed: Option<bool>,
    pub stderr_tail: Option<String>,
}

impl RestartView {
    /// `pid 41 -> 77: OOM killed`, `pid 41 -> 77: exit 2`, `pid 41 -> 77: signal 9`.
    pub fn describe(&self) -> String {
        let pid = |p: Option<u32>| p.map_or("?".to_string(), |p| p.to_string());
        let why = match (self.oom_killed, self.exit_code, self.signal) {
            (Some(true), _, _) => "OOM killed".to_string(),
            (_, Some(code), _) => format!("exit {code}"),
            (_, None, Some(signal)) => format!("signal {signal}"),
            _ => "replaced".to_string(),
        };
        format!("pid {} -> {}: {why}", pid(self.old_pid), pid(self.new_pid))
    }
}

/// One delivery of an alert to a channel.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryView {
    pub channel: String,
    /// `pending`, `delivered`, `failed`, `expired`.
    pub status: String,
    pub attempts: u32,
    pub detail: Option<String>,
}

/// An alert of the agent's alert engine and where its notifications stand.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertView {
    pub target: String,
    pub resource: String,
    pub attribution: String,
    pub kind: String,
    /// `warning`, `critical`.
    pub severity: String,
    /// `pending`, `firing`, `resolved`.
    pub state: String,
    pub since_ms: Option<i64>,
    pub silenced: Option<String>,
    pub summary: String,
    pub deliveries: Vec<DeliveryView>,
}

/// Evidence captured when a finding was first seen.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IncidentView {
    pub id: String,
    pub created_ms: i64,
    pub resource: String,
    pub attribution: String,
    pub summary: String,
    /// `(file name, size in bytes)`.
    pub files: Vec<(String, u64)>,
    /// `(file name, first lines)` of the files worth quoting.
    pub excerpts: Vec<(String, String)>,
}

/// Everything the target page (and a report) shows about one target.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TargetView {
    pub name: String,
    /// `unit`, `container`, `rule`, `exe`.
    pub kind: String,
    pub live: bool,
    /// The charted range.
    pub from_ms: i64,
    pub to_ms: i64,
    pub series: Vec<SeriesView>,
    pub restarts: Vec<RestartView>,
    pub findings: Vec<Finding>,
    pub alerts: Vec<AlertView>,
    pub incidents: Vec<IncidentView>,
}

/// A small chart of one resource in the overview.
#[derive(Debug, Clone, PartialEq)]
pub struct Spark {
    pub title: String,
    pub resource: Resource,
    pub points: Vec<(i64, f64)>,
    pub limit: Option<f64>,
}

/// One target in the overview.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OverviewRow {
    pub name: String,
    pub kind: String,
    pub live: bool,
    pub last_seen_ms: Option<i64>,
    /// This target's findings, ranked as the agent ranks them.
    pub findings: Vec<Finding>,
    /// The resource closest to its limit: `(current / limit, label)`, from
    /// [`closeness`].
    pub closeness: Option<(f64, String)>,
    /// Threads, fds, sockets, memory; empty for rows beyond the overview's chart cap.
    pub sparks: Vec<Spark>,
}

/// The overview page.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overview {
    pub from_ms: i64,
    pub to_ms: i64,
    /// Ranked with [`rank`].
    pub rows: Vec<OverviewRow>,
    /// A line about the agent (samples, uptime); shown in the header.
    pub agent: String,
}

/// The soonest forecast exhaustion among `findings`, in seconds (conservative bound first).
pub fn soonest_eta(findings: &[Finding]) -> Option<f64> {
    findings
        .iter()
        .filter_map(|f| f.eta_conservative_seconds.or(f.eta_seconds))
        .reduce(f64::min)
}

/// The largest `current / limit` among a target's current values, with the label of the
/// series: every limit series is paired with the series it bounds (the store keeps a limit
/// next to that series, e.g. `threads.limit{max_process}` with `threads{max_process}`).
pub fn closeness(current: &[(SeriesKey, f64)]) -> Option<(f64, String)> {
    current
        .iter()
        .filter(|(key, limit)| key.is_limit && *limit > 0.0)
        .filter_map(|(limit_key, limit)| {
            let (bounded, value) = current.iter().find(|(key, _)| {
                !key.is_limit
                    && key.resource == limit_key.resource
                    && key.attribution == limit_key.attribution
            })?;
            Some((value / limit, bounded.label()))
        })
        .max_by(|a, b| a.0.total_cmp(&b.0))
}

/// Overview order: targets with open findings first (confirmed before only suspected),
/// soonest exhaustion first (findings without a forecast after those with one); then by
/// closeness to a limit; then live before gone; then by name. Resolved findings (a gone
/// target's) do not rank a target first.
pub fn rank(rows: &mut [OverviewRow]) {
    rows.sort_by(|a, b| {
        let open = |r: &OverviewRow| -> Vec<Finding> {
            r.findings
                .iter()
                .filter(|f| f.state != FindingState::Resolved)
                .cloned()
                .collect()
        };
        let class = |r: &OverviewRow| {
            let open = open(r);
            if open.iter().any(|f| f.state == FindingState::Confirmed) {
                0
            } else if !open.is_empty() {
                1
            } else {
                2
            }
        };
        let eta = |r: &OverviewRow| soonest_eta(&open(r)).unwrap_or(f64::INFINITY);
        let close = |r: &OverviewRow| r.closeness.as_ref().map_or(-1.0, |c| c.0);
        class(a)
            .cmp(&class(b))
            .then_with(|| eta(a).total_cmp(&eta(b)))
            .then_with(|| close(b).total_cmp(&close(a)))
            .then_with(|| b.live.cmp(&a.live))
            .then_with(|| a.name.cmp(&b.name))
    });
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn finding(target: &str, resource: &str, attribution: &str, eta: Option<f64>) -> Finding {
        Finding {
            kind: FindingKind::Leak,
            state: leakwatch_detect::FindingState::Confirmed,
            resolution: None,
            key: leakwatch_detect::SeriesKey::from_text(target, resource, attribution),
            pids: vec![],
            processes: Vec::new(),
            current: 400.0,
            limit: Some(32_768.0),
            rate_per_hour: 3_600.0,
            eta_seconds: eta,
            eta_conservative_seconds: eta.map(|e| e * 0.8),
            first_seen: 1_700_000_000.0,
            evidence_window: (1_700_000_000.0, 1_700_000_300.0),
            confidence: 0.999,
            p_value: 0.001,
            restarts: 0,
            summary: format!("{resource} {attribution} +300 in 5m (3,600/h)"),
            consequences: Vec::new(),
            evidence: None,
        }
    }

    fn row(name: &str, findings: Vec<Finding>, closeness: Option<f64>, live: bool) -> OverviewRow {
        OverviewRow {
            name: name.into(),
            live,
            findings,
            closeness: closeness.map(|c| (c, "fds{max_process}".to_string())),
            ..OverviewRow::default()
        }
    }

    #[test]
    fn findings_first_by_eta_then_closeness() {
        let mut rows = vec![
            row("idle", vec![], None, true),
            row("near-limit", vec![], Some(0.9), true),
            row(
                "slow-leak",
                vec![finding("slow-leak", "fds", "", Some(86_400.0))],
                None,
                true,
            ),
            row("gone", vec![], Some(0.95), false),
            row(
                "no-limit-leak",
                vec![finding("no-limit-leak", "threads", "x", None)],
                None,
                true,
            ),
            row(
                "fast-leak",
                vec![finding("fast-leak", "threads", "y", Some(600.0))],
                None,
                true,
            ),
            row("half", vec![], Some(0.5), true),
        ];
        rank(&mut rows);
        let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "fast-leak",
                "slow-leak",
                "no-limit-leak",
                "gone",
                "near-limit",
                "half",
                "idle"
            ]
        );
    }

    #[test]
    fn closeness_pairs_each_limit_with_its_series() {
        let current = vec![
            (SeriesKey::from_text("", "threads", ""), 900.0),
            (SeriesKey::from_text("", "threads", "max_process"), 300.0),
            (
                SeriesKey::from_text("", "threads.limit", "max_process"),
                1_000.0,
            ),
            (SeriesKey::from_text("", "fds", "max_process"), 800.0),
            (
                SeriesKey::from_text("", "fds.limit", "max_process"),
                1_024.0,
            ),
            (SeriesKey::from_text("", "memory.limit", "cgroup"), 0.0),
        ];
        let (ratio, label) = closeness(&current).unwrap();
        assert_eq!(label, "fds{max_process}");
        assert!((ratio - 800.0 / 1_024.0).abs() < 1e-9);
        assert_eq!(closeness(&current[..2]), None);
    }

    #[test]
    fn restarts_describe_why() {
        let r = RestartView {
            old_pid: Some(41),
            new_pid: Some(77),
            oom_killed: Some(true),
            exit_code: Some(137),
            ..RestartView::default()
        };
        assert_eq!(r.describe(), "pid 41 -> 77: OOM killed");
        let r = RestartView {
            signal: Some(9),
            ..RestartView::default()
        };
        assert_eq!(r.describe(), "pid ? -> ?: signal 9");
    }
}
