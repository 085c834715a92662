//! Batch upsert through `POST /crm/v3/objects/contacts/batch/upsert`
//! (docs/connectors/hubspot.md §2.8): up to 100 inputs
//! `{"idProperty", "id", "properties", "objectWriteTraceId"}` keyed by the
//! unique property. The answer is 200 when every input was written, or 207
//! (multi-status, enabled by the `objectWriteTraceId`) with the written
//! contacts in `results` and the refused ones in `errors`. Each record's
//! outcome is read from there: a result names its record by
//! `objectWriteTraceId` or by the key property, an error by any value of its
//! `context` (the key or the trace id; which context key HubSpot uses is
//! not documented, so every one is read). An error that names no record of
//! the batch, while some record has no answer, fails the whole batch rather
//! than guess which records were written; a record named by neither a
//! result nor an error is rejected, not counted as written. A batch refused as a whole
//! (400) is sent again one contact per request, so one bad contact does not
//! stop the others.

use std::collections::HashMap;

use anyhow::Result;
use serde_json::{json, Value};

use super::requests::{properties, Api, Nulls};
use crate::connector::saas::batch::Slots;
use crate::connector::saas::error_fields;
use crate::connector::{record_id, Record, UpsertOutcome};
use crate::error::failed;
use crate::http::{Engine, RequestSpec};

/// A batch made ready to send: one slot per record, in order.
pub struct Prepared {
    /// Each record refused before sending, with why, or sent under its key
    /// (its trace id).
    pub slots: Slots,
    /// The inputs sent, for the records not refused.
    pub inputs: Vec<Value>,
}

/// Shape `records` into upsert inputs keyed by `id_property`. A record
/// without the key, with an unwritable value, or whose key comes again
/// later in the batch (the later one is newer and is the one sent) is
/// refused before the request.
pub fn prepare(records: &[Record], id_property: &str) -> Prepared {
    let keys: Vec<Option<String>> = records.iter().map(|r| record_id(r, id_property)).collect();
    let mut last: HashMap<String, usize> = HashMap::new();
    for (i, k) in keys.iter().enumerate() {
        if let Some(k) = k {
            last.insert(k.to_lowercase(), i);
        }
    }
    let mut slots = Slots::with_capacity(records.len());
    let mut inputs = Vec::new();
    for (i, (record, key)) in records.iter().zip(keys).enumerate() {
        let Some(key) = key else {
            slots.refuse(
                None,
                format!("missing {id_property}, the unique property contacts are upserted by"),
            );
            continue;
        };
        if last.get(&key.to_lowercase()) != Some(&i) {
            let reason = format!("{id_property} \"{key}\" comes again later in the same batch; the later record was sent");
            slots.refuse(Some(key), reason);
            continue;
        }
        match properties(record, Nulls::Omit) {
            Ok(props) => {
                inputs.push(json!({
                    "idProperty": id_property,
                    "id": key,
                    "properties": props,
                    "objectWriteTraceId": key,
                }));
                slots.send(key);
            }
            Err(u) => slots.refuse(Some(key), u.0),
        }
    }
    Prepared { slots, inputs }
}

/// The text of one batch error: its message and its detailed messages.
fn error_text(e: &Value) -> String {
    let message = e
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("refused by HubSpot");
    let mut details = error_fields(e, "message");
    details.retain(|d| !message.contains(d));
    if details.is_empty() {
        message.to_string()
    } else {
        format!("{message} ({})", details.join("; "))
    }
}

/// Every string an error's `context` (and its `id`) holds, lowercased.
fn named_by(e: &Value) -> Vec<String> {
    let mut names = Vec::new();
    if let Some(Value::Object(ctx)) = e.get("context") {
        for v in ctx.values() {
            match v {
                Value::Array(items) => names.extend(
                    items
                        .iter()
                        .filter_map(Value::as_str)
                        .map(str::to_lowercase),
                ),
                Value::String(s) => names.push(s.to_lowercase()),
                _ => {}
            }
        }
    }
    if let Some(id) = e.get("id").and_then(Value::as_str) {
        names.push(id.to_lowercase());
    }
    names
}

