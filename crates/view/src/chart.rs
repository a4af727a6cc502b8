//! One server-rendered SVG time-series chart.
//!
//! A chart has one or more lines (each downsampled with [`crate::downsample::min_max`] to
//! the plot's pixel width, at most two points per pixel column), a legend, the limit as a dashed line, restarts as vertical
//! markers with a tooltip, and for each finding its trend (the fitted growth over the
//! evidence) and forecast (the growth carried forward to the limit), drawn in a shaded
//! area to the right of "now".

use crate::downsample;
use crate::escape::html;
use crate::format::{duration, timestamp, Unit};
use crate::model::{Finding, FindingKind};
use crate::scale;
use leakwatch_model::UnixMs;
use std::fmt::Write;

/// Line colours, in legend order; readable on white and distinct from the limit's red.
pub const PALETTE: [&str; 10] = [
    "#2563eb", "#d97706", "#059669", "#7c3aed", "#0891b2", "#db2777", "#65a30d", "#92400e",
    "#475569", "#ca8a04",
];
const LIMIT_COLOR: &str = "#b91c1c";
const RESTART_COLOR: &str = "#ea580c";

/// One line of a chart.
#[derive(Debug, Clone)]
pub struct Line<'a> {
    pub label: String,
    /// Time-ordered `(ms, value)`; any length.
    pub points: &'a [(i64, f64)],
}

/// The ceiling the lines run into.
#[derive(Debug, Clone, PartialEq)]
pub struct Limit {
    pub value: f64,
    pub label: String,
}

/// A vertical marker (a restart), with its tooltip.
#[derive(Debug, Clone, PartialEq)]
pub struct Marker {
    pub ts_ms: i64,
    pub title: String,
}

/// A finding drawn over its line: the fitted growth from `start` to `end` (the latest
/// sample), then the forecast at the same rate until `eta_ms`, where it reaches `limit`.
#[derive(Debug, Clone, PartialEq)]
pub struct Trend {
    pub label: String,
    pub start: (i64, f64),
    pub end: (i64, f64),
    /// Growth per millisecond.
    pub rate_per_ms: f64,
    /// When the point forecast reaches the limit.
    pub eta_ms: Option<i64>,
    pub limit: Option<f64>,
    /// Index of the chart line it belongs to (for its colour).
    pub line: Option<usize>,
}

impl Trend {
    /// The trend of a leak finding (`None` for crash loops, saturation, or no growth):
    /// anchored at the finding's current value at the end of its evidence window, going
    /// back to when the growth began (`first_seen`) at `rate_per_hour`.
    pub fn from_finding(finding: &Finding, line: Option<usize>) -> Option<Trend> {
        if finding.kind != FindingKind::Leak
            || !(finding.rate_per_hour.is_finite() && finding.rate_per_hour > 0.0)
            || !finding.current.is_finite()
        {
            return None;
        }
        let end_ms = UnixMs::from_secs_f64(finding.evidence_window.1).0;
        let start_ms = UnixMs::from_secs_f64(finding.first_seen.max(finding.evidence_window.0)).0;
        let rate_per_ms = finding.rate_per_hour / 3_600_000.0;
        let start_value = finding.current - rate_per_ms * (end_ms - start_ms) as f64;
        Some(Trend {
            label: format!(
                "trend {}/h{}",
                Unit::of_resource(&finding.key.resource).value(finding.rate_per_hour),
                finding
                    .eta_seconds
                    .map(|eta| format!(", limit in ~{}", duration(eta)))
                    .unwrap_or_default()
            ),
            start: (start_ms.min(end_ms), start_value),
            end: (end_ms, finding.current),
            rate_per_ms,
            eta_ms: finding
                .eta_seconds
                .filter(|eta| eta.is_finite() && *eta >= 0.0)
                .map(|eta| end_ms + (eta * 1000.0) as i64),
            limit: finding.limit,
            line,
        })
    }

    fn value_at(&self, t: i64) -> f64 {
        self.end.1 + self.rate_per_ms * (t - self.end.0) as f64
    }
}

/// A chart to render.
#[derive(Debug, Clone)]
pub struct Chart<'a> {
    /// Unique within the page (used for element ids).
    pub id: String,
    pub title: String,
    pub unit: Unit,
    pub from_ms: i64,
    pub to_ms: i64,
    pub width: u32,
    pub height: u32,
    pub lines: Vec<Line<'a>>,
    pub limit: Option<Limit>,
    pub markers: Vec<Marker>,
    pub trends: Vec<Trend>,
    /// A remark under the legend, e.g. "+4 smaller groups not shown".
    pub note: Option<String>,
}

