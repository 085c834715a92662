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

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::connector::raw::{PlainIds, RawRecords};
use crate::connector::{Action, Connector, Outcome, Position, Record, Records, WriteOp};
use crate::ctx::Ctx;
use crate::engine::checkpoint::{self, Checkpoint, Counts};
use crate::engine::interrupt::Interrupt;
use crate::engine::mapping::{Checked, Mapping, Source, Validator};
use crate::engine::read_ahead::{PageReader, Rows};
use crate::engine::target::Target;
use crate::error::{failed, find_failure, usage, Failure, Kind};
use crate::output::progress::{self, Progress};

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

/// One batch on its way from the reader to the commit stage.
struct Batch {
    /// The source offset of its first record.
    first: u64,
    /// The records to write and their source offsets.
    records: Rows,
    offsets: Vec<u64>,
    /// Records validation refused, already rendered as rejects-file lines.
    rejects: Vec<Value>,
    /// One line per value validation set to null, naming its record;
    /// shown when the batch is committed ([`show_warnings`]).
    warned: Vec<String>,
    counts: Counts,
    /// Where the source continues after this batch.
    end: Position,
    /// The source has nothing after this batch.
    end_of_source: bool,
    /// At the end of the source: where its last page started.
    last_page: Option<Position>,
    /// The number of records in the whole source, when it says.
    total: Option<u64>,
}

/// A batch being written.
struct InFlight {
    batch: Batch,
    /// The records sent, kept to report the ones the destination refuses.
    sent: Sent,
    task: JoinHandle<Result<Vec<Outcome>>>,
}

/// A batch's records, shared between the write and the commit stage.
#[derive(Clone)]
enum Sent {
    Parsed(Records),
    Raw(Arc<RawRecords>),
}

impl Sent {
    fn new(rows: Rows) -> Sent {
        match rows {
            Rows::Parsed(r) => Sent::Parsed(Records::new(r)),
            Rows::Raw(r) => Sent::Raw(Arc::new(r)),
        }
    }

    fn len(&self) -> usize {
        match self {
            Sent::Parsed(r) => r.len(),
            Sent::Raw(r) => r.len(),
        }
    }

    /// Record `i`, for the rejects file.
    fn record(&self, i: usize) -> Value {
        match self {
            Sent::Parsed(r) => Value::Object(r[i].clone()),
            Sent::Raw(r) => r
                .record(i)
                .map_or_else(|_| Value::String(r.get(i).to_string()), Value::Object),
        }
    }

    async fn write(self, dest: &dyn Connector) -> Result<Vec<Outcome>> {
        match self {
            _ if self.len() == 0 => Ok(Vec::new()),
            Sent::Parsed(r) => dest.upsert_batch(r).await,
            Sent::Raw(r) => dest.upsert_raw(r).await,
        }
    }
}

/// How one attempt ended.
enum Ending {
    /// The source was read to the end, or to `--limit`.
    Done,
    /// A batch (or the source) failed; the error and where it happened.
    Failed(anyhow::Error),
    /// Ctrl-C.
    Interrupted,
}

/// What the pipeline needs, opened once per attempt.
struct Setup {
    source: Arc<dyn Connector>,
    dest: Arc<dyn Connector>,
    from: String,
    to: String,
    mapping: Arc<Mapping>,
    validator: Arc<Validator>,
    batch_size: usize,
    concurrency: usize,
    state: PathBuf,
    rejects: PathBuf,
    /// Records pass through as the source's JSON text
    /// ([`crate::connector::raw`]).
    raw: bool,
    /// How many values set to null this invocation has named so far.
    warned: std::sync::atomic::AtomicUsize,
}

/// Values set to null named one by one on stderr, unless `-v` names all.
const WARN_LINES: usize = 20;

/// Name the records whose values validation set to null: every one with
/// `-v`, else the first [`WARN_LINES`] of the invocation and then one line
/// saying the others are only counted (a migration with a bad field in
/// every record would otherwise bury the progress and the summary).
fn show_warnings(setup: &Setup, ctx: &Ctx, lines: &[String]) {
    use std::sync::atomic::Ordering;
    let all = ctx.out.verbosity() >= crate::output::Verbosity::Verbose;
    for line in lines {
        let n = setup.warned.fetch_add(1, Ordering::Relaxed);
        if all || n < WARN_LINES {
            ctx.out.warn(line);
        } else if n == WARN_LINES {
            ctx.out.warn(&format!(
                "more values were set to null than the {WARN_LINES} named above; the summary counts every one under warnings.byReason, and -v names each record"
            ));
        }
    }
}

