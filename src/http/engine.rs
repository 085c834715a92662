//! The engine: sends [`RequestSpec`]s under the connector's [`Policy`] —
//! rate limits per endpoint group, the retry loop, timeouts, logging — and
//! turns a final error status into a message a user can act on. The retry
//! decisions live in [`decide`] and nowhere else.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use serde_json::Value;
use tokio::sync::Semaphore;

use super::cassette::{Cassette, Mode};
use super::clock::{Clock, VirtualBucket};
use super::message::vendor_message;
use super::policy::{Policy, RateLimit, MAX_BACKOFF, MAX_RATE_LIMITED};
use super::redact::{header_value, redact_body_text, redact_url};
use super::{Body, RequestSpec, Stats};
use crate::error::{failed, not_found, Failure, Kind};
use crate::output::Output;

/// A response as the engine read it: the status, the headers and the body.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as JSON; an empty body is `null`.
    pub fn json(&self, req: &RequestSpec) -> Result<Value> {
        if self.body.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&self.body).map_err(|e| {
            failed(format!(
                "{} {} answered {} with a body that is not JSON ({e})",
                req.method,
                req.shown_url(),
                self.status
            ))
            .into()
        })
    }
}

/// One rate-limit gate: a token bucket and the in-flight cap.
struct Gate {
    bucket: DefaultDirectRateLimiter,
    /// The same bucket on a test clock's virtual time, used instead of
    /// `bucket` when there is one (see [`Clock`]).
    virtual_bucket: Option<VirtualBucket>,
    in_flight: Arc<Semaphore>,
}

impl Gate {
    fn new(limit: &RateLimit, clock: &Clock) -> Gate {
        let period = Duration::from_secs_f64(1.0 / limit.rps.max(1e-6));
        let burst = NonZeroU32::new(limit.burst.max(1)).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::with_period(period)
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
            .allow_burst(burst);
        Gate {
            bucket: RateLimiter::direct(quota),
            virtual_bucket: clock.virtual_bucket(quota),
            in_flight: Arc::new(Semaphore::new(limit.max_in_flight.max(1))),
        }
    }

    /// Wait for a slot in the bucket; answers how long that took (on the
    /// test clock, the virtual time that passed).
    async fn ready(&self, clock: &Clock) -> Duration {
        match &self.virtual_bucket {
            None => {
                let asked = Instant::now();
                self.bucket.until_ready().await;
                asked.elapsed()
            }
            Some(bucket) => clock.until_ready(bucket).await,
        }
    }
}

/// What every HTTP engine of one command is built with: the output it logs
/// to and redacts through, the `--record` / `--replay` cassette and the
/// clock it waits on. A connector builds its engines here, so none can miss
/// the cassette or the clock.
#[derive(Clone, Default)]
pub struct HttpEnv {
    out: Output,
    cassette: Option<Arc<Cassette>>,
    clock: Clock,
    /// `--dry-run` on a read: engines send nothing (see [`Offline`]).
    offline: bool,
    /// The retries and rate-limit waits of every engine built here.
    stats: Arc<Stats>,
}

/// The request an engine built under `--dry-run` did not send: the error
/// that ends the read there, carrying what would have gone out, so the
/// command prints it (xh's `--offline`).
#[derive(Debug, Clone)]
pub struct Offline(pub RequestSpec);

impl std::fmt::Display for Offline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} was not sent (--dry-run)",
            self.0.method,
            self.0.shown_url()
        )
    }
}

impl std::error::Error for Offline {}

impl HttpEnv {
    pub fn new(out: Output, cassette: Option<Arc<Cassette>>) -> HttpEnv {
        HttpEnv {
            out,
            cassette,
            clock: Clock::default(),
            offline: false,
            stats: Arc::default(),
        }
    }

    /// The environment with its engines counting into `stats` (the
    /// command's, which its progress bar and summary read).
    pub fn with_stats(mut self, stats: Arc<Stats>) -> HttpEnv {
        self.stats = stats;
        self
    }

    /// The environment for a `--dry-run` read: its engines send nothing
    /// and answer the first request as an [`Offline`] error.
    pub fn offline(mut self) -> HttpEnv {
        self.offline = true;
        self
    }

    /// The environment with its engines waiting on `clock` (the command's:
    /// real, or the test hook's virtual one, see [`Clock`]).
    pub fn with_clock(mut self, clock: Clock) -> HttpEnv {
        self.clock = clock;
        self
    }