/// Each record's outcome from the batch answer `body` (see the module doc).
pub fn outcomes(
    prepared: Prepared,
    id_property: &str,
    body: &Value,
) -> std::result::Result<Vec<UpsertOutcome>, String> {
    let mut written: HashMap<String, String> = HashMap::new();
    for r in body
        .get("results")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let id = match r.get("id") {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => continue,
        };
        for name in [
            r.get("objectWriteTraceId").and_then(Value::as_str),
            r.pointer(&format!("/properties/{id_property}"))
                .and_then(Value::as_str),
        ]
        .into_iter()
        .flatten()
        {
            written.insert(name.to_lowercase(), id.clone());
        }
    }
    let errors: Vec<&Value> = body
        .get("errors")
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let mut refused: HashMap<String, String> = HashMap::new();
    let mut unnamed = Vec::new();
    for e in &errors {
        let names = named_by(e);
        let ours: Vec<&String> = names
            .iter()
            .filter(|n| prepared.slots.keys().any(|k| k.to_lowercase() == **n))
            .collect();
        if ours.is_empty() {
            unnamed.push(error_text(e));
        }
        for n in ours {
            refused.insert(n.clone(), error_text(e));
        }
    }
    let mut unanswered = 0;
    let out = prepared.slots.merge(|key| {
        let lower = key.to_lowercase();
        if let Some(reason) = refused.get(&lower) {
            UpsertOutcome::Rejected {
                id: Some(key),
                reason: reason.clone(),
            }
        } else if let Some(id) = written.get(&lower) {
            UpsertOutcome::Ok { id: id.clone() }
        } else {
            unanswered += 1;
            // Neither a result nor an error: nothing says the contact was
            // written, and its HubSpot id (which list memberships need) is
            // unknown. Counting it written would hide a lost record; as a
            // rejection it goes to the rejects file and can be sent again
            // (upserts are keyed by the unique property, so nothing doubles).
            UpsertOutcome::Rejected {
                reason: format!(
                    "HubSpot's batch answer has neither a result nor an error for {id_property} \"{key}\"; it is not counted as written"
                ),
                id: Some(key),
            }
        }
    });
    if unanswered > 0 && !unnamed.is_empty() {
        return Err(format!(
            "HubSpot refused part of the batch without saying which contacts ({}); {unanswered} contact{} got no answer",
            unnamed.join("; "),
            if unanswered == 1 { "" } else { "s" }
        ));
    }
    Ok(out)
}

/// Upsert `records` (at most 100) in one request; one outcome per record.
/// When HubSpot refuses the batch as a whole (400, e.g. a property that
/// does not exist), each contact is sent again on its own, so only the
/// contacts at fault are rejected and the rest are written.
pub async fn upsert(engine: &Engine, api: &Api, records: &[Record]) -> Result<Vec<UpsertOutcome>> {
    let prepared = prepare(records, &api.id_property);
    if prepared.inputs.is_empty() {
        return Ok(prepared.slots.merge_refused(&HashMap::new()));
    }
    let req: RequestSpec = api.batch_upsert(prepared.inputs.clone());
    let resp = engine.execute(&req).await?;
    if resp.status == 400 && prepared.inputs.len() > 1 {
        let mut out = Vec::with_capacity(records.len());
        for (record, refusal) in records.iter().zip(prepared.slots.into_refusals()) {
            out.push(match refusal {
                Some(o) => o,
                None => alone(engine, api, record).await?,
            });
        }
        return Ok(out);
    }
    answer(api, prepared, &req, &resp)
}

/// One contact in its own batch: a 400 is this contact's rejection.
async fn alone(engine: &Engine, api: &Api, record: &Record) -> Result<UpsertOutcome> {
    let prepared = prepare(std::slice::from_ref(record), &api.id_property);
    let req = api.batch_upsert(prepared.inputs.clone());
    let resp = engine.execute(&req).await?;
    if resp.status == 400 {
        let reason = serde_json::from_str::<Value>(&resp.body)
            .map(|b| error_text(&b))
            .unwrap_or_else(|_| super::vendor_error(&req, &resp).message);
        return Ok(UpsertOutcome::Rejected {
            id: record_id(record, &api.id_property),
            reason,
        });
    }
    let mut outcomes = answer(api, prepared, &req, &resp)?;
    outcomes
        .pop()
        .ok_or_else(|| failed("the batch upsert answered no outcome").into())
}

