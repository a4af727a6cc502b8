//! The randomized corpus (a small fixed sample of the tuning seeds, never the published
//! ones): the generator is deterministic and pinned, every class draws series of the shape
//! it claims, and the online evaluation runs and produces its tables. No tuned performance
//! number is asserted: the full run is a benchmark (scripts/bench-corpus.sh).

use leakwatch_analyze::corpus::Case;
use leakwatch_analyze::evaluate::{evaluate, markdown, summarize, EvalOptions, History};
use leakwatch_analyze::generate::{
    draws, generate, Class, DrawSpec, Generated, MAX_SAMPLES, PUBLISHED_SEEDS, TUNING_SEEDS,
};

const SEED: u64 = TUNING_SEEDS[0];

fn values(g: &Generated) -> Vec<f64> {
    g.case.series[0].points.iter().map(|p| p.v).collect()
}

fn min(values: &[f64]) -> f64 {
    values.iter().copied().fold(f64::INFINITY, f64::min)
}

fn max(values: &[f64]) -> f64 {
    values.iter().copied().fold(f64::NEG_INFINITY, f64::max)
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

/// FNV-1a over every sample, restart and truth of the draws.
fn digest(generated: &[Generated]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    for g in generated {
        eat(g.spec.id().as_bytes());
        for series in &g.case.series {
            eat(series.key.to_string().as_bytes());
            eat(&series.limit.unwrap_or(0.0).to_bits().to_le_bytes());
            for p in &series.points {
                eat(&p.t.to_bits().to_le_bytes());
                eat(&p.v.to_bits().to_le_bytes());
            }
        }
        for r in &g.case.restarts {
            eat(&r.t.to_bits().to_le_bytes());
        }
        if let Some(leak) = g.case.leak() {
            eat(&leak.start.to_bits().to_le_bytes());
            eat(&leak.exhaustion.unwrap_or(0.0).to_bits().to_le_bytes());
        }
    }
    hash
}

/// Two draws of every class at each of its intervals.
fn sample() -> Vec<Generated> {
    draws(&[SEED], &Class::ALL, 8)
        .iter()
        .map(generate)
        .collect()
}

#[test]
fn seed_sets_are_apart() {
    for seed in TUNING_SEEDS {
        assert!(!PUBLISHED_SEEDS.contains(&seed));
    }
}

#[test]
fn the_generator_is_deterministic_and_pinned() {
    let first = sample();
    let second = sample();
    for (a, b) in first.iter().zip(&second) {
        assert_eq!(a.case.series, b.case.series, "{}", a.spec.id());
        assert_eq!(a.case.restarts, b.case.restarts, "{}", a.spec.id());
        assert_eq!(a.case.truth, b.case.truth, "{}", a.spec.id());
    }
    // Another seed draws other series.
    let other: Vec<Generated> = draws(&[SEED + 1], &Class::ALL, 8)
        .iter()
        .map(generate)
        .collect();
    for (a, b) in first.iter().zip(&other) {
        assert_ne!(a.case.series, b.case.series, "{}", a.spec.id());
    }
    // The published table is only reproducible while the draws stay the same: a change to
    // the generator (or to the rng) changes this digest, and then BENCHMARKS.md §3b must be
    // measured again.
    assert_eq!(
        digest(&first),
        16_668_898_509_674_094_157,
        "the generator's output changed: rerun scripts/bench-corpus.sh and update BENCHMARKS.md"
    );
}

#[test]
fn every_class_draws_the_shape_it_claims() {
    for g in sample() {
        let id = g.spec.id();
        let class = g.spec.class;
        let series = &g.case.series[0];
        let limit = series.limit.expect("every series has a limit");
        let v = values(&g);
        let n = v.len();
        assert!((100..=MAX_SAMPLES).contains(&n), "{id}: {n} samples");
        assert!(
            series
                .points
                .windows(2)
                .all(|w| (w[1].t - w[0].t - g.spec.interval).abs() < 1e-6),
            "{id}: samples are not one interval apart"
        );
        assert!(v.iter().all(|x| x.is_finite() && *x >= 0.0), "{id}");
        assert_eq!(class.is_leak(), g.case.leak().is_some(), "{id}");
        let tenth = (n / 10).max(1);
        let (head, tail) = (&v[..tenth], &v[n - tenth..]);
        if !class.is_leak() {
            assert!(max(&v) < limit, "{id}: a healthy series reached its limit");
        }
        match class {
            Class::Fill => {
                // Converges: the second half rises less than the first.
                let eighth = n / 8;
                let m = |k: usize| mean(&v[k * eighth..(k + 1) * eighth]);
                assert!(
                    m(7) - m(4) < m(3) - m(0),
                    "{id}: not decelerating ({} {} {} {})",
                    m(0),
                    m(3),
                    m(4),
                    m(7)
                );
                assert!(m(7) > m(0), "{id}: not filling");
            }
            Class::DeployRestart => {
                assert!(!g.case.restarts.is_empty(), "{id}: deploys restart")
            }
            Class::LevelShift => assert!(g.case.restarts.is_empty(), "{id}"),
            Class::RestartMasked | Class::RestartMaskedUnrecorded => {
                let drops: Vec<usize> = (1..n).filter(|&i| v[i] < v[i - 1] - 0.1 * limit).collect();
                assert!(drops.len() >= 2, "{id}: {} resets", drops.len());
                let leak = g.case.leak().unwrap();
                assert_eq!(
                    leak.exhaustion, None,
                    "{id}: resets keep it below the limit"
                );
                if class == Class::RestartMasked {
                    assert!(g.case.restarts.len() >= drops.len(), "{id}");
                    // Every reset has its restart record, noticed at most a sample late.
                    for &i in &drops {
                        let t = series.points[i].t;
                        assert!(
                            g.case
                                .restarts
                                .iter()
                                .any(|r| r.t >= t - 1e-6 && r.t <= t + g.spec.interval + 1e-6),
                            "{id}: no restart record for the reset at {t}"
                        );
                    }
                } else {
                    assert!(g.case.restarts.is_empty(), "{id}");
                }
            }
            _ if class.is_leak() => {
                let leak = g.case.leak().unwrap();
                // The floor rises: the last tenth's minimum above the first tenth's.
                assert!(min(tail) > min(head), "{id}: the floor does not rise");
                match leak.exhaustion {
                    Some(t) => {
                        assert_eq!(t, g.case.end, "{id}: a leak ends at the outage");
                        assert!(v[n - 1] >= limit, "{id}");
                        assert!(v[..n - 1].iter().all(|x| *x < limit), "{id}");
                    }
                    None => assert!(max(&v) < limit, "{id}"),
                }
                if class == Class::LateLeak {
                    assert!(
                        leak.start >= g.case.start + 0.5 * (g.case.end - g.case.start) - 1.0
                            || leak.exhaustion.is_some(),
                        "{id}: a late leak starts in the second half"
                    );
                }
            }
            _ => {
                // The rest keeps coming back: the end is not above everything the start saw.
                assert!(min(tail) <= max(head), "{id}: drifts away");
            }
        }
    }
}

/// The cheapest draws of the sample: every class at 5 minutes.
fn five_minute_draws() -> Vec<DrawSpec> {
    let mut specs = Vec::new();
    for class in Class::ALL {
        let intervals = class.intervals();
        for index in (0..8).filter(|i| intervals[i % intervals.len()] == 300.0) {
            specs.push(DrawSpec {
                class,
                seed: SEED,
                index,
                interval: 300.0,
            });
        }
    }
    specs
}

#[test]
fn the_online_evaluation_runs_and_produces_the_tables() {
    let specs = five_minute_draws();
    for history in [History::All, History::Agent] {
        let options = EvalOptions {
            evaluations: 40,
            history,
            ..EvalOptions::default()
        };
        let scores = evaluate(&specs, &options).expect("evaluates");
        assert_eq!(scores.len(), specs.len());
        for (spec, score) in specs.iter().zip(&scores) {
            let s = &score.score;
            let id = spec.id();
            assert_eq!(score.id, id);
            assert!(s.evaluations >= 2, "{id}");
            // What is shown includes what is alarmed.
            assert!(
                s.leakwatch_shown.false_alarm_seconds >= s.leakwatch.false_alarm_seconds,
                "{id}"
            );
            assert!(s.leakwatch_shown.detected || !s.leakwatch.detected, "{id}");
            if !s.leak {
                assert!(
                    !s.leakwatch.detected && !s.static_threshold.detected,
                    "{id}"
                );
                continue;
            }
            for detector in [&s.leakwatch, &s.static_threshold, &s.predict_linear] {
                if let Some(delay) = detector.delay_seconds {
                    assert!(delay >= 0.0, "{id}");
                }
                if let Some(lead) = detector.lead_seconds {
                    assert!(lead >= 0.0, "{id}");
                }
            }
            // A leak that reaches its limit crosses 75% of it first (unless one nightly
            // step jumps over it): the static threshold, evaluated at every sample, finds it.
            if s.exhaustion.is_some() && spec.class != Class::NightlySteps {
                assert!(s.static_threshold.detected, "{id}");
            }
        }
        let summary = summarize(&scores);
        assert_eq!(summary.classes.len(), Class::ALL.len());
        assert_eq!(
            summary.healthy.leakwatch.series + summary.leaks.leakwatch.series,
            specs.len()
        );
        let table = markdown(&scores, &summary, 5);
        for class in Class::ALL {
            assert!(table.contains(&format!("| {} |", class.name())), "{table}");
        }
        assert!(table.contains("Targets (issue 17)"), "{table}");
    }
}

/// A draw's case ends at its last sample, and its restarts fall within it.
#[test]
fn a_draw_ends_where_its_truth_says() {
    for g in sample() {
        let case: &Case = &g.case;
        let last = case.series[0].points.last().unwrap().t;
        assert_eq!(last, case.end, "{}", g.spec.id());
        assert!(case.restarts.iter().all(|r| r.t <= case.end));
    }
}
