//! The `sqlite` connector, the embedded default. A table ferry creates keeps
//! each record as JSON with its update time and a change sequence number, and
//! keeps deleted ids as tombstones, so `getupdates` can report inserts,
//! updates and deletes and never skip a record that shares a timestamp. An
//! existing table is used as it is: its columns are the record's fields.
//! As an export destination it is keyed by its id field and keeps group
//! memberships beside the table (`<table>_groups`, `<table>_members`).
//!
//! - `db`: the connection, the layout of the table, transactions, and the
//!   errors of the file itself;
//! - `layout`: the trait the two layouts answer, `managed` (ferry's table)
//!   and `existing` (a table used as it is), each with its own SQL;
//! - `records`: get, insert, patch, delete, pages and batch upserts;
//! - `updates`: `getupdates` and its sync token;
//! - `export`: profiles and group memberships.

mod db;
mod existing;
mod export;
mod layout;
mod managed;
mod records;
#[cfg(test)]
mod tests;
mod updates;

use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use async_trait::async_trait;
use serde_json::Value;

use crate::connector::options::{connector_options, Described, Num};
use crate::connector::StoreFile;
use crate::connector::{
    ChangeFeed, Env, GroupSink, ProfileSink, RecordLookup, RecordSink, RecordSource, RecordStore,
};
use crate::connector::{
    Connector, ExportFields, FieldSpec, FieldType, Options, Page, Position, ProfileOutcome,
    ProfileUpdate, Record, Records, Role, Spec, Updates, UpsertOutcome, WriteOp,
};
use crate::wal::Checkpoints;
use db::Db;
use export::{ADD_MEMBER, REMOVE_MEMBER};
use updates::Since;

connector_options! {
    /// The options of a `sqlite` account.
    pub struct SqliteOptions {
        /// Path of the SQLite file, relative to account.json; created on the first write
        #[option(label = "Database file", placeholder = "ferry.db", required)]
        pub path: String,
        /// The table holding the records; created on the first write when missing
        #[option(label = "Table", default = "records")]
        pub table: String,
        /// The field (or column) that identifies a record
        #[option(label = "Id field", default = "id")]
        pub id_field: String,
        /// How long a write waits for another process that holds the database (0 to 3600 seconds); past it the run stops, resumably
        #[option(label = "Busy timeout", kind = FieldType::Number, default = 10)]
        pub busy_timeout_secs: Num,
    }
}

/// The config [`open`] reads, for the registry.
pub type Config = SqliteOptions;

pub fn spec() -> Spec {
    Spec {
        code: "sqlite",
        label: "SQLite database",
        description: "Records in a table of a local SQLite file (the embedded default: no server, no credentials). A table ferry creates stores each record as JSON with its update time and tracks inserts, updates and deletes for getupdates; an existing table is used as it is, one column per field.",
        roles: vec![Role::Source, Role::Destination],
        options: SqliteOptions::option_specs(),
        fields: vec![FieldSpec::store_id()],
        extra_fields: true,
        // A table ferry manages also keeps group memberships beside it.
        capabilities: Sqlite::CAPABILITIES,
        max_batch_size: 1_000,
        parallelism: 1,
        account_values: false,
        store: Some(StoreFile {
            option: "path",
            snapshot: db::snapshot,
        }),
    }
}

pub fn open(_env: &Env, options: Options) -> Result<Box<dyn Connector>> {
    let config: SqliteOptions = options.parse()?;
    let at = options.at("busyTimeoutSecs");
    let busy_timeout = config.busy_timeout_secs.seconds_in(at, 0.0, 3600.0)?;
    let path = options.resolve(&config.path);
    Ok(Box::new(Sqlite {
        spec: spec(),
        db: Arc::new(Db {
            checkpoints: Mutex::new(Checkpoints::new(path.clone(), db::CHECKPOINT_EVERY)),
            path,
            table: config.table,
            id_field: config.id_field,
            busy_timeout,
            conn: Mutex::new(None),
            group_tables: Default::default(),
        }),
    }))
}

pub struct Sqlite {
    spec: Spec,
    db: Arc<Db>,
}

impl Sqlite {
    /// Run a blocking database operation without stalling the async
    /// workers. Called from the command's own future (`Runtime::block_on`
    /// of ferry's multi-threaded runtime, not a spawned task), it runs right
    /// there: that thread runs nothing else, and an export sends three
    /// batches a chunk, each of which spent about a quarter of its time
    /// handed to a blocking thread and back, waiting to be woken on two busy
    /// cores (1.6 s of a 1M-profile first run). From a task (an import's
    /// batches) or another runtime it goes to a blocking thread, as before:
    /// `block_in_place` there would move the worker to a new thread.
    async fn blocking<T, Op>(&self, op: Op) -> Result<T>
    where
        T: Send + 'static,
        Op: FnOnce(&Db) -> Result<T> + Send + 'static,
    {
        let db = Arc::clone(&self.db);
        let on_block_on = tokio::task::try_id().is_none()
            && tokio::runtime::Handle::try_current()
                .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        if on_block_on {
            return tokio::task::block_in_place(|| op(&db));
        }
        tokio::task::spawn_blocking(move || op(&db))
            .await
            .context("a database operation stopped unexpectedly")?
    }
}

crate::capabilities!(Sqlite: Records, Updates, Source, Sink, Profiles, Groups);

