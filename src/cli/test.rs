//! `ferry test`: replay every test case of the folder (`DIR/tests/*.json`,
//! saved by `--record --save-case NAME`), compare each output with the
//! recorded one, report per case and in JUnit XML, exit 1 on any failure.
//! Each case's arguments are parsed into their command, which runs in the
//! case's own context ([`Replay`]) exactly as `ferry ARGS --replay` would.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use serde_json::json;

use super::Done;
use crate::ctx::Ctx;
use crate::testcase::{self, replay::chain, Outcome, Replay};

/// Replay the folder's recorded test cases offline and compare their outputs
#[derive(Debug, clap::Args)]
#[command(
    after_help = "A test case is one recorded run of an action: save one with
  ferry get --id cus_001 --record --save-case get-customer
which writes DIR/tests/get-customer.json (the action, its input, its HTTP
traffic and its output, secrets redacted). `ferry test` replays every case
without touching the network and compares the outputs.

Examples:
  ferry test
  ferry -C my-connector test --junit report.xml"
)]
pub struct Args {
    /// Also write the results as JUnit XML to FILE
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
}

pub async fn exec(args: Args, ctx: &Ctx) -> Result<Done> {
    let junit = args.junit.map(|p| crate::config::resolve(&ctx.cwd, p));
    let files = testcase::list(&ctx.folder)?;
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
        let error = match run_case(ctx, &name, &path).await {
            Ok(verdict) => verdict,
            Err(err) => Some(chain(&err)),
        };
        match &error {
            None => ctx.out.info(&format!("ok {name}")),
            Some(e) => ctx.out.info(&format!("FAILED {name}: {e}")),
        }
        outcomes.push(Outcome {
            name,
            ok: error.is_none(),
            error,
            time: started.elapsed(),
        });
    }
    let failed_n = outcomes.iter().filter(|o| !o.ok).count();
    let passed_n = outcomes.len() - failed_n;
    ctx.out
        .info(&format!("{passed_n} passed, {failed_n} failed"));
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
    Ok(Done {
        result: Some(json!({
            "passed": passed_n,
            "failed": failed_n,
            "cases": outcomes,
        })),
        code: if failed_n > 0 {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        },
    })
}

/// Run one case: `None` when its output equals the recorded one, else why not.
async fn run_case(ctx: &Ctx, name: &str, path: &Path) -> Result<Option<String>> {
    let replay = Replay::prepare(ctx, name, path, &super::actions())?;
    let command = match super::parse_action(&replay.case.args) {
        Ok(command) => command,
        Err(why) => return Ok(Some(why)),
    };
    // Boxed: a command's future holds this one (`ferry test` is a command).
    match Box::pin(command.exec(&replay.ctx)).await {
        Ok(done) => replay.verdict(done.code, done.result.as_ref()),
        Err(err) => Ok(Some(replay.failure(&err))),
    }
}
