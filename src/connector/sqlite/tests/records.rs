//! Records in both layouts: get, insert, patch and delete, a batch with a
//! refused row, and the fields an existing table's columns declare.

use serde_json::json;

use super::{in_memory, kind_of, rec, sqlite_at};
use crate::connector::{Connector, FieldType, Records, UpsertOutcome};
use crate::connector::{RecordLookup, RecordSink, RecordStore};
use crate::error::Kind;

/// An existing table whose id column is the rowid alias.
const PEOPLE: &str =
    "CREATE TABLE records (id INTEGER PRIMARY KEY, name TEXT NOT NULL, city TEXT CHECK (length(city) < 10))";

#[tokio::test]
async fn a_managed_record_is_inserted_got_patched_and_deleted() {
    let db = in_memory("");
    let made = db.insert(rec(json!({"name": "Ada"}))).await.unwrap();
    let id = made["id"].as_str().expect("a generated id").to_string();
    assert_eq!(db.get(&id).await.unwrap(), made);
    // A given id is kept as written: a number stays a number.
    let bob = db
        .insert(rec(json!({"id": 7, "name": "Bob"})))
        .await
        .unwrap();
    assert_eq!(bob, rec(json!({"id": 7, "name": "Bob"})));
    let err = db.insert(rec(json!({"id": "7"}))).await.unwrap_err();
    assert!(format!("{err:#}").contains("already exists"), "{err:#}");
    // A patch merges into the stored JSON.
    let patched = db.patch("7", rec(json!({"city": "Oslo"}))).await.unwrap();
    assert_eq!(
        patched,
        rec(json!({"id": 7, "name": "Bob", "city": "Oslo"}))
    );
    assert_eq!(db.get("7").await.unwrap(), patched);
    let err = db.patch("7", rec(json!({"id": "8"}))).await.unwrap_err();
    assert_eq!(kind_of(&err), Some(Kind::Usage), "{err:#}");
    db.delete("7").await.unwrap();
    for err in [
        db.get("7").await.unwrap_err(),
        db.patch("7", rec(json!({"a": 1}))).await.unwrap_err(),
        db.delete("7").await.unwrap_err(),
    ] {
        assert_eq!(kind_of(&err), Some(Kind::NotFound), "{err:#}");
    }
    let check = db.check().await.unwrap();
    assert_eq!(check["records"], json!(1));
    assert_eq!(
        check["tableKind"],
        json!("managed by ferry (changes tracked)")
    );
}

#[tokio::test]
async fn an_existing_row_is_inserted_got_patched_and_deleted() {
    let db = in_memory(PEOPLE);
    // The table picks the id of a row inserted without one.
    let made = db.insert(rec(json!({"name": "Ada"}))).await.unwrap();
    assert_eq!(made, rec(json!({"id": 1, "name": "Ada", "city": null})));
    let err = db
        .insert(rec(json!({"name": "Bob", "age": 3})))
        .await
        .unwrap_err();
    assert!(
        format!("{err:#}").contains("has no column \"age\""),
        "{err:#}"
    );
    // A patch sets the columns it names, and no others.
    let patched = db.patch("1", rec(json!({"city": "Oslo"}))).await.unwrap();
    assert_eq!(
        patched,
        rec(json!({"id": 1, "name": "Ada", "city": "Oslo"}))
    );
    let check = db.check().await.unwrap();
    assert_eq!(check["tableKind"], json!("existing table (used as it is)"));
    assert_eq!(check["records"], json!(1));
    db.delete("1").await.unwrap();
    let err = db.get("1").await.unwrap_err();
    assert_eq!(kind_of(&err), Some(Kind::NotFound), "{err:#}");
}

#[tokio::test]
async fn an_existing_table_with_a_text_id_gets_a_generated_one() {
    let db = in_memory("CREATE TABLE records (id TEXT PRIMARY KEY, name TEXT)");
    let made = db.insert(rec(json!({"name": "Ada"}))).await.unwrap();
    let id = made["id"].as_str().expect("a generated id");
    assert!(!id.is_empty());
    assert_eq!(db.get(id).await.unwrap(), made);
}

#[tokio::test]
async fn an_existing_table_without_the_id_column_is_refused_with_its_columns() {
    let db = in_memory("CREATE TABLE records (key TEXT PRIMARY KEY, name TEXT)");
    let err = db.get("a").await.unwrap_err();
    assert_eq!(kind_of(&err), Some(Kind::Usage), "{err:#}");
    let hint = super::hint_of(&err);
    assert!(hint.contains("key, name"), "{hint}");
}

