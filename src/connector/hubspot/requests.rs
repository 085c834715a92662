//! Pure request building for HubSpot's CRM v3 contacts and Lists v3 APIs:
//! every request the connector sends is made here without I/O, so
//! `--dry-run` and unit tests need no server. Also the shaping of a ferry
//! record into HubSpot's `{"properties": {...}}` (every value a string, an
//! empty string clears, docs/connectors/hubspot.md §6–§7), the flattening
//! of a HubSpot object into a record, and the getupdates position.

use anyhow::Result;
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use serde_json::{json, Map, Value};

use crate::connector::Record;
use crate::http::{segment, RequestSpec};

/// The page `GET /crm/v3/objects/contacts` is asked for at most (the spec
/// states no maximum; 100 is what HubSpot's own tools use).
pub const MAX_PAGE: usize = 100;
/// The most results one search request may answer ("up to 200 objects").
pub const MAX_SEARCH: usize = 200;
/// The most inputs one CRM batch request (upsert, archive) may carry.
pub const MAX_BATCH: usize = 100;
/// Record ids per list membership call: not documented, so the CRM batch size.
pub const MAX_MEMBERS: usize = 100;
/// The object type id of contacts in the Lists API.
pub const CONTACTS: &str = "0-1";
/// The property getupdates filters and sorts by.
pub const MODIFIED: &str = "lastmodifieddate";
/// The properties a contact search answers when none are asked for
/// (https://developers.hubspot.com/docs/api-reference/2026-03/crm/search-the-crm).
/// The spec requires `properties` in every search, so a search without
/// configured properties names these instead of leaving the key out: the
/// answer stays what it was.
pub const SEARCH_DEFAULTS: &[&str] = &[
    "createdate",
    "email",
    "firstname",
    "hs_object_id",
    "lastmodifieddate",
    "lastname",
];

/// Fields HubSpot computes: a record read from HubSpot carries them, and
/// writing them back is an error ("Read-only and non-existent properties
/// will result in an error"), so they are left out of what is written.
pub const READ_ONLY: &[&str] = &[
    "id",
    "createdAt",
    "updatedAt",
    "archived",
    "archivedAt",
    "hs_object_id",
    "lastmodifieddate",
];

/// Where requests go, the token every request carries, the unique property
/// records are keyed by and the properties read.
#[derive(Debug, Clone)]
pub struct Api {
    pub base_url: String,
    pub token: String,
    /// The unique property upserts and non-numeric ids are keyed by (`email`).
    pub id_property: String,
    /// Properties to read; empty means HubSpot's defaults.
    pub properties: Vec<String>,
}

/// Whether `id` is HubSpot's own record id (digits) rather than a value of
/// the unique property (an email).
pub fn is_record_id(id: &str) -> bool {
    !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit())
}

fn query(pairs: &[(&str, String)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs.iter().map(|(k, v)| (*k, v.as_str())))
        .finish()
}

impl Api {
    fn request(&self, method: &str, path_and_query: &str) -> RequestSpec {
        crate::connector::saas::request(method, &self.base_url, path_and_query)
            .header("Authorization", format!("Bearer {}", self.token))
            .header("Accept", "application/json")
    }

    fn with_body(&self, method: &str, path: &str, body: Value) -> RequestSpec {
        self.request(method, path)
            .header("Content-Type", "application/json")
            .json(body)
    }

    /// `/crm/v3/objects/contacts/{id}`, or `/{value}?idProperty=email` when
    /// `id` is not a HubSpot record id; `extra` query pairs follow.
    fn contact(&self, id: &str, extra: &[(&str, String)]) -> String {
        let mut pairs: Vec<(&str, String)> = Vec::new();
        if !is_record_id(id) {
            pairs.push(("idProperty", self.id_property.clone()));
        }
        pairs.extend(extra.iter().cloned());
        let q = if pairs.is_empty() {
            String::new()
        } else {
            format!("?{}", query(&pairs))
        };
        format!("/crm/v3/objects/contacts/{}{q}", segment(id))
    }

    fn properties_query(&self) -> Vec<(&'static str, String)> {
        if self.properties.is_empty() {
            Vec::new()
        } else {
            vec![("properties", self.properties.join(","))]
        }
    }

    /// `GET /crm/v3/objects/contacts/{id}` (or by the unique property).
    pub fn get(&self, id: &str) -> RequestSpec {
        self.request("GET", &self.contact(id, &self.properties_query()))
    }

    /// `GET /crm/v3/properties/contacts`: every contact property the
    /// portal defines, HubSpot's and its own (`ferry fields`).
    pub fn contact_properties(&self) -> RequestSpec {
        self.request("GET", "/crm/v3/properties/contacts")
    }

