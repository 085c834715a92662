//! The `postgres` connector against a real, throwaway PostgreSQL server
//! (support/postgres.rs): every action, import both ways with resume, a
//! batch with a record the database refuses and an id repeated, and the
//! password kept out of every output.

use serde_json::{json, Value};

use crate::support::postgres::{Database, Server};
use crate::support::{json_lines, Folder, Run};

/// A password that must never be printed, raw or as the URL spells it;
/// trust authentication lets the server accept it, so it travels on every
/// connection.
const CANARY: &str = "pw@canary#5e/3f";
const CANARY_IN_URL: &str = "pw%40canary%235e%2F3f";

/// A connector folder for a new database's `table`.
fn folder(table: &str) -> (Folder, Database) {
    let db = Server::get().database();
    let f = Folder::new();
    f.write(
        "account.json",
        &json!({"connector": "postgres", "url": with_password(&db.url), "table": table})
            .to_string(),
    );
    (f, db)
}

/// `url` with the canary password added.
fn with_password(url: &str) -> String {
    url.replacen("@", &format!(":{CANARY_IN_URL}@"), 1)
}

/// The run rendered for a snapshot as import's tests render it, with the
/// database's name, the user and the server's version filtered.
fn render(run: &Run, db: &Database) -> String {
    run.hides(&[CANARY, CANARY_IN_URL, "canary"], "the password");
    filtered(&crate::import::render(run), db)
}

