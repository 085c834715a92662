//! A TARGET of `export --to` / `--from` (and import): a connector folder, an
//! account file, or a shorthand `csv:PATH`, `jsonl:PATH`,
//! `sqlite:PATH[#TABLE]`. Parsing is pure; [`TargetSpec::resolve`] reads the
//! files and yields an [`Account`] plus a stable identity for state files.

use std::path::{Path, PathBuf};

use anyhow::Result;
use serde_json::{json, Map, Value};

use crate::config::Account;
use crate::ctx::Ctx;
use crate::error::usage;

/// What a TARGET argument says, before any file is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetSpec {
    /// `csv:PATH`, `jsonl:PATH` or `sqlite:PATH[#TABLE]`.
    Shorthand {
        connector: &'static str,
        path: PathBuf,
        table: Option<String>,
    },
    /// A connector folder (holding account.json) or an account file.
    Path(PathBuf),
}

/// A resolved target: the account to open and who it is, for state files.
#[derive(Debug, Clone)]
pub struct Target {
    pub account: Account,
    /// A stable description: the shorthand with an absolute path, or the
    /// account file's absolute path.
    pub identity: String,
}

impl TargetSpec {
    /// Parse a TARGET argument.
    pub fn parse(raw: &str) -> Result<TargetSpec> {
        if raw.trim().is_empty() {
            return Err(usage("the target is empty")
                .hint("give a connector folder, an account file, or csv:PATH, jsonl:PATH, sqlite:PATH[#TABLE]")
                .into());
        }
        for connector in ["csv", "jsonl", "sqlite"] {
            let Some(rest) = raw
                .strip_prefix(connector)
                .and_then(|r| r.strip_prefix(':'))
            else {
                continue;
            };
            let (path, table) = match (connector, rest.rsplit_once('#')) {
                ("sqlite", Some((p, t))) if !t.is_empty() => (p, Some(t.to_string())),
                _ => (rest, None),
            };
            if path.is_empty() {
                return Err(usage(format!("target \"{raw}\" names no file"))
                    .hint(format!(
                        "write it as {connector}:customers.{}",
                        if connector == "sqlite" {
                            "db"
                        } else {
                            connector
                        }
                    ))
                    .into());
            }
            return Ok(TargetSpec::Shorthand {
                connector,
                path: PathBuf::from(path),
                table,
            });
        }
        Ok(TargetSpec::Path(PathBuf::from(raw)))
    }

    /// Read what the target points at; relative paths start at the working directory.
    pub fn resolve(&self, ctx: &Ctx) -> Result<Target> {
        match self {
            TargetSpec::Shorthand {
                connector,
                path,
                table,
            } => {
                let abs = crate::config::resolve(&ctx.cwd, path);
                let mut options = Map::new();
                options.insert("connector".into(), json!(connector));
                options.insert("path".into(), json!(abs.display().to_string()));
                let mut identity = format!("{connector}:{}", abs.display());
                if let Some(t) = table {
                    options.insert("table".into(), json!(t));
                    identity.push('#');
                    identity.push_str(t);
                }
                let source = format!("{connector}:{}", path.display());
                let account = Account::from_value(ctx, Value::Object(options), &source, &ctx.cwd)?;
                Ok(Target { account, identity })
            }
            TargetSpec::Path(path) => {
                let abs = crate::config::resolve(&ctx.cwd, path);
                let file = if abs.is_dir() {
                    abs.join("account.json")
                } else {
                    abs.clone()
                };
                if !file.exists() {
                    return Err(usage(format!(
                        "no connector folder or account file at {}",
                        abs.display()
                    ))
                    .hint("give a folder holding account.json, an account file, or csv:PATH, jsonl:PATH, sqlite:PATH[#TABLE]")
                    .into());
                }
                let folder = file.parent().unwrap_or(Path::new(".")).to_path_buf();
                let account = Account::load(ctx, &folder, Some(&file))?;
                let identity = file.canonicalize().unwrap_or(file).display().to_string();
                Ok(Target { account, identity })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shorthands_and_paths_parse() {
        assert_eq!(
            TargetSpec::parse("sqlite:out/crm.db#contacts").unwrap(),
            TargetSpec::Shorthand {
                connector: "sqlite",
                path: "out/crm.db".into(),
                table: Some("contacts".into())
            }
        );
        assert_eq!(
            TargetSpec::parse("csv:a#b.csv").unwrap(),
            TargetSpec::Shorthand {
                connector: "csv",
                path: "a#b.csv".into(),
                table: None
            }
        );
        assert_eq!(
            TargetSpec::parse("crm").unwrap(),
            TargetSpec::Path("crm".into())
        );
        assert!(TargetSpec::parse("jsonl:").is_err());
        assert!(TargetSpec::parse("").is_err());
    }
}
