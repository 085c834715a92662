//! `connector.json`: the manifest that describes a REST API to the `http`
//! connector. The types below are the schema: serde refuses unknown keys and
//! wrong types, and [`load`] reports either with the JSON path of the mistake
//! (`connector.json: actions.get.path: invalid type: ...`). [`FIELDS`] is the
//! documentation `ferry connectors http` prints, kept beside the types it
//! describes. Reading and validating a manifest is in
//! [`super::validate`].

use std::collections::BTreeMap;

use anyhow::Result;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::http::policy::{RateLimitOverride, RetryOverride};

pub use super::validate::{is_placeholder_name, load, parse};

/// Records one bulk request may carry.
pub const BATCH_SIZE_RANGE: (u64, u64) = (1, 10_000);
/// Records one page may ask for.
pub const PAGE_SIZE_RANGE: (u64, u64) = (1, 100_000);
/// A cap on pages: at least one page is read.
pub const MAX_PAGES_RANGE: (u64, u64) = (1, 1_000_000_000);
/// The first page's number: 0 or 1 in practice; a bound keeps page + 1 in range.
pub const FIRST_PAGE_RANGE: (u64, u64) = (0, 1_000_000_000);

/// The whole manifest.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Manifest {
    pub name: Option<String>,
    pub description: Option<String>,
    pub base_url: Option<String>,
    #[serde(default, deserialize_with = "tagged")]
    pub auth: Auth,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default = "default_id_field")]
    pub id_field: String,
    pub rate_limit: Option<RateLimitOverride>,
    #[serde(default)]
    pub groups: Vec<GroupSpec>,
    pub retry: Option<RetryOverride>,
    pub reset_header: Option<String>,
    /// The field `ferry export` looks profiles up by; default `idField`.
    pub export_key: Option<String>,
    pub actions: Actions,
}

fn default_id_field() -> String {
    "id".into()
}

/// How requests authenticate. `{name}` placeholders read account options.
/// Written `{"type": "bearer", ...}`; see [`tagged`].
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum Auth {
    None {},
    Bearer {
        #[serde(default = "default_token")]
        token: String,
    },
    Basic {
        #[serde(default = "default_username")]
        username: String,
        #[serde(default = "default_password")]
        password: String,
    },
    #[serde(rename_all = "camelCase")]
    ApiKey {
        #[serde(rename = "in")]
        location: KeyLocation,
        name: String,
        #[serde(default = "default_api_key")]
        value: String,
    },
    #[serde(rename = "oauth2", rename_all = "camelCase")]
    OAuth2 {
        token_url: String,
        #[serde(default = "default_client_id")]
        client_id: String,
        #[serde(default = "default_client_secret")]
        client_secret: String,
        scope: Option<String>,
    },
}

impl Default for Auth {
    fn default() -> Self {
        Auth::None {}
    }
}

impl Auth {
    /// What to check after a 401 or 403, naming how `manifest` (as the
    /// user wrote its path) authenticates and the account keys it uses.
    pub fn hint(&self, manifest: &str, account: &str) -> String {
        let keys = |templates: &[&str]| {
            let names: Vec<String> = templates
                .iter()
                .flat_map(|t| placeholders(t))
                .map(|n| format!("\"{n}\""))
                .collect();
            if names.is_empty() {
                format!("the credentials written in {manifest}")
            } else {
                let vars = if names.len() == 1 {
                    "the .env variable it names"
                } else {
                    "the .env variables they name"
                };
                format!("{} in {account} (and {vars})", names.join(" and "))
            }
        };
        match self {
            Auth::None {} => format!(
                "{manifest} sends no credentials (\"auth\": {{\"type\": \"none\"}}); if the API wants some, describe them under \"auth\" in {manifest}: bearer, basic, apiKey or oauth2"
            ),
            Auth::Bearer { token } => format!(
                "{manifest} sends a bearer token (Authorization: Bearer); check {}",
                keys(&[token])
            ),
            Auth::Basic { username, password } => format!(
                "{manifest} sends HTTP Basic credentials; check {}",
                keys(&[username, password])
            ),
            Auth::ApiKey {
                location,
                name,
                value,
            } => format!(
                "{manifest} sends an API key in the {name} {}; check {}",
                match location {
                    KeyLocation::Header => "header",
                    KeyLocation::Query => "query parameter",
                },
                keys(&[value])
            ),
            Auth::OAuth2 {
                token_url,
                client_id,
                client_secret,
                ..
            } => format!(
                "{manifest} gets an OAuth2 token from {token_url} (client credentials); check {}, and the scopes the client is granted",
                keys(&[client_id, client_secret])
            ),
        }
    }
}

