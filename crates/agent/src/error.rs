//! What can stop the agent from starting or running, as a type: callers (the CLI) can tell
//! a bad data dir from a port in use without parsing messages.

use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot create data dir {}: {source}", path.display())]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read /proc: {0}")]
    Proc(std::io::Error),
    #[error("cannot open store {}: {message}", path.display())]
    Store { path: PathBuf, message: String },
    #[error("cannot start thread {name}: {source}")]
    Thread {
        name: String,
        source: std::io::Error,
    },
    #[error(
        "stage {0} panicked (see the log above); exiting for the supervisor to restart the agent"
    )]
    StageFailed(String),
    #[error("the store writer thread died while opening the store")]
    WriterDied,
    #[error("cannot start the HTTP runtime: {0}")]
    Runtime(std::io::Error),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    /// The supervised command (`leakwatch run`).
    #[error("cannot start {program:?}: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("cannot wait for the supervised command: {0}")]
    Wait(std::io::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
