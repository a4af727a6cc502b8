//! `leakwatch check`: runs a workload against a process round after round and fails when a
//! thread group, fd kind, socket state or peer, or memory grows with every round.
//!
//! Glue: the rules and the settle loop live in the `leakcheck` crate (shared with the test
//! library), the counts come from `leakwatch-proc`'s sampler. This file starts and stops
//! processes, and renders the verdict for people, `--json` and JUnit.

use anyhow::{anyhow, bail, Context, Result};
use leakcheck::inventory::{Inventory, Reader};
use leakcheck::rules::{self, Class, Counts, Finding, Ignore, Policy, Verdict};
use leakcheck::settle::settle;
use leakwatch_exec::signals::{self, Signal};
use leakwatch_exec::{quote, Exit, Keep, Program};
use leakwatch_model::text::visible;
use leakwatch_model::Resource;
use leakwatch_proc::{Options, ProcessSample, Sampler, Selection};
use serde::Serialize;
use std::collections::HashSet;
use std::fmt::Write as _;
use std::io;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, ExitStatus, Stdio};
use std::time::{Duration, Instant};

const AFTER_HELP: &str = "\
How it decides (docs/leak-check.md has the details):
  A count (threads per name group, fds per kind, TCP sockets per state and per state and
  peer, UDP/unix sockets) LEAKS when, compared with the baseline taken after the warm-up
  rounds, it is higher after the last round, never fell between rounds, and grew in at
  least N-1 of the N rounds. One socket per round is enough.
  Memory (anonymous RSS) leaks only when it grew by more than --memory-tolerance in every
  round. After each round the process is sampled with backoff until two samples agree
  (memory aside), for at most --settle.

Examples:
  # start the service, hit it 5 times, fail if anything grows per round
  leakwatch check --workload 'curl -s http://127.0.0.1:8080/login' --ready-port 8080 \\
      -- ./session-service --port 8080
  # attach to a running JVM, accept GC thread growth, JUnit for CI
  leakwatch check --match 'analytics.jar' --workload './load.sh 100' \\
      --ignore 'threads:GC Thread#' --junit leakcheck.xml

Exit status: 0 nothing leaked, 1 something leaked, 2 usage or runtime error (the process
exited, the workload failed, interrupted), with the reason on stderr.";

/// Arguments of `leakwatch check`.
#[derive(clap::Args)]
#[command(after_long_help = AFTER_HELP)]
pub struct Args {
    /// The command that exercises the process, run once per round and waited for. Split
    /// into words like a shell would (quotes, backslashes), but not run by a shell: for
    /// pipes, variables or loops, pass `sh -c '...'` yourself. It must exit 0.
    #[arg(long, value_name = "CMD")]
    workload: String,
    /// Measured rounds after the baseline (at least 2; with fewer than 3, a one-off
    /// growth is hard to tell from a leak).
    #[arg(long, default_value_t = 5, value_name = "N",
          value_parser = clap::value_parser!(u32).range(2..))]
    rounds: u32,
    /// Rounds run before the baseline, so that caches, lazily started pools and JIT
    /// warm-up are not counted as growth.
    #[arg(long, default_value_t = 2, value_name = "N")]
    warmup: u32,
    /// Longest wait, after each round, for the process to settle (two consecutive samples
    /// agreeing). A process that never settles is judged on its last sample, with a note.
    #[arg(long, default_value = "2s", value_name = "DURATION", value_parser = duration)]
    settle: Duration,
    /// Check this running process (it is left running).
    #[arg(long, value_name = "PID")]
    pid: Option<u32>,
    /// Check the running processes whose name (comm), executable or command line matches
    /// this regex (this leakwatch and its parent shells excluded).
    #[arg(long = "match", value_name = "REGEX")]
    pattern: Option<String>,
    /// Start this server, check it, and stop it at the end (SIGTERM, then SIGKILL to its
    /// process group; also on error or Ctrl-C). Its output goes to stderr.
    #[arg(last = true, value_name = "SERVER CMD")]
    command: Vec<String>,
    /// Wait until the started server accepts TCP connections on this port (127.0.0.1) or
    /// HOST:PORT before the first round.
    #[arg(long, value_name = "[HOST:]PORT")]
    ready_port: Option<String>,
    /// Wait this long after starting the server (after --ready-port, if both are given).
    /// With neither, check waits until the server's counts stop changing.
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    ready_delay: Option<Duration>,
    /// Give up if the server is not ready within this time.
    #[arg(long, default_value = "30s", value_name = "DURATION", value_parser = duration)]
    ready_timeout: Duration,
    /// Kill a workload round that runs longer than this, and fail.
    #[arg(long, default_value = "60s", value_name = "DURATION", value_parser = duration)]
    workload_timeout: Duration,
    /// Accept known growth (repeatable): CLASS or CLASS:PATTERN, CLASS being threads,
    /// fds, sockets or memory; PATTERN a glob (`*`, `?`) over the name shown in the report.
    /// E.g. `threads:GC Thread#`, `fds:file`, `sockets:CLOSE_WAIT`, `sockets:* -> *:5432`,
    /// `memory`. Accepted growth is still reported, and never fails the check.
    #[arg(long = "ignore", value_name = "CLASS[:PATTERN]")]
    ignores: Vec<Ignore>,
    /// Memory must grow by more than this in every round to count as a leak (B, KiB, MiB,
    /// GiB; plain numbers are bytes).
    #[arg(long, default_value = "1MiB", value_name = "SIZE", value_parser = size)]
    memory_tolerance: u64,
    /// Print the verdict, every resource's series and the evidence as JSON.
    #[arg(long)]
    json: bool,
    /// Also write a JUnit XML report: one test case per resource checked, a failure for
    /// each leak (an error case if the check itself could not run).
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Read sockets from /proc/net instead of netlink sock_diag.
    #[arg(long)]
    proc_net: bool,
    /// Also watch where the checked processes create threads, fds and sockets during the
    /// measured rounds (their first 10 minutes), and print the creation site of each leak:
    /// the function and its callers. Native code and Go: an eBPF trace, from the process's
    /// own symbols; JVMs: a JFR recording of thread starts (threads only). Needs root (or
    /// CAP_BPF and CAP_PERFMON, and the JVM's user for jcmd).
    #[arg(long)]
    why: bool,
}

