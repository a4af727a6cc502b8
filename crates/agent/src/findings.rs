//! Turns stored history into findings: reads each live target's recent series and restarts
//! from the store and hands them to the pure engine (`leakwatch-detect`). The engine does
//! no I/O; this module is the I/O around it.

use leakwatch_detect::{
    Attribution, Finding, FindingState, Lifecycle, Params, Point, Resource,
    Restart as DetectRestart, Series, TargetLife,
};
use leakwatch_model::{FdKind, SeriesKey, UnixMs};
use leakwatch_store::{SeriesData, Store};
use std::collections::{BTreeMap, HashMap};

/// Builds the engine's input for one target from what the store returned.
pub fn to_series(target: &str, data: &[SeriesData]) -> Vec<Series> {
    let mut limits: HashMap<&SeriesKey, f64> = HashMap::new();
    for series in data.iter().filter(|s| s.key.is_limit) {
        if let Some((_, value)) = series.points.last() {
            limits.insert(&series.key, *value);
        }
    }
    // The timestamps at which the target had processes: its "threads" total is written at
    // every pass.
    let passes: Vec<i64> = data
        .iter()
        .find(|s| !s.key.is_limit && s.key.resource == Resource::Threads && s.key.is_total())
        .map(|s| s.points.iter().map(|(ms, _)| *ms).collect())
        .unwrap_or_default();
    data.iter()
        .filter(|s| !s.key.is_limit)
        // Folded remainders would repeat what the named series already say. (The fd kind
        // "other" shares the remainder's spelling and has always been left out with it.)
        // Per-process maxima are analysed, but the engine never reports them as findings
        // of their own (leakwatch_detect's grouping drops them).
        .filter(|s| {
            !matches!(
                s.key.attribution,
                Attribution::Other | Attribution::FdKind(FdKind::Other)
            ) && s.key.resource != Resource::Processes
        })
        .filter(|s| s.points.len() >= 3)
        .map(|s| {
            let limit = s
                .key
                .resource
                .limit_series(&s.key.target)
                .and_then(|k| limits.get(&k).copied());
            let points = if s.key.resource.is_count() && !passes.is_empty() {
                zero_filled(&s.points, &passes)
            } else {
                s.points.clone()
            };
            Series::new(
                SeriesKey {
                    target: target.to_string(),
                    ..s.key.clone()
                },
                points
                    .iter()
                    .map(|(ms, v)| Point::new(UnixMs(*ms).as_secs_f64(), *v))
                    .collect(),
                limit,
            )
        })
        .collect()
}

/// The series at every pass of the target, with 0 where it was not written. Without this,
/// a thread group that appears an hour into a process's life would look like a new
/// process, and its first samples would be skipped as warm-up.
fn zero_filled(points: &[(i64, f64)], passes: &[i64]) -> Vec<(i64, f64)> {
    let last = points.last().map_or(i64::MIN, |(ms, _)| *ms);
    let mut out = Vec::with_capacity(passes.len());
    let mut next = points.iter().peekable();
    for &ms in passes.iter().filter(|ms| **ms <= last) {
        while next.peek().is_some_and(|(t, _)| *t < ms) {
            next.next();
        }
        match next.peek() {
            Some((t, v)) if *t == ms => out.push((ms, *v)),
            _ => out.push((ms, 0.0)),
        }
    }
    out
}

/// Findings for every live target seen in the last `window_ms`, ranked, with what the
/// lifecycle needs to know of every target (its last sample and latest restart). A target
/// that `lifecycle` says is gone is not analysed: its findings resolve instead of counting
/// down on samples that stopped.
pub fn compute(
    store: &Store,
    now_ms: i64,
    window_ms: i64,
    params: &Params,
    lifecycle: &Lifecycle,
) -> (Vec<Finding>, BTreeMap<String, TargetLife>) {
    let from = now_ms - window_ms;
    let now = UnixMs(now_ms).as_secs_f64();
    let mut all = Vec::new();
    let mut lives = BTreeMap::new();
    for target in store.targets() {
        let Some(last_seen_ms) = target.last_seen_ms.filter(|last| *last >= from) else {
            continue;
        };
        let restarts: Vec<DetectRestart> = store
            .restarts(&target.name, from, now_ms)
            .unwrap_or_default()
            .into_iter()
            .map(|r| DetectRestart {
                target: r.target,
                t: UnixMs(r.ts_ms).as_secs_f64(),
                old_pid: r.old_pid,
                new_pid: r.new_pid,
                reason: match (r.exit_code, r.signal, r.oom_killed) {
                    (_, _, Some(true)) => "oom".to_string(),
                    (Some(code), _, _) => format!("exit {code}"),
                    (None, Some(signal), _) => format!("signal {signal}"),
                    _ => "replaced".to_string(),
                },
            })
            .collect();
        let life = TargetLife {
            last_seen: UnixMs(last_seen_ms).as_secs_f64(),
            last_restart: restarts.iter().map(|r| r.t).max_by(f64::total_cmp),
        };
        lives.insert(target.name.clone(), life);
        if lifecycle.is_gone(&target.name, &lives, now) {
            continue;
        }
        let Ok(data) = store.query_target(&target.name, from, now_ms) else {
            continue;
        };
        let series = to_series(&target.name, &data);
        all.extend(leakwatch_detect::analyze(&series, &restarts, now, params));
    }
    rank(&mut all);
    (all, lives)
}

/// Confirmed before suspected before resolved; within each, soonest exhaustion first, then
/// leaks without a limit, then the rest.
pub fn rank(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        let sureness = |f: &Finding| match f.state {
            FindingState::Confirmed => 0,
            FindingState::Suspected => 1,
            FindingState::Resolved => 2,
        };
        let eta = |f: &Finding| {
            f.eta_conservative_seconds
                .or(f.eta_seconds)
                .unwrap_or(f64::MAX)
        };
        sureness(a)
            .cmp(&sureness(b))
            .then(eta(a).total_cmp(&eta(b)))
            .then_with(|| a.kind.cmp(&b.kind))
            .then_with(|| b.rate_per_hour.total_cmp(&a.rate_per_hour))
    });
}

#[cfg(test)]
mod tests {
    #[test]
    fn zero_filling_covers_every_pass_up_to_the_last_point() {
        let passes = [10, 20, 30, 40, 50];
        assert_eq!(
            super::zero_filled(&[(30, 1.0), (40, 2.0)], &passes),
            vec![(10, 0.0), (20, 0.0), (30, 1.0), (40, 2.0)]
        );
        assert_eq!(
            super::zero_filled(&[(20, 5.0), (50, 6.0)], &passes),
            vec![(10, 0.0), (20, 5.0), (30, 0.0), (40, 0.0), (50, 6.0)]
        );
    }
}
