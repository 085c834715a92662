//! The `klaviyo` connector: Klaviyo profiles and lists through the JSON:API
//! REST API, as a source, an import destination and an export destination.
//! Every fact comes from docs/connectors/klaviyo.md (the vendor's OpenAPI
//! files and guides); where that reference says "not confirmed", the
//! connector takes the safest documented behaviour:
//!
//! - **Auth and version**: `Authorization: Klaviyo-API-Key <private key>`
//!   (the `apiKey` option, a secret, redacted everywhere) and the required
//!   `revision` header (`2026-07-15`, the `revision` option overrides it) on
//!   every request; bodies and answers are `application/vnd.api+json`.
//! - **Records** are flat: `id` (Klaviyo's profile id) and the profile's
//!   attributes (`email`, `phone_number`, `external_id`, names, `location`,
//!   `properties`, ...). When written, a field that is not a Klaviyo
//!   attribute becomes a custom property, so `{"email", "plan"}` sets
//!   `properties.plan`. Computed fields (`created`, `updated`, ...) are
//!   dropped.
//! - **Identifiers**: the record id (`idField`) is the profile's `email`
//!   by default (or `phone_number` / `external_id`): import upserts by it and
//!   export looks profiles up by it. On the command line `--id` is a Klaviyo
//!   profile id, an email (it holds `@`), a `+`phone number, or
//!   `external_id:VALUE`; a key is found with
//!   `GET /api/profiles?filter=equals(FIELD,"VALUE")`.
//! - **Actions**: get is `GET /api/profiles/{id}`; insert `POST /api/profiles`
//!   (409 when the identifiers exist); upsert `POST /api/profile-import`
//!   (create or update by identifiers; export's create); patch
//!   `PATCH /api/profiles/{id}`; delete `POST /api/data-privacy-deletion-jobs`
//!   with exactly one identifier (asynchronous, answers 202; Klaviyo has no
//!   plain DELETE for profiles). Listing pages `GET /api/profiles` 100 at a
//!   time by the cursor in `links.next` (kept as the checkpoint, with
//!   `page[size]` set to the batch import asks for); an `--offset` cannot
//!   jump into a cursor. getupdates asks
//!   `filter=greater-than(updated,T)&sort=updated` and follows `links.next`;
//!   `nextSync` is `TIME|ids` so profiles updated in the same instant are
//!   neither skipped nor repeated. Deleted profiles do not appear there.
//! - **Clearing**: a null attribute clears it (documented); a custom
//!   property is removed with `meta.patch_properties.unset` (documented;
//!   whether a null property would remove it is not, so ferry never relies
//!   on it); a null `properties` on a patch would clear them all and is
//!   refused. Inserts and bulk imports leave nulls out: the bulk import job
//!   cannot clear a field (Klaviyo's bulk import guide says so).
//! - **Batch upsert** (import) is the bulk profile import job (see [`bulk`]):
//!   up to 10,000 profiles and 5 MB a job, 100 KB a profile, polled to
//!   completion, refused profiles read from the job's import errors. A
//!   batch of one is a single `POST /api/profile-import` instead (no job to
//!   create and poll); a refusal there (see Errors) rejects the record.
//! - **Groups are lists**: found with `GET /api/lists?filter=equals(name,...)`
//!   (the first exact match over every page, 10 lists a page: names are
//!   not documented as unique), else
//!   created with `POST /api/lists`; members added with `POST` and removed
//!   with `DELETE /api/lists/{id}/relationships/profiles`, 1,000 profile ids
//!   a call. Adding to a list does not subscribe a profile to marketing.
//! - **Rate limits** are per account and per endpoint, a burst per second
//!   and a steady rate per minute (`x-klaviyo-ratelimit` in each OpenAPI
//!   file). Each endpoint is its own group with at most `burst` requests at
//!   once and `(steady − burst) / 60` requests a second, so no minute ever
//!   exceeds `steady`. A 429 waits for `Retry-After` (integer seconds, as
//!   Klaviyo's own Python SDK reads it; the guide says the `RateLimit-*`
//!   headers are absent on a 429), else backs off exponentially. List creation is also capped at 150
//!   a day, which ferry cannot pace; the error then names it.
//! - **Errors** show the JSON:API `errors[].detail`; in export, a 409 or
//!   422 is the profile's fault (rejected), and so is a 400 that is a
//!   JSON:API errors document without an authentication code (Klaviyo's
//!   guide says a 400 can also mean an invalid or missing API key);
//!   anything else is an error.
//! - **Not confirmed by the vendor**, decided here: whether a PATCH's
//!   `properties` merge into the profile's (ferry sends only changed keys,
//!   as integrations do); the shape of an import
//!   error's `original_payload` (see [`bulk`]); whether list names are
//!   unique. **Not supported**: consent and subscriptions, suppression,
//!   segments and events (other APIs, outside profile export), and deletes
//!   in getupdates (the API does not list deleted profiles).

