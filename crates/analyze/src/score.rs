//! The scorer: replays each corpus case through the engine as if live, and through two
//! baselines, and measures detection, attribution, detection delay, lead time before
//! exhaustion and false alarms.
//!
//! Replay: the engine evaluates the case at `evaluations` evenly spaced times `now`; each
//! evaluation sees only the samples and restarts at or before `now`. The baselines are
//! cheap, so they are evaluated at every sample time: their detection times are exact,
//! while the engine's are rounded up to its evaluation grid (which can only understate
//! its lead). False alarms are counted as episodes (runs of consecutive alarmed
//! evaluations), so the two grids are comparable. A detector's
//! detection time is its first evaluation with an alarm on the leaking series (or a series
//! that grows because of it) at or after the leak's start. Any other alarm is a false
//! alarm: every alarm on a healthy case, alarms on unrelated series, and alarms before the
//! leak began.
//!
//! Baselines, evaluated on every series that has a limit:
//! - `static 75%`: the latest value is at least 75% of the limit;
//! - `predict_linear`: Prometheus' `predict_linear(x[6h], 4*3600) > limit`, i.e. the least
//!   squares line over the samples of the last 6 hours, extrapolated 4 hours past `now`.
//!   For cases shorter than a day the window is a quarter of the case and the horizon two
//!   thirds of the window (the same 6:4 ratio), so the baseline is not starved of data.
//!
//! Lead time is `exhaustion - detection`. Medians over leak cases count a missed leak as
//! zero lead, so missing is never better than detecting late.

use crate::corpus::{Case, LeakTruth};
use leakwatch_detect::{analyze, stats, FindingKind, FindingState, Params, Series, SeriesKey};
use serde::Serialize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// How to replay.
#[derive(Debug, Clone)]
pub struct ScoreOptions {
    /// Evaluations per case (evenly spaced over the case).
    pub evaluations: usize,
    pub params: Params,
    /// Worker threads (cases are scored in parallel).
    pub threads: usize,
}

impl Default for ScoreOptions {
    fn default() -> ScoreOptions {
        ScoreOptions {
            evaluations: 400,
            params: Params::production(),
            threads: 2,
        }
    }
}

/// How one detector did on one case.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DetectorScore {
    pub detected: bool,
    pub detected_at: Option<f64>,
    /// Detection time minus leak start.
    pub delay_seconds: Option<f64>,
    /// Exhaustion minus detection time (when the case has an exhaustion time).
    pub lead_seconds: Option<f64>,
    /// Leak cases: whether the most urgent alarm among the leaking series, at detection,
    /// was on the expected series.
    pub attribution_correct: Option<bool>,
    /// False-alarm episodes: runs of consecutive evaluations with a false alarm.
    pub false_alarms: usize,
    /// Time spent in false alarm: each evaluation with a false alarm counts until the
    /// next evaluation.
    pub false_alarm_seconds: f64,
    /// The first false alarm: time and series.
    pub first_false_alarm: Option<(f64, String)>,
}

/// One case's row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CaseScore {
    pub case: String,
    pub description: String,
    pub leak: bool,
    pub leak_start: Option<f64>,
    pub exhaustion: Option<f64>,
    pub evaluations: usize,
    pub leakwatch: DetectorScore,
    /// The engine counting every leak finding it shows, suspected ones too (they are
    /// listed, never alerted): how early a leak is visible, how often a healthy series is
    /// shown as a suspect.
    pub leakwatch_shown: DetectorScore,
    pub static_threshold: DetectorScore,
    pub predict_linear: DetectorScore,
    /// The engine reported a crash loop at some evaluation.
    pub crash_loop_reported: bool,
    /// The engine's summary line for the leak at its detection.
    pub summary_at_detection: Option<String>,
    /// Wall-clock cost of one engine evaluation of the whole case (all its series), mean
    /// and worst, in milliseconds. Depends on the machine; everything else is exact.
    pub engine_ms_mean: f64,
    pub engine_ms_max: f64,
}

