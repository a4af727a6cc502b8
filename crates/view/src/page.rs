//! The dashboard's pages: the overview (targets ranked by risk, with sparklines) and a
//! target's page (its charts, findings, restarts, alerts, incidents). Self-contained HTML:
//! inline CSS, one tiny inline script for drag-to-zoom, no external assets. Links are
//! relative, so the dashboard works behind a reverse proxy under any prefix.

use crate::chart::{self, Chart, Limit, Line, Marker, Trend};
use crate::escape::{html, url_component};
use crate::format::{duration, number, span_ms, timestamp, Unit};
use crate::model::{
    soonest_eta, AlertView, Attribution, Finding, FindingKind, FindingState, IncidentView,
    Overview, Resource, RestartView, SeriesKey, SeriesView, TargetView,
};
use leakwatch_exec::quote;
use leakwatch_model::MemoryKind;
use leakwatch_model::UnixMs;
use std::fmt::Write;

/// The page style, inlined into every page and report.
pub const CSS: &str = "\
:root{--fg:#111827;--muted:#6b7280;--line:#e5e7eb;--bad:#b91c1c;--warn:#b45309;--ok:#047857}\
*{box-sizing:border-box}\
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:var(--fg);margin:0;background:#f9fafb}\
header{background:#111827;color:#f9fafb;padding:10px 20px;display:flex;gap:16px;align-items:baseline;flex-wrap:wrap}\
header a{color:#f9fafb;text-decoration:none;font-weight:600}\
header .sub{color:#d1d5db;font-size:13px}\
main{padding:12px 20px 40px;max-width:1400px}\
h1{font-size:20px;margin:8px 0}h2{font-size:16px;margin:22px 0 8px}\
nav.ranges a{margin-right:8px}nav.ranges a.on{font-weight:700;text-decoration:none;color:var(--fg)}\
.muted{color:var(--muted)}\
table{border-collapse:collapse;background:#fff;width:100%}\
th,td{text-align:left;padding:5px 8px;border-bottom:1px solid var(--line);vertical-align:middle}\
th{font-size:12px;color:var(--muted);font-weight:600}\
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}\
.badge{display:inline-block;border-radius:9px;padding:0 7px;font-size:12px;font-weight:600;color:#fff;background:var(--muted)}\
.badge.critical,.badge.leak{background:var(--bad)}.badge.warning,.badge.saturation{background:var(--warn)}\
.badge.crash_loop{background:#7c2d12}.badge.suspected{background:#6b7280}.badge.resolved{background:#9ca3af;text-decoration:line-through}.badge.live{background:var(--ok)}.badge.gone{background:#9ca3af}\
.finding{margin:2px 0}table.targets td:nth-child(2){min-width:300px}\
.spark{display:block}.cell{display:flex;gap:6px;align-items:center}\
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(600px,1fr));gap:14px}\
figure{margin:0;background:#fff;border:1px solid var(--line);border-radius:6px;padding:6px}\
svg.chart{width:100%;height:auto;display:block;user-select:none}\
svg.chart .plot{fill:#fff;stroke:#d1d5db}\
svg.chart .grid line{stroke:#eef0f3}svg.chart .xaxis line{stroke:#9ca3af}\
svg.chart text{font:11px system-ui,sans-serif;fill:#374151}\
svg.chart .ctitle{font-size:13px;font-weight:600;fill:#111827}\
svg.chart .ylabel{text-anchor:end}svg.chart .xlabel{text-anchor:middle}\
svg.chart .series{fill:none;stroke-width:1.6;stroke-linejoin:round}\
svg.chart .trend{fill:none;stroke-width:5;stroke-opacity:.35}\
svg.chart .forecast{fill:none;stroke-width:2;stroke-dasharray:7 4}\
svg.chart .future{fill:#f3f4f6}svg.chart .flabel{fill:#9ca3af}\
svg.chart .llabel{fill:#b91c1c}svg.chart .note{fill:#6b7280}\
svg.chart .sel{fill:#2563eb;fill-opacity:.15}\
pre{background:#fff;border:1px solid var(--line);padding:8px;overflow:auto;font-size:12px;max-height:420px}\
code{font-size:12px}\
";

