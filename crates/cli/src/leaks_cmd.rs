//! `leakwatch leaks` (the running agent's findings) and `leakwatch analyze` (the same engine
//! on recorded series: a CSV file, a Prometheus query_range response, or a live Prometheus).

use anyhow::{bail, Context, Result};
use clap::Args as ClapArgs;
use leakwatch_analyze::{QueryRange, START_TIME_METRIC};
use leakwatch_api::{paths, FindingRecord, Findings};
use leakwatch_detect::format::Unit;
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
        // What the incident's evidence found growing, once captured.
        if let Some(line) = &finding.evidence {
            println!("            {}", leakwatch_model::text::visible(line));
        }
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

/// Parameter presets of the engine, as in the agent's `[detect] preset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum PresetArg {
    /// `Params::for_interval`: an hour of evidence, a day's season; a non-urgent trend is
    /// confirmed after a day of one process life.
    Production,
    /// `Params::fast`: about 20 samples of evidence, no season; for live tests and demos
    /// lasting minutes.
    Fast,
}

impl PresetArg {
    fn name(self) -> &'static str {
        match self {
            PresetArg::Production => "production",
            PresetArg::Fast => "fast",
        }
    }

    fn params(self, interval: f64) -> Params {
        match self {
            PresetArg::Production => Params::for_interval(interval),
            PresetArg::Fast => Params::fast(interval),
        }
    }
}

/// How values read in the findings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum UnitArg {
    /// Binary units (KiB, MiB, ...).
    Bytes,
    /// Percentages.
    Percent,
    /// Counts of objects, as integers.
    Count,
    /// Plain numbers.
    Number,
}

impl UnitArg {
    fn unit(self) -> Unit {
        match self {
            UnitArg::Bytes => Unit::Bytes,
            UnitArg::Percent => Unit::Percent,
            UnitArg::Count => Unit::Count,
            UnitArg::Number => Unit::Number,
        }
    }
}

#[derive(ClapArgs)]
#[command(
    after_help = "Exit status: 0 nothing to alert, 1 a confirmed finding, 2 an error, 3 not \
enough data to judge any series with the preset."
)]
pub struct AnalyzeArgs {
    /// A CSV file (`time,series,value[,limit]`), a saved Prometheus query_range response
    /// (JSON), or an incident folder (its `series.csv`); `-` reads standard input.
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
    /// The engine's parameters, as the agent's `[detect] preset`.
    #[arg(long, value_enum, default_value = "production")]
    preset: PresetArg,
    /// The sampling interval the preset's windows are converted with, e.g. 10s (default:
    /// the median spacing of the samples).
    #[arg(long, value_name = "DURATION")]
    interval: Option<String>,
    /// Fewest samples in a judged window (the agent's `[detect] min_regime_samples`).
    #[arg(long, value_name = "N")]
    min_regime_samples: Option<usize>,
    /// Samples skipped after each start (`[detect] warmup_samples`).
    #[arg(long, value_name = "N")]
    warmup_samples: Option<usize>,
    /// Slowest regular cycle ruled out, in samples (`[detect] season_samples`).
    #[arg(long, value_name = "N")]
    season_samples: Option<usize>,
    /// One-sided p-value of the trend test (`[detect] trend_p_value`).
    #[arg(long, value_name = "P")]
    trend_p_value: Option<f64>,
    /// Restarts of the targets, a CSV file `time,target[,reason]`: each cuts its target's
    /// series into process lives, as the agent's restart records do. `target` is the part of
    /// a series name before its last `/` (empty for plain names). From Prometheus, the
    /// targets' `process_start_time_seconds` are read as restarts too (the response's own
    /// series of it, or, with --prometheus, that metric queried over the same range).
    #[arg(long, value_name = "FILE")]
    restarts: Option<PathBuf>,
    /// Take every drop of a series back to about where its life started (after a material
    /// rise) as a restart of its target, for targets no restart is known of. Only when the
    /// drops are crashes or restarts: a garbage collector's sawtooth or a batch job's
    /// release drops the same way and would read as growth within every life.
    #[arg(long)]
    infer_restarts: bool,
    /// How values read: bytes, percent, count or number (default: from each series' name;
    /// memory with a limit of 100 reads as percent).
    #[arg(long, value_enum)]
    unit: Option<UnitArg>,
    /// Also print the engine's reasoning for this series (`target/resource{attribution}`
    /// or `resource{attribution}` as listed): every window judged and why it was or was
    /// not a leak.
    #[arg(long, value_name = "SERIES")]
    explain: Option<String>,
    /// Print findings as JSON.
    #[arg(long)]
    json: bool,
}

