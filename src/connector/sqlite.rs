//! The `sqlite` connector, the embedded default. A table ferry creates keeps
//! each record as JSON with its update time and a change sequence number, and
//! keeps deleted ids as tombstones, so `getupdates` can report inserts,
//! updates and deletes and never skip a record that shares a timestamp. An
//! existing table is used as it is: its columns are the record's fields.
//! As an export destination it is keyed by its id field and keeps group
//! memberships beside the table (`<table>_groups`, `<table>_members`).

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::{Context, Result};
use async_trait::async_trait;
use rusqlite::types::{Value as SqlValue, ValueRef};
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{json, Map, Value};

use crate::connector::options::{connector_options, Described, Num};
use crate::connector::{
    given_id, new_id, record_id, Action, Change, ChangeType, Connector, ExportFields, FieldSpec,
    FieldType, Options, Outcome, Page, Position, ProfileOutcome, ProfileUpdate, Record, Records,
    Rejection, Role, Spec, Updates, WriteOp,
};
use crate::ctx::Ctx;
use crate::error::{failed, not_found, usage, Failure, Kind};

connector_options! {
    /// The options of a `sqlite` account.
    pub struct SqliteOptions {
        /// Path of the SQLite file, relative to account.json; created on the first write
        #[option(label = "Database file", placeholder = "ferry.db", required)]
        pub path: String,
        /// The table holding the records; created on the first write when missing
        #[option(label = "Table", default = "records")]
        pub table: String,
        /// The field (or column) that identifies a record
        #[option(label = "Id field", default = "id")]
        pub id_field: String,
        /// How long a write waits for another process that holds the database (0 to 3600 seconds); past it the run stops, resumably
        #[option(label = "Busy timeout", kind = FieldType::Number, default = 10)]
        pub busy_timeout_secs: Num,
    }
}

pub fn spec() -> Spec {
    Spec {
        code: "sqlite",
        label: "SQLite database",
        description: "Records in a table of a local SQLite file (the embedded default: no server, no credentials). A table ferry creates stores each record as JSON with its update time and tracks inserts, updates and deletes for getupdates; an existing table is used as it is, one column per field.",
        roles: vec![Role::Source, Role::Destination],
        options: SqliteOptions::option_specs(),
        fields: vec![FieldSpec::new("id", FieldType::String, "The record's identifier (the idField option names it)").required()],
        extra_fields: true,
        // A table ferry manages also keeps group memberships beside it.
        actions: Action::records_and(&[Action::ExportProfiles, Action::Groups]),
        max_batch_size: 1_000,
        parallelism: 1,
    }
}

pub fn open(_ctx: &Ctx, options: Options) -> Result<Box<dyn Connector>> {
    let config: SqliteOptions = options.parse()?;
    let at = options.at("busyTimeoutSecs");
    let busy_timeout = config.busy_timeout_secs.seconds_in(at, 0.0, 3600.0)?;
    Ok(Box::new(Sqlite {
        spec: spec(),
        db: Arc::new(Db {
            path: options.resolve(&config.path),
            table: config.table,
            id_field: config.id_field,
            busy_timeout,
            conn: Mutex::new(None),
        }),
    }))
}

pub struct Sqlite {
    spec: Spec,
    db: Arc<Db>,
}

struct Db {
    path: PathBuf,
    table: String,
    id_field: String,
    /// How long a write waits for another process's lock.
    busy_timeout: std::time::Duration,
    /// Opened on first use, so a read of a missing file creates nothing.
    conn: Mutex<Option<Connection>>,
}

/// How the table is laid out.
#[derive(Debug, Clone, PartialEq)]
enum Layout {
    /// Neither the table nor (maybe) the file exists yet.
    Missing,
    /// A table ferry created: id, data (JSON), timestamps, sequence, tombstones.
    Managed,
    /// A table that existed before: these columns, with the id column's
    /// declared type and whether it is the rowid alias.
    Existing {
        columns: Vec<String>,
        id_is_rowid: bool,
    },
}

const MANAGED_MARKER: &str = "ferry_tables";

fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl Db {
    fn lock(&self, create: bool) -> Result<Option<MutexGuard<'_, Option<Connection>>>> {
        let mut guard = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        if guard.is_none() {
            if !create && !self.path.exists() {
                return Ok(None);
            }
            if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
                if !dir.is_dir() {
                    return Err(usage(format!(
                        "the folder of {} does not exist",
                        self.path.display()
                    ))
                    .hint("create the folder, or change \"path\" in account.json")
                    .into());
                }
            }
            let conn = Connection::open(&self.path)
                .with_context(|| format!("could not open SQLite file {}", self.path.display()))?;
            conn.busy_timeout(self.busy_timeout)?;
            // WAL keeps readers and the writer out of each other's way and
            // makes each committed batch durable without rewriting the file.
            conn.pragma_update(None, "journal_mode", "WAL")
                .map_err(|e| self.open_error(e))?;
            conn.pragma_update(None, "synchronous", "NORMAL")?;
            *guard = Some(conn);
        }
        Ok(Some(guard))
    }

    /// The first statement on a file is where SQLite finds out it is not a
    /// database: that is the account's mistake (exit 2), not a failed action.
    fn open_error(&self, err: rusqlite::Error) -> anyhow::Error {
        if err.sqlite_error_code() == Some(rusqlite::ErrorCode::NotADatabase) {
            return usage(format!(
                "{} is not a SQLite database ({err})",
                self.path.display()
            ))
            .hint("point \"path\" in account.json at a SQLite file, or at a new file name to create one")
            .into();
        }
        anyhow::Error::new(err).context(format!(
            "could not open SQLite file {}",
            self.path.display()
        ))
    }

    fn layout(&self, conn: &Connection) -> Result<Layout> {
        let exists: bool = conn.query_row(
            "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = ?1",
            params![self.table],
            |r| r.get(0),
        )?;
        if !exists {
            return Ok(Layout::Missing);
        }
        let managed: bool = conn
            .query_row(
                &format!("SELECT count(*) > 0 FROM {MANAGED_MARKER} WHERE name = ?1"),
                params![self.table],
                |r| r.get(0),
            )
            .unwrap_or(false);
        if managed {
            return Ok(Layout::Managed);
        }
        let mut stmt = conn.prepare(&format!("PRAGMA table_info({})", quote(&self.table)))?;
        let mut columns = Vec::new();
        let mut id_is_rowid = false;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(5)?,
            ))
        })?;
        for row in rows {
            let (name, kind, pk) = row?;
            if name == self.id_field && pk == 1 && kind.eq_ignore_ascii_case("INTEGER") {
                id_is_rowid = true;
            }
            columns.push(name);
        }
        if !columns.iter().any(|c| c == &self.id_field) {
            return Err(usage(format!(
                "table \"{}\" in {} has no column \"{}\"",
                self.table,
                self.path.display(),
                self.id_field
            ))
            .hint(format!(
                "set \"idField\" in account.json to one of its columns: {}",
                columns.join(", ")
            ))
            .into());
        }
        Ok(Layout::Existing {
            columns,
            id_is_rowid,
        })
    }

    /// Create the managed table, unless another writer did since `layout`
    /// looked: the check and the creation share one write transaction, and
    /// the table and its marker are committed together.
    fn create_managed(&self, conn: &mut Connection) -> Result<Layout> {
        let tx = write_tx(conn)?;
        let layout = self.layout(&tx)?;
        if layout != Layout::Missing {
            return Ok(layout);
        }
        let t = quote(&self.table);
        let idx = quote(&format!("{}_seq", self.table));
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
        .with_context(|| format!("could not create table \"{}\" in {}", self.table, self.path.display()))?;
        tx.execute(
            &format!("INSERT INTO {MANAGED_MARKER} (name, version) VALUES (?1, 1)"),
            params![self.table],
        )?;
        tx.commit()?;
        Ok(Layout::Managed)
    }

    /// The connection and layout for a read; `None` when there is nothing to read.
    fn with_read<T>(
        &self,
        empty: T,
        f: impl FnOnce(&Connection, &Layout) -> Result<T>,
    ) -> Result<T> {
        let Some(guard) = self.lock(false)? else {
            return Ok(empty);
        };
        let conn = guard.as_ref().context("the SQLite connection is closed")?;
        let layout = self.layout(conn)?;
        if layout == Layout::Missing {
            return Ok(empty);
        }
        f(conn, &layout)
    }

    /// The connection and layout for a write, creating the table if needed.
    fn with_write<T>(&self, f: impl FnOnce(&mut Connection, &Layout) -> Result<T>) -> Result<T> {
        let mut guard = self
            .lock(true)?
            .context("the SQLite connection is closed")?;
        let conn = guard.as_mut().context("the SQLite connection is closed")?;
        let mut layout = self.layout(conn)?;
        if layout == Layout::Missing {
            layout = self.create_managed(conn)?;
        }
        f(conn, &layout)
    }

    fn not_found(&self, id: &str) -> anyhow::Error {
        not_found(format!(
            "no record with {} \"{id}\" in table \"{}\" of {}",
            self.id_field,
            self.table,
            self.path.display()
        ))
        .hint("run `ferry getupdates` to list the records and their ids")
        .into()
    }

    fn get(&self, conn: &Connection, layout: &Layout, id: &str) -> Result<Option<Record>> {
        let t = quote(&self.table);
        match layout {
            Layout::Missing => Ok(None),
            Layout::Managed => {
                let data: Option<String> = conn
                    .query_row(
                        &format!("SELECT data FROM {t} WHERE id = ?1 AND deleted = 0"),
                        params![id],
                        |r| r.get(0),
                    )
                    .optional()?;
                data.map(|d| parse_data(&d)).transpose()
            }
            Layout::Existing { .. } => {
                let mut stmt = conn.prepare(&format!(
                    "SELECT * FROM {t} WHERE {} = ?1",
                    quote(&self.id_field)
                ))?;
                let mut rows = stmt.query(params![id])?;
                match rows.next()? {
                    Some(row) => Ok(Some(row_to_record(row)?)),
                    None => Ok(None),
                }
            }
        }
    }

    /// Write one record keyed by `id` inside the caller's transaction.
    fn upsert_one(
        &self,
        tx: &Connection,
        layout: &Layout,
        id: &str,
        record: &Record,
    ) -> Result<()> {
        let t = quote(&self.table);
        match layout {
            Layout::Missing => unreachable_layout(),
            Layout::Managed => {
                let seq = next_seq(tx, &t)?;
                // Cached: a bulk import runs this once per record.
                tx.prepare_cached(&format!(
                    "INSERT INTO {t} (id, data, updated_at, seq, created_seq, deleted)
                     VALUES (?1, ?2, ?3, ?4, ?4, 0)
                     ON CONFLICT(id) DO UPDATE SET
                       data = excluded.data,
                       updated_at = excluded.updated_at,
                       seq = excluded.seq,
                       created_seq = CASE WHEN deleted = 1 THEN excluded.seq ELSE created_seq END,
                       deleted = 0"
                ))?
                .execute(params![
                    id,
                    serde_json::to_string(record)?,
                    now(),
                    seq
                ])?;
                Ok(())
            }
            Layout::Existing { columns, .. } => {
                let fields = self.columns_of(record, columns)?;
                let sets: Vec<String> = fields
                    .iter()
                    .enumerate()
                    .map(|(i, (c, _))| format!("{} = ?{}", quote(c), i + 2))
                    .collect();
                let mut values: Vec<SqlValue> = vec![SqlValue::Text(id.to_string())];
                values.extend(fields.iter().map(|(_, v)| to_sql(v)));
                let updated = if sets.is_empty() {
                    tx.query_row(
                        &format!(
                            "SELECT count(*) FROM {t} WHERE {} = ?1",
                            quote(&self.id_field)
                        ),
                        params![id],
                        |r| r.get::<_, i64>(0),
                    )? as usize
                } else {
                    tx.execute(
                        &format!(
                            "UPDATE {t} SET {} WHERE {} = ?1",
                            sets.join(", "),
                            quote(&self.id_field)
                        ),
                        rusqlite::params_from_iter(values.iter()),
                    )?
                };
                if updated == 0 {
                    self.insert_existing(tx, record, columns, Some(id))?;
                }
                Ok(())
            }
        }
    }

    /// The record's fields as (column, value), refusing fields the table lacks.
    fn columns_of<'r>(
        &self,
        record: &'r Record,
        columns: &[String],
    ) -> Result<Vec<(String, &'r Value)>> {
        let mut out = Vec::new();
        for (k, v) in record {
            if !columns.iter().any(|c| c == k) {
                return Err(
                    failed(format!("table \"{}\" has no column \"{k}\"", self.table))
                        .hint(format!(
                    "add the column to the table, or leave \"{k}\" out; its columns are: {}",
                    columns.join(", ")
                ))
                        .into(),
                );
            }
            out.push((k.clone(), v));
        }
        Ok(out)
    }

    /// Insert into an existing table; answers the id (the rowid when the
    /// table assigns it).
    fn insert_existing(
        &self,
        tx: &Connection,
        record: &Record,
        columns: &[String],
        id: Option<&str>,
    ) -> Result<String> {
        let t = quote(&self.table);
        let mut fields = self.columns_of(record, columns)?;
        let id_value = id.map(|i| Value::String(i.to_string()));
        if let Some(v) = &id_value {
            if !fields.iter().any(|(c, _)| c == &self.id_field) {
                fields.push((self.id_field.clone(), v));
            }
        }
        let names: Vec<String> = fields.iter().map(|(c, _)| quote(c)).collect();
        let marks: Vec<String> = (1..=fields.len()).map(|i| format!("?{i}")).collect();
        let values: Vec<SqlValue> = fields.iter().map(|(_, v)| to_sql(v)).collect();
        let sql = if fields.is_empty() {
            format!("INSERT INTO {t} DEFAULT VALUES")
        } else {
            format!(
                "INSERT INTO {t} ({}) VALUES ({})",
                names.join(", "),
                marks.join(", ")
            )
        };
        tx.execute(&sql, rusqlite::params_from_iter(values.iter()))
            .with_context(|| format!("could not insert into table \"{}\"", self.table))?;
        Ok(match id {
            Some(id) => id.to_string(),
            None => tx.last_insert_rowid().to_string(),
        })
    }
}

