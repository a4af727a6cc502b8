//! The synthetic evaluation corpus: leaks and healthy look-alikes at production resolution
//! (a sample every 10 s, hours to weeks long), each with its ground truth.
//!
//! Every case is generated from a fixed seed, so the corpus and the scores are the same on
//! every run. Leak cases run until the resource actually reaches its limit (the outage:
//! that sample's time is the exhaustion time) or, when restarts keep it from ever getting
//! there, for a few days. The stories behind the cases are the incidents in
//! `shared/seeds`: a thread pool per call, CLOSE_WAIT sockets exhausting a pool,
//! goroutines hidden by crash-restarts, a nightly step of database connections, and a
//! memoize cache under GC sawtooth.

use crate::rng::Rng;
use leakwatch_detect::{Point, Restart, Series, SeriesKey};
use serde::Serialize;
use std::f64::consts::PI;

/// Seconds between samples, as the collector takes them in production.
pub const INTERVAL: f64 = 10.0;
/// 2023-11-15T00:00:00Z: cases start at a midnight so "nights" fall at fixed offsets.
pub const T0: f64 = 1_700_006_400.0;
const MINUTE: f64 = 60.0;
const HOUR: f64 = 3600.0;
const DAY: f64 = 86_400.0;
const MIB: f64 = 1024.0 * 1024.0;
const GIB: f64 = 1024.0 * MIB;

/// What the engine should conclude about a case.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Truth {
    /// Nothing leaks; any leak finding is a false alarm.
    Healthy,
    Leak(LeakTruth),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LeakTruth {
    /// The series the leak should be attributed to.
    pub key: SeriesKey,
    /// Other series that grow because of the same leak (the total, fds of leaked sockets):
    /// findings on them are not false alarms, but not the right attribution either.
    pub related: Vec<SeriesKey>,
    /// When the leak begins.
    pub start: f64,
    /// When the resource would reach its limit (the outage); `None` when restarts keep
    /// resetting it first.
    pub exhaustion: Option<f64>,
}

/// One scenario: series, restarts, and the truth about them.
#[derive(Debug, Clone)]
pub struct Case {
    pub name: &'static str,
    /// One line on what it models.
    pub description: &'static str,
    pub series: Vec<Series>,
    pub restarts: Vec<Restart>,
    pub truth: Truth,
    pub start: f64,
    pub end: f64,
}

impl Case {
    pub fn leak(&self) -> Option<&LeakTruth> {
        match &self.truth {
            Truth::Leak(leak) => Some(leak),
            Truth::Healthy => None,
        }
    }

    pub fn sample_count(&self) -> usize {
        self.series.iter().map(|s| s.points.len()).sum()
    }
}

/// All cases: leaks first, then healthy look-alikes.
pub fn corpus() -> Vec<Case> {
    corpus_with_seed(0)
}

/// The same scenarios drawn with other random numbers: `variant` 0 is [`corpus`]; other
/// variants check that scores do not hinge on one lucky draw.
pub fn corpus_with_seed(variant: u64) -> Vec<Case> {
    CASES
        .iter()
        .map(|spec| generate(spec, spec.seed + variant.wrapping_mul(1_000_003)))
        .collect()
}

fn key(target: &str, resource: &str, attribution: &str) -> SeriesKey {
    SeriesKey::from_text(target, resource, attribution)
}

// ----------------------------------------------------------------------------------------
// Case specs
// ----------------------------------------------------------------------------------------

/// One scenario as data; [`generate`] turns it into a [`Case`].
///
/// Every sample, each series is drawn in the order of `series`: its value is the sum of
/// the earlier series it names (`sum_of`) plus its own part, which is its start-up value
/// while the process is young, else its level, plus its growth, plus its noise terms in
/// order; then it is rounded as the spec says.
struct CaseSpec {
    name: &'static str,
    description: &'static str,
    /// Seed of variant 0.
    seed: u64,
    target: &'static str,
    kind: Kind,
    /// When the growth begins, after `T0`.
    leak_start: f64,
    /// Simulated span: `T0` to `T0 + days`.
    days: f64,
    /// The series whose reaching its limit ends the case (the outage); without one the
    /// case runs its whole span.
    stop: Option<usize>,
    /// Times drawn before the first sample (steps, bursts, windows) that levels refer to.
    schedule: Schedule,
    restarts: Restarts,
    /// In the order they are drawn.
    series: &'static [SeriesSpec],
    /// The order of [`Case::series`]: indices into `series`.
    shown: &'static [usize],
}

/// What the engine should conclude (see [`Truth`]).
enum Kind {
    Healthy,
    /// `series[key]` leaks; `related` grow because of it.
    Leak {
        key: usize,
        related: &'static [usize],
        start: LeakStart,
    },
}

/// When a leak begins, for its truth.
enum LeakStart {
    /// At `leak_start`.
    Growth,
    /// At the first scheduled event (a nightly step).
    FirstEvent,
}

/// One series of a case.
struct SeriesSpec {
    resource: &'static str,
    attribution: &'static str,
    limit: Option<f64>,
    /// Earlier series (indices) whose values this one adds its own part to.
    sum_of: &'static [usize],
    level: Level,
    growth: Growth,
    noise: &'static [Noise],
    round: Round,
    /// `(seconds, value)`: for the first seconds of each life the own part is `value`,
    /// and no noise is drawn.
    young: Option<(f64, f64)>,
}

/// A series with a constant level of 0 and nothing else, for struct update syntax.
const fn series(
    resource: &'static str,
    attribution: &'static str,
    limit: Option<f64>,
) -> SeriesSpec {
    SeriesSpec {
        resource,
        attribution,
        limit,
        sum_of: &[],
        level: Level::Const(0.0),
        growth: Growth::None,
        noise: &[],
        round: Round::No,
        young: None,
    }
}

