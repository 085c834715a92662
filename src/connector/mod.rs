//! The connector contract: a small [`Connector`] trait every connector
//! implements, one trait per capability (single records, changes, import
//! source and destination, export profiles and groups), the records, pages
//! and outcomes that cross them, and the registry that finds a connector by
//! name. A connector declares its capabilities once ([`capabilities!`](crate::capabilities));
//! every other action answers "connector X cannot Y".

mod capability;
mod id;
pub mod options;
pub mod registry;
pub mod spec;

mod file;
pub mod mark;
pub mod raw;
pub mod saas;

// The connectors' modules, each with `spec()`, `open()` and the `Config`
// type `open` reads. Declared here rather than by `connectors!` below, so
// that rustfmt (and `cargo fmt --check`) reaches their files; the macro
// names each one again, and a name it lists without a module here does
// not compile.
pub mod csv;
pub mod exec;
pub mod http;
pub mod hubspot;
pub mod intercom;
pub mod js;
pub mod jsonl;
pub mod klaviyo;
pub mod mailchimp;
pub mod postgres;
pub mod segment;
pub mod sqlite;
pub mod voucherify;
pub mod zendesk;

/// Registers the built-in connectors, in the order `ferry connectors` lists
/// them: each name is a module declared above and becomes one
/// [`registry::Entry`]. Adding a connector is its folder, its `pub mod` and
/// its name here; everything that enumerates connectors (the registry,
/// `ferry connectors`, the README's option tables and their tests) reads
/// [`registry::entries`].
macro_rules! connectors {
    ($($name:ident),* $(,)?) => {
        /// Every built-in connector, in the order of [`connectors!`].
        const BUILTINS: &[registry::Entry] = &[$(
            registry::Entry {
                spec: $name::spec,
                open: $name::open,
                #[cfg(test)]
                reads_its_options: options::reads_every_option::<$name::Config>,
            }
        ),*];
    };
}

connectors! { sqlite, postgres, csv, jsonl, http, js, exec, segment, voucherify, hubspot, intercom, klaviyo, mailchimp, zendesk }

use anyhow::Result;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use capability::{able, actions, actions_of, Capability, Capable, Declared, Shared};
pub use id::{given_id, id_text, new_id, patch_keeps_id, record_id, with_text_id, BadId};
pub use options::Options;
pub use spec::{Action, FieldSpec, FieldType, OptionSpec, Role, Spec, StoreFile};

use crate::error::unsupported;

/// What a connector opens with besides its options: the HTTP environment
/// its engines are built by (the command's output and cassette) and the
/// connector folder. Never the whole command context.
#[derive(Clone)]
pub struct Env {
    pub http: crate::http::HttpEnv,
    /// The connector folder (`-C DIR`).
    pub folder: std::path::PathBuf,
}

impl Env {
    /// The output to log to and register secrets with.
    pub fn out(&self) -> &crate::output::Output {
        self.http.out()
    }
}

/// A record as a connector reads or writes it: a JSON object. Its identifier
/// is the field named by [`Connector::id_field`].
pub type Record = Map<String, Value>;

/// A batch of records handed to [`RecordSink::upsert_batch`]. Shared rather
/// than moved: the caller keeps it to report the records the destination
/// refuses, and copying every record of an import for that cost a tenth of
/// its CPU.
pub type Records = std::sync::Arc<Vec<Record>>;

/// Where a page read starts: how many records came before it, and the
/// connector's own resume token when it has one (a byte offset, an API cursor).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    pub offset: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

impl Position {
    pub fn start() -> Position {
        Position::default()
    }

    pub fn at_offset(offset: u64) -> Position {
        Position {
            offset,
            cursor: None,
        }
    }
}

/// One page of records and where the next one starts (`None` at the end).
#[derive(Debug, Clone, Default)]
pub struct Page {
    pub records: Vec<Record>,
    pub next: Option<Position>,
    /// The number of records in the whole source, when the source knows it
    /// (a file estimates it from its size and the bytes read so far): for
    /// the progress bar's ETA only.
    pub total: Option<u64>,
}

