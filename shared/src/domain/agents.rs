//! Our copy of the Huawei CEC agent directory: agents, sync results, and the rules for work
//! numbers and linked accounts.

use serde::Serialize;

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
    !s.is_empty() && valid_text(s)
}

/// Longest text of the directory kept (account codes, softphone numbers, addresses).
pub const MAX_TEXT_CHARS: usize = 128;

/// Whether `s` may be kept and printed as a text of the directory: at most
/// [`MAX_TEXT_CHARS`] characters and no control character (a CR, LF or escape sequence would
/// break an operator's table or terminal).
pub fn valid_text(s: &str) -> bool {
    s.chars().count() <= MAX_TEXT_CHARS && !s.chars().any(char::is_control)
}

/// `s` with every control character escaped (`\r`, `\u{1b}`), for printing text stored before
/// it was checked.
pub fn printable(s: &str) -> std::borrow::Cow<'_, str> {
    if s.chars().any(char::is_control) {
        std::borrow::Cow::Owned(s.chars().flat_map(char::escape_default).collect::<String>())
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}
