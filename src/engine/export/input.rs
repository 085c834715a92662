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
use crate::connector::{able, id_text, BadId, Position, Record};
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
    /// `id` is the profile's id, not its place ("line 3"): the profile is
    /// in the input, even if it cannot be sent, so `--deletes` must not
    /// take it for one that left.
    pub named: bool,
}

impl Invalid {
    /// A profile with this id that cannot be sent.
    pub fn new(
        id: impl Into<String>,
        reason: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Invalid {
            id: id.into(),
            reason: reason.into(),
            message: message.into(),
            named: true,
        }
    }

    /// An entry with no usable id, named by its place in the input (`at`).
    pub fn unnamed(
        at: impl Into<String>,
        reason: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Invalid {
            named: false,
            ..Invalid::new(at, reason, message)
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
    from_owned(value.clone(), at)
}

/// [`from_value`] of a value the caller is done with: its properties are
/// moved into the profile, not copied (the first pass of an export reads
/// every profile of its input through here).
pub fn from_owned(value: Value, at: &str) -> Entry {
    let Value::Object(mut obj) = value else {
        return Err(Invalid::unnamed(
            at,
            "not a profile object",
            format!("{at} is {}, not a profile object", kind_of(&value)),
        ));
    };
    let id = match id_text(obj.get("id")) {
        Ok(id) => id,
        Err(BadId::Missing) => {
            return Err(Invalid::unnamed(
                at,
                id_reason(&BadId::Missing),
                format!("{at} has no \"id\""),
            ))
        }
        Err(bad) => return Err(Invalid::unnamed(at, id_reason(&bad), bad.reason("\"id\""))),
    };
    let properties = match obj.get_mut("properties") {
        None | Some(Value::Null) => Record::new(),
        Some(Value::Object(p)) => std::mem::take(p),
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

/// One CSV row as a profile (`at` names it in errors).
fn profile_of_row(headers: &[String], row: &csv::StringRecord, at: &str) -> Entry {
    {
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
        if profile.id.is_empty() {
            Err(Invalid::unnamed(
                at,
                id_reason(&BadId::Missing),
                format!("{at} has no id"),
            ))
        } else {
            Ok(profile)
        }
    }
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

fn profile_of_record(mut record: Record, id_field: &str, at: &str) -> Entry {
    if record.contains_key("properties") {
        return from_owned(Value::Object(record), at);
    }
    let id = match id_text(record.get(id_field)) {
        Ok(id) => id,
        Err(bad) => {
            let message = match &bad {
                BadId::Missing => format!("{at} has no {id_field}"),
                bad => bad.reason(id_field),
            };
            return Err(Invalid::unnamed(at, id_reason(&bad), message));
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

/// The profiles of a run, one at a time and in input order, with in.json's
/// `export.map` applied: a file is read as it goes (a JSON array parsed on
/// a thread of its own, element by element), a source connector page by
/// page, so what a run holds does not grow with the input.
pub struct Stream {
    inner: Inner,
    map: Option<BTreeMap<String, Option<String>>>,
}

enum Inner {
    Items(std::vec::IntoIter<Entry>),
    Lines {
        reader: std::io::BufReader<std::fs::File>,
        path: std::path::PathBuf,
        line: u64,
        buf: Vec<u8>,
    },
    Array(std::sync::mpsc::Receiver<Result<Entry>>),
    Csv {
        rows: Rows,
        headers: Vec<String>,
        path: std::path::PathBuf,
        n: usize,
    },
    Source {
        connector: Box<dyn crate::connector::Connector>,
        what: String,
        id_field: String,
        at: Option<Position>,
        page: std::collections::VecDeque<Entry>,
    },
}

/// How many records a source connector's page holds.
const SOURCE_PAGE: usize = 500;

impl Stream {
    /// Open the profiles `from` names.
    pub async fn open(ctx: &Ctx, from: &ProfilesFrom) -> Result<Stream> {
        let inner = match from {
            ProfilesFrom::File(path) => open_file(path)?,
            ProfilesFrom::Section => {
                let inputs = ctx.inputs()?;
                let source = inputs.describe("export", "profiles");
                let Some(section) = inputs.section("export") else {
                    return Err(usage("no profiles to export")
                        .hint("pass --input FILE (JSON lines, JSON array or CSV), --from TARGET, or add an \"export\" section to in.json")
                        .into());
                };
                Inner::Items(from_section(section, &source)?.into_iter())
            }
            ProfilesFrom::Source(spec) => {
                spec.must_exist(&spec.canonical())?;
                let source = spec.resolve(ctx)?;
                let connector = ctx.open(&source.account)?;
                let id_field = {
                    let pages = able(connector.as_ref(), connector.source(), "read pages")?;
                    pages.id_field().to_string()
                };
                Inner::Source {
                    connector,
                    what: source.account.source.clone(),
                    id_field,
                    at: Some(Position::start()),
                    page: Default::default(),
                }
            }
        };
        Ok(Stream {
            inner,
            map: property_map(ctx)?,
        })
    }

    /// The next profile, or `None` at the end.
    pub async fn next(&mut self) -> Result<Option<Entry>> {
        let entry = match &mut self.inner {
            Inner::Items(items) => items.next(),
            Inner::Lines {
                reader,
                path,
                line,
                buf,
            } => next_line(reader, path, line, buf)?,
            Inner::Array(rx) => rx.recv().ok().transpose()?,
            Inner::Csv {
                rows,
                headers,
                path,
                n,
            } => next_csv(rows, headers, path, n)?,
            Inner::Source {
                connector,
                what,
                id_field,
                at,
                page,
            } => loop {
                if let Some(entry) = page.pop_front() {
                    break Some(entry);
                }
                let Some(from) = at.clone() else {
                    break None;
                };
                let pages = able(connector.as_ref(), connector.source(), "read pages")?;
                let read = pages.read_page(&from, SOURCE_PAGE).await?;
                let n = read.records.len();
                for (i, record) in read.records.into_iter().enumerate() {
                    let where_ = format!("record {}", from.offset + i as u64 + 1);
                    page.push_back(profile_of_record(record, id_field, &where_));
                }
                *at = match read.next {
                    None => None,
                    // A page that moves nowhere would loop forever: a connector error.
                    Some(next) if n == 0 || next == from => {
                        return Err(failed(format!(
                            "{what} answered an empty page that is not the end (at offset {})",
                            from.offset
                        ))
                        .into())
                    }
                    Some(next) => Some(next),
                };
            },
        };
        Ok(match (entry, &self.map) {
            (Some(entry), Some(map)) => apply_map(vec![entry], map).pop(),
            (entry, _) => entry,
        })
    }

    /// The next item: a JSON line's text when the input is JSON lines and
    /// nothing renames its properties (the first pass reads most lines
    /// without building the profile), the next entry otherwise.
    pub async fn next_item(&mut self) -> Result<Option<Item<'_>>> {
        let lines = self.map.is_none() && matches!(self.inner, Inner::Lines { .. });
        if !lines {
            return Ok(self.next().await?.map(Item::Entry));
        }
        let Inner::Lines {
            reader,
            path,
            line,
            buf,
        } = &mut self.inner
        else {
            return Ok(None);
        };
        let text = line_text(reader, path, line, buf)?;
        Ok(text.map(|text| {
            Item::Line(Line {
                text,
                number: *line,
                path,
            })
        }))
    }
}

/// A profiles file: `.csv` as CSV, a JSON array when it starts with `[`,
/// JSON lines when not.
fn open_file(path: &Path) -> Result<Inner> {
    use std::io::BufRead;
    if !path.exists() {
        return Err(usage(format!("no profiles file at {}", path.display()))
            .hint("check the path given to --input")
            .into());
    }
    let is_csv = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    if is_csv {
        let rows = Rows::open(path, &csv::ReaderBuilder::new(), b',', 0)?;
        let headers = rows.headers().to_vec();
        if !headers.iter().any(|h| h == "id") {
            return Err(usage(format!("{} has no \"id\" column", path.display()))
                .hint("the first row names the columns: id, one per property, and optionally groups and toDelete")
                .into());
        }
        return Ok(Inner::Csv {
            rows,
            headers,
            path: path.to_path_buf(),
            n: 0,
        });
    }
    let file =
        std::fs::File::open(path).with_context(|| format!("could not read {}", path.display()))?;
    let mut reader = std::io::BufReader::with_capacity(1 << 16, file);
    // The first character that is not white space (or a byte order mark)
    // tells an array from JSON lines. Only the mark is consumed, so the
    // lines errors name are the file's.
    let buf = reader
        .fill_buf()
        .with_context(|| format!("could not read {}", path.display()))?;
    let bom = buf.starts_with(b"\xEF\xBB\xBF");
    let array = buf[if bom { 3 } else { 0 }..]
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|&b| b == b'[');
    if bom {
        reader.consume(3);
    }
    if array {
        return Ok(Inner::Array(spawn_array(reader, path.to_path_buf())));
    }
    Ok(Inner::Lines {
        reader,
        path: path.to_path_buf(),
        line: 0,
        buf: Vec::new(),
    })
}

/// The next profile of a JSON lines file (blank lines skipped).
fn next_line(
    reader: &mut std::io::BufReader<std::fs::File>,
    path: &Path,
    line: &mut u64,
    buf: &mut Vec<u8>,
) -> Result<Option<Entry>> {
    Ok(line_text(reader, path, line, buf)?.map(|text| entry_of_line(text, path, *line)))
}

/// The text of the next line of a JSON lines file that is not blank,
/// trimmed; `line` is its number.
fn line_text<'b>(
    reader: &mut std::io::BufReader<std::fs::File>,
    path: &Path,
    line: &mut u64,
    buf: &'b mut Vec<u8>,
) -> Result<Option<&'b str>> {
    use std::io::BufRead;
    let range = loop {
        buf.clear();
        let read = reader
            .read_until(b'\n', buf)
            .with_context(|| format!("could not read {}", path.display()))?;
        if read == 0 {
            return Ok(None);
        }
        *line += 1;
        let text = crate::config::utf8(buf, || path.display().to_string(), Some(*line))?.trim();
        if !text.is_empty() {
            let start = text.as_ptr() as usize - buf.as_ptr() as usize;
            break start..start + text.len();
        }
    };
    // Checked above; the range keeps the borrow out of the loop.
    Ok(std::str::from_utf8(&buf[range]).ok())
}

/// Line `line` of the JSON lines file at `path` as a profile.
fn entry_of_line(text: &str, path: &Path, line: u64) -> Entry {
    let at = format!("line {line}");
    match serde_json::from_str::<Value>(text) {
        Ok(v) => from_owned(v, &at),
        Err(e) => Err(Invalid::unnamed(
            at.clone(),
            "not valid JSON",
            format!(
                "invalid JSON in {} {at}, column {}",
                path.display(),
                e.column()
            ),
        )),
    }
}

/// One item of the input as an export's first pass takes it.
pub enum Item<'s> {
    /// A line of a JSON lines file, as text (`--input` without a map).
    Line(Line<'s>),
    /// Any other profile, or invalid entry.
    Entry(Entry),
}

/// A line of a JSON lines file, trimmed, not blank.
pub struct Line<'s> {
    pub text: &'s str,
    number: u64,
    path: &'s Path,
}

impl Line<'_> {
    /// The line parsed, as [`Stream::next`] gives it.
    pub fn entry(&self) -> Entry {
        entry_of_line(self.text, self.path, self.number)
    }
}

/// A JSON array's profiles, parsed element by element on a thread of its
/// own and handed over through a bounded channel; a syntax error ends the
/// stream with the error naming its line and column.
fn spawn_array(
    reader: std::io::BufReader<std::fs::File>,
    path: std::path::PathBuf,
) -> std::sync::mpsc::Receiver<Result<Entry>> {
    use serde::de::{Deserializer as _, SeqAccess, Visitor};
    struct Each<'a> {
        tx: &'a std::sync::mpsc::SyncSender<Result<Entry>>,
    }
    impl<'de> Visitor<'de> for Each<'_> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an array of profiles")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<(), A::Error> {
            let mut n = 0;
            while let Some(v) = seq.next_element::<Value>()? {
                n += 1;
                if self
                    .tx
                    .send(Ok(from_owned(v, &format!("item {n}"))))
                    .is_err()
                {
                    // The run stopped reading: stop parsing.
                    return Err(serde::de::Error::custom("stopped"));
                }
            }
            Ok(())
        }
    }
    let (tx, rx) = std::sync::mpsc::sync_channel(1024);
    std::thread::spawn(move || {
        let mut de = serde_json::Deserializer::from_reader(reader);
        let parsed = de.deserialize_seq(Each { tx: &tx }).and_then(|()| de.end());
        if let Err(e) = parsed {
            let source = path.display().to_string();
            let _ = tx.send(Err(crate::config::json::invalid(&source, &e).into()));
        }
    });
    rx
}

/// The next profile of a CSV file.
fn next_csv(
    rows: &mut Rows,
    headers: &[String],
    path: &Path,
    n: &mut usize,
) -> Result<Option<Entry>> {
    let mut row = csv::StringRecord::new();
    let Some(read) = rows.next_row(&mut row)? else {
        return Ok(None);
    };
    let at = format!("row {}", *n + 2);
    *n += 1;
    if let Err(e) = read {
        return Ok(Some(Err(Invalid::unnamed(
            at,
            "not valid CSV",
            format!("invalid CSV in {}: {e}", path.display()),
        ))));
    }
    Ok(Some(profile_of_row(headers, &row, &at)))
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
