//! A connector's options, checked against its spec: unknown keys are refused
//! with the nearest known key, defaults fill in, and a missing required option
//! names the key and the file to set it in. Secret values are handed to the
//! output so they are redacted everywhere.
//!
//! Each connector declares its options once, as a typed struct written with
//! [`connector_options!`]: a doc comment per field is the option's
//! description, and `#[option(...)]` gives its label, placeholder, type,
//! default, and whether it is required or secret. From that one declaration
//! come the serde struct the connector reads ([`Options::parse`]), the
//! [`OptionSpec`] list of its spec (what `ferry connectors NAME` prints,
//! what `init` scaffolds and what [`Options::new`] checks against), and the
//! option tables of README.md ([`table`], checked by a test), so the
//! documentation and the parsing cannot drift apart.
//!
//! A null or empty-string value counts as unset: an option with a default
//! takes it, a required one is missing.

use std::path::PathBuf;

use anyhow::Result;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::config::input::kind_of;
use crate::config::Account;
use crate::connector::spec::{FieldType, OptionSpec, Spec};
use crate::error::usage;
use crate::range::At;

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
        let mut extra_secrets = Vec::new();
        for (key, value) in &account.options {
            let Some(opt) = spec.option(key) else {
                if spec.account_values {
                    if crate::http::redact::is_sensitive(key) {
                        collect_strings(value, &mut extra_secrets);
                    }
                    // A value kept out of the file (`${NAME}`) is a secret
                    // whatever its key is called.
                    extra_secrets.extend(
                        (account.from_vars.iter())
                            .filter(|(k, _)| k == key)
                            .map(|(_, v)| v.clone()),
                    );
                    continue;
                }
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
        let mut secrets = extra_secrets;
        for opt in &spec.options {
            if values.get(opt.key).is_none_or(is_unset) {
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
            if options.values.get(opt.key).is_none_or(is_unset) {
                return Err(options.missing(opt.key));
            }
        }
        Ok(options)
    }

    /// The secret values, for redaction.
    pub fn secrets(&self) -> &[String] {
        &self.secrets
    }

    /// Every value of the account, defaults filled in: what a code
    /// connector hands its module.
    pub fn values(&self) -> &Map<String, Value> {
        &self.values
    }

    /// The options as the connector's typed config (declared with
    /// [`connector_options!`]). Keys, types, defaults and required options
    /// were checked by [`Options::new`]; what is left to refuse here is a
    /// field's own shape, in the message its deserializer words.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T> {
        self.parse_where(|_| true)
    }

    /// The part of the options a shared config (say the HTTP engine's)
    /// declares, for code that holds the account's options but not the
    /// connector's config.
    pub fn parse_part<T: DeserializeOwned + Described>(&self) -> Result<T> {
        let keys: Vec<&str> = T::option_specs().iter().map(|o| o.key).collect();
        self.parse_where(|key| keys.contains(&key))
    }

    fn parse_where<T: DeserializeOwned>(&self, keep: impl Fn(&str) -> bool) -> Result<T> {
        let set: Map<String, Value> = self
            .values
            .iter()
            .filter(|(k, v)| keep(k) && !is_unset(v))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        serde_json::from_value(Value::Object(set))
            .map_err(|e| usage(format!("{}: {e}", self.source)).into())
    }

    /// The folder of the account's file: where its relative paths point.
    pub fn folder(&self) -> &std::path::Path {
        &self.folder
    }

    /// A path option's value resolved against the account's folder.
    pub fn resolve(&self, path: &str) -> PathBuf {
        crate::config::resolve(&self.folder, path)
    }

    /// Where `key` is set, for range checks: this file, this key.
    pub fn at<'a>(&'a self, key: &'a str) -> At<'a> {
        At::file(&self.source, key)
    }

    /// The error for a required option that is not set: it names the key
    /// and the file to set it in.
    fn missing(&self, key: &str) -> anyhow::Error {
        usage(format!(
            "missing option \"{key}\" for connector {}",
            self.connector
        ))
        .hint(format!(
            "set \"{key}\" in {} (see `ferry connectors {}`)",
            self.source, self.connector
        ))
        .into()
    }

    /// Where the options came from, for messages.
    pub fn source(&self) -> &str {
        &self.source
    }
}

/// Whether `v` counts as not set: null or an empty string.
fn is_unset(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        _ => false,
    }
}

/// A number option as account.json holds it: a JSON number, or a string
/// holding one (what a `${VAR}` gives). It is kept as written so a range
/// check shows the value the user wrote (`18446744073709551615`, not
/// `1.8446744073709552e19`); the range lives with the code that uses it.
#[derive(Debug, Clone, PartialEq)]
pub struct Num(Value);

