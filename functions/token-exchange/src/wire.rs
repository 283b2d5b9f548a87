//! Alibaba Cloud AICCS token exchange (Fuyun IdP): our endpoint's wire types and the IdP's
//! answer. Errors are OAuth-style `{"error", "error_description"}`.

use http::{header, HeaderValue, Response, StatusCode};
use lambda_http::Body;
use serde::{Deserialize, Serialize};

use cc_shared::web::error::ApiError;
use cc_shared::web::http::json_response;

/// `POST /token-exchange` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    pub mode: String,
    #[serde(rename = "accountName", default)]
    pub account_name: Option<String>,
    #[serde(rename = "subjectToken", default)]
    pub subject_token: Option<String>,
}

/// The access token as the IdP gave it (`expires_in` counts down while cached).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: u64,
    #[serde(default)]
    pub scope: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct OAuthError {
    pub error: String,
    pub error_description: String,
    /// True where retrying the same request may succeed.
    #[serde(default)]
    pub retryable: bool,
}

fn no_store(mut resp: Response<Body>) -> Response<Body> {
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

pub fn ok_response(token: &TokenResponse) -> Response<Body> {
    no_store(json_response(StatusCode::OK, token))
}

/// The one place where an error becomes the OAuth-style format.
pub fn error_response(err: &ApiError) -> Response<Body> {
    cc_shared::web::http::error_headers(err, error_body(err))
}

fn error_body(err: &ApiError) -> Response<Body> {
    let error = match err {
        ApiError::Unauthorized => "invalid_client".to_string(),
        ApiError::BadRequest(_) | ApiError::NotFound(_) | ApiError::MethodNotAllowed => {
            "invalid_request".to_string()
        }
        ApiError::UpstreamRefused { error, .. } => {
            error.clone().unwrap_or_else(|| "access_denied".to_string())
        }
        ApiError::UpstreamFailed { .. }
        | ApiError::Store(_)
        | ApiError::Unconfigured(_)
        | ApiError::OverBudget { .. } => "temporarily_unavailable".to_string(),
    };
    let description = match err {
        ApiError::UpstreamRefused { .. } => {
            "the AICCS identity provider refused the token exchange".to_string()
        }
        other => other.public_message(),
    };
    let mut resp = no_store(json_response(
        err.status(),
        &OAuthError {
            error,
            error_description: description,
            retryable: err.retryable(),
        },
    ));
    if matches!(err, ApiError::Unauthorized) {
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"token-exchange\", charset=\"UTF-8\""),
        );
    }
    if err.retryable() {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    resp
}
