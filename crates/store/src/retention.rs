//! Retention: deletes blocks past their level's age, then series and targets that have no
//! data left, so the history of a dead target expires on its own.

use std::collections::HashSet;

use rusqlite::{params, Transaction};

use crate::error::{Context, Result};
use crate::model::RetentionReport;
use crate::store::{IdMap, SeriesState, Store};

impl Store {
    /// Applies retention as of `now_ms` (the agent calls it about hourly). Raw blocks are
    /// always rolled up when they are sealed, so dropping them loses only resolution.
    pub(crate) fn apply_retention(&mut self, now_ms: i64) -> Result<RetentionReport> {
        // A block whose span has passed is sealed even if no interval came to push it out,
        // so its rollups exist before its raw data can age out.
        let stale = self
            .open
            .as_ref()
            .is_some_and(|open| open.start_ms + self.options.raw_block_ms <= now_ms);
        if stale {
            self.seal()?;
        }
        let mut report = RetentionReport::default();
        let tx = self
            .conn
            .unchecked_transaction()
            .context("begin retention")?;
        self.delete_aged(&tx, now_ms, &mut report)?;
        let oldest_block = oldest_blocks(&tx)?;
        let doomed_series = expired_series(&mut self.series, &oldest_block);
        let doomed: HashSet<i64> = doomed_series.iter().copied().collect();
        let doomed_targets = self.expired_targets(&tx, &doomed, &oldest_block)?;
        delete_expired(&tx, &doomed_series, &doomed_targets)?;
        tx.commit().context("commit retention")?;

        self.forget(&doomed_series, &doomed, &doomed_targets);
        report.series_deleted = doomed_series.len();
        report.targets_deleted = doomed_targets.len();
        if report.intervals_deleted > 0 {
            self.interval_cache.borrow_mut().clear();
        }
        report.pages_vacuumed = self.vacuum_if_sparse()?;
        Ok(report)
    }

    /// Deletes the blocks, interval lists and restarts older than their retention as of
    /// `now_ms`, counting them in `report`.
    fn delete_aged(
        &self,
        tx: &Transaction,
        now_ms: i64,
        report: &mut RetentionReport,
    ) -> Result<()> {
        let max_retention = self.options.max_retention_ms();
        let raw_cutoff = now_ms.saturating_sub(self.options.raw_retention_ms);
        let mut delete_blocks = tx
            .prepare_cached("DELETE FROM blocks WHERE step_ms = ?1 AND end_ms <= ?2")
            .context("delete old blocks")?;
        report.blocks_deleted += delete_blocks
            .execute(params![0, raw_cutoff])
            .context("delete old blocks")?;
        report.intervals_deleted = tx
            .execute("DELETE FROM intervals WHERE end_ms <= ?1", [raw_cutoff])
            .context("delete old interval lists")?;
        // Steps no longer configured (options changed) age out with the longest retention.
        let steps: Vec<i64> = {
            let mut stmt = tx
                .prepare_cached("SELECT DISTINCT step_ms FROM blocks WHERE step_ms > 0")
                .context("list rollup steps")?;
            let rows = stmt
                .query_map([], |row| row.get(0))
                .context("list rollup steps")?;
            rows.collect::<rusqlite::Result<_>>()
                .context("list rollup steps")?
        };
        for step in steps {
            let retention = self
                .options
                .rollups
                .iter()
                .find(|level| level.step_ms == step)
                .map_or(max_retention, |level| level.retention_ms);
            report.blocks_deleted += delete_blocks
                .execute(params![step, now_ms.saturating_sub(retention)])
                .context("delete old blocks")?;
        }
        drop(delete_blocks);
        report.restarts_deleted = tx
            .execute(
                "DELETE FROM restarts WHERE ts_ms < ?1",
                [now_ms.saturating_sub(max_retention)],
            )
            .context("delete old restarts")?;
        Ok(())
    }

    /// Targets with nothing left: no series outside `doomed`, no block, no restart.
    fn expired_targets(
        &self,
        tx: &Transaction,
        doomed: &HashSet<i64>,
        oldest_block: &IdMap<i64>,
    ) -> Result<Vec<i64>> {
        let targets_in_use: HashSet<i64> = self
            .series
            .iter()
            .filter(|(id, _)| !doomed.contains(id))
            .map(|(_, series)| series.target_id)
            .collect();
        let targets_with_restarts: HashSet<i64> = {
            let mut stmt = tx
                .prepare_cached("SELECT DISTINCT target_id FROM restarts")
                .context("list targets with restarts")?;
            let rows = stmt
                .query_map([], |row| row.get(0))
                .context("list targets with restarts")?;
            rows.collect::<rusqlite::Result<_>>()
                .context("list targets with restarts")?
        };
        Ok(self
            .targets
            .keys()
            .copied()
            .filter(|id| {
                !targets_in_use.contains(id)
                    && !oldest_block.contains_key(id)
                    && !targets_with_restarts.contains(id)
            })
            .collect())
    }

