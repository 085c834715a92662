//! The `segment` connector: user profiles from the Segment Profile API, as a
//! source only (docs/connectors/segment.md). The Profile API is read-only, so
//! insert, patch, delete and batch upsert answer "connector segment cannot …".
//!
//! **Listing.** The Profile API documents no route that lists every profile
//! (its routes all need a profile identifier; §4.6), so ferry does not
//! invent one. `read_page` reads the identifiers from the file named by the
//! `ids` option (one per line: a value of `idField`, or `TYPE:VALUE` such as
//! `email:ada@example.com`), and fetches each profile. The checkpoint holds
//! the byte position in that file, so a resumed import goes on from the next
//! identifier. Export the identifiers from the system the users come from,
//! or from the warehouse tables of Segment's Profiles Sync.
//!
//! **Cost.** Each profile costs two calls: `GET …/traits?limit=traitsLimit`
//! (every trait up to `traitsLimit`, default 20, in one call; a profile with
//! more traits is warned about once per run) and
//! `GET …/external_ids?limit=100` (one more call per further 100 external ids,
//! following `cursor.next`). Importing 100 profiles thus costs 200 API calls
//! when none has more than 100 external ids; `check` costs one. No call is
//! spent on listing. The Profile API allows 100 requests a second per space;
//! ferry defaults to that rate with a burst of 20 and 16 requests in flight.
//! A 429 is retried with backoff (no rate-limit headers are documented; a
//! `Retry-After` is honoured if sent).
//!
//! **Records.** `id` is the profile's `idField` identifier (user_id by
//! default): the looked-up value when the lookup used that type, else the
//! first external id of that type. `traits` and `external_ids` are as the
//! API answers them, and `lookup` is the identifier the profile was fetched
//! by. A profile without the chosen identifier, or a listed identifier with
//! no profile (404), becomes a record without `id` and with a `problem`
//! saying why, so import puts it in its rejects file instead of dropping it.
//!
//! **Not confirmed by the vendor**, and handled the safe way: the traits
//! route documents `limit` up to 200 while the pagination section says
//! 1–100, so `traitsLimit` accepts 1–200 as the traits route documents;
//! `check` reads a profile's metadata because there is no "who am I" route,
//! and takes a 404 `not_found` as a token and space that were accepted.

pub mod requests;

use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::PathBuf;

use anyhow::{Context, Result};
use async_trait::async_trait;
use serde_json::{json, Value};
use tokio::sync::OnceCell;

use crate::connector::{
    Action, Connector, FieldSpec, FieldType, OptionSpec, Options, Page, Position, Record, Role,
    Spec,
};
use crate::ctx::Ctx;
use crate::error::{failed, usage, Failure};
use crate::http::{status_error, Engine, Policy, RateLimit, RequestSpec, Response};
use requests::{Api, Lookup, ID_TYPES};

/// The US endpoint, the default.
pub const DEFAULT_BASE_URL: &str = "https://profiles.segment.com";
/// Profiles fetched at once per page.
const MAX_PAGE: usize = 100;
/// Pages of external ids followed for one profile before giving up.
const MAX_EXTERNAL_ID_PAGES: usize = 50;

pub fn spec() -> Spec {
    let mut options = vec![
        OptionSpec::required(
            "spaceId",
            "Space ID",
            "The Unify space the access token belongs to (Unify > Unify settings > API access)",
        )
        .placeholder("spa_..."),
        OptionSpec::required(
            "accessToken",
            "Access token",
            "The Profile API access token of the space, sent as the basic-auth user with an empty password",
        )
        .placeholder("${SEGMENT_ACCESS_TOKEN}")
        .secret(),
        OptionSpec::optional(
            "idField",
            "Record id",
            "Which identifier becomes the record id: user_id (default), email or anonymous_id",
        )
        .default("user_id"),
        OptionSpec::optional(
            "traitsLimit",
            "Traits per profile",
            "How many traits to fetch per profile, 1 to 200, in one call (default 20)",
        )
        .kind(FieldType::Integer)
        .default(20),
        OptionSpec::optional(
            "ids",
            "Identifiers file",
            "The profiles to read, since the Profile API cannot list them: a text file, relative to account.json, with one identifier per line (a value of idField, or TYPE:VALUE such as email:ada@example.com)",
        )
        .placeholder("ids.txt"),
    ];
    options.extend(crate::http::vendor_engine_options(
        DEFAULT_BASE_URL,
        "The Profile API endpoint: https://profiles.segment.com (US, the default) or https://profiles.euw1.segment.com (EU workspaces must use it). Or a test server.",
    ));
    Spec {
        code: "segment",
        label: "Segment profiles",
        description: "User profiles from the Segment Profile API (read only). get one profile by identifier (user_id by default, or TYPE:VALUE), check the token and space, and read the profiles listed in the `ids` file (the Profile API has no route that lists profiles): 2 API calls per profile, traits and external ids, so 200 calls for 100 profiles. A profile without the chosen identifier reaches import's rejects file with the reason.",
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
        actions: vec![Action::Check, Action::Get, Action::ReadPage],
        max_batch_size: MAX_PAGE,
        parallelism: 1,
    }
}

