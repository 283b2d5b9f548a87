//! What a caller can be verified by (issue "verification by mode"): the factor a mode checks,
//! how an enrolled value is checked and reduced before its digest is kept, and how the digits
//! typed on the IVR are read. No value is ever kept or logged: only its keyed digest
//! (`Pepper::factor_digest`), bound to the factor and the customer.

use std::fmt;

use super::identity::valid_pin;

/// A factor a customer is enrolled for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Factor {
    /// A phone-banking PIN: 4 to 12 digits.
    Pin,
    /// The last six characters of a mainland resident ID number (GB 11643), the check
    /// character `X` typed as the key the IVR prompt names (`IDENTITY_ID_X_KEY`).
    IdLast6,
    /// The birth date, typed as 8 digits `YYYYMMDD`.
    BirthDate,
    /// The last four digits of a bank card.
    CardLast4,
}

/// Every factor, in the order they are listed.
pub const FACTORS: [Factor; 4] = [
    Factor::Pin,
    Factor::IdLast6,
    Factor::BirthDate,
    Factor::CardLast4,
];

impl Factor {
    pub fn as_str(self) -> &'static str {
        match self {
            Factor::Pin => "pin",
            Factor::IdLast6 => "id_last6",
            Factor::BirthDate => "birth_date",
            Factor::CardLast4 => "card_last4",
        }
    }

    pub fn parse(s: &str) -> Option<Factor> {
        FACTORS.into_iter().find(|f| f.as_str() == s)
    }

    /// The accepted names, for error messages.
    pub fn names() -> String {
        FACTORS.map(Factor::as_str).join(", ")
    }

    /// The value to enrol, checked and reduced to what is kept (its digest): a PIN as
    /// given; for `id_last6` the full 18-character ID number (length, birth date, check
    /// character) or its last six characters, `X` upper case; a birth date as `YYYYMMDD`
    /// (from `YYYYMMDD` or `YYYY-MM-DD`, a real date); the card's last four digits. The
    /// error says what is wrong without repeating the value.
    pub fn enrolment_value(self, raw: &str) -> Result<String, String> {
        let v = raw.trim();
        match self {
            Factor::Pin => valid_pin(v)
                .then(|| v.to_string())
                .ok_or_else(|| "the PIN must be 4 to 12 digits".into()),
            Factor::IdLast6 => match v.chars().count() {
                18 => resident_id_last6(v),
                6 => id_last6(v).ok_or_else(|| {
                    "the last six of an ID number are 5 digits and a digit or X".into()
                }),
                n => Err(format!(
                    "an ID number has 18 characters, or give its last 6 (this value has {n})"
                )),
            },
            Factor::BirthDate => {
                let digits: String =
                    if v.len() == 10 && v.as_bytes()[4] == b'-' && v.as_bytes()[7] == b'-' {
                        v.replace('-', "")
                    } else {
                        v.to_string()
                    };
                birth_date(&digits).ok_or_else(|| {
                    "a birth date is YYYYMMDD or YYYY-MM-DD, a real date from 1900 on".into()
                })
            }
            Factor::CardLast4 => (v.len() == 4 && v.bytes().all(|b| b.is_ascii_digit()))
                .then(|| v.to_string())
                .ok_or_else(|| "the last four of a card are 4 digits".into()),
        }
    }

    /// What the caller typed, read as this factor's value (`x_key` stands for an ID number's
    /// check character `X`); None when it cannot be one (answered as a wrong value, like a
    /// malformed PIN today).
    pub fn typed(self, input: &str, x_key: char) -> Option<String> {
        match self {
            Factor::Pin => valid_pin(input).then(|| input.to_string()),
            Factor::IdLast6 => {
                let mut chars: Vec<char> = input.chars().collect();
                if chars.len() != 6 {
                    return None;
                }
                if chars[5] == x_key {
                    chars[5] = 'X';
                }
                id_last6(&chars.into_iter().collect::<String>())
            }
            Factor::BirthDate => birth_date(input),
            Factor::CardLast4 => (input.len() == 4 && input.bytes().all(|b| b.is_ascii_digit()))
                .then(|| input.to_string()),
        }
    }
}

