//! The errors a callback can answer with. Each caller's module turns them into its own
//! response format in one function (each function's `wire::error_response`).

use http::StatusCode;

use crate::metrics::Class;
use crate::store::StoreError;

#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    #[error("missing or invalid credentials")]
    Unauthorized,
    #[error("method not allowed: use POST")]
    MethodNotAllowed,
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An upstream service refused (a 4xx): answered with `status` (401 or 403) and the
    /// upstream's OAuth error code, when it gave a well-formed one.
    #[error("the upstream service refused the request")]
    UpstreamRefused {
        status: StatusCode,
        error: Option<String>,
    },
    /// An upstream service failed, answered garbage or did not answer: retryable.
    #[error("the upstream service failed: {reason}")]
    UpstreamFailed { timeout: bool, reason: String },
    /// The vendor this request needs is not configured for its caller (the stack's settings,
    /// or a platform tenant's own): 503, not retryable; the message says what to set.
    #[error("{0}")]
    Unconfigured(String),
    /// The caller spent its budget (number mapping's unmaskings per minute): 429 with
    /// `Retry-After`, the seconds until the budget's window ends.
    #[error("{reason}")]
    OverBudget {
        reason: String,
        retry_after_secs: u64,
    },
}

impl ApiError {
    /// Whether the caller may simply retry.
    pub fn retryable(&self) -> bool {
        matches!(
            self,
            ApiError::UpstreamFailed { .. } | ApiError::Store(StoreError::Unavailable(_))
        )
    }

    /// The outcome class a request failing with this error is counted under.
    pub fn class(&self) -> Class {
        match self {
            ApiError::Unauthorized => Class::AuthFailure,
            ApiError::MethodNotAllowed
            | ApiError::BadRequest(_)
            | ApiError::NotFound(_)
            | ApiError::OverBudget { .. } => Class::ClientError,
            ApiError::Store(_) => Class::StoreFailure,
            ApiError::UpstreamRefused { .. }
            | ApiError::UpstreamFailed { .. }
            | ApiError::Unconfigured(_) => Class::UpstreamFailure,
        }
    }

    /// The outcome class of a request's result.
    pub fn class_of<T>(result: &Result<T, ApiError>) -> Class {
        result.as_ref().err().map_or(Class::Ok, ApiError::class)
    }

    pub fn bad_request(msg: impl Into<String>) -> Self {
        ApiError::BadRequest(msg.into())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Store(StoreError::Unavailable(_)) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Store(StoreError::Failed(_)) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::UpstreamRefused { status, .. } => *status,
            ApiError::UpstreamFailed { timeout: true, .. } => StatusCode::GATEWAY_TIMEOUT,
            ApiError::UpstreamFailed { timeout: false, .. } => StatusCode::BAD_GATEWAY,
            ApiError::Unconfigured(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::OverBudget { .. } => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    /// What the caller is told: store failures are summarised, their details only logged.
    pub fn public_message(&self) -> String {
        match self {
            ApiError::Store(StoreError::Unavailable(_)) => {
                "storage is temporarily unavailable, retry".into()
            }
            ApiError::Store(StoreError::Failed(_)) => "internal storage error".into(),
            ApiError::UpstreamFailed { timeout: true, .. } => {
                "the upstream service did not answer in time, retry".into()
            }
            ApiError::UpstreamFailed { timeout: false, .. } => {
                "the upstream service failed, retry".into()
            }
            other => other.to_string(),
        }
    }
}
