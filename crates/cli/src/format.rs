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

/// Bounds of the durations the CLI takes: a silence lasts at most a year, history and
/// report ranges reach at most the 35 days the agent keeps, intervals at most an hour.
pub const DAY: std::time::Duration = std::time::Duration::from_secs(86_400);
pub const MAX_SILENCE: std::time::Duration = std::time::Duration::from_secs(365 * 86_400);
pub const MAX_RANGE: std::time::Duration = std::time::Duration::from_secs(35 * 86_400);
pub const MAX_INTERVAL: std::time::Duration = std::time::Duration::from_secs(3600);

/// Parses a duration option (`--for 2h`), refusing one longer than `max` with a message
/// that names the option.
pub fn duration_arg(
    option: &str,
    text: &str,
    max: std::time::Duration,
) -> anyhow::Result<std::time::Duration> {
    let duration = humantime::parse_duration(text).map_err(|e| {
        anyhow::anyhow!("{option} {text:?} is not a duration (e.g. 30s, 2h, 7d): {e}")
    })?;
    if duration > max {
        let secs = max.as_secs();
        let most = if secs.is_multiple_of(86_400) {
            format!("{} days", secs / 86_400)
        } else if secs.is_multiple_of(3600) {
            format!("{}h", secs / 3600)
        } else {
            humantime::format_duration(max).to_string()
        };
        anyhow::bail!("{option} {text:?} is longer than {most}, the most it takes");
    }
    Ok(duration)
}

/// `value` as pretty JSON that is safe on a terminal and parses to the same value: bidi
/// overrides, DEL and C1 controls in strings are `\uXXXX` escapes
/// (`leakwatch_model::text::json_safe`). Every `--json` output goes through it.
pub fn json(value: &impl serde::Serialize) -> serde_json::Result<String> {
    serde_json::to_string_pretty(value).map(leakwatch_model::text::json_safe)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duration_options_have_a_maximum() {
        assert_eq!(
            duration_arg("--for", "2h", MAX_SILENCE).unwrap(),
            std::time::Duration::from_secs(7200)
        );
        let long = duration_arg("--for", "10000y", MAX_SILENCE).unwrap_err();
        assert!(long.to_string().contains("longer than 365 days"), "{long}");
        let bad = duration_arg("--since", "soon", MAX_RANGE).unwrap_err();
        assert!(
            bad.to_string()
                .contains("--since \"soon\" is not a duration"),
            "{bad}"
        );
    }

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
