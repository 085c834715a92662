//! The layout of a table ferry creates: each record as JSON (`data`) with
//! its update time, a change sequence number (`seq`, and `created_seq` to
//! tell an insert from an update) and a tombstone flag, so `getupdates`
//! can report inserts, updates and deletes. The table is marked as ferry's
//! in `ferry_tables`.

use anyhow::{Context, Result};
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::Value;

use super::db::Db;
use super::layout::{now, quote, Layout};
use super::updates::Since;
use crate::connector::{new_id, FieldSpec, ProfileUpdate, Record, Rejection, Updates};
use crate::error::failed;

/// The table that marks the tables ferry created (and their version).
pub(super) const MANAGED_MARKER: &str = "ferry_tables";

pub(super) struct Managed<'a> {
    db: &'a Db,
    /// The table's name, quoted for SQL.
    table: String,
    /// The last sequence number this layout handed out in the transaction
    /// under way, and the time its writes are stamped with: the table's
    /// `MAX(seq)` is read once per transaction (a batch) instead of once
    /// per record, a fifth of an export's write time. Forgotten when a
    /// transaction begins ([`Layout::begin`]): between two, another
    /// process may write.
    last: std::cell::RefCell<Option<(i64, String)>>,
    /// The statements run once per record, written once per layout (a
    /// batch) rather than formatted for every record.
    sql: Statements,
}

/// [`Managed`]'s per-record statements, for its table.
struct Statements {
    get: String,
    create: String,
    upsert: String,
}

impl Statements {
    fn for_table(t: &str) -> Statements {
        Statements {
            get: format!("SELECT data FROM {t} WHERE id = ?1 AND deleted = 0"),
            create: format!(
                "INSERT INTO {t} (id, data, updated_at, seq, created_seq, deleted)
                 VALUES (?1, ?2, ?3, ?4, ?4, 0)
                 ON CONFLICT(id) DO NOTHING"
            ),
            upsert: format!(
                "INSERT INTO {t} (id, data, updated_at, seq, created_seq, deleted)
                 VALUES (?1, ?2, ?3, ?4, ?4, 0)
                 ON CONFLICT(id) DO UPDATE SET
                   data = excluded.data,
                   updated_at = excluded.updated_at,
                   seq = excluded.seq,
                   created_seq = CASE WHEN deleted = 1 THEN excluded.seq ELSE created_seq END,
                   deleted = 0"
            ),
        }
    }
}

impl<'a> Managed<'a> {
    pub(super) fn new(db: &'a Db) -> Self {
        let table = quote(&db.table);
        Managed {
            db,
            sql: Statements::for_table(&table),
            table,
            last: std::cell::RefCell::new(None),
        }
    }

    /// Create the table, its index and its marker in the transaction `tx`.
    pub(super) fn create(db: &Db, tx: &Connection) -> Result<()> {
        let t = quote(&db.table);
        let idx = quote(&format!("{}_seq", db.table));
        tx.execute_batch(&format!(
            "CREATE TABLE IF NOT EXISTS {MANAGED_MARKER} (name TEXT PRIMARY KEY, version INTEGER NOT NULL);
             CREATE TABLE {t} (
                 id TEXT PRIMARY KEY,
                 data TEXT,
                 updated_at TEXT NOT NULL,
                 seq INTEGER NOT NULL,
                 created_seq INTEGER NOT NULL,
                 deleted INTEGER NOT NULL DEFAULT 0
             );
             CREATE INDEX {idx} ON {t}(seq);"
        ))
        .with_context(|| format!("could not create table \"{}\" in {}", db.table, db.path.display()))?;
        tx.execute(
            &format!("INSERT INTO {MANAGED_MARKER} (name, version) VALUES (?1, 1)"),
            params![db.table],
        )?;
        Ok(())
    }

    /// The next change's sequence number, and the time to stamp it with.
    /// Numbers handed out in a transaction that was rolled back are not
    /// used again: the sequence only has to grow.
    fn next_seq(&self, conn: &Connection) -> Result<(i64, String)> {
        let mut last = self.last.borrow_mut();
        let next = match last.as_ref() {
            Some((seq, at)) => (seq + 1, at.clone()),
            None => {
                let seq = conn
                    .prepare_cached(&format!(
                        "SELECT COALESCE(MAX(seq), 0) + 1 FROM {}",
                        self.table
                    ))?
                    .query_row([], |r| r.get(0))?;
                (seq, now())
            }
        };
        *last = Some(next.clone());
        Ok(next)
    }

