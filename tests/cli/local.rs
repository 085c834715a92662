//! Every action on every local connector (sqlite, csv, jsonl), through the
//! real binary: what each prints, what it exits with, and what it leaves in
//! the file. Each test runs the same scenario on the three connectors, so a
//! difference between them shows up as a difference between snapshots.

use serde_json::{json, Value};

use crate::snap;
use crate::support::Folder;

/// The local connectors, each with the file its account points at.
const KINDS: [(&str, &str); 3] = [
    ("sqlite", "ferry.db"),
    ("csv", "customers.csv"),
    ("jsonl", "customers.jsonl"),
];

/// A connector folder whose account.json names `kind` with its default options.
fn folder(kind: &str, file: &str) -> Folder {
    let f = Folder::new();
    f.write(
        "account.json",
        &format!(r#"{{"connector": "{kind}", "path": "{file}"}}"#),
    );
    f
}

/// Insert `value` and assert it worked.
fn insert(f: &Folder, value: Value) {
    let run = f.run(&["insert", "--value", &value.to_string()]);
    assert_eq!(run.code, 0, "insert failed:\n{}", run.render());
}

/// A folder holding two customers, c1 and c2.
fn seeded(kind: &str, file: &str) -> Folder {
    let f = folder(kind, file);
    insert(
        &f,
        json!({"id": "c1", "email": "ada@example.com", "name": "Ada"}),
    );
    insert(
        &f,
        json!({"id": "c2", "email": "grace@example.com", "name": "Grace"}),
    );
    f
}

/// The bytes of the connector's file, or None when it does not exist.
fn bytes(f: &Folder, file: &str) -> Option<Vec<u8>> {
    std::fs::read(f.join(file)).ok()
}

#[test]
fn check_before_and_after_the_first_write() {
    for (kind, file) in KINDS {
        let f = folder(kind, file);
        snap!(format!("{kind}_check_missing_file"), f.run(&["check"]));
        assert!(!f.exists(file), "{kind}: check must not create {file}");
        insert(&f, json!({"id": "c1"}));
        snap!(format!("{kind}_check_existing_file"), f.run(&["check"]));
    }
}

#[test]
fn check_in_a_folder_that_does_not_exist() {
    for (kind, _) in KINDS {
        let f = folder(kind, "nowhere/data.file");
        snap!(format!("{kind}_check_missing_folder"), f.run(&["check"]));
    }
}

#[test]
fn insert_with_an_id() {
    for (kind, file) in KINDS {
        let f = folder(kind, file);
        snap!(
            format!("{kind}_insert_with_id"),
            f.run(&[
                "insert",
                "--value",
                r#"{"id": "c1", "email": "ada@example.com", "name": "Ada"}"#
            ])
        );
        assert_eq!(
            f.run(&["get", "--id", "c1"]).ok_json()["email"],
            "ada@example.com"
        );
    }
}

#[test]
fn insert_without_an_id_generates_one() {
    for (kind, file) in KINDS {
        let f = folder(kind, file);
        let run = f.run(&["insert", "--value", r#"{"email": "ada@example.com"}"#]);
        snap!(format!("{kind}_insert_without_id"), run);
        let out = run.ok_json();
        let id = out["id"].as_str().expect("a generated string id");
        assert_eq!(out["record"]["id"], id, "{kind}: the record carries its id");
        let got = f.run(&["get", "--id", id]).ok_json();
        assert_eq!(got["id"], id);
        assert_eq!(got["email"], "ada@example.com");
    }
}

#[test]
fn insert_with_an_existing_id_fails_and_changes_nothing() {
    for (kind, file) in KINDS {
        let f = seeded(kind, file);
        let before = bytes(&f, file);
        snap!(
            format!("{kind}_insert_duplicate_id"),
            f.run(&["insert", "--value", r#"{"id": "c1", "name": "Other"}"#])
        );
        if kind != "sqlite" {
            assert_eq!(bytes(&f, file), before, "{kind}: file changed");
        }
        assert_eq!(f.run(&["get", "--id", "c1"]).ok_json()["name"], "Ada");
    }
}

#[test]
fn get_found_and_unknown() {
    for (kind, file) in KINDS {
        let f = seeded(kind, file);
        snap!(format!("{kind}_get_found"), f.run(&["get", "--id", "c2"]));
        snap!(
            format!("{kind}_get_unknown_id"),
            f.run(&["get", "--id", "nope"])
        );
    }
}

#[test]
fn get_on_a_missing_file_answers_not_found_and_creates_nothing() {
    for (kind, file) in KINDS {
        let f = folder(kind, file);
        let run = f.run(&["get", "--id", "c1"]);
        assert_eq!(run.code, 1, "{kind}:\n{}", run.render());
        assert!(!f.exists(file), "{kind}: get must not create {file}");
    }
}

#[test]
fn patch_merges_fields_into_the_record() {
    for (kind, file) in KINDS {
        let f = seeded(kind, file);
        snap!(
            format!("{kind}_patch"),
            f.run(&[
                "patch",
                "--id",
                "c1",
                "--value",
                r#"{"name": "Ada L.", "city": "London"}"#
            ])
        );
        snap!(
            format!("{kind}_patch_then_get"),
            f.run(&["get", "--id", "c1"])
        );
        // The other record is untouched (apart from a new empty CSV column).
        let c2 = f.run(&["get", "--id", "c2"]).ok_json();
        assert_eq!(c2["name"], "Grace", "{kind}");
    }
}

#[test]
fn patch_of_an_unknown_id_fails_and_changes_nothing() {
    for (kind, file) in KINDS {
        let f = seeded(kind, file);
        let before = bytes(&f, file);
        snap!(
            format!("{kind}_patch_unknown_id"),
            f.run(&["patch", "--id", "nope", "--value", r#"{"newField": 1}"#])
        );
        if kind != "sqlite" {
            assert_eq!(bytes(&f, file), before, "{kind}: file changed");
        }
        let g = f.run(&["getupdates"]).ok_json();
        assert_eq!(g["entries"].as_array().map(Vec::len), Some(2), "{kind}");
    }
}

#[test]
fn patch_on_a_missing_file_creates_nothing() {
    for (kind, file) in KINDS {
        let f = folder(kind, file);
        let run = f.run(&["patch", "--id", "c1", "--value", r#"{"a": 1}"#]);
        assert_eq!(run.code, 1, "{kind}:\n{}", run.render());
        assert!(!f.exists(file), "{kind}: patch must not create {file}");
    }
}

#[test]
fn patch_that_changes_the_id_is_refused() {
    for (kind, file) in KINDS {
        let f = seeded(kind, file);
        let before = bytes(&f, file);
        snap!(
            format!("{kind}_patch_changes_id"),
            f.run(&["patch", "--id", "c1", "--value", r#"{"id": "c9"}"#])
        );
        if kind != "sqlite" {
            assert_eq!(bytes(&f, file), before, "{kind}: file changed");
        }
        // Repeating the record's own id is allowed.
        let run = f.run(&[
            "patch",
            "--id",
            "c1",
            "--value",
            r#"{"id": "c1", "name": "Ada"}"#,
        ]);
        assert_eq!(run.code, 0, "{kind}:\n{}", run.render());
    }
}

#[test]
fn delete_then_get_fails() {
    for (kind, file) in KINDS {
        let f = seeded(kind, file);
        snap!(format!("{kind}_delete"), f.run(&["delete", "--id", "c1"]));
        snap!(
            format!("{kind}_get_after_delete"),
            f.run(&["get", "--id", "c1"])
        );
        assert_eq!(f.run(&["get", "--id", "c2"]).ok_json()["name"], "Grace");
        // Deleting again is "not found", not a silent success.
        assert_eq!(f.run(&["delete", "--id", "c1"]).code, 1, "{kind}");
    }
}

#[test]
fn delete_of_an_unknown_id_leaves_the_file_untouched() {
    for (kind, file) in KINDS {
        let f = seeded(kind, file);
        let before = bytes(&f, file);
        snap!(
            format!("{kind}_delete_unknown_id"),
            f.run(&["delete", "--id", "nope"])
        );
        assert_eq!(bytes(&f, file), before, "{kind}: file changed");
    }
}

#[test]
fn delete_on_a_missing_file_creates_nothing() {
    for (kind, file) in KINDS {
        let f = folder(kind, file);
        assert_eq!(f.run(&["delete", "--id", "c1"]).code, 1, "{kind}");
        assert!(!f.exists(file), "{kind}: delete must not create {file}");
    }
}

#[test]
fn getupdates_initial_sync_lists_every_record() {
    for (kind, file) in KINDS {
        let f = folder(kind, file);
        snap!(
            format!("{kind}_getupdates_missing_file"),
            f.run(&["getupdates"])
        );
        assert!(!f.exists(file), "{kind}: getupdates must not create {file}");
        insert(&f, json!({"id": "c1", "name": "Ada"}));
        insert(&f, json!({"id": "c2", "name": "Grace"}));
        snap!(format!("{kind}_getupdates_initial"), f.run(&["getupdates"]));
    }
}

#[test]
fn getupdates_after_changes_lists_what_changed_since_next_sync() {
    for (kind, file) in KINDS {
        let f = seeded(kind, file);
        let first = f.run(&["getupdates"]).ok_json();
        let token = first["nextSync"].as_str().expect("nextSync is a string");
        // Nothing changed yet: no entries, the same token.
        let none = f.run(&["getupdates", "--last-sync", token]).ok_json();
        assert_eq!(none["entries"], json!([]), "{kind}");
        assert_eq!(none["nextSync"], token, "{kind}");

        insert(&f, json!({"id": "c3", "name": "Katherine"}));
        if kind == "sqlite" {
            // sqlite tracks updates and deletes too.
            let run = f.run(&["patch", "--id", "c1", "--value", r#"{"name": "Ada L."}"#]);
            assert_eq!(run.code, 0, "{}", run.render());
            assert_eq!(f.run(&["delete", "--id", "c2"]).code, 0);
        }
        let run = f.run(&["getupdates", "--last-sync", token]);
        snap!(format!("{kind}_getupdates_since_token"), run);
        let next = run.ok_json()["nextSync"].clone();
        let after = f
            .run(&[
                "getupdates",
                "--last-sync",
                next.as_str().unwrap_or_default(),
            ])
            .ok_json();
        assert_eq!(after["entries"], json!([]), "{kind}: changes seen twice");
    }
}

/// Page through getupdates `limit` entries at a time from `since`, answering
/// every entry and the final token.
fn drain(f: &Folder, since: Option<&str>, limit: usize) -> (Vec<Value>, String) {
    let mut entries = Vec::new();
    let mut token = since.map(str::to_string);
    for _ in 0..100 {
        let limit_text = limit.to_string();
        let mut args = vec!["getupdates", "--limit", &limit_text];
        if let Some(t) = &token {
            args.extend(["--last-sync", t.as_str()]);
        }
        let out = f.run(&args).ok_json();
        let page = out["entries"].as_array().cloned().unwrap_or_default();
        assert!(page.len() <= limit, "more than --limit entries: {out}");
        let next = out["nextSync"].as_str().expect("nextSync").to_string();
        let done = page.is_empty();
        entries.extend(page);
        token = Some(next);
        if done {
            break;
        }
    }
    (entries, token.unwrap_or_default())
}

/// The (id, value) pairs of entries: what a consumer applies, whatever the
/// type says (an initial sync says "upsert", a continuation "insert").
fn applied(entries: &[Value]) -> Vec<(Value, Value)> {
    entries
        .iter()
        .map(|e| (e["id"].clone(), e["value"].clone()))
        .collect()
}

#[test]
fn getupdates_limit_continues_exactly_where_it_stopped() {
    for (kind, file) in KINDS {
        let f = folder(kind, file);
        for i in 1..=5 {
            insert(&f, json!({"id": format!("c{i}"), "n": format!("{i}")}));
        }
        let full = f.run(&["getupdates"]).ok_json();
        let full_entries = full["entries"].as_array().cloned().unwrap_or_default();
        assert_eq!(full_entries.len(), 5, "{kind}");

        let first = f.run(&["getupdates", "--limit", "2"]);
        snap!(format!("{kind}_getupdates_limit_2"), first);
        let token = first.ok_json()["nextSync"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let second = f.run(&["getupdates", "--last-sync", &token]).ok_json();
        let mut together = first.ok_json()["entries"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        together.extend(second["entries"].as_array().cloned().unwrap_or_default());
        assert_eq!(applied(&together), applied(&full_entries), "{kind}");
        assert_eq!(second["nextSync"], full["nextSync"], "{kind}");

        // One record at a time reaches the same end, and nothing after it.
        let (paged, end) = drain(&f, None, 1);
        assert_eq!(applied(&paged), applied(&full_entries), "{kind}");
        assert_eq!(end, full["nextSync"].as_str().unwrap_or_default(), "{kind}");
    }
}

#[test]
fn getupdates_limit_on_changes_since_a_token() {
    for (kind, file) in KINDS {
        let f = seeded(kind, file);
        let token = f.run(&["getupdates"]).ok_json()["nextSync"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        for i in 3..=6 {
            insert(&f, json!({"id": format!("c{i}")}));
        }
        let full = f.run(&["getupdates", "--last-sync", &token]).ok_json();
        let (paged, end) = drain(&f, Some(&token), 3);
        assert_eq!(
            paged,
            full["entries"].as_array().cloned().unwrap_or_default(),
            "{kind}"
        );
        assert_eq!(end, full["nextSync"].as_str().unwrap_or_default(), "{kind}");
    }
}

#[test]
fn sqlite_getupdates_never_skips_records_sharing_a_timestamp() {
    let f = folder("sqlite", "ferry.db");
    for i in 1..=7 {
        insert(&f, json!({"id": format!("c{i}")}));
    }
    // Give every change the same update time, as a fast batch would.
    let conn = rusqlite::Connection::open(f.join("ferry.db")).expect("open the database");
    conn.execute(
        "UPDATE records SET updated_at = '2026-01-01T00:00:00.000Z'",
        [],
    )
    .expect("set one timestamp");
    drop(conn);

    let full = f.run(&["getupdates"]).ok_json();
    for limit in 1..=7 {
        let (paged, end) = drain(&f, None, limit);
        assert_eq!(
            applied(&paged),
            applied(full["entries"].as_array().expect("entries")),
            "limit {limit}"
        );
        assert_eq!(end, full["nextSync"].as_str().unwrap_or_default());
    }
    // A time token means "every change at or after it": all seven, paged too.
    let (since_time, _) = drain(&f, Some("2026-01-01T00:00:00Z"), 2);
    assert_eq!(since_time.len(), 7);
}

#[test]
fn getupdates_with_a_bad_token() {
    for (kind, file) in KINDS {
        let f = seeded(kind, file);
        snap!(
            format!("{kind}_getupdates_bad_token"),
            f.run(&["getupdates", "--last-sync", "yesterday"])
        );
    }
}

#[test]
fn getupdates_limit_zero_is_a_usage_error() {
    let f = folder("jsonl", "customers.jsonl");
    snap!(
        "getupdates_limit_zero",
        f.run(&["getupdates", "--limit", "0"])
    );
}

#[test]
fn inputs_come_from_in_json_when_flags_are_absent() {
    for (kind, file) in KINDS {
        let f = folder(kind, file);
        f.write(
            "in.json",
            r#"{
              "get": {"id": "c1"},
              "insert": {"value": {"id": "c1", "name": "Ada"}},
              "patch": {"id": "c1", "value": {"name": "Ada L."}},
              "delete": {"id": "c1"},
              "getupdates": {"lastSync": "0"}
            }"#,
        );
        snap!(format!("{kind}_in_json_insert"), f.run(&["insert"]));
        snap!(format!("{kind}_in_json_patch"), f.run(&["patch"]));
        snap!(format!("{kind}_in_json_get"), f.run(&["get"]));
        let updates = f.run(&["getupdates"]).ok_json();
        assert_eq!(
            updates["entries"][0]["id"], "c1",
            "{kind}: lastSync 0 lists all"
        );
        snap!(format!("{kind}_in_json_delete"), f.run(&["delete"]));
        assert_eq!(f.run(&["get"]).code, 1, "{kind}");
    }
}

#[test]
fn flags_win_over_in_json() {
    for (kind, file) in KINDS {
        let f = seeded(kind, file);
        f.write(
            "in.json",
            r#"{
              "get": {"id": "c1"},
              "insert": {"value": {"id": "from-file"}},
              "patch": {"id": "c1", "value": {"name": "from file"}},
              "delete": {"id": "c1"}
            }"#,
        );
        assert_eq!(f.run(&["get", "--id", "c2"]).ok_json()["name"], "Grace");
        let ins = f
            .run(&["insert", "--value", r#"{"id": "from-flag"}"#])
            .ok_json();
        assert_eq!(ins["id"], "from-flag", "{kind}");
        assert_eq!(f.run(&["get", "--id", "from-file"]).code, 1, "{kind}");
        // --id wins while the value still comes from in.json, and the reverse.
        f.run(&["patch", "--id", "c2"]).ok_json();
        assert_eq!(f.run(&["get", "--id", "c2"]).ok_json()["name"], "from file");
        f.run(&["patch", "--value", r#"{"name": "from flag"}"#])
            .ok_json();
        assert_eq!(f.run(&["get", "--id", "c1"]).ok_json()["name"], "from flag");
        f.run(&["delete", "--id", "c2"]).ok_json();
        assert_eq!(f.run(&["get", "--id", "c2"]).code, 1, "{kind}");
        assert_eq!(f.run(&["get"]).code, 0, "{kind}: c1 must still be there");
    }
}

#[test]
fn value_from_a_file() {
    for (kind, file) in KINDS {
        let f = folder(kind, file);
        f.write("ada.json", r#"{"id": "c1", "name": "Ada"}"#);
        f.write("patch.json", r#"{"city": "London"}"#);
        f.run(&["insert", "--value", "@ada.json"]).ok_json();
        f.run(&["patch", "--id", "c1", "--value", "@patch.json"])
            .ok_json();
        snap!(
            format!("{kind}_value_from_file"),
            f.run(&["get", "--id", "c1"])
        );
    }
}

#[test]
fn value_from_a_missing_file() {
    let f = folder("jsonl", "customers.jsonl");
    snap!(
        "value_from_missing_file",
        f.run(&["insert", "--value", "@nope.json"])
    );
}

#[test]
fn value_that_is_not_an_object() {
    let f = folder("jsonl", "customers.jsonl");
    snap!(
        "value_not_an_object",
        f.run(&["insert", "--value", r#"["a"]"#])
    );
}

#[test]
fn file_contents_after_writes() {
    for (kind, file) in KINDS.into_iter().filter(|(k, _)| *k != "sqlite") {
        let f = seeded(kind, file);
        f.run(&[
            "patch",
            "--id",
            "c1",
            "--value",
            r#"{"tags": ["a", "b"], "vip": true}"#,
        ])
        .ok_json();
        f.run(&["delete", "--id", "c2"]).ok_json();
        insert(&f, json!({"id": "c3", "name": "Katherine, K."}));
        insta::assert_snapshot!(format!("{kind}_file_after_writes"), f.read(file));
    }
}

#[test]
fn csv_reads_cells_as_strings_and_empty_cells_as_null() {
    let f = folder("csv", "customers.csv");
    f.write("customers.csv", "id,age,note\nc1,36,\n");
    snap!("csv_cells", f.run(&["get", "--id", "c1"]));
}

#[test]
fn csv_delimiter_option() {
    let f = Folder::new();
    f.write(
        "account.json",
        r#"{"connector": "csv", "path": "c.csv", "delimiter": ";"}"#,
    );
    f.write("c.csv", "id;name\nc1;Ada, Countess\n");
    snap!("csv_delimiter_get", f.run(&["get", "--id", "c1"]));
    insert(&f, json!({"id": "c2", "name": "Grace"}));
    assert_eq!(f.read("c.csv"), "id;name\nc1;Ada, Countess\nc2;Grace\n");

    f.write(
        "account.json",
        r#"{"connector": "csv", "path": "t.csv", "delimiter": "\t"}"#,
    );
    f.write("t.csv", "id\tname\nc1\tAda\n");
    assert_eq!(f.run(&["get", "--id", "c1"]).ok_json()["name"], "Ada");
}

#[test]
fn csv_bad_delimiter() {
    let f = Folder::new();
    f.write(
        "account.json",
        r#"{"connector": "csv", "path": "c.csv", "delimiter": ";;"}"#,
    );
    snap!("csv_bad_delimiter", f.run(&["check"]));
}

#[test]
fn csv_rows_that_do_not_match_the_header() {
    let f = folder("csv", "customers.csv");
    f.write("customers.csv", "id,name\nc1,Ada\nc2,Grace,extra\n");
    snap!("csv_ragged_row", f.run(&["getupdates"]));
}

#[test]
fn jsonl_invalid_line() {
    let f = folder("jsonl", "customers.jsonl");
    f.write("customers.jsonl", "{\"id\": \"c1\"}\n\n{\"id\": \"c2\",}\n");
    snap!("jsonl_invalid_line", f.run(&["getupdates"]));
    f.write("customers.jsonl", "{\"id\": \"c1\"}\n[1]\n");
    snap!("jsonl_line_not_an_object", f.run(&["getupdates"]));
}

/// A table made outside ferry: id as INTEGER PRIMARY KEY, plain columns.
fn existing_table() -> Folder {
    let f = Folder::new();
    f.write(
        "account.json",
        r#"{"connector": "sqlite", "path": "shop.db", "table": "customers"}"#,
    );
    let conn = rusqlite::Connection::open(f.join("shop.db")).expect("open the database");
    conn.execute_batch(
        "CREATE TABLE customers (id INTEGER PRIMARY KEY, email TEXT, name TEXT);
         INSERT INTO customers (id, email, name) VALUES (1, 'ada@example.com', 'Ada');
         INSERT INTO customers (id, email, name) VALUES (2, 'grace@example.com', 'Grace');",
    )
    .expect("create the table");
    f
}

#[test]
fn sqlite_existing_table_is_used_as_it_is() {
    let f = existing_table();
    snap!("sqlite_existing_check", f.run(&["check"]));
    snap!("sqlite_existing_get", f.run(&["get", "--id", "1"]));
    snap!(
        "sqlite_existing_insert_without_id",
        f.run(&["insert", "--value", r#"{"email": "kj@example.com"}"#])
    );
    snap!(
        "sqlite_existing_patch",
        f.run(&["patch", "--id", "1", "--value", r#"{"name": "Ada L."}"#])
    );
    assert_eq!(f.run(&["get", "--id", "1"]).ok_json()["name"], "Ada L.");
    snap!(
        "sqlite_existing_unknown_column",
        f.run(&["patch", "--id", "1", "--value", r#"{"city": "London"}"#])
    );
    f.run(&["delete", "--id", "2"]).ok_json();
    assert_eq!(f.run(&["get", "--id", "2"]).code, 1);
}

#[test]
fn sqlite_existing_table_refuses_getupdates() {
    let f = existing_table();
    snap!("sqlite_existing_getupdates", f.run(&["getupdates"]));
}

#[test]
fn sqlite_existing_table_without_the_id_column() {
    let f = existing_table();
    f.write(
        "account.json",
        r#"{"connector": "sqlite", "path": "shop.db", "table": "customers", "idField": "key"}"#,
    );
    snap!("sqlite_existing_no_id_column", f.run(&["get", "--id", "1"]));
}

#[test]
fn sqlite_file_that_is_not_a_database() {
    let f = folder("sqlite", "ferry.db");
    f.write(
        "ferry.db",
        "this is not a database, just text that is long enough",
    );
    snap!("sqlite_not_a_database", f.run(&["get", "--id", "c1"]));
}

#[test]
fn getupdates_after_a_delete_and_an_insert_misses_nothing() {
    for (kind, file) in KINDS {
        let f = seeded(kind, file);
        insert(&f, json!({"id": "c3"}));
        let token = f.run(&["getupdates"]).ok_json()["nextSync"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        // The file shrinks by one record, then grows by one: the new record
        // sits where the old last one was.
        f.run(&["delete", "--id", "c1"]).ok_json();
        insert(&f, json!({"id": "c4"}));
        let since = f.run(&["getupdates", "--last-sync", &token]).ok_json();
        let ids: Vec<&Value> = since["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .map(|e| &e["id"])
            .collect();
        assert!(ids.contains(&&json!("c4")), "{kind}: c4 missed: {since}");
    }
}

#[test]
fn getupdates_after_the_last_synced_record_is_deleted_starts_over() {
    // sqlite keeps tombstones and reports the delete itself (tested above).
    for (kind, file) in KINDS.into_iter().filter(|(k, _)| *k != "sqlite") {
        let f = seeded(kind, file);
        let token = f.run(&["getupdates"]).ok_json()["nextSync"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        // The token's anchor (c2) goes, c3 arrives in its place: the next
        // call cannot know what it missed, so it sends every record again.
        f.run(&["delete", "--id", "c2"]).ok_json();
        insert(&f, json!({"id": "c3"}));
        let since = f.run(&["getupdates", "--last-sync", &token]).ok_json();
        let ids: Vec<Value> = since["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .map(|e| e["id"].clone())
            .collect();
        assert_eq!(ids, [json!("c1"), json!("c3")], "{kind}: {since}");
    }
}

#[test]
fn getupdates_accepts_a_bare_position() {
    for (kind, file) in KINDS.into_iter().filter(|(k, _)| *k != "sqlite") {
        let f = seeded(kind, file);
        let since = f.run(&["getupdates", "--last-sync", "1"]).ok_json();
        assert_eq!(since["entries"][0]["id"], "c2", "{kind}: {since}");
        assert_eq!(since["nextSync"], "2:c2", "{kind}");
    }
}

/// The records a consumer holds after applying `entries` in order.
fn apply(entries: &[Value]) -> std::collections::BTreeMap<String, Value> {
    let mut state = std::collections::BTreeMap::new();
    for e in entries {
        let id = e["id"].as_str().expect("a string id").to_string();
        match e["type"].as_str() {
            Some("delete") => {
                state.remove(&id);
            }
            Some("upsert" | "insert" | "update") => {
                state.insert(id, e["value"].clone());
            }
            other => panic!("unknown entry type {other:?}: {e}"),
        }
    }
    state
}

#[test]
fn sqlite_limited_sync_with_deletes_and_updates_reaches_the_same_state() {
    let f = folder("sqlite", "ferry.db");
    for i in 1..=6 {
        insert(&f, json!({"id": format!("c{i}"), "v": 0}));
    }
    f.run(&["delete", "--id", "c2"]).ok_json();
    f.run(&["patch", "--id", "c1", "--value", r#"{"v": 1}"#])
        .ok_json();
    let full = f.run(&["getupdates"]).ok_json();
    let expected = apply(full["entries"].as_array().expect("entries"));
    assert_eq!(expected.len(), 5);
    for limit in [1, 2, 4] {
        let (paged, end) = drain(&f, None, limit);
        assert_eq!(apply(&paged), expected, "limit {limit}");
        assert_eq!(end, full["nextSync"].as_str().unwrap_or_default());
    }
    // Changes after a limited sync are all seen by the next one.
    let (_, token) = drain(&f, None, 4);
    f.run(&["patch", "--id", "c3", "--value", r#"{"v": 2}"#])
        .ok_json();
    f.run(&["delete", "--id", "c5"]).ok_json();
    insert(&f, json!({"id": "c7"}));
    let (changes, _) = drain(&f, Some(&token), 1);
    let kinds: Vec<(&str, &str)> = changes
        .iter()
        .map(|e| {
            (
                e["id"].as_str().unwrap_or(""),
                e["type"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [("c3", "update"), ("c5", "delete"), ("c7", "insert")]
    );
}

#[test]
fn a_write_over_a_broken_file_fails_and_leaves_it_as_it_was() {
    let f = folder("jsonl", "customers.jsonl");
    let broken = "{\"id\": \"c1\"}\n{\"id\": \"c2\",}\n{\"id\": \"c3\"}\n";
    f.write("customers.jsonl", broken);
    snap!(
        "jsonl_insert_over_broken_file",
        f.run(&["insert", "--value", r#"{"id": "c4"}"#])
    );
    assert_eq!(f.read("customers.jsonl"), broken);
    let names: Vec<String> = std::fs::read_dir(f.path())
        .expect("list the folder")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".ferry-tmp"))
        .collect();
    assert!(names.is_empty(), "temporary files left: {names:?}");
}

#[test]
fn concurrent_sqlite_writers_all_succeed_and_get_distinct_sequence_numbers() {
    // No database yet: the first writers also race to create the table.
    let f = folder("sqlite", "ferry.db");
    let children: Vec<_> = (1..=8)
        .map(|i| {
            std::process::Command::new(assert_cmd::cargo::cargo_bin("ferry"))
                .current_dir(f.path())
                .env_clear()
                .args(["insert", "--value", &format!(r#"{{"id": "c{i}"}}"#)])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("start ferry")
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().expect("wait for ferry");
        assert!(
            out.status.success(),
            "a concurrent insert failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Every change has its own sequence number, so paging one at a time
    // sees all eight.
    let (paged, _) = drain(&f, None, 1);
    assert_eq!(paged.len(), 8);
}

#[test]
fn a_numeric_id_is_kept_as_written_and_printed_as_text() {
    // CSV cells read back as strings, so only sqlite and jsonl keep the type.
    for (kind, file) in KINDS.into_iter().filter(|(k, _)| *k != "csv") {
        let f = folder(kind, file);
        let out = f.run(&["insert", "--value", r#"{"id": 42, "name": "Ada"}"#]);
        let out = out.ok_json();
        // Printed as text everywhere (docs/config.md), so the id printed is
        // the one --id takes...
        assert_eq!(out["id"], "42", "{kind}: the printed id is a string");
        assert_eq!(out["record"]["id"], "42", "{kind}: {out}");
        assert_eq!(
            f.run(&["get", "--id", "42"]).ok_json()["id"],
            "42",
            "{kind}"
        );
        // ...and stored as it was written.
        let stored = match kind {
            "jsonl" => f.read(file),
            _ => rusqlite::Connection::open(f.join(file))
                .unwrap()
                .query_row("SELECT data FROM records", [], |r| r.get::<_, String>(0))
                .unwrap(),
        };
        assert!(stored.contains(r#""id":42"#), "{kind}: {stored}");
        let dup = f.run(&["insert", "--value", r#"{"id": "42"}"#]);
        assert_eq!(dup.code, 1, "{kind}: 42 and \"42\" are the same id");
    }
}
