//! Phone-number normalisation: every spelling of one subscriber becomes one [`PhoneKey`].
//!
//! Parsing uses the `phonenumber` crate with a metadata database of only the regions the
//! deployment needs (`PHONE_REGIONS`): the full database costs 50–70 ms to load, a single
//! region a few ms (measured, see README "Performance notes").

use phonenumber::country::Id as Region;
use phonenumber::metadata::Database;
use std::fmt;

/// A region or metadata the normaliser cannot load: the setting it came from, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{setting} is invalid: {reason}")]
pub struct RegionError {
    pub setting: &'static str,
    pub reason: String,
}

/// libphonenumber's metadata (Apache-2.0), the same version as the `phonenumber` crate's,
/// minified by build.rs.
const METADATA_XML: &str = include_str!(concat!(env!("OUT_DIR"), "/PhoneNumberMetadata.min.xml"));

/// Longest accepted input, in characters, and most digits in a number.
pub const MAX_NUMBER_CHARS: usize = 32;
pub const MAX_NUMBER_DIGITS: usize = 20;

/// Why an input is not a phone number. The messages never echo the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    #[error("number is empty")]
    Empty,
    #[error("number is longer than {MAX_NUMBER_CHARS} characters")]
    TooLong,
    #[error("number has more than {MAX_NUMBER_DIGITS} digits")]
    TooManyDigits,
    #[error("number contains a character other than digits, spaces, '-', '.', '(', ')' or a leading '+'")]
    BadCharacter,
    #[error("number has no digits")]
    NoDigits,
}

/// The stored identity of a number: E.164 (`+8613988888888`) when the number is valid in a
/// configured region, otherwise its digits as given (`95588`), so short service numbers and
/// extensions still map consistently.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PhoneKey(String);

impl PhoneKey {
    /// Rebuilds a key read back from the store (already normalised when it was written).
    pub fn from_stored(s: String) -> Self {
        PhoneKey(s)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The number as Tencent wants it back: `00` + country code + national number for E.164
    /// keys (`008613988888888`); digits-only keys are returned as they are.
    pub fn dial_string(&self) -> String {
        match self.0.strip_prefix('+') {
            Some(rest) => format!("00{rest}"),
            None => self.0.clone(),
        }
    }

    /// For logs and records: `+86*******8888`.
    pub fn masked(&self) -> String {
        mask(&self.0)
    }
}

// Debug never shows the full number, so a stray `{:?}` cannot leak it into a log.
impl fmt::Debug for PhoneKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PhoneKey({})", self.masked())
    }
}

/// Most digits a mask ever shows.
pub const MASK_MAX_SHOWN: usize = 7;

/// Masks a number for display: never more than 7 digits shown, and at least half hidden, but
/// for the 11 digits of a national mobile number, masked the way contact centers show them
/// (Tencent's own mask, `189xxxx8352`): `13988888888` -> `139****8888`,
/// `+8613988888888` -> `+86*******8888`, `95588` -> `***88`,
/// `12345678901234567890` -> `123*************7890`.
pub fn mask(number: &str) -> String {
    let (prefix, rest) = match number.strip_prefix('+') {
        Some(rest) => ("+", rest),
        None => ("", number),
    };
    let chars: Vec<char> = rest.chars().collect();
    let n = chars.len();
    let (head, tail) = match n {
        0..=6 => (0, n / 2),
        11 if prefix.is_empty() => (3, 4),
        _ => {
            let shown = (n / 2).min(MASK_MAX_SHOWN);
            // The last digits say most to a person; a country code is the rest when it fits.
            let tail = (shown - shown / 3).min(4);
            (shown - tail, tail)
        }
    };
    let mut out = String::with_capacity(number.len());
    out.push_str(prefix);
    for (i, c) in chars.iter().enumerate() {
        if i < head || i >= n - tail {
            out.push(*c);
        } else {
            out.push('*');
        }
    }
    out
}

/// Normalises numbers against a default region and a metadata database of selected regions.
pub struct PhoneNormalizer {
    db: Database,
    default_region: Region,
}

impl PhoneNormalizer {
    /// Loads the metadata of `regions` (ISO 3166 codes; the default region is always included).
    pub fn new(default_region: &str, regions: &[String]) -> Result<Self, RegionError> {
        let default_id = parse_region("DEFAULT_COUNTRY", default_region)?;
        let mut wanted: Vec<String> = vec![default_id.as_ref().to_string()];
        for r in regions {
            let id = parse_region("PHONE_REGIONS", r)?;
            wanted.push(id.as_ref().to_string());
        }
        let xml = metadata_subset(&wanted);
        let db = Database::parse(xml).map_err(|e| RegionError {
            setting: "PHONE_REGIONS",
            reason: format!("phone metadata failed to load: {e}"),
        })?;
        let normalizer = PhoneNormalizer {
            db,
            default_region: default_id,
        };
        normalizer.prime();
        Ok(normalizer)
    }

