//! The `http` connector: a REST API described by a `connector.json` manifest
//! instead of code. [`manifest`] holds the schema and its validation,
//! [`build`] the pure request building, `paging` the listings and their
//! loop guard, `export` the export actions, and this module the actions on
//! top of the shared engine ([`crate::http`]).

pub mod build;
mod export;
pub mod manifest;
mod paging;
mod validate;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use anyhow::Result;
use async_trait::async_trait;
use serde_json::{json, Value};
use tokio::sync::OnceCell;

use crate::connector::options::{connector_options, Described};
use crate::connector::raw::{RawPage, RawRecords};
use crate::connector::saas::paging::Seen;
use crate::connector::saas::scalar;
use crate::connector::saas::HttpOptions;
use crate::connector::{
    record_id, Connector, ExportFields, FieldSpec, FieldType, Options, Page, Position,
    ProfileOutcome, ProfileUpdate, Record, Records, Role, Spec, Updates, UpsertOutcome, WriteOp,
};
use crate::connector::{
    ChangeFeed, Env, GroupSink, ProfileSink, RawSink, RawSource, RecordLookup, RecordSink,
    RecordSource, RecordStore,
};
use crate::error::{failed, unsupported, usage};
use crate::http::{Engine, Group, Policy, RequestSpec, Response};
use build::Builder;
use manifest::{ActionSpec, Pagination};
use paging::Cursor;

connector_options! {
    /// The options of an `http` account: the manifest, the engine's
    /// overrides and the credentials the manifest's placeholders name.
    pub struct HttpConnectorOptions {
        /// Path of the manifest describing the API, relative to account.json (run `ferry connectors http` for its fields)
        #[option(label = "Manifest", default = "connector.json")]
        pub manifest: String,
        /// The engine's options (baseUrl, rateLimit, retry, timeoutSecs).
        #[option(flatten)]
        #[serde(flatten)]
        pub http: HttpOptions,
        /// The bearer token ({token} in the manifest)
        #[option(label = "Token", secret)]
        pub token: Option<String>,
        /// The basic-auth user ({username})
        #[option(label = "User")]
        pub username: Option<String>,
        /// The basic-auth password ({password})
        #[option(label = "Password", secret)]
        pub password: Option<String>,
        /// The API key ({apiKey})
        #[option(label = "API key", secret)]
        pub api_key: Option<String>,
        /// The OAuth2 client id ({clientId})
        #[option(label = "OAuth2 client id")]
        pub client_id: Option<String>,
        /// The OAuth2 client secret ({clientSecret})
        #[option(label = "OAuth2 client secret", secret)]
        pub client_secret: Option<String>,
        /// More values for {name} placeholders in the manifest: {"workspace": "acme"}
        #[option(label = "Parameters", kind = FieldType::Object)]
        pub params: Option<serde_json::Map<String, Value>>,
    }
}

/// The config [`open`] reads, for the registry.
pub type Config = HttpConnectorOptions;

pub fn spec() -> Spec {
    Spec {
        code: "http",
        label: "Declarative REST API",
        description: "Any REST API described in connector.json, next to account.json: base URL, auth (none, bearer, basic, API key in a header or the query, OAuth2 client credentials), headers, and the actions check, get, insert, patch, delete, list and getupdates with their paths, queries, bodies, where the records are and how they page. The manifest is validated before any request; `manifest` below documents every field. Requests go through the shared HTTP engine (rate limits, retries, redaction, -v logging, --dry-run).",
        roles: vec![Role::Source, Role::Destination],
        options: HttpConnectorOptions::option_specs(),
        fields: vec![FieldSpec::new("id", FieldType::String, "The record's identifier (the manifest's idField names it)").required()],
        extra_fields: true,
        capabilities: HttpConnector::CAPABILITIES,
        max_batch_size: 100,
        parallelism: 4,
        account_values: false,
        store: None,
    }
}

/// The manifest documentation `ferry connectors http` adds to the spec.
pub fn manifest_docs() -> Value {
    manifest::docs()
}

