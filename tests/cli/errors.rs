//! Each documented error, through the real binary: what it says, what it
//! tells the user to do next, the file (and line and column) it names, and
//! the exit status (1 for a failed action, 2 for bad usage or configuration).

use crate::snap;
use crate::support::Folder;

/// A folder with a jsonl account holding one record, c1.
pub(crate) fn jsonl_folder() -> Folder {
    let f = Folder::new();
    f.write(
        "account.json",
        r#"{"connector": "jsonl", "path": "customers.jsonl"}"#,
    );
    f.write("customers.jsonl", "{\"id\": \"c1\", \"name\": \"Ada\"}\n");
    f
}

#[test]
fn no_account_json() {
    let f = Folder::new();
    snap!("no_account_json", f.run(&["get", "--id", "c1"]));
}

#[test]
fn no_account_json_in_the_folder_given_with_dash_c() {
    let f = Folder::new();
    std::fs::create_dir(f.join("empty")).expect("create a folder");
    snap!(
        "no_account_json_dash_c",
        f.run(&["-C", "empty", "get", "--id", "c1"])
    );
}

#[test]
fn account_file_given_with_account_does_not_exist() {
    let f = Folder::new();
    snap!(
        "account_flag_missing_file",
        f.run(&["--account", "nope.json", "check"])
    );
}

#[test]
fn account_file_given_with_account_is_used() {
    let f = jsonl_folder();
    std::fs::create_dir(f.join("accounts")).expect("create a folder");
    // Relative paths in an account file are relative to that file.
    f.write(
        "accounts/other.json",
        r#"{"connector": "jsonl", "path": "other.jsonl"}"#,
    );
    f.write("accounts/other.jsonl", "{\"id\": \"o1\"}\n");
    let got = f
        .run(&["--account", "accounts/other.json", "get", "--id", "o1"])
        .ok_json();
    assert_eq!(got["id"], "o1");
}

#[test]
fn dash_c_to_a_missing_folder() {
    let f = Folder::new();
    snap!("dash_c_missing_folder", f.run(&["-C", "nowhere", "check"]));
}

#[test]
fn invalid_json_in_account_json() {
    let f = Folder::new();
    f.write(
        "account.json",
        "{\n  \"connector\": \"jsonl\",\n  \"path\": \"c.jsonl\"\n  \"idField\": \"id\"\n}\n",
    );
    snap!("invalid_json_account", f.run(&["check"]));
}

