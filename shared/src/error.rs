//! The errors a callback can answer with. Each caller's module turns them into its own
//! response format in one function (`tencent::error_response`, ...).

use http::StatusCode;

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("missing or invalid credentials")]
    Unauthorized,
    #[error("method not allowed: use POST")]
    MethodNotAllowed,
    #[error("{0}")]
    BadRequest(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ApiError {
    pub fn bad_request(msg: impl Into<String>) -> Self {
        ApiError::BadRequest(msg.into())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Store(StoreError::Unavailable(_)) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Store(StoreError::Failed(_)) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// What the caller is told: store failures are summarised, their details only logged.
    pub fn public_message(&self) -> String {
        match self {
            ApiError::Store(StoreError::Unavailable(_)) => {
                "storage is temporarily unavailable, retry".into()
            }
            ApiError::Store(StoreError::Failed(_)) => "internal storage error".into(),
            other => other.to_string(),
        }
    }
}
