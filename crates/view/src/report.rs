//! `leakwatch report`: one target (or one incident) as a document to attach to a ticket.
//! HTML with the charts as inline SVG (no script, no external asset: it opens from a mail
//! attachment), or Markdown with text sparklines for a pull request or a wiki.

use crate::escape::{self, html};
use crate::format::{duration, number, span_ms, timestamp, Unit};
use crate::model::{
    Attribution, Finding, FindingKind, IncidentView, Resource, SeriesView, TargetView,
};
use crate::page;
use leakwatch_model::UnixMs;
use std::fmt::Write;

/// What a report shows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReportView {
    pub target: TargetView,
    /// When it was made (the caller's clock).
    pub generated_ms: i64,
    /// The agent the data came from.
    pub agent_url: String,
    /// The incident it was made for, with excerpts of its evidence files.
    pub incident: Option<IncidentView>,
    /// Shell commands that show the same data again.
    pub reproduce: Vec<String>,
}

/// A ranked excerpt of one resource's parts: `(part, first value, last value)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Evidence {
    pub title: &'static str,
    pub unit: Unit,
    pub rows: Vec<(String, f64, f64)>,
}

/// Most rows per evidence table.
pub const EVIDENCE_ROWS: usize = 10;

/// The largest thread groups, socket peers, fd kinds and memory kinds at the end of the
/// range, with their value at its start: where the growth is.
pub fn evidence(t: &TargetView) -> Vec<Evidence> {
    let table = |title, resource: Resource, unit| {
        let mut rows: Vec<(String, f64, f64)> = t
            .series
            .iter()
            .filter(|s| {
                !s.key.is_limit
                    && s.key.resource == resource
                    && !s.key.is_total()
                    && s.key.attribution != Attribution::MaxProcess
            })
            .filter_map(|s| Some((s.key.attribution_text(), s.first()?, s.last()?)))
            .collect();
        rows.sort_by(|a, b| b.2.total_cmp(&a.2).then_with(|| a.0.cmp(&b.0)));
        rows.truncate(EVIDENCE_ROWS);
        Evidence { title, unit, rows }
    };
    [
        table("Thread groups", Resource::Threads, Unit::Count),
        table(
            "TCP sockets by state and peer",
            Resource::TcpPeer,
            Unit::Count,
        ),
        table("File descriptors by type", Resource::Fds, Unit::Count),
        table("Memory", Resource::Memory, Unit::Bytes),
    ]
    .into_iter()
    .filter(|e| !e.rows.is_empty())
    .collect()
}

/// One sentence per finding: what leaks, how fast, the forecast, since when, how sure.
/// `esc` is applied to the process-supplied part (the series name).
pub fn finding_sentence(f: &Finding, esc: fn(&str) -> String) -> String {
    let unit = Unit::of_resource(&f.key.resource);
    let what = esc(&f.key.label());
    match f.kind {
        FindingKind::CrashLoop => format!(
            "{what}: crash loop, {} restarts ({}/h) since {}.",
            number(f.current),
            number(f.rate_per_hour),
            timestamp(UnixMs::from_secs_f64(f.first_seen).0)
        ),
        kind => {
            let limit = match f.limit {
                Some(limit) => format!(" of a limit of {}", unit.value(limit)),
                None => " (no limit known)".to_string(),
            };
            let forecast = match (f.eta_seconds, f.eta_conservative_seconds) {
                (Some(eta), Some(early)) => format!(
                    " At this rate it reaches the limit in ~{} (as soon as {}).",
                    duration(eta),
                    duration(early)
                ),
                (Some(eta), None) => {
                    format!(" At this rate it reaches the limit in ~{}.", duration(eta))
                }
                _ => String::new(),
            };
            let verb = if kind == FindingKind::Leak {
                format!(
                    "grows {}/h",
                    leakwatch_detect::format::quantity_of(&f.key, f.rate_per_hour)
                )
            } else {
                "is close to its limit".to_string()
            };
            format!(
                "{what} {verb}: now {}{limit}.{forecast} Growth since {}; confidence {:.1}%{}.{}",
                unit.value(f.current),
                timestamp(UnixMs::from_secs_f64(f.first_seen).0),
                f.confidence * 100.0,
                if f.restarts > 0 {
                    format!("; it kept growing across {} restarts", f.restarts)
                } else {
                    String::new()
                },
                also(f, esc)
            )
        }
    }
}

/// ` Also: fds socket +725, memory rss +3.8 MiB.` for a root with consequences.
fn also(f: &Finding, esc: fn(&str) -> String) -> String {
    if f.consequences.is_empty() {
        return String::new();
    }
    let briefs: Vec<String> = f.consequences.iter().map(|c| esc(&c.brief())).collect();
    format!(" Also: {}.", briefs.join(", "))
}

