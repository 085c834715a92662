//! Test cases for `ferry test`: one recorded run of an action kept as a file
//! (`DIR/tests/NAME.json`) holding the action, its command-line arguments,
//! its in.json section, the cassette of its HTTP traffic and the JSON it
//! printed. This module owns what a case is and its file (here), how a run
//! is recorded into a cassette and a case ([`record`]), how a case is set up
//! to run again and judged ([`replay`], [`diff`]) and the JUnit report
//! ([`junit`]). `cli/` parses and runs the commands themselves, so the
//! list of actions a case may hold is handed in from there.

pub mod diff;
pub mod junit;
pub mod record;
pub mod replay;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::usage;
use crate::http::cassette::{parse_tape, Tape};

pub use diff::diff;
pub use record::Recording;
pub use replay::{Outcome, Replay};

/// The case format's version, written into every file.
pub(crate) const VERSION: u32 = 1;

/// One test case file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Case {
    pub ferry_case: u32,
    /// The command: `get`, `getupdates`, ...
    pub action: String,
    /// The arguments after `ferry`, without the flags that only say how the
    /// run was made (-C, -o, -v, --record, --save-case, --input, ...).
    pub args: Vec<String>,
    /// The account.json the run used, its literal secrets as `***` (a
    /// `${NAME}` reference is kept: a replay does not need its value). A
    /// case without one (recorded by ferry 0.1) uses the folder's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<Value>,
    /// The in.json the run read, reduced to the action's section.
    pub input: Value,
    /// JSON paths of the output not compared (timestamps, generated ids):
    /// `/id`, `/entries/*/updatedAt`. Written by hand; kept by `--update`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignore: Vec<String>,
    /// The exit status the run ended with.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub exit: u8,
    /// The JSON the run printed, secrets redacted (`null` after an error).
    pub expected: Value,
    /// The error the run failed with (a case that expects a failure),
    /// secrets redacted, the store's path as its file name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The local store as it was before the run (csv, jsonl, sqlite): the
    /// case replays against a copy of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<StoreCopy>,
    /// The HTTP traffic of the run, secrets redacted.
    pub cassette: Tape,
}

fn is_zero(n: &u8) -> bool {
    *n == 0
}

/// What a run ended with: its result or its error, and its exit status.
#[derive(Debug, Clone, PartialEq)]
pub struct Ending {
    pub exit: u8,
    pub result: Option<Value>,
    pub error: Option<String>,
}

impl Ending {
    /// How a command `ended` (an action succeeds with its result or fails
    /// with an error), as a case keeps it ([`record::Scrub`]).
    pub fn of(
        scrub: &record::Scrub,
        ended: Result<Option<&Value>, &anyhow::Error>,
    ) -> Result<Ending> {
        Ok(match ended {
            Ok(result) => Ending {
                exit: 0,
                result: match result {
                    Some(r) => Some(
                        scrub
                            .value(r)
                            .context("could not redact the case's result")?,
                    ),
                    None => None,
                },
                error: None,
            },
            Err(err) => Ending {
                exit: crate::error::exit_status(err),
                result: None,
                error: Some(scrub.text(&replay::message(err))),
            },
        })
    }
}

/// A copy of a local store file, kept in a case: as text when it is UTF-8
/// (CSV, JSON lines read well in a diff), else gzipped in base64 (a small
/// SQLite file is mostly empty pages: 24 KiB gzip to about 1 KiB).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoreCopy {
    /// The file's name, which the replay's copy keeps.
    pub file: String,
    /// The content, when it is text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The content gzipped, in base64, when it is not text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gzip_base64: Option<String>,
}

impl StoreCopy {
    /// A copy of `file` holding `bytes` (`None`: the file did not exist).
    pub fn new(file: String, bytes: Option<Vec<u8>>) -> Result<StoreCopy> {
        use base64::Engine as _;
        use std::io::Write as _;
        let (text, gzip_base64) = match bytes {
            None => (None, None),
            Some(b) => match String::from_utf8(b) {
                Ok(t) => (Some(t), None),
                Err(e) => {
                    let mut gz =
                        flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
                    gz.write_all(e.as_bytes())?;
                    let packed = gz.finish()?;
                    (
                        None,
                        Some(base64::engine::general_purpose::STANDARD.encode(packed)),
                    )
                }
            },
        };
        Ok(StoreCopy {
            file,
            text,
            gzip_base64,
        })
    }

