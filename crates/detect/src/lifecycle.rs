//! The lifecycle of findings across detection runs (docs/detection.md, "Lifecycle"):
//! *suspected* → *confirmed* → *resolved*, with the target's liveness and restarts as
//! inputs and time as a parameter. Pure like the rest of the engine: the agent feeds it
//! each run's findings and what it knows of the targets.
//!
//! - A finding the engine reports is suspected or confirmed as the engine says, except
//!   that a finding once confirmed stays confirmed for as long as it stays open.
//! - A confirmed finding the engine stops reporting is *held* while its target's current
//!   life is too young to be judged on its own (a restart resets what the engine sees, so
//!   a leak through restarts does not resolve and fire again with every crash), and
//!   otherwise resolves after [`LifecycleParams::resolve_after`] of absence: "growth
//!   stopped", with its last value.
//! - A target whose processes are gone resolves its findings at once: no forecast, no
//!   ranking first, "process exited at 14:02:11 UTC, last value 1,579".
//! - A suspected finding the engine stops reporting is dropped: it never was an alert.
//! - Resolved findings are shown for [`LifecycleParams::keep_resolved`], then forgotten;
//!   at most [`LifecycleParams::max_tracked`] findings are tracked.

use crate::model::{Finding, FindingKind, FindingState, Resolution, ResolutionCause, SeriesKey};
use crate::params::Params;
use std::collections::BTreeMap;

/// What the lifecycle needs to know of one target at the time of a run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TargetLife {
    /// Unix seconds: the last sample that saw a process of the target.
    pub last_seen: f64,
    /// Unix seconds: its latest restart (a new process replacing one that lived), if any.
    pub last_restart: Option<f64>,
}

/// The lifecycle's time windows, in seconds (see [`LifecycleParams::for_engine`]).
#[derive(Debug, Clone, PartialEq)]
pub struct LifecycleParams {
    /// A target not seen for this long is gone...
    pub gone_after: f64,
    /// ...or for [`LifecycleParams::hold_after_restart`] when it restarted within that
    /// long: a crash loop's back-off is not an exit.
    pub hold_after_restart: f64,
    /// A confirmed finding the engine no longer reports, in a life old enough to be
    /// judged, resolves after being absent this long.
    pub resolve_after: f64,
    /// A confirmed crash loop is not resolved as "gone" before its target has been away
    /// this long: a crash loop's back-off (systemd's `RestartSec`, Kubernetes'
    /// CrashLoopBackOff up to 5 minutes) leaves the target without a process between
    /// lives, and resolving each time would page again with every life.
    pub crashloop_hold: f64,
    /// Resolved findings are shown this long, then forgotten.
    pub keep_resolved: f64,
    /// Most findings tracked; the oldest resolved ones go first.
    pub max_tracked: usize,
}

impl LifecycleParams {
    /// Windows in the engine's own terms: gone after 3 intervals (at least 10 s); a new
    /// life is young until it has had its warm-up and two minimal regimes; absence for as
    /// long as it takes to confirm a leak (`confirm_samples`), at least 30 intervals (and
    /// 10 s) and at most an hour, resolves, so a leak that pauses for less than its own
    /// confirmation span is one alert, not one per pause; resolved findings are shown for
    /// an hour.
    pub fn for_engine(params: &Params) -> LifecycleParams {
        let interval = if params.interval_seconds.is_finite() && params.interval_seconds > 0.0 {
            params.interval_seconds
        } else {
            10.0
        };
        let samples = |n: usize| n as f64 * interval;
        LifecycleParams {
            gone_after: samples(3).max(10.0),
            hold_after_restart: samples(params.warmup_samples + 2 * params.min_regime_samples),
            crashloop_hold: samples(params.warmup_samples + 2 * params.min_regime_samples)
                .max(600.0),
            resolve_after: samples(params.confirm_samples)
                .min(3600.0)
                .max(samples(30))
                .max(10.0),
            keep_resolved: 3600.0,
            max_tracked: 10_000,
        }
    }

