//! `ferry init`: scaffolding without a terminal (no prompt, ever), and on
//! a pseudo-terminal: the questions, the checks of each answer, Ctrl-C.

use crate::snap;
use crate::support::Folder;

#[test]
fn init_with_yes_writes_a_folder_that_runs_for_every_local_connector() {
    for connector in ["sqlite", "csv", "jsonl"] {
        let f = Folder::new();
        let run = f.run(&["init", "conn", "--connector", connector, "--yes"]);
        snap!(format!("init_yes_{connector}"), run);
        for file in [
            "account.json",
            "in.json",
            ".env.example",
            ".gitignore",
            "README.md",
        ] {
            assert!(f.exists(&format!("conn/{file}")), "{connector}: {file}");
        }
        // The scaffold's in.json drives every action end to end.
        let c = &["-C", "conn"];
        for action in ["check", "insert", "get", "patch", "getupdates", "delete"] {
            let run = f.run(&[c[0], c[1], action]);
            assert_eq!(run.code, 0, "{connector} {action}:\n{}", run.render());
        }
    }
}

#[test]
fn init_without_terminal_names_the_flag_for_a_missing_answer() {
    let f = Folder::new();
    snap!(
        "init_missing_answer",
        f.run(&["init", "conn", "--connector", "csv"])
    );
    assert!(!f.exists("conn/account.json"));
}

#[test]
fn init_keeps_existing_files_unless_forced() {
    let f = Folder::new();
    f.write("conn/README.md", "# my notes\n");
    let run = f.run_line("init conn --connector sqlite --set path=x.db");
    snap!("init_keeps_existing", run);
    assert_eq!(f.read("conn/README.md"), "# my notes\n");
    assert!(f.read("conn/account.json").contains("x.db"));

    let run = f.run_line("init conn --connector sqlite --set path=y.db --force");
    assert_eq!(run.code, 0, "{}", run.render());
    assert!(f.read("conn/account.json").contains("y.db"));
    assert!(f.read("conn/README.md").contains("SQLite"));
}

#[test]
fn init_over_a_connector_folder_writes_nothing_and_says_so() {
    let f = Folder::new();
    f.run_line("init conn --yes").ok_json();
    let before: Vec<(String, String)> = ["account.json", "in.json", "README.md", "connector.json"]
        .iter()
        .map(|name| (name.to_string(), f.read(&format!("conn/{name}"))))
        .collect();
    let run = f.run_line("init conn --connector sqlite --set path=x.db");
    snap!("init_over_a_connector_folder", run);
    snap!(
        "init_over_a_connector_folder_no_connector",
        f.run_line("init conn --yes")
    );
    snap!(
        "init_over_the_current_folder",
        f.run_line("-C conn init --connector csv --yes")
    );
    for (name, content) in &before {
        assert_eq!(&f.read(&format!("conn/{name}")), content, "{name} changed");
    }
    assert!(!f.exists("conn/x.db"));

    // --force replaces the scaffold with the other connector's.
    let run = f.run_line("init conn --connector sqlite --set path=x.db --force");
    assert_eq!(run.code, 0, "{}", run.render());
    assert!(f.read("conn/account.json").contains("\"sqlite\""));
}

#[test]
fn init_types_set_values_by_the_option_type() {
    let f = Folder::new();
    let run = f.run(&[
        "init",
        "vf",
        "--connector",
        "voucherify",
        "--set",
        "applicationId=app",
        "--set",
        "secretKey=key",
        "--set",
        r#"rateLimit={"rps": 5}"#,
        "--set",
        "timeoutSecs=30",
        "--set",
        "maxPolls=12",
    ]);
    assert_eq!(run.code, 0, "{}", run.render());
    let account: serde_json::Value = serde_json::from_str(&f.read("vf/account.json")).unwrap();
    assert_eq!(account["rateLimit"], serde_json::json!({"rps": 5}));
    assert_eq!(account["timeoutSecs"], 30);
    assert_eq!(account["maxPolls"], 12);
    snap!(
        "init_set_object_not_an_object",
        f.run_line("init v2 --connector voucherify --set rateLimit=5 --yes")
    );
    snap!(
        "init_set_integer_not_a_number",
        f.run_line("init v2 --connector voucherify --set maxPolls=many --yes")
    );
    assert!(!f.exists("v2"));
}

#[test]
fn init_refuses_unknown_connectors_and_options() {
    let f = Folder::new();
    snap!(
        "init_unknown_connector",
        f.run(&["init", "conn", "--connector", "sqlit", "--yes"])
    );
    snap!(
        "init_unknown_option",
        f.run(&[
            "init",
            "conn",
            "--connector",
            "sqlite",
            "--set",
            "colour=red"
        ])
    );
}

