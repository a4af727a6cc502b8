//! Reads, for every process on a Linux host, exactly the resources that leak: threads by
//! name group, file descriptors by kind, TCP sockets by state and peer, memory, and the
//! limits each of them runs into.
//!
//! - [`parse`] turns the bytes of `/proc` and `/sys` files into values. It does no I/O, so
//!   it is tested on fixture files and fuzzed.
//! - [`sockets`] dumps the host's socket table through netlink sock_diag (falling back to
//!   `/proc/net`), one dump per pass.
//! - [`Sampler`] makes one pass over the host, caching what rarely changes (thread names by
//!   TID, fd targets by fd number) with bounded staleness, and evicting the state of every
//!   process that exits.
//! - [`model`] is the sample those produce: plain data.
//!
//! A process that exits mid-read, or whose fds another user owns, never fails the pass: it
//! is reported with what could be read and a [`model::Partial`] marker for each missing part.

pub mod items;
pub mod model;
pub mod parse;
pub mod sampler;
pub mod sockets;
mod sys;

pub use model::*;
pub use sampler::{Options, Sampler, Selection};
