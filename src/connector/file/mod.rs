//! What the `csv` and `jsonl` connectors share: a file of records, read as a
//! stream and rewritten atomically (temporary file, fsync, rename) on a
//! change, so a run killed mid-write leaves the old file whole. Each format
//! only says how to read and write its rows.
//!
//! Batch upserts append instead of rewriting when they can, so a bulk import
//! costs O(batch) per batch rather than O(file). The store keeps, under its
//! write lock, an index of the file: the hashes of the ids in it, its length,
//! its modification time and its columns, built by one scan on the first
//! batch and kept up to date by every write of this process (a file changed
//! by anyone else is noticed by its length or time and scanned again). A
//! batch appends when no id of it can already be in the file (a hash
//! collision only sends a batch down the rewrite path, which is always
//! correct) and, for CSV, when it brings no new column.
//!
//! An append is made crash-safe by a journal beside the file
//! (`.NAME.ferry-append`): the file's length is saved in it atomically before
//! the append, the appended bytes are fsynced, then the journal is removed.
//! If the process dies in between (kill -9, power loss), the journal is still
//! there and the next write of the file cuts it back to the saved length
//! before doing anything else, so a half-written batch never stays. Since an
//! unacknowledged batch is sent again by whoever sent it (import resumes from
//! its checkpoint), nothing is lost, and since upserts replace by id, nothing
//! is duplicated. Reads do not repair the file (they may run beside a writer
//! in another process): while a journal is there they stop at the length it
//! saved, so a torn tail is never read and the next write cuts it. Two
//! processes never write the same file at once: an import or export holds
//! the file's lock ([`crate::lock`], via [`Connector::written_file`]) for
//! its whole run.
//!
//! As export destinations, files hold profiles but no group memberships.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, RandomState};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use anyhow::{Context, Result};
use async_trait::async_trait;
use serde_json::{json, Value};

use crate::connector::raw::RawRecords;
use crate::connector::{
    given_id, id_text, new_id, record_id, BadId, Change, ChangeType, Connector, ExportFields,
    Outcome, Page, Position, ProfileOutcome, ProfileUpdate, Record, Records, Rejection, Spec,
    Updates, WriteOp,
};
use crate::error::{failed, not_found, usage};
use crate::output::Output;

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

    /// Whether a header fixes the file's columns, so a record with a new
    /// key cannot be appended and needs a rewrite.
    fn has_header(&self) -> bool {
        false
    }

    /// Write `records` as rows to add at the end of a file whose header
    /// (if any) already names `columns`.
    fn append(&self, out: &mut dyn Write, columns: &[String], records: &[&Record]) -> Result<()>;

    /// Whether a record's JSON text, on one line, is a row of this format
    /// (so import may append records as the source sent them).
    fn writes_raw(&self) -> bool {
        false
    }
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
    /// One writer at a time: a rewrite reads the old file while writing the
    /// new. It guards the index of the file, once built.
    write_lock: Mutex<Option<Index>>,
    /// Hashes ids for the index (per process: the index is never saved).
    hasher: RandomState,
    /// Where `-v` says what each write did (one line per rewrite or
    /// append), when the connector was opened for a command.
    log: Option<Output>,
}

/// What the store knows about its file, valid while the file's length and
/// modification time are the ones recorded.
struct Index {
    len: u64,
    modified: Option<SystemTime>,
    /// Hashes of every id in the file (and maybe of ids deleted since).
    ids: IdSet,
    columns: Vec<String>,
    /// The file ends with a newline, so appended rows start on their own line.
    clean_end: bool,
}

impl<F: Format> FileConnector<F> {
    pub fn new(spec: Spec, format: F, path: PathBuf, id_field: String) -> Self {
        FileConnector {
            spec,
            store: Arc::new(Store {
                format,
                path,
                id_field,
                write_lock: Mutex::new(None),
                hasher: RandomState::new(),
                log: None,
            }),
        }
    }

    /// Say on `-v` what each write of the file did.
    pub fn logging_to(mut self, out: Output) -> Self {
        if let Some(store) = Arc::get_mut(&mut self.store) {
            store.log = Some(out);
        }
        self
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
        let reader = self.format.reader(&self.path, start)?;
        // An append in progress or cut short: its records are not there yet.
        match self.journal_len() {
            Ok(Some(end)) => Ok(Box::new(UpTo { inner: reader, end })),
            _ => Ok(reader),
        }
    }

