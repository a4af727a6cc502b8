//! The randomized corpus: many random draws per class of healthy look-alikes and leaks, at
//! 1 s, 10 s, 1 min and 5 min, from seeds, each with its ground truth.
//!
//! Where [`crate::corpus`] holds one hand-written case per story, this module draws every
//! parameter of a shape (time constants, levels, cycle phases, noise, onsets, rates) at
//! random, so the engine is evaluated on series it was never written next to. A draw is
//! named by `(class, seed, index)` and is a pure function of them: the same draw is the
//! same series on every machine (the SplitMix64 of [`crate::rng`]).
//!
//! Seeds are kept apart: [`TUNING_SEEDS`] are the ones anyone may look at while changing
//! the engine or this generator; [`PUBLISHED_SEEDS`] give the table in BENCHMARKS.md and
//! must never be used to tune (docs/detection.md, "Evaluation").
//!
//! Values are drawn as fractions of the series' limit and scaled by it at the end: a count
//! (threads, fds, connections) is rounded to an integer, memory is bytes, a utilisation is
//! a percentage of 100. Healthy series never reach their limit; a leak series ends at the
//! first sample at or above its limit (the outage) when the leak gets there within the
//! drawn span.

use crate::corpus::{Case, LeakTruth, Truth};
use crate::rng::Rng;
use leakwatch_detect::{Point, Restart, Series, SeriesKey};
use serde::Serialize;
use std::f64::consts::PI;

/// Sampling intervals drawn, seconds.
pub const INTERVALS: [f64; 4] = [1.0, 10.0, 60.0, 300.0];
/// Seeds for developing the engine and this generator: look at these as much as you like.
pub const TUNING_SEEDS: [u64; 3] = [101, 102, 103];
/// Seeds of the published table (BENCHMARKS.md §3b). Never used to tune the engine or the
/// generator: a change made while looking at their results would make them tuning seeds.
pub const PUBLISHED_SEEDS: [u64; 2] = [20_261_201, 20_261_202];
/// Most samples in one series: four days at 1 s. Longer draws are cut to it.
pub const MAX_SAMPLES: usize = 345_600;
/// Monday 2023-11-13T00:00:00Z: draws start within the week after it, so weekdays and
/// nights fall where a calendar puts them.
pub const MONDAY: f64 = 1_699_833_600.0;

const MINUTE: f64 = 60.0;
const HOUR: f64 = 3600.0;
const DAY: f64 = 86_400.0;
const WEEK: f64 = 7.0 * DAY;
const MIB: f64 = 1024.0 * 1024.0;
const GIB: f64 = 1024.0 * MIB;

/// A kind of series: a healthy look-alike or a leak shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Class {
    // Healthy.
    /// `1 - exp(-t/τ)` from a start level to a plateau at 20-98% of the limit, τ from
    /// minutes to days.
    Fill,
    /// A daily cycle, lower at weekends and on holidays, with white and correlated noise.
    DailyWeeklyCycle,
    /// Grows through the working week (in working hours or continuously), drains at the
    /// weekend.
    WeeklyRamp,
    /// Sits at a ceiling, drops (a cache flush; with or without a restart), climbs back to
    /// the same ceiling linearly or like a fill.
    Refill,
    /// Deploys that shift the level, each with a restart record and a warm-up.
    DeployRestart,
    /// The same level shifts without a restart record (a reconfiguration, a failover).
    LevelShift,
    /// AR(1) noise with a correlation time from minutes to a day.
    Ar1Noise,
    /// A bounded random walk that crosses its range in hours to days.
    RandomWalk,
    /// Bursts at random times, each rising then draining.
    Bursts,
    /// A GC sawtooth over a flat floor.
    GcSawtooth,
    /// A periodic batch job: a step, or a ramp that resets, for part of every period.
    BatchJobs,
    // Leaks.
    /// Linear growth from an onset.
    LinearLeak,
    /// Growth like `√t` or `ln(1 + t/τ)`: decelerating, unbounded.
    SublinearLeak,
    /// One step most nights.
    NightlySteps,
    /// A GC sawtooth whose floor rises.
    SawtoothLeak,
    /// Grows within each process life, reset by crashes that the collector recorded.
    RestartMasked,
    /// The same without restart records (a CSV export, Prometheus data).
    RestartMaskedUnrecorded,
    /// Linear or `√t` growth under a daily cycle.
    LeakUnderDailyCycle,
    /// A long healthy history (a cycle or correlated noise), then a leak late in it.
    LateLeak,
}

