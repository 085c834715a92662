//! `ferry sandbox`: a local sample REST API of customers, to try connectors
//! without credentials and to benchmark against. It serves CRUD, offset and
//! cursor paging, an `updated_since` listing with deletions, a bulk upsert
//! with per-record results, and can play a difficult API: a bearer token,
//! 429s over a rate, seeded 500s and latency.
//!
//! Routes (JSON in and out, errors as `{"error": {"message"}}`):
//! - `GET /customers?offset=&limit=` → `{"data", "total", "has_more"}`
//! - `GET /customers?cursor=&limit=` → `{"data", "total", "next_cursor", "sync_token"}`
//!   (an empty `cursor=` starts at the beginning)
//! - `GET /customers?updated_since=SEQ&cursor=&limit=` → changes after SEQ in
//!   order, deletions as `{"id", "deleted": true, "seq"}`:
//!   `{"data", "next_cursor", "sync_token"}`
//! - `POST /customers`, `GET|PATCH|DELETE /customers/{id}`
//! - `GET /customers?email=ADDRESS` → the customers with that email, `{"data", "total", "has_more"}`
//! - `POST /customers/bulk {"records": [...]}` → `{"results": [{"index", "id", "status", "error"}]}`
//! - `PATCH` is a JSON merge patch: a field set to `null` is removed
//! - groups of customers for export's memberships: see [`groups`]

mod groups;
mod store;

use std::collections::HashMap;
use std::future::Future;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

#[cfg(test)]
use store::Entry;
pub use store::{generate, id_of, Store};
use store::{Record, WriteError};

/// The most records one page answers.
pub const MAX_LIMIT: usize = 1000;
/// The page size when `limit` is not given.
pub const DEFAULT_LIMIT: usize = 100;

/// How the sandbox behaves.
#[derive(Debug, Clone, Default)]
pub struct Config {
    pub records: u64,
    pub rate_limit: Option<f64>,
    pub fail_rate: f64,
    pub latency: Duration,
    pub token: Option<String>,
    pub seed: u64,
}

struct App {
    store: Mutex<Store>,
    groups: Mutex<groups::Groups>,
    config: Config,
    limiter: Option<DefaultDirectRateLimiter>,
    rng: Mutex<rand::rngs::StdRng>,
}

type Shared = Arc<App>;

/// Serve the sandbox on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(config))
        .with_graceful_shutdown(shutdown)
        .await
}

/// The sandbox's routes and middleware.
pub fn router(config: Config) -> Router {
    let limiter = config.rate_limit.filter(|r| *r > 0.0).map(|rps| {
        let period = Duration::from_secs_f64(1.0 / rps);
        let burst = NonZeroU32::new(rps.ceil() as u32).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::with_period(period)
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
            .allow_burst(burst);
        RateLimiter::direct(quota)
    });
    let app = Arc::new(App {
        store: Mutex::new(Store::new(config.records)),
        groups: Mutex::new(groups::Groups::default()),
        rng: Mutex::new(rand::rngs::StdRng::seed_from_u64(config.seed)),
        limiter,
        config,
    });
    Router::new()
        .route("/customers", get(list).post(create))
        .route("/customers/bulk", post(bulk))
        .route("/groups", get(groups::list).post(groups::create))
        .route(
            "/groups/{id}/members",
            get(groups::members)
                .post(groups::add)
                .delete(groups::remove),
        )
        .route(
            "/customers/{id}",
            get(fetch).patch(update).put(update).delete(remove),
        )
        .fallback(|| async {
            error(
                StatusCode::NOT_FOUND,
                "no such route; see `ferry sandbox --help`",
            )
        })
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            gatekeeper,
        ))
        .with_state(app)
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": { "message": message } }))).into_response()
}

/// Latency, the bearer token, the rate limit and injected failures, in that order.
async fn gatekeeper(State(app): State<Shared>, req: Request, next: Next) -> Response {
    if !app.config.latency.is_zero() {
        tokio::time::sleep(app.config.latency).await;
    }
    if let Some(token) = &app.config.token {
        let given = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if given != Some(token.as_str()) {
            return error(StatusCode::UNAUTHORIZED, "missing or invalid bearer token");
        }
    }
    if let Some(limiter) = &app.limiter {
        if let Err(not_until) = limiter.check() {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
            let mut resp = error(StatusCode::TOO_MANY_REQUESTS, "rate limit exceeded");
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                resp.headers_mut().insert("retry-after", v);
            }
            return resp;
        }
    }
    if app.config.fail_rate > 0.0 {
        let roll: f64 = app.rng.lock().map(|mut r| r.random()).unwrap_or(1.0);
        if roll < app.config.fail_rate {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "injected failure (--fail-rate)",
            );
        }
    }
    next.run(req).await
}

fn store(app: &App) -> std::sync::MutexGuard<'_, Store> {
    app.store.lock().unwrap_or_else(|e| e.into_inner())
}

fn write_error(e: WriteError) -> Response {
    match e {
        WriteError::NotFound(m) => error(StatusCode::NOT_FOUND, &m),
        WriteError::Invalid(m) => error(StatusCode::UNPROCESSABLE_ENTITY, &m),
        WriteError::Conflict(m) => error(StatusCode::CONFLICT, &m),
    }
}

/// A bad request's message.
struct Bad(String);

impl Bad {
    fn response(self) -> Response {
        error(StatusCode::BAD_REQUEST, &self.0)
    }
}