/// Run the import described by `plan`.
pub async fn run(plan: &ImportPlan, ctx: &Ctx) -> Result<ExitCode> {
    // Installed first, so a Ctrl-C, SIGTERM or SIGHUP at any point after
    // this is ours to handle.
    let interrupt = Interrupt::install()?;
    let setup = setup(plan, ctx).await?;
    if plan.dry_run {
        return dry_run(plan, &setup, ctx).await;
    }
    // One writer at a time for the destination file and the checkpoint,
    // held until the run returns.
    let mut _locks = Vec::new();
    if let Some(file) = setup.dest.written_file() {
        _locks.push(crate::lock::hold(ctx, file, "the destination", &interrupt).await?);
    }
    _locks.push(crate::lock::hold(ctx, &setup.state, "the checkpoint", &interrupt).await?);
    let progress = progress::for_stderr(
        ctx.stderr_tty,
        ctx.out.verbosity() == crate::output::Verbosity::Quiet,
    );
    let started = Instant::now();
    let mut run_counts = Counts::default();
    let mut start = plan.start;
    let mut retried = false;
    loop {
        let (ending, cp) = attempt(
            &setup,
            ctx,
            start,
            plan.limit.map(|l| l.saturating_sub(run_counts.read)),
            &mut run_counts,
            progress.as_ref(),
            &interrupt,
        )
        .await?;
        let resume = resume_command(
            plan,
            ctx,
            plan.limit.map(|l| l.saturating_sub(run_counts.read)),
        );
        match ending {
            Ending::Done => {
                progress.finish();
                summary(ctx, &setup, &run_counts, started, &cp, "done")?;
                let code = if run_counts.rejected > 0 { 3 } else { 0 };
                return Ok(ExitCode::from(code));
            }
            Ending::Interrupted => {
                progress.finish();
                summary(ctx, &setup, &run_counts, started, &cp, "interrupted")?;
                return Err(Failure::new(
                    Kind::Interrupted,
                    format!(
                        "import interrupted; the checkpoint is saved at offset {} in {}",
                        cp.position.offset,
                        setup.state.display()
                    ),
                )
                .hint(format!("resume with: {resume}"))
                .into());
            }
            Ending::Failed(err) => {
                progress.finish();
                let kind = find_failure(&err).map_or(Kind::Failed, |f| f.kind);
                let stop = Failure::new(
                    if kind == Kind::Usage {
                        Kind::Usage
                    } else {
                        Kind::Failed
                    },
                    format!(
                        "import stopped at offset {}; the checkpoint is saved in {}",
                        cp.position.offset,
                        setup.state.display()
                    ),
                )
                .hint(match find_failure(&err).and_then(|f| f.hint.as_deref()) {
                    // The cause knows what to fix (a locked or full database...).
                    Some(fix) => format!("{fix}; then resume with: {resume}"),
                    None => format!("fix the cause, then resume with: {resume}"),
                });
                if !retried && ctx.interactive() && ask_resume(plan, ctx, &err, &cp)? {
                    retried = true;
                    start = Start::Resume;
                    run_counts.failed = 0;
                    continue;
                }
                summary(ctx, &setup, &run_counts, started, &cp, "stopped")?;
                return Err(err.context(stop));
            }
        }
    }
}

/// On a terminal: say what failed and ask whether to try again now.
fn ask_resume(plan: &ImportPlan, ctx: &Ctx, err: &anyhow::Error, cp: &Checkpoint) -> Result<bool> {
    ctx.out.warn(&format!("the import stopped: {err:#}"));
    if plan.yes {
        ctx.out.info("resuming once more (--yes)");
        return Ok(true);
    }
    // A prompt that cannot be answered (closed terminal, Ctrl-C) is a no:
    // the run then stops with the resume command.
    Ok(dialoguer::Confirm::new()
        .with_prompt(format!("Resume now from offset {}?", cp.position.offset))
        .default(true)
        .interact()
        .unwrap_or(false))
}

