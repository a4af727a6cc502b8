//! `leakwatch agent` (the daemon) and the commands that read from it: `targets`, `history`.

use crate::format;
use anyhow::{bail, Context, Result};
use clap::Args as ClapArgs;
use leakwatch_agent::config::Config;
use serde_json::Value;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(ClapArgs)]
pub struct AgentArgs {
    /// TOML config file (see docs/agent.md). Flags override it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Sampling interval, e.g. 10s (default) or 1s.
    #[arg(long, value_name = "DURATION")]
    interval: Option<String>,
    /// Where the history database lives [default: /var/lib/leakwatch as root,
    /// $XDG_DATA_HOME/leakwatch otherwise].
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// HTTP listen address [default: 127.0.0.1:9464]. Beyond loopback it needs --token.
    #[arg(long, value_name = "ADDR")]
    listen: Option<std::net::SocketAddr>,
    /// Bearer token required on every HTTP request.
    #[arg(long, value_name = "TOKEN", env = "LEAKWATCH_TOKEN")]
    token: Option<String>,
    /// Only check the configuration and exit.
    #[arg(long)]
    check_config: bool,
}

pub fn agent(args: AgentArgs) -> Result<ExitCode> {
    let mut config = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    if let Some(interval) = &args.interval {
        config.agent.interval = humantime::parse_duration(interval)
            .with_context(|| format!("--interval {interval:?} is not a duration"))?;
    }
    if let Some(listen) = args.listen {
        config.agent.listen = listen;
    }
    if args.token.is_some() {
        config.agent.token = args.token.clone();
    }
    if let Some(dir) = &args.data_dir {
        config.agent.data_dir = Some(dir.clone());
    }
    let source = args
        .config
        .clone()
        .unwrap_or_else(|| PathBuf::from("(command line)"));
    config.validate(&source)?;
    if args.check_config {
        println!("config ok");
        return Ok(ExitCode::SUCCESS);
    }
    let data_dir = config
        .agent
        .data_dir
        .clone()
        .unwrap_or_else(leakwatch_agent::daemon::default_data_dir);
    init_logging();
    match leakwatch_agent::run(config, &data_dir) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(message) => bail!(message),
    }
}

/// Logs to stderr (systemd's journal picks it up), filtered by `LEAKWATCH_LOG`
/// (default `info`), colored only on a terminal.
fn init_logging() {
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LEAKWATCH_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
}

#[derive(ClapArgs)]
pub struct ClientArgs {
    /// The agent's address.
    #[arg(
        long,
        default_value = "http://127.0.0.1:9464",
        value_name = "URL",
        env = "LEAKWATCH_URL"
    )]
    pub url: String,
    /// Bearer token, when the agent requires one.
    #[arg(long, value_name = "TOKEN", env = "LEAKWATCH_TOKEN")]
    pub token: Option<String>,
    /// Print the API's JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// One request to the agent. Returns the status and the body, whatever the status; fails
/// only when the agent cannot be reached or read, or wants a token it was not given.
pub fn request(
    client: &ClientArgs,
    method: reqwest::Method,
    path: &str,
    query: &[(&str, &str)],
    body: Option<&Value>,
) -> Result<(reqwest::StatusCode, Vec<u8>)> {
    let http = reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()?;
    let url = format!("{}{path}", client.url.trim_end_matches('/'));
    let mut request = http.request(method, &url).query(query);
    if let Some(token) = &client.token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().with_context(|| {
        format!(
            "cannot reach the agent at {} (is `leakwatch agent` running?)",
            client.url
        )
    })?;
    let status = response.status();
    let bytes = response
        .bytes()
        .with_context(|| format!("reading the agent's answer to {url}"))?;
    if status == reqwest::StatusCode::UNAUTHORIZED {
        bail!(
            "the agent at {} wants a bearer token: pass --token or set LEAKWATCH_TOKEN",
            client.url
        );
    }
    Ok((status, bytes.to_vec()))
}

/// The JSON answer of a request; a non-success status is an error with the agent's
/// message.
pub fn send(
    client: &ClientArgs,
    method: reqwest::Method,
    path: &str,
    query: &[(&str, &str)],
    body: Option<&Value>,
) -> Result<Value> {
    let (status, bytes) = request(client, method, path, query, body)?;
    let value: Value = serde_json::from_slice(&bytes).with_context(|| {
        format!(
            "the agent's answer to {path} is not JSON ({status}): {}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
        )
    })?;
    if !status.is_success() {
        bail!(
            "{status}: {}",
            value["error"].as_str().unwrap_or("request failed")
        );
    }
    Ok(value)
}

