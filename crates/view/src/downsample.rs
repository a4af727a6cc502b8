//! Min/max downsampling per pixel column.
//!
//! A chart `columns` pixels wide can show at most one vertical stroke per column, so for
//! each column we keep only its minimum and its maximum (in time order): the line drawn
//! through them covers the same vertical extent in every column as the full series would,
//! spikes and dips included, with at most 2 points per column. One pass over the input;
//! a week of 10-second samples (60,480 points) becomes at most `2 * (columns + 2)` points.
//! (Keeping the first and last point of each column too, as M4 does, would also make the
//! joins between columns exact; at one pixel per column the difference does not show, and
//! it would double the SVG.)
//!
//! Gaps (the agent was down, a thread group did not exist) break the line: two consecutive
//! samples further apart than five typical sampling steps, and more than one column apart,
//! end one segment and start the next. Breaking only across columns keeps the bound.

/// One column's representative points.
#[derive(Clone, Copy)]
struct Column {
    index: i64,
    min: (i64, f64),
    max: (i64, f64),
}

impl Column {
    fn new(index: i64, point: (i64, f64)) -> Column {
        Column {
            index,
            min: point,
            max: point,
        }
    }

    fn add(&mut self, point: (i64, f64)) {
        if point.1 < self.min.1 {
            self.min = point;
        }
        // Ties: the earliest minimum and the latest maximum, so a flat column keeps its
        // first and last sample and the line spans it.
        if point.1 >= self.max.1 {
            self.max = point;
        }
    }

    fn flush(self, segment: &mut Vec<(i64, f64)>) {
        let (a, b) = if self.min.0 <= self.max.0 {
            (self.min, self.max)
        } else {
            (self.max, self.min)
        };
        push(segment, a);
        if b.0 != a.0 {
            push(segment, b);
        }
    }
}

/// Appends, dropping the middle one of three equal values in a row (a flat run is two
/// points however long it lasts).
fn push(segment: &mut Vec<(i64, f64)>, point: (i64, f64)) {
    let n = segment.len();
    if n >= 2 && segment[n - 1].1 == point.1 && segment[n - 2].1 == point.1 {
        segment[n - 1] = point;
    } else {
        segment.push(point);
    }
}

/// The typical time between samples: the median of (up to 1,024 evenly spread) steps.
fn typical_step(points: &[(i64, f64)]) -> i64 {
    if points.len() < 2 {
        return 0;
    }
    let n = points.len() - 1;
    let stride = n.div_ceil(1024);
    let mut steps: Vec<i64> = (0..n)
        .step_by(stride)
        .map(|i| points[i + 1].0 - points[i].0)
        .collect();
    let middle = steps.len() / 2;
    *steps.select_nth_unstable(middle).1
}

/// Reduces the time-ordered `points` to what a chart of `columns` pixel columns spanning
/// `[from_ms, to_ms]` can show: line segments (split at gaps) of at most 2 points per
/// column. The nearest point outside the range on each side is kept too (as its own
/// column), so lines run to the chart's edges; the chart clips them. Non-finite values are
/// skipped.
pub fn min_max(
    points: &[(i64, f64)],
    from_ms: i64,
    to_ms: i64,
    columns: usize,
) -> Vec<Vec<(i64, f64)>> {
    if to_ms <= from_ms || columns == 0 || points.is_empty() {
        return Vec::new();
    }
    let start = points.partition_point(|p| p.0 < from_ms);
    let end = points.partition_point(|p| p.0 <= to_ms);
    let slice = &points[start.saturating_sub(1)..(end + 1).min(points.len())];
    let span = i128::from(to_ms - from_ms);
    let columns_i = columns as i128;
    let column_ms = ((to_ms - from_ms) + columns as i64 - 1) / columns as i64;
    let gap_ms = column_ms.max(typical_step(&points[start..end]).saturating_mul(5));
    let column_of = |t: i64| -> i64 {
        if t < from_ms {
            -1
        } else if t > to_ms {
            columns as i64
        } else {
            ((i128::from(t - from_ms) * columns_i / span) as i64).min(columns as i64 - 1)
        }
    };

    let mut segments = Vec::new();
    let mut segment: Vec<(i64, f64)> = Vec::new();
    let mut column: Option<Column> = None;
    let mut previous_t: Option<i64> = None;
    for &(t, v) in slice {
        if !v.is_finite() {
            continue;
        }
        if previous_t.is_some_and(|p| t - p > gap_ms) {
            if let Some(c) = column.take() {
                c.flush(&mut segment);
            }
            if !segment.is_empty() {
                segments.push(std::mem::take(&mut segment));
            }
        }
        previous_t = Some(t);
        let index = column_of(t);
        match &mut column {
            Some(c) if c.index == index => c.add((t, v)),
            _ => {
                if let Some(c) = column.replace(Column::new(index, (t, v))) {
                    c.flush(&mut segment);
                }
            }
        }
    }
    if let Some(c) = column {
        c.flush(&mut segment);
    }
    if !segment.is_empty() {
        segments.push(segment);
    }
    segments
}

