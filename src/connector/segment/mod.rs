//! The `segment` connector: user profiles from the Segment Profile API, as a
//! source only (docs/connectors/segment.md). The Profile API is read-only, so
//! insert, patch, delete and batch upsert answer "connector segment cannot …".
//!
//! **Listing.** Without an `ids` option, `read_page` pages through the
//! space's profiles with `GET …/collections/users/profiles?limit=L&next=N`,
//! answered `{"data": [{"segment_id"}, …], "cursor": {"url", "has_more",
//! "next"}}`, and reads each listed profile by `segment_id:<id>`. The
//! vendor's reference documents this route only in passing (its pagination
//! section says profiles can be listed; its routes table lists none), so
//! ferry uses it the way Voucherify's own initial-sync script for the
//! Segment → Voucherify migration does (voucherifyio/segmentio-initial-sync,
//! initial-sync.ts): `limit` from `pageSize` (1–100, default 100), `next=0`
//! for the first page, then `cursor.next` until `has_more` is false. The
//! cursor is the checkpoint position, so `--resume` continues mid-listing; an
//! `--offset` without a checkpoint is refused, since the cursor is opaque.
//! With `ids` (one identifier per line: a value of `idField`, or `TYPE:VALUE`
//! such as `email:ada@example.com`), only those profiles are read, and the
//! checkpoint holds the byte position in that file.
//!
//! **Cost.** Each profile costs two calls: `GET …/traits?limit=traitsLimit`
//! (every trait up to `traitsLimit`, default 20, in one call; a profile with
//! more traits is warned about once per run) and
//! `GET …/external_ids?limit=100` (one more call per further 100 external ids,
//! following `cursor.next`); the listing costs one call per page. Importing
//! 100 profiles thus costs 201 API calls with the default `pageSize`, as the
//! script does (200 from an ids file), when none has more than 100 external
//! ids; `check` costs one. The Profile API allows 100 requests a second per
//! space; ferry defaults to that rate with a burst of 20 and 16 requests in
//! flight. A 429 is retried with backoff (no rate-limit headers are
//! documented; a `Retry-After` is honoured if sent).
//!
//! **Records.** `id` is the profile's `idField` identifier (user_id by
//! default): the first external id of that type (or the looked-up value
//! when an ids line looked the profile up by that type), never another
//! identifier. `traits` and `external_ids` are as the API answers them, and
//! `lookup` is the identifier the profile was fetched by. A profile without
//! the chosen identifier, or a listed identifier with no profile (404),
//! becomes a record without `id` and with a `problem` saying why, which
//! import rejects before mapping it ([`Connector::source_reject`]) with the
//! reason `missing user_id` (`missing email`, …), `no such profile` or
//! `not an identifier`, so it reaches the rejects file instead of being
//! dropped or keyed by something else.
//!
//! **Not confirmed by the vendor**, and handled the safe way: the traits
//! route documents `limit` up to 200 while the pagination section says
//! 1–100, so `traitsLimit` accepts 1–200 as the traits route documents;
//! `check` reads a profile's metadata because there is no "who am I" route,
//! and takes a 404 `not_found` as a token and space that were accepted; the
//! listing's request and answer shapes are the script's and the reference's
//! pagination section's, not a documented route's.

pub mod requests;

use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use async_trait::async_trait;
use serde_json::{json, Value};
use tokio::sync::OnceCell;

use crate::connector::options::{connector_options, Described, Num};
use crate::connector::saas::paging::{self, step, Next};
use crate::connector::saas::HttpOptions;
use crate::connector::{
    Connector, FieldSpec, FieldType, Options, Page, Position, Record, Role, Spec,
};
use crate::connector::{Env, RecordLookup, RecordSource};
use crate::error::{failed, usage, Failure};
use crate::http::{status_error, Engine, Policy, RateLimit, RequestSpec, Response};
use requests::{Api, Lookup, ID_TYPES};

/// The US endpoint, the default.
pub const DEFAULT_BASE_URL: &str = "https://profiles.segment.com";
/// Profiles fetched at once per page: the listing's documented maximum
/// `limit`, and the default `pageSize`.
const MAX_PAGE: usize = 100;
/// The reasons of records that are no profile (see `source_reject`).
const NO_PROFILE: &str = "no such profile";
const NOT_AN_ID: &str = "not an identifier";
/// Pages of external ids followed for one profile before giving up.
const MAX_EXTERNAL_ID_PAGES: usize = 50;

