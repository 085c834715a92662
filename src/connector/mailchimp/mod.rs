//! The `mailchimp` connector: the members of one Mailchimp audience
//! (Marketing API 3.0) as a source, an import destination and an export
//! destination whose groups are tags. Every fact comes from
//! docs/connectors/mailchimp.md (sources there); where the vendor leaves a
//! point open, the choice is written here:
//!
//! - **Auth and address**: HTTP Basic with any user name and the API key as
//!   the password (what Mailchimp's own clients send). The key ends in
//!   `-<dc>`, its data center: the base URL is
//!   `https://<dc>.api.mailchimp.com/3.0` unless `baseUrl` says otherwise.
//!   The key (and the Basic credentials made from it) is a secret.
//! - **Identity**: members are addressed by the subscriber hash, the MD5 of
//!   the lowercased email. `--id` takes an email address (hashed) or a
//!   hash. Import and export key records by `email_address`.
//! - **Reads**: get is `GET …/members/{hash}`. `read_page` lists
//!   `GET /lists/{list_id}/members` by `offset` and `count` (1,000 at
//!   most) to `total_items`; an empty page short of the total is an error,
//!   never a loop. getupdates lists with `since_last_changed` (one second
//!   before the mark: whether it is strict is not documented), sorted by
//!   `last_changed` ascending, and skips the ids read at the mark's second;
//!   an archived member is reported as a delete.
//! - **Writes**: insert and import's single upsert are `PUT …/members/{hash}`
//!   (add or update) with `status_if_new` (the `statusIfNew` option,
//!   `subscribed` by default) unless the record sets `status`; patch is
//!   `PATCH`; delete archives (`DELETE`), or with `permanentDelete` erases
//!   the member (`POST …/actions/delete-permanent`, which cannot be
//!   undone and makes the address impossible to re-import). Standard
//!   member fields go at the top of the body; any other field is a merge
//!   field (`FNAME`) under `merge_fields`, booleans as "true"/"false".
//! - **Import** writes batches of up to 500 through batch subscribe
//!   (`POST /lists/{list_id}`, `update_existing`); a member in the answer's
//!   `errors` is rejected with Mailchimp's message, the rest written.
//!   Records without an `email_address` are rejected before sending.
//! - **Export**: profiles by `email_address`. Creates go through batch
//!   subscribe like an import's upserts (a single one is the `PUT`
//!   upsert); an update is a `PATCH`, a cleared property an empty merge field
//!   (`""`, the only way to empty one; §7); standard fields are not
//!   cleared (a warning says so). A changed email goes in the `PATCH` of
//!   the old member, whose hash then changes. Delete archives as above; a
//!   member already gone (404) or already archived (405) is done.
//! - **Groups are tags**: a tag needs no creating (setting it `active`
//!   creates it), so `ensure_group` answers the name. Membership is
//!   `POST …/members/{hash}/tags` with the tag `active` or `inactive`.
//! - **Limits**: "10 simultaneous connections" and no throttling by
//!   volume: at most 10 requests in flight, never more whatever the
//!   account's `rateLimit` asks. No rate-limit headers are documented, so a
//!   429 backs off by the retry policy.
//! - **Errors** show Mailchimp's problem document: `title`, `detail`, and
//!   each field error of `errors[]`.

mod export;
mod listing;
pub mod requests;

use anyhow::Result;
use async_trait::async_trait;
use serde_json::{json, Value};

use crate::connector::options::{connector_options, Described};
use crate::connector::saas::batch::{self, Slots};
use crate::connector::saas::HttpOptions;
use crate::connector::{
    record_id, Connector, FieldSpec, FieldType, Options, Record, Records, Rejection, Role, Spec,
    UpsertOutcome, WriteOp,
};
use crate::connector::{Env, RecordLookup, RecordSink, RecordStore};
use crate::error::{failed, usage, Failure};
use crate::http::message::vendor_message;
use crate::http::redact::redact_body_text;
use crate::http::{status_error, Engine, Policy, RateLimit, RequestSpec, Response};
use requests::{member_body, member_ref, subscriber_hash, Api, Mode, BATCH};

