//! One process-wide "stop" flag, set by the termination signals a command chooses to catch.
//!
//! The handler only stores to an atomic (signal-hook's `flag::register`, which installs it
//! with `SA_RESTART`), so blocking calls carry on and each wait loop polls [`received`] (or
//! the flag [`install`] returns) and cleans up before the process exits: `leakwatch check`
//! stops its server and workload, `leakwatch run` its command, `leakwatch top` restores the
//! terminal.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};

/// A termination signal that can be turned into the flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGINT (Ctrl-C).
    Interrupt,
    /// SIGTERM.
    Terminate,
    /// SIGHUP (the terminal went away).
    Hangup,
}

impl Signal {
    fn number(self) -> libc::c_int {
        match self {
            Signal::Interrupt => libc::SIGINT,
            Signal::Terminate => libc::SIGTERM,
            Signal::Hangup => libc::SIGHUP,
        }
    }
}

static FLAG: LazyLock<Arc<AtomicBool>> = LazyLock::new(|| Arc::new(AtomicBool::new(false)));

/// Makes each of `signals` set the process-wide flag instead of ending the process, and
/// returns the flag. Installing again (other signals, or the same) adds handlers for the
/// same flag. The process may set the flag itself too, to stop its own loops.
pub fn install(signals: &[Signal]) -> &'static AtomicBool {
    for signal in signals {
        // Fails only for signals that cannot be caught (SIGKILL, SIGSTOP): none of these.
        let _ = signal_hook::flag::register(signal.number(), Arc::clone(&FLAG));
    }
    flag()
}

/// The flag, whether or not any handler was installed.
pub fn flag() -> &'static AtomicBool {
    &FLAG
}

/// Whether one of the installed signals arrived (or the flag was set otherwise).
pub fn received() -> bool {
    FLAG.load(Ordering::SeqCst)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caught_signal_sets_the_flag_and_does_not_end_the_process() {
        let flag = install(&[Signal::Hangup]);
        assert!(!received());
        let sent = std::process::Command::new("kill")
            .args(["-HUP", &std::process::id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !received() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(flag.load(Ordering::SeqCst));
        flag.store(false, Ordering::SeqCst);
    }
}
