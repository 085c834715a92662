//! Pure request building for Zendesk's Support API v2 (users, user tags,
//! bulk jobs, job statuses, the incremental user export): every request the
//! connector sends is made here without I/O, so `--dry-run` and unit tests
//! need no server. Also the shaping of a record into a user body
//! (docs/connectors/zendesk.md §2, §4, §10), the tag a group becomes, and the
//! getupdates position.

use anyhow::Result;
use serde_json::{json, Map, Value};

use crate::connector::Record;
use crate::http::{segment, RequestSpec};

/// Users per page of the cursor-paged list: "Returns a maximum of 100
/// records per page" [USERS, PAG].
pub const MAX_PAGE: usize = 100;
/// Users per page of the incremental export ("up to a maximum of 1,000",
/// also the default) [INC].
pub const MAX_EXPORT_PAGE: usize = 1000;
/// Users a `create_or_update_many` call takes: "an array of up to 100 user
/// objects" [USERS].
pub const BATCH: usize = 100;

/// Top-level fields of a user write [USERS, JSON format]; any other field
/// of a record is a custom user field, sent under `user_fields`.
pub const STANDARD: &[&str] = &[
    "name",
    "email",
    "external_id",
    "alias",
    "phone",
    "details",
    "notes",
    "organization_id",
    "locale",
    "locale_id",
    "time_zone",
    "role",
    "custom_role_id",
    "default_group_id",
    "moderator",
    "only_private_comments",
    "shared_phone_number",
    "signature",
    "suspended",
    "ticket_restriction",
    "verified",
    "tags",
    "identities",
    "skip_verify_email",
    "remote_photo_url",
    "photo",
];

/// Fields of a user as Zendesk answers it that it computes: never written
/// back, never sent as custom fields. Zendesk's OpenAPI description marks
/// them `readOnly` (but `result_type`, which search answers add).
pub const READ_ONLY: &[&str] = &[
    "id",
    "url",
    "active",
    "created_at",
    "updated_at",
    "last_login_at",
    "shared",
    "shared_agent",
    "two_factor_auth_enabled",
    "role_type",
    "iana_time_zone",
    "report_csv",
    "chat_only",
    "restricted_agent",
    "result_type",
];

/// Standard fields an update takes and a create does not: Zendesk's
/// description names `photo` (an attachment, as a user is answered) in
/// Update User's input only; a new user's picture comes from
/// `remote_photo_url`. Left out of creates and upserts.
pub const UPDATE_ONLY: &[&str] = &["photo"];

/// The keys a user can be matched by: `external_id` ("A unique identifier
/// from another system"; "External id has to be unique for each user under
/// the same account") or `email` [USERS].
pub const KEYS: &[&str] = &["external_id", "email"];

/// Why a record cannot be written as a user.
#[derive(Debug, PartialEq)]
pub struct Unfit(pub String);

/// The user body for `record`: standard fields at the top, every other
/// field (and the record's own `user_fields` object) under `user_fields`.
/// Read-only fields are left out; `null` is kept (it clears, §10).
pub fn user_body(record: &Record) -> Result<Value, Unfit> {
    let mut body = Map::new();
    let mut fields = Map::new();
    for (k, v) in record {
        if k == "user_fields" {
            match v {
                Value::Object(custom) => fields.extend(custom.clone()),
                Value::Null => {}
                _ => {
                    return Err(Unfit(
                        "user_fields must be an object of custom field keys".to_string(),
                    ))
                }
            }
        } else if STANDARD.contains(&k.as_str()) {
            body.insert(k.clone(), v.clone());
        } else if !READ_ONLY.contains(&k.as_str()) {
            fields.insert(k.clone(), v.clone());
        }
    }
    if !fields.is_empty() {
        body.insert("user_fields".into(), Value::Object(fields));
    }
    Ok(Value::Object(body))
}

/// The user body of a create (insert): [`user_body`] without the fields
/// only an update takes ([`UPDATE_ONLY`]).
pub fn create_body(record: &Record) -> Result<Value, Unfit> {
    let mut body = user_body(record)?;
    if let Some(m) = body.as_object_mut() {
        m.retain(|k, _| !UPDATE_ONLY.contains(&k.as_str()));
    }
    Ok(body)
}

/// The user body of an upsert (import, export's creates): it must hold
/// `key` (`create_or_update_many` matches users by it), as a string.
pub fn upsert_body(record: &Record, key: &str) -> Result<(String, Value), Unfit> {
    let value = match record.get(key) {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        Some(Value::Number(n)) if key == "external_id" => n.to_string(),
        Some(Value::Null) | None => return Err(Unfit(format!("missing {key}"))),
        Some(other) => return Err(Unfit(format!("{key} must be a string, got {other}"))),
    };
    let mut body = create_body(record)?;
    if let Some(m) = body.as_object_mut() {
        // Numbers are fine as an external id, but Zendesk's is a string.
        m.insert(key.to_string(), Value::String(value.clone()));
    }
    Ok((value, body))
}

