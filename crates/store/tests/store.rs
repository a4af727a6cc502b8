//! Behaviour of the store through its public API: appending and reading back, sealing and
//! rollups, retention and expiry, restarts, meta, limits, and the caps that keep it bounded.

use leakwatch_store::{
    Bucket, Durability, Error, Options, Restart, RollupLevel, SeriesKey, Store, StoreWriter,
    TargetKind, STDERR_TAIL_MAX_BYTES,
};
use tempfile::TempDir;

/// One-minute raw blocks with 20 s and 60 s rollups, so minutes of simulated time exercise
/// sealing, merging and every retention path.
fn small_options() -> Options {
    Options {
        durability: Durability::Normal,
        raw_block_ms: 60_000,
        raw_retention_ms: 120_000,
        rollups: vec![
            RollupLevel {
                step_ms: 20_000,
                block_ms: 180_000,
                retention_ms: 600_000,
            },
            RollupLevel {
                step_ms: 60_000,
                block_ms: 600_000,
                retention_ms: 1_800_000,
            },
        ],
        ..Options::default()
    }
}

fn open_small() -> (TempDir, StoreWriter) {
    let dir = tempfile::tempdir().unwrap();
    let store = StoreWriter::open_with(dir.path().join("history.db"), small_options()).unwrap();
    (dir, store)
}

fn key(target: &str, resource: &str, attribution: &str) -> SeriesKey {
    SeriesKey::from_text(target, resource, attribution)
}

/// A value that changes irregularly, so rollups have distinct min, max and last.
fn wobble(i: i64) -> f64 {
    (i * i % 17) as f64
}

fn expected_buckets(samples: &[(i64, f64)], step_ms: i64) -> Vec<Bucket> {
    let mut out: Vec<Bucket> = Vec::new();
    for &(ts, value) in samples {
        let start_ms = ts.div_euclid(step_ms) * step_ms;
        match out.last_mut() {
            Some(b) if b.start_ms == start_ms => {
                b.min = b.min.min(value);
                b.max = b.max.max(value);
                b.last = value;
                b.count += 1;
            }
            _ => out.push(Bucket {
                start_ms,
                min: value,
                max: value,
                last: value,
                count: 1,
            }),
        }
    }
    out
}

#[test]
fn a_store_can_move_to_a_writer_thread() {
    fn assert_send<T: Send>() {}
    assert_send::<Store>();
    let (_dir, mut store) = open_small();
    let handle = std::thread::spawn(move || {
        store
            .append_keyed(0, &[(key("svc", "threads", ""), 1.0)])
            .unwrap()
            .written
    });
    assert_eq!(handle.join().unwrap(), 1);
}

#[test]
fn appended_points_read_back_exactly_before_and_after_sealing() {
    let (_dir, mut store) = open_small();
    let keys = [
        key("svc", "threads", ""),
        key("svc", "memory", "rss"),
        key("svc", "cpu", "ratio"),
    ];
    let ids = store.resolve(&keys).unwrap();
    let mut expected: Vec<Vec<(i64, f64)>> = vec![Vec::new(); 3];
    for i in 0..9 {
        let ts = 1_700_000_000_000 + i * 10_000;
        let values = [
            wobble(i),
            1e9 + (i * 4096) as f64,
            0.1 * i as f64 + 1.0 / 3.0,
        ];
        let points: Vec<_> = ids.iter().copied().zip(values).collect();
        let report = store.append(ts, &points).unwrap();
        assert_eq!(report.written, 3);
        for (series, value) in expected.iter_mut().zip(values) {
            series.push((ts, value));
        }
        // Readable at once, from the open block or from sealed blocks.
        for (key, series) in keys.iter().zip(&expected) {
            assert_eq!(&store.query(key, 0, i64::MAX).unwrap(), series);
        }
    }
    let levels = store.level_stats().unwrap();
    assert_eq!(levels.iter().find(|l| l.step_ms == 0).unwrap().blocks, 1);
    let stats = store.stats().unwrap();
    // Blocks are aligned to the minute: the second one starts at 1_700_000_040_000.
    assert_eq!(stats.open_intervals, 5);
}

