//! Reading Klaviyo profiles: the listing pages (`read_page`, by the
//! `links.next` cursor) and getupdates (by updated time, with a `TIME|ids`
//! mark so profiles updated in the same instant are neither skipped nor
//! repeated).

use anyhow::Result;
use async_trait::async_trait;
use serde_json::Value;

use super::requests::{self, flatten, next_link, parse_time, Mark, MarkToken, MAX_PAGE};
use super::Klaviyo;
use crate::connector::saas::paging::{self, step, Next};
use crate::connector::saas::records_in;
use crate::connector::{
    record_id, Change, ChangeFeed, ChangeType, Page, Position, Record, RecordSource, Updates,
};
use crate::error::failed;
use crate::http::redact::redact_url;
use crate::http::RequestSpec;

/// One page of profiles and the path of the next one.
struct Listed {
    records: Vec<Record>,
    next: Option<String>,
}

impl Klaviyo {
    /// Read one page of profiles; `size` rewrites `page[size]` of the next link.
    async fn page(&self, req: &RequestSpec, size: Option<usize>) -> Result<Listed> {
        let body = self.engine.send(req).await?.json(req)?;
        let records = records_in(req, &body, "data", "profile", flatten)?;
        let next = next_link(&body, size).map_err(|link| {
            failed(format!(
                "GET {} answered a next link ferry cannot read: {}",
                req.shown_url(),
                redact_url(&link)
            ))
        })?;
        if let Some(n) = &next {
            let url = Next::Url(self.api.follow(n).url);
            step(req, Some(&req.url), records.len(), "profiles", url)?;
        }
        Ok(Listed { records, next })
    }

    /// The record id of a profile read from Klaviyo: its key, else its id.
    fn record_key(&self, r: &Record) -> String {
        record_id(r, &self.key)
            .or_else(|| record_id(r, "id"))
            .unwrap_or_default()
    }
}

#[async_trait]
impl ChangeFeed for Klaviyo {
    async fn get_updates(&self, since: Option<&str>, limit: Option<usize>) -> Result<Updates> {
        let since = since.map(Mark::parse).transpose()?;
        let mut mark = since.clone();
        let mut entries = Vec::new();
        let mut query = vec![("sort", "updated".to_string())];
        if let Some(m) = &since {
            query.insert(0, ("filter", m.filter()));
        }
        query.push(("page[size]", MAX_PAGE.to_string()));
        let mut req = self.api.list_profiles(&query);
        // Every URL asked in this call, with the page it was asked for.
        let mut asked = paging::Seen::new();
        'pages: for n in 0u64.. {
            if !paging::first_time(&mut asked, req.url.clone(), n) {
                return Err(failed(format!(
                    "GET {} was answered as a next page twice; stopping instead of looping",
                    req.shown_url()
                ))
                .into());
            }
            let page = self.page(&req, None).await?;
            for r in page.records {
                if limit.is_some_and(|l| entries.len() >= l) {
                    break 'pages;
                }
                let id = record_id(&r, "id").unwrap_or_default();
                let at = r
                    .get("updated")
                    .and_then(Value::as_str)
                    .and_then(parse_time)
                    .ok_or_else(|| {
                        failed(format!(
                            "GET {} answered profile {id} without a readable updated time",
                            req.shown_url()
                        ))
                    })?;
                if mark.as_ref().is_some_and(|m| m.covers(at, &id)) {
                    continue;
                }
                mark = Some(Mark::advance(mark.take(), at, &id));
                entries.push(Change {
                    id: self.record_key(&r),
                    kind: ChangeType::Upsert,
                    value: Some(r),
                });
            }
            match page.next {
                Some(next) if limit.is_none_or(|l| entries.len() < l) => {
                    req = self.api.follow(&next)
                }
                _ => break,
            }
        }
        let next_sync = mark.map(|m| m.token()).unwrap_or_default();
        Ok(Updates { next_sync, entries })
    }
}

#[async_trait]
impl RecordSource for Klaviyo {
    async fn read_page(&self, from: &Position, limit: usize) -> Result<Page> {
        paging::from_checkpoint("klaviyo", "reading", from, "Klaviyo pages with a cursor, not by position: import from the beginning, or --resume a checkpoint")?;
        let size = limit.clamp(1, MAX_PAGE);
        let req = match &from.cursor {
            // The batch size may differ from the run that saved the cursor.
            Some(c) => self
                .api
                .follow(&requests::link_path(c, Some(size)).unwrap_or_else(|| c.clone())),
            None => self.api.list_profiles(&[("page[size]", size.to_string())]),
        };
        let page = self.page(&req, Some(size)).await?;
        if page.records.len() > limit {
            return Err(failed(format!(
                "GET {} answered {} profiles when asked for {limit}",
                req.shown_url(),
                page.records.len()
            ))
            .into());
        }
        if let Some(c) = &page.next {
            let after = from.offset + page.records.len() as u64;
            let fresh = self
                .cursors
                .lock()
                .map(|mut seen| paging::first_time(&mut seen, c.clone(), after))
                .unwrap_or(true);
            if !fresh {
                return Err(failed(format!(
                    "GET {} answered a next page that was read before; stopping instead of looping",
                    req.shown_url()
                ))
                .into());
            }
        }
        Ok(paging::page(from, page.records, page.next, None))
    }
}
