//! The store handle: opening the file, resolving series, appending intervals, and sealing the
//! open block into compressed blocks and rollups.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::hash::{BuildHasherDefault, Hasher};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rusqlite::{params, Connection, OpenFlags, OptionalExtension};

use crate::block::{self, align_down, BlockWriter, Bucket};
use crate::codec::{self, put_token, put_uvarint, zigzag, Runs};
use crate::compact::{self, BlockIds};
use crate::error::{Context, Error, Result};
use crate::model::{AppendReport, SeriesId, SeriesKey, TargetKind};
use crate::options::Options;
use crate::schema;

/// Multiplicative hasher for the store's own integer ids. They are never chosen by an
/// attacker, and the per-point lookup is the hottest line of `append`, so SipHash's
/// HashDoS protection buys nothing here.
#[derive(Default)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(byte)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_i64(&mut self, value: i64) {
        self.0 = (value as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

pub(crate) type IdMap<V> = HashMap<i64, V, BuildHasherDefault<IdHasher>>;

pub(crate) struct TargetState {
    pub(crate) name: String,
    pub(crate) kind: String,
    /// As sealed; the open block may extend both.
    pub(crate) first_seen: Option<i64>,
    pub(crate) last_seen: Option<i64>,
}

pub(crate) struct SeriesState {
    pub(crate) key: SeriesKey,
    pub(crate) target_id: i64,
    /// As sealed; the open block may extend them.
    pub(crate) first_ms: Option<i64>,
    pub(crate) last_ms: Option<i64>,
    pub(crate) n_points: u64,
    pub(crate) open: Option<OpenSeries>,
    /// The `append` call that last saw this series, to reject duplicates without a set.
    seen_epoch: u64,
    /// A series that never got a point survives one retention pass, so a caller may resolve
    /// a series and append to it with a retention pass in between.
    pub(crate) retention_grace: bool,
}

/// A series' samples in the open block, kept as the same tokens that `pending` holds (about
/// one byte per unchanged sample) rather than as `f64`s, so an hour of 15,000 series stays
/// in a few megabytes.
pub(crate) struct OpenSeries {
    tokens: Vec<u8>,
    last_value: f64,
    pub(crate) runs: Runs,
    n: u32,
}

impl OpenSeries {
    fn push(&mut self, index: u32, token: &[u8], value: f64) {
        self.tokens.extend_from_slice(token);
        self.last_value = value;
        self.n += 1;
        codec::push_run(&mut self.runs, index);
    }

    pub(crate) fn values(&self) -> Result<Vec<f64>> {
        let mut values = Vec::with_capacity(self.n as usize);
        let mut pos = 0;
        let mut previous = 0.0;
        for _ in 0..self.n {
            previous = codec::get_token(&self.tokens, &mut pos, previous)
                .map_err(|e| Error::corrupt("open block", e))?;
            values.push(previous);
        }
        Ok(values)
    }

    pub(crate) fn memory_bytes(&self) -> usize {
        self.tokens.capacity() + self.runs.capacity() * 8 + std::mem::size_of::<Self>()
    }
}

/// The raw block being filled: its start and the timestamps of its intervals.
pub(crate) struct OpenBlock {
    pub(crate) start_ms: i64,
    pub(crate) interval_ts: Vec<i64>,
}

/// Decoded interval lists of sealed raw blocks. Bounded; the oldest block is evicted first
/// because queries mostly read recent hours.
pub(crate) struct IntervalCache {
    entries: BTreeMap<i64, Arc<Vec<i64>>>,
}

const INTERVAL_CACHE_BLOCKS: usize = 128;

impl IntervalCache {
    pub(crate) fn get(&self, start_ms: i64) -> Option<Arc<Vec<i64>>> {
        self.entries.get(&start_ms).cloned()
    }

    pub(crate) fn insert(&mut self, start_ms: i64, list: Arc<Vec<i64>>) {
        if self.entries.len() >= INTERVAL_CACHE_BLOCKS {
            self.entries.pop_first();
        }
        self.entries.insert(start_ms, list);
    }

    pub(crate) fn clear(&mut self) {
        self.entries.clear();
    }
}

/// The embedded history, for reading: catalog, queries, stats. A [`StoreWriter`] adds the
/// writes (Prometheus tsdb's Querier/Appender split): a store opened with
/// [`Store::open_read_only`] has no method that writes, so it cannot be asked to.
///
/// Each of these fails to compile (they were `Error::ReadOnly` at run time before):
///
/// ```compile_fail
/// let mut store = leakwatch_store::Store::open_read_only("/tmp/x.db").unwrap();
/// store.set_meta("k", "v").unwrap();
/// ```
///
/// ```compile_fail
/// let mut store = leakwatch_store::Store::open_read_only("/tmp/x.db").unwrap();
/// let key = leakwatch_store::SeriesKey::from_text("svc", "memory", "rss");
/// store.append_keyed(2_000, &[(key, 1.0)]).unwrap();
/// ```
///
/// ```compile_fail
/// let mut store = leakwatch_store::Store::open_read_only("/tmp/x.db").unwrap();
/// store.apply_retention(0).unwrap();
/// ```
///
/// The same calls compile on the writer:
///
/// ```no_run
/// let mut store = leakwatch_store::StoreWriter::open("/tmp/x.db").unwrap();
/// store.set_meta("k", "v").unwrap();
/// store.apply_retention(0).unwrap();
/// ```
pub struct Store {
    pub(crate) conn: Connection,
    pub(crate) path: PathBuf,
    pub(crate) options: Options,
    pub(crate) read_only: bool,
    /// Opened with [`Store::open_read_only_recent`]: only targets seen since this time are
    /// in the catalog (and those the open block names, loaded as it is replayed).
    recent_since: Option<i64>,
    /// A refresh began and did not finish: what it half read (a row half replayed, a
    /// catalog half loaded) cannot be built on, so the next one reads everything again.
    refresh_unfinished: bool,
    /// Held for the handle's lifetime; the kernel releases it when the process dies.
    _lock: Option<File>,
    pub(crate) targets: IdMap<TargetState>,
    pub(crate) target_ids: HashMap<String, i64>,
    /// Boxed: a table's free slots then cost an id and a pointer, not a whole state (216
    /// bytes), so the table grown by an hour of churned series needs less at a resize.
    pub(crate) series: IdMap<Box<SeriesState>>,
    pub(crate) series_ids: HashMap<SeriesKey, i64>,
    next_target_id: i64,
    next_series_id: i64,
    /// Created in memory, inserted by the next transaction (resolve or append).
    pub(crate) unpersisted_targets: Vec<i64>,
    pub(crate) unpersisted_series: Vec<i64>,
    pub(crate) open: Option<OpenBlock>,
    /// End of the newest sealed raw block.
    pub(crate) sealed_until: Option<i64>,
    last_append_ms: Option<i64>,
    epoch: u64,
    pub(crate) interval_cache: RefCell<IntervalCache>,
    /// Rowid allocator clustering blocks by lifetime (see `compact`).
    block_ids: BlockIds,
    row_scratch: Vec<u8>,
    accepted_scratch: Vec<(i64, f64, u32, u32)>,
}

impl Store {
    /// Opens (creating if needed) the store at `path` for writing.
    pub(crate) fn open_writable(path: impl AsRef<Path>, options: Options) -> Result<Store> {
        options.validate()?;
        let path = path.as_ref().to_path_buf();
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&path, flags).map_err(|source| Error::Open {
            path: path.clone(),
            context: "open the file",
            source,
        })?;
        let lock = lock_writer(&path)?;
        schema::prepare(&conn, &options).map_err(|e| e.while_opening(&path))?;
        let at = path.clone();
        Store::load(conn, path, options, None, Some(lock)).map_err(|e| e.while_opening(&at))
    }

    /// Opens an existing store for reading only (e.g. for the CLI while the agent runs).
    /// It sees what was committed when it was opened, including the open block, and
    /// nothing later: it holds one read transaction (one WAL snapshot) for its lifetime, so
    /// the catalog, the open block and the sealed blocks it reads always agree while the
    /// writer appends, adds series and seals. Keep read-only stores short-lived: a snapshot
    /// held for long keeps the WAL from being checkpointed past it.
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Store> {
        Store::open_read_only_with(path, Options::default())
    }

    /// [`Store::open_read_only`] for a store written with non-default block spans.
    pub fn open_read_only_with(path: impl AsRef<Path>, options: Options) -> Result<Store> {
        Store::open_snapshot(path.as_ref(), options, None)
    }

    /// [`Store::open_read_only_with`] with a catalog of only the targets seen at or after
    /// `since_ms` (by their sealed blocks or in the open block), for a reader that asks about
    /// recent history only, such as the agent's detection pass. Opening costs what the
    /// recent targets cost, not what every target ever stored costs: after a day of process
    /// churn a store holds thousands of targets that left long ago. [`Store::targets`] and
    /// [`Store::series`] list only the recent ones, and a query of any other target finds
    /// nothing.
    pub fn open_read_only_recent(
        path: impl AsRef<Path>,
        options: Options,
        since_ms: i64,
    ) -> Result<Store> {
        Store::open_snapshot(path.as_ref(), options, Some(since_ms))
    }

    fn open_snapshot(path: &Path, options: Options, recent_since: Option<i64>) -> Result<Store> {
        options.validate()?;
        let path = path.to_path_buf();
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&path, flags).map_err(|source| Error::Open {
            path: path.clone(),
            context: "open the file",
            source,
        })?;
        let check = || -> Result<()> {
            schema::apply_common(&conn, &options)?;
            let version = schema::schema_version(&conn)?;
            if version != schema::SCHEMA_VERSION {
                return Err(Error::Schema {
                    found: version,
                    supported: schema::SCHEMA_VERSION,
                });
            }
            Ok(())
        };
        check().map_err(|e| e.while_opening(&path))?;
        // Every read below (catalog, open block, later queries) from one snapshot: without
        // it, a series the writer adds between reading the catalog and reading the open
        // block looks like corruption ("unknown series").
        conn.execute_batch("BEGIN DEFERRED")
            .map_err(|source| Error::Open {
                path: path.clone(),
                context: "begin the read transaction",
                source,
            })?;
        let at = path.clone();
        Store::load(conn, path, options, recent_since, None).map_err(|e| e.while_opening(&at))
    }

    /// A store with its catalog and open block read: a writer when it holds `lock`, else a
    /// reader, of every target or (`recent_since`) of the recent ones.
    fn load(
        conn: Connection,
        path: PathBuf,
        options: Options,
        recent_since: Option<i64>,
        lock: Option<File>,
    ) -> Result<Store> {
        let read_only = lock.is_none();
        let block_ids = BlockIds::load(&conn, &options)?;
        let mut store = Store {
            conn,
            path,
            options,
            read_only,
            recent_since,
            refresh_unfinished: false,
            _lock: lock,
            targets: IdMap::default(),
            target_ids: HashMap::new(),
            series: IdMap::default(),
            series_ids: HashMap::new(),
            next_target_id: 1,
            next_series_id: 1,
            unpersisted_targets: Vec::new(),
            unpersisted_series: Vec::new(),
            open: None,
            sealed_until: None,
            last_append_ms: None,
            epoch: 0,
            interval_cache: RefCell::new(IntervalCache {
                entries: BTreeMap::new(),
            }),
            block_ids,
            row_scratch: Vec::new(),
            accepted_scratch: Vec::new(),
        };
        store.load_catalog()?;
        store.replay_pending()?;
        Ok(store)
    }

    fn load_catalog(&mut self) -> Result<()> {
        match self.recent_since {
            None => {
                self.load_targets("", [])?;
                self.load_series("", [])?;
            }
            Some(since) => {
                self.load_targets("WHERE last_seen >= ?1", [since])?;
                self.load_series(
                    "WHERE target_id IN (SELECT id FROM targets WHERE last_seen >= ?1)",
                    [since],
                )?;
            }
        }
        let conn = &self.conn;
        // sqlite_sequence remembers the largest id ever used, even after retention deleted it.
        let sequence = |table: &str| -> Result<i64> {
            conn.query_row(
                "SELECT coalesce(max(seq), 0) FROM sqlite_sequence WHERE name = ?1",
                [table],
                |row| row.get(0),
            )
            .context("read id sequences")
        };
        self.next_target_id = sequence("targets")? + 1;
        self.next_series_id = sequence("series")? + 1;

        let newest: Option<(i64, i64, i64, Vec<u8>)> = conn
            .query_row(
                "SELECT start_ms, end_ms, n, data FROM intervals ORDER BY start_ms DESC LIMIT 1",
                [],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
            )
            .map(Some)
            .or_else(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => Ok(None),
                e => Err(e),
            })
            .context("read the newest sealed block")?;
        if let Some((start_ms, end_ms, n, data)) = newest {
            let list = block::decode_interval_list(start_ms, n as usize, &data)
                .map_err(|e| Error::corrupt(format!("interval list {start_ms}"), e))?;
            self.sealed_until = Some(end_ms);
            self.last_append_ms = list.last().copied();
        }
        Ok(())
    }

    /// Adds the targets `filter` (an SQL `WHERE` clause over `targets`, or nothing) selects.
    fn load_targets(&mut self, filter: &str, args: impl rusqlite::Params) -> Result<()> {
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT id, name, kind, first_seen, last_seen FROM targets {filter}"
            ))
            .context("read targets")?;
        let rows = stmt
            .query_map(args, |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    TargetState {
                        name: row.get(1)?,
                        kind: row.get(2)?,
                        first_seen: row.get(3)?,
                        last_seen: row.get(4)?,
                    },
                ))
            })
            .context("read targets")?;
        for row in rows {
            let (id, target) = row.context("read targets")?;
            self.target_ids.insert(target.name.clone(), id);
            self.targets.insert(id, target);
        }
        Ok(())
    }

    /// Adds the series `filter` (an SQL `WHERE` clause over `series`, or nothing) selects;
    /// their targets must be loaded.
    fn load_series(&mut self, filter: &str, args: impl rusqlite::Params) -> Result<()> {
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT id, target_id, resource, attribution, first_ms, last_ms, n_points
                 FROM series {filter}"
            ))
            .context("read series")?;
        let rows = stmt
            .query_map(args, |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, i64>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, String>(3)?,
                    row.get::<_, Option<i64>>(4)?,
                    row.get::<_, Option<i64>>(5)?,
                    row.get::<_, i64>(6)?,
                ))
            })
            .context("read series")?;
        for row in rows {
            let (id, target_id, resource, attribution, first_ms, last_ms, n_points) =
                row.context("read series")?;
            let target = self.targets.get(&target_id).ok_or_else(|| {
                Error::corrupt(
                    "series table",
                    format!("series {id} has no target {target_id}"),
                )
            })?;
            let key = SeriesKey::from_text(target.name.clone(), &resource, &attribution);
            self.series_ids.insert(key.clone(), id);
            self.series.insert(
                id,
                Box::new(SeriesState {
                    key,
                    target_id,
                    first_ms,
                    last_ms,
                    n_points: n_points as u64,
                    open: None,
                    seen_epoch: 0,
                    retention_grace: true,
                }),
            );
        }
        Ok(())
    }

    /// A reader that meets series `id` in the open block without knowing it (a series
    /// created after its catalog was read, or, in a store of recent targets, one whose
    /// target's sealed blocks are older) loads it: with its target and all the target's
    /// series if the target is not loaded yet. False if there is no such series.
    fn load_series_met(&mut self, id: i64) -> Result<bool> {
        if !self.read_only {
            return Ok(false);
        }
        let target_id: Option<i64> = self
            .conn
            .query_row("SELECT target_id FROM series WHERE id = ?1", [id], |row| {
                row.get(0)
            })
            .optional()
            .context("read series")?;
        let Some(target_id) = target_id else {
            return Ok(false);
        };
        if self.targets.contains_key(&target_id) {
            self.load_series("WHERE id = ?1", [id])?;
        } else {
            self.load_targets("WHERE id = ?1", [target_id])?;
            self.load_series("WHERE target_id = ?1", [target_id])?;
        }
        Ok(self.series.contains_key(&id))
    }

    /// Ends a reader's snapshot, so a reader kept between uses does not hold the WAL back
    /// from being checkpointed, and frees its page cache (up to 8 MiB a connection), so a
    /// reader kept between uses does not hold that either: the next use reads its pages
    /// again, from the kernel's cache. Call [`Store::refresh`] before reading again (until
    /// then, each query reads on its own, not from one snapshot).
    pub fn release_snapshot(&mut self) -> Result<()> {
        if self.read_only && !self.conn.is_autocommit() {
            self.conn
                .execute_batch("COMMIT")
                .context("end the read snapshot")?;
        }
        if self.read_only {
            self.conn
                .execute_batch("PRAGMA shrink_memory")
                .context("free the page cache")?;
        }
        Ok(())
    }

    /// Brings a reader up to what the writer has committed since it opened or last
    /// refreshed, in a new snapshot: the intervals appended since are replayed onto the open
    /// block it holds (and the series and targets they name loaded), so a reader that asks
    /// again every few seconds costs what changed, not the whole open hour and catalog.
    /// When the writer has sealed a block since, everything is read again, as
    /// [`Store::open_read_only_recent`] would with `recent_since` (or as
    /// [`Store::open_read_only_with`] with `None`). After a refresh that failed, the next
    /// one reads everything again. Errors for a writer's store.
    pub fn refresh(&mut self, recent_since: Option<i64>) -> Result<()> {
        if !self.read_only {
            return Err(Error::InvalidArgument(
                "refresh is for a read-only store".into(),
            ));
        }
        self.release_snapshot()?;
        self.conn
            .execute_batch("BEGIN DEFERRED")
            .context("begin a new read snapshot")?;
        let newest_sealed_end: Option<i64> = self
            .conn
            .query_row(
                "SELECT end_ms FROM intervals ORDER BY start_ms DESC LIMIT 1",
                [],
                |row| row.get(0),
            )
            .optional()
            .context("read the newest sealed block")?;
        // Between seals, targets older than a later `recent_since` stay loaded until the
        // next seal (an hour at most): they cost little, and dropping them would mean
        // reading the catalog again.
        if self.refresh_unfinished
            || newest_sealed_end != self.sealed_until
            || recent_since.is_some() != self.recent_since.is_some()
        {
            self.refresh_unfinished = true;
            // New maps, not cleared ones: a map keeps its largest capacity, and an hour of
            // churn (the open block names every target met in it) leaves tens of thousands
            // of empty slots, 20 MB in the self-soak (BENCHMARKS.md §2).
            self.targets = IdMap::default();
            self.target_ids = HashMap::new();
            self.series = IdMap::default();
            self.series_ids = HashMap::new();
            self.open = None;
            self.sealed_until = None;
            self.last_append_ms = None;
            self.recent_since = recent_since;
            self.load_catalog()?;
        }
        self.refresh_unfinished = true;
        self.replay_pending()?;
        self.refresh_unfinished = false;
        Ok(())
    }

    /// Slots the in-memory catalog holds (targets and series, with their name indexes):
    /// at least the entries, at most what the busiest hour since the last full load needed.
    pub fn catalog_slots(&self) -> usize {
        self.targets.capacity()
            + self.target_ids.capacity()
            + self.series.capacity()
            + self.series_ids.capacity()
    }

    /// Rebuilds the open block from `pending` after a restart or crash.
    fn replay_pending(&mut self) -> Result<()> {
        // Only what this handle has not replayed yet (all of it when it is new).
        let after = self.last_append_ms.unwrap_or(i64::MIN);
        let rows: Vec<(i64, Vec<u8>)> = {
            let mut stmt = self
                .conn
                .prepare_cached("SELECT ts_ms, data FROM pending WHERE ts_ms > ?1 ORDER BY ts_ms")
                .context("read the open block")?;
            let rows = stmt
                .query_map([after], |row| Ok((row.get(0)?, row.get(1)?)))
                .context("read the open block")?;
            rows.collect::<rusqlite::Result<_>>()
                .context("read the open block")?
        };
        for (ts_ms, data) in rows {
            let block_start = align_down(ts_ms, self.options.raw_block_ms);
            let crosses = self
                .open
                .as_ref()
                .is_some_and(|open| open.start_ms != block_start);
            // Sealing deletes `pending` in the same transaction, so rows of two blocks mean
            // a seal never ran; a writer finishes it now, a reader keeps them as one block.
            if crosses && !self.read_only {
                self.seal()?;
            }
            let index = self.push_interval(ts_ms);
            let what = || format!("pending interval {ts_ms}");
            let mut pos = 0;
            let mut id = 0i64;
            while pos < data.len() {
                let header =
                    codec::get_uvarint(&data, &mut pos).map_err(|e| Error::corrupt(what(), e))?;
                let (first, count, changed) = if header & 1 == 0 {
                    (id.wrapping_add(1), header >> 1, false)
                } else {
                    (id.wrapping_add(codec::unzigzag(header >> 1)), 1, true)
                };
                for k in 0..count as i64 {
                    id = first.wrapping_add(k);
                    if !self.series.contains_key(&id) && !self.load_series_met(id)? {
                        return Err(Error::corrupt(what(), format!("unknown series {id}")));
                    }
                    let series = self
                        .series
                        .get_mut(&id)
                        .ok_or_else(|| Error::corrupt(what(), format!("unknown series {id}")))?;
                    let previous = series.open.as_ref().map_or(0.0, |open| open.last_value);
                    if changed {
                        let token_start = pos;
                        let value = codec::get_token(&data, &mut pos, previous)
                            .map_err(|e| Error::corrupt(what(), e))?;
                        push_point(series, index, &data[token_start..pos], value);
                    } else {
                        push_point(series, index, &UNCHANGED_TOKEN, previous);
                    }
                }
            }
            self.last_append_ms = Some(ts_ms);
        }
        Ok(())
    }

    /// Where the store lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The options the store was opened with.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// Time of the newest interval written, if any.
    pub fn last_append_ms(&self) -> Option<i64> {
        self.last_append_ms
    }

    /// The id of an existing series, without creating it.
    pub fn lookup(&self, key: &SeriesKey) -> Option<SeriesId> {
        self.series_ids.get(key).copied().map(SeriesId)
    }

    /// Returns the ids of `keys`, creating missing series (and their targets) in one
    /// transaction. Ids stay valid until retention deletes the series (no data left in any
    /// level); a later `append` reports such ids in [`AppendReport::unknown`].
    pub(crate) fn resolve(&mut self, keys: &[SeriesKey]) -> Result<Vec<SeriesId>> {
        let mut ids = Vec::with_capacity(keys.len());
        for key in keys {
            ids.push(self.resolve_in_memory(key)?);
        }
        if !self.unpersisted_series.is_empty() || !self.unpersisted_targets.is_empty() {
            let tx = self
                .conn
                .unchecked_transaction()
                .context("begin creating series")?;
            self.persist_new(&tx)?;
            tx.commit().context("commit new series")?;
            self.unpersisted_series.clear();
            self.unpersisted_targets.clear();
        }
        Ok(ids)
    }

    fn resolve_in_memory(&mut self, key: &SeriesKey) -> Result<SeriesId> {
        if let Some(&id) = self.series_ids.get(key) {
            return Ok(SeriesId(id));
        }
        if self.series.len() >= self.options.max_series {
            return Err(Error::TooManySeries {
                limit: self.options.max_series,
            });
        }
        let target_id = self.target_in_memory(&key.target)?;
        let id = self.next_series_id;
        self.next_series_id += 1;
        self.series.insert(
            id,
            Box::new(SeriesState {
                key: key.clone(),
                target_id,
                first_ms: None,
                last_ms: None,
                n_points: 0,
                open: None,
                seen_epoch: 0,
                retention_grace: true,
            }),
        );
        self.series_ids.insert(key.clone(), id);
        self.unpersisted_series.push(id);
        Ok(SeriesId(id))
    }

    pub(crate) fn target_in_memory(&mut self, name: &str) -> Result<i64> {
        if let Some(&id) = self.target_ids.get(name) {
            return Ok(id);
        }
        if self.targets.len() >= self.options.max_targets {
            return Err(Error::TooManyTargets {
                limit: self.options.max_targets,
            });
        }
        let id = self.next_target_id;
        self.next_target_id += 1;
        self.targets.insert(
            id,
            TargetState {
                name: name.to_owned(),
                kind: String::new(),
                first_seen: None,
                last_seen: None,
            },
        );
        self.target_ids.insert(name.to_owned(), id);
        self.unpersisted_targets.push(id);
        Ok(id)
    }

    /// Inserts targets and series created in memory since the last transaction.
    pub(crate) fn persist_new(&self, conn: &Connection) -> Result<()> {
        let mut insert_target = conn
            .prepare_cached("INSERT INTO targets (id, name, kind) VALUES (?1, ?2, ?3)")
            .context("create a target")?;
        for id in &self.unpersisted_targets {
            if let Some(target) = self.targets.get(id) {
                insert_target
                    .execute(params![id, target.name, target.kind])
                    .context("create a target")?;
            }
        }
        let mut insert_series = conn
            .prepare_cached(
                "INSERT INTO series (id, target_id, resource, attribution) VALUES (?1, ?2, ?3, ?4)",
            )
            .context("create a series")?;
        for id in &self.unpersisted_series {
            if let Some(series) = self.series.get(id) {
                insert_series
                    .execute(params![
                        id,
                        series.target_id,
                        series.key.resource_text(),
                        series.key.attribution_text()
                    ])
                    .context("create a series")?;
            }
        }
        Ok(())
    }

    /// Sets the kind of a target, creating it if needed.
    pub(crate) fn set_target(&mut self, name: &str, kind: TargetKind) -> Result<()> {
        let kind = kind.as_str();
        let id = self.target_in_memory(name)?;
        let is_new = self.unpersisted_targets.contains(&id);
        if !is_new && self.targets[&id].kind == kind {
            return Ok(());
        }
        let tx = self
            .conn
            .unchecked_transaction()
            .context("begin updating a target")?;
        self.persist_new(&tx)?;
        tx.execute(
            "UPDATE targets SET kind = ?2 WHERE id = ?1",
            params![id, kind],
        )
        .context("update a target")?;
        tx.commit().context("commit a target")?;
        self.unpersisted_series.clear();
        self.unpersisted_targets.clear();
        if let Some(target) = self.targets.get_mut(&id) {
            target.kind = kind.to_owned();
        }
        Ok(())
    }

    /// Writes one sampling interval: all `points` at `ts_ms`, in one transaction. When
    /// `ts_ms` falls past the open block, that block is sealed first (compressed, rolled up,
    /// compacted) in its own transaction.
    ///
    /// Timestamps must increase from call to call. Once this returns `Ok`, the interval
    /// survives `kill -9` (and, with [`crate::Durability::Full`], power loss).
    pub(crate) fn append(
        &mut self,
        ts_ms: i64,
        points: &[(SeriesId, f64)],
    ) -> Result<AppendReport> {
        // ±2^53 ms is ±285,000 years; the bound keeps block arithmetic far from overflow.
        if ts_ms.unsigned_abs() > 1 << 53 {
            return Err(Error::InvalidArgument(format!(
                "timestamp {ts_ms} ms is out of range"
            )));
        }
        let min_ms = self.min_next_ms();
        if ts_ms < min_ms {
            return Err(Error::OutOfOrder {
                got_ms: ts_ms,
                min_ms,
            });
        }
        let mut report = AppendReport::default();
        let block_start = align_down(ts_ms, self.options.raw_block_ms);
        if self
            .open
            .as_ref()
            .is_some_and(|open| open.start_ms != block_start)
        {
            self.seal()?;
            report.sealed = true;
        }
        if let Some(open) = &self.open {
            if open.interval_ts.len() >= self.options.max_intervals_per_block {
                return Err(Error::TooManyIntervals {
                    limit: self.options.max_intervals_per_block,
                    block_start_ms: open.start_ms,
                });
            }
        }

        self.epoch += 1;
        let epoch = self.epoch;
        let mut row = std::mem::take(&mut self.row_scratch);
        let mut accepted = std::mem::take(&mut self.accepted_scratch);
        row.clear();
        accepted.clear();
        let mut writer = IntervalRowWriter::default();
        let mut duplicate = None;
        for &(id, value) in points {
            let Some(series) = self.series.get_mut(&id.0) else {
                report.unknown.push(id);
                continue;
            };
            if series.seen_epoch == epoch {
                duplicate = Some(id);
                break;
            }
            series.seen_epoch = epoch;
            let previous = series.open.as_ref().map_or(0.0, |open| open.last_value);
            let (token_start, token_end) = writer.push(&mut row, id.0, previous, value);
            accepted.push((id.0, value, token_start, token_end));
        }
        writer.finish(&mut row);
        let written = match duplicate {
            Some(id) => Err(Error::DuplicatePoint(id)),
            None => self.write_interval(ts_ms, &row),
        };
        if written.is_ok() {
            self.unpersisted_series.clear();
            self.unpersisted_targets.clear();
            let index = self.push_interval(ts_ms);
            for &(id, value, start, end) in &accepted {
                if let Some(series) = self.series.get_mut(&id) {
                    let token = if start == end {
                        &UNCHANGED_TOKEN[..]
                    } else {
                        &row[start as usize..end as usize]
                    };
                    push_point(series, index, token, value);
                }
            }
            self.last_append_ms = Some(ts_ms);
            report.written = accepted.len();
        }
        self.row_scratch = row;
        self.accepted_scratch = accepted;
        written.map(|()| report)
    }

    fn write_interval(&self, ts_ms: i64, row: &[u8]) -> Result<()> {
        let tx = self
            .conn
            .unchecked_transaction()
            .context("begin writing an interval")?;
        self.persist_new(&tx)?;
        tx.prepare_cached("INSERT INTO pending (ts_ms, data) VALUES (?1, ?2)")
            .context("write an interval")?
            .execute(params![ts_ms, row])
            .context("write an interval")?;
        tx.commit().context("commit an interval")
    }

    /// Like [`Store::append`], by key: missing series are created in the same transaction.
    /// Points whose series cannot be created (caps reached) are skipped and counted in
    /// [`AppendReport::refused`]; the rest of the interval is written.
    pub(crate) fn append_keyed(
        &mut self,
        ts_ms: i64,
        points: &[(SeriesKey, f64)],
    ) -> Result<AppendReport> {
        let mut by_id = Vec::with_capacity(points.len());
        let mut refused = 0;
        for (key, value) in points {
            match self.resolve_in_memory(key) {
                Ok(id) => by_id.push((id, *value)),
                Err(Error::TooManySeries { .. } | Error::TooManyTargets { .. }) => refused += 1,
                Err(e) => return Err(e),
            }
        }
        let mut report = self.append(ts_ms, &by_id)?;
        report.refused = refused;
        Ok(report)
    }

    fn min_next_ms(&self) -> i64 {
        let after_last = self
            .last_append_ms
            .map_or(i64::MIN, |last| last.saturating_add(1));
        after_last.max(self.sealed_until.unwrap_or(i64::MIN))
    }

    fn push_interval(&mut self, ts_ms: i64) -> u32 {
        let raw_block_ms = self.options.raw_block_ms;
        let open = self.open.get_or_insert_with(|| OpenBlock {
            start_ms: align_down(ts_ms, raw_block_ms),
            interval_ts: Vec::new(),
        });
        open.interval_ts.push(ts_ms);
        (open.interval_ts.len() - 1) as u32
    }

    /// Seals the open block: encodes each target's raw block and its rollups, then in one
    /// transaction stores them, updates series and targets, empties `pending`, and merges
    /// rollup blocks of finished spans.
    pub(crate) fn seal(&mut self) -> Result<()> {
        let Some(open) = self.open.as_ref() else {
            return Ok(());
        };
        let start_ms = open.start_ms;
        let end_ms = start_ms + self.options.raw_block_ms;
        let grid = &open.interval_ts;
        let sealed = encode_open_block(
            &self.series,
            &self.options,
            &mut self.block_ids,
            start_ms,
            grid,
        )?;
        let interval_data = block::encode_interval_list(start_ms, grid);
        let n_intervals = grid.len() as i64;
        self.write_sealed(start_ms, end_ms, n_intervals, &interval_data, &sealed)?;
        self.apply_sealed(sealed, end_ms);
        Ok(())
    }

    /// Writes a sealed block in one transaction: new series and targets, the emptied
    /// `pending` rows, the interval list, the blocks, the series' and targets' spans, and
    /// the merge of rollup blocks of finished spans.
    fn write_sealed(
        &mut self,
        start_ms: i64,
        end_ms: i64,
        n_intervals: i64,
        interval_data: &[u8],
        sealed: &Sealed,
    ) -> Result<()> {
        let tx = self
            .conn
            .unchecked_transaction()
            .context("begin sealing a block")?;
        self.persist_new(&tx)?;
        // Emptied first, so the pages it frees hold this seal's blocks instead of
        // growing the file.
        tx.execute("DELETE FROM pending WHERE ts_ms < ?1", [end_ms])
            .context("empty the open block")?;
        tx.execute(
            "INSERT INTO intervals (start_ms, end_ms, n, data) VALUES (?1, ?2, ?3, ?4)",
            params![start_ms, end_ms, n_intervals, interval_data],
        )
        .context("seal a block's intervals")?;
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO blocks (id, target_id, step_ms, start_ms, end_ms, data)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .context("seal a block")?;
            for (id, target_id, step_ms, data) in &sealed.blocks {
                insert
                    .execute(params![id, target_id, step_ms, start_ms, end_ms, data])
                    .context("seal a block")?;
            }
            let mut update = tx
                .prepare_cached(
                    "UPDATE series SET first_ms = coalesce(first_ms, ?2), last_ms = ?3,
                     n_points = n_points + ?4 WHERE id = ?1",
                )
                .context("update series")?;
            for &(id, first, last, n) in &sealed.series_updates {
                update
                    .execute(params![id, first, last, n as i64])
                    .context("update series")?;
            }
            let mut update = tx
                .prepare_cached(
                    "UPDATE targets SET first_seen = coalesce(first_seen, ?2), last_seen = ?3
                     WHERE id = ?1",
                )
                .context("update targets")?;
            for &(id, first, last) in &sealed.target_updates {
                update
                    .execute(params![id, first, last])
                    .context("update targets")?;
            }
        }
        compact::merge_rollups(&tx, &self.options, &mut self.block_ids, end_ms)?;
        tx.commit().context("commit a sealed block")
    }

    /// After a sealed block is committed: the in-memory series and targets take their new
    /// spans, nothing is open or unpersisted, and the store is sealed until `end_ms`.
    fn apply_sealed(&mut self, sealed: Sealed, end_ms: i64) {
        self.unpersisted_series.clear();
        self.unpersisted_targets.clear();
        for (id, first, last, n) in sealed.series_updates {
            if let Some(series) = self.series.get_mut(&id) {
                series.first_ms = Some(series.first_ms.map_or(first, |known| known.min(first)));
                series.last_ms = Some(last);
                series.n_points += n;
            }
        }
        for series in self.series.values_mut() {
            series.open = None;
        }
        for (id, first, last) in sealed.target_updates {
            if let Some(target) = self.targets.get_mut(&id) {
                target.first_seen = Some(target.first_seen.map_or(first, |known| known.min(first)));
                target.last_seen = Some(last);
            }
        }
        self.open = None;
        self.sealed_until = Some(end_ms);
    }
}