pub fn open(env: &Env, options: Options) -> Result<Box<dyn Connector>> {
    let config: HttpConnectorOptions = options.parse()?;
    let path = options.resolve(&config.manifest);
    let shown = config.manifest;
    let manifest = manifest::load(&path, &shown)?;
    let base_url = match config
        .http
        .base_url
        .clone()
        .or_else(|| manifest.base_url.clone())
    {
        Some(u) => u,
        None => {
            return Err(usage(format!("no base URL for the API of {shown}"))
                .hint(format!(
                    "set \"baseUrl\" in {shown} or in {}",
                    options.source()
                ))
                .into())
        }
    };
    if url::Url::parse(&base_url).is_err() {
        return Err(usage(format!("baseUrl \"{base_url}\" is not a URL")).into());
    }
    // The values the manifest's {name} placeholders may use.
    let mut vars = BTreeMap::new();
    for (key, value) in [
        ("token", config.token),
        ("username", config.username),
        ("password", config.password),
        ("apiKey", config.api_key),
        ("clientId", config.client_id),
        ("clientSecret", config.client_secret),
        ("baseUrl", config.http.base_url.clone()),
    ] {
        if let Some(v) = value {
            vars.insert(key.to_string(), v);
        }
    }
    for (k, v) in config.params.unwrap_or_default() {
        let v = match v {
            Value::String(s) => s,
            other => other.to_string(),
        };
        vars.insert(k, v);
    }
    let mut policy = Policy {
        source: options.source().to_string(),
        reset_header: manifest.reset_header.clone(),
        auth_hint: Some(manifest.auth.hint(&shown, options.source())),
        ..Policy::default()
    };
    if let Some(r) = &manifest.rate_limit {
        r.apply(&mut policy.default);
    }
    if let Some(r) = &manifest.retry {
        r.apply(&mut policy.retry);
    }
    policy.groups = manifest
        .groups
        .iter()
        .map(|g| Group {
            name: g.name.clone(),
            methods: g.methods.clone(),
            path: g.path.clone(),
            limit: crate::http::RateLimit {
                rps: g.rps,
                burst: g.burst.unwrap_or(1),
                max_in_flight: g
                    .max_in_flight
                    .unwrap_or(crate::http::policy::DEFAULT_MAX_IN_FLIGHT),
            },
        })
        .collect();
    config.http.apply_to(&mut policy)?;
    let engine = env.http.engine(policy)?;
    let mut spec = spec();
    if let Some(bulk) = &manifest.actions.bulk {
        spec.max_batch_size = bulk.batch_size.unwrap_or(DEFAULT_BULK_SIZE);
    }
    let connector = HttpConnector {
        spec,
        id_field: manifest.id_field.clone(),
        builder: Builder {
            manifest,
            shown,
            base_url,
            vars,
        },
        engine,
        out: env.out().clone(),
        token: OnceCell::new(),
        seen: Mutex::new(Seen::new()),
    };
    // A server may echo the Authorization header back: its base64 is as
    // secret as the password in it.
    if let manifest::Auth::Basic { username, password } = &connector.builder.manifest.auth {
        let b = &connector.builder;
        if let (Ok(user), Ok(pass)) = (
            b.fill(username, None, "auth.username", false),
            b.fill(password, None, "auth.password", false),
        ) {
            env.out()
                .add_secrets([build::basic_credentials(&user, &pass)]);
        }
    }
    Ok(Box::new(connector))
}

/// The batch size of a bulk action that does not give one.
const DEFAULT_BULK_SIZE: usize = 100;

pub struct HttpConnector {
    spec: Spec,
    id_field: String,
    builder: Builder,
    engine: Engine,
    out: crate::output::Output,
    /// The OAuth2 token, fetched once per run.
    token: OnceCell<String>,
    /// Cursors and URLs already followed by `read_page`, against loops.
    seen: Mutex<Seen>,
}

impl HttpConnector {
    fn action(&self, name: &str) -> Result<&ActionSpec> {
        let found = self
            .builder
            .manifest
            .actions
            .named()
            .into_iter()
            .find(|(n, _)| *n == name)
            .and_then(|(_, a)| a.as_ref());
        found.ok_or_else(|| {
            unsupported("http", name)
                .hint(format!(
                    "describe it under \"actions\": {{\"{name}\": {{...}}}} in {} (see `ferry connectors http`)",
                    self.builder.shown
                ))
                .into()
        })
    }

    async fn bearer(&self) -> Result<Option<String>> {
        let Some(req) = self.builder.token_request()? else {
            return Ok(None);
        };
        let token = self
            .token
            .get_or_try_init(|| async {
                let resp = self.engine.send(&req).await?;
                let body = resp.json(&req)?;
                let token = body
                    .get("access_token")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .ok_or_else(|| {
                        failed(format!(
                            "the OAuth2 token response of {} has no access_token",
                            req.shown_url()
                        ))
                    })?;
                self.out.add_secrets([token.clone()]);
                Ok::<String, anyhow::Error>(token)
            })
            .await?;
        Ok(Some(token.clone()))
    }

