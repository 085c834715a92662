//! Reading and validating `connector.json` ([`super::manifest`] holds its
//! types): serde's mistakes are reported with the JSON path of the mistake,
//! then every rule the types cannot say (paths start with `/`, pointers are
//! JSON pointers, placeholders name known values, ranges) is checked before
//! any request is built.

use std::path::Path;

use anyhow::Result;
use serde_json::Value;

use super::manifest::*;
use crate::error::usage;
use crate::http::policy::{BURST_RANGE, MAX_IN_FLIGHT_RANGE, RPS_RANGE};
use crate::range::{self, At};

/// Read and validate the manifest at `path`; `shown` names it in messages.
pub fn load(path: &Path, shown: &str) -> Result<Manifest> {
    if !path.exists() {
        return Err(usage(format!("no manifest at {}", path.display()))
            .hint("an http connector folder holds connector.json next to account.json; see `ferry connectors http` for its fields")
            .into());
    }
    let value = crate::config::json::read_file(path)?;
    parse(&value, shown)
}

/// Validate a manifest held as JSON.
pub fn parse(value: &Value, shown: &str) -> Result<Manifest> {
    let manifest: Manifest = serde_path_to_error::deserialize(value).map_err(|e| {
        let mut path = e.path().to_string();
        let mut message = e.inner().to_string();
        // A mistake inside a tagged object carries its own inner path.
        let parts: Vec<&str> = message.splitn(3, AT).collect();
        if let [before, inner, rest] = parts[..] {
            path = format!("{path}.{inner}");
            message = format!("{before}{rest}");
        }
        let at = if path == "." {
            String::new()
        } else {
            format!("{path}: ")
        };
        usage(format!("{shown}: {at}{message}"))
            .hint("`ferry connectors http` documents every manifest field")
    })?;
    validate(&manifest, shown)?;
    Ok(manifest)
}

fn bad(shown: &str, at: &str, msg: &str) -> anyhow::Error {
    usage(format!("{shown}: {at}: {msg}"))
        .hint("`ferry connectors http` documents every manifest field")
        .into()
}

fn pointer(shown: &str, at: &str, p: &Option<String>) -> Result<()> {
    match p {
        Some(p) if !p.is_empty() && !p.starts_with('/') => Err(bad(
            shown,
            at,
            &format!("\"{p}\" is not a JSON pointer: write \"\" for the whole body or start with / (\"/data\")"),
        )),
        _ => Ok(()),
    }
}

/// The methods an action or a group may name.
const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"];

fn method_name(shown: &str, at: &str, method: &str) -> Result<()> {
    if METHODS.contains(&method.to_ascii_uppercase().as_str()) {
        return Ok(());
    }
    Err(bad(
        shown,
        at,
        &format!("\"{method}\" is not one of {}", METHODS.join(", ")),
    ))
}

/// Every `{` of a template opens a placeholder that is closed and named
/// (`{id}`, `{workspace}`): an unclosed `{id` would otherwise be sent as is.
fn placeholders(shown: &str, at: &str, text: &str) -> Result<()> {
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            return Err(bad(
                shown,
                at,
                &format!(
                    "\"{text}\" has a {{ that is never closed: write {{name}} for a placeholder"
                ),
            ));
        };
        let name = &after[..close];
        if !is_placeholder_name(name) {
            return Err(bad(
                shown,
                at,
                &format!("\"{{{name}}}\" in \"{text}\" is not a placeholder: a name is letters, digits, _ and ."),
            ));
        }
        rest = &after[close + 1..];
    }
    Ok(())
}

/// Whether `name` may stand between braces: `{id}`, `{params.workspace}`.
pub fn is_placeholder_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
}

