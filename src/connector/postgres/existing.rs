//! A table that existed before ferry, used as it is: its columns are the
//! record's fields (typed, so import validates records against them), its
//! id column keys the records, and PostgreSQL itself converts each JSON
//! value to the column's type (`jsonb_populate_recordset`), so a value the
//! column cannot hold is refused by the database with its own message, for
//! that record alone. Rows are read back as `to_jsonb(row)`. Changes are
//! not tracked, so such a table has no `getupdates`; a delete removes the
//! row.

use anyhow::Result;
use serde_json::Value;
use tokio_postgres::types::Json;
use tokio_postgres::{Client, GenericClient};

use super::db::{ident, Db};
use crate::connector::{with_text_id, FieldSpec, FieldType, Record, Rejection};
use crate::error::{failed, usage};

/// One column: its name, the field type its type says, and whether a row
/// needs a value for it.
pub(super) struct Column {
    pub(super) name: String,
    kind: FieldType,
    required: bool,
}

/// The table's shape, read from the catalog once per call.
pub(super) struct Table {
    pub(super) columns: Vec<Column>,
    /// The id column's type as SQL spells it (a cursor or `--id` is cast to it).
    pub(super) id_type: String,
    /// The id column has a default (a serial or identity column, a uuid
    /// default): a record inserted without an id gets the table's.
    pub(super) id_default: bool,
    /// The id column is a primary key or unique, which upserts need.
    pub(super) id_unique: bool,
}

/// The field type a column's type says.
fn kind_of(udt: &str, category: &str) -> FieldType {
    match (udt, category) {
        ("bool", _) => FieldType::Boolean,
        ("int2" | "int4" | "int8", _) => FieldType::Integer,
        ("date", _) => FieldType::Date,
        ("timestamp" | "timestamptz", _) => FieldType::Datetime,
        ("json" | "jsonb", _) => FieldType::Any,
        (_, "N") => FieldType::Number,
        (_, "S") => FieldType::String,
        (_, "A") => FieldType::Array,
        _ => FieldType::Any,
    }
}

