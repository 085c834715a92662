//! Import and export TARGETs: a connector folder, an account file, or a
//! shorthand (`csv:PATH`, `jsonl:PATH`, `sqlite:PATH[#TABLE]`,
//! `postgres://USER@HOST:PORT/DB[#TABLE]`) that builds the account in memory. Each target also has a canonical form (absolute paths)
//! that names the checkpoint and tells a resumed run it points at the same
//! two systems.

use std::path::{Path, PathBuf};

use anyhow::Result;
use serde_json::{Map, Value};

use crate::config::Account;
use crate::connector::{registry, Connector};
use crate::ctx::Ctx;
use crate::error::usage;

/// A target as the user wrote it, parsed but not opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A built-in file or database connector named inline.
    Shorthand {
        connector: &'static str,
        path: PathBuf,
        table: Option<String>,
    },
    /// A PostgreSQL URL (`postgres://` or `postgresql://`) and a table.
    Database { url: String, table: Option<String> },
    /// A connector folder holding account.json, or an account file; told
    /// apart when the target is opened, so parsing needs no disk access.
    Account(PathBuf),
}

/// A target read from disk: the account to open, and a stable identity
/// (the shorthand with an absolute path, or the account file's path).
#[derive(Debug, Clone)]
pub struct Resolved {
    pub account: Account,
    pub identity: String,
}

const SHORTHANDS: [&str; 3] = ["csv", "jsonl", "sqlite"];

impl Target {
    /// Parse `text`; relative paths resolve against `cwd`. Only the shape is
    /// checked here: this runs before any I/O.
    pub fn parse(text: &str, cwd: &Path) -> Result<Target> {
        if text.is_empty() {
            return Err(usage("an empty TARGET")
                .hint("pass a connector folder, an account file, or csv:PATH, jsonl:PATH, sqlite:PATH[#TABLE]")
                .into());
        }
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            let (url, table) = match text.rsplit_once('#') {
                Some((url, table)) => (url, Some(table.to_string())),
                None => (text, None),
            };
            if table.as_deref() == Some("") {
                let shown = crate::connector::postgres::shown_url(url);
                return Err(usage(format!("target \"{shown}#\" has an empty table name"))
                    .hint("write it as postgres://USER@HOST:PORT/DB#TABLE, or leave out #TABLE for the default table")
                    .into());
            }
            return Ok(Target::Database {
                url: url.to_string(),
                table,
            });
        }
        if let Some((kind, rest)) = text.split_once(':') {
            // A one-letter prefix is a Windows drive, not a connector.
            if kind.len() > 1 && kind.chars().all(|c| c.is_ascii_alphanumeric()) {
                let Some(connector) = SHORTHANDS.iter().find(|s| **s == kind) else {
                    // A URL's password is never printed back.
                    let rest = crate::http::redact::redact_url(rest);
                    let text = crate::http::redact::redact_url(text);
                    let hint = match registry::nearest(kind, &SHORTHANDS) {
                        Some(n) => format!("did you mean \"{n}:{rest}\"?"),
                        None => "shorthands are csv:PATH, jsonl:PATH, sqlite:PATH[#TABLE] and postgres://USER@HOST:PORT/DB[#TABLE]; for another connector pass its folder or account file".into(),
                    };
                    return Err(
                        usage(format!("unknown target kind \"{kind}\" in \"{text}\""))
                            .hint(hint)
                            .into(),
                    );
                };
                let (path, table) = match (*connector, rest.split_once('#')) {
                    ("sqlite", Some((path, table))) => (path, Some(table.to_string())),
                    _ => (rest, None),
                };
                if path.is_empty() {
                    return Err(usage(format!("target \"{text}\" has no path"))
                        .hint(format!("write it as {kind}:data/customers.{kind}"))
                        .into());
                }
                if table.as_deref() == Some("") {
                    return Err(usage(format!("target \"{text}\" has an empty table name"))
                        .hint("write it as sqlite:PATH#TABLE, or leave out #TABLE for the default table")
                        .into());
                }
                return Ok(Target::Shorthand {
                    connector,
                    path: crate::config::resolve(cwd, path),
                    table,
                });
            }
        }
        Ok(Target::Account(crate::config::resolve(cwd, text)))
    }

    /// The target with absolute paths, as recorded in the checkpoint.
    pub fn canonical(&self) -> String {
        match self {
            Target::Shorthand {
                connector,
                path,
                table,
            } => {
                let mut s = format!("{connector}:{}", absolute(path).display());
                if let Some(t) = table {
                    s.push('#');
                    s.push_str(t);
                }
                s
            }
            // Without the password: the identity names checkpoint files.
            Target::Database { url, table } => format!(
                "{}#{}",
                crate::connector::postgres::shown_url(url),
                table.as_deref().unwrap_or("records")
            ),
            Target::Account(path) => absolute(&account_file(path)).display().to_string(),
        }
    }

    /// The account this target names.
    pub fn account(&self, ctx: &Ctx, text: &str) -> Result<Account> {
        match self {
            Target::Shorthand {
                connector,
                path,
                table,
            } => {
                let mut options = Map::new();
                options.insert("path".into(), Value::String(path.display().to_string()));
                if let Some(t) = table {
                    options.insert("table".into(), Value::String(t.clone()));
                }
                Ok(Account {
                    source: format!("target \"{text}\""),
                    folder: ctx.cwd.clone(),
                    connector: (*connector).to_string(),
                    options,
                    from_vars: Vec::new(),
                })
            }
            Target::Database { url, table } => {
                let mut options = Map::new();
                options.insert("url".into(), Value::String(url.clone()));
                if let Some(t) = table {
                    options.insert("table".into(), Value::String(t.clone()));
                }
                Ok(Account {
                    source: format!("target \"{}\"", self.canonical()),
                    folder: ctx.cwd.clone(),
                    connector: "postgres".to_string(),
                    options,
                    from_vars: Vec::new(),
                })
            }
            Target::Account(path) if path.is_dir() => ctx.account_in(path, None),
            Target::Account(file) => {
                let folder = file.parent().unwrap_or(Path::new("."));
                ctx.account_in(folder, Some(file))
            }
        }
    }

    /// Refuse a source file that does not exist: the file connectors read a
    /// missing file as empty, which for a source would "import" nothing and
    /// report success.
    pub fn must_exist(&self, text: &str) -> Result<()> {
        if let Target::Shorthand { path, .. } = self {
            if !path.exists() {
                return Err(usage(format!(
                    "source \"{text}\" names no file: {} does not exist",
                    path.display()
                ))
                .hint("check the path; relative paths start at the current directory, not at -C")
                .into());
            }
        }
        Ok(())
    }

    /// The account to open and the target's identity (for state files).
    pub fn resolve(&self, ctx: &Ctx) -> Result<Resolved> {
        let identity = self.canonical();
        let mut account = self.account(ctx, &identity)?;
        if let Target::Shorthand { .. } | Target::Database { .. } = self {
            // Summaries name the target by its absolute form (a database
            // by its URL without the password).
            account.source = identity.clone();
        }
        Ok(Resolved { account, identity })
    }

    /// Open the connector (options validated, secrets registered).
    pub fn open(&self, ctx: &Ctx, text: &str) -> Result<Box<dyn Connector>> {
        let account = self.account(ctx, text)?;
        ctx.open(&account)
    }
}