connector_options! {
    /// The options of a `segment` account.
    pub struct SegmentOptions {
        /// The Unify space the access token belongs to (Unify > Unify settings > API access)
        #[option(label = "Space ID", placeholder = "spa_...", required)]
        pub space_id: String,
        /// The Profile API access token of the space, sent as the basic-auth user with an empty password
        #[option(label = "Access token", placeholder = "${SEGMENT_ACCESS_TOKEN}", required, secret)]
        pub access_token: String,
        /// Which identifier becomes the record id: user_id (default), email or anonymous_id
        #[option(label = "Record id", default = "user_id")]
        pub id_field: String,
        /// How many traits to fetch per profile, 1 to 200, in one call (default 20)
        #[option(label = "Traits per profile", kind = FieldType::Integer, default = 20)]
        pub traits_limit: Num,
        /// How many profiles each page of the listing asks for, 1 to 100 (default 100); each page costs one call
        #[option(label = "Listing page size", kind = FieldType::Integer, default = 100)]
        pub page_size: Num,
        /// Read only these profiles instead of listing the space: a text file, relative to account.json, with one identifier per line (a value of idField, or TYPE:VALUE such as email:ada@example.com or segment_id:use_...)
        #[option(label = "Identifiers file", placeholder = "ids.txt")]
        pub ids: Option<String>,
        /// The engine's options; baseUrl picks the region.
        #[option(flatten)]
        #[serde(flatten)]
        pub http: HttpOptions,
    }
}

/// The config [`open`] reads, for the registry.
pub type Config = SegmentOptions;

pub fn spec() -> Spec {
    let options = crate::connector::saas::vendor_base_url(
        SegmentOptions::option_specs(),
        DEFAULT_BASE_URL,
        "The Profile API endpoint: https://profiles.segment.com (US, the default) or https://profiles.euw1.segment.com (EU workspaces must use it). Or a test server.",
    );
    Spec {
        code: "segment",
        label: "Segment profiles",
        description: "User profiles from the Segment Profile API (read only). get one profile by identifier (user_id by default, or TYPE:VALUE such as segment_id:use_...), check the token and space, and read every profile of the space page by page (or only those of the `ids` file): 2 API calls per profile, traits and external ids, plus 1 per listing page, so 201 calls for 100 profiles. A profile without the chosen identifier reaches import's rejects file as `missing user_id`.",
        roles: vec![Role::Source],
        options,
        fields: vec![
            FieldSpec::new("id", FieldType::String, "The value of the idField identifier (absent when the profile has none)").required(),
            FieldSpec::new("lookup", FieldType::String, "The identifier the profile was fetched by, TYPE:VALUE"),
            FieldSpec::new("traits", FieldType::Object, "The profile's traits, up to traitsLimit"),
            FieldSpec::new("external_ids", FieldType::Array, "The profile's identifiers as the API answers them: [{\"type\", \"id\", \"source_id\", \"collection\", \"created_at\", \"encoding\"}]"),
            FieldSpec::new("problem", FieldType::String, "Why the record has no id (only then)"),
        ],
        extra_fields: false,
        capabilities: Segment::CAPABILITIES,
        max_batch_size: MAX_PAGE,
        parallelism: 1,
        account_values: false,
        store: None,
    }
}

