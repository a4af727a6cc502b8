//! Online evaluation of the randomized corpus ([`crate::generate`]): every draw is replayed
//! through the engine on a dense grid of evaluation times, each seeing only the samples
//! (and restarts) known then, and through the two baselines at every sample; the results
//! are summed up per class, per interval and overall, and checked against the targets of
//! issue 17.
//!
//! Parameters: `Params::for_interval(interval)` (the production preset the agent uses at
//! that interval), with optional overrides. History: everything up to `now` (as `leakwatch
//! analyze` judges a file), or the agent's window of the last 8,640 intervals and the
//! persistence look-back.
//!
//! Grid: `evaluations` evenly spaced times per series, never closer than 6 intervals (the
//! agent's production detection loop runs every 6 intervals), the last at the series' end.
//! The engine's detection times are rounded up to its grid; the baselines' are exact.

use crate::generate::{generate, Class, DrawSpec, Unit};
use crate::rng::Rng;
use crate::score::{evaluation_times, score_case_at, set_param, CaseScore, DetectorScore};
use leakwatch_detect::{
    analyze, stats, FindingKind, FindingState, Params, Point, Series, SeriesKey,
};
use serde::Serialize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// The agent's detector judges the last 8,640 intervals, plus the persistence look-back
/// (`Params::persist_samples`; crates/agent, `findings.rs`, `Windows::for_engine`).
pub const AGENT_WINDOW_INTERVALS: f64 = 8640.0;
/// Prometheus' `predict_linear(x[6h], 4*3600) > limit`.
pub const PREDICT_LINEAR: (f64, f64) = (6.0 * 3600.0, 4.0 * 3600.0);

/// How far back each evaluation sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum History {
    /// Everything up to `now`.
    All,
    /// The last [`AGENT_WINDOW_INTERVALS`] intervals and the persistence look-back, as the
    /// agent's detector.
    Agent,
}

/// How to evaluate.
#[derive(Debug, Clone)]
pub struct EvalOptions {
    /// Engine evaluations per series (evenly spaced, at least 6 intervals apart).
    pub evaluations: usize,
    pub history: History,
    /// Worker threads (draws are evaluated in parallel).
    pub threads: usize,
    /// `PARAM=VALUE` overrides applied to `Params::for_interval(interval)`.
    pub overrides: Vec<String>,
    /// Print progress to stderr.
    pub progress: bool,
    /// Series without restart records get the restarts inferred from their resets
    /// (`leakwatch_detect::infer_restarts`), as `leakwatch analyze --infer-restarts`.
    pub infer_restarts: bool,
}

impl Default for EvalOptions {
    fn default() -> EvalOptions {
        EvalOptions {
            evaluations: 300,
            history: History::All,
            threads: 2,
            overrides: Vec::new(),
            progress: false,
            infer_restarts: false,
        }
    }
}

impl EvalOptions {
    /// The engine's parameters for a series sampled every `interval` seconds.
    pub fn params(&self, interval: f64) -> Result<Params, String> {
        let mut params = Params::for_interval(interval);
        for assignment in &self.overrides {
            set_param(&mut params, assignment)?;
        }
        Ok(params)
    }
}

/// One draw's scores.
#[derive(Debug, Clone, Serialize)]
pub struct DrawScore {
    pub id: String,
    pub class: Class,
    pub interval: f64,
    pub unit: Unit,
    pub notes: String,
    pub samples: usize,
    /// First sample time.
    pub start: f64,
    pub span_hours: f64,
    pub restarts: usize,
    /// Whether the engine's first false alarm came from a process life younger than
    /// `confirm_samples`: confirmed by the urgency rule, not by a day of evidence.
    pub first_false_alarm_urgent: Option<bool>,
    /// The same for the engine's detection of a leak.
    pub detection_urgent: Option<bool>,
    pub score: CaseScore,
}

impl DrawScore {
    fn leak(&self) -> bool {
        self.score.leak
    }

    /// A leak that reaches its limit within the series.
    fn reaches_limit(&self) -> bool {
        self.score.exhaustion.is_some()
    }
}

