//! Numbers at rest: a keyed blind index to find a record by number, and AEAD ciphertext for
//! the number itself (the design of AWS's Database Encryption SDK "beacons" and encrypted
//! attributes, with `hmac`/`sha2` and `ring`, which every binary already links: see
//! bench/notes.md for the comparison).
//!
//! - [`IndexKey`] turns a normalised number into [`NumberIndex`], HMAC-SHA256 under the index
//!   key, base64url: the key of every record found by number. Deterministic, so lookups stay one
//!   key read; never reversible without the key.
//! - [`Keyring`] seals a number for its user ID with AES-256-GCM: random 96-bit nonce, the key's
//!   version in the clear, the user ID as associated data (a ciphertext copied onto another ID
//!   does not open). Several versions can be held; new seals use the current one.
//!
//! Key material is text (what Secrets Manager generates): each key is SHA-256 of a purpose
//! label and the text, so the index key and an encryption key differ even if one text were
//! given for both (which loading refuses anyway).

use std::collections::BTreeMap;
use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use sha2::{Digest, Sha256};

use crate::domain::phone::PhoneKey;
use crate::domain::uid::Uid;

/// Shortest key text accepted, in characters (Secrets Manager generates 64).
pub const KEY_TEXT_MIN_CHARS: usize = 32;

/// Why key material was refused. Never quotes the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("a key must be at least {KEY_TEXT_MIN_CHARS} characters")]
    TooShort,
    #[error("the keyring is not a JSON object of {{\"current\": N, \"N\": \"key\", ...}}: {0}")]
    Malformed(String),
    #[error("the keyring has no key for its current version {0}")]
    NoCurrent(u32),
    #[error("the index key and an encryption key are the same text")]
    SameAsIndex,
    #[error("no keyring is loaded here (the index key only)")]
    NoKeyring,
    #[error("the operating system's random source failed: {0}")]
    Random(String),
}

/// Why a sealed number did not open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    #[error("sealed with key version {0}, which this keyring does not hold")]
    UnknownVersion(u32),
    #[error("sealed number is malformed")]
    Malformed,
    #[error("no keyring is loaded here (the index key only)")]
    NoKeyring,
    #[error("sealed number does not authenticate (wrong key, or copied onto another ID)")]
    Forged,
}

pub(crate) fn derive(label: &str, text: &str) -> Result<[u8; 32], KeyError> {
    if text.chars().count() < KEY_TEXT_MIN_CHARS {
        return Err(KeyError::TooShort);
    }
    let mut h = Sha256::new();
    h.update(label.as_bytes());
    h.update([0]);
    h.update(text.as_bytes());
    Ok(h.finalize().into())
}

/// New key text: 64 characters from the OS's CSPRNG (384 bits), like Secrets Manager's.
pub fn generate_key_text() -> Result<String, KeyError> {
    let mut bytes = [0u8; 48];
    getrandom::fill(&mut bytes).map_err(|e| KeyError::Random(e.to_string()))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// The blind index of a number: what its records are keyed by.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NumberIndex(String);

impl NumberIndex {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Rebuilds an index read back from the store.
    pub fn from_stored(s: String) -> Self {
        NumberIndex(s)
    }
}

impl fmt::Debug for NumberIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NumberIndex({}…)", &self.0[..self.0.len().min(8)])
    }
}

/// A number sealed for one user ID: `v<version>.<base64url(nonce | ciphertext | tag)>`.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedNumber(String);

impl SealedNumber {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Rebuilds a sealed number read back from the store.
    pub fn from_stored(s: String) -> Self {
        SealedNumber(s)
    }

    /// The key version it was sealed with (`v3.…` -> 3).
    pub fn version(&self) -> Option<u32> {
        sealed_version(&self.0)
    }
}

impl fmt::Debug for SealedNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SealedNumber(v{:?}…)", self.version())
    }
}

/// The HMAC key of the blind index. Never logged.
#[derive(Clone)]
pub struct IndexKey {
    key: [u8; 32],
    text_digest: [u8; 32],
    /// The AES-256 key that wraps platform mode's tenants' lookup keys (`domain::tenant`).
    wrapping: [u8; 32],
}

impl fmt::Debug for IndexKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IndexKey(…)")
    }
}

impl IndexKey {
    pub fn from_text(text: &str) -> Result<Self, KeyError> {
        Ok(IndexKey {
            key: derive("cc-callbacks number index", text)?,
            text_digest: Sha256::digest(text.as_bytes()).into(),
            wrapping: derive("cc-callbacks tenant lookup wrapping", text)?,
        })
    }