pub fn open(env: &Env, options: Options) -> Result<Box<dyn Connector>> {
    let config: SegmentOptions = options.parse()?;
    let base_url = crate::connector::saas::base_url(
        &config.http,
        DEFAULT_BASE_URL,
        &format!("use {DEFAULT_BASE_URL} or https://profiles.euw1.segment.com"),
    )?;
    let id_field = config.id_field;
    if !ID_TYPES.contains(&id_field.as_str()) {
        return Err(usage(format!(
            "idField \"{id_field}\" in {} is not one of {}",
            options.source(),
            ID_TYPES.join(", ")
        ))
        .into());
    }
    let traits_limit = whole_number(&options, "traitsLimit", &config.traits_limit, 20, 200)?;
    let page_size = whole_number(
        &options,
        "pageSize",
        &config.page_size,
        MAX_PAGE as u32,
        MAX_PAGE as u32,
    )?;
    let api = Api {
        base_url,
        space_id: config.space_id,
        access_token: config.access_token,
    };
    // The Authorization header carries the token in base64; keep it out of output too.
    env.out().add_secrets([base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        format!("{}:", api.access_token),
    )]);
    let ids = config.ids.map(|path| options.resolve(&path));
    let mut policy = Policy {
        source: options.source().to_string(),
        default: RateLimit {
            rps: 100.0,
            burst: 20,
            max_in_flight: 16,
        },
        ..Policy::default()
    };
    config.http.apply_to(&mut policy)?;
    Ok(Box::new(Segment {
        spec: spec(),
        engine: env.http.engine(policy)?,
        api,
        id_field,
        traits_limit,
        page_size,
        ids,
        total: OnceCell::new(),
        source: options.source().to_string(),
        out: env.out().clone(),
        warned: std::sync::atomic::AtomicBool::new(false),
    }))
}

pub struct Segment {
    spec: Spec,
    engine: Engine,
    api: Api,
    id_field: String,
    traits_limit: u32,
    /// Profiles per listing page (`pageSize`).
    page_size: u32,
    ids: Option<PathBuf>,
    /// The number of identifiers in the ids file, counted once.
    total: OnceCell<u64>,
    source: String,
    out: crate::output::Output,
    /// Whether the "more traits than traitsLimit" warning was given.
    warned: std::sync::atomic::AtomicBool,
}

/// The whole number option `key` (`v`), from 1 to `max`; the hint names
/// its `default`.
fn whole_number(options: &Options, key: &str, v: &Num, default: u32, max: u32) -> Result<u32> {
    match v.as_u64() {
        Some(n) if (1..=u64::from(max)).contains(&n) => Ok(n as u32),
        _ => Err(usage(format!(
            "{key} in {} must be a whole number from 1 to {max}, got {v}",
            options.source()
        ))
        .hint(format!(
            "set \"{key}\" to a number from 1 to {max}, or remove it for the default {default}"
        ))
        .into()),
    }
}

/// A final error status as an error with the vendor's `error.message`.
fn vendor_error(req: &RequestSpec, resp: &Response) -> Failure {
    let f = status_error(req, resp);
    if matches!(resp.status, 401 | 403) {
        return f.hint("check accessToken and spaceId in account.json (the token belongs to one space); an EU workspace needs baseUrl https://profiles.euw1.segment.com");
    }
    f
}

impl Segment {
    /// The profile at `lookup`: traits and every external id; the inner
    /// `Err` holds the message of a 404 (no such profile).
    async fn profile(&self, lookup: &Lookup) -> Result<std::result::Result<Record, String>> {
        let (traits, ids) = tokio::join!(self.traits(lookup), self.external_ids(lookup));
        let traits = match traits? {
            Ok(t) => t,
            Err(missing) => return Ok(Err(missing)),
        };
        let ids = match ids? {
            Ok(i) => i,
            Err(missing) => return Ok(Err(missing)),
        };
        let id = if lookup.kind == self.id_field {
            Some(lookup.value.clone())
        } else {
            ids.iter().find_map(|e| {
                (e.get("type").and_then(Value::as_str) == Some(self.id_field.as_str()))
                    .then(|| e.get("id").and_then(Value::as_str).map(str::to_string))
                    .flatten()
            })
        };
        let mut record = Record::new();
        if let Some(id) = &id {
            record.insert("id".into(), json!(id));
        }
        record.insert("lookup".into(), json!(lookup.shown()));
        record.insert("traits".into(), traits);
        record.insert("external_ids".into(), Value::Array(ids));
        if id.is_none() {
            record.insert(
                "problem".into(),
                json!(format!(
                    "profile {} has no {}",
                    lookup.shown(),
                    self.id_field
                )),
            );
        }
        Ok(Ok(record))
    }