    /// The file length an unfinished append's journal saved, if there is one.
    fn journal_len(&self) -> Result<Option<u64>> {
        let journal = self.journal();
        let text = match std::fs::read_to_string(&journal) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(
                    anyhow::Error::new(e).context(format!("could not read {}", journal.display()))
                )
            }
        };
        let len = text.trim().parse().map_err(|_| {
            failed(format!(
                "{} is damaged: {text:?} is not a length",
                journal.display()
            ))
            .hint(format!(
                "check the end of {} by hand, then delete the journal",
                self.path.display()
            ))
        })?;
        Ok(Some(len))
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

    /// Take the write lock and repair an interrupted append, if any.
    fn lock(&self) -> Result<MutexGuard<'_, Option<Index>>> {
        let guard = self.write_lock.lock().unwrap_or_else(|e| e.into_inner());
        self.recover()?;
        Ok(guard)
    }

    /// The journal that marks an append in progress.
    fn journal(&self) -> PathBuf {
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        self.path.with_file_name(format!(".{name}.ferry-append"))
    }

    /// Cut the file back to the length the journal saved: the append it
    /// announced never finished.
    fn recover(&self) -> Result<()> {
        let Some(len) = self.journal_len()? else {
            return Ok(());
        };
        let journal = self.journal();
        if let Ok(meta) = std::fs::metadata(&self.path) {
            if meta.len() > len {
                let file = std::fs::OpenOptions::new()
                    .write(true)
                    .open(&self.path)
                    .with_context(|| format!("could not open {}", self.path.display()))?;
                file.set_len(len)
                    .and_then(|()| file.sync_all())
                    .with_context(|| {
                        format!("could not cut {} back to {len} bytes", self.path.display())
                    })?;
            }
        }
        std::fs::remove_file(&journal)
            .with_context(|| format!("could not remove {}", journal.display()))
    }

    fn hash(&self, id: &str) -> u64 {
        self.hasher.hash_one(id)
    }

    /// A `-v` line about a write of the file.
    fn logged(&self, what: impl FnOnce() -> String) {
        if let Some(out) = &self.log {
            out.verbose(&what());
        }
    }

    /// The index, built (one scan) or rebuilt when the file changed under it.
    fn index<'g>(&self, guard: &'g mut Option<Index>) -> Result<&'g mut Index> {
        let meta = std::fs::metadata(&self.path).ok();
        let len = meta.as_ref().map_or(0, |m| m.len());
        let modified = meta.as_ref().and_then(|m| m.modified().ok());
        let fresh = guard
            .as_ref()
            .is_some_and(|ix| ix.len == len && ix.modified == modified);
        if !fresh {
            let mut hashes = Vec::new();
            for record in self.records(0)? {
                if let Some(id) = self.id_of(&record?) {
                    hashes.push(self.hash(&id));
                }
            }
            let mut ids = IdSet::default();
            ids.extend(hashes);
            let columns = if len > 0 {
                self.format.columns(&self.path)?
            } else {
                Vec::new()
            };
            *guard = Some(Index {
                len,
                modified,
                ids,
                columns,
                clean_end: ends_with_newline(&self.path, len)?,
            });
        }
        guard
            .as_mut()
            .context("the file index is missing after it was built")
    }

    /// Append records (none of them in the file, all columns known) under
    /// the journal with `write`, and update the index with their id `hashes`.
    fn append(
        &self,
        index: &mut Index,
        hashes: &[u64],
        write: impl FnOnce(&mut dyn Write, &[String]) -> Result<()>,
    ) -> Result<()> {
        let journal = self.journal();
        crate::fsutil::write_bytes_atomic(&journal, index.len.to_string().as_bytes())?;
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.path)
            .with_context(|| format!("could not open {} to append", self.path.display()))?;
        {
            let mut out = std::io::BufWriter::with_capacity(256 * 1024, &file);
            write(&mut out, &index.columns)?;
            out.flush()
                .with_context(|| format!("could not write {}", self.path.display()))?;
        }
        file.sync_data()
            .with_context(|| format!("could not flush {} to disk", self.path.display()))?;
        std::fs::remove_file(&journal)
            .with_context(|| format!("could not remove {}", journal.display()))?;
        self.logged(|| {
            format!(
                "appended {} records to {}",
                hashes.len(),
                self.path.display()
            )
        });
        let meta = file.metadata()?;
        index.len = meta.len();
        index.modified = meta.modified().ok();
        // `appendable` saw that these ids are new and unique.
        index.ids.add_new(hashes);
        Ok(())
    }

    /// Upsert `records`: appended as they stand when every id is new to the
    /// file, else by a rewrite that replaces records where they stand.
    fn upsert_records(&self, records: &[Record]) -> Result<Vec<Outcome>> {
        let mut outcomes = Vec::with_capacity(records.len());
        // The records that have an id, and the hashes of their ids.
        let mut keyed: Vec<&Record> = Vec::with_capacity(records.len());
        let mut hashes: Vec<u64> = Vec::with_capacity(records.len());
        for record in records.iter() {
            match self.id_of(record) {
                Some(id) => {
                    hashes.push(self.hash(&id));
                    keyed.push(record);
                    outcomes.push(Outcome::Ok { id });
                }
                None => outcomes.push(Outcome::Rejected {
                    id: None,
                    reason: format!("the record has no {}", self.id_field),
                }),
            }
        }
        if keyed.is_empty() {
            return Ok(outcomes);
        }
        let mut guard = self.lock()?;
        // The common case of a bulk import: ids new to the file and
        // unique in the batch, columns known. The batch is appended as
        // it stands, with no copy of its records.
        if self.exists() {
            let index = self.index(&mut guard)?;
            let header = self.format.has_header();
            let known_columns =
                |r: &&Record| !header || r.keys().all(|k| index.columns.contains(k));
            let sorted = keyed
                .iter()
                .all(known_columns)
                .then(|| self.appendable(index, &hashes))
                .flatten();
            if let Some(sorted) = sorted {
                self.append(index, &sorted, |out, columns| {
                    self.format.append(out, columns, &keyed)
                })?;
                return Ok(outcomes);
            }
        }
        // id -> the last record of the batch with that id
        let mut by_id: HashMap<String, Record> = HashMap::new();
        let mut order = Vec::new();
        for record in keyed {
            if let Some(id) = self.id_of(record) {
                if by_id.insert(id.clone(), record.clone()).is_none() {
                    order.push(id);
                }
            }
        }
        // Records already in the file are replaced where they stand; the
        // rest are appended, in the order they came.
        let written: Vec<Record> = order
            .iter()
            .filter_map(|id| by_id.get(id).cloned())
            .collect();
        let pending = std::cell::RefCell::new(by_id);
        self.rewrite_locked(
            &mut guard,
            &written,
            |record| match self.id_of(&record) {
                Some(id) => Some(pending.borrow_mut().remove(&id).unwrap_or(record)),
                None => Some(record),
            },
            || {
                let mut left = pending.borrow_mut();
                order.iter().filter_map(|id| left.remove(id)).collect()
            },
        )?;
        Ok(outcomes)
    }

    /// Upsert records as JSON text. A batch of new ids, each record on one
    /// line, is appended byte for byte; anything else is parsed and takes
    /// [`Store::upsert_records`].
    fn upsert_raw(&self, records: &RawRecords) -> Result<Vec<Outcome>> {
        let (Some(ids), Some(lines)) = (records.ids(), records.as_lines()) else {
            return self.upsert_records(&records.to_records()?);
        };
        if !self.format.writes_raw() {
            return self.upsert_records(&records.to_records()?);
        }
        let mut outcomes = Vec::with_capacity(records.len());
        let mut hashes = Vec::with_capacity(records.len());
        for id in ids {
            hashes.push(self.hash(id));
            outcomes.push(Outcome::Ok { id: id.to_string() });
        }
        {
            let mut guard = self.lock()?;
            if self.exists() {
                let index = self.index(&mut guard)?;
                if let Some(sorted) = self.appendable(index, &hashes) {
                    self.append(
                        index,
                        &sorted,
                        |out, _| Ok(out.write_all(lines.as_bytes())?),
                    )?;
                    return Ok(outcomes);
                }
            }
        }
        self.upsert_records(&records.to_records()?)
    }

    /// The id `hashes`, sorted, when their records can simply be appended:
    /// the file has content ending in a newline, and the ids are new and
    /// unique.
    fn appendable(&self, index: &Index, hashes: &[u64]) -> Option<Vec<u64>> {
        if index.len == 0 || !index.clean_end {
            return None;
        }
        let mut sorted = hashes.to_vec();
        sorted.sort_unstable();
        let unique = sorted.windows(2).all(|w| w[0] != w[1]);
        (unique && !index.ids.contains_any(&sorted)).then_some(sorted)
    }

    /// [`Store::rewrite_locked`] under the write lock.
    fn rewrite<'a>(
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
    fn rewrite_locked<'a>(
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

