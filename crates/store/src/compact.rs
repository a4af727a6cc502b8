//! Compaction and physical layout of blocks.
//!
//! Rollups are written per raw block (one hour) and merged in tiers: hours into six hours,
//! six hours into a day, days into the level's span (a week for hourly buckets). Each
//! merge happens once its tier span is complete, so no block is ever rewritten while it
//! grows, and the per-series headers of small blocks are paid only until the next tier.
//!
//! Block rowids are drawn from one range per *kind* (raw, hourly rollup, each level and
//! tier), so rows that die together sit together in the b-tree: a page never mixes a raw
//! block kept 48 hours with rollups merged away after six, and pages are freed whole
//! instead of being left half empty.

use std::collections::{BTreeMap, HashSet};

use rusqlite::{params, Connection, OptionalExtension};

use crate::block::align_down;
use crate::block::{BlockReader, BlockWriter, Bucket};
use crate::codec::{self, Runs};
use crate::error::{Context, Error, Result};
use crate::options::{Options, RollupLevel};

const HOUR_MS: i64 = 3_600_000;

/// Input bytes merged per seal. Every target reaches a merge point at the same seal (six
/// hours pass, a day ends); spreading that work over a few seals keeps each one short. The
/// steady state merges about twice the rollup bytes written per day, a fraction of this per
/// hour.
const MERGE_BYTES_PER_SEAL: i64 = 1 << 20;

/// Rowid ranges: kind << KIND_SHIFT. 2^40 ids per kind outlast any host.
const KIND_SHIFT: u32 = 40;
const KIND_RAW: i64 = 1;
const KIND_HOURLY_ROLLUP: i64 = 2;
const MAX_TIERS: usize = 4;

fn merged_kind(level_index: usize, tier_index: usize) -> i64 {
    3 + (level_index * MAX_TIERS + tier_index.min(MAX_TIERS - 1)) as i64
}

/// The next rowid of each kind of block.
pub(crate) struct BlockIds {
    next: BTreeMap<i64, i64>,
}

impl BlockIds {
    pub(crate) fn load(conn: &Connection, options: &Options) -> Result<BlockIds> {
        let n_kinds = merged_kind(options.rollups.len(), 0);
        let mut next = BTreeMap::new();
        let mut stmt = conn
            .prepare("SELECT max(id) FROM blocks WHERE id >= ?1 AND id < ?2")
            .context("read block ids")?;
        for kind in KIND_RAW..n_kinds {
            let base = kind << KIND_SHIFT;
            let max: Option<i64> = stmt
                .query_row(params![base, base + (1 << KIND_SHIFT)], |row| row.get(0))
                .context("read block ids")?;
            next.insert(kind, max.map_or(base, |max| max + 1));
        }
        Ok(BlockIds { next })
    }

    fn allocate(&mut self, kind: i64) -> i64 {
        let next = self.next.entry(kind).or_insert(kind << KIND_SHIFT);
        let id = *next;
        *next += 1;
        id
    }

    pub(crate) fn raw(&mut self) -> i64 {
        self.allocate(KIND_RAW)
    }

    pub(crate) fn hourly_rollup(&mut self) -> i64 {
        self.allocate(KIND_HOURLY_ROLLUP)
    }
}

/// Merge tiers of a level, ascending: six raw blocks, a day, the level's span; only those
/// that fit between the raw block and the span and divide the span.
fn tiers(options: &Options, level: &RollupLevel) -> Vec<i64> {
    let mut tiers: Vec<i64> = [6 * options.raw_block_ms, 24 * HOUR_MS]
        .into_iter()
        .filter(|&tier| {
            tier > options.raw_block_ms && tier < level.block_ms && level.block_ms % tier == 0
        })
        .collect();
    tiers.dedup();
    tiers.push(level.block_ms);
    tiers
}

struct Candidate {
    id: i64,
    start_ms: i64,
    end_ms: i64,
    bytes: i64,
}

struct Group {
    span_start: i64,
    step_ms: i64,
    kind: i64,
    target_id: i64,
    blocks: Vec<Candidate>,
}