    /// An engine with `policy`.
    pub fn engine(&self, policy: Policy) -> Result<Engine> {
        let mut engine = Engine::new(self.out.clone(), policy)?
            .with_cassette(self.cassette.clone())
            .with_clock(self.clock.clone());
        engine.offline = self.offline;
        engine.stats = self.stats.clone();
        Ok(engine)
    }

    /// The output engines log to.
    pub fn out(&self) -> &Output {
        &self.out
    }
}

/// The shared HTTP engine of one connector.
pub struct Engine {
    client: reqwest::Client,
    policy: Policy,
    default_gate: Gate,
    gates: Vec<Gate>,
    out: Output,
    /// `--record` / `--replay`, from the [`HttpEnv`] the engine is built by.
    cassette: Option<Arc<Cassette>>,
    /// What [`Engine::send`] makes of a final error status: [`status_error`],
    /// or a vendor's richer reading of its error body.
    describe: fn(&RequestSpec, &Response) -> Failure,
    /// How the engine waits: real time, or a test's virtual time.
    clock: Clock,
    /// Send nothing: answer the first request as [`Offline`].
    offline: bool,
    /// Where retries and rate-limit waits are counted.
    stats: Arc<Stats>,
}

/// What the retry policy says about one attempt's outcome.
#[derive(Debug, PartialEq)]
enum Decision {
    /// Hand the response to the caller (success or an error not retried).
    Done,
    /// Wait, then try again; `spends` says whether it uses up an attempt.
    Retry { wait: Duration, spends: bool },
    /// A 429 asked for a wait longer than the maximum.
    TooLong(Duration),
}

impl Engine {
    pub fn new(out: Output, policy: Policy) -> Result<Engine> {
        policy.validate()?;
        let client = reqwest::Client::builder()
            .connect_timeout(policy.connect_timeout)
            .user_agent(super::USER_AGENT)
            .build()
            .context("could not set up the HTTP client")?;
        let clock = Clock::default();
        Ok(Engine {
            client,
            default_gate: Gate::new(&policy.default, &clock),
            gates: policy
                .groups
                .iter()
                .map(|g| Gate::new(&g.limit, &clock))
                .collect(),
            clock,
            policy,
            cassette: None,
            out,
            describe: status_error,
            offline: false,
            stats: Arc::default(),
        })
    }

    /// The engine recording to or replaying from `cassette`.
    pub fn with_cassette(mut self, cassette: Option<Arc<Cassette>>) -> Engine {
        self.cassette = cassette;
        self
    }

    /// The engine with `describe` for the errors [`Engine::send`] answers:
    /// a connector whose API explains its errors in its own shape.
    pub fn with_errors(mut self, describe: fn(&RequestSpec, &Response) -> Failure) -> Engine {
        self.describe = describe;
        self
    }

