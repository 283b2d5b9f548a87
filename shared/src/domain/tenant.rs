//! Tenants of platform mode: one stack serving many enterprises, each isolated by keys of its
//! own (README "Platform mode").
//!
//! - [`TenantId`]: 1 to 32 lowercase ASCII letters, digits and `-`, starting with a letter, so
//!   it can sit in a store key between `#` separators and in an IAM key prefix.
//! - [`TenantUser`]: a caller's BasicAuth user name, `NAME@ID` for a tenant's caller.
//! - [`TenantKeys`]: a tenant's own index key and keyring, generated when it is added and kept
//!   only wrapped ([`WrappedKeys`], AES-256-GCM under the stack's keyring, the tenant's ID bound
//!   as associated data), so that deleting the wrapped keys makes every copy of the tenant's
//!   sealed numbers unreadable (crypto-shredding) and its blind index values unrelated to any
//!   other tenant's.
//! - [`LookupKeys`]: what a function that only looks numbers up (identity verification) needs
//!   of a tenant: its index key and its PIN pepper (derived from the index key's text), also
//!   kept wrapped ([`WrappedLookup`], under a key derived from the stack's index key), so that
//!   identity verification serves tenants without ever being given a keyring.

use std::fmt;

use sha2::{Digest, Sha256};

use super::identity::Pepper;
use super::protect::{
    derive, generate_key_text, IndexKey, KeyError, Keyring, KeyringText, NumberProtection,
    OpenError,
};
use super::tenant_settings::SettingsKey;

/// Longest tenant ID.
pub const TENANT_ID_MAX: usize = 32;
/// Longest name of a tenant's caller (the part before `@`).
pub const CALLER_NAME_MAX: usize = 64;

/// A tenant's ID, checked.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantId(String);

/// Why a tenant ID was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TenantIdError {
    #[error("a tenant ID must not be empty")]
    Empty,
    #[error("a tenant ID is at most {TENANT_ID_MAX} characters")]
    TooLong,
    #[error("a tenant ID starts with a lowercase letter")]
    BadStart,
    #[error("a tenant ID has only lowercase ASCII letters, digits and '-'")]
    BadCharacter,
}

impl TenantId {
    pub fn parse(s: &str) -> Result<Self, TenantIdError> {
        let first = s.bytes().next().ok_or(TenantIdError::Empty)?;
        if s.len() > TENANT_ID_MAX {
            return Err(TenantIdError::TooLong);
        }
        if !first.is_ascii_lowercase() {
            return Err(TenantIdError::BadStart);
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(TenantIdError::BadCharacter);
        }
        Ok(TenantId(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TenantId({})", self.0)
    }
}

/// Why a caller's name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallerNameError {
    #[error(
        "a caller's name is 1 to {CALLER_NAME_MAX} characters, without ':', ',', '@' or spaces"
    )]
    Invalid,
}

/// Checks the name of a tenant's caller (what goes before `@ID`).
pub fn check_caller_name(name: &str) -> Result<(), CallerNameError> {
    let ok = !name.is_empty()
        && name.chars().count() <= CALLER_NAME_MAX
        && !name
            .chars()
            .any(|c| matches!(c, ':' | ',' | '@') || c.is_whitespace() || c.is_control());
    ok.then_some(()).ok_or(CallerNameError::Invalid)
}

/// A BasicAuth user name read as a tenant's caller: `NAME@ID`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantUser {
    pub name: String,
    pub tenant: TenantId,
}

impl TenantUser {
    /// `NAME@ID` with a valid name and tenant ID; None for anything else (a name without `@`
    /// is the default tenant's caller, not this).
    pub fn parse(user: &str) -> Option<Self> {
        let (name, tenant) = user.rsplit_once('@')?;
        check_caller_name(name).ok()?;
        Some(TenantUser {
            name: name.to_string(),
            tenant: TenantId::parse(tenant).ok()?,
        })
    }
}

/// The digest a tenant's credential is kept as: SHA-256 of the password, hex. The passwords
/// are 192 random bits (`web::auth::generate_entry`), so a fast digest is enough.
pub fn password_digest(password: &str) -> String {
    hex::encode(Sha256::digest(password.as_bytes()))
}

