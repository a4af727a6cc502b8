//! Which code creates the threads and file descriptors of a process (issue 14), for native
//! code: C, C++, Rust, and Go's OS threads. An eBPF program on two raw tracepoints —
//! `task_newtask` in the creating thread, `sys_exit` of the calls that return a new fd —
//! counts the creations of the watched processes by user stack (walked by the kernel along
//! frame pointers), in kernel maps of fixed size; at the end of the window the stacks are
//! symbolised from the processes' own ELF symbol tables and debug info (blazesym).
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
