//! `ferry export` against local sqlite (and csv) destinations, through the
//! real binary: first run, no-change run, every kind of change, partial
//! failure and retry, the mass-delete guard, and dry-run predictions that
//! equal what the real run then does.

use serde_json::{json, Value};

use crate::support::{jsonl_field, Folder, Run};

/// The run with its timing numbers replaced (they change every run).
pub(crate) fn render(run: &Run) -> String {
    let re = regex::Regex::new(r#""(elapsedSecs|profilesPerSecond)": [0-9.e+-]+"#).unwrap();
    let rendered = run.render();
    let text = re.replace_all(&rendered, r#""$1": "[N]""#);
    // The state file is named after a hash of the destination's absolute path.
    let hash = regex::Regex::new(r"export-[0-9a-f]{16}\.db").unwrap();
    hash.replace_all(&text, "export-[HASH].db").into_owned()
}

macro_rules! snap_export {
    ($name:expr, $run:expr) => {
        insta::assert_snapshot!($name, render(&$run))
    };
}

/// A folder whose destination `crm/` is an sqlite table keyed by email.
pub(crate) fn folder() -> Folder {
    let f = Folder::new();
    f.write(
        "crm/account.json",
        r#"{"connector": "sqlite", "path": "crm.db", "idField": "email"}"#,
    );
    f
}

/// The destination's live records and memberships.
pub(crate) fn dump(f: &Folder, db: &str, table: &str) -> Value {
    let conn = rusqlite::Connection::open(f.join(db)).unwrap();
    let managed: bool = conn
        .query_row(
            "SELECT count(*) > 0 FROM sqlite_master WHERE name = 'ferry_tables'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let mut records = Vec::new();
    if managed {
        let mut stmt = conn
            .prepare(&format!(
                "SELECT data FROM {table} WHERE deleted = 0 ORDER BY id"
            ))
            .unwrap();
        let rows = stmt.query_map([], |r| r.get::<_, String>(0)).unwrap();
        for row in rows {
            records.push(serde_json::from_str::<Value>(&row.unwrap()).unwrap());
        }
    } else {
        let mut stmt = conn
            .prepare(&format!(
                "SELECT email, name, phone FROM {table} ORDER BY email"
            ))
            .unwrap();
        let rows = stmt
            .query_map([], |r| {
                Ok(json!({"email": r.get::<_, Option<String>>(0)?, "name": r.get::<_, Option<String>>(1)?, "phone": r.get::<_, Option<String>>(2)?}))
            })
            .unwrap();
        for row in rows {
            records.push(row.unwrap());
        }
    }
    let mut members = Vec::new();
    if let Ok(mut stmt) = conn.prepare(&format!(
        "SELECT group_name, record_id FROM {table}_members ORDER BY 1, 2"
    )) {
        let rows = stmt
            .query_map([], |r| {
                Ok(format!(
                    "{}: {}",
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?
                ))
            })
            .unwrap();
        for row in rows {
            members.push(row.unwrap());
        }
    }
    json!({"records": records, "members": members})
}

pub(crate) const FIRST: &str = r#"{"id": "p1", "properties": {"email": "ada@example.com", "name": "Ada", "plan": "pro"}, "groups": ["vip", "news"]}
{"id": "p2", "properties": {"email": "bob@example.com", "name": "Bob", "city": "Oslo"}, "groups": ["news"]}
{"id": "p3", "properties": {"email": "cy@example.com", "name": "Cy"}}
{"id": "p4", "properties": {"email": "dee@example.com", "name": "Dee"}, "groups": ["news"]}
"#;

/// The same people after: p1 renamed, joins beta and leaves news; p2 loses
/// city; p3 marked for deletion; p4 has a new email; p5 has no email.
pub(crate) const SECOND: &str = r#"{"id": "p1", "properties": {"email": "ada@example.com", "name": "Ada L.", "plan": "pro"}, "groups": ["vip", "beta"]}
{"id": "p2", "properties": {"email": "bob@example.com", "name": "Bob"}, "groups": ["news"]}
{"id": "p3", "properties": {"email": "cy@example.com", "name": "Cy"}, "toDelete": true}
{"id": "p4", "properties": {"email": "dee@new.example.com", "name": "Dee"}, "groups": ["news"]}
{"id": "p5", "properties": {"name": "No Email"}}
"#;

/// The export state database of the folder (its only export).
fn state_db(f: &Folder) -> std::path::PathBuf {
    std::fs::read_dir(f.join(".ferry"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "db"))
        .expect("the export state")
}

fn state_files(f: &Folder) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(f.join(".ferry"))
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    out.push((
        "crm.db".into(),
        std::fs::read(f.join("crm/crm.db")).unwrap(),
    ));
    out.sort();
    out
}

/// The predicted counts of a dry run, as the real run reports them.
fn predicted(run: &Run) -> Value {
    run.json()["predicted"].clone()
}

fn actual(run: &Run) -> Value {
    let s = run.json();
    let keys = [
        "created",
        "updated",
        "deleted",
        "unchanged",
        "groupsAdded",
        "groupsRemoved",
        "invalid",
        "skipped",
    ];
    Value::Object(
        keys.iter()
            .map(|k| (k.to_string(), s[*k].clone()))
            .collect(),
    )
}

#[test]
fn export_first_run_then_no_change_then_every_kind_of_change() {
    let f = folder();
    f.write("first.jsonl", FIRST);
    let dry = f.run_line("export --to crm --input first.jsonl --dry-run");
    snap_export!("export_first_dry_run", dry);
    assert!(!f.exists("crm/crm.db"), "a dry run writes nothing");
    assert!(!f.exists(".ferry"), "a dry run keeps no state");

    let first = f.run(&["export", "--to", "crm", "--input", "first.jsonl"]);
    snap_export!("export_first_run", first);
    assert_eq!(predicted(&dry), actual(&first));
    insta::assert_json_snapshot!(
        "export_first_destination",
        dump(&f, "crm/crm.db", "records")
    );

    // No change: nothing is sent and neither the state nor the destination is touched.
    let before = state_files(&f);
    let again = f.run(&["export", "--to", "crm", "--input", "first.jsonl"]);
    snap_export!("export_no_change", again);
    assert_eq!(
        before,
        state_files(&f),
        "a run with no change writes nothing"
    );

    f.write("second.jsonl", SECOND);
    let dry = f.run_line("export --to crm --input second.jsonl --dry-run");
    snap_export!("export_changes_dry_run", dry);
    assert_eq!(before, state_files(&f), "a dry run writes nothing");
    let second = f.run_line("export --to crm --input second.jsonl --errors problems.jsonl");
    snap_export!("export_changes", second);
    assert_eq!(predicted(&dry), actual(&second));
    insta::assert_snapshot!("export_changes_errors_file", f.read("problems.jsonl"));
    let dest = dump(&f, "crm/crm.db", "records");
    insta::assert_json_snapshot!("export_changes_destination", dest);
    // The changed key updated Dee's record: one Dee, under the new email.
    let dees: Vec<&Value> = dest["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["name"] == "Dee")
        .collect();
    assert_eq!(dees.len(), 1);
    assert_eq!(dees[0]["email"], "dee@new.example.com");

    // Everything that succeeded is now unchanged; only the invalid one is reported again.
    let third = f.run(&["export", "--to", "crm", "--input", "second.jsonl"]);
    let s = third.json();
    assert_eq!(
        (third.code, s["unchanged"].clone(), s["invalid"].clone()),
        (3, json!(3), json!(1))
    );
    assert_eq!(s["created"], 0);
    assert_eq!(
        s["skipped"], 1,
        "p3 is gone, so its toDelete has nothing left to delete"
    );
}

#[test]
fn export_partial_failure_is_retried_and_cleared_next_run() {
    let f = Folder::new();
    f.write(
        "crm/account.json",
        r#"{"connector": "sqlite", "path": "crm.db", "table": "contacts", "idField": "email"}"#,
    );
    {
        let conn = rusqlite::Connection::open(f.join("crm/crm.db")).unwrap();
        conn.execute_batch("CREATE TABLE contacts (email TEXT PRIMARY KEY, name TEXT);")
            .unwrap();
    }
    f.write(
        "profiles.csv",
        "id,email,name,phone,groups\np1,ada@example.com,Ada,,vip;news\np2,bob@example.com,Bob,+4712345678,news\n",
    );
    let first = f.run_line("export --to crm --input profiles.csv --errors problems.jsonl");
    snap_export!("export_partial_failure", first);
    insta::assert_snapshot!(
        "export_partial_failure_errors_file",
        f.read("problems.jsonl")
    );

    // The table gains the column: the next run sends Bob again, and only Bob.
    {
        let conn = rusqlite::Connection::open(f.join("crm/crm.db")).unwrap();
        conn.execute_batch("ALTER TABLE contacts ADD COLUMN phone TEXT;")
            .unwrap();
    }
    let retry = f.run_line("export --to crm --input profiles.csv --errors problems.jsonl");
    snap_export!("export_partial_failure_retried", retry);
    assert_eq!(f.read("problems.jsonl"), "", "no problem left");
    insta::assert_json_snapshot!(
        "export_partial_failure_destination",
        dump(&f, "crm/crm.db", "contacts")
    );
}

#[test]
fn export_mass_delete_guard_without_a_terminal_and_with_yes() {
    let f = folder();
    let all: String = (1..=10)
        .map(|i| format!("{{\"id\": \"p{i}\", \"properties\": {{\"email\": \"u{i}@example.com\"}}, \"groups\": [\"all\"]}}\n"))
        .collect();
    f.write("all.jsonl", &all);
    f.write(
        "two.jsonl",
        &all.lines()
            .take(2)
            .map(|l| format!("{l}\n"))
            .collect::<String>(),
    );
    assert_eq!(
        f.run(&["export", "--to", "crm", "--input", "all.jsonl"])
            .ok_json()["created"],
        10
    );

    let before = state_files(&f);
    let stopped = f.run_line("export --to crm --input two.jsonl --deletes delete");
    snap_export!("export_mass_delete_stopped", stopped);
    assert_eq!(
        before,
        state_files(&f),
        "the guard stops before sending anything"
    );

    let dry = f.run_line("export --to crm --input two.jsonl --deletes delete --dry-run");
    let done = f.run_line("export --to crm --input two.jsonl --deletes delete --yes");
    snap_export!("export_mass_delete_yes", done);
    assert_eq!(predicted(&dry), actual(&done));
    let dest = dump(&f, "crm/crm.db", "records");
    assert_eq!(dest["records"].as_array().unwrap().len(), 2);
    assert_eq!(
        dest["members"],
        json!(["all: u1@example.com", "all: u2@example.com"])
    );
}

#[test]
fn export_clear_mode_clears_absent_profiles_within_the_limit() {
    let f = folder();
    f.write("two.jsonl", "{\"id\": \"p1\", \"properties\": {\"email\": \"a@x.io\", \"name\": \"A\"}, \"groups\": [\"g\"]}\n{\"id\": \"p2\", \"properties\": {\"email\": \"b@x.io\", \"name\": \"B\"}, \"groups\": [\"g\"]}\n");
    f.write("one.jsonl", "{\"id\": \"p1\", \"properties\": {\"email\": \"a@x.io\", \"name\": \"A\"}, \"groups\": [\"g\"]}\n");
    f.run(&["export", "--to", "crm", "--input", "two.jsonl"])
        .ok_json();
    let dry = f.run_line("export --to crm --input one.jsonl --deletes clear --dry-run");
    let run = f.run_line("export --to crm --input one.jsonl --deletes clear");
    assert_eq!(predicted(&dry), actual(&run));
    assert_eq!(
        (
            run.json()["updated"].clone(),
            run.json()["groupsRemoved"].clone()
        ),
        (json!(1), json!(1))
    );
    insta::assert_json_snapshot!(
        "export_clear_destination",
        dump(&f, "crm/crm.db", "records")
    );
}

#[test]
fn export_counts_removed_memberships_the_same_with_clear_and_delete() {
    let all = "{\"id\": \"p1\", \"properties\": {\"email\": \"a@x.io\"}, \"groups\": [\"g\", \"h\"]}\n\
               {\"id\": \"p2\", \"properties\": {\"email\": \"b@x.io\", \"name\": \"B\"}, \"groups\": [\"g\", \"h\"]}\n";
    let one =
        "{\"id\": \"p1\", \"properties\": {\"email\": \"a@x.io\"}, \"groups\": [\"g\", \"h\"]}\n";
    let mut removed = Vec::new();
    for mode in ["clear", "delete"] {
        let f = folder();
        f.write("all.jsonl", all);
        f.write("one.jsonl", one);
        f.run(&["export", "--to", "crm", "--input", "all.jsonl"])
            .ok_json();
        let args = format!("export --to crm --input one.jsonl --deletes {mode} --yes");
        let dry = f.run_line(&format!("{args} --dry-run"));
        let run = f.run_line(&args);
        assert_eq!(
            predicted(&dry),
            actual(&run),
            "{mode}: the dry run predicts the run"
        );
        removed.push(run.ok_json()["groupsRemoved"].clone());
        // Either way p2 is in no group any more.
        assert_eq!(
            dump(&f, "crm/crm.db", "records")["members"],
            json!(["g: a@x.io", "h: a@x.io"]),
            "{mode}"
        );
    }
    assert_eq!(
        removed,
        [json!(2), json!(2)],
        "clear and delete count alike"
    );
}

/// A destination keyed by the profile id, where some profiles set the key
/// themselves: a key is held by the first profile that takes it, whether
/// it came from the profile's id or from its properties, in either order.
#[test]
fn a_key_is_held_by_the_first_profile_whether_it_is_its_id_or_a_property() {
    let f = Folder::new();
    f.write(
        "crm/account.json",
        r#"{"connector": "sqlite", "path": "crm.db"}"#,
    );
    f.write(
        "people.jsonl",
        "{\"id\": \"a\", \"properties\": {\"name\": \"A\"}}\n\
         {\"id\": \"b\", \"properties\": {\"id\": \"a\", \"name\": \"B\"}}\n\
         {\"id\": \"c\", \"properties\": {\"id\": \"z\", \"name\": \"C\"}}\n\
         {\"id\": \"z\", \"properties\": {\"name\": \"Z\"}}\n\
         {\"id\": \"d\", \"properties\": {\"name\": \"D\"}}\n",
    );
    let run = f.run_line("export --to crm --input people.jsonl --errors problems.jsonl");
    assert_eq!(run.code, 3, "{}", run.render());
    assert_eq!(run.json()["created"], 3, "{}", run.render());
    let problems: Vec<(String, String)> = f
        .read("problems.jsonl")
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            let text = v.to_string();
            let holder = ["profile a ", "profile c "]
                .iter()
                .find(|h| text.contains(*h))
                .map_or("?", |h| h.trim());
            (
                v["id"].as_str().unwrap_or_default().to_string(),
                holder.to_string(),
            )
        })
        .collect();
    assert_eq!(
        problems,
        [
            ("b".to_string(), "profile a".to_string()),
            ("z".to_string(), "profile c".to_string())
        ],
        "{}",
        f.read("problems.jsonl")
    );
    let ids = dump(&f, "crm/crm.db", "records")["records"].clone();
    assert_eq!(ids.as_array().map(Vec::len), Some(3), "{ids}");
}

#[test]
fn export_summarises_problem_profiles_by_reason_on_stderr() {
    let f = folder();
    let mut input = String::from(
        "{\"id\": \"p1\", \"properties\": {\"email\": \"ada@x.io\"}}\n\
         {\"id\": \"p1\", \"properties\": {\"email\": \"ada@x.io\"}}\n\
         {\"id\": \"p2\", \"properties\": {\"email\": \"ada@x.io\"}}\n\
         {\"id\": \"p3\", \"toDelete\": true}\n\
         not json\n",
    );
    // More profiles without the key than are named one by one.
    for i in 1..=11 {
        input.push_str(&format!(
            "{{\"id\": \"n{i}\", \"properties\": {{\"name\": \"No email {i}\"}}}}\n"
        ));
    }
    f.write("people.jsonl", &input);
    let run = f.run_line("export --to crm --input people.jsonl");
    snap_export!("export_problems_by_reason", run);
    assert_eq!(run.code, 3, "{}", run.render());
    let with_file = f.run_line("export --to crm --input people.jsonl --errors problems.jsonl");
    assert!(
        with_file
            .stderr
            .contains("skipped 1 profile (by design, not retried): 1 marked toDelete but never exported here; see "),
        "{}",
        with_file.render()
    );
    assert_eq!(f.read("problems.jsonl").lines().count(), 15);
}

#[test]
fn export_to_csv_skips_memberships_with_a_reason() {
    let f = Folder::new();
    f.write("p.json", r#"[{"id": "p1", "properties": {"email": "a@x.io"}, "groups": ["vip"]}, {"id": "p2", "properties": {"email": "b@x.io"}}]"#);
    let run = f.run_line("export --to csv:out.csv --input p.json --errors e.jsonl");
    snap_export!("export_csv_skips_groups", run);
    insta::assert_snapshot!("export_csv_file", f.read("out.csv"));
    assert!(f.read("e.jsonl").contains("\"kind\":\"skipped\""));
    // Skipped is not retried: the next run has nothing to send or report.
    let again = f.run(&["export", "--to", "csv:out.csv", "--input", "p.json"]);
    assert_eq!(
        (
            again.json()["unchanged"].clone(),
            again.json()["skipped"].clone()
        ),
        (json!(2), json!(0))
    );
}

#[test]
fn export_from_a_source_connector_and_from_in_json() {
    let f = Folder::new();
    f.write(
        "people.jsonl",
        "{\"id\": \"p1\", \"email\": \"a@x.io\", \"groups\": \"vip;news\"}\n",
    );
    let run = f.run_line("export --to sqlite:crm.db --from jsonl:people.jsonl");
    assert_eq!(
        (
            run.ok_json()["created"].clone(),
            run.json()["groupsAdded"].clone()
        ),
        (json!(1), json!(2))
    );
    insta::assert_json_snapshot!(
        "export_from_source_destination",
        dump(&f, "crm.db", "records")
    );

    f.write(
        "in.json",
        r#"{"export": {"profiles": [{"id": "p9", "properties": {"name": "Nine"}}]}}"#,
    );
    let run = f.run(&["export", "--to", "sqlite:crm.db"]);
    assert_eq!(run.ok_json()["created"], 1);
    let none = Folder::new();
    snap_export!(
        "export_no_profiles",
        none.run(&["export", "--to", "sqlite:crm.db"])
    );
}

#[test]
fn export_finds_a_record_gone_from_under_its_old_key() {
    let f = folder();
    f.write("first.jsonl", FIRST);
    f.run(&["export", "--to", "crm", "--input", "first.jsonl"])
        .ok_json();
    // Out of band: Dee's record is deleted; Bob's is re-created under a new email.
    f.run(&["-C", "crm", "delete", "--id", "dee@example.com"])
        .ok_json();
    f.run(&["-C", "crm", "delete", "--id", "bob@example.com"])
        .ok_json();
    f.run(&[
        "-C",
        "crm",
        "insert",
        "--value",
        r#"{"email": "bob@new.example.com", "name": "Robert"}"#,
    ])
    .ok_json();
    f.write(
        "moved.jsonl",
        &FIRST
            .replace("dee@example.com", "dee@new.example.com")
            .replace("bob@example.com", "bob@new.example.com"),
    );
    let run = f.run(&["export", "--to", "crm", "--input", "moved.jsonl"]);
    snap_export!("export_relocated", run);
    let dest = dump(&f, "crm/crm.db", "records");
    insta::assert_json_snapshot!("export_relocated_destination", dest);
    // Bob was found under his new email and updated, not duplicated.
    let bobs = dest["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["email"].as_str().unwrap_or("").starts_with("bob"))
        .count();
    assert_eq!(bobs, 1);
}

#[cfg(target_os = "linux")]
#[test]
fn export_mass_delete_guard_asks_on_a_terminal() {
    let f = folder();
    let all: String = (1..=14)
        .map(|i| {
            format!("{{\"id\": \"p{i}\", \"properties\": {{\"email\": \"u{i}@example.com\"}}}}\n")
        })
        .collect();
    f.write("all.jsonl", &all);
    f.write(
        "two.jsonl",
        &all.lines()
            .take(2)
            .map(|l| format!("{l}\n"))
            .collect::<String>(),
    );
    f.run(&["export", "--to", "crm", "--input", "all.jsonl"])
        .ok_json();
    let args = "export --to crm --input two.jsonl --deletes delete";
    let prompt = "Type y or 12, then Enter";
    let before = state_files(&f);

    // The answer is typed and ends with Enter; anything but y or the
    // count stops.
    let (code, screen) = crate::support::on_terminal(&f, args, prompt, "nope\r");
    assert_eq!(code, 1, "{screen}");
    insta::assert_snapshot!(
        "export_mass_delete_terminal_declined",
        crate::support::transcript(&screen, &f)
    );
    assert_eq!(before, state_files(&f), "a refused run sends nothing");

    // Ctrl-C at the question: nothing sent, the terminal as it was, 130.
    let (code, screen) = crate::support::on_terminal(&f, args, prompt, "1\u{3}");
    assert_eq!(code, 130, "{screen}");
    assert!(
        screen.contains("interrupted; stopped before deleting; nothing was sent"),
        "{screen}"
    );
    assert!(
        crate::support::cursor_shown_at_the_end(&screen),
        "{screen:?}"
    );
    assert_eq!(
        before,
        state_files(&f),
        "an interrupted question sends nothing"
    );

    // The count, typed, goes ahead.
    let (code, screen) = crate::support::on_terminal(&f, args, prompt, "12\r");
    assert_eq!(code, 0, "{screen}");
    assert!(screen.contains("\"deleted\": 12"), "{screen}");
    let left = || {
        dump(&f, "crm/crm.db", "records")["records"]
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!(left(), 2);

    // So does y: one profile more, then y and Enter.
    f.write(
        "one.jsonl",
        &all.lines().next().map(|l| format!("{l}\n")).unwrap(),
    );
    let args = "export --to crm --input one.jsonl --deletes delete --max-deletes 0";
    let (code, screen) = crate::support::on_terminal(&f, args, "Type y or 1", "y\r");
    assert_eq!(code, 0, "{screen}");
    assert_eq!(left(), 1);
}

#[test]
fn export_full_resends_everything_and_matches_its_dry_run() {
    let f = folder();
    f.write("first.jsonl", FIRST);
    f.run(&["export", "--to", "crm", "--input", "first.jsonl"])
        .ok_json();
    let dry = f.run_line("export --to crm --input first.jsonl --full --dry-run");
    let full = f.run(&["export", "--to", "crm", "--input", "first.jsonl", "--full"]);
    snap_export!("export_full", full);
    assert_eq!(predicted(&dry), actual(&full));
    insta::assert_json_snapshot!("export_full_destination", dump(&f, "crm/crm.db", "records"));
}

#[test]
fn export_maps_property_names_from_in_json() {
    let f = folder();
    f.write(
        "in.json",
        r#"{"export": {"map": {"mail": "email", "internalNote": null}}}"#,
    );
    f.write("p.jsonl", "{\"id\": \"p1\", \"properties\": {\"mail\": \"ada@example.com\", \"name\": \"Ada\", \"internalNote\": \"x\"}}\n");
    f.run(&["export", "--to", "crm", "--input", "p.jsonl"])
        .ok_json();
    assert_eq!(
        dump(&f, "crm/crm.db", "records")["records"],
        json!([{"email": "ada@example.com", "name": "Ada"}])
    );
    f.write("in.json", r#"{"export": {"map": {"mail": 5}}}"#);
    snap_export!(
        "export_bad_map",
        f.run(&["export", "--to", "crm", "--input", "p.jsonl"])
    );
}

/// `n` profiles in p.jsonl, and the export of them one profile per batch
/// into a file: slow enough to be stopped mid-run.
#[cfg(target_os = "linux")]
fn slow_export(f: &Folder, n: u64) -> [&'static str; 7] {
    let profiles: String = (0..n)
        .map(|i| format!("{{\"id\": \"p{i}\", \"properties\": {{\"n\": {i}}}}}\n"))
        .collect();
    f.write("p.jsonl", &profiles);
    [
        "export",
        "--to",
        "jsonl:out.jsonl",
        "--input",
        "p.jsonl",
        "--batch-size",
        "1",
    ]
}

#[cfg(target_os = "linux")]
#[test]
fn export_interrupted_saves_what_was_sent_and_the_next_run_sends_the_rest() {
    let f = Folder::new();
    let child = f.spawn(&slow_export(&f, 3000));
    let waited = std::time::Instant::now();
    while !f.exists("out.jsonl") && waited.elapsed() < std::time::Duration::from_secs(60) {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let killed = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("run the same command again"), "{stderr}");
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    let created = summary["created"].as_u64().unwrap();
    assert!(created > 0 && created < 3000, "{summary}");
    assert_eq!(
        summary["notSent"].as_u64().unwrap(),
        3000 - created,
        "{summary}"
    );

    let rest = f
        .run(&["export", "--to", "jsonl:out.jsonl", "--input", "p.jsonl"])
        .ok_json();
    assert_eq!(rest["created"].as_u64().unwrap(), 3000 - created);
    assert_eq!(rest["unchanged"].as_u64().unwrap(), created);
    let mut ids = jsonl_field(&f.read("out.jsonl"), "id");
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3000, "every profile once");
}

/// kill -9 half-way through an export: each chunk's state was saved while
/// the next one was sent, so the next run finds what the destination
/// already holds unchanged, sends again at most the last two chunks (ten
/// batches), and ends with every profile in the destination exactly once.
#[cfg(target_os = "linux")]
#[test]
fn export_killed_half_way_keeps_what_it_sent_and_the_next_run_sends_only_the_rest() {
    let f = Folder::new();
    let total = 3000u64;
    let args = slow_export(&f, total);
    let mut child = f.spawn(&args);
    let waited = std::time::Instant::now();
    let written = |f: &Folder| {
        std::fs::read_to_string(f.join("out.jsonl"))
            .map(|t| t.lines().count() as u64)
            .unwrap_or(0)
    };
    while written(&f) < 200 && waited.elapsed() < std::time::Duration::from_secs(60) {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().expect("kill -9");
    child.wait().expect("reap");
    let sent = written(&f);
    assert!(
        sent >= 200 && sent < total,
        "the kill landed mid-run: {sent} written"
    );

    let rest = f.run(&args[..5]).ok_json();
    let unchanged = rest["unchanged"].as_u64().unwrap();
    let created = rest["created"].as_u64().unwrap();
    // The state holds all that was sent but the last two chunks (10).
    assert!(
        unchanged + 10 >= sent,
        "{sent} sent, {unchanged} kept: {rest}"
    );
    assert_eq!(created + unchanged, total, "{rest}");
    let mut ids = jsonl_field(&f.read("out.jsonl"), "id");
    assert_eq!(ids.len() as u64, total, "no profile written twice");
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len() as u64, total, "every profile once");
}

#[test]
fn export_to_a_locked_destination_waits_then_reports_errors_not_rejects() {
    let f = Folder::new();
    f.write(
        "crm/account.json",
        r#"{"connector": "sqlite", "path": "crm.db", "busyTimeoutSecs": 0.2}"#,
    );
    let profiles = |plan: &str| {
        (1..=3)
            .map(|i| {
                json!({"id": format!("p{i}"), "properties": {"plan": plan}}).to_string() + "\n"
            })
            .collect::<String>()
    };
    f.write("profiles.jsonl", &profiles("free"));
    let args = ["export", "--to", "crm", "--input", "profiles.jsonl"];
    assert_eq!(f.run(&args).ok_json()["created"], 3);

    // Another program holds the database's write lock for the whole run.
    f.write("profiles.jsonl", &profiles("pro"));
    let other = rusqlite::Connection::open(f.join("crm/crm.db")).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let locked = f.run(&args);
    other.execute_batch("ROLLBACK").unwrap();
    let summary = locked.json();
    assert_eq!(
        (
            summary["errors"].clone(),
            summary["rejected"].clone(),
            summary["updated"].clone()
        ),
        (json!(3), json!(0), json!(0)),
        "{}",
        locked.render()
    );
    snap_export!("export_locked_destination", locked);

    // Nothing was recorded as sent: the next run sends the three updates.
    let after = f.run(&args).ok_json();
    assert_eq!(
        (after["updated"].clone(), after["errors"].clone()),
        (json!(3), json!(0))
    );
    assert_eq!(
        dump(&f, "crm/crm.db", "records")["records"]
            .as_array()
            .map(|r| r.iter().filter(|r| r["plan"] == "pro").count()),
        Some(3)
    );
}

/// The profiles of a run are checked across its chunks: a profile listed
/// twice and two profiles with one key (the sandbox's email) are invalid
/// wherever they sit in the input (here ten profiles a chunk, the repeats
/// chunks apart).
#[test]
fn repeats_are_found_across_chunks() {
    let sb = crate::support::Sandbox::start(&["--records", "0"]);
    let f = sb.folder("");
    let mut lines: Vec<String> = (0..40)
        .map(|i| {
            json!({"id": format!("p{i}"), "properties": {"email": format!("p{i}@x.com")}})
                .to_string()
        })
        .collect();
    lines.push(json!({"id": "p3", "properties": {"email": "again@x.com"}}).to_string());
    lines.push(json!({"id": "q1", "properties": {"email": "p5@x.com"}}).to_string());
    f.write("p.jsonl", &(lines.join("\n") + "\n"));
    let run = f.run(&[
        "export",
        "--to",
        ".",
        "--input",
        "p.jsonl",
        "--batch-size",
        "1",
        "--errors",
        "e.jsonl",
    ]);
    assert_eq!(run.code, 3, "{}", run.render());
    let out = run.json();
    assert_eq!(out["created"], 40, "{out}");
    assert_eq!(out["invalid"], 2, "{out}");
    let problems = f.read("e.jsonl");
    assert!(problems.contains("appears more than once"), "{problems}");
    assert!(
        problems.contains("profile p5 has the same email"),
        "{problems}"
    );
}

/// A state written before its rows kept a hash: the run hashes the rows as
/// it reads them, finds every profile unchanged and sends nothing.
#[test]
fn a_state_without_hashes_is_read_as_it_is() {
    let f = Folder::new();
    let lines: String = (0..50)
        .map(|i| {
            json!({"id": format!("p{i}"), "properties": {"n": i}, "groups": ["a"]}).to_string()
                + "\n"
        })
        .collect();
    f.write("p.jsonl", &lines);
    f.write(
        "crm/account.json",
        r#"{"connector": "sqlite", "path": "crm.db"}"#,
    );
    let args = ["export", "--to", "crm", "--input", "p.jsonl"];
    assert_eq!(f.run(&args).ok_json()["created"], 50);
    let state = state_db(&f);
    let db = rusqlite::Connection::open(&state).unwrap();
    db.execute("UPDATE profiles SET hash = NULL", []).unwrap();
    drop(db);
    let again = f.run(&args).ok_json();
    assert_eq!(again["unchanged"], 50, "{again}");
    assert_eq!(
        again["created"].as_u64().unwrap() + again["updated"].as_u64().unwrap(),
        0
    );
}

/// A JSON array is read element by element: a syntax error deep in it
/// names its line and column, and nothing is sent.
#[test]
fn a_broken_json_array_names_the_spot_and_sends_nothing() {
    let f = Folder::new();
    f.write(
        "p.json",
        "[\n{\"id\": \"p1\", \"properties\": {\"n\": 1}},\n{\"id\": \"p2\", \"properties\": {\"n\": 2}}\n{\"id\": \"p3\"}\n]\n",
    );
    let run = f.run(&["export", "--to", "jsonl:out.jsonl", "--input", "p.json"]);
    assert_eq!(run.code, 2, "{}", run.render());
    assert!(run.stderr.contains("line 4, column 1"), "{}", run.render());
    assert!(!f.exists("out.jsonl"));
}

/// A profile the table refuses (a CHECK constraint) is rejected alone: the
/// batch is written whole first, and again a profile at a time when one is
/// refused, so the others of its batch land.
#[test]
fn a_refused_profile_leaves_the_rest_of_its_batch_written() {
    let f = Folder::new();
    let db = rusqlite::Connection::open(f.join("crm.db")).unwrap();
    db.execute_batch(
        "CREATE TABLE people (id TEXT PRIMARY KEY, name TEXT, age INTEGER CHECK (age >= 0))",
    )
    .unwrap();
    drop(db);
    let lines: String = [("p1", 30), ("p2", -1), ("p3", 40)]
        .iter()
        .map(|(id, age)| {
            json!({"id": id, "properties": {"name": id, "age": age}}).to_string() + "\n"
        })
        .collect();
    f.write("p.jsonl", &lines);
    let run = f.run(&[
        "export",
        "--to",
        "sqlite:crm.db#people",
        "--input",
        "p.jsonl",
    ]);
    assert_eq!(run.code, 3, "{}", run.render());
    let out = run.json();
    assert_eq!(
        (out["created"].clone(), out["rejected"].clone()),
        (json!(2), json!(1)),
        "{out}"
    );
    let db = rusqlite::Connection::open(f.join("crm.db")).unwrap();
    let ids: Vec<String> = db
        .prepare("SELECT id FROM people ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(ids, ["p1", "p3"]);
}

/// A key passes from a profile that left the input to a new one: the
/// delete goes out first, so the new profile's create makes a record of
/// its own and the destination ends with it, not without it.
#[test]
fn deletes_go_out_before_creates_so_a_reused_key_survives() {
    let sb = crate::support::Sandbox::start(&["--records", "0"]);
    let f = sb.folder("");
    f.write(
        "p.jsonl",
        &(json!({"id": "p1", "properties": {"email": "a@x.com"}}).to_string() + "\n"),
    );
    let args = [
        "export",
        "--to",
        ".",
        "--input",
        "p.jsonl",
        "--deletes",
        "delete",
        "--yes",
    ];
    assert_eq!(f.run(&args).ok_json()["created"], 1);
    f.write(
        "p.jsonl",
        &(json!({"id": "p2", "properties": {"email": "a@x.com"}}).to_string() + "\n"),
    );
    let out = f.run(&args).ok_json();
    assert_eq!(
        (out["deleted"].clone(), out["created"].clone()),
        (json!(1), json!(1)),
        "{out}"
    );
    let found = sb.get("/customers?email=a%40x.com");
    assert_eq!(found["data"].as_array().map(Vec::len), Some(1), "{found}");
    // And the next run finds it unchanged, in the state as in the destination.
    assert_eq!(f.run(&args).ok_json()["unchanged"], 1);
}

/// A state an older ferry wrote (no hash column, no index): a dry run
/// reads it as it is and changes nothing; a real run upgrades it, finds
/// every profile unchanged and writes their hashes back.
#[test]
fn an_older_state_is_read_by_a_dry_run_and_upgraded_by_a_run() {
    let f = Folder::new();
    let lines: String = (0..20)
        .map(|i| json!({"id": format!("p{i}"), "properties": {"n": i}}).to_string() + "\n")
        .collect();
    f.write("p.jsonl", &lines);
    let args = ["export", "--to", "jsonl:out.jsonl", "--input", "p.jsonl"];
    f.run(&args).ok_json();
    let state = state_db(&f);
    let db = rusqlite::Connection::open(&state).unwrap();
    db.execute_batch("DROP INDEX profiles_hash; ALTER TABLE profiles DROP COLUMN hash")
        .unwrap();
    let columns = |db: &rusqlite::Connection| -> Vec<String> {
        db.prepare("SELECT name FROM pragma_table_info('profiles')")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    let before = columns(&db);
    let dry = f.run(&[&args[..], &["--dry-run"]].concat()).ok_json();
    assert_eq!(dry["predicted"]["unchanged"], 20, "{dry}");
    assert_eq!(columns(&db), before, "a dry run changes nothing");
    let run = f.run(&args).ok_json();
    assert_eq!(run["unchanged"], 20, "{run}");
    let hashed: i64 = db
        .query_row("SELECT COUNT(hash) FROM profiles", [], |r| r.get(0))
        .unwrap();
    assert_eq!(hashed, 20);
}

/// A connector folder whose path holds `#`, `?` and `%`: the state is
/// still read back (it is attached by a URI, escaped).
#[test]
fn a_folder_with_uri_characters_finds_its_state() {
    let f = Folder::new();
    let dir = "a#b?c%20d";
    f.write(
        &format!("{dir}/p.jsonl"),
        &(json!({"id": "p1", "properties": {"n": 1}}).to_string() + "\n"),
    );
    let input = format!("{dir}/p.jsonl");
    let args = [
        "-C",
        dir,
        "export",
        "--to",
        "jsonl:out.jsonl",
        "--input",
        &input,
    ];
    assert_eq!(f.run(&args).ok_json()["created"], 1);
    assert_eq!(f.run(&args).ok_json()["unchanged"], 1);
}

/// The first pass reads a JSON line from its text alone when it can vouch
/// for what the built profile would hash to, and builds the profile when
/// not (escapes, floats, nested values, a number id): the same profiles
/// as a JSON array, which is always built, end every run the same way.
#[test]
fn json_lines_read_light_and_a_json_array_read_built_decide_the_same() {
    let runs: [Vec<Value>; 3] = [
        vec![
            json!({"id": "p1", "properties": {"name": "Ada", "age": 36}, "groups": ["vip", "news"]}),
            json!({"id": "p2", "properties": {"name": "caf\u{e9}", "note": "say \"hi\""}}),
            json!({"id": "p3", "properties": {"name": "Cy", "score": 1.5}, "groups": "a; b|a"}),
            json!({"id": "p4", "properties": {"name": "Dee", "address": {"city": "Oslo"}}}),
            json!({"id": "p1", "properties": {"name": "Ada again"}}),
            json!({"id": "p5", "properties": {"id": "p1", "name": "Holds p1's key"}}),
            json!({"id": "p6", "toDelete": true}),
            json!({"id": 7, "properties": {"name": "Seven", "n": -12, "flag": true, "gone": null}}),
            json!({"id": "p8", "properties": {"id": "k8", "name": "Keyed"}, "groups": []}),
        ],
        vec![
            json!({"id": "p1", "properties": {"name": "Ada L.", "age": 36}, "groups": ["vip"]}),
            json!({"id": "p2", "properties": {"name": "caf\u{e9}", "note": "say \"hi\""}}),
            json!({"id": "p3", "properties": {"name": "Cy", "score": 1.5}, "groups": "a; b|a"}),
            json!({"id": "p4", "toDelete": true}),
            json!({"id": 7, "properties": {"name": "Seven", "n": -12, "flag": true, "gone": null}}),
            json!({"id": "p8", "properties": {"id": "k8", "name": "Keyed"}, "groups": ["g"]}),
            json!({"id": "p9", "properties": {"id": "k8", "name": "Wants k8"}}),
        ],
        // Nothing changed since the second run.
        Vec::new(),
    ];
    let lines = Folder::new();
    let array = Folder::new();
    for f in [&lines, &array] {
        f.write(
            "crm/account.json",
            r#"{"connector": "sqlite", "path": "crm.db"}"#,
        );
    }
    let read = regex::Regex::new(r"(\d+) profiles read \((\d+) from their text alone\)").unwrap();
    let mut last = Vec::new();
    for (n, profiles) in runs.iter().enumerate() {
        let profiles = if profiles.is_empty() { &last } else { profiles };
        let text: Vec<String> = profiles.iter().map(Value::to_string).collect();
        lines.write("p.jsonl", &(text.join("\n") + "\n"));
        array.write("p.json", &format!("[{}]", text.join(",\n")));
        let args = |input: &'static str| {
            vec![
                "-v",
                "export",
                "--to",
                "crm",
                "--input",
                input,
                "--deletes",
                "delete",
                "--yes",
                "--errors",
                "e.jsonl",
            ]
        };
        let light = lines.run(&args("p.jsonl"));
        let built = array.run(&args("p.json"));
        assert_eq!(
            actual(&light),
            actual(&built),
            "run {n}: {}",
            light.render()
        );
        assert_eq!(light.code, built.code, "run {n}");
        assert_eq!(lines.read("e.jsonl"), array.read("e.jsonl"), "run {n}");
        assert_eq!(
            dump(&lines, "crm/crm.db", "records"),
            dump(&array, "crm/crm.db", "records"),
            "run {n}"
        );
        // Both paths were taken: most lines read light, the rest built.
        let counts = |run: &Run| {
            let c = read.captures(&run.stderr).expect("the verbose counts");
            (c[1].parse::<u64>().unwrap(), c[2].parse::<u64>().unwrap())
        };
        let (total, from_text) = counts(&light);
        assert_eq!(counts(&built), (total, 0), "run {n}");
        assert!(
            from_text > 0 && from_text < total,
            "run {n}: {from_text} of {total} read light"
        );
        last = profiles.clone();
    }
    let third = lines.run(&["export", "--to", "crm", "--input", "p.jsonl"]);
    assert_eq!(third.json()["unchanged"], 5, "{}", third.render());
}

/// A `toDelete` mark whose id came earlier in the input is reported where
/// it stands among the other problems, not with the deletes that go first.
#[test]
fn a_repeated_to_delete_mark_is_reported_in_its_place() {
    let f = Folder::new();
    f.write(
        "crm/account.json",
        r#"{"connector": "sqlite", "path": "crm.db"}"#,
    );
    f.write(
        "p.jsonl",
        "{\"id\": \"p1\", \"properties\": {\"n\": 1}}\n\
         {\"id\": \"p2\", \"properties\": 5}\n\
         {\"id\": \"p1\", \"toDelete\": true}\n\
         {\"id\": \"p3\", \"properties\": {\"n\": 3}}\n\
         {\"id\": \"p4\", \"properties\": [1]}\n",
    );
    let run = f.run_line("export --to crm --input p.jsonl --errors e.jsonl");
    assert_eq!(run.code, 3, "{}", run.render());
    assert_eq!(run.json()["created"], 2, "{}", run.render());
    assert_eq!(
        jsonl_field(&f.read("e.jsonl"), "id"),
        ["p2", "p1", "p4"],
        "{}",
        f.read("e.jsonl")
    );
}

/// A profile whose line cannot be sent (`"groups": 5`) is still in the
/// input: with `--deletes delete` it is reported invalid, and neither the
/// dry run nor the run deletes it, even beside another line with its id.
#[test]
fn an_invalid_profile_is_not_deleted_as_gone_from_the_input() {
    let f = folder();
    f.write("first.jsonl", FIRST);
    f.run(&["export", "--to", "crm", "--input", "first.jsonl"])
        .ok_json();
    let broken: String = FIRST
        .lines()
        .map(|l| match l {
            l if l.contains("\"p2\"") => l.replace("\"groups\": [\"news\"]", "\"groups\": 5"),
            l if l.contains("\"p3\"") => format!("{{\"id\": \"p3\", \"toDelete\": 7}}\n{l}"),
            l => l.to_string(),
        })
        .map(|l| l + "\n")
        .collect();
    f.write("broken.jsonl", &broken);
    let args = [
        "export",
        "--to",
        "crm",
        "--input",
        "broken.jsonl",
        "--deletes",
        "delete",
    ];
    let dry = f.run_line("export --to crm --input broken.jsonl --deletes delete --dry-run");
    let dry_json = dry.json();
    assert_eq!(dry_json["predicted"]["deleted"], 0, "{}", dry.render());
    let run = f.run(&args);
    let summary = run.json();
    assert_eq!(
        (
            summary["deleted"].clone(),
            summary["invalid"].clone(),
            summary["unchanged"].clone()
        ),
        (json!(0), json!(2), json!(3)),
        "{}",
        run.render()
    );
    let emails: Vec<Value> = dump(&f, "crm/crm.db", "records")["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["email"].clone())
        .collect();
    assert_eq!(emails.len(), 4, "{emails:?}");
}