/// Drag across a chart to reload the page with that time range (`from_ms`, `to_ms`).
pub const ZOOM_JS: &str = "\
document.querySelectorAll('svg.chart').forEach(function(svg){\
var d=svg.dataset,x0=+d.x0,x1=+d.x1,t0=+d.t0,t1=+d.t1,vw=+d.viewWidth,sel=svg.querySelector('.sel'),a=null;\
function px(e){var r=svg.getBoundingClientRect();return Math.min(x1,Math.max(x0,(e.clientX-r.left)*vw/r.width));}\
function show(b){var l=Math.min(a,b);sel.setAttribute('x',l);sel.setAttribute('width',Math.abs(b-a));}\
svg.addEventListener('mousedown',function(e){a=px(e);show(a);sel.setAttribute('visibility','visible');e.preventDefault();});\
svg.addEventListener('mousemove',function(e){if(a!==null)show(px(e));});\
window.addEventListener('mouseup',function(e){if(a===null)return;var b=px(e),l=Math.min(a,b),h=Math.max(a,b);a=null;\
if(h-l<4){sel.setAttribute('visibility','hidden');return;}\
var t=function(x){return Math.round(t0+(x-x0)/(x1-x0)*(t1-t0));};\
location.search='?from_ms='+t(l)+'&to_ms='+t(h);});});\
";

/// Range choices offered on every page.
pub const RANGES: [&str; 4] = ["1h", "6h", "24h", "7d"];

/// A whole HTML document around `body`.
pub fn document(title: &str, header: &str, body: &str, script: Option<&str>) -> String {
    let mut s = String::with_capacity(body.len() + CSS.len() + 1024);
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{}</title><style>{CSS}</style></head><body><header>{header}</header><main>{body}</main>",
        html(title)
    );
    if let Some(script) = script {
        let _ = write!(s, "<script>{script}</script>");
    }
    s.push_str("</body></html>\n");
    s
}

fn range_nav(current: Option<&str>, from_ms: i64, to_ms: i64) -> String {
    let mut s = String::from("<nav class=\"ranges\">range: ");
    for range in RANGES {
        let on = if current == Some(range) {
            " class=\"on\""
        } else {
            ""
        };
        let _ = write!(s, "<a{on} href=\"?since={range}\">{range}</a>");
    }
    let _ = write!(
        s,
        "<span class=\"muted\">{} – {} ({})</span></nav>",
        html(&timestamp(from_ms)),
        html(&timestamp(to_ms)),
        html(&span_ms(to_ms - from_ms))
    );
    s
}

fn eta_text(f: &Finding) -> String {
    match (f.eta_seconds, f.eta_conservative_seconds) {
        (Some(eta), Some(early)) if (early - eta).abs() >= 1.0 => {
            format!("~{} (as soon as {})", duration(eta), duration(early))
        }
        (Some(eta), _) => format!("~{}", duration(eta)),
        (None, Some(early)) => format!("as soon as {}", duration(early)),
        (None, None) => "no limit known".to_string(),
    }
}

/// The finding's kind, and its state when it is not simply confirmed: a suspected leak is
/// grey ("not yet enough evidence, not alerted"), a resolved one struck through.
fn kind_badge(finding: &Finding) -> String {
    let kind = finding.kind;
    let name = kind.to_string().replace('_', " ");
    match finding.state {
        FindingState::Confirmed => format!("<span class=\"badge {kind}\">{name}</span>"),
        FindingState::Suspected => format!(
            "<span class=\"badge suspected\" title=\"not yet enough evidence; not alerted\">{name}?</span>"
        ),
        FindingState::Resolved => {
            format!("<span class=\"badge resolved\">{name} resolved</span>")
        }
    }
}

/// Quantity of a finding's resource: bytes for memory, integers for counts of objects.
fn quantity(key: &SeriesKey, value: f64) -> String {
    leakwatch_detect::format::quantity_of(key, value)
}

