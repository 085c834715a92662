//! `ferry test`: replay the test cases of the folder (`DIR/tests/*.json`,
//! saved by `--record --save-case NAME`; all, or those named), compare each
//! ending (output or error) with the recorded one, report per case and in
//! JUnit XML, exit 1 on any failure; `--update` rewrites what cases expect.
//! Each case's arguments are parsed into their command, which runs in the
//! case's own context ([`Replay`]) exactly as `ferry ARGS --replay` would.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use serde_json::json;

use super::Done;
use crate::ctx::Ctx;
use crate::error::usage;
use crate::http::cassette::is_unrecorded;
use crate::testcase::{self, replay::chain, Outcome, Replay};

/// Replay the folder's recorded test cases offline and compare their outputs
#[derive(Debug, clap::Args)]
#[command(
    after_help = "A test case is one recorded run of an action: save one with
  ferry get --id cus_001 --record --save-case get-customer
which writes DIR/tests/get-customer.json: the action, its input, the
account (secrets as ***), its HTTP traffic, a copy of a local store
(csv, jsonl, sqlite) and its output or error. `ferry test` replays each
case offline, a local store in a temporary copy, and compares. List
output paths not to compare (timestamps, generated ids) in the case's
\"ignore\": [\"/id\", \"/entries/*/updatedAt\"].

Examples:
  ferry test
  ferry test get-customer list-all
  ferry test --update
  ferry -C my-connector test --junit report.xml"
)]
pub struct Args {
    /// Run only these cases [default: every case in DIR/tests]
    #[arg(value_name = "NAME")]
    names: Vec<String>,
    /// Rewrite each case's expected output (or error) with what its replay gives
    #[arg(long)]
    update: bool,
    /// Also write the results as JUnit XML to FILE
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
}

pub async fn exec(args: Args, ctx: &Ctx) -> Result<Done> {
    let junit = args.junit.map(|p| crate::config::resolve(&ctx.cwd, p));
    let files = chosen(ctx, testcase::list(&ctx.folder)?, &args.names)?;
    // A folder without cases is not a failing suite (a CI step that runs
    // `ferry test` everywhere passes where nothing is recorded yet), but
    // the user is told how to record one.
    if files.is_empty() {
        ctx.out.warn(&format!(
            "no test cases in {}; {}",
            testcase::dir(&ctx.folder).display(),
            record_one(ctx)
        ));
    }
    let mut outcomes = Vec::new();
    for (name, path) in files {
        let started = Instant::now();
        let (error, updated) = match run_case(ctx, &name, &path, args.update).await {
            Ok(ran) => ran,
            Err(err) => (Some(chain(&err)), false),
        };
        match (&error, updated) {
            (None, true) => ctx.out.info(&format!("updated {name}")),
            (None, false) => ctx.out.info(&format!("ok {name}")),
            (Some(e), _) => ctx.out.info(&format!("FAILED {name}: {e}")),
        }
        outcomes.push(Outcome {
            name,
            ok: error.is_none(),
            error,
            updated,
            time: started.elapsed(),
        });
    }
    let failed_n = outcomes.iter().filter(|o| !o.ok).count();
    let updated_n = outcomes.iter().filter(|o| o.updated).count();
    let passed_n = outcomes.len() - failed_n;
    if args.update {
        ctx.out.info(&format!(
            "{passed_n} passed ({updated_n} updated), {failed_n} failed"
        ));
    } else {
        ctx.out
            .info(&format!("{passed_n} passed, {failed_n} failed"));
    }
    if let Some(path) = &junit {
        let suite = ctx
            .folder
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "ferry".into());
        let xml = ctx.out.redact(&testcase::junit::junit(&suite, &outcomes)?);
        crate::fsutil::write_bytes_atomic(path, xml.as_bytes())
            .with_context(|| format!("could not write the JUnit report {}", path.display()))?;
    }
    let mut result = json!({
        "passed": passed_n,
        "failed": failed_n,
        "cases": outcomes,
    });
    if args.update {
        result["updated"] = json!(updated_n);
    }
    Ok(Done {
        result: Some(result),
        code: if failed_n > 0 {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        },
    })
}

/// How to record a first case, in this command's folder.
fn record_one(ctx: &Ctx) -> String {
    format!(
        "record one: {}",
        super::next_command(ctx, "get --id ID --record --save-case NAME")
    )
}

