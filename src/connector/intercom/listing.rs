//! Reading Intercom contacts: the listing pages (`read_page`, by the
//! `starting_after` cursor) and getupdates (a search by `updated_at`,
//! ascending, with a mark of the ids seen at the last instant), and the
//! page reader both share with the key lookups.

use anyhow::Result;
use async_trait::async_trait;
use serde_json::Value;

use super::requests::{updates_query, Mark, MarkToken, MAX_PAGE};
use super::Intercom;
use crate::connector::saas::paging::{self, step, Next};
use crate::connector::saas::records_in;
use crate::connector::{
    record_id, Change, ChangeFeed, ChangeType, Page, Position, Record, RecordSource, Updates,
};
use crate::error::failed;
use crate::http::RequestSpec;

/// One page of a list or search answer.
pub(super) struct Listed {
    pub(super) records: Vec<Record>,
    next: Option<String>,
    total: Option<u64>,
}

/// Read `{"data": [...], "pages": {"next": {"starting_after"}}, "total_count"}`;
/// every contact must have an id.
pub(super) fn listed(req: &RequestSpec, body: &Value) -> Result<Listed> {
    let records = records_in(req, body, "data", "contact", |item| {
        item.as_object()
            .filter(|c| record_id(c, "id").is_some())
            .cloned()
    })?;
    let next = body
        .pointer("/pages/next/starting_after")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    Ok(Listed {
        records,
        next,
        total: body.get("total_count").and_then(Value::as_u64),
    })
}

/// The cursor of the page after `page` (asked at `given`), checked by
/// [`step`]; a repeated cursor keeps the wording Intercom users have met.
fn next_page(req: &RequestSpec, page: &Listed, given: Option<&str>) -> Result<Option<String>> {
    if page.next.is_some() && page.next.as_deref() == given {
        return Err(failed(format!(
            "{} {} answered the cursor it was given; stopping instead of looping",
            req.method,
            req.shown_url()
        ))
        .into());
    }
    step(
        req,
        given,
        page.records.len(),
        "contacts",
        Next::cursor(page.next.clone()),
    )
}

#[async_trait]
impl ChangeFeed for Intercom {
    async fn get_updates(&self, since: Option<&str>, limit: Option<usize>) -> Result<Updates> {
        let since = since.map(Mark::parse).transpose()?;
        let query = updates_query(since.as_ref());
        let mut mark = since.clone();
        let mut entries = Vec::new();
        let mut cursor: Option<String> = None;
        let mut pages = 0u64;
        // Every cursor followed in this call, with the page it led to: one
        // that comes back (A, B, A) would loop forever, since its contacts
        // are all skipped as read.
        let mut followed = paging::Seen::new();
        'pages: loop {
            let req = self.api.search(
                query.clone(),
                MAX_PAGE,
                cursor.as_deref(),
                Some(("updated_at", "ascending")),
            );
            let resp = self.engine.send(&req).await?;
            let page = listed(&req, &resp.json(&req)?)?;
            for c in &page.records {
                let id = record_id(c, "id").unwrap_or_default();
                let Some(at) = c.get("updated_at").and_then(Value::as_i64) else {
                    return Err(failed(format!(
                        "POST {} answered contact {id} without an updated_at",
                        req.shown_url()
                    ))
                    .into());
                };
                if mark.as_ref().is_some_and(|m| m.covers(at, &id)) {
                    continue;
                }
                if limit.is_some_and(|l| entries.len() >= l) {
                    break 'pages;
                }
                mark = Some(Mark::advance(mark.take(), at, &id));
                entries.push(Change {
                    id,
                    kind: ChangeType::Upsert,
                    value: Some(c.clone()),
                });
            }
            match next_page(&req, &page, cursor.as_deref())? {
                Some(next) if !paging::first_time(&mut followed, next.clone(), pages) => {
                    return Err(failed(format!(
                        "POST {} answered a cursor it had already given; stopping instead of looping",
                        req.shown_url()
                    ))
                    .into());
                }
                Some(next) => {
                    pages += 1;
                    cursor = Some(next);
                }
                None => break,
            }
        }
        let next_sync = mark.map_or_else(|| "0".to_string(), |m| m.token());
        Ok(Updates { next_sync, entries })
    }
}

#[async_trait]
impl RecordSource for Intercom {
    async fn read_page(&self, from: &Position, limit: usize) -> Result<Page> {
        paging::from_checkpoint("intercom", "reading", from, "its listing pages with a cursor that cannot jump ahead: import from the beginning, or --resume a checkpoint")?;
        let req = self.api.list(limit, from.cursor.as_deref());
        let resp = self.engine.send(&req).await?;
        let page = listed(&req, &resp.json(&req)?)?;
        let next = next_page(&req, &page, from.cursor.as_deref())?;
        let total = page.total.filter(|_| from.cursor.is_none());
        Ok(paging::page(from, page.records, next, total))
    }
}