/// What happened to one record of a batch write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum UpsertOutcome {
    /// Written (created or updated).
    Ok { id: String },
    /// The destination refused this record; the rest of the batch went on.
    Rejected { id: Option<String>, reason: String },
}

/// The kind of a change reported by `getupdates`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeType {
    Upsert,
    Insert,
    Update,
    Delete,
}

/// One entry of a `getupdates` answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: ChangeType,
    pub value: Option<Record>,
}

/// A `getupdates` answer: the changes, and the token that continues after them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Updates {
    #[serde(rename = "nextSync")]
    pub next_sync: String,
    pub entries: Vec<Change>,
}

/// A write, described before it is made, for `--dry-run` previews.
#[derive(Debug, Clone, PartialEq)]
pub enum WriteOp {
    Insert(Record),
    Patch {
        id: String,
        value: Record,
    },
    Delete {
        id: String,
    },
    UpsertBatch(Vec<Record>),
    /// Export: change some fields of a profile and clear others.
    UpdateProfile {
        id: String,
        set: Record,
        clear: Vec<String>,
    },
    /// Export: add profiles (destination ids) to a group (list, tag, segment).
    AddMembers {
        group: String,
        ids: Vec<String>,
    },
    /// Export: remove profiles (destination ids) from a group.
    RemoveMembers {
        group: String,
        ids: Vec<String>,
    },
}

impl WriteOp {
    /// The action's name as the user types it.
    pub fn action(&self) -> &'static str {
        match self {
            WriteOp::Insert(_) => "insert",
            WriteOp::Patch { .. } => "patch",
            WriteOp::Delete { .. } => "delete",
            WriteOp::UpsertBatch(_) => "upsert",
            WriteOp::UpdateProfile { .. } => "update profile",
            WriteOp::AddMembers { .. } => "add members",
            WriteOp::RemoveMembers { .. } => "remove members",
        }
    }
}

/// A connector: its declaration, a connection check, and one accessor per
/// capability. A capability is a trait ([`RecordLookup`], [`RecordStore`],
/// [`ChangeFeed`], [`RecordSource`], [`RecordSink`], [`ProfileSink`],
/// [`GroupSink`]); the accessors come from one [`capabilities!`](crate::capabilities)
/// declaration, which also gives the actions `ferry connectors` prints, so
/// the two cannot disagree. A missing capability answers "connector X
/// cannot Y" through [`able`].
#[async_trait]
pub trait Connector: Capable + Send + Sync {
    /// The connector's declaration: options, fields, capabilities, limits.
    fn spec(&self) -> &Spec;

    /// The field that identifies a record.
    fn id_field(&self) -> &str {
        "id"
    }

    /// The local file this connector writes, which an import or export
    /// holds locked against other ferry runs for its whole length
    /// ([`crate::lock`]); `None` where the destination keeps writers apart
    /// itself (SQLite) or is remote.
    fn written_file(&self) -> Option<&std::path::Path> {
        None
    }

    /// Test the connection and the credentials; answer a short JSON report.
    async fn check(&self) -> Result<Value> {
        Err(unsupported(self.spec().code, "check").into())
    }

    /// Why this connector cannot do `action` ("export profiles"), when it
    /// can say more than "it cannot" (a manifest that lacks an action).
    fn cannot_hint(&self, action: &str) -> Option<String> {
        let _ = action;
        None
    }

    /// The values option `option` may take, as the system lists them
    /// (`ferry options`: Mailchimp's audiences for `listId`); `None` when
    /// the connector has no such list for it.
    async fn option_choices(&self, option: &str) -> Result<Option<Vec<Choice>>> {
        let _ = option;
        Ok(None)
    }
}

/// One value an option may take, and what the system calls it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Choice {
    pub value: String,
    pub label: String,
}

/// `get`: one record by its id.
#[async_trait]
pub trait RecordLookup: Connector {
    /// The record with this id, or a not-found error.
    async fn get(&self, id: &str) -> Result<Record>;
}

/// The single-record writes: `insert`, `patch`, `delete`, and their
/// `--dry-run` previews.
#[async_trait]
pub trait RecordStore: RecordLookup {
    /// Create a record; answer it as stored (with its id).
    async fn insert(&self, value: Record) -> Result<Record>;