/// The findings as a table: what, how fast, forecast, confidence, since when.
pub fn findings_table(findings: &[Finding]) -> String {
    if findings.is_empty() {
        return "<p class=\"muted\">No findings: nothing is growing toward a limit.</p>".into();
    }
    let mut s = String::from(
        "<table class=\"findings\"><tr><th>kind</th><th>series</th><th>summary</th><th>rate</th>\
         <th>current / limit</th><th>limit reached</th><th>confidence</th><th>since</th></tr>",
    );
    for f in findings {
        let rate = if f.kind == FindingKind::CrashLoop {
            format!("{} restarts/h", number(f.rate_per_hour))
        } else {
            format!("{}/h", quantity(&f.key, f.rate_per_hour))
        };
        let limit = f
            .limit
            .map(|l| format!(" / {}", quantity(&f.key, l)))
            .unwrap_or_default();
        // Which processes: the first as the agent described it, and how many more.
        let processes = match f.processes.first() {
            Some(first) => {
                let total = f.pids.len().max(f.processes.len());
                let more = if total > 1 {
                    format!(" (+{} more)", total - 1)
                } else {
                    String::new()
                };
                format!(
                    "<div class=\"muted process\"><code>{}</code>{more}</div>",
                    html(&first.brief())
                )
            }
            None => String::new(),
        };
        // What the incident's evidence found growing (the class, site or creator).
        let processes = match &f.evidence {
            Some(line) => format!("{processes}<div class=\"evidence\">{}</div>", html(line)),
            None => processes,
        };
        let _ = write!(
            s,
            "<tr class=\"finding\"><td>{}</td><td><code>{}</code></td><td>{}{processes}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}{}</td><td>{}</td><td class=\"num\">{:.1}%</td><td>{}</td></tr>",
            kind_badge(f),
            html(&f.key.label()),
            html(&f.summary),
            html(&rate),
            html(&quantity(&f.key, f.current)),
            html(&limit),
            html(&eta_text(f)),
            f.confidence * 100.0,
            html(&timestamp(UnixMs::from_secs_f64(f.first_seen).0)),
        );
        // Its consequences: the same leak seen through the series that contain it.
        for c in &f.consequences {
            let limit = c
                .limit
                .map(|l| format!(" / {}", quantity(&c.key, l)))
                .unwrap_or_default();
            let _ = write!(
                s,
                "<tr class=\"consequence\"><td class=\"muted\">also</td><td><code>{}</code></td>\
                 <td>{}</td><td class=\"num\">{}/h</td><td class=\"num\">{}{}</td><td></td><td></td><td></td></tr>",
                html(&c.key.label()),
                html(&c.brief()),
                html(&quantity(&c.key, c.rate_per_hour)),
                html(&quantity(&c.key, c.current)),
                html(&limit),
            );
        }
    }
    s.push_str("</table>");
    s
}

/// Restarts with their reason and the last line of stderr (the whole tail on click).
pub fn restarts_table(restarts: &[RestartView]) -> String {
    if restarts.is_empty() {
        return "<p class=\"muted\">No restarts in this range.</p>".into();
    }
    let mut s = String::from(
        "<table class=\"restarts\"><tr><th>time</th><th>what</th><th>stderr</th></tr>",
    );
    for r in restarts.iter().rev().take(50) {
        let stderr = match r.stderr_tail.as_deref().map(str::trim_end) {
            Some(tail) if !tail.is_empty() => {
                let last = tail.lines().last().unwrap_or_default();
                format!(
                    "<details><summary><code>{}</code></summary><pre>{}</pre></details>",
                    html(last),
                    html(tail)
                )
            }
            _ => String::new(),
        };
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{stderr}</td></tr>",
            html(&timestamp(r.ts_ms)),
            html(&r.describe())
        );
    }
    if restarts.len() > 50 {
        let _ = write!(
            s,
            "<tr><td colspan=\"3\" class=\"muted\">{} older restarts not shown</td></tr>",
            restarts.len() - 50
        );
    }
    s.push_str("</table>");
    s
}

