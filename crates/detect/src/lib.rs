//! `leakwatch-detect`: the pure detection engine. Samples in, findings out.
//!
//! Given time series of leak-prone resources (threads, fds, sockets, memory, application
//! gauges), the restarts of their targets, and the time `now`, [`analyze`] reports:
//!
//! - **leaks**: sustained growth of the resource's *floor* in its current regime, with the
//!   growth rate, a forecast of when the limit is reached and a conservative (earlier)
//!   forecast from the rate's confidence interval;
//! - **saturation**: the resource is already above a fraction of its limit;
//! - **crash loops**: the target restarts over and over (which also hides leaks).
//!
//! The method, in short (`docs/detection.md` has the details and every parameter):
//! series are cut into process lives at restarts, each life into floor blocks (per-block
//! minima, long enough to contain a garbage collection when the series is a sawtooth);
//! change points split the current life into regimes; a regime is a leak when its floor
//! rises by a relevant fraction, in both halves, without decelerating into a plateau,
//! not as one jump, to a new high compared with the last day, by more than the series'
//! own wandering, and significantly so by a Mann-Kendall test corrected for
//! autocorrelation. The rate is a Theil-Sen slope. When restarts keep resetting the value,
//! whole lives are pooled and only within-life growth counts. A trend seen for less than a
//! day is reported only when it would exhaust its limit within hours.
//!
//! Architecture invariant: this crate does no I/O, reads no clock, starts no thread and
//! knows no wire format; it is deterministic, so every finding can be recomputed from
//! stored samples. Work per series is bounded by decimation to at most
//! [`Params::max_blocks`] blocks, so a week of 10-second samples takes milliseconds.

#![forbid(unsafe_code)]

mod blocks;
mod changepoint;
pub mod format;
mod group;
mod leak;
mod lifecycle;
mod model;
mod params;
pub mod resets;
pub mod stats;

pub use lifecycle::{Lifecycle, LifecycleParams, TargetLife};
pub use model::{
    Attribution, Capacity, CapacitySource, Consequence, Finding, FindingKind, FindingState,
    ParseKeyError, Point, Resolution, ResolutionCause, Resource, Restart, Series, SeriesKey,
};
pub use params::Params;
pub use resets::{infer_restarts, infer_target_restarts};

use format::Unit;
use leak::{judge_across_lives, judge_current_life, Context, Trend};
use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::BTreeMap;

/// Analyses `series` as of `now` (unix seconds) and returns findings, most urgent first.
///
/// Points after `now` and non-finite values are ignored; restarts are matched to series
/// by `target`. A leak seen over a life shorter than [`Params::confirm_samples`] that is
/// not urgent, or one converging below its limit ([`Params::converging_ratio`]), is
/// [`FindingState::Suspected`]; everything else is confirmed ([`Lifecycle`]
/// carries states across runs). Order: confirmed before suspected; then leaks with a limit by forecast (soonest exhaustion first), then
/// leaks without a limit by relative growth rate, then saturation (fullest first), then
/// crash loops (most restarts first).
///
/// Findings of one target that are one mechanism are one finding: the most specific
/// leaking series is the root, and the series containing it (its total, `fds{socket}` for
/// a TCP state) or the memory its objects hold are attached as its
/// [`Finding::consequences`] when their rates agree, instead of being reported on their
/// own; per-process maxima (`{max_process}`) are never findings (docs/detection.md,
/// "Grouping").
pub fn analyze(series: &[Series], restarts: &[Restart], now: f64, params: &Params) -> Vec<Finding> {
    let z_interval = interval_quantile(params);
    let mut candidates = Vec::new();
    for one in series {
        let target_restarts = restarts_of(restarts, &one.key.target, now);
        let ceiling = ceiling(one, series, now, params);
        candidates.extend(analyze_series(
            one,
            &target_restarts,
            now,
            params,
            z_interval,
            ceiling,
            &mut None,
        ));
    }
    candidates.extend(
        crash_loops(series, restarts, now, params)
            .into_iter()
            .map(|finding| group::Candidate {
                finding,
                interval: None,
                levelling_off: false,
            }),
    );
    let mut findings = group::group(candidates, params);
    findings.sort_by(rank);
    findings
}

