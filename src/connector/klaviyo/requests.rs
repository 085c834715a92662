//! Pure request building for the Klaviyo API (docs/connectors/klaviyo.md):
//! every request the connector sends is made here without I/O, so
//! `--dry-run` and unit tests need no server. Also the shaping of a flat
//! ferry record into a JSON:API profile body and back, the way a profile
//! identifier given on the command line is read, and the getupdates mark.

use anyhow::Result;
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use serde_json::{json, Map, Value};

use crate::connector::Record;
use crate::error::usage;
use crate::http::{segment, RequestSpec};

/// The API revision ferry is written against (the newest the vendor's
/// OpenAPI files declare); `revision` in account.json overrides it.
pub const REVISION: &str = "2026-07-15";
/// JSON:API's media type, for `Accept` and `Content-Type`.
pub const MEDIA_TYPE: &str = "application/vnd.api+json";
/// The largest page `GET /api/profiles` serves (`page[size]` 1–100).
pub const MAX_PAGE: usize = 100;
/// The most profiles one bulk import job takes.
pub const MAX_BULK: usize = 10_000;
/// The largest bulk import request body (5 MB).
pub const MAX_BULK_BYTES: usize = 5_000_000;
/// The largest profile inside a bulk import (100 KB).
pub const MAX_PROFILE_BYTES: usize = 100_000;
/// The most profiles one list membership call adds or removes.
pub const MAX_MEMBERS: usize = 1_000;

/// Profile attributes Klaviyo documents as writable; anything else a record
/// carries (besides [`READ_ONLY`]) is a custom property.
pub const ATTRIBUTES: &[&str] = &[
    "email",
    "phone_number",
    "external_id",
    "first_name",
    "last_name",
    "organization",
    "locale",
    "title",
    "image",
    "location",
];

/// What Klaviyo computes; a profile read from Klaviyo carries these and
/// they are left out of what is written back.
pub const READ_ONLY: &[&str] = &[
    "id",
    "type",
    "created",
    "updated",
    "last_event_date",
    "subscriptions",
    "predictive_analytics",
    "links",
    "relationships",
];

/// The identifiers a profile can be looked up by (`idField`).
pub const KEYS: &[&str] = &["email", "phone_number", "external_id"];

/// Where requests go and what every request carries.
#[derive(Debug, Clone)]
pub struct Api {
    pub base_url: String,
    pub api_key: String,
    pub revision: String,
}

impl Api {
    fn url(&self, path_and_query: &str) -> String {
        format!("{}{path_and_query}", self.base_url.trim_end_matches('/'))
    }

    fn request(&self, method: &str, path_and_query: &str) -> RequestSpec {
        RequestSpec::new(method, self.url(path_and_query))
            .header("Authorization", format!("Klaviyo-API-Key {}", self.api_key))
            .header("revision", &self.revision)
            .header("Accept", MEDIA_TYPE)
    }

    fn with_body(&self, method: &str, path: &str, body: Value) -> RequestSpec {
        self.request(method, path)
            .header("Content-Type", MEDIA_TYPE)
            .json(body)
    }

    /// `GET /api/profiles/{id}`.
    pub fn get_profile(&self, id: &str) -> RequestSpec {
        self.request("GET", &format!("/api/profiles/{}", segment(id)))
    }

    /// `GET /api/profiles?...` with `query` in order.
    pub fn list_profiles(&self, query: &[(&str, String)]) -> RequestSpec {
        self.request("GET", &format!("/api/profiles?{}", encode(query)))
    }

    /// The profile whose `field` equals `value`: a filtered listing of one.
    pub fn find_profile(&self, field: &str, value: &str) -> Result<RequestSpec> {
        Ok(self.list_profiles(&[
            ("filter", format!("equals({field},{})", quote(value)?)),
            ("page[size]", "1".into()),
        ]))
    }

    /// The next page: `links.next` as Klaviyo answered it, sent to
    /// `baseUrl` (so a test server or proxy keeps answering).
    pub fn follow(&self, path_and_query: &str) -> RequestSpec {
        self.request("GET", path_and_query)
    }

    /// `POST /api/profiles` (201; 409 when a profile has these identifiers).
    pub fn create_profile(&self, body: Value) -> RequestSpec {
        self.with_body("POST", "/api/profiles", body)
    }

