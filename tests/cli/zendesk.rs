//! The `zendesk` connector through the real binary against strict wiremock
//! servers that answer with the documented shapes
//! (docs/connectors/zendesk.md) and fail when an expected request is not
//! made or an unexpected one is: every action with its exact method, path,
//! headers and body (users by id, `external_id:` or email), the cursor
//! listing paged to `meta.has_more: false` and a repeated cursor stopped,
//! getupdates through the incremental export (deletes, `--limit` inside a
//! page), a 429 waited out per `Retry-After` on a virtual clock,
//! `create_or_update_many` jobs polled to one result per user (also
//! recorded and replayed without sleeping), an export that creates,
//! updates, clears, moves tags and deletes, and the scaffold `ferry init`
//! writes. The canary token (and the Basic credentials made of it) must
//! never be printed.

use base64::Engine as _;
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

pub const TOKEN: &str = "CANARY0zd0token0f00d";
const AGENT: &str = "agent@acme.test";

/// The Basic credentials of the canary token, as secret as the token.
pub fn basic() -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{AGENT}/token:{TOKEN}"))
}

fn secrets() -> Vendor<'static> {
    let basic: &'static str = Box::leak(basic().into_boxed_str());
    Vendor {
        folder: ".",
        secrets: Box::leak(vec![TOKEN, basic].into_boxed_slice()),
    }
}

/// The account of a test: fast limits, quick retries and polls.
fn account(base: &str, extra: Value) -> String {
    let mut a = json!({
        "connector": "zendesk",
        "subdomain": "acme",
        "username": AGENT,
        "token": TOKEN,
        "baseUrl": base,
        "rateLimit": {"rps": 1000, "burst": 1000, "maxInFlight": 8},
        "retry": {"maxAttempts": 2, "baseDelayMs": 1},
        "pollIntervalMs": 1,
        "maxPolls": 5
    });
    if let (Some(a), Value::Object(extra)) = (a.as_object_mut(), extra) {
        a.extend(extra);
    }
    a.to_string()
}

pub fn folder(base: &str) -> Folder {
    let f = Folder::new();
    f.write("account.json", &account(base, json!({})));
    f
}

/// A request to Zendesk with the Basic credentials.
fn zd(verb: &str, p: &str) -> wiremock::MockBuilder {
    let m = Mock::given(method(verb))
        .and(path(p))
        .and(header(
            "Authorization",
            format!("Basic {}", basic()).as_str(),
        ))
        .and(header("Accept", "application/json"));
    if matches!(verb, "POST" | "PUT") {
        m.and(header("Content-Type", "application/json"))
    } else {
        m
    }
}

/// A user as the API answers it.
fn user(id: u64, name: &str, email: &str, external_id: Option<&str>) -> Value {
    json!({
        "id": id, "url": format!("https://acme.zendesk.com/api/v2/users/{id}.json"),
        "name": name, "email": email, "external_id": external_id, "alias": "",
        "active": true, "role": "end-user", "verified": true, "tags": [],
        "user_fields": {"plan": null}, "created_at": "2024-01-01T00:00:00Z",
        "updated_at": "2024-01-02T00:00:00Z", "time_zone": "London", "phone": null
    })
}

fn deleted(id: u64) -> Value {
    let mut u = user(id, "Gone", "gone@x.com", None);
    u["active"] = json!(false);
    u
}

/// An error answer in Zendesk's shape.
fn error(status: u16, body: Value) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(body)
}

fn no_canary(run: &Run) {
    run.hides(&[TOKEN, &basic()], "the API token");
}