const LEFT: f64 = 64.0;
const RIGHT: f64 = 14.0;
const TOP: f64 = 26.0;
const AXIS: f64 = 22.0;
const LEGEND_ROW: f64 = 17.0;
const CHAR: f64 = 6.6;

/// Cuts `text` to `max` characters, ending with `…` when cut (before escaping).
fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

struct Legend {
    color: &'static str,
    dash: Option<&'static str>,
    text: String,
}

/// Lays legend entries out in rows of the plot's width; returns `(x, row)` per entry.
fn legend_layout(entries: &[Legend], width: f64) -> (Vec<(f64, usize)>, usize) {
    let mut out = Vec::with_capacity(entries.len());
    let (mut x, mut row) = (0.0, 0);
    for entry in entries {
        let w = 22.0 + CHAR * entry.text.chars().count() as f64 + 14.0;
        if x > 0.0 && x + w > width {
            x = 0.0;
            row += 1;
        }
        out.push((x, row));
        x += w;
    }
    let rows = if entries.is_empty() { 0 } else { row + 1 };
    (out, rows)
}

/// Renders the chart as an inline `<svg>` element (no XML prolog, no external references).
pub fn render(chart: &Chart) -> String {
    let width = f64::from(chart.width.max(200));
    let plot_w = width - LEFT - RIGHT;
    let columns = plot_w.round().max(1.0) as usize;
    let x_max = forecast_end(chart);
    let segments: Vec<Vec<Vec<(i64, f64)>>> = chart
        .lines
        .iter()
        .map(|line| downsample::min_max(line.points, chart.from_ms, chart.to_ms, columns))
        .collect();
    let (ys, show_limit) = value_scale(chart, &segments, x_max);
    let legend = legend_entries(chart, show_limit);
    let (positions, rows) = legend_layout(&legend, plot_w);
    let plot_h = f64::from(chart.height.max(80)) - TOP - AXIS;
    let note_h = if chart.note.is_some() {
        LEGEND_ROW
    } else {
        0.0
    };
    let frame = Frame {
        width,
        plot_w,
        plot_h,
        total_h: TOP + plot_h + AXIS + rows as f64 * LEGEND_ROW + note_h + 4.0,
        from_ms: chart.from_ms,
        x_max,
        x_span: (x_max - chart.from_ms).max(1),
        ys,
    };

    let mut s = String::with_capacity(16 * 1024);
    write_frame(&mut s, chart, &frame);
    write_axes(&mut s, chart, &frame);
    let _ = write!(s, "<g clip-path=\"url(#clip-{})\">", html(&chart.id));
    if let Some((limit, true)) = &show_limit {
        write_limit(&mut s, chart, &frame, limit);
    }
    write_markers(&mut s, chart, &frame);
    write_lines(&mut s, chart, &frame, &segments);
    write_trends(&mut s, chart, &frame);
    s.push_str("</g>");
    write_legend(&mut s, chart, &frame, &legend, &positions, rows);
    s.push_str("</svg>");
    s
}

/// Where the x axis ends: the chart's end, or later to leave room for forecasts whose
/// evidence reaches the chart's end.
fn forecast_end(chart: &Chart) -> i64 {
    let span = (chart.to_ms - chart.from_ms).max(1);
    let mut x_max = chart.to_ms;
    for trend in &chart.trends {
        if trend.end.0 >= chart.to_ms - span / 5 && trend.end.0 <= chart.to_ms + span / 5 {
            let room = trend
                .eta_ms
                .map_or(span / 4, |eta| eta - trend.end.0)
                .clamp(0, span * 2 / 5);
            x_max = x_max.max(trend.end.0 + room);
        }
    }
    x_max
}

