//! Intercom as an export destination: contacts created or updated by their
//! key (a 409 on create updates the contact Intercom names), fields Intercom
//! computes or cannot clear reported as warnings, and groups as tags.

use anyhow::Result;
use async_trait::async_trait;
use serde_json::Value;

use super::requests::{read_only_fields, update_with_clears};
use super::{id_of, Intercom};
use crate::connector::{
    ExportFields, FieldSpec, FieldType, GroupSink, ProfileSink, ProfileUpdate, Record, RecordSink,
    Rejection, WriteOp,
};

impl Intercom {
    /// An exported profile counts as written: say which of its fields were
    /// not, because Intercom computes them (`os`, `browser`, `utm_*`, …).
    fn warn_not_written(&self, id: &str, fields: &Record) {
        let dropped = read_only_fields(fields);
        if !dropped.is_empty() {
            self.out.warn(&format!(
                "Intercom contact {id}: {} not written (Intercom computes them)",
                dropped.join(", ")
            ));
        }
    }
}

/// A data attribute as a field: custom ones are written by their name
/// at the top of a record, like the standard ones.
fn attribute_field(a: &Value) -> Option<FieldSpec> {
    let name = a.get("name").and_then(Value::as_str)?;
    let kind = a
        .get("data_type")
        .and_then(Value::as_str)
        .unwrap_or("string");
    let field_type = match kind {
        "string" => FieldType::String,
        "integer" => FieldType::Integer,
        "float" => FieldType::Number,
        "boolean" => FieldType::Boolean,
        // Dates are Unix seconds; anything else as Intercom takes it.
        "date" => FieldType::Integer,
        _ => FieldType::Any,
    };
    let label = a.get("label").and_then(Value::as_str).unwrap_or(name);
    let custom = a.get("custom") == Some(&Value::Bool(true));
    let writable = a.get("api_writable") != Some(&Value::Bool(false));
    let description = format!(
        "{label} ({}{kind}{})",
        if custom { "custom, " } else { "" },
        if writable { "" } else { ", read-only" }
    );
    Some(FieldSpec::named(name.to_string(), field_type, description))
}

#[async_trait]
impl ProfileSink for Intercom {
    /// The workspace's contact attributes as Intercom lists them now.
    /// Export checks against the spec's fields: Intercom requires no
    /// attribute, and refuses an undefined one per contact itself.
    async fn live_fields(&self) -> Result<ExportFields> {
        let req = self.api.contact_attributes();
        let body = self.engine.send(&req).await?.json(&req)?;
        let Some(Value::Array(data)) = body.get("data") else {
            return Err(crate::error::failed(format!(
                "GET {} answered no \"data\" array",
                req.shown_url()
            ))
            .into());
        };
        let mut fields = self.export_fields().await?;
        fields.fields = data.iter().filter_map(attribute_field).collect();
        Ok(fields)
    }

    async fn export_fields(&self) -> Result<ExportFields> {
        Ok(ExportFields::of_spec(
            &self.spec,
            &self.key_field,
            self.key_field == "external_id",
        ))
    }

    async fn find_profile(&self, key: &str) -> Result<Option<String>> {
        self.find(&self.key_field, key).await
    }

    async fn create_profile(&self, fields: Record) -> Result<String> {
        let key = self.key_of(&fields);
        let id = self.upsert_contact(&fields, key.as_deref()).await?;
        self.warn_not_written(&id, &fields);
        Ok(id)
    }

    async fn update_profile(&self, id: &str, update: ProfileUpdate) -> Result<String> {
        let (body, not_cleared) =
            update_with_clears(&update.set, &update.clear).map_err(|e| Rejection(e.0))?;
        let id = if body.as_object().is_some_and(|m| m.is_empty()) {
            // Only clears Intercom cannot express: nothing to send.
            id.to_string()
        } else {
            self.put(id, body).await?
        };
        if !not_cleared.is_empty() {
            // The profile counts as updated and the export state records the
            // clear, so say that Intercom still holds these values.
            self.out.warn(&format!(
                "Intercom contact {id}: {} not cleared (Intercom's update takes no null there); the old value stays",
                not_cleared.join(", ")
            ));
        }
        self.warn_not_written(&id, &update.set);
        Ok(id)
    }

    async fn delete_profile(&self, id: &str) -> Result<()> {
        self.engine.send_unless_gone(&self.api.delete(id)).await
    }

    fn preview(&self, op: &WriteOp) -> Result<Vec<Value>> {
        RecordSink::preview(self, op)
    }
}

#[async_trait]
impl GroupSink for Intercom {
    async fn ensure_group(&self, name: &str) -> Result<String> {
        let req = self.api.create_tag(name);
        let resp = self.engine.send(&req).await?;
        id_of(&req, &resp.json(&req)?, "tag")
    }

    async fn add_member(&self, group: &str, id: &str) -> Result<()> {
        self.engine.send(&self.api.tag(id, group)).await?;
        Ok(())
    }

    async fn remove_member(&self, group: &str, id: &str) -> Result<()> {
        self.engine
            .send_unless_gone(&self.api.untag(id, group))
            .await
    }
}