    /// Change some fields of a record; answer it as stored.
    async fn patch(&self, id: &str, value: Record) -> Result<Record>;

    /// Delete a record.
    async fn delete(&self, id: &str) -> Result<()>;

    /// What `op` would send, without sending it: the HTTP requests of an
    /// HTTP connector, the rows of a local one. Building it must be pure
    /// (no I/O to the destination), so `--dry-run` needs no server.
    /// Secrets are redacted by the output layer.
    fn preview(&self, op: &WriteOp) -> Result<Vec<Value>>;
}

/// `getupdates`: what changed since a sync token.
#[async_trait]
pub trait ChangeFeed: Connector {
    /// Changes since `since` (every record when `None`), up to `limit` entries.
    async fn get_updates(&self, since: Option<&str>, limit: Option<usize>) -> Result<Updates>;
}

/// Import's source side: the records page by page.
#[async_trait]
pub trait RecordSource: Connector {
    /// Whether `read_page` can start at any offset (`Position::at_offset(n)`
    /// without a cursor) at the cost of one page, so import may ask for the
    /// next page before the current one has been parsed.
    fn reads_at_any_offset(&self) -> bool {
        false
    }

    /// Up to `limit` records starting at `from`.
    async fn read_page(&self, from: &Position, limit: usize) -> Result<Page>;

    /// Why the source itself could not make a whole record of one it read
    /// (a profile without the chosen identifier, a listed one that does not
    /// exist), or `None`. Import rejects such a record with this reason
    /// before mapping it, so the reason names what the source lacked rather
    /// than whichever field a map would have filled from it.
    fn source_reject(&self, record: &Record) -> Option<String> {
        let _ = record;
        None
    }

    /// The pages as the source's own JSON text, when it can answer them so,
    /// which lets import pass records through unparsed (see [`mod@raw`]).
    fn raw(&self) -> Option<&dyn RawSource> {
        None
    }
}

/// [`RecordSource::read_page`] with the records as JSON text.
#[async_trait]
pub trait RawSource: Send + Sync {
    async fn read_page_raw(&self, from: &Position, limit: usize) -> Result<raw::RawPage>;
}

/// Import's destination side: upserts keyed by the id, in batches.
#[async_trait]
pub trait RecordSink: Connector {
    /// The fields a written record must fit: the spec's, or what the system
    /// itself declares (an existing table's columns). Import validates
    /// records against these before sending them.
    async fn fields(&self) -> Result<Vec<FieldSpec>> {
        Ok(self.spec().fields.clone())
    }

    /// Create or replace one record, keyed by its id.
    async fn upsert(&self, record: Record) -> Result<UpsertOutcome>;

    /// Create or replace many records, one outcome per record in order.
    /// The default writes them one by one ([`upsert_each`]); connectors
    /// with a bulk API override it. An `Err` means the batch as a whole
    /// failed and nothing can be assumed.
    async fn upsert_batch(&self, records: Records) -> Result<Vec<UpsertOutcome>> {
        upsert_each(self, records).await
    }

    /// What a batch upsert ([`WriteOp::UpsertBatch`]) would send, without
    /// sending it (import's `--dry-run`); see [`RecordStore::preview`].
    fn preview(&self, op: &WriteOp) -> Result<Vec<Value>>;

    /// Batches written as JSON text without parsing them, when the
    /// destination can (see [`mod@raw`]).
    fn raw(&self) -> Option<&dyn RawSink> {
        None
    }
}

/// [`RecordSink::upsert_batch`] for records as JSON text, keyed by their ids.
#[async_trait]
pub trait RawSink: Send + Sync {
    async fn upsert_raw(
        &self,
        records: std::sync::Arc<raw::RawRecords>,
    ) -> Result<Vec<UpsertOutcome>>;
}

