//! `kill -9` at random moments loses at most the interval being written and never corrupts
//! the store.
//!
//! The test re-executes its own binary as a child (`crash_child_writer`, ignored in normal
//! runs) that appends intervals as fast as it can and prints each timestamp once `append`
//! has returned. The parent SIGKILLs it after a random delay, reopens the store, runs
//! SQLite's `integrity_check` plus a decode of every block, and checks that every reported
//! interval is there with the exact values. Blocks of one simulated minute make the child
//! seal, roll up, merge and apply retention many times a second, so kills land inside those
//! transactions too.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use leakwatch_store::{Bucket, Durability, Options, RollupLevel, SeriesKey, Store, StoreWriter};

const DB_ENV: &str = "LEAKWATCH_STORE_CRASH_DB";
const INTERVAL_MS: i64 = 10_000;
const START_MS: i64 = 1_704_067_200_000;
const N_TARGETS: usize = 10;
const SERIES_PER_TARGET: usize = 8;
const KILLS: usize = 8;

fn options() -> Options {
    Options {
        // The default: kill -9 must hold with the setting the agent ships.
        durability: Durability::Full,
        raw_block_ms: 60_000,
        raw_retention_ms: 600_000,
        rollups: vec![
            RollupLevel {
                step_ms: 20_000,
                block_ms: 180_000,
                retention_ms: 3_600_000,
            },
            // Kept far longer than the test can simulate, so the 60 s rollups of every
            // interval ever written can be checked.
            RollupLevel {
                step_ms: 60_000,
                block_ms: 600_000,
                retention_ms: 1000 * 3_600_000,
            },
        ],
        ..Options::default()
    }
}

fn keys() -> Vec<SeriesKey> {
    let mut keys = Vec::new();
    for target in 0..N_TARGETS {
        for series in 0..SERIES_PER_TARGET {
            keys.push(SeriesKey::from_text(
                format!("svc-{target}"),
                "fds",
                format!("kind-{series}"),
            ));
        }
    }
    keys
}

/// The value of series `s` at interval `i`: mostly flat integers, one float series per
/// target, so both codecs and the run-length paths are exercised.
fn value(s: usize, i: i64) -> f64 {
    match s % SERIES_PER_TARGET {
        0 => (i / 7 % 40) as f64,
        1 => 1e9 + ((i * 37 % 101) * 4096) as f64,
        2 => i as f64 * 0.25 + s as f64 / 3.0,
        3 => 65536.0,
        _ => ((i + s as i64) / (1 + s as i64) % 5) as f64,
    }
}

#[test]
#[ignore = "helper: run as a child process by kill_9_loses_at_most_the_interval_in_flight"]
fn crash_child_writer() {
    let path = std::env::var(DB_ENV).expect("only run as a child of the kill -9 test");
    let mut store = StoreWriter::open_with(&path, options()).expect("child: open");
    let ids = store.resolve(&keys()).expect("child: resolve");
    let mut ts = store
        .last_append_ms()
        .map_or(START_MS, |last| last + INTERVAL_MS);
    // Bounded even if the parent never kills it.
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let i = (ts - START_MS) / INTERVAL_MS;
        let points: Vec<_> = ids
            .iter()
            .enumerate()
            .map(|(s, &id)| (id, value(s, i)))
            .collect();
        store.append(ts, &points).expect("child: append");
        println!("committed {ts}");
        if i % 6 == 5 {
            store.apply_retention(ts).expect("child: retention");
        }
        ts += INTERVAL_MS;
    }
}