/// What sealing the open block writes.
#[derive(Default)]
struct Sealed {
    /// `(rowid, target, step, payload)`: each target's raw block, then its rollups.
    blocks: Vec<(i64, i64, i64, Vec<u8>)>,
    /// `(series, first ms, last ms, points)` of each series with points in the block.
    series_updates: Vec<(i64, i64, i64, u64)>,
    /// `(target, first ms, last ms)` of each target with a raw block.
    target_updates: Vec<(i64, i64, i64)>,
}

/// Encodes the open block (starting at `start_ms`, with intervals at `grid`) target by
/// target: a raw block and one block per rollup level, with rowids from `block_ids`.
fn encode_open_block(
    series: &IdMap<Box<SeriesState>>,
    options: &Options,
    block_ids: &mut BlockIds,
    start_ms: i64,
    grid: &[i64],
) -> Result<Sealed> {
    let mut by_target: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for (&id, series) in series {
        if series.open.is_some() {
            by_target.entry(series.target_id).or_default().push(id);
        }
    }
    let mut sealed = Sealed::default();
    let mut payload = Vec::new();
    for (&target_id, ids) in &mut by_target {
        ids.sort_unstable();
        let encoded = encode_target(
            series,
            options,
            start_ms,
            grid,
            ids,
            &mut payload,
            &mut sealed.series_updates,
        )?;
        let Some(EncodedTarget {
            raw,
            rollups,
            first: target_first,
            last: target_last,
        }) = encoded
        else {
            continue;
        };
        sealed
            .target_updates
            .push((target_id, target_first, target_last));
        sealed
            .blocks
            .push((block_ids.raw(), target_id, 0, raw.finish()));
        for (level, writer) in options.rollups.iter().zip(rollups) {
            let id = block_ids.hourly_rollup();
            sealed
                .blocks
                .push((id, target_id, level.step_ms, writer.finish()));
        }
    }
    Ok(sealed)
}

