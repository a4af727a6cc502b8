//! Which code creates the threads and file descriptors of a process (issue 14), for native
//! code: C, C++, Rust, and Go. One eBPF program on the raw tracepoint `sys_exit` sends each
//! successful `clone`/`clone3`/`fork` and each call that returns a new fd of the watched
//! processes, with the creating thread's user stack (the kernel's walk along frame pointers
//! and the words above the stack pointer), through a ring buffer; user space aggregates
//! them by stack, recovers walks that broke by scanning for return addresses, follows each
//! created thread or fd to the end of the window (still there, or gone), and names the
//! frames from the processes' own ELF symbols and debug info (blazesym).
//!
//! libbpf-rs loads an object compiled from `bpf/creation.bpf.c` by clang in the normal
//! build (`build.rs`): no shell, no bpftrace, nothing compiled at run time.
//!
//! [`sites`] ranks and renders what a trace found; it does no I/O.

pub mod sites;
mod stacks;
mod symbols;
mod trace;

pub use sites::{Frame, Kind, Site, Traced};
pub use trace::{available, trace, Limits, MAX_PIDS, MAX_WINDOW};

/// Why a trace cannot run here, said so a person can act on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unavailable(pub String);

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Unavailable {}
