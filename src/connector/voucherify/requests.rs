//! Pure request building for the Voucherify Customers API: every request the
//! connector sends is made here without I/O, so `--dry-run` and unit tests
//! need no server. Also the shaping of a record into the body the API
//! documents (docs/connectors/voucherify.md §3–§4) and the listing cursor.

use anyhow::Result;
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use serde_json::{Map, Value};

use crate::connector::Record;
use crate::http::{segment, RequestSpec};

/// The largest page `GET /v1/customers` serves (`limit` 1–100).
pub const MAX_PAGE: usize = 100;
/// The most customers one bulk request may carry.
pub const MAX_BULK: usize = 100;

/// Fields the create and update bodies accept [CUST, RUBY].
pub const WRITABLE: &[&str] = &[
    "source_id",
    "name",
    "description",
    "email",
    "phone",
    "birthdate",
    "birthday",
    "address",
    "metadata",
];

/// Fields Voucherify computes; a record read from Voucherify carries them,
/// and they are left out of what is written back.
pub const READ_ONLY: &[&str] = &[
    "id",
    "object",
    "created_at",
    "updated_at",
    "summary",
    "loyalty",
    "referrals",
    "system_metadata",
    "assets",
];

/// Where requests go and the two credentials every request carries.
#[derive(Debug, Clone)]
pub struct Api {
    pub base_url: String,
    pub app_id: String,
    pub secret_key: String,
}

impl Api {
    fn request(&self, method: &str, path_and_query: &str) -> RequestSpec {
        RequestSpec::new(
            method,
            format!("{}{path_and_query}", self.base_url.trim_end_matches('/')),
        )
        .header("X-App-Id", &self.app_id)
        .header("X-App-Token", &self.secret_key)
        .header("Accept", "application/json")
    }

    fn with_body(&self, method: &str, path: &str, body: Value) -> RequestSpec {
        self.request(method, path)
            .header("Content-Type", "application/json")
            .json(body)
    }

    /// `GET /v1/customers/{id}`: a Voucherify id or a source_id.
    pub fn get(&self, id: &str) -> RequestSpec {
        self.request("GET", &format!("/v1/customers/{}", segment(id)))
    }

    /// `POST /v1/customers`: creates, or updates the customer with this source_id.
    pub fn create(&self, body: Value) -> RequestSpec {
        self.with_body("POST", "/v1/customers", body)
    }

    /// `PUT /v1/customers/{id}`: parameters not sent are left unchanged.
    pub fn update(&self, id: &str, body: Value) -> RequestSpec {
        self.with_body("PUT", &format!("/v1/customers/{}", segment(id)), body)
    }

    /// `DELETE /v1/customers/{id}`.
    pub fn delete(&self, id: &str) -> RequestSpec {
        self.request("DELETE", &format!("/v1/customers/{}", segment(id)))
    }

    /// `GET /v1/customers?...` with `query` in order.
    pub fn list(&self, query: &[(&str, String)]) -> RequestSpec {
        let q = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())))
            .finish();
        self.request("GET", &format!("/v1/customers?{q}"))
    }

    /// `POST /v1/customers/bulk/async`: a JSON array of at most 100 customers.
    pub fn bulk(&self, customers: Vec<Value>) -> RequestSpec {
        self.with_body("POST", "/v1/customers/bulk/async", Value::Array(customers))
    }

    /// `GET /v1/async-actions/{id}`: the state of a bulk job.
    pub fn async_action(&self, id: &str) -> RequestSpec {
        self.request("GET", &format!("/v1/async-actions/{}", segment(id)))
    }
}

/// Why a record cannot be written as a Voucherify customer.
#[derive(Debug, Clone, PartialEq)]
pub struct Unfit(pub String);

/// The body of a create or bulk upsert: the writable fields of `record`,
/// read-only fields dropped, nulls left out (a parameter not sent is left
/// unchanged, which the API documents; what a null does on create is not
/// documented), `birthdate` as `YYYY-MM-DD`. Any other field is refused,
/// so nothing is dropped silently.
pub fn customer_body(record: &Record, keep_nulls: bool) -> std::result::Result<Value, Unfit> {
    let mut body = Map::new();
    let mut unknown = Vec::new();
    for (key, value) in record {
        if READ_ONLY.contains(&key.as_str()) {
            continue;
        }
        if !WRITABLE.contains(&key.as_str()) {
            unknown.push(key.as_str());
            continue;
        }
        if value.is_null() && !keep_nulls {
            continue;
        }
        let value = match (key.as_str(), value) {
            ("birthdate" | "birthday", Value::String(s)) => Value::String(
                api_date(s)
                    .ok_or_else(|| Unfit(format!("{key} \"{s}\" is not a date (YYYY-MM-DD)")))?,
            ),
            ("address" | "metadata", v) if !v.is_object() && !v.is_null() => {
                return Err(Unfit(format!("{key} must be an object")))
            }
            (_, v) => v.clone(),
        };
        body.insert(key.clone(), value);
    }
    if !unknown.is_empty() {
        return Err(Unfit(format!(
            "{} not a Voucherify customer field (the fields are {}); put custom attributes under metadata, or map or drop them with --map",
            match unknown.as_slice() {
                [one] => format!("\"{one}\" is"),
                many => format!("\"{}\" are", many.join("\", \"")),
            },
            WRITABLE.join(", ")
        )));
    }
    Ok(Value::Object(body))
}

