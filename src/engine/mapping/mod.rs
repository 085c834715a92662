//! How a source record becomes a destination record, and whether the
//! destination can take it. [`Mapping`] applies `--map` (destination field
//! or pointer -> source field, JSON pointer, the rest of an object, constant
//! or drop) and `--id-field`; [`Validator`] checks the result against the
//! destination's declared fields: no identifier or a missing required field
//! rejects the record, a value of the wrong type is converted when that is
//! unambiguous and otherwise set to null with a [`Warning`] that keeps the
//! value, so the run can name the record (or rejected when the field is
//! required).

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
    /// The object at this field or pointer without the keys that the map's
    /// other entries read from it (`{"rest": "/traits"}`): "everything not
    /// mapped elsewhere", such as Voucherify's `metadata`.
    Rest(String),
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
            Source::Drop | Source::Rest(_) => None,
        }
    }

    /// The path this source reads, as pointer segments (`"mail"` is
    /// `["mail"]`); none for constants, drops and rests.
    fn segments(&self) -> Option<Vec<String>> {
        match self {
            Source::Field(name) => Some(vec![name.clone()]),
            Source::Pointer(p) => Some(segments(p)),
            Source::Const(_) | Source::Drop | Source::Rest(_) => None,
        }
    }
}

/// The unescaped segments of a JSON pointer (`/a~1b/c` is `["a/b", "c"]`).
fn segments(ptr: &str) -> Vec<String> {
    ptr.strip_prefix('/')
        .unwrap_or(ptr)
        .split('/')
        .map(|p| p.replace("~1", "/").replace("~0", "~"))
        .collect()
}

/// The top-level field a destination pointer writes into (`/address/city`
/// writes `address`), without allocating unless it is escaped; none for a
/// plain field name.
fn top_field(key: &str) -> Option<std::borrow::Cow<'_, str>> {
    let first = key.strip_prefix('/')?.split('/').next()?;
    Some(if first.contains('~') {
        std::borrow::Cow::Owned(first.replace("~1", "/").replace("~0", "~"))
    } else {
        std::borrow::Cow::Borrowed(first)
    })
}

