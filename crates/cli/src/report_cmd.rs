//! `leakwatch report TARGET|INCIDENT`: one target's (or one incident's) history, findings,
//! forecast, evidence and restarts as a self-contained HTML file (charts as inline SVG) or
//! Markdown, fetched from the agent's JSON API and rendered by `leakwatch-view`.

use crate::agent_cmd::{get, request, ClientArgs};
use anyhow::{bail, Context, Result};
use clap::{Args as ClapArgs, ValueEnum};
use leakwatch_detect::Finding;
use leakwatch_exec::quote;
use leakwatch_view::model::{
    AlertView, DeliveryView, IncidentView, RestartView, SeriesView, TargetView,
};
use leakwatch_view::report::{self, ReportView};
use serde_json::Value;
use std::path::PathBuf;
use std::process::ExitCode;

/// Evidence files quoted in an incident's report, and how many lines of each.
const EXCERPT_FILES: [&str; 3] = ["threads.txt", "sockets.txt", "fds.txt"];
const EXCERPT_LINES: usize = 40;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One HTML file with the charts as inline SVG; no scripts, no external assets.
    Html,
    /// Markdown with text sparklines.
    Md,
}

#[derive(ClapArgs)]
pub struct ReportArgs {
    /// An incident ID (`leakwatch incidents`) or a target (`leakwatch targets`). Tried as an
    /// incident first; for an incident the range is centred on its creation.
    subject: String,
    /// How much history, e.g. 6h, 24h, 7d.
    #[arg(long, default_value = "24h", value_name = "DURATION")]
    since: String,
    /// Write the report to FILE instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// html or md [default: md when FILE ends in .md, else html].
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// The agent's address.
    #[arg(
        long,
        default_value = "http://127.0.0.1:9464",
        value_name = "URL",
        env = "LEAKWATCH_URL"
    )]
    url: String,
    /// Bearer token, when the agent requires one.
    #[arg(long, value_name = "TOKEN", env = "LEAKWATCH_TOKEN")]
    token: Option<String>,
}

/// Percent-encodes one URL path segment.
fn segment(text: &str) -> String {
    leakwatch_view::escape::url_component(text)
}

/// A GET whose non-success answers are returned rather than turned into errors: the
/// status, and the body as text.
fn fetch(client: &ClientArgs, path: &str) -> Result<(u16, String)> {
    let (status, body) = request(client, reqwest::Method::GET, path, &[], None)?;
    Ok((status.as_u16(), String::from_utf8_lossy(&body).into_owned()))
}

/// The incident named `id`, or `None` when the agent has no such incident (404), the name
/// cannot be an incident ID (400), or the agent predates incidents (404 without a body).
fn incident(client: &ClientArgs, id: &str) -> Result<Option<Value>> {
    let (status, body) = fetch(client, &format!("/api/v1/incidents/{}", segment(id)))?;
    match status {
        200 => Ok(Some(
            serde_json::from_str(&body).context("the agent's incident is not JSON")?,
        )),
        400 | 404 => Ok(None),
        _ => bail!(
            "asking the agent for incident {id:?}: HTTP {status}: {}",
            body.trim()
        ),
    }
}

fn first_lines(text: &str, n: usize) -> String {
    let mut lines = text.lines();
    let mut out: Vec<&str> = lines.by_ref().take(n).collect();
    let rest = lines.count();
    if rest > 0 {
        out.push("");
        let more = format!("... {rest} more lines (leakwatch incident ID --file NAME)");
        return out.join("\n") + &more;
    }
    out.join("\n")
}

fn str_of(v: &Value, key: &str) -> String {
    v[key].as_str().unwrap_or_default().to_string()
}