#[test]
fn init_without_a_connector_scaffolds_the_sandbox_http_connector() {
    let f = Folder::new();
    snap!("init_default_http", f.run(&["init", "conn"]));
    let manifest = f.read("conn/connector.json");
    assert!(manifest.contains("127.0.0.1:8787"), "{manifest}");
    // No optional secret is referenced: nothing to set before the first run.
    assert!(!f.read("conn/account.json").contains("${"));
    let run = f.run(&["-C", "conn", "insert", "--dry-run"]);
    assert_eq!(run.code, 0, "{}", run.render());
    assert_eq!(run.json()["requests"][0]["method"], "POST");
}

#[cfg(target_os = "linux")]
#[test]
fn init_on_a_terminal_picks_the_default_connector_and_takes_the_answers() {
    let f = Folder::new();
    // Enter on the connector list (http, the default), then Enter on the
    // one question about optional options: no.
    let (code, screen) =
        crate::support::on_terminal(&f, "init conn", "Connector", &"\r".repeat(20));
    assert_eq!(code, 0, "{screen}");
    assert!(screen.contains("Connector"), "the list was shown: {screen}");
    assert!(f.exists("conn/connector.json"), "{screen}");
    let account = f.read("conn/account.json");
    assert!(account.contains("\"connector\": \"http\""), "{account}");
}

#[cfg(target_os = "linux")]
#[test]
fn init_on_a_terminal_asks_only_for_required_options_with_their_description() {
    let f = Folder::new();
    let dialog = [
        ("Database file (path)", "crm.db\r"),
        ("Set optional options too", "\r"),
    ];
    let (code, screen) =
        crate::support::on_terminal_dialog(&f, "init crm --connector sqlite", &dialog);
    assert_eq!(code, 0, "{screen}");
    insta::assert_snapshot!(
        "init_terminal_required_only",
        crate::support::transcript(&screen, &f)
    );
    assert!(
        !screen.contains("Table (table)"),
        "an optional option was asked: {screen}"
    );
    let account: serde_json::Value = serde_json::from_str(&f.read("crm/account.json")).unwrap();
    // The optional options keep their defaults.
    assert_eq!(
        account,
        serde_json::json!({"connector": "sqlite", "path": "crm.db", "table": "records", "idField": "id", "busyTimeoutSecs": 10})
    );
}

#[cfg(target_os = "linux")]
#[test]
fn init_on_a_terminal_asks_optional_options_when_told_and_checks_each_answer() {
    let f = Folder::new();
    let dialog = [
        // A required secret cannot be left empty.
        ("Application ID (applicationId", "\r"),
        ("a value is required", "app-123\r"),
        ("Secret key (secretKey", "key-456\r"),
        ("Set optional options too", "y"),
        // Enter keeps a default.
        ("Base URL (baseUrl)", "\r"),
        // An object option takes a JSON object, nothing else.
        ("Rate limit (rateLimit)", "5\r"),
        ("must be a JSON object", "{\"rps\": 2}\r"),
        // An optional option left empty is left out.
        ("Retry (retry)", "\r"),
        ("Timeout (timeoutSecs)", "30\r"),
        // A whole number, not a word or a fraction.
        ("Bulk poll interval (pollIntervalMs)", "soon\r"),
        ("must be a whole number", "1.5\r"),
        ("must be a whole number", "500\r"),
        ("Bulk polls (maxPolls)", "\r"),
    ];
    let (code, screen) =
        crate::support::on_terminal_dialog(&f, "init vf --connector voucherify", &dialog);
    assert_eq!(code, 0, "{screen}");
    assert!(!screen.contains("key-456"), "a secret was shown: {screen}");
    insta::assert_snapshot!(
        "init_terminal_optional_checked",
        crate::support::transcript(&screen, &f)
    );
    let account: serde_json::Value = serde_json::from_str(&f.read("vf/account.json")).unwrap();
    assert_eq!(
        account,
        serde_json::json!({
            "connector": "voucherify",
            "applicationId": "${VOUCHERIFY_APPLICATION_ID}",
            "secretKey": "${VOUCHERIFY_SECRET_KEY}",
            "baseUrl": "https://api.voucherify.io",
            "rateLimit": {"rps": 2},
            "timeoutSecs": 30,
            "pollIntervalMs": 500,
            "maxPolls": 30
        })
    );
    // What was typed opens: the account is valid for the connector.
    let run = f.run(&["-C", "vf", "check", "--dry-run"]);
    assert_eq!(run.code, 0, "{}", run.render());
}

