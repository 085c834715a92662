//! `ferry test` cases that are hermetic: a case on a local connector
//! (sqlite, jsonl) replays against a copy of the store it recorded and
//! never changes the live one; a case carries its account (secrets masked)
//! so a clone without account.json or .env tests green; cases can be
//! chosen by name, expect a failure, ignore volatile output paths, and be
//! rewritten with `--update`.

use serde_json::{json, Value};

use crate::snap;
use crate::support::{Folder, Sandbox};

const CANARY: &str = "CANARY-t3st-c4se-77";

/// A sqlite connector folder `s` made by `ferry init`.
fn sqlite_folder() -> Folder {
    let f = Folder::new();
    let init = f.run(&["init", "s", "--connector", "sqlite", "--yes"]);
    assert_eq!(init.code, 0, "{}", init.render());
    f
}

fn case(f: &Folder, rel: &str) -> Value {
    serde_json::from_str(&f.read(rel)).expect("a case is JSON")
}

fn write_case(f: &Folder, rel: &str, case: &Value) {
    f.write(rel, &serde_json::to_string_pretty(case).unwrap());
}

/// Every record of the folder's store, as getupdates lists it.
fn live_records(f: &Folder, dir: &str) -> Value {
    f.run(&["-C", dir, "getupdates"]).ok_json()["entries"].clone()
}