    /// Runs `normalize` on each loaded region's example numbers, national and international,
    /// so that the patterns the parser compiles lazily are compiled at init, not on a live call
    /// (see README, Performance notes, for the measurements).
    fn prime(&self) {
        for meta in self.db.iter() {
            let Some(example) = meta.descriptors().mobile().and_then(|d| d.example()) else {
                continue;
            };
            let Ok(region) = meta.id().parse::<Region>() else {
                continue;
            };
            let code = meta.country_code();
            let mut spellings = vec![format!("+{code}{example}")];
            if let Some(idd) = meta.preferred_international_prefix() {
                spellings.push(format!("{idd}{code}{example}"));
            }
            for spelling in std::iter::once(example.to_string()).chain(spellings) {
                let _ = phonenumber::parse_with(&self.db, Some(region), &spelling)
                    .map(|number| phonenumber::is_valid_with(&self.db, &number));
            }
        }
    }

    /// Validates the characters first (the parser would read letters as vanity digits), then
    /// returns the E.164 key of a valid number or the digits of one the metadata cannot place.
    pub fn normalize(&self, input: &str) -> Result<PhoneKey, PhoneError> {
        // The limit holds for the input as sent; only the spaces a number may contain anyway
        // are trimmed (other whitespace is a bad character, as anywhere in the number).
        if input.chars().count() > MAX_NUMBER_CHARS {
            return Err(PhoneError::TooLong);
        }
        let input = input.trim_matches(' ');
        if input.is_empty() {
            return Err(PhoneError::Empty);
        }
        let mut digits = String::with_capacity(input.len());
        for (i, c) in input.chars().enumerate() {
            match c {
                '0'..='9' => digits.push(c),
                '+' if i == 0 => {}
                ' ' | '-' | '.' | '(' | ')' => {}
                _ => return Err(PhoneError::BadCharacter),
            }
        }
        if digits.is_empty() {
            return Err(PhoneError::NoDigits);
        }
        if digits.len() > MAX_NUMBER_DIGITS {
            return Err(PhoneError::TooManyDigits);
        }
        let international = input.starts_with('+');
        if let Ok(number) = phonenumber::parse_with(&self.db, Some(self.default_region), input) {
            if number.extension().is_none() && phonenumber::is_valid_with(&self.db, &number) {
                // E.164 is "+" country code national number, as the crate's formatter writes
                // it; its formatter would first match (and compile) every national format of
                // the region, 60 ms on the first call, for nothing.
                return Ok(PhoneKey(format!(
                    "+{}{}",
                    number.country().code(),
                    number.national()
                )));
            }
        }
        Ok(PhoneKey(if international {
            format!("+{digits}")
        } else {
            digits
        }))
    }
}

fn parse_region(setting: &'static str, value: &str) -> Result<Region, RegionError> {
    value
        .trim()
        .to_ascii_uppercase()
        .parse::<Region>()
        .map_err(|_| RegionError {
            setting,
            reason: format!("'{value}' is not an ISO 3166 region code known to the phone metadata"),
        })
}

/// The metadata document with the `<territory>` elements of `ids` and of every other region
/// sharing a country code with one of them (validation of `+44` needs GB, GG, IM and JE).
fn metadata_subset(ids: &[String]) -> String {
    let territories = territories();
    let codes: Vec<&str> = territories
        .iter()
        .filter(|(id, _, _)| ids.iter().any(|w| w == id))
        .map(|(_, code, _)| *code)
        .collect();
    let mut out = String::from("<phoneNumberMetadata><territories>");
    for (_, code, block) in &territories {
        if codes.contains(code) {
            out.push_str(block);
        }
    }
    out.push_str("</territories></phoneNumberMetadata>");
    out
}

