//! `ferry sandbox` as a child process, driven by the shipped
//! examples/sandbox connector folder: every action, paging to the end,
//! deletions in getupdates, a token, 429s and injected 500s.

use std::process::Command;

use crate::support::{import_parsed, import_passing_through, Folder, Sandbox};

#[test]
fn every_action_works_against_the_sandbox() {
    let sb = Sandbox::start(&["--port", "0", "--records", "250"]);
    let f = sb.folder("");
    assert_eq!(f.run(&["check"]).ok_json()["ok"], true);
    let got = f.run(&["get", "--id", "cus_0000007"]).ok_json();
    assert_eq!(got["id"], "cus_0000007");
    assert!(got["email"].as_str().unwrap().ends_with("@example.com"));

    let inserted = f
        .run(&[
            "insert",
            "--value",
            r#"{"email": "ada@example.com", "name": "Ada"}"#,
        ])
        .ok_json();
    let new_id = inserted["id"].as_str().expect("an id").to_string();
    assert_eq!(inserted["record"]["email"], "ada@example.com");

    f.run(&["patch", "--id", &new_id, "--value", r#"{"name": "Ada L."}"#])
        .ok_json();
    assert_eq!(f.run(&["get", "--id", &new_id]).ok_json()["name"], "Ada L.");

    f.run(&["delete", "--id", "cus_0000003"]).ok_json();
    let gone = f.run(&["get", "--id", "cus_0000003"]);
    assert_eq!(gone.code, 1, "{}", gone.render());
    assert!(
        gone.stderr
            .contains("404 Not Found: customer cus_0000003 not found"),
        "{}",
        gone.render()
    );

    // An initial sync pages (100 a page) to the real end: 250 generated
    // records, the new one, and the deletion.
    let all = f.run(&["getupdates"]).ok_json();
    let entries = all["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 251, "{}", entries.len());
    let ids: std::collections::HashSet<&str> =
        entries.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 251, "an entry came twice");
    let deleted: Vec<_> = entries.iter().filter(|e| e["type"] == "delete").collect();
    assert_eq!(deleted.len(), 1);
    assert_eq!(deleted[0]["id"], "cus_0000003");
    let next = all["nextSync"].as_str().unwrap().to_string();

    // Nothing changed since: empty. Then one change shows up.
    assert_eq!(
        f.run(&["getupdates", "--last-sync", &next]).ok_json()["entries"],
        serde_json::json!([])
    );
    f.run(&[
        "patch",
        "--id",
        "cus_0000010",
        "--value",
        r#"{"plan": "team"}"#,
    ])
    .ok_json();
    let since = f.run(&["getupdates", "--last-sync", &next]).ok_json();
    assert_eq!(since["entries"].as_array().unwrap().len(), 1);
    assert_eq!(since["entries"][0]["value"]["plan"], "team");

    // --limit stops mid-page and nextSync continues exactly there.
    let first = f
        .run(&["getupdates", "--last-sync", "0", "--limit", "5"])
        .ok_json();
    assert_eq!(first["entries"].as_array().unwrap().len(), 5);
    // cus_0000003 was deleted, so its change moved to the end: seqs 1, 2, 4, 5, 6.
    assert_eq!(first["nextSync"], "6");
    let rest = f
        .run(&["getupdates", "--last-sync", "6", "--limit", "2"])
        .ok_json();
    assert_eq!(rest["entries"][0]["id"], "cus_0000007");
}

#[test]
fn the_sandbox_token_is_required_and_accepted() {
    let sb = Sandbox::start(&["--token", "sandbox-token-123"]);
    let f = sb.folder("");
    let denied = f.run(&["check"]);
    assert_eq!(denied.code, 1, "{}", denied.render());
    assert!(
        denied
            .stderr
            .contains("401 Unauthorized: missing or invalid bearer token"),
        "{}",
        denied.render()
    );
    // The hint names the auth the manifest uses: none yet.
    insta::assert_snapshot!("sandbox_401_without_auth", denied.render());

    let f = sb.folder(r#", "token": "${SANDBOX_TOKEN}""#);
    let manifest = f.read("connector.json").replace(
        r#""auth": {"type": "none"}"#,
        r#""auth": {"type": "bearer"}"#,
    );
    f.write("connector.json", &manifest);
    f.write(".env", "SANDBOX_TOKEN=a-wrong-token\n");
    let wrong = f.run(&["check"]);
    assert_eq!(wrong.code, 1, "{}", wrong.render());
    wrong.hides(&["a-wrong-token"], "the token");
    insta::assert_snapshot!("sandbox_401_with_bearer", wrong.render());
    f.write(".env", "SANDBOX_TOKEN=sandbox-token-123\n");
    let run = f.run(&["-vv", "get", "--id", "cus_0000001"]);
    assert_eq!(run.code, 0, "{}", run.render());
    assert!(
        run.stderr.contains("Authorization: ***"),
        "{}",
        run.render()
    );
    assert!(!run.stderr.contains("sandbox-token-123") && !run.stdout.contains("sandbox-token-123"));
}

#[test]
fn rate_limits_and_failures_of_the_sandbox_are_retried_through() {
    // 2 requests per second on the server, a faster client: the client
    // meets 429s with Retry-After and must wait them out.
    let sb = Sandbox::start(&["--records", "40", "--rate-limit", "2", "--fail-rate", "0.2"]);
    let f = sb.folder(r#", "rateLimit": {"rps": 50, "burst": 50}, "retry": {"baseDelayMs": 10, "maxAttempts": 10}"#);
    let manifest = f
        .read("connector.json")
        .replace(r#""pageSize": 1000"#, r#""pageSize": 10"#);
    f.write("connector.json", &manifest);
    let run = f.run(&["-v", "getupdates"]);
    let out = run.ok_json();
    assert_eq!(out["entries"].as_array().unwrap().len(), 40);
    assert!(
        run.stderr.contains("-> 429"),
        "expected the sandbox to rate limit:\n{}",
        run.stderr
    );
}

#[test]
fn a_million_records_start_at_once() {
    let started = std::time::Instant::now();
    let sb = Sandbox::start(&["--records", "1000000"]);
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    let f = sb.folder("");
    assert_eq!(
        f.run(&["get", "--id", "cus_1000000"]).ok_json()["id"],
        "cus_1000000"
    );
}

#[test]
fn offset_paging_through_the_sandbox_reaches_the_total() {
    let sb = Sandbox::start(&["--records", "230"]);
    let f = sb.folder("");
    let mut manifest: serde_json::Value = serde_json::from_str(&f.read("connector.json")).unwrap();
    manifest["actions"]["getupdates"] = serde_json::json!({
        "path": "/customers",
        "records": "/data",
        "pagination": {"type": "offset", "pageSize": 100, "stop": {"total": "/total"}}
    });
    f.write("connector.json", &manifest.to_string());
    let run = f.run(&["-v", "getupdates"]);
    assert_eq!(run.ok_json()["entries"].as_array().unwrap().len(), 230);
    // Three pages: 100, 100, 30, and no fourth request.
    assert_eq!(run.stderr.matches("-> 200").count(), 3, "{}", run.stderr);
}

/// The sandbox served in-process, for the routes no connector action uses.
async fn serve(config: ferry::sandbox::Config) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(ferry::sandbox::serve(
        listener,
        config,
        std::future::pending(),
    ));
    url
}

#[tokio::test]
async fn bulk_upsert_answers_one_result_per_record() {
    let url = serve(ferry::sandbox::Config {
        records: 10,
        ..Default::default()
    })
    .await;
    let client = reqwest::Client::new();
    let body = serde_json::json!({"records": [
        {"id": "cus_0000001", "email": "changed@example.com"},
        {"id": "cus_0000011", "email": "new@example.com"},
        {"email": "no-id@example.com"},
        {"id": "cus_0000002"},
    ]});
    let resp = client
        .post(format!("{url}/customers/bulk"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let out: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(
        out,
        serde_json::json!({"results": [
            {"index": 0, "id": "cus_0000001", "status": "updated"},
            {"index": 1, "id": "cus_0000011", "status": "created"},
            {"index": 2, "id": null, "status": "rejected", "error": "id is required"},
            {"index": 3, "id": "cus_0000002", "status": "rejected", "error": "email is required"},
        ]})
    );
    let one: serde_json::Value = client
        .get(format!("{url}/customers/cus_0000001"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(one["email"], "changed@example.com");
    let page: serde_json::Value = client
        .get(format!("{url}/customers?offset=9&limit=5"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["total"], 11);
    assert_eq!(page["data"].as_array().unwrap().len(), 2);
    assert_eq!(page["has_more"], false);
}

#[tokio::test]
async fn injected_failures_are_seeded_and_429s_carry_retry_after() {
    let config = ferry::sandbox::Config {
        records: 5,
        fail_rate: 0.5,
        seed: 7,
        ..Default::default()
    };
    let statuses = |url: String| async move {
        let client = reqwest::Client::new();
        let mut out = Vec::new();
        for _ in 0..20 {
            out.push(
                client
                    .get(format!("{url}/customers/cus_0000001"))
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16(),
            );
        }
        out
    };
    let first = statuses(serve(config.clone()).await).await;
    let second = statuses(serve(config).await).await;
    assert_eq!(first, second, "the same seed fails the same requests");
    assert!(first.contains(&500) && first.contains(&200), "{first:?}");

    let url = serve(ferry::sandbox::Config {
        records: 5,
        rate_limit: Some(1.0),
        ..Default::default()
    })
    .await;
    let client = reqwest::Client::new();
    assert_eq!(
        client
            .get(format!("{url}/customers"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let limited = client.get(format!("{url}/customers")).send().await.unwrap();
    assert_eq!(limited.status(), 429);
    assert_eq!(limited.headers()["retry-after"], "1");
}

#[tokio::test]
async fn latency_delays_every_answer() {
    let url = serve(ferry::sandbox::Config {
        records: 5,
        latency: std::time::Duration::from_millis(300),
        ..Default::default()
    })
    .await;
    let started = std::time::Instant::now();
    let status = reqwest::get(format!("{url}/customers/cus_0000001"))
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
    assert!(started.elapsed() >= std::time::Duration::from_millis(300));
}

#[cfg(unix)]
#[test]
fn sigterm_stops_the_sandbox_cleanly() {
    let mut sb = Sandbox::start(&[]);
    let pid = sb.child.id().to_string();
    let status = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("run kill");
    assert!(status.success());
    let started = std::time::Instant::now();
    loop {
        if let Some(exit) = sb.child.try_wait().expect("wait") {
            assert!(exit.success(), "exit status {exit:?}");
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "still running after SIGTERM"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn a_port_in_use_is_a_usage_error_that_says_what_to_do() {
    let s = Sandbox::start(&["--port", "0"]);
    let port = s.url.rsplit(':').next().unwrap().to_string();
    let f = Folder::new();
    let run = f.run(&["sandbox", "--port", &port]);
    assert_eq!(run.code, 2, "{}", run.render());
    assert!(
        run.stderr
            .contains(&format!("error: port {port} on 127.0.0.1 is in use")),
        "{}",
        run.render()
    );
    assert!(
        run.stderr.contains("hint: pick another with --port N"),
        "{}",
        run.render()
    );
}

/// From the sandbox into another sandbox's bulk endpoint, records pass
/// through as the source's JSON text, and the destination ends with the
/// same records as a run that parses every one (`--id-field id` changes
/// nothing but asks for the parsed path).
#[test]
fn a_bulk_import_passes_records_through_and_matches_a_parsed_run() {
    let src = Sandbox::start(&["--records", "250"]);
    let raw_dst = Sandbox::start(&["--records", "0"]);
    let parsed_dst = Sandbox::start(&["--records", "0"]);
    let f = src.folder("");
    let to = |sb: &Sandbox, dir: &str| {
        f.write(&format!("{dir}/connector.json"), &f.read("connector.json"));
        f.write(
            &format!("{dir}/account.json"),
            &format!(r#"{{"connector": "http", "baseUrl": "{}"}}"#, sb.url),
        );
    };
    to(&raw_dst, "raw");
    to(&parsed_dst, "parsed");
    let raw = import_passing_through(&f, &["--from", ".", "--to", "raw", "--batch-size", "100"]);
    assert_eq!(raw.code, 0, "{}", raw.render());
    assert_eq!(raw.json()["written"], 250);
    let parsed = import_parsed(
        &f,
        &["--from", ".", "--to", "parsed", "--batch-size", "100"],
    );
    assert_eq!(parsed.code, 0, "{}", parsed.render());
    let got = stored(&raw_dst);
    assert_eq!(got.as_array().map(Vec::len), Some(250));
    assert_eq!(got, stored(&parsed_dst));
}

/// A sandbox's records, without the fields it sets itself on a write.
fn stored(sb: &Sandbox) -> serde_json::Value {
    let mut page = sb.get("/customers?offset=0&limit=1000")["data"].clone();
    for r in page.as_array_mut().unwrap() {
        for volatile in ["seq", "updated_at", "created_at"] {
            r.as_object_mut().unwrap().remove(volatile);
        }
    }
    page
}

/// From a JSON lines file into a bulk endpoint, the lines pass through as
/// text and the destination ends as after a parsed run.
#[test]
fn a_jsonl_file_passes_through_into_a_bulk_endpoint() {
    let src = Sandbox::start(&["--records", "250"]);
    let raw_dst = Sandbox::start(&["--records", "0"]);
    let parsed_dst = Sandbox::start(&["--records", "0"]);
    let f = raw_dst.folder("");
    let lines: Vec<String> = src.get("/customers?offset=0&limit=1000")["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.to_string())
        .collect();
    f.write("in.jsonl", &(lines.join("\n") + "\n"));
    f.write("parsed/connector.json", &f.read("connector.json"));
    f.write(
        "parsed/account.json",
        &format!(
            r#"{{"connector": "http", "baseUrl": "{}"}}"#,
            parsed_dst.url
        ),
    );
    let args = |to| {
        [
            "--from",
            "jsonl:in.jsonl",
            "--to",
            to,
            "--batch-size",
            "100",
        ]
    };
    for run in [
        import_passing_through(&f, &args(".")),
        import_parsed(&f, &args("parsed")),
    ] {
        assert_eq!(run.code, 0, "{}", run.render());
        assert_eq!(run.json()["written"], 250, "{}", run.render());
    }
    let got = stored(&raw_dst);
    assert_eq!(got.as_array().map(Vec::len), Some(250));
    assert_eq!(got, stored(&parsed_dst));
}
