//! Parsers over bytes for the `/proc` and `/sys` files leakwatch reads.
//!
//! Every function here takes the file's bytes (never a path), so each is tested on fixture
//! files captured from real hosts and fuzzed without touching the kernel. None allocates more
//! than its output needs, because the sampler calls them thousands of times per pass.

pub mod cgroup;
pub mod fd_path;
pub mod fdlink;
pub mod kubelet;
pub mod limits;
pub mod net_tcp;
pub mod stat;
pub mod statm;
pub mod status;
pub mod thread_name;

/// Parses an unsigned decimal integer; `None` on anything else (empty, sign, overflow).
pub fn parse_u64(bytes: &[u8]) -> Option<u64> {
    if bytes.is_empty() {
        return None;
    }
    let mut value: u64 = 0;
    for &byte in bytes {
        let digit = byte.wrapping_sub(b'0');
        if digit > 9 {
            return None;
        }
        value = value.checked_mul(10)?.checked_add(u64::from(digit))?;
    }
    Some(value)
}

/// Parses a signed decimal integer.
pub fn parse_i64(bytes: &[u8]) -> Option<i64> {
    match bytes.split_first() {
        Some((b'-', rest)) => {
            let magnitude = parse_u64(rest)?;
            if magnitude == 1 << 63 {
                Some(i64::MIN)
            } else {
                i64::try_from(magnitude).ok().map(|v| -v)
            }
        }
        _ => parse_u64(bytes).and_then(|v| i64::try_from(v).ok()),
    }
}

/// Trims ASCII whitespace (including the trailing newline of every /proc file).
pub fn trim(bytes: &[u8]) -> &[u8] {
    bytes.trim_ascii()
}

/// Splits `/proc/PID/cmdline` (NUL-separated, usually NUL-terminated) into arguments.
/// Trailing NULs are dropped: a process that rewrites its title in place (PostgreSQL's
/// backends, `postgres: db: user host idle`) pads the old argv area with NULs, which would
/// read as hundreds of empty arguments (a genuinely empty last argument is lost, as `ps`
/// shows none either).
pub fn cmdline(bytes: &[u8]) -> Vec<String> {
    let end = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    let bytes = &bytes[..end];
    if bytes.is_empty() {
        return Vec::new();
    }
    bytes
        .split(|&b| b == 0)
        .map(|arg| String::from_utf8_lossy(arg).into_owned())
        .collect()
}

/// Parses a single number file such as `/proc/sys/kernel/threads-max` or `pids.max`.
/// `max` (cgroup for "no limit") and absurdly large v1 values give `None`.
pub fn limit_value(bytes: &[u8]) -> Option<u64> {
    let text = trim(bytes);
    if text == b"max" {
        return None;
    }
    let value = parse_u64(text)?;
    // cgroup v1 writes "no limit" as the largest page-aligned i64.
    if value >= (i64::MAX as u64) & !0xfff {
        return None;
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(parse_u64(b"0"), Some(0));
        assert_eq!(parse_u64(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_u64(b"18446744073709551616"), None);
        assert_eq!(parse_u64(b""), None);
        assert_eq!(parse_u64(b"12a"), None);
        assert_eq!(parse_i64(b"-5"), Some(-5));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_i64(b"-"), None);
    }

    #[test]
    fn cmdline_splits_on_nul() {
        assert_eq!(
            cmdline(b"java\0-Xmx1g\0Main\0"),
            vec!["java", "-Xmx1g", "Main"]
        );
        assert_eq!(cmdline(b""), Vec::<String>::new());
        // A process may rewrite its argv without a trailing NUL.
        assert_eq!(
            cmdline(b"nginx: worker process"),
            vec!["nginx: worker process"]
        );
        assert_eq!(cmdline(b"a\0\0b\0"), vec!["a", "", "b"]);
        // A title rewritten in place: the rest of the old argv area is NULs.
        assert_eq!(
            cmdline(b"postgres: lw003: postgres postgres 127.0.0.1(38350) idle\0\0\0\0\0\0"),
            vec!["postgres: lw003: postgres postgres 127.0.0.1(38350) idle"]
        );
        assert_eq!(cmdline(b"\0\0"), Vec::<String>::new());
    }

    #[test]
    fn limit_values() {
        assert_eq!(limit_value(b"max\n"), None);
        assert_eq!(limit_value(b"4096\n"), Some(4096));
        assert_eq!(limit_value(b"9223372036854771712\n"), None);
        assert_eq!(limit_value(b"garbage"), None);
    }
}

/// Runs every parser in this module over `bytes` and discards the results: the body of the
/// fuzz target (`fuzz/fuzz_targets/parsers.rs`) and of a quick test over mutated fixtures.
#[doc(hidden)]
pub fn parse_everything(bytes: &[u8]) {
    let _ = stat::parse(bytes);
    let _ = statm::parse(bytes);
    let _ = status::parse(bytes);
    let _ = limits::parse(bytes);
    let cgroups = cgroup::parse(bytes);
    if let Some(path) = cgroups.display_path() {
        let _ = cgroup::systemd_unit(path);
        let _ = cgroup::container_id(path);
    }
    let mounts = cgroup::parse_mountinfo(bytes);
    if let Some(mount) = mounts.unified {
        let _ = mount.dir(&String::from_utf8_lossy(bytes));
    }
    net_tcp::parse(bytes, |_| {});
    net_tcp::parse_unix_inodes(bytes, |_| {});
    let _ = fdlink::classify(bytes);
    let _ = kubelet::container_log_name(&String::from_utf8_lossy(bytes));
    let _ = thread_name::normalise(bytes);
    let group = fd_path::group(bytes);
    assert!(group.len() <= fd_path::MAX_PATH_CHARS + fd_path::DELETED.len());
    let _ = cmdline(bytes);
    let _ = limit_value(bytes);
}

#[cfg(test)]
mod mutation_tests {
    /// A cheap, deterministic stand-in for the fuzzer that runs with every `cargo test`:
    /// every fixture, truncated at every length and with bytes flipped, through every parser.
    #[test]
    fn fixtures_mutated_never_panic() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for entry in std::fs::read_dir(dir).unwrap() {
            let bytes = std::fs::read(entry.unwrap().path()).unwrap();
            for cut in 0..=bytes.len() {
                super::parse_everything(&bytes[..cut]);
            }
            for _ in 0..500 {
                let mut mutated = bytes.clone();
                for _ in 0..4 {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    if !mutated.is_empty() {
                        let at = (seed as usize) % mutated.len();
                        mutated[at] = (seed >> 32) as u8;
                    }
                }
                super::parse_everything(&mutated);
            }
        }
    }
}
