//! The leakwatch daemon: samples every process at a fixed interval, groups processes into
//! targets that survive restarts, writes each interval to the embedded history, and serves
//! a JSON API and `/metrics`.
//!
//! Threads: `lw-sampler` (the sampling loop), `lw-writer` (the store), and a small tokio
//! runtime for HTTP. Sampling never waits on the other two.

pub mod capacity;
pub mod config;
pub mod daemon;
mod error;
pub mod evidence;
pub mod findings;
pub mod gauges;
pub mod health;
pub mod http;
pub mod kubernetes;
pub mod listing;
pub mod naming;
pub mod processes;
pub mod supervise;
pub mod sync;
pub mod tail;
pub mod targets;
pub mod watchdog;

pub use error::{Error, Result};

/// What the CLI uses of the agent without a running agent — the named library surface. The
/// CLI otherwise talks to an agent only through leakwatch-api's types over HTTP.
/// - `leakwatch top --standalone` samples the host itself: it groups processes into targets
///   and turns their short history into findings exactly as the agent does;
/// - `leakwatch analyze` ranks findings as the agent ranks them;
/// - `leakwatch incidents --data-dir` reads incident folders while the agent is down.
pub mod standalone {
    /// Incident folders (`DATA_DIR/incidents`), read while the agent is down.
    pub mod incidents {
        pub use crate::evidence::{incidents_dir, list, load, read_file, valid_id};
    }
    pub use crate::capacity::Capacities;
    pub use crate::findings::{rank, to_series};
    pub use crate::targets::{group, RestartTracker, Targeting};
}
use std::path::Path;
use std::sync::atomic::Ordering;

/// Runs the agent in the foreground until SIGINT or SIGTERM.
pub fn run(config: config::Config, data_dir: &Path) -> Result<()> {
    let (shared, threads) = daemon::start(&config, data_dir, daemon::Mode::Host)?;
    tracing::info!(
        privileged = shared.privileged,
        data = %shared.db_path.display(),
        listen = %config.agent.listen,
        interval_s = config.agent.interval.as_secs_f64(),
        "leakwatch agent started{}",
        if shared.privileged {
            ": watching every process (root, or CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH)"
        } else {
            " without root or CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH: other users' processes are reported without fds and sockets"
        }
    );
    let stopping = shared.clone();
    let watched = shared.clone();
    let until = async move {
        // A signal, or a stage that failed and stopped the agent; meanwhile systemd hears
        // that it is ready and, while every stage beats, its watchdog pings.
        tokio::select! {
            () = watchdog::run(watched) => {}
            () = shutdown_signal() => {}
            () = async {
                while !stopping.stop.load(Ordering::Relaxed) {
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            } => {}
        }
    };
    let result = serve_http(&config, shared.clone(), until);
    watchdog::stopping();
    shared.stop.store(true, Ordering::Relaxed);
    for thread in threads {
        let _ = thread.join();
    }
    if let Some(stage) = shared.failed_stage.get().as_ref().clone() {
        return Err(Error::StageFailed(stage));
    }
    tracing::info!("leakwatch agent stopped");
    result
}

/// Serves the HTTP API until `until` completes (a signal, or the supervised command ending).
pub fn serve_http(
    config: &config::Config,
    shared: std::sync::Arc<daemon::Shared>,
    until: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("lw-http")
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(config.agent.listen)
            .await
            .map_err(|source| Error::Listen {
                addr: config.agent.listen,
                source,
            })?;
        let app = http::router(shared.clone(), http::Settings::of(&config.agent));
        let limits = http::server::Limits {
            max_connections: config.agent.max_connections,
            header_timeout: config.agent.http_header_timeout,
            request_timeout: config.agent.http_request_timeout,
        };
        http::server::serve(listener, app, limits, shared, until).await;
        Ok(())
    })
}

/// Completes on SIGINT or SIGTERM, through the one signal helper (leakwatch-exec).
async fn shutdown_signal() {
    use leakwatch_exec::signals::{self, Signal};
    let stop = signals::install(&[Signal::Interrupt, Signal::Terminate]);
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    tracing::info!("shutting down");
}
