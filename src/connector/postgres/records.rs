//! The record operations on ferry's table: get, insert, patch, delete,
//! pages read by keyset (never by OFFSET), and batch upserts by COPY.
//!
//! A batch goes in one transaction: its records are copied (binary COPY)
//! into a temporary table, then moved with one `INSERT … SELECT DISTINCT ON
//! (id) … ON CONFLICT (id) DO UPDATE`, so an id repeated within the batch is
//! written once, as its last occurrence says, rather than failing the
//! statement. When the database refuses a record (a value jsonb cannot
//! hold, a constraint), the transaction is rolled back and the batch is
//! written again one record at a time, each under a savepoint, so only that
//! record is rejected, with the database's message. Anything else (a lost
//! connection, a read-only database, a full disk) fails the batch: the
//! import stops, and resumes from its last committed batch.

use anyhow::{Context, Result};
use serde_json::Value;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{Json, Type};
use tokio_postgres::Client;

use super::db::{describe, record_fault, Db};
use crate::connector::{given_id, new_id, record_id, Page, Position, Record, UpsertOutcome};
use crate::error::{failed, not_found, usage};

/// A record as ferry's table keeps it.
fn record_of(data: Value, db: &Db) -> Result<Record> {
    match data {
        Value::Object(map) => Ok(map),
        other => Err(failed(format!(
            "a row of {} holds {other}, not a JSON object",
            db.named()
        ))
        .into()),
    }
}

impl Db {
    fn connected(guard: &Option<Client>) -> Result<&Client> {
        guard.as_ref().context("the PostgreSQL connection is closed")
    }

    pub(super) fn not_found(&self, id: &str) -> anyhow::Error {
        not_found(format!(
            "no record with {} \"{id}\" in {}",
            self.id_field,
            self.named()
        ))
        .into()
    }

    /// The record `id`, if the table exists and holds it.
    pub(super) async fn find(&self, id: &str) -> Result<Option<Record>> {
        let guard = self.client().await?;
        let client = Self::connected(&guard)?;
        if self.managed(client).await?.is_none() {
            return Ok(None);
        }
        let row = client
            .query_opt(
                &format!(
                    "SELECT data FROM {} WHERE id = $1 AND NOT deleted",
                    self.qualified()
                ),
                &[&id],
            )
            .await
            .map_err(|e| self.failure(&e, "could not read"))?;
        row.map(|r| record_of(r.get(0), self)).transpose()
    }

    pub(super) async fn get(&self, id: &str) -> Result<Record> {
        self.find(id).await?.ok_or_else(|| self.not_found(id))
    }

    /// Create the table on the first write.
    async fn ensure_table(&self, client: &Client) -> Result<()> {
        if self.managed(client).await?.is_none() {
            self.create(client).await?;
        }
        Ok(())
    }

    pub(super) async fn insert(&self, mut value: Record) -> Result<Record> {
        let given = given_id(&value, &self.id_field, "insert")?;
        if let Some(id) = &given {
            if self.find(id).await?.is_some() {
                return Err(failed(format!(
                    "a record with {} \"{id}\" already exists in {}",
                    self.id_field,
                    self.named()
                ))
                .hint(format!("use `ferry patch --id {id}` to change it"))
                .into());
            }
        }
        let id = match given {
            Some(id) => id,
            None => {
                let id = new_id();
                value.insert(self.id_field.clone(), Value::String(id.clone()));
                id
            }
        };
        let guard = self.client().await?;
        let client = Self::connected(&guard)?;
        self.ensure_table(client).await?;
        client
            .execute(&self.upsert_one(), &[&id, &Json(&value)])
            .await
            .map_err(|e| self.refused(&e, "could not write to"))?;
        Ok(value)
    }

    pub(super) async fn patch(&self, id: &str, value: Record) -> Result<Record> {
        if let Some(other) = given_id(&value, &self.id_field, "patch")? {
            if other != id {
                return Err(usage(format!(
                    "the patch changes {} from \"{id}\" to \"{other}\"",
                    self.id_field
                ))
                .hint(format!("leave \"{}\" out of the value", self.id_field))
                .into());
            }
        }
        let guard = self.client().await?;
        let client = Self::connected(&guard)?;
        if self.managed(client).await?.is_none() {
            return Err(self.not_found(id));
        }
        // jsonb's `||` merges the patch's fields over the record's.
        let row = client
            .query_opt(
                &format!(
                    "UPDATE {t} SET data = data || $2::jsonb, updated_at = now(),
                            seq = nextval({seq})
                      WHERE id = $1 AND NOT deleted RETURNING data",
                    t = self.qualified(),
                    seq = self.sequence_literal(),
                ),
                &[&id, &Json(&value)],
            )
            .await
            .map_err(|e| self.refused(&e, "could not write to"))?;
        match row {
            Some(row) => record_of(row.get(0), self),
            None => Err(self.not_found(id)),
        }
    }

