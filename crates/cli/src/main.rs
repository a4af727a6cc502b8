//! `leakwatch`: the command-line entry point. Glue only: it parses arguments, calls the
//! crates that do the work, and renders their results for people (tables) or scripts (JSON).

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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Snapshot(args) => snapshot::run(args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("leakwatch: error: {error:#}");
            ExitCode::from(2)
        }
    }
}
