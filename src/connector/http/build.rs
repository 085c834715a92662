//! Pure request building for the `http` connector: manifest action +
//! account values + record -> [`RequestSpec`]. No I/O, so `--dry-run` and
//! most tests need no server. `{name}` placeholders are filled from the
//! record's id and the account's options; a name with no value is an error
//! that names the manifest field.

use std::collections::BTreeMap;

use anyhow::Result;
use base64::Engine as _;
use serde_json::Value;

use super::manifest::{ActionSpec, Auth, KeyLocation, Manifest};
use crate::connector::Record;
use crate::error::usage;
use crate::http::{Body, RequestSpec};

/// The base64 of `user:pass` that a Basic Authorization header carries.
pub fn basic_credentials(user: &str, pass: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
}

/// What the builder knows: the manifest, the base URL and the values
/// placeholders may use.
#[derive(Clone)]
pub struct Builder {
    pub manifest: Manifest,
    pub shown: String,
    pub base_url: String,
    pub vars: BTreeMap<String, String>,
}

/// The default method of each action.
pub fn default_method(action: &str) -> &'static str {
    match action {
        "insert" | "bulk" | "createGroup" | "addMembers" => "POST",
        "patch" => "PATCH",
        "delete" | "removeMembers" => "DELETE",
        _ => "GET",
    }
}

/// `v` with each leaf (a value that is neither an array nor an object)
/// replaced by what `leaf` makes of it.
fn map_leaves(v: &Value, leaf: &dyn Fn(&Value) -> Result<Value>) -> Result<Value> {
    Ok(match v {
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|i| map_leaves(i, leaf))
                .collect::<Result<_>>()?,
        ),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| Ok((k.clone(), map_leaves(v, leaf)?)))
                .collect::<Result<_>>()?,
        ),
        other => leaf(other)?,
    })
}

