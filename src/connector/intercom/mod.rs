//! The `intercom` connector: Intercom contacts through the Contacts API, as
//! a source, an import destination and an export destination whose groups
//! are tags. Every fact comes from docs/connectors/intercom.md (sources
//! there); where the vendor leaves a point open, the choice is written here:
//!
//! - **Auth and version**: `Authorization: Bearer <accessToken>` and
//!   `Intercom-Version` (default 2.14, `intercomVersion` to change it) on
//!   every request. The token is a secret: redacted everywhere.
//! - **Regions**: `baseUrl` is `https://api.intercom.io` (US, the default),
//!   `https://api.eu.intercom.io` or `https://api.au.intercom.io`.
//! - **Reads**: get is `GET /contacts/{id}`; `email:ADDRESS` and
//!   `external_id:ID` find a contact by key (`POST /contacts/search` and
//!   `GET /contacts/find_by_external_id/{id}`). `read_page` lists
//!   `GET /contacts` with the `starting_after` cursor (150 a page, the
//!   documented maximum) until `pages.next` is gone; a repeated cursor or an
//!   empty page that is not the end is an error, never a loop. The cursor
//!   cannot be jumped into, so `--offset` needs a checkpoint.
//! - **getupdates** searches `updated_at`, sorted ascending, with the
//!   cursor in the body. The search compares dates by day ("> T" is "from
//!   the day after T's day"), so ferry asks from the day before and filters
//!   by the exact second itself; `nextSync` is `SECONDS|ids` so contacts
//!   sharing a second are neither skipped nor repeated. A cursor that comes
//!   back within one call is an error, never a loop. Deleted contacts do
//!   not appear in the search, so no deletes are reported, and the search
//!   index lags creations by "a few minutes".
//! - **Writes**: insert is `POST /contacts` (role from `role`, default
//!   `user`), patch is `PUT /contacts/{id}` (fields not sent are unchanged),
//!   delete is `DELETE /contacts/{id}`. Standard fields go at the top of the
//!   body; any other field is a custom attribute under `custom_attributes`
//!   (the workspace must define it; Intercom refuses unknown ones).
//!   Timestamps are Unix seconds. Read-only fields (`id`, `created_at`, …)
//!   are left out. An avatar as Intercom reads it (`{"image_url"}`) is
//!   written as its URL, the string create and update take.
//! - **Upserts** (import and export creates): `POST /contacts`; a 409
//!   "already exists with id=X" [CREATE21, Intercom-OpenAPI #543] updates X
//!   with `PUT` instead; a 409 naming an archived contact is rejected rather
//!   than written. There is no bulk write in the numbered API versions, so
//!   a batch (50 records, ferry's choice) becomes parallel single calls, ten
//!   in flight. A 400, 409 or 422 answer rejects that record with Intercom's
//!   message; any other failure fails the batch.
//! - **Export**: profiles are keyed by `keyField` (`email`, the default, or
//!   `external_id`, which then defaults to the profile id). A clear sends
//!   `null` for the standard fields the update model types "or null" and
//!   `custom_attributes: {"NAME": null}` for a custom attribute (the model
//!   allows null; that it empties the attribute is not confirmed by the
//!   vendor). `role`, `email` and `external_id` cannot be null there, so
//!   their clears are not sent: the dry run lists them and the run warns
//!   about each one, since the profile still counts as updated. A delete of
//!   a contact already gone (404) is done.
//! - **Groups are tags**: `ensure_group` is `POST /tags {"name"}`, which
//!   creates the tag or answers the existing one (names are
//!   case-insensitive), so it takes one call and no lookup. Membership is
//!   `POST /contacts/{id}/tags {"id"}` and `DELETE
//!   /contacts/{id}/tags/{tag_id}` (a 404 on removal counts as removed),
//!   one contact per call. A group that is only left is ensured the same
//!   way, so a tag that no longer existed comes back, empty.
//! - **Not supported**: companies, notes, events, archiving, and the
//!   Preview-only bulk update (`PUT /contacts/bulk`).
//! - **Rate limits**: 10,000 calls a minute per private app and 25,000 per
//!   workspace, spread over 10-second windows (1,666 per window). The
//!   default, 160 requests/s with a burst of 60 and 10 in flight, lets at
//!   most 1,660 through in any 10 seconds, under the app limit;
//!   lower `rateLimit` when other apps share the workspace. A 429 waits
//!   until `X-RateLimit-Reset` (a Unix time; no `Retry-After` is sent).
//! - **Errors** show Intercom's `errors[].message` with its `code`.

mod export;
mod listing;
pub mod requests;

