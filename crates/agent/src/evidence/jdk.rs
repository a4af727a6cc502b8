//! The JDK's own tools (jcmd, jfr) for a JVM, run as the JVM's user and without the
//! agent's capabilities. The tool is found beside the JVM's `java`, which the JVM's user
//! may own: run with the agent's privileges, a `jcmd` of theirs would have them. And the
//! JVM's attach mechanism accepts only its own user or root anyway.

use crate::listing;
use leakwatch_exec::{Finished, Keep, Program};
use std::time::Duration;

/// `jcmd PID ARGS...` with the JVM's own jcmd, bounded like any capture step, as the JVM's
/// user ([`run_as_jvm_user`]).
pub fn run_jcmd(
    jcmd: &std::path::Path,
    pid: u32,
    args: &[&str],
    timeout: Duration,
    cap: usize,
) -> Finished {
    let mut argv = vec![jcmd.display().to_string(), pid.to_string()];
    argv.extend(args.iter().map(|a| a.to_string()));
    run_as_jvm_user(pid, argv, timeout, cap)
}

/// Runs a JDK tool (jcmd, jfr) for the JVM `pid` as the JVM's own user, without the
/// agent's capabilities (see the module's documentation). A non-root agent runs it only
/// for JVMs of its own user.
pub fn run_as_jvm_user(pid: u32, argv: Vec<String>, timeout: Duration, cap: usize) -> Finished {
    crate::health::beat();
    let program = Program::new(argv.clone(), timeout)
        .cap(cap, Keep::Head)
        .merged()
        .no_ambient_caps();
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    let refused = |why: String| Finished {
        program: argv.first().cloned().unwrap_or_default(),
        exit: leakwatch_exec::Exit::NotStarted(why),
        stdout: Default::default(),
        stderr: Default::default(),
        elapsed: Duration::ZERO,
        timeout,
    };
    match listing::owner(pid) {
        None => refused(format!("pid {pid} is gone")),
        Some((uid, _)) if uid == me => program.run(),
        Some((uid, gid)) if me == 0 => program.as_user(uid, gid).run(),
        Some((uid, _)) => refused(format!(
            "not run: the JVM runs as uid {uid}; its attach mechanism accepts only its own \
             user or root, and the agent runs as uid {me}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;

    #[test]
    fn a_jdk_tool_runs_as_the_jvms_user_without_the_agents_capabilities() {
        // A process of another user (nobody) stands in for the JVM.
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        let mut other = std::process::Command::new("sleep");
        other.arg("30");
        if root {
            other.uid(65534).gid(65534);
        }
        let mut other = other.spawn().unwrap();
        let out = run_as_jvm_user(
            other.id(),
            vec![
                "sh".into(),
                "-c".into(),
                "id -u; grep CapEff /proc/self/status".into(),
            ],
            Duration::from_secs(10),
            4096,
        );
        let _ = other.kill();
        let _ = other.wait();
        let text = out.stdout.text().into_owned();
        if root {
            assert!(out.success(), "{}", out.describe());
            assert!(text.starts_with("65534\n"), "{text}");
            assert!(text.contains("CapEff:\t0000000000000000"), "{text}");
        } else {
            // Not root: the same user runs it; another user's JVM is refused.
            assert!(out.success(), "{}", out.describe());
        }
        // A vanished process: not run.
        let gone = run_as_jvm_user(u32::MAX, vec!["true".into()], Duration::from_secs(1), 64);
        assert!(gone.describe().contains("is gone"), "{}", gone.describe());
    }
}
