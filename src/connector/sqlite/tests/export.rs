//! Export into both layouts: profiles created (merged into a known id),
//! updated (set, cleared, renamed), deleted, and group memberships added
//! and removed beside the table.

use serde_json::{json, Value};

use super::{in_memory, kind_of, rec, rows};
use crate::connector::{ChangeFeed, GroupSink, ProfileSink, RecordLookup};
use crate::connector::{ProfileOutcome, ProfileUpdate};
use crate::error::Kind;

fn update(set: Value, clear: &[&str]) -> ProfileUpdate {
    ProfileUpdate {
        set: rec(set),
        clear: clear.iter().map(|k| k.to_string()).collect(),
    }
}

fn members(db: &super::Sqlite) -> Vec<Vec<String>> {
    rows(
        db,
        "SELECT group_name, record_id FROM records_members ORDER BY 1, 2",
    )
}

fn ok(id: &str) -> ProfileOutcome {
    ProfileOutcome::Ok { id: id.into() }
}

#[tokio::test]
async fn a_managed_table_takes_profiles_and_groups() {
    let db = in_memory("");
    let out = db
        .create_profiles(vec![
            rec(json!({"id": "a", "name": "Ada", "x": 1})),
            rec(json!({"name": "no id"})),
            rec(json!({"id": "b"})),
        ])
        .await;
    assert_eq!(out[0], ok("a"));
    assert!(
        matches!(&out[1], ProfileOutcome::Rejected { reason } if reason.contains("no id")),
        "{out:?}"
    );
    assert_eq!(out[2], ok("b"));
    // A create of a known id merges into its record.
    let id = db
        .create_profile(rec(json!({"id": "a", "city": "Oslo"})))
        .await
        .unwrap();
    assert_eq!(id, "a");
    assert_eq!(
        db.get("a").await.unwrap(),
        rec(json!({"id": "a", "name": "Ada", "x": 1, "city": "Oslo"}))
    );
    assert_eq!(db.find_profile("a").await.unwrap().as_deref(), Some("a"));
    assert_eq!(db.find_profile("zz").await.unwrap(), None);

    assert_eq!(db.ensure_group("vip").await.unwrap(), "vip");
    let out = db.add_members("vip", vec!["a".into(), "b".into()]).await;
    assert_eq!(out, [ok("a"), ok("b")]);
    // Set, clear (a managed record drops the field) and rename; the
    // membership follows the new id. A missing id is not found, a rename
    // onto a taken id refused.
    let out = db
        .update_profiles(vec![
            (
                "a".into(),
                update(json!({"id": "a2", "name": "Ada L"}), &["x"]),
            ),
            ("gone".into(), update(json!({"n": 0}), &[])),
            ("b".into(), update(json!({"id": "a2"}), &[])),
        ])
        .await;
    assert_eq!(out[0], ok("a2"));
    assert!(
        matches!(&out[1], ProfileOutcome::NotFound { .. }),
        "{out:?}"
    );
    assert!(
        matches!(&out[2], ProfileOutcome::Rejected { reason } if reason.contains("already has id \"a2\"")),
        "{out:?}"
    );
    assert_eq!(
        db.get("a2").await.unwrap(),
        rec(json!({"id": "a2", "name": "Ada L", "city": "Oslo"}))
    );
    assert_eq!(
        kind_of(&db.get("a").await.unwrap_err()),
        Some(Kind::NotFound)
    );
    assert_eq!(members(&db), [["vip", "a2"], ["vip", "b"]]);

    let out = db.remove_members("vip", vec!["a2".into()]).await;
    assert_eq!(out, [ok("a2")]);
    assert_eq!(members(&db), [["vip", "b"]]);
    // A deleted profile leaves its groups; one already gone is done too.
    let out = db.delete_profiles(vec!["b".into(), "never".into()]).await;
    assert_eq!(out, [ok("b"), ok("never")]);
    assert!(members(&db).is_empty());
    assert_eq!(
        kind_of(&db.get("b").await.unwrap_err()),
        Some(Kind::NotFound)
    );
    // a2 is all that is left; a and b are tombstones.
    let all = db.get_updates(None, None).await.unwrap();
    assert_eq!(all.entries.len(), 1);
    assert_eq!(all.entries[0].id, "a2");
}