/// A write transaction that takes the write lock up front. A deferred one
/// reads first and then fails at once with "database is locked" when another
/// process wrote in between (SQLite cannot upgrade a stale read snapshot);
/// taken up front, the lock waits for the busy timeout instead.
fn write_tx(conn: &mut Connection) -> Result<rusqlite::Transaction<'_>> {
    Ok(conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?)
}

/// Whether SQLite's error code says the database failed, rather than that
/// it refused a record: read-only, full, locked past the busy timeout, gone,
/// damaged. A constraint, a type mismatch or a value too big is the
/// record's fault; so is any error that is not SQLite's (ferry's own checks).
fn store_code(err: &anyhow::Error) -> Option<rusqlite::ErrorCode> {
    use rusqlite::ErrorCode as C;
    let code = err
        .chain()
        .find_map(|c| c.downcast_ref::<rusqlite::Error>())?
        .sqlite_error_code()?;
    match code {
        C::ConstraintViolation | C::TypeMismatch | C::TooBig => None,
        other => Some(other),
    }
}

impl Db {
    /// The error that stops a run when the database itself failed, with
    /// what to do about it; `None` when the record is at fault.
    fn store_failure(&self, err: &anyhow::Error) -> Option<anyhow::Error> {
        use rusqlite::ErrorCode as C;
        let code = store_code(err)?;
        let file = self.path.display();
        let hint = match code {
            C::DatabaseBusy | C::DatabaseLocked => format!(
                "another process holds {file} (waited {}s): let it finish or close it, or raise \"busyTimeoutSecs\" in the account",
                self.busy_timeout.as_secs_f64()
            ),
            C::ReadOnly => format!("{file} cannot be written: make it (and its folder) writable"),
            C::DiskFull => format!("the disk holding {file} is full: free some space"),
            _ => format!("check that {file} is a healthy SQLite file on a working disk"),
        };
        Some(
            failed(format!("could not write to SQLite file {file}: {err:#}"))
                .hint(hint)
                .into(),
        )
    }
}

/// The SQL filter for a `lastSync` token: the last change's sequence number,
/// or an RFC 3339 time meaning "every change at or after it".
fn since_filter(token: Option<&str>) -> Result<(&'static str, SqlValue)> {
    Ok(match token {
        None => ("deleted = 0", SqlValue::Null),
        Some(token) => match token.parse::<i64>() {
            Ok(seq) => ("seq > ?1", SqlValue::Integer(seq)),
            Err(_) => {
                let at = chrono::DateTime::parse_from_rfc3339(token).map_err(|_| {
                    usage(format!(
                        "lastSync \"{token}\" is neither a nextSync token nor an RFC 3339 time"
                    ))
                    .hint("pass the nextSync of the previous getupdates, or a time such as 2026-01-01T00:00:00Z")
                })?;
                let at = at
                    .with_timezone(&chrono::Utc)
                    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
                ("updated_at >= ?1", SqlValue::Text(at))
            }
        },
    })
}