impl<'de> Deserialize<'de> for Num {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        match Value::deserialize(d)? {
            v @ (Value::Number(_) | Value::String(_)) => Ok(Num(v)),
            other => Err(serde::de::Error::custom(format!(
                "expected a number, got {}",
                kind_of(&other)
            ))),
        }
    }
}

impl Num {
    /// The value as a whole number, if it is one (a string is trimmed).
    pub fn as_u64(&self) -> Option<u64> {
        match &self.0 {
            Value::String(s) => s.trim().parse().ok(),
            v => v.as_u64(),
        }
    }

    /// The value as a number; NaN when it is none, so a range refuses it.
    pub fn as_f64(&self) -> f64 {
        match &self.0 {
            Value::String(s) => s.trim().parse().unwrap_or(f64::NAN),
            v => v.as_f64().unwrap_or(f64::NAN),
        }
    }

    /// A whole number from `min` to `max`; anything else (1e20, -1, 2.5)
    /// is an error naming the key, the file and the range, not a silent
    /// default.
    pub fn whole_in(&self, at: At, min: u64, max: u64, unit: &str) -> Result<u64> {
        Ok(match self.as_u64() {
            Some(n) => crate::range::int(n, at, min, max, unit)?,
            None => crate::range::whole(self.as_f64(), at, min, max, unit)?,
        })
    }

    /// A number of seconds from `min` to `max`.
    pub fn seconds_in(&self, at: At, min: f64, max: f64) -> Result<std::time::Duration> {
        let secs = crate::range::float(self.as_f64(), at, min, max, "seconds")?;
        Ok(std::time::Duration::from_secs_f64(secs))
    }
}