/// Alerts and the state of their notifications per channel.
pub fn alerts_table(alerts: &[AlertView]) -> String {
    if alerts.is_empty() {
        return "<p class=\"muted\">No alerts.</p>".into();
    }
    let mut s = String::from(
        "<table class=\"alerts\"><tr><th>severity</th><th>state</th><th>series</th><th>since</th><th>notifications</th></tr>",
    );
    for a in alerts {
        let mut deliveries = String::new();
        for d in &a.deliveries {
            let _ = write!(
                deliveries,
                "<div>{}: {} ({} attempt{}){}</div>",
                html(&d.channel),
                html(&d.status),
                d.attempts,
                if d.attempts == 1 { "" } else { "s" },
                d.detail
                    .as_deref()
                    .map(|x| format!(" <span class=\"muted\">{}</span>", html(x)))
                    .unwrap_or_default()
            );
        }
        if let Some(reason) = &a.silenced {
            let _ = write!(
                deliveries,
                "<div class=\"muted\">silenced: {}</div>",
                html(reason)
            );
        }
        let _ = write!(
            s,
            "<tr><td><span class=\"badge {sev}\">{sev}</span></td><td>{}</td><td><code>{}</code><div class=\"muted\">{}</div></td><td>{}</td><td>{deliveries}</td></tr>",
            html(&a.state),
            html(&crate::model::label(&a.resource, &a.attribution)),
            html(&a.summary),
            a.since_ms.map(|t| html(&timestamp(t))).unwrap_or_default(),
            sev = html(&a.severity),
        );
    }
    s.push_str("</table>");
    s
}

/// Makes the link to an incident's file: `(incident id, file name) -> href`.
pub type FileHref<'a> = &'a dyn Fn(&str, &str) -> String;

/// Incidents (evidence captured at first detection), with links to their files when
/// `file_href` is given.
pub fn incidents_table(incidents: &[IncidentView], file_href: Option<FileHref>) -> String {
    if incidents.is_empty() {
        return "<p class=\"muted\">No incidents captured.</p>".into();
    }
    let mut s = String::from(
        "<table class=\"incidents\"><tr><th>id</th><th>created</th><th>series</th><th>files</th></tr>",
    );
    for i in incidents {
        let files: Vec<String> = i
            .files
            .iter()
            .map(|(name, bytes)| {
                let text = format!("{} ({})", name, crate::format::bytes(*bytes as f64));
                match file_href {
                    Some(href) => {
                        format!(
                            "<a href=\"{}\">{}</a>",
                            html(&href(&i.id, name)),
                            html(&text)
                        )
                    }
                    None => html(&text),
                }
            })
            .collect();
        let _ = write!(
            s,
            "<tr><td><code>{}</code></td><td>{}</td><td><code>{}</code><div class=\"muted\">{}</div></td><td>{}</td></tr>",
            html(&i.id),
            html(&timestamp(i.created_ms)),
            html(&crate::model::label(&i.resource, &i.attribution)),
            html(&i.summary),
            files.join(", ")
        );
    }
    s.push_str("</table>");
    s
}

/// One chart of a target: which series it draws and how.
pub(crate) struct Group {
    pub id: String,
    pub title: String,
    pub unit: Unit,
    /// Series drawn, in legend order.
    pub lines: Vec<usize>,
    pub hidden: usize,
    pub limit: Option<Limit>,
}

/// Most lines one chart draws; the rest are counted in a note.
pub const MAX_LINES: usize = 8;

fn is_finding_series(findings: &[Finding], s: &SeriesView) -> bool {
    findings
        .iter()
        .any(|f| f.key.resource == s.key.resource && f.key.attribution == s.key.attribution)
}

/// A value series of `resource` other than the per-process maximum (which the limit line
/// stands for).
fn is_part_of(s: &SeriesView, resource: &Resource) -> bool {
    !s.key.is_limit && s.key.resource == *resource && s.key.attribution != Attribution::MaxProcess
}

