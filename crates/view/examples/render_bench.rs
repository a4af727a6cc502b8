//! Cost of rendering a week of 10-second samples: 10 series x 60,480 points in one chart.
//!
//!     cargo run --release -p leakwatch-view --example render_bench
//!
//! Prints the median and worst of 21 runs for the downsampling alone and for the whole SVG,
//! and the size of the SVG. Recorded in BENCHMARKS.md.

use leakwatch_view::chart::{self, Chart, Limit, Line, Marker};
use leakwatch_view::downsample;
use leakwatch_view::format::Unit;
use std::time::{Duration, Instant};

const POINTS: i64 = 7 * 24 * 360; // a week at 10 s
const SERIES: usize = 10;
const RUNS: usize = 21;

/// Deterministic noisy series: a slow ramp, a sawtooth and a pseudo-random jitter.
fn series(k: usize) -> Vec<(i64, f64)> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64 ^ k as u64;
    (0..POINTS)
        .map(|i| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let jitter = (state % 1000) as f64 / 100.0;
            let value = 100.0 * k as f64 + i as f64 * 0.002 + (i % 360) as f64 * 0.1 + jitter;
            (1_700_000_000_000 + i * 10_000, value)
        })
        .collect()
}

fn stats(mut times: Vec<Duration>) -> (Duration, Duration) {
    times.sort();
    (times[times.len() / 2], times[times.len() - 1])
}

fn main() {
    let data: Vec<Vec<(i64, f64)>> = (0..SERIES).map(series).collect();
    let (from, to) = (data[0][0].0, data[0].last().unwrap().0);
    let columns = 900 - 64 - 14;

    let mut down = Vec::new();
    let mut kept = 0;
    for _ in 0..RUNS {
        let start = Instant::now();
        kept = data
            .iter()
            .map(|s| {
                downsample::min_max(s, from, to, columns)
                    .iter()
                    .map(Vec::len)
                    .sum::<usize>()
            })
            .sum::<usize>();
        down.push(start.elapsed());
    }

    let mut render = Vec::new();
    let mut bytes = 0;
    for _ in 0..RUNS {
        let start = Instant::now();
        let svg = chart::render(&Chart {
            id: "bench".into(),
            title: "a week of 10 s samples".into(),
            unit: Unit::Count,
            from_ms: from,
            to_ms: to,
            width: 900,
            height: 240,
            lines: data
                .iter()
                .enumerate()
                .map(|(k, points)| Line {
                    label: format!("threads{{group-{k}}}"),
                    points,
                })
                .collect(),
            limit: Some(Limit {
                value: 2_000.0,
                label: "limit".into(),
            }),
            markers: (0..7)
                .map(|d| Marker {
                    ts_ms: from + d * 86_400_000,
                    title: "pid 1 -> 2: exit 1".into(),
                })
                .collect(),
            trends: vec![],
            note: None,
        });
        render.push(start.elapsed());
        bytes = svg.len();
    }

    let (down_median, down_max) = stats(down);
    let (render_median, render_max) = stats(render);
    println!(
        "input: {SERIES} series x {POINTS} points = {} points; plot {columns} px wide",
        SERIES as i64 * POINTS
    );
    println!(
        "downsample (min/max per column): median {:.2} ms, max {:.2} ms; {kept} points kept",
        down_median.as_secs_f64() * 1e3,
        down_max.as_secs_f64() * 1e3
    );
    println!(
        "whole chart (downsample + SVG): median {:.2} ms, max {:.2} ms; SVG {} KiB",
        render_median.as_secs_f64() * 1e3,
        render_max.as_secs_f64() * 1e3,
        bytes / 1024
    );
}