/// The restarts inferred from every series: [`leakwatch_detect::infer_target_restarts`].
pub fn inferred_restarts(series: &[leakwatch_detect::Series]) -> Vec<leakwatch_detect::Restart> {
    leakwatch_detect::infer_target_restarts(&series.iter().collect::<Vec<_>>())
}

/// Evaluates one draw.
pub fn evaluate_draw(spec: &DrawSpec, options: &EvalOptions) -> Result<DrawScore, String> {
    let mut generated = generate(spec);
    if options.infer_restarts && generated.case.restarts.is_empty() {
        generated.case.restarts = inferred_restarts(&generated.case.series);
    }
    let params = options.params(spec.interval)?;
    let case = &generated.case;
    let times = evaluation_times(case, options.evaluations, 6.0 * spec.interval);
    let history = match options.history {
        History::All => None,
        History::Agent => {
            Some((AGENT_WINDOW_INTERVALS + params.persist_samples as f64) * spec.interval)
        }
    };
    let score = score_case_at(case, &times, &params, history, PREDICT_LINEAR);
    // How old the process life was at time `t` as the engine saw it: since the last
    // restart, or the first sample it was given (with a history window, the first after
    // `t - history`).
    let points = &case.series[0].points;
    let young = |t: f64| {
        let from = history.map_or(f64::NEG_INFINITY, |h| t - h);
        let first = points[points
            .partition_point(|p| p.t <= from)
            .min(points.len() - 1)]
        .t;
        let life_start = case
            .restarts
            .iter()
            .map(|r| r.t)
            .filter(|&r| r <= t && r > from)
            .fold(first, f64::max);
        t - life_start < params.confirm_samples as f64 * spec.interval
    };
    let first_false_alarm_urgent = score
        .leakwatch
        .first_false_alarm
        .as_ref()
        .map(|(t, _)| young(*t));
    let detection_urgent = score.leakwatch.detected_at.map(young);
    Ok(DrawScore {
        id: spec.id(),
        class: spec.class,
        interval: spec.interval,
        unit: generated.unit,
        notes: generated.notes,
        samples: case.sample_count(),
        start: case.start,
        span_hours: (case.end - case.start) / 3600.0,
        restarts: case.restarts.len(),
        first_false_alarm_urgent,
        detection_urgent,
        score,
    })
}

