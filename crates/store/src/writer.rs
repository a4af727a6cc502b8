//! The write side of the store (Prometheus tsdb's Appender to [`Store`]'s Querier): the one
//! handle per data file that appends, creates series and targets, records restarts and
//! applies retention. It reads like a [`Store`] (it dereferences to one).

use crate::error::Result;
use crate::model::{AppendReport, Restart, RetentionReport, SeriesId, SeriesKey, TargetKind};
use crate::options::Options;
use crate::store::Store;
use std::path::Path;

/// The writable store. Only one process opens a data file for writing at a time.
pub struct StoreWriter(Store);

impl StoreWriter {
    /// Opens (creating if needed) the store at `path` with default [`Options`], for writing.
    pub fn open(path: impl AsRef<Path>) -> Result<StoreWriter> {
        StoreWriter::open_with(path, Options::default())
    }

    /// Opens (creating if needed) the store at `path` for writing. Fails with
    /// [`crate::Error::Locked`] if another process has it open for writing.
    pub fn open_with(path: impl AsRef<Path>, options: Options) -> Result<StoreWriter> {
        Store::open_writable(path, options).map(StoreWriter)
    }

    /// Returns the ids of `keys`, creating missing series (and their targets) in one
    /// transaction. Ids stay valid until retention deletes the series (no data left in any
    /// level); a later `append` reports such ids in [`AppendReport::unknown`].
    pub fn resolve(&mut self, keys: &[SeriesKey]) -> Result<Vec<SeriesId>> {
        self.0.resolve(keys)
    }

    /// Sets the kind of a target, creating it if needed.
    pub fn set_target(&mut self, name: &str, kind: TargetKind) -> Result<()> {
        self.0.set_target(name, kind)
    }

    /// Writes one sampling interval: all `points` at `ts_ms`, in one transaction. When
    /// `ts_ms` falls past the open block, that block is sealed first (compressed, rolled up,
    /// compacted) in its own transaction.
    ///
    /// Timestamps must increase from call to call. Once this returns `Ok`, the interval
    /// survives `kill -9` (and, with [`crate::Durability::Full`], power loss).
    pub fn append(&mut self, ts_ms: i64, points: &[(SeriesId, f64)]) -> Result<AppendReport> {
        self.0.append(ts_ms, points)
    }

    /// Like [`StoreWriter::append`], by key: missing series are created in the same
    /// transaction. Points whose series cannot be created (caps reached) are skipped and
    /// counted in [`AppendReport::refused`]; the rest of the interval is written.
    pub fn append_keyed(
        &mut self,
        ts_ms: i64,
        points: &[(SeriesKey, f64)],
    ) -> Result<AppendReport> {
        self.0.append_keyed(ts_ms, points)
    }

    /// Records a restart, then trims the target's restarts to
    /// [`crate::Options::restarts_per_target`] and its stderr tails to the newest
    /// [`crate::Options::restarts_with_stderr`], so a crash loop stays bounded.
    pub fn record_restart(&mut self, restart: &Restart) -> Result<()> {
        self.0.record_restart(restart)
    }

    /// Sets a key in the generic key/value table (e.g. agent version, host id).
    pub fn set_meta(&mut self, key: &str, value: &str) -> Result<()> {
        self.0.set_meta(key, value)
    }

    /// Applies retention as of `now_ms` (the agent calls it about hourly). Raw blocks are
    /// always rolled up when they are sealed, so dropping them loses only resolution.
    pub fn apply_retention(&mut self, now_ms: i64) -> Result<RetentionReport> {
        self.0.apply_retention(now_ms)
    }
}

impl std::ops::Deref for StoreWriter {
    type Target = Store;

    fn deref(&self) -> &Store {
        &self.0
    }
}