/// Groups a target's series into charts: threads by name group, fds by type, sockets by
/// state, TCP sockets by peer, memory, one chart per app gauge, processes.
pub(crate) fn groups(t: &TargetView) -> Vec<Group> {
    let limit_of = |resource: Resource, attribution: Attribution, label: &str| -> Option<Limit> {
        t.series
            .iter()
            .find(|s| {
                s.key.is_limit && s.key.resource == resource && s.key.attribution == attribution
            })
            .and_then(SeriesView::last)
            .map(|value| Limit {
                value,
                label: label.to_string(),
            })
    };
    let pick = |id: &str, title: String, unit: Unit, keep: &dyn Fn(&SeriesView) -> bool, limit| {
        let mut chosen: Vec<usize> = (0..t.series.len())
            .filter(|&i| keep(&t.series[i]))
            .collect();
        // Totals first, then what a finding is about, then the largest.
        chosen.sort_by(|&a, &b| {
            let (sa, sb) = (&t.series[a], &t.series[b]);
            sb.key
                .is_total()
                .cmp(&sa.key.is_total())
                .then_with(|| {
                    is_finding_series(&t.findings, sb).cmp(&is_finding_series(&t.findings, sa))
                })
                .then_with(|| sb.max().unwrap_or(0.0).total_cmp(&sa.max().unwrap_or(0.0)))
                .then_with(|| sa.key.attribution.cmp(&sb.key.attribution))
        });
        let hidden = chosen.len().saturating_sub(MAX_LINES);
        chosen.truncate(MAX_LINES);
        Group {
            id: id.to_string(),
            title,
            unit,
            lines: chosen,
            hidden,
            limit,
        }
    };
    let mut out = vec![
        pick(
            "threads",
            "Threads by name group".into(),
            Unit::Count,
            &|s| is_part_of(s, &Resource::Threads),
            limit_of(
                Resource::Threads,
                Attribution::MaxProcess,
                "thread limit (per process)",
            ),
        ),
        pick(
            "fds",
            "File descriptors by type".into(),
            Unit::Count,
            &|s| is_part_of(s, &Resource::Fds),
            limit_of(
                Resource::Fds,
                Attribution::MaxProcess,
                "fd limit (per process)",
            ),
        ),
        pick(
            "sockets",
            "Sockets by state".into(),
            Unit::Count,
            &|s| is_part_of(s, &Resource::Tcp) || is_part_of(s, &Resource::Sockets),
            None,
        ),
        pick(
            "peers",
            "TCP sockets by state and peer".into(),
            Unit::Count,
            &|s| is_part_of(s, &Resource::TcpPeer),
            None,
        ),
        pick(
            "memory",
            "Memory".into(),
            Unit::Bytes,
            &|s| is_part_of(s, &Resource::Memory),
            limit_of(
                Resource::Memory,
                Attribution::Memory(MemoryKind::Cgroup),
                "cgroup memory limit",
            ),
        ),
    ];
    let gauges: Vec<&SeriesView> = t
        .series
        .iter()
        .filter(|s| is_part_of(s, &Resource::Gauge))
        .collect();
    for (n, gauge) in gauges.iter().enumerate().take(12) {
        let name = gauge.key.attribution.clone();
        out.push(pick(
            &format!("gauge{n}"),
            format!("App gauge {name}"),
            Unit::Count,
            &|s| is_part_of(s, &Resource::Gauge) && s.key.attribution == name,
            limit_of(Resource::Gauge, name.clone(), "declared capacity"),
        ));
    }
    out.push(pick(
        "processes",
        "Processes".into(),
        Unit::Count,
        &|s| is_part_of(s, &Resource::Processes),
        None,
    ));
    out.retain(|g| !g.lines.is_empty());
    out
}

/// The SVG charts of a target, `width` pixels wide each.
pub fn target_charts(t: &TargetView, width: u32, id_prefix: &str) -> Vec<String> {
    let markers: Vec<Marker> = t
        .restarts
        .iter()
        .map(|r| Marker {
            ts_ms: r.ts_ms,
            title: r.describe(),
        })
        .collect();
    groups(t)
        .into_iter()
        .map(|g| {
            let lines: Vec<Line> = g
                .lines
                .iter()
                .map(|&i| {
                    let s = &t.series[i];
                    Line {
                        label: if s.key.is_total() {
                            format!("{} (total)", s.key.resource)
                        } else {
                            s.label()
                        },
                        points: &s.points,
                    }
                })
                .collect();
            let trends: Vec<Trend> = t
                .findings
                .iter()
                .filter_map(|f| {
                    let line = g.lines.iter().position(|&i| {
                        t.series[i].key.resource == f.key.resource
                            && t.series[i].key.attribution == f.key.attribution
                    })?;
                    Trend::from_finding(f, Some(line))
                })
                .collect();
            chart::render(&Chart {
                id: format!("{id_prefix}{}", g.id),
                title: g.title,
                unit: g.unit,
                from_ms: t.from_ms,
                to_ms: t.to_ms,
                width,
                height: 240,
                lines,
                limit: g.limit,
                markers: markers.clone(),
                trends,
                note: (g.hidden > 0).then(|| {
                    format!(
                        "+{} smaller series not shown (all of them: the JSON API)",
                        g.hidden
                    )
                }),
            })
        })
        .collect()
}