/// Totals for one detector.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DetectorTotals {
    pub leaks_detected: usize,
    pub attribution_correct: usize,
    pub healthy_cases_with_false_alarms: usize,
    pub leak_cases_with_false_alarms: usize,
    pub false_alarm_episodes: usize,
    /// Over leak cases with an exhaustion time; misses count as zero.
    pub median_lead_seconds: Option<f64>,
    /// Over detected leaks.
    pub median_delay_seconds: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Totals {
    pub leak_cases: usize,
    pub healthy_cases: usize,
    pub leakwatch: DetectorTotals,
    pub static_threshold: DetectorTotals,
    pub predict_linear: DetectorTotals,
    /// leakwatch's median lead divided by predict_linear's.
    pub lead_ratio_vs_predict_linear: Option<f64>,
}

/// The alarms of one detector through a replay: at each time, the indices (into the
/// case's series) of the alarmed series, most urgent first.
struct Replay {
    times: Vec<f64>,
    alarms: Vec<Vec<usize>>,
}

/// Scores a replay against the truth. `ranked`: the detector orders its alarms (the
/// engine does; thresholds do not). Ranked, the attribution is right when the first alarm
/// among the leaking series is on the expected one; unranked, when the expected series is
/// among the alarms at detection.
fn score_replay(
    replay: &Replay,
    keys: &[SeriesKey],
    truth: Option<&LeakTruth>,
    ranked: bool,
) -> DetectorScore {
    let mut score = DetectorScore::default();
    let mut in_false_episode = false;
    for (k, (&now, alarms)) in replay.times.iter().zip(&replay.alarms).enumerate() {
        let mut false_alarm: Option<usize> = None;
        let mut on_leak: Option<usize> = None;
        for &index in alarms {
            let key = &keys[index];
            match truth {
                Some(leak)
                    if (key == &leak.key || leak.related.contains(key)) && now >= leak.start =>
                {
                    on_leak.get_or_insert(index);
                }
                _ => {
                    false_alarm.get_or_insert(index);
                }
            }
        }
        if false_alarm.is_some() {
            let next = replay.times.get(k + 1).copied().unwrap_or(now);
            score.false_alarm_seconds += next - now;
        }
        match false_alarm {
            Some(index) if !in_false_episode => {
                score.false_alarms += 1;
                score
                    .first_false_alarm
                    .get_or_insert((now, keys[index].to_string()));
                in_false_episode = true;
            }
            Some(_) => {}
            None => in_false_episode = false,
        }
        if let (Some(leak), Some(first), false) = (truth, on_leak, score.detected) {
            score.detected = true;
            score.detected_at = Some(now);
            score.delay_seconds = Some(now - leak.start);
            score.lead_seconds = leak.exhaustion.map(|e| e - now);
            score.attribution_correct = Some(if ranked {
                keys[first] == leak.key
            } else {
                alarms.iter().any(|&i| keys[i] == leak.key)
            });
        }
    }
    score
}

/// Prefix sums for least-squares lines over any window of a series in O(1).
struct LineSums {
    origin: f64,
    t: Vec<f64>,
    tt: Vec<f64>,
    v: Vec<f64>,
    tv: Vec<f64>,
}

impl LineSums {
    fn new(series: &Series) -> LineSums {
        let origin = series.points.first().map_or(0.0, |p| p.t);
        let n = series.points.len();
        let mut sums = LineSums {
            origin,
            t: Vec::with_capacity(n + 1),
            tt: Vec::with_capacity(n + 1),
            v: Vec::with_capacity(n + 1),
            tv: Vec::with_capacity(n + 1),
        };
        let (mut st, mut stt, mut sv, mut stv) = (0.0, 0.0, 0.0, 0.0);
        sums.t.push(0.0);
        sums.tt.push(0.0);
        sums.v.push(0.0);
        sums.tv.push(0.0);
        for point in &series.points {
            let t = point.t - origin;
            st += t;
            stt += t * t;
            sv += point.v;
            stv += t * point.v;
            sums.t.push(st);
            sums.tt.push(stt);
            sums.v.push(sv);
            sums.tv.push(stv);
        }
        sums
    }

