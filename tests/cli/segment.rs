//! The `segment` connector through the real binary against wiremock servers
//! that answer with the Profile API's documented shapes
//! (docs/connectors/segment.md): basic auth with the token as the user, the
//! traits and external_ids routes per profile, reading the profiles of an
//! ids file page by page to its end, profiles without the chosen identifier
//! and unknown profiles reaching the rejects file, a 429 then success, the
//! vendor's error message, the refused write actions, and the import from
//! segment to voucherify end to end with a resume in the middle, and the
//! shipped examples/segment-voucherify map from the listing into Voucherify's
//! bulk API (fields, metadata, bad birthdates named, rejects, the README's
//! deliberate failure and resume command).

use std::collections::BTreeSet;

use base64::Engine as _;
use serde_json::{json, Value};
use wiremock::matchers::{body_json, header, method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::snap;
use crate::support::{ok, Folder, MountOnce, Run};
use crate::voucherify::{self as vfy, vf};

const TOKEN: &str = "CANARY-seg-token-3b8f";
const SPACE: &str = "spa_test";

fn basic() -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{TOKEN}:"))
    )
}

fn account(base: &str, extra: Value) -> String {
    let mut a = json!({
        "connector": "segment",
        "spaceId": SPACE,
        "accessToken": TOKEN,
        "baseUrl": base,
        "retry": {"maxAttempts": 2, "baseDelayMs": 1}
    });
    if let (Value::Object(a), Value::Object(e)) = (&mut a, extra) {
        a.extend(e);
    }
    a.to_string()
}

fn no_canary(run: &Run) {
    let b = basic();
    let encoded = b.trim_start_matches("Basic ");
    run.hides(&[TOKEN, encoded], "a secret");
}

fn profile_path(id: &str, route: &str) -> String {
    format!("/v1/spaces/{SPACE}/collections/users/profiles/{id}/{route}")
}

/// A GET of one profile route with the basic-auth header.
fn seg(id: &str, route: &str) -> wiremock::MockBuilder {
    Mock::given(method("GET"))
        .and(path(profile_path(id, route)))
        .and(header("Authorization", basic().as_str()))
}

fn traits_body(id: &str, traits: Value) -> Value {
    json!({"traits": traits, "cursor": {"url": profile_path(id, "traits"), "has_more": false, "next": "", "limit": 20}})
}

fn ext_id(kind: &str, value: &str) -> Value {
    json!({"source_id": "GFu4AJc2bE", "collection": "users", "id": value, "type": kind,
        "created_at": "2017-11-30T06:05:01.40468Z", "encoding": "none", "first_message_id": "ajs-0af8"})
}

fn ids_body(id: &str, data: Vec<Value>) -> Value {
    json!({"data": data, "cursor": {"url": profile_path(id, "external_ids"), "has_more": false, "next": ""}})
}

/// Mount a profile: traits and external ids, each expected `times` times.
async fn mount_profile(
    s: &MockServer,
    lookup: &str,
    traits: Value,
    ids: Vec<Value>,
    times: impl Into<wiremock::Times> + Clone,
) {
    seg(lookup, "traits")
        .and(query_param("limit", "20"))
        .respond_with(ok(traits_body(lookup, traits)))
        .expect(times.clone())
        .mount(s)
        .await;
    seg(lookup, "external_ids")
        .and(query_param("limit", "100"))
        .and(query_param_is_missing("next"))
        .respond_with(ok(ids_body(lookup, ids)))
        .expect(times)
        .mount(s)
        .await;
}

