//! Numbers from files and flags are range-checked before any work: a value
//! the code cannot use (a timeout of 1e20 seconds, a rate of 1e-300 requests
//! per second) is a configuration error naming the file, the key and the
//! allowed range, exit 2, never a panic (exit 101) or a silent clamp.

use std::time::Duration;

use serde_json::{json, Value};

use crate::snap;
use crate::support::{exit_2_each, Folder, Run};

/// An http connector folder with `account_extra` in account.json and
/// `manifest_extra` merged into a one-action manifest. Nothing listens on
/// the base URL: every case here must fail before a request is made.
fn folder(account_extra: &str, manifest_extra: Value) -> Folder {
    let f = Folder::new();
    let mut manifest = json!({"actions": {"get": {"path": "/items/{id}"}}});
    for (k, v) in manifest_extra.as_object().expect("an object") {
        match (k.as_str(), v.as_object()) {
            // Actions are added to get, so the command stays one the
            // connector has and only the number is wrong.
            ("actions", Some(actions)) => {
                for (name, a) in actions {
                    manifest["actions"][name] = a.clone();
                }
            }
            _ => manifest[k] = v.clone(),
        }
    }
    f.write("connector.json", &manifest.to_string());
    f.write(
        "account.json",
        &format!(r#"{{"connector": "http", "baseUrl": "http://127.0.0.1:9"{account_extra}}}"#),
    );
    f
}

/// `ferry get --id a`, bounded: a number accepted unchecked (a rate of
/// 1e-300) would make its retries wait for ever.
fn get(f: &Folder) -> Run {
    f.run_cmd(
        f.ferry()
            .args(["get", "--id", "a"])
            .timeout(Duration::from_secs(10)),
    )
}

#[test]
fn account_engine_numbers_out_of_range_are_config_errors() {
    let cases = [
        ("timeout_1e20", r#", "timeoutSecs": 1e20"#),
        (
            "timeout_total_1e300",
            r#", "timeoutSecs": {"total": 1e300}"#,
        ),
        (
            "timeout_connect_negative",
            r#", "timeoutSecs": {"connect": -1}"#,
        ),
        ("rps_tiny", r#", "rateLimit": {"rps": 1e-300}"#),
        ("burst_huge", r#", "rateLimit": {"burst": 1e20}"#),
        (
            "max_in_flight_huge",
            r#", "rateLimit": {"default": {"maxInFlight": 1e300}}"#,
        ),
        ("max_attempts_zero", r#", "retry": {"maxAttempts": 0}"#),
        ("max_wait_huge", r#", "retry": {"maxWaitSecs": 1e20}"#),
        ("base_delay_fraction", r#", "retry": {"baseDelayMs": 2.5}"#),
    ];
    let mut runs = Vec::new();
    for (name, extra) in cases {
        let run = get(&folder(extra, json!({})));
        runs.push((name, run));
    }
    exit_2_each(&runs);
    for (name, run) in runs {
        snap!(format!("numbers_account_{name}"), run);
    }
}

#[test]
fn manifest_numbers_out_of_range_are_manifest_errors() {
    let cases = [
        ("rps_huge", json!({"rateLimit": {"rps": 1e300}})),
        (
            "retry_attempts_huge",
            json!({"retry": {"maxAttempts": 1e20}}),
        ),
        (
            "group_rps_tiny",
            json!({"groups": [{"name": "g", "path": "/items/*", "rps": 1e-300}]}),
        ),
        (
            "group_in_flight_huge",
            json!({"groups": [{"name": "g", "path": "/items/*", "rps": 1, "maxInFlight": 4_000_000_000u64}]}),
        ),
        (
            "page_size_huge",
            json!({"actions": {"list": {"path": "/items", "pagination": {"type": "offset", "pageSize": 1_000_000_000u64, "stop": {"emptyPage": true}}}}}),
        ),
        (
            "first_page_huge",
            json!({"actions": {"list": {"path": "/items", "pagination": {"type": "page", "firstPage": u64::MAX, "stop": {"emptyPage": true}}}}}),
        ),
        (
            "batch_size_huge",
            json!({"actions": {"bulk": {"path": "/items/bulk", "results": "/r", "batchSize": 1_000_000u64}}}),
        ),
    ];
    let mut runs = Vec::new();
    for (name, manifest) in cases {
        let run = get(&folder("", manifest));
        runs.push((name, run));
    }
    exit_2_each(&runs);
    for (name, run) in runs {
        snap!(format!("numbers_manifest_{name}"), run);
    }
}

#[test]
fn sandbox_flags_out_of_range_fail_before_the_url_is_printed() {
    let f = Folder::new();
    let cases: [(&str, &[&str]); 5] = [
        ("rate_limit_tiny", &["--rate-limit", "1e-300"]),
        ("rate_limit_nan", &["--rate-limit", "NaN"]),
        ("fail_rate_above_one", &["--fail-rate", "1.5"]),
        ("latency_huge", &["--latency-ms", "18446744073709551615"]),
        ("records_huge", &["--records", "18446744073709551615"]),
    ];
    let mut runs = Vec::new();
    for (name, flags) in cases {
        let mut args = vec!["sandbox", "--port", "0"];
        args.extend_from_slice(flags);
        // A flag the sandbox accepted would serve until stopped: bound it.
        let run = f.run_cmd(f.ferry().args(&args).timeout(Duration::from_secs(10)));
        runs.push((name, run));
    }
    exit_2_each(&runs);
    for (name, run) in runs {
        snap!(format!("numbers_sandbox_{name}"), run);
    }
}

#[test]
fn import_concurrency_out_of_range_is_a_usage_error() {
    let f = Folder::new();
    f.write("in.jsonl", "{\"id\": \"a\"}\n");
    let run = f.run_line(
        "import --from jsonl:in.jsonl --to jsonl:out.jsonl --concurrency 18446744073709551615",
    );
    exit_2_each(&[("concurrency_huge", run)]);
    assert!(!f.exists("out.jsonl"));
}

#[test]
fn polling_options_out_of_range_are_config_errors() {
    let cases = [
        (
            "klaviyo_poll_interval_huge",
            r#"{"connector": "klaviyo", "apiKey": "pk_x", "baseUrl": "http://127.0.0.1:9", "pollIntervalMs": 18446744073709551615}"#,
        ),
        (
            "voucherify_max_polls_zero",
            r#"{"connector": "voucherify", "applicationId": "a", "secretKey": "s", "baseUrl": "http://127.0.0.1:9", "maxPolls": 0}"#,
        ),
    ];
    let mut runs = Vec::new();
    for (name, account) in cases {
        let f = Folder::new();
        f.write("account.json", account);
        runs.push((name, get(&f)));
    }
    exit_2_each(&runs);
    for (name, run) in runs {
        snap!(format!("numbers_account_{name}"), run);
    }
}
