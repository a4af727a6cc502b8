//! Timestamps of offline inputs: unix seconds (integer or fractional) or RFC 3339.

/// Parses `text` as unix seconds ("1700000000", "1700000000.25") or as an RFC 3339
/// timestamp ("2023-11-14T22:13:20Z", "2023-11-14 23:13:20.5+01:00"). The error says what
/// was expected.
pub fn parse_time(text: &str) -> Result<f64, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("time is empty".to_string());
    }
    let numeric = text
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'));
    // A date such as 2023-11-14 is all digits and dashes too; only a leading sign may be one.
    if numeric && (!text[1..].contains('-') || text.contains(['e', 'E'])) {
        return match text.parse::<f64>() {
            Ok(seconds) if seconds.is_finite() => Ok(seconds),
            _ => Err(format!(
                "cannot parse time {text:?}: expected unix seconds or RFC 3339"
            )),
        };
    }
    parse_rfc3339(text).map_err(|why| format!("cannot parse time {text:?} as RFC 3339: {why}"))
}

fn digits(text: &str, range: std::ops::Range<usize>, what: &str) -> Result<i64, String> {
    let part = text.get(range).ok_or_else(|| format!("{what} missing"))?;
    if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{what} {part:?} is not a number"));
    }
    part.parse()
        .map_err(|_| format!("{what} {part:?} is not a number"))
}

fn expect(text: &str, at: usize, allowed: &[u8], what: &str) -> Result<(), String> {
    match text.as_bytes().get(at) {
        Some(b) if allowed.contains(b) => Ok(()),
        _ => Err(format!("expected {what} at character {}", at + 1)),
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Hinnant's days_from_civil).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = if year >= 0 { year } else { year - 399 } / 400;
    let year_of_era = year - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        _ => 28,
    }
}

fn parse_rfc3339(text: &str) -> Result<f64, String> {
    // YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)
    let year = digits(text, 0..4, "year")?;
    expect(text, 4, b"-", "'-'")?;
    let month = digits(text, 5..7, "month")?;
    expect(text, 7, b"-", "'-'")?;
    let day = digits(text, 8..10, "day")?;
    expect(text, 10, b"Tt ", "'T'")?;
    let hour = digits(text, 11..13, "hour")?;
    expect(text, 13, b":", "':'")?;
    let minute = digits(text, 14..16, "minute")?;
    expect(text, 16, b":", "':'")?;
    let second = digits(text, 17..19, "second")?;
    if !(1..=12).contains(&month) {
        return Err(format!("month {month} out of range"));
    }
    if day < 1 || day > days_in_month(year, month) {
        return Err(format!("day {day} out of range"));
    }
    if hour > 23 || minute > 59 || second > 60 {
        return Err("time of day out of range".to_string());
    }
    let mut rest = &text[19..];
    let mut fraction = 0.0;
    if let Some(after_dot) = rest.strip_prefix('.') {
        let n_digits = after_dot.bytes().take_while(u8::is_ascii_digit).count();
        if n_digits == 0 {
            return Err("fraction of second has no digits".to_string());
        }
        fraction = format!("0.{}", &after_dot[..n_digits])
            .parse::<f64>()
            .map_err(|_| "bad fraction of second".to_string())?;
        rest = &after_dot[n_digits..];
    }
    let offset_seconds = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6 && (rest.starts_with('+') || rest.starts_with('-')) => {
            expect(rest, 3, b":", "':' in offset")?;
            let hours = digits(rest, 1..3, "offset hours")?;
            let minutes = digits(rest, 4..6, "offset minutes")?;
            if hours > 23 || minutes > 59 {
                return Err("offset out of range".to_string());
            }
            let sign = if rest.starts_with('-') { -1 } else { 1 };
            sign * (hours * 3600 + minutes * 60)
        }
        "" => return Err("missing time zone (Z or +HH:MM)".to_string()),
        _ => return Err(format!("bad time zone {rest:?}")),
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_seconds;
    Ok(seconds as f64 + fraction)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_seconds_integer_and_fractional() {
        assert_eq!(parse_time("1700000000"), Ok(1_700_000_000.0));
        assert_eq!(parse_time(" 1700000000.25 "), Ok(1_700_000_000.25));
    }

    #[test]
    fn rfc3339_with_zone_offsets_and_fractions() {
        assert_eq!(parse_time("1970-01-01T00:00:00Z"), Ok(0.0));
        assert_eq!(parse_time("2023-11-14T22:13:20Z"), Ok(1_700_000_000.0));
        assert_eq!(parse_time("2023-11-14T23:13:20+01:00"), Ok(1_700_000_000.0));
        assert_eq!(parse_time("2023-11-14 22:13:20.5z"), Ok(1_700_000_000.5));
        assert_eq!(parse_time("2024-02-29T00:00:00-00:30"), Ok(1_709_166_600.0));
    }

    #[test]
    fn bad_times_say_what_is_wrong() {
        assert!(parse_time("2023-02-30T00:00:00Z")
            .unwrap_err()
            .contains("day 30 out of range"));
        assert!(parse_time("2023-11-14T22:13:20")
            .unwrap_err()
            .contains("missing time zone"));
        assert!(parse_time("yesterday").unwrap_err().contains("RFC 3339"));
        assert!(parse_time("").unwrap_err().contains("empty"));
    }
}
