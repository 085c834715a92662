//! The `klaviyo` connector through the real binary against wiremock servers
//! that answer with the documented JSON:API shapes (docs/connectors/klaviyo.md)
//! and fail when an expected request is not made: every action with its
//! exact method, path, headers and body, cursor paging to the end,
//! getupdates by `updated`, a 429 that waits for `Retry-After`, the vendor's
//! error details, the bulk import job polled to completion with a partial
//! failure, an export that creates, updates, clears, changes lists and
//! deletes, and dry-run previews. The canary key must never be printed.

use serde_json::{json, Value};
use wiremock::matchers::{body_json, header, method, path, query_param, query_param_is_missing};
use wiremock::{Mock, ResponseTemplate};

use crate::snap;
use crate::support::saas::{
    a_429_waited_out, an_import_stops_a_loop, an_offset_without_a_checkpoint_is_refused,
    dry_run_previews, export_scenario, import_reads_to_the_end, import_with_refusals, Previews,
    Step, Vendor,
};
use crate::support::{Folder, MountOnce, Run};

pub const KEY: &str = "pk_CANARY-klaviyo-3e7b";

/// The connector as the SaaS scenarios see it: no canary at all may show.
const VENDOR: Vendor = Vendor {
    folder: ".",
    secrets: &[KEY, "CANARY"],
};
const REVISION: &str = "2026-07-15";
const JSON_API: &str = "application/vnd.api+json";

/// The account of a test: fast rate limits, quick retries and polls.
fn account(base: &str) -> String {
    json!({
        "connector": "klaviyo",
        "apiKey": KEY,
        "baseUrl": base,
        "rateLimit": {"rps": 1000, "burst": 1000, "maxInFlight": 8},
        "retry": {"maxAttempts": 2, "baseDelayMs": 1},
        "pollIntervalMs": 1,
        "maxPolls": 5
    })
    .to_string()
}

pub fn folder(base: &str) -> Folder {
    let f = Folder::new();
    f.write("account.json", &account(base));
    f
}

/// A request to Klaviyo with the key, the revision and JSON:API's media type.
fn kl(verb: &str, p: &str) -> wiremock::MockBuilder {
    let m = Mock::given(method(verb))
        .and(path(p))
        .and(header(
            "Authorization",
            format!("Klaviyo-API-Key {KEY}").as_str(),
        ))
        .and(header("revision", REVISION))
        .and(header("Accept", JSON_API));
    if verb == "GET" {
        m
    } else {
        m.and(header("Content-Type", JSON_API))
    }
}

fn answer(status: u16, body: Value) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .insert_header("Content-Type", JSON_API)
        .set_body_json(body)
}

/// A profile resource as the API answers it.
fn profile(id: &str, email: &str, updated: &str) -> Value {
    json!({
        "type": "profile", "id": id,
        "attributes": {
            "email": email, "phone_number": null, "external_id": null,
            "first_name": "Sarah", "last_name": "Mason", "organization": null, "locale": null,
            "title": null, "image": null, "created": "2022-11-08T00:00:00+00:00", "updated": updated,
            "last_event_date": null,
            "location": {"address1": null, "city": "New York", "country": null, "region": null, "zip": null, "timezone": null, "ip": null},
            "properties": {"pseudonym": "Dr. Octopus"}
        },
        "links": {"self": format!("https://a.klaviyo.com/api/profiles/{id}/")}
    })
}

fn collection(data: Vec<Value>, next: Option<String>) -> Value {
    json!({"data": data, "links": {"self": "https://a.klaviyo.com/api/profiles", "next": next, "prev": null}})
}

fn error(status: u16, code: &str, title: &str, detail: &str) -> ResponseTemplate {
    answer(
        status,
        json!({"errors": [{"id": "7b8a6a3e-6a1e-4f1e-9a5d-0c2f1b0c1d2e", "status": status, "code": code,
            "title": title, "detail": detail, "source": {"pointer": "/data/attributes/email"}}]}),
    )
}

