//! Manifest mistakes that used to pass validation and fail only at request
//! time (or never): each is a manifest error naming connector.json and the
//! JSON path, exit 2, before any request (nothing listens on the base URL).

use serde_json::{json, Value};

use crate::snap;
use crate::support::{exit_2_each, Folder};

fn run_with(manifest: Value) -> crate::support::Run {
    let f = Folder::new();
    f.write("connector.json", &manifest.to_string());
    f.write(
        "account.json",
        r#"{"connector": "http", "baseUrl": "http://127.0.0.1:9"}"#,
    );
    f.run_cmd(
        f.ferry()
            .args(["get", "--id", "a"])
            .timeout(std::time::Duration::from_secs(10)),
    )
}

#[test]
fn manifest_mistakes_are_errors_with_their_json_path() {
    let get = json!({"get": {"path": "/items/{id}"}});
    let group = |extra: Value| {
        let mut g = json!({"name": "g", "path": "/items/*", "rps": 5});
        for (k, v) in extra.as_object().unwrap() {
            g[k] = v.clone();
        }
        g
    };
    let cases = [
        (
            "group_method_unknown",
            json!({"groups": [group(json!({"methods": ["GET", "FETCH"]}))], "actions": get}),
        ),
        (
            "group_path_empty",
            json!({"groups": [group(json!({"path": ""}))], "actions": get}),
        ),
        (
            "group_names_duplicate",
            json!({"groups": [group(json!({})), group(json!({"path": "/other"}))], "actions": get}),
        ),
        (
            "path_placeholder_unclosed",
            json!({"actions": {"get": {"path": "/items/{id"}}}),
        ),
        (
            "path_placeholder_not_a_name",
            json!({"actions": {"get": {"path": "/items/{}"}}}),
        ),
        (
            "max_pages_zero",
            json!({"actions": {"get": {"path": "/items/{id}"}, "list": {"path": "/items", "pagination": {"type": "offset", "stop": {"maxPages": 0}}}}}),
        ),
        (
            "header_value_crlf",
            json!({"headers": {"X-Tenant": "acme\r\nX-Injected: 1"}, "actions": get}),
        ),
        (
            "action_header_value_lf",
            json!({"actions": {"get": {"path": "/items/{id}", "headers": {"X-Trace": "a\nb"}}}}),
        ),
    ];
    let mut runs = Vec::new();
    for (name, manifest) in cases {
        let run = run_with(manifest);
        runs.push((name, run));
    }
    exit_2_each(&runs);
    for (name, run) in runs {
        snap!(format!("manifest_{name}"), run);
    }
}