/// The target page. `range` is the `since` choice in use, if any (to highlight it).
pub fn target(t: &TargetView, range: Option<&str>, agent: &str) -> String {
    let name = url_component(&t.name);
    let mut body = String::with_capacity(256 * 1024);
    let _ = write!(
        body,
        "<h1>{} <span class=\"badge {state}\">{state}</span> <span class=\"muted\">{}</span></h1>",
        html(&t.name),
        html(&t.kind),
        state = if t.live { "live" } else { "gone" },
    );
    body.push_str(&range_nav(range, t.from_ms, t.to_ms));
    body.push_str(
        "<p class=\"muted\">Drag across a chart to zoom into that time range. Times are UTC.</p>",
    );
    body.push_str("<h2>Findings</h2>");
    body.push_str(&findings_table(&t.findings));
    body.push_str("<h2>Charts</h2>");
    let charts = target_charts(t, 640, "");
    if charts.is_empty() {
        body.push_str("<p class=\"muted\">No samples in this range.</p>");
    } else {
        body.push_str("<div class=\"charts\">");
        for svg in charts {
            let _ = write!(body, "<figure>{svg}</figure>");
        }
        body.push_str("</div>");
    }
    body.push_str("<h2>Restarts</h2>");
    body.push_str(&restarts_table(&t.restarts));
    body.push_str("<h2>Alerts</h2>");
    body.push_str(&alerts_table(&t.alerts));
    body.push_str("<h2>Incidents</h2>");
    let href = |id: &str, file: &str| {
        format!(
            "../api/v1/incidents/{}/files/{}",
            url_component(id),
            url_component(file)
        )
    };
    body.push_str(&incidents_table(&t.incidents, Some(&href)));
    let _ = write!(
        body,
        "<h2>Data</h2><p class=\"muted\">The same data as JSON: \
         <a href=\"../api/v1/series?target={name}&amp;from_ms={}&amp;to_ms={}\">series</a>, \
         <a href=\"../api/v1/restarts?target={name}\">restarts</a>, \
         <a href=\"../api/v1/findings\">findings</a>, <a href=\"../api/v1/alerts\">alerts</a>. \
         A report to share: <code>leakwatch report {}</code>.</p>",
        t.from_ms,
        t.to_ms,
        html(&quote::word(&t.name)),
    );
    let header = format!(
        "<a href=\"../\">leakwatch</a><span class=\"sub\">{} · {}</span>",
        html(&t.name),
        html(agent)
    );
    document(
        &format!("{} · leakwatch", t.name),
        &header,
        &body,
        Some(ZOOM_JS),
    )
}