/// The reasoning behind [`analyze`] for one series, one line per judged window: which
/// regimes were considered and why each was or was not called a leak. For debugging and
/// for `leakwatch explain`-style output.
pub fn explain(series: &Series, restarts: &[Restart], now: f64, params: &Params) -> Vec<String> {
    let mut lines = Vec::new();
    let target_restarts = restarts_of(restarts, &series.key.target, now);
    let findings = analyze_series(
        series,
        &target_restarts,
        now,
        params,
        interval_quantile(params),
        ceiling(series, std::slice::from_ref(series), now, params),
        &mut Some(&mut lines),
    );
    for candidate in findings {
        let finding = candidate.finding;
        lines.push(format!("=> {}: {}", finding.kind, finding.summary));
    }
    lines
}

fn interval_quantile(params: &Params) -> f64 {
    let confidence = params.slope_confidence.clamp(0.5, 0.999_999);
    stats::normal_quantile(0.5 + confidence / 2.0)
}

fn restarts_of<'a>(restarts: &'a [Restart], target: &str, now: f64) -> Vec<&'a Restart> {
    let mut mine: Vec<&Restart> = restarts
        .iter()
        .filter(|r| r.target == target && r.t <= now && r.t.is_finite())
        .collect();
    mine.sort_by(|a, b| a.t.total_cmp(&b.t));
    mine
}

/// The series' points up to `now`, finite and sorted; borrowed when already clean.
fn visible_points(series: &Series, now: f64) -> Cow<'_, [Point]> {
    let points = &series.points;
    let clean = points.iter().all(|p| p.t.is_finite() && p.v.is_finite())
        && points.windows(2).all(|w| w[0].t <= w[1].t);
    if clean {
        let end = points.partition_point(|p| p.t <= now);
        Cow::Borrowed(&points[..end])
    } else {
        let mut kept: Vec<Point> = points
            .iter()
            .filter(|p| p.t.is_finite() && p.v.is_finite() && p.t <= now)
            .copied()
            .collect();
        kept.sort_by(|a, b| a.t.total_cmp(&b.t));
        Cow::Owned(kept)
    }
}

/// Median of the latest samples up to `now`.
fn current_value(points: &[Point], params: &Params) -> Option<f64> {
    let recent = &points[points.len().saturating_sub(params.current_samples.max(1))..];
    stats::median_of(&recent.iter().map(|p| p.v).collect::<Vec<_>>())
}

/// The limit a series is forecast against: its own (`limit`, the rest of the resource
/// counted against it) or its declared or reported capacity (the other series sharing that
/// capacity counted against it), whichever leaves the least headroom now.
struct Ceiling {
    value: f64,
    others: f64,
    /// `RLIMIT_NOFILE`, `pool, declared`; `None` for an unnamed limit.
    name: Option<String>,
}

fn ceiling(one: &Series, all: &[Series], now: f64, params: &Params) -> Option<Ceiling> {
    let usable = |v: &f64| v.is_finite() && *v > 0.0;
    let own = one.limit.filter(usable).map(|value| Ceiling {
        value,
        others: others_share(one, all, now, params),
        name: one.limit_name.clone(),
    });
    let capacity = one
        .capacity
        .as_ref()
        .filter(|c| usable(&c.value))
        .map(|c| Ceiling {
            value: c.value,
            others: capacity_share(one, c.group, all, now, params),
            name: Some(c.label()),
        });
    match (own, capacity) {
        (Some(own), Some(capacity)) => {
            if capacity.value - capacity.others < own.value - own.others {
                Some(capacity)
            } else {
                Some(own)
            }
        }
        (own, capacity) => own.or(capacity),
    }
}

/// What the other series of `part`'s target in capacity `group` hold now.
fn capacity_share(part: &Series, group: u32, all: &[Series], now: f64, params: &Params) -> f64 {
    all.iter()
        .filter(|s| {
            s.key != part.key
                && s.key.target == part.key.target
                && s.capacity.as_ref().is_some_and(|c| c.group == group)
        })
        .filter_map(|s| current_value(&visible_points(s, now), params))
        .map(|v| v.max(0.0))
        .sum()
}

/// How much of the limit the rest of the resource holds when `part` is one attribution
/// of it: the total's current value minus the part's. Zero for totals and when no total
/// series is given.
fn others_share(part: &Series, all: &[Series], now: f64, params: &Params) -> f64 {
    if part.key.is_total() {
        return 0.0;
    }
    let Some(total) = all.iter().find(|s| {
        s.key.is_total() && s.key.target == part.key.target && s.key.resource == part.key.resource
    }) else {
        return 0.0;
    };
    let total_now = current_value(&visible_points(total, now), params);
    let part_now = current_value(&visible_points(part, now), params);
    match (total_now, part_now) {
        (Some(total_now), Some(part_now)) => (total_now - part_now).max(0.0),
        _ => 0.0,
    }
}