mod bulk;
mod errors;
mod export;
mod listing;
mod policy;
pub mod requests;

use std::collections::HashSet;
use std::sync::Mutex;

use anyhow::Result;
use async_trait::async_trait;
use serde_json::{json, Value};

use crate::connector::options::{connector_options, Described, Num};
use crate::connector::saas::paging::Seen;
use crate::connector::saas::HttpOptions;
use crate::connector::saas::{self, batch};
use crate::connector::{
    Connector, FieldSpec, FieldType, Options, Record, Records, Role, Spec, UpsertOutcome, WriteOp,
};
use crate::connector::{Env, RecordLookup, RecordSink, RecordStore};
use crate::error::{failed, usage};
use crate::http::{segment, Engine, RequestSpec};
use errors::{send_profile, vendor_error};
use policy::policy;
use requests::{flatten, profile_body, shape, Api, Ident, ATTRIBUTES, KEYS, MAX_MEMBERS, REVISION};

/// Klaviyo's production API.
pub const DEFAULT_BASE_URL: &str = "https://a.klaviyo.com";

connector_options! {
    /// The options of a `klaviyo` account.
    pub struct KlaviyoOptions {
        /// A private API key (Klaviyo: Settings > API keys), sent as "Authorization: Klaviyo-API-Key KEY"; needs the scopes profiles:read/write, lists:read/write and data-privacy:write for deletes
        #[option(label = "Private API key", placeholder = "${KLAVIYO_API_KEY}", required, secret)]
        pub api_key: String,
        /// The engine's options.
        #[option(flatten)]
        #[serde(flatten)]
        pub http: HttpOptions,
        /// The revision header sent with every request (default 2026-07-15, the revision ferry is written against)
        #[option(label = "API revision", placeholder = REVISION, default = REVISION)]
        pub revision: String,
        /// The identifier a record is keyed by for import and export: email (the default), phone_number or external_id
        #[option(label = "Key", placeholder = "email", default = "email")]
        pub id_field: String,
        /// Milliseconds to wait before the first poll of a bulk import job; each later wait doubles, up to ten seconds (default 1000)
        #[option(label = "Bulk poll interval", kind = FieldType::Integer, default = 1000)]
        pub poll_interval_ms: Num,
        /// How many times a bulk import job is polled before its batch fails as unfinished (default 60)
        #[option(label = "Bulk polls", kind = FieldType::Integer, default = 60)]
        pub max_polls: Num,
    }
}

/// The config [`open`] reads, for the registry.
pub type Config = KlaviyoOptions;

