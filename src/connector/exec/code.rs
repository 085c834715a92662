//! A connector written in code: ferry's capabilities answered by calls to
//! a child process over the protocol of docs/protocol.md. The `exec`
//! connector runs any program; the `js` connector runs its embedded Node
//! harness around a SyncPenguin-style module. Both are this type.
//!
//! The child starts on the first call (so `ferry connectors` or a spec
//! never spawns anything), is initialized once with the account, and says
//! which methods it has; an action it lacks answers "connector X cannot Y:
//! FILE has no Y method".

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Result;
use async_trait::async_trait;
use serde_json::{json, Map, Value};
use tokio::sync::OnceCell;

use super::peer::{Launch, Peer, Reply};
use crate::connector::{
    record_id, Change, ChangeFeed, ChangeType, Connector, Record, RecordLookup, RecordSink,
    RecordStore, Records, Spec, Updates, UpsertOutcome, WriteOp,
};
use crate::error::{failed, not_found, usage, Failure, Kind, Rejection};
use crate::http::Engine;
use crate::output::Output;

/// The protocol version ferry speaks (docs/protocol.md).
pub const PROTOCOL_VERSION: u64 = 1;

/// A code connector: how to start its child, and the child once started.
pub struct Code {
    pub(super) spec: Spec,
    pub(super) launch: Launch,
    /// What the module's file is called in "has no patch method".
    pub(super) file: String,
    pub(super) id_field: String,
    /// The account as the module's `init` receives it.
    pub(super) account: Map<String, Value>,
    pub(super) engine: Arc<Engine>,
    pub(super) out: Output,
    /// Checks the child's `initialize` answer (the js harness reports the
    /// Node version it runs on).
    pub(super) vet: fn(&Value) -> Result<()>,
    started: OnceCell<Started>,
    /// Whether the `entires` spelling was met (warned once).
    entires: AtomicBool,
    /// The last page import read, while a batch smaller than it takes it
    /// in parts ([`super::source`]).
    pub(super) page: std::sync::Mutex<Option<super::source::Fetched>>,
}

/// A `lastSync` given on the command line or in in.json, as the module
/// gets it: text that is a JSON number is passed as the number (a module's
/// numeric nextSync was printed as its digits), anything else as text.
fn token(since: &str) -> Value {
    match serde_json::from_str::<Value>(since) {
        Ok(n @ Value::Number(_)) => n,
        _ => Value::String(since.to_string()),
    }
}

/// A profile the module chose not to export (Grouparoo's `errorLevel:
/// "info"`): reported, never retried.
#[derive(Debug)]
pub struct Skipped(pub String);

impl std::fmt::Display for Skipped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Skipped {}

/// What makes a code connector of one kind (`exec`, `js`).
pub struct Setup {
    pub spec: Spec,
    pub launch: Launch,
    /// How "has no patch method" names the code: its file or command.
    pub file: String,
    pub id_field: String,
    /// Checks the child's `initialize` answer.
    pub vet: fn(&Value) -> Result<()>,
}

/// A child that answered `initialize`.
pub(super) struct Started {
    pub(super) peer: Peer,
    methods: Vec<String>,
}

impl Code {
    /// The connector `setup` describes, with its engine built from the
    /// account's HTTP options and the account's values for `initialize`.
    pub fn open(
        env: &crate::connector::Env,
        options: &crate::connector::Options,
        http: &crate::connector::saas::HttpOptions,
        setup: Setup,
    ) -> Result<Box<dyn Connector>> {
        let engine = env
            .http
            .engine(super::policy(options, http, &setup.spec)?)?;
        Ok(Box::new(Code {
            spec: setup.spec,
            launch: setup.launch,
            file: setup.file,
            id_field: setup.id_field,
            account: options.values().clone(),
            engine: Arc::new(engine),
            out: env.out().clone(),
            vet: setup.vet,
            started: OnceCell::new(),
            entires: AtomicBool::new(false),
            page: std::sync::Mutex::new(None),
        }))
    }

