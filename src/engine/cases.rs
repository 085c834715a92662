//! Test cases for `ferry test`: one recorded run of an action kept as a file
//! (`DIR/tests/NAME.json`) holding the action, its command-line arguments,
//! its in.json section, the cassette of its HTTP traffic and the JSON it
//! printed. This module owns the file format, the argument clean-up that
//! makes a run replayable, the comparison of outputs and the JUnit report;
//! `cli/test.rs` runs the cases.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::usage;
use crate::http::cassette::{parse_tape, Tape};

/// The case format's version, written into every file.
const VERSION: u32 = 1;

/// The actions a case can hold: the single-action commands.
pub const ACTIONS: &[&str] = &["check", "get", "insert", "patch", "delete", "getupdates"];

/// How many differences a failed comparison lists.
const MAX_DIFFS: usize = 5;

/// One test case file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Case {
    pub ferry_case: u32,
    /// The command: `get`, `getupdates`, ...
    pub action: String,
    /// The arguments after `ferry`, without the flags that only say how the
    /// run was made (-C, -o, -v, --record, --save-case, --input, ...).
    pub args: Vec<String>,
    /// The in.json the run read, reduced to the action's section.
    pub input: Value,
    /// The JSON the run printed, secrets redacted.
    pub expected: Value,
    /// The HTTP traffic of the run, secrets redacted.
    pub cassette: Tape,
}

impl Case {
    pub fn new(
        action: &str,
        args: Vec<String>,
        input: Value,
        expected: Value,
        cassette: Tape,
    ) -> Case {
        Case {
            ferry_case: VERSION,
            action: action.to_string(),
            args,
            input,
            expected,
            cassette,
        }
    }
}

/// Where cases live in a connector folder.
pub fn dir(folder: &Path) -> PathBuf {
    folder.join("tests")
}

/// Check a case name: it becomes a file name.
pub fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if ok {
        Ok(())
    } else {
        Err(usage(format!("{name:?} cannot name a test case"))
            .hint("use letters, digits, '-', '_' and '.', e.g. --save-case get-customer")
            .into())
    }
}

/// Write `case` to `DIR/tests/NAME.json`, atomically; answers the path.
pub fn save(folder: &Path, name: &str, case: &Case) -> Result<PathBuf> {
    let path = dir(folder).join(format!("{name}.json"));
    let mut text = serde_json::to_string_pretty(case).context("could not render the test case")?;
    text.push('\n');
    crate::fsutil::write_bytes_atomic(&path, text.as_bytes())
        .with_context(|| format!("could not write the test case {}", path.display()))?;
    Ok(path)
}

/// The case files of a folder, sorted by name: (name, path).
pub fn list(folder: &Path) -> Result<Vec<(String, PathBuf)>> {
    let dir = dir(folder);
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("could not read {}", dir.display())),
    };
    let mut cases = Vec::new();
    for entry in entries {
        let path = entry
            .with_context(|| format!("could not read {}", dir.display()))?
            .path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        if let Some(stem) = path.file_stem().and_then(|s| s.to_str()) {
            cases.push((stem.to_string(), path.clone()));
        }
    }
    cases.sort();
    Ok(cases)
}

/// Read one case file.
pub fn load(path: &Path) -> Result<Case> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("could not read {}", path.display()))?;
    let source = path.display().to_string();
    let value: Value = serde_json::from_str(&text).map_err(|e| {
        usage(format!(
            "{source} is not valid JSON: {e} (line {}, column {})",
            e.line(),
            e.column()
        ))
    })?;
    // The cassette is checked by its own parser, so its errors read the same everywhere.
    if let Some(tape) = value.get("cassette") {
        parse_tape(&tape.to_string(), &format!("the cassette of {source}"))?;
    }
    let case: Case = serde_json::from_value(value)
        .map_err(|e| usage(format!("{source} is not a ferry test case: {e}")))?;
    if case.ferry_case != VERSION {
        return Err(usage(format!(
            "{source} is a test case of version {}; this ferry reads version {VERSION}",
            case.ferry_case
        ))
        .into());
    }
    if !ACTIONS.contains(&case.action.as_str()) {
        return Err(usage(format!(
            "{source}: \"{}\" is not an action a test case can run ({})",
            case.action,
            ACTIONS.join(", ")
        ))
        .into());
    }
    Ok(case)
}

/// Global flags with a value that say how a run was made, not what it does.
const DROP_WITH_VALUE: &[&str] = &[
    "-C",
    "--dir",
    "-o",
    "--output",
    "--input",
    "--account",
    "--cassette",
    "--save-case",
];
/// Global switches of the same kind.
const DROP_SWITCHES: &[&str] = &["--record", "--replay", "-q", "--quiet", "--verbose"];

/// `argv` (without the program name) reduced to what the action needs to be
/// run again: the subcommand and its own flags.
pub fn replay_args(argv: &[String]) -> Vec<String> {
    let mut kept = Vec::new();
    let mut it = argv.iter();
    while let Some(a) = it.next() {
        if DROP_SWITCHES.contains(&a.as_str()) || is_verbose_cluster(a) {
            continue;
        }
        if DROP_WITH_VALUE.contains(&a.as_str()) {
            it.next();
            continue;
        }
        let attached = DROP_WITH_VALUE.iter().any(|f| {
            (f.starts_with("--") && a.starts_with(&format!("{f}=")))
                || (!f.starts_with("--") && a.len() > 2 && a.starts_with(f))
        });
        if attached {
            continue;
        }
        kept.push(a.clone());
    }
    kept
}