    #[allow(clippy::too_many_arguments)]
    async fn build(
        &self,
        name: &str,
        id: Option<&str>,
        record: Option<&Record>,
        query: &[(String, String)],
        url: Option<&str>,
    ) -> Result<RequestSpec> {
        let action = self.action(name)?;
        let bearer = self.bearer().await?;
        self.builder
            .request(name, action, id, record, query, url, bearer.as_deref())
    }

    /// One bulk request, and one outcome per record from the answer's
    /// results (in the order sent). A failed request fails the whole batch.
    async fn send_bulk(&self, chunk: &[Record]) -> Result<Vec<UpsertOutcome>> {
        let action = self.action("bulk")?;
        let bearer = self.bearer().await?;
        let req = self
            .builder
            .bulk_request(action, chunk, bearer.as_deref())?;
        let ids = chunk.iter().map(|r| record_id(r, &self.id_field)).collect();
        self.bulk_outcomes(action, &req, ids).await
    }

    /// [`HttpConnector::send_bulk`] for records as JSON text, sent as they
    /// came from the source (import's pass-through).
    async fn send_bulk_raw(&self, records: &RawRecords) -> Result<Vec<UpsertOutcome>> {
        let action = self.action("bulk")?;
        let bearer = self.bearer().await?;
        let req = self
            .builder
            .bulk_request_raw(action, records, bearer.as_deref())?;
        let ids = match records.ids() {
            Some(ids) => ids.map(|id| Some(id.to_string())).collect(),
            None => vec![None; records.len()],
        };
        self.bulk_outcomes(action, &req, ids).await
    }

    /// Send a bulk request and read one outcome per record from its answer
    /// (`ids` are the records' ids, in order).
    async fn bulk_outcomes(
        &self,
        action: &manifest::ActionSpec,
        req: &RequestSpec,
        ids: Vec<Option<String>>,
    ) -> Result<Vec<UpsertOutcome>> {
        let req = req.clone();
        let chunk = &ids;
        let resp = self.engine.send(&req).await?;
        let body = resp.json(&req)?;
        let pointer = action.results.clone().unwrap_or_default();
        let results = match body.pointer(&pointer) {
            Some(Value::Array(items)) if items.len() == chunk.len() => items,
            Some(Value::Array(items)) => {
                return Err(failed(format!(
                    "{}: the API answered {} results for {} records",
                    self.at("bulk", "results"),
                    items.len(),
                    chunk.len()
                ))
                .into())
            }
            _ => {
                return Err(failed(format!(
                    "{}: no array at \"{pointer}\" in the answer to {} {}",
                    self.at("bulk", "results"),
                    req.method,
                    req.shown_url()
                ))
                .into())
            }
        };
        let error_at = action.error.as_deref().unwrap_or("/error");
        Ok(ids
            .into_iter()
            .zip(results)
            .map(|(id, result)| match result.pointer(error_at) {
                None | Some(Value::Null) => UpsertOutcome::Ok {
                    id: id.unwrap_or_default(),
                },
                Some(Value::String(reason)) => UpsertOutcome::Rejected {
                    id,
                    reason: reason.clone(),
                },
                Some(other) => UpsertOutcome::Rejected {
                    id,
                    reason: other.to_string(),
                },
            })
            .collect())
    }

    fn at(&self, name: &str, field: &str) -> String {
        format!("{}: actions.{name}.{field}", self.builder.shown)
    }

    /// The object at the action's `records` pointer (get, insert, patch).
    fn object_in(&self, name: &str, req: &RequestSpec, resp: &Response) -> Result<Record> {
        let body = resp.json(req)?;
        let p = self.action(name)?.records.clone().unwrap_or_default();
        match body.pointer(&p) {
            Some(Value::Object(m)) => Ok(m.clone()),
            _ if body.is_null() => Ok(Record::new()),
            _ => Err(failed(format!(
                "{} {} answered no object at \"{p}\" ({})",
                req.method,
                req.shown_url(),
                self.at(name, "records")
            ))
            .into()),
        }
    }

