//! Pure request building for Intercom's Contacts and Tags APIs: every request
//! the connector sends is made here without I/O, so `--dry-run` and unit
//! tests need no server. Also the shaping of a record into the contact body
//! Intercom documents (docs/connectors/intercom.md §2–§7), the search
//! queries, and the `getupdates` position.

use anyhow::Result;
use serde_json::{json, Map, Value};

use crate::connector::Record;
use crate::http::{segment, RequestSpec};

/// The API version ferry pins with `Intercom-Version` unless the account
/// says otherwise: 2.13 added `GET /contacts/find_by_external_id`, and 2.14
/// is published in every form the reference was read in.
pub const DEFAULT_VERSION: &str = "2.14";
/// The largest page the cursor listing and the search serve (`per_page`, max 150).
pub const MAX_PAGE: usize = 150;

/// Fields of the create and update bodies [CREATE21, UPD]; any other
/// field of a record is a custom attribute.
pub const STANDARD: &[&str] = &[
    "role",
    "external_id",
    "email",
    "phone",
    "name",
    "avatar",
    "signed_up_at",
    "last_seen_at",
    "owner_id",
    "unsubscribed_from_emails",
];

/// The standard fields the update model types "… or null" [UPD]: the only
/// ones a clear can send as null. `role`, `email` and `external_id` are
/// plain strings there, so a clear of them is not sent.
pub const NULLABLE: &[&str] = &[
    "phone",
    "name",
    "avatar",
    "signed_up_at",
    "last_seen_at",
    "owner_id",
    "unsubscribed_from_emails",
];

/// The standard fields holding Unix seconds.
const TIMESTAMPS: &[&str] = &["signed_up_at", "last_seen_at"];

/// Fields Intercom computes: a contact read from Intercom carries them, and
/// they are left out of what is written back (never sent as custom attributes).
pub const READ_ONLY: &[&str] = &[
    "id",
    "type",
    "workspace_id",
    "created_at",
    "updated_at",
    "formatted_phone",
    "email_domain",
    "last_replied_at",
    "last_contacted_at",
    "last_email_opened_at",
    "last_email_clicked_at",
    "language_override",
    "browser",
    "browser_version",
    "browser_language",
    "os",
    "location",
    "has_hard_bounced",
    "marked_email_as_spam",
    "tags",
    "notes",
    "companies",
    "social_profiles",
    "opted_out_subscription_types",
    "opted_in_subscription_types",
    "referrer",
    "sms_consent",
    "unsubscribed_from_sms",
    "enabled_push_messaging",
];

/// Prefixes of read-only device and campaign fields (`android_app_name`, `utm_source`).
const READ_ONLY_PREFIXES: &[&str] = &["android_", "ios_", "utm_"];

fn read_only(key: &str) -> bool {
    READ_ONLY.contains(&key) || READ_ONLY_PREFIXES.iter().any(|p| key.starts_with(p))
}

/// The fields of `record` a write leaves out because Intercom computes them.
pub fn read_only_fields(record: &Record) -> Vec<String> {
    record.keys().filter(|k| read_only(k)).cloned().collect()
}

/// Where requests go, the token every request carries and the pinned version.
#[derive(Clone)]
pub struct Api {
    pub base_url: String,
    pub token: String,
    pub version: String,
}

/// Without the token: a `{:?}` anywhere must not print the secret.
impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("base_url", &self.base_url)
            .field("token", &"***")
            .field("version", &self.version)
            .finish()
    }
}

impl Api {
    fn request(&self, method: &str, path_and_query: &str) -> RequestSpec {
        crate::connector::saas::request(method, &self.base_url, path_and_query)
            .header("Authorization", format!("Bearer {}", self.token))
            .header("Intercom-Version", &self.version)
            .header("Accept", "application/json")
    }

    fn with_body(&self, method: &str, path: &str, body: Value) -> RequestSpec {
        self.request(method, path)
            .header("Content-Type", "application/json")
            .json(body)
    }

    /// `GET /data_attributes?model=contact`: the contact attributes, standard
    /// and custom (`ferry fields`).
    pub fn contact_attributes(&self) -> RequestSpec {
        self.request("GET", "/data_attributes?model=contact")
    }

    /// `GET /me`: the admin behind the token and its workspace (the credential check).
    pub fn me(&self) -> RequestSpec {
        self.request("GET", "/me")
    }

