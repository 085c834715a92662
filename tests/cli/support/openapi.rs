//! Checks a request ferry sends against an extract of the vendor's OpenAPI
//! description (docs/connectors/specs/<connector>.json, written by
//! extract.py there): the operation exists for the method and path, every
//! query parameter name is one the operation declares, required query
//! parameters and headers are present (header values against their
//! schema), the Content-Type is the declared one, and the body satisfies
//! the schema — required keys, types, enums, nested objects and arrays,
//! no key the schema does not name. Each problem is one line with the
//! operation and a JSON pointer, so a test can allow a documented deviation
//! by its exact line.

use std::collections::HashSet;

use serde_json::{Map, Value};

/// How a key outside the schema is reported.
const UNNAMED: &str = ": a key the schema does not name";

/// One vendor's extract.
pub struct Spec {
    doc: Value,
}

impl Spec {
    /// docs/connectors/specs/`name`.json.
    pub fn load(name: &str) -> Spec {
        let path = format!(
            "{}/docs/connectors/specs/{name}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        Spec {
            doc: serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}")),
        }
    }

    /// What `request` (a `--dry-run` entry: method, url, headers, body)
    /// does that the description does not allow; empty when it conforms.
    pub fn check(&self, request: &Value) -> Vec<String> {
        let method = request["method"].as_str().unwrap_or_default();
        let url =
            url::Url::parse(request["url"].as_str().unwrap_or_default()).expect("a request url");
        let Some((op, entry)) = self.operation(method, url.path()) else {
            return vec![format!(
                "{method} {}: no such operation in the description",
                url.path()
            )];
        };
        let mut errors = Vec::new();
        let allowed: Vec<&str> = names(&entry["query"]);
        let sent: Vec<String> = url.query_pairs().map(|(k, _)| k.into_owned()).collect();
        for name in &sent {
            if !allowed.contains(&name.as_str()) {
                errors.push(format!(
                    "{op}: query parameter {name:?} is not one of {allowed:?}"
                ));
            }
        }
        for name in names(&entry["requiredQuery"]) {
            if !sent.iter().any(|s| s == name) {
                errors.push(format!(
                    "{op}: required query parameter {name:?} is missing"
                ));
            }
        }
        let headers = request["headers"].as_object().cloned().unwrap_or_default();
        let header = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        for name in names(&entry["requiredHeaders"]) {
            if header(name).is_none() {
                errors.push(format!("{op}: required header {name:?} is missing"));
            }
        }
        // A declared header that is sent is checked against its schema
        // (Intercom-Version's enum, for one).
        for (name, schema) in entry["headers"].as_object().into_iter().flatten() {
            if let Some(v) = header(name) {
                self.validate(schema, &v, &format!("{op}: header {name}"), &mut errors);
            }
        }
        let body = request.get("body").filter(|b| !b.is_null());
        match (entry.get("body"), body) {
            (Some(schema), Some(body)) => {
                let want = entry["contentType"].as_str().unwrap_or_default();
                let got = header("Content-Type").and_then(|v| v.as_str().map(str::to_string));
                if got
                    .as_deref()
                    .map(|g| g.split(';').next().unwrap_or("").trim())
                    != Some(want)
                {
                    errors.push(format!(
                        "{op}: Content-Type {got:?}, the description says {want:?}"
                    ));
                }
                self.validate(schema, body, &format!("{op}: body "), &mut errors);
            }
            (Some(_), None) if entry["bodyRequired"] == Value::Bool(true) => {
                errors.push(format!("{op}: the request body is missing"));
            }
            (None, Some(_)) => errors.push(format!("{op}: a body the operation does not take")),
            _ => {}
        }
        errors
    }

    /// The operation whose path template matches `path` (`{x}` is one
    /// segment); of several, the one with the most literal segments, as
    /// OpenAPI matches a concrete path before a templated one
    /// (`/users/search` before `/users/{user_id}`).
    fn operation(&self, method: &str, path: &str) -> Option<(String, &Value)> {
        let segments: Vec<&str> = path.split('/').collect();
        // The first of the most literal ones, in the extract's order.
        let mut best: Option<(usize, &String, &Value)> = None;
        for (key, op) in self.doc["operations"].as_object()? {
            let Some((m, template)) = key.split_once(' ') else {
                continue;
            };
            let parts: Vec<&str> = template.split('/').collect();
            let fits = m == method
                && parts.len() == segments.len()
                && parts
                    .iter()
                    .zip(&segments)
                    .all(|(t, s)| (t.starts_with('{') && !s.is_empty()) || t == s);
            let literal = parts.iter().filter(|t| !t.starts_with('{')).count();
            if fits && best.is_none_or(|(most, _, _)| literal > most) {
                best = Some((literal, key, op));
            }
        }
        best.map(|(_, k, v)| (k.clone(), v))
    }

    fn validate(&self, schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
        if let Some(name) = schema.get("$ref").and_then(Value::as_str) {
            let target = &self.doc["schemas"][name];
            assert!(!target.is_null(), "schema {name} is not in the extract");
            return self.validate(target, value, at, errors);
        }
        if schema.get("neverSent").is_some() {
            errors.push(format!(
                "{at}: sent, but ferry is not checked for it (extract.py NEVER_SENT)"
            ));
            return;
        }
        if value.is_null() && schema.get("nullable") == Some(&Value::Bool(true)) {
            return;
        }
        for branch in schema["allOf"].as_array().into_iter().flatten() {
            // Each branch names only some keys: their union is checked once,
            // in validate_object, not per branch.
            let mut found = Vec::new();
            self.validate(branch, value, at, &mut found);
            let own = |e: &String| {
                value
                    .as_object()
                    .is_some_and(|m| m.keys().any(|k| *e == format!("{at}/{k}{UNNAMED}")))
            };
            errors.extend(found.into_iter().filter(|e| !own(e)));
        }
        for key in ["oneOf", "anyOf"] {
            if let Some(branches) = schema[key].as_array() {
                let fits = branches.iter().any(|b| {
                    let mut e = Vec::new();
                    self.validate(b, value, at, &mut e);
                    e.is_empty()
                });
                if !fits {
                    errors.push(format!("{at}: {value} matches none of {key}"));
                }
            }
        }
        let types: Vec<&str> = match &schema["type"] {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        if !types.is_empty() && !types.iter().any(|t| is_type(t, value)) {
            errors.push(format!("{at}: {value} is not of type {}", types.join("|")));
            return;
        }
        if let Some(allowed) = schema["enum"].as_array() {
            if !allowed.contains(value) {
                errors.push(format!(
                    "{at}: {value} is not one of {}",
                    Value::Array(allowed.clone())
                ));
            }
        }
        if let Value::Object(map) = value {
            self.validate_object(schema, map, at, errors);
        }
        if let (Value::Array(items), Some(item)) = (value, schema.get("items")) {
            for (i, v) in items.iter().enumerate() {
                self.validate(item, v, &format!("{at}/{i}"), errors);
            }
        }
    }

    fn validate_object(
        &self,
        schema: &Value,
        map: &Map<String, Value>,
        at: &str,
        errors: &mut Vec<String>,
    ) {
        for key in names(&schema["required"]) {
            if !map.contains_key(key) {
                errors.push(format!("{at}: required key {key:?} is missing"));
            }
        }
        let props = schema["properties"].as_object();
        let extra = schema.get("additionalProperties");
        for (k, v) in map {
            let at = format!("{at}/{k}");
            if let Some(s) = props.and_then(|p| p.get(k)).or(extra) {
                self.validate(s, v, &at, errors);
            }
        }
        // A key no branch of the schema names is most likely misspelt.
        if let Some(known) = self.known_keys(schema) {
            for k in map.keys().filter(|k| !known.contains(k.as_str())) {
                errors.push(format!("{at}/{k}{UNNAMED}"));
            }
        }
    }

    /// The keys an object of `schema` may have, its `allOf` branches'
    /// included; `None` when any key may be there (no `properties`, an
    /// `additionalProperties` schema, or a `oneOf`/`anyOf`, whose branches
    /// check their own keys).
    fn known_keys<'a>(&'a self, schema: &'a Value) -> Option<HashSet<&'a str>> {
        if let Some(name) = schema.get("$ref").and_then(Value::as_str) {
            return self.known_keys(&self.doc["schemas"][name]);
        }
        if ["additionalProperties", "oneOf", "anyOf"]
            .iter()
            .any(|k| schema.get(*k).is_some())
        {
            return None;
        }
        let branches = schema["allOf"].as_array();
        let mut keys: HashSet<&str> = match (schema["properties"].as_object(), branches) {
            (Some(p), _) => p.keys().map(String::as_str).collect(),
            (None, Some(_)) => HashSet::new(),
            (None, None) => return None,
        };
        for b in branches.into_iter().flatten() {
            keys.extend(self.known_keys(b)?);
        }
        Some(keys)
    }
}

