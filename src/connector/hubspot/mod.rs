//! The `hubspot` connector: HubSpot CRM contacts (API v3) as a source, an
//! import destination and an export destination whose groups are static
//! contact lists (Lists API v3). Every fact comes from
//! docs/connectors/hubspot.md; where that reference says "not confirmed",
//! the connector takes the safest documented behaviour:
//!
//! - **Auth**: a private app (static) token sent as `Authorization: Bearer`;
//!   the `accessToken` option is a secret, redacted everywhere.
//! - **Records** are a contact's `id` followed by its properties, flat.
//!   Written values become strings (HubSpot stores every property as text),
//!   a list becomes a `;`-separated string (multiple checkboxes), an object
//!   is refused. Read-only fields (`id`, `hs_object_id`, `lastmodifieddate`,
//!   `createdAt`, `updatedAt`, `archived`) are left out of writes.
//! - **Ids**: `--id` of digits is HubSpot's record id; anything else is a
//!   value of the unique property `idProperty` (default `email`), sent as
//!   `/contacts/{value}?idProperty=email`. ferry's record id is `idProperty`.
//! - **Listing** (`read_page`) follows `paging.next.after` until
//!   `paging.next` is absent (the end); a cursor repeated, or an empty page
//!   that claims more, is an error rather than a loop, and a `paging.next`
//!   without `after` is an error rather than an early end. The largest page is not documented: 100.
//! - **getupdates** searches `lastmodifieddate >= T` oldest first (the
//!   object form of `sorts` the guides use), up to 200 a request. Each
//!   request starts again from the last time read and skips the ids already
//!   read at that time, so it never pages into the search's result cap
//!   (10,000 by third-party accounts) and contacts modified in the same
//!   millisecond are neither skipped nor repeated. Archived contacts do not
//!   appear in search, so getupdates reports no deletes.
//! - **Writes**: insert `POST /contacts`, patch `PATCH /contacts/{id}` (a
//!   null clears the property: HubSpot clears with an empty string),
//!   delete `DELETE /contacts/{id}` (archive; restorable for 90 days; the
//!   archive takes no `idProperty`, so an email is looked up first).
//! - **Batch upsert** (import, export creates): `batch/upsert` keyed by
//!   `idProperty`, 100 inputs a request, per-record outcomes from the 207
//!   multi-status answer (see [`batch`]). Export deletes are single
//!   archives (a 404 is a contact already gone), so `--dry-run` shows
//!   exactly what is sent; `batch/archive` would answer 204 whatever
//!   happened, which tells nothing per contact.
//! - **Groups** are static (`MANUAL`) contact lists: found by name (not
//!   case sensitive), else created, once per run (a create refused because
//!   the name was taken meanwhile looks the list up again); members are added and
//!   removed with `PUT /crm/v3/lists/{id}/memberships/add|remove`, 100
//!   record ids a request (no maximum is documented). An id in
//!   `recordIdsMissing` of an add is a contact that does not exist. An
//!   active (`DYNAMIC`) list of that name cannot be edited by API: an error
//!   for every profile joining or leaving it.
//! - **Rate limits**: 100 requests per 10 seconds, the Free/Starter burst
//!   limit that every tier allows (Professional and Enterprise allow 190:
//!   `"rateLimit": {"default": {"rps": 19, "burst": 19}}`), and the
//!   `search` group at 4 requests a second
//!   (the changelog's figure; newer docs may allow 5). A 429 waits for
//!   `Retry-After` when sent (HubSpot does not document one), else backs
//!   off exponentially without spending the retry budget; its
//!   `X-HubSpot-RateLimit-*` headers are logged with `-vv`. A 429 whose
//!   `policyName` is `DAILY` (the account's daily limit, reset at midnight)
//!   is not waited on: it fails at once with HubSpot's message.
//! - **Errors** show HubSpot's `message` with its detailed `errors[].message`
//!   and the `correlationId` support asks for.

mod batch;
pub mod requests;

use anyhow::Result;
use async_trait::async_trait;
use serde_json::{json, Value};

