//! One detection pass of the agent (open the store read-only, judge every recent target)
//! over a store that has seen a day of process churn: thousands of targets that left hours
//! ago and a few that are live. Side by side, alternating in one run: the pass opening the
//! whole catalog (as the agent did before) and the pass opening only the targets seen within
//! the detection window (`Store::open_read_only_recent`, as it does now). Both must report
//! the same findings.
//!
//! ```text
//! cargo run --release -p leakwatch-agent --example detect_pass -- \
//!     [--gone 4000] [--live 7] [--hours 26] [--life-minutes 10] [--rounds 15] [--preset fast]
//! ```
//!
//! Results: BENCHMARKS.md §2 ("Detection time and the store's catalog").

use leakwatch_agent::capacity::Capacities;
use leakwatch_agent::findings::{catalog_since, compute, Windows};
use leakwatch_detect::{Lifecycle, LifecycleParams, Params};
use leakwatch_store::{Durability, Options, Restart, SeriesKey, Store, StoreWriter};
use std::time::Instant;

/// The series each target writes: totals, groups, kinds, states, memory (16, as the agent
/// writes for a typical process).
const SERIES: [(&str, &str); 16] = [
    ("threads", ""),
    ("threads", "max_process"),
    ("threads", "worker-#"),
    ("threads", "pool-#-thread-#"),
    ("fds", ""),
    ("fds", "max_process"),
    ("fds", "file"),
    ("fds", "socket"),
    ("fds", "pipe"),
    ("tcp", "established"),
    ("tcp", "close_wait"),
    ("memory", "rss"),
    ("memory", "anon"),
    ("processes", ""),
    ("sockets", "udp"),
    ("sockets", "unix"),
];

struct Args {
    gone: usize,
    live: usize,
    hours: i64,
    life_minutes: i64,
    rounds: usize,
    preset: String,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        gone: 4000,
        live: 7,
        hours: 26,
        life_minutes: 10,
        rounds: 15,
        preset: "fast".into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        let number = |v: String| v.parse::<i64>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--gone" => args.gone = number(value()?)?.clamp(0, 100_000) as usize,
            "--live" => args.live = number(value()?)?.clamp(1, 1_000) as usize,
            "--hours" => args.hours = number(value()?)?.clamp(3, 47),
            "--life-minutes" => args.life_minutes = number(value()?)?.clamp(1, 600),
            "--rounds" => args.rounds = number(value()?)?.clamp(1, 1_000) as usize,
            "--preset" => args.preset = value()?,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(args)
}

