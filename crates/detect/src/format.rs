//! Human formatting for finding summaries: counts with thousands separators, bytes in
//! binary units, compact durations.

use serde::{Deserialize, Serialize};

/// `29412.4` -> `29,412`; `15.27` -> `15.3`; `0.0421` -> `0.042`.
pub fn number(value: f64) -> String {
    if !value.is_finite() {
        return format!("{value}");
    }
    let magnitude = value.abs();
    if magnitude >= 100.0 {
        let rounded = value.round() as i128;
        let digits = rounded.unsigned_abs().to_string();
        let mut grouped = String::with_capacity(digits.len() + digits.len() / 3 + 1);
        for (i, digit) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                grouped.push(',');
            }
            grouped.push(digit);
        }
        if rounded < 0 {
            format!("-{grouped}")
        } else {
            grouped
        }
    } else if magnitude >= 10.0 || value.fract() == 0.0 {
        let text = format!("{value:.1}");
        text.strip_suffix(".0").map(str::to_string).unwrap_or(text)
    } else if magnitude >= 0.01 {
        format!("{value:.3}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
    } else {
        format!("{value:.2e}")
    }
}

/// `1.5 * 2^30` -> `1.5 GiB`.
pub fn bytes(value: f64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut scaled = value;
    let mut unit = 0;
    while scaled.abs() >= 1024.0 && unit + 1 < UNITS.len() {
        scaled /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{} B", number(scaled))
    } else {
        format!("{scaled:.1} {}", UNITS[unit])
    }
}

/// A count of objects: rounded to an integer (`2.581` -> `3`, `29412.4` -> `29,412`); a
/// non-zero count that rounds to zero reads `<1` (or `>-1`), never `0`.
pub fn count(value: f64) -> String {
    if !value.is_finite() {
        return format!("{value}");
    }
    let rounded = value.round();
    if rounded == 0.0 && value > 0.0 {
        "<1".to_string()
    } else if rounded == 0.0 && value < 0.0 {
        ">-1".to_string()
    } else {
        number(rounded + 0.0)
    }
}

/// How a series' values read in summaries. By default it follows the resource
/// ([`Unit::of`]); a series from outside (a CSV column) can say otherwise
/// ([`crate::Series::unit`]), so a memory utilisation in percent does not read as bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Unit {
    /// Binary units: `3.8 MiB`.
    Bytes,
    /// Counts of objects, as integers: `725`, `<1`.
    Count,
    /// Plain numbers: `2.581`.
    Number,
    /// Percentages: `8.4%`.
    Percent,
}

impl Unit {
    /// Bytes for memory, integers for counts of objects (threads, fds, sockets, processes,
    /// restarts), plain numbers otherwise (gauges, outside data).
    pub fn of(resource: &crate::Resource) -> Unit {
        if resource.is_bytes() {
            Unit::Bytes
        } else if resource.is_count()
            || matches!(
                resource,
                crate::Resource::Processes | crate::Resource::Restarts
            )
        {
            Unit::Count
        } else {
            Unit::Number
        }
    }

    /// The unit of a series: [`Unit::of`] its resource, except for application gauges
    /// named by the Prometheus convention for bytes (`jvm_memory_used_bytes{…}`).
    pub fn of_key(key: &crate::SeriesKey) -> Unit {
        match &key.attribution {
            crate::Attribution::Gauge(gauge)
                if gauge
                    .split('{')
                    .next()
                    .unwrap_or_default()
                    .ends_with("_bytes") =>
            {
                Unit::Bytes
            }
            _ => Unit::of(&key.resource),
        }
    }

    pub fn format(self, value: f64) -> String {
        match self {
            Unit::Bytes => bytes(value),
            Unit::Count => count(value),
            Unit::Number => number(value),
            Unit::Percent => format!("{}%", number(value)),
        }
    }
}

/// A quantity of `resource`, in its default unit ([`Unit::of`]).
pub fn quantity(resource: &crate::Resource, value: f64) -> String {
    Unit::of(resource).format(value)
}

/// A quantity of the series `key`, in its unit ([`Unit::of_key`]).
pub fn quantity_of(key: &crate::SeriesKey, value: f64) -> String {
    Unit::of_key(key).format(value)
}

/// `2280` -> `38m`; `21600` -> `6h`; `22500` -> `6h15m`; `190800` -> `2d5h`.
pub fn duration(seconds: f64) -> String {
    if !seconds.is_finite() {
        return "never".to_string();
    }
    let total = seconds.max(0.0).round() as u64;
    let (days, hours, minutes) = (total / 86_400, total % 86_400 / 3_600, total % 3_600 / 60);
    if total < 60 {
        format!("{total}s")
    } else if total < 3_600 {
        format!("{minutes}m")
    } else if total < 86_400 {
        if minutes == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{minutes:02}m")
        }
    } else if hours == 0 {
        format!("{days}d")
    } else {
        format!("{days}d{hours}h")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_like_the_examples() {
        assert_eq!(number(29_412.4), "29,412");
        assert_eq!(number(4_902.0), "4,902");
        assert_eq!(number(-1_234_567.0), "-1,234,567");
        assert_eq!(number(15.27), "15.3");
        assert_eq!(number(3.0), "3");
        assert_eq!(number(0.0421), "0.042");
    }

    #[test]
    fn counts_are_integers() {
        assert_eq!(count(2.581), "3");
        assert_eq!(count(725.4), "725");
        assert_eq!(count(29_412.4), "29,412");
        assert_eq!(count(0.2), "<1");
        assert_eq!(count(0.0), "0");
        assert_eq!(quantity(&crate::Resource::Fds, 2.581), "3");
        assert_eq!(quantity(&crate::Resource::Gauge, 2.581), "2.581");
        assert_eq!(
            quantity(&crate::Resource::Memory, 3.8 * 1024.0 * 1024.0),
            "3.8 MiB"
        );
    }

    #[test]
    fn percentages_are_not_bytes() {
        assert_eq!(Unit::Percent.format(8.449), "8.449%");
        assert_eq!(Unit::Percent.format(95.0), "95%");
        assert_eq!(Unit::of(&crate::Resource::Memory), Unit::Bytes);
    }

    #[test]
    fn durations_are_compact() {
        assert_eq!(duration(38.0 * 60.0), "38m");
        assert_eq!(duration(6.0 * 3600.0), "6h");
        assert_eq!(duration(6.25 * 3600.0), "6h15m");
        assert_eq!(duration(53.0 * 3600.0), "2d5h");
        assert_eq!(duration(42.0), "42s");
    }

    #[test]
    fn bytes_use_binary_units() {
        assert_eq!(bytes(1.5 * 1024.0 * 1024.0 * 1024.0), "1.5 GiB");
        assert_eq!(bytes(512.0), "512 B");
    }
}