/// The overview: every target, riskiest first, with sparklines for those that have them.
pub fn overview(o: &Overview, range: Option<&str>) -> String {
    let mut body = String::with_capacity(128 * 1024);
    let with_findings = o.rows.iter().filter(|r| !r.findings.is_empty()).count();
    let _ = write!(
        body,
        "<h1>Targets <span class=\"muted\">{} watched, {} with findings</span></h1>",
        o.rows.len(),
        with_findings
    );
    body.push_str(&range_nav(range, o.from_ms, o.to_ms));
    if o.rows.is_empty() {
        body.push_str("<p class=\"muted\">No targets yet: the agent has not stored a sample.</p>");
    } else {
        body.push_str(
            "<table class=\"targets\"><tr><th>target</th><th>findings</th><th>threads</th>\
             <th>fds</th><th>sockets</th><th>memory</th><th>nearest limit</th></tr>",
        );
        let since = range
            .map(|r| format!("?since={}", url_component(r)))
            .unwrap_or_default();
        for row in &o.rows {
            let mut findings = String::new();
            for f in &row.findings {
                let eta = soonest_eta(std::slice::from_ref(f))
                    .map(|e| {
                        format!(
                            " <span class=\"badge {}\">limit in ~{}</span>",
                            if e < 6.0 * 3600.0 {
                                "critical"
                            } else {
                                "warning"
                            },
                            duration(e)
                        )
                    })
                    .unwrap_or_default();
                let _ = write!(
                    findings,
                    "<div class=\"finding\">{} {}{eta}</div>",
                    kind_badge(f),
                    html(&f.summary)
                );
            }
            let _ = write!(
                body,
                "<tr><td><a href=\"target/{}{since}\">{}</a> <span class=\"badge {state}\">{state}</span><div class=\"muted\">{}</div></td><td>{findings}</td>",
                url_component(&row.name),
                html(&row.name),
                html(&row.kind),
                state = if row.live { "live" } else { "gone" },
            );
            for title in ["threads", "fds", "sockets", "memory"] {
                body.push_str("<td>");
                if let Some(spark) = row.sparks.iter().find(|s| s.title == title) {
                    let unit = Unit::of_resource(&spark.resource);
                    let current = spark
                        .points
                        .last()
                        .map(|p| unit.value(p.1))
                        .unwrap_or_default();
                    let _ = write!(
                        body,
                        "<div class=\"cell\">{}<span class=\"num\">{}</span></div>",
                        chart::sparkline(
                            &spark.points,
                            // A target younger than the range: its own lifetime, not a
                            // sliver at the right edge.
                            spark
                                .points
                                .first()
                                .map_or(o.from_ms, |p| p.0.max(o.from_ms)),
                            o.to_ms,
                            90,
                            26,
                            spark.limit,
                            &format!("{} {title}", row.name)
                        ),
                        html(&current)
                    );
                }
                body.push_str("</td>");
            }
            let close = row
                .closeness
                .as_ref()
                .map(|(ratio, label)| {
                    format!(
                        "{:.0}%<div class=\"muted\"><code>{}</code></div>",
                        ratio * 100.0,
                        html(label)
                    )
                })
                .unwrap_or_default();
            let _ = write!(body, "<td class=\"num\">{close}</td></tr>");
        }
        body.push_str("</table>");
    }
    body.push_str(
        "<p class=\"muted\">Ranked by risk: targets with findings first, soonest forecast \
         exhaustion first, then by how close a resource is to its limit. \
         API: <a href=\"api\">endpoints</a>, <a href=\"metrics\">/metrics</a>.</p>",
    );
    let header = format!(
        "<a href=\"./\">leakwatch</a><span class=\"sub\">{}</span>",
        html(&o.agent)
    );
    document("leakwatch", &header, &body, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tests::finding;
    use crate::model::{OverviewRow, Spark};

    fn leaky_target() -> TargetView {
        let t0 = 1_700_000_000_000;
        let ramp: Vec<(i64, f64)> = (0..300).map(|i| (t0 + i * 1_000, i as f64)).collect();
        let flat: Vec<(i64, f64)> = (0..300).map(|i| (t0 + i * 1_000, 2.0)).collect();
        let total: Vec<(i64, f64)> = ramp.iter().map(|&(t, v)| (t, v + 3.0)).collect();
        let mut f = finding("grower", "threads", "Leaky-#", Some(3_000.0));
        f.current = 299.0;
        f.evidence_window = (t0 as f64 / 1e3, (t0 + 299_000) as f64 / 1e3);
        f.first_seen = t0 as f64 / 1e3;
        let mut series = vec![
            SeriesView::from_text("threads", "", total),
            SeriesView::from_text("threads", "Leaky-#", ramp),
            SeriesView::from_text("threads", "Base-#", flat.clone()),
            SeriesView::from_text("threads", "max_process", flat.clone()),
            SeriesView::from_text("threads.limit", "max_process", vec![(t0, 3_000.0)]),
            SeriesView::from_text("memory", "rss", vec![(t0, 1e6), (t0 + 299_000, 2e6)]),
            SeriesView::from_text("tcp_peer", "CLOSE_WAIT <127.0.0.1:1>", flat.clone()),
        ];
        for i in 0..12 {
            series.push(SeriesView::from_text(
                "fds",
                &format!("kind{i}"),
                flat.clone(),
            ));
        }
        TargetView {
            name: "grower".into(),
            kind: "rule".into(),
            live: true,
            from_ms: t0,
            to_ms: t0 + 299_000,
            series,
            restarts: vec![RestartView {
                ts_ms: t0 + 100_000,
                old_pid: Some(1),
                new_pid: Some(2),
                exit_code: Some(1),
                stderr_tail: Some("panic: <boom>\n".into()),
                ..RestartView::default()
            }],
            findings: vec![f],
            alerts: vec![],
            incidents: vec![],
        }
    }

    #[test]
    fn target_page_has_every_chart_and_escapes_process_strings() {
        let page = target(&leaky_target(), Some("1h"), "agent up 5m");
        for title in [
            "Threads by name group",
            "File descriptors by type",
            "TCP sockets by state and peer",
            "Memory",
        ] {
            assert!(page.contains(title), "{title}");
        }
        assert!(page.contains("data-label=\"threads{Leaky-#}\""));
        assert!(
            !page.contains("data-label=\"threads{max_process}\""),
            "per-process max is not a group"
        );
        assert!(page.contains("class=\"trend\"") && page.contains("class=\"forecast\""));
        assert!(
            page.contains("+4 smaller series not shown"),
            "12 fd kinds, 8 drawn"
        );
        assert!(page.contains("CLOSE_WAIT &lt;127.0.0.1:1&gt;"));
        assert!(page.contains("panic: &lt;boom&gt;"));
        assert!(!page.contains("<boom>") && !page.contains("<127.0.0.1:1>"));
        assert!(page.contains("<a class=\"on\" href=\"?since=1h\">"));
        assert!(page.contains("<script>") && page.contains("from_ms"));
        assert!(!page.contains("http://") && !page.contains("https://"));
        assert!(page.contains("threads Leaky-# +300 in 5m"));
    }

    #[test]
    fn a_root_finding_shows_its_consequences_with_integer_counts() {
        let mut f = finding("svc", "tcp", "CLOSE_WAIT", Some(3600.0));
        f.rate_per_hour = 2.581;
        f.consequences.push(leakwatch_detect::Consequence {
            kind: FindingKind::Leak,
            key: leakwatch_detect::SeriesKey::from_text("svc", "fds", "socket"),
            current: 812.0,
            limit: Some(1024.0),
            rate_per_hour: 2_610.4,
            evidence_window: (0.0, 1000.0),
        });
        f.consequences.push(leakwatch_detect::Consequence {
            kind: FindingKind::Leak,
            key: leakwatch_detect::SeriesKey::from_text("svc", "memory", "rss"),
            current: 64.0 * 1024.0 * 1024.0,
            limit: None,
            rate_per_hour: 3.8 * 1024.0 * 1024.0,
            evidence_window: (0.0, 3600.0),
        });
        let table = findings_table(&[f.clone()]);
        assert!(table.contains("<td class=\"num\">3/h</td>"), "{table}");
        assert!(!table.contains("2.581"), "{table}");
        assert_eq!(table.matches("class=\"consequence\"").count(), 2, "{table}");
        assert!(table.contains("<code>fds{socket}</code>") && table.contains("fds socket +725"));
        assert!(table.contains("memory rss +3.8 MiB") && table.contains("812 / 1,024"));
        let sentence = crate::report::finding_sentence(&f, html);
        assert!(
            sentence.ends_with("Also: fds socket +725, memory rss +3.8 MiB."),
            "{sentence}"
        );
    }

    #[test]
    fn overview_rows_link_to_targets_and_show_sparklines() {
        let t0 = 1_700_000_000_000;
        let points: Vec<(i64, f64)> = (0..100).map(|i| (t0 + i * 1_000, i as f64)).collect();
        let o = Overview {
            from_ms: t0,
            to_ms: t0 + 99_000,
            agent: "agent".into(),
            rows: vec![
                OverviewRow {
                    name: "a b/c".into(),
                    kind: "unit".into(),
                    live: true,
                    findings: vec![finding("a b/c", "threads", "Leaky-#", Some(600.0))],
                    closeness: Some((0.42, "fds{max_process}".into())),
                    sparks: vec![Spark {
                        title: "threads".into(),
                        resource: Resource::Threads,
                        points: points.clone(),
                        limit: None,
                    }],
                    ..OverviewRow::default()
                },
                OverviewRow {
                    name: "<idle>".into(),
                    ..OverviewRow::default()
                },
            ],
        };
        let page = overview(&o, Some("6h"));
        assert!(
            page.contains("href=\"target/a%20b%2Fc?since=6h\""),
            "{page}"
        );
        assert!(page.contains("class=\"spark\""));
        assert!(page.contains("limit in ~8m"), "conservative ETA of 600 s");
        assert!(page.contains("42%<div class=\"muted\"><code>fds{max_process}</code></div>"));
        assert!(page.contains("&lt;idle&gt;") && !page.contains("<idle>"));
        assert!(page.contains("2 watched, 1 with findings"));
    }
}
