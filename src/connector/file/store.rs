//! The store of one file: what it is (format, path, id field), how it is
//! read (stopping where an unfinished append began) and how it is rewritten
//! atomically in one streaming pass, and the record operations (get,
//! insert, patch, delete, pages) built on those two.

use std::hash::RandomState;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use anyhow::{Context, Result};
use serde_json::{json, Value};

use super::index::{ends_with_newline, Index};
use super::journal::UpTo;
use super::{Format, RecordReader};
use crate::connector::raw::{RawPage, RawRecords};
use crate::connector::{given_id, new_id, record_id, Page, Position, Record};
use crate::error::{failed, not_found, usage};
use crate::output::Output;

pub(super) struct Store<F> {
    pub(super) format: F,
    pub(super) path: PathBuf,
    pub(super) id_field: String,
    /// One writer at a time: a rewrite reads the old file while writing the
    /// new. It guards the index of the file, once built.
    pub(super) write_lock: Mutex<Option<Index>>,
    /// Hashes ids for the index (per process: the index is never saved).
    pub(super) hasher: RandomState,
    /// Where `-v` says what each write did (one line per rewrite or
    /// append), when the connector was opened for a command.
    pub(super) log: Option<Output>,
}

impl<F: Format> Store<F> {
    pub(super) fn exists(&self) -> bool {
        self.path.exists()
    }

    pub(super) fn records(&self, start: u64) -> Result<Box<dyn RecordReader>> {
        if !self.exists() {
            return Ok(Box::new(Empty));
        }
        let reader = self.format.reader(&self.path, start)?;
        // An append in progress or cut short: its records are not there yet.
        match self.journal_len() {
            Ok(Some(end)) => Ok(Box::new(UpTo { inner: reader, end })),
            _ => Ok(reader),
        }
    }

    pub(super) fn id_of(&self, record: &Record) -> Option<String> {
        record_id(record, &self.id_field)
    }

    pub(super) fn find(&self, id: &str) -> Result<Option<Record>> {
        for record in self.records(0)? {
            let record = record?;
            if self.id_of(&record).as_deref() == Some(id) {
                return Ok(Some(record));
            }
        }
        Ok(None)
    }

    pub(super) fn not_found(&self, id: &str) -> anyhow::Error {
        not_found(format!(
            "no record with {} \"{id}\" in {}",
            self.id_field,
            self.path.display()
        ))
        // The command adds the hint that lists the ids, with its -C folder.
        .into()
    }

    /// Take the write lock and repair an interrupted append, if any.
    pub(super) fn lock(&self) -> Result<MutexGuard<'_, Option<Index>>> {
        let guard = self.write_lock.lock().unwrap_or_else(|e| e.into_inner());
        self.recover()?;
        Ok(guard)
    }

    /// A `-v` line about a write of the file.
    pub(super) fn logged(&self, what: impl FnOnce() -> String) {
        if let Some(out) = &self.log {
            out.verbose(&what());
        }
    }

    /// [`Store::rewrite_locked`] under the write lock.
    pub(super) fn rewrite<'a>(
        &self,
        new_fields: impl IntoIterator<Item = &'a Record>,
        edit: impl FnMut(Record) -> Option<Record>,
        tail: impl FnOnce() -> Vec<Record>,
    ) -> Result<()> {
        let mut guard = self.lock()?;
        self.rewrite_locked(&mut guard, new_fields, edit, tail)
    }

    /// Rewrite the file atomically in one streaming pass: each old record
    /// passes through `edit` (which may replace or drop it), then whatever
    /// `tail` returns is written at the end. `new_fields` are the records whose
    /// keys may be new, so a format with a header can name them up front.
    pub(super) fn rewrite_locked<'a>(
        &self,
        index: &mut Option<Index>,
        new_fields: impl IntoIterator<Item = &'a Record>,
        edit: impl FnMut(Record) -> Option<Record>,
        tail: impl FnOnce() -> Vec<Record>,
    ) -> Result<()> {
        let mut columns = if self.exists() {
            self.format.columns(&self.path)?
        } else {
            Vec::new()
        };
        let mut new_ids = Vec::new();
        for record in new_fields {
            if let Some(id) = self.id_of(record) {
                new_ids.push(self.hash(&id));
            }
            for key in record.keys() {
                if !columns.iter().any(|c| c == key) {
                    columns.push(key.clone());
                }
            }
        }
        let mut edit = edit;
        let mut written = 0u64;
        let mut all = self
            .records(0)?
            .filter_map(move |r| match r {
                Ok(r) => edit(r).map(Ok),
                Err(e) => Some(Err(e)),
            })
            .chain(std::iter::once_with(tail).flatten().map(Ok))
            .inspect(|r| written += u64::from(r.is_ok()));
        crate::fsutil::write_atomic(&self.path, |w| self.format.write(w, &columns, &mut all))?;
        drop(all);
        self.logged(|| format!("rewrote {}: {written} records", self.path.display()));
        // Keep the index in step: ids written may be new (deleted ones stay,
        // which costs at most a rewrite later).
        if let Some(ix) = index.as_mut() {
            let meta = std::fs::metadata(&self.path)
                .with_context(|| format!("could not read {}", self.path.display()))?;
            ix.len = meta.len();
            ix.modified = meta.modified().ok();
            ix.ids.extend(new_ids);
            ix.columns = columns;
            ix.clean_end = ends_with_newline(&self.path, ix.len)?;
        }
        Ok(())
    }
}