    /// A one-version keyring under a key derived from this one: what wraps a tenant's lookup
    /// keys, so that a function given the index key alone (identity verification, never the
    /// keyring) can resolve a tenant.
    pub(crate) fn wrapping_keyring(&self) -> Keyring {
        Keyring::single(&self.wrapping)
    }

    pub fn index(&self, phone: &PhoneKey) -> NumberIndex {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key)
            .expect("HMAC takes keys of any length"); // ok: infallible for HMAC
        mac.update(b"number\0");
        mac.update(phone.as_str().as_bytes());
        NumberIndex(URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
    }
}

/// AES-256-GCM keys by version, and the version new seals use. Never logged.
pub struct Keyring {
    current: u32,
    keys: BTreeMap<u32, LessSafeKey>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Keyring(current {}, versions {:?})",
            self.current,
            self.keys.keys().collect::<Vec<_>>()
        )
    }
}

/// The text form of a keyring: `{"current": 2, "1": "<key>", "2": "<key>"}` (a flat object,
/// so that CloudFormation's `GenerateSecretString` can create the first version).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyringText {
    pub current: u32,
    pub keys: BTreeMap<u32, String>,
}

impl KeyringText {
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|_| KeyError::Malformed("not JSON".into()))?;
        let obj = value
            .as_object()
            .ok_or_else(|| KeyError::Malformed("not an object".into()))?;
        let current = obj
            .get("current")
            .and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok()))
            .and_then(|v| u32::try_from(v).ok())
            .filter(|v| *v > 0)
            .ok_or_else(|| KeyError::Malformed("\"current\" is not a positive version".into()))?;
        let mut keys = BTreeMap::new();
        for (name, v) in obj {
            if name == "current" {
                continue;
            }
            let version: u32 = name
                .parse()
                .ok()
                .filter(|v| *v > 0)
                // Never quoted: a misplaced key could be the member's name.
                .ok_or_else(|| {
                    KeyError::Malformed("a member is neither \"current\" nor a version".into())
                })?;
            let key = v
                .as_str()
                .ok_or_else(|| KeyError::Malformed(format!("version {version} is not text")))?;
            keys.insert(version, key.to_string());
        }
        Ok(KeyringText { current, keys })
    }

    pub fn to_json(&self) -> String {
        let mut obj = serde_json::Map::new();
        obj.insert("current".into(), self.current.into());
        for (v, k) in &self.keys {
            obj.insert(v.to_string(), k.clone().into());
        }
        serde_json::Value::Object(obj).to_string()
    }

    /// A first keyring: version 1, generated.
    pub fn generate() -> Result<Self, KeyError> {
        Ok(KeyringText {
            current: 1,
            keys: BTreeMap::from([(1, generate_key_text()?)]),
        })
    }

    /// Adds a generated key as the next version and makes it current.
    pub fn add_version(&mut self) -> Result<u32, KeyError> {
        let next = self.keys.keys().max().copied().unwrap_or(0) + 1;
        self.keys.insert(next, generate_key_text()?);
        self.current = next;
        Ok(next)
    }
}

impl Keyring {
    /// The keyring of `text`, refusing any key equal to the index key's text.
    pub fn new(text: &KeyringText, index: &IndexKey) -> Result<Self, KeyError> {
        let mut keys = BTreeMap::new();
        for (version, key_text) in &text.keys {
            let digest: [u8; 32] = Sha256::digest(key_text.as_bytes()).into();
            if digest == index.text_digest {
                return Err(KeyError::SameAsIndex);
            }
            let bytes = derive("cc-callbacks number encryption", key_text)?;
            let key = UnboundKey::new(&AES_256_GCM, &bytes)
                .map_err(|_| KeyError::Malformed("AES-256 key".into()))?;
            keys.insert(*version, LessSafeKey::new(key));
        }
        if !keys.contains_key(&text.current) {
            return Err(KeyError::NoCurrent(text.current));
        }
        Ok(Keyring {
            current: text.current,
            keys,
        })
    }

    /// A one-version keyring of one derived AES-256 key (what wraps or seals small secrets).
    pub(crate) fn single(key: &[u8; 32]) -> Keyring {
        let key = UnboundKey::new(&AES_256_GCM, key).expect("32 bytes is an AES-256 key"); // ok: AES_256_GCM takes exactly 32 bytes
        Keyring {
            current: 1,
            keys: BTreeMap::from([(1, LessSafeKey::new(key))]),
        }
    }

    pub fn current_version(&self) -> u32 {
        self.current
    }

    fn aad(uid: &Uid) -> Vec<u8> {
        let mut aad = b"cc-callbacks number\0".to_vec();
        aad.extend_from_slice(uid.key().as_bytes());
        aad
    }

