//! The engine's behaviour on small, hand-built shapes, through the public API only: what
//! must be reported as a leak, what must stay silent, and what the findings say.

use leakwatch_detect::{analyze, Finding, FindingKind, Params, Point, Restart, Series, SeriesKey};

const STEP: f64 = 10.0;
const T0: f64 = 1_700_006_400.0;
const HOUR: f64 = 3600.0;

/// Deterministic noise in [-1, 1] (a small LCG, so tests need no dependency).
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
    }
}

fn series(
    key: SeriesKey,
    hours: f64,
    limit: Option<f64>,
    mut value: impl FnMut(f64) -> f64,
) -> Series {
    let n = (hours * HOUR / STEP) as usize;
    let points = (0..=n)
        .map(|i| {
            let t = T0 + i as f64 * STEP;
            Point::new(t, value(t - T0))
        })
        .collect();
    Series::new(key, points, limit)
}

fn end_of(series: &[Series]) -> f64 {
    series
        .iter()
        .filter_map(|s| s.points.last())
        .map(|p| p.t)
        .fold(f64::MIN, f64::max)
}

fn leaks(findings: &[Finding]) -> Vec<&Finding> {
    findings
        .iter()
        .filter(|f| f.kind == FindingKind::Leak)
        .collect()
}

fn threads(attribution: &str) -> SeriesKey {
    SeriesKey::from_text("java-svc", "threads", attribution)
}

#[test]
fn a_steady_leak_is_reported_with_rate_forecast_and_summary() {
    let mut noise = Noise(1);
    let input = [series(threads(""), 30.0, Some(4096.0), |s| {
        (200.0 + 50.0 * s / HOUR + 3.0 * noise.next()).round()
    })];
    let now = end_of(&input);
    let findings = analyze(&input, &[], now, &Params::production());
    let found = leaks(&findings);
    assert_eq!(found.len(), 1, "{findings:#?}");
    let leak = found[0];
    assert!(
        (leak.rate_per_hour - 50.0).abs() < 2.5,
        "rate {}",
        leak.rate_per_hour
    );
    let expected_eta = (4096.0 - 1700.0) / 50.0 * HOUR;
    let eta = leak.eta_seconds.unwrap();
    assert!(
        (eta - expected_eta).abs() < 0.1 * expected_eta,
        "eta {eta} vs {expected_eta}"
    );
    let conservative = leak.eta_conservative_seconds.unwrap();
    assert!(
        conservative <= eta && conservative > 0.7 * eta,
        "{conservative} vs {eta}"
    );
    assert!(
        leak.first_seen < T0 + 2.0 * HOUR,
        "first seen {}",
        leak.first_seen - T0
    );
    assert_eq!(leak.evidence_window.1, now);
    assert!(leak.p_value < 1e-6 && (leak.confidence - (1.0 - leak.p_value)).abs() < 1e-12);
    assert!(leak.summary.starts_with("threads +1,"), "{}", leak.summary);
    assert!(
        leak.summary.contains("(50/h)") || leak.summary.contains("/h), limit 4,096 in ~"),
        "{}",
        leak.summary
    );
}

#[test]
fn noise_warm_up_and_a_level_shift_are_not_leaks() {
    let params = Params::production();
    let mut noise = Noise(2);
    let flat = series(threads("flat"), 48.0, Some(4096.0), |_| {
        (300.0 + 5.0 * noise.next()).round()
    });
    let warm = series(threads("warm"), 48.0, Some(4096.0), |s| {
        20.0 + 160.0 * (1.0 - (-s / 300.0).exp()) + 2.0 * noise.next()
    });
    let shift = series(threads("shift"), 48.0, Some(4096.0), |s| {
        (if s < 30.0 * HOUR { 150.0 } else { 230.0 }) + 2.0 * noise.next()
    });
    let input = [flat, warm, shift];
    // Judged as a live system would: at many points in time, never a leak.
    for hour in (2..=48).step_by(2) {
        let findings = analyze(&input, &[], T0 + hour as f64 * HOUR, &params);
        assert!(leaks(&findings).is_empty(), "at {hour}h: {findings:#?}");
    }
}