    /// `GET /contacts/{id}`.
    pub fn get(&self, id: &str) -> RequestSpec {
        self.request("GET", &format!("/contacts/{}", segment(id)))
    }

    /// `GET /contacts/find_by_external_id/{external_id}` (2.13+, users only).
    pub fn find_by_external_id(&self, external_id: &str) -> RequestSpec {
        self.request(
            "GET",
            &format!("/contacts/find_by_external_id/{}", segment(external_id)),
        )
    }

    /// `POST /contacts`.
    pub fn create(&self, body: Value) -> RequestSpec {
        self.with_body("POST", "/contacts", body)
    }

    /// `PUT /contacts/{id}`: fields not sent are left unchanged.
    pub fn update(&self, id: &str, body: Value) -> RequestSpec {
        self.with_body("PUT", &format!("/contacts/{}", segment(id)), body)
    }

    /// `DELETE /contacts/{id}`.
    pub fn delete(&self, id: &str) -> RequestSpec {
        self.request("DELETE", &format!("/contacts/{}", segment(id)))
    }

    /// `GET /contacts?per_page=N[&starting_after=CURSOR]`.
    pub fn list(&self, per_page: usize, starting_after: Option<&str>) -> RequestSpec {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        q.append_pair("per_page", &per_page.clamp(1, MAX_PAGE).to_string());
        if let Some(c) = starting_after {
            q.append_pair("starting_after", c);
        }
        self.request("GET", &format!("/contacts?{}", q.finish()))
    }

    /// `POST /contacts/search`; the cursor goes in the body's `pagination`,
    /// not the query string (which the search ignores).
    pub fn search(
        &self,
        query: Value,
        per_page: usize,
        starting_after: Option<&str>,
        sort: Option<(&str, &str)>,
    ) -> RequestSpec {
        let mut pagination = json!({ "per_page": per_page.clamp(1, MAX_PAGE) });
        if let Some(c) = starting_after {
            pagination["starting_after"] = json!(c);
        }
        let mut body = json!({ "query": query, "pagination": pagination });
        if let Some((field, order)) = sort {
            body["sort"] = json!({ "field": field, "order": order });
        }
        self.with_body("POST", "/contacts/search", body)
    }

    /// `POST /tags` with a name: creates the tag, or answers the one with
    /// that name (names are case-insensitive), so no lookup comes first.
    pub fn create_tag(&self, name: &str) -> RequestSpec {
        self.with_body("POST", "/tags", json!({ "name": name }))
    }

    /// `POST /contacts/{contact_id}/tags` with the tag's id.
    pub fn tag(&self, contact: &str, tag_id: &str) -> RequestSpec {
        self.with_body(
            "POST",
            &format!("/contacts/{}/tags", segment(contact)),
            json!({ "id": tag_id }),
        )
    }

    /// `DELETE /contacts/{contact_id}/tags/{tag_id}`.
    pub fn untag(&self, contact: &str, tag_id: &str) -> RequestSpec {
        self.request(
            "DELETE",
            &format!("/contacts/{}/tags/{}", segment(contact), segment(tag_id)),
        )
    }
}

/// A search filter `field = value` for the contacts of `role`.
pub fn find_query(field: &str, value: &str, role: &str) -> Value {
    json!({ "operator": "AND", "value": [
        { "field": field, "operator": "=", "value": value },
        { "field": "role", "operator": "=", "value": role },
    ]})
}

/// Why a record cannot be written as an Intercom contact.
#[derive(Debug, Clone, PartialEq)]
pub struct Unfit(pub String);

/// How a body is built.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode<'a> {
    /// `POST /contacts`: nulls left out (a field not sent is empty), the
    /// account's role filled in when the record has none.
    Create { role: &'a str },
    /// `PUT /contacts/{id}`: a null is sent as given where the model allows it.
    Update,
}