impl<F: Format> Store<F> {
    /// Create profiles, or merge into the records that have their ids, in
    /// one rewrite.
    fn create_profiles(&self, profiles: Vec<Record>) -> Result<Vec<ProfileOutcome>> {
        let mut outcomes = Vec::with_capacity(profiles.len());
        // id -> the fields to merge; `order` keeps the order they came in.
        let mut pending: HashMap<String, Record> = HashMap::new();
        let mut order = Vec::new();
        for fields in profiles {
            match self.id_of(&fields) {
                Some(id) => {
                    outcomes.push(ProfileOutcome::Ok { id: id.clone() });
                    match pending.get_mut(&id) {
                        Some(f) => f.extend(fields),
                        None => {
                            order.push(id.clone());
                            pending.insert(id, fields);
                        }
                    }
                }
                None => outcomes.push(ProfileOutcome::Rejected {
                    reason: format!("the profile has no {}", self.id_field),
                }),
            }
        }
        if pending.is_empty() {
            return Ok(outcomes);
        }
        let written: Vec<Record> = order
            .iter()
            .filter_map(|id| pending.get(id).cloned())
            .collect();
        let left = std::cell::RefCell::new(pending);
        self.rewrite(
            &written,
            |mut record| {
                if let Some(id) = self.id_of(&record) {
                    if let Some(fields) = left.borrow_mut().remove(&id) {
                        record.extend(fields);
                    }
                }
                Some(record)
            },
            || {
                let mut left = left.borrow_mut();
                order.iter().filter_map(|id| left.remove(id)).collect()
            },
        )?;
        Ok(outcomes)
    }

