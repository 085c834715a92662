//! Ids in URL paths: every path placeholder is one percent-encoded segment
//! (`../admin` is sent as `..%2Fadmin`), an id of `.` or `..` (which every
//! URL parser resolves away, `%2E%2E` included) is refused before anything
//! is sent, and `-v` shows the URL exactly as the server received it. For
//! the http connector and the SaaS connectors whose routes hold ids.

use serde_json::json;
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::snap;
use crate::support::{Folder, MountOnce};

/// A server that fails the test (when dropped) on any request at all.
async fn refusing_server() -> MockServer {
    let s = crate::support::mock::server().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&s)
        .await;
    s
}

/// A server that answers one request, whatever it is, with 404.
async fn one_request_server() -> MockServer {
    let s = crate::support::mock::server().await;
    Mock::given(any())
        .once(ResponseTemplate::new(404).set_body_json(json!({})), &s)
        .await;
    s
}

/// The method and the path and query of the one request `s` received.
async fn received(s: &MockServer) -> (String, String) {
    let got = s.received_requests().await.expect("recording is on");
    assert_eq!(got.len(), 1, "{got:?}");
    let url = &got[0].url;
    let target = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    };
    (got[0].method.to_string(), target)
}

fn http_folder(base: &str) -> Folder {
    let f = Folder::new();
    f.write(
        "connector.json",
        &json!({"actions": {
            "get": {"path": "/items/{id}"},
            "patch": {"path": "/items/{id}"},
            "insert": {"path": "/items"},
            "delete": {"path": "/items/{id}"}
        }})
        .to_string(),
    );
    f.write(
        "account.json",
        &format!(r#"{{"connector": "http", "baseUrl": "{base}", "retry": {{"maxAttempts": 1}}}}"#),
    );
    f
}

/// Each connector's folder and the command that puts `--id` in a path.
fn connectors(base: &str) -> Vec<(&'static str, Folder, &'static str)> {
    vec![
        ("http", http_folder(base), "delete"),
        ("hubspot", crate::hubspot::folder(base), "delete"),
        ("intercom", crate::intercom::folder(base), "delete"),
        ("voucherify", crate::voucherify::folder(base), "delete"),
        ("klaviyo", crate::klaviyo::folder(base), "get"),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn dot_ids_are_refused_before_anything_is_sent() {
    let s = refusing_server().await;
    for (name, f, command) in connectors(&s.uri()) {
        for id in [".", ".."] {
            let run = f.run(&[command, "--id", id]);
            assert_eq!(run.code, 2, "{name} {command} --id {id}:\n{}", run.render());
            let label = if id == "." { "dot" } else { "dotdot" };
            snap!(format!("http_paths_{name}_{command}_{label}"), run);
        }
    }
    assert!(s.received_requests().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_id_with_a_slash_is_one_segment_and_shown_as_sent() {
    let expected = [
        ("http", "/items/..%2Fadmin"),
        ("hubspot", "/crm/v3/objects/contacts/..%2Fadmin"),
        ("intercom", "/contacts/..%2Fadmin"),
        ("voucherify", "/v1/customers/..%2Fadmin"),
        ("klaviyo", "/api/profiles/..%2Fadmin"),
    ];
    for (name, want) in expected {
        let s = one_request_server().await;
        let (_, f, command) = connectors(&s.uri())
            .into_iter()
            .find(|(n, _, _)| *n == name)
            .expect("a connector");
        let run = f.run(&["-v", command, "--id", "../admin"]);
        let (verb, got) = received(&s).await;
        assert!(got.starts_with(want), "{name} sent {got}, not {want}");
        // The -v line is the URL the server received, byte for byte.
        let shown = format!("{verb} {}{got} -> 404", s.uri());
        assert!(
            run.stderr.contains(&shown),
            "{name}: no {shown:?} in:\n{}",
            run.render()
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn dry_runs_show_the_url_that_would_be_sent() {
    let s = refusing_server().await;
    let f = crate::klaviyo::folder(&s.uri());
    let run = f.run(&[
        "patch",
        "--id",
        "../admin",
        "--value",
        r#"{"first_name": "Ada"}"#,
        "--dry-run",
    ]);
    assert_eq!(run.code, 0, "{}", run.render());
    let url = run.json()["requests"][0]["url"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(url.ends_with("/api/profiles/..%2Fadmin"), "{url}");
    let f = http_folder(&s.uri());
    snap!(
        "http_paths_http_patch_dry_run_dotdot",
        f.run(&["patch", "--id", "..", "--value", "{}", "--dry-run"])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_imported_record_with_a_dot_id_is_rejected_and_the_rest_written() {
    let s = crate::support::mock::server().await;
    for id in ["a", "b"] {
        Mock::given(wiremock::matchers::method("PATCH"))
            .and(wiremock::matchers::path(format!("/items/{id}")))
            .once(crate::support::ok(json!({"id": id})), &s)
            .await;
    }
    let f = http_folder(&s.uri());
    f.write(
        "in.jsonl",
        "{\"id\": \"a\"}\n{\"id\": \"..\"}\n{\"id\": \".\"}\n{\"id\": \"b\"}\n",
    );
    let run = f.run_line("import --from jsonl:in.jsonl --to . --rejects rejects.jsonl");
    assert_eq!(run.code, 3, "{}", run.render());
    let rejects = f.read("rejects.jsonl");
    assert_eq!(rejects.lines().count(), 2, "{rejects}");
    for line in rejects.lines() {
        assert!(line.contains("cannot be sent"), "{line}");
    }
    let paths: Vec<String> = s
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| r.url.path().to_string())
        .collect();
    assert_eq!(paths, ["/items/a", "/items/b"]);
}
