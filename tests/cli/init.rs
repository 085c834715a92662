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
    let run = f.run(&[
        "init",
        "conn",
        "--connector",
        "sqlite",
        "--set",
        "path=x.db",
    ]);
    snap!("init_keeps_existing", run);
    assert!(f.read("conn/account.json").contains("mine.jsonl"));

    let run = f.run(&[
        "init",
        "conn",
        "--connector",
        "sqlite",
        "--set",
        "path=x.db",
        "--force",
    ]);
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