    /// The child, started and initialized on first use.
    pub(super) async fn started(&self) -> Result<&Started> {
        self.started
            .get_or_try_init(|| async {
                let peer = Peer::start(&self.launch, self.engine.clone(), self.out.clone())?;
                let params = json!({
                    "protocolVersion": PROTOCOL_VERSION,
                    "account": self.account,
                    "folder": self.launch.folder.display().to_string(),
                });
                let answer = self.answer(&peer, "initialize", params).await?;
                (self.vet)(&answer)?;
                let version = answer.get("protocolVersion").and_then(Value::as_u64);
                if let Some(v) = version.filter(|v| *v != PROTOCOL_VERSION) {
                    return Err(usage(format!(
                        "{} speaks protocol version {v}; ferry speaks {PROTOCOL_VERSION}",
                        self.launch.name
                    ))
                    .hint("answer initialize with \"protocolVersion\": 1 (docs/protocol.md)")
                    .into());
                }
                let methods = answer
                    .get("capabilities")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default();
                Ok::<_, anyhow::Error>(Started { peer, methods })
            })
            .await
    }

    /// Call `method`, refusing first when the child lacks it.
    pub(super) async fn call(&self, method: &str, action: &str, params: Value) -> Result<Value> {
        let started = self.started().await?;
        if !started.methods.iter().any(|m| m == method) {
            return Err(self.lacks(action, method).into());
        }
        self.answer(&started.peer, method, params).await
    }

    /// Whether the child has `method`.
    pub(super) async fn has(&self, method: &str) -> Result<bool> {
        Ok(self.started().await?.methods.iter().any(|m| m == method))
    }

    /// "connector js cannot patch: dataSourceApp.js has no patch method".
    pub(super) fn lacks(&self, action: &str, method: &str) -> Failure {
        Failure::new(
            Kind::Unsupported,
            format!(
                "connector {} cannot {action}: {} has no {method} method",
                self.spec.code, self.file
            ),
        )
        .hint(format!(
            "add {method} to it; `ferry connectors {}` shows the methods a module may have",
            self.spec.code
        ))
    }

    async fn answer(&self, peer: &Peer, method: &str, params: Value) -> Result<Value> {
        let reply = peer.call(method, params).await?;
        // Under `--dry-run` on a read the call ends at its first request,
        // whatever the code made of the engine's refusal.
        if let Some(req) = peer.take_offline() {
            return Err(crate::http::Offline(req).into());
        }
        match reply {
            Reply::Result(v) => Ok(v),
            Reply::Error(e) => Err(self.error(method, &e)),
        }
    }

    /// A JSON-RPC error as ferry's error: its `data.kind` decides the kind.
    fn error(&self, method: &str, e: &Value) -> anyhow::Error {
        let message = e
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("failed without a message");
        let data = e.get("data");
        let kind = data.and_then(|d| d.get("kind")).and_then(Value::as_str);
        let at = data
            .and_then(|d| d.get("location"))
            .and_then(Value::as_str)
            .map(|l| format!(" (at {l})"))
            .unwrap_or_default();
        let text = format!("{} {method} failed: {message}{at}", self.launch.name);
        let code = e.get("code").and_then(Value::as_i64);
        match (kind, code) {
            (Some("invalid_record"), _) => anyhow::Error::new(Rejection(format!("{message}{at}"))),
            (Some("skipped"), _) => anyhow::Error::new(Skipped(text)),
            (Some("not_found"), _) => not_found(text).into(),
            (Some("config"), _) => usage(text)
                .hint("check the connector's code and the values account.json gives it")
                .into(),
            (Some("unsupported"), _) | (_, Some(-32601)) => {
                Failure::new(Kind::Unsupported, text).into()
            }
            (Some("auth"), _) => match &self.engine.policy().auth_hint {
                Some(hint) => failed(text).hint(hint.clone()).into(),
                None => failed(text).into(),
            },
            _ => failed(text)
                .hint("the error is the connector code's own: fix it there (-v shows the requests it made; an error with a kind says more, see docs/protocol.md)")
                .into(),
        }
    }

