//! Klaviyo as an export destination: profiles upserted, updated and deleted
//! by their key (a 409, 422 or profile-refusing 400 rejects the profile),
//! and groups as lists, found by name or created, members added and removed
//! 1,000 a call.

use anyhow::Result;
use async_trait::async_trait;
use serde_json::Value;

use super::errors::{data_id, send_profile};
use super::requests::{next_link, profile_body, shape, Ident, MAX_MEMBERS};
use super::Klaviyo;
use crate::connector::saas::batch;
use crate::connector::{
    ExportFields, GroupSink, ProfileOutcome, ProfileSink, ProfileUpdate, Record, RecordSink,
    Rejection, WriteOp,
};
use crate::error::failed;
use crate::http::redact::redact_url;
use crate::http::segment;

/// Pages of a list lookup read before creating the list (10 lists a page).
const MAX_LIST_PAGES: usize = 100;

impl Klaviyo {
    /// Add (`POST`) or remove (`DELETE`) `ids` on list `group`, 1,000 a call;
    /// each call's answer is the outcome of its profiles.
    async fn membership(&self, method: &str, group: &str, ids: Vec<String>) -> Vec<ProfileOutcome> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(MAX_MEMBERS) {
            let req = self.api.members(method, &segment(group), chunk);
            match send_profile(&self.engine, &req).await {
                Ok(_) => out.extend(chunk.iter().map(|id| ProfileOutcome::Ok { id: id.clone() })),
                Err(e) => out.extend(batch::all_failed(chunk.len(), e)),
            }
        }
        out
    }
}

#[async_trait]
impl ProfileSink for Klaviyo {
    async fn export_fields(&self) -> Result<ExportFields> {
        Ok(ExportFields {
            key: self.key.clone(),
            key_from_profile_id: false,
            fields: self
                .spec
                .fields
                .iter()
                .filter(|f| !["id", "created", "updated"].contains(&f.name.as_ref()))
                .cloned()
                .collect(),
            extra_fields: true,
        })
    }

    async fn find_profile(&self, key: &str) -> Result<Option<String>> {
        self.find(&self.key, key).await
    }

    async fn create_profile(&self, fields: Record) -> Result<String> {
        let shaped = shape(&fields, false).map_err(|u| Rejection(u.0))?;
        let req = self.api.upsert_profile(profile_body(None, &shaped));
        let body = send_profile(&self.engine, &req).await?.json(&req)?;
        data_id(&req, &body)
    }

    async fn update_profile(&self, id: &str, update: ProfileUpdate) -> Result<String> {
        let req = self
            .update_request(id, &update.set, &update.clear)
            .map_err(|e| Rejection(format!("{e:#}")))?;
        send_profile(&self.engine, &req).await?;
        Ok(id.to_string())
    }

    async fn delete_profile(&self, id: &str) -> Result<()> {
        match send_profile(
            &self.engine,
            &self.api.delete_profile(&Ident::Id(id.into())),
        )
        .await
        {
            // Already gone is what a delete wants.
            Err(e)
                if crate::error::find_failure(&e)
                    .is_some_and(|f| f.kind == crate::error::Kind::NotFound) =>
            {
                Ok(())
            }
            other => other.map(|_| ()),
        }
    }

    fn preview(&self, op: &WriteOp) -> Result<Vec<Value>> {
        RecordSink::preview(self, op)
    }
}

#[async_trait]
impl GroupSink for Klaviyo {
    async fn ensure_group(&self, name: &str) -> Result<String> {
        // `GET /api/lists` answers at most 10 lists a page and names are not
        // documented as unique (nor `equals` as case-sensitive): follow
        // `links.next` until a list has exactly this name, so a list on a
        // later page is found rather than created again.
        let mut req = self.api.find_list(name)?;
        for _ in 0..MAX_LIST_PAGES {
            let body = self.engine.send(&req).await?.json(&req)?;
            let found = body
                .get("data")
                .and_then(Value::as_array)
                .and_then(|lists| {
                    lists
                        .iter()
                        .find(|l| {
                            l.pointer("/attributes/name").and_then(Value::as_str) == Some(name)
                        })
                        .and_then(|l| l.get("id"))
                        .and_then(Value::as_str)
                        .map(str::to_string)
                });
            if let Some(id) = found {
                return Ok(id);
            }
            match next_link(&body, None) {
                Ok(Some(next)) => {
                    let next = self.api.follow(&next);
                    if next.url == req.url {
                        break;
                    }
                    req = next;
                }
                Ok(None) => break,
                Err(link) => {
                    return Err(failed(format!(
                        "GET {} answered a next link ferry cannot read: {}",
                        req.shown_url(),
                        redact_url(&link)
                    ))
                    .into())
                }
            }
        }
        let req = self.api.create_list(name);
        let resp = self.engine.send(&req).await.map_err(|e| {
            e.context(format!(
                "could not create the Klaviyo list \"{name}\" (Klaviyo allows 150 new lists a day)"
            ))
        })?;
        data_id(&req, &resp.json(&req)?)
    }

    async fn add_member(&self, group: &str, id: &str) -> Result<()> {
        match self.add_members(group, vec![id.to_string()]).await.pop() {
            Some(ProfileOutcome::Ok { .. }) => Ok(()),
            other => Err(failed(outcome_reason(other)).into()),
        }
    }

    async fn remove_member(&self, group: &str, id: &str) -> Result<()> {
        match self.remove_members(group, vec![id.to_string()]).await.pop() {
            Some(ProfileOutcome::Ok { .. }) => Ok(()),
            other => Err(failed(outcome_reason(other)).into()),
        }
    }

    async fn add_members(&self, group: &str, ids: Vec<String>) -> Vec<ProfileOutcome> {
        self.membership("POST", group, ids).await
    }

    async fn remove_members(&self, group: &str, ids: Vec<String>) -> Vec<ProfileOutcome> {
        self.membership("DELETE", group, ids).await
    }
}

fn outcome_reason(o: Option<ProfileOutcome>) -> String {
    match o {
        Some(
            ProfileOutcome::Skipped { reason }
            | ProfileOutcome::Rejected { reason }
            | ProfileOutcome::NotFound { reason }
            | ProfileOutcome::Error { reason, .. },
        ) => reason,
        _ => "no answer".into(),
    }
}