/// The body of an export update: the fields set, and each cleared one as
/// `null` — a standard field at the top, a custom field under
/// `user_fields` (Grouparoo's model; observed to empty both, §10).
pub fn update_with_clears(set: &Record, clear: &[String]) -> Result<Value, Unfit> {
    let mut body = user_body(set)?;
    let Some(m) = body.as_object_mut() else {
        return Ok(body);
    };
    for name in clear {
        if READ_ONLY.contains(&name.as_str()) {
            continue;
        }
        if STANDARD.contains(&name.as_str()) {
            m.entry(name.clone()).or_insert(Value::Null);
        } else if name == "user_fields" {
            // Every custom field the profile had is cleared by name, below.
            continue;
        } else {
            let fields = m
                .entry("user_fields")
                .or_insert_with(|| Value::Object(Map::new()));
            if let Some(fields) = fields.as_object_mut() {
                fields.entry(name.clone()).or_insert(Value::Null);
            }
        }
    }
    Ok(body)
}

/// The tag a group becomes: lowercased, each run of whitespace one `_`
/// (Zendesk splits tags at spaces, so "Gold Plan" would become two tags).
pub fn tag_of(group: &str) -> String {
    group
        .split_whitespace()
        .collect::<Vec<_>>()
        .join("_")
        .to_lowercase()
}

/// How `--id` names a user: Zendesk's numeric id, `external_id:VALUE`, or
/// an email (`email:ADDRESS`, or any value holding `@`).
#[derive(Debug, Clone, PartialEq)]
pub enum Ident {
    Id(String),
    ExternalId(String),
    Email(String),
}

impl Ident {
    pub fn parse(id: &str) -> Ident {
        if let Some(ext) = id.strip_prefix("external_id:") {
            Ident::ExternalId(ext.to_string())
        } else if let Some(email) = id.strip_prefix("email:") {
            Ident::Email(email.to_string())
        } else if id.contains('@') {
            Ident::Email(id.to_string())
        } else {
            Ident::Id(id.to_string())
        }
    }

    /// Which key this is, and its value: `None` for an id.
    pub fn key(&self) -> Option<(&'static str, &str)> {
        match self {
            Ident::Id(_) => None,
            Ident::ExternalId(v) => Some(("external_id", v)),
            Ident::Email(v) => Some(("email", v)),
        }
    }

    /// What a preview shows for the id a key lookup would answer.
    pub fn placeholder(&self) -> String {
        match self {
            Ident::Id(id) => id.clone(),
            Ident::ExternalId(v) => format!("{{id of external_id {v}}}"),
            Ident::Email(v) => format!("{{id of email {v}}}"),
        }
    }
}

/// Requests for one Zendesk account.
pub struct Api {
    pub base_url: String,
    pub username: String,
    pub token: String,
}

/// Without the token: a `{:?}` anywhere must not print the secret.
impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("base_url", &self.base_url)
            .field("username", &self.username)
            .field("token", &"***")
            .finish()
    }
}

fn query(pairs: &[(&str, &str)]) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        q.append_pair(k, v);
    }
    q.finish()
}

