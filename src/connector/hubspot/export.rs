//! HubSpot as an export destination: contacts found by their key, created
//! in batches, updated (an empty string clears a property) and archived;
//! groups are static (MANUAL) lists, found by name or created, members
//! added and removed 100 a request.

use anyhow::Result;
use async_trait::async_trait;
use serde_json::Value;

use super::batch;
use super::requests::{properties, Nulls, MAX_BATCH, MAX_MEMBERS};
use super::{object, vendor_error, HubSpot};
use crate::connector::saas;
use crate::connector::{
    record_id, ExportFields, FieldSpec, FieldType, GroupSink, ProfileOutcome, ProfileSink,
    ProfileUpdate, Record, RecordSink, Rejection, UpsertOutcome, WriteOp,
};
use crate::error::failed;
use crate::http::RequestSpec;

/// The id of the list in a Lists API answer (`{"list": {"listId"}}`).
fn list_id(req: &RequestSpec, body: &Value) -> Result<String> {
    let list = body.get("list").unwrap_or(body);
    let id = match list.get("listId") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => {
            return Err(failed(format!(
                "{} {} answered no list.listId",
                req.method,
                req.shown_url()
            ))
            .into())
        }
    };
    match list.get("processingType").and_then(Value::as_str) {
        None | Some("MANUAL" | "SNAPSHOT") => Ok(id),
        Some(other) => {
            let name = list.get("name").and_then(Value::as_str).unwrap_or("");
            Err(failed(format!(
                "HubSpot list \"{name}\" ({id}) is a {other} list; its members cannot be changed by API"
            ))
            .hint("rename that list in HubSpot or use another group name: ferry creates and edits static (MANUAL) lists")
            .into())
        }
    }
}

impl HubSpot {
    /// Add or remove `ids` in list `group`, 100 a request.
    async fn members(&self, group: &str, ids: Vec<String>, add: bool) -> Vec<ProfileOutcome> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(MAX_MEMBERS) {
            let req = if add {
                self.api.add_members(group, chunk)
            } else {
                self.api.remove_members(group, chunk)
            };
            let answer = match self.engine.send(&req).await {
                Ok(resp) => resp.json(&req),
                Err(e) => Err(e),
            };
            let body = match answer {
                Ok(b) => b,
                Err(e) => {
                    let reason = format!("{e:#}");
                    out.extend(chunk.iter().map(|_| ProfileOutcome::Error {
                        reason: reason.clone(),
                        retry_in: None,
                    }));
                    continue;
                }
            };
            let missing: Vec<&str> = body
                .get("recordIdsMissing")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            for id in chunk {
                // Removing a contact that is not a member is ignored by
                // HubSpot and is done as far as ferry is concerned.
                out.push(if add && missing.contains(&id.as_str()) {
                    ProfileOutcome::NotFound {
                        reason: format!("HubSpot has no contact {id} to add to the list"),
                    }
                } else {
                    ProfileOutcome::Ok { id: id.clone() }
                });
            }
        }
        out
    }
}

/// The single outcome of a one-id membership call, as a result.
fn one(mut outcomes: Vec<ProfileOutcome>) -> Result<()> {
    match outcomes.pop() {
        Some(ProfileOutcome::Ok { .. }) => Ok(()),
        Some(ProfileOutcome::NotFound { reason }) => Err(crate::error::not_found(reason).into()),
        Some(
            ProfileOutcome::Error { reason, .. }
            | ProfileOutcome::Rejected { reason }
            | ProfileOutcome::Skipped { reason },
        ) => Err(failed(reason).into()),
        None => Err(failed("the list membership call answered nothing").into()),
    }
}

/// A profile update as HubSpot properties: set values, `""` for clears.
pub(super) fn update_body(set: &Record, clear: &[String]) -> Result<Value> {
    let mut props = properties(set, Nulls::Clear).map_err(HubSpot::unfit)?;
    if let Value::Object(m) = &mut props {
        for c in clear {
            m.insert(c.clone(), Value::String(String::new()));
        }
    }
    Ok(props)
}

/// A contact property as a field: its type from HubSpot's `type`, its
/// label (and whether HubSpot computes it) as the description.
fn property_field(p: &Value) -> Option<FieldSpec> {
    let name = p.get("name").and_then(Value::as_str)?;
    let kind = p.get("type").and_then(Value::as_str).unwrap_or("string");
    let field_type = match kind {
        "number" => FieldType::Number,
        "bool" => FieldType::Boolean,
        "date" => FieldType::Date,
        "datetime" => FieldType::Datetime,
        // enumeration, phone_number and the rest are written as text.
        _ => FieldType::String,
    };
    let label = p.get("label").and_then(Value::as_str).unwrap_or(name);
    let read_only = p.pointer("/modificationMetadata/readOnlyValue") == Some(&Value::Bool(true))
        || p.get("calculated") == Some(&Value::Bool(true));
    let description = if read_only {
        format!("{label} ({kind}, read-only)")
    } else {
        format!("{label} ({kind})")
    };
    Some(FieldSpec::named(name.to_string(), field_type, description))
}

