//! What `leakwatch top` knows: the live targets, a short bounded history of each of their
//! series, and their findings. Fed by [`Update`]s from the sampling or polling thread;
//! pure apart from the engine call in standalone mode (itself pure).

use leakwatch_api::FindingRecord;
use leakwatch_detect::Params;
use leakwatch_model::{Resource, SeriesKey, UnixMs};
use std::collections::{BTreeMap, VecDeque};

/// Points kept per series: 4 minutes at the default 2 s interval.
pub const HISTORY: usize = 120;

/// A series of one target (the target itself is left empty: a [`Target`] holds its own).
pub type Key = SeriesKey;

/// `threads{Analytics-#}`, as the agent's `/api/v1/targets` labels its current values, read
/// with the model's grammar (as leakwatch-api's `Current` reads them), for tests.
#[cfg(test)]
pub fn parse_label(label: &str) -> Key {
    label
        .parse()
        .unwrap_or_else(|_| SeriesKey::from_text("", label, ""))
}

/// The whole of `resource`.
pub fn total(resource: Resource) -> Key {
    SeriesKey::total("", resource)
}

#[cfg(test)]
pub fn key(resource: &str, attribution: &str) -> Key {
    SeriesKey::from_text("", resource, attribution)
}

/// A bounded, time-ordered series of `(ms since the epoch, value)`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ring {
    points: VecDeque<(i64, f64)>,
}

impl Ring {
    /// Appends a point newer than the last one (older or equal times are ignored, so a
    /// repeated update cannot duplicate a point); drops the oldest beyond [`HISTORY`].
    pub fn push(&mut self, ms: i64, value: f64) {
        if self.points.back().is_some_and(|(last, _)| *last >= ms) {
            return;
        }
        if self.points.capacity() == 0 {
            // All at once: top's own memory then stays flat while its history fills,
            // instead of looking like the slow climb it is there to catch.
            self.points.reserve_exact(HISTORY);
        }
        self.points.push_back((ms, value));
        while self.points.len() > HISTORY {
            self.points.pop_front();
        }
    }

    /// Puts older history (time-ordered) in front of what is there; only points older than
    /// the first one kept are used, and the ring stays bounded.
    pub fn prepend(&mut self, older: &[(i64, f64)]) {
        let first = self.points.front().map_or(i64::MAX, |(ms, _)| *ms);
        for point in older.iter().rev().filter(|(ms, _)| *ms < first) {
            if self.points.len() >= HISTORY {
                break;
            }
            self.points.push_front(*point);
        }
    }

    pub fn values(&self) -> impl Iterator<Item = f64> + '_ {
        self.points.iter().map(|(_, v)| *v)
    }

    pub fn points(&self) -> impl Iterator<Item = (i64, f64)> + '_ {
        self.points.iter().copied()
    }

    pub fn last_ms(&self) -> Option<i64> {
        self.points.back().map(|(ms, _)| *ms)
    }

    pub fn first_ms(&self) -> Option<i64> {
        self.points.front().map(|(ms, _)| *ms)
    }
}

/// A finding as the view shows it, from the agent's `/api/v1/findings` or the engine run
/// here (both as leakwatch-api's `FindingRecord`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FindingView {
    pub kind: String,
    pub target: String,
    pub resource: String,
    pub attribution: String,
    pub current: f64,
    pub limit: Option<f64>,
    pub rate_per_hour: f64,
    pub eta_seconds: Option<f64>,
    pub eta_conservative_seconds: Option<f64>,
    pub summary: String,
}

impl FindingView {
    /// The series it is about.
    pub fn key(&self) -> SeriesKey {
        SeriesKey::from_text(&self.target, &self.resource, &self.attribution)
    }

    /// The forecast used for ranking: the conservative one when there is one.
    pub fn eta(&self) -> Option<f64> {
        self.eta_conservative_seconds.or(self.eta_seconds)
    }
}