#[test]
fn a_leak_reset_by_every_restart_is_found_through_the_restarts() {
    // Each life lasts 40 minutes and leaks 600 goroutines an hour; the value falls back to
    // ~10 at every restart, so the raw series never climbs.
    let life = 40.0 * 60.0;
    let mut noise = Noise(3);
    let key = SeriesKey::from_text("go-api", "gauge", "go_goroutines");
    let input = [series(key.clone(), 48.0, None, |s| {
        let age = s % life;
        (10.0 + 30.0 * (age > 30.0) as u8 as f64 + 600.0 * age / HOUR + 3.0 * noise.next()).round()
    })];
    let restarts: Vec<Restart> = (1..72)
        .map(|i| Restart {
            target: "go-api".to_string(),
            t: T0 + i as f64 * life,
            old_pid: Some(100 + i),
            new_pid: Some(101 + i),
            reason: "exit 2".to_string(),
        })
        .collect();
    let now = end_of(&input);
    let params = Params::production();
    let findings = analyze(&input, &restarts, now, &params);
    let found = leaks(&findings);
    assert_eq!(found.len(), 1, "{findings:#?}");
    assert_eq!(found[0].key, key);
    assert!(
        (found[0].rate_per_hour - 600.0).abs() < 60.0,
        "rate {}",
        found[0].rate_per_hour
    );
    assert!(found[0].restarts > 10);
    assert!(
        found[0].summary.contains("per life"),
        "{}",
        found[0].summary
    );
    assert_eq!(found[0].pids, vec![172]);
    // The restarts themselves are a crash loop.
    let crash = findings
        .iter()
        .find(|f| f.kind == FindingKind::CrashLoop)
        .expect("crash loop");
    assert!(crash.summary.contains("exit 2"), "{}", crash.summary);
    // Without knowing about the restarts, the resets look like a healthy sawtooth: this is
    // why restarts are an input.
    assert!(leaks(&analyze(&input, &[], now, &params)).is_empty());
}

#[test]
fn the_floor_under_a_gc_sawtooth_is_what_counts() {
    let mib = 1024.0 * 1024.0;
    let limit = 4096.0 * mib;
    let sawtooth = |s: f64| 600.0 * mib * ((s % 180.0) / 180.0);
    let rising = series(
        SeriesKey::from_text("api", "memory", "heap"),
        30.0,
        Some(limit),
        |s| 1300.0 * mib + 40.0 * mib * s / HOUR + sawtooth(s),
    );
    let flat = series(
        SeriesKey::from_text("api", "memory", "flat-heap"),
        30.0,
        Some(limit),
        |s| 1300.0 * mib + sawtooth(s),
    );
    let input = [rising, flat];
    let now = end_of(&input);
    let findings = analyze(&input, &[], now, &Params::production());
    let found = leaks(&findings);
    assert_eq!(found.len(), 1, "{findings:#?}");
    assert_eq!(found[0].key.attribution_text(), "heap");
    assert!(
        (found[0].rate_per_hour / mib - 40.0).abs() < 4.0,
        "{}",
        found[0].rate_per_hour / mib
    );
    // The limit is reached when the top of the sawtooth reaches it, not the floor.
    let floor_now = 1300.0 + 40.0 * 30.0;
    let eta_hours = found[0].eta_seconds.unwrap() / HOUR;
    assert!(
        (eta_hours - (4096.0 - floor_now - 600.0) / 40.0).abs() < 5.0,
        "eta {eta_hours}h"
    );
    assert!(found[0].summary.contains("MiB/h"), "{}", found[0].summary);
}

#[test]
fn the_part_that_leaks_is_reported_instead_of_the_total() {
    let mut noise = Noise(4);
    let leaking = |s: f64| (3000.0 * s / HOUR).floor();
    let input = [
        series(threads(""), 6.0, Some(32_768.0), |s| {
            leaking(s) + 40.0 + (2.0 * noise.next()).round()
        }),
        series(threads("Analytics-#"), 6.0, Some(32_768.0), leaking),
        series(threads("worker-#"), 6.0, Some(32_768.0), |_| 4.0),
    ];
    let now = end_of(&input);
    let findings = analyze(&input, &[], now, &Params::production());
    let found = leaks(&findings);
    assert_eq!(found.len(), 1, "{findings:#?}");
    assert_eq!(found[0].key.attribution_text(), "Analytics-#");
    // Its forecast counts the threads the rest of the process holds.
    let eta = found[0].eta_seconds.unwrap();
    let expected = (32_768.0 - 18_000.0 - 40.0) / 3000.0 * HOUR;
    assert!(
        (eta - expected).abs() < 0.05 * expected,
        "eta {eta} vs {expected}"
    );
    assert!(
        found[0].summary.starts_with("threads Analytics-# +"),
        "{}",
        found[0].summary
    );
}

