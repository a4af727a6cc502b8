//! Everything around the samples: target and series listings, restarts, the key/value meta
//! table, size statistics and the integrity check.

use std::collections::BTreeMap;

use rusqlite::{params, OptionalExtension};

use crate::block::{self, BlockReader};
use crate::error::{Context, Error, Result};
use crate::model::{
    LevelStats, Restart, SeriesId, SeriesInfo, SeriesKey, Stats, TargetInfo, TargetKind,
};
use crate::store::{OpenSeries, Store};

/// Stderr tails longer than this are cut to their last bytes.
pub const STDERR_TAIL_MAX_BYTES: usize = 4096;

impl Store {
    /// First and last time of `open` in the open block.
    fn open_span(&self, open: &OpenSeries) -> Option<(i64, i64)> {
        let block = self.open.as_ref()?;
        let first = open.runs.first()?.0;
        let last = open.runs.last().map(|&(start, len)| start + len - 1)?;
        Some((
            block.interval_ts[first as usize],
            block.interval_ts[last as usize],
        ))
    }

    /// All targets, ordered by name.
    pub fn targets(&self) -> Vec<TargetInfo> {
        let mut out: Vec<TargetInfo> = self
            .targets
            .values()
            .map(|target| TargetInfo {
                name: target.name.clone(),
                kind: TargetKind::parse(&target.kind),
                first_seen_ms: target.first_seen,
                last_seen_ms: target.last_seen,
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        // Extend with the open block, which is not in the sealed first/last yet.
        for series in self.series.values() {
            let Some((first, last)) = series.open.as_ref().and_then(|o| self.open_span(o)) else {
                continue;
            };
            let name = &self.targets[&series.target_id].name;
            if let Ok(index) = out.binary_search_by(|t| t.name.as_str().cmp(name)) {
                let target = &mut out[index];
                target.first_seen_ms = Some(target.first_seen_ms.map_or(first, |f| f.min(first)));
                target.last_seen_ms = Some(target.last_seen_ms.map_or(last, |l| l.max(last)));
            }
        }
        out
    }

    /// Series of one target (or all), ordered by key.
    pub fn series(&self, target: Option<&str>) -> Vec<SeriesInfo> {
        let target_id = match target {
            Some(name) => match self.target_ids.get(name) {
                Some(&id) => Some(id),
                None => return Vec::new(),
            },
            None => None,
        };
        let mut out: Vec<SeriesInfo> = self
            .series
            .iter()
            .filter(|(_, series)| target_id.is_none_or(|id| id == series.target_id))
            .map(|(&id, series)| {
                let mut info = SeriesInfo {
                    id: SeriesId(id),
                    key: series.key.clone(),
                    first_ms: series.first_ms,
                    last_ms: series.last_ms,
                    n_points: series.n_points,
                };
                if let Some(open) = &series.open {
                    if let Some((first, last)) = self.open_span(open) {
                        info.first_ms = Some(info.first_ms.map_or(first, |f| f.min(first)));
                        info.last_ms = Some(last);
                    }
                    info.n_points += crate::codec::runs_len(&open.runs) as u64;
                }
                info
            })
            .collect();
        out.sort_by(|a, b| a.key.cmp(&b.key));
        out
    }

    /// Records a restart, then trims the target's restarts to
    /// [`crate::Options::restarts_per_target`] and its stderr tails to the newest
    /// [`crate::Options::restarts_with_stderr`], so a crash loop stays bounded.
    pub(crate) fn record_restart(&mut self, restart: &Restart) -> Result<()> {
        let target_id = self.target_in_memory(&restart.target)?;
        let stderr_tail = restart.stderr_tail.as_deref().map(cap_tail);
        let to_i64 = |value: Option<u64>| value.map(|v| i64::try_from(v).unwrap_or(i64::MAX));
        let tx = self
            .conn
            .unchecked_transaction()
            .context("begin recording a restart")?;
        self.persist_new(&tx)?;
        tx.execute(
            "INSERT INTO restarts (target_id, ts_ms, old_pid, old_start_time, new_pid,
             new_start_time, exit_code, signal, oom_killed, stderr_tail)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                target_id,
                restart.ts_ms,
                restart.old_pid,
                to_i64(restart.old_start_time),
                restart.new_pid,
                to_i64(restart.new_start_time),
                restart.exit_code,
                restart.signal,
                restart.oom_killed,
                stderr_tail,
            ],
        )
        .context("record a restart")?;
        tx.execute(
            "DELETE FROM restarts WHERE target_id = ?1 AND id NOT IN
             (SELECT id FROM restarts WHERE target_id = ?1 ORDER BY ts_ms DESC, id DESC LIMIT ?2)",
            params![target_id, self.options.restarts_per_target as i64],
        )
        .context("trim restarts")?;
        tx.execute(
            "UPDATE restarts SET stderr_tail = NULL WHERE target_id = ?1 AND stderr_tail IS NOT NULL
             AND id NOT IN (SELECT id FROM restarts WHERE target_id = ?1
                            ORDER BY ts_ms DESC, id DESC LIMIT ?2)",
            params![target_id, self.options.restarts_with_stderr as i64],
        )
        .context("trim stderr tails")?;
        tx.commit().context("commit a restart")?;
        self.unpersisted_series.clear();
        self.unpersisted_targets.clear();
        Ok(())
    }