impl From<&FindingRecord> for FindingView {
    fn from(f: &FindingRecord) -> FindingView {
        FindingView {
            // Where it stands, when it is not simply confirmed.
            kind: match f.state {
                leakwatch_detect::FindingState::Confirmed => f.kind.to_string(),
                state => format!("{} ({state})", f.kind),
            },
            target: f.key.target.clone(),
            resource: f.key.resource_text(),
            attribution: f.key.attribution_text(),
            current: f.current,
            limit: f.limit,
            rate_per_hour: f.rate_per_hour,
            eta_seconds: f.eta_seconds,
            eta_conservative_seconds: f.eta_conservative_seconds,
            summary: f.summary.clone(),
        }
    }
}

/// One target in one update: its current value per series.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TargetUpdate {
    pub name: String,
    pub kind: String,
    /// `(pid, comm)` of its processes; empty in agent mode (the API does not list them).
    pub processes: Vec<(u32, String)>,
    pub current: BTreeMap<Key, f64>,
    /// Standalone: processes of this target replaced by others in this pass, as
    /// `(old pid, new pid)`, seen by the agent's restart tracker. The engine judges
    /// growth across such restarts instead of taking the drop for the end of a leak.
    pub restarts: Vec<(u32, u32)>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Update {
    /// Every live target at `time_ms`; targets not listed are gone. `new_sample` is false
    /// when the agent has not sampled since the previous poll (values are not recorded
    /// again); `findings` is `None` in standalone mode (computed here instead).
    Sample {
        time_ms: i64,
        samples: u64,
        new_sample: bool,
        targets: Vec<TargetUpdate>,
        findings: Option<Vec<FindingView>>,
    },
    /// Older history of one target (agent mode), one `(time, values)` per pass.
    History {
        target: String,
        passes: Vec<(i64, BTreeMap<Key, f64>)>,
    },
    /// The source failed this round (agent unreachable, /proc unreadable); it retries.
    Error { time_ms: i64, message: String },
}

#[derive(Debug, Clone, Default)]
pub struct Target {
    pub name: String,
    pub kind: String,
    pub processes: Vec<(u32, String)>,
    pub current: BTreeMap<Key, f64>,
    pub history: BTreeMap<Key, Ring>,
    /// TCP sockets in any state, per pass (no such series is stored; summed here).
    pub sockets: Ring,
    /// This target's findings, soonest exhaustion first.
    pub findings: Vec<FindingView>,
    /// Standalone: restarts seen within the history, as `(ms, old pid, new pid)`.
    pub restarts: Vec<(i64, u32, u32)>,
}

impl Target {
    pub fn value(&self, key: &Key) -> Option<f64> {
        self.current.get(key).copied()
    }

    pub fn ring(&self, key: &Key) -> Option<&Ring> {
        self.history.get(key)
    }

    /// Sum of the TCP sockets per state; `None` when the fds (and so the sockets) of the
    /// target could not be read.
    pub fn tcp_total(&self) -> Option<f64> {
        tcp_total(&self.current)
    }

    fn record(&mut self, ms: i64, values: &BTreeMap<Key, f64>) {
        for (key, value) in values {
            self.history
                .entry(key.clone())
                .or_default()
                .push(ms, *value);
        }
        if let Some(total) = tcp_total(values) {
            self.sockets.push(ms, total);
        }
        // A thread group or peer that left the window of the total is dropped, so the
        // history stays bounded however many names come and go.
        if let Some(oldest) = self
            .ring(&total(Resource::Threads))
            .and_then(Ring::first_ms)
        {
            self.history
                .retain(|_, ring| ring.last_ms().is_some_and(|last| last >= oldest));
            self.restarts.retain(|(ms, _, _)| *ms >= oldest);
        }
    }
}

fn tcp_total(values: &BTreeMap<Key, f64>) -> Option<f64> {
    // Written with the fd series: present exactly when the fds could be read.
    values.get(&total(Resource::Fds))?;
    Some(
        values
            .iter()
            .filter(|(key, _)| !key.is_limit && key.resource == Resource::Tcp)
            .map(|(_, v)| *v)
            .sum(),
    )
}

#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    /// Sampling this host directly every `interval_seconds`.
    Standalone { interval_seconds: f64 },
    /// Polling an agent.
    Agent { url: String },
}

pub struct Model {
    pub mode: Mode,
    pub targets: BTreeMap<String, Target>,
    /// Samples seen: the agent's count in agent mode, ours in standalone mode.
    pub samples: u64,
    pub last_update_ms: Option<i64>,
    /// The last failure and when it happened; cleared by the next good update.
    pub error: Option<(i64, String)>,
    /// Standalone mode: the engine's parameters (findings are computed here).
    detect: Option<Params>,
}