    /// Send a write and answer its response whatever the status.
    async fn send_write(
        &self,
        name: &str,
        id: Option<&str>,
        record: &Record,
    ) -> Result<(RequestSpec, Response)> {
        let req = self.build(name, id, Some(record), &[], None).await?;
        let resp = self.engine.execute(&req).await?;
        Ok((req, resp))
    }

    /// The stored record of a successful insert, with its new id.
    fn inserted(&self, value: Record, req: &RequestSpec, resp: &Response) -> Result<Record> {
        let mut stored = self.object_in("insert", req, resp)?;
        let id_pointer = self.action("insert")?.id.clone();
        let id = match &id_pointer {
            Some(p) => resp.json(req)?.pointer(p).and_then(scalar),
            None => record_id(&stored, &self.id_field),
        };
        if stored.is_empty() {
            stored = value;
        }
        match id {
            Some(id) => {
                stored.insert(self.id_field.clone(), Value::String(id));
            }
            None if record_id(&stored, &self.id_field).is_none() => {
                return Err(failed(format!(
                    "{} {} created a record but answered no id",
                    req.method,
                    req.shown_url()
                ))
                .hint(format!(
                    "point {} at the new id in the response",
                    self.at("insert", "id")
                ))
                .into())
            }
            None => {}
        }
        Ok(stored)
    }

    fn write_requests(&self, op: &WriteOp) -> Result<Vec<RequestSpec>> {
        let stand_in = crate::output::REDACTED;
        let build =
            |name: &str, id: Option<&str>, record: Option<&Record>| -> Result<RequestSpec> {
                let action = self.action(name)?;
                self.builder
                    .request(name, action, id, record, &[], None, Some(stand_in))
            };
        match op {
            WriteOp::Insert(r) => Ok(vec![build("insert", None, Some(r))?]),
            WriteOp::Patch { id, value } => Ok(vec![build("patch", Some(id), Some(value))?]),
            WriteOp::Delete { id } => Ok(vec![build("delete", Some(id), None)?]),
            WriteOp::UpsertBatch(records) if self.builder.manifest.actions.bulk.is_some() => {
                let action = self.action("bulk")?;
                records
                    .chunks(self.spec.max_batch_size.max(1))
                    .map(|chunk| self.builder.bulk_request(action, chunk, Some(stand_in)))
                    .collect()
            }
            WriteOp::UpsertBatch(records) => records
                .iter()
                .map(|r| match record_id(r, &self.id_field) {
                    Some(id) if self.builder.manifest.actions.patch.is_some() => {
                        build("patch", Some(&id), Some(r))
                    }
                    _ => build("insert", None, Some(r)),
                })
                .collect(),
            WriteOp::UpdateProfile { id, set, clear } => {
                let update = ProfileUpdate {
                    set: set.clone(),
                    clear: clear.clone(),
                };
                Ok(vec![build(
                    "patch",
                    Some(id),
                    Some(&Self::update_body(&update)),
                )?])
            }
            WriteOp::AddMembers { group, ids } => {
                self.members_requests(true, group, ids, Some(stand_in))
            }
            WriteOp::RemoveMembers { group, ids } => {
                self.members_requests(false, group, ids, Some(stand_in))
            }
        }
    }
}

/// Whether an error status is about the record sent (its data), so that
/// record is refused and the rest of the batch goes on. Credentials, a
/// missing route, a wrong method, a timeout or the rate limit concern every
/// record: they fail the call instead.
fn refuses_the_record(status: u16) -> bool {
    (400..500).contains(&status) && !matches!(status, 401 | 403 | 404 | 405 | 407 | 408 | 429)
}

/// The outcome of a one-id membership change as a result.
fn one_member(outcomes: Vec<ProfileOutcome>) -> Result<()> {
    match outcomes.into_iter().next() {
        Some(ProfileOutcome::Ok { .. }) => Ok(()),
        Some(ProfileOutcome::Rejected { reason }) => {
            Err(crate::connector::Rejection(reason).into())
        }
        Some(
            ProfileOutcome::Error { reason, .. }
            | ProfileOutcome::Skipped { reason }
            | ProfileOutcome::NotFound { reason },
        ) => Err(failed(reason).into()),
        None => Err(failed("the membership change answered nothing").into()),
    }
}

crate::capabilities!(HttpConnector: Records, Updates, Source, Sink, Profiles if can_export, Groups if has_groups);

