//! The HTTP engine every HTTP connector shares, built-in or declarative.
//!
//! A connector builds [`RequestSpec`]s without I/O (so `--dry-run` needs no
//! server) and hands them to an [`Engine`], which owns everything that
//! happens on the wire. The policy, with its defaults, is written once here
//! and in [`policy`]:
//!
//! - **Client**: reqwest with rustls. Per attempt: 10 s to connect, 30 s for
//!   the whole attempt (`timeoutSecs` in account.json: a number for the
//!   whole attempt, or `{"connect": N, "total": N}`).
//! - **Rate limits**: each connector declares endpoint groups (method and path
//!   pattern) with a token bucket (requests per second and burst) and a cap on
//!   requests in flight. A request that matches no group gets the connector's
//!   default (10 rps, burst 10, 8 in flight unless the connector says
//!   otherwise). account.json overrides with `"rateLimit": {"rps", "burst",
//!   "maxInFlight"}` for every group or `"rateLimit": {"GROUP": {...}}` per group.
//! - **429**: waits for `Retry-After` (seconds or an HTTP date), else the
//!   vendor's reset header (seconds or a Unix time), else an exponential
//!   backoff. The wait does not spend the retry budget. A wait longer than
//!   `retry.maxWaitSecs` (default 60) fails at once with a message naming the
//!   wait and the knob; 20 consecutive 429s fail too. A connector may name a
//!   spent quota in the 429's body (`Policy::quota_spent`, e.g. HubSpot's
//!   `"policyName": "DAILY"`), which fails at once: no short wait restores it.
//! - **408, 5xx except 501, network failures**: exponential backoff with full
//!   jitter (a random wait up to 500 ms × 2^n, at most 30 s), up to
//!   `retry.maxAttempts` attempts in all (default 5). A network failure is
//!   retried only for idempotent methods (GET, HEAD, OPTIONS, PUT, DELETE):
//!   a POST or PATCH may have been applied before the connection broke.
//! - **Other 4xx and 501** are not retried.
//! - **Redaction**: Authorization, Cookie and api-key style headers, query
//!   parameters such as key, token, secret, password, signature, and secret
//!   option values are shown as `***` in logs, errors, previews and
//!   cassettes, in every form a value takes on the way out (raw,
//!   percent-encoded, form-encoded, JSON-escaped; a basic-auth account's
//!   base64 credential too), by [`crate::output::Output`].
//! - **Paths**: every placeholder in a path is one segment
//!   ([`segment`]); a `.` or `..` segment, which URL parsers resolve away,
//!   is refused before anything is sent ([`check_path`]); `-v`, errors and
//!   the request use the one parsed URL.
//! - **Logging**: `-v` one line per attempt (method, redacted URL, status,
//!   duration, attempt); `-vv` adds headers and bodies, redacted.
//! - **Record and replay**: with `--record` every attempt is kept, redacted,
//!   in a cassette written when the command ends; with `--replay` the
//!   cassette answers and nothing is sent (see [`cassette`]).
//! - **Errors** name the method, the redacted URL, the status and the
//!   vendor's own message.

pub mod cassette;
pub mod clock;
mod engine;
pub mod message;
pub mod policy;
mod poll;
pub mod redact;
pub mod stats;

use anyhow::Result;
use serde_json::{json, Map, Value};

pub use clock::Clock;
pub use engine::{status_error, Engine, HttpEnv, Offline, Response};
pub use policy::{Group, Policy, RateLimit, Retry};
pub use poll::{Polled, Polling};
pub use stats::Stats;

/// The User-Agent ferry sends when a request sets none.
pub const USER_AGENT: &str = concat!("ferry/", env!("CARGO_PKG_VERSION"));

/// A request body.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    Json(Value),
    /// `application/x-www-form-urlencoded` fields (OAuth2 token requests).
    Form(Vec<(String, String)>),
    /// Text sent as it is (XML, CSV, plain text: a code connector's own
    /// body), with the Content-Type its headers give (text/plain if none).
    Text(String),
}