#[test]
fn reopening_replays_the_open_block_and_continues() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    let rss = key("svc", "memory", "rss");
    {
        let mut store = StoreWriter::open_with(&path, small_options()).unwrap();
        for i in 0..4 {
            store
                .append_keyed(i * 10_000, &[(rss.clone(), wobble(i))])
                .unwrap();
        }
    }
    let mut store = StoreWriter::open_with(&path, small_options()).unwrap();
    assert_eq!(store.last_append_ms(), Some(30_000));
    let info = &store.series(Some("svc"))[0];
    assert_eq!(
        (info.first_ms, info.last_ms, info.n_points),
        (Some(0), Some(30_000), 4)
    );
    let error = store
        .append_keyed(30_000, &[(rss.clone(), 0.0)])
        .unwrap_err();
    assert!(
        matches!(error, Error::OutOfOrder { min_ms: 30_001, .. }),
        "{error}"
    );
    for i in 4..14 {
        store
            .append_keyed(i * 10_000, &[(rss.clone(), wobble(i))])
            .unwrap();
    }
    let expected: Vec<(i64, f64)> = (0..14).map(|i| (i * 10_000, wobble(i))).collect();
    assert_eq!(store.query(&rss, 0, i64::MAX).unwrap(), expected);
    drop(store);
    let store = StoreWriter::open_with(&path, small_options()).unwrap();
    assert_eq!(store.query(&rss, 0, i64::MAX).unwrap(), expected);
    assert!(store.check_integrity().unwrap() > 0);
}

#[test]
fn rollups_replace_raw_samples_as_they_expire() {
    let (_dir, mut store) = open_small();
    let series = key("svc", "fds", "socket");
    let samples: Vec<(i64, f64)> = (0..60).map(|i| (i * 10_000, wobble(i))).collect();
    for &(ts, value) in &samples {
        store.append_keyed(ts, &[(series.clone(), value)]).unwrap();
    }
    // Seals the last block, then drops raw blocks that ended 120 s or more ago.
    let report = store.apply_retention(600_000).unwrap();
    assert_eq!(report.blocks_deleted, 8);
    assert_eq!(report.series_deleted, 0);

    // Before 480 s only 20 s rollups are left: (bucket start, last sample of the bucket).
    let mut expected: Vec<(i64, f64)> = expected_buckets(&samples[..48], 20_000)
        .iter()
        .map(|b| (b.start_ms, b.last))
        .collect();
    expected.extend_from_slice(&samples[48..]);
    assert_eq!(store.query(&series, 0, 600_000).unwrap(), expected);

    // Min/max/last per minute agree with the samples, wherever they come from.
    let per_minute = store.query_rollup(&series, 0, 600_000, 60_000).unwrap();
    assert_eq!(per_minute, expected_buckets(&samples, 60_000));

    // Ten minutes later only the 60 s level is left.
    store.apply_retention(1_200_000).unwrap();
    let expected: Vec<(i64, f64)> = expected_buckets(&samples, 60_000)
        .iter()
        .map(|b| (b.start_ms, b.last))
        .collect();
    assert_eq!(store.query(&series, 0, i64::MAX).unwrap(), expected);
    assert_eq!(
        store.query_rollup(&series, 0, i64::MAX, 300_000).unwrap(),
        expected_buckets(&samples, 300_000)
    );
    assert_eq!(store.series(None).len(), 1);
}

