//! Records as JSON text: import's pass-through path.
//!
//! When neither `--map` nor validation would change a record and both ends
//! speak JSON (an HTTP listing into a JSON lines file), the source's bytes
//! reach the destination as they came. Parsing every record into an
//! order-preserving map of owned strings and serializing it back cost two
//! thirds of such an import's CPU; here a page is scanned once to validate
//! it, each record's id is found with a few SIMD searches, and the record is
//! copied. A record the pass-through cannot vouch for (no id, an id that
//! is not a plain string) takes the parsed path, so what is written, rejected
//! and counted is the same either way; only the spelling of a line may differ
//! (the source's spacing and escapes are kept).

use std::ops::Range;

use anyhow::{Context, Result};
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use super::{Position, Record};

/// JSON object texts kept in one buffer, each with its id once the import
/// has checked it ("keyed").
#[derive(Debug, Default, Clone)]
pub struct RawRecords {
    text: String,
    spans: Vec<Range<usize>>,
    ids: String,
    id_spans: Vec<Range<usize>>,
    /// `text` holds something besides the records, each followed by a
    /// newline (a response body rather than records added one by one).
    not_lines: bool,
}

/// A page read as JSON text.
#[derive(Debug, Default)]
pub struct RawPage {
    pub records: RawRecords,
    pub next: Option<Position>,
    pub total: Option<u64>,
}

impl RawRecords {
    /// The records at `spans` of `text` (a response body), not keyed.
    pub fn from_spans(text: String, spans: Vec<Range<usize>>) -> RawRecords {
        RawRecords {
            text,
            spans,
            not_lines: true,
            ..RawRecords::default()
        }
    }

    /// `records` written as JSON text, not keyed.
    pub fn from_records(records: &[Record]) -> Result<RawRecords> {
        let mut raw = RawRecords::default();
        for record in records {
            let start = raw.text.len();
            raw.text.push_str(&serde_json::to_string(record)?);
            raw.spans.push(start..raw.text.len());
            raw.text.push('\n');
        }
        Ok(raw)
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The length of all the records' texts.
    pub fn bytes(&self) -> usize {
        self.spans.iter().map(ExactSizeIterator::len).sum()
    }

    /// Make room for `records` more records of `bytes` in all.
    pub fn reserve(&mut self, records: usize, bytes: usize) {
        self.text.reserve(bytes);
        self.spans.reserve(records);
        self.id_spans.reserve(records);
        self.ids.reserve(records * 16);
    }

    /// Record `i`'s text.
    pub fn get(&self, i: usize) -> &str {
        &self.text[self.spans[i].clone()]
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> + '_ {
        self.spans.iter().map(|s| &self.text[s.clone()])
    }

    /// Every record's id, in order, when the batch is keyed.
    pub fn ids(&self) -> Option<impl Iterator<Item = &str> + '_> {
        (self.id_spans.len() == self.spans.len())
            .then(|| self.id_spans.iter().map(|s| &self.ids[s.clone()]))
    }

    /// Whether any record's text spans more than one line.
    pub fn has_line_break(&self) -> bool {
        let text = self.text.as_bytes();
        if self.not_lines {
            return self
                .spans
                .iter()
                .any(|s| memchr::memchr2(b'\n', b'\r', &text[s.clone()]).is_some());
        }
        // Records added one by one: one newline after each, none inside.
        memchr::memchr(b'\r', text).is_some()
            || memchr::memchr_iter(b'\n', text).count() != self.spans.len()
    }

    /// The records as JSON lines, each on one line ended by a newline, when
    /// the buffer holds exactly that.
    pub fn as_lines(&self) -> Option<&str> {
        (!self.not_lines && !self.has_line_break()).then_some(self.text.as_str())
    }

    /// Add a record's text, not keyed (to a buffer of JSON lines).
    pub fn push(&mut self, json: &str) {
        let start = self.text.len();
        self.text.push_str(json);
        self.spans.push(start..self.text.len());
        self.text.push('\n');
    }

