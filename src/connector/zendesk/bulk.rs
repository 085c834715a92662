//! Batch upsert through `POST /users/create_or_update_many`
//! (docs/connectors/zendesk.md §3): up to 100 users a call, each matched by
//! its email or external id; the call answers a `job_status` and queues a
//! background job, which ferry polls at `GET /job_statuses/{id}` until its
//! `status` is `completed` or `failed`. Zendesk documents no polling
//! interval: ferry waits `pollIntervalMs` (default 1 s) before the first
//! poll and doubles the wait up to 10 s, for at most `maxPolls` polls
//! (default 60); the waits go through the engine's pause, so a `--replay`
//! does not sleep.
//!
//! A completed job's `results` hold one item per user "in the same order as
//! the users array" (Zendesk's answer in [COMM]), each `Created`,
//! `Updated` or `Failed`; a failed one carries `error` and `details`, which
//! become the record's rejection. An item's `index`, when present, wins
//! over its place. A job that failed, or whose results do not account for
//! every user sent, fails the whole batch rather than guess: the import
//! keeps its checkpoint before it, and re-sending is safe because the job
//! upserts.

use anyhow::Result;
use serde_json::Value;

use super::requests::{upsert_body, Api, BATCH};
use crate::connector::saas::batch::Slots;
use crate::connector::saas::{scalar, string_at};
use crate::connector::{Record, UpsertOutcome};
use crate::error::failed;
use crate::http::redact::redact_body_text;
use crate::http::{Engine, Polled, Polling, RequestSpec};

/// Each record of a batch prepared: its slot, and the user bodies to send.
pub fn prepare_all(records: &[Record], key: &str) -> (Slots, Vec<Value>) {
    let mut slots = Slots::with_capacity(records.len());
    let mut users = Vec::with_capacity(records.len());
    for r in records {
        match upsert_body(r, key) {
            Ok((value, body)) => {
                slots.send(value);
                users.push(body);
            }
            Err(e) => slots.refuse(crate::connector::record_id(r, key), e.0),
        }
    }
    (slots, users)
}

/// The requests a batch sends first (one per 100 users), for previews.
pub fn requests(api: &Api, users: &[Value]) -> Vec<RequestSpec> {
    users
        .chunks(BATCH)
        .map(|c| api.create_or_update_many(c.to_vec()))
        .collect()
}

/// What the job said of one user.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Created or updated: Zendesk's user id.
    Written(String),
    /// Refused, with Zendesk's `error: details`.
    Failed(String),
}

/// Upsert `records` through jobs of 100; one outcome per record, in order.
/// A written record's outcome holds Zendesk's user id.
pub async fn upsert(
    engine: &Engine,
    api: &Api,
    polling: Polling,
    key: &str,
    records: &[Record],
) -> Result<Vec<UpsertOutcome>> {
    let (slots, users) = prepare_all(records, key);
    let mut outcomes = Vec::with_capacity(users.len());
    for chunk in users.chunks(BATCH) {
        outcomes.extend(run_job(engine, api, polling, chunk.to_vec()).await?);
    }
    let mut outcomes = outcomes.into_iter();
    Ok(slots.merge(|key| match outcomes.next() {
        Some(Outcome::Written(id)) => UpsertOutcome::Ok { id },
        Some(Outcome::Failed(reason)) => UpsertOutcome::Rejected {
            id: Some(key),
            reason,
        },
        // run_job answers one outcome per user sent.
        None => UpsertOutcome::Rejected {
            id: Some(key),
            reason: "no result from Zendesk's job".into(),
        },
    }))
}

/// One job: create it, follow it, and answer one outcome per user sent.
async fn run_job(
    engine: &Engine,
    api: &Api,
    polling: Polling,
    users: Vec<Value>,
) -> Result<Vec<Outcome>> {
    let sent = users.len();
    let req = api.create_or_update_many(users);
    let resp = engine.send(&req).await?;
    let body = resp.json(&req)?;
    let job = match body.pointer("/job_status/id").and_then(scalar) {
        Some(id) => id,
        None => string_at(&req, &body, "/job_status/id", "job_status.id")?,
    };
    let state = follow(engine, api, polling, &job).await?;
    let status = state
        .pointer("/job_status/status")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let message = state
        .pointer("/job_status/message")
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty());
    // `killed` is not among the documented statuses, but Zendesk's own
    // clients know it: a job that will never finish, like a failed one.
    if status == "failed" || status == "killed" {
        return Err(failed(format!(
            "Zendesk job {job} failed ({sent} user{}){}",
            if sent == 1 { "" } else { "s" },
            message.map(|m| format!(": {}", redact_body_text(m))).unwrap_or_default()
        ))
        .hint("nothing tells which users were written; resume the import to send the batch again (the job upserts)")
        .into());
    }
    outcomes(&job, sent, state.pointer("/job_status/results"))
}

