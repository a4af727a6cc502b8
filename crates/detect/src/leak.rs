//! The leak test: does the floor of a resource grow in a sustained way in its current
//! regime, seen through restarts, sawtooth and steps, and when does it reach the limit?
//!
//! A window of samples is judged by [`judge`], cheapest checks first:
//! 1. enough samples and blocks;
//! 2. shape of the floor: rising overall by a relevant fraction, rising in both halves
//!    (sustained), not decelerating into a plateau, not a single jump;
//! 3. history: the current floor is above what the life already saw over the last
//!    `history_seasons` seasons (a week), and the rise is larger than the floor usually
//!    falls over as long a span;
//! 4. significance: Mann-Kendall on the floors, variance inflated for autocorrelation;
//! 5. rate: Theil-Sen slope and its confidence interval, and the forecast;
//! 6. confirmation: a regime whose life (or pooled lives) spans less than
//!    `confirm_samples` is only *suspected*, unless the forecast is urgent; within one
//!    life, a climb converging below its limit (a fill) is suspected at any age.
//!
//! [`judge_current_life`] picks the window (the current regime) among change points of the
//! current process life; [`judge_across_lives`] pools whole lives when restarts keep
//! resetting the value, combining per-life Mann-Kendall statistics and within-life slopes.

use crate::blocks::{floor_blocks, sawtooth_block_len, Block};
use crate::changepoint::regime_starts;
use crate::model::Point;
use crate::params::Params;
use crate::stats::{
    hamed_rao_factor, mann_kendall, median, median_of, pairwise_slopes, quantile, slope_interval,
    MannKendall, SlopeEstimate,
};
use std::fmt;

/// Everything the judgement of one series needs besides its samples.
pub(crate) struct Context<'a> {
    pub params: &'a Params,
    /// Normal quantile for the two-sided slope interval.
    pub z_interval: f64,
    /// Measured seconds between samples of this series.
    pub interval: f64,
    pub now: f64,
    pub limit: Option<f64>,
    /// Part of the limit held by the rest of the resource: for a part such as
    /// "threads Analytics-#", the total minus this part. The limit is reached when the
    /// part plus everything else reaches it.
    pub others: f64,
}

impl Context<'_> {
    fn season_seconds(&self) -> f64 {
        self.params.season_samples as f64 * self.interval
    }

    fn confirm_seconds(&self) -> f64 {
        self.params.confirm_samples as f64 * self.interval
    }

    fn urgent_seconds(&self) -> f64 {
        self.params.urgent_horizon_samples as f64 * self.interval
    }
}

/// A growth regime that passed every test.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Trend {
    /// Theil-Sen slope of the floor, per second, and its confidence interval.
    pub slope: f64,
    pub slope_upper: f64,
    pub slope_lower: f64,
    pub p_value: f64,
    /// Fitted floor at `now`.
    pub level_now: f64,
    /// Typical swing above the floor in recent blocks (sawtooth height, noise).
    pub excursion: f64,
    /// First and last sample of the evidence.
    pub start: f64,
    pub end: f64,
    /// Number of process lives pooled (1 when judged within the current life).
    pub lives: usize,
    /// Typical duration of one pooled segment, seconds.
    pub segment_seconds: f64,
    pub eta: Option<f64>,
    pub eta_conservative: Option<f64>,
    /// Seen over at least `confirm_samples`, or urgent, and not a fill converging below
    /// its limit; otherwise only suspected.
    pub confirmed: bool,
    /// Old enough or urgent, but a fill levelling off below its limit: suspected.
    pub levelling_off: bool,
}

