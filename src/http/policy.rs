//! The limits an HTTP connector runs under: rate limits per endpoint group,
//! the retry budget and timeouts. A connector declares its defaults (from the
//! vendor's documentation); `rateLimit`, `retry` and `timeoutSecs` in
//! account.json override them. The defaults are written here once.

use std::time::Duration;

use anyhow::Result;
use serde::Deserialize;
use serde_json::Value;

use crate::error::usage;
use crate::range::{self, At};

/// Requests per second the default policy allows.
pub const DEFAULT_RPS: f64 = 10.0;
/// Requests that may start at once after a quiet moment.
pub const DEFAULT_BURST: u32 = 10;
/// Requests of one group that may be in flight at once.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 8;
/// Attempts per request for 408, 5xx (but 501) and network failures.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;
/// The longest single wait a 429 may ask for before the command fails.
pub const DEFAULT_MAX_WAIT_SECS: u64 = 60;
/// The first backoff step; each retry doubles it (full jitter).
pub const DEFAULT_BASE_DELAY_MS: u64 = 500;
/// No backoff step is longer than this.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Consecutive 429 answers accepted before giving up: a 429 wait does not
/// spend the retry budget, but an API that never lets go must not hang ferry.
pub const MAX_RATE_LIMITED: u32 = 20;
/// Time to open a connection, per attempt.
pub const DEFAULT_CONNECT_TIMEOUT_SECS: u64 = 10;
/// Time for a whole attempt (connect, send, read the body).
pub const DEFAULT_TIMEOUT_SECS: u64 = 30;

/// A token bucket and a cap on requests in flight.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    pub rps: f64,
    pub burst: u32,
    pub max_in_flight: usize,
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit {
            rps: DEFAULT_RPS,
            burst: DEFAULT_BURST,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
        }
    }
}

/// A named set of endpoints sharing one rate limit, matched by method and
/// path pattern (`*` matches within one path segment, `**` across segments).
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub name: String,
    /// Methods it covers; empty means every method.
    pub methods: Vec<String>,
    pub path: String,
    pub limit: RateLimit,
}

impl Group {
    pub fn matches(&self, method: &str, path: &str) -> bool {
        (self.methods.is_empty() || self.methods.iter().any(|m| m.eq_ignore_ascii_case(method)))
            && glob(self.path.as_bytes(), path.as_bytes())
    }
}

/// The retry budget.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Retry {
    pub max_attempts: u32,
    pub max_wait: Duration,
    pub base_delay: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            max_wait: Duration::from_secs(DEFAULT_MAX_WAIT_SECS),
            base_delay: Duration::from_millis(DEFAULT_BASE_DELAY_MS),
        }
    }
}

/// Everything the engine needs to know about one connector's API.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// For requests that match no group.
    pub default: RateLimit,
    pub groups: Vec<Group>,
    pub retry: Retry,
    pub connect_timeout: Duration,
    pub timeout: Duration,
    /// A vendor header that tells when a 429's limit resets (seconds to
    /// wait, or a Unix time), read when there is no `Retry-After`.
    pub reset_header: Option<String>,
    /// A 429 whose JSON body holds this value at this JSON pointer (e.g.
    /// `("/policyName", "DAILY")`) is a spent quota that no short wait
    /// restores: it is answered at once instead of waited on.
    pub quota_spent: Option<(String, String)>,
    /// Where the account file is, for messages about overrides.
    pub source: String,
    /// What to check when the API answers 401 or 403, naming how this
    /// connector authenticates (a manifest's auth, a module's values);
    /// `None` keeps the hint of the connector's own error wording.
    pub auth_hint: Option<String>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            default: RateLimit::default(),
            groups: Vec::new(),
            retry: Retry::default(),
            connect_timeout: Duration::from_secs(DEFAULT_CONNECT_TIMEOUT_SECS),
            timeout: Duration::from_secs(DEFAULT_TIMEOUT_SECS),
            reset_header: None,
            quota_spent: None,
            source: "account.json".to_string(),
            auth_hint: None,
        }
    }
}

