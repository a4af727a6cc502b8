//! `leakwatch incidents`, `leakwatch incident ID` (evidence captured at first detection)
//! and `leakwatch silence` / `leakwatch silences`.

use crate::agent_cmd::{
    get_json, json_body, parse, print_json, request, request_with_body, ClientArgs, NO_QUERY,
};
use crate::format;
use anyhow::{bail, Result};
use clap::Args as ClapArgs;
// The incident folders themselves (`--data-dir`), read without the agent.
use leakwatch_agent::standalone::incidents as evidence;
use leakwatch_api::{self as api, paths, ErrorBody, IncidentRecord};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(ClapArgs)]
pub struct IncidentsArgs {
    /// Read the incident folders in this data dir directly (works while the agent is
    /// down) instead of asking the agent.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(ClapArgs)]
pub struct IncidentArgs {
    /// The incident ID, as listed by `leakwatch incidents` and named in alerts.
    id: String,
    /// Print this evidence file whole (e.g. threads.txt, sockets.txt, fds.txt).
    #[arg(long, value_name = "NAME", conflicts_with = "capture")]
    file: Option<String>,
    /// Ask the agent to capture again, now, into this incident: `heap` (two snapshots of
    /// what grows, `evidence.heap_interval` apart) or `heap-dump` (a JVM's full heap dump,
    /// refused with the reason when the heap or the disk has too little room, as a dump
    /// near the limit killed the JVM of incident 004). Prints the outcome.
    #[arg(long, value_name = "WHAT", value_parser = ["heap", "heap-dump"])]
    capture: Option<String>,
    /// With --capture: how long to wait for the outcome (0s: only queue it).
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "10m",
        requires = "capture"
    )]
    wait: String,
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    #[command(flatten)]
    client: ClientArgs,
}

fn age(created_ms: i64) -> String {
    let seconds = (crate::format::now_ms() - created_ms).max(0) as u64 / 1000;
    format!("{} ago", format::duration(seconds))
}

fn what(meta: &IncidentRecord) -> String {
    let mut text = if meta.attribution.is_empty() {
        meta.resource.clone()
    } else {
        format!("{} {}", meta.resource, meta.attribution)
    };
    if meta.findings.len() > 1 {
        text.push_str(&format!(" (+{} more)", meta.findings.len() - 1));
    }
    text
}

pub fn incidents(args: IncidentsArgs) -> Result<ExitCode> {
    let list: Vec<IncidentRecord> = match &args.data_dir {
        Some(dir) => evidence::list(&evidence::incidents_dir(dir)).map_err(anyhow::Error::msg)?,
        None => {
            let body = get_json(&args.client, paths::INCIDENTS, NO_QUERY)?;
            if args.client.json {
                return print_json(&body);
            }
            parse::<api::Incidents>(paths::INCIDENTS, &body)?.incidents
        }
    };
    if args.client.json {
        println!(
            "{}",
            crate::format::json(&serde_json::json!({ "incidents": list }))?
        );
        return Ok(ExitCode::SUCCESS);
    }
    if list.is_empty() {
        println!(
            "no incidents: evidence is captured when a finding first appears (`leakwatch leaks`)"
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<44} {:<10} {:<20} {:<11} {:<9} WHAT",
        "ID", "AGE", "TARGET", "KIND", "STATUS"
    );
    for meta in &list {
        let mut status = meta.status.clone();
        if meta.mitigations.iter().any(|m| m.ran) {
            status.push_str(" +restart");
        }
        println!(
            "{:<44} {:<10} {:<20} {:<11} {:<9} {}",
            meta.id,
            age(meta.created_ms),
            meta.target,
            meta.kind.to_string(),
            status,
            what(meta)
        );
    }
    println!("\nshow one: leakwatch incident ID   (evidence files: leakwatch incident ID --file threads.txt)");
    Ok(ExitCode::SUCCESS)
}