/// Why a window was not called a leak.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Rejection {
    TooShort { samples: usize, blocks: usize },
    NotRising,
    TooSmall { relative_growth: f64 },
    Unsustained { early_share: f64, recent_share: f64 },
    Plateau { recent_over_early: f64 },
    SingleStep { largest_step_share: f64 },
    NotNewHigh { current: f64, earlier_p95: f64 },
    WithinNoise { rise: f64, usual_fall: f64 },
    NotSignificant { p_value: f64 },
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejection::TooShort { samples, blocks } => {
                write!(f, "too short ({samples} samples, {blocks} blocks)")
            }
            Rejection::NotRising => write!(f, "floor not rising"),
            Rejection::TooSmall { relative_growth } => {
                write!(
                    f,
                    "growth {:.2}% of level is too small",
                    relative_growth * 100.0
                )
            }
            Rejection::Unsustained {
                early_share,
                recent_share,
            } => write!(
                f,
                "not sustained (early half {early_share:.2}, recent half {recent_share:.2} of rise)"
            ),
            Rejection::Plateau { recent_over_early } => {
                write!(
                    f,
                    "decelerating to a plateau (recent/early rise {recent_over_early:.2})"
                )
            }
            Rejection::SingleStep { largest_step_share } => {
                write!(f, "one step carries {largest_step_share:.2} of the rise")
            }
            Rejection::NotNewHigh {
                current,
                earlier_p95,
            } => write!(
                f,
                "floor {current} is not above earlier floors ({earlier_p95})"
            ),
            Rejection::WithinNoise { rise, usual_fall } => write!(
                f,
                "rise {rise} is within the noise: the floor usually falls {usual_fall} over as long a span"
            ),
            Rejection::NotSignificant { p_value } => {
                write!(f, "trend not significant (p={p_value:.2e})")
            }
        }
    }
}

/// How the window relates to the rest of the series.
pub(crate) enum Scope<'a> {
    /// One window inside the current life; `life` is the whole usable life (for the
    /// new-high test) and `life_start` its first sample time (for the season test).
    CurrentLife { life: &'a [Point], life_start: f64 },
    /// Whole lives pooled; `current` is the latest value when the current life is not
    /// among the segments (it just restarted).
    Lives { current: Option<f64> },
}

/// Rise statistics of one segment's floor blocks.
struct Shape {
    start: f64,
    end: f64,
    early_rise: f64,
    recent_rise: f64,
    largest_step: f64,
}

fn median_floor(blocks: &[Block]) -> f64 {
    median_of(&blocks.iter().map(|b| b.floor).collect::<Vec<_>>()).unwrap_or(f64::NAN)
}

fn shape(blocks: &[Block]) -> Shape {
    let m = blocks.len();
    // Levels are medians over an eighth of the window: robust to single odd blocks, yet
    // narrow enough that a step shows up as one jump.
    let w = (m / 8).max(1);
    let start = median_floor(&blocks[..w]);
    let end = median_floor(&blocks[m - w..]);
    let mid_low = (m / 2).saturating_sub(w / 2).min(m - w);
    let middle = median_floor(&blocks[mid_low..mid_low + w]);
    let mut largest_step = f64::NEG_INFINITY;
    for i in w..=m - w {
        let before = median_floor(&blocks[i - w..i]);
        let after = median_floor(&blocks[i..i + w]);
        largest_step = largest_step.max(after - before);
    }
    Shape {
        start,
        end,
        early_rise: middle - start,
        recent_rise: end - middle,
        largest_step: largest_step.max(0.0),
    }
}

/// How far the floor usually *falls* over spans of `window_blocks` blocks along `floors`:
/// the 95th percentile of `max(0, level(i) - level(i + span))`, with levels estimated as in
/// [`shape`] (medians over an eighth of the span). Falls, not changes in general, because
/// the history may itself contain the leak: growth does not fall, noise falls as often as
/// it rises. `None` when the history holds fewer than 16 such spans.
fn usual_fall(floors: &[f64], window_blocks: usize) -> Option<f64> {
    let w = (window_blocks / 8).max(1);
    let span = window_blocks.checked_sub(w)?;
    if floors.len() < window_blocks + 16 {
        return None;
    }
    let levels: Vec<f64> = floors
        .windows(w)
        .map(|run| median_of(run).unwrap_or(f64::NAN))
        .collect();
    let mut falls: Vec<f64> = (0..levels.len() - span)
        .map(|i| (levels[i] - levels[i + span]).max(0.0))
        .collect();
    quantile(&mut falls, 0.95)
}

