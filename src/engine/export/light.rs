//! A JSON line read light: what the first pass of an export needs of a
//! profile (its id, whether it is a `toDelete` mark, its key and the hash
//! of what it would send), taken from the line's text without building
//! the profile's maps. Building them (an order-keeping map of owned
//! strings, its keys hashed on insert) and copying them cost most of an
//! unchanged run's CPU; here the line is parsed once into borrowed slices.
//!
//! Only a line whose hash is sure to be the one [`state::hash_of`] gives
//! the built profile is read light: properties that are strings without
//! escapes, integers serde_json writes back the same, `true`, `false` or
//! `null`; no nested value; no repeated name; no field but `id`,
//! `properties`, `groups` and `toDelete`; an id that is such a string or
//! integer; groups that are names without escapes; and a destination that
//! checks no field (a local store). Anything else returns `None` and is
//! parsed as before, so what a run decides is the same either way.
//!
//! [`state::hash_of`]: super::state::hash_of

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::connector::ExportFields;

/// What a light read found.
#[derive(Debug, PartialEq, Eq)]
pub struct Light<'a> {
    pub id: &'a str,
    pub to_delete: bool,
    /// The key the profile would be sent under; `None` when it has none a
    /// destination could use (the second pass says what is wrong).
    pub key: Option<&'a str>,
    /// [`super::state::hash_of`] of what it would send (0 for a `toDelete`
    /// mark or a profile without a key).
    pub hash: u128,
}

/// How a destination's key is found, when its profiles can be read light.
pub struct Reader {
    /// The key field.
    key: String,
    /// A profile without the key field sends its id as the key.
    from_id: bool,
}

impl Reader {
    /// A reader for `dest`, when it checks no field and its key field's
    /// name is written in JSON as it is.
    pub fn new(dest: &ExportFields) -> Option<Reader> {
        let plain = !dest.key.contains(['"', '\\']) && !dest.key.chars().any(char::is_control);
        (dest.fields.is_empty() && dest.extra_fields && plain).then(|| Reader {
            key: dest.key.clone(),
            from_id: dest.key_from_profile_id,
        })
    }

    /// What the first pass needs of one line; `None` when it must be parsed.
    pub fn read<'a>(&self, text: &'a str) -> Option<Light<'a>> {
        // serde reads a struct from an array too, field by field.
        if !text.starts_with('{') {
            return None;
        }
        let line: Line<'a> = serde_json::from_str(text).ok()?;
        let id = id_of(line.id?)?;
        let to_delete = line.to_delete.unwrap_or(false);
        let mut props = line.properties.map(|p| p.0).unwrap_or_default();
        let mut groups = match line.groups {
            None => Vec::new(),
            Some(raw) => groups_of(raw)?,
        };
        props.sort_unstable_by(|a, b| a.0.cmp(b.0));
        if props.windows(2).any(|w| w[0].0 == w[1].0) {
            return None;
        }
        if !props.iter().all(|(_, v)| plain(v.get())) {
            return None;
        }
        if to_delete {
            return Some(Light {
                id,
                to_delete,
                key: None,
                hash: 0,
            });
        }
        let found = props.iter().find(|(k, _)| *k == self.key);
        let key = match found {
            Some((_, v)) => key_of(v.get()),
            None if self.from_id => Some(id),
            None => None,
        };
        let hash = match key {
            Some(_) => {
                groups.sort_unstable();
                groups.dedup();
                let filled = (found.is_none() && self.from_id).then_some((self.key.as_str(), id));
                hash(&props, filled, &groups)
            }
            None => 0,
        };
        Some(Light {
            id,
            to_delete,
            key,
            hash,
        })
    }
}

/// A profile line's fields, borrowed. Any other field sends the line to
/// the parsed path: serde skips an unknown field without the checks a
/// parse into a value makes (number range, surrogates, depth), so only the
/// parsed path can say such a line is not valid JSON.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line<'a> {
    #[serde(borrow)]
    id: Option<&'a RawValue>,
    #[serde(borrow)]
    properties: Option<Props<'a>>,
    #[serde(borrow)]
    groups: Option<&'a RawValue>,
    #[serde(rename = "toDelete")]
    to_delete: Option<bool>,
}