/// Runs the check; `Err` is a usage or runtime error (exit 2).
pub fn run(args: Args) -> Result<ExitCode> {
    let result = check(&args);
    if let (Err(error), Some(path)) = (&result, &args.junit) {
        // CI should see a red test, not a missing report, when the check cannot run.
        let xml = junit_error(&format!("{error:#}"));
        if let Err(write_error) = std::fs::write(path, xml) {
            eprintln!("leakwatch: cannot write {}: {write_error}", path.display());
        }
    }
    result
}

fn check(args: &Args) -> Result<ExitCode> {
    let workload = validate(args)?;
    // SIGINT, SIGTERM and SIGHUP set a flag that every wait loop polls, so an interrupted
    // check stops the server and the workload (via their `Drop`s and kill paths) before it
    // exits, instead of dying with them still running.
    signals::install(&[Signal::Interrupt, Signal::Terminate, Signal::Hangup]);
    let (pids, mut server) = processes_to_check(args)?;
    let options = Options {
        // Re-read every thread name and fd target each pass: a check wants exact counts
        // more than a cheap pass.
        revalidate_every: 1,
        proc_net_sockets: args.proc_net,
        ..Options::default()
    };
    let mut sampler = Sampler::new(options, Selection::Pids(pids.iter().copied().collect()))
        .context("cannot read /proc")?;
    if let Some(server) = server.as_mut() {
        server.wait_ready(args, &mut sampler)?;
    }
    let identities = identify(&pids, &mut sampler)?;
    let mut run = Run {
        args,
        workload,
        sampler,
        server,
        reader: Reader::new(),
    };
    eprintln!(
        "leakwatch check: {} against {}",
        describe_rounds(args, &run.workload),
        identities
            .iter()
            .map(|p| format!("pid {} ({})", p.identity.pid, visible(&p.identity.comm)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let processes = measure(&mut run, &identities)?;
    // Stop the server before rendering: its exit is part of the check (no orphans), and a
    // slow render must not keep it running.
    let started_by_check = run.server.is_some();
    if let Some(mut server) = run.server.take() {
        server.stop();
    }
    report(args, &run.workload, processes, started_by_check)
}

/// The workload's argv, after checking that the options name exactly one thing to check.
fn validate(args: &Args) -> Result<Vec<String>> {
    let workload = shlex::split(&args.workload)
        .ok_or_else(|| anyhow!("--workload: unbalanced quotes in {:?}", args.workload))?;
    if workload.is_empty() {
        bail!("--workload: empty command");
    }
    let targets = [
        args.pid.is_some(),
        args.pattern.is_some(),
        !args.command.is_empty(),
    ];
    match targets.iter().filter(|&&given| given).count() {
        1 => {}
        0 => bail!("what to check: give --pid PID, --match REGEX, or -- SERVER CMD ARGS..."),
        _ => bail!("give only one of --pid, --match and -- SERVER CMD"),
    }
    if args.command.is_empty() && (args.ready_port.is_some() || args.ready_delay.is_some()) {
        bail!("--ready-port and --ready-delay apply to a server started with -- SERVER CMD");
    }
    Ok(workload)
}

/// The pids to watch: `--pid`, the processes `--match` finds, or the server this check
/// starts (returned too, so the check stops it).
fn processes_to_check(args: &Args) -> Result<(Vec<u32>, Option<Server>)> {
    if let Some(pid) = args.pid {
        Ok((vec![pid], None))
    } else if let Some(pattern) = &args.pattern {
        Ok((matching_pids(pattern)?, None))
    } else {
        let started = Server::start(&args.command)?;
        Ok((vec![started.pid()], Some(started)))
    }
}

/// The first sample of each process, refusing zombies and processes whose fds are unreadable.
fn identify(pids: &[u32], sampler: &mut Sampler) -> Result<Vec<ProcessSample>> {
    let first = sampler.sample().context("sampling failed")?;
    let identities: Vec<ProcessSample> = pids
        .iter()
        .map(|&pid| {
            first
                .processes
                .iter()
                .find(|p| p.identity.pid == pid)
                .cloned()
                .ok_or_else(|| anyhow!("no such process: {pid}"))
        })
        .collect::<Result<_>>()?;
    for process in &identities {
        if process.state == 'Z' {
            bail!(
                "pid {} ({}) has exited (a zombie)",
                process.identity.pid,
                visible(&process.identity.comm)
            );
        }
        if process
            .partial
            .iter()
            .any(|p| p.part == leakwatch_proc::Part::Fds)
        {
            bail!(
                "cannot read the fds of pid {} ({}): run as its user or as root",
                process.identity.pid,
                visible(&process.identity.comm)
            );
        }
    }
    Ok(identities)
}

/// Warm-up rounds, a settled baseline with its inventory, the measured rounds (settling
/// after each), and the final inventory.
fn measure(run: &mut Run, identities: &[ProcessSample]) -> Result<Vec<ProcessRun>> {
    let args = run.args;
    for round in 1..=args.warmup {
        run.round(&format!("warm-up {round}/{}", args.warmup))?;
    }
    let mut processes: Vec<ProcessRun> = identities
        .iter()
        .map(|sample| ProcessRun {
            sample: sample.clone(),
            samples: Vec::new(),
            unsettled: Vec::new(),
            baseline_inventory: None,
            final_inventory: None,
            why: None,
        })
        .collect();
    run.settle_all(&mut processes, 0)?;
    for process in processes.iter_mut() {
        process.baseline_inventory = run.reader.read(process.sample.identity.pid).ok();
    }
    let pids: Vec<u32> = identities.iter().map(|p| p.identity.pid).collect();
    let tracer = args.why.then(|| Tracer::start(&pids));
    let rounds = (1..=args.rounds).try_for_each(|round| {
        run.round(&format!("round {round}/{}", args.rounds))?;
        run.settle_all(&mut processes, round)
    });
    let whys = tracer.map(|t| t.finish(&pids));
    rounds?;
    for (pid, why) in whys.into_iter().flatten() {
        if let Some(process) = processes.iter_mut().find(|p| p.sample.identity.pid == pid) {
            process.why = Some(why);
        }
    }
    for process in processes.iter_mut() {
        process.final_inventory = run.reader.read(process.sample.identity.pid).ok();
    }
    Ok(processes)
}

/// `--why`: where a checked process creates what it leaks, watched during the measured
/// rounds.
#[derive(Clone)]
enum Why {
    /// Native code: the eBPF trace of the native processes (or why there is none).
    Native(Result<leakwatch_bpf::Traced, String>),
    /// A JVM: the line of a JFR recording of thread starts (threads only).
    Jvm(Option<String>),
    Python,
}

/// The tracing threads of `--why`, running beside the measured rounds.
struct Tracer {
    done: std::sync::Arc<std::sync::atomic::AtomicBool>,
    native: Option<std::thread::JoinHandle<Result<leakwatch_bpf::Traced, String>>>,
    /// The line of the JFR recording.
    jvm: Option<std::thread::JoinHandle<Option<String>>>,
}

impl Tracer {
    fn start(pids: &[u32]) -> Tracer {
        use leakwatch_agent::evidence::capture::{runtime_of, Runtime};
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let of = |runtime: Runtime| -> Vec<u32> {
            pids.iter()
                .copied()
                .filter(|&p| runtime_of(p) == runtime)
                .collect()
        };
        let (native, jvms) = (of(Runtime::Native), of(Runtime::Jvm));
        // Each watcher says when it watches (its first look at the flag), and the rounds
        // start after that: a short round's creations are not missed.
        let (watching, started) = std::sync::mpsc::channel::<()>();
        let flag = done.clone();
        let tell = watching.clone();
        let native = (!native.is_empty()).then(|| {
            std::thread::spawn(move || {
                let limits = leakwatch_bpf::Limits {
                    window: leakwatch_bpf::MAX_WINDOW,
                    ..Default::default()
                };
                let mut tell = Some(tell);
                leakwatch_bpf::trace(&native, limits, &mut || {
                    if let Some(tell) = tell.take() {
                        let _ = tell.send(());
                    }
                    !flag.load(std::sync::atomic::Ordering::Relaxed) && !signals::received()
                })
                .map_err(|e| e.to_string())
            })
        });
        let flag = done.clone();
        let tell = watching;
        let jvm = (!jvms.is_empty()).then(|| {
            std::thread::spawn(move || {
                let tell = std::cell::Cell::new(Some(tell));
                let dir = tempfile::tempdir().ok()?;
                leakwatch_agent::evidence::capture::jvm_thread_starts_until(
                    &jvms,
                    dir.path(),
                    &leakwatch_agent::config::EvidenceSection::default(),
                    &|| {
                        if let Some(tell) = tell.take() {
                            let _ = tell.send(());
                        }
                        flag.load(std::sync::atomic::Ordering::Relaxed) || signals::received()
                    },
                )
                .and_then(|(_, headline)| headline)
            })
        });
        // One message per watcher; a watcher that fails before watching drops its sender,
        // and once all have, the wait ends.
        let watchers = usize::from(native.is_some()) + usize::from(jvm.is_some());
        let deadline = Instant::now() + Duration::from_secs(30);
        for _ in 0..watchers {
            let left = deadline.saturating_duration_since(Instant::now());
            if started.recv_timeout(left).is_err() {
                break;
            }
        }
        Tracer { done, native, jvm }
    }

    /// Ends the watch; what each process gets.
    fn finish(self, pids: &[u32]) -> Vec<(u32, Why)> {
        use leakwatch_agent::evidence::capture::{runtime_of, Runtime};
        self.done.store(true, std::sync::atomic::Ordering::Relaxed);
        let native = self.native.map(|t| {
            t.join()
                .unwrap_or_else(|_| Err("the tracing thread panicked".into()))
        });
        let jvm = self.jvm.and_then(|t| t.join().ok().flatten());
        pids.iter()
            .map(|&pid| {
                let why = match runtime_of(pid) {
                    Runtime::Jvm => Why::Jvm(jvm.clone()),
                    Runtime::Python => Why::Python,
                    Runtime::Native => Why::Native(
                        native
                            .clone()
                            .unwrap_or_else(|| Err("the process was not traced".into())),
                    ),
                };
                (pid, why)
            })
            .collect()
    }
}

/// Judges each process, prints the verdict (text or `--json`), writes `--junit`; exit 1 on
/// a leak.
fn report(
    args: &Args,
    workload: &[String],
    processes: Vec<ProcessRun>,
    started_by_check: bool,
) -> Result<ExitCode> {
    let policy = Policy {
        memory_tolerance_bytes: args.memory_tolerance,
    };
    let verdicts: Vec<ProcessVerdict> = processes
        .into_iter()
        .map(|process| ProcessVerdict::judge(process, &args.ignores, &policy))
        .collect();
    let leaked = verdicts.iter().any(|v| v.leaks() > 0);
    if args.json {
        let report = JsonReport {
            verdict: if leaked { "leak" } else { "clean" },
            workload,
            warmup: args.warmup,
            rounds: args.rounds,
            settle_ms: args.settle.as_millis() as u64,
            memory_tolerance_bytes: args.memory_tolerance,
            ignores: args.ignores.iter().map(|i| i.to_string()).collect(),
            started_by_check,
            processes: verdicts.iter().map(ProcessVerdict::json).collect(),
        };
        println!("{}", crate::format::json(&report)?);
    } else {
        print!("{}", render(args, workload, &verdicts));
    }
    if let Some(path) = &args.junit {
        std::fs::write(path, junit(&verdicts))
            .with_context(|| format!("cannot write --junit {}", path.display()))?;
    }
    Ok(if leaked {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn describe_rounds(args: &Args, workload: &[String]) -> String {
    format!(
        "{} warm-up + {} rounds of `{}`, settle up to {}",
        args.warmup,
        args.rounds,
        quote::join(workload),
        humantime::format_duration(args.settle)
    )
}

/// Everything a check holds while it runs.
struct Run<'a> {
    args: &'a Args,
    workload: Vec<String>,
    sampler: Sampler,
    server: Option<Server>,
    reader: Reader,
}

/// One checked process: its samples (`[0]` the baseline) and what was seen along the way.
struct ProcessRun {
    sample: ProcessSample,
    samples: Vec<Counts>,
    /// Rounds (0 = baseline) that did not settle, with what kept changing.
    unsettled: Vec<(u32, Vec<String>)>,
    baseline_inventory: Option<Inventory>,
    final_inventory: Option<Inventory>,
    /// `--why`: what was watched during the measured rounds.
    why: Option<Why>,
}

impl Run<'_> {
    fn round(&mut self, label: &str) -> Result<()> {
        let started = Instant::now();
        run_workload(&self.workload, self.args.workload_timeout)
            .with_context(|| format!("workload, {label}"))?;
        if let Some(server) = self.server.as_mut() {
            server.ensure_running()?;
        }
        eprintln!(
            "  {label}: workload took {}",
            humantime::format_duration(round_ms(started.elapsed()))
        );
        Ok(())
    }

    /// Waits for each process to settle and records its counts as sample `round`.
    fn settle_all(&mut self, processes: &mut [ProcessRun], round: u32) -> Result<()> {
        let deadline = Instant::now() + self.args.settle;
        for process in processes.iter_mut() {
            let pid = process.sample.identity.pid;
            let sampler = &mut self.sampler;
            let server = &mut self.server;
            let budget = deadline.saturating_duration_since(Instant::now());
            let settled = settle(budget, || {
                if signals::received() {
                    return Err(io::Error::new(io::ErrorKind::Interrupted, "interrupted"));
                }
                let sample = sampler.sample()?;
                match sample.processes.into_iter().find(|p| p.identity.pid == pid) {
                    Some(process) => Ok(rules::counts_of(&process)),
                    None => {
                        let how = server
                            .as_mut()
                            .and_then(|s| s.exited())
                            .map(|status| format!(": {status}"))
                            .unwrap_or_default();
                        Err(io::Error::other(format!(
                            "pid {pid} exited during the check{how}"
                        )))
                    }
                }
            })
            .map_err(|error| anyhow!("{error}"))?;
            if !settled.settled {
                let changing: Vec<String> = settled
                    .still_changing
                    .iter()
                    .map(|k| k.to_string())
                    .collect();
                eprintln!(
                    "  pid {pid} did not settle within {} (still changing: {})",
                    humantime::format_duration(self.args.settle),
                    changing.join(", ")
                );
                process.unsettled.push((round, changing));
            }
            process.samples.push(settled.counts);
        }
        Ok(())
    }
}

fn round_ms(duration: Duration) -> Duration {
    Duration::from_millis(duration.as_millis() as u64)
}

/// The judged resources of one process, with evidence for each leak.
struct ProcessVerdict {
    sample: ProcessSample,
    findings: Vec<(Finding, Vec<String>)>,
    unsettled: Vec<(u32, Vec<String>)>,
    why: Option<Why>,
}

/// At most this many evidence lines per resource.
const EVIDENCE: usize = 5;

impl ProcessVerdict {
    fn judge(process: ProcessRun, ignores: &[Ignore], policy: &Policy) -> ProcessVerdict {
        let findings = rules::judge(&process.samples, ignores, policy)
            .into_iter()
            .map(|finding| {
                let evidence = match (
                    finding.verdict,
                    &process.baseline_inventory,
                    &process.final_inventory,
                ) {
                    (Verdict::Steady, _, _) => Vec::new(),
                    (_, Some(before), Some(after)) => {
                        let items = leakcheck::evidence(&finding.key, before, after);
                        let mut lines: Vec<String> =
                            items.iter().take(EVIDENCE).map(|i| i.to_string()).collect();
                        if items.len() > EVIDENCE {
                            lines.push(format!("... and {} more", items.len() - EVIDENCE));
                        }
                        lines
                    }
                    _ => Vec::new(),
                };
                (finding, evidence)
            })
            .collect();
        ProcessVerdict {
            sample: process.sample,
            findings,
            unsettled: process.unsettled,
            why: process.why,
        }
    }

    /// `--why`: where what `finding` counts was created in this process, or why that is not
    /// known; `None` without `--why` or for memory.
    fn why(&self, finding: &Finding) -> Option<String> {
        let resource = match finding.key.class {
            Class::Threads => Resource::Threads,
            Class::Fds => Resource::Fds,
            Class::Sockets => Resource::Sockets,
            Class::Memory => return None,
        };
        match self.why.as_ref()? {
            Why::Native(Err(error)) => Some(error.clone()),
            Why::Native(Ok(traced)) => {
                let pid = self.sample.identity.pid;
                let mine = leakwatch_bpf::Traced {
                    pids: vec![pid],
                    sites: traced
                        .sites
                        .iter()
                        .filter(|s| s.pid == pid)
                        .cloned()
                        .collect(),
                    ..traced.clone()
                };
                let creation = leakwatch_bpf::sites::summarise(&mine, Some(&resource));
                Some(creation.headline.unwrap_or_else(|| {
                    format!(
                        "no one creation site of {} stood out (`leakwatch why` shows the stacks)",
                        resource.as_str()
                    )
                }))
            }
            Why::Jvm(headline) if resource == Resource::Threads => Some(
                headline
                    .clone()
                    .unwrap_or_else(|| "the JFR recording of thread starts named no site".into()),
            ),
            Why::Jvm(_) => Some(format!(
                "not available for a JVM's {}: a kernel stack names no Java method",
                resource.as_str()
            )),
            Why::Python => Some(
                "not available for CPython: where its threads and files are created cannot be \
                 read from outside the process"
                    .into(),
            ),
        }
    }

    fn leaks(&self) -> usize {
        self.count(Verdict::Leak)
    }

    fn count(&self, verdict: Verdict) -> usize {
        self.findings
            .iter()
            .filter(|(f, _)| f.verdict == verdict)
            .count()
    }

    fn title(&self) -> String {
        format!(
            "pid {} ({})",
            self.sample.identity.pid,
            visible(&self.sample.identity.comm)
        )
    }

    fn json(&self) -> JsonProcess<'_> {
        JsonProcess {
            pid: self.sample.identity.pid,
            comm: &self.sample.identity.comm,
            cmdline: &self.sample.identity.cmdline,
            leaks: self.leaks(),
            unsettled_rounds: self
                .unsettled
                .iter()
                .map(|(round, changing)| JsonUnsettled {
                    round: *round,
                    still_changing: changing,
                })
                .collect(),
            findings: self
                .findings
                .iter()
                .map(|(finding, evidence)| JsonFinding {
                    resource: finding.key.to_string(),
                    finding,
                    summary: finding.describe(),
                    evidence,
                    why: (finding.verdict == Verdict::Leak)
                        .then(|| self.why(finding))
                        .flatten(),
                })
                .collect(),
        }
    }
}

fn render(args: &Args, workload: &[String], verdicts: &[ProcessVerdict]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "leakwatch check: {}", describe_rounds(args, workload));
    for verdict in verdicts {
        let _ = writeln!(out, "\n{}", verdict.title());
        let mut shown: Vec<&Vec<String>> = Vec::new();
        for (finding, evidence) in &verdict.findings {
            let tag = match finding.verdict {
                Verdict::Leak => "LEAK   ",
                Verdict::IgnoredLeak => "ignored",
                Verdict::Steady => continue,
            };
            let _ = write!(out, "  {tag} {} {}", finding.key, finding.describe());
            if let Some(rule) = &finding.ignored_by {
                let _ = write!(out, " [--ignore {rule}]");
            }
            out.push('\n');
            if finding.verdict == Verdict::Leak {
                if let Some(why) = verdict.why(finding) {
                    let _ = writeln!(out, "          why: {why}");
                }
            }
            // One leak shows up as a peer row, a state and an fd kind with the same fds
            // behind them: list them once.
            if !evidence.is_empty() && shown.contains(&evidence) {
                let _ = writeln!(out, "          (the same as above)");
                continue;
            }
            for line in evidence {
                let _ = writeln!(out, "          {line}");
            }
            shown.push(evidence);
        }
        for (round, changing) in &verdict.unsettled {
            let when = if *round == 0 {
                "the baseline".to_string()
            } else {
                format!("round {round}")
            };
            let _ = writeln!(
                out,
                "  note: {when} did not settle within {} (still changing: {})",
                humantime::format_duration(args.settle),
                changing.join(", ")
            );
        }
        let checked = verdict.findings.len();
        let leaks = verdict.leaks();
        let ignored = verdict.count(Verdict::IgnoredLeak);
        let ignored_note = if ignored > 0 {
            format!(", {ignored} accepted by --ignore")
        } else {
            String::new()
        };
        if leaks > 0 {
            let _ = writeln!(
                out,
                "  result: LEAK: {leaks} of {checked} resources grew round after round{ignored_note}"
            );
        } else {
            let _ = writeln!(
                out,
                "  result: clean: {checked} resources checked, none grew round after round{ignored_note}"
            );
        }
    }
    out
}

#[derive(Serialize)]
struct JsonReport<'a> {
    verdict: &'static str,
    workload: &'a [String],
    warmup: u32,
    rounds: u32,
    settle_ms: u64,
    memory_tolerance_bytes: u64,
    ignores: Vec<String>,
    started_by_check: bool,
    processes: Vec<JsonProcess<'a>>,
}

#[derive(Serialize)]
struct JsonProcess<'a> {
    pid: u32,
    comm: &'a str,
    cmdline: &'a [String],
    leaks: usize,
    unsettled_rounds: Vec<JsonUnsettled<'a>>,
    findings: Vec<JsonFinding<'a>>,
}