/// The deterministic part of a value at time `t`.
#[derive(Clone, Copy)]
enum Level {
    Const(f64),
    /// `mean - amplitude * cos(2 pi (t - T0) / DAY)`: lowest at midnight.
    Daily {
        mean: f64,
        amplitude: f64,
    },
    /// `scale * traffic(t)`.
    Traffic(f64),
    /// `base + size * (1 - exp(-(t - at) / tau))` from `T0 + at`, `before` until then.
    Fill {
        base: f64,
        size: f64,
        tau: f64,
        at: f64,
        before: f64,
    },
    /// `base + size * clamp((t - at) / over, 0, 1)`, `at` after `T0`.
    Ramp {
        base: f64,
        size: f64,
        at: f64,
        over: f64,
    },
    /// `base + step` for every scheduled event at or before `t`.
    Steps {
        base: f64,
        step: f64,
    },
    /// `base` plus every scheduled burst `(at, size)` begun: rising linearly over `ramp`,
    /// then draining with time constant `tau`.
    Bursts {
        base: f64,
        ramp: f64,
        tau: f64,
    },
    /// `base`, plus `extra` inside a scheduled window `(from, to)`.
    Windows {
        base: f64,
        extra: f64,
    },
}

/// Growth from `leak_start`, added to the level (`dt` is the time since `leak_start`,
/// zero before).
#[derive(Clone, Copy)]
enum Growth {
    None,
    /// `per_hour * dt / HOUR`.
    Linear {
        per_hour: f64,
    },
    /// `per_second * dt`.
    PerSecond(f64),
    /// `per_sqrt_hour * sqrt(dt / HOUR)`: decelerating but unbounded.
    Sqrt {
        per_sqrt_hour: f64,
    },
    /// Poisson arrivals summed from `leak_start` at `per_hour` times the modulation,
    /// drawn after the noise; reset at every restart.
    Counter {
        per_hour: f64,
        rate: Modulation,
    },
}

/// How a counter's arrival rate varies.
#[derive(Clone, Copy)]
enum Modulation {
    Flat,
    /// Daily traffic (see [`traffic`]).
    Traffic,
    /// User activity wandering +-25% over three hours.
    Activity,
}

/// A random term added to a value, drawn in order.
#[derive(Clone, Copy)]
enum Noise {
    /// `sd * N(0, 1)`.
    Normal(f64),
    /// `round(sd * N(0, 1))`.
    RoundedNormal(f64),
    /// `Poisson(mean)`.
    Poisson(f64),
    /// `-Poisson(mean)`.
    LessPoisson(f64),
    /// `Poisson(mean) - mean`.
    CenteredPoisson(f64),
    /// 1 with probability `p`.
    Bernoulli(f64),
    /// AR(1) noise (see [`Ar1`]).
    Ar1 { sd: f64, phi: f64 },
    /// GC garbage of about this height (see [`Sawtooth`]).
    Sawtooth(f64),
}

#[derive(Clone, Copy)]
enum Round {
    No,
    Nearest,
    NearestNonNegative,
}

/// Times drawn before the first sample, as `(time, size or end)`.
#[derive(Clone, Copy)]
enum Schedule {
    None,
    /// For each night in `nights`, with probability `p`: `at` after midnight plus up to
    /// `jitter`.
    NightlySteps {
        nights: (u32, u32),
        p: f64,
        at: f64,
        jitter: f64,
    },
    /// The first burst `between(first)` after `T0`, then every `between(gap)`, until the
    /// end; each of size `between(size)`.
    Bursts {
        first: (f64, f64),
        gap: (f64, f64),
        size: (f64, f64),
    },
    /// For each of `nights` nights: from `at` after midnight plus up to `jitter`, for
    /// `length` plus up to `stretch`.
    Windows {
        nights: u32,
        at: f64,
        jitter: f64,
        length: f64,
        stretch: f64,
    },
}

/// How the process restarts.
#[derive(Clone, Copy)]
enum Restarts {
    None,
    /// Once, at `T0 + at`.
    Deploy {
        at: f64,
        old_pid: u32,
        new_pid: u32,
        reason: &'static str,
    },
    /// Every night `at` after midnight (not at `T0`).
    Nightly {
        at: f64,
        first_pid: u32,
        reason: &'static str,
    },
    /// Lives of `between(life)`; each restart noticed up to a sample late when `late`;
    /// reasons taken by pid in turn.
    Crashes {
        life: (f64, f64),
        first_pid: u32,
        late: bool,
        reasons: &'static [&'static str],
    },
}

const API_RSS_LIMIT: f64 = 4.0 * GIB;
const PIPES_LIMIT: f64 = 4096.0;

