//! The database as an export destination: profiles are records keyed by
//! the id field, written a batch per transaction with a savepoint per
//! profile, and group memberships live beside the records table, in
//! `<table>_groups` (one row per group) and `<table>_members` (group,
//! record id), so they work for both layouts alike.

use anyhow::{Context, Result};
use rusqlite::{params, Connection};

use super::db::{store_code, write_tx, Db};
use super::layout::{now, quote, Layout};
use super::Sqlite;
use crate::connector::{record_id, ProfileOutcome, ProfileUpdate, Record, Rejection};

/// Membership statements: `{members}` is the membership table, `?1` the
/// group, `?2` the record id.
pub(super) const ADD_MEMBER: &str =
    "INSERT OR IGNORE INTO {members} (group_name, record_id) VALUES (?1, ?2)";
pub(super) const REMOVE_MEMBER: &str =
    "DELETE FROM {members} WHERE group_name = ?1 AND record_id = ?2";

impl Db {
    fn groups_table(&self) -> String {
        quote(&format!("{}_groups", self.table))
    }

    pub(super) fn members_table(&self) -> String {
        quote(&format!("{}_members", self.table))
    }

    /// Create the membership tables unless they exist. A new membership
    /// table keeps its rows in its key (`WITHOUT ROWID`): one B-tree to
    /// write per membership instead of two.
    fn create_group_tables(&self, conn: &Connection) -> Result<()> {
        use std::sync::atomic::Ordering;
        if self.group_tables.load(Ordering::Relaxed) {
            return Ok(());
        }
        conn.execute_batch(&format!(
            "CREATE TABLE IF NOT EXISTS {} (name TEXT PRIMARY KEY, created_at TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS {} (group_name TEXT NOT NULL, record_id TEXT NOT NULL,
                 PRIMARY KEY (group_name, record_id)) WITHOUT ROWID;",
            self.groups_table(),
            self.members_table()
        ))
        .with_context(|| {
            format!(
                "could not create the group tables in {}",
                self.path.display()
            )
        })?;
        // Inside a transaction the tables may still be rolled back.
        if conn.is_autocommit() {
            self.group_tables.store(true, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Create the profile, or merge its fields into the record with its id.
    fn export_create(
        &self,
        tx: &Connection,
        layout: &dyn Layout,
        fields: &Record,
    ) -> Result<String> {
        let id = record_id(fields, &self.id_field)
            .ok_or_else(|| Rejection(format!("the profile has no {}", self.id_field)))?;
        // What the table refuses is the profile's fault; the file failing
        // is not, and keeps its SQLite error for `store_failure`.
        layout
            .create(tx, &id, fields)
            .map_err(|e| match store_code(&e) {
                Some(_) => e,
                None => Rejection(format!("{e:#}")).into(),
            })?;
        Ok(id)
    }

    /// Set and clear fields of record `id`; a changed id field renames the
    /// record (and its memberships) unless another record has that id.
    fn export_update(
        &self,
        tx: &Connection,
        layout: &dyn Layout,
        id: &str,
        update: &ProfileUpdate,
    ) -> Result<String> {
        let Some(old) = layout.get(tx, id)? else {
            return Err(self.not_found(id));
        };
        let new_id = record_id(&update.set, &self.id_field).unwrap_or_else(|| id.to_string());
        if new_id != id && layout.get(tx, &new_id)?.is_some() {
            return Err(Rejection(format!(
                "another record already has {} \"{new_id}\"",
                self.id_field
            ))
            .into());
        }
        layout.update(tx, id, &new_id, old, update)?;
        if new_id != id {
            self.create_group_tables(tx)?;
            tx.execute(
                &format!(
                    "UPDATE {} SET record_id = ?2 WHERE record_id = ?1",
                    self.members_table()
                ),
                params![id, new_id],
            )?;
        }
        Ok(new_id)
    }

    /// Delete record `id` and its memberships; a missing record is fine.
    fn export_delete(&self, tx: &Connection, layout: &dyn Layout, id: &str) -> Result<()> {
        if layout.get(tx, id)?.is_some() {
            layout.remove(tx, id)?;
        }
        self.create_group_tables(tx)?;
        tx.execute(
            &format!("DELETE FROM {} WHERE record_id = ?1", self.members_table()),
            params![id],
        )?;
        Ok(())
    }

    /// Run `op` for each item in one transaction, so that one profile the
    /// table refuses does not undo the others: first the whole batch as it
    /// is, and only when a profile is refused the batch again, each item in
    /// its own savepoint (a savepoint costs two statements of its own, a
    /// fifth of a first export's time when taken for every profile).
    fn each<T>(
        &self,
        conn: &mut Connection,
        layout: &dyn Layout,
        items: &[T],
        op: impl Fn(&Connection, &T) -> Result<String>,
    ) -> Result<Vec<ProfileOutcome>> {
        {
            let tx = write_tx(conn).map_err(|e| self.store_failure(&e).unwrap_or(e))?;
            layout.begin();
            let mut done = Vec::with_capacity(items.len());
            for item in items {
                match op(&tx, item) {
                    Ok(id) => done.push(id),
                    Err(e) => {
                        if let Some(failure) = self.store_failure(&e) {
                            return Err(failure);
                        }
                        break;
                    }
                }
            }
            if done.len() == items.len() {
                tx.commit()?;
                return Ok(done
                    .into_iter()
                    .map(|id| ProfileOutcome::from_result(Ok(id)))
                    .collect());
            }
            // Dropped: rolled back, and the batch runs again below.
        }
        let mut tx = write_tx(conn).map_err(|e| self.store_failure(&e).unwrap_or(e))?;
        layout.begin();
        let out = self
            .each_saved(&mut tx, items, op)?
            .into_iter()
            .map(ProfileOutcome::from_result)
            .collect();
        tx.commit()?;
        Ok(out)
    }

    pub(super) fn find_profile(&self, key: String) -> Result<Option<String>> {
        Ok(self.find(&key)?.map(|_| key))
    }

    pub(super) fn create_profile(&self, fields: &Record) -> Result<String> {
        self.with_write(|conn, layout| {
            let tx = write_tx(conn)?;
            let id = self
                .export_create(&tx, layout, fields)
                .map_err(|e| self.store_failure(&e).unwrap_or(e))?;
            tx.commit()?;
            Ok(id)
        })
    }

    pub(super) fn create_profiles(&self, profiles: &[Record]) -> Result<Vec<ProfileOutcome>> {
        self.with_write(|conn, layout| {
            self.each(conn, layout, profiles, |tx, fields| {
                self.export_create(tx, layout, fields)
            })
        })
    }

    pub(super) fn update_profiles(
        &self,
        updates: &[(String, ProfileUpdate)],
    ) -> Result<Vec<ProfileOutcome>> {
        self.with_write(|conn, layout| {
            self.each(conn, layout, updates, |tx, (id, update)| {
                self.export_update(tx, layout, id, update)
            })
        })
    }

    pub(super) fn delete_profiles(&self, ids: &[String]) -> Result<Vec<ProfileOutcome>> {
        self.with_write(|conn, layout| {
            self.each(conn, layout, ids, |tx, id| {
                self.export_delete(tx, layout, id).map(|()| id.clone())
            })
        })
    }

    pub(super) fn update_profile(&self, id: &str, update: &ProfileUpdate) -> Result<String> {
        self.with_write(|conn, layout| {
            let tx = conn.transaction()?;
            let new_id = self.export_update(&tx, layout, id, update)?;
            tx.commit()?;
            Ok(new_id)
        })
    }

    pub(super) fn delete_profile(&self, id: &str) -> Result<()> {
        self.with_write(|conn, layout| {
            let tx = conn.transaction()?;
            self.export_delete(&tx, layout, id)?;
            tx.commit()?;
            Ok(())
        })
    }

    pub(super) fn ensure_group(&self, name: String) -> Result<String> {
        self.with_write(|conn, _| {
            self.create_group_tables(conn)?;
            conn.execute(
                &format!(
                    "INSERT OR IGNORE INTO {} (name, created_at) VALUES (?1, ?2)",
                    self.groups_table()
                ),
                params![name, now()],
            )?;
            Ok(name)
        })
    }
}

impl Sqlite {
    /// Run one membership statement for one record.
    pub(super) async fn member(&self, sql: &'static str, group: &str, id: &str) -> Result<()> {
        let (group, id) = (group.to_string(), id.to_string());
        self.blocking(move |db| {
            db.with_write(|conn, _| {
                db.create_group_tables(conn)?;
                let sql = sql.replace("{members}", &db.members_table());
                conn.execute(&sql, params![group, id])?;
                Ok(())
            })
        })
        .await
    }

    /// Run `sql` (with `{members}` for the membership table, `?1` the group
    /// and `?2` a record id) for every id, in one transaction per batch.
    pub(super) async fn membership(
        &self,
        sql: &'static str,
        group: &str,
        ids: Vec<String>,
    ) -> Vec<ProfileOutcome> {
        let (group, n) = (group.to_string(), ids.len());
        let result = self
            .blocking(move |db| {
                db.with_write(|conn, layout| {
                    db.create_group_tables(conn)?;
                    let sql = sql.replace("{members}", &db.members_table());
                    db.each(conn, layout, &ids, |tx, id| {
                        tx.prepare_cached(&sql)?.execute(params![group, id])?;
                        Ok(id.clone())
                    })
                })
            })
            .await;
        ProfileOutcome::of_batch(result, n)
    }
}