/// The body of a create or an update: the standard fields at the top,
/// every other field (and the fields of a `custom_attributes` object) under
/// `custom_attributes`, read-only fields dropped, timestamps as Unix seconds.
pub fn contact_body(record: &Record, mode: Mode<'_>) -> std::result::Result<Value, Unfit> {
    let mut body = Map::new();
    let mut custom = Map::new();
    let keep_nulls = mode == Mode::Update;
    for (key, value) in record {
        let key = key.as_str();
        if read_only(key) {
            continue;
        }
        // A contact read from Intercom holds its avatar as
        // `{"type": "avatar", "image_url": …}`, while create and update take
        // the URL as a string [SPEC 2.14 `contact`, `create_contact_request`]:
        // a record read from Intercom is written back with the URL.
        let url;
        let value = match (key, value) {
            ("avatar", Value::Object(m)) => {
                url = m.get("image_url").cloned().unwrap_or(Value::Null);
                &url
            }
            _ => value,
        };
        if key == "custom_attributes" {
            match value {
                Value::Object(m) => {
                    for (k, v) in m {
                        if v.is_null() && !keep_nulls {
                            continue;
                        }
                        custom.insert(k.clone(), attribute(k, v)?);
                    }
                }
                Value::Null => {}
                _ => return Err(Unfit("custom_attributes must be an object".into())),
            }
            continue;
        }
        if value.is_null() && !keep_nulls {
            continue;
        }
        if !STANDARD.contains(&key) {
            custom.insert(key.to_string(), attribute(key, value)?);
            continue;
        }
        if value.is_null() && !NULLABLE.contains(&key) {
            return Err(Unfit(format!(
                "Intercom cannot set {key} to null (its update takes a string there)"
            )));
        }
        let value = match (key, value) {
            (k, v) if TIMESTAMPS.contains(&k) => unix_seconds(k, v)?,
            ("avatar", v) if !v.is_null() && !v.is_string() => {
                return Err(Unfit(
                    "avatar must be an image URL (or Intercom's {\"image_url\"} object)".into(),
                ))
            }
            ("role" | "external_id" | "email", v) if !v.is_string() => {
                return Err(Unfit(format!("{key} must be a string")))
            }
            ("owner_id", v) if !(v.is_null() || v.is_i64() || v.is_u64()) => {
                return Err(Unfit("owner_id must be an integer (an admin id)".into()))
            }
            ("unsubscribed_from_emails", v) if !v.is_null() && !v.is_boolean() => {
                return Err(Unfit(
                    "unsubscribed_from_emails must be true or false".into(),
                ))
            }
            (_, v) => v.clone(),
        };
        body.insert(key.to_string(), value);
    }
    if let Mode::Create { role } = mode {
        if !body.contains_key("role") {
            body.insert("role".into(), json!(role));
        }
    }
    if !custom.is_empty() {
        body.insert("custom_attributes".into(), Value::Object(custom));
    }
    Ok(Value::Object(body))
}

/// The body of an export update: `set` as an update body, then each field
/// of `clear` as null where Intercom's update model allows a null (a
/// nullable standard field, or a custom attribute). Clears of `role`,
/// `email` and `external_id` cannot be expressed and are answered apart.
pub fn update_with_clears(
    set: &Record,
    clear: &[String],
) -> std::result::Result<(Value, Vec<String>), Unfit> {
    let mut body = contact_body(set, Mode::Update)?;
    let mut not_cleared = Vec::new();
    for key in clear {
        let key = key.as_str();
        if read_only(key) {
            continue;
        }
        if NULLABLE.contains(&key) {
            body[key] = Value::Null;
        } else if STANDARD.contains(&key) {
            not_cleared.push(key.to_string());
        } else {
            if !body.get("custom_attributes").is_some_and(Value::is_object) {
                body["custom_attributes"] = json!({});
            }
            body["custom_attributes"][key] = Value::Null;
        }
    }
    Ok((body, not_cleared))
}

/// A custom attribute value: Intercom's data attributes are strings,
/// numbers, booleans or dates (Unix seconds); null clears on update.
fn attribute(key: &str, value: &Value) -> std::result::Result<Value, Unfit> {
    match value {
        Value::Object(_) | Value::Array(_) => Err(Unfit(format!(
            "custom attribute \"{key}\" must be a string, number or boolean (Intercom data attributes hold no objects or lists)"
        ))),
        v => Ok(v.clone()),
    }
}

/// A timestamp field: Unix seconds, as Intercom documents them.
fn unix_seconds(key: &str, value: &Value) -> std::result::Result<Value, Unfit> {
    match value {
        Value::Null => Ok(Value::Null),
        Value::Number(n) if n.is_i64() || n.is_u64() => Ok(value.clone()),
        _ => Err(Unfit(format!(
            "{key} must be a Unix time in seconds, as Intercom stores it"
        ))),
    }
}