/// One outcome per user sent, read from a completed job's `results`.
pub fn outcomes(job: &str, sent: usize, results: Option<&Value>) -> Result<Vec<Outcome>> {
    let items = results
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut out: Vec<Option<Outcome>> = vec![None; sent];
    for (place, item) in items.iter().enumerate() {
        let at = item
            .get("index")
            .and_then(Value::as_u64)
            .map_or(place, |i| i as usize);
        let Some(slot) = out.get_mut(at) else {
            continue;
        };
        let text = |k: &str| -> Option<String> {
            match item.get(k)? {
                Value::String(s) if !s.is_empty() => Some(s.clone()),
                Value::Null => None,
                Value::String(_) => None,
                other => Some(other.to_string()),
            }
        };
        let failed = item.get("status").and_then(Value::as_str) == Some("Failed")
            || item.get("success").and_then(Value::as_bool) == Some(false)
            || item.get("error").is_some_and(|e| !e.is_null());
        *slot = Some(if failed {
            let reason = match (text("error"), text("details")) {
                (Some(e), Some(d)) => format!("{e}: {d}"),
                (e, d) => e.or(d).unwrap_or_else(|| "refused by Zendesk".into()),
            };
            Outcome::Failed(redact_body_text(&reason))
        } else {
            match item.get("id").and_then(scalar) {
                Some(id) => Outcome::Written(id),
                None => continue,
            }
        });
    }
    let answered = out.iter().filter(|o| o.is_some()).count();
    if answered < sent {
        return Err(failed(format!(
            "Zendesk job {job} completed with results for {answered} of the {sent} users sent"
        ))
        .hint("resume the import to send the batch again (the job upserts); run with -vv to see the job's results")
        .into());
    }
    Ok(out.into_iter().flatten().collect())
}

/// Poll the job until it is `completed`, `failed` or `killed`; answer its body.
async fn follow(engine: &Engine, api: &Api, polling: Polling, job: &str) -> Result<Value> {
    let req = api.job_status(job);
    let done = |body: &Value| {
        matches!(
            body.pointer("/job_status/status").and_then(Value::as_str),
            Some("completed" | "failed" | "killed")
        )
    };
    let last = match engine.poll(polling, &req, done).await? {
        Polled::Done(body) => return Ok(body),
        Polled::Unfinished(last) => last,
    };
    Err(crate::connector::saas::unfinished_job(
        &format!("Zendesk job {job}"),
        polling.max_polls,
        &last,
        "/job_status",
        ("progress", "total"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn results_are_read_in_order_or_by_index() {
        let results = json!([
            {"id": 1, "status": "Created", "email": "a@x.com"},
            {"id": 2, "error": "UserUpdateError", "details": "Email: b@ is not properly formatted", "status": "Failed"},
            {"id": 3, "action": "update", "status": "Updated", "success": true}
        ]);
        assert_eq!(
            outcomes("J", 3, Some(&results)).unwrap(),
            [
                Outcome::Written("1".into()),
                Outcome::Failed("UserUpdateError: Email: b@ is not properly formatted".into()),
                Outcome::Written("3".into()),
            ]
        );
        let indexed = json!([{"id": 9, "index": 1}, {"id": 8, "index": 0}]);
        assert_eq!(
            outcomes("J", 2, Some(&indexed)).unwrap(),
            [Outcome::Written("8".into()), Outcome::Written("9".into())]
        );
        let short = outcomes("J", 2, Some(&json!([{"id": 1, "status": "Created"}])));
        assert!(format!("{:#}", short.unwrap_err()).contains("results for 1 of the 2 users"));
    }
}