/// The vertical scale: the data, the trends inside the view, and the limit when it is near
/// enough to matter (or a forecast reaches it inside the view). Returns the scale and the
/// limit to name, with whether it is on the scale.
fn value_scale<'c>(
    chart: &'c Chart,
    segments: &[Vec<Vec<(i64, f64)>>],
    x_max: i64,
) -> (scale::ValueScale, Option<(&'c Limit, bool)>) {
    let mut lo = f64::INFINITY;
    let mut hi = f64::NEG_INFINITY;
    for line in segments {
        if let Some((a, b)) = downsample::extent(line, chart.from_ms, chart.to_ms) {
            lo = lo.min(a);
            hi = hi.max(b);
        }
    }
    let has_data = lo.is_finite();
    let mut limit_reached_in_view = false;
    for trend in &chart.trends {
        let t0 = trend.start.0.max(chart.from_ms);
        let t1 = trend.eta_ms.map_or(x_max, |eta| eta.min(x_max));
        for t in [t0, trend.end.0.clamp(chart.from_ms, x_max), t1] {
            let v = trend.value_at(t);
            lo = lo.min(v);
            hi = hi.max(v);
        }
        if trend.eta_ms.is_some_and(|eta| eta <= x_max) {
            limit_reached_in_view = true;
        }
    }
    if !lo.is_finite() {
        lo = 0.0;
        hi = 1.0;
    }
    let show_limit = chart
        .limit
        .as_ref()
        .filter(|l| l.value.is_finite())
        .map(|l| {
            let on_scale = limit_reached_in_view || !has_data || l.value <= hi * 1.6;
            (l, on_scale)
        });
    if let Some((limit, true)) = show_limit {
        lo = lo.min(limit.value);
        hi = hi.max(limit.value);
    }
    if lo >= 0.0 && lo <= 0.5 * hi {
        lo = 0.0;
    }
    (scale::values(lo, hi, 4, chart.unit), show_limit)
}

/// The legend's entries: each line with its latest value, the limit, the trends, and the
/// restarts when there are any.
fn legend_entries(chart: &Chart, show_limit: Option<(&Limit, bool)>) -> Vec<Legend> {
    let mut legend: Vec<Legend> = chart
        .lines
        .iter()
        .enumerate()
        .map(|(i, line)| Legend {
            color: PALETTE[i % PALETTE.len()],
            dash: None,
            text: format!(
                "{} {}",
                cut(&line.label, 48),
                line.points
                    .last()
                    .map(|p| chart.unit.value(p.1))
                    .unwrap_or_default()
            ),
        })
        .collect();
    if let Some((limit, on_scale)) = &show_limit {
        legend.push(Legend {
            color: LIMIT_COLOR,
            dash: Some("6 4"),
            text: format!(
                "{} {}{}",
                cut(&limit.label, 40),
                chart.unit.value(limit.value),
                if *on_scale { "" } else { " (above the chart)" }
            ),
        });
    }
    for trend in &chart.trends {
        legend.push(Legend {
            color: trend_color(trend),
            dash: Some("2 3"),
            text: cut(&trend.label, 60),
        });
    }
    if !chart.markers.is_empty() {
        legend.push(Legend {
            color: RESTART_COLOR,
            dash: None,
            text: format!("restarts ({})", chart.markers.len()),
        });
    }
    legend
}

/// The colour of a trend: its line's, or the limit's when it has no line.
fn trend_color(trend: &Trend) -> &'static str {
    trend
        .line
        .map_or(LIMIT_COLOR, |i| PALETTE[i % PALETTE.len()])
}

/// The chart's geometry: sizes, and where a time or a value goes on the plot.
struct Frame {
    width: f64,
    plot_w: f64,
    plot_h: f64,
    total_h: f64,
    from_ms: i64,
    x_max: i64,
    x_span: i64,
    ys: scale::ValueScale,
}

impl Frame {
    fn x(&self, t: i64) -> f64 {
        LEFT + (t - self.from_ms) as f64 / self.x_span as f64 * self.plot_w
    }

    fn y(&self, v: f64) -> f64 {
        TOP + self.plot_h - (v - self.ys.lo) / (self.ys.hi - self.ys.lo) * self.plot_h
    }

    fn bottom(&self) -> f64 {
        TOP + self.plot_h
    }
}

