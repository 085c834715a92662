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

use crate::connector::options::connector_options;
use crate::connector::{FieldType, OptionSpec, Options, Record};
use crate::http::{Policy, RequestSpec};

connector_options! {
    /// The options every HTTP connector accepts besides its own, flattened
    /// into each one's config: where requests go, and the overrides of its
    /// rate limits, retry policy and timeouts (applied by
    /// [`HttpOptions::apply_to`]).
    pub struct HttpOptions {
        /// Send requests here instead of the API's own address (a test server, the sandbox)
        #[option(label = "Base URL", placeholder = "http://127.0.0.1:8787")]
        pub base_url: Option<String>,
        /// Override the rate limits: {"rps": 5, "burst": 5, "maxInFlight": 4} for every endpoint group, or {"GROUP": {...}} for one ("default" is the group of requests that match none); rps 0.001 to 1000000, burst 1 to 100000, maxInFlight 1 to 10000
        #[option(label = "Rate limit", kind = FieldType::Object)]
        pub rate_limit: Option<Value>,
        /// Override the retry policy: {"maxAttempts": 5, "maxWaitSecs": 60, "baseDelayMs": 500}; maxAttempts 1 to 100, maxWaitSecs 0 to 86400, baseDelayMs 0 to 600000
        #[option(label = "Retry", kind = FieldType::Object)]
        pub retry: Option<Value>,
        /// Seconds one attempt of a request may take, connecting and reading included (default 30); or {"connect": 10, "total": 30} to set the connect timeout too; 0.001 to 86400
        #[option(label = "Timeout", kind = FieldType::Any)]
        pub timeout_secs: Option<Value>,
    }
}

impl HttpOptions {
    /// Override `policy`'s rate limits, retry budget and timeouts with
    /// these options; [`Policy::apply_overrides`] checks their ranges.
    pub fn apply_to(&self, policy: &mut Policy) -> Result<()> {
        policy.apply_overrides(
            self.rate_limit.as_ref(),
            self.retry.as_ref(),
            self.timeout_secs.as_ref(),
        )
    }

    /// [`HttpOptions::apply_to`] for a caller holding an account's options
    /// rather than a connector's config.
    pub fn apply_account(options: &Options, policy: &mut Policy) -> Result<()> {
        options.parse_part::<HttpOptions>()?.apply_to(policy)
    }
}

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

/// The error of a vendor's job still unfinished after `max_polls` polls:
/// `what` ("Zendesk job J"), its last status and progress as the last
/// answer holds them under `at` (`/job_status`), and what to do.
pub fn unfinished_job(
    what: &str,
    max_polls: u32,
    last: &Value,
    at: &str,
    (done, total): (&str, &str),
) -> anyhow::Error {
    let field = |k: &str| last.pointer(&format!("{at}/{k}"));
    let status = field("status").and_then(Value::as_str).unwrap_or("unknown");
    let progress = match (
        field(done).and_then(Value::as_u64),
        field(total).and_then(Value::as_u64),
    ) {
        (Some(d), Some(t)) => format!(", {d} of {t} done"),
        _ => String::new(),
    };
    crate::error::failed(format!(
        "{what} did not finish after {max_polls} polls (status {status}{progress})"
    ))
    .hint("the job may still complete; raise \"maxPolls\" or \"pollIntervalMs\" in account.json, then resume (the job upserts, so re-sending is safe)")
    .into()
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
