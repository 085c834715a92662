//! The `zendesk` connector: the users of one Zendesk Support account
//! (API v2) as a source, an import destination and an export destination
//! whose groups are user tags. Every fact comes from
//! docs/connectors/zendesk.md (sources there); where the vendor leaves a
//! point open, the choice is written here and in that file's §13:
//!
//! - **Auth and address**: API-token auth, HTTP Basic with
//!   `{username}/token` and the token [AUTH]; the token and the Basic
//!   credentials made of it are secrets. The base URL is
//!   `https://{subdomain}.zendesk.com/api/v2` unless `baseUrl` says
//!   otherwise.
//! - **Identity**: `--id` is Zendesk's numeric user id, `external_id:ID`
//!   (found with `GET /users/search?external_id=`) or an email
//!   (`email:ADDRESS` or any value with `@`, found with
//!   `GET /users/search?query=` and filtered to the exact address, since
//!   the search syntax is not an exact match). Import and export key users
//!   by `keyField`: `external_id` (the default; unique per account) or
//!   `email`. Only active users count as found.
//! - **Reads**: get is `GET /users/{id}`; `read_page` lists `GET /users`
//!   by cursor (`page[size]` up to 100, on while `meta.has_more`, by
//!   `meta.after_cursor`). getupdates reads the incremental user export
//!   (`GET /incremental/users/cursor`, `start_time` then `cursor`, 1,000 a
//!   page) to `end_of_stream`; nextSync is `cursor:AFTER_CURSOR`, with
//!   `|ids` when `--limit` stopped inside a page. A user with `active:
//!   false` is reported as a delete.
//! - **Writes**: insert is `POST /users`; patch is `PUT /users/{id}`;
//!   delete is `DELETE /users/{id}`, a soft delete; with `permanentDelete`
//!   it is followed by `DELETE /deleted_users/{id}` (GDPR erasure, not
//!   recoverable, 700 users per 10 minutes). Standard fields go at the top
//!   of `{"user": …}`; any other field is a custom field under
//!   `user_fields` (its key, as `GET /user_fields` lists it). Fields
//!   Zendesk's OpenAPI description marks read-only are left out, and
//!   `photo`, which only an update takes, out of creates.
//! - **Import** writes batches of up to 100 through
//!   `POST /users/create_or_update_many`, a job polled at
//!   `/job_statuses/{id}` to one result per user (see [`bulk`]); a failed
//!   user is rejected with Zendesk's `error` and `details`. A batch of one
//!   is `POST /users/create_or_update` (no job). A record without its key is
//!   rejected before sending. A new user needs a `name`; ferry does not
//!   invent one (an existing user's name would be overwritten), so Zendesk
//!   refuses such a user and the refusal goes to the rejects file.
//! - **Export**: creates as the import's upserts; an update is
//!   `PUT /users/{id}`, a cleared property sent as `null` (a custom field as
//!   `user_fields: {"key": null}`), Grouparoo's model. An email sent on
//!   update adds a secondary identity; Zendesk keeps the primary (§2).
//!   Delete as above; a user already gone (404) is done.
//! - **Groups are user tags**, each group name lowercased with spaces made
//!   `_` (Zendesk splits tags at spaces): joined with `PUT /users/{id}/tags`
//!   (adds to the user's tags) and left with `DELETE /users/{id}/tags`
//!   (removes the ones listed). The export engine hands memberships apart
//!   from the profile, and whether `tags` in a user payload replaces the
//!   whole list is not confirmed, so the tag endpoints are used rather than
//!   the payload: a user's other tags are never touched. User tagging must
//!   be enabled in the account.
//! - **Limits**: the `plan` option's requests a minute [RL] (team 200,
//!   the smallest current plan and the default; growth and professional
//!   400; enterprise 700; enterprise_plus and high_volume 2500), shared
//!   between groups so that no minute exceeds it: Update User ("1 request
//!   per second per account") 60 a minute, Create or Update User (the same
//!   limit, used only for a single upsert) 30, the incremental export 10
//!   (the lower of the two documented figures), the rest of the plan's
//!   minute. `rateLimit` overrides them. A 429 waits for `Retry-After`
//!   (else `ratelimit-reset`).
//! - **Errors** show Zendesk's `error`, `description` and `details`, with a
//!   hint for 401/403 (and for the bulk import a 403 means bulk imports are
//!   not enabled in the account).

