//! Issue 16: silences with big reasons grew `alerts.db` (124 MB) and it did not shrink after
//! they expired. On a real SQLite file: the expired silences leave the saved state, and the
//! file (with its WAL) gives the space back.

use leakwatch_alert::*;
use std::path::Path;

/// Bytes of the outbox file and its WAL.
fn size(path: &Path) -> u64 {
    let wal = path.with_file_name("alerts.db-wal");
    [path, wal.as_path()]
        .iter()
        .map(|p| std::fs::metadata(p).map_or(0, |m| m.len()))
        .sum()
}

#[test]
fn expired_silences_leave_the_saved_state_and_the_file_shrinks() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alerts.db");
    let outbox = Outbox::open(&path).unwrap();
    let now = 1_800_000_000_000;
    let mut engine = AlertEngine::new(&AlertConfig::default());
    for i in 0..1000 {
        engine.add_silence(Silence {
            target: format!("svc-{i}"),
            resource: None,
            until: Timestamp(now + 60_000),
            reason: "r".repeat(1024),
        });
    }
    outbox.save_engine_state(&engine.state()).unwrap();
    let full = size(&path);
    assert!(full > 1 << 20, "{full} bytes with 1,000 silences of 1 KiB");

    // A minute later every silence has ended.
    assert_eq!(engine.expire_silences(now + 60_000), 1000);
    outbox.save_engine_state(&engine.state()).unwrap();
    drop(outbox);
    let outbox = Outbox::open(&path).unwrap();
    let saved = outbox.load_engine_state().unwrap().unwrap();
    assert!(saved.silences.is_empty(), "{}", saved.silences.len());
    let after = size(&path);
    assert!(
        after < 256 * 1024,
        "{after} bytes after the silences expired (was {full})"
    );
}

#[test]
fn an_outbox_made_without_auto_vacuum_is_converted_and_shrinks_too() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alerts.db");
    {
        // As an older agent made it: no auto_vacuum.
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; \
             CREATE TABLE engine_state (id INTEGER PRIMARY KEY CHECK (id = 1), state TEXT NOT NULL);",
        )
        .unwrap();
    }
    let outbox = Outbox::open(&path).unwrap();
    let mut engine = AlertEngine::new(&AlertConfig::default());
    for i in 0..1000 {
        engine.add_silence(Silence {
            target: format!("svc-{i}"),
            resource: None,
            until: Timestamp(1),
            reason: "r".repeat(1024),
        });
    }
    outbox.save_engine_state(&engine.state()).unwrap();
    engine.expire_silences(2);
    outbox.save_engine_state(&engine.state()).unwrap();
    let after = size(&path);
    assert!(after < 256 * 1024, "{after} bytes");
}