#[test]
fn series_and_targets_of_dead_targets_expire() {
    let (_dir, mut store) = open_small();
    let dead = key("old-svc", "threads", "");
    let alive = key("svc", "threads", "");
    let ids = store.resolve(&[dead.clone(), alive.clone()]).unwrap();
    store.set_target("old-svc", TargetKind::Unit).unwrap();
    for i in 0..12 {
        store
            .append(i * 10_000, &[(ids[0], 5.0), (ids[1], 7.0)])
            .unwrap();
    }
    // old-svc stops reporting; svc goes on for 40 more minutes.
    for i in 12..252 {
        store.append(i * 10_000, &[(ids[1], 7.0)]).unwrap();
        if i % 6 == 0 {
            store.apply_retention(i * 10_000).unwrap();
        }
    }
    let now = 252 * 10_000;
    store.apply_retention(now).unwrap();
    assert!(store.lookup(&dead).is_none(), "expired with its last block");
    let names: Vec<String> = store.targets().into_iter().map(|t| t.name).collect();
    assert_eq!(names, vec!["svc".to_string()]);
    assert_eq!(store.query(&dead, 0, now).unwrap(), vec![]);
    // A handle kept past expiry is reported, not written, and never aliases another series.
    let report = store.append(now, &[(ids[0], 1.0), (ids[1], 7.0)]).unwrap();
    assert_eq!((report.written, report.unknown), (1, vec![ids[0]]));
    let fresh = store.resolve(std::slice::from_ref(&dead)).unwrap()[0];
    assert_ne!(fresh, ids[0]);
}

#[test]
fn a_series_resolved_but_never_written_survives_one_retention_pass() {
    let (_dir, mut store) = open_small();
    let id = store.resolve(&[key("svc", "threads", "")]).unwrap()[0];
    store.apply_retention(1_000_000).unwrap();
    assert_eq!(store.append(1_000_000, &[(id, 3.0)]).unwrap().written, 1);

    let idle = key("svc", "fds", "");
    store.resolve(std::slice::from_ref(&idle)).unwrap();
    store.apply_retention(1_010_000).unwrap();
    assert!(store.lookup(&idle).is_some());
    store.apply_retention(1_020_000).unwrap();
    assert!(store.lookup(&idle).is_none());
}

#[test]
fn rollup_blocks_are_merged_per_span_without_changing_answers() {
    let (_dir, mut store) = open_small();
    let series = key("svc", "sockets", "CLOSE_WAIT");
    let samples: Vec<(i64, f64)> = (0..130).map(|i| (i * 10_000, wobble(i))).collect();
    for &(ts, value) in &samples[..127] {
        store.append_keyed(ts, &[(series.clone(), value)]).unwrap();
    }
    // 21 minutes sealed: the 20 s level has spans of 3 min, 7 complete, each one block.
    let levels = store.level_stats().unwrap();
    let level = |step| levels.iter().find(|l| l.step_ms == step).unwrap().blocks;
    assert_eq!(level(0), 21);
    assert_eq!(level(20_000), 7);
    // The 60 s level has spans of 10 min: two complete and merged, one minute in the third.
    assert_eq!(level(60_000), 3);
    for &(ts, value) in &samples[127..] {
        store.append_keyed(ts, &[(series.clone(), value)]).unwrap();
    }
    assert_eq!(
        store.query_rollup(&series, 0, i64::MAX, 20_000).unwrap(),
        expected_buckets(&samples, 20_000)
    );
    store.apply_retention(1_300_000).unwrap();
    assert_eq!(
        store.query_rollup(&series, 0, i64::MAX, 60_000).unwrap(),
        expected_buckets(&samples, 60_000)
    );
    assert!(store.check_integrity().unwrap() > 0);
}

#[test]
fn query_target_returns_every_series_of_the_target_only() {
    let (_dir, mut store) = open_small();
    let keys = [
        key("java-svc", "threads", "Analytics-#"),
        key("java-svc", "threads", ""),
        key("svc", "sockets", "CLOSE_WAIT 127.0.0.1:8443"),
    ];
    for i in 0..15 {
        let points: Vec<(SeriesKey, f64)> = keys
            .iter()
            .map(|k| (k.clone(), (i + k.attribution_text().len() as i64) as f64))
            .collect();
        store.append_keyed(i * 10_000, &points).unwrap();
    }
    let data = store.query_target("java-svc", 50_000, 100_000).unwrap();
    let got: Vec<(&SeriesKey, usize)> = data.iter().map(|d| (&d.key, d.points.len())).collect();
    assert_eq!(got, vec![(&keys[1], 5), (&keys[0], 5)]);
    assert_eq!(data[1].points[0], (50_000, 5.0 + 11.0));
    assert!(store
        .query_target("nobody", 0, i64::MAX)
        .unwrap()
        .is_empty());
}