/// Open both connectors and work out sizes, paths, the map and the fields.
async fn setup(plan: &ImportPlan, ctx: &Ctx) -> Result<Setup> {
    plan.from_target.must_exist(&plan.from)?;
    let source: Arc<dyn Connector> = Arc::from(plan.from_target.open(ctx, &plan.from)?);
    let dest: Arc<dyn Connector> = Arc::from(plan.to_target.open(ctx, &plan.to)?);
    if !source.spec().can(Action::ReadPage) {
        let code = source.spec().code;
        return Err(crate::error::unsupported(code, "be an import source (read pages)").into());
    }
    if !dest.spec().can(Action::UpsertBatch) {
        let code = dest.spec().code;
        return Err(
            crate::error::unsupported(code, "be an import destination (batch upsert)").into(),
        );
    }
    let from = plan.from_target.canonical();
    let to = plan.to_target.canonical();
    let max = dest.spec().max_batch_size.max(1);
    let batch_size = match plan.batch_size {
        Some(n) if n > max => {
            return Err(usage(format!(
                "--batch-size {n} is more than connector {} accepts at once ({max})",
                dest.spec().code
            ))
            .hint(format!("pass --batch-size {max} or less"))
            .into())
        }
        Some(n) => n,
        None => max,
    };
    let concurrency = plan.concurrency.unwrap_or(dest.spec().parallelism).max(1);
    let id_field = dest.id_field().to_string();
    let entries = match &plan.map {
        Some(file) => Mapping::parse_map(crate::config::json::read_file(file)?, file)?,
        None => Vec::new(),
    };
    let mapping = Mapping {
        entries,
        id_from: plan.id_field.as_deref().map(Source::path),
        id_field: id_field.clone(),
    };
    let fields = dest.fields().await?;
    let validator = Validator::new(&id_field, fields);
    let state = plan
        .state
        .clone()
        .unwrap_or_else(|| checkpoint::default_path(&ctx.folder, &from, &to));
    let rejects = plan
        .rejects
        .clone()
        .unwrap_or_else(|| checkpoint::default_rejects_path(&ctx.folder, &from, &to));
    // Passing records through unparsed is worth it only when both ends
    // speak JSON text natively and nothing would change a record.
    let raw = mapping.is_identity()
        && validator.checks_only_a_text_id()
        && source.reads_raw()
        && dest.writes_raw();
    ctx.out.verbose(&format!(
        "import {} -> {}: batches of {batch_size}, {concurrency} at once, checkpoint {}{}",
        plan.from,
        plan.to,
        state.display(),
        if raw {
            "; records pass through as JSON text"
        } else {
            ""
        }
    ));
    Ok(Setup {
        source,
        dest,
        from,
        to,
        mapping: Arc::new(mapping),
        validator: Arc::new(validator),
        batch_size,
        concurrency,
        state,
        rejects,
        raw,
        warned: Default::default(),
    })
}

/// The checkpoint a run starts from, and the rejects file prepared for it.
fn starting_point(setup: &Setup, ctx: &Ctx, start: Start) -> Result<Checkpoint> {
    let earlier = Checkpoint::load(&setup.state)?;
    let cp = match start {
        Start::Resume => {
            let Some(cp) = earlier else {
                return Err(usage(format!("there is no checkpoint to resume at {}", setup.state.display()))
                    .hint("run the import without --resume to start it (or with --offset N), or pass the checkpoint with --state FILE")
                    .into());
            };
            if cp.from != setup.from || cp.to != setup.to {
                return Err(usage(format!(
                    "checkpoint {} belongs to another import: from {} to {}, not from {} to {}",
                    setup.state.display(),
                    cp.from,
                    cp.to,
                    setup.from,
                    setup.to
                ))
                .hint("resume with the --from and --to it was made with, or start this import without --resume (or with another --state FILE)")
                .into());
            }
            cut_rejects(&setup.rejects, cp.rejects_bytes)?;
            cp
        }
        Start::Beginning | Start::Offset(_) => {
            if earlier.is_some() && start == Start::Beginning {
                ctx.out.info(&format!(
                    "starting over; the checkpoint of an earlier run in {} is replaced (pass --resume to continue it)",
                    setup.state.display()
                ));
            }
            let offset = match start {
                Start::Offset(n) => n,
                _ => 0,
            };
            cut_rejects(&setup.rejects, 0)?;
            Checkpoint::new(&setup.from, &setup.to, Position::at_offset(offset))
        }
    };
    Ok(cp)
}

/// Cut the rejects file back to `len` bytes (remove it at 0), dropping lines
/// of batches that were never committed.
fn cut_rejects(path: &Path, len: u64) -> Result<()> {
    if len == 0 {
        return match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(anyhow::Error::new(e)
                .context(format!("could not reset rejects file {}", path.display()))),
            _ => Ok(()),
        };
    }
    let file = match OpenOptions::new().write(true).open(path) {
        Ok(f) => f,
        // Removed by the user: nothing to cut.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(anyhow::Error::new(e)
                .context(format!("could not open rejects file {}", path.display())))
        }
    };
    if file.metadata()?.len() > len {
        file.set_len(len)
            .with_context(|| format!("could not cut rejects file {}", path.display()))?;
    }
    Ok(())
}

