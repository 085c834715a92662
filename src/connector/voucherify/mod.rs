//! The `voucherify` connector: Voucherify customers through the Customers
//! API, as a source and a destination. Every fact comes from
//! docs/connectors/voucherify.md; where that reference says "not
//! confirmed", the connector takes the safest documented behaviour:
//!
//! - **Auth**: `X-App-Id` and `X-App-Token` on every request; both options
//!   are secrets, so both are redacted everywhere.
//! - **Listing** (`read_page`) pages with the `starting_after` cursor, ordered
//!   by `created_at` ascending, because page-number paging stops at page 99.
//!   The cursor is the last customer's timestamp and the ids already read at
//!   that timestamp: the next request asks for customers after one
//!   millisecond earlier and skips those ids, so customers created in the
//!   same millisecond are neither skipped nor read twice, whether the API's
//!   "after" is strict or not (not documented). `--offset` cannot jump into
//!   this cursor, so an import starts at the beginning or from a checkpoint.
//! - **getupdates** asks for `updated_at[after]` ordered by `updated_at`, then
//!   pages with `starting_after` (each parameter is documented; their
//!   combination is not shown by the vendor). A customer whose `updated_at`
//!   is null is placed by its `created_at`. Deleted customers do not appear
//!   in the listing, so getupdates reports no deletes. `nextSync` is
//!   `TIME|ids` in the same form as the listing cursor.
//! - **Writes**: insert is `POST /v1/customers` (which upserts by
//!   source_id), patch is `PUT /v1/customers/{id}` (unsent parameters are
//!   left unchanged; a null is sent as given, the schema allows it), delete is
//!   `DELETE /v1/customers/{id}`. Inserts and bulk upserts leave null fields
//!   out, since what a null does there is not documented.
//! - **Batch upsert** uses the asynchronous bulk endpoint (see [`bulk`]):
//!   100 customers per request, one batch at a time, because Voucherify
//!   queues bulk jobs and runs them one after another.
//! - **Rate limits** are hourly and per plan; the defaults fit the
//!   Professional plan (5,000 API and 50 bulk requests an hour) with a
//!   margin: 1.25 requests/s with a burst of 10, and bulk requests at 45 an
//!   hour with a burst of 5. Lower them with `rateLimit` for a smaller plan.
//!   A 429 waits for `Retry-After`, else `X-Rate-Limit-Retry` (a Unix time).
//! - **Errors** show the vendor's `message` and `details`.

mod bulk;
pub mod requests;

use anyhow::Result;
use async_trait::async_trait;
use serde_json::{json, Value};

use crate::connector::options::{connector_options, Described, Num};
use crate::connector::saas::HttpOptions;
use crate::connector::saas::{self, paging};
use crate::connector::{
    record_id, Change, ChangeType, Connector, FieldSpec, FieldType, Options, Page, Position,
    Record, Records, Role, Spec, Updates, UpsertOutcome, WriteOp,
};
use crate::connector::{ChangeFeed, Env, RecordLookup, RecordSink, RecordSource, RecordStore};
use crate::error::{failed, usage, Failure};
use crate::http::redact::redact_body_text;
use crate::http::{status_error, Engine, Group, Policy, RateLimit, RequestSpec, Response};
use requests::{customer_body, parse_time, Api, Mark, MarkToken, MAX_BULK, MAX_PAGE};

/// The European cluster, Voucherify's default.
pub const DEFAULT_BASE_URL: &str = "https://api.voucherify.io";

connector_options! {
    /// The options of a `voucherify` account.
    pub struct VoucherifyOptions {
        /// The project's Application ID, sent as X-App-Id (Voucherify dashboard: Project settings > General > Application Keys)
        #[option(label = "Application ID", placeholder = "${VOUCHERIFY_APPLICATION_ID}", required, secret)]
        pub application_id: String,
        /// The project's Secret Key, sent as X-App-Token
        #[option(label = "Secret key", placeholder = "${VOUCHERIFY_SECRET_KEY}", required, secret)]
        pub secret_key: String,
        /// The engine's options; baseUrl picks the cluster.
        #[option(flatten)]
        #[serde(flatten)]
        pub http: HttpOptions,
        /// Milliseconds to wait before the first poll of a bulk job; each later wait doubles, up to ten seconds (default 1000)
        #[option(label = "Bulk poll interval", kind = FieldType::Integer, default = 1000)]
        pub poll_interval_ms: Num,
        /// How many times a bulk job is polled before its batch fails as unfinished (default 30)
        #[option(label = "Bulk polls", kind = FieldType::Integer, default = 30)]
        pub max_polls: Num,
    }
}

/// The config [`open`] reads, for the registry.
pub type Config = VoucherifyOptions;

