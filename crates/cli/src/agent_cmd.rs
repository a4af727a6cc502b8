//! `leakwatch agent` (the daemon) and the commands that read from it: `targets`, `history`.

use crate::format;
use anyhow::{anyhow, bail, Context, Result};
use clap::Args as ClapArgs;
use leakwatch_agent::config::Config;
use leakwatch_api::{self as api, paths, ErrorBody};
use leakwatch_model::{Attribution, MemoryKind, Resource, SeriesKey, TcpState};
use serde::de::{DeserializeOwned, IgnoredAny};
use serde::Serialize;
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

/// For requests without query parameters.
pub const NO_QUERY: &[(&str, &str)] = &[];

/// One request to the agent, with `query` (a leakwatch-api query type, or pairs). Returns
/// the status and the body, whatever the status; fails only when the agent cannot be
/// reached or read, or wants a token it was not given.
pub fn request<Q: Serialize + ?Sized>(
    client: &ClientArgs,
    method: reqwest::Method,
    path: &str,
    query: &Q,
) -> Result<(reqwest::StatusCode, Vec<u8>)> {
    exchange(client, method, path, |request| request.query(query))
}

/// As [`request`], with a JSON body.
pub fn request_with_body<B: Serialize>(
    client: &ClientArgs,
    method: reqwest::Method,
    path: &str,
    body: &B,
) -> Result<(reqwest::StatusCode, Vec<u8>)> {
    exchange(client, method, path, |request| request.json(body))
}