/// A run of samples from one life, with the sawtooth block length measured on its life
/// (computed once per life rather than once per candidate window).
#[derive(Clone, Copy)]
pub(crate) struct Segment<'a> {
    pub points: &'a [Point],
    pub sawtooth: Option<usize>,
}

impl Segment<'_> {
    /// Block length for this segment given a block budget: at most `budget` blocks, at
    /// least `min_block_samples` samples, and long enough to see through the sawtooth.
    fn block_len(&self, budget: usize, params: &Params) -> usize {
        let by_budget = self.points.len().div_ceil(budget.max(1));
        let base = by_budget.max(params.min_block_samples).max(1);
        match self.sawtooth {
            // A sawtooth block that would leave too few blocks is not usable here.
            Some(saw) if saw * params.min_regime_blocks <= self.points.len() => base.max(saw),
            _ => base,
        }
    }
}

/// Judges `segments` (chronological; each a run of samples from one life) as one regime.
pub(crate) fn judge(
    segments: &[Segment],
    scope: &Scope,
    ctx: &Context,
) -> Result<Trend, Rejection> {
    let floors = cut_floors(segments, ctx.params)?;
    let rise = check_shape(&floors.shapes, ctx.params)?;
    if let Scope::CurrentLife { life, .. } = scope {
        check_history(segments, life, &floors, rise.total, ctx)?;
    }
    let (estimate, p_value) = estimate_slope(&floors.blocks, ctx)?;
    let slope = estimate.slope;
    let newest = &floors.blocks[floors.blocks.len() - 1];
    let forecast = forecast(newest, scope, &estimate, ctx);

    let start = segments[0].points[0].t;
    let end = segments[segments.len() - 1]
        .points
        .last()
        .map_or(start, |p| p.t);
    let span_seconds = match scope {
        Scope::CurrentLife { life_start, .. } => end - life_start,
        Scope::Lives { .. } => end - start,
    };
    let newest_shape = &floors.shapes[floors.shapes.len() - 1];
    let old_or_urgent = is_confirmed(span_seconds, newest_shape, &rise, &forecast, ctx);
    let levelling_off = old_or_urgent
        && match scope {
            Scope::CurrentLife { life, .. } => {
                fills_below_limit(newest, life, segments[0].sawtooth, &forecast, ctx)
            }
            Scope::Lives { .. } => false,
        };

    let mut durations: Vec<f64> = segments
        .iter()
        .map(|s| s.points.last().map_or(0.0, |p| p.t) - s.points[0].t)
        .collect();
    Ok(Trend {
        slope,
        slope_upper: estimate.upper.max(slope),
        slope_lower: estimate.lower.min(slope),
        p_value,
        level_now: forecast.level_now,
        excursion: forecast.excursion,
        start,
        end,
        lives: segments.len(),
        segment_seconds: median(&mut durations).unwrap_or(0.0),
        eta: forecast.eta,
        eta_conservative: forecast.eta_conservative,
        confirmed: old_or_urgent && !levelling_off,
        levelling_off,
    })
}

/// The floor of a regime: each segment's floor blocks (segments with fewer than two left
/// out) and their shapes.
struct Floors {
    blocks: Vec<Vec<Block>>,
    shapes: Vec<Shape>,
    /// Block length of the newest segment, for the history it is compared with.
    newest_block_len: usize,
}

/// The rises of a regime's floor, summed over its segments.
struct Rise {
    total: f64,
    early: f64,
    recent: f64,
}

/// Where the newest segment's floor is heading.
struct Forecast {
    level_now: f64,
    excursion: f64,
    eta: Option<f64>,
    eta_conservative: Option<f64>,
}

