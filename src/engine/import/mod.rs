//! `ferry import`: the bulk migration pipeline.
//!
//! A reader task pages the source into a bounded queue of batches; each
//! batch is made of whole source pages (the reader asks for exactly what is
//! left to fill it, so a batch never exceeds `--batch-size`), mapped and
//! validated on the way. Up to `--concurrency` batches are written at once;
//! the commit stage takes them back in order, so the checkpoint moves past a
//! batch only when it and every earlier batch are written, and it is saved
//! atomically after each commit. Because a batch ends on a page boundary the
//! checkpoint holds the source's own resume token (byte offset, rowid, API
//! cursor), and a resumed run starts exactly after the last committed record.
//! Memory is bounded by the queue and the batches in flight. When nothing
//! would change a record and both ends speak JSON text, records pass through
//! unparsed ([`crate::connector::raw`]); records the pass-through cannot
//! vouch for are mapped and validated as usual within the same batch.
//!
//! [`run`] answers an [`ImportReport`]; the command renders it, asks the
//! questions on a terminal and picks the exit status. The modules follow the
//! pipeline: `setup` opens, `batch` reads, `pipeline` writes and commits,
//! `rejects` keeps the refused records, `dry_run` previews, `report` is
//! what a run answers.

mod batch;
mod dry_run;
mod pipeline;
mod rejects;
mod report;
mod setup;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::ctx::Ctx;
use crate::engine::checkpoint::Counts;
use crate::engine::target::Target;
use crate::interrupt::Interrupt;
use crate::output::progress::Progress;

pub use report::{DryRunReport, Ending, ImportReport, RunReport};

/// Where a run starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// From the first record (a fresh run).
    Beginning,
    /// After the first N records of the source (`--offset N`).
    Offset(u64),
    /// From the checkpoint (`--resume`).
    Resume,
}

/// Everything `ferry import` was asked to do, checked before any I/O.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportPlan {
    /// The source as the user typed it (for messages and the resume command).
    pub from: String,
    pub from_target: Target,
    /// The destination as the user typed it.
    pub to: String,
    pub to_target: Target,
    /// Records per batch [default: the destination's maximum].
    pub batch_size: Option<usize>,
    pub start: Start,
    /// Stop after reading this many records.
    pub limit: Option<u64>,
    /// `--map FILE`, resolved.
    pub map: Option<PathBuf>,
    /// `--id-field PATH`: a field name or a JSON pointer.
    pub id_field: Option<String>,
    /// `--rejects FILE`, resolved.
    pub rejects: Option<PathBuf>,
    /// `--state FILE`, resolved.
    pub state: Option<PathBuf>,
    /// Batches written at once [default: the destination's parallelism].
    pub concurrency: Option<usize>,
    pub dry_run: bool,
    /// Resume after a failure without asking (on a terminal).
    pub yes: bool,
    /// The flags as typed, for the resume command: (flag, value).
    pub flags: Vec<(String, Option<String>)>,
}

/// A run stopped on a failure: the question whether to resume it once more
/// now, from its checkpoint.
pub struct Stopped<'a> {
    /// Why it stopped.
    pub error: &'a anyhow::Error,
    /// The offset of the saved checkpoint, where a resume starts.
    pub offset: u64,
}

/// Run the import described by `plan`. `progress` watches the run;
/// `confirm` is asked, at most once, whether a run that stopped on a
/// failure resumes at once (answering no ends the run with its report).
pub async fn run(
    plan: &ImportPlan,
    ctx: &Ctx,
    progress: &dyn Progress,
    confirm: &mut dyn FnMut(&Stopped<'_>) -> Result<bool>,
) -> Result<ImportReport> {
    // Installed first, so a Ctrl-C, SIGTERM or SIGHUP at any point after
    // this is ours to handle.
    let interrupt = Interrupt::install()?;
    let setup = setup::setup(plan, ctx).await?;
    if plan.dry_run {
        let report = dry_run::dry_run(plan, &setup, ctx).await?;
        return Ok(ImportReport::DryRun(report));
    }
    // One writer at a time for the destination file and the checkpoint,
    // held until the run returns.
    let mut _locks = Vec::new();
    if let Some(file) = setup.dest.written_file() {
        _locks.push(crate::lock::hold(ctx, file, "the destination", &interrupt).await?);
    }
    _locks.push(crate::lock::hold(ctx, &setup.state, "the checkpoint", &interrupt).await?);
    let started = Instant::now();
    let mut counts = Counts::default();
    let mut start = plan.start;
    let mut retried = false;
    let mut prompted = Duration::ZERO;
    loop {
        let (ending, checkpoint) = pipeline::attempt(
            &setup,
            ctx,
            start,
            plan.limit.map(|l| l.saturating_sub(counts.read)),
            &mut counts,
            progress,
            &interrupt,
        )
        .await?;
        progress.finish();
        if let Ending::Failed(error) = &ending {
            let stopped = Stopped {
                error,
                offset: checkpoint.position.offset,
            };
            // Time at the prompt is not the run's: not in elapsedSecs, nor the rate.
            let asked = Instant::now();
            let again = !retried && confirm(&stopped)?;
            prompted += asked.elapsed();
            if again {
                retried = true;
                start = Start::Resume;
                counts.failed = 0;
                continue;
            }
        }
        return Ok(ImportReport::Run(Box::new(RunReport {
            ending,
            counts,
            elapsed: started.elapsed().saturating_sub(prompted),
            checkpoint,
            state: setup.state.clone(),
            rejects: setup.rejects.exists().then(|| setup.rejects.clone()),
        })));
    }
}