#[test]
fn limits_are_series_that_keep_their_history() {
    let (_dir, mut store) = open_small();
    let fds = key("svc", "fds", "");
    let limit = fds.limit();
    assert!(limit.is_limit && !fds.is_limit);
    assert_eq!(limit.resource_text(), "fds.limit");
    for i in 0..12 {
        let limit_value = if i < 7 { 1024.0 } else { 65536.0 };
        store
            .append_keyed(
                i * 10_000,
                &[(fds.clone(), 10.0 + i as f64), (limit.clone(), limit_value)],
            )
            .unwrap();
    }
    let changes: Vec<(i64, f64)> = store
        .query(&limit, 0, i64::MAX)
        .unwrap()
        .windows(2)
        .filter(|w| w[0].1 != w[1].1)
        .map(|w| w[1])
        .collect();
    assert_eq!(changes, vec![(70_000, 65536.0)]);
}

#[test]
fn timestamps_must_increase_and_rejected_calls_change_nothing() {
    let (_dir, mut store) = open_small();
    let ids = store.resolve(&[key("svc", "threads", "")]).unwrap();
    store.append(10_000, &[(ids[0], 1.0)]).unwrap();
    for ts in [10_000, 5_000] {
        let error = store.append(ts, &[(ids[0], 2.0)]).unwrap_err();
        assert!(matches!(error, Error::OutOfOrder { .. }), "{error}");
    }
    let error = store
        .append(20_000, &[(ids[0], 2.0), (ids[0], 3.0)])
        .unwrap_err();
    assert!(
        matches!(error, Error::DuplicatePoint(id) if id == ids[0]),
        "{error}"
    );
    store.append(20_000, &[(ids[0], 4.0)]).unwrap();
    assert_eq!(
        store
            .query(&key("svc", "threads", ""), 0, i64::MAX)
            .unwrap(),
        vec![(10_000, 1.0), (20_000, 4.0)]
    );
    let error = store.append(i64::MAX, &[]).unwrap_err();
    assert!(matches!(error, Error::InvalidArgument(_)), "{error}");
}

#[test]
fn restarts_are_recorded_and_bounded_per_target() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        restarts_per_target: 5,
        restarts_with_stderr: 2,
        ..small_options()
    };
    let mut store = StoreWriter::open_with(dir.path().join("history.db"), options).unwrap();
    let long_stderr = format!("{}\nOutOfMemoryError", "x".repeat(10_000));
    for i in 0..8u32 {
        store
            .record_restart(&Restart {
                target: "svc".into(),
                ts_ms: i64::from(i) * 1000,
                old_pid: Some(100 + i),
                old_start_time: Some(u64::from(i)),
                new_pid: Some(101 + i),
                new_start_time: Some(u64::from(i) + 1),
                exit_code: (i % 2 == 0).then_some(1),
                signal: (i % 2 == 1).then_some(9),
                oom_killed: Some(i % 2 == 1),
                stderr_tail: Some(long_stderr.clone()),
            })
            .unwrap();
    }
    let restarts = store.restarts("svc", 0, i64::MAX).unwrap();
    let times: Vec<i64> = restarts.iter().map(|r| r.ts_ms).collect();
    assert_eq!(times, vec![3000, 4000, 5000, 6000, 7000]);
    let with_stderr: Vec<i64> = restarts
        .iter()
        .filter(|r| r.stderr_tail.is_some())
        .map(|r| r.ts_ms)
        .collect();
    assert_eq!(with_stderr, vec![6000, 7000]);
    let tail = restarts[4].stderr_tail.as_deref().unwrap();
    assert_eq!(tail.len(), STDERR_TAIL_MAX_BYTES);
    assert!(tail.ends_with("OutOfMemoryError"));
    assert_eq!(restarts[4].signal, Some(9));
    assert_eq!(restarts[4].oom_killed, Some(true));
    assert_eq!(store.restarts("svc", 4000, 6000).unwrap().len(), 2);
}