/// One target's part of a sealed block, before its blocks get rowids.
struct EncodedTarget {
    raw: BlockWriter,
    /// One per rollup level, in the order of `Options::rollups`.
    rollups: Vec<BlockWriter>,
    /// First and last point time over the target's series.
    first: i64,
    last: i64,
}

/// Encodes one target's series (`ids`, ascending) in the open block: its raw block writer,
/// one writer per rollup level, and the first and last point times; each series with
/// points adds its span to `series_updates`. `None` when no series had a point.
fn encode_target(
    series: &IdMap<Box<SeriesState>>,
    options: &Options,
    start_ms: i64,
    grid: &[i64],
    ids: &[i64],
    payload: &mut Vec<u8>,
    series_updates: &mut Vec<(i64, i64, i64, u64)>,
) -> Result<Option<EncodedTarget>> {
    let mut raw = BlockWriter::new(grid.len() as u32);
    let mut rollups: Vec<BlockWriter> = options
        .rollups
        .iter()
        .map(|level| BlockWriter::new((options.raw_block_ms / level.step_ms) as u32))
        .collect();
    let (mut target_first, mut target_last) = (i64::MAX, i64::MIN);
    for &id in ids {
        let Some(open_series) = series[&id].open.as_ref() else {
            continue;
        };
        let values = open_series.values()?;
        payload.clear();
        codec::encode_best(&values, payload);
        raw.push(id, &open_series.runs, payload);

        let times: Vec<i64> = codec::run_indices(&open_series.runs)
            .map(|index| grid[index as usize])
            .collect();
        let (Some(&first), Some(&last)) = (times.first(), times.last()) else {
            continue;
        };
        target_first = target_first.min(first);
        target_last = target_last.max(last);
        series_updates.push((id, first, last, values.len() as u64));
        for (level, writer) in options.rollups.iter().zip(&mut rollups) {
            let buckets = block::fold_buckets(
                times
                    .iter()
                    .zip(&values)
                    .map(|(&ts, &value)| Bucket::of_point(ts, value)),
                level.step_ms,
            );
            let mut runs = Runs::new();
            for bucket in &buckets {
                let index = (bucket.start_ms - start_ms) / level.step_ms;
                codec::push_run(&mut runs, index as u32);
            }
            payload.clear();
            block::encode_rollup_payload(&buckets, payload);
            writer.push(id, &runs, payload);
        }
    }
    if raw.is_empty() {
        return Ok(None);
    }
    Ok(Some(EncodedTarget {
        raw,
        rollups,
        first: target_first,
        last: target_last,
    }))
}

