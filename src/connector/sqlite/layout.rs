//! The two table layouts behind one trait: a table ferry created
//! ([`super::managed`], records as JSON with change tracking) and a table
//! that existed before ([`super::existing`], one column per field). The
//! record, export and sync code asks the layout for what differs, so each
//! layout's SQL lives in its own module.

use rusqlite::Connection;

use anyhow::Result;

use super::updates::Since;
use crate::connector::{FieldSpec, ProfileUpdate, Record, Updates};

/// How one table layout reads and writes records. Writes run inside the
/// caller's transaction (or savepoint), which commits them.
pub(super) trait Layout {
    /// What `ferry check` calls this kind of table.
    fn kind(&self) -> &'static str;

    /// The SQL condition of a live record (not a tombstone).
    fn live(&self) -> &'static str;

    /// The fields a record has: the connector's own (`spec`), or the
    /// table's columns.
    fn fields(&self, conn: &Connection, spec: Vec<FieldSpec>) -> Result<Vec<FieldSpec>>;

    /// A transaction begins: what the layout remembers of the one before
    /// (the last sequence number it handed out) is read again, since
    /// another writer may have written in between.
    fn begin(&self) {}

    /// The live record `id`, if there is one.
    fn get(&self, conn: &Connection, id: &str) -> Result<Option<Record>>;

    /// Write `record` under `id`: created, or replacing what is there.
    fn upsert(&self, tx: &Connection, id: &str, record: &Record) -> Result<()>;

    /// Insert a new record under the `given` id, or one the layout picks
    /// (and writes into `value` where the record keeps it); answers the
    /// record as stored.
    fn insert(&self, tx: &Connection, value: Record, given: Option<String>) -> Result<Record>;

    /// Change the fields `value` names of the record `old` (whose id is `id`).
    fn patch(&self, tx: &Connection, id: &str, old: Record, value: &Record) -> Result<()>;

    /// Remove the record `id` (a tombstone where changes are tracked).
    fn remove(&self, tx: &Connection, id: &str) -> Result<()>;

    /// An export's create of record `id`: `fields` merged into the record
    /// that has the id, where the layout keeps whole records, or a new one.
    fn create(&self, tx: &Connection, id: &str, fields: &Record) -> Result<()>;

    /// An export's update of record `id` (now `old`), which may rename it
    /// to `new_id`; what the table refuses is a [`crate::connector::Rejection`].
    fn update(
        &self,
        tx: &Connection,
        id: &str,
        new_id: &str,
        old: Record,
        update: &ProfileUpdate,
    ) -> Result<()>;

    /// The columns a page reads after the rowid.
    fn select(&self) -> &'static str;

    /// A record from a page's row (the rowid, then [`Layout::select`]).
    fn decode(&self, row: &rusqlite::Row<'_>) -> Result<Record>;

    /// The changes after `since`, at most `limit` of them.
    fn updates(&self, conn: &Connection, since: &Since, limit: Option<usize>) -> Result<Updates>;
}

pub(super) fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

pub(super) fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
