//! The reader stage of the import pipeline: pages the source into batches
//! of whole pages, maps and validates each record on the way, and hands the
//! batches down a bounded queue. Records validation refuses become
//! rejects-file lines here; values it set to null become warning lines the
//! commit stage shows.

use std::sync::Arc;

use anyhow::Result;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::connector::raw::{PlainIds, RawRecords};
use crate::connector::{Position, Record, RecordSource};
use crate::engine::checkpoint::Counts;
use crate::engine::mapping::{Checked, Mapping, Validator};
use crate::engine::read_ahead::{PageReader, Rows};
use crate::error::failed;

/// One batch on its way from the reader to the commit stage.
pub(super) struct Batch {
    /// The source offset of its first record.
    pub(super) first: u64,
    /// The records to write and their source offsets.
    pub(super) records: Rows,
    pub(super) offsets: Vec<u64>,
    /// Records validation refused, already rendered as rejects-file lines.
    pub(super) rejects: Vec<Value>,
    /// One line per value validation set to null, naming its record;
    /// shown when the batch is committed ([`super::setup::show_warnings`]).
    pub(super) warned: Vec<String>,
    pub(super) counts: Counts,
    /// Where the source continues after this batch.
    pub(super) end: Position,
    /// The source has nothing after this batch.
    pub(super) end_of_source: bool,
    /// At the end of the source: where its last page started.
    pub(super) last_page: Option<Position>,
    /// The number of records in the whole source, when it says.
    pub(super) total: Option<u64>,
}

/// The reader: pages the source into batches of whole pages, maps and
/// validates them, and sends them down the bounded queue. It stops at the
/// end of the source, at `limit`, or when the queue is closed.
pub(super) async fn read_batches(
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
pub(super) async fn read_batch(
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
    source: &dyn RecordSource,
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
                // A number id is named as its text, as everywhere.
                let id =
                    crate::connector::record_id(&record, &mapping.id_field).unwrap_or_default();
                batch.warned.push(w.line(&id, offset));
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
