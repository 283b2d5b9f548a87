//! Huawei AICC's third-party identity authentication interface: the IVR posts call-associated
//! data and branches on `calldata.data.verifyResult` (1 passed, 2 failed, 3 abnormal).

use http::{header, Response, StatusCode};
use lambda_http::Body;
use serde::{Deserialize, Serialize};

use cc_shared::domain::identity::Reason;
use cc_shared::web::error::ApiError;
use cc_shared::web::http::json_response;

use crate::verify::Verdict;

/// Huawei's verifyResult for a reason: 1 passed, 2 failed, 3 abnormal.
pub fn verify_result(reason: Reason) -> u8 {
    reason.result()
}

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct VerifyData {
    #[serde(rename = "verifyResult")]
    pub verify_result: u8,
    /// The reason code (`ok`, `wrong_pin`, `locked`, ...).
    #[serde(rename = "verifyReturn1")]
    pub verify_return1: String,
    /// Attempts left before a lockout, as a decimal string ("" where it does not apply).
    #[serde(rename = "verifyReturn2")]
    pub verify_return2: String,
    /// The customer's user ID from number mapping ("" when unknown).
    #[serde(rename = "verifyReturn3")]
    pub verify_return3: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct VerifyCalldata {
    pub data: VerifyData,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct VerifyResponse {
    pub calldata: VerifyCalldata,
    /// For people reading responses (the IVR reads only `calldata`): why a request was refused.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub message: Option<String>,
}

fn response(
    status: StatusCode,
    verify_result: u8,
    reason: &str,
    answer: Option<&Verdict>,
    message: Option<String>,
) -> Response<Body> {
    json_response(
        status,
        &VerifyResponse {
            calldata: VerifyCalldata {
                data: VerifyData {
                    verify_result,
                    verify_return1: reason.to_string(),
                    verify_return2: answer
                        .and_then(|a| a.attempts_left)
                        .map(|n| n.to_string())
                        .unwrap_or_default(),
                    verify_return3: answer.and_then(|a| a.uid.clone()).unwrap_or_default(),
                },
            },
            message,
        },
    )
}

/// HTTP 200 with the verification's result.
pub fn answer_response(answer: &Verdict) -> Response<Body> {
    response(
        StatusCode::OK,
        verify_result(answer.reason),
        answer.reason.as_str(),
        Some(answer),
        None,
    )
}

/// The one place where an error becomes Huawei's format: HTTP 200 with verifyResult 3 (so the
/// IVR can branch), except missing or wrong credentials, which get 401.
pub fn error_response(err: &ApiError) -> Response<Body> {
    cc_shared::web::http::error_headers(err, error_body(err))
}

fn error_body(err: &ApiError) -> Response<Body> {
    match err {
        ApiError::Unauthorized => {
            let mut resp = response(
                StatusCode::UNAUTHORIZED,
                3,
                "unauthorized",
                None,
                Some(err.public_message()),
            );
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static(
                    "Basic realm=\"identity-verification\", charset=\"UTF-8\"",
                ),
            );
            resp
        }
        ApiError::Store(_)
        | ApiError::UpstreamFailed { .. }
        | ApiError::UpstreamRefused { .. }
        | ApiError::Unconfigured(_)
        | ApiError::OverBudget { .. } => response(
            StatusCode::OK,
            verify_result(Reason::Unavailable),
            Reason::Unavailable.as_str(),
            None,
            Some(err.public_message()),
        ),
        ApiError::BadRequest(_) | ApiError::NotFound(_) | ApiError::MethodNotAllowed => response(
            StatusCode::OK,
            verify_result(Reason::BadRequest),
            Reason::BadRequest.as_str(),
            None,
            Some(err.public_message()),
        ),
    }
}