    /// `POST /api/profile-import`: create, or update the profile with these identifiers.
    pub fn upsert_profile(&self, body: Value) -> RequestSpec {
        self.with_body("POST", "/api/profile-import", body)
    }

    /// `PATCH /api/profiles/{id}`.
    pub fn update_profile(&self, id: &str, body: Value) -> RequestSpec {
        self.with_body("PATCH", &format!("/api/profiles/{}", segment(id)), body)
    }

    /// `POST /api/data-privacy-deletion-jobs` for exactly one identifier.
    pub fn delete_profile(&self, who: &Ident) -> RequestSpec {
        let profile = match who {
            Ident::Id(id) => json!({"type": "profile", "id": id, "attributes": {}}),
            Ident::Key { field, value } => {
                json!({"type": "profile", "attributes": { field.as_str(): value }})
            }
        };
        self.with_body(
            "POST",
            "/api/data-privacy-deletion-jobs",
            json!({"data": {"type": "data-privacy-deletion-job",
                "attributes": {"profile": {"data": profile}}}}),
        )
    }

    /// `POST /api/profile-bulk-import-jobs` with profile bodies' `data` objects.
    pub fn bulk_import(&self, profiles: Vec<Value>) -> RequestSpec {
        self.with_body(
            "POST",
            "/api/profile-bulk-import-jobs",
            json!({"data": {"type": "profile-bulk-import-job",
                "attributes": {"profiles": {"data": profiles}}}}),
        )
    }

    /// `GET /api/profile-bulk-import-jobs/{id}`: the job's status and counts.
    pub fn bulk_job(&self, id: &str) -> RequestSpec {
        self.request(
            "GET",
            &format!("/api/profile-bulk-import-jobs/{}", segment(id)),
        )
    }

    /// `GET /api/profile-bulk-import-jobs/{id}/import-errors`, 100 a page.
    pub fn bulk_errors(&self, id: &str) -> RequestSpec {
        self.request(
            "GET",
            &format!(
                "/api/profile-bulk-import-jobs/{}/import-errors?{}",
                segment(id),
                encode(&[("page[size]", MAX_PAGE.to_string())])
            ),
        )
    }

    /// `GET /api/lists?filter=equals(name,"...")`.
    pub fn find_list(&self, name: &str) -> Result<RequestSpec> {
        let q = encode(&[("filter", format!("equals(name,{})", quote(name)?))]);
        Ok(self.request("GET", &format!("/api/lists?{q}")))
    }

    /// `POST /api/lists` (201).
    pub fn create_list(&self, name: &str) -> RequestSpec {
        self.with_body(
            "POST",
            "/api/lists",
            json!({"data": {"type": "list", "attributes": {"name": name}}}),
        )
    }

    /// `POST` (add) or `DELETE` (remove) `/api/lists/{id}/relationships/profiles`
    /// for at most [`MAX_MEMBERS`] profile ids. `list` is the path segment
    /// as it is to be written (already escaped, or a preview placeholder).
    pub fn members(&self, method: &str, list: &str, ids: &[String]) -> RequestSpec {
        let data: Vec<Value> = ids
            .iter()
            .map(|id| json!({"type": "profile", "id": id}))
            .collect();
        self.with_body(
            method,
            &format!("/api/lists/{}/relationships/profiles", segment(list)),
            json!({ "data": data }),
        )
    }
}

fn encode(query: &[(&str, String)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())))
        .finish()
}

/// A string literal of Klaviyo's filter syntax: double quotes, or single
/// quotes when the value holds a double quote. How to escape a value that
/// holds both is not documented, so such a value is refused.
pub fn quote(value: &str) -> Result<String> {
    if !value.contains('"') {
        Ok(format!("\"{value}\""))
    } else if !value.contains('\'') {
        Ok(format!("'{value}'"))
    } else {
        Err(usage(format!(
            "{value} holds both kinds of quotes, which Klaviyo's filter syntax cannot express"
        ))
        .into())
    }
}

/// How a profile is named on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ident {
    /// Klaviyo's own profile id.
    Id(String),
    /// An identifier the profile is looked up by.
    Key { field: String, value: String },
}

