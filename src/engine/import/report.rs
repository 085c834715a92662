//! What an import answers: for a run, how it ended, what it counted and
//! where its checkpoint and rejects are; for a dry run, what the first batch
//! would send. `cli/import.rs` renders the report and picks the exit status.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use crate::engine::checkpoint::{Checkpoint, Counts};

/// How a run (or one attempt of it) ended.
#[derive(Debug)]
pub enum Ending {
    /// The source was read to the end, or to `--limit`.
    Done,
    /// A batch (or the source) failed; the error and where it happened.
    Failed(anyhow::Error),
    /// Ctrl-C, SIGTERM or SIGHUP.
    Interrupted,
}

/// The result of `import::run`.
#[derive(Debug)]
pub enum ImportReport {
    Run(Box<RunReport>),
    DryRun(DryRunReport),
}

/// A run that wrote: its last attempt's ending and the whole invocation's counts.
#[derive(Debug)]
pub struct RunReport {
    pub ending: Ending,
    /// Counts of this invocation (all its attempts), not of earlier runs.
    pub counts: Counts,
    pub elapsed: Duration,
    /// The checkpoint as last saved.
    pub checkpoint: Checkpoint,
    /// Where the checkpoint is saved.
    pub state: PathBuf,
    /// The rejects file, when there is one.
    pub rejects: Option<PathBuf>,
}

/// `--dry-run`: the first batch as the destination would receive it.
#[derive(Debug)]
pub struct DryRunReport {
    /// Records read for the batch.
    pub read: u64,
    /// The requests the destination would get, as its preview shows them.
    pub requests: Vec<Value>,
    /// Records validation would reject, as rejects-file lines.
    pub rejected: Vec<Value>,
    /// Values validation would set to null, by reason.
    pub warnings: BTreeMap<String, u64>,
}