/// A tenant's own number keys, in their text form.
#[derive(Clone, PartialEq, Eq)]
pub struct TenantKeys {
    pub index: String,
    pub keyring: KeyringText,
}

impl fmt::Debug for TenantKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TenantKeys(current v{})", self.keyring.current)
    }
}

/// A tenant's keys sealed under the stack's keyring: `v<stack version>.<base64url>`.
#[derive(Clone, PartialEq, Eq)]
pub struct WrappedKeys(String);

impl WrappedKeys {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Rebuilds wrapped keys read back from the store.
    pub fn from_stored(s: String) -> Self {
        WrappedKeys(s)
    }

    /// The stack key version they are wrapped under.
    pub fn version(&self) -> Option<u32> {
        super::protect::sealed_version(&self.0)
    }
}

impl fmt::Debug for WrappedKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WrappedKeys(v{:?}…)", self.version())
    }
}

fn wrap_aad(tenant: &TenantId) -> Vec<u8> {
    let mut aad = b"cc-callbacks tenant keys\0".to_vec();
    aad.extend_from_slice(tenant.as_str().as_bytes());
    aad
}

impl TenantKeys {
    /// New keys for a tenant: an index key and a keyring at version 1, generated.
    pub fn generate() -> Result<Self, KeyError> {
        Ok(TenantKeys {
            index: generate_key_text()?,
            keyring: KeyringText::generate()?,
        })
    }

    /// The protection these keys give (checked as the stack's keys are).
    pub fn protection(&self) -> Result<NumberProtection, KeyError> {
        NumberProtection::from_texts(&self.index, &self.keyring)
    }

    /// The keys of lookups: the index key and the pepper derived from its text.
    pub fn lookup(&self) -> Result<LookupKeys, KeyError> {
        LookupKeys::from_index_text(&self.index)
    }

    /// The index key's text sealed for `tenant` under the stack's index key.
    pub fn wrap_lookup(
        &self,
        stack: &IndexKey,
        tenant: &TenantId,
    ) -> Result<WrappedLookup, KeyError> {
        stack
            .wrapping_keyring()
            .seal_bytes(&lookup_aad(tenant), self.index.as_bytes())
            .map(WrappedLookup)
    }

    /// Sealed under the stack's current key for `tenant` only.
    pub fn wrap(&self, stack: &Keyring, tenant: &TenantId) -> Result<WrappedKeys, KeyError> {
        let text = serde_json::json!({
            "index": self.index,
            "keyring": self.keyring.to_json(),
        })
        .to_string();
        stack
            .seal_bytes(&wrap_aad(tenant), text.as_bytes())
            .map(WrappedKeys)
    }

    /// The keys `wrap` sealed for `tenant` (keys copied onto another tenant do not open).
    pub fn unwrap(
        wrapped: &WrappedKeys,
        stack: &Keyring,
        tenant: &TenantId,
    ) -> Result<Self, OpenError> {
        let plain = stack.open_bytes(&wrap_aad(tenant), wrapped.as_str())?;
        let value: serde_json::Value =
            serde_json::from_slice(&plain).map_err(|_| OpenError::Malformed)?;
        let index = value["index"].as_str().ok_or(OpenError::Malformed)?;
        let keyring = value["keyring"].as_str().ok_or(OpenError::Malformed)?;
        Ok(TenantKeys {
            index: index.to_string(),
            keyring: KeyringText::parse(keyring).map_err(|_| OpenError::Malformed)?,
        })
    }
}

fn lookup_aad(tenant: &TenantId) -> Vec<u8> {
    let mut aad = b"cc-callbacks tenant lookup\0".to_vec();
    aad.extend_from_slice(tenant.as_str().as_bytes());
    aad
}

/// A tenant's index key and PIN pepper: all that identity verification holds of it.
#[derive(Clone)]
pub struct LookupKeys {
    pub index: IndexKey,
    pub pepper: Pepper,
    /// What seals its secret settings (`domain::tenant_settings`).
    pub settings: SettingsKey,
}

impl fmt::Debug for LookupKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LookupKeys(…)")
    }
}

