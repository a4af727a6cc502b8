//! systemd's notify protocol, spoken to a socket the test binds where systemd's would be
//! (issue 16; there is no systemd here, the protocol is the same datagrams): a healthy agent
//! says READY=1 and pings the watchdog every half of WATCHDOG_USEC; an agent whose
//! detection stage is stuck (failpoint `stall:lw-detect`) stops pinging once the stage is
//! stalled and says which in STATUS=, so systemd would restart it; a clean stop says
//! STOPPING=1.

use leakwatch_testkit::{free_port, workspace_bin, Agent};
use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

struct Watched {
    agent: Agent,
    socket: UnixDatagram,
    _dir: tempfile::TempDir,
}

/// An agent started as systemd starts a `Type=notify` service with `WatchdogSec=1s`:
/// NOTIFY_SOCKET, WATCHDOG_USEC, and WATCHDOG_PID set to its own pid (a shell that
/// `exec`s it keeps the pid).
fn watched(env: &[(&str, &str)]) -> Watched {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let port = free_port();
    let config = dir.path().join("leakwatch.toml");
    std::fs::write(
        &config,
        format!(
            "[agent]\ninterval = \"1s\"\nlisten = \"127.0.0.1:{port}\"\nstall_after = \"4s\"\n"
        ),
    )
    .unwrap();
    let data = dir.path().join("data");
    let child = Command::new("sh")
        .arg("-c")
        .arg("WATCHDOG_PID=$$ exec \"$0\" \"$@\"")
        .arg(workspace_bin("leakwatch"))
        .args(["agent", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(&data)
        .env("NOTIFY_SOCKET", &path)
        .env("WATCHDOG_USEC", "1000000")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Watched {
        agent: Agent::wrap(child, port, data),
        socket,
        _dir: dir,
    }
}

/// The messages received within `seconds`, with when each arrived.
fn messages(socket: &UnixDatagram, seconds: u64) -> Vec<(Duration, String)> {
    let started = Instant::now();
    let mut out = Vec::new();
    let mut buffer = [0u8; 4096];
    while started.elapsed() < Duration::from_secs(seconds) {
        if let Ok(n) = socket.recv(&mut buffer) {
            out.push((
                started.elapsed(),
                String::from_utf8_lossy(&buffer[..n]).into_owned(),
            ));
        }
    }
    out
}

#[test]
fn systemd_hears_ready_then_watchdog_pings_that_stop_when_a_stage_stalls() {
    let healthy = watched(&[]);
    let stuck = watched(&[("LEAKWATCH_FAILPOINT", "stall:lw-detect")]);

    let heard = messages(&healthy.socket, 6);
    assert!(
        heard.first().is_some_and(|(_, m)| m.contains("READY=1")),
        "{heard:?}"
    );
    let pings = heard
        .iter()
        .filter(|(_, m)| m.contains("WATCHDOG=1"))
        .count();
    assert!(
        pings >= 8,
        "{pings} pings in 6 s at WatchdogSec=1s: {heard:?}"
    );

    // The stuck agent: ready, pings while the stage is within its bound (4 s), then a
    // STATUS naming it and no ping after.
    let heard = messages(&stuck.socket, 14);
    assert!(
        heard.first().is_some_and(|(_, m)| m.contains("READY=1")),
        "{heard:?}"
    );
    let stalled_at = heard
        .iter()
        .find(|(_, m)| m.contains("STATUS=stalled: lw-detect"))
        .map(|(at, _)| *at)
        .unwrap_or_else(|| panic!("no STATUS naming the stalled stage: {heard:?}"));
    let after: Vec<_> = heard
        .iter()
        .filter(|(at, m)| *at > stalled_at && m.contains("WATCHDOG=1"))
        .collect();
    assert!(after.is_empty(), "pinged after the stall: {after:?}");
    assert!(
        Duration::from_secs(14) - stalled_at > Duration::from_secs(3),
        "the stall came too late to see the pings stop: {stalled_at:?}"
    );
    assert!(
        heard
            .iter()
            .any(|(at, m)| *at < stalled_at && m.contains("WATCHDOG=1")),
        "no ping before the stall: {heard:?}"
    );

    // A clean stop says so.
    // SAFETY: signalling our own child.
    unsafe { libc::kill(healthy.agent.child.id() as i32, libc::SIGTERM) };
    let heard = messages(&healthy.socket, 5);
    assert!(
        heard.iter().any(|(_, m)| m.contains("STOPPING=1")),
        "{heard:?}"
    );
    drop(stuck);
}
