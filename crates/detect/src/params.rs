//! Tuning parameters of the engine, all expressed in samples or fractions so that the same
//! method works on 10-second production samples and on minute-resolution exports.

use serde::{Deserialize, Serialize};

/// Every knob of the engine. Start from [`Params::production`] or [`Params::for_interval`];
/// `docs/detection.md` explains how each one is used.
///
/// Windows are counts of samples, not seconds: the engine converts them to time with the
/// interval it measures on each series, so a series sampled every minute is judged over
/// the same number of samples as one sampled every ten seconds unless the caller picks
/// parameters for its interval with [`Params::for_interval`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Params {
    /// Nominal seconds between samples. Only used where no series tells the real interval
    /// (a target that has restarts but no samples).
    pub interval_seconds: f64,

    // --- Decimation ---
    /// Upper bound on floor blocks per analysed window. Theil-Sen and Mann-Kendall are
    /// O(m^2) in the number of blocks, so this bounds the cost of one judgement.
    pub max_blocks: usize,
    /// Smallest block, in samples. Each block contributes its minimum (the floor), which
    /// sees through short spikes and GC sawtooth.
    pub min_block_samples: usize,
    /// A drop counts as a sawtooth "collection" when it exceeds this many robust standard
    /// deviations of the sample-to-sample differences. When such drops recur, blocks are
    /// made long enough to contain one, so every block minimum is a post-collection floor.
    pub sawtooth_drop_sigmas: f64,

    // --- What counts as a regime ---
    /// Fewest samples a growth regime must span before it can be called a leak. Shorter
    /// climbs are bursts or warm-up until proven otherwise.
    pub min_regime_samples: usize,
    /// Fewest floor blocks a regime must contain, so the statistics have something to work
    /// with even when blocks are long.
    pub min_regime_blocks: usize,
    /// Samples skipped at the start of each process life (warm-up: pools, JIT, caches).
    pub warmup_samples: usize,
    /// ...but never more than this fraction of a life, so short lives in a crash loop
    /// still contribute.
    pub warmup_max_fraction: f64,
    /// Penalty of one change point, in units of `noise_variance * ln(blocks)` (a BIC-like
    /// penalty). Higher values find fewer regime boundaries.
    pub changepoint_penalty: f64,
    /// Fewest blocks between two change points.
    pub changepoint_min_blocks: usize,
    /// Most change points looked for in one life (strongest first).
    pub max_changepoints: usize,
    /// Most candidate regime starts judged per series (latest first).
    pub max_candidate_starts: usize,

    // --- Trend tests ---
    /// One-sided p-value of the autocorrelation-corrected Mann-Kendall test below which
    /// growth is significant. Small, because the engine is re-run on every new sample.
    pub trend_p_value: f64,
    /// Two-sided confidence level of the Theil-Sen slope interval whose upper end gives
    /// the conservative exhaustion forecast.
    pub slope_confidence: f64,
    /// Growth over the regime, as a fraction of the current floor, below which a trend is
    /// too small to report.
    pub min_relative_growth: f64,
    /// Each half of the regime must carry at least this fraction of the total rise: growth
    /// must be sustained, not one climb followed by a plateau or preceded by nothing.
    pub min_half_share: f64,
    /// Plateau test: the rise over the recent half must be at least this fraction of the
    /// rise over the earlier half. A cache filling up decelerates below it.
    pub plateau_ratio: f64,
    /// A climb with a known limit whose recent half rises at most this fraction of its
    /// early half's rate (in the window, or over the halves of the whole life) is
    /// *converging*; if a geometric continuation at that ratio stays below the limit, it
    /// is a fill: suspected, never confirmed. Below 1 so that a steady climb, whose two
    /// halves differ by noise, is not mistaken for one.
    #[serde(default = "default_converging_ratio")]
    pub converging_ratio: f64,
    /// The largest single jump may carry at most this fraction of the total rise. One level
    /// shift is a deploy; repeated steps are a leak.
    pub max_step_share: f64,
    /// The current floor must exceed the 95th percentile of earlier floors (over the last
    /// `history_seasons` seasons before the regime's middle) by this fraction of the
    /// regime's rise: a daily cycle returning to yesterday's peak is not growth.
    pub new_high_margin: f64,
    /// The window's rise must be at least this many times the usual fall of the floor
    /// (95th percentile) over equally long spans during the look-back: strongly
    /// autocorrelated noise climbs for an hour now and then, and falls as far just as often.
    pub noise_fall_factor: f64,
    /// The "new high" and noise tests look back over this many seasons of the life before
    /// the window (production: 7, a week, so a weekly peak or a cache's earlier ceiling
    /// counts as seen and slow noise shows its falls; the look-back bounds their cost).
    #[serde(default = "default_history_seasons")]
    pub history_seasons: usize,
    /// Length of the slowest regular cycle to rule out (a day). A regime seen for less than
    /// a season is reported only when urgent.
    pub season_samples: usize,
    /// A trend seen for less than a season is reported when its conservative forecast
    /// reaches the limit within this many samples: waiting to rule out a daily cycle would
    /// be too late.
    pub urgent_horizon_samples: usize,
    /// A trend is *confirmed* once the process life it was seen in (or the lives pooled)
    /// spans this many samples, or when it is urgent (and, within one life, is not a fill:
    /// `converging_ratio`); before that it is only *suspected*:
    /// shown, not alerted (docs/detection.md, "Lifecycle"). Production: a season, so a
    /// daily cycle is ruled out first; fast: a minute's worth of samples, past the
    /// warm-up of pools and caches.
    #[serde(default = "default_confirm_samples")]
    pub confirm_samples: usize,
    /// A trend with a limit, seen for `confirm_samples`, is confirmed only when its
    /// conservative forecast reaches the limit within this many samples; a slower climb
    /// stays suspected (shown, not alerted) until it gets that close. Growth with no limit
    /// is not held back by it. Production: 7 days (decided on the tuning seeds,
    /// BENCHMARKS.md §3b, "An alert horizon"); fast: none.
    #[serde(default = "default_alert_horizon_samples")]
    pub alert_horizon_samples: usize,
    /// A trend that would be confirmed now is confirmed only if the same series, judged
    /// as it was this many samples ago (the samples and restarts known then, the limit as
    /// it is now), was confirmed too; otherwise it stays suspected. Like a Prometheus
    /// alert's `for:`, but two moments are compared, not every one between. Random walks, bursts and young climbs pass every test now and then for one
    /// look; a leak keeps passing. 0 turns it off. Production: 1 hour (decided on the
    /// tuning seeds, BENCHMARKS.md §3b, "Persistence"); fast: none.
    #[serde(default = "default_persist_samples")]
    pub persist_samples: usize,
    /// A growth in bytes with no known limit (memory of a process outside a cgroup of its
    /// own, a heap gauge without a reported maximum) is *confirmed* only once its rise over
    /// the evidence reaches this many bytes, however long it has lasted; below it, it is
    /// only *suspected*. Such growth can only hurt by its size (it never nears a limit, so
    /// it is never urgent), and allocators, JITs and caches of young processes add a few
    /// MiB to tens of MiB while warming up. 64 MiB: at a day of evidence (production) a
    /// leak of 2.7 MiB/h or more is confirmed; seed 004's heap grew 500 MiB in 3 minutes.
    #[serde(default = "default_min_unbounded_rise_bytes")]
    pub min_unbounded_rise_bytes: f64,

    // --- Restarts ---
    /// A restart is placed at the largest drop within this many samples of its reported
    /// time: collectors notice a new PID a sample or two late.
    pub restart_snap_samples: usize,
    /// Samples dropped at the end of each finished life (the dying process is not typical).
    pub life_tail_samples: usize,
    /// Fewest lives pooled when growth is judged across restarts.
    pub min_pooled_lives: usize,
    /// Most lives pooled.
    pub max_pooled_lives: usize,
    /// Fewest blocks a life must yield to be pooled.
    pub min_blocks_per_life: usize,

    // --- Saturation ---
    /// Fraction of the limit at which a resource counts as saturated.
    pub saturation_fraction: f64,
    /// The current value is the median of this many latest samples, so one spike does not
    /// raise an alarm.
    pub current_samples: usize,

    // --- Crash loops ---
    /// Restarts within the crash-loop window that make a crash loop.
    pub crashloop_min_restarts: usize,
    /// Crash-loop window, in samples (capped by the observed window).
    pub crashloop_window_samples: usize,

    // --- Root cause and consequences (docs/detection.md, "Grouping") ---
    /// Two growth rates agree when their confidence intervals, each widened by this
    /// fraction of its own rate, overlap: a series containing a leaking part becomes that
    /// part's consequence when the rates agree.
    pub rate_tolerance: f64,
    /// Most memory one leaked thread can plausibly hold (its stack, its malloc arena), in
    /// bytes: memory growing at most this much per leaked thread is the threads' consequence.
    pub thread_bytes_max: f64,
    /// Most memory one leaked fd, socket or gauge unit can plausibly hold, in bytes.
    pub object_bytes_max: f64,
}