    /// Add a record's text and its id (to a buffer made by `default` or
    /// `from_records`, whose text is JSON lines).
    pub fn push_keyed(&mut self, json: &str, id: &str) {
        self.push(json);
        let start = self.ids.len();
        self.ids.push_str(id);
        self.id_spans.push(start..self.ids.len());
    }

    /// Add a parsed record, written as JSON text, and its id.
    pub fn push_record(&mut self, record: &Record, id: &str) -> Result<()> {
        let json = serde_json::to_string(record)?;
        self.push_keyed(&json, id);
        Ok(())
    }

    /// Record `i`, parsed.
    pub fn record(&self, i: usize) -> Result<Record> {
        serde_json::from_str(self.get(i)).context("a record passed through is not a JSON object")
    }

    /// Every record, parsed.
    pub fn to_records(&self) -> Result<Vec<Record>> {
        (0..self.len()).map(|i| self.record(i)).collect()
    }
}

/// Split a response `body` at the JSON pointer `pointer`: the array there,
/// as the spans of its items in `body`, and the rest of the document as a
/// value (the array left out) for the paging pointers. `None` when the
/// pointer does not reach an array through objects, or the body is not
/// JSON: the caller then parses the body the ordinary way, which words the
/// error.
pub fn split(body: &str, pointer: &str) -> Option<(Value, Vec<Range<usize>>)> {
    let path: Vec<String> = match pointer {
        "" => Vec::new(),
        p => p
            .strip_prefix('/')?
            .split('/')
            .map(|s| s.replace("~1", "/").replace("~0", "~"))
            .collect(),
    };
    let mut found = None;
    let mut de = serde_json::Deserializer::from_str(body);
    let rest = At {
        path: &path,
        found: &mut found,
    }
    .deserialize(&mut de)
    .ok()?;
    de.end().ok()?;
    let base = body.as_ptr() as usize;
    let spans = found?
        .iter()
        .map(|item| {
            let start = item.get().as_ptr() as usize - base;
            start..start + item.get().len()
        })
        .collect();
    Some((rest, spans))
}

/// Parses a value, taking the array at `path` (within it) as raw items into
/// `found`, in the same single pass.
struct At<'p, 'f, 'de> {
    path: &'p [String],
    found: &'f mut Option<Vec<&'de RawValue>>,
}

impl<'de> DeserializeSeed<'de> for At<'_, '_, 'de> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        if self.path.is_empty() {
            *self.found = Some(Vec::deserialize(d)?);
            return Ok(Value::Array(Vec::new()));
        }
        // Anything but an object here is an error: the ordinary parse then
        // says what the body holds instead.
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for At<'_, '_, 'de> {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut rest = serde_json::Map::new();
        while let Some(name) = map.next_key::<String>()? {
            let value = match self.path.split_first() {
                Some((key, deeper)) if name == *key => {
                    // A repeated key: the last one counts, as in a parse.
                    *self.found = None;
                    map.next_value_seed(At {
                        path: deeper,
                        found: &mut *self.found,
                    })?
                }
                _ => map.next_value::<Value>()?,
            };
            rest.insert(name, value);
        }
        Ok(Value::Object(rest))
    }
}

/// Finds records' ids: the record's `field` when it is a string written
/// without escapes and not blank, so validation would pass the record
/// unchanged. `None` for anything else (no such field, a number, an escaped
/// string, text that is not one JSON object), which the parsed path handles.
pub struct PlainIds {
    field: String,
    /// `"FIELD"`, searched for once per record.
    quoted: memchr::memmem::Finder<'static>,
}

impl PlainIds {
    pub fn new(field: &str) -> PlainIds {
        PlainIds {
            field: field.to_string(),
            quoted: memchr::memmem::Finder::new(format!("\"{field}\"").as_bytes()).into_owned(),
        }
    }