use anyhow::Result;
use async_trait::async_trait;
use futures::stream::StreamExt;
use serde_json::{json, Value};

use crate::connector::options::{connector_options, Described};
use crate::connector::saas::HttpOptions;
use crate::connector::saas::{batch, error_fields};
use crate::connector::{
    record_id, Connector, FieldSpec, FieldType, Options, Record, Records, Rejection, Role, Spec,
    UpsertOutcome, WriteOp,
};
use crate::connector::{Env, RecordLookup, RecordSink, RecordStore};
use crate::error::{failed, not_found, usage, Failure};
use crate::http::message::vendor_message;
use crate::http::redact::redact_body_text;
use crate::http::{status_error, Engine, Policy, RateLimit, RequestSpec, Response};
use listing::listed;
use requests::{
    conflict_id, contact_body, find_query, update_with_clears, Api, Mode, Unfit, DEFAULT_VERSION,
};

/// The US region, Intercom's default host.
pub const DEFAULT_BASE_URL: &str = "https://api.intercom.io";
/// Records per import batch: Intercom has no bulk write, so this only sets
/// how many single calls one batch makes.
pub const BATCH: usize = 50;
/// Single calls in flight at once within a batch and for export's batch calls.
pub const PARALLEL: usize = 10;
/// Requests a second, steady: 9,600 a minute, under the 10,000 of a private app.
const RPS: f64 = 160.0;
/// Requests that may start at once. Intercom counts its limit per 10-second
/// window (10,000 a minute is 1,666 per window, [RL]), and a bucket lets
/// `BURST + 10 × RPS` through in any 10 seconds: 60 + 1,600 stays under.
const BURST: u32 = 60;

connector_options! {
    /// The options of an `intercom` account.
    pub struct IntercomOptions {
        /// The app's access token, sent as Authorization: Bearer (Developer Hub: your app > Configure > Authentication)
        #[option(label = "Access token", placeholder = "${INTERCOM_ACCESS_TOKEN}", required, secret)]
        pub access_token: String,
        /// The engine's options; baseUrl picks the region.
        #[option(flatten)]
        #[serde(flatten)]
        pub http: HttpOptions,
        /// Sent as the Intercom-Version header (2.13 or later: finding by external_id needs it)
        #[option(label = "API version", placeholder = DEFAULT_VERSION, default = DEFAULT_VERSION)]
        pub intercom_version: String,
        /// The role of the contacts ferry creates, finds and updates: user (the default) or lead
        #[option(label = "Contact role", placeholder = "user", default = "user")]
        pub role: String,
        /// The field import upserts and export profiles are matched by: email (the default) or external_id (then a profile without one uses its profile id)
        #[option(label = "Key field", placeholder = "email", default = "email")]
        pub key_field: String,
    }
}

/// The config [`open`] reads, for the registry.
pub type Config = IntercomOptions;

pub fn spec() -> Spec {
    let options = crate::connector::saas::vendor_base_url(
        IntercomOptions::option_specs(),
        DEFAULT_BASE_URL,
        "The workspace's region: https://api.intercom.io (US, the default), https://api.eu.intercom.io (Europe) or https://api.au.intercom.io (Australia). Or a test server.",
    );
    Spec {
        code: "intercom",
        label: "Intercom contacts",
        description: "Intercom contacts through the Contacts API (Bearer token, Intercom-Version). Source: get by id (or email:ADDRESS, external_id:ID), every contact page by page with the starting_after cursor, getupdates by updated_at. Destination: insert, patch, delete, and batch upsert as parallel single calls (no bulk API; a 409 conflict updates the existing contact). Export: profiles by email or external_id, clears as nulls, groups as tags (created once, contacts tagged and untagged). Rate limit: 10,000 calls a minute per app, spread over 10-second windows; a 429 waits for X-RateLimit-Reset.",
        roles: vec![Role::Source, Role::Destination],
        options,
        fields: vec![
            FieldSpec::new("id", FieldType::String, "Intercom's id of the contact (read-only; get, patch and delete take it)"),
            FieldSpec::new("role", FieldType::String, "user or lead (default: the role option)"),
            FieldSpec::new("external_id", FieldType::String, "Your id of the contact; a user needs it or an email"),
            FieldSpec::new("email", FieldType::String, "Email address"),
            FieldSpec::new("phone", FieldType::String, "Phone number, free form (\"+353871234567\")"),
            FieldSpec::new("name", FieldType::String, "Full name"),
            FieldSpec::new("avatar", FieldType::Any, "URL of an avatar image; a contact read from Intercom holds {\"type\": \"avatar\", \"image_url\"}, which is written as its image_url"),
            FieldSpec::new("signed_up_at", FieldType::Integer, "Sign-up time, Unix seconds"),
            FieldSpec::new("last_seen_at", FieldType::Integer, "Last seen time, Unix seconds"),
            FieldSpec::new("owner_id", FieldType::Integer, "The id of the admin who owns the contact"),
            FieldSpec::new("unsubscribed_from_emails", FieldType::Boolean, "Whether the contact is unsubscribed from emails"),
            FieldSpec::new("custom_attributes", FieldType::Object, "Custom data attributes (strings, numbers, booleans); any other field of a record goes here too"),
        ],
        extra_fields: true,
        capabilities: Intercom::CAPABILITIES,
        max_batch_size: BATCH,
        parallelism: PARALLEL,
        account_values: false,
        store: None,
    }
}