    /// Restarts of `target` with time in `[from_ms, to_ms)`, oldest first.
    pub fn restarts(&self, target: &str, from_ms: i64, to_ms: i64) -> Result<Vec<Restart>> {
        let Some(&target_id) = self.target_ids.get(target) else {
            return Ok(Vec::new());
        };
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT ts_ms, old_pid, old_start_time, new_pid, new_start_time, exit_code, signal,
                 oom_killed, stderr_tail FROM restarts
                 WHERE target_id = ?1 AND ts_ms >= ?2 AND ts_ms < ?3 ORDER BY ts_ms, id",
            )
            .context("read restarts")?;
        let rows = stmt
            .query_map(params![target_id, from_ms, to_ms], |row| {
                restart_from(row, 0, target.to_owned())
            })
            .context("read restarts")?;
        rows.collect::<rusqlite::Result<_>>()
            .context("read restarts")
    }

    /// Restarts of every target in the catalog with time in `[from_ms, to_ms)`, by target,
    /// oldest first: one read for all of them (the detection pass needs each live target's).
    pub fn restarts_between(
        &self,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<BTreeMap<String, Vec<Restart>>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT target_id, ts_ms, old_pid, old_start_time, new_pid, new_start_time,
                 exit_code, signal, oom_killed, stderr_tail FROM restarts
                 WHERE ts_ms >= ?1 AND ts_ms < ?2 ORDER BY target_id, ts_ms, id",
            )
            .context("read restarts")?;
        let mut rows = stmt
            .query(params![from_ms, to_ms])
            .context("read restarts")?;
        let mut out: BTreeMap<String, Vec<Restart>> = BTreeMap::new();
        while let Some(row) = rows.next().context("read restarts")? {
            let target_id: i64 = row.get(0).context("read restarts")?;
            let Some(target) = self.targets.get(&target_id) else {
                continue;
            };
            let restart = restart_from(row, 1, target.name.clone()).context("read restarts")?;
            out.entry(target.name.clone()).or_default().push(restart);
        }
        Ok(out)
    }

    /// Sets a key in the generic key/value table (e.g. agent version, host id).
    pub(crate) fn set_meta(&mut self, key: &str, value: &str) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![key, value],
            )
            .context("write meta")?;
        Ok(())
    }

    /// Reads a key of the key/value table.
    pub fn meta(&self, key: &str) -> Result<Option<String>> {
        self.conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |row| {
                row.get(0)
            })
            .optional()
            .context("read meta")
    }

    /// Sizes and counts, cheap enough for the agent's own metrics (no block is read).
    pub fn stats(&self) -> Result<Stats> {
        let file_size = |suffix: &str| {
            let mut path = self.path.as_os_str().to_owned();
            path.push(suffix);
            std::fs::metadata(path).map_or(0, |m| m.len())
        };
        let pragma = |name: &str| -> Result<u64> {
            self.conn
                .pragma_query_value(None, name, |row| row.get::<_, i64>(0))
                .map(|v| v as u64)
                .context("read page counts")
        };
        let open_series: Vec<&OpenSeries> = self
            .series
            .values()
            .filter_map(|s| s.open.as_ref())
            .collect();
        let open_intervals = self.open.as_ref().map_or(0, |o| o.interval_ts.len());
        Ok(Stats {
            file_bytes: file_size(""),
            wal_bytes: file_size("-wal"),
            page_size: pragma("page_size")?,
            page_count: pragma("page_count")?,
            free_pages: pragma("freelist_count")?,
            targets: self.targets.len(),
            series: self.series.len(),
            open_intervals,
            open_series: open_series.len(),
            open_bytes: open_series.iter().map(|o| o.memory_bytes()).sum::<usize>()
                + open_intervals * 8,
        })
    }

    /// Blocks and payload bytes per resolution. Reads every block, so it costs a scan of the
    /// file: for diagnostics and benchmarks, not for a periodic metric.
    pub fn level_stats(&self) -> Result<Vec<LevelStats>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT step_ms, count(*), sum(length(data)) FROM blocks GROUP BY step_ms",
            )
            .context("count blocks")?;
        let rows = stmt
            .query_map([], |row| {
                Ok(LevelStats {
                    step_ms: row.get(0)?,
                    blocks: row.get::<_, i64>(1)? as u64,
                    payload_bytes: row.get::<_, i64>(2)? as u64,
                })
            })
            .context("count blocks")?;
        rows.collect::<rusqlite::Result<_>>()
            .context("count blocks")
    }

    /// Payload bytes per series and resolution, summed over all blocks: where the bytes go.
    /// Reads every block; for diagnostics and benchmarks.
    pub fn payload_by_series(&self) -> Result<Vec<(i64, SeriesKey, u64)>> {
        let mut totals: BTreeMap<(i64, i64), u64> = BTreeMap::new();
        let mut stmt = self
            .conn
            .prepare("SELECT id, step_ms, start_ms, end_ms, data FROM blocks")
            .context("read blocks")?;
        let mut rows = stmt.query([]).context("read blocks")?;
        while let Some(row) = rows.next().context("read blocks")? {
            let id: i64 = row.get(0).context("read blocks")?;
            let step_ms: i64 = row.get(1).context("read blocks")?;
            let data = row
                .get_ref(4)
                .context("read blocks")?
                .as_blob()
                .map_err(|e| Error::corrupt("block", e))?;
            // Raw blocks hold at most one entry per grid cell, so the largest grid accepted
            // is enough to walk the directory without reading the interval list.
            let mut reader = BlockReader::new(data, u32::MAX)
                .map_err(|e| Error::corrupt(format!("block {id}"), e))?;
            while let Some(entry) = reader
                .next_entry()
                .map_err(|e| Error::corrupt(format!("block {id}"), e))?
            {
                *totals.entry((step_ms, entry.id)).or_default() += entry.payload.len() as u64;
            }
        }
        Ok(totals
            .into_iter()
            .filter_map(|((step_ms, id), bytes)| {
                let series = self.series.get(&id)?;
                Some((step_ms, series.key.clone(), bytes))
            })
            .collect())
    }

    /// Runs SQLite's `integrity_check` and decodes every block and interval list. Returns the
    /// number of blocks checked.
    pub fn check_integrity(&self) -> Result<usize> {
        let mut problems = Vec::new();
        self.conn
            .pragma_query(None, "integrity_check", |row| {
                let line: String = row.get(0)?;
                if line != "ok" {
                    problems.push(line);
                }
                Ok(())
            })
            .context("run integrity_check")?;
        if !problems.is_empty() {
            return Err(Error::corrupt("database file", problems.join("; ")));
        }
        let mut stmt = self
            .conn
            .prepare("SELECT id, step_ms, start_ms, end_ms, data FROM blocks")
            .context("read blocks")?;
        let mut rows = stmt.query([]).context("read blocks")?;
        let mut n_blocks = 0;
        while let Some(row) = rows.next().context("read blocks")? {
            let (id, step_ms, start_ms, end_ms): (i64, i64, i64, i64) = (
                row.get(0).context("read blocks")?,
                row.get(1).context("read blocks")?,
                row.get(2).context("read blocks")?,
                row.get(3).context("read blocks")?,
            );
            let data: Vec<u8> = row.get(4).context("read blocks")?;
            let what = || format!("block {id}");
            let grid_len = if step_ms == 0 {
                let (n, list): (i64, Vec<u8>) = self
                    .conn
                    .query_row(
                        "SELECT n, data FROM intervals WHERE start_ms = ?1",
                        [start_ms],
                        |row| Ok((row.get(0)?, row.get(1)?)),
                    )
                    .optional()
                    .context("read an interval list")?
                    .ok_or_else(|| Error::corrupt(what(), "raw block without interval list"))?;
                block::decode_interval_list(start_ms, n as usize, &list)
                    .map_err(|e| Error::corrupt(what(), e))?;
                n as u32
            } else {
                ((end_ms - start_ms) / step_ms) as u32
            };
            let mut reader =
                BlockReader::new(&data, grid_len).map_err(|e| Error::corrupt(what(), e))?;
            while let Some(entry) = reader.next_entry().map_err(|e| Error::corrupt(what(), e))? {
                if step_ms == 0 {
                    entry.raw_values().map_err(|e| Error::corrupt(what(), e))?;
                } else {
                    entry
                        .buckets(start_ms, step_ms)
                        .map_err(|e| Error::corrupt(what(), e))?;
                }
            }
            n_blocks += 1;
        }
        Ok(n_blocks)
    }
}