/// The record operations, as the connector runs them off the async workers.
impl<F: Format> Store<F> {
    pub(super) fn check(&self) -> Result<Value> {
        if !self.exists() {
            let dir = self.path.parent().unwrap_or(Path::new("."));
            if !dir.as_os_str().is_empty() && !dir.is_dir() {
                return Err(usage(format!(
                    "the folder of {} does not exist",
                    self.path.display()
                ))
                .hint("create the folder, or change \"path\" in account.json")
                .into());
            }
            return Ok(json!({
                "ok": true,
                "path": self.path.display().to_string(),
                "records": 0,
                "message": "the file does not exist yet; the first write creates it",
            }));
        }
        let mut count = 0u64;
        for record in self.records(0)? {
            record?;
            count += 1;
        }
        Ok(json!({ "ok": true, "path": self.path.display().to_string(), "records": count }))
    }

    pub(super) fn get(&self, id: &str) -> Result<Record> {
        self.find(id)?.ok_or_else(|| self.not_found(id))
    }

    pub(super) fn insert(&self, mut value: Record) -> Result<Record> {
        let id = match given_id(&value, &self.id_field, "insert")? {
            Some(id) => id,
            None => {
                let id = new_id();
                value.insert(self.id_field.clone(), Value::String(id.clone()));
                id
            }
        };
        if self.find(&id)?.is_some() {
            return Err(failed(format!(
                "a record with {} \"{id}\" already exists in {}",
                self.id_field,
                self.path.display()
            ))
            .hint(format!("use `ferry patch --id {id}` to change it"))
            .into());
        }
        self.rewrite([&value], Some, || vec![value.clone()])?;
        Ok(value)
    }

    pub(super) fn patch(&self, id: &str, value: Record) -> Result<Record> {
        if let Some(new_id) = given_id(&value, &self.id_field, "patch")? {
            if new_id != id {
                return Err(usage(format!(
                    "the patch changes {} from \"{id}\" to \"{new_id}\"",
                    self.id_field
                ))
                .hint(format!(
                    "leave \"{}\" out of the value; to rename a record, insert a new one and delete the old",
                    self.id_field
                ))
                .into());
            }
        }
        // Check first so a missing id leaves the file untouched: the
        // rewrite would otherwise add the value's new columns, or create
        // the file.
        if self.find(id)?.is_none() {
            return Err(self.not_found(id));
        }
        let mut patched = None;
        self.rewrite(
            [&value],
            |mut record| {
                if patched.is_none() && self.id_of(&record).as_deref() == Some(id) {
                    for (k, v) in &value {
                        record.insert(k.clone(), v.clone());
                    }
                    patched = Some(record.clone());
                }
                Some(record)
            },
            Vec::new,
        )?;
        patched.ok_or_else(|| self.not_found(id))
    }