    /// Update profiles in one scan and one rewrite, with the outcomes that
    /// one `update_profile` after another would give: a missing id is not
    /// found, a change of id onto another record's is refused.
    fn update_profiles(
        &self,
        updates: Vec<(String, ProfileUpdate)>,
    ) -> Result<Vec<ProfileOutcome>> {
        let mut guard = self.lock()?;
        // Only the ids the batch names (and may move to) are looked for,
        // so memory stays with the batch, not the file.
        let mut wanted: HashSet<String> = HashSet::new();
        for (id, update) in &updates {
            wanted.insert(id.clone());
            if let Some(new_id) = self.id_of(&update.set) {
                wanted.insert(new_id);
            }
        }
        // id now -> the id of the record in the file that holds it.
        let mut origin: HashMap<String, String> = HashMap::new();
        for record in self.records(0)? {
            if let Some(id) = self.id_of(&record?) {
                if wanted.contains(&id) {
                    origin.insert(id.clone(), id);
                }
            }
        }
        let mut outcomes = Vec::with_capacity(updates.len());
        let mut edits: HashMap<String, Vec<ProfileUpdate>> = HashMap::new();
        for (id, update) in updates {
            let Some(file_id) = origin.get(&id).cloned() else {
                outcomes.push(ProfileOutcome::NotFound {
                    reason: format!("{:#}", self.not_found(&id)),
                });
                continue;
            };
            let new_id = self.id_of(&update.set).unwrap_or_else(|| id.clone());
            if new_id != id {
                if origin.contains_key(&new_id) {
                    outcomes.push(ProfileOutcome::Rejected {
                        reason: format!(
                            "another record already has {} \"{new_id}\"",
                            self.id_field
                        ),
                    });
                    continue;
                }
                origin.remove(&id);
                origin.insert(new_id.clone(), file_id.clone());
            }
            outcomes.push(ProfileOutcome::Ok { id: new_id });
            edits.entry(file_id).or_default().push(update);
        }
        if edits.is_empty() {
            return Ok(outcomes);
        }
        let sets: Vec<&Record> = edits.values().flatten().map(|u| &u.set).collect();
        // A cleared field is removed (an empty cell in a CSV file).
        self.rewrite_locked(
            &mut guard,
            sets,
            |mut record| {
                let changes = self.id_of(&record).and_then(|id| edits.get(&id));
                for update in changes.into_iter().flatten() {
                    apply_update(&mut record, update);
                }
                Some(record)
            },
            Vec::new,
        )?;
        Ok(outcomes)
    }

    /// Delete profiles in one rewrite; ids already gone are done too.
    fn delete_profiles(&self, ids: Vec<String>) -> Result<Vec<ProfileOutcome>> {
        let mut guard = self.lock()?;
        let gone: HashSet<&str> = ids.iter().map(String::as_str).collect();
        let mut any = false;
        for record in self.records(0)? {
            if self
                .id_of(&record?)
                .is_some_and(|id| gone.contains(id.as_str()))
            {
                any = true;
                break;
            }
        }
        if any {
            self.rewrite_locked(
                &mut guard,
                [],
                |record| {
                    let keep = self
                        .id_of(&record)
                        .is_none_or(|id| !gone.contains(id.as_str()));
                    keep.then_some(record)
                },
                Vec::new,
            )?;
        }
        Ok(ids
            .iter()
            .map(|id| ProfileOutcome::Ok { id: id.clone() })
            .collect())
    }
}

/// Set and clear the fields an export update names; a cleared field is
/// removed (an empty cell in a CSV file).
fn apply_update(record: &mut Record, update: &ProfileUpdate) {
    record.extend(update.set.clone());
    for key in &update.clear {
        record.shift_remove(key);
    }
}

/// A set of id hashes in 4 bytes per record, which matters when a bulk
/// import appends millions of records (RSS is a benchmark target). A hash
/// keeps 48 of its bits: the top 16 pick one of 65,536 buckets, the next 32
/// are stored, sorted within their bucket, in one vector (`starts` says
/// where each bucket begins). With a million ids a lookup of a new id
/// collides with probability 1 in 280 million; a collision only sends a
/// batch down the rewrite path, which is always correct.
///
/// New ids first gather in `recent` (a hash set of at most [`RECENT_IDS`]),
/// which is merged into the buckets when full: merging every batch into the
/// buckets moved the whole set each time, an eighth of a million-record
/// import's CPU.
#[derive(Default)]
struct IdSet {
    /// `low[starts[b]..starts[b + 1]]` is bucket `b`; empty until the first id.
    starts: Vec<usize>,
    low: Vec<u32>,
    /// The 48 kept bits of ids added since the last merge. Fx hashing is
    /// enough: the keys are already hashes.
    recent: rustc_hash::FxHashSet<u64>,
}

const RECENT_IDS: usize = 1 << 16;

const ID_BUCKETS: usize = 1 << 16;

/// A hash's bucket and stored bits.
fn id_key(hash: u64) -> (usize, u32) {
    ((hash >> 48) as usize, (hash >> 16) as u32)
}

impl IdSet {
    fn contains(&self, hash: u64) -> bool {
        self.in_buckets(hash) || self.recent.contains(&(hash >> 16))
    }

    fn in_buckets(&self, hash: u64) -> bool {
        let (b, low) = id_key(hash);
        match (self.starts.get(b), self.starts.get(b + 1)) {
            (Some(&from), Some(&to)) => self.low[from..to].binary_search(&low).is_ok(),
            _ => false,
        }
    }