pub fn spec() -> Spec {
    let options = crate::connector::saas::vendor_base_url(
        VoucherifyOptions::option_specs(),
        DEFAULT_BASE_URL,
        "The API cluster of the project: https://api.voucherify.io (Europe, the default), https://us1.api.voucherify.io (United States), https://as1.api.voucherify.io (Asia), https://<region>.api.voucherify.io for a dedicated cluster; requests to the wrong cluster are rejected. Or a test server.",
    );
    Spec {
        code: "voucherify",
        label: "Voucherify customers",
        description: "Voucherify customers through the Customers API (X-App-Id/X-App-Token). Source: get by id or source_id, every customer page by page with the starting_after cursor (no 99-page cap), getupdates by updated_at. Destination: insert (upserts by source_id), patch, delete, and batch upsert through the asynchronous bulk endpoint (100 per job, polled until done, one outcome per customer). Rate limits are hourly per plan: the defaults fit the Professional plan; set rateLimit for yours.",
        roles: vec![Role::Source, Role::Destination],
        options,
        fields: vec![
            FieldSpec::new("source_id", FieldType::String, "The customer's id in your systems; ferry's record id").required(),
            FieldSpec::new("name", FieldType::String, "Full name"),
            FieldSpec::new("description", FieldType::String, "Free text about the customer"),
            FieldSpec::new("email", FieldType::String, "Email address"),
            FieldSpec::new("phone", FieldType::String, "Phone number, free form (\"+1 933 222 3333\")"),
            FieldSpec::new("birthdate", FieldType::Date, "Birth date as YYYY-MM-DD (a date-time is cut to its date)"),
            FieldSpec::new("address", FieldType::Object, "{\"city\", \"state\", \"line_1\", \"line_2\", \"country\", \"postal_code\"}"),
            FieldSpec::new("metadata", FieldType::Object, "Custom attributes as key/value pairs (the project may enforce a schema)"),
        ],
        extra_fields: false,
        capabilities: Voucherify::CAPABILITIES,
        max_batch_size: MAX_BULK,
        parallelism: 1,
        account_values: false,
        store: None,
    }
}

/// The rate limits in [`spec`]'s description, per endpoint group.
fn policy(options: &Options, http: &HttpOptions) -> Result<Policy> {
    let mut policy = Policy {
        source: options.source().to_string(),
        reset_header: Some("x-rate-limit-retry".into()),
        default: RateLimit {
            rps: 1.25,
            burst: 10,
            max_in_flight: 4,
        },
        groups: vec![Group {
            name: "bulk".into(),
            methods: vec!["POST".into()],
            path: "/v1/customers/bulk/async".into(),
            limit: RateLimit {
                rps: 45.0 / 3600.0,
                burst: 5,
                max_in_flight: 1,
            },
        }],
        ..Policy::default()
    };
    http.apply_to(&mut policy)?;
    Ok(policy)
}

pub fn open(env: &Env, options: Options) -> Result<Box<dyn Connector>> {
    let config: VoucherifyOptions = options.parse()?;
    let base_url = crate::connector::saas::base_url(
        &config.http,
        DEFAULT_BASE_URL,
        &format!("use {DEFAULT_BASE_URL}, https://us1.api.voucherify.io or https://as1.api.voucherify.io"),
    )?;
    let api = Api {
        base_url,
        app_id: config.application_id,
        secret_key: config.secret_key,
    };
    let polling =
        crate::connector::options::polling(&options, &config.poll_interval_ms, &config.max_polls)?;
    let policy = policy(&options, &config.http)?;
    let engine = env.http.engine(policy)?.with_errors(vendor_error);
    Ok(Box::new(Voucherify {
        spec: spec(),
        api,
        engine,
        polling,
    }))
}

pub struct Voucherify {
    spec: Spec,
    api: Api,
    engine: Engine,
    polling: bulk::Polling,
}

fn vendor_error(req: &RequestSpec, resp: &Response) -> Failure {
    let mut f = status_error(req, resp);
    if let Ok(v) = serde_json::from_str::<Value>(&resp.body) {
        if let Some(d) = v.get("details").and_then(Value::as_str) {
            if !d.is_empty() && !f.message.contains(d) {
                f.message.push_str(&format!(" ({})", redact_body_text(d)));
            }
        }
    }
    if matches!(resp.status, 401 | 403) {
        f = f.hint("check applicationId and secretKey in account.json (and the .env variables they name); a project outside Europe needs its cluster in baseUrl, e.g. https://us1.api.voucherify.io");
    }
    f
}

/// One page of a timestamp-ordered listing.
struct Listed {
    records: Vec<Record>,
    mark: Option<Mark>,
    end: bool,
    total: Option<u64>,
}

