//! `leakwatch snapshot`: one sample of the host, as a ranked table or as JSON.

use crate::format;
use anyhow::{Context, Result};
use clap::{Args as ClapArgs, ValueEnum};
use leakwatch_model::text::visible;
use leakwatch_proc::{HostSample, Options, ProcessSample, Sampler, Selection, TcpState};
use std::collections::HashSet;
use std::fmt::Write as _;
use std::process::ExitCode;

#[derive(ClapArgs)]
pub struct Args {
    /// Only these processes (repeatable).
    #[arg(long = "pid", value_name = "PID")]
    pids: Vec<u32>,
    /// Only processes whose name (comm), executable or command line matches this regex.
    #[arg(long = "match", value_name = "REGEX")]
    pattern: Option<String>,
    /// How many processes to show [default: 10 in the table, all with --json].
    #[arg(long, value_name = "N")]
    top: Option<usize>,
    /// What to rank processes by.
    #[arg(long, value_enum, default_value_t = SortKey::Threads)]
    sort: SortKey,
    /// Print the full sample as JSON (schema: docs/snapshot-json.md).
    #[arg(long)]
    json: bool,
    /// Also include kernel threads (they hold no fds or sockets).
    #[arg(long)]
    kernel_threads: bool,
    /// Read sockets from /proc/net instead of netlink sock_diag.
    #[arg(long)]
    proc_net: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum SortKey {
    Threads,
    Fds,
    Sockets,
    Memory,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let selection = if !args.pids.is_empty() {
        Selection::Pids(args.pids.iter().copied().collect::<HashSet<_>>())
    } else if let Some(pattern) = &args.pattern {
        let regex = regex::Regex::new(pattern)
            .with_context(|| format!("--match: invalid regular expression {pattern:?}"))?;
        Selection::Filter(Box::new(move |identity| {
            regex.is_match(&identity.comm)
                || identity
                    .exe
                    .as_deref()
                    .is_some_and(|exe| regex.is_match(exe))
                || regex.is_match(&identity.cmdline.join(" "))
        }))
    } else {
        Selection::All
    };
    let options = Options {
        kernel_threads: args.kernel_threads,
        proc_net_sockets: args.proc_net,
        ..Options::default()
    };
    let mut sampler = Sampler::new(options, selection).context("cannot read /proc")?;
    let mut sample = sampler.sample().context("sampling failed")?;
    rank(&mut sample.processes, args.sort);
    let top = args.top.unwrap_or(if args.json { usize::MAX } else { 10 });
    sample.processes.truncate(top);
    if args.json {
        let out = crate::format::json(&sample)?;
        println!("{out}");
    } else {
        print!("{}", render(&sample, args.sort, sampler.netlink_error()));
    }
    if !args.pids.is_empty() && sample.processes.is_empty() {
        eprintln!("leakwatch: no such process: {:?}", args.pids);
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

fn rank(processes: &mut [ProcessSample], key: SortKey) {
    let value = |p: &ProcessSample| -> u64 {
        match key {
            SortKey::Threads => u64::from(p.threads.total),
            SortKey::Fds => u64::from(p.fds.total),
            SortKey::Sockets => u64::from(p.sockets.total()),
            SortKey::Memory => p.memory.rss,
        }
    };
    processes.sort_by(|a, b| {
        value(b)
            .cmp(&value(a))
            .then(a.identity.pid.cmp(&b.identity.pid))
    });
}

fn render(sample: &HostSample, key: SortKey, netlink_error: Option<&str>) -> String {
    let mut out = String::new();
    let host = &sample.host;
    let key_name = match key {
        SortKey::Threads => "threads",
        SortKey::Fds => "fds",
        SortKey::Sockets => "sockets",
        SortKey::Memory => "memory",
    };
    let _ = writeln!(
        out,
        "host: {} processes, {} threads (threads-max {}), cgroups {}, sockets via {}",
        format::count(host.processes_total),
        format::count(host.tasks_total),
        host.threads_max.map_or("?".into(), format::count),
        host.cgroup_layout,
        match sample.socket_source {
            leakwatch_proc::SocketSource::Netlink => "netlink sock_diag".to_string(),
            leakwatch_proc::SocketSource::ProcNet => match netlink_error {
                Some(why) => format!("/proc/net (netlink unavailable: {why})"),
                None => "/proc/net".to_string(),
            },
            leakwatch_proc::SocketSource::None => "nothing (socket table unreadable)".into(),
        }
    );
    let _ = writeln!(
        out,
        "top {} by {key_name}; sampled in {} ms ({} ms CPU)",
        sample.processes.len(),
        sample.stats.wall_us / 1000,
        sample.stats.cpu_us / 1000,
    );
    if sample.stats.partial > 0 {
        let _ = writeln!(
            out,
            "{} only partly readable (run as root to see their fds and sockets)",
            match sample.stats.partial {
                1 => "1 process".to_string(),
                n => format!("{n} processes"),
            }
        );
    }
    for process in &sample.processes {
        out.push('\n');
        render_process(&mut out, process, sample);
    }
    out
}

fn render_process(out: &mut String, p: &ProcessSample, sample: &HostSample) {
    let id = &p.identity;
    // Names are the processes' own: shown escaped, never as raw control characters.
    let mut title = format!("{} {}", id.pid, visible(&id.comm));
    if let Some(cgroup) = &id.cgroup {
        if let Some(unit) = cgroup.unit.as_deref().filter(|u| u.ends_with(".service")) {
            let _ = write!(title, " [{unit}]");
        } else if let Some(container) = &cgroup.container_id {
            let _ = write!(title, " [container {}]", &container[..12]);
        }
    }
    let uptime_s = (sample.time_unix_ms - id.start_time_unix_ms).max(0) as u64 / 1000;
    let _ = write!(title, "  up {}", format::duration(uptime_s));
    if let Some(uid) = id.uid {
        let _ = write!(title, "  uid {uid}");
    }
    let _ = writeln!(out, "{title}");
    let command = visible(&id.cmdline.join(" "));
    if !command.is_empty() {
        let shown: String = command.chars().take(100).collect();
        let ellipsis = if command.chars().count() > 100 {
            "…"
        } else {
            ""
        };
        let _ = writeln!(out, "  cmd      {shown}{ellipsis}");
    }

    let thread_limit = p.thread_limit(&sample.host);
    let groups: Vec<String> = p
        .threads
        .groups
        .iter()
        .take(4)
        .map(|g| format!("{} {}", g.name, format::count(u64::from(g.count))))
        .collect();
    let _ = writeln!(
        out,
        "  threads  {}{}  {}",
        format::against_limit(u64::from(p.threads.total), thread_limit.map(|l| l.value)),
        thread_limit.map_or(String::new(), |l| format!(" {}", l.source)),
        groups.join(" · ")
    );

    if p.partial
        .iter()
        .any(|m| m.part == leakwatch_proc::Part::Fds)
    {
        let _ = writeln!(out, "  fds      unreadable (permission denied)");
    } else {
        let mut kinds: Vec<_> = p.fds.by_kind.iter().collect();
        kinds.sort_by(|a, b| b.1.cmp(a.1));
        let kinds: Vec<String> = kinds
            .iter()
            .take(5)
            .map(|(kind, n)| format!("{} {}", kind.as_str(), format::count(u64::from(**n))))
            .collect();
        let _ = writeln!(
            out,
            "  fds      {}  {}",
            format::against_limit(u64::from(p.fds.total), p.fd_limit().map(|l| l.value)),
            kinds.join(" · ")
        );
        // The largest file path groups (already escaped and bounded by the sampler).
        for (i, group) in p.fds.paths.iter().take(3).enumerate() {
            let head = if i == 0 { "  files    " } else { "           " };
            let _ = writeln!(
                out,
                "{head}{} {}",
                format::count(u64::from(group.count)),
                group.name
            );
        }
        let s = &p.sockets;
        if s.total() > 0 {
            let mut states: Vec<_> = s.tcp.iter().collect();
            states.sort_by(|a, b| b.1.cmp(a.1));
            let mut parts: Vec<String> = states
                .iter()
                .map(|(state, n)| format!("{} {}", state.as_str(), format::count(u64::from(**n))))
                .collect();
            for (name, n) in [("udp", s.udp), ("unix", s.unix), ("other", s.other)] {
                if n > 0 {
                    parts.push(format!("{name} {}", format::count(u64::from(n))));
                }
            }
            let _ = writeln!(out, "  sockets  {}", parts.join(" · "));
            // The peers people go looking for: CLOSE_WAIT first, then the largest others.
            let mut peers: Vec<_> = s.tcp_peers.iter().collect();
            peers.sort_by_key(|peer| {
                (
                    peer.state != TcpState::CloseWait,
                    std::cmp::Reverse(peer.count),
                )
            });
            for peer in peers.iter().take(3) {
                let _ = writeln!(
                    out,
                    "           {} {} {}",
                    format::count(u64::from(peer.count)),
                    peer.state.as_str(),
                    peer.peer
                );
            }
        }
    }
    let m = &p.memory;
    let mut memory = format!("rss {}", format::bytes(m.rss));
    if let Some(anon) = m.rss_anon {
        let _ = write!(memory, " (anon {})", format::bytes(anon));
    }
    if let Some(swap) = m.swap.filter(|s| *s > 0) {
        let _ = write!(memory, " swap {}", format::bytes(swap));
    }
    if let Some(current) = m.cgroup_current {
        match m.cgroup_max {
            Some(max) if max > 0 => {
                let _ = write!(
                    memory,
                    " · cgroup {}/{} ({}%)",
                    format::bytes(current),
                    format::bytes(max),
                    current * 100 / max
                );
            }
            _ => {
                let _ = write!(memory, " · cgroup {}", format::bytes(current));
            }
        }
    }
    let _ = writeln!(out, "  memory   {memory}");
    if !p.partial.is_empty() {
        let parts: Vec<String> = p
            .partial
            .iter()
            .map(|m| format!("{}: {}", m.part.as_str(), m.reason.as_str()))
            .collect();
        let _ = writeln!(out, "  partial  {}", parts.join(", "));
    }
}