/// Properties as (name, value text) pairs, in the line's order.
struct Props<'a>(Vec<(&'a str, &'a RawValue)>);

impl<'de: 'a, 'a> Deserialize<'de> for Props<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Pairs<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for Pairs<'a> {
            type Value = Props<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Props<'a>, A::Error> {
                let mut pairs = Vec::with_capacity(map.size_hint().unwrap_or(8));
                // A name with an escape fails to borrow: the line is parsed.
                while let Some(name) = map.next_key::<&'a str>()? {
                    pairs.push((name, map.next_value::<&'a RawValue>()?));
                }
                Ok(Props(pairs))
            }
        }
        d.deserialize_map(Pairs(std::marker::PhantomData))
    }
}

/// A value serde_json writes back as the same text: a string without an
/// escape, an integer as it writes integers, `true`, `false`, `null`.
fn plain(text: &str) -> bool {
    match text.as_bytes().first() {
        Some(b'"') => !text.contains('\\'),
        Some(b't' | b'f' | b'n') => true,
        _ => integer(text),
    }
}

/// An integer in the form serde_json writes: no sign but `-`, no leading
/// zero, no `-0`, at most 18 digits (so it is an i64 or u64 either way).
fn integer(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    !digits.is_empty()
        && digits.len() <= 18
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" && digits.len() == text.len() || !digits.starts_with('0'))
}

/// The id, as `id_text` gives it: a string (not empty), or an integer.
fn id_of(raw: &RawValue) -> Option<&str> {
    let text = raw.get();
    if text.starts_with('"') {
        let s: &str = serde_json::from_str(text).ok()?;
        return (!s.is_empty()).then_some(s);
    }
    integer(text).then_some(text)
}

/// A key field's value as `record_id` reads it, for a plain value: a
/// string (not empty) or an integer; anything else is no key.
fn key_of(text: &str) -> Option<&str> {
    match text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
        Some(s) => (!s.is_empty()).then_some(s),
        None => integer(text).then_some(text),
    }
}

/// Groups as names: an array of strings, or one `;` / `|` separated
/// string, each trimmed; `None` for anything the parsed path would refuse
/// or unescape.
fn groups_of(raw: &RawValue) -> Option<Vec<&str>> {
    let text = raw.get();
    if text == "null" {
        return Some(Vec::new());
    }
    if text.starts_with('"') {
        let s: &str = serde_json::from_str(text).ok()?;
        return Some(
            s.split([';', '|'])
                .map(str::trim)
                .filter(|g| !g.is_empty())
                .collect(),
        );
    }
    let names: Vec<&str> = serde_json::from_str(text).ok()?;
    let names: Vec<&str> = names.into_iter().map(str::trim).collect();
    (!names.iter().any(|g| g.is_empty())).then_some(names)
}