pub fn spec() -> Spec {
    let options = crate::connector::saas::vendor_base_url(
        KlaviyoOptions::option_specs(),
        DEFAULT_BASE_URL,
        "Klaviyo's API, https://a.klaviyo.com (the default), or a test server",
    );
    Spec {
        code: "klaviyo",
        label: "Klaviyo profiles and lists",
        description: "Klaviyo profiles through the JSON:API REST API (private API key, revision 2026-07-15). Source: get, every profile page by page with the links.next cursor, getupdates by updated time. Destination: insert, patch (null clears an attribute, a null custom property is unset), delete (data-privacy deletion job), batch upsert through the bulk profile import job (10,000 a job, polled, one outcome per profile). Export: upsert by email (idField), update with clears, delete, groups as lists (found by name or created, members added and removed 1,000 a call). Per-endpoint burst and steady rate limits; 429 waits for Retry-After.",
        roles: vec![Role::Source, Role::Destination],
        options,
        fields: vec![
            FieldSpec::new("id", FieldType::String, "Klaviyo's profile id (read only; 01GDDKASAP8TKDDA2GRZDSVP4H)"),
            FieldSpec::new("email", FieldType::String, "Email address; the default key (idField)"),
            FieldSpec::new("phone_number", FieldType::String, "Phone number in E.164 format (+15005550006)"),
            FieldSpec::new("external_id", FieldType::String, "The profile's id in your systems"),
            FieldSpec::new("first_name", FieldType::String, "First name"),
            FieldSpec::new("last_name", FieldType::String, "Last name"),
            FieldSpec::new("organization", FieldType::String, "Company or organization"),
            FieldSpec::new("title", FieldType::String, "Job title"),
            FieldSpec::new("image", FieldType::String, "URL of a profile image"),
            FieldSpec::new("locale", FieldType::String, "IETF BCP 47 locale (en-US)"),
            FieldSpec::new("location", FieldType::Object, "{\"address1\", \"address2\", \"city\", \"country\", \"region\", \"zip\", \"timezone\", \"ip\", \"latitude\", \"longitude\"}"),
            FieldSpec::new("properties", FieldType::Object, "Custom properties; any other field written becomes one too"),
            FieldSpec::new("created", FieldType::Datetime, "When the profile was created (read only)"),
            FieldSpec::new("updated", FieldType::Datetime, "When the profile last changed (read only)"),
        ],
        extra_fields: true,
        capabilities: Klaviyo::CAPABILITIES,
        max_batch_size: requests::MAX_BULK,
        parallelism: 4,
        account_values: false,
        store: None,
    }
}

pub fn open(env: &Env, options: Options) -> Result<Box<dyn Connector>> {
    let config: KlaviyoOptions = options.parse()?;
    let base_url = crate::connector::saas::base_url(
        &config.http,
        DEFAULT_BASE_URL,
        &format!("use {DEFAULT_BASE_URL}, or a test server's URL"),
    )?;
    let key = config.id_field;
    if !KEYS.contains(&key.as_str()) {
        return Err(usage(format!(
            "{}: idField \"{key}\" is not an identifier Klaviyo looks profiles up by",
            options.source()
        ))
        .hint(format!("use one of {}", KEYS.join(", ")))
        .into());
    }
    let api = Api {
        base_url,
        api_key: config.api_key,
        revision: config.revision,
    };
    let polling =
        crate::connector::options::polling(&options, &config.poll_interval_ms, &config.max_polls)?;
    let policy = policy(&options, &config.http)?;
    let engine = env.http.engine(policy)?.with_errors(vendor_error);
    Ok(Box::new(Klaviyo {
        spec: spec(),
        api,
        engine,
        polling,
        key,
        cursors: Mutex::new(Seen::new()),
        previewed_lists: Mutex::new(HashSet::new()),
    }))
}

pub struct Klaviyo {
    spec: Spec,
    api: Api,
    engine: Engine,
    polling: bulk::Polling,
    /// The identifier records are keyed by (`idField`).
    key: String,
    /// The cursors `read_page` handed out this run, with the offset each
    /// led to: one handed out again elsewhere means the listing went round
    /// in a circle.
    cursors: Mutex<Seen>,
    /// The lists whose lookup a preview has shown already.
    previewed_lists: Mutex<HashSet<String>>,
}
impl Klaviyo {
    /// The Klaviyo id of the profile whose `field` equals `value`, if any.
    async fn find(&self, field: &str, value: &str) -> Result<Option<String>> {
        let req = self.api.find_profile(field, value)?;
        let body = self.engine.send(&req).await?.json(&req)?;
        Ok(body
            .pointer("/data/0/id")
            .and_then(Value::as_str)
            .map(str::to_string))
    }

    /// The Klaviyo id `who` names; a key nobody holds is not found.
    async fn resolve(&self, who: &Ident) -> Result<String> {
        match who {
            Ident::Id(id) => Ok(id.clone()),
            Ident::Key { field, value } => self.find(field, value).await?.ok_or_else(|| {
                crate::error::not_found(format!("no Klaviyo profile has {field} \"{value}\""))
                    .into()
            }),
        }
    }

