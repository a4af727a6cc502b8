//! Public data types: series keys and ids, and the rows that queries return.

pub use crate::block::Bucket;

/// Identifies a series: what (`resource`), of whom (`target`), which part (`attribution`).
/// The store keeps its text encoding (`leakwatch-model` is the only place that spells it).
pub use leakwatch_model::{SeriesKey, TargetKind};

/// A handle to a series, from [`crate::Store::resolve`]. Ids are never reused, so a handle
/// kept past the series' expiry is reported as unknown, never confused with another series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesId(pub(crate) i64);

impl SeriesId {
    /// The id as stored in the database.
    pub fn get(self) -> i64 {
        self.0
    }
}

/// A target: what processes are grouped under (a systemd unit, a container, a rule).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetInfo {
    pub name: String,
    /// `None` until [`crate::Store::set_target`] (or written by a version that knew kinds
    /// this one does not).
    pub kind: Option<TargetKind>,
    /// Time of the first sample of any of its series, if any.
    pub first_seen_ms: Option<i64>,
    /// Time of the latest sample of any of its series, if any.
    pub last_seen_ms: Option<i64>,
}

/// What the store holds about one series.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeriesInfo {
    pub id: SeriesId,
    pub key: SeriesKey,
    /// Time of the first sample ever appended (it may since have been rolled up or expired).
    pub first_ms: Option<i64>,
    /// Time of the latest sample.
    pub last_ms: Option<i64>,
    /// Number of samples ever appended.
    pub n_points: u64,
}

/// All points of one series in a query range.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesData {
    pub key: SeriesKey,
    /// `(ms since the epoch, value)`, time-ordered. Where raw samples have expired, each
    /// rollup bucket contributes `(bucket start, last)`.
    pub points: Vec<(i64, f64)>,
}

/// A process of a target was replaced by another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restart {
    pub target: String,
    pub ts_ms: i64,
    pub old_pid: Option<u32>,
    /// Start time of the old process as the caller measures it (e.g. clock ticks after boot).
    pub old_start_time: Option<u64>,
    pub new_pid: Option<u32>,
    pub new_start_time: Option<u64>,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub oom_killed: Option<bool>,
    /// Last lines of the old process' stderr; capped to [`crate::STDERR_TAIL_MAX_BYTES`] on
    /// write (keeping the end), and dropped for all but the newest restarts of a target
    /// ([`crate::Options::restarts_with_stderr`]).
    pub stderr_tail: Option<String>,
}

/// The outcome of one [`crate::Store::append`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppendReport {
    /// Points written.
    pub written: usize,
    /// Handles the store does not know (expired by retention): their points were skipped,
    /// the rest of the interval was written. Resolve their keys again.
    pub unknown: Vec<SeriesId>,
    /// Points of [`crate::Store::append_keyed`] skipped because their series could not be
    /// created ([`crate::Options::max_series`] or `max_targets` reached).
    pub refused: usize,
    /// True when this call first sealed the previous block (and rolled it up).
    pub sealed: bool,
}

/// What one [`crate::Store::apply_retention`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionReport {
    pub blocks_deleted: usize,
    pub intervals_deleted: usize,
    pub series_deleted: usize,
    pub targets_deleted: usize,
    pub restarts_deleted: usize,
    /// Pages returned to the file system by incremental vacuum.
    pub pages_vacuumed: i64,
}

/// Blocks stored at one resolution ([`crate::Store::level_stats`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LevelStats {
    /// 0 for raw samples, else the rollup step.
    pub step_ms: i64,
    pub blocks: u64,
    /// Bytes of block payload (excluding SQLite's own overhead).
    pub payload_bytes: u64,
}

/// Size and shape of the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stats {
    /// Size of the database file.
    pub file_bytes: u64,
    /// Size of the write-ahead log next to it.
    pub wal_bytes: u64,
    pub page_size: u64,
    pub page_count: u64,
    /// Pages inside the file that hold nothing (reused before the file grows).
    pub free_pages: u64,
    pub targets: usize,
    pub series: usize,
    /// Intervals of the open block, persisted in `pending`.
    pub open_intervals: usize,
    /// Series with samples in the open block.
    pub open_series: usize,
    /// Bytes of in-memory open-block state.
    pub open_bytes: usize,
}
