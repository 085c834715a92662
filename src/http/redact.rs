//! Redaction of what HTTP traffic carries: credentials in headers, query
//! parameters and JSON bodies are shown as `***` wherever a request or a
//! response is printed (logs, errors, dry-run previews). Secret option values
//! are masked a second time by [`crate::output::Output`], the one writer.

use serde_json::Value;

use crate::output::REDACTED;

/// Names that carry credentials wherever they appear: a header, a query
/// parameter or a JSON key. Compared case-insensitively, `-` read as `_`.
const EXACT: &[&str] = &[
    "authorization",
    "proxy_authorization",
    "auth",
    "cookie",
    "set_cookie",
    "key",
    "token",
    "secret",
    "password",
    "passwd",
    "signature",
    "sig",
    "api_key",
    "apikey",
    "access_token",
    "refresh_token",
    "id_token",
    "client_secret",
    "private_key",
];

/// Parts that mark a name as a credential (`x-api-key`, `auth_token`,
/// `secretKey`, `privateKey`, `credentials`). Not every "key" is one
/// (`keyField`, `primaryKey`), nor every "auth…" (`author`): a value wrongly
/// taken for a secret is starred out of every output and cassette.
const PARTS: &[&str] = &[
    "token",
    "secret",
    "password",
    "passwd",
    "credential",
    "api_key",
    "apikey",
    "private_key",
    "privatekey",
    "access_key",
    "accesskey",
    "signing_key",
    "signingkey",
    "signature",
    "bearer",
];

/// Whether a header, parameter or key named `name` holds a credential.
pub fn is_sensitive(name: &str) -> bool {
    let n = name.to_ascii_lowercase().replace('-', "_");
    EXACT.contains(&n.as_str()) || PARTS.iter().any(|p| n.contains(p))
}

/// `url` with credential query parameters and a userinfo password as `***`.
/// The rest of the URL is left byte for byte as it was.
pub fn redact_url(url: &str) -> String {
    let (before_fragment, fragment) = match url.split_once('#') {
        Some((a, b)) => (a, Some(b)),
        None => (url, None),
    };
    let (base, query) = match before_fragment.split_once('?') {
        Some((a, b)) => (a, Some(b)),
        None => (before_fragment, None),
    };
    let mut out = redact_userinfo(base);
    if let Some(query) = query {
        out.push('?');
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) if is_sensitive(&decode(k)) => format!("{k}={REDACTED}"),
                _ => pair.to_string(),
            })
            .collect();
        out.push_str(&pairs.join("&"));
    }
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    out
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(&s.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

/// `scheme://user:pass@host/...` -> `scheme://user:***@host/...`.
fn redact_userinfo(base: &str) -> String {
    let Some(scheme_end) = base.find("://") else {
        return base.to_string();
    };
    let rest = &base[scheme_end + 3..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            let masked = if userinfo.contains(':') {
                format!("{user}:{REDACTED}")
            } else {
                REDACTED.to_string()
            };
            format!(
                "{}{masked}@{host}{}",
                &base[..scheme_end + 3],
                &rest[authority_end..]
            )
        }
        None => base.to_string(),
    }
}

/// `value` as it may be shown for a header named `name`.
pub fn header_value(name: &str, value: &str) -> String {
    if is_sensitive(name) {
        REDACTED.to_string()
    } else {
        value.to_string()
    }
}

/// A copy of `value` with every credential-named key's value as `***`.
pub fn redact_json(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let v = if is_sensitive(k) && !v.is_null() {
                        Value::String(REDACTED.to_string())
                    } else {
                        redact_json(v)
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(redact_json).collect()),
        other => other.clone(),
    }
}

/// A response or request body as it may be logged: JSON with credential keys
/// masked, form bodies with credential fields masked, other text as is.
pub fn redact_body_text(text: &str) -> String {
    if let Ok(v) = serde_json::from_str::<Value>(text) {
        return serde_json::to_string(&redact_json(&v)).unwrap_or_default();
    }
    if !text.contains(['{', '[', ' ', '\n']) && text.contains('=') {
        // Looks like a form body: `a=1&client_secret=...`.
        return redact_url(&format!("?{text}"))[1..].to_string();
    }
    text.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_query_parameters_are_masked() {
        assert_eq!(
            redact_url("https://api.example.com/v1/c?limit=5&api_key=abc&Token=x&access_token=y#f"),
            "https://api.example.com/v1/c?limit=5&api_key=***&Token=***&access_token=***#f"
        );
        assert_eq!(
            redact_url("https://u:pw@example.com/a?signature=s&page=2"),
            "https://u:***@example.com/a?signature=***&page=2"
        );
        assert_eq!(redact_url("/plain/path"), "/plain/path");
    }

    #[test]
    fn credential_headers_and_keys_are_masked() {
        for name in [
            "Authorization",
            "cookie",
            "X-Api-Key",
            "x-auth-token",
            "Api-Key",
        ] {
            assert!(is_sensitive(name), "{name}");
        }
        for name in ["apiToken", "privateKey", "accessKey", "credentials", "auth"] {
            assert!(is_sensitive(name), "{name}");
        }
        for name in [
            "Content-Type",
            "Accept",
            "X-Request-Id",
            "email",
            "keyField",
            "primaryKey",
            "author",
        ] {
            assert!(!is_sensitive(name), "{name}");
        }
        let body = serde_json::json!({"user": {"password": "p", "name": "n"}, "access_token": "t"});
        assert_eq!(
            redact_json(&body),
            serde_json::json!({"user": {"password": "***", "name": "n"}, "access_token": "***"})
        );
        assert_eq!(
            redact_body_text("grant_type=client_credentials&client_secret=abc"),
            "grant_type=client_credentials&client_secret=***"
        );
    }
}