/// Cuts each segment into floor blocks within the block budget; too few samples or
/// blocks is [`Rejection::TooShort`].
fn cut_floors(segments: &[Segment], params: &Params) -> Result<Floors, Rejection> {
    let n_samples: usize = segments.iter().map(|s| s.points.len()).sum();
    if n_samples < params.min_regime_samples || segments.is_empty() {
        return Err(Rejection::TooShort {
            samples: n_samples,
            blocks: 0,
        });
    }
    let per_segment_budget = (params.max_blocks / segments.len()).max(params.min_blocks_per_life);
    let mut all_blocks: Vec<Vec<Block>> = Vec::with_capacity(segments.len());
    let mut newest_block_len = 1;
    for segment in segments {
        newest_block_len = segment.block_len(per_segment_budget, params);
        all_blocks.push(floor_blocks(segment.points, newest_block_len));
    }
    all_blocks.retain(|b| b.len() >= 2);
    let n_blocks: usize = all_blocks.iter().map(|b| b.len()).sum();
    if all_blocks.is_empty() || n_blocks < params.min_regime_blocks {
        return Err(Rejection::TooShort {
            samples: n_samples,
            blocks: n_blocks,
        });
    }
    let shapes = all_blocks.iter().map(|b| shape(b)).collect();
    Ok(Floors {
        blocks: all_blocks,
        shapes,
        newest_block_len,
    })
}

/// The shape of the floor: rising overall by a relevant fraction of its level, in both
/// halves, not decelerating into a plateau, and not by a single step.
fn check_shape(shapes: &[Shape], params: &Params) -> Result<Rise, Rejection> {
    let total_rise: f64 = shapes.iter().map(|s| s.end - s.start).sum();
    if total_rise <= 0.0 {
        return Err(Rejection::NotRising);
    }
    let level_sum: f64 = shapes.iter().map(|s| s.end.abs()).sum();
    let relative_growth = if level_sum > 0.0 {
        total_rise / level_sum
    } else {
        f64::INFINITY
    };
    if relative_growth < params.min_relative_growth {
        return Err(Rejection::TooSmall { relative_growth });
    }
    let early: f64 = shapes.iter().map(|s| s.early_rise).sum();
    let recent: f64 = shapes.iter().map(|s| s.recent_rise).sum();
    if early < params.min_half_share * total_rise || recent < params.min_half_share * total_rise {
        return Err(Rejection::Unsustained {
            early_share: early / total_rise,
            recent_share: recent / total_rise,
        });
    }
    if recent < params.plateau_ratio * early {
        return Err(Rejection::Plateau {
            recent_over_early: recent / early,
        });
    }
    let steps: f64 = shapes.iter().map(|s| s.largest_step).sum();
    if steps > params.max_step_share * total_rise {
        return Err(Rejection::SingleStep {
            largest_step_share: steps / total_rise,
        });
    }
    Ok(Rise {
        total: total_rise,
        early,
        recent,
    })
}

/// Within the current life: the window's floor is a new high against the last season
/// before its middle, and rose more than the floor usually falls over as long a span.
fn check_history(
    segments: &[Segment],
    life: &[Point],
    floors: &Floors,
    total_rise: f64,
    ctx: &Context,
) -> Result<(), Rejection> {
    let params = ctx.params;
    // Compare with what the life did over the last `history_seasons` seasons before the
    // window's middle: a level the life already reached days ago (a cache refilling after
    // a flush, a weekly peak) is not growth, and noise that wanders slowly shows how far
    // it falls only over a long history.
    let window = segments[segments.len() - 1].points;
    let window_start = window[0].t;
    let window_middle = window[window.len() / 2].t;
    let from = window_start - ctx.season_seconds() * ctx.params.history_seasons.max(1) as f64;
    let lo = life.partition_point(|p| p.t < from);
    let hi = life.partition_point(|p| p.t < window_middle);
    let earlier = floor_blocks(&life[lo..hi], floors.newest_block_len);
    let earlier_floors: Vec<f64> = earlier.iter().map(|b| b.floor).collect();
    // A new high, so a daily cycle climbing back to yesterday's peak is not growth.
    let newest_shape = &floors.shapes[floors.shapes.len() - 1];
    let current = newest_shape.end;
    if let Some(earlier_p95) = quantile(&mut earlier_floors.clone(), 0.95) {
        if current < earlier_p95 + params.new_high_margin * total_rise {
            return Err(Rejection::NotNewHigh {
                current,
                earlier_p95,
            });
        }
    }
    // Larger than the floor's own wandering over spans as long as the window. Strongly
    // autocorrelated noise climbs for an hour now and then, and within that hour looks
    // like a trend to any test; its history shows how far it also falls in an hour.
    let window_blocks = floors.blocks[floors.blocks.len() - 1].len();
    if let Some(fall) = usual_fall(&earlier_floors, window_blocks) {
        let rise = newest_shape.end - newest_shape.start;
        if rise < params.noise_fall_factor * fall {
            return Err(Rejection::WithinNoise {
                rise,
                usual_fall: fall,
            });
        }
    }
    Ok(())
}