/// The rates a token bucket can keep: a period from 1000 s down to 1 µs
/// (a local test server answers hundreds of thousands of requests a second).
pub const RPS_RANGE: (f64, f64) = (0.001, 1_000_000.0);
/// Bursts and in-flight caps beyond these are no limit at all, and a
/// semaphore refuses permits past a few billion.
pub const BURST_RANGE: (u64, u64) = (1, 100_000);
pub const MAX_IN_FLIGHT_RANGE: (u64, u64) = (1, 10_000);
/// Attempts per request: at least the first one.
pub const MAX_ATTEMPTS_RANGE: (u64, u64) = (1, 100);
/// The longest 429 wait one may accept: a day.
pub const MAX_WAIT_SECS_RANGE: (u64, u64) = (0, 86_400);
/// The first backoff step: up to ten minutes.
pub const BASE_DELAY_MS_RANGE: (u64, u64) = (0, 600_000);
/// Timeouts: from a millisecond to a day (a `Duration` overflows long before 1e20 s).
pub const TIMEOUT_SECS_RANGE: (f64, f64) = (0.001, 86_400.0);

/// `rateLimit` in account.json or connector.json, for all groups or for one.
/// Numbers are read as JSON numbers and range-checked by [`RateLimitOverride::check`],
/// so `1e20` is an error naming the key and its range, not a type mismatch.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RateLimitOverride {
    /// Requests per second (may be fractional: 0.5 is one every two seconds).
    pub rps: Option<f64>,
    /// Requests that may start at once after a quiet moment.
    pub burst: Option<f64>,
    /// Requests in flight at once.
    pub max_in_flight: Option<f64>,
}

impl RateLimitOverride {
    /// Refuse a number outside its range; `prefix` is the JSON path of the
    /// object (`rateLimit`, `rateLimit.bulk`).
    pub fn check(&self, source: &str, prefix: &str) -> Result<()> {
        let key = |k: &str| format!("{prefix}.{k}");
        if let Some(r) = self.rps {
            let (min, max) = RPS_RANGE;
            range::float(
                r,
                At::file(source, &key("rps")),
                min,
                max,
                "requests per second",
            )?;
        }
        if let Some(b) = self.burst {
            let (min, max) = BURST_RANGE;
            range::whole(b, At::file(source, &key("burst")), min, max, "requests")?;
        }
        if let Some(m) = self.max_in_flight {
            let (min, max) = MAX_IN_FLIGHT_RANGE;
            range::whole(
                m,
                At::file(source, &key("maxInFlight")),
                min,
                max,
                "requests",
            )?;
        }
        Ok(())
    }

    /// Apply the override (checked first with [`RateLimitOverride::check`]).
    pub fn apply(&self, to: &mut RateLimit) {
        if let Some(r) = self.rps {
            to.rps = r;
        }
        if let Some(b) = self.burst {
            to.burst = b as u32;
        }
        if let Some(m) = self.max_in_flight {
            to.max_in_flight = m as usize;
        }
    }
}

/// `retry` in account.json or connector.json.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RetryOverride {
    /// Attempts per request for 408, 5xx and network failures (1 = no retry).
    pub max_attempts: Option<f64>,
    /// The longest 429 wait accepted, in seconds.
    pub max_wait_secs: Option<f64>,
    /// The first backoff step in milliseconds.
    pub base_delay_ms: Option<f64>,
}