impl fmt::Display for Factor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Six characters that can end a resident ID number: the day of birth (01 to 31), the
/// 3-digit sequence, and a check digit or `X` (`x` accepted).
fn id_last6(v: &str) -> Option<String> {
    let b = v.as_bytes();
    if b.len() != 6 || !b[..5].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let check = match b[5] {
        d @ b'0'..=b'9' => d as char,
        b'X' | b'x' => 'X',
        _ => return None,
    };
    let day = (b[0] - b'0') * 10 + (b[1] - b'0');
    (1..=31)
        .contains(&day)
        .then(|| format!("{}{check}", &v[..5]))
}

/// A full 18-character resident ID number checked as GB 11643 defines it (17 digits, a real
/// birth date in characters 7 to 14, the check character by ISO 7064 MOD 11-2), reduced to
/// its last six.
fn resident_id_last6(v: &str) -> Result<String, String> {
    let b = v.as_bytes();
    if !b[..17].iter().all(u8::is_ascii_digit) {
        return Err("an ID number's first 17 characters are digits".into());
    }
    if birth_date(&v[6..14]).is_none() {
        return Err("the ID number's birth date (characters 7 to 14) is not a real date".into());
    }
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: &[u8; 11] = b"10X98765432";
    let sum: u32 = b[..17]
        .iter()
        .zip(WEIGHTS)
        .map(|(d, w)| u32::from(d - b'0') * w)
        .sum();
    let expected = CHECK[(sum % 11) as usize];
    if b[17].to_ascii_uppercase() != expected {
        return Err(
            "the ID number's check character is wrong (GB 11643, ISO 7064 MOD 11-2)".into(),
        );
    }
    id_last6(&v[12..]).ok_or_else(|| "the ID number's last six are malformed".into())
}

/// `YYYYMMDD` when it is a real date from 1900 on and not in the far future.
fn birth_date(v: &str) -> Option<String> {
    let b = v.as_bytes();
    if b.len() != 8 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let num = |r: std::ops::Range<usize>| v[r].parse::<u32>().ok();
    let (y, m, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    ((1900..=2100).contains(&y) && (1..=days).contains(&d)).then(|| v.to_string())
}

/// Why `IDENTITY_MODES` (or a tenant's) cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ModesError(pub String);

/// Longest mode code (Huawei's `verifyTypeCode`).
pub const MAX_MODE_CHARS: usize = 64;

/// Which factor each identity-verification mode checks (`IDENTITY_MODES`, e.g.
/// `PIN=pin,IDCARD=id_last6,DOB=birth_date`), and the mode of a request without a code.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Modes {
    modes: Vec<(String, Factor)>,
    default: Option<String>,
}