#[test]
fn a_sqlite_case_replays_against_a_copy_and_never_changes_the_live_store() {
    let f = sqlite_folder();
    let record = |args: &[&str]| {
        let mut all = vec!["-C", "s"];
        all.extend_from_slice(args);
        let run = f.run(&all);
        assert_eq!(run.code, 0, "{}", run.render());
    };
    record(&[
        "insert",
        "--value",
        r#"{"id": "c1", "email": "ada@example.com"}"#,
        "--record",
        "--save-case",
        "insert",
    ]);
    record(&["get", "--id", "c1", "--record", "--save-case", "get"]);
    record(&[
        "patch",
        "--id",
        "c1",
        "--value",
        r#"{"plan": "pro"}"#,
        "--record",
        "--save-case",
        "patch",
    ]);
    record(&["delete", "--id", "c1", "--record", "--save-case", "delete"]);
    // The live store now holds another record and not c1.
    record(&["insert", "--value", r#"{"id": "c2"}"#]);
    let before = live_records(&f, "s");
    let bytes = std::fs::read(f.join("s/ferry.db")).unwrap();

    // The insert case recorded before the file existed; the others keep a
    // small gzipped copy of the database as it was before their run.
    assert!(case(&f, "s/tests/insert.json").get("store").is_some());
    let get = case(&f, "s/tests/get.json");
    assert!(get["store"]["gzipBase64"].is_string());
    assert!(
        f.read("s/tests/get.json").len() < 8_000,
        "the copy is compressed"
    );

    for _ in 0..2 {
        let run = f.run(&["-C", "s", "test"]);
        assert_eq!(run.code, 0, "{}", run.render());
        assert!(
            run.stderr.ends_with("4 passed, 0 failed\n"),
            "{}",
            run.render()
        );
    }
    assert_eq!(live_records(&f, "s"), before);
    assert_eq!(std::fs::read(f.join("s/ferry.db")).unwrap(), bytes);
}

#[test]
fn a_jsonl_case_keeps_the_file_as_text_and_leaves_the_live_file_alone() {
    let f = Folder::new();
    f.write(
        "j/account.json",
        r#"{"connector": "jsonl", "path": "people.jsonl"}"#,
    );
    f.write("j/people.jsonl", "{\"id\":\"p1\",\"name\":\"Ada\"}\n");
    let run = f.run(&[
        "-C",
        "j",
        "patch",
        "--id",
        "p1",
        "--value",
        r#"{"name": "Grace"}"#,
        "--record",
        "--save-case",
        "rename",
    ]);
    assert_eq!(run.code, 0, "{}", run.render());
    let saved = case(&f, "j/tests/rename.json");
    assert_eq!(
        saved["store"],
        json!({"file": "people.jsonl", "text": "{\"id\":\"p1\",\"name\":\"Ada\"}\n"})
    );
    let live = f.read("j/people.jsonl");
    assert!(live.contains("Grace"));
    let run = f.run(&["-C", "j", "test"]);
    assert_eq!(run.code, 0, "{}", run.render());
    assert_eq!(f.read("j/people.jsonl"), live);
}

#[test]
fn a_case_recorded_without_its_store_is_refused_not_run_against_the_live_one() {
    let f = sqlite_folder();
    f.run(&[
        "-C",
        "s",
        "insert",
        "--value",
        r#"{"id": "c1"}"#,
        "--record",
        "--save-case",
        "old",
    ])
    .ok_json();
    // A case as ferry 0.1 wrote it: no account, no store.
    let mut old = case(&f, "s/tests/old.json");
    let map = old.as_object_mut().unwrap();
    map.remove("account");
    map.remove("store");
    write_case(&f, "s/tests/old.json", &old);
    let before = live_records(&f, "s");
    let run = f.run(&["-C", "s", "test"]);
    assert_eq!(run.code, 1);
    snap!("case_without_store_refused", run);
    assert_eq!(live_records(&f, "s"), before);
}

#[test]
fn a_failure_is_a_case_too() {
    let f = sqlite_folder();
    f.run(&["-C", "s", "insert", "--value", r#"{"id": "c1"}"#])
        .ok_json();
    let run = f.run(&[
        "-C",
        "s",
        "get",
        "--id",
        "nope",
        "--record",
        "--save-case",
        "missing",
    ]);
    assert_eq!(run.code, 1, "{}", run.render());
    snap!("failure_case_saved", run);
    let saved = case(&f, "s/tests/missing.json");
    assert_eq!(saved["exit"], 1);
    assert_eq!(saved["expected"], Value::Null);
    assert_eq!(
        saved["error"],
        json!("no record with id \"nope\" in table \"records\" of ferry.db")
    );
    let run = f.run(&["-C", "s", "test"]);
    assert_eq!(run.code, 0, "{}", run.render());

    // Another error than the recorded one fails the case...
    let mut other = saved.clone();
    other["error"] = json!("no record with id \"gone\" in table \"records\" of ferry.db");
    write_case(&f, "s/tests/missing.json", &other);
    let run = f.run(&["-C", "s", "test"]);
    assert_eq!(run.code, 1);
    snap!("failure_case_other_error", run);
    // ...and so does a success (c1 is in the case's copy of the store).
    let mut found = saved;
    found["args"] = json!(["get", "--id", "c1"]);
    write_case(&f, "s/tests/missing.json", &found);
    let run = f.run(&["-C", "s", "test"]);
    assert_eq!(run.code, 1);
    snap!("failure_case_succeeds", run);
}

#[test]
fn cases_are_chosen_by_name_ignore_volatile_paths_and_update() {
    let f = sqlite_folder();
    for (id, name) in [("a", "get-a"), ("b", "get-b")] {
        let value = format!(r#"{{"id": "{id}", "n": 1}}"#);
        f.run(&["-C", "s", "insert", "--value", &value]).ok_json();
        f.run(&[
            "-C",
            "s",
            "get",
            "--id",
            id,
            "--record",
            "--save-case",
            name,
        ])
        .ok_json();
    }
    let only = f.run(&["-C", "s", "test", "get-b"]);
    assert_eq!(only.code, 0, "{}", only.render());
    assert_eq!(only.json()["cases"], json!([{"name": "get-b", "ok": true}]));
    snap!(
        "test_unknown_name",
        f.run(&["-C", "s", "test", "get-b", "get-z"])
    );

    // Someone edits what get-a expects: it fails, unless the path is ignored.
    let mut edited = case(&f, "s/tests/get-a.json");
    edited["expected"]["n"] = json!(2);
    write_case(&f, "s/tests/get-a.json", &edited);
    let run = f.run(&["-C", "s", "test"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("at /n: expected 2, got 1"),
        "{}",
        run.render()
    );
    let mut ignoring = edited.clone();
    ignoring["ignore"] = json!(["/n"]);
    write_case(&f, "s/tests/get-a.json", &ignoring);
    assert_eq!(f.run(&["-C", "s", "test"]).code, 0);

    // --update rewrites what the case expects (and keeps its ignore list).
    write_case(&f, "s/tests/get-a.json", &edited);
    let update = f.run(&["-C", "s", "test", "--update"]);
    snap!("test_update", update);
    let updated = case(&f, "s/tests/get-a.json");
    assert_eq!(updated["expected"]["n"], 1);
    write_case(&f, "s/tests/get-b.json", &{
        let mut b = case(&f, "s/tests/get-b.json");
        b["ignore"] = json!(["/nothing"]);
        b["expected"]["n"] = json!(5);
        b
    });
    f.run(&["-C", "s", "test", "--update", "get-b"]).ok_json();
    assert_eq!(
        case(&f, "s/tests/get-b.json")["ignore"],
        json!(["/nothing"])
    );
    assert_eq!(f.run(&["-C", "s", "test"]).code, 0);
}

/// The files of `from` a git clone would have: everything but what its
/// .gitignore names (one name per line, as `ferry init` writes it).
fn clone_folder(f: &Folder, from: &str, to: &str) {
    let ignored: Vec<String> = f
        .read(&format!("{from}/.gitignore"))
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.trim().trim_end_matches('/').to_string())
        .collect();
    copy_tree(&f.join(from), &f.join(to), &ignored);
}

fn copy_tree(from: &std::path::Path, to: &std::path::Path, ignored: &[String]) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        if ignored.contains(&name) {
            continue;
        }
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &to.join(&name), ignored);
        } else {
            std::fs::copy(entry.path(), to.join(&name)).unwrap();
        }
    }
}

#[test]
fn a_clone_without_credentials_tests_green() {
    let f = Folder::new();
    let sb = Sandbox::start(&["--port", "0"]);
    crate::support::init_sandbox_folder(&f, "conn", &sb.url);
    // The token is a literal in account.json here: the case masks it.
    let mut account: Value = serde_json::from_str(&f.read("conn/account.json")).unwrap();
    account["token"] = json!(CANARY);
    f.write("conn/account.json", &account.to_string());
    for action in ["getupdates", "get", "insert"] {
        let run = f.run(&["-C", "conn", action, "--record", "--save-case", action]);
        assert_eq!(run.code, 0, "{action}:\n{}", run.render());
    }
    drop(sb);
    for action in ["getupdates", "get", "insert"] {
        let text = f.read(&format!("conn/tests/{action}.json"));
        assert!(!text.contains(CANARY), "{action} holds the secret");
    }
    assert_eq!(case(&f, "conn/tests/get.json")["account"]["token"], "***");

    clone_folder(&f, "conn", "clone");
    assert!(!f.exists("clone/account.json") && !f.exists("clone/.env"));
    let run = f.run(&["-C", "clone", "test"]);
    assert_eq!(run.code, 0, "{}", run.render());
    assert!(
        run.stderr.ends_with("3 passed, 0 failed\n"),
        "{}",
        run.render()
    );
}

/// Secrets that are not under a secret key name are masked too: in a URL's
/// userinfo or query, and a value that only contains a `${NAME}`.
#[test]
fn a_case_masks_secrets_wherever_they_sit_in_the_account() {
    let f = Folder::new();
    let sb = Sandbox::start(&["--port", "0"]);
    crate::support::init_sandbox_folder(&f, "conn", &sb.url);
    let mut account: Value = serde_json::from_str(&f.read("conn/account.json")).unwrap();
    let url = sb
        .url
        .replacen("http://", &format!("http://user:{CANARY}@"), 1);
    account["baseUrl"] = json!(url);
    account["params"] = json!({"hook": format!("https://hooks.example/in?api_key={CANARY}-q")});
    account["apiKey"] = json!(format!("{CANARY}${{TAIL}}"));
    f.write("conn/account.json", &account.to_string());
    f.write("conn/.env", "TAIL=-tail\n");
    let run = f.run(&[
        "-C",
        "conn",
        "get",
        "--id",
        "cus_0000001",
        "--record",
        "--save-case",
        "one",
    ]);
    drop(sb);
    assert_eq!(run.code, 0, "{}", run.render());
    let text = f.read("conn/tests/one.json");
    assert!(!text.contains(CANARY), "the secret in:\n{text}");
    let saved = case(&f, "conn/tests/one.json");
    assert_eq!(saved["account"]["apiKey"], "***");
    assert!(saved["account"]["params"]["hook"]
        .as_str()
        .unwrap()
        .ends_with("api_key=***"));
    assert!(saved["account"]["baseUrl"]
        .as_str()
        .unwrap()
        .contains("user:***@"));
}

/// `--update` rewrites what a case expects only when its replay could run:
/// a replay that asks for traffic the case never recorded stays a failure.
#[test]
fn update_does_not_turn_missing_traffic_into_an_expected_error() {
    let f = Folder::new();
    let sb = Sandbox::start(&["--port", "0"]);
    crate::support::init_sandbox_folder(&f, "conn", &sb.url);
    f.run(&["-C", "conn", "getupdates", "--record", "--save-case", "all"])
        .ok_json();
    drop(sb);
    let mut edited = case(&f, "conn/tests/all.json");
    edited["args"] = json!(["getupdates", "--last-sync", "42"]);
    write_case(&f, "conn/tests/all.json", &edited);
    let run = f.run(&["-C", "conn", "test", "--update"]);
    assert_eq!(run.code, 1, "{}", run.render());
    assert!(
        run.stderr.contains("--update cannot fix this"),
        "{}",
        run.render()
    );
    assert_eq!(case(&f, "conn/tests/all.json")["error"], Value::Null);
}

/// A failure whose message names the input file replays to the same
/// message: the case's in.json reads as the folder's.
#[test]
fn a_failure_naming_in_json_replays_as_recorded() {
    let f = sqlite_folder();
    f.write("s/in.json", r#"{"get": {"id": [7]}}"#);
    let run = f.run(&["-C", "s", "get", "--record", "--save-case", "bad-input"]);
    assert_eq!(run.code, 2, "{}", run.render());
    assert!(
        run.stderr.contains("it replays offline as recorded"),
        "{}",
        run.render()
    );
    assert!(case(&f, "s/tests/bad-input.json")["error"]
        .as_str()
        .unwrap()
        .contains("./in.json"));
    let run = f.run(&["-C", "s", "test"]);
    assert_eq!(run.code, 0, "{}", run.render());
}

/// A run that failed on the network recorded nothing a replay could answer
/// with: no case is kept, and the user is told why.
#[test]
fn a_network_failure_is_not_kept_as_a_case() {
    let f = Folder::new();
    f.write(
        "conn/connector.json",
        r#"{"auth": {"type": "none"}, "actions": {"get": {"path": "/items/{id}"}}}"#,
    );
    f.write(
        "conn/account.json",
        r#"{"connector": "http", "baseUrl": "http://127.0.0.1:9", "retry": {"maxAttempts": 1}}"#,
    );
    let run = f.run(&[
        "-C",
        "conn",
        "get",
        "--id",
        "a",
        "--record",
        "--save-case",
        "down",
    ]);
    assert_eq!(run.code, 1, "{}", run.render());
    assert!(
        run.stderr.contains("test case down was not saved"),
        "{}",
        run.render()
    );
    assert!(!f.exists("conn/tests/down.json"));
}

/// A case whose output holds a value made anew on each run is kept, with a
/// warning that names the path to list in "ignore".
#[test]
fn a_volatile_output_is_kept_with_the_paths_to_ignore() {
    let f = sqlite_folder();
    let run = f.run(&[
        "-C",
        "s",
        "insert",
        "--value",
        r#"{"n": 1}"#,
        "--record",
        "--save-case",
        "new",
    ]);
    assert_eq!(run.code, 0, "{}", run.render());
    assert!(
        run.stderr.contains("its replay's output differs"),
        "{}",
        run.render()
    );
    assert!(run.stderr.contains("\"ignore\""), "{}", run.render());
    assert_eq!(f.run(&["-C", "s", "test"]).code, 1);
    let mut saved = case(&f, "s/tests/new.json");
    saved["ignore"] = json!(["/id", "/record/id"]);
    write_case(&f, "s/tests/new.json", &saved);
    let run = f.run(&["-C", "s", "test"]);
    assert_eq!(run.code, 0, "{}", run.render());
}

/// The flags that only make sense together are refused together, and a
/// hint that names an action keeps the `-C DIR` it was run with.
#[test]
fn save_case_needs_a_recording_and_hints_keep_the_folder() {
    let f = sqlite_folder();
    let run = f.run(&[
        "-C",
        "s",
        "get",
        "--id",
        "a",
        "--replay",
        "--save-case",
        "x",
    ]);
    assert_eq!(run.code, 2, "{}", run.render());
    f.run(&["-C", "s", "insert", "--value", r#"{"id": "a"}"#])
        .ok_json();
    let again = f.run(&["-C", "s", "insert", "--value", r#"{"id": "a"}"#]);
    assert_eq!(again.code, 1, "{}", again.render());
    assert!(
        again.stderr.contains("hint: use `ferry -C s patch --id a`"),
        "{}",
        again.render()
    );
}