impl LookupKeys {
    fn from_index_text(text: &str) -> Result<Self, KeyError> {
        let pepper = derive("cc-callbacks tenant pin pepper", text)?;
        Ok(LookupKeys {
            index: IndexKey::from_text(text)?,
            pepper: Pepper::new(pepper.to_vec()).map_err(KeyError::Malformed)?,
            settings: SettingsKey::from_index_text(text)?,
        })
    }

    /// The keys `TenantKeys::wrap_lookup` sealed for `tenant` under `stack`.
    pub fn unwrap(
        wrapped: &WrappedLookup,
        stack: &IndexKey,
        tenant: &TenantId,
    ) -> Result<Self, OpenError> {
        if wrapped.0.is_empty() {
            return Err(OpenError::Malformed);
        }
        let plain = stack
            .wrapping_keyring()
            .open_bytes(&lookup_aad(tenant), &wrapped.0)?;
        let text = String::from_utf8(plain).map_err(|_| OpenError::Malformed)?;
        Self::from_index_text(&text).map_err(|_| OpenError::Malformed)
    }
}

/// A tenant's lookup keys sealed under the stack's index key (empty: a tenant registered
/// before identity verification served tenants).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct WrappedLookup(String);

impl WrappedLookup {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Rebuilds wrapped lookup keys read back from the store.
    pub fn from_stored(s: String) -> Self {
        WrappedLookup(s)
    }
}

impl fmt::Debug for WrappedLookup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WrappedLookup(…)")
    }
}

/// A tenant as the registry holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    pub id: TenantId,
    /// What ops call it (free text, may be empty).
    pub name: String,
    pub created_at: i64,
    pub suspended: bool,
    pub keys: WrappedKeys,
    /// Its lookup keys, for identity verification.
    pub lookup: WrappedLookup,
}

impl Tenant {
    /// A new tenant, not suspended, holding `keys`: wrapped under the stack's keyring and, its
    /// lookup keys, under the stack's index key.
    pub fn new(
        id: TenantId,
        name: String,
        created_at: i64,
        keys: &TenantKeys,
        stack: &NumberProtection,
    ) -> Result<Self, KeyError> {
        let ring = stack.keyring.as_deref().ok_or_else(|| {
            KeyError::Malformed("the stack's keyring is needed to wrap a tenant's keys".into())
        })?;
        Ok(Tenant {
            keys: keys.wrap(ring, &id)?,
            lookup: keys.wrap_lookup(&stack.index, &id)?,
            id,
            name,
            created_at,
            suspended: false,
        })
    }
}