/// The outcomes of a batch answer, or the error of a failed request.
fn answer(
    api: &Api,
    prepared: Prepared,
    req: &RequestSpec,
    resp: &crate::http::Response,
) -> Result<Vec<UpsertOutcome>> {
    if !resp.is_success() {
        return Err(super::vendor_error(req, resp).into());
    }
    let body = resp.json(req)?;
    outcomes(prepared, &api.id_property, &body).map_err(|m| {
        failed(format!("POST {}: {m}", req.shown_url()))
            .hint("send the batch again (upserts are keyed by the unique property, so nothing is duplicated)")
            .into()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(v: Value) -> Record {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn a_multi_status_answer_gives_each_record_its_outcome() {
        let records = vec![
            rec(json!({"email": "a@x.com", "firstname": "A"})),
            rec(json!({"email": "bad@", "firstname": "B"})),
            rec(json!({"firstname": "no key"})),
            rec(json!({"email": "c@x.com", "address": {"city": "x"}})),
        ];
        let p = prepare(&records, "email");
        assert_eq!(p.inputs.len(), 2);
        assert_eq!(p.inputs[0]["objectWriteTraceId"], "a@x.com");
        let body = json!({"status": "COMPLETE",
            "results": [{"id": "11", "new": true, "objectWriteTraceId": "a@x.com", "properties": {"email": "a@x.com"}}],
            "numErrors": 1,
            "errors": [{"status": "error", "category": "VALIDATION_ERROR", "message": "Property values were not valid",
                "context": {"objectWriteTraceId": ["bad@"]}, "errors": [{"message": "Email address bad@ is invalid", "code": "INVALID_EMAIL"}]}]});
        let out = outcomes(p, "email", &body).unwrap();
        assert_eq!(out[0], UpsertOutcome::Ok { id: "11".into() });
        assert_eq!(
            out[1],
            UpsertOutcome::Rejected {
                id: Some("bad@".into()),
                reason: "Property values were not valid (Email address bad@ is invalid)".into()
            }
        );
        assert!(matches!(&out[2], UpsertOutcome::Rejected { id: None, .. }));
        assert!(
            matches!(&out[3], UpsertOutcome::Rejected { reason, .. } if reason.contains("object"))
        );
    }

    #[test]
    fn an_error_naming_no_record_fails_the_batch_and_duplicates_keep_the_last() {
        let records = vec![
            rec(json!({"email": "a@x.com", "n": 1})),
            rec(json!({"email": "A@x.com", "n": 2})),
        ];
        let p = prepare(&records, "email");
        assert_eq!(p.inputs.len(), 1);
        assert_eq!(p.inputs[0]["properties"]["n"], "2");
        let body = json!({"status": "COMPLETE", "results": [], "errors": [{"message": "Something broke", "context": {}}]});
        let err = outcomes(p, "email", &body).unwrap_err();
        assert!(err.contains("Something broke"), "{err}");
    }

    #[test]
    fn a_record_without_result_or_error_is_rejected_not_counted_written() {
        let records = vec![
            rec(json!({"email": "a@x.com"})),
            rec(json!({"email": "b@x.com"})),
        ];
        let p = prepare(&records, "email");
        let body = json!({"status": "COMPLETE",
            "results": [{"id": 11, "objectWriteTraceId": "a@x.com", "properties": {}}]});
        let out = outcomes(p, "email", &body).unwrap();
        assert_eq!(out[0], UpsertOutcome::Ok { id: "11".into() });
        assert!(
            matches!(&out[1], UpsertOutcome::Rejected { id: Some(k), reason } if k == "b@x.com" && reason.contains("neither a result nor an error")),
            "{:?}",
            out[1]
        );
    }
}