#[test]
fn connectors_zendesk_documents_options_and_fields() {
    let f = Folder::new();
    let run = f.run(&["connectors", "zendesk"]);
    assert_eq!(run.code, 0, "{}", run.render());
    snap!("zendesk_connector", run);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_action_sends_the_documented_request() {
    let s = crate::support::mock::server().await;
    zd("GET", "/users/me")
        .once(ok(json!({"user": user(7, "Agent", AGENT, None)})), &s)
        .await;
    zd("GET", "/users/35436")
        .once(
            ok(json!({"user": user(35436, "Ada", "ada@x.com", Some("ada-1"))})),
            &s,
        )
        .await;
    // By external id: the search, which answers whole users; a deleted
    // user with the same id does not count.
    zd("GET", "/users/search")
        .and(query_param("external_id", "ada-1"))
        .respond_with(ok(
            json!({"users": [deleted(1), user(35436, "Ada", "ada@x.com", Some("ADA-1"))],
            "next_page": null, "previous_page": null, "count": 2}),
        ))
        .expect(3)
        .mount(&s)
        .await;
    // By email: the search syntax, filtered to the exact address.
    zd("GET", "/users/search")
        .and(query_param("query", "ada@x.com"))
        .once(
            ok(json!({"users": [user(9, "Other", "not-ada@x.com", None),
                user(35436, "Ada", "Ada@X.com", Some("ada-1"))], "count": 2})),
            &s,
        )
        .await;
    zd("POST", "/users")
        .and(body_json(
            json!({"user": {"name": "Ada", "email": "ada@x.com",
            "external_id": "ada-1", "user_fields": {"plan": "pro"}}}),
        ))
        .once(
            ResponseTemplate::new(201)
                .set_body_json(json!({"user": user(35436, "Ada", "ada@x.com", Some("ada-1"))})),
            &s,
        )
        .await;
    zd("PUT", "/users/35436")
        .and(body_json(
            json!({"user": {"alias": null, "notes": "VIP", "user_fields": {"plan": null}}}),
        ))
        .respond_with(ok(
            json!({"user": user(35436, "Ada", "ada@x.com", Some("ada-1"))}),
        ))
        .expect(2)
        .mount(&s)
        .await;
    zd("DELETE", "/users/35436")
        .once(ok(json!({"user": deleted(35436)})), &s)
        .await;
    let f = folder(&s.uri());
    let patch = r#"{"alias": null, "notes": "VIP", "plan": null, "id": 35436, "updated_at": "x"}"#;
    let runs = [
        f.run(&["check"]),
        f.run(&["get", "--id", "35436"]),
        f.run(&["get", "--id", "external_id:ada-1"]),
        f.run(&["get", "--id", "ada@x.com"]),
        f.run(&[
            "insert",
            "--value",
            r#"{"name": "Ada", "email": "ada@x.com", "external_id": "ada-1", "plan": "pro"}"#,
        ]),
        f.run(&["patch", "--id", "35436", "--value", patch]),
        f.run(&["patch", "--id", "external_id:ada-1", "--value", patch]),
        f.run(&["delete", "--id", "external_id:ada-1"]),
    ];
    for run in &runs {
        no_canary(run);
        assert_eq!(run.code, 0, "{}", run.render());
    }
    assert_eq!(runs[0].json()["email"], AGENT);
    for run in &runs[1..4] {
        assert_eq!(run.json()["id"], "35436", "{}", run.render());
    }
    // insert prints the key records are matched by, and the user.
    assert_eq!(runs[4].json()["id"], "ada-1");
    assert_eq!(runs[4].json()["record"]["id"], "35436");
}

#[tokio::test(flavor = "multi_thread")]
async fn delete_also_purges_the_user_when_the_account_says_so() {
    let s = crate::support::mock::server().await;
    zd("DELETE", "/users/12")
        .once(ok(json!({"user": deleted(12)})), &s)
        .await;
    zd("DELETE", "/deleted_users/12")
        .once(
            ok(json!({"deleted_user": {"id": 12, "name": "Permanently Deleted User"}})),
            &s,
        )
        .await;
    let f = Folder::new();
    f.write(
        "account.json",
        &account(&s.uri(), json!({"permanentDelete": true})),
    );
    let dry = f.run(&["delete", "--id", "12", "--dry-run"]);
    assert!(dry.stdout.contains("/deleted_users/12"), "{}", dry.render());
    let run = f.run(&["delete", "--id", "12"]);
    no_canary(&run);
    assert_eq!(run.code, 0, "{}", run.render());
}

/// Zendesk's errors: `error`, `description` and `details`, and a hint for
/// refused credentials; the token itself never shows.
#[tokio::test(flavor = "multi_thread")]
async fn errors_show_zendesks_error_description_and_details() {
    let s = crate::support::mock::server().await;
    zd("POST", "/users")
        .once(
            error(
                422,
                json!({"error": "RecordInvalid", "description": "Record validation errors",
                    "details": {"email": [{"description": "Email: badmail is not properly formatted"}]}}),
            ),
            &s,
        )
        .await;
    zd("GET", "/users/5")
        .once(
            error(401, json!({"error": "Couldn't authenticate you"})),
            &s,
        )
        .await;
    let f = folder(&s.uri());
    let bad = f.run(&["insert", "--value", r#"{"name": "B", "email": "badmail"}"#]);
    no_canary(&bad);
    snap!("zendesk_invalid_record", bad);
    let key = f.run(&["get", "--id", "5"]);
    no_canary(&key);
    snap!("zendesk_unauthorized", key);
    // An account whose keyField is neither key: said before any request.
    let g = Folder::new();
    g.write(
        "account.json",
        &account(&s.uri(), json!({"keyField": "phone"})),
    );
    let run = g.run(&["get", "--id", "1"]);
    assert_eq!(run.code, 2, "{}", run.render());
    assert!(
        run.stderr.contains("must be external_id or email"),
        "{}",
        run.render()
    );
}

/// A page of the cursor-paged list.
fn page(users: Vec<Value>, after: Option<&str>) -> Value {
    json!({"users": users,
        "meta": {"has_more": after.is_some(), "after_cursor": after, "before_cursor": "b"},
        "links": {"next": after.map(|a| format!("https://acme.zendesk.com/api/v2/users.json?page[size]=2&page[after]={a}")),
            "prev": null}})
}

#[tokio::test(flavor = "multi_thread")]
async fn an_import_pages_by_cursor_to_the_end() {
    let s = crate::support::mock::server().await;
    let emails = ["a@x.com", "b@x.com", "c@x.com", "d@x.com", "e@x.com"];
    let users: Vec<Value> = emails
        .iter()
        .enumerate()
        .map(|(i, e)| user(i as u64 + 1, "U", e, None))
        .collect();
    for (after, chunk, next) in [
        (None, &users[0..2], Some("c2")),
        (Some("c2"), &users[2..4], Some("c4")),
        (Some("c4"), &users[4..5], None),
    ] {
        let m = zd("GET", "/users").and(query_param("page[size]", "2"));
        let m = match after {
            None => m.and(query_param_is_missing("page[after]")),
            Some(a) => m.and(query_param("page[after]", a)),
        };
        m.once(ok(page(chunk.to_vec(), next)), &s).await;
    }
    let f = folder(&s.uri());
    import_reads_to_the_end(&f, &secrets(), "email", &emails);
    an_offset_without_a_checkpoint_is_refused(&f, &secrets(), "zendesk");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cursor_given_back_stops_the_listing() {
    let s = crate::support::mock::server().await;
    zd("GET", "/users")
        .and(query_param_is_missing("page[after]"))
        .once(
            ok(page(vec![user(1, "A", "a@x.com", None)], Some("c2"))),
            &s,
        )
        .await;
    zd("GET", "/users")
        .and(query_param("page[after]", "c2"))
        .once(
            ok(page(vec![user(2, "B", "b@x.com", None)], Some("c2"))),
            &s,
        )
        .await;
    let f = folder(&s.uri());
    an_import_stops_a_loop(
        &f,
        &secrets(),
        "answered the cursor it was given as the next one; stopping instead of looping",
    );
}

/// A page of the incremental export.
fn export_page(users: Vec<Value>, after: &str, end: bool) -> Value {
    json!({"users": users, "after_cursor": after, "before_cursor": null,
        "after_url": format!("https://acme.zendesk.com/api/v2/incremental/users/cursor.json?cursor={after}"),
        "before_url": null, "end_of_stream": end})
}

#[tokio::test(flavor = "multi_thread")]
async fn getupdates_reads_the_incremental_export_to_the_end_of_the_stream() {
    let s = crate::support::mock::server().await;
    zd("GET", "/incremental/users/cursor")
        .and(query_param("start_time", "1704067200"))
        .and(query_param("per_page", "1000"))
        .once(
            ok(export_page(
                vec![user(1, "A", "a@x.com", None), user(2, "B", "b@x.com", None)],
                "K1",
                false,
            )),
            &s,
        )
        .await;
    zd("GET", "/incremental/users/cursor")
        .and(query_param("cursor", "K1"))
        .and(query_param_is_missing("start_time"))
        .respond_with(ok(export_page(
            vec![user(3, "C", "c@x.com", None), deleted(4)],
            "K2",
            true,
        )))
        .expect(3)
        .mount(&s)
        .await;
    let f = folder(&s.uri());
    let all = f.run_line("getupdates --last-sync 2024-01-01T00:00:00Z");
    no_canary(&all);
    let out = all.ok_json();
    let entries: Vec<(String, String)> = out["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["id"].as_str().unwrap().into(),
                e["type"].as_str().unwrap().into(),
            )
        })
        .collect();
    let want = [
        ("1", "upsert"),
        ("2", "upsert"),
        ("3", "upsert"),
        ("4", "delete"),
    ];
    assert_eq!(
        entries,
        want.map(|(i, t)| (i.to_string(), t.to_string())),
        "{}",
        all.render()
    );
    assert_eq!(out["nextSync"], "cursor:K2");
    assert_eq!(out["entries"][3]["value"], Value::Null);
    // --limit inside a page: nextSync holds the ids read from it, and the
    // next call asks for the same page and skips them.
    let first = f.run_line("getupdates --last-sync cursor:K1 --limit 1");
    let out = first.ok_json();
    assert_eq!(out["nextSync"], "cursor:K1|3", "{}", first.render());
    zd("GET", "/incremental/users/cursor")
        .and(query_param("cursor", "K2"))
        .once(ok(export_page(vec![], "K2", true)), &s)
        .await;
    let rest = f.run(&["getupdates", "--last-sync", "cursor:K1|3"]);
    assert_eq!(
        rest.ok_json(),
        json!({"nextSync": "cursor:K2", "entries": [{"id": "4", "type": "delete", "value": null}]}),
        "{}",
        rest.render()
    );
    let up_to_date = f.run(&["getupdates", "--last-sync", "cursor:K2"]);
    assert_eq!(
        up_to_date.ok_json(),
        json!({"nextSync": "cursor:K2", "entries": []})
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_429_waits_for_retry_after_then_succeeds() {
    let s = crate::support::mock::server().await;
    // Observed on a live account: a text/plain body [GR fixture].
    let limited = zd("GET", "/users/1")
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("Retry-After", "27")
                .insert_header("X-Rate-Limit", "700")
                .insert_header("X-Rate-Limit-Remaining", "0")
                .set_body_string(
                    "You have exceeded the rate limit for updating a single unique user.",
                ),
        )
        .up_to_n_times(1)
        .expect(1);
    let answer = zd("GET", "/users/1")
        .respond_with(ok(json!({"user": user(1, "A", "a@x.com", None)})))
        .expect(1);
    let f = folder(&s.uri());
    let (run, waited) = a_429_waited_out(
        &f,
        &s,
        &secrets(),
        vec![limited, answer],
        &["get", "--id", "1"],
        "Authorization: ***",
    )
    .await;
    assert_eq!(run.ok_json()["email"], "a@x.com");
    assert_eq!(waited, [std::time::Duration::from_secs(27)]);
}

/// A job status answer.
fn job(id: &str, status: &str, results: Option<Value>) -> Value {
    json!({"job_status": {"id": id, "job_type": "Bulk Create or Update Users", "status": status,
        "message": null, "progress": if status == "completed" { 3 } else { 1 }, "total": 3,
        "url": format!("https://acme.zendesk.com/api/v2/job_statuses/{id}.json"),
        "results": results}})
}

const JOB: &str = "8b726e606741012ffc2d782bcb7848fe";

/// The bulk import of three users, one refused, and one record without its key.
async fn mount_bulk_import(s: &wiremock::MockServer) {
    zd("POST", "/users/create_or_update_many")
        .and(body_json(json!({"users": [
            {"external_id": "u1", "name": "Ada", "user_fields": {"plan": "pro"}},
            {"external_id": "u2", "name": "Bob", "email": "bad@"},
            {"external_id": "u3", "name": "Cy", "alias": null}
        ]})))
        .once(ok(job(JOB, "queued", None)), s)
        .await;
    zd("GET", &format!("/job_statuses/{JOB}"))
        .respond_with(ok(job(JOB, "working", None)))
        .up_to_n_times(2)
        .expect(2)
        .mount(s)
        .await;
    zd("GET", &format!("/job_statuses/{JOB}"))
        .once(
            ok(job(
                JOB,
                "completed",
                Some(json!([
                    {"id": 101, "status": "Created", "email": null},
                    {"id": 2, "error": "UserUpdateError",
                        "details": "Email: bad@ is not properly formatted", "status": "Failed"},
                    {"id": 103, "action": "update", "status": "Updated", "success": true}
                ])),
            )),
            s,
        )
        .await;
}

const BULK_INPUT: &str = "{\"external_id\": \"u1\", \"name\": \"Ada\", \"plan\": \"pro\"}\n\
    {\"external_id\": \"u2\", \"name\": \"Bob\", \"email\": \"bad@\"}\n\
    {\"name\": \"No key\"}\n\
    {\"external_id\": \"u3\", \"name\": \"Cy\", \"alias\": null}\n";

#[tokio::test(flavor = "multi_thread")]
async fn the_bulk_job_is_polled_to_one_outcome_per_user() {
    let s = crate::support::mock::server().await;
    mount_bulk_import(&s).await;
    let f = folder(&s.uri());
    f.write("in.jsonl", BULK_INPUT);
    let rejects = import_with_refusals(&f, &secrets(), 2, 2);
    let reasons: Vec<(&str, &str)> = rejects
        .iter()
        .map(|r| {
            (
                r["record"]["external_id"].as_str().unwrap_or("-"),
                r["reason"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(
        reasons.contains(&(
            "u2",
            "UserUpdateError: Email: bad@ is not properly formatted"
        )),
        "{reasons:?}"
    );
    assert!(
        reasons.contains(&("-", "missing external_id")),
        "{reasons:?}"
    );
}

/// The same job recorded on a virtual clock, then replayed offline with a
/// poll interval that would take minutes if the replay slept.
#[tokio::test(flavor = "multi_thread")]
async fn a_recorded_bulk_job_replays_without_sleeping() {
    let s = crate::support::mock::server().await;
    mount_bulk_import(&s).await;
    let f = Folder::new();
    f.write(
        "account.json",
        &account(&s.uri(), json!({"pollIntervalMs": 60000, "maxPolls": 5})),
    );
    f.write("in.jsonl", BULK_INPUT);
    let (recorded, waits) = f.run_on_virtual_clock(&[
        "import",
        "--from",
        "jsonl:in.jsonl",
        "--to",
        ".",
        "--rejects",
        "r1.jsonl",
        "--record",
    ]);
    no_canary(&recorded);
    assert_eq!(recorded.code, 3, "{}", recorded.render());
    // Three polls, waiting 60 s, then 10 s (the cap) twice.
    let polls: Vec<u64> = waits.of("retry").iter().map(|w| w.as_secs()).collect();
    assert_eq!(polls, [60, 10, 10], "{waits:?}");
    s.verify().await;
    drop(s);
    let cassette = f.read("cassettes/import.json");
    assert!(!cassette.contains(TOKEN) && !cassette.contains(&basic()));
    let started = std::time::Instant::now();
    let replayed = f.run(&[
        "import",
        "--from",
        "jsonl:in.jsonl",
        "--to",
        ".",
        "--rejects",
        "r2.jsonl",
        "--replay",
        "--state",
        "replay.state",
    ]);
    no_canary(&replayed);
    assert_eq!(replayed.code, 3, "{}", replayed.render());
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "the replay slept: {:?}",
        started.elapsed()
    );
    assert_eq!(f.read("r1.jsonl"), f.read("r2.jsonl"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_that_never_finishes_fails_its_batch_after_the_last_poll() {
    let s = crate::support::mock::server().await;
    zd("POST", "/users/create_or_update_many")
        .once(ok(job(JOB, "queued", None)), &s)
        .await;
    zd("GET", &format!("/job_statuses/{JOB}"))
        .respond_with(ok(job(JOB, "working", None)))
        .expect(5)
        .mount(&s)
        .await;
    let f = folder(&s.uri());
    f.write(
        "in.jsonl",
        "{\"external_id\": \"a\", \"name\": \"A\"}\n{\"external_id\": \"b\", \"name\": \"B\"}\n",
    );
    let run = f.run(&["import", "--from", "jsonl:in.jsonl", "--to", "."]);
    no_canary(&run);
    assert_eq!(run.code, 1, "{}", run.render());
    assert!(
        run.stderr.contains(&format!(
            "Zendesk job {JOB} did not finish after 5 polls (status working, 1 of 3 done)"
        )),
        "{}",
        run.render()
    );
}

#[test]
fn dry_runs_preview_every_write() {
    let f = folder("http://127.0.0.1:9");
    dry_run_previews(
        &f,
        &secrets(),
        &Previews {
            insert: r#"{"name": "Ada", "email": "ada@x.com", "plan": "pro"}"#,
            patch: ("external_id:ada-1", r#"{"name": "Ada L.", "plan": null}"#),
            delete: Some("35436"),
            import: "{\"external_id\": \"a\", \"name\": \"A\"}\n{\"external_id\": \"b\", \"name\": \"B\"}\n{\"name\": \"no key\"}\n",
        },
        |action, run| snap!(format!("zendesk_dry_run_{action}"), run),
    );
}

const FIRST: &str = r#"{"id": "p1", "properties": {"external_id": "p1", "name": "Ada", "alias": "A", "plan": "pro"}, "groups": ["VIP"]}
{"id": "p2", "properties": {"external_id": "p2", "name": "Bob"}}
"#;

const SECOND: &str = r#"{"id": "p1", "properties": {"external_id": "p1", "name": "Ada L."}, "groups": ["Gold Plan"]}
{"id": "p2", "properties": {"external_id": "p2", "name": "Bob"}, "toDelete": true}
{"id": "p4", "properties": {"external_id": "p4", "name": "Dee"}}
"#;

#[tokio::test(flavor = "multi_thread")]
async fn export_creates_updates_clears_tags_and_deletes() {
    let s = crate::support::mock::server().await;
    let f = folder(&s.uri());
    let tags = |verb: &str, id: &str, tag: &str| {
        zd(verb, &format!("/users/{id}/tags"))
            .and(body_json(json!({"tags": [tag]})))
            .respond_with(ok(json!({"tags": [tag]})))
            .expect(1)
    };
    let first = vec![
        zd("POST", "/users/create_or_update_many")
            .and(body_json(json!({"users": [
                {"external_id": "p1", "name": "Ada", "alias": "A", "user_fields": {"plan": "pro"}},
                {"external_id": "p2", "name": "Bob"}]})))
            .respond_with(ok(job(JOB, "queued", None)))
            .expect(1),
        zd("GET", &format!("/job_statuses/{JOB}"))
            .respond_with(ok(job(
                JOB,
                "completed",
                Some(json!([{"id": 501, "status": "Created"}, {"id": 502, "status": "Created"}])),
            )))
            .expect(1),
        tags("PUT", "501", "vip"),
    ];
    let second = vec![
        zd("DELETE", "/users/502")
            .respond_with(ok(json!({"user": deleted(502)})))
            .expect(1),
        // One create: a single call, no job.
        zd("POST", "/users/create_or_update")
            .and(body_json(
                json!({"user": {"external_id": "p4", "name": "Dee"}}),
            ))
            .respond_with(
                ResponseTemplate::new(201)
                    .set_body_json(json!({"user": user(504, "Dee", "dee@x.com", Some("p4"))})),
            )
            .expect(1),
        zd("PUT", "/users/501")
            .and(body_json(json!({"user": {"name": "Ada L.", "alias": null,
                "user_fields": {"plan": null}}})))
            .respond_with(ok(
                json!({"user": user(501, "Ada L.", "a@x.com", Some("p1"))}),
            ))
            .expect(1),
        tags("PUT", "501", "gold_plan"),
        tags("DELETE", "501", "vip"),
    ];
    let vendor = secrets();
    export_scenario(
        &f,
        &s,
        &vendor,
        vec![
            Step::export("first.jsonl", FIRST, first).summary(counted(2, 0, 0, 1, 0)),
            Step::export("second.jsonl", SECOND, vec![])
                .flags(&["--dry-run"])
                .check(|dry| {
                    assert_eq!(dry.code, 0, "{}", dry.render());
                    let requests = serde_json::to_string_pretty(&dry.json()["requests"]).unwrap();
                    insta::assert_snapshot!(
                        "zendesk_export_dry_run",
                        crate::support::filter(&requests, f.path())
                    );
                }),
            Step::export("second.jsonl", SECOND, second).summary(counted(1, 1, 1, 1, 1)),
            Step::export("second.jsonl", SECOND, vec![]).summary(json!({"unchanged": 2})),
        ],
    )
    .await;
}

/// A profile without its key (external_id) is invalid and nothing is sent.
#[tokio::test(flavor = "multi_thread")]
async fn an_export_profile_without_its_key_is_invalid_and_not_sent() {
    let s = crate::support::mock::server().await;
    let f = folder(&s.uri());
    f.write(
        "p.jsonl",
        "{\"id\": \"p1\", \"properties\": {\"name\": \"Nobody\", \"email\": \"n@x.com\"}}\n",
    );
    let run = f.run_line("export --to . --input p.jsonl --errors e.jsonl");
    no_canary(&run);
    assert_eq!(run.code, 3, "{}", run.render());
    assert_eq!(run.json()["invalid"], 1, "{}", run.render());
    assert!(
        f.read("e.jsonl").contains("external_id"),
        "{}",
        f.read("e.jsonl")
    );
}

/// `ferry init --connector zendesk` writes a folder whose account opens and
/// whose in.json drives the actions against the API (here a mock).
#[tokio::test(flavor = "multi_thread")]
async fn init_scaffolds_a_folder_that_runs() {
    let s = crate::support::mock::server().await;
    let f = Folder::new();
    let init = f.run(&[
        "init",
        "zd",
        "--connector",
        "zendesk",
        "--yes",
        "--set",
        &format!("baseUrl={}", s.uri()),
        "--set",
        &format!("username={AGENT}"),
        "--set",
        &format!("token={TOKEN}"),
    ]);
    assert_eq!(init.code, 0, "{}", init.render());
    no_canary(&init);
    let ada = json!({"user": user(35436, "Ada Lovelace", "ada@example.com", Some("ada-1"))});
    zd("GET", "/users/35436").once(ok(ada.clone()), &s).await;
    zd("POST", "/users")
        .and(body_json(
            json!({"user": {"name": "Ada Lovelace", "email": "ada@example.com",
            "external_id": "ada-1", "alias": "Ada", "phone": "+15555550123", "role": "end-user",
            "notes": "Met at the conference", "time_zone": "London", "tags": ["vip"],
            "user_fields": {"plan": "pro"}}}),
        ))
        .once(ResponseTemplate::new(201).set_body_json(ada.clone()), &s)
        .await;
    zd("PUT", "/users/35436")
        .and(body_json(json!({"user": {"name": "Ada Lovelace"}})))
        .once(ok(ada.clone()), &s)
        .await;
    zd("DELETE", "/users/35436").once(ok(ada), &s).await;
    for action in ["insert", "get", "patch", "delete"] {
        let run = f.run(&["-C", "zd", action]);
        no_canary(&run);
        assert_eq!(run.code, 0, "{action}:\n{}", run.render());
    }
}

/// A job Zendesk reports `failed` fails its batch (nothing says which users
/// were written); a 403 to the bulk call says bulk imports must be enabled.
#[tokio::test(flavor = "multi_thread")]
async fn a_failed_job_or_bulk_imports_not_enabled_stop_the_import() {
    let s = crate::support::mock::server().await;
    zd("POST", "/users/create_or_update_many")
        .and(body_json(json!({"users": [
            {"external_id": "a", "name": "A"}, {"external_id": "b", "name": "B"}]})))
        .once(ok(job(JOB, "queued", None)), &s)
        .await;
    let mut failed = job(JOB, "failed", None);
    failed["job_status"]["message"] = json!("Failed: internal error");
    zd("GET", &format!("/job_statuses/{JOB}"))
        .once(ok(failed), &s)
        .await;
    zd("POST", "/users/create_or_update_many")
        .and(body_json(json!({"users": [
            {"external_id": "c", "name": "C"}, {"external_id": "d", "name": "D"}]})))
        .once(
            error(403, json!({"error": "Forbidden", "description": "You do not have access to this page. Please contact the account owner of this help desk for further help."})),
            &s,
        )
        .await;
    let f = folder(&s.uri());
    f.write(
        "in.jsonl",
        "{\"external_id\": \"a\", \"name\": \"A\"}\n{\"external_id\": \"b\", \"name\": \"B\"}\n",
    );
    let run = f.run(&["import", "--from", "jsonl:in.jsonl", "--to", "."]);
    no_canary(&run);
    assert_eq!(run.code, 1, "{}", run.render());
    assert!(
        run.stderr.contains(&format!(
            "Zendesk job {JOB} failed (2 users): Failed: internal error"
        )),
        "{}",
        run.render()
    );
    f.write(
        "in2.jsonl",
        "{\"external_id\": \"c\", \"name\": \"C\"}\n{\"external_id\": \"d\", \"name\": \"D\"}\n",
    );
    let run = f.run(&[
        "import",
        "--from",
        "jsonl:in2.jsonl",
        "--to",
        ".",
        "--state",
        "s2",
    ]);
    no_canary(&run);
    assert_eq!(run.code, 1, "{}", run.render());
    assert!(
        run.stderr
            .contains("403 Forbidden: Forbidden: You do not have access")
            && run.stderr.contains("bulk user imports are not enabled"),
        "{}",
        run.render()
    );
}

/// A cursor that comes back for another page (c2, c3, c2) stops the import
/// instead of reading the same users forever.
#[tokio::test(flavor = "multi_thread")]
async fn a_cursor_met_again_elsewhere_stops_the_listing() {
    let s = crate::support::mock::server().await;
    for (after, id, next) in [
        (None, 1, "c2"),
        (Some("c2"), 2, "c3"),
        (Some("c3"), 3, "c2"),
    ] {
        let m = zd("GET", "/users").and(query_param("page[size]", "1"));
        let m = match after {
            None => m.and(query_param_is_missing("page[after]")),
            Some(a) => m.and(query_param("page[after]", a)),
        };
        m.once(
            ok(page(vec![user(id, "U", "u@x.com", None)], Some(next))),
            &s,
        )
        .await;
    }
    let f = folder(&s.uri());
    an_import_stops_a_loop(
        &f,
        &secrets(),
        "answered a cursor it had already given for another page; stopping instead of looping",
    );
}

/// With `"keyField": "email"`, records and profiles are matched by email:
/// a batch of one is a single `create_or_update` (no job), a record without
/// an email is rejected, and getupdates without a token starts at time 0.
#[tokio::test(flavor = "multi_thread")]
async fn email_as_the_key_and_an_initial_getupdates() {
    let s = crate::support::mock::server().await;
    zd("POST", "/users/create_or_update")
        .and(body_json(
            json!({"user": {"email": "ada@x.com", "name": "Ada"}}),
        ))
        .once(
            ok(json!({"user": user(35436, "Ada", "ada@x.com", None)})),
            &s,
        )
        .await;
    zd("GET", "/incremental/users/cursor")
        .and(query_param("start_time", "0"))
        .once(
            ok(export_page(
                vec![user(35436, "Ada", "ada@x.com", None)],
                "K9",
                true,
            )),
            &s,
        )
        .await;
    let f = Folder::new();
    f.write(
        "account.json",
        &account(&s.uri(), json!({"keyField": "email"})),
    );
    f.write(
        "in.jsonl",
        "{\"email\": \"ada@x.com\", \"name\": \"Ada\"}\n{\"name\": \"No email\"}\n",
    );
    let rejects = import_with_refusals(&f, &secrets(), 1, 1);
    assert_eq!(rejects[0]["reason"], "missing email", "{rejects:?}");
    let run = f.run(&["getupdates"]);
    no_canary(&run);
    let out = run.ok_json();
    assert_eq!(out["nextSync"], "cursor:K9");
    assert_eq!(out["entries"][0]["id"], "35436");
}

/// The plan sets the default rate limits; a plan Zendesk does not have is
/// refused before any request, naming the plans.
#[test]
fn an_unknown_plan_is_refused_naming_the_plans() {
    let f = Folder::new();
    f.write(
        "account.json",
        &account("http://127.0.0.1:9", json!({"plan": "gold"})),
    );
    let run = f.run(&["check"]);
    assert_eq!(run.code, 2, "{}", run.render());
    assert!(
        run.stderr.contains("option \"plan\"")
            && run
                .stderr
                .contains("team, growth, professional, enterprise"),
        "{}",
        run.render()
    );
    run.hides(&[TOKEN, &basic()], "the token");
}

/// What ferry sends that Zendesk's description (Support API 2.0.0, its
/// `oas.yaml` as kept in pbu-projects/z4j, docs/connectors/specs/zendesk.json)
/// does not allow, each on purpose: Add User Tags and Remove User Tags are
/// described without any request body (as are the organization and ticket
/// tag operations, though the ticket ones' own text shows
/// `{"tags": [...]}`), while the Tags reference sends
/// the tags to add or remove as `{"tags": [...]}`, the body ferry sends
/// (docs/connectors/zendesk.md §5, §13): without it Zendesk would not know
/// which tags are meant.
const SPEC_DEVIATIONS: &[&str] = &[
    "PUT /api/v2/users/{user_id}/tags: a body the operation does not take",
    "DELETE /api/v2/users/{user_id}/tags: a body the operation does not take",
];

/// Where a test server serves the API, as Zendesk does (under `/api/v2`).
const API: &str = "/api/v2";

/// A user exactly as the description's example answers one (the incremental
/// export's), to write back: its read-only fields (`restricted_agent`,
/// `role_type`, …) must stay out, and its `photo` out of a create.
const ANSWERED: &str = r#"{"active": true, "alias": "Mr. Johnny", "created_at": "2009-07-20T22:55:29Z",
    "custom_role_id": 9373643, "details": "", "email": "johnny@example.com", "external_id": "sai989sur98w9",
    "id": 35436, "last_login_at": "2011-05-05T10:38:52Z", "locale": "en-US", "locale_id": 1, "moderator": true,
    "name": "Johnny Agent", "notes": "Johnny is a nice guy!", "only_private_comments": false,
    "organization_id": 57542, "phone": "+15551234567", "photo": {"content_type": "image/png",
    "content_url": "https://company.zendesk.com/photos/my_funny_profile_pic.png", "id": 928374,
    "name": "my_funny_profile_pic.png", "size": 166144, "thumbnails": []}, "restricted_agent": true,
    "role": "agent", "role_type": 0, "shared": false, "shared_agent": false, "signature": "Have a nice day, Johnny",
    "suspended": true, "tags": ["enterprise", "other_tag"], "ticket_restriction": "assigned", "time_zone": "Copenhagen",
    "updated_at": "2011-05-05T10:38:52Z", "url": "https://company.zendesk.com/api/v2/users/35436",
    "user_fields": {"user_date": "2012-07-23T00:00:00Z", "user_decimal": 5.1, "user_dropdown": "option_1"},
    "verified": true}"#;

/// Every write a dry run previews (insert, patch by id and by key, delete
/// and a permanent delete, an import's `create_or_update_many` and a single
/// `create_or_update`, an export's creates and tags, and a user as Zendesk
/// answers it inserted, patched and upserted) satisfies the description.
#[test]
fn every_previewed_request_satisfies_zendesks_openapi_description() {
    use crate::support::openapi::{assert_conform, previews};
    let base = "https://acme.zendesk.com/api/v2";
    let f = folder(base);
    let g = Folder::new();
    g.write(
        "account.json",
        &account(base, json!({"permanentDelete": true})),
    );
    f.write(
        "in.jsonl",
        "{\"external_id\": \"a\", \"name\": \"A\", \"plan\": \"pro\"}\n\
         {\"external_id\": 2, \"name\": \"B\", \"alias\": null, \"tags\": [\"vip\"]}\n\
         {\"name\": \"no key\"}\n",
    );
    let answered: Value = serde_json::from_str(ANSWERED).unwrap();
    f.write("one.jsonl", &format!("{answered}\n"));
    f.write("p.jsonl", FIRST);
    let secrets = [TOKEN, &basic()];
    let mut requests = previews(
        &f,
        &[
            &[
                "insert",
                "--dry-run",
                "--value",
                r#"{"name": "Ada", "email": "ada@x.com", "external_id": "ada-1", "role": "end-user",
                    "verified": true, "tags": ["vip"], "time_zone": "London", "plan": "pro"}"#,
            ],
            &[
                "patch",
                "--dry-run",
                "--id",
                "35436",
                "--value",
                r#"{"alias": null, "notes": "VIP", "plan": null, "id": 35436, "updated_at": "x"}"#,
            ],
            &[
                "patch",
                "--dry-run",
                "--id",
                "external_id:ada-1",
                "--value",
                r#"{"name": "Ada L."}"#,
            ],
            &["delete", "--dry-run", "--id", "35436"],
            &[
                "import",
                "--from",
                "jsonl:in.jsonl",
                "--to",
                ".",
                "--dry-run",
            ],
            &[
                "import",
                "--from",
                "jsonl:one.jsonl",
                "--to",
                ".",
                "--dry-run",
            ],
            &["export", "--to", ".", "--input", "p.jsonl", "--dry-run"],
            &["insert", "--dry-run", "--value", ANSWERED],
            &["patch", "--dry-run", "--id", "35436", "--value", ANSWERED],
        ],
        &secrets,
    );
    requests.extend(previews(
        &g,
        &[&["delete", "--dry-run", "--id", "ada@x.com"]],
        &secrets,
    ));
    let ops: Vec<String> = requests
        .iter()
        .map(|r| {
            let url = url::Url::parse(r["url"].as_str().unwrap()).unwrap();
            format!("{} {}", r["method"].as_str().unwrap(), url.path())
        })
        .collect();
    assert_eq!(
        ops,
        [
            "POST /api/v2/users",
            "PUT /api/v2/users/35436",
            "GET /api/v2/users/search",
            "PUT /api/v2/users/%7Bid%20of%20external_id%20ada-1%7D",
            "DELETE /api/v2/users/35436",
            "POST /api/v2/users/create_or_update_many",
            "POST /api/v2/users/create_or_update",
            "POST /api/v2/users/create_or_update_many",
            "PUT /api/v2/users/p1/tags",
            "POST /api/v2/users",
            "PUT /api/v2/users/35436",
            "GET /api/v2/users/search",
            "DELETE /api/v2/users/%7Bid%20of%20email%20ada@x.com%7D",
            "DELETE /api/v2/deleted_users/%7Bid%20of%20email%20ada@x.com%7D",
        ],
        "{requests:#?}"
    );
    assert_conform("zendesk", &requests, SPEC_DEVIATIONS);
}

/// Every read (check, get by id, `external_id:` and email, the import
/// listing, getupdates from a time and from a cursor, `ferry fields`),
/// every write (insert, patch, delete and the permanent one, an import's
/// job and its polls) and every write of two exports (a job, a single
/// upsert, an update with clears, tags added and removed, a delete) as a
/// server under `/api/v2` receives them, and the second export's preview,
/// satisfy the description.
#[tokio::test(flavor = "multi_thread")]
async fn every_sent_request_satisfies_zendesks_openapi_description() {
    use crate::support::openapi::{assert_conform, previewed, received_by};
    let s = crate::support::mock::server().await;
    let at = |p: &str| format!("{API}{p}");
    let ada = || json!({"user": user(35436, "Ada", "ada@x.com", Some("ada-1"))});
    zd("GET", &at("/users/me"))
        .once(ok(json!({"user": user(7, "Agent", AGENT, None)})), &s)
        .await;
    zd("GET", &at("/users/35436")).once(ok(ada()), &s).await;
    zd("GET", &at("/users/search"))
        .respond_with(ok(
            json!({"users": [user(35436, "Ada", "ada@x.com", Some("ada-1"))], "count": 1}),
        ))
        .expect(3)
        .mount(&s)
        .await;
    zd("GET", &at("/users"))
        .once(ok(page(vec![user(1, "A", "a@x.com", None)], None)), &s)
        .await;
    zd("GET", &at("/incremental/users/cursor"))
        .respond_with(ok(export_page(
            vec![user(1, "A", "a@x.com", None), deleted(2)],
            "K2",
            true,
        )))
        .expect(2)
        .mount(&s)
        .await;
    zd("GET", &at("/user_fields"))
        .once(
            ok(json!({"user_fields": [{"id": 7, "key": "plan", "type": "dropdown",
                "title": "Plan", "active": true}], "meta": {"has_more": false, "after_cursor": null}})),
            &s,
        )
        .await;
    zd("POST", &at("/users"))
        .once(ResponseTemplate::new(201).set_body_json(ada()), &s)
        .await;
    zd("PUT", &at("/users/35436")).once(ok(ada()), &s).await;
    zd("DELETE", &at("/users/35436"))
        .once(ok(json!({"user": deleted(35436)})), &s)
        .await;
    zd("DELETE", &at("/deleted_users/35436"))
        .once(
            ok(json!({"deleted_user": {"id": 35436, "name": "Permanently Deleted User"}})),
            &s,
        )
        .await;
    // The import's job and the first export's: two users each.
    zd("POST", &at("/users/create_or_update_many"))
        .respond_with(ok(job(JOB, "queued", None)))
        .expect(2)
        .mount(&s)
        .await;
    zd("GET", &at(&format!("/job_statuses/{JOB}")))
        .respond_with(ok(job(
            JOB,
            "completed",
            Some(json!([{"id": 501, "status": "Created"}, {"id": 502, "status": "Created"}])),
        )))
        .expect(2)
        .mount(&s)
        .await;
    zd("POST", &at("/users/create_or_update"))
        .once(
            ResponseTemplate::new(201)
                .set_body_json(json!({"user": user(504, "Dee", "dee@x.com", Some("p4"))})),
            &s,
        )
        .await;
    zd("PUT", &at("/users/501"))
        .once(
            ok(json!({"user": user(501, "Ada L.", "a@x.com", Some("p1"))})),
            &s,
        )
        .await;
    for (verb, n) in [("PUT", 2), ("DELETE", 1)] {
        zd(verb, &at("/users/501/tags"))
            .respond_with(ok(json!({"tags": ["vip"]})))
            .expect(n)
            .mount(&s)
            .await;
    }
    zd("DELETE", &at("/users/502"))
        .once(ok(json!({"user": deleted(502)})), &s)
        .await;

    let base = format!("{}{API}", s.uri());
    let f = folder(&base);
    let g = Folder::new();
    g.write(
        "account.json",
        &account(&base, json!({"permanentDelete": true})),
    );
    f.write(
        "in.jsonl",
        "{\"external_id\": \"a\", \"name\": \"A\", \"plan\": \"pro\"}\n{\"external_id\": \"b\", \"name\": \"B\"}\n",
    );
    let runs: [&[&str]; 11] = [
        &["check"],
        &["get", "--id", "35436"],
        &["get", "--id", "external_id:ada-1"],
        &["get", "--id", "ada@x.com"],
        &["import", "--from", ".", "--to", "jsonl:out.jsonl"],
        &["getupdates", "--last-sync", "2024-01-01T00:00:00Z"],
        &["getupdates", "--last-sync", "cursor:K1"],
        &["fields"],
        &[
            "insert",
            "--value",
            r#"{"name": "Ada", "email": "ada@x.com", "external_id": "ada-1", "plan": "pro"}"#,
        ],
        &[
            "patch",
            "--id",
            "external_id:ada-1",
            "--value",
            r#"{"alias": null, "notes": "VIP", "plan": null}"#,
        ],
        &["import", "--from", "jsonl:in.jsonl", "--to", "."],
    ];
    for args in runs {
        let run = f.run(args);
        no_canary(&run);
        assert_eq!(run.code, 0, "{args:?}: {}", run.render());
    }
    let purge = g.run(&["delete", "--id", "35436"]);
    no_canary(&purge);
    assert_eq!(purge.code, 0, "{}", purge.render());
    f.write("p.jsonl", FIRST);
    let first = f.run_line("export --to . --input p.jsonl");
    no_canary(&first);
    assert_eq!(first.code, 0, "{}", first.render());
    f.write("p.jsonl", SECOND);
    let preview = f.run_line("export --to . --input p.jsonl --dry-run");
    no_canary(&preview);
    let mut requests = previewed(&preview.ok_json());
    let second = f.run_line("export --to . --input p.jsonl");
    no_canary(&second);
    assert_eq!(second.code, 0, "{}", second.render());
    requests.extend(received_by(&s).await);
    assert_conform("zendesk", &requests, SPEC_DEVIATIONS);
}
