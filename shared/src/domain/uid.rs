//! Opaque user IDs handed to Tencent instead of numbers.
//!
//! Generated IDs are 16 characters of lowercase Crockford base32 (`0-9a-z` without
//! `i l o u`): 80 bits from the operating system's CSPRNG, URL-safe, unambiguous to read out
//! or type, never derived from the number. Imported IDs (an enterprise's CRM IDs) are 1 to 64
//! ASCII letters, digits, `-` and `_` with at least one letter, so none can be taken for a
//! phone number.
//!
//! IDs match case-insensitively (`CRM-7` and `crm-7` are one ID, as generated IDs always
//! were): equality, hashing and the stored key use the lowercase form, while the spelling an
//! ID was created with is what Tencent is given.

use std::fmt;
use std::hash::{Hash, Hasher};

pub const UID_LEN: usize = 16;
/// Longest imported ID.
pub const UID_MAX_LEN: usize = 64;
const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

#[derive(Clone)]
pub struct Uid(String);

impl PartialEq for Uid {
    fn eq(&self, other: &Self) -> bool {
        self.0.eq_ignore_ascii_case(&other.0)
    }
}

impl Eq for Uid {}

impl Hash for Uid {
    fn hash<H: Hasher>(&self, state: &mut H) {
        for b in self.0.bytes() {
            state.write_u8(b.to_ascii_lowercase());
        }
    }
}

impl PartialOrd for Uid {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Uid {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key().cmp(&other.key())
    }
}

/// Why an imported ID was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UidError {
    #[error("ID is empty")]
    Empty,
    #[error("ID is longer than {UID_MAX_LEN} characters")]
    TooLong,
    #[error("ID has a character other than ASCII letters, digits, '-' and '_'")]
    BadCharacter,
    #[error("ID has no letter (it could be taken for a number)")]
    NoLetter,
}

#[derive(Debug, thiserror::Error)]
#[error("the operating system's random source failed: {0}")]
pub struct RandomError(String);

impl RandomError {
    pub fn new(reason: String) -> Self {
        RandomError(reason)
    }
}

impl Uid {
    pub fn generate() -> Result<Self, RandomError> {
        let mut bytes = [0u8; 10];
        getrandom::fill(&mut bytes).map_err(|e| RandomError(e.to_string()))?;
        // 80 bits -> 16 five-bit groups.
        let mut acc: u128 = 0;
        for b in bytes {
            acc = (acc << 8) | u128::from(b);
        }
        let s = (0..UID_LEN)
            .rev()
            .map(|i| ALPHABET[((acc >> (i * 5)) & 31) as usize] as char)
            .collect();
        Ok(Uid(s))
    }

    /// Accepts a well-formed ID, generated or imported, as spelled (surrounding whitespace
    /// trimmed); anything else can never be one of ours.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        let generated = s.len() == UID_LEN
            && s.bytes()
                .all(|b| ALPHABET.contains(&b.to_ascii_lowercase()));
        if generated {
            return Some(Uid(s.to_ascii_lowercase()));
        }
        Self::imported(s).ok()
    }

    /// An enterprise's own ID, exactly as given.
    pub fn imported(s: &str) -> Result<Self, UidError> {
        if s.is_empty() {
            return Err(UidError::Empty);
        }
        if s.len() > UID_MAX_LEN {
            return Err(UidError::TooLong);
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(UidError::BadCharacter);
        }
        if !s.bytes().any(|b| b.is_ascii_alphabetic()) {
            return Err(UidError::NoLetter);
        }
        Ok(Uid(s.to_string()))
    }

    /// The ID as it was created (and is given to Tencent).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form IDs are matched and stored by: lowercase.
    pub fn key(&self) -> String {
        self.0.to_ascii_lowercase()
    }
}

impl fmt::Display for Uid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Uid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Uid({})", self.0)
    }
}

/// An id for records listed by time: the wall clock in nanoseconds first (records of one
/// second still sort newest first), then randomness against collisions.
pub fn sortable_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let random = Uid::generate()
        .map(|u| u.as_str()[..8].to_string())
        .unwrap_or_default();
    format!("{nanos:020}{random}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn generated_ids_are_fixed_length_url_safe_and_distinct() {
        let ids: HashSet<String> = (0..10_000).map(|_| Uid::generate().unwrap().0).collect();
        assert_eq!(ids.len(), 10_000);
        for id in &ids {
            assert_eq!(id.len(), UID_LEN);
            assert!(id.bytes().all(|b| ALPHABET.contains(&b)), "{id}");
            assert_eq!(Uid::parse(id).map(|u| u.0), Some(id.clone()));
        }
    }

    #[test]
    fn parse_is_case_insensitive_and_strict() {
        let id = Uid::generate().unwrap();
        assert_eq!(Uid::parse(&id.0.to_ascii_uppercase()), Some(id.clone()));
        assert_eq!(Uid::parse("13988888888"), None);
        assert_eq!(
            Uid::parse("0123456789012345"),
            Some(Uid("0123456789012345".into()))
        );
        assert_eq!(Uid::parse(""), None);
    }

    #[test]
    fn imported_ids_keep_their_spelling_and_match_in_any_case() {
        let id = Uid::imported("CRM-Cust_0042").unwrap();
        assert_eq!(id.as_str(), "CRM-Cust_0042");
        assert_eq!(id.key(), "crm-cust_0042");
        assert_eq!(Uid::parse("crm-cust_0042"), Some(id.clone()));
        let mut set = HashSet::new();
        set.insert(id);
        assert!(set.contains(&Uid::parse("CRM-CUST_0042").unwrap()));
        assert_eq!(Uid::imported(""), Err(UidError::Empty));
        assert_eq!(Uid::imported(&"a".repeat(65)), Err(UidError::TooLong));
        assert!(Uid::imported(&"a".repeat(64)).is_ok());
        assert_eq!(Uid::imported("crm 1"), Err(UidError::BadCharacter));
        assert_eq!(Uid::imported("crm#1"), Err(UidError::BadCharacter));
        assert_eq!(Uid::imported("客户1"), Err(UidError::BadCharacter));
        assert_eq!(Uid::imported("13988888888"), Err(UidError::NoLetter));
        assert_eq!(Uid::imported("+86-139"), Err(UidError::BadCharacter));
        assert_eq!(Uid::imported("0086-139_88"), Err(UidError::NoLetter));
    }
}