/// Export's destination: profiles created, updated (with clears), deleted
/// and found by key. A destination implements the single calls; the batch
/// calls default to parallel single calls up to the spec's `parallelism`
/// ([`in_parallel`]) and are overridden where the system has a bulk API.
#[async_trait]
pub trait ProfileSink: Connector {
    /// What the destination needs of an exported profile: its key, known
    /// fields, whether extra fields and group memberships are accepted.
    /// Async because a SaaS destination may read its property definitions.
    async fn export_fields(&self) -> Result<ExportFields>;

    /// What `ferry fields` shows: the fields as the destination says them
    /// now, where it can (a portal's properties, an audience's merge
    /// fields); [`ProfileSink::export_fields`] otherwise. A destination
    /// whose required fields only it knows answers them from
    /// `export_fields` too, so an export checks profiles against them.
    async fn live_fields(&self) -> Result<ExportFields> {
        self.export_fields().await
    }

    /// The destination id of the profile whose key is `key`, if there is one.
    async fn find_profile(&self, key: &str) -> Result<Option<String>>;

    /// Create a profile, or update the one with the same key (so a re-sent
    /// create never duplicates); answer its destination id.
    async fn create_profile(&self, fields: Record) -> Result<String>;

    /// Set some fields of the profile `id` and clear others the way the
    /// destination clears a field; answer its destination id (a local
    /// destination keyed by the changed field answers the new one).
    /// A missing profile is a not-found error.
    async fn update_profile(&self, id: &str, update: ProfileUpdate) -> Result<String>;

    /// Delete the profile `id`; a profile already gone is not an error.
    async fn delete_profile(&self, id: &str) -> Result<()>;

    /// What an export write would send, without sending it (export's
    /// `--dry-run`); see [`RecordStore::preview`].
    fn preview(&self, op: &WriteOp) -> Result<Vec<Value>>;

    /// Create many profiles; one outcome per profile, in order.
    async fn create_profiles(&self, profiles: Vec<Record>) -> Vec<ProfileOutcome> {
        let n = self.spec().parallelism;
        in_parallel(profiles, n, |p| async move {
            ProfileOutcome::from_result(self.create_profile(p).await)
        })
        .await
    }

    /// Update many profiles (destination id, change); one outcome each, in order.
    async fn update_profiles(&self, updates: Vec<(String, ProfileUpdate)>) -> Vec<ProfileOutcome> {
        let n = self.spec().parallelism;
        in_parallel(updates, n, |(id, u)| async move {
            ProfileOutcome::from_result(self.update_profile(&id, u).await)
        })
        .await
    }

    /// Delete many profiles by destination id; one outcome each, in order.
    async fn delete_profiles(&self, ids: Vec<String>) -> Vec<ProfileOutcome> {
        let n = self.spec().parallelism;
        in_parallel(ids, n, |id| async move {
            ProfileOutcome::from_result(self.delete_profile(&id).await.map(|()| id))
        })
        .await
    }

    /// A destination that takes each profile's whole change in one call
    /// (Grouparoo's `exportProfile`: old and new properties and groups),
    /// instead of the finds, creates, updates and memberships above.
    fn whole(&self) -> Option<&dyn WholeProfileSink> {
        None
    }
}

/// One profile's whole change since the last export, as Grouparoo's
/// destinations receive it: what was exported before and what is exported
/// now (a cleared property is in the old properties and not in the new).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProfileChange {
    #[serde(rename = "profileId")]
    pub profile_id: String,
    /// The key value the destination knows the profile by.
    pub key: String,
    #[serde(rename = "oldProfileProperties")]
    pub old_properties: Record,
    #[serde(rename = "newProfileProperties")]
    pub new_properties: Record,
    #[serde(rename = "oldGroups")]
    pub old_groups: Vec<String>,
    #[serde(rename = "newGroups")]
    pub new_groups: Vec<String>,
    #[serde(rename = "toDelete")]
    pub to_delete: bool,
}

/// [`ProfileSink::whole`]: profiles exported as whole changes.
#[async_trait]
pub trait WholeProfileSink: Send + Sync {
    /// Export `changes`; one outcome per change, in order (`Ok` answers the
    /// key as the destination id).
    async fn export_changes(&self, changes: Vec<ProfileChange>) -> Vec<ProfileOutcome>;

