//! `leakwatch top`: a live terminal view of every target, ranked by leak risk.
//!
//! Agent mode polls the agent's API; `--standalone` samples this host directly and groups
//! processes into targets exactly as the agent does. A thread produces updates; this
//! thread owns the model, handles keys and draws. See docs/top.md.

mod model;
mod source;
mod ui;
mod view;

use crate::agent_cmd::ClientArgs;
use anyhow::{bail, Context, Result};
use clap::Args as ClapArgs;
use leakwatch_exec::signals::{self, Signal};
use ratatui::crossterm::event::{self, Event, KeyEventKind};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::mpsc::{self, TryRecvError};
use std::time::{Duration, Instant};

#[derive(ClapArgs)]
pub struct Args {
    /// The agent's address (not used with --standalone).
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
    /// Sample this host directly instead of asking an agent. History (sparklines and
    /// findings) starts when top starts.
    #[arg(long)]
    standalone: bool,
    /// How often to sample (standalone) or poll the agent, e.g. 1s, 2s, 500ms.
    #[arg(long, default_value = "2s", value_name = "DURATION")]
    interval: String,
    /// With --standalone: the agent's TOML config, whose [[target]] rules name targets
    /// the way that agent does.
    #[arg(long, value_name = "FILE", requires = "standalone")]
    config: Option<PathBuf>,
}

/// Milliseconds since the epoch at which the UI loop last went round.
static HEARTBEAT_MS: AtomicI64 = AtomicI64::new(0);

/// The loop stands still this long only when the terminal is gone: crossterm (0.29)
/// spins inside its read when the tty returns EOF or EIO, so the loop never comes back
/// to see a signal or a key. Then this thread ends the process rather than let it burn
/// a CPU forever on the host it is meant to watch.
const STUCK_AFTER: Duration = Duration::from_secs(20);

fn watchdog() {
    let _ = std::thread::Builder::new()
        .name("lw-top-watchdog".into())
        .spawn(|| {
            let mut terminate_seen: Option<Instant> = None;
            let mut stale_beat: Option<i64> = None;
            loop {
                std::thread::sleep(Duration::from_millis(250));
                if signals::received() {
                    let since = *terminate_seen.get_or_insert_with(Instant::now);
                    if since.elapsed() > Duration::from_secs(2) {
                        ratatui::restore();
                        std::process::exit(0);
                    }
                }
                // Seen stale twice in a row, so a process stopped and continued (SIGSTOP)
                // is not taken for stuck before its loop has had a chance to run.
                let beat = HEARTBEAT_MS.load(Ordering::Relaxed);
                let stale = crate::format::now_ms() - beat > STUCK_AFTER.as_millis() as i64;
                let stuck = stale && stale_beat == Some(beat);
                stale_beat = stale.then_some(beat);
                if stuck {
                    ratatui::restore();
                    eprintln!("leakwatch top: the terminal stopped answering; exiting");
                    std::process::exit(1);
                }
            }
        });
}

/// Leaves raw mode and the alternate screen however `run` ends (ratatui's panic hook,
/// installed by `try_init`, covers panics).
struct TerminalGuard;

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        ratatui::restore();
    }
}

pub fn run(args: Args) -> Result<ExitCode> {
    let interval =
        crate::format::duration_arg("--interval", &args.interval, crate::format::MAX_INTERVAL)?;
    if interval < Duration::from_millis(100) {
        bail!("--interval {} is too short: at least 100ms", args.interval);
    }
    if !std::io::stdout().is_terminal() {
        eprintln!(
            "leakwatch top: needs a terminal, and standard output is not one.\n\
             For scripts, use `leakwatch targets --json` or `leakwatch leaks --json` (from the \
             agent) or `leakwatch snapshot --json` (this host, now)."
        );
        return Ok(ExitCode::from(2));
    }
    let (sender, receiver) = mpsc::channel();
    let mode = if args.standalone {
        let targeting = match &args.config {
            Some(path) => {
                let config = leakwatch_agent::config::Config::load(path)?;
                config.validate(path)?;
                leakwatch_agent::standalone::Targeting::new(&config.targets)
            }
            None => leakwatch_agent::standalone::Targeting::new(&[]),
        };
        source::standalone(sender, interval, targeting)?;
        model::Mode::Standalone {
            interval_seconds: interval.as_secs_f64(),
        }
    } else {
        let client = ClientArgs {
            url: args.url.clone(),
            token: args.token.clone(),
            json: false,
        };
        source::agent(sender, interval, client)?;
        model::Mode::Agent { url: args.url }
    };
    let mut app = ui::App::new(
        model::Model::new(mode),
        humantime::format_duration(interval).to_string(),
    );

    // SIGTERM and SIGINT set the flag, so the terminal is restored before exiting. SIGHUP
    // keeps its default action: the terminal is gone, there is nothing to restore.
    signals::install(&[Signal::Terminate, Signal::Interrupt]);
    let _guard = TerminalGuard;
    let mut terminal = ratatui::try_init().context("cannot set up the terminal")?;
    let mut dirty = true;
    let mut last_draw = Instant::now();
    HEARTBEAT_MS.store(crate::format::now_ms(), Ordering::Relaxed);
    watchdog();
    while !app.quit && !signals::received() {
        HEARTBEAT_MS.store(crate::format::now_ms(), Ordering::Relaxed);
        loop {
            match receiver.try_recv() {
                Ok(update) => {
                    app.model.apply(update);
                    dirty = true;
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    if app.model.error.is_none() {
                        app.model.apply(model::Update::Error {
                            time_ms: crate::format::now_ms(),
                            message: "the sampling thread stopped; restart leakwatch top".into(),
                        });
                        dirty = true;
                    }
                    break;
                }
            }
        }
        // Redraw on news, and every second for the clock and "… ago".
        if dirty || last_draw.elapsed() >= Duration::from_secs(1) {
            let now = crate::format::now_ms();
            terminal
                .draw(|frame| ui::draw(frame, &mut app, now))
                .context("cannot draw")?;
            dirty = false;
            last_draw = Instant::now();
        }
        if event::poll(Duration::from_millis(100)).context("cannot read the terminal")? {
            match event::read().context("cannot read the terminal")? {
                Event::Key(key) if key.kind == KeyEventKind::Press => {
                    app.handle_key(key);
                    dirty = true;
                }
                Event::Resize(..) => dirty = true,
                _ => {}
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
