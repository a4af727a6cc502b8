//! How leakwatch runs the programs it is configured with (evidence capture commands,
//! restart mitigations, the exec alert channel, `leakwatch check`'s workload), in one place:
//! [`Program`] takes an argv (never a shell), a stdin policy, a timeout and an output cap
//! (keeping the head or the tail, the rest counted), starts the program in a process group
//! of its own and kills that whole group at the timeout or when the caller gives up, so
//! nothing it started outlives it; [`Finished`] says how it ended ([`Exit`]) in words
//! ([`Finished::describe`]). Beside it: [`signals`], one SIGINT/SIGTERM(/SIGHUP) to atomic
//! flag installer for the loops that must stop cleanly, and [`quote`], one shell quoter for
//! the command lines leakwatch shows people to copy ("reproduce with", `$ argv` headers).
//!
//! The only `unsafe` is in `group.rs`: `kill(2)` on a process group and the
//! parent-death signal set between fork and exec; each block says why it is sound.

#![deny(unsafe_code)]

mod group;
pub mod quote;
mod run;
pub mod signals;

pub use group::{kill_group, own_group, terminate_group};
pub use run::{expand, Captured, Exit, Finished, Keep, Program};
