//! Reading HubSpot contacts: the listing pages (`read_page`, by the
//! `after` cursor) and getupdates (a search by `lastmodifieddate`, with a
//! mark of the ids seen at the last instant so none is skipped or repeated).

use anyhow::Result;
use async_trait::async_trait;
use serde_json::Value;

use super::requests::{flatten, modified_ms, Mark, MarkToken, MAX_PAGE, MAX_SEARCH};
use super::HubSpot;
use crate::connector::saas::paging::{self, step, Next};
use crate::connector::saas::{records_in, scalar};
use crate::connector::{
    record_id, Change, ChangeFeed, ChangeType, Page, Position, RecordSource, Updates,
};
use crate::error::failed;

#[async_trait]
impl ChangeFeed for HubSpot {
    async fn get_updates(&self, since: Option<&str>, limit: Option<usize>) -> Result<Updates> {
        let since = since.map(Mark::parse).transpose()?;
        let mut mark = since.clone();
        let mut entries = Vec::new();
        loop {
            let want = limit.map_or(MAX_SEARCH, |l| l.saturating_sub(entries.len()));
            if want == 0 {
                break;
            }
            let skip = mark.as_ref().map_or(0, |m| m.seen.len());
            let ask = (want + skip).clamp(1, MAX_SEARCH);
            let req = self.api.search(mark.as_ref().map(|m| m.at), ask);
            let resp = self.engine.send(&req).await?;
            let body = resp.json(&req)?;
            let Some(results) = body.get("results").and_then(Value::as_array) else {
                return Err(failed(format!(
                    "POST {} answered no \"results\" array",
                    req.shown_url()
                ))
                .into());
            };
            let more = body.pointer("/paging/next").is_some();
            let mut taken = 0;
            let mut truncated = false;
            for r in results {
                let (Some(record), Some(at)) = (flatten(r), modified_ms(r)) else {
                    return Err(failed(format!(
                        "POST {} answered a contact without an id or a readable lastmodifieddate",
                        req.shown_url()
                    ))
                    .into());
                };
                let hs_id = record_id(&record, "id").unwrap_or_default();
                if mark.as_ref().is_some_and(|m| m.covers(at, &hs_id)) {
                    continue;
                }
                if taken == want {
                    truncated = true;
                    break;
                }
                mark = Some(Mark::advance(mark.take(), at, &hs_id));
                taken += 1;
                entries.push(Change {
                    id: record_id(&record, &self.api.id_property).unwrap_or(hs_id),
                    kind: ChangeType::Upsert,
                    value: Some(record),
                });
            }
            let end = !truncated && !more;
            if end {
                break;
            }
            if taken == 0 && !truncated {
                return Err(failed(format!(
                    "POST {} answered only contacts already read; stopping instead of looping",
                    req.shown_url()
                ))
                .hint("more than 200 contacts share one lastmodifieddate, which a search cannot page past")
                .into());
            }
        }
        // No contact at all and no lastSync: the next call starts from the
        // beginning of time, which misses nothing.
        let next_sync = mark
            .unwrap_or(Mark {
                at: 0,
                seen: Vec::new(),
            })
            .token();
        Ok(Updates { next_sync, entries })
    }
}

#[async_trait]
impl RecordSource for HubSpot {
    async fn read_page(&self, from: &Position, limit: usize) -> Result<Page> {
        paging::from_checkpoint("hubspot", "reading", from, "its listing pages with HubSpot's after cursor, not by position: import from the beginning, or --resume a checkpoint")?;
        let req = self
            .api
            .list(limit.clamp(1, MAX_PAGE), from.cursor.as_deref());
        let resp = self.engine.send(&req).await?;
        let body = resp.json(&req)?;
        let records = records_in(&req, &body, "results", "contact", flatten)?;
        // `paging.next` is the "more" signal and always carries `after`
        // (the spec's NextPage requires it): a next page without a usable
        // cursor would otherwise end the listing early, silently.
        let after = body
            .pointer("/paging/next/after")
            .and_then(scalar)
            .filter(|s| !s.is_empty());
        let next = match after {
            Some(a) => Next::Cursor(a),
            None if body.pointer("/paging/next").is_some_and(|n| !n.is_null()) => {
                Next::Missing("a paging.next.after cursor")
            }
            None => Next::End,
        };
        let after = step(
            &req,
            from.cursor.as_deref(),
            records.len(),
            "contacts",
            next,
        )?;
        Ok(paging::page(from, records, after, None))
    }
}
