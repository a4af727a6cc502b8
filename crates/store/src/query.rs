//! Reading series back: raw samples where they are still kept, rollups for older ranges.
//!
//! For each target, a resolution is used only before the oldest block of every finer
//! resolution (the open block counts as raw). Finer levels are always written together with
//! coarser ones and kept for less time, so this picks the finest data available at each
//! moment without double-counting the overlap.

use std::collections::BTreeMap;
use std::sync::Arc;

use rusqlite::params;

use crate::block::{self, BlockReader, Bucket};
use crate::codec;
use crate::error::{Context, Error, Result};
use crate::model::{SeriesData, SeriesKey};
use crate::store::{IdMap, Store};

#[derive(Default)]
struct Collected {
    raw: Vec<(i64, f64)>,
    /// Rollup buckets by step, coarsest data is oldest.
    rollups: BTreeMap<i64, Vec<Bucket>>,
}

impl Collected {
    /// Oldest first: coarse rollups, finer rollups, raw samples.
    fn points(self) -> Vec<(i64, f64)> {
        let mut points: Vec<(i64, f64)> = self
            .rollups
            .into_values()
            .rev()
            .flatten()
            .map(|bucket| (bucket.start_ms, bucket.last))
            .chain(self.raw)
            .collect();
        // Already ordered by construction; the stable sort is a cheap guarantee.
        points.sort_by_key(|&(ts, _)| ts);
        points
    }

    fn buckets(self, step_ms: i64) -> Vec<Bucket> {
        let mut input: Vec<Bucket> = self
            .rollups
            .into_values()
            .rev()
            .flatten()
            .chain(
                self.raw
                    .into_iter()
                    .map(|(ts, value)| Bucket::of_point(ts, value)),
            )
            .collect();
        input.sort_by_key(|bucket| bucket.start_ms);
        block::fold_buckets(input, step_ms)
    }
}

impl Store {
    /// Points of one series with time in `[from_ms, to_ms)`: raw samples where they are kept;
    /// for older times, each rollup bucket as `(bucket start, last)`.
    pub fn query(&self, key: &SeriesKey, from_ms: i64, to_ms: i64) -> Result<Vec<(i64, f64)>> {
        let Some(&id) = self.series_ids.get(key) else {
            return Ok(Vec::new());
        };
        let mut collected = self.collect(self.series[&id].target_id, Some(id), from_ms, to_ms)?;
        Ok(collected
            .remove(&id)
            .map(Collected::points)
            .unwrap_or_default())
    }

    /// Min/max/last/count per `step_ms`-aligned bucket of one series over `[from_ms, to_ms)`,
    /// from the finest data available at each time. Empty buckets are omitted. Where only a
    /// coarser rollup than `step_ms` is left, its buckets come out at their own width.
    pub fn query_rollup(
        &self,
        key: &SeriesKey,
        from_ms: i64,
        to_ms: i64,
        step_ms: i64,
    ) -> Result<Vec<Bucket>> {
        if step_ms <= 0 {
            return Err(Error::InvalidArgument(format!(
                "query step must be positive, got {step_ms}"
            )));
        }
        let Some(&id) = self.series_ids.get(key) else {
            return Ok(Vec::new());
        };
        let mut collected = self.collect(self.series[&id].target_id, Some(id), from_ms, to_ms)?;
        Ok(collected
            .remove(&id)
            .map(|c| c.buckets(step_ms))
            .unwrap_or_default())
    }

