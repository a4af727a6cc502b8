//! Process groups: a child leads its own, and the whole group is signalled together.

use std::os::unix::process::CommandExt;
use std::process::Command;

/// Makes the child started from `command` the leader of a new process group (its pid is
/// the group id), so it and everything it starts can be signalled together, and a
/// terminal's Ctrl-C reaches only leakwatch, which then stops them.
///
/// With `die_with_parent`, the kernel also SIGKILLs the child when the thread that spawns
/// it ends without cleaning up (`PR_SET_PDEATHSIG`: it fires on the spawning *thread's*
/// exit, so spawn from a thread that lives as long as the child). Its own children are not
/// covered by that; the group kill is.
pub fn own_group(command: &mut Command, die_with_parent: bool) {
    command.process_group(0);
    if die_with_parent {
        kill_when_parent_dies(command);
    }
}

#[allow(unsafe_code)]
fn kill_when_parent_dies(command: &mut Command) {
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: only async-signal-safe calls (prctl, getppid, _exit) run between fork and
    // exec, and the closure touches no memory but its captured pid.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died before prctl took effect.
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
}

/// SIGKILL to the process group led by `pid` (see [`own_group`]). Also reaches the
/// group's other members after the leader has exited.
pub fn kill_group(pid: u32) {
    signal_group(pid, libc::SIGKILL);
}

/// SIGTERM to the process group led by `pid`.
pub fn terminate_group(pid: u32) {
    signal_group(pid, libc::SIGTERM);
}

#[allow(unsafe_code)]
fn signal_group(pid: u32, signal: libc::c_int) {
    // kill(0) would signal our own group and kill(-1) every process we may signal.
    let Ok(pgid) = libc::pid_t::try_from(pid) else {
        return;
    };
    if pgid <= 1 {
        return;
    }
    // SAFETY: kill has no memory preconditions; a group that is gone gives ESRCH.
    unsafe { libc::kill(-pgid, signal) };
}

/// Has `command` start without the caller's ambient capabilities.
#[allow(unsafe_code)]
pub(crate) fn clear_ambient_caps(command: &mut Command) {
    // SAFETY: prctl is async-signal-safe; the closure captures nothing.
    unsafe {
        command.pre_exec(|| {
            // EINVAL on kernels without ambient capabilities: nothing to clear then.
            let _ = libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_CLEAR_ALL,
                0,
                0,
                0,
            );
            Ok(())
        });
    }
}