/// The corpus: leaks first, then healthy look-alikes. Laid out by hand, one setting a
/// line where it fits, so that it reads as a table.
#[rustfmt::skip]
const CASES: &[CaseSpec] = &[
    // Seed 000: a new analytics client, and with it a new thread pool, per call. Calls
    // follow user activity, which wanders around 4,900 per hour.
    CaseSpec {
        name: "analytics-thread-pool-per-call",
        description: "seed 000: a thread pool per analytics call, ~4,900 threads/h to pids.max",
        seed: 1, target: "java-svc", days: 2.0, leak_start: 2.0 * HOUR, stop: Some(2),
        kind: Kind::Leak { key: 0, related: &[2], start: LeakStart::Growth },
        series: &[
            SeriesSpec {
                growth: Growth::Counter { per_hour: 4_900.0, rate: Modulation::Activity },
                ..series("threads", "Analytics-#", Some(32_768.0))
            },
            SeriesSpec {
                level: Level::Const(4.0), noise: &[Noise::Bernoulli(0.05)],
                ..series("threads", "worker-#", Some(32_768.0))
            },
            SeriesSpec {
                sum_of: &[0, 1], level: Level::Const(38.0), noise: &[Noise::Poisson(2.0)],
                ..series("threads", "", Some(32_768.0))
            },
        ],
        shown: &[2, 0, 1],
        ..NO_CASE
    },
    // Seed 001: responses never closed on 403, sockets pile up in CLOSE_WAIT until the
    // 1,024-connection pool is exhausted. Leaks follow daily traffic.
    CaseSpec {
        name: "close-wait-pool",
        description: "seed 001: CLOSE_WAIT sockets leak with traffic until the 1,024 pool is full",
        seed: 2, target: "dropwizard-svc", days: 5.0, leak_start: 3.0 * HOUR, stop: Some(0),
        kind: Kind::Leak { key: 0, related: &[2], start: LeakStart::Growth },
        series: &[
            SeriesSpec {
                growth: Growth::Counter { per_hour: 22.0, rate: Modulation::Traffic },
                ..series("sockets", "CLOSE_WAIT 127.0.0.1:8443", Some(1024.0))
            },
            SeriesSpec {
                level: Level::Traffic(18.0), noise: &[Noise::Normal(3.0)],
                round: Round::NearestNonNegative,
                ..series("sockets", "ESTABLISHED 127.0.0.1:8443", Some(1024.0))
            },
            SeriesSpec {
                sum_of: &[0, 1], level: Level::Const(12.0), noise: &[Noise::Poisson(1.0)],
                ..series("fds", "socket", Some(65_536.0))
            },
        ],
        shown: &[0, 1, 2],
        ..NO_CASE
    },
    // Resident memory growing by 1% of memory.max per hour under correlated noise.
    CaseSpec {
        name: "rss-linear-1pct-per-hour",
        description: "memory rss +1% of memory.max per hour from 30%, correlated noise",
        seed: 3, target: "api-svc", days: 10.0, leak_start: 6.0 * HOUR, stop: Some(0),
        kind: Kind::Leak { key: 0, related: &[], start: LeakStart::Growth },
        series: &[SeriesSpec {
            level: Level::Const(0.3 * API_RSS_LIMIT),
            growth: Growth::PerSecond(0.01 * API_RSS_LIMIT / HOUR),
            noise: &[
                Noise::Ar1 { sd: 0.005 * API_RSS_LIMIT, phi: 0.9 },
                Noise::Normal(0.002 * API_RSS_LIMIT),
            ],
            ..series("memory", "rss", Some(API_RSS_LIMIT))
        }],
        ..NO_CASE
    },
    // Pipes leaking at 0.2% of RLIMIT_NOFILE per hour: three weeks to the outage, next to
    // a healthy, noisy socket count.
    CaseSpec {
        name: "pipe-fds-0.2pct-per-hour",
        description: "fds pipe +0.2% of RLIMIT_NOFILE per hour beside noisy sockets",
        seed: 4, target: "ingest-svc", days: 40.0, leak_start: 12.0 * HOUR, stop: Some(2),
        kind: Kind::Leak { key: 0, related: &[2], start: LeakStart::Growth },
        series: &[
            SeriesSpec {
                growth: Growth::Counter { per_hour: 0.002 * PIPES_LIMIT, rate: Modulation::Flat },
                ..series("fds", "pipe", Some(PIPES_LIMIT))
            },
            SeriesSpec {
                level: Level::Const(300.0), noise: &[Noise::Ar1 { sd: 15.0, phi: 0.95 }],
                round: Round::NearestNonNegative,
                ..series("fds", "socket", Some(PIPES_LIMIT))
            },
            SeriesSpec {
                sum_of: &[0, 1], level: Level::Const(40.0),
                ..series("fds", "", Some(PIPES_LIMIT))
            },
        ],
        shown: &[2, 0, 1],
        ..NO_CASE
    },
    // Seed 003: a race in the pool's nightly refresh keeps the old set of database
    // connections: one step of +20 most nights (02:00 plus up to 20 minutes, skipped on
    // one night in ten). Idle connections are occasionally recycled, dipping the count
    // for a sample.
    CaseSpec {
        name: "nightly-db-connection-steps",
        description: "seed 003: +20 DB connections at ~02:00 most nights, up to the 400 allowed",
        seed: 5, target: "cheaptickets-web", days: 40.0, stop: Some(0),
        kind: Kind::Leak { key: 0, related: &[1], start: LeakStart::FirstEvent },
        schedule: Schedule::NightlySteps {
            nights: (1, 60), p: 0.9, at: 2.0 * HOUR, jitter: 20.0 * MINUTE,
        },
        series: &[
            SeriesSpec {
                level: Level::Steps { base: 50.0, step: 20.0 },
                noise: &[Noise::LessPoisson(0.3)],
                ..series("sockets", "ESTABLISHED 10.0.0.5:1521", Some(400.0))
            },
            SeriesSpec {
                sum_of: &[0], level: Level::Const(30.0), noise: &[Noise::Poisson(2.0)],
                ..series("fds", "socket", Some(65_536.0))
            },
            SeriesSpec {
                level: Level::Const(120.0), noise: &[Noise::RoundedNormal(2.0)],
                ..series("threads", "", Some(4096.0))
            },
        ],
        shown: &[0, 1, 2],
        ..NO_CASE
    },
    // Seed 004: an unbounded memoize cache; the heap's post-GC floor rises under a
    // sawtooth of 500-700 MiB every 2-5 minutes.
    CaseSpec {
        name: "heap-sawtooth-rising-floor",
        description: "seed 004: memoize cache, heap floor +45 MiB/h under a 600 MiB GC sawtooth",
        seed: 6, target: "clojure-api", days: 10.0, leak_start: 4.0 * HOUR, stop: Some(0),
        kind: Kind::Leak { key: 0, related: &[], start: LeakStart::Growth },
        series: &[SeriesSpec {
            level: Level::Const(1.3 * GIB),
            growth: Growth::Linear { per_hour: 45.0 * MIB },
            noise: &[Noise::Sawtooth(600.0 * MIB), Noise::Normal(5.0 * MIB)],
            ..series("memory", "heap", Some(4.0 * GIB))
        }],
        ..NO_CASE
    },
    // A sub-linear leak: growth like the square root of time, still unbounded.
    CaseSpec {
        name: "sqrt-thread-leak",
        description: "threads growing like sqrt(time): decelerating but unbounded",
        seed: 7, target: "search-svc", days: 10.0, leak_start: 2.0 * HOUR, stop: Some(1),
        kind: Kind::Leak { key: 0, related: &[1], start: LeakStart::Growth },
        series: &[
            SeriesSpec {
                level: Level::Const(30.0), growth: Growth::Sqrt { per_sqrt_hour: 365.0 },
                noise: &[Noise::CenteredPoisson(3.0)], round: Round::Nearest,
                ..series("threads", "grpc-default-executor-#", Some(4096.0))
            },
            SeriesSpec {
                sum_of: &[0], level: Level::Const(50.0), noise: &[Noise::RoundedNormal(1.5)],
                ..series("threads", "", Some(4096.0))
            },
        ],
        shown: &[1, 0],
        ..NO_CASE
    },
    // Seed 002: a library leaks goroutines, but a fatal error restarts the server every
    // 20-60 minutes, so the count never gets far. Restarts are noticed up to a sample late.
    CaseSpec {
        name: "goroutines-masked-by-crash-restarts",
        description: "seed 002: goroutine leak reset by a silent crash-restart every 20-60 min",
        seed: 8, target: "go-api", days: 3.0,
        kind: Kind::Leak { key: 0, related: &[], start: LeakStart::Growth },
        restarts: Restarts::Crashes {
            life: (20.0 * MINUTE, 60.0 * MINUTE), first_pid: 4000, late: true,
            reasons: &["exit 2"],
        },
        series: &[SeriesSpec {
            level: Level::Const(40.0),
            growth: Growth::Counter { per_hour: 600.0, rate: Modulation::Flat },
            noise: &[Noise::Poisson(2.0)], young: Some((30.0, 9.0)),
            ..series("gauge", "go_goroutines", None)
        }],
        ..NO_CASE
    },
    // Seed 003's other leak: threads created but never started live forever; operations
    // restart every JVM at 02:00, so each life grows with the day's traffic and resets.
    CaseSpec {
        name: "threads-masked-by-nightly-restart",
        description: "seed 003: unstarted Thread objects leak ~80/h; a 02:00 restart resets them",
        seed: 9, target: "jvm-shop", days: 6.0,
        kind: Kind::Leak { key: 0, related: &[1], start: LeakStart::Growth },
        restarts: Restarts::Nightly { at: 2.0 * HOUR, first_pid: 7000, reason: "signal 15" },
        series: &[
            SeriesSpec {
                growth: Growth::Counter { per_hour: 80.0, rate: Modulation::Traffic },
                ..series("threads", "Thread-#", Some(4096.0))
            },
            SeriesSpec {
                sum_of: &[0], level: Level::Const(110.0), noise: &[Noise::RoundedNormal(2.0)],
                young: Some((2.0 * MINUTE, 60.0)),
                ..series("threads", "", Some(4096.0))
            },
        ],
        shown: &[1, 0],
        ..NO_CASE
    },
    // A leak of 25 threads/h on top of a daily cycle of +-100.
    CaseSpec {
        name: "leak-under-daily-cycle",
        description: "threads +25/h under a daily cycle of +-100",
        seed: 10, target: "svc-cycle", days: 10.0, leak_start: 12.0 * HOUR, stop: Some(0),
        kind: Kind::Leak { key: 0, related: &[], start: LeakStart::Growth },
        series: &[SeriesSpec {
            level: Level::Daily { mean: 300.0, amplitude: 100.0 },
            growth: Growth::Linear { per_hour: 25.0 },
            noise: &[Noise::Normal(4.0)], round: Round::Nearest,
            ..series("threads", "", Some(4096.0))
        }],
        ..NO_CASE
    },

    // Pools and JIT threads start within minutes, then the count stays flat.
    CaseSpec {
        name: "warmup-then-flat",
        description: "threads 20 -> 180 in minutes, then flat",
        seed: 101, target: "svc-warm", days: 4.0,
        series: &[SeriesSpec {
            level: Level::Fill {
                base: 20.0, size: 160.0, tau: 3.0 * MINUTE, at: 0.0, before: 20.0,
            },
            noise: &[Noise::Normal(2.0)], round: Round::Nearest,
            ..series("threads", "", Some(4096.0))
        }],
        ..NO_CASE
    },
    // A bounded cache filling in the first hours (time constant 40 min) to a plateau.
    CaseSpec {
        name: "cache-fills-fast",
        description: "rss +1 GiB cache, 1-exp fill with tau 40 min",
        seed: 102, target: "svc-cache", days: 3.0,
        series: &[SeriesSpec {
            level: Level::Fill {
                base: 0.8 * GIB, size: 1.0 * GIB, tau: 40.0 * MINUTE, at: 0.0, before: 0.8 * GIB,
            },
            noise: &[Noise::Normal(8.0 * MIB)],
            ..series("memory", "rss", Some(4.0 * GIB))
        }],
        ..NO_CASE
    },
    // A bounded cache filling slowly (time constant 4 h) to a plateau well below the limit.
    CaseSpec {
        name: "cache-fills-slowly",
        description: "rss +0.6 GiB cache, 1-exp fill with tau 4 h",
        seed: 103, target: "svc-memo", days: 4.0,
        series: &[SeriesSpec {
            level: Level::Fill {
                base: 1.0 * GIB, size: 0.6 * GIB, tau: 4.0 * HOUR, at: 0.0, before: 1.0 * GIB,
            },
            noise: &[Noise::Normal(8.0 * MIB)],
            ..series("memory", "rss", Some(4.0 * GIB))
        }],
        ..NO_CASE
    },
    // Connection bursts (+200..350 in 15 min) that drain over the next hours.
    CaseSpec {
        name: "bursts-that-drain",
        description: "sockets burst +200..350 in 15 min, drain with tau 40 min",
        seed: 104, target: "svc-burst", days: 4.0,
        schedule: Schedule::Bursts {
            first: (3.0 * HOUR, 8.0 * HOUR), gap: (6.0 * HOUR, 10.0 * HOUR), size: (200.0, 350.0),
        },
        series: &[SeriesSpec {
            level: Level::Bursts { base: 30.0, ramp: 15.0 * MINUTE, tau: 40.0 * MINUTE },
            noise: &[Noise::Normal(3.0)], round: Round::NearestNonNegative,
            ..series("sockets", "ESTABLISHED 10.0.0.9:5432", Some(1024.0))
        }],
        ..NO_CASE
    },
    // Threads follow daily traffic: +-100 around 300, lowest at midnight.
    CaseSpec {
        name: "daily-seasonality",
        description: "threads 200..400 following daily traffic",
        seed: 105, target: "svc-daily", days: 5.0,
        series: &[SeriesSpec {
            level: Level::Daily { mean: 300.0, amplitude: 100.0 },
            noise: &[Noise::Normal(4.0)], round: Round::Nearest,
            ..series("threads", "", Some(4096.0))
        }],
        ..NO_CASE
    },
    // A deploy (restart) raises the thread count from 150 to 230 for good.
    CaseSpec {
        name: "deploy-level-shift",
        description: "a deploy (restart) moves threads from 150 to 230",
        seed: 106, target: "svc-deploy", days: 4.0,
        restarts: Restarts::Deploy {
            at: 30.0 * HOUR, old_pid: 100, new_pid: 200, reason: "signal 15",
        },
        series: &[SeriesSpec {
            level: Level::Fill {
                base: 60.0, size: 170.0, tau: MINUTE, at: 30.0 * HOUR, before: 150.0,
            },
            noise: &[Noise::Normal(2.0)], round: Round::Nearest,
            ..series("threads", "", Some(4096.0))
        }],
        ..NO_CASE
    },
    // A configuration reload enables a cache: rss steps up by 0.5 GiB without a restart.
    CaseSpec {
        name: "level-shift-without-restart",
        description: "rss steps 1.0 -> 1.5 GiB at a config reload",
        seed: 107, target: "svc-reload", days: 4.0,
        series: &[SeriesSpec {
            level: Level::Ramp {
                base: 1.0 * GIB, size: 0.5 * GIB, at: 40.0 * HOUR, over: 5.0 * MINUTE,
            },
            noise: &[Noise::Normal(10.0 * MIB)],
            ..series("memory", "rss", Some(4.0 * GIB))
        }],
        ..NO_CASE
    },
    // A healthy JVM heap: 600 MiB of garbage every 2-5 minutes over a flat floor.
    CaseSpec {
        name: "flat-gc-sawtooth",
        description: "heap sawtooth 1.3 + 0.6 GiB with a flat floor",
        seed: 108, target: "svc-gc", days: 3.0,
        series: &[SeriesSpec {
            level: Level::Const(1.3 * GIB),
            noise: &[Noise::Sawtooth(600.0 * MIB), Noise::Normal(5.0 * MIB)],
            ..series("memory", "heap", Some(4.0 * GIB))
        }],
        ..NO_CASE
    },
    // Strongly autocorrelated noise (AR(1), phi 0.98, sd 8) around 120 fds.
    CaseSpec {
        name: "correlated-noise",
        description: "fds 120 with AR(1) noise (phi 0.98, sd 8)",
        seed: 109, target: "svc-noise", days: 4.0,
        series: &[SeriesSpec {
            level: Level::Const(120.0), noise: &[Noise::Ar1 { sd: 8.0, phi: 0.98 }],
            round: Round::Nearest,
            ..series("fds", "", Some(1024.0))
        }],
        ..NO_CASE
    },
    // A crash loop (every 10-20 min) without any leak: a crash-loop finding, no leak.
    CaseSpec {
        name: "crash-loop-without-leak",
        description: "restarts every 10-20 min, goroutines flat in each life",
        seed: 110, target: "svc-crashy", days: 2.0,
        restarts: Restarts::Crashes {
            life: (10.0 * MINUTE, 20.0 * MINUTE), first_pid: 9000, late: false,
            reasons: &["signal 9", "oom", "exit 2"],
        },
        series: &[SeriesSpec {
            level: Level::Const(40.0), noise: &[Noise::RoundedNormal(2.0)],
            young: Some((30.0, 9.0)),
            ..series("gauge", "go_goroutines", None)
        }],
        ..NO_CASE
    },
    // A nightly batch job holds 60 extra connections from ~02:00 to ~05:00, then returns
    // them: nightly steps that come back down.
    CaseSpec {
        name: "nightly-batch-job",
        description: "sockets +60 from 02:00 to 05:00 each night, then back",
        seed: 111, target: "svc-batch", days: 6.0,
        schedule: Schedule::Windows {
            nights: 7, at: 2.0 * HOUR, jitter: 10.0 * MINUTE,
            length: 3.0 * HOUR, stretch: 20.0 * MINUTE,
        },
        series: &[SeriesSpec {
            level: Level::Windows { base: 40.0, extra: 60.0 },
            noise: &[Noise::RoundedNormal(2.0)],
            ..series("sockets", "ESTABLISHED 10.0.0.7:5432", Some(200.0))
        }],
        ..NO_CASE
    },
];

