//! Export to a code connector: the module's Grouparoo-style
//! `exportProfiles(profiles)` (one call a batch) or `exportProfile(profile)`
//! (one call a profile), each profile its whole change ([`ProfileChange`]:
//! old and new properties and groups, toDelete). Outcomes: `{success}`;
//! `success: false` with `retryIn` (seconds) or `retryDelay` (milliseconds)
//! is retried; an error with `errorLevel: "info"` is a skip, never retried;
//! any other error is retried next run.

use anyhow::Result;
use async_trait::async_trait;
use serde_json::{json, Value};

use super::code::{Code, Skipped};
use crate::connector::{
    ExportFields, ProfileChange, ProfileOutcome, ProfileSink, ProfileUpdate, Record,
    WholeProfileSink, WriteOp,
};
use crate::error::{failed, find_failure, Kind, Rejection};

/// The record-by-record calls of [`ProfileSink`] are not used:
/// [`ProfileSink::whole`] answers.
#[async_trait]
impl ProfileSink for Code {
    async fn export_fields(&self) -> Result<ExportFields> {
        if !self.has("exportProfiles").await? && !self.has("exportProfile").await? {
            return Err(self.lacks("export profiles", "exportProfile").into());
        }
        Ok(ExportFields::keyed_by_id_field(&self.id_field))
    }

    async fn find_profile(&self, _key: &str) -> Result<Option<String>> {
        Err(self.whole_only())
    }

    async fn create_profile(&self, _fields: Record) -> Result<String> {
        Err(self.whole_only())
    }

    async fn update_profile(&self, _id: &str, _update: ProfileUpdate) -> Result<String> {
        Err(self.whole_only())
    }

    async fn delete_profile(&self, _id: &str) -> Result<()> {
        Err(self.whole_only())
    }

    fn preview(&self, _op: &WriteOp) -> Result<Vec<Value>> {
        Err(self.whole_only())
    }

    fn whole(&self) -> Option<&dyn WholeProfileSink> {
        Some(self)
    }
}

#[async_trait]
impl WholeProfileSink for Code {
    async fn export_changes(&self, changes: Vec<ProfileChange>) -> Vec<ProfileOutcome> {
        match self.has("exportProfiles").await {
            Ok(true) => self.export_batch(changes).await,
            Ok(false) => {
                let mut outcomes = Vec::with_capacity(changes.len());
                for change in changes {
                    outcomes.push(self.export_one(change).await);
                }
                outcomes
            }
            Err(e) => failed_all(&e, changes.len()),
        }
    }

    fn preview_changes(&self, changes: &[ProfileChange]) -> Result<Vec<Value>> {
        let (outcomes, mut rows) = self.dry_run(self.export_changes(changes.to_vec()))?;
        // A module that sends nothing (or fails) still shows what it was given.
        for (change, outcome) in changes.iter().zip(outcomes) {
            if let ProfileOutcome::Error { reason, .. } | ProfileOutcome::Rejected { reason } =
                outcome
            {
                rows.push(json!({"profileId": change.profile_id, "error": reason}));
            }
        }
        Ok(rows)
    }
}

impl Code {
    fn whole_only(&self) -> anyhow::Error {
        failed(format!(
            "connector {} exports whole profiles (exportProfile), not record by record",
            self.spec.code
        ))
        .into()
    }

    async fn export_one(&self, change: ProfileChange) -> ProfileOutcome {
        let key = change.key.clone();
        match self
            .call(
                "exportProfile",
                "export profiles",
                json!({ "profile": change }),
            )
            .await
        {
            Ok(answer) => answered(&answer, key),
            Err(e) => outcome_of_error(&e),
        }
    }

    async fn export_batch(&self, changes: Vec<ProfileChange>) -> Vec<ProfileOutcome> {
        let n = changes.len();
        let answer = match self
            .call(
                "exportProfiles",
                "export profiles",
                json!({ "profiles": changes }),
            )
            .await
        {
            Ok(a) => a,
            Err(e) => return (0..n).map(|_| outcome_of_error(&e)).collect(),
        };
        let errors: Vec<&Value> = answer
            .get("errors")
            .and_then(Value::as_array)
            .map(|e| e.iter().collect())
            .unwrap_or_default();
        // A profile id as text, so 7 and "7" name the same profile.
        let text = |v: &Value| match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        };
        let named = |e: &&Value| e.get("profileId").and_then(text);
        // An error that names no profile of the batch belongs to all those
        // it does not clear: they are not marked done.
        let stray = errors
            .iter()
            .find(|e| named(e).is_none_or(|id| !changes.iter().any(|c| c.profile_id == id)));
        changes
            .into_iter()
            .map(|c| {
                let own = errors
                    .iter()
                    .find(|e| named(e).as_deref() == Some(c.profile_id.as_str()));
                match (own, stray) {
                    (Some(e), _) => outcome_of_level(e),
                    (None, Some(e)) => outcome_of_level(e),
                    (None, None) if errors.is_empty() => answered(&answer, c.key),
                    // Errors that name other profiles: this one went through.
                    (None, None) => ProfileOutcome::Ok { id: c.key },
                }
            })
            .collect()
    }
}

/// `{success, message?, retryIn? (seconds), retryDelay? (milliseconds)}`.
fn answered(answer: &Value, key: String) -> ProfileOutcome {
    if answer.get("success") != Some(&Value::Bool(false)) {
        return ProfileOutcome::Ok { id: key };
    }
    let reason = answer
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("the module answered success: false")
        .to_string();
    ProfileOutcome::Error {
        reason,
        retry_in: retry_in(answer),
    }
}

fn retry_in(v: &Value) -> Option<std::time::Duration> {
    let secs = v.get("retryIn").and_then(Value::as_f64);
    let ms = v
        .get("retryDelay")
        .and_then(Value::as_f64)
        .map(|m| m / 1000.0);
    secs.or(ms)
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(|s| std::time::Duration::from_secs_f64(s.min(86_400.0)))
}

/// One error of an `exportProfiles` answer: `errorLevel` "info" is a skip
/// (not retried), anything else an error retried next run.
fn outcome_of_level(e: &Value) -> ProfileOutcome {
    let reason = e
        .get("message")
        .and_then(Value::as_str)
        .map_or_else(|| e.to_string(), str::to_string);
    match e.get("errorLevel").and_then(Value::as_str) {
        Some("info") => ProfileOutcome::Skipped { reason },
        _ => ProfileOutcome::Error {
            reason,
            retry_in: retry_in(e),
        },
    }
}

/// A thrown error: a skip for `errorLevel: "info"` (kind "skipped"), a
/// rejection for an invalid record, not found, else an error retried next run.
fn outcome_of_error(e: &anyhow::Error) -> ProfileOutcome {
    let reason = format!("{e:#}");
    if e.chain().any(|c| c.is::<Skipped>()) {
        return ProfileOutcome::Skipped { reason };
    }
    if e.chain().any(|c| c.is::<Rejection>()) {
        return ProfileOutcome::Rejected { reason };
    }
    match find_failure(e).map(|f| f.kind) {
        Some(Kind::NotFound) => ProfileOutcome::NotFound { reason },
        _ => ProfileOutcome::Error {
            reason,
            retry_in: None,
        },
    }
}

fn failed_all(e: &anyhow::Error, n: usize) -> Vec<ProfileOutcome> {
    (0..n).map(|_| outcome_of_error(e)).collect()
}