/// A reader of recent targets (the agent's detection pass) loads the targets seen since a
/// time, by their sealed blocks or in the open block (a target back after hours of silence
/// is known only there), with all their series; the rest of the catalog stays on disk. What
/// it loads reads back exactly as from a reader of everything.
#[test]
fn a_reader_of_recent_targets_loads_those_seen_since_and_those_in_the_open_block() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    let mut store = StoreWriter::open_with(&path, small_options()).unwrap();
    let restart = |target: &str, ts_ms: i64| Restart {
        target: target.into(),
        ts_ms,
        old_pid: Some(1),
        old_start_time: None,
        new_pid: Some(2),
        new_start_time: None,
        exit_code: Some(1),
        signal: None,
        oom_killed: None,
        stderr_tail: None,
    };
    // One-minute raw blocks: "gone" and "back" write in the first minute only, "recent"
    // every 10 s throughout; "back" writes again in the open block (from 300 s).
    for i in 0..32i64 {
        let ts = i * 10_000;
        let mut points = vec![(key("recent", "threads", ""), wobble(i))];
        if ts < 60_000 {
            points.push((key("gone", "threads", ""), wobble(i)));
            points.push((key("back", "threads", ""), wobble(i)));
            points.push((key("back", "memory", "rss"), 1e6 + wobble(i)));
        }
        if ts >= 300_000 {
            points.push((key("back", "threads", ""), 100.0 + wobble(i)));
        }
        store.append_keyed(ts, &points).unwrap();
    }
    store.record_restart(&restart("gone", 40_000)).unwrap();
    store.record_restart(&restart("back", 305_000)).unwrap();
    store.record_restart(&restart("recent", 20_000)).unwrap();

    let all = Store::open_read_only_with(&path, small_options()).unwrap();
    let recent = Store::open_read_only_recent(&path, small_options(), 200_000).unwrap();
    let names =
        |store: &Store| -> Vec<String> { store.targets().into_iter().map(|t| t.name).collect() };
    assert_eq!(names(&all), ["back", "gone", "recent"]);
    assert_eq!(names(&recent), ["back", "recent"]);
    assert_eq!(recent.series(Some("back")).len(), 2, "every series of back");
    assert!(recent.series(Some("gone")).is_empty());
    for key in [
        key("back", "threads", ""),
        key("back", "memory", "rss"),
        key("recent", "threads", ""),
    ] {
        let points = recent.query(&key, 0, i64::MAX).unwrap();
        assert!(!points.is_empty(), "{key}");
        assert_eq!(points, all.query(&key, 0, i64::MAX).unwrap(), "{key}");
    }
    let back = recent
        .query(&key("back", "threads", ""), 0, i64::MAX)
        .unwrap();
    assert_eq!(
        (back.first().unwrap().0, back.last().unwrap().0),
        (0, 310_000)
    );
    assert!(recent
        .query(&key("gone", "threads", ""), 0, i64::MAX)
        .unwrap()
        .is_empty());

    let restarts = |store: &Store| -> Vec<(String, i64)> {
        store
            .restarts_between(0, i64::MAX)
            .unwrap()
            .into_values()
            .flatten()
            .map(|r| (r.target, r.ts_ms))
            .collect()
    };
    assert_eq!(
        restarts(&all),
        [
            ("back".to_string(), 305_000),
            ("gone".to_string(), 40_000),
            ("recent".to_string(), 20_000)
        ]
    );
    assert_eq!(
        restarts(&recent),
        [
            ("back".to_string(), 305_000),
            ("recent".to_string(), 20_000)
        ]
    );
    assert_eq!(recent.restarts_between(30_000, 305_000).unwrap().len(), 0);
}

