//! `${NAME}` references in account.json: replaced from the process
//! environment first, then from the folder's `.env` file. A missing or empty
//! variable is an error that names it and where it was looked for (under
//! `--replay`, which sends nothing, it is left as written); a reference that
//! is not `${NAME}` (`${}`, a shell default `${NAME:-x}`, an unclosed `${`)
//! is an error that says so.
//!
//! The `.env` dialect (docs/config.md), parsed here rather than by a crate so
//! an error names the file and line and never shows the value, and a `$` in
//! a secret is never expanded:
//!
//! - UTF-8, a byte order mark at the start is skipped; blank lines and lines
//!   starting with `#` are ignored; `export ` before a name is ignored.
//! - `NAME=value`, spaces around the name and the value trimmed. A name is
//!   letters, digits, `_`, `.` and `-`.
//! - An unquoted value ends at a `#` that starts it or follows a space or
//!   tab (a comment); a `#` inside a word (`a#b`) is part of the value.
//! - `'...'` keeps everything between the quotes as written.
//! - `"..."` understands `\"`, `\\`, `\n`, `\r` and `\t`; any other
//!   backslash is kept as written.
//! - After a closing quote only a comment may follow. A value is one line:
//!   a quote left open is an error.
//! - The last line for a name wins.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;
use serde_json::Value;

use crate::error::usage;

/// Variables from the environment, falling back to a `.env` file.
pub struct Vars<'a> {
    env: &'a BTreeMap<String, String>,
    dotenv: BTreeMap<String, String>,
    dotenv_path: String,
    /// Leave a missing `${NAME}` as it is instead of failing (under `--replay`).
    keep_missing: bool,
}

