//! Paging the manifest connector's listings (`list`, `getupdates`): the
//! query of each strategy (offset, page number, cursor, next URL), reading
//! one page, and where the listing goes next. The listing follows the API
//! to its real end and refuses to loop: a cursor, URL or page met before at
//! another offset is an error ([`crate::connector::saas::paging`]), and so
//! is an empty page that carries no end-of-data signal.

use anyhow::Result;
use serde_json::Value;

use super::manifest::Pagination;
use super::HttpConnector;
use crate::connector::raw::{self, RawRecords};
use crate::connector::saas::paging::{first_time, next_link, Seen};
use crate::connector::saas::scalar;
use crate::connector::{record_id, Change, ChangeType, Position, Record, Updates};
use crate::error::{failed, usage};
use crate::http::redact::redact_url;
use crate::http::{RequestSpec, Response};

/// Where the next page of a listing starts.
#[derive(Debug, Clone, Default)]
pub(super) struct Cursor {
    pub(super) offset: u64,
    pub(super) page: Option<u64>,
    pub(super) token: Option<String>,
    pub(super) url: Option<String>,
    pub(super) pages: u64,
}

/// One page as read.
pub(super) struct Fetched {
    pub(super) records: Vec<Record>,
    /// The records as JSON text instead (then `records` is empty).
    pub(super) raw: Option<RawRecords>,
    pub(super) body: Value,
    pub(super) next: Option<Cursor>,
    pub(super) total: Option<u64>,
}

impl HttpConnector {
    /// The query of one page.
    pub(super) fn page_query(
        &self,
        p: Option<&Pagination>,
        c: &Cursor,
        size: u64,
    ) -> Vec<(String, String)> {
        let mut q = Vec::new();
        match p {
            None => {}
            Some(Pagination::Offset {
                offset_param,
                limit_param,
                ..
            }) => {
                q.push((offset_param.clone(), c.offset.to_string()));
                q.push((limit_param.clone(), size.to_string()));
            }
            Some(Pagination::Page {
                page_param,
                size_param,
                first_page,
                ..
            }) => {
                q.push((
                    page_param.clone(),
                    c.page.unwrap_or(*first_page).to_string(),
                ));
                if let Some(s) = size_param {
                    q.push((s.clone(), size.to_string()));
                }
            }
            Some(Pagination::Cursor {
                cursor_param,
                limit_param,
                initial,
                ..
            }) => {
                if let Some(t) = c.token.as_ref().or(initial.as_ref()) {
                    q.push((cursor_param.clone(), t.clone()));
                }
                if let Some(l) = limit_param {
                    q.push((l.clone(), size.to_string()));
                }
            }
            Some(Pagination::NextUrl { limit_param, .. }) => {
                // A next URL carries its own query; only the first page needs the size.
                if let (None, Some(l)) = (&c.url, limit_param) {
                    q.push((l.clone(), size.to_string()));
                }
            }
        }
        q
    }

    /// Read one page of `name` at `c`; `seen` guards against loops. The
    /// records are left as JSON text when `raw` and the body allows it (an
    /// array of objects at the records pointer); otherwise parsed, which
    /// also words any error.
    pub(super) async fn fetch(
        &self,
        name: &str,
        c: &Cursor,
        size: u64,
        extra: &[(String, String)],
        seen: &mut Seen,
        raw: bool,
    ) -> Result<Fetched> {
        let action = self.action(name)?;
        let p = action.pagination.as_ref();
        let mut query = extra.to_vec();
        query.extend(self.page_query(p, c, size));
        let req = self
            .build(name, None, None, &query, c.url.as_deref())
            .await?;
        let mut resp = self.engine.send(&req).await?;
        let rp = action.records.clone().unwrap_or_default();
        let split = raw
            .then(|| raw::split(&resp.body, &rp))
            .flatten()
            .filter(|(_, spans)| spans.iter().all(|s| resp.body[s.clone()].starts_with('{')));
        if let Some((body, spans)) = split {
            let text = std::mem::take(&mut resp.body);
            let raw = RawRecords::from_spans(text, spans);
            return self.paged(name, c, &req, &resp, seen, body, Vec::new(), Some(raw));
        }
        let mut body = resp.json(&req)?;
        // The records move out of the body (no copy of a page per read); the
        // rest of the body still answers the paging pointers.
        let records = match body.pointer_mut(&rp).map(Value::take) {
            Some(Value::Array(items)) => items
                .into_iter()
                .map(|i| match i {
                    Value::Object(m) => Ok(m),
                    _ => Err(failed(format!(
                        "{} {} answered a record that is not an object at \"{rp}\"",
                        req.method,
                        req.shown_url()
                    ))
                    .into()),
                })
                .collect::<Result<Vec<_>>>()?,
            _ => {
                return Err(failed(format!(
                    "{} {} answered no array of records at \"{rp}\" ({})",
                    req.method,
                    req.shown_url(),
                    self.at(name, "records")
                ))
                .into())
            }
        };
        self.paged(name, c, &req, &resp, seen, body, records, None)
    }

