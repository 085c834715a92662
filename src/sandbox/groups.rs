//! The sandbox's groups, so `ferry export` has somewhere to put group
//! memberships: named groups of customer ids, found by name, created once,
//! members added and removed in batches with one result per id.
//!
//! - `GET /groups?name=NAME` → `{"data": [{"id", "name", "size"}]}` (every group without `name`)
//! - `POST /groups {"name"}` → 201 `{"id", "name", "size"}`; 409 when the name is taken
//! - `GET /groups/{id}/members` → `{"data": [customer ids, sorted], "total"}`
//! - `POST /groups/{id}/members {"ids": [...]}` adds, `DELETE` with the same
//!   body removes: `{"results": [{"id", "error"?}]}`, in the order sent; an
//!   unknown customer is an error for that id only, removing a non-member is fine

use std::collections::{BTreeMap, BTreeSet, HashMap};

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::{error, store, Shared, MAX_LIMIT};

/// Every group, by id.
#[derive(Default)]
pub struct Groups {
    by_id: BTreeMap<String, Group>,
    next: u64,
}

struct Group {
    name: String,
    members: BTreeSet<String>,
}

impl Group {
    fn to_json(&self, id: &str) -> Value {
        json!({ "id": id, "name": self.name, "size": self.members.len() })
    }
}

fn groups(app: &super::App) -> std::sync::MutexGuard<'_, Groups> {
    app.groups.lock().unwrap_or_else(|e| e.into_inner())
}

pub async fn list(State(app): State<Shared>, Query(q): Query<HashMap<String, String>>) -> Response {
    let g = groups(&app);
    let data: Vec<Value> = g
        .by_id
        .iter()
        .filter(|(_, group)| q.get("name").is_none_or(|n| *n == group.name))
        .map(|(id, group)| group.to_json(id))
        .collect();
    Json(json!({ "data": data })).into_response()
}

pub async fn create(State(app): State<Shared>, body: Option<Json<Value>>) -> Response {
    let name = match body.as_ref().and_then(|b| b.0.get("name")) {
        Some(Value::String(n)) if !n.trim().is_empty() => n.clone(),
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "the body must be {\"name\": \"...\"}",
            )
        }
    };
    let mut g = groups(&app);
    if g.by_id.values().any(|group| group.name == name) {
        return error(
            StatusCode::CONFLICT,
            &format!("a group named \"{name}\" exists"),
        );
    }
    g.next += 1;
    let id = format!("grp_{}", g.next);
    let group = Group {
        name,
        members: BTreeSet::new(),
    };
    let shown = group.to_json(&id);
    g.by_id.insert(id, group);
    (StatusCode::CREATED, Json(shown)).into_response()
}

pub async fn members(State(app): State<Shared>, Path(id): Path<String>) -> Response {
    let g = groups(&app);
    match g.by_id.get(&id) {
        Some(group) => {
            Json(json!({ "data": group.members, "total": group.members.len() })).into_response()
        }
        None => error(StatusCode::NOT_FOUND, &format!("group {id} not found")),
    }
}

pub async fn add(
    State(app): State<Shared>,
    Path(id): Path<String>,
    body: Option<Json<Value>>,
) -> Response {
    change(&app, &id, body, true)
}

pub async fn remove(
    State(app): State<Shared>,
    Path(id): Path<String>,
    body: Option<Json<Value>>,
) -> Response {
    change(&app, &id, body, false)
}

fn change(app: &super::App, id: &str, body: Option<Json<Value>>, adding: bool) -> Response {
    let ids = match body.map(|b| b.0) {
        Some(Value::Object(mut m)) => match m.remove("ids") {
            Some(Value::Array(ids)) => ids,
            _ => return error(StatusCode::BAD_REQUEST, "the body must be {\"ids\": [...]}"),
        },
        _ => return error(StatusCode::BAD_REQUEST, "the body must be {\"ids\": [...]}"),
    };
    if ids.len() > MAX_LIMIT {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("at most {MAX_LIMIT} ids per request"),
        );
    }
    // Customers first, groups second: the one lock order of the sandbox.
    let customers = store(app);
    let mut g = groups(app);
    let Some(group) = g.by_id.get_mut(id) else {
        return error(StatusCode::NOT_FOUND, &format!("group {id} not found"));
    };
    let results: Vec<Value> = ids
        .into_iter()
        .map(|member| match member {
            Value::String(m) if !adding => {
                group.members.remove(&m);
                json!({ "id": m })
            }
            Value::String(m) if customers.get(&m).is_some() => {
                group.members.insert(m.clone());
                json!({ "id": m })
            }
            Value::String(m) => json!({ "id": m, "error": format!("customer {m} not found") }),
            other => json!({ "id": other, "error": "an id must be a string" }),
        })
        .collect();
    Json(json!({ "results": results })).into_response()
}
