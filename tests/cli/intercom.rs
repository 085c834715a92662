//! The `intercom` connector through the real binary against wiremock
//! servers that answer with the documented shapes
//! (docs/connectors/intercom.md) and fail when an expected request is not
//! made or an unexpected one is: every action with its exact method, path,
//! headers and body, the `starting_after` cursor followed to the end,
//! getupdates by `updated_at`, a 429 that waits for `X-RateLimit-Reset`,
//! Intercom's error messages, an import with per-record rejections, an
//! export that creates, updates, clears, moves tags (each tag created once)
//! and deletes, and dry-run previews. The canary token must never be printed.

use serde_json::{json, Value};
use wiremock::matchers::{body_json, header, method, path, query_param, query_param_is_missing};
use wiremock::{Mock, ResponseTemplate};

use crate::snap;
use crate::support::saas::{
    a_429_waited_out, an_import_stops_a_loop, an_offset_without_a_checkpoint_is_refused, counted,
    dry_run_previews, export_scenario, import_reads_to_the_end, import_with_refusals, Previews,
    Step, Vendor,
};
use crate::support::{ok, Folder, MountOnce, Run};

pub const TOKEN: &str = "CANARY-ic-token-3e8b";

/// The connector as the SaaS scenarios see it.
const VENDOR: Vendor = Vendor {
    folder: ".",
    secrets: &[TOKEN],
};

/// The account of a test: fast rate limits and quick retries.
fn account(base: &str) -> String {
    json!({
        "connector": "intercom",
        "accessToken": TOKEN,
        "baseUrl": base,
        "rateLimit": {"rps": 1000, "burst": 1000, "maxInFlight": 8},
        "retry": {"maxAttempts": 2, "baseDelayMs": 1}
    })
    .to_string()
}

pub fn folder(base: &str) -> Folder {
    let f = Folder::new();
    f.write("account.json", &account(base));
    f
}

/// A request to Intercom with the token and the pinned version.
fn ic(verb: &str, p: &str) -> wiremock::MockBuilder {
    Mock::given(method(verb))
        .and(path(p))
        .and(header("Authorization", format!("Bearer {TOKEN}").as_str()))
        .and(header("Intercom-Version", "2.14"))
        .and(header("Accept", "application/json"))
}

/// An error answer in Intercom's `error.list` shape.
fn error(status: u16, code: &str, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({
        "type": "error.list", "request_id": "b3a2f1e0-0000-4000-8000-000000000001",
        "errors": [{"code": code, "message": message}]
    }))
}

/// A contact as the API answers it.
fn contact(id: &str, email: &str, updated_at: i64) -> Value {
    json!({
        "type": "contact", "id": id, "workspace_id": "ecahpwf5", "external_id": null,
        "role": "user", "email": email, "phone": null, "name": format!("Contact {id}"),
        "avatar": null, "owner_id": null, "has_hard_bounced": false, "marked_email_as_spam": false,
        "unsubscribed_from_emails": false, "created_at": 1571672154, "updated_at": updated_at,
        "signed_up_at": null, "last_seen_at": null, "custom_attributes": {},
        "tags": {"type": "list", "data": [], "url": format!("/contacts/{id}/tags"), "total_count": 0, "has_more": false}
    })
}

/// A list or search answer; `next` is the cursor of the following page.
fn list(data: Vec<Value>, next: Option<&str>, total: u64) -> Value {
    let mut pages = json!({"type": "pages", "page": 1, "per_page": data.len(), "total_pages": 3});
    if let Some(n) = next {
        pages["next"] = json!({"page": 2, "starting_after": n});
    }
    json!({"type": "list", "data": data, "total_count": total, "pages": pages})
}

/// Assert the token reached no output.
fn no_canary(run: &Run) {
    run.hides(&[TOKEN], "the token");
}