    /// [`Layout::upsert`] with the sequence number and time it is given.
    fn upsert_as(
        &self,
        tx: &Connection,
        id: &str,
        record: &Record,
        stamp: (i64, String),
    ) -> Result<()> {
        let (seq, at) = stamp;
        // Cached: a bulk import runs this once per record.
        tx.prepare_cached(&self.sql.upsert)?.execute(params![
            id,
            serde_json::to_string(record)?,
            at,
            seq
        ])?;
        Ok(())
    }

    /// The table's name, quoted for SQL.
    pub(super) fn table(&self) -> &str {
        &self.table
    }
}

impl Layout for Managed<'_> {
    fn kind(&self) -> &'static str {
        "managed by ferry (changes tracked)"
    }

    fn live(&self) -> &'static str {
        "deleted = 0"
    }

    fn fields(&self, _conn: &Connection, spec: Vec<FieldSpec>) -> Result<Vec<FieldSpec>> {
        Ok(spec)
    }

    fn begin(&self) {
        *self.last.borrow_mut() = None;
    }

    fn get(&self, conn: &Connection, id: &str) -> Result<Option<Record>> {
        // Cached: an export reads each profile's row before writing it.
        let data: Option<String> = conn
            .prepare_cached(&self.sql.get)?
            .query_row(params![id], |r| r.get(0))
            .optional()?;
        data.map(|d| parse_data(&d)).transpose()
    }

    fn upsert(&self, tx: &Connection, id: &str, record: &Record) -> Result<()> {
        let stamp = self.next_seq(tx)?;
        self.upsert_as(tx, id, record, stamp)
    }

    fn insert(&self, tx: &Connection, mut value: Record, given: Option<String>) -> Result<Record> {
        let id = given.clone().unwrap_or_else(new_id);
        // A given id is kept as written (a number stays a number).
        if given.is_none() {
            value.insert(self.db.id_field.clone(), Value::String(id.clone()));
        }
        self.upsert(tx, &id, &value)?;
        Ok(value)
    }

    fn patch(&self, tx: &Connection, id: &str, mut old: Record, value: &Record) -> Result<()> {
        for (k, v) in value {
            old.insert(k.clone(), v.clone());
        }
        self.upsert(tx, id, &old)
    }

    fn remove(&self, tx: &Connection, id: &str) -> Result<()> {
        let (seq, at) = self.next_seq(tx)?;
        tx.execute(
            &format!(
                "UPDATE {} SET data = NULL, deleted = 1, seq = ?2, updated_at = ?3 WHERE id = ?1",
                self.table
            ),
            params![id, seq, at],
        )?;
        Ok(())
    }

    /// A new id is one insert (a first export is nothing but those); a
    /// record or tombstone already there is read, merged and written.
    fn create(&self, tx: &Connection, id: &str, fields: &Record) -> Result<()> {
        let (seq, at) = self.next_seq(tx)?;
        let inserted = tx.prepare_cached(&self.sql.create)?.execute(params![
            id,
            serde_json::to_string(fields)?,
            &at,
            seq
        ])?;
        if inserted == 1 {
            return Ok(());
        }
        let mut record = self.get(tx, id)?.unwrap_or_default();
        record.extend(fields.iter().map(|(k, v)| (k.clone(), v.clone())));
        self.upsert_as(tx, id, &record, (seq, at))
    }

    /// A record is JSON: a cleared field is removed, and a rename leaves a
    /// tombstone under the old id.
    fn update(
        &self,
        tx: &Connection,
        id: &str,
        new_id: &str,
        mut old: Record,
        update: &ProfileUpdate,
    ) -> Result<()> {
        old.extend(update.set.clone());
        for key in &update.clear {
            old.shift_remove(key);
        }
        if new_id != id {
            self.remove(tx, id)?;
        }
        self.upsert(tx, new_id, &old)
            .map_err(|e| Rejection(format!("{e:#}")).into())
    }

    fn select(&self) -> &'static str {
        "rowid, data"
    }

    fn decode(&self, row: &rusqlite::Row<'_>) -> Result<Record> {
        parse_data(&row.get::<_, String>(1)?)
    }

    fn updates(&self, conn: &Connection, since: &Since, limit: Option<usize>) -> Result<Updates> {
        self.changes(conn, since, limit)
    }
}

/// A stored record's JSON.
pub(super) fn parse_data(data: &str) -> Result<Record> {
    match serde_json::from_str(data)? {
        Value::Object(map) => Ok(map),
        _ => Err(failed("a stored record is not a JSON object").into()),
    }
}
