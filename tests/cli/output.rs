//! Where output goes: the result on stdout or in the `-o` file, logs on
//! stderr with `-v`, and nothing but the result and errors with `-q`. stdout
//! must stay pure JSON whatever the verbosity, so `ferry get | jq` works.

use serde_json::Value;

use crate::snap;
use crate::support::Folder;

/// A folder with a sqlite account holding two records.
fn sqlite_folder() -> Folder {
    let f = Folder::new();
    f.write(
        "account.json",
        r#"{"connector": "sqlite", "path": "ferry.db"}"#,
    );
    for value in [r#"{"id": "c1", "name": "Ada"}"#, r#"{"id": "c2"}"#] {
        f.run(&["insert", "--value", value]).ok_json();
    }
    f
}

#[test]
fn dash_o_writes_the_file_and_nothing_to_stdout() {
    let f = sqlite_folder();
    let run = f.run(&["-o", "out/c1.json", "get", "--id", "c1"]);
    snap!("dash_o_get", run);
    assert_eq!(run.stdout, "");
    let written = f.read("out/c1.json");
    assert_eq!(written, f.run(&["get", "--id", "c1"]).stdout);
    let value: Value = serde_json::from_str(&written).expect("the file holds JSON");
    assert_eq!(value["name"], "Ada");
    // No temporary file is left beside it.
    let names: Vec<String> = std::fs::read_dir(f.join("out"))
        .expect("list out/")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["c1.json"]);
}

#[test]
fn dash_o_replaces_an_existing_file() {
    let f = sqlite_folder();
    f.write(
        "updates.json",
        "old content that is longer than the new one ...\n",
    );
    let run = f.run(&["getupdates", "-o", "updates.json"]);
    assert_eq!(run.code, 0, "{}", run.render());
    assert_eq!(run.stdout, "");
    let value: Value = serde_json::from_str(&f.read("updates.json")).expect("JSON");
    assert_eq!(value["entries"].as_array().map(Vec::len), Some(2));
}

#[test]
fn dash_o_with_a_failing_command_writes_nothing() {
    let f = sqlite_folder();
    let run = f.run(&["-o", "c9.json", "get", "--id", "c9"]);
    snap!("dash_o_failure", run);
    assert!(!f.exists("c9.json"));
}

#[test]
fn verbose_keeps_stdout_pure_json() {
    let f = sqlite_folder();
    for flag in ["-v", "-vv"] {
        let run = f.run(&[flag, "getupdates"]);
        assert_eq!(run.code, 0, "{}", run.render());
        let value: Value = serde_json::from_str(&run.stdout)
            .unwrap_or_else(|e| panic!("{flag}: stdout is not pure JSON ({e}):\n{}", run.stdout));
        assert_eq!(value["entries"].as_array().map(Vec::len), Some(2));
        assert!(!run.stderr.is_empty(), "{flag}: no log lines on stderr");
        assert_eq!(
            run.stdout,
            f.run(&["getupdates"]).stdout,
            "{flag} changed the result"
        );
    }
    snap!("verbose_getupdates", f.run(&["-v", "getupdates"]));
}

#[test]
fn verbose_errors_keep_stdout_empty() {
    let f = sqlite_folder();
    let run = f.run(&["-v", "get", "--id", "c9"]);
    assert_eq!(run.code, 1);
    assert_eq!(run.stdout, "");
}

#[test]
fn quiet_silences_warnings_but_not_results_or_errors() {
    let f = sqlite_folder();
    // A section name no command reads, one typo away from "getupdates".
    f.write(
        "in.json",
        r#"{"getUpdates": {"lastSync": "1"}, "get": {"id": "c2"}}"#,
    );
    snap!("warning_misspelt_in_json_section", f.run(&["get"]));
    let quiet = f.run(&["-q", "get"]);
    snap!("quiet_no_warning", quiet);
    assert_eq!(quiet.stdout, f.run(&["get"]).stdout);
    snap!("quiet_error", f.run(&["-q", "get", "--id", "c9"]));
}

#[test]
fn no_warning_for_the_sections_ferry_knows() {
    let f = sqlite_folder();
    f.write(
        "in.json",
        r#"{"get": {"id": "c1"}, "insert": {}, "patch": {}, "delete": {},
            "getupdates": {}, "export": {}, "import": {}, "notes": "mine"}"#,
    );
    let run = f.run(&["get"]);
    assert_eq!(run.code, 0, "{}", run.render());
    assert_eq!(run.stderr, "");
}

#[test]
fn quiet_and_normal_runs_print_the_same_result() {
    let f = sqlite_folder();
    let normal = f.run(&["getupdates"]);
    let quiet = f.run(&["getupdates", "-q"]);
    assert_eq!(quiet.code, 0);
    assert_eq!(quiet.stdout, normal.stdout);
    assert_eq!(quiet.stderr, "");
}

#[test]
fn a_closed_pipe_is_not_an_error() {
    // `ferry getupdates | head -1`: the reader goes away before ferry has
    // written its result (here 2,000 records, more than a pipe buffer holds).
    let f = Folder::new();
    f.write(
        "account.json",
        r#"{"connector": "jsonl", "path": "big.jsonl"}"#,
    );
    let lines: String = (0..2000)
        .map(|i| format!("{{\"id\": \"c{i}\", \"note\": \"{}\"}}\n", "x".repeat(40)))
        .collect();
    f.write("big.jsonl", &lines);
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("ferry"))
        .current_dir(f.path())
        .env_clear()
        .arg("getupdates")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start ferry");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("wait for ferry");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
}