impl RetryOverride {
    /// Refuse a number outside its range; `prefix` is the object's JSON path.
    pub fn check(&self, source: &str, prefix: &str) -> Result<()> {
        let key = |k: &str| format!("{prefix}.{k}");
        let fields = [
            (
                self.max_attempts,
                "maxAttempts",
                MAX_ATTEMPTS_RANGE,
                "attempts",
            ),
            (
                self.max_wait_secs,
                "maxWaitSecs",
                MAX_WAIT_SECS_RANGE,
                "seconds",
            ),
            (
                self.base_delay_ms,
                "baseDelayMs",
                BASE_DELAY_MS_RANGE,
                "milliseconds",
            ),
        ];
        for (value, name, (min, max), unit) in fields {
            if let Some(v) = value {
                range::whole(v, At::file(source, &key(name)), min, max, unit)?;
            }
        }
        Ok(())
    }

    /// Apply the override (checked first with [`RetryOverride::check`]).
    pub fn apply(&self, to: &mut Retry) {
        if let Some(a) = self.max_attempts {
            to.max_attempts = a as u32;
        }
        if let Some(w) = self.max_wait_secs {
            to.max_wait = Duration::from_secs(w as u64);
        }
        if let Some(d) = self.base_delay_ms {
            to.base_delay = Duration::from_millis(d as u64);
        }
    }
}

/// Parse `value` as `T`, naming the JSON path of a mistake: `source: key.path: message`.
pub fn parse_at<T: serde::de::DeserializeOwned>(
    value: &Value,
    source: &str,
    key: &str,
) -> Result<T> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let at = if path == "." {
            key.to_string()
        } else {
            format!("{key}.{path}")
        };
        usage(format!("{source}: {at}: {}", e.inner())).into()
    })
}

/// A number of seconds in [`TIMEOUT_SECS_RANGE`] (a number, or a string holding one).
fn read_timeout(v: &Value, source: &str, at: &str) -> Result<Duration> {
    let secs = match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    let Some(secs) = secs else {
        return Err(usage(format!(
            "{source}: {at}: expected a positive number of seconds"
        ))
        .hint("give a number of seconds, or {\"connect\": 10, \"total\": 30}")
        .into());
    };
    let (min, max) = TIMEOUT_SECS_RANGE;
    let secs = range::float(secs, At::file(source, at), min, max, "seconds")?;
    Ok(Duration::from_secs_f64(secs))
}

impl Policy {
    /// Apply the account's `rateLimit`, `retry` and `timeoutSecs`, checking
    /// their ranges. `rateLimit` is either `{"rps", "burst", "maxInFlight"}`
    /// for every group, or `{"GROUP": {...}, "default": {...}}` for named ones.
    pub fn apply_overrides(
        &mut self,
        rate_limit: Option<&Value>,
        retry: Option<&Value>,
        timeout_secs: Option<&Value>,
    ) -> Result<()> {
        let source = self.source.clone();
        if let Some(v) = rate_limit {
            let flat = v.as_object().is_some_and(|m| {
                m.keys()
                    .any(|k| ["rps", "burst", "maxInFlight"].contains(&k.as_str()))
            });
            if flat || !v.is_object() {
                let o: RateLimitOverride = parse_at(v, &source, "rateLimit")?;
                o.check(&source, "rateLimit")?;
                o.apply(&mut self.default);
                for g in &mut self.groups {
                    o.apply(&mut g.limit);
                }
            } else if let Some(map) = v.as_object() {
                for (name, gv) in map {
                    let at = format!("rateLimit.{name}");
                    let o: RateLimitOverride = parse_at(gv, &source, &at)?;
                    o.check(&source, &at)?;
                    if name == "default" {
                        o.apply(&mut self.default);
                        continue;
                    }
                    let Some(g) = self.groups.iter_mut().find(|g| &g.name == name) else {
                        let mut known: Vec<&str> =
                            self.groups.iter().map(|g| g.name.as_str()).collect();
                        known.insert(0, "default");
                        return Err(usage(format!("{source}: rateLimit.{name}: no endpoint group named \"{name}\""))
                            .hint(format!("the groups are: {}; or give {{\"rps\", \"burst\", \"maxInFlight\"}} for all of them", known.join(", ")))
                            .into());
                    };
                    o.apply(&mut g.limit);
                }
            }
        }
        if let Some(v) = retry {
            let o: RetryOverride = parse_at(v, &source, "retry")?;
            o.check(&source, "retry")?;
            o.apply(&mut self.retry);
        }
        if let Some(v) = timeout_secs {
            // A number is the whole attempt; {"connect": N, "total": N} sets either.
            match v {
                Value::Object(m) => {
                    for (key, v) in m {
                        let secs = read_timeout(v, &source, &format!("timeoutSecs.{key}"))?;
                        match key.as_str() {
                            "connect" => self.connect_timeout = secs,
                            "total" => self.timeout = secs,
                            _ => {
                                return Err(usage(format!(
                                    "{source}: timeoutSecs.{key}: unknown timeout"
                                ))
                                .hint(
                                    "give a number of seconds, or {\"connect\": 10, \"total\": 30}",
                                )
                                .into())
                            }
                        }
                    }
                }
                other => self.timeout = read_timeout(other, &source, "timeoutSecs")?,
            }
        }
        self.validate()
    }