/// The rate limits in the module comment.
fn policy(options: &Options, http: &HttpOptions) -> Result<Policy> {
    let mut policy = Policy {
        source: options.source().to_string(),
        reset_header: Some("x-ratelimit-reset".into()),
        default: RateLimit {
            rps: RPS,
            burst: BURST,
            max_in_flight: PARALLEL,
        },
        ..Policy::default()
    };
    http.apply_to(&mut policy)?;
    Ok(policy)
}

pub fn open(env: &Env, options: Options) -> Result<Box<dyn Connector>> {
    let config: IntercomOptions = options.parse()?;
    let base_url = crate::connector::saas::base_url(
        &config.http,
        DEFAULT_BASE_URL,
        &format!(
            "use {DEFAULT_BASE_URL}, https://api.eu.intercom.io or https://api.au.intercom.io"
        ),
    )?;
    let role = config.role;
    if role != "user" && role != "lead" {
        return Err(usage(format!(
            "option \"role\" in {} must be user or lead, got \"{role}\"",
            options.source()
        ))
        .into());
    }
    let key_field = config.key_field;
    if key_field != "email" && key_field != "external_id" {
        return Err(usage(format!(
            "option \"keyField\" in {} must be email or external_id, got \"{key_field}\"",
            options.source()
        ))
        .hint("set \"keyField\": \"email\" (the default) or \"external_id\" in account.json")
        .into());
    }
    let api = Api {
        base_url,
        token: config.access_token,
        version: config.intercom_version,
    };
    let policy = policy(&options, &config.http)?;
    let engine = env.http.engine(policy)?.with_errors(vendor_error);
    Ok(Box::new(Intercom {
        spec: spec(),
        api,
        engine,
        out: env.out().clone(),
        role,
        key_field,
    }))
}

pub struct Intercom {
    spec: Spec,
    api: Api,
    engine: Engine,
    /// For the warnings about exported fields Intercom cannot write or clear.
    out: crate::output::Output,
    role: String,
    key_field: String,
}

/// The error for a final error status: method, URL, status, Intercom's
/// `errors[].message` with their `code`s, and a hint for the credentials.
fn vendor_error(req: &RequestSpec, resp: &Response) -> Failure {
    let mut f = status_error(req, resp);
    if let Ok(v) = serde_json::from_str::<Value>(&resp.body) {
        let codes = error_fields(&v, "code");
        if !codes.is_empty() {
            f.message
                .push_str(&format!(" ({})", redact_body_text(&codes.join(", "))));
        }
    }
    if matches!(resp.status, 401 | 403) {
        f = f.hint("check accessToken in account.json (and the .env variable it names); a workspace outside the US needs its region in baseUrl, e.g. https://api.eu.intercom.io");
    }
    f
}

/// A 400, 409 or 422 answer to a write is about the record (a field the
/// workspace does not define, a bad value, a duplicate): a [`Rejection`].
fn write_error(req: &RequestSpec, resp: &Response) -> anyhow::Error {
    let f = vendor_error(req, resp);
    if matches!(resp.status, 400 | 409 | 422) {
        return Rejection(f.message).into();
    }
    f.into()
}

/// The `id` of an object answer (a contact, a tag); numbers are accepted.
fn id_of(req: &RequestSpec, body: &Value, what: &str) -> Result<String> {
    match body.get("id") {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(Value::Number(n)) => Ok(n.to_string()),
        _ => Err(failed(format!(
            "{} {} answered no {what} id",
            req.method,
            req.shown_url()
        ))
        .into()),
    }
}

fn object(req: &RequestSpec, body: Value, what: &str) -> Result<Record> {
    match body {
        Value::Object(m) => Ok(m),
        _ => Err(failed(format!(
            "{} {} answered no {what} object",
            req.method,
            req.shown_url()
        ))
        .into()),
    }
}