/// A reader kept across the writer's appends (the agent's detection thread) and refreshed
/// before each use reads exactly what a reader opened afresh reads: new intervals, new
/// series of a known target, new targets, and, after the writer sealed a block, the sealed
/// history — with the whole catalog or only the recent targets.
#[test]
fn a_refreshed_reader_reads_what_a_fresh_one_reads() {
    for recent in [None, Some(0i64)] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.db");
        let mut writer = StoreWriter::open_with(&path, small_options()).unwrap();
        let open = |since: Option<i64>| match since {
            Some(since) => Store::open_read_only_recent(&path, small_options(), since).unwrap(),
            None => Store::open_read_only_with(&path, small_options()).unwrap(),
        };
        writer
            .append_keyed(0, &[(key("a", "threads", ""), 1.0)])
            .unwrap();
        let mut reader = open(recent);
        let mut checked = 0;
        // 10 s steps through three one-minute blocks: each step adds points, now and then
        // a series or a target; every sixth crosses into a new block (a seal).
        for i in 1..19i64 {
            let ts = i * 10_000;
            let mut points = vec![(key("a", "threads", ""), wobble(i))];
            if i >= 3 {
                points.push((key("a", "memory", "rss"), 1e6 + wobble(i)));
            }
            if i >= 5 && i % 2 == 1 {
                points.push((key(&format!("t{}", i / 4), "fds", ""), wobble(i + 1)));
            }
            if i % 3 == 0 {
                // Released between uses, as the agent's detection thread does.
                reader.release_snapshot().unwrap();
            }
            writer.append_keyed(ts, &points).unwrap();
            let since = recent.map(|_| ts - 25_000);
            reader.refresh(since).unwrap();
            let fresh = open(since);
            let names = |store: &Store| -> Vec<String> {
                store.targets().into_iter().map(|t| t.name).collect()
            };
            let fresh_names = names(&fresh);
            if recent.is_none() {
                assert_eq!(names(&reader), fresh_names, "at {ts}");
            } else {
                let kept = names(&reader);
                assert!(fresh_names.iter().all(|n| kept.contains(n)), "at {ts}");
            }
            for info in fresh.series(None) {
                assert_eq!(
                    reader.query(&info.key, 0, i64::MAX).unwrap(),
                    fresh.query(&info.key, 0, i64::MAX).unwrap(),
                    "{} at {ts}",
                    info.key
                );
                checked += 1;
            }
            assert_eq!(reader.last_append_ms(), Some(ts));
        }
        assert!(checked > 40, "{checked}");
    }
}

/// A refresh that fails halfway (here: an interval whose first points decode and whose
/// next names a series that does not exist) leaves nothing half-read behind: once the
/// bad row is gone, the next refresh reads what a fresh reader reads, without the points
/// the failed one had replayed.
#[test]
fn a_refresh_after_a_failed_one_reads_everything_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    let mut writer = StoreWriter::open_with(&path, small_options()).unwrap();
    let keys = [key("svc", "threads", ""), key("svc", "memory", "rss")];
    for i in 0..3i64 {
        let points: Vec<_> = keys.iter().map(|k| (k.clone(), wobble(i))).collect();
        writer.append_keyed(i * 10_000, &points).unwrap();
    }
    let mut reader = Store::open_read_only_with(&path, small_options()).unwrap();
    let foreign = rusqlite::Connection::open(&path).unwrap();
    let last: Vec<u8> = foreign
        .query_row("SELECT data FROM pending WHERE ts_ms = 20000", [], |r| {
            r.get(0)
        })
        .unwrap();
    // A valid interval, then a series id 5,000 further on ("changed" header, zigzag).
    let mut bad = last.clone();
    bad.extend_from_slice(&[0xA1, 0x9C, 0x01]);
    foreign
        .execute(
            "INSERT INTO pending (ts_ms, data) VALUES (25000, ?1)",
            [&bad],
        )
        .unwrap();
    let error = reader.refresh(None).unwrap_err();
    assert!(error.to_string().contains("unknown series"), "{error}");
    foreign
        .execute("DELETE FROM pending WHERE ts_ms = 25000", [])
        .unwrap();
    writer
        .append_keyed(30_000, &[(keys[0].clone(), 7.0), (keys[1].clone(), 8.0)])
        .unwrap();
    reader.refresh(None).unwrap();
    let fresh = Store::open_read_only_with(&path, small_options()).unwrap();
    for key in &keys {
        let points = reader.query(key, 0, i64::MAX).unwrap();
        assert_eq!(points, fresh.query(key, 0, i64::MAX).unwrap(), "{key}");
        assert_eq!(points.len(), 4, "{key}: {points:?}");
    }
}