    /// The engine waiting on `clock` (a test hook: see [`Clock`]); the
    /// rate-limit buckets start afresh on it.
    pub fn with_clock(mut self, clock: Clock) -> Engine {
        self.default_gate = Gate::new(&self.policy.default, &clock);
        self.gates = (self.policy.groups.iter())
            .map(|g| Gate::new(&g.limit, &clock))
            .collect();
        self.clock = clock;
        self
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Send `req` and answer a 2xx response; any other final status is an
    /// error naming the method, the redacted URL, the status and the vendor's
    /// message (404 is a not-found error), as `describe` words it.
    pub async fn send(&self, req: &RequestSpec) -> Result<Response> {
        let resp = self.execute(req).await?;
        if resp.is_success() {
            return Ok(resp);
        }
        Err(self.failure(req, &resp).into())
    }

    /// The error for a final non-2xx answer, as `describe` words it; a 401
    /// or 403 hints at the connector's own auth when the policy names it.
    pub fn failure(&self, req: &RequestSpec, resp: &Response) -> Failure {
        let mut failure = (self.describe)(req, resp);
        if matches!(resp.status, 401 | 403) {
            if let Some(hint) = &self.policy.auth_hint {
                failure.hint = Some(hint.clone());
            }
        }
        failure
    }

    /// [`Engine::send`] for a lookup: a 404 answers `None` (nothing there).
    pub async fn send_found(&self, req: &RequestSpec) -> Result<Option<Response>> {
        let resp = self.execute(req).await?;
        match resp.status {
            404 => Ok(None),
            _ if resp.is_success() => Ok(Some(resp)),
            _ => Err(self.failure(req, &resp).into()),
        }
    }

    /// [`Engine::send`] for a removal: a 404 means it is already gone, which
    /// is done too (a re-run, or a removal made elsewhere).
    pub async fn send_unless_gone(&self, req: &RequestSpec) -> Result<()> {
        self.send_found(req).await.map(drop)
    }

    /// Send `req` under the policy and answer the final response, whatever
    /// its status. Network failures and over-long 429 waits are errors.
    pub async fn execute(&self, req: &RequestSpec) -> Result<Response> {
        if self.offline {
            return Err(Offline(req.clone()).into());
        }
        let (gate, group, rps) = match self.policy.group_index(&req.method, &req.path()) {
            Some(i) => (
                &self.gates[i],
                self.policy.groups[i].name.as_str(),
                self.policy.groups[i].limit.rps,
            ),
            None => (&self.default_gate, "default", self.policy.default.rps),
        };
        // Parsed once: the URL logged and in errors is the one sent.
        let wire = req.wire_url()?;
        let shown_url = redact_url(wire.as_str());
        let mut failures = 0u32; // attempts spent on 408/5xx/network failures
        let mut limited = 0u32; // consecutive 429s
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            self.log_request(req);
            let started = Instant::now();
            let outcome = match &self.cassette {
                // Replay answers from the cassette: no gate, nothing sent.
                Some(c) if c.mode() == Mode::Replay => Ok(c.answer(req, &self.out)?),
                _ => {
                    let waited = gate.ready(&self.clock).await;
                    if !waited.is_zero()
                        && self.stats.waited(&self.policy.source, group, rps, waited)
                    {
                        self.out.verbose(&format!(
                            "the rate limit of group {group} ({rps} rps) is holding requests back; raise \"rateLimit\" in {} if the API allows more",
                            self.policy.source
                        ));
                    }
                    let permit = gate
                        .in_flight
                        .acquire()
                        .await
                        .context("the request gate closed")?;
                    let outcome = self.attempt(req, &wire).await;
                    drop(permit);
                    // A request waiting for this slot was just woken on this
                    // worker; let it go out before this task parses its
                    // answer, so the server is not left idle meanwhile.
                    tokio::task::yield_now().await;
                    if let (Some(c), Ok(resp)) = (&self.cassette, &outcome) {
                        c.keep(req, resp, &self.out);
                    }
                    outcome
                }
            };
            let took = started.elapsed().as_millis();
            match outcome {
                Ok(resp) => {
                    self.out.verbose(&format!(
                        "{} {shown_url} -> {} in {took}ms (attempt {attempt})",
                        req.method, resp.status
                    ));
                    self.log_response(&resp);
                    if resp.status == 429 {
                        limited += 1;
                    } else {
                        limited = 0;
                    }
                    match decide(&self.policy, &resp, failures, limited) {
                        Decision::Done => return Ok(resp),
                        Decision::TooLong(wait) => {
                            return Err(too_long(req, &self.policy, wait).into())
                        }
                        Decision::Retry { wait, spends } => {
                            if spends {
                                failures += 1;
                            }
                            self.stats.retried();
                            self.out.verbose(&format!(
                                "{} {shown_url}: {} — retrying in {}ms",
                                req.method,
                                resp.status,
                                wait.as_millis()
                            ));
                            self.pause(wait).await;
                        }
                    }
                }
                Err(err) if err.is_builder() => {
                    // Nothing was sent: a header or URL that cannot be sent at all.
                    return Err(failed(format!(
                        "{} {shown_url} could not be sent: {}",
                        req.method,
                        describe_network_error(&err)
                    ))
                    .hint("check the headers and URL the connector builds (run with --dry-run to see them)")
                    .into());
                }
                Err(err) => {
                    let reason = describe_network_error(&err);
                    self.out.verbose(&format!(
                        "{} {shown_url} -> network error after {took}ms (attempt {attempt}): {reason}",
                        req.method
                    ));
                    if !req.idempotent() {
                        return Err(failed(format!(
                            "{} {shown_url} failed: {reason}",
                            req.method
                        ))
                        .hint(format!(
                            "{} is not retried after a network failure because the server may have applied it; check the destination before running it again",
                            req.method
                        ))
                        .into());
                    }
                    failures += 1;
                    if failures >= self.policy.retry.max_attempts {
                        // A timeout is cured by a longer timeout, not by more
                        // attempts that time out the same way.
                        let hint = if err.is_timeout() {
                            format!(
                                "every attempt took longer than the timeout of {}s; raise \"timeoutSecs\" in {} (a number, or {{\"connect\": N, \"total\": N}}) if the server is just slow",
                                self.policy.timeout.as_secs_f64(),
                                self.policy.source
                            )
                        } else {
                            "check that the server is reachable and baseUrl in account.json is right; raise \"retry\": {\"maxAttempts\": N} to try longer".to_string()
                        };
                        return Err(failed(format!(
                            "{} {shown_url} failed after {attempt} attempts: {reason}",
                            req.method
                        ))
                        .hint(hint)
                        .into());
                    }
                    let wait = backoff(&self.policy, failures);
                    self.stats.retried();
                    self.out.verbose(&format!(
                        "{} {shown_url}: retrying in {}ms",
                        req.method,
                        wait.as_millis()
                    ));
                    self.pause(wait).await;
                }
            }
        }
    }