    /// Whether any of `sorted` (hashes in ascending order, so the buckets
    /// are read front to back) is in the set.
    fn contains_any(&self, sorted: &[u64]) -> bool {
        sorted.iter().any(|&h| self.contains(h))
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.low.len() + self.recent.len()
    }

    fn extend(&mut self, hashes: impl IntoIterator<Item = u64>) {
        let new: Vec<u64> = hashes.into_iter().filter(|h| !self.contains(*h)).collect();
        self.add_new(&new);
    }

    /// Add hashes none of which is in the set (they may repeat each other).
    fn add_new(&mut self, hashes: &[u64]) {
        self.recent.extend(hashes.iter().map(|h| h >> 16));
        if self.recent.len() >= RECENT_IDS {
            self.settle();
        }
    }

    /// Merge `recent` into the buckets.
    fn settle(&mut self) {
        let mut new: Vec<(usize, u32)> = std::mem::take(&mut self.recent)
            .into_iter()
            .map(|k| id_key(k << 16))
            .collect();
        if new.is_empty() {
            return;
        }
        new.sort_unstable();
        if self.starts.is_empty() {
            self.starts = vec![0; ID_BUCKETS + 1];
        }
        // Merge from the back into the grown vector, bucket by bucket: no
        // second copy of the set is ever allocated. `w` (where the next
        // value goes) is always the old values left (`i`) plus the new ones
        // left (`j`), so nothing unread is overwritten.
        let total = self.low.len() + new.len();
        let mut old_end = self.low.len();
        self.low.resize(total, 0);
        let (mut j, mut w) = (new.len(), total);
        for b in (0..ID_BUCKETS).rev() {
            let old_start = self.starts[b];
            let mut i = old_end;
            while j > 0 && new[j - 1].0 == b {
                w -= 1;
                if i > old_start && self.low[i - 1] > new[j - 1].1 {
                    self.low[w] = self.low[i - 1];
                    i -= 1;
                } else {
                    self.low[w] = new[j - 1].1;
                    j -= 1;
                }
            }
            // The rest of the bucket moves up by the new values still to
            // place below it.
            if j > 0 {
                self.low.copy_within(old_start..i, old_start + j);
            }
            w = old_start + j;
            self.starts[b] = w;
            old_end = old_start;
            if j == 0 {
                break;
            }
        }
        self.starts[ID_BUCKETS] = total;
    }
}

/// A file connector's sync token: how many records were read, and the id of
/// the last one (`"3:c3"`), so records deleted before it do not shift the
/// next call past new ones. A bare number (`"3"`) is a position alone.
#[derive(Debug, Clone, Default, PartialEq)]
struct SyncToken {
    position: u64,
    id: Option<String>,
}

impl SyncToken {
    fn parse(token: &str) -> Option<SyncToken> {
        let (position, id) = match token.split_once(':') {
            Some((p, id)) if !id.is_empty() => (p, Some(id.to_string())),
            Some(_) => return None,
            None => (token, None),
        };
        Some(SyncToken {
            position: position.parse().ok()?,
            id,
        })
    }
}

impl std::fmt::Display for SyncToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.id {
            Some(id) => write!(f, "{}:{id}", self.position),
            None => write!(f, "{}", self.position),
        }
    }
}

/// Whether the file of length `len` ends with a newline.
fn ends_with_newline(path: &Path, len: u64) -> Result<bool> {
    use std::io::{Read, Seek, SeekFrom};
    if len == 0 {
        return Ok(false);
    }
    let mut file =
        std::fs::File::open(path).with_context(|| format!("could not open {}", path.display()))?;
    let mut last = [0u8; 1];
    file.seek(SeekFrom::Start(len - 1))
        .and_then(|_| file.read_exact(&mut last))
        .with_context(|| format!("could not read {}", path.display()))?;
    Ok(last[0] == b'\n')
}

/// A reader that stops at byte `end` (where an unfinished append began).
struct UpTo {
    inner: Box<dyn RecordReader>,
    end: u64,
}

impl Iterator for UpTo {
    type Item = Result<Record>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.inner.byte_offset() >= self.end {
            return None;
        }
        self.inner.next()
    }
}