#[test]
fn meta_round_trips_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    let mut store = StoreWriter::open(&path).unwrap();
    assert_eq!(store.meta("host").unwrap(), None);
    store.set_meta("host", "web-1").unwrap();
    store.set_meta("host", "web-2").unwrap();
    drop(store);
    assert_eq!(
        StoreWriter::open(&path)
            .unwrap()
            .meta("host")
            .unwrap()
            .as_deref(),
        Some("web-2")
    );
}

#[test]
fn series_and_target_caps_refuse_new_keys_but_keep_the_interval() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        max_series: 2,
        ..small_options()
    };
    let mut store = StoreWriter::open_with(dir.path().join("history.db"), options).unwrap();
    let points: Vec<(SeriesKey, f64)> = (0..3)
        .map(|i| (key("svc", "threads", &format!("pool-{i}")), 1.0))
        .collect();
    let report = store.append_keyed(0, &points).unwrap();
    assert_eq!((report.written, report.refused), (2, 1));
    let error = store.resolve(&[key("svc", "fds", "")]).unwrap_err();
    assert!(
        matches!(error, Error::TooManySeries { limit: 2 }),
        "{error}"
    );
}

#[test]
fn intervals_per_block_are_capped() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        max_intervals_per_block: 3,
        ..small_options()
    };
    let mut store = StoreWriter::open_with(dir.path().join("history.db"), options).unwrap();
    for ts in [0, 1, 2] {
        store.append(ts, &[]).unwrap();
    }
    let error = store.append(3, &[]).unwrap_err();
    assert!(
        matches!(error, Error::TooManyIntervals { limit: 3, .. }),
        "{error}"
    );
    // The next block starts a fresh count.
    store.append(60_000, &[]).unwrap();
}

#[test]
fn targets_report_kind_and_first_and_last_seen() {
    let (_dir, mut store) = open_small();
    store.set_target("web", TargetKind::Container).unwrap();
    let id = store.resolve(&[key("web", "threads", "")]).unwrap()[0];
    for ts in [5_000, 15_000, 65_000] {
        store.append(ts, &[(id, 2.0)]).unwrap();
    }
    let targets = store.targets();
    assert_eq!(targets.len(), 1);
    assert_eq!(targets[0].kind, Some(TargetKind::Container));
    assert_eq!(
        (targets[0].first_seen_ms, targets[0].last_seen_ms),
        (Some(5_000), Some(65_000))
    );
    let info = &store.series(Some("web"))[0];
    assert_eq!(
        (info.first_ms, info.last_ms, info.n_points),
        (Some(5_000), Some(65_000), 3)
    );
}

#[test]
fn a_kept_reader_gives_back_the_catalog_slots_of_an_hour_of_churn_at_the_seal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    let mut writer = StoreWriter::open_with(&path, small_options()).unwrap();
    let mut reader = Store::open_read_only_recent(&path, small_options(), 0).unwrap();
    // The first one-minute block: 3,000 short-lived targets of two series each, as a churn
    // of programs leaves in the open block; the reader meets them all while replaying it.
    for i in 0..6i64 {
        let ts = i * 10_000;
        let mut points = vec![(key("steady", "threads", ""), wobble(i))];
        for t in 0..500 {
            let name = format!("churn-{i}-{t}");
            points.push((key(&name, "threads", ""), 1.0));
            points.push((key(&name, "fds", ""), 3.0));
        }
        writer.append_keyed(ts, &points).unwrap();
        reader.refresh(Some(0)).unwrap();
    }
    assert_eq!(
        reader.series(None).len(),
        6_001,
        "the reader met every series"
    );
    let busy = reader.catalog_slots();
    // The next blocks: only the steady target. At each seal the reader loads again, recent
    // targets only (the first seal still finds the churn of the last 20 s, the second
    // none), and holds slots for them, not for the churn.
    for i in 6..14i64 {
        let ts = i * 10_000;
        writer
            .append_keyed(ts, &[(key("steady", "threads", ""), wobble(i))])
            .unwrap();
        reader.refresh(Some(ts - 20_000)).unwrap();
    }
    assert_eq!(reader.series(None).len(), 1);
    let quiet = reader.catalog_slots();
    assert!(quiet < 100, "{quiet} slots kept for 1 series (had {busy})");
}