    /// `GET /crm/v3/objects/contacts/{value}?idProperty=email`: always by
    /// the unique property, whatever the value looks like.
    pub fn get_by_key(&self, key: &str) -> RequestSpec {
        let q = query(&[("idProperty", self.id_property.clone())]);
        self.request(
            "GET",
            &format!("/crm/v3/objects/contacts/{}?{q}", segment(key)),
        )
    }

    /// `POST /crm/v3/objects/contacts` with `{"properties": ..., "associations": []}`:
    /// the spec's `SimplePublicObjectInputForCreate` requires both keys, and
    /// ferry creates a contact associated with nothing.
    pub fn create(&self, properties: Value) -> RequestSpec {
        self.with_body(
            "POST",
            "/crm/v3/objects/contacts",
            json!({ "properties": properties, "associations": [] }),
        )
    }

    /// `PATCH /crm/v3/objects/contacts/{id}`: given values overwrite, `""` clears.
    pub fn update(&self, id: &str, properties: Value) -> RequestSpec {
        self.with_body(
            "PATCH",
            &self.contact(id, &[]),
            json!({ "properties": properties }),
        )
    }

    /// `DELETE /crm/v3/objects/contacts/{contactId}`: archives (restorable
    /// for 90 days). Unlike GET and PATCH, HubSpot's archive takes no
    /// `idProperty`: `id` must be the record id (a unique property value is
    /// looked up first, see `HubSpot::delete`).
    pub fn archive(&self, id: &str) -> RequestSpec {
        self.request(
            "DELETE",
            &format!("/crm/v3/objects/contacts/{}", segment(id)),
        )
    }

    /// `GET /crm/v3/objects/contacts?limit=N&after=CURSOR`.
    pub fn list(&self, limit: usize, after: Option<&str>) -> RequestSpec {
        let mut q = format!("limit={limit}");
        if let Some(a) = after {
            // The cursor goes back as HubSpot wrote it (its own `link` is
            // `?after=VALUE`; the documented example is already escaped).
            let verbatim = a
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b));
            let a = if verbatim { a.to_string() } else { segment(a) };
            q.push_str(&format!("&after={a}"));
        }
        let mut pairs = self.properties_query();
        pairs.push(("archived", "false".into()));
        q.push_str(&format!("&{}", query(&pairs)));
        self.request("GET", &format!("/crm/v3/objects/contacts?{q}"))
    }

    /// `POST /crm/v3/objects/contacts/search`: contacts modified at or after
    /// `since_ms`, oldest change first. Every key the spec's
    /// `PublicObjectSearchRequest` requires is sent: `filterGroups` is empty
    /// when there is no position yet, `properties` names HubSpot's defaults
    /// when none are configured (and always `lastmodifieddate`, which the
    /// position is read from), and `after` is `"0"`, the first result:
    /// getupdates never pages a search, it searches again from the last
    /// modification time read.
    pub fn search(&self, since_ms: Option<i64>, limit: usize) -> RequestSpec {
        let filter_groups = match since_ms {
            Some(ms) => {
                json!([{ "filters": [{ "propertyName": MODIFIED, "operator": "GTE", "value": ms.to_string() }] }])
            }
            None => json!([]),
        };
        let mut props: Vec<String> = if self.properties.is_empty() {
            SEARCH_DEFAULTS.iter().map(|p| p.to_string()).collect()
        } else {
            self.properties.clone()
        };
        if !props.iter().any(|p| p == MODIFIED) {
            props.push(MODIFIED.into());
        }
        self.with_body(
            "POST",
            "/crm/v3/objects/contacts/search",
            json!({
                "filterGroups": filter_groups,
                "sorts": [{ "propertyName": MODIFIED, "direction": "ASCENDING" }],
                "properties": props,
                "limit": limit,
                "after": "0",
            }),
        )
    }

    /// `POST /crm/v3/objects/contacts/batch/upsert` with at most 100 inputs.
    pub fn batch_upsert(&self, inputs: Vec<Value>) -> RequestSpec {
        self.with_body(
            "POST",
            "/crm/v3/objects/contacts/batch/upsert",
            json!({ "inputs": inputs }),
        )
    }

    /// `GET /crm/v3/lists/object-type-id/0-1/name/{name}` (not case sensitive).
    pub fn list_by_name(&self, name: &str) -> RequestSpec {
        self.request(
            "GET",
            &format!(
                "/crm/v3/lists/object-type-id/{CONTACTS}/name/{}",
                segment(name)
            ),
        )
    }

    /// `POST /crm/v3/lists`: a static (MANUAL) contact list.
    pub fn create_list(&self, name: &str) -> RequestSpec {
        self.with_body(
            "POST",
            "/crm/v3/lists",
            json!({ "name": name, "objectTypeId": CONTACTS, "processingType": "MANUAL" }),
        )
    }

    /// `PUT /crm/v3/lists/{listId}/memberships/add` with an array of record ids.
    pub fn add_members(&self, list_id: &str, ids: &[String]) -> RequestSpec {
        self.with_body(
            "PUT",
            &format!("/crm/v3/lists/{}/memberships/add", segment(list_id)),
            json!(ids),
        )
    }

    /// `PUT /crm/v3/lists/{listId}/memberships/remove` with an array of record ids.
    pub fn remove_members(&self, list_id: &str, ids: &[String]) -> RequestSpec {
        self.with_body(
            "PUT",
            &format!("/crm/v3/lists/{}/memberships/remove", segment(list_id)),
            json!(ids),
        )
    }
}

