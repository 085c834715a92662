//! The file connectors as export destinations: profiles are records keyed
//! by the id field, created, updated and deleted by batch in one rewrite of
//! the file each. A file has no place for group memberships.

use std::collections::{HashMap, HashSet};

use anyhow::Result;

use super::store::Store;
use super::Format;
use crate::connector::{ProfileOutcome, ProfileUpdate, Record, Rejection};

/// One profile at a time.
impl<F: Format> Store<F> {
    /// Create the profile, or merge into the record that already has its id.
    pub(super) fn create_profile(&self, fields: Record) -> Result<String> {
        let id = self
            .id_of(&fields)
            .ok_or_else(|| Rejection(format!("the profile has no {}", self.id_field)))?;
        let pending = std::cell::RefCell::new(Some(fields.clone()));
        self.rewrite(
            [&fields],
            |mut record| {
                if self.id_of(&record).as_deref() == Some(id.as_str()) {
                    if let Some(f) = pending.borrow_mut().take() {
                        record.extend(f);
                    }
                }
                Some(record)
            },
            || pending.borrow_mut().take().into_iter().collect(),
        )?;
        Ok(id)
    }

    pub(super) fn update_profile(&self, id: &str, update: ProfileUpdate) -> Result<String> {
        if self.find(id)?.is_none() {
            return Err(self.not_found(id));
        }
        let new_id = self.id_of(&update.set).unwrap_or_else(|| id.to_string());
        if new_id != id && self.find(&new_id)?.is_some() {
            return Err(Rejection(format!(
                "another record already has {} \"{new_id}\"",
                self.id_field
            ))
            .into());
        }
        // A cleared field is removed (an empty cell in a CSV file).
        self.rewrite(
            [&update.set],
            |mut record| {
                if self.id_of(&record).as_deref() == Some(id) {
                    apply_update(&mut record, &update);
                }
                Some(record)
            },
            Vec::new,
        )?;
        Ok(new_id)
    }

    /// Delete the profile; one already gone is done too.
    pub(super) fn delete_profile(&self, id: &str) -> Result<()> {
        if self.find(id)?.is_none() {
            return Ok(());
        }
        self.remove(id)
    }
}

/// Batches: one rewrite each.
impl<F: Format> Store<F> {
    /// Create profiles, or merge into the records that have their ids, in
    /// one rewrite.
    pub(super) fn create_profiles(&self, profiles: Vec<Record>) -> Result<Vec<ProfileOutcome>> {
        let mut outcomes = Vec::with_capacity(profiles.len());
        // id -> the fields to merge; `order` keeps the order they came in.
        let mut pending: HashMap<String, Record> = HashMap::new();
        let mut order = Vec::new();
        for fields in profiles {
            match self.id_of(&fields) {
                Some(id) => {
                    outcomes.push(ProfileOutcome::Ok { id: id.clone() });
                    match pending.get_mut(&id) {
                        Some(f) => f.extend(fields),
                        None => {
                            order.push(id.clone());
                            pending.insert(id, fields);
                        }
                    }
                }
                None => outcomes.push(ProfileOutcome::Rejected {
                    reason: format!("the profile has no {}", self.id_field),
                }),
            }
        }
        if pending.is_empty() {
            return Ok(outcomes);
        }
        let written: Vec<Record> = order
            .iter()
            .filter_map(|id| pending.get(id).cloned())
            .collect();
        let left = std::cell::RefCell::new(pending);
        self.rewrite(
            &written,
            |mut record| {
                if let Some(id) = self.id_of(&record) {
                    if let Some(fields) = left.borrow_mut().remove(&id) {
                        record.extend(fields);
                    }
                }
                Some(record)
            },
            || {
                let mut left = left.borrow_mut();
                order.iter().filter_map(|id| left.remove(id)).collect()
            },
        )?;
        Ok(outcomes)
    }

