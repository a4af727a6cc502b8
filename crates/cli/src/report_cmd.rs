//! `leakwatch report TARGET|INCIDENT`: one target's (or one incident's) history, findings,
//! forecast, evidence and restarts as a self-contained HTML file (charts as inline SVG) or
//! Markdown, fetched from the agent's JSON API and rendered by `leakwatch-view`.

use crate::agent_cmd::{get, parse, request, ClientArgs, NO_QUERY};
use anyhow::{bail, Context, Result};
use clap::{Args as ClapArgs, ValueEnum};
use leakwatch_api::{self as api, paths, IncidentRecord};
use leakwatch_detect::Finding;
use leakwatch_exec::quote;
use leakwatch_view::model::{
    AlertView, DeliveryView, IncidentView, RestartView, SeriesView, TargetView,
};
use leakwatch_view::report::{self, ReportView};
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
    let (status, body) = request(client, reqwest::Method::GET, path, NO_QUERY)?;
    Ok((status.as_u16(), String::from_utf8_lossy(&body).into_owned()))
}

/// The incident named `id`, or `None` when the agent has no such incident (404), the name
/// cannot be an incident ID (400), or the agent predates incidents (404 without a body).
fn incident(client: &ClientArgs, id: &str) -> Result<Option<IncidentRecord>> {
    let path = format!("{}/{}", paths::INCIDENTS, segment(id));
    let (status, body) = fetch(client, &path)?;
    match status {
        200 => Ok(Some(
            parse::<api::IncidentDetail>(&path, body.as_bytes())?.incident,
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

/// Gathers the report's data from the agent, in the order of the report: the subject's
/// range, series, restarts, findings, the incident's evidence, alerts, the target's kind.
pub fn report(args: ReportArgs) -> Result<ExitCode> {
    let span_ms = span_ms(&args.since)?;
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
    let incident = incident(&client, &args.subject)?;
    let (target, from, to) = match &incident {
        Some(inc) => {
            if inc.target.is_empty() {
                bail!("incident {:?} names no target", args.subject);
            }
            let created = inc.created_ms;
            let to = (created + span_ms / 2).min(now).max(created);
            (inc.target.clone(), to - span_ms, to)
        }
        None => (args.subject.clone(), now - span_ms, now),
    };
    let series = series(&client, &args, incident.is_some(), &target, from, to)?;
    // A target younger than the range: chart its lifetime, not a sliver at the right edge.
    let from = series
        .iter()
        .filter_map(|s| s.points.first().map(|p| p.0))
        .min()
        .map_or(from, |first| first.clamp(from, to));
    let restarts = restarts(&client, &target, from, to, now)?;
    let mut findings = findings(&client, &target)?;
    let incident_view = match &incident {
        Some(inc) => Some(incident_view(&client, inc, &mut findings)?),
        None => None,
    };
    let alerts = alerts(&client, &target)?;
    let targets: api::Targets = get(&client, paths::TARGETS, NO_QUERY)?;
    let info = targets.targets.into_iter().find(|t| t.name == target);
    let reproduce = reproduce(
        &args,
        &client,
        format,
        &target,
        (from, to),
        now,
        &incident_view,
    );
    let view = ReportView {
        target: TargetView {
            name: target.clone(),
            kind: info
                .as_ref()
                .and_then(|t| t.kind)
                .map_or_else(String::new, |kind| kind.to_string()),
            live: info.is_some_and(|t| t.live),
            from_ms: from,
            to_ms: to,
            series,
            restarts,
            findings,
            alerts,
            incidents: Vec::new(),
        },
        generated_ms: now,
        agent_url: client.url.clone(),
        incident: incident_view,
        reproduce,
    };
    write(&args, format, &view)
}

/// `--since` in milliseconds.
fn span_ms(since: &str) -> Result<i64> {
    let span_ms =
        crate::format::duration_arg("--since", since, crate::format::MAX_RANGE)?.as_millis() as i64;
    if span_ms <= 0 {
        bail!("--since must be longer than zero");
    }
    Ok(span_ms)
}

/// The target's series in the range; a target without history there is an error that
/// says what the subject was taken for.
fn series(
    client: &ClientArgs,
    args: &ReportArgs,
    is_incident: bool,
    target: &str,
    from: i64,
    to: i64,
) -> Result<Vec<SeriesView>> {
    let query = api::SeriesQuery {
        target: target.to_string(),
        from_ms: Some(from),
        to_ms: Some(to),
        ..api::SeriesQuery::default()
    };
    let body: api::SeriesBody = match get(client, paths::SERIES, &query) {
        Ok(body) => body,
        Err(error) if error.to_string().starts_with("404") => {
            if is_incident {
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
    Ok(body
        .series
        .into_iter()
        .map(|s| SeriesView::new(s.key, s.points))
        .collect())
}

/// The target's restarts within `from..=to`.
fn restarts(
    client: &ClientArgs,
    target: &str,
    from: i64,
    to: i64,
    now: i64,
) -> Result<Vec<RestartView>> {
    let query = api::RestartsQuery {
        target: target.to_string(),
        since: Some(format!("{}s", (now - from) / 1000 + 1)),
    };
    let body: api::Restarts = get(client, paths::RESTARTS, &query)?;
    Ok(body
        .restarts
        .into_iter()
        .filter(|r| (from..=to).contains(&r.ts_ms))
        .map(|r| RestartView {
            ts_ms: r.ts_ms,
            old_pid: r.old_pid,
            new_pid: r.new_pid,
            exit_code: r.exit_code,
            signal: r.signal,
            oom_killed: r.oom_killed,
            stderr_tail: r.stderr_tail,
        })
        .collect())
}

/// The agent's current findings of the target.
fn findings(client: &ClientArgs, target: &str) -> Result<Vec<Finding>> {
    let body: api::Findings = get(client, paths::FINDINGS, NO_QUERY)?;
    Ok(body
        .findings
        .into_iter()
        .filter(|f| f.key.target == target)
        .map(Finding::from)
        .collect())
}

/// The incident's part of the report: its finding (added to `findings` unless a current
/// one says the same) and the first lines of its evidence files.
fn incident_view(
    client: &ClientArgs,
    inc: &IncidentRecord,
    findings: &mut Vec<Finding>,
) -> Result<IncidentView> {
    let f = &inc.finding;
    if !findings
        .iter()
        .any(|g| g.key.resource == f.key.resource && g.key.attribution == f.key.attribution)
    {
        findings.push(f.clone().into());
    }
    let files: Vec<(String, u64)> = inc
        .files
        .iter()
        .map(|f| (f.name.clone(), f.bytes))
        .collect();
    let mut excerpts = Vec::new();
    for name in EXCERPT_FILES {
        if !files.iter().any(|(f, _)| f == name) {
            continue;
        }
        let (status, text) = fetch(
            client,
            &format!(
                "{}/{}/files/{}",
                paths::INCIDENTS,
                segment(&inc.id),
                segment(name)
            ),
        )?;
        if status == 200 {
            excerpts.push((name.to_string(), first_lines(&text, EXCERPT_LINES)));
        }
    }
    Ok(IncidentView {
        id: inc.id.clone(),
        created_ms: inc.created_ms,
        resource: inc.resource.clone(),
        attribution: inc.attribution.clone(),
        summary: inc.summary.clone(),
        files,
        excerpts,
    })
}

/// The alert engine's alerts of the target, each with its latest delivery per channel.
fn alerts(client: &ClientArgs, target: &str) -> Result<Vec<AlertView>> {
    let body: api::Alerts = get(client, paths::ALERTS, NO_QUERY)?;
    let deliveries = &body.deliveries;
    Ok(body
        .alerts
        .iter()
        .filter(|a| a.key.target == target)
        .map(|a| AlertView {
            target: a.key.target.clone(),
            resource: a.key.resource_text(),
            attribution: a.key.attribution_text(),
            kind: a.kind.to_string(),
            severity: a.severity.as_str().to_string(),
            state: a.state.as_str().to_string(),
            since_ms: Some(a.since_ms() as i64),
            silenced: a.silenced.clone(),
            summary: a.finding.summary.clone(),
            deliveries: deliveries
                .iter()
                .filter(|d| d.fingerprint == a.fingerprint)
                .map(|d| DeliveryView {
                    channel: d.channel.clone(),
                    status: d.status.as_str().to_string(),
                    attempts: d.attempts,
                    detail: d.detail.clone(),
                })
                .collect(),
        })
        .collect())
}

/// The commands that show the same data again (the CLI, curl, this report).
fn reproduce(
    args: &ReportArgs,
    client: &ClientArgs,
    format: Format,
    target: &str,
    (from, to): (i64, i64),
    now: i64,
    incident: &Option<IncidentView>,
) -> Vec<String> {
    let url = &client.url;
    let word = quote::word(target);
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
            "curl -s{auth} '{url}{}?target={}&from_ms={from}&to_ms={to}'",
            paths::SERIES,
            segment(target)
        ),
    ];
    if let Some(inc) = incident {
        reproduce.push(format!("leakwatch incident {} --url {url}", inc.id));
    }
    reproduce.push(format!(
        "leakwatch report {} --since {} --format {} --url {url}",
        quote::word(&args.subject),
        args.since,
        if format == Format::Md { "md" } else { "html" }
    ));
    reproduce
}

/// Renders the report into `--output` or standard output.
fn write(args: &ReportArgs, format: Format, view: &ReportView) -> Result<ExitCode> {
    let text = match format {
        Format::Html => report::html_report(view),
        Format::Md => report::markdown_report(view),
    };
    match &args.output {
        Some(path) => {
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
            eprintln!(
                "leakwatch: report on {} written to {} ({} findings)",
                view.target.name,
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