impl Ident {
    /// `email:V`, `phone_number:V`, `external_id:V` or `id:V` name the kind
    /// explicitly; otherwise a value with `@` is an email, a value starting
    /// with `+` is a phone number, and anything else is a Klaviyo profile id.
    pub fn parse(text: &str) -> Result<Ident> {
        let text = text.trim();
        let empty = || {
            usage("an empty profile identifier")
                .hint("pass a Klaviyo profile id, an email, a +phone number, or external_id:VALUE")
        };
        if text.is_empty() {
            return Err(empty().into());
        }
        if let Some((kind, value)) = text.split_once(':') {
            if kind == "id" || KEYS.contains(&kind) {
                if value.is_empty() {
                    return Err(empty().into());
                }
                return Ok(match kind {
                    "id" => Ident::Id(value.to_string()),
                    field => Ident::Key {
                        field: field.to_string(),
                        value: value.to_string(),
                    },
                });
            }
        }
        let field = if text.contains('@') {
            "email"
        } else if text.starts_with('+') {
            "phone_number"
        } else {
            return Ok(Ident::Id(text.to_string()));
        };
        Ok(Ident::Key {
            field: field.into(),
            value: text.to_string(),
        })
    }

    /// How previews name the profile id this identifier resolves to.
    pub fn placeholder(&self) -> String {
        match self {
            Ident::Id(id) => id.clone(),
            Ident::Key { field, value } => format!("{{id of {field} {value}}}"),
        }
    }
}

/// Why a record cannot be written as a Klaviyo profile.
#[derive(Debug, Clone, PartialEq)]
pub struct Unfit(pub String);

/// A record split the way a JSON:API profile body holds it: attributes
/// (custom properties under `properties`) and custom properties to remove.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Shaped {
    pub attributes: Map<String, Value>,
    pub unset: Vec<String>,
}

/// Shape `record` into profile attributes. Known attributes go as they are
/// (a null clears one when `patch` is set, and is left out otherwise: not
/// sending a field leaves it unchanged, which Klaviyo documents); the
/// `properties` object and every other field become custom properties, and
/// a null custom property is removed with `meta.patch_properties.unset` on a
/// patch. Fields Klaviyo computes are dropped.
pub fn shape(record: &Record, patch: bool) -> std::result::Result<Shaped, Unfit> {
    let mut out = Shaped::default();
    let mut props = Map::new();
    let mut custom = |key: &str, value: &Value, out: &mut Shaped| {
        if value.is_null() {
            if patch {
                out.unset.push(key.to_string());
            }
        } else {
            props.insert(key.to_string(), value.clone());
        }
    };
    for (key, value) in record {
        let key = key.as_str();
        if READ_ONLY.contains(&key) {
            continue;
        }
        if key == "properties" {
            match value {
                Value::Object(m) => {
                    for (k, v) in m {
                        custom(k, v, &mut out);
                    }
                }
                // On a patch, Klaviyo would take a null `properties` as
                // "clear the field" (documented for every nullable
                // attribute), wiping every custom property: refuse rather
                // than drop it silently or guess.
                Value::Null if patch => {
                    return Err(Unfit(
                        "properties: null would remove every custom property; set each one to null to unset it".into(),
                    ))
                }
                Value::Null => {}
                _ => return Err(Unfit("properties must be an object".into())),
            }
            continue;
        }
        if ATTRIBUTES.contains(&key) {
            if key == "location" && !(value.is_object() || value.is_null()) {
                return Err(Unfit("location must be an object".into()));
            }
            if !value.is_null() || patch {
                out.attributes.insert(key.to_string(), value.clone());
            }
            continue;
        }
        custom(key, value, &mut out);
    }
    if !props.is_empty() {
        out.attributes
            .insert("properties".into(), Value::Object(props));
    }
    Ok(out)
}

/// The JSON:API `data` object of a profile write.
pub fn profile_data(id: Option<&str>, shaped: &Shaped) -> Value {
    let mut data = Map::new();
    data.insert("type".into(), json!("profile"));
    if let Some(id) = id {
        data.insert("id".into(), json!(id));
    }
    data.insert(
        "attributes".into(),
        Value::Object(shaped.attributes.clone()),
    );
    if !shaped.unset.is_empty() {
        data.insert(
            "meta".into(),
            json!({"patch_properties": {"unset": shaped.unset}}),
        );
    }
    Value::Object(data)
}

/// `{"data": ...}` around [`profile_data`].
pub fn profile_body(id: Option<&str>, shaped: &Shaped) -> Value {
    json!({ "data": profile_data(id, shaped) })
}