/// Evaluates every draw, `options.threads` at a time (the costliest, 1 s draws, first);
/// results keep the order of `specs`.
pub fn evaluate(specs: &[DrawSpec], options: &EvalOptions) -> Result<Vec<DrawScore>, String> {
    // Fail on a bad override before starting the workers.
    options.params(10.0)?;
    let mut order: Vec<usize> = (0..specs.len()).collect();
    order.sort_by(|&a, &b| specs[a].interval.total_cmp(&specs[b].interval));
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let started = Instant::now();
    let results: Mutex<Vec<Option<Result<DrawScore, String>>>> =
        Mutex::new(vec![None; specs.len()]);
    std::thread::scope(|scope| {
        for _ in 0..options.threads.max(1) {
            scope.spawn(|| loop {
                let slot = next.fetch_add(1, Ordering::Relaxed);
                let Some(&index) = order.get(slot) else {
                    break;
                };
                let score = evaluate_draw(&specs[index], options);
                results.lock().unwrap_or_else(|e| e.into_inner())[index] = Some(score);
                let finished = done.fetch_add(1, Ordering::Relaxed) + 1;
                if options.progress && (finished % 20 == 0 || finished == specs.len()) {
                    eprintln!(
                        "evaluated {finished}/{} draws in {:.0}s",
                        specs.len(),
                        started.elapsed().as_secs_f64()
                    );
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err("draw not evaluated".to_string())))
        .collect()
}

// ----------------------------------------------------------------------------------------
// Aggregation
// ----------------------------------------------------------------------------------------

/// One detector over a group of draws.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Rates {
    pub series: usize,
    /// Healthy series with at least one alarm.
    pub healthy: usize,
    pub healthy_alarmed: usize,
    /// Of those, how many were first alarmed in a life younger than `confirm_samples`
    /// (the urgency rule), as opposed to after a day of evidence (engine only).
    pub healthy_alarmed_urgent: usize,
    /// Hours in false alarm, over all series of the group (on leak series: before the
    /// leak began).
    pub false_alarm_hours: f64,
    /// Leak series with a false alarm (before the leak began).
    pub leaks_alarmed_early: usize,
    pub leaks: usize,
    pub detected: usize,
    /// Leaks that reach their limit within the series, and how many of them were found.
    pub reaching: usize,
    pub detected_reaching: usize,
    /// Over detected leaks, hours.
    pub median_delay_hours: Option<f64>,
    /// Over leaks that reach their limit, misses counting as zero lead, hours.
    pub median_lead_hours: Option<f64>,
}

impl Rates {
    /// `alerted`: `pick` gives the engine's alarms (confirmed findings), whose urgency
    /// [`DrawScore::first_false_alarm_urgent`] tells.
    fn of<'a>(
        draws: impl IntoIterator<Item = &'a DrawScore>,
        pick: impl Fn(&CaseScore) -> &DetectorScore,
        alerted: bool,
    ) -> Rates {
        let mut rates = Rates::default();
        let mut delays = Vec::new();
        let mut leads = Vec::new();
        for draw in draws {
            let score = pick(&draw.score);
            rates.series += 1;
            rates.false_alarm_hours += score.false_alarm_seconds / 3600.0;
            if !draw.leak() {
                rates.healthy += 1;
                if score.false_alarms > 0 {
                    rates.healthy_alarmed += 1;
                    if alerted && draw.first_false_alarm_urgent == Some(true) {
                        rates.healthy_alarmed_urgent += 1;
                    }
                }
                continue;
            }
            rates.leaks += 1;
            if score.false_alarms > 0 {
                rates.leaks_alarmed_early += 1;
            }
            if score.detected {
                rates.detected += 1;
                delays.extend(score.delay_seconds.map(|s| s / 3600.0));
            }
            if draw.reaches_limit() {
                rates.reaching += 1;
                if score.detected {
                    rates.detected_reaching += 1;
                }
                leads.push(score.lead_seconds.unwrap_or(0.0).max(0.0) / 3600.0);
            }
        }
        rates.median_delay_hours = stats::median(&mut delays);
        rates.median_lead_hours = stats::median(&mut leads);
        rates
    }
}

/// One row of a table: a class, an interval or everything.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    pub name: String,
    pub leak: bool,
    pub leakwatch: Rates,
    /// Counting suspected findings too.
    pub shown: Rates,
    pub static_threshold: Rates,
    pub predict_linear: Rates,
}

impl Row {
    fn of(name: String, leak: bool, draws: &[&DrawScore]) -> Row {
        Row {
            name,
            leak,
            leakwatch: Rates::of(draws.iter().copied(), |s| &s.leakwatch, true),
            shown: Rates::of(draws.iter().copied(), |s| &s.leakwatch_shown, false),
            static_threshold: Rates::of(draws.iter().copied(), |s| &s.static_threshold, false),
            predict_linear: Rates::of(draws.iter().copied(), |s| &s.predict_linear, false),
        }
    }
}

/// Issue 17's targets, measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Targets {
    /// Share of healthy series ever alarmed (target: at most 0.5%).
    pub healthy_alarmed_share: f64,
    /// The healthy class with the largest share (target: none above 2%).
    pub worst_healthy_class: Option<(String, f64)>,
    /// Share of leaks reaching their limit that were found (target: at least 95%).
    pub recall_reaching: f64,
    /// leakwatch's median lead over static 75%'s, on leaks reaching their limit (target:
    /// at least 3x).
    pub lead_ratio_vs_static: Option<f64>,
}

/// Everything the tables show.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub classes: Vec<Row>,
    pub intervals: Vec<Row>,
    pub healthy: Row,
    pub leaks: Row,
    pub targets: Targets,
}