    /// The record `answer` stands for: the answer itself when it is an
    /// object, `value` with the answered `{id}` merged in, or `value`.
    fn stored(&self, answer: Value, mut value: Record, id: Option<&str>) -> Record {
        match answer {
            Value::Object(m) if m.len() == 1 && m.contains_key("id") => {
                if let Some(v) = m.get("id") {
                    value.insert(self.id_field.clone(), v.clone());
                }
                value
            }
            Value::Object(m) => m,
            Value::String(s) if id.is_none() => {
                value.insert(self.id_field.clone(), Value::String(s));
                value
            }
            _ => {
                if let Some(id) = id {
                    value
                        .entry(self.id_field.clone())
                        .or_insert_with(|| Value::String(id.to_string()));
                }
                value
            }
        }
    }

    /// A `getUpdates` answer read: `{nextSync, entries}` (or `entires`,
    /// the spelling SyncPenguin's documentation prints).
    pub(super) fn updates(&self, answer: Value) -> Result<Updates> {
        let Value::Object(mut m) = answer else {
            return Err(failed(format!(
                "{} getUpdates answered {}, not {{nextSync, entries}}",
                self.launch.name,
                crate::config::input::kind_of(&answer)
            ))
            .into());
        };
        let entries = match (m.remove("entries"), m.remove("entires")) {
            (Some(e), _) => e,
            (None, Some(e)) => {
                if !self.entires.swap(true, Ordering::Relaxed) {
                    self.out.verbose(&format!(
                        "{} getUpdates answered \"entires\"; read as \"entries\"",
                        self.launch.name
                    ));
                }
                e
            }
            (None, None) => Value::Array(Vec::new()),
        };
        let Value::Array(entries) = entries else {
            return Err(failed(format!(
                "{} getUpdates answered entries that are not an array",
                self.launch.name
            ))
            .into());
        };
        let next_sync = match m.remove("nextSync") {
            Some(Value::String(s)) => s,
            Some(Value::Null) | None => String::new(),
            Some(other) => other.to_string(),
        };
        let mut changes = Vec::with_capacity(entries.len());
        for (i, entry) in entries.into_iter().enumerate() {
            changes.push(self.change(entry, i)?);
        }
        Ok(Updates {
            next_sync,
            entries: changes,
        })
    }