impl Db {
    /// An existing table's columns as fields: the declared type read the way
    /// SQLite reads affinities (plus DATE, DATETIME and BOOLEAN, which SQLite
    /// stores as text or numbers but which say what the values must look
    /// like), NOT NULL without a default as required.
    fn declared_fields(&self, conn: &Connection) -> Result<Vec<FieldSpec>> {
        let mut stmt = conn.prepare(&format!("PRAGMA table_info({})", quote(&self.table)))?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, bool>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, i64>(5)?,
            ))
        })?;
        let mut fields = Vec::new();
        for row in rows {
            let (name, decl, not_null, default, pk) = row?;
            let decl = decl.to_ascii_uppercase();
            let kind = if decl.contains("INT") {
                FieldType::Integer
            } else if decl.contains("BOOL") {
                FieldType::Boolean
            } else if decl.contains("DATETIME") || decl.contains("TIMESTAMP") {
                FieldType::Datetime
            } else if decl.contains("DATE") {
                FieldType::Date
            } else if decl.contains("CHAR") || decl.contains("CLOB") || decl.contains("TEXT") {
                FieldType::String
            } else if ["REAL", "FLOA", "DOUB", "NUMERIC", "DECIMAL"]
                .iter()
                .any(|t| decl.contains(t))
            {
                FieldType::Number
            } else {
                FieldType::Any
            };
            let required = (not_null && default.is_none()) || (pk > 0 && name == self.id_field);
            // Field names are 'static in specs; a table has a handful of
            // columns and is described once per run, so leaking is bounded.
            let name: &'static str = Box::leak(name.into_boxed_str());
            let mut field = FieldSpec::new(name, kind, "a column of the existing table");
            if required {
                field = field.required();
            }
            fields.push(field);
        }
        Ok(fields)
    }
}

/// Export: group memberships live beside the records table, in
/// `<table>_groups` (one row per group) and `<table>_members` (group, record
/// id), so they work for managed and existing tables alike.
impl Db {
    fn groups_table(&self) -> String {
        quote(&format!("{}_groups", self.table))
    }

    fn members_table(&self) -> String {
        quote(&format!("{}_members", self.table))
    }

    fn create_group_tables(&self, conn: &Connection) -> Result<()> {
        conn.execute_batch(&format!(
            "CREATE TABLE IF NOT EXISTS {} (name TEXT PRIMARY KEY, created_at TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS {} (group_name TEXT NOT NULL, record_id TEXT NOT NULL,
                 PRIMARY KEY (group_name, record_id));",
            self.groups_table(),
            self.members_table()
        ))
        .with_context(|| {
            format!(
                "could not create the group tables in {}",
                self.path.display()
            )
        })
    }

    /// Create the profile, or merge its fields into the record with its id.
    fn export_create(&self, tx: &Connection, layout: &Layout, fields: &Record) -> Result<String> {
        let id = record_id(fields, &self.id_field)
            .ok_or_else(|| Rejection(format!("the profile has no {}", self.id_field)))?;
        let record = match (layout, self.get(tx, layout, &id)?) {
            (Layout::Managed, Some(mut old)) => {
                old.extend(fields.clone());
                old
            }
            _ => fields.clone(),
        };
        self.upsert_one(tx, layout, &id, &record)
            .map_err(|e| Rejection(format!("{e:#}")))?;
        Ok(id)
    }

    /// Set and clear fields of record `id`; a changed id field renames the
    /// record (and its memberships) unless another record has that id.
    fn export_update(
        &self,
        tx: &Connection,
        layout: &Layout,
        id: &str,
        update: &ProfileUpdate,
    ) -> Result<String> {
        let Some(old) = self.get(tx, layout, id)? else {
            return Err(self.not_found(id));
        };
        let new_id = record_id(&update.set, &self.id_field).unwrap_or_else(|| id.to_string());
        if new_id != id && self.get(tx, layout, &new_id)?.is_some() {
            return Err(Rejection(format!(
                "another record already has {} \"{new_id}\"",
                self.id_field
            ))
            .into());
        }
        match layout {
            Layout::Existing { .. } => {
                // Cleared columns become NULL, the way a table clears a field.
                let mut values = update.set.clone();
                for key in &update.clear {
                    values.insert(key.clone(), Value::Null);
                }
                self.upsert_one(tx, layout, id, &values)
                    .map_err(|e| Rejection(format!("{e:#}")))?;
            }
            _ => {
                // A managed record is JSON: a cleared field is removed.
                let mut record = old;
                record.extend(update.set.clone());
                for key in &update.clear {
                    record.shift_remove(key);
                }
                if new_id != id {
                    let t = quote(&self.table);
                    let seq = next_seq(tx, &t)?;
                    tx.execute(
                        &format!("UPDATE {t} SET data = NULL, deleted = 1, seq = ?2, updated_at = ?3 WHERE id = ?1"),
                        params![id, seq, now()],
                    )?;
                }
                self.upsert_one(tx, layout, &new_id, &record)
                    .map_err(|e| Rejection(format!("{e:#}")))?;
            }
        }
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

    /// Run `op` for each item in one transaction, each in its own savepoint,
    /// so one profile the table refuses does not undo the others.
    fn each<T>(
        &self,
        conn: &mut Connection,
        layout: &Layout,
        items: &[T],
        op: impl Fn(&Connection, &Layout, &T) -> Result<String>,
    ) -> Result<Vec<ProfileOutcome>> {
        let mut tx = write_tx(conn).map_err(|e| self.store_failure(&e).unwrap_or(e))?;
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            let sp = tx.savepoint()?;
            match op(&sp, layout, item) {
                Ok(id) => {
                    sp.commit()?;
                    out.push(ProfileOutcome::Ok { id });
                }
                Err(e) => {
                    if let Some(failure) = self.store_failure(&e) {
                        return Err(failure);
                    }
                    drop(sp);
                    out.push(ProfileOutcome::from_result(Err(e)));
                }
            }
        }
        tx.commit()?;
        Ok(out)
    }

    /// Delete record `id` and its memberships; a missing record is fine.
    fn export_delete(&self, tx: &Connection, layout: &Layout, id: &str) -> Result<()> {
        if self.get(tx, layout, id)?.is_some() {
            let t = quote(&self.table);
            match layout {
                Layout::Existing { .. } => {
                    tx.execute(
                        &format!("DELETE FROM {t} WHERE {} = ?1", quote(&self.id_field)),
                        params![id],
                    )?;
                }
                _ => {
                    let seq = next_seq(tx, &t)?;
                    tx.execute(
                        &format!("UPDATE {t} SET data = NULL, deleted = 1, seq = ?2, updated_at = ?3 WHERE id = ?1"),
                        params![id, seq, now()],
                    )?;
                }
            }
        }
        self.create_group_tables(tx)?;
        tx.execute(
            &format!("DELETE FROM {} WHERE record_id = ?1", self.members_table()),
            params![id],
        )?;
        Ok(())
    }
}

