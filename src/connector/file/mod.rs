//! What the `csv` and `jsonl` connectors share: a file of records, read as a
//! stream and rewritten atomically (temporary file, fsync, rename) on a
//! change, so a run killed mid-write leaves the old file whole. Each format
//! only says how to read and write its rows ([`Format`]).
//!
//! - `store`: the file, its reads and atomic rewrites, the record operations;
//! - `upsert`: batch upserts, appended when they can be, else rewritten;
//! - `index`: what the store knows of its file, so a batch of new ids is
//!   appended instead of rewriting the file;
//! - `journal`: what makes an append crash-safe;
//! - `sync`: the position token of `getupdates`;
//! - `export`: profiles (files hold no group memberships).
//!
//! Two processes never write the same file at once: an import or export
//! holds the file's lock ([`crate::lock`], via [`Connector::written_file`])
//! for its whole run.

mod export;
mod index;
mod journal;
mod store;
mod sync;
mod upsert;

use std::hash::RandomState;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use async_trait::async_trait;
use serde_json::Value;

use crate::connector::raw::{RawPage, RawRecords};
use crate::connector::{
    ChangeFeed, ProfileSink, RawSink, RawSource, RecordLookup, RecordSink, RecordSource,
    RecordStore,
};
use crate::connector::{
    Connector, ExportFields, FieldSpec, OptionSpec, Page, Position, ProfileOutcome, ProfileUpdate,
    Record, Records, Role, Spec, StoreFile, Updates, UpsertOutcome, WriteOp,
};
use crate::output::Output;
use store::Store;
use sync::SyncToken;

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
    /// (so import may pass records through as text, into the file and out
    /// of it).
    fn json_rows(&self) -> bool {
        false
    }

    /// Up to `limit` rows from byte `start`, up to byte `end` when an
    /// unfinished append stops the file there, as the records' JSON texts,
    /// and the byte offset after the last one: for formats with
    /// [`Format::json_rows`]. `None` when a row is not one valid JSON
    /// object, which the parsed read then words with its line.
    fn raw_rows(
        &self,
        path: &Path,
        start: u64,
        end: Option<u64>,
        limit: usize,
    ) -> Result<Option<(RawRecords, u64)>> {
        let _ = (path, start, end, limit);
        Ok(None)
    }
}

/// A file-backed connector over a [`Format`].
pub struct FileConnector<F: Format> {
    spec: Spec,
    store: Arc<Store<F>>,
}

impl<F: Format> FileConnector<F> {
    /// The spec of a file of records in this format: read and written,
    /// an `id` field that the idField option names, batches of 5,000, one
    /// at a time.
    pub fn spec(
        code: &'static str,
        label: &'static str,
        description: &'static str,
        options: Vec<OptionSpec>,
    ) -> Spec {
        Spec {
            code,
            label,
            description,
            roles: vec![Role::Source, Role::Destination],
            options,
            fields: vec![FieldSpec::store_id()],
            extra_fields: true,
            capabilities: Self::CAPABILITIES,
            max_batch_size: 5_000,
            parallelism: 1,
            account_values: false,
            store: Some(StoreFile::plain("path")),
        }
    }

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

crate::capabilities!([F: Format] FileConnector<F>: Records, Updates, Source, Sink, Profiles);

#[async_trait]
impl<F: Format> Connector for FileConnector<F> {
    fn spec(&self) -> &Spec {
        &self.spec
    }

    fn id_field(&self) -> &str {
        &self.store.id_field
    }

    async fn check(&self) -> Result<Value> {
        self.blocking(|s| s.check()).await
    }

    fn written_file(&self) -> Option<&Path> {
        Some(&self.store.path)
    }
}

#[async_trait]
impl<F: Format> RecordLookup for FileConnector<F> {
    async fn get(&self, id: &str) -> Result<Record> {
        let id = id.to_string();
        self.blocking(move |s| s.get(&id)).await
    }
}

#[async_trait]
impl<F: Format> RecordStore for FileConnector<F> {
    fn preview(&self, op: &WriteOp) -> Result<Vec<Value>> {
        Ok(super::preview_rows(
            op,
            &self.store.path.display().to_string(),
        ))
    }

    async fn insert(&self, value: Record) -> Result<Record> {
        self.blocking(move |s| s.insert(value)).await
    }

    async fn patch(&self, id: &str, value: Record) -> Result<Record> {
        let id = id.to_string();
        self.blocking(move |s| s.patch(&id, value)).await
    }