/// `-v`, `-vv`, ...
fn is_verbose_cluster(a: &str) -> bool {
    a.len() >= 2 && a.starts_with('-') && a[1..].chars().all(|c| c == 'v')
}

/// The differences between the expected and the actual output, at most a
/// few, each as `at /path: expected X, got Y`. Empty when they are equal.
pub fn diff(expected: &Value, actual: &Value) -> Vec<String> {
    let mut out = Vec::new();
    walk("", expected, actual, &mut out);
    out
}

fn walk(at: &str, e: &Value, a: &Value, out: &mut Vec<String>) {
    if out.len() >= MAX_DIFFS || e == a {
        return;
    }
    match (e, a) {
        (Value::Object(em), Value::Object(am)) => {
            for (k, ev) in em {
                let here = format!("{at}/{k}");
                match am.get(k) {
                    Some(av) => walk(&here, ev, av, out),
                    None => push(
                        out,
                        format!("at {here}: expected {}, got nothing", short(ev)),
                    ),
                }
            }
            for (k, av) in am {
                if !em.contains_key(k) {
                    push(out, format!("at {at}/{k}: unexpected {}", short(av)));
                }
            }
        }
        (Value::Array(ea), Value::Array(aa)) if ea.len() == aa.len() => {
            for (i, (ev, av)) in ea.iter().zip(aa).enumerate() {
                walk(&format!("{at}/{i}"), ev, av, out);
            }
        }
        (Value::Array(ea), Value::Array(aa)) => push(
            out,
            format!(
                "at {}: expected {} items, got {}",
                if at.is_empty() { "/" } else { at },
                ea.len(),
                aa.len()
            ),
        ),
        _ => push(
            out,
            format!(
                "at {}: expected {}, got {}",
                if at.is_empty() { "/" } else { at },
                short(e),
                short(a)
            ),
        ),
    }
}

fn push(out: &mut Vec<String>, line: String) {
    if out.len() < MAX_DIFFS {
        out.push(line);
    }
}

/// A value shown in a diff line, cut when long.
fn short(v: &Value) -> String {
    let text = v.to_string();
    if text.chars().count() > 80 {
        format!("{}…", text.chars().take(80).collect::<String>())
    } else {
        text
    }
}

/// One case's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub name: String,
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip)]
    pub seconds: f64,
}

/// The outcomes as a JUnit XML report (one testsuite, one testcase per case).
pub fn junit(suite: &str, outcomes: &[Outcome]) -> String {
    let failures = outcomes.iter().filter(|o| !o.ok).count();
    let total: f64 = outcomes.iter().map(|o| o.seconds).sum();
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    xml.push_str(&format!(
        "<testsuites name=\"ferry test\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" time=\"{total:.3}\">\n",
        outcomes.len()
    ));
    xml.push_str(&format!(
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"0\" time=\"{total:.3}\">\n",
        escape(suite),
        outcomes.len()
    ));
    for o in outcomes {
        let open = format!(
            "    <testcase name=\"{}\" classname=\"{}\" time=\"{:.3}\"",
            escape(&o.name),
            escape(suite),
            o.seconds
        );
        match &o.error {
            None => xml.push_str(&format!("{open}/>\n")),
            Some(err) => {
                let first = err.lines().next().unwrap_or("");
                xml.push_str(&format!(
                    "{open}>\n      <failure message=\"{}\">{}</failure>\n    </testcase>\n",
                    escape(first),
                    escape(err)
                ));
            }
        }
    }
    xml.push_str("  </testsuite>\n</testsuites>\n");
    xml
}

/// Text safe inside an XML attribute or element: the five entities, and
/// control characters XML 1.0 cannot hold dropped.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\t' | '\r' => out.push(c),
            c if (c as u32) < 0x20 => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn strings(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn replay_args_keep_only_the_action_and_its_flags() {
        let argv = strings(&[
            "-C",
            "conn",
            "-vv",
            "get",
            "--id",
            "c_1",
            "--record",
            "--save-case",
            "g",
            "-o=x",
            "--cassette=c.json",
            "-Cdir",
            "--input",
            "in.json",
        ]);
        assert_eq!(replay_args(&argv), strings(&["get", "--id", "c_1"]));
    }

    #[test]
    fn diff_names_the_paths_that_differ() {
        let e = json!({"id": "a", "entries": [{"n": 1}, {"n": 2}], "gone": true});
        let a = json!({"id": "a", "entries": [{"n": 1}, {"n": 3}], "new": 1});
        assert_eq!(
            diff(&e, &a),
            vec![
                "at /entries/1/n: expected 2, got 3",
                "at /gone: expected true, got nothing",
                "at /new: unexpected 1",
            ]
        );
        assert!(diff(&e, &e).is_empty());
        assert_eq!(
            diff(&json!([1]), &json!([1, 2])),
            vec!["at /: expected 1 items, got 2"]
        );
    }

    #[test]
    fn junit_escapes_what_it_quotes() {
        let xml = junit(
            "conn",
            &[
                Outcome {
                    name: "a".into(),
                    ok: true,
                    error: None,
                    seconds: 0.5,
                },
                Outcome {
                    name: "b<&>".into(),
                    ok: false,
                    error: Some("at /x: expected \"1\"\nmore".into()),
                    seconds: 0.0,
                },
            ],
        );
        assert!(xml.contains("tests=\"2\" failures=\"1\""), "{xml}");
        assert!(xml.contains("name=\"b&lt;&amp;&gt;\""), "{xml}");
        assert!(
            xml.contains("message=\"at /x: expected &quot;1&quot;\""),
            "{xml}"
        );
    }
}