fn names(list: &Value) -> Vec<&str> {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect()
}

fn is_type(t: &str, v: &Value) -> bool {
    match t {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        _ => true,
    }
}

/// A request a mock server received, in the shape of a `--dry-run` entry.
pub fn received(r: &wiremock::Request) -> Value {
    let mut headers = Map::new();
    for (k, v) in r.headers.iter() {
        headers.insert(
            k.to_string(),
            Value::String(v.to_str().unwrap_or_default().to_string()),
        );
    }
    let body = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    serde_json::json!({"method": r.method.to_string(), "url": r.url.to_string(), "headers": headers, "body": body})
}

/// Every problem of `requests` (dry-run entries or [`received`] ones) except
/// the documented deviations in `allowed` (exact lines, each explained
/// where it is listed and in docs/connectors/<connector>.md).
pub fn violations(spec: &Spec, requests: &[Value], allowed: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = requests
        .iter()
        .flat_map(|r| spec.check(r))
        .filter(|e| !allowed.contains(&e.as_str()))
        .collect();
    out.dedup();
    out
}

/// Every request the mock server `s` received, as [`received`] shapes them.
pub async fn received_by(s: &wiremock::MockServer) -> Vec<Value> {
    s.received_requests()
        .await
        .expect("the mock server records requests")
        .iter()
        .map(received)
        .collect()
}