/// One pass of the pipeline from `start`; answers how it ended and the last
/// saved checkpoint. `run_counts` gathers the counts of this invocation.
#[allow(clippy::too_many_arguments)]
async fn attempt(
    setup: &Setup,
    ctx: &Ctx,
    start: Start,
    limit: Option<u64>,
    run_counts: &mut Counts,
    progress: &dyn Progress,
    interrupt: &Interrupt,
) -> Result<(Ending, Checkpoint)> {
    let mut cp = starting_point(setup, ctx, start)?;
    if cp.finished && start == Start::Resume {
        ctx.out.info(&format!(
            "the import already read its source to the end; reading on from offset {} for records added since",
            cp.position.offset
        ));
    }
    let (from, skip) = cp.resume_from();
    cp.finished = false;
    let mut rejects = RejectsFile::new(&setup.rejects);
    let (tx, mut rx) = mpsc::channel::<Batch>(setup.concurrency);
    let reader = tokio::spawn(read_batches(
        PageReader::new(Arc::clone(&setup.source), setup.raw).skipping_before(skip),
        from,
        setup.batch_size,
        limit,
        Arc::clone(&setup.mapping),
        Arc::clone(&setup.validator),
        tx,
    ));
    progress.start(cp.position.offset, None);
    let mut inflight: VecDeque<InFlight> = VecDeque::new();
    let mut reader_done = false;
    let mut stopping = false;
    let mut interrupted = false;
    let mut failure: Option<anyhow::Error> = None;
    loop {
        if inflight.is_empty() && (reader_done || stopping) {
            break;
        }
        let room = inflight.len() < setup.concurrency;
        tokio::select! {
            biased;
            () = interrupt.wait(), if !interrupted => {
                interrupted = true;
                stopping = true;
                rx.close();
                ctx.out.info("interrupted: finishing the batches in flight (the checkpoint will be saved); interrupt again to stop at once");
            }
            joined = async { (&mut inflight.front_mut().expect("checked non-empty").task).await }, if !inflight.is_empty() => {
                let Some(mut done) = inflight.pop_front() else { continue };
                let outcome = match joined {
                    Ok(r) => r,
                    Err(e) => Err(anyhow::Error::new(e).context("a batch write stopped unexpectedly")),
                };
                if stopping && failure.is_some() {
                    // After a failure later batches are not committed: the
                    // checkpoint stays before the failed one.
                    continue;
                }
                let warned = std::mem::take(&mut done.batch.warned);
                match commit(setup, &mut cp, &mut rejects, done.batch, done.sent, outcome) {
                    Ok(counts) => {
                        show_warnings(setup, ctx, &warned);
                        run_counts.add(&counts);
                        progress.update(cp.position.offset, run_counts.rejected);
                    }
                    Err((records, err)) => {
                        run_counts.failed += records;
                        failure = Some(err);
                        stopping = true;
                        rx.close();
                    }
                }
            }
            msg = rx.recv(), if !stopping && !reader_done && room => match msg {
                Some(mut batch) => {
                    if let Some(total) = batch.total {
                        progress.total(total);
                    }
                    let sent = Sent::new(std::mem::replace(&mut batch.records, Rows::Parsed(Vec::new())));
                    let records = sent.clone();
                    let dest = Arc::clone(&setup.dest);
                    let task = tokio::spawn(async move { records.write(dest.as_ref()).await });
                    inflight.push_back(InFlight { batch, sent, task });
                }
                None => reader_done = true,
            }
        }
    }
    if !reader_done {
        // Stopped early: the reader's pages are no longer wanted.
        reader.abort();
    } else if failure.is_none() {
        match reader.await {
            Ok(Err(e)) => failure = Some(e.context("could not read the source")),
            Err(e) if !e.is_cancelled() => {
                failure =
                    Some(anyhow::Error::new(e).context("the source reader stopped unexpectedly"))
            }
            _ => {}
        }
    }
    cp.rejects_bytes = rejects.finish()?;
    cp.save(&setup.state)?;
    let ending = match (failure, interrupted) {
        (Some(e), _) => Ending::Failed(e),
        (None, true) => Ending::Interrupted,
        (None, false) => Ending::Done,
    };
    Ok((ending, cp))
}