    pub(super) fn delete(&self, id: &str) -> Result<()> {
        // Check first so a missing id leaves the file untouched.
        if self.find(id)?.is_none() {
            return Err(self.not_found(id));
        }
        self.remove(id)
    }

    /// Rewrite the file without record `id`.
    pub(super) fn remove(&self, id: &str) -> Result<()> {
        self.rewrite(
            [],
            |record| (self.id_of(&record).as_deref() != Some(id)).then_some(record),
            Vec::new,
        )
    }

    pub(super) fn read_page(&self, from: &Position, limit: usize) -> Result<Page> {
        // The cursor is the byte offset of the next record: no re-scan.
        let byte = from.cursor.as_deref().and_then(|c| c.parse::<u64>().ok());
        let mut reader = self.records(byte.unwrap_or(0))?;
        if byte.is_none() {
            for skipped in 0..from.offset {
                if reader.next().transpose()?.is_none() {
                    return Err(usage(format!(
                        "offset {} is past the end of {} ({skipped} records)",
                        from.offset,
                        self.path.display()
                    ))
                    .into());
                }
            }
        }
        let mut records = Vec::with_capacity(limit.min(10_000));
        for record in reader.by_ref() {
            records.push(record?);
            if records.len() >= limit {
                break;
            }
        }
        let (next, total) = self.page_end(from, records.len(), limit, reader.byte_offset());
        Ok(Page {
            records,
            next,
            total,
        })
    }

    /// A page of records as the file's own JSON text (import's
    /// pass-through), for formats whose rows are JSON objects. A page the
    /// format cannot vouch for (a line that is not one valid object), or
    /// one asked for by record offset without a byte cursor, is read parsed
    /// instead, so its records and errors are the parsed read's.
    pub(super) fn read_page_raw(&self, from: &Position, limit: usize) -> Result<RawPage> {
        let byte = match from.cursor.as_deref().and_then(|c| c.parse::<u64>().ok()) {
            Some(byte) => Some(byte),
            None => (from.offset == 0).then_some(0),
        };
        if let Some(start) = byte.filter(|_| self.exists()) {
            // As `records`: an unfinished append's records are not there yet.
            let end = self.journal_len().ok().flatten();
            if let Some((records, read_to)) = self.format.raw_rows(&self.path, start, end, limit)? {
                let (next, total) = self.page_end(from, records.len(), limit, read_to);
                return Ok(RawPage {
                    records,
                    next,
                    total,
                });
            }
        }
        let page = self.read_page(from, limit)?;
        Ok(RawPage {
            records: RawRecords::from_records(&page.records)?,
            next: page.next,
            total: page.total,
        })
    }

    /// Where the page of `read` records (of `limit` asked for) that ended
    /// at byte `read_to` leaves the next one, and the total.
    fn page_end(
        &self,
        from: &Position,
        read: usize,
        limit: usize,
        read_to: u64,
    ) -> (Option<Position>, Option<u64>) {
        let next = (read >= limit).then(|| Position {
            offset: from.offset + read as u64,
            cursor: Some(read_to.to_string()),
        });
        // A file does not count its records, but its size tells how far the
        // run is: the total is estimated from the bytes read so far (the
        // progress bar's ETA), and exact at the end.
        let total = match &next {
            None => Some(from.offset + read as u64),
            Some(next) => {
                let size = std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0);
                (read_to > 0 && size >= read_to)
                    .then(|| (next.offset as f64 * size as f64 / read_to as f64).round() as u64)
            }
        };
        (next, total)
    }
}

/// The records of a file that does not exist yet.
struct Empty;

impl Iterator for Empty {
    type Item = Result<Record>;
    fn next(&mut self) -> Option<Self::Item> {
        None
    }
}

