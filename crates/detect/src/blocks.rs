//! Decimation: splitting a series into process lives at restarts, and each life into floor
//! blocks (per-block minima) so that trends are judged on the floor the resource returns
//! to, not on spikes or garbage-collection sawtooth.

use crate::model::Point;
use crate::stats::{median_of, quantile, robust_sigma};
use std::ops::Range;

/// One block of consecutive samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Block {
    /// Mean time of the block's samples.
    pub t: f64,
    /// Minimum value: the floor.
    pub floor: f64,
    /// Maximum value: how far the resource swings above the floor within a block.
    pub top: f64,
}

/// Median spacing of the last samples, in seconds; `None` for fewer than two samples.
pub(crate) fn sample_interval(points: &[Point]) -> Option<f64> {
    crate::stats::median_spacing([&points[points.len().saturating_sub(65)..]])
}

/// Cuts `points` into process lives at the given restart times.
///
/// A restart is reported when the collector sees a new PID, which can be a sample after
/// the value actually dropped; so each cut moves to the largest drop within
/// `snap` samples of the reported time, and the value falling to ~0 lands at the start of
/// the new life instead of at the end of the old one.
pub(crate) fn split_lives(
    points: &[Point],
    restart_times: &[f64],
    snap: usize,
) -> Vec<Range<usize>> {
    let n = points.len();
    let mut cuts: Vec<usize> = Vec::new();
    for &restart in restart_times {
        let index = points.partition_point(|p| p.t < restart);
        if index == 0 || index >= n {
            continue;
        }
        let low = index.saturating_sub(snap).max(1);
        let high = (index + snap).min(n - 1);
        let mut best = index;
        let mut best_drop = 0.0;
        for j in low..=high {
            let drop = points[j - 1].v - points[j].v;
            if drop > best_drop {
                best_drop = drop;
                best = j;
            }
        }
        if cuts.last().is_none_or(|&last| best > last) {
            cuts.push(best);
        }
    }
    let mut lives = Vec::with_capacity(cuts.len() + 1);
    let mut start = 0;
    for cut in cuts {
        lives.push(start..cut);
        start = cut;
    }
    lives.push(start..n);
    lives
}

/// Recurring sharp drops (garbage collection, periodic flushes) make the raw series a
/// sawtooth whose floor is only reached right after a drop. Returns the block length, in
/// samples, that makes almost every block contain a drop, or `None` when there is no
/// regular sawtooth fine enough to leave `min_blocks` blocks.
pub(crate) fn sawtooth_block_len(
    points: &[Point],
    drop_sigmas: f64,
    min_blocks: usize,
) -> Option<usize> {
    let n = points.len();
    if n < 20 {
        return None;
    }
    let diffs: Vec<f64> = points
        .windows(2)
        .map(|pair| pair[1].v - pair[0].v)
        .collect();
    // Integer counters often have a zero MAD; the mean absolute step keeps the threshold
    // from collapsing to zero there.
    let mean_step = diffs.iter().map(|d| d.abs()).sum::<f64>() / diffs.len() as f64;
    let sigma = robust_sigma(&diffs).max(0.5 * mean_step);
    let level = median_of(&points.iter().map(|p| p.v.abs()).collect::<Vec<_>>()).unwrap_or(0.0);
    // A drop must also be a visible fraction of the level: a thread count going from 201
    // to 200 is not a collection.
    let threshold = (drop_sigmas * sigma).max(0.02 * level);
    if threshold <= 0.0 {
        return None;
    }
    let drops: Vec<usize> = diffs
        .iter()
        .enumerate()
        .filter(|(_, d)| **d < -threshold)
        .map(|(i, _)| i)
        .collect();
    if drops.len() < 3 {
        return None;
    }
    let mut gaps: Vec<f64> = drops.windows(2).map(|w| (w[1] - w[0]) as f64).collect();
    let long_gap = quantile(&mut gaps, 0.9)?;
    let block = long_gap.ceil() as usize + 1;
    if block * 2 * min_blocks.max(1) > n {
        return None;
    }
    Some(block)
}

/// Floor blocks of `block_len` samples, aligned to the newest sample: the newest block
/// ends at the newest sample, and an incomplete block at the old end is dropped (its
/// minimum over fewer samples would sit higher than the others).
pub(crate) fn floor_blocks(points: &[Point], block_len: usize) -> Vec<Block> {
    let block_len = block_len.max(1);
    let n_blocks = points.len() / block_len;
    let skip = points.len() - n_blocks * block_len;
    points[skip..]
        .chunks_exact(block_len)
        .map(|chunk| {
            let mut floor = f64::INFINITY;
            let mut top = f64::NEG_INFINITY;
            let mut t_sum = 0.0;
            for point in chunk {
                floor = floor.min(point.v);
                top = top.max(point.v);
                t_sum += point.t;
            }
            Block {
                t: t_sum / chunk.len() as f64,
                floor,
                top,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(values: &[f64]) -> Vec<Point> {
        values
            .iter()
            .enumerate()
            .map(|(i, v)| Point::new(i as f64 * 10.0, *v))
            .collect()
    }

    #[test]
    fn lives_are_cut_at_the_drop_near_a_restart() {
        let points = series(&[5.0, 6.0, 7.0, 8.0, 0.0, 1.0, 2.0, 3.0]);
        // Reported one sample late (t=50 instead of 40): the cut still lands on the drop.
        let lives = split_lives(&points, &[50.0], 2);
        assert_eq!(lives, vec![0..4, 4..8]);
        // Restarts outside the samples are ignored.
        assert_eq!(split_lives(&points, &[-5.0, 999.0], 2), vec![0..8]);
    }

    #[test]
    fn blocks_keep_the_floor_and_align_to_the_newest_sample() {
        let points = series(&[9.0, 1.0, 5.0, 2.0, 8.0, 3.0, 7.0]);
        let blocks = floor_blocks(&points, 3);
        assert_eq!(blocks.len(), 2);
        assert_eq!(blocks[0].floor, 1.0); // samples 1..4
        assert_eq!(blocks[1].floor, 3.0); // samples 4..7
        assert_eq!(blocks[1].top, 8.0);
        assert_eq!(blocks[1].t, 50.0);
    }

    #[test]
    fn sawtooth_period_is_found_and_noise_is_not_a_sawtooth() {
        // Rises 10 per sample for 9 samples, then collects back: period 10.
        let saw: Vec<f64> = (0..600).map(|i| 1000.0 + 10.0 * (i % 10) as f64).collect();
        let block = sawtooth_block_len(&series(&saw), 6.0, 12).unwrap();
        assert!((10..=12).contains(&block), "block {block}");
        let flat_integer: Vec<f64> = (0..600)
            .map(|i| 200.0 + if i % 37 == 0 { 1.0 } else { 0.0 })
            .collect();
        assert_eq!(sawtooth_block_len(&series(&flat_integer), 6.0, 12), None);
    }
}
