//! Turns stored history into findings: reads each live target's recent series and restarts
//! from the store and hands them to the pure engine (`leakwatch-detect`). The engine does
//! no I/O; this module is the I/O around it.

use leakwatch_detect::{
    Attribution, Finding, FindingKind, FindingState, Lifecycle, Params, Point, Resource,
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

/// How much history detection reads. Every pass judges the `short` window (8,640
/// intervals: a day at 10 s, 2.4 hours at 1 s). A trend is confirmed only once its life
/// spans `confirm_samples` (a day in production), which the short window can never show at
/// intervals under 10 s and only just misses at 10 s; so a target with a suspected leak is
/// judged again over the `long` window (the confirm span plus a quarter), at most
/// `long_per_pass` targets per pass, taken in turn. Reading a day of 1 s samples costs about
/// ten times a short pass, hence the budget; the lifecycle keeps a confirmed finding
/// confirmed between the passes that re-read it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Windows {
    pub short_ms: i64,
    pub long_ms: i64,
    pub long_per_pass: usize,
}

/// At most 48 h: raw samples are kept that long.
const LONG_WINDOW_MAX_MS: i64 = 48 * 3_600_000;

impl Windows {
    pub fn for_engine(interval_ms: i64, params: &Params) -> Windows {
        let interval_ms = interval_ms.max(1);
        let short_ms = interval_ms.saturating_mul(8_640);
        let confirm_ms = (params.confirm_samples as f64 * interval_ms as f64 * 1.25)
            .min(LONG_WINDOW_MAX_MS as f64) as i64;
        Windows {
            short_ms,
            long_ms: confirm_ms.max(short_ms),
            long_per_pass: 4,
        }
    }
}

/// Findings for every live target seen in the last `windows.short_ms`, ranked, with what
/// the lifecycle needs to know of every target (its last sample and latest restart). A
/// target that `lifecycle` says is gone is not analysed: its findings resolve instead of
/// counting down on samples that stopped. `pass` counts detection passes; it picks whose
/// turn it is to be re-read over the long window.
pub fn compute(
    store: &Store,
    now_ms: i64,
    windows: &Windows,
    params: &Params,
    lifecycle: &Lifecycle,
    pass: u64,
) -> (Vec<Finding>, BTreeMap<String, TargetLife>) {
    let now = UnixMs(now_ms).as_secs_f64();
    let mut all = Vec::new();
    let mut lives = BTreeMap::new();
    // Targets whose short-window judgement left a leak suspected.
    let mut suspected: Vec<String> = Vec::new();
    for target in store.targets() {
        let Some(last_seen_ms) = target
            .last_seen_ms
            .filter(|last| *last >= now_ms - windows.short_ms)
        else {
            continue;
        };
        let restarts = restarts_of(store, &target.name, now_ms - windows.short_ms, now_ms);
        let life = TargetLife {
            last_seen: UnixMs(last_seen_ms).as_secs_f64(),
            last_restart: restarts.iter().map(|r| r.t).max_by(f64::total_cmp),
        };
        lives.insert(target.name.clone(), life);
        if lifecycle.is_gone(&target.name, &lives, now) {
            continue;
        }
        let found = analyze_target(
            store,
            &target.name,
            &restarts,
            now_ms - windows.short_ms,
            now_ms,
            params,
        );
        if windows.long_ms > windows.short_ms
            && found
                .iter()
                .any(|f| f.kind == FindingKind::Leak && f.state == FindingState::Suspected)
        {
            suspected.push(target.name.clone());
        }
        all.extend(found);
    }
    if !suspected.is_empty() && windows.long_per_pass > 0 {
        let take = windows.long_per_pass.min(suspected.len());
        let first = (pass % suspected.len() as u64) as usize;
        for i in 0..take {
            let name = &suspected[(first + i) % suspected.len()];
            let from = now_ms - windows.long_ms;
            let restarts = restarts_of(store, name, from, now_ms);
            let found = analyze_target(store, name, &restarts, from, now_ms, params);
            // The long judgement replaces the short one for this target: it saw all of it.
            all.retain(|f| &f.key.target != name);
            all.extend(found);
        }
    }
    rank(&mut all);
    (all, lives)
}

