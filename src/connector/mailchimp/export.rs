//! Mailchimp as an export destination: members created through batch
//! subscribe (or one `PUT` by their email's hash), updated with cleared
//! merge fields sent empty, archived (or erased) on delete, and groups as
//! tags.

use anyhow::Result;
use async_trait::async_trait;
use serde_json::Value;

use super::requests::{subscriber_hash, update_with_clears, BATCH};
use super::{hash_of, member, write_error, Mailchimp};
use crate::connector::saas::batch;
use crate::connector::{
    ExportFields, GroupSink, ProfileOutcome, ProfileSink, ProfileUpdate, Record, RecordSink,
    Rejection, WriteOp,
};

#[async_trait]
impl ProfileSink for Mailchimp {
    /// The member fields, and the audience's merge fields as Mailchimp
    /// lists them now (read once per run): a profile without a required
    /// one is invalid and not sent.
    async fn export_fields(&self) -> Result<ExportFields> {
        let mut fields = ExportFields::of_spec(&self.spec, "email_address", false);
        fields.fields.extend(self.merge_fields().await?);
        Ok(fields)
    }

    /// The member with this email, unless there is none or it is archived
    /// (an archived member is written again by the create's `PUT`).
    async fn find_profile(&self, key: &str) -> Result<Option<String>> {
        let req = self.api.get(&subscriber_hash(key));
        let Some(resp) = self.engine.send_found(&req).await? else {
            return Ok(None);
        };
        let m = member(&req, resp.json(&req)?)?;
        if m.get("status").and_then(Value::as_str) == Some("archived") {
            return Ok(None);
        }
        Ok(hash_of(&m))
    }

    async fn create_profile(&self, fields: Record) -> Result<String> {
        self.upsert_member(&fields).await
    }

    /// Creates go through batch subscribe, 500 a call, like an import's
    /// upserts: one call where single `PUT`s would take a hundred.
    async fn create_profiles(&self, profiles: Vec<Record>) -> Vec<ProfileOutcome> {
        let mut out = Vec::with_capacity(profiles.len());
        for chunk in profiles.chunks(BATCH) {
            match self.upsert_batch(std::sync::Arc::new(chunk.to_vec())).await {
                Ok(outcomes) => out.extend(outcomes.into_iter().map(batch::profile_outcome)),
                Err(e) => out.extend(batch::all_failed(chunk.len(), e)),
            }
        }
        out
    }

    async fn update_profile(&self, id: &str, update: ProfileUpdate) -> Result<String> {
        let (body, not_cleared) =
            update_with_clears(&update.set, &update.clear).map_err(|e| Rejection(e.0))?;
        let new_id = match body.get("email_address").and_then(Value::as_str) {
            Some(email) => subscriber_hash(email),
            None => id.to_string(),
        };
        if body.as_object().is_some_and(|m| !m.is_empty()) {
            let req = self.api.patch(id, body);
            let resp = self.engine.execute(&req).await?;
            if resp.status == 404 {
                return Err(crate::error::not_found(format!(
                    "no Mailchimp member {id} in audience {}",
                    self.api.list_id
                ))
                .into());
            }
            if !resp.is_success() {
                return Err(write_error(&req, &resp));
            }
        }
        if !not_cleared.is_empty() {
            // The profile counts as updated and the export state records the
            // clear, so say that Mailchimp still holds these values.
            self.out.warn(&format!(
                "Mailchimp member {new_id}: {} not cleared (only merge fields can be emptied); the old value stays",
                not_cleared.join(", ")
            ));
        }
        Ok(new_id)
    }

    async fn delete_profile(&self, id: &str) -> Result<()> {
        self.delete_member(id, true).await
    }

    fn preview(&self, op: &WriteOp) -> Result<Vec<Value>> {
        RecordSink::preview(self, op)
    }
}

#[async_trait]
impl GroupSink for Mailchimp {
    /// A tag is created when it is first set active: nothing to call.
    async fn ensure_group(&self, name: &str) -> Result<String> {
        Ok(name.to_string())
    }

    async fn add_member(&self, group: &str, id: &str) -> Result<()> {
        self.engine
            .send(&self.api.tags(id, &[(group, true)]))
            .await?;
        Ok(())
    }

    /// Setting a tag inactive on a member that is gone (404) is done.
    async fn remove_member(&self, group: &str, id: &str) -> Result<()> {
        self.engine
            .send_unless_gone(&self.api.tags(id, &[(group, false)]))
            .await
    }
}
