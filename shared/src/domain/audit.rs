//! Token-exchange audit records: who asked for a token for whom, and what came of it. No token
//! material: OAuth subject tokens appear only as a hash prefix.

use sha2::{Digest, Sha256};

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AuditRecord {
    /// Epoch seconds.
    pub time: i64,
    /// Unique id (the JWT's jti where there is one).
    pub id: String,
    /// The BasicAuth user that asked.
    pub caller: String,
    /// `jwt` or `oauth`.
    pub mode: String,
    /// The agent's account name (JWT mode) or `sha256:<16 hex>` of the subject token (OAuth).
    pub subject: String,
    /// `ok`, `refused`, `upstream_error`, `timeout`.
    pub outcome: String,
    /// The signed JWT's `jti` (JWT mode).
    pub jti: Option<String>,
    /// Epoch seconds after which the record is gone (DynamoDB TTL).
    #[serde(skip)]
    pub expires_at: i64,
}

/// How a subject token is named in records and cache keys: a hash prefix, never the token.
pub fn token_fingerprint(token: &str) -> String {
    format!(
        "sha256:{}",
        hex::encode(&Sha256::digest(token.as_bytes())[..8])
    )
}
