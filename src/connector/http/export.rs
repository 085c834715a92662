//! The `http` connector as an export destination. The manifest says how:
//! `exportKey` names the field profiles are looked up by, `find` looks a
//! record up by that key, `insert`/`patch`/`delete` write it, and
//! `findGroup`, `createGroup`, `addMembers` and `removeMembers` hold group
//! memberships. Each answer is classified for the export engine as import
//! classifies it ([`super::refuses_the_record`]): a refusal of the record is
//! that profile's [`Rejection`], a 404 is not found, anything else an error
//! (both retried next run).

use anyhow::Result;
use serde_json::Value;

use crate::connector::{record_id, ProfileOutcome, ProfileUpdate, Record, Rejection};
use crate::error::{failed, not_found, unsupported};
use crate::http::{RequestSpec, Response};

use super::manifest::ActionSpec;
use super::{refuses_the_record, scalar, HttpConnector};

/// The most ids one membership request carries when the action does not say.
const DEFAULT_MEMBERS_BATCH: usize = 100;

impl HttpConnector {
    /// The field export looks profiles up by.
    pub(super) fn export_key(&self) -> &str {
        self.builder
            .manifest
            .export_key
            .as_deref()
            .unwrap_or(&self.id_field)
    }

    /// Whether the manifest describes groups fully: a way to get a group's
    /// id and both membership changes.
    pub(super) fn has_groups(&self) -> bool {
        let a = &self.builder.manifest.actions;
        (a.find_group.is_some() || a.create_group.is_some())
            && a.add_members.is_some()
            && a.remove_members.is_some()
    }

    /// Whether the manifest can receive exported profiles.
    pub(super) fn can_export(&self) -> bool {
        let a = &self.builder.manifest.actions;
        let can_find = a.find.is_some() || self.export_key() == self.id_field;
        can_find && a.insert.is_some() && a.patch.is_some()
    }

    /// The request of `name` with more placeholder values.
    async fn build_with(
        &self,
        name: &str,
        id: Option<&str>,
        record: Option<&Record>,
        vars: &[(&str, &str)],
    ) -> Result<RequestSpec> {
        let action = self.action(name)?;
        let bearer = self.bearer().await?;
        self.builder
            .with_vars(vars)
            .request(name, action, id, record, &[], None, bearer.as_deref())
    }

    /// The id of the first match in the answer of a lookup action: the
    /// action's `records` points at the matches (an array or one object),
    /// its `id` at the id inside a match.
    fn first_match(
        &self,
        name: &str,
        default_id: &str,
        req: &RequestSpec,
        resp: &Response,
    ) -> Result<Option<String>> {
        let action = self.action(name)?;
        let body = resp.json(req)?;
        let at = action.records.as_deref().unwrap_or("");
        let first = match body.pointer(at) {
            Some(Value::Array(items)) => items.first(),
            Some(v @ Value::Object(_)) => Some(v),
            _ => None,
        };
        let Some(first) = first else {
            return Ok(None);
        };
        let id_at = action.id.clone().unwrap_or_else(|| default_id.to_string());
        match first.pointer(&id_at).and_then(scalar) {
            Some(id) => Ok(Some(id)),
            None => Err(failed(format!(
                "{} {} answered a match with no id at \"{id_at}\"",
                req.method,
                req.shown_url()
            ))
            .hint(format!(
                "point {} at the id inside a match",
                self.at(name, "id")
            ))
            .into()),
        }
    }

    /// The destination id of the record whose export key is `key`.
    pub(super) async fn find_by_key(&self, key: &str) -> Result<Option<String>> {
        if self.builder.manifest.actions.find.is_none() && self.export_key() == self.id_field {
            // Keyed by the record id itself: the record is found by a get.
            let req = self.build_with("get", Some(key), None, &[]).await?;
            let found = self.engine.send_found(&req).await?;
            return Ok(found.map(|_| key.to_string()));
        }
        let req = self.build_with("find", None, None, &[("key", key)]).await?;
        let Some(resp) = self.engine.send_found(&req).await? else {
            return Ok(None);
        };
        let default_id = format!("/{}", self.id_field);
        self.first_match("find", &default_id, &req, &resp)
    }