pub fn open(ctx: &Ctx, options: Options) -> Result<Box<dyn Connector>> {
    let base_url = crate::http::base_url(
        &options,
        DEFAULT_BASE_URL,
        &format!("use {DEFAULT_BASE_URL} or https://profiles.euw1.segment.com"),
    )?;
    let id_field = options.require("idField")?;
    if !ID_TYPES.contains(&id_field.as_str()) {
        return Err(usage(format!(
            "idField \"{id_field}\" in {} is not one of {}",
            options.source(),
            ID_TYPES.join(", ")
        ))
        .into());
    }
    let traits_limit = match options.value("traitsLimit") {
        None => 20,
        Some(v) => match v
            .as_u64()
            .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
        {
            Some(n @ 1..=200) => n as u32,
            _ => {
                return Err(usage(format!(
                    "traitsLimit in {} must be a whole number from 1 to 200, got {v}",
                    options.source()
                ))
                .into())
            }
        },
    };
    let api = Api {
        base_url,
        space_id: options.require("spaceId")?,
        access_token: options.require("accessToken")?,
    };
    // The Authorization header carries the token in base64; keep it out of output too.
    ctx.out.add_secrets([base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        format!("{}:", api.access_token),
    )]);
    let ids = match options.string("ids") {
        Some(_) => Some(options.require_path("ids")?),
        None => None,
    };
    let mut policy = Policy {
        source: options.source().to_string(),
        default: RateLimit {
            rps: 100.0,
            burst: 20,
            max_in_flight: 16,
        },
        ..Policy::default()
    };
    policy.apply_account(&options)?;
    Ok(Box::new(Segment {
        spec: spec(),
        engine: Engine::new(ctx.out.clone(), policy)?,
        api,
        id_field,
        traits_limit,
        ids,
        total: OnceCell::new(),
        source: options.source().to_string(),
        out: ctx.out.clone(),
        warned: std::sync::atomic::AtomicBool::new(false),
    }))
}

pub struct Segment {
    spec: Spec,
    engine: Engine,
    api: Api,
    id_field: String,
    traits_limit: u32,
    ids: Option<PathBuf>,
    /// The number of identifiers in the ids file, counted once.
    total: OnceCell<u64>,
    source: String,
    out: crate::output::Output,
    /// Whether the "more traits than traitsLimit" warning was given.
    warned: std::sync::atomic::AtomicBool,
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
        let mut seen: Vec<String> = Vec::new();
        for _ in 0..MAX_EXTERNAL_ID_PAGES {
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
                    if seen.iter().any(|s| s == c) {
                        return Err(failed(format!(
                            "GET {} repeated the cursor {c}; stopping instead of looping",
                            req.shown_url()
                        ))
                        .into());
                    }
                    seen.push(c.to_string());
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

    fn ids_file(&self) -> Result<&PathBuf> {
        self.ids.as_ref().ok_or_else(|| {
            // Said in the message itself: import replaces a source error's hint with its resume hint.
            usage(format!("connector segment cannot list profiles: the Profile API documents no route that lists them; set \"ids\" in {} to a file with one identifier per line ({} values, or TYPE:VALUE such as email:ada@example.com), exported from the source system or from Profiles Sync", self.source, self.id_field))
                .into()
        })
    }

    /// Up to `limit` identifiers from `from`; the byte position after them
    /// and whether the file ends there.
    fn read_ids(&self, from: &Position, limit: usize) -> Result<(Vec<String>, u64, bool)> {
        let path = self.ids_file()?;
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

    fn count_ids(&self) -> Result<u64> {
        let path = self.ids_file()?;
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

#[async_trait]
impl Connector for Segment {
    fn spec(&self) -> &Spec {
        &self.spec
    }

    async fn check(&self) -> Result<Value> {
        let probe = match &self.ids {
            Some(_) => self
                .read_ids(&Position::start(), 1)?
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

    async fn get(&self, id: &str) -> Result<Record> {
        let lookup = Lookup::parse(id, &self.id_field)?;
        match self.profile(&lookup).await? {
            Ok(r) => Ok(r),
            Err(message) => Err(crate::error::not_found(message).into()),
        }
    }

    async fn read_page(&self, from: &Position, limit: usize) -> Result<Page> {
        let (ids, end_pos, end) = self.read_ids(from, limit.clamp(1, MAX_PAGE))?;
        let total = *self
            .total
            .get_or_try_init(|| async { self.count_ids() })
            .await?;
        // A line that is no identifier becomes a record without id, like a
        // profile that does not exist: the rejects file shows it.
        let lookups: Vec<std::result::Result<Lookup, String>> = ids
            .iter()
            .map(|t| Lookup::parse(t, &self.id_field).map_err(|e| e.to_string()))
            .collect();
        let fetched = futures::future::join_all(lookups.iter().map(|l| async move {
            match l {
                Ok(l) => self.profile(l).await,
                Err(e) => Ok(Err(e.clone())),
            }
        }))
        .await;
        let mut records = Vec::with_capacity(fetched.len());
        for ((line, lookup), r) in ids.iter().zip(&lookups).zip(fetched) {
            let (shown, problem) = match (r?, lookup) {
                (Ok(record), _) => {
                    records.push(record);
                    continue;
                }
                (Err(message), Ok(lookup)) => {
                    (lookup.shown(), format!("no such profile: {message}"))
                }
                (Err(message), Err(_)) => (line.clone(), format!("not an identifier: {message}")),
            };
            let mut r = Record::new();
            r.insert("lookup".into(), json!(shown));
            r.insert("problem".into(), json!(problem));
            records.push(r);
        }
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
}