fn restarts_of(store: &Store, target: &str, from_ms: i64, now_ms: i64) -> Vec<DetectRestart> {
    store
        .restarts(target, from_ms, now_ms)
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
        .collect()
}

fn analyze_target(
    store: &Store,
    target: &str,
    restarts: &[DetectRestart],
    from_ms: i64,
    now_ms: i64,
    params: &Params,
) -> Vec<Finding> {
    let Ok(data) = store.query_target(target, from_ms, now_ms) else {
        return Vec::new();
    };
    let series = to_series(target, &data);
    leakwatch_detect::analyze(&series, restarts, UnixMs(now_ms).as_secs_f64(), params)
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
    use super::*;
    use leakwatch_detect::LifecycleParams;
    use leakwatch_store::{Durability, Options, StoreWriter};

    /// A slow leak (6 threads an hour, no limit, so never urgent) in a process 26 hours
    /// old, sampled every 10 s, in a real store. The 8,640-interval window is a day and a
    /// few samples short of confirming it (its first samples are warm-up); the long window
    /// confirms it.
    #[test]
    fn a_slow_leak_older_than_a_day_is_confirmed_through_the_long_window() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.db");
        let options = Options {
            durability: Durability::Normal,
            ..Options::default()
        };
        let mut writer = StoreWriter::open_with(&path, options.clone()).unwrap();
        let interval_ms: i64 = 10_000;
        let samples: i64 = 26 * 360;
        let t0: i64 = 1_790_000_000_000;
        let mut noise = 0x2545_f491_4f6c_dd1d_u64;
        for i in 0..samples {
            noise ^= noise << 13;
            noise ^= noise >> 7;
            noise ^= noise << 17;
            let jitter = (noise % 7) as f64 - 3.0;
            let hours = (i * interval_ms) as f64 / 3_600_000.0;
            let value = (200.0 + 6.0 * hours + jitter).round();
            writer
                .append_keyed(
                    t0 + i * interval_ms,
                    &[(SeriesKey::total("svc", Resource::Threads), value)],
                )
                .unwrap();
        }
        drop(writer);
        let store = Store::open_read_only_with(&path, options).unwrap();
        let now_ms = t0 + samples * interval_ms;
        let params = Params::for_interval(10.0);
        let lifecycle = Lifecycle::new(LifecycleParams::for_engine(&params));
        let windows = Windows::for_engine(interval_ms, &params);
        assert_eq!(windows.short_ms, 86_400_000);
        assert_eq!(windows.long_ms, 108_000_000);
        let leak_state = |windows: &Windows| {
            let (found, _) = compute(&store, now_ms, windows, &params, &lifecycle, 1);
            found
                .iter()
                .find(|f| f.kind == FindingKind::Leak)
                .map(|f| f.state)
        };
        let short_only = Windows {
            long_ms: windows.short_ms,
            ..windows
        };
        assert_eq!(leak_state(&short_only), Some(FindingState::Suspected));
        assert_eq!(leak_state(&windows), Some(FindingState::Confirmed));
        // No budget for the long window: it stays suspected.
        let no_budget = Windows {
            long_per_pass: 0,
            ..windows
        };
        assert_eq!(leak_state(&no_budget), Some(FindingState::Suspected));
    }

    #[test]
    fn at_one_second_the_long_window_spans_the_confirmation_day() {
        let params = Params::for_interval(1.0);
        let windows = Windows::for_engine(1_000, &params);
        assert_eq!(windows.short_ms, 8_640_000);
        assert_eq!(windows.long_ms, 108_000_000);
        let fast = Windows::for_engine(1_000, &Params::fast(1.0));
        assert_eq!(fast.long_ms, fast.short_ms);
    }

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
