//! `ferry man`: the manual page (roff), generated from the same clap
//! definition the parser uses (clap_mangen): the synopsis, every global
//! option and the list of commands.

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::CommandFactory;

use super::{Cli, Done};
use crate::ctx::Ctx;

const EXAMPLES: &str = "Examples:
  ferry man > ferry.1 && man ./ferry.1
  sudo sh -c 'ferry man > /usr/local/share/man/man1/ferry.1'";

/// Print the manual page (roff)
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {}

pub async fn exec(_args: Args, ctx: &Ctx) -> Result<Done> {
    let mut page = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut page)
        .context("could not render the manual page")?;
    ctx.out.stdout_text(&String::from_utf8_lossy(&page))?;
    Ok(Done::exit(ExitCode::SUCCESS))
}
