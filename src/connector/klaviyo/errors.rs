//! How Klaviyo's errors read: the JSON:API `errors[].detail` with a hint
//! per status, and which answers refuse the profile rather than the call.

use anyhow::Result;
use serde_json::Value;

use crate::connector::saas;
use crate::connector::Rejection;
use crate::error::Failure;
use crate::http::{status_error, Engine, RequestSpec, Response};

pub(super) fn vendor_error(req: &RequestSpec, resp: &Response) -> Failure {
    let mut f = status_error(req, resp);
    let body: Value = serde_json::from_str(&resp.body).unwrap_or(Value::Null);
    let first = body.pointer("/errors/0");
    // A conflict names the profile that holds the identifiers.
    if let Some(dup) = first
        .and_then(|e| e.pointer("/meta/duplicate_profile_id"))
        .and_then(Value::as_str)
    {
        f.message.push_str(&format!(" (existing profile {dup})"));
    }
    match resp.status {
        401 => f.hint("check apiKey in account.json (and the .env variable it names): Klaviyo wants a private API key"),
        400 if !profile_refusal(resp) => f.hint("Klaviyo answers 400 to an invalid or missing API key too: check apiKey in account.json (and the .env variable it names)"),
        403 => f.hint("the private API key lacks a scope this call needs (profiles:read/write, lists:read/write, data-privacy:write); edit the key in Klaviyo's Settings > API keys"),
        409 => f.hint("a profile with these identifiers exists: patch it by id, or write it with import or export, which upsert"),
        _ => f,
    }
}

/// Whether a 4xx answer refuses the profile sent, rather than the call:
/// Klaviyo's guides say "A 400 error indicates an invalid or missing API
/// key", so a 400 is the profile's fault only as a JSON:API errors document
/// (Klaviyo's error body) none of whose codes is about authentication; an
/// HTML page from the edge, or `authentication_failed`, stops the run.
fn profile_refusal(resp: &Response) -> bool {
    let body: Value = serde_json::from_str(&resp.body).unwrap_or(Value::Null);
    match body.get("errors").and_then(Value::as_array) {
        Some(errors) if !errors.is_empty() => !errors.iter().any(|e| {
            e.get("code")
                .and_then(Value::as_str)
                .is_some_and(|c| c.contains("authenticat"))
        }),
        _ => false,
    }
}

/// In export, a 409, 422 or [`profile_refusal`] 400 is the profile's fault: a [`Rejection`].
pub(super) async fn send_profile(engine: &Engine, req: &RequestSpec) -> Result<Response> {
    let resp = engine.execute(req).await?;
    if resp.is_success() {
        return Ok(resp);
    }
    let f = vendor_error(req, &resp);
    let refused = match resp.status {
        409 | 422 => true,
        400 => profile_refusal(&resp),
        _ => false,
    };
    if refused {
        return Err(Rejection(f.message).into());
    }
    Err(f.into())
}

/// The `data.id` of a single-resource answer.
pub(super) fn data_id(req: &RequestSpec, body: &Value) -> Result<String> {
    saas::string_at(req, body, "/data/id", "data.id")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_400_rejects_the_profile_only_as_a_json_api_refusal() {
        let resp = |body: &str| Response {
            status: 400,
            headers: Vec::new(),
            body: body.into(),
        };
        let invalid = r#"{"errors": [{"id": "x", "code": "invalid", "title": "Invalid input.", "detail": "Invalid phone number format"}]}"#;
        let auth = r#"{"errors": [{"id": "x", "code": "authentication_failed", "title": "Incorrect authentication credentials.", "detail": "Missing or invalid private key."}]}"#;
        assert!(profile_refusal(&resp(invalid)));
        assert!(!profile_refusal(&resp(auth)));
        assert!(!profile_refusal(&resp("<html>400 Bad Request</html>")));
        let req = RequestSpec::new("POST", "https://a.klaviyo.com/api/profile-import");
        let f = vendor_error(&req, &resp(auth));
        assert!(f
            .hint
            .as_deref()
            .is_some_and(|h| h.contains("invalid or missing API key")));
    }
}