fn validate(m: &Manifest, shown: &str) -> Result<()> {
    let header_names = m
        .headers
        .iter()
        .map(|(k, v)| (format!("headers.{k}"), k, v))
        .chain(m.actions_iter().flat_map(|(name, a)| {
            a.headers
                .iter()
                .map(move |(k, v)| (format!("actions.{name}.headers.{k}"), k, v))
        }));
    for (at, name, value) in header_names {
        if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
            return Err(bad(
                shown,
                &at,
                &format!("\"{name}\" is not a valid header name"),
            ));
        }
        // CR, LF and other controls would split or corrupt the request; say
        // so now rather than when the first request fails to go out.
        if reqwest::header::HeaderValue::from_str(value).is_err() {
            return Err(bad(
                shown,
                &at,
                "the value holds a line break or another control character, which a header cannot carry",
            ));
        }
    }
    if let Auth::ApiKey {
        location: KeyLocation::Header,
        name,
        ..
    } = &m.auth
    {
        if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
            return Err(bad(
                shown,
                "auth.name",
                &format!("\"{name}\" is not a valid header name"),
            ));
        }
    }
    if let Some(url) = &m.base_url {
        if url::Url::parse(url).is_err() {
            return Err(bad(shown, "baseUrl", &format!("\"{url}\" is not a URL")));
        }
    }
    if let Some(r) = &m.rate_limit {
        r.check(shown, "rateLimit")?;
    }
    if let Some(r) = &m.retry {
        r.check(shown, "retry")?;
    }
    for (i, g) in m.groups.iter().enumerate() {
        let at = |f: &str| format!("groups[{i}].{f}");
        if g.name.is_empty() {
            return Err(bad(shown, &at("name"), "must not be empty"));
        }
        if let Some(j) = m.groups[..i].iter().position(|o| o.name == g.name) {
            return Err(bad(
                shown,
                &at("name"),
                &format!(
                    "\"{}\" is already the name of groups[{j}]; each group needs its own name",
                    g.name
                ),
            ));
        }
        if !g.path.starts_with('/') {
            return Err(bad(
                shown,
                &at("path"),
                "must start with / (\"/customers/*\", \"/v1/**\")",
            ));
        }
        for (k, method) in g.methods.iter().enumerate() {
            method_name(shown, &format!("groups[{i}].methods[{k}]"), method)?;
        }
        let (min, max) = RPS_RANGE;
        range::float(
            g.rps,
            At::file(shown, &at("rps")),
            min,
            max,
            "requests per second",
        )?;
        if let Some(b) = g.burst {
            let (min, max) = BURST_RANGE;
            range::int(
                u64::from(b),
                At::file(shown, &at("burst")),
                min,
                max,
                "requests",
            )?;
        }
        if let Some(n) = g.max_in_flight {
            let (min, max) = MAX_IN_FLIGHT_RANGE;
            range::int(
                n as u64,
                At::file(shown, &at("maxInFlight")),
                min,
                max,
                "requests",
            )?;
        }
    }
    for (name, action) in m.actions.named() {
        let Some(a) = action else { continue };
        let at = |f: &str| format!("actions.{name}.{f}");
        if let Some(method) = &a.method {
            method_name(shown, &at("method"), method)?;
        }
        if !a.path.starts_with('/') {
            return Err(bad(shown, &at("path"), "must start with /"));
        }
        placeholders(shown, &at("path"), &a.path)?;
        pointer(shown, &at("records"), &a.records)?;
        pointer(shown, &at("id"), &a.id)?;
        pointer(shown, &at("deleted"), &a.deleted)?;
        pointer(shown, &at("results"), &a.results)?;
        pointer(shown, &at("error"), &a.error)?;
        let bulk_only = [
            ("results", a.results.is_some()),
            ("error", a.error.is_some()),
            ("batchSize", a.batch_size.is_some()),
        ];
        let batched = matches!(name, "bulk" | "addMembers" | "removeMembers");
        for (field, set) in bulk_only {
            if set && !batched {
                return Err(bad(
                    shown,
                    &at(field),
                    "only bulk, addMembers and removeMembers take it",
                ));
            }
        }
        if name == "bulk" && a.results.is_none() {
            return Err(bad(
                shown,
                &at("results"),
                "bulk needs a JSON pointer to its per-record results",
            ));
        }
        if let Some(n) = a.batch_size {
            let (min, max) = BATCH_SIZE_RANGE;
            range::int(
                n as u64,
                At::file(shown, &at("batchSize")),
                min,
                max,
                "records",
            )?;
        }
        if a.since.is_some() && name != "getupdates" {
            return Err(bad(shown, &at("since"), "only getupdates takes since"));
        }
        if let Some(s) = &a.since {
            pointer(shown, &at("since.itemToken"), &s.item_token)?;
            pointer(shown, &at("since.nextToken"), &s.next_token)?;
        }
        if let Some(p) = &a.pagination {
            if name != "list" && name != "getupdates" {
                return Err(bad(
                    shown,
                    &at("pagination"),
                    "only list and getupdates are paged",
                ));
            }
            let stop = p.stop();
            pointer(shown, &at("pagination.stop.hasMore"), &stop.has_more)?;
            pointer(shown, &at("pagination.stop.total"), &stop.total)?;
            let (min, max) = PAGE_SIZE_RANGE;
            let size_at = at("pagination.pageSize");
            range::int(
                p.page_size(),
                At::file(shown, &size_at),
                min,
                max,
                "records",
            )?;
            if let Some(n) = stop.max_pages {
                let pages_at = at("pagination.stop.maxPages");
                let (min, max) = MAX_PAGES_RANGE;
                range::int(n, At::file(shown, &pages_at), min, max, "pages")?;
            }
            if let Pagination::Page { first_page, .. } = p {
                let (min, max) = FIRST_PAGE_RANGE;
                let first_at = at("pagination.firstPage");
                range::int(*first_page, At::file(shown, &first_at), min, max, "")?;
            }
            let signalled = stop.empty_page
                || stop.has_more.is_some()
                || stop.total.is_some()
                || stop.max_pages.is_some();
            match p {
                Pagination::Offset { .. } | Pagination::Page { .. } if !signalled => {
                    return Err(bad(shown, &at("pagination.stop"), "offset and page pagination need an end-of-data signal: emptyPage, hasMore, total or maxPages"));
                }
                Pagination::Cursor {
                    cursor_path,
                    cursor_header,
                    ..
                } => {
                    pointer(shown, &at("pagination.cursorPath"), cursor_path)?;
                    if cursor_path.is_none() == cursor_header.is_none() {
                        return Err(bad(
                            shown,
                            &at("pagination"),
                            "cursor pagination needs one of cursorPath or cursorHeader",
                        ));
                    }
                }
                Pagination::NextUrl {
                    next_path,
                    link_header,
                    ..
                } => {
                    pointer(shown, &at("pagination.nextPath"), next_path)?;
                    if next_path.is_none() && !link_header {
                        return Err(bad(
                            shown,
                            &at("pagination"),
                            "nextUrl pagination needs nextPath or \"linkHeader\": true",
                        ));
                    }
                }
                _ => {}
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(v: Value) -> String {
        parse(&v, "connector.json").unwrap_err().to_string()
    }

    #[test]
    fn mistakes_name_their_json_path() {
        assert_eq!(
            err(json!({"actions": {"get": {"path": 3}}})),
            "connector.json: actions.get.path: invalid type: integer `3`, expected a string"
        );
        assert!(
            err(json!({"actions": {"get": {"path": "/x", "metod": "GET"}}}))
                .starts_with("connector.json: actions.get.metod: unknown field `metod`")
        );
        assert!(err(json!({"actions": {}, "bogus": 1}))
            .starts_with("connector.json: bogus: unknown field `bogus`"));
        assert!(err(json!({"actions": {"list": {"path": "x"}}}))
            .contains("actions.list.path: must start with /"));
        assert!(err(
            json!({"actions": {"list": {"path": "/x", "pagination": {"type": "offset"}}}})
        )
        .contains("need an end-of-data signal"));
        assert!(
            err(json!({"actions": {"list": {"path": "/x", "records": "data"}}}))
                .contains("actions.list.records: \"data\" is not a JSON pointer")
        );
    }

    #[test]
    fn mistakes_inside_tagged_objects_keep_their_path() {
        assert_eq!(
            err(json!({"actions": {"list": {"path": "/x", "pagination": {"type": "offset", "pageSize": "10", "stop": {"total": "/t"}}}}})),
            "connector.json: actions.list.pagination.pageSize: invalid type: string \"10\", expected u64"
        );
        assert_eq!(
            err(json!({"auth": {"type": 3}, "actions": {}})),
            "connector.json: auth.type: invalid type: a number, expected a string"
        );
        assert_eq!(
            err(json!({"auth": {"type": "bearer", "tokn": "x"}, "actions": {}})),
            "connector.json: auth.tokn: unknown field `tokn`, expected `token`"
        );
        assert!(err(json!({"auth": {"token": "x"}, "actions": {}}))
            .contains("auth: missing field `type`"));
        assert_eq!(
            err(json!({"actions": {"get": {"path": "/c", "headers": {"Bad Name": "x"}}}})),
            "connector.json: actions.get.headers.Bad Name: \"Bad Name\" is not a valid header name"
        );
    }

    /// The fields serde accepts where `probe` has an unknown key `zzz`,
    /// read from its "expected one of" message.
    fn accepted(probe: Value) -> Vec<String> {
        let msg = err(probe);
        assert!(msg.contains("unknown field `zzz`"), "{msg}");
        msg.split('`')
            .skip(3)
            .step_by(2)
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn every_schema_field_is_documented() {
        let documented = |prefixes: &[&str], field: &str| {
            prefixes
                .iter()
                .any(|p| FIELDS.iter().any(|(f, _, _)| *f == format!("{p}{field}")))
        };
        let action = |extra: Value| {
            let mut a = json!({"path": "/x"});
            for (k, v) in extra.as_object().unwrap() {
                a[k] = v.clone();
            }
            json!({"actions": {"getupdates": a}})
        };
        let mut probes: Vec<(Vec<&str>, Value)> = vec![
            (vec![""], json!({"actions": {}, "zzz": 1})),
            (
                vec!["groups[]."],
                json!({"actions": {}, "groups": [{"zzz": 1}]}),
            ),
            (vec!["actions."], json!({"actions": {"zzz": 1}})),
            (
                vec!["actions.*.", "actions.getupdates."],
                action(json!({"zzz": 1})),
            ),
            (
                vec!["actions.getupdates.since."],
                action(json!({"since": {"param": "s", "zzz": 1}})),
            ),
            (
                vec!["actions.*.pagination.stop."],
                action(json!({"pagination": {"type": "offset", "stop": {"zzz": 1}}})),
            ),
        ];
        for kind in ["bearer", "basic", "apiKey", "oauth2"] {
            probes.push((
                vec!["auth."],
                json!({"actions": {}, "auth": {"type": kind, "zzz": 1}}),
            ));
        }
        for kind in ["offset", "page", "cursor", "nextUrl"] {
            probes.push((
                vec!["actions.*.pagination."],
                action(json!({"pagination": {"type": kind, "zzz": 1}})),
            ));
        }
        for (prefixes, probe) in probes {
            for field in accepted(probe) {
                assert!(
                    documented(&prefixes, &field),
                    "{prefixes:?}{field} is not in FIELDS"
                );
            }
        }
    }

    #[test]
    fn every_variant_parses() {
        let m = parse(
            &json!({
                "baseUrl": "https://api.example.com",
                "auth": {"type": "apiKey", "in": "query", "name": "api_key"},
                "groups": [{"name": "bulk", "path": "/bulk", "rps": 1}],
                "actions": {
                    "list": {"path": "/c", "pagination": {"type": "nextUrl", "linkHeader": true}},
                    "getupdates": {"path": "/c", "since": {"param": "since"}, "pagination": {"type": "cursor", "cursorHeader": "X-Next"}}
                }
            }),
            "connector.json",
        )
        .unwrap();
        assert!(matches!(
            m.auth,
            Auth::ApiKey {
                location: KeyLocation::Query,
                ..
            }
        ));
        assert_eq!(m.id_field, "id");
    }
}