/// The address of an API key's data center; `<dc>` is the key's suffix.
pub const BASE_URL_TEMPLATE: &str = "https://<dc>.api.mailchimp.com/3.0";
/// "The Marketing API has a limit of 10 simultaneous connections."
pub const PARALLEL: usize = 10;
/// Requests a second: Mailchimp does not throttle by volume, so this only
/// keeps a burst of retries from hammering it.
const RPS: f64 = 100.0;

connector_options! {
    /// The options of a `mailchimp` account.
    pub struct MailchimpOptions {
        /// The API key (Account > Extras > API keys); its -usN suffix is the data center
        #[option(label = "API key", placeholder = "${MAILCHIMP_API_KEY}", required, secret)]
        pub api_key: String,
        /// The audience's id (Audience > Settings > Audience name and defaults)
        #[option(label = "Audience id", placeholder = "a1b2c3d4e5", required)]
        pub list_id: String,
        /// The engine's options; baseUrl defaults to the key's data center.
        #[option(flatten)]
        #[serde(flatten)]
        pub http: HttpOptions,
        /// The status a member added by an upsert gets: subscribed (the default), pending (a confirmation email), unsubscribed, cleaned or transactional
        #[option(label = "Status of new members", placeholder = "subscribed", default = "subscribed")]
        pub status_if_new: String,
        /// Delete erases the member for good (actions/delete-permanent; the address can never be imported again) instead of archiving it
        #[option(label = "Delete permanently", kind = FieldType::Boolean)]
        pub permanent_delete: Option<bool>,
    }
}

/// The config [`open`] reads, for the registry.
pub type Config = MailchimpOptions;

/// The statuses a member write takes [SPEC].
const STATUSES: &[&str] = &[
    "subscribed",
    "unsubscribed",
    "cleaned",
    "pending",
    "transactional",
];