use crate::connector::options::{connector_options, Described};
use crate::connector::saas::paging::{self, step, Next};
use crate::connector::saas::HttpOptions;
use crate::connector::saas::{self, records_in, scalar};
use crate::connector::{
    record_id, Change, ChangeType, Connector, ExportFields, FieldSpec, FieldType, Options, Page,
    Position, ProfileOutcome, ProfileUpdate, Record, Records, Rejection, Role, Spec, Updates,
    UpsertOutcome, WriteOp,
};
use crate::connector::{
    ChangeFeed, Env, GroupSink, ProfileSink, RecordLookup, RecordSink, RecordSource, RecordStore,
};
use crate::error::{failed, usage, Failure};
use crate::http::redact::redact_body_text;
use crate::http::{status_error, Engine, Group, Policy, RateLimit, RequestSpec, Response};
use requests::{
    flatten, modified_ms, properties, Api, Mark, MarkToken, Nulls, MAX_BATCH, MAX_MEMBERS,
    MAX_PAGE, MAX_SEARCH,
};

pub const DEFAULT_BASE_URL: &str = "https://api.hubapi.com";

connector_options! {
    /// The options of a `hubspot` account.
    pub struct HubSpotOptions {
        /// The private app's access token, sent as Authorization: Bearer (HubSpot: Settings > Integrations > Private Apps; scopes crm.objects.contacts.read, crm.objects.contacts.write, crm.lists.read, crm.lists.write)
        #[option(label = "Access token", placeholder = "${HUBSPOT_ACCESS_TOKEN}", required, secret)]
        pub access_token: String,
        /// The engine's options.
        #[option(flatten)]
        #[serde(flatten)]
        pub http: HttpOptions,
        /// The contact property with unique values that upserts, exports and non-numeric ids are keyed by (default email)
        #[option(label = "Unique property", default = "email")]
        pub id_property: String,
        /// Contact properties get, list and getupdates ask for, e.g. ["email", "firstname", "phone"]; without it HubSpot answers its default properties
        #[option(label = "Properties to read", kind = FieldType::Array)]
        #[serde(default, deserialize_with = "property_names")]
        pub properties: Vec<String>,
    }
}

/// The `properties` option: a list of property names, nothing else.
fn property_names<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let items = <Vec<Value> as serde::Deserialize>::deserialize(d)?;
    items
        .into_iter()
        .map(|v| match v {
            Value::String(s) => Ok(s),
            _ => Err(serde::de::Error::custom(
                "properties must be a list of property names",
            )),
        })
        .collect()
}

/// The config [`open`] reads, for the registry.
pub type Config = HubSpotOptions;

pub fn spec() -> Spec {
    let options = crate::connector::saas::vendor_base_url(
        HubSpotOptions::option_specs(),
        DEFAULT_BASE_URL,
        "HubSpot's API (https://api.hubapi.com, the default), or a test server",
    );
    Spec {
        code: "hubspot",
        label: "HubSpot contacts",
        description: "HubSpot CRM contacts (API v3, private app token). Source: get by record id or unique property, every contact page by page with the after cursor, getupdates by lastmodifieddate through search. Destination: insert, patch (null clears), delete (archive), batch upsert keyed by email (100 a request, per-record outcomes), export with groups as static contact lists (found or created by name, members added and removed 100 at a time). Rate limits: 100 requests every ten seconds and search at 4 a second; for a higher tier set rateLimit {\"default\": {\"rps\": 19, \"burst\": 19}}.",
        roles: vec![Role::Source, Role::Destination],
        options,
        fields: vec![
            FieldSpec::new("email", FieldType::String, "Email address; the default unique property records are keyed by"),
            FieldSpec::new("firstname", FieldType::String, "First name"),
            FieldSpec::new("lastname", FieldType::String, "Last name"),
            FieldSpec::new("phone", FieldType::String, "Phone number, free form"),
            FieldSpec::new("company", FieldType::String, "Company name"),
            FieldSpec::new("lifecyclestage", FieldType::String, "Lifecycle stage (subscriber, lead, customer, ...)"),
        ],
        extra_fields: true,
        capabilities: HubSpot::CAPABILITIES,
        max_batch_size: MAX_BATCH,
        parallelism: 2,
    }
}

/// The rate limits in the module doc, per endpoint group.
fn policy(options: &Options, http: &HttpOptions) -> Result<Policy> {
    let mut policy = Policy {
        source: options.source().to_string(),
        default: RateLimit {
            rps: 10.0,
            burst: 10,
            max_in_flight: 4,
        },
        groups: vec![Group {
            name: "search".into(),
            methods: vec!["POST".into()],
            path: "/crm/v3/objects/*/search".into(),
            limit: RateLimit {
                rps: 4.0,
                burst: 4,
                max_in_flight: 1,
            },
        }],
        quota_spent: Some(("/policyName".into(), "DAILY".into())),
        ..Policy::default()
    };
    http.apply_to(&mut policy)?;
    Ok(policy)
}