    /// The PATCH that sets `set` and clears `clear` on profile `id`.
    fn update_request(&self, id: &str, set: &Record, clear: &[String]) -> Result<RequestSpec> {
        let mut shaped = shape(set, true).map_err(|u| usage(u.0))?;
        for name in clear {
            if ATTRIBUTES.contains(&name.as_str()) {
                shaped.attributes.insert(name.clone(), Value::Null);
            } else if name != "properties" && !requests::READ_ONLY.contains(&name.as_str()) {
                shaped.unset.push(name.clone());
            }
        }
        Ok(self.api.update_profile(id, profile_body(Some(id), &shaped)))
    }

    /// What each write sends, built without I/O. A profile named by a key
    /// is first looked up; previews show that lookup and a placeholder id.
    fn write_requests(&self, op: &WriteOp) -> Result<Vec<RequestSpec>> {
        Ok(match op {
            WriteOp::Insert(r) => {
                let shaped = shape(r, false).map_err(|u| usage(u.0))?;
                vec![self.api.create_profile(profile_body(None, &shaped))]
            }
            WriteOp::Patch { id, value } => {
                let who = Ident::parse(id)?;
                let mut reqs = self.lookup_requests(&who)?;
                let shaped = shape(value, true).map_err(|u| usage(u.0))?;
                let id = who.placeholder();
                let mut req = self
                    .api
                    .update_profile(&id, profile_body(Some(&id), &shaped));
                // A placeholder ("{id of email ...}") reads better unescaped;
                // a real id is shown as it is sent.
                if matches!(who, Ident::Key { .. }) {
                    req.url = req.url.replace(&segment(&id), &id);
                }
                reqs.push(req);
                reqs
            }
            WriteOp::Delete { id } => {
                let who = Ident::parse(id)?;
                match &who {
                    Ident::Key { field, .. } if field == "external_id" => {
                        let mut reqs = self.lookup_requests(&who)?;
                        reqs.push(self.api.delete_profile(&Ident::Id(who.placeholder())));
                        reqs
                    }
                    _ => vec![self.api.delete_profile(&who)],
                }
            }
            WriteOp::UpsertBatch(records) if records.len() == 1 => {
                match records.first().map(|r| bulk::prepare(r, &self.key)) {
                    Some(bulk::Prepared::Send { data, .. }) => {
                        vec![self.api.upsert_profile(json!({ "data": data }))]
                    }
                    _ => Vec::new(),
                }
            }
            WriteOp::UpsertBatch(records) => bulk::requests(&self.api, records, &self.key),
            WriteOp::UpdateProfile { id, set, clear } => vec![self.update_request(id, set, clear)?],
            WriteOp::AddMembers { group, ids } | WriteOp::RemoveMembers { group, ids } => {
                let method = if matches!(op, WriteOp::AddMembers { .. }) {
                    "POST"
                } else {
                    "DELETE"
                };
                // Export looks each list up once a run; so does its preview.
                let first = self
                    .previewed_lists
                    .lock()
                    .map(|mut seen| seen.insert(group.clone()))
                    .unwrap_or(true);
                let mut reqs = if first {
                    vec![self.api.find_list(group)?]
                } else {
                    Vec::new()
                };
                let list = format!("{{id of list {group}}}");
                for chunk in ids.chunks(MAX_MEMBERS) {
                    let mut req = self.api.members(method, &list, chunk);
                    // The placeholder reads better unescaped, as in patch.
                    req.url = req.url.replace(&segment(&list), &list);
                    reqs.push(req);
                }
                reqs
            }
        })
    }

    fn lookup_requests(&self, who: &Ident) -> Result<Vec<RequestSpec>> {
        Ok(match who {
            Ident::Id(_) => Vec::new(),
            Ident::Key { field, value } => vec![self.api.find_profile(field, value)?],
        })
    }
}

crate::capabilities!(Klaviyo: Records, Updates, Source, Sink, Profiles, Groups);

