//! The interactive part: key handling (a pure state machine over [`App`]) and drawing with
//! ratatui. Everything that decides *what* is shown lives in `view`.

use super::model::{Mode, Model};
use super::view::{self, Row, Sort};
use crate::format;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Clear, Paragraph, Row as TableRow, Table, TableState, Wrap};
use ratatui::Frame;

pub struct App {
    pub model: Model,
    pub sort: Sort,
    /// The applied filter.
    pub filter: String,
    /// The filter being typed after `/`, until Enter or Esc.
    pub editing: Option<String>,
    /// The selected target, by name, so the selection follows it when the order changes.
    pub selected: Option<String>,
    pub detail: bool,
    pub help: bool,
    pub quit: bool,
    /// Table rows that fit on screen, for PgUp/PgDn (set when drawing).
    pub page: usize,
    /// The refresh interval, shown in the header.
    pub interval_text: String,
}

impl App {
    pub fn new(model: Model, interval_text: String) -> App {
        App {
            model,
            sort: Sort::Risk,
            filter: String::new(),
            editing: None,
            selected: None,
            detail: false,
            help: false,
            quit: false,
            page: 10,
            interval_text,
        }
    }

    pub fn rows(&self) -> Vec<Row> {
        view::rows(self.model.targets.values(), self.sort, &self.filter)
    }

    /// Index of the selected row, falling back to the first when the selected target
    /// has gone or is filtered out.
    fn selected_index(&self, rows: &[Row]) -> Option<usize> {
        if rows.is_empty() {
            return None;
        }
        let found = self
            .selected
            .as_ref()
            .and_then(|name| rows.iter().position(|r| &r.name == name));
        Some(found.unwrap_or(0))
    }

    fn move_selection(&mut self, delta: isize) {
        let rows = self.rows();
        let Some(index) = self.selected_index(&rows) else {
            return;
        };
        let last = rows.len() as isize - 1;
        let next = (index as isize + delta).clamp(0, last) as usize;
        self.selected = Some(rows[next].name.clone());
    }

    pub fn handle_key(&mut self, key: KeyEvent) {
        if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
            self.quit = true;
            return;
        }
        if let Some(text) = &mut self.editing {
            match key.code {
                KeyCode::Char(c) => text.push(c),
                KeyCode::Backspace => {
                    text.pop();
                }
                KeyCode::Enter => {
                    self.filter = text.trim().to_string();
                    self.editing = None;
                    self.selected = None;
                }
                KeyCode::Esc => {
                    self.filter.clear();
                    self.editing = None;
                }
                _ => {}
            }
            return;
        }
        if self.help {
            match key.code {
                KeyCode::Char('q') => self.quit = true,
                KeyCode::Esc | KeyCode::Char('?') | KeyCode::Enter => self.help = false,
                _ => {}
            }
            return;
        }
        let page = self.page.max(1) as isize;
        match key.code {
            KeyCode::Char('q') => self.quit = true,
            KeyCode::Esc if self.detail => self.detail = false,
            // An applied filter is cleared before Esc quits: Esc backs out one step at a time.
            KeyCode::Esc if !self.filter.is_empty() => {
                self.filter.clear();
                self.selected = None;
            }
            KeyCode::Esc => self.quit = true,
            KeyCode::Char('s') => self.sort = self.sort.next(),
            KeyCode::Char('/') => self.editing = Some(self.filter.clone()),
            KeyCode::Char('?') => self.help = true,
            KeyCode::Enter => self.detail = !self.detail,
            KeyCode::Up | KeyCode::Char('k') => self.move_selection(-1),
            KeyCode::Down | KeyCode::Char('j') => self.move_selection(1),
            KeyCode::PageUp => self.move_selection(-page),
            KeyCode::PageDown => self.move_selection(page),
            KeyCode::Home => self.move_selection(isize::MIN / 2),
            KeyCode::End => self.move_selection(isize::MAX / 2),
            _ => {}
        }
    }
}