pub fn open(env: &Env, options: Options) -> Result<Box<dyn Connector>> {
    let config: HubSpotOptions = options.parse()?;
    let base_url = crate::connector::saas::base_url(
        &config.http,
        DEFAULT_BASE_URL,
        &format!("use {DEFAULT_BASE_URL}, or a test server's address"),
    )?;
    let policy = policy(&options, &config.http)?;
    let api = Api {
        base_url,
        token: config.access_token,
        id_property: config.id_property,
        properties: config.properties,
    };
    let engine = env.http.engine(policy)?.with_errors(vendor_error);
    Ok(Box::new(HubSpot {
        spec: spec(),
        api,
        engine,
    }))
}

pub struct HubSpot {
    spec: Spec,
    api: Api,
    engine: Engine,
}

/// `status_error` (method, URL, status, `message`) plus HubSpot's detailed
/// `errors[].message`, its `correlationId`, and a hint for a missing scope,
/// bad credentials or the spent daily limit.
fn vendor_error(req: &RequestSpec, resp: &Response) -> Failure {
    let mut f = status_error(req, resp);
    let body: Value = serde_json::from_str(&resp.body).unwrap_or(Value::Null);
    let details: Vec<String> = saas::error_fields(&body, "message")
        .into_iter()
        .filter(|m| !f.message.contains(m))
        .map(redact_body_text)
        .collect();
    if !details.is_empty() {
        f.message.push_str(&format!(" ({})", details.join("; ")));
    }
    if let Some(c) = body.get("correlationId").and_then(Value::as_str) {
        f.message.push_str(&format!(" [correlationId {c}]"));
    }
    let scopes = body.pointer("/context/missingScopes");
    let daily = body.get("policyName").and_then(Value::as_str) == Some("DAILY");
    match resp.status {
        403 if scopes.is_some() => f.hint(format!(
            "the private app lacks the scopes {}: add them in HubSpot (Settings > Integrations > Private Apps) and use the new token",
            scopes.map(Value::to_string).unwrap_or_default()
        )),
        401 | 403 => f.hint("check accessToken in account.json (and the .env variable it names): a private app token with the scopes crm.objects.contacts.read/write and crm.lists.read/write"),
        429 if daily => f.hint("the account's daily API limit is spent; it resets at midnight in the account's time zone: run again then (an import resumes with --resume)"),
        _ => f,
    }
}

/// The HubSpot object in a response body, as a record.
fn object(req: &RequestSpec, body: &Value) -> Result<Record> {
    flatten(body).ok_or_else(|| {
        failed(format!(
            "{} {} answered no contact object with an id",
            req.method,
            req.shown_url()
        ))
        .into()
    })
}

/// The id of the list in a Lists API answer (`{"list": {"listId"}}`).
fn list_id(req: &RequestSpec, body: &Value) -> Result<String> {
    let list = body.get("list").unwrap_or(body);
    let id = match list.get("listId") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => {
            return Err(failed(format!(
                "{} {} answered no list.listId",
                req.method,
                req.shown_url()
            ))
            .into())
        }
    };
    match list.get("processingType").and_then(Value::as_str) {
        None | Some("MANUAL" | "SNAPSHOT") => Ok(id),
        Some(other) => {
            let name = list.get("name").and_then(Value::as_str).unwrap_or("");
            Err(failed(format!(
                "HubSpot list \"{name}\" ({id}) is a {other} list; its members cannot be changed by API"
            ))
            .hint("rename that list in HubSpot or use another group name: ferry creates and edits static (MANUAL) lists")
            .into())
        }
    }
}

impl HubSpot {
    fn unfit(e: requests::Unfit) -> anyhow::Error {
        usage(e.0).into()
    }