#[derive(Serialize)]
struct JsonUnsettled<'a> {
    round: u32,
    still_changing: &'a [String],
}

#[derive(Serialize)]
struct JsonFinding<'a> {
    /// `threads Analytics-#`: the key as the report and --ignore spell it.
    resource: String,
    #[serde(flatten)]
    finding: &'a Finding,
    summary: String,
    evidence: &'a [String],
    /// `--why`: where the leaking resource was created (or why that is not known).
    #[serde(skip_serializing_if = "Option::is_none")]
    why: Option<String>,
}

/// One JUnit test suite per process, one test case per resource.
fn junit(verdicts: &[ProcessVerdict]) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let tests: usize = verdicts.iter().map(|v| v.findings.len()).sum();
    let failures: usize = verdicts.iter().map(ProcessVerdict::leaks).sum();
    let _ = writeln!(
        out,
        "<testsuites name=\"leakwatch check\" tests=\"{tests}\" failures=\"{failures}\">"
    );
    for verdict in verdicts {
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" skipped=\"{}\">",
            xml(&format!("leakwatch check {}", verdict.title())),
            verdict.findings.len(),
            verdict.leaks(),
            verdict.count(Verdict::IgnoredLeak)
        );
        for (finding, evidence) in &verdict.findings {
            let _ = write!(
                out,
                "    <testcase classname=\"leakwatch.check.{}\" name=\"{}\"",
                finding.key.class.as_str(),
                xml(&finding.key.name)
            );
            match finding.verdict {
                Verdict::Steady => out.push_str("/>\n"),
                Verdict::Leak => {
                    let _ = writeln!(
                        out,
                        ">\n      <failure type=\"leak\" message=\"{}\">{}</failure>\n    </testcase>",
                        xml(&format!("{} {}", finding.key, finding.describe())),
                        xml(&evidence.join("\n"))
                    );
                }
                Verdict::IgnoredLeak => {
                    let _ = writeln!(
                        out,
                        ">\n      <skipped message=\"{}\"/>\n    </testcase>",
                        xml(&format!(
                            "growth accepted by --ignore {}: {}",
                            finding.ignored_by.as_deref().unwrap_or(""),
                            finding.describe()
                        ))
                    );
                }
            }
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

fn junit_error(message: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <testsuites name=\"leakwatch check\" tests=\"1\" errors=\"1\">\n  \
         <testsuite name=\"leakwatch check\" tests=\"1\" errors=\"1\">\n    \
         <testcase classname=\"leakwatch.check\" name=\"check\">\n      \
         <error message=\"{}\"/>\n    </testcase>\n  </testsuite>\n</testsuites>\n",
        xml(message)
    )
}

