//! Batch upsert through Voucherify's asynchronous bulk endpoint
//! (docs/connectors/voucherify.md §3.8–§3.9): `POST /v1/customers/bulk/async`
//! with up to 100 customers answers an `async_action_id`; the job is then
//! polled at `GET /v1/async-actions/{id}` until its `status` is `DONE` or
//! `FAILED`. The polling interval is not documented: ferry waits
//! `pollIntervalMs` (default 1 s) before the first poll and doubles the wait
//! up to 10 s, for at most `maxPolls` polls (default 30); a job still
//! unfinished after that fails the batch (import keeps its checkpoint before
//! it, and re-sending is safe because the bulk endpoint upserts).
//!
//! Each record's outcome comes from `result.errors[]`, whose items name the
//! failed customer's `source_id` with a `message` and `details`; every other
//! record of the batch was written. A job that reports more failures than
//! it names, or that failed without naming any, fails the whole batch rather
//! than guess which records were written.

use std::collections::HashMap;

use anyhow::Result;
use serde_json::Value;

use super::requests::{customer_body, Api};
use crate::connector::saas::batch::Slots;
use crate::connector::saas::string_at;
use crate::connector::{record_id, Record, UpsertOutcome};
use crate::error::failed;
use crate::http::{Engine, Polled};

pub use crate::http::Polling;

/// Each record of a batch prepared: its slot, and the customers to send.
/// Records the API could not take are refused here, before the request.
pub fn prepare_all(records: &[Record]) -> (Slots, Vec<Value>) {
    let mut slots = Slots::with_capacity(records.len());
    let mut bodies = Vec::new();
    for record in records {
        let Some(id) = record_id(record, "source_id") else {
            slots.refuse(None, "missing source_id");
            continue;
        };
        match customer_body(record, false) {
            Ok(body) => {
                bodies.push(body);
                slots.send(id);
            }
            Err(u) => slots.refuse(Some(id), u.0),
        }
    }
    (slots, bodies)
}

/// Upsert `records` in one bulk job; one outcome per record, in order.
pub async fn upsert(
    engine: &Engine,
    api: &Api,
    polling: Polling,
    records: &[Record],
) -> Result<Vec<UpsertOutcome>> {
    let (slots, bodies) = prepare_all(records);
    if bodies.is_empty() {
        return Ok(slots.merge_refused(&HashMap::new()));
    }
    let sent = bodies.len();
    let req = api.bulk(bodies);
    let resp = engine.send(&req).await?;
    let body = resp.json(&req)?;
    let action = string_at(&req, &body, "/async_action_id", "async_action_id")?;
    let job = follow(engine, api, polling, &action).await?;
    let result = job.get("result").cloned().unwrap_or(Value::Null);
    let mut refused: HashMap<String, String> = HashMap::new();
    if let Some(Value::Array(errors)) = result.get("errors") {
        for e in errors {
            let Some(sid) = e.get("source_id").and_then(Value::as_str) else {
                continue;
            };
            let text = |k: &str| e.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
            let reason = match (text("message"), text("details")) {
                (Some(m), Some(d)) => format!("{m}: {d}"),
                (Some(m), None) => m.to_string(),
                (None, Some(d)) => d.to_string(),
                (None, None) => text("key").unwrap_or("refused by Voucherify").to_string(),
            };
            refused.insert(sid.to_string(), reason);
        }
    }
    let status = job.get("status").and_then(Value::as_str).unwrap_or("");
    let named = slots.count_sent(|id| refused.contains_key(id)) as u64;
    let failed_count = result.get("failed_count").and_then(Value::as_u64);
    if status == "FAILED" && named == 0 {
        return Err(failed(format!(
            "Voucherify bulk job {action} FAILED for the batch of {sent} customer{}{}",
            if sent == 1 { "" } else { "s" },
            job_message(&job)
        ))
        .hint("nothing tells which customers were written; resume the import to send the batch again (bulk writes are upserts)")
        .into());
    }
    if failed_count.is_some_and(|n| n > named) {
        return Err(failed(format!(
            "Voucherify bulk job {action} reports {} failed customers but names {named} of them",
            failed_count.unwrap_or(0)
        ))
        .hint("resume the import to send the batch again (bulk writes are upserts)")
        .into());
    }
    Ok(slots.merge_refused(&refused))
}

/// Poll the async action until it is `DONE` or `FAILED`; answer its body.
async fn follow(engine: &Engine, api: &Api, polling: Polling, action: &str) -> Result<Value> {
    let req = api.async_action(action);
    let done = |body: &Value| {
        matches!(
            body.get("status").and_then(Value::as_str),
            Some("DONE" | "FAILED")
        )
    };
    let last = match engine.poll(polling, &req, done).await? {
        Polled::Done(body) => return Ok(body),
        Polled::Unfinished(last) => last,
    };
    let status = last
        .get("status")
        .and_then(Value::as_str)
        .unwrap_or("unknown");
    let progress = last
        .get("progress")
        .and_then(Value::as_u64)
        .map(|p| format!(", {p}% done"))
        .unwrap_or_default();
    Err(failed(format!(
        "Voucherify bulk job {action} did not finish after {} polls (status {status}{progress})",
        polling.max_polls
    ))
    .hint("the job may still complete; raise \"maxPolls\" or \"pollIntervalMs\" in account.json, then resume (bulk writes are upserts, so re-sending is safe)")
    .into())
}

fn job_message(job: &Value) -> String {
    let m = job
        .pointer("/result/message")
        .or_else(|| job.get("message"))
        .and_then(Value::as_str);
    m.map(|m| format!(": {m}")).unwrap_or_default()
}