/// A JSON:API profile resource as a flat ferry record: `id` and its attributes.
pub fn flatten(resource: &Value) -> Option<Record> {
    let id = resource.get("id").and_then(Value::as_str)?;
    let mut record = Map::new();
    record.insert("id".into(), json!(id));
    if let Some(Value::Object(attrs)) = resource.get("attributes") {
        for (k, v) in attrs {
            record.insert(k.clone(), v.clone());
        }
    }
    Some(record)
}

/// Where a getupdates run stands ([`crate::connector::mark`]): the next
/// request asks for profiles updated after one millisecond earlier than the
/// mark and skips the ids read at its time (Klaviyo's `greater-than` is
/// strict).
pub type Mark = crate::connector::mark::Mark<DateTime<Utc>>;

/// Klaviyo's spelling of a [`Mark`]: TIME is an ISO 8601 date-time.
pub trait MarkToken: Sized {
    /// `TIME` or `TIME|id,id` (the form of nextSync).
    fn parse(token: &str) -> Result<Self>;
    fn token(&self) -> String;
    /// The filter of the first request after this mark.
    fn filter(&self) -> String;
}

impl MarkToken for Mark {
    fn parse(token: &str) -> Result<Mark> {
        Mark::read_token(
            token,
            parse_time,
            "a Klaviyo sync token",
            "an ISO 8601 date-time",
        )
    }

    fn token(&self) -> String {
        // Klaviyo writes `updated` with up to microseconds
        // (`YYYY-MM-DDTHH:MM:SS.mmmmmm`): a token cut to milliseconds would
        // no longer equal the time of the ids it lists, and those profiles
        // would be read again.
        let precision = if self.at.timestamp_subsec_nanos().is_multiple_of(1_000_000) {
            SecondsFormat::Millis
        } else {
            SecondsFormat::AutoSi
        };
        self.write(self.at.to_rfc3339_opts(precision, true))
    }

    fn filter(&self) -> String {
        let after =
            (self.at - TimeDelta::milliseconds(1)).to_rfc3339_opts(SecondsFormat::Millis, true);
        // Klaviyo's filter syntax takes datetimes without quotes.
        format!("greater-than(updated,{after})")
    }
}

pub use crate::connector::mark::parse_time;

/// `links.next` as a path and query to send to `baseUrl`, with `page[size]`
/// set to `size` when given. `Ok(None)` when there is no next page; an
/// error (the link) when there is one ferry cannot read, which must not
/// pass for the end of the data.
pub fn next_link(body: &Value, size: Option<usize>) -> std::result::Result<Option<String>, String> {
    match body.pointer("/links/next") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => link_path(s, size).map(Some).ok_or_else(|| s.clone()),
        Some(other) => Err(other.to_string()),
    }
}