/// `threads Analytics-#`, `fds socket`, `fds file /var/log/app.log`, `fds` for a total:
/// how summaries name a series.
pub(crate) fn label(key: &SeriesKey) -> String {
    match &key.attribution {
        Attribution::Total => key.resource.to_string(),
        Attribution::FdPath(_) | Attribution::FdPathOther => {
            format!("{} file {}", key.resource, key.attribution)
        }
        _ => format!("{} {}", key.resource, key.attribution),
    }
}

fn analyze_series(
    series: &Series,
    restarts: &[&Restart],
    now: f64,
    params: &Params,
    z_interval: f64,
    ceiling: Option<Ceiling>,
    trace: &mut Option<&mut Vec<String>>,
) -> Vec<group::Candidate> {
    let points = visible_points(series, now);
    let Some(last) = points.last() else {
        return Vec::new();
    };
    let restart_times: Vec<f64> = restarts.iter().map(|r| r.t).collect();
    let lives = blocks::split_lives(&points, &restart_times, params.restart_snap_samples);
    let current_life = &points[lives[lives.len() - 1].clone()];
    let current = current_value(current_life, params).unwrap_or(last.v);
    let limit = ceiling.as_ref().map(|c| c.value);
    let others = ceiling.as_ref().map_or(0.0, |c| c.others);
    let limit_name = ceiling.as_ref().and_then(|c| c.name.as_deref());
    let ctx = Context {
        params,
        z_interval,
        interval: blocks::sample_interval(&points).unwrap_or(params.interval_seconds),
        now,
        limit,
        others,
    };
    let mut trend = trend_of(series, &points, &lives, current, &ctx, trace);
    if let Some(trend) = trend.as_mut() {
        hold_until_it_persists(trend, series, &points, &restart_times, &ctx, trace);
    }
    let current_pid = restarts.last().and_then(|r| r.new_pid);
    let mut findings = Vec::new();
    if let Some(trend) = &trend {
        findings.push(group::Candidate {
            finding: leak_finding(
                series,
                trend,
                current,
                limit.map(|l| (l, limit_name)),
                restarts,
                current_pid,
            ),
            interval: Some((trend.slope_lower * 3600.0, trend.slope_upper * 3600.0)),
            levelling_off: trend.levelling_off,
        });
    }
    if let Some(limit) = limit {
        if current >= params.saturation_fraction * limit {
            let finding = saturation_finding(
                series,
                current_life,
                current,
                (limit, limit_name),
                params,
                trend.as_ref(),
                current_pid,
            );
            findings.push(group::Candidate {
                finding,
                interval: None,
                levelling_off: false,
            });
        }
    }
    findings
}

/// The trend of one series as of `ctx.now`: its current life's regime, or its pooled
/// lives' when the current life cannot confirm one, after the holds.
fn trend_of(
    series: &Series,
    points: &[Point],
    lives: &[std::ops::Range<usize>],
    current: f64,
    ctx: &Context,
    trace: &mut Option<&mut Vec<String>>,
) -> Option<Trend> {
    let current_life = &points[lives[lives.len() - 1].clone()];
    let mut trend = judge_current_life(current_life, ctx, trace);
    if let Some(trend) = trend.as_mut() {
        hold_below_earlier_lives(trend, points, lives, ctx, trace);
    }
    // A current life too young to confirm its own trend (a nightly restart keeps every
    // life under a day) may still be confirmed by the lives before it.
    if !trend.as_ref().is_some_and(|t| t.confirmed) && lives.len() >= 2 {
        let life_slices: Vec<&[Point]> = lives.iter().map(|range| &points[range.clone()]).collect();
        if let Some(pooled) = judge_across_lives(&life_slices, current, ctx, trace) {
            if pooled.confirmed || trend.is_none() {
                trend = Some(pooled);
            }
        }
    }
    if let Some(trend) = trend.as_mut() {
        hold_below_materiality(trend, series, ctx.limit, ctx.params, trace);
    }
    trend
}