/// Drops back to a life's start that make [`resetting_series`] name a series.
const RESETS_HINTED: usize = 3;

/// The series (at most 5 named) that drop back to where their life started at least
/// [`RESETS_HINTED`] times: a leak masked by crashes, if those drops are restarts.
fn resetting_series(series: &[&Series]) -> Vec<String> {
    series
        .iter()
        .filter(|s| !s.key.is_limit)
        .filter(|s| leakwatch_detect::infer_restarts(s).len() >= RESETS_HINTED)
        .take(5)
        .map(|s| s.key.to_string())
        .collect()
}

/// Exit status when no series has enough samples for the preset.
const NOT_ENOUGH_DATA: u8 = 3;

pub fn analyze(args: AnalyzeArgs) -> Result<ExitCode> {
    let QueryRange {
        mut series,
        restarts: start_time_restarts,
        start_time_targets,
    } = match (&args.prometheus, &args.file) {
        (Some(url), _) => from_prometheus(url, &args)?,
        (None, Some(path)) => from_file(path)?,
        (None, None) => bail!("give a FILE or --prometheus URL --query Q"),
    };
    let n_points: usize = series.iter().map(|s| s.points.len()).sum();
    if n_points == 0 {
        bail!("no samples in the input");
    }
    let mut restarts = match &args.restarts {
        Some(path) => {
            let bytes =
                std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
            let restarts = leakwatch_analyze::parse_restarts_csv(bytes.as_slice())
                .with_context(|| format!("{}", path.display()))?;
            for target in restarts.iter().map(|r| r.target.as_str()) {
                if !series.iter().any(|s| s.key.target == target) {
                    bail!(
                        "{}: restarts of target {target:?}, which no series has (targets: {})",
                        path.display(),
                        targets(&series)
                    );
                }
            }
            restarts
        }
        None => Vec::new(),
    };
    // Targets whose restarts are known: from the file (which wins), or from their
    // `process_start_time_seconds` (changed or not).
    let from_file: std::collections::BTreeSet<String> =
        restarts.iter().map(|r| r.target.clone()).collect();
    let from_start_times = start_time_restarts
        .into_iter()
        .filter(|r| !from_file.contains(&r.target))
        .filter(|r| series.iter().any(|s| s.key.target == r.target))
        .collect::<Vec<_>>();
    let n_from_start_times = from_start_times.len();
    restarts.extend(from_start_times);
    // Drops back to a life's starting level, for the targets nothing tells the restarts
    // of: restarts when asked to take them so, otherwise a hint.
    let unrecorded: Vec<&Series> = series
        .iter()
        .filter(|s| {
            !from_file.contains(&s.key.target) && !start_time_targets.contains(&s.key.target)
        })
        .collect();
    let (n_inferred, resetting) = if args.infer_restarts {
        let inferred = leakwatch_detect::infer_target_restarts(&unrecorded);
        let n = inferred.len();
        restarts.extend(inferred);
        (n, Vec::new())
    } else {
        (0, resetting_series(&unrecorded))
    };
    restarts.sort_by(|a, b| a.t.total_cmp(&b.t));
    for one in &mut series {
        let unit = match args.unit {
            Some(unit) => Some(unit.unit()),
            None => infer_unit(one),
        };
        if let Some(unit) = unit {
            one.unit = Some(unit);
        }
    }
    let interval = match &args.interval {
        Some(text) => crate::format::duration_arg("--interval", text, crate::format::DAY)?
            .as_secs_f64()
            .max(0.001),
        // The typical spacing of samples, so the engine's windows scale with the data: the
        // upper middle gap (with series at two intervals, one of them, never their mean).
        None => {
            let mut gaps =
                leakwatch_detect::stats::spacings(series.iter().map(|s| s.points.as_slice()));
            if gaps.is_empty() {
                60.0
            } else {
                let middle = gaps.len() / 2;
                leakwatch_detect::stats::select(&mut gaps, middle)
            }
        }
    };
    let params = params(&args, interval)?;
    let now = series
        .iter()
        .filter_map(|s| s.points.last().map(|p| p.t))
        .fold(f64::MIN, f64::max);
    let mut findings = leakwatch_detect::analyze(&series, &restarts, now, &params);
    leakwatch_agent::standalone::rank(&mut findings);
    // Series some finding speaks of (as its root or a consequence).
    let mentioned = |s: &Series| {
        findings
            .iter()
            .any(|f| f.key == s.key || f.consequences.iter().any(|c| c.key == s.key))
    };
    let too_short = series
        .iter()
        .filter(|s| !mentioned(s))
        .filter(|s| current_life_samples(s, &restarts) < samples_needed(&params))
        .count();
    let findings: Vec<FindingRecord> = findings.iter().map(FindingRecord::from).collect();
    let explained = match &args.explain {
        Some(name) => {
            let one = find_series(&series, name)?;
            Some((
                one.key.to_string(),
                leakwatch_detect::explain(one, &restarts, now, &params),
            ))
        }
        None => None,
    };
    let needed = samples_needed(&params);
    let longest = series
        .iter()
        .map(|s| current_life_samples(s, &restarts))
        .max()
        .unwrap_or(0);
    let not_enough = findings.is_empty() && too_short == series.len();
    let shortage = not_enough.then(|| {
        let mut message = format!(
            "not enough data for the {} preset: {} samples at {}, needs {}",
            args.preset.name(),
            leakwatch_detect::format::count(longest as f64),
            leakwatch_detect_format(interval),
            leakwatch_detect::format::count(needed as f64),
        );
        let fast = samples_needed(&Params::fast(interval));
        if args.preset == PresetArg::Production && longest >= fast {
            message.push_str(" — try --preset fast");
        } else {
            message.push_str(" — collect for longer");
        }
        message
    });
    if args.json {
        println!(
            "{}",
            crate::format::json(&serde_json::json!({
                "series": series.len(),
                "points": n_points,
                "interval_seconds": interval,
                "preset": args.preset.name(),
                "restarts": restarts.len(),
                "restarts_from_start_times": n_from_start_times,
                "restarts_inferred": n_inferred,
                "resetting_series": resetting,
                "samples_needed": needed,
                "params": params,
                "not_enough_data": shortage,
                "findings": findings,
                "explain": explained.as_ref().map(|(key, lines)| serde_json::json!({
                    "series": key,
                    "lines": lines,
                })),
            }))?
        );
    } else {
        println!(
            "{} series, {} points, one every {}; {} preset{}",
            series.len(),
            n_points,
            leakwatch_detect_format(interval),
            args.preset.name(),
            match (restarts.len(), n_from_start_times, n_inferred) {
                (0, _, _) => String::new(),
                (n, 0, 0) => format!(", {n} restarts"),
                (n, from, 0) => format!(", {n} restarts ({from} from {START_TIME_METRIC})"),
                (n, 0, inferred) => format!(", {n} restarts ({inferred} inferred from resets)"),
                (n, from, inferred) => format!(
                    ", {n} restarts ({from} from {START_TIME_METRIC}, {inferred} inferred from resets)"
                ),
            }
        );
        match &shortage {
            Some(message) => println!("{message}"),
            None => {
                print_findings(&findings);
                if too_short > 0 {
                    println!(
                        "({too_short} of {} series not judged: fewer than {} samples in their current life)",
                        series.len(),
                        leakwatch_detect::format::count(needed as f64)
                    );
                }
                if findings.iter().any(|f| f.state == FindingState::Suspected) {
                    // The alert horizon, when the preset has one (fast has none).
                    let horizon = if params.alert_horizon_samples == usize::MAX {
                        String::new()
                    } else {
                        format!(
                            ", or whose limit is more than {} away,",
                            leakwatch_detect_format(params.alert_horizon_samples as f64 * interval)
                        )
                    };
                    // Persistence, when the preset has it (fast has none).
                    let held = if params.persist_samples == 0 {
                        String::new()
                    } else {
                        format!(
                            "; either way only if it was also confirmed {} earlier",
                            leakwatch_detect_format(params.persist_samples as f64 * interval)
                        )
                    };
                    println!(
                        "(the {} preset confirms a trend once one process life spans {} samples ({}), or sooner when it would reach its limit within {}{held}; a climb levelling off below its limit{horizon} stays suspected)",
                        args.preset.name(),
                        leakwatch_detect::format::count(params.confirm_samples as f64),
                        leakwatch_detect_format(params.confirm_samples as f64 * interval),
                        leakwatch_detect_format(params.urgent_horizon_samples as f64 * interval)
                    );
                }
            }
        }
        for name in &resetting {
            println!(
                "({name} drops back to where its life started {} times or more: if those are restarts, give them with --restarts FILE or say so with --infer-restarts)",
                RESETS_HINTED
            );
        }
        if let Some((key, lines)) = &explained {
            println!("\nexplain {key}:");
            for line in lines {
                println!("  {line}");
            }
        }
    }
    // Exit 1 when something would be alerted: a confirmed finding.
    Ok(
        if findings.iter().any(|f| f.state == FindingState::Confirmed) {
            ExitCode::from(1)
        } else if not_enough {
            ExitCode::from(NOT_ENOUGH_DATA)
        } else {
            ExitCode::SUCCESS
        },
    )
}

