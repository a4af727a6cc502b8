//! Size and speed benchmark: writes a month of synthetic samples of a 500-process host
//! through the public API with simulated time, applying retention after every seal (hourly)
//! as the agent does, then prints the file size, bytes per point, append cost, query cost, a
//! codec comparison, and a one-row-per-value SQLite baseline.
//!
//! ```text
//! cargo run --release -p leakwatch-store --example month -- [--days 30] [--targets 500]
//!     [--busy 0.3] [--baseline-hours 2] [--page-size 4096] [--durability normal|full]
//!     [--rollups default|fine] [--dir DIR] [--keep]
//! ```
//!
//! `--durability` defaults to `normal` here so a month of simulated commits does not wait
//! for 259,200 fsyncs; `--durability full --targets 750 --days 1.5` measures the agent's
//! setting at 15,000 series. `--rollups fine` replaces the default levels with 1-minute
//! buckets for 8 days and 10-minute buckets for 35 days.
//!
//! The simulated host: every target has 20 series (threads total + 3 name groups, fds total +
//! 4 types, sockets total + 3 states + 2 peers, rss/anon/swap, the fd and memory limits).
//! Counts are small integers that rarely change; a `--busy` fraction of targets (JVM/Go
//! services) churn connections and change rss/anon by up to 256 pages almost every sample;
//! the rest change memory a few pages about every 8 minutes. 5% of targets leak (threads,
//! CLOSE_WAIT sockets, fds or memory); 2% of targets per day die and are replaced by new
//! ones (so dead targets must expire); 1% per day restart (values reset, restart recorded).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use leakwatch_model::{Attribution, MemoryKind, Resource};
use leakwatch_store::codec::{self, Codec};
use leakwatch_store::{
    Durability, Options, Restart, RollupLevel, SeriesId, SeriesKey, Store, StoreWriter, TargetKind,
};

const INTERVAL_MS: i64 = 10_000;
const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;
/// 2024-01-01T00:00:00Z, so blocks align the way they would on a real host.
const START_MS: i64 = 1_704_067_200_000;
const PAGE: f64 = 4096.0;

const SERIES: [(&str, &str); 20] = [
    ("threads", ""),
    ("threads", "main"),
    ("threads", "worker-#"),
    ("threads", "pool-#"),
    ("fds", ""),
    ("fds", "socket"),
    ("fds", "file"),
    ("fds", "pipe"),
    ("fds", "anon_inode"),
    ("sockets", ""),
    ("sockets", "ESTABLISHED"),
    ("sockets", "CLOSE_WAIT"),
    ("sockets", "LISTEN"),
    ("sockets", "ESTABLISHED 10.0.0.5:5432"),
    ("sockets", "ESTABLISHED 127.0.0.1:6379"),
    ("memory", "rss"),
    ("memory", "anon"),
    ("memory", "swap"),
    ("fds.limit", ""),
    ("memory.limit", ""),
];

struct Args {
    days: f64,
    targets: usize,
    busy: f64,
    baseline_hours: i64,
    page_size: u32,
    durability: Durability,
    dir: Option<PathBuf>,
    keep: bool,
    /// "default", or "fine": 1-minute buckets for 8 days and 10-minute buckets for 35 days.
    rollups: String,
}

fn parse_args() -> Args {
    let mut args = Args {
        days: 30.0,
        targets: 500,
        busy: 0.3,
        baseline_hours: 2,
        page_size: 4096,
        durability: Durability::Normal,
        dir: None,
        keep: false,
        rollups: "default".into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--days" => args.days = value().parse().expect("--days"),
            "--targets" => args.targets = value().parse().expect("--targets"),
            "--busy" => args.busy = value().parse().expect("--busy"),
            "--baseline-hours" => args.baseline_hours = value().parse().expect("--baseline-hours"),
            "--page-size" => args.page_size = value().parse().expect("--page-size"),
            "--durability" => {
                args.durability = match value().as_str() {
                    "full" => Durability::Full,
                    "normal" => Durability::Normal,
                    other => panic!("--durability full|normal, not {other}"),
                }
            }
            "--dir" => args.dir = Some(PathBuf::from(value())),
            "--keep" => args.keep = true,
            "--rollups" => args.rollups = value(),
            other => panic!("unknown flag {other}"),
        }
    }
    args
}