/// Where `path` (a field name or a pointer) leads, as segments.
fn path_segments(path: &str) -> Vec<String> {
    if path.starts_with('/') {
        segments(path)
    } else {
        vec![path.to_string()]
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
    /// "source": {"const": "import"}, "internal": null,
    /// "metadata": {"rest": "/traits"}, "/address/line_1": "/street"}`.
    /// A key that starts with `/` is a pointer into the destination record:
    /// the value is put there, objects made on the way.
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
                Value::Object(o) if o.len() == 1 && o.contains_key("rest") => match o.get("rest") {
                    Some(Value::String(s)) if !s.is_empty() => Source::Rest(s.clone()),
                    other => {
                        return Err(usage(format!(
                            "field \"{key}\" in map file {} has an invalid rest: {}; it must name the object whose other keys it takes",
                            file.display(),
                            other.unwrap_or(&Value::Null)
                        ))
                        .hint("write {\"rest\": \"/json/pointer\"} or {\"rest\": \"source_field\"}, e.g. \"metadata\": {\"rest\": \"/traits\"}")
                        .into())
                    }
                },
                other => {
                    return Err(usage(format!(
                        "field \"{key}\" in map file {} has an invalid source: {other}",
                        file.display()
                    ))
                    .hint("use \"source_field\", \"/json/pointer\", {\"const\": VALUE}, {\"rest\": \"/json/pointer\"} or null (drop the field)")
                    .into())
                }
            };
            entries.push((key, source));
        }
        check_destinations(&entries, file)?;
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
        // A destination pointer names the top-level field it writes into.
        let mapped = |k: &str| {
            self.entries
                .iter()
                .any(|(key, _)| key == k || top_field(key).is_some_and(|top| top == k))
        };
        for (k, v) in &source {
            if !mapped(k) {
                out.insert(k.clone(), v.clone());
            }
        }
        for (key, src) in &self.entries {
            let value = match src {
                Source::Rest(path) => match self.rest(&source, path) {
                    Ok(v) => v,
                    Err(reason) => {
                        return Checked::Rejected {
                            reason,
                            record: source,
                        }
                    }
                },
                src => src.get(&source),
            };
            if let Some(v) = value {
                put(&mut out, key, v);
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

impl Mapping {
    /// The object at `path` without the keys the other entries read from
    /// it (an entry reading `/traits/address/city` takes `address`). Absent,
    /// null or left empty, the field is left out; anything but an object
    /// rejects the record, since its "rest" means nothing.
    fn rest(&self, source: &Record, path: &str) -> std::result::Result<Option<Value>, String> {
        let value = match Source::path(path).get(source) {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::Object(o)) => o,
            Some(other) => {
                return Err(format!(
                    "{path} is {}, so its rest cannot be taken",
                    crate::config::input::kind_of(&other)
                ))
            }
        };
        let base = path_segments(path);
        let taken: Vec<String> = self
            .entries
            .iter()
            .filter_map(|(_, src)| src.segments())
            .filter(|s| s.len() > base.len() && s[..base.len()] == base[..])
            .map(|s| s[base.len()].clone())
            .collect();
        let rest: serde_json::Map<String, Value> = value
            .into_iter()
            .filter(|(k, _)| !taken.contains(k))
            .collect();
        Ok((!rest.is_empty()).then_some(Value::Object(rest)))
    }
}

/// Put `value` at `key` of `out`: a field name, or a pointer whose objects
/// are made on the way. [`check_destinations`] made sure no entry writes
/// inside another's value, so every step is an object the map made.
fn put(out: &mut Record, key: &str, value: Value) {
    if !key.starts_with('/') {
        out.insert(key.to_string(), value);
        return;
    }
    let parts = segments(key);
    let Some((last, path)) = parts.split_last() else {
        return;
    };
    let mut here = out;
    for part in path {
        let slot = here
            .entry(part.clone())
            .or_insert_with(|| Value::Object(Record::new()));
        if !slot.is_object() {
            *slot = Value::Object(Record::new());
        }
        let Value::Object(next) = slot else {
            return;
        };
        here = next;
    }
    here.insert(last.clone(), value);
}

/// Refuse destination keys that cannot all be written: an empty pointer
/// segment, a dropped pointer, or one key inside another's value
/// (`"address"` and `"/address/city"`).
fn check_destinations(entries: &[(String, Source)], file: &Path) -> Result<()> {
    let keys: Vec<(&String, Vec<String>)> =
        entries.iter().map(|(k, _)| (k, path_segments(k))).collect();
    for ((key, src), (_, parts)) in entries.iter().zip(&keys) {
        if key.starts_with('/') && parts.iter().any(String::is_empty) {
            return Err(usage(format!(
                "key \"{key}\" in map file {} is not a destination pointer: it has an empty segment",
                file.display()
            ))
            .hint("write a destination pointer as /field/inner, e.g. \"/address/line_1\"")
            .into());
        }
        if key.starts_with('/') && *src == Source::Drop {
            return Err(usage(format!(
                "key \"{key}\" in map file {} drops a destination pointer, which holds nothing to drop",
                file.display()
            ))
            .hint("drop the top-level field instead (\"field\": null), or give the pointer a source")
            .into());
        }
    }
    for (i, (a, pa)) in keys.iter().enumerate() {
        for (b, pb) in keys.iter().skip(i + 1) {
            let (short, long, ps, pl) = if pa.len() <= pb.len() {
                (a, b, pa, pb)
            } else {
                (b, a, pb, pa)
            };
            if pl[..ps.len()] == ps[..] {
                return Err(usage(format!(
                    "keys \"{short}\" and \"{long}\" in map file {} both write {}",
                    file.display(),
                    if ps.len() == pl.len() {
                        format!("\"{}\"", ps.join("/"))
                    } else {
                        format!("inside \"{}\"", ps.join("/"))
                    }
                ))
                .hint("keep one of them, or give every inner key its own pointer (\"/address/city\", \"/address/line_1\")")
                .into());
            }
        }
    }
    Ok(())
}

impl std::fmt::Display for Source {
    /// The source as the user wrote it, for reasons.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Field(name) => f.write_str(name),
            Source::Pointer(p) => f.write_str(p),
            Source::Const(v) => write!(f, "{{\"const\": {v}}}"),
            Source::Rest(p) => write!(f, "{{\"rest\": \"{p}\"}}"),
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

/// A value validation set to null, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Warning {
    /// Why, without the value: the key the summary counts it under
    /// (`birthdate is not an ISO 8601 date (YYYY-MM-DD); set to null`).
    pub reason: String,
    pub field: String,
    /// The value as the record had it.
    pub value: Value,
}

impl Warning {
    fn new(field: &str, value: Value, why: &str) -> Warning {
        Warning {
            reason: format!("{why}; set to null"),
            field: field.to_string(),
            value,
        }
    }

    /// One line naming the record:
    /// `record u1 (offset 12): birthdate "12/05/1990" is not ...; set to null`.
    pub fn line(&self, id: &str, offset: u64) -> String {
        let mut value = self.value.to_string();
        // A long value would bury the line; its start is enough to find it.
        if value.chars().count() > 60 {
            value = value.chars().take(57).collect::<String>() + "...";
        }
        let why = self
            .reason
            .strip_prefix(self.field.as_str())
            .unwrap_or(&self.reason);
        format!("record {id} (offset {offset}): {} {value}{why}", self.field)
    }
}

/// The unit tests compare warnings with their reasons.
impl PartialEq<&str> for Warning {
    fn eq(&self, other: &&str) -> bool {
        self.reason == *other
    }
}

/// What mapping or validation made of one record.
#[derive(Debug, Clone, PartialEq)]
pub enum Checked {
    /// Send it; the warnings say which values were set to null.
    Valid {
        record: Record,
        warnings: Vec<Warning>,
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
            if record.get(field.name.as_ref()).is_none_or(Value::is_null) {
                return Checked::Rejected {
                    reason: format!("missing required field {}", field.name),
                    record,
                };
            }
        }
        let mut warnings = Vec::new();
        for field in &self.fields {
            let Some(value) = record.get_mut(field.name.as_ref()) else {
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
            let was = std::mem::take(value);
            warnings.push(Warning::new(&field.name, was, &reason));
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
        (FieldType::Date, Value::String(s)) => {
            crate::connector::spec::iso_date(s).map(Value::String)
        }
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
mod tests;