impl Class {
    pub const ALL: [Class; 19] = [
        Class::Fill,
        Class::DailyWeeklyCycle,
        Class::WeeklyRamp,
        Class::Refill,
        Class::DeployRestart,
        Class::LevelShift,
        Class::Ar1Noise,
        Class::RandomWalk,
        Class::Bursts,
        Class::GcSawtooth,
        Class::BatchJobs,
        Class::LinearLeak,
        Class::SublinearLeak,
        Class::NightlySteps,
        Class::SawtoothLeak,
        Class::RestartMasked,
        Class::RestartMaskedUnrecorded,
        Class::LeakUnderDailyCycle,
        Class::LateLeak,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Class::Fill => "fill",
            Class::DailyWeeklyCycle => "daily-weekly-cycle",
            Class::WeeklyRamp => "weekly-ramp",
            Class::Refill => "refill",
            Class::DeployRestart => "deploy-restart",
            Class::LevelShift => "level-shift",
            Class::Ar1Noise => "ar1-noise",
            Class::RandomWalk => "random-walk",
            Class::Bursts => "bursts",
            Class::GcSawtooth => "gc-sawtooth",
            Class::BatchJobs => "batch-jobs",
            Class::LinearLeak => "linear-leak",
            Class::SublinearLeak => "sublinear-leak",
            Class::NightlySteps => "nightly-steps",
            Class::SawtoothLeak => "sawtooth-leak",
            Class::RestartMasked => "restart-masked",
            Class::RestartMaskedUnrecorded => "restart-masked-unrecorded",
            Class::LeakUnderDailyCycle => "leak-under-daily-cycle",
            Class::LateLeak => "late-leak",
        }
    }

    pub fn parse(name: &str) -> Option<Class> {
        Class::ALL.into_iter().find(|c| c.name() == name)
    }

    pub fn is_leak(self) -> bool {
        self >= Class::LinearLeak
    }

    /// The intervals this class is drawn at. A weekly ramp needs a week and more of
    /// history, which [`MAX_SAMPLES`] does not allow at 1 s.
    pub fn intervals(self) -> &'static [f64] {
        match self {
            Class::WeeklyRamp => &INTERVALS[1..],
            _ => &INTERVALS,
        }
    }

    /// Span of a draw, days (before the cut to [`MAX_SAMPLES`]).
    fn days(self) -> (f64, f64) {
        match self {
            Class::Fill => (2.0, 6.0),
            Class::DailyWeeklyCycle => (8.0, 21.0),
            Class::WeeklyRamp => (14.0, 28.0),
            Class::Refill => (5.0, 12.0),
            Class::DeployRestart | Class::LevelShift => (3.0, 10.0),
            Class::Ar1Noise | Class::RandomWalk => (3.0, 10.0),
            Class::Bursts | Class::GcSawtooth => (2.0, 7.0),
            Class::BatchJobs => (3.0, 10.0),
            Class::LinearLeak | Class::SublinearLeak | Class::SawtoothLeak => (2.0, 10.0),
            Class::NightlySteps => (4.0, 14.0),
            Class::RestartMasked | Class::RestartMaskedUnrecorded => (2.0, 7.0),
            Class::LeakUnderDailyCycle => (5.0, 14.0),
            Class::LateLeak => (10.0, 21.0),
        }
    }

    /// What the series measures.
    fn units(self) -> &'static [Unit] {
        match self {
            Class::GcSawtooth | Class::SawtoothLeak => &[Unit::MemoryBytes, Unit::Percent],
            Class::RestartMasked | Class::RestartMaskedUnrecorded => &[
                Unit::Threads,
                Unit::Fds,
                Unit::Goroutines,
                Unit::MemoryBytes,
            ],
            _ => &[
                Unit::Threads,
                Unit::Fds,
                Unit::Connections,
                Unit::MemoryBytes,
                Unit::Percent,
            ],
        }
    }
}

/// What a series counts, which decides its key, its limit and its rounding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Unit {
    Threads,
    Fds,
    /// A connection-pool gauge.
    Connections,
    /// A goroutine gauge.
    Goroutines,
    /// Resident memory, bytes.
    MemoryBytes,
    /// A utilisation in percent of 100 (cloud memory metrics).
    Percent,
}

impl Unit {
    fn key(self, target: &str) -> SeriesKey {
        let (resource, attribution) = match self {
            Unit::Threads => ("threads", ""),
            Unit::Fds => ("fds", ""),
            Unit::Connections => ("gauge", "db_pool_connections"),
            Unit::Goroutines => ("gauge", "go_goroutines"),
            Unit::MemoryBytes => ("memory", "rss"),
            Unit::Percent => ("mem_util_percent", ""),
        };
        SeriesKey::from_text(target, resource, attribution)
    }

    fn limit(self, rng: &mut Rng) -> f64 {
        let pick = |rng: &mut Rng, choices: &[f64]| {
            choices[(rng.uniform() * choices.len() as f64) as usize % choices.len()]
        };
        match self {
            Unit::Threads => pick(rng, &[4096.0, 16_384.0, 32_768.0]),
            Unit::Fds => pick(rng, &[1024.0, 4096.0, 65_536.0]),
            Unit::Connections => pick(rng, &[100.0, 200.0, 500.0]),
            Unit::Goroutines => pick(rng, &[10_000.0, 100_000.0]),
            Unit::MemoryBytes => pick(rng, &[512.0 * MIB, 2.0 * GIB, 8.0 * GIB]),
            Unit::Percent => 100.0,
        }
    }

    fn round(self, v: f64) -> f64 {
        match self {
            Unit::Threads | Unit::Fds | Unit::Connections | Unit::Goroutines => v.round().max(0.0),
            Unit::MemoryBytes => (v / 4096.0).round().max(0.0) * 4096.0,
            Unit::Percent => ((v * 100.0).round() / 100.0).clamp(0.0, 100.0),
        }
    }
}

/// One draw: which class, from which seed, the how-many-th, and at which interval.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DrawSpec {
    pub class: Class,
    pub seed: u64,
    pub index: usize,
    pub interval: f64,
}

impl DrawSpec {
    /// `fill/s101/3`.
    pub fn id(&self) -> String {
        format!("{}/s{}/{}", self.class.name(), self.seed, self.index)
    }
}

