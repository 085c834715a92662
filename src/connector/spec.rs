//! What a connector declares about itself: options, record fields, roles,
//! actions and limits. `ferry connectors NAME` prints this, `init` writes
//! templates from it and options are validated against it.

use std::path::Path;

use serde::Serialize;
use serde_json::Value;

use super::{actions_of, Declared};

fn serialize_actions<S: serde::Serializer>(
    capabilities: &&'static [Declared],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    actions_of(capabilities).serialize(serializer)
}

/// A connector's declaration.
#[derive(Debug, Clone, Serialize)]
pub struct Spec {
    /// The name used in account.json's `connector` key.
    pub code: &'static str,
    pub label: &'static str,
    pub description: &'static str,
    /// Whether it can be read from, written to, or both.
    pub roles: Vec<Role>,
    /// The keys account.json may hold besides `connector`.
    pub options: Vec<OptionSpec>,
    /// The fields of its records, as far as the system declares them.
    pub fields: Vec<FieldSpec>,
    /// Whether records may carry fields beyond `fields`.
    #[serde(rename = "extraFields")]
    pub extra_fields: bool,
    /// What it can do: the type's `CAPABILITIES` from its one
    /// [`capabilities!`](crate::capabilities) declaration, shown as the
    /// actions it supports; every other one answers "cannot".
    #[serde(rename = "actions", serialize_with = "serialize_actions")]
    pub capabilities: &'static [Declared],
    /// The largest batch it writes at once.
    #[serde(rename = "maxBatchSize")]
    pub max_batch_size: usize,
    /// How many batches it accepts in parallel.
    pub parallelism: usize,
    /// Whether account.json may hold keys beyond `options`: a code
    /// connector's own account values (an API token, a workspace), handed
    /// to its module as they are. A key whose name says it is a secret
    /// (by [`crate::http::redact::is_sensitive`]) is redacted.
    #[serde(rename = "accountValues", skip_serializing_if = "std::ops::Not::not")]
    pub account_values: bool,
    /// The local file that holds its records (csv, jsonl, sqlite): a test
    /// case keeps a copy of it and replays against that copy, so `ferry
    /// test` never changes the live store.
    #[serde(skip)]
    pub store: Option<StoreFile>,
}

/// How a connector's records live in one local file.
#[derive(Debug, Clone, Copy)]
pub struct StoreFile {
    /// The option of account.json that names the file.
    pub option: &'static str,
    /// The file's content as of now, consistent (SQLite folds its
    /// write-ahead log in); `None` when the file does not exist yet.
    pub snapshot: fn(&Path) -> anyhow::Result<Option<Vec<u8>>>,
}

impl StoreFile {
    /// A store whose file is its content (CSV, JSON lines).
    pub fn plain(option: &'static str) -> StoreFile {
        StoreFile {
            option,
            snapshot: read_if_present,
        }
    }
}

fn read_if_present(path: &Path) -> anyhow::Result<Option<Vec<u8>>> {
    use anyhow::Context;
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("could not read {}", path.display())),
    }
}

impl Spec {
    /// The actions its capabilities give (`check` first).
    pub fn actions(&self) -> Vec<Action> {
        actions_of(self.capabilities)
    }

    pub fn can(&self, action: Action) -> bool {
        self.actions().contains(&action)
    }

    pub fn option(&self, key: &str) -> Option<&OptionSpec> {
        self.options.iter().find(|o| o.key == key)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Source,
    Destination,
}

/// The actions a connector's capabilities give, named as the user runs
/// them (`ferry connectors` prints these): a command, or the side of an
/// import or export the connector can take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Action {
    #[serde(rename = "check")]
    Check,
    #[serde(rename = "get")]
    Get,
    #[serde(rename = "insert")]
    Insert,
    #[serde(rename = "patch")]
    Patch,
    #[serde(rename = "delete")]
    Delete,
    #[serde(rename = "getupdates")]
    GetUpdates,
    /// Read the records page by page (import's source side).
    #[serde(rename = "import source")]
    ReadPage,
    /// Write a batch of upserts with one outcome per record (import's destination side).
    #[serde(rename = "import destination")]
    UpsertBatch,
    /// Receive exported profiles: create, update (with clears), delete, find by key.
    #[serde(rename = "export")]
    ExportProfiles,
    /// Hold group memberships (lists, tags, segments) of exported profiles.
    #[serde(rename = "export groups")]
    Groups,
}