pub fn report(args: ReportArgs) -> Result<ExitCode> {
    let span_ms = humantime::parse_duration(&args.since)
        .with_context(|| {
            format!(
                "--since {:?} is not a duration (e.g. 6h, 24h, 7d)",
                args.since
            )
        })?
        .as_millis() as i64;
    if span_ms <= 0 {
        bail!("--since must be longer than zero");
    }
    let format = args.format.unwrap_or_else(|| match &args.output {
        Some(path) if path.extension().is_some_and(|e| e == "md") => Format::Md,
        _ => Format::Html,
    });
    let client = ClientArgs {
        url: args.url.trim_end_matches('/').to_string(),
        token: args.token.clone(),
        json: false,
    };
    let now = crate::format::now_ms();

    // An incident ID first, then a target.
    let incident_json = incident(&client, &args.subject)?;
    let (target, from, to) = match &incident_json {
        Some(inc) => {
            let target = str_of(inc, "target");
            if target.is_empty() {
                bail!("incident {:?} names no target", args.subject);
            }
            let created = inc["created_ms"].as_i64().unwrap_or(now);
            let to = (created + span_ms / 2).min(now).max(created);
            (target, to - span_ms, to)
        }
        None => (args.subject.clone(), now - span_ms, now),
    };

    let (from_s, to_s) = (from.to_string(), to.to_string());
    let series = match get(
        &client,
        "/api/v1/series",
        &[("target", &target), ("from_ms", &from_s), ("to_ms", &to_s)],
    ) {
        Ok(body) => body,
        Err(error) if error.to_string().starts_with("404") => {
            if incident_json.is_some() {
                bail!(
                    "incident {:?}: target {target:?} has no history in that range",
                    args.subject
                )
            }
            bail!(
                "{target:?} is neither an incident nor a target with history in the last {} \
                 (`leakwatch targets` and `leakwatch incidents` list them)",
                args.since
            )
        }
        Err(error) => return Err(error),
    };
    let series: Vec<SeriesView> = series["series"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            SeriesView::from_text(
                &str_of(s, "resource"),
                &str_of(s, "attribution"),
                s["points"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|p| Some((p[0].as_i64()?, p[1].as_f64()?)))
                    .collect(),
            )
        })
        .collect();

    // A target younger than the range: chart its lifetime, not a sliver at the right edge.
    let from = series
        .iter()
        .filter_map(|s| s.points.first().map(|p| p.0))
        .min()
        .map_or(from, |first| first.clamp(from, to));
    let restarts_since = format!("{}s", (now - from) / 1000 + 1);
    let restarts_json = get(
        &client,
        "/api/v1/restarts",
        &[("target", &target), ("since", &restarts_since)],
    )?;
    let restarts: Vec<RestartView> = restarts_json["restarts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| {
            let ts_ms = r["ts_ms"].as_i64()?;
            (from..=to).contains(&ts_ms).then(|| RestartView {
                ts_ms,
                old_pid: r["old_pid"].as_u64().map(|p| p as u32),
                new_pid: r["new_pid"].as_u64().map(|p| p as u32),
                exit_code: r["exit_code"].as_i64().map(|c| c as i32),
                signal: r["signal"].as_i64().map(|s| s as i32),
                oom_killed: r["oom_killed"].as_bool(),
                stderr_tail: r["stderr_tail"].as_str().map(str::to_string),
            })
        })
        .collect();

    let findings_json = get(&client, "/api/v1/findings", &[])?;
    let mut findings: Vec<Finding> = findings_json["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| f["target"] == target.as_str())
        .map(|f| serde_json::from_value(f.clone()))
        .collect::<Result<_, _>>()
        .context("the agent's findings do not parse")?;

    let mut incident_view = None;
    if let Some(inc) = &incident_json {
        let id = str_of(inc, "id");
        // The finding that opened the incident, unless a current one says the same.
        if let Ok(f) = serde_json::from_value::<Finding>(inc["finding"].clone()) {
            if !findings
                .iter()
                .any(|g| g.key.resource == f.key.resource && g.key.attribution == f.key.attribution)
            {
                findings.push(f);
            }
        }
        let files: Vec<(String, u64)> = inc["files"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|f| (str_of(f, "name"), f["bytes"].as_u64().unwrap_or(0)))
            .collect();
        let mut excerpts = Vec::new();
        for name in EXCERPT_FILES {
            if !files.iter().any(|(f, _)| f == name) {
                continue;
            }
            let (status, text) = fetch(
                &client,
                &format!("/api/v1/incidents/{}/files/{}", segment(&id), segment(name)),
            )?;
            if status == 200 {
                excerpts.push((name.to_string(), first_lines(&text, EXCERPT_LINES)));
            }
        }
        incident_view = Some(IncidentView {
            id,
            created_ms: inc["created_ms"].as_i64().unwrap_or(0),
            resource: str_of(inc, "resource"),
            attribution: str_of(inc, "attribution"),
            summary: str_of(inc, "summary"),
            files,
            excerpts,
        });
    }

    let alerts_json = get(&client, "/api/v1/alerts", &[])?;
    let deliveries: Vec<&Value> = alerts_json["deliveries"]
        .as_array()
        .into_iter()
        .flatten()
        .collect();
    let alerts: Vec<AlertView> = alerts_json["alerts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["target"] == target.as_str())
        .map(|a| AlertView {
            target: str_of(a, "target"),
            resource: str_of(a, "resource"),
            attribution: str_of(a, "attribution"),
            kind: str_of(a, "kind"),
            severity: str_of(a, "severity"),
            state: str_of(a, "state"),
            since_ms: a["firing_since_ms"]
                .as_i64()
                .or_else(|| a["pending_since_ms"].as_i64()),
            silenced: a["silenced"].as_str().map(str::to_string),
            summary: a["finding"]["summary"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            deliveries: deliveries
                .iter()
                .filter(|d| d["fingerprint"] == a["fingerprint"])
                .map(|d| DeliveryView {
                    channel: str_of(d, "channel"),
                    status: str_of(d, "status"),
                    attempts: d["attempts"].as_u64().unwrap_or(0) as u32,
                    detail: d["detail"].as_str().map(str::to_string),
                })
                .collect(),
        })
        .collect();

    let targets_json = get(&client, "/api/v1/targets", &[])?;
    let info = targets_json["targets"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|t| t["name"] == target.as_str());

    let url = &client.url;
    let word = quote::word(&target);
    let history_since = format!("{}m", (now - from + 59_999) / 60_000);
    let auth = if client.token.is_some() {
        " -H \"Authorization: Bearer $LEAKWATCH_TOKEN\""
    } else {
        ""
    };
    let mut reproduce = vec![
        format!("leakwatch history {word} --since {history_since} --url {url}"),
        format!("leakwatch restarts {word} --since {history_since} --url {url}"),
        format!("leakwatch leaks --url {url}"),
        format!(
            "curl -s{auth} '{url}/api/v1/series?target={}&from_ms={from}&to_ms={to}'",
            segment(&target)
        ),
    ];
    if let Some(inc) = &incident_view {
        reproduce.push(format!("leakwatch incident {} --url {url}", inc.id));
    }
    reproduce.push(format!(
        "leakwatch report {} --since {} --format {} --url {url}",
        quote::word(&args.subject),
        args.since,
        if format == Format::Md { "md" } else { "html" }
    ));

    let view = ReportView {
        target: TargetView {
            name: target.clone(),
            kind: info.map(|t| str_of(t, "kind")).unwrap_or_default(),
            live: info.is_some_and(|t| t["live"] == true),
            from_ms: from,
            to_ms: to,
            series,
            restarts,
            findings,
            alerts,
            incidents: Vec::new(),
        },
        generated_ms: now,
        agent_url: url.clone(),
        incident: incident_view,
        reproduce,
    };
    let text = match format {
        Format::Html => report::html_report(&view),
        Format::Md => report::markdown_report(&view),
    };
    match &args.output {
        Some(path) => {
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
            eprintln!(
                "leakwatch: report on {target} written to {} ({} findings)",
                path.display(),
                view.target.findings.len()
            );
        }
        None => {
            use std::io::Write;
            std::io::stdout().write_all(text.as_bytes())?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_keep_the_first_lines_and_say_how_many_are_left() {
        let text: String = (1..=45).map(|i| format!("line {i}\n")).collect();
        let out = first_lines(&text, 40);
        assert!(out.starts_with("line 1\nline 2\n"));
        assert!(out.contains("line 40\n"));
        assert!(!out.contains("line 41"));
        assert!(out.ends_with("... 5 more lines (leakwatch incident ID --file NAME)"));
        assert_eq!(first_lines("a\nb\n", 40), "a\nb");
    }
}