/// Tiny deterministic generator for the kill delays, seeded from the clock and printed.
fn next_random(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[test]
fn kill_9_loses_at_most_the_interval_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    let mut seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    println!("kill delay seed {seed}");
    let mut last_committed: Option<i64> = None;
    let mut total_reported = 0;

    for round in 0..KILLS {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["crash_child_writer", "--exact", "--ignored", "--nocapture"])
            .env(DB_ENV, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().unwrap();
        let (sender, receiver) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(ts) = line.strip_prefix("committed ") {
                    sender.send(ts.parse::<i64>().unwrap()).ok();
                }
            }
        });
        // Wait for the first commit so every round kills a writer that is writing, then
        // let it run between 0 and 800 ms more.
        let first = receiver.recv_timeout(Duration::from_secs(30));
        let delay = Duration::from_millis(next_random(&mut seed) % 800);
        std::thread::sleep(delay);
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the child stopped on its own ({status}); see its stderr above");
        }
        child.kill().expect("SIGKILL the child");
        child.wait().unwrap();
        reader.join().unwrap();
        let mut reported: Vec<i64> = first.into_iter().collect();
        reported.extend(receiver.try_iter());
        println!(
            "round {round}: killed after {delay:?}, {} intervals reported",
            reported.len()
        );
        total_reported += reported.len();
        if let Some(&last) = reported.last() {
            last_committed = Some(last);
        }

        let store = StoreWriter::open_with(&path, options()).expect("reopen after kill -9");
        let conn = rusqlite::Connection::open(&path).unwrap();
        let integrity: String = conn
            .query_row("PRAGMA integrity_check", [], |row| row.get(0))
            .unwrap();
        assert_eq!(integrity, "ok");
        drop(conn);
        store.check_integrity().expect("every block decodes");
        if let Some(last) = last_committed {
            verify(&store, last);
        }
    }
    assert!(total_reported > KILLS, "the child barely wrote anything");
}

/// Every reported interval up to `last_reported` is present with its exact values, as raw
/// samples within raw retention and in the 60 s rollups for all time.
fn verify(store: &Store, last_reported: i64) {
    let newest = store
        .last_append_ms()
        .expect("data after a reported commit");
    // The interval in flight may have committed after its line was printed.
    assert!(
        newest == last_reported || newest == last_reported + INTERVAL_MS,
        "newest {newest}, last reported {last_reported}"
    );
    let n_intervals = (newest - START_MS) / INTERVAL_MS + 1;
    // Retention keeps whole raw blocks that ended within the last 600 s of the newest
    // retention pass; the last 9 minutes are raw for sure.
    let raw_from = newest - 540_000;
    for (s, key) in keys().iter().enumerate() {
        let expected: Vec<(i64, f64)> = (0..n_intervals)
            .map(|i| (START_MS + i * INTERVAL_MS, value(s, i)))
            .filter(|&(ts, _)| ts >= raw_from)
            .collect();
        assert_same(
            &format!("raw samples of {key:?}"),
            &store.query(key, raw_from, i64::MAX).unwrap(),
            &expected,
        );
        let mut expected: Vec<Bucket> = Vec::new();
        for i in 0..n_intervals {
            let ts = START_MS + i * INTERVAL_MS;
            let v = value(s, i);
            let start_ms = ts.div_euclid(60_000) * 60_000;
            match expected.last_mut() {
                Some(b) if b.start_ms == start_ms => {
                    b.min = b.min.min(v);
                    b.max = b.max.max(v);
                    b.last = v;
                    b.count += 1;
                }
                _ => expected.push(Bucket {
                    start_ms,
                    min: v,
                    max: v,
                    last: v,
                    count: 1,
                }),
            }
        }
        assert_same(
            &format!("minute rollups of {key:?}"),
            &store.query_rollup(key, 0, i64::MAX, 60_000).unwrap(),
            &expected,
        );
    }
}

/// Like `assert_eq!`, but names the first difference instead of printing thousands of
/// points.
fn assert_same<T: PartialEq + std::fmt::Debug>(what: &str, got: &[T], expected: &[T]) {
    if let Some(i) = (0..got.len().max(expected.len())).find(|&i| got.get(i) != expected.get(i)) {
        panic!(
            "{what}: {} items, expected {}; first difference at {i}: got {:?}, expected {:?}",
            got.len(),
            expected.len(),
            got.get(i),
            expected.get(i)
        );
    }
}
