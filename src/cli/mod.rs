//! The command line: the only code that sees clap. Each subcommand lives in
//! its own file with its `Args` and an `exec` that turns the flags into a
//! typed request before any I/O.

mod check;
mod connectors;
mod delete;
mod export;
mod get;
mod getupdates;
mod import;
mod init;
mod insert;
mod patch;
mod sandbox;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};

use crate::ctx::Ctx;
use crate::output::Verbosity;

const ABOUT: &str = "Build, test and run data-sync connectors";

const LONG_ABOUT: &str = "Build, test and run data-sync connectors.

ferry runs one action of a connector against its system and prints JSON. A \
connector folder holds account.json (which connector, with which options) \
and in.json (the inputs of each action).";

const EXAMPLES: &str = "Examples:
  ferry -C examples/sqlite get --id cus_001
  ferry -C examples/sqlite insert --value '{\"email\": \"ada@example.com\"}'
  ferry -C examples/sqlite getupdates | jq '.entries | length'
  ferry connectors sqlite";

#[derive(Debug, Parser)]
#[command(name = "ferry", version, about = ABOUT, long_about = LONG_ABOUT, after_help = EXAMPLES)]
pub struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
struct GlobalArgs {
    /// The connector folder holding account.json, in.json and .env [default: the current directory]
    #[arg(short = 'C', long = "dir", value_name = "DIR", global = true)]
    dir: Option<PathBuf>,
    /// Read the account from FILE instead of DIR/account.json
    #[arg(long, value_name = "FILE", global = true)]
    account: Option<PathBuf>,
    /// Read action inputs from FILE instead of DIR/in.json (for export: the profiles file)
    #[arg(long, value_name = "FILE", global = true)]
    input: Option<PathBuf>,
    /// Write the JSON result to FILE (atomically) instead of stdout
    #[arg(short = 'o', long = "output", value_name = "FILE", global = true)]
    output: Option<PathBuf>,
    /// Log more on stderr: -v one line per step or request, -vv headers and bodies
    #[arg(short = 'v', long = "verbose", action = clap::ArgAction::Count, global = true, conflicts_with = "quiet")]
    verbose: u8,
    /// Print only the result and errors
    #[arg(short = 'q', long = "quiet", global = true)]
    quiet: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    Init(init::Args),
    Connectors(connectors::Args),
    Check(check::Args),
    Get(get::Args),
    Insert(insert::Args),
    Patch(patch::Args),
    Delete(delete::Args),
    #[command(name = "getupdates")]
    GetUpdates(getupdates::Args),
    Sandbox(sandbox::Args),
    Import(import::Args),
    Export(export::Args),
}

/// Parse `args` and run the command.
pub async fn run(args: Vec<OsString>, mut ctx: Ctx) -> Result<ExitCode> {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(err) => return Ok(clap_exit(&ctx, &err)),
    };
    let g = cli.global;
    ctx.out.set_verbosity(match (g.quiet, g.verbose) {
        (true, _) => Verbosity::Quiet,
        (false, 0) => Verbosity::Normal,
        (false, 1) => Verbosity::Verbose,
        (false, _) => Verbosity::Debug,
    });
    if let Some(dir) = &g.dir {
        ctx.set_folder(dir)?;
    }
    ctx.account_file = g.account;
    ctx.input_file = g.input;
    ctx.out
        .set_result_file(g.output.map(|o| crate::config::resolve(&ctx.cwd, o)));

    match cli.command {
        Command::Init(args) => init::exec(args, &ctx).await,
        Command::Connectors(args) => connectors::exec(args, &ctx).await,
        Command::Check(args) => check::exec(args, &ctx).await,
        Command::Get(args) => get::exec(args, &ctx).await,
        Command::Insert(args) => insert::exec(args, &ctx).await,
        Command::Patch(args) => patch::exec(args, &ctx).await,
        Command::Delete(args) => delete::exec(args, &ctx).await,
        Command::GetUpdates(args) => getupdates::exec(args, &ctx).await,
        Command::Sandbox(args) => sandbox::exec(args, &ctx).await,
        Command::Import(args) => import::exec(args, &ctx).await,
        Command::Export(args) => export::exec(args, &ctx).await,
    }
}

/// `--dry-run`: print what `op` would send, secrets redacted, and send nothing.
fn dry_run(
    ctx: &Ctx,
    connector: &dyn crate::connector::Connector,
    op: &crate::connector::WriteOp,
) -> Result<ExitCode> {
    let requests = connector.preview(op)?;
    ctx.out
        .result(&serde_json::json!({ "dryRun": true, "requests": requests }))?;
    Ok(ExitCode::SUCCESS)
}

/// Help and version go to stdout with status 0; usage errors to stderr with 2.
fn clap_exit(ctx: &Ctx, err: &clap::Error) -> ExitCode {
    let text = err.render().to_string();
    if err.use_stderr() {
        ctx.out.stderr_text(&text);
        ExitCode::from(2)
    } else {
        let _ = ctx.out.stdout_text(&text);
        ExitCode::SUCCESS
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_flags_parse_after_the_subcommand() {
        let cli = Cli::try_parse_from(["ferry", "get", "--id", "x", "-C", "dir", "-vv"]).unwrap();
        assert_eq!(cli.global.dir, Some(PathBuf::from("dir")));
        assert_eq!(cli.global.verbose, 2);
    }
}
