//! Import and export as a person sees them on a terminal: the progress bar
//! shows an ETA where a total can be known (a file source, by its size) and
//! retries beside the count; a rate limit that holds a run back is named,
//! with the knob, on `-v` and once in the summary; and the shipped sandbox
//! manifest carries the sandbox's own limits.

use crate::support::{Folder, Sandbox};

#[test]
fn a_file_import_on_a_terminal_shows_an_eta() {
    let f = Folder::new();
    // Lines of one length, so the estimate from the file's size is exact.
    let lines: String = (0..60_000)
        .map(|i| format!("{{\"id\":\"c{i:06}\",\"email\":\"c{i:06}@example.com\"}}\n"))
        .collect();
    f.write("in.jsonl", &lines);
    let (code, screen) = crate::support::on_terminal_dialog(
        &f,
        "import --from jsonl:in.jsonl --to jsonl:out.jsonl --batch-size 500",
        &[],
    );
    assert_eq!(code, 0, "{screen}");
    assert!(screen.contains("/60000 records"), "{screen}");
    assert!(screen.contains("ETA"), "{screen}");
}

#[test]
fn retries_show_beside_the_count() {
    let sb = Sandbox::start(&[
        "--records",
        "120",
        "--fail-rate",
        "0.3",
        "--latency-ms",
        "150",
    ]);
    let f = sb.folder(r#", "retry": {"baseDelayMs": 1, "maxAttempts": 10}"#);
    let manifest = f
        .read("connector.json")
        .replace(r#""pageSize": 1000"#, r#""pageSize": 10"#);
    f.write("connector.json", &manifest);
    let (code, screen) = crate::support::on_terminal_dialog(
        &f,
        "import --from . --to jsonl:out.jsonl --batch-size 10",
        &[],
    );
    assert_eq!(code, 0, "{screen}");
    assert!(screen.contains(" retr"), "no retries on the bar:\n{screen}");
    assert_eq!(f.read("out.jsonl").lines().count(), 120);
}

#[test]
fn a_rate_limit_that_holds_an_import_back_is_named_once() {
    let sb = Sandbox::start(&["--records", "60"]);
    let f = sb.folder(r#", "rateLimit": {"rps": 2, "burst": 1}"#);
    let manifest = f
        .read("connector.json")
        .replace(r#""pageSize": 1000"#, r#""pageSize": 10"#);
    f.write("connector.json", &manifest);
    let (run, waits) =
        f.run_on_virtual_clock(&["-v", "import", "--from", ".", "--to", "jsonl:out.jsonl"]);
    assert_eq!(run.code, 0, "{}", run.render());
    assert!(!waits.of("slot").is_empty(), "the limiter waited");
    let holding =
        "the rate limit of group default (2 rps) is holding requests back; raise \"rateLimit\" in ";
    assert_eq!(run.stderr.matches(holding).count(), 1, "{}", run.stderr);
    let summary: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("requests waited "))
        .collect();
    assert_eq!(summary.len(), 1, "{}", run.stderr);
    insta::assert_snapshot!(
        "rate_limit_summary",
        crate::support::filter(summary[0], f.path())
    );
}

#[test]
fn the_sandbox_manifest_ships_the_sandbox_limits() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for file in [
        "templates/http/connector.json",
        "examples/sandbox/connector.json",
    ] {
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        let manifest: serde_json::Value = serde_json::from_str(&text).unwrap();
        // The sandbox limits nothing and pages up to 1000 records.
        assert!(
            manifest["rateLimit"]["rps"].as_f64().unwrap() >= 1000.0,
            "{file}"
        );
        for action in ["list", "getupdates"] {
            assert_eq!(
                manifest["actions"][action]["pagination"]["pageSize"], 1000,
                "{file} {action}"
            );
        }
        assert!(manifest.get("groups").is_none(), "{file}");
    }
}
