//! `ferry export` to HTTP destinations through the `http` connector: the
//! sandbox (its customers keyed by email and its groups, as shipped in
//! examples/sandbox) and a wiremock API that fails the test when an
//! expected request is not made, or one comes that nobody expected.

use serde_json::{json, Value};
use wiremock::matchers::{body_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{ok, Folder, MountOnce, Run, Sandbox};

const FIRST: &str = r#"{"id": "p1", "properties": {"email": "ada@example.com", "name": "Ada", "plan": "pro"}, "groups": ["vip", "beta"]}
{"id": "p2", "properties": {"email": "grace@example.com", "name": "Grace"}, "groups": ["vip"]}
{"id": "p3", "properties": {"email": "alan.lovelace2@example.com", "name": "Alan"}}
"#;

/// Ada renamed, her plan cleared, she leaves vip; Grace joins beta; p3 deleted.
const SECOND: &str = r#"{"id": "p1", "properties": {"email": "ada@example.com", "name": "Ada L"}, "groups": ["beta"]}
{"id": "p2", "properties": {"email": "grace@example.com", "name": "Grace"}, "groups": ["vip", "beta"]}
{"id": "p3", "toDelete": true}
"#;

/// The summary counts a dry run predicts, and the same counts of a real run.
fn counts(run: &Run, predicted: bool) -> Value {
    let s = run.json();
    let s = if predicted { s["predicted"].clone() } else { s };
    let keys = [
        "created",
        "updated",
        "deleted",
        "unchanged",
        "groupsAdded",
        "groupsRemoved",
    ];
    Value::Object(
        keys.iter()
            .map(|k| (k.to_string(), s[*k].clone()))
            .collect(),
    )
}

/// The sandbox's groups as `{name: [member emails, sorted]}`.
fn memberships(sb: &Sandbox) -> Value {
    let mut out = serde_json::Map::new();
    for g in sb.get("/groups")["data"].as_array().unwrap() {
        let id = g["id"].as_str().unwrap();
        let mut emails: Vec<String> = sb.get(&format!("/groups/{id}/members"))["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| sb.get(&format!("/customers/{}", m.as_str().unwrap()))["email"].to_string())
            .collect();
        emails.sort();
        out.insert(g["name"].as_str().unwrap().to_string(), json!(emails));
    }
    Value::Object(out)
}

fn customer(sb: &Sandbox, email: &str) -> Value {
    let found = sb.get(&format!("/customers?email={email}"));
    let data = found["data"].as_array().unwrap();
    assert!(data.len() <= 1, "{email} is in the sandbox once: {found}");
    data.first().cloned().unwrap_or(Value::Null)
}

#[test]
fn export_to_the_sandbox_sends_every_kind_of_change_once() {
    let sb = Sandbox::start(&["--port", "0", "--records", "3"]);
    let f = sb.folder("");
    f.write("first.jsonl", FIRST);
    let export = |file: &str, extra: &[&str]| {
        let mut args = vec!["export", "--to", ".", "--input", file];
        args.extend_from_slice(extra);
        f.run(&args)
    };

    let dry = export("first.jsonl", &["--dry-run"]);
    assert_eq!(dry.code, 0, "{}", dry.render());
    assert_eq!(
        sb.get("/groups"),
        json!({"data": []}),
        "a dry run sends nothing"
    );
    let first = export("first.jsonl", &[]);
    assert_eq!(first.code, 0, "{}", first.render());
    assert_eq!(counts(&dry, true), counts(&first, false));
    assert_eq!(
        counts(&first, false),
        json!({"created": 3, "updated": 0, "deleted": 0, "unchanged": 0, "groupsAdded": 3, "groupsRemoved": 0})
    );
    // Alan was in the sandbox already: found by email and updated, not duplicated.
    let alan = customer(&sb, "alan.lovelace2@example.com");
    assert_eq!(
        (alan["id"].clone(), alan["name"].clone()),
        (json!("cus_0000002"), json!("Alan"))
    );
    assert_eq!(customer(&sb, "ada@example.com")["plan"], "pro");
    assert_eq!(
        memberships(&sb),
        json!({"beta": ["\"ada@example.com\""], "vip": ["\"ada@example.com\"", "\"grace@example.com\""]})
    );

    let again = export("first.jsonl", &[]);
    assert_eq!(
        counts(&again, false),
        json!({"created": 0, "updated": 0, "deleted": 0, "unchanged": 3, "groupsAdded": 0, "groupsRemoved": 0}),
        "the same file twice sends nothing the second time"
    );

    f.write("second.jsonl", SECOND);
    let dry = export("second.jsonl", &["--dry-run"]);
    let second = export("second.jsonl", &[]);
    assert_eq!(second.code, 0, "{}", second.render());
    assert_eq!(counts(&dry, true), counts(&second, false));
    assert_eq!(
        counts(&second, false),
        json!({"created": 0, "updated": 1, "deleted": 1, "unchanged": 0, "groupsAdded": 1, "groupsRemoved": 1})
    );
    let ada = customer(&sb, "ada@example.com");
    assert_eq!(ada["name"], "Ada L");
    assert!(ada.get("plan").is_none(), "the cleared plan is gone: {ada}");
    assert_eq!(customer(&sb, "alan.lovelace2@example.com"), Value::Null);
    assert_eq!(
        memberships(&sb),
        json!({"beta": ["\"ada@example.com\"", "\"grace@example.com\""], "vip": ["\"grace@example.com\""]})
    );
    let third = export("second.jsonl", &[]);
    assert_eq!(counts(&third, false)["unchanged"], 2);
    assert_eq!(
        (
            counts(&third, false)["updated"].clone(),
            counts(&third, false)["groupsAdded"].clone()
        ),
        (json!(0), json!(0))
    );
}

const TOKEN: &str = "CANARY-export-token-93fd";

/// An API described by a manifest, with every export action.
fn api_folder(base: &str) -> Folder {
    let f = Folder::new();
    f.write(
        "connector.json",
        &json!({
            "baseUrl": base,
            "auth": {"type": "bearer"},
            "exportKey": "email",
            "retry": {"maxAttempts": 1},
            "actions": {
                "get": {"path": "/contacts/{id}"},
                "insert": {"path": "/contacts", "id": "/contact/id"},
                "patch": {"path": "/contacts/{id}"},
                "delete": {"path": "/contacts/{id}"},
                "find": {"path": "/contacts", "query": {"email": "{key}"}, "records": "/contacts"},
                "findGroup": {"path": "/lists", "query": {"name": "{name}"}, "records": "/lists"},
                "createGroup": {"path": "/lists", "body": {"list": {"name": "{name}"}}, "id": "/list/id"},
                "addMembers": {"path": "/lists/{group}/members", "body": {"add": "{ids}"}, "results": "/results", "error": "/problem", "batchSize": 2},
                "removeMembers": {"method": "POST", "path": "/lists/{group}/members/remove", "body": {"remove": "{ids}"}}
            }
        })
        .to_string(),
    );
    f.write(
        "account.json",
        &json!({"connector": "http", "token": TOKEN}).to_string(),
    );
    f
}

fn api(verb: &str, p: &str) -> wiremock::MockBuilder {
    Mock::given(method(verb))
        .and(path(p))
        .and(header("Authorization", format!("Bearer {TOKEN}").as_str()))
}

/// Fail unless every request the server got is one of `allowed` ("METHOD /path").
async fn only(s: &MockServer, allowed: &[&str]) {
    let unexpected: Vec<String> = s
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .map(|r| format!("{} {}", r.method, r.url.path()))
        .filter(|r| !allowed.contains(&r.as_str()))
        .collect();
    assert!(unexpected.is_empty(), "unexpected requests: {unexpected:?}");
}

fn no_canary(run: &Run) {
    run.hides(&[TOKEN], "the token");
}

#[tokio::test(flavor = "multi_thread")]
async fn export_to_an_http_api_makes_exactly_the_documented_requests() {
    let s = crate::support::mock::server().await;
    let f = api_folder(&s.uri());
    f.write(
        "first.jsonl",
        r#"{"id": "a", "properties": {"email": "a@x.com", "name": "A", "plan": "pro"}, "groups": ["vip"]}
{"id": "b", "properties": {"email": "b@x.com", "name": "B"}, "groups": ["vip"]}
{"id": "c", "properties": {"email": "c@x.com", "name": "C"}, "groups": ["vip"]}
"#,
    );
    // First run: a and b are new, c exists already and is updated; vip is
    // created once; members go two per request, c refused by the API.
    for (email, found) in [
        ("a@x.com", json!([])),
        ("b@x.com", json!([])),
        ("c@x.com", json!([{"id": "7", "email": "c@x.com"}])),
    ] {
        api("GET", "/contacts")
            .and(query_param("email", email))
            .once(ok(json!({ "contacts": found })), &s)
            .await;
    }
    for (body, id) in [
        (json!({"email": "a@x.com", "name": "A", "plan": "pro"}), "5"),
        (json!({"email": "b@x.com", "name": "B"}), "6"),
    ] {
        api("POST", "/contacts")
            .and(body_json(body))
            .once(
                ResponseTemplate::new(201).set_body_json(json!({"contact": {"id": id}})),
                &s,
            )
            .await;
    }
    api("PATCH", "/contacts/7")
        .and(body_json(json!({"email": "c@x.com", "name": "C"})))
        .once(ok(json!({"id": "7"})), &s)
        .await;
    api("GET", "/lists")
        .and(query_param("name", "vip"))
        .once(ok(json!({"lists": []})), &s)
        .await;
    api("POST", "/lists")
        .and(body_json(json!({"list": {"name": "vip"}})))
        .once(
            ResponseTemplate::new(201).set_body_json(json!({"list": {"id": "L1"}})),
            &s,
        )
        .await;
    api("POST", "/lists/L1/members")
        .and(body_json(json!({"add": ["5", "6"]})))
        .once(ok(json!({"results": [{}, {}]})), &s)
        .await;
    api("POST", "/lists/L1/members")
        .and(body_json(json!({"add": ["7"]})))
        .once(
            ok(json!({"results": [{"problem": "contact 7 is unsubscribed"}]})),
            &s,
        )
        .await;
    let first = f.run_line("export --to . --input first.jsonl --errors problems.jsonl");
    no_canary(&first);
    let sum = first.json();
    assert_eq!(first.code, 3, "one membership failed: {}", first.render());
    assert_eq!(
        (
            sum["created"].clone(),
            sum["groupsAdded"].clone(),
            sum["rejected"].clone()
        ),
        (json!(3), json!(2), json!(1))
    );
    assert!(f
        .read("problems.jsonl")
        .contains("contact 7 is unsubscribed"));
    assert!(!f.read("problems.jsonl").contains(TOKEN));
    s.verify().await;
    only(
        &s,
        &[
            "GET /contacts",
            "POST /contacts",
            "PATCH /contacts/7",
            "GET /lists",
            "POST /lists",
            "POST /lists/L1/members",
        ],
    )
    .await;
    crate::support::mock::reset(&s).await;

    // Second run: a's plan cleared (null in a merge patch) and a leaves vip,
    // c is retried into vip (the list is found this time), b is deleted.
    f.write(
        "second.jsonl",
        r#"{"id": "a", "properties": {"email": "a@x.com", "name": "A"}, "groups": []}
{"id": "b", "toDelete": true}
{"id": "c", "properties": {"email": "c@x.com", "name": "C"}, "groups": ["vip"]}
"#,
    );
    api("PATCH", "/contacts/5")
        .and(body_json(json!({"plan": null})))
        .once(ok(json!({"id": "5"})), &s)
        .await;
    api("DELETE", "/contacts/6")
        .once(ResponseTemplate::new(204), &s)
        .await;
    api("GET", "/lists")
        .and(query_param("name", "vip"))
        .once(ok(json!({"lists": [{"id": "L1", "name": "vip"}]})), &s)
        .await;
    api("POST", "/lists/L1/members")
        .and(body_json(json!({"add": ["7"]})))
        .once(ok(json!({"results": [{}]})), &s)
        .await;
    api("POST", "/lists/L1/members/remove")
        .and(body_json(json!({"remove": ["5"]})))
        .once(ResponseTemplate::new(204), &s)
        .await;
    let second = f.run(&["export", "--to", ".", "--input", "second.jsonl"]);
    no_canary(&second);
    let sum = second.json();
    assert_eq!(second.code, 0, "{}", second.render());
    // Two memberships removed: a's, sent, and b's, which went with its
    // record (no request for it).
    assert_eq!(
        (
            sum["updated"].clone(),
            sum["deleted"].clone(),
            sum["groupsAdded"].clone(),
            sum["groupsRemoved"].clone()
        ),
        (json!(1), json!(1), json!(1), json!(2))
    );
    s.verify().await;
    only(
        &s,
        &[
            "PATCH /contacts/5",
            "DELETE /contacts/6",
            "GET /lists",
            "POST /lists/L1/members",
            "POST /lists/L1/members/remove",
        ],
    )
    .await;
    crate::support::mock::reset(&s).await;

    // The same file again sends nothing at all.
    let third = f.run(&["export", "--to", ".", "--input", "second.jsonl"]);
    assert_eq!(third.code, 0, "{}", third.render());
    assert_eq!(third.json()["unchanged"], 2);
    only(&s, &[]).await;
}