impl Voucherify {
    /// Read up to `want` customers ordered by `order`, after `mark`;
    /// `since` (getupdates' first page) filters by `updated_at[after]`.
    async fn list(
        &self,
        order: &str,
        mark: Option<Mark>,
        since: Option<&Mark>,
        want: usize,
    ) -> Result<Listed> {
        let want = want.clamp(1, MAX_PAGE);
        let skip = mark.as_ref().or(since).map_or(0, |m| m.seen.len());
        let limit = (want + skip).min(MAX_PAGE);
        let mut query = vec![("limit", limit.to_string()), ("order", order.to_string())];
        if let Some(s) = since {
            query.push(("updated_at[after]", s.after()));
        }
        if let Some(m) = &mark {
            query.push(("starting_after", m.after()));
        }
        let req = self.api.list(&query);
        let resp = self.engine.send(&req).await?;
        let body = resp.json(&req)?;
        let key = body
            .get("data_ref")
            .and_then(Value::as_str)
            .unwrap_or("customers");
        let Some(Value::Array(items)) = body.get(key) else {
            return Err(failed(format!(
                "GET {} answered no \"{key}\" array",
                req.shown_url()
            ))
            .into());
        };
        let has_more = body.get("has_more").and_then(Value::as_bool);
        let raw = items.len();
        let mut cover = mark.or_else(|| since.cloned());
        let mut last: Option<Mark> = None;
        let mut records = Vec::new();
        let mut truncated = false;
        for item in items {
            let Value::Object(c) = item else {
                return Err(failed(format!(
                    "GET {} answered a customer that is not an object",
                    req.shown_url()
                ))
                .into());
            };
            let id = c.get("id").and_then(Value::as_str).unwrap_or_default();
            let at = c
                .get(order)
                .and_then(Value::as_str)
                .or_else(|| c.get("created_at").and_then(Value::as_str))
                .and_then(parse_time)
                .ok_or_else(|| {
                    failed(format!(
                        "GET {} answered customer {id} without a readable {order}",
                        req.shown_url()
                    ))
                })?;
            if cover.as_ref().is_some_and(|m| m.covers(at, id)) {
                continue;
            }
            if records.len() == want {
                truncated = true;
                break;
            }
            let next = Mark::advance(cover.take(), at, id);
            last = Some(next.clone());
            cover = Some(next);
            records.push(c.clone());
        }
        let end = !truncated
            && (raw == 0 || has_more == Some(false) || (has_more.is_none() && raw < limit));
        if records.is_empty() && !end {
            return Err(failed(format!(
                "GET {} answered only customers already read; stopping instead of looping",
                req.shown_url()
            ))
            .hint("more than 100 customers share one timestamp, which starting_after cannot page through")
            .into());
        }
        Ok(Listed {
            records,
            mark: last.or(cover),
            end,
            total: body.get("total").and_then(Value::as_u64),
        })
    }

    fn write_requests(&self, op: &WriteOp) -> Result<Vec<RequestSpec>> {
        let unfit = |e: requests::Unfit| usage(e.0);
        Ok(match op {
            WriteOp::Insert(r) => vec![self.api.create(customer_body(r, false).map_err(unfit)?)],
            WriteOp::Patch { id, value } => {
                vec![self.api.update(id, update_body(id, value)?)]
            }
            WriteOp::Delete { id } => vec![self.api.delete(id)],
            WriteOp::UpsertBatch(records) => {
                // Records the bulk job would refuse are listed by `preview`.
                let bodies = records
                    .iter()
                    .filter(|r| record_id(r, "source_id").is_some())
                    .filter_map(|r| customer_body(r, false).ok())
                    .collect::<Vec<_>>();
                bodies
                    .chunks(MAX_BULK)
                    .map(|c| self.api.bulk(c.to_vec()))
                    .collect()
            }
            // Profile export (segments) is not part of this connector yet.
            other => {
                return Err(crate::error::unsupported(
                    "voucherify",
                    &format!("preview {}", other.action()),
                )
                .into())
            }
        })
    }
}

/// The body of `PUT /v1/customers/{id}`: source_id is the key and cannot
/// change there.
fn update_body(id: &str, value: &Record) -> Result<Value> {
    let mut value = value.clone();
    if let Some(sid) = value.remove("source_id") {
        if sid.as_str().is_some_and(|s| s != id) {
            return Err(usage(format!(
                "patch cannot change source_id (from \"{id}\" to {sid})"
            ))
            .hint("Voucherify's update does not take source_id; insert a customer with the new source_id instead")
            .into());
        }
    }
    customer_body(&value, true).map_err(|e| usage(e.0).into())
}

