//! `ferry export`: read the profiles, diff them against the destination's
//! export state, then send only what changed: deletes, creates (upserts by
//! key), updates with clears, then group memberships (each group ensured
//! once per run). Every profile ends `ok`, `skipped` (informational, never
//! retried) or failed (`invalid`, `rejected`, `error`); only what succeeded
//! advances the state, so a failed profile is sent again next run. The
//! profiles are sent a chunk at a time and each chunk's state is saved in
//! one transaction while the next is sent, so a run killed half-way keeps
//! what the destination acknowledged but the last two chunks.
//!
//! [`run`] goes through its phases in order: open the destination, read the
//! profiles ([`input`]) and sort out what is unchanged (`scan`, over
//! sorted runs, `runs`, and lines read light, `light`), preview (`preview`)
//! or ask before a mass delete, then the second pass as a pipeline: diff
//! the next chunk against the state (`planner`, [`diff`]) while this one
//! is sent (`send`) and the one before saved ([`state`]), and report
//! (`report`). It answers an
//! [`ExportReport`]; the command renders it, asks the question on a
//! terminal and picks the exit status.

pub mod diff;
pub mod input;
mod light;
mod planner;
mod preview;
mod report;
mod runs;
mod scan;
mod send;
pub mod state;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};

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

/// How many dry-run decisions are kept for the preview of the first requests.
const PREVIEW_DECISIONS: usize = 100;

