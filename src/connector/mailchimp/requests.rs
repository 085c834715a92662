//! Pure request building for Mailchimp's Marketing API (audiences, members,
//! merge fields, tags): every request the connector sends is made here
//! without I/O, so `--dry-run` and unit tests need no server. Also the
//! subscriber hash, the shaping of a record into a member body
//! (docs/connectors/mailchimp.md §3, §5, §7) and the `getupdates` position.

use anyhow::Result;
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use md5::{Digest, Md5};
use serde_json::{json, Map, Value};

use crate::connector::mark::parse_time;
use crate::connector::Record;
use crate::http::{segment, RequestSpec};

/// The largest page of members (`count`, "Maximum value is 1000") and of
/// merge fields and audiences.
pub const MAX_PAGE: usize = 1000;
/// Members a batch subscribe takes: "Up to 500 members may be added or
/// updated with each API call."
pub const BATCH: usize = 500;

/// Top-level fields of a member write [SPEC `putListsIdMembersId`]; any
/// other field of a record is a merge field.
pub const STANDARD: &[&str] = &[
    "email_address",
    "email_type",
    "status",
    "status_if_new",
    "interests",
    "language",
    "vip",
    "location",
    "marketing_permissions",
    "ip_signup",
    "timestamp_signup",
    "ip_opt",
    "timestamp_opt",
];

/// Fields of a member as Mailchimp answers it that it computes: left out of
/// what is written back, never sent as merge fields.
pub const READ_ONLY: &[&str] = &[
    "id",
    "unique_email_id",
    "contact_id",
    "full_name",
    "web_id",
    "unsubscribe_reason",
    "consents_to_one_to_one_messaging",
    "sms_phone_number",
    "sms_subscription_status",
    "sms_subscription_last_updated",
    "stats",
    "member_rating",
    "last_changed",
    "email_client",
    "last_note",
    "source",
    "tags",
    "tags_count",
    "list_id",
    "_links",
];

/// The subscriber hash Mailchimp addresses a member by: "the MD5 hash of
/// the lowercase version of their email address" [SUBS].
pub fn subscriber_hash(email: &str) -> String {
    Md5::digest(email.to_lowercase().as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A member as `--id` names it: an email address is hashed; anything else
/// is taken as a subscriber hash (or a contact id, which the member
/// endpoints also accept).
pub fn member_ref(id: &str) -> String {
    if id.contains('@') {
        subscriber_hash(id)
    } else {
        id.to_string()
    }
}

/// Why a record cannot be written as a member.
#[derive(Debug, PartialEq)]
pub struct Unfit(pub String);

/// What a member body is for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode<'a> {
    /// `PUT …/members/{hash}` (add or update) and batch subscribe: the
    /// email is required, and a new member gets `status_if_new`.
    Upsert { status_if_new: &'a str },
    /// `PATCH …/members/{hash}`: only what the record holds.
    Update,
}

/// The member body for `record`: standard fields at the top, every other
/// field (and the record's own `merge_fields` object) under
/// `merge_fields`. Mailchimp takes no booleans in merge fields, so they
/// are sent as "true"/"false"; `null` is sent as "" (how a merge field is
/// emptied, §7).
pub fn member_body(record: &Record, mode: Mode<'_>) -> Result<Value, Unfit> {
    let mut body = Map::new();
    let mut merge = Map::new();
    for (k, v) in record {
        if k == "merge_fields" {
            let Value::Object(fields) = v else {
                return Err(Unfit(
                    "merge_fields must be an object of merge tags".to_string(),
                ));
            };
            for (tag, value) in fields {
                merge.insert(tag.clone(), merge_value(value));
            }
        } else if STANDARD.contains(&k.as_str()) {
            body.insert(k.clone(), v.clone());
        } else if !READ_ONLY.contains(&k.as_str()) {
            merge.insert(k.clone(), merge_value(v));
        }
    }
    if let Mode::Upsert { status_if_new } = mode {
        match body.get("email_address") {
            Some(Value::String(s)) if s.contains('@') => {}
            Some(other) if !other.is_null() => {
                return Err(Unfit(format!(
                    "email_address must be an email address, got {other}"
                )))
            }
            _ => return Err(Unfit("missing email_address".to_string())),
        }
        if !body.contains_key("status") && !body.contains_key("status_if_new") {
            body.insert("status_if_new".into(), json!(status_if_new));
        }
    }
    if !merge.is_empty() {
        body.insert("merge_fields".into(), Value::Object(merge));
    }
    Ok(Value::Object(body))
}

/// A value as a merge field takes it.
fn merge_value(v: &Value) -> Value {
    match v {
        Value::Null => json!(""),
        Value::Bool(b) => json!(b.to_string()),
        other => other.clone(),
    }
}

/// The body of an export update: the fields set, and each cleared one as
/// an empty merge field (standard fields cannot be emptied: they are
/// answered in the second list, left as they are).
pub fn update_with_clears(set: &Record, clear: &[String]) -> Result<(Value, Vec<String>), Unfit> {
    let mut body = member_body(set, Mode::Update)?;
    let mut not_cleared = Vec::new();
    let mut empties = Map::new();
    for name in clear {
        if STANDARD.contains(&name.as_str()) || READ_ONLY.contains(&name.as_str()) {
            not_cleared.push(name.clone());
        } else {
            empties.insert(name.clone(), json!(""));
        }
    }
    if !empties.is_empty() {
        if let Some(m) = body.as_object_mut() {
            let merge = m
                .entry("merge_fields")
                .or_insert_with(|| Value::Object(Map::new()));
            if let Some(merge) = merge.as_object_mut() {
                for (k, v) in empties {
                    merge.entry(k).or_insert(v);
                }
            }
        }
    }
    Ok((body, not_cleared))
}

/// The data center of an API key: the part after its last `-` ("…-us6").
pub fn data_center(api_key: &str) -> Option<&str> {
    let (_, dc) = api_key.rsplit_once('-')?;
    (!dc.is_empty() && dc.chars().all(|c| c.is_ascii_alphanumeric())).then_some(dc)
}

/// Requests for one audience.
pub struct Api {
    pub base_url: String,
    pub api_key: String,
    pub list_id: String,
}

/// Without the key: a `{:?}` anywhere must not print the secret.
impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("base_url", &self.base_url)
            .field("api_key", &"***")
            .field("list_id", &self.list_id)
            .finish()
    }
}