    /// Value of the least-squares line through samples `begin..end` at time `at`.
    fn predict(&self, begin: usize, end: usize, at: f64) -> Option<f64> {
        let n = (end - begin) as f64;
        if n < 2.0 {
            return None;
        }
        let st = self.t[end] - self.t[begin];
        let sv = self.v[end] - self.v[begin];
        let stt = self.tt[end] - self.tt[begin] - st * st / n;
        let stv = self.tv[end] - self.tv[begin] - st * sv / n;
        if stt <= 0.0 {
            return None;
        }
        let slope = stv / stt;
        Some(sv / n + slope * (at - self.origin - st / n))
    }
}

/// Window and horizon of the predict_linear baseline for a case.
pub fn predict_linear_window(case: &Case) -> (f64, f64) {
    let duration = case.end - case.start;
    if duration < 86_400.0 {
        let window = duration / 4.0;
        (window, window * 4.0 / 6.0)
    } else {
        (6.0 * 3600.0, 4.0 * 3600.0)
    }
}

/// The baselines, evaluated at every sample time of the case (they are cheap), so their
/// detection times are exact rather than rounded to the engine's evaluation grid.
/// `(window, horizon)`: predict_linear's range and extrapolation, seconds.
fn replay_baselines(case: &Case, (window, horizon): (f64, f64)) -> (Replay, Replay) {
    let mut times: Vec<f64> = case
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.t))
        .collect();
    times.sort_by(f64::total_cmp);
    times.dedup();
    let mut threshold = Replay {
        times: times.clone(),
        alarms: vec![Vec::new(); times.len()],
    };
    let mut linear = Replay {
        times: times.clone(),
        alarms: vec![Vec::new(); times.len()],
    };
    for (index, series) in case.series.iter().enumerate() {
        let Some(limit) = series.limit else {
            continue;
        };
        let sums = LineSums::new(series);
        let points = &series.points;
        let (mut end, mut begin) = (0, 0);
        for (k, &now) in times.iter().enumerate() {
            while end < points.len() && points[end].t <= now {
                end += 1;
            }
            while begin < end && points[begin].t <= now - window {
                begin += 1;
            }
            if end == 0 {
                continue;
            }
            if points[end - 1].v >= 0.75 * limit {
                threshold.alarms[k].push(index);
            }
            if sums
                .predict(begin, end, now + horizon)
                .is_some_and(|v| v > limit)
            {
                linear.alarms[k].push(index);
            }
        }
    }
    (threshold, linear)
}

/// `evaluations` evenly spaced times over the case, at least `min_stride` apart, the last
/// one the case's end.
pub fn evaluation_times(case: &Case, evaluations: usize, min_stride: f64) -> Vec<f64> {
    let stride = ((case.end - case.start) / evaluations.max(1) as f64).max(min_stride);
    let mut times = Vec::new();
    let mut step = 1;
    loop {
        let now = (case.start + step as f64 * stride).min(case.end);
        times.push(now);
        if now >= case.end {
            return times;
        }
        step += 1;
    }
}

/// Replays one case.
pub fn score_case(case: &Case, options: &ScoreOptions) -> CaseScore {
    let times = evaluation_times(case, options.evaluations, crate::corpus::INTERVAL);
    score_case_at(
        case,
        &times,
        &options.params,
        None,
        predict_linear_window(case),
    )
}