/// Membership statements: `{members}` is the membership table, `?1` the
/// group, `?2` the record id.
const ADD_MEMBER: &str = "INSERT OR IGNORE INTO {members} (group_name, record_id) VALUES (?1, ?2)";
const REMOVE_MEMBER: &str = "DELETE FROM {members} WHERE group_name = ?1 AND record_id = ?2";

fn unreachable_layout() -> Result<()> {
    Err(failed("the table disappeared during the write").into())
}

fn next_seq(conn: &Connection, table: &str) -> Result<i64> {
    Ok(conn
        .prepare_cached(&format!("SELECT COALESCE(MAX(seq), 0) + 1 FROM {table}"))?
        .query_row([], |r| r.get(0))?)
}

fn parse_data(data: &str) -> Result<Record> {
    match serde_json::from_str(data)? {
        Value::Object(map) => Ok(map),
        _ => Err(failed("a stored record is not a JSON object").into()),
    }
}

fn row_to_record(row: &rusqlite::Row<'_>) -> Result<Record> {
    let stmt = row.as_ref();
    let mut map = Map::new();
    for i in 0..stmt.column_count() {
        let name = stmt.column_name(i)?.to_string();
        let value = match row.get_ref(i)? {
            ValueRef::Null => Value::Null,
            ValueRef::Integer(n) => json!(n),
            ValueRef::Real(f) => json!(f),
            ValueRef::Text(t) => Value::String(String::from_utf8_lossy(t).into_owned()),
            ValueRef::Blob(b) => Value::String(b.iter().map(|x| format!("{x:02x}")).collect()),
        };
        map.insert(name, value);
    }
    Ok(map)
}

fn to_sql(value: &Value) -> SqlValue {
    match value {
        Value::Null => SqlValue::Null,
        Value::Bool(b) => SqlValue::Integer(i64::from(*b)),
        Value::Number(n) => match n.as_i64() {
            Some(i) => SqlValue::Integer(i),
            None => SqlValue::Real(n.as_f64().unwrap_or(0.0)),
        },
        Value::String(s) => SqlValue::Text(s.clone()),
        other => SqlValue::Text(other.to_string()),
    }
}

impl Sqlite {
    /// Run one membership statement for one record.
    async fn member(&self, sql: &'static str, group: &str, id: &str) -> Result<()> {
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
    async fn membership(
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
                    db.each(conn, layout, &ids, |tx, _, id| {
                        tx.execute(&sql, params![group, id])?;
                        Ok(id.clone())
                    })
                })
            })
            .await;
        ProfileOutcome::of_batch(result, n)
    }

    async fn blocking<T, Op>(&self, op: Op) -> Result<T>
    where
        T: Send + 'static,
        Op: FnOnce(&Db) -> Result<T> + Send + 'static,
    {
        let db = Arc::clone(&self.db);
        tokio::task::spawn_blocking(move || op(&db))
            .await
            .context("a database operation stopped unexpectedly")?
    }
}

#[async_trait]
impl Connector for Sqlite {
    fn spec(&self) -> &Spec {
        &self.spec
    }

    fn id_field(&self) -> &str {
        &self.db.id_field
    }

    fn preview(&self, op: &WriteOp) -> Result<Vec<Value>> {
        Ok(super::preview_rows(
            op,
            &format!("{}#{}", self.db.path.display(), self.db.table),
        ))
    }

    async fn fields(&self) -> Result<Vec<FieldSpec>> {
        let spec_fields = self.spec.fields.clone();
        self.blocking(move |db| {
            db.with_read(spec_fields.clone(), |conn, layout| match layout {
                Layout::Existing { .. } => db.declared_fields(conn),
                _ => Ok(spec_fields.clone()),
            })
        })
        .await
    }

    async fn check(&self) -> Result<Value> {
        self.blocking(|db| {
            let base =
                json!({ "ok": true, "path": db.path.display().to_string(), "table": db.table });
            let report = db.with_read(None, |conn, layout| {
                let t = quote(&db.table);
                let (count, kind): (i64, &str) = match layout {
                    Layout::Managed => (
                        conn.query_row(
                            &format!("SELECT count(*) FROM {t} WHERE deleted = 0"),
                            [],
                            |r| r.get(0),
                        )?,
                        "managed by ferry (changes tracked)",
                    ),
                    _ => (
                        conn.query_row(&format!("SELECT count(*) FROM {t}"), [], |r| r.get(0))?,
                        "existing table (used as it is)",
                    ),
                };
                Ok(Some((count, kind)))
            })?;
            let mut base = base;
            match report {
                Some((count, kind)) => {
                    base["records"] = json!(count);
                    base["tableKind"] = json!(kind);
                }
                None => {
                    if let Some(dir) = db.path.parent().filter(|d| !d.as_os_str().is_empty()) {
                        if !dir.is_dir() {
                            return Err(usage(format!(
                                "the folder of {} does not exist",
                                db.path.display()
                            ))
                            .hint("create the folder, or change \"path\" in account.json")
                            .into());
                        }
                    }
                    base["records"] = json!(0);
                    base["message"] =
                        json!("the table does not exist yet; the first write creates it");
                }
            }
            Ok(base)
        })
        .await
    }

    async fn get(&self, id: &str) -> Result<Record> {
        let id = id.to_string();
        self.blocking(move |db| {
            db.with_read(None, |conn, layout| db.get(conn, layout, &id))?
                .ok_or_else(|| db.not_found(&id))
        })
        .await
    }

