//! Zendesk as an export destination: users found by their key (active
//! users only), created through `create_or_update_many` jobs like an
//! import's upserts (a single one through `create_or_update`), updated with
//! `PUT` and cleared properties sent as `null`, soft deleted (and erased
//! with `permanentDelete`), and groups as user tags.

use anyhow::Result;
use async_trait::async_trait;
use serde_json::Value;

use super::requests::{tag_of, update_with_clears, BATCH};
use super::{bulk, write_error, Zendesk};
use crate::connector::saas::batch;
use crate::connector::saas::paging::step;
use crate::connector::{
    record_id, ExportFields, FieldSpec, FieldType, GroupSink, ProfileOutcome, ProfileSink,
    ProfileUpdate, Record, RecordSink, Rejection, WriteOp,
};

/// A custom user field as a field a record may carry, by its key (ferry
/// sends any field that is not a standard one under `user_fields`).
fn user_field(f: &Value) -> Option<FieldSpec> {
    let key = f.get("key").and_then(Value::as_str)?;
    let kind = f.get("type").and_then(Value::as_str).unwrap_or("text");
    let field_type = match kind {
        "checkbox" => FieldType::Boolean,
        "integer" => FieldType::Integer,
        "decimal" => FieldType::Number,
        "date" => FieldType::Date,
        "text" | "textarea" | "regexp" | "dropdown" => FieldType::String,
        // multiselect (a list of option values), lookup (an id) and any
        // type added later: as Zendesk takes it.
        _ => FieldType::Any,
    };
    let title = f.get("title").and_then(Value::as_str).unwrap_or(key);
    let active = f.get("active") != Some(&Value::Bool(false));
    let description = format!(
        "{title} ({kind} user field{})",
        if active { "" } else { ", inactive" }
    );
    Some(FieldSpec::named(key.to_string(), field_type, description))
}

#[async_trait]
impl ProfileSink for Zendesk {
    /// The standard user fields and the account's custom user fields as
    /// Zendesk lists them now (`GET /user_fields`, cursor pages to the
    /// end). Export checks against the spec's fields: Zendesk marks no
    /// custom field required through the API, and refuses a bad value per
    /// user itself.
    async fn live_fields(&self) -> Result<ExportFields> {
        let mut fields = self.export_fields().await?;
        let mut after: Option<String> = None;
        // Every cursor followed, with the page it led to: one met again
        // for another page would go round forever.
        let mut followed = crate::connector::saas::paging::Seen::new();
        let mut pages = 0u64;
        loop {
            let req = self.api.user_fields(after.as_deref());
            let body = self.engine.send(&req).await?.json(&req)?;
            let Some(Value::Array(page)) = body.get("user_fields") else {
                return Err(crate::error::failed(format!(
                    "GET {} answered no \"user_fields\" array",
                    req.shown_url()
                ))
                .into());
            };
            fields.fields.extend(page.iter().filter_map(user_field));
            let next = super::listing::list_next(&body);
            match step(&req, after.as_deref(), page.len(), "user fields", next)? {
                Some(next) => {
                    pages += 1;
                    if !crate::connector::saas::paging::first_time(
                        &mut followed,
                        next.clone(),
                        pages,
                    ) {
                        return Err(crate::error::failed(format!(
                            "GET {} answered a cursor it had already given; stopping instead of looping",
                            req.shown_url()
                        ))
                        .into());
                    }
                    after = Some(next);
                }
                None => return Ok(fields),
            }
        }
    }

    /// Keyed by `keyField`; a profile without it is invalid (Zendesk has no
    /// other way to match a user), so the profile id never stands in for it.
    async fn export_fields(&self) -> Result<ExportFields> {
        Ok(ExportFields::of_spec(&self.spec, &self.key_field, false))
    }

    async fn find_profile(&self, key: &str) -> Result<Option<String>> {
        Ok(self
            .find(&self.key_field, key)
            .await?
            .and_then(|u| record_id(&u, "id")))
    }

    async fn create_profile(&self, fields: Record) -> Result<String> {
        self.upsert_user(&fields).await
    }

    /// Creates go through `create_or_update_many`, 100 a job: one call and
    /// a few polls where single calls would be paced at one a second.
    async fn create_profiles(&self, profiles: Vec<Record>) -> Vec<ProfileOutcome> {
        if let [one] = profiles.as_slice() {
            return vec![ProfileOutcome::from_result(
                self.create_profile(one.clone()).await,
            )];
        }
        let mut out = Vec::with_capacity(profiles.len());
        for chunk in profiles.chunks(BATCH) {
            match bulk::upsert(
                &self.engine,
                &self.api,
                self.polling,
                &self.key_field,
                chunk,
            )
            .await
            {
                Ok(outcomes) => out.extend(outcomes.into_iter().map(batch::profile_outcome)),
                Err(e) => out.extend(batch::all_failed(chunk.len(), e)),
            }
        }
        out
    }

    async fn update_profile(&self, id: &str, update: ProfileUpdate) -> Result<String> {
        let body = update_with_clears(&update.set, &update.clear).map_err(|e| Rejection(e.0))?;
        if body.as_object().is_some_and(|m| m.is_empty()) {
            return Ok(id.to_string());
        }
        let req = self.api.update(id, body);
        let resp = self.engine.execute(&req).await?;
        if resp.status == 404 {
            return Err(crate::error::not_found(format!("no Zendesk user {id}")).into());
        }
        if !resp.is_success() {
            return Err(write_error(&req, &resp));
        }
        Ok(id.to_string())
    }

    async fn delete_profile(&self, id: &str) -> Result<()> {
        self.delete_user(id).await
    }

    fn preview(&self, op: &WriteOp) -> Result<Vec<Value>> {
        RecordSink::preview(self, op)
    }
}

#[async_trait]
impl GroupSink for Zendesk {
    /// A tag needs no creating: the group's tag is its id.
    async fn ensure_group(&self, name: &str) -> Result<String> {
        Ok(tag_of(name))
    }

    /// `PUT /users/{id}/tags`: adds the tag, keeps the user's others.
    async fn add_member(&self, group: &str, id: &str) -> Result<()> {
        self.engine.send(&self.api.add_tags(id, &[group])).await?;
        Ok(())
    }

    /// `DELETE /users/{id}/tags`; a user that is gone (404) is done.
    async fn remove_member(&self, group: &str, id: &str) -> Result<()> {
        self.engine
            .send_unless_gone(&self.api.remove_tags(id, &[group]))
            .await
    }
}