impl Api {
    /// The Basic credentials: any user name, the key as the password.
    pub fn authorization(&self) -> String {
        format!(
            "Basic {}",
            crate::connector::http::build::basic_credentials("ferry", &self.api_key)
        )
    }

    fn request(&self, method: &str, path_and_query: &str) -> RequestSpec {
        crate::connector::saas::request(method, &self.base_url, path_and_query)
            .header("Authorization", self.authorization())
            .header("Accept", "application/json")
    }

    fn with_body(&self, method: &str, path: &str, body: Value) -> RequestSpec {
        self.request(method, path)
            .header("Content-Type", "application/json")
            .json(body)
    }

    fn list(&self) -> String {
        format!("/lists/{}", segment(&self.list_id))
    }

    fn member(&self, hash: &str) -> String {
        format!("{}/members/{}", self.list(), segment(hash))
    }

    /// `GET /lists/{list_id}` (the credential check: the audience's name
    /// and member count).
    pub fn audience(&self) -> RequestSpec {
        self.request(
            "GET",
            &format!("{}?fields=id,name,stats.member_count", self.list()),
        )
    }

    /// `GET /lists/{list_id}/members/{subscriber_hash}`.
    pub fn get(&self, hash: &str) -> RequestSpec {
        self.request("GET", &self.member(hash))
    }

    /// `PUT /lists/{list_id}/members/{subscriber_hash}`: add or update.
    pub fn put(&self, hash: &str, body: Value) -> RequestSpec {
        self.with_body("PUT", &self.member(hash), body)
    }

    /// `PATCH /lists/{list_id}/members/{subscriber_hash}`.
    pub fn patch(&self, hash: &str, body: Value) -> RequestSpec {
        self.with_body("PATCH", &self.member(hash), body)
    }

    /// `DELETE /lists/{list_id}/members/{subscriber_hash}`: archive.
    pub fn archive(&self, hash: &str) -> RequestSpec {
        self.request("DELETE", &self.member(hash))
    }

    /// `POST …/members/{subscriber_hash}/actions/delete-permanent`.
    pub fn delete_permanent(&self, hash: &str) -> RequestSpec {
        self.request(
            "POST",
            &format!("{}/actions/delete-permanent", self.member(hash)),
        )
    }

    /// `GET /lists/{list_id}/members`, `count` from `offset`.
    pub fn members(&self, count: usize, offset: u64) -> RequestSpec {
        let query = format!("count={}&offset={offset}", count.min(MAX_PAGE));
        self.request("GET", &format!("{}/members?{query}", self.list()))
    }

    /// The members changed after `since` (every member without one), the
    /// oldest change first, `count` from `offset`.
    pub fn changes(&self, count: usize, offset: u64, since: Option<&str>) -> RequestSpec {
        let mut query = format!(
            "count={}&offset={offset}&sort_field=last_changed&sort_dir=ASC",
            count.min(MAX_PAGE)
        );
        if let Some(since) = since {
            query.push_str(&format!("&since_last_changed={}", segment(since)));
        }
        self.request("GET", &format!("{}/members?{query}", self.list()))
    }

    /// `GET /lists`: the account's audiences, `count` from `offset`.
    pub fn audiences(&self, offset: u64) -> RequestSpec {
        self.request(
            "GET",
            &format!(
                "/lists?count={MAX_PAGE}&offset={offset}&fields=lists.id,lists.name,total_items"
            ),
        )
    }

    /// `GET /lists/{list_id}/merge-fields`, `count` from `offset` (the
    /// default page is 10).
    pub fn merge_fields(&self, offset: u64) -> RequestSpec {
        self.request(
            "GET",
            &format!(
                "{}/merge-fields?count={MAX_PAGE}&offset={offset}",
                self.list()
            ),
        )
    }