impl RecordReader for Empty {
    fn byte_offset(&self) -> u64 {
        0
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::connector::jsonl::Jsonl;

    /// The JSON lines format, except that writing fails after `fail_after`
    /// records, as a full disk or a killed process would stop it.
    struct FailingWrite {
        fail_after: usize,
    }

    impl Format for FailingWrite {
        fn reader(&self, path: &Path, start: u64) -> Result<Box<dyn RecordReader>> {
            Jsonl.reader(path, start)
        }

        fn columns(&self, path: &Path) -> Result<Vec<String>> {
            Jsonl.columns(path)
        }

        fn write(
            &self,
            out: &mut dyn Write,
            columns: &[String],
            records: &mut dyn Iterator<Item = Result<Record>>,
        ) -> Result<()> {
            let mut first = records.take(self.fail_after);
            Jsonl.write(out, columns, &mut first)?;
            out.flush()?;
            anyhow::bail!("no space left on device")
        }

        fn append(
            &self,
            out: &mut dyn Write,
            columns: &[String],
            records: &[&Record],
        ) -> Result<()> {
            Jsonl.append(out, columns, records)
        }
    }

    const ORIGINAL: &str =
        "{\"id\":\"c1\",\"name\":\"Ada\"}\n{\"id\":\"c2\",\"name\":\"Grace\"}\n{\"id\":\"c3\"}\n";

    fn failing_store<F: Format>(format: F, dir: &Path) -> Store<F> {
        let path = dir.join("data.jsonl");
        std::fs::write(&path, ORIGINAL).unwrap();
        Store {
            format,
            path,
            id_field: "id".into(),
            write_lock: Mutex::new(None),
            hasher: RandomState::new(),
            log: None,
        }
    }

    fn file_names(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    }

    /// A rewrite adding c4 fails with `error`, and leaves the file as
    /// `kept` with no temporary file beside it.
    fn assert_rewrite_fails_and_keeps<F: Format>(
        s: &Store<F>,
        dir: &Path,
        error: &str,
        kept: &str,
    ) {
        let new = record("c4");
        let err = s.rewrite([&new], Some, || vec![new.clone()]).unwrap_err();
        assert!(format!("{err:#}").contains(error), "{err:#}");
        assert_eq!(std::fs::read_to_string(&s.path).unwrap(), kept);
        assert_eq!(file_names(dir), ["data.jsonl"], "a temporary file was left");
    }

    fn record(id: &str) -> Record {
        let mut r = Record::new();
        r.insert("id".into(), Value::String(id.into()));
        r
    }

    #[test]
    fn a_write_failing_midway_leaves_the_file_intact() {
        let dir = tempfile::tempdir().unwrap();
        let s = failing_store(FailingWrite { fail_after: 2 }, dir.path());
        assert_rewrite_fails_and_keeps(&s, dir.path(), "no space left", ORIGINAL);
    }

    #[test]
    fn a_read_error_midway_leaves_the_file_intact() {
        let dir = tempfile::tempdir().unwrap();
        let s = failing_store(Jsonl, dir.path());
        // The second line breaks: the rewrite has written the first record
        // to the temporary file when the reader yields the error.
        let broken = ORIGINAL.replacen("\"Grace\"}", "\"Grace\",}", 1);
        std::fs::write(&s.path, &broken).unwrap();
        assert_rewrite_fails_and_keeps(&s, dir.path(), "line 2", &broken);
    }

    #[test]
    fn a_rewrite_that_succeeds_replaces_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let s = failing_store(Jsonl, dir.path());
        let new = record("c4");
        s.rewrite(
            [&new],
            |r| (r.get("id") != Some(&Value::String("c2".into()))).then_some(r),
            || vec![new.clone()],
        )
        .unwrap();
        assert_eq!(
            std::fs::read_to_string(&s.path).unwrap(),
            "{\"id\":\"c1\",\"name\":\"Ada\"}\n{\"id\":\"c3\"}\n{\"id\":\"c4\"}\n"
        );
    }
}