/// One option of account.json.
#[derive(Debug, Clone, Serialize)]
pub struct OptionSpec {
    pub key: &'static str,
    pub label: &'static str,
    pub description: &'static str,
    pub placeholder: &'static str,
    #[serde(rename = "type")]
    pub kind: FieldType,
    pub required: bool,
    /// Never printed; `init` writes it as a `${VAR}` reference.
    pub secret: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
}

impl OptionSpec {
    /// An optional string option with no label yet; what
    /// `connector_options!` starts each field from.
    pub fn new(key: &'static str, description: &'static str) -> Self {
        OptionSpec {
            key,
            label: "",
            description,
            placeholder: "",
            kind: FieldType::String,
            required: false,
            secret: false,
            default: None,
        }
    }

    pub fn label(mut self, label: &'static str) -> Self {
        self.label = label;
        self
    }

    /// Required: a missing value is an error naming the key and the file.
    pub fn mandatory(mut self) -> Self {
        self.required = true;
        self
    }

    pub fn placeholder(mut self, p: &'static str) -> Self {
        self.placeholder = p;
        self
    }

    pub fn default(mut self, v: impl Into<Value>) -> Self {
        self.default = Some(v.into());
        self
    }

    pub fn secret(mut self) -> Self {
        self.secret = true;
        self
    }

    pub fn kind(mut self, kind: FieldType) -> Self {
        self.kind = kind;
        self
    }
}

/// A field of a connector's records.
#[derive(Debug, Clone, Serialize)]
pub struct FieldSpec {
    /// Declared in a spec (`&'static str`), or read from the destination
    /// live (`ferry fields`, export's checks).
    pub name: std::borrow::Cow<'static, str>,
    #[serde(rename = "type")]
    pub kind: FieldType,
    pub required: bool,
    pub description: std::borrow::Cow<'static, str>,
    /// A value for `ferry init`'s example record (JSON text), where the
    /// one made from the type would not do ("subscribed" for a status).
    #[serde(skip)]
    pub example: Option<&'static str>,
}

impl FieldSpec {
    pub fn new(name: &'static str, kind: FieldType, description: &'static str) -> Self {
        FieldSpec {
            name: std::borrow::Cow::Borrowed(name),
            kind,
            required: false,
            description: std::borrow::Cow::Borrowed(description),
            example: None,
        }
    }

    /// A field read from the destination itself (a table's column, a
    /// vendor's custom property), whose name is known only at run time.
    pub fn named(
        name: String,
        kind: FieldType,
        description: impl Into<std::borrow::Cow<'static, str>>,
    ) -> Self {
        FieldSpec {
            name: std::borrow::Cow::Owned(name),
            description: description.into(),
            ..FieldSpec::new("", kind, "")
        }
    }

    /// The field's example for `ferry init` (JSON text).
    pub fn example(mut self, json: &'static str) -> Self {
        self.example = Some(json);
        self
    }

    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }

    /// The one field of a store whose records are keyed by the field its
    /// `idField` option names (files and databases): `id`, a string, which
    /// the validator reads as that field.
    pub fn store_id() -> Self {
        FieldSpec::new(
            "id",
            FieldType::String,
            "The record's identifier (the idField option names it)",
        )
        .required()
    }
}