    async fn delete(&self, id: &str) -> Result<()> {
        let id = id.to_string();
        self.blocking(move |s| s.delete(&id)).await
    }
}

#[async_trait]
impl<F: Format> ChangeFeed for FileConnector<F> {
    async fn get_updates(&self, since: Option<&str>, limit: Option<usize>) -> Result<Updates> {
        let token = SyncToken::of(since, &self.store.path)?;
        self.blocking(move |s| s.updates(token, limit)).await
    }
}

#[async_trait]
impl<F: Format> RecordSource for FileConnector<F> {
    async fn read_page(&self, from: &Position, limit: usize) -> Result<Page> {
        let from = from.clone();
        self.blocking(move |s| s.read_page(&from, limit)).await
    }

    /// A JSON lines file's lines pass through as they are.
    fn raw(&self) -> Option<&dyn RawSource> {
        if self.store.format.json_rows() {
            Some(self)
        } else {
            None
        }
    }
}

#[async_trait]
impl<F: Format> RawSource for FileConnector<F> {
    async fn read_page_raw(&self, from: &Position, limit: usize) -> Result<RawPage> {
        let from = from.clone();
        self.blocking(move |s| s.read_page_raw(&from, limit)).await
    }
}

#[async_trait]
impl<F: Format> ProfileSink for FileConnector<F> {
    /// A file has no place for group memberships: export reports them skipped.
    async fn export_fields(&self) -> Result<ExportFields> {
        Ok(ExportFields::keyed_by_id_field(&self.store.id_field))
    }

    async fn find_profile(&self, key: &str) -> Result<Option<String>> {
        let key = key.to_string();
        self.blocking(move |s| Ok(s.find(&key)?.map(|_| key))).await
    }

    async fn create_profile(&self, fields: Record) -> Result<String> {
        self.blocking(move |s| s.create_profile(fields)).await
    }

    async fn update_profile(&self, id: &str, update: ProfileUpdate) -> Result<String> {
        let id = id.to_string();
        self.blocking(move |s| s.update_profile(&id, update)).await
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
        self.blocking(move |s| s.delete_profile(&id)).await
    }

    fn preview(&self, op: &WriteOp) -> Result<Vec<Value>> {
        RecordStore::preview(self, op)
    }
}

#[async_trait]
impl<F: Format> RecordSink for FileConnector<F> {
    async fn upsert(&self, record: Record) -> Result<UpsertOutcome> {
        let mut outcomes = self.upsert_batch(Records::new(vec![record])).await?;
        Ok(outcomes.remove(0))
    }

    async fn upsert_batch(&self, records: Records) -> Result<Vec<UpsertOutcome>> {
        self.blocking(move |s| s.upsert_records(&records)).await
    }

    fn raw(&self) -> Option<&dyn RawSink> {
        if self.store.format.json_rows() {
            Some(self)
        } else {
            None
        }
    }

    fn preview(&self, op: &WriteOp) -> Result<Vec<Value>> {
        RecordStore::preview(self, op)
    }
}

#[async_trait]
impl<F: Format> RawSink for FileConnector<F> {
    async fn upsert_raw(&self, records: Arc<RawRecords>) -> Result<Vec<UpsertOutcome>> {
        self.blocking(move |s| s.upsert_raw(&records)).await
    }
}

/// What the tests of the modules share: a jsonl store in a file, and
/// records written as JSON.
#[cfg(test)]
mod testing {
    use std::os::unix::fs::MetadataExt;
    use std::path::{Path, PathBuf};

    use serde_json::Value;

    use super::{FileConnector, Format};
    use crate::connector::jsonl::{self, Jsonl};
    use crate::connector::{Record, RecordSink, Records, UpsertOutcome};

    pub fn rec(v: Value) -> Record {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    /// A temporary folder, and the path of out.jsonl in it.
    pub fn out_file() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.jsonl");
        (dir, path)
    }

    pub fn store(path: &Path) -> FileConnector<Jsonl> {
        FileConnector::new(jsonl::spec(), Jsonl, path.to_path_buf(), "id".into())
    }

    /// Upsert the records of a JSON array as one batch.
    pub async fn upsert<F: Format>(c: &FileConnector<F>, records: Value) -> Vec<UpsertOutcome> {
        let records = match records {
            Value::Array(items) => items.into_iter().map(rec).collect(),
            _ => panic!("not an array"),
        };
        c.upsert_batch(Records::new(records)).await.unwrap()
    }

    pub fn text(path: &Path) -> String {
        std::fs::read_to_string(path).unwrap()
    }

    pub fn inode(path: &Path) -> u64 {
        std::fs::metadata(path).unwrap().ino()
    }
}
