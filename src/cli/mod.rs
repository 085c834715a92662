//! The command line: the only code that sees clap. Each subcommand lives in
//! its own file with its `Args` and an `exec` that turns the flags into a
//! typed request before any I/O and returns what it produced ([`Done`]);
//! [`run`] prints it, records it with `--record` / `--save-case`
//! ([`crate::testcase`]) and answers the exit status.

mod check;
mod completions;
mod connectors;
mod delete;
mod export;
mod fields;
mod get;
mod getupdates;
mod import;
mod init;
mod insert;
mod man;
mod options;
mod patch;
mod prompt;
mod sandbox;
mod test;
mod write;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use serde_json::Value;

use crate::ctx::Ctx;
use crate::http::cassette::Mode;
use crate::output::Verbosity;
use crate::testcase::{self, Recording};

const ABOUT: &str = "Build, test and run data-sync connectors";

const LONG_ABOUT: &str = "Build, test and run data-sync connectors.

ferry runs one action of a connector against its system and prints JSON. A \
connector folder holds account.json (which connector, with which options) \
and in.json (the inputs of each action).";

const EXAMPLES: &str = "Examples:
  ferry -C examples/sqlite get --id cus_001
  ferry -C examples/sqlite insert --value '{\"email\": \"ada@example.com\"}'
  ferry -C examples/sqlite getupdates | jq '.entries | length'
  ferry getupdates --record --save-case all   # then, offline: ferry test
  ferry connectors sqlite";

#[derive(Debug, Parser)]
#[command(name = "ferry", version, about = ABOUT, long_about = LONG_ABOUT, after_help = EXAMPLES)]
pub struct Cli {
    #[command(flatten, next_help_heading = "Global options")]
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

/// `--record`, `--replay`, `--cassette`: only on the commands that talk
/// HTTP (the actions, import and export), each flattening this at the end
/// of its own flags; an action adds [`CaseArgs`].
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Record and replay")]
pub struct RecordArgs {
    /// Save every HTTP exchange the command makes to its cassette, secrets redacted
    #[arg(long, conflicts_with = "replay")]
    record: bool,
    /// Answer HTTP requests from the cassette and send nothing
    #[arg(long)]
    replay: bool,
    /// The cassette file of --record / --replay [default: DIR/cassettes/COMMAND.json]
    #[arg(long, value_name = "FILE")]
    cassette: Option<PathBuf>,
}

/// `--save-case`: only on the actions, which a test case can hold.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Record and replay")]
pub struct CaseArgs {
    /// With --record: also save the run as test case DIR/tests/NAME.json for `ferry test`
    #[arg(
        long,
        value_name = "NAME",
        requires = "record",
        conflicts_with = "replay"
    )]
    save_case: Option<String>,
}

/// Whether a command can be saved as a test case: an action runs once
/// against the connector and returns its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Action,
    Other,
}

/// The commands, written once: each is `Variant = module: Kind [http|case]`,
/// the module holding its `Args` and `exec`; the module's name is the
/// command's, `http` marks one that talks HTTP (its `Args` has a
/// `recording: RecordArgs`) and `case` one that can also be saved as a
/// test case (a `case: CaseArgs` too). This makes the clap enum, [`Command::name`],
/// [`Command::exec`], [`Command::record_args`] and [`actions`].
macro_rules! commands {
    (@record $args:ident case) => { Some((&$args.recording, $args.case.save_case.as_ref())) };
    (@record $args:ident http) => { Some((&$args.recording, None)) };
    (@record $args:ident) => {{ let _ = $args; None }};
    ($($variant:ident = $module:ident: $kind:ident $($http:ident)?,)*) => {
        #[derive(Debug, Subcommand)]
        enum Command {
            $(
                #[command(name = stringify!($module))]
                $variant($module::Args),
            )*
        }

        impl Command {
            /// The subcommand's name, as typed.
            fn name(&self) -> &'static str {
                match self {
                    $(Command::$variant(_) => stringify!($module),)*
                }
            }

            fn kind(&self) -> Kind {
                match self {
                    $(Command::$variant(_) => Kind::$kind,)*
                }
            }

            /// The record/replay flags of a command that talks HTTP.
            fn record_args(&self) -> Option<(&RecordArgs, Option<&String>)> {
                match self {
                    $(Command::$variant(args) => commands!(@record args $($http)?),)*
                }
            }

            async fn exec(self, ctx: &Ctx) -> Result<Done> {
                match self {
                    $(Command::$variant(args) => $module::exec(args, ctx).await,)*
                }
            }
        }

        /// The commands a test case can hold, in the order of `--help`.
        fn actions() -> Vec<&'static str> {
            [$((stringify!($module), Kind::$kind),)*]
                .into_iter()
                .filter(|(_, kind)| *kind == Kind::Action)
                .map(|(name, _)| name)
                .collect()
        }
    };
}