/// Why a record cannot be written as HubSpot contact properties.
#[derive(Debug, Clone, PartialEq)]
pub struct Unfit(pub String);

/// How a null is written: left out (create, upsert) or as `""` (update,
/// which is how HubSpot clears a property).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nulls {
    Omit,
    Clear,
}

/// A value as HubSpot stores it: a string. Numbers and booleans become
/// their text, a list of scalars a `;`-separated string (multiple
/// checkboxes); an object has no property form.
pub fn property_value(key: &str, value: &Value) -> std::result::Result<String, Unfit> {
    Ok(match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(items) => {
            let mut parts = Vec::with_capacity(items.len());
            for item in items {
                match item {
                    Value::Array(_) | Value::Object(_) => {
                        return Err(Unfit(format!(
                            "\"{key}\" is a list of lists or objects; HubSpot takes a string, a number, a boolean or a list of those"
                        )))
                    }
                    v => parts.push(property_value(key, v)?),
                }
            }
            parts.join(";")
        }
        Value::Object(_) => {
            return Err(Unfit(format!(
                "\"{key}\" is an object; HubSpot properties are flat (address, city, zip, ...): map it to properties with --map"
            )))
        }
    })
}

/// The `properties` object of a write: read-only fields dropped, every
/// value a string, nulls left out or cleared.
pub fn properties(record: &Record, nulls: Nulls) -> std::result::Result<Value, Unfit> {
    let mut out = Map::new();
    for (key, value) in record {
        if READ_ONLY.contains(&key.as_str()) {
            continue;
        }
        if value.is_null() && nulls == Nulls::Omit {
            continue;
        }
        out.insert(key.clone(), Value::String(property_value(key, value)?));
    }
    Ok(Value::Object(out))
}

/// A HubSpot object (`{"id", "properties": {...}, ...}`) as a ferry record:
/// its id, then its properties, flat.
pub fn flatten(object: &Value) -> Option<Record> {
    let id = match object.get("id")? {
        Value::String(s) if !s.is_empty() => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    let mut record = Record::new();
    record.insert("id".into(), Value::String(id));
    if let Some(Value::Object(props)) = object.get("properties") {
        for (k, v) in props {
            if k != "id" {
                record.insert(k.clone(), v.clone());
            }
        }
    }
    Some(record)
}

/// When a contact was last modified, in Unix milliseconds: its
/// `lastmodifieddate` property, else the object's `updatedAt`.
pub fn modified_ms(object: &Value) -> Option<i64> {
    object
        .pointer("/properties/lastmodifieddate")
        .and_then(Value::as_str)
        .and_then(parse_ms)
        .or_else(|| {
            object
                .get("updatedAt")
                .and_then(Value::as_str)
                .and_then(parse_ms)
        })
}

/// An ISO 8601 date-time, a date (midnight UTC), or Unix milliseconds.
pub fn parse_ms(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(d) = DateTime::parse_from_rfc3339(s) {
        return Some(d.timestamp_millis());
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return d
            .and_hms_opt(0, 0, 0)
            .map(|d| d.and_utc().timestamp_millis());
    }
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse().ok();
    }
    None
}

fn iso(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map(|d| d.to_rfc3339_opts(SecondsFormat::Millis, true))
        .unwrap_or_else(|| ms.to_string())
}

/// Where getupdates stands ([`crate::connector::mark`]): the last
/// modification time read (Unix milliseconds) and the ids read at exactly
/// that time. The next search asks for `lastmodifieddate >= at` and skips
/// those ids, so the search never pages deep enough to meet its result cap.
pub type Mark = crate::connector::mark::Mark<i64>;

