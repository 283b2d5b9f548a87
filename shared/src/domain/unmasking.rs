//! The record of an unmasking: a user ID turned back into a customer's number (number
//! mapping's UIDToPhone), written before the number leaves (README "Privacy"). It names who
//! asked and for which ID, never the number.

use serde::Serialize;

/// One ID asked of UIDToPhone, by whom and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unmasking {
    /// Epoch seconds.
    pub time: i64,
    /// Unique and time-ordered (`uid::sortable_id`).
    pub id: String,
    /// The user ID asked (our ID, lowercase key form).
    pub uid: String,
    /// The BasicAuth user that asked (`NAME@ID` for a platform tenant's caller).
    pub caller: String,
    /// API Gateway's request ID (the local gateway's own), "" when unknown.
    pub request_id: String,
    /// The client's address as API Gateway saw it, "" when unknown.
    pub source_ip: String,
    /// Epoch seconds after which the record is gone (DynamoDB TTL).
    #[serde(skip)]
    pub expires_at: i64,
}
