//! Running a case again: its own context (a quiet output of its own, the
//! case's input as in.json, the case's cassette to answer every request)
//! and the verdict on what the run returned. `cli/test.rs` parses the
//! case's arguments into a command and runs it in that context, so a case
//! runs exactly as `ferry ARGS --replay` would, without re-entering the
//! command line.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Serialize;
use serde_json::Value;

use crate::ctx::Ctx;
use crate::error::usage;
use crate::http::cassette::Cassette;
use crate::output::{Output, Verbosity};
use crate::shell;

use super::{Case, Ending};

/// One case's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub name: String,
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// `--update` rewrote what the case expects.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub updated: bool,
    #[serde(skip)]
    pub time: Duration,
}

/// A case ready to run: the case and the context it runs in.
pub struct Replay {
    pub case: Case,
    /// The context the case's command runs in.
    pub ctx: Ctx,
    /// The replay's copy of the local store, when the case has one.
    store: Option<PathBuf>,
    /// Holds the case's in.json and store copy; removed when the replay is dropped.
    scratch: tempfile::TempDir,
}

impl Replay {
    /// Load the case at `path` (its action one of `actions`) and build its
    /// context from `ctx`: the same folder, the case's account (the
    /// folder's account.json for a case without one), the case's input, a
    /// copy of the case's store in place of the live one, an output of its
    /// own (quiet, its secrets registered there), and the case's cassette.
    /// `ferry` is how the command that records it again begins (`ferry -C
    /// DIR`, as the user ran `ferry test`).
    pub fn prepare(
        ctx: &Ctx,
        name: &str,
        path: &Path,
        actions: &[&str],
        ferry: &str,
    ) -> Result<Replay> {
        let case = super::load(path, actions)?;
        let scratch = tempfile::Builder::new()
            .prefix("ferry-case-")
            .tempdir()
            .context("could not create a temporary folder")?;
        let input = scratch.path().join("in.json");
        std::fs::write(&input, case.input.to_string())
            .with_context(|| format!("could not write {}", input.display()))?;
        let rerecord = format!(
            "{ferry} {} --record --save-case {name}",
            shell::join(&case.args)
        );

        let mut case_ctx = ctx.clone();
        case_ctx.out = Output::new();
        case_ctx.out.set_verbosity(Verbosity::Quiet);
        case_ctx.account_file = None;
        case_ctx.input_file = Some(input);
        case_ctx.cassette = Some(Arc::new(Cassette::replay(
            case.cassette.interactions.clone(),
            format!("test case {}", path.display()),
            rerecord.clone(),
        )));
        let store = match &case.account {
            Some(account) => {
                let mut account = account.clone();
                let store = place_store(&case, &mut account, scratch.path())?;
                case_ctx.account_json = Some((
                    account,
                    format!("the account of test case {}", path.display()),
                ));
                store
            }
            None => {
                // A case from before cases kept their account runs with
                // the folder's, unless that would change a live store.
                let account = case_ctx.account()?;
                let local = crate::connector::registry::spec(&account.connector)
                    .is_ok_and(|s| s.store.is_some());
                if local {
                    return Err(usage(format!(
                        "test case {name} holds no copy of its {} store (an older ferry recorded it), so it cannot run without changing the live one",
                        account.connector
                    ))
                    .hint(format!("record it again: {rerecord}"))
                    .into());
                }
                None
            }
        };
        Ok(Replay {
            case,
            ctx: case_ctx,
            store,
            scratch,
        })
    }

    /// How a run ended, as the case keeps it: `ended` is what the
    /// command returned (an action succeeds or fails with an error).
    pub fn ending(&self, ended: Result<Option<&Value>, &anyhow::Error>) -> Result<Ending> {
        let mut paths = Vec::new();
        if let (Some(copy), Some(kept)) = (&self.store, &self.case.store) {
            paths.push((copy.clone(), kept.file.clone()));
        }
        // The case's in.json is in the scratch folder: it reads as the
        // folder's, as it did when the case was recorded.
        paths.push((self.scratch.path().to_path_buf(), ".".to_string()));
        paths.push((self.ctx.folder.clone(), ".".to_string()));
        Ending::of(&super::record::Scrub::new(&self.ctx.out, paths), ended)
    }

    /// Why a run that ended with `actual` does not pass: `None` when it
    /// ended as the case expects (its output equal but for the ignored
    /// paths, or the same error with the same exit status).
    pub fn verdict(&self, actual: &Ending) -> Option<String> {
        let expected = self.case.ending();
        let command = format!("`ferry {}`", shell::join(&self.case.args));
        match (&expected.error, &actual.error) {
            (Some(want), Some(got)) if want == got && expected.exit == actual.exit => None,
            (Some(want), Some(got)) => Some(format!(
                "{command} was expected to fail with exit {} and: {want}\n  it failed with exit {} and: {got}",
                expected.exit, actual.exit
            )),
            (Some(want), None) => Some(format!(
                "{command} was expected to fail with: {want}\n  it succeeded"
            )),
            (None, Some(got)) => Some(format!("{command} failed: {got}")),
            (None, None) => {
                let (Some(want), Some(got)) = (&expected.result, &actual.result) else {
                    return Some("the case printed no result".into());
                };
                let diffs = super::diff(want, got, &self.case.ignore);
                (!diffs.is_empty()).then(|| {
                    format!(
                        "the output differs from the recorded one\n  {}",
                        self.ctx.out.redact(&diffs.join("\n  "))
                    )
                })
            }
        }
    }
}

/// Write the case's store copy into `scratch` and point the account's
/// store option at it; answers the copy's path.
fn place_store(case: &Case, account: &mut Value, scratch: &Path) -> Result<Option<PathBuf>> {
    let Some(copy) = &case.store else {
        return Ok(None);
    };
    let connector = account
        .get("connector")
        .and_then(Value::as_str)
        .unwrap_or("");
    let option = crate::connector::registry::spec(connector)
        .ok()
        .and_then(|s| s.store)
        .map(|s| s.option)
        .ok_or_else(|| {
            usage(format!(
                "the test case has a store copy, but connector {connector:?} keeps no local store"
            ))
        })?;
    // Only the file's name is taken from the case: it cannot write
    // outside the scratch folder.
    let name = Path::new(&copy.file)
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_else(|| "store".into());
    let file = scratch.join(name);
    if let Some(bytes) = copy.bytes()? {
        std::fs::write(&file, bytes)
            .with_context(|| format!("could not write {}", file.display()))?;
    }
    if let Value::Object(map) = account {
        map.insert(option.into(), Value::String(file.display().to_string()));
    }
    Ok(Some(file))
}

/// An error and its causes on one line, without the hint (which names the
/// folder a command ran from and so differs between runs of one case).
pub fn message(err: &anyhow::Error) -> String {
    let mut text = err.to_string();
    for cause in err.chain().skip(1) {
        text.push_str(&format!(": {cause}"));
    }
    text
}

/// An error with its causes and hint on one line.
pub fn chain(err: &anyhow::Error) -> String {
    let mut text = message(err);
    if let Some(hint) = crate::error::find_failure(err).and_then(|f| f.hint.as_deref()) {
        text.push_str(&format!(" (hint: {hint})"));
    }
    text
}