/// The JSON type of a field or option, with dates as ISO 8601 strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldType {
    String,
    Number,
    Integer,
    Boolean,
    /// `YYYY-MM-DD`.
    Date,
    /// RFC 3339.
    Datetime,
    Object,
    Array,
    Any,
}

impl FieldType {
    /// Whether `value` has this type (null is accepted everywhere).
    pub fn accepts(self, value: &Value) -> bool {
        match (self, value) {
            (_, Value::Null) | (FieldType::Any, _) => true,
            (FieldType::String, Value::String(_)) => true,
            (FieldType::Number, Value::Number(_)) => true,
            (FieldType::Integer, Value::Number(n)) => n.is_i64() || n.is_u64(),
            (FieldType::Boolean, Value::Bool(_)) => true,
            (FieldType::Date, Value::String(s)) => is_plain_date(s),
            (FieldType::Datetime, Value::String(s)) => {
                chrono::DateTime::parse_from_rfc3339(s).is_ok()
            }
            (FieldType::Object, Value::Object(_)) => true,
            (FieldType::Array, Value::Array(_)) => true,
            _ => false,
        }
    }
}

/// Whether `s` is exactly `YYYY-MM-DD` and a real day. chrono alone would
/// also take `1990-5-1` or `+1990-05-01`, which an API expecting ISO 8601
/// may refuse.
pub fn is_plain_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b.iter().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        })
        && chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok()
}

/// `s` as an ISO 8601 date (`YYYY-MM-DD`): a plain date as it is, a full
/// date-time (`YYYY-MM-DDTHH:MM:SS[.fff]`, with `Z`, an offset or none)
/// cut to the date it was written with; anything else is no date.
pub fn iso_date(s: &str) -> Option<String> {
    if is_plain_date(s) {
        return Some(s.to_string());
    }
    let (date, time) = (s.get(..10)?, s.get(10..)?);
    if !is_plain_date(date) || !time.starts_with(['T', 't']) {
        return None;
    }
    let full = chrono::DateTime::parse_from_rfc3339(s).is_ok()
        || chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f").is_ok();
    full.then(|| date.to_string())
}

#[cfg(test)]
mod date_tests {
    use super::*;

    #[test]
    fn iso_dates_are_a_plain_date_or_a_full_date_time_cut_to_its_date() {
        for (text, date) in [
            ("1990-05-12", "1990-05-12"),
            ("1990-05-12T10:20:30Z", "1990-05-12"),
            ("1990-05-12T10:20:30.123Z", "1990-05-12"),
            ("1990-05-12T23:00:00-05:00", "1990-05-12"),
            ("1990-05-12T10:20:30", "1990-05-12"),
            ("1990-05-12T10:20:30.5", "1990-05-12"),
            ("2000-02-29", "2000-02-29"),
        ] {
            assert_eq!(iso_date(text).as_deref(), Some(date), "{text}");
        }
        for text in [
            "12/05/1990",
            "1990-13-01",
            "1990-02-30",
            "1990-5-1",
            "+1990-05-01",
            "19900512",
            "1990-05-12 ",
            " 1990-05-12",
            "1990-05-12T",
            "1990-05-12T10",
            "1990-05-12T10:20",
            "1990-05-12X10:20:30Z",
            "1990-05-12T25:00:00Z",
            "May 12, 1990",
            "",
            "1990-05-12\u{e9}",
            "\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}",
        ] {
            assert_eq!(iso_date(text), None, "{text:?}");
        }
    }

    #[test]
    fn a_date_field_accepts_only_a_plain_date_and_null() {
        use serde_json::json;
        assert!(FieldType::Date.accepts(&json!("1990-05-12")));
        assert!(FieldType::Date.accepts(&json!(null)));
        for v in [
            json!("1990-5-12"),
            json!(19900512),
            json!(""),
            json!("1990-05-12T00:00:00Z"),
        ] {
            assert!(!FieldType::Date.accepts(&v), "{v}");
        }
    }
}