    /// Refuse limits that would stall or divide by zero.
    pub fn validate(&self) -> Result<()> {
        let source = &self.source;
        let all = std::iter::once(("default", &self.default))
            .chain(self.groups.iter().map(|g| (g.name.as_str(), &g.limit)));
        for (name, l) in all {
            if !(l.rps > 0.0 && l.rps.is_finite()) || l.burst == 0 || l.max_in_flight == 0 {
                return Err(usage(format!(
                    "{source}: rateLimit of group \"{name}\" must have rps > 0, burst >= 1 and maxInFlight >= 1"
                ))
                .into());
            }
        }
        if self.retry.max_attempts == 0 {
            return Err(usage(format!("{source}: retry.maxAttempts must be at least 1")).into());
        }
        Ok(())
    }

    /// Whether a 429 answered `body` for a quota that waiting will not restore.
    pub fn is_quota_spent(&self, body: &str) -> bool {
        let Some((pointer, value)) = &self.quota_spent else {
            return false;
        };
        serde_json::from_str::<Value>(body)
            .ok()
            .and_then(|v| {
                v.pointer(pointer)
                    .and_then(Value::as_str)
                    .map(|s| s == value)
            })
            .unwrap_or(false)
    }

    /// The group `method path` falls in, or `None` for the default policy.
    pub fn group_index(&self, method: &str, path: &str) -> Option<usize> {
        self.groups.iter().position(|g| g.matches(method, path))
    }
}