impl Db {
    /// Read the table's columns; its id column must be one of them.
    pub(super) async fn existing(&self, client: &Client) -> Result<Table> {
        let rows = client
            .query(
                "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), t.typname::text,
                        t.typcategory::text, a.attnotnull, a.atthasdef OR a.attidentity <> '',
                        EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid
                                  AND i.indisunique AND i.indnatts = 1 AND i.indkey[0] = a.attnum
                                  -- what ON CONFLICT can use: whole, not deferred
                                  AND i.indpred IS NULL AND i.indimmediate)
                   FROM pg_attribute a
                   JOIN pg_class c ON c.oid = a.attrelid
                   JOIN pg_namespace n ON n.oid = c.relnamespace
                   JOIN pg_type t ON t.oid = a.atttypid
                  WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped
                  ORDER BY a.attnum",
                &[&self.schema, &self.table],
            )
            .await
            .map_err(|e| self.failure(&e, "could not read"))?;
        let mut table = Table {
            columns: Vec::with_capacity(rows.len()),
            id_type: String::new(),
            id_default: false,
            id_unique: false,
        };
        for row in rows {
            let name: String = row.get(0);
            let not_null: bool = row.get(4);
            let has_default: bool = row.get(5);
            if name == self.id_field {
                table.id_type = row.get(1);
                table.id_default = has_default;
                table.id_unique = row.get(6);
            }
            let kind = kind_of(
                row.get::<_, String>(2).as_str(),
                row.get::<_, String>(3).as_str(),
            );
            table.columns.push(Column {
                required: not_null && !has_default,
                name,
                kind,
            });
        }
        if table.id_type.is_empty() {
            let names: Vec<&str> = table.columns.iter().map(|c| c.name.as_str()).collect();
            return Err(usage(format!(
                "{} has no column \"{}\"",
                self.named(),
                self.id_field
            ))
            .hint(format!(
                "set \"idField\" in account.json to one of its columns: {}",
                names.join(", ")
            ))
            .into());
        }
        Ok(table)
    }

    /// The table's columns as fields.
    pub(super) fn existing_fields(&self, table: &Table) -> Vec<FieldSpec> {
        table
            .columns
            .iter()
            .map(|c| {
                let mut field =
                    FieldSpec::named(c.name.clone(), c.kind, "a column of the existing table");
                if c.required || (c.name == self.id_field && !table.id_default) {
                    field = field.required();
                }
                field
            })
            .collect()
    }

    /// `id = $N` with the text parameter cast to the id column's type.
    pub(super) fn id_is(&self, table: &Table, n: usize) -> String {
        format!("{} = ${n}::text::{}", ident(&self.id_field), table.id_type)
    }

    /// Column `i` of `row` (a record as jsonb) as a record.
    pub(super) fn record_at(&self, row: &tokio_postgres::Row, i: usize) -> Result<Record> {
        match row.try_get::<_, Option<Value>>(i) {
            Ok(Some(value)) => self.row_record(value),
            Ok(None) => Err(failed(format!("a row of {} holds no record", self.named()))
                .hint("the table was changed by hand: give the row its record, or delete it")
                .into()),
            Err(e) => {
                Err(failed(format!("a row of {} could not be read: {e}", self.named())).into())
            }
        }
    }

    /// A row as a record, its id as text.
    pub(super) fn row_record(&self, value: Value) -> Result<Record> {
        match value {
            Value::Object(map) => Ok(with_text_id(map, &self.id_field)),
            other => Err(failed(format!("a row of {} read as {other}", self.named())).into()),
        }
    }

    /// The record's fields that are columns, refusing any other.
    pub(super) fn columns_of<'t>(&self, table: &'t Table, record: &Record) -> Result<Vec<&'t str>> {
        let mut out = Vec::with_capacity(record.len());
        for key in record.keys() {
            match table.columns.iter().find(|c| c.name == *key) {
                Some(c) => out.push(c.name.as_str()),
                None => {
                    let names: Vec<&str> = table.columns.iter().map(|c| c.name.as_str()).collect();
                    return Err(Rejection(format!(
                        "{} has no column \"{key}\" (its columns: {})",
                        self.named(),
                        names.join(", ")
                    ))
                    .into());
                }
            }
        }
        Ok(out)
    }

    /// Upsert `records` that all name the same `columns` (the id column
    /// among them) in one statement: the database converts each value to
    /// its column's type; an id repeated is written once, as its last
    /// occurrence says.
    pub(super) async fn upsert_rows(
        &self,
        client: &impl GenericClient,
        columns: &[&str],
        records: &[&Record],
    ) -> Result<(), tokio_postgres::Error> {
        let t = self.qualified();
        let id = ident(&self.id_field);
        let names: Vec<String> = columns.iter().map(|c| ident(c)).collect();
        let list = names.join(", ");
        let updates: Vec<String> = names
            .iter()
            .filter(|n| **n != id)
            .map(|n| format!("{n} = EXCLUDED.{n}"))
            .collect();
        let on_conflict = if updates.is_empty() {
            "DO NOTHING".to_string()
        } else {
            format!("DO UPDATE SET {}", updates.join(", "))
        };
        client
            .execute(
                &format!(
                    "INSERT INTO {t} ({list})
                     SELECT {list} FROM (
                         SELECT DISTINCT ON ({id}) * FROM
                             jsonb_populate_recordset(NULL::{t}, $1::jsonb) WITH ORDINALITY AS r
                         ORDER BY {id}, ordinality DESC
                     ) r
                     ON CONFLICT ({id}) {on_conflict}"
                ),
                &[&Json(records)],
            )
            .await
            .map(|_| ())
    }

    /// Refuse reading or writing a table whose id column is not unique:
    /// pages by keyset would skip rows sharing an id, and an upsert could
    /// not tell an update from an insert. (A view has no such index.)
    pub(super) fn writable(&self, table: &Table) -> Result<()> {
        if table.id_unique {
            return Ok(());
        }
        Err(failed(format!(
            "column \"{}\" of {} is neither a primary key nor unique, so ferry can neither page through it without skipping rows nor tell an update from an insert",
            self.id_field,
            self.named()
        ))
        .hint(format!(
            "add one: ALTER TABLE {} ADD PRIMARY KEY ({})",
            self.qualified(),
            ident(&self.id_field)
        ))
        .into())
    }
}
