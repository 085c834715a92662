//! What the `csv` and `jsonl` connectors share: a file of records, read as a
//! stream and rewritten atomically (temporary file, fsync, rename) on every
//! change, so a run killed mid-write leaves the old file whole. Each format
//! only says how to read and write its rows. As export destinations files
//! hold profiles but no group memberships.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use async_trait::async_trait;
use serde_json::{json, Value};

use crate::connector::{
    new_id, record_id, Change, ChangeType, Connector, ExportFields, Outcome, Page, Position,
    ProfileOutcome, ProfileUpdate, Record, Rejection, Spec, Updates, WriteOp,
};
use crate::error::{failed, not_found, usage};

/// A stream of records and the byte offset after the last one read.
pub trait RecordReader: Iterator<Item = Result<Record>> + Send {
    /// The byte offset where the next record starts.
    fn byte_offset(&self) -> u64;
}

/// How one file format reads and writes records.
pub trait Format: Send + Sync + 'static {
    /// Open `path` and read records from byte `start` (0: the beginning).
    fn reader(&self, path: &Path, start: u64) -> Result<Box<dyn RecordReader>>;

    /// The columns of an existing file (empty for formats without a header).
    fn columns(&self, path: &Path) -> Result<Vec<String>>;

    /// Write `records` to `out` with `columns` (the header, where the format has one).
    fn write(
        &self,
        out: &mut dyn Write,
        columns: &[String],
        records: &mut dyn Iterator<Item = Result<Record>>,
    ) -> Result<()>;
}

/// A file-backed connector over a [`Format`].
pub struct FileConnector<F: Format> {
    spec: Spec,
    store: Arc<Store<F>>,
}

struct Store<F> {
    format: F,
    path: PathBuf,
    id_field: String,
    /// One writer at a time: a rewrite reads the old file while writing the new.
    write_lock: Mutex<()>,
}

impl<F: Format> FileConnector<F> {
    pub fn new(spec: Spec, format: F, path: PathBuf, id_field: String) -> Self {
        FileConnector {
            spec,
            store: Arc::new(Store {
                format,
                path,
                id_field,
                write_lock: Mutex::new(()),
            }),
        }
    }

    /// Run a blocking file operation off the async workers.
    async fn blocking<T, Op>(&self, op: Op) -> Result<T>
    where
        T: Send + 'static,
        Op: FnOnce(&Store<F>) -> Result<T> + Send + 'static,
    {
        let store = Arc::clone(&self.store);
        tokio::task::spawn_blocking(move || op(&store))
            .await
            .context("a file operation stopped unexpectedly")?
    }
}

impl<F: Format> Store<F> {
    fn exists(&self) -> bool {
        self.path.exists()
    }

    fn records(&self, start: u64) -> Result<Box<dyn RecordReader>> {
        if !self.exists() {
            return Ok(Box::new(Empty));
        }
        self.format.reader(&self.path, start)
    }

    fn id_of(&self, record: &Record) -> Option<String> {
        record_id(record, &self.id_field)
    }

    fn find(&self, id: &str) -> Result<Option<Record>> {
        for record in self.records(0)? {
            let record = record?;
            if self.id_of(&record).as_deref() == Some(id) {
                return Ok(Some(record));
            }
        }
        Ok(None)
    }

    fn not_found(&self, id: &str) -> anyhow::Error {
        not_found(format!(
            "no record with {} \"{id}\" in {}",
            self.id_field,
            self.path.display()
        ))
        .hint("run `ferry getupdates` to list the records and their ids")
        .into()
    }

    /// Rewrite the file atomically in one streaming pass: each old record
    /// passes through `edit` (which may replace or drop it), then whatever
    /// `tail` returns is written at the end. `new_fields` are the records whose
    /// keys may be new, so a format with a header can name them up front.
    fn rewrite<'a>(
        &self,
        new_fields: impl IntoIterator<Item = &'a Record>,
        edit: impl FnMut(Record) -> Option<Record>,
        tail: impl FnOnce() -> Vec<Record>,
    ) -> Result<()> {
        let _guard = self.write_lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut columns = if self.exists() {
            self.format.columns(&self.path)?
        } else {
            Vec::new()
        };
        for record in new_fields {
            for key in record.keys() {
                if !columns.iter().any(|c| c == key) {
                    columns.push(key.clone());
                }
            }
        }
        let mut edit = edit;
        let mut all = self
            .records(0)?
            .filter_map(move |r| match r {
                Ok(r) => edit(r).map(Ok),
                Err(e) => Some(Err(e)),
            })
            .chain(std::iter::once_with(tail).flatten().map(Ok));
        crate::fsutil::write_atomic(&self.path, |w| self.format.write(w, &columns, &mut all))
    }
}

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