mod bulk;
mod export;
mod listing;
pub mod requests;

use std::sync::Mutex;

use anyhow::Result;
use async_trait::async_trait;
use serde_json::{json, Value};

use crate::connector::options::{connector_options, Described, Num};
use crate::connector::saas::paging::Seen;
use crate::connector::saas::{self, batch, HttpOptions};
use crate::connector::{
    record_id, Connector, FieldSpec, FieldType, Options, Record, Records, Rejection, Role, Spec,
    UpsertOutcome, WriteOp,
};
use crate::connector::{Env, RecordLookup, RecordSink, RecordStore};
use crate::error::{failed, not_found, usage, Failure};
use crate::http::message::vendor_message;
use crate::http::redact::redact_body_text;
use crate::http::{status_error, Engine, Group, Policy, RateLimit, RequestSpec, Response};
use listing::{user_record, users};
use requests::{create_body, tag_of, upsert_body, user_body, Api, Ident, BATCH, KEYS};

/// The address of an account; `{subdomain}` is its `subdomain` option.
pub const BASE_URL_TEMPLATE: &str = "https://{subdomain}.zendesk.com/api/v2";
/// Requests in flight at once.
pub const PARALLEL: usize = 4;

connector_options! {
    /// The options of a `zendesk` account.
    pub struct ZendeskOptions {
        /// The account's subdomain: acme in acme.zendesk.com
        #[option(label = "Subdomain", placeholder = "acme", required)]
        pub subdomain: String,
        /// The email address of the agent or admin the API token belongs to (admins only can read the incremental export getupdates uses)
        #[option(label = "Agent email", placeholder = "agent@example.com", required)]
        pub username: String,
        /// An API token (Admin Center > Apps and integrations > Zendesk API), sent with the email as Basic {username}/token:{token}
        #[option(label = "API token", placeholder = "${ZENDESK_TOKEN}", required, secret)]
        pub token: String,
        /// The engine's options; baseUrl defaults to the subdomain's address.
        #[option(flatten)]
        #[serde(flatten)]
        pub http: HttpOptions,
        /// The account's plan, which sets the default rate limits: team (200 requests a minute, the default), growth or professional (400), enterprise (700), enterprise_plus or high_volume (2500)
        #[option(label = "Plan", placeholder = "team", default = "team")]
        pub plan: String,
        /// The field import upserts and export profiles are matched by: external_id (the default) or email
        #[option(label = "Key field", placeholder = "external_id", default = "external_id")]
        pub key_field: String,
        /// Delete also erases the user for good (DELETE /deleted_users/{id}, for GDPR; not recoverable) after the soft delete
        #[option(label = "Delete permanently", kind = FieldType::Boolean)]
        pub permanent_delete: Option<bool>,
        /// Milliseconds to wait before the first poll of a bulk job; each later wait doubles, up to ten seconds (default 1000)
        #[option(label = "Job poll interval", kind = FieldType::Integer, default = 1000)]
        pub poll_interval_ms: Num,
        /// How many times a bulk job is polled before its batch fails as unfinished (default 60)
        #[option(label = "Job polls", kind = FieldType::Integer, default = 60)]
        pub max_polls: Num,
    }
}

/// The config [`open`] reads, for the registry.
pub type Config = ZendeskOptions;

