//! Identity verification models: enrolled PINs and other factors (`factor.rs`; only ever
//! stored as HMAC-SHA256 under a server-side pepper), lockout counters and verification
//! records.

use std::collections::BTreeMap;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::domain::factor::Factor;
use crate::domain::phone::PhoneKey;

/// Shortest and longest PIN accepted at enrolment.
pub const PIN_MIN_DIGITS: usize = 4;
pub const PIN_MAX_DIGITS: usize = 12;
/// Shortest pepper accepted, in bytes.
pub const PEPPER_MIN_BYTES: usize = 32;

/// The server-side secret keying every PIN digest and record key. Never logged.
#[derive(Clone)]
pub struct Pepper(Vec<u8>);

impl std::fmt::Debug for Pepper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pepper(…)")
    }
}

impl Pepper {
    pub fn new(bytes: Vec<u8>) -> Result<Self, String> {
        if bytes.len() < PEPPER_MIN_BYTES {
            return Err(format!(
                "the pepper must be at least {PEPPER_MIN_BYTES} bytes"
            ));
        }
        Ok(Pepper(bytes))
    }

    /// A new random pepper (for a local data directory).
    pub fn generate() -> Result<Self, crate::domain::uid::RandomError> {
        let mut bytes = vec![0u8; 32];
        getrandom::fill(&mut bytes)
            .map_err(|e| crate::domain::uid::RandomError::new(e.to_string()))?;
        Ok(Pepper(bytes))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    fn mac(&self, domain: &str, phone: &PhoneKey, extra: &str) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0)
            .expect("HMAC takes keys of any length"); // ok: infallible for HMAC
        for part in [domain, phone.as_str(), extra] {
            mac.update(part.as_bytes());
            mac.update(&[0]);
        }
        mac.finalize().into_bytes().into()
    }

    /// The stored form of a customer's PIN (the number is mixed in, so equal PINs differ).
    pub fn pin_digest(&self, phone: &PhoneKey, pin: &str) -> PinDigest {
        PinDigest(self.mac("pin", phone, pin))
    }

    /// The stored form of a customer's value of `factor`, bound to the factor and the number
    /// (a PIN's is `pin_digest`, as before factors existed).
    pub fn factor_digest(&self, factor: Factor, phone: &PhoneKey, value: &str) -> PinDigest {
        match factor {
            Factor::Pin => self.pin_digest(phone, value),
            other => PinDigest(self.mac(&format!("factor:{other}"), phone, value)),
        }
    }

    /// The key of a customer's verification records: lets `records list --number` find them
    /// without the records holding the number.
    pub fn record_key(&self, phone: &PhoneKey) -> String {
        hex::encode(&self.mac("record", phone, "")[..16])
    }
}

/// HMAC-SHA256 of a PIN.
#[derive(Clone, PartialEq, Eq)]
pub struct PinDigest(pub [u8; 32]);

impl std::fmt::Debug for PinDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PinDigest(…)")
    }
}

impl PinDigest {
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn from_hex(s: &str) -> Option<Self> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).ok()?;
        Some(PinDigest(out))
    }

    /// Constant-time comparison.
    pub fn matches(&self, other: &PinDigest) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

/// Whether `pin` is an acceptable PIN: 4 to 12 ASCII digits.
pub fn valid_pin(pin: &str) -> bool {
    (PIN_MIN_DIGITS..=PIN_MAX_DIGITS).contains(&pin.len())
        && pin.bytes().all(|b| b.is_ascii_digit())
}

/// Lockout counters of one enrolled customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counters {
    /// Checks counted in the current window (a check is counted before the digits are compared).
    pub failures: u32,
    /// Epoch seconds when the current window started (0: none).
    pub window_start: i64,
    /// Epoch seconds until which the customer is locked (0: not locked).
    pub locked_until: i64,
}

/// An enrolled customer's factors (the PIN and any other) and its one set of lockout
/// counters, shared by every factor, with the version that guards updates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinState {
    pub digests: BTreeMap<Factor, PinDigest>,
    pub counters: Counters,
    pub version: u64,
}

impl PinState {
    /// The digest of the customer's enrolled `factor`, if any.
    pub fn digest(&self, factor: Factor) -> Option<&PinDigest> {
        self.digests.get(&factor)
    }
}

/// What a verification concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Ok,
    WrongPin,
    /// A wrong value of a factor other than the PIN.
    WrongIdLast6,
    WrongBirthDate,
    WrongCardLast4,
    Locked,
    UnknownCustomer,
    UnknownAgent,
    /// A `verifyTypeCode` that no mode of `IDENTITY_MODES` names.
    UnknownMode,
    BadRequest,
    Unavailable,
}

const REASONS: [Reason; 11] = [
    Reason::Ok,
    Reason::WrongPin,
    Reason::WrongIdLast6,
    Reason::WrongBirthDate,
    Reason::WrongCardLast4,
    Reason::Locked,
    Reason::UnknownCustomer,
    Reason::UnknownAgent,
    Reason::UnknownMode,
    Reason::BadRequest,
    Reason::Unavailable,
];

