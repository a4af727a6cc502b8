//! `leakwatch`: the command-line entry point. Glue only: it parses arguments, calls the
//! crates that do the work, and renders their results for people (tables) or scripts (JSON).

mod agent_cmd;
mod alerts_cmd;
mod check;
mod docs_cmd;
mod fleet_cmd;
mod format;
mod incidents_cmd;
mod leaks_cmd;
mod report_cmd;
mod snapshot;
mod top;
mod why_cmd;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Catches resource leaks (threads, file descriptors, sockets, memory) in running services.
#[derive(Parser)]
#[command(name = "leakwatch", version, about, long_about = None)]
pub(crate) struct Cli {
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
    /// Run a command as a supervised target: restart it per policy, record every exit
    /// with its stderr tail, and sample its resources across all its lives.
    ///
    /// Example: leakwatch run --restart always --listen 127.0.0.1:9465 -- ./server --port 8080
    Run(agent_cmd::RunArgs),
    /// List the exits and restarts of a target, with exit codes, signals and the last
    /// line of stderr of each life.
    Restarts(agent_cmd::RestartsArgs),
    /// List the running agent's findings: leaks, saturation and crash loops, soonest
    /// exhaustion first.
    Leaks(agent_cmd::ClientArgs),
    /// Ask "is this a leak?" about metrics you already have: runs the detection engine on a
    /// CSV file (time,series,value[,limit]), a saved Prometheus query_range response, or a
    /// live Prometheus (--prometheus URL --query Q). Exit 1 when something was found.
    Analyze(leaks_cmd::AnalyzeArgs),
    /// List the findings of every agent one Prometheus scrapes, by host, soonest
    /// exhaustion first, and the agents that are down (reads only Prometheus).
    ///
    /// Example: leakwatch fleet --prometheus http://prometheus:9090
    Fleet(fleet_cmd::FleetArgs),
    /// Show alert deliveries per channel from the running agent's durable outbox.
    Alerts(agent_cmd::ClientArgs),
    /// List incidents: the evidence (thread listings, sockets, fds, memory, jcmd/pprof
    /// dumps, capture commands) captured when each finding first appeared.
    Incidents(incidents_cmd::IncidentsArgs),
    /// Show one incident and its evidence files (`--file threads.txt` prints one whole;
    /// `--capture heap|heap-dump` asks the agent to capture again, now).
    Incident(incidents_cmd::IncidentArgs),
    /// Show which code creates a target's threads, now: watches thread starts for --for
    /// (JVMs: a JFR recording through jcmd; Go: goroutines by creator through --pprof) and
    /// ranks the creating stacks. Run it as root or as the target's user.
    ///
    /// Example: leakwatch why analytics Analytics-# --for 30s
    Why(why_cmd::WhyArgs),
    /// Silence a target's alerts for a while: `leakwatch silence api --for 2h --reason
    /// "deploy"`; `--expire` ends its silences now.
    Silence(incidents_cmd::SilenceArgs),
    /// List the running agent's active silences.
    Silences(agent_cmd::ClientArgs),
    /// Alert channel tools: `leakwatch alert test --config FILE [--channel NAME]`.
    #[command(subcommand)]
    Alert(alerts_cmd::AlertCommand),
    /// Configuration tools: `leakwatch config check FILE`.
    Config(alerts_cmd::ConfigArgs),
    /// Run a workload against a process round after round and fail (exit 1) if threads,
    /// fds, sockets or memory grow with every round: a leak check for tests and CI.
    ///
    /// Example: leakwatch check --workload 'curl -s localhost:8080/login' --ready-port 8080
    /// -- ./server --port 8080
    Check(check::Args),
    /// A live terminal view, like htop for leaks: every target with its threads, fds,
    /// sockets and memory (with sparklines), ranked by leak risk, with findings and
    /// details. Polls the agent, or samples this host itself with --standalone.
    Top(top::Args),
    /// Write a report on a target or an incident: what leaks, how fast, the forecast, the
    /// evidence, restarts and alerts, with charts. HTML (inline SVG, self-contained) or
    /// Markdown; to stdout or -o FILE.
    ///
    /// Example: leakwatch report api.service --since 24h -o report.html
    Report(report_cmd::ReportArgs),
    /// Print shell completions for bash, zsh, fish, elvish or PowerShell to stdout.
    ///
    /// Example: leakwatch completions bash > /etc/bash_completion.d/leakwatch
    Completions(docs_cmd::CompletionsArgs),
    /// Write the man pages (leakwatch.1 and one per command) to a directory.
    ///
    /// Example: leakwatch man --dir /usr/share/man/man1
    Man(docs_cmd::ManArgs),
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
        Command::Run(args) => agent_cmd::run(args),
        Command::Restarts(args) => agent_cmd::restarts(args),
        Command::Leaks(args) => leaks_cmd::leaks(args),
        Command::Analyze(args) => leaks_cmd::analyze(args),
        Command::Alerts(args) => alerts_cmd::alerts(args),
        Command::Fleet(args) => fleet_cmd::fleet(args),
        Command::Incidents(args) => incidents_cmd::incidents(args),
        Command::Incident(args) => incidents_cmd::incident(args),
        Command::Why(args) => why_cmd::why(args),
        Command::Silence(args) => incidents_cmd::silence(args),
        Command::Silences(args) => incidents_cmd::silences(args),
        Command::Alert(command) => alerts_cmd::alert(command),
        Command::Config(args) => alerts_cmd::config(args),
        Command::Check(args) => check::run(args),
        Command::Top(args) => top::run(args),
        Command::Report(args) => report_cmd::report(args),
        Command::Completions(args) => docs_cmd::completions(args),
        Command::Man(args) => docs_cmd::man(args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("leakwatch: error: {error:#}");
            ExitCode::from(2)
        }
    }
}