fn share(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

pub fn summarize(draws: &[DrawScore]) -> Summary {
    let mut classes = Vec::new();
    for class in Class::ALL {
        let mine: Vec<&DrawScore> = draws.iter().filter(|d| d.class == class).collect();
        if !mine.is_empty() {
            classes.push(Row::of(class.name().to_string(), class.is_leak(), &mine));
        }
    }
    let mut intervals = Vec::new();
    for interval in crate::generate::INTERVALS {
        let mine: Vec<&DrawScore> = draws.iter().filter(|d| d.interval == interval).collect();
        if !mine.is_empty() {
            intervals.push(Row::of(seconds_label(interval), false, &mine));
        }
    }
    let healthy: Vec<&DrawScore> = draws.iter().filter(|d| !d.leak()).collect();
    let leaks: Vec<&DrawScore> = draws.iter().filter(|d| d.leak()).collect();
    let healthy = Row::of("healthy".to_string(), false, &healthy);
    let leaks = Row::of("leaks".to_string(), true, &leaks);
    let worst_healthy_class = classes
        .iter()
        .filter(|r| !r.leak)
        .map(|r| {
            (
                r.name.clone(),
                share(r.leakwatch.healthy_alarmed, r.leakwatch.healthy),
            )
        })
        .max_by(|a, b| a.1.total_cmp(&b.1));
    let lead_ratio_vs_static = match (
        leaks.leakwatch.median_lead_hours,
        leaks.static_threshold.median_lead_hours,
    ) {
        (Some(ours), Some(theirs)) if theirs > 0.0 => Some(ours / theirs),
        _ => None,
    };
    let targets = Targets {
        healthy_alarmed_share: share(healthy.leakwatch.healthy_alarmed, healthy.leakwatch.healthy),
        worst_healthy_class,
        recall_reaching: share(leaks.leakwatch.detected_reaching, leaks.leakwatch.reaching),
        lead_ratio_vs_static,
    };
    Summary {
        classes,
        intervals,
        healthy,
        leaks,
        targets,
    }
}

// ----------------------------------------------------------------------------------------
// Tables
// ----------------------------------------------------------------------------------------

pub fn seconds_label(seconds: f64) -> String {
    if seconds >= 60.0 && seconds % 60.0 == 0.0 {
        format!("{} min", seconds / 60.0)
    } else {
        format!("{seconds} s")
    }
}

fn ratio(part: usize, whole: usize) -> String {
    if whole == 0 {
        "-".to_string()
    } else {
        format!(
            "{part}/{whole} ({:.1}%)",
            100.0 * part as f64 / whole as f64
        )
    }
}

fn hours(value: Option<f64>) -> String {
    match value {
        Some(h) if h >= 100.0 => format!("{h:.0}h"),
        Some(h) => format!("{h:.1}h"),
        None => "-".to_string(),
    }
}

fn alarm_hours(h: f64) -> String {
    if h == 0.0 {
        "0".to_string()
    } else if h < 10.0 {
        format!("{h:.1}")
    } else {
        format!("{h:.0}")
    }
}

/// The tables, ready for BENCHMARKS.md; `details`: how many false alarms and misses to
/// list (0: none).
pub fn markdown(draws: &[DrawScore], summary: &Summary, details: usize) -> String {
    let mut out = String::new();
    out.push_str("Healthy classes: series ever alarmed (a confirmed leak finding) and hours in alarm; *of which urgent*: first alarmed in a process life younger than `confirm_samples` (a day), i.e. by the urgency rule; *shown* counts suspected findings too (listed, never alerted).\n\n");
    out.push_str("| class | series | leakwatch alarmed | of which urgent | alarm-h | shown (suspected too) | static 75% alarmed | alarm-h | predict_linear alarmed | alarm-h |\n");
    out.push_str("|---|---|---|---|---|---|---|---|---|---|\n");
    let healthy_rows = summary.classes.iter().filter(|r| !r.leak);
    for row in healthy_rows.chain(std::iter::once(&summary.healthy)) {
        let bold = row.name == "healthy";
        let name = if bold {
            "**all healthy**".to_string()
        } else {
            row.name.clone()
        };
        out.push_str(&format!(
            "| {name} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            row.leakwatch.healthy,
            ratio(row.leakwatch.healthy_alarmed, row.leakwatch.healthy),
            row.leakwatch.healthy_alarmed_urgent,
            alarm_hours(row.leakwatch.false_alarm_hours),
            ratio(row.shown.healthy_alarmed, row.shown.healthy),
            ratio(
                row.static_threshold.healthy_alarmed,
                row.static_threshold.healthy
            ),
            alarm_hours(row.static_threshold.false_alarm_hours),
            ratio(
                row.predict_linear.healthy_alarmed,
                row.predict_linear.healthy
            ),
            alarm_hours(row.predict_linear.false_alarm_hours),
        ));
    }
    out.push_str("\nLeak classes: *found* is a confirmed finding on the series after the leak began; *reach* counts the leaks that reach their limit within the series (restart-masked ones never do); lead is exhaustion minus detection over those, a miss counting as zero; *early* counts series alarmed before the leak began.\n\n");
    out.push_str("| class | series | reach | leakwatch found | found of reach | median delay | median lead | early | first shown (delay) | static 75% found of reach | lead | predict_linear found of reach | lead |\n");
    out.push_str("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    let leak_rows = summary.classes.iter().filter(|r| r.leak);
    for row in leak_rows.chain(std::iter::once(&summary.leaks)) {
        let name = if row.name == "leaks" {
            "**all leaks**".to_string()
        } else {
            row.name.clone()
        };
        let l = &row.leakwatch;
        out.push_str(&format!(
            "| {name} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            l.leaks,
            l.reaching,
            ratio(l.detected, l.leaks),
            ratio(l.detected_reaching, l.reaching),
            hours(l.median_delay_hours),
            hours(l.median_lead_hours),
            l.leaks_alarmed_early,
            hours(row.shown.median_delay_hours),
            ratio(
                row.static_threshold.detected_reaching,
                row.static_threshold.reaching
            ),
            hours(row.static_threshold.median_lead_hours),
            ratio(
                row.predict_linear.detected_reaching,
                row.predict_linear.reaching
            ),
            hours(row.predict_linear.median_lead_hours),
        ));
    }
    out.push_str("\nBy interval (leakwatch; static 75% lead for comparison):\n\n");
    out.push_str("| interval | healthy series | alarmed | leaks | found | reach | found of reach | median delay | median lead | static 75% lead |\n");
    out.push_str("|---|---|---|---|---|---|---|---|---|---|\n");
    for row in &summary.intervals {
        let l = &row.leakwatch;
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            row.name,
            l.healthy,
            ratio(l.healthy_alarmed, l.healthy),
            l.leaks,
            ratio(l.detected, l.leaks),
            l.reaching,
            ratio(l.detected_reaching, l.reaching),
            hours(l.median_delay_hours),
            hours(l.median_lead_hours),
            hours(row.static_threshold.median_lead_hours),
        ));
    }
    let t = &summary.targets;
    let verdict = |ok: bool| if ok { "met" } else { "NOT MET" };
    out.push_str("\nTargets (issue 17):\n\n");
    out.push_str(&format!(
        "- healthy series ever alarmed: {:.2}% (target at most 0.5%: {})\n",
        100.0 * t.healthy_alarmed_share,
        verdict(t.healthy_alarmed_share <= 0.005)
    ));
    if let Some((class, worst)) = &t.worst_healthy_class {
        out.push_str(&format!(
            "- worst healthy class: {class} at {:.1}% (target no class above 2%: {})\n",
            100.0 * worst,
            verdict(*worst <= 0.02)
        ));
    }
    out.push_str(&format!(
        "- leaks reaching their limit found: {:.1}% (target at least 95%: {})\n",
        100.0 * t.recall_reaching,
        verdict(t.recall_reaching >= 0.95)
    ));
    match t.lead_ratio_vs_static {
        Some(r) => out.push_str(&format!(
            "- median lead, leakwatch / static 75%: {r:.2}x (target at least 3x: {})\n",
            verdict(r >= 3.0)
        )),
        None => out.push_str("- median lead, leakwatch / static 75%: n/a\n"),
    }
    let cost: Vec<f64> = draws.iter().map(|d| d.score.engine_ms_mean).collect();
    let worst = draws
        .iter()
        .map(|d| d.score.engine_ms_max)
        .fold(0.0, f64::max);
    let evaluations: usize = draws.iter().map(|d| d.score.evaluations).sum();
    out.push_str(&format!(
        "\n{} series, {} samples, {} engine evaluations; engine cost per evaluation: mean {:.1} ms, worst {:.1} ms.\n",
        draws.len(),
        draws.iter().map(|d| d.samples).sum::<usize>(),
        evaluations,
        cost.iter().sum::<f64>() / cost.len().max(1) as f64,
        worst
    ));
    if details > 0 {
        out.push_str(&details_markdown(draws, details));
    }
    out
}

