//! `ferry connectors [NAME]`: the list of built-in connectors and each one's
//! spec, which is what users read to write account.json.

use crate::snap;
use crate::support::Folder;

#[test]
fn list() {
    let f = Folder::new();
    let run = f.run(&["connectors"]);
    snap!("connectors_list", run);
    // Works without a connector folder, and every listed name opens in full.
    let list = run.ok_json();
    let codes: Vec<&str> = list
        .as_array()
        .expect("a JSON array")
        .iter()
        .map(|c| c["code"].as_str().expect("a code"))
        .collect();
    for code in ["sqlite", "csv", "jsonl"] {
        assert!(codes.contains(&code), "{code} is not listed: {codes:?}");
    }
    for code in codes {
        let spec = f.run(&["connectors", code]).ok_json();
        assert_eq!(spec["code"], code);
        assert!(spec["options"].is_array(), "{code}: {spec}");
        assert!(spec["actions"].is_array(), "{code}: {spec}");
    }
}

#[test]
fn local_connector_specs() {
    let f = Folder::new();
    for code in ["sqlite", "csv", "jsonl"] {
        snap!(format!("connectors_{code}"), f.run(&["connectors", code]));
    }
}

#[test]
fn unknown_name() {
    let f = Folder::new();
    snap!("connectors_unknown_near", f.run(&["connectors", "jsnol"]));
    snap!(
        "connectors_unknown_far",
        f.run(&["connectors", "mainframe"])
    );
}

#[test]
fn with_dash_o() {
    let f = Folder::new();
    let run = f.run(&["-o", "spec.json", "connectors", "csv"]);
    assert_eq!(run.code, 0, "{}", run.render());
    assert_eq!(run.stdout, "");
    let written: serde_json::Value =
        serde_json::from_str(&f.read("spec.json")).expect("the file holds JSON");
    assert_eq!(written, f.run(&["connectors", "csv"]).ok_json());
}

#[cfg(target_os = "linux")]
#[test]
fn on_a_terminal_the_list_and_a_spec_are_tables_and_json_is_asked_for() {
    let f = crate::support::Folder::new();
    let (code, screen) = crate::support::on_terminal_dialog(&f, "connectors", &[]);
    assert_eq!(code, 0, "{screen}");
    insta::assert_snapshot!("connectors_terminal_list", screen.replace('\r', ""));
    let (code, screen) = crate::support::on_terminal_dialog(&f, "connectors csv", &[]);
    assert_eq!(code, 0, "{screen}");
    insta::assert_snapshot!("connectors_terminal_csv", screen.replace('\r', ""));
    let (code, screen) = crate::support::on_terminal_dialog(&f, "connectors --json", &[]);
    assert_eq!(code, 0, "{screen}");
    let listed: serde_json::Value =
        serde_json::from_str(screen.trim()).expect("JSON on a terminal with --json");
    assert_eq!(listed[0]["code"], "sqlite");
}