    /// The traits object, or the 404 message.
    async fn traits(&self, lookup: &Lookup) -> Result<std::result::Result<Value, String>> {
        let req = self.api.traits(lookup, self.traits_limit);
        let resp = self.engine.execute(&req).await?;
        if resp.status == 404 {
            return Ok(Err(vendor_error(&req, &resp).message));
        }
        if !resp.is_success() {
            return Err(vendor_error(&req, &resp).into());
        }
        let body = resp.json(&req)?;
        if body.pointer("/cursor/has_more").and_then(Value::as_bool) == Some(true)
            && !self.warned.swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            // Once per run: the limit is the user's choice, but a silent cut is not.
            self.out.warn(&format!(
                "profile {} has more than {} traits; only the first {} are read (raise \"traitsLimit\", up to 200, in {})",
                lookup.shown(),
                self.traits_limit,
                self.traits_limit,
                self.source
            ));
        }
        match body.get("traits") {
            Some(t @ Value::Object(_)) => Ok(Ok(t.clone())),
            _ => Err(failed(format!(
                "GET {} answered no \"traits\" object",
                req.shown_url()
            ))
            .into()),
        }
    }

    /// Every external id, following `cursor.next`, or the 404 message.
    async fn external_ids(
        &self,
        lookup: &Lookup,
    ) -> Result<std::result::Result<Vec<Value>, String>> {
        let mut all = Vec::new();
        let mut next: Option<String> = None;
        let mut seen = paging::Seen::new();
        for page in 0..MAX_EXTERNAL_ID_PAGES {
            let req = self.api.external_ids(lookup, next.as_deref());
            let resp = self.engine.execute(&req).await?;
            if resp.status == 404 && next.is_none() {
                return Ok(Err(vendor_error(&req, &resp).message));
            }
            if !resp.is_success() {
                return Err(vendor_error(&req, &resp).into());
            }
            let body = resp.json(&req)?;
            match body.get("data") {
                Some(Value::Array(items)) => all.extend(items.iter().cloned()),
                _ => {
                    return Err(failed(format!(
                        "GET {} answered no \"data\" array",
                        req.shown_url()
                    ))
                    .into())
                }
            }
            let more = body.pointer("/cursor/has_more").and_then(Value::as_bool) == Some(true);
            let cursor = body
                .pointer("/cursor/next")
                .and_then(Value::as_str)
                .filter(|c| !c.is_empty());
            match cursor {
                Some(c) if more => {
                    if !paging::first_time(&mut seen, c.to_string(), page as u64) {
                        return Err(failed(format!(
                            "GET {} repeated the cursor {c}; stopping instead of looping",
                            req.shown_url()
                        ))
                        .into());
                    }
                    next = Some(c.to_string());
                }
                _ => return Ok(Ok(all)),
            }
        }
        Err(failed(format!(
            "profile {} has more than {} external ids; stopping",
            lookup.shown(),
            MAX_EXTERNAL_ID_PAGES * requests::EXTERNAL_IDS_PAGE as usize
        ))
        .into())
    }

    /// Each listed or looked-up profile as a record; one that is no profile
    /// (404, or a line that is no identifier) becomes a record with only
    /// `lookup` and the `problem`, which import rejects.
    async fn profiles(
        &self,
        lookups: Vec<(String, std::result::Result<Lookup, String>)>,
    ) -> Result<Vec<Record>> {
        let fetched = futures::future::join_all(lookups.iter().map(|(_, l)| async move {
            match l {
                Ok(l) => self.profile(l).await,
                Err(e) => Ok(Err(e.clone())),
            }
        }))
        .await;
        let mut records = Vec::with_capacity(fetched.len());
        for ((text, lookup), r) in lookups.iter().zip(fetched) {
            let (shown, problem) = match (r?, lookup) {
                (Ok(record), _) => {
                    records.push(record);
                    continue;
                }
                (Err(message), Ok(lookup)) => (lookup.shown(), format!("{NO_PROFILE}: {message}")),
                (Err(message), Err(_)) => (text.clone(), format!("{NOT_AN_ID}: {message}")),
            };
            let mut r = Record::new();
            r.insert("lookup".into(), json!(shown));
            r.insert("problem".into(), json!(problem));
            records.push(r);
        }
        Ok(records)
    }

    /// One page of the space's profiles from the listing, at the cursor of
    /// `from` (the first page without one).
    async fn list_page(&self, from: &Position, limit: usize) -> Result<Page> {
        let hint = format!("the listing pages with Segment's opaque cursor, not by position: import from the beginning, --resume a checkpoint, or set \"ids\" in {} to read given profiles", self.source);
        paging::from_checkpoint("segment", "listing profiles", from, &hint)?;
        let size = u32::try_from(limit)
            .unwrap_or(u32::MAX)
            .clamp(1, self.page_size);
        let previous = from.cursor.as_deref();
        let req = self
            .api
            .list(size, previous.unwrap_or(requests::FIRST_PAGE));
        let resp = self.engine.execute(&req).await?;
        if !resp.is_success() {
            return Err(self.listing_error(&req, &resp).into());
        }
        let body = resp.json(&req)?;
        let shown = req.shown_url();
        let Some(Value::Array(data)) = body.get("data") else {
            return Err(failed(format!("GET {shown} answered no \"data\" array")).into());
        };
        let mut lookups = Vec::with_capacity(data.len());
        for (i, item) in data.iter().enumerate() {
            match item.get("segment_id").and_then(Value::as_str) {
                Some(id) if !id.trim().is_empty() => lookups.push((
                    id.to_string(),
                    Ok(Lookup {
                        kind: "segment_id".into(),
                        value: id.to_string(),
                    }),
                )),
                _ => {
                    return Err(failed(format!(
                    "GET {shown} answered a profile without a segment_id (entry {} of the page)",
                    i + 1
                ))
                    .into())
                }
            }
        }
        if lookups.len() > size as usize {
            return Err(failed(format!(
                "GET {shown} answered {} profiles when asked for {size}",
                lookups.len()
            ))
            .into());
        }
        let next = body
            .pointer("/cursor/next")
            .and_then(Value::as_str)
            .filter(|c| !c.is_empty());
        // `has_more` is the documented end signal; the script itself goes
        // on while `next` is set, which only matters when `has_more` is absent.
        let more = body
            .pointer("/cursor/has_more")
            .and_then(Value::as_bool)
            .unwrap_or(next.is_some());
        let next = match (more, next) {
            (false, _) => Next::End,
            (true, None) => Next::Missing("a cursor.next"),
            (true, Some(c)) => Next::Cursor(c.to_string()),
        };
        let next = step(&req, previous, lookups.len(), "profiles", next)?;
        let records = self.profiles(lookups).await?;
        Ok(paging::page(from, records, next, None))
    }

    /// A refused listing: which route, and what to check. The listing is
    /// an import's first call, so it is where a wrong space, token or
    /// region shows first.
    fn listing_error(&self, req: &RequestSpec, resp: &Response) -> Failure {
        if !matches!(resp.status, 401 | 403 | 404) {
            return vendor_error(req, resp);
        }
        let f = status_error(req, resp);
        Failure::new(
            f.kind,
            format!(
                "could not list the profiles of space {} (the listing route GET /v1/spaces/{{spaceId}}/collections/users/profiles): {}",
                self.api.space_id, f.message
            ),
        )
        .hint(format!(
            "check spaceId and accessToken in {} (Unify > Unify settings > API access; the token belongs to one space) and the region: an EU workspace needs baseUrl https://profiles.euw1.segment.com",
            self.source
        ))
    }

    /// Up to `limit` identifiers from `from` in the ids file; the byte
    /// position after them and whether the file ends there.
    fn read_ids(
        &self,
        path: &Path,
        from: &Position,
        limit: usize,
    ) -> Result<(Vec<String>, u64, bool)> {
        let shown = path.display();
        let file = std::fs::File::open(path)
            .with_context(|| format!("could not open the ids file {shown}"))?;
        let mut reader = BufReader::new(file);
        let mut pos = 0u64;
        let mut line = String::new();
        let mut skip = 0u64;
        match from.cursor.as_deref() {
            Some(c) => {
                pos = c.parse().map_err(|_| {
                    usage(format!("\"{c}\" is not a position in the ids file {shown}"))
                })?;
                reader
                    .seek(SeekFrom::Start(pos))
                    .with_context(|| format!("could not read the ids file {shown}"))?;
            }
            None => skip = from.offset,
        }
        let mut ids = Vec::new();
        loop {
            line.clear();
            let n = reader
                .read_line(&mut line)
                .with_context(|| format!("could not read the ids file {shown}"))?;
            if n == 0 {
                return Ok((ids, pos, true));
            }
            let text = line.trim().trim_start_matches('\u{feff}');
            if !text.is_empty() {
                if skip > 0 {
                    skip -= 1;
                } else if ids.len() == limit {
                    // More follow; the next page starts at this line.
                    return Ok((ids, pos, false));
                } else {
                    ids.push(text.to_string());
                }
            }
            pos += n as u64;
        }
    }

    fn count_ids(&self, path: &Path) -> Result<u64> {
        let file = std::fs::File::open(path)
            .with_context(|| format!("could not open the ids file {}", path.display()))?;
        let mut n = 0;
        for line in BufReader::new(file).lines() {
            if !line?.trim().is_empty() {
                n += 1;
            }
        }
        Ok(n)
    }
}