/// Replays one case, evaluating the engine at `times` with `params`. `history`: how far
/// back each evaluation sees, seconds: the samples after `now - history` (`None`:
/// everything up to `now`, as `leakwatch analyze` does; the agent judges its last 8,640
/// intervals and the persistence look-back, a window that starts between two samples since its clock is not aligned
/// with them, so the excluded bound models it).
/// `predict_linear`: the baseline's `(window, horizon)`, seconds.
pub fn score_case_at(
    case: &Case,
    times: &[f64],
    params: &Params,
    history: Option<f64>,
    predict_linear: (f64, f64),
) -> CaseScore {
    let truth = case.leak();
    let keys: Vec<SeriesKey> = case.series.iter().map(|s| s.key.clone()).collect();
    let mut engine = Replay {
        times: Vec::new(),
        alarms: Vec::new(),
    };
    let mut shown = Replay {
        times: Vec::new(),
        alarms: Vec::new(),
    };
    let mut crash_loop_reported = false;
    let mut summary_at_detection = None;
    let (mut engine_ms_total, mut engine_ms_max) = (0.0, 0.0_f64);
    for &now in times {
        let from = history.map_or(f64::NEG_INFINITY, |h| now - h);
        // Only what was known at `now` (and, with a history window, not before `from`).
        let visible: Vec<Series> = case
            .series
            .iter()
            .map(|s| {
                let begin = s.points.partition_point(|p| p.t <= from);
                let end = s.points.partition_point(|p| p.t <= now);
                Series::new(
                    s.key.clone(),
                    s.points[begin..end.max(begin)].to_vec(),
                    s.limit,
                )
            })
            .collect();
        let restarts: Vec<_> = case
            .restarts
            .iter()
            .filter(|r| r.t <= now && r.t > from)
            .cloned()
            .collect();
        let started = Instant::now();
        let findings = analyze(&visible, &restarts, now, params);
        let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
        engine_ms_total += elapsed_ms;
        engine_ms_max = engine_ms_max.max(elapsed_ms);
        crash_loop_reported |= findings.iter().any(|f| f.kind == FindingKind::CrashLoop);
        // Alarms are what would be alerted: confirmed leaks (suspected ones are shown only).
        let leaks: Vec<usize> = findings
            .iter()
            .filter(|f| f.kind == FindingKind::Leak && f.state == FindingState::Confirmed)
            .filter_map(|f| keys.iter().position(|k| *k == f.key))
            .collect();
        if summary_at_detection.is_none() {
            if let Some(leak) = truth.filter(|l| now >= l.start) {
                summary_at_detection = findings
                    .iter()
                    .find(|f| {
                        f.kind == FindingKind::Leak
                            && f.state == FindingState::Confirmed
                            && (leak.key == f.key || leak.related.contains(&f.key))
                    })
                    .map(|f| f.summary.clone());
            }
        }
        let any_state: Vec<usize> = findings
            .iter()
            .filter(|f| f.kind == FindingKind::Leak)
            .filter_map(|f| keys.iter().position(|k| *k == f.key))
            .collect();
        engine.times.push(now);
        engine.alarms.push(leaks);
        shown.times.push(now);
        shown.alarms.push(any_state);
    }
    let (threshold, linear) = replay_baselines(case, predict_linear);
    CaseScore {
        case: case.name.to_string(),
        description: case.description.to_string(),
        leak: truth.is_some(),
        leak_start: truth.map(|l| l.start),
        exhaustion: truth.and_then(|l| l.exhaustion),
        evaluations: engine.times.len(),
        leakwatch: score_replay(&engine, &keys, truth, true),
        leakwatch_shown: score_replay(&shown, &keys, truth, true),
        static_threshold: score_replay(&threshold, &keys, truth, false),
        predict_linear: score_replay(&linear, &keys, truth, false),
        crash_loop_reported,
        summary_at_detection,
        engine_ms_mean: engine_ms_total / engine.times.len().max(1) as f64,
        engine_ms_max,
    }
}

