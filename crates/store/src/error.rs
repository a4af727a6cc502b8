//! The store's error type: every SQLite failure is wrapped with what the store was doing.

use std::path::PathBuf;

use crate::model::SeriesId;

/// Everything that can go wrong in the store. None of these leave committed data damaged:
/// a failed call rolls its own transaction back and leaves the in-memory state as it was.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database file could not be opened or set up (missing directory, not a database,
    /// no permission).
    #[error("cannot open store {path} (while trying to {context}): {source}")]
    Open {
        path: PathBuf,
        context: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    /// Another process holds the writer lock of this store.
    #[error("store {path} is already open for writing by another process (lock {lock})")]
    Locked { path: PathBuf, lock: PathBuf },
    /// The lock file could not be created or locked.
    #[error("lock file {path}: {source}")]
    Lock {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The disk, or the configured size cap, is full. Data committed before this call is
    /// intact; the call's own data was not written.
    #[error("store is full while trying to {context}: {source}")]
    Full {
        context: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    /// Any other SQLite failure (read-only file, I/O error, corruption).
    #[error("store failed to {context}: {source}")]
    Sqlite {
        context: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    /// Timestamps must increase: the new interval is not after the last one written (or it
    /// falls in a block that is already sealed).
    #[error(
        "interval at {got_ms} ms is too old: the next interval must be at or after {min_ms} ms"
    )]
    OutOfOrder { got_ms: i64, min_ms: i64 },
    /// The same series appeared twice in one interval.
    #[error("series {0:?} appears twice in one interval")]
    DuplicatePoint(SeriesId),
    /// Creating another series would exceed [`crate::Options::max_series`].
    #[error("too many series (limit {limit}); new series are refused until retention frees some")]
    TooManySeries { limit: usize },
    /// Creating another target would exceed [`crate::Options::max_targets`].
    #[error(
        "too many targets (limit {limit}); new targets are refused until retention frees some"
    )]
    TooManyTargets { limit: usize },
    /// The open block already holds [`crate::Options::max_intervals_per_block`] intervals.
    #[error("more than {limit} intervals in the block starting at {block_start_ms} ms")]
    TooManyIntervals { limit: usize, block_start_ms: i64 },
    /// Stored bytes could not be decoded.
    #[error("corrupt {what}: {detail}")]
    Corrupt { what: String, detail: String },
    /// The file was written by an incompatible version of the store.
    #[error(
        "store schema version {found} is not supported (this build reads version {supported})"
    )]
    Schema { found: i64, supported: i64 },
    /// [`crate::Options`] are inconsistent.
    #[error("invalid store options: {0}")]
    InvalidOptions(String),
    /// An argument is outside what the store accepts (a timestamp beyond ±2^53 ms, a
    /// non-positive query step).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

/// The store's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// True when the failure is a full disk or the configured size cap.
    pub fn is_full(&self) -> bool {
        matches!(self, Error::Full { .. })
    }

    /// Names the file in errors raised while opening it.
    pub(crate) fn while_opening(self, path: &std::path::Path) -> Error {
        match self {
            Error::Sqlite { context, source } => Error::Open {
                path: path.to_path_buf(),
                context,
                source,
            },
            other => other,
        }
    }

    pub(crate) fn corrupt(what: impl Into<String>, detail: impl std::fmt::Display) -> Error {
        Error::Corrupt {
            what: what.into(),
            detail: detail.to_string(),
        }
    }
}

/// Attaches what the store was doing to a `rusqlite` error, and singles out "disk full".
pub(crate) trait Context<T> {
    fn context(self, context: &'static str) -> Result<T>;
}

impl<T> Context<T> for rusqlite::Result<T> {
    fn context(self, context: &'static str) -> Result<T> {
        self.map_err(|source| {
            if source.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull) {
                Error::Full { context, source }
            } else {
                Error::Sqlite { context, source }
            }
        })
    }
}