/// One HTTP request, fully built and not yet sent.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestSpec {
    pub method: String,
    /// Absolute URL, query included.
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Body>,
}

impl RequestSpec {
    pub fn new(method: &str, url: impl Into<String>) -> RequestSpec {
        RequestSpec {
            method: method.to_ascii_uppercase(),
            url: url.into(),
            headers: Vec::new(),
            body: None,
        }
    }

    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn json(mut self, body: Value) -> Self {
        self.body = Some(Body::Json(body));
        self
    }

    /// Whether sending it twice has the effect of sending it once, so a
    /// network failure may be retried.
    pub fn idempotent(&self) -> bool {
        matches!(
            self.method.as_str(),
            "GET" | "HEAD" | "OPTIONS" | "PUT" | "DELETE" | "TRACE"
        )
    }

    /// The URL exactly as it goes on the wire: what `-v`, `--dry-run`,
    /// errors and the request itself show. Parsing may percent-encode a
    /// character the builder left as is, and would resolve a `.` or `..`
    /// segment away, which [`check_path`] refuses first.
    pub fn wire_url(&self) -> Result<url::Url> {
        check_path(&self.method, &self.url)?;
        url::Url::parse(&self.url).map_err(|e| {
            crate::error::failed(format!(
                "{} {} is not a valid URL ({e})",
                self.method,
                redact::redact_url(&self.url)
            ))
            .into()
        })
    }

    /// The URL as messages show it: as it goes on the wire, redacted.
    pub fn shown_url(&self) -> String {
        redact::redact_url(&shown_url(&self.url))
    }

    /// The URL's path, for matching endpoint groups.
    pub fn path(&self) -> String {
        match url::Url::parse(&self.url) {
            Ok(u) => u.path().to_string(),
            Err(_) => self.url.split('?').next().unwrap_or("").to_string(),
        }
    }

    /// The headers as they go on the wire: the request's own, then those
    /// ferry adds where the request has none (User-Agent, Accept and the
    /// body's Content-Type). The request itself, `-vv` and `--dry-run` all
    /// use this one list, so what is shown is what is sent.
    pub fn wire_headers(&self) -> Vec<(String, String)> {
        let has = |name: &str| {
            self.headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case(name))
        };
        let mut headers = self.headers.clone();
        if !has("user-agent") {
            headers.push(("User-Agent".into(), USER_AGENT.into()));
        }
        if !has("accept") {
            headers.push(("Accept".into(), "*/*".into()));
        }
        let content_type = match &self.body {
            None => None,
            Some(Body::Json(_)) => Some("application/json"),
            Some(Body::Form(_)) => Some("application/x-www-form-urlencoded"),
            Some(Body::Text(_)) => Some("text/plain; charset=utf-8"),
        };
        if let Some(ct) = content_type.filter(|_| !has("content-type")) {
            headers.push(("Content-Type".into(), ct.into()));
        }
        headers
    }

    /// The request as `--dry-run` prints it: method, URL, headers, body, redacted.
    pub fn preview(&self) -> Value {
        let headers: Map<String, Value> = self
            .wire_headers()
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(redact::header_value(k, v))))
            .collect();
        let body = match &self.body {
            None => Value::Null,
            Some(Body::Json(v)) => v.clone(),
            Some(Body::Form(fields)) => Value::Object(
                fields
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::String(redact::header_value(k, v))))
                    .collect(),
            ),
            Some(Body::Text(text)) => Value::String(text.clone()),
        };
        let mut shown = json!({
            "method": self.method,
            // As built: a preview may hold a placeholder ("{id of ...}")
            // that parsing would escape; real values are already encoded.
            "url": redact::redact_url(&self.url),
            "headers": headers,
            "body": body,
        });
        // A request the engine would refuse says so in the preview too.
        if let Some(segment) = dot_segment(&self.url) {
            shown["refused"] = Value::String(dot_segment_reason(segment));
        }
        shown
    }
}

