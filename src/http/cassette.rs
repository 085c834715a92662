//! Record and replay of HTTP traffic. With `--record` the [`super::Engine`]
//! hands every attempt it makes (request and response) to a [`Cassette`],
//! which keeps it redacted and writes the file atomically when the command
//! ends. With `--replay` the engine asks the cassette for the answer and
//! sends nothing.
//!
//! A request matches a recorded one on method, path, sorted query and
//! normalised JSON body (keys sorted, credentials masked), never on the host
//! or headers: auth headers differ between machines and the sandbox's port
//! differs between runs. Identical requests (pages of a listing, retries) are
//! answered in the order they were recorded. Secrets are redacted on write
//! with the engine's rules (credential headers, query parameters and body
//! keys) and the account's secret option values ([`Output::redact`]); replay
//! redacts the live request the same way before matching, so a masked value
//! still matches.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::engine::Response;
use super::redact::{header_value, is_sensitive, redact_json, redact_url};
use super::{Body, RequestSpec};
use crate::error::{failed, usage};
use crate::output::{Output, REDACTED};

/// The cassette format's version, written into every file.
const VERSION: u32 = 1;

/// Response headers left out of a cassette: they describe one transfer, not
/// the answer, and change on every run.
const TRANSIENT_HEADERS: &[&str] = &[
    "date",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
];

/// Keys of a response body that hold credentials (an OAuth token answer).
/// Narrower than the request rule: a listing's `next_token` must survive.
const RESPONSE_SECRET_KEYS: &[&str] = &[
    "access_token",
    "refresh_token",
    "id_token",
    "client_secret",
    "password",
    "api_key",
    "apikey",
];

/// How the error for a request a replay has no answer for begins.
const UNRECORDED: &str = "replay: no recorded exchange";

/// Whether `err` is a replay's request that the cassette has no answer for
/// (the run needs traffic that was never recorded).
pub fn is_unrecorded(err: &anyhow::Error) -> bool {
    err.chain().any(|c| c.to_string().starts_with(UNRECORDED))
}

/// Whether the engine talks to the network and keeps what it saw, or answers
/// from the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Record,
    Replay,
}

/// A request as a cassette keeps and matches it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecordedRequest {
    pub method: String,
    /// The redacted URL, for a reader; matching ignores it.
    pub url: String,
    pub path: String,
    /// Decoded query parameters, sorted; credentials as `***`.
    pub query: Vec<(String, String)>,
    /// The JSON body with keys sorted and credentials masked (a form body as
    /// an object of its fields); `null` without a body.
    pub body: Value,
}

impl RecordedRequest {
    fn matches(&self, other: &RecordedRequest) -> bool {
        self.method == other.method
            && self.path == other.path
            && self.query == other.query
            && self.body == other.body
    }

    /// `GET /items?limit=2` and the body, for an error message.
    fn describe(&self) -> String {
        let mut text = format!("{} {}", self.method, self.path);
        if !self.query.is_empty() {
            let q: Vec<String> = self.query.iter().map(|(k, v)| format!("{k}={v}")).collect();
            text.push('?');
            text.push_str(&q.join("&"));
        }
        if !self.body.is_null() {
            text.push_str(&format!(" with body {}", self.body));
        }
        text
    }
}

/// A response as a cassette keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecordedResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// The body when it is JSON, kept as JSON so the file reads well.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json: Option<Value>,
    /// The body when it is not JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// One request and the answer it got.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Interaction {
    pub request: RecordedRequest,
    pub response: RecordedResponse,
}

/// A cassette file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tape {
    pub ferry_cassette: u32,
    /// The command that recorded it, secrets redacted.
    pub command: String,
    pub interactions: Vec<Interaction>,
}

/// The cassette of one command run, shared by every engine it opens.
pub struct Cassette {
    mode: Mode,
    /// The file written (record) or read (replay); `None` for a test case's
    /// embedded cassette.
    path: Option<PathBuf>,
    /// Where the interactions come from, as error messages name it.
    source: String,
    /// The command that would record what replay misses.
    rerecord: String,
    state: Mutex<State>,
}

struct State {
    interactions: Vec<Interaction>,
    used: Vec<bool>,
}

impl Cassette {
    /// An empty cassette that `save` writes to `path`.
    pub fn record(path: PathBuf, rerecord: String) -> Cassette {
        Cassette {
            mode: Mode::Record,
            source: path.display().to_string(),
            path: Some(path),
            rerecord,
            state: Mutex::new(State {
                interactions: Vec::new(),
                used: Vec::new(),
            }),
        }
    }