    fn change(&self, entry: Value, i: usize) -> Result<Change> {
        let bad = |what: &str| -> anyhow::Error {
            failed(format!(
                "{} getUpdates answered entry {} {what}",
                self.launch.name,
                i + 1
            ))
            .into()
        };
        let Value::Object(mut e) = entry else {
            return Err(bad("that is not an object"));
        };
        let kind = match e.get("type").and_then(Value::as_str).unwrap_or("upsert") {
            "upsert" => ChangeType::Upsert,
            "insert" => ChangeType::Insert,
            "update" => ChangeType::Update,
            "delete" => ChangeType::Delete,
            _ => return Err(bad("whose type is not upsert, insert, update or delete")),
        };
        let mut value = match e.remove("value") {
            Some(Value::Object(v)) => Some(v),
            Some(Value::Null) | None => None,
            Some(_) => return Err(bad("whose value is not an object")),
        };
        let id = match e.get("id") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => match value.as_ref().and_then(|v| record_id(v, &self.id_field)) {
                Some(id) => id,
                None => return Err(bad("without an id")),
            },
        };
        if let Some(v) = value.as_mut() {
            v.entry(self.id_field.clone())
                .or_insert_with(|| Value::String(id.clone()));
        }
        Ok(Change { id, kind, value })
    }

    /// The requests a write would send: the module runs, its reads are
    /// sent, its writing requests are answered `200 {}` without being
    /// sent and shown (docs/code-connectors.md, "Dry runs").
    fn dry(&self, op: &WriteOp) -> Result<Vec<Value>> {
        let (result, requests) = self.dry_run(self.write(op))?;
        result?;
        Ok(requests)
    }

    /// Run `work` with the child's writing requests answered without being
    /// sent, and answer its result with their previews. The previews are
    /// synchronous (the built-in connectors build their requests without
    /// I/O); a module has to run to know its requests, so this blocks its
    /// worker thread on the call.
    pub(super) fn dry_run<T>(
        &self,
        work: impl std::future::Future<Output = T>,
    ) -> Result<(T, Vec<Value>)> {
        tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current().block_on(async {
                let started = self.started().await?;
                started.peer.capture();
                let result = work.await;
                // Taking them ends the capture.
                let captured = started.peer.captured();
                Ok((result, captured.iter().map(|r| r.preview()).collect()))
            })
        })
    }

    async fn write(&self, op: &WriteOp) -> Result<()> {
        match op {
            WriteOp::Insert(v) => RecordStore::insert(self, v.clone()).await.map(drop),
            WriteOp::Patch { id, value } => self.patch(id, value.clone()).await.map(drop),
            WriteOp::Delete { id } => RecordStore::delete(self, id).await,
            // A record the module refuses is one outcome among the
            // batch's: the preview still shows what the rest would send.
            WriteOp::UpsertBatch(records) => {
                self.upsert_batch(Arc::new(records.clone())).await.map(drop)
            }
            other => Err(failed(format!(
                "connector {} cannot preview {}",
                self.spec.code,
                other.action()
            ))
            .into()),
        }
    }
}

crate::capabilities!(Code: Records, Updates, Source, Sink, Profiles);

#[async_trait]
impl Connector for Code {
    fn spec(&self) -> &Spec {
        &self.spec
    }

    fn id_field(&self) -> &str {
        &self.id_field
    }

    /// `init` (at start), then the module's `check` if it has one:
    /// Grouparoo's `{success, message}`, or any answer as a report.
    async fn check(&self) -> Result<Value> {
        if !self.has("check").await? {
            return Ok(
                json!({"ok": true, "init": "done", "check": format!("{} has no check method", self.file)}),
            );
        }
        let answer = self.call("check", "check", json!({})).await?;
        if answer.get("success") == Some(&Value::Bool(false)) {
            let message = answer
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("no message");
            return Err(failed(format!("{} check failed: {message}", self.launch.name)).into());
        }
        Ok(json!({"ok": true, "check": answer}))
    }
}

#[async_trait]
impl RecordLookup for Code {
    async fn get(&self, id: &str) -> Result<Record> {
        match self.call("get", "get", json!({ "id": id })).await? {
            Value::Object(m) => Ok(m),
            Value::Null => Err(not_found(format!("no record {id}")).into()),
            other => Err(failed(format!(
                "{} get answered {}, not a record",
                self.launch.name,
                crate::config::input::kind_of(&other)
            ))
            .into()),
        }
    }
}

#[async_trait]
impl RecordStore for Code {
    async fn insert(&self, value: Record) -> Result<Record> {
        let answer = self
            .call("insert", "insert", json!({ "value": value }))
            .await?;
        Ok(self.stored(answer, value, None))
    }

    async fn patch(&self, id: &str, value: Record) -> Result<Record> {
        let answer = self
            .call("patch", "patch", json!({ "id": id, "value": value }))
            .await?;
        Ok(self.stored(answer, value, Some(id)))
    }

    async fn delete(&self, id: &str) -> Result<()> {
        self.call("delete", "delete", json!({ "id": id }))
            .await
            .map(drop)
    }

    fn preview(&self, op: &WriteOp) -> Result<Vec<Value>> {
        self.dry(op)
    }
}

