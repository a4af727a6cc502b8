//! Test-time leak checks: fail a test that leaves threads, file descriptors or sockets
//! behind, with a report that names them.
//!
//! Incident 001 (a client that leaked one CLOSE_WAIT connection per 403-with-a-body) was
//! caught for good by a before/after check of leased connections around every test. This
//! crate is that check for everything a process holds, in three shapes:
//!
//! - [`Guard`]: an inventory taken at the start of a test and compared at the end. Reports
//!   each thread (by name), fd (by link target: `/tmp/x.log`, `pipe:[42]`) and socket (by
//!   TCP state and peer) that appeared and did not go away within a bounded settle time.
//!   ```
//!   let guard = leakcheck::Guard::new();
//!   let file = tempfile::tempfile().unwrap();
//!   drop(file);
//!   guard.check().expect("nothing left behind");
//!   ```
//!   or, for a `#[test]`, [`assert_no_leaks`]`(|| ...)` which panics with the report.
//! - [`Config::repeat`] (or [`repeat`]): runs code in warm-up and measured rounds and flags
//!   what grows round after round, with the rules `leakwatch check` applies to a whole
//!   service ([`rules`]). One-time initialisation is not a leak there.
//! - [`Suite`]: for parallel tests in one process, where a per-test guard cannot tell whose
//!   resources are whose, a runner for a `harness = false` test target that checks once
//!   after all tests (goleak's `VerifyTestMain`).
//!
//! A leak report reads like this (from this crate's own tests):
//! ```text
//! leakcheck: 1 resource appeared and was still there after 0.3s:
//!   sockets (1 new):
//!     fd 7 -> socket:[2218415] TCP CLOSE_WAIT 127.0.0.1:50794 -> 127.0.0.1:41251
//! ```
//!
//! # Ignoring what is meant to stay
//! [`Config::ignore`] takes the rules of `leakwatch check --ignore`:
//! ```
//! let guard = leakcheck::Config::new()
//!     .ignore("threads:tokio-runtime-*")
//!     .ignore("fds:/var/log/*")
//!     .ignore("sockets:ESTABLISHED -> 127.0.0.1:5432")
//!     .guard();
//! guard.assert();
//! ```
//!
//! # Parallel tests
//! Cargo runs the tests of one binary on parallel threads of one process. Guards take a
//! process-wide turn, so guarded tests run one at a time and do not blame each other; tests
//! without a guard in the same binary still run alongside. Put guarded tests in their own
//! integration-test file (each file is its own binary) and guard every test in it, or use
//! [`Suite`].
//!
//! Linux only: everything is read from `/proc/self` and the socket table (netlink
//! sock_diag, falling back to `/proc/net`).

mod guard;
pub mod inventory;
mod rounds;
pub mod rules;
pub mod settle;
mod suite;

pub use guard::{assert_no_leaks, evidence, new_items, Config, Guard, Leaked, Report};
pub use rounds::repeat;
pub use suite::{Outcome, Suite};