    /// Wait before a retry; a replay does not, the server's wait was spent
    /// when it was recorded.
    pub(super) async fn pause(&self, wait: Duration) {
        if !matches!(&self.cassette, Some(c) if c.mode() == Mode::Replay) {
            self.clock.sleep(wait).await;
        }
    }

    /// One attempt on the wire, bounded by the total timeout.
    async fn attempt(&self, req: &RequestSpec, url: &url::Url) -> reqwest::Result<Response> {
        let method =
            reqwest::Method::from_bytes(req.method.as_bytes()).unwrap_or(reqwest::Method::GET);
        let mut b = self
            .client
            .request(method, url.clone())
            .timeout(self.policy.timeout);
        for (k, v) in req.wire_headers() {
            b = b.header(k, v);
        }
        b = match &req.body {
            None => b,
            // A JSON value always serializes (its keys are strings).
            Some(Body::Json(v)) => b.body(serde_json::to_vec(v).unwrap_or_default()),
            Some(Body::Form(fields)) => b.body(
                url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(fields)
                    .finish(),
            ),
            Some(Body::Text(text)) => b.body(text.clone()),
        };
        let resp = b.send().await?;
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        // UTF-8 checked in one pass; `text()` decodes through a lossy
        // scanner that cost an import a few percent of its CPU.
        let bytes = resp.bytes().await?;
        let body = match String::from_utf8(bytes.into()) {
            Ok(text) => text,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        };
        Ok(Response {
            status,
            headers,
            body,
        })
    }

    fn log_request(&self, req: &RequestSpec) {
        if self.out.verbosity() < crate::output::Verbosity::Debug {
            return;
        }
        let mut text = format!("> {} {}", req.method, req.shown_url());
        for (k, v) in &req.wire_headers() {
            text.push_str(&format!("\n> {k}: {}", header_value(k, v)));
        }
        match &req.body {
            Some(Body::Json(v)) => {
                text.push_str(&format!("\n> {}", redact_body_text(&v.to_string())))
            }
            Some(Body::Form(fields)) => {
                let form: Vec<String> = fields
                    .iter()
                    .map(|(k, v)| format!("{k}={}", header_value(k, v)))
                    .collect();
                text.push_str(&format!("\n> {}", form.join("&")));
            }
            Some(Body::Text(body)) => text.push_str(&format!("\n> {}", redact_body_text(body))),
            None => {}
        }
        self.out.debug(&text);
    }

    fn log_response(&self, resp: &Response) {
        if self.out.verbosity() < crate::output::Verbosity::Debug {
            return;
        }
        let mut text = format!("< {}", resp.status);
        for (k, v) in &resp.headers {
            text.push_str(&format!("\n< {k}: {}", header_value(k, v)));
        }
        if !resp.body.is_empty() {
            let mut body = redact_body_text(&resp.body);
            if body.len() > 4000 {
                let cut: String = body.chars().take(4000).collect();
                body = format!("{cut}… ({} bytes)", resp.body.len());
            }
            text.push_str(&format!("\n< {body}"));
        }
        self.out.debug(&text);
    }
}

/// The retry policy, in one place: what to do after an attempt answered `resp`,
/// given `failures` attempts already spent and `limited` consecutive 429s.
fn decide(policy: &Policy, resp: &Response, failures: u32, limited: u32) -> Decision {
    match resp.status {
        429 => {
            if limited > MAX_RATE_LIMITED || policy.is_quota_spent(&resp.body) {
                return Decision::Done;
            }
            let wait = rate_limit_wait(resp, policy.reset_header.as_deref(), SystemTime::now())
                .unwrap_or_else(|| backoff(policy, limited));
            if wait > policy.retry.max_wait {
                Decision::TooLong(wait)
            } else {
                Decision::Retry {
                    wait,
                    spends: false,
                }
            }
        }
        408 | 500 | 502..=599 => {
            if failures + 1 >= policy.retry.max_attempts {
                Decision::Done
            } else {
                Decision::Retry {
                    wait: backoff(policy, failures + 1),
                    spends: true,
                }
            }
        }
        _ => Decision::Done,
    }
}

