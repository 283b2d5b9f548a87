//! Opaque user IDs handed to Tencent instead of numbers.
//!
//! 16 characters of lowercase Crockford base32 (`0-9a-z` without `i l o u`): 80 bits from the
//! operating system's CSPRNG, URL-safe, unambiguous to read out or type, never derived from
//! the number.

use std::fmt;

pub const UID_LEN: usize = 16;
const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Uid(String);

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

    /// Accepts a well-formed ID in either case; anything else can never be one of ours.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim().to_ascii_lowercase();
        (s.len() == UID_LEN && s.bytes().all(|b| ALPHABET.contains(&b))).then_some(Uid(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
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
        assert_eq!(Uid::parse("0123456789abcdei"), None); // 'i' is not in the alphabet
        assert_eq!(Uid::parse("0123456789abcde"), None);
        assert_eq!(Uid::parse(""), None);
    }
}
