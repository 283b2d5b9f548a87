//! Small helpers shared by the HTTP handlers.

use http::{header, Response, StatusCode};
use lambda_http::{Body, Request};

use crate::web::error::ApiError;

/// Why a request's body could not be handed to the handler whole: set as a request extension
/// by whoever built the request (the Lambda event conversion, the local gateway) and answered
/// by [`body_bytes`] in the caller's format, after the credentials and the method are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyDefect {
    /// Larger than the builder reads (its size in bytes, or at least that).
    TooLarge(usize),
    /// Marked base64-encoded (`isBase64Encoded`) but not base64.
    NotBase64,
    /// The connection did not deliver it: malformed chunking, fewer bytes than
    /// `Content-Length`, or too slow (the local gateway's body-read timeout).
    Incomplete,
}

/// The body's bytes, refused when over `limit` (checked before any parsing) or defective.
pub fn body_bytes(req: &Request, limit: usize) -> Result<&[u8], ApiError> {
    match req.extensions().get::<BodyDefect>() {
        None => {}
        Some(BodyDefect::TooLarge(_)) => {
            return Err(ApiError::bad_request(format!(
                "request body is larger than {limit} bytes"
            )))
        }
        Some(BodyDefect::NotBase64) => {
            return Err(ApiError::bad_request(
                "request body is marked base64-encoded but is not valid base64",
            ))
        }
        Some(BodyDefect::Incomplete) => {
            return Err(ApiError::bad_request(
                "request body was not received whole (malformed chunked encoding, shorter \
                 than its Content-Length, or too slow)",
            ))
        }
    }
    let bytes: &[u8] = match req.body() {
        Body::Empty => &[],
        Body::Text(s) => s.as_bytes(),
        Body::Binary(b) => b,
        _ => &[],
    };
    if bytes.len() > limit {
        return Err(ApiError::bad_request(format!(
            "request body is larger than {limit} bytes"
        )));
    }
    Ok(bytes)
}

/// Only POST reaches the handlers' logic.
pub fn require_post(req: &Request) -> Result<(), ApiError> {
    if req.method() == http::Method::POST {
        Ok(())
    } else {
        Err(ApiError::MethodNotAllowed)
    }
}

/// Headers every caller's error answer carries, whatever its format: `Allow` on a 405
/// (RFC 9110 15.5.6), `Retry-After` on a 429 (RFC 6585 4). Called by each vendor's `error_response`.
pub fn error_headers(err: &ApiError, mut resp: Response<Body>) -> Response<Body> {
    match err {
        ApiError::MethodNotAllowed => {
            resp.headers_mut()
                .insert(header::ALLOW, header::HeaderValue::from_static("POST"));
        }
        ApiError::OverBudget {
            retry_after_secs, ..
        } => {
            resp.headers_mut().insert(
                header::RETRY_AFTER,
                header::HeaderValue::from(*retry_after_secs),
            );
        }
        _ => {}
    }
    resp
}

pub fn json_response<T: serde::Serialize>(status: StatusCode, value: &T) -> Response<Body> {
    let body = serde_json::to_string(value).unwrap_or_else(|_| "{}".into());
    let mut resp = Response::new(Body::Text(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    resp
}

/// A serde_json error described without echoing the input it failed on.
pub fn describe_json_error(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    match e.classify() {
        Category::Syntax | Category::Eof | Category::Io => {
            format!(
                "body is not valid JSON (line {}, column {})",
                e.line(),
                e.column()
            )
        }
        Category::Data => {
            // serde names the field and the expected type but also quotes the offending value;
            // values are dropped so that neither the answer nor a log line repeats a number.
            let msg = e.to_string();
            let msg = msg.split(" at line").next().unwrap_or(&msg);
            format!(
                "body does not match the request schema: {}",
                redact_quoted(msg)
            )
        }
    }
}

/// Replaces quoted values with `…`: every `"..."` span, and every `` `...` `` span holding a
/// digit (serde puts field names in backticks too, and those are worth keeping).
fn redact_quoted(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    let mut rest = msg;
    while let Some(i) = rest.find(['"', '`']) {
        let quote = &rest[i..i + 1];
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let Some(len) = after.find(quote) else {
            out.push('…');
            return out;
        };
        let inner = &after[..len];
        if quote == "\"" || inner.chars().any(|c| c.is_ascii_digit()) {
            out.push('…');
        } else {
            out.push_str(&rest[i..i + 1 + len + 1]);
        }
        rest = &after[len + 1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_errors_do_not_echo_values() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct R {
            #[serde(rename = "Numbers")]
            numbers: Vec<String>,
        }
        for body in [
            r#"{"Numbers": [13988888888]}"#,
            r#"{"Numbers": "13988888888"}"#,
            r#"{"Numbers": ["13988888888"#,
        ] {
            let e = serde_json::from_str::<R>(body).unwrap_err();
            let msg = describe_json_error(&e);
            assert!(!msg.contains("13988888888"), "{msg}");
            assert!(msg.starts_with("body "), "{msg}");
        }
        let e = serde_json::from_str::<R>("{}").unwrap_err();
        assert!(describe_json_error(&e).contains("`Numbers`"));
    }
}