impl Model {
    pub fn new(mode: Mode) -> Model {
        let detect = match &mode {
            Mode::Standalone { interval_seconds } => Some(Params::fast(*interval_seconds)),
            Mode::Agent { .. } => None,
        };
        Model {
            mode,
            targets: BTreeMap::new(),
            samples: 0,
            last_update_ms: None,
            error: None,
            detect,
        }
    }

    pub fn apply(&mut self, update: Update) {
        match update {
            Update::Sample {
                time_ms,
                samples,
                new_sample,
                targets,
                findings,
            } => {
                let live: std::collections::BTreeSet<String> =
                    targets.iter().map(|t| t.name.clone()).collect();
                self.targets.retain(|name, _| live.contains(name));
                for update in targets {
                    let target =
                        self.targets
                            .entry(update.name.clone())
                            .or_insert_with(|| Target {
                                name: update.name.clone(),
                                ..Target::default()
                            });
                    if new_sample {
                        target.restarts.extend(
                            update
                                .restarts
                                .iter()
                                .map(|(old, new)| (time_ms, *old, *new)),
                        );
                        target.record(time_ms, &update.current);
                    }
                    target.kind = update.kind;
                    target.processes = update.processes;
                    target.current = update.current;
                }
                self.samples = samples;
                self.last_update_ms = Some(time_ms);
                self.error = None;
                let findings = match findings {
                    Some(findings) => findings,
                    None => self.detect(time_ms),
                };
                self.set_findings(findings);
            }
            Update::History { target, passes } => {
                let Some(target) = self.targets.get_mut(&target) else {
                    return;
                };
                let mut per_key: BTreeMap<Key, Vec<(i64, f64)>> = BTreeMap::new();
                let mut sockets = Vec::new();
                for (ms, values) in &passes {
                    for (key, value) in values {
                        per_key.entry(key.clone()).or_default().push((*ms, *value));
                    }
                    if let Some(total) = tcp_total(values) {
                        sockets.push((*ms, total));
                    }
                }
                for (key, points) in per_key {
                    target.history.entry(key).or_default().prepend(&points);
                }
                target.sockets.prepend(&sockets);
            }
            Update::Error { time_ms, message } => {
                self.error = Some((time_ms, message));
            }
        }
    }

    fn set_findings(&mut self, findings: Vec<FindingView>) {
        for target in self.targets.values_mut() {
            target.findings.clear();
        }
        for finding in findings {
            if let Some(target) = self.targets.get_mut(&finding.target) {
                target.findings.push(finding);
            }
        }
        for target in self.targets.values_mut() {
            target.findings.sort_by(|a, b| {
                let eta = |f: &FindingView| f.eta().unwrap_or(f64::MAX);
                eta(a).total_cmp(&eta(b))
            });
        }
    }