    /// The file's content; `None` when it did not exist.
    pub fn bytes(&self) -> Result<Option<Vec<u8>>> {
        use base64::Engine as _;
        use std::io::Read as _;
        match (&self.text, &self.gzip_base64) {
            (Some(t), _) => Ok(Some(t.clone().into_bytes())),
            (None, Some(b)) => {
                let broken = |e: &dyn std::fmt::Display| {
                    usage(format!(
                        "the copy of {} in the test case is damaged: {e}",
                        self.file
                    ))
                    .hint("record the case again")
                };
                let packed = base64::engine::general_purpose::STANDARD
                    .decode(b)
                    .map_err(|e| broken(&e))?;
                let mut bytes = Vec::new();
                flate2::read::GzDecoder::new(packed.as_slice())
                    .read_to_end(&mut bytes)
                    .map_err(|e| broken(&e))?;
                Ok(Some(bytes))
            }
            (None, None) => Ok(None),
        }
    }
}

impl Case {
    /// What the case expects a run to end with.
    pub fn ending(&self) -> Ending {
        Ending {
            exit: self.exit,
            result: self.error.is_none().then(|| self.expected.clone()),
            error: self.error.clone(),
        }
    }

    /// Expect `ending` from now on (`ferry test --update`).
    pub fn set_ending(&mut self, ending: Ending) {
        self.exit = ending.exit;
        self.expected = ending.result.unwrap_or(Value::Null);
        self.error = ending.error;
    }
}

/// Where cases live in a connector folder.
pub fn dir(folder: &Path) -> PathBuf {
    folder.join("tests")
}

/// Check a case name: it becomes a file name.
pub fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if ok {
        Ok(())
    } else {
        Err(usage(format!("{name:?} cannot name a test case"))
            .hint("use letters, digits, '-', '_' and '.', e.g. --save-case get-customer")
            .into())
    }
}

/// Write `case` to `DIR/tests/NAME.json`, atomically; answers the path.
pub fn save(folder: &Path, name: &str, case: &Case) -> Result<PathBuf> {
    let path = dir(folder).join(format!("{name}.json"));
    let mut text = serde_json::to_string_pretty(case).context("could not render the test case")?;
    text.push('\n');
    crate::fsutil::write_bytes_atomic(&path, text.as_bytes())
        .with_context(|| format!("could not write the test case {}", path.display()))?;
    Ok(path)
}

/// The case files of a folder, sorted by name: (name, path).
pub fn list(folder: &Path) -> Result<Vec<(String, PathBuf)>> {
    let dir = dir(folder);
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("could not read {}", dir.display())),
    };
    let mut cases = Vec::new();
    for entry in entries {
        let path = entry
            .with_context(|| format!("could not read {}", dir.display()))?
            .path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        if let Some(stem) = path.file_stem().and_then(|s| s.to_str()) {
            cases.push((stem.to_string(), path.clone()));
        }
    }
    cases.sort();
    Ok(cases)
}

/// Read one case file; its action must be one of `actions`.
pub fn load(path: &Path, actions: &[&str]) -> Result<Case> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("could not read {}", path.display()))?;
    let source = path.display().to_string();
    let value: Value = serde_json::from_str(&text).map_err(|e| {
        usage(format!(
            "{source} is not valid JSON: {e} (line {}, column {})",
            e.line(),
            e.column()
        ))
    })?;
    // The cassette is checked by its own parser, so its errors read the same everywhere.
    if let Some(tape) = value.get("cassette") {
        parse_tape(&tape.to_string(), &format!("the cassette of {source}"))?;
    }
    let case: Case = serde_json::from_value(value)
        .map_err(|e| usage(format!("{source} is not a ferry test case: {e}")))?;
    if case.ferry_case != VERSION {
        return Err(usage(format!(
            "{source} is a test case of version {}; this ferry reads version {VERSION}",
            case.ferry_case
        ))
        .into());
    }
    if !actions.contains(&case.action.as_str()) {
        return Err(usage(format!(
            "{source}: \"{}\" is not an action a test case can run ({})",
            case.action,
            actions.join(", ")
        ))
        .into());
    }
    Ok(case)
}
