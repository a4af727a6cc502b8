//! `/proc/PID/statm`: memory in pages, cheap for the kernel to produce (no per-thread walk
//! and no text formatting of dozens of fields, unlike `status`).

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Statm {
    pub size: u64,
    pub resident: u64,
    /// File-backed and shared-memory resident pages (RssFile + RssShmem).
    pub shared: u64,
    pub data: u64,
}

pub fn parse(bytes: &[u8]) -> Option<Statm> {
    let mut fields = super::trim(bytes).split(|&b| b == b' ');
    let mut next = || fields.next().and_then(super::parse_u64);
    let size = next()?;
    let resident = next()?;
    let shared = next()?;
    let _text = next()?;
    let _lib = next()?;
    let data = next()?;
    Some(Statm {
        size,
        resident,
        shared,
        data,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn fields() {
        let statm = super::parse(b"1509176 103204 5841 1 0 153086 0\n").unwrap();
        assert_eq!(statm.resident, 103_204);
        assert_eq!(statm.shared, 5_841);
        assert_eq!(statm.data, 153_086);
        assert_eq!(super::parse(b"1 2 3"), None);
        assert_eq!(super::parse(b""), None);
    }
}
