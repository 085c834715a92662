//! The write and commit stages of one pass of the import pipeline: batches
//! from the reader ([`super::batch`]) are written up to `concurrency` at
//! once and committed strictly in source order, so the checkpoint moves
//! past a batch only when it and every earlier batch are written, and is
//! saved atomically after each commit (rejects reach the disk first).

use std::collections::VecDeque;
use std::sync::Arc;

use anyhow::Result;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::batch::{read_batches, Batch};
use super::rejects::{cut_rejects, RejectsFile};
use super::report::Ending;
use super::setup::{show_warnings, Setup};
use super::Start;
use crate::connector::raw::RawRecords;
use crate::connector::{Position, RecordSink, Records, UpsertOutcome};
use crate::ctx::Ctx;
use crate::engine::checkpoint::{Checkpoint, Counts};
use crate::engine::read_ahead::{PageReader, Rows};
use crate::error::{failed, usage};
use crate::interrupt::Interrupt;
use crate::output::progress::Progress;

/// A batch being written.
struct InFlight {
    batch: Batch,
    /// The records sent, kept to report the ones the destination refuses.
    sent: Sent,
    task: JoinHandle<Result<Vec<UpsertOutcome>>>,
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

    async fn write(self, dest: &dyn RecordSink) -> Result<Vec<UpsertOutcome>> {
        match self {
            _ if self.len() == 0 => Ok(Vec::new()),
            Sent::Parsed(r) => dest.upsert_batch(r).await,
            Sent::Raw(r) => match dest.raw() {
                Some(raw) => raw.upsert_raw(r).await,
                None => dest.upsert_batch(Records::new(r.to_records()?)).await,
            },
        }
    }
}

/// The checkpoint a run starts from, and the rejects file prepared for it.
pub(super) fn starting_point(setup: &Setup, ctx: &Ctx, start: Start) -> Result<Checkpoint> {
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

/// One pass of the pipeline from `start`; answers how it ended and the last
/// saved checkpoint. `run_counts` gathers the counts of this invocation.
#[allow(clippy::too_many_arguments)]
pub(super) async fn attempt(
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
        PageReader::new(setup.source.clone(), setup.raw).skipping_before(skip),
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
                    let dest = setup.dest.clone();
                    let task = tokio::spawn(async move { records.write(&*dest).await });
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
    outcome: Result<Vec<UpsertOutcome>>,
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
            UpsertOutcome::Ok { .. } => counts.written += 1,
            UpsertOutcome::Rejected { reason, .. } => {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connector::{Connector, Page, Record, RecordSource, Shared, Spec, WriteOp};
    use crate::engine::mapping::{Mapping, Validator};
    use crate::output::progress::Silent;
    use async_trait::async_trait;
    use std::path::Path;
    use std::time::Duration;

    /// A source of `n` records `{"id": "rN", "n": N}`, paged with cursors.
    struct FakeSource {
        spec: Spec,
        n: u64,
    }

    crate::capabilities!(FakeSource: Source);

    #[async_trait]
    impl Connector for FakeSource {
        fn spec(&self) -> &Spec {
            &self.spec
        }
    }

    #[async_trait]
    impl RecordSource for FakeSource {
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

    crate::capabilities!(FakeDest: Sink);

    #[async_trait]
    impl Connector for FakeDest {
        fn spec(&self) -> &Spec {
            &self.spec
        }
    }

    #[async_trait]
    impl RecordSink for FakeDest {
        async fn upsert(&self, _: Record) -> Result<UpsertOutcome> {
            Err(failed("batches only").into())
        }

        fn preview(&self, _: &WriteOp) -> Result<Vec<Value>> {
            Ok(Vec::new())
        }

        async fn upsert_batch(&self, records: Records) -> Result<Vec<UpsertOutcome>> {
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
                        UpsertOutcome::Rejected {
                            id: Some(id),
                            reason: "refused".into(),
                        }
                    } else {
                        UpsertOutcome::Ok { id }
                    }
                })
                .collect())
        }
    }

    fn setup(dir: &Path, n: u64, fail_at: Option<u64>) -> Setup {
        let spec = || crate::connector::registry::spec("jsonl").unwrap();
        Setup {
            source: Shared::new(
                Arc::new(FakeSource { spec: spec(), n }),
                |c| c.source(),
                "read pages",
            )
            .unwrap(),
            dest: Shared::new(
                Arc::new(FakeDest {
                    spec: spec(),
                    fail_at,
                }),
                |c| c.sink(),
                "upsert",
            )
            .unwrap(),
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