/// The token of a value equal to the series' previous one (see `codec::put_token`).
const UNCHANGED_TOKEN: [u8; 1] = [0];

/// Encodes one interval's points as a `pending` row. Most series keep their value from one
/// interval to the next and callers pass them in a stable order (so ids ascend by one), so
/// such points are collapsed into runs:
///
/// ```text
/// row   := entry*
/// entry := (run << 1):varint                         the next `run` ids, all unchanged
///        | (zigzag(id - last id) << 1 | 1):varint token   one point, value as a token
/// ```
#[derive(Default)]
struct IntervalRowWriter {
    last_id: i64,
    run: u64,
}

impl IntervalRowWriter {
    /// Adds a point; returns the token's byte range in `row`, empty for a point in a run.
    fn push(&mut self, row: &mut Vec<u8>, id: i64, previous: f64, value: f64) -> (u32, u32) {
        let next_in_run = self.last_id.wrapping_add(1) == id;
        if next_in_run && value.to_bits() == previous.to_bits() {
            self.run += 1;
            self.last_id = id;
            return (0, 0);
        }
        self.finish(row);
        put_uvarint(row, (zigzag(id.wrapping_sub(self.last_id)) << 1) | 1);
        self.last_id = id;
        let token_start = row.len() as u32;
        put_token(row, previous, value);
        (token_start, row.len() as u32)
    }