    /// Update profiles in one scan and one rewrite, with the outcomes that
    /// one `update_profile` after another would give: a missing id is not
    /// found, a change of id onto another record's is refused.
    pub(super) fn update_profiles(
        &self,
        updates: Vec<(String, ProfileUpdate)>,
    ) -> Result<Vec<ProfileOutcome>> {
        let mut guard = self.lock()?;
        // Only the ids the batch names (and may move to) are looked for,
        // so memory stays with the batch, not the file.
        let mut wanted: HashSet<String> = HashSet::new();
        for (id, update) in &updates {
            wanted.insert(id.clone());
            if let Some(new_id) = self.id_of(&update.set) {
                wanted.insert(new_id);
            }
        }
        // id now -> the id of the record in the file that holds it.
        let mut origin: HashMap<String, String> = HashMap::new();
        for record in self.records(0)? {
            if let Some(id) = self.id_of(&record?) {
                if wanted.contains(&id) {
                    origin.insert(id.clone(), id);
                }
            }
        }
        let mut outcomes = Vec::with_capacity(updates.len());
        let mut edits: HashMap<String, Vec<ProfileUpdate>> = HashMap::new();
        for (id, update) in updates {
            let Some(file_id) = origin.get(&id).cloned() else {
                outcomes.push(ProfileOutcome::NotFound {
                    reason: format!("{:#}", self.not_found(&id)),
                });
                continue;
            };
            let new_id = self.id_of(&update.set).unwrap_or_else(|| id.clone());
            if new_id != id {
                if origin.contains_key(&new_id) {
                    outcomes.push(ProfileOutcome::Rejected {
                        reason: format!(
                            "another record already has {} \"{new_id}\"",
                            self.id_field
                        ),
                    });
                    continue;
                }
                origin.remove(&id);
                origin.insert(new_id.clone(), file_id.clone());
            }
            outcomes.push(ProfileOutcome::Ok { id: new_id });
            edits.entry(file_id).or_default().push(update);
        }
        if edits.is_empty() {
            return Ok(outcomes);
        }
        let sets: Vec<&Record> = edits.values().flatten().map(|u| &u.set).collect();
        // A cleared field is removed (an empty cell in a CSV file).
        self.rewrite_locked(
            &mut guard,
            sets,
            |mut record| {
                let changes = self.id_of(&record).and_then(|id| edits.get(&id));
                for update in changes.into_iter().flatten() {
                    apply_update(&mut record, update);
                }
                Some(record)
            },
            Vec::new,
        )?;
        Ok(outcomes)
    }

    /// Delete profiles in one rewrite; ids already gone are done too.
    pub(super) fn delete_profiles(&self, ids: Vec<String>) -> Result<Vec<ProfileOutcome>> {
        let mut guard = self.lock()?;
        let gone: HashSet<&str> = ids.iter().map(String::as_str).collect();
        let mut any = false;
        for record in self.records(0)? {
            if self
                .id_of(&record?)
                .is_some_and(|id| gone.contains(id.as_str()))
            {
                any = true;
                break;
            }
        }
        if any {
            self.rewrite_locked(
                &mut guard,
                [],
                |record| {
                    let keep = self
                        .id_of(&record)
                        .is_none_or(|id| !gone.contains(id.as_str()));
                    keep.then_some(record)
                },
                Vec::new,
            )?;
        }
        Ok(ids
            .iter()
            .map(|id| ProfileOutcome::Ok { id: id.clone() })
            .collect())
    }
}

/// Set and clear the fields an export update names; a cleared field is
/// removed (an empty cell in a CSV file).
fn apply_update(record: &mut Record, update: &ProfileUpdate) {
    record.extend(update.set.clone());
    for key in &update.clear {
        record.shift_remove(key);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use crate::connector::file::testing::{out_file, rec, store, text};
    use crate::connector::{ProfileOutcome, ProfileSink, ProfileUpdate};

    /// A batch of updates answers what one update after another would:
    /// an id moved onto a free one, a missing id, an id moved onto a taken one.
    #[tokio::test]
    async fn a_batch_of_updates_is_one_rewrite_with_per_profile_outcomes() {
        let (_dir, path) = out_file();
        std::fs::write(
            &path,
            "{\"id\":\"a\",\"n\":1,\"x\":1}\n{\"id\":\"b\",\"n\":2}\n",
        )
        .unwrap();
        let c = store(&path);
        let update = |set: Value, clear: &[&str]| ProfileUpdate {
            set: rec(set),
            clear: clear.iter().map(|k| k.to_string()).collect(),
        };
        let outcomes = c
            .update_profiles(vec![
                ("a".into(), update(json!({"id": "a2", "n": 10}), &["x"])),
                ("gone".into(), update(json!({"n": 0}), &[])),
                ("b".into(), update(json!({"id": "a2"}), &[])),
                ("b".into(), update(json!({"n": 20}), &[])),
            ])
            .await;
        assert_eq!(outcomes[0], ProfileOutcome::Ok { id: "a2".into() });
        assert!(
            matches!(&outcomes[1], ProfileOutcome::NotFound { reason } if reason.contains("\"gone\"")),
            "{outcomes:?}"
        );
        assert!(
            matches!(&outcomes[2], ProfileOutcome::Rejected { reason } if reason.contains("already has id \"a2\"")),
            "{outcomes:?}"
        );
        assert_eq!(outcomes[3], ProfileOutcome::Ok { id: "b".into() });
        assert_eq!(
            text(&path),
            "{\"id\":\"a2\",\"n\":10}\n{\"id\":\"b\",\"n\":20}\n"
        );
        let deleted = c.delete_profiles(vec!["a2".into(), "never".into()]).await;
        assert!(deleted
            .iter()
            .all(|o| matches!(o, ProfileOutcome::Ok { .. })));
        assert_eq!(text(&path), "{\"id\":\"b\",\"n\":20}\n");
    }
}