/// Writes the `<svg>` opening, the title, the plot's clip path and background, and the
/// shaded forecast area right of the chart's end.
fn write_frame(s: &mut String, chart: &Chart, frame: &Frame) {
    let Frame {
        width,
        plot_w,
        plot_h,
        total_h,
        x_max,
        ..
    } = *frame;
    let id = html(&chart.id);
    let _ = write!(
        s,
        "<svg class=\"chart\" id=\"chart-{id}\" viewBox=\"0 0 {width} {total_h:.0}\" \
         width=\"{width}\" height=\"{total_h:.0}\" role=\"img\" aria-label=\"{title}\" \
         data-t0=\"{from}\" data-t1=\"{x_max}\" data-x0=\"{LEFT}\" data-x1=\"{right:.1}\" \
         data-view-width=\"{width}\">",
        title = html(&chart.title),
        from = chart.from_ms,
        right = LEFT + plot_w,
    );
    let _ = write!(
        s,
        "<title>{}</title><text class=\"ctitle\" x=\"{LEFT}\" y=\"16\">{}</text>",
        html(&chart.title),
        html(&chart.title)
    );
    let _ = write!(
        s,
        "<defs><clipPath id=\"clip-{id}\"><rect x=\"{LEFT}\" y=\"{TOP}\" width=\"{plot_w:.1}\" height=\"{plot_h:.1}\"/></clipPath></defs>\
         <rect class=\"plot\" x=\"{LEFT}\" y=\"{TOP}\" width=\"{plot_w:.1}\" height=\"{plot_h:.1}\"/>"
    );
    if x_max > chart.to_ms {
        let fx = frame.x(chart.to_ms);
        let _ = write!(
            s,
            "<rect class=\"future\" x=\"{fx:.1}\" y=\"{TOP}\" width=\"{:.1}\" height=\"{plot_h:.1}\"/>\
             <text class=\"flabel\" x=\"{:.1}\" y=\"{:.1}\">forecast</text>",
            LEFT + plot_w - fx,
            fx + 4.0,
            TOP + 12.0
        );
    }
}

/// Writes the value grid with its labels and the time axis with its ticks.
fn write_axes(s: &mut String, chart: &Chart, frame: &Frame) {
    let plot_w = frame.plot_w;
    let bottom = frame.bottom();
    s.push_str("<g class=\"grid\">");
    for tick in &frame.ys.ticks {
        let ty = frame.y(*tick);
        let _ = write!(
            s,
            "<line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{ty:.1}\" y2=\"{ty:.1}\"/><text class=\"ylabel\" x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            LEFT + plot_w,
            LEFT - 6.0,
            ty + 4.0,
            html(&chart.unit.axis(*tick))
        );
    }
    s.push_str("</g><g class=\"xaxis\">");
    let max_ticks = (plot_w / 90.0).floor().max(2.0) as usize;
    for (t, label) in scale::times(chart.from_ms, frame.x_max, max_ticks) {
        let tx = frame.x(t);
        let _ = write!(
            s,
            "<line x1=\"{tx:.1}\" x2=\"{tx:.1}\" y1=\"{bottom:.1}\" y2=\"{:.1}\"/><text class=\"xlabel\" x=\"{tx:.1}\" y=\"{:.1}\">{}</text>",
            bottom + 4.0,
            bottom + 16.0,
            html(&label)
        );
    }
    s.push_str("</g>");
}

/// Writes the limit as a dashed line with its label (when it is on the scale).
fn write_limit(s: &mut String, chart: &Chart, frame: &Frame, limit: &Limit) {
    let ly = frame.y(limit.value);
    let _ = write!(
        s,
        "<line class=\"limit\" x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{ly:.1}\" y2=\"{ly:.1}\" stroke=\"{LIMIT_COLOR}\" stroke-dasharray=\"6 4\"><title>{}: {}</title></line>\
         <text class=\"llabel\" x=\"{:.1}\" y=\"{:.1}\">{} {}</text>",
        LEFT + frame.plot_w,
        html(&limit.label),
        html(&chart.unit.value(limit.value)),
        LEFT + 4.0,
        ly - 4.0,
        html(&cut(&limit.label, 40)),
        html(&chart.unit.value(limit.value)),
    );
}

/// Writes the restarts inside the view as vertical markers with a tooltip.
fn write_markers(s: &mut String, chart: &Chart, frame: &Frame) {
    let bottom = frame.bottom();
    for marker in &chart.markers {
        if marker.ts_ms < chart.from_ms || marker.ts_ms > frame.x_max {
            continue;
        }
        let mx = frame.x(marker.ts_ms);
        let title = html(&format!(
            "restart {}: {}",
            timestamp(marker.ts_ms),
            marker.title
        ));
        let _ = write!(
            s,
            "<g class=\"restart\"><title>{title}</title>\
             <line x1=\"{mx:.1}\" x2=\"{mx:.1}\" y1=\"{TOP}\" y2=\"{bottom:.1}\" stroke=\"{RESTART_COLOR}\" stroke-width=\"1.5\"/>\
             <line x1=\"{mx:.1}\" x2=\"{mx:.1}\" y1=\"{TOP}\" y2=\"{bottom:.1}\" stroke=\"transparent\" stroke-width=\"9\"/></g>"
        );
    }
}

