//! The layout of a table that existed before ferry: used as it is, its
//! columns are the record's fields and its id column keys the records. A
//! field the table has no column for is refused; changes are not tracked,
//! so it has no `getupdates`.

use anyhow::{Context, Result};
use rusqlite::types::{Value as SqlValue, ValueRef};
use rusqlite::{params, Connection};
use serde_json::{json, Map, Value};

use super::db::Db;
use super::layout::{quote, Layout};
use super::updates::Since;
use crate::connector::{new_id, FieldSpec, FieldType, ProfileUpdate, Record, Rejection, Updates};
use crate::error::{failed, usage, Failure, Kind};

pub(super) struct Existing<'a> {
    db: &'a Db,
    /// The table's columns, in order.
    columns: Vec<String>,
    /// The id column is the rowid alias (`INTEGER PRIMARY KEY`), so the
    /// table picks the id of a record inserted without one.
    id_is_rowid: bool,
}

impl<'a> Existing<'a> {
    /// Read the table's columns; its id column must be one of them.
    pub(super) fn read(db: &'a Db, conn: &Connection) -> Result<Self> {
        let mut stmt = conn.prepare(&format!("PRAGMA table_info({})", quote(&db.table)))?;
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
            if name == db.id_field && pk == 1 && kind.eq_ignore_ascii_case("INTEGER") {
                id_is_rowid = true;
            }
            columns.push(name);
        }
        if !columns.iter().any(|c| c == &db.id_field) {
            return Err(usage(format!(
                "table \"{}\" in {} has no column \"{}\"",
                db.table,
                db.path.display(),
                db.id_field
            ))
            .hint(format!(
                "set \"idField\" in account.json to one of its columns: {}",
                columns.join(", ")
            ))
            .into());
        }
        Ok(Existing {
            db,
            columns,
            id_is_rowid,
        })
    }

    fn table(&self) -> String {
        quote(&self.db.table)
    }

    fn id_column(&self) -> String {
        quote(&self.db.id_field)
    }

    /// The record's fields as (column, value), refusing fields the table lacks.
    fn columns_of<'r>(&self, record: &'r Record) -> Result<Vec<(String, &'r Value)>> {
        let mut out = Vec::new();
        for (k, v) in record {
            if !self.columns.iter().any(|c| c == k) {
                return Err(
                    failed(format!("table \"{}\" has no column \"{k}\"", self.db.table))
                        .hint(format!(
                    "add the column to the table, or leave \"{k}\" out; its columns are: {}",
                    self.columns.join(", ")
                ))
                        .into(),
                );
            }
            out.push((k.clone(), v));
        }
        Ok(out)
    }

    /// Insert a row; answers the id (the rowid when the table assigns it).
    fn insert_row(&self, tx: &Connection, record: &Record, id: Option<&str>) -> Result<String> {
        let mut fields = self.columns_of(record)?;
        let id_value = id.map(|i| Value::String(i.to_string()));
        if let Some(v) = &id_value {
            if !fields.iter().any(|(c, _)| c == &self.db.id_field) {
                fields.push((self.db.id_field.clone(), v));
            }
        }
        let names: Vec<String> = fields.iter().map(|(c, _)| quote(c)).collect();
        let marks: Vec<String> = (1..=fields.len()).map(|i| format!("?{i}")).collect();
        let values: Vec<SqlValue> = fields.iter().map(|(_, v)| to_sql(v)).collect();
        let t = self.table();
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
            .with_context(|| format!("could not insert into table \"{}\"", self.db.table))?;
        Ok(match id {
            Some(id) => id.to_string(),
            None => tx.last_insert_rowid().to_string(),
        })
    }

    /// The table's columns as fields: the declared type read the way SQLite
    /// reads affinities (plus DATE, DATETIME and BOOLEAN, which SQLite
    /// stores as text or numbers but which say what the values must look
    /// like), NOT NULL without a default as required.
    fn declared_fields(&self, conn: &Connection) -> Result<Vec<FieldSpec>> {
        let mut stmt = conn.prepare(&format!("PRAGMA table_info({})", self.table()))?;
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
            let kind = declared_type(&decl);
            let required = (not_null && default.is_none()) || (pk > 0 && name == self.db.id_field);
            let mut field = FieldSpec::named(name, kind, "a column of the existing table");
            if required {
                field = field.required();
            }
            fields.push(field);
        }
        Ok(fields)
    }
}

