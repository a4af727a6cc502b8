//! `leakwatch alerts` (delivery state from the running agent), `leakwatch alert test`
//! (a marked test alert through every configured channel) and `leakwatch config check`.

use crate::agent_cmd::{get_json, parse, print_json, ClientArgs, NO_QUERY};
use anyhow::{bail, Result};
use clap::{Args as ClapArgs, Subcommand};
use leakwatch_agent::config::Config;
use leakwatch_api::{self as api, paths};
use std::path::PathBuf;
use std::process::ExitCode;

pub fn alerts(args: ClientArgs) -> Result<ExitCode> {
    let body = get_json(&args, paths::ALERTS, NO_QUERY)?;
    if args.json {
        return print_json(&body);
    }
    let body: api::Alerts = parse(paths::ALERTS, &body)?;
    if !body.enabled {
        println!("alerting is off: no [alerts.channels] in the agent's config (docs/alerts.md)");
        return Ok(ExitCode::SUCCESS);
    }
    for channel in &body.channels {
        println!(
            "channel {:<16} sent {:>4}  failed {:>3}  retried {:>3}  expired {:>3}{}",
            channel.channel,
            channel.sent,
            channel.failed,
            channel.retried,
            channel.expired,
            if channel.consecutive_failures > 0 {
                format!("  FAILING ({} in a row)", channel.consecutive_failures)
            } else {
                String::new()
            }
        );
    }
    // The alerts themselves: state, severity, target and root series, and the summary.
    println!("{} alerts", body.alerts.len());
    for a in &body.alerts {
        let silenced = a
            .silenced
            .as_deref()
            .map(|why| format!("  (silenced: {why})"))
            .unwrap_or_default();
        println!(
            "  {:<9} {:<8} {} {}{silenced}",
            a.state.as_str(),
            a.severity.as_str(),
            a.key.target,
            a.key.label(),
        );
        println!("            {}", a.finding.summary);
    }
    // Deliveries name their alert by target and series (the fingerprint is in --json).
    let name_of = |fingerprint: &str| -> String {
        body.alerts
            .iter()
            .find(|a| a.fingerprint == fingerprint)
            .map(|a| format!("{} {}", a.key.target, a.key.label()))
            .unwrap_or_else(|| fingerprint.to_string())
    };
    println!("{} notifications", body.deliveries.len());
    for d in body.deliveries.iter().rev().take(20) {
        println!(
            "  {:<10} {:<12} {:<10} attempts {}  {}  {}",
            d.status.as_str(),
            d.channel,
            d.reason,
            d.attempts,
            name_of(&d.fingerprint),
            d.detail.as_deref().unwrap_or("")
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Subcommand)]
pub enum AlertCommand {
    /// Send a clearly marked test alert through every configured channel (or one) and
    /// print whether each accepted it. Exits 1 if any failed.
    Test {
        /// The agent's config file with the [alerts] section.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Only this channel.
        #[arg(long, value_name = "NAME")]
        channel: Option<String>,
    },
}

pub fn alert(command: AlertCommand) -> Result<ExitCode> {
    let AlertCommand::Test { config, channel } = command;
    let config = Config::load(&config)?;
    if config.alerts.channels.is_empty() {
        bail!("no channels in [alerts.channels]: nothing to test (docs/alerts.md)");
    }
    let mut failed = 0;
    let mut tried = 0;
    for (name, channel_config) in &config.alerts.channels {
        if channel.as_ref().is_some_and(|only| only != name) {
            continue;
        }
        tried += 1;
        let result = leakwatch_alert::Channel::from_config(name, channel_config)
            .map_err(|e| e.to_string())
            .and_then(|c| leakwatch_alert::send_test(&c).map_err(|e| e.message.clone()));
        match result {
            Ok(report) => println!(
                "ok      {name:<16} {} ({} ms)",
                report.detail, report.elapsed_ms
            ),
            Err(message) => {
                failed += 1;
                println!("FAILED  {name:<16} {message}");
            }
        }
    }
    if tried == 0 {
        bail!("no channel named {:?}", channel.unwrap_or_default());
    }
    Ok(if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

#[derive(ClapArgs)]
pub struct ConfigArgs {
    #[command(subcommand)]
    command: ConfigCommand,
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate a config file (keys, values, regexes, URLs, channels, routes) and exit.
    Check {
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
}

pub fn config(args: ConfigArgs) -> Result<ExitCode> {
    let ConfigCommand::Check { file } = args.command;
    let config = Config::load(&file)?;
    println!(
        "{}: ok ({} target rules, {} alert channels)",
        file.display(),
        config.targets.len(),
        config.alerts.channels.len()
    );
    Ok(ExitCode::SUCCESS)
}