/// The preset for `interval`, with the agent's overrides, checked as the agent checks them.
fn params(args: &AnalyzeArgs, interval: f64) -> Result<Params> {
    let mut params = args.preset.params(interval);
    if let Some(n) = args.min_regime_samples {
        if n < 8 {
            bail!("--min-regime-samples must be at least 8: fewer samples cannot make a trend significant");
        }
        params.min_regime_samples = n;
    }
    if let Some(n) = args.warmup_samples {
        params.warmup_samples = n;
    }
    if let Some(n) = args.season_samples {
        if n == 0 {
            bail!("--season-samples must be at least 1");
        }
        params.season_samples = n;
    }
    if let Some(p) = args.trend_p_value {
        if !(p > 0.0 && p < 0.5) {
            bail!("--trend-p-value must be between 0 and 0.5, got {p}");
        }
        params.trend_p_value = p;
    }
    Ok(params)
}

/// The fewest samples a process life needs before the engine judges it: a minimal regime
/// after the warm-up (which takes at most `warmup_max_fraction` of the life).
fn samples_needed(params: &Params) -> usize {
    let regime = params.min_regime_samples.max(1);
    (regime..)
        .find(|&n| {
            let warmup = params
                .warmup_samples
                .min((n as f64 * params.warmup_max_fraction) as usize);
            n - warmup >= regime
        })
        .unwrap_or(regime)
}