/// The defaults of a case: healthy, one series shown, no schedule, no restarts, no growth
/// (`leak_start` at `T0`), no stop.
const NO_CASE: CaseSpec = CaseSpec {
    name: "",
    description: "",
    seed: 0,
    target: "",
    kind: Kind::Healthy,
    leak_start: 0.0,
    days: 0.0,
    stop: None,
    schedule: Schedule::None,
    restarts: Restarts::None,
    series: &[],
    shown: &[0],
};

// ----------------------------------------------------------------------------------------
// The generator
// ----------------------------------------------------------------------------------------

/// Generates the case `spec` describes from `seed`: the schedule first, then the noise
/// states, then sample after sample (through the lives of a crash loop when it has one).
fn generate(spec: &CaseSpec, seed: u64) -> Case {
    let mut rng = Rng::new(seed);
    let end = T0 + spec.days * DAY;
    let events = draw_schedule(&spec.schedule, &mut rng, end);
    let mut run = Run::new(spec, events, &mut rng);
    let t = match spec.restarts {
        Restarts::Crashes {
            life,
            first_pid,
            late,
            reasons,
        } => run.through_crashes(&mut rng, end, life, first_pid, late, reasons),
        _ => run.through_time(&mut rng, end),
    };
    if let Restarts::Deploy {
        at,
        old_pid,
        new_pid,
        reason,
    } = spec.restarts
    {
        run.restarts.push(Restart {
            target: spec.target.to_string(),
            t: T0 + at,
            old_pid: Some(old_pid),
            new_pid: Some(new_pid),
            reason: reason.to_string(),
        });
    }
    run.finish(if spec.stop.is_some() { t } else { end })
}

