//! Axis scales: round value ticks (1-2-5 steps; binary units for bytes) and time ticks on
//! round UTC instants.

use crate::format::{Civil, Unit};

/// A value axis: the domain `[lo, hi]` and its tick values (both ends included).
#[derive(Debug, Clone, PartialEq)]
pub struct ValueScale {
    pub lo: f64,
    pub hi: f64,
    pub ticks: Vec<f64>,
}

/// The smallest of 1, 2, 5 times a power of ten that is at least `raw`.
fn nice_step(raw: f64) -> f64 {
    if !(raw.is_finite() && raw > 0.0) {
        return 1.0;
    }
    let power = 10f64.powf(raw.log10().floor());
    for m in [1.0, 2.0, 5.0, 10.0] {
        if m * power >= raw * (1.0 - 1e-9) {
            return m * power;
        }
    }
    10.0 * power
}

/// Round ticks covering `[min, max]` with at most about `max_ticks` intervals.
pub fn values(min: f64, max: f64, max_ticks: usize, unit: Unit) -> ValueScale {
    let (mut min, mut max) = if min.is_finite() && max.is_finite() && min <= max {
        (min, max)
    } else {
        (0.0, 1.0)
    };
    if max - min < f64::EPSILON * max.abs().max(1.0) {
        // A flat series: centre it rather than drawing it on the frame.
        let pad = if max == 0.0 { 1.0 } else { max.abs() * 0.1 };
        if min >= 0.0 && min - pad < 0.0 {
            min = 0.0;
        } else {
            min -= pad;
        }
        max += pad;
    }
    let intervals = max_ticks.max(1) as f64;
    let raw = (max - min) / intervals;
    let step = match unit {
        Unit::Bytes if raw >= 1024.0 => {
            let mut scale = 1024.0;
            while raw / scale >= 1024.0 {
                scale *= 1024.0;
            }
            nice_step(raw / scale) * scale
        }
        // Counts step by whole units at least.
        Unit::Count if min.fract() == 0.0 && max.fract() == 0.0 => nice_step(raw).max(1.0),
        _ => nice_step(raw),
    };
    let lo = (min / step).floor() * step;
    let hi = (max / step).ceil() * step;
    let n = ((hi - lo) / step).round() as usize;
    let ticks = (0..=n).map(|i| lo + i as f64 * step).collect();
    ValueScale { lo, hi, ticks }
}

const SECOND: i64 = 1_000;
const MINUTE: i64 = 60 * SECOND;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

const TIME_STEPS: [i64; 22] = [
    SECOND,
    2 * SECOND,
    5 * SECOND,
    10 * SECOND,
    15 * SECOND,
    30 * SECOND,
    MINUTE,
    2 * MINUTE,
    5 * MINUTE,
    10 * MINUTE,
    15 * MINUTE,
    30 * MINUTE,
    HOUR,
    2 * HOUR,
    3 * HOUR,
    6 * HOUR,
    12 * HOUR,
    DAY,
    2 * DAY,
    7 * DAY,
    14 * DAY,
    28 * DAY,
];

/// Ticks on round UTC instants inside `[from_ms, to_ms]`, at most `max_ticks` of them,
/// labelled `14:05:30` (steps under a minute), `14:05`, or the date (at midnight and for
/// steps of a day or more).
pub fn times(from_ms: i64, to_ms: i64, max_ticks: usize) -> Vec<(i64, String)> {
    if to_ms <= from_ms {
        return Vec::new();
    }
    let span = to_ms - from_ms;
    let max_ticks = max_ticks.max(1) as i64;
    let step = TIME_STEPS
        .iter()
        .copied()
        .find(|step| span / step <= max_ticks)
        .unwrap_or_else(|| (span / max_ticks / DAY + 1) * DAY);
    let first = from_ms.div_euclid(step) * step
        + if from_ms.rem_euclid(step) == 0 {
            0
        } else {
            step
        };
    let mut out = Vec::new();
    let mut t = first;
    while t <= to_ms {
        let civil = Civil::from_ms(t);
        let label = if step >= DAY || t.rem_euclid(DAY) == 0 {
            civil.date()
        } else if step < MINUTE {
            civil.hms()
        } else {
            civil.hm()
        };
        out.push((t, label));
        t += step;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_ticks_are_round_and_cover_the_data() {
        let s = values(0.0, 97.0, 5, Unit::Count);
        assert_eq!(s.lo, 0.0);
        assert_eq!(s.hi, 100.0);
        assert_eq!(s.ticks, vec![0.0, 20.0, 40.0, 60.0, 80.0, 100.0]);

        let s = values(3.0, 4.0, 5, Unit::Count);
        assert!(s.lo <= 3.0 && s.hi >= 4.0);
        assert!(s.ticks.iter().all(|t| t.fract() == 0.0), "{s:?}");

        // Flat at 7: the line must not sit on the frame.
        let s = values(7.0, 7.0, 4, Unit::Count);
        assert!(s.lo < 7.0 && s.hi > 7.0, "{s:?}");

        let mib = 1024.0 * 1024.0;
        let s = values(0.0, 900.0 * mib, 4, Unit::Bytes);
        let step = s.ticks[1] - s.ticks[0];
        assert_eq!(step % mib, 0.0, "byte ticks fall on whole MiB: {s:?}");
        assert!(s.hi >= 900.0 * mib);
    }

    #[test]
    fn time_ticks_fall_on_round_instants() {
        // 2024-03-05 14:05:09 UTC, one hour.
        let from = 1_709_647_509_000;
        let ticks = times(from, from + 3_600_000, 6);
        assert!(ticks.len() <= 7 && ticks.len() >= 4, "{ticks:?}");
        assert_eq!(ticks[0].1, "14:10");
        assert!(ticks.iter().all(|(t, _)| t % (10 * 60_000) == 0));

        // A week: daily ticks labelled with dates.
        let ticks = times(from, from + 7 * 86_400_000, 8);
        assert!(
            ticks.iter().all(|(_, label)| label.starts_with("Mar")),
            "{ticks:?}"
        );
        assert_eq!(ticks[0].1, "Mar 06");

        // A minute: second ticks.
        let ticks = times(from, from + 60_000, 6);
        assert_eq!(ticks[0].1, "14:05:10");
        assert!(times(10, 10, 5).is_empty());
    }
}
