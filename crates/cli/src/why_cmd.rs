//! `leakwatch why TARGET [GROUP]`: which code creates a target's threads (JVMs: a JFR
//! recording of thread starts), a Go service's goroutines (two goroutine dumps through
//! `--pprof`), or native code's threads, processes, fds and sockets (an eBPF trace), watched
//! for `--for` from now, on this host (issue 14). CPython processes get what can and cannot
//! be known.

use crate::agent_cmd::{get_json, parse, ClientArgs, NO_QUERY};
use crate::format;
use anyhow::{bail, Result};
use clap::Args as ClapArgs;
use leakwatch_agent::config::EvidenceSection;
use leakwatch_agent::evidence::capture::Watch;
use leakwatch_api::{self as api, paths};
use leakwatch_exec::signals::{self, Signal};
use leakwatch_model::Resource;
use std::process::ExitCode;

#[derive(ClapArgs)]
pub struct WhyArgs {
    /// The target, as `leakwatch targets` lists it (its live processes are asked of the
    /// agent; `--pid` instead names them).
    target: String,
    /// Only threads of this group, as `threads.txt` and findings name it (`Analytics-#`).
    group: Option<String>,
    /// How long to watch for new threads or goroutines.
    #[arg(long = "for", value_name = "DURATION", default_value = "30s")]
    duration: String,
    /// The processes to watch, instead of asking the agent for the target's (repeat it).
    #[arg(long, value_name = "PID")]
    pid: Vec<u32>,
    /// What to watch the creation of: threads, processes, fds (every kind: files, sockets,
    /// pipes, ...), sockets, or all. JVMs: threads only (JFR); native code and Go's OS
    /// threads: any (eBPF).
    #[arg(long, value_enum, default_value_t = What::All)]
    what: What,
    /// Native code: stop the trace early once this many creations were seen (at most
    /// 1,000,000; each is one event with its stack through a ring buffer).
    #[arg(long, value_name = "N", default_value_t = 100_000,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    max_events: u64,
    /// Most bytes of a runtime tool's output read (a JVM's `jfr print`, a Go service's
    /// goroutine dump; 64 KiB to 256 MiB). A busy JVM's recording past it is ranked on its
    /// first thread starts, and says so.
    #[arg(long, value_name = "BYTES",
          default_value_t = EvidenceSection::default().max_output_bytes as u64,
          value_parser = clap::value_parser!(u64).range(65_536..=268_435_456))]
    max_output: u64,
    /// A Go service's net/http/pprof address (`http://127.0.0.1:6060`): its goroutines are
    /// grouped by the function that started them.
    #[arg(long, value_name = "URL")]
    pprof: Option<String>,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum What {
    Threads,
    Processes,
    Fds,
    Sockets,
    All,
}

impl What {
    fn resource(self) -> Option<Resource> {
        match self {
            What::Threads => Some(Resource::Threads),
            What::Processes => Some(Resource::Processes),
            What::Fds => Some(Resource::Fds),
            What::Sockets => Some(Resource::Sockets),
            What::All => None,
        }
    }
}

/// The longest `--for`.
const MAX_WATCH: std::time::Duration = std::time::Duration::from_secs(600);
/// Processes watched at most.
const MAX_PIDS: usize = 8;

pub fn why(args: WhyArgs) -> Result<ExitCode> {
    let window = format::duration_arg("--for", &args.duration, MAX_WATCH)?;
    if window.is_zero() {
        bail!("--for must be longer than 0s");
    }
    let mut pids = if args.pid.is_empty() {
        live_pids(&args.client, &args.target)?
    } else {
        args.pid.clone()
    };
    pids.sort_unstable();
    pids.dedup();
    pids.truncate(MAX_PIDS);
    let dir = tempfile::tempdir()?;
    if !args.client.json {
        eprintln!(
            "watching {} (processes {pids:?}) for {}...",
            args.target,
            humantime::format_duration(window)
        );
    }
    let settings = EvidenceSection {
        // Within usize: at most 256 MiB (the parser's range).
        max_output_bytes: usize::try_from(args.max_output).unwrap_or(usize::MAX),
        ..EvidenceSection::default()
    };
    let resource = args.what.resource();
    let watch = Watch {
        pids: &pids,
        resource: resource.as_ref(),
        group: args.group.as_deref(),
        pprof_url: args.pprof.as_deref(),
        window,
        max_events: args.max_events,
    };
    let found = leakwatch_agent::evidence::capture::creation_now(
        &watch,
        dir.path(),
        &settings,
        // Ctrl-C ends the wait early (the recording is removed with its folder).
        signals::install(&[Signal::Interrupt, Signal::Terminate, Signal::Hangup]),
    );
    let (text, headline) = match found {
        Ok(found) => found,
        Err(error) => bail!("{error}"),
    };
    if args.client.json {
        let value = serde_json::json!({
            "target": args.target, "pids": pids, "seconds": window.as_secs_f64(),
            "headline": headline, "text": text,
        });
        println!("{}", crate::format::json(&value)?);
    } else {
        if let Some(line) = &headline {
            println!("{line}\n");
        }
        print!("{text}");
    }
    Ok(ExitCode::SUCCESS)
}

/// The target's live processes, as the agent last sampled them.
fn live_pids(client: &ClientArgs, target: &str) -> Result<Vec<u32>> {
    let body = get_json(client, paths::TARGETS, NO_QUERY)?;
    let targets: api::Targets = parse(paths::TARGETS, &body)?;
    let Some(found) = targets.targets.iter().find(|t| t.name == target) else {
        bail!("the agent has no target {target:?} (see `leakwatch targets`)");
    };
    let pids: Vec<u32> = found.processes.iter().map(|p| p.pid).collect();
    if !found.live || pids.is_empty() {
        bail!("the target {target:?} has no live process now");
    }
    Ok(pids)
}