#[test]
fn connectors_intercom_documents_options_and_fields() {
    let f = Folder::new();
    let run = f.run(&["connectors", "intercom"]);
    assert_eq!(run.code, 0, "{}", run.render());
    snap!("intercom_connector", run);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_action_sends_the_documented_request() {
    let s = crate::support::mock::server().await;
    ic("GET", "/me")
        .respond_with(ok(json!({"type": "admin", "id": "991267", "email": "admin@example.com",
            "app": {"type": "app", "id_code": "this_is_an_id", "name": "MyApp", "region": "US", "timezone": "America/Los_Angeles"}})))
        .expect(2)
        .mount(&s)
        .await;
    ic("GET", "/contacts/6643703ffae7834d1792fd30")
        .once(
            ok(contact(
                "6643703ffae7834d1792fd30",
                "ada@example.com",
                1700000000,
            )),
            &s,
        )
        .await;
    ic("POST", "/contacts/search")
        .and(header("Content-Type", "application/json"))
        .and(body_json(json!({
            "query": {"operator": "AND", "value": [
                {"field": "email", "operator": "=", "value": "ada@example.com"},
                {"field": "role", "operator": "=", "value": "user"}]},
            "pagination": {"per_page": 1}})))
        .once(
            ok(list(
                vec![contact("c1", "ada@example.com", 1700000000)],
                None,
                1,
            )),
            &s,
        )
        .await;
    ic("GET", "/contacts/find_by_external_id/ext%2F25")
        .once(ok(contact("c25", "x@example.com", 1700000000)), &s)
        .await;
    ic("POST", "/contacts")
        .and(header("Content-Type", "application/json"))
        .and(body_json(
            json!({"email": "bo@example.com", "name": "Bo", "signed_up_at": 1571069751,
            "role": "user", "custom_attributes": {"plan": "pro", "seats": 3}}),
        ))
        .once(ok(contact("c2", "bo@example.com", 1700000000)), &s)
        .await;
    ic("PUT", "/contacts/c2")
        .and(body_json(
            json!({"name": "Bo B.", "phone": null, "custom_attributes": {"plan": null}}),
        ))
        .once(ok(contact("c2", "bo@example.com", 1700000100)), &s)
        .await;
    ic("DELETE", "/contacts/c2")
        .once(
            ok(json!({"id": "c2", "external_id": null, "type": "contact", "deleted": true})),
            &s,
        )
        .await;
    let f = folder(&s.uri());
    let runs = [
        f.run(&["check"]),
        f.run(&["get", "--id", "6643703ffae7834d1792fd30"]),
        f.run(&["get", "--id", "email:ada@example.com"]),
        f.run(&["get", "--id", "external_id:ext/25"]),
        f.run(&["insert", "--value", r#"{"email": "bo@example.com", "name": "Bo", "phone": null, "plan": "pro", "custom_attributes": {"seats": 3}, "signed_up_at": 1571069751, "id": "ignored"}"#]),
        f.run(&["patch", "--id", "c2", "--value", r#"{"name": "Bo B.", "phone": null, "plan": null}"#]),
        f.run(&["delete", "--id", "c2"]),
    ];
    for run in &runs {
        no_canary(run);
    }
    // -o writes the result to a file: no token there either.
    let to_file = f.run(&["-o", "check.json", "check"]);
    assert_eq!(to_file.code, 0, "{}", to_file.render());
    let written = f.read("check.json");
    assert!(
        written.contains("MyApp") && !written.contains(TOKEN),
        "{written}"
    );
    let check = runs[0].ok_json();
    assert_eq!(
        (check["ok"].clone(), check["app"].clone()),
        (json!(true), json!("MyApp"))
    );
    assert_eq!(runs[1].ok_json()["email"], "ada@example.com");
    assert_eq!(runs[2].ok_json()["id"], "c1");
    assert_eq!(runs[3].ok_json()["id"], "c25");
    // insert names the record by its key, and shows Intercom's id in it.
    let inserted = runs[4].ok_json();
    assert_eq!(inserted["id"], "bo@example.com");
    assert_eq!(inserted["record"]["id"], "c2");
    assert_eq!(runs[5].ok_json()["id"], "c2");
    assert_eq!(runs[6].ok_json()["id"], "c2");
}

#[tokio::test(flavor = "multi_thread")]
async fn import_follows_the_starting_after_cursor_to_the_end() {
    let s = crate::support::mock::server().await;
    ic("GET", "/contacts")
        .and(query_param("per_page", "2"))
        .and(query_param_is_missing("starting_after"))
        .once(
            ok(list(
                vec![contact("c1", "a@x.com", 1), contact("c2", "b@x.com", 2)],
                Some("WzE3MTk0OTM3NTcuMCwgIjEiXQ=="),
                5,
            )),
            &s,
        )
        .await;
    ic("GET", "/contacts")
        .and(query_param("per_page", "2"))
        .and(query_param(
            "starting_after",
            "WzE3MTk0OTM3NTcuMCwgIjEiXQ==",
        ))
        .once(
            ok(list(
                vec![contact("c3", "c@x.com", 3), contact("c4", "d@x.com", 4)],
                Some("WzE3MTk0OTM3NTcuMCwgIjIiXQ=="),
                5,
            )),
            &s,
        )
        .await;
    ic("GET", "/contacts")
        .and(query_param("per_page", "2"))
        .and(query_param(
            "starting_after",
            "WzE3MTk0OTM3NTcuMCwgIjIiXQ==",
        ))
        .once(ok(list(vec![contact("c5", "e@x.com", 5)], None, 5)), &s)
        .await;
    let f = folder(&s.uri());
    import_reads_to_the_end(&f, &VENDOR, "id", &["c1", "c2", "c3", "c4", "c5"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cursor_that_does_not_move_stops_the_read() {
    let s = crate::support::mock::server().await;
    ic("GET", "/contacts")
        .and(query_param_is_missing("starting_after"))
        .once(
            ok(list(vec![contact("c1", "a@x.com", 1)], Some("same"), 9)),
            &s,
        )
        .await;
    ic("GET", "/contacts")
        .and(query_param("starting_after", "same"))
        .once(
            ok(list(vec![contact("c2", "b@x.com", 1)], Some("same"), 9)),
            &s,
        )
        .await;
    let f = folder(&s.uri());
    an_import_stops_a_loop(
        &f,
        &VENDOR,
        "answered the cursor it was given; stopping instead of looping",
    );
}

/// The body of a getupdates search.
fn updates_search(after: i64, cursor: Option<&str>) -> Value {
    let mut pagination = json!({"per_page": 150});
    if let Some(c) = cursor {
        pagination["starting_after"] = json!(c);
    }
    json!({
        "query": {"field": "updated_at", "operator": ">", "value": after},
        "pagination": pagination,
        "sort": {"field": "updated_at", "order": "ascending"}
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn getupdates_searches_by_day_filters_by_second_and_continues_exactly_after_a_limit() {
    let s = crate::support::mock::server().await;
    // --last-sync 2020-01-01T09:00:00Z = 1577869200: the search compares
    // days, so ferry asks from 2019-12-31 (1577750400) and drops what is older.
    let (early, a, b, c) = (
        contact("c0", "early@x.com", 1577869100),
        contact("c1", "a@x.com", 1577869300),
        contact("c2", "b@x.com", 1577870000),
        contact("c3", "c@x.com", 1577870000),
    );
    ic("POST", "/contacts/search")
        .and(body_json(updates_search(1577750400, None)))
        .respond_with(ok(list(vec![early.clone(), a.clone()], Some("p2"), 4)))
        .expect(2)
        .mount(&s)
        .await;
    ic("POST", "/contacts/search")
        .and(body_json(updates_search(1577750400, Some("p2"))))
        .respond_with(ok(list(vec![b.clone(), c.clone()], None, 4)))
        .expect(2)
        .mount(&s)
        .await;
    let f = folder(&s.uri());
    let first = f.run_line("getupdates --last-sync 2020-01-01T09:00:00Z --limit 2");
    no_canary(&first);
    let first = first.ok_json();
    let ids: Vec<&str> = first["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["c1", "c2"]);
    assert_eq!(first["entries"][0]["type"], "upsert");
    assert_eq!(first["nextSync"], "1577870000|c2");
    // The next call, from the same day, skips what it read and sees c3.
    let next = f
        .run(&[
            "getupdates",
            "--last-sync",
            first["nextSync"].as_str().unwrap(),
        ])
        .ok_json();
    assert_eq!(next["entries"].as_array().unwrap().len(), 1);
    assert_eq!(next["entries"][0]["id"], "c3");
    assert_eq!(next["nextSync"], "1577870000|c2,c3");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_initial_getupdates_reads_every_contact_oldest_first() {
    let s = crate::support::mock::server().await;
    ic("POST", "/contacts/search")
        .and(body_json(updates_search(0, None)))
        .once(
            ok(list(
                vec![contact("c1", "a@x.com", 10), contact("c2", "b@x.com", 20)],
                None,
                2,
            )),
            &s,
        )
        .await;
    let f = folder(&s.uri());
    let out = f.run(&["getupdates"]).ok_json();
    assert_eq!(out["entries"].as_array().unwrap().len(), 2);
    assert_eq!(out["nextSync"], "20|c2");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_429_waits_for_x_ratelimit_reset_then_succeeds() {
    let s = crate::support::mock::server().await;
    let reset = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 2;
    let limited = ic("GET", "/contacts/c1")
        .respond_with(
            error(
                429,
                "rate_limit_exceeded",
                "Exceeded rate limit of 167 in 10_seconds",
            )
            .insert_header("X-RateLimit-Limit", "167")
            .insert_header("X-RateLimit-Remaining", "0")
            .insert_header("X-RateLimit-Reset", reset.to_string().as_str()),
        )
        .up_to_n_times(1)
        .expect(1);
    let answer = ic("GET", "/contacts/c1")
        .respond_with(
            ok(contact("c1", "a@x.com", 1))
                .insert_header("X-RateLimit-Limit", "167")
                .insert_header("X-RateLimit-Remaining", "166"),
        )
        .expect(1);
    let f = folder(&s.uri());
    // -vv logs headers and bodies: the token must stay masked.
    let (run, waited) = a_429_waited_out(
        &f,
        &s,
        &VENDOR,
        vec![limited, answer],
        &["get", "--id", "c1"],
        "Authorization: ***",
    )
    .await;
    assert_eq!(run.ok_json()["id"], "c1");
    // It waited for the reset time, a Unix time in whole seconds two
    // seconds ahead (a 429 spends no retry: maxAttempts is 2).
    assert_eq!(waited.len(), 1, "{waited:?}");
    assert!((0.9..=2.0).contains(&waited[0].as_secs_f64()), "{waited:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn intercom_error_messages_and_codes_are_shown() {
    let s = crate::support::mock::server().await;
    ic("GET", "/contacts/nobody")
        .once(error(404, "not_found", "Contact Not Found"), &s)
        .await;
    ic("PUT", "/contacts/c1")
        .once(error(401, "unauthorized", "Access Token Invalid"), &s)
        .await;
    let f = folder(&s.uri());
    let run = f.run(&["get", "--id", "nobody"]);
    no_canary(&run);
    snap!("intercom_not_found", run);
    let run = f.run(&["patch", "--id", "c1", "--value", r#"{"name": "x"}"#]);
    no_canary(&run);
    snap!("intercom_unauthorized", run);
}

#[tokio::test(flavor = "multi_thread")]
async fn import_upserts_one_call_each_and_rejects_what_intercom_refuses() {
    let s = crate::support::mock::server().await;
    ic("POST", "/contacts")
        .and(body_json(
            json!({"email": "a@x.com", "name": "Ada", "role": "user"}),
        ))
        .once(ok(contact("ca", "a@x.com", 1)), &s)
        .await;
    // b@x.com exists: the 409 names it, and the same body updates it.
    ic("POST", "/contacts")
        .and(body_json(
            json!({"email": "b@x.com", "name": "Bob", "role": "user"}),
        ))
        .once(
            error(
                409,
                "conflict",
                "A contact matching those details already exists with id=5da6f18e3d7cf967e4582d05",
            ),
            &s,
        )
        .await;
    // The role the create filled in is left out: a lead stays a lead.
    ic("PUT", "/contacts/5da6f18e3d7cf967e4582d05")
        .and(body_json(json!({"email": "b@x.com", "name": "Bob"})))
        .once(ok(contact("5da6f18e3d7cf967e4582d05", "b@x.com", 2)), &s)
        .await;
    ic("POST", "/contacts")
        .and(body_json(
            json!({"email": "c@x.com", "role": "user", "custom_attributes": {"tier": "gold"}}),
        ))
        .once(
            error(
                400,
                "parameter_invalid",
                "Custom attribute 'tier' does not exist",
            ),
            &s,
        )
        .await;
    // An avatar as Intercom reads it ({"image_url"}) is written as the URL.
    ic("POST", "/contacts")
        .and(body_json(json!({"email": "f@x.com", "role": "user",
            "avatar": "https://example.org/f.jpg"})))
        .once(ok(contact("cf", "f@x.com", 1)), &s)
        .await;
    ic("POST", "/contacts")
        .and(body_json(json!({"email": "d@x.com", "role": "user"})))
        .once(error(409, "conflict", "An archived contact matching those details already exists with id=6762f0d51bb69f9f2193bb7f"), &s)
        .await;
    let f = folder(&s.uri());
    f.write(
        "in.jsonl",
        concat!(
            "{\"email\":\"a@x.com\",\"name\":\"Ada\",\"phone\":null}\n",
            "{\"email\":\"b@x.com\",\"name\":\"Bob\"}\n",
            "{\"email\":\"c@x.com\",\"tier\":\"gold\"}\n",
            "{\"name\":\"No Email\"}\n",
            "{\"email\":\"d@x.com\"}\n",
            "{\"email\":\"e@x.com\",\"tiers\":[1,2]}\n",
            "{\"email\":\"f@x.com\",\"avatar\":{\"type\":\"avatar\",\"image_url\":\"https://example.org/f.jpg\"}}\n",
        ),
    );
    let rejects = import_with_refusals(&f, &VENDOR, 3, 4);
    // Validation rejects (no key) come first, then Intercom's, by offset.
    let reasons: std::collections::BTreeMap<String, String> = rejects
        .iter()
        .map(|r| {
            (
                r["record"]["email"].as_str().unwrap_or("-").to_string(),
                r["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(reasons.len(), 4, "{reasons:?}");
    assert_eq!(reasons["-"], "missing email");
    assert!(
        reasons["c@x.com"].ends_with(
            "answered 400 Bad Request: Custom attribute 'tier' does not exist (parameter_invalid)"
        ),
        "{reasons:?}"
    );
    assert!(
        reasons["d@x.com"].contains("An archived contact matching those details already exists"),
        "{reasons:?}"
    );
    assert!(
        reasons["e@x.com"]
            .starts_with("custom attribute \"tiers\" must be a string, number or boolean"),
        "{reasons:?}"
    );
}

const FIRST: &str = r#"{"id": "p1", "properties": {"email": "ada@example.com", "name": "Ada", "plan": "pro"}, "groups": ["vip"]}
{"id": "p2", "properties": {"email": "bob@example.com", "name": "Bob", "phone": "+4712345678"}, "groups": ["vip", "beta"]}
{"id": "p3", "properties": {"email": "cy@example.com", "name": "Cy"}}
"#;

/// p1 renamed, loses plan and joins beta; p2 loses phone and leaves beta; p3 deleted.
const SECOND: &str = r#"{"id": "p1", "properties": {"email": "ada@example.com", "name": "Ada L."}, "groups": ["vip", "beta"]}
{"id": "p2", "properties": {"email": "bob@example.com", "name": "Bob"}, "groups": ["vip"]}
{"id": "p3", "properties": {"email": "cy@example.com", "name": "Cy"}, "toDelete": true}
"#;

fn tag(id: &str, name: &str) -> Value {
    json!({"type": "tag", "id": id, "name": name})
}

/// The export summary without its timing and paths.
fn counts(run: &Run) -> Value {
    let s = run.json();
    json!({
        "created": s["created"], "updated": s["updated"], "deleted": s["deleted"],
        "groupsAdded": s["groupsAdded"], "groupsRemoved": s["groupsRemoved"],
        "rejected": s["rejected"], "errors": s["errors"],
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn export_creates_updates_clears_moves_tags_and_deletes() {
    let s = crate::support::mock::server().await;
    let f = folder(&s.uri());
    let once = |verb: &str, p: &str, body: Option<Value>, answer: Value| {
        let builder = ic(verb, p);
        let builder = match body {
            Some(body) => builder.and(body_json(body)),
            None => builder,
        };
        builder.respond_with(ok(answer)).expect(1)
    };

    // First run: three creates, each tag created once, three memberships.
    let mut first = Vec::new();
    for (body, id) in [
        (
            json!({"email": "ada@example.com", "name": "Ada", "role": "user", "custom_attributes": {"plan": "pro"}}),
            "ca",
        ),
        (
            json!({"email": "bob@example.com", "name": "Bob", "phone": "+4712345678", "role": "user"}),
            "cb",
        ),
        (
            json!({"email": "cy@example.com", "name": "Cy", "role": "user"}),
            "cc",
        ),
    ] {
        first.push(once(
            "POST",
            "/contacts",
            Some(body),
            contact(id, "x@example.com", 1),
        ));
    }
    for (name, id) in [("vip", "17513"), ("beta", "17514")] {
        first.push(once(
            "POST",
            "/tags",
            Some(json!({"name": name})),
            tag(id, name),
        ));
    }
    for (who, tag_id, name) in [
        ("ca", "17513", "vip"),
        ("cb", "17513", "vip"),
        ("cb", "17514", "beta"),
    ] {
        first.push(once(
            "POST",
            &format!("/contacts/{who}/tags"),
            Some(json!({"id": tag_id})),
            tag(tag_id, name),
        ));
    }

    // Second run: a rename, two clears, a tag joined and one left (beta
    // ensured once for both), a delete.
    let second = vec![
        once(
            "PUT",
            "/contacts/ca",
            Some(json!({"name": "Ada L.", "custom_attributes": {"plan": null}})),
            contact("ca", "ada@example.com", 2),
        ),
        once(
            "PUT",
            "/contacts/cb",
            Some(json!({"phone": null})),
            contact("cb", "bob@example.com", 2),
        ),
        once(
            "DELETE",
            "/contacts/cc",
            None,
            json!({"id": "cc", "external_id": null, "type": "contact", "deleted": true}),
        ),
        once(
            "POST",
            "/tags",
            Some(json!({"name": "beta"})),
            tag("17514", "beta"),
        ),
        once(
            "POST",
            "/contacts/ca/tags",
            Some(json!({"id": "17514"})),
            tag("17514", "beta"),
        ),
        once(
            "DELETE",
            "/contacts/cb/tags/17514",
            None,
            tag("17514", "beta"),
        ),
    ];

    export_scenario(
        &f,
        &s,
        &VENDOR,
        vec![
            Step::export("first.jsonl", FIRST, first).summary(counted(3, 0, 0, 3, 0)),
            // The dry run of the changes sends nothing and shows every request.
            Step::export("second.jsonl", SECOND, vec![])
                .flags(&["--dry-run"])
                .check(|dry| {
                    assert_eq!(dry.code, 0, "{}", dry.render());
                    let requests = serde_json::to_string_pretty(&dry.json()["requests"]).unwrap();
                    insta::assert_snapshot!(
                        "intercom_export_dry_run",
                        crate::support::filter(&requests, f.path())
                    );
                }),
            Step::export("second.jsonl", SECOND, second).summary(counted(0, 2, 1, 1, 1)),
            // Third run: nothing changed, nothing is sent.
            Step::export("second.jsonl", SECOND, vec![]).summary(json!({"unchanged": 2})),
        ],
    )
    .await;
    let received = s.received_requests().await.unwrap_or_default();
    assert_eq!(received.len(), 8 + 6, "{received:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_export_update_of_a_contact_gone_finds_it_by_email_or_creates_it() {
    let s = crate::support::mock::server().await;
    let f = folder(&s.uri());
    f.write(
        "one.jsonl",
        "{\"id\": \"p1\", \"properties\": {\"email\": \"ada@example.com\", \"name\": \"Ada\"}}\n",
    );
    {
        let _g = ic("POST", "/contacts")
            .respond_with(ok(contact("ca", "ada@example.com", 1)))
            .expect(1)
            .mount_as_scoped(&s)
            .await;
        assert_eq!(
            f.run(&["export", "--to", ".", "--input", "one.jsonl"]).code,
            0
        );
    }
    f.write("one.jsonl", "{\"id\": \"p1\", \"properties\": {\"email\": \"ada@example.com\", \"name\": \"Ada L.\"}}\n");
    let _g = [
        ic("PUT", "/contacts/ca")
            .respond_with(error(404, "not_found", "Contact Not Found"))
            .expect(1)
            .mount_as_scoped(&s)
            .await,
        ic("POST", "/contacts/search")
            .and(body_json(json!({
                "query": {"operator": "AND", "value": [
                    {"field": "email", "operator": "=", "value": "ada@example.com"},
                    {"field": "role", "operator": "=", "value": "user"}]},
                "pagination": {"per_page": 1}})))
            .respond_with(ok(list(vec![contact("cz", "ada@example.com", 3)], None, 1)))
            .expect(1)
            .mount_as_scoped(&s)
            .await,
        ic("PUT", "/contacts/cz")
            .and(body_json(
                json!({"email": "ada@example.com", "name": "Ada L."}),
            ))
            .respond_with(ok(contact("cz", "ada@example.com", 3)))
            .expect(1)
            .mount_as_scoped(&s)
            .await,
    ];
    let run = f.run(&["export", "--to", ".", "--input", "one.jsonl"]);
    no_canary(&run);
    assert_eq!(run.code, 0, "{}", run.render());
    assert_eq!(run.json()["updated"], 1, "{}", run.render());
}

#[test]
fn dry_run_previews_redact_the_token() {
    let f = folder("https://api.intercom.io");
    let previews = Previews {
        insert: r#"{"email": "ada@example.com", "name": "Ada", "plan": "pro"}"#,
        patch: ("c1", r#"{"phone": null, "last_seen_at": 1700000000}"#),
        delete: None,
        import: "{\"email\":\"a@x.com\",\"name\":\"Ada\"}\n{\"name\":\"No Email\"}\n{\"email\":\"c@x.com\",\"signed_up_at\":\"yesterday\"}\n",
    };
    dry_run_previews(&f, &VENDOR, &previews, |action, run| {
        snap!(format!("intercom_dry_run_{action}"), run)
    });
}

#[test]
fn an_offset_cannot_jump_into_the_cursor_and_options_are_checked() {
    let f = folder("http://127.0.0.1:9");
    an_offset_without_a_checkpoint_is_refused(&f, &VENDOR, "intercom");
    let f = Folder::new();
    f.write(
        "account.json",
        &json!({"connector": "intercom", "accessToken": TOKEN, "keyField": "phone"}).to_string(),
    );
    let run = f.run(&["get", "--id", "c1"]);
    no_canary(&run);
    snap!("intercom_bad_key_field", run);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_export_keyed_by_external_id_finds_conflicts_and_treats_gone_as_done() {
    let s = crate::support::mock::server().await;
    let f = Folder::new();
    f.write(
        "account.json",
        &json!({"connector": "intercom", "accessToken": TOKEN, "baseUrl": s.uri(),
            "keyField": "external_id", "retry": {"maxAttempts": 1}})
        .to_string(),
    );
    f.write(
        "first.jsonl",
        "{\"id\": \"u1\", \"properties\": {\"email\": \"a@x.com\", \"name\": \"A\"}, \"groups\": [\"vip\"]}\n{\"id\": \"u2\", \"properties\": {\"email\": \"b@x.com\"}}\n",
    );
    {
        // u1 exists without the 409 naming it: found by external_id, then updated.
        let _g = [
            ic("POST", "/contacts")
                .and(body_json(
                    json!({"email": "a@x.com", "name": "A", "external_id": "u1", "role": "user"}),
                ))
                .respond_with(error(
                    409,
                    "conflict",
                    "A contact matching those details already exists",
                ))
                .expect(1)
                .mount_as_scoped(&s)
                .await,
            ic("GET", "/contacts/find_by_external_id/u1")
                .respond_with(ok(contact("cu1", "a@x.com", 1)))
                .expect(1)
                .mount_as_scoped(&s)
                .await,
            ic("PUT", "/contacts/cu1")
                .and(body_json(
                    json!({"email": "a@x.com", "name": "A", "external_id": "u1"}),
                ))
                .respond_with(ok(contact("cu1", "a@x.com", 2)))
                .expect(1)
                .mount_as_scoped(&s)
                .await,
            ic("POST", "/contacts")
                .and(body_json(
                    json!({"email": "b@x.com", "external_id": "u2", "role": "user"}),
                ))
                .respond_with(ok(contact("cu2", "b@x.com", 1)))
                .expect(1)
                .mount_as_scoped(&s)
                .await,
            ic("POST", "/tags")
                .and(body_json(json!({"name": "vip"})))
                .respond_with(ok(tag("17513", "vip")))
                .expect(1)
                .mount_as_scoped(&s)
                .await,
            ic("POST", "/contacts/cu1/tags")
                .and(body_json(json!({"id": "17513"})))
                .respond_with(ok(tag("17513", "vip")))
                .expect(1)
                .mount_as_scoped(&s)
                .await,
        ];
        let run = f.run(&["export", "--to", ".", "--input", "first.jsonl"]);
        no_canary(&run);
        assert_eq!(run.code, 0, "{}", run.render());
        assert_eq!(
            counts(&run),
            json!({"created": 2, "updated": 0, "deleted": 0, "groupsAdded": 1, "groupsRemoved": 0, "rejected": 0, "errors": 0})
        );
    }
    // u1 leaves vip and u2 is deleted, both already gone in Intercom (404): done.
    f.write(
        "second.jsonl",
        "{\"id\": \"u1\", \"properties\": {\"email\": \"a@x.com\", \"name\": \"A\"}}\n{\"id\": \"u2\", \"properties\": {\"email\": \"b@x.com\"}, \"toDelete\": true}\n",
    );
    let _g = [
        ic("DELETE", "/contacts/cu2")
            .respond_with(error(404, "not_found", "Contact Not Found"))
            .expect(1)
            .mount_as_scoped(&s)
            .await,
        ic("POST", "/tags")
            .and(body_json(json!({"name": "vip"})))
            .respond_with(ok(tag("17513", "vip")))
            .expect(1)
            .mount_as_scoped(&s)
            .await,
        ic("DELETE", "/contacts/cu1/tags/17513")
            .respond_with(error(404, "not_found", "Tag Not Found"))
            .expect(1)
            .mount_as_scoped(&s)
            .await,
    ];
    let run = f.run(&["export", "--to", ".", "--input", "second.jsonl"]);
    no_canary(&run);
    assert_eq!(run.code, 0, "{}", run.render());
    assert_eq!(
        counts(&run),
        json!({"created": 0, "updated": 0, "deleted": 1, "groupsAdded": 0, "groupsRemoved": 1, "rejected": 0, "errors": 0})
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_contact_without_an_id_is_a_connector_error() {
    let s = crate::support::mock::server().await;
    ic("GET", "/contacts")
        .once(
            ok(list(
                vec![json!({"type": "contact", "email": "a@x.com"})],
                None,
                1,
            )),
            &s,
        )
        .await;
    let f = folder(&s.uri());
    let run = f.run(&["import", "--from", ".", "--to", "jsonl:out.jsonl"]);
    no_canary(&run);
    assert_eq!(run.code, 1, "{}", run.render());
    assert!(
        run.stderr.contains("answered a contact without an id"),
        "{}",
        run.render()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn export_fields_intercom_cannot_write_or_clear_are_warned_about() {
    let s = crate::support::mock::server().await;
    let f = folder(&s.uri());
    f.write(
        "one.jsonl",
        "{\"id\": \"p1\", \"properties\": {\"email\": \"a@x.com\", \"external_id\": \"x1\", \"name\": \"A\", \"os\": \"Linux\"}}\n",
    );
    {
        let _g = ic("POST", "/contacts")
            .and(body_json(
                json!({"email": "a@x.com", "external_id": "x1", "name": "A", "role": "user"}),
            ))
            .respond_with(ok(contact("ca", "a@x.com", 1)))
            .expect(1)
            .mount_as_scoped(&s)
            .await;
        let run = f.run(&["export", "--to", ".", "--input", "one.jsonl"]);
        assert_eq!(run.code, 0, "{}", run.render());
        // os is Intercom's own (read-only): left out of the body, and said so.
        assert!(
            run.stderr
                .contains("Intercom contact ca: os not written (Intercom computes them)"),
            "{}",
            run.render()
        );
    }
    // external_id (and os) are dropped: Intercom's update takes no null for it, so
    // nothing is sent, and the run says the old value stays.
    f.write(
        "one.jsonl",
        "{\"id\": \"p1\", \"properties\": {\"email\": \"a@x.com\", \"name\": \"A\"}}\n",
    );
    let run = f.run(&["export", "--to", ".", "--input", "one.jsonl"]);
    no_canary(&run);
    assert_eq!(run.code, 0, "{}", run.render());
    assert_eq!(run.json()["updated"], 1, "{}", run.render());
    assert!(
        run.stderr.contains(
            "Intercom contact ca: external_id not cleared (Intercom's update takes no null there); the old value stays"
        ),
        "{}",
        run.render()
    );
    let received = s.received_requests().await.unwrap_or_default();
    assert_eq!(received.len(), 1, "{received:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn getupdates_stops_when_the_search_cursor_comes_back() {
    let s = crate::support::mock::server().await;
    // c1 -> c2 -> c1: without a check this pages forever.
    for (cursor, next, id) in [
        (None, "c1", "a"),
        (Some("c1"), "c2", "b"),
        (Some("c2"), "c1", "c"),
    ] {
        ic("POST", "/contacts/search")
            .and(body_json(updates_search(0, cursor)))
            .once(
                ok(list(vec![contact(id, "x@x.com", 10)], Some(next), 9)),
                &s,
            )
            .await;
    }
    let f = folder(&s.uri());
    let run = f.run(&["getupdates"]);
    no_canary(&run);
    assert_eq!(run.code, 1, "{}", run.render());
    assert!(
        run.stderr
            .contains("answered a cursor it had already given; stopping instead of looping"),
        "{}",
        run.render()
    );
}

/// Where ferry knowingly differs from Intercom's 2.14 OpenAPI description
/// (docs/connectors/intercom.md, "Checked against the vendor's API
/// description"): the description declares no query parameters for `GET
/// /contacts`, while Intercom's pagination guide documents `per_page` and
/// `starting_after` for it; and its `search_request` has no `sort`, which
/// the search pagination page documents (intercom/Intercom-OpenAPI #114).
const SPEC_DEVIATIONS: &[&str] = &[
    r#"GET /contacts: query parameter "per_page" is not one of []"#,
    r#"GET /contacts: query parameter "starting_after" is not one of []"#,
    "POST /contacts/search: body /sort: a key the schema does not name",
];

#[tokio::test(flavor = "multi_thread")]
async fn every_read_satisfies_intercoms_openapi_description() {
    use crate::support::openapi::{assert_conform, received_by};
    let s = crate::support::mock::server().await;
    ic("GET", "/me")
        .once(
            ok(json!({"type": "admin", "id": "991267", "app": {"type": "app", "name": "MyApp"}})),
            &s,
        )
        .await;
    ic("GET", "/contacts/c1")
        .once(ok(contact("c1", "a@x.com", 10)), &s)
        .await;
    ic("GET", "/contacts/find_by_external_id/e1")
        .once(ok(contact("c1", "a@x.com", 10)), &s)
        .await;
    ic("GET", "/contacts")
        .once(ok(list(vec![contact("c1", "a@x.com", 10)], None, 1)), &s)
        .await;
    // get by email, then getupdates.
    ic("POST", "/contacts/search")
        .respond_with(ok(list(vec![contact("c1", "a@x.com", 10)], None, 1)))
        .expect(2)
        .mount(&s)
        .await;
    let f = folder(&s.uri());
    for args in [
        &["check"][..],
        &["get", "--id", "c1"],
        &["get", "--id", "external_id:e1"],
        &["get", "--id", "email:a@x.com"],
        &["import", "--from", ".", "--to", "jsonl:out.jsonl"],
        &["getupdates"],
    ] {
        let run = f.run(args);
        no_canary(&run);
        assert_eq!(run.code, 0, "{args:?}: {}", run.render());
    }
    assert_conform("intercom", &received_by(&s).await, SPEC_DEVIATIONS);
}

#[test]
fn every_previewed_request_satisfies_intercoms_openapi_description() {
    use crate::support::openapi::{assert_conform, previews};
    let f = folder("https://api.intercom.io");
    f.write("ic/account.json", &account("https://api.intercom.io"));
    f.write(
        "in.jsonl",
        "{\"email\":\"a@x.com\",\"name\":\"Ada\",\"plan\":\"pro\"}\n",
    );
    f.write(
        "profiles.jsonl",
        "{\"id\": \"a\", \"properties\": {\"email\": \"a@x.com\", \"name\": \"Ada\", \"phone\": null}, \"groups\": [\"VIP\"]}\n",
    );
    let requests = previews(
        &f,
        &[
            &[
                "insert",
                "--dry-run",
                "--value",
                r#"{"email": "ada@example.com", "name": "Ada", "plan": "pro"}"#,
            ],
            &[
                "patch",
                "--dry-run",
                "--id",
                "c1",
                "--value",
                r#"{"phone": null, "last_seen_at": 1700000000}"#,
            ],
            &["delete", "--dry-run", "--id", "c1"],
            &[
                "import",
                "--from",
                "jsonl:in.jsonl",
                "--to",
                ".",
                "--dry-run",
            ],
            &[
                "export",
                "--to",
                "ic",
                "--input",
                "profiles.jsonl",
                "--dry-run",
            ],
        ],
        &[TOKEN],
    );
    assert_conform("intercom", &requests, SPEC_DEVIATIONS);
}