/// Run the export `plan` asks for. `progress` watches the send phase;
/// `confirm` is asked before more deletes or clears than `--max-deletes`
/// (unless `--yes`), and a no ends the run before anything is sent.
///
/// Two passes keep the run's memory flat whatever its input: the first
/// (`scan::Scan`) reads the input once, counts what is unchanged and
/// spools the rest; the second diffs, sends and saves the state a chunk at
/// a time, up to four chunks in hand (`planner::Planner`, `Saves`): the
/// `toDelete` marks, then (with `--deletes`) the profiles that left the
/// input, then the rest.
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

    // First pass: read, and count what is unchanged.
    let input = input::Stream::open(ctx, &plan.from).await?;
    let mut scan = scan::Scan::run(
        input,
        &ctx.folder,
        &state_path,
        &fields,
        DiffOptions {
            full: plan.full,
            deletes: plan.deletes,
        },
        !plan.dry_run,
    )
    .await?;
    scan.count_absent(&fields, groups, plan.deletes)?;
    let mut state = if plan.dry_run {
        State::open_read(state_path)?
    } else {
        State::open(state_path)?
    };
    let exported = state.count()?;
    let limit = plan.max_deletes.unwrap_or_else(|| exported.div_ceil(10));
    let over_limit = (scan.destructive > limit).then(|| DeletesOverLimit {
        count: scan.destructive,
        limit,
        exported: exported as usize,
        profiles: scan.doomed.clone(),
    });
    ctx.out.verbose(&format!(
        "export to {} (state {}, {exported} profiles exported before): {} profiles read ({} from their text alone), {} unchanged, {} to diff and send, {} left the input",
        target.account.source,
        state.path().display(),
        scan.profiles,
        scan.light,
        scan.unchanged,
        scan.spooled,
        scan.absent,
    ));

    // A batch for a remote destination holds at most 100 profiles; a local
    // store takes its largest batch, since each batch costs one rewrite of
    // a file, or one transaction.
    let batch = plan
        .batch_size
        .unwrap_or_else(|| {
            let spec = dest.spec();
            if dest.written_file().is_some() || spec.store.is_some() {
                spec.max_batch_size
            } else {
                spec.max_batch_size.min(100)
            }
        })
        .max(1);
    let chunk = send::chunk_size(batch);
    let diffing = planner::Diffing {
        fields: fields.clone(),
        groups,
        code: code.to_string(),
        opts: DiffOptions {
            full: plan.full,
            deletes: plan.deletes,
        },
    };
    let (read, unchanged) = (scan.profiles, scan.unchanged);
    let total = scan.spooled
        + if plan.deletes == Deletes::None {
            0
        } else {
            scan.absent
        };
    let rehash = scan.take_rehash();

    // Preview: the whole plan counted, the first decisions kept.
    if plan.dry_run {
        let mut predicted = diff::Counts {
            unchanged,
            ..Default::default()
        };
        let mut kept = Kept::default();
        let path = state.path().to_path_buf();
        let parts = planner::Parts::new(scan, state, chunk, diffing)?;
        let mut planned = planner::Planner::start(parts, |d| d)?;
        let read = async {
            while let Some(decisions) = planned.next().await? {
                predicted.add(&diff::count(&decisions, groups));
                kept.keep(decisions);
            }
            anyhow::Ok(())
        }
        .await;
        let finished = planned.finish().await;
        read?;
        finished?;
        let report = preview::dry_run(
            profiles,
            &kept.decisions,
            predicted,
            over_limit,
            target.account.source.clone(),
            path,
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
    // Rows an older ferry wrote without a hash, found unchanged.
    state.set_hashes(&rehash)?;

    // Second pass: diff, send and save a chunk at a time (deletes first,
    // then the profiles that left the input, then the rest). Up to four
    // chunks are in hand at once: the planner reads the state as the run found it,
    // on a connection of its own, and plans the next chunk while this one
    // is sent and the one before saved (what succeeded, nothing for what
    // failed), so a run killed half-way keeps what the destination holds
    // but the last two chunks, which the next run sends again.
    let state_path = state.path().to_path_buf();
    let parts = planner::Parts::new(scan, State::open_read(state_path.clone())?, chunk, diffing)?;
    let mut planned = planner::Planner::start(parts, send::tracks)?;
    let mut saves = Saves::new(state, target.identity.clone())?;
    let watch = Watch::new(progress);
    progress.start(0, Some(total));
    let mut tally = report::Tally::default();
    tally.unchanged(unchanged);
    let mut sent = Sent::default();
    let mut ensured = send::Groups::new();
    let mut interrupted = false;
    let second = async {
        while let Some((invalid, mut tracks)) = planned.next().await? {
            watch.skip(invalid.len() as u64);
            // After a stop nothing more is sent: the invalid entries are
            // still reported, and what would have been sent is counted as
            // not sent.
            interrupted = interrupted || interrupt.is_set();
            if interrupted {
                tally.add(&invalid, &[]);
                tally.not_sent(tracks.iter().filter(|t| t.p.sends()).count() as u64);
                continue;
            }
            let (part, stopped) = send::send_all(
                profiles,
                &mut tracks,
                batch,
                &ctx.out,
                interrupt.clone(),
                &watch,
                &mut ensured,
            )
            .await;
            let changes = send::state_changes(&mut tracks, groups);
            let rehash = send::unchanged_hashes(&tracks);
            watch.next_part();
            sent.add(&part);
            tally.add(&invalid, &tracks);
            interrupted = stopped;
            saves.save(changes, rehash, (invalid, tracks)).await?;
        }
        anyhow::Ok(())
    };
    let second = second.await;
    // Whatever stopped the run, what was sent is saved, and the planner's
    // thread (the first pass's scratch files) gone, before it returns.
    let saved = saves.settle().await;
    let finished = planned.finish().await;
    second?;
    saved?;
    finished?;
    progress.finish();

    // Report.
    let mut report = tally.report(
        sent,
        interrupted,
        read,
        started.elapsed().saturating_sub(prompted),
        target.account.source.clone(),
        state_path,
    );
    if let Some(path) = &plan.errors {
        let path = crate::config::resolve(&ctx.cwd, path);
        report::write_errors_file(&ctx.out, &path, &report.problems)?;
        report.errors_file = Some(path);
    }
    Ok(ExportReport::Run(Box::new(report)))
}

/// A run's state saves, each on a blocking thread while the run sends the
/// next chunk; one at a time, in the order the chunks were sent. The
/// state's log is folded into its file apart from the saves
/// ([`State::checkpoint_apart`]), so no save waits for that.
struct Saves {
    /// The state, while no save holds it.
    state: Option<State>,
    /// The save in progress, which hands the state back.
    pending: Option<tokio::task::JoinHandle<Result<State>>>,
    /// The destination, as the state records it.
    identity: String,
}

impl Saves {
    fn new(mut state: State, identity: String) -> Result<Saves> {
        state.checkpoint_apart()?;
        Ok(Saves {
            state: Some(state),
            pending: None,
            identity,
        })
    }

    /// Save one chunk's rows and hashes, once the save before it is done.
    /// `spent` (the chunk's profiles) is freed there too: a chunk's
    /// thousand profiles, allocated on the planner's thread, took the
    /// sending thread about 2% of a first run to free.
    async fn save(
        &mut self,
        changes: Vec<(String, Option<state::Written>)>,
        rehash: Vec<(String, String)>,
        spent: impl Send + 'static,
    ) -> Result<()> {
        self.settle().await?;
        let mut state = self
            .state
            .take()
            .context("the export state was lost by a failed save")?;
        let identity = self.identity.clone();
        self.pending = Some(tokio::task::spawn_blocking(move || {
            if !changes.is_empty() {
                state.save(&identity, &changes)?;
            }
            if !rehash.is_empty() {
                state.set_hashes(&rehash)?;
            }
            drop(spent);
            Ok(state)
        }));
        Ok(())
    }

    /// Wait for the save in progress; its error, if it failed.
    async fn settle(&mut self) -> Result<()> {
        if let Some(pending) = self.pending.take() {
            let state = pending
                .await
                .context("saving the export state stopped unexpectedly")??;
            self.state = Some(state);
        }
        Ok(())
    }
}

/// A dry run's decisions kept for its report: every invalid one (the
/// report lists them) and the first that send, for the preview.
#[derive(Default)]
struct Kept {
    decisions: Vec<diff::Decision>,
    sending: usize,
}

impl Kept {
    fn keep(&mut self, decisions: Vec<diff::Decision>) {
        for d in decisions {
            match &d {
                diff::Decision::Invalid(_) => self.decisions.push(d),
                diff::Decision::Planned(p) if p.sends() && self.sending < PREVIEW_DECISIONS => {
                    self.sending += 1;
                    self.decisions.push(d);
                }
                diff::Decision::Planned(_) => {}
            }
        }
    }
}

/// The run's one progress bar across its chunks: each chunk's `send_all`
/// reports from zero, and this adds what the chunks before it settled.
struct Watch<'a> {
    inner: &'a dyn Progress,
    base: std::sync::Mutex<(u64, u64, u64, u64)>,
}

impl<'a> Watch<'a> {
    fn new(inner: &'a dyn Progress) -> Watch<'a> {
        Watch {
            inner,
            base: std::sync::Mutex::new((0, 0, 0, 0)),
        }
    }

    /// `n` entries of a chunk need no sending (invalid ones): settled.
    fn skip(&self, n: u64) {
        if let Ok(mut b) = self.base.lock() {
            b.0 += n;
        }
    }

    /// A chunk is done: what it settled becomes the base of the next.
    fn next_part(&self) {
        if let Ok(mut b) = self.base.lock() {
            *b = (b.0 + b.2, b.1 + b.3, 0, 0);
        }
    }
}

impl Progress for Watch<'_> {
    fn start(&self, _done: u64, _total: Option<u64>) {}
    fn total(&self, _total: u64) {}
    fn update(&self, done: u64, failed: u64) {
        if let Ok(mut b) = self.base.lock() {
            b.2 = done;
            b.3 = failed;
            self.inner.update(b.0 + done, b.1 + failed);
        }
    }
    fn finish(&self) {}
}