/// Take a written batch into the checkpoint: rejects to the file, counts,
/// position, then save. On a batch failure answer its size and the error.
fn commit(
    setup: &Setup,
    cp: &mut Checkpoint,
    rejects: &mut RejectsFile,
    batch: Batch,
    sent: Sent,
    outcome: Result<Vec<Outcome>>,
) -> std::result::Result<Counts, (u64, anyhow::Error)> {
    let size = sent.len() as u64;
    let fail = |e: anyhow::Error| (size, e);
    let outcomes = outcome.map_err(|e| {
        fail(e.context(format!(
            "writing the batch of {size} records from offset {} failed",
            batch.first
        )))
    })?;
    if outcomes.len() != sent.len() {
        return Err(fail(
            failed(format!(
                "connector {} answered {} outcomes for a batch of {size} records",
                setup.dest.spec().code,
                outcomes.len()
            ))
            .into(),
        ));
    }
    let mut counts = batch.counts;
    for line in &batch.rejects {
        rejects.write(line).map_err(fail)?;
    }
    for (i, (outcome, offset)) in outcomes.into_iter().zip(batch.offsets).enumerate() {
        match outcome {
            Outcome::Ok { .. } => counts.written += 1,
            Outcome::Rejected { reason, .. } => {
                counts.rejected += 1;
                *counts.rejected_by_reason.entry(reason.clone()).or_default() += 1;
                let line = json!({ "record": sent.record(i), "reason": reason, "offset": offset });
                rejects.write(&line).map_err(fail)?;
            }
        }
    }
    if size > 0 {
        counts.batches = 1;
    }
    // Rejects reach the disk before the checkpoint that counts them.
    cp.rejects_bytes = rejects.flush().map_err(fail)?;
    cp.position = batch.end;
    cp.finished = batch.end_of_source;
    cp.last_page = batch.last_page;
    cp.counts.add(&counts);
    cp.save(&setup.state).map_err(fail)?;
    Ok(counts)
}

/// The rejects file, opened on the first reject.
struct RejectsFile {
    path: PathBuf,
    file: Option<BufWriter<File>>,
    dirty: bool,
}

impl RejectsFile {
    fn new(path: &Path) -> RejectsFile {
        RejectsFile {
            path: path.to_path_buf(),
            file: None,
            dirty: false,
        }
    }

    fn write(&mut self, line: &Value) -> Result<()> {
        if self.file.is_none() {
            if let Some(dir) = self.path.parent() {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("could not create folder {}", dir.display()))?;
            }
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
                .with_context(|| format!("could not open rejects file {}", self.path.display()))?;
            self.file = Some(BufWriter::new(file));
        }
        if let Some(w) = self.file.as_mut() {
            serde_json::to_writer(&mut *w, line)?;
            w.write_all(b"\n")
                .with_context(|| format!("could not write rejects file {}", self.path.display()))?;
            self.dirty = true;
        }
        Ok(())
    }

    /// Flush to disk and answer the file's length (0 when there is none).
    fn flush(&mut self) -> Result<u64> {
        let Some(w) = self.file.as_mut() else {
            return Ok(0);
        };
        if self.dirty {
            w.flush()
                .with_context(|| format!("could not write rejects file {}", self.path.display()))?;
            w.get_ref()
                .sync_data()
                .with_context(|| format!("could not flush rejects file {}", self.path.display()))?;
            self.dirty = false;
        }
        Ok(w.get_ref().metadata()?.len())
    }

    fn finish(&mut self) -> Result<u64> {
        match self.file {
            Some(_) => self.flush(),
            None => Ok(std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0)),
        }
    }
}

/// The reader: pages the source into batches of whole pages, maps and
/// validates them, and sends them down the bounded queue. It stops at the
/// end of the source, at `limit`, or when the queue is closed.
async fn read_batches(
    mut reader: PageReader,
    mut pos: Position,
    batch_size: usize,
    limit: Option<u64>,
    mapping: Arc<Mapping>,
    validator: Arc<Validator>,
    tx: mpsc::Sender<Batch>,
) -> Result<()> {
    let mut left = limit.unwrap_or(u64::MAX);
    let ids = PlainIds::new(&mapping.id_field);
    loop {
        let batch = read_batch(
            &mut reader,
            &mut pos,
            batch_size,
            &mut left,
            &mapping,
            &validator,
            &ids,
        )
        .await?;
        let last = batch.end_of_source || left == 0;
        if tx.send(batch).await.is_err() || last {
            return Ok(());
        }
    }
}