/// `per_class` draws of every class in `classes`, for every seed, in the order seeds,
/// classes, index. Intervals cycle through the class's intervals by index, so
/// `per_class` a multiple of 4 draws each interval equally often.
pub fn draws(seeds: &[u64], classes: &[Class], per_class: usize) -> Vec<DrawSpec> {
    let mut out = Vec::new();
    for &seed in seeds {
        for &class in classes {
            let intervals = class.intervals();
            for index in 0..per_class {
                out.push(DrawSpec {
                    class,
                    seed,
                    index,
                    interval: intervals[index % intervals.len()],
                });
            }
        }
    }
    out
}

/// A generated series and what was drawn for it.
#[derive(Debug, Clone)]
pub struct Generated {
    pub spec: DrawSpec,
    pub unit: Unit,
    /// The case: one series (with its limit), its restarts, its truth.
    pub case: Case,
    /// The parameters drawn, for people reading a miss or a false alarm.
    pub notes: String,
}

/// The random numbers of one draw: SplitMix64 seeded from the seed, class and index.
fn draw_rng(spec: &DrawSpec) -> Rng {
    let class = Class::ALL
        .iter()
        .position(|c| *c == spec.class)
        .unwrap_or(0) as u64;
    let mut mixer = Rng::new(
        spec.seed
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .wrapping_add(class << 40)
            .wrapping_add(spec.index as u64),
    );
    Rng::new(mixer.next_u64())
}

/// Log-uniform in `[low, high)`.
fn log_between(rng: &mut Rng, low: f64, high: f64) -> f64 {
    (rng.between(low.ln(), high.ln())).exp()
}

fn chance(rng: &mut Rng, p: f64) -> bool {
    rng.uniform() < p
}

/// Generates one draw.
pub fn generate(spec: &DrawSpec) -> Generated {
    let mut rng = draw_rng(spec);
    let dt = spec.interval;
    let units = spec.class.units();
    let unit = units[(rng.uniform() * units.len() as f64) as usize % units.len()];
    let limit = unit.limit(&mut rng);
    let (low, high) = spec.class.days();
    let days = rng.between(low, high);
    let n = ((days * DAY / dt) as usize + 1).min(MAX_SAMPLES);
    let span = (n - 1) as f64 * dt;
    // Start on a sample of the interval's grid, somewhere in the first week.
    let start = MONDAY + (rng.between(0.0, WEEK) / dt).floor() * dt;
    let target = format!("gen-{}-{}", spec.seed, spec.index);
    let mut draw = Draw {
        rng,
        dt,
        start,
        span,
        n,
        restarts: Vec::new(),
        target: target.clone(),
        notes: Vec::new(),
    };
    let shape = draw.shape(spec.class);
    let key = unit.key(&target);
    let mut points = Vec::with_capacity(n);
    let mut exhaustion = None;
    for (i, &f) in shape.values.iter().enumerate() {
        let t = start + i as f64 * dt;
        let f = if spec.class.is_leak() {
            f.max(0.0)
        } else {
            f.clamp(0.0, 0.995)
        };
        let v = unit.round(f * limit);
        points.push(Point::new(t, v));
        if spec.class.is_leak() && v >= limit && !shape.resets {
            exhaustion = Some(t);
            break;
        }
    }
    let end = points.last().map_or(start, |p| p.t);
    let truth = match shape.onset {
        None => Truth::Healthy,
        Some(onset) => Truth::Leak(LeakTruth {
            key: key.clone(),
            related: Vec::new(),
            start: start + onset,
            exhaustion,
        }),
    };
    let restarts: Vec<Restart> = draw
        .restarts
        .iter()
        .filter(|r| r.t <= end)
        .cloned()
        .collect();
    let notes = std::mem::take(&mut draw.notes).join(" ");
    Generated {
        spec: spec.clone(),
        unit,
        case: Case {
            name: spec.class.name(),
            description: "",
            series: vec![Series::new(key, points, Some(limit))],
            restarts,
            truth,
            start,
            end,
        },
        notes,
    }
}

/// A series' values as fractions of its limit, before scaling and rounding.
struct Shape {
    values: Vec<f64>,
    /// Leak onset, seconds after the start; `None` for healthy series.
    onset: Option<f64>,
    /// True when restarts reset the value: the leak never reaches the limit.
    resets: bool,
}

/// The state of one draw while its shape is made.
struct Draw {
    rng: Rng,
    dt: f64,
    start: f64,
    span: f64,
    n: usize,
    restarts: Vec<Restart>,
    target: String,
    notes: Vec<String>,
}

/// AR(1) noise with stationary standard deviation `sd` and correlation time `tau`.
struct Ar1 {
    value: f64,
    phi: f64,
    innovation: f64,
}

impl Ar1 {
    fn new(rng: &mut Rng, sd: f64, tau: f64, dt: f64) -> Ar1 {
        let phi = (-dt / tau).exp();
        Ar1 {
            value: sd * rng.normal(),
            phi,
            innovation: sd * (1.0 - phi * phi).sqrt(),
        }
    }

    fn next(&mut self, rng: &mut Rng) -> f64 {
        self.value = self.phi * self.value + self.innovation * rng.normal();
        self.value
    }
}