#[test]
fn saturation_and_crash_loops_are_reported_and_ranked_after_leaks() {
    let mut noise = Noise(5);
    let sockets = SeriesKey::from_text("svc", "sockets", "CLOSE_WAIT 127.0.0.1:8443");
    let input = [
        // Leaking fast towards its limit.
        series(threads("fast"), 30.0, Some(20_000.0), |s| {
            (100.0 + 400.0 * s / HOUR).round()
        }),
        // Leaking slowly towards its limit (about 3 days away: within the alert horizon).
        series(threads("slow"), 30.0, Some(10_000.0), |s| {
            (100.0 + 100.0 * s / HOUR).round()
        }),
        // Leaking with no known limit.
        series(
            SeriesKey::from_text("svc", "gauge", "queue_depth"),
            30.0,
            None,
            |s| (10.0 + 50.0 * s / HOUR).round(),
        ),
        // Flat but at 80% of the pool.
        series(sockets.clone(), 30.0, Some(1024.0), |_| {
            (820.0 + 2.0 * noise.next()).round()
        }),
    ];
    let now = end_of(&input);
    let restarts: Vec<Restart> = (0..4)
        .map(|i| Restart {
            target: "other".to_string(),
            t: now - 3000.0 + i as f64 * 600.0,
            old_pid: Some(10 + i),
            new_pid: Some(11 + i),
            reason: if i == 0 { "oom" } else { "signal 9" }.to_string(),
        })
        .collect();
    let findings = analyze(&input, &restarts, now, &Params::production());
    let order: Vec<(FindingKind, String)> = findings
        .iter()
        .map(|f| (f.kind, f.key.attribution_text()))
        .collect();
    assert_eq!(
        order,
        vec![
            (FindingKind::Leak, "fast".to_string()),
            (FindingKind::Leak, "slow".to_string()),
            (FindingKind::Leak, "queue_depth".to_string()),
            (
                FindingKind::Saturation,
                "CLOSE_WAIT 127.0.0.1:8443".to_string()
            ),
            (FindingKind::CrashLoop, "".to_string()),
        ],
        "{findings:#?}"
    );
    let saturation = &findings[3];
    assert_eq!(saturation.key, sockets);
    assert!(
        saturation.summary.contains("of 1,024 (80% of limit)"),
        "{}",
        saturation.summary
    );
    let crash = &findings[4];
    assert_eq!(crash.current, 4.0);
    assert_eq!(crash.pids, vec![11, 12, 13, 14]);
    assert!(
        crash.summary.contains("restarted 4 times")
            && crash.summary.contains("3x signal 9, 1x oom"),
        "{}",
        crash.summary
    );
}

#[test]
fn only_samples_up_to_now_count_and_results_are_deterministic() {
    // Flat for a day, then a steep climb: judged before the climb, nothing; after, a leak.
    let input = [series(threads(""), 40.0, Some(4096.0), |s| {
        if s < 30.0 * HOUR {
            300.0
        } else {
            300.0 + 400.0 * (s - 30.0 * HOUR) / HOUR
        }
    })];
    let params = Params::production();
    assert!(leaks(&analyze(&input, &[], T0 + 29.0 * HOUR, &params)).is_empty());
    let first = analyze(&input, &[], T0 + 40.0 * HOUR, &params);
    assert_eq!(leaks(&first).len(), 1);
    assert!(
        first[0].first_seen >= T0 + 29.0 * HOUR,
        "{}",
        first[0].first_seen - T0
    );
    assert_eq!(first, analyze(&input, &[], T0 + 40.0 * HOUR, &params));
}