/// Read one batch from `pos`, moving `pos` past it.
async fn read_batch(
    reader: &mut PageReader,
    pos: &mut Position,
    batch_size: usize,
    left: &mut u64,
    mapping: &Mapping,
    validator: &Validator,
    ids: &PlainIds,
) -> Result<Batch> {
    let mut batch = Batch {
        first: pos.offset,
        records: if reader.raw() {
            Rows::Raw(RawRecords::default())
        } else {
            Rows::Parsed(Vec::with_capacity(batch_size.min(10_000)))
        },
        offsets: Vec::new(),
        rejects: Vec::new(),
        warned: Vec::new(),
        counts: Counts::default(),
        end: pos.clone(),
        end_of_source: false,
        last_page: None,
        total: None,
    };
    let mut read = 0usize;
    while read < batch_size && *left > 0 {
        let want = (batch_size - read).min(usize::try_from(*left).unwrap_or(usize::MAX));
        let page = reader.read(pos, want, *left).await?;
        let n = page.rows.len();
        let code = reader.source().spec().code;
        if n > want {
            return Err(failed(format!(
                "connector {code} answered {n} records when asked for at most {want} (offset {})",
                pos.offset
            ))
            .into());
        }
        if n == 0 && page.next.is_some() {
            return Err(failed(format!(
                "connector {code} answered an empty page at offset {} without saying the source ended",
                pos.offset
            ))
            .hint("this is a bug in the connector: an empty page must be the last one")
            .into());
        }
        if page.next.as_ref() == Some(pos) {
            return Err(failed(format!(
                "connector {code} answered the same position again at offset {}; stopping rather than looping",
                pos.offset
            ))
            .into());
        }
        // A resumed finished import reads its last page again: the records
        // before the checkpoint's offset were imported already.
        let skip = usize::try_from(reader.skip_before().saturating_sub(pos.offset))
            .unwrap_or(usize::MAX)
            .min(n);
        match page.rows {
            Rows::Parsed(records) => {
                for (i, record) in records.into_iter().enumerate().skip(skip) {
                    take(
                        &mut batch,
                        pos.offset + i as u64,
                        record,
                        mapping,
                        validator,
                        reader.source(),
                    )?;
                }
            }
            Rows::Raw(records) => {
                if let Rows::Raw(out) = &mut batch.records {
                    if out.is_empty() {
                        // Room for the whole batch at this page's record
                        // size, rather than growing it page by page.
                        let per = records.bytes() / n.max(1) + 1;
                        out.reserve(batch_size, per * batch_size * 9 / 8);
                    }
                }
                for (i, json) in records.iter().enumerate().skip(skip) {
                    let offset = pos.offset + i as u64;
                    // A record with a plain text id passes validation
                    // unchanged: it goes as the source sent it.
                    if let (Rows::Raw(out), Some(id)) = (&mut batch.records, ids.of(json)) {
                        out.push_keyed(json, id);
                        batch.offsets.push(offset);
                        continue;
                    }
                    let record = records.record(i)?;
                    take(
                        &mut batch,
                        offset,
                        record,
                        mapping,
                        validator,
                        reader.source(),
                    )?;
                }
            }
        }
        let fresh = n - skip;
        read += fresh;
        batch.total = page.total.or(batch.total);
        *left = left.saturating_sub(fresh as u64);
        batch.counts.read += fresh as u64;
        match page.next {
            Some(next) => *pos = next,
            None => {
                batch.last_page = Some(pos.clone());
                *pos = Position::at_offset(pos.offset + n as u64);
                batch.end_of_source = true;
                break;
            }
        }
    }
    batch.end = pos.clone();
    Ok(batch)
}

/// Map and validate one record into `batch`, or into its rejects (as the
/// source read it, when the source itself refuses it).
fn take(
    batch: &mut Batch,
    offset: u64,
    record: Record,
    mapping: &Mapping,
    validator: &Validator,
    source: &dyn Connector,
) -> Result<()> {
    let checked = match source.source_reject(&record) {
        Some(reason) => Checked::Rejected { record, reason },
        None => match mapping.apply(record) {
            Checked::Valid { record, .. } => validator.check(record),
            refused => refused,
        },
    };
    match checked {
        Checked::Valid { record, warnings } => {
            for w in warnings {
                batch.counts.warnings += 1;
                let id = record
                    .get(&mapping.id_field)
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                batch.warned.push(w.line(id, offset));
                *batch.counts.warnings_by_reason.entry(w.reason).or_default() += 1;
            }
            batch.records.push(record, &mapping.id_field)?;
            batch.offsets.push(offset);
        }
        Checked::Rejected { record, reason } => {
            batch.counts.rejected += 1;
            *batch
                .counts
                .rejected_by_reason
                .entry(reason.clone())
                .or_default() += 1;
            batch
                .rejects
                .push(json!({ "record": record, "reason": reason, "offset": offset }));
        }
    }
    Ok(())
}