#[async_trait]
impl Connector for HttpConnector {
    fn spec(&self) -> &Spec {
        &self.spec
    }

    fn id_field(&self) -> &str {
        &self.id_field
    }

    async fn check(&self) -> Result<Value> {
        let (name, query) = if self.builder.manifest.actions.check.is_some() {
            ("check", vec![])
        } else {
            let a = self.action("list")?;
            (
                "list",
                self.page_query(a.pagination.as_ref(), &Cursor::default(), 1),
            )
        };
        let req = self.build(name, None, None, &query, None).await?;
        let resp = self.engine.send(&req).await?;
        Ok(json!({ "ok": true, "status": resp.status, "url": req.shown_url() }))
    }

    fn cannot_hint(&self, action: &str) -> Option<String> {
        let shown = &self.builder.shown;
        match action {
            "export profiles" => Some(format!(
                "export needs \"insert\" and \"patch\" under \"actions\" in {shown}, and \"find\" when \"exportKey\" is not the id field (see `ferry connectors http`)"
            )),
            "hold group memberships" => Some(format!(
                "describe \"findGroup\" or \"createGroup\", \"addMembers\" and \"removeMembers\" under \"actions\" in {shown}"
            )),
            _ => None,
        }
    }
}

#[async_trait]
impl RecordLookup for HttpConnector {
    async fn get(&self, id: &str) -> Result<Record> {
        let req = self.build("get", Some(id), None, &[], None).await?;
        let resp = self.engine.send(&req).await?;
        self.object_in("get", &req, &resp)
    }
}

#[async_trait]
impl RecordStore for HttpConnector {
    async fn insert(&self, value: Record) -> Result<Record> {
        let (req, resp) = self.send_write("insert", None, &value).await?;
        if !resp.is_success() {
            return Err(self.engine.failure(&req, &resp).into());
        }
        self.inserted(value, &req, &resp)
    }

    async fn patch(&self, id: &str, value: Record) -> Result<Record> {
        let req = self
            .build("patch", Some(id), Some(&value), &[], None)
            .await?;
        let resp = self.engine.send(&req).await?;
        self.object_in("patch", &req, &resp)
    }

    async fn delete(&self, id: &str) -> Result<()> {
        let req = self.build("delete", Some(id), None, &[], None).await?;
        self.engine.send(&req).await?;
        Ok(())
    }

    fn preview(&self, op: &WriteOp) -> Result<Vec<Value>> {
        RecordSink::preview(self, op)
    }
}

#[async_trait]
impl ChangeFeed for HttpConnector {
    async fn get_updates(&self, since: Option<&str>, limit: Option<usize>) -> Result<Updates> {
        self.updates(since, limit).await
    }
}

#[async_trait]
impl RecordSource for HttpConnector {
    fn reads_at_any_offset(&self) -> bool {
        // An offset listing asks for `offset=N` itself; pages by number,
        // cursors and next URLs have to be walked.
        matches!(
            self.builder
                .manifest
                .actions
                .list
                .as_ref()
                .and_then(|a| a.pagination.as_ref()),
            Some(Pagination::Offset { .. })
        )
    }

    async fn read_page(&self, from: &Position, limit: usize) -> Result<Page> {
        let (page, next) = self.list_page(from, limit, false).await?;
        Ok(Page {
            records: page.records,
            next,
            total: page.total,
        })
    }

    fn raw(&self) -> Option<&dyn RawSource> {
        // Paging by page number compares each page's ids with the last
        // page's, which needs the records parsed anyway.
        let by_page = matches!(
            self.action("list").ok().and_then(|a| a.pagination.as_ref()),
            Some(Pagination::Page { .. })
        );
        if by_page {
            None
        } else {
            Some(self)
        }
    }
}

#[async_trait]
impl RawSource for HttpConnector {
    async fn read_page_raw(&self, from: &Position, limit: usize) -> Result<RawPage> {
        let (page, next) = self.list_page(from, limit, true).await?;
        let records = match page.raw {
            Some(raw) => raw,
            None => RawRecords::from_records(&page.records)?,
        };
        Ok(RawPage {
            records,
            next,
            total: page.total,
        })
    }
}