/// Fail, listing every problem, unless `requests` satisfy the spec extract
/// of `connector` but for the deviations in `allowed`.
pub fn assert_conform(connector: &str, requests: &[Value], allowed: &[&str]) {
    let problems = violations(&Spec::load(connector), requests, allowed);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The `requests` a `--dry-run` printed.
pub fn previewed(stdout_json: &Value) -> Vec<Value> {
    stdout_json["requests"]
        .as_array()
        .cloned()
        .expect("a dry-run answer with requests")
}

/// The requests the `--dry-run` runs `runs` print, each run checked to succeed
/// and to print none of `secrets`.
pub fn previews(f: &super::Folder, runs: &[&[&str]], secrets: &[&str]) -> Vec<Value> {
    let mut out = Vec::new();
    for args in runs {
        let run = f.run(args);
        run.hides(secrets, "a secret");
        assert_eq!(run.code, 0, "{args:?}: {}", run.render());
        out.extend(previewed(&run.json()));
    }
    out
}

#[cfg(test)]
mod tests {
    //! The checker itself: a conformance test that passes must mean something.
    use super::*;
    use serde_json::json;

    fn spec() -> Spec {
        Spec {
            doc: json!({"operations": {
                "POST /things/{id}": {"query": ["limit"], "requiredQuery": [], "headers": {"v": {"enum": ["1"]}},
                    "requiredHeaders": ["v"], "contentType": "application/json", "bodyRequired": true,
                    "body": {"$ref": "Thing"}}},
                "schemas": {"Thing": {"allOf": [{"type": "object", "required": ["name"], "properties": {
                    "name": {"type": "string"}, "kind": {"type": "string", "enum": ["a", "b"]}}},
                    {"type": "object", "properties": {"tags": {"type": "array", "items": {"type": "string"}}}}]}}}),
        }
    }

    fn request(url: &str, v: &str, body: Value) -> Value {
        json!({"method": "POST", "url": url, "headers": {"V": v, "Content-Type": "application/json"}, "body": body})
    }

    #[test]
    fn a_conforming_request_passes_and_each_difference_is_named() {
        let s = spec();
        let good = request(
            "http://h/things/7?limit=1",
            "1",
            json!({"name": "x", "kind": "a", "tags": ["t"]}),
        );
        assert_eq!(s.check(&good), Vec::<String>::new());
        let bad = request(
            "http://h/things/7?size=1",
            "2",
            json!({"kind": "c", "tags": [1], "nmae": "x"}),
        );
        assert_eq!(
            s.check(&bad),
            [
                r#"POST /things/{id}: query parameter "size" is not one of ["limit"]"#,
                r#"POST /things/{id}: header v: "2" is not one of ["1"]"#,
                r#"POST /things/{id}: body : required key "name" is missing"#,
                r#"POST /things/{id}: body /kind: "c" is not one of ["a","b"]"#,
                "POST /things/{id}: body /tags/0: 1 is not of type string",
                "POST /things/{id}: body /nmae: a key the schema does not name",
            ]
        );
        let missing = json!({"method": "POST", "url": "http://h/things/7", "headers": {}});
        assert_eq!(
            s.check(&missing),
            [
                r#"POST /things/{id}: required header "v" is missing"#,
                "POST /things/{id}: the request body is missing"
            ]
        );
        let elsewhere = json!({"method": "GET", "url": "http://h/things/7", "headers": {}});
        assert_eq!(
            s.check(&elsewhere),
            ["GET /things/7: no such operation in the description"]
        );
        // A concrete path is its own operation, even when a template listed
        // before it would match it too.
        let mut doc = s.doc.clone();
        doc["operations"]["POST /things/search"] = json!({"query": ["q"]});
        let both = Spec { doc };
        let search = json!({"method": "POST", "url": "http://h/things/search?q=1", "headers": {}});
        assert_eq!(both.check(&search), Vec::<String>::new());
    }
}