crate::capabilities!(Segment: Lookup, Source);

#[async_trait]
impl Connector for Segment {
    fn spec(&self) -> &Spec {
        &self.spec
    }

    async fn check(&self) -> Result<Value> {
        let probe = match &self.ids {
            Some(path) => self
                .read_ids(path, &Position::start(), 1)?
                .0
                .first()
                .map(|t| Lookup::parse(t, &self.id_field))
                .transpose()?,
            None => None,
        }
        .unwrap_or(Lookup {
            kind: "user_id".into(),
            value: "ferry-check".into(),
        });
        let req = self.api.metadata(&probe);
        let resp = self.engine.execute(&req).await?;
        match resp.status {
            200 => Ok(
                json!({ "ok": true, "status": 200, "url": req.shown_url(), "profile": probe.shown() }),
            ),
            404 => Ok(json!({
                "ok": true,
                "status": 404,
                "url": req.shown_url(),
                "note": format!("the token and space were accepted; profile {} does not exist (the Profile API has no route that checks credentials alone)", probe.shown()),
            })),
            _ => Err(vendor_error(&req, &resp).into()),
        }
    }
}

#[async_trait]
impl RecordLookup for Segment {
    async fn get(&self, id: &str) -> Result<Record> {
        let lookup = Lookup::parse(id, &self.id_field)?;
        match self.profile(&lookup).await? {
            Ok(r) => Ok(r),
            Err(message) => Err(crate::error::not_found(message)
                .hint("no profile has that identifier in this space: check it, and its type (TYPE:VALUE, e.g. user_id:u1, email:a@example.com, or a plain value of idField)")
                .into()),
        }
    }
}

