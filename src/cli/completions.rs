//! `ferry completions SHELL`: the shell's completion script for every
//! command and flag, generated from the same clap definition the parser
//! uses (clap_complete), so it cannot fall behind.

use std::process::ExitCode;

use anyhow::Result;
use clap::CommandFactory;

use super::{Cli, Done};
use crate::ctx::Ctx;

const EXAMPLES: &str = "Examples:
  ferry completions bash > ~/.local/share/bash-completion/completions/ferry
  ferry completions zsh > \"${fpath[1]}/_ferry\"
  ferry completions fish > ~/.config/fish/completions/ferry.fish
  ferry completions powershell >> $PROFILE";

/// Print a shell completion script
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// The shell to complete in
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

pub async fn exec(args: Args, ctx: &Ctx) -> Result<Done> {
    let mut cmd = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "ferry", &mut script);
    ctx.out.stdout_text(&String::from_utf8_lossy(&script))?;
    Ok(Done::exit(ExitCode::SUCCESS))
}