/// The slope (Theil-Sen within each segment, with its interval) and the p-value of the
/// trend (Mann-Kendall per segment, combined); not significant or not positive is a
/// rejection.
fn estimate_slope(
    all_blocks: &[Vec<Block>],
    ctx: &Context,
) -> Result<(SlopeEstimate, f64), Rejection> {
    // Slope: Theil-Sen over pairs within each segment only, so pairs never straddle a
    // restart (whose reset would read as "not growing").
    let mut slopes = Vec::new();
    for blocks in all_blocks {
        let times: Vec<f64> = blocks.iter().map(|b| b.t).collect();
        let floors: Vec<f64> = blocks.iter().map(|b| b.floor).collect();
        pairwise_slopes(&times, &floors, &mut slopes);
    }
    let Some(pooled_slope) = median(&mut slopes) else {
        return Err(Rejection::NotRising);
    };
    // Significance: Mann-Kendall per segment (independent across lives, so S and Var(S)
    // add), each inflated by its own Hamed-Rao factor.
    let mk = MannKendall::combine(all_blocks.iter().map(|blocks| {
        let times: Vec<f64> = blocks.iter().map(|b| b.t).collect();
        let floors: Vec<f64> = blocks.iter().map(|b| b.floor).collect();
        mann_kendall(&floors).inflate(hamed_rao_factor(&times, &floors, pooled_slope))
    }));
    let p_value = mk.p_increasing();
    if p_value > ctx.params.trend_p_value {
        return Err(Rejection::NotSignificant { p_value });
    }
    let Some(estimate) = slope_interval(&mut slopes, mk.var_s, ctx.z_interval) else {
        return Err(Rejection::NotRising);
    };
    if estimate.slope <= 0.0 {
        return Err(Rejection::NotRising);
    }
    Ok((estimate, p_value))
}

/// The forecast from the newest segment's fitted floor plus its typical swing: the limit
/// is hit when the top of the normal band reaches it, not the floor.
fn forecast(newest: &[Block], scope: &Scope, estimate: &SlopeEstimate, ctx: &Context) -> Forecast {
    let slope = estimate.slope;
    let mut intercepts: Vec<f64> = newest
        .iter()
        .map(|b| b.floor - slope * (b.t - ctx.now))
        .collect();
    let fitted_now = median(&mut intercepts).unwrap_or(f64::NAN);
    let tail = &newest[newest.len() - (newest.len() / 10).max(3).min(newest.len())..];
    let mut swings: Vec<f64> = tail.iter().map(|b| b.top - b.floor).collect();
    let swing = median(&mut swings).unwrap_or(0.0).max(0.0);
    let (level_now, excursion) = match scope {
        Scope::Lives {
            current: Some(current),
        } => (*current, 0.0),
        _ => (fitted_now, swing),
    };
    let (eta, eta_conservative) = match ctx.limit {
        Some(limit) => {
            let headroom = (limit - level_now - excursion - ctx.others).max(0.0);
            (
                Some(headroom / slope),
                Some(headroom / estimate.upper.max(slope)),
            )
        }
        None => (None, None),
    };
    Forecast {
        level_now,
        excursion,
        eta,
        eta_conservative,
    }
}

