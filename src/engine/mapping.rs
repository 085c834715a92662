//! How a source record becomes a destination record, and whether the
//! destination can take it. [`Mapping`] applies `--map` (destination field ->
//! source field, JSON pointer, constant or drop) and `--id-field`;
//! [`Validator`] checks the result against the destination's declared fields:
//! no identifier or a missing required field rejects the record, a value of
//! the wrong type is converted when that is unambiguous and otherwise set to
//! null with a warning (or rejected when the field is required).

use std::path::Path;

use anyhow::Result;
use serde_json::{Number, Value};

use crate::connector::{id_text, BadId, FieldSpec, FieldType, Record};
use crate::error::usage;

/// Where one destination field's value comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// A top-level field of the source record.
    Field(String),
    /// A JSON pointer into the source record (`/address/city`).
    Pointer(String),
    /// The same value for every record.
    Const(Value),
    /// Leave the field out.
    Drop,
}

impl Source {
    /// `"name"` is a field, `"/a/b"` a pointer.
    pub fn path(text: &str) -> Source {
        if text.starts_with('/') {
            Source::Pointer(text.to_string())
        } else {
            Source::Field(text.to_string())
        }
    }

    fn get(&self, record: &Record) -> Option<Value> {
        match self {
            Source::Field(name) => record.get(name).cloned(),
            Source::Pointer(p) => pointer(record, p).cloned(),
            Source::Const(v) => Some(v.clone()),
            Source::Drop => None,
        }
    }
}

/// A JSON pointer (RFC 6901) into a record, without cloning the record.
fn pointer<'a>(record: &'a Record, ptr: &str) -> Option<&'a Value> {
    let mut parts = ptr
        .strip_prefix('/')?
        .split('/')
        .map(|p| p.replace("~1", "/").replace("~0", "~"));
    let first = parts.next()?;
    let mut value = record.get(&first)?;
    for part in parts {
        value = match value {
            Value::Object(m) => m.get(&part)?,
            Value::Array(a) => a.get(part.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(value)
}

/// `--map` and `--id-field`, ready to apply.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Mapping {
    /// Destination field -> where its value comes from, in the map's order.
    pub entries: Vec<(String, Source)>,
    /// Where the destination's identifier comes from (`--id-field`).
    pub id_from: Option<Source>,
    /// The destination's identifier field.
    pub id_field: String,
}

impl Mapping {
    /// Whether every record passes through unchanged (no map, no
    /// `--id-field`).
    pub fn is_identity(&self) -> bool {
        self.entries.is_empty() && self.id_from.is_none()
    }

    /// Parse a map file: `{"email": "mail", "city": "/address/city",
    /// "source": {"const": "import"}, "internal": null}`.
    pub fn parse_map(value: Value, file: &Path) -> Result<Vec<(String, Source)>> {
        let Value::Object(map) = value else {
            return Err(usage(format!(
                "map file {} must hold a JSON object",
                file.display()
            ))
            .hint("write it as {\"destination_field\": \"source_field\", ...}")
            .into());
        };
        let mut entries = Vec::with_capacity(map.len());
        for (key, v) in map {
            let source = match v {
                Value::Null => Source::Drop,
                Value::String(s) if !s.is_empty() => Source::path(&s),
                Value::Object(o) if o.len() == 1 && o.contains_key("const") => {
                    Source::Const(o.get("const").cloned().unwrap_or(Value::Null))
                }
                other => {
                    return Err(usage(format!(
                        "field \"{key}\" in map file {} has an invalid source: {other}",
                        file.display()
                    ))
                    .hint("use \"source_field\", \"/json/pointer\", {\"const\": VALUE} or null (drop the field)")
                    .into())
                }
            };
            entries.push((key, source));
        }
        Ok(entries)
    }

    /// The destination record for `source`. Without a map every field
    /// passes through by name; with one, fields the map names take their
    /// value from the map (or are dropped) and the others pass through.
    /// `--id-field` then picks the identifier from the mapped record (so
    /// it may name a field the map made), and a record without it is
    /// rejected (`missing email`): it never keeps an identifier it came
    /// with under another name.
    pub fn apply(&self, source: Record) -> Checked {
        if self.is_identity() {
            return Checked::valid(source);
        }
        let mut out = Record::with_capacity(source.len() + self.entries.len() + 1);
        let mapped = |k: &str| self.entries.iter().any(|(key, _)| key == k);
        for (k, v) in &source {
            if !mapped(k) {
                out.insert(k.clone(), v.clone());
            }
        }
        for (key, src) in &self.entries {
            if let Some(v) = src.get(&source) {
                out.insert(key.clone(), v);
            }
        }
        let Some(id_from) = &self.id_from else {
            return Checked::valid(out);
        };
        let id = id_from.get(&out).filter(|v| match v {
            Value::Null => false,
            Value::String(s) => !s.trim().is_empty(),
            _ => true,
        });
        let Some(id) = id else {
            return Checked::Rejected {
                reason: BadId::Missing.reason(&id_from.to_string()),
                record: source,
            };
        };
        // The identifier first, where a reader of the output looks for it.
        let mut record = Record::with_capacity(out.len() + 1);
        record.insert(self.id_field.clone(), id);
        for (k, v) in out {
            if k != self.id_field {
                record.insert(k, v);
            }
        }
        Checked::valid(record)
    }
}

impl std::fmt::Display for Source {
    /// The source as the user wrote it, for reasons.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Field(name) => f.write_str(name),
            Source::Pointer(p) => f.write_str(p),
            Source::Const(v) => write!(f, "{{\"const\": {v}}}"),
            Source::Drop => f.write_str("null"),
        }
    }
}