#[cfg(target_os = "linux")]
#[test]
fn init_on_a_terminal_hides_secrets_and_writes_them_to_dotenv() {
    let f = Folder::new();
    let secret = "CANARY-s3cr3t-9f8e";
    let typed = format!("{secret}\r");
    let dialog = [
        ("Application ID", "app-123\r"),
        ("Secret key", &typed),
        ("Set optional options too", "n"),
    ];
    let (code, screen) =
        crate::support::on_terminal_dialog(&f, "init vf --connector voucherify", &dialog);
    assert_eq!(code, 0, "{screen}");
    assert!(!screen.contains(secret), "a secret was shown: {screen}");
    let account = f.read("vf/account.json");
    assert!(account.contains("${VOUCHERIFY_SECRET_KEY}"), "{account}");
    assert!(!account.contains(secret), "{account}");
    let env = f.read("vf/.env");
    assert!(
        env.contains(&format!("VOUCHERIFY_SECRET_KEY={secret}")),
        "{env}"
    );
    assert!(env.contains("VOUCHERIFY_APPLICATION_ID=app-123"), "{env}");
    // The secrets file is the owner's alone, whatever the umask.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(f.join("vf/.env"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
}

/// Ctrl-C at each kind of question (a list, a hidden line, a line of
/// text): exit 130, nothing written, and the terminal as it was: the
/// cursor shown and echo on (checked by stty(1) on the same terminal after
/// ferry ends).
#[cfg(target_os = "linux")]
#[test]
fn init_interrupted_on_a_terminal_restores_it_and_writes_nothing() {
    // Keys typed first (on a list they only redraw it), then Ctrl-C.
    for (name, args, prompt, keys) in [
        ("list", "init conn", "Connector", "\u{3}"),
        (
            "secret",
            "init conn --connector voucherify",
            "Application ID",
            "ab\u{3}",
        ),
        (
            "text",
            "init conn --connector sqlite",
            "Database file",
            "ab\u{3}",
        ),
    ] {
        let f = Folder::new();
        let then =
            "; status=$?; stty -a | grep -q -- ' -echo ' && echo ECHO-LEFT-OFF; exit $status";
        let (code, screen) =
            crate::support::on_terminal(&f, &format!("{args}{then}"), prompt, keys);
        assert_eq!(code, 130, "{name}: {screen}");
        assert!(
            crate::support::cursor_shown_at_the_end(&screen),
            "{name}: the cursor stayed hidden: {screen:?}"
        );
        assert!(!screen.contains("ECHO-LEFT-OFF"), "{name}: {screen}");
        assert!(!f.exists("conn"), "{name}: something was written");
        insta::assert_snapshot!(
            format!("init_interrupted_{name}"),
            crate::support::transcript(&screen, &f)
        );
    }
}

/// Over a connector folder nothing is asked: the answers could not be written.
#[cfg(target_os = "linux")]
#[test]
fn init_on_a_terminal_over_a_connector_folder_asks_nothing() {
    let f = Folder::new();
    f.run_line("init conn --yes").ok_json();
    let (code, screen) =
        crate::support::on_terminal_dialog(&f, "init conn --connector voucherify", &[]);
    assert_eq!(code, 2, "{screen}");
    assert!(!screen.contains("Application ID"), "{screen}");
    assert!(screen.contains("nothing was written"), "{screen}");
}

#[test]
fn init_with_yes_writes_a_folder_that_parses_for_every_built_in_connector() {
    let f = Folder::new();
    let list = f.run(&["connectors"]).ok_json();
    for spec in list.as_array().unwrap() {
        let code = spec["code"].as_str().unwrap();
        let dir = format!("c-{code}");
        let run = f.run(&["init", &dir, "--connector", code, "--yes"]);
        assert_eq!(run.code, 0, "{code}:\n{}", run.render());
        let actions = f.run(&["connectors", code]).ok_json()["actions"].clone();
        if !actions.as_array().unwrap().iter().any(|a| a == "insert") {
            continue;
        }
        // The account opens (options valid, secrets given) and in.json's
        // insert builds its request without a server.
        let mut cmd = f.ferry();
        cmd.args(["-C", &dir, "insert", "--dry-run"]);
        for var in [
            "VOUCHERIFY_APPLICATION_ID",
            "VOUCHERIFY_SECRET_KEY",
            "SEGMENT_ACCESS_TOKEN",
            "HUBSPOT_ACCESS_TOKEN",
            "INTERCOM_ACCESS_TOKEN",
            "KLAVIYO_API_KEY",
            "ZENDESK_TOKEN",
        ] {
            cmd.env(var, "x-value");
        }
        cmd.env("PGPASSWORD", "x-value");
        // A Mailchimp key ends in its data center.
        cmd.env("MAILCHIMP_API_KEY", "x-value-us1");
        let run = f.run_cmd(&mut cmd);
        assert_eq!(run.code, 0, "{code}:\n{}", run.render());
    }
}