/// A regime is confirmed once its life (or its pooled lives) spans `confirm_samples` and,
/// with a limit, its conservative forecast reaches it within `alert_horizon_samples`;
/// before that, only when its forecast is urgent and it is not visibly converging below
/// the limit. Otherwise it is suspected: shown, not alerted (docs/detection.md,
/// "Lifecycle"). Within one life, [`fills_below_limit`] also holds back older climbs.
fn is_confirmed(
    span_seconds: f64,
    newest_shape: &Shape,
    rise: &Rise,
    forecast: &Forecast,
    ctx: &Context,
) -> bool {
    if span_seconds >= ctx.confirm_seconds() {
        // Old enough; with a limit, also near enough to it (`alert_horizon_samples`).
        let horizon = ctx.params.alert_horizon_samples as f64 * ctx.interval;
        return ctx.limit.is_none() || forecast.eta_conservative.is_none_or(|eta| eta <= horizon);
    }
    // Not visibly converging: when the recent half rose less than the early half (ratio
    // q < 1), a geometric continuation adds `recent * q / (1 - q)` more, which is exact
    // for a cache filling like 1 - exp(-t/tau). If even that stays below the limit, the
    // climb is a fill, not an emergency.
    let q = rise.recent / rise.early;
    let converges_below_limit = match ctx.limit {
        Some(limit) if q < 1.0 => {
            converged_level(forecast, ctx, newest_shape.recent_rise.max(0.0), q) < limit
        }
        _ => false,
    };
    !converges_below_limit
        && forecast
            .eta_conservative
            .is_some_and(|eta| eta <= ctx.urgent_seconds())
}

/// A climb within one life that is a fill levelling off below the limit, however long it
/// has been seen: in the window, or over the whole life after its warm-up (a window can be
/// a nearly straight piece of a long fill), the recent half rises at most
/// `converging_ratio` times as fast as the early half, and a geometric continuation at
/// that ratio (`recent rise × q / (1 − q)`, exact for `1 - exp(-t/τ)`) stays below the
/// limit. The first eighth of each is left out, so a warm-up or an early burst before a
/// steady leak is not read as a fill. Only with a limit: without one nothing is levelling
/// off *below*.
fn fills_below_limit(
    window: &[Block],
    life: &[Point],
    sawtooth: Option<usize>,
    forecast: &Forecast,
    ctx: &Context,
) -> bool {
    let Some(limit) = ctx.limit else {
        return false;
    };
    let ratio = ctx.params.converging_ratio.clamp(0.0, 0.95);
    let fills = |blocks: &[Block]| {
        halves(&blocks[blocks.len() / 8..]).is_some_and(|(early, recent)| {
            let q = recent.rate / early.rate;
            early.rate > 0.0
                && recent.rate > 0.0
                && q <= ratio
                && converged_level(forecast, ctx, recent.rise, q) < limit
        })
    };
    if fills(window) {
        return true;
    }
    // Not `Segment::block_len`: here the sawtooth's length applies even when it leaves
    // fewer than 9 blocks (then no fill is judged on the life), rather than blocks
    // shorter than the sawtooth whose floors would read its teeth as a levelling off.
    let block_len = life
        .len()
        .div_ceil(32)
        .max(sawtooth.unwrap_or(0))
        .max(ctx.params.min_block_samples)
        .max(1);
    fills(&floor_blocks(life, block_len))
}

/// Where a climb whose recent half rose `recent_rise` at `q` (< 1) times the early half's
/// rate levels off, on top of the usual excursion and the other processes sharing the
/// limit: a geometric continuation adds `recent_rise × q / (1 − q)`, exact for a fill like
/// `1 − exp(−t/τ)`.
fn converged_level(forecast: &Forecast, ctx: &Context, recent_rise: f64, q: f64) -> f64 {
    forecast.level_now + forecast.excursion + ctx.others + recent_rise * q / (1.0 - q)
}