#[test]
fn degenerate_inputs_do_not_panic() {
    let params = Params::production();
    let key = threads("");
    let odd = vec![
        Series::new(key.clone(), vec![], Some(10.0)),
        Series::new(key.clone(), vec![Point::new(T0, 5.0)], Some(0.0)),
        Series::new(
            key.clone(),
            vec![
                Point::new(T0, f64::NAN),
                Point::new(T0 + 10.0, f64::INFINITY),
            ],
            None,
        ),
        // Unsorted, with duplicate times.
        Series::new(
            key.clone(),
            (0..5000)
                .rev()
                .map(|i| Point::new(T0 + (i / 2) as f64 * STEP, (i / 2) as f64))
                .collect(),
            Some(-1.0),
        ),
        series(key.clone(), 30.0, Some(100.0), |_| 7.0),
        series(key.clone(), 30.0, None, |s| -1000.0 - s),
    ];
    for series in odd {
        let findings = analyze(
            std::slice::from_ref(&series),
            &[],
            T0 + 40.0 * HOUR,
            &params,
        );
        for finding in findings {
            assert!(finding.rate_per_hour.is_finite(), "{finding:?}");
        }
    }
    assert!(analyze(&[], &[], T0, &params).is_empty());
}

#[test]
fn parameters_scale_with_the_sampling_interval() {
    let ten = Params::production();
    let minute = Params::for_interval(60.0);
    assert_eq!(ten.season_samples, 8640);
    assert_eq!(minute.season_samples, 1440);
    assert_eq!(ten.min_regime_samples, 360);
    assert_eq!(minute.min_regime_samples, 60);
    // Statistical minimums hold even for coarse samples.
    assert_eq!(Params::for_interval(3600.0).min_regime_samples, 30);
}

#[test]
fn one_close_wait_leak_is_one_finding_with_its_consequences() {
    let mut noise = Noise(9);
    let leaked = |s: f64| (2.581 * s / HOUR * 100.0).floor();
    let key =
        |resource: &str, attribution: &str| SeriesKey::from_text("svc", resource, attribution);
    let input = [
        series(key("tcp", "CLOSE_WAIT"), 30.0, Some(65_536.0), leaked),
        series(key("fds", "socket"), 30.0, Some(65_536.0), |s| {
            leaked(s) + 3.0
        }),
        series(key("fds", ""), 30.0, Some(65_536.0), |s| {
            leaked(s) + 20.0 + (2.0 * noise.next()).round()
        }),
        series(key("fds", "max_process"), 30.0, Some(65_536.0), |s| {
            leaked(s) + 20.0
        }),
    ];
    let now = end_of(&input);
    let findings = analyze(&input, &[], now, &Params::production());
    assert_eq!(findings.len(), 1, "{findings:#?}");
    let root = &findings[0];
    assert_eq!(root.key, key("tcp", "CLOSE_WAIT"));
    let attached: Vec<String> = root.consequences.iter().map(|c| c.key.label()).collect();
    assert_eq!(attached, ["fds{socket}", "fds"], "{root:#?}");
    // Counts print as integers.
    assert!(root.summary.contains("(258/h)"), "{}", root.summary);
    assert!(
        root.summary.contains("; also: fds socket +"),
        "{}",
        root.summary
    );
    assert!(!root.summary.contains('.'), "{}", root.summary);
}

fn tcp(attribution: &str) -> SeriesKey {
    SeriesKey::from_text("shop", "tcp", attribution)
}

fn pool(value: f64) -> leakwatch_detect::Capacity {
    leakwatch_detect::Capacity {
        value,
        name: "pool".into(),
        source: leakwatch_detect::CapacitySource::Declared,
        group: 1,
    }
}