/// `--dry-run`: the first batch as the destination would receive it, and
/// what validation would reject. Nothing is written, not even a checkpoint.
async fn dry_run(plan: &ImportPlan, setup: &Setup, ctx: &Ctx) -> Result<ExitCode> {
    let mut reader = PageReader::new(Arc::clone(&setup.source), false);
    let mut pos = match plan.start {
        Start::Resume => match Checkpoint::load(&setup.state)? {
            Some(cp) => {
                let (from, skip) = cp.resume_from();
                reader = reader.skipping_before(skip);
                from
            }
            None => {
                return Err(usage(format!(
                    "there is no checkpoint to resume at {}",
                    setup.state.display()
                ))
                .into())
            }
        },
        Start::Offset(n) => Position::at_offset(n),
        Start::Beginning => Position::start(),
    };
    let mut left = plan.limit.unwrap_or(u64::MAX);
    let batch = read_batch(
        &mut reader,
        &mut pos,
        setup.batch_size,
        &mut left,
        &setup.mapping,
        &setup.validator,
        &PlainIds::new(&setup.mapping.id_field),
    )
    .await?;
    show_warnings(setup, ctx, &batch.warned);
    let requests = setup
        .dest
        .preview(&WriteOp::UpsertBatch(batch.records.into_records()?))?;
    ctx.out.result(&json!({
        "dryRun": true,
        "read": batch.counts.read,
        "requests": requests,
        "rejected": batch.rejects,
        "warnings": batch.counts.warnings_by_reason,
    }))?;
    Ok(ExitCode::SUCCESS)
}

/// The one JSON summary on stdout.
fn summary(
    ctx: &Ctx,
    setup: &Setup,
    counts: &Counts,
    started: Instant,
    cp: &Checkpoint,
    status: &str,
) -> Result<()> {
    let elapsed = started.elapsed().as_secs_f64();
    let per_sec = if elapsed > 0.0 {
        counts.read as f64 / elapsed
    } else {
        0.0
    };
    let rejects = setup
        .rejects
        .exists()
        .then(|| setup.rejects.display().to_string());
    ctx.out.result(&json!({
        "status": status,
        "read": counts.read,
        "written": counts.written,
        "rejected": { "total": counts.rejected, "byReason": counts.rejected_by_reason },
        "warnings": { "total": counts.warnings, "byReason": counts.warnings_by_reason },
        "failed": counts.failed,
        "batches": counts.batches,
        "elapsedSecs": (elapsed * 1000.0).round() / 1000.0,
        "recordsPerSec": per_sec.round(),
        "offset": cp.position.offset,
        "endOfSource": cp.finished,
        "checkpoint": setup.state.display().to_string(),
        "rejects": rejects,
    }))
}

/// The exact command that continues this import from its checkpoint.
pub fn resume_command(plan: &ImportPlan, ctx: &Ctx, limit_left: Option<u64>) -> String {
    let mut words: Vec<String> = vec!["ferry".into()];
    if ctx.folder != ctx.cwd {
        words.push("-C".into());
        words.push(quote(&ctx.folder.display().to_string()));
    }
    words.push("import".into());
    for (flag, value) in &plan.flags {
        match flag.as_str() {
            "--offset" | "--resume" | "--dry-run" | "--yes" => continue,
            "--limit" => {
                if let Some(left) = limit_left {
                    words.push("--limit".into());
                    words.push(left.to_string());
                }
                continue;
            }
            _ => {}
        }
        words.push(flag.clone());
        if let Some(v) = value {
            words.push(quote(v));
        }
    }
    words.push("--resume".into());
    words.join(" ")
}

