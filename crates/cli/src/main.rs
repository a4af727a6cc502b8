//! `leakwatch`: the command-line entry point. Glue only: it parses arguments, calls the
//! crates that do the work, and renders their results for people (tables) or scripts (JSON).

mod agent_cmd;
mod format;
mod snapshot;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Catches resource leaks (threads, file descriptors, sockets, memory) in running services.
#[derive(Parser)]
#[command(name = "leakwatch", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show which processes hold the most threads, fds, sockets or memory, and how close
    /// each is to its limit: one sample of the host, now.
    ///
    /// Replaces the manual forensics of `jstack | sort | uniq -c`,
    /// `netstat -a | grep CLOSE_WAIT | wc -l` and `ls /proc/PID/fd | wc -l`. Run as root to
    /// see every process; otherwise other users' processes are shown with what could be
    /// read (threads and memory) and marked partial.
    Snapshot(snapshot::Args),
    /// Sample every process continuously, keep the history, and serve the HTTP API and
    /// /metrics (127.0.0.1:9464 by default). Runs in the foreground; logs to stderr;
    /// stops cleanly on SIGTERM or Ctrl-C.
    Agent(agent_cmd::AgentArgs),
    /// List the targets the running agent watches (services, containers, executables).
    Targets(agent_cmd::ClientArgs),
    /// Show the history of one target's resources, with sparklines.
    History(agent_cmd::HistoryArgs),
}

fn main() -> ExitCode {
    // Die quietly on a closed pipe (`leakwatch targets | head`), like other Unix tools,
    // instead of panicking on the failed write.
    // SAFETY: restoring the default disposition of SIGPIPE has no preconditions.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Snapshot(args) => snapshot::run(args),
        Command::Agent(args) => agent_cmd::agent(args),
        Command::Targets(args) => agent_cmd::targets(args),
        Command::History(args) => agent_cmd::history(args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("leakwatch: error: {error:#}");
            ExitCode::from(2)
        }
    }
}