    /// Where the listing goes after the page `c` answered with `body` (the
    /// records taken out) and `records` (or `raw`).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn paged(
        &self,
        name: &str,
        c: &Cursor,
        req: &RequestSpec,
        resp: &Response,
        seen: &mut Seen,
        body: Value,
        records: Vec<Record>,
        raw: Option<RawRecords>,
    ) -> Result<Fetched> {
        let p = self.action(name)?.pagination.as_ref();
        let n = raw.as_ref().map_or(records.len(), RawRecords::len) as u64;
        let page_no = c.pages + 1;
        let Some(p) = p else {
            return Ok(Fetched {
                records,
                raw,
                body,
                next: None,
                total: None,
            });
        };
        let stop = p.stop();
        let total = stop
            .total
            .as_ref()
            .and_then(|t| body.pointer(t))
            .and_then(Value::as_u64);
        let has_more = stop
            .has_more
            .as_ref()
            .and_then(|h| body.pointer(h))
            .and_then(Value::as_bool);
        let mut end = has_more == Some(false)
            || total.is_some_and(|t| c.offset + n >= t)
            || stop.max_pages.is_some_and(|m| page_no >= m)
            || (n == 0 && stop.empty_page);
        let loop_error = |what: String| -> anyhow::Error {
            failed(format!(
                "{} {} {what}; stopping instead of looping",
                req.method,
                req.shown_url(),
            ))
            .hint(format!(
                "check {} against the API's paging",
                self.at(name, "pagination")
            ))
            .into()
        };
        let mut next = Cursor {
            offset: c.offset + n,
            pages: page_no,
            ..Cursor::default()
        };
        // A page, cursor or next URL met before at another offset is a
        // loop, which `what` words.
        let offset = next.offset;
        let mut new_or_loop = |key: String, what: String| -> Result<()> {
            if first_time(seen, key, offset) {
                Ok(())
            } else {
                Err(loop_error(what))
            }
        };
        match p {
            Pagination::Offset { .. } => {}
            Pagination::Page { first_page, .. } => {
                let this = c.page.unwrap_or(*first_page);
                next.page = Some(this.saturating_add(1));
                if !end && n > 0 {
                    let parsed = match &raw {
                        Some(r) => r.to_records()?,
                        None => Vec::new(),
                    };
                    let listed = if raw.is_some() { &parsed } else { &records };
                    let key = format!("page-ids:{}", ids(listed, &self.id_field));
                    let what =
                        format!("answered page {this} with the same records as an earlier page");
                    new_or_loop(key, what)?;
                }
            }
            Pagination::Cursor {
                cursor_path,
                cursor_header,
                ..
            } => {
                let token = match (cursor_path, cursor_header) {
                    (Some(ptr), _) => body.pointer(ptr).and_then(scalar),
                    (None, Some(h)) => resp.header(h).map(str::to_string),
                    (None, None) => None,
                }
                .filter(|t| !t.is_empty());
                match token {
                    None if has_more == Some(true) => {
                        return Err(failed(format!(
                            "{} {} says there is more (hasMore) but gives no cursor",
                            req.method,
                            req.shown_url()
                        ))
                        .into())
                    }
                    None => end = true,
                    Some(t) if !end => {
                        let what = format!(
                            "repeated the cursor \"{}\" on page {page_no}",
                            redact_url(&t)
                        );
                        new_or_loop(format!("cursor:{t}"), what)?;
                        next.token = Some(t);
                    }
                    Some(_) => {}
                }
            }
            Pagination::NextUrl {
                next_path,
                link_header,
                ..
            } => {
                let url = next_path
                    .as_ref()
                    .and_then(|ptr| body.pointer(ptr))
                    .and_then(scalar)
                    .or_else(|| {
                        link_header
                            .then(|| resp.header("link").and_then(next_link))
                            .flatten()
                    })
                    .filter(|u| !u.is_empty());
                match url {
                    None => end = true,
                    Some(u) if !end => {
                        let u = self.builder.resolve(&u);
                        let what =
                            format!("repeated the next URL {} on page {page_no}", redact_url(&u));
                        new_or_loop(format!("url:{u}"), what)?;
                        next.url = Some(u);
                    }
                    Some(_) => {}
                }
            }
        }
        if !end && n == 0 {
            return Err(failed(format!(
                "{} {} answered an empty page {page_no} with no end-of-data signal",
                req.method,
                req.shown_url()
            ))
            .hint(format!(
                "if an empty page means the end, set \"stop\": {{\"emptyPage\": true}} in {}",
                self.at(name, "pagination")
            ))
            .into());
        }
        Ok(Fetched {
            records,
            raw,
            body,
            next: if end { None } else { Some(next) },
            total,
        })
    }

    /// One page of the `list` action from `from`, and where the next starts.
    pub(super) async fn list_page(
        &self,
        from: &Position,
        limit: usize,
        raw: bool,
    ) -> Result<(Fetched, Option<Position>)> {
        let action = self.action("list")?;
        let cursor = match action.pagination.as_ref() {
            Some(Pagination::Page { first_page, .. }) => Cursor {
                offset: from.offset,
                page: Some(
                    from.cursor
                        .as_deref()
                        .and_then(|c| c.parse().ok())
                        .unwrap_or(*first_page),
                ),
                ..Cursor::default()
            },
            Some(Pagination::NextUrl { .. }) => Cursor {
                offset: from.offset,
                url: from.cursor.clone(),
                ..Cursor::default()
            },
            _ => Cursor {
                offset: from.offset,
                token: from.cursor.clone(),
                ..Cursor::default()
            },
        };
        let mut seen = std::mem::take(&mut *self.seen.lock().unwrap_or_else(|e| e.into_inner()));
        // Never more than the manifest's page size: an API may refuse a
        // larger limit, and import asks for what is left of its batch.
        let size = (limit.max(1) as u64).min(self.page_size("list"));
        let result = self.fetch("list", &cursor, size, &[], &mut seen, raw).await;
        *self.seen.lock().unwrap_or_else(|e| e.into_inner()) = seen;
        let mut page = result?;
        let next = page.next.take().map(|n| Position {
            offset: n.offset,
            cursor: n.token.or(n.url).or_else(|| n.page.map(|p| p.to_string())),
        });
        Ok((page, next))
    }

    pub(super) fn page_size(&self, name: &str) -> u64 {
        self.action(name)
            .ok()
            .and_then(|a| a.pagination.as_ref())
            .map_or(100, Pagination::page_size)
    }

    /// `getupdates`: every page from `since` (or the manifest's initial
    /// token), up to `limit` changes, and the token to continue from.
    pub(super) async fn updates(
        &self,
        since: Option<&str>,
        limit: Option<usize>,
    ) -> Result<Updates> {
        let action = self.action("getupdates")?.clone();
        let spec = action.since.clone();
        if spec.is_none() && since.is_some() {
            return Err(usage(format!(
                "{} has no \"since\", so getupdates cannot continue from a lastSync",
                self.at("getupdates", "since").trim_end_matches(".since")
            ))
            .hint(format!(
                "describe how the API takes the token in {} ({{\"param\": ...}}), or run getupdates without --last-sync",
                self.at("getupdates", "since")
            ))
            .into());
        }
        let mut extra = Vec::new();
        if let Some(s) = &spec {
            if let Some(token) = since.map(str::to_string).or_else(|| s.initial.clone()) {
                extra.push((s.param.clone(), token));
            }
        }
        let mut entries = Vec::new();
        let mut seen = Seen::new();
        let mut cursor = Cursor::default();
        let mut last_item_token: Option<String> = None;
        let size = self.page_size("getupdates");
        loop {
            let page = self
                .fetch("getupdates", &cursor, size, &extra, &mut seen, false)
                .await?;
            let item_pointer = spec.as_ref().and_then(|s| s.item_token.clone());
            for record in page.records {
                let Some(id) = record_id(&record, &self.id_field) else {
                    return Err(failed(format!(
                        "a record of getupdates has no \"{}\" (page {})",
                        self.id_field,
                        cursor.pages + 1
                    ))
                    .hint(format!("set \"idField\" in {}", self.builder.shown))
                    .into());
                };
                if let Some(p) = &item_pointer {
                    last_item_token = record
                        .get(p.trim_start_matches('/'))
                        .and_then(scalar)
                        .or_else(|| Value::Object(record.clone()).pointer(p).and_then(scalar));
                }
                let deleted = action
                    .deleted
                    .as_ref()
                    .is_some_and(|p| is_truthy(Value::Object(record.clone()).pointer(p)));
                entries.push(if deleted {
                    Change {
                        id,
                        kind: ChangeType::Delete,
                        value: None,
                    }
                } else {
                    Change {
                        id,
                        kind: ChangeType::Upsert,
                        value: Some(record),
                    }
                });
                if limit.is_some_and(|l| entries.len() >= l) && item_pointer.is_some() {
                    let next_sync = last_item_token.clone().unwrap_or_default();
                    return Ok(Updates { next_sync, entries });
                }
            }
            let page_token = spec
                .as_ref()
                .and_then(|s| s.next_token.as_ref())
                .and_then(|p| page.body.pointer(p))
                .and_then(scalar);
            let stop_here = limit.is_some_and(|l| entries.len() >= l);
            match page.next {
                Some(next) if !stop_here => cursor = next,
                _ => {
                    let next_sync = page_token
                        .or(last_item_token)
                        .or_else(|| since.map(str::to_string))
                        .unwrap_or_default();
                    return Ok(Updates { next_sync, entries });
                }
            }
        }
    }
}

fn ids(records: &[Record], field: &str) -> String {
    records
        .iter()
        .map(|r| record_id(r, field).unwrap_or_default())
        .collect::<Vec<_>>()
        .join(",")
}

fn is_truthy(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => !s.is_empty() && s != "false" && s != "0",
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
        _ => false,
    }
}
