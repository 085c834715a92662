//! Reading what users hand ferry, through the real binary: CSV quotes left
//! open and columns named twice, ids that JSON numbers cannot hold exactly
//! or that are not ids at all, byte order marks and bytes that are not
//! UTF-8, `${NAME}` references that are not names or name empty variables,
//! unknown keys in in.json, and the `.env` dialect (issue #13, items 2, 3,
//! 13 and 14).

use serde_json::{json, Value};
use wiremock::matchers::{method, path};

use crate::snap;
use crate::support::{Folder, MountOnce};

/// A folder whose account is a csv file `c.csv` holding `content`.
fn csv_folder(content: &str) -> Folder {
    let f = Folder::new();
    f.write("account.json", r#"{"connector": "csv", "path": "c.csv"}"#);
    f.write("c.csv", content);
    f
}

/// A folder whose account is a jsonl file `c.jsonl` holding `content`.
fn jsonl_folder(content: &[u8]) -> Folder {
    let f = Folder::new();
    f.write(
        "account.json",
        r#"{"connector": "jsonl", "path": "c.jsonl"}"#,
    );
    std::fs::write(f.join("c.jsonl"), content).expect("write c.jsonl");
    f
}

/// The lines of a JSON lines file in `f`, parsed; none when it is missing.
fn lines(f: &Folder, rel: &str) -> Vec<Value> {
    if !f.exists(rel) {
        return Vec::new();
    }
    f.read(rel)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

#[test]
fn a_csv_quote_left_open_to_the_end_of_the_file_is_an_error_naming_its_line() {
    let f = csv_folder("id,name\n1,\"unterminated\n2,Bob\n");
    snap!("csv_quote_open_to_the_end", f.run(&["getupdates"]));
    // No newline after it: the same.
    f.write("c.csv", "id,name\n0,a\n1,\"unterminated");
    snap!("csv_quote_open_at_the_end", f.run(&["getupdates"]));
    // An import stops with exit 2 and writes neither record.
    f.write("c.csv", "id,name\n1,\"unterminated\n2,Bob\n");
    let run = f.run(&["import", "--from", "csv:c.csv", "--to", "jsonl:out.jsonl"]);
    assert_eq!(run.code, 2, "{}", run.render());
    assert!(
        run.stderr
            .contains("the quoted cell opened at line 2 is never closed"),
        "{}",
        run.render()
    );
    assert_eq!(lines(&f, "out.jsonl"), Vec::<Value>::new());
}

#[test]
fn a_csv_header_that_leaves_a_quote_open_is_an_error_not_an_empty_file() {
    let f = csv_folder("\"id,name\n1,a\n2,b\n");
    let run = f.run(&["import", "--from", "csv:c.csv", "--to", "jsonl:out.jsonl"]);
    assert_eq!(run.code, 2, "{}", run.render());
    assert!(
        run.stderr
            .contains("the quoted cell opened at line 1 is never closed"),
        "{}",
        run.render()
    );
}

#[test]
fn a_csv_quote_left_open_that_pairs_with_a_later_quote_is_an_error() {
    let f = csv_folder("id,name\n1,\"a\n2,Bob\n3,\"Cy\"\n4,Di\n");
    snap!("csv_quote_open_mid_file", f.run(&["getupdates"]));
}

#[test]
fn csv_cells_quoted_over_several_lines_are_still_read() {
    let f = csv_folder("id,name\n1,\"two\nlines\"\n2,\"say \"\"hi\"\"\"\n3,Cy\n");
    let got = f.run(&["getupdates"]).ok_json();
    let names: Vec<&Value> = got["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| &e["value"]["name"])
        .collect();
    assert_eq!(
        names,
        [&json!("two\nlines"), &json!("say \"hi\""), &json!("Cy")]
    );
}

#[test]
fn a_csv_header_naming_a_column_twice_is_an_error() {
    let f = csv_folder("id,name,name\n1,a,b\n");
    snap!("csv_duplicate_header", f.run(&["get", "--id", "1"]));
    // Export's profile files too.
    f.write(
        "crm/account.json",
        r#"{"connector": "jsonl", "path": "crm.jsonl"}"#,
    );
    f.write("profiles.csv", "id,email,email\np1,a@x,b@x\n");
    snap!(
        "csv_duplicate_header_export",
        f.run(&["export", "--to", "crm", "--input", "profiles.csv"])
    );
    assert!(!f.exists("crm/crm.jsonl"));
}

const BIG_IDS: &str =
    "{\"id\":18446744073709551616,\"n\":1}\n{\"id\":18446744073709551617,\"n\":2}\n";

#[test]
fn integer_ids_beyond_64_bits_are_rejected_never_merged() {
    for to in ["jsonl:out.jsonl", "csv:out.csv", "sqlite:out.db"] {
        let f = jsonl_folder(BIG_IDS.as_bytes());
        let run = f.run(&[
            "import",
            "--from",
            "jsonl:c.jsonl",
            "--to",
            to,
            "--rejects",
            "rejects.jsonl",
        ]);
        assert_eq!(run.code, 3, "{to}: {}", run.render());
        let summary = run.json();
        assert_eq!(summary["written"], 0, "{to}: {summary}");
        assert_eq!(summary["rejected"]["total"], 2, "{to}: {summary}");
        insta::assert_snapshot!("big_ids_rejects", f.read("rejects.jsonl"));
    }
}

#[test]
fn integer_ids_beyond_64_bits_in_a_jsonl_source_are_not_listed_as_one() {
    let f = jsonl_folder(BIG_IDS.as_bytes());
    snap!("big_ids_getupdates", f.run(&["getupdates"]));
}

#[test]
fn integer_ids_beyond_64_bits_in_export_profiles_are_invalid_never_merged() {
    let f = Folder::new();
    f.write(
        "crm/account.json",
        r#"{"connector": "jsonl", "path": "crm.jsonl"}"#,
    );
    f.write(
        "profiles.jsonl",
        "{\"id\":18446744073709551616,\"properties\":{\"a\":1}}\n{\"id\":18446744073709551617,\"properties\":{\"a\":2}}\n",
    );
    let run = f.run(&["export", "--to", "crm", "--input", "profiles.jsonl"]);
    assert_eq!(run.code, 3, "{}", run.render());
    assert_eq!(run.json()["invalid"], 2, "{}", run.render());
    assert_eq!(run.json()["created"], 0, "{}", run.render());
    insta::assert_snapshot!("big_ids_export_warnings", run.stderr);
    assert!(!f.exists("crm/crm.jsonl"));
}

#[test]
fn integer_ids_beyond_64_bits_in_a_csv_stay_two_records() {
    let f = csv_folder("id,n\n18446744073709551616,1\n18446744073709551617,2\n");
    let run = f.run(&["import", "--from", "csv:c.csv", "--to", "jsonl:out.jsonl"]);
    assert_eq!(run.code, 0, "{}", run.render());
    let ids: Vec<Value> = lines(&f, "out.jsonl")
        .iter()
        .map(|r| r["id"].clone())
        .collect();
    assert_eq!(
        ids,
        [json!("18446744073709551616"), json!("18446744073709551617")]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn integer_ids_beyond_64_bits_from_an_http_source_are_rejected() {
    for to in ["jsonl:out.jsonl", "csv:out.csv", "sqlite:out.db"] {
        let s = crate::support::mock::server().await;
        // The body as the API would send it: digits a JSON value cannot hold.
        let body = r#"{"data": [{"id": 18446744073709551616, "n": 1}, {"id": 18446744073709551617, "n": 2}, {"id": 7, "n": 3}]}"#;
        wiremock::Mock::given(method("GET"))
            .and(path("/items"))
            .once(
                wiremock::ResponseTemplate::new(200).set_body_raw(body, "application/json"),
                &s,
            )
            .await;
        let f = Folder::new();
        f.write(
            "src/connector.json",
            &json!({"actions": {"list": {"path": "/items", "records": "/data"}}}).to_string(),
        );
        f.write(
            "src/account.json",
            &format!(r#"{{"connector": "http", "baseUrl": "{}"}}"#, s.uri()),
        );
        let run = f.run(&[
            "import",
            "--from",
            "src",
            "--to",
            to,
            "--rejects",
            "rejects.jsonl",
        ]);
        assert_eq!(run.code, 3, "{to}: {}", run.render());
        assert_eq!(run.json()["written"], 1, "{to}: {}", run.render());
        insta::assert_snapshot!("big_ids_http_rejects", f.read("rejects.jsonl"));
        let dest = Folder::new();
        dest.write(
            "account.json",
            &format!(
                r#"{{"connector": "{}", "path": "{}"}}"#,
                to.split(':').next().unwrap_or_default(),
                f.join(to.split(':').nth(1).unwrap_or_default()).display()
            ),
        );
        let ids: Vec<Value> = dest.run(&["getupdates"]).ok_json()["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .map(|e| e["id"].clone())
            .collect();
        assert_eq!(ids, [json!("7")], "{to}");
        s.verify().await;
    }
}

#[test]
fn an_id_that_is_true_or_an_object_is_named_as_such() {
    let f = jsonl_folder(b"{\"id\":true}\n{\"id\":{\"a\":1}}\n{\"id\":\"ok\"}\n");
    let run =
        f.run_line("import --from jsonl:c.jsonl --to jsonl:out.jsonl --rejects rejects.jsonl");
    assert_eq!(run.code, 3, "{}", run.render());
    assert_eq!(
        run.json()["rejected"]["byReason"],
        json!({"id must be a string or number, got a boolean": 1,
               "id must be a string or number, got an object": 1})
    );
    insta::assert_snapshot!("id_true_or_object_rejects", f.read("rejects.jsonl"));
    // insert does not replace such an id with a generated one.
    snap!(
        "insert_id_true",
        f.run(&["insert", "--value", r#"{"id": true, "name": "Ada"}"#])
    );
    assert_eq!(lines(&f, "c.jsonl").len(), 3);
    // Nor does patch write it over the record's id, in a file or a table.
    snap!(
        "patch_id_object",
        f.run(&["patch", "--id", "ok", "--value", r#"{"id": {"a": 1}}"#])
    );
    assert_eq!(lines(&f, "c.jsonl")[2], json!({"id": "ok"}));
    f.write("account.json", r#"{"connector": "sqlite", "path": "c.db"}"#);
    f.run(&["insert", "--value", r#"{"id": "ok"}"#]).ok_json();
    let run = f.run(&["patch", "--id", "ok", "--value", r#"{"id": true}"#]);
    assert_eq!(run.code, 2, "{}", run.render());
    assert_eq!(f.run(&["get", "--id", "ok"]).ok_json(), json!({"id": "ok"}));
}

const BOM: &str = "\u{feff}";

#[test]
fn a_byte_order_mark_is_skipped_in_account_in_json_jsonl_and_dotenv() {
    let f = Folder::new();
    f.write(
        "account.json",
        &format!(r#"{BOM}{{"connector": "jsonl", "path": "${{FILE}}"}}"#),
    );
    f.write(".env", &format!("{BOM}FILE=c.jsonl\n"));
    f.write("in.json", &format!(r#"{BOM}{{"get": {{"id": "c1"}}}}"#));
    f.write(
        "c.jsonl",
        &format!("{BOM}{{\"id\": \"c1\", \"name\": \"Ada\"}}\n"),
    );
    let got = f.run(&["get"]).ok_json();
    assert_eq!(got, json!({"id": "c1", "name": "Ada"}));
}

#[test]
fn bytes_that_are_not_utf8_in_jsonl_name_the_line() {
    let f = jsonl_folder(b"{\"id\": \"c1\"}\n{\"id\": \"c\xff2\"}\n");
    snap!("jsonl_not_utf8", f.run(&["getupdates"]));
}

#[test]
fn bytes_that_are_not_utf8_in_dotenv_get_a_hint() {
    let f = Folder::new();
    f.write(
        "account.json",
        r#"{"connector": "jsonl", "path": "${FILE}"}"#,
    );
    std::fs::write(f.join(".env"), b"# caf\xe9 latin-1\nFILE=c.jsonl\n").expect("write .env");
    snap!("dotenv_not_utf8", f.run(&["check"]));
}

#[test]
fn references_that_are_not_names_say_so() {
    let f = Folder::new();
    f.write(
        "account.json",
        r#"{"connector": "jsonl", "path": "${}/c.jsonl"}"#,
    );
    snap!("reference_empty", f.run(&["check"]));
    f.write(
        "account.json",
        r#"{"connector": "jsonl", "path": "${DATA_DIR:-data}/c.jsonl"}"#,
    );
    snap!("reference_shell_default", f.run(&["check"]));
    f.write(
        "account.json",
        r#"{"connector": "jsonl", "path": "data/${"}"#,
    );
    snap!("reference_unclosed_at_the_end", f.run(&["check"]));
}

/// A hubspot folder whose token comes from `${HUBSPOT_ACCESS_TOKEN}`.
fn hubspot_folder() -> Folder {
    let f = Folder::new();
    f.write(
        "account.json",
        r#"{"connector": "hubspot", "accessToken": "${HUBSPOT_ACCESS_TOKEN}", "baseUrl": "http://127.0.0.1:9"}"#,
    );
    f
}

#[test]
fn a_variable_set_but_empty_says_so() {
    let f = hubspot_folder();
    f.write(".env", "HUBSPOT_ACCESS_TOKEN=\n");
    snap!("variable_empty_in_dotenv", f.run(&["check"]));
    let f = hubspot_folder();
    let run = f.run_cmd(f.ferry().env("HUBSPOT_ACCESS_TOKEN", "").arg("check"));
    snap!("variable_empty_in_env", run);
}

#[test]
fn an_unknown_key_in_an_in_json_section_is_refused() {
    let f = jsonl_folder(b"{\"id\": \"c1\"}\n");
    f.write("in.json", r#"{"get": {"idd": "c1"}}"#);
    snap!("in_json_unknown_key_near", f.run(&["get", "--id", "c1"]));
    f.write("in.json", r#"{"patch": {"id": "c1", "changes": {"a": 1}}}"#);
    snap!("in_json_unknown_key_far", f.run(&["get", "--id", "c1"]));
}

#[test]
fn dotenv_strips_both_quotes_and_reads_a_spaced_hash_as_a_comment() {
    let f = Folder::new();
    f.write(
        "account.json",
        r#"{"connector": "jsonl", "path": "${DIR}/${NAME}${EXT}"}"#,
    );
    f.write(
        ".env",
        "DIR=\"data\" # where\nNAME='c#1'\nEXT=.jsonl # the extension\n",
    );
    f.write("data/c#1.jsonl", "{\"id\": \"c1\"}\n");
    let got = f.run(&["get", "--id", "c1"]).ok_json();
    assert_eq!(got, json!({"id": "c1"}));
    f.write(".env", "DIR=\"data\" x\nNAME=c\nEXT=.jsonl\n");
    snap!("dotenv_text_after_quote", f.run(&["get", "--id", "c1"]));
}

#[test]
fn init_set_with_a_line_break_cannot_add_a_variable() {
    let f = Folder::new();
    let run = f.run(&[
        "init",
        "conn",
        "--connector",
        "hubspot",
        "--set",
        "accessToken=a\nX=1",
        "--yes",
    ]);
    assert_eq!(run.code, 0, "{}", run.render());
    insta::assert_snapshot!("init_set_line_break_dotenv", f.read("conn/.env"));
    // ferry reads one variable back, with the line break in it.
    f.write(
        "conn/account.json",
        r#"{"connector": "jsonl", "path": "${X}.jsonl"}"#,
    );
    snap!("init_set_line_break_no_x", f.run(&["-C", "conn", "check"]));
}
