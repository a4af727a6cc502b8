//! The SQLite schema and connection settings.

use rusqlite::Connection;

use crate::error::{Context, Error, Result};
use crate::options::{Durability, Options};

pub(crate) const SCHEMA_VERSION: i64 = 1;

/// Tables. Samples live in `blocks` (one blob per target, span and resolution) and, until
/// their block is sealed, in `pending` (one row per interval). See docs/store.md.
const SCHEMA: &str = "
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

-- AUTOINCREMENT keeps ids from being reused after retention deletes a row, so a stale
-- SeriesId held by a caller can never alias a newer series.
CREATE TABLE targets (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT NOT NULL UNIQUE,
    kind       TEXT NOT NULL,
    first_seen INTEGER,
    last_seen  INTEGER
);

CREATE TABLE series (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    target_id   INTEGER NOT NULL,
    resource    TEXT NOT NULL,
    attribution TEXT NOT NULL,
    first_ms    INTEGER,
    last_ms     INTEGER,
    n_points    INTEGER NOT NULL DEFAULT 0,
    UNIQUE (target_id, resource, attribution)
);

-- Timestamps of the intervals of one sealed raw block, shared by all targets' raw blocks.
CREATE TABLE intervals (
    start_ms INTEGER PRIMARY KEY,
    end_ms   INTEGER NOT NULL,
    n        INTEGER NOT NULL,
    data     BLOB NOT NULL
);

-- step_ms = 0: raw samples; otherwise rollup buckets of that width. A rowid table so hourly
-- inserts append at the end of the b-tree and leave its pages full.
CREATE TABLE blocks (
    id        INTEGER PRIMARY KEY,
    target_id INTEGER NOT NULL,
    step_ms   INTEGER NOT NULL,
    start_ms  INTEGER NOT NULL,
    end_ms    INTEGER NOT NULL,
    data      BLOB NOT NULL
);
CREATE UNIQUE INDEX blocks_by_target ON blocks (target_id, step_ms, start_ms);
-- Retention and compaction select by age; covering so they never read block payloads.
CREATE INDEX blocks_by_age ON blocks (step_ms, end_ms, start_ms, target_id);

-- The open block: every interval since the last seal, deleted when the block is sealed.
CREATE TABLE pending (
    ts_ms INTEGER PRIMARY KEY,
    data  BLOB NOT NULL
);

CREATE TABLE restarts (
    id             INTEGER PRIMARY KEY,
    target_id      INTEGER NOT NULL,
    ts_ms          INTEGER NOT NULL,
    old_pid        INTEGER,
    old_start_time INTEGER,
    new_pid        INTEGER,
    new_start_time INTEGER,
    exit_code      INTEGER,
    signal         INTEGER,
    oom_killed     INTEGER,
    stderr_tail    TEXT
);
CREATE INDEX restarts_by_target ON restarts (target_id, ts_ms);
";

/// Applies connection settings and creates the schema on a new file.
pub(crate) fn prepare(conn: &Connection, options: &Options) -> Result<()> {
    // page_size and auto_vacuum only take effect before the first table exists, and the page
    // size only before the file is switched to WAL.
    let version = schema_version(conn)?;
    if version == 0 {
        let n_tables: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_master", [], |row| row.get(0))
            .context("inspect the file")?;
        if n_tables > 0 {
            // Some other application's database: refuse rather than add tables to it.
            return Err(Error::Schema {
                found: 0,
                supported: SCHEMA_VERSION,
            });
        }
        conn.pragma_update(None, "page_size", options.page_size)
            .context("set the page size")?;
        // Incremental, so retention can hand space back after a burst (e.g. a day with ten
        // times the usual series) without a full VACUUM.
        conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")
            .context("enable incremental vacuum")?;
    }
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .context("switch to WAL mode")?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Error::InvalidOptions(format!(
            "the file system refused WAL mode (journal_mode is {mode})"
        )));
    }
    let synchronous = match options.durability {
        Durability::Full => "FULL",
        Durability::Normal => "NORMAL",
    };
    conn.pragma_update(None, "synchronous", synchronous)
        .context("set synchronous")?;
    // Truncate the WAL back to 4 MiB after checkpoints so a large seal does not leave a
    // large WAL behind for good (it counts against the disk budget like the file does).
    conn.pragma_update(None, "journal_size_limit", 4 * 1024 * 1024)
        .context("set the WAL size limit")?;
    apply_common(conn, options)?;
    if let Some(max_bytes) = options.max_file_bytes {
        let pages = (max_bytes / u64::from(options.page_size)).max(1);
        conn.pragma_update(None, "max_page_count", pages as i64)
            .context("set the size cap")?;
    }
    if version == 0 {
        let tx = conn
            .unchecked_transaction()
            .context("begin creating the schema")?;
        tx.execute_batch(SCHEMA).context("create the schema")?;
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)
            .context("set the schema version")?;
        tx.commit().context("commit the schema")?;
    } else if version != SCHEMA_VERSION {
        return Err(Error::Schema {
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    Ok(())
}

/// Settings that also apply to read-only connections.
pub(crate) fn apply_common(conn: &Connection, _options: &Options) -> Result<()> {
    // A reader may briefly wait for the writer's checkpoint; five seconds is far longer than
    // any checkpoint of this store.
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .context("set the busy timeout")?;
    // The page cache is bounded (8 MiB) like every other cache of the agent.
    conn.pragma_update(None, "cache_size", -8192)
        .context("set the cache size")?;
    Ok(())
}

pub(crate) fn schema_version(conn: &Connection) -> Result<i64> {
    conn.pragma_query_value(None, "user_version", |row| row.get(0))
        .context("read the schema version")
}