/// How long a 429 asks to wait: `Retry-After` (seconds or an HTTP date),
/// else the vendor's reset header (seconds, or a Unix time when large).
fn rate_limit_wait(
    resp: &Response,
    reset_header: Option<&str>,
    now: SystemTime,
) -> Option<Duration> {
    if let Some(v) = resp.header("retry-after") {
        let v = v.trim();
        if let Ok(secs) = v.parse::<f64>() {
            return Some(seconds(secs));
        }
        if let Ok(at) = httpdate::parse_http_date(v) {
            return Some(at.duration_since(now).unwrap_or(Duration::ZERO));
        }
    }
    let names = reset_header
        .into_iter()
        .chain(["x-ratelimit-reset", "ratelimit-reset"]);
    for name in names {
        if let Some(secs) = resp.header(name).and_then(|v| v.trim().parse::<f64>().ok()) {
            if secs > 1e9 {
                let now_secs = now
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map(|d| d.as_secs_f64())
                    .unwrap_or(0.0);
                return Some(seconds(secs - now_secs));
            }
            return Some(seconds(secs));
        }
    }
    None
}

/// A server's number of seconds as a wait: negative and NaN are none, and
/// anything past a billion seconds (or infinite) is capped there, so a
/// hostile `Retry-After: NaN` or `1e300` cannot panic the conversion; the
/// maximum wait turns a long one into an error.
fn seconds(secs: f64) -> Duration {
    if secs.is_nan() || secs <= 0.0 {
        Duration::ZERO
    } else {
        Duration::from_secs_f64(secs.min(1e9))
    }
}

/// Exponential backoff with full jitter: a random wait between zero and
/// `base × 2^(n-1)`, capped at [`MAX_BACKOFF`].
fn backoff(policy: &Policy, n: u32) -> Duration {
    let cap = policy
        .retry
        .base_delay
        .saturating_mul(2u32.saturating_pow(n.saturating_sub(1).min(20)))
        .min(MAX_BACKOFF);
    let ms = cap.as_millis() as u64;
    Duration::from_millis(if ms == 0 {
        0
    } else {
        rand::random_range(0..=ms)
    })
}