impl Params {
    /// Defaults for the collector's 10-second samples, judged over hours to weeks.
    pub fn production() -> Params {
        Params::for_interval(10.0)
    }

    /// Defaults for samples taken every `seconds`. Windows that mean wall-clock time
    /// (a day's cycle, an hour of evidence, warm-up) are converted to samples, but never
    /// below the counts the statistics need.
    pub fn for_interval(seconds: f64) -> Params {
        let seconds = if seconds.is_finite() && seconds > 0.0 {
            seconds
        } else {
            10.0
        };
        let samples = |duration: f64, at_least: usize| -> usize {
            ((duration / seconds).round() as usize).max(at_least)
        };
        Params {
            interval_seconds: seconds,
            max_blocks: 300,
            min_block_samples: 3,
            sawtooth_drop_sigmas: 6.0,
            min_regime_samples: samples(3600.0, 30),
            min_regime_blocks: 12,
            warmup_samples: samples(300.0, 2),
            warmup_max_fraction: 0.1,
            changepoint_penalty: 4.0,
            changepoint_min_blocks: 6,
            max_changepoints: 4,
            max_candidate_starts: 16,
            trend_p_value: 1e-3,
            slope_confidence: 0.95,
            min_relative_growth: 0.05,
            min_half_share: 0.15,
            plateau_ratio: 0.3,
            converging_ratio: default_converging_ratio(),
            max_step_share: 0.6,
            new_high_margin: 0.2,
            noise_fall_factor: 2.0,
            history_seasons: default_history_seasons(),
            season_samples: samples(86_400.0, 60),
            urgent_horizon_samples: samples(43_200.0, 30),
            confirm_samples: samples(86_400.0, 60),
            alert_horizon_samples: samples(7.0 * 86_400.0, 60),
            persist_samples: samples(3600.0, 1),
            min_unbounded_rise_bytes: default_min_unbounded_rise_bytes(),
            restart_snap_samples: 2,
            life_tail_samples: 2,
            min_pooled_lives: 3,
            max_pooled_lives: 64,
            min_blocks_per_life: 4,
            saturation_fraction: 0.75,
            current_samples: 6,
            crashloop_min_restarts: 3,
            crashloop_window_samples: samples(6.0 * 3600.0, 30),
            rate_tolerance: 0.25,
            thread_bytes_max: 8.0 * 1024.0 * 1024.0,
            object_bytes_max: 1024.0 * 1024.0,
        }
    }
}

