//! Running a case again: its own context (a quiet output of its own, the
//! case's input as in.json, the case's cassette to answer every request)
//! and the verdict on what the run returned. `cli/test.rs` parses the
//! case's arguments into a command and runs it in that context, so a case
//! runs exactly as `ferry ARGS --replay` would, without re-entering the
//! command line.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Serialize;
use serde_json::Value;

use crate::ctx::Ctx;
use crate::http::cassette::Cassette;
use crate::output::{Output, Verbosity};
use crate::shell;

use super::Case;

/// One case's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub name: String,
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip)]
    pub time: Duration,
}

/// A case ready to run: the case and the context it runs in.
pub struct Replay {
    pub case: Case,
    /// The context the case's command runs in.
    pub ctx: Ctx,
    /// Holds the case's in.json; removed when the replay is dropped.
    _scratch: tempfile::TempDir,
}

impl Replay {
    /// Load the case at `path` (its action one of `actions`) and build its
    /// context from `ctx`: the same folder and account.json, the case's
    /// input, an output of its own (quiet, its secrets registered there),
    /// and the case's cassette.
    pub fn prepare(ctx: &Ctx, name: &str, path: &Path, actions: &[&str]) -> Result<Replay> {
        let case = super::load(path, actions)?;
        let scratch = tempfile::Builder::new()
            .prefix("ferry-case-")
            .tempdir()
            .context("could not create a temporary folder")?;
        let input = scratch.path().join("in.json");
        std::fs::write(&input, case.input.to_string())
            .with_context(|| format!("could not write {}", input.display()))?;

        let mut case_ctx = ctx.clone();
        case_ctx.out = Output::new();
        case_ctx.out.set_verbosity(Verbosity::Quiet);
        case_ctx.account_file = None;
        case_ctx.input_file = Some(input);
        let rerecord = format!(
            "ferry {} --record --save-case {name}",
            shell::join(&case.args)
        );
        case_ctx.out.set_cassette(Some(Arc::new(Cassette::replay(
            case.cassette.interactions.clone(),
            format!("test case {}", path.display()),
            rerecord,
        ))));
        Ok(Replay {
            case,
            ctx: case_ctx,
            _scratch: scratch,
        })
    }

    /// Why a run that returned `code` and `result` does not pass: `None`
    /// when it exited 0 and its result equals the recorded one.
    pub fn verdict(&self, code: ExitCode, result: Option<&Value>) -> Result<Option<String>> {
        if code != ExitCode::SUCCESS {
            return Ok(Some(format!(
                "`ferry {}` did not succeed",
                shell::join(&self.case.args)
            )));
        }
        let Some(result) = result else {
            return Ok(Some("the case printed no result".into()));
        };
        let actual = super::record::redacted(&self.ctx.out, result)
            .context("could not redact the case's result")?;
        let diffs = super::diff(&self.case.expected, &actual);
        if diffs.is_empty() {
            Ok(None)
        } else {
            Ok(Some(format!(
                "the output differs from the recorded one\n  {}",
                self.ctx.out.redact(&diffs.join("\n  "))
            )))
        }
    }

    /// Why a run that failed with `err` does not pass, secrets masked.
    pub fn failure(&self, err: &anyhow::Error) -> String {
        self.ctx.out.redact(&chain(err))
    }
}

/// An error with its causes and hint on one line.
pub fn chain(err: &anyhow::Error) -> String {
    let mut text = err.to_string();
    for cause in err.chain().skip(1) {
        text.push_str(&format!(": {cause}"));
    }
    if let Some(hint) = crate::error::find_failure(err).and_then(|f| f.hint.as_deref()) {
        text.push_str(&format!(" (hint: {hint})"));
    }
    text
}