/// One caller's credential of a tenant: valid for one function only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantCredential {
    /// The name before `@ID`.
    pub user: String,
    /// The function's crate name (`number-mapping`, ...).
    pub function: String,
    /// [`password_digest`] of the password.
    pub digest: String,
    pub created_at: i64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::phone::PhoneKey;
    use crate::domain::protect::IndexKey;
    use crate::domain::uid::Uid;

    fn id(s: &str) -> TenantId {
        TenantId::parse(s).unwrap()
    }

    fn stack() -> Keyring {
        let index = IndexKey::from_text(&generate_key_text().unwrap()).unwrap();
        Keyring::new(&KeyringText::generate().unwrap(), &index).unwrap()
    }

    #[test]
    fn tenant_ids_are_checked() {
        for ok in ["a", "acme", "acme-2", &format!("a{}", "0".repeat(31))] {
            assert_eq!(TenantId::parse(ok).unwrap().as_str(), ok);
        }
        assert_eq!(TenantId::parse(""), Err(TenantIdError::Empty));
        assert_eq!(
            TenantId::parse(&"a".repeat(33)),
            Err(TenantIdError::TooLong)
        );
        for bad_start in ["1acme", "-acme", "Acme"] {
            assert_eq!(TenantId::parse(bad_start), Err(TenantIdError::BadStart));
        }
        for bad in ["acMe", "ac#me", "ac me", "ac_me", "acmé", "a@b"] {
            assert_eq!(
                TenantId::parse(bad),
                Err(TenantIdError::BadCharacter),
                "{bad}"
            );
        }
    }

    #[test]
    fn user_names_name_a_tenant_after_the_last_at() {
        let u = TenantUser::parse("tencent@acme").unwrap();
        assert_eq!((u.name.as_str(), u.tenant.as_str()), ("tencent", "acme"));
        for not_tenant in [
            "tencent",
            "@acme",
            "tencent@",
            "tencent@Acme",
            "a@b@acme",
            "t t@acme",
        ] {
            assert_eq!(TenantUser::parse(not_tenant), None, "{not_tenant}");
        }
    }

    #[test]
    fn caller_names_are_checked() {
        assert!(check_caller_name("tencent-1").is_ok());
        for bad in ["", "a:b", "a,b", "a@b", "a b", &"x".repeat(65)] {
            assert!(check_caller_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn wrapped_keys_open_only_for_their_tenant_and_stack() {
        let stack = stack();
        let keys = TenantKeys::generate().unwrap();
        let wrapped = keys.wrap(&stack, &id("acme")).unwrap();
        assert_eq!(wrapped.version(), Some(1));
        assert!(!wrapped.as_str().contains(&keys.index));
        let back = TenantKeys::unwrap(&wrapped, &stack, &id("acme")).unwrap();
        assert_eq!(back, keys);
        assert_eq!(
            TenantKeys::unwrap(&wrapped, &stack, &id("globex")),
            Err(OpenError::Forged)
        );
        assert_eq!(
            TenantKeys::unwrap(&wrapped, &self::stack(), &id("acme")),
            Err(OpenError::Forged)
        );
        // Wrapped twice, two different texts (fresh nonce), the same keys inside.
        assert_ne!(wrapped, keys.wrap(&stack, &id("acme")).unwrap());
    }

    #[test]
    fn lookup_keys_open_only_for_their_tenant_and_stack_index_key() {
        let index = || IndexKey::from_text(&generate_key_text().unwrap()).unwrap();
        let stack = index();
        let keys = TenantKeys::generate().unwrap();
        let wrapped = keys.wrap_lookup(&stack, &id("acme")).unwrap();
        assert!(!wrapped.as_str().contains(&keys.index));
        let back = LookupKeys::unwrap(&wrapped, &stack, &id("acme")).unwrap();
        let phone = PhoneKey::from_stored("+8613988888888".into());
        let direct = keys.lookup().unwrap();
        assert_eq!(back.index.index(&phone), direct.index.index(&phone));
        assert_eq!(
            back.index.index(&phone),
            keys.protection().unwrap().index(&phone)
        );
        assert!(back
            .pepper
            .pin_digest(&phone, "1234")
            .matches(&direct.pepper.pin_digest(&phone, "1234")));
        for (stack, tenant) in [(&stack, "globex"), (&index(), "acme")] {
            assert_eq!(
                LookupKeys::unwrap(&wrapped, stack, &id(tenant)).err(),
                Some(OpenError::Forged)
            );
        }
        assert_eq!(
            LookupKeys::unwrap(&WrappedLookup::default(), &stack, &id("acme")).err(),
            Some(OpenError::Malformed)
        );
        // Two tenants' peppers are unrelated, and unrelated to their index keys.
        let other = TenantKeys::generate().unwrap().lookup().unwrap();
        assert!(!other
            .pepper
            .pin_digest(&phone, "1234")
            .matches(&direct.pepper.pin_digest(&phone, "1234")));
        assert_ne!(direct.pepper.as_bytes(), keys.index.as_bytes());
    }

    #[test]
    fn two_tenants_index_and_seal_the_same_number_unrelatedly() {
        let a = TenantKeys::generate().unwrap().protection().unwrap();
        let b = TenantKeys::generate().unwrap().protection().unwrap();
        let phone = PhoneKey::from_stored("+8613988888888".into());
        assert_ne!(a.index(&phone), b.index(&phone));
        let uid = Uid::parse("0123456789abcdef").unwrap();
        let sealed = a.seal(&uid, &phone).unwrap();
        assert_eq!(a.open(&uid, &sealed).unwrap(), phone);
        assert_eq!(b.open(&uid, &sealed), Err(OpenError::Forged));
    }

    #[test]
    fn digests_do_not_hold_the_password() {
        let d = password_digest("s3cret-password");
        assert_eq!(d.len(), 64);
        assert!(!d.contains("s3cret"));
        assert_eq!(d, password_digest("s3cret-password"));
    }
}