/// Checks records against the destination's fields.
#[derive(Debug, Clone)]
pub struct Validator {
    id_field: String,
    fields: Vec<FieldSpec>,
}

/// What mapping or validation made of one record.
#[derive(Debug, Clone, PartialEq)]
pub enum Checked {
    /// Send it; the warnings say which values were set to null.
    Valid {
        record: Record,
        warnings: Vec<String>,
    },
    /// Do not send it, for this reason.
    Rejected { record: Record, reason: String },
}

impl Checked {
    fn valid(record: Record) -> Checked {
        Checked::Valid {
            record,
            warnings: Vec::new(),
        }
    }
}

impl Validator {
    /// `fields` as the destination declares them; a field named `id` stands
    /// for the identifier when the connector's id field has another name.
    pub fn new(id_field: &str, fields: Vec<FieldSpec>) -> Validator {
        let named = fields.iter().any(|f| f.name == id_field);
        let fields = fields
            .into_iter()
            .filter(|f| named || f.name != "id" || id_field == "id")
            .collect();
        Validator {
            id_field: id_field.to_string(),
            fields,
        }
    }

    /// Whether a record whose identifier is a non-blank string always
    /// passes unchanged: no declared field but the identifier, as text.
    pub fn checks_only_a_text_id(&self) -> bool {
        self.fields
            .iter()
            .all(|f| f.name == self.id_field && f.kind == FieldType::String)
    }

    pub fn check(&self, mut record: Record) -> Checked {
        match record.get(&self.id_field) {
            Some(Value::String(s)) if s.trim().is_empty() => {
                return Checked::Rejected {
                    reason: BadId::Missing.reason(&self.id_field),
                    record,
                }
            }
            Some(Value::String(_)) => {}
            // An integer identifier is unambiguous as text; any other value
            // (a float that may have lost digits, a boolean, an object) is
            // refused with what it is.
            value => match id_text(value) {
                Ok(id) => {
                    record.insert(self.id_field.clone(), Value::String(id));
                }
                Err(bad) => {
                    return Checked::Rejected {
                        reason: bad.reason(&self.id_field),
                        record,
                    }
                }
            },
        }
        for field in self.fields.iter().filter(|f| f.required) {
            if record.get(field.name).is_none_or(Value::is_null) {
                return Checked::Rejected {
                    reason: format!("missing required field {}", field.name),
                    record,
                };
            }
        }
        let mut warnings = Vec::new();
        for field in &self.fields {
            let Some(value) = record.get_mut(field.name) else {
                continue;
            };
            if field.kind.accepts(value) {
                continue;
            }
            if let Some(converted) = convert(field.kind, value) {
                *value = converted;
                continue;
            }
            let reason = match field.kind {
                FieldType::Date => format!("{} is not an ISO 8601 date (YYYY-MM-DD)", field.name),
                FieldType::Datetime => format!("{} is not an ISO 8601 date-time", field.name),
                kind => format!("{} is not {}", field.name, describe(kind)),
            };
            if field.required {
                return Checked::Rejected { record, reason };
            }
            *value = Value::Null;
            warnings.push(format!("{reason}; set to null"));
        }
        Checked::Valid { record, warnings }
    }
}

