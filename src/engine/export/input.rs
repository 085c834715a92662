//! Where export's profiles come from: a file (JSON lines, a JSON array, or
//! CSV), in.json's `export` section, or any source connector read page by
//! page. Every source yields [`Profile`]s, or an invalid entry that names
//! the profile (or its position) and says what is wrong with it.
//!
//! CSV: one column per property, plus `id` (required), `groups` (names split
//! on `;` or `|`) and `toDelete` (`true`, `1` or `yes`). An empty cell is an
//! absent property, so emptying a cell clears that property.
//!
//! A source connector's record becomes a profile as it is when it already has
//! `properties`; otherwise its id field is the id, its `groups` field (array,
//! or a `;`/`|` list) the groups, and every other field a property.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{Context, Result};
use serde_json::Value;

use super::ProfilesFrom;
use crate::config::input::kind_of;
use crate::connector::csv::Rows;
use crate::connector::{able, id_text, BadId, Position, Record, RecordSource};
use crate::ctx::Ctx;
use crate::error::{failed, usage};

/// One profile to export.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub id: String,
    pub properties: Record,
    pub groups: BTreeSet<String>,
    pub to_delete: bool,
}

/// A profile that could not be read or cannot be sent: its id (or
/// position) and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Invalid {
    pub id: String,
    /// What is wrong, in a few words that are the same for every profile
    /// with this problem, to follow a count: "without \"email\"". The
    /// summary on stderr counts the invalid profiles by it.
    pub reason: String,
    pub message: String,
}

impl Invalid {
    pub fn new(
        id: impl Into<String>,
        reason: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Invalid {
            id: id.into(),
            reason: reason.into(),
            message: message.into(),
        }
    }
}

/// The reason for a profile whose id is missing or unusable.
fn id_reason(bad: &BadId) -> &'static str {
    match bad {
        BadId::Missing => "without an id",
        BadId::Kind(_) => "with an id that is not a string or a number",
        BadId::Inexact(_) => "with a numeric id that is not a 64-bit integer",
    }
}

pub type Entry = std::result::Result<Profile, Invalid>;

/// Read a profiles file: `.csv` as CSV, otherwise a JSON array when it
/// starts with `[`, JSON lines when not.
pub fn read_file(path: &Path) -> Result<Vec<Entry>> {
    if !path.exists() {
        return Err(usage(format!("no profiles file at {}", path.display()))
            .hint("check the path given to --input")
            .into());
    }
    let is_csv = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    if is_csv {
        return read_csv(path);
    }
    let bytes =
        std::fs::read(path).with_context(|| format!("could not read {}", path.display()))?;
    let text = crate::config::decode(bytes, &path.display().to_string())?;
    if text.trim_start().starts_with('[') {
        let value = crate::config::json::read_file(path)?;
        return from_array(&value, &path.display().to_string());
    }
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let at = format!("line {}", n + 1);
        out.push(match serde_json::from_str::<Value>(line) {
            Ok(v) => from_value(&v, &at),
            Err(e) => Err(Invalid::new(
                at.clone(),
                "not valid JSON",
                format!(
                    "invalid JSON in {} {at}, column {}",
                    path.display(),
                    e.column()
                ),
            )),
        });
    }
    Ok(out)
}

/// The `export` section of in.json: an array of profiles, or `{"profiles": [...]}`.
pub fn from_section(section: &Value, source: &str) -> Result<Vec<Entry>> {
    match section {
        Value::Array(_) => from_array(section, source),
        Value::Object(o) => match o.get("profiles") {
            Some(list) => from_array(list, source),
            None => Err(usage(format!("\"export\" in {source} has no \"profiles\""))
                .hint("write it as {\"export\": {\"profiles\": [{\"id\": \"p1\", \"properties\": {...}}]}}")
                .into()),
        },
        other => Err(usage(format!(
            "\"export\" in {source} must be an array or an object, got {}",
            kind_of(other)
        ))
        .into()),
    }
}

fn from_array(value: &Value, source: &str) -> Result<Vec<Entry>> {
    let Value::Array(items) = value else {
        return Err(
            usage(format!("the profiles in {source} must be a JSON array"))
                .hint("write them as [{\"id\": \"p1\", \"properties\": {...}, \"groups\": [...]}]")
                .into(),
        );
    };
    Ok(items
        .iter()
        .enumerate()
        .map(|(i, v)| from_value(v, &format!("item {}", i + 1)))
        .collect())
}