/// Samples of `series` since the last restart of its target.
fn current_life_samples(series: &Series, restarts: &[leakwatch_detect::Restart]) -> usize {
    let since = restarts
        .iter()
        .filter(|r| r.target == series.key.target)
        .map(|r| r.t)
        .fold(f64::NEG_INFINITY, f64::max);
    series.points.iter().filter(|p| p.t >= since).count()
}

/// The unit a series' name (or its values) says, when it is not the resource's own:
/// `..._percent`, `..._pct`, `...utilization` read as percent, `..._bytes` as bytes, and
/// memory with a limit of 100 (or, without a limit, never above 100) as percent.
fn infer_unit(series: &Series) -> Option<Unit> {
    let name = series.key.to_string().to_ascii_lowercase();
    let default = Unit::of(&series.key.resource);
    let unit = if ["percent", "pct", "utilization", "utilisation", "%"]
        .iter()
        .any(|word| name.contains(word))
    {
        Unit::Percent
    } else if name.contains("bytes") {
        Unit::Bytes
    } else if default == Unit::Bytes
        && match series.limit {
            Some(limit) => limit == 100.0,
            None => series.points.iter().all(|p| p.v <= 100.0),
        }
    {
        Unit::Percent
    } else {
        default
    };
    (unit != default).then_some(unit)
}