/// The false alarms on healthy series and the misses among leaks reaching their limit,
/// with what was drawn: where the engine should look.
pub fn details_markdown(draws: &[DrawScore], limit: usize) -> String {
    let mut out = String::new();
    let alarms: Vec<&DrawScore> = draws
        .iter()
        .filter(|d| d.score.leakwatch.false_alarms > 0)
        .collect();
    out.push_str(&format!(
        "\nFalse alarms ({} series; first {} listed): id, interval, unit, first alarm (hours after start), alarm-hours, what was drawn\n\n",
        alarms.len(),
        alarms.len().min(limit)
    ));
    for d in alarms.iter().take(limit) {
        let at = d
            .score
            .leakwatch
            .first_false_alarm
            .as_ref()
            .map_or(f64::NAN, |(t, _)| (t - d.start) / 3600.0);
        out.push_str(&format!(
            "- `{}` {} {:?}: at {:.1}h{}, {:.1} alarm-h: {}\n",
            d.id,
            seconds_label(d.interval),
            d.unit,
            at,
            if d.first_false_alarm_urgent == Some(true) {
                " (urgent)"
            } else {
                ""
            },
            d.score.leakwatch.false_alarm_seconds / 3600.0,
            d.notes
        ));
    }
    let misses: Vec<&DrawScore> = draws
        .iter()
        .filter(|d| d.leak() && d.reaches_limit() && !d.score.leakwatch.detected)
        .collect();
    out.push_str(&format!(
        "\nMissed leaks that reached their limit ({}; first {} listed): id, interval, unit, static 75% lead, what was drawn\n\n",
        misses.len(),
        misses.len().min(limit)
    ));
    for d in misses.iter().take(limit) {
        out.push_str(&format!(
            "- `{}` {} {:?}: static lead {}: {}\n",
            d.id,
            seconds_label(d.interval),
            d.unit,
            hours(d.score.static_threshold.lead_seconds.map(|s| s / 3600.0)),
            d.notes
        ));
    }
    out
}

