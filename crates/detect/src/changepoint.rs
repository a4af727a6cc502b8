//! Change-point segmentation of floor blocks into regimes, so that only the current regime
//! is judged: a level shift after a deploy, or a leak that began yesterday, starts a new
//! regime.
//!
//! The model is piecewise linear (each regime has its own level and slope), fitted by
//! binary segmentation: the split that most reduces the residual sum of squares is taken
//! first, as long as it reduces it by more than a BIC-like penalty, up to a fixed number
//! of change points. Taking the strongest breaks first matters for counts that wander like
//! a random walk (a leak driven by Poisson arrivals): there every extra split looks
//! slightly worthwhile, and the breaks that matter, such as where the growth began, must
//! not be drowned among them. With m blocks and k change points this costs O(k m), each
//! residual O(1) thanks to prefix sums.

use crate::blocks::Block;
use crate::stats::{median_of, robust_sigma};

/// Prefix sums that give the least-squares residual of any block range in O(1).
struct PrefixSums {
    t: Vec<f64>,
    tt: Vec<f64>,
    v: Vec<f64>,
    vv: Vec<f64>,
    tv: Vec<f64>,
}

impl PrefixSums {
    fn new(blocks: &[Block]) -> PrefixSums {
        // Centre both axes: unix times squared would swallow the residuals' precision.
        let t0 = blocks.first().map_or(0.0, |b| b.t);
        let span = blocks.last().map_or(1.0, |b| (b.t - t0).max(1.0));
        let v0 = median_of(&blocks.iter().map(|b| b.floor).collect::<Vec<_>>()).unwrap_or(0.0);
        let n = blocks.len();
        let mut sums = PrefixSums {
            t: vec![0.0; n + 1],
            tt: vec![0.0; n + 1],
            v: vec![0.0; n + 1],
            vv: vec![0.0; n + 1],
            tv: vec![0.0; n + 1],
        };
        for (i, block) in blocks.iter().enumerate() {
            let t = (block.t - t0) / span;
            let v = block.floor - v0;
            sums.t[i + 1] = sums.t[i] + t;
            sums.tt[i + 1] = sums.tt[i] + t * t;
            sums.v[i + 1] = sums.v[i] + v;
            sums.vv[i + 1] = sums.vv[i] + v * v;
            sums.tv[i + 1] = sums.tv[i] + t * v;
        }
        sums
    }

    /// Residual sum of squares of the least-squares line through blocks `a..b`.
    fn rss(&self, a: usize, b: usize) -> f64 {
        let k = (b - a) as f64;
        let st = self.t[b] - self.t[a];
        let sv = self.v[b] - self.v[a];
        let stt = self.tt[b] - self.tt[a] - st * st / k;
        let svv = self.vv[b] - self.vv[a] - sv * sv / k;
        let stv = self.tv[b] - self.tv[a] - st * sv / k;
        let rss = if stt > 1e-18 {
            svv - stv * stv / stt
        } else {
            svv
        };
        rss.max(0.0)
    }
}

/// Noise variance of the floors, from first differences so that trends and steps do not
/// inflate it.
fn noise_variance(blocks: &[Block]) -> f64 {
    let diffs: Vec<f64> = blocks.windows(2).map(|w| w[1].floor - w[0].floor).collect();
    if diffs.is_empty() {
        return 1.0;
    }
    let mean_step = diffs.iter().map(|d| d.abs()).sum::<f64>() / diffs.len() as f64;
    let level = median_of(&blocks.iter().map(|b| b.floor.abs()).collect::<Vec<_>>()).unwrap_or(0.0);
    // Exactly flat integer series have zero robust spread; fall back to a fraction of the
    // mean step, then to a tiny fraction of the level, so the penalty never vanishes.
    let sigma = (robust_sigma(&diffs) / std::f64::consts::SQRT_2)
        .max(0.25 * mean_step)
        .max(1e-6 * (1.0 + level));
    sigma * sigma
}

/// Start indices (into `blocks`) of the regimes found, sorted, always beginning with 0.
pub(crate) fn regime_starts(
    blocks: &[Block],
    penalty: f64,
    min_blocks: usize,
    max_changes: usize,
) -> Vec<usize> {
    let m = blocks.len();
    let min_blocks = min_blocks.max(2);
    let mut starts = vec![0];
    if m < 2 * min_blocks {
        return starts;
    }
    let sums = PrefixSums::new(blocks);
    let beta = penalty * noise_variance(blocks) * (m as f64).ln();
    let mut segments = vec![(0usize, m)];
    for _ in 0..max_changes {
        // (gain, segment index, split)
        let mut best: Option<(f64, usize, usize)> = None;
        for (index, &(a, b)) in segments.iter().enumerate() {
            if b - a < 2 * min_blocks {
                continue;
            }
            let whole = sums.rss(a, b);
            for split in a + min_blocks..=b - min_blocks {
                let gain = whole - sums.rss(a, split) - sums.rss(split, b);
                if best.is_none_or(|(best_gain, _, _)| gain > best_gain) {
                    best = Some((gain, index, split));
                }
            }
        }
        match best {
            Some((gain, index, split)) if gain > beta => {
                let (a, b) = segments[index];
                segments[index] = (a, split);
                segments.push((split, b));
                starts.push(split);
            }
            _ => break,
        }
    }
    starts.sort_unstable();
    starts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocks(values: &[f64]) -> Vec<Block> {
        values
            .iter()
            .enumerate()
            .map(|(i, v)| Block {
                t: 1.7e9 + i as f64 * 60.0,
                floor: *v,
                top: *v,
            })
            .collect()
    }

    fn wiggle(i: usize) -> f64 {
        // Deterministic small noise.
        [0.3, -0.2, 0.1, -0.4, 0.2, 0.0, -0.1, 0.35][i % 8]
    }

    #[test]
    fn a_level_shift_is_one_change_point() {
        let values: Vec<f64> = (0..100)
            .map(|i| if i < 60 { 100.0 } else { 140.0 } + wiggle(i))
            .collect();
        assert_eq!(regime_starts(&blocks(&values), 4.0, 6, 4), vec![0, 60]);
    }

    #[test]
    fn a_straight_trend_is_one_regime() {
        let values: Vec<f64> = (0..200)
            .map(|i| 100.0 + 0.5 * i as f64 + wiggle(i))
            .collect();
        assert_eq!(regime_starts(&blocks(&values), 4.0, 6, 4), vec![0]);
    }

    #[test]
    fn growth_starting_late_is_its_own_regime() {
        let values: Vec<f64> = (0..200)
            .map(|i| 100.0 + if i < 120 { 0.0 } else { (i - 120) as f64 } + wiggle(i))
            .collect();
        let starts = regime_starts(&blocks(&values), 4.0, 6, 4);
        assert_eq!(starts.len(), 2, "{starts:?}");
        assert!((115..=125).contains(&starts[1]), "{starts:?}");
    }
}