    /// What exporting `changes` would send (export's `--dry-run`).
    fn preview_changes(&self, changes: &[ProfileChange]) -> Result<Vec<Value>>;
}

/// Export's group memberships: groups (lists, tags, segments) found or
/// created by name, and profiles added to and removed from them. `ferry
/// export` caches `ensure_group` per run.
#[async_trait]
pub trait GroupSink: Connector {
    /// The id of the group (list, tag, segment) named `name`, created if missing.
    async fn ensure_group(&self, name: &str) -> Result<String>;

    /// Add the profile `id` to the group `group` (an id from `ensure_group`).
    async fn add_member(&self, group: &str, id: &str) -> Result<()>;

    /// Remove the profile `id` from the group `group`.
    async fn remove_member(&self, group: &str, id: &str) -> Result<()>;

    /// Add many profiles to one group; one outcome each, in order.
    async fn add_members(&self, group: &str, ids: Vec<String>) -> Vec<ProfileOutcome> {
        let n = self.spec().parallelism;
        in_parallel(ids, n, |id| async move {
            ProfileOutcome::from_result(self.add_member(group, &id).await.map(|()| id))
        })
        .await
    }

    /// Remove many profiles from one group; one outcome each, in order.
    async fn remove_members(&self, group: &str, ids: Vec<String>) -> Vec<ProfileOutcome> {
        let n = self.spec().parallelism;
        in_parallel(ids, n, |id| async move {
            ProfileOutcome::from_result(self.remove_member(group, &id).await.map(|()| id))
        })
        .await
    }
}

/// Run `f` over `items` with at most `n` calls in flight; results in order.
pub async fn in_parallel<T, F, Fut>(items: Vec<T>, n: usize, f: F) -> Vec<ProfileOutcome>
where
    F: FnMut(T) -> Fut,
    Fut: std::future::Future<Output = ProfileOutcome>,
{
    use futures::stream::StreamExt;
    futures::stream::iter(items)
        .map(f)
        .buffered(n.max(1))
        .collect()
        .await
}

/// What an export destination needs of a profile.
#[derive(Debug, Clone, Serialize)]
pub struct ExportFields {
    /// The field the destination looks profiles up by (email, an external id).
    /// A profile without it is invalid and is not sent.
    pub key: String,
    /// When the profile has no `key` property, its profile id fills it in
    /// (the local connectors, keyed by their id field).
    #[serde(rename = "keyFromProfileId")]
    pub key_from_profile_id: bool,
    /// The fields the destination knows, with their types.
    pub fields: Vec<FieldSpec>,
    /// Whether fields beyond `key` and `fields` are accepted.
    #[serde(rename = "extraFields")]
    pub extra_fields: bool,
}

impl ExportFields {
    /// A SaaS destination keyed by `key`: the fields its spec declares but
    /// the vendor's own `id` (read-only), and any other field accepted.
    pub fn of_spec(spec: &Spec, key: &str, key_from_profile_id: bool) -> ExportFields {
        ExportFields {
            key: key.to_string(),
            key_from_profile_id,
            fields: spec
                .fields
                .iter()
                .filter(|f| f.name != "id")
                .cloned()
                .collect(),
            extra_fields: true,
        }
    }

    /// A local store keyed by its id field: with the default "id" the profile
    /// id is the record id; with another field (an email) every profile must
    /// carry it. Any field is accepted.
    pub fn keyed_by_id_field(id_field: &str) -> ExportFields {
        ExportFields {
            key: id_field.to_string(),
            key_from_profile_id: id_field == "id",
            fields: Vec::new(),
            extra_fields: true,
        }
    }
}

/// A change to an exported profile: fields to set and fields to clear.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProfileUpdate {
    pub set: Record,
    pub clear: Vec<String>,
}

/// What happened to one profile of an export call.
#[derive(Debug, Clone, PartialEq)]
pub enum ProfileOutcome {
    /// Done; the profile's destination id.
    Ok { id: String },
    /// Not done, by design of the destination; reported, never retried.
    Skipped { reason: String },
    /// The destination refused this profile (its data); retried next run.
    Rejected { reason: String },
    /// The profile is not in the destination.
    NotFound { reason: String },
    /// Anything else; retried next run, or after `retry_in` when the
    /// destination said when.
    Error {
        reason: String,
        retry_in: Option<std::time::Duration>,
    },
}