    /// The requests `op` sends, built without I/O.
    fn write_requests(&self, op: &WriteOp) -> Result<Vec<RequestSpec>> {
        let key = &self.api.id_property;
        Ok(match op {
            WriteOp::Insert(r) => vec![self
                .api
                .create(properties(r, Nulls::Omit).map_err(Self::unfit)?)],
            WriteOp::Patch { id, value } => vec![self
                .api
                .update(id, properties(value, Nulls::Clear).map_err(Self::unfit)?)],
            WriteOp::Delete { id } if requests::is_record_id(id) => vec![self.api.archive(id)],
            WriteOp::Delete { id } => {
                // The archive takes only a record id: the unique property
                // value is looked up first; the preview shows a placeholder.
                let mut archive = self.api.archive("HSID");
                archive.url = archive
                    .url
                    .replace("/contacts/HSID", &format!("/contacts/{{id of {id}}}"));
                vec![self.api.get_by_key(id), archive]
            }
            WriteOp::UpsertBatch(records) => records
                .chunks(MAX_BATCH)
                .filter_map(|c| {
                    let p = batch::prepare(c, key);
                    (!p.inputs.is_empty()).then(|| self.api.batch_upsert(p.inputs))
                })
                .collect(),
            WriteOp::UpdateProfile { id, set, clear } => {
                vec![self.api.update(id, update_body(set, clear)?)]
            }
            WriteOp::AddMembers { group, ids } | WriteOp::RemoveMembers { group, ids } => {
                // The list id is known only once the list is found or
                // created: the preview shows the lookup and a placeholder.
                let mut reqs = vec![self.api.list_by_name(group)];
                for chunk in ids.chunks(MAX_MEMBERS) {
                    let mut r = if matches!(op, WriteOp::AddMembers { .. }) {
                        self.api.add_members("LISTID", chunk)
                    } else {
                        self.api.remove_members("LISTID", chunk)
                    };
                    r.url = r
                        .url
                        .replace("/lists/LISTID/", &format!("/lists/{{listId of {group}}}/"));
                    reqs.push(r);
                }
                reqs
            }
        })
    }

    /// One upsert batch per 100 records, outcomes in order.
    async fn upsert_all(&self, records: &[Record]) -> Result<Vec<UpsertOutcome>> {
        let mut outcomes = Vec::with_capacity(records.len());
        for chunk in records.chunks(MAX_BATCH) {
            outcomes.extend(batch::upsert(&self.engine, &self.api, chunk).await?);
        }
        Ok(outcomes)
    }

    /// Add or remove `ids` in list `group`, 100 a request.
    async fn members(&self, group: &str, ids: Vec<String>, add: bool) -> Vec<ProfileOutcome> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(MAX_MEMBERS) {
            let req = if add {
                self.api.add_members(group, chunk)
            } else {
                self.api.remove_members(group, chunk)
            };
            let answer = match self.engine.send(&req).await {
                Ok(resp) => resp.json(&req),
                Err(e) => Err(e),
            };
            let body = match answer {
                Ok(b) => b,
                Err(e) => {
                    let reason = format!("{e:#}");
                    out.extend(chunk.iter().map(|_| ProfileOutcome::Error {
                        reason: reason.clone(),
                        retry_in: None,
                    }));
                    continue;
                }
            };
            let missing: Vec<&str> = body
                .get("recordIdsMissing")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            for id in chunk {
                // Removing a contact that is not a member is ignored by
                // HubSpot and is done as far as ferry is concerned.
                out.push(if add && missing.contains(&id.as_str()) {
                    ProfileOutcome::NotFound {
                        reason: format!("HubSpot has no contact {id} to add to the list"),
                    }
                } else {
                    ProfileOutcome::Ok { id: id.clone() }
                });
            }
        }
        out
    }
}

/// The single outcome of a one-id membership call, as a result.
fn one(mut outcomes: Vec<ProfileOutcome>) -> Result<()> {
    match outcomes.pop() {
        Some(ProfileOutcome::Ok { .. }) => Ok(()),
        Some(ProfileOutcome::NotFound { reason }) => Err(crate::error::not_found(reason).into()),
        Some(
            ProfileOutcome::Error { reason, .. }
            | ProfileOutcome::Rejected { reason }
            | ProfileOutcome::Skipped { reason },
        ) => Err(failed(reason).into()),
        None => Err(failed("the list membership call answered nothing").into()),
    }
}

/// A profile update as HubSpot properties: set values, `""` for clears.
fn update_body(set: &Record, clear: &[String]) -> Result<Value> {
    let mut props = properties(set, Nulls::Clear).map_err(HubSpot::unfit)?;
    if let Value::Object(m) = &mut props {
        for c in clear {
            m.insert(c.clone(), Value::String(String::new()));
        }
    }
    Ok(props)
}