impl<'a> Vars<'a> {
    /// Load `.env` from `folder` if it exists.
    pub fn load(env: &'a BTreeMap<String, String>, folder: &Path) -> Result<Vars<'a>> {
        let path = folder.join(".env");
        let file = path.display().to_string();
        let dotenv = match std::fs::read(&path) {
            Ok(bytes) => parse_dotenv(&crate::config::decode(bytes, &file)?, &file)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => {
                return Err(usage(format!("could not read {file}: {e}")).into());
            }
        };
        Ok(Vars {
            env,
            dotenv,
            dotenv_path: file,
            keep_missing: false,
        })
    }

    /// Leave missing variables as `${NAME}` instead of failing: under
    /// `--replay` nothing is sent, so a credential is not needed.
    pub fn keep_missing(&mut self, keep: bool) {
        self.keep_missing = keep;
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.env
            .get(name)
            .or_else(|| self.dotenv.get(name))
            .map(String::as_str)
    }

    /// Replace every `${NAME}` in the strings of `value`; `key` names the
    /// option in errors. Answers the values put in.
    pub fn interpolate(&self, value: &mut Value, file: &str, key: &str) -> Result<Vec<String>> {
        let mut used = Vec::new();
        self.interpolate_into(value, file, key, &mut used)?;
        Ok(used)
    }

    fn interpolate_into(
        &self,
        value: &mut Value,
        file: &str,
        key: &str,
        used: &mut Vec<String>,
    ) -> Result<()> {
        match value {
            Value::String(s) => {
                *s = self.interpolate_str(s, file, key, used)?;
            }
            Value::Array(items) => {
                for item in items {
                    self.interpolate_into(item, file, key, used)?;
                }
            }
            Value::Object(map) => {
                for (k, v) in map.iter_mut() {
                    self.interpolate_into(v, file, &format!("{key}.{k}"), used)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn interpolate_str(
        &self,
        s: &str,
        file: &str,
        key: &str,
        used: &mut Vec<String>,
    ) -> Result<String> {
        let mut out = String::with_capacity(s.len());
        let mut rest = s;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let Some(end) = after.find('}') else {
                return Err(usage(format!("unclosed ${{ in option \"{key}\" of {file}"))
                    .hint("write references as ${NAME}")
                    .into());
            };
            let name = &after[..end];
            check_reference(name, file, key)?;
            let written = &rest[start..start + 2 + end + 1];
            match self.get(name) {
                Some(value) if !value.is_empty() => {
                    out.push_str(value);
                    used.push(value.to_string());
                }
                _ if self.keep_missing => out.push_str(written),
                Some(_) => return Err(self.empty(name, file, key)),
                None => return Err(self.missing(name, file, key)),
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

/// A reference's name, refused when it is not one: `${}`, a shell default
/// or alternative (`${NAME:-x}`, `${NAME-x}`, `${NAME:=x}`…), or other text.
fn check_reference(name: &str, file: &str, key: &str) -> Result<()> {
    if is_name(name) {
        return Ok(());
    }
    let err = if name.is_empty() {
        usage(format!(
            "empty reference ${{}} in option \"{key}\" of {file}"
        ))
        .hint("write the variable's name inside: ${NAME}")
    } else if let Some(at) = name.find([':', '=', '?', '+']).filter(|&i| i > 0) {
        let var = &name[..at];
        usage(format!(
            "${{{name}}} in option \"{key}\" of {file}: shell defaults and alternatives are not supported"
        ))
        .hint(format!(
            "write ${{{var}}} and set {var} in the environment or in .env"
        ))
    } else {
        usage(format!(
            "${{{name}}} in option \"{key}\" of {file} is not a variable name"
        ))
        .hint("a name is letters, digits, _, . and -: ${MY_TOKEN}")
    };
    Err(err.into())
}

impl Vars<'_> {
    fn missing(&self, name: &str, file: &str, key: &str) -> anyhow::Error {
        let message =
            format!("environment variable {name} is not set (used by option \"{key}\" in {file})");
        let hint = format!(
            "export {name}=... or add a line {name}=... to {}",
            self.dotenv_path
        );
        usage(message).hint(hint).into()
    }

    /// Set to nothing: the option would be "missing", and the message would
    /// not say why.
    fn empty(&self, name: &str, file: &str, key: &str) -> anyhow::Error {
        let (message, hint) = if self.env.contains_key(name) {
            (
                format!(
                    "environment variable {name} is empty (used by option \"{key}\" in {file})"
                ),
                format!(
                    "export {name}=... with a value, or unset it to use {}",
                    self.dotenv_path
                ),
            )
        } else {
            (
                format!(
                    "{name} is empty in {} (used by option \"{key}\" in {file})",
                    self.dotenv_path
                ),
                format!(
                    "write its value after the = on the {name}= line of {}",
                    self.dotenv_path
                ),
            )
        };
        usage(message).hint(hint).into()
    }
}

/// Parse the `.env` dialect described at the top of this module. Errors
/// name the file and the line, never the value (which may be a secret).
pub fn parse_dotenv(text: &str, file: &str) -> Result<BTreeMap<String, String>> {
    let mut vars = BTreeMap::new();
    for (n, line) in crate::config::strip_bom(text).lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line
            .strip_prefix("export ")
            .or_else(|| line.strip_prefix("export\t"))
            .unwrap_or(line);
        let Some((name, value)) = line
            .split_once('=')
            .filter(|(name, _)| is_name(name.trim()))
        else {
            return Err(usage(format!(
                "invalid line {} in {file}: expected NAME=value",
                n + 1
            ))
            .hint("write each variable as NAME=value, or start the line with # to comment it out")
            .into());
        };
        let value = parse_value(value.trim()).map_err(|problem| {
            usage(format!("invalid line {} in {file}: {problem}", n + 1)).hint(
                "quote a value as \"...\" or '...' on one line; write a line break as \\n inside double quotes",
            )
        })?;
        vars.insert(name.trim().to_string(), value);
    }
    Ok(vars)
}

/// A value as written after `=` (trimmed): quoted, or up to a comment.
fn parse_value(v: &str) -> std::result::Result<String, &'static str> {
    let (value, rest) = match v.chars().next() {
        Some('\'') => {
            let inner = &v[1..];
            let end = inner
                .find('\'')
                .ok_or("the ' that opens the value is not closed")?;
            (inner[..end].to_string(), &inner[end + 1..])
        }
        Some('"') => {
            let mut value = String::new();
            let mut chars = v[1..].char_indices();
            let end = loop {
                match chars.next() {
                    None => return Err("the \" that opens the value is not closed"),
                    Some((i, '"')) => break i,
                    Some((_, '\\')) => match chars.next() {
                        Some((_, 'n')) => value.push('\n'),
                        Some((_, 'r')) => value.push('\r'),
                        Some((_, 't')) => value.push('\t'),
                        Some((_, c @ ('"' | '\\'))) => value.push(c),
                        Some((_, c)) => {
                            value.push('\\');
                            value.push(c);
                        }
                        None => return Err("the \" that opens the value is not closed"),
                    },
                    Some((_, c)) => value.push(c),
                }
            };
            (value, &v[1 + end + 1..])
        }
        _ => {
            let end = comment_start(v).unwrap_or(v.len());
            return Ok(v[..end].trim_end().to_string());
        }
    };
    let rest = rest.trim_start();
    if rest.is_empty() || rest.starts_with('#') {
        Ok(value)
    } else {
        Err("text after the closing quote (only a # comment may follow it)")
    }
}

/// Where a comment starts in an unquoted value: a `#` at its start or after
/// a space or tab.
fn comment_start(v: &str) -> Option<usize> {
    let bytes = v.as_bytes();
    memchr::memchr_iter(b'#', bytes).find(|&i| i == 0 || matches!(bytes[i - 1], b' ' | b'\t'))
}

/// A variable name, in `.env` and in `${NAME}`.
pub fn is_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_wins_over_dotenv() {
        let env = BTreeMap::from([("A".to_string(), "from-env".to_string())]);
        let mut vars = Vars::load(&env, Path::new("/nonexistent")).unwrap();
        vars.dotenv.insert("A".into(), "from-dotenv".into());
        vars.dotenv.insert("B".into(), "b".into());
        let mut v = Value::String("${A}/${B}".into());
        vars.interpolate(&mut v, "account.json", "x").unwrap();
        assert_eq!(v, Value::String("from-env/b".into()));
    }

    #[test]
    fn missing_variable_is_named() {
        let env = BTreeMap::new();
        let vars = Vars::load(&env, Path::new("/nonexistent")).unwrap();
        let mut v = Value::String("${NOPE}".into());
        let err = vars
            .interpolate(&mut v, "account.json", "token")
            .unwrap_err();
        assert!(err.to_string().contains("NOPE is not set"), "{err}");
    }

    #[test]
    fn dotenv_syntax() {
        let vars = parse_dotenv("# c\nexport A=1\nB = \"two words\"\nC='x'\n", ".env").unwrap();
        assert_eq!(vars["A"], "1");
        assert_eq!(vars["B"], "two words");
        assert_eq!(vars["C"], "x");
        assert!(parse_dotenv("oops", ".env").is_err());
        assert!(parse_dotenv("=value", ".env").is_err());
        assert!(parse_dotenv("TWO WORDS=x", ".env").is_err());
    }

    #[test]
    fn dotenv_values_are_kept_whole() {
        let vars = parse_dotenv("A=s3cr3t#1\nB=\"x # y\"\nC=a=b\n", ".env").unwrap();
        assert_eq!(vars["A"], "s3cr3t#1");
        assert_eq!(vars["B"], "x # y");
        assert_eq!(vars["C"], "a=b");
    }

    #[test]
    fn dotenv_comments_quotes_and_escapes() {
        let text = "\u{feff}A=one # a comment\nB=\"two\" # c\nC='th\"ree' #c\nD=#x\nE=\"a\\nb \\\"q\\\" \\\\ \\x\"\nF=\tx\ty\t# t\nexport\tG=g\n";
        let vars = parse_dotenv(text, ".env").unwrap();
        assert_eq!(vars["A"], "one");
        assert_eq!(vars["B"], "two");
        assert_eq!(vars["C"], "th\"ree");
        assert_eq!(vars["D"], "");
        assert_eq!(vars["E"], "a\nb \"q\" \\ \\x");
        assert_eq!(vars["F"], "x\ty");
        assert_eq!(vars["G"], "g");
        for bad in [
            "A=\"s3cr3t",
            "A='s3cr3t",
            "A=\"s3cr3t\" y",
            "A='s3cr3t'y",
            "A=\"s3cr3t\\",
        ] {
            let err = parse_dotenv(bad, ".env").unwrap_err().to_string();
            assert!(err.starts_with("invalid line 1 in .env: "), "{bad}: {err}");
            assert!(!err.contains("s3cr3t"), "the value is shown: {err}");
        }
    }

    #[test]
    fn references_that_are_not_names_are_named() {
        let env = BTreeMap::from([("A".to_string(), String::new())]);
        let vars = Vars::load(&env, Path::new("/nonexistent")).unwrap();
        for (text, want) in [
            ("${}", "empty reference ${}"),
            (
                "${FOO:-bar}",
                "${FOO:-bar} in option \"k\" of f: shell defaults",
            ),
            (
                "${A B}",
                "${A B} in option \"k\" of f is not a variable name",
            ),
            ("x${A", "unclosed ${"),
            ("${A}", "environment variable A is empty"),
        ] {
            let mut v = Value::String(text.into());
            let err = vars.interpolate(&mut v, "f", "k").unwrap_err().to_string();
            assert!(err.starts_with(want), "{text}: {err}");
        }
    }

    #[test]
    fn no_input_makes_the_parsers_panic() {
        use rand::{Rng, SeedableRng};
        const PIECES: &[&str] = &[
            "A", "=", " ", "\t", "#", "\"", "'", "\\", "\n", "\r\n", "export ", "${", "}", ":-",
            "é", "\u{feff}", "x",
        ];
        let env = BTreeMap::from([("A".to_string(), String::new())]);
        let vars = Vars::load(&env, Path::new("/nonexistent")).unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(14);
        for _ in 0..20_000 {
            let len = rng.random_range(0..16);
            let text: String = (0..len)
                .map(|_| PIECES[rng.random_range(0..PIECES.len())])
                .collect();
            if let Err(e) = parse_dotenv(&text, ".env") {
                assert!(e.to_string().starts_with("invalid line "), "{text:?}: {e}");
            }
            if let Err(e) = vars.interpolate(&mut Value::String(text.clone()), "f", "k") {
                assert!(e.to_string().contains("option \"k\""), "{text:?}: {e}");
            }
        }
    }
}
