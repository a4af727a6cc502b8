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
    let seed = |base: u64| base + variant.wrapping_mul(1_000_003);
    vec![
        analytics_thread_pool_per_call(seed(1)),
        close_wait_pool(seed(2)),
        rss_linear_one_percent(seed(3)),
        pipe_fds_slow(seed(4)),
        nightly_db_connections(seed(5)),
        heap_sawtooth_rising_floor(seed(6)),
        sqrt_thread_leak(seed(7)),
        goroutines_masked_by_crash_restarts(seed(8)),
        threads_masked_by_nightly_restart(seed(9)),
        leak_under_daily_cycle(seed(10)),
        warmup_then_flat(seed(101)),
        cache_fills_fast(seed(102)),
        cache_fills_slowly(seed(103)),
        bursts_that_drain(seed(104)),
        daily_seasonality(seed(105)),
        deploy_level_shift(seed(106)),
        level_shift_without_restart(seed(107)),
        flat_gc_sawtooth(seed(108)),
        correlated_noise(seed(109)),
        crash_loop_without_leak(seed(110)),
        nightly_batch_job(seed(111)),
    ]
}

fn key(target: &str, resource: &str, attribution: &str) -> SeriesKey {
    SeriesKey::from_text(target, resource, attribution)
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

// ----------------------------------------------------------------------------------------
// Leaks
// ----------------------------------------------------------------------------------------

/// Seed 000: a new analytics client, and with it a new thread pool, per call.
fn analytics_thread_pool_per_call(seed: u64) -> Case {
    let mut rng = Rng::new(seed);
    let limit = 32_768.0;
    let target = "java-svc";
    let leak_start = T0 + 2.0 * HOUR;
    let mut total = Track::new(key(target, "threads", ""), Some(limit));
    let mut analytics = Track::new(key(target, "threads", "Analytics-#"), Some(limit));
    let mut workers = Track::new(key(target, "threads", "worker-#"), Some(limit));
    let mut n_analytics = 0.0;
    let mut t = T0;
    let mut exhaustion = None;
    while t <= T0 + 2.0 * DAY {
        if t >= leak_start {
            // Calls follow user activity, which wanders around 4,900 per hour.
            let activity = 1.0 + 0.25 * (2.0 * PI * (t - T0) / (3.0 * HOUR)).sin();
            n_analytics += rng.poisson(4_900.0 * activity * INTERVAL / HOUR);
        }
        let n_workers = 4.0 + if rng.uniform() < 0.05 { 1.0 } else { 0.0 };
        let n_total = n_analytics + n_workers + 38.0 + rng.poisson(2.0);
        total.push(t, n_total);
        analytics.push(t, n_analytics);
        workers.push(t, n_workers);
        if n_total >= limit {
            exhaustion = Some(t);
            break;
        }
        t += INTERVAL;
    }
    Case {
        name: "analytics-thread-pool-per-call",
        description: "seed 000: a thread pool per analytics call, ~4,900 threads/h to pids.max",
        series: vec![total.done(), analytics.done(), workers.done()],
        restarts: Vec::new(),
        truth: Truth::Leak(LeakTruth {
            key: key(target, "threads", "Analytics-#"),
            related: vec![key(target, "threads", "")],
            start: leak_start,
            exhaustion,
        }),
        start: T0,
        end: t,
    }
}

/// Seed 001: responses never closed on 403, sockets pile up in CLOSE_WAIT until the
/// 1,024-connection pool is exhausted. Leaks follow daily traffic.
fn close_wait_pool(seed: u64) -> Case {
    let mut rng = Rng::new(seed);
    let target = "dropwizard-svc";
    let pool = 1024.0;
    let leak_start = T0 + 3.0 * HOUR;
    let mut close_wait = Track::new(
        key(target, "sockets", "CLOSE_WAIT 127.0.0.1:8443"),
        Some(pool),
    );
    let mut established = Track::new(
        key(target, "sockets", "ESTABLISHED 127.0.0.1:8443"),
        Some(pool),
    );
    let mut fds = Track::new(key(target, "fds", "socket"), Some(65_536.0));
    let mut leaked = 0.0;
    let mut t = T0;
    let mut exhaustion = None;
    while t <= T0 + 5.0 * DAY {
        if t >= leak_start {
            leaked += rng.poisson(22.0 * traffic(t) * INTERVAL / HOUR);
        }
        let active = (18.0 * traffic(t) + 3.0 * rng.normal()).round().max(0.0);
        close_wait.push(t, leaked);
        established.push(t, active);
        fds.push(t, leaked + active + 12.0 + rng.poisson(1.0));
        if leaked >= pool {
            exhaustion = Some(t);
            break;
        }
        t += INTERVAL;
    }
    Case {
        name: "close-wait-pool",
        description: "seed 001: CLOSE_WAIT sockets leak with traffic until the 1,024 pool is full",
        series: vec![close_wait.done(), established.done(), fds.done()],
        restarts: Vec::new(),
        truth: Truth::Leak(LeakTruth {
            key: key(target, "sockets", "CLOSE_WAIT 127.0.0.1:8443"),
            related: vec![key(target, "fds", "socket")],
            start: leak_start,
            exhaustion,
        }),
        start: T0,
        end: t,
    }
}

/// Resident memory growing by 1% of memory.max per hour under correlated noise.
fn rss_linear_one_percent(seed: u64) -> Case {
    let mut rng = Rng::new(seed);
    let target = "api-svc";
    let limit = 4.0 * GIB;
    let leak_start = T0 + 6.0 * HOUR;
    let rate = 0.01 * limit / HOUR;
    let mut rss = Track::new(key(target, "memory", "rss"), Some(limit));
    let mut wander = Ar1::new(0.005 * limit, 0.9);
    let (mut t, mut exhaustion) = (T0, None);
    while t <= T0 + 10.0 * DAY {
        let v = 0.3 * limit
            + rate * (t - leak_start).max(0.0)
            + wander.next(&mut rng)
            + 0.002 * limit * rng.normal();
        rss.push(t, v);
        if v >= limit {
            exhaustion = Some(t);
            break;
        }
        t += INTERVAL;
    }
    let end = t;
    Case {
        name: "rss-linear-1pct-per-hour",
        description: "memory rss +1% of memory.max per hour from 30%, correlated noise",
        series: vec![rss.done()],
        restarts: Vec::new(),
        truth: Truth::Leak(LeakTruth {
            key: key(target, "memory", "rss"),
            related: Vec::new(),
            start: leak_start,
            exhaustion,
        }),
        start: T0,
        end,
    }
}

/// Pipes leaking at 0.2% of RLIMIT_NOFILE per hour: three weeks to the outage, next to a
/// healthy, noisy socket count.
fn pipe_fds_slow(seed: u64) -> Case {
    let mut rng = Rng::new(seed);
    let target = "ingest-svc";
    let limit = 4096.0;
    let leak_start = T0 + 12.0 * HOUR;
    let rate = 0.002 * limit;
    let mut total = Track::new(key(target, "fds", ""), Some(limit));
    let mut pipes = Track::new(key(target, "fds", "pipe"), Some(limit));
    let mut sockets = Track::new(key(target, "fds", "socket"), Some(limit));
    let mut socket_noise = Ar1::new(15.0, 0.95);
    let mut n_pipes = 0.0;
    let (mut t, mut exhaustion) = (T0, None);
    while t <= T0 + 40.0 * DAY {
        if t >= leak_start {
            n_pipes += rng.poisson(rate * INTERVAL / HOUR);
        }
        let n_sockets = (300.0 + socket_noise.next(&mut rng)).round().max(0.0);
        let n_total = n_pipes + n_sockets + 40.0;
        pipes.push(t, n_pipes);
        sockets.push(t, n_sockets);
        total.push(t, n_total);
        if n_total >= limit {
            exhaustion = Some(t);
            break;
        }
        t += INTERVAL;
    }
    let end = t;
    Case {
        name: "pipe-fds-0.2pct-per-hour",
        description: "fds pipe +0.2% of RLIMIT_NOFILE per hour beside noisy sockets",
        series: vec![total.done(), pipes.done(), sockets.done()],
        restarts: Vec::new(),
        truth: Truth::Leak(LeakTruth {
            key: key(target, "fds", "pipe"),
            related: vec![key(target, "fds", "")],
            start: leak_start,
            exhaustion,
        }),
        start: T0,
        end,
    }
}

/// Seed 003: a race in the pool's nightly refresh keeps the old set of database
/// connections: one step of +20 most nights.
fn nightly_db_connections(seed: u64) -> Case {
    let mut rng = Rng::new(seed);
    let target = "cheaptickets-web";
    let capacity = 400.0;
    // Step times: 02:00 plus up to 20 minutes, skipped on one night in ten.
    let mut steps = Vec::new();
    for night in 1..60 {
        if rng.uniform() < 0.9 {
            steps.push(T0 + night as f64 * DAY + 2.0 * HOUR + rng.between(0.0, 20.0 * MINUTE));
        }
    }
    let level = |t: f64| 50.0 + 20.0 * steps.iter().filter(|&&s| s <= t).count() as f64;
    let mut connections = Track::new(
        key(target, "sockets", "ESTABLISHED 10.0.0.5:1521"),
        Some(capacity),
    );
    let mut fds = Track::new(key(target, "fds", "socket"), Some(65_536.0));
    let mut threads = Track::new(key(target, "threads", ""), Some(4096.0));
    let (mut t, mut exhaustion) = (T0, None);
    while t <= T0 + 40.0 * DAY {
        // Idle connections are occasionally recycled, dipping the count for a sample.
        let n = level(t) - rng.poisson(0.3);
        connections.push(t, n);
        fds.push(t, n + 30.0 + rng.poisson(2.0));
        threads.push(t, 120.0 + (2.0 * rng.normal()).round());
        if n >= capacity {
            exhaustion = Some(t);
            break;
        }
        t += INTERVAL;
    }
    let end = t;
    Case {
        name: "nightly-db-connection-steps",
        description: "seed 003: +20 DB connections at ~02:00 most nights, up to the 400 allowed",
        series: vec![connections.done(), fds.done(), threads.done()],
        restarts: Vec::new(),
        truth: Truth::Leak(LeakTruth {
            key: key(target, "sockets", "ESTABLISHED 10.0.0.5:1521"),
            related: vec![key(target, "fds", "socket")],
            start: steps[0],
            exhaustion,
        }),
        start: T0,
        end,
    }
}

/// Seed 004: an unbounded memoize cache; the heap's post-GC floor rises under a sawtooth
/// of 500-700 MiB every 2-5 minutes.
fn heap_sawtooth_rising_floor(seed: u64) -> Case {
    let mut rng = Rng::new(seed);
    let target = "clojure-api";
    let limit = 4.0 * GIB;
    let leak_start = T0 + 4.0 * HOUR;
    let height = 600.0 * MIB;
    let floor = |t: f64| 1.3 * GIB + 45.0 * MIB * (t - leak_start).max(0.0) / HOUR;
    let mut heap = Track::new(key(target, "memory", "heap"), Some(limit));
    let mut saw = Sawtooth::new(&mut rng, T0, height);
    let (mut t, mut exhaustion) = (T0, None);
    while t <= T0 + 10.0 * DAY {
        let garbage = saw.garbage(&mut rng, t, height);
        let v = floor(t) + garbage + 5.0 * MIB * rng.normal();
        heap.push(t, v);
        if v >= limit {
            exhaustion = Some(t);
            break;
        }
        t += INTERVAL;
    }
    let end = t;
    Case {
        name: "heap-sawtooth-rising-floor",
        description: "seed 004: memoize cache, heap floor +45 MiB/h under a 600 MiB GC sawtooth",
        series: vec![heap.done()],
        restarts: Vec::new(),
        truth: Truth::Leak(LeakTruth {
            key: key(target, "memory", "heap"),
            related: Vec::new(),
            start: leak_start,
            exhaustion,
        }),
        start: T0,
        end,
    }
}

/// A sub-linear leak: growth like the square root of time, still unbounded.
fn sqrt_thread_leak(seed: u64) -> Case {
    let mut rng = Rng::new(seed);
    let target = "search-svc";
    let limit = 4096.0;
    let leak_start = T0 + 2.0 * HOUR;
    let grpc = |t: f64| 30.0 + 365.0 * ((t - leak_start).max(0.0) / HOUR).sqrt();
    let mut total = Track::new(key(target, "threads", ""), Some(limit));
    let mut leaking = Track::new(
        key(target, "threads", "grpc-default-executor-#"),
        Some(limit),
    );
    let (mut t, mut exhaustion) = (T0, None);
    while t <= T0 + 10.0 * DAY {
        let n = (grpc(t) + rng.poisson(3.0) - 3.0).round();
        let n_total = n + 50.0 + (1.5 * rng.normal()).round();
        leaking.push(t, n);
        total.push(t, n_total);
        if n_total >= limit {
            exhaustion = Some(t);
            break;
        }
        t += INTERVAL;
    }
    let end = t;
    Case {
        name: "sqrt-thread-leak",
        description: "threads growing like sqrt(time): decelerating but unbounded",
        series: vec![total.done(), leaking.done()],
        restarts: Vec::new(),
        truth: Truth::Leak(LeakTruth {
            key: key(target, "threads", "grpc-default-executor-#"),
            related: vec![key(target, "threads", "")],
            start: leak_start,
            exhaustion,
        }),
        start: T0,
        end,
    }
}

/// Seed 002: a library leaks goroutines, but a fatal error restarts the server every
/// 20-60 minutes, so the count never gets far. Restarts are noticed up to a sample late.
fn goroutines_masked_by_crash_restarts(seed: u64) -> Case {
    let mut rng = Rng::new(seed);
    let target = "go-api";
    let end = T0 + 3.0 * DAY;
    let mut goroutines = Track::new(key(target, "gauge", "go_goroutines"), None);
    let mut restarts = Vec::new();
    let mut pid = 4000u32;
    let mut t = T0;
    while t <= end {
        let life_end = t + rng.between(20.0 * MINUTE, 60.0 * MINUTE);
        let life_start = t;
        let mut leaked = 0.0;
        while t < life_end && t <= end {
            let base = if t - life_start < 30.0 {
                9.0
            } else {
                40.0 + rng.poisson(2.0)
            };
            leaked += rng.poisson(600.0 * INTERVAL / HOUR);
            goroutines.push(t, base + if t - life_start < 30.0 { 0.0 } else { leaked });
            t += INTERVAL;
        }
        if t <= end {
            let late = if rng.uniform() < 0.5 { 0.0 } else { INTERVAL };
            restarts.push(Restart {
                target: target.to_string(),
                t: t + late,
                old_pid: Some(pid),
                new_pid: Some(pid + 1),
                reason: "exit 2".to_string(),
            });
            pid += 1;
        }
    }
    Case {
        name: "goroutines-masked-by-crash-restarts",
        description: "seed 002: goroutine leak reset by a silent crash-restart every 20-60 min",
        series: vec![goroutines.done()],
        restarts,
        truth: Truth::Leak(LeakTruth {
            key: key(target, "gauge", "go_goroutines"),
            related: Vec::new(),
            start: T0,
            exhaustion: None,
        }),
        start: T0,
        end,
    }
}

/// Seed 003's other leak: threads created but never started live forever; operations
/// restart every JVM at 02:00, so each life grows with the day's traffic and resets.
fn threads_masked_by_nightly_restart(seed: u64) -> Case {
    let mut rng = Rng::new(seed);
    let target = "jvm-shop";
    let limit = 4096.0;
    let end = T0 + 6.0 * DAY;
    let mut total = Track::new(key(target, "threads", ""), Some(limit));
    let mut leaking = Track::new(key(target, "threads", "Thread-#"), Some(limit));
    let mut restarts = Vec::new();
    let mut leaked = 0.0;
    let mut life_start = T0;
    let mut pid = 7000u32;
    let mut t = T0;
    while t <= end {
        let since_midnight = (t - T0) % DAY;
        if (since_midnight - 2.0 * HOUR).abs() < INTERVAL / 2.0 && t > T0 {
            restarts.push(Restart {
                target: target.to_string(),
                t,
                old_pid: Some(pid),
                new_pid: Some(pid + 1),
                reason: "signal 15".to_string(),
            });
            pid += 1;
            leaked = 0.0;
            life_start = t;
        }
        leaked += rng.poisson(80.0 * traffic(t) * INTERVAL / HOUR);
        let others = if t - life_start < 2.0 * MINUTE {
            60.0
        } else {
            110.0 + (2.0 * rng.normal()).round()
        };
        leaking.push(t, leaked);
        total.push(t, leaked + others);
        t += INTERVAL;
    }
    Case {
        name: "threads-masked-by-nightly-restart",
        description: "seed 003: unstarted Thread objects leak ~80/h; a 02:00 restart resets them",
        series: vec![total.done(), leaking.done()],
        restarts,
        truth: Truth::Leak(LeakTruth {
            key: key(target, "threads", "Thread-#"),
            related: vec![key(target, "threads", "")],
            start: T0,
            exhaustion: None,
        }),
        start: T0,
        end,
    }
}

/// A leak of 25 threads/h on top of a daily cycle of +-100.
fn leak_under_daily_cycle(seed: u64) -> Case {
    let mut rng = Rng::new(seed);
    let target = "svc-cycle";
    let limit = 4096.0;
    let leak_start = T0 + 12.0 * HOUR;
    let mean = |t: f64| {
        300.0 - 100.0 * (2.0 * PI * (t - T0) / DAY).cos() + 25.0 * (t - leak_start).max(0.0) / HOUR
    };
    let mut threads = Track::new(key(target, "threads", ""), Some(limit));
    let (mut t, mut exhaustion) = (T0, None);
    while t <= T0 + 10.0 * DAY {
        let v = (mean(t) + 4.0 * rng.normal()).round();
        threads.push(t, v);
        if v >= limit {
            exhaustion = Some(t);
            break;
        }
        t += INTERVAL;
    }
    let end = t;
    Case {
        name: "leak-under-daily-cycle",
        description: "threads +25/h under a daily cycle of +-100",
        series: vec![threads.done()],
        restarts: Vec::new(),
        truth: Truth::Leak(LeakTruth {
            key: key(target, "threads", ""),
            related: Vec::new(),
            start: leak_start,
            exhaustion,
        }),
        start: T0,
        end,
    }
}

// ----------------------------------------------------------------------------------------
// Healthy look-alikes
// ----------------------------------------------------------------------------------------

fn healthy(
    name: &'static str,
    description: &'static str,
    series: Vec<Series>,
    restarts: Vec<Restart>,
    end: f64,
) -> Case {
    Case {
        name,
        description,
        series,
        restarts,
        truth: Truth::Healthy,
        start: T0,
        end,
    }
}

/// Pools and JIT threads start within minutes, then the count stays flat.
fn warmup_then_flat(seed: u64) -> Case {
    let mut rng = Rng::new(seed);
    let end = T0 + 4.0 * DAY;
    let mut threads = Track::new(key("svc-warm", "threads", ""), Some(4096.0));
    let mut t = T0;
    while t <= end {
        let warm = 20.0 + 160.0 * (1.0 - (-(t - T0) / (3.0 * MINUTE)).exp());
        threads.push(t, (warm + 2.0 * rng.normal()).round());
        t += INTERVAL;
    }
    healthy(
        "warmup-then-flat",
        "threads 20 -> 180 in minutes, then flat",
        vec![threads.done()],
        Vec::new(),
        end,
    )
}

/// A bounded cache filling in the first hours (time constant 40 min) to a plateau.
fn cache_fills_fast(seed: u64) -> Case {
    let mut rng = Rng::new(seed);
    let end = T0 + 3.0 * DAY;
    let mut rss = Track::new(key("svc-cache", "memory", "rss"), Some(4.0 * GIB));
    let mut t = T0;
    while t <= end {
        let filled = 0.8 * GIB + 1.0 * GIB * (1.0 - (-(t - T0) / (40.0 * MINUTE)).exp());
        rss.push(t, filled + 8.0 * MIB * rng.normal());
        t += INTERVAL;
    }
    healthy(
        "cache-fills-fast",
        "rss +1 GiB cache, 1-exp fill with tau 40 min",
        vec![rss.done()],
        Vec::new(),
        end,
    )
}

/// A bounded cache filling slowly (time constant 4 h) to a plateau well below the limit.
fn cache_fills_slowly(seed: u64) -> Case {
    let mut rng = Rng::new(seed);
    let end = T0 + 4.0 * DAY;
    let mut rss = Track::new(key("svc-memo", "memory", "rss"), Some(4.0 * GIB));
    let mut t = T0;
    while t <= end {
        let filled = 1.0 * GIB + 0.6 * GIB * (1.0 - (-(t - T0) / (4.0 * HOUR)).exp());
        rss.push(t, filled + 8.0 * MIB * rng.normal());
        t += INTERVAL;
    }
    healthy(
        "cache-fills-slowly",
        "rss +0.6 GiB cache, 1-exp fill with tau 4 h",
        vec![rss.done()],
        Vec::new(),
        end,
    )
}

/// Connection bursts (+200..350 in 15 min) that drain over the next hours.
fn bursts_that_drain(seed: u64) -> Case {
    let mut rng = Rng::new(seed);
    let end = T0 + 4.0 * DAY;
    let mut bursts = Vec::new();
    let mut next = T0 + rng.between(3.0 * HOUR, 8.0 * HOUR);
    while next < end {
        bursts.push((next, rng.between(200.0, 350.0)));
        next += rng.between(6.0 * HOUR, 10.0 * HOUR);
    }
    let mut sockets = Track::new(
        key("svc-burst", "sockets", "ESTABLISHED 10.0.0.9:5432"),
        Some(1024.0),
    );
    let mut t = T0;
    while t <= end {
        let mut extra = 0.0;
        for &(at, size) in &bursts {
            let since = t - at;
            if since < 0.0 {
                continue;
            }
            let ramp = 15.0 * MINUTE;
            extra += if since < ramp {
                size * since / ramp
            } else {
                size * (-(since - ramp) / (40.0 * MINUTE)).exp()
            };
        }
        sockets.push(t, (30.0 + extra + 3.0 * rng.normal()).round().max(0.0));
        t += INTERVAL;
    }
    healthy(
        "bursts-that-drain",
        "sockets burst +200..350 in 15 min, drain with tau 40 min",
        vec![sockets.done()],
        Vec::new(),
        end,
    )
}

/// Threads follow daily traffic: +-100 around 300, lowest at midnight.
fn daily_seasonality(seed: u64) -> Case {
    let mut rng = Rng::new(seed);
    let end = T0 + 5.0 * DAY;
    let mut threads = Track::new(key("svc-daily", "threads", ""), Some(4096.0));
    let mut t = T0;
    while t <= end {
        let level = 300.0 - 100.0 * (2.0 * PI * (t - T0) / DAY).cos();
        threads.push(t, (level + 4.0 * rng.normal()).round());
        t += INTERVAL;
    }
    healthy(
        "daily-seasonality",
        "threads 200..400 following daily traffic",
        vec![threads.done()],
        Vec::new(),
        end,
    )
}

/// A deploy (restart) raises the thread count from 150 to 230 for good.
fn deploy_level_shift(seed: u64) -> Case {
    let mut rng = Rng::new(seed);
    let end = T0 + 4.0 * DAY;
    let deploy = T0 + 30.0 * HOUR;
    let mut threads = Track::new(key("svc-deploy", "threads", ""), Some(4096.0));
    let mut t = T0;
    while t <= end {
        let level = if t < deploy {
            150.0
        } else {
            60.0 + 170.0 * (1.0 - (-(t - deploy) / MINUTE).exp())
        };
        threads.push(t, (level + 2.0 * rng.normal()).round());
        t += INTERVAL;
    }
    let restarts = vec![Restart {
        target: "svc-deploy".to_string(),
        t: deploy,
        old_pid: Some(100),
        new_pid: Some(200),
        reason: "signal 15".to_string(),
    }];
    healthy(
        "deploy-level-shift",
        "a deploy (restart) moves threads from 150 to 230",
        vec![threads.done()],
        restarts,
        end,
    )
}

/// A configuration reload enables a cache: rss steps up by 0.5 GiB without a restart.
fn level_shift_without_restart(seed: u64) -> Case {
    let mut rng = Rng::new(seed);
    let end = T0 + 4.0 * DAY;
    let shift = T0 + 40.0 * HOUR;
    let mut rss = Track::new(key("svc-reload", "memory", "rss"), Some(4.0 * GIB));
    let mut t = T0;
    while t <= end {
        let step = 0.5 * GIB * ((t - shift) / (5.0 * MINUTE)).clamp(0.0, 1.0);
        rss.push(t, 1.0 * GIB + step + 10.0 * MIB * rng.normal());
        t += INTERVAL;
    }
    healthy(
        "level-shift-without-restart",
        "rss steps 1.0 -> 1.5 GiB at a config reload",
        vec![rss.done()],
        Vec::new(),
        end,
    )
}

/// A healthy JVM heap: 600 MiB of garbage every 2-5 minutes over a flat floor.
fn flat_gc_sawtooth(seed: u64) -> Case {
    let mut rng = Rng::new(seed);
    let end = T0 + 3.0 * DAY;
    let height = 600.0 * MIB;
    let mut heap = Track::new(key("svc-gc", "memory", "heap"), Some(4.0 * GIB));
    let mut saw = Sawtooth::new(&mut rng, T0, height);
    let mut t = T0;
    while t <= end {
        let garbage = saw.garbage(&mut rng, t, height);
        heap.push(t, 1.3 * GIB + garbage + 5.0 * MIB * rng.normal());
        t += INTERVAL;
    }
    healthy(
        "flat-gc-sawtooth",
        "heap sawtooth 1.3 + 0.6 GiB with a flat floor",
        vec![heap.done()],
        Vec::new(),
        end,
    )
}

/// Strongly autocorrelated noise (AR(1), phi 0.98, sd 8) around 120 fds.
fn correlated_noise(seed: u64) -> Case {
    let mut rng = Rng::new(seed);
    let end = T0 + 4.0 * DAY;
    let mut noise = Ar1::new(8.0, 0.98);
    let mut fds = Track::new(key("svc-noise", "fds", ""), Some(1024.0));
    let mut t = T0;
    while t <= end {
        fds.push(t, (120.0 + noise.next(&mut rng)).round());
        t += INTERVAL;
    }
    healthy(
        "correlated-noise",
        "fds 120 with AR(1) noise (phi 0.98, sd 8)",
        vec![fds.done()],
        Vec::new(),
        end,
    )
}

/// A crash loop (every 10-20 min) without any leak: a crash-loop finding, no leak.
fn crash_loop_without_leak(seed: u64) -> Case {
    let mut rng = Rng::new(seed);
    let target = "svc-crashy";
    let end = T0 + 2.0 * DAY;
    let mut goroutines = Track::new(key(target, "gauge", "go_goroutines"), None);
    let mut restarts = Vec::new();
    let reasons = ["signal 9", "oom", "exit 2"];
    let mut pid = 9000u32;
    let mut t = T0;
    while t <= end {
        let life_start = t;
        let life_end = t + rng.between(10.0 * MINUTE, 20.0 * MINUTE);
        while t < life_end && t <= end {
            let value = if t - life_start < 30.0 {
                9.0
            } else {
                40.0 + (2.0 * rng.normal()).round()
            };
            goroutines.push(t, value);
            t += INTERVAL;
        }
        if t <= end {
            restarts.push(Restart {
                target: target.to_string(),
                t,
                old_pid: Some(pid),
                new_pid: Some(pid + 1),
                reason: reasons[(pid % 3) as usize].to_string(),
            });
            pid += 1;
        }
    }
    healthy(
        "crash-loop-without-leak",
        "restarts every 10-20 min, goroutines flat in each life",
        vec![goroutines.done()],
        restarts,
        end,
    )
}

/// A nightly batch job holds 60 extra connections from ~02:00 to ~05:00, then returns them:
/// nightly steps that come back down.
fn nightly_batch_job(seed: u64) -> Case {
    let mut rng = Rng::new(seed);
    let end = T0 + 6.0 * DAY;
    let windows: Vec<(f64, f64)> = (0..7)
        .map(|night| {
            let start = T0 + night as f64 * DAY + 2.0 * HOUR + rng.between(0.0, 10.0 * MINUTE);
            (start, start + 3.0 * HOUR + rng.between(0.0, 20.0 * MINUTE))
        })
        .collect();
    let mut sockets = Track::new(
        key("svc-batch", "sockets", "ESTABLISHED 10.0.0.7:5432"),
        Some(200.0),
    );
    let mut t = T0;
    while t <= end {
        let batch = if windows.iter().any(|&(from, to)| t >= from && t < to) {
            60.0
        } else {
            0.0
        };
        sockets.push(t, 40.0 + batch + (2.0 * rng.normal()).round());
        t += INTERVAL;
    }
    healthy(
        "nightly-batch-job",
        "sockets +60 from 02:00 to 05:00 each night, then back",
        vec![sockets.done()],
        Vec::new(),
        end,
    )
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
