//! Import's page reader. A source that can start a page at any offset
//! ([`crate::connector::RecordSource::reads_at_any_offset`]) gets the next page asked for while
//! the current one is still on its way and being parsed, so the source's
//! answer time and ferry's parse overlap instead of adding up. The guess is
//! the page size the source answered last; a guess that turns out wrong
//! (a short page, the end) is dropped and the page read again, so the
//! records read are always exactly those of plain page-after-page reading.
//! The connector's own limits still hold: with `maxInFlight` 1 the request
//! ahead is sent the moment the current answer has arrived. Pages come back
//! parsed or, for import's pass-through, as the source's JSON text ([`Rows`]).

use anyhow::{Context, Result};
use tokio::task::JoinHandle;

use crate::connector::raw::RawRecords;
use crate::connector::{Position, Record, RecordSource, Shared};

/// A page's records: parsed, or as the source's JSON text (import's
/// pass-through, see [`crate::connector::raw`]).
pub enum Rows {
    Parsed(Vec<Record>),
    Raw(RawRecords),
}

impl Rows {
    pub fn len(&self) -> usize {
        match self {
            Rows::Parsed(r) => r.len(),
            Rows::Raw(r) => r.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Add a record that passed validation, keyed by its `id_field`.
    pub fn push(&mut self, record: Record, id_field: &str) -> Result<()> {
        match self {
            Rows::Parsed(r) => r.push(record),
            Rows::Raw(r) => {
                let id = crate::connector::record_id(&record, id_field)
                    .with_context(|| format!("a validated record has no {id_field}"))?;
                r.push_record(&record, &id)?;
            }
        }
        Ok(())
    }

    /// The records, parsed.
    pub fn into_records(self) -> Result<Vec<Record>> {
        match self {
            Rows::Parsed(r) => Ok(r),
            Rows::Raw(r) => r.to_records(),
        }
    }
}

/// One page as the reader answers it.
pub struct Read {
    pub rows: Rows,
    pub next: Option<Position>,
    pub total: Option<u64>,
}

/// A page asked for before it was wanted.
struct Ahead {
    from: Position,
    limit: usize,
    task: JoinHandle<Result<Read>>,
}

pub struct PageReader {
    source: Shared<dyn RecordSource>,
    /// Read pages as JSON text ([`crate::connector::RawSource`]).
    raw: bool,
    seeks: bool,
    ahead: Option<Ahead>,
    /// The number of records the source put in its last full page.
    page_size: Option<usize>,
    /// Records before this offset are already imported (see
    /// [`crate::engine::checkpoint::Checkpoint::resume_from`]).
    skip_before: u64,
}

impl PageReader {
    pub fn new(source: Shared<dyn RecordSource>, raw: bool) -> PageReader {
        let seeks = source.reads_at_any_offset();
        PageReader {
            source,
            raw,
            seeks,
            ahead: None,
            page_size: None,
            skip_before: 0,
        }
    }

    /// A reader whose caller drops the records before `offset`: a resumed
    /// import that reads its source's last page again.
    pub fn skipping_before(mut self, offset: u64) -> PageReader {
        self.skip_before = offset;
        self
    }

    pub fn skip_before(&self) -> u64 {
        self.skip_before
    }

    pub fn raw(&self) -> bool {
        self.raw
    }

    pub fn source(&self) -> &dyn RecordSource {
        &*self.source
    }

    fn spawn(&self, from: Position, limit: usize) -> JoinHandle<Result<Read>> {
        let source = self.source.clone();
        let raw = self.raw;
        tokio::spawn(async move {
            Ok(match source.raw().filter(|_| raw) {
                Some(raw_source) => {
                    let page = raw_source.read_page_raw(&from, limit).await?;
                    Read {
                        rows: Rows::Raw(page.records),
                        next: page.next,
                        total: page.total,
                    }
                }
                None => {
                    let page = source.read_page(&from, limit).await?;
                    Read {
                        rows: Rows::Parsed(page.records),
                        next: page.next,
                        total: page.total,
                    }
                }
            })
        })
    }

    /// Up to `want` records from `from`; `budget` is how many the reader may
    /// still take in all (a `--limit`), so nothing is asked for beyond it.
    pub async fn read(&mut self, from: &Position, want: usize, budget: u64) -> Result<Read> {
        let (task, asked) = match self.ahead.take() {
            Some(a) if a.from == *from && a.limit <= want => (a.task, a.limit),
            Some(a) => {
                a.task.abort();
                (self.spawn(from.clone(), want), want)
            }
            None => (self.spawn(from.clone(), want), want),
        };
        if let (true, None, Some(size)) = (self.seeks, &from.cursor, self.page_size) {
            let expected = size.min(asked);
            let rest = budget.saturating_sub(expected as u64);
            let limit = size.min(usize::try_from(rest).unwrap_or(usize::MAX));
            if limit > 0 {
                let next = Position::at_offset(from.offset + expected as u64);
                self.ahead = Some(Ahead {
                    task: self.spawn(next.clone(), limit),
                    from: next,
                    limit,
                });
            }
        }
        let page = task
            .await
            .context("reading a page stopped unexpectedly")??;
        let n = page.rows.len();
        let full = n > 0 && page.next == Some(Position::at_offset(from.offset + n as u64));
        self.page_size = full.then_some(n);
        Ok(page)
    }
}

impl Drop for PageReader {
    fn drop(&mut self) {
        if let Some(a) = self.ahead.take() {
            a.task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use async_trait::async_trait;
    use serde_json::json;

    use super::*;
    use crate::connector::{Connector, Page, Record, Spec};
    use std::sync::Arc;

    /// A source of `total` numbered records served `page` at a time, except
    /// that the page at `short_at` is one record short (as a page with a
    /// deleted record would be). It notes every read it starts and finishes;
    /// with `wait_for_next`, a read finishes only once a read of a later page
    /// has started (or after two seconds), so the order the log shows does
    /// not depend on how busy the machine is.
    struct Numbers {
        spec: Spec,
        total: u64,
        page: usize,
        short_at: u64,
        wait_for_next: bool,
        log: Mutex<Vec<String>>,
    }

    crate::capabilities!(Numbers: Source);

    #[async_trait]
    impl Connector for Numbers {
        fn spec(&self) -> &Spec {
            &self.spec
        }
    }

    #[async_trait]
    impl RecordSource for Numbers {
        fn reads_at_any_offset(&self) -> bool {
            true
        }
        async fn read_page(&self, from: &Position, limit: usize) -> anyhow::Result<Page> {
            self.log
                .lock()
                .unwrap()
                .push(format!("start {}", from.offset));
            let mut n = limit.min(self.page) as u64;
            if from.offset == self.short_at {
                n -= 1;
            }
            let end = (from.offset + n).min(self.total);
            // Wait until a later page has been asked for (the first page
            // cannot be read ahead of: nothing is known before it).
            let later_started = || {
                self.log.lock().unwrap().iter().any(|l| {
                    l.strip_prefix("start ")
                        .and_then(|o| o.parse::<u64>().ok())
                        .is_some_and(|o| o > from.offset)
                })
            };
            for _ in 0..2000 {
                if !self.wait_for_next || from.offset == 0 || later_started() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            let records: Vec<Record> = (from.offset..end)
                .map(|i| json!({ "n": i }).as_object().cloned().unwrap_or_default())
                .collect();
            self.log
                .lock()
                .unwrap()
                .push(format!("end {}", from.offset));
            Ok(Page {
                next: (end < self.total).then(|| Position::at_offset(end)),
                records,
                total: Some(self.total),
            })
        }
    }

    fn source(total: u64, page: usize, short_at: u64, wait_for_next: bool) -> Arc<Numbers> {
        Arc::new(Numbers {
            spec: crate::connector::registry::spec("jsonl").unwrap(),
            total,
            page,
            short_at,
            wait_for_next,
            log: Mutex::new(Vec::new()),
        })
    }

    /// Read like import does: page after page from the start, at most `budget`.
    async fn read_all(source: Arc<Numbers>, want: usize, budget: u64) -> Vec<u64> {
        let source = Shared::new(source, |c| c.source(), "read pages").unwrap();
        let mut reader = PageReader::new(source, false);
        let (mut pos, mut left, mut got) = (Position::start(), budget, Vec::new());
        while left > 0 {
            let page = reader
                .read(&pos, want.min(left as usize), left)
                .await
                .unwrap();
            let Rows::Parsed(records) = page.rows else {
                panic!("asked for parsed records")
            };
            left -= records.len() as u64;
            got.extend(records.iter().map(|r| r["n"].as_u64().unwrap()));
            match page.next {
                Some(next) => pos = next,
                None => break,
            }
        }
        got
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reading_ahead_reads_exactly_the_records_in_order() {
        let s = source(23, 5, 10, true);
        assert_eq!(
            read_all(Arc::clone(&s), 100, u64::MAX).await,
            (0..23).collect::<Vec<_>>()
        );
        let log = s.log.lock().unwrap().clone();
        let at = |line: &str| log.iter().position(|l| l == line);
        // The first page teaches the page size; from then on each page is
        // asked for while the one before it is still being read.
        assert!(at("start 10") < at("end 5"), "{log:?}");
        assert!(at("start 15") < at("end 10"), "{log:?}");
        // The page at 10 came back short (10..14): the guess of 15 is dropped
        // and the page at 14 read instead.
        assert!(at("start 14").is_some(), "{log:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_limit_is_never_read_past() {
        let s = source(100, 5, 1000, false);
        assert_eq!(
            read_all(Arc::clone(&s), 5, 12).await,
            (0..12).collect::<Vec<_>>()
        );
        let log = s.log.lock().unwrap().clone();
        assert!(
            !log.iter().any(|l| l == "start 15"),
            "nothing is asked for beyond the budget: {log:?}"
        );
    }
}
