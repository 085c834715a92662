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
            "no test cases in {}; record one: ferry get --id ID --record --save-case NAME",
            testcase::dir(&ctx.folder).display()
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
            "record one: ferry get --id ID --record --save-case NAME".to_string()
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

/// Run one case: why it does not pass (`None` when it passes), and
/// whether `--update` rewrote it.
async fn run_case(
    ctx: &Ctx,
    name: &str,
    path: &Path,
    update: bool,
) -> Result<(Option<String>, bool)> {
    let replay = Replay::prepare(ctx, name, path, &super::actions())?;
    let command = match super::parse_action(&replay.case.args) {
        Ok(command) => command,
        Err(why) => return Ok((Some(why), false)),
    };
    // Boxed: a command's future holds this one (`ferry test` is a command).
    let ran = Box::pin(command.exec(&replay.ctx)).await;
    let ending = match &ran {
        Ok(done) => replay.ending(Ok(done.result.as_ref()))?,
        Err(err) => replay.ending(Err(err))?,
    };
    let verdict = replay.verdict(&ending);
    if update && verdict.is_some() {
        let mut case = replay.case.clone();
        case.set_ending(ending);
        testcase::save(&ctx.folder, name, &case)?;
        return Ok((None, true));
    }
    Ok((verdict, false))
}