impl Intercom {
    /// The id of the contact whose `field` is `value`, if there is one.
    async fn find(&self, field: &str, value: &str) -> Result<Option<String>> {
        if field == "external_id" && self.role == "user" {
            let req = self.api.find_by_external_id(value);
            let Some(resp) = self.engine.send_found(&req).await? else {
                return Ok(None);
            };
            return id_of(&req, &resp.json(&req)?, "contact").map(Some);
        }
        Ok(self
            .search_one(field, value)
            .await?
            .and_then(|c| record_id(&c, "id")))
    }

    /// The first contact of this role whose `field` is `value`.
    async fn search_one(&self, field: &str, value: &str) -> Result<Option<Record>> {
        let req = self
            .api
            .search(find_query(field, value, &self.role), 1, None, None);
        let resp = self.engine.send(&req).await?;
        Ok(listed(&req, &resp.json(&req)?)?.records.into_iter().next())
    }

    /// `PUT /contacts/{id}`; answers the contact's id.
    async fn put(&self, id: &str, body: Value) -> Result<String> {
        let req = self.api.update(id, body);
        let resp = self.engine.execute(&req).await?;
        if !resp.is_success() {
            return Err(write_error(&req, &resp));
        }
        id_of(&req, &resp.json(&req)?, "contact").or_else(|_| Ok(id.to_string()))
    }

    /// Create the contact from `record`, or update the one Intercom says
    /// already has its key (409); answers its id. The update leaves out the
    /// role the create filled in, so an upsert never turns a lead into a
    /// user unless the record asks for it.
    async fn upsert_contact(&self, record: &Record, key: Option<&str>) -> Result<String> {
        let mut body =
            contact_body(record, Mode::Create { role: &self.role }).map_err(|e| Rejection(e.0))?;
        let req = self.api.create(body.clone());
        let resp = self.engine.execute(&req).await?;
        if resp.is_success() {
            return id_of(&req, &resp.json(&req)?, "contact");
        }
        if resp.status != 409 {
            return Err(write_error(&req, &resp));
        }
        let message = vendor_message(&resp.body).unwrap_or_default();
        let existing = match conflict_id(&message) {
            Some(Ok(id)) => Some(id),
            Some(Err(_)) => return Err(write_error(&req, &resp)),
            None => match key {
                Some(k) => self.find(&self.key_field, k).await?,
                None => None,
            },
        };
        if !record.contains_key("role") {
            if let Some(m) = body.as_object_mut() {
                m.remove("role");
            }
        }
        match existing {
            Some(id) => self.put(&id, body).await,
            None => Err(write_error(&req, &resp)),
        }
    }

    fn key_of(&self, record: &Record) -> Option<String> {
        record_id(record, &self.key_field)
    }

    /// The requests `op` sends, or rows saying why a record would be refused.
    fn write_requests(&self, op: &WriteOp) -> Result<Vec<Value>> {
        let unfit = |e: Unfit| usage(e.0);
        let create = Mode::Create { role: &self.role };
        let shown = |r: RequestSpec| r.preview();
        Ok(match op {
            WriteOp::Insert(r) => vec![shown(
                self.api.create(contact_body(r, create).map_err(unfit)?),
            )],
            WriteOp::Patch { id, value } => vec![shown(
                self.api
                    .update(id, contact_body(value, Mode::Update).map_err(unfit)?),
            )],
            WriteOp::Delete { id } => vec![shown(self.api.delete(id))],
            WriteOp::UpsertBatch(records) => records
                .iter()
                .map(|r| {
                    let key = self.key_of(r);
                    let refused = |reason: String| {
                        json!({ "refused": { self.key_field.as_str(): key, "reason": reason } })
                    };
                    if key.is_none() {
                        return refused(format!("missing {}", self.key_field));
                    }
                    match contact_body(r, create) {
                        Ok(body) => shown(self.api.create(body)),
                        Err(e) => refused(e.0),
                    }
                })
                .collect(),
            WriteOp::UpdateProfile { id, set, clear } => {
                let (body, not_cleared) = update_with_clears(set, clear).map_err(unfit)?;
                let mut rows = vec![shown(self.api.update(id, body))];
                if !not_cleared.is_empty() {
                    rows.push(json!({ "notCleared": not_cleared, "reason": "Intercom's update takes no null for these fields" }));
                }
                rows
            }
            WriteOp::AddMembers { group, ids } | WriteOp::RemoveMembers { group, ids } => {
                // The tag's id is known only once POST /tags answers.
                let tag = format!("{{id of tag {group}}}");
                let mut rows = vec![shown(self.api.create_tag(group))];
                for id in ids {
                    let req = match op {
                        WriteOp::AddMembers { .. } => self.api.tag(id, &tag),
                        _ => self.api.untag(id, "TAG"),
                    };
                    let mut row = shown(req);
                    if let Some(url) = row["url"].as_str() {
                        row["url"] = json!(url.replacen("/tags/TAG", &format!("/tags/{tag}"), 1));
                    }
                    rows.push(row);
                }
                rows
            }
        })
    }
}