/// The value as `kind`, when only one reading is possible.
fn convert(kind: FieldType, value: &Value) -> Option<Value> {
    match (kind, value) {
        (FieldType::String, Value::Number(n)) => Some(Value::String(n.to_string())),
        (FieldType::String, Value::Bool(b)) => Some(Value::String(b.to_string())),
        (FieldType::Integer, Value::String(s)) => s.trim().parse::<i64>().ok().map(Value::from),
        (FieldType::Integer, Value::Number(n)) => n
            .as_f64()
            .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
            .map(|f| Value::from(f as i64)),
        (FieldType::Number, Value::String(s)) => {
            let s = s.trim();
            if let Ok(i) = s.parse::<i64>() {
                return Some(Value::from(i));
            }
            s.parse::<f64>()
                .ok()
                .and_then(Number::from_f64)
                .map(Value::Number)
        }
        // A date-time where a date is expected keeps its date, as written.
        (FieldType::Date, Value::String(s)) => chrono::DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|d| Value::String(d.date_naive().format("%Y-%m-%d").to_string())),
        (FieldType::Boolean, Value::String(s)) => match s.as_str() {
            "true" => Some(Value::Bool(true)),
            "false" => Some(Value::Bool(false)),
            _ => None,
        },
        _ => None,
    }
}