/// A restart of `pid` at `t`, with the reason `reasons` give that pid in turn.
fn restart(target: &str, t: f64, pid: u32, reasons: &[&str]) -> Restart {
    Restart {
        target: target.to_string(),
        t,
        old_pid: Some(pid),
        new_pid: Some(pid + 1),
        reason: reasons[pid as usize % reasons.len()].to_string(),
    }
}

/// Draws a case's schedule (see [`Schedule`]) before its first sample.
fn draw_schedule(schedule: &Schedule, rng: &mut Rng, end: f64) -> Vec<(f64, f64)> {
    let mut events = Vec::new();
    match *schedule {
        Schedule::None => {}
        Schedule::NightlySteps {
            nights,
            p,
            at,
            jitter,
        } => {
            for night in nights.0..nights.1 {
                if rng.uniform() < p {
                    let t = T0 + night as f64 * DAY + at + rng.between(0.0, jitter);
                    events.push((t, 0.0));
                }
            }
        }
        Schedule::Bursts { first, gap, size } => {
            let mut next = T0 + rng.between(first.0, first.1);
            while next < end {
                events.push((next, rng.between(size.0, size.1)));
                next += rng.between(gap.0, gap.1);
            }
        }
        Schedule::Windows {
            nights,
            at,
            jitter,
            length,
            stretch,
        } => {
            for night in 0..nights {
                let start = T0 + night as f64 * DAY + at + rng.between(0.0, jitter);
                events.push((start, start + length + rng.between(0.0, stretch)));
            }
        }
    }
    events
}

