//! `/proc/PID/limits`: the soft and hard rlimits of another process.

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rlimit {
    /// `None` means unlimited.
    pub soft: Option<u64>,
    pub hard: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcLimits {
    pub nofile: Rlimit,
    pub nproc: Rlimit,
}

/// The file is a fixed-width table whose first column (the name) contains spaces, so rows
/// are matched by their name prefix and the next two words are taken as soft and hard.
pub fn parse(bytes: &[u8]) -> ProcLimits {
    let mut limits = ProcLimits::default();
    for line in bytes.split(|&b| b == b'\n') {
        if let Some(rest) = line.strip_prefix(b"Max open files") {
            limits.nofile = values(rest);
        } else if let Some(rest) = line.strip_prefix(b"Max processes") {
            limits.nproc = values(rest);
        }
    }
    limits
}

fn values(rest: &[u8]) -> Rlimit {
    let mut words = rest
        .split(|b| b.is_ascii_whitespace())
        .filter(|w| !w.is_empty());
    let one = |word: Option<&[u8]>| match word {
        Some(b"unlimited") | None => None,
        Some(w) => super::parse_u64(w),
    };
    let soft = one(words.next());
    let hard = one(words.next());
    Rlimit { soft, hard }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixture() {
        let limits = parse(include_bytes!("../../tests/fixtures/limits.txt"));
        assert_eq!(limits.nofile.soft, Some(1024));
        assert_eq!(limits.nofile.hard, Some(524_288));
        assert_eq!(limits.nproc.soft, Some(96_365));
        assert_eq!(limits.nproc.hard, Some(96_365));
    }

    #[test]
    fn unlimited() {
        let limits = parse(
            b"Max processes             unlimited            unlimited            processes\n",
        );
        assert_eq!(
            limits.nproc,
            Rlimit {
                soft: None,
                hard: None
            }
        );
    }
}