/// The account file a folder-or-file target names.
fn account_file(path: &Path) -> PathBuf {
    if path.is_dir() {
        path.join("account.json")
    } else {
        path.to_path_buf()
    }
}

/// `path` made absolute without requiring it to exist (a destination file
/// may not exist yet); the folder is canonicalised when it exists so that
/// `./a.db` and `a.db` name the same checkpoint.
fn absolute(path: &Path) -> PathBuf {
    if let Ok(p) = path.canonicalize() {
        return p;
    }
    match (path.parent(), path.file_name()) {
        (Some(dir), Some(name)) => match dir.canonicalize() {
            Ok(d) => d.join(name),
            Err(_) => path.to_path_buf(),
        },
        _ => path.to_path_buf(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shorthands_parse_with_paths_against_cwd() {
        let cwd = Path::new("/work/here");
        assert_eq!(
            Target::parse("jsonl:in.jsonl", cwd).unwrap(),
            Target::Shorthand {
                connector: "jsonl",
                path: PathBuf::from("/work/here/in.jsonl"),
                table: None
            }
        );
        assert_eq!(
            Target::parse("sqlite:/tmp/a.db#people", cwd).unwrap(),
            Target::Shorthand {
                connector: "sqlite",
                path: PathBuf::from("/tmp/a.db"),
                table: Some("people".into())
            }
        );
        // Only sqlite has tables; a # in a file name is part of the name.
        assert_eq!(
            Target::parse("csv:a#b.csv", cwd).unwrap(),
            Target::Shorthand {
                connector: "csv",
                path: PathBuf::from("/work/here/a#b.csv"),
                table: None
            }
        );
    }

    #[test]
    fn a_postgres_url_is_a_target_named_without_its_password() {
        let t = Target::parse(
            "postgres://ferry:pw@localhost:5432/crm#people",
            Path::new("/"),
        )
        .unwrap();
        assert_eq!(
            t,
            Target::Database {
                url: "postgres://ferry:pw@localhost:5432/crm".into(),
                table: Some("people".into())
            }
        );
        assert_eq!(t.canonical(), "postgres://ferry@localhost:5432/crm#people");
        let t = Target::parse("postgresql://localhost/crm", Path::new("/")).unwrap();
        assert_eq!(t.canonical(), "postgres://localhost:5432/crm#records");
        assert!(Target::parse("postgres://localhost/crm#", Path::new("/")).is_err());
    }

    #[test]
    fn bad_shorthands_are_usage_errors_with_a_hint() {
        let cwd = Path::new("/");
        let err = Target::parse("jsnl:x", cwd).unwrap_err();
        let f = crate::error::find_failure(&err).unwrap();
        assert_eq!(f.kind, crate::error::Kind::Usage);
        assert!(f.hint.as_deref().unwrap().contains("jsonl:x"));
        assert!(Target::parse("sqlite:", cwd).is_err());
        assert!(Target::parse("sqlite:a.db#", cwd).is_err());
        assert!(Target::parse("", cwd).is_err());
    }

    #[test]
    fn other_text_is_an_account_file_or_folder() {
        let dir = tempfile::tempdir().unwrap();
        let folder = Target::parse(".", dir.path()).unwrap();
        assert_eq!(folder, Target::Account(dir.path().join(".")));
        assert!(folder.canonical().ends_with("/account.json"));
        let file = Target::parse("acct.json", dir.path()).unwrap();
        assert!(file.canonical().ends_with("/acct.json"));
        // A drive letter is not a shorthand.
        assert!(matches!(
            Target::parse("c:x", dir.path()).unwrap(),
            Target::Account(_)
        ));
    }

    #[test]
    fn canonical_forms_ignore_dot_segments() {
        let dir = tempfile::tempdir().unwrap();
        let a = Target::parse("sqlite:./x.db#t", dir.path()).unwrap();
        let b = Target::parse("sqlite:x.db#t", dir.path()).unwrap();
        assert_eq!(a.canonical(), b.canonical());
        assert!(a.canonical().ends_with("x.db#t"));
    }
}