/// The cases named on the command line (all when none is), each once; a
/// name with no case is a usage error listing the ones there are.
fn chosen(
    ctx: &Ctx,
    files: Vec<(String, PathBuf)>,
    names: &[String],
) -> Result<Vec<(String, PathBuf)>> {
    if names.is_empty() {
        return Ok(files);
    }
    if let Some(missing) = names.iter().find(|n| !files.iter().any(|(f, _)| f == *n)) {
        let there = files.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>();
        let hint = if there.is_empty() {
            record_one(ctx)
        } else {
            format!("the cases are: {}", there.join(", "))
        };
        return Err(usage(format!(
            "no test case {missing} in {}",
            testcase::dir(&ctx.folder).display()
        ))
        .hint(hint)
        .into());
    }
    Ok(files
        .into_iter()
        .filter(|(f, _)| names.contains(f))
        .collect())
}

/// A case replayed: its verdict (`None` when it passes), the ending the
/// replay gave, and whether it asked for traffic the case never recorded.
struct Replayed {
    verdict: Option<String>,
    ending: testcase::Ending,
    unrecorded: bool,
    case: testcase::Case,
}

/// Replay one case in its own context.
async fn replay(ctx: &Ctx, name: &str, path: &Path) -> Result<Result<Replayed, String>> {
    let ferry = super::next_command(ctx, "");
    let replay = Replay::prepare(ctx, name, path, &super::actions(), ferry.trim_end())?;
    let command = match super::parse_action(&replay.case.args) {
        Ok(command) => command,
        Err(why) => return Ok(Err(why)),
    };
    // Boxed: a command's future holds this one (`ferry test` is a command).
    let ran = Box::pin(command.exec(&replay.ctx)).await;
    let ending = match &ran {
        Ok(done) => replay.ending(Ok(done.result.as_ref()))?,
        Err(err) => replay.ending(Err(err))?,
    };
    Ok(Ok(Replayed {
        verdict: replay.verdict(&ending),
        unrecorded: ran.as_ref().err().is_some_and(is_unrecorded),
        ending,
        case: replay.case,
    }))
}

/// Run one case: why it does not pass (`None` when it passes), and
/// whether `--update` rewrote it. `--update` takes the replay's ending only
/// when the replay could run: a request the case never recorded is a case
/// to record again, not an error to expect.
async fn run_case(
    ctx: &Ctx,
    name: &str,
    path: &Path,
    update: bool,
) -> Result<(Option<String>, bool)> {
    let r = match replay(ctx, name, path).await? {
        Ok(r) => r,
        Err(why) => return Ok((Some(why), false)),
    };
    match (&r.verdict, update, r.unrecorded) {
        (Some(_), true, false) => {
            let mut case = r.case;
            case.set_ending(r.ending);
            testcase::save(&ctx.folder, name, &case)?;
            Ok((None, true))
        }
        (Some(why), true, true) => Ok((
            Some(format!(
                "{why}\n  --update cannot fix this: the case lacks that traffic; record it again"
            )),
            false,
        )),
        _ => Ok((r.verdict, false)),
    }
}

/// What replaying a case just saved by `--record --save-case` showed.
pub enum Saved {
    /// It replays to the run's ending.
    Replays,
    /// It replays, but its output differs at these paths (a generated id
    /// or a time): the case fails until they are in its `ignore`.
    Differs(String),
    /// It cannot replay to the run's ending (a network failure or timeout
    /// recorded nothing to answer with, or the replay needs traffic the
    /// run never made): it is not worth keeping.
    Broken(String),
}

/// Replay the case `name` just saved at `path` and say how it went.
pub async fn check_saved(ctx: &Ctx, name: &str, path: &Path) -> Result<Saved> {
    let r = match replay(ctx, name, path).await? {
        Ok(r) => r,
        Err(why) => return Ok(Saved::Broken(why)),
    };
    let expected = r.case.ending();
    Ok(match r.verdict {
        None => Saved::Replays,
        Some(why) if r.unrecorded || expected.error.is_some() || r.ending.error.is_some() => {
            Saved::Broken(why)
        }
        Some(why) => Saved::Differs(why),
    })
}
