//! Batch upserts: appended as they stand when every id is new to the file
//! (and, for CSV, no column is), else one rewrite that replaces records
//! where they stand. A file's upserts are the hot path of a bulk import.

use std::collections::HashMap;

use anyhow::Result;

use super::store::Store;
use super::Format;
use crate::connector::raw::RawRecords;
use crate::connector::{Record, UpsertOutcome};

impl<F: Format> Store<F> {
    /// Upsert `records`: appended as they stand when every id is new to the
    /// file, else by a rewrite that replaces records where they stand.
    pub(super) fn upsert_records(&self, records: &[Record]) -> Result<Vec<UpsertOutcome>> {
        let mut outcomes = Vec::with_capacity(records.len());
        // The records that have an id, and the hashes of their ids.
        let mut keyed: Vec<&Record> = Vec::with_capacity(records.len());
        let mut hashes: Vec<u64> = Vec::with_capacity(records.len());
        for record in records.iter() {
            match self.id_of(record) {
                Some(id) => {
                    hashes.push(self.hash(&id));
                    keyed.push(record);
                    outcomes.push(UpsertOutcome::Ok { id });
                }
                None => outcomes.push(UpsertOutcome::Rejected {
                    id: None,
                    reason: format!("the record has no {}", self.id_field),
                }),
            }
        }
        if keyed.is_empty() {
            return Ok(outcomes);
        }
        let mut guard = self.lock()?;
        // The common case of a bulk import: ids new to the file and
        // unique in the batch, columns known. The batch is appended as
        // it stands, with no copy of its records.
        if self.exists() {
            let index = self.index(&mut guard)?;
            let header = self.format.has_header();
            let known_columns =
                |r: &&Record| !header || r.keys().all(|k| index.columns.contains(k));
            let sorted = keyed
                .iter()
                .all(known_columns)
                .then(|| self.appendable(index, &hashes))
                .flatten();
            if let Some(sorted) = sorted {
                self.append(index, &sorted, |out, columns| {
                    self.format.append(out, columns, &keyed)
                })?;
                return Ok(outcomes);
            }
        }
        // id -> the last record of the batch with that id
        let mut by_id: HashMap<String, Record> = HashMap::new();
        let mut order = Vec::new();
        for record in keyed {
            if let Some(id) = self.id_of(record) {
                if by_id.insert(id.clone(), record.clone()).is_none() {
                    order.push(id);
                }
            }
        }
        // Records already in the file are replaced where they stand; the
        // rest are appended, in the order they came.
        let written: Vec<Record> = order
            .iter()
            .filter_map(|id| by_id.get(id).cloned())
            .collect();
        let pending = std::cell::RefCell::new(by_id);
        self.rewrite_locked(
            &mut guard,
            &written,
            |record| match self.id_of(&record) {
                Some(id) => Some(pending.borrow_mut().remove(&id).unwrap_or(record)),
                None => Some(record),
            },
            || {
                let mut left = pending.borrow_mut();
                order.iter().filter_map(|id| left.remove(id)).collect()
            },
        )?;
        Ok(outcomes)
    }

    /// Upsert records as JSON text. A batch of new ids, each record on one
    /// line, is appended byte for byte; anything else is parsed and takes
    /// [`Store::upsert_records`].
    pub(super) fn upsert_raw(&self, records: &RawRecords) -> Result<Vec<UpsertOutcome>> {
        let (Some(ids), Some(lines)) = (records.ids(), records.as_lines()) else {
            return self.upsert_records(&records.to_records()?);
        };
        if !self.format.json_rows() {
            return self.upsert_records(&records.to_records()?);
        }
        let mut outcomes = Vec::with_capacity(records.len());
        let mut hashes = Vec::with_capacity(records.len());
        for id in ids {
            hashes.push(self.hash(id));
            outcomes.push(UpsertOutcome::Ok { id: id.to_string() });
        }
        {
            let mut guard = self.lock()?;
            if self.exists() {
                let index = self.index(&mut guard)?;
                if let Some(sorted) = self.appendable(index, &hashes) {
                    self.append(
                        index,
                        &sorted,
                        |out, _| Ok(out.write_all(lines.as_bytes())?),
                    )?;
                    return Ok(outcomes);
                }
            }
        }
        self.upsert_records(&records.to_records()?)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::connector::file::testing::{inode, out_file, store, text, upsert};
    use crate::connector::file::FileConnector;

    #[tokio::test]
    async fn new_ids_are_appended_and_known_ids_replaced_in_place() {
        let (dir, path) = out_file();
        let c = store(&path);
        upsert(&c, json!([{"id": "a"}, {"id": "b"}])).await;
        let first = inode(&path);
        // New ids: appended to the same file, not a rewritten copy.
        upsert(&c, json!([{"id": "c"}])).await;
        assert_eq!(inode(&path), first);
        assert_eq!(
            text(&path),
            "{\"id\":\"a\"}\n{\"id\":\"b\"}\n{\"id\":\"c\"}\n"
        );
        // A known id: the file is rewritten with the record in its place.
        let outcomes = upsert(&c, json!([{"id": "b", "v": 2}, {"id": "d"}])).await;
        assert_eq!(outcomes.len(), 2);
        assert_ne!(inode(&path), first);
        assert_eq!(
            text(&path),
            "{\"id\":\"a\"}\n{\"id\":\"b\",\"v\":2}\n{\"id\":\"c\"}\n{\"id\":\"d\"}\n"
        );
        assert!(!dir.path().join(".out.jsonl.ferry-append").exists());
    }

    #[tokio::test]
    async fn a_file_without_a_final_newline_is_never_glued_to() {
        let (_dir, path) = out_file();
        std::fs::write(&path, "{\"id\":\"a\"}").unwrap();
        upsert(&store(&path), json!([{"id": "b"}])).await;
        assert_eq!(text(&path), "{\"id\":\"a\"}\n{\"id\":\"b\"}\n");
    }

    #[tokio::test]
    async fn a_file_changed_behind_the_index_is_scanned_again() {
        let (_dir, path) = out_file();
        let c = store(&path);
        upsert(&c, json!([{"id": "a"}])).await;
        upsert(&c, json!([{"id": "b"}])).await;
        // Someone else adds c; our next batch upserts c and must replace it.
        let mut edited = text(&path);
        edited.push_str("{\"id\":\"c\",\"by\":\"hand\"}\n");
        std::fs::write(&path, &edited).unwrap();
        upsert(&c, json!([{"id": "c"}])).await;
        assert_eq!(
            text(&path),
            "{\"id\":\"a\"}\n{\"id\":\"b\"}\n{\"id\":\"c\"}\n"
        );
    }

    #[tokio::test]
    async fn csv_appends_rows_and_rewrites_for_a_new_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv");
        let c = FileConnector::new(
            crate::connector::csv::spec(),
            crate::connector::csv::Csv::comma(),
            path.clone(),
            "id".into(),
        );
        upsert(&c, json!([{"id": "1", "name": "Ada"}])).await;
        let first = inode(&path);
        upsert(&c, json!([{"id": "2"}])).await;
        assert_eq!(inode(&path), first);
        assert_eq!(text(&path), "id,name\n1,Ada\n2,\n");
        upsert(&c, json!([{"id": "3", "city": "Oslo"}])).await;
        assert_eq!(text(&path), "id,name,city\n1,Ada,\n2,,\n3,,Oslo\n");
    }
}