/// `state::hash_of`'s bytes for sorted, plain properties, the key filled
/// in from the id when `filled`, and sorted groups.
fn hash(props: &[(&str, &RawValue)], filled: Option<(&str, &str)>, groups: &[&str]) -> u128 {
    let mut h = super::state::Fnv::new();
    let mut pair = |name: &str, value: &[&[u8]]| {
        h.eat(b"\"");
        h.eat(name.as_bytes());
        h.eat(b"\":");
        for part in value {
            h.eat(part);
        }
        h.eat(b"\n");
    };
    let mut filled = filled;
    for (name, value) in props {
        if let Some((key, id)) = filled.filter(|(key, _)| key < name) {
            pair(key, &[b"\"", id.as_bytes(), b"\""]);
            filled = None;
        }
        pair(name, &[value.get().as_bytes()]);
    }
    if let Some((key, id)) = filled {
        pair(key, &[b"\"", id.as_bytes(), b"\""]);
    }
    h.eat(b"\x01");
    for g in groups {
        h.eat(g.as_bytes());
        h.eat(b"\n");
    }
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::export::input::from_value;
    use crate::engine::export::state::hash_of;
    use serde_json::Value;

    fn local(key: &str) -> ExportFields {
        ExportFields::keyed_by_id_field(key)
    }

    /// What the parsed path gives: the key and hash of the built profile.
    fn parsed(text: &str, dest: &ExportFields) -> (String, Option<String>, u128) {
        let v: Value = serde_json::from_str(text).unwrap();
        let p = from_value(&v, "line 1").unwrap();
        let mut fields = p.properties.clone();
        if dest.key_from_profile_id && !fields.contains_key(&dest.key) {
            fields.insert(dest.key.clone(), Value::String(p.id.clone()));
        }
        let key = crate::connector::record_id(&fields, &dest.key);
        let hash = if key.is_some() && !p.to_delete {
            hash_of(&fields, &p.groups)
        } else {
            0
        };
        (p.id, if p.to_delete { None } else { key }, hash)
    }

    #[test]
    fn a_light_read_finds_what_the_parsed_one_does() {
        let lines = [
            r#"{"id":"p1","properties":{"email":"a@x","name":"A","age":31,"plan":"free"},"groups":["vip","news"]}"#,
            r#"{ "groups" : "b; a |a", "properties" : { "z" : null, "a" : true, "m" : -5 }, "id" : 12 }"#,
            r#"{"id":"p2","properties":{"id":"k1","ünï":"çé"}}"#,
            r#"{"id":"p3","properties":{"email":"e@x"},"groups":null,"toDelete":false}"#,
            r#"{"id":"p4"}"#,
            r#"{"id":"p5","properties":{"id":""}}"#,
            r#"{"id":"p6","properties":{"id":7,"b":0}}"#,
            r#"{"id":"p7","properties":{"aa":"1","a":"2","id":"p7","b":"3"}}"#,
        ];
        for dest in [local("id"), local("email"), local("a")] {
            let reader = Reader::new(&dest).unwrap();
            for text in lines {
                let light = reader.read(text).expect(text);
                let (id, key, hash) = parsed(text, &dest);
                assert_eq!(light.id, id, "{text}");
                assert_eq!(light.key.map(str::to_string), key, "{text} by {}", dest.key);
                assert_eq!(light.hash, hash, "{text} by {}", dest.key);
            }
        }
    }

    #[test]
    fn a_line_it_cannot_vouch_for_is_parsed() {
        let reader = Reader::new(&local("id")).unwrap();
        for text in [
            r#"{"id":"p\u0031","properties":{}}"#,
            r#"{"id":"p1","properties":{"n\u0061me":"x"}}"#,
            r#"{"id":"p1","properties":{"name":"caf\u00e9"}}"#,
            r#"{"id":"p1","properties":{"n":1.0}}"#,
            r#"{"id":"p1","properties":{"n":1e3}}"#,
            r#"{"id":"p1","properties":{"n":-0}}"#,
            r#"{"id":"p1","properties":{"n":1234567890123456789012}}"#,
            r#"{"id":"p1","properties":{"n":{"a":1}}}"#,
            r#"{"id":"p1","properties":{"n":[1]}}"#,
            r#"{"id":"p1","properties":{"n":1,"n":2}}"#,
            r#"{"id":"p1","id":"p2"}"#,
            r#"{"id":"p1","groups":["a"," "]}"#,
            r#"{"id":"p1","groups":[1]}"#,
            r#"{"id":"p1","toDelete":"yes"}"#,
            r#"{"id":"","properties":{}}"#,
            r#"{"id":1.5}"#,
            r#"{"properties":{}}"#,
            r#"["p1"]"#,
            r#"["p1",null,null,true]"#,
            r#"{"id":"p1""#,
            r#"{"id":"p1","other":[1,{"x":2}]}"#,
            r#"{"id":"p1","x":1e400}"#,
            r#"{"id":"p1","x":"\ud800"}"#,
        ] {
            assert_eq!(reader.read(text), None, "{text}");
        }
    }

    #[test]
    fn a_destination_that_checks_fields_is_not_read_light() {
        let mut dest = local("id");
        dest.extra_fields = false;
        assert!(Reader::new(&dest).is_none());
        assert!(Reader::new(&local("e\"mail")).is_none());
    }

    #[test]
    fn a_to_delete_mark_has_no_key_or_hash() {
        let reader = Reader::new(&local("id")).unwrap();
        let light = reader
            .read(r#"{"id":"p1","toDelete":true,"properties":{"id":"x"}}"#)
            .unwrap();
        assert_eq!((light.to_delete, light.key, light.hash), (true, None, 0));
    }
}
