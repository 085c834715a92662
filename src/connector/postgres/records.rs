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
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{Json, Type};
use tokio_postgres::Client;

use super::db::{describe, ident, record_fault, Db, Shape};
use super::existing::Table;
use crate::connector::{
    given_id, new_id, patch_keeps_id, record_id, FieldSpec, Page, Position, Record, UpsertOutcome,
};
use crate::error::{failed, not_found};

impl Db {
    fn connected(guard: &Option<Client>) -> Result<&Client> {
        guard
            .as_ref()
            .context("the PostgreSQL connection is closed")
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
        let Some(shape) = self.shape(client).await? else {
            return Ok(None);
        };
        let row = client
            .query_opt(
                &format!(
                    "SELECT {} FROM {} x WHERE x.{} = {} AND {}",
                    shape.record,
                    self.qualified(),
                    shape.id_column,
                    shape.id_param,
                    shape.live
                ),
                &[&id],
            )
            .await;
        match row {
            Ok(row) => row.map(|r| self.record_at(&r, 0)).transpose(),
            // An id that is not a value of the id column's type ("abc" for
            // an integer column) names no record.
            Err(e) if e.code() == Some(&SqlState::INVALID_TEXT_REPRESENTATION) => Ok(None),
            Err(e) => Err(self.failure(&e, "could not read")),
        }
    }

    pub(super) async fn get(&self, id: &str) -> Result<Record> {
        self.find(id).await?.ok_or_else(|| self.not_found(id))
    }

    /// The fields a written record must fit: an existing table's columns,
    /// or the spec's for ferry's table.
    pub(super) async fn fields(&self, spec: Vec<FieldSpec>) -> Result<Vec<FieldSpec>> {
        let guard = self.client().await?;
        let client = Self::connected(&guard)?;
        Ok(match self.shape(client).await? {
            Some(Shape {
                table: Some(table), ..
            }) => self.existing_fields(&table),
            _ => spec,
        })
    }

    /// The table's shape for a write, ferry's table created when missing.
    async fn for_write(&self, client: &Client) -> Result<Shape> {
        if let Some(shape) = self.shape(client).await? {
            if let Some(table) = &shape.table {
                self.writable(table)?;
            }
            return Ok(shape);
        }
        self.create(client).await?;
        self.shape(client)
            .await?
            .context("the table just created is not there")
    }

    /// Insert's error for an id that is taken.
    fn exists(&self, id: &str) -> anyhow::Error {
        failed(format!(
            "a record with {} \"{id}\" already exists in {}",
            self.id_field,
            self.named()
        ))
        .hint(format!("use `ferry patch --id {id}` to change it"))
        .into()
    }

    pub(super) async fn insert(&self, mut value: Record) -> Result<Record> {
        let given = given_id(&value, &self.id_field, "insert")?;
        if let Some(id) = &given {
            if self.find(id).await?.is_some() {
                return Err(self.exists(id));
            }
        }
        let guard = self.client().await?;
        let client = Self::connected(&guard)?;
        let shape = self.for_write(client).await?;
        let Some(table) = &shape.table else {
            let id = match given {
                Some(id) => id,
                None => {
                    let id = new_id();
                    value.insert(self.id_field.clone(), Value::String(id.clone()));
                    id
                }
            };
            // Written only over nothing or a tombstone: a live record
            // another run inserted since the check above stays.
            let written = client
                .execute(
                    &format!("{} WHERE {}.deleted", self.upsert_one(), self.qualified()),
                    &[&id, &Json(&value)],
                )
                .await
                .map_err(|e| self.refused(&e, "could not write to"))?;
            if written == 0 {
                return Err(self.exists(&id));
            }
            return Ok(value);
        };
        // An existing table gives its own id when the column has a default.
        if given.is_none() && !table.id_default {
            value.insert(self.id_field.clone(), Value::String(new_id()));
        }
        let columns = self.column_list(table, &value)?;
        let t = self.qualified();
        let sql = if columns.is_empty() {
            format!("INSERT INTO {t} AS x DEFAULT VALUES RETURNING to_jsonb(x)")
        } else {
            format!(
                "INSERT INTO {t} AS x ({columns})
                 SELECT {columns} FROM jsonb_populate_record(NULL::{t}, $1::jsonb)
                 RETURNING to_jsonb(x)"
            )
        };
        let json = Json(&value);
        let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = if columns.is_empty() {
            Vec::new()
        } else {
            vec![&json]
        };
        let row = client
            .query_one(&sql, &params)
            .await
            .map_err(|e| self.refused(&e, "could not write to"))?;
        self.record_at(&row, 0)
    }