/// `text` with the database's name, the user, the port and the server's
/// version filtered.
fn filtered(text: &str, db: &Database) -> String {
    let text = crate::support::filter(text, std::path::Path::new("/nonexistent"))
        .replace(&db.name, "[DB]")
        .replace(&format!("//{}@", Server::get().user), "//[USER]@");
    regex::Regex::new(r#""PostgreSQL [^"]+""#)
        .expect("valid filter")
        .replace_all(&text, r#""PostgreSQL [VERSION]""#)
        .into_owned()
}

fn people(n: usize) -> String {
    (1..=n)
        .map(|i| {
            json!({"id": format!("p{i:05}"), "name": format!("Person {i}"), "age": 20 + i % 50})
                .to_string()
                + "\n"
        })
        .collect()
}

#[test]
fn every_action_on_a_table_ferry_creates() {
    let (f, db) = folder("contacts");
    let check = f.run(&["check"]);
    insta::assert_snapshot!("postgres_check_before_the_table", render(&check, &db));
    f.write(
        "in.json",
        r#"{"insert": {"value": {"id": "c1", "name": "Ada", "tags": ["a"]}}}"#,
    );
    let insert = f.run(&["insert"]);
    assert_eq!(insert.ok_json()["id"], "c1", "{}", render(&insert, &db));
    let again = f.run(&["insert"]);
    insta::assert_snapshot!("postgres_insert_an_existing_id", render(&again, &db));
    let patch = f.run(&[
        "patch",
        "--id",
        "c1",
        "--value",
        r#"{"name": "Ada Lovelace", "born": 1815}"#,
    ]);
    assert_eq!(patch.ok_json(), json!({"id": "c1"}));
    let get = f.run(&["get", "--id", "c1"]);
    assert_eq!(
        get.ok_json(),
        json!({"id": "c1", "name": "Ada Lovelace", "tags": ["a"], "born": 1815})
    );
    assert_eq!(
        db.sql("SELECT data->>'name' FROM contacts WHERE id = 'c1'"),
        "Ada Lovelace"
    );
    let check = f.run(&["check"]);
    insta::assert_snapshot!("postgres_check_with_the_table", render(&check, &db));
    let delete = f.run(&["delete", "--id", "c1"]);
    assert_eq!(delete.code, 0, "{}", render(&delete, &db));
    let gone = f.run(&["get", "--id", "c1"]);
    insta::assert_snapshot!("postgres_get_a_deleted_record", render(&gone, &db));
    // The row stays as a tombstone, for getupdates.
    assert_eq!(
        db.sql("SELECT deleted, data IS NULL FROM contacts WHERE id = 'c1'"),
        "t|t"
    );
}

#[test]
fn import_from_jsonl_and_back_gives_the_same_records() {
    let (f, db) = folder("people");
    f.write("people.jsonl", &people(2_345));
    let into = f.run_line("import --from jsonl:people.jsonl --to . --batch-size 500");
    let summary = into.ok_json();
    assert_eq!(summary["written"], 2_345, "{}", render(&into, &db));
    assert_eq!(db.sql("SELECT count(*) FROM people"), "2345");
    let back = f.run_line("import --from . --to jsonl:back.jsonl --batch-size 400");
    assert_eq!(back.ok_json()["written"], 2_345, "{}", render(&back, &db));
    assert_eq!(
        json_lines(&f.read("back.jsonl")),
        json_lines(&people(2_345))
    );
}

#[test]
fn a_postgres_url_is_a_target_and_its_password_stays_out_of_the_checkpoint() {
    let db = Server::get().database();
    let f = Folder::new();
    f.write("people.jsonl", &people(30));
    let target = format!("{}#people", with_password(&db.url));
    let run = f.run(&["import", "--from", "jsonl:people.jsonl", "--to", &target]);
    assert_eq!(run.ok_json()["written"], 30, "{}", render(&run, &db));
    insta::assert_snapshot!("postgres_import_into_a_url", render(&run, &db));
    let checkpoints = std::fs::read_dir(f.join(".ferry")).expect("a .ferry folder");
    for entry in checkpoints.flatten() {
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        assert!(
            !text.contains("canary"),
            "{} holds the password",
            entry.path().display()
        );
    }
    assert_eq!(db.sql("SELECT count(*) FROM people"), "30");
}

#[test]
fn a_refused_record_is_rejected_alone_and_a_repeated_id_is_written_once() {
    let (f, db) = folder("people");
    f.write(
        "in.jsonl",
        concat!(
            "{\"id\": \"a\", \"n\": 1}\n",
            // jsonb cannot hold the NUL character.
            "{\"id\": \"b\", \"note\": \"nul \\u0000 here\"}\n",
            "{\"id\": \"c\", \"n\": 3}\n",
            "{\"id\": \"a\", \"n\": 4}\n",
        ),
    );
    let run = f.run_line("import --from jsonl:in.jsonl --to . --rejects rejects.jsonl");
    insta::assert_snapshot!("postgres_import_with_a_refused_record", render(&run, &db));
    assert_eq!(
        db.sql("SELECT id, data->>'n' FROM people ORDER BY id"),
        "a|4\nc|3"
    );
    let rejects = json_lines(&f.read("rejects.jsonl"));
    assert_eq!(rejects.len(), 1);
    assert_eq!(rejects[0]["record"]["id"], "b");
    assert!(
        rejects[0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("\\u0000")),
        "{}",
        rejects[0]
    );
}

/// A folder with 50,000 people to import into its `people` table in
/// batches of 100 (`extra` added), and the import's arguments.
fn long_import(extra: &[&'static str]) -> (Folder, Database, Vec<&'static str>) {
    let (f, db) = folder("people");
    f.write("people.jsonl", &people(50_000));
    let mut args = vec![
        "import",
        "--from",
        "jsonl:people.jsonl",
        "--to",
        ".",
        "--batch-size",
        "100",
    ];
    args.extend(extra);
    (f, db, args)
}

/// The rows of `people`, 0 before the table exists.
fn people_rows(db: &Database) -> u64 {
    if db.sql("SELECT to_regclass('people') IS NULL") == "t" {
        return 0;
    }
    db.sql("SELECT count(*) FROM people").parse().unwrap()
}

/// After a long import was cut short: `--resume` continues where it
/// stopped (it reads fewer than all) and the table ends an exact copy.
fn resume_to_an_exact_copy(f: &Folder, db: &Database, args: &[&str]) {
    let written = people_rows(db);
    assert!(written < 50_000, "the run was not cut short: {written}");
    let resumed = f.run(&[args, &["--resume"]].concat());
    assert_eq!(resumed.code, 0, "{}", render(&resumed, db));
    let read = resumed.json()["read"].as_u64().unwrap();
    assert!(
        read < 50_000,
        "the resumed run started over: it read {read}"
    );
    assert_eq!(db.sql("SELECT count(*) FROM people"), "50000");
    let back = f.run(&["import", "--from", ".", "--to", "jsonl:back.jsonl"]);
    assert_eq!(back.ok_json()["written"], 50_000);
    assert_eq!(
        json_lines(&f.read("back.jsonl")),
        json_lines(&people(50_000))
    );
}

/// Wait until `people` has more rows than `before`.
fn wait_for_rows(db: &Database, before: u64) {
    let start = std::time::Instant::now();
    while people_rows(db) == before {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(30),
            "no batch was written"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

#[test]
fn a_killed_import_resumes_to_an_exact_copy() {
    let (f, db, args) = long_import(&[]);
    // kill -9 at a few moments after a run has written more rows; each
    // run resumes from the last.
    for (round, delay_ms) in [0, 60, 30].into_iter().enumerate() {
        let args = if round == 0 {
            args.to_vec()
        } else {
            [&args[..], &["--resume"]].concat()
        };
        let before = people_rows(&db);
        let mut child = f.spawn(&args);
        wait_for_rows(&db, before);
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        child.kill().expect("kill -9");
        let _ = child.wait();
    }
    resume_to_an_exact_copy(&f, &db, &args);
}

#[test]
fn a_database_that_is_not_there_is_named_without_the_password() {
    let db = Server::get().database();
    let f = Folder::new();
    let url = with_password(&db.url).replace(&db.name, "nodb");
    f.write(
        "account.json",
        &json!({"connector": "postgres", "url": url}).to_string(),
    );
    let run = f.run(&["get", "--id", "x"]);
    insta::assert_snapshot!("postgres_no_such_database", render(&run, &db));
    f.write(
        "account.json",
        &json!({"connector": "postgres", "url": "mysql://x"}).to_string(),
    );
    let bad = f.run(&["check"]);
    insta::assert_snapshot!("postgres_not_a_url", render(&bad, &db));
}

#[test]
fn getupdates_reports_inserts_updates_and_deletes_since_its_token() {
    let (f, db) = folder("people");
    let empty = f.run(&["getupdates"]);
    assert_eq!(
        empty.ok_json(),
        json!({"nextSync": "0", "entries": []}),
        "{}",
        render(&empty, &db)
    );
    f.write("people.jsonl", &people(3));
    f.run(&["import", "--from", "jsonl:people.jsonl", "--to", "."])
        .ok_json();
    let first = f.run(&["getupdates"]).ok_json();
    assert_eq!(first["entries"].as_array().map(Vec::len), Some(3));
    let token = first["nextSync"].as_str().unwrap().to_string();
    let none = f.run(&["getupdates", "--last-sync", &token]).ok_json();
    assert_eq!(none, json!({"nextSync": token, "entries": []}));
    f.run(&["insert", "--value", r#"{"id": "p00009", "name": "New"}"#])
        .ok_json();
    f.run(&["patch", "--id", "p00001", "--value", r#"{"age": 99}"#])
        .ok_json();
    assert_eq!(f.run(&["delete", "--id", "p00002"]).code, 0);
    let run = f.run(&["getupdates", "--last-sync", &token]);
    insta::assert_snapshot!("postgres_getupdates_since_token", render(&run, &db));
    let next = run.json()["nextSync"].as_str().unwrap().to_string();
    let after = f.run(&["getupdates", "--last-sync", &next]).ok_json();
    assert_eq!(after["entries"], json!([]), "changes seen twice");
    let bad = f.run(&["getupdates", "--last-sync", "yesterday"]);
    insta::assert_snapshot!("postgres_getupdates_bad_token", render(&bad, &db));
}

/// One batch writes its records in one transaction, so they share one
/// update time; read two at a time by token, none is skipped. A write that
/// drew its change number before another but commits after it is not
/// lost either: the read waits for it.
#[test]
fn getupdates_skips_no_change_sharing_a_time_or_committed_late() {
    let (f, db) = folder("people");
    f.write("people.jsonl", &people(7));
    f.run(&["import", "--from", "jsonl:people.jsonl", "--to", "."])
        .ok_json();
    assert_eq!(db.sql("SELECT count(DISTINCT updated_at) FROM people"), "1");
    let mut token = "0".to_string();
    let mut seen = Vec::new();
    loop {
        let page = f
            .run(&["getupdates", "--last-sync", &token, "--limit", "2"])
            .ok_json();
        let entries = page["entries"].as_array().unwrap().clone();
        token = page["nextSync"].as_str().unwrap().to_string();
        if entries.is_empty() {
            break;
        }
        seen.extend(
            entries
                .iter()
                .map(|e| e["id"].as_str().unwrap().to_string()),
        );
    }
    let ids: Vec<String> = (1..=7).map(|i| format!("p{i:05}")).collect();
    assert_eq!(seen, ids);

    // A write that draws the next change number and holds its transaction
    // open (psql reads its statements from a pipe) while a later write
    // commits; getupdates then waits for it, and only then answers.
    use std::io::Write;
    let server = Server::get();
    let mut slow = server
        .psql_command(&db.name)
        .arg("-q")
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("psql");
    let mut to_psql = slow.stdin.take().expect("psql's stdin");
    writeln!(
        to_psql,
        "BEGIN; INSERT INTO people (id, data, seq, created_seq) \
         SELECT 'late', '{{\"id\": \"late\"}}', s, s FROM nextval('people_ferry_seq') AS s;"
    )
    .expect("write to psql");
    to_psql.flush().expect("flush");
    let locks = |mode: &str, granted: bool| {
        db.sql(&format!(
            "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation \
             WHERE c.relname = 'people' AND l.mode = '{mode}' AND l.granted = {granted}"
        ))
    };
    let start = std::time::Instant::now();
    while locks("RowExclusiveLock", true) == "0" {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(10),
            "the slow write never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let quick = f.run(&["insert", "--value", r#"{"id": "quick"}"#]);
    assert_eq!(quick.code, 0, "{}", render(&quick, &db));
    let reader = f.spawn(&["getupdates", "--last-sync", &token]);
    while locks("ShareLock", false) == "0" {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(20),
            "getupdates never waited for the write in progress"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    writeln!(to_psql, "COMMIT;").expect("write to psql");
    drop(to_psql);
    assert!(slow.wait().expect("psql ends").success());
    let out = reader.wait_with_output().expect("getupdates ends");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let page: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let ids: Vec<&str> = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["late", "quick"], "{page}");
}

/// The table's live records and memberships, in the shape of the sqlite
/// export tests' dump.
fn dump(db: &Database, table: &str) -> Value {
    let records: Vec<Value> = db
        .sql(&format!(
            "SELECT data FROM {table} WHERE NOT deleted ORDER BY data->>'email'"
        ))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let members: Vec<Value> = db
        .sql(&format!(
            "SELECT group_name || ': ' || record_id FROM {table}_members ORDER BY 1"
        ))
        .lines()
        .map(|l| json!(l))
        .collect();
    json!({"records": records, "members": members})
}

/// Export keyed by email into postgres and into sqlite, first run then
/// every kind of change (a renamed key among them): the two destinations
/// end the same, and the summaries agree.
#[test]
fn export_into_postgres_ends_as_export_into_sqlite() {
    let db = Server::get().database();
    let f = crate::export::folder();
    f.write(
        "pg/account.json",
        &json!({"connector": "postgres", "url": with_password(&db.url), "table": "crm", "idField": "email"})
            .to_string(),
    );
    f.write("first.jsonl", crate::export::FIRST);
    f.write("second.jsonl", crate::export::SECOND);
    for input in ["first.jsonl", "second.jsonl", "second.jsonl"] {
        let pg = f.run(&["export", "--to", "pg", "--input", input]);
        let lite = f.run(&["export", "--to", "crm", "--input", input]);
        pg.hides(&["canary"], "the password");
        let counts = |run: &Run| {
            let mut s = run.json();
            for volatile in ["elapsedSecs", "profilesPerSecond", "state", "destination"] {
                s.as_object_mut().unwrap().remove(volatile);
            }
            (run.code, s)
        };
        assert_eq!(counts(&pg), counts(&lite), "{}", render(&pg, &db));
        assert_eq!(
            dump(&db, "crm"),
            crate::export::dump(&f, "crm/crm.db", "records"),
            "after {input}"
        );
    }
    let dees = db.sql("SELECT count(*) FROM crm WHERE NOT deleted AND data->>'name' = 'Dee'");
    assert_eq!(dees, "1");
}

/// A table that existed before ferry is used as it is: its typed columns
/// are the fields import validates against, the database converts and
/// checks each value (a refused one rejects that record alone, with the
/// database's message), pages go by keyset on its own id type, and it has
/// no getupdates.
#[test]
fn an_existing_table_with_typed_columns_is_used_as_it_is() {
    let (f, db) = folder("customers");
    db.sql(
        "CREATE TABLE customers (id integer PRIMARY KEY, email text NOT NULL,
             age integer CHECK (age >= 0), vip boolean DEFAULT false, signed_up date, meta jsonb)",
    );
    let check = f.run(&["check"]);
    insta::assert_snapshot!("postgres_check_an_existing_table", render(&check, &db));
    f.write(
        "in.jsonl",
        concat!(
            "{\"id\": 1, \"email\": \"ada@example.com\", \"age\": 36, \"signed_up\": \"2026-01-02\", \"meta\": {\"tier\": \"gold\"}}\n",
            "{\"id\": 2, \"email\": \"bob@example.com\", \"vip\": true}\n",
            "{\"id\": 3, \"email\": \"cy@example.com\", \"age\": -1}\n",
            "{\"id\": 4, \"email\": \"dee@example.com\", \"signed_up\": \"2026-02-30\"}\n",
            "{\"id\": 5, \"email\": \"eve@example.com\", \"age\": \"old\"}\n",
            "{\"id\": 6, \"email\": \"fay@example.com\", \"city\": \"Oslo\"}\n",
            "{\"id\": 10, \"email\": \"gus@example.com\"}\n",
        ),
    );
    let run = f.run_line("import --from jsonl:in.jsonl --to . --rejects rejects.jsonl");
    insta::assert_snapshot!("postgres_import_into_an_existing_table", render(&run, &db));
    assert_eq!(
        db.sql("SELECT id, email, age, vip, signed_up, meta FROM customers ORDER BY id"),
        "1|ada@example.com|36|f|2026-01-02|{\"tier\": \"gold\"}\n\
         2|bob@example.com||t||\n\
         4|dee@example.com||f||\n\
         5|eve@example.com||f||\n\
         10|gus@example.com||f||"
    );
    let reasons: Vec<String> = json_lines(&f.read("rejects.jsonl"))
        .iter()
        .map(|r| format!("{}: {}", r["record"]["id"], r["reason"].as_str().unwrap()))
        .collect();
    insta::assert_snapshot!(
        "postgres_existing_table_rejects",
        filtered(&reasons.join("\n"), &db)
    );

    let get = f.run(&["get", "--id", "1"]);
    assert_eq!(
        get.ok_json(),
        json!({"id": "1", "email": "ada@example.com", "age": 36, "vip": false,
               "signed_up": "2026-01-02", "meta": {"tier": "gold"}})
    );
    let patch = f.run(&["patch", "--id", "2", "--value", r#"{"age": 41}"#]);
    assert_eq!(patch.code, 0, "{}", render(&patch, &db));
    assert_eq!(db.sql("SELECT age FROM customers WHERE id = 2"), "41");
    let missing = f.run(&["get", "--id", "abc"]);
    assert_eq!(missing.code, 1, "{}", render(&missing, &db));
    assert_eq!(f.run(&["delete", "--id", "10"]).code, 0);
    assert_eq!(db.sql("SELECT count(*) FROM customers WHERE id = 10"), "0");
    let updates = f.run(&["getupdates"]);
    insta::assert_snapshot!(
        "postgres_getupdates_on_an_existing_table",
        render(&updates, &db)
    );

    // Read back in the id column's own order, by keyset, a page a record.
    let back = f.run_line("import --from . --to jsonl:back.jsonl --batch-size 1");
    assert_eq!(back.ok_json()["written"], 4, "{}", render(&back, &db));
    let ids: Vec<Value> = json_lines(&f.read("back.jsonl"))
        .iter()
        .map(|r| r["id"].clone())
        .collect();
    assert_eq!(ids, [json!("1"), json!("2"), json!("4"), json!("5")]);
}

/// The server drops the connection mid-batch: the batch fails, the run
/// stops with its resume command and rejects nothing; resuming ends with an
/// exact copy.
#[test]
fn a_connection_dropped_mid_run_stops_resumably() {
    let (f, db, args) = long_import(&["--rejects", "rejects.jsonl"]);
    let child = f.spawn(&args);
    wait_for_rows(&db, 0);
    let start = std::time::Instant::now();
    // Between batches ferry opens a new connection; the server keeps
    // dropping them until one goes in the middle of a batch.
    let mut child = child;
    while child.try_wait().expect("the import runs").is_none() {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(60),
            "the import never stopped"
        );
        db.sql(&format!(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
              WHERE datname = '{}' AND pid <> pg_backend_pid()",
            db.name
        ));
    }
    let out = child.wait_with_output().expect("the import ends");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("--resume"), "{stderr}");
    assert!(
        !f.exists("rejects.jsonl") || f.read("rejects.jsonl").is_empty(),
        "a lost connection rejected records: {}",
        f.read("rejects.jsonl")
    );
    resume_to_an_exact_copy(&f, &db, &args);
}

/// With sslmode require, ferry speaks TLS and verifies the server's
/// certificate: against `sslrootcert` it connects (as a role the server
/// refuses without TLS); without it, the self-signed certificate is
/// refused with a hint; without TLS, the server refuses the role.
#[test]
fn tls_verifies_the_server_certificate() {
    use crate::support::postgres::TLS_ONLY;
    let server = Server::get();
    let db = server.database();
    let f = Folder::new();
    let url = format!(
        "postgres://{TLS_ONLY}@127.0.0.1:{}/{}",
        server.port, db.name
    );
    let ca = server.ca.display().to_string();
    let account = |extra: Value| {
        let mut a = json!({"connector": "postgres", "url": url, "table": "people"});
        a.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        f.write("account.json", &a.to_string());
    };
    account(json!({"sslmode": "require", "sslrootcert": ca}));
    let ok = f.run(&["insert", "--value", r#"{"id": "a", "n": 1}"#]);
    assert_eq!(ok.code, 0, "{}", render(&ok, &db));
    assert_eq!(db.sql("SELECT data->>'n' FROM people WHERE id = 'a'"), "1");

    account(json!({"sslmode": "require"}));
    let unknown = f.run(&["check"]);
    assert_eq!(unknown.code, 1, "{}", render(&unknown, &db));
    assert!(
        unknown.stderr.contains("hint: set \"sslrootcert\""),
        "{}",
        render(&unknown, &db)
    );

    account(json!({"sslmode": "disable"}));
    let plain = f.run(&["check"]);
    insta::assert_snapshot!("postgres_tls_only_role_without_tls", render(&plain, &db));

    // The URL may say it instead (as libpq's URLs do).
    f.write(
        "account.json",
        &json!({"connector": "postgres", "table": "people",
                "url": format!("{url}?sslmode=verify-full&sslrootcert={ca}")})
        .to_string(),
    );
    let in_url = f.run(&["get", "--id", "a"]);
    assert_eq!(in_url.ok_json()["n"], 1, "{}", render(&in_url, &db));

    account(json!({"sslmode": "require", "sslrootcert": "missing.pem"}));
    let missing = f.run(&["check"]);
    insta::assert_snapshot!("postgres_sslrootcert_missing", render(&missing, &db));
}

/// A table ferry creates keyed by another field: the row's key column is
/// `id`, holding the record's `email`.
#[test]
fn a_table_ferry_creates_can_be_keyed_by_another_field() {
    let db = Server::get().database();
    let f = Folder::new();
    f.write(
        "account.json",
        &json!({"connector": "postgres", "url": with_password(&db.url), "table": "people", "idField": "email"})
            .to_string(),
    );
    f.write(
        "in.jsonl",
        "{\"email\": \"b@x\", \"name\": \"B\"}\n{\"email\": \"a@x\", \"name\": \"A\"}\n",
    );
    let into = f.run_line("import --from jsonl:in.jsonl --to . --rejects r.jsonl");
    assert_eq!(
        into.json()["written"],
        2,
        "{}\n{}",
        render(&into, &db),
        std::fs::read_to_string(f.join("r.jsonl")).unwrap_or_default()
    );
    assert_eq!(db.sql("SELECT id FROM people ORDER BY id"), "a@x\nb@x");
    let get = f.run(&["get", "--id", "a@x"]);
    assert_eq!(get.ok_json(), json!({"email": "a@x", "name": "A"}));
    let patch = f.run(&["patch", "--id", "b@x", "--value", r#"{"name": "Bea"}"#]);
    assert_eq!(patch.code, 0, "{}", render(&patch, &db));
    // Out of the table, in key order, into a file keyed by email too.
    f.write(
        "back/account.json",
        r#"{"connector": "jsonl", "path": "back.jsonl", "idField": "email"}"#,
    );
    let back = f.run(&["import", "--from", ".", "--to", "back"]);
    assert_eq!(back.ok_json()["written"], 2, "{}", render(&back, &db));
    assert_eq!(
        json_lines(&f.read("back/back.jsonl")),
        [
            json!({"email": "a@x", "name": "A"}),
            json!({"email": "b@x", "name": "Bea"})
        ]
    );
}

/// A TARGET that is wrong never prints its password back.
#[test]
fn a_wrong_postgres_target_keeps_its_password() {
    let f = Folder::new();
    f.write("in.jsonl", "{\"id\": \"a\"}\n");
    for target in [
        "postgres://ferry:pw-canary-9@localhost/crm#",
        "postgress://ferry:pw-canary-9@localhost/crm#t",
    ] {
        let run = f.run(&["import", "--from", "jsonl:in.jsonl", "--to", target]);
        assert_eq!(run.code, 2, "{}", run.render());
        run.hides(&["pw-canary-9"], "the password of a wrong target");
        assert!(run.stderr.contains("ferry"), "{}", run.render());
    }
}

/// A user that may only read and write the rows of a table someone else
/// created (no CREATE on the schema) imports into it, reads it back, runs
/// getupdates and exports into it; `check` says what it may do.
#[test]
fn a_user_with_row_privileges_only_imports_exports_and_reads() {
    let (owner, db) = folder("people");
    owner.write("people.jsonl", &people(3));
    owner
        .run(&["import", "--from", "jsonl:people.jsonl", "--to", "."])
        .ok_json();
    // The owner's export creates the group tables.
    owner.write(
        "profiles.jsonl",
        "{\"id\": \"p00002\", \"properties\": {\"name\": \"Bo\"}, \"groups\": [\"news\"]}\n",
    );
    let created = owner.run(&["export", "--to", ".", "--input", "profiles.jsonl"]);
    assert_eq!(created.code, 0, "{}", render(&created, &db));
    let role = format!("limited_{}", db.name);
    db.sql(&format!(
        "CREATE ROLE {role} LOGIN;
         REVOKE CREATE ON SCHEMA public FROM PUBLIC;
         GRANT SELECT, INSERT, UPDATE, DELETE ON people, people_groups, people_members TO {role};
         GRANT USAGE ON SEQUENCE people_ferry_seq TO {role};"
    ));
    let f = Folder::new();
    let server = Server::get();
    f.write(
        "account.json",
        &json!({"connector": "postgres", "table": "people",
                "url": format!("postgres://{role}@127.0.0.1:{}/{}", server.port, db.name)})
        .to_string(),
    );
    let check = f.run(&["check"]);
    assert_eq!(check.ok_json()["canWrite"], true, "{}", render(&check, &db));
    f.write("more.jsonl", &people(5));
    let import = f.run(&["import", "--from", "jsonl:more.jsonl", "--to", "."]);
    assert_eq!(import.ok_json()["written"], 5, "{}", render(&import, &db));
    let back = f.run(&["import", "--from", ".", "--to", "jsonl:back.jsonl"]);
    assert_eq!(back.ok_json()["written"], 5, "{}", render(&back, &db));
    let updates = f.run(&["getupdates"]);
    assert_eq!(
        updates.ok_json()["entries"].as_array().map(Vec::len),
        Some(5)
    );
    f.write(
        "profiles.jsonl",
        "{\"id\": \"p00001\", \"properties\": {\"name\": \"Ada\"}, \"groups\": [\"vip\"]}\n",
    );
    let export = f.run(&["export", "--to", ".", "--input", "profiles.jsonl"]);
    assert_eq!(export.code, 0, "{}", render(&export, &db));
    assert_eq!(
        db.sql("SELECT group_name || ':' || record_id FROM people_members ORDER BY 1"),
        "news:p00002\nvip:p00001"
    );
}
