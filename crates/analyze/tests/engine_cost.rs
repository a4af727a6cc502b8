//! Cost of one engine call on a week of 10-second samples (60,480 points): the engine
//! must stay in milliseconds so a collector can re-judge every series on every sample.
//! Ignored by default because timings only mean something in release mode:
//! `cargo test --release -p leakwatch-analyze --test engine_cost -- --ignored --nocapture`.

use leakwatch_analyze::corpus::corpus;
use leakwatch_detect::{analyze, Params, Series};
use std::time::Instant;

#[test]
#[ignore]
fn a_week_of_samples_is_judged_in_milliseconds() {
    let params = Params::production();
    let week: f64 = 7.0 * 86_400.0;
    let mut worst_ms: f64 = 0.0;
    for case in corpus() {
        let now = case.start + week.min(case.end - case.start);
        for series in &case.series {
            let end = series.points.partition_point(|p| p.t <= now);
            let visible = [Series::new(
                series.key.clone(),
                series.points[..end].to_vec(),
                series.limit,
            )];
            let started = Instant::now();
            let repetitions = 5;
            for _ in 0..repetitions {
                std::hint::black_box(analyze(&visible, &case.restarts, now, &params));
            }
            let ms = started.elapsed().as_secs_f64() * 1000.0 / repetitions as f64;
            println!(
                "{:>8} points  {ms:>7.2} ms  {} {}",
                end, case.name, series.key
            );
            worst_ms = worst_ms.max(ms);
        }
    }
    println!("worst: {worst_ms:.2} ms");
    assert!(worst_ms < 100.0, "one series took {worst_ms:.1} ms");
}