/// Quote `s` for a POSIX shell when it needs it.
fn quote(s: &str) -> String {
    crate::shell::quote(s).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connector::{Page, Spec};
    use crate::output::progress::Silent;
    use async_trait::async_trait;
    use std::time::Duration;

    /// A source of `n` records `{"id": "rN", "n": N}`, paged with cursors.
    struct FakeSource {
        spec: Spec,
        n: u64,
    }

    #[async_trait]
    impl Connector for FakeSource {
        fn spec(&self) -> &Spec {
            &self.spec
        }
        async fn read_page(&self, from: &Position, limit: usize) -> Result<Page> {
            // The cursor must be the one this source handed out.
            if let Some(c) = &from.cursor {
                assert_eq!(c, &format!("cur{}", from.offset));
            }
            let end = (from.offset + limit as u64).min(self.n);
            let records = (from.offset..end)
                .map(|i| match json!({"id": format!("r{i}"), "n": i}) {
                    Value::Object(m) => m,
                    _ => Record::new(),
                })
                .collect();
            let next = (end < self.n).then(|| Position {
                offset: end,
                cursor: Some(format!("cur{end}")),
            });
            Ok(Page {
                records,
                next,
                total: Some(self.n),
            })
        }
    }

    /// A destination where later batches finish first, records with n % 10
    /// == 7 are refused, and the batch holding `fail_at` fails.
    struct FakeDest {
        spec: Spec,
        fail_at: Option<u64>,
    }

    #[async_trait]
    impl Connector for FakeDest {
        fn spec(&self) -> &Spec {
            &self.spec
        }
        async fn upsert_batch(&self, records: Records) -> Result<Vec<Outcome>> {
            let first = records[0]["n"].as_u64().unwrap_or(0);
            tokio::time::sleep(Duration::from_millis(40u64.saturating_sub(first))).await;
            if records.iter().any(|r| r["n"].as_u64() == self.fail_at) {
                return Err(failed("the destination is down").into());
            }
            Ok(records
                .iter()
                .map(|r| {
                    let id = r["id"].as_str().unwrap_or_default().to_string();
                    if r["n"].as_u64().unwrap_or(0) % 10 == 7 {
                        Outcome::Rejected {
                            id: Some(id),
                            reason: "refused".into(),
                        }
                    } else {
                        Outcome::Ok { id }
                    }
                })
                .collect())
        }
    }

    fn setup(dir: &Path, n: u64, fail_at: Option<u64>) -> Setup {
        let spec = || crate::connector::registry::spec("jsonl").unwrap();
        Setup {
            source: Arc::new(FakeSource { spec: spec(), n }),
            dest: Arc::new(FakeDest {
                spec: spec(),
                fail_at,
            }),
            from: "fake:a".into(),
            to: "fake:b".into(),
            mapping: Arc::new(Mapping {
                id_field: "id".into(),
                ..Mapping::default()
            }),
            validator: Arc::new(Validator::new("id", Vec::new())),
            batch_size: 5,
            concurrency: 4,
            state: dir.join("cp.json"),
            rejects: dir.join("rejects.jsonl"),
            raw: false,
            warned: Default::default(),
        }
    }

    async fn run_attempt(setup: &Setup) -> (Ending, Checkpoint, Counts) {
        let ctx = Ctx::from_process().unwrap();
        let mut counts = Counts::default();
        let never = Interrupt::never();
        let (ending, cp) = attempt(
            setup,
            &ctx,
            Start::Beginning,
            None,
            &mut counts,
            &Silent,
            &never,
        )
        .await
        .unwrap();
        (ending, cp, counts)
    }

    #[tokio::test]
    async fn batches_finishing_out_of_order_are_committed_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let setup = setup(dir.path(), 40, None);
        let (ending, cp, counts) = run_attempt(&setup).await;
        assert!(matches!(ending, Ending::Done));
        assert_eq!(cp.position.offset, 40);
        assert!(cp.finished);
        assert_eq!((counts.read, counts.written, counts.rejected), (40, 36, 4));
        assert_eq!(counts.batches, 8);
        // Rejects are written in source order, whatever order batches finished in.
        let offsets: Vec<u64> = std::fs::read_to_string(&setup.rejects)
            .unwrap()
            .lines()
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap()["offset"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        assert_eq!(offsets, [7, 17, 27, 37]);
        assert_eq!(Checkpoint::load(&setup.state).unwrap(), Some(cp));
    }

    #[tokio::test]
    async fn the_checkpoint_stops_before_a_failed_batch_even_when_later_ones_succeeded() {
        let dir = tempfile::tempdir().unwrap();
        // Records 10..15 make the third batch; the fourth and later finish
        // before it and must not be committed.
        let setup = setup(dir.path(), 40, Some(12));
        let (ending, cp, counts) = run_attempt(&setup).await;
        let Ending::Failed(err) = ending else {
            panic!("the run did not stop")
        };
        assert!(format!("{err:#}").contains("the destination is down"));
        assert_eq!(
            cp.position,
            Position {
                offset: 10,
                cursor: Some("cur10".into())
            }
        );
        assert_eq!((counts.written, counts.rejected, counts.failed), (9, 1, 5));
        let saved = Checkpoint::load(&setup.state).unwrap().unwrap();
        assert_eq!(saved.position.offset, 10);
        assert_eq!(saved.counts.written, 9);
        assert_eq!(saved.counts.rejected, 1);
        assert_eq!(
            saved.rejects_bytes,
            std::fs::metadata(&setup.rejects).unwrap().len()
        );
    }

    #[test]
    fn shell_quoting_leaves_plain_words_alone() {
        assert_eq!(quote("sqlite:out.db#t"), "sqlite:out.db#t");
        assert_eq!(quote("my file.jsonl"), "'my file.jsonl'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote(""), "''");
    }

    #[test]
    fn counts_add_up_by_reason() {
        let mut a = Counts::default();
        let mut b = Counts {
            read: 2,
            rejected: 1,
            ..Counts::default()
        };
        b.rejected_by_reason.insert("missing id".into(), 1);
        a.add(&b);
        a.add(&b);
        assert_eq!(a.read, 4);
        assert_eq!(a.rejected_by_reason.get("missing id"), Some(&2));
    }
}
