//! Capacities a person declares for a target's series (`[[target.limit]]`): a connection
//! pool of 1,024, a thread pool of 200. Detection forecasts against the tighter of such a
//! capacity and the limit the host imposes (RLIMIT_NOFILE, pids.max), and names it.

use leakwatch_detect::{Capacity, CapacitySource};
use leakwatch_model::SeriesKey;
use std::collections::BTreeMap;

/// At most this many `[[target.limit]]` entries per target, patterns per entry, and bytes
/// per pattern or name.
pub const MAX_LIMITS_PER_TARGET: usize = 32;
pub const MAX_PATTERNS: usize = 16;
pub const MAX_PATTERN_LEN: usize = 256;
pub const MAX_NAME_LEN: usize = 64;
/// Larger capacities are not capacities.
pub const MAX_CAPACITY: f64 = 1e15;

/// The declared capacities of every configured target, by target name.
#[derive(Debug, Clone, Default)]
pub struct Capacities {
    by_target: BTreeMap<String, Vec<Declared>>,
}

#[derive(Debug, Clone)]
struct Declared {
    patterns: Vec<String>,
    capacity: Capacity,
}

impl Capacities {
    /// Declares `value` as the capacity of `target`'s series matching any of `patterns`
    /// (checked by [`check`]); earlier declarations of a target win over later ones.
    pub fn declare(
        &mut self,
        target: &str,
        patterns: Vec<String>,
        value: f64,
        name: Option<String>,
    ) {
        let declared = self.by_target.entry(target.to_string()).or_default();
        let group = u32::try_from(declared.len() + 1).unwrap_or(u32::MAX);
        declared.push(Declared {
            patterns,
            capacity: Capacity {
                value,
                name: name.unwrap_or_else(|| "capacity".to_string()),
                source: CapacitySource::Declared,
                group,
            },
        });
    }

    /// The capacity declared for `key` (the first `[[target.limit]]` whose pattern matches
    /// its label, `tcp{CLOSE_WAIT}`).
    pub fn of(&self, key: &SeriesKey) -> Option<&Capacity> {
        let declared = self.by_target.get(&key.target)?;
        let label = key.label();
        declared
            .iter()
            .find(|d| d.patterns.iter().any(|p| glob(p, &label)))
            .map(|d| &d.capacity)
    }
}

/// Why a `[[target.limit]]` entry is unusable, if it is.
pub fn check(series: &[String], capacity: f64, name: Option<&str>) -> Result<(), String> {
    if series.is_empty() {
        return Err("series is empty: name the series it caps, e.g. \"tcp{CLOSE_WAIT}\"".into());
    }
    if series.len() > MAX_PATTERNS {
        return Err(format!("at most {MAX_PATTERNS} series per limit"));
    }
    for pattern in series {
        if pattern.is_empty() || pattern.len() > MAX_PATTERN_LEN {
            return Err(format!(
                "series {pattern:?} must be 1 to {MAX_PATTERN_LEN} bytes"
            ));
        }
        let resource = pattern.split('{').next().unwrap_or_default();
        let known = [
            "threads",
            "fds",
            "tcp",
            "tcp_peer",
            "sockets",
            "memory",
            "gauge",
            "processes",
        ];
        if !known.contains(&resource) {
            return Err(format!(
                "series {pattern:?}: unknown resource {resource:?} (one of {})",
                known.join(", ")
            ));
        }
        if pattern.contains('{') && !pattern.ends_with('}') {
            return Err(format!("series {pattern:?} must end with '}}'"));
        }
    }
    if !capacity.is_finite() || capacity <= 0.0 || capacity > MAX_CAPACITY {
        return Err(format!(
            "capacity {capacity} must be a number above 0 and at most {MAX_CAPACITY:e}"
        ));
    }
    if let Some(name) = name {
        if name.trim().is_empty()
            || name.len() > MAX_NAME_LEN
            || name.chars().any(|c| c.is_control())
        {
            return Err(format!(
                "name {name:?} must be 1 to {MAX_NAME_LEN} bytes without control characters"
            ));
        }
    }
    Ok(())
}

/// `*` matches any run of characters (none included); everything else matches itself.
/// Iterative with one backtrack point: linear in practice, at most pattern x text.
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut i, mut j) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while j < t.len() {
        if i < p.len() && p[i] == b'*' {
            star = Some((i, j));
            i += 1;
        } else if i < p.len() && p[i] == t[j] {
            i += 1;
            j += 1;
        } else if let Some((si, sj)) = star {
            i = si + 1;
            j = sj + 1;
            star = Some((si, sj + 1));
        } else {
            return false;
        }
    }
    p[i..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_series_labels() {
        assert!(glob("tcp{CLOSE_WAIT}", "tcp{CLOSE_WAIT}"));
        assert!(!glob("tcp{CLOSE_WAIT}", "tcp{ESTABLISHED}"));
        assert!(glob(
            "tcp_peer{* *:8443}",
            "tcp_peer{CLOSE_WAIT 10.0.0.5:8443}"
        ));
        assert!(!glob(
            "tcp_peer{* *:8443}",
            "tcp_peer{CLOSE_WAIT 10.0.0.5:8444}"
        ));
        assert!(glob("threads{pool-#-thread-#}", "threads{pool-#-thread-#}"));
        assert!(glob("threads*", "threads"));
        assert!(!glob("threads", "threads{x}"));
        assert!(glob("*", ""));
    }

    #[test]
    fn bad_limits_are_explained() {
        let one = |s: &str| vec![s.to_string()];
        assert!(check(&one("tcp{CLOSE_WAIT}"), 1024.0, Some("pool")).is_ok());
        assert!(check(&[], 1.0, None)
            .unwrap_err()
            .contains("series is empty"));
        assert!(check(&one("sockts{x}"), 1.0, None)
            .unwrap_err()
            .contains("unknown resource"));
        assert!(check(&one("tcp{CLOSE_WAIT"), 1.0, None)
            .unwrap_err()
            .contains("must end"));
        assert!(check(&one("tcp"), 0.0, None)
            .unwrap_err()
            .contains("capacity"));
        assert!(check(&one("tcp"), f64::NAN, None).is_err());
        assert!(check(&one("tcp"), 1e16, None).is_err());
        assert!(check(&one("tcp"), 5.0, Some("a\u{1b}[2J")).is_err());
        assert!(check(&one(&"x".repeat(300)), 5.0, None).is_err());
    }
}