crate::capabilities!(Intercom: Records, Updates, Source, Sink, Profiles, Groups);

#[async_trait]
impl Connector for Intercom {
    fn spec(&self) -> &Spec {
        &self.spec
    }

    /// The key records are upserted by: import requires it on every record.
    /// get, patch and delete take Intercom's own id.
    fn id_field(&self) -> &str {
        &self.key_field
    }

    async fn check(&self) -> Result<Value> {
        let req = self.api.me();
        let resp = self.engine.send(&req).await?;
        let me = resp.json(&req)?;
        Ok(json!({
            "ok": true,
            "status": resp.status,
            "url": req.shown_url(),
            "app": me.pointer("/app/name").cloned().unwrap_or(Value::Null),
            "appId": me.pointer("/app/id_code").cloned().unwrap_or(Value::Null),
            "region": me.pointer("/app/region").cloned().unwrap_or(Value::Null),
        }))
    }
}

#[async_trait]
impl RecordLookup for Intercom {
    async fn get(&self, id: &str) -> Result<Record> {
        if let Some(email) = id.strip_prefix("email:") {
            return self.search_one("email", email).await?.ok_or_else(|| {
                not_found(format!("no Intercom {} with email \"{email}\"", self.role)).into()
            });
        }
        let req = match id.strip_prefix("external_id:") {
            Some(ext) if self.role == "user" => self.api.find_by_external_id(ext),
            Some(ext) => {
                return self.search_one("external_id", ext).await?.ok_or_else(|| {
                    not_found(format!("no Intercom lead with external_id \"{ext}\"")).into()
                })
            }
            None => self.api.get(id),
        };
        let resp = self.engine.send(&req).await?;
        object(&req, resp.json(&req)?, "contact")
    }
}

#[async_trait]
impl RecordStore for Intercom {
    async fn insert(&self, value: Record) -> Result<Record> {
        let body =
            contact_body(&value, Mode::Create { role: &self.role }).map_err(|e| usage(e.0))?;
        let req = self.api.create(body);
        let resp = self.engine.send(&req).await?;
        object(&req, resp.json(&req)?, "contact")
    }

    async fn patch(&self, id: &str, value: Record) -> Result<Record> {
        let body = contact_body(&value, Mode::Update).map_err(|e| usage(e.0))?;
        let req = self.api.update(id, body);
        let resp = self.engine.send(&req).await?;
        match resp.json(&req)? {
            Value::Object(m) => Ok(m),
            _ => Ok(value),
        }
    }

    async fn delete(&self, id: &str) -> Result<()> {
        self.engine.send(&self.api.delete(id)).await?;
        Ok(())
    }

    fn preview(&self, op: &WriteOp) -> Result<Vec<Value>> {
        RecordSink::preview(self, op)
    }
}

#[async_trait]
impl RecordSink for Intercom {
    fn preview(&self, op: &WriteOp) -> Result<Vec<Value>> {
        self.write_requests(op)
    }

    async fn upsert(&self, record: Record) -> Result<UpsertOutcome> {
        let Some(key) = self.key_of(&record) else {
            return Ok(UpsertOutcome::Rejected {
                id: None,
                reason: format!(
                    "missing {}, the key Intercom contacts are matched by",
                    self.key_field
                ),
            });
        };
        let written = self.upsert_contact(&record, Some(&key)).await;
        batch::one(key, written)
    }

    async fn upsert_batch(&self, records: Records) -> Result<Vec<UpsertOutcome>> {
        let outcomes: Vec<Result<UpsertOutcome>> = futures::stream::iter(records.iter().cloned())
            .map(|r| self.upsert(r))
            .buffered(PARALLEL)
            .collect()
            .await;
        outcomes.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_rate_stays_under_one_10_second_window() {
        // 10,000 calls a minute per private app, counted per 10 seconds [RL].
        let per_window = 10_000.0 / 6.0;
        assert!(f64::from(BURST) + 10.0 * RPS <= per_window);
    }
}