/// A GC sawtooth: garbage grows linearly to about `height`, then drops to zero; periods
/// and heights vary by ±20% from one cycle to the next.
struct Sawtooth {
    cycle_start: f64,
    period: f64,
    height: f64,
    mean_period: f64,
    mean_height: f64,
}

impl Sawtooth {
    fn new(rng: &mut Rng, mean_period: f64, mean_height: f64) -> Sawtooth {
        let mut saw = Sawtooth {
            cycle_start: 0.0,
            period: mean_period,
            height: mean_height,
            mean_period,
            mean_height,
        };
        saw.cycle_start = -rng.between(0.0, mean_period);
        saw.redraw(rng);
        saw
    }

    fn redraw(&mut self, rng: &mut Rng) {
        self.period = self.mean_period * rng.between(0.8, 1.2);
        self.height = self.mean_height * rng.between(0.8, 1.2);
    }

    fn garbage(&mut self, rng: &mut Rng, t: f64) -> f64 {
        while t - self.cycle_start >= self.period {
            self.cycle_start += self.period;
            self.redraw(rng);
        }
        self.height * (t - self.cycle_start) / self.period
    }
}

/// A daily cycle with weekends and holidays: `shape(t)` in `[0, 1]`, highest at `peak`
/// o'clock on a working day, flattened to `weekend` of that on weekends and holidays.
struct Cycle {
    peak_hour: f64,
    weekend: f64,
    holidays: Vec<u64>,
}

impl Cycle {
    fn draw(rng: &mut Rng, first_day: u64, days: u64) -> Cycle {
        let holidays = (first_day..first_day + days + 1)
            .filter(|_| chance(rng, 0.04))
            .collect();
        Cycle {
            peak_hour: rng.between(10.0, 20.0),
            weekend: rng.between(0.2, 0.8),
            holidays,
        }
    }

    /// Days since [`MONDAY`] and hour of day.
    fn calendar(t: f64) -> (u64, f64) {
        let since = (t - MONDAY).max(0.0);
        ((since / DAY) as u64, (since % DAY) / HOUR)
    }

    fn is_weekend(&self, day: u64) -> bool {
        day % 7 >= 5 || self.holidays.contains(&day)
    }

    fn shape(&self, t: f64) -> f64 {
        let (day, hour) = Cycle::calendar(t);
        let daily = 0.5 + 0.5 * (2.0 * PI * (hour - self.peak_hour) / 24.0).cos();
        if self.is_weekend(day) {
            daily * self.weekend
        } else {
            daily
        }
    }
}

/// Everything a healthy background adds: white noise and AR(1) noise.
struct Background {
    white: f64,
    ar1: Ar1,
}

impl Background {
    fn draw(rng: &mut Rng, level: f64, dt: f64) -> Background {
        let white = level * rng.between(0.003, 0.03);
        let sd = level * rng.between(0.0, 0.05);
        let tau = log_between(rng, 5.0 * MINUTE, 3.0 * HOUR).max(dt);
        Background {
            white,
            ar1: Ar1::new(rng, sd, tau, dt),
        }
    }

    fn next(&mut self, rng: &mut Rng) -> f64 {
        self.white * rng.normal() + self.ar1.next(rng)
    }
}

fn hours(seconds: f64) -> String {
    format!("{:.1}h", seconds / HOUR)
}

impl Draw {
    fn note(&mut self, text: String) {
        self.notes.push(text);
    }

    fn times(&self) -> impl Iterator<Item = f64> {
        let dt = self.dt;
        (0..self.n).map(move |i| i as f64 * dt)
    }

    fn restart_at(&mut self, at: f64, reason: &str) {
        let pid = 1000 + self.restarts.len() as u32;
        self.restarts.push(Restart {
            target: self.target.clone(),
            t: self.start + at,
            old_pid: Some(pid),
            new_pid: Some(pid + 1),
            reason: reason.to_string(),
        });
    }

    fn healthy(values: Vec<f64>) -> Shape {
        Shape {
            values,
            onset: None,
            resets: false,
        }
    }

    fn shape(&mut self, class: Class) -> Shape {
        match class {
            Class::Fill => self.fill(),
            Class::DailyWeeklyCycle => self.daily_weekly_cycle(),
            Class::WeeklyRamp => self.weekly_ramp(),
            Class::Refill => self.refill(),
            Class::DeployRestart => self.level_shifts(true),
            Class::LevelShift => self.level_shifts(false),
            Class::Ar1Noise => self.ar1_noise(),
            Class::RandomWalk => self.random_walk(),
            Class::Bursts => self.bursts(),
            Class::GcSawtooth => self.gc_sawtooth(),
            Class::BatchJobs => self.batch_jobs(),
            Class::LinearLeak => self.leak(Growth::Linear),
            Class::SublinearLeak => {
                let growth = if chance(&mut self.rng, 0.5) {
                    Growth::Sqrt
                } else {
                    Growth::Log
                };
                self.leak(growth)
            }
            Class::NightlySteps => self.leak(Growth::Nightly),
            Class::SawtoothLeak => self.sawtooth_leak(),
            Class::RestartMasked => self.restart_masked(true),
            Class::RestartMaskedUnrecorded => self.restart_masked(false),
            Class::LeakUnderDailyCycle => self.cycle_leak(),
            Class::LateLeak => self.late_leak(),
        }
    }

