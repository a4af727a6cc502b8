//! Tunables of the store: durability, block span, rollup levels and retention, and the caps
//! that keep memory and disk bounded.

use crate::error::{Error, Result};

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 60 * MINUTE_MS;
const DAY_MS: i64 = 24 * HOUR_MS;

/// How hard each commit pushes data to stable storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// `synchronous=FULL`: the WAL is fsynced at every commit, so a power cut or kernel
    /// panic also loses at most the interval being written. One fsync per interval (every
    /// 10 s) is cheap, which is why this is the default.
    Full,
    /// `synchronous=NORMAL`: no fsync per commit. Still safe against `kill -9` and never
    /// corrupts, but a power cut can lose the commits since the last checkpoint.
    Normal,
}

/// A rollup resolution: min/max/last/count per `step_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RollupLevel {
    /// Bucket width. Must divide [`Options::raw_block_ms`].
    pub step_ms: i64,
    /// Rollups are written per raw block and merged into one block per `block_ms` once that
    /// span is complete, so the per-block overhead is paid once per span. A multiple of
    /// `raw_block_ms`.
    pub block_ms: i64,
    /// A block is deleted once its end is older than this.
    pub retention_ms: i64,
}

/// Options for [`crate::Store::open_with`]. `Options::default()` is what the agent uses.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub durability: Durability,
    /// SQLite page size, applied only when the file is created.
    pub page_size: u32,
    /// Span of a raw block (all series of a target at full resolution); the open block is
    /// sealed when an interval falls past it.
    pub raw_block_ms: i64,
    /// Raw blocks are deleted once their end is older than this.
    pub raw_retention_ms: i64,
    /// Rollup levels, finest first.
    pub rollups: Vec<RollupLevel>,
    /// Cap on series (each costs memory while it exists); resolving more fails.
    pub max_series: usize,
    /// Cap on targets.
    pub max_targets: usize,
    /// Cap on intervals in one raw block, bounding the open block's memory when a caller
    /// appends far more often than every 10 s.
    pub max_intervals_per_block: usize,
    /// Cap on the database file; writes past it fail with [`Error::Full`]. `None` = only the
    /// disk limits it.
    pub max_file_bytes: Option<u64>,
    /// Restarts kept per target (oldest dropped first).
    pub restarts_per_target: usize,
    /// Restarts per target that keep their stderr tail (the newest ones).
    pub restarts_with_stderr: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            durability: Durability::Full,
            page_size: 4096,
            raw_block_ms: HOUR_MS,
            raw_retention_ms: 2 * DAY_MS,
            // See docs/store.md for the measurements behind these: raw for two days, minutes
            // for a week, hours for five weeks keep a month of a 500-process host well
            // under 100 MB; ten-minute buckets for five weeks would not.
            rollups: vec![
                RollupLevel {
                    step_ms: MINUTE_MS,
                    block_ms: DAY_MS,
                    retention_ms: 7 * DAY_MS,
                },
                RollupLevel {
                    step_ms: HOUR_MS,
                    block_ms: 7 * DAY_MS,
                    retention_ms: 35 * DAY_MS,
                },
            ],
            max_series: 100_000,
            max_targets: 10_000,
            max_intervals_per_block: 4096,
            max_file_bytes: None,
            restarts_per_target: 1000,
            restarts_with_stderr: 20,
        }
    }
}

impl Options {
    pub(crate) fn validate(&self) -> Result<()> {
        let fail = |message: String| Err(Error::InvalidOptions(message));
        if !self.page_size.is_power_of_two() || !(512..=65536).contains(&self.page_size) {
            return fail(format!(
                "page_size {} is not a power of two in 512..=65536",
                self.page_size
            ));
        }
        if self.raw_block_ms <= 0 || self.raw_retention_ms <= 0 {
            return fail("raw_block_ms and raw_retention_ms must be positive".into());
        }
        let mut previous_step = 0;
        for level in &self.rollups {
            if level.step_ms <= previous_step {
                return fail(format!(
                    "rollup steps must increase (got {} ms)",
                    level.step_ms
                ));
            }
            if self.raw_block_ms % level.step_ms != 0 {
                return fail(format!(
                    "rollup step {} ms does not divide raw_block_ms {}",
                    level.step_ms, self.raw_block_ms
                ));
            }
            if level.block_ms < self.raw_block_ms || level.block_ms % self.raw_block_ms != 0 {
                return fail(format!(
                    "rollup block_ms {} is not a multiple of raw_block_ms {}",
                    level.block_ms, self.raw_block_ms
                ));
            }
            if level.retention_ms <= 0 {
                return fail("rollup retention_ms must be positive".into());
            }
            previous_step = level.step_ms;
        }
        if self.max_intervals_per_block == 0 || self.max_series == 0 || self.max_targets == 0 {
            return fail("caps must be at least 1".into());
        }
        Ok(())
    }

    /// The longest any data is kept: the retention of the coarsest level.
    pub(crate) fn max_retention_ms(&self) -> i64 {
        self.rollups
            .iter()
            .map(|level| level.retention_ms)
            .chain([self.raw_retention_ms])
            .max()
            .unwrap_or(self.raw_retention_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        Options::default().validate().unwrap();
        assert_eq!(Options::default().max_retention_ms(), 35 * DAY_MS);
    }

    #[test]
    fn misaligned_levels_are_rejected() {
        let mut options = Options::default();
        options.rollups[0].step_ms = 7 * MINUTE_MS;
        let message = options.validate().unwrap_err().to_string();
        assert!(message.contains("does not divide"), "{message}");

        let mut options = Options::default();
        options.rollups[1].block_ms = 90 * MINUTE_MS;
        assert!(options.validate().is_err());

        let mut options = Options::default();
        options.rollups.swap(0, 1);
        assert!(options.validate().is_err());
    }
}