/// Incident 001 in miniature: CLOSE_WAIT grows 10/h towards a pool of 1,024 that also
/// holds 300 ESTABLISHED connections, while RLIMIT_NOFILE is 8,192. The forecast is
/// against the pool, less what the other state holds, and says so.
#[test]
fn a_declared_capacity_tighter_than_the_limit_drives_the_forecast() {
    let mut noise = Noise(7);
    let close_wait = series(tcp("CLOSE_WAIT"), 30.0, Some(8192.0), |s| {
        (100.0 + 10.0 * s / HOUR + 2.0 * noise.next()).round()
    })
    .with_limit_name("RLIMIT_NOFILE");
    let established = series(tcp("ESTABLISHED"), 30.0, Some(8192.0), |_| {
        (300.0 + 3.0 * noise.next()).round()
    })
    .with_limit_name("RLIMIT_NOFILE");
    let now = end_of(std::slice::from_ref(&close_wait));
    let plain = analyze(
        &[close_wait.clone(), established.clone()],
        &[],
        now,
        &Params::production(),
    );
    let plain_leak = leaks(&plain)[0].clone();
    assert!(
        plain_leak
            .summary
            .contains("limit 8,192 (RLIMIT_NOFILE) in ~"),
        "{}",
        plain_leak.summary
    );
    let declared = analyze(
        &[
            close_wait.with_capacity(pool(1024.0)),
            established.with_capacity(pool(1024.0)),
        ],
        &[],
        now,
        &Params::production(),
    );
    let leak = leaks(&declared)[0].clone();
    assert_eq!(leak.limit, Some(1024.0));
    assert!(
        leak.summary.contains("limit 1,024 (pool, declared) in ~"),
        "{}",
        leak.summary
    );
    // About (1,024 - 300 - 400) / 10 = 32 h, against (8,192 - 400) / 10 = 779 h.
    let eta = leak.eta_seconds.unwrap() / HOUR;
    let plain_eta = plain_leak.eta_seconds.unwrap() / HOUR;
    assert!((eta - 32.4).abs() < 5.0, "{eta} h");
    assert!(plain_eta > 600.0, "{plain_eta} h");
}

/// A capacity looser than the known limit does not replace it.
#[test]
fn the_tighter_of_limit_and_capacity_wins() {
    let mut noise = Noise(8);
    let close_wait = series(tcp("CLOSE_WAIT"), 30.0, Some(1024.0), |s| {
        (100.0 + 20.0 * s / HOUR + 2.0 * noise.next()).round()
    })
    .with_limit_name("RLIMIT_NOFILE")
    .with_capacity(pool(4096.0));
    let now = end_of(std::slice::from_ref(&close_wait));
    let findings = analyze(&[close_wait], &[], now, &Params::production());
    let leak = leaks(&findings)[0].clone();
    assert_eq!(leak.limit, Some(1024.0));
    assert!(
        leak.summary.contains("limit 1,024 (RLIMIT_NOFILE)"),
        "{}",
        leak.summary
    );
}

/// With the production preset, a steady climb seen for more than a day is confirmed when
/// its limit is within the alert horizon (7 days), and only suspected when it is further:
/// shown, not alerted, until it gets that close. Without a limit the horizon does not apply.
#[test]
fn a_climb_whose_limit_is_beyond_the_alert_horizon_stays_suspected() {
    use leakwatch_detect::FindingState;
    let params = Params::for_interval(STEP);
    assert_eq!(
        params.alert_horizon_samples as f64 * STEP,
        7.0 * 24.0 * HOUR
    );
    let mut noise = Noise(7);
    let mut wobble: Vec<f64> = Vec::new();
    // 30 h of 20 threads an hour from 100.
    let state = |limit: Option<f64>, wobble: &mut Vec<f64>, noise: &mut Noise| {
        let mut i = 0;
        let s = series(threads("Grow-#"), 30.0, limit, |t| {
            if wobble.len() <= i {
                wobble.push(noise.next() * 2.0);
            }
            i += 1;
            100.0 + 20.0 * t / HOUR + wobble[i - 1]
        });
        let now = end_of(std::slice::from_ref(&s));
        leaks(&analyze(std::slice::from_ref(&s), &[], now, &params))
            .first()
            .map(|f| f.state)
    };
    // About 700 threads now: a limit of 2,000 is ~2.7 days away, 20,000 ~40 days.
    assert_eq!(
        state(Some(2_000.0), &mut wobble, &mut noise),
        Some(FindingState::Confirmed)
    );
    assert_eq!(
        state(Some(20_000.0), &mut wobble, &mut noise),
        Some(FindingState::Suspected)
    );
    assert_eq!(
        state(None, &mut wobble, &mut noise),
        Some(FindingState::Confirmed)
    );
}

