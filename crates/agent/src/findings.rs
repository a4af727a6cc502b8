//! Turns stored history into findings: reads each live target's recent series and restarts
//! from the store and hands them to the pure engine (`leakwatch-detect`). The engine does
//! no I/O; this module is the I/O around it.

use crate::capacity::Capacities;
use leakwatch_detect::{
    Attribution, Capacity, CapacitySource, Finding, FindingKind, FindingState, Lifecycle,
    LifecycleParams, Params, Point, Resource, Restart as DetectRestart, Series, TargetLife,
};
use leakwatch_model::{FdKind, SeriesKey, UnixMs};
use leakwatch_store::{SeriesData, Store};
use std::collections::{BTreeMap, HashMap};

/// Builds the engine's input for one target from what the store returned, with the
/// capacities declared for it.
pub fn to_series(target: &str, data: &[SeriesData], capacities: &Capacities) -> Vec<Series> {
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
    let reported = reported_capacities(data);
    data.iter()
        .filter(|s| !s.key.is_limit)
        // A gauge that reports another one's capacity is its limit, not a series of its own.
        .filter(|s| {
            !reported
                .iter()
                .any(|(_, companion, _)| *companion == &s.key)
        })
        // Folded remainders (threads and peers "other", fds "other files") would repeat
        // what the named series already say. (The fd kind "other" shares the remainder's
        // spelling and has always been left out with it.)
        // Per-process maxima are analysed, but the engine never reports them as findings
        // of their own (leakwatch_detect's grouping drops them).
        .filter(|s| {
            !matches!(
                s.key.attribution,
                Attribution::Other | Attribution::FdPathOther | Attribution::FdKind(FdKind::Other)
            )
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
            let key = SeriesKey {
                target: target.to_string(),
                ..s.key.clone()
            };
            let capacity = capacities.of(&key).cloned();
            let mut series = Series::new(
                key,
                points
                    .iter()
                    .map(|(ms, v)| Point::new(UnixMs(*ms).as_secs_f64(), *v))
                    .collect(),
                limit,
            );
            // fds and every kind of socket count against the fd limit of the process.
            if limit.is_some()
                && matches!(
                    s.key.resource,
                    Resource::Fds | Resource::Tcp | Resource::TcpPeer | Resource::Sockets
                )
            {
                series = series.with_limit_name("RLIMIT_NOFILE");
            }
            if let Some(capacity) = capacity {
                series = series.with_capacity(capacity);
            } else if let Some((_, _, capacity)) =
                reported.iter().find(|(followed, _, _)| *followed == &s.key)
            {
                series = series.with_capacity(capacity.clone());
            }
            series
        })
        .collect()
}

/// For each followed gauge whose capacity the service also reports by naming convention
/// (`jvm_memory_max_bytes{area="heap"}` for `jvm_memory_used_bytes{area="heap"}`): the
/// gauge, the companion, and the capacity (its latest value, when above zero).
fn reported_capacities(data: &[SeriesData]) -> Vec<(&SeriesKey, &SeriesKey, Capacity)> {
    let gauges: Vec<(&SeriesData, crate::gauges::Selector)> = data
        .iter()
        .filter(|s| !s.key.is_limit)
        .filter_map(|s| match &s.key.attribution {
            Attribution::Gauge(text) => crate::gauges::Selector::parse(text)
                .ok()
                .map(|selector| (s, selector)),
            _ => None,
        })
        .collect();
    let mut out = Vec::new();
    for (i, (followed, selector)) in gauges.iter().enumerate() {
        for candidate in selector.capacity_candidates() {
            let Some((companion, _)) = gauges.iter().find(|(_, s)| *s == candidate) else {
                continue;
            };
            let Some(&(_, value)) = companion.points.last() else {
                continue;
            };
            if value.is_finite() && value > 0.0 {
                out.push((
                    &followed.key,
                    &companion.key,
                    Capacity {
                        value,
                        name: candidate.name.clone(),
                        source: CapacitySource::Reported,
                        // Not shared: each gauge has its own.
                        group: u32::MAX - u32::try_from(i).unwrap_or(0),
                    },
                ));
                break;
            }
        }
    }
    out
}

