//! A connector's options, checked against its spec: unknown keys are refused
//! with the nearest known key, defaults fill in, and a missing required option
//! names the key and the file to set it in. Secret values are handed to the
//! output so they are redacted everywhere.

use std::path::PathBuf;

use anyhow::Result;
use serde_json::{Map, Value};

use crate::config::input::kind_of;
use crate::config::Account;
use crate::connector::spec::{FieldType, Spec};
use crate::error::usage;

/// The first wait of a connector polling an async job (`pollIntervalMs`):
/// up to a minute; it doubles from there, so more would overflow a wait.
pub const MAX_POLL_INTERVAL_MS: u64 = 60_000;
/// Polls of one async job (`maxPolls`).
pub const MAX_POLLS: u64 = 10_000;

/// Validated options of one account.
#[derive(Debug, Clone)]
pub struct Options {
    connector: &'static str,
    source: String,
    folder: PathBuf,
    values: Map<String, Value>,
    secrets: Vec<String>,
}

impl Options {
    /// Check `account` against `spec` and fill in defaults.
    pub fn new(spec: &Spec, account: &Account) -> Result<Options> {
        for (key, value) in &account.options {
            let Some(opt) = spec.option(key) else {
                let known: Vec<&str> = spec.options.iter().map(|o| o.key).collect();
                let mut err = usage(format!(
                    "unknown option \"{key}\" for connector {} in {}",
                    spec.code, account.source
                ));
                err = match crate::connector::registry::nearest(key, &known) {
                    Some(near) => err.hint(format!("did you mean \"{near}\"?")),
                    None => err.hint(format!(
                        "the options of {} are: {}",
                        spec.code,
                        known.join(", ")
                    )),
                };
                return Err(err.into());
            };
            if !type_matches(opt.kind, value) {
                return Err(usage(format!(
                    "option \"{key}\" of connector {} in {} must be {}, got {}",
                    spec.code,
                    account.source,
                    describe_type(opt.kind),
                    kind_of(value)
                ))
                .hint(format!(
                    "{}; see `ferry connectors {}`",
                    opt.description, spec.code
                ))
                .into());
            }
        }
        let mut values = account.options.clone();
        let mut secrets = Vec::new();
        for opt in &spec.options {
            if !values.contains_key(opt.key) {
                if let Some(default) = &opt.default {
                    values.insert(opt.key.to_string(), default.clone());
                }
            }
            if opt.secret {
                if let Some(v) = values.get(opt.key) {
                    collect_strings(v, &mut secrets);
                }
            }
        }
        let options = Options {
            connector: spec.code,
            source: account.source.clone(),
            folder: account.folder.clone(),
            values,
            secrets,
        };
        for opt in spec.options.iter().filter(|o| o.required) {
            options.require(opt.key)?;
        }
        Ok(options)
    }

    /// The secret values, for redaction.
    pub fn secrets(&self) -> &[String] {
        &self.secrets
    }

    pub fn value(&self, key: &str) -> Option<&Value> {
        self.values.get(key).filter(|v| !v.is_null())
    }

    /// A string option, if set (or defaulted).
    pub fn string(&self, key: &str) -> Option<String> {
        match self.value(key)? {
            Value::String(s) if s.is_empty() => None,
            Value::String(s) => Some(s.clone()),
            other => Some(other.to_string()),
        }
    }

    /// A required string option; the error names the key and the file.
    pub fn require(&self, key: &str) -> Result<String> {
        self.string(key).ok_or_else(|| {
            usage(format!(
                "missing option \"{key}\" for connector {}",
                self.connector
            ))
            .hint(format!(
                "set \"{key}\" in {} (see `ferry connectors {}`)",
                self.source, self.connector
            ))
            .into()
        })
    }

    /// A required path option, resolved against the account's folder.
    pub fn require_path(&self, key: &str) -> Result<PathBuf> {
        Ok(crate::config::resolve(&self.folder, self.require(key)?))
    }

    pub fn u64(&self, key: &str) -> Option<u64> {
        self.value(key).and_then(Value::as_u64)
    }

    /// A whole-number option from `min` to `max`, or `None` when it is not
    /// set; anything else (1e20, -1, 2.5) is an error naming the key, the
    /// file and the range, not a silent default.
    pub fn u64_in(&self, key: &str, min: u64, max: u64, unit: &str) -> Result<Option<u64>> {
        let Some(v) = self.value(key) else {
            return Ok(None);
        };
        let at = crate::range::At::file(&self.source, key);
        Ok(Some(match v.as_u64() {
            Some(n) => crate::range::int(n, at, min, max, unit)?,
            None => crate::range::whole(v.as_f64().unwrap_or(f64::NAN), at, min, max, unit)?,
        }))
    }

    pub fn f64(&self, key: &str) -> Option<f64> {
        self.value(key).and_then(Value::as_f64)
    }

    /// The `pollIntervalMs` and `maxPolls` options of a connector that polls
    /// an async job: the first wait (default 1 s) and how many polls
    /// (default `default_polls`), each range-checked.
    pub fn polling(&self, default_polls: u32) -> Result<(std::time::Duration, u32)> {
        let wait = self
            .u64_in("pollIntervalMs", 0, MAX_POLL_INTERVAL_MS, "milliseconds")?
            .unwrap_or(1000);
        let polls = self
            .u64_in("maxPolls", 1, MAX_POLLS, "polls")?
            .map_or(default_polls, |n| n as u32);
        Ok((std::time::Duration::from_millis(wait), polls))
    }

    /// A number of seconds from `min` to `max` (a defaulted option is
    /// always set); out of range names the file, the key and the range.
    pub fn seconds_in(&self, key: &str, min: f64, max: f64) -> Result<std::time::Duration> {
        let secs = self.f64(key).unwrap_or(min);
        let at = crate::range::At::file(&self.source, key);
        let secs = crate::range::float(secs, at, min, max, "seconds")?;
        Ok(std::time::Duration::from_secs_f64(secs))
    }

    /// Where the options came from, for messages.
    pub fn source(&self) -> &str {
        &self.source
    }
}

fn type_matches(kind: FieldType, value: &Value) -> bool {
    match kind {
        // Options written as strings may hold numbers and booleans from ${VAR}s.
        FieldType::Number | FieldType::Integer | FieldType::Boolean => {
            kind.accepts(value) || value.is_string()
        }
        _ => kind.accepts(value),
    }
}

fn describe_type(kind: FieldType) -> &'static str {
    match kind {
        FieldType::String | FieldType::Date | FieldType::Datetime => "a string",
        FieldType::Number | FieldType::Integer => "a number",
        FieldType::Boolean => "a boolean",
        FieldType::Object => "an object",
        FieldType::Array => "an array",
        FieldType::Any => "any value",
    }
}

fn collect_strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|v| collect_strings(v, out)),
        Value::Object(m) => m.values().for_each(|v| collect_strings(v, out)),
        _ => {}
    }
}

impl crate::http::AccountOptions for Options {
    fn value(&self, key: &str) -> Option<&Value> {
        Options::value(self, key)
    }

    fn string(&self, key: &str) -> Option<String> {
        Options::string(self, key)
    }
}