    /// Standalone findings: the agent's engine, with the fast preset (history here is
    /// minutes, not hours), over the history kept since `top` started.
    fn detect(&self, now_ms: i64) -> Vec<FindingView> {
        let Some(params) = &self.detect else {
            return Vec::new();
        };
        let mut all = Vec::new();
        for target in self.targets.values() {
            let data: Vec<leakwatch_store::SeriesData> = target
                .history
                .iter()
                .map(|(key, ring)| leakwatch_store::SeriesData {
                    key: SeriesKey {
                        target: target.name.clone(),
                        ..key.clone()
                    },
                    points: ring.points().collect(),
                })
                .collect();
            let series = leakwatch_agent::standalone::to_series(
                &target.name,
                &data,
                &leakwatch_agent::standalone::Capacities::default(),
            );
            let restarts: Vec<leakwatch_detect::Restart> = target
                .restarts
                .iter()
                .map(|(ms, old, new)| leakwatch_detect::Restart {
                    target: target.name.clone(),
                    t: UnixMs(*ms).as_secs_f64(),
                    old_pid: Some(*old),
                    new_pid: Some(*new),
                    reason: "replaced".to_string(),
                })
                .collect();
            all.extend(leakwatch_detect::analyze(
                &series,
                &restarts,
                UnixMs(now_ms).as_secs_f64(),
                params,
            ));
        }
        leakwatch_agent::standalone::rank(&mut all);
        all.iter()
            .map(|f| FindingView::from(&FindingRecord::from(f)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(pairs: &[(&str, f64)]) -> BTreeMap<Key, f64> {
        pairs.iter().map(|(l, v)| (parse_label(l), *v)).collect()
    }

    fn sample(ms: i64, targets: Vec<TargetUpdate>) -> Update {
        Update::Sample {
            time_ms: ms,
            samples: ms as u64,
            new_sample: true,
            targets,
            findings: Some(Vec::new()),
        }
    }

    fn target(name: &str, pairs: &[(&str, f64)]) -> TargetUpdate {
        TargetUpdate {
            name: name.into(),
            kind: "exe".into(),
            processes: vec![],
            current: values(pairs),
            restarts: vec![],
        }
    }

    #[test]
    fn labels_parse_like_the_agent_writes_them() {
        assert_eq!(parse_label("threads"), key("threads", ""));
        assert_eq!(parse_label("threads{pool-#}"), key("threads", "pool-#"));
        assert_eq!(
            parse_label("tcp_peer{CLOSE_WAIT 127.0.0.1:8443}"),
            key("tcp_peer", "CLOSE_WAIT 127.0.0.1:8443")
        );
        assert_eq!(parse_label("threads{a{b}}"), key("threads", "a{b}"));
    }

    #[test]
    fn rings_are_bounded_ordered_and_take_older_history_in_front() {
        let mut ring = Ring::default();
        for i in 0..(HISTORY as i64 + 30) {
            ring.push(1000 + i, i as f64);
        }
        assert_eq!(ring.points().count(), HISTORY);
        assert_eq!(ring.first_ms(), Some(1030));
        ring.push(5, 0.0); // older than the last point: ignored
        assert_eq!(ring.last_ms(), Some(1000 + HISTORY as i64 + 29));

        let mut ring = Ring::default();
        ring.push(100, 10.0);
        ring.push(200, 20.0);
        ring.prepend(&[(50, 5.0), (100, 99.0), (150, 99.0)]);
        let points: Vec<_> = ring.points().collect();
        assert_eq!(points, vec![(50, 5.0), (100, 10.0), (200, 20.0)]);
    }

    #[test]
    fn vanished_targets_are_evicted_and_history_is_recorded_per_sample() {
        let mut model = Model::new(Mode::Agent { url: "x".into() });
        model.apply(sample(
            1000,
            vec![
                target("a", &[("threads", 3.0), ("fds", 4.0), ("tcp{LISTEN}", 1.0)]),
                target("b", &[("threads", 1.0)]),
            ],
        ));
        model.apply(sample(
            2000,
            vec![target(
                "a",
                &[
                    ("threads", 5.0),
                    ("fds", 6.0),
                    ("tcp{LISTEN}", 1.0),
                    ("tcp{CLOSE_WAIT}", 2.0),
                ],
            )],
        ));
        assert_eq!(model.targets.keys().collect::<Vec<_>>(), vec!["a"]);
        let a = &model.targets["a"];
        let threads: Vec<f64> = a
            .ring(&total(Resource::Threads))
            .unwrap()
            .values()
            .collect();
        assert_eq!(threads, vec![3.0, 5.0]);
        assert_eq!(a.sockets.values().collect::<Vec<_>>(), vec![1.0, 3.0]);
        assert_eq!(a.tcp_total(), Some(3.0));

        // A poll that saw no new agent sample updates values but records nothing.
        model.apply(Update::Sample {
            time_ms: 3000,
            samples: 2,
            new_sample: false,
            targets: vec![target("a", &[("threads", 5.0), ("fds", 6.0)])],
            findings: None,
        });
        assert_eq!(
            model.targets["a"]
                .ring(&total(Resource::Threads))
                .unwrap()
                .values()
                .count(),
            2
        );
    }

    #[test]
    fn errors_are_kept_until_the_next_good_update() {
        let mut model = Model::new(Mode::Agent { url: "x".into() });
        model.apply(Update::Error {
            time_ms: 5,
            message: "cannot reach".into(),
        });
        assert_eq!(model.error, Some((5, "cannot reach".to_string())));
        model.apply(sample(10, vec![target("a", &[("threads", 1.0)])]));
        assert_eq!(model.error, None);
    }

    #[test]
    fn agent_history_is_prepended_per_series() {
        let mut model = Model::new(Mode::Agent { url: "x".into() });
        model.apply(sample(
            10_000,
            vec![target("a", &[("threads", 9.0), ("fds", 2.0)])],
        ));
        model.apply(Update::History {
            target: "a".into(),
            passes: vec![
                (
                    8_000,
                    values(&[("threads", 7.0), ("fds", 2.0), ("tcp{ESTABLISHED}", 4.0)]),
                ),
                (9_000, values(&[("threads", 8.0), ("fds", 2.0)])),
                (10_000, values(&[("threads", 100.0)])),
            ],
        });
        let a = &model.targets["a"];
        let threads: Vec<f64> = a
            .ring(&total(Resource::Threads))
            .unwrap()
            .values()
            .collect();
        assert_eq!(threads, vec![7.0, 8.0, 9.0]);
        assert_eq!(a.sockets.values().collect::<Vec<_>>(), vec![4.0, 0.0, 0.0]);
    }

    #[test]
    fn standalone_restarts_are_kept_within_the_history_and_reach_the_engine() {
        let mut model = Model::new(Mode::Standalone {
            interval_seconds: 1.0,
        });
        let start = 1_700_000_000_000;
        // A leak that restarts every 30 samples: each life climbs from 10 again.
        for i in 0..(HISTORY as i64 + 45) {
            let life_sample = i % 30;
            let threads = 10.0 + 4.0 * life_sample as f64;
            let mut update = target(
                "svc",
                &[
                    ("threads", threads),
                    ("threads{Leak-#}", threads - 2.0),
                    ("threads{max_process}", threads),
                    ("threads.limit{max_process}", 10_000.0),
                ],
            );
            if i > 0 && life_sample == 0 {
                update.restarts = vec![(100 + i as u32 - 1, 100 + i as u32)];
            }
            model.apply(Update::Sample {
                time_ms: start + i * 1000,
                samples: i as u64,
                new_sample: true,
                targets: vec![update],
                findings: None,
            });
        }
        let svc = &model.targets["svc"];
        // Restarts at samples 30, 60, 90, 120 and 150; the history holds 45..165, so the
        // first one has been dropped with the samples it belonged to.
        let kept: Vec<u32> = svc.restarts.iter().map(|r| r.2).collect();
        assert_eq!(kept, vec![160, 190, 220, 250]);
        assert!(
            svc.findings
                .iter()
                .any(|f| f.kind == "crash_loop" || f.resource == "threads"),
            "the engine saw the restarts: {:?}",
            svc.findings
        );
    }

    #[test]
    fn standalone_mode_finds_a_steady_thread_leak_with_the_agents_engine() {
        let mut model = Model::new(Mode::Standalone {
            interval_seconds: 1.0,
        });
        let start = 1_700_000_000_000;
        for i in 0..60 {
            let leaking = 10.0 + 5.0 * i as f64;
            model.apply(Update::Sample {
                time_ms: start + i * 1000,
                samples: i as u64,
                new_sample: true,
                targets: vec![
                    target(
                        "leaky",
                        &[
                            ("threads", leaking + 2.0),
                            ("threads{Leak-#}", leaking),
                            ("threads{main}", 2.0),
                            ("threads{max_process}", leaking + 2.0),
                            ("threads.limit{max_process}", 10_000.0),
                        ],
                    ),
                    target("flat", &[("threads", 4.0), ("threads{main}", 4.0)]),
                ],
                findings: None,
            });
        }
        let leaky = &model.targets["leaky"];
        assert!(!leaky.findings.is_empty(), "no finding for a steady leak");
        let first = &leaky.findings[0];
        assert_eq!(first.resource, "threads");
        assert_eq!(first.attribution, "Leak-#");
        assert!(first.summary.contains("Leak-#"), "{}", first.summary);
        assert!(first.eta().is_some(), "a limit was given: {first:?}");
        assert!(model.targets["flat"].findings.is_empty());
    }
}
