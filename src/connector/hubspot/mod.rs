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
mod export;
mod listing;
pub mod requests;

use anyhow::Result;
use async_trait::async_trait;
use serde_json::{json, Value};

use crate::connector::options::{connector_options, Described};
use crate::connector::saas;
use crate::connector::saas::HttpOptions;
use crate::connector::{
    Connector, FieldSpec, FieldType, Options, Record, Records, Role, Spec, UpsertOutcome, WriteOp,
};
use crate::connector::{Env, ProfileSink, RecordLookup, RecordSink, RecordStore};
use crate::error::{failed, usage, Failure};
use crate::http::redact::redact_body_text;
use crate::http::{status_error, Engine, Group, Policy, RateLimit, RequestSpec, Response};
use export::update_body;
use requests::{flatten, properties, Api, Nulls, MAX_BATCH, MAX_MEMBERS};

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
        account_values: false,
        store: None,
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
            from_vars: Vec::new(),
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
}
