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
mod test;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};

use crate::ctx::Ctx;
use crate::engine::cases;
use crate::error::usage;
use crate::http::cassette::{shell_line, Cassette, Mode};
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
  ferry getupdates --record --save-case all-customers   # then, offline: ferry test
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
    /// Save every HTTP exchange the command makes to its cassette, secrets redacted (e.g. ferry get --id c_1 --record)
    #[arg(long, global = true, conflicts_with = "replay")]
    record: bool,
    /// Answer HTTP requests from the cassette and send nothing (e.g. ferry get --id c_1 --replay)
    #[arg(long, global = true)]
    replay: bool,
    /// The cassette file of --record / --replay [default: DIR/cassettes/COMMAND.json]
    #[arg(long, value_name = "FILE", global = true)]
    cassette: Option<PathBuf>,
    /// With --record: also save the run as test case DIR/tests/NAME.json for `ferry test` (e.g. ferry get --id c_1 --record --save-case get-one)
    #[arg(long, value_name = "NAME", global = true, requires = "record")]
    save_case: Option<String>,
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
    Test(test::Args),
}

impl Command {
    /// The subcommand's name, as typed.
    fn name(&self) -> &'static str {
        match self {
            Command::Init(_) => "init",
            Command::Connectors(_) => "connectors",
            Command::Check(_) => "check",
            Command::Get(_) => "get",
            Command::Insert(_) => "insert",
            Command::Patch(_) => "patch",
            Command::Delete(_) => "delete",
            Command::GetUpdates(_) => "getupdates",
            Command::Sandbox(_) => "sandbox",
            Command::Import(_) => "import",
            Command::Export(_) => "export",
            Command::Test(_) => "test",
        }
    }
}

/// Parse `args` and run the command.
pub async fn run(args: Vec<OsString>, mut ctx: Ctx) -> Result<ExitCode> {
    let argv: Vec<String> = args
        .iter()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
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

    let name = cli.command.name();
    if let Some(case) = &g.save_case {
        cases::check_name(case)?;
        if !cases::ACTIONS.contains(&name) {
            return Err(
                usage(format!("`ferry {name}` cannot be saved as a test case"))
                    .hint(format!(
                        "a test case holds one action: {}",
                        cases::ACTIONS.join(", ")
                    ))
                    .into(),
            );
        }
    }
    if g.record || g.replay {
        let path = match &g.cassette {
            Some(p) => crate::config::resolve(&ctx.cwd, p),
            None => ctx.folder.join("cassettes").join(format!("{name}.json")),
        };
        let mut again: Vec<String> = argv.iter().filter(|a| *a != "--replay").cloned().collect();
        if !again.iter().any(|a| a == "--record") {
            again.push("--record".into());
        }
        let rerecord = ctx.out.redact(&format!("ferry {}", shell_line(&again)));
        let cassette = if g.record {
            Cassette::record(path, rerecord)
        } else {
            Cassette::replay_file(path, rerecord)?
        };
        ctx.cassette = Some(Arc::new(cassette));
    }

    let result = dispatch(cli.command, &ctx).await;
    finish_recording(&ctx, &argv, name, g.save_case.as_deref(), result)
}

async fn dispatch(command: Command, ctx: &Ctx) -> Result<ExitCode> {
    match command {
        Command::Init(args) => init::exec(args, ctx).await,
        Command::Connectors(args) => connectors::exec(args, ctx).await,
        Command::Check(args) => check::exec(args, ctx).await,
        Command::Get(args) => get::exec(args, ctx).await,
        Command::Insert(args) => insert::exec(args, ctx).await,
        Command::Patch(args) => patch::exec(args, ctx).await,
        Command::Delete(args) => delete::exec(args, ctx).await,
        Command::GetUpdates(args) => getupdates::exec(args, ctx).await,
        Command::Sandbox(args) => sandbox::exec(args, ctx).await,
        Command::Import(args) => import::exec(args, ctx).await,
        Command::Export(args) => export::exec(args, ctx).await,
        Command::Test(args) => test::exec(args, ctx).await,
    }
}