#[test]
fn account_json_that_is_not_an_object() {
    let f = Folder::new();
    f.write("account.json", r#"["jsonl"]"#);
    snap!("account_not_an_object", f.run(&["check"]));
}

#[test]
fn account_json_without_a_connector() {
    let f = Folder::new();
    f.write("account.json", r#"{"path": "c.jsonl"}"#);
    snap!("account_without_connector", f.run(&["check"]));
    f.write("account.json", r#"{"connector": 7}"#);
    snap!("account_connector_not_a_string", f.run(&["check"]));
}

#[test]
fn invalid_json_in_in_json() {
    let f = jsonl_folder();
    f.write("in.json", "{\n  \"get\": {\"id\": \"c1\",}\n}\n");
    snap!("invalid_json_in_json", f.run(&["get"]));
}

#[test]
fn in_json_that_is_not_an_object() {
    let f = jsonl_folder();
    f.write("in.json", "[]");
    snap!("in_json_not_an_object", f.run(&["get"]));
    f.write("in.json", r#"{"get": "c1"}"#);
    snap!("in_json_section_not_an_object", f.run(&["get"]));
    f.write("in.json", r#"{"get": {"id": ["c1"]}}"#);
    snap!("in_json_id_not_a_string", f.run(&["get"]));
}

#[test]
fn input_file_given_with_input() {
    let f = jsonl_folder();
    f.write("other-in.json", r#"{"get": {"id": "c1"}}"#);
    assert_eq!(
        f.run(&["--input", "other-in.json", "get"]).ok_json()["name"],
        "Ada"
    );
    snap!(
        "input_flag_missing_file",
        f.run(&["--input", "nope.json", "get"])
    );
}

#[test]
fn invalid_json_in_value() {
    let f = jsonl_folder();
    snap!(
        "invalid_json_value_flag",
        f.run(&["insert", "--value", r#"{"name": "Ada""#])
    );
    f.write("ada.json", "{\"name\": 'Ada'}");
    snap!(
        "invalid_json_value_file",
        f.run(&["insert", "--value", "@ada.json"])
    );
    assert_eq!(
        f.read("customers.jsonl"),
        "{\"id\": \"c1\", \"name\": \"Ada\"}\n"
    );
}

#[test]
fn missing_input() {
    let f = jsonl_folder();
    snap!("missing_input_get_id", f.run(&["get"]));
    snap!("missing_input_insert_value", f.run(&["insert"]));
    snap!("missing_input_patch_value", f.run(&["patch", "--id", "c1"]));
    f.write("in.json", r#"{"delete": {}}"#);
    snap!("missing_input_delete_id_with_in_json", f.run(&["delete"]));
}

#[test]
fn unknown_connector() {
    let f = Folder::new();
    f.write(
        "account.json",
        r#"{"connector": "sqlit", "path": "ferry.db"}"#,
    );
    snap!("unknown_connector_near", f.run(&["check"]));
    f.write("account.json", r#"{"connector": "mainframe", "path": "x"}"#);
    snap!("unknown_connector_far", f.run(&["check"]));
}

#[test]
fn unknown_option() {
    let f = Folder::new();
    f.write(
        "account.json",
        r#"{"connector": "sqlite", "pth": "ferry.db"}"#,
    );
    snap!("unknown_option_near", f.run(&["check"]));
    f.write(
        "account.json",
        r#"{"connector": "sqlite", "path": "ferry.db", "colour": "blue"}"#,
    );
    snap!("unknown_option_far", f.run(&["check"]));
}

#[test]
fn option_out_of_range() {
    let f = Folder::new();
    f.write(
        "account.json",
        r#"{"connector": "sqlite", "path": "ferry.db", "busyTimeoutSecs": 1e20}"#,
    );
    snap!("option_out_of_range", f.run(&["check"]));
}

#[test]
fn option_of_the_wrong_type() {
    let f = Folder::new();
    f.write("account.json", r#"{"connector": "csv", "path": ["a.csv"]}"#);
    snap!("option_wrong_type", f.run(&["check"]));
}

#[test]
fn missing_required_option() {
    let f = Folder::new();
    f.write("account.json", r#"{"connector": "sqlite"}"#);
    snap!("missing_required_option", f.run(&["check"]));
    // An empty value is as good as missing.
    f.write("account.json", r#"{"connector": "csv", "path": ""}"#);
    snap!("empty_required_option", f.run(&["check"]));
}

#[test]
fn missing_variable() {
    let f = Folder::new();
    f.write(
        "account.json",
        r#"{"connector": "jsonl", "path": "${DATA_DIR}/c.jsonl"}"#,
    );
    snap!("missing_variable", f.run(&["check"]));
}

#[test]
fn unclosed_variable_reference() {
    let f = Folder::new();
    f.write(
        "account.json",
        r#"{"connector": "jsonl", "path": "${DATA_DIR/c.jsonl"}"#,
    );
    snap!("unclosed_variable", f.run(&["check"]));
}

#[test]
fn invalid_dotenv_line() {
    let f = Folder::new();
    f.write(
        "account.json",
        r#"{"connector": "jsonl", "path": "${DATA_DIR}/c.jsonl"}"#,
    );
    f.write(
        ".env",
        "# settings\nDATA_DIR=.\nthis line has no equals sign\n",
    );
    snap!("invalid_dotenv_line", f.run(&["check"]));
}

#[test]
fn unknown_id() {
    let f = jsonl_folder();
    snap!("unknown_id", f.run(&["get", "--id", "c404"]));
}

#[test]
fn an_action_the_connector_cannot_do() {
    // Every local connector supports every action but one case: getupdates
    // on a table ferry did not create (it cannot see that table's deletes).
    let f = Folder::new();
    f.write(
        "account.json",
        r#"{"connector": "sqlite", "path": "shop.db", "table": "people"}"#,
    );
    let conn = rusqlite::Connection::open(f.join("shop.db")).expect("open the database");
    conn.execute_batch("CREATE TABLE people (id TEXT PRIMARY KEY, name TEXT);")
        .expect("create the table");
    drop(conn);
    snap!("unsupported_action", f.run(&["getupdates"]));
}

#[test]
fn unknown_flag_and_command() {
    let f = jsonl_folder();
    snap!("unknown_flag", f.run(&["get", "--identifier", "c1"]));
    snap!("unknown_command", f.run(&["fetch"]));
    // Without a command: the usage on stderr, exit 2 (the command list is
    // the --help test's business).
    let run = f.run(&[]);
    assert_eq!(run.code, 2, "{}", run.render());
    assert_eq!(run.stdout, "");
    assert!(run.stderr.contains("Usage: ferry"), "{}", run.stderr);
}

#[test]
fn verbose_and_quiet_together() {
    let f = jsonl_folder();
    snap!("verbose_and_quiet", f.run(&["-v", "-q", "check"]));
}

#[test]
fn help_exits_0_with_examples() {
    let f = Folder::new();
    let run = f.run(&["--help"]);
    assert_eq!(run.code, 0, "{}", run.render());
    assert!(run.stderr.is_empty(), "{}", run.render());
    assert!(run.stdout.contains("Examples:"), "{}", run.stdout);
    for command in [
        "check",
        "connectors",
        "get",
        "insert",
        "patch",
        "delete",
        "getupdates",
    ] {
        let run = f.run(&[command, "--help"]);
        assert_eq!(run.code, 0, "{command}: {}", run.render());
        assert!(run.stderr.is_empty(), "{command}: {}", run.render());
        assert!(
            run.stdout.contains("Example"),
            "{command} --help has no example:\n{}",
            run.stdout
        );
        assert!(
            run.stdout.contains(&format!("ferry {command}"))
                || run.stdout.contains(&format!(" {command} ")),
            "{command} --help shows no use of the command:\n{}",
            run.stdout
        );
    }
    snap!("help_get", f.run(&["get", "--help"]));
}

#[test]
fn version_exits_0() {
    let f = Folder::new();
    let run = f.run(&["--version"]);
    assert_eq!(run.code, 0, "{}", run.render());
    assert!(run.stdout.starts_with("ferry "), "{}", run.stdout);
}

/// A connector that declares nothing and implements nothing, to see what the
/// trait's defaults answer.
struct Bare(ferry::connector::Spec);

impl ferry::connector::Capable for Bare {}

#[async_trait::async_trait]
impl ferry::connector::Connector for Bare {
    fn spec(&self) -> &ferry::connector::Spec {
        &self.0
    }
}

#[test]
fn every_action_a_connector_lacks_answers_cannot_with_exit_2() {
    use ferry::connector::{able, Capable, Connector};
    let bare = Bare(ferry::connector::Spec {
        code: "bare",
        label: "Bare",
        description: "",
        roles: vec![],
        options: vec![],
        fields: vec![],
        extra_fields: false,
        capabilities: &[],
        max_batch_size: 1,
        parallelism: 1,
        account_values: false,
        store: None,
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    let errors = runtime.block_on(async {
        vec![
            ("check", bare.check().await.map(drop)),
            ("get", able(&bare, bare.lookup(), "get").map(drop)),
            ("insert", able(&bare, bare.records(), "insert").map(drop)),
            ("patch", able(&bare, bare.records(), "patch").map(drop)),
            ("delete", able(&bare, bare.records(), "delete").map(drop)),
            (
                "getupdates",
                able(&bare, bare.updates(), "getupdates").map(drop),
            ),
            ("upsert", able(&bare, bare.sink(), "upsert").map(drop)),
        ]
    });
    for (action, result) in errors {
        let err = result.expect_err(action);
        assert_eq!(err.to_string(), format!("connector bare cannot {action}"));
        let failure = ferry::error::find_failure(&err).expect("a typed failure");
        assert_eq!(failure.kind.exit_code(), 2, "{action}");
        assert_eq!(
            failure.hint.as_deref(),
            Some("run `ferry connectors bare` to see what it can do")
        );
    }
}

#[test]
fn dash_c_to_a_file() {
    let f = jsonl_folder();
    snap!("dash_c_to_a_file", f.run(&["-C", "account.json", "check"]));
}

#[test]
fn empty_id_is_a_missing_id() {
    let f = jsonl_folder();
    snap!("empty_id", f.run(&["get", "--id", ""]));
}

#[test]
fn bad_sqlite_token_is_refused_before_the_database_exists() {
    let f = Folder::new();
    f.write(
        "account.json",
        r#"{"connector": "sqlite", "path": "new.db"}"#,
    );
    snap!(
        "sqlite_bad_token_no_database",
        f.run(&["getupdates", "--last-sync", "yesterday"])
    );
    assert!(
        !f.exists("new.db"),
        "a refused read must not create the database"
    );
}

/// The test clock's hook refuses a log file it cannot write before any
/// request, instead of panicking at the first wait.
#[test]
fn an_unwritable_test_clock_log_is_an_error_not_a_panic() {
    let f = Folder::new();
    let run = f.run_cmd(
        f.ferry()
            .env("FERRY_TEST_CLOCK", "/nonexistent/waits.log")
            .args(["connectors", "sqlite"]),
    );
    insta::assert_snapshot!(run.render());
}

#[test]
fn a_not_found_hint_keeps_the_folder_and_account_it_was_run_with() {
    let f = Folder::new();
    f.write("conn/people.jsonl", "{\"id\": \"a\"}\n");
    f.write(
        "conn/other.json",
        r#"{"connector": "jsonl", "path": "people.jsonl"}"#,
    );
    let run = f.run(&[
        "-C",
        "conn",
        "--account",
        "conn/other.json",
        "get",
        "--id",
        "nope",
    ]);
    assert_eq!(run.code, 1, "{}", run.render());
    assert!(
        run.stderr.contains(
            "hint: list the ids with: ferry -C conn --account conn/other.json getupdates"
        ),
        "{}",
        run.render()
    );
}