    /// `v<version>.<base64url(nonce | ciphertext | tag)>`, under the current key.
    pub fn seal(&self, uid: &Uid, phone: &PhoneKey) -> Result<SealedNumber, KeyError> {
        self.seal_bytes(&Self::aad(uid), phone.as_str().as_bytes())
            .map(SealedNumber)
    }

    /// The number sealed for `uid`.
    pub fn open(&self, uid: &Uid, sealed: &SealedNumber) -> Result<PhoneKey, OpenError> {
        let plain = self.open_bytes(&Self::aad(uid), sealed.as_str())?;
        let text = String::from_utf8(plain).map_err(|_| OpenError::Malformed)?;
        Ok(PhoneKey::from_stored(text))
    }

    /// `plain` sealed under the current key with `aad` bound to it, in the sealed numbers'
    /// text form (also what wraps a tenant's keys, `domain::tenant`).
    pub(crate) fn seal_bytes(&self, aad: &[u8], plain: &[u8]) -> Result<String, KeyError> {
        let key = &self.keys[&self.current];
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|e| KeyError::Random(e.to_string()))?;
        let mut buf = plain.to_vec();
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad),
            &mut buf,
        )
        .map_err(|_| KeyError::Random("sealing failed".into()))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        Ok(format!("v{}.{}", self.current, URL_SAFE_NO_PAD.encode(out)))
    }

    /// What `seal_bytes` sealed with the same `aad`.
    pub(crate) fn open_bytes(&self, aad: &[u8], sealed: &str) -> Result<Vec<u8>, OpenError> {
        let version = sealed_version(sealed).ok_or(OpenError::Malformed)?;
        let key = self
            .keys
            .get(&version)
            .ok_or(OpenError::UnknownVersion(version))?;
        let body = sealed.split_once('.').ok_or(OpenError::Malformed)?.1;
        let mut bytes = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| OpenError::Malformed)?;
        if bytes.len() < NONCE_LEN + AES_256_GCM.tag_len() {
            return Err(OpenError::Malformed);
        }
        let mut ciphertext = bytes.split_off(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(&bytes).map_err(|_| OpenError::Malformed)?;
        let plain = key
            .open_in_place(nonce, Aad::from(aad), &mut ciphertext)
            .map_err(|_| OpenError::Forged)?;
        let len = plain.len();
        ciphertext.truncate(len);
        Ok(ciphertext)
    }
}

/// The key version a sealed number names (`v3.…` -> 3).
pub fn sealed_version(sealed: &str) -> Option<u32> {
    sealed.strip_prefix('v')?.split_once('.')?.0.parse().ok()
}

/// What a store needs to keep numbers: the index key always, the keyring where numbers are
/// written or read back (number mapping, the CLI; identity verification only looks up).
#[derive(Debug, Clone)]
pub struct NumberProtection {
    pub index: IndexKey,
    pub keyring: Option<std::sync::Arc<Keyring>>,
}

impl NumberProtection {
    pub fn index(&self, phone: &PhoneKey) -> NumberIndex {
        self.index.index(phone)
    }

    pub fn seal(&self, uid: &Uid, phone: &PhoneKey) -> Result<SealedNumber, KeyError> {
        self.keyring
            .as_deref()
            .ok_or(KeyError::NoKeyring)?
            .seal(uid, phone)
    }

    pub fn open(&self, uid: &Uid, sealed: &SealedNumber) -> Result<PhoneKey, OpenError> {
        self.keyring
            .as_deref()
            .ok_or(OpenError::NoKeyring)?
            .open(uid, sealed)
    }

    /// The index key and keyring of these texts.
    pub fn from_texts(index: &str, keyring: &KeyringText) -> Result<Self, KeyError> {
        let index = IndexKey::from_text(index)?;
        let keyring = Keyring::new(keyring, &index)?;
        Ok(NumberProtection {
            index,
            keyring: Some(std::sync::Arc::new(keyring)),
        })
    }