    fn fill(&mut self) -> Shape {
        let rng = &mut self.rng;
        let plateau = rng.between(0.2, 0.98);
        let from = plateau * rng.between(0.02, 0.8);
        let tau = log_between(rng, 10.0 * MINUTE, 2.0 * DAY);
        let mut noise = Background::draw(rng, plateau * 0.5, self.dt);
        self.note(format!(
            "fill {:.0}%->{:.0}% tau={}",
            from * 100.0,
            plateau * 100.0,
            hours(tau)
        ));
        let values = self
            .times()
            .map(|t| from + (plateau - from) * (1.0 - (-t / tau).exp()) + noise.next(&mut self.rng))
            .collect();
        Draw::healthy(values)
    }

    fn daily_weekly_cycle(&mut self) -> Shape {
        let (values, note) = self.cycle_background();
        self.note(note);
        Draw::healthy(values)
    }

    /// A daily and weekly cycle with noise: the background of several classes.
    fn cycle_background(&mut self) -> (Vec<f64>, String) {
        let rng = &mut self.rng;
        let base = rng.between(0.1, 0.5);
        let amplitude = rng.between(0.15, 0.6);
        let first_day = ((self.start - MONDAY) / DAY) as u64;
        let cycle = Cycle::draw(rng, first_day, (self.span / DAY) as u64 + 1);
        let mut noise = Background::draw(rng, base, self.dt);
        let note = format!(
            "cycle base={:.0}% amp={:.0}% peak={:.0}h weekend={:.2} holidays={}",
            base * 100.0,
            amplitude * 100.0,
            cycle.peak_hour,
            cycle.weekend,
            cycle.holidays.len()
        );
        let start = self.start;
        let values = self
            .times()
            .map(|t| {
                base * (1.0 - amplitude / 2.0 + amplitude * cycle.shape(start + t))
                    + noise.next(&mut self.rng)
            })
            .collect();
        (values, note)
    }

    fn weekly_ramp(&mut self) -> Shape {
        let rng = &mut self.rng;
        let base = rng.between(0.05, 0.3);
        let rise = rng.between(0.1, 0.6).min(0.9 - base);
        let working_hours = chance(rng, 0.5);
        let drain = log_between(rng, HOUR, 12.0 * HOUR);
        let mut noise = Background::draw(rng, base, self.dt);
        self.note(format!(
            "weekly ramp base={:.0}% +{:.0}% by friday, {}, drain tau={}",
            base * 100.0,
            rise * 100.0,
            if working_hours {
                "in working hours"
            } else {
                "continuous"
            },
            hours(drain)
        ));
        // Progress through the working week, 0 on Monday 00:00 to 1 on Saturday 00:00.
        let progress = |since_monday: f64| -> f64 {
            if !working_hours {
                return (since_monday / (5.0 * DAY)).min(1.0);
            }
            let days = (since_monday / DAY).floor().min(5.0);
            let hour = (since_monday - days * DAY) / HOUR;
            let today = if days >= 5.0 {
                0.0
            } else {
                ((hour - 8.0) / 10.0).clamp(0.0, 1.0)
            };
            (days + today) / 5.0
        };
        let start = self.start;
        let values = self
            .times()
            .map(|t| {
                let since_monday = (start + t - MONDAY).rem_euclid(WEEK);
                let level = if since_monday < 5.0 * DAY {
                    progress(since_monday)
                } else {
                    (-(since_monday - 5.0 * DAY) / drain).exp()
                };
                base + rise * level + noise.next(&mut self.rng)
            })
            .collect();
        Draw::healthy(values)
    }

    fn refill(&mut self) -> Shape {
        let rng = &mut self.rng;
        let ceiling = rng.between(0.3, 0.9);
        let with_restart = chance(rng, 0.5);
        let mut noise = Background::draw(rng, ceiling * 0.5, self.dt);
        // Drops: the first after one to three days at the ceiling, then one more whenever
        // the previous climb and a day at the ceiling fit.
        let mut drops = Vec::new();
        let mut at = rng.between(DAY, 3.0 * DAY);
        while drops.len() < 3 {
            let climb = log_between(rng, 2.0 * HOUR, 2.0 * DAY);
            if at + climb + 0.5 * DAY > self.span {
                break;
            }
            let depth = rng.between(0.1, 0.6);
            let linear = chance(rng, 0.5);
            drops.push((at, climb, depth, linear));
            at += climb + rng.between(DAY, 3.0 * DAY);
        }
        let described: Vec<String> = drops
            .iter()
            .map(|&(at, climb, depth, linear)| {
                format!(
                    "drop at {} to {:.0}%, {} climb over {}",
                    hours(at),
                    depth * 100.0,
                    if linear { "linear" } else { "exp" },
                    hours(climb)
                )
            })
            .collect();
        self.note(format!(
            "refill ceiling={:.0}% {}restart: {}",
            ceiling * 100.0,
            if with_restart { "" } else { "no " },
            described.join("; ")
        ));
        if with_restart {
            for &(at, ..) in &drops {
                self.restart_at(at, "exit 0");
            }
        }
        let values = self
            .times()
            .map(|t| {
                let mut level = ceiling;
                if let Some(&(at, climb, depth, linear)) =
                    drops.iter().rev().find(|&&(at, ..)| at <= t)
                {
                    let since = t - at;
                    let low = ceiling * depth;
                    let progress = if linear {
                        (since / climb).min(1.0)
                    } else {
                        1.0 - (-3.0 * since / climb).exp()
                    };
                    level = low + (ceiling - low) * progress;
                }
                level + noise.next(&mut self.rng)
            })
            .collect();
        Draw::healthy(values)
    }