    pub fn of<'a>(&self, json: &'a str) -> Option<&'a str> {
        if let Some(id) = self.leading(json) {
            return Some(id);
        }
        let mut de = serde_json::Deserializer::from_str(json);
        let raw = de.deserialize_map(Fields(&self.field)).ok()??;
        de.end().ok()?;
        let text = raw.get();
        let inner = text.strip_prefix('"')?.strip_suffix('"')?;
        (!inner.contains('\\') && !inner.trim().is_empty()).then_some(inner)
    }

    /// The common case without a parse, for text already known to be one
    /// valid JSON value: the object starts with `{"FIELD":"ID"`, and
    /// neither a backslash (an escaped spelling of the key) nor the quoted
    /// field name occurs after it (so no later key of that name overrides
    /// it). Three SIMD searches; `None` means "not sure", never "no id".
    fn leading<'a>(&self, json: &'a str) -> Option<&'a str> {
        let rest = json
            .strip_prefix("{\"")?
            .strip_prefix(self.field.as_str())?
            .strip_prefix("\":\"")?;
        let end = memchr::memchr(b'"', rest.as_bytes())?;
        if memchr::memchr(b'\\', rest.as_bytes()).is_some()
            || self.quoted.find(&rest.as_bytes()[end..]).is_some()
        {
            return None;
        }
        let id = &rest[..end];
        (!id.trim().is_empty()).then_some(id)
    }
}

/// Visits an object's fields, keeping the last value of one of them.
struct Fields<'f>(&'f str);

impl<'de> Visitor<'de> for Fields<'_> {
    type Value = Option<&'de RawValue>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        while let Some(is_it) = map.next_key_seed(KeyIs(self.0))? {
            if is_it {
                found = Some(map.next_value::<&RawValue>()?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}

/// A key, compared with a field name without being copied.
struct KeyIs<'f>(&'f str);

