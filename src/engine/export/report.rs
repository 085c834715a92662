//! What an export answers: for a run, what the destination acknowledged,
//! each problem profile and where the state is; for a dry run, the
//! predicted counts and first requests; or that the user declined a mass
//! delete. `cli/export.rs` renders the report and picks the exit status.
//! The report phase also writes `--errors FILE`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::{json, Value};

use super::diff::Counts;
use super::input::Invalid;
use super::send::{FailKind, Track};
use super::DeletesOverLimit;
use crate::output::Output;

/// The result of `export::run`.
#[derive(Debug)]
pub enum ExportReport {
    Run(Box<RunReport>),
    DryRun(Box<DryRunReport>),
    /// More deletes or clears than `--max-deletes`, and the answer was no:
    /// nothing was sent.
    Declined,
}

/// What the destination acknowledged.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Sent {
    pub created: u64,
    pub updated: u64,
    pub deleted: u64,
    pub groups_added: u64,
    pub groups_removed: u64,
}

impl Sent {
    /// Add what another chunk of the run sent.
    pub fn add(&mut self, other: &Sent) {
        self.created += other.created;
        self.updated += other.updated;
        self.deleted += other.deleted;
        self.groups_added += other.groups_added;
        self.groups_removed += other.groups_removed;
    }
}

/// A run that sent.
#[derive(Debug)]
pub struct RunReport {
    pub sent: Sent,
    pub unchanged: u64,
    pub invalid: u64,
    pub rejected: u64,
    pub errors: u64,
    pub skipped: u64,
    /// Profiles in the input (invalid ones included, absent ones not).
    pub profiles: u64,
    pub elapsed: Duration,
    /// The destination as its account names it.
    pub destination: String,
    /// The export state file.
    pub state: PathBuf,
    /// Interrupted: how many profiles were not sent (the next run sends them).
    pub not_sent: Option<u64>,
    /// Where the problem lines were written (`--errors FILE`).
    pub errors_file: Option<PathBuf>,
    /// Each profile that was not exported as asked, in input order.
    pub problems: Vec<Problem>,
}

/// What kept a profile (or part of it) from being exported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    /// The profile cannot be sent as it is: fix the input.
    Invalid,
    /// The destination refused it; sent again next run.
    Rejected,
    /// The call failed; sent again next run.
    Error,
    /// Informational, by design: reported and never retried.
    Skipped,
}

impl ProblemKind {
    /// As `--errors FILE` writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            ProblemKind::Invalid => "invalid",
            ProblemKind::Rejected => "rejected",
            ProblemKind::Error => "error",
            ProblemKind::Skipped => "skipped",
        }
    }

    /// `error`, or `info` for a skip.
    pub fn level(self) -> &'static str {
        match self {
            ProblemKind::Skipped => "info",
            _ => "error",
        }
    }
}

/// One problem profile.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub id: String,
    pub kind: ProblemKind,
    /// In a few words that are the same for every profile with this
    /// problem ("without \"email\"", "rejected at create"), to count them by.
    pub reason: String,
    pub message: String,
}

impl Problem {
    /// Its line in `--errors FILE`: id, level, kind and message.
    pub fn line(&self) -> Value {
        json!({
            "id": self.id,
            "level": self.kind.level(),
            "kind": self.kind.as_str(),
            "message": self.message,
        })
    }
}

impl RunReport {
    /// Profiles that failed: invalid, rejected or in error.
    pub fn failed(&self) -> u64 {
        self.invalid + self.rejected + self.errors
    }
}

/// `--dry-run`: what a run would do.
#[derive(Debug)]
pub struct DryRunReport {
    pub destination: String,
    pub state: PathBuf,
    pub predicted: Counts,
    /// The first requests, as the destination's preview renders them.
    pub requests: Vec<Value>,
    /// A real run would ask before this many deletes or clears.
    pub over_limit: Option<DeletesOverLimit>,
    pub invalid: Vec<Invalid>,
}

/// The outcomes of a run, added up a chunk at a time: counts, and the
/// problem profiles in the order they were sent.
#[derive(Debug, Default)]
pub(super) struct Tally {
    unchanged: u64,
    invalid: u64,
    rejected: u64,
    errors: u64,
    skipped: u64,
    not_sent: u64,
    problems: Vec<Problem>,
}

impl Tally {
    /// Profiles the first pass found unchanged.
    pub(super) fn unchanged(&mut self, n: u64) {
        self.unchanged += n;
    }

    /// Profiles a stopped run did not get to.
    pub(super) fn not_sent(&mut self, n: u64) {
        self.not_sent += n;
    }

    /// One chunk: its invalid entries and its tracks, once sent.
    pub(super) fn add(&mut self, invalid: &[Invalid], tracks: &[Track]) {
        self.invalid += invalid.len() as u64;
        self.problems.extend(invalid.iter().map(|i| Problem {
            id: i.id.clone(),
            kind: ProblemKind::Invalid,
            reason: i.reason.clone(),
            message: i.message.clone(),
        }));
        for t in tracks {
            if t.p.is_unchanged() {
                self.unchanged += 1;
            }
            let problem = |kind, reason: &str, message: &str| Problem {
                id: t.p.id.clone(),
                kind,
                reason: reason.to_string(),
                message: message.to_string(),
            };
            match &t.failure {
                Some(f) if f.kind == FailKind::Interrupted => self.not_sent += 1,
                Some(f) => {
                    let (kind, how) = if f.kind == FailKind::Rejected {
                        self.rejected += 1;
                        (ProblemKind::Rejected, "rejected")
                    } else {
                        self.errors += 1;
                        (ProblemKind::Error, "failed")
                    };
                    let reason = format!("{how} at {}", f.step);
                    self.problems.push(problem(kind, &reason, &f.message));
                }
                None => {
                    if let Some(skip) = &t.skip {
                        self.skipped += 1;
                        self.problems.push(problem(
                            ProblemKind::Skipped,
                            &skip.reason,
                            &skip.message,
                        ));
                    }
                }
            }
        }
    }

    /// The report of the run: `profiles` read from the input, `sent` what
    /// the destination acknowledged, `interrupted` whether a signal stopped it.
    pub(super) fn report(
        self,
        sent: Sent,
        interrupted: bool,
        profiles: u64,
        elapsed: Duration,
        destination: String,
        state: PathBuf,
    ) -> RunReport {
        RunReport {
            sent,
            unchanged: self.unchanged,
            invalid: self.invalid,
            rejected: self.rejected,
            errors: self.errors,
            skipped: self.skipped,
            profiles,
            elapsed,
            destination,
            state,
            not_sent: interrupted.then_some(self.not_sent),
            errors_file: None,
            problems: self.problems,
        }
    }
}

/// Write the problem lines to `--errors FILE`, redacted, in one go.
pub(super) fn write_errors_file(out: &Output, path: &Path, problems: &[Problem]) -> Result<()> {
    let mut text = String::new();
    for problem in problems {
        text.push_str(&problem.line().to_string());
        text.push('\n');
    }
    crate::fsutil::write_bytes_atomic(path, out.redact(&text).as_bytes())
        .with_context(|| format!("could not write the errors file {}", path.display()))
}
