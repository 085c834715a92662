//! Reading Zendesk users: the listing pages (`read_page`, `GET /users` with
//! cursor pagination, `page[size]` up to 100, on while `meta.has_more`,
//! by `meta.after_cursor`) and getupdates (the incremental user export,
//! `GET /incremental/users/cursor`, to `end_of_stream`). A page that says
//! there is more but gives no cursor, the cursor it was asked with, an
//! empty page that is not the end, or a cursor met before elsewhere in the
//! listing is an error, never a loop.

use anyhow::Result;
use async_trait::async_trait;
use serde_json::Value;

use super::requests::{Position as SyncPosition, Start, MAX_PAGE};
use super::Zendesk;
use crate::connector::saas::paging::{self, step, Next};
use crate::connector::saas::{records_in, scalar};
use crate::connector::{
    Change, ChangeFeed, ChangeType, Page, Position, Record, RecordSource, Updates,
};
use crate::error::failed;
use crate::http::RequestSpec;

/// A user object as a record: its `id` as a string.
pub(super) fn user_record(item: &Value) -> Option<Record> {
    let mut m = item.as_object()?.clone();
    let id = m.get("id").and_then(scalar)?;
    m.insert("id".into(), Value::String(id));
    Some(m)
}

/// Read a listing's `users`; every user must have an id.
pub(super) fn users(req: &RequestSpec, body: &Value) -> Result<Vec<Record>> {
    records_in(req, body, "users", "user", user_record)
}

/// The cursor after a page of the list: `meta.after_cursor` while
/// `meta.has_more` is true [PAG].
pub(super) fn list_next(body: &Value) -> Next {
    if body.pointer("/meta/has_more").and_then(Value::as_bool) != Some(true) {
        return Next::End;
    }
    match body.pointer("/meta/after_cursor").and_then(Value::as_str) {
        Some(c) if !c.is_empty() => Next::Cursor(c.to_string()),
        _ => Next::Missing("a meta.after_cursor"),
    }
}

#[async_trait]
impl RecordSource for Zendesk {
    async fn read_page(&self, from: &Position, limit: usize) -> Result<Page> {
        paging::from_checkpoint("zendesk", "reading", from, "its listing pages with a cursor that cannot jump ahead: import from the beginning, or --resume a checkpoint")?;
        let req = self
            .api
            .list(limit.clamp(1, MAX_PAGE), from.cursor.as_deref());
        let resp = self.engine.send(&req).await?;
        let body = resp.json(&req)?;
        let records = users(&req, &body)?;
        let next = step(
            &req,
            from.cursor.as_deref(),
            records.len(),
            "users",
            list_next(&body),
        )?;
        if let Some(c) = &next {
            let offset = from.offset + records.len() as u64;
            let fresh = self
                .cursors
                .lock()
                .map(|mut seen| paging::first_time(&mut seen, c.clone(), offset))
                .unwrap_or(true);
            if !fresh {
                return Err(failed(format!(
                    "GET {} answered a cursor it had already given for another page; stopping instead of looping",
                    req.shown_url()
                ))
                .into());
            }
        }
        Ok(paging::page(from, records, next, None))
    }
}

#[async_trait]
impl ChangeFeed for Zendesk {
    /// The incremental export from `start_time` (the token's time, or 0 for
    /// an initial sync) or from a cursor, to `end_of_stream`. A user whose
    /// `active` is false was deleted: reported as a delete.
    async fn get_updates(&self, since: Option<&str>, limit: Option<usize>) -> Result<Updates> {
        let mut at = match since {
            Some(token) => SyncPosition::parse(token)?,
            None => SyncPosition {
                from: Start::Time(0),
                seen: Vec::new(),
            },
        };
        let mut entries = Vec::new();
        let mut followed = paging::Seen::new();
        let mut pages = 0u64;
        loop {
            let req = self.api.incremental(&at.from);
            let resp = self.engine.send(&req).await?;
            let body = resp.json(&req)?;
            let records = users(&req, &body)?;
            let mut read = std::mem::take(&mut at.seen);
            for u in &records {
                let id = u["id"].as_str().unwrap_or_default().to_string();
                if read.contains(&id) {
                    continue;
                }
                if limit.is_some_and(|l| entries.len() >= l) {
                    // Stop inside the page: the next call asks for it again
                    // and skips the users read from it.
                    at.seen = read;
                    return Ok(Updates {
                        next_sync: at.token(),
                        entries,
                    });
                }
                read.push(id.clone());
                let deleted = u.get("active").and_then(Value::as_bool) == Some(false);
                entries.push(Change {
                    id,
                    kind: if deleted {
                        ChangeType::Delete
                    } else {
                        ChangeType::Upsert
                    },
                    value: (!deleted).then(|| u.clone()),
                });
            }
            let cursor = body
                .get("after_cursor")
                .and_then(Value::as_str)
                .filter(|c| !c.is_empty())
                .map(str::to_string);
            let end = body.get("end_of_stream").and_then(Value::as_bool) == Some(true);
            if end {
                // The next run goes on from the last cursor; without one
                // (an empty export), from where this one started.
                let next = match cursor {
                    Some(c) => SyncPosition {
                        from: Start::Cursor(c),
                        seen: Vec::new(),
                    },
                    None => SyncPosition {
                        from: at.from,
                        seen: read,
                    },
                };
                return Ok(Updates {
                    next_sync: next.token(),
                    entries,
                });
            }
            let given = match &at.from {
                Start::Cursor(c) => Some(c.as_str()),
                Start::Time(_) => None,
            };
            let next = step(
                &req,
                given,
                records.len(),
                "users",
                cursor.map_or(Next::Missing("an after_cursor"), Next::Cursor),
            )?
            .ok_or_else(|| failed(format!("GET {} answered no next page", req.shown_url())))?;
            pages += 1;
            if !paging::first_time(&mut followed, next.clone(), pages) {
                return Err(failed(format!(
                    "GET {} answered a cursor it had already given; stopping instead of looping",
                    req.shown_url()
                ))
                .into());
            }
            at = SyncPosition {
                from: Start::Cursor(next),
                seen: Vec::new(),
            };
        }
    }
}