#[async_trait]
impl ProfileSink for HttpConnector {
    async fn export_fields(&self) -> Result<ExportFields> {
        if !self.can_export() {
            return Err(unsupported("http", "export profiles")
                .hint(format!(
                    "export needs \"insert\" and \"patch\" under \"actions\" in {}, and \"find\" when \"exportKey\" is not the id field (see `ferry connectors http`)",
                    self.builder.shown
                ))
                .into());
        }
        Ok(ExportFields {
            key: self.export_key().to_string(),
            key_from_profile_id: self.export_key() == self.id_field,
            fields: Vec::new(),
            extra_fields: true,
        })
    }

    async fn find_profile(&self, key: &str) -> Result<Option<String>> {
        self.find_by_key(key).await
    }

    async fn create_profile(&self, fields: Record) -> Result<String> {
        self.create(fields).await
    }

    async fn update_profile(&self, id: &str, update: ProfileUpdate) -> Result<String> {
        self.update(id, update).await
    }

    async fn delete_profile(&self, id: &str) -> Result<()> {
        self.remove(id).await
    }

    fn preview(&self, op: &WriteOp) -> Result<Vec<Value>> {
        RecordSink::preview(self, op)
    }
}

#[async_trait]
impl GroupSink for HttpConnector {
    async fn ensure_group(&self, name: &str) -> Result<String> {
        self.group_id(name).await
    }

    async fn add_member(&self, group: &str, id: &str) -> Result<()> {
        one_member(self.members(true, group, vec![id.to_string()]).await)
    }

    async fn remove_member(&self, group: &str, id: &str) -> Result<()> {
        one_member(self.members(false, group, vec![id.to_string()]).await)
    }

    async fn add_members(&self, group: &str, ids: Vec<String>) -> Vec<ProfileOutcome> {
        self.members(true, group, ids).await
    }

    async fn remove_members(&self, group: &str, ids: Vec<String>) -> Vec<ProfileOutcome> {
        self.members(false, group, ids).await
    }
}

/// Import's pass-through into a bulk endpoint: the records' own text in
/// the bulk body, one outcome per record from its answer, as a parsed
/// batch gets.
#[async_trait]
impl RawSink for HttpConnector {
    async fn upsert_raw(&self, records: Arc<RawRecords>) -> Result<Vec<UpsertOutcome>> {
        // A batch larger than one bulk call takes the parsed path, which
        // splits it.
        if records.len() > self.spec.max_batch_size.max(1) {
            return self.upsert_batch(Arc::new(records.to_records()?)).await;
        }
        self.send_bulk_raw(&records).await
    }
}

#[async_trait]
impl RecordSink for HttpConnector {
    fn preview(&self, op: &WriteOp) -> Result<Vec<Value>> {
        Ok(self
            .write_requests(op)?
            .iter()
            .map(RequestSpec::preview)
            .collect())
    }

    /// With a bulk action, batches can go out as the source's JSON text.
    fn raw(&self) -> Option<&dyn RawSink> {
        self.builder
            .manifest
            .actions
            .bulk
            .is_some()
            .then_some(self as &dyn RawSink)
    }

    async fn upsert_batch(&self, records: Records) -> Result<Vec<UpsertOutcome>> {
        if self.builder.manifest.actions.bulk.is_none() {
            return crate::connector::upsert_each(self, records).await;
        }
        let mut outcomes = Vec::with_capacity(records.len());
        for chunk in records.chunks(self.spec.max_batch_size.max(1)) {
            outcomes.extend(self.send_bulk(chunk).await?);
        }
        Ok(outcomes)
    }

    async fn upsert(&self, record: Record) -> Result<UpsertOutcome> {
        let id = record_id(&record, &self.id_field);
        let mut sent = match &id {
            Some(id) if self.builder.manifest.actions.patch.is_some() => {
                ("patch", self.send_write("patch", Some(id), &record).await?)
            }
            _ => ("insert", self.send_write("insert", None, &record).await?),
        };
        if sent.0 == "patch" && sent.1 .1.status == 404 {
            sent = ("insert", self.send_write("insert", None, &record).await?);
        }
        let (name, (req, resp)) = sent;
        if refuses_the_record(resp.status) {
            let reason = self.engine.failure(&req, &resp).message;
            return Ok(UpsertOutcome::Rejected { id, reason });
        }
        if !resp.is_success() {
            return Err(self.engine.failure(&req, &resp).into());
        }
        let written = match name {
            "insert" => record_id(&self.inserted(record, &req, &resp)?, &self.id_field),
            _ => None,
        };
        Ok(UpsertOutcome::Ok {
            id: written.or(id).unwrap_or_default(),
        })
    }
}
