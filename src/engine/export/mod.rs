//! `ferry export`: read the profiles, diff them against the destination's
//! export state, then send only what changed: deletes, creates (upserts by
//! key), updates with clears, then group memberships (each group ensured
//! once per run). Every profile ends `ok`, `skipped` (informational, never
//! retried) or failed (`invalid`, `rejected`, `error`); only what succeeded
//! advances the state, so a failed profile is sent again next run. The
//! profiles are sent a chunk of ten batches at a time and the state is
//! saved in one transaction after each chunk, so a run killed half-way
//! keeps what the destination acknowledged.
//!
//! [`run`] goes through its phases in order: open the destination, read the
//! profiles ([`input`]), diff them against the state ([`diff`]), preview
//! (`preview`) or ask before a mass delete, send (`send`), save the state
//! ([`state`]) and report (`report`). It answers an
//! [`ExportReport`]; the command renders it, asks the question on a
//! terminal and picks the exit status.

pub mod diff;
pub mod input;
mod preview;
mod report;
mod send;
pub mod state;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;

use crate::connector::able;
use crate::ctx::Ctx;
use crate::engine::target::Target;
use crate::interrupt::Interrupt;
use crate::output::progress::Progress;

use diff::{Deletes, DiffOptions};
use state::State;

pub use report::{DryRunReport, ExportReport, Problem, ProblemKind, RunReport, Sent};

/// Where the profiles come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProfilesFrom {
    /// A JSON lines, JSON array or CSV file (`--input FILE`).
    File(PathBuf),
    /// The `export` section of the folder's in.json.
    Section,
    /// Any source connector (`--from TARGET`).
    Source(Target),
}

/// An export run, as the command line asked for it.
#[derive(Debug, Clone)]
pub struct ExportPlan {
    pub to: Target,
    pub from: ProfilesFrom,
    pub batch_size: Option<usize>,
    pub deletes: Deletes,
    pub max_deletes: Option<u64>,
    pub full: bool,
    pub dry_run: bool,
    pub errors: Option<PathBuf>,
    pub yes: bool,
}

/// More deletes or clears than `--max-deletes`: the question a run asks
/// before it sends anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletesOverLimit {
    /// Deletes and clears the run would send.
    pub count: u64,
    /// `--max-deletes`, or its default.
    pub limit: u64,
    /// Profiles exported so far.
    pub exported: usize,
    /// The profiles it would delete or clear, in the order the run sends
    /// them, so the question can name them.
    pub profiles: Vec<Doomed>,
}

/// One profile a run would delete or clear.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Doomed {
    /// The profile id.
    pub id: String,
    /// The key the destination knows it by (an email, or the id again).
    pub key: String,
    /// Deleted (absent with `--deletes delete`, or marked `toDelete`);
    /// cleared otherwise.
    pub delete: bool,
}

/// Run the export `plan` asks for. `progress` watches the send phase;
/// `confirm` is asked before more deletes or clears than `--max-deletes`
/// (unless `--yes`), and a no ends the run before anything is sent.
pub async fn run(
    ctx: &Ctx,
    plan: ExportPlan,
    progress: &dyn Progress,
    confirm: &mut dyn FnMut(&DeletesOverLimit) -> Result<bool>,
) -> Result<ExportReport> {
    // Before any work: a signal while the profiles are still being read
    // stops the run cleanly (nothing sent, summary, exit 130).
    let interrupt = Interrupt::install()?;
    let started = Instant::now();

    // Open.
    let target = plan.to.resolve(ctx)?;
    let dest = ctx.open(&target.account)?;
    let state_path = state::path_for(&ctx.folder, &target.identity);
    // One writer at a time for the destination file and the export state,
    // held until the run returns; a dry run writes neither.
    let mut _locks = Vec::new();
    if !plan.dry_run {
        if let Some(file) = dest.written_file() {
            _locks.push(crate::lock::hold(ctx, file, "the destination", &interrupt).await?);
        }
        _locks.push(crate::lock::hold(ctx, &state_path, "the export state", &interrupt).await?);
    }
    let profiles = able(dest.as_ref(), dest.profiles(), "export profiles")?;
    let fields = profiles.export_fields().await?;
    // Memberships are exported only to a destination with the capability.
    let groups = profiles.groups().is_some() || profiles.whole().is_some();
    let code = dest.spec().code;

    // Read.
    let entries = input::read(ctx, &plan.from).await?;

    // Diff.
    let mut state = State::open(state_path)?;
    let before = state.load()?;
    let opts = DiffOptions {
        full: plan.full,
        deletes: plan.deletes,
    };
    let decisions = diff::plan(entries, &before, &fields, groups, code, opts);
    let predicted = diff::count(&decisions, groups);
    let limit = plan
        .max_deletes
        .unwrap_or_else(|| (before.len() as u64).div_ceil(10));
    let over_limit = (predicted.destructive > limit).then(|| DeletesOverLimit {
        count: predicted.destructive,
        limit,
        exported: before.len(),
        profiles: diff::destructive(&decisions),
    });
    ctx.out.verbose(&format!(
        "export to {} (state {}, {} profiles exported before): {} to create, {} to update, {} to delete, {} unchanged, {} memberships to add, {} to remove, {} invalid",
        target.account.source,
        state.path().display(),
        before.len(),
        predicted.created,
        predicted.updated,
        predicted.deleted,
        predicted.unchanged,
        predicted.groups_added,
        predicted.groups_removed,
        predicted.invalid
    ));

    // Preview, or ask.
    if plan.dry_run {
        let report = preview::dry_run(
            profiles,
            &decisions,
            predicted,
            over_limit,
            target.account.source.clone(),
            state.path().to_path_buf(),
        );
        return Ok(ExportReport::DryRun(Box::new(report)));
    }
    // Time at the prompt is not the run's: not in elapsedSecs, nor the rate.
    let mut prompted = std::time::Duration::ZERO;
    if let Some(over) = &over_limit {
        let asked = Instant::now();
        if !plan.yes && !confirm(over)? {
            return Ok(ExportReport::Declined);
        }
        prompted = asked.elapsed();
    }

    // Send. A remote destination gets batches of at most 100 profiles; a
    // file takes its largest batch, since each batch costs one rewrite of it.
    let batch = plan
        .batch_size
        .unwrap_or_else(|| match dest.written_file() {
            Some(_) => dest.spec().max_batch_size,
            None => dest.spec().max_batch_size.min(100),
        })
        .max(1);
    // Each chunk's state is saved once it is sent: what succeeded, and
    // nothing for what failed.
    let (invalid, mut tracks) = send::tracks(decisions);
    let identity = target.identity.clone();
    let mut save = |chunk: &[send::Track]| -> Result<()> {
        let changes = send::state_changes(chunk, groups);
        if !changes.is_empty() {
            state.save(&identity, &changes)?;
        }
        Ok(())
    };
    let (sent, interrupted) = send::send_all(
        profiles,
        &mut tracks,
        batch,
        &ctx.out,
        interrupt,
        progress,
        &mut save,
    )
    .await?;

    // Report.
    let done = report::Finished {
        invalid: &invalid,
        tracks: &tracks,
        sent,
        interrupted,
    };
    let mut report = report::run_report(
        done,
        started.elapsed().saturating_sub(prompted),
        target.account.source.clone(),
        state.path().to_path_buf(),
    );
    if let Some(path) = &plan.errors {
        let path = crate::config::resolve(&ctx.cwd, path);
        report::write_errors_file(&ctx.out, &path, &report.problems)?;
        report.errors_file = Some(path);
    }
    Ok(ExportReport::Run(Box::new(report)))
}