/// Writes each line as one path through its downsampled segments.
fn write_lines(s: &mut String, chart: &Chart, frame: &Frame, segments: &[Vec<Vec<(i64, f64)>>]) {
    for (i, (line, segments)) in chart.lines.iter().zip(segments).enumerate() {
        if segments.is_empty() {
            continue;
        }
        let mut d = String::with_capacity(segments.iter().map(Vec::len).sum::<usize>() * 14);
        for segment in segments {
            for (j, &(t, v)) in segment.iter().enumerate() {
                let _ = write!(
                    d,
                    "{}{:.1} {:.1}",
                    if j == 0 { "M" } else { "L" },
                    frame.x(t),
                    frame.y(v)
                );
            }
            if segment.len() == 1 {
                // A lone sample between gaps: a short stroke so it shows.
                d.push_str("h1");
            }
        }
        let label = html(&line.label);
        let last = line
            .points
            .last()
            .map(|p| chart.unit.value(p.1))
            .unwrap_or_default();
        let _ = write!(
            s,
            "<path class=\"series\" data-label=\"{label}\" d=\"{d}\" stroke=\"{}\"><title>{label}: {}</title></path>",
            PALETTE[i % PALETTE.len()],
            html(&last)
        );
    }
}

/// Writes each trend: the fitted growth over its evidence, the forecast beyond it, and a
/// dot where the forecast reaches the limit inside the view.
fn write_trends(s: &mut String, chart: &Chart, frame: &Frame) {
    let (x, y) = (|t| frame.x(t), |v| frame.y(v));
    for trend in &chart.trends {
        let color = trend_color(trend);
        let (t0, t1) = (trend.start.0.max(chart.from_ms), trend.end.0);
        let label = html(&trend.label);
        if t1 > t0 {
            let _ = write!(
                s,
                "<path class=\"trend\" d=\"M{:.1} {:.1}L{:.1} {:.1}\" stroke=\"{color}\"><title>{label}</title></path>",
                x(t0),
                y(trend.value_at(t0)),
                x(t1),
                y(trend.end.1)
            );
        }
        let t2 = trend.eta_ms.map_or(frame.x_max, |eta| eta.min(frame.x_max));
        if t2 > t1 {
            let _ = write!(
                s,
                "<path class=\"forecast\" d=\"M{:.1} {:.1}L{:.1} {:.1}\" stroke=\"{color}\"><title>{label}</title></path>",
                x(t1),
                y(trend.end.1),
                x(t2),
                y(trend.value_at(t2))
            );
        }
        if let (Some(eta), Some(limit)) = (trend.eta_ms, trend.limit) {
            if eta <= frame.x_max {
                let _ = write!(
                    s,
                    "<circle class=\"eta\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"4\" fill=\"{LIMIT_COLOR}\"><title>reaches {} at about {}</title></circle>",
                    x(eta),
                    y(limit),
                    html(&chart.unit.value(limit)),
                    timestamp(eta)
                );
            }
        }
    }
}

/// Writes the (hidden) drag-to-zoom selection, the legend under the plot, and the note.
fn write_legend(
    s: &mut String,
    chart: &Chart,
    frame: &Frame,
    legend: &[Legend],
    positions: &[(f64, usize)],
    rows: usize,
) {
    // The drag-to-zoom selection (shown by the dashboard's script; hidden elsewhere).
    let _ = write!(
        s,
        "<rect class=\"sel\" x=\"{LEFT}\" y=\"{TOP}\" width=\"0\" height=\"{:.1}\" visibility=\"hidden\"/>",
        frame.plot_h
    );
    let legend_top = frame.bottom() + AXIS + 2.0;
    s.push_str("<g class=\"legend\">");
    for (entry, (lx, row)) in legend.iter().zip(positions) {
        let ly = legend_top + *row as f64 * LEGEND_ROW + 8.0;
        let lx = LEFT + lx;
        let dash = entry
            .dash
            .map(|d| format!(" stroke-dasharray=\"{d}\""))
            .unwrap_or_default();
        let _ = write!(
            s,
            "<line x1=\"{lx:.1}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"{}\" stroke-width=\"3\"{dash}/><text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            lx + 16.0,
            ly - 4.0,
            ly - 4.0,
            entry.color,
            lx + 22.0,
            ly,
            html(&entry.text)
        );
    }
    s.push_str("</g>");
    if let Some(note) = &chart.note {
        let _ = write!(
            s,
            "<text class=\"note\" x=\"{LEFT}\" y=\"{:.1}\">{}</text>",
            legend_top + rows as f64 * LEGEND_ROW + 8.0,
            html(note)
        );
    }
}

