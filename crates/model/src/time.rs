//! Time as leakwatch records it: milliseconds since the Unix epoch ([`UnixMs`]), the unit of
//! the store, the API and the alerts. The detection engine works in seconds (`f64`, so rates
//! and forecasts are plain arithmetic); [`UnixMs::as_secs_f64`] and
//! [`UnixMs::from_secs_f64`] are the one conversion between the two.

use serde::{Deserialize, Serialize};
use std::time::{SystemTime, UNIX_EPOCH};

/// An instant: milliseconds since 1970-01-01T00:00:00Z.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct UnixMs(pub i64);

impl UnixMs {
    /// The wall clock now (0 if the clock is before 1970).
    pub fn now() -> UnixMs {
        UnixMs(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
        )
    }

    /// Seconds since the epoch, as the detection engine counts them.
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1000.0
    }

    /// From the engine's seconds (rounded toward zero; saturating beyond i64).
    pub fn from_secs_f64(seconds: f64) -> UnixMs {
        UnixMs((seconds * 1000.0) as i64)
    }
}

/// The wall clock in milliseconds since the epoch: `UnixMs::now().0`.
pub fn now_ms() -> i64 {
    UnixMs::now().0
}

#[cfg(test)]
mod tests {
    use super::UnixMs;

    #[test]
    fn seconds_and_milliseconds_convert_both_ways() {
        let t = UnixMs(1_765_000_123_456);
        assert_eq!(t.as_secs_f64(), 1_765_000_123.456);
        assert_eq!(UnixMs::from_secs_f64(t.as_secs_f64()), t);
        assert_eq!(UnixMs::from_secs_f64(f64::MAX), UnixMs(i64::MAX));
        assert!(UnixMs::now() > UnixMs(1_700_000_000_000));
        assert_eq!(serde_json::to_string(&t).unwrap(), "1765000123456");
    }
}