impl Modes {
    /// Parses `IDENTITY_MODES` and `IDENTITY_DEFAULT_MODE`; an empty list is no modes at all
    /// (every request checks the PIN, as before modes existed).
    pub fn parse(list: &str, default: Option<&str>) -> Result<Modes, ModesError> {
        let mut modes: Vec<(String, Factor)> = Vec::new();
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (code, factor) = entry
                .split_once('=')
                .ok_or_else(|| ModesError(format!("'{entry}' is not CODE=FACTOR")))?;
            let (code, factor) = (code.trim(), factor.trim());
            if code.is_empty()
                || code.len() > MAX_MODE_CHARS
                || !code.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            {
                return Err(ModesError(format!(
                    "mode code '{code}': up to {MAX_MODE_CHARS} letters, digits or underscores"
                )));
            }
            let factor = Factor::parse(factor).ok_or_else(|| {
                ModesError(format!(
                    "mode {code}: '{factor}' is not a factor ({})",
                    Factor::names()
                ))
            })?;
            if modes.iter().any(|(c, _)| c == code) {
                return Err(ModesError(format!("mode {code} is given twice")));
            }
            modes.push((code.to_string(), factor));
        }
        let default = default.map(str::trim).filter(|d| !d.is_empty());
        if let Some(d) = default {
            if modes.is_empty() {
                return Err(ModesError(
                    "IDENTITY_DEFAULT_MODE needs IDENTITY_MODES".into(),
                ));
            }
            if !modes.iter().any(|(c, _)| c == d) {
                return Err(ModesError(format!(
                    "IDENTITY_DEFAULT_MODE {d} is not one of IDENTITY_MODES"
                )));
            }
        }
        Ok(Modes {
            modes,
            default: default.map(str::to_string),
        })
    }

    /// Whether modes are configured (else every request checks the PIN).
    pub fn is_empty(&self) -> bool {
        self.modes.is_empty()
    }

    /// The factor a request's `verifyTypeCode` (empty: none) checks: with no modes, the PIN
    /// whatever the code; with modes, the code's, the default mode's for no code, else None
    /// (an unknown mode).
    pub fn factor_of(&self, code: &str) -> Option<Factor> {
        if self.modes.is_empty() {
            return Some(Factor::Pin);
        }
        let code = if code.is_empty() {
            self.default.as_deref()?
        } else {
            code
        };
        self.modes.iter().find(|(c, _)| c == code).map(|(_, f)| *f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_id_number_is_checked_and_reduced_to_its_last_six() {
        // GB 11643's own example: 11010519491231002X.
        assert_eq!(
            Factor::IdLast6
                .enrolment_value("11010519491231002X")
                .unwrap(),
            "31002X"
        );
        assert_eq!(
            Factor::IdLast6
                .enrolment_value("11010519491231002x")
                .unwrap(),
            "31002X"
        );
        assert_eq!(
            Factor::IdLast6
                .enrolment_value("440524198001010013")
                .unwrap(),
            "010013"
        );
        for (bad, why) in [
            ("110105194912310021", "check character"),
            ("110105194902300020", "birth date"),
            ("1101051949123100", "18 characters"),
            ("11010519491231002Y", "check character"),
            ("A1010519491231002X", "17 characters are digits"),
        ] {
            let err = Factor::IdLast6.enrolment_value(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
            assert!(!err.contains(bad), "the value is repeated: {err}");
        }
        assert_eq!(Factor::IdLast6.enrolment_value("31002x").unwrap(), "31002X");
        assert!(Factor::IdLast6.enrolment_value("00002X").is_err(), "day 00");
        assert!(Factor::IdLast6.enrolment_value("3100X2").is_err());
    }

    #[test]
    fn birth_dates_are_real_dates() {
        let f = Factor::BirthDate;
        assert_eq!(f.enrolment_value("19800229").unwrap(), "19800229");
        assert_eq!(f.enrolment_value("2000-02-29").unwrap(), "20000229");
        for bad in [
            "19000229",
            "19810229",
            "19801301",
            "19800431",
            "1980-0101",
            "198001",
            "18991231",
            "2000/02/29",
        ] {
            assert!(f.enrolment_value(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn typed_values_are_read_per_factor() {
        assert_eq!(
            Factor::IdLast6.typed("31002*", '*').as_deref(),
            Some("31002X")
        );
        assert_eq!(
            Factor::IdLast6.typed("310021", '*').as_deref(),
            Some("310021")
        );
        assert_eq!(Factor::IdLast6.typed("31002#", '*'), None);
        assert_eq!(
            Factor::IdLast6.typed("31002#", '#').as_deref(),
            Some("31002X")
        );
        assert_eq!(
            Factor::BirthDate.typed("19491231", '*').as_deref(),
            Some("19491231")
        );
        assert_eq!(Factor::BirthDate.typed("1949-12-31", '*'), None);
        assert_eq!(
            Factor::CardLast4.typed("0042", '*').as_deref(),
            Some("0042")
        );
        assert_eq!(Factor::CardLast4.typed("042", '*'), None);
        assert_eq!(Factor::Pin.typed("1234", '*').as_deref(), Some("1234"));
        assert_eq!(Factor::Pin.typed("12a4", '*'), None);
    }

    #[test]
    fn modes_map_codes_to_factors() {
        let none = Modes::parse("", None).unwrap();
        assert!(none.is_empty());
        assert_eq!(none.factor_of("ANYTHING"), Some(Factor::Pin));
        let m = Modes::parse("PIN=pin, IDCARD=id_last6,DOB=birth_date", None).unwrap();
        assert_eq!(m.factor_of("IDCARD"), Some(Factor::IdLast6));
        assert_eq!(m.factor_of("DOB"), Some(Factor::BirthDate));
        assert_eq!(m.factor_of("CARD"), None);
        assert_eq!(m.factor_of(""), None);
        let d = Modes::parse("PIN=pin,DOB=birth_date", Some("DOB")).unwrap();
        assert_eq!(d.factor_of(""), Some(Factor::BirthDate));
        for (list, default) in [
            ("PIN", None),
            ("PIN=face", None),
            ("P-IN=pin", None),
            ("PIN=pin,PIN=birth_date", None),
            ("PIN=pin", Some("DOB")),
            ("", Some("PIN")),
        ] {
            assert!(Modes::parse(list, default).is_err(), "{list} {default:?}");
        }
    }
}