/// xorshift64*: fast, deterministic, good enough for synthetic load.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn signed(&mut self, max: u64) -> f64 {
        let magnitude = 1 + self.below(max) as i64;
        (if self.chance(0.5) {
            magnitude
        } else {
            -magnitude
        }) as f64
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Leak {
    None,
    Threads,
    CloseWait,
    Fds,
    Memory,
}

struct TargetSim {
    name: String,
    busy: bool,
    leak: Leak,
    ids: Vec<SeriesId>,
    base: [f64; 20],
    value: [f64; 20],
}

impl TargetSim {
    fn new(name: String, rng: &mut Rng, busy_fraction: f64) -> TargetSim {
        let busy = rng.chance(busy_fraction);
        let leak = if rng.chance(0.05) {
            [Leak::Threads, Leak::CloseWait, Leak::Fds, Leak::Memory][rng.below(4) as usize]
        } else {
            Leak::None
        };
        let mut base = [0.0; 20];
        base[1] = 1.0;
        base[2] = (4 + rng.below(60)) as f64;
        base[3] = rng.below(16) as f64;
        base[6] = (2 + rng.below(40)) as f64;
        base[7] = (2 * rng.below(4)) as f64;
        base[8] = (1 + rng.below(6)) as f64;
        base[10] = if busy {
            5 + rng.below(200)
        } else {
            rng.below(6)
        } as f64;
        base[12] = (1 + rng.below(3)) as f64;
        base[13] = (base[10] / 3.0).floor();
        base[14] = (base[10] / 5.0).floor();
        let rss_pages = if busy {
            50_000 + rng.below(500_000)
        } else {
            500 + rng.below(20_000)
        };
        base[15] = rss_pages as f64 * PAGE;
        base[16] = (rss_pages as f64 * 0.7).floor() * PAGE;
        base[18] = [1024.0, 65536.0, 524_288.0][rng.below(3) as usize];
        base[19] = if rng.chance(0.5) {
            (1u64 << 30) as f64 * (1 + rng.below(8)) as f64
        } else {
            0.0
        };
        let mut sim = TargetSim {
            name,
            busy,
            leak,
            ids: Vec::new(),
            base,
            value: base,
        };
        sim.derive_totals();
        sim
    }

    fn derive_totals(&mut self) {
        let v = &mut self.value;
        v[0] = v[1] + v[2] + v[3];
        v[9] = v[10] + v[11] + v[12];
        v[5] = v[9];
        v[4] = 3.0 + v[5] + v[6] + v[7] + v[8];
    }