fn number(q: &HashMap<String, String>, key: &str) -> Result<Option<u64>, Bad> {
    match q.get(key).map(|s| s.trim()) {
        None | Some("") => Ok(None),
        Some(v) => v
            .parse()
            .map(Some)
            .map_err(|_| Bad(format!("{key} must be a whole number"))),
    }
}

async fn list(State(app): State<Shared>, Query(q): Query<HashMap<String, String>>) -> Response {
    let limit = match number(&q, "limit") {
        Ok(l) => l.map_or(DEFAULT_LIMIT, |l| (l as usize).clamp(1, MAX_LIMIT)),
        Err(b) => return b.response(),
    };
    let cursor = match number(&q, "cursor") {
        Ok(c) => c,
        Err(b) => return b.response(),
    };
    let s = store(&app);
    if let Some(email) = q.get("email") {
        let data = s.find_by_email(email);
        let total = data.len();
        return Json(json!({ "data": data, "total": total, "has_more": false })).into_response();
    }
    if q.contains_key("updated_since") {
        let since = match number(&q, "updated_since") {
            Ok(v) => v.unwrap_or(0).max(cursor.unwrap_or(0)),
            Err(b) => return b.response(),
        };
        let (entries, more) = s.changes_since(since, limit);
        let last = entries.last().map(|(seq, _)| *seq);
        let next = if more { last } else { None };
        let sync = next.unwrap_or_else(|| s.current_seq().max(since));
        let data: Vec<Value> = entries.iter().map(|(_, e)| e.to_json()).collect();
        return Json(json!({
            "data": data,
            "next_cursor": next.map(|n| n.to_string()),
            "sync_token": sync.to_string(),
        }))
        .into_response();
    }
    if q.contains_key("cursor") {
        let (data, next) = s.page_from_index(cursor.unwrap_or(1), limit);
        return Json(json!({
            "data": data,
            "total": s.total(),
            "next_cursor": next.map(|n| n.to_string()),
            "sync_token": s.current_seq().to_string(),
        }))
        .into_response();
    }
    let offset = match number(&q, "offset") {
        Ok(o) => o.unwrap_or(0),
        Err(b) => return b.response(),
    };
    let total = s.total();
    let data = if offset >= total {
        Vec::new()
    } else {
        s.page_from_index(s.index_at_offset(offset), limit).0
    };
    let has_more = offset + (data.len() as u64) < total;
    Json(json!({ "data": data, "total": total, "has_more": has_more })).into_response()
}

fn object(body: Value) -> Result<Record, Bad> {
    match body {
        Value::Object(m) => Ok(m),
        _ => Err(Bad("the body must be a JSON object".into())),
    }
}

async fn create(State(app): State<Shared>, body: Option<Json<Value>>) -> Response {
    let record = match object(body.map(|b| b.0).unwrap_or(Value::Null)) {
        Ok(r) => r,
        Err(b) => return b.response(),
    };
    match store(&app).insert(record) {
        Ok(r) => (StatusCode::CREATED, Json(Value::Object(r))).into_response(),
        Err(e) => write_error(e),
    }
}

async fn fetch(State(app): State<Shared>, Path(id): Path<String>) -> Response {
    match store(&app).get(&id) {
        Some(r) => Json(Value::Object(r)).into_response(),
        None => error(StatusCode::NOT_FOUND, &format!("customer {id} not found")),
    }
}

async fn update(
    State(app): State<Shared>,
    Path(id): Path<String>,
    body: Option<Json<Value>>,
) -> Response {
    let fields = match object(body.map(|b| b.0).unwrap_or(Value::Null)) {
        Ok(r) => r,
        Err(b) => return b.response(),
    };
    match store(&app).patch(&id, fields) {
        Ok(r) => Json(Value::Object(r)).into_response(),
        Err(e) => write_error(e),
    }
}

async fn remove(State(app): State<Shared>, Path(id): Path<String>) -> Response {
    match store(&app).delete(&id) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => write_error(e),
    }
}

async fn bulk(State(app): State<Shared>, body: Option<Json<Value>>) -> Response {
    let records = match body.map(|b| b.0) {
        Some(Value::Object(mut m)) => match m.remove("records") {
            Some(Value::Array(a)) => a,
            _ => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "the body must be {\"records\": [...]}",
                )
            }
        },
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "the body must be {\"records\": [...]}",
            )
        }
    };
    if records.len() > MAX_LIMIT {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("at most {MAX_LIMIT} records per request"),
        );
    }
    let mut s = store(&app);
    let results: Vec<Value> = records
        .into_iter()
        .enumerate()
        .map(|(index, r)| {
            let id = r.get("id").cloned().unwrap_or(Value::Null);
            let outcome = match r {
                Value::Object(m) => s.upsert(m),
                _ => Err(WriteError::Invalid("a record must be a JSON object".into())),
            };
            match outcome {
                Ok((id, created)) => json!({"index": index, "id": id, "status": if created { "created" } else { "updated" }}),
                Err(WriteError::Invalid(m) | WriteError::NotFound(m) | WriteError::Conflict(m)) => {
                    json!({"index": index, "id": id, "status": "rejected", "error": m})
                }
            }
        })
        .collect();
    Json(json!({ "results": results })).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tombstones_render_as_deleted() {
        let e = Entry::Deleted {
            id: id_of(3),
            seq: 9,
        };
        assert_eq!(
            e.to_json(),
            json!({"id": "cus_0000003", "deleted": true, "seq": 9})
        );
    }
}