/// The `{name}` placeholders of a template, in order.
fn placeholders(template: &str) -> Vec<&str> {
    let mut names = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        let Some(len) = rest[start + 1..].find('}') else {
            break;
        };
        names.push(&rest[start + 1..start + 1 + len]);
        rest = &rest[start + 2 + len..];
    }
    names
}

/// The marker between an inner path and its message, for [`parse`].
pub(super) const AT: char = '\u{1}';

/// Read a `{"type": "kind", ...fields}` object as the externally tagged
/// `{"kind": {...fields}}`, so the JSON path of a mistake inside it is kept
/// (serde's internally tagged enums lose it).
fn tagged<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    use serde::de::Error;
    let v = Value::deserialize(d)?;
    let Value::Object(mut fields) = v else {
        return Err(D::Error::custom(format!(
            "invalid type: {}, expected an object with a \"type\"",
            crate::config::input::kind_of(&v)
        )));
    };
    let kind = match fields.remove("type") {
        Some(Value::String(t)) => t,
        Some(other) => {
            return Err(D::Error::custom(format!(
                "{AT}type{AT}invalid type: {}, expected a string",
                crate::config::input::kind_of(&other)
            )))
        }
        None => return Err(D::Error::custom("missing field `type`")),
    };
    let mut wrapped = serde_json::Map::new();
    wrapped.insert(kind, Value::Object(fields));
    serde_path_to_error::deserialize(Value::Object(wrapped)).map_err(|e| {
        let path = e.path().to_string();
        // The first segment is the kind itself; an error there is about `type`.
        let inner = match path.split_once('.') {
            Some((_, rest)) if !rest.is_empty() => rest.to_string(),
            _ => "type".to_string(),
        };
        D::Error::custom(format!("{AT}{inner}{AT}{}", e.inner()))
    })
}

fn tagged_opt<'de, D>(d: D) -> Result<Option<Pagination>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    tagged(d).map(Some)
}

fn default_token() -> String {
    "{token}".into()
}
fn default_username() -> String {
    "{username}".into()
}
fn default_password() -> String {
    "{password}".into()
}
fn default_api_key() -> String {
    "{apiKey}".into()
}
fn default_client_id() -> String {
    "{clientId}".into()
}
fn default_client_secret() -> String {
    "{clientSecret}".into()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyLocation {
    Header,
    Query,
}

/// An endpoint group with its own rate limit.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GroupSpec {
    pub name: String,
    pub path: String,
    #[serde(default)]
    pub methods: Vec<String>,
    pub rps: f64,
    pub burst: Option<u32>,
    pub max_in_flight: Option<usize>,
}

/// The actions the API supports; a missing one answers "cannot".
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Actions {
    pub check: Option<ActionSpec>,
    pub get: Option<ActionSpec>,
    pub insert: Option<ActionSpec>,
    pub patch: Option<ActionSpec>,
    pub delete: Option<ActionSpec>,
    pub list: Option<ActionSpec>,
    pub getupdates: Option<ActionSpec>,
    pub bulk: Option<ActionSpec>,
    /// Export: the records whose export key is `{key}`.
    pub find: Option<ActionSpec>,
    /// Export: the groups named `{name}`.
    #[serde(rename = "findGroup")]
    pub find_group: Option<ActionSpec>,
    /// Export: create the group `{name}`.
    #[serde(rename = "createGroup")]
    pub create_group: Option<ActionSpec>,
    /// Export: add the records `{ids}` to the group `{group}`.
    #[serde(rename = "addMembers")]
    pub add_members: Option<ActionSpec>,
    /// Export: remove the records `{ids}` from the group `{group}`.
    #[serde(rename = "removeMembers")]
    pub remove_members: Option<ActionSpec>,
}