/// A confirmed trend stays suspected unless the series, judged as it was
/// [`Params::persist_samples`] ago with the samples and restarts known then (the limit as
/// it is now), was confirmed too: one look that passes every test is not yet a leak
/// (docs/detection.md, "Lifecycle"). Two moments are compared, not every one between.
fn hold_until_it_persists(
    trend: &mut Trend,
    series: &Series,
    points: &[Point],
    restart_times: &[f64],
    ctx: &Context,
    trace: &mut Option<&mut Vec<String>>,
) {
    let params = ctx.params;
    if !trend.confirmed || params.persist_samples == 0 {
        return;
    }
    let persist = params.persist_samples as f64 * ctx.interval;
    let then = ctx.now - persist;
    let earlier = &points[..points.partition_point(|p| p.t <= then)];
    let held = earlier.last().map(|last| {
        let restarts: Vec<f64> = restart_times
            .iter()
            .copied()
            .filter(|t| *t <= then)
            .collect();
        let lives = blocks::split_lives(earlier, &restarts, params.restart_snap_samples);
        let life = &earlier[lives[lives.len() - 1].clone()];
        let current = current_value(life, params).unwrap_or(last.v);
        let ctx_then = Context {
            now: then,
            interval: blocks::sample_interval(earlier).unwrap_or(ctx.interval),
            ..*ctx
        };
        trend_of(series, earlier, &lives, current, &ctx_then, &mut None)
            .is_some_and(|t| t.confirmed)
    });
    if held != Some(true) {
        trend.confirmed = false;
        leak::note(trace, || {
            format!(
                "{} {} earlier: suspected until it is confirmed both now and then",
                if held.is_none() {
                    "no samples"
                } else {
                    "not confirmed"
                },
                format::duration(persist)
            )
        });
    }
}

/// Quantile of the earlier lives' hourly floors that is the level they held.
const HELD_QUANTILE: f64 = 0.9;

/// A life younger than `confirm_samples` is confirmed only by the urgency rule; one that
/// is still below the level its earlier lives held (the 90th percentile of their hourly
/// floors over the look-back, `history_seasons` seasons), when that level was safely below
/// the limit (under `saturation_fraction` of it, with the usual excursion and the rest of
/// the resource), is climbing back to where the process has already lived: a cache
/// refilling after a restart, a pool warming up after a deploy. Not an emergency, so it
/// stays suspected; a leak that restarts keep resetting is still confirmed by its pooled
/// lives ([`judge_across_lives`]) once there are enough of them.
fn hold_below_earlier_lives(
    trend: &mut Trend,
    points: &[Point],
    lives: &[std::ops::Range<usize>],
    ctx: &Context,
    trace: &mut Option<&mut Vec<String>>,
) {
    let params = ctx.params;
    let Some(current) = lives.last() else {
        return;
    };
    let (Some(first), Some(last)) = (points.get(current.start), points.last()) else {
        return;
    };
    let young = last.t - first.t < params.confirm_samples as f64 * ctx.interval;
    if !trend.confirmed || !young || lives.len() < 2 {
        return;
    }
    let from = ctx.now
        - params
            .history_seasons
            .max(1)
            .saturating_mul(params.season_samples) as f64
            * ctx.interval;
    let block_len = (params.season_samples / 24)
        .max(params.min_block_samples)
        .max(1);
    let mut floors: Vec<f64> = lives[..lives.len() - 1]
        .iter()
        .flat_map(|range| {
            let life = &points[range.clone()];
            let lo = life.partition_point(|p| p.t < from);
            blocks::floor_blocks(&life[lo..], block_len)
        })
        .map(|b| b.floor)
        .collect();
    if floors.len() < 4 {
        return;
    }
    let Some(held) = stats::quantile(&mut floors, HELD_QUANTILE) else {
        return;
    };
    // Only a level the process could live at: one near the limit (a leak that ran into it
    // and was restarted) is no reassurance.
    let safe = ctx.limit.is_none_or(|limit| {
        held + trend.excursion + ctx.others < params.saturation_fraction * limit
    });
    if safe && trend.level_now <= held {
        trend.confirmed = false;
        leak::note(trace, || {
            format!(
                "young life at {:.4} is below the {:.4} its earlier lives held: suspected, not urgent",
                trend.level_now, held
            )
        });
    }
}

/// Growth in bytes with no known limit stays suspected until its rise (within one life:
/// what a life can accumulate) reaches [`Params::min_unbounded_rise_bytes`]: with nothing
/// to exhaust, only its size can make it matter, and warm-ups are small.
fn hold_below_materiality(
    trend: &mut Trend,
    series: &Series,
    limit: Option<f64>,
    params: &Params,
    trace: &mut Option<&mut Vec<String>>,
) {
    if !trend.confirmed || limit.is_some() || series.display_unit() != Unit::Bytes {
        return;
    }
    let span = if trend.lives > 1 {
        trend.segment_seconds
    } else {
        trend.end - trend.start
    };
    let rise = trend.slope * span;
    if rise < params.min_unbounded_rise_bytes {
        trend.confirmed = false;
        leak::note(trace, || {
            format!(
                "suspected, not confirmed: a rise of {} with no known limit is below {}",
                Unit::Bytes.format(rise),
                Unit::Bytes.format(params.min_unbounded_rise_bytes)
            )
        });
    }
}