#[tokio::test]
async fn an_existing_table_takes_profiles_and_groups() {
    let db = in_memory("CREATE TABLE records (id TEXT PRIMARY KEY, name TEXT, city TEXT)");
    let out = db
        .create_profiles(vec![
            rec(json!({"id": "a", "name": "Ada"})),
            rec(json!({"id": "b", "age": 3})),
        ])
        .await;
    assert_eq!(out[0], ok("a"));
    assert!(
        matches!(&out[1], ProfileOutcome::Rejected { reason } if reason.contains("no column \"age\"")),
        "{out:?}"
    );
    // Only the named columns change: a create of a known id merges.
    db.create_profile(rec(json!({"id": "a", "city": "Oslo"})))
        .await
        .unwrap();
    assert_eq!(
        db.get("a").await.unwrap(),
        rec(json!({"id": "a", "name": "Ada", "city": "Oslo"}))
    );
    db.add_member("vip", "a").await.unwrap();
    // A cleared column becomes NULL; a rename changes the id column.
    let id = db
        .update_profile("a", update(json!({"id": "a2", "name": "Ada L"}), &["city"]))
        .await
        .unwrap();
    assert_eq!(id, "a2");
    assert_eq!(
        db.get("a2").await.unwrap(),
        rec(json!({"id": "a2", "name": "Ada L", "city": null}))
    );
    assert_eq!(members(&db), [["vip", "a2"]]);
    let err = db
        .update_profile("a2", update(json!({"age": 1}), &[]))
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("no column \"age\""), "{err:#}");
    let err = db
        .update_profile("zz", update(json!({"name": "x"}), &[]))
        .await
        .unwrap_err();
    assert_eq!(kind_of(&err), Some(Kind::NotFound), "{err:#}");
    db.remove_member("vip", "a2").await.unwrap();
    assert!(members(&db).is_empty());
    db.add_member("vip", "a2").await.unwrap();
    db.delete_profile("a2").await.unwrap();
    db.delete_profile("a2").await.unwrap();
    assert!(members(&db).is_empty());
    assert_eq!(
        rows(&db, "SELECT CAST(count(*) AS TEXT) FROM records"),
        [["0"]]
    );
}

/// A batch of creates reads the table's last sequence number once: each
/// record still gets its own, after every number before it; a create over
/// a tombstone brings the record back as new, without the deleted fields.
#[tokio::test]
async fn creates_in_a_batch_get_distinct_growing_sequence_numbers() {
    let db = in_memory("");
    let out = db
        .create_profiles(vec![rec(json!({"id": "old", "gone": true}))])
        .await;
    assert_eq!(out, [ok("old")]);
    let out = db.delete_profiles(vec!["old".into()]).await;
    assert_eq!(out, [ok("old")]);
    let out = db
        .create_profiles(vec![
            rec(json!({"id": "a"})),
            rec(json!({"id": "old", "back": 1})),
            rec(json!({"id": "b"})),
        ])
        .await;
    assert_eq!(out, [ok("a"), ok("old"), ok("b")]);
    assert_eq!(
        rows(
            &db,
            "SELECT id, CAST(seq AS TEXT), CAST(created_seq AS TEXT), data FROM records ORDER BY seq"
        ),
        [
            ["a", "3", "3", r#"{"id":"a"}"#],
            ["old", "4", "4", r#"{"id":"old","back":1}"#],
            ["b", "5", "5", r#"{"id":"b"}"#],
        ]
    );
}

/// A batch with a refused profile runs again in a second transaction: the
/// sequence numbers the first one handed out were rolled back with it, and
/// the second reads the table's last one again (another process may have
/// written in between), so nothing skips or repeats a number.
#[tokio::test]
async fn a_batch_run_again_reads_the_sequence_again() {
    let db = in_memory("");
    let out = db
        .create_profiles(vec![
            rec(json!({"id": "a"})),
            rec(json!({"id": "b"})),
            rec(json!({"id": "c"})),
        ])
        .await;
    assert_eq!(out, [ok("a"), ok("b"), ok("c")]);
    let out = db
        .update_profiles(vec![
            ("c".into(), update(json!({"x": 1}), &[])),
            ("a".into(), update(json!({"id": "b"}), &[])),
        ])
        .await;
    assert_eq!(out[0], ok("c"));
    assert!(
        matches!(&out[1], ProfileOutcome::Rejected { .. }),
        "{out:?}"
    );
    assert_eq!(
        rows(
            &db,
            "SELECT id, CAST(seq AS TEXT) FROM records ORDER BY seq"
        ),
        [["a", "1"], ["b", "2"], ["c", "4"]]
    );
}