    /// `POST /lists/{list_id}`: batch subscribe, existing members updated.
    pub fn batch(&self, members: Vec<Value>) -> RequestSpec {
        self.with_body(
            "POST",
            &self.list(),
            json!({"members": members, "update_existing": true}),
        )
    }

    /// `POST …/members/{subscriber_hash}/tags`: each tag `active` (added,
    /// created if new) or `inactive` (removed).
    pub fn tags(&self, hash: &str, tags: &[(&str, bool)]) -> RequestSpec {
        let tags: Vec<Value> = tags
            .iter()
            .map(|(name, on)| json!({"name": name, "status": if *on { "active" } else { "inactive" }}))
            .collect();
        self.with_body(
            "POST",
            &format!("{}/tags", self.member(hash)),
            json!({"tags": tags, "is_syncing": false}),
        )
    }
}

/// Where a getupdates run stands ([`crate::connector::mark`]): the next
/// request asks for members changed after one second before the mark
/// (whether `since_last_changed` is strict is not documented) and skips
/// the ids read at its time.
pub type Mark = crate::connector::mark::Mark<DateTime<Utc>>;

/// Mailchimp's spelling of a [`Mark`]: TIME is an ISO 8601 date-time.
pub trait MarkToken: Sized {
    /// `TIME` or `TIME|id,id` (the form of nextSync).
    fn parse(token: &str) -> Result<Self>;
    fn token(&self) -> String;
    /// The `since_last_changed` of the first request after this mark.
    fn since(&self) -> String;
}

impl MarkToken for Mark {
    fn parse(token: &str) -> Result<Mark> {
        Mark::read_token(
            token,
            parse_time,
            "a Mailchimp sync token",
            "an ISO 8601 date-time",
        )
    }

    fn token(&self) -> String {
        self.write(self.at.to_rfc3339_opts(SecondsFormat::Secs, true))
    }

    fn since(&self) -> String {
        (self.at - TimeDelta::seconds(1)).to_rfc3339_opts(SecondsFormat::Secs, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(v: Value) -> Record {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn the_subscriber_hash_is_the_md5_of_the_lowercased_email() {
        // Mailchimp's own example pair and a mixed-case address.
        assert_eq!(
            subscriber_hash("Urist.McVankab@freddiesjokes.com"),
            "62eeb292278cc15f5817cb78f7790b08"
        );
        assert_eq!(
            subscriber_hash("ADA@Example.com"),
            subscriber_hash("ada@example.com")
        );
        assert_eq!(
            member_ref("Ada@Example.com"),
            subscriber_hash("ada@example.com")
        );
        assert_eq!(
            member_ref("62eeb292278cc15f5817cb78f7790b08"),
            "62eeb292278cc15f5817cb78f7790b08"
        );
    }

    #[test]
    fn a_record_becomes_a_member_body() {
        let r = record(
            json!({"email_address": "a@x.com", "FNAME": "Ada", "VIP": true,
            "LTV": null, "id": "abc", "merge_fields": {"LNAME": "L"}, "language": "en"}),
        );
        let body = member_body(
            &r,
            Mode::Upsert {
                status_if_new: "subscribed",
            },
        )
        .unwrap();
        assert_eq!(
            body,
            json!({"email_address": "a@x.com", "language": "en", "status_if_new": "subscribed",
                "merge_fields": {"FNAME": "Ada", "VIP": "true", "LTV": "", "LNAME": "L"}})
        );
        let status = record(json!({"email_address": "a@x.com", "status": "pending"}));
        let body = member_body(
            &status,
            Mode::Upsert {
                status_if_new: "subscribed",
            },
        )
        .unwrap();
        assert_eq!(
            body,
            json!({"email_address": "a@x.com", "status": "pending"})
        );
        assert_eq!(
            member_body(
                &record(json!({"FNAME": "x"})),
                Mode::Upsert {
                    status_if_new: "subscribed"
                }
            ),
            Err(Unfit("missing email_address".into()))
        );
        assert_eq!(
            member_body(&record(json!({"FNAME": "x"})), Mode::Update).unwrap(),
            json!({"merge_fields": {"FNAME": "x"}})
        );
    }

    #[test]
    fn clears_are_empty_merge_fields() {
        let set = record(json!({"FNAME": "Ada"}));
        let (body, not) = update_with_clears(&set, &["LNAME".into(), "language".into()]).unwrap();
        assert_eq!(body, json!({"merge_fields": {"FNAME": "Ada", "LNAME": ""}}));
        assert_eq!(not, ["language"]);
    }

    #[test]
    fn the_data_center_is_the_keys_suffix() {
        assert_eq!(data_center("0123456789abcdef-us6"), Some("us6"));
        assert_eq!(data_center("0123456789abcdef"), None);
        assert_eq!(data_center("abc-"), None);
    }

    #[test]
    fn tokens_ask_from_a_second_before() {
        let m = Mark::parse("2024-03-01T10:00:00+00:00|h1").unwrap();
        assert_eq!(m.token(), "2024-03-01T10:00:00Z|h1");
        assert_eq!(m.since(), "2024-03-01T09:59:59Z");
        assert!(Mark::parse("yesterday").is_err());
    }
}
