//! The README's quickstart, run on a copy of `examples/sqlite` so the
//! committed database stays as it is: every command it shows works and
//! prints what the README says; and the accounts of
//! `examples/segment-voucherify` read the variables their `.env.example`
//! files list.

use crate::snap;
use crate::support::Folder;

/// A copy of examples/sqlite in a temporary folder.
fn example() -> Folder {
    let f = Folder::new();
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/sqlite");
    for entry in std::fs::read_dir(&src).expect("examples/sqlite exists") {
        let entry = entry.expect("an entry");
        if entry.file_type().expect("a file type").is_file() {
            std::fs::copy(entry.path(), f.join(&entry.file_name().to_string_lossy()))
                .expect("copy an example file");
        }
    }
    f
}

#[test]
fn readme_quickstart() {
    let f = example();
    let steps: &[(&str, &[&str])] = &[
        ("check", &["check"]),
        ("get_from_in_json", &["get"]),
        ("get_flag_wins", &["get", "--id", "cus_002"]),
        ("insert_from_in_json", &["insert"]),
        (
            "patch",
            &[
                "patch",
                "--id",
                "cus_007",
                "--value",
                r#"{"plan": "enterprise"}"#,
            ],
        ),
        ("getupdates_since_6", &["getupdates", "--last-sync", "6"]),
        ("delete_from_in_json", &["delete"]),
    ];
    for (name, args) in steps {
        let run = f.run(args);
        assert_eq!(run.code, 0, "{name}:\n{}", run.render());
        snap!(format!("quickstart_{name}"), run);
    }
    let all = f.run(&["getupdates"]).ok_json();
    let ids: Vec<&str> = all["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|e| e["id"].as_str())
        .collect();
    assert!(ids.contains(&"cus_001"), "{ids:?}");
    assert!(!ids.contains(&"cus_007"), "cus_007 was deleted: {ids:?}");
}

/// examples/segment-voucherify: each account reads exactly the variables its
/// `.env.example` lists, and without them ferry names the missing one.
/// (The migration itself runs on the shipped map in tests/cli/segment.rs.)
#[test]
fn segment_voucherify_accounts_read_the_variables_their_env_examples_list() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/segment-voucherify");
    let var = regex::Regex::new(r"\$\{([A-Z_]+)\}").expect("valid");
    for name in ["segment", "voucherify"] {
        let account =
            std::fs::read_to_string(dir.join(name).join("account.json")).expect("account.json");
        let example =
            std::fs::read_to_string(dir.join(name).join(".env.example")).expect(".env.example");
        let used: Vec<&str> = var
            .captures_iter(&account)
            .map(|c| c.get(1).unwrap().as_str())
            .collect();
        let listed: Vec<&str> = example
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .filter_map(|l| l.split_once('=').map(|(k, _)| k))
            .collect();
        assert_eq!(used, listed, "{name}");
        let f = Folder::new();
        f.write("account.json", &account);
        let run = f.run(&["check"]);
        assert_eq!(run.code, 2, "{}", run.render());
        snap!(format!("segment_voucherify_{name}_without_variables"), run);
    }
}