    async fn insert(&self, mut value: Record) -> Result<Record> {
        self.blocking(move |db| {
            db.with_write(|conn, layout| {
                let tx = write_tx(conn)?;
                let given = given_id(&value, &db.id_field, "insert")?;
                if let Some(id) = &given {
                    if db.get(&tx, layout, id)?.is_some() {
                        return Err(failed(format!(
                            "a record with {} \"{id}\" already exists in table \"{}\"",
                            db.id_field, db.table
                        ))
                        .hint(format!("use `ferry patch --id {id}` to change it"))
                        .into());
                    }
                }
                let id = match layout {
                    Layout::Existing {
                        columns,
                        id_is_rowid,
                    } => {
                        let id = match (&given, id_is_rowid) {
                            (Some(id), _) => Some(id.clone()),
                            (None, true) => None,
                            (None, false) => Some(new_id()),
                        };
                        let id = db.insert_existing(&tx, &value, columns, id.as_deref())?;
                        tx.commit()?;
                        return db.get(conn, layout, &id)?.ok_or_else(|| db.not_found(&id));
                    }
                    _ => given.clone().unwrap_or_else(new_id),
                };
                // A given id is kept as written (a number stays a number).
                if given.is_none() {
                    value.insert(db.id_field.clone(), Value::String(id.clone()));
                }
                db.upsert_one(&tx, layout, &id, &value)?;
                tx.commit()?;
                Ok(value)
            })
        })
        .await
    }

    async fn patch(&self, id: &str, value: Record) -> Result<Record> {
        let id = id.to_string();
        self.blocking(move |db| {
            if let Some(other) = given_id(&value, &db.id_field, "patch")? {
                if other != id {
                    return Err(usage(format!(
                        "the patch changes {} from \"{id}\" to \"{other}\"",
                        db.id_field
                    ))
                    .hint(format!("leave \"{}\" out of the value", db.id_field))
                    .into());
                }
            }
            // A patch of a missing file or table must not create them.
            if db
                .with_read(None, |conn, layout| db.get(conn, layout, &id))?
                .is_none()
            {
                return Err(db.not_found(&id));
            }
            db.with_write(|conn, layout| {
                let tx = write_tx(conn)?;
                let Some(mut record) = db.get(&tx, layout, &id)? else {
                    return Err(db.not_found(&id));
                };
                match layout {
                    Layout::Existing { columns, .. } => {
                        db.upsert_one(&tx, layout, &id, &value)?;
                        let _ = columns;
                    }
                    _ => {
                        for (k, v) in &value {
                            record.insert(k.clone(), v.clone());
                        }
                        db.upsert_one(&tx, layout, &id, &record)?;
                    }
                }
                let stored = db.get(&tx, layout, &id)?.ok_or_else(|| db.not_found(&id))?;
                tx.commit()?;
                Ok(stored)
            })
        })
        .await
    }

    async fn delete(&self, id: &str) -> Result<()> {
        let id = id.to_string();
        self.blocking(move |db| {
            // A delete on a missing file or table must not create them.
            if db.with_read(None, |conn, layout| db.get(conn, layout, &id))?.is_none() {
                return Err(db.not_found(&id));
            }
            db.with_write(|conn, layout| {
                let t = quote(&db.table);
                let tx = write_tx(conn)?;
                match layout {
                    Layout::Existing { .. } => {
                        tx.execute(
                            &format!("DELETE FROM {t} WHERE {} = ?1", quote(&db.id_field)),
                            params![id],
                        )?;
                    }
                    _ => {
                        let seq = next_seq(&tx, &t)?;
                        tx.execute(
                            &format!("UPDATE {t} SET data = NULL, deleted = 1, seq = ?2, updated_at = ?3 WHERE id = ?1"),
                            params![id, seq, now()],
                        )?;
                    }
                }
                // A deleted record leaves the groups export put it in.
                let members = format!("{}_members", db.table);
                let has_members: bool = tx.query_row(
                    "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = ?1",
                    params![members],
                    |r| r.get(0),
                )?;
                if has_members {
                    tx.execute(
                        &format!("DELETE FROM {} WHERE record_id = ?1", db.members_table()),
                        params![id],
                    )?;
                }
                tx.commit()?;
                Ok(())
            })
        })
        .await
    }

    async fn get_updates(&self, since: Option<&str>, limit: Option<usize>) -> Result<Updates> {
        // Checked before any I/O, so a bad token is refused even when the
        // database does not exist yet.
        let (filter, param) = since_filter(since)?;
        let since = since.map(str::to_string);
        self.blocking(move |db| {
            let empty = Updates { next_sync: since.clone().unwrap_or_else(|| "0".into()), entries: Vec::new() };
            db.with_read(empty, |conn, layout| {
                if let Layout::Existing { .. } = layout {
                    return Err(Failure::new(
                        Kind::Unsupported,
                        format!(
                            "connector sqlite cannot getupdates on table \"{}\": ferry tracks changes only in tables it creates",
                            db.table
                        ),
                    )
                    .hint("point \"table\" at a new table and import the records into it, or read this one with `ferry get`")
                    .into());
                }
                // One read transaction: the entries and the newest sequence
                // number come from the same snapshot, so a write committed
                // between the two queries cannot move nextSync past a change
                // this answer does not hold.
                let _snapshot = conn.unchecked_transaction()?;
                let t = quote(&db.table);
                let sql = format!(
                    "SELECT id, data, seq, created_seq, deleted FROM {t} WHERE {filter} {} ORDER BY seq LIMIT ?2",
                    if param == SqlValue::Null { "AND ?1 IS NULL" } else { "" }
                );
                let cap = limit.map_or(-1, |l| l as i64);
                let mut stmt = conn.prepare(&sql)?;
                let mut rows = stmt.query(params![param, cap])?;
                let since_seq = since.as_deref().and_then(|s| s.parse::<i64>().ok());
                let initial = since.is_none();
                let mut entries = Vec::new();
                let mut last_seq: Option<i64> = None;
                while let Some(row) = rows.next()? {
                    let id: String = row.get(0)?;
                    let data: Option<String> = row.get(1)?;
                    let seq: i64 = row.get(2)?;
                    let created: i64 = row.get(3)?;
                    let deleted: bool = row.get(4)?;
                    last_seq = Some(seq);
                    let kind = if deleted {
                        ChangeType::Delete
                    } else if initial {
                        ChangeType::Upsert
                    } else if since_seq.is_some_and(|s| created > s) {
                        ChangeType::Insert
                    } else if since_seq.is_some() {
                        ChangeType::Update
                    } else {
                        ChangeType::Upsert
                    };
                    let value = data.map(|d| parse_data(&d)).transpose()?;
                    entries.push(Change { id, kind, value });
                }
                // Stopped early: continue right after the last entry. Otherwise
                // everything up to the newest change has been seen.
                let next = match (limit, last_seq) {
                    (Some(l), Some(seq)) if entries.len() >= l => seq,
                    _ => conn.query_row(&format!("SELECT COALESCE(MAX(seq), 0) FROM {t}"), [], |r| r.get(0))?,
                };
                let next = next.max(since_seq.unwrap_or(0));
                Ok(Updates { next_sync: next.to_string(), entries })
            })
        })
        .await
    }

