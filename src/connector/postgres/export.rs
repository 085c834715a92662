//! The table as an export destination: profiles are records keyed by the
//! id field, a batch written in one transaction (and again one profile per
//! savepoint when the database refuses one), and group memberships beside
//! the table in `<table>_groups` (one row per group) and `<table>_members`
//! (group, record id), as the sqlite connector keeps them.

use anyhow::{Context, Result};
use tokio_postgres::types::Json;
use tokio_postgres::Transaction;

use super::db::{describe, ident, record_fault, Db};
use crate::connector::{record_id, ProfileOutcome, ProfileUpdate, Record, Rejection};

/// One write of an export batch.
pub(super) enum Op {
    Create(Record),
    Update(String, ProfileUpdate),
    Delete(String),
}

impl Db {
    fn groups_table(&self) -> String {
        format!(
            "{}.{}",
            ident(&self.schema),
            ident(&format!("{}_groups", self.table))
        )
    }

    fn members_table(&self) -> String {
        format!(
            "{}.{}",
            ident(&self.schema),
            ident(&format!("{}_members", self.table))
        )
    }

    /// The table and the group tables, created when missing (asked once
    /// per run: creating needs the CREATE privilege even when they exist).
    async fn export_tables(&self, client: &tokio_postgres::Client) -> Result<()> {
        use std::sync::atomic::Ordering;
        if self.managed(client, "export").await?.is_none() {
            self.create(client).await?;
        }
        if self.groups_ready.load(Ordering::Relaxed) {
            return Ok(());
        }
        let there: bool = client
            .query_one(
                "SELECT to_regclass($1) IS NOT NULL AND to_regclass($2) IS NOT NULL",
                &[&self.groups_table(), &self.members_table()],
            )
            .await
            .map_err(|e| self.failure(&e, "could not read"))?
            .get(0);
        if there {
            self.groups_ready.store(true, Ordering::Relaxed);
            return Ok(());
        }
        client
            .batch_execute(&format!(
                "{}
                 CREATE TABLE IF NOT EXISTS {} (name text PRIMARY KEY,
                     created_at timestamptz NOT NULL DEFAULT now());
                 CREATE TABLE IF NOT EXISTS {} (group_name text NOT NULL,
                     record_id text NOT NULL, PRIMARY KEY (group_name, record_id));",
                self.ddl_lock(),
                self.groups_table(),
                self.members_table()
            ))
            .await
            .map_err(|e| self.failure(&e, "could not create the group tables of"))?;
        self.groups_ready.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// A refused write as the profile's outcome ([`Rejection`]), anything
    /// else as the batch's failure.
    fn op_error(&self, err: tokio_postgres::Error) -> anyhow::Error {
        if record_fault(&err) {
            Rejection(describe(&err)).into()
        } else {
            self.failure(&err, "could not write to")
        }
    }

    /// One write; the profile's destination id.
    async fn apply(&self, tx: &Transaction<'_>, op: &Op) -> Result<String> {
        let (t, seq) = (self.qualified(), self.sequence_literal());
        match op {
            Op::Create(fields) => {
                let id = record_id(fields, &self.id_field)
                    .ok_or_else(|| Rejection(format!("the profile has no {}", self.id_field)))?;
                // Create, or merge into the record with that id.
                tx.execute(
                    &format!(
                        "INSERT INTO {t} (id, data, seq, created_seq)
                         SELECT $1::text, $2::jsonb, s, s FROM nextval({seq}) AS s
                         ON CONFLICT (id) DO UPDATE SET
                             data = CASE WHEN {t}.deleted THEN EXCLUDED.data
                                         ELSE {t}.data || EXCLUDED.data END,
                             updated_at = now(), seq = EXCLUDED.seq,
                             created_seq = CASE WHEN {t}.deleted THEN EXCLUDED.seq
                                                ELSE {t}.created_seq END,
                             deleted = false"
                    ),
                    &[&id, &Json(fields)],
                )
                .await
                .map_err(|e| self.op_error(e))?;
                Ok(id)
            }
            Op::Update(id, update) => {
                let new_id =
                    record_id(&update.set, &self.id_field).unwrap_or_else(|| id.to_string());
                if new_id != *id {
                    return self.rename(tx, id, &new_id, update).await;
                }
                let n = tx
                    .execute(
                        &format!(
                            "UPDATE {t} SET data = (data || $2::jsonb) - $3::text[],
                                    updated_at = now(), seq = nextval({seq})
                              WHERE id = $1 AND NOT deleted"
                        ),
                        &[id, &Json(&update.set), &update.clear],
                    )
                    .await
                    .map_err(|e| self.op_error(e))?;
                if n == 0 {
                    return Err(self.not_found(id));
                }
                Ok(id.clone())
            }
            Op::Delete(id) => {
                tx.execute(
                    &format!(
                        "UPDATE {t} SET data = NULL, deleted = true, updated_at = now(),
                                seq = nextval({seq})
                          WHERE id = $1 AND NOT deleted"
                    ),
                    &[id],
                )
                .await
                .map_err(|e| self.op_error(e))?;
                tx.execute(
                    &format!("DELETE FROM {} WHERE record_id = $1", self.members_table()),
                    &[id],
                )
                .await
                .map_err(|e| self.op_error(e))?;
                Ok(id.clone())
            }
        }
    }

    /// An update that changes the id field: the record moves to the new
    /// id (the old one is left as a tombstone) with its memberships, unless
    /// another record has that id.
    async fn rename(
        &self,
        tx: &Transaction<'_>,
        id: &str,
        new_id: &str,
        update: &ProfileUpdate,
    ) -> Result<String> {
        let t = self.qualified();
        let taken = tx
            .query_opt(
                &format!("SELECT 1 FROM {t} WHERE id = $1 AND NOT deleted"),
                &[&new_id],
            )
            .await
            .map_err(|e| self.op_error(e))?;
        if taken.is_some() {
            return Err(Rejection(format!(
                "another record already has {} \"{new_id}\"",
                self.id_field
            ))
            .into());
        }
        let old = tx
            .query_opt(
                &format!("SELECT data FROM {t} WHERE id = $1 AND NOT deleted"),
                &[&id],
            )
            .await
            .map_err(|e| self.op_error(e))?
            .ok_or_else(|| self.not_found(id))?;
        let mut record = match old.get::<_, serde_json::Value>(0) {
            serde_json::Value::Object(map) => map,
            _ => Record::new(),
        };
        record.extend(update.set.clone());
        for key in &update.clear {
            record.shift_remove(key);
        }
        let m = self.members_table();
        for (sql, params) in [
            (
                format!(
                    "UPDATE {t} SET data = NULL, deleted = true, updated_at = now(),
                            seq = nextval({})
                      WHERE id = $1",
                    self.sequence_literal()
                ),
                vec![id],
            ),
            (
                format!(
                    "INSERT INTO {m} (group_name, record_id)
                     SELECT group_name, $2 FROM {m} WHERE record_id = $1
                     ON CONFLICT DO NOTHING"
                ),
                vec![id, new_id],
            ),
            (format!("DELETE FROM {m} WHERE record_id = $1"), vec![id]),
        ] {
            let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = params
                .iter()
                .map(|p| p as &(dyn tokio_postgres::types::ToSql + Sync))
                .collect();
            tx.execute(&sql, &params)
                .await
                .map_err(|e| self.op_error(e))?;
        }
        tx.execute(&self.upsert_one(), &[&new_id, &Json(&record)])
            .await
            .map_err(|e| self.op_error(e))?;
        Ok(new_id.to_string())
    }

    /// Apply `ops` in one transaction, one outcome each. When the database
    /// refuses one, the batch is written again with a savepoint per write,
    /// so only that profile fails.
    pub(super) async fn export(&self, ops: &[Op]) -> Result<Vec<ProfileOutcome>> {
        let mut guard = self.client().await?;
        let client = guard
            .as_mut()
            .context("the PostgreSQL connection is closed")?;
        self.export_tables(client).await?;
        let write = |e: tokio_postgres::Error| self.failure(&e, "could not write to");
        {
            let tx = client.transaction().await.map_err(write)?;
            let mut done = Vec::with_capacity(ops.len());
            for op in ops {
                match self.apply(&tx, op).await {
                    Ok(id) => done.push(ProfileOutcome::Ok { id }),
                    Err(e) if is_the_profiles(&e) => break,
                    Err(e) => return Err(e),
                }
            }
            if done.len() == ops.len() {
                tx.commit().await.map_err(write)?;
                return Ok(done);
            }
            // Dropped: rolled back, and the batch runs again below.
        }
        let mut tx = client.transaction().await.map_err(write)?;
        let mut outcomes = Vec::with_capacity(ops.len());
        for op in ops {
            let sp = tx.savepoint("ferry_profile").await.map_err(write)?;
            match self.apply(&sp, op).await {
                Ok(id) => {
                    sp.commit().await.map_err(write)?;
                    outcomes.push(ProfileOutcome::Ok { id });
                }
                Err(e) if is_the_profiles(&e) => {
                    sp.rollback().await.map_err(write)?;
                    outcomes.push(ProfileOutcome::from_result(Err(e)));
                }
                Err(e) => return Err(e),
            }
        }
        tx.commit().await.map_err(write)?;
        Ok(outcomes)
    }

    pub(super) async fn ensure_group(&self, name: &str) -> Result<String> {
        let guard = self.client().await?;
        let client = guard
            .as_ref()
            .context("the PostgreSQL connection is closed")?;
        self.export_tables(client).await?;
        client
            .execute(
                &format!(
                    "INSERT INTO {} (name) VALUES ($1) ON CONFLICT DO NOTHING",
                    self.groups_table()
                ),
                &[&name],
            )
            .await
            .map_err(|e| self.failure(&e, "could not write to"))?;
        Ok(name.to_string())
    }

    /// Add (or remove) the records `ids` to (from) `group`, in one statement.
    pub(super) async fn membership(
        &self,
        add: bool,
        group: &str,
        ids: &[String],
    ) -> Result<Vec<ProfileOutcome>> {
        let guard = self.client().await?;
        let client = guard
            .as_ref()
            .context("the PostgreSQL connection is closed")?;
        self.export_tables(client).await?;
        let m = self.members_table();
        let sql = if add {
            format!(
                "INSERT INTO {m} (group_name, record_id) SELECT $1, unnest($2::text[])
                 ON CONFLICT DO NOTHING"
            )
        } else {
            format!("DELETE FROM {m} WHERE group_name = $1 AND record_id = ANY($2::text[])")
        };
        client
            .execute(&sql, &[&group, &ids])
            .await
            .map_err(|e| self.failure(&e, "could not write to"))?;
        Ok(ids
            .iter()
            .map(|id| ProfileOutcome::Ok { id: id.clone() })
            .collect())
    }
}

/// Whether an error is one profile's (refused, or not there) rather than
/// the database's.
fn is_the_profiles(err: &anyhow::Error) -> bool {
    err.chain().any(|c| c.is::<Rejection>())
        || crate::error::find_failure(err).is_some_and(|f| f.kind == crate::error::Kind::NotFound)
}