/// The state of one noise term.
enum NoiseState {
    None,
    Ar1(Ar1),
    Sawtooth(Sawtooth),
}

/// A case being generated: its series so far and the state they carry between samples.
struct Run<'s> {
    spec: &'s CaseSpec,
    events: Vec<(f64, f64)>,
    tracks: Vec<Track>,
    /// Per series, per noise term.
    noise: Vec<Vec<NoiseState>>,
    /// Per series, the counter's sum in the current life.
    counters: Vec<f64>,
    /// Per series, its value in the current sample.
    values: Vec<f64>,
    life_start: f64,
    restarts: Vec<Restart>,
    /// When the stop series reached its limit.
    exhaustion: Option<f64>,
}

impl<'s> Run<'s> {
    /// Sets up the series of `spec`, drawing the initial noise states in order.
    fn new(spec: &'s CaseSpec, events: Vec<(f64, f64)>, rng: &mut Rng) -> Run<'s> {
        let tracks = spec
            .series
            .iter()
            .map(|s| Track::new(key(spec.target, s.resource, s.attribution), s.limit))
            .collect();
        let noise = spec
            .series
            .iter()
            .map(|s| {
                s.noise
                    .iter()
                    .map(|term| match *term {
                        Noise::Ar1 { sd, phi } => NoiseState::Ar1(Ar1::new(sd, phi)),
                        Noise::Sawtooth(height) => {
                            NoiseState::Sawtooth(Sawtooth::new(rng, T0, height))
                        }
                        _ => NoiseState::None,
                    })
                    .collect()
            })
            .collect();
        Run {
            spec,
            events,
            tracks,
            noise,
            counters: vec![0.0; spec.series.len()],
            values: vec![0.0; spec.series.len()],
            life_start: T0,
            restarts: Vec::new(),
            exhaustion: None,
        }
    }

    /// Samples from `T0` to `end` (or the outage), with a restart every night when the
    /// spec has nightly restarts; returns the time after the last sample.
    fn through_time(&mut self, rng: &mut Rng, end: f64) -> f64 {
        let mut pid = 0;
        let mut t = T0;
        while t <= end {
            if let Restarts::Nightly {
                at,
                first_pid,
                reason,
            } = self.spec.restarts
            {
                let since_midnight = (t - T0) % DAY;
                if (since_midnight - at).abs() < INTERVAL / 2.0 && t > T0 {
                    let restart = restart(self.spec.target, t, first_pid + pid, &[reason]);
                    self.restarts.push(restart);
                    pid += 1;
                    self.restart(t);
                }
            }
            if self.sample(rng, t) {
                self.exhaustion = Some(t);
                break;
            }
            t += INTERVAL;
        }
        t
    }

    /// Samples from `T0` to `end` (or the outage) through lives of `between(life)`, each
    /// ended by a crash noticed up to a sample late when `late`; returns the time after
    /// the last sample.
    fn through_crashes(
        &mut self,
        rng: &mut Rng,
        end: f64,
        life: (f64, f64),
        first_pid: u32,
        late: bool,
        reasons: &[&str],
    ) -> f64 {
        let mut pid = first_pid;
        let mut t = T0;
        while t <= end {
            let life_end = t + rng.between(life.0, life.1);
            self.restart(t);
            while t < life_end && t <= end {
                if self.sample(rng, t) {
                    self.exhaustion = Some(t);
                    return t;
                }
                t += INTERVAL;
            }
            if t <= end {
                let late = if late && rng.uniform() >= 0.5 {
                    INTERVAL
                } else {
                    0.0
                };
                self.restarts
                    .push(restart(self.spec.target, t + late, pid, reasons));
                pid += 1;
            }
        }
        t
    }

    /// A new process life begins at `t`: counters start again from zero.
    fn restart(&mut self, t: f64) {
        self.life_start = t;
        self.counters.fill(0.0);
    }

    /// Draws every series at `t`; true when the stop series reached its limit.
    fn sample(&mut self, rng: &mut Rng, t: f64) -> bool {
        let leak_start = T0 + self.spec.leak_start;
        for (i, series) in self.spec.series.iter().enumerate() {
            let young = series
                .young
                .filter(|&(seconds, _)| t - self.life_start < seconds)
                .map(|(_, value)| value);
            let mut drawn = [0.0; MAX_NOISE_TERMS];
            if young.is_none() {
                for (k, term) in series.noise.iter().enumerate() {
                    drawn[k] = draw(term, &mut self.noise[i][k], rng, t);
                }
            }
            if let Growth::Counter { per_hour, rate } = series.growth {
                if t >= leak_start {
                    let mean = match rate {
                        Modulation::Flat => per_hour * INTERVAL / HOUR,
                        Modulation::Traffic => per_hour * traffic(t) * INTERVAL / HOUR,
                        Modulation::Activity => per_hour * activity(t) * INTERVAL / HOUR,
                    };
                    self.counters[i] += rng.poisson(mean);
                }
            }
            let own = match young {
                Some(value) => value,
                None => {
                    let mut v = level(&series.level, t, &self.events);
                    let dt = (t - leak_start).max(0.0);
                    match series.growth {
                        Growth::None => {}
                        Growth::Linear { per_hour } => v += per_hour * dt / HOUR,
                        Growth::PerSecond(rate) => v += rate * dt,
                        Growth::Sqrt { per_sqrt_hour } => v += per_sqrt_hour * (dt / HOUR).sqrt(),
                        Growth::Counter { .. } => v += self.counters[i],
                    }
                    for (term, &x) in series.noise.iter().zip(&drawn) {
                        v = match *term {
                            Noise::LessPoisson(_) => v - x,
                            Noise::CenteredPoisson(mean) => v + x - mean,
                            _ => v + x,
                        };
                    }
                    v
                }
            };
            let mut terms = series.sum_of.iter().map(|&j| self.values[j]);
            let v = match terms.next() {
                Some(first) => terms.fold(first, |sum, x| sum + x) + own,
                None => own,
            };
            let v = match series.round {
                Round::No => v,
                Round::Nearest => v.round(),
                Round::NearestNonNegative => v.round().max(0.0),
            };
            self.values[i] = v;
            self.tracks[i].push(t, v);
        }
        self.spec.stop.is_some_and(|i| {
            self.spec.series[i]
                .limit
                .is_some_and(|l| self.values[i] >= l)
        })
    }

    /// The case, with its series in the order shown and its truth.
    fn finish(self, end: f64) -> Case {
        let spec = self.spec;
        let series_key = |i: usize| {
            let s = &spec.series[i];
            key(spec.target, s.resource, s.attribution)
        };
        let truth = match &spec.kind {
            Kind::Healthy => Truth::Healthy,
            Kind::Leak {
                key,
                related,
                start,
            } => Truth::Leak(LeakTruth {
                key: series_key(*key),
                related: related.iter().map(|&i| series_key(i)).collect(),
                start: match start {
                    LeakStart::Growth => T0 + spec.leak_start,
                    LeakStart::FirstEvent => self.events[0].0,
                },
                exhaustion: self.exhaustion,
            }),
        };
        let mut tracks: Vec<Option<Track>> = self.tracks.into_iter().map(Some).collect();
        Case {
            name: spec.name,
            description: spec.description,
            series: spec
                .shown
                .iter()
                .map(|&i| tracks[i].take().expect("shown once").done())
                .collect(),
            restarts: self.restarts,
            truth,
            start: T0,
            end,
        }
    }
}

/// The most noise terms a series has.
const MAX_NOISE_TERMS: usize = 2;

/// Draws one noise term at `t`.
fn draw(term: &Noise, state: &mut NoiseState, rng: &mut Rng, t: f64) -> f64 {
    match (*term, state) {
        (Noise::Normal(sd), _) => sd * rng.normal(),
        (Noise::RoundedNormal(sd), _) => (sd * rng.normal()).round(),
        (Noise::Poisson(mean) | Noise::LessPoisson(mean) | Noise::CenteredPoisson(mean), _) => {
            rng.poisson(mean)
        }
        (Noise::Bernoulli(p), _) => {
            if rng.uniform() < p {
                1.0
            } else {
                0.0
            }
        }
        (Noise::Ar1 { .. }, NoiseState::Ar1(ar1)) => ar1.next(rng),
        (Noise::Sawtooth(height), NoiseState::Sawtooth(saw)) => saw.garbage(rng, t, height),
        (Noise::Ar1 { .. } | Noise::Sawtooth(_), _) => unreachable!("state set up by Run::new"),
    }
}

/// The level of a series at `t` (see [`Level`]).
fn level(level: &Level, t: f64, events: &[(f64, f64)]) -> f64 {
    match *level {
        Level::Const(value) => value,
        Level::Daily { mean, amplitude } => mean - amplitude * (2.0 * PI * (t - T0) / DAY).cos(),
        Level::Traffic(scale) => scale * traffic(t),
        Level::Fill {
            base,
            size,
            tau,
            at,
            before,
        } => {
            let at = T0 + at;
            if t < at {
                before
            } else {
                base + size * (1.0 - (-(t - at) / tau).exp())
            }
        }
        Level::Ramp {
            base,
            size,
            at,
            over,
        } => base + size * ((t - (T0 + at)) / over).clamp(0.0, 1.0),
        Level::Steps { base, step } => {
            base + step * events.iter().filter(|&&(at, _)| at <= t).count() as f64
        }
        Level::Bursts { base, ramp, tau } => {
            let mut extra = 0.0;
            for &(at, size) in events {
                let since = t - at;
                if since < 0.0 {
                    continue;
                }
                extra += if since < ramp {
                    size * since / ramp
                } else {
                    size * (-(since - ramp) / tau).exp()
                };
            }
            base + extra
        }
        Level::Windows { base, extra } => {
            if events.iter().any(|&(from, to)| t >= from && t < to) {
                base + extra
            } else {
                base
            }
        }
    }
}

/// Collects one series' samples while a case is generated.
struct Track {
    key: SeriesKey,
    limit: Option<f64>,
    points: Vec<Point>,
}

impl Track {
    fn new(key: SeriesKey, limit: Option<f64>) -> Track {
        Track {
            key,
            limit,
            points: Vec::new(),
        }
    }

