//! The connector contract: one trait every connector implements, the records,
//! pages and outcomes that cross it, and the registry that finds a connector
//! by name. A connector implements what its system can do; every other action
//! answers "connector X cannot Y".

pub mod options;
pub mod registry;
pub mod spec;

mod csv;
mod file;
pub mod http;
mod jsonl;
pub mod segment;
mod sqlite;
pub mod voucherify;

use anyhow::Result;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use options::Options;
pub use spec::{Action, FieldSpec, FieldType, OptionSpec, Role, Spec};

use crate::error::unsupported;

/// A record as a connector reads or writes it: a JSON object. Its identifier
/// is the field named by [`Connector::id_field`].
pub type Record = Map<String, Value>;

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
    /// The number of records in the whole source, when the source knows it.
    pub total: Option<u64>,
}

/// What happened to one record of a batch write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum Outcome {
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
    Patch { id: String, value: Record },
    Delete { id: String },
    UpsertBatch(Vec<Record>),
}

impl WriteOp {
    /// The action's name as the user types it.
    pub fn action(&self) -> &'static str {
        match self {
            WriteOp::Insert(_) => "insert",
            WriteOp::Patch { .. } => "patch",
            WriteOp::Delete { .. } => "delete",
            WriteOp::UpsertBatch(_) => "upsert",
        }
    }
}

/// A connector: the actions one kind of system supports. Every method has a
/// default that answers "connector X cannot Y", so a connector implements only
/// what its system can honestly do.
#[async_trait]
pub trait Connector: Send + Sync {
    /// The connector's declaration: options, fields, actions, limits.
    fn spec(&self) -> &Spec;

    /// The field that identifies a record.
    fn id_field(&self) -> &str {
        "id"
    }

    /// The fields a written record must fit: the spec's, or what the system
    /// itself declares (an existing table's columns). Import validates
    /// records against these before sending them.
    async fn fields(&self) -> Result<Vec<FieldSpec>> {
        Ok(self.spec().fields.clone())
    }

    /// Test the connection and the credentials; answer a short JSON report.
    async fn check(&self) -> Result<Value> {
        Err(unsupported(self.spec().code, "check").into())
    }

    /// The record with this id, or a not-found error.
    async fn get(&self, id: &str) -> Result<Record> {
        let _ = id;
        Err(unsupported(self.spec().code, "get").into())
    }

    /// Create a record; answer it as stored (with its id).
    async fn insert(&self, value: Record) -> Result<Record> {
        let _ = value;
        Err(unsupported(self.spec().code, "insert").into())
    }

    /// Change some fields of a record; answer it as stored.
    async fn patch(&self, id: &str, value: Record) -> Result<Record> {
        let _ = (id, value);
        Err(unsupported(self.spec().code, "patch").into())
    }

    /// Delete a record.
    async fn delete(&self, id: &str) -> Result<()> {
        let _ = id;
        Err(unsupported(self.spec().code, "delete").into())
    }

    /// Changes since `since` (every record when `None`), up to `limit` entries.
    async fn get_updates(&self, since: Option<&str>, limit: Option<usize>) -> Result<Updates> {
        let _ = (since, limit);
        Err(unsupported(self.spec().code, "getupdates").into())
    }

    /// Up to `limit` records starting at `from`.
    async fn read_page(&self, from: &Position, limit: usize) -> Result<Page> {
        let _ = (from, limit);
        Err(unsupported(self.spec().code, "read pages").into())
    }

    /// What `op` would send, without sending it: the HTTP requests of an HTTP
    /// connector, the rows of a local one. Building it must be pure (no I/O
    /// to the destination), so `--dry-run` needs no server. Secrets are
    /// redacted by the output layer.
    fn preview(&self, op: &WriteOp) -> Result<Vec<Value>> {
        Err(unsupported(self.spec().code, &format!("preview {}", op.action())).into())
    }

    /// Create or replace one record, keyed by its id.
    async fn upsert(&self, record: Record) -> Result<Outcome> {
        let _ = record;
        Err(unsupported(self.spec().code, "upsert").into())
    }

    /// Create or replace many records, one outcome per record in order.
    /// The default writes them one by one; connectors with a bulk API override it.
    /// An `Err` means the batch as a whole failed and nothing can be assumed.
    async fn upsert_batch(&self, records: Vec<Record>) -> Result<Vec<Outcome>> {
        let mut outcomes = Vec::with_capacity(records.len());
        for record in records {
            outcomes.push(self.upsert(record).await?);
        }
        Ok(outcomes)
    }
}

/// The identifier of `record` under `field`, as a string (numbers are accepted).
pub fn record_id(record: &Record, field: &str) -> Option<String> {
    match record.get(field)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

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
    }
}

/// A fresh identifier for a record inserted without one.
pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}
