//! Compaction: rollups are written per raw block (one hour) and merged into one block per
//! level span (a day of 1-minute buckets, a week of 10-minute buckets), so the per-block
//! overhead (ids, presence runs, codec headers, the row itself) is paid once per span.

use std::collections::BTreeMap;

use rusqlite::{params, Connection};

use crate::block::{BlockReader, BlockWriter, Bucket};
use crate::codec::{self, Runs};
use crate::error::{Context, Error, Result};
use crate::options::Options;
use crate::store::align_down;

/// A span still being filled is merged early once it has this many blocks, so the number of
/// small blocks per target and level stays bounded: each costs its own per-series headers,
/// and rewriting the growing block every few hours is cheap.
const MERGE_EARLY_AT: usize = 6;

/// Merges per seal. Blocks of all targets reach a merge point at the same seal (a day ends,
/// six hours pass); spreading that work over a few seals keeps every seal short. The steady
/// state needs about (targets x levels / 6) merges an hour, far below this.
const MAX_MERGES_PER_SEAL: usize = 400;

struct Candidate {
    id: i64,
    start_ms: i64,
    end_ms: i64,
}

/// Merges rollup blocks once their span is complete (or has many blocks), oldest spans
/// first, at most [`MAX_MERGES_PER_SEAL`] groups per call; the rest wait for the next seal.
/// Returns how many groups were merged.
pub(crate) fn merge_rollups(conn: &Connection, options: &Options, sealed_until: i64) -> Result<usize> {
    let mut ready: Vec<(i64, i64, i64, Vec<Candidate>)> = Vec::new();
    for level in &options.rollups {
        let span = level.block_ms;
        let mut groups: BTreeMap<(i64, i64), Vec<Candidate>> = BTreeMap::new();
        {
            // Covered by the blocks_by_age index, so no payload is read.
            let mut stmt = conn
                .prepare_cached(
                    "SELECT id, target_id, start_ms, end_ms FROM blocks
                     WHERE step_ms = ?1 AND end_ms - start_ms < ?2",
                )
                .context("find rollups to merge")?;
            let rows = stmt
                .query_map(params![level.step_ms, span], |row| {
                    Ok((
                        row.get::<_, i64>(1)?,
                        Candidate {
                            id: row.get(0)?,
                            start_ms: row.get(2)?,
                            end_ms: row.get(3)?,
                        },
                    ))
                })
                .context("find rollups to merge")?;
            for row in rows {
                let (target_id, candidate) = row.context("find rollups to merge")?;
                let span_start = align_down(candidate.start_ms, span);
                groups
                    .entry((target_id, span_start))
                    .or_default()
                    .push(candidate);
            }
        }
        for ((target_id, span_start), group) in groups {
            let complete = span_start + span <= sealed_until;
            if group.len() >= 2 && (complete || group.len() >= MERGE_EARLY_AT) {
                ready.push((span_start, level.step_ms, target_id, group));
            }
        }
    }
    ready.sort_by_key(|&(span_start, step_ms, target_id, _)| (span_start, step_ms, target_id));
    ready.truncate(MAX_MERGES_PER_SEAL);
    let merged = ready.len();
    for (_, step_ms, target_id, group) in ready {
        merge_group(conn, target_id, step_ms, &group)?;
    }
    Ok(merged)
}

fn merge_group(conn: &Connection, target_id: i64, step_ms: i64, group: &[Candidate]) -> Result<()> {
    let start_ms = group.iter().map(|c| c.start_ms).min().unwrap_or(0);
    let end_ms = group.iter().map(|c| c.end_ms).max().unwrap_or(0);
    let mut by_series: BTreeMap<i64, Vec<Bucket>> = BTreeMap::new();
    {
        let mut select = conn
            .prepare_cached("SELECT data FROM blocks WHERE id = ?1")
            .context("read rollups to merge")?;
        let mut ordered: Vec<&Candidate> = group.iter().collect();
        ordered.sort_by_key(|c| c.start_ms);
        for candidate in ordered {
            let data: Vec<u8> = select
                .query_row([candidate.id], |row| row.get(0))
                .context("read rollups to merge")?;
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
    let mut writer = BlockWriter::new();
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
    for candidate in group {
        delete
            .execute([candidate.id])
            .context("replace merged rollups")?;
    }
    conn.prepare_cached(
        "INSERT INTO blocks (target_id, step_ms, start_ms, end_ms, data) VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .context("write merged rollups")?
    .execute(params![target_id, step_ms, start_ms, end_ms, writer.finish()])
    .context("write merged rollups")?;
    Ok(())
}