impl Params {
    /// Defaults for live tests and demos: samples every `seconds` (typically 1 s), scenarios
    /// lasting minutes. Windows are plain sample counts, whatever the interval, chosen so
    /// that a steady leak is confirmed about 20 samples after it starts.
    ///
    /// What changes from [`Params::production`], and what it costs:
    /// - the smallest window is 20 samples in 2-sample blocks (10 blocks), the least the
    ///   trend test can call significant at `trend_p_value` with room for autocorrelation;
    /// - warm-up is 4 samples, change points need 4 blocks;
    /// - the plateau test is stricter (recent-half rise at least half the early half's): a
    ///   cache filling like `1 - exp(-t/τ)` fails it once the window spans 1.4 τ, so fills
    ///   with τ up to ~14 samples are silent from the first judged window; a leak that
    ///   slows down like a square root fails it too;
    /// - no daily cycle is assumed: `season_samples` equals the smallest window, so a
    ///   window long enough to be judged never waits for a season, and the "new high" and
    ///   "noise" tests look back one season (`history_seasons` = 1) of the life seen so
    ///   far. Healthy look-alikes are told apart by shape alone (plateau, steps, bursts,
    ///   sawtooth), so a cycle slower than a few windows, or a pool that warms up over
    ///   more than ~10 samples, can be reported:
    ///   this preset is for processes whose behaviour over minutes is known, not for
    ///   production hosts;
    /// - crash loops are counted over 300 samples (5 minutes at 1 s);
    /// - no alert horizon: a climb seen for 60 samples is confirmed however far its limit;
    /// - no persistence: a trend is confirmed at the first look that confirms it.
    pub fn fast(seconds: f64) -> Params {
        let mut params = Params::for_interval(seconds);
        params.min_block_samples = 2;
        params.min_regime_samples = 20;
        params.min_regime_blocks = 10;
        params.warmup_samples = 4;
        params.changepoint_min_blocks = 4;
        params.plateau_ratio = 0.5;
        params.season_samples = params.min_regime_samples;
        params.history_seasons = 1;
        params.urgent_horizon_samples = params.min_regime_samples;
        params.confirm_samples = 60;
        params.alert_horizon_samples = usize::MAX;
        params.persist_samples = 0;
        params.crashloop_window_samples = 300;
        params
    }
}

fn default_min_unbounded_rise_bytes() -> f64 {
    64.0 * 1024.0 * 1024.0
}

fn default_alert_horizon_samples() -> usize {
    Params::production().alert_horizon_samples
}

fn default_persist_samples() -> usize {
    Params::production().persist_samples
}

fn default_history_seasons() -> usize {
    7
}

fn default_converging_ratio() -> f64 {
    0.75
}

fn default_confirm_samples() -> usize {
    Params::production().confirm_samples
}

impl Default for Params {
    fn default() -> Params {
        Params::production()
    }
}