/// `17:58:14` in local time.
fn clock(ms: i64) -> String {
    let seconds = (ms / 1000) as libc::time_t;
    // SAFETY: localtime_r writes only into the `tm` we pass; a zeroed tm is a valid value.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let ok = unsafe { !libc::localtime_r(&seconds, &mut tm).is_null() };
    if !ok {
        return "--:--:--".to_string();
    }
    format!("{:02}:{:02}:{:02}", tm.tm_hour, tm.tm_min, tm.tm_sec)
}

fn ago(now_ms: i64, then_ms: i64) -> String {
    format::duration(((now_ms - then_ms).max(0) / 1000) as u64)
}

pub fn draw(frame: &mut Frame, app: &mut App, now_ms: i64) {
    let rows = app.rows();
    let selected = app.selected_index(&rows);
    if let Some(index) = selected {
        app.selected = Some(rows[index].name.clone());
    }
    let area = frame.area();
    let detail_height = if app.detail && selected.is_some() {
        (area.height * 45 / 100).max(8)
    } else {
        0
    };
    let [header, status, table, detail, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(detail_height),
        Constraint::Length(1),
    ])
    .areas(area);

    let mode = match &app.model.mode {
        Mode::Standalone { .. } => {
            format!("standalone: sampling this host every {}", app.interval_text)
        }
        Mode::Agent { url } => format!("agent {url}, polled every {}", app.interval_text),
    };
    frame.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled("leakwatch top", Style::new().bold()),
            Span::raw(format!(
                " · {mode} · samples {} · {}",
                app.model.samples,
                clock(now_ms)
            )),
        ])),
        header,
    );

    let findings = app
        .model
        .targets
        .values()
        .filter(|t| !t.findings.is_empty())
        .count();
    let filter = if app.filter.is_empty() {
        String::new()
    } else {
        format!(" · filter \"{}\"", app.filter)
    };
    let summary = format!(
        "shown {} of {} targets · {} with findings · sort {}{filter}",
        rows.len(),
        app.model.targets.len(),
        findings,
        app.sort.as_str()
    );
    let status_line = match (&app.model.error, app.model.last_update_ms) {
        (Some((at, message)), last) => Line::from(vec![
            Span::styled(
                format!("error ({} ago): {message}", ago(now_ms, *at)),
                Style::new().fg(Color::Red).bold(),
            ),
            Span::raw(format!(
                " · retrying every {}{}",
                app.interval_text,
                last.map_or(" · no data yet".to_string(), |l| format!(
                    " · data from {} ago",
                    ago(now_ms, l)
                ))
            )),
        ]),
        (None, None) => Line::from("waiting for the first sample…"),
        (None, Some(_)) => Line::from(summary),
    };
    frame.render_widget(Paragraph::new(status_line), status);

    draw_table(frame, app, &rows, selected, table);
    if let (true, Some(index)) = (detail_height > 0, selected) {
        if let Some(target) = app.model.targets.get(&rows[index].name) {
            draw_detail(frame, target, detail);
        }
    }

    let footer_line = match &app.editing {
        Some(text) => Line::from(vec![
            Span::styled("filter: ", Style::new().bold()),
            Span::raw(format!("{text}_")),
            Span::styled("   Enter apply · Esc clear", Style::new().dim()),
        ]),
        None => Line::from(Span::styled(
            "q quit · s sort · / filter · ↑↓ PgUp PgDn move · Enter details · ? help",
            Style::new().dim(),
        )),
    };
    frame.render_widget(Paragraph::new(footer_line), footer);

    if app.help {
        draw_help(frame, area);
    }
}