/// One profile object: `{"id", "properties", "groups"?, "toDelete"?}`.
pub fn from_value(value: &Value, at: &str) -> Entry {
    let Value::Object(obj) = value else {
        return Err(Invalid::new(
            at,
            "not a profile object",
            format!("{at} is {}, not a profile object", kind_of(value)),
        ));
    };
    let id = match id_text(obj.get("id")) {
        Ok(id) => id,
        Err(BadId::Missing) => {
            return Err(Invalid::new(
                at,
                id_reason(&BadId::Missing),
                format!("{at} has no \"id\""),
            ))
        }
        Err(bad) => return Err(Invalid::new(at, id_reason(&bad), bad.reason("\"id\""))),
    };
    let properties = match obj.get("properties") {
        None | Some(Value::Null) => Record::new(),
        Some(Value::Object(p)) => p.clone(),
        Some(other) => {
            return Err(Invalid::new(
                id,
                "with \"properties\" that are not an object",
                format!("\"properties\" must be an object, got {}", kind_of(other)),
            ))
        }
    };
    let groups = match obj.get("groups") {
        None | Some(Value::Null) => BTreeSet::new(),
        Some(v) => groups_of(v).map_err(|m| Invalid::new(id.clone(), GROUPS_REASON, m))?,
    };
    let to_delete = match obj.get("toDelete") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            return Err(Invalid::new(
                id,
                "with a \"toDelete\" that is not true or false",
                format!("\"toDelete\" must be true or false, got {}", kind_of(other)),
            ))
        }
    };
    Ok(Profile {
        id,
        properties,
        groups,
        to_delete,
    })
}

/// The reason for a profile whose groups are not names.
const GROUPS_REASON: &str = "with \"groups\" that are not names";

/// Groups as an array of names, or a `;` / `|` separated string.
fn groups_of(value: &Value) -> std::result::Result<BTreeSet<String>, String> {
    match value {
        Value::Array(items) => items
            .iter()
            .map(|g| match g {
                Value::String(s) if !s.trim().is_empty() => Ok(s.trim().to_string()),
                other => Err(format!(
                    "each group must be a non-empty name, got {}",
                    kind_of(other)
                )),
            })
            .collect(),
        Value::String(s) => Ok(split_groups(s)),
        other => Err(format!(
            "\"groups\" must be an array of names, got {}",
            kind_of(other)
        )),
    }
}

fn split_groups(s: &str) -> BTreeSet<String> {
    s.split([';', '|'])
        .map(str::trim)
        .filter(|g| !g.is_empty())
        .map(str::to_string)
        .collect()
}

fn read_csv(path: &Path) -> Result<Vec<Entry>> {
    let mut rows = Rows::open(path, &csv::ReaderBuilder::new(), b',', 0)?;
    let headers = rows.headers().to_vec();
    if !headers.iter().any(|h| h == "id") {
        return Err(usage(format!("{} has no \"id\" column", path.display()))
            .hint("the first row names the columns: id, one per property, and optionally groups and toDelete")
            .into());
    }
    let mut out = Vec::new();
    let mut row = csv::StringRecord::new();
    let mut n = 0;
    while let Some(read) = rows.next_row(&mut row)? {
        let at = format!("row {}", n + 2);
        n += 1;
        match read {
            Ok(()) => {}
            Err(e) => {
                out.push(Err(Invalid::new(
                    at,
                    "not valid CSV",
                    format!("invalid CSV in {}: {e}", path.display()),
                )));
                continue;
            }
        };
        let mut profile = Profile {
            id: String::new(),
            properties: Record::new(),
            groups: BTreeSet::new(),
            to_delete: false,
        };
        for (h, cell) in headers.iter().zip(row.iter()) {
            match h.as_str() {
                "id" => profile.id = cell.trim().to_string(),
                "groups" => profile.groups = split_groups(cell),
                "toDelete" => {
                    profile.to_delete = matches!(
                        cell.trim().to_ascii_lowercase().as_str(),
                        "true" | "1" | "yes"
                    )
                }
                _ if cell.is_empty() => {}
                _ => {
                    profile
                        .properties
                        .insert(h.clone(), Value::String(cell.to_string()));
                }
            }
        }
        out.push(if profile.id.is_empty() {
            Err(Invalid::new(
                at.clone(),
                id_reason(&BadId::Missing),
                format!("{at} has no id"),
            ))
        } else {
            Ok(profile)
        });
    }
    Ok(out)
}

/// Rename properties by `map` (property → destination field); a property
/// mapped to `None` is left out, one not in the map keeps its name.
pub fn apply_map(
    entries: Vec<Entry>,
    map: &std::collections::BTreeMap<String, Option<String>>,
) -> Vec<Entry> {
    entries
        .into_iter()
        .map(|entry| {
            let mut profile = entry?;
            let mut properties = Record::new();
            for (k, v) in std::mem::take(&mut profile.properties) {
                match map.get(&k) {
                    Some(None) => {}
                    Some(Some(to)) => {
                        properties.insert(to.clone(), v);
                    }
                    None => {
                        properties.insert(k, v);
                    }
                }
            }
            profile.properties = properties;
            Ok(profile)
        })
        .collect()
}

/// Read every record of a source connector, page by page, as profiles.
pub async fn from_connector(source: &dyn RecordSource, what: &str) -> Result<Vec<Entry>> {
    const PAGE: usize = 500;
    let id_field = source.id_field().to_string();
    let mut out = Vec::new();
    let mut at = Position::start();
    loop {
        let page = source.read_page(&at, PAGE).await?;
        let n = page.records.len();
        for (i, record) in page.records.into_iter().enumerate() {
            let where_ = format!("record {}", at.offset + i as u64 + 1);
            out.push(profile_of_record(record, &id_field, &where_));
        }
        match page.next {
            None => break,
            // A page that moves nowhere would loop forever: a connector error.
            Some(next) if n == 0 || next == at => {
                return Err(failed(format!(
                    "{what} answered an empty page that is not the end (at offset {})",
                    at.offset
                ))
                .into())
            }
            Some(next) => at = next,
        }
    }
    Ok(out)
}