impl Actions {
    /// Every action with its name as the manifest spells it.
    pub fn named(&self) -> [(&'static str, &Option<ActionSpec>); 13] {
        [
            ("check", &self.check),
            ("get", &self.get),
            ("insert", &self.insert),
            ("patch", &self.patch),
            ("delete", &self.delete),
            ("list", &self.list),
            ("getupdates", &self.getupdates),
            ("bulk", &self.bulk),
            ("find", &self.find),
            ("findGroup", &self.find_group),
            ("createGroup", &self.create_group),
            ("addMembers", &self.add_members),
            ("removeMembers", &self.remove_members),
        ]
    }
}

/// One action: the request to send and where the answer is.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ActionSpec {
    pub method: Option<String>,
    pub path: String,
    #[serde(default)]
    pub query: BTreeMap<String, String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    pub body: Option<Value>,
    pub records: Option<String>,
    pub id: Option<String>,
    #[serde(default, deserialize_with = "tagged_opt")]
    pub pagination: Option<Pagination>,
    pub since: Option<Since>,
    pub deleted: Option<String>,
    /// bulk: a JSON pointer to the per-record results, in the batch's order.
    pub results: Option<String>,
    /// bulk: a JSON pointer inside a result; a value there rejects the record.
    pub error: Option<String>,
    /// bulk: the most records one request may carry.
    pub batch_size: Option<usize>,
}

/// How `getupdates` asks for changes after a token and finds the next one.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Since {
    pub param: String,
    pub initial: Option<String>,
    pub item_token: Option<String>,
    pub next_token: Option<String>,
}

/// How a listing is paged. Written `{"type": "cursor", ...}`; see [`tagged`].
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum Pagination {
    #[serde(rename_all = "camelCase")]
    Offset {
        #[serde(default = "default_offset_param")]
        offset_param: String,
        #[serde(default = "default_limit_param")]
        limit_param: String,
        #[serde(default = "default_page_size")]
        page_size: u64,
        #[serde(default)]
        stop: Stop,
    },
    #[serde(rename_all = "camelCase")]
    Page {
        #[serde(default = "default_page_param")]
        page_param: String,
        size_param: Option<String>,
        #[serde(default = "default_first_page")]
        first_page: u64,
        #[serde(default = "default_page_size")]
        page_size: u64,
        #[serde(default)]
        stop: Stop,
    },
    #[serde(rename_all = "camelCase")]
    Cursor {
        #[serde(default = "default_cursor_param")]
        cursor_param: String,
        limit_param: Option<String>,
        #[serde(default = "default_page_size")]
        page_size: u64,
        cursor_path: Option<String>,
        cursor_header: Option<String>,
        initial: Option<String>,
        #[serde(default)]
        stop: Stop,
    },
    #[serde(rename_all = "camelCase")]
    NextUrl {
        next_path: Option<String>,
        #[serde(default)]
        link_header: bool,
        limit_param: Option<String>,
        #[serde(default = "default_page_size")]
        page_size: u64,
        #[serde(default)]
        stop: Stop,
    },
}

fn default_offset_param() -> String {
    "offset".into()
}
fn default_limit_param() -> String {
    "limit".into()
}
fn default_page_param() -> String {
    "page".into()
}
fn default_cursor_param() -> String {
    "cursor".into()
}
fn default_first_page() -> u64 {
    1
}
fn default_page_size() -> u64 {
    100
}

/// The end-of-data signals a listing gives.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Stop {
    #[serde(default)]
    pub empty_page: bool,
    pub has_more: Option<String>,
    pub total: Option<String>,
    pub max_pages: Option<u64>,
}

impl Manifest {
    /// The actions the manifest describes, with their names.
    pub fn actions_iter(&self) -> impl Iterator<Item = (&'static str, &ActionSpec)> {
        self.actions
            .named()
            .into_iter()
            .filter_map(|(n, a)| a.as_ref().map(|a| (n, a)))
    }
}

impl Pagination {
    pub fn stop(&self) -> &Stop {
        match self {
            Pagination::Offset { stop, .. }
            | Pagination::Page { stop, .. }
            | Pagination::Cursor { stop, .. }
            | Pagination::NextUrl { stop, .. } => stop,
        }
    }

    pub fn page_size(&self) -> u64 {
        match self {
            Pagination::Offset { page_size, .. }
            | Pagination::Page { page_size, .. }
            | Pagination::Cursor { page_size, .. }
            | Pagination::NextUrl { page_size, .. } => *page_size,
        }
    }
}

