//! The declarative `http` connector through the real binary, against
//! wiremock servers that fail when an expected request is not made: every
//! pagination kind paged to the real end, the loop guards, manifest errors,
//! dry-run output, auth, and a canary secret that must never be printed.

use serde_json::{json, Value};
use wiremock::matchers::{header, method, path, query_param, query_param_is_missing};
use wiremock::{Mock, ResponseTemplate};

use crate::snap;
use crate::support::{ok, Folder, MountOnce};

const CANARY: &str = "CANARY-s3cr3t-9f8e";

/// A folder whose account points at `base` and whose manifest is `manifest`.
fn folder(base: &str, manifest: Value, account_extra: &str) -> Folder {
    let f = Folder::new();
    f.write(
        "connector.json",
        &serde_json::to_string_pretty(&manifest).unwrap(),
    );
    f.write(
        "account.json",
        &format!(r#"{{"connector": "http", "baseUrl": "{base}"{account_extra}}}"#),
    );
    f
}

fn listing(pagination: Value, records: &str) -> Value {
    json!({"actions": {"getupdates": {"path": "/items", "records": records, "pagination": pagination}}})
}

fn items(ids: &[&str]) -> Vec<Value> {
    ids.iter()
        .map(|id| json!({"id": id, "name": format!("n{id}")}))
        .collect()
}

/// The ids getupdates printed, in order.
fn ids(f: &Folder) -> Vec<String> {
    let out = f.run(&["getupdates"]).ok_json();
    out["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect()
}

const ALL: [&str; 5] = ["a", "b", "c", "d", "e"];

#[tokio::test(flavor = "multi_thread")]
async fn offset_pagination_pages_to_the_total() {
    let s = crate::support::mock::server().await;
    for (offset, page) in [("0", &ALL[0..2]), ("2", &ALL[2..4]), ("4", &ALL[4..5])] {
        Mock::given(method("GET"))
            .and(path("/items"))
            .and(query_param("offset", offset))
            .and(query_param("limit", "2"))
            .once(ok(json!({"data": items(page), "total": 5})), &s)
            .await;
    }
    let f = folder(
        &s.uri(),
        listing(
            json!({"type": "offset", "pageSize": 2, "stop": {"total": "/total"}}),
            "/data",
        ),
        "",
    );
    assert_eq!(ids(&f), ALL);
}

#[tokio::test(flavor = "multi_thread")]
async fn offset_pagination_stops_on_an_empty_page() {
    let s = crate::support::mock::server().await;
    for (offset, page) in [("0", &ALL[0..2]), ("2", &ALL[2..4]), ("4", &ALL[4..4])] {
        Mock::given(method("GET"))
            .and(query_param("offset", offset))
            .once(ok(json!(items(page))), &s)
            .await;
    }
    let f = folder(
        &s.uri(),
        listing(
            json!({"type": "offset", "pageSize": 2, "stop": {"emptyPage": true}}),
            "",
        ),
        "",
    );
    assert_eq!(ids(&f), ALL[0..4]);
}

#[tokio::test(flavor = "multi_thread")]
async fn page_number_pagination_stops_on_has_more() {
    let s = crate::support::mock::server().await;
    for (page, ids_, more) in [
        ("1", &ALL[0..2], true),
        ("2", &ALL[2..4], true),
        ("3", &ALL[4..5], false),
    ] {
        Mock::given(method("GET"))
            .and(query_param("page", page))
            .and(query_param("per_page", "2"))
            .once(
                ok(json!({"results": items(ids_), "meta": {"has_more": more}})),
                &s,
            )
            .await;
    }
    let f = folder(
        &s.uri(),
        listing(
            json!({"type": "page", "sizeParam": "per_page", "pageSize": 2, "stop": {"hasMore": "/meta/has_more"}}),
            "/results",
        ),
        "",
    );
    assert_eq!(ids(&f), ALL);
}

#[tokio::test(flavor = "multi_thread")]
async fn cursor_pagination_from_the_body() {
    let s = crate::support::mock::server().await;
    Mock::given(method("GET"))
        .and(query_param_is_missing("cursor"))
        .once(ok(json!({"data": items(&ALL[0..2]), "next": "c2"})), &s)
        .await;
    Mock::given(method("GET"))
        .and(query_param("cursor", "c2"))
        .once(ok(json!({"data": items(&ALL[2..4]), "next": 3})), &s)
        .await;
    Mock::given(method("GET"))
        .and(query_param("cursor", "3"))
        .once(ok(json!({"data": items(&ALL[4..5]), "next": null})), &s)
        .await;
    let f = folder(
        &s.uri(),
        listing(json!({"type": "cursor", "cursorPath": "/next"}), "/data"),
        "",
    );
    assert_eq!(ids(&f), ALL);
}

#[tokio::test(flavor = "multi_thread")]
async fn cursor_pagination_from_a_header() {
    let s = crate::support::mock::server().await;
    Mock::given(method("GET"))
        .and(query_param_is_missing("after"))
        .once(
            ok(json!(items(&ALL[0..2]))).insert_header("X-Next-Cursor", "p2"),
            &s,
        )
        .await;
    Mock::given(method("GET"))
        .and(query_param("after", "p2"))
        .once(
            ok(json!(items(&ALL[2..4]))).insert_header("X-Next-Cursor", "p3"),
            &s,
        )
        .await;
    Mock::given(method("GET"))
        .and(query_param("after", "p3"))
        .once(ok(json!(items(&ALL[4..5]))), &s)
        .await;
    let f = folder(
        &s.uri(),
        listing(
            json!({"type": "cursor", "cursorParam": "after", "cursorHeader": "X-Next-Cursor"}),
            "",
        ),
        "",
    );
    assert_eq!(ids(&f), ALL);
}

#[tokio::test(flavor = "multi_thread")]
async fn next_url_pagination_from_the_body() {
    let s = crate::support::mock::server().await;
    let base = s.uri();
    Mock::given(method("GET"))
        .and(path("/items"))
        .and(query_param_is_missing("p"))
        .once(
            ok(json!({"data": items(&ALL[0..2]), "links": {"next": format!("{base}/items?p=2")}})),
            &s,
        )
        .await;
    Mock::given(method("GET"))
        .and(query_param("p", "2"))
        .once(
            ok(json!({"data": items(&ALL[2..4]), "links": {"next": "/items?p=3"}})),
            &s,
        )
        .await;
    Mock::given(method("GET"))
        .and(query_param("p", "3"))
        .once(ok(json!({"data": items(&ALL[4..5]), "links": {}})), &s)
        .await;
    let f = folder(
        &base,
        listing(
            json!({"type": "nextUrl", "nextPath": "/links/next"}),
            "/data",
        ),
        "",
    );
    assert_eq!(ids(&f), ALL);
}

#[tokio::test(flavor = "multi_thread")]
async fn next_url_pagination_from_the_link_header() {
    let s = crate::support::mock::server().await;
    let base = s.uri();
    Mock::given(method("GET"))
        .and(query_param_is_missing("p"))
        .once(
            ok(json!(items(&ALL[0..2]))).insert_header(
                "Link",
                format!(r#"<{base}/items?p=2>; rel="next""#).as_str(),
            ),
            &s,
        )
        .await;
    Mock::given(method("GET"))
        .and(query_param("p", "2"))
        .once(
            ok(json!(items(&ALL[2..4]))).insert_header(
                "Link",
                format!(r#"<{base}/items?p=1>; rel="prev", <{base}/items?p=3>; rel="next""#)
                    .as_str(),
            ),
            &s,
        )
        .await;
    Mock::given(method("GET"))
        .and(query_param("p", "3"))
        .once(
            ok(json!(items(&ALL[4..5]))).insert_header(
                "Link",
                format!(r#"<{base}/items?p=2>; rel="prev""#).as_str(),
            ),
            &s,
        )
        .await;
    let f = folder(
        &base,
        listing(json!({"type": "nextUrl", "linkHeader": true}), ""),
        "",
    );
    assert_eq!(ids(&f), ALL);
}

#[tokio::test(flavor = "multi_thread")]
async fn max_pages_caps_an_endless_listing() {
    let s = crate::support::mock::server().await;
    Mock::given(method("GET"))
        .and(query_param_is_missing("cursor"))
        .once(ok(json!({"data": items(&ALL[0..2]), "next": "c2"})), &s)
        .await;
    Mock::given(method("GET"))
        .and(query_param("cursor", "c2"))
        .once(ok(json!({"data": items(&ALL[2..4]), "next": "c3"})), &s)
        .await;
    let f = folder(
        &s.uri(),
        listing(
            json!({"type": "cursor", "cursorPath": "/next", "stop": {"maxPages": 2}}),
            "/data",
        ),
        "",
    );
    assert_eq!(ids(&f), ALL[0..4]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_repeated_cursor_is_an_error_not_a_loop() {
    let s = crate::support::mock::server().await;
    Mock::given(method("GET"))
        .and(query_param_is_missing("cursor"))
        .once(ok(json!({"data": items(&ALL[0..2]), "next": "same"})), &s)
        .await;
    Mock::given(method("GET"))
        .and(query_param("cursor", "same"))
        .once(ok(json!({"data": items(&ALL[2..4]), "next": "same"})), &s)
        .await;
    let f = folder(
        &s.uri(),
        listing(json!({"type": "cursor", "cursorPath": "/next"}), "/data"),
        "",
    );
    snap!("repeated_cursor", f.run(&["getupdates"]));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_page_that_repeats_is_an_error_not_a_loop() {
    let s = crate::support::mock::server().await;
    // The server ignores the page parameter and always says there is more.
    Mock::given(method("GET"))
        .respond_with(ok(json!({"data": items(&ALL[0..2]), "more": true})))
        .expect(2)
        .mount(&s)
        .await;
    let f = folder(
        &s.uri(),
        listing(
            json!({"type": "page", "stop": {"hasMore": "/more"}}),
            "/data",
        ),
        "",
    );
    snap!("repeated_page", f.run(&["getupdates"]));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_empty_page_without_an_end_signal_is_an_error() {
    let s = crate::support::mock::server().await;
    Mock::given(method("GET"))
        .once(ok(json!({"data": [], "next": "c2"})), &s)
        .await;
    let f = folder(
        &s.uri(),
        listing(json!({"type": "cursor", "cursorPath": "/next"}), "/data"),
        "",
    );
    snap!("empty_page_without_end", f.run(&["getupdates"]));
}

#[tokio::test(flavor = "multi_thread")]
async fn crud_actions_send_what_the_manifest_says() {
    let s = crate::support::mock::server().await;
    Mock::given(method("GET"))
        .and(path("/v2/customers/c%201"))
        .and(header("X-Workspace", "acme"))
        .once(
            ok(json!({"customer": {"id": "c 1", "email": "a@example.com"}})),
            &s,
        )
        .await;
    Mock::given(method("POST"))
        .and(path("/v2/customers"))
        .and(wiremock::matchers::body_json(
            json!({"customer": {"email": "b@example.com"}}),
        ))
        .once(
            ResponseTemplate::new(201).set_body_json(json!({"result": {"uid": "n1"}})),
            &s,
        )
        .await;
    Mock::given(method("PUT"))
        .and(path("/v2/customers/n1"))
        .once(ok(json!({"customer": {"id": "n1", "name": "B"}})), &s)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/v2/customers/n1"))
        .once(ResponseTemplate::new(204), &s)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2/customers/missing"))
        .once(
            ResponseTemplate::new(404)
                .set_body_json(json!({"errors": [{"detail": "customer missing does not exist"}]})),
            &s,
        )
        .await;
    let manifest = json!({
        "headers": {"X-Workspace": "{workspace}"},
        "actions": {
            "get": {"path": "/v2/customers/{id}", "records": "/customer"},
            "insert": {"path": "/v2/customers", "body": {"customer": "{record}"}, "records": "/result", "id": "/result/uid"},
            "patch": {"method": "PUT", "path": "/v2/customers/{id}", "records": "/customer"},
            "delete": {"path": "/v2/customers/{id}"}
        }
    });
    let f = folder(&s.uri(), manifest, r#", "params": {"workspace": "acme"}"#);
    assert_eq!(
        f.run(&["get", "--id", "c 1"]).ok_json()["email"],
        "a@example.com"
    );
    assert_eq!(
        f.run(&["insert", "--value", r#"{"email": "b@example.com"}"#])
            .ok_json()["id"],
        "n1"
    );
    f.run(&["patch", "--id", "n1", "--value", r#"{"name": "B"}"#])
        .ok_json();
    f.run(&["delete", "--id", "n1"]).ok_json();
    snap!("get_not_found", f.run(&["get", "--id", "missing"]));
    snap!("getupdates_not_described", f.run(&["getupdates"]));
}

/// An API whose ids are numbers: every action prints them as text, the
/// form `--id` takes back (docs/config.md, "Record ids").
#[tokio::test(flavor = "multi_thread")]
async fn numeric_ids_are_printed_as_text_by_every_action() {
    let s = crate::support::mock::server().await;
    Mock::given(method("GET"))
        .and(path("/items/3"))
        .respond_with(ok(json!({"id": 3, "name": "Three"})))
        .expect(2)
        .mount(&s)
        .await;
    Mock::given(method("POST"))
        .and(path("/items"))
        .once(
            ResponseTemplate::new(201).set_body_json(json!({"id": 251, "name": "New"})),
            &s,
        )
        .await;
    Mock::given(method("PATCH"))
        .and(path("/items/3"))
        .once(ok(json!({"id": 3, "name": "Trois"})), &s)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/items/251"))
        .once(ResponseTemplate::new(204), &s)
        .await;
    Mock::given(method("GET"))
        .and(path("/items"))
        .once(
            ok(json!([{"id": 3, "name": "Three"}, {"id": 251, "name": "New"}])),
            &s,
        )
        .await;
    let manifest = json!({
        "actions": {
            "get": {"path": "/items/{id}"},
            "insert": {"path": "/items"},
            "patch": {"path": "/items/{id}"},
            "delete": {"path": "/items/{id}"},
            "getupdates": {"path": "/items"}
        }
    });
    let f = folder(&s.uri(), manifest, "");
    let runs = [
        f.run(&["get", "--id", "3"]),
        f.run(&["insert", "--value", r#"{"name": "New"}"#]),
        f.run(&["patch", "--id", "3", "--value", r#"{"name": "Trois"}"#]),
        f.run(&["delete", "--id", "251"]),
        f.run(&["getupdates"]),
    ];
    let text: String = runs.iter().map(|r| r.render()).collect();
    insta::assert_snapshot!("numeric_ids_as_text", text);
    // What get printed is what --id takes.
    let id = runs[0].ok_json()["id"].as_str().unwrap().to_string();
    assert_eq!(f.run(&["get", "--id", &id]).ok_json()["name"], "Three");
}

#[tokio::test(flavor = "multi_thread")]
async fn verbose_logs_one_line_per_request() {
    let s = crate::support::mock::server().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .expect(1)
        .mount(&s)
        .await;
    Mock::given(method("GET"))
        .once(ok(json!({"id": "c1"})), &s)
        .await;
    let f = folder(
        &s.uri(),
        json!({"actions": {"get": {"path": "/c/{id}"}}}),
        r#", "retry": {"baseDelayMs": 1}"#,
    );
    let run = f.run(&["-v", "get", "--id", "c1"]);
    // The backoff is random: hide the wait.
    let text = regex::Regex::new(r"retrying in \d+ms")
        .unwrap()
        .replace_all(&run.render(), "retrying in [WAIT]")
        .into_owned();
    insta::assert_snapshot!("verbose_get", text);
}

#[tokio::test(flavor = "multi_thread")]
async fn oauth2_fetches_one_token_per_run() {
    let s = crate::support::mock::server().await;
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .and(wiremock::matchers::body_string_contains(
            "grant_type=client_credentials",
        ))
        .and(wiremock::matchers::body_string_contains("client_id=app"))
        .once(
            ok(json!({"access_token": "tok-from-server-77", "expires_in": 3600})),
            &s,
        )
        .await;
    Mock::given(method("GET"))
        .and(header("Authorization", "Bearer tok-from-server-77"))
        .and(query_param_is_missing("cursor"))
        .once(ok(json!({"data": items(&ALL[0..2]), "next": "c2"})), &s)
        .await;
    Mock::given(method("GET"))
        .and(header("Authorization", "Bearer tok-from-server-77"))
        .and(query_param("cursor", "c2"))
        .once(ok(json!({"data": items(&ALL[2..5]), "next": null})), &s)
        .await;
    let mut manifest = listing(json!({"type": "cursor", "cursorPath": "/next"}), "/data");
    manifest["auth"] = json!({"type": "oauth2", "tokenUrl": "/oauth/token"});
    let f = folder(
        &s.uri(),
        manifest,
        r#", "clientId": "app", "clientSecret": "${CLIENT_SECRET}""#,
    );
    f.write(".env", &format!("CLIENT_SECRET={CANARY}\n"));
    let run = f.run(&["-vv", "getupdates"]);
    assert_eq!(run.json()["entries"].as_array().unwrap().len(), 5);
    for text in [&run.stdout, &run.stderr] {
        assert!(!text.contains(CANARY), "{}", run.render());
        assert!(!text.contains("tok-from-server-77"), "{}", run.render());
    }
}

#[test]
fn manifest_errors_name_the_json_path() {
    let cases: &[(&str, &str)] = &[
        (
            "manifest_wrong_type",
            r#"{"actions": {"get": {"path": 3}}}"#,
        ),
        (
            "manifest_unknown_key",
            r#"{"actions": {"list": {"path": "/c", "pagination": {"type": "cursor", "cursorPath": "/n", "stop": {"emptyPages": true}}}}}"#,
        ),
        (
            "manifest_unknown_auth",
            r#"{"auth": {"type": "digest"}, "actions": {}}"#,
        ),
        (
            "manifest_no_end_signal",
            r#"{"actions": {"list": {"path": "/c", "pagination": {"type": "offset"}}}}"#,
        ),
        (
            "manifest_bad_pointer",
            r#"{"actions": {"get": {"path": "/c/{id}", "records": "data"}}}"#,
        ),
        (
            "manifest_invalid_json",
            "{\"actions\": {\n  \"get\": {\"path\": \"/c\",}\n}}",
        ),
    ];
    for (name, manifest) in cases {
        let f = Folder::new();
        f.write(
            "account.json",
            r#"{"connector": "http", "baseUrl": "http://127.0.0.1:9"}"#,
        );
        f.write("connector.json", manifest);
        snap!(*name, f.run(&["check"]));
    }
    let f = Folder::new();
    f.write(
        "account.json",
        r#"{"connector": "http", "baseUrl": "http://127.0.0.1:9"}"#,
    );
    snap!("manifest_missing", f.run(&["check"]));
}

fn dry_run_folder() -> Folder {
    let f = folder(
        "https://api.example.com/v1",
        json!({
            "auth": {"type": "bearer"},
            "headers": {"X-Client": "ferry-tests"},
            "actions": {
                "insert": {"path": "/customers", "body": {"data": "{record}"}},
                "patch": {"path": "/customers/{id}", "query": {"signature": "{token}", "notify": "false"}},
                "delete": {"path": "/customers/{id}"}
            }
        }),
        r#", "token": "${API_TOKEN}""#,
    );
    f.write(".env", &format!("API_TOKEN={CANARY}\n"));
    f
}

#[test]
fn dry_run_prints_the_requests_and_sends_nothing() {
    // The base URL does not resolve: a request that was sent would fail.
    let f = dry_run_folder();
    snap!(
        "dry_run_insert",
        f.run(&[
            "insert",
            "--value",
            r#"{"email": "ada@example.com"}"#,
            "--dry-run"
        ])
    );
    snap!(
        "dry_run_patch",
        f.run(&[
            "patch",
            "--id",
            "c/1",
            "--value",
            r#"{"name": "Ada"}"#,
            "--dry-run"
        ])
    );
    snap!(
        "dry_run_delete",
        f.run(&["delete", "--id", "c1", "--dry-run"])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_canary_secret_is_never_printed() {
    let s = crate::support::mock::server().await;
    // A careless API echoes the credentials back, in bodies and headers.
    Mock::given(method("GET"))
        .and(path("/c/ok"))
        .respond_with(
            ok(json!({"id": "ok", "debug": format!("called with {CANARY}")}))
                .insert_header("X-Echo", CANARY),
        )
        .expect(2)
        .mount(&s)
        .await;
    Mock::given(method("GET"))
        .and(path("/c/bad"))
        .once(
            ResponseTemplate::new(401)
                .set_body_json(json!({"message": format!("token {CANARY} is revoked")})),
            &s,
        )
        .await;
    Mock::given(method("POST"))
        .once(
            ResponseTemplate::new(422).set_body_string(format!("bad key {CANARY}")),
            &s,
        )
        .await;
    let manifest = json!({
        "auth": {"type": "apiKey", "in": "query", "name": "api_key", "value": "{token}"},
        "headers": {"X-Shadow": "{token}"},
        "actions": {"get": {"path": "/c/{id}"}, "insert": {"path": "/c"}, "check": {"path": "/c/ok"}}
    });
    let f = folder(&s.uri(), manifest.clone(), r#", "token": "${API_TOKEN}""#);
    f.write(".env", &format!("API_TOKEN={CANARY}\n"));
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let down = folder(
        &format!("http://127.0.0.1:{closed}"),
        manifest,
        r#", "token": "${API_TOKEN}", "retry": {"maxAttempts": 1}"#,
    );
    down.write(".env", &format!("API_TOKEN={CANARY}\n"));
    let dry = dry_run_folder();

    let runs = [
        (&f, vec!["-vv", "get", "--id", "ok", "-o", "out.json"]),
        (&f, vec!["-vv", "check"]),
        (&f, vec!["-vv", "get", "--id", "bad"]),
        (
            &f,
            vec!["-vv", "insert", "--value", r#"{"email": "a@example.com"}"#],
        ),
        (
            &f,
            vec![
                "-vv",
                "insert",
                "--value",
                r#"{"email": "a@example.com"}"#,
                "--dry-run",
                "-o",
                "dry.json",
            ],
        ),
        (&down, vec!["-vv", "get", "--id", "ok"]),
        (
            &dry,
            vec!["-vv", "patch", "--id", "c1", "--value", "{}", "--dry-run"],
        ),
        (&f, vec!["connectors", "http"]),
    ];
    for (folder, args) in runs {
        let run = folder.run(&args);
        let all = format!("{}{}", run.stdout, run.stderr);
        assert!(
            !all.contains(CANARY),
            "{args:?} printed the secret:\n{}",
            run.render()
        );
    }
    for file in ["out.json", "dry.json"] {
        let text = f.read(file);
        assert!(!text.contains(CANARY), "{file}: {text}");
    }
    assert!(f.read("dry.json").contains("api_key=***"));
}

#[test]
fn connectors_http_documents_every_manifest_field() {
    let f = Folder::new();
    let spec = f.run(&["connectors", "http"]).ok_json();
    let fields: Vec<&str> = spec["manifest"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap())
        .collect();
    for field in [
        "baseUrl",
        "auth.type",
        "auth.tokenUrl",
        "headers",
        "idField",
        "groups[].path",
        "retry",
        "actions.*.path",
        "actions.*.records",
        "actions.*.id",
        "actions.*.pagination.cursorPath",
        "actions.*.pagination.linkHeader",
        "actions.*.pagination.stop.hasMore",
        "actions.getupdates.since.param",
        "actions.getupdates.deleted",
    ] {
        assert!(fields.contains(&field), "{field} is not documented");
    }
    let options: Vec<&str> = spec["options"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["key"].as_str().unwrap())
        .collect();
    for key in [
        "baseUrl",
        "rateLimit",
        "retry",
        "timeoutSecs",
        "token",
        "params",
    ] {
        assert!(options.contains(&key), "{key}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn upserts_patch_then_insert_and_report_rejections_per_record() {
    let s = crate::support::mock::server().await;
    Mock::given(method("PATCH"))
        .and(path("/c/a"))
        .once(ok(json!({"id": "a"})), &s)
        .await;
    Mock::given(method("PATCH"))
        .and(path("/c/b"))
        .once(ResponseTemplate::new(404), &s)
        .await;
    Mock::given(method("PATCH"))
        .and(path("/c/x"))
        .once(
            ResponseTemplate::new(422).set_body_json(json!({"message": "email is invalid"})),
            &s,
        )
        .await;
    Mock::given(method("POST"))
        .and(path("/c"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": "b"})))
        .up_to_n_times(1)
        .expect(1)
        .mount(&s)
        .await;
    Mock::given(method("POST"))
        .and(path("/c"))
        .once(
            ResponseTemplate::new(201).set_body_json(json!({"id": "new1"})),
            &s,
        )
        .await;
    let f = folder(
        &s.uri(),
        json!({"actions": {"insert": {"path": "/c"}, "patch": {"path": "/c/{id}"}}}),
        "",
    );
    let mut ctx = ferry::ctx::Ctx::from_process().expect("ctx");
    ctx.folder = f.path().to_path_buf();
    let connector = ctx.connector().expect("open the connector");
    let records: Vec<ferry::connector::Record> = [
        json!({"id": "a", "email": "a@example.com"}),
        json!({"id": "b", "email": "b@example.com"}),
        json!({"id": "x", "email": "nope"}),
        json!({"email": "n@example.com"}),
    ]
    .iter()
    .map(|v| v.as_object().cloned().unwrap())
    .collect();
    let outcomes = connector
        .sink()
        .expect("a sink")
        .upsert_batch(std::sync::Arc::new(records))
        .await
        .expect("the batch as a whole works");
    let outcomes = serde_json::to_value(&outcomes).unwrap();
    let outcomes = crate::support::filter(&outcomes.to_string(), f.path());
    insta::assert_snapshot!("upsert_outcomes", outcomes);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_credential_fails_the_batch_instead_of_rejecting_its_records() {
    let s = crate::support::mock::server().await;
    Mock::given(method("PATCH"))
        .and(path("/c/a"))
        .once(
            ResponseTemplate::new(401).set_body_json(json!({"message": "token expired"})),
            &s,
        )
        .await;
    let f = folder(
        &s.uri(),
        json!({"actions": {"insert": {"path": "/c"}, "patch": {"path": "/c/{id}"}}}),
        "",
    );
    f.write(
        "in.jsonl",
        "{\"id\": \"a\", \"email\": \"a@example.com\"}\n",
    );
    let run = f.run_line("import --from jsonl:in.jsonl --to . --rejects rejects.jsonl");
    assert_eq!(run.code, 1, "{}", run.render());
    assert!(
        run.stderr.contains("401") && run.stderr.contains("token expired"),
        "{}",
        run.render()
    );
    assert!(
        run.stderr.contains("--resume"),
        "the resume command is printed: {}",
        run.render()
    );
    assert!(
        !f.exists("rejects.jsonl"),
        "a 401 is not the record's fault"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn read_page_walks_a_listing_by_position_and_guards_loops() {
    let s = crate::support::mock::server().await;
    Mock::given(method("GET"))
        .and(query_param_is_missing("cursor"))
        .and(query_param("limit", "2"))
        .once(
            ok(json!({"data": items(&ALL[0..2]), "next": "c2", "total": 5})),
            &s,
        )
        .await;
    Mock::given(method("GET"))
        .and(query_param("cursor", "c2"))
        .respond_with(ok(
            json!({"data": items(&ALL[2..4]), "next": "c3", "total": 5}),
        ))
        .expect(2)
        .mount(&s)
        .await;
    Mock::given(method("GET"))
        .and(query_param("cursor", "c3"))
        .once(
            ok(json!({"data": items(&ALL[4..5]), "next": null, "total": 5})),
            &s,
        )
        .await;
    let manifest = json!({"actions": {"list": {"path": "/items", "records": "/data",
        "pagination": {"type": "cursor", "cursorPath": "/next", "limitParam": "limit", "stop": {"total": "/total"}}}}});
    let f = folder(&s.uri(), manifest, "");
    let mut ctx = ferry::ctx::Ctx::from_process().expect("ctx");
    ctx.folder = f.path().to_path_buf();
    let c = ctx.connector().expect("open");
    let mut pos = ferry::connector::Position::start();
    let mut seen = Vec::new();
    let mut positions = Vec::new();
    loop {
        let page = c
            .source()
            .expect("a source")
            .read_page(&pos, 2)
            .await
            .expect("page");
        assert_eq!(page.total, Some(5));
        seen.extend(
            page.records
                .iter()
                .map(|r| r["id"].as_str().unwrap().to_string()),
        );
        match page.next {
            Some(next) => {
                positions.push((next.offset, next.cursor.clone()));
                pos = next;
            }
            None => break,
        }
    }
    assert_eq!(seen, ALL);
    assert_eq!(
        positions,
        [(2, Some("c2".to_string())), (4, Some("c3".to_string()))]
    );
    // Reading a page again (a retry or a resume) is not a loop.
    let again = c
        .source()
        .expect("a source")
        .read_page(
            &ferry::connector::Position {
                offset: 2,
                cursor: Some("c2".into()),
            },
            2,
        )
        .await
        .expect("a page read twice");
    assert_eq!(again.records.len(), 2);
    assert_eq!(again.next.and_then(|n| n.cursor).as_deref(), Some("c3"));
}

#[tokio::test(flavor = "multi_thread")]
async fn debug_log_shows_headers_and_bodies_redacted() {
    let s = crate::support::mock::server().await;
    Mock::given(method("POST"))
        .and(path("/c"))
        .and(header("Authorization", format!("Bearer {CANARY}").as_str()))
        .once(
            ResponseTemplate::new(201)
                .set_body_json(
                    json!({"id": "n1", "email": "a@example.com", "access_token": "issued-token-1"}),
                )
                .insert_header("Set-Cookie", "session=abc123"),
            &s,
        )
        .await;
    let manifest = json!({"auth": {"type": "bearer"}, "actions": {"insert": {"path": "/c", "query": {"key": "{token}", "mode": "fast"}}}});
    let f = folder(&s.uri(), manifest, r#", "token": "${API_TOKEN}""#);
    f.write(".env", &format!("API_TOKEN={CANARY}\n"));
    let run = f.run(&[
        "-vv",
        "insert",
        "--value",
        r#"{"email": "a@example.com", "password": "hunter2-pw"}"#,
    ]);
    let text = regex::Regex::new(r"(?m)^< date: .*$")
        .unwrap()
        .replace_all(&run.render(), "< date: [DATE]")
        .into_owned();
    assert!(!text.contains(CANARY) && !text.contains("hunter2-pw") && !text.contains("abc123"));
    insta::assert_snapshot!("debug_insert", text);
}

#[test]
fn a_last_sync_without_since_in_the_manifest_is_refused() {
    let f = folder(
        "http://127.0.0.1:9",
        listing(json!({"type": "cursor", "cursorPath": "/next"}), "/data"),
        "",
    );
    snap!(
        "last_sync_without_since",
        f.run(&["getupdates", "--last-sync", "42"])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_account_rate_limit_paces_a_listing() {
    let s = crate::support::mock::server().await;
    let pages = ["a", "b", "c", "d", "e", "f"];
    for (i, id) in pages.iter().enumerate() {
        let next = pages.get(i + 1).map(|n| format!("after-{n}"));
        let builder = Mock::given(method("GET"));
        let builder = if i == 0 {
            builder.and(query_param_is_missing("cursor"))
        } else {
            builder.and(query_param("cursor", format!("after-{id}").as_str()))
        };
        builder
            .once(ok(json!({"data": items(&[id]), "next": next})), &s)
            .await;
    }
    let f = folder(
        &s.uri(),
        listing(json!({"type": "cursor", "cursorPath": "/next"}), "/data"),
        r#", "rateLimit": {"rps": 5, "burst": 1}"#,
    );
    let (run, waits) = f.run_on_virtual_clock(&["getupdates"]);
    let entries = run.ok_json()["entries"].as_array().unwrap().clone();
    let got: Vec<&str> = entries.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(got, pages);
    // Six requests at 5 per second: five gaps of 200 ms.
    assert_eq!(waits.of("slot"), [std::time::Duration::from_millis(200); 5]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bulk_action_writes_import_batches_in_one_request_each() {
    let s = crate::support::mock::server().await;
    let rec = |id: &str| json!({"id": id, "email": format!("{id}@example.com")});
    Mock::given(method("POST"))
        .and(path("/c/bulk"))
        .and(wiremock::matchers::body_json(
            json!({"records": [rec("a"), rec("b")], "mode": "upsert"}),
        ))
        .once(
            ok(json!({"results": [
                {"id": "a", "status": "created"},
                {"id": "b", "status": "rejected", "error": "email is taken"}
            ]})),
            &s,
        )
        .await;
    Mock::given(method("POST"))
        .and(path("/c/bulk"))
        .and(wiremock::matchers::body_json(
            json!({"records": [rec("c")], "mode": "upsert"}),
        ))
        .once(
            ok(json!({"results": [{"id": "c", "status": "created"}]})),
            &s,
        )
        .await;
    let f = folder(
        &s.uri(),
        json!({"actions": {"bulk": {
            "path": "/c/bulk",
            "body": {"records": "{records}", "mode": "upsert"},
            "results": "/results",
            "error": "/error",
            "batchSize": 2
        }}}),
        "",
    );
    f.write(
        "in.jsonl",
        "{\"id\":\"a\",\"email\":\"a@example.com\"}\n{\"id\":\"b\",\"email\":\"b@example.com\"}\n{\"id\":\"c\",\"email\":\"c@example.com\"}\n",
    );
    let run = f.run(&["import", "--from", "jsonl:in.jsonl", "--to", "."]);
    assert_eq!(run.code, 3, "one record rejected:\n{}", run.render());
    let summary = run.json();
    assert_eq!(summary["read"], 3, "{summary}");
    assert_eq!(summary["written"], 2, "{summary}");
    assert_eq!(summary["batches"], 2, "{summary}");
    let rejects = std::fs::read_dir(f.join(".ferry"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().contains("rejects"))
        .expect("a rejects file");
    let rejects = std::fs::read_to_string(rejects).unwrap();
    assert!(rejects.contains("email is taken"), "{rejects}");

    // The dry run shows the same bulk request and sends nothing more.
    let run = f.run_line("import --from jsonl:in.jsonl --to . --dry-run");
    assert_eq!(run.code, 0, "{}", run.render());
    assert_eq!(
        run.json()["requests"][0]["url"],
        format!("{}/c/bulk", s.uri())
    );
}

#[test]
fn bulk_only_fields_are_refused_on_other_actions() {
    let f = folder(
        "http://127.0.0.1:9",
        json!({"actions": {"get": {"path": "/c/{id}", "results": "/r"}}}),
        "",
    );
    snap!("bulk_field_on_get", f.run(&["get", "--id", "a"]));
    let f = folder(
        "http://127.0.0.1:9",
        json!({"actions": {"bulk": {"path": "/c/bulk"}}}),
        "",
    );
    snap!("bulk_without_results", f.run(&["check"]));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_timeout_hint_names_timeout_secs() {
    let s = crate::support::mock::server().await;
    Mock::given(method("GET"))
        .and(path("/items/a"))
        .respond_with(ok(json!({"id": "a"})).set_delay(std::time::Duration::from_secs(3)))
        .expect(2)
        .mount(&s)
        .await;
    let f = folder(
        &s.uri(),
        json!({"actions": {"get": {"path": "/items/{id}"}}}),
        r#", "timeoutSecs": 0.2, "retry": {"maxAttempts": 2, "baseDelayMs": 0}"#,
    );
    let run = f.run(&["get", "--id", "a"]);
    assert!(run.stderr.contains("timeoutSecs"), "{}", run.render());
    snap!("http_timeout_hint", run);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hostile_retry_after_is_no_panic() {
    for (name, value, requests) in [("nan", "NaN", 21), ("huge", "1e300", 1)] {
        let s = crate::support::mock::server().await;
        Mock::given(method("GET"))
            .and(path("/items/a"))
            .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", value))
            .expect(requests)
            .mount(&s)
            .await;
        let f = folder(
            &s.uri(),
            json!({"actions": {"get": {"path": "/items/{id}"}}}),
            "",
        );
        let (run, waits) = f.run_on_virtual_clock(&["get", "--id", "a"]);
        assert_eq!(run.code, 1, "{}", run.render());
        // A NaN is no wait asked for: backoff between the 21 attempts; a
        // huge wait is refused before any.
        assert_eq!(waits.of("retry").len(), requests as usize - 1, "{waits:?}");
        snap!(format!("http_retry_after_{name}"), run);
    }
}
