//! Thin, allocation-free wrappers over the few syscalls the sampler makes.
//!
//! The sampler opens tens of thousands of small procfs files per pass. `std::fs` would build
//! a `PathBuf` and walk the whole path from `/` each time; here every read is `openat`
//! relative to an already open `/proc/PID` directory, into a buffer reused across reads.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// An open directory (or `O_PATH` handle), closed on drop.
pub struct Dir(OwnedFd);

impl Dir {
    pub fn open(path: &CStr) -> io::Result<Dir> {
        Dir::open_at(libc::AT_FDCWD, path)
    }

    pub fn open_at(parent: RawFd, name: &CStr) -> io::Result<Dir> {
        // SAFETY: `name` is NUL-terminated; the returned fd is owned by the new `Dir`.
        let fd = unsafe {
            libc::openat(
                parent,
                name.as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd was just returned by openat and is not owned elsewhere.
        Ok(Dir(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    pub fn fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }

    /// Reads the file `name` under this directory into `buf` (cleared first).
    pub fn read(&self, name: &CStr, buf: &mut Vec<u8>) -> io::Result<()> {
        read_at(self.fd(), name, buf)
    }

    /// Reads the symlink `name` under this directory into `buf` (cleared first).
    pub fn readlink(&self, name: &CStr, buf: &mut Vec<u8>) -> io::Result<()> {
        buf.clear();
        if buf.capacity() < 256 {
            buf.reserve(256);
        }
        loop {
            // SAFETY: the pointer and capacity describe `buf`'s allocation.
            let n = unsafe {
                libc::readlinkat(
                    self.fd(),
                    name.as_ptr(),
                    buf.as_mut_ptr().cast(),
                    buf.capacity(),
                )
            };
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            let n = n as usize;
            if n < buf.capacity() {
                // SAFETY: readlinkat initialised the first n bytes.
                unsafe { buf.set_len(n) };
                return Ok(());
            }
            // Possibly truncated: grow and try again.
            buf.reserve(buf.capacity() * 2);
        }
    }

    /// `st_size` of `name` (not following a final symlink).
    pub fn stat_size(&self, name: &CStr) -> io::Result<u64> {
        let mut stat = std::mem::MaybeUninit::<libc::stat>::uninit();
        // SAFETY: `stat` is a valid out-pointer; the struct is initialised on success.
        let rc = unsafe {
            libc::fstatat(
                self.fd(),
                name.as_ptr(),
                stat.as_mut_ptr(),
                libc::AT_SYMLINK_NOFOLLOW,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fstatat succeeded.
        Ok(unsafe { stat.assume_init() }.st_size as u64)
    }

    /// Lists the entries of this directory whose names are decimal numbers (pids, tids, fd
    /// numbers) into `out`, using `buf` as the getdents buffer. Order is the kernel's.
    pub fn numeric_entries(&self, out: &mut Vec<u32>, buf: &mut Vec<u8>) -> io::Result<()> {
        out.clear();
        buf.clear();
        buf.resize(32 * 1024, 0);
        // Rewind: a long-lived `Dir` (the `/proc` handle) is listed once per pass.
        // SAFETY: lseek on an owned fd has no memory effects.
        if unsafe { libc::lseek(self.fd(), 0, libc::SEEK_SET) } < 0 {
            return Err(io::Error::last_os_error());
        }
        loop {
            // SAFETY: the buffer is valid for `buf.len()` bytes.
            let n = unsafe {
                libc::syscall(libc::SYS_getdents64, self.fd(), buf.as_mut_ptr(), buf.len())
            };
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            if n == 0 {
                return Ok(());
            }
            let mut offset = 0usize;
            let n = n as usize;
            while offset + 19 <= n {
                // struct linux_dirent64 { u64 d_ino; i64 d_off; u16 d_reclen; u8 d_type; char d_name[]; }
                let reclen = u16::from_ne_bytes([buf[offset + 16], buf[offset + 17]]) as usize;
                if reclen == 0 || offset + reclen > n {
                    break;
                }
                let name = &buf[offset + 19..offset + reclen];
                let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())];
                if let Some(number) = crate::parse::parse_u64(name) {
                    if let Ok(number) = u32::try_from(number) {
                        out.push(number);
                    }
                }
                offset += reclen;
            }
        }
    }
}

/// Reads the whole file `name` relative to `dir` into `buf` (cleared first).
pub fn read_at(dir: RawFd, name: &CStr, buf: &mut Vec<u8>) -> io::Result<()> {
    buf.clear();
    // SAFETY: `name` is NUL-terminated; the fd is closed below on every path.
    let fd = unsafe { libc::openat(dir, name.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd was just opened and is owned here.
    let file = unsafe { OwnedFd::from_raw_fd(fd) };
    if buf.capacity() < 4096 {
        buf.reserve(4096);
    }
    loop {
        if buf.len() == buf.capacity() {
            buf.reserve(buf.capacity());
        }
        let spare = buf.capacity() - buf.len();
        // SAFETY: writes at most `spare` bytes into the uninitialised tail of `buf`.
        let n = unsafe {
            libc::read(
                file.as_raw_fd(),
                buf.as_mut_ptr().add(buf.len()).cast(),
                spare,
            )
        };
        if n < 0 {
            let error = io::Error::last_os_error();
            if error.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(error);
        }
        if n == 0 {
            return Ok(());
        }
        // SAFETY: read initialised n more bytes.
        unsafe { buf.set_len(buf.len() + n as usize) };
    }
}

/// A NUL-terminated path built in a reusable buffer, for names like `task/1234/comm`.
#[derive(Default)]
pub struct PathBuf(Vec<u8>);

impl PathBuf {
    pub fn build(&mut self, parts: &[Part<'_>]) -> &CStr {
        self.0.clear();
        for part in parts {
            match part {
                Part::Str(s) => self.0.extend_from_slice(s.as_bytes()),
                Part::Num(n) => {
                    let mut digits = [0u8; 20];
                    let mut i = digits.len();
                    let mut n = *n;
                    loop {
                        i -= 1;
                        digits[i] = b'0' + (n % 10) as u8;
                        n /= 10;
                        if n == 0 {
                            break;
                        }
                    }
                    self.0.extend_from_slice(&digits[i..]);
                }
            }
        }
        self.0.push(0);
        CStr::from_bytes_with_nul(&self.0).expect("path parts contain no NUL")
    }
}

pub enum Part<'a> {
    Str(&'a str),
    Num(u64),
}

/// CPU time of the calling thread, in microseconds: excludes other threads of the agent.
pub fn thread_cpu_us() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1000
}

pub fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as u64
    } else {
        100
    }
}

pub fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if size > 0 {
        size as u64
    } else {
        4096
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_building() {
        let mut path = PathBuf::default();
        assert_eq!(
            path.build(&[Part::Str("task/"), Part::Num(1234), Part::Str("/comm")])
                .to_bytes(),
            b"task/1234/comm"
        );
        assert_eq!(path.build(&[Part::Num(0)]).to_bytes(), b"0");
        assert_eq!(
            path.build(&[Part::Num(u64::MAX)]).to_bytes(),
            b"18446744073709551615"
        );
    }

    #[test]
    fn lists_own_fds_and_reads_files() {
        let dir = Dir::open(c"/proc/self").unwrap();
        let fd_dir = Dir::open_at(dir.fd(), c"fd").unwrap();
        let (mut fds, mut buf) = (Vec::new(), Vec::new());
        fd_dir.numeric_entries(&mut fds, &mut buf).unwrap();
        assert!(fds.contains(&0) || fds.contains(&1) || fds.contains(&2));
        assert!(fds.contains(&(fd_dir.fd() as u32)));
        // A second listing of the same handle sees the same entries (it rewinds). Other
        // test threads open fds meanwhile, so use a directory nobody else touches.
        let scratch = tempfile::tempdir().unwrap();
        for name in ["7", "42", "not-a-number", "1000000"] {
            std::fs::write(scratch.path().join(name), b"").unwrap();
        }
        let path = std::ffi::CString::new(scratch.path().to_str().unwrap()).unwrap();
        let listed = Dir::open(&path).unwrap();
        for _ in 0..2 {
            listed.numeric_entries(&mut fds, &mut buf).unwrap();
            fds.sort_unstable();
            assert_eq!(fds, vec![7, 42, 1_000_000]);
        }
        let mut content = Vec::new();
        dir.read(c"stat", &mut content).unwrap();
        assert!(content.ends_with(b"\n"));
        let error = dir.read(c"no-such-file", &mut content).unwrap_err();
        assert_eq!(error.raw_os_error(), Some(libc::ENOENT));
    }
}