    /// Seconds after its last sample that a target still matters here: it can be judged
    /// (not yet gone), be held through a restart, or be between a crash loop's lives.
    /// A target last seen longer ago is gone whatever else is known of it, so a caller
    /// may leave it out of what it passes as `targets`.
    pub fn horizon(&self) -> f64 {
        self.gone_after
            .max(self.hold_after_restart)
            .max(self.crashloop_hold)
    }
}

/// One tracked finding.
#[derive(Debug, Clone)]
struct Tracked {
    finding: Finding,
    /// Unix seconds of the last run that reported it.
    last_reported: f64,
}

/// The findings of earlier runs and where each stands. See the module documentation.
#[derive(Debug, Clone)]
pub struct Lifecycle {
    params: LifecycleParams,
    tracked: BTreeMap<(SeriesKey, FindingKind), Tracked>,
}

impl Lifecycle {
    pub fn new(params: LifecycleParams) -> Lifecycle {
        Lifecycle {
            params,
            tracked: BTreeMap::new(),
        }
    }

    /// Findings tracked (open and recently resolved).
    pub fn len(&self) -> usize {
        self.tracked.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tracked.is_empty()
    }

    /// Whether `target` is gone as of `now`, by what `targets` says of it (unknown is gone).
    pub fn is_gone(&self, target: &str, targets: &BTreeMap<String, TargetLife>, now: f64) -> bool {
        match targets.get(target) {
            None => true,
            Some(life) => {
                let restarting = life
                    .last_restart
                    .is_some_and(|r| now - r < self.params.hold_after_restart);
                let allowed = if restarting {
                    self.params.hold_after_restart.max(self.params.gone_after)
                } else {
                    self.params.gone_after
                };
                now - life.last_seen > allowed
            }
        }
    }

    /// Whether a finding of `kind` about `target` is gone as of `now`: a crash loop only
    /// once its target has had no process for `crashloop_hold` (before that it is between
    /// lives: its back-off), any other finding as [`Self::is_gone`] says.
    pub fn is_gone_for(
        &self,
        kind: FindingKind,
        target: &str,
        targets: &BTreeMap<String, TargetLife>,
        now: f64,
    ) -> bool {
        if kind == FindingKind::CrashLoop {
            return targets
                .get(target)
                .is_none_or(|life| now - life.last_seen > self.params.crashloop_hold);
        }
        self.is_gone(target, targets, now)
    }

