//! The record operations (get, insert, patch, delete, pages, batch
//! upserts), each in one transaction, over whichever layout the table has.
//! A write never creates the file or the table for a record that is not
//! there.

use anyhow::Result;
use rusqlite::{params, Connection};

use super::db::{write_tx, Db};
use super::layout::{quote, Layout};
use crate::connector::{
    given_id, patch_keeps_id, record_id, FieldSpec, Page, Position, Record, Records, Rejection,
    UpsertOutcome,
};
use crate::error::failed;

impl Db {
    /// The number of live records.
    pub(super) fn count(&self, conn: &Connection, layout: &dyn Layout) -> Result<i64> {
        let (t, live) = (quote(&self.table), layout.live());
        Ok(
            conn.query_row(&format!("SELECT count(*) FROM {t} WHERE {live}"), [], |r| {
                r.get(0)
            })?,
        )
    }

    pub(super) fn fields(&self, spec: Vec<FieldSpec>) -> Result<Vec<FieldSpec>> {
        self.with_read(spec.clone(), |conn, layout| {
            layout.fields(conn, spec.clone())
        })
    }

    /// The record `id`, if the file and table exist and hold it.
    pub(super) fn find(&self, id: &str) -> Result<Option<Record>> {
        self.with_read(None, |conn, layout| layout.get(conn, id))
    }

    pub(super) fn get(&self, id: &str) -> Result<Record> {
        self.find(id)?.ok_or_else(|| self.not_found(id))
    }

    pub(super) fn insert(&self, value: Record) -> Result<Record> {
        self.with_write(|conn, layout| {
            let tx = write_tx(conn)?;
            let given = given_id(&value, &self.id_field, "insert")?;
            if let Some(id) = &given {
                if layout.get(&tx, id)?.is_some() {
                    return Err(failed(format!(
                        "a record with {} \"{id}\" already exists in table \"{}\"",
                        self.id_field, self.table
                    ))
                    .hint(format!("use `ferry patch --id {id}` to change it"))
                    .into());
                }
            }
            let stored = layout.insert(&tx, value, given)?;
            tx.commit()?;
            Ok(stored)
        })
    }

    pub(super) fn patch(&self, id: &str, value: Record) -> Result<Record> {
        patch_keeps_id(&value, &self.id_field, id)?;
        // A patch of a missing file or table must not create them.
        if self.find(id)?.is_none() {
            return Err(self.not_found(id));
        }
        self.with_write(|conn, layout| {
            let tx = write_tx(conn)?;
            let Some(old) = layout.get(&tx, id)? else {
                return Err(self.not_found(id));
            };
            layout.patch(&tx, id, old, &value)?;
            let stored = layout.get(&tx, id)?.ok_or_else(|| self.not_found(id))?;
            tx.commit()?;
            Ok(stored)
        })
    }

    pub(super) fn delete(&self, id: &str) -> Result<()> {
        // A delete on a missing file or table must not create them.
        if self.find(id)?.is_none() {
            return Err(self.not_found(id));
        }
        self.with_write(|conn, layout| {
            let tx = write_tx(conn)?;
            layout.remove(&tx, id)?;
            // A deleted record leaves the groups export put it in.
            let members = format!("{}_members", self.table);
            let has_members: bool = tx.query_row(
                "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = ?1",
                params![members],
                |r| r.get(0),
            )?;
            if has_members {
                tx.execute(
                    &format!("DELETE FROM {} WHERE record_id = ?1", self.members_table()),
                    params![id],
                )?;
            }
            tx.commit()?;
            Ok(())
        })
    }

    /// A page of live records in rowid order. The cursor is the last rowid
    /// read: pages after the first cost the same however deep the run is.
    pub(super) fn read_page(&self, from: &Position, limit: usize) -> Result<Page> {
        self.with_read(Page::default(), |conn, layout| {
            let t = quote(&self.table);
            let (live, select) = (layout.live(), layout.select());
            let total = self.count(conn, layout)?;
            let after = from.cursor.as_deref().and_then(|c| c.parse::<i64>().ok());
            let (sql, p1) = match after {
                Some(rowid) => (format!("SELECT {select} FROM {t} WHERE {live} AND rowid > ?1 ORDER BY rowid LIMIT ?2"), rowid),
                None => (format!("SELECT {select} FROM {t} WHERE {live} ORDER BY rowid LIMIT ?2 OFFSET ?1"), from.offset as i64),
            };
            let mut stmt = conn.prepare(&sql)?;
            let mut rows = stmt.query(params![p1, limit as i64])?;
            let mut records = Vec::new();
            let mut last_rowid = after.unwrap_or(0);
            while let Some(row) = rows.next()? {
                last_rowid = row.get(0)?;
                records.push(layout.decode(row)?);
            }
            let next = (records.len() >= limit).then(|| Position {
                offset: from.offset + records.len() as u64,
                cursor: Some(last_rowid.to_string()),
            });
            Ok(Page {
                records,
                next,
                total: Some(total as u64),
            })
        })
    }

    /// One transaction per batch: the batch is written whole or not at
    /// all. First without savepoints, which cost as much as the writes; if
    /// any record is refused, that attempt is rolled back and the batch is
    /// written again with one savepoint per record, so a refused record is
    /// rejected alone. The database itself failing is the batch's failure,
    /// not a record's: the run stops.
    pub(super) fn upsert_batch(&self, records: &Records) -> Result<Vec<UpsertOutcome>> {
        self.with_write(|conn, layout| {
            {
                let tx = write_tx(conn).map_err(|e| self.store_failure(&e).unwrap_or(e))?;
                let mut outcomes = Vec::with_capacity(records.len());
                let mut clean = true;
                for record in records.iter() {
                    let Some(id) = record_id(record, &self.id_field) else {
                        clean = false;
                        break;
                    };
                    if let Err(e) = layout.upsert(&tx, &id, record) {
                        if let Some(failure) = self.store_failure(&e) {
                            return Err(failure);
                        }
                        clean = false;
                        break;
                    }
                    outcomes.push(UpsertOutcome::Ok { id });
                }
                if clean {
                    tx.commit()?;
                    return Ok(outcomes);
                }
                tx.rollback()?;
            }
            let mut tx = write_tx(conn)?;
            layout.begin();
            let written = self.each_saved(&mut tx, records.iter(), |sp, record| {
                let id = record_id(record, &self.id_field)
                    .ok_or_else(|| Rejection(format!("the record has no {}", self.id_field)))?;
                layout.upsert(sp, &id, record).map(|()| id)
            })?;
            let outcomes = written
                .into_iter()
                .zip(records.iter())
                .map(|(written, record)| match written {
                    Ok(id) => UpsertOutcome::Ok { id },
                    Err(e) => UpsertOutcome::Rejected {
                        id: record_id(record, &self.id_field),
                        reason: format!("{e:#}"),
                    },
                })
                .collect();
            tx.commit()?;
            Ok(outcomes)
        })
    }
}