crate::capabilities!(HubSpot: Records, Updates, Source, Sink, Profiles, Groups);

#[async_trait]
impl Connector for HubSpot {
    fn spec(&self) -> &Spec {
        &self.spec
    }

    fn id_field(&self) -> &str {
        &self.api.id_property
    }

    async fn check(&self) -> Result<Value> {
        let req = self.api.list(1, None);
        let resp = self.engine.send(&req).await?;
        // The answer must be a contact listing, not some other server's page.
        let body = resp.json(&req)?;
        if !body.get("results").is_some_and(Value::is_array) {
            return Err(failed(format!(
                "GET {} answered no \"results\" array",
                req.shown_url()
            ))
            .hint("check baseUrl in account.json: HubSpot's API is https://api.hubapi.com")
            .into());
        }
        Ok(json!({ "ok": true, "status": resp.status, "url": req.shown_url() }))
    }
}

#[async_trait]
impl RecordLookup for HubSpot {
    async fn get(&self, id: &str) -> Result<Record> {
        let req = self.api.get(id);
        let resp = self.engine.send(&req).await?;
        object(&req, &resp.json(&req)?)
    }
}

#[async_trait]
impl RecordStore for HubSpot {
    async fn insert(&self, value: Record) -> Result<Record> {
        let req = self
            .api
            .create(properties(&value, Nulls::Omit).map_err(Self::unfit)?);
        let resp = self.engine.send(&req).await?;
        let body = resp.json(&req)?;
        // The spec's create answer wraps the object in `entity`; the
        // reference shows the object itself. Both are read.
        object(&req, body.get("entity").unwrap_or(&body))
    }

    async fn patch(&self, id: &str, value: Record) -> Result<Record> {
        let req = self
            .api
            .update(id, properties(&value, Nulls::Clear).map_err(Self::unfit)?);
        let resp = self.engine.send(&req).await?;
        object(&req, &resp.json(&req)?)
    }

    async fn delete(&self, id: &str) -> Result<()> {
        // HubSpot's archive takes no idProperty (only GET and PATCH do), so
        // a unique property value (an email) is turned into the record id
        // first.
        let record_id = if requests::is_record_id(id) {
            id.to_string()
        } else {
            match self.find_profile(id).await? {
                Some(found) => found,
                None => {
                    return Err(crate::error::not_found(format!(
                        "HubSpot has no contact whose {} is \"{id}\"",
                        self.api.id_property
                    ))
                    .into())
                }
            }
        };
        self.engine.send(&self.api.archive(&record_id)).await?;
        Ok(())
    }

    fn preview(&self, op: &WriteOp) -> Result<Vec<Value>> {
        RecordSink::preview(self, op)
    }
}

#[async_trait]
impl ChangeFeed for HubSpot {
    async fn get_updates(&self, since: Option<&str>, limit: Option<usize>) -> Result<Updates> {
        let since = since.map(Mark::parse).transpose()?;
        let mut mark = since.clone();
        let mut entries = Vec::new();
        loop {
            let want = limit.map_or(MAX_SEARCH, |l| l.saturating_sub(entries.len()));
            if want == 0 {
                break;
            }
            let skip = mark.as_ref().map_or(0, |m| m.seen.len());
            let ask = (want + skip).clamp(1, MAX_SEARCH);
            let req = self.api.search(mark.as_ref().map(|m| m.at), ask);
            let resp = self.engine.send(&req).await?;
            let body = resp.json(&req)?;
            let Some(results) = body.get("results").and_then(Value::as_array) else {
                return Err(failed(format!(
                    "POST {} answered no \"results\" array",
                    req.shown_url()
                ))
                .into());
            };
            let more = body.pointer("/paging/next").is_some();
            let mut taken = 0;
            let mut truncated = false;
            for r in results {
                let (Some(record), Some(at)) = (flatten(r), modified_ms(r)) else {
                    return Err(failed(format!(
                        "POST {} answered a contact without an id or a readable lastmodifieddate",
                        req.shown_url()
                    ))
                    .into());
                };
                let hs_id = record_id(&record, "id").unwrap_or_default();
                if mark.as_ref().is_some_and(|m| m.covers(at, &hs_id)) {
                    continue;
                }
                if taken == want {
                    truncated = true;
                    break;
                }
                mark = Some(Mark::advance(mark.take(), at, &hs_id));
                taken += 1;
                entries.push(Change {
                    id: record_id(&record, &self.api.id_property).unwrap_or(hs_id),
                    kind: ChangeType::Upsert,
                    value: Some(record),
                });
            }
            let end = !truncated && !more;
            if end {
                break;
            }
            if taken == 0 && !truncated {
                return Err(failed(format!(
                    "POST {} answered only contacts already read; stopping instead of looping",
                    req.shown_url()
                ))
                .hint("more than 200 contacts share one lastmodifieddate, which a search cannot page past")
                .into());
            }
        }
        // No contact at all and no lastSync: the next call starts from the
        // beginning of time, which misses nothing.
        let next_sync = mark
            .unwrap_or(Mark {
                at: 0,
                seen: Vec::new(),
            })
            .token();
        Ok(Updates { next_sync, entries })
    }
}