impl Api {
    /// API-token auth: Basic with `{email}/token:{api_token}` [AUTH, USERS].
    pub fn authorization(&self) -> String {
        format!(
            "Basic {}",
            crate::connector::http::build::basic_credentials(
                &format!("{}/token", self.username),
                &self.token
            )
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

    fn user(id: &str) -> String {
        format!("/users/{}", segment(id))
    }

    /// `GET /users/me`: the authenticated user (the credential check).
    pub fn me(&self) -> RequestSpec {
        self.request("GET", "/users/me")
    }

    /// `GET /users/{id}`.
    pub fn get(&self, id: &str) -> RequestSpec {
        self.request("GET", &Self::user(id))
    }

    /// `GET /users/search?external_id=…` ("It only accepts ids"), or
    /// `?query=ADDRESS` for an email, whose answers ferry filters to the
    /// exact address (Zendesk's search syntax is not an exact match).
    pub fn search(&self, key: &str, value: &str) -> RequestSpec {
        let q = match key {
            "external_id" => query(&[("external_id", value)]),
            _ => query(&[("query", value)]),
        };
        self.request("GET", &format!("/users/search?{q}"))
    }

    /// `POST /users`: create one user.
    pub fn create(&self, user: Value) -> RequestSpec {
        self.with_body("POST", "/users", json!({ "user": user }))
    }

    /// `POST /users/create_or_update`: create the user, or update the one
    /// with the same email or external id.
    pub fn create_or_update(&self, user: Value) -> RequestSpec {
        self.with_body("POST", "/users/create_or_update", json!({ "user": user }))
    }

    /// `PUT /users/{id}`.
    pub fn update(&self, id: &str, user: Value) -> RequestSpec {
        self.with_body("PUT", &Self::user(id), json!({ "user": user }))
    }

    /// `DELETE /users/{id}`: a soft delete (the user stays, `active: false`).
    pub fn delete(&self, id: &str) -> RequestSpec {
        self.request("DELETE", &Self::user(id))
    }

    /// `DELETE /deleted_users/{id}`: the permanent deletion of a user
    /// deleted before (GDPR); not recoverable.
    pub fn purge(&self, id: &str) -> RequestSpec {
        self.request("DELETE", &format!("/deleted_users/{}", segment(id)))
    }

    /// `POST /users/create_or_update_many`: up to 100 users, a job.
    pub fn create_or_update_many(&self, users: Vec<Value>) -> RequestSpec {
        self.with_body(
            "POST",
            "/users/create_or_update_many",
            json!({ "users": users }),
        )
    }

    /// `GET /job_statuses/{id}`.
    pub fn job_status(&self, id: &str) -> RequestSpec {
        self.request("GET", &format!("/job_statuses/{}", segment(id)))
    }

    /// `PUT /users/{id}/tags`: add these tags to the user's.
    pub fn add_tags(&self, id: &str, tags: &[&str]) -> RequestSpec {
        self.with_body(
            "PUT",
            &format!("{}/tags", Self::user(id)),
            json!({ "tags": tags }),
        )
    }

    /// `DELETE /users/{id}/tags`: remove these tags from the user's.
    pub fn remove_tags(&self, id: &str, tags: &[&str]) -> RequestSpec {
        self.with_body(
            "DELETE",
            &format!("{}/tags", Self::user(id)),
            json!({ "tags": tags }),
        )
    }

    /// `GET /user_fields?page[size]=100` (cursor pagination), after
    /// `after`: the account's custom user fields (`ferry fields`).
    pub fn user_fields(&self, after: Option<&str>) -> RequestSpec {
        let size = MAX_PAGE.to_string();
        let mut pairs = vec![("page[size]", size.as_str())];
        if let Some(a) = after {
            pairs.push(("page[after]", a));
        }
        self.request("GET", &format!("/user_fields?{}", query(&pairs)))
    }

    /// `GET /users?page[size]=N` (cursor pagination), after `after`.
    pub fn list(&self, size: usize, after: Option<&str>) -> RequestSpec {
        let size = size.clamp(1, MAX_PAGE).to_string();
        let mut pairs = vec![("page[size]", size.as_str())];
        if let Some(a) = after {
            pairs.push(("page[after]", a));
        }
        self.request("GET", &format!("/users?{}", query(&pairs)))
    }

    /// `GET /incremental/users/cursor`: from `start_time` (Unix seconds)
    /// on the first request, by `cursor` after.
    pub fn incremental(&self, from: &Start) -> RequestSpec {
        let per_page = MAX_EXPORT_PAGE.to_string();
        let q = match from {
            Start::Time(t) => query(&[("start_time", &t.to_string()), ("per_page", &per_page)]),
            Start::Cursor(c) => query(&[("cursor", c), ("per_page", &per_page)]),
        };
        self.request("GET", &format!("/incremental/users/cursor?{q}"))
    }
}

/// Where an incremental export request starts.
#[derive(Debug, Clone, PartialEq)]
pub enum Start {
    /// `start_time`, Unix seconds.
    Time(i64),
    /// An `after_cursor` of an earlier answer.
    Cursor(String),
}

/// A getupdates position: where the incremental export goes on, and the ids
/// already read from the page it answers there (a `--limit` that stopped
/// inside a page). Spelled `cursor:C`, `cursor:C|id,id`, or a start time:
/// Unix seconds or an ISO 8601 date-time (`|ids` allowed after either).
#[derive(Debug, Clone, PartialEq)]
pub struct Position {
    pub from: Start,
    pub seen: Vec<String>,
}

impl Position {
    pub fn parse(token: &str) -> Result<Position> {
        let (at, ids) = token.split_once('|').unwrap_or((token, ""));
        let seen = ids
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        let at = at.trim();
        let from = if let Some(c) = at.strip_prefix("cursor:").filter(|c| !c.is_empty()) {
            Start::Cursor(c.to_string())
        } else if let Ok(secs) = at.parse::<i64>() {
            Start::Time(secs.max(0))
        } else if let Some(t) = crate::connector::mark::parse_time(at) {
            Start::Time(t.timestamp().max(0))
        } else {
            return Err(crate::error::usage(format!(
                "\"{token}\" is not a Zendesk sync token: expected cursor:CURSOR, Unix seconds or an ISO 8601 date-time, optionally followed by |ids"
            ))
            .hint("pass a date-time such as 2026-01-01T00:00:00Z, or a nextSync printed by ferry")
            .into());
        };
        Ok(Position { from, seen })
    }

    pub fn token(&self) -> String {
        let at = match &self.from {
            Start::Time(t) => t.to_string(),
            Start::Cursor(c) => format!("cursor:{c}"),
        };
        if self.seen.is_empty() {
            at
        } else {
            format!("{at}|{}", self.seen.join(","))
        }
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
    fn a_record_becomes_a_user_body() {
        let r = record(
            json!({"name": "Ada", "email": "a@x.com", "plan": "pro", "id": 7,
            "created_at": "x", "user_fields": {"tier": 2}, "alias": null}),
        );
        assert_eq!(
            user_body(&r).unwrap(),
            json!({"name": "Ada", "email": "a@x.com", "alias": null,
                "user_fields": {"plan": "pro", "tier": 2}})
        );
        assert!(user_body(&record(json!({"user_fields": 3}))).is_err());
        let (key, body) = upsert_body(
            &record(json!({"external_id": 42, "name": "A"})),
            "external_id",
        )
        .unwrap();
        assert_eq!(
            (key.as_str(), body),
            ("42", json!({"external_id": "42", "name": "A"}))
        );
        assert_eq!(
            upsert_body(&record(json!({"name": "A"})), "email"),
            Err(Unfit("missing email".into()))
        );
    }

    /// A user as Zendesk answers it, written back: `restricted_agent` is
    /// read-only and `photo` is not taken by a create (Zendesk's OpenAPI
    /// description), while an update may send `photo`.
    #[test]
    fn read_only_and_update_only_fields_stay_out_of_creates() {
        let r = record(
            json!({"name": "A", "external_id": "a", "restricted_agent": true,
            "photo": {"id": 928374}, "role_type": 0}),
        );
        assert_eq!(
            user_body(&r).unwrap(),
            json!({"name": "A", "external_id": "a", "photo": {"id": 928374}})
        );
        assert_eq!(
            create_body(&r).unwrap(),
            json!({"name": "A", "external_id": "a"})
        );
        assert_eq!(
            upsert_body(&r, "external_id").unwrap().1,
            json!({"name": "A", "external_id": "a"})
        );
    }

    #[test]
    fn clears_are_nulls_at_the_top_or_under_user_fields() {
        let set = record(json!({"name": "Ada L."}));
        let clear = ["alias".to_string(), "plan".to_string(), "id".to_string()];
        assert_eq!(
            update_with_clears(&set, &clear).unwrap(),
            json!({"name": "Ada L.", "alias": null, "user_fields": {"plan": null}})
        );
    }

    #[test]
    fn groups_become_tags_without_spaces() {
        assert_eq!(tag_of("Gold  Plan"), "gold_plan");
        assert_eq!(tag_of("vip"), "vip");
    }

    #[test]
    fn ids_keys_and_emails_are_told_apart() {
        assert_eq!(Ident::parse("35436"), Ident::Id("35436".into()));
        assert_eq!(
            Ident::parse("external_id:u-1"),
            Ident::ExternalId("u-1".into())
        );
        assert_eq!(Ident::parse("a@x.com"), Ident::Email("a@x.com".into()));
        assert_eq!(
            Ident::parse("email:a@x.com"),
            Ident::Email("a@x.com".into())
        );
    }

    #[test]
    fn the_basic_credentials_are_the_email_slash_token_and_the_token() {
        let api = Api {
            base_url: "https://acme.zendesk.com/api/v2".into(),
            username: "agent@acme.com".into(),
            token: "T0K".into(),
        };
        // base64("agent@acme.com/token:T0K")
        assert_eq!(
            api.authorization(),
            "Basic YWdlbnRAYWNtZS5jb20vdG9rZW46VDBL"
        );
        assert!(!format!("{api:?}").contains("T0K"));
        assert_eq!(
            api.list(500, Some("abc")).url,
            "https://acme.zendesk.com/api/v2/users?page%5Bsize%5D=100&page%5Bafter%5D=abc"
        );
    }

    #[test]
    fn positions_round_trip() {
        let p = Position::parse("cursor:MTU3|1,2").unwrap();
        assert_eq!(p.from, Start::Cursor("MTU3".into()));
        assert_eq!(p.token(), "cursor:MTU3|1,2");
        assert_eq!(
            Position::parse("1700000000").unwrap().from,
            Start::Time(1_700_000_000)
        );
        assert_eq!(
            Position::parse("2024-01-01T00:00:00Z").unwrap().token(),
            "1704067200"
        );
        assert!(Position::parse("yesterday").is_err());
    }
}