/// Escapes text for XML attributes and content; drops the control characters XML 1.0
/// cannot carry at all (a thread name may hold any byte).
fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\t' => out.push_str("&#9;"),
            c if (c as u32) < 0x20 => {}
            c => out.push(c),
        }
    }
    out
}

fn duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    // A bare number is seconds, as in `sleep 2`.
    if let Ok(seconds) = text.parse::<f64>() {
        // Bounded before converting: from_secs_f64 panics beyond u64 seconds.
        if (0.0..=3600.0).contains(&seconds) {
            return Ok(Duration::from_secs_f64(seconds));
        }
        if seconds.is_finite() && seconds > 3600.0 {
            return Err(format!(
                "{text} seconds is longer than 1h, the most it takes"
            ));
        }
    }
    // A check's settle time or timeout of more than an hour is a typo.
    let duration =
        humantime::parse_duration(text).map_err(|error| format!("{error} (e.g. 2s, 500ms, 1m)"))?;
    if duration > std::time::Duration::from_secs(3600) {
        return Err(format!("{text:?} is longer than 1h, the most it takes"));
    }
    Ok(duration)
}

fn size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("{text:?}: expected a size such as 1MiB, 512KiB or 4096"))?;
    let scale: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        other => {
            return Err(format!(
                "{text:?}: unknown unit {other:?} (B, KiB, MiB, GiB)"
            ))
        }
    };
    Ok((number * scale as f64) as u64)
}

