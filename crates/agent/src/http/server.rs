//! The accept loop: axum's router served over hyper with limits no client can get around.
//!
//! - At most `max_connections` connections at once, and never more than the fds left after
//!   the sampler and the store take theirs ([`connection_cap`]): a connection beyond the cap
//!   is closed at accept, so no number of clients can make the writer fail to open a file
//!   (a hole in the history).
//! - A client must send a request's headers within `header_timeout` (slow-loris), and a
//!   request is answered within `request_timeout` (the body read included), else 503.
//! - An `accept` error (EMFILE, ENFILE, ...) backs off instead of spinning, and is logged
//!   once a minute with a count.

use crate::daemon::Shared;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// Fds kept for everything but HTTP: the store (database, WAL, shm, one read-only
/// connection per detection run and API request), the sampler's /proc and netlink reads,
/// evidence capture, logs.
pub const RESERVED_FDS: u64 = 64;

/// The limits of the HTTP server.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub request_timeout: Duration,
}

/// The connection cap: the configured maximum, but at most half of the fds the process may
/// still open beyond [`RESERVED_FDS`] (each connection may need a second fd for its store
/// read), and at least 1.
pub fn connection_cap(configured: usize, nofile_soft_limit: Option<u64>) -> usize {
    let budget = nofile_soft_limit.map_or(u64::MAX, |limit| limit.saturating_sub(RESERVED_FDS) / 2);
    (configured as u64).min(budget).max(1) as usize
}

/// The process's soft `RLIMIT_NOFILE`, when it can be read and is finite.
pub fn nofile_soft_limit() -> Option<u64> {
    let limits = std::fs::read("/proc/self/limits").ok()?;
    leakwatch_proc::parse::limits::parse(&limits).nofile.soft
}

/// Serves `app` on `listener` until `until` completes, then lets open connections finish
/// for up to five seconds.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shared: Arc<Shared>,
    until: impl Future<Output = ()>,
) {
    let stats = &shared.stats;
    let cap = connection_cap(limits.max_connections, nofile_soft_limit());
    tracing::info!(max_connections = cap, "HTTP connections capped");
    let permits = Arc::new(Semaphore::new(cap));
    let graceful = GracefulShutdown::new();
    let mut errors_logged_at: Option<Instant> = None;
    let mut errors_since_log = 0u64;
    tokio::pin!(until);
    loop {
        let accepted = tokio::select! {
            () = &mut until => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _peer)) => stream,
            Err(error) => {
                stats.http_accept_errors.fetch_add(1, Ordering::Relaxed);
                errors_since_log += 1;
                if errors_logged_at.is_none_or(|at| at.elapsed() > Duration::from_secs(60)) {
                    tracing::error!(error = %error, count = errors_since_log, "HTTP accept failing");
                    errors_logged_at = Some(Instant::now());
                    errors_since_log = 0;
                }
                // EMFILE leaves the connection in the backlog: waiting, not spinning.
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            stats.http_refused.fetch_add(1, Ordering::Relaxed);
            drop(stream);
            continue;
        };
        let service = TowerToHyperService::new(app.clone());
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout)
            .serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            // Errors here are the client's (reset, timeout, garbage): nothing to report.
            let _ = connection.await;
            drop(permit);
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(Duration::from_secs(5)) => {
            tracing::warn!("HTTP connections still open after 5s; stopping anyway");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::connection_cap;

    #[test]
    fn the_cap_leaves_fds_for_sampling_and_the_store() {
        assert_eq!(connection_cap(128, Some(1024)), 128);
        // RLIMIT_NOFILE 256: (256 - 64) / 2 = 96 connections at most.
        assert_eq!(connection_cap(128, Some(256)), 96);
        assert_eq!(connection_cap(128, Some(40)), 1);
        assert_eq!(connection_cap(128, None), 128);
        assert_eq!(connection_cap(4, Some(1 << 20)), 4);
    }
}