fn exchange(
    client: &ClientArgs,
    method: reqwest::Method,
    path: &str,
    build: impl FnOnce(reqwest::blocking::RequestBuilder) -> reqwest::blocking::RequestBuilder,
) -> Result<(reqwest::StatusCode, Vec<u8>)> {
    let http = reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()?;
    let url = format!("{}{path}", client.url.trim_end_matches('/'));
    let mut request = build(http.request(method, &url));
    if let Some(token) = &client.token {
        request = request.bearer_auth(token);
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

/// The JSON body of a successful answer; a non-success status is an error with the
/// agent's message (its [`ErrorBody`]).
pub fn json_body(path: &str, (status, bytes): (reqwest::StatusCode, Vec<u8>)) -> Result<Vec<u8>> {
    let not_json = || {
        anyhow!(
            "the agent's answer to {path} is not JSON ({status}): {}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
        )
    };
    if status.is_success() {
        serde_json::from_slice::<IgnoredAny>(&bytes).map_err(|_| not_json())?;
        return Ok(bytes);
    }
    let message = match serde_json::from_slice::<ErrorBody>(&bytes) {
        Ok(body) if !body.error.is_empty() => body.error,
        Err(error) if error.is_syntax() || error.is_eof() => return Err(not_json()),
        _ => "request failed".to_string(),
    };
    bail!("{status}: {message}")
}

/// A GET's JSON body, as the agent sent it (for `--json`; [`parse`] reads it).
pub fn get_json<Q: Serialize + ?Sized>(
    client: &ClientArgs,
    path: &str,
    query: &Q,
) -> Result<Vec<u8>> {
    json_body(path, request(client, reqwest::Method::GET, path, query)?)
}

/// A JSON body read into its leakwatch-api type.
pub fn parse<T: DeserializeOwned>(path: &str, body: &[u8]) -> Result<T> {
    serde_json::from_slice(body)
        .with_context(|| format!("the agent's answer to {path} does not have the expected shape"))
}

/// A GET read into its leakwatch-api type.
pub fn get<T: DeserializeOwned, Q: Serialize + ?Sized>(
    client: &ClientArgs,
    path: &str,
    query: &Q,
) -> Result<T> {
    parse(path, &get_json(client, path, query)?)
}

/// Prints a JSON body pretty, as `--json` does: what the agent sent, not what this version
/// of the CLI understood of it.
pub fn print_json(body: &[u8]) -> Result<ExitCode> {
    let value: serde_json::Value = serde_json::from_slice(body)?;
    println!("{}", crate::format::json(&value)?);
    Ok(ExitCode::SUCCESS)
}

pub fn targets(args: ClientArgs) -> Result<ExitCode> {
    let body = get_json(&args, paths::TARGETS, NO_QUERY)?;
    if args.json {
        return print_json(&body);
    }
    let body: api::Targets = parse(paths::TARGETS, &body)?;
    println!(
        "{:<36} {:<9} {:>5} {:>8} {:>7} {:>10} {:>10}  {:>7} COMMAND",
        "TARGET", "KIND", "PROCS", "THREADS", "FDS", "CLOSE_WAIT", "RSS", "PID"
    );
    let value = |target: &api::Target, key: &SeriesKey| {
        target.current.as_ref().and_then(|current| current.get(key))
    };
    let threads = SeriesKey::total("", Resource::Threads);
    let mut live: Vec<&api::Target> = body.targets.iter().filter(|t| t.live).collect();
    live.sort_by(|a, b| {
        let threads = |t: &api::Target| value(t, &threads).unwrap_or(0.0);
        threads(b).total_cmp(&threads(a))
    });
    let close_wait = SeriesKey::new(
        "",
        Resource::Tcp,
        Attribution::TcpState(TcpState::CloseWait),
    );
    let rss = SeriesKey::new("", Resource::Memory, Attribution::Memory(MemoryKind::Rss));
    for target in &live {
        let number = |key: &SeriesKey| value(target, key).map(|v| v as u64);
        // The oldest process: a service's main one. The command line is already escaped by
        // the agent; cut for the terminal.
        let (pid, command) = target
            .processes
            .first()
            .map_or((String::new(), String::new()), |p| {
                let command = if p.cmdline.is_empty() {
                    format!("[{}]", p.comm)
                } else {
                    p.cmdline.clone()
                };
                (p.pid.to_string(), cut(&command, 60))
            });
        println!(
            "{:<36} {:<9} {:>5} {:>8} {:>7} {:>10} {:>10}  {pid:>7} {command}",
            target.name,
            target.kind.map_or("", api::TargetKind::as_str),
            number(&SeriesKey::total("", Resource::Processes)).unwrap_or(0),
            number(&threads).map_or("-".into(), format::count),
            number(&SeriesKey::total("", Resource::Fds)).map_or("-".into(), format::count),
            number(&close_wait).map_or("0".into(), format::count),
            number(&rss).map_or("-".into(), format::bytes),
        );
    }
    let gone = body.targets.len() - live.len();
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
    crate::format::duration_arg("--since", &args.since, crate::format::MAX_RANGE)?;
    let query = api::SeriesQuery {
        target: args.target.clone(),
        resource: args.resource.clone(),
        since: Some(args.since.clone()),
        ..api::SeriesQuery::default()
    };
    let body = get_json(&args.client, paths::SERIES, &query)?;
    if args.client.json {
        return print_json(&body);
    }
    let body: api::SeriesBody = parse(paths::SERIES, &body)?;
    println!("{} over the last {}", args.target, args.since);
    for s in &body.series {
        let key = &s.key;
        if key.is_limit {
            continue;
        }
        let name = key.label();
        let values: Vec<f64> = s.points.iter().map(|p| p.1).collect();
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
    let query = api::RestartsQuery {
        target: args.target.clone(),
        since: Some(args.since.clone()),
    };
    let body = get_json(&args.client, paths::RESTARTS, &query)?;
    if args.client.json {
        return print_json(&body);
    }
    let list = parse::<api::Restarts>(paths::RESTARTS, &body)?.restarts;
    println!(
        "{}: {} exits or restarts in the last {}",
        args.target,
        list.len(),
        args.since
    );
    for restart in &list {
        let how = match (restart.exit_code, restart.signal) {
            (Some(code), _) => format!("exit {code}"),
            (None, Some(signal)) => format!("signal {signal}"),
            _ => "replaced".to_string(),
        };
        let oom = if restart.oom_killed == Some(true) {
            " (OOM kill)"
        } else {
            ""
        };
        let next = restart
            .new_pid
            .map_or("not restarted".to_string(), |p| format!("-> pid {p}"));
        println!("  pid {} {how}{oom} {next}", restart.old_pid.unwrap_or(0));
        if let Some(tail) = &restart.stderr_tail {
            if let Some(line) = tail.lines().rev().find(|l| !l.trim().is_empty()) {
                // A program's own output: escaped, it may color or retitle the terminal.
                println!(
                    "      last stderr: {}",
                    leakwatch_model::text::visible(line)
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `text` cut to `max` characters, ending in `…` when cut.
fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let kept: String = text.chars().take(max.saturating_sub(1)).collect();
    format!("{kept}…")
}