pub fn incident(args: IncidentArgs) -> Result<ExitCode> {
    if !evidence::valid_id(&args.id) {
        bail!(
            "{:?} is not an incident ID (see `leakwatch incidents`)",
            args.id
        );
    }
    if let Some(what) = &args.capture {
        if args.data_dir.is_some() {
            bail!("--capture asks the agent, which runs the capture: leave out --data-dir");
        }
        return capture(&args, what);
    }
    let local = args.data_dir.as_ref().map(|d| evidence::incidents_dir(d));
    if let Some(name) = &args.file {
        let bytes = match &local {
            Some(root) => evidence::read_file(root, &args.id, name).map_err(anyhow::Error::msg)?,
            None => get_text(
                &args.client,
                &format!("{}/{}/files/{}", paths::INCIDENTS, args.id, encode(name)),
            )?,
        };
        use std::io::Write;
        std::io::stdout().write_all(&bytes)?;
        return Ok(ExitCode::SUCCESS);
    }
    let (meta, dir, file_of): (IncidentRecord, String, FileReader) = match &local {
        Some(root) => {
            let meta = evidence::load(root, &args.id).map_err(anyhow::Error::msg)?;
            let root = root.clone();
            let id = args.id.clone();
            (
                meta,
                root.join(&args.id).display().to_string(),
                Box::new(move |name| {
                    evidence::read_file(&root, &id, name)
                        .ok()
                        .map(|b| String::from_utf8_lossy(&b).into_owned())
                }),
            )
        }
        None => {
            let path = format!("{}/{}", paths::INCIDENTS, args.id);
            let body = get_json(&args.client, &path, NO_QUERY)?;
            if args.client.json {
                return print_json(&body);
            }
            let api::IncidentDetail {
                incident: meta,
                dir,
            } = parse(&path, &body)?;
            let client = ClientArgs {
                url: args.client.url.clone(),
                token: args.client.token.clone(),
                json: false,
            };
            let id = args.id.clone();
            (
                meta,
                dir,
                Box::new(move |name| {
                    get_text(
                        &client,
                        &format!("{}/{id}/files/{}", paths::INCIDENTS, encode(name)),
                    )
                    .ok()
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                }),
            )
        }
    };
    if args.client.json {
        println!("{}", crate::format::json(&meta)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("incident {}", meta.id);
    println!("  target:    {}", meta.target);
    println!("  what:      {} ({})", what(&meta), meta.kind);
    println!("  finding:   {}", meta.summary);
    for other in meta.findings.iter().skip(1) {
        println!("  also:      {} ({})", other.summary, other.kind);
    }
    println!(
        "  captured:  {} ({} ms, {})",
        age(meta.created_ms),
        meta.capture_ms,
        meta.status
    );
    println!(
        "  processes: {}",
        meta.pids
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    );
    if !dir.is_empty() {
        println!("  folder:    {dir}");
    }
    println!("\nevidence files:");
    for f in &meta.files {
        println!(
            "  {:<26} {:>10}  {}",
            f.name,
            format::count(f.bytes),
            f.note
        );
    }
    for m in &meta.mitigations {
        println!(
            "\nmitigation {}: `{}` -> {}",
            if m.ran { "ran" } else { "skipped" },
            m.command.join(" "),
            m.outcome
        );
    }
    // The part people look at first: what grows, who creates it, which thread groups,
    // which sockets.
    for (name, lines) in [
        ("heap-growth.txt", 16usize),
        ("creation.txt", 14),
        ("threads.txt", 14),
        ("sockets.txt", 12),
    ] {
        if let Some(text) = file_of(name) {
            println!("\n--- {name} (first {lines} lines; --file {name} for all)");
            for line in text.lines().take(lines) {
                println!("{line}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The longest `--wait`.
const MAX_CAPTURE_WAIT: std::time::Duration = std::time::Duration::from_secs(3600);

/// `leakwatch incident ID --capture WHAT`: queues the capture on the agent, then waits for
/// the file that holds its outcome and prints it.
fn capture(args: &IncidentArgs, what: &str) -> Result<ExitCode> {
    let wait = format::duration_arg("--wait", &args.wait, MAX_CAPTURE_WAIT)?;
    let what = match what {
        "heap" => api::CaptureKind::Heap,
        _ => api::CaptureKind::HeapDump,
    };
    let path = format!("{}/{}/captures", paths::INCIDENTS, args.id);
    let answer = json_body(
        &path,
        request_with_body(
            &args.client,
            reqwest::Method::POST,
            &path,
            &api::CaptureRequest { what },
        )?,
    )?;
    let accepted: api::CaptureAccepted = parse(&path, &answer)?;
    if !args.client.json {
        println!(
            "the agent is capturing {} of {} (processes {:?}); the outcome goes to {}",
            what.as_str(),
            args.id,
            accepted.pids,
            accepted.file
        );
    }
    let started = std::time::Instant::now();
    let incident = format!("{}/{}", paths::INCIDENTS, args.id);
    let entry = loop {
        if started.elapsed() >= wait {
            break None;
        }
        let body = get_json(&args.client, &incident, NO_QUERY)?;
        let detail: api::IncidentDetail = parse(&incident, &body)?;
        if let Some(entry) = detail
            .incident
            .files
            .into_iter()
            .find(|f| f.name == accepted.file)
        {
            break Some(entry);
        }
        std::thread::sleep(std::time::Duration::from_secs(1).min(wait));
    };
    let text = match &entry {
        Some(_) => {
            let file = format!("{incident}/files/{}", encode(&accepted.file));
            Some(String::from_utf8_lossy(&get_text(&args.client, &file)?).into_owned())
        }
        None => None,
    };
    if args.client.json {
        let value = serde_json::json!({ "accepted": accepted, "file": entry, "text": text });
        println!("{}", crate::format::json(&value)?);
    } else if let Some(text) = &text {
        // As `--file` prints it: the agent wrote evidence files with control characters escaped.
        print!("{text}");
    } else if !wait.is_zero() {
        println!(
            "not done after {}: see later with `leakwatch incident {} --file {}`",
            humantime::format_duration(wait),
            args.id,
            accepted.file
        );
    }
    // Done and written: success, whatever the capture found (a refusal is an answer).
    Ok(if entry.is_some() || wait.is_zero() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

/// Reads one evidence file of the incident being shown (from the folder or the agent).
type FileReader = Box<dyn Fn(&str) -> Option<String>>;

/// Percent-encodes a path segment (file names are plain, but be safe).
fn encode(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn get_text(client: &ClientArgs, path: &str) -> Result<Vec<u8>> {
    let (status, bytes) = request(client, reqwest::Method::GET, path, NO_QUERY)?;
    if !status.is_success() {
        let message = serde_json::from_slice::<ErrorBody>(&bytes)
            .ok()
            .filter(|body| !body.error.is_empty())
            .map(|body| body.error)
            .unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned());
        bail!("{status}: {message}");
    }
    Ok(bytes)
}

#[derive(ClapArgs)]
pub struct SilenceArgs {
    /// The target whose alerts to silence (as in `leakwatch targets`).
    target: String,
    /// Only this resource (threads, fds, tcp, tcp_peer, memory, ...); all by default.
    #[arg(long, value_name = "RESOURCE")]
    resource: Option<String>,
    /// How long, e.g. 2h or 30m. Alerts keep their state underneath; when the silence ends,
    /// a still-firing alert notifies at once.
    #[arg(
        long = "for",
        value_name = "DURATION",
        required_unless_present = "expire"
    )]
    duration: Option<String>,
    /// Why (shown in `leakwatch silences` and the agent's log).
    #[arg(long, value_name = "TEXT", default_value = "")]
    reason: String,
    /// End the target's silences now instead (only --resource's, if given).
    #[arg(long, conflicts_with = "duration")]
    expire: bool,
    #[command(flatten)]
    client: ClientArgs,
}

pub fn silence(args: SilenceArgs) -> Result<ExitCode> {
    if args.expire {
        let query = api::SilenceMatch {
            target: args.target.clone(),
            resource: args.resource.clone(),
        };
        let answer = json_body(
            paths::SILENCES,
            request(
                &args.client,
                reqwest::Method::DELETE,
                paths::SILENCES,
                &query,
            )?,
        )?;
        if args.client.json {
            print_json(&answer)?;
        } else {
            println!(
                "silences of {}{} ended",
                args.target,
                args.resource
                    .as_ref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default()
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let duration = args.duration.clone().unwrap_or_default();
    // Check locally first: a clearer message than the agent's.
    crate::format::duration_arg("--for", &duration, crate::format::MAX_SILENCE)?;
    let new = api::NewSilence {
        target: args.target.clone(),
        resource: args.resource.clone(),
        duration,
        reason: args.reason.clone(),
    };
    let answer = json_body(
        paths::SILENCES,
        request_with_body(&args.client, reqwest::Method::POST, paths::SILENCES, &new)?,
    )?;
    if args.client.json {
        print_json(&answer)?;
    } else {
        let created: api::SilenceCreated = parse(paths::SILENCES, &answer)?;
        println!(
            "silenced {}{} until {}{}",
            args.target,
            args.resource
                .as_ref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default(),
            created.silence.until,
            if args.reason.is_empty() {
                String::new()
            } else {
                format!(": {}", args.reason)
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn silences(args: ClientArgs) -> Result<ExitCode> {
    let body = get_json(&args, paths::SILENCES, NO_QUERY)?;
    if args.json {
        return print_json(&body);
    }
    let body: api::Silences = parse(paths::SILENCES, &body)?;
    if !body.enabled {
        println!("alerting is off: no [alerts.channels] in the agent's config (docs/alerts.md)");
        return Ok(ExitCode::SUCCESS);
    }
    if body.silences.is_empty() {
        println!("no active silences");
    }
    for s in &body.silences {
        println!(
            "{:<24} {:<12} until {}  {}",
            s.target,
            s.resource.as_deref().unwrap_or("(all)"),
            s.until,
            s.reason
        );
    }
    Ok(ExitCode::SUCCESS)
}