#[async_trait]
impl Connector for Klaviyo {
    fn spec(&self) -> &Spec {
        &self.spec
    }

    fn id_field(&self) -> &str {
        &self.key
    }

    async fn check(&self) -> Result<Value> {
        let req = self.api.list_profiles(&[("page[size]", "1".into())]);
        let resp = self.engine.send(&req).await?;
        let body = resp.json(&req)?;
        let some = body
            .get("data")
            .and_then(Value::as_array)
            .is_some_and(|d| !d.is_empty());
        Ok(
            json!({ "ok": true, "status": resp.status, "url": req.shown_url(),
            "revision": self.api.revision, "profiles": if some { "some" } else { "none" } }),
        )
    }
}

#[async_trait]
impl RecordLookup for Klaviyo {
    async fn get(&self, id: &str) -> Result<Record> {
        let who = Ident::parse(id)?;
        let id = self.resolve(&who).await?;
        let req = self.api.get_profile(&id);
        let body = self.engine.send(&req).await?.json(&req)?;
        body.get("data")
            .and_then(flatten)
            .ok_or_else(|| failed(format!("GET {} answered no profile", req.shown_url())).into())
    }
}

#[async_trait]
impl RecordStore for Klaviyo {
    async fn insert(&self, value: Record) -> Result<Record> {
        let shaped = shape(&value, false).map_err(|u| usage(u.0))?;
        let req = self.api.create_profile(profile_body(None, &shaped));
        let body = self.engine.send(&req).await?.json(&req)?;
        body.get("data")
            .and_then(flatten)
            .ok_or_else(|| failed(format!("POST {} answered no profile", req.shown_url())).into())
    }

    async fn patch(&self, id: &str, value: Record) -> Result<Record> {
        let who = Ident::parse(id)?;
        let shaped = shape(&value, true).map_err(|u| usage(u.0))?;
        let id = self.resolve(&who).await?;
        let req = self
            .api
            .update_profile(&id, profile_body(Some(&id), &shaped));
        let body = self.engine.send(&req).await?.json(&req)?;
        Ok(body.get("data").and_then(flatten).unwrap_or(value))
    }

    async fn delete(&self, id: &str) -> Result<()> {
        let who = match Ident::parse(id)? {
            // The deletion job takes an email, a phone number or an id.
            Ident::Key { field, value } if field == "external_id" => {
                Ident::Id(self.resolve(&Ident::Key { field, value }).await?)
            }
            who => who,
        };
        self.engine.send(&self.api.delete_profile(&who)).await?;
        Ok(())
    }

    fn preview(&self, op: &WriteOp) -> Result<Vec<Value>> {
        RecordSink::preview(self, op)
    }
}

#[async_trait]
impl RecordSink for Klaviyo {
    fn preview(&self, op: &WriteOp) -> Result<Vec<Value>> {
        let mut shown = saas::previews(&self.write_requests(op)?);
        // What a batch upsert would refuse before sending.
        if let WriteOp::UpsertBatch(records) = op {
            shown.extend(
                bulk::prepare_all(records, &self.key)
                    .0
                    .refused_rows(&self.key),
            );
        }
        Ok(shown)
    }

    /// `POST /api/profile-import`; a refusal of the profile rejects the record.
    async fn upsert(&self, record: Record) -> Result<UpsertOutcome> {
        let (key, data) = match bulk::prepare(&record, &self.key) {
            bulk::Prepared::Refuse { key, reason } => {
                return Ok(UpsertOutcome::Rejected { id: key, reason })
            }
            bulk::Prepared::Send { key, data } => (key, data),
        };
        let req = self.api.upsert_profile(json!({ "data": data }));
        let written = send_profile(&self.engine, &req).await.map(|_| key.clone());
        batch::one(key, written)
    }

    /// A batch of one is a single upsert (no job to create and poll);
    /// larger batches go through the bulk profile import job.
    async fn upsert_batch(&self, records: Records) -> Result<Vec<UpsertOutcome>> {
        if let [record] = records.as_slice() {
            return Ok(vec![self.upsert(record.clone()).await?]);
        }
        bulk::upsert(&self.engine, &self.api, self.polling, &self.key, &records).await
    }
}
