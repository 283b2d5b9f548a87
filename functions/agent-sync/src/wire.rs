//! The agent directory's own endpoint, `POST /agents/softphone`: its request, its answer and
//! its one error format `{"error", "message"}`.

use cc_shared::web::error::ApiError;
use cc_shared::web::http::json_response;
use http::{header, HeaderValue, Response, StatusCode};
use lambda_http::Body;
use serde::{Deserialize, Serialize};

/// `POST /agents/softphone` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SoftphoneRequest {
    pub account: String,
}

/// What an agent needs to register a softphone (fetched live, never cached or stored).
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Softphone {
    #[serde(rename = "workNo")]
    pub work_no: String,
    #[serde(rename = "sipAccount")]
    pub sip_account: Option<String>,
    #[serde(rename = "sipPwd")]
    pub sip_pwd: Option<String>,
    #[serde(rename = "sipServiceIp")]
    pub sip_service_ip: Option<String>,
    #[serde(rename = "sipServicePort")]
    pub sip_service_port: Option<u16>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct DirectoryError {
    pub error: String,
    pub message: String,
}

fn no_store(mut resp: Response<Body>) -> Response<Body> {
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

pub fn softphone_response(s: &Softphone) -> Response<Body> {
    no_store(json_response(StatusCode::OK, s))
}

/// The one place where an error becomes the agent directory's format.
pub fn error_response(err: &ApiError) -> Response<Body> {
    cc_shared::web::http::error_headers(err, error_body(err))
}

fn error_body(err: &ApiError) -> Response<Body> {
    let error = match err {
        ApiError::Unauthorized => "unauthorized",
        ApiError::MethodNotAllowed | ApiError::BadRequest(_) => "invalid_request",
        ApiError::NotFound(_) => "not_found",
        ApiError::UpstreamRefused { .. } | ApiError::UpstreamFailed { .. } => "upstream_error",
        ApiError::Store(_) | ApiError::Unconfigured(_) => "unavailable",
        ApiError::OverBudget { .. } => "too_many_requests",
    };
    let mut resp = no_store(json_response(
        err.status(),
        &DirectoryError {
            error: error.into(),
            message: err.public_message(),
        },
    ));
    if matches!(err, ApiError::Unauthorized) {
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"agent-directory\", charset=\"UTF-8\""),
        );
    }
    resp
}
