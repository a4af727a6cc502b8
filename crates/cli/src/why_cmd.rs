//! `leakwatch why TARGET [GROUP]`: which code creates a target's threads (JVMs: a JFR
//! recording of thread starts) or a Go service's goroutines (two goroutine dumps through
//! `--pprof`), watched for `--for` from now, on this host (issue 14). CPython processes get
//! what can and cannot be known.

use crate::agent_cmd::{get_json, parse, ClientArgs, NO_QUERY};
use crate::format;
use anyhow::{bail, Result};
use clap::Args as ClapArgs;
use leakwatch_agent::config::EvidenceSection;
use leakwatch_api::{self as api, paths};
use leakwatch_exec::signals::{self, Signal};
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
    /// A Go service's net/http/pprof address (`http://127.0.0.1:6060`): its goroutines are
    /// grouped by the function that started them.
    #[arg(long, value_name = "URL")]
    pprof: Option<String>,
    #[command(flatten)]
    client: ClientArgs,
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
    let settings = EvidenceSection::default();
    let found = leakwatch_agent::evidence::capture::creation_now(
        &pids,
        args.group.as_deref(),
        args.pprof.as_deref(),
        window,
        dir.path(),
        &settings,
        // Ctrl-C ends the wait early (the recording is removed with its folder).
        signals::install(&[Signal::Interrupt, Signal::Terminate, Signal::Hangup]),
    );
    let Some((text, headline)) = found else {
        bail!(
            "none of the processes {pids:?} is a JVM or CPython, and no --pprof was given: \
             leakwatch cannot yet watch where native code or Go's OS threads are created \
             (issue 14)"
        );
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