#[async_trait]
impl RecordSource for Segment {
    async fn read_page(&self, from: &Position, limit: usize) -> Result<Page> {
        let Some(path) = &self.ids else {
            return self.list_page(from, limit).await;
        };
        let (ids, end_pos, end) = self.read_ids(path, from, limit.clamp(1, MAX_PAGE))?;
        let total = *self
            .total
            .get_or_try_init(|| async { self.count_ids(path) })
            .await?;
        // A line that is no identifier becomes a record without id, like a
        // profile that does not exist: the rejects file shows it.
        let lookups = ids
            .into_iter()
            .map(|t| {
                let l = Lookup::parse(&t, &self.id_field).map_err(|e| e.to_string());
                (t, l)
            })
            .collect();
        let records = self.profiles(lookups).await?;
        let n = records.len() as u64;
        Ok(Page {
            records,
            next: (!end).then(|| Position {
                offset: from.offset + n,
                cursor: Some(end_pos.to_string()),
            }),
            total: Some(total),
        })
    }

    fn source_reject(&self, record: &Record) -> Option<String> {
        if record.contains_key("id") {
            return None;
        }
        let problem = record.get("problem")?.as_str()?;
        Some(
            [NO_PROFILE, NOT_AN_ID]
                .into_iter()
                .find(|r| problem.starts_with(&format!("{r}: ")))
                .map_or_else(|| format!("missing {}", self.id_field), str::to_string),
        )
    }
}