/// The error for a final non-2xx response.
pub fn status_error(req: &RequestSpec, resp: &Response) -> Failure {
    let reason = reqwest::StatusCode::from_u16(resp.status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    let mut message = format!(
        "{} {} answered {} {reason}",
        req.method,
        req.shown_url(),
        resp.status
    );
    message = message.trim_end().to_string();
    if let Some(m) = vendor_message(&resp.body) {
        message.push_str(&format!(": {}", redact_body_text(&m)));
    }
    let failure = match resp.status {
        404 => not_found(message),
        _ => Failure::new(Kind::Failed, message),
    };
    match resp.status {
        401 | 403 => failure.hint("check the credentials in account.json (and the variables of .env it refers to)"),
        429 => failure.hint(format!("the API kept answering 429 ({MAX_RATE_LIMITED} waits); lower \"rateLimit\" in account.json or try again later")),
        408 | 500 | 502..=599 => failure.hint("the server failed after every retry; try again later or raise \"retry\": {\"maxAttempts\": N} in account.json"),
        404 => failure.hint("check the id and the path; -v shows each URL requested"),
        400..=499 => failure.hint("the API refused the request as sent: compare it with the API's documentation (-vv shows it on the wire, --dry-run without sending it)"),
        _ => failure,
    }
}

fn too_long(req: &RequestSpec, policy: &Policy, wait: Duration) -> Failure {
    let secs = wait.as_secs_f64().ceil() as u64;
    failed(format!(
        "{} {} was rate limited (429) and asked to wait {secs}s, more than the maximum wait of {}s",
        req.method,
        req.shown_url(),
        policy.retry.max_wait.as_secs()
    ))
    .hint(if secs <= super::policy::MAX_WAIT_SECS_RANGE.1 {
        format!(
            "try again later, or raise \"retry\": {{\"maxWaitSecs\": {secs}}} in {}",
            policy.source
        )
    } else {
        // No maxWaitSecs reaches that far: waiting it out is no answer.
        "try again later: the API asked for a wait longer than ferry waits at all (a day)"
            .to_string()
    })
}

/// A network error's causes without the URL (reqwest puts the raw URL, with
/// its query, into its own message).
fn describe_network_error(err: &reqwest::Error) -> String {
    let kind = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "could not connect"
    } else {
        "connection failed"
    };
    let mut causes = Vec::new();
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        let text = s.to_string();
        if !causes.contains(&text) {
            causes.push(text);
        }
        source = s.source();
    }
    let causes: Vec<String> = causes.iter().map(|c| redact_url(c)).collect();
    if causes.is_empty() {
        kind.to_string()
    } else {
        format!("{kind} ({})", causes.join(": "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(status: u16, headers: &[(&str, &str)]) -> Response {
        Response {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: String::new(),
        }
    }

    #[test]
    fn retry_after_reads_seconds_dates_and_reset_headers() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let r = resp(429, &[("Retry-After", "3")]);
        assert_eq!(rate_limit_wait(&r, None, now), Some(Duration::from_secs(3)));
        let date = httpdate::fmt_http_date(now + Duration::from_secs(7));
        let r = resp(429, &[("retry-after", &date)]);
        assert_eq!(rate_limit_wait(&r, None, now), Some(Duration::from_secs(7)));
        let r = resp(429, &[("X-Vendor-Reset", "1800000004")]);
        assert_eq!(
            rate_limit_wait(&r, Some("x-vendor-reset"), now),
            Some(Duration::from_secs(4))
        );
        let r = resp(429, &[("X-RateLimit-Reset", "2")]);
        assert_eq!(rate_limit_wait(&r, None, now), Some(Duration::from_secs(2)));
        assert_eq!(rate_limit_wait(&resp(429, &[]), None, now), None);
        for hostile in ["NaN", "inf", "-inf", "1e300", "-1e300"] {
            let r = resp(429, &[("Retry-After", hostile)]);
            assert!(rate_limit_wait(&r, None, now).is_some(), "{hostile}");
            let r = resp(429, &[("X-RateLimit-Reset", hostile)]);
            assert!(rate_limit_wait(&r, None, now).is_some(), "{hostile}");
        }
    }

    #[test]
    fn a_spent_quota_is_answered_at_once() {
        let p = Policy {
            quota_spent: Some(("/policyName".into(), "DAILY".into())),
            ..Policy::default()
        };
        let mut r = resp(429, &[]);
        r.body = r#"{"errorType": "RATE_LIMIT", "policyName": "DAILY"}"#.into();
        assert_eq!(decide(&p, &r, 0, 0), Decision::Done);
        r.body = r#"{"errorType": "RATE_LIMIT", "policyName": "TEN_SECONDLY_ROLLING"}"#.into();
        assert!(matches!(
            decide(&p, &r, 0, 0),
            Decision::Retry { spends: false, .. }
        ));
    }

    #[test]
    fn the_policy_retries_what_it_should() {
        let p = Policy::default();
        assert_eq!(decide(&p, &resp(200, &[]), 0, 0), Decision::Done);
        assert_eq!(decide(&p, &resp(404, &[]), 0, 0), Decision::Done);
        assert_eq!(decide(&p, &resp(501, &[]), 0, 0), Decision::Done);
        assert!(matches!(
            decide(&p, &resp(503, &[]), 0, 0),
            Decision::Retry { spends: true, .. }
        ));
        assert!(matches!(
            decide(&p, &resp(408, &[]), 0, 0),
            Decision::Retry { spends: true, .. }
        ));
        assert_eq!(decide(&p, &resp(500, &[]), 4, 0), Decision::Done);
        assert_eq!(
            decide(&p, &resp(429, &[("Retry-After", "1")]), 4, 1),
            Decision::Retry {
                wait: Duration::from_secs(1),
                spends: false
            }
        );
        assert_eq!(
            decide(&p, &resp(429, &[("Retry-After", "3600")]), 0, 1),
            Decision::TooLong(Duration::from_secs(3600))
        );
        assert_eq!(
            decide(
                &p,
                &resp(429, &[("Retry-After", "1")]),
                0,
                MAX_RATE_LIMITED + 1
            ),
            Decision::Done
        );
    }

    #[test]
    fn backoff_is_jittered_below_its_cap() {
        let p = Policy::default();
        for n in 1..40 {
            let cap = p
                .retry
                .base_delay
                .saturating_mul(2u32.saturating_pow((n - 1).min(20)))
                .min(MAX_BACKOFF);
            assert!(backoff(&p, n) <= cap);
        }
    }
}
