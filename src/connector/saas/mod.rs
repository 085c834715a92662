//! What the HTTP connectors share above the transport: the options every
//! one of them takes, the base URL, reading a listing's records
//! ([`records_in`]), paging and its loop guard ([`paging`]), and merging the
//! records a batch refused into one outcome per record ([`batch`]). A vendor
//! folder keeps only what is the vendor's: endpoints, bodies, error shapes.
//! [`crate::http`] below it is the transport (engine, policy, redaction,
//! cassette), and knows nothing of records.

pub mod batch;
pub mod paging;

use anyhow::Result;
use serde_json::{json, Value};

use crate::connector::{FieldType, OptionSpec, Options, Record};
use crate::http::RequestSpec;

/// The options every HTTP connector accepts besides its own.
pub fn engine_options() -> Vec<OptionSpec> {
    vec![
        OptionSpec::optional("baseUrl", "Base URL", "Send requests here instead of the API's own address (a test server, the sandbox)")
            .placeholder("http://127.0.0.1:8787"),
        OptionSpec::optional("rateLimit", "Rate limit", "Override the rate limits: {\"rps\": 5, \"burst\": 5, \"maxInFlight\": 4} for every endpoint group, or {\"GROUP\": {...}} for one (\"default\" is the group of requests that match none); rps 0.001 to 1000000, burst 1 to 100000, maxInFlight 1 to 10000")
            .kind(FieldType::Object),
        OptionSpec::optional("retry", "Retry", "Override the retry policy: {\"maxAttempts\": 5, \"maxWaitSecs\": 60, \"baseDelayMs\": 500}; maxAttempts 1 to 100, maxWaitSecs 0 to 86400, baseDelayMs 0 to 600000")
            .kind(FieldType::Object),
        OptionSpec::optional("timeoutSecs", "Timeout", "Seconds one attempt of a request may take, connecting and reading included (default 30); or {\"connect\": 10, \"total\": 30} to set the connect timeout too; 0.001 to 86400")
            .kind(FieldType::Any),
    ]
}

/// [`engine_options`] for a connector to one vendor's API: `baseUrl`
/// defaults to `default_url` and says where else it may point.
pub fn vendor_engine_options(
    default_url: &'static str,
    description: &'static str,
) -> Vec<OptionSpec> {
    let mut options = engine_options();
    for o in options.iter_mut().filter(|o| o.key == "baseUrl") {
        o.description = description;
        o.placeholder = default_url;
        o.default = Some(json!(default_url));
    }
    options
}

/// The account's `baseUrl`, or `default_url`; a value that is not a URL is
/// refused with `hint` (the vendor's other addresses).
pub fn base_url(options: &Options, default_url: &str, hint: &str) -> Result<String> {
    let base_url = options
        .string("baseUrl")
        .unwrap_or_else(|| default_url.to_string());
    if url::Url::parse(&base_url).is_err() {
        return Err(
            crate::error::usage(format!("baseUrl \"{base_url}\" is not a URL"))
                .hint(hint.to_string())
                .into(),
        );
    }
    Ok(base_url)
}

/// The records of a vendor's listing: the array at `key` of `body`, each
/// item made a record by `read` (`None`: it has no id). A missing array or
/// an item without an id is an error naming the request, where `what` is
/// what one item is ("contact").
pub fn records_in(
    req: &RequestSpec,
    body: &Value,
    key: &str,
    what: &str,
    read: impl Fn(&Value) -> Option<Record>,
) -> Result<Vec<Record>> {
    let shown = || format!("{} {}", req.method, req.shown_url());
    let Some(Value::Array(items)) = body.get(key) else {
        return Err(
            crate::error::failed(format!("{} answered no \"{key}\" array", shown())).into(),
        );
    };
    items
        .iter()
        .map(|item| {
            read(item).ok_or_else(|| {
                crate::error::failed(format!("{} answered a {what} without an id", shown())).into()
            })
        })
        .collect()
}

/// A JSON scalar as a string: ids and cursors may be numbers.
pub fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// What `--dry-run` shows of `reqs`.
pub fn previews(reqs: &[RequestSpec]) -> Vec<Value> {
    reqs.iter().map(RequestSpec::preview).collect()
}

/// A request to `path_and_query` under `base_url` (whose trailing `/`, if
/// any, is dropped); the vendor adds its credentials and media types.
pub fn request(method: &str, base_url: &str, path_and_query: &str) -> RequestSpec {
    RequestSpec::new(
        method,
        format!("{}{path_and_query}", base_url.trim_end_matches('/')),
    )
}

/// The string at `pointer` of the `body` that `req` answered: a job id, a
/// created object's id. Missing, it is an error naming `what`.
pub fn string_at(req: &RequestSpec, body: &Value, pointer: &str, what: &str) -> Result<String> {
    match body.pointer(pointer).and_then(Value::as_str) {
        Some(s) => Ok(s.to_string()),
        None => Err(crate::error::failed(format!(
            "{} {} answered no {what}",
            req.method,
            req.shown_url()
        ))
        .into()),
    }
}

/// The `field` of each item of an error body's `errors` array (HubSpot's
/// and Intercom's `errors[].message`, `errors[].code`), in order.
pub fn error_fields<'a>(body: &'a Value, field: &str) -> Vec<&'a str> {
    body.get("errors")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|e| e.get(field).and_then(Value::as_str))
        .collect()
}