    /// One run: `found` is what the engine reported at `now` (for live targets), `targets`
    /// what is known of every target. Returns every open or recently resolved finding with
    /// its state, confirmed first, then suspected, then resolved (each in `found`'s order,
    /// resolved newest first).
    pub fn update(
        &mut self,
        found: Vec<Finding>,
        targets: &BTreeMap<String, TargetLife>,
        now: f64,
    ) -> Vec<Finding> {
        let mut order: Vec<(SeriesKey, FindingKind)> = Vec::with_capacity(found.len());
        let mut reported: BTreeMap<(SeriesKey, FindingKind), Finding> = BTreeMap::new();
        for finding in found {
            let id = (finding.key.clone(), finding.kind);
            order.push(id.clone());
            reported.insert(id, finding);
        }

        // Findings open before this run and not reported now.
        let absent: Vec<(SeriesKey, FindingKind)> = self
            .tracked
            .iter()
            .filter(|(id, t)| {
                !reported.contains_key(*id) && t.finding.state != FindingState::Resolved
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in absent {
            let tracked = self.tracked.get(&id).expect("tracked");
            let target = &id.0.target;
            if tracked.finding.state == FindingState::Suspected {
                self.tracked.remove(&id);
                continue;
            }
            // Confirmed: renamed (the engine now reports the same mechanism under another
            // root of the same target), gone, held through a restart, or stopped.
            if let Some(successor) = reported
                .values_mut()
                .find(|f| same_mechanism(f, &tracked.finding))
            {
                successor.state = FindingState::Confirmed;
                self.tracked.remove(&id);
                continue;
            }
            let gone = self.is_gone_for(tracked.finding.kind, target, targets, now);
            if gone {
                let at = targets
                    .get(target)
                    .map_or(tracked.last_reported, |l| l.last_seen);
                let tracked = self.tracked.get_mut(&id).expect("tracked");
                resolve(&mut tracked.finding, ResolutionCause::Gone, at);
                continue;
            }
            let young_life = targets
                .get(target)
                .and_then(|l| l.last_restart)
                .is_some_and(|r| now - r < self.params.hold_after_restart);
            // A crash loop whose target is between lives (its back-off) is not "stopped".
            let between_lives = tracked.finding.kind == FindingKind::CrashLoop
                && targets
                    .get(target)
                    .is_some_and(|life| now - life.last_seen > self.params.gone_after);
            if young_life || between_lives {
                continue;
            }
            if now - tracked.last_reported >= self.params.resolve_after {
                let at = tracked.last_reported;
                let tracked = self.tracked.get_mut(&id).expect("tracked");
                resolve(&mut tracked.finding, ResolutionCause::Stopped, at);
            }
        }

        // Findings reported now: a confirmed one stays confirmed while open, and keeps
        // naming the processes it named when this run knows none (they just exited).
        for (id, mut finding) in reported {
            if let Some(before) = self.tracked.get(&id) {
                if before.finding.state == FindingState::Confirmed {
                    finding.state = FindingState::Confirmed;
                }
                if finding.processes.is_empty() && finding.pids.is_empty() {
                    finding.processes = before.finding.processes.clone();
                    finding.pids = before.finding.pids.clone();
                }
            }
            self.tracked.insert(
                id,
                Tracked {
                    finding,
                    last_reported: now,
                },
            );
        }

        // Forget old resolutions, then bound the whole.
        let keep = self.params.keep_resolved;
        self.tracked.retain(|_, t| {
            t.finding
                .resolution
                .is_none_or(|r| now - r.at < keep || t.finding.state != FindingState::Resolved)
        });
        if self.tracked.len() > self.params.max_tracked {
            let mut by_age: Vec<((SeriesKey, FindingKind), (u8, f64))> = self
                .tracked
                .iter()
                .map(|(id, t)| {
                    let class = match t.finding.state {
                        FindingState::Resolved => 0,
                        FindingState::Suspected => 1,
                        FindingState::Confirmed => 2,
                    };
                    (id.clone(), (class, t.last_reported))
                })
                .collect();
            by_age.sort_by(|a, b| a.1 .0.cmp(&b.1 .0).then(a.1 .1.total_cmp(&b.1 .1)));
            let excess = self.tracked.len() - self.params.max_tracked;
            for (id, _) in by_age.into_iter().take(excess) {
                self.tracked.remove(&id);
            }
        }

        // Output: open findings in the engine's order (held ones after them), then resolved.
        let mut open: Vec<Finding> = Vec::new();
        for id in &order {
            if let Some(t) = self.tracked.get(id) {
                open.push(t.finding.clone());
            }
        }
        let held = self
            .tracked
            .iter()
            .filter(|(id, t)| t.finding.state != FindingState::Resolved && !order.contains(id))
            .map(|(_, t)| t.finding.clone());
        open.extend(held);
        open.sort_by_key(|f| match f.state {
            FindingState::Confirmed => 0,
            FindingState::Suspected => 1,
            FindingState::Resolved => 2,
        });
        let mut resolved: Vec<Finding> = self
            .tracked
            .values()
            .filter(|t| t.finding.state == FindingState::Resolved)
            .map(|t| t.finding.clone())
            .collect();
        resolved.sort_by(|a, b| {
            let at = |f: &Finding| f.resolution.map_or(0.0, |r| r.at);
            at(b).total_cmp(&at(a))
        });
        open.extend(resolved);
        open
    }
}

/// Whether `now` is `before`'s mechanism under another root: same target and kind, and one
/// holds the other as a consequence.
fn same_mechanism(now: &Finding, before: &Finding) -> bool {
    now.key.target == before.key.target
        && now.kind == before.kind
        && (now.consequences.iter().any(|c| c.key == before.key)
            || before.consequences.iter().any(|c| c.key == now.key))
}

/// Marks `finding` resolved at `at` and says why in its summary; it no longer forecasts.
fn resolve(finding: &mut Finding, cause: ResolutionCause, at: f64) {
    finding.state = FindingState::Resolved;
    finding.resolution = Some(Resolution {
        cause,
        at,
        last_value: finding.current,
    });
    finding.eta_seconds = None;
    finding.eta_conservative_seconds = None;
    let last = crate::format::quantity_of(&finding.key, finding.current);
    let what = match finding.kind {
        FindingKind::CrashLoop => "restarts".to_string(),
        _ => crate::label(&finding.key),
    };
    let why = match (cause, finding.kind) {
        (ResolutionCause::Gone, _) => "process exited",
        (ResolutionCause::Stopped, FindingKind::Leak) => "growth stopped",
        (ResolutionCause::Stopped, FindingKind::Saturation) => "no longer near its limit",
        (ResolutionCause::Stopped, FindingKind::CrashLoop) => "restarts stopped",
    };
    finding.summary = format!(
        "{what} {} resolved: {why} at {} UTC, last value {last}",
        finding.kind,
        clock(at)
    );
}

/// `HH:MM:SS` of unix seconds, UTC.
fn clock(t: f64) -> String {
    let seconds = if t.is_finite() { t.floor() as i64 } else { 0 };
    let of_day = seconds.rem_euclid(86_400);
    format!(
        "{:02}:{:02}:{:02}",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Resource;

    fn params() -> LifecycleParams {
        LifecycleParams {
            gone_after: 10.0,
            hold_after_restart: 60.0,
            resolve_after: 30.0,
            crashloop_hold: 600.0,
            keep_resolved: 3600.0,
            max_tracked: 100,
        }
    }

    fn leak(target: &str, state: FindingState) -> Finding {
        Finding {
            kind: FindingKind::Leak,
            state,
            resolution: None,
            key: SeriesKey::total(target, Resource::Threads),
            pids: vec![7],
            processes: Vec::new(),
            current: 1579.0,
            limit: Some(32_768.0),
            rate_per_hour: 720.0,
            eta_seconds: Some(3600.0),
            eta_conservative_seconds: Some(3000.0),
            first_seen: 0.0,
            evidence_window: (0.0, 100.0),
            confidence: 0.999,
            p_value: 0.001,
            restarts: 0,
            summary: "threads +1,000".into(),
            consequences: Vec::new(),
            evidence: None,
        }
    }

    fn alive(last_seen: f64, last_restart: Option<f64>) -> BTreeMap<String, TargetLife> {
        BTreeMap::from([(
            "svc".to_string(),
            TargetLife {
                last_seen,
                last_restart,
            },
        )])
    }

    /// What `horizon` promises callers that leave older targets out: a target last seen
    /// longer ago is gone for every kind of finding, whenever it last restarted.
    #[test]
    fn a_target_last_seen_beyond_the_horizon_is_gone_for_every_finding() {
        for engine in [
            Params::fast(1.0),
            Params::fast(10.0),
            Params::for_interval(1.0),
            Params::production(),
        ] {
            let p = LifecycleParams::for_engine(&engine);
            let life = Lifecycle::new(p.clone());
            let now = 1_000_000.0;
            let last_seen = now - p.horizon() - 0.001;
            for last_restart in [None, Some(last_seen), Some(last_seen - 5.0)] {
                let targets = alive(last_seen, last_restart);
                assert!(life.is_gone("svc", &targets, now), "{p:?}");
                for kind in [FindingKind::Leak, FindingKind::CrashLoop] {
                    assert!(life.is_gone_for(kind, "svc", &targets, now), "{kind} {p:?}");
                }
            }
            // ...and within it, something can still hold it.
            let targets = alive(now - p.horizon() + 1.0, Some(now - p.horizon() + 1.0));
            assert!(!life.is_gone_for(FindingKind::CrashLoop, "svc", &targets, now));
        }
    }

    #[test]
    fn a_gone_target_resolves_at_once_without_a_forecast() {
        let mut life = Lifecycle::new(params());
        let out = life.update(
            vec![leak("svc", FindingState::Confirmed)],
            &alive(100.0, None),
            100.0,
        );
        assert_eq!(out[0].state, FindingState::Confirmed);
        // Last seen at 100 (02:01:40... of 1970-01-01), now 115: gone.
        let out = life.update(Vec::new(), &alive(100.0, None), 115.0);
        assert_eq!(out.len(), 1);
        let f = &out[0];
        assert_eq!(f.state, FindingState::Resolved);
        assert_eq!(f.eta_seconds, None);
        assert_eq!(f.eta_conservative_seconds, None);
        let resolution = f.resolution.unwrap();
        assert_eq!(resolution.cause, ResolutionCause::Gone);
        assert_eq!(resolution.at, 100.0);
        assert_eq!(
            f.summary,
            "threads leak resolved: process exited at 00:01:40 UTC, last value 1,579"
        );
        // Shown for keep_resolved, then forgotten.
        assert_eq!(
            life.update(Vec::new(), &alive(100.0, None), 3000.0).len(),
            1
        );
        assert!(life
            .update(Vec::new(), &alive(100.0, None), 3701.0)
            .is_empty());
        assert!(life.is_empty());
    }

    #[test]
    fn a_crash_loop_with_a_long_back_off_is_one_finding_not_one_per_life() {
        let mut life = Lifecycle::new(params());
        let mut crash = leak("svc", FindingState::Confirmed);
        crash.kind = FindingKind::CrashLoop;
        life.update(vec![crash.clone()], &alive(100.0, Some(95.0)), 100.0);
        // Back-off of 90 s: the target has no process from 104 to 194, longer than
        // hold_after_restart (60 s); the crash loop is held, not resolved as gone.
        for now in [120.0, 170.0, 190.0] {
            let out = life.update(Vec::new(), &alive(104.0, Some(95.0)), now);
            assert_eq!(out[0].state, FindingState::Confirmed, "at {now}");
        }
        // The next life: the same open finding.
        let out = life.update(vec![crash.clone()], &alive(195.0, Some(194.0)), 195.0);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].state, FindingState::Confirmed);
        assert!(out[0].resolution.is_none());
        // Away for longer than crashloop_hold (600 s): gone.
        let out = life.update(Vec::new(), &alive(199.0, Some(194.0)), 800.0);
        assert_eq!(out[0].state, FindingState::Resolved);
        assert_eq!(out[0].resolution.unwrap().cause, ResolutionCause::Gone);
        // A leak of the same target would have resolved after 60 s away.
        assert_eq!(
            LifecycleParams::for_engine(&Params::fast(1.0)).crashloop_hold,
            600.0
        );
    }

    #[test]
    fn a_pause_shorter_than_the_confirmation_span_is_one_finding_not_two() {
        // Fast preset at 1 s: confirming takes 60 samples, so a pause of 45 s does not
        // resolve (it did at 30 s), and the leak resuming is the same open finding.
        let params = LifecycleParams::for_engine(&Params::fast(1.0));
        assert_eq!(params.resolve_after, 60.0);
        let mut life = Lifecycle::new(params);
        life.update(
            vec![leak("svc", FindingState::Confirmed)],
            &alive(100.0, None),
            100.0,
        );
        for now in [110.0, 130.0, 145.0] {
            let out = life.update(Vec::new(), &alive(now, None), now);
            assert_eq!(out.len(), 1, "at {now}");
            assert_eq!(out[0].state, FindingState::Confirmed, "held at {now}");
        }
        let out = life.update(
            vec![leak("svc", FindingState::Confirmed)],
            &alive(146.0, None),
            146.0,
        );
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].state, FindingState::Confirmed);
        // A longer silence does resolve: growth stopped.
        let out = life.update(Vec::new(), &alive(207.0, None), 207.0);
        assert_eq!(out[0].state, FindingState::Resolved);
        assert_eq!(out[0].resolution.unwrap().cause, ResolutionCause::Stopped);
        // Production at 10 s: an hour (confirming takes a day); never under 30 intervals.
        assert_eq!(
            LifecycleParams::for_engine(&Params::production()).resolve_after,
            3600.0
        );
        let mut quick = Params::fast(10.0);
        quick.confirm_samples = 2;
        assert_eq!(LifecycleParams::for_engine(&quick).resolve_after, 300.0);
    }

    #[test]
    fn a_confirmed_leak_is_held_through_a_young_life_and_stays_confirmed() {
        let mut life = Lifecycle::new(params());
        life.update(
            vec![leak("svc", FindingState::Confirmed)],
            &alive(100.0, None),
            100.0,
        );
        // Restarted at 105; the new life is too young for the engine: held, not resolved,
        // even past resolve_after.
        for now in [110.0, 140.0, 160.0] {
            let out = life.update(Vec::new(), &alive(now, Some(105.0)), now);
            assert_eq!(out.len(), 1, "at {now}");
            assert_eq!(out[0].state, FindingState::Confirmed, "at {now}");
        }
        // The engine sees it again, only suspected in the young life: still confirmed.
        let out = life.update(
            vec![leak("svc", FindingState::Suspected)],
            &alive(162.0, Some(105.0)),
            162.0,
        );
        assert_eq!(out[0].state, FindingState::Confirmed);
        // A life old enough without growth: resolved after resolve_after of absence.
        let out = life.update(Vec::new(), &alive(180.0, Some(105.0)), 180.0);
        assert_eq!(out[0].state, FindingState::Confirmed);
        let out = life.update(Vec::new(), &alive(195.0, Some(105.0)), 195.0);
        assert_eq!(out[0].state, FindingState::Resolved);
        assert_eq!(out[0].resolution.unwrap().cause, ResolutionCause::Stopped);
        assert!(
            out[0].summary.contains("growth stopped at 00:02:42 UTC"),
            "{}",
            out[0].summary
        );
    }

    #[test]
    fn a_suspected_finding_that_goes_away_is_dropped() {
        let mut life = Lifecycle::new(params());
        life.update(
            vec![leak("svc", FindingState::Suspected)],
            &alive(100.0, None),
            100.0,
        );
        assert!(life
            .update(Vec::new(), &alive(102.0, None), 102.0)
            .is_empty());
        life.update(
            vec![leak("svc", FindingState::Suspected)],
            &alive(110.0, None),
            110.0,
        );
        assert!(life
            .update(Vec::new(), &alive(110.0, None), 200.0)
            .is_empty());
    }

    #[test]
    fn a_crash_loops_back_off_is_not_an_exit() {
        let mut life = Lifecycle::new(params());
        life.update(
            vec![leak("svc", FindingState::Confirmed)],
            &alive(100.0, Some(90.0)),
            100.0,
        );
        // No process for 20 s after a restart 30 s ago: within hold_after_restart.
        let out = life.update(Vec::new(), &alive(100.0, Some(90.0)), 120.0);
        assert_eq!(out[0].state, FindingState::Confirmed);
        // Nobody came back for the whole hold: gone.
        let out = life.update(Vec::new(), &alive(100.0, Some(90.0)), 161.0);
        assert_eq!(out[0].state, FindingState::Resolved);
    }

    #[test]
    fn a_new_root_of_the_same_mechanism_inherits_the_confirmation() {
        let mut life = Lifecycle::new(params());
        life.update(
            vec![leak("svc", FindingState::Confirmed)],
            &alive(100.0, None),
            100.0,
        );
        let mut part = leak("svc", FindingState::Suspected);
        part.key = SeriesKey::from_text("svc", "threads", "Pool-#");
        part.consequences.push(crate::model::Consequence {
            kind: FindingKind::Leak,
            key: SeriesKey::total("svc", Resource::Threads),
            current: 1579.0,
            limit: None,
            rate_per_hour: 720.0,
            evidence_window: (0.0, 100.0),
        });
        let out = life.update(vec![part], &alive(105.0, None), 105.0);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].state, FindingState::Confirmed);
        assert_eq!(out[0].key.attribution_text(), "Pool-#");
    }

    #[test]
    fn tracking_is_bounded() {
        let mut p = params();
        p.max_tracked = 5;
        let mut life = Lifecycle::new(p);
        let mut targets = BTreeMap::new();
        let found: Vec<Finding> = (0..20)
            .map(|i| {
                let name = format!("svc{i}");
                targets.insert(
                    name.clone(),
                    TargetLife {
                        last_seen: 100.0,
                        last_restart: None,
                    },
                );
                leak(&name, FindingState::Suspected)
            })
            .collect();
        let out = life.update(found, &targets, 100.0);
        assert_eq!(out.len(), 5);
        assert_eq!(life.len(), 5);
    }
}
