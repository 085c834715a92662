//! `ferry completions SHELL` and `ferry man`: generated from the parser's
//! own definition, so these check that what comes out is usable: a bash
//! script bash accepts and that completes ferry's commands and flags, the
//! other shells' scripts naming them, and a man page with every command.

use crate::support::Folder;

const COMMANDS: &[&str] = &[
    "init",
    "connectors",
    "check",
    "get",
    "insert",
    "patch",
    "delete",
    "getupdates",
    "sandbox",
    "import",
    "export",
    "test",
    "completions",
    "man",
];

#[test]
fn the_bash_script_loads_and_completes_commands_and_flags() {
    let f = Folder::new();
    let run = f.run(&["completions", "bash"]);
    assert_eq!(run.code, 0, "{}", run.render());
    f.write("ferry.bash", &run.stdout);
    // Load it and ask for completions the way bash would.
    let script = r#"source ./ferry.bash
complete -p ferry
COMP_WORDS=(ferry imp); COMP_CWORD=1; _ferry ferry imp ferry; echo "words: ${COMPREPLY[*]}"
COMP_WORDS=(ferry import --dr); COMP_CWORD=2; _ferry ferry --dr import; echo "flags: ${COMPREPLY[*]}""#;
    let out = std::process::Command::new("bash")
        .args(["-c", script])
        .current_dir(f.path())
        .output()
        .expect("run bash");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("-F _ferry ferry"), "{text}");
    assert!(text.contains("words: import"), "{text}");
    assert!(text.contains("flags: --dry-run"), "{text}");
}

#[test]
fn zsh_fish_and_powershell_scripts_name_every_command() {
    let f = Folder::new();
    for shell in ["zsh", "fish", "powershell", "elvish"] {
        let run = f.run(&["completions", shell]);
        assert_eq!(run.code, 0, "{shell}: {}", run.render());
        for command in COMMANDS {
            assert!(run.stdout.contains(command), "{shell} lacks {command}");
        }
    }
}

#[test]
fn the_man_page_has_the_synopsis_and_every_command() {
    let f = Folder::new();
    let run = f.run(&["man"]);
    assert_eq!(run.code, 0, "{}", run.render());
    assert!(run.stdout.contains(".TH ferry 1"), "{}", run.stdout);
    assert!(run.stdout.contains(".SH SYNOPSIS"), "{}", run.stdout);
    for command in COMMANDS {
        let entry = format!("ferry\\-{command}(1)");
        assert!(run.stdout.contains(&entry), "man lacks {entry}");
    }
}

#[test]
fn an_unknown_shell_names_the_ones_there_are() {
    let f = Folder::new();
    insta::assert_snapshot!(
        "completions_unknown_shell",
        f.run(&["completions", "nosh"]).render()
    );
}

/// Every command's `--help`: its own flags apart from the global ones,
/// the record/replay flags only where the command talks HTTP, and an
/// "Examples:" section of several that an 80-column terminal shows without
/// breaking a line (what is shown at 80 columns is what is shown at 300).
#[test]
fn every_help_separates_global_flags_and_its_examples_fit_80_columns() {
    const HTTP: &[&str] = &[
        "check",
        "get",
        "insert",
        "patch",
        "delete",
        "getupdates",
        "import",
        "export",
    ];
    let f = Folder::new();
    let help = |args: &[&str], columns: &str| {
        let run = f.run_cmd(f.ferry().env("COLUMNS", columns).args(args));
        assert_eq!(run.code, 0, "{}", run.render());
        run.stdout
    };
    let examples = |text: &str| -> String {
        let at = text.find("\nExamples:\n").expect("an Examples: section");
        text[at..].to_string()
    };
    for command in COMMANDS.iter().chain(&[""]) {
        let args: Vec<&str> = [*command, "--help"]
            .into_iter()
            .filter(|a| !a.is_empty())
            .collect();
        let narrow = help(&args, "80");
        let wide = help(&args, "300");
        assert_eq!(examples(&narrow), examples(&wide), "ferry {command} --help");
        let shown = examples(&narrow)
            .lines()
            .filter(|l| l.starts_with("  ") && l.contains("ferry "))
            .count();
        assert!(
            shown >= 2,
            "ferry {command} --help shows {shown} example(s)"
        );
        assert!(
            narrow.contains("\nGlobal options:\n"),
            "ferry {command} --help"
        );
        assert_eq!(
            narrow.contains("\nRecord and replay:\n"),
            HTTP.contains(command),
            "ferry {command} --help"
        );
        assert!(!narrow.contains("Example:\n"), "ferry {command} --help");
    }
    // A record flag on a command that sends nothing is a usage error.
    let run = f.run(&["sandbox", "--record"]);
    assert_eq!(run.code, 2, "{}", run.render());
    assert!(
        run.stderr
            .starts_with("error: unexpected argument '--record'"),
        "{}",
        run.render()
    );
}
