//! Item-by-item reads of one process, for evidence and test-time inventories (not the
//! sampler's path, which counts through cached `openat` reads): every fd with its link text.
//! Plain `std::fs`; things that vanish while being read are skipped.

use std::io;

/// ENOENT or ESRCH: the process, thread or fd went away while it was read.
pub fn vanished(error: &io::Error) -> bool {
    matches!(error.raw_os_error(), Some(libc::ENOENT) | Some(libc::ESRCH))
}

/// The numeric entries of a `/proc` directory (pids, tids, fds), sorted.
pub fn numeric_entries(dir: &str) -> io::Result<Vec<u32>> {
    let mut numbers = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if let Some(n) = entry.file_name().to_str().and_then(|s| s.parse().ok()) {
            numbers.push(n);
        }
    }
    numbers.sort_unstable();
    Ok(numbers)
}

/// Every fd of `pid` with its `/proc/PID/fd/N` link text (`socket:[88123]`, `/tmp/x.log`),
/// by fd number. An fd closed while listed is skipped; the process being gone, or its fd
/// table unreadable, is an error.
pub fn fd_links(pid: u32) -> io::Result<Vec<(u32, String)>> {
    let dir = format!("/proc/{pid}/fd");
    let listing_self = pid == std::process::id();
    let mut links = Vec::new();
    for fd in numeric_entries(&dir)? {
        match std::fs::read_link(format!("{dir}/{fd}")) {
            Ok(target) => {
                let target = target.to_string_lossy().into_owned();
                // Listing our own fd table opens it: that fd is the reader, not the code
                // under test (it is closed again by the time this loop runs, but its number
                // was listed).
                if listing_self && target == dir {
                    continue;
                }
                links.push((fd, target));
            }
            Err(error) if vanished(&error) => {}
            Err(error) => return Err(error),
        }
    }
    Ok(links)
}