/// HubSpot's spelling of a [`Mark`]: TIME is ISO 8601, a date or Unix milliseconds.
pub trait MarkToken: Sized {
    /// `TIME` or `TIME|id,id`.
    fn parse(token: &str) -> Result<Self>;
    fn token(&self) -> String;
}

impl MarkToken for Mark {
    fn parse(token: &str) -> Result<Mark> {
        Mark::read_token(
            token,
            parse_ms,
            "a HubSpot position",
            "an ISO 8601 date-time or Unix milliseconds",
        )
    }

    fn token(&self) -> String {
        self.write(iso(self.at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api() -> Api {
        Api {
            base_url: "https://api.hubapi.com/".into(),
            token: "tok".into(),
            id_property: "email".into(),
            properties: vec![],
        }
    }

    fn rec(v: Value) -> Record {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn contacts_are_addressed_by_record_id_or_by_the_unique_property() {
        let a = api();
        assert_eq!(
            a.get("512").url,
            "https://api.hubapi.com/crm/v3/objects/contacts/512"
        );
        assert_eq!(
            a.update("ada+x@example.com", json!({})).url,
            "https://api.hubapi.com/crm/v3/objects/contacts/ada%2Bx%40example.com?idProperty=email"
        );
        assert!(a
            .get("1")
            .headers
            .contains(&("Authorization".into(), "Bearer tok".into())));
        assert_eq!(
            a.archive("ada@example.com").url,
            "https://api.hubapi.com/crm/v3/objects/contacts/ada%40example.com"
        );
        assert_eq!(
            a.list(100, Some("NTI1Cg%3D%3D")).url,
            "https://api.hubapi.com/crm/v3/objects/contacts?limit=100&after=NTI1Cg%3D%3D&archived=false"
        );
        assert_eq!(
            a.list_by_name("VIP / 2026").url,
            "https://api.hubapi.com/crm/v3/lists/object-type-id/0-1/name/VIP%20%2F%202026"
        );
    }

    #[test]
    fn create_and_search_carry_every_key_the_spec_requires() {
        let body = |r: RequestSpec| match r.body {
            Some(crate::http::Body::Json(v)) => v,
            other => panic!("not a JSON body: {other:?}"),
        };
        assert_eq!(body(api().create(json!({})))["associations"], json!([]));
        let mut a = api();
        a.properties = vec!["email".into()];
        let search = body(a.search(None, 10));
        for key in ["after", "filterGroups", "limit", "properties", "sorts"] {
            assert!(search.get(key).is_some(), "{key} missing: {search}");
        }
        assert_eq!(search["filterGroups"], json!([]));
        assert_eq!(search["properties"], json!(["email", "lastmodifieddate"]));
    }

    #[test]
    fn values_become_strings_nulls_are_omitted_or_cleared() {
        let r = rec(json!({"id": "1", "email": "a@x", "age": 42, "vip": true,
            "tags": ["a", "b"], "phone": null, "lastmodifieddate": "x"}));
        assert_eq!(
            properties(&r, Nulls::Omit).unwrap(),
            json!({"email": "a@x", "age": "42", "vip": "true", "tags": "a;b"})
        );
        assert_eq!(properties(&r, Nulls::Clear).unwrap()["phone"], json!(""));
        let err = properties(&rec(json!({"address": {"city": "x"}})), Nulls::Omit).unwrap_err();
        assert!(err.0.contains("\"address\" is an object"), "{}", err.0);
    }

    #[test]
    fn objects_flatten_and_marks_round_trip() {
        let o = json!({"id": "512", "properties": {"email": "a@x", "lastmodifieddate": "2024-01-01T00:00:00.500Z"}, "updatedAt": "2020-01-01T00:00:00Z"});
        let r = flatten(&o).unwrap();
        assert_eq!(r["id"], "512");
        assert_eq!(r["email"], "a@x");
        assert_eq!(modified_ms(&o), Some(1_704_067_200_500));
        assert!(flatten(&json!({"properties": {}})).is_none());
        let m = Mark::parse("2024-01-01T00:00:00.5Z|1,2").unwrap();
        assert_eq!(m.token(), "2024-01-01T00:00:00.500Z|1,2");
        assert!(m.covers(1_704_067_200_500, "1"));
        assert!(!m.covers(1_704_067_200_500, "3"));
        assert!(m.covers(0, "9"));
        assert_eq!(Mark::parse("1704067200000").unwrap().at, 1_704_067_200_000);
        assert!(Mark::parse("yesterday").is_err());
        let next = Mark::advance(Some(m), 1_704_067_200_500, "3");
        assert_eq!(next.seen, ["1", "2", "3"]);
    }
}