#[tokio::test]
async fn reading_a_missing_database_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.db");
    let db = sqlite_at(path.clone(), None);
    let err = db.get("a").await.unwrap_err();
    assert_eq!(kind_of(&err), Some(Kind::NotFound), "{err:#}");
    let err = db.patch("a", rec(json!({"x": 1}))).await.unwrap_err();
    assert_eq!(kind_of(&err), Some(Kind::NotFound), "{err:#}");
    assert!(db.fields().await.unwrap()[0].required);
    assert!(!path.exists(), "a read created the database");
}

#[tokio::test]
async fn a_managed_batch_rejects_a_record_without_an_id_and_writes_the_rest() {
    let db = in_memory("");
    let batch = Records::new(vec![
        rec(json!({"id": "a"})),
        rec(json!({"name": "no id"})),
        rec(json!({"id": "b"})),
    ]);
    let out = db.upsert_batch(batch).await.unwrap();
    assert_eq!(out[0], UpsertOutcome::Ok { id: "a".into() });
    assert!(
        matches!(&out[1], UpsertOutcome::Rejected { id: None, reason } if reason.contains("no id")),
        "{out:?}"
    );
    assert_eq!(out[2], UpsertOutcome::Ok { id: "b".into() });
    assert!(db.get("a").await.is_ok() && db.get("b").await.is_ok());
}

#[tokio::test]
async fn an_existing_batch_rejects_the_rows_the_table_refuses_and_writes_the_rest() {
    let db = in_memory(PEOPLE);
    let batch = Records::new(vec![
        rec(json!({"id": 1, "name": "Ada"})),
        // NOT NULL, CHECK, and a column the table lacks.
        rec(json!({"id": 2})),
        rec(json!({"id": 3, "name": "Bob", "city": "Llanfairpwllgwyngyll"})),
        rec(json!({"id": 4, "name": "Cy", "age": 30})),
        rec(json!({"id": 5, "name": "Di"})),
    ]);
    let out = db.upsert_batch(batch).await.unwrap();
    assert_eq!(out[0], UpsertOutcome::Ok { id: "1".into() });
    for (i, why) in [(1, "NOT NULL"), (2, "CHECK"), (3, "no column \"age\"")] {
        assert!(
            matches!(&out[i], UpsertOutcome::Rejected { reason, .. } if reason.contains(why)),
            "{out:?}"
        );
    }
    assert_eq!(out[4], UpsertOutcome::Ok { id: "5".into() });
    assert!(db.get("1").await.is_ok() && db.get("5").await.is_ok());
    assert!(db.get("2").await.is_err() && db.get("3").await.is_err());
    // A second upsert of a row sets the columns it names.
    let out = db
        .upsert_batch(Records::new(vec![rec(json!({"id": 1, "city": "Oslo"}))]))
        .await
        .unwrap();
    assert_eq!(out, vec![UpsertOutcome::Ok { id: "1".into() }]);
    assert_eq!(
        db.get("1").await.unwrap(),
        rec(json!({"id": 1, "name": "Ada", "city": "Oslo"}))
    );
}

#[tokio::test]
async fn an_existing_tables_columns_are_its_fields_with_their_declared_types() {
    let db = in_memory(
        "CREATE TABLE records (id INTEGER PRIMARY KEY, name VARCHAR(20) NOT NULL,
             note TEXT NOT NULL DEFAULT '', price DECIMAL(8,2), score REAL, active BOOLEAN,
             born DATE, seen_at DATETIME, stamp TIMESTAMP, photo BLOB, misc)",
    );
    let fields: Vec<_> = db
        .fields()
        .await
        .unwrap()
        .into_iter()
        .map(|f| (f.name.into_owned(), f.kind, f.required))
        .collect();
    let named = |list: &[(&str, FieldType, bool)]| -> Vec<(String, FieldType, bool)> {
        list.iter()
            .map(|(n, k, r)| (n.to_string(), *k, *r))
            .collect()
    };
    assert_eq!(
        fields,
        named(&[
            ("id", FieldType::Integer, true),
            ("name", FieldType::String, true),
            // NOT NULL with a default: the table fills it in.
            ("note", FieldType::String, false),
            ("price", FieldType::Number, false),
            ("score", FieldType::Number, false),
            ("active", FieldType::Boolean, false),
            ("born", FieldType::Date, false),
            ("seen_at", FieldType::Datetime, false),
            ("stamp", FieldType::Datetime, false),
            ("photo", FieldType::Any, false),
            ("misc", FieldType::Any, false),
        ])
    );
    // A managed table's fields are the connector's own.
    let managed = in_memory("");
    managed
        .upsert_batch(Records::new(vec![rec(json!({"id": "a"}))]))
        .await
        .unwrap();
    let fields = managed.fields().await.unwrap();
    assert_eq!(fields.len(), 1);
    assert_eq!(
        (&*fields[0].name, fields[0].kind),
        ("id", FieldType::String)
    );
}
