//! Tencent Cloud Contact Center's number-mapping interface: wire types and responses.
//! Field names follow Tencent's document exactly (`Numbers`, `Mode`, `Code`, `Results`, ...).

use http::{header, Response, StatusCode};
use lambda_http::Body;
use serde::{Deserialize, Serialize};

use cc_shared::web::error::ApiError;
use cc_shared::web::http::json_response;

#[derive(Debug, Deserialize)]
pub struct MappingRequest {
    #[serde(rename = "Numbers")]
    pub numbers: Vec<String>,
    #[serde(rename = "Mode")]
    pub mode: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    PhoneToUid,
    UidToPhone,
}

impl Mode {
    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "PhoneToUID" => Some(Mode::PhoneToUid),
            "UIDToPhone" => Some(Mode::UidToPhone),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::PhoneToUid => "PhoneToUID",
            Mode::UidToPhone => "UIDToPhone",
        }
    }
}

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct MappingResult {
    #[serde(rename = "Key")]
    pub key: String,
    #[serde(rename = "Value")]
    pub value: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct MappingResponse {
    #[serde(rename = "Code")]
    pub code: i32,
    /// Only with a non-zero `Code`; Tencent ignores it, people reading logs do not.
    #[serde(rename = "Message", skip_serializing_if = "Option::is_none", default)]
    pub message: Option<String>,
    #[serde(rename = "Results", default)]
    pub results: Vec<MappingResult>,
}

/// `Code` values: 0 is success, errors use their HTTP status number.
pub fn code_for(err: &ApiError) -> i32 {
    i32::from(err.status().as_u16())
}

pub fn ok_response(results: Vec<MappingResult>) -> Response<Body> {
    json_response(
        StatusCode::OK,
        &MappingResponse {
            code: 0,
            message: None,
            results,
        },
    )
}

/// The one place where an error becomes Tencent's response format.
pub fn error_response(err: &ApiError) -> Response<Body> {
    cc_shared::web::http::error_headers(err, error_body(err))
}

fn error_body(err: &ApiError) -> Response<Body> {
    let mut resp = json_response(
        err.status(),
        &MappingResponse {
            code: code_for(err),
            message: Some(err.public_message()),
            results: Vec::new(),
        },
    );
    if matches!(err, ApiError::Unauthorized) {
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Basic realm=\"number-mapping\", charset=\"UTF-8\""),
        );
    }
    resp
}