    fn level_shifts(&mut self, restart: bool) -> Shape {
        let rng = &mut self.rng;
        let base = rng.between(0.05, 0.5);
        let mut noise = Background::draw(rng, base, self.dt);
        let count = 1 + (rng.uniform() * 3.0) as usize;
        let mut shifts = Vec::new();
        let mut level = base;
        let mut at = rng.between(0.5 * DAY, 1.5 * DAY);
        for _ in 0..count {
            if at > self.span - 0.5 * DAY {
                break;
            }
            let factor = if chance(rng, 0.7) {
                rng.between(1.1, 1.8)
            } else {
                rng.between(0.6, 0.9)
            };
            level = (level * factor).min(0.9);
            let ramp = if restart {
                log_between(rng, MINUTE, 30.0 * MINUTE)
            } else {
                log_between(rng, 1.0, HOUR)
            };
            let dip = rng.between(0.2, 0.6);
            shifts.push((at, level, ramp, dip));
            at += rng.between(0.5 * DAY, 3.0 * DAY);
        }
        let described: Vec<String> = shifts
            .iter()
            .map(|&(at, level, ..)| format!("{} to {:.0}%", hours(at), level * 100.0))
            .collect();
        self.note(format!(
            "{} from {:.0}%: {}",
            if restart { "deploys" } else { "shifts" },
            base * 100.0,
            described.join(", ")
        ));
        if restart {
            for &(at, ..) in &shifts {
                self.restart_at(at, "exit 0");
            }
        }
        let values = self
            .times()
            .map(|t| {
                let mut value = base;
                let mut previous = base;
                for &(at, level, ramp, dip) in &shifts {
                    if at > t {
                        break;
                    }
                    let since = t - at;
                    value = if restart {
                        // A new process: starts low, warms up to its level.
                        level * (1.0 - (1.0 - dip) * (-since / ramp).exp())
                    } else {
                        previous + (level - previous) * (since / ramp).min(1.0)
                    };
                    previous = level;
                }
                value + noise.next(&mut self.rng)
            })
            .collect();
        Draw::healthy(values)
    }

    fn ar1_noise(&mut self) -> Shape {
        let rng = &mut self.rng;
        let base = rng.between(0.1, 0.5);
        let sd = base * rng.between(0.05, 0.25);
        let tau = log_between(rng, 10.0 * MINUTE, DAY);
        let mut ar1 = Ar1::new(rng, sd, tau.max(self.dt), self.dt);
        let white = base * rng.between(0.0, 0.02);
        self.note(format!(
            "ar1 base={:.0}% sd={:.1}% tau={}",
            base * 100.0,
            sd * 100.0,
            hours(tau)
        ));
        let values = (0..self.n)
            .map(|_| base + ar1.next(&mut self.rng) + white * self.rng.normal())
            .collect();
        Draw::healthy(values)
    }

    fn random_walk(&mut self) -> Shape {
        let rng = &mut self.rng;
        let base = rng.between(0.1, 0.5);
        let half = rng.between(0.2, 0.5);
        let (low, high) = (base * (1.0 - half), base * (1.0 + half));
        let cross = log_between(rng, 6.0 * HOUR, 5.0 * DAY);
        let step = (high - low) / (cross / self.dt).sqrt();
        let white = base * rng.between(0.0, 0.02);
        let mut value = rng.between(low, high);
        self.note(format!(
            "random walk {:.0}%..{:.0}% crossing in ~{}",
            low * 100.0,
            high * 100.0,
            hours(cross)
        ));
        let values = (0..self.n)
            .map(|_| {
                value += step * self.rng.normal();
                // Reflect at the bounds.
                if value > high {
                    value = 2.0 * high - value;
                }
                if value < low {
                    value = 2.0 * low - value;
                }
                value + white * self.rng.normal()
            })
            .collect();
        Draw::healthy(values)
    }

    fn bursts(&mut self) -> Shape {
        let rng = &mut self.rng;
        let base = rng.between(0.05, 0.4);
        let gap = log_between(rng, HOUR, DAY);
        let ramp = log_between(rng, MINUTE, HOUR);
        let drain = log_between(rng, 5.0 * MINUTE, 6.0 * HOUR);
        let mut bursts = Vec::new();
        let mut at = -gap * rng.uniform().max(1e-12).ln();
        while at < self.span {
            bursts.push((at, base * rng.between(0.2, 1.5)));
            at += -gap * rng.uniform().max(1e-12).ln();
        }
        let mut noise = Background::draw(rng, base, self.dt);
        self.note(format!(
            "bursts base={:.0}% every ~{} ramp={} drain={} ({} bursts)",
            base * 100.0,
            hours(gap),
            hours(ramp),
            hours(drain),
            bursts.len()
        ));
        let values = self
            .times()
            .map(|t| {
                let mut extra = 0.0;
                for &(at, size) in &bursts {
                    let since = t - at;
                    if since < 0.0 {
                        break;
                    }
                    extra += if since < ramp {
                        size * since / ramp
                    } else {
                        size * (-(since - ramp) / drain).exp()
                    };
                }
                base + extra + noise.next(&mut self.rng)
            })
            .collect();
        Draw::healthy(values)
    }

