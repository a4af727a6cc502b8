//! Wall-clock helpers. Everything else takes time as milliseconds since the Unix epoch.

use std::time::{Duration, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
    // The alert crate counts unsigned; the clock reading is leakwatch-model's.
    leakwatch_model::time::now_ms().max(0) as u64
}

/// `2026-01-02T03:04:05.678Z` for a time in milliseconds since the Unix epoch.
pub fn rfc3339_ms(ms: u64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}
