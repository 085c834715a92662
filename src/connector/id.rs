//! Record identifiers: what may identify a record (a non-empty string or an
//! integer that fits 64 bits, never a rounded float), the reasons a value
//! cannot, and fresh ids for records inserted without one.

use anyhow::Result;
use serde_json::Value;

use super::Record;

/// The identifier of `record` under `field`, as a string (integers are
/// accepted); `None` for anything [`id_text`] refuses.
pub fn record_id(record: &Record, field: &str) -> Option<String> {
    id_text(record.get(field)).ok()
}

/// `record` with its id under `field` as text: how ferry prints every
/// record's id (get, insert, getupdates; docs/config.md). Connectors address
/// records by string ids (`--id`, in.json, the export state), so an API that
/// answers `"id": 3` prints `"id": "3"`, the same as one that answers
/// `"id": "3"`, and what `get` prints is what `--id` takes back. A value
/// that is not an id is left as it is.
pub fn with_text_id(mut record: Record, field: &str) -> Record {
    if let Some(value) = record.get_mut(field) {
        if value.is_number() {
            if let Ok(text) = id_text(Some(value)) {
                *value = Value::String(text);
            }
        }
    }
    record
}

/// Why a value cannot identify a record.
#[derive(Debug, Clone, PartialEq)]
pub enum BadId {
    /// No value, null or an empty string.
    Missing,
    /// A boolean, an array or an object: "a boolean"…
    Kind(&'static str),
    /// A number that was not read exactly: beyond 64-bit integers (which
    /// JSON parsing turns into the nearest float, so `18446744073709551616`
    /// and `18446744073709551617` would both become `1.8446744073709552e19`
    /// and two records one) or not an integer at all.
    Inexact(String),
}

impl BadId {
    /// The reason a record is rejected for, naming the id field.
    pub fn reason(&self, field: &str) -> String {
        match self {
            BadId::Missing => format!("missing {field}"),
            BadId::Kind(kind) => format!("{field} must be a string or number, got {kind}"),
            BadId::Inexact(n) => format!(
                "{field} {n} is not an integer of at most 64 bits, so it cannot be kept exactly; write it as a string"
            ),
        }
    }
}

/// Refuse a patch whose value gives `field` another id than `id`, the
/// record it patches: a patch never renames a record.
pub fn patch_keeps_id(value: &Record, field: &str, id: &str) -> Result<()> {
    match given_id(value, field, "patch")? {
        Some(other) if other != id => Err(crate::error::usage(format!(
            "the patch changes {field} from \"{id}\" to \"{other}\""
        ))
        .hint(format!("leave \"{field}\" out of the value"))
        .into()),
        _ => Ok(()),
    }
}

/// The id a record to insert or a patch gives, if any: `None` when it has
/// none (an insert then generates one); an id of the wrong kind is a usage
/// error, never replaced by a generated one nor written over the record's
/// id. `action` is "insert" or "patch", for the message.
pub fn given_id(record: &Record, field: &str, action: &str) -> Result<Option<String>> {
    match id_text(record.get(field)) {
        Ok(id) => Ok(Some(id)),
        Err(BadId::Missing) => Ok(None),
        Err(bad) => Err(crate::error::usage(format!(
            "cannot {action} the record: {}",
            bad.reason(field)
        ))
        .hint(match action {
            "insert" => {
                format!("give \"{field}\" as a string, or leave it out to get a generated one")
            }
            _ => format!("leave \"{field}\" out of the value"),
        })
        .into()),
    }
}

/// An identifier as text: a non-empty string, or an integer that fits 64
/// bits. Every other number is refused rather than rounded, so two ids can
/// never become one.
pub fn id_text(value: Option<&Value>) -> std::result::Result<String, BadId> {
    match value {
        None | Some(Value::Null) => Err(BadId::Missing),
        Some(Value::String(s)) if s.is_empty() => Err(BadId::Missing),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => Ok(n.to_string()),
        Some(Value::Number(n)) => Err(BadId::Inexact(n.to_string())),
        Some(other) => Err(BadId::Kind(crate::config::input::kind_of(other))),
    }
}

/// A fresh identifier for a record inserted without one.
pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}
