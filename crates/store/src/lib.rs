//! Embedded history for leakwatch: per-target series in one SQLite file, compact enough to
//! keep a month of a 500-process host in well under 100 MB, and safe against `kill -9`.
//!
//! # Model
//!
//! The store does not know about `/proc`. A *target* is whatever processes are grouped under
//! (a systemd unit, a container, a rule); its history spans restarts. A *series* is one
//! number over time, named by a [`SeriesKey`] `(target, resource, attribution)`; an empty
//! attribution is the total. A series' limit is another series ([`SeriesKey::limit`]).
//! Restarts and a key/value `meta` table complete the picture.
//!
//! # Writing
//!
//! The agent calls [`Store::append`] once per sampling interval with every point of that
//! interval. The interval is committed as one small row of the `pending` table (about a
//! byte per point, unchanged values in runs), so a committed interval survives `kill -9`.
//! When an interval falls into the next hour, the open hour is *sealed*: each target's
//! samples become one compressed raw block, 1-minute and 1-hour rollups
//! (min/max/last/count) are computed from it, `pending` is emptied, and rollup blocks of
//! finished spans are merged, all in one transaction. [`Store::apply_retention`] deletes
//! data past its level's age and the series and targets left without data.
//!
//! # Reading
//!
//! [`Store::query`] and [`Store::query_target`] return raw samples where they are kept and
//! rollup values before that; [`Store::query_rollup`] returns min/max/last per step.
//!
//! # Bounded
//!
//! In memory: one entry per live series and target (capped by [`Options::max_series`] and
//! [`Options::max_targets`]), the open hour (cleared at every seal, capped by
//! [`Options::max_intervals_per_block`]), a 128-entry interval-list cache, and SQLite's 8 MiB
//! page cache. On disk: retention per level, restarts per target, and optionally
//! [`Options::max_file_bytes`].
//!
//! See `docs/store.md` for the schema, the encoding, and measured sizes.

mod block;
mod catalog;
pub mod codec;
mod compact;
mod error;
mod model;
mod options;
mod query;
mod retention;
mod schema;
mod store;
mod writer;

pub use catalog::STDERR_TAIL_MAX_BYTES;
pub use error::{Error, Result};
pub use model::{
    AppendReport, Bucket, LevelStats, Restart, RetentionReport, SeriesData, SeriesId, SeriesInfo,
    SeriesKey, Stats, TargetInfo, TargetKind,
};
pub use options::{Durability, Options, RollupLevel};
pub use store::Store;
pub use writer::StoreWriter;
