//! `--dry-run` on reads (`get`, `check`, `getupdates`), as xh's `--offline`:
//! the request that would go out, secrets redacted, and nothing sent. The
//! accounts point at a port where nothing listens, so a request that was
//! sent would fail the run.

use crate::support::Folder;

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