fn describe(kind: FieldType) -> &'static str {
    match kind {
        FieldType::String => "a string",
        FieldType::Number => "a number",
        FieldType::Integer => "an integer",
        FieldType::Boolean => "a boolean",
        FieldType::Date => "a date",
        FieldType::Datetime => "a date-time",
        FieldType::Object => "an object",
        FieldType::Array => "an array",
        FieldType::Any => "a value",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rec(v: Value) -> Record {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn a_date_time_for_a_date_field_keeps_its_date() {
        let v = Validator::new("id", vec![FieldSpec::new("born", FieldType::Date, "")]);
        let Checked::Valid { record, warnings } =
            v.check(rec(json!({"id": "1", "born": "1990-05-01T23:00:00-05:00"})))
        else {
            panic!("rejected")
        };
        assert_eq!(record["born"], "1990-05-01");
        assert!(warnings.is_empty());
    }

    #[test]
    fn without_a_map_records_pass_through() {
        let m = Mapping {
            id_field: "id".into(),
            ..Mapping::default()
        };
        let r = rec(json!({"id": "1", "a": 2}));
        assert_eq!(m.apply(r.clone()), Checked::valid(r));
    }

    #[test]
    fn a_map_renames_points_sets_and_drops() {
        let entries = Mapping::parse_map(
            json!({"email": "mail", "city": "/address/city", "origin": {"const": "import"}, "secret": null, "tag": "/tags/1"}),
            Path::new("map.json"),
        )
        .unwrap();
        let m = Mapping {
            entries,
            id_from: Some(Source::path("/ids/crm")),
            id_field: "id".into(),
        };
        let Checked::Valid { record: out, .. } = m.apply(rec(json!({
            "ids": {"crm": 7}, "mail": "a@x", "secret": "s", "address": {"city": "Oslo"}, "tags": ["x", "y"]
        }))) else {
            panic!("rejected")
        };
        assert_eq!(
            Value::Object(out),
            json!({"id": 7, "ids": {"crm": 7}, "mail": "a@x", "address": {"city": "Oslo"}, "tags": ["x", "y"],
                   "email": "a@x", "city": "Oslo", "origin": "import", "tag": "y"})
        );
    }

    #[test]
    fn the_id_field_is_read_after_the_map_and_never_falls_back() {
        let m = Mapping {
            entries: vec![("email".into(), Source::path("mail"))],
            id_from: Some(Source::path("email")),
            id_field: "id".into(),
        };
        let Checked::Valid { record, .. } = m.apply(rec(json!({"id": "old", "mail": "a@x"})))
        else {
            panic!("rejected")
        };
        assert_eq!(
            Value::Object(record),
            json!({"id": "a@x", "mail": "a@x", "email": "a@x"})
        );
        for without in [
            json!({"id": "old"}),
            json!({"id": "old", "mail": null}),
            json!({"id": "old", "mail": " "}),
        ] {
            assert_eq!(
                m.apply(rec(without.clone())),
                Checked::Rejected {
                    record: rec(without),
                    reason: "missing email".into()
                }
            );
        }
    }

    #[test]
    fn map_files_with_bad_sources_are_refused() {
        for bad in [
            json!({"a": 1}),
            json!({"a": ""}),
            json!({"a": {"x": 1}}),
            json!([]),
        ] {
            assert!(Mapping::parse_map(bad, Path::new("m.json")).is_err());
        }
    }

    fn validator() -> Validator {
        Validator::new(
            "id",
            vec![
                FieldSpec::new("id", FieldType::String, "").required(),
                FieldSpec::new("name", FieldType::String, "").required(),
                FieldSpec::new("birthdate", FieldType::Date, ""),
                FieldSpec::new("age", FieldType::Integer, ""),
                FieldSpec::new("score", FieldType::Number, ""),
                FieldSpec::new("vip", FieldType::Boolean, ""),
            ],
        )
    }

    #[test]
    fn missing_ids_and_required_fields_are_rejected() {
        let v = validator();
        for (r, why) in [
            (json!({"name": "a"}), "missing id"),
            (json!({"id": "", "name": "a"}), "missing id"),
            (json!({"id": null, "name": "a"}), "missing id"),
            (json!({"id": "1"}), "missing required field name"),
            (
                json!({"id": "1", "name": null}),
                "missing required field name",
            ),
        ] {
            match v.check(rec(r)) {
                Checked::Rejected { reason, .. } => assert_eq!(reason, why),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn ids_that_are_not_text_or_exact_integers_say_what_they_are() {
        let v = validator();
        for (r, why) in [
            (json!({"id": true, "name": "a"}), "id must be a string or number, got a boolean"),
            (json!({"id": {"a": 1}, "name": "a"}), "id must be a string or number, got an object"),
            (json!({"id": [1], "name": "a"}), "id must be a string or number, got an array"),
            (json!({"id": 1.5, "name": "a"}), "id 1.5 is not an integer of at most 64 bits, so it cannot be kept exactly; write it as a string"),
        ] {
            match v.check(rec(r)) {
                Checked::Rejected { reason, .. } => assert_eq!(reason, why),
                other => panic!("{other:?}"),
            }
        }
        let big: Value =
            serde_json::from_str(r#"{"id": 18446744073709551616, "name": "a"}"#).unwrap();
        assert!(matches!(v.check(rec(big)), Checked::Rejected { .. }));
        let max: Value =
            serde_json::from_str(r#"{"id": 18446744073709551615, "name": "a"}"#).unwrap();
        match v.check(rec(max)) {
            Checked::Valid { record, .. } => assert_eq!(record["id"], "18446744073709551615"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unambiguous_values_are_converted_and_bad_dates_nulled() {
        let v = validator();
        let Checked::Valid { record, warnings } = v.check(rec(json!({
            "id": 12, "name": 3, "birthdate": "03/04/1990", "age": "42", "score": "1.5", "vip": "true"
        }))) else {
            panic!("rejected")
        };
        assert_eq!(
            Value::Object(record),
            json!({"id": "12", "name": "3", "birthdate": null, "age": 42, "score": 1.5, "vip": true})
        );
        assert_eq!(
            warnings,
            vec!["birthdate is not an ISO 8601 date (YYYY-MM-DD); set to null"]
        );
        let Checked::Valid { warnings, .. } = v.check(rec(
            json!({"id": "1", "name": "a", "age": "forty", "vip": "yes"}),
        )) else {
            panic!("rejected")
        };
        assert_eq!(
            warnings,
            vec![
                "age is not an integer; set to null",
                "vip is not a boolean; set to null"
            ]
        );
    }

    #[test]
    fn a_required_field_that_cannot_be_converted_rejects() {
        let v = Validator::new(
            "email",
            vec![
                FieldSpec::new("id", FieldType::String, "").required(),
                FieldSpec::new("born", FieldType::Date, "").required(),
            ],
        );
        // "id" stands for the id field (email) here, so it is not required itself.
        match v.check(rec(json!({"email": "a@x", "born": "yesterday"}))) {
            Checked::Rejected { reason, .. } => {
                assert_eq!(reason, "born is not an ISO 8601 date (YYYY-MM-DD)")
            }
            other => panic!("{other:?}"),
        }
    }
}
