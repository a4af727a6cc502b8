//! Memory benchmark of the in-memory catalog under churn: every 1 s interval names one new
//! short-lived target with 17 series (as the self-soak's churned programs do), beside 20
//! steady targets, for `--seconds` simulated seconds inside one hourly block (so nothing
//! is sealed or expired: the catalog holds every series named). Prints the process's
//! anonymous memory and the catalog's slots every `--every` seconds, and the peak.
//!
//! ```text
//! cargo run --release -p leakwatch-store --example churn -- [--seconds 1800] [--every 300]
//! ```
//!
//! Results: BENCHMARKS.md §2, "What the jumps are: the catalog of the churn hour".

use leakwatch_store::{Durability, Options, SeriesKey, StoreWriter};

/// 2024-01-01T00:00:00Z: the simulated hour starts on a block boundary.
const START_MS: i64 = 1_704_067_200_000;

const SERIES: [(&str, &str); 17] = [
    ("threads", ""),
    ("threads", "main"),
    ("threads", "worker-#"),
    ("fds", ""),
    ("fds", "socket"),
    ("fds", "file"),
    ("fds", "pipe"),
    ("fds", "anon_inode"),
    ("tcp", ""),
    ("tcp", "ESTABLISHED"),
    ("tcp", "LISTEN"),
    ("memory", "rss"),
    ("memory", "anon"),
    ("memory", "swap"),
    ("processes", ""),
    ("fds.limit", ""),
    ("memory.limit", ""),
];

fn status_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn main() {
    let mut seconds = 1800u64;
    let mut every = 300u64;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args
            .next()
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("{arg} needs a number"));
        match arg.as_str() {
            "--seconds" => seconds = value.min(3599),
            "--every" => every = value.max(1),
            other => panic!("unknown option {other}"),
        }
    }
    let dir = tempfile::tempdir().expect("temporary directory");
    let options = Options {
        durability: Durability::Normal,
        ..Options::default()
    };
    let mut store = StoreWriter::open_with(dir.path().join("churn.db"), options).expect("open");
    let key = |target: &str, (resource, attribution): (&str, &str)| {
        SeriesKey::from_text(target.to_string(), resource, attribution)
    };
    let steady: Vec<String> = (0..20).map(|i| format!("service-{i}")).collect();
    println!("seconds,series_named,catalog_slots,rss_anon_kb");
    let mut peak = 0;
    for second in 0..seconds {
        let ts_ms = START_MS + second as i64 * 1000;
        let churned = format!("churn-{second:05}.py");
        let mut points = Vec::with_capacity((steady.len() + 1) * SERIES.len());
        for target in steady.iter().chain(std::iter::once(&churned)) {
            for (i, series) in SERIES.iter().enumerate() {
                points.push((key(target, *series), (second % 7 + i as u64) as f64));
            }
        }
        store.append_keyed(ts_ms, &points).expect("append");
        let anon = status_kb("RssAnon:");
        peak = peak.max(anon);
        if (second + 1) % every == 0 {
            let named = (steady.len() + second as usize + 1) * SERIES.len();
            println!("{},{named},{},{anon}", second + 1, store.catalog_slots());
        }
    }
    println!("peak rss_anon_kb {peak} (VmHWM {} kB)", status_kb("VmHWM:"));
}