    fn gc_sawtooth(&mut self) -> Shape {
        let rng = &mut self.rng;
        let floor = rng.between(0.1, 0.5);
        let height = (floor * rng.between(0.2, 1.0)).min(0.95 - floor);
        let period = log_between(rng, MINUTE, HOUR);
        let mut saw = Sawtooth::new(rng, period, height);
        let white = floor * rng.between(0.0, 0.01);
        self.note(format!(
            "gc floor={:.0}% height={:.0}% period={:.0}s",
            floor * 100.0,
            height * 100.0,
            period
        ));
        let values = self
            .times()
            .map(|t| floor + saw.garbage(&mut self.rng, t) + white * self.rng.normal())
            .collect();
        Draw::healthy(values)
    }

    fn batch_jobs(&mut self) -> Shape {
        let rng = &mut self.rng;
        let base = rng.between(0.05, 0.4);
        let periods = [HOUR, 4.0 * HOUR, DAY];
        let period = periods[(rng.uniform() * 3.0) as usize % 3].max(12.0 * self.dt);
        let length = period * rng.between(0.1, 0.5);
        let size = base * rng.between(0.3, 1.5);
        let ramp = chance(rng, 0.5);
        let phase = rng.between(0.0, period);
        let mut noise = Background::draw(rng, base, self.dt);
        self.note(format!(
            "batch every {} for {}: {} of {:.0}% over base {:.0}%",
            hours(period),
            hours(length),
            if ramp { "ramp" } else { "step" },
            size * 100.0,
            base * 100.0
        ));
        let values = self
            .times()
            .map(|t| {
                let into = (t + phase) % period;
                let extra = if into >= length {
                    0.0
                } else if ramp {
                    size * into / length
                } else {
                    size
                };
                base + extra + noise.next(&mut self.rng)
            })
            .collect();
        Draw::healthy(values)
    }

    /// A leak's onset (seconds after the start) and its time to the limit after it.
    fn leak_timing(&mut self, onset_fraction: (f64, f64)) -> (f64, f64) {
        let onset = self.span * self.rng.between(onset_fraction.0, onset_fraction.1);
        let onset = (onset / self.dt).round() * self.dt;
        let to_limit = (self.span - onset) * self.rng.between(0.3, 1.6);
        (onset, to_limit)
    }

    fn leak(&mut self, growth: Growth) -> Shape {
        let base = self.rng.between(0.05, 0.4);
        let mut noise = Background::draw(&mut self.rng, base, self.dt);
        let (onset, to_limit) = self.leak_timing((0.0, 0.25));
        let headroom = 1.0 - base;
        let grow = growth.draw(&mut self.rng, to_limit, self.start + onset);
        self.note(format!(
            "{} from {:.0}% at {}, limit after {}",
            grow.describe(),
            base * 100.0,
            hours(onset),
            hours(to_limit)
        ));
        let values = self
            .times()
            .map(|t| base + headroom * grow.fraction(t - onset) + noise.next(&mut self.rng))
            .collect();
        Shape {
            values,
            onset: Some(onset),
            resets: false,
        }
    }

    fn sawtooth_leak(&mut self) -> Shape {
        let rng = &mut self.rng;
        let floor = rng.between(0.1, 0.4);
        let height = floor * rng.between(0.2, 0.8);
        let period = log_between(rng, MINUTE, HOUR);
        let mut saw = Sawtooth::new(rng, period, height);
        let (onset, to_limit) = self.leak_timing((0.0, 0.25));
        let headroom = (1.0 - floor - height).max(0.05);
        let growth = Growth::Linear.draw(&mut self.rng, to_limit, self.start + onset);
        self.note(format!(
            "sawtooth floor={:.0}% height={:.0}% period={:.0}s, floor linear from {}, limit after {}",
            floor * 100.0,
            height * 100.0,
            period,
            hours(onset),
            hours(to_limit)
        ));
        let values = self
            .times()
            .map(|t| floor + headroom * growth.fraction(t - onset) + saw.garbage(&mut self.rng, t))
            .collect();
        Shape {
            values,
            onset: Some(onset),
            resets: false,
        }
    }

    fn restart_masked(&mut self, recorded: bool) -> Shape {
        let rng = &mut self.rng;
        let base = rng.between(0.02, 0.3);
        let mean_life = log_between(
            rng,
            (30.0 * MINUTE).max(24.0 * self.dt),
            (12.0 * HOUR).max(100.0 * self.dt),
        );
        let reach = rng.between(0.2, 0.8);
        let per_second = (1.0 - base) * reach / mean_life;
        let mut noise = Background::draw(rng, base, self.dt);
        let late = chance(rng, 0.5);
        let mut life_start = 0.0;
        let mut life_end = mean_life * rng.between(0.5, 1.5);
        let mut values = Vec::with_capacity(self.n);
        let mut crashes = Vec::new();
        for t in self.times() {
            let mut v = base + per_second * (t - life_start);
            if t >= life_end || v >= 0.97 {
                // The process dies (its own leak, or anything else) and starts again.
                crashes.push(t);
                life_start = t;
                life_end = t + mean_life * self.rng.between(0.5, 1.5);
                v = base;
            }
            values.push(v + noise.next(&mut self.rng));
        }
        self.note(format!(
            "grows {:.0}% of headroom per life of ~{} from {:.0}%, {} crashes, {}",
            reach * 100.0,
            hours(mean_life),
            base * 100.0,
            crashes.len(),
            if recorded { "recorded" } else { "not recorded" }
        ));
        if recorded {
            for at in crashes {
                // Noticed up to a sample late.
                let late = if late && chance(&mut self.rng, 0.5) {
                    self.dt
                } else {
                    0.0
                };
                self.restart_at(at + late, "exit 2");
            }
        }
        Shape {
            values,
            onset: Some(0.0),
            resets: true,
        }
    }

