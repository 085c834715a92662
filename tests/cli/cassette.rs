//! Record and replay (`--record`, `--replay`, `--save-case`) and `ferry
//! test`: a round trip against wiremock servers that fail when a request is
//! missing (and that are gone when the replay runs), paging to the end,
//! a canary secret that must reach neither the cassette nor any output, the
//! error for an unrecorded request, a failing case, and a fresh folder that
//! records every action against `ferry sandbox` and passes `ferry test`
//! offline.

use serde_json::{json, Value};
use wiremock::matchers::{header, method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::snap;
use crate::support::{ok, Folder, MountOnce, Sandbox};

const CANARY: &str = "CANARY-s3cr3t-9f8e";

/// A folder whose bearer-token http connector points at `base`; the token is
/// the canary, read from .env.
fn folder(base: &str) -> Folder {
    let f = Folder::new();
    let manifest = json!({
        "auth": {"type": "bearer"},
        "actions": {
            "get": {"path": "/items/{id}"},
            "getupdates": {
                "path": "/items",
                "records": "/data",
                "pagination": {"type": "cursor", "cursorPath": "/next"}
            }
        }
    });
    f.write("connector.json", &manifest.to_string());
    f.write(
        "account.json",
        &format!(r#"{{"connector": "http", "baseUrl": "{base}", "token": "${{API_TOKEN}}"}}"#),
    );
    f.write(".env", &format!("API_TOKEN={CANARY}\n"));
    f
}

/// Three pages of items; the first record carries the canary, which the
/// cassette and the output must show as `***`.
async fn three_pages(s: &MockServer) {
    let bearer = format!("Bearer {CANARY}");
    let pages = [
        (
            None,
            json!({"data": [{"id": "a", "note": CANARY}, {"id": "b"}], "next": "c2"}),
        ),
        (
            Some("c2"),
            json!({"data": [{"id": "c"}, {"id": "d"}], "next": "c3"}),
        ),
        (Some("c3"), json!({"data": [{"id": "e"}], "next": null})),
    ];
    for (cursor, body) in pages {
        let m = Mock::given(method("GET"))
            .and(path("/items"))
            .and(header("authorization", bearer.as_str()));
        let m = match cursor {
            None => m.and(query_param_is_missing("cursor")),
            Some(c) => m.and(query_param("cursor", c)),
        };
        m.respond_with(ok(body)).expect(1).mount(s).await;
    }
}

fn entry_ids(out: &Value) -> Vec<&str> {
    out["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| e["id"].as_str().expect("id"))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn record_then_replay_pages_to_the_end_and_redacts_the_canary() {
    let s = crate::support::mock::server().await;
    three_pages(&s).await;
    let f = folder(&s.uri());
    let recorded = f.run(&["getupdates", "--record", "-vv"]);
    let first = recorded.ok_json();
    assert_eq!(entry_ids(&first), ["a", "b", "c", "d", "e"]);
    assert!(
        recorded.stderr.contains("recorded 3 HTTP exchange(s) to"),
        "{}",
        recorded.render()
    );
    // Every page was requested once; the server goes away before the replay.
    s.verify().await;
    drop(s);

    let cassette = f.read("cassettes/getupdates.json");
    let tape: Value = serde_json::from_str(&cassette).expect("the cassette is JSON");
    assert_eq!(tape["interactions"].as_array().unwrap().len(), 3);
    assert_eq!(
        tape["interactions"][1]["request"]["query"],
        json!([["cursor", "c2"]])
    );

    let replayed = f.run(&["getupdates", "--replay", "-vv"]);
    assert_eq!(replayed.ok_json(), first, "{}", replayed.render());
    assert_eq!(first["entries"][0]["value"]["note"], "***");

    for text in [
        &cassette,
        &recorded.stdout,
        &recorded.stderr,
        &replayed.stdout,
        &replayed.stderr,
    ] {
        assert!(!text.contains(CANARY), "the canary leaked:\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn cassette_flag_names_the_file_and_identical_requests_replay_in_order() {
    let s = crate::support::mock::server().await;
    Mock::given(method("GET"))
        .and(path("/items/a"))
        .respond_with(ok(json!({"id": "a", "v": 1})))
        .up_to_n_times(1)
        .expect(1)
        .mount(&s)
        .await;
    Mock::given(method("GET"))
        .and(path("/items/a"))
        .once(ok(json!({"id": "a", "v": 2})), &s)
        .await;
    let f = folder(&s.uri());
    f.run(&["get", "--id", "a", "--record", "--cassette", "one.json"])
        .ok_json();
    f.run(&["get", "--id", "a", "--record", "--cassette", "two.json"])
        .ok_json();
    s.verify().await;
    drop(s);
    let v = |file: &str| {
        f.run(&["get", "--id", "a", "--replay", "--cassette", file])
            .ok_json()["v"]
            .clone()
    };
    assert_eq!(v("one.json"), 1);
    assert_eq!(v("two.json"), 2);
    assert!(!f.exists("cassettes"));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unrecorded_request_fails_the_replay_with_the_command_that_records_it() {
    let s = crate::support::mock::server().await;
    Mock::given(method("GET"))
        .and(path("/items/a"))
        .once(ok(json!({"id": "a"})), &s)
        .await;
    let f = folder(&s.uri());
    f.run(&["get", "--id", "a", "--record"]).ok_json();
    s.verify().await;
    drop(s);
    let run = f.run(&["get", "--id", "b", "--replay"]);
    assert_eq!(run.code, 1);
    snap!("replay_unmatched", run);
    snap!(
        "replay_without_cassette",
        f.run(&["getupdates", "--replay"])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_recording_writes_its_cassette_and_a_case_expecting_the_error() {
    let s = crate::support::mock::server().await;
    Mock::given(method("GET"))
        .and(path("/items/zz"))
        .once(
            ResponseTemplate::new(404).set_body_json(json!({"message": "no such item"})),
            &s,
        )
        .await;
    let f = folder(&s.uri());
    let run = f.run(&["get", "--id", "zz", "--record", "--save-case", "missing"]);
    assert_eq!(run.code, 1, "{}", run.render());
    assert!(
        run.stderr
            .contains("saved test case (expecting this error) missing"),
        "{}",
        run.render()
    );
    s.verify().await;
    drop(s);
    assert!(f.exists("cassettes/get.json"));
    // The case expects the vendor's 404, and replays it offline.
    let case: Value = serde_json::from_str(&f.read("tests/missing.json")).unwrap();
    assert_eq!(case["exit"], 1);
    assert!(
        case["error"].as_str().unwrap().contains("no such item"),
        "{case}"
    );
    let test = f.run(&["test"]);
    assert_eq!(test.code, 0, "{}", test.render());
    // The replay fails the same way, from the cassette.
    let replay = f.run(&["get", "--id", "zz", "--replay"]);
    assert_eq!(replay.code, 1);
    assert!(
        replay
            .stderr
            .contains("answered 404 Not Found: no such item"),
        "{}",
        replay.render()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn ferry_test_reports_a_failing_case_and_writes_junit() {
    let s = crate::support::mock::server().await;
    three_pages(&s).await;
    Mock::given(method("GET"))
        .and(path("/items/a"))
        .once(ok(json!({"id": "a", "name": "Ada"})), &s)
        .await;
    let f = folder(&s.uri());
    f.write("in.json", r#"{"get": {"id": "a"}}"#);
    f.run(&["getupdates", "--record", "--save-case", "all"])
        .ok_json();
    f.run(&["-v", "get", "--record", "--save-case", "get-a"])
        .ok_json();
    s.verify().await;
    drop(s);
    let case: Value = serde_json::from_str(&f.read("tests/get-a.json")).unwrap();
    assert_eq!(case["args"], json!(["get"]));
    assert_eq!(case["input"], json!({"get": {"id": "a"}}));
    for file in ["tests/all.json", "tests/get-a.json"] {
        assert!(!f.read(file).contains(CANARY), "{file}");
    }

    let pass = f.run(&["test", "--junit", "ok.xml"]);
    snap!("test_passes", pass);
    assert!(f.read("ok.xml").contains("failures=\"0\""));

    // Someone changes the expected output: the case must fail.
    let mut case = case;
    case["expected"]["name"] = json!("Grace");
    f.write(
        "tests/get-a.json",
        &serde_json::to_string_pretty(&case).unwrap(),
    );
    let fail = f.run(&["test", "--junit", "report.xml"]);
    assert_eq!(fail.code, 1);
    assert!(
        fail.stderr.ends_with("1 passed, 1 failed\n"),
        "{}",
        fail.render()
    );
    snap!("test_fails", fail);
    assert_eq!(fail.json()["failed"], 1);

    let xml = f.read("report.xml");
    let doc = roxmltree::Document::parse(&xml).expect("the JUnit report is well-formed XML");
    let suite = doc
        .descendants()
        .find(|n| n.has_tag_name("testsuite"))
        .expect("a testsuite");
    assert_eq!(suite.attribute("tests"), Some("2"));
    assert_eq!(suite.attribute("failures"), Some("1"));
    let failure = doc
        .descendants()
        .find(|n| n.has_tag_name("failure"))
        .expect("a failure");
    assert_eq!(failure.parent().unwrap().attribute("name"), Some("get-a"));
    assert!(failure.attribute("message").unwrap().contains("differs"));
}

#[test]
fn ferry_test_alone_in_a_folder_without_cases_explains_how_to_record_one() {
    let f = Folder::new();
    snap!("test_no_cases", f.run(&["test"]));
    snap!(
        "save_case_needs_record",
        f.run(&["get", "--id", "a", "--save-case", "x"])
    );
    snap!(
        "save_case_of_import",
        f.run(&[
            "import",
            "--from",
            "csv:a.csv",
            "--to",
            "csv:b.csv",
            "--record",
            "--save-case",
            "x"
        ])
    );
}

#[test]
fn a_fresh_folder_records_every_action_against_the_sandbox_and_passes_offline() {
    let f = Folder::new();
    let sb = Sandbox::start(&["--port", "0"]);
    crate::support::init_sandbox_folder(&f, "conn", &sb.url);
    let actions = ["check", "get", "insert", "patch", "getupdates", "delete"];
    for action in actions {
        let run = f.run(&["-C", "conn", action, "--record", "--save-case", action]);
        assert_eq!(run.code, 0, "{action}:\n{}", run.render());
    }
    drop(sb);

    let run = f.run(&["-C", "conn", "test", "--junit", "junit.xml"]);
    assert_eq!(run.code, 0, "{}", run.render());
    let out = run.json();
    assert_eq!(out["passed"], actions.len());
    assert_eq!(out["failed"], 0);
    assert!(
        run.stderr.ends_with("6 passed, 0 failed\n"),
        "{}",
        run.render()
    );
    roxmltree::Document::parse(&f.read("junit.xml")).expect("well-formed JUnit XML");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retried_request_replays_its_attempts_in_order() {
    let s = crate::support::mock::server().await;
    Mock::given(method("GET"))
        .and(path("/items/a"))
        .respond_with(ResponseTemplate::new(503).set_body_json(json!({"message": "busy"})))
        .up_to_n_times(1)
        .expect(1)
        .mount(&s)
        .await;
    Mock::given(method("GET"))
        .and(path("/items/a"))
        .once(ok(json!({"id": "a"})), &s)
        .await;
    let f = folder(&s.uri());
    f.write(
        "account.json",
        &format!(
            r#"{{"connector": "http", "baseUrl": "{}", "token": "${{API_TOKEN}}", "retry": {{"baseDelayMs": 1}}}}"#,
            s.uri()
        ),
    );
    let first = f.run(&["get", "--id", "a", "--record"]).ok_json();
    s.verify().await;
    drop(s);
    let tape: Value = serde_json::from_str(&f.read("cassettes/get.json")).unwrap();
    let statuses: Vec<&Value> = tape["interactions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| &i["response"]["status"])
        .collect();
    assert_eq!(statuses, [&json!(503), &json!(200)]);
    let replay = f.run(&["-v", "get", "--id", "a", "--replay"]);
    assert_eq!(replay.ok_json(), first);
    assert!(replay.stderr.contains("503"), "{}", replay.render());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_saved_case_holds_its_value_file_and_replays_without_credentials() {
    let s = crate::support::mock::server().await;
    Mock::given(method("POST"))
        .and(path("/items"))
        .once(ok(json!({"id": "n1", "name": "Ada"})), &s)
        .await;
    let f = folder(&s.uri());
    let manifest = json!({"auth": {"type": "bearer"}, "actions": {"insert": {"path": "/items"}}});
    f.write("connector.json", &manifest.to_string());
    f.write("value.json", r#"{"name": "Ada"}"#);
    f.run_line("insert --value @value.json --record --save-case ins")
        .ok_json();
    s.verify().await;
    drop(s);
    std::fs::remove_file(f.join("value.json")).unwrap();
    // Offline and without the credentials (a CI machine): the case still replays.
    std::fs::remove_file(f.join(".env")).unwrap();
    let case: Value = serde_json::from_str(&f.read("tests/ins.json")).unwrap();
    assert_eq!(
        case["args"],
        json!(["insert", "--value", r#"{"name": "Ada"}"#])
    );
    let run = f.run(&["test"]);
    assert_eq!(run.code, 0, "{}", run.render());
}