/// The rise of a half of a floor.
#[derive(Clone, Copy)]
struct Half {
    rise: f64,
    /// Rise per block: the two halves' level estimates are not always equally far apart.
    rate: f64,
}

/// The floor's rise over its early and its recent half, levels taken as in [`shape`]
/// (medians over an eighth of the blocks); `None` with fewer than 8 blocks.
fn halves(blocks: &[Block]) -> Option<(Half, Half)> {
    let m = blocks.len();
    if m < 8 {
        return None;
    }
    let w = (m / 8).max(1);
    let at = [0, (m - w) / 2, m - w];
    let level = |i: usize| median_floor(&blocks[at[i]..at[i] + w]);
    let half = |k: usize| {
        let rise = level(k + 1) - level(k);
        Half {
            rise,
            rate: rise / (at[k + 1] - at[k]).max(1) as f64,
        }
    };
    Some((half(0), half(1)))
}

/// Samples skipped at the start of a life: warm-up, bounded by a fraction of the life.
fn warmup(params: &Params, life_len: usize) -> usize {
    let cap = (life_len as f64 * params.warmup_max_fraction) as usize;
    params.warmup_samples.min(cap)
}

/// Finds the current regime of the current life and judges it.
///
/// Candidate starts are the change points of the life's floor and a geometric ladder of
/// suffixes (the last half, quarter, ... down to the minimum regime), so a regime finer
/// than the coarse blocks can see is still judged at full resolution.
pub(crate) fn judge_current_life(
    life: &[Point],
    ctx: &Context,
    trace: &mut Option<&mut Vec<String>>,
) -> Option<Trend> {
    let params = ctx.params;
    let life_start = life.first()?.t;
    let usable = &life[warmup(params, life.len())..];
    let n = usable.len();
    if n < params.min_regime_samples {
        note(trace, || {
            format!("current life: {n} usable samples, too short")
        });
        return None;
    }
    let sawtooth = sawtooth_block_len(
        usable,
        params.sawtooth_drop_sigmas,
        params.min_regime_blocks,
    );
    let whole = Segment {
        points: usable,
        sawtooth,
    };
    let coarse_len = whole.block_len(params.max_blocks, params);
    let coarse = floor_blocks(usable, coarse_len);
    let skip = n - coarse.len() * coarse_len;
    // Candidates: change points first, then the ladder of suffixes. Near-duplicates
    // (windows within 15% of each other's length) keep the change point.
    let mut candidates: Vec<usize> = regime_starts(
        &coarse,
        params.changepoint_penalty,
        params.changepoint_min_blocks,
        params.max_changepoints,
    )
    .into_iter()
    .map(|block| skip + block * coarse_len)
    .collect();
    let mut length = n / 2;
    while length >= params.min_regime_samples {
        candidates.push(n - length);
        length /= 2;
    }
    let mut starts: Vec<usize> = Vec::new();
    for candidate in candidates {
        let window = n - candidate;
        let near = starts.iter().any(|&kept| {
            let other = n - kept;
            window.abs_diff(other) as f64 <= 0.15 * window.max(other) as f64
        });
        if window >= params.min_regime_samples && !near {
            starts.push(candidate);
        }
    }
    // Latest first; past the cap, the shortest windows go.
    starts.sort_unstable();
    starts.truncate(params.max_candidate_starts.max(1));
    starts.reverse();
    let scope = Scope::CurrentLife {
        life: usable,
        life_start,
    };
    let window = |start: usize| Segment {
        points: &usable[start..],
        sawtooth,
    };
    // Judge every candidate, latest first. The regime reported is the longest window that
    // passes (the most evidence, the steadiest rate for the forecast), unless a later
    // window grows significantly faster: then the leak has accelerated and the later
    // window is the current regime.
    let mut passing: Vec<Trend> = Vec::new();
    for &start in &starts {
        let verdict = judge(&[window(start)], &scope, ctx);
        note(trace, || match &verdict {
            Ok(trend) => format!(
                "regime from {:.0}: {} leak, {:.4}/h [{:.4}, {:.4}] (p={:.1e})",
                usable[start].t,
                if trend.confirmed {
                    "confirmed"
                } else if trend.levelling_off {
                    "suspected (levelling off below the limit)"
                } else {
                    "suspected"
                },
                trend.slope * 3600.0,
                trend.slope_lower * 3600.0,
                trend.slope_upper * 3600.0,
                trend.p_value
            ),
            Err(why) => format!("regime from {:.0}: {why}", usable[start].t),
        });
        if let Ok(trend) = verdict {
            passing.push(trend);
        }
    }
    let mut trend = passing.pop()?;
    for later in passing.into_iter().rev() {
        if later.slope_lower > trend.slope_upper {
            note(trace, || {
                format!("regime from {:.0} is significantly faster", later.start)
            });
            trend = later;
        }
    }
    Some(trend)
}