/// Assert the key reached no output.
fn no_canary(run: &Run) {
    run.hides(&[KEY], "the key");
    assert!(
        !run.stderr.contains("CANARY"),
        "the key was printed:\n{}",
        run.render()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_action_sends_the_documented_request() {
    let s = crate::support::mock::server().await;
    let ada = "01GDDKASAP8TKDDA2GRZDSVP4H";
    kl("GET", "/api/profiles")
        .and(query_param("page[size]", "1"))
        .and(query_param_is_missing("filter"))
        .once(
            answer(
                200,
                collection(
                    vec![profile(ada, "ada@example.com", "2024-01-01T00:00:00+00:00")],
                    None,
                ),
            ),
            &s,
        )
        .await;
    // get and patch by email look the profile up first.
    kl("GET", "/api/profiles")
        .and(query_param("filter", "equals(email,\"ada@example.com\")"))
        .and(query_param("page[size]", "1"))
        .respond_with(answer(
            200,
            collection(
                vec![profile(ada, "ada@example.com", "2024-01-01T00:00:00+00:00")],
                None,
            ),
        ))
        .expect(2)
        .mount(&s)
        .await;
    kl("GET", &format!("/api/profiles/{ada}"))
        .respond_with(answer(
            200,
            json!({"data": profile(ada, "ada@example.com", "2024-01-01T00:00:00+00:00")}),
        ))
        .expect(2)
        .mount(&s)
        .await;
    kl("POST", "/api/profiles")
        .and(body_json(json!({"data": {"type": "profile", "attributes": {
            "email": "grace@example.com", "first_name": "Grace", "location": {"city": "Arlington"},
            "properties": {"plan": "pro", "pseudonym": "Amazing Grace"}}}})))
        .once(answer(201, json!({"data": profile("01GRACE0000000000000000000", "grace@example.com", "2024-01-02T00:00:00+00:00")})), &s)
        .await;
    kl("PATCH", &format!("/api/profiles/{ada}"))
        .and(body_json(json!({"data": {"type": "profile", "id": ada,
            "attributes": {"first_name": "Ada", "title": null, "properties": {"plan": "team"}},
            "meta": {"patch_properties": {"unset": ["pseudonym"]}}}})))
        .once(
            answer(
                200,
                json!({"data": profile(ada, "ada@example.com", "2024-01-03T00:00:00+00:00")}),
            ),
            &s,
        )
        .await;
    kl("POST", "/api/data-privacy-deletion-jobs")
        .and(body_json(
            json!({"data": {"type": "data-privacy-deletion-job", "attributes": {"profile": {"data":
            {"type": "profile", "attributes": {"email": "ada@example.com"}}}}}}),
        ))
        .once(ResponseTemplate::new(202), &s)
        .await;
    kl("POST", "/api/data-privacy-deletion-jobs")
        .and(body_json(
            json!({"data": {"type": "data-privacy-deletion-job", "attributes": {"profile": {"data":
            {"type": "profile", "id": "01GRACE0000000000000000000", "attributes": {}}}}}}),
        ))
        .once(ResponseTemplate::new(202), &s)
        .await;
    let f = folder(&s.uri());
    let runs = [
        f.run(&["check"]),
        f.run(&["get", "--id", ada]),
        f.run(&["get", "--id", "ada@example.com"]),
        f.run(&["insert", "--value", r#"{"email": "grace@example.com", "first_name": "Grace", "last_name": null, "plan": "pro", "properties": {"pseudonym": "Amazing Grace"}, "location": {"city": "Arlington"}, "created": "2020-01-01"}"#]),
        f.run(&["patch", "--id", "ada@example.com", "--value", r#"{"first_name": "Ada", "title": null, "plan": "team", "pseudonym": null}"#]),
        f.run(&["delete", "--id", "ada@example.com"]),
        f.run(&["delete", "--id", "01GRACE0000000000000000000"]),
    ];
    for run in &runs {
        no_canary(run);
    }
    assert_eq!(runs[0].ok_json()["ok"], true);
    let got = runs[1].ok_json();
    assert_eq!(got["id"], ada);
    assert_eq!(got["email"], "ada@example.com");
    assert_eq!(got["properties"]["pseudonym"], "Dr. Octopus");
    assert_eq!(runs[2].ok_json()["id"], ada);
    // The record id is the key (email); Klaviyo's id is in the record.
    let inserted = runs[3].ok_json();
    assert_eq!(inserted["id"], "grace@example.com");
    assert_eq!(inserted["record"]["id"], "01GRACE0000000000000000000");
    assert_eq!(runs[4].ok_json()["id"], "ada@example.com");
    assert_eq!(runs[5].ok_json()["id"], "ada@example.com");
    assert_eq!(runs[6].ok_json()["id"], "01GRACE0000000000000000000");
}

#[tokio::test(flavor = "multi_thread")]
async fn import_pages_with_the_links_next_cursor_to_the_end() {
    let s = crate::support::mock::server().await;
    let t = "2024-01-01T00:00:00+00:00";
    let next = |c: &str| {
        Some(format!(
            "{}/api/profiles?page%5Bcursor%5D={c}&page%5Bsize%5D=2",
            s.uri()
        ))
    };
    kl("GET", "/api/profiles")
        .and(query_param("page[size]", "2"))
        .and(query_param_is_missing("page[cursor]"))
        .once(
            answer(
                200,
                collection(
                    vec![profile("P1", "p1@x.io", t), profile("P2", "p2@x.io", t)],
                    next("c2"),
                ),
            ),
            &s,
        )
        .await;
    kl("GET", "/api/profiles")
        .and(query_param("page[cursor]", "c2"))
        .and(query_param("page[size]", "2"))
        .once(
            answer(
                200,
                collection(
                    vec![profile("P3", "p3@x.io", t), profile("P4", "p4@x.io", t)],
                    next("c3"),
                ),
            ),
            &s,
        )
        .await;
    kl("GET", "/api/profiles")
        .and(query_param("page[cursor]", "c3"))
        .once(
            answer(200, collection(vec![profile("P5", "p5@x.io", t)], None)),
            &s,
        )
        .await;
    let f = folder(&s.uri());
    import_reads_to_the_end(
        &f,
        &VENDOR,
        "email",
        &["p1@x.io", "p2@x.io", "p3@x.io", "p4@x.io", "p5@x.io"],
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn getupdates_filters_by_updated_and_continues_exactly_after_a_limit() {
    let s = crate::support::mock::server().await;
    let t = "2024-02-01T10:00:00+00:00";
    let (a, b, c) = (
        profile("PA", "a@x.io", "2024-01-15T00:00:00+00:00"),
        profile("PB", "b@x.io", t),
        profile("PC", "c@x.io", t),
    );
    kl("GET", "/api/profiles")
        .and(query_param(
            "filter",
            "greater-than(updated,2023-12-31T23:59:59.999Z)",
        ))
        .and(query_param("sort", "updated"))
        .and(query_param("page[size]", "100"))
        .and(query_param_is_missing("page[cursor]"))
        .once(
            answer(
                200,
                collection(
                    vec![a],
                    Some(format!(
                        "{}/api/profiles?page%5Bcursor%5D=n1&sort=updated",
                        s.uri()
                    )),
                ),
            ),
            &s,
        )
        .await;
    kl("GET", "/api/profiles")
        .and(query_param("page[cursor]", "n1"))
        .once(
            answer(200, collection(vec![b.clone(), c.clone()], None)),
            &s,
        )
        .await;
    // The next run starts a millisecond before PB and skips it.
    kl("GET", "/api/profiles")
        .and(query_param(
            "filter",
            "greater-than(updated,2024-02-01T09:59:59.999Z)",
        ))
        .and(query_param("sort", "updated"))
        .once(answer(200, collection(vec![b, c], None)), &s)
        .await;
    let f = folder(&s.uri());
    let first = f.run_line("getupdates --last-sync 2024-01-01T00:00:00Z --limit 2");
    no_canary(&first);
    let first = first.ok_json();
    assert_eq!(first["nextSync"], "2024-02-01T10:00:00.000Z|PB");
    let ids: Vec<&str> = first["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["a@x.io", "b@x.io"]);
    assert_eq!(first["entries"][0]["type"], "upsert");
    let token = first["nextSync"].as_str().unwrap();
    let next = f.run(&["getupdates", "--last-sync", token]).ok_json();
    let ids: Vec<&str> = next["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["c@x.io"]);
    assert_eq!(next["nextSync"], "2024-02-01T10:00:00.000Z|PB,PC");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_429_waits_for_retry_after_then_succeeds() {
    let s = crate::support::mock::server().await;
    let limited = kl("GET", "/api/profiles/P1")
        .respond_with(
            error(
                429,
                "throttled",
                "Request was throttled.",
                "Request was throttled. Expected available in 1 second.",
            )
            .insert_header("Retry-After", "1"),
        )
        .up_to_n_times(1)
        .expect(1);
    let ok = kl("GET", "/api/profiles/P1")
        .respond_with(
            answer(
                200,
                json!({"data": profile("P1", "p1@x.io", "2024-01-01T00:00:00+00:00")}),
            )
            .insert_header("RateLimit-Limit", "750")
            .insert_header("RateLimit-Remaining", "749")
            .insert_header("RateLimit-Reset", "42"),
        )
        .expect(1);
    let f = folder(&s.uri());
    // -vv logs headers and bodies: the key must stay masked.
    let (run, waited) = a_429_waited_out(
        &f,
        &s,
        &VENDOR,
        vec![limited, ok],
        &["-o", "got.json", "get", "--id", "P1"],
        "Authorization: ***",
    )
    .await;
    let written = f.read("got.json");
    assert!(!written.contains(KEY), "{written}");
    assert_eq!((run.code, run.stdout.as_str()), (0, ""), "{}", run.render());
    assert_eq!(serde_json::from_str::<Value>(&written).unwrap()["id"], "P1");
    // It waited the second Retry-After asked for.
    assert_eq!(waited, [std::time::Duration::from_secs(1)]);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_vendor_error_detail_is_shown() {
    let s = crate::support::mock::server().await;
    kl("GET", "/api/profiles/NOBODY")
        .once(
            error(
                404,
                "not_found",
                "Not found.",
                "A profile with id NOBODY does not exist.",
            ),
            &s,
        )
        .await;
    kl("PATCH", "/api/profiles/P1")
        .once(
            error(
                401,
                "not_authenticated",
                "Authentication credentials were not provided.",
                "Missing or invalid private key.",
            ),
            &s,
        )
        .await;
    kl("POST", "/api/profiles")
        .once(answer(409, json!({"errors": [{"id": "bf03176f-0000-0000-0000-000000000000", "status": 409,
            "code": "duplicate_profile", "title": "Conflict.", "detail": "A profile already exists with one of these identifiers.",
            "source": {"pointer": "/data/attributes"}, "links": {}, "meta": {"duplicate_profile_id": "01HDUPLICATE000000000000000"}}]})), &s)
        .await;
    let f = folder(&s.uri());
    let run = f.run(&["get", "--id", "NOBODY"]);
    no_canary(&run);
    snap!("klaviyo_not_found", run);
    let run = f.run(&["patch", "--id", "P1", "--value", r#"{"first_name": "x"}"#]);
    no_canary(&run);
    snap!("klaviyo_unauthorized", run);
    let run = f.run(&["insert", "--value", r#"{"email": "ada@example.com"}"#]);
    no_canary(&run);
    snap!("klaviyo_duplicate", run);
}

fn job(id: &str, status: &str, total: u64, done: u64, failed: u64) -> Value {
    json!({"data": {"type": "profile-bulk-import-job", "id": id, "attributes": {
        "status": status, "created_at": "2024-01-01T00:00:00+00:00", "total_count": total,
        "completed_count": done, "failed_count": failed, "completed_at": null, "expires_at": null, "started_at": null},
        "links": {"self": format!("https://a.klaviyo.com/api/profile-bulk-import-jobs/{id}/")}}})
}

#[tokio::test(flavor = "multi_thread")]
async fn the_bulk_import_job_is_polled_to_completion_and_each_record_gets_its_outcome() {
    let s = crate::support::mock::server().await;
    kl("POST", "/api/profile-bulk-import-jobs")
        .and(body_json(json!({"data": {"type": "profile-bulk-import-job", "attributes": {"profiles": {"data": [
            {"type": "profile", "attributes": {"email": "a@x.io", "first_name": "Ada"}},
            {"type": "profile", "attributes": {"email": "not-an-email"}},
            {"type": "profile", "attributes": {"email": "c@x.io", "properties": {"plan": "pro"}}}
        ]}}}})))
        .once(answer(202, job("JOB1", "queued", 3, 0, 0)), &s)
        .await;
    kl("GET", "/api/profile-bulk-import-jobs/JOB1")
        .respond_with(answer(200, job("JOB1", "processing", 3, 1, 0)))
        .up_to_n_times(2)
        .expect(2)
        .mount(&s)
        .await;
    kl("GET", "/api/profile-bulk-import-jobs/JOB1")
        .once(answer(200, job("JOB1", "complete", 3, 3, 1)), &s)
        .await;
    kl("GET", "/api/profile-bulk-import-jobs/JOB1/import-errors")
        .and(query_param("page[size]", "100"))
        .once(answer(200, json!({"data": [{"type": "import-error", "id": "e4eebb08-b055-4a6f-bb13-c8cb69c9eb94",
            "attributes": {"code": "invalid", "title": "Invalid input", "detail": "Invalid email address",
                "source": {"pointer": "/data/attributes/email"},
                "original_payload": {"type": "profile", "attributes": {"email": "not-an-email"}}}}],
            "links": {"self": "https://a.klaviyo.com/api/profile-bulk-import-jobs/JOB1/import-errors", "next": null}})), &s)
        .await;
    let f = folder(&s.uri());
    f.write(
        "in.jsonl",
        "{\"email\":\"a@x.io\",\"first_name\":\"Ada\",\"last_name\":null}\n{\"email\":\"not-an-email\"}\n{\"email\":\"c@x.io\",\"plan\":\"pro\"}\n{\"first_name\":\"No key\"}\n",
    );
    let rejects = import_with_refusals(&f, &VENDOR, 2, 2);
    let reasons: Vec<(&str, &str)> = rejects
        .iter()
        .map(|r| {
            (
                r["record"]["email"].as_str().unwrap_or("-"),
                r["reason"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(
        reasons.contains(&("not-an-email", "Invalid input: Invalid email address")),
        "{reasons:?}"
    );
    assert!(reasons.contains(&("-", "missing email")), "{reasons:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn export_creates_updates_clears_changes_lists_and_deletes() {
    let s = crate::support::mock::server().await;
    let upsert = |email: &str, attrs: Value, id: &str| {
        kl("POST", "/api/profile-import")
            .and(body_json(
                json!({"data": {"type": "profile", "attributes": attrs}}),
            ))
            .respond_with(answer(
                201,
                json!({"data": profile(id, email, "2024-01-01T00:00:00+00:00")}),
            ))
            .expect(1)
    };
    let lookup = |name: &str, found: Value| {
        kl("GET", "/api/lists")
            .and(query_param(
                "filter",
                format!("equals(name,\"{name}\")").as_str(),
            ))
            .respond_with(answer(
                200,
                json!({"data": found, "links": {"self": "x", "next": null}}),
            ))
            .expect(1)
    };
    let members = |verb: &str, list: &str, ids: &[&str]| {
        let data: Vec<Value> = ids
            .iter()
            .map(|id| json!({"type": "profile", "id": id}))
            .collect();
        kl(verb, &format!("/api/lists/{list}/relationships/profiles"))
            .and(body_json(json!({ "data": data })))
            .respond_with(ResponseTemplate::new(204))
            .expect(1)
    };
    // First run: three creates; VIP exists, Newsletter is created, once.
    let first = vec![
        upsert(
            "a@x.io",
            json!({"email": "a@x.io", "first_name": "Ada"}),
            "PA",
        ),
        upsert(
            "b@x.io",
            json!({"email": "b@x.io", "last_name": "Byron", "properties": {"plan": "pro"}}),
            "PB",
        ),
        upsert("c@x.io", json!({"email": "c@x.io"}), "PC"),
        lookup(
            "VIP",
            json!([{"type": "list", "id": "VIPL01", "attributes": {"name": "VIP", "opt_in_process": "single_opt_in"}}]),
        ),
        lookup("Newsletter", json!([])),
        kl("POST", "/api/lists")
            .and(body_json(
                json!({"data": {"type": "list", "attributes": {"name": "Newsletter"}}}),
            ))
            .respond_with(answer(
                201,
                json!({"data": {"type": "list", "id": "NEWS01", "attributes": {"name": "Newsletter"}}}),
            ))
            .expect(1),
        members("POST", "VIPL01", &["PA", "PB"]),
        members("POST", "NEWS01", &["PB"]),
    ];
    // Second run: Ada's name changes, Byron's plan and last name are
    // cleared, Ada joins and Byron leaves Newsletter, c is deleted.
    let second = vec![
        kl("PATCH", "/api/profiles/PA")
            .and(body_json(json!({"data": {"type": "profile", "id": "PA", "attributes": {"first_name": "Ada L."}}})))
            .respond_with(answer(200, json!({"data": profile("PA", "a@x.io", "2024-01-02T00:00:00+00:00")})))
            .expect(1),
        kl("PATCH", "/api/profiles/PB")
            .and(body_json(
                json!({"data": {"type": "profile", "id": "PB", "attributes": {"last_name": null},
                "meta": {"patch_properties": {"unset": ["plan"]}}}}),
            ))
            .respond_with(answer(
                200,
                json!({"data": profile("PB", "b@x.io", "2024-01-02T00:00:00+00:00")}),
            ))
            .expect(1),
        kl("POST", "/api/data-privacy-deletion-jobs")
            .and(body_json(
                json!({"data": {"type": "data-privacy-deletion-job", "attributes": {"profile": {"data":
                {"type": "profile", "id": "PC", "attributes": {}}}}}}),
            ))
            .respond_with(ResponseTemplate::new(202))
            .expect(1),
        lookup(
            "Newsletter",
            json!([{"type": "list", "id": "NEWS01", "attributes": {"name": "Newsletter"}}]),
        ),
        members("POST", "NEWS01", &["PA"]),
        members("DELETE", "NEWS01", &["PB"]),
    ];
    let f = Folder::new();
    f.write("kl/account.json", &account(&s.uri()));
    let vendor = Vendor {
        folder: "kl",
        ..VENDOR
    };
    export_scenario(
        &f,
        &s,
        &vendor,
        vec![
            Step::export(
                "first.jsonl",
                "{\"id\": \"a\", \"properties\": {\"email\": \"a@x.io\", \"first_name\": \"Ada\"}, \"groups\": [\"VIP\"]}\n\
                 {\"id\": \"b\", \"properties\": {\"email\": \"b@x.io\", \"last_name\": \"Byron\", \"plan\": \"pro\"}, \"groups\": [\"VIP\", \"Newsletter\"]}\n\
                 {\"id\": \"c\", \"properties\": {\"email\": \"c@x.io\"}, \"groups\": []}\n",
                first,
            )
            .summary(json!({"created": 3, "groupsAdded": 3})),
            Step::export("second.jsonl", SECOND, vec![])
                .flags(&["--dry-run"])
                .check(|dry| {
                    // The state file is named after a hash of the temporary folder's path.
                    let hash = regex::Regex::new(r"export-[0-9a-f]{16}\.db").unwrap();
                    insta::assert_snapshot!(
                        "klaviyo_export_dry_run",
                        hash.replace_all(&dry.render(), "export-[HASH].db")
                    );
                }),
            Step::export("second.jsonl", SECOND, second)
                .flags(&["--yes"])
                .summary(json!({"updated": 2, "deleted": 1, "groupsAdded": 1, "groupsRemoved": 1})),
        ],
    )
    .await;
}

/// The second run: a@x.io renamed and joins Newsletter, b@x.io loses its
/// plan, last name and Newsletter, c@x.io is deleted.
const SECOND: &str = "{\"id\": \"a\", \"properties\": {\"email\": \"a@x.io\", \"first_name\": \"Ada L.\"}, \"groups\": [\"VIP\", \"Newsletter\"]}\n\
     {\"id\": \"b\", \"properties\": {\"email\": \"b@x.io\"}, \"groups\": [\"VIP\"]}\n\
     {\"id\": \"c\", \"properties\": {\"email\": \"c@x.io\"}, \"groups\": [], \"toDelete\": true}\n";

#[test]
fn dry_run_previews_redact_the_key() {
    let f = folder("https://a.klaviyo.com");
    let previews = Previews {
        insert: r#"{"email": "ada@example.com", "first_name": "Ada", "plan": "pro"}"#,
        patch: ("ada@example.com", r#"{"title": null, "plan": null}"#),
        delete: Some("external_id:crm-7"),
        import: "{\"email\":\"a@x.io\",\"first_name\":\"Ada\"}\n{\"first_name\":\"No key\"}\n{\"email\":\"b@x.io\",\"plan\":\"pro\"}\n",
    };
    dry_run_previews(&f, &VENDOR, &previews, |action, run| {
        snap!(format!("klaviyo_dry_run_{action}"), run)
    });
}

#[test]
fn the_spec_documents_options_and_fields() {
    let f = Folder::new();
    snap!("klaviyo_connector_spec", f.run(&["connectors", "klaviyo"]));
}

#[test]
fn an_offset_cannot_jump_into_the_cursor() {
    let f = folder("http://127.0.0.1:9");
    an_offset_without_a_checkpoint_is_refused(&f, &VENDOR, "klaviyo");
}

#[tokio::test(flavor = "multi_thread")]
async fn export_reports_a_profile_klaviyo_refuses_and_goes_on() {
    let s = crate::support::mock::server().await;
    kl("POST", "/api/profile-import")
        .and(body_json(
            json!({"data": {"type": "profile", "attributes": {"email": "a@x.io"}}}),
        ))
        .once(
            answer(
                201,
                json!({"data": profile("PA", "a@x.io", "2024-01-01T00:00:00+00:00")}),
            ),
            &s,
        )
        .await;
    kl("POST", "/api/profile-import")
        .and(body_json(json!({"data": {"type": "profile", "attributes": {"email": "b@x.io", "phone_number": "555"}}})))
        .once(error(400, "invalid", "Invalid input.", "Invalid phone number format (Example of a valid format: +12345678901)"), &s)
        .await;
    let f = Folder::new();
    f.write("kl/account.json", &account(&s.uri()));
    f.write(
        "p.jsonl",
        "{\"id\": \"a\", \"properties\": {\"email\": \"a@x.io\"}}\n{\"id\": \"b\", \"properties\": {\"email\": \"b@x.io\", \"phone_number\": \"555\"}}\n",
    );
    let run = f.run_line("export --to kl --input p.jsonl --errors errors.jsonl");
    no_canary(&run);
    assert_eq!(run.code, 3, "{}", run.render());
    assert_eq!(run.json()["created"], 1);
    assert_eq!(run.json()["rejected"], 1);
    assert!(!f.read("errors.jsonl").contains(KEY));
    let line: Value = serde_json::from_str(f.read("errors.jsonl").trim()).unwrap();
    assert_eq!(line["id"], "b");
    assert_eq!(line["kind"], "rejected");
    assert!(
        line["message"]
            .as_str()
            .unwrap()
            .contains("Invalid phone number format"),
        "{line}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cancelled_bulk_job_fails_its_batch() {
    let s = crate::support::mock::server().await;
    kl("POST", "/api/profile-bulk-import-jobs")
        .once(answer(202, job("JOB9", "queued", 1, 0, 0)), &s)
        .await;
    kl("GET", "/api/profile-bulk-import-jobs/JOB9")
        .once(answer(200, job("JOB9", "cancelled", 2, 0, 0)), &s)
        .await;
    let f = folder(&s.uri());
    f.write(
        "in.jsonl",
        "{\"email\":\"a@x.io\"}\n{\"email\":\"b@x.io\"}\n",
    );
    let run = f.run(&["import", "--from", "jsonl:in.jsonl", "--to", "."]);
    no_canary(&run);
    assert_eq!(run.code, 1, "{}", run.render());
    assert!(
        run.stderr
            .contains("Klaviyo bulk import job JOB9 was cancelled (2 profiles)"),
        "{}",
        run.render()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unfinished_bulk_job_fails_its_batch_after_the_last_poll() {
    let s = crate::support::mock::server().await;
    kl("POST", "/api/profile-bulk-import-jobs")
        .once(answer(202, job("JOB5", "queued", 1, 0, 0)), &s)
        .await;
    kl("GET", "/api/profile-bulk-import-jobs/JOB5")
        .respond_with(answer(200, job("JOB5", "processing", 2, 0, 0)))
        .expect(5)
        .mount(&s)
        .await;
    let f = folder(&s.uri());
    f.write(
        "in.jsonl",
        "{\"email\":\"a@x.io\"}\n{\"email\":\"b@x.io\"}\n",
    );
    let run = f.run(&["import", "--from", "jsonl:in.jsonl", "--to", "."]);
    no_canary(&run);
    assert_eq!(run.code, 1, "{}", run.render());
    assert!(
        run.stderr.contains(
            "Klaviyo bulk import job JOB5 did not finish after 5 polls (status processing, 0 of 2 done)"
        ),
        "{}",
        run.render()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_next_link_to_the_same_page_stops_instead_of_looping() {
    let s = crate::support::mock::server().await;
    kl("GET", "/api/profiles")
        .once(
            answer(
                200,
                collection(
                    vec![profile("P1", "p1@x.io", "2024-01-01T00:00:00+00:00")],
                    Some(format!("{}/api/profiles?page%5Bsize%5D=100", s.uri())),
                ),
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
            .contains("answered itself as the next page; stopping instead of looping"),
        "{}",
        run.render()
    );
}

#[test]
fn an_unknown_id_field_is_refused() {
    let f = Folder::new();
    f.write(
        "account.json",
        &json!({"connector": "klaviyo", "apiKey": KEY, "idField": "user_id"}).to_string(),
    );
    let run = f.run(&["insert", "--dry-run", "--value", "{}"]);
    no_canary(&run);
    snap!("klaviyo_bad_id_field", run);
}

#[tokio::test(flavor = "multi_thread")]
async fn cursors_that_go_round_in_a_circle_stop_the_import() {
    let s = crate::support::mock::server().await;
    let t = "2024-01-01T00:00:00+00:00";
    let next = |c: &str| Some(format!("{}/api/profiles?page%5Bcursor%5D={c}", s.uri()));
    kl("GET", "/api/profiles")
        .and(query_param_is_missing("page[cursor]"))
        .once(
            answer(
                200,
                collection(vec![profile("P1", "p1@x.io", t)], next("c1")),
            ),
            &s,
        )
        .await;
    kl("GET", "/api/profiles")
        .and(query_param("page[cursor]", "c1"))
        .once(
            answer(
                200,
                collection(vec![profile("P2", "p2@x.io", t)], next("c2")),
            ),
            &s,
        )
        .await;
    kl("GET", "/api/profiles")
        .and(query_param("page[cursor]", "c2"))
        .once(
            answer(
                200,
                collection(vec![profile("P3", "p3@x.io", t)], next("c1")),
            ),
            &s,
        )
        .await;
    let f = folder(&s.uri());
    an_import_stops_a_loop(
        &f,
        &VENDOR,
        "answered a next page that was read before; stopping instead of looping",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_of_one_is_a_single_upsert_and_a_refusal_rejects_it() {
    let s = crate::support::mock::server().await;
    kl("POST", "/api/profile-import")
        .and(body_json(json!({"data": {"type": "profile", "attributes": {"email": "a@x.io", "first_name": "Ada"}}})))
        .once(answer(200, json!({"data": profile("PA", "a@x.io", "2024-01-01T00:00:00+00:00")})), &s)
        .await;
    kl("POST", "/api/profile-import")
        .and(body_json(json!({"data": {"type": "profile", "attributes": {"email": "b@x.io", "phone_number": "555"}}})))
        .once(error(400, "invalid", "Invalid input.", "Invalid phone number format (Example of a valid format: +12345678901)"), &s)
        .await;
    let f = folder(&s.uri());
    f.write(
        "in.jsonl",
        "{\"email\":\"a@x.io\",\"first_name\":\"Ada\"}\n{\"email\":\"b@x.io\",\"phone_number\":\"555\"}\n",
    );
    let run =
        f.run_line("import --from jsonl:in.jsonl --to . --batch-size 1 --rejects rejects.jsonl");
    no_canary(&run);
    assert_eq!(run.code, 3, "{}", run.render());
    assert_eq!(run.json()["written"], 1);
    let reject: Value = serde_json::from_str(f.read("rejects.jsonl").trim()).unwrap();
    assert_eq!(reject["record"]["email"], "b@x.io");
    assert!(
        reject["reason"]
            .as_str()
            .unwrap()
            .contains("answered 400 Bad Request: Invalid phone number format"),
        "{reject}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn export_finds_a_profile_by_its_key_when_its_id_is_gone() {
    let s = crate::support::mock::server().await;
    kl("POST", "/api/profile-import")
        .and(body_json(json!({"data": {"type": "profile", "attributes": {"email": "a@x.io", "first_name": "Ada"}}})))
        .once(answer(201, json!({"data": profile("PA", "a@x.io", "2024-01-01T00:00:00+00:00")})), &s)
        .await;
    let f = Folder::new();
    f.write("kl/account.json", &account(&s.uri()));
    f.write(
        "p.jsonl",
        "{\"id\": \"a\", \"properties\": {\"email\": \"a@x.io\", \"first_name\": \"Ada\"}}\n",
    );
    let run = f.run(&["export", "--to", "kl", "--input", "p.jsonl"]);
    assert_eq!(run.ok_json()["created"], 1, "{}", run.render());
    s.verify().await;
    crate::support::mock::reset(&s).await;
    // PA was merged away in Klaviyo: the update answers 404, the key finds PZ.
    kl("PATCH", "/api/profiles/PA")
        .once(
            error(
                404,
                "not_found",
                "Not found.",
                "A profile with id PA does not exist.",
            ),
            &s,
        )
        .await;
    kl("GET", "/api/profiles")
        .and(query_param("filter", "equals(email,\"a@x.io\")"))
        .and(query_param("page[size]", "1"))
        .once(
            answer(
                200,
                collection(
                    vec![profile("PZ", "a@x.io", "2024-01-01T00:00:00+00:00")],
                    None,
                ),
            ),
            &s,
        )
        .await;
    kl("PATCH", "/api/profiles/PZ")
        .and(body_json(json!({"data": {"type": "profile", "id": "PZ", "attributes": {"email": "a@x.io", "first_name": "Ada L."}}})))
        .once(answer(200, json!({"data": profile("PZ", "a@x.io", "2024-01-02T00:00:00+00:00")})), &s)
        .await;
    f.write(
        "p.jsonl",
        "{\"id\": \"a\", \"properties\": {\"email\": \"a@x.io\", \"first_name\": \"Ada L.\"}}\n",
    );
    let run = f.run(&["export", "--to", "kl", "--input", "p.jsonl"]);
    no_canary(&run);
    assert_eq!(run.ok_json()["updated"], 1, "{}", run.render());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_initial_getupdates_pages_by_updated_to_the_end() {
    let s = crate::support::mock::server().await;
    kl("GET", "/api/profiles")
        .and(query_param_is_missing("filter"))
        .and(query_param("sort", "updated"))
        .and(query_param("page[size]", "100"))
        .and(query_param_is_missing("page[cursor]"))
        .once(
            answer(
                200,
                collection(
                    vec![
                        profile("P1", "p1@x.io", "2024-01-01T00:00:00+00:00"),
                        profile("P2", "p2@x.io", "2024-01-02T00:00:00+00:00"),
                    ],
                    Some(format!(
                        "{}/api/profiles?page%5Bcursor%5D=z2&sort=updated&page%5Bsize%5D=100",
                        s.uri()
                    )),
                ),
            ),
            &s,
        )
        .await;
    kl("GET", "/api/profiles")
        .and(query_param("page[cursor]", "z2"))
        .once(
            answer(
                200,
                collection(
                    vec![profile("P3", "p3@x.io", "2024-01-03T00:00:00+00:00")],
                    None,
                ),
            ),
            &s,
        )
        .await;
    let f = folder(&s.uri());
    let out = f.run(&["getupdates"]);
    no_canary(&out);
    let out = out.ok_json();
    let ids: Vec<&str> = out["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["p1@x.io", "p2@x.io", "p3@x.io"]);
    assert_eq!(out["nextSync"], "2024-01-03T00:00:00.000Z|P3");
}

#[tokio::test(flavor = "multi_thread")]
async fn getupdates_keeps_microseconds_so_the_next_run_skips_what_it_read() {
    // Klaviyo documents `updated` as `YYYY-MM-DDTHH:MM:SS.mmmmmm`.
    let s = crate::support::mock::server().await;
    let t = "2024-02-01T10:00:00.000400+00:00";
    let (b, c) = (profile("PB", "b@x.io", t), profile("PC", "c@x.io", t));
    kl("GET", "/api/profiles")
        .and(query_param(
            "filter",
            "greater-than(updated,2023-12-31T23:59:59.999Z)",
        ))
        .and(query_param("sort", "updated"))
        .once(
            answer(200, collection(vec![b.clone(), c.clone()], None)),
            &s,
        )
        .await;
    kl("GET", "/api/profiles")
        .and(query_param(
            "filter",
            "greater-than(updated,2024-02-01T09:59:59.999Z)",
        ))
        .and(query_param("sort", "updated"))
        .once(answer(200, collection(vec![b, c], None)), &s)
        .await;
    let f = folder(&s.uri());
    let first = f.run_line("getupdates --last-sync 2024-01-01T00:00:00Z --limit 1");
    no_canary(&first);
    let first = first.ok_json();
    assert_eq!(first["nextSync"], "2024-02-01T10:00:00.000400Z|PB");
    let token = first["nextSync"].as_str().unwrap();
    let next = f.run(&["getupdates", "--last-sync", token]);
    no_canary(&next);
    let next = next.ok_json();
    let ids: Vec<&str> = next["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["c@x.io"], "{next}");
    assert_eq!(next["nextSync"], "2024-02-01T10:00:00.000400Z|PB,PC");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_sent_twice_and_refused_twice_rejects_both_records_not_the_batch() {
    let s = crate::support::mock::server().await;
    kl("POST", "/api/profile-bulk-import-jobs")
        .and(body_json(
            json!({"data": {"type": "profile-bulk-import-job", "attributes": {"profiles": {"data": [
                {"type": "profile", "attributes": {"email": "bad@", "first_name": "One"}},
                {"type": "profile", "attributes": {"email": "ok@x.io"}},
                {"type": "profile", "attributes": {"email": "bad@", "first_name": "Two"}}
            ]}}}}),
        ))
        .once(answer(202, job("JOB2", "queued", 3, 0, 0)), &s)
        .await;
    kl("GET", "/api/profile-bulk-import-jobs/JOB2")
        .once(answer(200, job("JOB2", "complete", 3, 1, 2)), &s)
        .await;
    let refused = |id: &str, name: &str| {
        json!({"type": "import-error", "id": id, "attributes": {"code": "invalid", "title": "Invalid input",
            "detail": "Invalid email address", "source": {"pointer": "/data/attributes/email"},
            "original_payload": {"type": "profile", "attributes": {"email": "bad@", "first_name": name}}}})
    };
    kl("GET", "/api/profile-bulk-import-jobs/JOB2/import-errors")
        .once(answer(
            200,
            json!({"data": [refused("e1", "One"), refused("e2", "Two")],
                "links": {"self": "https://a.klaviyo.com/api/profile-bulk-import-jobs/JOB2/import-errors", "next": null}}),
        ), &s)
        .await;
    let f = folder(&s.uri());
    f.write(
        "in.jsonl",
        "{\"email\":\"bad@\",\"first_name\":\"One\"}\n{\"email\":\"ok@x.io\"}\n{\"email\":\"bad@\",\"first_name\":\"Two\"}\n",
    );
    let run = f.run_line("import --from jsonl:in.jsonl --to . --rejects rejects.jsonl");
    no_canary(&run);
    assert_eq!(run.code, 3, "{}", run.render());
    assert_eq!(run.json()["written"], 1, "{}", run.render());
    assert_eq!(run.json()["rejected"]["total"], 2, "{}", run.render());
    assert_eq!(f.read("rejects.jsonl").lines().count(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_patch_with_null_properties_is_refused_before_sending() {
    let s = crate::support::mock::server().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&s)
        .await;
    let f = folder(&s.uri());
    let run = f.run(&[
        "patch",
        "--id",
        "01GDDKASAP8TKDDA2GRZDSVP4H",
        "--value",
        r#"{"first_name": "Ada", "properties": null}"#,
    ]);
    no_canary(&run);
    assert_eq!(run.code, 2, "{}", run.render());
    assert!(
        run.stderr
            .contains("properties: null would remove every custom property"),
        "{}",
        run.render()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_null_failed_count_still_reads_the_import_errors() {
    // `failed_count` is nullable in Klaviyo's schema: null is not "none failed".
    let s = crate::support::mock::server().await;
    kl("POST", "/api/profile-bulk-import-jobs")
        .once(answer(202, job("JOB3", "queued", 2, 0, 0)), &s)
        .await;
    let mut done = job("JOB3", "complete", 2, 1, 0);
    done["data"]["attributes"]["failed_count"] = Value::Null;
    kl("GET", "/api/profile-bulk-import-jobs/JOB3")
        .once(answer(200, done), &s)
        .await;
    kl("GET", "/api/profile-bulk-import-jobs/JOB3/import-errors")
        .once(
            answer(
                200,
                json!({"data": [{"type": "import-error", "id": "e1", "attributes": {
            "code": "invalid", "title": "Invalid input", "detail": "Invalid email address",
            "source": {"pointer": "/data/attributes/email"},
            "original_payload": {"type": "profile", "attributes": {"email": "bad@"}}}}],
            "links": {"self": "x", "next": null}}),
            ),
            &s,
        )
        .await;
    let f = folder(&s.uri());
    f.write(
        "in.jsonl",
        "{\"email\":\"bad@\"}\n{\"email\":\"ok@x.io\"}\n",
    );
    let run = f.run_line("import --from jsonl:in.jsonl --to . --rejects rejects.jsonl");
    no_canary(&run);
    assert_eq!(run.code, 3, "{}", run.render());
    assert_eq!(run.json()["written"], 1, "{}", run.render());
    let reject: Value = serde_json::from_str(f.read("rejects.jsonl").trim()).unwrap();
    assert_eq!(reject["record"]["email"], "bad@");
}

#[tokio::test(flavor = "multi_thread")]
async fn import_errors_are_read_100_a_page_to_the_last_page() {
    // page[size] is 1–100, default 20 (get_errors_for_bulk_import_profiles_job).
    let s = crate::support::mock::server().await;
    kl("POST", "/api/profile-bulk-import-jobs")
        .once(answer(202, job("JOB4", "queued", 3, 0, 0)), &s)
        .await;
    kl("GET", "/api/profile-bulk-import-jobs/JOB4")
        .once(answer(200, job("JOB4", "complete", 3, 1, 2)), &s)
        .await;
    let refused = |email: &str| {
        json!({"type": "import-error", "id": format!("e-{email}"), "attributes": {"code": "invalid",
            "title": "Invalid input", "detail": "Invalid email address", "source": {"pointer": "/data"},
            "original_payload": {"type": "profile", "attributes": {"email": email}}}})
    };
    kl("GET", "/api/profile-bulk-import-jobs/JOB4/import-errors")
        .and(query_param("page[size]", "100"))
        .and(query_param_is_missing("page[cursor]"))
        .once(answer(200, json!({"data": [refused("bad1@")], "links": {"self": "x",
            "next": format!("{}/api/profile-bulk-import-jobs/JOB4/import-errors?page%5Bcursor%5D=p2", s.uri())}})), &s)
        .await;
    kl("GET", "/api/profile-bulk-import-jobs/JOB4/import-errors")
        .and(query_param("page[cursor]", "p2"))
        .and(query_param("page[size]", "100"))
        .once(
            answer(
                200,
                json!({"data": [refused("bad2@")], "links": {"self": "x", "next": null}}),
            ),
            &s,
        )
        .await;
    let f = folder(&s.uri());
    f.write(
        "in.jsonl",
        "{\"email\":\"bad1@\"}\n{\"email\":\"ok@x.io\"}\n{\"email\":\"bad2@\"}\n",
    );
    let run = f.run_line("import --from jsonl:in.jsonl --to . --rejects rejects.jsonl");
    no_canary(&run);
    assert_eq!(run.code, 3, "{}", run.render());
    assert_eq!(run.json()["written"], 1, "{}", run.render());
    assert_eq!(run.json()["rejected"]["total"], 2, "{}", run.render());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_list_on_a_later_page_of_the_lookup_is_used_not_created_again() {
    // GET /api/lists answers at most 10 lists a page (get_lists).
    let s = crate::support::mock::server().await;
    kl("POST", "/api/profile-import")
        .once(
            answer(
                201,
                json!({"data": profile("PA", "a@x.io", "2024-01-01T00:00:00+00:00")}),
            ),
            &s,
        )
        .await;
    kl("GET", "/api/lists")
        .and(query_param("filter", "equals(name,\"VIP\")"))
        .and(query_param_is_missing("page[cursor]"))
        .once(answer(200, json!({"data": [{"type": "list", "id": "LOWER1", "attributes": {"name": "vip"}}],
            "links": {"self": "x", "next": format!("{}/api/lists?filter=equals%28name%2C%22VIP%22%29&page%5Bcursor%5D=l2", s.uri())}})), &s)
        .await;
    kl("GET", "/api/lists")
        .and(query_param("page[cursor]", "l2"))
        .once(
            answer(
                200,
                json!({"data": [{"type": "list", "id": "VIPL02", "attributes": {"name": "VIP"}}],
            "links": {"self": "x", "next": null}}),
            ),
            &s,
        )
        .await;
    kl("POST", "/api/lists")
        .respond_with(answer(
            201,
            json!({"data": {"type": "list", "id": "DUP", "attributes": {"name": "VIP"}}}),
        ))
        .expect(0)
        .mount(&s)
        .await;
    kl("POST", "/api/lists/VIPL02/relationships/profiles")
        .and(body_json(
            json!({"data": [{"type": "profile", "id": "PA"}]}),
        ))
        .once(ResponseTemplate::new(204), &s)
        .await;
    let f = Folder::new();
    f.write("kl/account.json", &account(&s.uri()));
    f.write(
        "p.jsonl",
        "{\"id\": \"a\", \"properties\": {\"email\": \"a@x.io\"}, \"groups\": [\"VIP\"]}\n",
    );
    let run = f.run(&["export", "--to", "kl", "--input", "p.jsonl"]);
    no_canary(&run);
    assert_eq!(run.ok_json()["groupsAdded"], 1, "{}", run.render());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_400_about_the_key_stops_the_run_instead_of_rejecting_the_record() {
    // "A 400 error indicates an invalid or missing API key" (Klaviyo's
    // authentication guide): only a JSON:API refusal rejects the record.
    let s = crate::support::mock::server().await;
    kl("POST", "/api/profile-import")
        .and(body_json(
            json!({"data": {"type": "profile", "attributes": {"email": "a@x.io"}}}),
        ))
        .once(
            error(
                400,
                "authentication_failed",
                "Incorrect authentication credentials.",
                "Missing or invalid private key.",
            ),
            &s,
        )
        .await;
    kl("POST", "/api/profile-import")
        .and(body_json(json!({"data": {"type": "profile", "attributes": {"email": "b@x.io"}}})))
        .once(
            ResponseTemplate::new(400)
                .insert_header("Content-Type", "text/html")
                .set_body_string("<html><head><title>400 Bad Request</title></head><body>cloudflare</body></html>"), &s)
        .await;
    for email in ["a@x.io", "b@x.io"] {
        let f = folder(&s.uri());
        f.write("in.jsonl", &format!("{{\"email\":\"{email}\"}}\n"));
        let run = f.run_line("import --from jsonl:in.jsonl --to . --rejects rejects.jsonl");
        no_canary(&run);
        // The batch failed and the import stopped: nothing is counted as
        // the record's fault.
        assert_eq!(run.code, 1, "{}", run.render());
        let summary = run.json();
        assert_eq!(summary["failed"], 1, "{}", run.render());
        assert_eq!(summary["rejected"]["total"], 0, "{}", run.render());
    }
}

/// Where ferry knowingly differs from Klaviyo's OpenAPI description
/// (docs/connectors/klaviyo.md, "Checked against the vendor's API description").
const SPEC_DEVIATIONS: &[&str] = &[];

#[tokio::test(flavor = "multi_thread")]
async fn every_read_satisfies_klaviyos_openapi_description() {
    use crate::support::openapi::{assert_conform, received_by};
    let s = crate::support::mock::server().await;
    let ada = "01GDDKASAP8TKDDA2GRZDSVP4H";
    let page = || {
        answer(
            200,
            collection(
                vec![profile(ada, "ada@example.com", "2024-01-01T00:00:00+00:00")],
                None,
            ),
        )
    };
    // check, get by email, import's listing and getupdates list profiles.
    kl("GET", "/api/profiles")
        .respond_with(page())
        .expect(4)
        .mount(&s)
        .await;
    kl("GET", &format!("/api/profiles/{ada}"))
        .respond_with(answer(
            200,
            json!({"data": profile(ada, "ada@example.com", "2024-01-01T00:00:00+00:00")}),
        ))
        .expect(2)
        .mount(&s)
        .await;
    // A bulk import with one refused profile: the job is polled, then its errors read.
    kl("POST", "/api/profile-bulk-import-jobs")
        .once(answer(202, job("JOB1", "queued", 2, 0, 0)), &s)
        .await;
    kl("GET", "/api/profile-bulk-import-jobs/JOB1")
        .once(answer(200, job("JOB1", "complete", 2, 2, 1)), &s)
        .await;
    kl("GET", "/api/profile-bulk-import-jobs/JOB1/import-errors")
        .once(answer(200, json!({"data": [{"type": "import-error", "id": "e4eebb08-b055-4a6f-bb13-c8cb69c9eb94",
            "attributes": {"code": "invalid", "title": "Invalid input", "detail": "Invalid email address",
                "source": {"pointer": "/data/attributes/email"},
                "original_payload": {"type": "profile", "attributes": {"email": "not-an-email"}}}}],
            "links": {"self": "x", "next": null}})), &s)
        .await;
    // An export of one profile into a list that does not exist yet.
    kl("POST", "/api/profile-import")
        .once(
            answer(
                201,
                json!({"data": profile(ada, "ada@example.com", "2024-01-01T00:00:00+00:00")}),
            ),
            &s,
        )
        .await;
    kl("GET", "/api/lists")
        .once(
            answer(
                200,
                json!({"data": [], "links": {"self": "x", "next": null}}),
            ),
            &s,
        )
        .await;
    kl("POST", "/api/lists")
        .once(
            answer(
                201,
                json!({"data": {"type": "list", "id": "VIPL01", "attributes": {"name": "VIP"}}}),
            ),
            &s,
        )
        .await;
    kl("POST", "/api/lists/VIPL01/relationships/profiles")
        .once(ResponseTemplate::new(204), &s)
        .await;
    let f = folder(&s.uri());
    f.write("kl/account.json", &account(&s.uri()));
    f.write(
        "in.jsonl",
        "{\"email\":\"a@x.io\"}\n{\"email\":\"not-an-email\"}\n",
    );
    f.write(
        "profiles.jsonl",
        "{\"id\": \"a\", \"properties\": {\"email\": \"ada@example.com\"}, \"groups\": [\"VIP\"]}\n",
    );
    for (args, code) in [
        (&["check"][..], 0),
        (&["get", "--id", ada], 0),
        (&["get", "--id", "ada@example.com"], 0),
        (&["import", "--from", ".", "--to", "jsonl:out.jsonl"], 0),
        (&["getupdates"], 0),
        (&["import", "--from", "jsonl:in.jsonl", "--to", "."], 3),
        (&["export", "--to", "kl", "--input", "profiles.jsonl"], 0),
    ] {
        let run = f.run(args);
        no_canary(&run);
        assert_eq!(run.code, code, "{args:?}: {}", run.render());
    }
    assert_conform("klaviyo", &received_by(&s).await, SPEC_DEVIATIONS);
}

#[test]
fn every_previewed_request_satisfies_klaviyos_openapi_description() {
    use crate::support::openapi::{assert_conform, previews};
    let f = folder("https://a.klaviyo.com");
    f.write("kl/account.json", &account("https://a.klaviyo.com"));
    f.write(
        "in.jsonl",
        "{\"email\":\"a@x.io\",\"first_name\":\"Ada\",\"plan\":\"pro\"}\n",
    );
    f.write(
        "profiles.jsonl",
        "{\"id\": \"a\", \"properties\": {\"email\": \"a@x.io\", \"first_name\": \"Ada\", \"title\": null}, \"groups\": [\"VIP\"]}\n",
    );
    let requests = previews(
        &f,
        &[
            &[
                "insert",
                "--dry-run",
                "--value",
                r#"{"email": "ada@example.com", "first_name": "Ada", "plan": "pro"}"#,
            ],
            &[
                "patch",
                "--dry-run",
                "--id",
                "ada@example.com",
                "--value",
                r#"{"title": null, "plan": null}"#,
            ],
            &[
                "patch",
                "--dry-run",
                "--id",
                "01HX",
                "--value",
                r#"{"first_name": "Ada"}"#,
            ],
            &["delete", "--dry-run", "--id", "external_id:crm-7"],
            &["delete", "--dry-run", "--id", "01HX"],
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
                "kl",
                "--input",
                "profiles.jsonl",
                "--dry-run",
            ],
        ],
        &[KEY],
    );
    assert_conform("klaviyo", &requests, SPEC_DEVIATIONS);
}