fn draw_table(frame: &mut Frame, app: &mut App, rows: &[Row], selected: Option<usize>, area: Rect) {
    let header = TableRow::new([
        "TARGET",
        "THREADS",
        "FDS",
        "TCP",
        "RSS",
        "LIMIT",
        "TOP THREAD GROUP",
        "TOP CLOSE_WAIT PEER",
        "FINDING",
    ])
    .style(Style::new().bold().reversed());
    let cells = |row: &Row| {
        let finding = match &row.finding {
            Some(f) => {
                let more = if row.more_findings > 0 {
                    format!(" (+{} more)", row.more_findings)
                } else {
                    String::new()
                };
                let urgent = f.eta().is_some_and(|eta| eta < 3600.0);
                let eta = f
                    .eta()
                    .map_or(String::new(), |eta| format!("{} · ", view::eta_text(eta)));
                Cell::from(format!("{eta}{}{more}", f.summary)).style(if urgent {
                    Style::new().fg(Color::Red).bold()
                } else {
                    Style::new().fg(Color::Yellow)
                })
            }
            None => Cell::from(""),
        };
        let limit_style = match &row.worst {
            Some((fraction, _)) if *fraction >= 0.9 => Style::new().fg(Color::Red).bold(),
            Some((fraction, _)) if *fraction >= 0.75 => Style::new().fg(Color::Yellow),
            _ => Style::new(),
        };
        TableRow::new([
            Cell::from(row.name.clone()),
            Cell::from(format!(
                "{:>7} {}",
                view::count_cell(row.threads),
                row.threads_spark
            )),
            Cell::from(format!(
                "{:>7} {}",
                view::count_cell(row.fds),
                row.fds_spark
            )),
            Cell::from(format!(
                "{:>6} {}",
                view::count_cell(row.sockets),
                row.sockets_spark
            )),
            Cell::from(format!(
                "{:>9} {}",
                view::bytes_cell(row.rss),
                row.rss_spark
            )),
            Cell::from(view::worst_cell(&row.worst)).style(limit_style),
            Cell::from(
                row.top_group
                    .as_ref()
                    .map_or(String::new(), |(g, n)| format!("{g} {}", format::count(*n))),
            ),
            Cell::from(
                row.top_close_wait
                    .as_ref()
                    .map_or(String::new(), |(p, n)| format!("{} {p}", format::count(*n))),
            ),
            finding,
        ])
    };
    let widths = [
        Constraint::Length(24),
        Constraint::Length(16),
        Constraint::Length(16),
        Constraint::Length(15),
        Constraint::Length(18),
        Constraint::Length(12),
        Constraint::Length(20),
        Constraint::Length(24),
        Constraint::Fill(1),
    ];
    let table = Table::new(rows.iter().map(cells), widths)
        .header(header)
        .column_spacing(1)
        .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED));
    app.page = area.height.saturating_sub(2) as usize;
    let mut state = TableState::default().with_selected(selected);
    frame.render_stateful_widget(table, area, &mut state);
}

fn section_lines(sections: &[(String, Vec<String>)]) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    for (heading, body) in sections {
        lines.push(Line::styled(
            heading.clone(),
            Style::new().bold().underlined(),
        ));
        lines.extend(body.iter().map(|l| Line::from(l.clone())));
        lines.push(Line::from(""));
    }
    lines
}

fn draw_detail(frame: &mut Frame, target: &super::model::Target, area: Rect) {
    let block = Block::bordered().title(Line::from(vec![
        Span::styled(format!(" {} ", target.name), Style::new().bold()),
        Span::raw(format!("({}) · Enter/Esc close ", target.kind)),
    ]));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let mut sections = view::detail(target);
    let findings = sections.remove(0);
    let findings_height = (findings.1.len() as u16 + 1).min(inner.height / 3).max(2);
    let [top, rest] =
        Layout::vertical([Constraint::Length(findings_height), Constraint::Min(0)]).areas(inner);
    frame.render_widget(Paragraph::new(section_lines(&[findings])), top);
    let columns: [Rect; 3] = Layout::horizontal([
        Constraint::Ratio(1, 3),
        Constraint::Ratio(1, 3),
        Constraint::Ratio(1, 3),
    ])
    .spacing(2)
    .areas(rest);
    // threads | fds, sockets | memory, limits, processes
    let mut iter = sections.into_iter();
    let threads: Vec<_> = iter.by_ref().take(1).collect();
    let middle: Vec<_> = iter.by_ref().take(2).collect();
    let right: Vec<_> = iter.collect();
    for (column, content) in columns.into_iter().zip([threads, middle, right]) {
        frame.render_widget(Paragraph::new(section_lines(&content)), column);
    }
}