/// Pids matching `pattern`, except this process and its ancestors (whose command lines
/// hold the pattern itself when run through a shell).
fn matching_pids(pattern: &str) -> Result<Vec<u32>> {
    let regex = regex::Regex::new(pattern)
        .with_context(|| format!("--match: invalid regular expression {pattern:?}"))?;
    let mut excluded = HashSet::new();
    let mut pid = std::process::id();
    while pid > 1 && excluded.insert(pid) {
        pid = parent_of(pid).unwrap_or(0);
    }
    let selection = Selection::Filter(Box::new(move |identity| {
        regex.is_match(&identity.comm)
            || identity
                .exe
                .as_deref()
                .is_some_and(|exe| regex.is_match(exe))
            || regex.is_match(&identity.cmdline.join(" "))
    }));
    let mut sampler = Sampler::new(Options::default(), selection).context("cannot read /proc")?;
    let pids: Vec<u32> = sampler
        .sample()
        .context("sampling failed")?
        .processes
        .iter()
        .map(|p| p.identity.pid)
        .filter(|pid| !excluded.contains(pid))
        .collect();
    if pids.is_empty() {
        bail!("--match {pattern:?}: no running process matches");
    }
    Ok(pids)
}

fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The comm field may hold spaces and parentheses: the fields after it follow the last ')'.
    let after_comm = &stat[stat.rfind(')')? + 1..];
    after_comm.split_whitespace().nth(1)?.parse().ok()
}