/// With the production preset a trend is confirmed only once it has held for
/// `persist_samples` (an hour): a steep climb towards its limit, urgent at its first look,
/// is suspected until the same series judged an hour earlier was confirmed too; then it is
/// confirmed. Without persistence the first look confirms it.
#[test]
fn a_trend_is_confirmed_only_once_it_has_held_for_an_hour() {
    use leakwatch_detect::FindingState;
    let params = Params::for_interval(STEP);
    assert_eq!(params.persist_samples as f64 * STEP, HOUR);
    let mut noise = Noise(11);
    // Flat at 100 for 10 h, then 200 threads an hour towards a limit of 2,000.
    let s = series(threads("Grow-#"), 13.0, Some(2_000.0), |t| {
        let climb = (t - 10.0 * HOUR).max(0.0);
        100.0 + 200.0 * climb / HOUR + 2.0 * noise.next()
    });
    let state_at = |hours: f64, params: &Params| {
        let now = T0 + hours * HOUR;
        leaks(&analyze(std::slice::from_ref(&s), &[], now, params))
            .first()
            .map(|f| f.state)
    };
    // 1.5 h into the climb: about 400 threads, the limit ~8 h away, urgent; an hour
    // earlier the climb was too short to judge.
    let mut at_once = params.clone();
    at_once.persist_samples = 0;
    assert_eq!(state_at(11.5, &at_once), Some(FindingState::Confirmed));
    assert_eq!(state_at(11.5, &params), Some(FindingState::Suspected));
    // An hour later it has held: confirmed.
    assert_eq!(state_at(12.5, &params), Some(FindingState::Confirmed));
}

/// A young life climbing back to the level its earlier lives held (a cache refilling after
/// a restart) is not urgent: suspected, where the same climb in a process with no such
/// history, or after a life that ran into the limit, is confirmed at once. Persistence is
/// off here so only this rule decides.
#[test]
fn a_young_life_climbing_back_to_its_earlier_lives_level_is_not_urgent() {
    use leakwatch_detect::FindingState;
    let mut params = Params::for_interval(STEP);
    params.persist_samples = 0;
    let restart_at = 48.0 * HOUR;
    let climb = |t: f64| 100.0 + (300.0 * t / HOUR).min(500.0);
    let mut noise = Noise(5);
    // Two days at 600 of a limit of 1,000, a restart, then 300 an hour back up.
    let refill = series(threads("Cache-#"), 49.5, Some(1_000.0), |t| {
        let v = if t < restart_at {
            600.0
        } else {
            climb(t - restart_at)
        };
        v + 2.0 * noise.next()
    });
    let restart = Restart {
        target: "java-svc".to_string(),
        t: T0 + restart_at,
        old_pid: Some(10),
        new_pid: Some(11),
        reason: "restarted".to_string(),
    };
    // The same climb in a fresh process.
    let mut noise = Noise(5);
    let fresh = series(threads("Cache-#"), 1.5, Some(1_000.0), |t| {
        climb(t) + 2.0 * noise.next()
    });
    let state = |s: &Series, restarts: &[Restart]| {
        let now = end_of(std::slice::from_ref(s));
        leaks(&analyze(std::slice::from_ref(s), restarts, now, &params))
            .first()
            .map(|f| f.state)
    };
    // 1.5 h into the climb: about 550, the limit ~1.5 h away at this rate.
    assert_eq!(state(&fresh, &[]), Some(FindingState::Confirmed));
    assert_eq!(
        state(&refill, std::slice::from_ref(&restart)),
        Some(FindingState::Suspected)
    );
    // An earlier life that climbed into the limit (100 to 990 in 10 h) and was restarted
    // is no reassurance: the same climb after it is confirmed.
    let mut noise = Noise(5);
    let crashed_at = 10.0 * HOUR;
    let crashed = series(threads("Cache-#"), 11.5, Some(1_000.0), |t| {
        let v = if t < crashed_at {
            100.0 + 89.0 * t / HOUR
        } else {
            climb(t - crashed_at)
        };
        v + 2.0 * noise.next()
    });
    let restart = Restart {
        t: T0 + crashed_at,
        ..restart
    };
    assert_eq!(state(&crashed, &[restart]), Some(FindingState::Confirmed));
}