    fn step(&mut self, rng: &mut Rng) {
        let (busy, leak) = (self.busy, self.leak);
        let base = self.base;
        let v = &mut self.value;
        if rng.chance(0.002) {
            v[2] = (v[2] + rng.signed(1)).clamp(1.0, 64.0);
        }
        if rng.chance(0.005) {
            v[3] = (v[3] + rng.signed(1)).clamp(0.0, base[3] + 4.0);
        }
        if leak == Leak::Threads && rng.chance(0.01) {
            v[3] += 1.0;
        }
        if rng.chance(if busy { 0.3 } else { 0.01 }) {
            // Mean-reverting connection churn.
            let pull = if v[10] > base[10] { -1.0 } else { 1.0 };
            v[10] = (v[10] + rng.signed(3) + pull).max(0.0);
        }
        if rng.chance(if busy { 0.05 } else { 0.005 }) {
            v[13] = (v[13] + rng.signed(1)).clamp(0.0, v[10]);
        }
        if rng.chance(if busy { 0.02 } else { 0.002 }) {
            v[14] = (v[14] + rng.signed(1)).clamp(0.0, v[10]);
        }
        if leak == Leak::CloseWait {
            if rng.chance(0.005) {
                v[11] += 1.0;
            }
        } else if v[11] > 0.0 {
            if rng.chance(0.05) {
                v[11] = 0.0;
            }
        } else if rng.chance(0.002) {
            v[11] = 1.0;
        }
        if rng.chance(0.005) {
            v[6] = (v[6] + rng.signed(1)).max(0.0);
        }
        if leak == Leak::Fds && rng.chance(0.01) {
            v[6] += 1.0;
        }
        // Memory: busy services change rss by up to 256 pages nearly every sample, quiet ones
        // a few pages now and then; anon follows rss, swap rarely moves.
        let (p_change, max_pages) = if busy { (0.8, 256) } else { (0.02, 8) };
        if rng.chance(p_change) {
            let pull = if v[15] > base[15] { -0.2 } else { 0.2 } * max_pages as f64;
            let delta = (rng.signed(max_pages) + pull.round()) * PAGE;
            v[15] = (v[15] + delta).max(100.0 * PAGE);
            v[16] = (v[16] + delta).max(50.0 * PAGE);
        }
        if leak == Leak::Memory && rng.chance(0.1) {
            v[15] += 16.0 * PAGE;
            v[16] += 16.0 * PAGE;
        }
        if rng.chance(0.0005) {
            v[17] = (v[17] + rng.signed(64) * PAGE).max(0.0);
        }
        self.derive_totals();
    }

    fn restart(&mut self) {
        self.value = self.base;
        self.derive_totals();
    }
}

struct Percentiles(Vec<Duration>);

impl Percentiles {
    fn at(&mut self, q: f64) -> Duration {
        self.0.sort_unstable();
        self.0[((self.0.len() - 1) as f64 * q) as usize]
    }