async fn mount_missing(s: &MockServer, lookup: &str, times: u64) {
    for route in ["traits", "external_ids"] {
        seg(lookup, route)
            .respond_with(ResponseTemplate::new(404).set_body_json(
                json!({"error": {"code": "not_found", "message": "Profile was not found."}}),
            ))
            .expect(times)
            .mount(s)
            .await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn get_fetches_traits_and_every_external_id_page() {
    let s = crate::support::mock::server().await;
    // traitsLimit 2 of a profile with more traits: one call, and a warning.
    seg("email:ada%40example.com", "traits")
        .and(query_param("limit", "2"))
        .once(
            ok(json!({"traits": {"name": "Ada", "plan": "pro"},
            "cursor": {"url": "/x", "has_more": true, "next": "plan", "limit": 2}})),
            &s,
        )
        .await;
    seg("email:ada%40example.com", "external_ids")
        .and(query_param_is_missing("next"))
        .once(
            ok(json!({"data": [ext_id("email", "ada@example.com")],
            "cursor": {"url": "/x", "has_more": true, "next": "map_2"}})),
            &s,
        )
        .await;
    seg("email:ada%40example.com", "external_ids")
        .and(query_param("next", "map_2"))
        .and(query_param("limit", "100"))
        .once(
            ok(ids_body(
                "x",
                vec![ext_id("user_id", "u1"), ext_id("anonymous_id", "a1")],
            )),
            &s,
        )
        .await;
    let f = Folder::new();
    f.write(
        "account.json",
        &account(&s.uri(), json!({"traitsLimit": 2})),
    );
    let run = f.run(&["-vv", "get", "--id", "email:ada@example.com"]);
    assert!(
        run.stderr.contains(
            "profile email:ada@example.com has more than 2 traits; only the first 2 are read"
        ),
        "{}",
        run.render()
    );
    assert!(
        run.stderr.contains("Authorization: ***"),
        "{}",
        run.render()
    );
    no_canary(&run);
    let r = run.ok_json();
    assert_eq!(r["id"], "u1");
    assert_eq!(r["lookup"], "email:ada@example.com");
    assert_eq!(r["traits"], json!({"name": "Ada", "plan": "pro"}));
    assert_eq!(r["external_ids"].as_array().unwrap().len(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn check_reads_one_metadata_and_writes_are_refused() {
    let s = crate::support::mock::server().await;
    seg("user_id:ferry-check", "metadata")
        .once(
            ResponseTemplate::new(404).set_body_json(
                json!({"error": {"code": "not_found", "message": "Profile was not found."}}),
            ),
            &s,
        )
        .await;
    let f = Folder::new();
    f.write("account.json", &account(&s.uri(), json!({})));
    let run = f.run(&["check"]);
    no_canary(&run);
    let r = run.ok_json();
    assert_eq!(r["ok"], true);
    assert_eq!(r["status"], 404);
    let run = f.run(&["insert", "--value", "{\"id\": \"u1\"}"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("connector segment cannot insert"),
        "{}",
        run.render()
    );
    let run = f.run(&["delete", "--id", "u1"]);
    assert!(
        run.stderr.contains("connector segment cannot delete"),
        "{}",
        run.render()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_vendor_error_is_shown_and_a_429_is_retried() {
    let s = crate::support::mock::server().await;
    seg("user_id:u1", "traits")
        .respond_with(ResponseTemplate::new(429).set_body_json(
            json!({"error": {"code": "rate_limit_error", "message": "Too many requests"}}),
        ))
        .up_to_n_times(1)
        .expect(1)
        .mount(&s)
        .await;
    mount_profile(
        &s,
        "user_id:u1",
        json!({"name": "Ada"}),
        vec![ext_id("user_id", "u1")],
        1,
    )
    .await;
    seg("user_id:u2", "traits")
        .once(ResponseTemplate::new(401).set_body_json(json!({"error": {"code": "authentication_error", "message": "The access token is invalid."}})), &s)
        .await;
    seg("user_id:u2", "external_ids")
        .respond_with(ok(ids_body("user_id:u2", vec![])))
        .expect(0..=1)
        .mount(&s)
        .await;
    let f = Folder::new();
    f.write("account.json", &account(&s.uri(), json!({})));
    let (run, waits) = f.run_on_virtual_clock(&["get", "--id", "u1"]);
    assert_eq!(run.ok_json()["traits"]["name"], "Ada");
    assert_eq!(waits.of("retry").len(), 1, "{waits:?}");
    let run = f.run(&["get", "--id", "u2"]);
    no_canary(&run);
    snap!("segment_unauthorized", run);
}

#[tokio::test(flavor = "multi_thread")]
async fn import_reads_the_ids_file_to_the_end_and_rejects_profiles_without_the_identifier() {
    let s = crate::support::mock::server().await;
    mount_profile(
        &s,
        "user_id:u1",
        json!({"name": "One"}),
        vec![ext_id("user_id", "u1")],
        1,
    )
    .await;
    mount_profile(
        &s,
        "user_id:u2",
        json!({"name": "Two"}),
        vec![ext_id("user_id", "u2")],
        1,
    )
    .await;
    mount_profile(
        &s,
        "anonymous_id:a3",
        json!({"name": "Anon"}),
        vec![ext_id("anonymous_id", "a3")],
        1,
    )
    .await;
    mount_profile(
        &s,
        "email:four%40example.com",
        json!({"name": "Four"}),
        vec![ext_id("email", "four@example.com"), ext_id("user_id", "u4")],
        1,
    )
    .await;
    mount_missing(&s, "user_id:u5", 1).await;
    let f = Folder::new();
    f.write(
        "account.json",
        &account(&s.uri(), json!({"ids": "ids.txt"})),
    );
    f.write(
        "ids.txt",
        "u1\nu2\n\nanonymous_id:a3\nemail:four@example.com\nu5\nemail:\n",
    );
    let run =
        f.run_line("import --from . --to jsonl:out.jsonl --batch-size 2 --rejects rejects.jsonl");
    no_canary(&run);
    assert_eq!(run.code, 3, "{}", run.render());
    let summary = run.json();
    assert_eq!(summary["read"], 6);
    assert_eq!(summary["written"], 3);
    // The third batch held only u5, which has no profile: nothing to write.
    assert_eq!(summary["batches"], 2);
    let out: Vec<Value> = f
        .read("out.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ids: Vec<&str> = out.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["u1", "u2", "u4"]);
    let rejects: Vec<Value> = f
        .read("rejects.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rejects.len(), 3);
    assert_eq!(rejects[2]["record"]["lookup"], "email:");
    assert_eq!(
        rejects[2]["record"]["problem"],
        "not an identifier: identifier \"email:\" has no value after the colon"
    );
    assert_eq!(rejects[0]["reason"], "missing user_id");
    assert_eq!(rejects[1]["reason"], "no such profile");
    assert_eq!(rejects[2]["reason"], "not an identifier");
    assert_eq!(
        rejects[0]["record"]["problem"],
        "profile anonymous_id:a3 has no user_id"
    );
    assert_eq!(rejects[0]["offset"], 2);
    assert_eq!(rejects[1]["record"]["problem"], "no such profile: GET http://127.0.0.1:".to_string() + &s.address().port().to_string() + "/v1/spaces/spa_test/collections/users/profiles/user_id:u5/traits?limit=20 answered 404 Not Found: Profile was not found.");
}

/// The map from a Segment profile to a Voucherify customer.
const MAP: &str = r#"{"source_id": "id", "name": "/traits/name", "email": "/traits/email",
  "phone": "/traits/phone", "birthdate": "/traits/birthday", "address": "/traits/address",
  "metadata": {"const": {"origin": "segment"}},
  "id": null, "lookup": null, "traits": null, "external_ids": null}"#;

fn customer_of(n: u32) -> Value {
    json!({"source_id": format!("u{n}"), "name": format!("User {n}"), "email": format!("u{n}@example.com"),
        "birthdate": "1990-05-01", "metadata": {"origin": "segment"}})
}

async fn mount_job(s: &MockServer, id: &str) {
    vf("GET", &format!("/v1/async-actions/{id}"))
        .respond_with(ok(json!({"id": id, "type": "CUSTOMERS.BULK_UPDATE", "status": "DONE", "operation_status": "SUCCESS",
            "result": {"done_count": 2, "failed_count": 0, "errors": []}, "progress": 100, "object": "async_action"})))
        .expect(1)
        .mount(s)
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn import_from_segment_to_voucherify_end_to_end_with_a_resume() {
    let seg_server = crate::support::mock::server().await;
    let vf_server = crate::support::mock::server().await;
    let traits = |n: u32| json!({"name": format!("User {n}"), "email": format!("u{n}@example.com"), "birthday": "1990-05-01T00:00:00Z", "plan": "pro"});
    // Batches of two: [u1, u2], [u3, a4], [u5]. The second batch is read
    // twice (first run, then the resume); the third once or twice (the
    // reader may have read ahead before the first run stopped).
    mount_profile(
        &seg_server,
        "user_id:u1",
        traits(1),
        vec![ext_id("user_id", "u1")],
        1,
    )
    .await;
    mount_profile(
        &seg_server,
        "user_id:u2",
        traits(2),
        vec![ext_id("user_id", "u2")],
        1,
    )
    .await;
    mount_profile(
        &seg_server,
        "user_id:u3",
        traits(3),
        vec![ext_id("user_id", "u3")],
        2,
    )
    .await;
    mount_profile(
        &seg_server,
        "anonymous_id:a4",
        traits(4),
        vec![ext_id("anonymous_id", "a4")],
        2,
    )
    .await;
    mount_profile(
        &seg_server,
        "user_id:u5",
        traits(5),
        vec![ext_id("user_id", "u5")],
        1..=2,
    )
    .await;

    vf("POST", "/v1/customers/bulk/async")
        .and(body_json(json!([customer_of(1), customer_of(2)])))
        .once(ok(json!({"async_action_id": "aa_1"})), &vf_server)
        .await;
    mount_job(&vf_server, "aa_1").await;
    // The second batch fails with 500 until the retries run out (two
    // attempts), in the first run only.
    vf("POST", "/v1/customers/bulk/async")
        .and(body_json(json!([customer_of(3)])))
        .respond_with(ResponseTemplate::new(500).set_body_json(
            json!({"code": 500, "key": "internal_error", "message": "Internal Server Error"}),
        ))
        .up_to_n_times(2)
        .expect(2)
        .mount(&vf_server)
        .await;
    vf("POST", "/v1/customers/bulk/async")
        .and(body_json(json!([customer_of(3)])))
        .once(ok(json!({"async_action_id": "aa_2"})), &vf_server)
        .await;
    mount_job(&vf_server, "aa_2").await;
    vf("POST", "/v1/customers/bulk/async")
        .and(body_json(json!([customer_of(5)])))
        .once(ok(json!({"async_action_id": "aa_3"})), &vf_server)
        .await;
    mount_job(&vf_server, "aa_3").await;

    let f = Folder::new();
    f.write(
        "seg/account.json",
        &account(&seg_server.uri(), json!({"ids": "ids.txt"})),
    );
    f.write("seg/ids.txt", "u1\nu2\nu3\nanonymous_id:a4\nu5\n");
    f.write("vf/account.json", &vfy::account(&vf_server.uri()));
    f.write("map.json", MAP);
    let args = [
        "import",
        "--from",
        "seg",
        "--to",
        "vf",
        "--map",
        "map.json",
        "--batch-size",
        "2",
        "--rejects",
        "rejects.jsonl",
    ];
    let first = f.run(&args);
    no_canary(&first);
    vfy::no_canary(&first);
    assert_eq!(first.code, 1, "{}", first.render());
    assert!(
        first.stderr.contains("import stopped at offset 2"),
        "{}",
        first.render()
    );
    assert!(
        first
            .stderr
            .contains("answered 500 Internal Server Error: Internal Server Error"),
        "{}",
        first.render()
    );
    assert!(first.stderr.contains("--resume"), "{}", first.render());

    let mut again = args.to_vec();
    again.push("--resume");
    let second = f.run(&again);
    no_canary(&second);
    vfy::no_canary(&second);
    assert_eq!(second.code, 3, "{}", second.render());
    let summary = second.json();
    assert_eq!(summary["read"], 3);
    assert_eq!(summary["written"], 2);
    assert_eq!(summary["rejected"]["total"], 1);
    assert_eq!(summary["endOfSource"], true);

    // Every profile with a user_id reached Voucherify; the one without it is
    // in the rejects file with the reason.
    let upserted: BTreeSet<String> = vf_server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| r.url.path() == "/v1/customers/bulk/async")
        .flat_map(|r| serde_json::from_slice::<Vec<Value>>(&r.body).unwrap())
        .map(|c| c["source_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        upserted,
        BTreeSet::from(["u1".into(), "u2".into(), "u3".into(), "u5".into()])
    );
    let rejects: Vec<Value> = f
        .read("rejects.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rejects.len(), 1, "{rejects:?}");
    // The source's reason, not the mapped field's: the profile has no user_id.
    assert_eq!(rejects[0]["reason"], "missing user_id");
    assert_eq!(
        rejects[0]["record"]["problem"],
        "profile anonymous_id:a4 has no user_id"
    );
    assert_eq!(rejects[0]["offset"], 3);
}

#[test]
fn the_specs_document_options_fields_and_limits() {
    let f = Folder::new();
    let run = f.run(&["connectors", "segment"]);
    snap!("segment_spec", run);
    let run = f.run(&["connectors", "voucherify"]);
    snap!("voucherify_spec", run);
}

/// A local stand-in for the Profile API as Voucherify's initial-sync script
/// uses it (voucherifyio/segmentio-initial-sync, initial-sync.ts): the
/// listing `GET …/collections/users/profiles?limit=L&next=N` in cursor pages
/// of `{"data": [{"segment_id"}], "cursor": {"url", "has_more", "next"}}`,
/// then `…/profiles/segment_id:ID/traits` and `…/external_ids` per profile,
/// and 404 `not_found` for a profile it does not hold. Cursors are opaque
/// (`cur_N`); the first page is asked for with `next=0`, as the script does.
mod stand_in {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use serde_json::{json, Value};
    use wiremock::matchers::{header, method, path, path_regex};
    use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

    use super::{basic, ext_id, profile_path, SPACE};

    /// The profiles `seg_1..=seg_n`; those for which `has_user_id(n)` is
    /// false have only an anonymous id.
    pub struct Profiles {
        pub n: usize,
        pub has_user_id: fn(usize) -> bool,
        /// A listing cursor whose page is held back the first time it is
        /// asked for (answered only after a long delay), so a test can kill
        /// the import while it waits there.
        pub hold_once: Mutex<Option<String>>,
    }

    /// The route a responder answers.
    #[derive(Clone, Copy)]
    enum Route {
        List,
        Traits,
        ExternalIds,
    }

    struct Responder(Arc<Profiles>, Route);

    fn listing_path() -> String {
        format!("/v1/spaces/{SPACE}/collections/users/profiles")
    }

    fn not_found() -> ResponseTemplate {
        ResponseTemplate::new(404).set_body_json(
            json!({"error": {"code": "not_found", "message": "Profile was not found."}}),
        )
    }

    impl Profiles {
        /// The profile number in `…/profiles/segment_id:seg_N/…`, if held.
        fn number(&self, req: &Request) -> Option<usize> {
            let lookup = req.url.path().split('/').nth(7)?;
            let n: usize = lookup.strip_prefix("segment_id:seg_")?.parse().ok()?;
            (1..=self.n).contains(&n).then_some(n)
        }

        fn list(&self, req: &Request) -> ResponseTemplate {
            let q = |k: &str| {
                req.url
                    .query_pairs()
                    .find(|(key, _)| key == k)
                    .map(|(_, v)| v.into_owned())
            };
            let limit: usize = match q("limit").and_then(|l| l.parse().ok()) {
                Some(l @ 1..=100) => l,
                _ => {
                    return ResponseTemplate::new(400).set_body_json(json!({"error": {"code": "validation_error", "message": "limit must be between 1 and 100"}}))
                }
            };
            let next = q("next").unwrap_or_default();
            let start = match next.as_str() {
                "0" => 0,
                c => match c.strip_prefix("cur_").and_then(|s| s.parse().ok()) {
                    Some(s) => s,
                    None => {
                        return ResponseTemplate::new(400).set_body_json(json!({"error": {"code": "validation_error", "message": format!("invalid cursor {next:?}")}}))
                    }
                },
            };
            let end = (start + limit).min(self.n);
            let data: Vec<Value> = (start + 1..=end)
                .map(|i| json!({"segment_id": format!("seg_{i}"), "metadata": {"created_at": "2026-01-01T00:00:00Z"}}))
                .collect();
            let more = end < self.n;
            let body = json!({"data": data, "cursor": {"url": listing_path(), "has_more": more,
                "next": if more { format!("cur_{end}") } else { String::new() }, "limit": limit}});
            let held = {
                let mut hold = self.hold_once.lock().unwrap();
                (hold.as_deref() == Some(next.as_str())).then(|| hold.take())
            };
            let answer = ResponseTemplate::new(200).set_body_json(body);
            match held {
                Some(_) => answer.set_delay(Duration::from_secs(15)),
                None => answer,
            }
        }

        fn traits(&self, n: usize) -> ResponseTemplate {
            ResponseTemplate::new(200).set_body_json(json!({
                "traits": {"name": format!("User {n}"), "email": format!("u{n}@example.com")},
                "cursor": {"url": profile_path(&format!("segment_id:seg_{n}"), "traits"), "has_more": false, "next": "", "limit": 20}}))
        }

        fn external_ids(&self, n: usize) -> ResponseTemplate {
            let mut data = vec![ext_id("anonymous_id", &format!("anon-{n}"))];
            if (self.has_user_id)(n) {
                data.push(ext_id("user_id", &format!("u{n}")));
            }
            ResponseTemplate::new(200).set_body_json(json!({"data": data,
                "cursor": {"url": profile_path(&format!("segment_id:seg_{n}"), "external_ids"), "has_more": false, "next": ""}}))
        }
    }

    impl Respond for Responder {
        fn respond(&self, req: &Request) -> ResponseTemplate {
            let profiles = &self.0;
            match (self.1, profiles.number(req)) {
                (Route::List, _) => profiles.list(req),
                (Route::Traits, Some(n)) => profiles.traits(n),
                (Route::ExternalIds, Some(n)) => profiles.external_ids(n),
                (_, None) => not_found(),
            }
        }
    }

    /// How many requests each route must receive before the server drops.
    pub struct Expect {
        pub pages: u64,
        pub traits: u64,
        pub external_ids: u64,
    }

    /// Mount the stand-in; every route must be asked exactly as `expect`
    /// says, and any other request fails the test.
    pub async fn mount(s: &MockServer, profiles: Arc<Profiles>, expect: Expect) {
        let auth = basic();
        Mock::given(method("GET"))
            .and(path(listing_path()))
            .and(header("Authorization", auth.as_str()))
            .respond_with(Responder(Arc::clone(&profiles), Route::List))
            .expect(expect.pages)
            .mount(s)
            .await;
        let one = format!("^/v1/spaces/{SPACE}/collections/users/profiles/[^/]+");
        Mock::given(method("GET"))
            .and(path_regex(format!("{one}/traits$")))
            .and(wiremock::matchers::query_param("limit", "20"))
            .and(header("Authorization", auth.as_str()))
            .respond_with(Responder(Arc::clone(&profiles), Route::Traits))
            .expect(expect.traits)
            .mount(s)
            .await;
        Mock::given(method("GET"))
            .and(path_regex(format!("{one}/external_ids$")))
            .and(wiremock::matchers::query_param("limit", "100"))
            .and(header("Authorization", auth.as_str()))
            .respond_with(Responder(profiles, Route::ExternalIds))
            .expect(expect.external_ids)
            .mount(s)
            .await;
        // Anything else is a request ferry should not have sent.
        Mock::given(wiremock::matchers::any())
            .respond_with(ResponseTemplate::new(500))
            .with_priority(u8::MAX)
            .expect(0)
            .mount(s)
            .await;
    }
}

fn stand_in_profiles(
    n: usize,
    has_user_id: fn(usize) -> bool,
) -> std::sync::Arc<stand_in::Profiles> {
    std::sync::Arc::new(stand_in::Profiles {
        n,
        has_user_id,
        hold_once: std::sync::Mutex::new(None),
    })
}

fn jsonl(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn get_by_segment_id_reads_that_profile_and_an_unknown_one_is_not_found() {
    let s = crate::support::mock::server().await;
    // Two gets of a held profile and one of an unknown one: 2 calls each.
    stand_in::mount(
        &s,
        stand_in_profiles(3, |_| true),
        stand_in::Expect {
            pages: 0,
            traits: 2,
            external_ids: 2,
        },
    )
    .await;
    let f = Folder::new();
    f.write("account.json", &account(&s.uri(), json!({})));
    let run = f.run(&["get", "--id", "segment_id:seg_2"]);
    no_canary(&run);
    let r = run.ok_json();
    assert_eq!(r["id"], "u2");
    assert_eq!(r["lookup"], "segment_id:seg_2");
    assert_eq!(r["traits"]["name"], "User 2");
    let run = f.run(&["get", "--id", "segment_id:seg_9"]);
    no_canary(&run);
    snap!("segment_get_unknown_segment_id", run);
}

#[tokio::test(flavor = "multi_thread")]
async fn import_without_ids_pages_through_the_listing_at_2_calls_per_profile_and_1_per_page() {
    let s = crate::support::mock::server().await;
    // 5 profiles in pages of 2: 3 pages, 10 profile calls. The resume of
    // the finished import reads the last page (1 profile) once more.
    stand_in::mount(
        &s,
        stand_in_profiles(5, |n| n != 4),
        stand_in::Expect {
            pages: 3 + 1,
            traits: 5 + 1,
            external_ids: 5 + 1,
        },
    )
    .await;
    let f = Folder::new();
    f.write("account.json", &account(&s.uri(), json!({"pageSize": 2})));
    let args = [
        "import",
        "--from",
        ".",
        "--to",
        "jsonl:out.jsonl",
        "--rejects",
        "rejects.jsonl",
    ];
    let run = f.run(&args);
    no_canary(&run);
    assert_eq!(run.code, 3, "{}", run.render());
    let summary = run.json();
    assert_eq!(summary["read"], 5, "{}", run.render());
    assert_eq!(summary["written"], 4);
    assert_eq!(
        summary["rejected"]["byReason"],
        json!({"missing user_id": 1})
    );
    let ids: Vec<String> = jsonl(&f.read("out.jsonl"))
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, ["u1", "u2", "u3", "u5"]);
    let rejects = jsonl(&f.read("rejects.jsonl"));
    assert_eq!(rejects.len(), 1);
    assert_eq!(rejects[0]["reason"], "missing user_id");
    assert_eq!(rejects[0]["record"]["lookup"], "segment_id:seg_4");
    assert_eq!(rejects[0]["offset"], 3);
    // The listing was asked in pages of 2, the first with next=0.
    let listed: Vec<String> = s
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| r.url.path().ends_with("/profiles"))
        .map(|r| r.url.query().unwrap_or_default().to_string())
        .collect();
    assert_eq!(
        listed,
        ["limit=2&next=0", "limit=2&next=cur_2", "limit=2&next=cur_4"]
    );
    // Resuming the finished import reads only the last listing page again.
    let mut again = args.to_vec();
    again.push("--resume");
    let run = f.run(&again);
    let summary = run.ok_json();
    assert_eq!(summary["read"], 0, "{}", run.render());
    assert_eq!(jsonl(&f.read("out.jsonl")).len(), 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn import_of_250_profiles_killed_mid_listing_and_resumed_ends_with_225_records_and_25_rejects(
) {
    let s = crate::support::mock::server().await;
    let profiles = stand_in_profiles(250, |n| n % 10 != 0);
    // The second page is held back the first time, so the kill lands after
    // the first page was committed and before anything else was.
    *profiles.hold_once.lock().unwrap() = Some("cur_50".into());
    // Pages of 50: 5 pages, plus the held one asked for by the killed run;
    // every profile read exactly once: 2 calls per profile, 1 per page.
    stand_in::mount(
        &s,
        profiles,
        stand_in::Expect {
            pages: 5 + 1,
            traits: 250,
            external_ids: 250,
        },
    )
    .await;
    let f = Folder::new();
    f.write(
        "seg/account.json",
        &account(&s.uri(), json!({"pageSize": 50})),
    );
    let args = [
        "import",
        "--from",
        "seg",
        "--to",
        "jsonl:out.jsonl",
        "--batch-size",
        "50",
        "--rejects",
        "rejects.jsonl",
    ];
    let mut child = f.spawn(&args);
    // Kill once the first page is committed and the run waits on the held
    // second one: the kill lands mid-listing, every time.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let checkpoint = loop {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the import ended before the kill"
        );
        let saved = std::fs::read_dir(f.join(".ferry")).ok().and_then(|d| {
            d.flatten()
                .find(|e| e.file_name().to_string_lossy().starts_with("import-"))
                .and_then(|e| std::fs::read_to_string(e.path()).ok())
                .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        });
        let waiting = s
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .any(|r| r.url.query() == Some("limit=50&next=cur_50"));
        match saved {
            Some(cp) if waiting && cp["position"]["offset"] == 50 => break cp,
            _ => {}
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no checkpoint was saved, or the second page was never asked for"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    };
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), None, "killed by a signal: {stderr}");
    // Killed mid-listing: the first page is in, the listing's cursor is the
    // position.
    assert_eq!(checkpoint["position"]["offset"], 50, "{checkpoint}");
    assert_eq!(checkpoint["position"]["cursor"], "cur_50", "{checkpoint}");
    assert_eq!(jsonl(&f.read("out.jsonl")).len(), 45);

    let mut again = args.to_vec();
    again.push("--resume");
    let run = f.run(&again);
    no_canary(&run);
    assert_eq!(run.code, 3, "{}", run.render());
    let summary = run.json();
    assert_eq!(summary["read"], 200, "{}", run.render());
    assert_eq!(summary["endOfSource"], true);

    let ids: Vec<String> = jsonl(&f.read("out.jsonl"))
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    let unique: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(ids.len(), 225, "no duplicates");
    let expected: BTreeSet<String> = (1..=250)
        .filter(|n| n % 10 != 0)
        .map(|n| format!("u{n}"))
        .collect();
    assert_eq!(unique, expected.iter().collect());
    let rejects = jsonl(&f.read("rejects.jsonl"));
    assert_eq!(rejects.len(), 25, "{rejects:?}");
    assert!(
        rejects.iter().all(|r| r["reason"] == "missing user_id"),
        "{rejects:?}"
    );
    let rejected: BTreeSet<String> = rejects
        .iter()
        .map(|r| r["record"]["lookup"].as_str().unwrap().to_string())
        .collect();
    let expected: BTreeSet<String> = (1..=25)
        .map(|n| format!("segment_id:seg_{}", n * 10))
        .collect();
    assert_eq!(rejected, expected);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_404_or_401_from_the_listing_names_the_route_and_what_to_check() {
    let s = crate::support::mock::server().await;
    let list = || {
        Mock::given(method("GET"))
            .and(path(format!(
                "/v1/spaces/{SPACE}/collections/users/profiles"
            )))
            .and(query_param("limit", "100"))
            .and(query_param("next", "0"))
    };
    list()
        .and(header("Authorization", basic().as_str()))
        .once(
            ResponseTemplate::new(404).set_body_json(
                json!({"error": {"code": "not_found", "message": "Space was not found."}}),
            ),
            &s,
        )
        .await;
    let f = Folder::new();
    f.write("account.json", &account(&s.uri(), json!({})));
    let run = f.run(&["import", "--from", ".", "--to", "jsonl:out.jsonl"]);
    no_canary(&run);
    insta::assert_snapshot!("segment_listing_not_found", crate::import::render(&run));

    let s = crate::support::mock::server().await;
    list()
        .once(
            ResponseTemplate::new(401).set_body_json(json!({"error": {"code": "authentication_error", "message": "The access token is invalid."}})),
            &s,
        )
        .await;
    let f = Folder::new();
    f.write("account.json", &account(&s.uri(), json!({})));
    let run = f.run(&["import", "--from", ".", "--to", "jsonl:out.jsonl"]);
    no_canary(&run);
    insta::assert_snapshot!("segment_listing_unauthorized", crate::import::render(&run));
    assert!(!f.exists("out.jsonl"));
}

#[test]
fn page_size_out_of_range_and_an_offset_without_a_checkpoint_are_usage_errors() {
    let f = Folder::new();
    f.write(
        "account.json",
        &account("http://127.0.0.1:9", json!({"pageSize": 101})),
    );
    let run = f.run(&["import", "--from", ".", "--to", "jsonl:out.jsonl"]);
    snap!("segment_page_size_out_of_range", run);
    f.write("account.json", &account("http://127.0.0.1:9", json!({})));
    let run = f.run_line("import --from . --to jsonl:out.jsonl --offset 100");
    no_canary(&run);
    assert_eq!(run.code, 2, "{}", run.render());
    assert!(
        run.stderr.contains(
            "caused by: connector segment cannot start listing profiles at offset 100 without a checkpoint"
        ),
        "{}",
        run.render()
    );
    assert!(!f.exists("out.jsonl"));
}

/// A file of the shipped examples/segment-voucherify folder.
fn shipped(rel: &str) -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/segment-voucherify")
        .join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// A shipped account.json pointed at a test server, its `${VAR}`s kept and
/// given in the folder's `.env`, as a user fills them in.
fn shipped_folder(f: &Folder, name: &str, base: &str, extra: Value, env: &str) {
    let mut account: Value = serde_json::from_str(&shipped(&format!("{name}/account.json")))
        .expect("the shipped account is JSON");
    let obj = account.as_object_mut().expect("an object");
    obj.insert("baseUrl".into(), json!(base));
    if let Value::Object(e) = extra {
        obj.extend(e);
    }
    f.write(&format!("{name}/account.json"), &account.to_string());
    f.write(&format!("{name}/.env"), env);
}

/// Fail the test on any request no other mock of `s` expects.
async fn nothing_else(s: &MockServer) {
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(500))
        .with_priority(u8::MAX)
        .expect(0)
        .mount(s)
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_shipped_segment_voucherify_example_migrates_by_its_map_with_named_birthdate_warnings()
{
    let seg_server = crate::support::mock::server().await;
    let vf_server = crate::support::mock::server().await;
    // One listing page of five profiles, read by the dry run and the run.
    Mock::given(method("GET"))
        .and(path(format!("/v1/spaces/{SPACE}/collections/users/profiles")))
        .and(query_param("limit", "100"))
        .and(query_param("next", "0"))
        .and(header("Authorization", basic().as_str()))
        .respond_with(ok(json!({
            "data": [{"segment_id": "s1"}, {"segment_id": "s2"}, {"segment_id": "s3"}, {"segment_id": "s4"}, {"segment_id": "s5"}],
            "cursor": {"url": format!("/v1/spaces/{SPACE}/collections/users/profiles"), "has_more": false, "next": ""}})))
        .expect(2)
        .mount(&seg_server)
        .await;
    let profiles = [
        (
            "s1",
            json!({"name": "Ada Lovelace", "email": "ada@example.com", "phone": "+44 20 7946 0000",
                "birthday": "1990-05-12", "description": "first customer",
                "address": {"street": "12 St James's Sq", "city": "London", "state": "London",
                            "postal_code": "SW1Y 4JH", "country": "UK"},
                "plan": "pro", "company": {"name": "ACME"}}),
            vec![ext_id("anonymous_id", "anon-1"), ext_id("user_id", "u1")],
        ),
        (
            "s2",
            json!({"name": "Bob", "email": "bob@example.com", "birthday": "12/05/1990", "vip": true}),
            vec![ext_id("user_id", "u2")],
        ),
        (
            "s3",
            json!({"name": "Anonymous", "birthday": "1990-13-01"}),
            vec![ext_id("anonymous_id", "anon-3")],
        ),
        (
            "s4",
            json!({"email": "cy@example.com", "birthday": "1990-05-12T23:30:00.000-05:00", "age": 36}),
            vec![ext_id("user_id", "u4")],
        ),
        (
            "s5",
            json!({"name": "Dee", "birthday": 19900512, "address": {"city": "Oslo"}}),
            vec![ext_id("user_id", "u5"), ext_id("email", "dee@example.com")],
        ),
    ];
    for (id, traits, ids) in profiles {
        mount_profile(&seg_server, &format!("segment_id:{id}"), traits, ids, 2).await;
    }
    nothing_else(&seg_server).await;

    // What Voucherify must receive: source_id from user_id, the customer
    // fields Voucherify has, every other trait in metadata, bad birthdates
    // left out (null), the profile without user_id nowhere.
    let customers = json!([
        {"source_id": "u1", "name": "Ada Lovelace", "description": "first customer",
         "email": "ada@example.com", "phone": "+44 20 7946 0000", "birthdate": "1990-05-12",
         "address": {"line_1": "12 St James's Sq", "city": "London", "state": "London",
                     "postal_code": "SW1Y 4JH", "country": "UK"},
         "metadata": {"plan": "pro", "company": {"name": "ACME"}}},
        {"source_id": "u2", "name": "Bob", "email": "bob@example.com", "metadata": {"vip": true}},
        {"source_id": "u4", "email": "cy@example.com", "birthdate": "1990-05-12", "metadata": {"age": 36}},
        {"source_id": "u5", "name": "Dee", "address": {"city": "Oslo"}}
    ]);
    vfy::vf("POST", "/v1/customers/bulk/async")
        .and(body_json(customers.clone()))
        .once(ok(json!({"async_action_id": "aa_1"})), &vf_server)
        .await;
    vfy::vf("GET", "/v1/async-actions/aa_1")
        .once(ok(json!({"id": "aa_1", "type": "CUSTOMERS.BULK_UPDATE", "status": "DONE", "operation_status": "SUCCESS",
            "result": {"done_count": 4, "failed_count": 0, "errors": []}, "progress": 100, "object": "async_action"})), &vf_server)
        .await;
    nothing_else(&vf_server).await;

    let f = Folder::new();
    f.write("map.json", &shipped("map.json"));
    shipped_folder(
        &f,
        "segment",
        &seg_server.uri(),
        json!({"retry": {"maxAttempts": 2, "baseDelayMs": 1}}),
        &format!("SEGMENT_SPACE_ID={SPACE}\nSEGMENT_ACCESS_TOKEN={TOKEN}\n"),
    );
    shipped_folder(
        &f,
        "voucherify",
        &vf_server.uri(),
        json!({"pollIntervalMs": 1, "retry": {"maxAttempts": 2, "baseDelayMs": 1}}),
        &format!(
            "VOUCHERIFY_APPLICATION_ID={}\nVOUCHERIFY_SECRET_KEY={}\n",
            vfy::APP_ID,
            vfy::SECRET
        ),
    );
    // The README's commands, as written there.
    let args = [
        "import",
        "--from",
        "segment",
        "--to",
        "voucherify",
        "--map",
        "map.json",
        "--rejects",
        "profiles-without-user_id.jsonl",
    ];
    let mut dry = args.to_vec();
    dry.push("--dry-run");
    let run = f.run(&dry);
    no_canary(&run);
    vfy::no_canary(&run);
    assert_eq!(run.code, 0, "{}", run.render());
    assert_eq!(
        run.json()["requests"][0]["body"],
        customers,
        "{}",
        run.render()
    );
    insta::assert_snapshot!(
        "segment_voucherify_example_dry_run",
        crate::import::render(&run)
    );

    let run = f.run(&args);
    no_canary(&run);
    vfy::no_canary(&run);
    assert_eq!(run.code, 3, "{}", run.render());
    insta::assert_snapshot!(
        "segment_voucherify_example_run",
        crate::import::render(&run)
    );
    let summary = run.json();
    assert_eq!(summary["read"], 5);
    assert_eq!(summary["written"], 4);
    assert_eq!(
        summary["rejected"]["byReason"],
        json!({"missing user_id": 1})
    );
    assert_eq!(
        summary["warnings"],
        json!({"total": 2, "byReason": {"birthdate is not an ISO 8601 date (YYYY-MM-DD); set to null": 2}})
    );
    let rejects = jsonl(&f.read("profiles-without-user_id.jsonl"));
    assert_eq!(rejects.len(), 1, "{rejects:?}");
    assert_eq!(rejects[0]["reason"], "missing user_id");
    assert_eq!(rejects[0]["offset"], 2);
    assert_eq!(rejects[0]["record"]["lookup"], "segment_id:s3");
    assert_eq!(
        rejects[0]["record"]["problem"],
        "profile segment_id:s3 has no user_id"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_example_readmes_deliberate_failure_stops_with_its_resume_command_which_finishes_the_job(
) {
    let seg_server = crate::support::mock::server().await;
    let vf_server = crate::support::mock::server().await;
    // Read by the failed run and again by the resume (the batch was never
    // committed, so the resume starts at the same listing page).
    Mock::given(method("GET"))
        .and(path(format!(
            "/v1/spaces/{SPACE}/collections/users/profiles"
        )))
        .and(query_param("limit", "100"))
        .and(query_param("next", "0"))
        .and(header("Authorization", basic().as_str()))
        .respond_with(ok(json!({"data": [{"segment_id": "s1"}],
            "cursor": {"url": "/x", "has_more": false, "next": ""}})))
        .expect(2)
        .mount(&seg_server)
        .await;
    mount_profile(
        &seg_server,
        "segment_id:s1",
        json!({"name": "Ada", "plan": "pro"}),
        vec![ext_id("user_id", "u1")],
        2,
    )
    .await;
    nothing_else(&seg_server).await;
    let customer = json!([{"source_id": "u1", "name": "Ada", "metadata": {"plan": "pro"}}]);
    Mock::given(method("POST"))
        .and(path("/v1/customers/bulk/async"))
        .and(header("X-App-Token", "wrong"))
        .once(
            ResponseTemplate::new(401).set_body_json(
                json!({"code": 401, "key": "unauthorized", "message": "Unauthorized"}),
            ),
            &vf_server,
        )
        .await;
    vfy::vf("POST", "/v1/customers/bulk/async")
        .and(body_json(customer))
        .once(ok(json!({"async_action_id": "aa_1"})), &vf_server)
        .await;
    vfy::vf("GET", "/v1/async-actions/aa_1")
        .once(ok(json!({"id": "aa_1", "type": "CUSTOMERS.BULK_UPDATE", "status": "DONE", "operation_status": "SUCCESS",
            "result": {"done_count": 1, "failed_count": 0, "errors": []}, "progress": 100, "object": "async_action"})), &vf_server)
        .await;
    nothing_else(&vf_server).await;

    let f = Folder::new();
    f.write("map.json", &shipped("map.json"));
    shipped_folder(
        &f,
        "segment",
        &seg_server.uri(),
        json!({}),
        &format!("SEGMENT_SPACE_ID={SPACE}\nSEGMENT_ACCESS_TOKEN={TOKEN}\n"),
    );
    let vf_env = |secret: &str| {
        format!(
            "VOUCHERIFY_APPLICATION_ID={}\nVOUCHERIFY_SECRET_KEY={secret}\n",
            vfy::APP_ID
        )
    };
    shipped_folder(
        &f,
        "voucherify",
        &vf_server.uri(),
        json!({"pollIntervalMs": 1}),
        &vf_env("wrong"),
    );
    let run = f.run_line("import --from segment --to voucherify --map map.json --rejects profiles-without-user_id.jsonl");
    no_canary(&run);
    vfy::no_canary(&run);
    assert_eq!(run.code, 1, "{}", run.render());
    insta::assert_snapshot!(
        "segment_voucherify_example_wrong_key",
        crate::import::render(&run)
    );
    // The README's resume command, word for word.
    let resume = "ferry import --from segment --to voucherify --map map.json --rejects profiles-without-user_id.jsonl --resume";
    assert!(
        run.stderr.contains(&format!("resume with: {resume}")),
        "{}",
        run.render()
    );
    f.write("voucherify/.env", &vf_env(vfy::SECRET));
    let words: Vec<&str> = resume.split(' ').skip(1).collect();
    let run = f.run(&words);
    no_canary(&run);
    let summary = run.ok_json();
    assert_eq!(summary["written"], 1, "{}", run.render());
    assert_eq!(summary["endOfSource"], true);
}