/// A server started by `check`: stopped (with its whole process group) on drop, whatever
/// ends the check.
struct Server {
    child: Child,
    name: String,
    exited: Option<ExitStatus>,
}

impl Server {
    fn start(command: &[String]) -> Result<Server> {
        let mut process = Command::new(&command[0]);
        process.args(&command[1..]).stdin(Stdio::null());
        // The server's stdout goes to stderr, so `--json` on stdout stays parseable.
        let stderr = io::stderr()
            .as_fd()
            .try_clone_to_owned()
            .context("cannot duplicate stderr")?;
        process.stdout(Stdio::from(stderr));
        // Its own group (signalled whole, out of reach of the terminal's Ctrl-C), and
        // killed if leakwatch dies without cleaning up.
        leakwatch_exec::own_group(&mut process, true);
        let child = process
            .spawn()
            .with_context(|| format!("cannot start server {:?}", command[0]))?;
        Ok(Server {
            child,
            name: command[0].clone(),
            exited: None,
        })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The exit status, if the server has exited (reaping it).
    fn exited(&mut self) -> Option<ExitStatus> {
        if self.exited.is_none() {
            self.exited = self.child.try_wait().ok().flatten();
        }
        self.exited
    }

    fn ensure_running(&mut self) -> Result<()> {
        match self.exited() {
            Some(status) => bail!("server {} exited during the check: {status}", self.name),
            None => Ok(()),
        }
    }

    fn wait_ready(&mut self, args: &Args, sampler: &mut Sampler) -> Result<()> {
        let deadline = Instant::now() + args.ready_timeout;
        if let Some(port) = &args.ready_port {
            let addr = ready_addr(port)?;
            loop {
                if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                    break;
                }
                self.ensure_alive_while_waiting()?;
                if Instant::now() >= deadline {
                    bail!(
                        "server {} did not accept connections on {addr} within {}",
                        self.name,
                        humantime::format_duration(args.ready_timeout)
                    );
                }
                sleep_interruptibly(Duration::from_millis(50))?;
            }
        }
        if let Some(delay) = args.ready_delay {
            let until = Instant::now() + delay;
            while Instant::now() < until {
                self.ensure_alive_while_waiting()?;
                sleep_interruptibly(Duration::from_millis(50).min(until - Instant::now()))?;
            }
        }
        if args.ready_port.is_none() && args.ready_delay.is_none() {
            // Without a readiness signal, wait for start-up to stop changing the counts.
            let pid = self.pid();
            let budget = deadline.saturating_duration_since(Instant::now());
            settle(budget, || {
                if signals::received() {
                    return Err(io::Error::new(io::ErrorKind::Interrupted, "interrupted"));
                }
                let sample = sampler.sample()?;
                sample
                    .processes
                    .iter()
                    .find(|p| p.identity.pid == pid)
                    .map(rules::counts_of)
                    .ok_or_else(|| io::Error::other("exited"))
            })
            .map_err(|error| match error.kind() {
                io::ErrorKind::Interrupted => anyhow!("interrupted"),
                _ => anyhow!("server {} exited while starting", self.name),
            })?;
            self.ensure_alive_while_waiting()?;
        }
        Ok(())
    }