/// Every `<territory>` element of the metadata as (id, country code, element text).
fn territories() -> Vec<(&'static str, &'static str, &'static str)> {
    const OPEN: &str = "<territories>";
    const CLOSE: &str = "</territory>";
    let attr = |block: &'static str, name: &str| -> &'static str {
        block
            .split(name)
            .nth(1)
            .and_then(|s| s.split('"').next())
            .unwrap_or_default()
    };
    let mut out = Vec::with_capacity(256);
    let start = METADATA_XML.find(OPEN).map_or(0, |i| i + OPEN.len());
    let mut rest = &METADATA_XML[start..];
    while let Some(i) = rest.find("<territory ") {
        let Some(len) = rest[i..].find(CLOSE) else {
            break;
        };
        let block = &rest[i..i + len + CLOSE.len()];
        let head = &block[..block.find('>').unwrap_or(block.len())];
        out.push((attr(head, " id=\""), attr(head, " countryCode=\""), block));
        rest = &rest[i + len + CLOSE.len()..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cn() -> PhoneNormalizer {
        PhoneNormalizer::new("CN", &[]).expect("CN metadata")
    }

    #[test]
    fn spellings_of_one_subscriber_share_a_key() {
        let p = cn();
        let want = "+8613988888888";
        for s in [
            "13988888888",
            "+8613988888888",
            "008613988888888",
            "8613988888888",
            "139 8888 8888",
            "139-8888-8888",
            "+86 (139) 8888.8888",
            " 13988888888 ",
        ] {
            assert_eq!(p.normalize(s).unwrap().as_str(), want, "{s}");
        }
    }

    #[test]
    fn letters_and_junk_are_rejected_before_parsing() {
        let p = cn();
        assert_eq!(p.normalize("1398abc8888"), Err(PhoneError::BadCharacter));
        assert_eq!(p.normalize("139+88888888"), Err(PhoneError::BadCharacter));
        assert_eq!(p.normalize("139*8888#"), Err(PhoneError::BadCharacter));
        assert_eq!(p.normalize(""), Err(PhoneError::Empty));
        assert_eq!(p.normalize("  "), Err(PhoneError::Empty));
        assert_eq!(p.normalize("+ - ()"), Err(PhoneError::NoDigits));
        assert_eq!(p.normalize(&"1".repeat(33)), Err(PhoneError::TooLong));
        assert_eq!(p.normalize(&"1".repeat(21)), Err(PhoneError::TooManyDigits));
    }

    #[test]
    fn unplaceable_numbers_map_by_digits() {
        let p = cn();
        assert_eq!(p.normalize("95588").unwrap().as_str(), "95588");
        assert_eq!(p.normalize("955-88").unwrap().as_str(), "95588");
        assert_eq!(
            p.normalize("010-12345678-8001").unwrap().as_str(),
            "010123456788001"
        );
        // A country outside PHONE_REGIONS keeps its international marker.
        assert_eq!(
            p.normalize("+44 7911 123456").unwrap().as_str(),
            "+447911123456"
        );
    }

    #[test]
    fn extra_regions_are_loaded_on_request() {
        let p = PhoneNormalizer::new("CN", &["GB".into(), "us".into()]).unwrap();
        assert_eq!(
            p.normalize("0044 7911 123456").unwrap().as_str(),
            "+447911123456"
        );
        assert_eq!(
            p.normalize("+1 650-253-0000").unwrap().as_str(),
            "+16502530000"
        );
    }

    #[test]
    fn bad_regions_fail_naming_the_setting() {
        let err = PhoneNormalizer::new("XX", &[]).err().unwrap();
        assert!(err.to_string().contains("DEFAULT_COUNTRY"), "{err}");
        let err = PhoneNormalizer::new("CN", &["ZZZ".into()]).err().unwrap();
        assert!(err.to_string().contains("PHONE_REGIONS"), "{err}");
    }

    #[test]
    fn dial_string_is_00_country_code_number() {
        let p = cn();
        assert_eq!(
            p.normalize("13988888888").unwrap().dial_string(),
            "008613988888888"
        );
        assert_eq!(p.normalize("95588").unwrap().dial_string(), "95588");
    }

    #[test]
    fn masks_hide_the_middle_digits() {
        assert_eq!(mask("13988888888"), "139****8888");
        assert_eq!(mask("+8613988888888"), "+86*******8888");
        assert_eq!(mask("95588"), "***88");
        assert_eq!(mask("12345678"), "1****678");
        assert_eq!(mask("12345678901234567890"), "123*************7890");
        // At most 7 digits, at least half hidden (but for the 11-digit mobile convention).
        for n in 1..=20 {
            for plus in ["", "+"] {
                let number = format!("{plus}{}", "9".repeat(n));
                let masked = mask(&number);
                let shown = masked.chars().filter(char::is_ascii_digit).count();
                assert!(shown <= MASK_MAX_SHOWN, "{masked}");
                if !(n == 11 && plus.is_empty()) {
                    assert!(shown * 2 <= n, "{masked}");
                }
            }
        }
        let key = cn().normalize("13988888888").unwrap();
        assert!(!format!("{key:?}").contains("13988888888"));
    }
}
