//! `leakwatch leaks` (the running agent's findings) and `leakwatch analyze` (the same engine
//! on recorded series: a CSV file, a Prometheus query_range response, or a live Prometheus).

use anyhow::{bail, Context, Result};
use clap::Args as ClapArgs;
use leakwatch_api::{paths, FindingRecord, Findings};
use leakwatch_detect::{FindingState, Params, Series};
use std::path::PathBuf;
use std::process::ExitCode;

use crate::agent_cmd::{get_json, parse, print_json, ClientArgs, NO_QUERY};

pub fn leaks(args: ClientArgs) -> Result<ExitCode> {
    let body = get_json(&args, paths::FINDINGS, NO_QUERY)?;
    if args.json {
        return print_json(&body);
    }
    let body: Findings = parse(paths::FINDINGS, &body)?;
    if body.detect_runs == 0 {
        println!("the agent has not run detection yet (it runs every six intervals)");
        return Ok(ExitCode::SUCCESS);
    }
    print_findings(&body.findings);
    Ok(ExitCode::SUCCESS)
}

fn print_findings(findings: &[FindingRecord]) {
    if findings.is_empty() {
        println!("no leaks, saturation or crash loops found");
        return;
    }
    for finding in findings {
        let name = finding.key.label();
        let target = if finding.key.target.is_empty() {
            String::new()
        } else {
            format!("{} ", finding.key.target)
        };
        // Confirmed findings are the plain case; the others say where they stand.
        let state = match finding.state {
            FindingState::Confirmed => "",
            FindingState::Suspected => "  (suspected: not yet enough evidence, not alerted)",
            FindingState::Resolved => "  (resolved)",
        };
        println!(
            "{:<11} {target}{name}{state}",
            finding.kind.to_string().to_uppercase()
        );
        println!("            {}", finding.summary);
        // Which processes: the first few as the agent described them.
        const SHOWN: usize = 3;
        for process in finding.processes.iter().take(SHOWN) {
            println!("            {}", process.brief());
        }
        let more = finding.pids.len().max(finding.processes.len());
        if more > SHOWN && !finding.processes.is_empty() {
            println!("            ... and {} more processes", more - SHOWN);
        } else if finding.processes.is_empty() && !finding.pids.is_empty() {
            let pids: Vec<String> = finding.pids.iter().map(u32::to_string).collect();
            println!("            pids {}", pids.join(", "));
        }
    }
}

#[derive(ClapArgs)]
pub struct AnalyzeArgs {
    /// A CSV file (`time,series,value[,limit]`) or a saved Prometheus query_range response
    /// (JSON); `-` reads standard input.
    #[arg(value_name = "FILE", required_unless_present = "prometheus")]
    file: Option<PathBuf>,
    /// Read from this Prometheus server instead of a file, e.g. http://127.0.0.1:9090.
    #[arg(long, value_name = "URL", requires = "query")]
    prometheus: Option<String>,
    /// The PromQL query (with --prometheus).
    #[arg(long, value_name = "PROMQL")]
    query: Option<String>,
    /// How far back to read (with --prometheus).
    #[arg(long, default_value = "7d", value_name = "DURATION")]
    range: String,
    /// Resolution (with --prometheus).
    #[arg(long, default_value = "1m", value_name = "DURATION")]
    step: String,
    /// Print findings as JSON.
    #[arg(long)]
    json: bool,
}

pub fn analyze(args: AnalyzeArgs) -> Result<ExitCode> {
    let series = match (&args.prometheus, &args.file) {
        (Some(url), _) => from_prometheus(url, &args)?,
        (None, Some(path)) => from_file(path)?,
        (None, None) => bail!("give a FILE or --prometheus URL --query Q"),
    };
    let n_points: usize = series.iter().map(|s| s.points.len()).sum();
    if n_points == 0 {
        bail!("no samples in the input");
    }
    let interval = median_interval(&series).unwrap_or(60.0);
    let now = series
        .iter()
        .filter_map(|s| s.points.last().map(|p| p.t))
        .fold(f64::MIN, f64::max);
    let params = Params::for_interval(interval);
    let mut findings = leakwatch_detect::analyze(&series, &[], now, &params);
    leakwatch_agent::standalone::rank(&mut findings);
    let findings: Vec<FindingRecord> = findings.iter().map(FindingRecord::from).collect();
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "series": series.len(),
                "points": n_points,
                "interval_seconds": interval,
                "findings": findings,
            }))?
        );
    } else {
        println!(
            "{} series, {} points, one every {}",
            series.len(),
            n_points,
            leakwatch_detect_format(interval)
        );
        print_findings(&findings);
    }
    // Exit 1 when something would be alerted: a confirmed finding.
    Ok(
        if !findings.iter().any(|f| f.state == FindingState::Confirmed) {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        },
    )
}

fn leakwatch_detect_format(seconds: f64) -> String {
    humantime::format_duration(std::time::Duration::from_secs_f64(seconds.max(0.001))).to_string()
}

fn from_file(path: &PathBuf) -> Result<Vec<Series>> {
    let bytes = if path.as_os_str() == "-" {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut bytes)?;
        bytes
    } else {
        std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?
    };
    let looks_like_json = bytes
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'{');
    let parsed = if looks_like_json {
        leakwatch_analyze::parse_prometheus_query_range(&bytes)
    } else {
        leakwatch_analyze::parse_csv(&bytes[..])
    };
    parsed.with_context(|| format!("{}", path.display()))
}

fn from_prometheus(url: &str, args: &AnalyzeArgs) -> Result<Vec<Series>> {
    let query = args
        .query
        .as_deref()
        .context("--prometheus needs --query")?;
    // A year of history at most; a step of at most a day.
    let range = crate::format::duration_arg("--range", &args.range, 366 * crate::format::DAY)?;
    let step = crate::format::duration_arg("--step", &args.step, crate::format::DAY)?;
    let end = leakwatch_model::UnixMs::now().as_secs_f64();
    let start = end - range.as_secs_f64();
    let endpoint = format!("{}/api/v1/query_range", url.trim_end_matches('/'));
    let response = reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(60))
        .build()?
        .get(&endpoint)
        .query(&[
            ("query", query.to_string()),
            ("start", format!("{start:.3}")),
            ("end", format!("{end:.3}")),
            ("step", format!("{}", step.as_secs_f64())),
        ])
        .send()
        .with_context(|| format!("cannot reach Prometheus at {url}"))?;
    let status = response.status();
    let bytes = response.bytes()?;
    if !status.is_success() && bytes.first() != Some(&b'{') {
        bail!("Prometheus answered {status}");
    }
    leakwatch_analyze::parse_prometheus_query_range(&bytes)
        .with_context(|| format!("Prometheus answer to {query:?} ({status})"))
}

/// The typical spacing of samples, so the engine's windows scale with the data.
fn median_interval(series: &[Series]) -> Option<f64> {
    let mut gaps: Vec<f64> = series
        .iter()
        .flat_map(|s| s.points.windows(2).map(|w| w[1].t - w[0].t))
        .filter(|gap| *gap > 0.0)
        .collect();
    if gaps.is_empty() {
        return None;
    }
    let middle = gaps.len() / 2;
    gaps.select_nth_unstable_by(middle, f64::total_cmp);
    Some(gaps[middle])
}