    /// Flushes a pending run.
    fn finish(&mut self, row: &mut Vec<u8>) {
        if self.run > 0 {
            put_uvarint(row, self.run << 1);
            self.run = 0;
        }
    }
}

fn push_point(series: &mut SeriesState, index: u32, token: &[u8], value: f64) {
    series
        .open
        .get_or_insert_with(|| OpenSeries {
            tokens: Vec::new(),
            last_value: 0.0,
            runs: Runs::with_capacity(1),
            n: 0,
        })
        .push(index, token, value);
}

/// Takes the writer lock: `flock` on `<path>.lock`. flock locks belong to the open file and
/// vanish with the process, including on `kill -9`, so a crash never leaves the store locked.
fn lock_writer(path: &Path) -> Result<File> {
    let mut lock_path = path.as_os_str().to_owned();
    lock_path.push(".lock");
    let lock_path = PathBuf::from(lock_path);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|source| Error::Lock {
            path: lock_path.clone(),
            source,
        })?;
    // SAFETY: flock only reads the descriptor, which `file` keeps open for the call.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        let source = std::io::Error::last_os_error();
        if source.raw_os_error() == Some(libc::EWOULDBLOCK) {
            return Err(Error::Locked {
                path: path.to_path_buf(),
                lock: lock_path,
            });
        }
        return Err(Error::Lock {
            path: lock_path,
            source,
        });
    }
    Ok(file)
}