commands! {
    Init = init: Other,
    Connectors = connectors: Other,
    Check = check: Action case,
    Get = get: Action case,
    Insert = insert: Action case,
    Patch = patch: Action case,
    Delete = delete: Action case,
    GetUpdates = getupdates: Action case,
    Fields = fields: Other http,
    Options = options: Other http,
    Sandbox = sandbox: Other,
    Import = import: Other http,
    Export = export: Other http,
    Test = test: Other,
    Completions = completions: Other,
    Man = man: Other,
}

/// What a command produced: the JSON result [`run`] prints (and
/// `--save-case` keeps, and `ferry test` compares), and its exit status.
#[derive(Debug)]
pub struct Done {
    pub result: Option<Value>,
    pub code: ExitCode,
}

impl Done {
    /// A result, exit 0.
    pub fn value(value: Value) -> Done {
        Done {
            result: Some(value),
            code: ExitCode::SUCCESS,
        }
    }

    /// Nothing left to print: the command wrote its own output (the
    /// sandbox's banner, an import's or an export's summary).
    pub fn exit(code: ExitCode) -> Done {
        Done { result: None, code }
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

    let command = cli.command;
    let name = command.name();
    let (rec, save_case) = match command.record_args() {
        Some((rec, case)) => (rec.clone(), case.cloned()),
        None => (RecordArgs::default(), None),
    };
    if let Some(case) = &save_case {
        testcase::check_name(case)?;
    }
    let mode = match (rec.record, rec.replay) {
        (true, _) => Some(Mode::Record),
        (false, true) => Some(Mode::Replay),
        (false, false) => None,
    };
    let recording = match mode {
        Some(mode) => Some(Recording::start(
            &ctx,
            argv,
            name,
            mode,
            rec.cassette.as_deref(),
            save_case,
        )?),
        None => None,
    };
    if let Some(recording) = &recording {
        ctx.cassette = Some(recording.cassette());
    }

    let outcome = match command.exec(&ctx).await {
        Ok(done) => print(&ctx, done),
        Err(err) => Err(err),
    };
    if let Some(recording) = recording {
        // An action ends 0 with its result, or with an error.
        let ended = match &outcome {
            Ok(done) => Ok(done.result.as_ref()),
            Err(err) => Err(err),
        };
        let failed = ended.is_err();
        if let Some((case, path)) = recording.finish(&ctx, ended)? {
            check_case(&ctx, &case, &path, failed).await?;
        }
    }
    outcome
        .map(|done| done.code)
        .map_err(|err| keep_flags(&ctx, err))
}

/// A hint that names an action to run next (connectors word them as
/// `` `ferry patch --id X` ``) keeps this command's `-C DIR` and
/// `--account FILE`, so it can be pasted as it is.
fn keep_flags(ctx: &Ctx, mut err: anyhow::Error) -> anyhow::Error {
    let ferry = next_command(ctx, "");
    let ferry = ferry.trim_end();
    if ferry == "ferry" {
        return err;
    }
    if let Some(hint) = err
        .downcast_mut::<crate::error::Failure>()
        .and_then(|f| f.hint.as_mut())
    {
        for action in actions() {
            for end in [" ", "`"] {
                *hint = hint.replace(
                    &format!("`ferry {action}{end}"),
                    &format!("`{ferry} {action}{end}"),
                );
            }
        }
    }
    err
}

/// A case just saved is replayed once, offline: kept with a note when it
/// replays as the run went, kept with a warning naming the paths to ignore
/// when only its output differs, removed (an error after a run that
/// succeeded, a warning after one that failed) when it cannot replay.
async fn check_case(ctx: &Ctx, case: &str, path: &std::path::Path, failed: bool) -> Result<()> {
    let expecting = if failed {
        " (expecting this error)"
    } else {
        ""
    };
    let why = match Box::pin(test::check_saved(ctx, case, path)).await {
        Ok(test::Saved::Replays) => {
            ctx.out.info(&format!(
                "saved test case{expecting} {case} to {}; it replays offline as recorded",
                path.display()
            ));
            return Ok(());
        }
        Ok(test::Saved::Differs(why)) => {
            ctx.out.warn(&format!(
                "saved test case {case} to {}, but its replay's output differs: {why}\nlist the paths that change from run to run (generated ids, times) in the case's \"ignore\", e.g. \"ignore\": [\"/id\"]",
                path.display()
            ));
            return Ok(());
        }
        Ok(test::Saved::Broken(why)) => why,
        Err(err) => testcase::replay::chain(&err),
    };
    let _ = std::fs::remove_file(path);
    let message = format!(
        "test case {case} was not saved: replayed offline, it does not end as this run did: {why}"
    );
    if failed {
        ctx.out.warn(&format!(
            "{message}\n(a network failure or a timeout leaves nothing recorded to replay)"
        ));
        Ok(())
    } else {
        Err(crate::error::failed(message)
            .hint("record it again; if the output holds values that change from run to run, list their paths in the case's \"ignore\"")
            .into())
    }
}

/// Print the command's result, if it returned one; answers it back.
fn print(ctx: &Ctx, done: Done) -> Result<Done> {
    if let Some(result) = &done.result {
        ctx.out.result(result)?;
    }
    Ok(done)
}

/// Parse a test case's arguments (the subcommand and its flags) into the
/// command they name, which must be an action.
fn parse_action(args: &[String]) -> std::result::Result<Command, String> {
    let argv = std::iter::once("ferry").chain(args.iter().map(String::as_str));
    let command = Cli::try_parse_from(argv)
        .map_err(|err| err.render().to_string().trim_end().to_string())?
        .command;
    if command.kind() != Kind::Action {
        return Err(format!(
            "`ferry {}` is not an action a test case can run ({})",
            command.name(),
            actions().join(", ")
        ));
    }
    Ok(command)
}

/// Help and version go to stdout with status 0; usage errors to stderr with 2.
fn clap_exit(ctx: &Ctx, err: &clap::Error) -> ExitCode {
    let text = err.render().to_string();
    if err.use_stderr() {
        // `ferry` alone prints the help (an error all the same): as it is.
        let shaped = if text.starts_with("error:") {
            usage_error(&text)
        } else {
            text
        };
        ctx.out.stderr_text(&shaped);
        ExitCode::from(2)
    } else {
        let _ = ctx.out.stdout_text(&text);
        ExitCode::SUCCESS
    }
}

/// `ferry [-C DIR] [--account FILE] ARGS`: a command to type next, with
/// this one's folder and account, so a hint can be pasted as it is.
pub(crate) fn next_command(ctx: &Ctx, args: &str) -> String {
    let mut words = vec!["ferry".to_string()];
    if ctx.folder != ctx.cwd {
        let folder = ctx.folder.strip_prefix(&ctx.cwd).unwrap_or(&ctx.folder);
        words.push("-C".into());
        words.push(crate::shell::quote_owned(&folder.display().to_string()));
    }
    if let Some(account) = &ctx.account_file {
        words.push("--account".into());
        words.push(crate::shell::quote_owned(&account.display().to_string()));
    }
    words.push(args.to_string());
    words.join(" ")
}

/// After an import or an export: say once per endpoint group when its rate
/// limit held the run back (its requests waited a second or more in all,
/// and at least a tenth of the run's time).
pub(crate) fn say_rate_limit_waits(ctx: &Ctx, elapsed: std::time::Duration) {
    for w in ctx.http_stats.waits() {
        let notable = w.waited >= crate::http::stats::NOTABLE_WAIT
            && w.waited.as_secs_f64() >= elapsed.as_secs_f64() / 10.0;
        if notable {
            ctx.out.info(&format!(
                "requests waited {:.0} s in all for the rate limit of group {} ({} rps); raise \"rateLimit\" in {} if the API allows more",
                w.waited.as_secs_f64(),
                w.group,
                w.rps,
                w.source
            ));
        }
    }
}

/// A not-found error with the hint that lists the ids there are, when the
/// connector can list them (`getupdates`), in this command's folder.
pub(crate) fn hint_ids(ctx: &Ctx, can_list: bool, mut err: anyhow::Error) -> anyhow::Error {
    if can_list {
        if let Some(f) = err.downcast_mut::<crate::error::Failure>() {
            if f.kind == crate::error::Kind::NotFound {
                f.hint = Some(format!(
                    "list the ids with: {}",
                    next_command(ctx, "getupdates")
                ));
            }
        }
    }
    err
}

/// clap's usage error in ferry's shape, `error:` then `hint:`: the cause
/// on one line; its tips ("a similar argument exists") and the usage line
/// as the hint.
fn usage_error(rendered: &str) -> String {
    let mut cause: Vec<&str> = Vec::new();
    let mut tips: Vec<&str> = Vec::new();
    let mut usage = None;
    let mut in_cause = false;
    for line in rendered.lines() {
        let trimmed = line.trim();
        if let Some(first) = line.strip_prefix("error: ") {
            cause.push(first.trim());
            in_cause = true;
        } else if let Some(tip) = trimmed.strip_prefix("tip: ") {
            tips.push(tip);
            in_cause = false;
        } else if let Some(u) = line.strip_prefix("Usage: ") {
            usage = Some(u.trim());
            in_cause = false;
        } else if trimmed.is_empty() || trimmed.starts_with("For more information") {
            in_cause = false;
        } else if in_cause {
            cause.push(trimmed);
        }
    }
    let mut hint: Vec<String> = tips.iter().map(|t| t.to_string()).collect();
    match usage {
        Some(u) => hint.push(format!("usage: {u}")),
        None => hint.push("add --help to the command to see its options".to_string()),
    }
    format!("error: {}\nhint: {}\n", cause.join(" "), hint.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn a_clap_error_becomes_a_cause_and_a_hint() {
        let rendered = "error: unexpected argument '--identifier' found\n\n  tip: a similar argument exists: '--id'\n\nUsage: ferry get --id <ID>\n\nFor more information, try '--help'.\n";
        assert_eq!(
            usage_error(rendered),
            "error: unexpected argument '--identifier' found\nhint: a similar argument exists: '--id'; usage: ferry get --id <ID>\n"
        );
        let missing = "error: the following required arguments were not provided:\n  --to <TARGET>\n\nUsage: ferry import --from <TARGET> --to <TARGET>\n\nFor more information, try '--help'.\n";
        assert_eq!(
            usage_error(missing),
            "error: the following required arguments were not provided: --to <TARGET>\nhint: usage: ferry import --from <TARGET> --to <TARGET>\n"
        );
    }

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

    #[test]
    fn a_command_is_named_as_it_is_typed() {
        for argv in [&["ferry", "getupdates"][..], &["ferry", "connectors"]] {
            let cli = Cli::try_parse_from(argv).unwrap();
            assert_eq!(cli.command.name(), argv[1]);
        }
        assert_eq!(
            actions(),
            ["check", "get", "insert", "patch", "delete", "getupdates"]
        );
    }

    #[test]
    fn a_case_runs_only_an_action() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let command = parse_action(&args(&["get", "--id", "c_1"])).unwrap();
        assert_eq!(command.name(), "get");
        let err = parse_action(&args(&["import", "--from", "a", "--to", "b"])).unwrap_err();
        assert!(err.contains("`ferry import` is not an action"), "{err}");
        let err = parse_action(&args(&["get", "--nope"])).unwrap_err();
        assert!(err.contains("--nope"), "{err}");
    }
}