/// The series `name` means: its full name (`target/resource{attribution}`) or, when that
/// is unambiguous, its name without the target.
fn find_series<'a>(series: &'a [Series], name: &str) -> Result<&'a Series> {
    let name = name.trim();
    if let Some(one) = series.iter().find(|s| s.key.to_string() == name) {
        return Ok(one);
    }
    let by_label: Vec<&Series> = series.iter().filter(|s| s.key.label() == name).collect();
    match by_label.as_slice() {
        [one] => Ok(one),
        [] => {
            let names: Vec<String> = series.iter().take(20).map(|s| s.key.to_string()).collect();
            bail!(
                "--explain {name:?}: no such series; the input has {}{}",
                names.join(", "),
                if series.len() > 20 { ", ..." } else { "" }
            )
        }
        many => bail!(
            "--explain {name:?} names {} series; give the target too: {}",
            many.len(),
            many.iter()
                .map(|s| s.key.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn targets(series: &[Series]) -> String {
    let mut names: Vec<String> = series
        .iter()
        .map(|s| format!("{:?}", s.key.target))
        .collect();
    names.sort();
    names.dedup();
    names.join(", ")
}

/// An interval or a span for people: `500 ms`, `1 s`, `10 s`, `5 min`, `1h`, `2d3h`.
fn leakwatch_detect_format(seconds: f64) -> String {
    if seconds < 1.0 {
        format!("{} ms", leakwatch_detect::format::number(seconds * 1000.0))
    } else if seconds < 60.0 {
        format!("{} s", leakwatch_detect::format::number(seconds))
    } else if seconds < 3600.0 && seconds % 60.0 == 0.0 {
        format!("{} min", seconds / 60.0)
    } else {
        leakwatch_detect::format::duration(seconds)
    }
}

fn from_file(path: &PathBuf) -> Result<QueryRange> {
    // An incident folder: its series.csv, for its target.
    if path.is_dir() {
        let csv = path.join("series.csv");
        let bytes =
            std::fs::read(&csv).with_context(|| format!("cannot read {}", csv.display()))?;
        let mut series = leakwatch_analyze::parse_csv(bytes.as_slice())
            .with_context(|| format!("{}", csv.display()))?;
        if let Some(target) = incident_target(path) {
            for one in &mut series {
                if one.key.target.is_empty() {
                    one.key.target = target.clone();
                }
            }
        }
        return Ok(QueryRange {
            series,
            ..QueryRange::default()
        });
    }
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
        leakwatch_analyze::parse_csv(&bytes[..]).map(|series| QueryRange {
            series,
            ..QueryRange::default()
        })
    };
    let mut parsed = parsed.with_context(|| format!("{}", path.display()))?;
    let series = &mut parsed.series;
    // The series.csv of an incident folder, given as a file: its target is in the folder.
    if path.file_name().is_some_and(|n| n == "series.csv") {
        if let Some(target) = path.parent().and_then(incident_target) {
            for one in series.iter_mut() {
                if one.key.target.is_empty() {
                    one.key.target = target.clone();
                }
            }
        }
    }
    Ok(parsed)
}

/// The target of an incident folder, from its `incident.json`.
fn incident_target(dir: &std::path::Path) -> Option<String> {
    let text = std::fs::read(dir.join("incident.json")).ok()?;
    let value: serde_json::Value = serde_json::from_slice(&text).ok()?;
    value["target"]
        .as_str()
        .filter(|t| !t.is_empty())
        .map(str::to_string)
}

/// Reads `--query` from Prometheus, and the restarts of its targets: the query's own
/// `process_start_time_seconds` series if it has any, else that metric read over the same
/// range (a Prometheus without it, or refusing the query, only loses the restarts: said on
/// standard error).
fn from_prometheus(url: &str, args: &AnalyzeArgs) -> Result<QueryRange> {
    let query = args
        .query
        .as_deref()
        .context("--prometheus needs --query")?;
    // A year of history at most; a step of at most a day.
    let range = crate::format::duration_arg("--range", &args.range, 366 * crate::format::DAY)?;
    let step = crate::format::duration_arg("--step", &args.step, crate::format::DAY)?;
    let end = leakwatch_model::UnixMs::now().as_secs_f64();
    let start = end - range.as_secs_f64();
    let client = reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(60))
        .build()?;
    let read = |query: &str| -> Result<QueryRange> {
        let endpoint = format!("{}/api/v1/query_range", url.trim_end_matches('/'));
        let response = client
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
    };
    let mut answer = read(query)?;
    // Not when a restarts file is given (it wins), nor when the answer has start times.
    if args.restarts.is_none() && answer.start_time_targets.is_empty() && !answer.series.is_empty()
    {
        match read(START_TIME_METRIC) {
            Ok(start_times) => {
                answer.restarts = start_times.restarts;
                answer.start_time_targets = start_times.start_time_targets;
            }
            Err(error) => eprintln!(
                "leakwatch: no restarts read from {START_TIME_METRIC}: {error:#}; lives are not cut"
            ),
        }
    }
    Ok(answer)
}