/// Keeps the last [`STDERR_TAIL_MAX_BYTES`] of `text`, cut at a character boundary.
fn cap_tail(text: &str) -> &str {
    if text.len() <= STDERR_TAIL_MAX_BYTES {
        return text;
    }
    let mut start = text.len() - STDERR_TAIL_MAX_BYTES;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

/// A restart from the columns `ts_ms, old_pid, old_start_time, new_pid, new_start_time,
/// exit_code, signal, oom_killed, stderr_tail` of `row`, starting at column `first`.
fn restart_from(row: &rusqlite::Row, first: usize, target: String) -> rusqlite::Result<Restart> {
    let to_u64 = |value: Option<i64>| value.map(|v| u64::try_from(v).unwrap_or(0));
    Ok(Restart {
        target,
        ts_ms: row.get(first)?,
        old_pid: row.get(first + 1)?,
        old_start_time: to_u64(row.get(first + 2)?),
        new_pid: row.get(first + 3)?,
        new_start_time: to_u64(row.get(first + 4)?),
        exit_code: row.get(first + 5)?,
        signal: row.get(first + 6)?,
        oom_killed: row.get(first + 7)?,
        stderr_tail: row.get(first + 8)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_end_on_a_char_boundary() {
        let text = format!(
            "{}é{}",
            "a".repeat(10),
            "b".repeat(STDERR_TAIL_MAX_BYTES - 1)
        );
        let tail = cap_tail(&text);
        assert!(tail.len() <= STDERR_TAIL_MAX_BYTES);
        assert!(tail.ends_with('b'));
        assert_eq!(cap_tail("short"), "short");
    }
}