fn profile_of_record(mut record: Record, id_field: &str, at: &str) -> Entry {
    if record.contains_key("properties") {
        return from_value(&Value::Object(record), at);
    }
    let id = match id_text(record.get(id_field)) {
        Ok(id) => id,
        Err(bad) => {
            let message = match &bad {
                BadId::Missing => format!("{at} has no {id_field}"),
                bad => bad.reason(id_field),
            };
            return Err(Invalid::new(at, id_reason(&bad), message));
        }
    };
    record.shift_remove(id_field);
    let groups = match record.shift_remove("groups") {
        None | Some(Value::Null) => BTreeSet::new(),
        Some(v) => {
            groups_of(&v).map_err(|message| Invalid::new(id.clone(), GROUPS_REASON, message))?
        }
    };
    let to_delete = matches!(record.shift_remove("toDelete"), Some(Value::Bool(true)));
    Ok(Profile {
        id,
        properties: record,
        groups,
        to_delete,
    })
}

/// The read phase: every profile of the run, from where the plan says,
/// with in.json's `export.map` applied.
pub async fn read(ctx: &Ctx, from: &ProfilesFrom) -> Result<Vec<Entry>> {
    let entries = match from {
        ProfilesFrom::File(path) => read_file(path)?,
        ProfilesFrom::Section => {
            let inputs = ctx.inputs()?;
            let source = inputs.describe("export", "profiles");
            let Some(section) = inputs.section("export") else {
                return Err(usage("no profiles to export")
                    .hint("pass --input FILE (JSON lines, JSON array or CSV), --from TARGET, or add an \"export\" section to in.json")
                    .into());
            };
            from_section(section, &source)?
        }
        ProfilesFrom::Source(spec) => {
            spec.must_exist(&spec.canonical())?;
            let source = spec.resolve(ctx)?;
            let connector = ctx.open(&source.account)?;
            let pages = able(connector.as_ref(), connector.source(), "read pages")?;
            from_connector(pages, &source.account.source).await?
        }
    };
    Ok(match property_map(ctx)? {
        Some(map) => apply_map(entries, &map),
        None => entries,
    })
}

/// The `export.map` of the folder's in.json (never the `--input` file,
/// which for export holds the profiles): property name → destination field,
/// or null to leave the property out.
fn property_map(ctx: &Ctx) -> Result<Option<BTreeMap<String, Option<String>>>> {
    let inputs = crate::config::Inputs::load(&ctx.cwd, &ctx.out, &ctx.folder, None)?;
    let Some(Value::Object(section)) = inputs.section("export") else {
        return Ok(None);
    };
    let Some(map) = section.get("map") else {
        return Ok(None);
    };
    let where_ = inputs.describe("export", "map");
    let Value::Object(map) = map else {
        return Err(usage(format!("{where_} must be an object"))
            .hint("write it as {\"map\": {\"mail\": \"email\", \"internalNote\": null}}")
            .into());
    };
    let mut out = BTreeMap::new();
    for (from, to) in map {
        let to = match to {
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            Value::Null => None,
            _ => {
                return Err(usage(format!(
                    "\"{from}\" in {where_} must name a destination field or be null"
                ))
                .hint(format!("write \"{from}\": \"FIELD\" (a field of the destination), or \"{from}\": null to leave the property out"))
                .into())
            }
        };
        out.insert(from.clone(), to);
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn profile_objects_are_checked() {
        let p = from_value(
            &json!({"id": "p1", "properties": {"email": "a@x"}, "groups": ["b", "a"]}),
            "line 1",
        )
        .unwrap();
        assert_eq!(p.groups.iter().collect::<Vec<_>>(), ["a", "b"]);
        let bad = from_value(&json!({"properties": {}}), "line 2").unwrap_err();
        assert_eq!(bad.id, "line 2");
        let bad = from_value(&json!({"id": "p3", "groups": [1]}), "line 3").unwrap_err();
        assert!(bad.message.contains("non-empty name"), "{}", bad.message);
    }

    #[test]
    fn a_map_renames_and_drops_properties() {
        let entries = vec![from_value(
            &json!({"id": "p1", "properties": {"mail": "a@x", "note": "n", "name": "A"}}),
            "line 1",
        )];
        let map = [
            ("mail".to_string(), Some("email".to_string())),
            ("note".to_string(), None),
        ]
        .into_iter()
        .collect();
        let p = apply_map(entries, &map).remove(0).unwrap();
        assert_eq!(
            serde_json::Value::Object(p.properties),
            json!({"email": "a@x", "name": "A"})
        );
    }

    #[test]
    fn group_lists_split_on_semicolons_and_bars() {
        let g = split_groups("vip; news|  |beta");
        assert_eq!(g.into_iter().collect::<Vec<_>>(), ["beta", "news", "vip"]);
    }
}