/// xorshift64: the same store on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn main() {
    let args = match parse_args() {
        Ok(args) => args,
        Err(error) => {
            eprintln!("detect_pass: {error}");
            std::process::exit(2);
        }
    };
    let interval_ms: i64 = 1_000;
    let params = match args.preset.as_str() {
        "fast" => Params::fast(1.0),
        "production" => Params::for_interval(1.0),
        other => {
            eprintln!("detect_pass: --preset fast|production, not {other}");
            std::process::exit(2);
        }
    };
    let windows = Windows::for_engine(interval_ms, &params);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("history.db");
    let options = Options {
        durability: Durability::Normal,
        ..Options::default()
    };
    // 50 minutes past an hour, so the passes run with 50 minutes in the open (raw) block,
    // which every pass opened afresh replays.
    let t0: i64 = 1_790_000_000_000 / 3_600_000 * 3_600_000 + 50 * 60_000;
    let span_ms = args.hours * 3_600_000;
    let life_ms = args.life_minutes * 60_000;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    // Each gone target lives `life_ms` from a start spread over the history (ending before
    // the last minute, so every one has left).
    let mut starts: Vec<(i64, usize)> = (0..args.gone)
        .map(|i| {
            let latest = (span_ms - life_ms - 60_000).max(1);
            (t0 + (rng.next() % latest as u64) as i64, i)
        })
        .collect();
    starts.sort_unstable();
    let keys = |name: &str| -> Vec<SeriesKey> {
        SERIES
            .iter()
            .map(|(resource, attribution)| SeriesKey::from_text(name, resource, attribution))
            .collect()
    };
    let live: Vec<Vec<SeriesKey>> = (0..args.live).map(|i| keys(&format!("live-{i}"))).collect();
    let gone: Vec<Vec<SeriesKey>> = (0..args.gone)
        .map(|i| keys(&format!("gone-{i:05}")))
        .collect();

    let built = Instant::now();
    let mut writer = StoreWriter::open_with(&path, options.clone()).expect("open the store");
    let mut alive: Vec<(i64, usize)> = Vec::new();
    let mut next_start = 0;
    let mut points: Vec<(SeriesKey, f64)> = Vec::new();
    // Appends the interval at `ts`: every live target, and the gone ones alive then.
    let mut append = |writer: &mut StoreWriter, ts: i64, extra: &[SeriesKey]| {
        while next_start < starts.len() && starts[next_start].0 <= ts {
            alive.push((starts[next_start].0 + life_ms, starts[next_start].1));
            next_start += 1;
        }
        alive.retain(|(end, _)| *end > ts);
        points.clear();
        let noise = (ts / 1_000 % 5) as f64;
        let minutes = ((ts - t0) / 60_000) as f64;
        for (i, series) in live.iter().enumerate() {
            for (k, key) in series.iter().enumerate() {
                // live-0's threads leak one a minute; the rest is flat with noise.
                let leak = if i == 0 && k == 0 { minutes } else { 0.0 };
                points.push((key.clone(), 40.0 + k as f64 + noise + leak));
            }
        }
        for (_, i) in &alive {
            for (k, key) in gone[*i].iter().enumerate() {
                points.push((key.clone(), 10.0 + k as f64 + noise));
            }
        }
        for (k, key) in extra.iter().enumerate() {
            points.push((key.clone(), 5.0 + k as f64 + noise));
        }
        writer.append_keyed(ts, &points).expect("append");
    };
    let restart = |target: &str, ts_ms: i64| Restart {
        target: target.to_string(),
        ts_ms,
        old_pid: Some(100),
        old_start_time: None,
        new_pid: Some(101),
        new_start_time: None,
        exit_code: Some(1),
        signal: None,
        oom_killed: None,
        stderr_tail: None,
    };
    // Every tenth gone target restarted halfway through its life.
    let mut restarts: Vec<(i64, String)> = starts
        .iter()
        .filter(|(_, i)| i % 10 == 0)
        .map(|(start, i)| (start + life_ms / 2, format!("gone-{i:05}")))
        .collect();
    restarts.sort();
    let mut restarts = restarts.into_iter().peekable();
    let mut now_ms = t0;
    while now_ms < t0 + span_ms {
        append(&mut writer, now_ms, &[]);
        while let Some((_, target)) = restarts.next_if(|(at, _)| *at <= now_ms) {
            writer
                .record_restart(&restart(&target, now_ms))
                .expect("restart");
        }
        now_ms += interval_ms;
    }
    let stats = Store::open_read_only_with(&path, options.clone())
        .and_then(|s| s.stats())
        .expect("stats");
    println!(
        "store: {} targets, {} series, {:.1} MiB, {} h of 1 s samples, {} live targets; built in {:.0} s",
        stats.targets,
        stats.series,
        stats.file_bytes as f64 / 1_048_576.0,
        args.hours,
        args.live,
        built.elapsed().as_secs_f64()
    );

    let lifecycle_params = LifecycleParams::for_engine(&params);
    let lifecycle = Lifecycle::new(lifecycle_params.clone());
    let capacities = Capacities::default();
    // As the agent does: a pass every 2 intervals (fast) or 6 (production, at least 5 s).
    let every_ms = if args.preset == "fast" { 2_000 } else { 6_000 };
    // The pass as the agent ran it before (the whole catalog, opened afresh), opened
    // afresh with the recent targets only, and (as now) kept and refreshed.
    #[derive(Clone, Copy, PartialEq)]
    enum Mode {
        Whole,
        Recent,
        Kept,
    }
    let mut kept: Option<Store> = None;
    let mut pass = |mode: Mode, now_ms: i64| -> (f64, Vec<String>, Vec<String>) {
        let since_ms = catalog_since(now_ms, &windows, &lifecycle_params, every_ms);
        let started = Instant::now();
        let fresh;
        let store = match mode {
            Mode::Whole => {
                fresh = Store::open_read_only_with(&path, options.clone()).expect("open");
                &fresh
            }
            Mode::Recent => {
                fresh =
                    Store::open_read_only_recent(&path, options.clone(), since_ms).expect("open");
                &fresh
            }
            Mode::Kept => {
                match kept.as_mut() {
                    Some(store) => store.refresh(Some(since_ms)).expect("refresh"),
                    None => {
                        kept = Some(
                            Store::open_read_only_recent(&path, options.clone(), since_ms)
                                .expect("open"),
                        )
                    }
                }
                kept.as_ref().expect("kept")
            }
        };
        let (found, lives) = compute(store, now_ms, &windows, &params, &lifecycle, 1, &capacities);
        if mode == Mode::Kept {
            kept.as_mut().map(Store::release_snapshot);
        }
        let ms = started.elapsed().as_secs_f64() * 1e3;
        // What must agree between the modes: every finding with its numbers, and every
        // target the lifecycle would not call gone with what it knows of it.
        let mut names: Vec<String> = found
            .iter()
            .map(|f| {
                format!(
                    "{} {} {} current {} rate {:.9} eta {:?}",
                    f.kind, f.key, f.state, f.current, f.rate_per_hour, f.eta_seconds
                )
            })
            .collect();
        names.sort();
        let now = now_ms as f64 / 1e3;
        let held: Vec<String> = lives
            .iter()
            .filter(|(name, _)| !lifecycle.is_gone(name, &lives, now))
            .map(|(name, life)| format!("{name} {} {:?}", life.last_seen, life.last_restart))
            .collect();
        (ms, names, held)
    };
    let modes = [Mode::Whole, Mode::Recent, Mode::Kept];
    // One pass each way at `now_ms`, in an order that rotates with `round`; exits if they
    // disagree. Returns each mode's time.
    let mut judge = |round: usize, now_ms: i64| -> (Vec<f64>, (Vec<String>, Vec<String>)) {
        let mut ms = vec![0.0; modes.len()];
        let mut seen: Option<(Vec<String>, Vec<String>)> = None;
        for k in 0..modes.len() {
            let m = (round + k) % modes.len();
            let (took, found, held) = pass(modes[m], now_ms);
            ms[m] = took;
            match &seen {
                None => seen = Some((found, held)),
                Some(expected) if expected != &(found.clone(), held.clone()) => {
                    eprintln!(
                        "detect_pass: the passes disagree at {now_ms}: {expected:#?} vs {:#?}",
                        (found, held)
                    );
                    std::process::exit(1);
                }
                Some(_) => {}
            }
        }
        (ms, seen.unwrap_or_default())
    };
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); modes.len()];
    let mut last: (Vec<String>, Vec<String>) = Default::default();
    for round in 0..args.rounds {
        // Two intervals between passes, as at 1 s with the fast preset's pass every 2 s.
        for _ in 0..2 {
            append(&mut writer, now_ms, &[]);
            now_ms += interval_ms;
        }
        let (ms, seen) = judge(round, now_ms);
        if round > 0 {
            // The first round opens the kept reader: not what it costs each pass.
            for (m, took) in ms.into_iter().enumerate() {
                times[m].push(took);
            }
        }
        last = seen;
    }
    let median = |v: &[f64]| -> f64 {
        let mut xs = v.to_vec();
        xs.sort_by(f64::total_cmp);
        xs.get(xs.len() / 2).copied().unwrap_or(f64::NAN)
    };
    println!(
        "findings (the same in every mode, every round): {} over {} live targets: {:?}",
        last.0.len(),
        last.1.len(),
        last.0
    );
    println!(
        "pass (median ms of {} rounds, 2 intervals appended before each)",
        args.rounds.saturating_sub(1)
    );
    let whole = median(&times[0]);
    for (name, v) in [
        ("whole catalog, opened afresh (before)", &times[0]),
        ("recent targets, opened afresh", &times[1]),
        ("recent targets, kept and refreshed (now)", &times[2]),
    ] {
        println!(
            "{name:<42} {:>8.1} ms  {:>6.3}x",
            median(v),
            median(v) / whole
        );
    }

    // Not timed: the kept reader through what the timed rounds do not show. Up to 20 s
    // before the next hour without a pass (the kept reader then replays 10 minutes at
    // once), then 20 passes 2 s apart across the hour's seal, with a target that appears
    // after 10 s and a restart of a live one after 16 s; every pass must agree.
    let next_hour = (now_ms / 3_600_000 + 1) * 3_600_000;
    while now_ms < next_hour - 20_000 {
        append(&mut writer, now_ms, &[]);
        now_ms += interval_ms;
    }
    let late = keys("late-0");
    let mut late_held = false;
    for round in 0..20 {
        for _ in 0..2 {
            let extra: &[SeriesKey] = if round >= 5 { &late } else { &[] };
            append(&mut writer, now_ms, extra);
            now_ms += interval_ms;
        }
        if round == 8 {
            writer
                .record_restart(&restart("live-1", now_ms - interval_ms))
                .expect("restart");
        }
        let (_, (_, held)) = judge(round, now_ms);
        late_held |= held.iter().any(|h| h.starts_with("late-0 "));
    }
    if !late_held {
        eprintln!("detect_pass: the late target was never judged");
        std::process::exit(1);
    }
    println!(
        "verified: 20 more passes, each way, agree across the seal at {} s, a new target and a restart",
        (next_hour - t0) / 1_000
    );
}
