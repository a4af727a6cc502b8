//! Heap dumps, on request only (`leakwatch incident ID --capture heap-dump`), and only
//! with room for one (issue 18): the headroom check ([`super::heap::dump_headroom`]), at
//! most [`MAX_DUMPS_KEPT`] dumps kept across incidents, and twice the room when the JVM's
//! `/tmp` and the incident folder share a disk (the copy holds both at once).
//!
//! The JVM writes the dump itself, as its user and in its own mount namespace (a
//! container's): into its `/tmp`. The agent then opens it inside that namespace's root
//! following no symlink (`openat2` with `RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS`, a regular
//! file only) — the JVM's user owns that `/tmp` and could point the name at any file,
//! which the agent's capabilities would read — and copies it into the incident folder in
//! chunks, beating the stage's heartbeat between them.

use crate::config::EvidenceSection;
use crate::listing;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::time::Instant;

/// The outcome of [`heap_dumps`]: one paragraph per process.
pub struct HeapDumps {
    pub text: String,
    pub note: String,
}

/// Most JVMs of one target dumped per request.
const MAX_DUMPS: usize = 2;

/// Most heap dumps kept in all the incident folders together: each is about as large as
/// a heap.
pub const MAX_DUMPS_KEPT: usize = 2;

/// A heap dump of each JVM among `pids` (at most [`MAX_DUMPS`]) that has the headroom for
/// one ([`super::heap::dump_headroom`]), as `STEM-PID.hprof` in `dir`, an incident folder
/// under `root`.
pub fn heap_dumps(
    root: &Path,
    dir: &Path,
    pids: &[u32],
    stem: &str,
    settings: &EvidenceSection,
) -> HeapDumps {
    let cap = settings.max_output_bytes;
    let mut text = String::new();
    let mut dumped = 0;
    let mut refused = 0;
    let jvms: Vec<(u32, std::path::PathBuf)> = pids
        .iter()
        .filter_map(|&pid| listing::is_jvm(pid).map(|jcmd| (pid, jcmd)))
        .take(MAX_DUMPS)
        .collect();
    if jvms.is_empty() {
        return HeapDumps {
            text: "none of the target's processes is a JVM: a heap dump is for JVMs only \
                   (heap-growth.txt has what can be read of the others)\n"
                .into(),
            note: "no JVM".into(),
        };
    }
    for (pid, jcmd) in jvms {
        let perf = super::jdk::run_jcmd(&jcmd, pid, &["PerfCounter.print"], settings.timeout, cap);
        let heap = super::heap::parse_perf_heap(&String::from_utf8_lossy(&perf.stdout.bytes));
        let file_name = format!("leakwatch-{stem}-{pid}.hprof");
        let inside = format!("/tmp/{file_name}");
        let kept = kept_dumps(root);
        if kept.len() >= MAX_DUMPS_KEPT {
            let _ = writeln!(
                text,
                "pid {pid}: refused: {} heap dumps are kept already ({}); delete one first\n",
                kept.len(),
                kept.join(", ")
            );
            refused += 1;
            continue;
        }
        let their_tmp = Path::new(&format!("/proc/{pid}/root/tmp")).to_path_buf();
        let target_disk = free_space(&their_tmp);
        let our_disk = free_space(dir);
        // On one file system the copy needs the room twice.
        let same_disk = match (std::fs::metadata(&their_tmp), std::fs::metadata(dir)) {
            (Ok(a), Ok(b)) => a.dev() == b.dev(),
            _ => true,
        };
        // Both the JVM's /tmp and the incident folder must hold it; a tmpfs /tmp would
        // hold it in memory, the one thing the JVM is short of.
        let free = match (target_disk, our_disk) {
            (Some((_, true)), _) => {
                let _ = writeln!(
                    text,
                    "pid {pid}: refused: the JVM's /tmp is a tmpfs, so the dump would be held \
                     in memory\n"
                );
                refused += 1;
                continue;
            }
            (Some((a, false)), Some((b, _))) if same_disk => Some(a.min(b) / 2),
            (Some((a, false)), Some((b, _))) => Some(a.min(b)),
            _ => None,
        };
        let needed = match super::heap::dump_headroom(heap, free) {
            Ok(needed) => needed,
            Err(reason) => {
                let _ = writeln!(text, "pid {pid}: {reason}\n");
                refused += 1;
                continue;
            }
        };
        let heap = heap.expect("dump_headroom checked it");
        let _ = writeln!(
            text,
            "pid {pid}: heap {} of {} in use; the dump may need up to {}",
            leakwatch_detect::format::bytes(heap.used as f64),
            leakwatch_detect::format::bytes(heap.max as f64),
            leakwatch_detect::format::bytes(needed as f64)
        );
        let started = Instant::now();
        let out = super::jdk::run_jcmd(
            &jcmd,
            pid,
            &["GC.heap_dump", &inside],
            settings.heap_dump_timeout(),
            cap,
        );
        let name = format!("{stem}-{pid}.hprof");
        let moved = if out.success() {
            move_out_of(pid, &file_name, &dir.join(&name))
        } else {
            let _ = remove_in_tmp_of(pid, &file_name);
            Err(format!(
                "jcmd GC.heap_dump failed: {}: {}",
                out.describe(),
                String::from_utf8_lossy(&out.stdout.bytes).trim()
            ))
        };
        match moved {
            Ok(bytes) => {
                dumped += 1;
                let _ = writeln!(
                    text,
                    "pid {pid}: heap dump written in {:.1} s: {name} ({})\n",
                    started.elapsed().as_secs_f64(),
                    leakwatch_detect::format::bytes(bytes as f64)
                );
            }
            Err(error) => {
                let _ = writeln!(text, "pid {pid}: {error}\n");
            }
        }
    }
    HeapDumps {
        text,
        note: format!("{dumped} dumped, {refused} refused"),
    }
}

