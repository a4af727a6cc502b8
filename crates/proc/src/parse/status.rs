//! `/proc/PID/status`: memory breakdown, uid and context switches.

/// The fields of `/proc/PID/status` that leakwatch uses; sizes in bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Status {
    pub uid: Option<u32>,
    pub vm_size: Option<u64>,
    pub vm_rss: Option<u64>,
    pub rss_anon: Option<u64>,
    pub rss_file: Option<u64>,
    pub rss_shmem: Option<u64>,
    pub vm_data: Option<u64>,
    pub vm_swap: Option<u64>,
    pub threads: Option<u32>,
    pub voluntary_ctxt_switches: Option<u64>,
    pub nonvoluntary_ctxt_switches: Option<u64>,
}

/// Parses what it recognises and ignores the rest, so a kernel that adds or drops a field
/// does not fail the sample.
pub fn parse(bytes: &[u8]) -> Status {
    let mut status = Status::default();
    for line in bytes.split(|&b| b == b'\n') {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (key, value) = (&line[..colon], super::trim(&line[colon + 1..]));
        match key {
            b"Uid" => {
                // Real, effective, saved, filesystem: the real uid owns the process.
                let real = value.split(|b| b.is_ascii_whitespace()).next();
                status.uid = real.and_then(super::parse_u64).map(|v| v as u32);
            }
            b"VmSize" => status.vm_size = kilobytes(value),
            b"VmRSS" => status.vm_rss = kilobytes(value),
            b"RssAnon" => status.rss_anon = kilobytes(value),
            b"RssFile" => status.rss_file = kilobytes(value),
            b"RssShmem" => status.rss_shmem = kilobytes(value),
            b"VmData" => status.vm_data = kilobytes(value),
            b"VmSwap" => status.vm_swap = kilobytes(value),
            b"Threads" => status.threads = super::parse_u64(value).map(|v| v as u32),
            b"voluntary_ctxt_switches" => status.voluntary_ctxt_switches = super::parse_u64(value),
            b"nonvoluntary_ctxt_switches" => {
                status.nonvoluntary_ctxt_switches = super::parse_u64(value)
            }
            _ => {}
        }
    }
    status
}

/// `"123456 kB"` to bytes.
fn kilobytes(value: &[u8]) -> Option<u64> {
    let number = value.strip_suffix(b" kB").unwrap_or(value);
    super::parse_u64(super::trim(number)).and_then(|kb| kb.checked_mul(1024))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixture_java() {
        let status = parse(include_bytes!("../../tests/fixtures/status-java.txt"));
        assert_eq!(status.uid, Some(1000));
        assert_eq!(status.threads, Some(57));
        assert_eq!(status.vm_rss, Some(412_816 * 1024));
        assert_eq!(status.rss_anon, Some(389_452 * 1024));
        assert_eq!(status.rss_file, Some(23_364 * 1024));
        assert_eq!(status.vm_swap, Some(0));
        assert_eq!(status.voluntary_ctxt_switches, Some(5));
    }

    #[test]
    fn kernel_thread_has_no_memory_lines() {
        let status =
            parse(b"Name:\tkthreadd\nState:\tS (sleeping)\nUid:\t0\t0\t0\t0\nThreads:\t1\n");
        assert_eq!(status.uid, Some(0));
        assert_eq!(status.vm_rss, None);
        assert_eq!(status.threads, Some(1));
    }
}
