//! Human formatting for charts and pages: values by unit, compact axis labels, UTC times.
//! Counts, bytes and durations reuse the detection engine's wording, so a page says the
//! same "2,533/h" and "~11h54m" as `leakwatch leaks`.

pub use leakwatch_detect::format::{bytes, duration, number};

/// What the numbers of a chart measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Bytes,
}

impl Unit {
    /// Memory is in bytes; everything else leakwatch stores is a count (app gauges too,
    /// as far as we know).
    pub fn of_resource(resource: &leakwatch_model::Resource) -> Unit {
        if resource.is_bytes() {
            Unit::Bytes
        } else {
            Unit::Count
        }
    }

    /// A value in full: `32,768`, `1.5 GiB`.
    pub fn value(self, value: f64) -> String {
        match self {
            Unit::Count => number(value),
            Unit::Bytes => bytes(value),
        }
    }

    /// A short axis label: `1.5k`, `32k`, `2M`, `512 MiB`.
    pub fn axis(self, value: f64) -> String {
        match self {
            Unit::Bytes => {
                const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
                let mut scaled = value;
                let mut unit = 0;
                while scaled.abs() >= 1024.0 && unit + 1 < UNITS.len() {
                    scaled /= 1024.0;
                    unit += 1;
                }
                format!("{} {}", trim(scaled), UNITS[unit])
            }
            Unit::Count => {
                let magnitude = value.abs();
                if magnitude >= 1e9 {
                    format!("{}G", trim(value / 1e9))
                } else if magnitude >= 1e6 {
                    format!("{}M", trim(value / 1e6))
                } else if magnitude >= 1e4 {
                    format!("{}k", trim(value / 1e3))
                } else {
                    trim(value)
                }
            }
        }
    }
}

/// At most two decimals, without trailing zeros: `1.5`, `2`, `0.25`.
fn trim(value: f64) -> String {
    let text = format!("{value:.2}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" {
        "0".to_string()
    } else {
        text.to_string()
    }
}

/// Calendar date and time of `ms` since the epoch, in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

impl Civil {
    pub fn from_ms(ms: i64) -> Civil {
        let seconds = ms.div_euclid(1000);
        let days = seconds.div_euclid(86_400);
        let of_day = seconds.rem_euclid(86_400);
        // Days since 1970-01-01 to a proleptic Gregorian date, computed in 400-year eras
        // shifted to start on March 1st (so the leap day is the last day of a year).
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let day_of_era = z.rem_euclid(146_097);
        let year_of_era =
            (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
        let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
        let shifted_month = (5 * day_of_year + 2) / 153;
        let day = (day_of_year - (153 * shifted_month + 2) / 5 + 1) as u32;
        let month = if shifted_month < 10 {
            shifted_month + 3
        } else {
            shifted_month - 9
        } as u32;
        let year = year_of_era + era * 400 + i64::from(month <= 2);
        Civil {
            year,
            month,
            day,
            hour: (of_day / 3_600) as u32,
            minute: (of_day % 3_600 / 60) as u32,
            second: (of_day % 60) as u32,
        }
    }

    /// `Mar 05`
    pub fn date(&self) -> String {
        format!("{} {:02}", MONTHS[(self.month - 1) as usize], self.day)
    }

    /// `14:05`
    pub fn hm(&self) -> String {
        format!("{:02}:{:02}", self.hour, self.minute)
    }

    /// `14:05:09`
    pub fn hms(&self) -> String {
        format!("{:02}:{:02}:{:02}", self.hour, self.minute, self.second)
    }
}

/// `2024-03-05 14:05:09 UTC`
pub fn timestamp(ms: i64) -> String {
    let c = Civil::from_ms(ms);
    format!("{}-{:02}-{:02} {} UTC", c.year, c.month, c.day, c.hms())
}

/// A span of time for people: `6h`, `2d5h`, `42s`.
pub fn span_ms(ms: i64) -> String {
    duration(ms as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_match_known_instants() {
        assert_eq!(timestamp(0), "1970-01-01 00:00:00 UTC");
        // 2000-02-29 (a leap day in a century year divisible by 400).
        assert_eq!(timestamp(951_782_400_000), "2000-02-29 00:00:00 UTC");
        // 2024-03-05 14:05:09 UTC = 1709647509.
        assert_eq!(timestamp(1_709_647_509_000), "2024-03-05 14:05:09 UTC");
        assert_eq!(Civil::from_ms(1_709_647_509_000).date(), "Mar 05");
        // Before the epoch: 1969-12-31 23:59:59.
        assert_eq!(timestamp(-1000), "1969-12-31 23:59:59 UTC");
    }

    #[test]
    fn axis_labels_are_short() {
        assert_eq!(Unit::Count.axis(0.0), "0");
        assert_eq!(Unit::Count.axis(250.0), "250");
        assert_eq!(Unit::Count.axis(32_000.0), "32k");
        assert_eq!(Unit::Count.axis(1_500_000.0), "1.5M");
        assert_eq!(Unit::Bytes.axis(512.0 * 1024.0 * 1024.0), "512 MiB");
        assert_eq!(Unit::Bytes.axis(1.5 * 1024.0 * 1024.0 * 1024.0), "1.5 GiB");
        assert_eq!(Unit::Bytes.value(3.0 * 1024.0), "3.0 KiB");
        assert_eq!(Unit::Count.value(32_768.0), "32,768");
        assert_eq!(
            Unit::of_resource(&leakwatch_model::Resource::Memory),
            Unit::Bytes
        );
        assert_eq!(
            Unit::of_resource(&leakwatch_model::Resource::Threads),
            Unit::Count
        );
    }
}
