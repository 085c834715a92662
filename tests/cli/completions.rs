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
