//! Batch upsert through Klaviyo's bulk profile import job
//! (docs/connectors/klaviyo.md §2.8): `POST /api/profile-bulk-import-jobs`
//! with up to 10,000 profiles and 5 MB answers a job id; the job is polled
//! at `GET /api/profile-bulk-import-jobs/{id}` until its `status` is
//! `complete` or `cancelled`. Klaviyo documents no polling interval: ferry
//! waits `pollIntervalMs` (default 1 s) before the first poll and doubles
//! the wait up to 10 s, for at most `maxPolls` polls (default 60).
//!
//! A complete job whose `failed_count` is not 0 (it is nullable) is asked
//! for its errors (`GET …/import-errors`, 100 a page, following
//! `links.next`); each error
//! carries the profile it refused in `original_payload`, matched back to the
//! input by the key (`idField`). The exact shape of `original_payload` is not
//! documented, so the key is looked for in `attributes`, at its top level and
//! under `data.attributes`. A job that reports more failures than ferry can
//! match, or that was cancelled, fails the whole batch rather than guess:
//! the import keeps its checkpoint before it, and re-sending is safe because
//! the job upserts.

use std::collections::{HashMap, HashSet};

use anyhow::Result;
use serde_json::Value;

use super::requests::{
    next_link, profile_data, shape, Api, MAX_BULK, MAX_BULK_BYTES, MAX_PAGE, MAX_PROFILE_BYTES,
};
use crate::connector::saas::batch::Slots;
use crate::connector::saas::string_at;
use crate::connector::{record_id, Record, UpsertOutcome};
use crate::error::failed;
use crate::http::{Engine, Polled, RequestSpec};

/// Pages of import errors read before giving up on a looping cursor.
const MAX_ERROR_PAGES: usize = 200;

pub use crate::http::Polling;

/// A record ready for the job, or why it cannot go.
pub enum Prepared {
    Send { key: String, data: Value },
    Refuse { key: Option<String>, reason: String },
}

/// Shape one record for the job: it needs its key, and must fit in 100 KB.
pub fn prepare(record: &Record, key_field: &str) -> Prepared {
    let Some(key) = record_id(record, key_field) else {
        return Prepared::Refuse {
            key: None,
            reason: format!("missing {key_field}"),
        };
    };
    match shape(record, false) {
        Err(u) => Prepared::Refuse {
            key: Some(key),
            reason: u.0,
        },
        Ok(shaped) => {
            let data = profile_data(None, &shaped);
            let size = data.to_string().len();
            if size > MAX_PROFILE_BYTES {
                return Prepared::Refuse {
                    key: Some(key),
                    reason: format!(
                        "the profile takes {size} bytes, more than the 100 KB Klaviyo accepts per profile"
                    ),
                };
            }
            Prepared::Send { key, data }
        }
    }
}