    fn push(&mut self, t: f64, v: f64) {
        self.points.push(Point::new(t, v));
    }

    fn done(self) -> Series {
        Series::new(self.key, self.points, self.limit)
    }
}

/// Daily traffic: 0.4 at midnight, 1.6 at noon, mean 1.
fn traffic(t: f64) -> f64 {
    1.0 - 0.6 * (2.0 * PI * (t - T0) / DAY).cos()
}

/// User activity: 0.75 to 1.25 over three hours, mean 1.
fn activity(t: f64) -> f64 {
    1.0 + 0.25 * (2.0 * PI * (t - T0) / (3.0 * HOUR)).sin()
}

/// AR(1) noise with the given stationary standard deviation and lag-1 correlation.
struct Ar1 {
    value: f64,
    phi: f64,
    innovation: f64,
}

impl Ar1 {
    fn new(sd: f64, phi: f64) -> Ar1 {
        Ar1 {
            value: 0.0,
            phi,
            innovation: sd * (1.0 - phi * phi).sqrt(),
        }
    }

    fn next(&mut self, rng: &mut Rng) -> f64 {
        self.value = self.phi * self.value + self.innovation * rng.normal();
        self.value
    }
}

/// A JVM-style heap: rises by allocation, drops to the live-set floor at each GC.
struct Sawtooth {
    cycle_start: f64,
    period: f64,
    height: f64,
}

impl Sawtooth {
    fn new(rng: &mut Rng, t: f64, mean_height: f64) -> Sawtooth {
        Sawtooth {
            cycle_start: t,
            period: rng.between(120.0, 300.0),
            height: mean_height * rng.between(0.8, 1.2),
        }
    }