#[async_trait]
impl ChangeFeed for Code {
    /// One `getUpdates` call; its entries as they are (a module decides its
    /// page size, so `limit` is not applied: cutting a page would lose the
    /// entries between the cut and its `nextSync`).
    async fn get_updates(&self, since: Option<&str>, limit: Option<usize>) -> Result<Updates> {
        if limit.is_some() {
            self.out.warn(&format!(
                "{} answers getUpdates a page at a time: --limit is not applied (cutting the page would lose the entries before its nextSync)",
                self.launch.name
            ));
        }
        let answer = self
            .call(
                "getUpdates",
                "getupdates",
                json!({ "lastSync": since.map(token) }),
            )
            .await?;
        self.updates(answer)
    }
}

#[async_trait]
impl RecordSink for Code {
    /// `upsertMany([record])` when the module has it; otherwise `patch` by
    /// the record's id, and `insert` when there is no id or the patch
    /// answers not found.
    async fn upsert(&self, record: Record) -> Result<UpsertOutcome> {
        if self.has("upsertMany").await? {
            let mut outcomes = self.upsert_many(vec![record]).await?;
            return Ok(outcomes.remove(0));
        }
        let id = record_id(&record, &self.id_field);
        let stored = match &id {
            Some(id) if self.has("patch").await? => match self.patch(id, record.clone()).await {
                Err(e)
                    if crate::error::find_failure(&e).is_some_and(|f| f.kind == Kind::NotFound) =>
                {
                    RecordStore::insert(self, record).await
                }
                other => other,
            },
            _ => RecordStore::insert(self, record).await,
        };
        match stored {
            Ok(r) => Ok(UpsertOutcome::Ok {
                id: record_id(&r, &self.id_field).or(id).unwrap_or_default(),
            }),
            // A record the module refuses or skips: the batch goes on.
            Err(e) if e.chain().any(|c| c.is::<Rejection>() || c.is::<Skipped>()) => {
                Ok(UpsertOutcome::Rejected {
                    id,
                    reason: format!("{e:#}"),
                })
            }
            Err(e) => Err(e),
        }
    }

    async fn upsert_batch(&self, records: Records) -> Result<Vec<UpsertOutcome>> {
        if self.has("upsertMany").await? {
            return self.upsert_many(records.as_ref().clone()).await;
        }
        crate::connector::upsert_each(self, records).await
    }

    fn preview(&self, op: &WriteOp) -> Result<Vec<Value>> {
        self.dry(op)
    }
}

impl Code {
    /// `upsertMany(values)`: one outcome per record, `{id}` or `{error}`.
    async fn upsert_many(&self, records: Vec<Record>) -> Result<Vec<UpsertOutcome>> {
        let n = records.len();
        let ids: Vec<Option<String>> = records
            .iter()
            .map(|r| record_id(r, &self.id_field))
            .collect();
        let answer = self
            .call("upsertMany", "upsert", json!({ "values": records }))
            .await?;
        let Value::Array(items) = answer else {
            return Err(failed(format!(
                "{} upsertMany answered {}, not one outcome per record",
                self.launch.name,
                crate::config::input::kind_of(&answer)
            ))
            .into());
        };
        if items.len() != n {
            return Err(failed(format!(
                "{} upsertMany answered {} outcomes for {n} records",
                self.launch.name,
                items.len()
            ))
            .into());
        }
        Ok(items
            .into_iter()
            .zip(ids)
            .map(|(item, id)| {
                let error = item.get("error").filter(|e| !e.is_null());
                match error {
                    Some(e) => UpsertOutcome::Rejected {
                        id,
                        reason: e
                            .get("message")
                            .and_then(Value::as_str)
                            .map_or_else(|| e.to_string(), str::to_string),
                    },
                    None => UpsertOutcome::Ok {
                        id: item
                            .get("id")
                            .and_then(|v| match v {
                                Value::String(s) => Some(s.clone()),
                                Value::Number(n) => Some(n.to_string()),
                                _ => None,
                            })
                            .or(id)
                            .unwrap_or_default(),
                    },
                }
            })
            .collect())
    }
}