    /// Drops deleted series and targets from memory, after the deletion is committed.
    fn forget(&mut self, doomed_series: &[i64], doomed: &HashSet<i64>, doomed_targets: &[i64]) {
        for id in doomed_series {
            if let Some(series) = self.series.remove(id) {
                self.series_ids.remove(&series.key);
            }
        }
        for id in doomed_targets {
            if let Some(target) = self.targets.remove(id) {
                self.target_ids.remove(&target.name);
            }
        }
        self.unpersisted_series.retain(|id| !doomed.contains(id));
        self.unpersisted_targets
            .retain(|id| !doomed_targets.contains(id));
        // A map keeps its largest capacity: give back what a burst of churn left empty.
        shrink_if_sparse(&mut self.series);
        shrink_if_sparse(&mut self.series_ids);
        shrink_if_sparse(&mut self.targets);
        shrink_if_sparse(&mut self.target_ids);
    }

    /// Gives free pages back to the file system once they exceed a quarter of the file,
    /// keeping an eighth: the open block's `pending` rows are freed and reused every hour,
    /// and returning that space only to grow again would be wasted I/O.
    fn vacuum_if_sparse(&self) -> Result<i64> {
        let read = |name: &str| -> Result<i64> {
            self.conn
                .pragma_query_value(None, name, |row| row.get(0))
                .context("read page counts")
        };
        let page_count = read("page_count")?;
        let free = read("freelist_count")?;
        if free * 4 <= page_count {
            return Ok(0);
        }
        let release = free - page_count / 8;
        self.conn
            .pragma(None, "incremental_vacuum", release, |_| Ok(()))
            .context("vacuum free pages")?;
        Ok(release)
    }
}

/// The start of each target's oldest block.
fn oldest_blocks(tx: &Transaction) -> Result<IdMap<i64>> {
    let mut oldest_block: IdMap<i64> = IdMap::default();
    let mut stmt = tx
        .prepare_cached("SELECT target_id, min(start_ms) FROM blocks GROUP BY target_id")
        .context("find the oldest blocks")?;
    let rows = stmt
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .context("find the oldest blocks")?;
    for row in rows {
        let (target_id, start) = row.context("find the oldest blocks")?;
        oldest_block.insert(target_id, start);
    }
    Ok(oldest_block)
}

/// Series with no sample left in any block: whose last sample is older than their target's
/// oldest block. Series in the open block always have data. A series that never had a
/// sample goes at its second pass (see `SeriesState::retention_grace`, spent here).
fn expired_series(series: &mut IdMap<Box<SeriesState>>, oldest_block: &IdMap<i64>) -> Vec<i64> {
    let mut doomed_series: Vec<i64> = Vec::new();
    for (&id, series) in series {
        if series.open.is_some() {
            continue;
        }
        let expired = match series.last_ms {
            Some(last) => oldest_block
                .get(&series.target_id)
                .is_none_or(|&oldest| last < oldest),
            None => !std::mem::replace(&mut series.retention_grace, false),
        };
        if expired {
            doomed_series.push(id);
        }
    }
    doomed_series
}

/// Deletes the expired series and targets' rows.
fn delete_expired(tx: &Transaction, doomed_series: &[i64], doomed_targets: &[i64]) -> Result<()> {
    let mut delete = tx
        .prepare_cached("DELETE FROM series WHERE id = ?1")
        .context("delete expired series")?;
    for id in doomed_series {
        delete.execute([id]).context("delete expired series")?;
    }
    let mut delete = tx
        .prepare_cached("DELETE FROM targets WHERE id = ?1")
        .context("delete expired targets")?;
    for id in doomed_targets {
        delete.execute([id]).context("delete expired targets")?;
    }
    Ok(())
}

/// Shrinks `map` when fewer than a quarter of its slots (and at least 1,024) are in use.
fn shrink_if_sparse<K: Eq + std::hash::Hash, V, S: std::hash::BuildHasher>(
    map: &mut std::collections::HashMap<K, V, S>,
) {
    if map.capacity() > 1024 && map.capacity() > 4 * map.len() {
        map.shrink_to_fit();
    }
}