fn leak_finding(
    series: &Series,
    trend: &Trend,
    current: f64,
    limit: Option<(f64, Option<&str>)>,
    restarts: &[&Restart],
    current_pid: Option<u32>,
) -> Finding {
    let named = |name: Option<&str>| name.map(|n| format!(" ({n})")).unwrap_or_default();
    let key = &series.key;
    let unit = series.display_unit();
    let rate_per_hour = trend.slope * 3600.0;
    let restarts_inside = restarts
        .iter()
        .filter(|r| r.t > trend.start && r.t <= trend.end)
        .count();
    let growth = if trend.lives > 1 {
        format!(
            "+{} per life of ~{} over {} lives",
            unit.format(trend.slope * trend.segment_seconds),
            format::duration(trend.segment_seconds),
            trend.lives
        )
    } else {
        format!(
            "+{} in {}",
            unit.format(trend.slope * (trend.end - trend.start)),
            format::duration(trend.end - trend.start)
        )
    };
    let forecast = match (limit, trend.eta) {
        (Some((limit, name)), Some(eta)) if eta <= 0.0 => {
            format!(", at limit {}{}", unit.format(limit), named(name))
        }
        (Some((limit, name)), Some(eta)) => format!(
            ", limit {}{} in ~{}",
            unit.format(limit),
            named(name),
            format::duration(eta)
        ),
        _ => ", no known limit".to_string(),
    };
    let masked = if restarts_inside > 0 {
        format!(" [{restarts_inside} restarts]")
    } else {
        String::new()
    };
    Finding {
        kind: FindingKind::Leak,
        state: if trend.confirmed {
            FindingState::Confirmed
        } else {
            FindingState::Suspected
        },
        resolution: None,
        key: key.clone(),
        pids: current_pid.into_iter().collect(),
        processes: Vec::new(),
        current,
        limit: limit.map(|(value, _)| value),
        rate_per_hour,
        eta_seconds: trend.eta,
        eta_conservative_seconds: trend.eta_conservative,
        first_seen: trend.start,
        evidence_window: (trend.start, trend.end),
        confidence: 1.0 - trend.p_value,
        p_value: trend.p_value,
        restarts: restarts_inside,
        consequences: Vec::new(),
        evidence: None,
        summary: format!(
            "{} {growth} ({}/h){forecast}{masked}",
            label(key),
            unit.format(rate_per_hour)
        ),
    }
}

fn saturation_finding(
    series: &Series,
    current_life: &[Point],
    current: f64,
    (limit, limit_name): (f64, Option<&str>),
    params: &Params,
    trend: Option<&Trend>,
    current_pid: Option<u32>,
) -> Finding {
    let key = &series.key;
    let threshold = params.saturation_fraction * limit;
    // The saturation episode began where the value last rose above the threshold.
    let since = current_life
        .iter()
        .rposition(|p| p.v < threshold)
        .map_or(current_life[0].t, |i| {
            current_life[(i + 1).min(current_life.len() - 1)].t
        });
    let end = current_life.last().map_or(since, |p| p.t);
    Finding {
        kind: FindingKind::Saturation,
        state: FindingState::Confirmed,
        resolution: None,
        key: key.clone(),
        pids: current_pid.into_iter().collect(),
        processes: Vec::new(),
        current,
        limit: Some(limit),
        rate_per_hour: trend.map_or(0.0, |t| t.slope * 3600.0),
        eta_seconds: trend.and_then(|t| t.eta),
        eta_conservative_seconds: trend.and_then(|t| t.eta_conservative),
        first_seen: since,
        evidence_window: (since, end),
        confidence: 1.0,
        p_value: 0.0,
        restarts: 0,
        consequences: Vec::new(),
        evidence: None,
        summary: format!(
            "{} at {} of {} ({:.0}% of {})",
            label(key),
            series.display_unit().format(current),
            series.display_unit().format(limit),
            100.0 * current / limit,
            limit_name.unwrap_or("limit")
        ),
    }
}