/// The characters a path segment keeps as they are: RFC 3986's unreserved
/// ones. Everything else, `/`, `?`, `#`, `%` and `+` included, is
/// percent-encoded, so a value is always exactly one segment.
const SEGMENT_SAFE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// `value` (an id, a list or group name) as one URL path segment: every
/// connector's request builder puts placeholders in paths through this.
/// `.` and `..` become `%2E` and `%2E%2E`, which URL parsers still read as
/// dot segments, so [`check_path`] refuses them before anything is sent.
pub fn segment(value: &str) -> String {
    match value {
        "." => "%2E".to_string(),
        ".." => "%2E%2E".to_string(),
        v => percent_encoding::utf8_percent_encode(v, SEGMENT_SAFE).to_string(),
    }
}

/// The first segment of `url`'s path that a URL parser resolves away
/// (`.`, `..`, or their percent-encoded spellings; `\` counts as `/` in
/// http URLs), if any.
pub fn dot_segment(url: &str) -> Option<&str> {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path_start = after_scheme.find(['/', '\\'])?;
    let path = &after_scheme[path_start..];
    let path = path.split(['?', '#']).next().unwrap_or("");
    path.split(['/', '\\']).find(|seg| {
        matches!(
            seg.to_ascii_lowercase().as_str(),
            "." | ".." | "%2e" | "%2e%2e" | ".%2e" | "%2e."
        )
    })
}

fn dot_segment_reason(segment: &str) -> String {
    let dots = if segment.len() <= 3 { "." } else { ".." };
    format!(
        "its path segment \"{segment}\" means \"{dots}\" to every URL parser, so the request would go to another path"
    )
}

/// Refuse a request whose path holds a dot segment: `DELETE /items/..`
/// would delete `/`. The error is a usage error with a hint for a single
/// action, and a [`crate::error::Rejection`] of the record for a batch.
pub fn check_path(method: &str, url: &str) -> Result<()> {
    let Some(segment) = dot_segment(url) else {
        return Ok(());
    };
    let reason = dot_segment_reason(segment);
    Err(anyhow::Error::new(crate::error::Rejection(reason)).context(
        crate::error::usage(format!(
            "{method} {} cannot be sent",
            redact::redact_url(url)
        ))
        .hint("a value in a URL path (an id, a list or group name) cannot be \".\" or \"..\"; give the record another id"),
    ))
}

/// `url` as a URL parser serializes it (what goes on the wire), or as it is
/// when it does not parse.
pub(crate) fn shown_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) if dot_segment(url).is_none() => u.to_string(),
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_is_one_path_segment() {
        assert_eq!(segment("a/b c+d@e.f~g_h-i"), "a%2Fb%20c%2Bd%40e.f~g_h-i");
        assert_eq!(segment("."), "%2E");
        assert_eq!(segment(".."), "%2E%2E");
        assert_eq!(segment("../admin"), "..%2Fadmin");
        assert_eq!(segment("..."), "...");
    }

    #[test]
    fn dot_segments_are_found_in_every_spelling_and_refused() {
        for url in [
            "http://h/items/..",
            "http://h/items/./x",
            "http://h/items/%2E%2E?x=1",
            "http://h/items/%2e",
            "http://h/a/.%2E/b",
            "http://h/a\\..\\b",
        ] {
            assert!(dot_segment(url).is_some(), "{url}");
            let err = check_path("DELETE", url).unwrap_err();
            assert!(err.chain().any(|c| c.is::<crate::error::Rejection>()));
            assert_eq!(
                crate::error::find_failure(&err).unwrap().kind,
                crate::error::Kind::Usage
            );
        }
        for url in [
            "http://h/items/..%2Fadmin",
            "http://h/a...b/c",
            "http://h/?q=..",
            "http://h",
        ] {
            assert_eq!(dot_segment(url), None, "{url}");
            assert!(check_path("GET", url).is_ok());
        }
    }
}
