//! `in.json`: one section per action (`get: {id}`, `insert: {value}`,
//! `patch: {id, value}`, `delete: {id}`, `getupdates: {lastSync}`). A flag on
//! the command line wins over the file.

use std::path::{Path, PathBuf};

use anyhow::Result;
use serde_json::{Map, Value};

use crate::config::json;
use crate::error::usage;
use crate::output::Output;

/// The parsed `in.json`, or nothing when the folder has none.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    path: Option<PathBuf>,
    sections: Map<String, Value>,
}

impl Inputs {
    /// Load `in.json` from `folder`, or the file given with `--input`.
    /// A missing default file is fine (flags may give everything); a missing
    /// file named with `--input` (relative to `cwd`) is an error. A section
    /// that looks misspelt is a warning on `out`.
    pub fn load(cwd: &Path, out: &Output, folder: &Path, file: Option<&Path>) -> Result<Inputs> {
        let path = match file {
            Some(f) => crate::config::resolve(cwd, f),
            None => folder.join("in.json"),
        };
        if !path.exists() {
            if file.is_some() {
                return Err(usage(format!("no input file at {}", path.display()))
                    .hint("check the path given to --input")
                    .into());
            }
            return Ok(Inputs::default());
        }
        let source = path.display().to_string();
        match json::read_file(&path)? {
            Value::Object(sections) => {
                warn_misspelt_sections(out, &sections, &source);
                check_section_keys(&sections, &source)?;
                Ok(Inputs {
                    path: Some(path),
                    sections,
                })
            }
            _ => Err(usage(format!("{source} must hold a JSON object"))
                .hint("write one section per action: {\"get\": {\"id\": \"...\"}}")
                .into()),
        }
    }

    /// Where `action.key` would be set, for messages.
    pub fn describe(&self, action: &str, key: &str) -> String {
        match &self.path {
            Some(p) => format!("\"{action}\".\"{key}\" in {}", p.display()),
            None => format!("\"{action}\".\"{key}\" in in.json"),
        }
    }

    /// The value of `action.key`, if the file has it.
    pub fn get(&self, action: &str, key: &str) -> Result<Option<&Value>> {
        match self.sections.get(action) {
            None => Ok(None),
            Some(Value::Object(section)) => Ok(section.get(key)),
            Some(_) => Err(usage(format!(
                "section \"{action}\" in {} must be a JSON object",
                self.file_name()
            ))
            .hint(format!("write it as \"{action}\": {{\"{key}\": ...}}"))
            .into()),
        }
    }

    /// A section as a whole (export reads its profiles from one).
    pub fn section(&self, action: &str) -> Option<&Value> {
        self.sections.get(action)
    }

    /// A string input: the flag if given, else `action.key`, else `None`.
    pub fn string(&self, action: &str, key: &str, flag: Option<String>) -> Result<Option<String>> {
        if flag.is_some() {
            return Ok(flag);
        }
        match self.get(action, key)? {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(other) => Err(usage(format!(
                "{} must be a string, got {}",
                self.describe(action, key),
                kind_of(other)
            ))
            .hint(format!("write it as \"{key}\": \"...\""))
            .into()),
        }
    }

    /// A required string input; the error names the flag and the in.json key.
    pub fn require_string(
        &self,
        action: &str,
        key: &str,
        flag_name: &str,
        flag: Option<String>,
    ) -> Result<String> {
        let value = self.string(action, key, flag)?.filter(|v| !v.is_empty());
        value.ok_or_else(|| {
            usage(format!("no {key} given for {action}"))
                .hint(format!(
                    "pass {flag_name} or set {}",
                    self.describe(action, key)
                ))
                .into()
        })
    }

    /// A required JSON object input (`insert.value`, `patch.value`).
    pub fn require_object(
        &self,
        action: &str,
        key: &str,
        flag_name: &str,
        flag: Option<Value>,
    ) -> Result<Map<String, Value>> {
        let value = match flag {
            Some(v) => v,
            None => match self.get(action, key)? {
                Some(v) => v.clone(),
                None => {
                    return Err(usage(format!("no {key} given for {action}"))
                        .hint(format!(
                            "pass {flag_name} '{{\"name\": \"Ada\"}}' or set {}",
                            self.describe(action, key)
                        ))
                        .into())
                }
            },
        };
        match value {
            Value::Object(map) => Ok(map),
            other => Err(usage(format!(
                "the {key} for {action} must be a JSON object, got {}",
                kind_of(&other)
            ))
            .hint(format!(
                "pass {flag_name} '{{\"name\": \"Ada\"}}' or set {} to an object",
                self.describe(action, key)
            ))
            .into()),
        }
    }