/// Split profile bodies into jobs of at most 10,000 profiles and about 5 MB.
pub fn chunks(datas: Vec<Value>) -> Vec<Vec<Value>> {
    // Room for the envelope around the profiles.
    let budget = MAX_BULK_BYTES - 1_000;
    let mut out: Vec<Vec<Value>> = Vec::new();
    let mut current = Vec::new();
    let mut bytes = 0;
    for d in datas {
        let size = d.to_string().len() + 1;
        if !current.is_empty() && (current.len() == MAX_BULK || bytes + size > budget) {
            out.push(std::mem::take(&mut current));
            bytes = 0;
        }
        bytes += size;
        current.push(d);
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// Each record of a batch prepared: its slot, and the profiles to send.
pub fn prepare_all(records: &[Record], key_field: &str) -> (Slots, Vec<Value>) {
    let mut slots = Slots::with_capacity(records.len());
    let mut datas = Vec::new();
    for record in records {
        match prepare(record, key_field) {
            Prepared::Send { key, data } => {
                datas.push(data);
                slots.send(key);
            }
            Prepared::Refuse { key, reason } => slots.refuse(key, reason),
        }
    }
    (slots, datas)
}

/// The requests a batch sends first (one per job), for previews.
pub fn requests(api: &Api, records: &[Record], key_field: &str) -> Vec<RequestSpec> {
    let (_, datas) = prepare_all(records, key_field);
    chunks(datas)
        .into_iter()
        .map(|c| api.bulk_import(c))
        .collect()
}

/// Upsert `records` through bulk jobs; one outcome per record, in order.
pub async fn upsert(
    engine: &Engine,
    api: &Api,
    polling: Polling,
    key_field: &str,
    records: &[Record],
) -> Result<Vec<UpsertOutcome>> {
    let (slots, datas) = prepare_all(records, key_field);
    let mut refused: HashMap<String, String> = HashMap::new();
    for chunk in chunks(datas) {
        refused.extend(run_job(engine, api, polling, key_field, chunk).await?);
    }
    Ok(slots.merge_refused(&refused))
}

/// One job: create it, follow it, and answer the refused keys with reasons.
async fn run_job(
    engine: &Engine,
    api: &Api,
    polling: Polling,
    key_field: &str,
    datas: Vec<Value>,
) -> Result<HashMap<String, String>> {
    let sent = datas.len();
    let sent_keys: Vec<String> = datas
        .iter()
        .filter_map(|d| d.pointer(&format!("/attributes/{key_field}")))
        .filter_map(|v| match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
        .collect();
    let sent_set: HashSet<&str> = sent_keys.iter().map(String::as_str).collect();
    let req = api.bulk_import(datas);
    let resp = engine.send(&req).await?;
    let body = resp.json(&req)?;
    let job = string_at(&req, &body, "/data/id", "job id (data.id)")?;
    let state = follow(engine, api, polling, &job).await?;
    let attr = |k: &str| state.pointer(&format!("/data/attributes/{k}")).cloned();
    let status = attr("status")
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    if status == "cancelled" {
        return Err(failed(format!(
            "Klaviyo bulk import job {job} was cancelled ({sent} profile{})",
            if sent == 1 { "" } else { "s" }
        ))
        .hint("nothing tells which profiles were written; resume the import to send the batch again (the job upserts)")
        .into());
    }
    // `failed_count` is nullable: only a 0 says there is nothing to read;
    // a null one is not taken for "all written" without asking.
    let failed_count = attr("failed_count").and_then(|v| v.as_u64());
    let mut refused = HashMap::new();
    if failed_count == Some(0) {
        return Ok(refused);
    }
    let failed_count = failed_count.unwrap_or(0);
    let mut req = api.bulk_errors(&job);
    let mut pages = 0;
    loop {
        pages += 1;
        let resp = engine.send(&req).await?;
        let page = resp.json(&req)?;
        if let Some(Value::Array(errors)) = page.get("data") {
            for e in errors {
                let a = e.get("attributes").cloned().unwrap_or(Value::Null);
                let Some(key) = payload_key(a.get("original_payload"), key_field) else {
                    continue;
                };
                if !sent_set.contains(key.as_str()) {
                    continue;
                }
                let text = |k: &str| {
                    a.get(k)
                        .and_then(Value::as_str)
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                };
                let reason = match (text("title"), text("detail")) {
                    (Some(t), Some(d)) => format!("{t}: {d}"),
                    (t, d) => t.or(d).unwrap_or_else(|| "refused by Klaviyo".into()),
                };
                refused.insert(key, reason);
            }
        }
        // Keep 100 a page even if the link leaves the size out (the default
        // is 20), so MAX_ERROR_PAGES covers every error of a full job.
        let next = next_link(&page, Some(MAX_PAGE)).map_err(|link| {
            failed(format!(
                "GET {} answered a next link ferry cannot read: {link}",
                req.shown_url()
            ))
        })?;
        match next {
            Some(next) if pages < MAX_ERROR_PAGES => {
                let next = api.follow(&next);
                if next.url == req.url {
                    break;
                }
                req = next;
            }
            _ => break,
        }
    }
    // Count the batch's profiles the errors name, not distinct keys: the
    // same key sent twice and refused twice is two of `failed_count`.
    let matched = sent_keys
        .iter()
        .filter(|k| refused.contains_key(*k))
        .count();
    if (matched as u64) < failed_count {
        return Err(failed(format!(
            "Klaviyo bulk import job {job} reports {failed_count} failed profiles but ferry could match {matched} of them to the batch"
        ))
        .hint("resume the import to send the batch again (the job upserts); run with -vv to see the import errors")
        .into());
    }
    Ok(refused)
}

/// The key value inside an import error's `original_payload`.
fn payload_key(payload: Option<&Value>, key_field: &str) -> Option<String> {
    let p = payload?;
    [
        format!("/attributes/{key_field}"),
        format!("/{key_field}"),
        format!("/data/attributes/{key_field}"),
    ]
    .iter()
    .find_map(|ptr| match p.pointer(ptr) {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    })
}

/// Poll the job until it is `complete` or `cancelled`; answer its body.
async fn follow(engine: &Engine, api: &Api, polling: Polling, job: &str) -> Result<Value> {
    let req = api.bulk_job(job);
    let done = |body: &Value| {
        matches!(
            body.pointer("/data/attributes/status")
                .and_then(Value::as_str),
            Some("complete" | "cancelled")
        )
    };
    let last = match engine.poll(polling, &req, done).await? {
        Polled::Done(body) => return Ok(body),
        Polled::Unfinished(last) => last,
    };
    Err(crate::connector::saas::unfinished_job(
        &format!("Klaviyo bulk import job {job}"),
        polling.max_polls,
        &last,
        "/data/attributes",
        ("completed_count", "total_count"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn jobs_hold_at_most_ten_thousand_profiles_and_five_megabytes() {
        let small: Vec<Value> = (0..10_001).map(|i| json!({"n": i})).collect();
        let c = chunks(small);
        assert_eq!(c.iter().map(Vec::len).collect::<Vec<_>>(), [10_000, 1]);
        let big = "x".repeat(90_000);
        let large: Vec<Value> = (0..60).map(|_| json!({"s": big})).collect();
        let c = chunks(large);
        assert!(
            c.len() == 2 && c[0].len() == 55,
            "{:?}",
            c.iter().map(Vec::len).collect::<Vec<_>>()
        );
    }

    #[test]
    fn records_need_their_key_and_a_size_klaviyo_accepts() {
        let r = |v: Value| v.as_object().cloned().unwrap();
        assert!(matches!(prepare(&r(json!({"first_name": "Ada"})), "email"),
            Prepared::Refuse { key: None, reason } if reason == "missing email"));
        let huge = r(json!({"email": "a@x.io", "notes": "x".repeat(100_001)}));
        assert!(matches!(prepare(&huge, "email"), Prepared::Refuse { .. }));
        assert!(matches!(
            prepare(&r(json!({"email": "a@x.io"})), "email"),
            Prepared::Send { .. }
        ));
        assert_eq!(
            payload_key(
                Some(&json!({"type": "profile", "attributes": {"email": "a@x.io"}})),
                "email"
            ),
            Some("a@x.io".into())
        );
        assert_eq!(
            payload_key(Some(&json!({"email": "b@x.io"})), "email"),
            Some("b@x.io".into())
        );
    }
}
