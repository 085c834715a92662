//! `getupdates`: changes in the order they were made, with their kinds,
//! never skipping one that shares a timestamp with the last one read.

use serde_json::json;

use super::{in_memory, kind_of, rec, records, sqlite_at};
use crate::connector::{ChangeType, Connector, Updates};
use crate::error::Kind;

fn ids_and_kinds(updates: &Updates) -> Vec<(&str, ChangeType)> {
    updates
        .entries
        .iter()
        .map(|c| (c.id.as_str(), c.kind))
        .collect()
}

#[tokio::test]
async fn changes_come_in_sequence_order_and_a_shared_timestamp_skips_none() {
    let db = in_memory("");
    db.upsert_batch(records(&["a", "b", "c"], 1)).await.unwrap();
    // One timestamp for the three, as a fast batch gets.
    super::exec(
        &db,
        "UPDATE records SET updated_at = '2026-01-01T00:00:00.000Z'",
    );
    // Stopped by the limit between two changes of the same time: the token
    // is the sequence number, so the next call starts right after.
    let first = db.get_updates(None, Some(2)).await.unwrap();
    use ChangeType::*;
    assert_eq!(ids_and_kinds(&first), [("a", Upsert), ("b", Upsert)]);
    assert_eq!(first.next_sync, "2");
    let rest = db.get_updates(Some("2"), Some(2)).await.unwrap();
    // Created after the token: an insert.
    assert_eq!(ids_and_kinds(&rest), [("c", Insert)]);
    assert_eq!(rest.next_sync, "3");
    let none = db.get_updates(Some("3"), None).await.unwrap();
    assert!(none.entries.is_empty());
    assert_eq!(none.next_sync, "3");
    // A time means every change at or after it, those sharing it included.
    let by_time = db
        .get_updates(Some("2026-01-01T00:00:00Z"), Some(1))
        .await
        .unwrap();
    assert_eq!(ids_and_kinds(&by_time), [("a", Upsert)]);
    assert_eq!(by_time.next_sync, "1");
    let after = db.get_updates(Some("1"), None).await.unwrap();
    assert_eq!(ids_and_kinds(&after), [("b", Insert), ("c", Insert)]);
}

#[tokio::test]
async fn changes_after_a_token_are_inserts_updates_and_deletes() {
    let db = in_memory("");
    db.upsert_batch(records(&["a", "b"], 1)).await.unwrap();
    let token = db.get_updates(None, None).await.unwrap().next_sync;
    db.patch("a", rec(json!({"n": 1}))).await.unwrap();
    db.delete("b").await.unwrap();
    db.insert(rec(json!({"id": "c"}))).await.unwrap();
    // b again after its delete: an insert, as it is new since the token.
    db.upsert_batch(records(&["b"], 2)).await.unwrap();
    let changes = db.get_updates(Some(&token), None).await.unwrap();
    use ChangeType::*;
    assert_eq!(
        ids_and_kinds(&changes),
        [("a", Update), ("c", Insert), ("b", Insert)]
    );
    assert_eq!(changes.next_sync, "6");
    assert_eq!(
        changes.entries[0].value,
        Some(rec(json!({"id": "a", "note": "x", "n": 1})))
    );
    // A delete carries no value; the first read of all leaves tombstones out.
    db.delete("c").await.unwrap();
    let last = db.get_updates(Some("6"), None).await.unwrap();
    assert_eq!(ids_and_kinds(&last), [("c", Delete)]);
    assert_eq!(last.entries[0].value, None);
    let all = db.get_updates(None, None).await.unwrap();
    assert_eq!(ids_and_kinds(&all), [("a", Upsert), ("b", Upsert)]);
}

#[tokio::test]
async fn a_bad_token_is_refused_before_the_database_is_opened() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_at(dir.path().join("d.db"), None);
    let err = db.get_updates(Some("yesterday"), None).await.unwrap_err();
    assert_eq!(kind_of(&err), Some(Kind::Usage), "{err:#}");
    // No database yet: nothing to read, and the token stays.
    let empty = db.get_updates(Some("4"), None).await.unwrap();
    assert!(empty.entries.is_empty());
    assert_eq!(empty.next_sync, "4");
}

#[tokio::test]
async fn an_existing_table_has_no_getupdates() {
    let db = in_memory("CREATE TABLE records (id TEXT PRIMARY KEY)");
    let err = db.get_updates(None, None).await.unwrap_err();
    assert_eq!(kind_of(&err), Some(Kind::Unsupported), "{err:#}");
}