pub fn spec() -> Spec {
    let mut options = saas::vendor_base_url(
        ZendeskOptions::option_specs(),
        BASE_URL_TEMPLATE,
        "https://{subdomain}.zendesk.com/api/v2, from the subdomain option: the default. Or a test server.",
    );
    // The default depends on the subdomain, so the option itself has none.
    for o in options.iter_mut().filter(|o| o.key == "baseUrl") {
        o.default = None;
    }
    Spec {
        code: "zendesk",
        label: "Zendesk Support users",
        description: "The users of a Zendesk Support account (API v2, Basic auth with an agent's email and API token). Source: get by id, external_id:ID or email, every user page by page by cursor (100 a page), getupdates through the incremental user export (deleted users as deletes). Destination: insert, patch, delete (soft, or permanently), and import through create_or_update_many (100 a call, a job polled to one result per user). Export: users by external_id or email, cleared properties as null, groups as user tags. Team plan's 200 requests a minute by default; a 429 waits for Retry-After.",
        roles: vec![Role::Source, Role::Destination],
        options,
        fields: vec![
            FieldSpec::new("id", FieldType::String, "Zendesk's user id (read-only); --id also takes external_id:ID or an email")
                .example(r#""35436""#),
            FieldSpec::new("name", FieldType::String, "The user's name; a new user needs one")
                .example(r#""Ada Lovelace""#),
            FieldSpec::new("email", FieldType::String, "Primary email; written on create only (on update Zendesk adds a secondary email); a key (keyField)")
                .example(r#""ada@example.com""#),
            FieldSpec::new("external_id", FieldType::String, "Your id of the user, unique in the account; the default key (keyField)")
                .example(r#""ada-1""#),
            FieldSpec::new("alias", FieldType::String, "The name shown to end users").example(r#""Ada""#),
            FieldSpec::new("phone", FieldType::String, "Phone number").example(r#""+15555550123""#),
            FieldSpec::new("role", FieldType::String, "end-user (the default for new users), agent or admin")
                .example(r#""end-user""#),
            FieldSpec::new("notes", FieldType::String, "Notes about the user").example(r#""Met at the conference""#),
            FieldSpec::new("time_zone", FieldType::String, "The user's time zone").example(r#""London""#),
            FieldSpec::new("user_fields", FieldType::Object, "Custom user fields by key ({\"plan\": \"pro\"}); any other field of a record goes here too")
                .example(r#"{"plan": "pro"}"#),
            FieldSpec::new("tags", FieldType::Array, "The user's tags (user tagging must be enabled); export's groups are tags")
                .example(r#"["vip"]"#),
            FieldSpec::new("active", FieldType::Boolean, "false once the user is deleted (read-only)")
                .example("true"),
            FieldSpec::new("updated_at", FieldType::Datetime, "When the user last changed (read-only)")
                .example(r#""2026-01-01T00:00:00Z""#),
        ],
        extra_fields: true,
        capabilities: Zendesk::CAPABILITIES,
        max_batch_size: BATCH,
        parallelism: PARALLEL,
        account_values: false,
        store: None,
    }
}

/// Support API requests a minute of each plan [RL]: Team, the smallest
/// current plan, is the default.
const PLANS: &[(&str, u32)] = &[
    ("team", 200),
    ("growth", 400),
    ("professional", 400),
    ("enterprise", 700),
    ("enterprise_plus", 2500),
    ("high_volume", 2500),
];

/// The requests a minute of `plan`, or a usage error naming the plans.
fn per_minute(plan: &str, source: &str) -> Result<u32> {
    match PLANS.iter().find(|(name, _)| *name == plan) {
        Some((_, n)) => Ok(*n),
        None => {
            let names: Vec<&str> = PLANS.iter().map(|(name, _)| *name).collect();
            Err(usage(format!(
                "option \"plan\" in {source} must be one of {}, got \"{plan}\"",
                names.join(", ")
            ))
            .hint("the plan sets the default rate limits; \"rateLimit\" overrides them")
            .into())
        }
    }
}

/// A group of `per_minute` requests at most in any minute: a burst of
/// `burst`, then the rest spread over the minute.
fn limit(per_minute: u32, burst: u32) -> RateLimit {
    RateLimit {
        rps: f64::from(per_minute - burst) / 60.0,
        burst,
        max_in_flight: (burst as usize).clamp(1, PARALLEL),
    }
}

/// The rate limits of the module comment, before the account's overrides.
/// Paths start with `**` so they match under `/api/v2` and under a test
/// server's root alike.
fn default_policy(source: &str, per_minute: u32) -> Policy {
    let group = |name: &str, methods: &[&str], path: &str, limit: RateLimit| Group {
        name: name.into(),
        methods: methods.iter().map(|m| m.to_string()).collect(),
        path: path.into(),
        limit,
    };
    Policy {
        source: source.to_string(),
        reset_header: Some("ratelimit-reset".into()),
        // What the endpoint groups below do not take of the plan's minute.
        default: limit(per_minute - 100, 5),
        groups: vec![
            group("updateUser", &["PUT"], "**/users/*", limit(60, 1)),
            group(
                "createOrUpdateUser",
                &["POST"],
                "**/users/create_or_update",
                limit(30, 1),
            ),
            group(
                "incrementalExport",
                &["GET"],
                "**/incremental/**",
                limit(10, 1),
            ),
        ],
        ..Policy::default()
    }
}

fn policy(options: &Options, http: &HttpOptions, plan: &str) -> Result<Policy> {
    let mut policy = default_policy(options.source(), per_minute(plan, options.source())?);
    http.apply_to(&mut policy)?;
    Ok(policy)
}

/// The subdomain an option names: `acme`, also when given as
/// `acme.zendesk.com` or its `https://` address, which users paste.
fn subdomain_of(option: &str) -> &str {
    let s = option.trim().trim_end_matches('/');
    let s = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or(s);
    s.strip_suffix(".zendesk.com").unwrap_or(s)
}

pub fn open(env: &Env, options: Options) -> Result<Box<dyn Connector>> {
    let config: ZendeskOptions = options.parse()?;
    let subdomain = subdomain_of(&config.subdomain);
    let valid = !subdomain.is_empty()
        && subdomain
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    if !valid && config.http.base_url.is_none() {
        return Err(usage(format!(
            "option \"subdomain\" in {} must be the account's subdomain (acme in acme.zendesk.com), got \"{}\"",
            options.source(),
            config.subdomain
        ))
        .into());
    }
    let base_url = saas::base_url(
        &config.http,
        &format!("https://{subdomain}.zendesk.com/api/v2"),
        "use https://{subdomain}.zendesk.com/api/v2, or a test server's URL",
    )?;
    let key_field = config.key_field;
    if !KEYS.contains(&key_field.as_str()) {
        return Err(usage(format!(
            "option \"keyField\" in {} must be external_id or email, got \"{key_field}\"",
            options.source()
        ))
        .hint("set \"keyField\": \"external_id\" (the default) or \"email\" in account.json")
        .into());
    }
    let polling =
        crate::connector::options::polling(&options, &config.poll_interval_ms, &config.max_polls)?;
    let api = Api {
        base_url,
        username: config.username,
        token: config.token,
    };
    // A server may echo the Authorization header back: its base64 is as
    // secret as the token in it.
    if let Some(credentials) = api.authorization().strip_prefix("Basic ") {
        env.out().add_secrets([credentials.to_string()]);
    }
    let policy = policy(&options, &config.http, &config.plan)?;
    let engine = env.http.engine(policy)?.with_errors(vendor_error);
    Ok(Box::new(Zendesk {
        spec: spec(),
        api,
        engine,
        polling,
        key_field,
        permanent_delete: config.permanent_delete.unwrap_or(false),
        cursors: Mutex::new(Seen::new()),
    }))
}

pub struct Zendesk {
    spec: Spec,
    api: Api,
    engine: Engine,
    polling: crate::http::Polling,
    key_field: String,
    permanent_delete: bool,
    /// The cursors `read_page` handed out this run, with the offset each
    /// led to: one handed out again elsewhere means the listing goes round.
    cursors: Mutex<Seen>,
}

/// Zendesk's `details`: a string, or field names each with a list of
/// `{"description"}` (a 422's `RecordInvalid`).
fn details_text(details: &Value) -> Option<String> {
    match details {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Object(fields) => {
            let mut parts = Vec::new();
            for (field, errors) in fields {
                let list = match errors {
                    Value::Array(list) => list.clone(),
                    other => vec![other.clone()],
                };
                for e in list {
                    let text = e
                        .get("description")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                        .or_else(|| e.as_str().map(str::to_string))
                        .unwrap_or_else(|| e.to_string());
                    parts.push(format!("{field}: {text}"));
                }
            }
            (!parts.is_empty()).then(|| parts.join("; "))
        }
        _ => None,
    }
}

/// The error for a final error status: method, URL, status, Zendesk's
/// `error` and `description` (in place of the engine's message) and
/// `details`, and a hint for the credentials.
fn vendor_error(req: &RequestSpec, resp: &Response) -> Failure {
    let mut f = status_error(req, resp);
    if let Ok(v) = serde_json::from_str::<Value>(&resp.body) {
        let text = |k: &str| v.get(k).and_then(Value::as_str).filter(|t| !t.is_empty());
        let said = match (text("error"), text("description")) {
            (Some(e), Some(d)) => Some(format!("{e}: {d}")),
            (e, d) => e.or(d).map(str::to_string),
        };
        if let (Some(said), Some(engine)) = (said, vendor_message(&resp.body)) {
            let engine = format!(": {}", redact_body_text(&engine));
            if let Some(head) = f.message.strip_suffix(&engine) {
                f.message = format!("{head}: {}", redact_body_text(&said));
            }
        }
        if let Some(details) = v.get("details").and_then(details_text) {
            f.message
                .push_str(&format!(" ({})", redact_body_text(&details)));
        }
    }
    match resp.status {
        403 if req.url.contains("/create_or_update_many") => f.hint(
            "Zendesk answers 403 when bulk user imports are not enabled: the account owner must ask Zendesk Customer Support to enable them; otherwise check username and token in account.json",
        ),
        401 | 403 => f.hint("check username (the agent's email) and token in account.json (and the .env variable it names), and that token access is enabled in Admin Center > Apps and integrations > Zendesk API"),
        _ => f,
    }
}

/// A 400 or 422 answer to a write is about the user (a field Zendesk
/// refuses, an email in use): a [`Rejection`].
fn write_error(req: &RequestSpec, resp: &Response) -> anyhow::Error {
    let f = vendor_error(req, resp);
    if matches!(resp.status, 400 | 422) {
        return Rejection(f.message).into();
    }
    f.into()
}

/// The user of a `{"user": {...}}` answer.
fn user_of(req: &RequestSpec, body: &Value) -> Result<Record> {
    body.get("user").and_then(user_record).ok_or_else(|| {
        failed(format!(
            "{} {} answered no user with an id",
            req.method,
            req.shown_url()
        ))
        .into()
    })
}

impl Zendesk {
    /// The first active user whose `key` is `value` among the search's
    /// answers (one page), if any.
    async fn find(&self, key: &str, value: &str) -> Result<Option<Record>> {
        let req = self.api.search(key, value);
        let resp = self.engine.send(&req).await?;
        let found = users(&req, &resp.json(&req)?)?;
        Ok(found.into_iter().find(|u| {
            let active = u.get("active").and_then(Value::as_bool) != Some(false);
            let matches = match key {
                "email" => u
                    .get("email")
                    .and_then(Value::as_str)
                    .is_some_and(|e| e.eq_ignore_ascii_case(value)),
                // "The API treats the id as case insensitive."
                _ => record_id(u, "external_id").is_some_and(|e| e.eq_ignore_ascii_case(value)),
            };
            active && matches
        }))
    }

    /// The user `who` names: an id as it is, a key looked up.
    async fn resolve(&self, who: &Ident) -> Result<String> {
        match who {
            Ident::Id(id) => Ok(id.clone()),
            _ => {
                let (key, value) = who.key().unwrap_or_default();
                let user = self.find(key, value).await?.ok_or_else(|| {
                    anyhow::Error::from(not_found(format!(
                        "no active Zendesk user has {key} \"{value}\""
                    )))
                })?;
                Ok(record_id(&user, "id").unwrap_or_default())
            }
        }
    }

    /// `POST /users/create_or_update` of `record` (by its key); answers
    /// the user's id.
    async fn upsert_user(&self, record: &Record) -> Result<String> {
        let (_, body) = upsert_body(record, &self.key_field).map_err(|e| Rejection(e.0))?;
        let req = self.api.create_or_update(body);
        let resp = self.engine.execute(&req).await?;
        if !resp.is_success() {
            return Err(write_error(&req, &resp));
        }
        let user = user_of(&req, &resp.json(&req)?)?;
        Ok(record_id(&user, "id").unwrap_or_default())
    }

    /// Delete user `id`, and erase it when the account asks; a user
    /// already gone (404) is done.
    async fn delete_user(&self, id: &str) -> Result<()> {
        self.engine.send_unless_gone(&self.api.delete(id)).await?;
        if self.permanent_delete {
            self.engine.send_unless_gone(&self.api.purge(id)).await?;
        }
        Ok(())
    }

    fn delete_requests(&self, id: &str) -> Vec<RequestSpec> {
        let mut reqs = vec![self.api.delete(id)];
        if self.permanent_delete {
            reqs.push(self.api.purge(id));
        }
        reqs
    }

    /// The lookup a key `who` needs first, for previews.
    fn lookup(&self, who: &Ident) -> Vec<RequestSpec> {
        match who.key() {
            Some((key, value)) => vec![self.api.search(key, value)],
            None => Vec::new(),
        }
    }

    /// The requests `op` sends, or rows saying why a record would be refused.
    fn write_requests(&self, op: &WriteOp) -> Result<Vec<Value>> {
        let unfit = |e: requests::Unfit| usage(e.0);
        // A placeholder id reads better unescaped.
        let shown = |r: RequestSpec, who: &Ident| {
            let mut row = r.preview();
            if who.key().is_some() {
                if let Some(url) = row["url"].as_str() {
                    let placeholder = who.placeholder();
                    row["url"] =
                        json!(url.replace(&crate::http::segment(&placeholder), &placeholder));
                }
            }
            row
        };
        let plain = Ident::Id(String::new());
        Ok(match op {
            WriteOp::Insert(r) => vec![shown(
                self.api.create(create_body(r).map_err(unfit)?),
                &plain,
            )],
            WriteOp::Patch { id, value } => {
                let who = Ident::parse(id);
                let mut rows: Vec<Value> =
                    self.lookup(&who).into_iter().map(|r| r.preview()).collect();
                let body = user_body(value).map_err(unfit)?;
                rows.push(shown(self.api.update(&who.placeholder(), body), &who));
                rows
            }
            WriteOp::Delete { id } => {
                let who = Ident::parse(id);
                let mut rows: Vec<Value> =
                    self.lookup(&who).into_iter().map(|r| r.preview()).collect();
                for r in self.delete_requests(&who.placeholder()) {
                    rows.push(shown(r, &who));
                }
                rows
            }
            WriteOp::UpsertBatch(records) => {
                let (slots, users) = bulk::prepare_all(records, &self.key_field);
                let mut rows = slots.refused_rows(&self.key_field);
                let reqs = if users.len() == 1 {
                    vec![self.api.create_or_update(users[0].clone())]
                } else {
                    bulk::requests(&self.api, &users)
                };
                rows.extend(saas::previews(&reqs));
                rows
            }
            WriteOp::UpdateProfile { id, set, clear } => {
                let body = requests::update_with_clears(set, clear).map_err(unfit)?;
                vec![self.api.update(id, body).preview()]
            }
            // Export previews name the group as the profiles do; the
            // export itself sends the tag `ensure_group` made of it.
            WriteOp::AddMembers { group, ids } => ids
                .iter()
                .map(|id| self.api.add_tags(id, &[&tag_of(group)]).preview())
                .collect(),
            WriteOp::RemoveMembers { group, ids } => ids
                .iter()
                .map(|id| self.api.remove_tags(id, &[&tag_of(group)]).preview())
                .collect(),
        })
    }
}

crate::capabilities!(Zendesk: Records, Updates, Source, Sink, Profiles, Groups);

#[async_trait]
impl Connector for Zendesk {
    fn spec(&self) -> &Spec {
        &self.spec
    }

    /// The key records are upserted by: import requires it on every record.
    /// get, patch and delete take an id, `external_id:ID` or an email.
    fn id_field(&self) -> &str {
        &self.key_field
    }

    async fn check(&self) -> Result<Value> {
        let req = self.api.me();
        let resp = self.engine.send(&req).await?;
        let me = resp.json(&req)?;
        let user = |k: &str| {
            me.pointer(&format!("/user/{k}"))
                .cloned()
                .unwrap_or(Value::Null)
        };
        Ok(json!({
            "ok": true,
            "status": resp.status,
            "url": req.shown_url(),
            "user": user("name"),
            "email": user("email"),
            "role": user("role"),
        }))
    }
}

#[async_trait]
impl RecordLookup for Zendesk {
    async fn get(&self, id: &str) -> Result<Record> {
        let who = Ident::parse(id);
        if let Some((key, value)) = who.key() {
            // The search answers whole users: no second request.
            return self.find(key, value).await?.ok_or_else(|| {
                not_found(format!("no active Zendesk user has {key} \"{value}\"")).into()
            });
        }
        let req = self.api.get(id);
        let resp = self.engine.send(&req).await?;
        user_of(&req, &resp.json(&req)?)
    }
}

#[async_trait]
impl RecordStore for Zendesk {
    async fn insert(&self, value: Record) -> Result<Record> {
        let req = self
            .api
            .create(create_body(&value).map_err(|e| usage(e.0))?);
        let resp = self.engine.send(&req).await?;
        user_of(&req, &resp.json(&req)?)
    }

    async fn patch(&self, id: &str, value: Record) -> Result<Record> {
        let body = user_body(&value).map_err(|e| usage(e.0))?;
        let id = self.resolve(&Ident::parse(id)).await?;
        let req = self.api.update(&id, body);
        let resp = self.engine.send(&req).await?;
        user_of(&req, &resp.json(&req)?)
    }

    async fn delete(&self, id: &str) -> Result<()> {
        let id = self.resolve(&Ident::parse(id)).await?;
        self.engine.send(&self.api.delete(&id)).await?;
        if self.permanent_delete {
            self.engine.send(&self.api.purge(&id)).await?;
        }
        Ok(())
    }

    fn preview(&self, op: &WriteOp) -> Result<Vec<Value>> {
        RecordSink::preview(self, op)
    }
}

#[async_trait]
impl RecordSink for Zendesk {
    fn preview(&self, op: &WriteOp) -> Result<Vec<Value>> {
        self.write_requests(op)
    }

    /// `POST /users/create_or_update`; a refusal of the user rejects the record.
    async fn upsert(&self, record: Record) -> Result<UpsertOutcome> {
        let Some(key) = record_id(&record, &self.key_field) else {
            return Ok(UpsertOutcome::Rejected {
                id: None,
                reason: format!(
                    "missing {}, the key Zendesk users are matched by",
                    self.key_field
                ),
            });
        };
        batch::one(key, self.upsert_user(&record).await)
    }

    /// A batch of one is a single upsert (no job to create and poll);
    /// larger batches go through `create_or_update_many` jobs.
    async fn upsert_batch(&self, records: Records) -> Result<Vec<UpsertOutcome>> {
        if let [record] = records.as_slice() {
            return Ok(vec![self.upsert(record.clone()).await?]);
        }
        bulk::upsert(
            &self.engine,
            &self.api,
            self.polling,
            &self.key_field,
            &records,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_find_their_group_under_api_v2_and_no_minute_exceeds_the_plan() {
        let p = default_policy("account.json", per_minute("team", "account.json").unwrap());
        let name = |m: &str, path: &str| p.group_index(m, path).map(|i| p.groups[i].name.as_str());
        assert_eq!(name("PUT", "/api/v2/users/35436"), Some("updateUser"));
        assert_eq!(name("PUT", "/users/35436"), Some("updateUser"));
        assert_eq!(name("PUT", "/api/v2/users/35436/tags"), None);
        assert_eq!(
            name("POST", "/api/v2/users/create_or_update"),
            Some("createOrUpdateUser")
        );
        assert_eq!(name("POST", "/api/v2/users/create_or_update_many"), None);
        assert_eq!(
            name("GET", "/api/v2/incremental/users/cursor"),
            Some("incrementalExport")
        );
        assert_eq!(name("GET", "/api/v2/users/35436"), None);
        // Each bucket lets its burst and a minute of its rate through; all
        // of them together stay within Team's 200 requests a minute.
        let minute = |l: &RateLimit| f64::from(l.burst) + l.rps * 60.0;
        let total: f64 =
            p.groups.iter().map(|g| minute(&g.limit)).sum::<f64>() + minute(&p.default);
        assert!(total <= 200.0 + 1e-9, "{total}");
        // A larger plan raises the shared default, not the per-endpoint
        // limits, and stays within its own minute.
        for (plan, n) in PLANS {
            let p = default_policy("account.json", per_minute(plan, "account.json").unwrap());
            let total: f64 =
                p.groups.iter().map(|g| minute(&g.limit)).sum::<f64>() + minute(&p.default);
            assert!(total <= f64::from(*n) + 1e-9, "{plan}: {total}");
        }
        assert!(per_minute("gold", "account.json").is_err());
        assert_eq!(p.reset_header.as_deref(), Some("ratelimit-reset"));
    }

    #[test]
    fn a_pasted_address_gives_its_subdomain() {
        assert_eq!(subdomain_of("acme"), "acme");
        assert_eq!(subdomain_of(" https://acme.zendesk.com/ "), "acme");
        assert_eq!(subdomain_of("acme.zendesk.com"), "acme");
    }

    #[test]
    fn details_read_as_text_or_per_field() {
        assert_eq!(
            details_text(&json!("Name: is too short")).as_deref(),
            Some("Name: is too short")
        );
        let fields = json!({"email": [{"description": "Email: x is not properly formatted"}]});
        assert_eq!(
            details_text(&fields).as_deref(),
            Some("email: Email: x is not properly formatted")
        );
        assert_eq!(details_text(&json!(null)), None);
    }
}