// ----------------------------------------------------------------------------------------
// Live: the fast preset at 1 s
// ----------------------------------------------------------------------------------------

/// One live draw: a steady leak (or a flat control) at 1 s, judged with `Params::fast(1)`
/// at every sample.
#[derive(Debug, Clone, Serialize)]
pub struct LiveScore {
    pub leak: bool,
    /// Leak rate over the noise's standard deviation, per sample.
    pub signal_to_noise: f64,
    /// Samples from the onset to the first leak finding shown (suspected or confirmed).
    pub shown_after: Option<usize>,
    /// Samples from the onset to the first confirmed one.
    pub confirmed_after: Option<usize>,
    /// Controls: a leak finding was shown / confirmed at some sample.
    pub false_shown: bool,
    pub false_confirmed: bool,
}

/// `count` steady leaks and `count` flat controls at 1 s, from `seed`. Leaks: a base of
/// 20-300 objects, Gaussian noise of sd 0.5-3 rounded to integers, a linear leak from 20-120
/// s after the start whose rate per sample is 0.3-5 times the noise's sd (log-uniform),
/// followed for 150 samples. Controls: the same without the leak.
pub fn live(seed: u64, count: usize) -> Vec<LiveScore> {
    let params = Params::fast(1.0);
    let mut out = Vec::new();
    for index in 0..2 * count {
        let leak = index < count;
        let mut rng = Rng::new(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ index as u64);
        let base = rng.between(20.0, 300.0);
        let sd = rng.between(0.5, 3.0);
        let onset = rng.between(20.0, 120.0).round() as usize;
        let snr = (rng.between(0.3f64.ln(), 5.0f64.ln())).exp();
        let rate = if leak { snr * sd } else { 0.0 };
        let n = onset + 150;
        let start = 1_800_000_000.0;
        let points: Vec<Point> = (0..n)
            .map(|i| {
                let grown = rate * i.saturating_sub(onset) as f64;
                Point::new(
                    start + i as f64,
                    (base + grown + sd * rng.normal()).round().max(0.0),
                )
            })
            .collect();
        let key = SeriesKey::from_text("live", "threads", "");
        let mut score = LiveScore {
            leak,
            signal_to_noise: if leak { snr } else { 0.0 },
            shown_after: None,
            confirmed_after: None,
            false_shown: false,
            false_confirmed: false,
        };
        for end in 2..=n {
            let now = start + (end - 1) as f64;
            let series = [Series::new(
                key.clone(),
                points[..end].to_vec(),
                Some(32_768.0),
            )];
            let findings = analyze(&series, &[], now, &params);
            let leaks: Vec<_> = findings
                .iter()
                .filter(|f| f.kind == FindingKind::Leak)
                .collect();
            let confirmed = leaks.iter().any(|f| f.state == FindingState::Confirmed);
            let after = (end - 1).checked_sub(onset);
            if leak {
                if let Some(after) = after {
                    if !leaks.is_empty() && score.shown_after.is_none() {
                        score.shown_after = Some(after);
                    }
                    if confirmed && score.confirmed_after.is_none() {
                        score.confirmed_after = Some(after);
                        break;
                    }
                }
            } else {
                score.false_shown |= !leaks.is_empty();
                score.false_confirmed |= confirmed;
            }
        }
        out.push(score);
    }
    out
}