    fn ensure_alive_while_waiting(&mut self) -> Result<()> {
        match self.exited() {
            Some(status) => bail!(
                "server {} exited before it was ready: {status} (its output is above)",
                self.name
            ),
            None => Ok(()),
        }
    }

    /// SIGTERM to the group, up to 3 s to exit, then SIGKILL; always reaps.
    fn stop(&mut self) {
        if self.exited().is_none() {
            leakwatch_exec::terminate_group(self.pid());
            let deadline = Instant::now() + Duration::from_secs(3);
            while self.exited().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        // Also the group's other members, even when the leader is already gone.
        leakwatch_exec::kill_group(self.pid());
        if self.exited.is_none() {
            self.exited = self.child.wait().ok();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn ready_addr(text: &str) -> Result<SocketAddr> {
    let with_host = if text.contains(':') {
        text.to_string()
    } else {
        format!("127.0.0.1:{text}")
    };
    with_host
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .ok_or_else(|| anyhow!("--ready-port: expected PORT or HOST:PORT, got {text:?}"))
}

fn sleep_interruptibly(duration: Duration) -> Result<()> {
    if signals::received() {
        bail!("interrupted");
    }
    std::thread::sleep(duration);
    if signals::received() {
        bail!("interrupted");
    }
    Ok(())
}

/// The last bytes a workload printed (per stream), kept for the error message if it fails.
const OUTPUT_TAIL: usize = 4096;

/// Runs the workload once, to completion; it must exit 0 within `timeout`. It runs in its
/// own process group, killed whole at the timeout, on an interrupt, and after it exits
/// (whatever it started there must not outlive the round), and dies with leakwatch.
fn run_workload(argv: &[String], timeout: Duration) -> Result<()> {
    let run = Program::new(argv.to_vec(), timeout)
        .cap(OUTPUT_TAIL, Keep::Tail)
        .die_with_parent()
        .kill_leftovers()
        .grace(Duration::from_millis(50))
        .run_until(signals::flag());
    match &run.exit {
        Exit::Code(0) => Ok(()),
        Exit::NotStarted(error) => bail!("cannot start {:?}: {error}", argv[0]),
        Exit::Cancelled => bail!("interrupted"),
        Exit::TimedOut => bail!(
            "{:?} did not finish within {} (--workload-timeout)",
            argv[0],
            humantime::format_duration(timeout)
        ),
        Exit::WaitFailed(error) => bail!("waiting for {:?}: {error}", argv[0]),
        status => {
            let mut message = format!("{:?} failed: {status}", argv[0]);
            for (name, tail) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
                let tail = tail.text();
                let tail = tail.trim_end();
                if !tail.is_empty() {
                    let _ = write!(message, "\n--- its {name} (last lines) ---\n{tail}");
                }
            }
            bail!(message);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression (issue 16): a huge bare number panicked in `Duration::from_secs_f64`.
    #[test]
    fn durations_are_bounded_not_panicking() {
        assert_eq!(duration("2").unwrap(), Duration::from_secs(2));
        assert_eq!(duration("500ms").unwrap(), Duration::from_millis(500));
        assert!(duration("1e30").unwrap_err().contains("longer than 1h"));
        assert!(duration("10000y").unwrap_err().contains("longer than 1h"));
        assert!(duration("-1").is_err());
    }

    #[test]
    fn durations_and_sizes() {
        assert_eq!(duration("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(duration("1.5").unwrap(), Duration::from_millis(1500));
        assert!(duration("soon").is_err());
        assert_eq!(size("1MiB").unwrap(), 1 << 20);
        assert_eq!(size("512 KiB").unwrap(), 512 << 10);
        assert_eq!(size("4096").unwrap(), 4096);
        assert_eq!(size("1.5M").unwrap(), 3 << 19);
        assert!(size("12 parsecs").is_err());
    }

    #[test]
    fn xml_escapes_everything_a_name_can_hold() {
        assert_eq!(xml("a<b>&\"c'\n\u{1}"), "a&lt;b&gt;&amp;&quot;c&apos;&#10;");
    }

    #[test]
    fn ready_port_defaults_to_loopback() {
        assert_eq!(
            ready_addr("8080").unwrap(),
            "127.0.0.1:8080".parse().unwrap()
        );
        assert_eq!(
            ready_addr("127.0.0.2:81").unwrap(),
            "127.0.0.2:81".parse().unwrap()
        );
        assert!(ready_addr("nope:port").is_err());
    }

    #[test]
    fn parent_of_skips_a_comm_with_spaces_and_parentheses() {
        assert_eq!(
            parent_of(std::process::id()),
            Some(std::os::unix::process::parent_id())
        );
    }
}
