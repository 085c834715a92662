//! `--dry-run` on reads (`get`, `check`, `getupdates`), as xh's `--offline`:
//! the request that would go out, secrets redacted, and nothing sent. The
//! accounts point at a port where nothing listens, so a request that was
//! sent would fail the run.

use crate::support::{Folder, MountOnce};

/// The sandbox manifest with a bearer token, aimed at a closed port.
fn manifest_folder() -> Folder {
    let f = Folder::new();
    let manifest = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/sandbox/connector.json"),
    )
    .unwrap();
    let mut manifest: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    manifest["auth"] = serde_json::json!({"type": "bearer"});
    f.write("connector.json", &manifest.to_string());
    f.write(
        "account.json",
        r#"{"connector": "http", "baseUrl": "http://127.0.0.1:9", "token": "dry-canary-Tok"}"#,
    );
    f
}

#[test]
fn reads_print_their_request_and_send_nothing() {
    let f = manifest_folder();
    for (name, args) in [
        ("dry_get", &["get", "--id", "cus_0000001", "--dry-run"][..]),
        ("dry_check", &["check", "--dry-run"]),
        (
            "dry_getupdates",
            &["getupdates", "--last-sync", "7", "--dry-run"],
        ),
    ] {
        let run = f.run(args);
        run.hides(&["dry-canary-Tok"], "the token");
        insta::assert_snapshot!(name, run.render());
    }
}

#[test]
fn a_local_connector_sends_nothing_anyway() {
    let f = crate::errors::jsonl_folder();
    let run = f.run(&["get", "--id", "c1", "--dry-run"]);
    assert_eq!(
        run.ok_json(),
        serde_json::json!({"dryRun": true, "requests": []})
    );
}

/// `-vv` shows every header that goes on the wire, and `--dry-run` the
/// same list: each logged `> Name: value` line is a header the server got
/// (secrets aside), and what ferry adds (User-Agent, Accept, the body's
/// Content-Type) is among them.
#[tokio::test(flavor = "multi_thread")]
async fn verbose_and_dry_run_headers_are_the_ones_sent() {
    use wiremock::matchers::{header, method, path};
    let s = crate::support::mock::server().await;
    wiremock::Mock::given(method("POST"))
        .and(path("/customers"))
        .and(header(
            "user-agent",
            concat!("ferry/", env!("CARGO_PKG_VERSION")),
        ))
        .and(header("content-type", "application/json"))
        .once(crate::support::ok(serde_json::json!({"id": "c9"})), &s)
        .await;
    let f = manifest_folder();
    f.write(
        "account.json",
        &format!(
            r#"{{"connector": "http", "baseUrl": "{}", "token": "dry-canary-Tok"}}"#,
            s.uri()
        ),
    );
    let insert = ["insert", "--value", r#"{"email": "a@example.com"}"#];
    let run = f.run(&[&["-vv"][..], &insert].concat());
    assert_eq!(run.code, 0, "{}", run.render());
    run.hides(&["dry-canary-Tok"], "the token");
    let received = s.received_requests().await.expect("recorded requests");
    s.verify().await;
    let sent = &received[0].headers;
    let logged: Vec<(String, String)> = run
        .stderr
        .lines()
        .filter_map(|l| l.strip_prefix("> ")?.split_once(": "))
        .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
        .collect();
    for name in ["user-agent", "accept", "content-type", "authorization"] {
        assert!(
            logged.iter().any(|(k, _)| k == name),
            "-vv shows {name}:\n{}",
            run.stderr
        );
    }
    for (name, value) in &logged {
        let got = sent
            .get(name.as_str())
            .unwrap_or_else(|| panic!("{name} was logged, not sent"));
        if value != "***" {
            assert_eq!(got.to_str().unwrap(), value, "{name}");
        }
    }
    // The dry run lists the same headers.
    let dry = f.run(&[&insert[..], &["--dry-run"]].concat()).ok_json();
    let previewed: Vec<String> = dry["requests"][0]["headers"]
        .as_object()
        .expect("headers")
        .keys()
        .map(|k| k.to_ascii_lowercase())
        .collect();
    let mut logged_names: Vec<String> = logged.into_iter().map(|(k, _)| k).collect();
    logged_names.sort();
    let mut previewed = previewed;
    previewed.sort();
    assert_eq!(previewed, logged_names);
}