const HELP: &[(&str, &str)] = &[
    ("q, Esc", "quit (Esc first closes the detail pane,"),
    ("", "then clears the filter)"),
    (
        "s",
        "cycle the sort: risk, threads, fds, sockets, memory, name",
    ),
    (
        "/",
        "filter by substring of target, kind, process name or pid;",
    ),
    ("", "Enter applies it, Esc clears it"),
    ("↑ ↓ PgUp PgDn", "move the selection (also j k, Home, End)"),
    (
        "Enter",
        "open or close the detail pane of the selected target",
    ),
    ("?", "this help (any of Esc ? Enter closes it)"),
    ("", ""),
    (
        "risk order",
        "targets with findings first, soonest exhaustion first,",
    ),
    ("", "then by the fullest resource against its limit (LIMIT)"),
    ("sparklines", "the last 8 samples, from their min"),
    ("", "over at least 1/5 of their max"),
];

fn draw_help(frame: &mut Frame, area: Rect) {
    let width = 80.min(area.width);
    let height = (HELP.len() as u16 + 2).min(area.height);
    let popup = Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    };
    let lines: Vec<Line> = HELP
        .iter()
        .map(|(key, what)| {
            Line::from(vec![
                Span::styled(format!("{key:<15}"), Style::new().bold()),
                Span::raw(*what),
            ])
        })
        .collect();
    frame.render_widget(Clear, popup);
    frame.render_widget(
        // Narrower than 80 columns, lines wrap rather than being cut.
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(Block::bordered().title(" leakwatch top: keys ")),
        popup,
    );
}

#[cfg(test)]
mod tests {
    use super::super::model::{parse_label, TargetUpdate, Update};
    use super::*;
    use ratatui::backend::TestBackend;
    use ratatui::Terminal;

    fn press(app: &mut App, code: KeyCode) {
        app.handle_key(KeyEvent::new(code, KeyModifiers::NONE));
    }

    fn typed(app: &mut App, text: &str) {
        for c in text.chars() {
            press(app, KeyCode::Char(c));
        }
    }

    fn app() -> App {
        let mut model = Model::new(Mode::Agent {
            url: "http://127.0.0.1:9464".into(),
        });
        let target = |name: &str, threads: f64, group: &str| TargetUpdate {
            name: name.into(),
            kind: "exe".into(),
            processes: vec![],
            restarts: vec![],
            current: [
                ("threads".to_string(), threads),
                (format!("threads{{{group}}}"), threads),
            ]
            .iter()
            .map(|(l, v)| (parse_label(l), *v))
            .collect(),
        };
        model.apply(Update::Sample {
            time_ms: 1_000,
            samples: 1,
            new_sample: true,
            targets: vec![
                target("alpha", 10.0, "a-#"),
                target("beta", 30.0, "Leaky-#"),
                target("gamma", 20.0, "g"),
            ],
            findings: Some(vec![]),
        });
        App::new(model, "2s".into())
    }

    fn screen(app: &mut App) -> String {
        screen_of(app, 200, 30)
    }