    /// Send a profile write: a refusal of the profile ([`refuses_the_record`])
    /// is its [`Rejection`], a 404 not found, anything else an error.
    async fn write_profile(
        &self,
        name: &str,
        id: Option<&str>,
        record: &Record,
    ) -> Result<(RequestSpec, Response)> {
        let (req, resp) = self.send_write(name, id, record).await?;
        if resp.is_success() {
            return Ok((req, resp));
        }
        let err = self.engine.failure(&req, &resp);
        if refuses_the_record(resp.status) {
            return Err(anyhow::Error::new(Rejection(err.to_string())));
        }
        Err(err.into())
    }

    /// Create the profile, or update the one that has its key already.
    pub(super) async fn create(&self, fields: Record) -> Result<String> {
        let key = record_id(&fields, self.export_key());
        let found = match &key {
            Some(k) => self.find_by_key(k).await?,
            None => None,
        };
        if let Some(id) = found {
            self.write_profile("patch", Some(&id), &fields).await?;
            return Ok(id);
        }
        let (req, resp) = self.write_profile("insert", None, &fields).await?;
        let stored = self.inserted(fields, &req, &resp)?;
        record_id(&stored, &self.id_field).ok_or_else(|| {
            failed(format!(
                "{} {} created a record but answered no id",
                req.method,
                req.shown_url()
            ))
            .into()
        })
    }

    /// The patch that sets `set` and clears `clear`: a cleared field is sent
    /// as null (JSON merge patch, RFC 7396).
    pub(super) fn update_body(update: &ProfileUpdate) -> Record {
        let mut record = update.set.clone();
        for field in &update.clear {
            record.insert(field.clone(), Value::Null);
        }
        record
    }

    pub(super) async fn update(&self, id: &str, update: ProfileUpdate) -> Result<String> {
        let record = Self::update_body(&update);
        self.write_profile("patch", Some(id), &record).await?;
        Ok(id.to_string())
    }

    /// Delete the record `id`; one already gone (404) is done.
    pub(super) async fn remove(&self, id: &str) -> Result<()> {
        let req = self.build_with("delete", Some(id), None, &[]).await?;
        self.engine.send_unless_gone(&req).await
    }

    /// The id of the group `name`: found by `findGroup`, else created by
    /// `createGroup`.
    pub(super) async fn group_id(&self, name: &str) -> Result<String> {
        let a = &self.builder.manifest.actions;
        if a.find_group.is_none() && a.create_group.is_none() {
            return Err(unsupported("http", "hold group memberships")
                .hint(format!(
                    "describe \"findGroup\" or \"createGroup\", \"addMembers\" and \"removeMembers\" under \"actions\" in {}",
                    self.builder.shown
                ))
                .into());
        }
        if a.find_group.is_some() {
            let req = self
                .build_with("findGroup", None, None, &[("name", name)])
                .await?;
            let resp = self.engine.send(&req).await?;
            if let Some(id) = self.first_match("findGroup", "/id", &req, &resp)? {
                return Ok(id);
            }
        }
        if a.create_group.is_none() {
            return Err(not_found(format!("no group named \"{name}\""))
                .hint(format!(
                    "create it first, or describe \"createGroup\" in {}",
                    self.builder.shown
                ))
                .into());
        }
        let req = self
            .build_with("createGroup", None, None, &[("name", name)])
            .await?;
        let resp = self.engine.send(&req).await?;
        let body = resp.json(&req)?;
        let id_at = self.action("createGroup")?.id.as_deref().unwrap_or("/id");
        body.pointer(id_at).and_then(scalar).ok_or_else(|| {
            failed(format!(
                "{} {} created group \"{name}\" but answered no id at \"{id_at}\"",
                req.method,
                req.shown_url()
            ))
            .hint(format!(
                "point {} at the new group's id",
                self.at("createGroup", "id")
            ))
            .into()
        })
    }