    /// Delete record `id`, keeping a tombstone (a change for getupdates).
    pub(super) async fn delete(&self, id: &str) -> Result<()> {
        let guard = self.client().await?;
        let client = Self::connected(&guard)?;
        if self.managed(client).await?.is_none() {
            return Err(self.not_found(id));
        }
        let n = client
            .execute(
                &format!(
                    "UPDATE {t} SET data = NULL, deleted = true, updated_at = now(),
                            seq = nextval({seq})
                      WHERE id = $1 AND NOT deleted",
                    t = self.qualified(),
                    seq = self.sequence_literal(),
                ),
                &[&id],
            )
            .await
            .map_err(|e| self.failure(&e, "could not write to"))?;
        if n == 0 {
            return Err(self.not_found(id));
        }
        Ok(())
    }

    /// A page of live records in id order (byte order: the id column is
    /// `COLLATE "C"`). The cursor is the last id read, so every page costs
    /// one index range scan however deep the run is; only a first page
    /// asked for at an offset without a cursor (`import --offset N`) skips.
    pub(super) async fn read_page(&self, from: &Position, limit: usize) -> Result<Page> {
        let guard = self.client().await?;
        let client = Self::connected(&guard)?;
        if self.managed(client).await?.is_none() {
            return Ok(Page::default());
        }
        let t = self.qualified();
        let read = |e: tokio_postgres::Error| self.failure(&e, "could not read");
        let total: i64 = client
            .query_one(&format!("SELECT count(*) FROM {t} WHERE NOT deleted"), &[])
            .await
            .map_err(read)?
            .get(0);
        let limit_n = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = match &from.cursor {
            Some(after) => {
                client
                    .query(
                        &format!("SELECT id, data FROM {t} WHERE NOT deleted AND id > $1 ORDER BY id LIMIT $2"),
                        &[after, &limit_n],
                    )
                    .await
            }
            None => {
                let offset = i64::try_from(from.offset).unwrap_or(i64::MAX);
                client
                    .query(
                        &format!("SELECT id, data FROM {t} WHERE NOT deleted ORDER BY id LIMIT $1 OFFSET $2"),
                        &[&limit_n, &offset],
                    )
                    .await
            }
        }
        .map_err(read)?;
        let mut records = Vec::with_capacity(rows.len());
        let mut last = None;
        for row in rows {
            last = Some(row.get::<_, String>(0));
            records.push(record_of(row.get(1), self)?);
        }
        let next = (records.len() >= limit).then(|| Position {
            offset: from.offset + records.len() as u64,
            cursor: last,
        });
        Ok(Page {
            records,
            next,
            total: Some(total as u64),
        })
    }

    /// `INSERT` of one record (`$1` id, `$2` the record), or its update.
    pub(super) fn upsert_one(&self) -> String {
        format!(
            "INSERT INTO {t} (id, data, seq, created_seq)
             SELECT $1::text, $2::jsonb, s, s FROM nextval({seq}) AS s
             {on_conflict}",
            t = self.qualified(),
            seq = self.sequence_literal(),
            on_conflict = self.on_conflict(),
        )
    }

    /// The update of an upsert whose id is taken: the record replaced, a
    /// new change number (the one the insert drew), and a deleted record
    /// created anew.
    fn on_conflict(&self) -> String {
        format!(
            "ON CONFLICT (id) DO UPDATE SET data = EXCLUDED.data, updated_at = now(),
                 seq = EXCLUDED.seq,
                 created_seq = CASE WHEN {t}.deleted THEN EXCLUDED.seq ELSE {t}.created_seq END,
                 deleted = false",
            t = self.qualified()
        )
    }