#[async_trait]
impl<F: Format> Connector for FileConnector<F> {
    fn spec(&self) -> &Spec {
        &self.spec
    }

    fn id_field(&self) -> &str {
        &self.store.id_field
    }

    fn preview(&self, op: &WriteOp) -> Result<Vec<Value>> {
        Ok(super::preview_rows(
            op,
            &self.store.path.display().to_string(),
        ))
    }

    async fn check(&self) -> Result<Value> {
        self.blocking(|s| {
            if !s.exists() {
                let dir = s.path.parent().unwrap_or(Path::new("."));
                if !dir.as_os_str().is_empty() && !dir.is_dir() {
                    return Err(usage(format!(
                        "the folder of {} does not exist",
                        s.path.display()
                    ))
                    .hint("create the folder, or change \"path\" in account.json")
                    .into());
                }
                return Ok(json!({
                    "ok": true,
                    "path": s.path.display().to_string(),
                    "records": 0,
                    "message": "the file does not exist yet; the first write creates it",
                }));
            }
            let mut count = 0u64;
            for record in s.records(0)? {
                record?;
                count += 1;
            }
            Ok(json!({ "ok": true, "path": s.path.display().to_string(), "records": count }))
        })
        .await
    }

    async fn get(&self, id: &str) -> Result<Record> {
        let id = id.to_string();
        self.blocking(move |s| s.find(&id)?.ok_or_else(|| s.not_found(&id)))
            .await
    }

    async fn insert(&self, mut value: Record) -> Result<Record> {
        self.blocking(move |s| {
            let id = match s.id_of(&value) {
                Some(id) => id,
                None => {
                    let id = new_id();
                    value.insert(s.id_field.clone(), Value::String(id.clone()));
                    id
                }
            };
            if s.find(&id)?.is_some() {
                return Err(failed(format!(
                    "a record with {} \"{id}\" already exists in {}",
                    s.id_field,
                    s.path.display()
                ))
                .hint(format!("use `ferry patch --id {id}` to change it"))
                .into());
            }
            s.rewrite([&value], Some, || vec![value.clone()])?;
            Ok(value)
        })
        .await
    }

    async fn patch(&self, id: &str, value: Record) -> Result<Record> {
        let id = id.to_string();
        self.blocking(move |s| {
            if let Some(new_id) = s.id_of(&value) {
                if new_id != id {
                    return Err(usage(format!(
                        "the patch changes {} from \"{id}\" to \"{new_id}\"",
                        s.id_field
                    ))
                    .hint(format!(
                        "leave \"{}\" out of the value; to rename a record, insert a new one and delete the old",
                        s.id_field
                    ))
                    .into());
                }
            }
            let mut patched = None;
            s.rewrite(
                [&value],
                |mut record| {
                    if patched.is_none() && s.id_of(&record).as_deref() == Some(id.as_str()) {
                        for (k, v) in &value {
                            record.insert(k.clone(), v.clone());
                        }
                        patched = Some(record.clone());
                    }
                    Some(record)
                },
                Vec::new,
            )?;
            patched.ok_or_else(|| s.not_found(&id))
        })
        .await
    }

    async fn delete(&self, id: &str) -> Result<()> {
        let id = id.to_string();
        self.blocking(move |s| {
            // Check first so a missing id leaves the file untouched.
            if s.find(&id)?.is_none() {
                return Err(s.not_found(&id));
            }
            s.rewrite(
                [],
                |record| (s.id_of(&record).as_deref() != Some(id.as_str())).then_some(record),
                Vec::new,
            )
        })
        .await
    }

