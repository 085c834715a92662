//! `${NAME}` references in account.json: replaced from the process
//! environment first, then from the folder's `.env` file. A missing variable
//! is an error that names it and both places it could come from (under
//! `--replay`, which sends nothing, it is left as written).

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
        let dotenv = match std::fs::read_to_string(&path) {
            Ok(text) => parse_dotenv(&text, &path.display().to_string())?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => {
                return Err(usage(format!("could not read {}: {e}", path.display())).into());
            }
        };
        Ok(Vars {
            env,
            dotenv,
            dotenv_path: path.display().to_string(),
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
    /// option in errors.
    pub fn interpolate(&self, value: &mut Value, file: &str, key: &str) -> Result<()> {
        match value {
            Value::String(s) => {
                *s = self.interpolate_str(s, file, key)?;
            }
            Value::Array(items) => {
                for item in items {
                    self.interpolate(item, file, key)?;
                }
            }
            Value::Object(map) => {
                for (k, v) in map.iter_mut() {
                    self.interpolate(v, file, &format!("{key}.{k}"))?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn interpolate_str(&self, s: &str, file: &str, key: &str) -> Result<String> {
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
            match self.get(name) {
                Some(value) => out.push_str(value),
                None if self.keep_missing => out.push_str(&rest[start..start + 2 + end + 1]),
                None => return Err(self.missing(name, file, key)),
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }
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
}

/// Parse `NAME=value` lines; `#` comments, blank lines, `export ` prefixes
/// and single or double quotes around the value are accepted. A `#` after a
/// value is part of it; `ferry init` quotes a value only when its edges need it.
pub fn parse_dotenv(text: &str, file: &str) -> Result<BTreeMap<String, String>> {
    let mut vars = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
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
        let value = unquote(value.trim());
        vars.insert(name.trim().to_string(), value.to_string());
    }
    Ok(vars)
}

fn is_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-')
}

/// The value of a line, without the quotes around it.
fn unquote(v: &str) -> &str {
    for q in ['"', '\''] {
        if v.len() >= 2 && v.starts_with(q) && v.ends_with(q) {
            return &v[1..v.len() - 1];
        }
    }
    v
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
        let vars = parse_dotenv("A=s3cr3t #1\nB=\"x # y\"\nC=a=b\n", ".env").unwrap();
        assert_eq!(vars["A"], "s3cr3t #1");
        assert_eq!(vars["B"], "x # y");
        assert_eq!(vars["C"], "a=b");
    }
}