impl<'de> DeserializeSeed<'de> for KeyIs<'_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for KeyIs<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E>(self, key: &str) -> Result<bool, E> {
        Ok(key == self.0)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn items<'a>(body: &'a str, spans: &[Range<usize>]) -> Vec<&'a str> {
        spans.iter().map(|s| &body[s.clone()]).collect()
    }

    #[test]
    fn split_takes_the_array_at_the_pointer_and_keeps_the_rest() {
        let body = r#"{"total": 2, "data": [{"id": "a"}, {"id":"b", "n": [1, 2]}], "next": null}"#;
        let (rest, spans) = split(body, "/data").expect("an array at /data");
        assert_eq!(
            items(body, &spans),
            [r#"{"id": "a"}"#, r#"{"id":"b", "n": [1, 2]}"#]
        );
        assert_eq!(rest, json!({"total": 2, "data": [], "next": null}));
    }

    #[test]
    fn split_follows_nested_and_escaped_pointers() {
        let body = r#"{"result": {"a/b": [{"id": 1}], "cursor": "x"}, "more": true}"#;
        let (rest, spans) = split(body, "/result/a~1b").expect("an array");
        assert_eq!(items(body, &spans), [r#"{"id": 1}"#]);
        assert_eq!(rest.pointer("/result/cursor"), Some(&json!("x")));
        assert_eq!(rest.pointer("/more"), Some(&json!(true)));
        let (_, spans) = split(r#" [{"id": "top"}] "#, "").expect("the body is the array");
        assert_eq!(spans.len(), 1);
    }

    #[test]
    fn split_answers_none_where_the_ordinary_parse_must_word_the_error() {
        assert!(split(r#"{"data": {"id": "a"}}"#, "/data").is_none());
        assert!(split(r#"{"other": []}"#, "/data").is_none());
        assert!(split(r#"{"data": [1, 2]"#, "/data").is_none());
        assert!(split(r#"[{"data": []}]"#, "/0/data").is_none());
        assert!(split(r#"{"data": []}"#, "data").is_none());
        // A repeated key: the last one counts, as when the body is parsed
        // (or, where the single pass cannot tell, the body is parsed).
        assert!(split(r#"{"data": [{"id": "a"}], "data": {}}"#, "/data").is_none());
        assert!(split(r#"{"data": 1, "data": [{"id": "b"}]}"#, "/data").is_none());
        let body = r#"{"data": [{"id": "a"}], "data": [{"id": "b"}]}"#;
        let (_, spans) = split(body, "/data").expect("the last data is an array");
        assert_eq!(items(body, &spans), [r#"{"id": "b"}"#]);
    }

    #[test]
    fn plain_ids_only_vouch_for_what_validation_would_pass_unchanged() {
        assert_eq!(
            PlainIds::new("id").of(r#"{"id": "cus_1", "x": {"id": 2}}"#),
            Some("cus_1")
        );
        assert_eq!(
            PlainIds::new("email").of(r#"{"email": "a@x", "id": "1"}"#),
            Some("a@x")
        );
        // The last of a repeated key wins, as when the record is parsed.
        assert_eq!(
            PlainIds::new("id").of(r#"{"id": "a", "id": "b"}"#),
            Some("b")
        );
        for json in [
            r#"{"id": 7}"#,
            r#"{"id": "  "}"#,
            r#"{"id": "a\"b"}"#,
            r#"{"id": null}"#,
            r#"{"name": "x"}"#,
            r#"["id"]"#,
            r#"{"id": "a""#,
            r#"{"id": "a"} {}"#,
        ] {
            assert_eq!(PlainIds::new("id").of(json), None, "{json}");
        }
    }

    #[test]
    fn the_leading_id_shortcut_agrees_with_the_parse() {
        let ids = PlainIds::new("id");
        let cases = [
            r#"{"id":"cus_1","email":"a@x"}"#,
            r#"{"id":"a","x":{"id":"b"}}"#,
            r#"{"id":"a","id":"b"}"#,
            r#"{"id":"a","\u0069d":"b"}"#,
            r#"{"id":" ","n":1}"#,
            r#"{"id":"a\"b"}"#,
            r#"{"id":"","n":1}"#,
            r#"{"idx":"a","id":"b"}"#,
            r#"{"id":"a","note":"say \"id\""}"#,
        ];
        for json in cases {
            let parsed: Record = serde_json::from_str(json).expect("valid JSON");
            let want = match parsed.get("id") {
                Some(Value::String(s)) if !s.trim().is_empty() && !s.contains('"') => {
                    Some(s.as_str())
                }
                _ => None,
            };
            assert_eq!(ids.of(json), want, "{json}");
            if let Some(id) = ids.leading(json) {
                assert_eq!(Some(id), want, "the shortcut is never wrong: {json}");
            }
        }
        assert_eq!(
            ids.leading(r#"{"id":"cus_1","email":"a@x"}"#),
            Some("cus_1")
        );
    }

    #[test]
    fn records_keep_their_text_and_ids() {
        let mut raw = RawRecords::default();
        raw.push_keyed(r#"{"id": "a",  "n": 1}"#, "a");
        let parsed: Record = serde_json::from_value(json!({"id": "b\nc"})).expect("an object");
        raw.push_record(&parsed, "b\nc").expect("written");
        assert_eq!(raw.len(), 2);
        assert_eq!(raw.get(0), r#"{"id": "a",  "n": 1}"#);
        assert_eq!(raw.get(1), r#"{"id":"b\nc"}"#);
        assert_eq!(raw.ids().expect("keyed").collect::<Vec<_>>(), ["a", "b\nc"]);
        assert_eq!(raw.record(1).expect("parsed"), parsed);
        assert!(!raw.has_line_break());
        assert_eq!(
            raw.as_lines(),
            Some("{\"id\": \"a\",  \"n\": 1}\n{\"id\":\"b\\nc\"}\n")
        );
        let mut broken = RawRecords::default();
        broken.push_keyed("{\"id\":\n\"a\"}", "a");
        assert!(broken.has_line_break() && broken.as_lines().is_none());
        let page = RawRecords::from_spans(
            "[{\"id\":\n\"a\"}]".into(),
            std::iter::once(1..12).collect(),
        );
        assert!(page.ids().is_none());
        assert!(page.has_line_break() && page.as_lines().is_none());
    }
}
