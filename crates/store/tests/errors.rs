//! Failures are clear errors, never panics, and never cost data that was already committed.

use std::path::Path;

use leakwatch_store::{Durability, Error, Options, SeriesKey, Store, StoreWriter};

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn opening_in_a_missing_directory_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no/such/dir/history.db");
    let error = StoreWriter::open(&path).err().expect("must fail");
    let message = error.to_string();
    assert!(matches!(error, Error::Open { .. }), "{message}");
    assert!(message.contains("no/such/dir/history.db"), "{message}");
}

#[test]
fn a_file_that_is_not_a_store_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.db");
    std::fs::write(&garbage, vec![0x42u8; 8192]).unwrap();
    let message = StoreWriter::open(&garbage)
        .err()
        .expect("must fail")
        .to_string();
    assert!(
        message.contains("garbage.db") && message.contains("not a database"),
        "{message}"
    );

    // Another application's SQLite file is not taken over either.
    let foreign = dir.path().join("foreign.db");
    rusqlite::Connection::open(&foreign)
        .unwrap()
        .execute_batch("CREATE TABLE t (x)")
        .unwrap();
    let error = StoreWriter::open(&foreign).err().expect("must fail");
    assert!(matches!(error, Error::Schema { found: 0, .. }), "{error}");
}

#[test]
fn a_second_writer_is_locked_out_and_readers_are_not() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    let mut writer = StoreWriter::open(&path).unwrap();
    let rss = SeriesKey::from_text("svc", "memory", "rss");
    writer
        .append_keyed(1_000, &[(rss.clone(), 4096.0)])
        .unwrap();

    let error = StoreWriter::open(&path).err().expect("second writer");
    assert!(matches!(error, Error::Locked { .. }), "{error}");

    let reader = Store::open_read_only(&path).unwrap();
    assert_eq!(
        reader.query(&rss, 0, i64::MAX).unwrap(),
        vec![(1_000, 4096.0)]
    );
    // Writing through `reader` does not compile: see the compile_fail examples on `Store`.

    drop(writer);
    // The lock dies with its holder.
    StoreWriter::open(&path).unwrap();
}

#[test]
fn a_read_only_file_gives_an_error_not_a_panic() {
    if is_root() {
        // Permission bits do not stop root; a read-only handle is the closest equivalent.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.db");
        drop(StoreWriter::open(&path).unwrap());
        drop(path);
        // A place no one may create a file in.
        let error = StoreWriter::open("/proc/leakwatch-history.db")
            .err()
            .expect("creating a store under /proc must fail");
        assert!(matches!(error, Error::Open { .. }), "{error}");
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    drop(StoreWriter::open(&path).unwrap());
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444)).unwrap();
    let error = StoreWriter::open(&path)
        .and_then(|mut store| store.set_meta("k", "v").map(|()| store))
        .err()
        .expect("writing a read-only file must fail");
    assert!(
        error.to_string().contains("history.db") || error.to_string().contains("readonly"),
        "{error}"
    );
}

fn read_everything(path: &Path, keys: &[SeriesKey]) -> Vec<Vec<(i64, f64)>> {
    let store = StoreWriter::open(path).unwrap();
    keys.iter()
        .map(|key| store.query(key, 0, i64::MAX).unwrap())
        .collect()
}

#[test]
fn a_full_store_fails_cleanly_and_keeps_what_was_committed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    let options = Options {
        durability: Durability::Normal,
        max_file_bytes: Some(512 * 1024),
        ..Options::default()
    };
    let keys: Vec<SeriesKey> = (0..2000)
        .map(|i| SeriesKey::from_text(format!("svc-{}", i / 20), "memory", format!("part-{i}")))
        .collect();
    let mut store = StoreWriter::open_with(&path, options).unwrap();
    let ids = store.resolve(&keys).unwrap();
    let mut committed = Vec::new();
    let mut full = None;
    for i in 0..1000i64 {
        let ts = 1_704_067_200_000 + i * 10_000;
        // Floats that change every interval: nine bytes each in `pending`.
        let points: Vec<_> = ids
            .iter()
            .enumerate()
            .map(|(s, &id)| (id, (i * 7 + s as i64) as f64 / 3.0))
            .collect();
        match store.append(ts, &points) {
            Ok(_) => committed.push((ts, points)),
            Err(error) => {
                full = Some(error);
                break;
            }
        }
    }
    let error = full.expect("the cap must be reached");
    assert!(error.is_full(), "{error}");
    assert!(error.to_string().contains("full"), "{error}");
    assert!(
        committed.len() > 5,
        "only {} intervals fit",
        committed.len()
    );

    // Nothing half-written is visible in this handle...
    let expected: Vec<Vec<(i64, f64)>> = (0..keys.len())
        .map(|s| {
            committed
                .iter()
                .map(|(ts, points)| (*ts, points[s].1))
                .collect()
        })
        .collect();
    for (s, key) in keys.iter().enumerate().step_by(97) {
        assert_eq!(store.query(key, 0, i64::MAX).unwrap(), expected[s]);
    }
    // ...and everything committed is there after reopening without the cap.
    drop(store);
    assert_eq!(read_everything(&path, &keys), expected);
}
