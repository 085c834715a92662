//! The `mailchimp` connector through the real binary against wiremock
//! servers that answer with the documented shapes
//! (docs/connectors/mailchimp.md) and fail when an expected request is not
//! made or an unexpected one is: every action with its exact method, path,
//! headers and body (members addressed by the MD5 of the lowercased
//! email), the offset listing paged to `total_items`, getupdates by
//! `since_last_changed`, a 429 backed off, batch subscribe with per-member
//! errors, an export that creates, updates, clears merge fields, moves tags
//! and deletes, the cap of 10 connections measured on a server of its own,
//! and the scaffold `ferry init` writes. The canary key (and the Basic
//! credentials made of it) must never be printed.

use base64::Engine as _;
use md5::{Digest, Md5};
use serde_json::{json, Value};
use wiremock::matchers::{body_json, header, method, path, query_param, query_param_is_missing};
use wiremock::{Mock, ResponseTemplate};

use crate::snap;
use crate::support::saas::{
    a_429_waited_out, an_import_stops_a_loop, counted, dry_run_previews, export_scenario,
    import_reads_to_the_end, import_with_refusals, Previews, Step, Vendor,
};
use crate::support::{ok, Folder, MountOnce, Run};

pub const KEY: &str = "CANARY0mc0key0f00d-us6";
const LIST: &str = "a1b2c3";

/// The Basic credentials of the canary key, as secret as the key.
pub fn basic() -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("ferry:{KEY}"))
}

/// The connector as the SaaS scenarios see it, with the key and the Basic
/// credentials made of it as its secrets.
fn secrets() -> Vendor<'static> {
    let basic: &'static str = Box::leak(basic().into_boxed_str());
    Vendor {
        folder: ".",
        secrets: Box::leak(vec![KEY, basic].into_boxed_slice()),
    }
}

/// The account of a test: quick retries.
pub fn account(base: &str, extra: Value) -> String {
    let mut a = json!({
        "connector": "mailchimp",
        "apiKey": KEY,
        "listId": LIST,
        "baseUrl": base,
        "retry": {"maxAttempts": 2, "baseDelayMs": 1}
    });
    if let (Some(a), Value::Object(extra)) = (a.as_object_mut(), extra) {
        a.extend(extra);
    }
    a.to_string()
}

fn folder(base: &str) -> Folder {
    let f = Folder::new();
    f.write("account.json", &account(base, json!({})));
    f
}