impl std::fmt::Display for Num {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl From<u64> for Num {
    fn from(n: u64) -> Num {
        Num(n.into())
    }
}

/// How a connector follows an async job, from its `pollIntervalMs` and
/// `maxPolls` options, range-checked.
pub fn polling(
    options: &Options,
    interval_ms: &Num,
    max_polls: &Num,
) -> Result<crate::http::Polling> {
    let at = options.at("pollIntervalMs");
    let wait = interval_ms.whole_in(at, 0, MAX_POLL_INTERVAL_MS, "milliseconds")?;
    let polls = max_polls.whole_in(options.at("maxPolls"), 1, MAX_POLLS, "polls")?;
    Ok(crate::http::Polling {
        first_wait: std::time::Duration::from_millis(wait),
        max_polls: polls as u32,
    })
}

/// A typed connector config declared with [`connector_options!`]: its
/// options, in the order they are declared.
pub trait Described {
    fn option_specs() -> Vec<OptionSpec>;
}

/// The length of `snake` in camelCase: its bytes less its underscores.
#[doc(hidden)]
pub const fn camel_len(snake: &str) -> usize {
    let b = snake.as_bytes();
    let (mut i, mut n) = (0, 0);
    while i < b.len() {
        if b[i] != b'_' {
            n += 1;
        }
        i += 1;
    }
    n
}

/// `snake` in camelCase, as serde's `rename_all = "camelCase"` spells a
/// field: a field's option key, computed at compile time so the key is a
/// `&'static str` that cannot differ from what serde reads.
#[doc(hidden)]
pub const fn camel<const N: usize>(snake: &str) -> [u8; N] {
    let b = snake.as_bytes();
    let mut out = [0u8; N];
    let (mut i, mut n, mut upper) = (0, 0, false);
    while i < b.len() {
        if b[i] == b'_' {
            upper = true;
        } else {
            out[n] = if upper {
                b[i].to_ascii_uppercase()
            } else {
                b[i]
            };
            upper = false;
            n += 1;
        }
        i += 1;
    }
    out
}

/// Declare a connector's options as a typed struct, once. Every field has a
/// doc comment (the option's description, its lines joined by spaces) and
/// `#[option(...)]` with any of `label = "..."`, `placeholder = "..."`,
/// `kind = FieldType::X` (default a string), `default = VALUE`, `required`,
/// `secret`; or `#[option(flatten)]` and `#[serde(flatten)]` for a struct of
/// shared options (the HTTP engine's), whose options take its place in the
/// list. The struct derives `Deserialize` with `deny_unknown_fields` and
/// camelCase keys, and implements [`Described`].
macro_rules! connector_options {
    (
        $(#[doc = $sdoc:literal])*
        $svis:vis struct $name:ident {
            $(
                $(#[doc = $doc:literal])*
                #[option($($meta:tt)*)]
                $(#[$extra:meta])*
                $fvis:vis $field:ident : $ty:ty
            ),* $(,)?
        }
    ) => {
        $(#[doc = $sdoc])*
        #[derive(Debug, Clone, serde::Deserialize)]
        #[serde(deny_unknown_fields, rename_all = "camelCase")]
        $svis struct $name {
            $(
                $(#[doc = $doc])*
                $(#[$extra])*
                $fvis $field: $ty,
            )*
        }

        impl $crate::connector::options::Described for $name {
            fn option_specs() -> Vec<$crate::connector::OptionSpec> {
                let mut specs = Vec::new();
                $(
                    specs.extend($crate::connector::options::option_field!(
                        [$($meta)*] $field $ty; $($doc)*
                    ));
                )*
                specs
            }
        }
    };
}
pub(crate) use connector_options;

/// The options one field of [`connector_options!`] contributes.
#[doc(hidden)]
macro_rules! option_field {
    ([flatten] $field:ident $ty:ty; $($doc:literal)*) => {
        <$ty as $crate::connector::options::Described>::option_specs()
    };
    ([$($meta:tt)*] $field:ident $ty:ty; $($doc:literal)+) => {{
        const RAW: &str = stringify!($field);
        const LEN: usize = $crate::connector::options::camel_len(RAW);
        const BYTES: [u8; LEN] = $crate::connector::options::camel::<LEN>(RAW);
        const KEY: &str = match std::str::from_utf8(&BYTES) {
            Ok(key) => key,
            Err(_) => panic!("an option's name is ASCII"),
        };
        let spec = $crate::connector::OptionSpec::new(KEY, concat!($($doc),+).trim());
        vec![$crate::connector::options::option_meta!(spec; $($meta)*)]
    }};
}
pub(crate) use option_field;

/// `#[option(...)]`'s settings applied to an [`OptionSpec`] one by one.
#[doc(hidden)]
macro_rules! option_meta {
    ($o:expr;) => { $o };
    ($o:expr; required $(, $($rest:tt)*)?) => {
        $crate::connector::options::option_meta!($o.mandatory(); $($($rest)*)?)
    };
    ($o:expr; secret $(, $($rest:tt)*)?) => {
        $crate::connector::options::option_meta!($o.secret(); $($($rest)*)?)
    };
    ($o:expr; $k:ident = $v:expr $(, $($rest:tt)*)?) => {
        $crate::connector::options::option_meta!($o.$k($v); $($($rest)*)?)
    };
}
pub(crate) use option_meta;

/// The Markdown table of a connector's options, as README.md shows it.
pub fn table(options: &[OptionSpec]) -> String {
    let mut out = String::from(
        "| option | type | required | secret | default | description |\n| --- | --- | --- | --- | --- | --- |\n",
    );
    for o in options {
        let default = match &o.default {
            None => String::new(),
            Some(Value::String(s)) => format!("`{s}`"),
            Some(v) => format!("`{v}`"),
        };
        let yes = |b: bool| if b { "yes" } else { "" };
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} | {} |\n",
            o.key,
            serde_json::to_value(o.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            yes(o.required),
            yes(o.secret),
            default.replace('|', "\\|"),
            o.description.replace('|', "\\|"),
        ));
    }
    out
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

/// `T` reads an account that sets every option `code` declares to a
/// value of its declared type: the types in `#[option(...)]` and the
/// field types agree, and so do the keys. Each [`registry::Entry`](crate::connector::registry::Entry)
/// holds it for its connector's `Config`.
#[cfg(test)]
pub(crate) fn reads_every_option<T: DeserializeOwned + Described>(code: &str) {
    let spec = crate::connector::registry::spec(code).unwrap();
    assert_eq!(
        T::option_specs().iter().map(|o| o.key).collect::<Vec<_>>(),
        spec.options.iter().map(|o| o.key).collect::<Vec<_>>(),
        "{code}"
    );
    let options = spec
        .options
        .iter()
        .map(|o| {
            let v = match o.kind {
                FieldType::Number | FieldType::Integer | FieldType::Any => serde_json::json!(5),
                FieldType::Boolean => serde_json::json!(true),
                FieldType::Object => serde_json::json!({}),
                FieldType::Array => serde_json::json!([]),
                _ => serde_json::json!("user_id"),
            };
            (o.key.to_string(), v)
        })
        .collect();
    let account = Account {
        source: "account.json".into(),
        folder: ".".into(),
        connector: code.into(),
        options,
        from_vars: Vec::new(),
    };
    let options = Options::new(&spec, &account).unwrap();
    if let Err(e) = options.parse::<T>() {
        panic!("{code}: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The marker after which README.md holds `code`'s option table.
    fn marker(code: &str) -> String {
        format!("<!-- options of {code}: generated from its config by `FERRY_UPDATE_DOCS=1 cargo test readme` -->\n")
    }

    const END: &str = "<!-- end of options -->";

    /// README.md's option tables are rendered from each connector's config,
    /// so the docs cannot drift from what is parsed. With
    /// `FERRY_UPDATE_DOCS=1` the test writes the tables instead.
    #[test]
    fn the_readme_option_tables_are_rendered_from_the_configs() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
        let readme = std::fs::read_to_string(&path).unwrap();
        let mut wanted = readme.clone();
        for spec in crate::connector::registry::specs() {
            let begin = marker(spec.code);
            let Some(at) = wanted.find(&begin) else {
                panic!(
                    "README.md has no option table for {}: add a line {begin}{END}",
                    spec.code
                );
            };
            let start = at + begin.len();
            let stop = start + wanted[start..].find(END).expect("the end of the options");
            wanted.replace_range(start..stop, &table(&spec.options));
        }
        if wanted == readme {
            return;
        }
        if std::env::var_os("FERRY_UPDATE_DOCS").is_some() {
            std::fs::write(&path, wanted).unwrap();
            return;
        }
        let first = readme
            .lines()
            .zip(wanted.lines())
            .find(|(a, b)| a != b)
            .map(|(a, b)| format!("README.md has\n  {a}\nthe config gives\n  {b}"))
            .unwrap_or_default();
        panic!("README.md's option tables differ from the connectors' configs; run `FERRY_UPDATE_DOCS=1 cargo test readme` to rewrite them\n{first}");
    }

    #[test]
    fn each_config_reads_every_option_its_spec_declares() {
        for entry in crate::connector::registry::entries() {
            (entry.reads_its_options)((entry.spec)().code);
        }
    }

    #[test]
    fn unset_values_take_the_default_and_required_ones_are_missing() {
        let spec = crate::connector::registry::spec("sqlite").unwrap();
        let account = |options: Value| Account {
            source: "account.json".into(),
            folder: ".".into(),
            connector: "sqlite".into(),
            options: options.as_object().cloned().unwrap(),
            from_vars: Vec::new(),
        };
        let o = Options::new(&spec, &account(json!({"path": "a.db", "table": ""}))).unwrap();
        let config: crate::connector::sqlite::SqliteOptions = o.parse().unwrap();
        assert_eq!(
            (config.table.as_str(), config.id_field.as_str()),
            ("records", "id")
        );
        let e = Options::new(&spec, &account(json!({"path": null}))).unwrap_err();
        assert_eq!(
            e.to_string(),
            "missing option \"path\" for connector sqlite"
        );
    }

    #[test]
    fn a_fields_own_check_words_its_error_with_the_file() {
        let spec = crate::connector::registry::spec("hubspot").unwrap();
        let account = Account {
            source: "account.json".into(),
            folder: ".".into(),
            connector: "hubspot".into(),
            options: json!({"accessToken": "t", "properties": ["email", 1]})
                .as_object()
                .cloned()
                .unwrap(),
            from_vars: Vec::new(),
        };
        let o = Options::new(&spec, &account).unwrap();
        let e = o
            .parse::<crate::connector::hubspot::HubSpotOptions>()
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "account.json: properties must be a list of property names"
        );
    }

    #[test]
    fn option_keys_are_the_camel_case_serde_reads() {
        assert_eq!(&camel::<15>("busy_timeout_secs"), b"busyTimeoutSecs");
        assert_eq!(camel_len("base_url"), 7);
        assert_eq!(&camel::<4>("path"), b"path");
    }

    #[test]
    fn numbers_may_be_written_as_strings_and_are_range_checked_as_written() {
        let at = At::file("account.json", "maxPolls");
        let n: Num = serde_json::from_value(serde_json::json!(" 7 ")).unwrap();
        assert_eq!(n.whole_in(at, 1, 10, "polls").unwrap(), 7);
        let n: Num = serde_json::from_value(serde_json::json!(u64::MAX)).unwrap();
        let e = n.whole_in(at, 1, 10, "polls").unwrap_err().to_string();
        assert!(e.contains("18446744073709551615 is out of range"), "{e}");
        let n: Num = serde_json::from_value(serde_json::json!(2.5)).unwrap();
        assert!(n.whole_in(at, 1, 10, "").is_err());
        assert!(serde_json::from_value::<Num>(serde_json::json!([1])).is_err());
    }
}