/// The heap dumps kept in the incident folders under `root` (`ID/NAME`).
fn kept_dumps(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for incident in std::fs::read_dir(root).into_iter().flatten().flatten() {
        for file in std::fs::read_dir(incident.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = file.file_name().to_string_lossy().into_owned();
            if name.ends_with(".hprof") {
                out.push(format!("{}/{name}", incident.file_name().to_string_lossy()));
            }
        }
    }
    out.sort();
    out
}

/// Free bytes of the file system holding `path` (for an unprivileged user), and whether it
/// is a tmpfs.
fn free_space(path: &Path) -> Option<(u64, bool)> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: `c` is a valid NUL-terminated path and `stat` a writable statfs buffer.
    let mut stat: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statfs(c.as_ptr(), &mut stat) } != 0 {
        return None;
    }
    let free = (stat.f_bavail as u64).saturating_mul(stat.f_bsize as u64);
    // `f_type`'s integer type differs between platforms.
    #[allow(clippy::unnecessary_cast)]
    let tmpfs = stat.f_type as i64 == libc::TMPFS_MAGIC as i64;
    Some((free, tmpfs))
}

/// Opens `path` (relative: `tmp/NAME`) inside the root of `pid`'s mount namespace with
/// `flags`, following no symlink and no magic link on the way.
fn open_in_root_of(pid: u32, path: &str, flags: i32) -> std::io::Result<File> {
    let root = File::open(format!("/proc/{pid}/root"))?;
    let path = std::ffi::CString::new(path)?;
    // SAFETY: open_how is plain data; zeroed is its documented default.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (flags | libc::O_NOFOLLOW | libc::O_CLOEXEC) as u64;
    how.resolve = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS;
    // SAFETY: a valid directory fd, a NUL-terminated path, and `how` with its size.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            root.as_raw_fd(),
            path.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this fd, owned by nothing else.
    Ok(unsafe { File::from_raw_fd(fd as i32) })
}

/// Removes `/tmp/NAME` of `pid`'s mount namespace, through a `/tmp` opened as above.
fn remove_in_tmp_of(pid: u32, name: &str) -> std::io::Result<()> {
    let tmp = open_in_root_of(pid, "tmp", libc::O_PATH | libc::O_DIRECTORY)?;
    let name = std::ffi::CString::new(name)?;
    // SAFETY: a valid directory fd and a NUL-terminated name.
    if unsafe { libc::unlinkat(tmp.as_raw_fd(), name.as_ptr(), 0) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Copies the dump `/tmp/NAME` of `pid` into `to` (a new file), then removes it.
fn move_out_of(pid: u32, name: &str, to: &Path) -> Result<u64, String> {
    let copied = copy_out_of(pid, name, to);
    let _ = remove_in_tmp_of(pid, name);
    if copied.is_err() {
        let _ = std::fs::remove_file(to);
    }
    copied
}

fn copy_out_of(pid: u32, name: &str, to: &Path) -> Result<u64, String> {
    let mut from = open_in_root_of(pid, &format!("tmp/{name}"), libc::O_RDONLY)
        .map_err(|e| format!("cannot open the dump in the JVM's /tmp: {e}"))?;
    let meta = from.metadata().map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("the dump in the JVM's /tmp is not a regular file: not read".into());
    }
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(to)
        .map_err(|e| format!("cannot create {}: {e}", to.display()))?;
    let mut buffer = vec![0u8; 8 << 20];
    let mut total: u64 = 0;
    loop {
        // Copying gigabytes is not being stuck.
        crate::health::beat();
        let n = from
            .read(&mut buffer)
            .map_err(|e| format!("cannot read the dump: {e}"))?;
        if n == 0 {
            break;
        }
        out.write_all(&buffer[..n])
            .map_err(|e| format!("cannot write {}: {e}", to.display()))?;
        total = total.saturating_add(n as u64);
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dump_replaced_by_a_symlink_is_not_read_and_a_real_one_is_copied() {
        // This process's own root and /tmp stand in for a JVM's.
        let pid = std::process::id();
        let dir = tempfile::tempdir().unwrap();
        let name = format!("leakwatch-test-{pid}-link.hprof");
        let link = Path::new("/tmp").join(&name);
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink("/etc/hostname", &link).unwrap();
        let err = move_out_of(pid, &name, &dir.path().join("out.hprof")).unwrap_err();
        assert!(err.contains("cannot open the dump"), "{err}");
        assert!(!dir.path().join("out.hprof").exists());
        assert!(
            !link.exists() && std::fs::symlink_metadata(&link).is_err(),
            "removed"
        );

        let name = format!("leakwatch-test-{pid}-real.hprof");
        let real = Path::new("/tmp").join(&name);
        std::fs::write(&real, vec![7u8; (9 << 20) + 3]).unwrap();
        let copied = move_out_of(pid, &name, &dir.path().join("real.hprof")).unwrap();
        assert_eq!(copied, (9 << 20) + 3);
        assert_eq!(
            std::fs::metadata(dir.path().join("real.hprof"))
                .unwrap()
                .len(),
            copied
        );
        assert!(!real.exists());
    }

    #[test]
    fn kept_dumps_are_counted_across_incidents() {
        let root = tempfile::tempdir().unwrap();
        for (id, file) in [("a", "x.hprof"), ("b", "y.hprof"), ("b", "threads.txt")] {
            std::fs::create_dir_all(root.path().join(id)).unwrap();
            std::fs::write(root.path().join(id).join(file), "").unwrap();
        }
        assert_eq!(kept_dumps(root.path()), ["a/x.hprof", "b/y.hprof"]);
    }
}
