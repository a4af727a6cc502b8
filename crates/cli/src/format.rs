//! Human-readable numbers for terminal output.

/// `12431` as `12,431`.
pub fn count(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// Bytes in binary units with one decimal: `1.2 GiB` (the same wording as leak-check reports).
pub use leakcheck::rules::bytes;

/// `812/1024 (79%)`, or just the value when there is no limit.
pub fn against_limit(value: u64, limit: Option<u64>) -> String {
    match limit {
        Some(limit) if limit > 0 => format!(
            "{}/{} ({}%)",
            count(value),
            count(limit),
            value * 100 / limit
        ),
        _ => count(value),
    }
}

/// Seconds as `3d4h`, `2h5m`, `4m10s`, `12s`.
pub fn duration(seconds: u64) -> String {
    let (d, h, m, s) = (
        seconds / 86_400,
        seconds / 3_600 % 24,
        seconds / 60 % 60,
        seconds % 60,
    );
    if d > 0 {
        format!("{d}d{h}h")
    } else if h > 0 {
        format!("{h}h{m}m")
    } else if m > 0 {
        format!("{m}m{s}s")
    } else {
        format!("{s}s")
    }
}

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub use leakwatch_model::time::now_ms;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(1234567), "1,234,567");
    }

    #[test]
    fn sizes_and_limits() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(3 * 1024 * 1024 * 1024), "3.0 GiB");
        assert_eq!(against_limit(812, Some(1024)), "812/1,024 (79%)");
        assert_eq!(against_limit(812, None), "812");
        assert_eq!(duration(59), "59s");
        assert_eq!(duration(3 * 3600 + 12 * 60), "3h12m");
        assert_eq!(duration(2 * 86_400 + 3600), "2d1h");
    }
}