fn header_line(r: &ReportView, esc: fn(&str) -> String) -> String {
    let t = &r.target;
    format!(
        "Generated {} from the agent at {}. Range {} – {} ({}). Target kind {}, {}.",
        timestamp(r.generated_ms),
        esc(&r.agent_url),
        timestamp(t.from_ms),
        timestamp(t.to_ms),
        span_ms(t.to_ms - t.from_ms),
        if t.kind.is_empty() {
            "unknown".to_string()
        } else {
            esc(&t.kind)
        },
        if t.live { "live" } else { "not running now" }
    )
}

/// The report as one self-contained HTML document.
pub fn html_report(r: &ReportView) -> String {
    let t = &r.target;
    let mut body = String::with_capacity(256 * 1024);
    let _ = write!(
        body,
        "<h1>Leak report: {}</h1><p class=\"muted\">{}</p>",
        html(&t.name),
        header_line(r, html)
    );
    if let Some(i) = &r.incident {
        let _ = write!(
            body,
            "<p>Incident <code>{}</code>, captured {} for <code>{}</code>: {}</p>",
            html(&i.id),
            html(&timestamp(i.created_ms)),
            html(&crate::model::label(&i.resource, &i.attribution)),
            html(&i.summary)
        );
    }
    body.push_str("<h2>Summary</h2>");
    if t.findings.is_empty() {
        body.push_str("<p>No leak, saturation or crash loop was found in this range.</p>");
    } else {
        body.push_str("<ul class=\"summary\">");
        for f in &t.findings {
            let _ = write!(body, "<li>{}</li>", finding_sentence(f, html));
        }
        body.push_str("</ul>");
    }
    body.push_str("<h2>Findings</h2>");
    body.push_str(&page::findings_table(&t.findings));
    body.push_str("<h2>Charts</h2><div class=\"charts\">");
    for svg in page::target_charts(t, 640, "r-") {
        let _ = write!(body, "<figure>{svg}</figure>");
    }
    body.push_str("</div><h2>Evidence</h2>");
    for e in evidence(t) {
        let _ = write!(
            body,
            "<h3>{}</h3><table><tr><th>part</th><th>at start</th><th>at end</th><th>change</th></tr>",
            e.title
        );
        for (part, first, last) in &e.rows {
            let _ = write!(
                body,
                "<tr><td><code>{}</code></td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                html(part),
                html(&e.unit.value(*first)),
                html(&e.unit.value(*last)),
                html(&signed(e.unit, last - first))
            );
        }
        body.push_str("</table>");
    }
    if let Some(i) = &r.incident {
        for (name, text) in &i.excerpts {
            let _ = write!(
                body,
                "<h3>{} <span class=\"muted\">(incident {}, first lines)</span></h3><pre>{}</pre>",
                html(name),
                html(&i.id),
                html(text)
            );
        }
    }
    body.push_str("<h2>Restarts</h2>");
    body.push_str(&page::restarts_table(&t.restarts));
    body.push_str("<h2>Alerts</h2>");
    body.push_str(&page::alerts_table(&t.alerts));
    if !t.incidents.is_empty() {
        body.push_str("<h2>Incidents</h2>");
        body.push_str(&page::incidents_table(&t.incidents, None));
    }
    body.push_str("<h2>Reproduce</h2><pre>");
    for command in &r.reproduce {
        let _ = writeln!(body, "{}", html(command));
    }
    body.push_str("</pre>");
    let header = format!(
        "<span>leakwatch report</span><span class=\"sub\">{}</span>",
        html(&t.name)
    );
    page::document(
        &format!("leakwatch report: {}", t.name),
        &header,
        &body,
        None,
    )
}

fn signed(unit: Unit, delta: f64) -> String {
    if delta > 0.0 {
        format!("+{}", unit.value(delta))
    } else if delta < 0.0 {
        format!("-{}", unit.value(-delta))
    } else {
        "0".to_string()
    }
}

/// `▁▂▃▅▇`: the largest value per column over `[from_ms, to_ms]`, `width` columns.
pub fn text_sparkline(points: &[(i64, f64)], from_ms: i64, to_ms: i64, width: usize) -> String {
    const BLOCKS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    if to_ms <= from_ms || width == 0 {
        return String::new();
    }
    let mut columns: Vec<Option<f64>> = vec![None; width];
    let span = i128::from(to_ms - from_ms);
    for &(t, v) in points {
        if t < from_ms || t > to_ms || !v.is_finite() {
            continue;
        }
        let c = ((i128::from(t - from_ms) * width as i128 / span) as usize).min(width - 1);
        columns[c] = Some(columns[c].map_or(v, |x: f64| x.max(v)));
    }
    let values: Vec<f64> = columns.iter().flatten().copied().collect();
    let Some(lo) = values.iter().copied().reduce(f64::min) else {
        return String::new();
    };
    let hi = values.iter().copied().fold(lo, f64::max);
    columns
        .iter()
        .map(|c| match c {
            None => ' ',
            Some(v) if hi - lo < 1e-12 => {
                BLOCKS[3].min(if *v > 0.0 { BLOCKS[3] } else { BLOCKS[0] })
            }
            Some(v) => BLOCKS[(((v - lo) / (hi - lo)) * 7.0).round() as usize],
        })
        .collect()
}