/// Merges groups of rollup blocks whose tier span ended by `sealed_until`, oldest first,
/// until [`MERGE_BYTES_PER_SEAL`] input bytes are used (at least one group); the rest wait
/// for the next seal. Returns the number of groups merged.
pub(crate) fn merge_rollups(
    conn: &Connection,
    options: &Options,
    ids: &mut BlockIds,
    sealed_until: i64,
) -> Result<usize> {
    let mut ready: Vec<Group> = Vec::new();
    for (level_index, level) in options.rollups.iter().enumerate() {
        for (tier_index, tier) in tiers(options, level).into_iter().enumerate() {
            let mut groups: BTreeMap<(i64, i64), Vec<Candidate>> = BTreeMap::new();
            let mut stmt = conn
                .prepare_cached(
                    "SELECT id, target_id, start_ms, end_ms, length(data) FROM blocks
                     WHERE step_ms = ?1 AND end_ms - start_ms < ?2 AND end_ms <= ?3",
                )
                .context("find rollups to merge")?;
            let rows = stmt
                .query_map(params![level.step_ms, tier, sealed_until], |row| {
                    Ok((
                        row.get::<_, i64>(1)?,
                        Candidate {
                            id: row.get(0)?,
                            start_ms: row.get(2)?,
                            end_ms: row.get(3)?,
                            bytes: row.get(4)?,
                        },
                    ))
                })
                .context("find rollups to merge")?;
            for row in rows {
                let (target_id, candidate) = row.context("find rollups to merge")?;
                let span_start = align_down(candidate.start_ms, tier);
                if span_start + tier <= sealed_until {
                    groups
                        .entry((target_id, span_start))
                        .or_default()
                        .push(candidate);
                }
            }
            ready.extend(
                groups
                    .into_iter()
                    .filter(|(_, blocks)| blocks.len() >= 2)
                    .map(|((target_id, span_start), blocks)| Group {
                        span_start,
                        step_ms: level.step_ms,
                        kind: merged_kind(level_index, tier_index),
                        target_id,
                        blocks,
                    }),
            );
        }
    }
    ready.sort_by_key(|g| (g.span_start, g.step_ms, g.target_id));
    let mut budget = MERGE_BYTES_PER_SEAL;
    let mut consumed: HashSet<i64> = HashSet::new();
    let mut merged = 0;
    for group in ready {
        if budget <= 0 {
            break;
        }
        // A day that just ended also completes its last six hours; the older (wider) span
        // sorts first and takes the blocks, the narrower group is then moot.
        if group.blocks.iter().any(|c| consumed.contains(&c.id)) {
            continue;
        }
        budget -= group.blocks.iter().map(|c| c.bytes).sum::<i64>();
        consumed.extend(group.blocks.iter().map(|c| c.id));
        merge_group(conn, ids.allocate(group.kind), &group)?;
        merged += 1;
    }
    Ok(merged)
}

fn merge_group(conn: &Connection, new_id: i64, group: &Group) -> Result<()> {
    let step_ms = group.step_ms;
    let start_ms = group.blocks.iter().map(|c| c.start_ms).min().unwrap_or(0);
    let end_ms = group.blocks.iter().map(|c| c.end_ms).max().unwrap_or(0);
    let mut by_series: BTreeMap<i64, Vec<Bucket>> = BTreeMap::new();
    {
        let mut select = conn
            .prepare_cached("SELECT data FROM blocks WHERE id = ?1")
            .context("read rollups to merge")?;
        let mut ordered: Vec<&Candidate> = group.blocks.iter().collect();
        ordered.sort_by_key(|c| c.start_ms);
        for candidate in ordered {
            let data: Vec<u8> = select
                .query_row([candidate.id], |row| row.get(0))
                .optional()
                .context("read rollups to merge")?
                .ok_or_else(|| {
                    Error::corrupt(format!("rollup block {}", candidate.id), "vanished")
                })?;
            let grid_len = ((candidate.end_ms - candidate.start_ms) / step_ms) as u32;
            let what = || format!("rollup block {}", candidate.id);
            let mut reader =
                BlockReader::new(&data, grid_len).map_err(|e| Error::corrupt(what(), e))?;
            while let Some(entry) = reader.next_entry().map_err(|e| Error::corrupt(what(), e))? {
                let buckets = entry
                    .buckets(candidate.start_ms, step_ms)
                    .map_err(|e| Error::corrupt(what(), e))?;
                by_series.entry(entry.id).or_default().extend(buckets);
            }
        }
    }
    let mut writer = BlockWriter::new(((end_ms - start_ms) / step_ms) as u32);
    let mut payload = Vec::new();
    for (id, buckets) in by_series {
        // Blocks of one span never overlap, but folding keeps a merge correct even if a
        // bucket were split across two of them.
        let buckets = crate::block::fold_buckets(buckets, step_ms);
        let mut runs = Runs::new();
        for bucket in &buckets {
            codec::push_run(&mut runs, ((bucket.start_ms - start_ms) / step_ms) as u32);
        }
        payload.clear();
        crate::block::encode_rollup_payload(&buckets, &mut payload);
        writer.push(id, &runs, &payload);
    }
    let mut delete = conn
        .prepare_cached("DELETE FROM blocks WHERE id = ?1")
        .context("replace merged rollups")?;
    for candidate in &group.blocks {
        delete
            .execute([candidate.id])
            .context("replace merged rollups")?;
    }
    conn.prepare_cached(
        "INSERT INTO blocks (id, target_id, step_ms, start_ms, end_ms, data)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .context("write merged rollups")?
    .execute(params![
        new_id,
        group.target_id,
        step_ms,
        start_ms,
        end_ms,
        writer.finish()
    ])
    .context("write merged rollups")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_levels_merge_by_six_hours_then_days_then_span() {
        let options = Options::default();
        assert_eq!(
            tiers(&options, &options.rollups[0]),
            vec![6 * HOUR_MS, 24 * HOUR_MS]
        );
        assert_eq!(
            tiers(&options, &options.rollups[1]),
            vec![6 * HOUR_MS, 24 * HOUR_MS, 7 * 24 * HOUR_MS]
        );
    }

    #[test]
    fn kinds_do_not_collide() {
        let options = Options::default();
        let mut kinds = vec![KIND_RAW, KIND_HOURLY_ROLLUP];
        for level in 0..options.rollups.len() {
            for tier in 0..MAX_TIERS {
                kinds.push(merged_kind(level, tier));
            }
        }
        let n = kinds.len();
        kinds.sort_unstable();
        kinds.dedup();
        assert_eq!(kinds.len(), n);
    }
}