/// Replays every case, `options.threads` cases at a time; rows keep the corpus order.
pub fn score_corpus(cases: &[Case], options: &ScoreOptions) -> Vec<CaseScore> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<CaseScore>>> = Mutex::new(vec![None; cases.len()]);
    std::thread::scope(|scope| {
        for _ in 0..options.threads.max(1) {
            scope.spawn(|| loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some(case) = cases.get(index) else {
                    break;
                };
                let score = score_case(case, options);
                results.lock().unwrap_or_else(|e| e.into_inner())[index] = Some(score);
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .flatten()
        .collect()
}

/// Overrides one field of the engine's parameters by name, through their serde form.
pub fn set_param(params: &mut Params, assignment: &str) -> Result<(), String> {
    let (name, value) = assignment
        .split_once('=')
        .ok_or_else(|| format!("--set {assignment:?}: expected PARAM=VALUE"))?;
    let mut fields = serde_json::to_value(&*params).map_err(|e| e.to_string())?;
    let slot = fields
        .get_mut(name)
        .ok_or_else(|| format!("--set: no parameter named {name:?}"))?;
    *slot = serde_json::from_str(value).map_err(|e| format!("--set {name}: {e}"))?;
    *params = serde_json::from_value(fields).map_err(|e| format!("--set {name}: {e}"))?;
    Ok(())
}

fn median(mut values: Vec<f64>) -> Option<f64> {
    stats::median(&mut values)
}

fn detector_totals(
    rows: &[CaseScore],
    pick: impl Fn(&CaseScore) -> &DetectorScore,
) -> DetectorTotals {
    let mut totals = DetectorTotals::default();
    let mut leads = Vec::new();
    let mut delays = Vec::new();
    for row in rows {
        let score = pick(row);
        totals.false_alarm_episodes += score.false_alarms;
        if !row.leak {
            if score.false_alarms > 0 {
                totals.healthy_cases_with_false_alarms += 1;
            }
            continue;
        }
        if score.false_alarms > 0 {
            totals.leak_cases_with_false_alarms += 1;
        }
        if score.detected {
            totals.leaks_detected += 1;
            delays.extend(score.delay_seconds);
        }
        if score.attribution_correct == Some(true) {
            totals.attribution_correct += 1;
        }
        if row.exhaustion.is_some() {
            leads.push(score.lead_seconds.unwrap_or(0.0).max(0.0));
        }
    }
    totals.median_lead_seconds = median(leads);
    totals.median_delay_seconds = median(delays);
    totals
}

pub fn totals(rows: &[CaseScore]) -> Totals {
    let leakwatch = detector_totals(rows, |r| &r.leakwatch);
    let predict_linear = detector_totals(rows, |r| &r.predict_linear);
    let ratio = match (
        leakwatch.median_lead_seconds,
        predict_linear.median_lead_seconds,
    ) {
        (Some(ours), Some(theirs)) if theirs > 0.0 => Some(ours / theirs),
        _ => None,
    };
    Totals {
        leak_cases: rows.iter().filter(|r| r.leak).count(),
        healthy_cases: rows.iter().filter(|r| !r.leak).count(),
        leakwatch,
        static_threshold: detector_totals(rows, |r| &r.static_threshold),
        predict_linear,
        lead_ratio_vs_predict_linear: ratio,
    }
}

fn hours(seconds: Option<f64>) -> String {
    match seconds {
        Some(s) => format!("{:.1}h", s / 3600.0),
        None => "-".to_string(),
    }
}

fn cell(row: &CaseScore, score: &DetectorScore) -> String {
    if !row.leak {
        return "-".to_string();
    }
    if !score.detected {
        return "MISSED".to_string();
    }
    match score.lead_seconds {
        Some(lead) => format!("lead {}", hours(Some(lead))),
        None => format!("after {}", hours(score.delay_seconds)),
    }
}

/// The results as a markdown table, ready for BENCHMARKS.md.
pub fn markdown(rows: &[CaseScore], totals: &Totals) -> String {
    let mut out = String::new();
    out.push_str("| case | truth | leakwatch | attribution | delay | lead | FA | static 75% | FA | predict_linear | FA |\n");
    out.push_str("|---|---|---|---|---|---|---|---|---|---|---|\n");
    for row in rows {
        let ours = &row.leakwatch;
        let truth = if row.leak { "leak" } else { "healthy" };
        let detected = match (row.leak, ours.detected) {
            (true, true) => "detected",
            (true, false) => "MISSED",
            (false, _) if ours.false_alarms > 0 => "FALSE ALARM",
            (false, _) => "silent",
        };
        let attribution = match ours.attribution_correct {
            Some(true) => "right",
            Some(false) => "WRONG",
            None => "-",
        };
        let crash = if row.crash_loop_reported {
            " (+crash loop)"
        } else {
            ""
        };
        out.push_str(&format!(
            "| {} | {truth} | {detected}{crash} | {attribution} | {} | {} | {} | {} | {} | {} | {} |\n",
            row.case,
            hours(ours.delay_seconds),
            if row.exhaustion.is_some() { hours(ours.lead_seconds) } else { "n/a".to_string() },
            ours.false_alarms,
            cell(row, &row.static_threshold),
            row.static_threshold.false_alarms,
            cell(row, &row.predict_linear),
            row.predict_linear.false_alarms,
        ));
    }
    out.push('\n');
    out.push_str("| detector | leaks detected | right attribution | healthy cases with false alarms | leak cases with false alarms | median delay | median lead |\n");
    out.push_str("|---|---|---|---|---|---|---|\n");
    for (name, t) in [
        ("leakwatch", &totals.leakwatch),
        ("static 75%", &totals.static_threshold),
        ("predict_linear 6h/4h", &totals.predict_linear),
    ] {
        out.push_str(&format!(
            "| {name} | {}/{} | {}/{} | {}/{} | {}/{} | {} | {} |\n",
            t.leaks_detected,
            totals.leak_cases,
            t.attribution_correct,
            totals.leak_cases,
            t.healthy_cases_with_false_alarms,
            totals.healthy_cases,
            t.leak_cases_with_false_alarms,
            totals.leak_cases,
            hours(t.median_delay_seconds),
            hours(t.median_lead_seconds),
        ));
    }
    let worst = rows.iter().map(|r| r.engine_ms_max).fold(0.0, f64::max);
    let mean = rows.iter().map(|r| r.engine_ms_mean).sum::<f64>() / rows.len().max(1) as f64;
    out.push_str(&format!(
        "\nEngine cost per evaluation of a case (all its series): mean {mean:.1} ms, worst {worst:.1} ms.\n"
    ));
    if let Some(ratio) = totals.lead_ratio_vs_predict_linear {
        out.push_str(&format!(
            "\nMedian lead time, leakwatch / predict_linear: {ratio:.1}x\n"
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use leakwatch_detect::Point;

    #[test]
    fn window_sums_give_the_least_squares_line() {
        let points: Vec<Point> = (0..100)
            .map(|i| {
                Point::new(
                    1.7e9 + 10.0 * i as f64,
                    5.0 + 0.25 * i as f64 + if i % 2 == 0 { 1.0 } else { -1.0 },
                )
            })
            .collect();
        let series = Series::new(
            SeriesKey::from_text("t", "threads", ""),
            points.clone(),
            Some(100.0),
        );
        let sums = LineSums::new(&series);
        let window = &points[40..90];
        let at = 1.7e9 + 2000.0;
        let times: Vec<f64> = window.iter().map(|p| p.t - at).collect();
        let values: Vec<f64> = window.iter().map(|p| p.v).collect();
        let (slope, intercept) = stats::ols(&times, &values).unwrap();
        let predicted = sums.predict(40, 90, at).unwrap();
        assert!(
            (predicted - intercept).abs() < 1e-6,
            "{predicted} vs {intercept}"
        );
        assert!((slope - 0.025).abs() < 1e-3);
        assert_eq!(sums.predict(5, 6, at), None);
    }

    #[test]
    fn false_alarms_count_as_episodes_and_detection_needs_the_leak_to_have_begun() {
        let keys = vec![
            SeriesKey::from_text("t", "threads", "leak"),
            SeriesKey::from_text("t", "threads", "other"),
        ];
        let truth = LeakTruth {
            key: keys[0].clone(),
            related: Vec::new(),
            start: 30.0,
            exhaustion: Some(100.0),
        };
        let replay = Replay {
            times: vec![10.0, 20.0, 30.0, 40.0, 50.0, 60.0],
            // Before the start: an early alarm on the leaking series (false); then an
            // unrelated alarm for two evaluations (one episode), then detection.
            alarms: vec![vec![0], vec![], vec![1], vec![1], vec![], vec![1, 0]],
        };
        let ranked = score_replay(&replay, &keys, Some(&truth), true);
        assert_eq!(ranked.false_alarms, 3);
        assert_eq!(
            ranked.first_false_alarm,
            Some((10.0, "t/threads{leak}".to_string()))
        );
        assert_eq!(ranked.detected_at, Some(60.0));
        assert_eq!(ranked.delay_seconds, Some(30.0));
        assert_eq!(ranked.lead_seconds, Some(40.0));
        assert_eq!(ranked.attribution_correct, Some(true));
        let healthy = score_replay(&replay, &keys, None, false);
        assert!(!healthy.detected);
        assert_eq!(healthy.false_alarms, 3);
    }
}
