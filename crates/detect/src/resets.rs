//! Process lives inferred from a series itself, for offline data that carries no restart
//! records (`leakwatch analyze --infer-restarts`).
//!
//! A life ends at a one-sample drop from the top quarter of its rise to within the bottom
//! quarter of it (back to about where the life started), once the life has at least
//! [`MIN_LIFE`] samples and its rise is material: more than [`MATERIAL`] times the typical
//! one-sample change within the life. Each decision uses only the samples up to the drop,
//! so inferring over a whole series gives the same restarts as inferring over every prefix.
//!
//! Not the default: a garbage collector's sawtooth or a batch job releasing its threads
//! drops exactly the same way, and read as restarts they turn into growth within every
//! "life" (docs/detection.md, "Lives inferred from resets").

use crate::model::{Restart, Series};
use crate::stats::{median_of, median_spacing};

/// Fewest samples of a life before a drop can end it.
pub const MIN_LIFE: usize = 16;
/// Samples at a life's start whose median is its starting level.
const START_SAMPLES: usize = 8;
/// The life's rise must exceed this many typical one-sample changes.
pub const MATERIAL: f64 = 8.0;
/// One-sample changes the typical change is measured on (the latest of the life).
const STEP_WINDOW: usize = 64;

/// The reason inferred restarts carry.
pub const INFERRED: &str = "inferred: reset to the life's starting level";

/// Restarts of `series`' target inferred from its resets, in time order.
pub fn infer_restarts(series: &Series) -> Vec<Restart> {
    let points = &series.points;
    let mut restarts = Vec::new();
    let mut start = 0;
    let mut high = f64::NEG_INFINITY;
    // The life's starting level, once it has [`START_SAMPLES`].
    let mut start_level: Option<f64> = None;
    let mut steps: Vec<f64> = Vec::with_capacity(STEP_WINDOW);
    for i in 1..points.len() {
        let previous = points[i - 1].v;
        high = high.max(previous);
        if i - start < MIN_LIFE {
            continue;
        }
        let level = match start_level {
            Some(level) => level,
            None => {
                let first: Vec<f64> = points[start..start + START_SAMPLES]
                    .iter()
                    .map(|p| p.v)
                    .collect();
                let Some(level) = median_of(&first) else {
                    continue;
                };
                start_level = Some(level);
                level
            }
        };
        let rise = high - level;
        let value = points[i].v;
        if !(rise > 0.0 && previous >= level + 0.75 * rise && value <= level + 0.25 * rise) {
            continue;
        }
        // The typical change within the life, over its latest steps before the drop.
        let from = (start + 1).max(i.saturating_sub(STEP_WINDOW));
        steps.clear();
        steps.extend((from..i).map(|j| (points[j].v - points[j - 1].v).abs()));
        let typical = median_of(&steps).unwrap_or(0.0);
        let mean = steps.iter().sum::<f64>() / steps.len().max(1) as f64;
        // Integer counts often have a median step of zero; their mean step keeps the bar
        // from collapsing to nothing.
        if rise <= MATERIAL * typical.max(mean) {
            continue;
        }
        restarts.push(Restart {
            target: series.key.target.clone(),
            t: points[i].t,
            old_pid: None,
            new_pid: None,
            reason: INFERRED.to_string(),
        });
        start = i;
        high = f64::NEG_INFINITY;
        start_level = None;
    }
    restarts
}

/// The restarts of every target inferred from all its series, in time order. A target's
/// series reset together: a restart within one sample spacing of the previous one
/// inferred for the same target is the same restart. Limit series are not read.
pub fn infer_target_restarts(series: &[&Series]) -> Vec<Restart> {
    let judged: Vec<&Series> = series.iter().copied().filter(|s| !s.key.is_limit).collect();
    let mut all: Vec<Restart> = judged.iter().flat_map(|s| infer_restarts(s)).collect();
    all.sort_by(|a, b| a.target.cmp(&b.target).then(a.t.total_cmp(&b.t)));
    // The typical sample spacing of each target (that of its first series).
    let mut spacing: std::collections::HashMap<&str, f64> = std::collections::HashMap::new();
    for s in &judged {
        spacing
            .entry(s.key.target.as_str())
            .or_insert_with(|| median_spacing([s.points.as_slice()]).unwrap_or(0.0));
    }
    let mut kept: Vec<Restart> = Vec::with_capacity(all.len());
    for restart in all {
        let interval = spacing.get(restart.target.as_str()).copied().unwrap_or(0.0);
        let same = kept
            .last()
            .is_some_and(|last| last.target == restart.target && restart.t - last.t <= interval);
        if !same {
            kept.push(restart);
        }
    }
    kept.sort_by(|a, b| a.t.total_cmp(&b.t));
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Point, SeriesKey};

    fn series(values: impl IntoIterator<Item = f64>) -> Series {
        let points = values
            .into_iter()
            .enumerate()
            .map(|(i, v)| Point::new(i as f64, v))
            .collect();
        Series::new(SeriesKey::from_text("svc", "gauge", "g"), points, None)
    }

    #[test]
    fn a_gauge_reset_by_each_crash_is_cut_at_each_reset() {
        // Lives of 40 samples growing 3 a sample from 20, with a wobble of 1.
        let s = series((0..200).map(|i| 20.0 + 3.0 * (i % 40) as f64 + (i % 2) as f64));
        let times: Vec<f64> = infer_restarts(&s).iter().map(|r| r.t).collect();
        assert_eq!(times, vec![40.0, 80.0, 120.0, 160.0]);
        // Every prefix gives the restarts up to its end: nothing is decided with later
        // samples.
        for end in 1..=s.points.len() {
            let prefix = Series::new(s.key.clone(), s.points[..end].to_vec(), None);
            let early: Vec<f64> = infer_restarts(&prefix).iter().map(|r| r.t).collect();
            let expected: Vec<f64> = times
                .iter()
                .copied()
                .filter(|t| *t <= s.points[end - 1].t)
                .collect();
            assert_eq!(early, expected, "prefix of {end}");
        }
    }

    #[test]
    fn noise_dips_and_partial_drops_are_not_resets() {
        // Noise of ±5 around 100 with a dip to 90: no rise worth the name.
        let noisy = series(
            (0..200).map(|i| 100.0 + [0.0, 5.0, -5.0, 3.0][i % 4] - 10.0 * f64::from(i == 150)),
        );
        assert!(infer_restarts(&noisy).is_empty());
        // A climb from 0 to 100 that falls back only to 60: not to its starting level.
        let partial = series((0..100).map(|i| {
            if i < 60 {
                i as f64 * 100.0 / 59.0
            } else {
                60.0
            }
        }));
        assert!(infer_restarts(&partial).is_empty());
        // A drop too young to end a life: a rise of 1,000 over 15 samples, then back to 0
        // (the same drop after 16 samples is a reset).
        let drop_after = |n: usize| {
            series((0..40).map(move |i| {
                if i < n {
                    i as f64 * 1000.0 / (n - 1) as f64
                } else {
                    0.0
                }
            }))
        };
        assert!(infer_restarts(&drop_after(MIN_LIFE - 1)).is_empty());
        assert_eq!(infer_restarts(&drop_after(MIN_LIFE)).len(), 1);
    }
}