    /// `"a", "b"`: the record's fields, each a column of the table.
    fn column_list(&self, table: &Table, record: &Record) -> Result<String> {
        let columns = self.columns_of(table, record).map_err(|e| {
            failed(format!("{e:#}")).hint("leave the field out, or add the column to the table")
        })?;
        Ok(columns
            .iter()
            .map(|c| ident(c))
            .collect::<Vec<_>>()
            .join(", "))
    }

    pub(super) async fn patch(&self, id: &str, value: Record) -> Result<Record> {
        patch_keeps_id(&value, &self.id_field, id)?;
        if self.find(id).await?.is_none() {
            return Err(self.not_found(id));
        }
        let guard = self.client().await?;
        let client = Self::connected(&guard)?;
        let shape = self.for_write(client).await?;
        let t = self.qualified();
        let sql = match &shape.table {
            // jsonb's `||` merges the patch's fields over the record's.
            None => format!(
                "UPDATE {t} AS x SET data = data || $2::jsonb, updated_at = now(),
                        seq = nextval({seq})
                  WHERE id = $1 AND NOT deleted RETURNING data",
                seq = self.sequence_literal(),
            ),
            Some(table) => {
                let columns = self.column_list(table, &value)?;
                if columns.is_empty() {
                    // Nothing to set: the record as it is (the connection
                    // let go first, as `get` takes one of its own).
                    drop(guard);
                    return self.get(id).await;
                }
                format!(
                    "UPDATE {t} AS x SET ({columns}) = (
                         SELECT {columns} FROM jsonb_populate_record(NULL::{t}, $2::jsonb))
                      WHERE {} RETURNING to_jsonb(x)",
                    self.id_is(table, 1)
                )
            }
        };
        let row = client
            .query_opt(&sql, &[&id, &Json(&value)])
            .await
            .map_err(|e| self.refused(&e, "could not write to"))?;
        match row {
            Some(row) => self.record_at(&row, 0),
            None => Err(self.not_found(id)),
        }
    }

    /// Delete record `id`: ferry's table keeps a tombstone (a change for
    /// getupdates), an existing table loses the row.
    pub(super) async fn delete(&self, id: &str) -> Result<()> {
        let guard = self.client().await?;
        let client = Self::connected(&guard)?;
        let Some(shape) = self.shape(client).await? else {
            return Err(self.not_found(id));
        };
        let t = self.qualified();
        let sql = match &shape.table {
            None => format!(
                "UPDATE {t} SET data = NULL, deleted = true, updated_at = now(),
                        seq = nextval({seq})
                  WHERE id = $1 AND NOT deleted",
                seq = self.sequence_literal(),
            ),
            Some(table) => format!("DELETE FROM {t} WHERE {}", self.id_is(table, 1)),
        };
        let n = match client.execute(&sql, &[&id]).await {
            Ok(n) => n,
            Err(e) if e.code() == Some(&SqlState::INVALID_TEXT_REPRESENTATION) => 0,
            Err(e) => return Err(self.failure(&e, "could not write to")),
        };
        if n == 0 {
            return Err(self.not_found(id));
        }
        Ok(())
    }

    /// A page of live records in id order (byte order for ferry's table,
    /// whose id column is `COLLATE "C"`). The cursor is the last id read,
    /// so every page costs one index range scan however deep the run is;
    /// only a first page asked for at an offset without a cursor
    /// (`import --offset N`) skips.
    pub(super) async fn read_page(&self, from: &Position, limit: usize) -> Result<Page> {
        let guard = self.client().await?;
        let client = Self::connected(&guard)?;
        let Some(shape) = self.shape(client).await? else {
            return Ok(Page::default());
        };
        if let Some(table) = &shape.table {
            self.writable(table)?;
        }
        let (t, id) = (self.qualified(), &shape.id_column);
        let (record, live) = (&shape.record, shape.live);
        let read = |e: tokio_postgres::Error| self.failure(&e, "could not read");
        // Counted once, on the first page (a count scans the table); the
        // import keeps the total it was given.
        let total = match from.cursor {
            Some(_) => None,
            None => Some(
                client
                    .query_one(&format!("SELECT count(*) FROM {t} x WHERE {live}"), &[])
                    .await
                    .map_err(read)?
                    .get::<_, i64>(0),
            ),
        };
        let limit_n = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = match &from.cursor {
            Some(after) => {
                let after_param = &shape.id_param;
                client
                    .query(
                        &format!(
                            "SELECT x.{id}::text, {record} FROM {t} x
                              WHERE {live} AND x.{id} > {after_param} ORDER BY x.{id} LIMIT $2"
                        ),
                        &[after, &limit_n],
                    )
                    .await
            }
            None => {
                let offset = i64::try_from(from.offset).unwrap_or(i64::MAX);
                client
                    .query(
                        &format!(
                            "SELECT x.{id}::text, {record} FROM {t} x
                              WHERE {live} ORDER BY x.{id} LIMIT $1 OFFSET $2"
                        ),
                        &[&limit_n, &offset],
                    )
                    .await
            }
        }
        .map_err(read)?;
        let mut records = Vec::with_capacity(rows.len());
        let mut last = None;
        for row in rows {
            last = row.get::<_, Option<String>>(0);
            records.push(self.record_at(&row, 1)?);
        }
        let next = (records.len() >= limit).then(|| Position {
            offset: from.offset + records.len() as u64,
            cursor: last,
        });
        Ok(Page {
            records,
            next,
            total: total.map(|t| t.max(0) as u64),
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
            failed(format!(
                "{} refused the record: {}",
                self.named(),
                describe(err)
            ))
            .hint("fix the record's value, then run the command again")
            .into()
        } else {
            self.failure(err, doing)
        }
    }

    /// Upsert `records`, one outcome each, in one transaction.
    pub(super) async fn upsert_batch(&self, records: &[Record]) -> Result<Vec<UpsertOutcome>> {
        let mut guard = self.client().await?;
        let client = guard
            .as_mut()
            .context("the PostgreSQL connection is closed")?;
        let shape = self.for_write(client).await?;
        // What is refused before anything is sent: no id, or (an existing
        // table) a field without a column.
        let refused: Vec<Option<String>> = records
            .iter()
            .map(|r| match (record_id(r, &self.id_field), &shape.table) {
                (None, _) => Some(format!("the record has no {}", self.id_field)),
                (Some(_), Some(table)) => self.columns_of(table, r).err().map(|e| format!("{e:#}")),
                (Some(_), None) => None,
            })
            .collect();
        let first = match &shape.table {
            None => self.copy_batch(client, records, &refused).await,
            Some(table) => self.rows_batch(client, table, records, &refused).await,
        };
        match first {
            Ok(()) => {
                return Ok(records
                    .iter()
                    .zip(refused)
                    .map(|(r, refused)| self.outcome(r, refused))
                    .collect())
            }
            Err(e) if record_fault(&e) => {}
            Err(e) => return Err(self.failure(&e, "could not write to")),
        }
        self.each_saved(client, shape.table.as_ref(), records, refused)
            .await
    }

    /// A record's outcome: written, or refused with `refused`.
    fn outcome(&self, record: &Record, refused: Option<String>) -> UpsertOutcome {
        let id = record_id(record, &self.id_field);
        match (refused, id) {
            (None, Some(id)) => UpsertOutcome::Ok { id },
            (Some(reason), id) => UpsertOutcome::Rejected { id, reason },
            (None, None) => UpsertOutcome::Rejected {
                id: None,
                reason: format!("the record has no {}", self.id_field),
            },
        }
    }

    /// An existing table's batch: runs of records naming the same columns,
    /// one statement each, in one transaction.
    async fn rows_batch(
        &self,
        client: &mut Client,
        table: &Table,
        records: &[Record],
        refused: &[Option<String>],
    ) -> Result<(), tokio_postgres::Error> {
        let tx = client.transaction().await?;
        let mut run: Vec<&Record> = Vec::new();
        let mut run_columns: Vec<&str> = Vec::new();
        for (record, refused) in records.iter().zip(refused) {
            if refused.is_some() {
                continue;
            }
            let columns = self.columns_of(table, record).unwrap_or_default();
            if columns != run_columns && !run.is_empty() {
                self.upsert_rows(&tx, &run_columns, &run).await?;
                run.clear();
            }
            run_columns = columns;
            run.push(record);
        }
        if !run.is_empty() {
            self.upsert_rows(&tx, &run_columns, &run).await?;
        }
        tx.commit().await
    }

    /// The batch by COPY into the temporary table, then one statement.
    async fn copy_batch(
        &self,
        client: &mut Client,
        records: &[Record],
        refused: &[Option<String>],
    ) -> Result<(), tokio_postgres::Error> {
        let tx = client.transaction().await?;
        tx.batch_execute(
            "CREATE TEMP TABLE IF NOT EXISTS pg_temp.ferry_batch (ord int4, id text, data jsonb)
             ON COMMIT DELETE ROWS",
        )
        .await?;
        let sink = tx
            .copy_in("COPY pg_temp.ferry_batch (ord, id, data) FROM STDIN (FORMAT binary)")
            .await?;
        let writer = BinaryCopyInWriter::new(sink, &[Type::INT4, Type::TEXT, Type::JSONB]);
        futures::pin_mut!(writer);
        for (i, (record, refused)) in records.iter().zip(refused).enumerate() {
            let Some(id) = record_id(record, &self.id_field).filter(|_| refused.is_none()) else {
                continue;
            };
            let ord = i32::try_from(i).unwrap_or(i32::MAX);
            writer.as_mut().write(&[&ord, &id, &Json(record)]).await?;
        }
        writer.finish().await?;
        tx.execute(
            &format!(
                "INSERT INTO {t} (id, data, seq, created_seq)
                 SELECT id, data, s, s FROM (
                     -- A volatile call in a subquery's list runs once a
                     -- row; rows go in id order, so two batches written at
                     -- once lock the rows they share in the same order.
                     SELECT id, data, nextval({seq}) AS s FROM (
                         SELECT DISTINCT ON (id) id, data, ord FROM pg_temp.ferry_batch
                          ORDER BY id, ord DESC
                     ) b ORDER BY id
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
        table: Option<&Table>,
        records: &[Record],
        refused: Vec<Option<String>>,
    ) -> Result<Vec<UpsertOutcome>> {
        let write = |e: tokio_postgres::Error| self.failure(&e, "could not write to");
        let sql = self.upsert_one();
        let mut tx = client.transaction().await.map_err(write)?;
        let mut outcomes = Vec::with_capacity(records.len());
        for (record, refused) in records.iter().zip(refused) {
            let id = record_id(record, &self.id_field);
            let (Some(id), None) = (id, &refused) else {
                outcomes.push(self.outcome(record, refused));
                continue;
            };
            let sp = tx.savepoint("ferry_record").await.map_err(write)?;
            let written = match table {
                None => sp.execute(&sql, &[&id, &Json(record)]).await.map(|_| ()),
                Some(table) => {
                    let columns = self.columns_of(table, record).unwrap_or_default();
                    self.upsert_rows(&sp, &columns, &[record]).await
                }
            };
            match written {
                Ok(()) => {
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