    /// Garbage above the floor at time `t`.
    fn garbage(&mut self, rng: &mut Rng, t: f64, mean_height: f64) -> f64 {
        if t - self.cycle_start >= self.period {
            *self = Sawtooth::new(rng, t, mean_height);
        }
        self.height * (t - self.cycle_start) / self.period
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corpus_is_deterministic_and_well_formed() {
        let first = corpus();
        let second = corpus();
        assert_eq!(first.len(), second.len());
        for (a, b) in first.iter().zip(&second) {
            assert_eq!(a.series, b.series, "{}", a.name);
            for series in &a.series {
                assert!(
                    series.points.windows(2).all(|w| w[0].t < w[1].t),
                    "{} unsorted",
                    a.name
                );
                assert!(series.points.iter().all(|p| p.v.is_finite()), "{}", a.name);
            }
            if let Some(leak) = a.leak() {
                assert!(
                    a.series.iter().any(|s| s.key == leak.key),
                    "{} truth key missing",
                    a.name
                );
                assert!(leak.start >= a.start && leak.start < a.end, "{}", a.name);
                if let Some(exhaustion) = leak.exhaustion {
                    assert!(exhaustion > leak.start, "{}", a.name);
                }
            }
        }
        let n_leaks = first.iter().filter(|c| c.leak().is_some()).count();
        assert!(n_leaks >= 8 && first.len() - n_leaks >= 8);
    }

    /// What [`generate`] relies on: at most [`MAX_NOISE_TERMS`] noise terms, sums of
    /// earlier series only, every series shown once, indices in range, a stop series
    /// with a limit.
    #[test]
    fn case_specs_are_consistent() {
        for spec in CASES {
            let n = spec.series.len();
            for (i, series) in spec.series.iter().enumerate() {
                assert!(series.noise.len() <= MAX_NOISE_TERMS, "{}", spec.name);
                assert!(series.sum_of.iter().all(|&j| j < i), "{}", spec.name);
            }
            let mut shown = spec.shown.to_vec();
            shown.sort_unstable();
            assert_eq!(shown, (0..n).collect::<Vec<_>>(), "{}", spec.name);
            if let Some(stop) = spec.stop {
                assert!(spec.series[stop].limit.is_some(), "{}", spec.name);
            }
            if let Kind::Leak { key, related, .. } = spec.kind {
                assert!(key < n && related.iter().all(|&j| j < n), "{}", spec.name);
            }
        }
    }

    /// FNV-1a over everything a case holds: names, descriptions, truth, span, every
    /// series' key, limit and points (as bits), every restart.
    fn digest(cases: &[Case]) -> u64 {
        struct Fnv(u64);
        impl Fnv {
            fn bytes(&mut self, bytes: &[u8]) {
                for &byte in bytes {
                    self.0 = (self.0 ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
                }
                // A separator, so adjacent fields cannot trade bytes.
                self.0 = (self.0 ^ 0xff).wrapping_mul(0x0100_0000_01b3);
            }
            fn text(&mut self, text: &str) {
                self.bytes(text.as_bytes());
            }
            fn num(&mut self, value: f64) {
                self.bytes(&value.to_bits().to_le_bytes());
            }
            fn opt(&mut self, value: Option<f64>) {
                match value {
                    Some(value) => self.num(value),
                    None => self.text("none"),
                }
            }
        }
        let mut h = Fnv(0xcbf2_9ce4_8422_2325);
        for case in cases {
            h.text(case.name);
            h.text(case.description);
            h.num(case.start);
            h.num(case.end);
            match &case.truth {
                Truth::Healthy => h.text("healthy"),
                Truth::Leak(leak) => {
                    h.text(&leak.key.to_string());
                    for key in &leak.related {
                        h.text(&key.to_string());
                    }
                    h.num(leak.start);
                    h.opt(leak.exhaustion);
                }
            }
            for series in &case.series {
                h.text(&series.key.to_string());
                h.opt(series.limit);
                h.bytes(&(series.points.len() as u64).to_le_bytes());
                for point in &series.points {
                    h.num(point.t);
                    h.num(point.v);
                }
            }
            for restart in &case.restarts {
                h.text(&restart.target);
                h.num(restart.t);
                h.opt(restart.old_pid.map(f64::from));
                h.opt(restart.new_pid.map(f64::from));
                h.text(&restart.reason);
            }
        }
        h.0
    }

    /// Pins the generated corpus bit for bit (seed variants 0 and 1): how the cases are
    /// written may change, what they generate may not.
    #[test]
    fn corpus_digest_is_pinned() {
        let digests = [digest(&corpus()), digest(&corpus_with_seed(1))];
        assert_eq!(
            digests,
            [7_594_573_868_811_091_937, 9_821_028_416_794_552_524]
        );
    }
}