impl ProfileOutcome {
    /// The outcomes of a batch written in one go (one transaction, one
    /// rewrite): a failure of the write itself fails every profile of the
    /// batch, as an error retried next run.
    pub fn of_batch(result: Result<Vec<ProfileOutcome>>, n: usize) -> Vec<ProfileOutcome> {
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

    /// Classify a single call's answer: a [`Rejection`] is the profile's
    /// fault, a not-found failure is [`ProfileOutcome::NotFound`], an
    /// unsupported action a skip, a [`RetryIn`] an error with its wait.
    pub fn from_result(result: Result<String>) -> ProfileOutcome {
        let err = match result {
            Ok(id) => return ProfileOutcome::Ok { id },
            Err(err) => err,
        };
        let reason = format!("{err:#}");
        if err.chain().any(|c| c.is::<Rejection>()) {
            return ProfileOutcome::Rejected { reason };
        }
        if let Some(wait) = err.chain().find_map(|c| c.downcast_ref::<RetryIn>()) {
            return ProfileOutcome::Error {
                reason,
                retry_in: Some(wait.after),
            };
        }
        match crate::error::find_failure(&err).map(|f| f.kind) {
            Some(crate::error::Kind::NotFound) => ProfileOutcome::NotFound { reason },
            Some(crate::error::Kind::Unsupported) => ProfileOutcome::Skipped { reason },
            _ => ProfileOutcome::Error {
                reason,
                retry_in: None,
            },
        }
    }
}

/// Upsert `records` one by one (the default batch write). A record that
/// cannot be sent as it is ([`Rejection`]: an id that is `..`) is rejected
/// and the batch goes on; any other error fails the batch.
pub async fn upsert_each<C: RecordSink + ?Sized>(
    c: &C,
    records: Records,
) -> Result<Vec<UpsertOutcome>> {
    let mut outcomes = Vec::with_capacity(records.len());
    for record in records.iter() {
        let outcome = match c.upsert(record.clone()).await {
            Err(err) if err.chain().any(|e| e.is::<Rejection>()) => UpsertOutcome::Rejected {
                id: record.get("id").and_then(Value::as_str).map(str::to_string),
                reason: format!("{err:#}"),
            },
            other => other?,
        };
        outcomes.push(outcome);
    }
    Ok(outcomes)
}

pub use crate::error::Rejection;

/// An error that says when to try again (a 429's `Retry-After`, a vendor's `retryIn`).
#[derive(Debug, Clone)]
pub struct RetryIn {
    pub after: std::time::Duration,
    pub message: String,
}

impl std::fmt::Display for RetryIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for RetryIn {}

/// The preview of a local write: the rows it would touch, in `target`.
pub fn preview_rows(op: &WriteOp, target: &str) -> Vec<Value> {
    let row = |action: &str, id: Option<&str>, record: Option<&Record>| serde_json::json!({ "action": action, "target": target, "id": id, "record": record });
    match op {
        WriteOp::Insert(r) => vec![row("insert", None, Some(r))],
        WriteOp::Patch { id, value } => vec![row("patch", Some(id), Some(value))],
        WriteOp::Delete { id } => vec![row("delete", Some(id), None)],
        WriteOp::UpsertBatch(records) => records
            .iter()
            .map(|r| row("upsert", None, Some(r)))
            .collect(),
        WriteOp::UpdateProfile { id, set, clear } => vec![serde_json::json!({
            "action": "update", "target": target, "id": id, "set": set, "clear": clear,
        })],
        WriteOp::AddMembers { group, ids } => vec![serde_json::json!({
            "action": "add members", "target": target, "group": group, "ids": ids,
        })],
        WriteOp::RemoveMembers { group, ids } => vec![serde_json::json!({
            "action": "remove members", "target": target, "group": group, "ids": ids,
        })],
    }
}