/// Judges growth pooled over the latest process lives (`lives` chronological, the last
/// one being the current life), for leaks that restarts keep resetting.
///
/// Lives are added newest first in doubling batches; the smallest batch that passes and is
/// confirmed wins (else the smallest that passes, suspected), so a leak that a recent
/// deploy introduced is not diluted by older, healthy lives.
pub(crate) fn judge_across_lives(
    lives: &[&[Point]],
    current_value: f64,
    ctx: &Context,
    trace: &mut Option<&mut Vec<String>>,
) -> Option<Trend> {
    let params = ctx.params;
    let n_lives = lives.len();
    let minimum_len = params.min_blocks_per_life * params.min_block_samples.max(1);
    // Trim warm-up from every life and the dying tail from every finished one.
    let mut usable: Vec<Segment> = Vec::new();
    let mut includes_current = false;
    for (i, life) in lives.iter().enumerate().rev() {
        let is_current = i + 1 == n_lives;
        let head = warmup(params, life.len());
        let tail = if is_current {
            0
        } else {
            params
                .life_tail_samples
                .min(life.len().saturating_sub(head))
        };
        let trimmed = &life[head..life.len() - tail];
        if trimmed.len() >= minimum_len {
            if is_current {
                includes_current = true;
            }
            usable.push(Segment {
                points: trimmed,
                sawtooth: sawtooth_block_len(
                    trimmed,
                    params.sawtooth_drop_sigmas,
                    params.min_blocks_per_life,
                ),
            });
        }
        if usable.len() >= params.max_pooled_lives {
            break;
        }
    }
    if usable.len() < params.min_pooled_lives.max(2) {
        return None;
    }
    let scope = Scope::Lives {
        current: if includes_current {
            None
        } else {
            Some(current_value)
        },
    };
    let mut batch = params.min_pooled_lives.max(2);
    // The smallest batch that confirms wins; failing that, the smallest that passes at all
    // (suspected: too few lives yet to span `confirm_samples`).
    let mut suspected: Option<Trend> = None;
    loop {
        let take = batch.min(usable.len());
        let mut segments: Vec<Segment> = usable[..take].to_vec();
        segments.reverse();
        let verdict = judge(&segments, &scope, ctx);
        note(trace, || match &verdict {
            Ok(trend) => format!(
                "{take} lives pooled: {} leak, {:.4}/h",
                if trend.confirmed {
                    "confirmed"
                } else if trend.levelling_off {
                    "suspected (levelling off below the limit)"
                } else {
                    "suspected"
                },
                trend.slope * 3600.0
            ),
            Err(why) => format!("{take} lives pooled: {why}"),
        });
        match verdict {
            Ok(trend) if trend.confirmed => return Some(trend),
            Ok(trend) => {
                suspected.get_or_insert(trend);
            }
            Err(_) => {}
        }
        if take == usable.len() {
            return suspected;
        }
        batch *= 2;
    }
}

pub(crate) fn note(trace: &mut Option<&mut Vec<String>>, line: impl FnOnce() -> String) {
    if let Some(lines) = trace.as_deref_mut() {
        lines.push(line());
    }
}