/// After a `--record` run, failed or not: write the cassette, and with
/// `--save-case` (and success) the test case.
fn finish_recording(
    ctx: &Ctx,
    argv: &[String],
    name: &str,
    save_case: Option<&str>,
    result: Result<ExitCode>,
) -> Result<ExitCode> {
    let Some(cassette) = ctx.cassette.clone().filter(|c| c.mode() == Mode::Record) else {
        return result;
    };
    let command = ctx.out.redact(&format!("ferry {}", shell_line(argv)));
    match cassette.save(&command) {
        Ok(Some(path)) => ctx.out.info(&format!(
            "recorded {} HTTP exchange(s) to {}",
            cassette.interactions().len(),
            path.display()
        )),
        Ok(None) => {}
        Err(err) if result.is_ok() => return Err(err),
        Err(err) => ctx.out.warn(&format!("{err:#}")),
    }
    let Some(case_name) = save_case else {
        return result;
    };
    let succeeded = matches!(&result, Ok(code) if *code == ExitCode::SUCCESS);
    let expected = ctx.out.last_result();
    match (succeeded, expected) {
        (true, Some(expected)) => {
            let section = ctx.inputs()?.section(name).cloned();
            let mut input = serde_json::Map::new();
            if let Some(section) = section {
                input.insert(name.to_string(), section);
            }
            let input = serde_json::from_str(
                &ctx.out
                    .redact(&serde_json::Value::Object(input).to_string()),
            )
            .context("could not redact the case's input")?;
            let case = cases::Case::new(
                name,
                inline_value_files(ctx, cases::replay_args(argv))?,
                input,
                expected,
                cassette.tape(command),
            );
            let path = cases::save(&ctx.folder, case_name, &case)?;
            ctx.out.info(&format!(
                "saved test case {case_name} to {}",
                path.display()
            ));
        }
        _ => ctx.out.warn(&format!(
            "test case {case_name} was not saved: the command did not succeed"
        )),
    }
    result
}

/// `--dry-run`: print what `op` would send, secrets redacted, and send nothing.
/// A single write to a csv or jsonl file holds the file's lock, as an
/// import or export does, so it never lands inside another run's append
/// (docs/files.md). Dropped when the command ends.
async fn hold_file(
    ctx: &Ctx,
    connector: &dyn crate::connector::Connector,
) -> Result<Option<crate::lock::Held>> {
    let Some(file) = connector.written_file() else {
        return Ok(None);
    };
    let never = crate::engine::interrupt::Interrupt::never();
    Ok(Some(
        crate::lock::hold(ctx, file, "the file", &never).await?,
    ))
}

fn dry_run(
    ctx: &Ctx,
    connector: &dyn crate::connector::Connector,
    op: &crate::connector::WriteOp,
) -> Result<ExitCode> {
    let action = format!("preview {}", op.action());
    let records = crate::connector::able(connector, connector.records(), &action)?;
    let requests = crate::connector::RecordStore::preview(records, op)?;
    ctx.out
        .result(&serde_json::json!({ "dryRun": true, "requests": requests }))?;
    Ok(ExitCode::SUCCESS)
}

/// `--value @FILE` read into the arguments, so a case does not depend on
/// a file outside its own (secrets redacted like the rest of the case).
fn inline_value_files(ctx: &Ctx, args: Vec<String>) -> Result<Vec<String>> {
    let mut out = Vec::with_capacity(args.len());
    let mut after_value = false;
    for a in args {
        let (prefix, file) = match a.strip_prefix("--value=@") {
            Some(f) => ("--value=", Some(f.to_string())),
            None if after_value => ("", a.strip_prefix('@').map(str::to_string)),
            None => ("", None),
        };
        after_value = a == "--value";
        match file {
            Some(f) => {
                let path = crate::config::resolve(&ctx.cwd, &f);
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("could not read {}", path.display()))?;
                out.push(format!("{prefix}{}", ctx.out.redact(text.trim_end())));
            }
            None => out.push(a),
        }
    }
    Ok(out)
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
