//! `account.json`: which connector, and its options. Flat, like the accounts
//! of the connector platforms users know: `{"connector": "sqlite", "path": ...}`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde_json::{Map, Value};

use crate::config::env::Vars;
use crate::config::json;
use crate::error::usage;

/// A connector and its options, with `${NAME}` references already replaced.
#[derive(Debug, Clone)]
pub struct Account {
    /// Where the account came from, for messages (a file path or a shorthand).
    pub source: String,
    /// The folder relative option paths resolve against.
    pub folder: PathBuf,
    /// The connector's code, as in `ferry connectors`.
    pub connector: String,
    /// Every key but `connector`.
    pub options: Map<String, Value>,
    /// The values `${NAME}` references put in, by the key they are in: a
    /// code connector's own keys have no spec to say which are secret, and
    /// a value kept out of account.json is one.
    pub from_vars: Vec<(String, String)>,
}

impl Account {
    /// Load `account.json` from `folder`, or the file given with `--account`
    /// (relative to `cwd`); see [`Account::from_value`] for `vars` and
    /// `replaying`.
    pub fn load(
        cwd: &Path,
        vars: &BTreeMap<String, String>,
        replaying: bool,
        folder: &Path,
        file: Option<&Path>,
    ) -> Result<Account> {
        let path = match file {
            Some(f) => crate::config::resolve(cwd, f),
            None => folder.join("account.json"),
        };
        if !path.exists() {
            let hint = if file.is_some() {
                "check the path given to --account".to_string()
            } else {
                // Name the folder as the user would type it from here.
                let init = match folder.strip_prefix(cwd) {
                    Ok(rel) if rel.as_os_str().is_empty() => "ferry init".to_string(),
                    Ok(rel) => format!("ferry init {}", rel.display()),
                    Err(_) => format!("ferry init {}", folder.display()),
                };
                format!(
                    "run `{init}` to create a connector folder, or pass -C DIR or --account FILE"
                )
            };
            return Err(usage(format!("no account file at {}", path.display()))
                .hint(hint)
                .into());
        }
        let value = json::read_file(&path)?;
        // Relative paths inside an account file are relative to that file.
        let account_folder = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| folder.to_path_buf());
        Account::from_value(
            vars,
            replaying,
            value,
            &path.display().to_string(),
            &account_folder,
        )
    }

    /// Build an account from JSON, replacing `${NAME}` from the environment
    /// variables `vars` and the `.env` file in `folder`. When `replaying` (a
    /// `--replay` cassette answers), a missing variable is kept as it is: a
    /// replay sends nothing, so a case or a cassette replays offline on a
    /// machine (CI) without the secrets.
    pub fn from_value(
        vars: &BTreeMap<String, String>,
        replaying: bool,
        value: Value,
        source: &str,
        folder: &Path,
    ) -> Result<Account> {
        let Value::Object(mut options) = value else {
            return Err(usage(format!("{source} must hold a JSON object"))
                .hint("write it as {\"connector\": \"sqlite\", ...}")
                .into());
        };
        let connector =
            match options.remove("connector") {
                Some(Value::String(c)) => c,
                Some(_) => {
                    return Err(usage(format!("\"connector\" in {source} must be a string"))
                        .hint("run `ferry connectors` to list the connector names")
                        .into())
                }
                None => return Err(usage(format!("{source} has no \"connector\" key"))
                    .hint("add \"connector\": \"sqlite\" (or another name from `ferry connectors`)")
                    .into()),
            };
        let mut vars = Vars::load(vars, folder)?;
        vars.keep_missing(replaying);
        let mut from_vars = Vec::new();
        for (key, value) in options.iter_mut() {
            for used in vars.interpolate(value, source, key)? {
                from_vars.push((key.clone(), used));
            }
        }
        Ok(Account {
            source: source.to_string(),
            folder: folder.to_path_buf(),
            connector,
            options,
            from_vars,
        })
    }
}