fn crash_loops(series: &[Series], restarts: &[Restart], now: f64, params: &Params) -> Vec<Finding> {
    let mut by_target: BTreeMap<&str, Vec<&Restart>> = BTreeMap::new();
    for restart in restarts.iter().filter(|r| r.t <= now && r.t.is_finite()) {
        by_target
            .entry(restart.target.as_str())
            .or_default()
            .push(restart);
    }
    let mut findings = Vec::new();
    for (target, mut mine) in by_target {
        mine.sort_by(|a, b| a.t.total_cmp(&b.t));
        // The target's own sampling interval turns the window into seconds; the window is
        // capped by what was observed, so a short capture is judged on what it holds.
        let mine_series: Vec<&Series> = series.iter().filter(|s| s.key.target == target).collect();
        let interval = mine_series
            .iter()
            .filter_map(|s| blocks::sample_interval(&s.points))
            .min_by(f64::total_cmp)
            .unwrap_or(params.interval_seconds);
        let mut window = params.crashloop_window_samples as f64 * interval;
        if let Some(first) = mine_series
            .iter()
            .filter_map(|s| s.points.first().map(|p| p.t))
            .min_by(f64::total_cmp)
        {
            window = window.min((now - first).max(interval));
        }
        let inside: Vec<&Restart> = mine.into_iter().filter(|r| r.t > now - window).collect();
        if inside.len() < params.crashloop_min_restarts.max(1) {
            continue;
        }
        let mut reasons: BTreeMap<&str, usize> = BTreeMap::new();
        for restart in &inside {
            let reason = if restart.reason.is_empty() {
                "unknown"
            } else {
                restart.reason.as_str()
            };
            *reasons.entry(reason).or_default() += 1;
        }
        let mut reasons: Vec<(&str, usize)> = reasons.into_iter().collect();
        reasons.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let reasons: Vec<String> = reasons
            .iter()
            .map(|(reason, count)| format!("{count}x {reason}"))
            .collect();
        let mut pids: Vec<u32> = inside.iter().filter_map(|r| r.new_pid).collect();
        pids.dedup();
        let first = inside[0].t;
        let count = inside.len();
        findings.push(Finding {
            kind: FindingKind::CrashLoop,
            state: FindingState::Confirmed,
            resolution: None,
            key: SeriesKey::total(target, Resource::Restarts),
            pids,
            processes: Vec::new(),
            current: count as f64,
            limit: None,
            rate_per_hour: count as f64 / (window / 3600.0),
            eta_seconds: None,
            eta_conservative_seconds: None,
            first_seen: first,
            evidence_window: (now - window, now),
            confidence: 1.0,
            p_value: 0.0,
            restarts: count,
            consequences: Vec::new(),
            evidence: None,
            summary: format!(
                "restarted {count} times in {} ({})",
                format::duration(window),
                reasons.join(", ")
            ),
        });
    }
    findings
}

fn rank(a: &Finding, b: &Finding) -> Ordering {
    fn group(finding: &Finding) -> u8 {
        match finding.kind {
            FindingKind::Leak if finding.eta_seconds.is_some() => 0,
            FindingKind::Leak => 1,
            FindingKind::Saturation => 2,
            FindingKind::CrashLoop => 3,
        }
    }
    fn urgency(finding: &Finding) -> (f64, f64) {
        match (finding.kind, group(finding)) {
            (_, 0) => (
                finding.eta_seconds.unwrap_or(f64::INFINITY),
                finding.eta_conservative_seconds.unwrap_or(f64::INFINITY),
            ),
            // Larger relative growth, fuller, or more restarts come first.
            (FindingKind::Leak, _) => (
                -finding.rate_per_hour / finding.current.abs().max(1e-9),
                0.0,
            ),
            (FindingKind::Saturation, _) => (
                -finding.current / finding.limit.unwrap_or(f64::INFINITY),
                0.0,
            ),
            _ => (-finding.current, 0.0),
        }
    }
    fn sureness(finding: &Finding) -> u8 {
        match finding.state {
            FindingState::Confirmed => 0,
            FindingState::Suspected => 1,
            FindingState::Resolved => 2,
        }
    }
    let (a_first, a_second) = urgency(a);
    let (b_first, b_second) = urgency(b);
    sureness(a)
        .cmp(&sureness(b))
        .then(group(a).cmp(&group(b)))
        .then(a_first.total_cmp(&b_first))
        .then(a_second.total_cmp(&b_second))
        .then_with(|| a.key.cmp(&b.key))
}