/// The field type a column's declared type says.
fn declared_type(decl: &str) -> FieldType {
    let decl = decl.to_ascii_uppercase();
    if decl.contains("INT") {
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
    }
}

impl Layout for Existing<'_> {
    fn kind(&self) -> &'static str {
        "existing table (used as it is)"
    }

    fn live(&self) -> &'static str {
        "1 = 1"
    }

    fn fields(&self, conn: &Connection, _spec: Vec<FieldSpec>) -> Result<Vec<FieldSpec>> {
        self.declared_fields(conn)
    }

    fn get(&self, conn: &Connection, id: &str) -> Result<Option<Record>> {
        // Cached: an export reads each profile's row before writing it.
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT * FROM {} WHERE {} = ?1",
            self.table(),
            self.id_column()
        ))?;
        let mut rows = stmt.query(params![id])?;
        match rows.next()? {
            Some(row) => Ok(Some(row_to_record(row)?)),
            None => Ok(None),
        }
    }

    /// Set the columns the record names on the row with the id, or insert
    /// a row when there is none.
    fn upsert(&self, tx: &Connection, id: &str, record: &Record) -> Result<()> {
        let fields = self.columns_of(record)?;
        let sets: Vec<String> = fields
            .iter()
            .enumerate()
            .map(|(i, (c, _))| format!("{} = ?{}", quote(c), i + 2))
            .collect();
        let mut values: Vec<SqlValue> = vec![SqlValue::Text(id.to_string())];
        values.extend(fields.iter().map(|(_, v)| to_sql(v)));
        let (t, idc) = (self.table(), self.id_column());
        let updated = if sets.is_empty() {
            tx.query_row(
                &format!("SELECT count(*) FROM {t} WHERE {idc} = ?1"),
                params![id],
                |r| r.get::<_, i64>(0),
            )? as usize
        } else {
            tx.execute(
                &format!("UPDATE {t} SET {} WHERE {idc} = ?1", sets.join(", ")),
                rusqlite::params_from_iter(values.iter()),
            )?
        };
        if updated == 0 {
            self.insert_row(tx, record, Some(id))?;
        }
        Ok(())
    }

    fn insert(&self, tx: &Connection, value: Record, given: Option<String>) -> Result<Record> {
        let id = match (given, self.id_is_rowid) {
            (Some(id), _) => Some(id),
            (None, true) => None,
            (None, false) => Some(new_id()),
        };
        let id = self.insert_row(tx, &value, id.as_deref())?;
        self.get(tx, &id)?.ok_or_else(|| self.db.not_found(&id))
    }

    fn patch(&self, tx: &Connection, id: &str, _old: Record, value: &Record) -> Result<()> {
        self.upsert(tx, id, value)
    }

    fn remove(&self, tx: &Connection, id: &str) -> Result<()> {
        tx.execute(
            &format!(
                "DELETE FROM {} WHERE {} = ?1",
                self.table(),
                self.id_column()
            ),
            params![id],
        )?;
        Ok(())
    }

    /// Only the named columns change, which merges already.
    /// The columns the profile names are set on the row, or a row is
    /// inserted: a row keeps its other columns, as a merge would.
    fn create(&self, tx: &Connection, id: &str, fields: &Record) -> Result<()> {
        self.upsert(tx, id, fields)
    }

    /// Cleared columns become NULL, the way a table clears a field; a
    /// new id is a new value of the id column.
    fn update(
        &self,
        tx: &Connection,
        id: &str,
        _new_id: &str,
        _old: Record,
        update: &ProfileUpdate,
    ) -> Result<()> {
        let mut values = update.set.clone();
        for key in &update.clear {
            values.insert(key.clone(), Value::Null);
        }
        self.upsert(tx, id, &values)
            .map_err(|e| Rejection(format!("{e:#}")).into())
    }

    fn select(&self) -> &'static str {
        "rowid, *"
    }

    fn decode(&self, row: &rusqlite::Row<'_>) -> Result<Record> {
        let mut r = row_to_record(row)?;
        r.shift_remove("rowid");
        Ok(r)
    }

    fn updates(&self, _: &Connection, _: &Since, _: Option<usize>) -> Result<Updates> {
        Err(Failure::new(
            Kind::Unsupported,
            format!(
                "connector sqlite cannot getupdates on table \"{}\": ferry tracks changes only in tables it creates",
                self.db.table
            ),
        )
        .hint("point \"table\" at a new table and import the records into it, or read this one with `ferry get`")
        .into())
    }
}

/// A row as a record: one field per column.
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