#[async_trait]
impl RecordSource for HubSpot {
    async fn read_page(&self, from: &Position, limit: usize) -> Result<Page> {
        paging::from_checkpoint("hubspot", "reading", from, "its listing pages with HubSpot's after cursor, not by position: import from the beginning, or --resume a checkpoint")?;
        let req = self
            .api
            .list(limit.clamp(1, MAX_PAGE), from.cursor.as_deref());
        let resp = self.engine.send(&req).await?;
        let body = resp.json(&req)?;
        let records = records_in(&req, &body, "results", "contact", flatten)?;
        // `paging.next` is the "more" signal and always carries `after`
        // (the spec's NextPage requires it): a next page without a usable
        // cursor would otherwise end the listing early, silently.
        let after = body
            .pointer("/paging/next/after")
            .and_then(scalar)
            .filter(|s| !s.is_empty());
        let next = match after {
            Some(a) => Next::Cursor(a),
            None if body.pointer("/paging/next").is_some_and(|n| !n.is_null()) => {
                Next::Missing("a paging.next.after cursor")
            }
            None => Next::End,
        };
        let after = step(
            &req,
            from.cursor.as_deref(),
            records.len(),
            "contacts",
            next,
        )?;
        Ok(paging::page(from, records, after, None))
    }
}

#[async_trait]
impl RecordSink for HubSpot {
    fn preview(&self, op: &WriteOp) -> Result<Vec<Value>> {
        let mut shown = saas::previews(&self.write_requests(op)?);
        // What a batch would refuse before sending, so a dry run shows
        // every record's fate.
        if let WriteOp::UpsertBatch(records) = op {
            for chunk in records.chunks(MAX_BATCH) {
                let p = batch::prepare(chunk, &self.api.id_property);
                shown.extend(p.slots.refused_rows(&self.api.id_property));
            }
        }
        Ok(shown)
    }

    async fn upsert(&self, record: Record) -> Result<UpsertOutcome> {
        let mut outcomes = self.upsert_all(std::slice::from_ref(&record)).await?;
        outcomes
            .pop()
            .ok_or_else(|| failed("the batch upsert answered no outcome").into())
    }

    async fn upsert_batch(&self, records: Records) -> Result<Vec<UpsertOutcome>> {
        self.upsert_all(&records).await
    }
}

#[async_trait]
impl ProfileSink for HubSpot {
    async fn export_fields(&self) -> Result<ExportFields> {
        Ok(ExportFields {
            key: self.api.id_property.clone(),
            key_from_profile_id: false,
            fields: self.spec.fields.clone(),
            // Custom properties must exist in the portal; HubSpot refuses
            // the ones that do not, per contact.
            extra_fields: true,
        })
    }

    async fn find_profile(&self, key: &str) -> Result<Option<String>> {
        let req = self.api.get_by_key(key);
        let Some(resp) = self.engine.send_found(&req).await? else {
            return Ok(None);
        };
        let record = object(&req, &resp.json(&req)?)?;
        Ok(record_id(&record, "id"))
    }

    async fn create_profile(&self, fields: Record) -> Result<String> {
        match self.upsert(fields).await? {
            UpsertOutcome::Ok { id } => Ok(id),
            UpsertOutcome::Rejected { reason, .. } => Err(Rejection(reason).into()),
        }
    }