    /// The cassette in `path`, to answer from.
    pub fn replay_file(path: PathBuf, rerecord: String) -> Result<Cassette> {
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(usage(format!("cassette {} does not exist", path.display()))
                    .hint(format!("record it first: {rerecord}"))
                    .into())
            }
            Err(e) => return Err(e).with_context(|| format!("could not read {}", path.display())),
        };
        let tape = parse_tape(&text, &path.display().to_string())?;
        let mut c = Cassette::replay(tape.interactions, path.display().to_string(), rerecord);
        c.path = Some(path);
        Ok(c)
    }

    /// A cassette answering from `interactions` (a test case's own).
    pub fn replay(interactions: Vec<Interaction>, source: String, rerecord: String) -> Cassette {
        let used = vec![false; interactions.len()];
        Cassette {
            mode: Mode::Replay,
            path: None,
            source,
            rerecord,
            state: Mutex::new(State { interactions, used }),
        }
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Keep one attempt's request and response, redacted.
    pub fn keep(&self, req: &RequestSpec, resp: &Response, out: &Output) {
        let interaction = Interaction {
            request: normalise(req, out),
            response: recorded_response(resp, out),
        };
        let mut state = self.lock();
        state.interactions.push(interaction);
        state.used.push(false);
    }

    /// The recorded answer to `req`: the first unused interaction that
    /// matches it. An unmatched request is an error naming it and the
    /// command that would record it.
    pub fn answer(&self, req: &RequestSpec, out: &Output) -> Result<Response> {
        let wanted = normalise(req, out);
        let mut state = self.lock();
        let mut seen = 0usize;
        let mut found = None;
        for (i, it) in state.interactions.iter().enumerate() {
            if it.request.matches(&wanted) {
                seen += 1;
                if !state.used[i] {
                    found = Some(i);
                    break;
                }
            }
        }
        let Some(i) = found else {
            let why = if seen > 0 {
                format!(
                    " (it was recorded {seen} time(s), and this is one request more than the recording made)"
                )
            } else {
                String::new()
            };
            return Err(failed(format!(
                "{UNRECORDED} in {} matches {}{why}",
                self.source,
                wanted.describe()
            ))
            .hint(format!(
                "record the traffic again with `{}` (the server must be reachable)",
                self.rerecord
            ))
            .into());
        };
        state.used[i] = true;
        let r = &state.interactions[i].response;
        let body = match (&r.json, &r.text) {
            (Some(v), _) => v.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => String::new(),
        };
        Ok(Response {
            status: r.status,
            headers: r.headers.clone(),
            body,
        })
    }

    /// What was recorded so far.
    pub fn interactions(&self) -> Vec<Interaction> {
        self.lock().interactions.clone()
    }

    /// What was recorded so far as a cassette file's content.
    pub fn tape(&self, command: String) -> Tape {
        Tape {
            ferry_cassette: VERSION,
            command,
            interactions: self.interactions(),
        }
    }

    /// Write the recorded interactions to the cassette file, atomically.
    /// Answers the file written, `None` when there is nothing to write.
    pub fn save(&self, command: &str) -> Result<Option<PathBuf>> {
        let (Mode::Record, Some(path)) = (self.mode, &self.path) else {
            return Ok(None);
        };
        let tape = self.tape(command.to_string());
        let mut text =
            serde_json::to_string_pretty(&tape).context("could not render the cassette")?;
        text.push('\n');
        crate::fsutil::write_bytes_atomic(path, text.as_bytes())
            .with_context(|| format!("could not write the cassette {}", path.display()))?;
        Ok(Some(path.clone()))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Parse a cassette file's text; `source` names it in errors.
pub fn parse_tape(text: &str, source: &str) -> Result<Tape> {
    let tape: Tape = serde_json::from_str(text).map_err(|e| {
        usage(format!(
            "{source} is not a ferry cassette: {e} (line {}, column {})",
            e.line(),
            e.column()
        ))
        .hint("record it again with --record")
    })?;
    if tape.ferry_cassette != VERSION {
        return Err(usage(format!(
            "{source} is a cassette of version {}; this ferry reads version {VERSION}",
            tape.ferry_cassette
        ))
        .hint("record it again with --record")
        .into());
    }
    Ok(tape)
}

/// `req` as a cassette keeps and matches it: secrets masked, query sorted,
/// JSON keys sorted.
pub fn normalise(req: &RequestSpec, out: &Output) -> RecordedRequest {
    let (path, mut query) = match url::Url::parse(&req.url) {
        Ok(u) => (
            u.path().to_string(),
            u.query_pairs()
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect::<Vec<_>>(),
        ),
        Err(_) => (req.path(), Vec::new()),
    };
    for (k, v) in query.iter_mut() {
        *v = if is_sensitive(k) {
            REDACTED.to_string()
        } else {
            out.redact(v)
        };
    }
    query.sort();
    let body = match &req.body {
        None => Value::Null,
        Some(Body::Json(v)) => redact_values(&sort_keys(&redact_json(v)), out),
        Some(Body::Text(text)) => Value::String(out.redact(text)),
        Some(Body::Form(fields)) => {
            let mut map: Vec<(String, String)> = fields
                .iter()
                .map(|(k, v)| (k.clone(), out.redact(&header_value(k, v))))
                .collect();
            map.sort();
            Value::Object(
                map.into_iter()
                    .map(|(k, v)| (k, Value::String(v)))
                    .collect(),
            )
        }
    };
    RecordedRequest {
        method: req.method.clone(),
        url: out.redact(&redact_url(&req.url)),
        // A `{token}` placeholder puts a secret in the path itself.
        path: out.redact(&path),
        query,
        body,
    }
}

fn recorded_response(resp: &Response, out: &Output) -> RecordedResponse {
    let headers = resp
        .headers
        .iter()
        .filter(|(k, _)| !TRANSIENT_HEADERS.contains(&k.to_ascii_lowercase().as_str()))
        .map(|(k, v)| (k.clone(), out.redact(&header_value(k, v))))
        .collect();
    let (json, text) = match serde_json::from_str::<Value>(&resp.body) {
        Ok(v) if !resp.body.trim().is_empty() => {
            (Some(redact_values(&mask_response_keys(&v), out)), None)
        }
        _ if resp.body.is_empty() => (None, None),
        _ => (None, Some(out.redact(&resp.body))),
    };
    RecordedResponse {
        status: resp.status,
        headers,
        json,
        text,
    }
}

/// `v` with the values of credential keys of a response masked.
fn mask_response_keys(v: &Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let lower = k.to_ascii_lowercase().replace('-', "_");
                    let v = if RESPONSE_SECRET_KEYS.contains(&lower.as_str()) && !v.is_null() {
                        Value::String(REDACTED.to_string())
                    } else {
                        mask_response_keys(v)
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(mask_response_keys).collect()),
        other => other.clone(),
    }
}

/// `v` with every registered secret value masked inside its strings (keys included).
fn redact_values(v: &Value, out: &Output) -> Value {
    match v {
        Value::String(s) => Value::String(out.redact(s)),
        Value::Array(items) => Value::Array(items.iter().map(|i| redact_values(i, out)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (out.redact(k), redact_values(v, out)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// `v` with the keys of every object sorted, so key order never decides a match.
pub fn sort_keys(v: &Value) -> Value {
    match v {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k.clone(), sort_keys(v)))
                    .collect::<Map<String, Value>>(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(sort_keys).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn resp(body: &str) -> Response {
        Response {
            status: 200,
            headers: vec![
                ("content-type".into(), "application/json".into()),
                ("date".into(), "Mon".into()),
            ],
            body: body.into(),
        }
    }

    #[test]
    fn requests_match_on_method_path_sorted_query_and_normalised_body() {
        let out = Output::new();
        let a = RequestSpec::new("post", "http://127.0.0.1:1/c?b=2&a=1&api_key=K1")
            .header("Authorization", "Bearer one")
            .json(json!({"y": 1, "x": {"q": 2, "p": 1}}));
        let b = RequestSpec::new("POST", "http://other:9/c?a=1&api_key=K2&b=2")
            .json(json!({"x": {"p": 1, "q": 2}, "y": 1}));
        assert!(normalise(&a, &out).matches(&normalise(&b, &out)));
        let c = RequestSpec::new("POST", "http://other:9/c?a=1&b=3");
        assert!(!normalise(&a, &out).matches(&normalise(&c, &out)));
    }

    #[test]
    fn identical_requests_are_answered_in_recorded_order_then_fail() {
        let out = Output::new();
        let rec = Cassette::record(PathBuf::from("x.json"), "ferry x --record".into());
        let req = RequestSpec::new("GET", "http://h/items");
        rec.keep(&req, &resp(r#"{"page": 1}"#), &out);
        rec.keep(&req, &resp(r#"{"page": 2}"#), &out);
        let play = Cassette::replay(
            rec.interactions(),
            "x.json".into(),
            "ferry x --record".into(),
        );
        assert_eq!(play.answer(&req, &out).unwrap().body, r#"{"page":1}"#);
        assert_eq!(play.answer(&req, &out).unwrap().body, r#"{"page":2}"#);
        let err = play.answer(&req, &out).unwrap_err().to_string();
        assert!(err.contains("GET /items"), "{err}");
        assert!(err.contains("recorded 2 time(s)"), "{err}");
    }

    #[test]
    fn secrets_are_masked_on_write() {
        let out = Output::new();
        out.add_secrets(["CANARY-1234".to_string()]);
        let req = RequestSpec::new("POST", "http://h/t?token=abc&q=CANARY-1234")
            .json(json!({"password": "pw", "note": "x CANARY-1234"}));
        let r = normalise(&req, &out);
        let text = serde_json::to_string(&r).unwrap();
        for secret in ["CANARY-1234", "abc", "pw"] {
            assert!(!text.contains(secret), "{text}");
        }
        let rr = recorded_response(
            &resp(r#"{"access_token": "tok", "next_token": "n2", "who": "CANARY-1234"}"#),
            &out,
        );
        assert_eq!(
            rr.json,
            Some(json!({"access_token": "***", "next_token": "n2", "who": "***"}))
        );
        assert_eq!(rr.headers.len(), 1);
    }
}