impl Builder {
    /// Replace `{name}` in `text`; `encode` percent-encodes values (paths).
    pub fn fill(&self, text: &str, id: Option<&str>, at: &str, encode: bool) -> Result<String> {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            let after = &rest[open + 1..];
            let close = after.find('}');
            let name = close.map(|c| &after[..c]).unwrap_or("");
            if !super::manifest::is_placeholder_name(name) {
                out.push_str(&rest[..=open]);
                rest = after;
                continue;
            }
            out.push_str(&rest[..open]);
            let value = match (name, id) {
                ("id", Some(id)) => id.to_string(),
                ("id", None) => {
                    return Err(usage(format!(
                        "{}: {at}: {{id}} has no value here (only get, patch and delete have a record id)",
                        self.shown
                    ))
                    .into())
                }
                _ => match self.vars.get(name) {
                    Some(v) => v.clone(),
                    None => {
                        return Err(usage(format!(
                            "{}: {at}: no value for {{{name}}}",
                            self.shown
                        ))
                        .hint(format!(
                            "set \"{name}\" in account.json, or \"params\": {{\"{name}\": \"...\"}}"
                        ))
                        .into())
                    }
                },
            };
            if encode {
                out.push_str(&crate::http::segment(&value));
            } else {
                out.push_str(&value);
            }
            rest = &after[name.len() + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    /// A JSON body template: the string "{record}" is the record, other
    /// strings have their placeholders filled.
    fn fill_value(
        &self,
        v: &Value,
        id: Option<&str>,
        record: Option<&Record>,
        at: &str,
    ) -> Result<Value> {
        map_leaves(v, &|leaf| {
            Ok(match leaf {
                Value::String(s) if s == "{record}" => match record {
                    Some(r) => Value::Object(r.clone()),
                    None => Value::Null,
                },
                Value::String(s) => Value::String(self.fill(s, id, at, false)?),
                other => other.clone(),
            })
        })
    }

    /// The request of action `name`. `url` replaces the action's own URL
    /// (a next-page URL); `query` is added to its query; `bearer` is the
    /// OAuth2 token when there is one (previews pass a stand-in).
    #[allow(clippy::too_many_arguments)]
    pub fn request(
        &self,
        name: &str,
        action: &ActionSpec,
        id: Option<&str>,
        record: Option<&Record>,
        query: &[(String, String)],
        url: Option<&str>,
        bearer: Option<&str>,
    ) -> Result<RequestSpec> {
        let at = |f: &str| format!("actions.{name}.{f}");
        let method = action
            .method
            .as_deref()
            .unwrap_or(default_method(name))
            .to_ascii_uppercase();
        let raw = match url {
            Some(u) => self.resolve(u),
            None => format!(
                "{}{}",
                self.base_url.trim_end_matches('/'),
                self.fill(&action.path, id, &at("path"), true)?
            ),
        };
        // Before parsing, which would resolve a `..` id away.
        crate::http::check_path(&method, &raw)?;
        let mut parsed = url::Url::parse(&raw).map_err(|e| {
            usage(format!(
                "{}: {}: \"{raw}\" is not a valid URL ({e})",
                self.shown,
                at("path")
            ))
        })?;
        {
            let mut pairs: Vec<(String, String)> = Vec::new();
            if url.is_none() {
                for (k, v) in &action.query {
                    pairs.push((
                        k.clone(),
                        self.fill(v, id, &at(&format!("query.{k}")), false)?,
                    ));
                }
            }
            pairs.extend(query.iter().cloned());
            if let Auth::ApiKey {
                location: KeyLocation::Query,
                name: key,
                value,
            } = &self.manifest.auth
            {
                let present = parsed.query_pairs().any(|(k, _)| k == key.as_str());
                if !present {
                    pairs.push((key.clone(), self.fill(value, None, "auth.value", false)?));
                }
            }
            if !pairs.is_empty() {
                let mut q = parsed.query_pairs_mut();
                for (k, v) in &pairs {
                    q.append_pair(k, v);
                }
            }
        }
        let mut req =
            RequestSpec::new(&method, parsed.to_string()).header("Accept", "application/json");
        for (k, v) in self.manifest.headers.iter().chain(action.headers.iter()) {
            req = req.header(k.clone(), self.fill(v, id, &format!("headers.{k}"), false)?);
        }
        match &self.manifest.auth {
            Auth::None {}
            | Auth::ApiKey {
                location: KeyLocation::Query,
                ..
            } => {}
            Auth::Bearer { token } => {
                let token = self.fill(token, None, "auth.token", false)?;
                req = req.header("Authorization", format!("Bearer {token}"));
            }
            Auth::Basic { username, password } => {
                let user = self.fill(username, None, "auth.username", false)?;
                let pass = self.fill(password, None, "auth.password", false)?;
                req = req.header(
                    "Authorization",
                    format!("Basic {}", basic_credentials(&user, &pass)),
                );
            }
            Auth::ApiKey {
                name: key, value, ..
            } => {
                req = req.header(key.clone(), self.fill(value, None, "auth.value", false)?);
            }
            Auth::OAuth2 { .. } => {
                req = req.header(
                    "Authorization",
                    format!("Bearer {}", bearer.unwrap_or(crate::output::REDACTED)),
                );
            }
        }
        let body = match (&action.body, name) {
            (Some(template), _) => Some(self.fill_value(template, id, record, &at("body"))?),
            (None, "insert" | "patch") => record.map(|r| Value::Object(r.clone())),
            (None, _) => None,
        };
        if let Some(b) = body {
            req = req.json(b);
        }
        Ok(req)
    }

    /// The request of the `bulk` action: the string "{records}" in its body
    /// template is the batch; other strings have their placeholders filled.
    pub fn bulk_request(
        &self,
        action: &ActionSpec,
        records: &[Record],
        bearer: Option<&str>,
    ) -> Result<RequestSpec> {
        let bare = ActionSpec {
            body: None,
            ..action.clone()
        };
        let req = self.request("bulk", &bare, None, None, &[], None, bearer)?;
        let batch = || Value::Array(records.iter().cloned().map(Value::Object).collect());
        let body = match &action.body {
            Some(template) => {
                self.fill_batch(template, "{records}", &batch, "actions.bulk.body")?
            }
            None => batch(),
        };
        Ok(req.json(body))
    }

    /// [`Builder::bulk_request`] for records as JSON text (import's
    /// pass-through): the same request, its body the template with the
    /// records' own text, as the source sent it, where "{records}" is.
    pub fn bulk_request_raw(
        &self,
        action: &ActionSpec,
        records: &crate::connector::raw::RawRecords,
        bearer: Option<&str>,
    ) -> Result<RequestSpec> {
        // A string no template holds stands for the records while the
        // template is filled, then gives way to their text.
        const MARK: &str = "\u{0}ferry records\u{0}";
        let bare = ActionSpec {
            body: None,
            ..action.clone()
        };
        let req = self.request("bulk", &bare, None, None, &[], None, bearer)?;
        let mut array = String::with_capacity(records.bytes() + records.len() + 2);
        array.push('[');
        for (i, r) in records.iter().enumerate() {
            if i > 0 {
                array.push(',');
            }
            array.push_str(r);
        }
        array.push(']');
        let body = match &action.body {
            Some(template) => {
                let mark = || Value::String(MARK.to_string());
                let filled = self.fill_batch(template, "{records}", &mark, "actions.bulk.body")?;
                let quoted = Value::String(MARK.to_string()).to_string();
                filled.to_string().replace(&quoted, &array)
            }
            None => array,
        };
        let mut req = req.header("Content-Type", "application/json");
        req.body = Some(crate::http::Body::Text(body));
        Ok(req)
    }

    /// The same builder with more placeholder values (`{key}`, `{name}`, `{group}`).
    pub fn with_vars(&self, extra: &[(&str, &str)]) -> Builder {
        let mut b = self.clone();
        for (k, v) in extra {
            b.vars.insert((*k).to_string(), (*v).to_string());
        }
        b
    }

    /// The request of a membership action (`addMembers`, `removeMembers`)
    /// for the group `group`: the string "{ids}" in its body template is
    /// the list of record ids (the body is that list when there is no template).
    pub fn members_request(
        &self,
        name: &str,
        action: &ActionSpec,
        group: &str,
        ids: &[String],
        bearer: Option<&str>,
    ) -> Result<RequestSpec> {
        let bare = ActionSpec {
            body: None,
            ..action.clone()
        };
        let b = self.with_vars(&[("group", group)]);
        let req = b.request(name, &bare, None, None, &[], None, bearer)?;
        let list = || Value::Array(ids.iter().cloned().map(Value::String).collect());
        let body = match &action.body {
            Some(template) => {
                b.fill_batch(template, "{ids}", &list, &format!("actions.{name}.body"))?
            }
            None => list(),
        };
        Ok(req.json(body))
    }

    /// A body template whose string `placeholder` stands for `batch()`.
    fn fill_batch(
        &self,
        v: &Value,
        placeholder: &str,
        batch: &dyn Fn() -> Value,
        at: &str,
    ) -> Result<Value> {
        map_leaves(v, &|leaf| match leaf {
            Value::String(s) if s == placeholder => Ok(batch()),
            other => self.fill_value(other, None, None, at),
        })
    }

    /// The OAuth2 client-credentials token request, when auth is oauth2.
    pub fn token_request(&self) -> Result<Option<RequestSpec>> {
        let Auth::OAuth2 {
            token_url,
            client_id,
            client_secret,
            scope,
        } = &self.manifest.auth
        else {
            return Ok(None);
        };
        let mut fields = vec![
            ("grant_type".to_string(), "client_credentials".to_string()),
            (
                "client_id".to_string(),
                self.fill(client_id, None, "auth.clientId", false)?,
            ),
            (
                "client_secret".to_string(),
                self.fill(client_secret, None, "auth.clientSecret", false)?,
            ),
        ];
        if let Some(s) = scope {
            fields.push(("scope".into(), self.fill(s, None, "auth.scope", false)?));
        }
        let mut req = RequestSpec::new(
            "POST",
            self.resolve(&self.fill(token_url, None, "auth.tokenUrl", false)?),
        )
        .header("Accept", "application/json");
        req.body = Some(Body::Form(fields));
        Ok(Some(req))
    }

    /// An absolute URL, or a path resolved against the base URL.
    pub fn resolve(&self, u: &str) -> String {
        if u.starts_with("http://") || u.starts_with("https://") {
            return u.to_string();
        }
        match url::Url::parse(&self.base_url).and_then(|b| b.join(u)) {
            Ok(j) => j.to_string(),
            Err(_) => format!("{}{u}", self.base_url.trim_end_matches('/')),
        }
    }
}

/// Whether `req` carries the header `name: value` (for the request tests
/// of the HTTP connector and the vendor connectors).
#[cfg(test)]
pub fn has_header(req: &RequestSpec, name: &str, value: &str) -> bool {
    req.headers.iter().any(|(n, v)| n == name && v == value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn builder(manifest: Value) -> Builder {
        Builder {
            manifest: super::super::manifest::parse(&manifest, "connector.json").unwrap(),
            shown: "connector.json".into(),
            base_url: "https://api.example.com/v1/".into(),
            vars: [
                ("token".to_string(), "tok".to_string()),
                ("workspace".to_string(), "w 1".to_string()),
            ]
            .into_iter()
            .collect(),
        }
    }

    #[test]
    fn requests_are_built_without_io() {
        let b = builder(json!({
            "auth": {"type": "bearer"},
            "headers": {"X-Workspace": "{workspace}"},
            "actions": {"patch": {"path": "/ws/{workspace}/c/{id}", "query": {"expand": "all"}, "body": {"data": "{record}"}}}
        }));
        let record = json!({"name": "Ada"}).as_object().cloned().unwrap();
        let action = b.manifest.actions.patch.clone().unwrap();
        let req = b
            .request(
                "patch",
                &action,
                Some("a/b"),
                Some(&record),
                &[],
                None,
                None,
            )
            .unwrap();
        assert_eq!(req.method, "PATCH");
        assert_eq!(
            req.url,
            "https://api.example.com/v1/ws/w%201/c/a%2Fb?expand=all"
        );
        assert!(has_header(&req, "Authorization", "Bearer tok"));
        assert!(has_header(&req, "X-Workspace", "w 1"));
        assert_eq!(req.body, Some(Body::Json(json!({"data": {"name": "Ada"}}))));
    }

    #[test]
    fn a_placeholder_without_value_names_the_field() {
        let b = builder(json!({"actions": {"get": {"path": "/c/{nope}"}}}));
        let action = b.manifest.actions.get.clone().unwrap();
        let err = b
            .request("get", &action, Some("1"), None, &[], None, None)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "connector.json: actions.get.path: no value for {nope}"
        );
    }

    #[test]
    fn api_keys_in_the_query_and_basic_auth() {
        let mut b = builder(
            json!({"auth": {"type": "apiKey", "in": "query", "name": "api_key", "value": "{token}"}, "actions": {"get": {"path": "/c/{id}"}}}),
        );
        let action = b.manifest.actions.get.clone().unwrap();
        let req = b
            .request("get", &action, Some("1"), None, &[], None, None)
            .unwrap();
        assert_eq!(req.url, "https://api.example.com/v1/c/1?api_key=tok");
        b.manifest.auth = Auth::Basic {
            username: "u".into(),
            password: "{token}".into(),
        };
        let req = b
            .request("get", &action, Some("1"), None, &[], None, None)
            .unwrap();
        assert!(has_header(&req, "Authorization", "Basic dTp0b2s="));
    }
}