    fn mean(&self) -> Duration {
        self.0.iter().sum::<Duration>() / self.0.len().max(1) as u32
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn main() {
    let args = parse_args();
    let scratch = tempfile::tempdir().expect("temp dir");
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| scratch.path().to_path_buf());
    std::fs::create_dir_all(&dir).expect("create --dir");
    let path = dir.join("month.db");
    let mut store = open_store(&path, &args);
    let mut run = simulate(&mut store, &args);
    let end_ms = START_MS + run.intervals * INTERVAL_MS;
    store.apply_retention(end_ms).expect("final retention");
    let wall = run.started.elapsed();
    report_store(&store, &args, &run, wall);
    report_costs(&args, &mut run);
    measure_queries(&store, &run.targets, end_ms);
    compare_codecs(&run.codec_sample);
    let t = Instant::now();
    let n_blocks = store.check_integrity().expect("integrity");
    println!("integrity check of {n_blocks} blocks: {:.2?}", t.elapsed());
    drop(store);

    if args.baseline_hours > 0 {
        baseline(&dir, &args, run.total_points as f64 / run.intervals as f64);
    }
    if args.keep {
        println!("kept {}", path.display());
        std::mem::forget(scratch);
    }
}

/// Opens a new store at `path` (removing an old one) with the options `args` ask for.
fn open_store(path: &Path, args: &Args) -> StoreWriter {
    for suffix in ["", "-wal", "-shm", ".lock"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    let mut options = Options {
        durability: args.durability,
        page_size: args.page_size,
        ..Options::default()
    };
    match args.rollups.as_str() {
        "default" => {}
        "fine" => {
            options.rollups = vec![
                RollupLevel {
                    step_ms: 60_000,
                    block_ms: DAY_MS,
                    retention_ms: 8 * DAY_MS,
                },
                RollupLevel {
                    step_ms: 600_000,
                    block_ms: 7 * DAY_MS,
                    retention_ms: 35 * DAY_MS,
                },
            ]
        }
        other => panic!("--rollups default|fine, not {other}"),
    }
    StoreWriter::open_with(path, options).expect("open store")
}

/// What the simulation leaves for the report.
struct Run {
    targets: Vec<TargetSim>,
    intervals: i64,
    started: Instant,
    normal_appends: Percentiles,
    seal_appends: Percentiles,
    retention_times: Percentiles,
    total_points: u64,
    max_open_bytes: usize,
    max_file: u64,
    /// The second simulated hour of the first 50 targets' series, for the codec comparison.
    codec_sample: Vec<Vec<f64>>,
}

/// Appends `args.days` of samples of the simulated host, one interval at a time, churning
/// targets hourly and applying retention after every seal, timing appends and retention.
fn simulate(store: &mut StoreWriter, args: &Args) -> Run {
    let mut rng = Rng(0x5eed_1eac_0000_0001);
    let mut generation = 0u64;
    let mut targets: Vec<TargetSim> = (0..args.targets)
        .map(|i| TargetSim::new(format!("svc-{i:03}"), &mut rng, args.busy))
        .collect();
    for target in &mut targets {
        resolve(store, target);
    }
    let intervals = (args.days * DAY_MS as f64) as i64 / INTERVAL_MS;
    let intervals_per_hour = HOUR_MS / INTERVAL_MS;
    let mut points: Vec<(SeriesId, f64)> = Vec::with_capacity(args.targets * 20);
    let mut run = Run {
        targets: Vec::new(),
        intervals,
        started: Instant::now(),
        normal_appends: Percentiles(Vec::new()),
        seal_appends: Percentiles(Vec::new()),
        retention_times: Percentiles(Vec::new()),
        total_points: 0,
        max_open_bytes: 0,
        max_file: 0,
        codec_sample: vec![Vec::new(); 50.min(args.targets) * 20],
    };

    println!(
        "simulating {} days x {} targets x 20 series at 10 s ({} intervals), busy fraction {}, page size {}, {:?}",
        args.days, args.targets, intervals, args.busy, args.page_size, args.durability
    );
    for i in 0..intervals {
        let ts = START_MS + i * INTERVAL_MS;
        if i % intervals_per_hour == 0 && i > 0 {
            churn(
                store,
                &mut targets,
                &mut rng,
                &mut generation,
                ts,
                args.busy,
            );
        }
        points.clear();
        for target in &mut targets {
            target.step(&mut rng);
            points.extend(target.ids.iter().copied().zip(target.value));
        }
        if (intervals_per_hour..2 * intervals_per_hour).contains(&i) {
            for (slot, values) in run.codec_sample.iter_mut().enumerate() {
                values.push(points[slot].1);
            }
        }
        if i % intervals_per_hour == intervals_per_hour - 1 {
            run.max_open_bytes = run
                .max_open_bytes
                .max(store.stats().expect("stats").open_bytes);
        }
        append_interval(store, &mut run, i, ts, &points);
        if i % (intervals / 10).max(1) == 0 {
            eprintln!(
                "  day {:.1}: {:.0?} elapsed",
                i as f64 * INTERVAL_MS as f64 / DAY_MS as f64,
                run.started.elapsed()
            );
        }
    }
    run.targets = targets;
    run
}

/// Churn once per simulated hour: on average 2% of targets die per day (replaced by a new
/// target), 1% restart.
fn churn(
    store: &mut StoreWriter,
    targets: &mut [TargetSim],
    rng: &mut Rng,
    generation: &mut u64,
    ts: i64,
    busy: f64,
) {
    for (slot, target) in targets.iter_mut().enumerate() {
        if rng.chance(0.02 / 24.0) {
            *generation += 1;
            *target = TargetSim::new(format!("svc-{slot:03}-g{generation}"), rng, busy);
            resolve(store, target);
        } else if rng.chance(0.01 / 24.0) {
            target.restart();
            store
                .record_restart(&Restart {
                    target: target.name.clone(),
                    ts_ms: ts,
                    old_pid: Some(1000 + slot as u32),
                    old_start_time: Some(1),
                    new_pid: Some(2000 + slot as u32),
                    new_start_time: Some(2),
                    exit_code: None,
                    signal: Some(9),
                    oom_killed: Some(true),
                    stderr_tail: Some("java.lang.OutOfMemoryError: Java heap space\n".repeat(20)),
                })
                .expect("record restart");
        }
    }
}

/// Appends interval `i` (at `ts`), timing it; after an append that sealed the hour,
/// applies retention as the agent does, timing that too.
fn append_interval(
    store: &mut StoreWriter,
    run: &mut Run,
    i: i64,
    ts: i64,
    points: &[(SeriesId, f64)],
) {
    let t = Instant::now();
    let report = store.append(ts, points).expect("append");
    let elapsed = t.elapsed();
    assert!(
        report.unknown.is_empty(),
        "interval {i}: unknown {:?}",
        &report.unknown[..report.unknown.len().min(5)]
    );
    run.total_points += points.len() as u64;
    if report.sealed {
        run.seal_appends.0.push(elapsed);
    } else {
        run.normal_appends.0.push(elapsed);
    }
    if report.sealed {
        let t = Instant::now();
        store.apply_retention(ts).expect("retention");
        run.retention_times.0.push(t.elapsed());
        let stats = store.stats().expect("stats");
        run.max_file = run.max_file.max(stats.file_bytes);
    }
}

/// Prints the store's size: the file, bytes per point, and each level's blocks.
fn report_store(store: &Store, args: &Args, run: &Run, wall: Duration) {
    let stats = store.stats().expect("stats");
    let max_file = run.max_file.max(stats.file_bytes);
    let total_points = run.total_points;
    println!(
        "\n== store after {:.1} simulated days ({:.0?} wall) ==",
        args.days, wall
    );
    println!(
        "file {:.1} MiB (+ WAL {:.1} MiB); largest file seen {:.1} MiB; {} pages of {} B, {} free",
        mib(stats.file_bytes),
        mib(stats.wal_bytes),
        mib(max_file),
        stats.page_count,
        stats.page_size,
        stats.free_pages
    );
    println!("targets {}, series {}", stats.targets, stats.series);
    println!(
        "points appended {total_points}: {:.4} file bytes per appended point",
        stats.file_bytes as f64 / total_points as f64
    );
    let live_series = (args.targets * 20) as f64;
    let retention_of = |step_ms: i64| {
        store
            .options()
            .rollups
            .iter()
            .find(|level| level.step_ms == step_ms)
            .map_or(f64::NAN, |level| level.retention_ms as f64)
    };
    for level in &store.level_stats().expect("level stats") {
        let label = match level.step_ms {
            0 => "raw".to_string(),
            step if step % 3_600_000 == 0 => format!("{} h", step / 3_600_000),
            step => format!("{} min", step / 60_000),
        };
        // Points or buckets per live series that retention keeps (or the run has produced).
        let kept_ms = if level.step_ms == 0 {
            2.0 * DAY_MS as f64
        } else {
            retention_of(level.step_ms).min(args.days * DAY_MS as f64)
        };
        let cell_ms = if level.step_ms == 0 {
            INTERVAL_MS
        } else {
            level.step_ms
        };
        let points_or_buckets = live_series * kept_ms / cell_ms as f64;
        println!(
            "  {label:>6}: {:>6} blocks, {:>6.1} MiB payload, ~{:.3} B per point/bucket ({:.0} kept)",
            level.blocks,
            mib(level.payload_bytes),
            level.payload_bytes as f64 / points_or_buckets,
            points_or_buckets
        );
    }
    breakdown(store);
}

/// Prints the open block's memory and the cost of appends, seals and retention passes.
fn report_costs(args: &Args, run: &mut Run) {
    println!(
        "open block in memory at the end of an hour: up to {:.1} MiB",
        mib(run.max_open_bytes as u64)
    );
    let per_point = |d: Duration| d.as_secs_f64() * 1e6 / (args.targets * 20) as f64;
    let normal_appends = &mut run.normal_appends;
    let mean = normal_appends.mean();
    let (p50, p99, max) = (
        normal_appends.at(0.5),
        normal_appends.at(0.99),
        normal_appends.at(1.0),
    );
    println!(
        "append of {} points: mean {:.2?} ({:.3} us/point), p50 {:.2?}, p99 {:.2?}, max {:.2?}",
        args.targets * 20,
        mean,
        per_point(mean),
        p50,
        p99,
        max
    );
    if !run.seal_appends.0.is_empty() {
        let mean = run.seal_appends.mean();
        println!(
            "append that seals the hour: mean {:.2?}, p99 {:.2?}, max {:.2?} ({} seals)",
            mean,
            run.seal_appends.at(0.99),
            run.seal_appends.at(1.0),
            run.seal_appends.0.len()
        );
    }
    if !run.retention_times.0.is_empty() {
        println!(
            "retention pass: mean {:.2?}, p99 {:.2?}, max {:.2?} ({} passes)",
            run.retention_times.mean(),
            run.retention_times.at(0.99),
            run.retention_times.at(1.0),
            run.retention_times.0.len()
        );
    }
}

fn resolve(store: &mut StoreWriter, target: &mut TargetSim) {
    store
        .set_target(
            &target.name,
            if target.busy {
                TargetKind::Container
            } else {
                TargetKind::Unit
            },
        )
        .expect("set target");
    let keys: Vec<SeriesKey> = SERIES
        .iter()
        .map(|(resource, attribution)| {
            SeriesKey::from_text(target.name.clone(), *resource, *attribution)
        })
        .collect();
    target.ids = store.resolve(&keys).expect("resolve");
}

/// Where the payload bytes go, by level and kind of series (busy targets are "container").
fn breakdown(store: &Store) {
    let busy: std::collections::HashSet<String> = store
        .targets()
        .into_iter()
        .filter(|t| t.kind == Some(TargetKind::Container))
        .map(|t| t.name)
        .collect();
    let mut table: std::collections::BTreeMap<(i64, String), u64> = Default::default();
    for (step, key, bytes) in store.payload_by_series().expect("payload by series") {
        let class = match (&key.resource, &key.attribution) {
            _ if key.is_limit => "limits",
            (Resource::Memory, Attribution::Memory(MemoryKind::Rss | MemoryKind::Anon)) => {
                "rss/anon"
            }
            (Resource::Memory, _) => "swap",
            _ => "counts",
        };
        let load = if busy.contains(&key.target) {
            "busy"
        } else {
            "quiet"
        };
        *table.entry((step, format!("{load} {class}"))).or_default() += bytes;
    }
    println!("payload by level and series kind:");
    for ((step, class), bytes) in table {
        println!("  step {step:>7} ms {class:>15}: {:>6.1} MiB", mib(bytes));
    }
}

fn measure_queries(store: &Store, targets: &[TargetSim], end_ms: i64) {
    let t = Instant::now();
    let mut n_points = 0;
    for target in targets {
        for series in store
            .query_target(&target.name, end_ms - 6 * HOUR_MS, end_ms)
            .expect("query target")
        {
            n_points += series.points.len();
        }
    }
    println!(
        "detection pass, last 6 h of every series of all {} targets: {:.2?} ({n_points} points)",
        targets.len(),
        t.elapsed()
    );
    let key = SeriesKey::from_text(targets[0].name.clone(), "memory", "rss");
    let t = Instant::now();
    let buckets = store
        .query_rollup(&key, end_ms - 40 * DAY_MS, end_ms, 600_000)
        .expect("rollup query");
    println!(
        "whole history of one series at 10 min: {:.2?} ({} buckets)",
        t.elapsed(),
        buckets.len()
    );
}

fn compare_codecs(sample: &[Vec<f64>]) {
    let mut by_resource: Vec<(&str, [usize; 3], usize)> = Vec::new();
    for (slot, values) in sample.iter().enumerate() {
        let (resource, attribution) = SERIES[slot % 20];
        let class = match (resource, attribution) {
            ("memory", "rss" | "anon") => "rss/anon",
            ("memory", _) => "swap",
            (r, _) if r.ends_with(".limit") => "limits",
            _ => "counts",
        };
        let mut sizes = [0; 3];
        let mut buf = Vec::new();
        codec::encode_with(values, Codec::IntDelta, &mut buf);
        sizes[0] = buf.len();
        buf.clear();
        codec::encode_with(values, Codec::Xor, &mut buf);
        sizes[1] = buf.len();
        buf.clear();
        codec::encode_best(values, &mut buf);
        sizes[2] = buf.len();
        match by_resource.iter_mut().find(|(c, _, _)| *c == class) {
            Some((_, total, n)) => {
                for k in 0..3 {
                    total[k] += sizes[k];
                }
                *n += values.len();
            }
            None => by_resource.push((class, sizes, values.len())),
        }
    }
    println!("codec comparison on one simulated hour of 50 targets (bytes per point):");
    println!(
        "  {:>9} {:>9} {:>9} {:>9}",
        "series", "int-delta", "xor", "best"
    );
    for (class, sizes, n) in by_resource {
        println!(
            "  {class:>9} {:>9.3} {:>9.3} {:>9.3}",
            sizes[0] as f64 / n as f64,
            sizes[1] as f64 / n as f64,
            sizes[2] as f64 / n as f64
        );
    }
}

/// One row per value, `(series_id, ts, value)` with an index on `(series_id, ts)`, filled
/// with the same generator for `--baseline-hours`, then extrapolated.
fn baseline(dir: &Path, args: &Args, points_per_interval: f64) {
    let path = dir.join("baseline.db");
    let _ = std::fs::remove_file(&path);
    let conn = rusqlite::Connection::open(&path).expect("open baseline");
    conn.execute_batch(&format!(
        "PRAGMA page_size = {}; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
         CREATE TABLE samples (series_id INTEGER NOT NULL, ts INTEGER NOT NULL, value REAL NOT NULL);
         CREATE INDEX samples_by_series ON samples (series_id, ts);",
        args.page_size
    ))
    .expect("baseline schema");
    let mut rng = Rng(0x5eed_1eac_0000_0001);
    let mut targets: Vec<TargetSim> = (0..args.targets)
        .map(|i| TargetSim::new(format!("svc-{i:03}"), &mut rng, args.busy))
        .collect();
    let intervals = args.baseline_hours * HOUR_MS / INTERVAL_MS;
    let t = Instant::now();
    let mut rows = 0u64;
    for i in 0..intervals {
        let ts = START_MS + i * INTERVAL_MS;
        let tx = conn.unchecked_transaction().expect("baseline tx");
        {
            let mut insert = tx
                .prepare_cached("INSERT INTO samples (series_id, ts, value) VALUES (?1, ?2, ?3)")
                .expect("baseline insert");
            for (t_index, target) in targets.iter_mut().enumerate() {
                target.step(&mut rng);
                for (s_index, value) in target.value.iter().enumerate() {
                    insert
                        .execute(rusqlite::params![
                            (t_index * 20 + s_index) as i64,
                            ts,
                            value
                        ])
                        .expect("baseline insert");
                    rows += 1;
                }
            }
        }
        tx.commit().expect("baseline commit");
    }
    conn.pragma_update(None, "wal_checkpoint", "TRUNCATE").ok();
    let bytes = std::fs::metadata(&path).map_or(0, |m| m.len());
    let per_row = bytes as f64 / rows as f64;
    println!(
        "\n== baseline: one row per value + index, {} h, {rows} rows, {:.1} MiB in {:.1?}: {:.2} B/point ==",
        args.baseline_hours,
        mib(bytes),
        t.elapsed(),
        per_row
    );
    let points_48h = points_per_interval * (2 * DAY_MS / INTERVAL_MS) as f64;
    let points_month = points_per_interval * (args.days * DAY_MS as f64 / INTERVAL_MS as f64);
    println!(
        "  extrapolated: 48 h raw only {:.0} MiB; {} days raw {:.0} MiB",
        per_row * points_48h / (1024.0 * 1024.0),
        args.days,
        per_row * points_month / (1024.0 * 1024.0)
    );
    let _ = std::fs::remove_file(&path);
}