pub fn spec() -> Spec {
    let mut options = crate::connector::saas::vendor_base_url(
        MailchimpOptions::option_specs(),
        BASE_URL_TEMPLATE,
        "https://<dc>.api.mailchimp.com/3.0, where <dc> is the API key's suffix (us6 in …-us6): the default. Or a test server.",
    );
    // The default depends on the key, so the option itself has none.
    for o in options.iter_mut().filter(|o| o.key == "baseUrl") {
        o.default = None;
    }
    Spec {
        code: "mailchimp",
        label: "Mailchimp audience members",
        description: "The members of one Mailchimp audience (Marketing API 3.0, Basic auth with the API key). Source: get by email or subscriber hash, every member page by page by offset, getupdates by last_changed. Destination: insert and upsert (PUT by subscriber hash, status_if_new), patch, delete (archive, or permanently), and import through batch subscribe (500 a call, per-member errors). Export: profiles by email_address (created through batch subscribe, updated with PATCH), properties as merge fields (cleared as \"\"), groups as tags. At most 10 connections at once.",
        roles: vec![Role::Source, Role::Destination],
        options,
        fields: vec![
            FieldSpec::new("email_address", FieldType::String, "Email address; the key members are upserted and exported by").required(),
            FieldSpec::new("merge_fields", FieldType::Object, "Merge fields by tag ({\"FNAME\": \"Ada\"}); any other field of a record goes here too")
                .example(r#"{"FNAME": "Ada", "LNAME": "Lovelace"}"#),
            FieldSpec::new("status", FieldType::String, "subscribed, unsubscribed, cleaned, pending or transactional (archived when read)")
                .example(r#""subscribed""#),
            FieldSpec::new("status_if_new", FieldType::String, "The status of a member an upsert adds (default: the statusIfNew option)")
                .example(r#""subscribed""#),
            FieldSpec::new("email_type", FieldType::String, "html or text").example(r#""html""#),
            FieldSpec::new("interests", FieldType::Object, "Interest ids with true or false"),
            FieldSpec::new("language", FieldType::String, "The member's language code (\"en\")").example(r#""en""#),
            FieldSpec::new("vip", FieldType::Boolean, "VIP status").example("false"),
            FieldSpec::new("location", FieldType::Object, "{\"latitude\", \"longitude\"}")
                .example(r#"{"latitude": 51.5, "longitude": -0.12}"#),
            FieldSpec::new("id", FieldType::String, "The subscriber hash (read-only); --id also takes the email")
                .example(r#""ada@example.com""#),
        ],
        extra_fields: true,
        capabilities: Mailchimp::CAPABILITIES,
        max_batch_size: BATCH,
        parallelism: PARALLEL,
        account_values: false,
        store: None,
    }
}

/// The limits in the module comment: 10 in flight, whatever the account
/// asks, since Mailchimp refuses the eleventh connection.
fn policy(options: &Options, http: &HttpOptions) -> Result<Policy> {
    let mut policy = Policy {
        source: options.source().to_string(),
        default: RateLimit {
            rps: RPS,
            burst: PARALLEL as u32,
            max_in_flight: PARALLEL,
        },
        ..Policy::default()
    };
    http.apply_to(&mut policy)?;
    for limit in policy
        .groups
        .iter_mut()
        .map(|g| &mut g.limit)
        .chain([&mut policy.default])
    {
        limit.max_in_flight = limit.max_in_flight.min(PARALLEL);
    }
    Ok(policy)
}

pub fn open(env: &Env, options: Options) -> Result<Box<dyn Connector>> {
    let config: MailchimpOptions = options.parse()?;
    let default_url = match requests::data_center(&config.api_key) {
        Some(dc) => format!("https://{dc}.api.mailchimp.com/3.0"),
        None if config.http.base_url.is_some() => String::new(),
        None => {
            return Err(usage(format!(
                "option \"apiKey\" in {} has no data center suffix (an API key ends in -us6 or the like)",
                options.source()
            ))
            .hint("copy the whole key from Mailchimp (Account > Extras > API keys), or set baseUrl")
            .into())
        }
    };
    let base_url = crate::connector::saas::base_url(
        &config.http,
        &default_url,
        "use https://<dc>.api.mailchimp.com/3.0, with the data center of the API key",
    )?;
    if !STATUSES.contains(&config.status_if_new.as_str()) {
        return Err(usage(format!(
            "option \"statusIfNew\" in {} must be one of {}, got \"{}\"",
            options.source(),
            STATUSES.join(", "),
            config.status_if_new
        ))
        .into());
    }
    let api = Api {
        base_url,
        api_key: config.api_key,
        list_id: config.list_id,
    };
    // A server may echo the Authorization header back: its base64 is as
    // secret as the key in it.
    let basic = api.authorization();
    if let Some(credentials) = basic.strip_prefix("Basic ") {
        env.out().add_secrets([credentials.to_string()]);
    }
    let policy = policy(&options, &config.http)?;
    let engine = env.http.engine(policy)?.with_errors(vendor_error);
    Ok(Box::new(Mailchimp {
        spec: spec(),
        api,
        engine,
        out: env.out().clone(),
        status_if_new: config.status_if_new,
        permanent_delete: config.permanent_delete.unwrap_or(false),
    }))
}

pub struct Mailchimp {
    spec: Spec,
    api: Api,
    engine: Engine,
    /// For the warnings about fields an export could not clear.
    out: crate::output::Output,
    status_if_new: String,
    permanent_delete: bool,
}

/// The error for a final error status: method, URL, status, Mailchimp's
/// `title` and `detail` (the engine's message), each field error, and a
/// hint for the credentials.
fn vendor_error(req: &RequestSpec, resp: &Response) -> Failure {
    let mut f = status_error(req, resp);
    if let Ok(v) = serde_json::from_str::<Value>(&resp.body) {
        // The engine takes the first field error's message; a problem
        // document says it in its title and detail, so those lead.
        let text = |k: &str| v.get(k).and_then(Value::as_str).filter(|t| !t.is_empty());
        let said = match (text("title"), text("detail")) {
            (Some(t), Some(d)) => Some(format!("{t}: {d}")),
            (t, d) => t.or(d).map(str::to_string),
        };
        if let (Some(said), Some(engine)) = (said, vendor_message(&resp.body)) {
            let engine = format!(": {}", redact_body_text(&engine));
            if let Some(head) = f.message.strip_suffix(&engine) {
                f.message = format!("{head}: {}", redact_body_text(&said));
            }
        }
        let fields: Vec<String> = v
            .get("errors")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|e| {
                let field = e.get("field").and_then(Value::as_str).unwrap_or_default();
                let message = e.get("message").and_then(Value::as_str)?;
                Some(if field.is_empty() {
                    message.to_string()
                } else {
                    format!("{field}: {message}")
                })
            })
            .collect();
        if !fields.is_empty() {
            f.message
                .push_str(&format!(" ({})", redact_body_text(&fields.join("; "))));
        }
    }
    if matches!(resp.status, 401 | 403) {
        f = f.hint("check apiKey in account.json (and the .env variable it names): the whole key, with its -usN data center suffix");
    }
    f
}

/// A 400 answer to a write is about the member (an invalid address, a
/// merge field of the wrong type, "Member Exists"): a [`Rejection`].
fn write_error(req: &RequestSpec, resp: &Response) -> anyhow::Error {
    let f = vendor_error(req, resp);
    if resp.status == 400 {
        return Rejection(f.message).into();
    }
    f.into()
}

fn member(req: &RequestSpec, body: Value) -> Result<Record> {
    match body {
        Value::Object(m) => Ok(m),
        _ => Err(failed(format!(
            "{} {} answered no member object",
            req.method,
            req.shown_url()
        ))
        .into()),
    }
}

/// The subscriber hash of a member answer: its `id`, or its email's hash.
fn hash_of(member: &Record) -> Option<String> {
    record_id(member, "id")
        .or_else(|| record_id(member, "email_address").map(|e| subscriber_hash(&e)))
}

impl Mailchimp {
    /// `PUT` the member of `record` (add or update); answers its hash.
    async fn upsert_member(&self, record: &Record) -> Result<String> {
        let body = member_body(
            record,
            Mode::Upsert {
                status_if_new: &self.status_if_new,
            },
        )
        .map_err(|e| Rejection(e.0))?;
        let email = body["email_address"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let req = self.api.put(&subscriber_hash(&email), body);
        let resp = self.engine.execute(&req).await?;
        if !resp.is_success() {
            return Err(write_error(&req, &resp));
        }
        Ok(hash_of(&member(&req, resp.json(&req)?)?).unwrap_or_else(|| subscriber_hash(&email)))
    }

    /// The request that deletes member `hash`, as the account asks.
    fn delete_request(&self, hash: &str) -> RequestSpec {
        if self.permanent_delete {
            self.api.delete_permanent(hash)
        } else {
            self.api.archive(hash)
        }
    }

    /// Delete member `hash`; one already archived (405, "Can not archive a
    /// contact that is … archived") is done.
    /// A member already gone (404) is done only when `gone_is_done`
    /// (export); `ferry delete` says there is no such member.
    async fn delete_member(&self, hash: &str, gone_is_done: bool) -> Result<()> {
        let req = self.delete_request(hash);
        let resp = self.engine.execute(&req).await?;
        if resp.is_success() || (resp.status == 404 && gone_is_done) {
            return Ok(());
        }
        // A 405 answers an archived member, and a bounced or pending one
        // too ("Can not archive a contact that is bounced, pending or
        // archived"): only the first is done.
        if resp.status == 405 && !self.permanent_delete {
            let get = self.api.get(hash);
            if let Some(found) = self.engine.send_found(&get).await? {
                let status = found.json(&get)?.get("status").cloned();
                if status == Some(Value::String("archived".into())) {
                    return Ok(());
                }
            }
        }
        Err(vendor_error(&req, &resp).into())
    }

    fn upsert_mode(&self) -> Mode<'_> {
        Mode::Upsert {
            status_if_new: &self.status_if_new,
        }
    }

    /// The requests `op` sends, or rows saying why a record would be refused.
    fn write_requests(&self, op: &WriteOp) -> Result<Vec<Value>> {
        let unfit = |e: requests::Unfit| usage(e.0);
        let shown = |r: RequestSpec| r.preview();
        Ok(match op {
            WriteOp::Insert(r) => {
                let body = member_body(r, self.upsert_mode()).map_err(unfit)?;
                let hash = subscriber_hash(body["email_address"].as_str().unwrap_or_default());
                vec![shown(self.api.put(&hash, body))]
            }
            WriteOp::Patch { id, value } => vec![shown(self.api.patch(
                &member_ref(id),
                member_body(value, Mode::Update).map_err(unfit)?,
            ))],
            WriteOp::Delete { id } => vec![shown(self.delete_request(&member_ref(id)))],
            WriteOp::UpsertBatch(records) => {
                let (slots, members) = self.batch_members(records);
                let mut rows = slots.refused_rows("email_address");
                for chunk in members.chunks(BATCH) {
                    rows.push(shown(self.api.batch(chunk.to_vec())));
                }
                rows
            }
            WriteOp::UpdateProfile { id, set, clear } => {
                let (body, not_cleared) =
                    requests::update_with_clears(set, clear).map_err(unfit)?;
                let mut rows = vec![shown(self.api.patch(id, body))];
                if !not_cleared.is_empty() {
                    rows.push(json!({ "notCleared": not_cleared, "reason": "only merge fields can be emptied" }));
                }
                rows
            }
            WriteOp::AddMembers { group, ids } | WriteOp::RemoveMembers { group, ids } => {
                let on = matches!(op, WriteOp::AddMembers { .. });
                ids.iter()
                    .map(|id| shown(self.api.tags(id, &[(group.as_str(), on)])))
                    .collect()
            }
        })
    }

    /// A batch's members, each refused or sent under its email (lowercased,
    /// as Mailchimp matches them).
    fn batch_members(&self, records: &[Record]) -> (Slots, Vec<Value>) {
        let mut slots = Slots::with_capacity(records.len());
        let mut members = Vec::with_capacity(records.len());
        for r in records {
            match member_body(r, self.upsert_mode()) {
                Ok(body) => {
                    let email = body["email_address"].as_str().unwrap_or_default();
                    slots.send(email.to_lowercase());
                    members.push(body);
                }
                Err(e) => slots.refuse(record_id(r, "email_address"), e.0),
            }
        }
        (slots, members)
    }
}

crate::capabilities!(Mailchimp: Records, Updates, Source, Sink, Profiles, Groups);

#[async_trait]
impl Connector for Mailchimp {
    fn spec(&self) -> &Spec {
        &self.spec
    }

    /// The key records are upserted by: import requires it on every record.
    /// get, patch and delete take an email or a subscriber hash.
    fn id_field(&self) -> &str {
        "email_address"
    }

    /// `listId`: the account's audiences (`GET /lists`).
    async fn option_choices(&self, option: &str) -> Result<Option<Vec<crate::connector::Choice>>> {
        match option {
            "listId" => Ok(Some(self.audiences().await?)),
            _ => Ok(None),
        }
    }

    async fn check(&self) -> Result<Value> {
        let req = self.api.audience();
        let resp = self.engine.send(&req).await?;
        let list = resp.json(&req)?;
        Ok(json!({
            "ok": true,
            "status": resp.status,
            "url": req.shown_url(),
            "audience": list.get("name").cloned().unwrap_or(Value::Null),
            "listId": list.get("id").cloned().unwrap_or(Value::Null),
            "members": list.pointer("/stats/member_count").cloned().unwrap_or(Value::Null),
        }))
    }
}

#[async_trait]
impl RecordLookup for Mailchimp {
    async fn get(&self, id: &str) -> Result<Record> {
        let req = self.api.get(&member_ref(id));
        let resp = self.engine.send(&req).await?;
        member(&req, resp.json(&req)?)
    }
}

#[async_trait]
impl RecordStore for Mailchimp {
    async fn insert(&self, value: Record) -> Result<Record> {
        let body = member_body(&value, self.upsert_mode()).map_err(|e| usage(e.0))?;
        let hash = subscriber_hash(body["email_address"].as_str().unwrap_or_default());
        let req = self.api.put(&hash, body);
        let resp = self.engine.send(&req).await?;
        member(&req, resp.json(&req)?)
    }

    async fn patch(&self, id: &str, value: Record) -> Result<Record> {
        let body = member_body(&value, Mode::Update).map_err(|e| usage(e.0))?;
        let req = self.api.patch(&member_ref(id), body);
        let resp = self.engine.send(&req).await?;
        member(&req, resp.json(&req)?)
    }

    async fn delete(&self, id: &str) -> Result<()> {
        self.delete_member(&member_ref(id), false).await
    }

    fn preview(&self, op: &WriteOp) -> Result<Vec<Value>> {
        RecordSink::preview(self, op)
    }
}

#[async_trait]
impl RecordSink for Mailchimp {
    fn preview(&self, op: &WriteOp) -> Result<Vec<Value>> {
        self.write_requests(op)
    }

    async fn upsert(&self, record: Record) -> Result<UpsertOutcome> {
        let Some(key) = record_id(&record, "email_address") else {
            return Ok(UpsertOutcome::Rejected {
                id: None,
                reason: "missing email_address, the key Mailchimp members are matched by"
                    .to_string(),
            });
        };
        batch::one(key, self.upsert_member(&record).await)
    }

    /// Batch subscribe: one call of up to 500 members; the answer's
    /// `errors` name the members it refused, by email.
    async fn upsert_batch(&self, records: Records) -> Result<Vec<UpsertOutcome>> {
        let (slots, members) = self.batch_members(&records);
        if slots.none_sent() {
            return Ok(slots.into_refusals().flatten().collect());
        }
        let req = self.api.batch(members);
        let resp = self.engine.send(&req).await?;
        let answer = resp.json(&req)?;
        let mut refused = std::collections::HashMap::new();
        for e in answer
            .get("errors")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(email) = e.get("email_address").and_then(Value::as_str) else {
                continue;
            };
            let message = e.get("error").and_then(Value::as_str).unwrap_or("refused");
            let reason = match e.get("error_code").and_then(Value::as_str) {
                Some(code) => format!("{message} ({code})"),
                None => message.to_string(),
            };
            refused.insert(email.to_lowercase(), redact_body_text(&reason));
        }
        let written: std::collections::HashSet<String> = ["new_members", "updated_members"]
            .iter()
            .filter_map(|list| answer.get(*list).and_then(Value::as_array))
            .flatten()
            .filter_map(|m| m.get("email_address").and_then(Value::as_str))
            .map(str::to_lowercase)
            .collect();
        Ok(slots.merge(|key| match refused.get(&key) {
            Some(reason) => UpsertOutcome::Rejected {
                id: Some(key),
                reason: reason.clone(),
            },
            None if written.contains(&key) => UpsertOutcome::Ok {
                id: subscriber_hash(&key),
            },
            // Neither written nor refused: not counted as written.
            None => UpsertOutcome::Rejected {
                id: Some(key),
                reason: "Mailchimp's answer named it neither new, updated nor refused".into(),
            },
        }))
    }
}
