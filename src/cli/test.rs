//! `ferry test`: replay every test case of the folder (`DIR/tests/*.json`,
//! saved by `--record --save-case NAME`), compare each output with the
//! recorded one, report per case and in JUnit XML, exit 1 on any failure.
//! Each case runs in-process through [`super::run`] with its own output and
//! its own cassette, exactly as `ferry <args> --replay` would.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use serde_json::{json, Value};

use crate::ctx::Ctx;
use crate::engine::cases::{self, Case, Outcome};
use crate::error::failed;
use crate::http::cassette::{shell_line, Cassette};
use crate::output::Output;

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

pub async fn exec(args: Args, ctx: &Ctx) -> Result<ExitCode> {
    let junit = args.junit.map(|p| crate::config::resolve(&ctx.cwd, p));
    let files = cases::list(&ctx.folder)?;
    if files.is_empty() {
        return Err(failed(format!(
            "no test cases in {}",
            cases::dir(&ctx.folder).display()
        ))
        .hint("record one: ferry get --id ID --record --save-case NAME")
        .into());
    }
    let mut outcomes = Vec::new();
    for (name, path) in files {
        let started = Instant::now();
        let error = match run_case(ctx, &name, &path).await {
            Ok(None) => None,
            Ok(Some(reason)) => Some(reason),
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
            seconds: started.elapsed().as_secs_f64(),
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
        let xml = ctx.out.redact(&cases::junit(&suite, &outcomes));
        crate::fsutil::write_bytes_atomic(path, xml.as_bytes())
            .with_context(|| format!("could not write the JUnit report {}", path.display()))?;
    }
    ctx.out.result(&json!({
        "passed": passed_n,
        "failed": failed_n,
        "cases": outcomes,
    }))?;
    Ok(if failed_n > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Replay one case: `None` when its output equals the recorded one, else why not.
async fn run_case(ctx: &Ctx, name: &str, path: &std::path::Path) -> Result<Option<String>> {
    let case: Case = cases::load(path)?;
    let scratch = tempfile::Builder::new()
        .prefix("ferry-case-")
        .tempdir()
        .context("could not create a temporary folder")?;
    let input = scratch.path().join("in.json");
    let result = scratch.path().join("out.json");
    std::fs::write(&input, case.input.to_string())
        .with_context(|| format!("could not write {}", input.display()))?;

    // The case runs with an output of its own: quiet, its result to a file,
    // its secrets registered there, and the case's cassette to answer from.
    let mut case_ctx = ctx.clone();
    case_ctx.out = Output::new();
    let rerecord = format!(
        "ferry {} --record --save-case {name}",
        shell_line(&case.args)
    );
    case_ctx.cassette = Some(Arc::new(Cassette::replay(
        case.cassette.interactions.clone(),
        format!("test case {}", path.display()),
        rerecord,
    )));
    let mut argv: Vec<std::ffi::OsString> = vec![
        "ferry".into(),
        "-q".into(),
        "-C".into(),
        ctx.folder.clone().into_os_string(),
        "--input".into(),
        input.clone().into_os_string(),
        "-o".into(),
        result.clone().into_os_string(),
    ];
    argv.extend(case.args.iter().map(Into::into));
    let out = case_ctx.out.clone();
    let code = match Box::pin(super::run(argv, case_ctx)).await {
        Ok(code) => code,
        Err(err) => return Ok(Some(out.redact(&chain(&err)))),
    };
    if code != ExitCode::SUCCESS {
        return Ok(Some(format!(
            "`ferry {}` did not succeed",
            shell_line(&case.args)
        )));
    }
    let text = std::fs::read_to_string(&result)
        .with_context(|| format!("the case printed no result ({})", result.display()))?;
    let actual: Value = serde_json::from_str(&text).context("the case's result is not JSON")?;
    let diffs = cases::diff(&case.expected, &actual);
    if diffs.is_empty() {
        Ok(None)
    } else {
        Ok(Some(format!(
            "the output differs from the recorded one\n  {}",
            out.redact(&diffs.join("\n  "))
        )))
    }
}

/// An error with its causes and hint on one line.
fn chain(err: &anyhow::Error) -> String {
    let mut text = err.to_string();
    for cause in err.chain().skip(1) {
        text.push_str(&format!(": {cause}"));
    }
    if let Some(hint) = crate::error::find_failure(err).and_then(|f| f.hint.as_deref()) {
        text.push_str(&format!(" (hint: {hint})"));
    }
    text
}