pub fn get(client: &ClientArgs, path: &str, query: &[(&str, &str)]) -> Result<Value> {
    send(client, reqwest::Method::GET, path, query, None)
}

pub fn targets(args: ClientArgs) -> Result<ExitCode> {
    let body = get(&args, "/api/v1/targets", &[])?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&body)?);
        return Ok(ExitCode::SUCCESS);
    }
    let targets = body["targets"].as_array().cloned().unwrap_or_default();
    println!(
        "{:<36} {:<9} {:>5} {:>8} {:>7} {:>10} {:>10}",
        "TARGET", "KIND", "PROCS", "THREADS", "FDS", "CLOSE_WAIT", "RSS"
    );
    let mut live: Vec<&Value> = targets.iter().filter(|t| t["live"] == true).collect();
    live.sort_by(|a, b| {
        let threads = |t: &Value| t["current"]["threads"].as_f64().unwrap_or(0.0);
        threads(b).total_cmp(&threads(a))
    });
    for target in &live {
        let current = &target["current"];
        let number = |key: &str| current[key].as_f64().map(|v| v as u64);
        println!(
            "{:<36} {:<9} {:>5} {:>8} {:>7} {:>10} {:>10}",
            target["name"].as_str().unwrap_or("?"),
            target["kind"].as_str().unwrap_or("?"),
            number("processes").unwrap_or(0),
            number("threads").map_or("-".into(), format::count),
            number("fds").map_or("-".into(), format::count),
            number("tcp{CLOSE_WAIT}").map_or("0".into(), format::count),
            number("memory{rss}").map_or("-".into(), format::bytes),
        );
    }
    let gone = targets.len() - live.len();
    if gone > 0 {
        println!("({gone} more targets have history but no live process; --json lists them)");
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(ClapArgs)]
pub struct HistoryArgs {
    /// The target, as `leakwatch targets` names it.
    target: String,
    /// Only this resource: threads, fds, tcp, tcp_peer, sockets, memory, processes.
    #[arg(long, value_name = "R")]
    resource: Option<String>,
    /// How far back, e.g. 6h, 30m, 7d.
    #[arg(long, default_value = "1h", value_name = "DURATION")]
    since: String,
    #[command(flatten)]
    client: ClientArgs,
}