impl Reason {
    /// The result a reason is: 1 passed, 2 failed, 3 abnormal (Huawei's `verifyResult`, and a
    /// record's `result`).
    pub fn result(self) -> u8 {
        match self {
            Reason::Ok => 1,
            Reason::WrongPin
            | Reason::WrongIdLast6
            | Reason::WrongBirthDate
            | Reason::WrongCardLast4
            | Reason::Locked
            | Reason::UnknownCustomer => 2,
            Reason::UnknownAgent
            | Reason::UnknownMode
            | Reason::BadRequest
            | Reason::Unavailable => 3,
        }
    }

    /// The wrong value of `factor`: says which factor was wrong, never what was right.
    pub fn wrong(factor: Factor) -> Reason {
        match factor {
            Factor::Pin => Reason::WrongPin,
            Factor::IdLast6 => Reason::WrongIdLast6,
            Factor::BirthDate => Reason::WrongBirthDate,
            Factor::CardLast4 => Reason::WrongCardLast4,
        }
    }

    /// Whether this is a wrong value of some factor.
    pub fn is_wrong_value(self) -> bool {
        matches!(
            self,
            Reason::WrongPin
                | Reason::WrongIdLast6
                | Reason::WrongBirthDate
                | Reason::WrongCardLast4
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Ok => "ok",
            Reason::WrongPin => "wrong_pin",
            Reason::WrongIdLast6 => "wrong_id_last6",
            Reason::WrongBirthDate => "wrong_birth_date",
            Reason::WrongCardLast4 => "wrong_card_last4",
            Reason::Locked => "locked",
            Reason::UnknownCustomer => "unknown_customer",
            Reason::UnknownAgent => "unknown_agent",
            Reason::UnknownMode => "unknown_mode",
            Reason::BadRequest => "bad_request",
            Reason::Unavailable => "unavailable",
        }
    }

    pub fn parse(s: &str) -> Option<Reason> {
        REASONS.into_iter().find(|r| r.as_str() == s)
    }
}

/// One verification attempt, as kept. Holds the masked number only.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VerificationRecord {
    /// Epoch seconds.
    pub time: i64,
    /// Unique within the same second (random).
    #[serde(skip)]
    pub id: String,
    /// `Pepper::record_key` of the customer's number ("" when the request had none).
    #[serde(skip)]
    pub number_key: String,
    pub masked_number: String,
    pub agent: String,
    /// The mode asked (Huawei's `verifyTypeCode`, "" when none).
    pub verify_type_code: String,
    /// The factor the mode checks (`pin`, `id_last6`, ...; "" when none was chosen: an
    /// unknown mode, a refused request, or a record of a release before factors).
    pub factor: String,
    pub result: u8,
    pub reason: String,
    /// Epoch seconds after which the record is gone (DynamoDB TTL).
    #[serde(skip)]
    pub expires_at: i64,
}

/// A `records list` query: at most one key lookup whatever the filters.
#[derive(Debug, Clone, Default)]
pub struct RecordQuery {
    pub number_key: Option<String>,
    pub agent: Option<String>,
    /// Only the records of this mode (`verifyTypeCode`).
    pub mode: Option<String>,
    /// Epoch seconds; records at or after.
    pub since: Option<i64>,
    pub limit: usize,
    /// Epoch seconds; records expiring before this are not returned.
    pub now: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phone(s: &str) -> PhoneKey {
        PhoneKey::from_stored(s.to_string())
    }

    #[test]
    fn digests_depend_on_pepper_number_and_pin() {
        let a = Pepper::new(vec![1; 32]).unwrap();
        let b = Pepper::new(vec![2; 32]).unwrap();
        let p1 = phone("+8613988888888");
        let p2 = phone("+8613788888888");
        let d = a.pin_digest(&p1, "1234");
        assert!(d.matches(&a.pin_digest(&p1, "1234")));
        assert!(!d.matches(&a.pin_digest(&p1, "1235")));
        assert!(!d.matches(&a.pin_digest(&p2, "1234")));
        assert!(!d.matches(&b.pin_digest(&p1, "1234")));
        assert_eq!(PinDigest::from_hex(&d.to_hex()), Some(d.clone()));
        assert_ne!(a.record_key(&p1), a.record_key(&p2));
        assert!(!format!("{a:?}{:?}", a.pin_digest(&p1, "1234")).contains("1234"));
        // A factor's digest is bound to the factor: the same digits differ per factor.
        assert!(d.matches(&a.factor_digest(Factor::Pin, &p1, "1234")));
        assert!(!a.factor_digest(Factor::CardLast4, &p1, "1234").matches(&d));
        assert!(!a
            .factor_digest(Factor::CardLast4, &p1, "1234")
            .matches(&a.factor_digest(Factor::CardLast4, &p2, "1234")));
    }

    #[test]
    fn pins_are_4_to_12_digits() {
        for ok in ["1234", "000000", "123456789012"] {
            assert!(valid_pin(ok), "{ok}");
        }
        for bad in ["", "123", "1234567890123", "12a4", " 1234", "１２３４"] {
            assert!(!valid_pin(bad), "{bad}");
        }
    }

    #[test]
    fn short_peppers_are_refused() {
        assert!(Pepper::new(vec![0; 31]).is_err());
    }
}