    async fn create_profiles(&self, profiles: Vec<Record>) -> Vec<ProfileOutcome> {
        let mut out = Vec::with_capacity(profiles.len());
        for chunk in profiles.chunks(MAX_BATCH) {
            match batch::upsert(&self.engine, &self.api, chunk).await {
                Ok(outcomes) => out.extend(outcomes.into_iter().map(saas::batch::profile_outcome)),
                Err(e) => out.extend(saas::batch::all_failed(chunk.len(), e)),
            }
        }
        out
    }

    async fn update_profile(&self, id: &str, update: ProfileUpdate) -> Result<String> {
        let req = self
            .api
            .update(id, update_body(&update.set, &update.clear)?);
        let resp = self.engine.execute(&req).await?;
        if resp.is_success() {
            return Ok(id.to_string());
        }
        let err = vendor_error(&req, &resp);
        // A 400 is this contact's data (an invalid value, an unknown property).
        if resp.status == 400 {
            return Err(Rejection(err.message).into());
        }
        Err(err.into())
    }

    async fn delete_profile(&self, id: &str) -> Result<()> {
        self.engine.send_unless_gone(&self.api.archive(id)).await
    }

    fn preview(&self, op: &WriteOp) -> Result<Vec<Value>> {
        RecordSink::preview(self, op)
    }
}

#[async_trait]
impl GroupSink for HubSpot {
    async fn ensure_group(&self, name: &str) -> Result<String> {
        let req = self.api.list_by_name(name);
        if let Some(resp) = self.engine.send_found(&req).await? {
            return list_id(&req, &resp.json(&req)?);
        }
        let req = self.api.create_list(name);
        let resp = self.engine.execute(&req).await?;
        if resp.is_success() {
            return list_id(&req, &resp.json(&req)?);
        }
        // Another run may have created the list since the lookup (names
        // are unique): look it up once more before failing.
        if matches!(resp.status, 400 | 409) {
            let again = self.api.list_by_name(name);
            let found = self.engine.execute(&again).await?;
            if found.is_success() {
                return list_id(&again, &found.json(&again)?);
            }
        }
        Err(vendor_error(&req, &resp).into())
    }

    async fn add_member(&self, group: &str, id: &str) -> Result<()> {
        one(self.members(group, vec![id.to_string()], true).await)
    }

    async fn remove_member(&self, group: &str, id: &str) -> Result<()> {
        one(self.members(group, vec![id.to_string()], false).await)
    }

    async fn add_members(&self, group: &str, ids: Vec<String>) -> Vec<ProfileOutcome> {
        self.members(group, ids, true).await
    }

    async fn remove_members(&self, group: &str, ids: Vec<String>) -> Vec<ProfileOutcome> {
        self.members(group, ids, false).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Account;

    fn options(extra: Value) -> Options {
        let mut options = serde_json::Map::new();
        options.insert("accessToken".into(), json!("t"));
        if let Value::Object(m) = extra {
            options.extend(m);
        }
        let account = Account {
            source: "account.json".into(),
            folder: std::path::PathBuf::from("."),
            connector: "hubspot".into(),
            options,
        };
        Options::new(&spec(), &account).unwrap()
    }

    #[test]
    fn the_default_rate_limits_are_hubspots_and_a_tier_raises_only_the_default_group() {
        let o = options(json!({}));
        let p = policy(&o, &o.parse_part().unwrap()).unwrap();
        assert_eq!((p.default.rps, p.default.burst), (10.0, 10));
        let search = p.group_index("POST", "/crm/v3/objects/contacts/search");
        assert_eq!(search, Some(0));
        assert_eq!(p.groups[0].limit.rps, 4.0);
        assert_eq!(
            p.group_index("POST", "/crm/v3/objects/contacts/batch/upsert"),
            None
        );
        assert!(p.is_quota_spent(r#"{"policyName": "DAILY"}"#));
        let o = options(json!({"rateLimit": {"default": {"rps": 19, "burst": 19}}}));
        let p = policy(&o, &o.parse_part().unwrap()).unwrap();
        assert_eq!(p.default.rps, 19.0);
        assert_eq!(p.groups[0].limit.rps, 4.0);
    }

    #[test]
    fn updates_clear_with_empty_strings() {
        let set = json!({"firstname": "Ada", "phone": null})
            .as_object()
            .cloned()
            .unwrap_or_default();
        let body = update_body(&set, &["company".to_string()]).unwrap();
        assert_eq!(
            body,
            json!({"firstname": "Ada", "phone": "", "company": ""})
        );
    }
}
