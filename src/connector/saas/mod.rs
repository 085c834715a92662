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

use crate::connector::{OptionSpec, Record};
use crate::http::{HttpOptions, RequestSpec};

/// `options` (a vendor connector's, [`HttpOptions`] among them) with
/// `baseUrl` defaulting to `default_url` and `description` saying where
/// else it may point: the vendor's regions.
pub fn vendor_base_url(
    mut options: Vec<OptionSpec>,
    default_url: &'static str,
    description: &'static str,
) -> Vec<OptionSpec> {
    for o in options.iter_mut().filter(|o| o.key == "baseUrl") {
        o.description = description;
        o.placeholder = default_url;
        o.default = Some(json!(default_url));
    }
    options
}

/// The account's `baseUrl`, or `default_url`; a value that is not a URL is
/// refused with `hint` (the vendor's other addresses).
pub fn base_url(http: &HttpOptions, default_url: &str, hint: &str) -> Result<String> {
    let base_url = http
        .base_url
        .clone()
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