#[async_trait]
impl ProfileSink for HubSpot {
    /// The portal's contact properties as HubSpot lists them now. Export
    /// checks against the spec's fields: HubSpot marks no property
    /// required, and refuses an unknown one per contact itself.
    async fn live_fields(&self) -> Result<ExportFields> {
        let req = self.api.contact_properties();
        let body = self.engine.send(&req).await?.json(&req)?;
        let Some(Value::Array(results)) = body.get("results") else {
            return Err(failed(format!(
                "GET {} answered no \"results\" array",
                req.shown_url()
            ))
            .into());
        };
        let mut fields = self.export_fields().await?;
        fields.fields = results.iter().filter_map(property_field).collect();
        Ok(fields)
    }

    async fn export_fields(&self) -> Result<ExportFields> {
        Ok(ExportFields {
            key: self.api.id_property.clone(),
            key_from_profile_id: false,
            fields: self.spec.fields.clone(),
            // Custom properties must exist in the portal; HubSpot refuses
            // the ones that do not, per contact.
            extra_fields: true,
        })
    }

    async fn find_profile(&self, key: &str) -> Result<Option<String>> {
        let req = self.api.get_by_key(key);
        let Some(resp) = self.engine.send_found(&req).await? else {
            return Ok(None);
        };
        let record = object(&req, &resp.json(&req)?)?;
        Ok(record_id(&record, "id"))
    }

    async fn create_profile(&self, fields: Record) -> Result<String> {
        match self.upsert(fields).await? {
            UpsertOutcome::Ok { id } => Ok(id),
            UpsertOutcome::Rejected { reason, .. } => Err(Rejection(reason).into()),
        }
    }

    async fn create_profiles(&self, profiles: Vec<Record>) -> Vec<ProfileOutcome> {
        let mut out = Vec::with_capacity(profiles.len());
        for chunk in profiles.chunks(MAX_BATCH) {
            match batch::upsert(&self.engine, &self.api, chunk).await {
                Ok(outcomes) => out.extend(outcomes.into_iter().map(saas::batch::profile_outcome)),
                Err(e) => out.extend(saas::batch::all_failed(chunk.len(), e)),
            }
        }
        out
    }

    async fn update_profile(&self, id: &str, update: ProfileUpdate) -> Result<String> {
        let req = self
            .api
            .update(id, update_body(&update.set, &update.clear)?);
        let resp = self.engine.execute(&req).await?;
        if resp.is_success() {
            return Ok(id.to_string());
        }
        let err = vendor_error(&req, &resp);
        // A 400 is this contact's data (an invalid value, an unknown property).
        if resp.status == 400 {
            return Err(Rejection(err.message).into());
        }
        Err(err.into())
    }

    async fn delete_profile(&self, id: &str) -> Result<()> {
        self.engine.send_unless_gone(&self.api.archive(id)).await
    }

    fn preview(&self, op: &WriteOp) -> Result<Vec<Value>> {
        RecordSink::preview(self, op)
    }
}

#[async_trait]
impl GroupSink for HubSpot {
    async fn ensure_group(&self, name: &str) -> Result<String> {
        let req = self.api.list_by_name(name);
        if let Some(resp) = self.engine.send_found(&req).await? {
            return list_id(&req, &resp.json(&req)?);
        }
        let req = self.api.create_list(name);
        let resp = self.engine.execute(&req).await?;
        if resp.is_success() {
            return list_id(&req, &resp.json(&req)?);
        }
        // Another run may have created the list since the lookup (names
        // are unique): look it up once more before failing.
        if matches!(resp.status, 400 | 409) {
            let again = self.api.list_by_name(name);
            let found = self.engine.execute(&again).await?;
            if found.is_success() {
                return list_id(&again, &found.json(&again)?);
            }
        }
        Err(vendor_error(&req, &resp).into())
    }

    async fn add_member(&self, group: &str, id: &str) -> Result<()> {
        one(self.members(group, vec![id.to_string()], true).await)
    }

    async fn remove_member(&self, group: &str, id: &str) -> Result<()> {
        one(self.members(group, vec![id.to_string()], false).await)
    }

    async fn add_members(&self, group: &str, ids: Vec<String>) -> Vec<ProfileOutcome> {
        self.members(group, ids, true).await
    }

    async fn remove_members(&self, group: &str, ids: Vec<String>) -> Vec<ProfileOutcome> {
        self.members(group, ids, false).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn updates_clear_with_empty_strings() {
        let set = json!({"firstname": "Ada", "phone": null})
            .as_object()
            .cloned()
            .unwrap_or_default();
        let body = update_body(&set, &["company".to_string()]).unwrap();
        assert_eq!(
            body,
            json!({"firstname": "Ada", "phone": "", "company": ""})
        );
    }
}
