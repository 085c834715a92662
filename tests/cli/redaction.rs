//! A secret with URL-special characters is masked in every form it takes on
//! the way out: raw, percent-encoded (`%2B`, `%2F`, `%3D`, hex in either
//! case, a space as `%20` or `+`), JSON-escaped, and the base64 of a Basic
//! credential a server echoes back. Through errors, `-v`, `-vv`, `--dry-run`
//! and a recorded cassette, for an API key in the query, a `{token}` in a
//! path, an OAuth2 client secret and a basic-auth password.

use serde_json::{json, Value};
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::support::{Folder, MountOnce};

/// The canary: `+`, `/`, `=`, a space and quotes, which every encoding changes.
const SECRET: &str = "A+b/c== \"q\"";

/// Every spelling of [`SECRET`] that must not appear; with `basic`, the
/// Basic credential too (only a basic-auth account sends one).
fn forms(basic: bool) -> Vec<String> {
    let mut forms = vec![
        SECRET.to_string(),
        // A path segment or query value, hex in either case.
        "A%2Bb%2Fc%3D%3D%20%22q%22".to_string(),
        "A%2bb%2fc%3d%3d%20%22q%22".to_string(),
        // A form value: the space as +.
        "A%2Bb%2Fc%3D%3D+%22q%22".to_string(),
        // What a URL parser makes of it raw.
        "A+b/c==%20%22q%22".to_string(),
        // JSON-escaped, with and without an escaped /.
        r#"A+b/c== \"q\""#.to_string(),
        r#"A+b\/c== \"q\""#.to_string(),
    ];
    if basic {
        // base64 of "u:A+b/c== \"q\"", the Basic credential.
        forms.push(base64_basic());
    }
    forms
}

fn base64_basic() -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(format!("u:{SECRET}"))
}

/// A folder for the http connector with `manifest` and the canary in .env.
fn folder(base: &str, manifest: Value, option: &str) -> Folder {
    let f = Folder::new();
    f.write("connector.json", &manifest.to_string());
    f.write(
        "account.json",
        &format!(
            r#"{{"connector": "http", "baseUrl": "{base}", "username": "u", "clientId": "id", "{option}": "${{CANARY}}", "retry": {{"maxAttempts": 1}}}}"#
        ),
    );
    f.write(".env", &format!("CANARY='{SECRET}'\n"));
    f
}

/// Fail if any form of the canary is in `text`.
fn clean(text: &str, what: &str) {
    for form in forms(true) {
        assert!(!text.contains(&form), "{what} shows {form:?}:\n{text}");
    }
}

/// A 401 whose body echoes every form of the secret back, as servers do.
fn echo(basic: bool) -> ResponseTemplate {
    let forms = forms(basic).join(" | ");
    ResponseTemplate::new(401)
        .set_body_json(json!({"message": format!("invalid credentials: {forms}")}))
}

/// Run `args` with -vv and --record, and check stdout, stderr and the cassette.
fn check(f: &Folder, args: &[&str], what: &str) {
    let mut all = vec!["-vv"];
    all.extend_from_slice(args);
    all.push("--record");
    let run = f.run(&all);
    assert_eq!(run.code, 1, "{what}:\n{}", run.render());
    clean(&run.render(), what);
    let cassette = std::fs::read_dir(f.join("cassettes"))
        .expect("a cassette was recorded")
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(cassette.contains("invalid credentials"), "{cassette}");
    clean(&cassette, &format!("{what}: the cassette"));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_api_key_in_the_query_is_masked_in_every_form() {
    let s = crate::support::mock::server().await;
    Mock::given(method("GET"))
        .and(path("/items/a"))
        .once(echo(false), &s)
        .await;
    // "code" is not a credential by its name: only the value says so.
    let manifest = json!({"auth": {"type": "apiKey", "in": "query", "name": "code"},
                          "actions": {"get": {"path": "/items/{id}"}, "insert": {"path": "/items"}}});
    let f = folder(&s.uri(), manifest, "apiKey");
    check(&f, &["get", "--id", "a"], "apiKey in the query");
    let dry = f.run(&["insert", "--value", "{}", "--dry-run"]);
    assert_eq!(dry.code, 0, "{}", dry.render());
    clean(&dry.render(), "--dry-run");
    crate::snap!("redaction_api_key_in_the_query_dry_run", dry);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_in_the_path_is_masked_in_every_form() {
    let s = crate::support::mock::server().await;
    Mock::given(method("GET"))
        .and(path("/t/A%2Bb%2Fc%3D%3D%20%22q%22/items/a"))
        .once(echo(false), &s)
        .await;
    let manifest = json!({"actions": {"get": {"path": "/t/{token}/items/{id}"}, "delete": {"path": "/t/{token}/items/{id}"}}});
    let f = folder(&s.uri(), manifest, "token");
    check(&f, &["get", "--id", "a"], "{token} in a path");
    let dry = f.run(&["delete", "--id", "a", "--dry-run"]);
    assert_eq!(dry.code, 0, "{}", dry.render());
    clean(&dry.render(), "--dry-run");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_oauth2_client_secret_is_masked_in_every_form() {
    let s = crate::support::mock::server().await;
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .once(echo(false), &s)
        .await;
    let manifest = json!({"auth": {"type": "oauth2", "tokenUrl": "/oauth/token"},
                          "actions": {"get": {"path": "/items/{id}"}}});
    let f = folder(&s.uri(), manifest, "clientSecret");
    check(&f, &["get", "--id", "a"], "an oauth2 client secret");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_basic_credential_echoed_back_is_masked() {
    let s = crate::support::mock::server().await;
    Mock::given(method("GET"))
        .and(path("/items/a"))
        .once(echo(true), &s)
        .await;
    let manifest = json!({"auth": {"type": "basic"}, "actions": {"get": {"path": "/items/{id}"}}});
    let f = folder(&s.uri(), manifest, "password");
    check(&f, &["get", "--id", "a"], "a basic-auth password");
}