    async fn read_page(&self, from: &Position, limit: usize) -> Result<Page> {
        let from = from.clone();
        self.blocking(move |db| {
            db.with_read(Page::default(), |conn, layout| {
                let t = quote(&db.table);
                let (live, select) = match layout {
                    Layout::Managed => ("deleted = 0", "rowid, data"),
                    _ => ("1 = 1", "rowid, *"),
                };
                let total: i64 = conn.query_row(&format!("SELECT count(*) FROM {t} WHERE {live}"), [], |r| r.get(0))?;
                // The cursor is the last rowid read: pages after the first cost
                // the same however deep the run is.
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
                    let record = match layout {
                        Layout::Managed => parse_data(&row.get::<_, String>(1)?)?,
                        _ => {
                            let mut r = row_to_record(row)?;
                            r.shift_remove("rowid");
                            r
                        }
                    };
                    records.push(record);
                }
                let next = (records.len() >= limit).then(|| Position {
                    offset: from.offset + records.len() as u64,
                    cursor: Some(last_rowid.to_string()),
                });
                Ok(Page { records, next, total: Some(total as u64) })
            })
        })
        .await
    }

    async fn export_fields(&self) -> Result<ExportFields> {
        Ok(ExportFields::keyed_by_id_field(&self.db.id_field, true))
    }

    async fn find_profile(&self, key: &str) -> Result<Option<String>> {
        let key = key.to_string();
        self.blocking(move |db| {
            let found = db.with_read(None, |conn, layout| db.get(conn, layout, &key))?;
            Ok(found.map(|_| key))
        })
        .await
    }

    async fn create_profile(&self, fields: Record) -> Result<String> {
        self.blocking(move |db| {
            db.with_write(|conn, layout| {
                let tx = write_tx(conn)?;
                let id = db
                    .export_create(&tx, layout, &fields)
                    .map_err(|e| db.store_failure(&e).unwrap_or(e))?;
                tx.commit()?;
                Ok(id)
            })
        })
        .await
    }

    /// One transaction per batch.
    async fn create_profiles(&self, profiles: Vec<Record>) -> Vec<ProfileOutcome> {
        let n = profiles.len();
        let result = self
            .blocking(move |db| {
                db.with_write(|conn, layout| {
                    db.each(conn, layout, &profiles, |tx, layout, fields| {
                        db.export_create(tx, layout, fields)
                    })
                })
            })
            .await;
        ProfileOutcome::of_batch(result, n)
    }

    /// One transaction per batch.
    async fn update_profiles(&self, updates: Vec<(String, ProfileUpdate)>) -> Vec<ProfileOutcome> {
        let n = updates.len();
        let result = self
            .blocking(move |db| {
                db.with_write(|conn, layout| {
                    db.each(conn, layout, &updates, |tx, layout, (id, update)| {
                        db.export_update(tx, layout, id, update)
                    })
                })
            })
            .await;
        ProfileOutcome::of_batch(result, n)
    }

    /// One transaction per batch.
    async fn delete_profiles(&self, ids: Vec<String>) -> Vec<ProfileOutcome> {
        let n = ids.len();
        let result = self
            .blocking(move |db| {
                db.with_write(|conn, layout| {
                    db.each(conn, layout, &ids, |tx, layout, id| {
                        db.export_delete(tx, layout, id).map(|()| id.clone())
                    })
                })
            })
            .await;
        ProfileOutcome::of_batch(result, n)
    }

    /// One transaction per batch.
    async fn add_members(&self, group: &str, ids: Vec<String>) -> Vec<ProfileOutcome> {
        self.membership(ADD_MEMBER, group, ids).await
    }

    /// One transaction per batch.
    async fn remove_members(&self, group: &str, ids: Vec<String>) -> Vec<ProfileOutcome> {
        self.membership(REMOVE_MEMBER, group, ids).await
    }

    async fn update_profile(&self, id: &str, update: ProfileUpdate) -> Result<String> {
        let id = id.to_string();
        self.blocking(move |db| {
            db.with_write(|conn, layout| {
                let tx = conn.transaction()?;
                let new_id = db.export_update(&tx, layout, &id, &update)?;
                tx.commit()?;
                Ok(new_id)
            })
        })
        .await
    }

    async fn delete_profile(&self, id: &str) -> Result<()> {
        let id = id.to_string();
        self.blocking(move |db| {
            db.with_write(|conn, layout| {
                let tx = conn.transaction()?;
                db.export_delete(&tx, layout, &id)?;
                tx.commit()?;
                Ok(())
            })
        })
        .await
    }

    async fn ensure_group(&self, name: &str) -> Result<String> {
        let name = name.to_string();
        self.blocking(move |db| {
            db.with_write(|conn, _| {
                db.create_group_tables(conn)?;
                conn.execute(
                    &format!(
                        "INSERT OR IGNORE INTO {} (name, created_at) VALUES (?1, ?2)",
                        db.groups_table()
                    ),
                    params![name, now()],
                )?;
                Ok(name)
            })
        })
        .await
    }

    async fn add_member(&self, group: &str, id: &str) -> Result<()> {
        self.member(ADD_MEMBER, group, id).await
    }

    async fn remove_member(&self, group: &str, id: &str) -> Result<()> {
        self.member(REMOVE_MEMBER, group, id).await
    }

    async fn upsert(&self, record: Record) -> Result<Outcome> {
        let mut outcomes = self.upsert_batch(Records::new(vec![record])).await?;
        Ok(outcomes.remove(0))
    }

    async fn upsert_batch(&self, records: Records) -> Result<Vec<Outcome>> {
        self.blocking(move |db| {
            db.with_write(|conn, layout| {
                // One transaction per batch: the batch is written whole or not at all.
                // First without savepoints, which cost as much as the writes;
                // if any record is refused, that attempt is rolled back and
                // the batch is written again with one savepoint per record.
                {
                    let tx = write_tx(conn).map_err(|e| db.store_failure(&e).unwrap_or(e))?;
                    let mut outcomes = Vec::with_capacity(records.len());
                    let mut clean = true;
                    for record in records.iter() {
                        let Some(id) = record_id(record, &db.id_field) else {
                            clean = false;
                            break;
                        };
                        if let Err(e) = db.upsert_one(&tx, layout, &id, record) {
                            // The database itself failing is the batch's
                            // failure, not the record's: the run stops.
                            if let Some(failure) = db.store_failure(&e) {
                                return Err(failure);
                            }
                            clean = false;
                            break;
                        }
                        outcomes.push(Outcome::Ok { id });
                    }
                    if clean {
                        tx.commit()?;
                        return Ok(outcomes);
                    }
                    tx.rollback()?;
                }
                let mut tx = write_tx(conn)?;
                let mut outcomes = Vec::with_capacity(records.len());
                for record in records.iter() {
                    let Some(id) = record_id(record, &db.id_field) else {
                        outcomes.push(Outcome::Rejected {
                            id: None,
                            reason: format!("the record has no {}", db.id_field),
                        });
                        continue;
                    };
                    // A record the table refuses is rejected alone; a savepoint
                    // keeps the rest of the batch.
                    let sp = tx.savepoint()?;
                    match db.upsert_one(&sp, layout, &id, record) {
                        Ok(()) => {
                            sp.commit()?;
                            outcomes.push(Outcome::Ok { id });
                        }
                        Err(e) => {
                            if let Some(failure) = db.store_failure(&e) {
                                return Err(failure);
                            }
                            drop(sp);
                            outcomes.push(Outcome::Rejected {
                                id: Some(id),
                                reason: format!("{e:#}"),
                            });
                        }
                    }
                }
                tx.commit()?;
                Ok(outcomes)
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use rusqlite::OpenFlags;

    use super::*;

    fn sqlite_at(path: PathBuf, conn: Option<Connection>) -> Sqlite {
        Sqlite {
            spec: spec(),
            db: Arc::new(Db {
                path,
                table: "records".into(),
                id_field: "id".into(),
                busy_timeout: std::time::Duration::from_millis(100),
                conn: Mutex::new(conn),
            }),
        }
    }

    fn records(ids: &[&str], size: usize) -> Records {
        Records::new(
            ids.iter()
                .map(|id| {
                    let v = json!({"id": id, "note": "x".repeat(size)});
                    v.as_object().cloned().unwrap_or_default()
                })
                .collect(),
        )
    }

    /// A managed table with one record in a new file, and the file's path.
    async fn seeded(dir: &tempfile::TempDir) -> PathBuf {
        let path = dir.path().join("d.db");
        let db = sqlite_at(path.clone(), None);
        let out = db.upsert_batch(records(&["a"], 1)).await.expect("seed");
        assert_eq!(out, vec![Outcome::Ok { id: "a".into() }]);
        path
    }

    fn hint_of(err: &anyhow::Error) -> String {
        crate::error::find_failure(err)
            .and_then(|f| f.hint.clone())
            .unwrap_or_default()
    }

    #[tokio::test]
    async fn a_read_only_database_fails_the_batch_instead_of_rejecting_its_records() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = seeded(&dir).await;
        let conn = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("open read-only");
        let db = sqlite_at(path, Some(conn));
        let err = db
            .upsert_batch(records(&["b", "c"], 1))
            .await
            .expect_err("a read-only database cannot take the batch");
        assert!(
            format!("{err:#}").contains("could not write to SQLite file"),
            "{err:#}"
        );
        assert!(
            hint_of(&err).contains("cannot be written"),
            "{}",
            hint_of(&err)
        );
    }

    #[tokio::test]
    async fn a_full_database_fails_the_batch_instead_of_rejecting_its_records() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = seeded(&dir).await;
        let conn = Connection::open(&path).expect("open");
        let pages: i64 = conn
            .query_row("PRAGMA page_count", [], |r| r.get(0))
            .expect("page count");
        // No room for another page: what a full disk looks like to SQLite.
        conn.pragma_update(None, "max_page_count", pages)
            .expect("cap");
        let db = sqlite_at(path, Some(conn));
        let err = db
            .upsert_batch(records(&["b", "c"], 100_000))
            .await
            .expect_err("a full database cannot take the batch");
        assert!(hint_of(&err).contains("is full"), "{err:#}");
    }

    #[tokio::test]
    async fn a_record_the_table_refuses_is_still_a_reject() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("d.db");
        let conn = Connection::open(&path).expect("open");
        conn.execute_batch(
            "CREATE TABLE records (id TEXT PRIMARY KEY, note TEXT CHECK (length(note) < 5))",
        )
        .expect("table");
        drop(conn);
        let db = sqlite_at(path, None);
        let out = db
            .upsert_batch(records(&["short", "long"], 1))
            .await
            .expect("the batch is written");
        assert_eq!(out[0], Outcome::Ok { id: "short".into() });
        let out = db
            .upsert_batch(records(&["long"], 10))
            .await
            .expect("the batch is written");
        assert!(
            matches!(&out[0], Outcome::Rejected { reason, .. } if reason.contains("CHECK")),
            "{out:?}"
        );
    }
}
