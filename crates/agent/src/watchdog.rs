//! systemd's notify protocol (issue 16: a stalled stage is restarted, not only reported).
//! Under a unit with `Type=notify` the agent says `READY=1` once it serves; with
//! `WatchdogSec=` it also says `WATCHDOG=1` every half of that while no stage is stalled
//! ([`crate::health::Heartbeats::stalled`]). A stalled stage stops the pings (and says so
//! in `STATUS=`), so systemd kills the agent and, with `Restart=on-failure`, starts it again
//! once `WatchdogSec` passes without one. `STOPPING=1` on a clean stop. Without
//! `NOTIFY_SOCKET` (not under systemd) nothing is sent; the same stalls are in `/healthz`
//! for a Kubernetes liveness probe.

use crate::daemon::Shared;
use sd_notify::NotifyState;
use std::sync::Arc;
use std::time::Duration;

/// Says `READY=1`, then pings the watchdog while every stage beats. Never returns.
pub async fn run(shared: Arc<Shared>) {
    if let Err(error) = sd_notify::notify(false, &[NotifyState::Ready]) {
        tracing::warn!(error = %error, "cannot tell systemd the agent is ready");
    }
    let mut usec = 0;
    if !sd_notify::watchdog_enabled(false, &mut usec) || usec == 0 {
        return std::future::pending().await;
    }
    let every = Duration::from_micros(usec / 2).max(Duration::from_millis(100));
    tracing::info!(
        watchdog_ms = usec / 1000,
        "systemd watchdog on: pinged while no stage is stalled"
    );
    let mut was_stalled = false;
    loop {
        let stalled = shared.heartbeats.stalled();
        if stalled.is_empty() {
            let mut states = vec![NotifyState::Watchdog];
            if was_stalled {
                states.push(NotifyState::Status("every stage running"));
            }
            let _ = sd_notify::notify(false, &states);
        } else if !was_stalled {
            let names: Vec<&str> = stalled.iter().map(|s| s.name.as_str()).collect();
            let status = format!("stalled: {}", names.join(", "));
            tracing::error!(
                stages = %names.join(", "),
                "stage stalled: no more watchdog pings, so systemd restarts the agent"
            );
            let _ = sd_notify::notify(false, &[NotifyState::Status(&status)]);
        }
        was_stalled = !stalled.is_empty();
        tokio::time::sleep(every).await;
    }
}

/// Says `STOPPING=1` (a no-op without systemd).
pub fn stopping() {
    let _ = sd_notify::notify(false, &[NotifyState::Stopping]);
}
