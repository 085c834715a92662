//! Import from a code connector: pages through `getUpdates` (lastSync null,
//! then each `nextSync`) until a call answers no entries or the token it
//! was given. A module decides its page size, and import its batch size, so
//! a page is handed out in parts: the position is the token that produced
//! the page and how many of its records came before, which a resumed run
//! reads by asking for that token again and skipping them.

use anyhow::Result;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::code::Code;
use crate::connector::{ChangeType, Page, Position, Record, RecordSource};
use crate::error::usage;

/// Where import stands in a module's listing (a checkpoint's cursor).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Mark {
    /// The token the page was asked with (`null` for the first), as the
    /// module answered it: a number stays a number.
    #[serde(rename = "lastSync")]
    last_sync: Option<Value>,
    /// How many of that page's records were read already.
    skip: usize,
}

impl Mark {
    fn parse(cursor: Option<&str>) -> Result<Mark> {
        match cursor {
            None => Ok(Mark::default()),
            Some(c) => serde_json::from_str(c).map_err(|e| {
                usage(format!(
                    "the checkpoint's position {c:?} is not a code connector's ({e})"
                ))
                .hint("import from the beginning, without --resume")
                .into()
            }),
        }
    }

    fn cursor(&self) -> String {
        json!(self).to_string()
    }
}

/// One `getUpdates` page as import reads it.
pub struct Fetched {
    /// The token it was asked with.
    asked: Option<Value>,
    records: Vec<Record>,
    /// The token after it; `None` when the listing ends with it.
    next: Option<Value>,
}

impl Code {
    /// The page `getUpdates(last_sync)` answers, from the cache when it is
    /// the one read last. A page of deletions only holds nothing to import,
    /// so the next one is read instead (import never meets an empty page
    /// that is not the end); its token is the page's.
    async fn fetch(&self, last_sync: Option<Value>) -> Result<Fetched> {
        if let Ok(mut cached) = self.page.lock() {
            if let Some(page) = cached.take_if(|p| p.asked == last_sync) {
                return Ok(page);
            }
        }
        let mut asked = last_sync;
        loop {
            let answer = self
                .call("getUpdates", "read pages", json!({ "lastSync": asked }))
                .await?;
            // The token goes back as the module gave it (SyncPenguin hands
            // a module its own nextSync).
            let token = answer.get("nextSync").cloned().filter(|t| !t.is_null());
            let updates = self.updates(answer)?;
            let ends = updates.entries.is_empty()
                || updates.next_sync.is_empty()
                || token.is_none()
                || token == asked;
            let records: Vec<Record> = updates
                .entries
                .into_iter()
                .filter(|c| c.kind != ChangeType::Delete)
                .filter_map(|c| c.value)
                .collect();
            if records.is_empty() && !ends {
                asked = token;
                continue;
            }
            return Ok(Fetched {
                asked,
                records,
                next: if ends { None } else { token },
            });
        }
    }
}

#[async_trait]
impl RecordSource for Code {
    async fn read_page(&self, from: &Position, limit: usize) -> Result<Page> {
        crate::connector::saas::paging::from_checkpoint(
            self.spec.code,
            "reading",
            from,
            "a module pages with its own nextSync token: import from the beginning, or --resume a checkpoint",
        )?;
        let mark = Mark::parse(from.cursor.as_deref())?;
        let mut page = self.fetch(mark.last_sync).await?;
        let len = page.records.len();
        let start = mark.skip.min(len);
        let end = start.saturating_add(limit.max(1)).min(len);
        // The usual case, a page within the batch, moves its records out.
        let records = if start == 0 && end == len {
            std::mem::take(&mut page.records)
        } else {
            page.records[start..end].to_vec()
        };
        let offset = from.offset + records.len() as u64;
        let next = if end < len {
            // The rest of this page, next time.
            let cursor = Mark {
                last_sync: page.asked.clone(),
                skip: end,
            }
            .cursor();
            if let Ok(mut cached) = self.page.lock() {
                *cached = Some(page);
            }
            Some(Position {
                offset,
                cursor: Some(cursor),
            })
        } else {
            page.next.map(|token| Position {
                offset,
                cursor: Some(
                    Mark {
                        last_sync: Some(token),
                        skip: 0,
                    }
                    .cursor(),
                ),
            })
        };
        Ok(Page {
            records,
            next,
            total: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mark_reads_back_what_it_wrote() {
        let m = Mark {
            last_sync: Some("102".into()),
            skip: 30,
        };
        assert_eq!(Mark::parse(Some(&m.cursor())).unwrap(), m);
        let n = Mark {
            last_sync: Some(json!(1000)),
            skip: 0,
        };
        assert_eq!(Mark::parse(Some(&n.cursor())).unwrap(), n);
        assert_eq!(Mark::parse(None).unwrap(), Mark::default());
        assert!(Mark::parse(Some("102")).is_err());
    }
}