/// A link (absolute, or a path) as path and query, `page[size]` set to `size`.
pub fn link_path(link: &str, size: Option<usize>) -> Option<String> {
    let url = url::Url::parse(link)
        .or_else(|_| url::Url::parse("http://base/").and_then(|b| b.join(link)))
        .ok()?;
    let mut pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if let Some(size) = size {
        match pairs.iter_mut().find(|(k, _)| k == "page[size]") {
            Some(p) => p.1 = size.to_string(),
            None => pairs.push(("page[size]".into(), size.to_string())),
        }
    }
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .finish();
    Some(if query.is_empty() {
        url.path().to_string()
    } else {
        format!("{}?{query}", url.path())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connector::http::build::has_header;

    fn api() -> Api {
        Api {
            base_url: "https://a.klaviyo.com/".into(),
            api_key: "pk_test".into(),
            revision: REVISION.into(),
        }
    }

    fn rec(v: Value) -> Record {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn requests_carry_the_key_the_revision_and_json_api_media_types() {
        let r = api().get_profile("01GDDKASAP8TKDDA2GRZDSVP4H");
        assert_eq!(
            r.url,
            "https://a.klaviyo.com/api/profiles/01GDDKASAP8TKDDA2GRZDSVP4H"
        );
        assert!(has_header(&r, "Authorization", "Klaviyo-API-Key pk_test"));
        assert!(has_header(&r, "revision", REVISION));
        assert!(has_header(&r, "Accept", MEDIA_TYPE));
        let f = api().find_profile("email", "ada@example.com").unwrap();
        assert_eq!(
            f.url,
            "https://a.klaviyo.com/api/profiles?filter=equals%28email%2C%22ada%40example.com%22%29&page%5Bsize%5D=1"
        );
        let c = api().create_list("VIP");
        assert!(has_header(&c, "Content-Type", MEDIA_TYPE));
    }

    #[test]
    fn records_are_shaped_into_attributes_and_custom_properties() {
        let r = rec(json!({"id": "01X", "email": "a@x.io", "first_name": null,
            "plan": "pro", "properties": {"tier": 2, "old": null}, "created": "2024-01-01"}));
        let s = shape(&r, false).unwrap();
        assert_eq!(
            Value::Object(s.attributes.clone()),
            json!({"email": "a@x.io", "properties": {"plan": "pro", "tier": 2}})
        );
        assert!(s.unset.is_empty());
        let p = shape(&r, true).unwrap();
        assert_eq!(p.attributes["first_name"], Value::Null);
        assert_eq!(p.unset, ["old"]);
        assert_eq!(
            profile_body(Some("01X"), &p)["data"]["meta"],
            json!({"patch_properties": {"unset": ["old"]}})
        );
        assert!(shape(&rec(json!({"location": "NYC"})), false).is_err());
        // A null `properties` is nothing to write on a create, but a patch
        // would have to clear them all: refused, not dropped.
        assert!(shape(&rec(json!({"properties": null})), false).is_ok());
        assert!(shape(&rec(json!({"properties": null})), true).is_err());
    }

    #[test]
    fn identifiers_are_ids_emails_phones_or_named() {
        assert_eq!(Ident::parse("01GD").unwrap(), Ident::Id("01GD".into()));
        assert_eq!(
            Ident::parse("ada@example.com").unwrap(),
            Ident::Key {
                field: "email".into(),
                value: "ada@example.com".into()
            }
        );
        assert_eq!(
            Ident::parse("+15005550006").unwrap(),
            Ident::Key {
                field: "phone_number".into(),
                value: "+15005550006".into()
            }
        );
        assert_eq!(
            Ident::parse("external_id:a:b").unwrap(),
            Ident::Key {
                field: "external_id".into(),
                value: "a:b".into()
            }
        );
        assert_eq!(Ident::parse("id:01GD").unwrap(), Ident::Id("01GD".into()));
        assert!(Ident::parse(" ").is_err());
    }

    #[test]
    fn marks_round_trip_and_filter_from_a_millisecond_earlier() {
        let m = Mark::parse("2024-01-01T00:00:00Z|a,b").unwrap();
        assert_eq!(m.token(), "2024-01-01T00:00:00.000Z|a,b");
        assert_eq!(m.filter(), "greater-than(updated,2023-12-31T23:59:59.999Z)");
        assert!(m.covers(m.at, "a"));
        assert!(!m.covers(m.at, "c"));
        assert!(Mark::parse("yesterday").is_err());
        // Microseconds survive the token, so the ids read at that instant
        // are still recognised by the next run.
        let at = parse_time("2024-02-01T10:00:00.000400+00:00").unwrap();
        let m = Mark::advance(None, at, "PB");
        assert_eq!(m.token(), "2024-02-01T10:00:00.000400Z|PB");
        let again = Mark::parse(&m.token()).unwrap();
        assert!(again.covers(at, "PB"));
        assert_eq!(
            again.filter(),
            "greater-than(updated,2024-02-01T09:59:59.999Z)"
        );
    }

    #[test]
    fn next_links_keep_the_cursor_and_take_the_page_size() {
        let body = json!({"links": {"next": "https://a.klaviyo.com/api/profiles?page%5Bcursor%5D=bmV4dDo6aWQ6OjE&page%5Bsize%5D=100"}});
        assert_eq!(
            next_link(&body, Some(2)).unwrap().unwrap(),
            "/api/profiles?page%5Bcursor%5D=bmV4dDo6aWQ6OjE&page%5Bsize%5D=2"
        );
        assert_eq!(next_link(&json!({"links": {"next": null}}), None), Ok(None));
        assert!(next_link(&json!({"links": {"next": 7}}), None).is_err());
        assert!(quote("a\"b'c").is_err());
        assert_eq!(quote("say \"hi\"").unwrap(), "'say \"hi\"'");
    }
}