fn quantile_usize(values: &[usize], q: f64) -> String {
    let mut v: Vec<f64> = values.iter().map(|&x| x as f64).collect();
    match stats::quantile(&mut v, q) {
        Some(x) => format!("{x:.0}"),
        None => "-".to_string(),
    }
}

/// The live check as a small markdown table, by signal-to-noise band.
pub fn live_markdown(scores: &[LiveScore]) -> String {
    let mut out = String::new();
    out.push_str("| leak rate / noise sd | leaks | shown within 30 samples | median shown after | p90 | confirmed within 60 | median confirmed after |\n");
    out.push_str("|---|---|---|---|---|---|---|\n");
    for (label, low, high) in [
        ("0.3-1", 0.0, 1.0),
        ("1-2", 1.0, 2.0),
        ("2-5", 2.0, f64::INFINITY),
        ("all", 0.0, f64::INFINITY),
    ] {
        let mine: Vec<&LiveScore> = scores
            .iter()
            .filter(|s| s.leak && s.signal_to_noise >= low && s.signal_to_noise < high)
            .collect();
        let shown: Vec<usize> = mine.iter().filter_map(|s| s.shown_after).collect();
        let confirmed: Vec<usize> = mine.iter().filter_map(|s| s.confirmed_after).collect();
        out.push_str(&format!(
            "| {label} | {} | {} | {} | {} | {} | {} |\n",
            mine.len(),
            ratio(shown.iter().filter(|&&s| s <= 30).count(), mine.len()),
            quantile_usize(&shown, 0.5),
            quantile_usize(&shown, 0.9),
            ratio(confirmed.iter().filter(|&&s| s <= 60).count(), mine.len()),
            quantile_usize(&confirmed, 0.5),
        ));
    }
    let controls: Vec<&LiveScore> = scores.iter().filter(|s| !s.leak).collect();
    out.push_str(&format!(
        "\nFlat controls: {} shown as suspected, {} confirmed.\n",
        ratio(
            controls.iter().filter(|s| s.false_shown).count(),
            controls.len()
        ),
        ratio(
            controls.iter().filter(|s| s.false_confirmed).count(),
            controls.len()
        ),
    ));
    out
}