/// Every manifest field, documented: `ferry connectors http` prints this.
pub const FIELDS: &[(&str, &str, &str)] = &[
    ("name", "string", "A name for the API, used in messages."),
    ("description", "string", "What the API is."),
    ("baseUrl", "string", "The address every action's path is appended to; account.json's baseUrl overrides it."),
    ("auth", "object", "How requests authenticate; {\"type\": \"none\"} by default. Values may hold {option} placeholders, read from account.json."),
    ("auth.type", "string", "none | bearer | basic | apiKey | oauth2."),
    ("auth.token", "string", "bearer: the token; default \"{token}\" (the account's token option)."),
    ("auth.username", "string", "basic: the user; default \"{username}\"."),
    ("auth.password", "string", "basic: the password; default \"{password}\"."),
    ("auth.in", "string", "apiKey: header | query."),
    ("auth.name", "string", "apiKey: the header or query parameter name, e.g. X-Api-Key."),
    ("auth.value", "string", "apiKey: the key; default \"{apiKey}\"."),
    ("auth.tokenUrl", "string", "oauth2: the token endpoint; a client-credentials token is fetched once per run and cached."),
    ("auth.clientId", "string", "oauth2: default \"{clientId}\"."),
    ("auth.clientSecret", "string", "oauth2: default \"{clientSecret}\"."),
    ("auth.scope", "string", "oauth2: the scope to ask for, if any."),
    ("headers", "object", "Headers sent with every request (string values without line breaks, {option} placeholders allowed)."),
    ("idField", "string", "The record field that holds its id; default \"id\"."),
    ("rateLimit", "object", "The default rate limit: {\"rps\", \"burst\", \"maxInFlight\"}; default 10 rps, burst 10, 8 in flight. account.json's rateLimit overrides it."),
    ("groups", "array", "Endpoint groups with their own rate limit; a request matching none gets rateLimit."),
    ("groups[].name", "string", "The group's name, as account.json's rateLimit.GROUP refers to it; each group's own."),
    ("groups[].path", "string", "A path pattern: * matches within a segment, ** across segments (\"/customers/bulk\", \"/v1/**\")."),
    ("groups[].methods", "array", "Methods it covers (GET, POST, PUT, PATCH, DELETE, HEAD); all when empty."),
    ("groups[].rps", "number", "Requests per second, 0.001 to 1000000."),
    ("groups[].burst", "integer", "Requests that may start at once, 1 to 100000; default 1."),
    ("groups[].maxInFlight", "integer", "Requests in flight at once, 1 to 10000; default 8."),
    ("retry", "object", "{\"maxAttempts\", \"maxWaitSecs\", \"baseDelayMs\"}: the retry policy's defaults for this API; account.json's retry overrides it."),
    ("resetHeader", "string", "A header that tells when a 429's limit resets (seconds, or a Unix time), read when there is no Retry-After."),
    ("exportKey", "string", "export: the field profiles are looked up by (an email); default idField. When it is not idField, export needs actions.find."),
    ("actions", "object", "The actions: check, get, insert, patch, delete, list, getupdates, bulk, and for export find, findGroup, createGroup, addMembers, removeMembers. Each is optional; a missing one answers \"cannot\"."),
    ("actions.check", "object", "Tests the credentials: any 2xx answer is success. Without it, check asks list for one record."),
    ("actions.get", "object", "Reads the record {id}."),
    ("actions.insert", "object", "Creates a record; the body is the record unless body says otherwise."),
    ("actions.patch", "object", "Changes fields of the record {id}. Upserts patch first and insert when the patch answers 404."),
    ("actions.delete", "object", "Deletes the record {id}."),
    ("actions.list", "object", "Reads the records page by page (the source side of import)."),
    ("actions.getupdates", "object", "Reads the changes since a sync token, page by page, to the end (or --limit)."),
    ("actions.bulk", "object", "Upserts a batch in one request (the destination side of import); without it, batches are written record by record. Its body template's string \"{records}\" stands for the batch."),
    ("actions.find", "object", "export: finds the record whose exportKey is {key}; records points at the matches (an array or one object), id inside a match (default \"/ID_FIELD\"); none, or a 404, is not found. A create finds first and patches what it finds, so a re-sent create never duplicates."),
    ("actions.findGroup", "object", "export: finds the group named {name}; records points at the matches, id inside a match (default \"/id\"). Found groups are not created again."),
    ("actions.createGroup", "object", "export: creates the group {name}; id points at its id in the response (default \"/id\")."),
    ("actions.addMembers", "object", "export: adds records to the group {group} (its id); the body template's string \"{ids}\" stands for the record ids. results, error and batchSize as for bulk; without results a 2xx answer adds them all and a 4xx rejects them all."),
    ("actions.removeMembers", "object", "export: removes records from the group {group}, like addMembers."),
    ("actions.*.results", "string", "bulk: a JSON pointer to the array of per-record results, in the order the records were sent (required for bulk)."),
    ("actions.*.error", "string", "bulk: a JSON pointer inside each result; a non-null value there rejects that record with it as the reason. Default \"/error\"."),
    ("actions.*.batchSize", "integer", "bulk: the most records one request may carry, 1 to 10000; default 100."),
    ("actions.*.method", "string", "GET, POST, PUT, PATCH, DELETE or HEAD; defaults: get/list/getupdates/check/find/findGroup GET, insert, bulk, createGroup and addMembers POST, patch PATCH, delete and removeMembers DELETE."),
    ("actions.*.path", "string", "A path appended to the base URL, with {id} (the record's id) and {option} placeholders; each value is encoded as one path segment, and a value of . or .. is refused."),
    ("actions.*.query", "object", "Query parameters (string values, placeholders allowed)."),
    ("actions.*.headers", "object", "Headers for this action only."),
    ("actions.*.body", "any", "The JSON body; the string \"{record}\" stands for the record. Default for insert and patch: the record itself."),
    ("actions.*.records", "string", "A JSON pointer to the records in the response: an array for list and getupdates, an object for get, insert and patch. Default \"\" (the whole body)."),
    ("actions.*.id", "string", "insert: a JSON pointer to the new record's id in the response; default \"/ID_FIELD\" of the record."),
    ("actions.*.pagination", "object", "list and getupdates: how to page. A repeated cursor, URL or page is an error, and so is an empty page without an end signal."),
    ("actions.*.pagination.type", "string", "offset | page | cursor | nextUrl."),
    ("actions.*.pagination.offsetParam", "string", "offset: the offset parameter; default \"offset\"."),
    ("actions.*.pagination.limitParam", "string", "offset (default \"limit\"), cursor, nextUrl: the page size parameter."),
    ("actions.*.pagination.pageParam", "string", "page: the page number parameter; default \"page\"."),
    ("actions.*.pagination.sizeParam", "string", "page: the page size parameter, if any."),
    ("actions.*.pagination.firstPage", "integer", "page: the number of the first page, 0 to 1000000000; default 1."),
    ("actions.*.pagination.pageSize", "integer", "Records asked for per page, 1 to 100000; default 100."),
    ("actions.*.pagination.cursorParam", "string", "cursor: the parameter that carries the cursor; default \"cursor\"."),
    ("actions.*.pagination.cursorPath", "string", "cursor: a JSON pointer to the next cursor in the body; null, missing or empty ends the listing."),
    ("actions.*.pagination.cursorHeader", "string", "cursor: a response header holding the next cursor instead."),
    ("actions.*.pagination.initial", "string", "cursor: the cursor value sent with the first request (some APIs want an empty one)."),
    ("actions.*.pagination.nextPath", "string", "nextUrl: a JSON pointer to the next page's URL in the body."),
    ("actions.*.pagination.linkHeader", "boolean", "nextUrl: follow the Link header's rel=\"next\"."),
    ("actions.*.pagination.stop", "object", "End-of-data signals besides a missing cursor or URL; offset and page need at least one."),
    ("actions.*.pagination.stop.emptyPage", "boolean", "An empty page ends the listing."),
    ("actions.*.pagination.stop.hasMore", "string", "A JSON pointer to a boolean that is false on the last page."),
    ("actions.*.pagination.stop.total", "string", "A JSON pointer to the total number of records."),
    ("actions.*.pagination.stop.maxPages", "integer", "Stop after this many pages, at least 1 (a cap, not an error)."),
    ("actions.getupdates.since", "object", "How getupdates asks for changes after a sync token."),
    ("actions.getupdates.since.param", "string", "The query parameter that carries the token (lastSync)."),
    ("actions.getupdates.since.initial", "string", "The token sent when there is no lastSync (an initial sync); none by default."),
    ("actions.getupdates.since.itemToken", "string", "A JSON pointer, inside each record, to its own token; lets --limit stop mid-page with an exact nextSync."),
    ("actions.getupdates.since.nextToken", "string", "A JSON pointer to the token that follows the last page."),
    ("actions.getupdates.deleted", "string", "A JSON pointer inside each record; true marks a deletion."),
];

/// [`FIELDS`] as JSON.
pub fn docs() -> Value {
    Value::Array(
        FIELDS
            .iter()
            .map(|(field, kind, doc)| json!({"field": field, "type": kind, "description": doc}))
            .collect(),
    )
}
