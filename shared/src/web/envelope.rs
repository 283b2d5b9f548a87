//! What every callback does with a request before its own logic, in one order: the caller's
//! credentials (401), then the method (405), then the body (400: over the function's limit, or
//! not received whole). So every function answers an unauthenticated request 401, whatever
//! else is wrong with it, and says nothing more.

use std::time::Instant;

use lambda_http::Request;

use super::auth::Credentials;
use super::error::ApiError;
use super::http::{body_bytes, require_post};

/// The body of an admitted request. `caller` is set as soon as the credentials pass, so that
/// the request's log line names the caller even when the method or body is refused.
pub fn admit<'r>(
    req: &'r Request,
    credentials: &Credentials,
    max_body: usize,
    caller: &mut Option<String>,
) -> Result<&'r [u8], ApiError> {
    let user = credentials
        .verify(req.headers().get(http::header::AUTHORIZATION))
        .ok_or(ApiError::Unauthorized)?;
    *caller = Some(user);
    require_post(req)?;
    body_bytes(req, max_body)
}

/// A request's `latency_ms` log field: milliseconds since `started`, to the microsecond.
pub fn latency_ms(started: Instant) -> f64 {
    (started.elapsed().as_secs_f64() * 1e6).round() / 1e3
}
