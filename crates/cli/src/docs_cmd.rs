//! `leakwatch completions SHELL` and `leakwatch man --dir DIR`: shell completions and man
//! pages generated from the same clap definitions that parse the arguments, so they cannot
//! drift from the commands (packages install them; see README, "Install").

use anyhow::{Context, Result};
use clap::{Args, CommandFactory};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Args)]
pub struct CompletionsArgs {
    /// The shell to write completions for (to stdout). Install, e.g.:
    /// `leakwatch completions bash > /etc/bash_completion.d/leakwatch`,
    /// `leakwatch completions zsh > /usr/share/zsh/vendor-completions/_leakwatch`,
    /// `leakwatch completions fish > ~/.config/fish/completions/leakwatch.fish`.
    pub shell: clap_complete::Shell,
}

#[derive(Args)]
pub struct ManArgs {
    /// Directory to write the pages to (created if missing): `leakwatch.1` and one
    /// `leakwatch-COMMAND.1` per command (`leakwatch-alert-test.1` for nested ones).
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
}

pub fn completions(args: CompletionsArgs) -> Result<ExitCode> {
    let mut command = crate::Cli::command();
    clap_complete::generate(
        args.shell,
        &mut command,
        "leakwatch",
        &mut std::io::stdout().lock(),
    );
    Ok(ExitCode::SUCCESS)
}

pub fn man(args: ManArgs) -> Result<ExitCode> {
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("cannot create {}", args.dir.display()))?;
    let mut command = crate::Cli::command();
    command.build();
    let written = write_pages(&command, "leakwatch", &args.dir)?;
    println!("{written} man pages written to {}", args.dir.display());
    Ok(ExitCode::SUCCESS)
}

/// Writes `name.1` for `command` and, recursively, `name-SUB.1` for each subcommand (but
/// not clap's generated `help`). Returns how many pages were written.
fn write_pages(command: &clap::Command, name: &str, dir: &Path) -> Result<usize> {
    let page = command.clone().name(name.to_string());
    let mut out = Vec::new();
    clap_mangen::Man::new(page)
        .render(&mut out)
        .with_context(|| format!("cannot render the man page of {name}"))?;
    let path = dir.join(format!("{name}.1"));
    std::fs::write(&path, out).with_context(|| format!("cannot write {}", path.display()))?;
    let mut written = 1;
    for sub in command.get_subcommands().filter(|s| s.get_name() != "help") {
        written += write_pages(sub, &format!("{name}-{}", sub.get_name()), dir)?;
    }
    Ok(written)
}
