//! `leakwatch fleet --prometheus URL`: the findings of every agent one Prometheus scrapes,
//! by host (issue 15). Reads the agents' own metrics (`leakwatch_finding_current`,
//! `leakwatch_finding_eta_seconds`) and `up`, so it needs nothing but Prometheus: the hosts'
//! agents need not be reachable from where it runs.

use anyhow::{bail, Context, Result};
use clap::Args as ClapArgs;
use serde::Serialize;
use std::collections::BTreeMap;
use std::process::ExitCode;

#[derive(ClapArgs)]
pub struct FleetArgs {
    /// The Prometheus that scrapes the agents (`http://prometheus:9090`).
    #[arg(long, value_name = "URL", env = "LEAKWATCH_PROMETHEUS")]
    prometheus: String,
    /// The scrape job of the agents.
    #[arg(long, value_name = "JOB", default_value = "leakwatch")]
    job: String,
    /// Also suspected findings (not yet enough evidence; never alerted).
    #[arg(long)]
    all: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// One finding of one host, as Prometheus has it.
#[derive(Debug, Serialize)]
struct FleetFinding {
    host: String,
    instance: String,
    kind: String,
    state: String,
    target: String,
    resource: String,
    attribution: String,
    current: f64,
    /// Conservative seconds to exhaustion, when forecast.
    eta_seconds: Option<f64>,
}

/// One agent: whether Prometheus reaches it.
#[derive(Debug, Serialize)]
struct FleetAgent {
    host: String,
    instance: String,
    up: bool,
}

#[derive(Debug, Serialize)]
struct Fleet {
    agents: Vec<FleetAgent>,
    findings: Vec<FleetFinding>,
}

/// `(labels, value)` of each sample of an instant query.
type Samples = Vec<(BTreeMap<String, String>, f64)>;

fn query(client: &reqwest::blocking::Client, url: &str, expr: &str) -> Result<Samples> {
    let endpoint = format!("{}/api/v1/query", url.trim_end_matches('/'));
    let response = client
        .get(&endpoint)
        .query(&[("query", expr)])
        .send()
        .with_context(|| format!("cannot reach Prometheus at {url}"))?;
    let status = response.status();
    let body: serde_json::Value = response
        .json()
        .with_context(|| format!("Prometheus's answer to {expr:?} ({status}) is not JSON"))?;
    if body["status"] != "success" {
        bail!(
            "Prometheus refused {expr:?} ({status}): {}",
            body["error"].as_str().unwrap_or("no reason given")
        );
    }
    let mut out = Vec::new();
    for sample in body["data"]["result"].as_array().into_iter().flatten() {
        let labels: BTreeMap<String, String> = sample["metric"]
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
            .collect();
        let value = sample["value"][1]
            .as_str()
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::NAN);
        out.push((labels, value));
    }
    Ok(out)
}

/// The `host` label when the scrape config sets one, else the instance.
fn host_of(labels: &BTreeMap<String, String>) -> (String, String) {
    let instance = labels.get("instance").cloned().unwrap_or_default();
    let host = labels
        .get("host")
        .cloned()
        .unwrap_or_else(|| instance.clone());
    (host, instance)
}

pub fn fleet(args: FleetArgs) -> Result<ExitCode> {
    let client = reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()?;
    // Label values go into PromQL: a job name with a quote is refused, not escaped.
    if args.job.contains(['"', '\\', '\n']) {
        bail!(
            "--job {:?}: a job name cannot hold quotes or backslashes",
            args.job
        );
    }
    let job = format!("job=\"{}\"", args.job);
    let state = if args.all {
        String::new()
    } else {
        ",state=\"confirmed\"".into()
    };
    let up = query(&client, &args.prometheus, &format!("up{{{job}}}"))?;
    let current = query(
        &client,
        &args.prometheus,
        &format!("leakwatch_finding_current{{{job}{state}}}"),
    )?;
    let etas = query(
        &client,
        &args.prometheus,
        &format!("leakwatch_finding_eta_seconds{{{job}{state}}}"),
    )?;
    let key = |l: &BTreeMap<String, String>| {
        [
            "instance",
            "kind",
            "state",
            "target",
            "resource",
            "attribution",
        ]
        .map(|k| l.get(k).cloned().unwrap_or_default())
    };
    let eta_of: BTreeMap<[String; 6], f64> = etas.iter().map(|(l, v)| (key(l), *v)).collect();
    let mut agents: Vec<FleetAgent> = up
        .iter()
        .map(|(labels, value)| {
            let (host, instance) = host_of(labels);
            FleetAgent {
                host,
                instance,
                up: *value == 1.0,
            }
        })
        .collect();
    agents.sort_by(|a, b| a.host.cmp(&b.host).then(a.instance.cmp(&b.instance)));
    let mut findings: Vec<FleetFinding> = current
        .iter()
        .map(|(labels, value)| {
            let (host, instance) = host_of(labels);
            let get = |k: &str| labels.get(k).cloned().unwrap_or_default();
            FleetFinding {
                host,
                instance,
                kind: get("kind"),
                state: get("state"),
                target: get("target"),
                resource: get("resource"),
                attribution: get("attribution"),
                current: *value,
                eta_seconds: eta_of.get(&key(labels)).copied(),
            }
        })
        .collect();
    // Soonest exhaustion first, then by host.
    findings.sort_by(|a, b| {
        let eta = |f: &FleetFinding| f.eta_seconds.unwrap_or(f64::INFINITY);
        eta(a)
            .total_cmp(&eta(b))
            .then(a.host.cmp(&b.host))
            .then(a.target.cmp(&b.target))
    });
    let fleet = Fleet { agents, findings };
    if args.json {
        println!("{}", crate::format::json(&serde_json::to_value(&fleet)?)?);
        return Ok(ExitCode::SUCCESS);
    }
    let down: Vec<&FleetAgent> = fleet.agents.iter().filter(|a| !a.up).collect();
    println!(
        "{} agents scraped by {} (job {}), {} down",
        fleet.agents.len(),
        args.prometheus,
        args.job,
        down.len()
    );
    for agent in &down {
        println!("  DOWN  {} ({})", agent.host, agent.instance);
    }
    if fleet.findings.is_empty() {
        println!("\nno {}findings", if args.all { "" } else { "confirmed " });
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "\n{:<20} {:<11} {:<10} {:<24} {:<28} {:>12}  LIMIT IN",
        "HOST", "KIND", "STATE", "TARGET", "SERIES", "NOW"
    );
    for f in &fleet.findings {
        let series = if f.attribution.is_empty() {
            f.resource.clone()
        } else {
            format!("{}{{{}}}", f.resource, f.attribution)
        };
        let eta = f
            .eta_seconds
            .map(|s| format!("~{}", crate::format::duration(s.max(0.0) as u64)))
            .unwrap_or_else(|| "-".into());
        println!(
            "{:<20} {:<11} {:<10} {:<24} {:<28} {:>12}  {eta}",
            leakwatch_model::text::visible(&f.host),
            f.kind,
            f.state,
            leakwatch_model::text::visible(&f.target),
            leakwatch_model::text::visible(&series),
            crate::format::count(f.current.max(0.0) as u64)
        );
    }
    Ok(ExitCode::SUCCESS)
}