    async fn get_updates(&self, since: Option<&str>, limit: Option<usize>) -> Result<Updates> {
        let start = match since {
            None => 0,
            Some(token) => token.parse::<u64>().map_err(|_| {
                usage(format!(
                    "lastSync \"{token}\" is not a position in {}",
                    self.store.path.display()
                ))
                .hint("file connectors sync by position: pass the nextSync of the previous getupdates (a number), or no lastSync for every record")
            })?,
        };
        self.blocking(move |s| {
            let mut entries = Vec::new();
            let mut position = 0u64;
            for record in s.records(0)? {
                let record = record?;
                position += 1;
                if position <= start {
                    continue;
                }
                let id = s.id_of(&record).ok_or_else(|| {
                    failed(format!(
                        "record {position} of {} has no {}",
                        s.path.display(),
                        s.id_field
                    ))
                })?;
                entries.push(Change {
                    id,
                    kind: ChangeType::Upsert,
                    value: Some(record),
                });
                if limit.is_some_and(|l| entries.len() >= l) {
                    break;
                }
            }
            let next = start.max(position);
            Ok(Updates {
                next_sync: next.to_string(),
                entries,
            })
        })
        .await
    }

    async fn read_page(&self, from: &Position, limit: usize) -> Result<Page> {
        let from = from.clone();
        self.blocking(move |s| {
            // The cursor is the byte offset of the next record: no re-scan.
            let byte = from.cursor.as_deref().and_then(|c| c.parse::<u64>().ok());
            let mut reader = s.records(byte.unwrap_or(0))?;
            if byte.is_none() {
                for skipped in 0..from.offset {
                    if reader.next().transpose()?.is_none() {
                        return Err(usage(format!(
                            "offset {} is past the end of {} ({skipped} records)",
                            from.offset,
                            s.path.display()
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
            let next = (records.len() >= limit).then(|| Position {
                offset: from.offset + records.len() as u64,
                cursor: Some(reader.byte_offset().to_string()),
            });
            Ok(Page {
                records,
                next,
                total: None,
            })
        })
        .await
    }

    /// A file has no place for group memberships: export reports them skipped.
    async fn export_fields(&self) -> Result<ExportFields> {
        Ok(ExportFields {
            key: self.store.id_field.clone(),
            // Keyed by the default "id": the profile id is the record id.
            // Keyed by another field (an email): the profile must carry it.
            key_from_profile_id: self.store.id_field == "id",
            fields: Vec::new(),
            extra_fields: true,
            groups: false,
        })
    }

    async fn find_profile(&self, key: &str) -> Result<Option<String>> {
        let key = key.to_string();
        self.blocking(move |s| Ok(s.find(&key)?.map(|_| key))).await
    }

    async fn create_profile(&self, fields: Record) -> Result<String> {
        self.blocking(move |s| {
            let id = s
                .id_of(&fields)
                .ok_or_else(|| Rejection(format!("the profile has no {}", s.id_field)))?;
            // Create, or merge into the record that already has this id.
            let pending = std::cell::RefCell::new(Some(fields.clone()));
            s.rewrite(
                [&fields],
                |mut record| {
                    if s.id_of(&record).as_deref() == Some(id.as_str()) {
                        if let Some(f) = pending.borrow_mut().take() {
                            record.extend(f);
                        }
                    }
                    Some(record)
                },
                || pending.borrow_mut().take().into_iter().collect(),
            )?;
            Ok(id)
        })
        .await
    }

    async fn update_profile(&self, id: &str, update: ProfileUpdate) -> Result<String> {
        let id = id.to_string();
        self.blocking(move |s| {
            if s.find(&id)?.is_none() {
                return Err(s.not_found(&id));
            }
            let new_id = s.id_of(&update.set).unwrap_or_else(|| id.clone());
            if new_id != id && s.find(&new_id)?.is_some() {
                return Err(Rejection(format!(
                    "another record already has {} \"{new_id}\"",
                    s.id_field
                ))
                .into());
            }
            // A cleared field is removed (an empty cell in a CSV file).
            s.rewrite(
                [&update.set],
                |mut record| {
                    if s.id_of(&record).as_deref() == Some(id.as_str()) {
                        record.extend(update.set.clone());
                        for key in &update.clear {
                            record.shift_remove(key);
                        }
                    }
                    Some(record)
                },
                Vec::new,
            )?;
            Ok(new_id)
        })
        .await
    }

    /// One rewrite of the file per batch, not one per profile.
    async fn create_profiles(&self, profiles: Vec<Record>) -> Vec<ProfileOutcome> {
        let n = profiles.len();
        let result = self
            .blocking(move |s| {
                let mut outcomes = Vec::with_capacity(profiles.len());
                // id -> the fields to merge, in the order they came
                let mut pending: Vec<(String, Record)> = Vec::new();
                for fields in profiles {
                    match s.id_of(&fields) {
                        Some(id) => {
                            outcomes.push(ProfileOutcome::Ok { id: id.clone() });
                            match pending.iter_mut().find(|(i, _)| *i == id) {
                                Some((_, f)) => f.extend(fields),
                                None => pending.push((id, fields)),
                            }
                        }
                        None => outcomes.push(ProfileOutcome::Rejected {
                            reason: format!("the profile has no {}", s.id_field),
                        }),
                    }
                }
                if pending.is_empty() {
                    return Ok(outcomes);
                }
                let written: Vec<Record> = pending.iter().map(|(_, f)| f.clone()).collect();
                let left = std::cell::RefCell::new(pending);
                s.rewrite(
                    &written,
                    |mut record| {
                        if let Some(id) = s.id_of(&record) {
                            let mut left = left.borrow_mut();
                            if let Some(at) = left.iter().position(|(i, _)| *i == id) {
                                record.extend(left.remove(at).1);
                            }
                        }
                        Some(record)
                    },
                    || left.borrow_mut().drain(..).map(|(_, f)| f).collect(),
                )?;
                Ok(outcomes)
            })
            .await;
        match result {
            Ok(outcomes) => outcomes,
            Err(e) => {
                let reason = format!("{e:#}");
                (0..n)
                    .map(|_| ProfileOutcome::Error {
                        reason: reason.clone(),
                        retry_in: None,
                    })
                    .collect()
            }
        }
    }

    async fn delete_profile(&self, id: &str) -> Result<()> {
        let id = id.to_string();
        self.blocking(move |s| {
            if s.find(&id)?.is_none() {
                return Ok(());
            }
            s.rewrite(
                [],
                |record| (s.id_of(&record).as_deref() != Some(id.as_str())).then_some(record),
                Vec::new,
            )
        })
        .await
    }

    async fn upsert(&self, record: Record) -> Result<Outcome> {
        let mut outcomes = self.upsert_batch(vec![record]).await?;
        Ok(outcomes.remove(0))
    }

    async fn upsert_batch(&self, records: Vec<Record>) -> Result<Vec<Outcome>> {
        self.blocking(move |s| {
            let mut outcomes = Vec::with_capacity(records.len());
            // id -> the last record of the batch with that id
            let mut by_id: HashMap<String, Record> = HashMap::new();
            let mut order = Vec::new();
            for record in records {
                match s.id_of(&record) {
                    Some(id) => {
                        outcomes.push(Outcome::Ok { id: id.clone() });
                        if by_id.insert(id.clone(), record).is_none() {
                            order.push(id);
                        }
                    }
                    None => outcomes.push(Outcome::Rejected {
                        id: None,
                        reason: format!("the record has no {}", s.id_field),
                    }),
                }
            }
            if by_id.is_empty() {
                return Ok(outcomes);
            }
            // Records already in the file are replaced where they stand; the
            // rest are appended, in the order they came.
            let written: Vec<Record> = order
                .iter()
                .filter_map(|id| by_id.get(id).cloned())
                .collect();
            let pending = std::cell::RefCell::new(by_id);
            s.rewrite(
                &written,
                |record| match s.id_of(&record) {
                    Some(id) => Some(pending.borrow_mut().remove(&id).unwrap_or(record)),
                    None => Some(record),
                },
                || {
                    let mut left = pending.borrow_mut();
                    order.iter().filter_map(|id| left.remove(id)).collect()
                },
            )?;
            Ok(outcomes)
        })
        .await
    }
}