#[async_trait]
impl Connector for Sqlite {
    fn spec(&self) -> &Spec {
        &self.spec
    }

    fn id_field(&self) -> &str {
        &self.db.id_field
    }

    async fn check(&self) -> Result<Value> {
        self.blocking(|db| db.check()).await
    }
}

#[async_trait]
impl RecordSink for Sqlite {
    fn preview(&self, op: &WriteOp) -> Result<Vec<Value>> {
        Ok(super::preview_rows(
            op,
            &format!("{}#{}", self.db.path.display(), self.db.table),
        ))
    }

    async fn fields(&self) -> Result<Vec<FieldSpec>> {
        let spec_fields = self.spec.fields.clone();
        self.blocking(move |db| db.fields(spec_fields)).await
    }

    async fn upsert(&self, record: Record) -> Result<UpsertOutcome> {
        let mut outcomes = self.upsert_batch(Records::new(vec![record])).await?;
        Ok(outcomes.remove(0))
    }

    async fn upsert_batch(&self, records: Records) -> Result<Vec<UpsertOutcome>> {
        self.blocking(move |db| db.upsert_batch(&records)).await
    }
}

#[async_trait]
impl RecordLookup for Sqlite {
    async fn get(&self, id: &str) -> Result<Record> {
        let id = id.to_string();
        self.blocking(move |db| db.get(&id)).await
    }
}

#[async_trait]
impl RecordStore for Sqlite {
    async fn insert(&self, value: Record) -> Result<Record> {
        self.blocking(move |db| db.insert(value)).await
    }

    async fn patch(&self, id: &str, value: Record) -> Result<Record> {
        let id = id.to_string();
        self.blocking(move |db| db.patch(&id, value)).await
    }

    async fn delete(&self, id: &str) -> Result<()> {
        let id = id.to_string();
        self.blocking(move |db| db.delete(&id)).await
    }

    fn preview(&self, op: &WriteOp) -> Result<Vec<Value>> {
        RecordSink::preview(self, op)
    }
}

#[async_trait]
impl ChangeFeed for Sqlite {
    async fn get_updates(&self, since: Option<&str>, limit: Option<usize>) -> Result<Updates> {
        // Checked before any I/O, so a bad token is refused even when the
        // database does not exist yet.
        let since = Since::parse(since)?;
        self.blocking(move |db| db.updates(&since, limit)).await
    }
}

#[async_trait]
impl RecordSource for Sqlite {
    async fn read_page(&self, from: &Position, limit: usize) -> Result<Page> {
        let from = from.clone();
        self.blocking(move |db| db.read_page(&from, limit)).await
    }
}

#[async_trait]
impl ProfileSink for Sqlite {
    async fn export_fields(&self) -> Result<ExportFields> {
        Ok(ExportFields::keyed_by_id_field(&self.db.id_field))
    }

    async fn find_profile(&self, key: &str) -> Result<Option<String>> {
        let key = key.to_string();
        self.blocking(move |db| db.find_profile(key)).await
    }

    async fn create_profile(&self, fields: Record) -> Result<String> {
        self.blocking(move |db| db.create_profile(&fields)).await
    }

    /// One transaction per batch.
    async fn create_profiles(&self, profiles: Vec<Record>) -> Vec<ProfileOutcome> {
        let n = profiles.len();
        let result = self.blocking(move |db| db.create_profiles(&profiles)).await;
        ProfileOutcome::of_batch(result, n)
    }

    /// One transaction per batch.
    async fn update_profiles(&self, updates: Vec<(String, ProfileUpdate)>) -> Vec<ProfileOutcome> {
        let n = updates.len();
        let result = self.blocking(move |db| db.update_profiles(&updates)).await;
        ProfileOutcome::of_batch(result, n)
    }

    /// One transaction per batch.
    async fn delete_profiles(&self, ids: Vec<String>) -> Vec<ProfileOutcome> {
        let n = ids.len();
        let result = self.blocking(move |db| db.delete_profiles(&ids)).await;
        ProfileOutcome::of_batch(result, n)
    }

    async fn update_profile(&self, id: &str, update: ProfileUpdate) -> Result<String> {
        let id = id.to_string();
        self.blocking(move |db| db.update_profile(&id, &update))
            .await
    }

    async fn delete_profile(&self, id: &str) -> Result<()> {
        let id = id.to_string();
        self.blocking(move |db| db.delete_profile(&id)).await
    }

    fn preview(&self, op: &WriteOp) -> Result<Vec<Value>> {
        RecordSink::preview(self, op)
    }
}

#[async_trait]
impl GroupSink for Sqlite {
    /// One transaction per batch.
    async fn add_members(&self, group: &str, ids: Vec<String>) -> Vec<ProfileOutcome> {
        self.membership(ADD_MEMBER, group, ids).await
    }

    /// One transaction per batch.
    async fn remove_members(&self, group: &str, ids: Vec<String>) -> Vec<ProfileOutcome> {
        self.membership(REMOVE_MEMBER, group, ids).await
    }

    async fn ensure_group(&self, name: &str) -> Result<String> {
        let name = name.to_string();
        self.blocking(move |db| db.ensure_group(name)).await
    }

    async fn add_member(&self, group: &str, id: &str) -> Result<()> {
        self.member(ADD_MEMBER, group, id).await
    }

    async fn remove_member(&self, group: &str, id: &str) -> Result<()> {
        self.member(REMOVE_MEMBER, group, id).await
    }
}