/// Glob match: `*` within one path segment, `**` across segments.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    match pattern.first() {
        None => text.is_empty(),
        Some(b'*') if pattern.get(1) == Some(&b'*') => {
            let rest = &pattern[2..];
            (0..=text.len()).any(|i| glob(rest, &text[i..]))
        }
        Some(b'*') => {
            let rest = &pattern[1..];
            let seg_end = text.iter().position(|&c| c == b'/').unwrap_or(text.len());
            (0..=seg_end).any(|i| glob(rest, &text[i..]))
        }
        Some(&c) => text.first() == Some(&c) && glob(&pattern[1..], &text[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn group(name: &str, path: &str) -> Group {
        Group {
            name: name.into(),
            methods: vec![],
            path: path.into(),
            limit: RateLimit::default(),
        }
    }

    #[test]
    fn groups_match_by_path_pattern_and_fall_back_to_default() {
        let p = Policy {
            groups: vec![
                group("bulk", "/customers/bulk"),
                group("one", "/customers/*"),
                group("v", "/v1/**"),
            ],
            ..Policy::default()
        };
        assert_eq!(p.group_index("POST", "/customers/bulk"), Some(0));
        assert_eq!(p.group_index("GET", "/customers/c1"), Some(1));
        assert_eq!(p.group_index("GET", "/customers/c1/notes"), None);
        assert_eq!(p.group_index("GET", "/v1/a/b/c"), Some(2));
        assert_eq!(p.group_index("GET", "/other"), None);
    }

    #[test]
    fn timeouts_take_seconds_or_connect_and_total() {
        let mut p = Policy::default();
        p.apply_overrides(None, None, Some(&json!(3))).unwrap();
        assert_eq!(p.timeout, Duration::from_secs(3));
        p.apply_overrides(None, None, Some(&json!({"connect": 2, "total": "40"})))
            .unwrap();
        assert_eq!(p.connect_timeout, Duration::from_secs(2));
        assert_eq!(p.timeout, Duration::from_secs(40));
        let err = p
            .apply_overrides(None, None, Some(&json!({"read": 1})))
            .unwrap_err();
        assert!(err.to_string().contains("timeoutSecs.read"), "{err}");
        let err = p.apply_overrides(None, None, Some(&json!(0))).unwrap_err();
        assert_eq!(
            err.to_string(),
            "account.json: timeoutSecs: 0 is out of range: expected 0.001 to 86400 seconds"
        );
        for huge in [json!(1e20), json!({"total": 1e300}), json!({"connect": -1})] {
            let err = p.apply_overrides(None, None, Some(&huge)).unwrap_err();
            assert!(err.to_string().contains("is out of range"), "{err}");
        }
    }

    #[test]
    fn account_overrides_apply_flat_or_per_group() {
        let mut p = Policy {
            groups: vec![group("bulk", "/bulk")],
            ..Policy::default()
        };
        p.apply_overrides(
            Some(&json!({"rps": 2, "burst": 1})),
            Some(&json!({"maxWaitSecs": 5})),
            Some(&json!(3)),
        )
        .unwrap();
        assert_eq!(p.default.rps, 2.0);
        assert_eq!(p.groups[0].limit.burst, 1);
        assert_eq!(p.retry.max_wait, Duration::from_secs(5));
        assert_eq!(p.timeout, Duration::from_secs(3));
        p.apply_overrides(Some(&json!({"bulk": {"rps": 0.5}})), None, None)
            .unwrap();
        assert_eq!(p.groups[0].limit.rps, 0.5);
        assert_eq!(p.default.rps, 2.0);
    }

    #[test]
    fn override_mistakes_name_their_path() {
        let mut p = Policy::default();
        let err = p
            .apply_overrides(Some(&json!({"rps": "fast"})), None, None)
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("account.json: rateLimit.rps: invalid type"),
            "{err}"
        );
        let err = p
            .apply_overrides(None, Some(&json!({"maxAttempt": 2})), None)
            .unwrap_err();
        assert!(
            err.to_string().contains("retry.maxAttempt: unknown field"),
            "{err}"
        );
        let err = p
            .apply_overrides(Some(&json!({"nope": {"rps": 1}})), None, None)
            .unwrap_err();
        assert!(
            err.to_string().contains("no endpoint group named \"nope\""),
            "{err}"
        );
        let err = p
            .apply_overrides(Some(&json!({"rps": 0})), None, None)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "account.json: rateLimit.rps: 0 is out of range: expected 0.001 to 1000000 requests per second"
        );
        let err = p
            .apply_overrides(None, Some(&json!({"maxAttempts": 1e20})), None)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "account.json: retry.maxAttempts: 1e20 is out of range: expected 1 to 100 attempts"
        );
        let err = p
            .apply_overrides(Some(&json!({"bulk": {"maxInFlight": 1e300}})), None, None)
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("rateLimit.bulk.maxInFlight: 1e300 is out of range"),
            "{err}"
        );
        let err = p
            .apply_overrides(
                Some(&json!({"default": {"maxInFlight": 1e300}})),
                None,
                None,
            )
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("account.json: rateLimit.default.maxInFlight: 1e300 is out of range"),
            "{err}"
        );
    }
}