    /// Keys generated on the spot: tests and throwaway stores.
    pub fn generate() -> Result<Self, KeyError> {
        let index = IndexKey::from_text(&generate_key_text()?)?;
        let keyring = Keyring::new(&KeyringText::generate()?, &index)?;
        Ok(NumberProtection {
            index,
            keyring: Some(std::sync::Arc::new(keyring)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phone(s: &str) -> PhoneKey {
        PhoneKey::from_stored(s.into())
    }

    fn uid(s: &str) -> Uid {
        Uid::parse(s).unwrap()
    }

    #[test]
    fn index_is_deterministic_keyed_and_hides_the_number() {
        let a = IndexKey::from_text(&generate_key_text().unwrap()).unwrap();
        let b = IndexKey::from_text(&generate_key_text().unwrap()).unwrap();
        let p = phone("+8613988888888");
        assert_eq!(a.index(&p), a.index(&p));
        assert_ne!(a.index(&p), b.index(&p));
        assert_ne!(a.index(&p), a.index(&phone("+8613988888889")));
        assert_eq!(a.index(&p).as_str().len(), 43);
        assert!(!a.index(&p).as_str().contains("8888"));
        assert!(!format!("{:?}", a).contains(&format!("{:?}", a.key)));
    }

    #[test]
    fn sealed_numbers_open_only_for_their_id_and_key() {
        let p = NumberProtection::generate().unwrap();
        let id = uid("crm-00042");
        let sealed = p.seal(&id, &phone("+8613988888888")).unwrap();
        assert!(sealed.as_str().starts_with("v1."), "{sealed:?}");
        assert!(!sealed.as_str().contains("13988888888"));
        assert_eq!(p.open(&id, &sealed).unwrap().as_str(), "+8613988888888");
        // IDs match case-insensitively, so the associated data does too.
        assert_eq!(
            p.open(&uid("CRM-00042"), &sealed).unwrap().as_str(),
            "+8613988888888"
        );
        assert_eq!(p.open(&uid("crm-00043"), &sealed), Err(OpenError::Forged));
        let other = NumberProtection::generate().unwrap();
        assert_eq!(other.open(&id, &sealed), Err(OpenError::Forged));
        // Same number, fresh nonce: two seals differ.
        assert_ne!(sealed, p.seal(&id, &phone("+8613988888888")).unwrap());
        let mut tampered = sealed.as_str().as_bytes().to_vec();
        let last = tampered.len() - 1;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        let tampered = SealedNumber(String::from_utf8(tampered).unwrap());
        assert!(p.open(&id, &tampered).is_err());
        let raw = |s: &str| SealedNumber(s.to_string());
        assert_eq!(p.open(&id, &raw("v1.!!")), Err(OpenError::Malformed));
        assert_eq!(
            p.open(&id, &raw("+8613988888888")),
            Err(OpenError::Malformed)
        );
        assert_eq!(
            p.open(&id, &raw("v9.AAAA")),
            Err(OpenError::UnknownVersion(9))
        );
    }

    #[test]
    fn a_new_version_seals_new_numbers_and_old_ones_still_open() {
        let index = IndexKey::from_text(&generate_key_text().unwrap()).unwrap();
        let mut text = KeyringText::generate().unwrap();
        let v1 = Keyring::new(&text, &index).unwrap();
        let id = uid("0123456789abcdef");
        let old = v1.seal(&id, &phone("95588")).unwrap();
        assert_eq!(text.add_version().unwrap(), 2);
        let round_trip = KeyringText::parse(&text.to_json()).unwrap();
        assert_eq!(round_trip, text);
        let v2 = Keyring::new(&round_trip, &index).unwrap();
        assert_eq!(v2.current_version(), 2);
        assert_eq!(v2.open(&id, &old).unwrap().as_str(), "95588");
        let new = v2.seal(&id, &phone("95588")).unwrap();
        assert_eq!(new.version(), Some(2));
        assert_eq!(v1.open(&id, &new), Err(OpenError::UnknownVersion(2)));
    }

    #[test]
    fn keyring_text_is_checked() {
        let index_text = generate_key_text().unwrap();
        let index = IndexKey::from_text(&index_text).unwrap();
        let k = generate_key_text().unwrap();
        assert!(matches!(
            KeyringText::parse("[]"),
            Err(KeyError::Malformed(_))
        ));
        assert!(matches!(
            KeyringText::parse(&format!(r#"{{"1":"{k}"}}"#)),
            Err(KeyError::Malformed(_))
        ));
        assert!(matches!(
            KeyringText::parse(&format!(r#"{{"current":1,"x":"{k}"}}"#)),
            Err(KeyError::Malformed(_))
        ));
        let missing = KeyringText::parse(&format!(r#"{{"current":2,"1":"{k}"}}"#)).unwrap();
        assert_eq!(
            Keyring::new(&missing, &index).unwrap_err(),
            KeyError::NoCurrent(2)
        );
        let short = KeyringText::parse(r#"{"current":1,"1":"short"}"#).unwrap();
        assert_eq!(
            Keyring::new(&short, &index).unwrap_err(),
            KeyError::TooShort
        );
        let same = KeyringText::parse(&format!(r#"{{"current":"1","1":"{index_text}"}}"#)).unwrap();
        assert_eq!(
            Keyring::new(&same, &index).unwrap_err(),
            KeyError::SameAsIndex
        );
        assert_eq!(
            IndexKey::from_text("short").unwrap_err(),
            KeyError::TooShort
        );
    }
}
