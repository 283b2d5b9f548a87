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

/// Seconds in one window of the per-caller budget (`UNMASK_MAX_PER_MINUTE`).
pub const BUDGET_WINDOW_SECONDS: i64 = 60;

/// IDs a caller asks of UIDToPhone, taken from its budget of one minute: the store adds
/// `count` to the caller's count of `minute` only if the sum stays within `limit`, atomically
/// across every instance sharing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetTake {
    /// The BasicAuth user (per tenant: the store is the tenant's).
    pub caller: String,
    /// Epoch minute (`time / 60`).
    pub minute: i64,
    pub count: u32,
    pub limit: u32,
    /// When the count may be dropped (DynamoDB TTL).
    pub expires_at: i64,
}

impl BudgetTake {
    /// `count` IDs asked by `caller` at `now` (epoch seconds) under a budget of `limit`.
    pub fn at(now: i64, caller: &str, count: u32, limit: u32) -> Self {
        let minute = now.div_euclid(BUDGET_WINDOW_SECONDS);
        BudgetTake {
            caller: caller.to_string(),
            minute,
            count,
            limit,
            // An hour past its minute: long enough to read in an incident, never needed again.
            expires_at: (minute + 1) * BUDGET_WINDOW_SECONDS + 3600,
        }
    }

    /// Seconds until the window ends (what a refused caller is told to wait).
    pub fn retry_after(&self, now: i64) -> i64 {
        ((self.minute + 1) * BUDGET_WINDOW_SECONDS - now).clamp(1, BUDGET_WINDOW_SECONDS)
    }

    /// Whether the ask cannot fit even in an empty window (refused without asking the store).
    pub fn never_fits(&self) -> bool {
        self.count > self.limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_take_belongs_to_its_minute_and_waits_for_its_end() {
        let t = BudgetTake::at(120 + 59, "tencent", 3, 600);
        assert_eq!(t.minute, 2);
        assert_eq!(t.retry_after(179), 1);
        assert_eq!(BudgetTake::at(120, "x", 1, 1).retry_after(120), 60);
        assert!(t.expires_at > 180);
        assert!(BudgetTake::at(0, "x", 101, 100).never_fits());
        assert!(!BudgetTake::at(0, "x", 100, 100).never_fits());
    }
}
