//! The `hubspot` connector through the real binary against wiremock servers
//! that answer with the documented shapes (docs/connectors/hubspot.md) and
//! fail when an expected request is not made: every action with its exact
//! method, path, headers and body, `after` paging to the end, getupdates by
//! `lastmodifieddate` through search, a 429 with HubSpot's rate-limit
//! headers, HubSpot's error bodies, a 207 partial batch failure going to
//! the rejects file, an export that creates, updates, clears, joins and
//! leaves lists (each list looked up or created once per run) and deletes,
//! and dry-run previews. The canary token must never be printed.

use serde_json::{json, Value};
use wiremock::matchers::{body_json, header, method, path, query_param, query_param_is_missing};
use wiremock::{Mock, ResponseTemplate};

use crate::snap;
use crate::support::saas::{
    a_429_waited_out, dry_run_previews, export_scenario, import_reads_to_the_end,
    import_with_refusals, Previews, Step, Vendor,
};
use crate::support::{ok, Folder, MountOnce, Run};

pub const TOKEN: &str = "CANARY-pat-na1-3f9c";

/// The connector as the SaaS scenarios see it.
const VENDOR: Vendor = Vendor {
    folder: ".",
    secrets: &[TOKEN],
};

/// The account of a test: fast rate limits and quick retries.
pub fn account(base: &str) -> String {
    json!({
        "connector": "hubspot",
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

/// A request to HubSpot with the bearer token.
pub fn hs(verb: &str, p: &str) -> wiremock::MockBuilder {
    Mock::given(method(verb))
        .and(path(p))
        .and(header("Authorization", format!("Bearer {TOKEN}").as_str()))
}

/// A contact object as the API answers it.
fn contact(id: u32, email: &str, modified: &str) -> Value {
    json!({
        "id": id.to_string(),
        "properties": {"createdate": "2024-01-01T00:00:00.000Z", "email": email,
            "firstname": format!("First {id}"), "hs_object_id": id.to_string(), "lastmodifieddate": modified},
        "createdAt": "2024-01-01T00:00:00.000Z", "updatedAt": modified, "archived": false
    })
}

/// Assert the token reached no output.
pub fn no_canary(run: &Run) {
    run.hides(&[TOKEN], "a secret");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_action_sends_the_documented_request() {
    let s = crate::support::mock::server().await;
    let t = "2024-01-02T00:00:00.000Z";
    hs("GET", "/crm/v3/objects/contacts")
        .and(query_param("limit", "1"))
        .and(query_param("archived", "false"))
        .once(
            ok(json!({"results": [contact(1, "a@example.com", t)],
            "paging": {"next": {"after": "2", "link": "?after=2"}}})),
            &s,
        )
        .await;
    hs("GET", "/crm/v3/objects/contacts/ada%40example.com")
        .and(query_param("idProperty", "email"))
        .once(ok(contact(512, "ada@example.com", t)), &s)
        .await;
    hs("POST", "/crm/v3/objects/contacts")
        .and(header("Content-Type", "application/json"))
        .and(body_json(json!({"properties": {"email": "ada@example.com", "firstname": "Ada", "hs_count": "3", "interests": "math;engines"}, "associations": []})))
        .once(ResponseTemplate::new(201).set_body_json(contact(512, "ada@example.com", t)), &s)
        .await;
    // A null clears: HubSpot clears a property with an empty string.
    hs("PATCH", "/crm/v3/objects/contacts/512")
        .and(query_param_is_missing("idProperty"))
        .and(body_json(
            json!({"properties": {"firstname": "Ada L.", "phone": ""}}),
        ))
        .once(ok(contact(512, "ada@example.com", t)), &s)
        .await;
    hs("DELETE", "/crm/v3/objects/contacts/512")
        .and(query_param_is_missing("idProperty"))
        .once(ResponseTemplate::new(204), &s)
        .await;
    // The archive takes no idProperty: an email is looked up first.
    hs("GET", "/crm/v3/objects/contacts/bob%40example.com")
        .and(query_param("idProperty", "email"))
        .once(ok(contact(513, "bob@example.com", t)), &s)
        .await;
    hs("DELETE", "/crm/v3/objects/contacts/513")
        .and(query_param_is_missing("idProperty"))
        .once(ResponseTemplate::new(204), &s)
        .await;
    hs("GET", "/crm/v3/objects/contacts/gone%40example.com")
        .and(query_param("idProperty", "email"))
        .once(
            ResponseTemplate::new(404).set_body_json(json!({"status": "error",
            "message": "resource not found", "category": "OBJECT_NOT_FOUND"})),
            &s,
        )
        .await;
    let f = folder(&s.uri());
    let runs = [
        f.run(&["check"]),
        f.run(&["get", "--id", "ada@example.com"]),
        f.run(&["insert", "--value", r#"{"email": "ada@example.com", "firstname": "Ada", "phone": null, "hs_count": 3, "interests": ["math", "engines"]}"#]),
        f.run(&["patch", "--id", "512", "--value", r#"{"firstname": "Ada L.", "phone": null, "hs_object_id": "512"}"#]),
        f.run(&["delete", "--id", "512"]),
        f.run(&["delete", "--id", "bob@example.com"]),
        f.run(&["delete", "--id", "gone@example.com"]),
    ];
    for run in &runs {
        no_canary(run);
    }
    assert_eq!(runs[0].ok_json()["ok"], true);
    let got = runs[1].ok_json();
    assert_eq!(got["id"], "512");
    assert_eq!(got["email"], "ada@example.com");
    assert_eq!(runs[2].ok_json()["id"], "ada@example.com");
    assert_eq!(runs[2].ok_json()["record"]["id"], "512");
    assert_eq!(runs[3].ok_json()["id"], "512");
    assert_eq!(runs[4].ok_json()["id"], "512");
    assert_eq!(runs[5].ok_json()["id"], "bob@example.com");
    assert_eq!(runs[6].code, 1, "{}", runs[6].render());
    assert!(
        runs[6]
            .stderr
            .contains("HubSpot has no contact whose email is \"gone@example.com\""),
        "{}",
        runs[6].render()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn import_pages_with_the_after_cursor_to_the_end() {
    let s = crate::support::mock::server().await;
    let t = "2024-01-01T00:00:00.000Z";
    hs("GET", "/crm/v3/objects/contacts")
        .and(query_param("limit", "2"))
        .and(query_param_is_missing("after"))
        .once(ok(
            json!({"results": [contact(1, "c1@example.com", t), contact(2, "c2@example.com", t)],
            "paging": {"next": {"after": "NTI1Cg%3D%3D", "link": "?after=NTI1Cg%3D%3D"}}}),
        ), &s)
        .await;
    // The documented cursor goes back as written (wiremock decodes it).
    hs("GET", "/crm/v3/objects/contacts")
        .and(query_param("limit", "2"))
        .and(query_param("after", "NTI1Cg=="))
        .once(ok(
            json!({"results": [contact(3, "c3@example.com", t), contact(4, "c4@example.com", t)],
            "paging": {"next": {"after": "5", "link": "?after=5"}}}),
        ), &s)
        .await;
    // The last page has no paging.next: the end.
    hs("GET", "/crm/v3/objects/contacts")
        .and(query_param("limit", "2"))
        .and(query_param("after", "5"))
        .once(
            ok(json!({"results": [contact(5, "c5@example.com", t)]})),
            &s,
        )
        .await;
    let f = folder(&s.uri());
    import_reads_to_the_end(
        &f,
        &VENDOR,
        "email",
        &[
            "c1@example.com",
            "c2@example.com",
            "c3@example.com",
            "c4@example.com",
            "c5@example.com",
        ],
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_page_that_repeats_its_cursor_is_an_error_not_a_loop() {
    let s = crate::support::mock::server().await;
    let t = "2024-01-01T00:00:00.000Z";
    hs("GET", "/crm/v3/objects/contacts")
        .and(query_param_is_missing("after"))
        .once(
            ok(json!({"results": [contact(1, "c1@example.com", t)],
            "paging": {"next": {"after": "7"}}})),
            &s,
        )
        .await;
    hs("GET", "/crm/v3/objects/contacts")
        .and(query_param("after", "7"))
        .once(
            ok(json!({"results": [contact(2, "c2@example.com", t)],
            "paging": {"next": {"after": "7"}}})),
            &s,
        )
        .await;
    let f = folder(&s.uri());
    let run = f.run(&["import", "--from", ".", "--to", "jsonl:out.jsonl"]);
    no_canary(&run);
    assert_eq!(run.code, 1, "{}", run.render());
    assert!(
        run.stderr
            .contains("answered the cursor it was given as the next one"),
        "{}",
        run.render()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_next_page_without_a_cursor_is_an_error_not_an_early_end() {
    let s = crate::support::mock::server().await;
    hs("GET", "/crm/v3/objects/contacts")
        .and(query_param_is_missing("after"))
        .once(
            ok(
                json!({"results": [contact(1, "c1@example.com", "2024-01-01T00:00:00.000Z")],
            "paging": {"next": {"link": "?after="}}}),
            ),
            &s,
        )
        .await;
    let f = folder(&s.uri());
    let run = f.run(&["import", "--from", ".", "--to", "jsonl:out.jsonl"]);
    no_canary(&run);
    assert_eq!(run.code, 1, "{}", run.render());
    assert!(
        run.stderr
            .contains("answered a next page without a paging.next.after cursor"),
        "{}",
        run.render()
    );
}

/// The search getupdates sends: every key HubSpot's `PublicObjectSearchRequest`
/// requires, with no filter before a position and HubSpot's default
/// properties when none are configured.
fn search_body(since_ms: Option<i64>, limit: usize) -> Value {
    let filter_groups = match since_ms {
        Some(ms) => {
            json!([{"filters": [{"propertyName": "lastmodifieddate", "operator": "GTE", "value": ms.to_string()}]}])
        }
        None => json!([]),
    };
    json!({
        "filterGroups": filter_groups,
        "sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
        "properties": ["createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname"],
        "limit": limit,
        "after": "0"
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn getupdates_searches_by_lastmodifieddate_and_continues_exactly_after_a_limit() {
    let s = crate::support::mock::server().await;
    let t = "2024-02-01T10:00:00.000Z";
    let (a, b, c) = (
        contact(1, "a@example.com", "2024-01-15T00:00:00.000Z"),
        contact(2, "b@example.com", t),
        contact(3, "c@example.com", t),
    );
    // 2024-01-01T00:00:00Z and 2024-02-01T10:00:00Z in milliseconds.
    hs("POST", "/crm/v3/objects/contacts/search")
        .and(body_json(search_body(Some(1_704_067_200_000), 2)))
        .once(
            ok(json!({"total": 3, "results": [a, b],
            "paging": {"next": {"after": "2"}}})),
            &s,
        )
        .await;
    // b shares c's time: the next search starts at that time, asks for
    // one more and skips b, which HubSpot answers again.
    hs("POST", "/crm/v3/objects/contacts/search")
        .and(body_json(search_body(Some(1_706_781_600_000), 200)))
        .once(ok(json!({"total": 2, "results": [b, c]})), &s)
        .await;
    let f = folder(&s.uri());
    let first = f.run_line("getupdates --last-sync 2024-01-01T00:00:00Z --limit 2");
    no_canary(&first);
    let first = first.ok_json();
    assert_eq!(first["nextSync"], "2024-02-01T10:00:00.000Z|2");
    let ids: Vec<&str> = first["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["a@example.com", "b@example.com"]);
    assert_eq!(first["entries"][0]["type"], "upsert");
    assert_eq!(first["entries"][0]["value"]["id"], "1");
    let token = first["nextSync"].as_str().unwrap();
    let next = f.run(&["getupdates", "--last-sync", token]).ok_json();
    assert_eq!(next["entries"].as_array().unwrap().len(), 1);
    assert_eq!(next["entries"][0]["id"], "c@example.com");
    assert_eq!(next["nextSync"], "2024-02-01T10:00:00.000Z|2,3");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_initial_getupdates_searches_without_a_filter_to_the_end() {
    let s = crate::support::mock::server().await;
    let (a, b) = (
        contact(1, "a@example.com", "2024-01-01T00:00:00.000Z"),
        contact(2, "b@example.com", "2024-01-02T00:00:00.000Z"),
    );
    hs("POST", "/crm/v3/objects/contacts/search")
        .and(body_json(search_body(None, 200)))
        .once(
            ok(json!({"total": 2, "results": [a],
            "paging": {"next": {"after": "1"}}})),
            &s,
        )
        .await;
    hs("POST", "/crm/v3/objects/contacts/search")
        .and(body_json(search_body(Some(1_704_067_200_000), 200)))
        .once(ok(json!({"total": 2, "results": [a, b]})), &s)
        .await;
    let f = folder(&s.uri());
    let out = f.run(&["getupdates"]).ok_json();
    let ids: Vec<&str> = out["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["a@example.com", "b@example.com"]);
    assert_eq!(out["nextSync"], "2024-01-02T00:00:00.000Z|2");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_429_with_hubspot_rate_limit_headers_backs_off_then_succeeds() {
    let s = crate::support::mock::server().await;
    let limited = hs("GET", "/crm/v3/objects/contacts/512")
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("X-HubSpot-RateLimit-Interval-Milliseconds", "10000")
                .insert_header("X-HubSpot-RateLimit-Max", "100")
                .insert_header("X-HubSpot-RateLimit-Remaining", "0")
                .insert_header("X-HubSpot-RateLimit-Daily", "250000")
                .insert_header("X-HubSpot-RateLimit-Daily-Remaining", "120000")
                .set_body_json(json!({"status": "error", "message": "You have reached your ten_secondly_rolling limit.",
                    "errorType": "RATE_LIMIT", "correlationId": "c033cdaa-2c40-4a64-ae48-b4cec88dad24",
                    "policyName": "TEN_SECONDLY_ROLLING", "requestId": "3d3e35b7-0dae-4b9f-a6e3-9c230cbcf8dd"})),
        )
        .up_to_n_times(2)
        .expect(2);
    let answer = hs("GET", "/crm/v3/objects/contacts/512")
        .respond_with(ok(contact(
            512,
            "ada@example.com",
            "2024-01-01T00:00:00.000Z",
        )))
        .expect(1);
    let f = folder(&s.uri());
    // -vv logs headers and bodies: the token must stay masked. Two 429s
    // with maxAttempts 2: a 429 wait does not spend the retry budget.
    let (run, waits) = a_429_waited_out(
        &f,
        &s,
        &VENDOR,
        vec![limited, answer],
        &["get", "--id", "512"],
        "Authorization: ***",
    )
    .await;
    assert_eq!(waits.len(), 2, "{waits:?}");
    assert_eq!(run.ok_json()["id"], "512");
}

#[tokio::test(flavor = "multi_thread")]
async fn hubspot_error_messages_details_and_correlation_ids_are_shown() {
    let s = crate::support::mock::server().await;
    hs("GET", "/crm/v3/objects/contacts/999")
        .once(ResponseTemplate::new(404).set_body_json(json!({
            "status": "error", "message": "Object not found.  objectId are usually numeric.",
            "correlationId": "2f2a4d5e-6c55-4b2d-8e7b-0c1f2e3d4a5b", "context": {"id": ["999"]}, "category": "OBJECT_NOT_FOUND"})), &s)
        .await;
    hs("POST", "/crm/v3/objects/contacts")
        .once(ResponseTemplate::new(400).set_body_json(json!({
            "status": "error", "message": "Property values were not valid",
            "correlationId": "aeb5f871-7f07-4993-9211-075dc63e7cbf", "category": "VALIDATION_ERROR",
            "errors": [{"message": "Property \"favourite_colour\" does not exist", "code": "PROPERTY_DOESNT_EXIST", "in": "favourite_colour"}]})), &s)
        .await;
    hs("DELETE", "/crm/v3/objects/contacts/1")
        .once(ResponseTemplate::new(401).set_body_json(json!({
            "status": "error", "message": "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
            "correlationId": "6e2b5a4c-1111-4c3e-9a9a-5d8c7b6a5f4e", "category": "INVALID_AUTHENTICATION"})), &s)
        .await;
    hs("PATCH", "/crm/v3/objects/contacts/2")
        .once(
            ResponseTemplate::new(403).set_body_json(json!({"status": "error",
            "message": "This app hasn't been granted all required scopes to make this call.",
            "correlationId": "a43683b0-5717-4ceb-80b4-104d02915d8c", "category": "MISSING_SCOPES",
            "context": {"missingScopes": ["crm.objects.contacts.write"]}})),
            &s,
        )
        .await;
    let f = folder(&s.uri());
    let run = f.run(&["patch", "--id", "2", "--value", r#"{"firstname": "X"}"#]);
    no_canary(&run);
    snap!("hubspot_missing_scope", run);
    let run = f.run(&["get", "--id", "999"]);
    no_canary(&run);
    snap!("hubspot_not_found", run);
    let run = f.run(&[
        "insert",
        "--value",
        r#"{"email": "a@example.com", "favourite_colour": "green"}"#,
    ]);
    no_canary(&run);
    snap!("hubspot_invalid_property", run);
    let run = f.run(&["delete", "--id", "1"]);
    no_canary(&run);
    snap!("hubspot_unauthorized", run);
}

#[tokio::test(flavor = "multi_thread")]
async fn import_upserts_by_email_and_a_partial_batch_failure_goes_to_the_rejects_file() {
    let s = crate::support::mock::server().await;
    hs("POST", "/crm/v3/objects/contacts/batch/upsert")
        .and(body_json(json!({"inputs": [
            {"idProperty": "email", "id": "ada@example.com", "properties": {"email": "ada@example.com", "firstname": "Ada"}, "objectWriteTraceId": "ada@example.com"},
            {"idProperty": "email", "id": "bob@", "properties": {"email": "bob@", "firstname": "Bob"}, "objectWriteTraceId": "bob@"},
            {"idProperty": "email", "id": "cy@example.com", "properties": {"email": "cy@example.com", "age": "40"}, "objectWriteTraceId": "cy@example.com"}
        ]})))
        .once(ResponseTemplate::new(207).set_body_json(json!({
            "status": "COMPLETE",
            "results": [
                {"id": "101", "new": true, "objectWriteTraceId": "ada@example.com", "properties": {"email": "ada@example.com", "firstname": "Ada"}, "createdAt": "2024-01-01T00:00:00Z", "updatedAt": "2024-01-01T00:00:00Z", "archived": false},
                {"id": "103", "new": false, "objectWriteTraceId": "cy@example.com", "properties": {"email": "cy@example.com", "age": "40"}, "createdAt": "2023-01-01T00:00:00Z", "updatedAt": "2024-01-01T00:00:00Z", "archived": false}
            ],
            "numErrors": 1,
            "errors": [{"status": "error", "category": "VALIDATION_ERROR", "message": "Property values were not valid",
                "context": {"objectWriteTraceId": ["bob@"]},
                "errors": [{"message": "Email address bob@ is invalid", "code": "INVALID_EMAIL", "in": "email"}], "links": {}}],
            "requestedAt": "2024-01-01T00:00:00Z", "startedAt": "2024-01-01T00:00:00Z", "completedAt": "2024-01-01T00:00:00Z"
        })), &s)
        .await;
    let f = folder(&s.uri());
    f.write(
        "in.jsonl",
        "{\"email\":\"ada@example.com\",\"firstname\":\"Ada\",\"phone\":null}\n{\"email\":\"bob@\",\"firstname\":\"Bob\"}\n{\"email\":\"cy@example.com\",\"age\":40}\n{\"email\":\"dee@example.com\",\"address\":{\"city\":\"Oslo\"}}\n",
    );
    let rejects = import_with_refusals(&f, &VENDOR, 2, 2);
    assert_eq!(rejects[0]["record"]["email"], "bob@");
    assert_eq!(
        rejects[0]["reason"],
        "Property values were not valid (Email address bob@ is invalid)"
    );
    assert_eq!(rejects[1]["record"]["email"], "dee@example.com");
    assert!(rejects[1]["reason"]
        .as_str()
        .unwrap()
        .contains("\"address\" is an object"));
}

#[test]
fn dry_run_previews_redact_the_token() {
    let f = folder("https://api.hubapi.com");
    let previews = Previews {
        insert: r#"{"email": "ada@example.com", "firstname": "Ada", "vip": true}"#,
        patch: (
            "ada@example.com",
            r#"{"phone": null, "lifecyclestage": "customer"}"#,
        ),
        // The archive takes no idProperty: the preview shows the lookup first.
        delete: Some("ada@example.com"),
        import:
            "{\"email\":\"ada@example.com\",\"firstname\":\"Ada\"}\n{\"firstname\":\"No Email\"}\n",
    };
    dry_run_previews(&f, &VENDOR, &previews, |action, run| match action {
        "delete" => snap!("hubspot_dry_run_delete_by_email", run),
        _ => snap!(format!("hubspot_dry_run_{action}"), run),
    });
}

#[test]
fn the_spec_documents_options_fields_and_limits() {
    let f = Folder::new();
    snap!("hubspot_connectors", f.run(&["connectors", "hubspot"]));
}

/// The run with its timing numbers and state file name replaced.
fn render(run: &Run) -> String {
    let re = regex::Regex::new(r#""(elapsedSecs|profilesPerSecond)": [0-9.e+-]+"#).unwrap();
    let rendered = run.render();
    let text = re.replace_all(&rendered, r#""$1": "[N]""#);
    let hash = regex::Regex::new(r"export-[0-9a-f]{16}\.db").unwrap();
    hash.replace_all(&text, "export-[HASH].db").into_owned()
}

const FIRST: &str = r#"{"id": "p1", "properties": {"email": "ada@example.com", "firstname": "Ada"}, "groups": ["VIP"]}
{"id": "p2", "properties": {"email": "bob@example.com", "firstname": "Bob", "phone": "+47 555 0100"}, "groups": ["VIP"]}
{"id": "p3", "properties": {"email": "cy@example.com", "firstname": "Cy"}}
"#;

/// p1 renamed and joins Newsletter; p2 loses its phone and leaves VIP; p3 is deleted.
const SECOND: &str = r#"{"id": "p1", "properties": {"email": "ada@example.com", "firstname": "Ada L."}, "groups": ["VIP", "Newsletter"]}
{"id": "p2", "properties": {"email": "bob@example.com", "firstname": "Bob"}}
{"id": "p3", "properties": {"email": "cy@example.com", "firstname": "Cy"}, "toDelete": true}
"#;

fn list(id: &str, name: &str) -> Value {
    json!({"list": {"listId": id, "listVersion": 1, "name": name, "objectTypeId": "0-1",
        "processingType": "MANUAL", "processingStatus": "COMPLETE", "createdAt": "2026-02-02T16:13:48.146Z"}})
}

#[tokio::test(flavor = "multi_thread")]
async fn export_creates_updates_clears_changes_lists_and_deletes() {
    let s = crate::support::mock::server().await;
    let t = "2024-01-01T00:00:00Z";
    // Run 1: one batch upsert keyed by email.
    let upsert = hs("POST", "/crm/v3/objects/contacts/batch/upsert")
        .and(body_json(json!({"inputs": [
            {"idProperty": "email", "id": "ada@example.com", "properties": {"email": "ada@example.com", "firstname": "Ada"}, "objectWriteTraceId": "ada@example.com"},
            {"idProperty": "email", "id": "bob@example.com", "properties": {"email": "bob@example.com", "firstname": "Bob", "phone": "+47 555 0100"}, "objectWriteTraceId": "bob@example.com"},
            {"idProperty": "email", "id": "cy@example.com", "properties": {"email": "cy@example.com", "firstname": "Cy"}, "objectWriteTraceId": "cy@example.com"}
        ]})))
        .respond_with(ok(json!({"status": "COMPLETE", "results": [
            {"id": "101", "new": true, "objectWriteTraceId": "ada@example.com", "properties": {"email": "ada@example.com"}, "createdAt": t, "updatedAt": t, "archived": false},
            {"id": "102", "new": true, "objectWriteTraceId": "bob@example.com", "properties": {"email": "bob@example.com"}, "createdAt": t, "updatedAt": t, "archived": false},
            {"id": "103", "new": true, "objectWriteTraceId": "cy@example.com", "properties": {"email": "cy@example.com"}, "createdAt": t, "updatedAt": t, "archived": false}
        ], "requestedAt": t, "startedAt": t, "completedAt": t})))
        .expect(1);
    // VIP does not exist on run 1 (created once); run 2 finds it.
    let no_vip = hs("GET", "/crm/v3/lists/object-type-id/0-1/name/VIP")
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"status": "error",
            "message": "List with name VIP does not exist", "correlationId": "0b7f2a3c-1d2e-4f5a-8b9c-0d1e2f3a4b5c", "category": "OBJECT_NOT_FOUND"})))
        .expect(1);
    let vip = hs("GET", "/crm/v3/lists/object-type-id/0-1/name/VIP")
        .respond_with(ok(list("611", "VIP")))
        .expect(1);
    let create_vip = hs("POST", "/crm/v3/lists")
        .and(body_json(
            json!({"name": "VIP", "objectTypeId": "0-1", "processingType": "MANUAL"}),
        ))
        .respond_with(ok(list("611", "VIP")))
        .expect(1);
    let join_vip = hs("PUT", "/crm/v3/lists/611/memberships/add")
        .and(body_json(json!(["101", "102"])))
        .respond_with(ok(
            json!({"recordIdsAdded": ["101", "102"], "recordIdsMissing": []}),
        ))
        .expect(1);
    // Run 2: delete, update with a clear, join Newsletter (found), leave VIP.
    let delete = hs("DELETE", "/crm/v3/objects/contacts/103")
        .respond_with(ResponseTemplate::new(204))
        .expect(1);
    let rename = hs("PATCH", "/crm/v3/objects/contacts/101")
        .and(body_json(json!({"properties": {"firstname": "Ada L."}})))
        .respond_with(ok(contact(101, "ada@example.com", t)))
        .expect(1);
    let clear = hs("PATCH", "/crm/v3/objects/contacts/102")
        .and(body_json(json!({"properties": {"phone": ""}})))
        .respond_with(ok(contact(102, "bob@example.com", t)))
        .expect(1);
    let newsletter = hs("GET", "/crm/v3/lists/object-type-id/0-1/name/Newsletter")
        .respond_with(ok(list("612", "Newsletter")))
        .expect(1);
    let join_newsletter = hs("PUT", "/crm/v3/lists/612/memberships/add")
        .and(body_json(json!(["101"])))
        .respond_with(ok(
            json!({"recordIdsAdded": ["101"], "recordIdsMissing": []}),
        ))
        .expect(1);
    let leave_vip = hs("PUT", "/crm/v3/lists/611/memberships/remove")
        .and(body_json(json!(["102"])))
        .respond_with(ok(
            json!({"recordIdsRemoved": ["102"], "recordIdsMissing": []}),
        ))
        .expect(1);

    let f = Folder::new();
    f.write("hs/account.json", &account(&s.uri()));
    let vendor = Vendor {
        folder: "hs",
        ..VENDOR
    };
    export_scenario(
        &f,
        &s,
        &vendor,
        vec![
            Step::export("first.jsonl", FIRST, vec![])
                .flags(&["--dry-run"])
                .check(|dry| insta::assert_snapshot!("hubspot_export_first_dry_run", render(dry))),
            Step::export(
                "first.jsonl",
                FIRST,
                vec![upsert, no_vip, create_vip, join_vip],
            )
            .check(|first| insta::assert_snapshot!("hubspot_export_first_run", render(first))),
            Step::export("first.jsonl", FIRST, vec![]).summary(json!({"unchanged": 3})),
            Step::export("second.jsonl", SECOND, vec![])
                .flags(&["--dry-run"])
                .check(|dry| {
                    insta::assert_snapshot!("hubspot_export_changes_dry_run", render(dry))
                }),
            Step::export(
                "second.jsonl",
                SECOND,
                vec![
                    delete,
                    rename,
                    clear,
                    vip,
                    newsletter,
                    join_newsletter,
                    leave_vip,
                ],
            )
            .flags(&["--yes"])
            .summary(json!({"updated": 2, "deleted": 1, "groupsAdded": 1, "groupsRemoved": 1}))
            .check(|second| insta::assert_snapshot!("hubspot_export_changes", render(second))),
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn export_reports_a_refused_contact_and_a_missing_member_per_profile() {
    let s = crate::support::mock::server().await;
    let t = "2024-01-01T00:00:00Z";
    hs("POST", "/crm/v3/objects/contacts/batch/upsert")
        .once(ResponseTemplate::new(207).set_body_json(json!({"status": "COMPLETE",
            "results": [{"id": "101", "new": true, "objectWriteTraceId": "ada@example.com", "properties": {"email": "ada@example.com"}, "createdAt": t, "updatedAt": t, "archived": false}],
            "numErrors": 1,
            "errors": [{"status": "error", "category": "VALIDATION_ERROR", "message": "Property values were not valid",
                "context": {"objectWriteTraceId": ["bob@example"]}, "errors": [{"message": "Email address bob@example is invalid", "code": "INVALID_EMAIL"}]}]})), &s)
        .await;
    hs("GET", "/crm/v3/lists/object-type-id/0-1/name/VIP")
        .once(ok(list("611", "VIP")), &s)
        .await;
    hs("PUT", "/crm/v3/lists/611/memberships/add")
        .and(body_json(json!(["101"])))
        .once(
            ok(json!({"recordIdsAdded": [], "recordIdsMissing": ["101"]})),
            &s,
        )
        .await;
    let f = Folder::new();
    f.write("hs/account.json", &account(&s.uri()));
    f.write(
        "in.jsonl",
        "{\"id\": \"p1\", \"properties\": {\"email\": \"ada@example.com\"}, \"groups\": [\"VIP\"]}\n{\"id\": \"p2\", \"properties\": {\"email\": \"bob@example\"}, \"groups\": [\"VIP\"]}\n",
    );
    let run = f.run_line("export --to hs --input in.jsonl --errors errors.jsonl");
    no_canary(&run);
    assert_eq!(run.code, 3, "{}", run.render());
    let lines: Vec<Value> = f
        .read("errors.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0]["id"], "p1");
    assert!(lines[0]["message"]
        .as_str()
        .unwrap()
        .contains("HubSpot has no contact 101 to add to the list"));
    assert_eq!(lines[1]["id"], "p2");
    assert_eq!(lines[1]["kind"], "rejected");
    assert!(lines[1]["message"]
        .as_str()
        .unwrap()
        .contains("Email address bob@example is invalid"));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_update_of_a_contact_gone_from_hubspot_finds_it_by_email_or_creates_it() {
    let s = crate::support::mock::server().await;
    let t = "2024-01-01T00:00:00Z";
    hs("POST", "/crm/v3/objects/contacts/batch/upsert")
        .and(body_json(json!({"inputs": [
            {"idProperty": "email", "id": "ada@example.com", "properties": {"email": "ada@example.com", "firstname": "Ada"}, "objectWriteTraceId": "ada@example.com"},
            {"idProperty": "email", "id": "bob@example.com", "properties": {"email": "bob@example.com", "firstname": "Bob"}, "objectWriteTraceId": "bob@example.com"}
        ]})))
        .once(ok(json!({"status": "COMPLETE", "results": [
            {"id": "101", "new": true, "objectWriteTraceId": "ada@example.com", "properties": {"email": "ada@example.com"}, "createdAt": t, "updatedAt": t, "archived": false},
            {"id": "102", "new": true, "objectWriteTraceId": "bob@example.com", "properties": {"email": "bob@example.com"}, "createdAt": t, "updatedAt": t, "archived": false}
        ]})), &s)
        .await;
    let gone = || {
        ResponseTemplate::new(404).set_body_json(json!({"status": "error",
            "message": "resource not found", "correlationId": "5c0f3e2a-9b8d-4c7e-a6f5-4e3d2c1b0a99", "category": "OBJECT_NOT_FOUND"}))
    };
    // Both contacts were merged or deleted in HubSpot since run 1.
    for id in ["101", "102"] {
        hs("PATCH", &format!("/crm/v3/objects/contacts/{id}"))
            .once(gone(), &s)
            .await;
    }
    // Ada is found by email (under a new record id) and updated in full.
    hs("GET", "/crm/v3/objects/contacts/ada%40example.com")
        .and(query_param("idProperty", "email"))
        .once(ok(contact(777, "ada@example.com", t)), &s)
        .await;
    hs("PATCH", "/crm/v3/objects/contacts/777")
        .and(body_json(
            json!({"properties": {"email": "ada@example.com", "firstname": "Ada L."}}),
        ))
        .once(ok(contact(777, "ada@example.com", t)), &s)
        .await;
    // Bob is found by neither his old nor his new email: created again.
    hs("GET", "/crm/v3/objects/contacts/bob%40example.com")
        .and(query_param("idProperty", "email"))
        .respond_with(gone())
        .expect(2)
        .mount(&s)
        .await;
    hs("POST", "/crm/v3/objects/contacts/batch/upsert")
        .and(body_json(json!({"inputs": [
            {"idProperty": "email", "id": "bob@example.com", "properties": {"email": "bob@example.com", "firstname": "Bobby"}, "objectWriteTraceId": "bob@example.com"}
        ]})))
        .once(ok(json!({"status": "COMPLETE", "results": [
            {"id": "888", "new": true, "objectWriteTraceId": "bob@example.com", "properties": {"email": "bob@example.com"}, "createdAt": t, "updatedAt": t, "archived": false}
        ]})), &s)
        .await;
    let f = Folder::new();
    f.write("hs/account.json", &account(&s.uri()));
    f.write("one.jsonl", "{\"id\": \"p1\", \"properties\": {\"email\": \"ada@example.com\", \"firstname\": \"Ada\"}}\n{\"id\": \"p2\", \"properties\": {\"email\": \"bob@example.com\", \"firstname\": \"Bob\"}}\n");
    f.write("two.jsonl", "{\"id\": \"p1\", \"properties\": {\"email\": \"ada@example.com\", \"firstname\": \"Ada L.\"}}\n{\"id\": \"p2\", \"properties\": {\"email\": \"bob@example.com\", \"firstname\": \"Bobby\"}}\n");
    let first = f.run(&["export", "--to", "hs", "--input", "one.jsonl"]);
    assert_eq!(first.ok_json()["created"], 2, "{}", first.render());
    let second = f.run_line("-o summary.json export --to hs --input two.jsonl");
    no_canary(&second);
    assert_eq!(second.code, 0, "{}", second.render());
    let summary: Value = serde_json::from_str(&f.read("summary.json")).unwrap();
    assert!(!f.read("summary.json").contains(TOKEN));
    assert_eq!(summary["updated"], 1, "{summary}");
    assert_eq!(summary["created"], 1, "{summary}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_scope_names_the_scopes_and_properties_are_asked_for() {
    let s = crate::support::mock::server().await;
    hs("GET", "/crm/v3/objects/contacts/512")
        .and(query_param("properties", "email,firstname,phone"))
        .once(
            ok(contact(512, "ada@example.com", "2024-01-01T00:00:00.000Z")),
            &s,
        )
        .await;
    hs("GET", "/crm/v3/lists/object-type-id/0-1/name/VIP")
        .once(ResponseTemplate::new(403).set_body_json(json!({"status": "error",
            "message": "This app hasn't been granted all required scopes to make this call.",
            "correlationId": "a43683b0-5717-4ceb-80b4-104d02915d8c", "category": "MISSING_SCOPES",
            "errors": [{"message": "One or more of the following scopes are required.", "context": {"requiredGranularScopes": ["crm.lists.read"]}}],
            "context": {"missingScopes": ["crm.lists.read"]}})), &s)
        .await;
    let f = Folder::new();
    let mut acct: Value = serde_json::from_str(&account(&s.uri())).unwrap();
    acct["properties"] = json!(["email", "firstname", "phone"]);
    f.write("account.json", &acct.to_string());
    let run = f.run(&["-o", "got.json", "get", "--id", "512"]);
    no_canary(&run);
    assert_eq!(run.code, 0, "{}", run.render());
    assert!(!f.read("got.json").contains(TOKEN));
    f.write(
        "in.jsonl",
        "{\"id\": \"p1\", \"properties\": {\"email\": \"ada@example.com\"}, \"groups\": [\"VIP\"]}\n",
    );
    // The contact is written; joining the list fails on the missing scope.
    hs("POST", "/crm/v3/objects/contacts/batch/upsert")
        .once(
            ok(
                json!({"status": "COMPLETE", "results": [{"id": "512", "new": false,
            "objectWriteTraceId": "ada@example.com", "properties": {"email": "ada@example.com"}}]}),
            ),
            &s,
        )
        .await;
    let run = f.run_line("export --to . --input in.jsonl --errors errors.jsonl");
    no_canary(&run);
    assert_eq!(run.code, 3, "{}", run.render());
    let errors = f.read("errors.jsonl");
    assert!(!errors.contains(TOKEN));
    let line: Value = serde_json::from_str(errors.lines().next().unwrap()).unwrap();
    assert_eq!(line["id"], "p1");
    let message = line["message"].as_str().unwrap();
    assert!(
        message.contains("403 Forbidden: This app hasn't been granted all required scopes to make this call. (One or more of the following scopes are required.)"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_429_for_the_spent_daily_limit_fails_at_once_with_hubspots_message() {
    let s = crate::support::mock::server().await;
    hs("GET", "/crm/v3/objects/contacts/512")
        .once(
            ResponseTemplate::new(429)
                .insert_header("X-HubSpot-RateLimit-Daily", "250000")
                .insert_header("X-HubSpot-RateLimit-Daily-Remaining", "0")
                .set_body_json(json!({"status": "error", "message": "You have reached your daily limit.",
                    "errorType": "RATE_LIMIT", "correlationId": "c033cdaa-2c40-4a64-ae48-b4cec88dad24",
                    "policyName": "DAILY", "requestId": "3d3e35b7-0dae-4b9f-a6e3-9c230cbcf8dd"})), &s)
        .await;
    let f = folder(&s.uri());
    let run = f.run(&["get", "--id", "512"]);
    no_canary(&run);
    snap!("hubspot_daily_limit", run);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_active_list_of_that_name_is_an_error_for_its_members() {
    let s = crate::support::mock::server().await;
    hs("POST", "/crm/v3/objects/contacts/batch/upsert")
        .once(
            ok(
                json!({"status": "COMPLETE", "results": [{"id": "512", "new": false,
            "objectWriteTraceId": "ada@example.com", "properties": {"email": "ada@example.com"}}]}),
            ),
            &s,
        )
        .await;
    let mut active = list("42", "VIP");
    active["list"]["processingType"] = json!("DYNAMIC");
    hs("GET", "/crm/v3/lists/object-type-id/0-1/name/VIP")
        .once(ok(active), &s)
        .await;
    let f = Folder::new();
    f.write("hs/account.json", &account(&s.uri()));
    f.write(
        "in.jsonl",
        "{\"id\": \"p1\", \"properties\": {\"email\": \"ada@example.com\"}, \"groups\": [\"VIP\"]}\n",
    );
    let run = f.run(&["export", "--to", "hs", "--input", "in.jsonl"]);
    no_canary(&run);
    assert_eq!(run.code, 3, "{}", run.render());
    assert!(
        run.stderr.contains(
            "HubSpot list \"VIP\" (42) is a DYNAMIC list; its members cannot be changed by API"
        ),
        "{}",
        run.render()
    );
}

fn upsert_input(email: &str, props: Value) -> Value {
    json!({"idProperty": "email", "id": email, "properties": props, "objectWriteTraceId": email})
}

fn upserted(id: &str, email: &str) -> Value {
    json!({"status": "COMPLETE", "results": [{"id": id, "new": true, "objectWriteTraceId": email,
        "properties": {"email": email}, "createdAt": "2024-01-01T00:00:00Z", "updatedAt": "2024-01-01T00:00:00Z", "archived": false}]})
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_refused_as_a_whole_is_sent_again_one_contact_at_a_time() {
    let s = crate::support::mock::server().await;
    let (ada, bob, cy) = (
        upsert_input("ada@example.com", json!({"email": "ada@example.com"})),
        upsert_input(
            "bob@example.com",
            json!({"email": "bob@example.com", "favourite_colour": "green"}),
        ),
        upsert_input("cy@example.com", json!({"email": "cy@example.com"})),
    );
    let no_such_property = json!({"status": "error", "message": "Property values were not valid",
        "correlationId": "aeb5f871-7f07-4993-9211-075dc63e7cbf", "category": "VALIDATION_ERROR",
        "errors": [{"message": "Property \"favourite_colour\" does not exist", "code": "PROPERTY_DOESNT_EXIST", "in": "favourite_colour"}]});
    hs("POST", "/crm/v3/objects/contacts/batch/upsert")
        .and(body_json(json!({"inputs": [ada, bob, cy]})))
        .once(
            ResponseTemplate::new(400).set_body_json(no_such_property.clone()),
            &s,
        )
        .await;
    hs("POST", "/crm/v3/objects/contacts/batch/upsert")
        .and(body_json(json!({"inputs": [ada]})))
        .once(ok(upserted("101", "ada@example.com")), &s)
        .await;
    hs("POST", "/crm/v3/objects/contacts/batch/upsert")
        .and(body_json(json!({"inputs": [bob]})))
        .once(
            ResponseTemplate::new(400).set_body_json(no_such_property),
            &s,
        )
        .await;
    hs("POST", "/crm/v3/objects/contacts/batch/upsert")
        .and(body_json(json!({"inputs": [cy]})))
        .once(ok(upserted("103", "cy@example.com")), &s)
        .await;
    let f = folder(&s.uri());
    f.write(
        "in.jsonl",
        "{\"email\":\"ada@example.com\"}\n{\"email\":\"bob@example.com\",\"favourite_colour\":\"green\"}\n{\"email\":\"cy@example.com\"}\n",
    );
    let rejects = import_with_refusals(&f, &VENDOR, 2, 1);
    assert_eq!(rejects[0]["record"]["email"], "bob@example.com");
    assert_eq!(
        rejects[0]["reason"],
        "Property values were not valid (Property \"favourite_colour\" does not exist)"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_contact_the_batch_answer_does_not_mention_is_rejected_not_counted_written() {
    let s = crate::support::mock::server().await;
    hs("POST", "/crm/v3/objects/contacts/batch/upsert")
        .and(body_json(json!({"inputs": [
            upsert_input("ada@example.com", json!({"email": "ada@example.com"})),
            upsert_input("bob@example.com", json!({"email": "bob@example.com"}))
        ]})))
        .once(ok(upserted("101", "ada@example.com")), &s)
        .await;
    let f = folder(&s.uri());
    f.write(
        "in.jsonl",
        "{\"email\":\"ada@example.com\"}\n{\"email\":\"bob@example.com\"}\n",
    );
    let rejects = import_with_refusals(&f, &VENDOR, 1, 1);
    assert_eq!(rejects[0]["record"]["email"], "bob@example.com");
    assert!(
        rejects[0]["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("neither a result nor an error"),
        "{}",
        rejects[0]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_list_created_meanwhile_by_someone_else_is_looked_up_again() {
    let s = crate::support::mock::server().await;
    hs("POST", "/crm/v3/objects/contacts/batch/upsert")
        .once(ok(upserted("101", "ada@example.com")), &s)
        .await;
    hs("GET", "/crm/v3/lists/object-type-id/0-1/name/VIP")
        .respond_with(
            ResponseTemplate::new(404).set_body_json(json!({"status": "error",
            "message": "List with name VIP does not exist", "category": "OBJECT_NOT_FOUND"})),
        )
        .up_to_n_times(1)
        .expect(1)
        .mount(&s)
        .await;
    hs("POST", "/crm/v3/lists")
        .once(
            ResponseTemplate::new(409).set_body_json(json!({"status": "error",
            "message": "A list named VIP already exists", "category": "CONFLICT"})),
            &s,
        )
        .await;
    hs("GET", "/crm/v3/lists/object-type-id/0-1/name/VIP")
        .once(ok(list("611", "VIP")), &s)
        .await;
    hs("PUT", "/crm/v3/lists/611/memberships/add")
        .and(body_json(json!(["101"])))
        .once(
            ok(json!({"recordIdsAdded": ["101"], "recordIdsMissing": []})),
            &s,
        )
        .await;
    let f = Folder::new();
    f.write("hs/account.json", &account(&s.uri()));
    f.write(
        "in.jsonl",
        "{\"id\": \"p1\", \"properties\": {\"email\": \"ada@example.com\"}, \"groups\": [\"VIP\"]}\n",
    );
    let run = f.run(&["export", "--to", "hs", "--input", "in.jsonl"]);
    no_canary(&run);
    assert_eq!(run.ok_json()["groupsAdded"], 1, "{}", run.render());
}

#[tokio::test(flavor = "multi_thread")]
async fn getupdates_on_an_empty_portal_answers_a_token_that_misses_nothing() {
    let s = crate::support::mock::server().await;
    hs("POST", "/crm/v3/objects/contacts/search")
        .and(body_json(search_body(None, 200)))
        .once(ok(json!({"total": 0, "results": []})), &s)
        .await;
    hs("POST", "/crm/v3/objects/contacts/search")
        .and(body_json(search_body(Some(0), 200)))
        .once(ok(json!({"total": 0, "results": []})), &s)
        .await;
    let f = folder(&s.uri());
    let out = f.run(&["getupdates"]).ok_json();
    assert_eq!(out["entries"], json!([]));
    assert_eq!(out["nextSync"], "1970-01-01T00:00:00.000Z");
    let again = f
        .run(&["getupdates", "--last-sync", "1970-01-01T00:00:00.000Z"])
        .ok_json();
    assert_eq!(again["nextSync"], "1970-01-01T00:00:00.000Z");
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_a_contact_already_gone_from_hubspot_is_done() {
    let s = crate::support::mock::server().await;
    hs("POST", "/crm/v3/objects/contacts/batch/upsert")
        .once(ok(upserted("101", "ada@example.com")), &s)
        .await;
    hs("DELETE", "/crm/v3/objects/contacts/101")
        .once(
            ResponseTemplate::new(404).set_body_json(json!({"status": "error",
            "message": "resource not found", "category": "OBJECT_NOT_FOUND"})),
            &s,
        )
        .await;
    let f = Folder::new();
    f.write("hs/account.json", &account(&s.uri()));
    f.write(
        "one.jsonl",
        "{\"id\": \"p1\", \"properties\": {\"email\": \"ada@example.com\"}}\n",
    );
    f.write(
        "two.jsonl",
        "{\"id\": \"p1\", \"properties\": {\"email\": \"ada@example.com\"}, \"toDelete\": true}\n",
    );
    let first = f.run(&["export", "--to", "hs", "--input", "one.jsonl"]);
    assert_eq!(first.ok_json()["created"], 1, "{}", first.render());
    let second = f.run(&["export", "--to", "hs", "--input", "two.jsonl", "--yes"]);
    no_canary(&second);
    assert_eq!(second.ok_json()["deleted"], 1, "{}", second.render());
}

/// Where ferry knowingly differs from HubSpot's OpenAPI description: the
/// spec types each `sorts` item as a string, while HubSpot's search guide
/// and reference send `{"propertyName", "direction"}` objects, the form
/// ferry sends (docs/connectors/hubspot.md §10).
const SPEC_DEVIATIONS: &[&str] = &[
    r#"POST /crm/v3/objects/contacts/search: body /sorts/0: {"propertyName":"lastmodifieddate","direction":"ASCENDING"} is not of type string"#,
];

#[tokio::test(flavor = "multi_thread")]
async fn every_request_satisfies_hubspots_openapi_description() {
    use crate::support::openapi::{assert_conform, previewed, received_by};
    let s = crate::support::mock::server().await;
    let t = "2024-01-01T00:00:00.000Z";
    hs("GET", "/crm/v3/objects/contacts")
        .once(ok(json!({"results": []})), &s)
        .await;
    hs("GET", "/crm/v3/objects/contacts/512")
        .once(ok(contact(512, "ada@example.com", t)), &s)
        .await;
    hs("POST", "/crm/v3/objects/contacts/search")
        .respond_with(ok(
            json!({"total": 1, "results": [contact(1, "a@example.com", t)]}),
        ))
        .expect(2)
        .mount(&s)
        .await;
    hs("GET", "/crm/v3/lists/object-type-id/0-1/name/VIP")
        .once(
            ResponseTemplate::new(404).set_body_json(json!({"status": "error",
            "message": "List with name VIP does not exist", "category": "OBJECT_NOT_FOUND"})),
            &s,
        )
        .await;
    hs("POST", "/crm/v3/lists")
        .once(ok(list("611", "VIP")), &s)
        .await;
    hs("PUT", "/crm/v3/lists/611/memberships/add")
        .once(
            ok(json!({"recordIdsAdded": ["101"], "recordIdsMissing": []})),
            &s,
        )
        .await;
    hs("POST", "/crm/v3/objects/contacts/batch/upsert")
        .once(ok(json!({"status": "COMPLETE", "results": [
            {"id": "101", "new": true, "objectWriteTraceId": "ada@example.com", "properties": {"email": "ada@example.com"}, "createdAt": t, "updatedAt": t, "archived": false}
        ], "requestedAt": t, "startedAt": t, "completedAt": t})), &s)
        .await;

    let f = Folder::new();
    f.write("account.json", &account(&s.uri()));
    f.write("hs/account.json", &account(&s.uri()));
    f.write(
        "in.jsonl",
        "{\"email\":\"ada@example.com\",\"firstname\":\"Ada\"}\n",
    );
    f.write(
        "profiles.jsonl",
        r#"{"id": "p1", "properties": {"email": "ada@example.com", "firstname": "Ada"}, "groups": ["VIP"]}
"#,
    );
    let mut requests = Vec::new();
    for args in [
        &[
            "insert",
            "--dry-run",
            "--value",
            r#"{"email": "ada@example.com", "vip": true}"#,
        ][..],
        &[
            "patch",
            "--dry-run",
            "--id",
            "ada@example.com",
            "--value",
            r#"{"phone": null}"#,
        ],
        &[
            "patch",
            "--dry-run",
            "--id",
            "512",
            "--value",
            r#"{"firstname": "Ada"}"#,
        ],
        &["delete", "--dry-run", "--id", "ada@example.com"],
        &["delete", "--dry-run", "--id", "512"],
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
            "hs",
            "--input",
            "profiles.jsonl",
            "--dry-run",
        ],
    ] {
        let run = f.run(args);
        no_canary(&run);
        requests.extend(previewed(&run.ok_json()));
    }
    // What is not previewed is sent to the mock server and read back there.
    for args in [
        &["check"][..],
        &["get", "--id", "512"],
        &["getupdates"],
        &["getupdates", "--last-sync", "2024-01-01T00:00:00Z"],
        &["export", "--to", "hs", "--input", "profiles.jsonl"],
    ] {
        let run = f.run(args);
        no_canary(&run);
        assert_eq!(run.code, 0, "{}", run.render());
    }
    let sent = received_by(&s).await;
    let searches: Vec<&Value> = sent
        .iter()
        .filter(|r| r["url"].as_str().unwrap().ends_with("/search"))
        .map(|r| &r["body"])
        .collect();
    insta::assert_snapshot!(
        "hubspot_search_bodies",
        serde_json::to_string_pretty(&searches).unwrap()
    );
    requests.extend(sent);
    assert_conform("hubspot", &requests, SPEC_DEVIATIONS);
}
