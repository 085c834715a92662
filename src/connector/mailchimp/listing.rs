//! Reading an audience's members: the listing pages (`read_page`, by
//! `offset` to `total_items`) and getupdates (the same listing since a
//! `last_changed` time, oldest change first, with a mark of the ids read at
//! the last second); and the listings of the audience's merge fields and of
//! the account's audiences, by the same offsets.

use anyhow::Result;
use async_trait::async_trait;
use serde_json::Value;

use super::requests::{Mark, MarkToken, MAX_PAGE};
use super::{hash_of, Mailchimp};
use crate::connector::mark::parse_time;
use crate::connector::saas::paging::{step, Next};
use crate::connector::saas::records_in;
use crate::connector::{
    Change, ChangeFeed, ChangeType, Choice, FieldSpec, FieldType, Page, Position, Record,
    RecordSource, Updates,
};
use crate::error::failed;
use crate::http::RequestSpec;

/// One page of members, and the total the listing says it has.
struct Listed {
    records: Vec<Record>,
    total: u64,
}

/// Read `{"members": [...], "total_items": n}`; every member must have an
/// id (or an email to hash).
fn listed(req: &RequestSpec, body: &Value) -> Result<Listed> {
    let records = records_in(req, body, "members", "member", |item| {
        let mut m = item.as_object()?.clone();
        let id = hash_of(&m)?;
        m.insert("id".into(), Value::String(id));
        Some(m)
    })?;
    let Some(total) = body.get("total_items").and_then(Value::as_u64) else {
        return Err(failed(format!(
            "{} {} answered no total_items",
            req.method,
            req.shown_url()
        ))
        .into());
    };
    Ok(Listed { records, total })
}

/// The offset after the page `req` answered at `offset`, or `None` at the
/// end: an empty page short of the total is an error, never a loop.
fn next_offset(req: &RequestSpec, offset: u64, page: &Listed) -> Result<Option<u64>> {
    let after = offset + page.records.len() as u64;
    let next = if after < page.total {
        Next::Cursor(after.to_string())
    } else {
        Next::End
    };
    // An offset only moves forward on a page with members, so the one
    // way to loop is an empty page that claims more, which `step` refuses.
    Ok(step(req, None, page.records.len(), "members", next)?.map(|_| after))
}

#[async_trait]
impl RecordSource for Mailchimp {
    fn reads_at_any_offset(&self) -> bool {
        true
    }

    async fn read_page(&self, from: &Position, limit: usize) -> Result<Page> {
        let req = self.api.members(limit.clamp(1, MAX_PAGE), from.offset);
        let resp = self.engine.send(&req).await?;
        let page = listed(&req, &resp.json(&req)?)?;
        let next = next_offset(&req, from.offset, &page)?;
        Ok(Page {
            next: next.map(Position::at_offset),
            total: Some(page.total),
            records: page.records,
        })
    }
}

#[async_trait]
impl ChangeFeed for Mailchimp {
    async fn get_updates(&self, since: Option<&str>, limit: Option<usize>) -> Result<Updates> {
        let since = since.map(Mark::parse).transpose()?;
        let mut asked = since.as_ref().map(Mark::since);
        let mut mark = since.clone();
        let mut entries = Vec::new();
        let mut offset = 0u64;
        'pages: loop {
            let req = self.api.changes(MAX_PAGE, offset, asked.as_deref());
            let resp = self.engine.send(&req).await?;
            let page = listed(&req, &resp.json(&req)?)?;
            let mut fresh = 0;
            for m in &page.records {
                let id = m["id"].as_str().unwrap_or_default().to_string();
                let at = m
                    .get("last_changed")
                    .and_then(Value::as_str)
                    .and_then(parse_time);
                let Some(at) = at else {
                    return Err(failed(format!(
                        "GET {} answered member {id} without a last_changed time",
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
                fresh += 1;
                mark = Some(Mark::advance(mark.take(), at, &id));
                let archived = m.get("status").and_then(Value::as_str) == Some("archived");
                entries.push(Change {
                    id,
                    kind: if archived {
                        ChangeType::Delete
                    } else {
                        ChangeType::Upsert
                    },
                    value: (!archived).then(|| m.clone()),
                });
            }
            let Some(next) = next_offset(&req, offset, &page)? else {
                break;
            };
            // A member changed while this runs moves to the end of the
            // order, and pages by offset would then skip one: so the next
            // page is asked again from the mark, and only a page that gave
            // nothing new (members sharing one second) moves the offset.
            match (&mark, fresh) {
                (Some(m), 1..) => {
                    asked = Some(m.since());
                    offset = 0;
                }
                _ => offset = next,
            }
        }
        let next_sync = mark.map_or_else(|| "1970-01-01T00:00:00Z".to_string(), |m| m.token());
        Ok(Updates { next_sync, entries })
    }
}

impl Mailchimp {
    /// Every item of the listing `req_at(offset)` answers under `key`, page
    /// by page to its `total_items`.
    async fn every(&self, key: &str, req_at: impl Fn(u64) -> RequestSpec) -> Result<Vec<Value>> {
        let mut items = Vec::new();
        loop {
            let req = req_at(items.len() as u64);
            let body = self.engine.send(&req).await?.json(&req)?;
            let (Some(Value::Array(page)), Some(total)) = (
                body.get(key),
                body.get("total_items").and_then(Value::as_u64),
            ) else {
                return Err(failed(format!(
                    "GET {} answered no \"{key}\" array and total_items",
                    req.shown_url()
                ))
                .into());
            };
            let n = page.len();
            items.extend(page.iter().cloned());
            let next = if (items.len() as u64) < total {
                Next::Cursor(items.len().to_string())
            } else {
                Next::End
            };
            if step(&req, None, n, key, next)?.is_none() {
                return Ok(items);
            }
        }
    }

    /// The audience's merge fields as fields a profile may carry, by tag.
    /// `EMAIL` is left out: `email_address` carries it.
    pub(super) async fn merge_fields(&self) -> Result<Vec<FieldSpec>> {
        let listed = self
            .every("merge_fields", |offset| self.api.merge_fields(offset))
            .await?;
        Ok(listed
            .iter()
            .filter_map(|f| {
                let tag = f.get("tag").and_then(Value::as_str)?;
                if tag == "EMAIL" {
                    return None;
                }
                let kind = f.get("type").and_then(Value::as_str).unwrap_or("text");
                let name = f.get("name").and_then(Value::as_str).unwrap_or(tag);
                // Mailchimp refuses a number field that is not a number;
                // the other types take text in their own formats.
                let field_type = if kind == "number" {
                    FieldType::Number
                } else {
                    FieldType::Any
                };
                let mut field = FieldSpec::named(
                    tag.to_string(),
                    field_type,
                    format!("{name} ({kind} merge field)"),
                );
                if f.get("required").and_then(Value::as_bool) == Some(true) {
                    field = field.required();
                }
                Some(field)
            })
            .collect())
    }

    /// The account's audiences, for `listId`.
    pub(super) async fn audiences(&self) -> Result<Vec<Choice>> {
        let listed = self
            .every("lists", |offset| self.api.audiences(offset))
            .await?;
        Ok(listed
            .iter()
            .filter_map(|l| {
                Some(Choice {
                    value: l.get("id").and_then(Value::as_str)?.to_string(),
                    label: l
                        .get("name")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                })
            })
            .collect())
    }
}