/// Smallest and largest value of the segments' points inside `[from_ms, to_ms]`.
pub fn extent(segments: &[Vec<(i64, f64)>], from_ms: i64, to_ms: i64) -> Option<(f64, f64)> {
    segments
        .iter()
        .flatten()
        .filter(|(t, _)| (from_ms..=to_ms).contains(t))
        .fold(None, |acc, &(_, v)| match acc {
            None => Some((v, v)),
            Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A week of 10-second samples: a sawtooth with one spike and one dip.
    fn week() -> Vec<(i64, f64)> {
        (0..60_480i64)
            .map(|i| {
                let v = match i {
                    30_000 => 1_000.0,
                    40_000 => -50.0,
                    _ => (i % 97) as f64,
                };
                (1_700_000_000_000 + i * 10_000, v)
            })
            .collect()
    }

    #[test]
    fn output_is_bounded_by_the_columns_not_the_input() {
        let points = week();
        let (from, to) = (points[0].0, points.last().unwrap().0);
        for columns in [1, 2, 100, 800, 2_000] {
            let segments = min_max(&points, from, to, columns);
            let n: usize = segments.iter().map(Vec::len).sum();
            assert!(n <= 2 * (columns + 2), "{n} points for {columns} columns");
            assert!(
                n >= columns.min(points.len()),
                "{n} points for {columns} columns"
            );
        }
    }

    #[test]
    fn extremes_survive_downsampling() {
        let points = week();
        let (from, to) = (points[0].0, points.last().unwrap().0);
        let segments = min_max(&points, from, to, 300);
        assert_eq!(segments.len(), 1, "no gaps in a regular series");
        let all: Vec<(i64, f64)> = segments.concat();
        assert!(all.contains(&points[30_000]), "spike kept");
        assert!(all.contains(&points[40_000]), "dip kept");
        // Every column's minimum and maximum value is drawn, computed here by brute force.
        let columns = 300i128;
        let span = i128::from(to - from);
        for c in 0..columns {
            let in_column: Vec<f64> = points
                .iter()
                .filter(|(t, _)| {
                    let i = (i128::from(t - from) * columns / span).min(columns - 1);
                    i == c
                })
                .map(|p| p.1)
                .collect();
            let lo = in_column.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = in_column.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let drawn: Vec<f64> = all
                .iter()
                .filter(|(t, _)| (i128::from(t - from) * columns / span).min(columns - 1) == c)
                .map(|p| p.1)
                .collect();
            assert!(drawn.contains(&lo) && drawn.contains(&hi), "column {c}");
        }
        assert_eq!(all.first(), points.first());
        assert!(all.windows(2).all(|w| w[0].0 < w[1].0), "time-ordered");
        assert_eq!(extent(&segments, from, to), Some((-50.0, 1_000.0)));
    }

    #[test]
    fn flat_runs_are_two_points_and_gaps_split_lines() {
        let mut points: Vec<(i64, f64)> = (0..1_000).map(|i| (i * 1_000, 5.0)).collect();
        let segments = min_max(&points, 0, 999_000, 800);
        assert_eq!(segments, vec![vec![(0, 5.0), (999_000, 5.0)]]);

        // The agent was down for ten minutes.
        points.extend((0..100).map(|i| (1_600_000 + i * 1_000, 7.0)));
        let segments = min_max(&points, 0, 1_699_000, 800);
        assert_eq!(segments.len(), 2, "{segments:?}");
        assert_eq!(segments[1][0], (1_600_000, 7.0));
    }

    #[test]
    fn neighbours_outside_the_range_are_kept_and_nan_skipped() {
        let points = vec![
            (0, 1.0),
            (10_000, 2.0),
            (20_000, f64::NAN),
            (30_000, 4.0),
            (40_000, 5.0),
        ];
        let segments = min_max(&points, 15_000, 35_000, 10);
        let all = segments.concat();
        assert_eq!(all, vec![(10_000, 2.0), (30_000, 4.0), (40_000, 5.0)]);
        assert!(min_max(&points, 5, 5, 10).is_empty());
        assert!(min_max(&[], 0, 5, 10).is_empty());
    }
}