    fn screen_of(app: &mut App, width: u16, height: u16) -> String {
        let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
        terminal.draw(|f| draw(f, app, 1_000)).unwrap();
        let buffer = terminal.backend().buffer().clone();
        (0..buffer.area.height)
            .map(|y| {
                (0..buffer.area.width)
                    .map(|x| buffer[(x, y)].symbol().to_string())
                    .collect::<String>()
                    .trim_end()
                    .to_string()
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn keys_filter_sort_select_and_quit() {
        let mut app = app();
        press(&mut app, KeyCode::Char('/'));
        typed(&mut app, "ET");
        assert_eq!(app.filter, "", "not applied before Enter");
        press(&mut app, KeyCode::Enter);
        assert_eq!(app.filter, "ET");
        let names: Vec<String> = app.rows().into_iter().map(|r| r.name).collect();
        assert_eq!(names, vec!["beta"]);
        press(&mut app, KeyCode::Char('/'));
        press(&mut app, KeyCode::Esc);
        assert_eq!(app.filter, "", "Esc while typing clears the filter");
        assert!(!app.quit);
        // Applied, then Esc: the filter is cleared, top does not quit.
        press(&mut app, KeyCode::Char('/'));
        typed(&mut app, "ET");
        press(&mut app, KeyCode::Enter);
        assert_eq!(app.filter, "ET");
        press(&mut app, KeyCode::Esc);
        assert_eq!(app.filter, "", "Esc clears an applied filter");
        assert!(!app.quit, "Esc with a filter applied does not quit");

        press(&mut app, KeyCode::Char('s'));
        assert_eq!(app.sort, Sort::Threads);
        press(&mut app, KeyCode::Down);
        press(&mut app, KeyCode::Down);
        press(&mut app, KeyCode::Down);
        assert_eq!(app.selected.as_deref(), Some("alpha"), "clamped at the end");
        press(&mut app, KeyCode::PageUp);
        assert_eq!(app.selected.as_deref(), Some("beta"));

        press(&mut app, KeyCode::Enter);
        assert!(app.detail);
        press(&mut app, KeyCode::Esc);
        assert!(!app.detail && !app.quit, "Esc closes the detail pane first");
        press(&mut app, KeyCode::Char('?'));
        assert!(app.help);
        press(&mut app, KeyCode::Esc);
        assert!(!app.help && !app.quit);
        press(&mut app, KeyCode::Char('q'));
        assert!(app.quit);
    }

    #[test]
    fn the_screen_shows_rows_detail_and_errors() {
        let mut app = app();
        press(&mut app, KeyCode::Char('s')); // threads: beta first
        let text = screen(&mut app);
        assert!(text.contains("agent http://127.0.0.1:9464"), "{text}");
        assert!(text.contains("shown 3 of 3 targets"), "{text}");
        let beta = text.find("beta").unwrap();
        let gamma = text.find("gamma").unwrap();
        assert!(beta < gamma, "{text}");
        assert!(text.contains("Leaky-# 30"), "{text}");

        press(&mut app, KeyCode::Enter);
        let text = screen(&mut app);
        assert!(text.contains("beta (exe)"), "{text}");
        assert!(text.contains("      30  Leaky-#"), "{text}");

        app.model.apply(Update::Error {
            time_ms: 1_000,
            message: "cannot reach the agent".into(),
        });
        let text = screen(&mut app);
        assert!(
            text.contains("error (0s ago): cannot reach the agent"),
            "{text}"
        );
        assert!(
            text.contains("beta"),
            "the last data stays on screen: {text}"
        );
    }

    #[test]
    fn the_help_fits_an_80_column_terminal_whole() {
        let mut app = app();
        press(&mut app, KeyCode::Char('?'));
        let text = screen_of(&mut app, 80, 30);
        for (key, what) in HELP {
            // The key column is 15 wide, the box's border 1 on each side.
            assert!(15 + what.chars().count() <= 78, "too wide: {what:?}");
            let line = format!("{key:<15}{what}");
            assert!(
                text.contains(line.trim_end()),
                "{line:?} not whole in:\n{text}"
            );
        }
    }
}