/// A date as the API writes it: `YYYY-MM-DD`; an ISO 8601 date-time keeps
/// its date. The same rule as import's validation of a `date` field, so an
/// `insert` and an import accept the same birthdates.
pub fn api_date(s: &str) -> Option<String> {
    crate::connector::spec::iso_date(s)
}

/// Where a timestamp-ordered listing stands ([`crate::connector::mark`]):
/// the next request asks for customers after one millisecond earlier than
/// the mark and skips the ids read at its time.
pub type Mark = crate::connector::mark::Mark<DateTime<Utc>>;

/// Voucherify's spelling of a [`Mark`]: TIME is an ISO 8601 date-time.
pub trait MarkToken: Sized {
    /// `TIME` or `TIME|id,id` (the form written into checkpoints and nextSync).
    fn parse(token: &str) -> Result<Self>;
    fn token(&self) -> String;
    /// The value sent as `starting_after` / `updated_at[after]`.
    fn after(&self) -> String;
}

impl MarkToken for Mark {
    fn parse(token: &str) -> Result<Mark> {
        Mark::read_token(
            token,
            parse_time,
            "a Voucherify position",
            "an ISO 8601 date-time",
        )
    }

    fn token(&self) -> String {
        self.write(self.at.to_rfc3339_opts(SecondsFormat::Millis, true))
    }

    fn after(&self) -> String {
        (self.at - TimeDelta::milliseconds(1)).to_rfc3339_opts(SecondsFormat::Millis, true)
    }
}

pub use crate::connector::mark::parse_time;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connector::http::build::has_header;
    use serde_json::json;

    fn api() -> Api {
        Api {
            base_url: "https://api.voucherify.io/".into(),
            app_id: "app".into(),
            secret_key: "key".into(),
        }
    }

    fn rec(v: Value) -> Record {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn requests_carry_both_credentials_and_escape_ids() {
        let r = api().get("ada@example.com/x");
        assert_eq!(
            r.url,
            "https://api.voucherify.io/v1/customers/ada%40example.com%2Fx"
        );
        assert!(has_header(&r, "X-App-Id", "app"));
        assert!(has_header(&r, "X-App-Token", "key"));
        let l = api().list(&[
            ("limit", "100".into()),
            ("starting_after", "2024-01-01T00:00:00.000Z".into()),
        ]);
        assert_eq!(
            l.url,
            "https://api.voucherify.io/v1/customers?limit=100&starting_after=2024-01-01T00%3A00%3A00.000Z"
        );
    }

    #[test]
    fn bodies_keep_writable_fields_and_refuse_unknown_ones() {
        let body = customer_body(
            &rec(
                json!({"id": "cust_1", "source_id": "s1", "name": "Ada", "email": null,
                "birthdate": "1990-05-01T10:00:00Z", "created_at": "x"}),
            ),
            false,
        )
        .unwrap();
        assert_eq!(
            body,
            json!({"source_id": "s1", "name": "Ada", "birthdate": "1990-05-01"})
        );
        let err = customer_body(&rec(json!({"source_id": "s", "plan": "pro"})), false).unwrap_err();
        assert!(
            err.0
                .starts_with("\"plan\" is not a Voucherify customer field"),
            "{}",
            err.0
        );
        let err = customer_body(&rec(json!({"birthdate": "May 1st"})), false).unwrap_err();
        assert!(err.0.contains("not a date"));
        assert_eq!(
            customer_body(&rec(json!({"email": null})), true).unwrap(),
            json!({"email": null})
        );
    }

    #[test]
    fn marks_round_trip_and_cover_what_was_read() {
        let m = Mark::parse("2024-01-01T00:00:00.5Z|cust_a,cust_b").unwrap();
        assert_eq!(m.token(), "2024-01-01T00:00:00.500Z|cust_a,cust_b");
        assert_eq!(m.after(), "2024-01-01T00:00:00.499Z");
        let t = parse_time("2024-01-01T00:00:00.500Z").unwrap();
        assert!(m.covers(t, "cust_a"));
        assert!(!m.covers(t, "cust_c"));
        assert!(m.covers(parse_time("2023-12-31").unwrap(), "x"));
        let next = Mark::advance(Some(m), t, "cust_c");
        assert_eq!(next.seen, ["cust_a", "cust_b", "cust_c"]);
        assert_eq!(
            Mark::parse("2026-01-01").unwrap().token(),
            "2026-01-01T00:00:00.000Z"
        );
        assert!(Mark::parse("yesterday").is_err());
    }
}