    fn cycle_leak(&mut self) -> Shape {
        let (background, note) = self.cycle_background();
        let (onset, to_limit) = self.leak_timing((0.0, 0.25));
        let growth = if chance(&mut self.rng, 0.7) {
            Growth::Linear
        } else {
            Growth::Sqrt
        };
        let grow = growth.draw(&mut self.rng, to_limit, self.start + onset);
        // The leak takes the background's mean to the limit: the outage comes at a
        // daily peak, somewhat before `to_limit`.
        let headroom = 1.0 - mean(&background).min(0.9);
        self.note(format!(
            "{note}; {} at {}, limit after {}",
            grow.describe(),
            hours(onset),
            hours(to_limit)
        ));
        let values = background
            .iter()
            .enumerate()
            .map(|(i, v)| v + headroom * grow.fraction(i as f64 * self.dt - onset))
            .collect();
        Shape {
            values,
            onset: Some(onset),
            resets: false,
        }
    }

    fn late_leak(&mut self) -> Shape {
        let (background, note) = if chance(&mut self.rng, 0.5) {
            self.cycle_background()
        } else {
            let shape = self.ar1_noise();
            let note = self.notes.pop().unwrap_or_default();
            (shape.values, note)
        };
        let (onset, to_limit) = self.leak_timing((0.5, 0.85));
        let growth = if chance(&mut self.rng, 0.7) {
            Growth::Linear
        } else {
            Growth::Sqrt
        };
        let grow = growth.draw(&mut self.rng, to_limit, self.start + onset);
        let headroom = 1.0 - mean(&background).min(0.9);
        self.note(format!(
            "{note}; {} at {}, limit after {}",
            grow.describe(),
            hours(onset),
            hours(to_limit)
        ));
        let values = background
            .iter()
            .enumerate()
            .map(|(i, v)| v + headroom * grow.fraction(i as f64 * self.dt - onset))
            .collect();
        Shape {
            values,
            onset: Some(onset),
            resets: false,
        }
    }
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len().max(1) as f64
}

/// How a leak grows, as a fraction of its headroom reached `since` its onset.
#[derive(Clone, Copy)]
enum Growth {
    Linear,
    Sqrt,
    Log,
    Nightly,
}

/// A growth with its drawn parameters.
struct Grow {
    growth: Growth,
    to_limit: f64,
    /// `Log`: the time constant.
    tau: f64,
    /// `Nightly`: step times (seconds after the onset) and the size of one step.
    steps: Vec<f64>,
    step: f64,
}

impl Growth {
    fn draw(self, rng: &mut Rng, to_limit: f64, onset_time: f64) -> Grow {
        let mut grow = Grow {
            growth: self,
            to_limit,
            tau: 0.0,
            steps: Vec::new(),
            step: 0.0,
        };
        match self {
            Growth::Linear | Growth::Sqrt => {}
            Growth::Log => grow.tau = to_limit * log_between(rng, 0.01, 0.3),
            Growth::Nightly => {
                // One step at 02:00 (+ up to 2 h) on most nights; the limit is reached at
                // the step that falls closest to `to_limit`.
                let p = rng.between(0.6, 1.0);
                let first_night = ((onset_time - MONDAY) / DAY).floor() + 1.0;
                let mut night = first_night;
                while grow.steps.len() < 400 {
                    let at = MONDAY + night * DAY + 2.0 * HOUR + rng.between(0.0, 2.0 * HOUR)
                        - onset_time;
                    if at > 4.0 * to_limit + 2.0 * DAY {
                        break;
                    }
                    if chance(rng, p) {
                        grow.steps.push(at);
                    }
                    night += 1.0;
                }
                // At least three steps to the limit: one jump to the limit is an outage,
                // not a staircase.
                let by_limit = grow.steps.iter().filter(|&&s| s <= to_limit).count();
                grow.step = 1.0 / by_limit.max(3) as f64;
            }
        }
        grow
    }
}

impl Grow {
    fn fraction(&self, since: f64) -> f64 {
        if since <= 0.0 {
            return 0.0;
        }
        let x = since / self.to_limit;
        match self.growth {
            Growth::Linear => x,
            Growth::Sqrt => x.sqrt(),
            Growth::Log => (1.0 + since / self.tau).ln() / (1.0 + self.to_limit / self.tau).ln(),
            Growth::Nightly => {
                self.step * self.steps.iter().filter(|&&at| at <= since).count() as f64
            }
        }
    }

    fn describe(&self) -> String {
        match self.growth {
            Growth::Linear => "linear".to_string(),
            Growth::Sqrt => "sqrt".to_string(),
            Growth::Log => format!("log tau={}", hours(self.tau)),
            Growth::Nightly => format!("nightly steps of {:.1}% of headroom", self.step * 100.0),
        }
    }
}