    /// A refused write: the record's fault as a rejection the caller shows,
    /// the database's as a failure.
    fn refused(&self, err: &tokio_postgres::Error, doing: &str) -> anyhow::Error {
        if record_fault(err) {
            failed(format!("{} refused the record: {}", self.named(), describe(err)))
                .hint("fix the record's value, then run the command again")
                .into()
        } else {
            self.failure(err, doing)
        }
    }

    /// Upsert `records`, one outcome each, in one transaction.
    pub(super) async fn upsert_batch(&self, records: &[Record]) -> Result<Vec<UpsertOutcome>> {
        let ids: Vec<Option<String>> = records
            .iter()
            .map(|r| record_id(r, &self.id_field))
            .collect();
        let mut guard = self.client().await?;
        let client = guard.as_mut().context("the PostgreSQL connection is closed")?;
        self.ensure_table(client).await?;
        match self.copy_batch(client, records, &ids).await {
            Ok(()) => {
                return Ok(ids
                    .into_iter()
                    .map(|id| match id {
                        Some(id) => UpsertOutcome::Ok { id },
                        None => self.no_id(),
                    })
                    .collect())
            }
            Err(e) if record_fault(&e) => {}
            Err(e) => return Err(self.failure(&e, "could not write to")),
        }
        self.each_saved(client, records, ids).await
    }

    fn no_id(&self) -> UpsertOutcome {
        UpsertOutcome::Rejected {
            id: None,
            reason: format!("the record has no {}", self.id_field),
        }
    }

    /// The batch by COPY into the temporary table, then one statement.
    async fn copy_batch(
        &self,
        client: &mut Client,
        records: &[Record],
        ids: &[Option<String>],
    ) -> Result<(), tokio_postgres::Error> {
        let tx = client.transaction().await?;
        tx.batch_execute(
            "CREATE TEMP TABLE IF NOT EXISTS ferry_batch (ord int4, id text, data jsonb)
             ON COMMIT DELETE ROWS",
        )
        .await?;
        let sink = tx
            .copy_in("COPY ferry_batch (ord, id, data) FROM STDIN (FORMAT binary)")
            .await?;
        let writer = BinaryCopyInWriter::new(sink, &[Type::INT4, Type::TEXT, Type::JSONB]);
        futures::pin_mut!(writer);
        for (i, (record, id)) in records.iter().zip(ids).enumerate() {
            let Some(id) = id else { continue };
            let ord = i32::try_from(i).unwrap_or(i32::MAX);
            writer.as_mut().write(&[&ord, id, &Json(record)]).await?;
        }
        writer.finish().await?;
        tx.execute(
            &format!(
                "INSERT INTO {t} (id, data, seq, created_seq)
                 SELECT id, data, s, s FROM (
                     -- A volatile call in a subquery's list runs once a row.
                     SELECT id, data, nextval({seq}) AS s FROM (
                         SELECT DISTINCT ON (id) id, data, ord FROM ferry_batch
                          ORDER BY id, ord DESC
                     ) b ORDER BY ord
                 ) c
                 {on_conflict}",
                t = self.qualified(),
                seq = self.sequence_literal(),
                on_conflict = self.on_conflict(),
            ),
            &[],
        )
        .await?;
        tx.commit().await
    }

    /// The batch again, one record per savepoint: a record the database
    /// refuses is rejected with its message, the others are written.
    async fn each_saved(
        &self,
        client: &mut Client,
        records: &[Record],
        ids: Vec<Option<String>>,
    ) -> Result<Vec<UpsertOutcome>> {
        let write = |e: tokio_postgres::Error| self.failure(&e, "could not write to");
        let sql = self.upsert_one();
        let mut tx = client.transaction().await.map_err(write)?;
        let mut outcomes = Vec::with_capacity(records.len());
        for (record, id) in records.iter().zip(ids) {
            let Some(id) = id else {
                outcomes.push(self.no_id());
                continue;
            };
            let sp = tx.savepoint("ferry_record").await.map_err(write)?;
            match sp.execute(&sql, &[&id, &Json(record)]).await {
                Ok(_) => {
                    sp.commit().await.map_err(write)?;
                    outcomes.push(UpsertOutcome::Ok { id });
                }
                Err(e) if record_fault(&e) => {
                    sp.rollback().await.map_err(write)?;
                    outcomes.push(UpsertOutcome::Rejected {
                        id: Some(id),
                        reason: describe(&e),
                    });
                }
                Err(e) => return Err(write(e)),
            }
        }
        tx.commit().await.map_err(write)?;
        Ok(outcomes)
    }
}
