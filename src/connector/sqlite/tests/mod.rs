//! Unit tests of the sqlite connector, on in-memory or temporary
//! databases: how a failing database stops a batch (here), and each
//! layout's records, column types, `getupdates` and export (beside).

mod export;
mod records;
mod updates;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OpenFlags};
use serde_json::{json, Value};

use super::db::{self, Db};
use super::*;
use crate::wal::Checkpoints;

fn sqlite_at(path: PathBuf, conn: Option<Connection>) -> Sqlite {
    Sqlite {
        spec: spec(),
        db: Arc::new(Db {
            checkpoints: Mutex::new(Checkpoints::new(path.clone(), db::CHECKPOINT_EVERY)),
            path,
            table: "records".into(),
            id_field: "id".into(),
            busy_timeout: std::time::Duration::from_millis(100),
            conn: Mutex::new(conn),
            group_tables: Default::default(),
        }),
    }
}

/// A connector on an in-memory database after `sql` (say, a `CREATE
/// TABLE records` for an existing table; nothing for a managed one).
fn in_memory(sql: &str) -> Sqlite {
    let conn = Connection::open_in_memory().expect("in-memory database");
    conn.execute_batch(sql).expect("the setup SQL");
    sqlite_at(PathBuf::from("memory.db"), Some(conn))
}

/// Run `sql` on the connector's own connection.
fn exec(db: &Sqlite, sql: &str) {
    let guard = db.db.conn.lock().expect("the connection");
    let conn = guard.as_ref().expect("an open connection");
    conn.execute_batch(sql).expect("the SQL");
}

/// Run `sql` on the connector's own connection and read its rows as text.
fn rows(db: &Sqlite, sql: &str) -> Vec<Vec<String>> {
    let guard = db.db.conn.lock().expect("the connection");
    let conn = guard.as_ref().expect("an open connection");
    let mut stmt = conn.prepare(sql).expect("the query");
    let n = stmt.column_count();
    stmt.query_map([], |r| {
        (0..n)
            .map(|i| {
                r.get::<_, Option<String>>(i)
                    .map(|v| v.unwrap_or_else(|| "NULL".into()))
            })
            .collect()
    })
    .expect("the rows")
    .map(|r| r.expect("a row"))
    .collect()
}

fn rec(v: Value) -> Record {
    match v {
        Value::Object(m) => m,
        _ => panic!("not an object"),
    }
}

fn kind_of(err: &anyhow::Error) -> Option<crate::error::Kind> {
    crate::error::find_failure(err).map(|f| f.kind)
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
    assert_eq!(out, vec![UpsertOutcome::Ok { id: "a".into() }]);
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
    assert_eq!(out[0], UpsertOutcome::Ok { id: "short".into() });
    let out = db
        .upsert_batch(records(&["long"], 10))
        .await
        .expect("the batch is written");
    assert!(
        matches!(&out[0], UpsertOutcome::Rejected { reason, .. } if reason.contains("CHECK")),
        "{out:?}"
    );
}

/// Every tenth write the log is folded into the file on a thread of its
/// own: the file holds the records while the writes' connection is still
/// open, and no log is left once it closes.
#[tokio::test]
async fn writes_are_checkpointed_apart_and_leave_no_log() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("d.db");
    let db = sqlite_at(path.clone(), None);
    for batch in 0..10 {
        let ids: Vec<String> = (0..50).map(|i| format!("r{batch}-{i}")).collect();
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        db.upsert_batch(records(&ids, 200)).await.expect("batch");
    }
    let size = || std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let waited = std::time::Instant::now();
    while size() < 100_000 && waited.elapsed() < std::time::Duration::from_secs(20) {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(size() >= 100_000, "the file holds {} bytes", size());
    drop(db);
    assert!(!dir.path().join("d.db-wal").exists(), "the log was left");
    let db = sqlite_at(path.clone(), Some(Connection::open(&path).expect("reopen")));
    assert_eq!(
        rows(&db, "SELECT CAST(COUNT(*) AS TEXT) FROM records"),
        vec![vec!["500"]]
    );
}