pub fn history(args: HistoryArgs) -> Result<ExitCode> {
    humantime::parse_duration(&args.since)
        .with_context(|| format!("--since {:?} is not a duration", args.since))?;
    let mut query = vec![
        ("target", args.target.as_str()),
        ("since", args.since.as_str()),
    ];
    if let Some(resource) = &args.resource {
        query.push(("resource", resource));
    }
    let body = get(&args.client, "/api/v1/series", &query)?;
    if args.client.json {
        println!("{}", serde_json::to_string_pretty(&body)?);
        return Ok(ExitCode::SUCCESS);
    }
    let series = body["series"].as_array().cloned().unwrap_or_default();
    println!("{} over the last {}", args.target, args.since);
    for s in &series {
        let key = leakwatch_model::SeriesKey::from_text(
            "",
            s["resource"].as_str().unwrap_or(""),
            s["attribution"].as_str().unwrap_or(""),
        );
        if key.is_limit {
            continue;
        }
        let name = key.label();
        let values: Vec<f64> = s["points"]
            .as_array()
            .map(|points| points.iter().filter_map(|p| p[1].as_f64()).collect())
            .unwrap_or_default();
        let (Some(first), Some(last)) = (values.first(), values.last()) else {
            continue;
        };
        let max = values.iter().copied().fold(f64::MIN, f64::max);
        println!(
            "{name:<44} {} {:>10} -> {:<10} max {}",
            sparkline(&values, 40),
            human(&key.resource, *first),
            human(&key.resource, *last),
            human(&key.resource, max)
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn human(resource: &leakwatch_model::Resource, value: f64) -> String {
    if resource.is_bytes() {
        format::bytes(value as u64)
    } else {
        format::count(value as u64)
    }
}

/// The values squeezed into `width` block characters, scaled from their min to their max.
pub fn sparkline(values: &[f64], width: usize) -> String {
    const BLOCKS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    if values.is_empty() {
        return String::new();
    }
    let buckets = width.min(values.len());
    let (min, max) = values
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
    (0..buckets)
        .map(|i| {
            let start = i * values.len() / buckets;
            let end = ((i + 1) * values.len() / buckets).max(start + 1);
            let slice = &values[start..end];
            let mean = slice.iter().sum::<f64>() / slice.len() as f64;
            if max > min {
                BLOCKS[(((mean - min) / (max - min)) * 7.0).round() as usize]
            } else {
                BLOCKS[0]
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn sparkline_scales() {
        assert_eq!(
            super::sparkline(&[0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0], 8),
            "▁▂▃▄▅▆▇█"
        );
        assert_eq!(super::sparkline(&[5.0, 5.0], 10), "▁▁");
        assert_eq!(super::sparkline(&[], 10), "");
        assert_eq!(super::sparkline(&[0.0; 100], 10).chars().count(), 10);
    }
}

#[derive(ClapArgs)]
pub struct RunArgs {
    /// Target name [default: the command's base name].
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// When to restart the command: on-failure, always, never.
    #[arg(long, default_value = "on-failure", value_name = "POLICY")]
    restart: leakwatch_agent::supervise::Policy,
    /// Stop after this many restarts [default: unlimited].
    #[arg(long, value_name = "N")]
    max_restarts: Option<u32>,
    /// Agent config file for the `[agent]` and `[detect]` settings (docs/agent.md); its
    /// `[[target]]` rules are not used (the command is the target).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Sampling interval [default: 10s, or the config's].
    #[arg(long, value_name = "DURATION")]
    interval: Option<String>,
    /// Kibibytes of stderr kept per life.
    #[arg(long, default_value_t = 64, value_name = "KIB")]
    tail_kib: usize,
    /// History database directory [default: <agent data dir>/run-<name>].
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Also serve the HTTP API (and /metrics) on this address while running.
    #[arg(long, value_name = "ADDR")]
    listen: Option<std::net::SocketAddr>,
    /// The command and its arguments (after `--`).
    #[arg(last = true, required = true, value_name = "CMD")]
    command: Vec<String>,
}

pub fn run(args: RunArgs) -> Result<ExitCode> {
    let name = args.name.clone().unwrap_or_else(|| {
        args.command[0]
            .rsplit('/')
            .next()
            .unwrap_or("command")
            .to_string()
    });
    let mut config = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    config.targets.clear();
    if let Some(interval) = &args.interval {
        config.agent.interval = humantime::parse_duration(interval)
            .with_context(|| format!("--interval {interval:?} is not a duration"))?;
    }
    if let Some(listen) = args.listen {
        config.agent.listen = listen;
    }
    config.validate(std::path::Path::new("(command line)"))?;
    let data_dir = args
        .data_dir
        .clone()
        .unwrap_or_else(|| leakwatch_agent::daemon::default_data_dir().join(format!("run-{name}")));
    init_logging();
    let options = leakwatch_agent::supervise::RunOptions {
        target: name,
        command: args.command.clone(),
        policy: args.restart,
        max_restarts: args.max_restarts,
        tail_bytes: args.tail_kib * 1024,
        serve: args.listen.is_some(),
    };
    match leakwatch_agent::supervise::run(config, &data_dir, options) {
        Ok(code) => Ok(ExitCode::from(code.clamp(0, 255) as u8)),
        Err(message) => bail!(message),
    }
}

#[derive(ClapArgs)]
pub struct RestartsArgs {
    /// The target, as `leakwatch targets` names it.
    target: String,
    /// How far back, e.g. 24h.
    #[arg(long, default_value = "24h", value_name = "DURATION")]
    since: String,
    #[command(flatten)]
    client: ClientArgs,
}

pub fn restarts(args: RestartsArgs) -> Result<ExitCode> {
    let body = get(
        &args.client,
        "/api/v1/restarts",
        &[
            ("target", args.target.as_str()),
            ("since", args.since.as_str()),
        ],
    )?;
    if args.client.json {
        println!("{}", serde_json::to_string_pretty(&body)?);
        return Ok(ExitCode::SUCCESS);
    }
    let list = body["restarts"].as_array().cloned().unwrap_or_default();
    println!(
        "{}: {} exits or restarts in the last {}",
        args.target,
        list.len(),
        args.since
    );
    for restart in &list {
        let how = match (restart["exit_code"].as_i64(), restart["signal"].as_i64()) {
            (Some(code), _) => format!("exit {code}"),
            (None, Some(signal)) => format!("signal {signal}"),
            _ => "replaced".to_string(),
        };
        let oom = if restart["oom_killed"] == true {
            " (OOM kill)"
        } else {
            ""
        };
        let next = restart["new_pid"]
            .as_u64()
            .map_or("not restarted".to_string(), |p| format!("-> pid {p}"));
        println!(
            "  pid {} {how}{oom} {next}",
            restart["old_pid"].as_u64().unwrap_or(0)
        );
        if let Some(tail) = restart["stderr_tail"].as_str() {
            if let Some(line) = tail.lines().rev().find(|l| !l.trim().is_empty()) {
                println!("      last stderr: {line}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