    /// Every series of `target` over `[from_ms, to_ms)`, as [`Store::query`] returns them,
    /// reading each block once. Ordered by key; series without points in the range are left
    /// out.
    pub fn query_target(&self, target: &str, from_ms: i64, to_ms: i64) -> Result<Vec<SeriesData>> {
        let Some(&target_id) = self.target_ids.get(target) else {
            return Ok(Vec::new());
        };
        let collected = self.collect(target_id, None, from_ms, to_ms)?;
        let mut out: Vec<SeriesData> = collected
            .into_iter()
            .filter_map(|(id, collected)| {
                let points = collected.points();
                let series = self.series.get(&id)?;
                (!points.is_empty()).then(|| SeriesData {
                    key: series.key.clone(),
                    points,
                })
            })
            .collect();
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    fn collect(
        &self,
        target_id: i64,
        only: Option<i64>,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<IdMap<Collected>> {
        let wanted = |id: i64| only.is_none_or(|only| only == id);
        let mut out: IdMap<Collected> = IdMap::default();

        // The open block's series of this target.
        let open_series: Vec<(i64, &crate::store::OpenSeries)> = self
            .series
            .iter()
            .filter(|(&id, series)| series.target_id == target_id && wanted(id))
            .filter_map(|(&id, series)| series.open.as_ref().map(|open| (id, open)))
            .collect();

        let mut coverage: BTreeMap<i64, i64> = BTreeMap::new();
        {
            let mut stmt = self
                .conn
                .prepare_cached(
                    "SELECT step_ms, min(start_ms) FROM blocks WHERE target_id = ?1 GROUP BY step_ms",
                )
                .context("read block coverage")?;
            let rows = stmt
                .query_map([target_id], |row| Ok((row.get(0)?, row.get(1)?)))
                .context("read block coverage")?;
            for row in rows {
                let (step, start): (i64, i64) = row.context("read block coverage")?;
                coverage.insert(step, start);
            }
        }
        if let (Some(open), false) = (&self.open, open_series.is_empty()) {
            let raw = coverage.entry(0).or_insert(open.start_ms);
            *raw = (*raw).min(open.start_ms);
        }
        // cutoff[step]: rollups of `step` are used only before this time.
        let mut cutoffs: BTreeMap<i64, i64> = BTreeMap::new();
        let mut finer_start = i64::MAX;
        for (&step, &start) in &coverage {
            cutoffs.insert(step, finer_start);
            finer_start = finer_start.min(start);
        }

        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT step_ms, start_ms, end_ms, data FROM blocks
                 WHERE target_id = ?1 AND start_ms < ?3 AND end_ms > ?2
                 ORDER BY step_ms, start_ms",
            )
            .context("read blocks")?;
        let mut rows = stmt
            .query(params![target_id, from_ms, to_ms])
            .context("read blocks")?;
        while let Some(row) = rows.next().context("read blocks")? {
            let step_ms: i64 = row.get(0).context("read blocks")?;
            let start_ms: i64 = row.get(1).context("read blocks")?;
            let end_ms: i64 = row.get(2).context("read blocks")?;
            let data = row
                .get_ref(3)
                .context("read blocks")?
                .as_blob()
                .map_err(|e| Error::corrupt("block", e))?;
            let what = || format!("block of target {target_id} at {start_ms} step {step_ms}");
            if step_ms == 0 {
                let grid = self.interval_list(start_ms)?;
                let mut reader = BlockReader::new(data, grid.len() as u32)
                    .map_err(|e| Error::corrupt(what(), e))?;
                while let Some(entry) =
                    reader.next_entry().map_err(|e| Error::corrupt(what(), e))?
                {
                    if !wanted(entry.id) {
                        continue;
                    }
                    let values = entry.raw_values().map_err(|e| Error::corrupt(what(), e))?;
                    let raw = &mut out.entry(entry.id).or_default().raw;
                    for (index, value) in codec::run_indices(&entry.runs).zip(values) {
                        let ts = grid[index as usize];
                        if ts >= from_ms && ts < to_ms {
                            raw.push((ts, value));
                        }
                    }
                }
            } else {
                let cutoff = cutoffs.get(&step_ms).copied().unwrap_or(i64::MAX);
                if start_ms >= cutoff {
                    continue;
                }
                let grid_len = ((end_ms - start_ms) / step_ms) as u32;
                let mut reader =
                    BlockReader::new(data, grid_len).map_err(|e| Error::corrupt(what(), e))?;
                while let Some(entry) =
                    reader.next_entry().map_err(|e| Error::corrupt(what(), e))?
                {
                    if !wanted(entry.id) {
                        continue;
                    }
                    let buckets = entry
                        .buckets(start_ms, step_ms)
                        .map_err(|e| Error::corrupt(what(), e))?;
                    let kept = out
                        .entry(entry.id)
                        .or_default()
                        .rollups
                        .entry(step_ms)
                        .or_default();
                    kept.extend(buckets.into_iter().filter(|bucket| {
                        bucket.start_ms >= from_ms
                            && bucket.start_ms < to_ms
                            && bucket.start_ms < cutoff
                    }));
                }
            }
        }

        if let Some(open) = &self.open {
            for (id, open_series) in open_series {
                let values = open_series.values()?;
                let raw = &mut out.entry(id).or_default().raw;
                for (index, value) in codec::run_indices(&open_series.runs).zip(values) {
                    let ts = open.interval_ts[index as usize];
                    if ts >= from_ms && ts < to_ms {
                        raw.push((ts, value));
                    }
                }
            }
        }
        Ok(out)
    }

    fn interval_list(&self, start_ms: i64) -> Result<Arc<Vec<i64>>> {
        if let Some(list) = self.interval_cache.borrow().get(start_ms) {
            return Ok(list);
        }
        let (n, data): (i64, Vec<u8>) = self
            .conn
            .prepare_cached("SELECT n, data FROM intervals WHERE start_ms = ?1")
            .context("read an interval list")?
            .query_row([start_ms], |row| Ok((row.get(0)?, row.get(1)?)))
            .context("read an interval list")?;
        let list = Arc::new(
            block::decode_interval_list(start_ms, n as usize, &data)
                .map_err(|e| Error::corrupt(format!("interval list {start_ms}"), e))?,
        );
        self.interval_cache
            .borrow_mut()
            .insert(start_ms, Arc::clone(&list));
        Ok(list)
    }
}