impl RecordReader for UpTo {
    fn byte_offset(&self) -> u64 {
        self.inner.byte_offset()
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
            let id = match given_id(&value, &s.id_field, "insert")? {
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
            if let Some(new_id) = given_id(&value, &s.id_field, "patch")? {
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
            // Check first so a missing id leaves the file untouched: the
            // rewrite would otherwise add the value's new columns, or create
            // the file.
            if s.find(&id)?.is_none() {
                return Err(s.not_found(&id));
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
        let token = match since {
            None => SyncToken::default(),
            Some(token) => SyncToken::parse(token).ok_or_else(|| {
                usage(format!(
                    "lastSync \"{token}\" is not a position in {}",
                    self.store.path.display()
                ))
                .hint("file connectors sync by position: pass the nextSync of the previous getupdates, or no lastSync for every record")
            })?,
        };
        self.blocking(move |s| {
            // Where to start: right after the anchor record, wherever it is
            // now (a delete before it moves it up). When it is gone, start
            // over: sending records twice is safe, skipping one is not.
            let start = match &token.id {
                None => token.position,
                Some(anchor) => {
                    let mut found = 0u64;
                    for (i, record) in s.records(0)?.enumerate() {
                        if s.id_of(&record?).as_deref() == Some(anchor.as_str()) {
                            found = i as u64 + 1;
                            break;
                        }
                    }
                    found
                }
            };
            let mut entries = Vec::new();
            let mut position = 0u64;
            let mut last = None;
            for record in s.records(0)? {
                let record = record?;
                position += 1;
                if position <= start {
                    last = s.id_of(&record);
                    continue;
                }
                let id = id_text(record.get(&s.id_field)).map_err(|bad| {
                    let why = match bad {
                        BadId::Missing => format!("has no {}", s.id_field),
                        bad => format!("is unusable: {}", bad.reason(&s.id_field)),
                    };
                    failed(format!("record {position} of {} {why}", s.path.display()))
                })?;
                last = Some(id.clone());
                entries.push(Change {
                    id,
                    kind: ChangeType::Upsert,
                    value: Some(record),
                });
                if limit.is_some_and(|l| entries.len() >= l) {
                    break;
                }
            }
            let next = if position >= start {
                SyncToken { position, id: last }
            } else {
                // A bare position past the end (the file shrank): keep it.
                token
            };
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
        Ok(ExportFields::keyed_by_id_field(&self.store.id_field, false))
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
                        apply_update(&mut record, &update);
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
        let result = self.blocking(move |s| s.create_profiles(profiles)).await;
        ProfileOutcome::of_batch(result, n)
    }

    /// One rewrite of the file per batch, not one per profile.
    async fn update_profiles(&self, updates: Vec<(String, ProfileUpdate)>) -> Vec<ProfileOutcome> {
        let n = updates.len();
        let result = self.blocking(move |s| s.update_profiles(updates)).await;
        ProfileOutcome::of_batch(result, n)
    }

    /// One rewrite of the file per batch (none when no id is in it).
    async fn delete_profiles(&self, ids: Vec<String>) -> Vec<ProfileOutcome> {
        let n = ids.len();
        let result = self.blocking(move |s| s.delete_profiles(ids)).await;
        ProfileOutcome::of_batch(result, n)
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
        let mut outcomes = self.upsert_batch(Records::new(vec![record])).await?;
        Ok(outcomes.remove(0))
    }

    async fn upsert_batch(&self, records: Records) -> Result<Vec<Outcome>> {
        self.blocking(move |s| s.upsert_records(&records)).await
    }

    fn writes_raw(&self) -> bool {
        self.store.format.writes_raw()
    }

    fn written_file(&self) -> Option<&Path> {
        Some(&self.store.path)
    }

    async fn upsert_raw(&self, records: Arc<RawRecords>) -> Result<Vec<Outcome>> {
        self.blocking(move |s| s.upsert_raw(&records)).await
    }
}

#[cfg(test)]
mod tests {

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

    fn record(id: &str) -> Record {
        let mut r = Record::new();
        r.insert("id".into(), Value::String(id.into()));
        r
    }

    #[test]
    fn a_write_failing_midway_leaves_the_file_intact() {
        let dir = tempfile::tempdir().unwrap();
        let s = failing_store(FailingWrite { fail_after: 2 }, dir.path());
        let new = record("c4");
        let err = s.rewrite([&new], Some, || vec![new.clone()]).unwrap_err();
        assert!(format!("{err:#}").contains("no space left"), "{err:#}");
        assert_eq!(std::fs::read_to_string(&s.path).unwrap(), ORIGINAL);
        assert_eq!(
            file_names(dir.path()),
            ["data.jsonl"],
            "a temporary file was left"
        );
    }

    #[test]
    fn a_read_error_midway_leaves_the_file_intact() {
        let dir = tempfile::tempdir().unwrap();
        let s = failing_store(Jsonl, dir.path());
        // The second line breaks: the rewrite has written the first record
        // to the temporary file when the reader yields the error.
        let broken = ORIGINAL.replacen("\"Grace\"}", "\"Grace\",}", 1);
        std::fs::write(&s.path, &broken).unwrap();
        let new = record("c4");
        let err = s.rewrite([&new], Some, || vec![new.clone()]).unwrap_err();
        assert!(format!("{err:#}").contains("line 2"), "{err:#}");
        assert_eq!(std::fs::read_to_string(&s.path).unwrap(), broken);
        assert_eq!(
            file_names(dir.path()),
            ["data.jsonl"],
            "a temporary file was left"
        );
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

    #[test]
    fn sync_tokens() {
        assert_eq!(SyncToken::parse("0"), Some(SyncToken::default()));
        let t = SyncToken::parse("3:cus:3").unwrap();
        assert_eq!((t.position, t.id.as_deref()), (3, Some("cus:3")));
        assert_eq!(t.to_string(), "3:cus:3");
        assert_eq!(SyncToken::parse("3:"), None);
        assert_eq!(SyncToken::parse("-1"), None);
        assert_eq!(SyncToken::parse("2026-01-01T00:00:00Z"), None);
    }

    use std::os::unix::fs::MetadataExt;

    use serde_json::json;

    use super::*;
    use crate::connector::jsonl::{self, Jsonl};

    fn rec(v: Value) -> Record {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    fn store(path: &Path) -> FileConnector<Jsonl> {
        FileConnector::new(jsonl::spec(), Jsonl, path.to_path_buf(), "id".into())
    }

    fn inode(path: &Path) -> u64 {
        std::fs::metadata(path).unwrap().ino()
    }

    #[test]
    fn the_id_set_merges_sorted_without_duplicates() {
        // Hashes that differ in their stored bits, across buckets.
        let h = |bucket: u64, low: u64| (bucket << 48) | (low << 16);
        let mut set = IdSet::default();
        set.extend([h(5, 1), h(1, 7), h(9, 1), h(1, 7)]);
        set.extend([]);
        set.settle();
        set.extend([h(1, 3), h(9, 1), h(0, 0), h(65535, 9)]);
        assert_eq!(set.len(), 6);
        set.settle();
        assert_eq!(set.low.len(), 6);
        for (b, l) in [(5, 1), (1, 7), (9, 1), (1, 3), (0, 0), (65535, 9)] {
            assert!(set.contains(h(b, l)), "{b}/{l} is in the set");
        }
        assert!(!set.contains(h(1, 4)) && !set.contains(h(2, 7)));
        set.extend([h(1, 5), h(1, 1), h(5, 0)]);
        set.settle();
        assert_eq!(set.low[set.starts[1]..set.starts[2]], [1, 3, 5, 7]);
        assert_eq!(set.low[set.starts[5]..set.starts[6]], [0, 1]);
        // The 16 lowest bits are not kept: they add nothing to the set.
        set.extend([h(1, 5) | 0xffff]);
        assert_eq!(set.len(), 9);
    }

    #[test]
    fn the_id_set_agrees_with_a_btree_set_over_random_batches() {
        let hasher = RandomState::new();
        let mut set = IdSet::default();
        let mut model = std::collections::BTreeSet::new();
        for batch in 0..40u64 {
            // Batches of different sizes, some ids repeated across batches.
            let hashes: Vec<u64> = (0..(batch * 37 % 500))
                .map(|i| hasher.hash_one((batch * 131 + i) % 9_000))
                .collect();
            model.extend(hashes.iter().map(|h| h >> 16));
            set.extend(hashes);
            // Some lookups find ids merged into buckets, some recent ones.
            if batch % 3 == 0 {
                set.settle();
            }
            assert_eq!(set.len(), model.len());
        }
        // Some ids only in `recent`.
        let late: Vec<u64> = (20_000..20_300).map(|n| hasher.hash_one(n)).collect();
        model.extend(late.iter().map(|h| h >> 16));
        set.extend(late);
        assert!(!set.recent.is_empty());
        for n in 0..21_000u64 {
            let h = hasher.hash_one(n);
            assert_eq!(set.contains(h), model.contains(&(h >> 16)), "id {n}");
        }
        // The sorted walk agrees with one lookup per hash.
        for from in (0..21_000u64).step_by(700) {
            let mut sorted: Vec<u64> = (from..from + 40).map(|n| hasher.hash_one(n)).collect();
            sorted.sort_unstable();
            let any = sorted.iter().any(|h| model.contains(&(h >> 16)));
            assert_eq!(set.contains_any(&sorted), any, "ids {from}..");
        }
    }

    #[tokio::test]
    async fn new_ids_are_appended_and_known_ids_replaced_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.jsonl");
        let c = store(&path);
        c.upsert_batch(Records::new(vec![
            rec(json!({"id": "a"})),
            rec(json!({"id": "b"})),
        ]))
        .await
        .unwrap();
        let first = inode(&path);
        // New ids: appended to the same file, not a rewritten copy.
        c.upsert_batch(Records::new(vec![rec(json!({"id": "c"}))]))
            .await
            .unwrap();
        assert_eq!(inode(&path), first);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"id\":\"a\"}\n{\"id\":\"b\"}\n{\"id\":\"c\"}\n"
        );
        // A known id: the file is rewritten with the record in its place.
        let outcomes = c
            .upsert_batch(Records::new(vec![
                rec(json!({"id": "b", "v": 2})),
                rec(json!({"id": "d"})),
            ]))
            .await
            .unwrap();
        assert_eq!(outcomes.len(), 2);
        assert_ne!(inode(&path), first);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"id\":\"a\"}\n{\"id\":\"b\",\"v\":2}\n{\"id\":\"c\"}\n{\"id\":\"d\"}\n"
        );
        assert!(!dir.path().join(".out.jsonl.ferry-append").exists());
    }

    #[tokio::test]
    async fn a_torn_append_is_cut_back_by_the_next_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.jsonl");
        let good = "{\"id\":\"a\"}\n{\"id\":\"b\"}\n";
        // What a process killed mid-append leaves: the journal with the old
        // length and half a batch after it.
        std::fs::write(&path, format!("{good}{{\"id\":\"c\"}}\n{{\"id\":\"d\",\"x")).unwrap();
        std::fs::write(
            dir.path().join(".out.jsonl.ferry-append"),
            good.len().to_string(),
        )
        .unwrap();
        let c = store(&path);
        // Reads stop where the journal says the file ended, without repairing it.
        let read = c.read_page(&Position::start(), 10).await.unwrap();
        assert_eq!(read.records.len(), 2);
        assert!(dir.path().join(".out.jsonl.ferry-append").exists());
        c.upsert_batch(Records::new(vec![
            rec(json!({"id": "c"})),
            rec(json!({"id": "d"})),
        ]))
        .await
        .unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("{good}{{\"id\":\"c\"}}\n{{\"id\":\"d\"}}\n")
        );
        assert!(!dir.path().join(".out.jsonl.ferry-append").exists());
    }

    #[tokio::test]
    async fn a_damaged_journal_stops_the_write_and_says_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.jsonl");
        std::fs::write(&path, "{\"id\":\"a\"}\n").unwrap();
        std::fs::write(dir.path().join(".out.jsonl.ferry-append"), "oops").unwrap();
        let err = store(&path)
            .upsert_batch(Records::new(vec![rec(json!({"id": "b"}))]))
            .await
            .unwrap_err();
        let failure = crate::error::find_failure(&err).unwrap();
        assert!(
            failure.message.contains("is damaged"),
            "{}",
            failure.message
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"id\":\"a\"}\n");
    }

    #[tokio::test]
    async fn a_file_without_a_final_newline_is_never_glued_to() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.jsonl");
        std::fs::write(&path, "{\"id\":\"a\"}").unwrap();
        store(&path)
            .upsert_batch(Records::new(vec![rec(json!({"id": "b"}))]))
            .await
            .unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"id\":\"a\"}\n{\"id\":\"b\"}\n"
        );
    }

    #[tokio::test]
    async fn a_file_changed_behind_the_index_is_scanned_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.jsonl");
        let c = store(&path);
        c.upsert_batch(Records::new(vec![rec(json!({"id": "a"}))]))
            .await
            .unwrap();
        c.upsert_batch(Records::new(vec![rec(json!({"id": "b"}))]))
            .await
            .unwrap();
        // Someone else adds c; our next batch upserts c and must replace it.
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("{\"id\":\"c\",\"by\":\"hand\"}\n");
        std::fs::write(&path, &text).unwrap();
        c.upsert_batch(Records::new(vec![rec(json!({"id": "c"}))]))
            .await
            .unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"id\":\"a\"}\n{\"id\":\"b\"}\n{\"id\":\"c\"}\n"
        );
    }

    /// A batch of updates answers what one update after another would:
    /// an id moved onto a free one, a missing id, an id moved onto a taken one.
    #[tokio::test]
    async fn a_batch_of_updates_is_one_rewrite_with_per_profile_outcomes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.jsonl");
        std::fs::write(
            &path,
            "{\"id\":\"a\",\"n\":1,\"x\":1}\n{\"id\":\"b\",\"n\":2}\n",
        )
        .unwrap();
        let c = store(&path);
        let update = |set: Value, clear: &[&str]| ProfileUpdate {
            set: rec(set),
            clear: clear.iter().map(|k| k.to_string()).collect(),
        };
        let outcomes = c
            .update_profiles(vec![
                ("a".into(), update(json!({"id": "a2", "n": 10}), &["x"])),
                ("gone".into(), update(json!({"n": 0}), &[])),
                ("b".into(), update(json!({"id": "a2"}), &[])),
                ("b".into(), update(json!({"n": 20}), &[])),
            ])
            .await;
        assert_eq!(outcomes[0], ProfileOutcome::Ok { id: "a2".into() });
        assert!(
            matches!(&outcomes[1], ProfileOutcome::NotFound { reason } if reason.contains("\"gone\"")),
            "{outcomes:?}"
        );
        assert!(
            matches!(&outcomes[2], ProfileOutcome::Rejected { reason } if reason.contains("already has id \"a2\"")),
            "{outcomes:?}"
        );
        assert_eq!(outcomes[3], ProfileOutcome::Ok { id: "b".into() });
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"id\":\"a2\",\"n\":10}\n{\"id\":\"b\",\"n\":20}\n"
        );
        let deleted = c.delete_profiles(vec!["a2".into(), "never".into()]).await;
        assert!(deleted
            .iter()
            .all(|o| matches!(o, ProfileOutcome::Ok { .. })));
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"id\":\"b\",\"n\":20}\n"
        );
    }

    #[tokio::test]
    async fn csv_appends_rows_and_rewrites_for_a_new_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv");
        let c = FileConnector::new(
            crate::connector::csv::spec(),
            crate::connector::csv::Csv::comma(),
            path.clone(),
            "id".into(),
        );
        c.upsert_batch(Records::new(vec![rec(json!({"id": "1", "name": "Ada"}))]))
            .await
            .unwrap();
        let first = inode(&path);
        c.upsert_batch(Records::new(vec![rec(json!({"id": "2"}))]))
            .await
            .unwrap();
        assert_eq!(inode(&path), first);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "id,name\n1,Ada\n2,\n"
        );
        c.upsert_batch(Records::new(vec![rec(json!({"id": "3", "city": "Oslo"}))]))
            .await
            .unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "id,name,city\n1,Ada,\n2,,\n3,,Oslo\n"
        );
    }
}
