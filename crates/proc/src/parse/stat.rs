//! `/proc/PID/stat` and `/proc/PID/task/TID/stat`.
//!
//! The second field, `comm`, is wrapped in parentheses but may itself contain spaces,
//! parentheses, newlines and arbitrary bytes, so the only safe split is at the *last* `)`.

/// The fields of `/proc/PID/stat` that leakwatch uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat<'a> {
    pub pid: u32,
    pub comm: &'a [u8],
    pub state: u8,
    pub ppid: u32,
    /// Process group and session (fields 5 and 6): a process a supervisor or an init
    /// system starts leads one of them; an orphaned job adopted by init does not.
    pub pgrp: u32,
    pub session: u32,
    /// Kernel `PF_*` flags (field 9); `PF_KTHREAD` marks kernel threads.
    pub flags: u64,
    pub utime_ticks: u64,
    pub stime_ticks: u64,
    pub num_threads: u32,
    pub start_time_ticks: u64,
    pub vsize: u64,
    /// Resident set in pages.
    pub rss_pages: u64,
}

/// `PF_KTHREAD` from `include/linux/sched.h`.
pub const PF_KTHREAD: u64 = 0x0020_0000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatError(pub &'static str);

impl std::fmt::Display for StatError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "malformed stat: {}", self.0)
    }
}

impl std::error::Error for StatError {}

pub fn parse(bytes: &[u8]) -> Result<Stat<'_>, StatError> {
    let open = bytes
        .iter()
        .position(|&b| b == b'(')
        .ok_or(StatError("no '(' before comm"))?;
    let close = bytes
        .iter()
        .rposition(|&b| b == b')')
        .ok_or(StatError("no ')' after comm"))?;
    if close < open {
        return Err(StatError("')' before '('"));
    }
    let pid = super::parse_u64(super::trim(&bytes[..open]))
        .and_then(|p| u32::try_from(p).ok())
        .ok_or(StatError("pid"))?;
    let comm = &bytes[open + 1..close];
    // Fields after comm, numbered as in proc(5): field 3 is state.
    let mut fields = bytes[close + 1..]
        .split(|&b| b == b' ')
        .filter(|f| !f.is_empty());
    let mut next = |name: &'static str| fields.next().ok_or(StatError(name));
    let state = *next("state")?.first().ok_or(StatError("state"))?;
    let number = |field: &[u8], name: &'static str| {
        super::parse_i64(super::trim(field))
            .map(|v| v.max(0) as u64)
            .ok_or(StatError(name))
    };
    let ppid = number(next("ppid")?, "ppid")? as u32;
    let pgrp = number(next("pgrp")?, "pgrp")? as u32;
    let session = number(next("session")?, "session")? as u32;
    // Fields 7 and 8: tty_nr, tpgid.
    for _ in 7..=8 {
        next("fields 7-8")?;
    }
    let flags = number(next("flags")?, "flags")?;
    // Fields 10..=13: minflt, cminflt, majflt, cmajflt.
    for _ in 10..=13 {
        next("fields 10-13")?;
    }
    let utime_ticks = number(next("utime")?, "utime")?;
    let stime_ticks = number(next("stime")?, "stime")?;
    // cutime, cstime, priority, nice.
    for _ in 16..=19 {
        next("fields 16-19")?;
    }
    let num_threads = number(next("num_threads")?, "num_threads")? as u32;
    next("itrealvalue")?;
    let start_time_ticks = number(next("starttime")?, "starttime")?;
    let vsize = number(next("vsize")?, "vsize")?;
    let rss_pages = number(next("rss")?, "rss")?;
    Ok(Stat {
        pid,
        comm,
        state,
        ppid,
        pgrp,
        session,
        flags,
        utime_ticks,
        stime_ticks,
        num_threads,
        start_time_ticks,
        vsize,
        rss_pages,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(comm: &[u8]) -> Vec<u8> {
        let mut out = b"4242 (".to_vec();
        out.extend_from_slice(comm);
        out.extend_from_slice(
            b") S 1 4242 4242 0 -1 4194560 1 0 0 0 7 3 0 0 20 0 17 0 123456 1000000 250 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n",
        );
        out
    }

    #[test]
    fn plain() {
        let bytes = line(b"java");
        let stat = parse(&bytes).unwrap();
        assert_eq!(stat.pid, 4242);
        assert_eq!(stat.comm, b"java");
        assert_eq!(stat.state, b'S');
        assert_eq!(stat.ppid, 1);
        assert_eq!((stat.pgrp, stat.session), (4242, 4242));
        assert_eq!(stat.flags, 4194560);
        assert_eq!(stat.utime_ticks, 7);
        assert_eq!(stat.stime_ticks, 3);
        assert_eq!(stat.num_threads, 17);
        assert_eq!(stat.start_time_ticks, 123456);
        assert_eq!(stat.vsize, 1_000_000);
        assert_eq!(stat.rss_pages, 250);
    }

    #[test]
    fn comm_with_parens_spaces_newline_and_bytes() {
        for comm in [
            &b"(sd-pam)"[..],
            b"a) S 1 2 (",
            b"tmux: server",
            b"x\ny",
            b"\xff\xfe)",
            b"",
        ] {
            let bytes = line(comm);
            let stat = parse(&bytes).unwrap();
            assert_eq!(stat.comm, comm);
            assert_eq!(stat.num_threads, 17);
        }
    }

    #[test]
    fn fixtures() {
        let stat = parse(include_bytes!("../../tests/fixtures/stat-parens.txt")).unwrap();
        assert_eq!(stat.comm, b"a) b (c)");
        assert_eq!(stat.num_threads, 3);
        let stat = parse(include_bytes!(
            "../../tests/fixtures/stat-newline-binary.txt"
        ))
        .unwrap();
        assert_eq!(stat.comm, b"line\nbreak\xff\xfe");
        assert_eq!(stat.state, b'R');
        assert_eq!(stat.start_time_ticks, 100);
    }

    #[test]
    fn truncated_is_an_error_not_a_panic() {
        let bytes = line(b"java");
        // Every cut that ends before the rss field (the last one parsed) is an error.
        let rss_end = bytes.windows(5).position(|w| w == b" 250 ").unwrap() + 1;
        for cut in 0..rss_end {
            assert!(parse(&bytes[..cut]).is_err(), "cut at {cut}");
        }
    }
}