    /// The membership action (`addMembers` or `removeMembers`) and its batch size.
    fn members_action(&self, adding: bool) -> Result<(&'static str, &ActionSpec, usize)> {
        let name = if adding {
            "addMembers"
        } else {
            "removeMembers"
        };
        let action = self.action(name)?;
        let size = action.batch_size.unwrap_or(DEFAULT_MEMBERS_BATCH).max(1);
        Ok((name, action, size))
    }

    /// The membership requests for `ids` in `group`, one per batch.
    pub(super) fn members_requests(
        &self,
        adding: bool,
        group: &str,
        ids: &[String],
        bearer: Option<&str>,
    ) -> Result<Vec<RequestSpec>> {
        let (name, action, size) = self.members_action(adding)?;
        ids.chunks(size)
            .map(|chunk| {
                self.builder
                    .members_request(name, action, group, chunk, bearer)
            })
            .collect()
    }

    /// Add (or remove) `ids` to the group `group`; one outcome per id. With
    /// a `results` pointer each id gets its own answer; without one the
    /// status answers for the whole request.
    pub(super) async fn members(
        &self,
        adding: bool,
        group: &str,
        ids: Vec<String>,
    ) -> Vec<ProfileOutcome> {
        let mut outcomes = Vec::with_capacity(ids.len());
        let (name, action, size) = match self.members_action(adding) {
            Ok(a) => a,
            Err(e) => return all(ids.len(), &e),
        };
        for chunk in ids.chunks(size) {
            let sent = async {
                let bearer = self.bearer().await?;
                let req =
                    self.builder
                        .members_request(name, action, group, chunk, bearer.as_deref())?;
                let resp = self.engine.execute(&req).await?;
                Ok::<_, anyhow::Error>((req, resp))
            }
            .await;
            match sent {
                Ok((req, resp)) => {
                    outcomes.extend(self.member_outcomes(name, action, chunk, &req, &resp))
                }
                Err(e) => outcomes.extend(all(chunk.len(), &e)),
            }
        }
        outcomes
    }

    fn member_outcomes(
        &self,
        name: &str,
        action: &ActionSpec,
        chunk: &[String],
        req: &RequestSpec,
        resp: &Response,
    ) -> Vec<ProfileOutcome> {
        if !resp.is_success() {
            let err = self.engine.failure(req, resp);
            let reason = err.to_string();
            if refuses_the_record(resp.status) {
                return chunk
                    .iter()
                    .map(|_| ProfileOutcome::Rejected {
                        reason: reason.clone(),
                    })
                    .collect();
            }
            return all(chunk.len(), &err.into());
        }
        let Some(pointer) = &action.results else {
            return chunk
                .iter()
                .map(|id| ProfileOutcome::Ok { id: id.clone() })
                .collect();
        };
        let results = match resp.json(req) {
            Ok(body) => match body.pointer(pointer) {
                Some(Value::Array(items)) if items.len() == chunk.len() => items.clone(),
                _ => {
                    let e = failed(format!(
                        "{}: no array of {} results at \"{pointer}\" in the answer to {} {}",
                        self.at(name, "results"),
                        chunk.len(),
                        req.method,
                        req.shown_url()
                    ));
                    return all(chunk.len(), &e.into());
                }
            },
            Err(e) => return all(chunk.len(), &e),
        };
        let error_at = action.error.as_deref().unwrap_or("/error");
        chunk
            .iter()
            .zip(results)
            .map(|(id, result)| match result.pointer(error_at) {
                None | Some(Value::Null) => ProfileOutcome::Ok { id: id.clone() },
                Some(Value::String(reason)) => ProfileOutcome::Rejected {
                    reason: reason.clone(),
                },
                Some(other) => ProfileOutcome::Rejected {
                    reason: other.to_string(),
                },
            })
            .collect()
    }
}

/// The same failure for `n` profiles.
fn all(n: usize, err: &anyhow::Error) -> Vec<ProfileOutcome> {
    let reason = format!("{err:#}");
    (0..n)
        .map(|_| ProfileOutcome::Error {
            reason: reason.clone(),
            retry_in: None,
        })
        .collect()
}
