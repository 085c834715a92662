//! The README's quickstart, run on a copy of `examples/sqlite` so the
//! committed database stays as it is: every command it shows works and
//! prints what the README says; the README's export example, read from the
//! README itself and run as written on the sample profiles it ships; the
//! accounts of `examples/segment-voucherify` read the variables their
//! `.env.example` files list; and the README and docs/ refer to no file
//! the repository does not have.

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

/// The repository's root.
fn root() -> &'static std::path::Path {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The `ferry` lines of the first code block after `heading` in the
/// README, without their comments.
fn readme_commands(heading: &str) -> Vec<String> {
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README.md");
    let after = &readme[readme.find(heading).expect("the heading")..];
    let block = after.split("```").nth(1).expect("a code block");
    block
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| l.starts_with("ferry "))
        .map(str::to_string)
        .collect()
}

/// The export example runs as written from the repository root: a folder
/// holding a copy of examples/ stands in for a fresh clone.
#[test]
fn readme_export_example_runs_on_the_shipped_profiles() {
    let f = Folder::new();
    for name in ["profiles.jsonl", "profiles.csv"] {
        let text = std::fs::read_to_string(root().join("examples").join(name))
            .unwrap_or_else(|e| panic!("examples/{name} is shipped: {e}"));
        f.write(&format!("examples/{name}"), &text);
    }
    let lines = readme_commands("### `ferry export`");
    assert_eq!(lines.len(), 3, "{lines:?}");
    let mut shown = String::new();
    for line in &lines {
        let args: Vec<&str> = line.split_whitespace().skip(1).collect();
        let run = f.run(&args);
        assert_eq!(run.code, 0, "{line}:\n{}", run.render());
        shown.push_str(&format!("$ {line}\n{}\n", crate::export::render(&run)));
    }
    insta::assert_snapshot!("readme_export_example", shown);
}

/// Every file the README and docs/ name as part of the repository exists:
/// relative links, and paths under the repository's own folders (the
/// vendor research notes in docs/connectors/ cite paths in the vendors'
/// repositories, so only their links are checked). A placeholder in
/// capitals (`src/MODULE`, `docs/connectors/NAME.md`) names no file.
#[test]
fn readme_and_docs_refer_only_to_files_in_the_repository() {
    let mut pages = vec![root().join("README.md")];
    let mut dirs = vec![root().join("docs")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("docs/") {
            let path = entry.expect("an entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "md") {
                pages.push(path);
            }
        }
    }
    let link = regex::Regex::new(r"\]\(([^)#\s]+)(#[^)]*)?\)").expect("valid");
    let repo_path = regex::Regex::new(
        r"(?:^|[\s`(\[])((?:\.ci|benches|docs|examples|src|templates|tests/cli)/[\w./-]*[\w/])",
    )
    .expect("valid");
    // A file at the root named on its own: DESIGN.md, in.json.example.
    let root_file = regex::Regex::new(
        r"(?:^|[\s`(\[])(\.?[A-Za-z][\w.-]*\.example|[A-Z][A-Z_]+\.md)(?:$|[\s`),:;])",
    )
    .expect("valid");
    let placeholder = regex::Regex::new(r"/[A-Z][A-Z_]*(\.|/|$)").expect("valid");
    let mut missing = Vec::new();
    for page in &pages {
        let text = std::fs::read_to_string(page).expect("a page");
        let here = page.parent().expect("a folder");
        let shown = page
            .strip_prefix(root())
            .unwrap_or(page)
            .display()
            .to_string();
        let vendor_notes = shown.starts_with("docs/connectors/");
        // Code blocks hold code, not links: `methods[method](params)`.
        let prose: String = text.split("```").step_by(2).collect();
        for c in link.captures_iter(&prose) {
            let target = &c[1];
            if !target.contains("://") && !here.join(target).exists() {
                missing.push(format!("{shown}: link {target}"));
            }
        }
        for c in repo_path.captures_iter(&text) {
            let path = &c[1];
            if !vendor_notes && !placeholder.is_match(path) && !root().join(path).exists() {
                missing.push(format!("{shown}: {path}"));
            }
        }
        for c in root_file.captures_iter(&text) {
            let name = &c[1];
            // A connector folder's own .env.example is written by init.
            if name != ".env.example" && !root().join(name).exists() && !here.join(name).exists() {
                missing.push(format!("{shown}: {name}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "files that are not in the repository:\n{}",
        missing.join("\n")
    );
}