crate::capabilities!(Voucherify: Records, Updates, Source, Sink);

#[async_trait]
impl Connector for Voucherify {
    fn spec(&self) -> &Spec {
        &self.spec
    }

    fn id_field(&self) -> &str {
        "source_id"
    }

    async fn check(&self) -> Result<Value> {
        let req = self.api.list(&[("limit", "1".into())]);
        let resp = self.engine.send(&req).await?;
        let total = resp
            .json(&req)?
            .get("total")
            .cloned()
            .unwrap_or(Value::Null);
        Ok(json!({ "ok": true, "status": resp.status, "url": req.shown_url(), "customers": total }))
    }
}

#[async_trait]
impl RecordLookup for Voucherify {
    async fn get(&self, id: &str) -> Result<Record> {
        let req = self.api.get(id);
        let resp = self.engine.send(&req).await?;
        match resp.json(&req)? {
            Value::Object(m) => Ok(m),
            _ => Err(failed(format!(
                "GET {} answered no customer object",
                req.shown_url()
            ))
            .into()),
        }
    }
}

#[async_trait]
impl RecordStore for Voucherify {
    async fn insert(&self, value: Record) -> Result<Record> {
        let body = customer_body(&value, false).map_err(|e| usage(e.0))?;
        let req = self.api.create(body);
        let resp = self.engine.send(&req).await?;
        match resp.json(&req)? {
            Value::Object(m) => Ok(m),
            _ => Err(failed(format!(
                "POST {} answered no customer object",
                req.shown_url()
            ))
            .into()),
        }
    }

    async fn patch(&self, id: &str, value: Record) -> Result<Record> {
        let req = self.api.update(id, update_body(id, &value)?);
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
impl ChangeFeed for Voucherify {
    async fn get_updates(&self, since: Option<&str>, limit: Option<usize>) -> Result<Updates> {
        let since = since.map(Mark::parse).transpose()?;
        let mut entries = Vec::new();
        let mut mark: Option<Mark> = None;
        loop {
            let want = limit.map_or(MAX_PAGE, |l| l.saturating_sub(entries.len()));
            if want == 0 {
                break;
            }
            let first = mark.is_none();
            let page = self
                .list(
                    "updated_at",
                    mark.clone(),
                    if first { since.as_ref() } else { None },
                    want,
                )
                .await?;
            for c in page.records {
                let id = record_id(&c, "source_id")
                    .or_else(|| record_id(&c, "id"))
                    .unwrap_or_default();
                entries.push(Change {
                    id,
                    kind: ChangeType::Upsert,
                    value: Some(c),
                });
            }
            mark = page.mark.or(mark);
            if page.end {
                break;
            }
        }
        let next_sync = mark.or(since).map(|m| m.token()).unwrap_or_default();
        Ok(Updates { next_sync, entries })
    }
}

#[async_trait]
impl RecordSource for Voucherify {
    async fn read_page(&self, from: &Position, limit: usize) -> Result<Page> {
        let mark = from.cursor.as_deref().map(Mark::parse).transpose()?;
        paging::from_checkpoint("voucherify", "reading", from, "its listing pages by timestamp, not by position: import from the beginning, or --resume a checkpoint")?;
        let first = mark.is_none();
        let page = self.list("created_at", mark, None, limit).await?;
        let n = page.records.len() as u64;
        Ok(Page {
            next: (!page.end).then(|| Position {
                offset: from.offset + n,
                cursor: page.mark.map(|m| m.token()),
            }),
            records: page.records,
            total: if first { page.total } else { None },
        })
    }
}

#[async_trait]
impl RecordSink for Voucherify {
    fn preview(&self, op: &WriteOp) -> Result<Vec<Value>> {
        let mut shown = saas::previews(&self.write_requests(op)?);
        // What a batch upsert would refuse before sending.
        if let WriteOp::UpsertBatch(records) = op {
            shown.extend(bulk::prepare_all(records).0.refused_rows("source_id"));
        }
        Ok(shown)
    }

    async fn upsert(&self, record: Record) -> Result<UpsertOutcome> {
        let mut outcomes = self.upsert_batch(Records::new(vec![record])).await?;
        outcomes
            .pop()
            .ok_or_else(|| failed("the bulk job answered no outcome").into())
    }

    async fn upsert_batch(&self, records: Records) -> Result<Vec<UpsertOutcome>> {
        let mut outcomes = Vec::with_capacity(records.len());
        for chunk in records.chunks(MAX_BULK) {
            outcomes.extend(bulk::upsert(&self.engine, &self.api, self.polling, chunk).await?);
        }
        Ok(outcomes)
    }
}
