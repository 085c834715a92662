//! The vendor's own error message, dug out of an error response's body in the
//! shapes APIs commonly use, so an HTTP error says what the API said.

use serde_json::Value;

/// How much of a non-JSON body an error message shows.
const MAX_TEXT: usize = 300;

/// The message in `body`: `{"message"}`, `{"error": "..."}`,
/// `{"error": {"message"}}`, `{"errors": [{"message"|"detail"}]}`,
/// `{"detail"}`, else the body text, truncated. `None` for an empty body.
pub fn vendor_message(body: &str) -> Option<String> {
    let body = body.trim();
    if body.is_empty() {
        return None;
    }
    if let Ok(v) = serde_json::from_str::<Value>(body) {
        if let Some(m) = from_json(&v) {
            return Some(m);
        }
    }
    Some(truncate(body))
}

fn from_json(v: &Value) -> Option<String> {
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
    if let Some(m) = text(v.get("message")) {
        return Some(m);
    }
    match v.get("error") {
        Some(Value::String(s)) => {
            let desc = text(v.get("error_description"));
            return Some(match desc {
                Some(d) => format!("{s}: {d}"),
                None => s.clone(),
            });
        }
        Some(e @ Value::Object(_)) => {
            if let Some(m) = text(e.get("message")).or_else(|| text(e.get("detail"))) {
                return Some(m);
            }
        }
        _ => {}
    }
    if let Some(Value::Array(errors)) = v.get("errors") {
        let msgs: Vec<String> = errors
            .iter()
            .filter_map(|e| match e {
                Value::String(s) => Some(s.clone()),
                _ => text(e.get("message")).or_else(|| text(e.get("detail"))),
            })
            .collect();
        if !msgs.is_empty() {
            return Some(msgs.join("; "));
        }
    }
    text(v.get("detail")).or_else(|| text(v.get("title")))
}

fn truncate(s: &str) -> String {
    if s.chars().count() <= MAX_TEXT {
        return s.to_string();
    }
    let cut: String = s.chars().take(MAX_TEXT).collect();
    format!("{cut}…")
}

#[cfg(test)]
mod tests {
    use super::vendor_message;

    #[test]
    fn common_shapes_are_understood() {
        let cases = [
            (r#"{"message": "email is invalid"}"#, "email is invalid"),
            (r#"{"error": "invalid_client"}"#, "invalid_client"),
            (
                r#"{"error": {"message": "no such customer", "code": 4}}"#,
                "no such customer",
            ),
            (r#"{"errors": [{"message": "a"}, {"detail": "b"}]}"#, "a; b"),
            (r#"{"detail": "Not found."}"#, "Not found."),
            ("Bad Gateway", "Bad Gateway"),
        ];
        for (body, want) in cases {
            assert_eq!(vendor_message(body).as_deref(), Some(want), "{body}");
        }
        assert_eq!(vendor_message("  "), None);
        let long = "x".repeat(1000);
        assert_eq!(vendor_message(&long).unwrap().chars().count(), 301);
    }
}