    fn file_name(&self) -> String {
        self.path
            .as_ref()
            .map_or_else(|| "in.json".to_string(), |p| p.display().to_string())
    }
}

/// The sections of in.json that commands read. `init` is SyncPenguin's:
/// the account info its tool runs a module's `init` with; a code
/// connector's account takes its values under account.json's
/// (`Ctx::open`), so a SyncPenguin folder runs unchanged, and `ferry check`
/// is how a module's `init` runs alone.
pub const SECTIONS: &[&str] = &[
    "init",
    "get",
    "insert",
    "patch",
    "delete",
    "getupdates",
    "export",
    "import",
];

/// The keys commands read in each section whose keys are fixed (`import`
/// has none of its own). A key outside them would be silently ignored, and
/// the command would run on the wrong input or say none was given.
const SECTION_KEYS: &[(&str, &[&str])] = &[
    ("get", &["id"]),
    ("insert", &["value"]),
    ("patch", &["id", "value"]),
    ("delete", &["id"]),
    ("getupdates", &["lastSync"]),
    ("export", &["profiles", "map"]),
];

/// Refuse an unknown key inside a known section, as account.json refuses
/// an unknown option: with the nearest known key, or the list of them.
fn check_section_keys(sections: &Map<String, Value>, source: &str) -> Result<()> {
    for (section, keys) in SECTION_KEYS {
        let Some(Value::Object(given)) = sections.get(*section) else {
            continue;
        };
        let Some(key) = given.keys().find(|k| !keys.contains(&k.as_str())) else {
            continue;
        };
        let err = usage(format!(
            "unknown key \"{key}\" in section \"{section}\" of {source}"
        ));
        let err = match crate::config::nearest(key, keys) {
            Some(near) => err.hint(format!("did you mean \"{near}\"?")),
            None => err.hint(format!(
                "the keys of \"{section}\" are: {}",
                keys.join(", ")
            )),
        };
        return Err(err.into());
    }
    Ok(())
}

/// A section one typo away from a known one is silently ignored otherwise,
/// and the command then runs on the wrong input (or says none was given).
fn warn_misspelt_sections(out: &Output, sections: &Map<String, Value>, source: &str) {
    for name in sections.keys() {
        if SECTIONS.contains(&name.as_str()) {
            continue;
        }
        if let Some(near) = misspelt(name) {
            out.warn(&format!(
                "no command reads section \"{name}\" of {source}; did you mean \"{near}\"?"
            ));
        }
    }
}

/// The known section `name` is most likely a typo of: one edit away (a
/// transposition or a wrong case counts as one), or two for longer names.
fn misspelt(name: &str) -> Option<&'static str> {
    let lower = name.to_lowercase();
    SECTIONS
        .iter()
        .map(|s| (strsim::damerau_levenshtein(&lower, s), *s))
        .filter(|(d, _)| *d == 0 || *d == 1 || (*d == 2 && lower.len() >= 6))
        .min_by_key(|(d, _)| *d)
        .map(|(_, s)| s)
}

/// "a string", "an array"…: for messages about a value of the wrong type.
pub fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Parse a `--value` flag: inline JSON, or `@FILE` to read it from a file
/// (relative to `cwd`).
pub fn parse_value_flag(cwd: &Path, raw: &str) -> Result<Value> {
    match raw.strip_prefix('@') {
        Some(file) => json::read_file(&crate::config::resolve(cwd, file)),
        None => json::parse(raw, "--value"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn misspelt_sections_are_recognised() {
        assert_eq!(misspelt("getUpdates"), Some("getupdates"));
        assert_eq!(misspelt("gte"), Some("get"));
        assert_eq!(misspelt("delet"), Some("delete"));
        assert_eq!(misspelt("getupdate"), Some("getupdates"));
        assert_eq!(misspelt("notes"), None);
        assert_eq!(misspelt("x"), None);
    }
}