/// The id in a 409 answer of `POST /contacts`: "A contact matching those
/// details already exists with id=…" [CREATE21]. An archived match
/// ("An archived contact matching …") answers `Err` with the message, since
/// writing to an archived contact is not what an upsert should do.
pub fn conflict_id(message: &str) -> Option<std::result::Result<String, String>> {
    let at = message.find("with id=")?;
    let id: String = message[at + "with id=".len()..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect();
    if id.is_empty() {
        return None;
    }
    if message.to_ascii_lowercase().contains("archived") {
        return Some(Err(message.to_string()));
    }
    Some(Ok(id))
}

/// Where `getupdates` stands ([`crate::connector::mark`]): the last
/// `updated_at` read, in Unix seconds, and the ids read at that second.
pub type Mark = crate::connector::mark::Mark<i64>;

/// Intercom's spelling of a [`Mark`]: TIME is Unix seconds.
pub trait MarkToken: Sized {
    /// `SECONDS` or `SECONDS|id,id` (what ferry prints as nextSync), or an
    /// RFC 3339 date-time or a date as `--last-sync`.
    fn parse(token: &str) -> Result<Self>;
    fn token(&self) -> String;
    /// The value of the `updated_at >` filter.
    fn search_after(&self) -> i64;
}

impl MarkToken for Mark {
    fn parse(token: &str) -> Result<Mark> {
        let seconds = |time: &str| {
            time.parse::<i64>()
                .ok()
                .or_else(|| crate::connector::mark::parse_time(time).map(|d| d.timestamp()))
        };
        Mark::read_token(
            token,
            seconds,
            "an Intercom position",
            "Unix seconds, an RFC 3339 date-time or a date",
        )
    }

    fn token(&self) -> String {
        self.write(self.at.to_string())
    }

    /// The search compares dates by day: `> T` means "from the day after T's
    /// day" [SEARCH], so ferry asks from the day before T's day and filters
    /// the rest itself.
    fn search_after(&self) -> i64 {
        // The day is the workspace's, not UTC's [SPEC 2.14 SearchContacts];
        // one day back covers every offset from UTC-12 to UTC+14. Saturating:
        // a `--last-sync` near i64::MIN must not overflow.
        let day = self.at.saturating_sub(self.at.rem_euclid(86_400));
        day.saturating_sub(86_400)
    }
}

/// The `updated_at` search for `getupdates`, oldest first.
pub fn updates_query(since: Option<&Mark>) -> Value {
    json!({ "field": "updated_at", "operator": ">", "value": since.map_or(0, Mark::search_after) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connector::http::build::has_header;

    fn api() -> Api {
        Api {
            base_url: "https://api.intercom.io/".into(),
            token: "tok".into(),
            version: "2.14".into(),
        }
    }

    fn rec(v: Value) -> Record {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn the_token_is_not_in_the_debug_form() {
        let shown = format!("{:?}", api());
        assert!(
            !shown.contains("\"tok\"") && shown.contains("***"),
            "{shown}"
        );
    }

    #[test]
    fn requests_carry_the_token_and_version_and_escape_ids() {
        let r = api().find_by_external_id("a/b c");
        assert_eq!(
            r.url,
            "https://api.intercom.io/contacts/find_by_external_id/a%2Fb%20c"
        );
        assert!(has_header(&r, "Authorization", "Bearer tok"));
        assert!(has_header(&r, "Intercom-Version", "2.14"));
        let l = api().list(500, Some("WzE3+/="));
        assert_eq!(
            l.url,
            "https://api.intercom.io/contacts?per_page=150&starting_after=WzE3%2B%2F%3D"
        );
        let s = api().search(
            json!({"field": "email"}),
            10,
            Some("c1"),
            Some(("updated_at", "ascending")),
        );
        assert_eq!(
            s.body,
            Some(crate::http::Body::Json(json!({
                "query": {"field": "email"},
                "pagination": {"per_page": 10, "starting_after": "c1"},
                "sort": {"field": "updated_at", "order": "ascending"}
            })))
        );
    }

    #[test]
    fn bodies_put_unknown_fields_under_custom_attributes() {
        let body = contact_body(
            &rec(
                json!({"id": "x", "email": "a@x", "plan": "pro", "phone": null,
                "custom_attributes": {"seats": 3}, "signed_up_at": 1571069751, "utm_source": "g"}),
            ),
            Mode::Create { role: "user" },
        )
        .unwrap();
        assert_eq!(
            body,
            json!({"email": "a@x", "signed_up_at": 1571069751, "role": "user",
                "custom_attributes": {"plan": "pro", "seats": 3}})
        );
        let err =
            contact_body(&rec(json!({"signed_up_at": "yesterday"})), Mode::Update).unwrap_err();
        assert!(err.0.contains("Unix time"), "{}", err.0);
        let err = contact_body(&rec(json!({"tiers": [1]})), Mode::Update).unwrap_err();
        assert!(err.0.contains("\"tiers\""), "{}", err.0);
        let err = contact_body(&rec(json!({"email": null})), Mode::Update).unwrap_err();
        assert!(err.0.contains("cannot set email to null"), "{}", err.0);
    }

    #[test]
    fn an_avatar_read_from_intercom_is_written_as_its_url() {
        let read = json!({"type": "avatar", "image_url": "https://example.org/a.jpg"});
        assert_eq!(
            contact_body(&rec(json!({"avatar": read})), Mode::Update).unwrap(),
            json!({"avatar": "https://example.org/a.jpg"})
        );
        let none = json!({"type": "avatar", "image_url": null});
        assert_eq!(
            contact_body(
                &rec(json!({"email": "a@x", "avatar": none})),
                Mode::Create { role: "lead" }
            )
            .unwrap(),
            json!({"email": "a@x", "role": "lead"})
        );
        assert!(contact_body(&rec(json!({"avatar": 3})), Mode::Update).is_err());
    }

    #[test]
    fn clears_are_nulls_where_the_model_allows_them() {
        let (body, not) = update_with_clears(
            &rec(json!({"name": "Ada"})),
            &[
                "phone".into(),
                "plan".into(),
                "external_id".into(),
                "id".into(),
            ],
        )
        .unwrap();
        assert_eq!(
            body,
            json!({"name": "Ada", "phone": null, "custom_attributes": {"plan": null}})
        );
        assert_eq!(not, ["external_id"]);
    }

    #[test]
    fn conflicts_name_the_existing_contact() {
        assert_eq!(
            conflict_id(
                "A contact matching those details already exists with id=5da6f18e3d7cf967e4582d05"
            ),
            Some(Ok("5da6f18e3d7cf967e4582d05".into()))
        );
        assert!(matches!(
            conflict_id(
                "An archived contact matching those details already exists with id=6762f0d"
            ),
            Some(Err(_))
        ));
        assert_eq!(conflict_id("Something else"), None);
    }

    #[test]
    fn marks_round_trip_and_search_from_the_day_before() {
        let m = Mark::parse("1577869200|a,b").unwrap();
        assert_eq!(m.token(), "1577869200|a,b");
        // 2020-01-01T09:00Z: the search asks for updated_at > 2019-12-31.
        assert_eq!(m.search_after(), 1_577_836_800 - 86_400);
        // Before 1970 and at the ends of i64: no overflow.
        assert_eq!(Mark::parse("-1").unwrap().search_after(), -2 * 86_400);
        assert_eq!(
            Mark {
                at: i64::MIN,
                seen: vec![]
            }
            .search_after(),
            i64::MIN
        );
        assert!(
            Mark {
                at: i64::MAX,
                seen: vec![]
            }
            .search_after()
                < i64::MAX
        );
        assert!(m.covers(1577869200, "a"));
        assert!(!m.covers(1577869200, "c"));
        assert!(m.covers(1577869199, "z"));
        assert_eq!(Mark::parse("2020-01-01T09:00:00Z").unwrap().at, 1577869200);
        assert_eq!(Mark::parse("2020-01-01").unwrap().at, 1577836800);
        assert!(Mark::parse("soon").is_err());
        let next = Mark::advance(Some(m), 1577869200, "c");
        assert_eq!(next.seen, ["a", "b", "c"]);
        assert_eq!(
            Mark::advance(Some(next), 1577869201, "d").token(),
            "1577869201|d"
        );
    }
}
