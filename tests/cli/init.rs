//! `ferry init`: scaffolding without a terminal (no prompt, ever).

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
    f.write(
        "conn/account.json",
        "{\"connector\": \"jsonl\", \"path\": \"mine.jsonl\"}\n",
    );
    let run = f.run_line("init conn --connector sqlite --set path=x.db");
    snap!("init_keeps_existing", run);
    assert!(f.read("conn/account.json").contains("mine.jsonl"));

    let run = f.run_line("init conn --connector sqlite --set path=x.db --force");
    assert_eq!(run.code, 0, "{}", run.render());
    assert!(f.read("conn/account.json").contains("x.db"));
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
    // Enter on the connector list (http, the default), then Enter on every
    // option prompt to keep its default.
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
fn init_on_a_terminal_hides_secrets_and_writes_them_to_dotenv() {
    let f = Folder::new();
    let secret = "CANARY-s3cr3t-9f8e";
    let typed = format!("{secret}\r");
    let mut dialog = vec![("Application ID", "app-123\r"), ("Secret key", &typed)];
    // Keep the default of every other option, in the spec's order.
    for prompt in [
        "Base URL",
        "Rate limit",
        "Retry",
        "Timeout",
        "Bulk poll interval",
        "Bulk polls",
    ] {
        dialog.push((prompt, "\r"));
    }
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
        ] {
            cmd.env(var, "x-value");
        }
        let run = f.run_cmd(&mut cmd);
        assert_eq!(run.code, 0, "{code}:\n{}", run.render());
    }
}