/// A JVM's heap after GC is the floor a memory leak raises; heap used and committed follow
/// it with the collector's sawtooth on top. When it leaks, their leaks are folded into its
/// finding instead of being listed beside it.
fn prefer_heap_after_gc(mut findings: Vec<Finding>) -> Vec<Finding> {
    let gauge_name = |f: &Finding| match &f.key.attribution {
        Attribution::Gauge(text) => Some(text.split('{').next().unwrap_or_default().to_string()),
        _ => None,
    };
    let is_floor = |name: &str| {
        name.contains("after_last_gc")
            || name.contains("after_gc")
            || name == "jvm_gc_live_data_size_bytes"
    };
    let is_heap = |name: &str| {
        matches!(
            name,
            "jvm_memory_used_bytes"
                | "jvm_memory_committed_bytes"
                | "jvm_memory_bytes_used"
                | "jvm_memory_bytes_committed"
        )
    };
    let Some(root) = findings
        .iter()
        .position(|f| f.kind == FindingKind::Leak && gauge_name(f).is_some_and(|n| is_floor(&n)))
    else {
        return findings;
    };
    let mut folded = Vec::new();
    let mut i = 0;
    while i < findings.len() {
        let fold = i != root
            && findings[i].kind == FindingKind::Leak
            && gauge_name(&findings[i]).is_some_and(|n| is_heap(&n));
        if fold {
            folded.push(findings.remove(i));
        } else {
            i += 1;
        }
    }
    if folded.is_empty() {
        return findings;
    }
    let Some(root) = findings
        .iter_mut()
        .find(|f| f.kind == FindingKind::Leak && gauge_name(f).is_some_and(|n| is_floor(&n)))
    else {
        return findings;
    };
    for f in folded {
        let consequence = leakwatch_detect::Consequence {
            kind: f.kind,
            key: f.key,
            current: f.current,
            limit: f.limit,
            rate_per_hour: f.rate_per_hour,
            evidence_window: f.evidence_window,
        };
        let separator = if root.summary.contains("; also: ") {
            ", "
        } else {
            "; also: "
        };
        root.summary = format!("{}{separator}{}", root.summary, consequence.brief());
        root.consequences.push(consequence);
    }
    findings
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
/// intervals: a day at 10 s, 2.4 hours at 1 s; plus `persist_samples`, an hour in
/// production, so the engine's look that far back sees what the pass then saw). A trend is
/// confirmed only once its life spans `confirm_samples` (a day in production), which the
/// short window can never show at intervals under 10 s and, with the look an hour back
/// seeing a day at most, only just shows at 10 s; so a target with a suspected leak is
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

/// The intervals every pass judges, before the persistence look-back.
pub const SHORT_WINDOW_INTERVALS: i64 = 8_640;

/// At most 48 h: raw samples are kept that long.
const LONG_WINDOW_MAX_MS: i64 = 48 * 3_600_000;

impl Windows {
    pub fn for_engine(interval_ms: i64, params: &Params) -> Windows {
        let interval_ms = interval_ms.max(1);
        // Plus the persistence look-back, so the engine's look `persist_samples` earlier
        // sees the same 8,640 intervals the pass then saw.
        let short_ms = interval_ms.saturating_mul(
            SHORT_WINDOW_INTERVALS
                .saturating_add(i64::try_from(params.persist_samples).unwrap_or(i64::MAX)),
        );
        let confirm_ms = (params.confirm_samples as f64 * interval_ms as f64 * 1.25)
            .min(LONG_WINDOW_MAX_MS as f64) as i64;
        Windows {
            short_ms,
            long_ms: confirm_ms.max(short_ms),
            long_per_pass: 4,
        }
    }
}

/// The earliest last sample of a target that a pass at `now_ms` needs in its catalog
/// ([`leakwatch_store::Store::open_read_only_recent`]): one last seen before it is gone for
/// the lifecycle (its horizon, plus two passes and a minute of slack), so loading it would
/// only cost time. Never earlier than the short window. Without this, every pass loaded
/// every target the store ever held: after a CI run's thousands of short-lived programs,
/// most of a pass of several hundred milliseconds (BENCHMARKS.md §2).
pub fn catalog_since(
    now_ms: i64,
    windows: &Windows,
    lifecycle: &LifecycleParams,
    every_ms: i64,
) -> i64 {
    let horizon_ms = (lifecycle.horizon() * 1_000.0).clamp(0.0, i64::MAX as f64) as i64;
    let reach = horizon_ms
        .saturating_add(every_ms.max(0).saturating_mul(2))
        .saturating_add(60_000)
        .min(windows.short_ms);
    now_ms.saturating_sub(reach)
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
    capacities: &Capacities,
) -> (Vec<Finding>, BTreeMap<String, TargetLife>) {
    let now = UnixMs(now_ms).as_secs_f64();
    let mut all = Vec::new();
    let mut lives = BTreeMap::new();
    // Targets whose short-window judgement left a leak suspected.
    let mut suspected: Vec<String> = Vec::new();
    // One read for every target's restarts (a query per target cost a fifth of a pass
    // when a store held thousands of recently seen targets).
    let mut restarts_by_target = store
        .restarts_between(now_ms - windows.short_ms, now_ms)
        .unwrap_or_default();
    for target in store.targets() {
        let Some(last_seen_ms) = target
            .last_seen_ms
            .filter(|last| *last >= now_ms - windows.short_ms)
        else {
            continue;
        };
        let restarts: Vec<DetectRestart> = restarts_by_target
            .remove(&target.name)
            .unwrap_or_default()
            .into_iter()
            .map(detect_restart)
            .collect();
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
            (now_ms - windows.short_ms, now_ms),
            params,
            capacities,
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
            let found = analyze_target(store, name, &restarts, (from, now_ms), params, capacities);
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
        .map(detect_restart)
        .collect()
}

fn detect_restart(r: leakwatch_store::Restart) -> DetectRestart {
    DetectRestart {
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
    }
}

fn analyze_target(
    store: &Store,
    target: &str,
    restarts: &[DetectRestart],
    (from_ms, now_ms): (i64, i64),
    params: &Params,
    capacities: &Capacities,
) -> Vec<Finding> {
    let Ok(data) = store.query_target(target, from_ms, now_ms) else {
        return Vec::new();
    };
    let series = to_series(target, &data, capacities);
    prefer_heap_after_gc(leakwatch_detect::analyze(
        &series,
        restarts,
        UnixMs(now_ms).as_secs_f64(),
        params,
    ))
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
    /// confirms it. Persistence is off here: its hour of look-back widens the short window
    /// to 25 h, whose look an hour back then sees a day, which with these aligned samples
    /// is just enough to confirm (with real clocks it can fall a sample short).
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
        let params = Params {
            persist_samples: 0,
            ..Params::for_interval(10.0)
        };
        let lifecycle = Lifecycle::new(LifecycleParams::for_engine(&params));
        let windows = Windows::for_engine(interval_ms, &params);
        assert_eq!(windows.short_ms, 86_400_000);
        assert_eq!(windows.long_ms, 108_000_000);
        let leak_state = |windows: &Windows| {
            let (found, _) = compute(
                &store,
                now_ms,
                windows,
                &params,
                &lifecycle,
                1,
                &Capacities::default(),
            );
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

    fn data(key: &str, values: impl Fn(i64) -> f64) -> SeriesData {
        let key: SeriesKey = key.parse().unwrap();
        SeriesData {
            key,
            points: (0..120i64)
                .map(|i| (1_790_000_000_000 + i * 1_000, values(i)))
                .collect(),
        }
    }

    /// Seed 004 in miniature: heap after GC grows towards the heap max the JVM reports;
    /// heap used grows with it under the collector's sawtooth.
    #[test]
    fn heap_after_gc_is_the_finding_against_the_reported_heap_max() {
        const MIB: f64 = 1024.0 * 1024.0;
        let after_gc = |i: i64| 100.0 * MIB + i as f64 * MIB;
        let input = [
            data(
                r#"svc/gauge{jvm_memory_used_after_last_gc_bytes{area="heap"}}"#,
                after_gc,
            ),
            data(r#"svc/gauge{jvm_memory_used_bytes{area="heap"}}"#, |i| {
                after_gc(i) + (i % 10) as f64 * 5.0 * MIB
            }),
            data(r#"svc/gauge{jvm_memory_max_bytes{area="heap"}}"#, |_| {
                512.0 * MIB
            }),
        ];
        let series = to_series("svc", &input, &Capacities::default());
        assert_eq!(series.len(), 2, "the heap max is a capacity, not a series");
        let now = series[0].points.last().unwrap().t;
        let found = prefer_heap_after_gc(leakwatch_detect::analyze(
            &series,
            &[],
            now,
            &Params::fast(1.0),
        ));
        let leaks: Vec<&Finding> = found
            .iter()
            .filter(|f| f.kind == FindingKind::Leak)
            .collect();
        assert_eq!(leaks.len(), 1, "{found:#?}");
        let leak = leaks[0];
        assert!(
            leak.key.label().contains("after_last_gc"),
            "{}",
            leak.summary
        );
        assert_eq!(leak.limit, Some(512.0 * MIB));
        assert!(
            leak.summary
                .contains("limit 512.0 MiB (jvm_memory_max_bytes, reported) in ~"),
            "{}",
            leak.summary
        );
        assert!(
            leak.summary.contains("also: gauge jvm_memory_used_bytes"),
            "{}",
            leak.summary
        );
        assert_eq!(leak.consequences.len(), 1);
    }

    #[test]
    fn declared_capacities_and_the_fd_limit_are_named() {
        let config = crate::config::Config::parse(
            "[[target]]\nname = \"shop\"\ncomm = \"java\"\n[[target.limit]]\nseries = [\"tcp{CLOSE_WAIT}\", \"tcp_peer{* *:8443}\"]\ncapacity = 1024\nname = \"pool\"\n",
            std::path::Path::new("test.toml"),
        )
        .unwrap();
        let capacities = config.capacities();
        let mut limit = data("shop/fds{max_process}", |_| 8192.0);
        limit.key.is_limit = true;
        let input = [
            data("shop/tcp{CLOSE_WAIT}", |i| i as f64),
            data("shop/tcp{ESTABLISHED}", |_| 5.0),
            limit,
        ];
        let series = to_series("shop", &input, &capacities);
        let close_wait = series
            .iter()
            .find(|s| s.key.label() == "tcp{CLOSE_WAIT}")
            .unwrap();
        let capacity = close_wait.capacity.as_ref().unwrap();
        assert_eq!((capacity.value, capacity.name.as_str()), (1024.0, "pool"));
        assert_eq!(close_wait.limit, Some(8192.0));
        assert_eq!(close_wait.limit_name.as_deref(), Some("RLIMIT_NOFILE"));
        let established = series
            .iter()
            .find(|s| s.key.label() == "tcp{ESTABLISHED}")
            .unwrap();
        assert!(established.capacity.is_none());
    }

    #[test]
    fn at_one_second_the_long_window_spans_the_confirmation_day() {
        let params = Params::for_interval(1.0);
        let windows = Windows::for_engine(1_000, &params);
        // 8,640 intervals and the hour of persistence's look-back.
        assert_eq!(windows.short_ms, 12_240_000);
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