/// The subscriber hash, computed here independently of the connector.
fn hash(email: &str) -> String {
    Md5::digest(email.to_lowercase().as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn members_path() -> String {
    format!("/lists/{LIST}/members")
}

fn member_path(email: &str) -> String {
    format!("/lists/{LIST}/members/{}", hash(email))
}

/// A request to Mailchimp with the Basic credentials.
fn mc(verb: &str, p: &str) -> wiremock::MockBuilder {
    Mock::given(method(verb))
        .and(path(p))
        .and(header(
            "Authorization",
            format!("Basic {}", basic()).as_str(),
        ))
        .and(header("Accept", "application/json"))
}

/// A member as the API answers it.
fn member(email: &str, status: &str, last_changed: &str) -> Value {
    json!({
        "id": hash(email), "email_address": email, "unique_email_id": "882e9bec19",
        "contact_id": "c-1", "full_name": "", "web_id": 123, "email_type": "html",
        "status": status, "merge_fields": {"FNAME": "", "LNAME": ""}, "interests": {},
        "stats": {"avg_open_rate": 0, "avg_click_rate": 0}, "ip_signup": "",
        "timestamp_signup": "", "ip_opt": "", "timestamp_opt": "2024-01-01T00:00:00+00:00",
        "member_rating": 2, "last_changed": last_changed, "language": "", "vip": false,
        "email_client": "", "location": {"latitude": 0, "longitude": 0}, "source": "API - Generic",
        "tags_count": 0, "tags": [], "list_id": LIST
    })
}

/// A listing answer.
fn listing(members: Vec<Value>, total: u64) -> Value {
    json!({"members": members, "list_id": LIST, "total_items": total, "_links": []})
}

/// The audience's merge fields, read once by every export run: none
/// required here.
fn merge_fields() -> Mock {
    mc("GET", &format!("/lists/{LIST}/merge-fields"))
        .and(query_param("count", "1000"))
        .and(query_param("offset", "0"))
        .respond_with(ok(json!({"merge_fields": [
            {"merge_id": 1, "tag": "FNAME", "name": "First Name", "type": "text", "required": false}],
            "list_id": LIST, "total_items": 1})))
        .expect(1)
}

/// An error answer in Mailchimp's problem-document shape.
fn problem(status: u16, title: &str, detail: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({
        "type": "https://mailchimp.com/developer/marketing/docs/errors/",
        "title": title, "status": status, "detail": detail,
        "instance": "3b4dcb40-0b6b-4820-bfaa-41267b3826ea"
    }))
}

fn no_canary(run: &Run) {
    run.hides(&[KEY, &basic()], "the API key");
}

#[test]
fn connectors_mailchimp_documents_options_and_fields() {
    let f = Folder::new();
    let run = f.run(&["connectors", "mailchimp"]);
    assert_eq!(run.code, 0, "{}", run.render());
    snap!("mailchimp_connector", run);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_action_sends_the_documented_request() {
    let s = crate::support::mock::server().await;
    let ada = "Ada.Lovelace@Example.com";
    mc("GET", &format!("/lists/{LIST}"))
        .and(query_param("fields", "id,name,stats.member_count"))
        .once(
            ok(json!({"id": LIST, "name": "Newsletter", "stats": {"member_count": 2}})),
            &s,
        )
        .await;
    // get by email (hashed, lowercased) and by hash: the same member.
    mc("GET", &member_path(ada))
        .respond_with(ok(member(ada, "subscribed", "2024-01-01T00:00:00+00:00")))
        .expect(2)
        .mount(&s)
        .await;
    mc("PUT", &member_path(ada))
        .and(header("Content-Type", "application/json"))
        .and(body_json(
            json!({"email_address": ada, "status_if_new": "subscribed",
            "merge_fields": {"FNAME": "Ada", "VIP": "true", "LTV": 12}}),
        ))
        .once(
            ok(member(ada, "subscribed", "2024-01-02T00:00:00+00:00")),
            &s,
        )
        .await;
    mc("PATCH", &member_path(ada))
        .and(body_json(
            json!({"language": "en", "merge_fields": {"LNAME": ""}}),
        ))
        .once(
            ok(member(ada, "subscribed", "2024-01-03T00:00:00+00:00")),
            &s,
        )
        .await;
    mc("DELETE", &member_path(ada))
        .once(ResponseTemplate::new(204), &s)
        .await;
    let f = folder(&s.uri());
    let runs = [
        f.run(&["check"]),
        f.run(&["get", "--id", ada]),
        f.run(&["get", "--id", &hash(ada)]),
        f.run(&[
            "insert",
            "--value",
            &json!({"email_address": ada, "FNAME": "Ada", "VIP": true, "LTV": 12}).to_string(),
        ]),
        f.run(&[
            "patch",
            "--id",
            ada,
            "--value",
            r#"{"language": "en", "LNAME": null}"#,
        ]),
        f.run(&["delete", "--id", ada]),
    ];
    for run in &runs {
        no_canary(run);
        assert_eq!(run.code, 0, "{}", run.render());
    }
    let check = runs[0].json();
    assert_eq!(
        (&check["audience"], &check["members"]),
        (&json!("Newsletter"), &json!(2))
    );
    assert_eq!(runs[1].json()["id"], hash(ada));
    assert_eq!(runs[1].json(), runs[2].json());
}

#[tokio::test(flavor = "multi_thread")]
async fn delete_permanently_erases_the_member_when_the_account_says_so() {
    let s = crate::support::mock::server().await;
    mc(
        "POST",
        &format!("{}/actions/delete-permanent", member_path("b@x.com")),
    )
    .once(ResponseTemplate::new(204), &s)
    .await;
    let f = Folder::new();
    f.write(
        "account.json",
        &account(&s.uri(), json!({"permanentDelete": true})),
    );
    let dry = f.run(&["delete", "--id", "B@x.com", "--dry-run"]);
    assert!(
        dry.stdout.contains("actions/delete-permanent"),
        "{}",
        dry.render()
    );
    let run = f.run(&["delete", "--id", "B@x.com"]);
    no_canary(&run);
    assert_eq!(run.code, 0, "{}", run.render());
}

/// Mailchimp's errors: title and detail, field errors, and a hint for a
/// refused key; the key itself never shows.
#[tokio::test(flavor = "multi_thread")]
async fn errors_show_mailchimps_problem_document() {
    let s = crate::support::mock::server().await;
    mc("PUT", &member_path("a@x.com"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
                "type": "https://mailchimp.com/developer/marketing/docs/errors/",
                "title": "Invalid Resource", "status": 400,
                "detail": "Your merge fields were invalid.", "instance": "i-1",
                "errors": [{"field": "LTV", "message": "Please enter a number"}]})))
        .expect(1)
        .mount(&s)
        .await;
    mc("GET", &member_path("b@x.com"))
        .respond_with(problem(
            401,
            "API Key Invalid",
            "Your API key may be invalid, or you've attempted to access the wrong datacenter.",
        ))
        .expect(1)
        .mount(&s)
        .await;
    let f = folder(&s.uri());
    let bad = f.run(&[
        "insert",
        "--value",
        r#"{"email_address": "a@x.com", "LTV": "lots"}"#,
    ]);
    let key = f.run(&["get", "--id", "b@x.com"]);
    for run in [&bad, &key] {
        no_canary(run);
        assert_eq!(run.code, 1, "{}", run.render());
    }
    assert!(
        bad.stderr.contains("Your merge fields were invalid.")
            && bad.stderr.contains("LTV: Please enter a number"),
        "{}",
        bad.render()
    );
    assert!(
        key.stderr.contains("401") && key.stderr.contains("check apiKey"),
        "{}",
        key.render()
    );
    // A key without its data center, and no baseUrl: said before any request.
    let g = Folder::new();
    g.write(
        "account.json",
        &json!({"connector": "mailchimp", "apiKey": "0123456789abcdef", "listId": LIST})
            .to_string(),
    );
    let run = g.run(&["get", "--id", "a@x.com"]);
    assert_eq!(run.code, 2, "{}", run.render());
    assert!(
        run.stderr.contains("no data center suffix"),
        "{}",
        run.render()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_import_pages_by_offset_to_the_total() {
    let s = crate::support::mock::server().await;
    let emails = ["a@x.com", "b@x.com", "c@x.com", "d@x.com", "e@x.com"];
    for (offset, page) in [(0, &emails[0..2]), (2, &emails[2..4]), (4, &emails[4..5])] {
        let members = page
            .iter()
            .map(|e| member(e, "subscribed", "2024-01-01T00:00:00+00:00"))
            .collect();
        mc("GET", &members_path())
            .and(query_param("count", "2"))
            .and(query_param("offset", offset.to_string().as_str()))
            .and(query_param_is_missing("since_last_changed"))
            .once(ok(listing(members, 5)), &s)
            .await;
    }
    // Mailchimp pages by offset, so import asks for the next page while it
    // writes the last one: past the total, an empty page, which ends nothing.
    mc("GET", &members_path())
        .and(query_param("count", "2"))
        .and(query_param("offset", "6"))
        .respond_with(ok(listing(vec![], 5)))
        .expect(0..=1)
        .mount(&s)
        .await;
    let f = folder(&s.uri());
    import_reads_to_the_end(&f, &secrets(), "email_address", &emails);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_empty_page_short_of_the_total_stops_the_listing() {
    let s = crate::support::mock::server().await;
    mc("GET", &members_path())
        .and(query_param("offset", "0"))
        .once(
            ok(listing(
                vec![member("a@x.com", "subscribed", "2024-01-01T00:00:00Z")],
                9,
            )),
            &s,
        )
        .await;
    mc("GET", &members_path())
        .and(query_param("offset", "1"))
        .once(ok(listing(vec![], 9)), &s)
        .await;
    // The page import asks for ahead of time, before the empty one stops it.
    mc("GET", &members_path())
        .and(query_param("offset", "2"))
        .respond_with(ok(listing(vec![], 9)))
        .expect(0..=1)
        .mount(&s)
        .await;
    let f = folder(&s.uri());
    an_import_stops_a_loop(&f, &secrets(), "answered no members but a next page");
}

/// The changes since a time, oldest first: one request at a time, each
/// asked again from the mark (a second before it) so that a member changed
/// meanwhile is not skipped by an offset; ties at the mark's second are
/// remembered in nextSync.
fn changes(since: &str) -> wiremock::MockBuilder {
    mc("GET", &members_path())
        .and(query_param("count", "1000"))
        .and(query_param("offset", "0"))
        .and(query_param("sort_field", "last_changed"))
        .and(query_param("sort_dir", "ASC"))
        .and(query_param("since_last_changed", since))
}

#[tokio::test(flavor = "multi_thread")]
async fn getupdates_asks_since_last_changed_and_continues_exactly() {
    let s = crate::support::mock::server().await;
    let t1 = "2024-03-01T10:00:00+00:00";
    let t2 = "2024-03-01T10:00:05+00:00";
    // The first page is not the end (3 changed): the next is asked again
    // from the mark, t2 less a second, where b is already read.
    changes("2024-03-01T09:59:59Z")
        .once(
            ok(listing(
                vec![
                    member("a@x.com", "subscribed", t1),
                    member("b@x.com", "subscribed", t2),
                ],
                3,
            )),
            &s,
        )
        .await;
    changes("2024-03-01T10:00:04Z")
        .respond_with(ok(listing(
            vec![
                member("b@x.com", "subscribed", t2),
                member("c@x.com", "subscribed", t2),
            ],
            2,
        )))
        .up_to_n_times(1)
        .expect(1)
        .mount(&s)
        .await;
    // The next call: what was read at t2 is skipped; an archived member is
    // a delete.
    changes("2024-03-01T10:00:04Z")
        .respond_with(ok(listing(
            vec![
                member("b@x.com", "subscribed", t2),
                member("c@x.com", "subscribed", t2),
                member("d@x.com", "archived", "2024-03-01T11:00:00+00:00"),
            ],
            3,
        )))
        .expect(1)
        .mount(&s)
        .await;
    let f = folder(&s.uri());
    let first = f.run_line("getupdates --last-sync 2024-03-01T10:00:00Z");
    no_canary(&first);
    let out = first.ok_json();
    let ids: Vec<&str> = out["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [hash("a@x.com"), hash("b@x.com"), hash("c@x.com")]);
    let next = out["nextSync"].as_str().unwrap().to_string();
    assert_eq!(
        next,
        format!(
            "2024-03-01T10:00:05Z|{},{}",
            hash("b@x.com"),
            hash("c@x.com")
        )
    );
    let second = f.run(&["getupdates", "--last-sync", &next]);
    let out = second.ok_json();
    assert_eq!(
        out["entries"],
        json!([{"id": hash("d@x.com"), "type": "delete", "value": null}]),
        "{}",
        second.render()
    );
    assert_eq!(
        out["nextSync"],
        format!("2024-03-01T11:00:00Z|{}", hash("d@x.com"))
    );
}

/// An initial sync (no token) asks every member, oldest change first; a
/// page asked again from the mark that holds nothing new (members sharing
/// the mark's second) moves on by offset.
#[tokio::test(flavor = "multi_thread")]
async fn an_initial_getupdates_is_sorted_by_last_changed() {
    let s = crate::support::mock::server().await;
    let t = "2024-03-01T10:00:00+00:00";
    mc("GET", &members_path())
        .and(query_param("offset", "0"))
        .and(query_param("sort_field", "last_changed"))
        .and(query_param("sort_dir", "ASC"))
        .and(query_param_is_missing("since_last_changed"))
        .once(ok(listing(vec![member("a@x.com", "subscribed", t)], 2)), &s)
        .await;
    // Asked again from the mark: only a, read already, so the offset moves.
    changes("2024-03-01T09:59:59Z")
        .once(ok(listing(vec![member("a@x.com", "subscribed", t)], 2)), &s)
        .await;
    mc("GET", &members_path())
        .and(query_param("offset", "1"))
        .and(query_param("since_last_changed", "2024-03-01T09:59:59Z"))
        .and(query_param("sort_field", "last_changed"))
        .once(ok(listing(vec![member("b@x.com", "pending", t)], 2)), &s)
        .await;
    let f = folder(&s.uri());
    let run = f.run(&["getupdates"]);
    no_canary(&run);
    let out = run.ok_json();
    assert_eq!(
        out["nextSync"],
        format!(
            "2024-03-01T10:00:00Z|{},{}",
            hash("a@x.com"),
            hash("b@x.com")
        ),
        "{}",
        run.render()
    );
    assert_eq!(out["entries"].as_array().map(Vec::len), Some(2));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_429_is_backed_off_and_retried() {
    let s = crate::support::mock::server().await;
    let limited = mc("GET", &member_path("a@x.com"))
        .respond_with(problem(
            429,
            "Too Many Requests",
            "You have exceeded the limit of 10 simultaneous connections.",
        ))
        .up_to_n_times(1)
        .expect(1);
    let answer = mc("GET", &member_path("a@x.com"))
        .respond_with(ok(member("a@x.com", "subscribed", "2024-01-01T00:00:00Z")))
        .expect(1);
    let f = folder(&s.uri());
    let (run, waited) = a_429_waited_out(
        &f,
        &s,
        &secrets(),
        vec![limited, answer],
        &["get", "--id", "a@x.com"],
        "Authorization: ***",
    )
    .await;
    assert_eq!(run.ok_json()["email_address"], "a@x.com");
    // No header says when: the retry policy's backoff, once.
    assert_eq!(waited.len(), 1, "{waited:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_import_batch_subscribes_and_rejects_the_members_mailchimp_refuses() {
    let s = crate::support::mock::server().await;
    mc("POST", &format!("/lists/{LIST}"))
        .and(header("Content-Type", "application/json"))
        .and(body_json(json!({"update_existing": true, "members": [
            {"email_address": "a@x.com", "status_if_new": "subscribed", "merge_fields": {"FNAME": "A"}},
            {"email_address": "B@x.com", "status": "pending"},
            {"email_address": "c@fake.test", "status_if_new": "subscribed"}]})))
        .once(
            ok(json!({
                "new_members": [member("a@x.com", "subscribed", "2024-01-01T00:00:00Z")],
                "updated_members": [member("b@x.com", "pending", "2024-01-01T00:00:00Z")],
                "errors": [{"email_address": "C@Fake.test", "error": "C@Fake.test looks fake or invalid, please enter a real email address.", "error_code": "ERROR_GENERIC"}],
                "total_created": 1, "total_updated": 1, "error_count": 1, "_links": []})),
            &s,
        )
        .await;
    let f = folder(&s.uri());
    f.write(
        "in.jsonl",
        "{\"email_address\": \"a@x.com\", \"FNAME\": \"A\"}\n\
         {\"email_address\": \"B@x.com\", \"status\": \"pending\"}\n\
         {\"FNAME\": \"no email\"}\n\
         {\"email_address\": \"c@fake.test\"}\n",
    );
    let rejects = import_with_refusals(&f, &secrets(), 2, 2);
    let reasons: Vec<(Value, String)> = rejects
        .iter()
        .map(|r| {
            (
                r["record"].clone(),
                r["reason"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(reasons[0].0, json!({"FNAME": "no email"}), "{rejects:?}");
    assert!(reasons[0].1.contains("email_address"), "{rejects:?}");
    assert_eq!(
        reasons[1].0,
        json!({"email_address": "c@fake.test"}),
        "{rejects:?}"
    );
    assert!(
        reasons[1].1.contains("looks fake or invalid") && reasons[1].1.contains("ERROR_GENERIC"),
        "{rejects:?}"
    );
}

#[test]
fn dry_runs_preview_every_write() {
    let f = folder("http://127.0.0.1:9");
    dry_run_previews(
        &f,
        &secrets(),
        &Previews {
            insert: r#"{"email_address": "Ada@x.com", "FNAME": "Ada"}"#,
            patch: ("ada@x.com", r#"{"FNAME": "Ada L."}"#),
            delete: Some("ada@x.com"),
            import: "{\"email_address\": \"a@x.com\"}\n{\"FNAME\": \"no email\"}\n",
        },
        |action, run| snap!(format!("mailchimp_dry_run_{action}"), run),
    );
}

const FIRST: &str = r#"{"id": "p1", "properties": {"email_address": "ada@x.com", "FNAME": "Ada", "LNAME": "L"}, "groups": ["vip"]}
{"id": "p2", "properties": {"email_address": "bob@x.com", "FNAME": "Bob"}}
"#;

const SECOND: &str = r#"{"id": "p1", "properties": {"email_address": "ada@x.com", "FNAME": "Ada L."}, "groups": ["news"]}
{"id": "p2", "properties": {"email_address": "bob@x.com"}, "toDelete": true}
{"id": "p4", "properties": {"email_address": "Dee@x.com", "FNAME": "Dee"}}
"#;

#[tokio::test(flavor = "multi_thread")]
async fn export_creates_updates_clears_tags_and_deletes() {
    let s = crate::support::mock::server().await;
    let f = folder(&s.uri());
    // Creates are one batch subscribe call per batch.
    let subscribe = |members: Value, created: Vec<Value>| {
        mc("POST", &format!("/lists/{LIST}"))
            .and(body_json(
                json!({"members": members, "update_existing": true}),
            ))
            .respond_with(ok(json!({"new_members": created, "updated_members": [],
                "errors": [], "total_created": 1, "total_updated": 0, "error_count": 0})))
            .expect(1)
    };
    let tag = |email: &str, name: &str, status: &str| {
        mc("POST", &format!("{}/tags", member_path(email)))
            .and(body_json(
                json!({"tags": [{"name": name, "status": status}], "is_syncing": false}),
            ))
            .respond_with(ResponseTemplate::new(204))
            .expect(1)
    };
    let first = vec![
        subscribe(
            json!([
                {"email_address": "ada@x.com", "status_if_new": "subscribed",
                    "merge_fields": {"FNAME": "Ada", "LNAME": "L"}},
                {"email_address": "bob@x.com", "status_if_new": "subscribed",
                    "merge_fields": {"FNAME": "Bob"}}]),
            vec![
                member("ada@x.com", "subscribed", "2024-01-01T00:00:00Z"),
                member("bob@x.com", "subscribed", "2024-01-01T00:00:00Z"),
            ],
        ),
        tag("ada@x.com", "vip", "active"),
    ];
    let second = vec![
        mc("DELETE", &member_path("bob@x.com"))
            .respond_with(ResponseTemplate::new(204))
            .expect(1),
        subscribe(
            json!([{"email_address": "Dee@x.com", "status_if_new": "subscribed",
                "merge_fields": {"FNAME": "Dee"}}]),
            vec![member("dee@x.com", "subscribed", "2024-01-01T00:00:00Z")],
        ),
        mc("PATCH", &member_path("ada@x.com"))
            .and(body_json(
                json!({"merge_fields": {"FNAME": "Ada L.", "LNAME": ""}}),
            ))
            .respond_with(ok(member(
                "ada@x.com",
                "subscribed",
                "2024-01-02T00:00:00Z",
            )))
            .expect(1),
        tag("ada@x.com", "news", "active"),
        tag("ada@x.com", "vip", "inactive"),
    ];
    // Every run (the dry run too) reads the merge fields once.
    merge_fields().expect(4).mount(&s).await;
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
                        "mailchimp_export_dry_run",
                        crate::support::filter(&requests, f.path())
                    );
                }),
            Step::export("second.jsonl", SECOND, second).summary(counted(1, 1, 1, 1, 1)),
            Step::export("second.jsonl", SECOND, vec![]).summary(json!({"unchanged": 2})),
        ],
    )
    .await;
}

/// A profile without an email_address is invalid and nothing is sent for it.
#[tokio::test(flavor = "multi_thread")]
async fn an_export_profile_without_its_email_is_invalid_and_not_sent() {
    let s = crate::support::mock::server().await;
    merge_fields().mount(&s).await;
    let f = folder(&s.uri());
    f.write(
        "p.jsonl",
        "{\"id\": \"p1\", \"properties\": {\"FNAME\": \"Nobody\"}}\n",
    );
    let run = f.run_line("export --to . --input p.jsonl --errors e.jsonl");
    no_canary(&run);
    assert_eq!(run.code, 3, "{}", run.render());
    assert_eq!(run.json()["invalid"], 1, "{}", run.render());
    assert!(
        f.read("e.jsonl").contains("email_address"),
        "{}",
        f.read("e.jsonl")
    );
}

/// "The Marketing API has a limit of 10 simultaneous connections": an
/// export that updates 40 members (one `PATCH` each), each answer held
/// back a while by a server of its own that counts the requests in flight,
/// never has more than 10 at once, even when the account asks for more.
#[test]
fn never_more_than_ten_requests_at_once() {
    let server = crate::support::inflight::Server::start(
        std::time::Duration::from_millis(60),
        |request, sent| {
            let body = if request.starts_with("POST") {
                // Every member sent is new.
                let sent: Value = serde_json::from_str(sent).unwrap_or_default();
                json!({"new_members": sent["members"], "updated_members": [], "errors": []})
            } else if request.contains("/merge-fields") {
                json!({"merge_fields": [], "total_items": 0})
            } else {
                json!({"id": "h", "status": "subscribed"})
            };
            (200, body.to_string())
        },
    );
    let f = Folder::new();
    f.write(
        "account.json",
        &account(
            &server.url(),
            json!({"rateLimit": {"rps": 10000, "burst": 10000, "maxInFlight": 50}}),
        ),
    );
    let profiles = |name: &str| -> String {
        (0..40)
            .map(|i| {
                json!({"id": format!("p{i}"),
                    "properties": {"email_address": format!("p{i}@x.com"), "FNAME": name}})
                .to_string()
                    + "\n"
            })
            .collect()
    };
    f.write("p.jsonl", &profiles("A"));
    let first = f.run_line("export --to . --input p.jsonl");
    assert_eq!(first.ok_json()["created"], 40, "{}", first.render());
    assert_eq!(
        server.counts().0,
        2,
        "the merge fields, one batch subscribe"
    );
    f.write("p.jsonl", &profiles("B"));
    let run = f.run_line("export --to . --input p.jsonl");
    no_canary(&run);
    assert_eq!(run.ok_json()["updated"], 40, "{}", run.render());
    let (requests, peak) = server.counts();
    assert_eq!(requests, 2 + 1 + 40);
    assert!(
        (5..=10).contains(&peak),
        "{peak} requests in flight at once (the cap is 10, and the export sends in parallel)"
    );
}

/// `ferry init --connector mailchimp` writes a folder whose account opens
/// and whose in.json drives the actions against the API (here a mock).
#[tokio::test(flavor = "multi_thread")]
async fn init_scaffolds_a_folder_that_runs() {
    let s = crate::support::mock::server().await;
    let f = Folder::new();
    let init = f.run(&[
        "init",
        "mc",
        "--connector",
        "mailchimp",
        "--yes",
        "--set",
        &format!("baseUrl={}", s.uri()),
        "--set",
        &format!("listId={LIST}"),
        "--set",
        &format!("apiKey={KEY}"),
    ]);
    assert_eq!(init.code, 0, "{}", init.render());
    no_canary(&init);
    let ada = "ada@example.com";
    mc("GET", &member_path(ada))
        .once(ok(member(ada, "subscribed", "2024-01-01T00:00:00Z")), &s)
        .await;
    mc("PUT", &member_path(ada))
        .and(body_json(
            json!({"email_address": ada, "status": "subscribed",
            "status_if_new": "subscribed", "email_type": "html", "interests": {},
            "language": "en", "vip": false, "location": {"latitude": 51.5, "longitude": -0.12},
            "merge_fields": {"FNAME": "Ada", "LNAME": "Lovelace"}}),
        ))
        .once(ok(member(ada, "subscribed", "2024-01-01T00:00:00Z")), &s)
        .await;
    mc("PATCH", &member_path(ada))
        .and(body_json(
            json!({"merge_fields": {"FNAME": "Ada", "LNAME": "Lovelace"}}),
        ))
        .once(ok(member(ada, "subscribed", "2024-01-01T00:00:00Z")), &s)
        .await;
    mc("DELETE", &member_path(ada))
        .once(ResponseTemplate::new(204), &s)
        .await;
    for action in ["insert", "get", "patch", "delete"] {
        let run = f.run(&["-C", "mc", action]);
        no_canary(&run);
        assert_eq!(run.code, 0, "{action}:\n{}", run.render());
    }
}

/// Mailchimp answers 405 to archiving a member that is archived already,
/// and also to one that is bounced or pending: only the first is done.
#[tokio::test(flavor = "multi_thread")]
async fn a_405_on_delete_is_done_only_for_an_archived_member() {
    let s = crate::support::mock::server().await;
    let refused = || {
        problem(
            405,
            "Method Not Allowed",
            "This list member cannot be removed. Can not archive a contact that is bounced, pending or archived",
        )
    };
    for (email, status) in [("gone@x.com", "archived"), ("wait@x.com", "pending")] {
        mc("DELETE", &member_path(email)).once(refused(), &s).await;
        mc("GET", &member_path(email))
            .once(ok(member(email, status, "2024-01-01T00:00:00Z")), &s)
            .await;
    }
    let f = folder(&s.uri());
    let gone = f.run(&["delete", "--id", "gone@x.com"]);
    assert_eq!(gone.code, 0, "{}", gone.render());
    let pending = f.run(&["delete", "--id", "wait@x.com"]);
    no_canary(&pending);
    assert_eq!(pending.code, 1, "{}", pending.render());
    assert!(
        pending.stderr.contains("Can not archive"),
        "{}",
        pending.render()
    );
}

/// What ferry sends that Mailchimp's description (3.0.55, Swagger 2.0,
/// docs/connectors/specs/mailchimp.json) does not name, each on purpose: a
/// batch subscribe member carries `status_if_new`, which 3.0.55 does not
/// list there but the SDK 3.0.81 types do (docs/connectors/mailchimp.md
/// §12–§13): sending `status` instead would resubscribe existing members.
const SPEC_DEVIATIONS: &[&str] = &[
    "POST /3.0/lists/{list_id}: body /members/0/status_if_new: a key the schema does not name",
    "POST /3.0/lists/{list_id}: body /members/1/status_if_new: a key the schema does not name",
];

/// Every write a dry run previews (insert, patch, delete, a permanent
/// delete, an import's batch subscribe, an export's creates, update and
/// tags) satisfies the description.
#[test]
fn every_previewed_request_satisfies_mailchimps_openapi_description() {
    use crate::support::openapi::{assert_conform, previews};
    let base = "https://us6.api.mailchimp.com/3.0";
    let f = folder(base);
    let g = Folder::new();
    g.write(
        "account.json",
        &account(base, json!({"permanentDelete": true})),
    );
    f.write(
        "in.jsonl",
        "{\"email_address\": \"a@x.com\", \"FNAME\": \"Ada\", \"VIP\": true}\n",
    );
    let secrets = [KEY, &basic()];
    let mut requests = previews(
        &f,
        &[
            &[
                "insert",
                "--dry-run",
                "--value",
                r#"{"email_address": "Ada@x.com", "FNAME": "Ada", "language": "en", "vip": false}"#,
            ],
            &[
                "patch",
                "--dry-run",
                "--id",
                "ada@x.com",
                "--value",
                r#"{"status": "unsubscribed", "LNAME": null}"#,
            ],
            &["delete", "--dry-run", "--id", "ada@x.com"],
            &[
                "import",
                "--from",
                "jsonl:in.jsonl",
                "--to",
                ".",
                "--dry-run",
            ],
        ],
        &secrets,
    );
    requests.extend(previews(
        &g,
        &[&["delete", "--dry-run", "--id", "ada@x.com"]],
        &secrets,
    ));
    assert_eq!(requests.len(), 5, "{requests:?}");
    assert_conform("mailchimp", &requests, SPEC_DEVIATIONS);
}

/// Every read (check, get, the import listing, getupdates, `ferry fields`
/// and `ferry options listId`) and every write of an export (batch
/// subscribe, update, tags, archive) as a server receives them satisfies
/// the description.
#[tokio::test(flavor = "multi_thread")]
async fn every_sent_request_satisfies_mailchimps_openapi_description() {
    use crate::support::openapi::{assert_conform, received_by};
    let s = crate::support::mock::server().await;
    // One answer that every read understands: an audience, a member, and
    // empty listings.
    Mock::given(method("GET"))
        .and(wiremock::matchers::path_regex("^/3.0/lists"))
        .respond_with(ok(json!({"id": "a1b2c3", "name": "Newsletter",
            "email_address": "a@x.com", "status": "subscribed",
            "members": [], "merge_fields": [], "lists": [], "total_items": 0})))
        .expect(6..)
        .mount(&s)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("/3.0/lists/{LIST}")))
        .respond_with(ok(json!({"new_members": [{"email_address": "a@x.com"},
            {"email_address": "b@x.com"}], "updated_members": [], "errors": []})))
        .expect(1)
        .mount(&s)
        .await;
    Mock::given(method("POST"))
        .and(wiremock::matchers::path_regex(
            "^/3.0/lists/[^/]+/members/[0-9a-f]+/tags$",
        ))
        .respond_with(ResponseTemplate::new(204))
        .expect(2..)
        .mount(&s)
        .await;
    Mock::given(method("PATCH"))
        .and(wiremock::matchers::path_regex(
            "^/3.0/lists/[^/]+/members/[0-9a-f]+$",
        ))
        .respond_with(ok(member("a@x.com", "subscribed", "2024-01-01T00:00:00Z")))
        .expect(1)
        .mount(&s)
        .await;
    Mock::given(method("DELETE"))
        .and(wiremock::matchers::path_regex(
            "^/3.0/lists/[^/]+/members/[0-9a-f]+$",
        ))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&s)
        .await;
    let f = folder(&format!("{}/3.0", s.uri()));
    let reads: [&[&str]; 6] = [
        &["check"],
        &["get", "--id", "a@x.com"],
        &["import", "--from", ".", "--to", "jsonl:out.jsonl"],
        &["getupdates", "--last-sync", "2024-01-01T00:00:00Z"],
        &["fields"],
        &["options", "listId"],
    ];
    for args in reads {
        let run = f.run(args);
        assert_eq!(run.code, 0, "{args:?}: {}", run.render());
    }
    f.write(
        "p.jsonl",
        "{\"id\": \"p1\", \"properties\": {\"email_address\": \"a@x.com\", \"FNAME\": \"A\"}, \"groups\": [\"vip\"]}\n\
         {\"id\": \"p2\", \"properties\": {\"email_address\": \"b@x.com\", \"FNAME\": \"B\"}}\n",
    );
    let first = f.run_line("export --to . --input p.jsonl");
    assert_eq!(first.code, 0, "{}", first.render());
    f.write(
        "p.jsonl",
        "{\"id\": \"p1\", \"properties\": {\"email_address\": \"a@x.com\"}, \"groups\": [\"news\"]}\n\
         {\"id\": \"p2\", \"toDelete\": true}\n",
    );
    let second = f.run_line("export --to . --input p.jsonl");
    assert_eq!(second.code, 0, "{}", second.render());
    assert_conform("mailchimp", &received_by(&s).await, SPEC_DEVIATIONS);
}