/// A fence longer than any run of backticks in `text`, so quoted evidence cannot end it.
fn fence(text: &str) -> String {
    let mut longest = 0;
    let mut run = 0;
    for ch in text.chars() {
        if ch == '`' {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    "`".repeat((longest + 1).max(3))
}

/// The report in Markdown: the same sections, with text sparklines for the charts.
pub fn markdown_report(r: &ReportView) -> String {
    let t = &r.target;
    let md = escape::markdown;
    let mut s = String::with_capacity(32 * 1024);
    let _ = writeln!(s, "# Leak report: {}\n", md(&t.name));
    let _ = writeln!(s, "{}\n", header_line(r, md));
    if let Some(i) = &r.incident {
        let _ = writeln!(
            s,
            "Incident `{}`, captured {} for {}: {}\n",
            i.id.replace('`', "'"),
            timestamp(i.created_ms),
            md(&crate::model::label(&i.resource, &i.attribution)),
            md(&i.summary)
        );
    }
    s.push_str("## Summary\n\n");
    if t.findings.is_empty() {
        s.push_str("No leak, saturation or crash loop was found in this range.\n\n");
    } else {
        for f in &t.findings {
            let _ = writeln!(s, "- **{}** {}", f.kind, finding_sentence(f, md));
        }
        s.push('\n');
    }
    s.push_str("## Charts\n\n");
    s.push_str("| chart | series | at start | at end | over the range |\n|---|---|---|---|---|\n");
    for group in page::groups(t) {
        for &i in &group.lines {
            let series: &SeriesView = &t.series[i];
            let (Some(first), Some(last)) = (series.first(), series.last()) else {
                continue;
            };
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | `{}` |",
                md(&group.title),
                md(&series.label()),
                md(&group.unit.value(first)),
                md(&group.unit.value(last)),
                text_sparkline(&series.points, t.from_ms, t.to_ms, 40)
            );
        }
        if let Some(limit) = &group.limit {
            let _ = writeln!(
                s,
                "| {} | {} | | {} | |",
                md(&group.title),
                md(&limit.label),
                md(&group.unit.value(limit.value))
            );
        }
    }
    s.push_str("\nThe HTML form of this report (`--format html`) draws these as charts with the limit, restarts and forecast.\n\n");
    s.push_str("## Evidence\n\n");
    for e in evidence(t) {
        let _ = writeln!(
            s,
            "### {}\n\n| part | at start | at end | change |\n|---|---|---|---|",
            e.title
        );
        for (part, first, last) in &e.rows {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} |",
                md(part),
                md(&e.unit.value(*first)),
                md(&e.unit.value(*last)),
                md(&signed(e.unit, last - first))
            );
        }
        s.push('\n');
    }
    if let Some(i) = &r.incident {
        for (name, text) in &i.excerpts {
            let f = fence(text);
            let _ = writeln!(
                s,
                "### {} (incident evidence, first lines)\n\n{f}text\n{}\n{f}\n",
                md(name),
                text.trim_end()
            );
        }
    }
    s.push_str("## Restarts\n\n");
    if t.restarts.is_empty() {
        s.push_str("None in this range.\n\n");
    } else {
        s.push_str("| time | what | last stderr line |\n|---|---|---|\n");
        for r in t.restarts.iter().rev().take(50) {
            let last = r
                .stderr_tail
                .as_deref()
                .and_then(|tail| tail.trim_end().lines().last())
                .unwrap_or_default();
            let _ = writeln!(
                s,
                "| {} | {} | {} |",
                timestamp(r.ts_ms),
                md(&r.describe()),
                md(last)
            );
        }
        s.push('\n');
    }
    s.push_str("## Alerts\n\n");
    if t.alerts.is_empty() {
        s.push_str("None.\n\n");
    } else {
        s.push_str("| severity | state | series | notifications |\n|---|---|---|---|\n");
        for a in &t.alerts {
            let deliveries: Vec<String> = a
                .deliveries
                .iter()
                .map(|d| format!("{}: {} ({} attempts)", d.channel, d.status, d.attempts))
                .collect();
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} |",
                md(&a.severity),
                md(&a.state),
                md(&crate::model::label(&a.resource, &a.attribution)),
                md(&deliveries.join("; "))
            );
        }
        s.push('\n');
    }
    let commands = r.reproduce.join("\n");
    let f = fence(&commands);
    let _ = writeln!(s, "## Reproduce\n\n{f}sh\n{commands}\n{f}");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tests::finding;

    fn report() -> ReportView {
        let t0 = 1_700_000_000_000;
        let ramp: Vec<(i64, f64)> = (0..120)
            .map(|i| (t0 + i * 1_000, 10.0 + i as f64))
            .collect();
        let mut f = finding("grower", "threads", "Leaky-#", Some(3_000.0));
        f.current = 129.0;
        ReportView {
            target: TargetView {
                name: "grower".into(),
                kind: "rule".into(),
                live: true,
                from_ms: t0,
                to_ms: t0 + 119_000,
                series: vec![
                    SeriesView::from_text("threads", "Leaky-#", ramp.clone()),
                    SeriesView::from_text(
                        "threads",
                        "Base-#",
                        vec![(t0, 2.0), (t0 + 119_000, 2.0)],
                    ),
                    SeriesView::from_text(
                        "tcp_peer",
                        "CLOSE_WAIT 10.0.0.5:5432",
                        vec![(t0, 1.0), (t0 + 119_000, 9.0)],
                    ),
                    SeriesView::from_text(
                        "memory",
                        "rss",
                        vec![(t0, 1048576.0), (t0 + 119_000, 2097152.0)],
                    ),
                ],
                findings: vec![f],
                ..TargetView::default()
            },
            generated_ms: t0 + 120_000,
            agent_url: "http://127.0.0.1:9464".into(),
            incident: Some(IncidentView {
                id: "inc-1".into(),
                created_ms: t0 + 60_000,
                resource: "threads".into(),
                attribution: "Leaky-#".into(),
                summary: "threads Leaky-# growing".into(),
                files: vec![("threads.txt".into(), 120)],
                excerpts: vec![(
                    "threads.txt".into(),
                    "Leaky-1\n```\n<script>x</script>\n".into(),
                )],
            }),
            reproduce: vec![
                "leakwatch history grower --since 2m --url http://127.0.0.1:9464".into(),
            ],
        }
    }

    #[test]
    fn html_report_is_self_contained() {
        let out = html_report(&report());
        assert!(out.contains("<h1>Leak report: grower</h1>"));
        assert!(out.contains("threads{Leaky-#} grows 3,600/h: now 129 of a limit of 32,768."));
        assert!(out.contains("<svg class=\"chart\""));
        assert!(out.contains("data-label=\"threads{Leaky-#}\""));
        assert!(out.contains("CLOSE_WAIT 10.0.0.5:5432"));
        assert!(out.contains("&lt;script&gt;x&lt;/script&gt;") && !out.contains("<script"));
        // The only URLs are the agent's (the data source and the reproduce commands).
        for (i, _) in out.match_indices("http") {
            assert!(
                out[i..].starts_with("http://127.0.0.1:9464"),
                "{}",
                &out[i..i + 40]
            );
        }
    }

    #[test]
    fn markdown_report_has_the_same_facts() {
        let out = markdown_report(&report());
        assert!(out.starts_with("# Leak report: grower\n"));
        assert!(
            out.contains("- **leak** threads{Leaky-#} grows 3,600/h: now 129 of a limit of 32,768. At this rate it reaches the limit in ~50m (as soon as 40m)."),
            "{out}"
        );
        assert!(
            out.contains("| Threads by name group | threads{Leaky-#} | 10 | 129 | `▁"),
            "{out}"
        );
        assert!(out.contains("| CLOSE\\_WAIT 10.0.0.5:5432 | 1 | 9 | +8 |"));
        assert!(out.contains("| rss | 1.0 MiB | 2.0 MiB | +1.0 MiB |"));
        // The excerpt holds a ``` line: the fence must be longer.
        assert!(
            out.contains("````text\nLeaky-1\n```\n<script>x</script>\n````"),
            "{out}"
        );
        assert!(out.contains("```sh\nleakwatch history grower"));
    }

    #[test]
    fn text_sparklines_show_the_shape() {
        let points: Vec<(i64, f64)> = (0..8).map(|i| (i * 1000, i as f64)).collect();
        assert_eq!(text_sparkline(&points, 0, 7_000, 8), "▁▂▃▄▅▆▇█");
        assert_eq!(text_sparkline(&[(0, 5.0), (1000, 5.0)], 0, 1000, 2), "▄▄");
        assert_eq!(text_sparkline(&[(0, 1.0), (3000, 2.0)], 0, 3000, 4), "▁  █");
        assert_eq!(text_sparkline(&[], 0, 1000, 4), "");
    }
}
