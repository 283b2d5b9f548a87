//! Huawei CEC's agent directory: the AK/SK token API, `queryAgentInfo`, and our copy of the
//! agents. The softphone password (`sipPwd`) is only ever passed through, never stored.

use http::{header, HeaderValue, Response, StatusCode};
use lambda_http::Body;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::http::json_response;

/// `POST /apigovernance/api/oauth/tokenByAkSk` body.
#[derive(Debug, Serialize, Deserialize)]
pub struct TokenRequest {
    pub app_key: String,
    pub app_secret: String,
}

/// Its answer (`Expires` arrives as a string of seconds).
#[derive(Debug, Deserialize, Serialize)]
pub struct TokenAnswer {
    #[serde(rename = "AccessToken")]
    pub access_token: String,
    #[serde(rename = "Expires", default)]
    pub expires: Option<serde_json::Value>,
}

/// A value the CEC sends as a number or as a string of digits.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum NumberOrString {
    Number(u64),
    String(String),
}

impl NumberOrString {
    pub fn as_text(&self) -> String {
        match self {
            NumberOrString::Number(n) => n.to_string(),
            NumberOrString::String(s) => s.trim().to_string(),
        }
    }
}

/// `queryAgentInfo`'s answer.
#[derive(Debug, Deserialize, Serialize)]
pub struct AgentInfo {
    #[serde(rename = "sipServiceIp", default)]
    pub sip_service_ip: Option<String>,
    #[serde(rename = "sipServicePort", default)]
    pub sip_service_port: Option<NumberOrString>,
    pub agents: Vec<CecAgent>,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct CecAgent {
    #[serde(rename = "workNo")]
    pub work_no: Option<NumberOrString>,
    #[serde(rename = "sipAccount", default)]
    pub sip_account: Option<String>,
    #[serde(rename = "sipPwd", default)]
    pub sip_pwd: Option<String>,
    #[serde(rename = "accountCode", default)]
    pub account_code: Option<String>,
}

/// Our copy of an agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Agent {
    pub work_no: String,
    /// CEC sign-in account.
    pub account_code: Option<String>,
    /// Softphone number.
    pub sip_account: Option<String>,
    pub active: bool,
    /// Epoch seconds: first seen by a sync.
    pub first_seen: i64,
    /// Epoch seconds: the sync that last saw these details (added, changed or reactivated).
    pub last_seen: i64,
    /// Epoch seconds: the first sync that no longer saw the agent (inactive agents).
    pub inactive_since: Option<i64>,
}

/// What a sync did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SyncCounts {
    pub added: usize,
    pub updated: usize,
    pub deactivated: usize,
    pub unchanged: usize,
}

/// The last successful sync.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SyncState {
    pub at: i64,
    pub counts: SyncCounts,
}

/// Whether `s` can be a work number (CEC's are integers; accept short tokens generally).
pub fn valid_work_no(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 32
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Whether `s` can be a business-system account name to link.
pub fn valid_account(s: &str) -> bool {
    !s.is_empty() && s.chars().count() <= 128 && !s.chars().any(char::is_control)
}

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
    crate::http::error_headers(err, error_body(err))
}

fn error_body(err: &ApiError) -> Response<Body> {
    let error = match err {
        ApiError::Unauthorized => "unauthorized",
        ApiError::MethodNotAllowed | ApiError::BadRequest(_) => "invalid_request",
        ApiError::NotFound(_) => "not_found",
        ApiError::UpstreamRefused { .. } | ApiError::UpstreamFailed { .. } => "upstream_error",
        ApiError::Store(_) => "unavailable",
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