/// A small chart of one series without axes: for the overview's table cells. The vertical
/// range is the data's own (from zero when that hides nothing), so growth shows at any
/// scale; a limit inside that range is drawn dashed.
pub fn sparkline(
    points: &[(i64, f64)],
    from_ms: i64,
    to_ms: i64,
    width: u32,
    height: u32,
    limit: Option<f64>,
    title: &str,
) -> String {
    let (w, h) = (f64::from(width.max(10)), f64::from(height.max(6)));
    let segments = downsample::min_max(points, from_ms, to_ms, width.max(1) as usize);
    let mut s = format!(
        "<svg class=\"spark\" viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" role=\"img\" aria-label=\"{t}\"><title>{t}</title>",
        t = html(title)
    );
    let Some((mut lo, mut hi)) = downsample::extent(&segments, from_ms, to_ms) else {
        s.push_str("</svg>");
        return s;
    };
    if lo >= 0.0 && lo <= 0.5 * hi {
        lo = 0.0;
    }
    if hi - lo < 1e-9 {
        lo -= 1.0;
        hi += 1.0;
    }
    let span = (to_ms - from_ms).max(1) as f64;
    let x = |t: i64| (t - from_ms) as f64 / span * (w - 2.0) + 1.0;
    let y = |v: f64| h - 2.0 - (v - lo) / (hi - lo) * (h - 4.0);
    if let Some(limit) = limit.filter(|l| *l >= lo && *l <= hi) {
        let _ = write!(
            s,
            "<line x1=\"0\" x2=\"{w}\" y1=\"{ly:.1}\" y2=\"{ly:.1}\" stroke=\"{LIMIT_COLOR}\" stroke-dasharray=\"3 2\"/>",
            ly = y(limit)
        );
    }
    let mut d = String::new();
    for segment in &segments {
        for (j, &(t, v)) in segment.iter().enumerate() {
            let _ = write!(
                d,
                "{}{:.1} {:.1}",
                if j == 0 { "M" } else { "L" },
                x(t).clamp(0.0, w),
                y(v)
            );
        }
    }
    let _ = write!(
        s,
        "<path d=\"{d}\" fill=\"none\" stroke=\"{}\" stroke-width=\"1.5\"/></svg>",
        PALETTE[0]
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tests::finding;

    fn ramp(n: i64, step_ms: i64, slope: f64) -> Vec<(i64, f64)> {
        (0..n)
            .map(|i| (1_700_000_000_000 + i * step_ms, 10.0 + slope * i as f64))
            .collect()
    }

    fn count_points(path_d: &str) -> usize {
        path_d.matches(['M', 'L']).count()
    }

    fn paths(svg: &str) -> Vec<(String, String)> {
        svg.split("<path class=\"series\" data-label=\"")
            .skip(1)
            .map(|rest| {
                let label = rest.split('"').next().unwrap().to_string();
                let d = rest
                    .split("d=\"")
                    .nth(1)
                    .unwrap()
                    .split('"')
                    .next()
                    .unwrap();
                (label, d.to_string())
            })
            .collect()
    }

    fn chart<'a>(lines: Vec<Line<'a>>, from: i64, to: i64) -> Chart<'a> {
        Chart {
            id: "t".into(),
            title: "threads by name".into(),
            unit: Unit::Count,
            from_ms: from,
            to_ms: to,
            width: 900,
            height: 220,
            lines,
            limit: None,
            markers: vec![],
            trends: vec![],
            note: None,
        }
    }

    #[test]
    fn a_week_of_samples_draws_about_one_point_per_pixel() {
        let points = ramp(60_480, 10_000, 0.01);
        let (from, to) = (points[0].0, points.last().unwrap().0);
        let svg = render(&chart(
            vec![Line {
                label: "threads{Leaky-#}".into(),
                points: &points,
            }],
            from,
            to,
        ));
        let paths = paths(&svg);
        assert_eq!(paths.len(), 1);
        assert_eq!(paths[0].0, "threads{Leaky-#}");
        let n = count_points(&paths[0].1);
        assert!(n <= 2 * (900 - 64 - 14 + 2), "{n} points drawn");
        assert!(n > 100, "{n}");
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(!svg.contains("http"), "no external reference");
    }

    #[test]
    fn untrusted_labels_are_escaped() {
        let points = ramp(10, 1_000, 1.0);
        let evil = "<script>alert(1)</script>\"onload=\"x";
        let mut c = chart(
            vec![Line {
                label: evil.into(),
                points: &points,
            }],
            points[0].0,
            points[9].0,
        );
        c.title = "<b>".into();
        c.markers.push(Marker {
            ts_ms: points[5].0,
            title: "stderr: <img src=x onerror=alert(1)>".into(),
        });
        let svg = render(&c);
        assert!(!svg.contains("<script"), "{svg}");
        assert!(!svg.contains("<img"), "{svg}");
        assert!(!svg.contains("<b>"), "{svg}");
        assert!(!svg.contains("\"onload"), "{svg}");
        assert!(svg.contains("&lt;script&gt;"));
    }

    #[test]
    fn limit_restarts_and_forecast_are_drawn() {
        let points = ramp(300, 1_000, 1.0); // 10 -> 309 over 5 minutes
        let (from, to) = (points[0].0, points[299].0);
        let mut f = finding("grower", "threads", "Leaky-#", Some(141.0));
        f.current = 309.0;
        f.rate_per_hour = 3_600.0;
        f.limit = Some(450.0);
        f.first_seen = from as f64 / 1000.0;
        f.evidence_window = (from as f64 / 1000.0, to as f64 / 1000.0);
        let mut c = chart(
            vec![Line {
                label: "threads{Leaky-#}".into(),
                points: &points,
            }],
            from,
            to,
        );
        c.limit = Some(Limit {
            value: 450.0,
            label: "limit per process".into(),
        });
        c.markers.push(Marker {
            ts_ms: from + 60_000,
            title: "pid 1 -> 2: exit 1".into(),
        });
        c.trends.push(Trend::from_finding(&f, Some(0)).unwrap());
        let svg = render(&c);
        assert!(svg.contains("class=\"limit\""), "limit drawn: {svg}");
        assert!(svg.contains("stroke-dasharray=\"6 4\""));
        assert!(svg.contains("<g class=\"restart\"><title>restart "));
        assert!(svg.contains("pid 1 -&gt; 2: exit 1"));
        assert!(svg.contains("class=\"trend\""));
        assert!(svg.contains("trend 3,600/h, limit in ~2m"), "{svg}");
        assert!(svg.contains("class=\"forecast\""));
        assert!(svg.contains("class=\"future\""), "room for the forecast");
        // 141 s to the limit against a 5-minute chart: the forecast room is capped at 40%
        // of the span, so the limit is reached outside the view and not marked.
        assert!(!svg.contains("class=\"eta\""));
        // The x domain was extended by 40% of the span.
        assert!(svg.contains(&format!("data-t1=\"{}\"", to + (to - from) * 2 / 5)));

        // Memory trends speak bytes.
        let mut m = finding("grower", "memory", "rss", None);
        m.rate_per_hour = 3.0 * 1024.0 * 1024.0;
        assert_eq!(
            Trend::from_finding(&m, None).unwrap().label,
            "trend 3.0 MiB/h"
        );
        m.kind = FindingKind::Saturation;
        assert!(
            Trend::from_finding(&m, None).is_none(),
            "only leaks have a trend"
        );

        // A near ETA is marked where the forecast meets the limit.
        f.eta_seconds = Some(30.0);
        c.trends = vec![Trend::from_finding(&f, Some(0)).unwrap()];
        let svg = render(&c);
        assert!(svg.contains("class=\"eta\""), "{svg}");
    }

    #[test]
    fn a_far_limit_is_named_but_does_not_flatten_the_lines() {
        let points = ramp(100, 1_000, 1.0);
        let mut c = chart(
            vec![Line {
                label: "threads".into(),
                points: &points,
            }],
            points[0].0,
            points[99].0,
        );
        c.limit = Some(Limit {
            value: 4_194_304.0,
            label: "pid_max".into(),
        });
        let svg = render(&c);
        assert!(!svg.contains("class=\"limit\""));
        assert!(svg.contains("pid_max 4,194,304 (above the chart)"));
        // The top tick stays near the data (109), not at 4M.
        assert!(!svg.contains(">4M<") && !svg.contains(">4.19M<"), "{svg}");
    }

    /// FNV-1a, 64 bits: a stable digest for the golden outputs below.
    fn fnv1a(text: &str) -> u64 {
        text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
        })
    }

    /// Charts that between them take every branch of [`render`]: many lines (the legend
    /// wraps), gaps and a lone sample, an empty line, a limit on the scale, a far limit, no
    /// data at all, restarts inside and outside the view, trends with and without an ETA,
    /// an ETA inside the view, long labels and a note.
    fn golden_charts() -> Vec<String> {
        let from = 1_700_000_000_000;
        let ramps: Vec<Vec<(i64, f64)>> = (0..11)
            .map(|i| {
                let mut points = ramp(400, 1_000, 0.1 * f64::from(i));
                if i == 2 {
                    // Two gaps, one leaving a lone sample between them.
                    points.drain(100..200);
                    points.drain(101..150);
                }
                points
            })
            .collect();
        let to = from + 399_000;
        let lines = |n: usize| -> Vec<Line> {
            ramps[..n]
                .iter()
                .enumerate()
                .map(|(i, points)| Line {
                    label: format!("threads{{pool-{i}-with-a-rather-long-name-that-gets-cut-#}}"),
                    points,
                })
                .collect()
        };
        let mut out = Vec::new();

        let mut many = chart(lines(11), from, to);
        many.lines.push(Line {
            label: "empty".into(),
            points: &[],
        });
        many.limit = Some(Limit {
            value: 60.0,
            label: "limit per process, pids.max of the unit's cgroup".into(),
        });
        many.markers = vec![
            Marker {
                ts_ms: from + 120_000,
                title: "pid 1 -> 2: exit 1".into(),
            },
            Marker {
                ts_ms: from - 1,
                title: "before the view".into(),
            },
        ];
        let mut f = finding("grower", "threads", "pool-3-#", Some(30.0));
        f.current = 49.9;
        f.rate_per_hour = 1_080.0;
        f.limit = Some(60.0);
        f.first_seen = (from + 50_000) as f64 / 1000.0;
        f.evidence_window = (from as f64 / 1000.0, to as f64 / 1000.0);
        many.trends.push(Trend::from_finding(&f, Some(3)).unwrap());
        let mut far = f.clone();
        far.eta_seconds = None;
        many.trends.push(Trend::from_finding(&far, None).unwrap());
        many.note = Some("+4 smaller groups not shown <here>".into());
        out.push(render(&many));

        let mut memory = chart(lines(1), from, to);
        memory.unit = Unit::Bytes;
        memory.width = 420;
        memory.height = 150;
        memory.limit = Some(Limit {
            value: 4_194_304.0,
            label: "memory.max".into(),
        });
        let mut m = finding("grower", "memory", "rss", Some(3_600.0));
        m.current = 49.9;
        m.rate_per_hour = 10.0;
        m.evidence_window = (from as f64 / 1000.0, (from + 200_000) as f64 / 1000.0);
        m.first_seen = from as f64 / 1000.0;
        memory
            .trends
            .push(Trend::from_finding(&m, Some(0)).unwrap());
        out.push(render(&memory));

        let mut nothing = chart(vec![], from, from);
        nothing.width = 10;
        nothing.height = 10;
        nothing.limit = Some(Limit {
            value: 1_024.0,
            label: "RLIMIT_NOFILE".into(),
        });
        out.push(render(&nothing));
        out
    }

    /// Pins the rendered bytes: a refactoring of [`render`] must not change any of them.
    #[test]
    fn rendered_charts_match_the_golden_digests() {
        let digests: Vec<(usize, u64)> = golden_charts()
            .iter()
            .map(|svg| (svg.len(), fnv1a(svg)))
            .collect();
        assert_eq!(digests, GOLDEN, "{:#?}", golden_charts());
    }

    const GOLDEN: [(usize, u64); 3] = [
        (53_637, 260_791_468_336_476_918),
        (2_290, 4_892_228_825_033_862_397),
        (1_380, 10_292_282_894_710_566_643),
    ];

    #[test]
    fn sparklines_are_small_and_bounded() {
        let points = ramp(60_480, 10_000, 0.5);
        let spark = sparkline(
            &points,
            points[0].0,
            points.last().unwrap().0,
            120,
            28,
            None,
            "threads",
        );
        let d = spark
            .split("d=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        assert!(count_points(d) <= 2 * 122, "{}", count_points(d));
        assert!(spark.len() < 8_000, "{}", spark.len());
        let empty = sparkline(&[], 0, 10, 120, 28, None, "x");
        assert_eq!(empty.matches("<path").count(), 0);
    }
}
