//! A platform-mode tenant's own vendor settings (`tenants set`, README "Platform mode"): the
//! very names of the single-enterprise variables, so one vocabulary configures a stage and a
//! tenant, read and checked by the same code (`config::Vars`). Secrets are kept sealed
//! (AES-256-GCM) under a key derived from the tenant's own index key, the tenant's ID and the
//! setting's name bound as associated data: removing the tenant's registry entry (its wrapped
//! keys) leaves them unreadable, and a sealed value copied onto another tenant or setting
//! does not open.

use std::collections::BTreeMap;
use std::fmt;

use super::protect::{derive, KeyError, Keyring, OpenError};
use super::tenant::TenantId;

/// Whose settings a name belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vendor {
    /// Alibaba AICCS's Fuyun IdP (token exchange).
    Fuyun,
    /// Huawei CEC (the agent directory).
    Cec,
    /// Identity verification's modes (which factor each `verifyTypeCode` checks).
    Identity,
}

/// One name of the vocabulary.
#[derive(Debug)]
pub struct Setting {
    pub name: &'static str,
    /// Accepted only from a file or standard input, kept sealed, never shown.
    pub secret: bool,
    pub vendor: Vendor,
}

const fn plain(name: &'static str, vendor: Vendor) -> Setting {
    Setting {
        name,
        secret: false,
        vendor,
    }
}

const fn secret(name: &'static str, vendor: Vendor) -> Setting {
    Setting {
        name,
        secret: true,
        vendor,
    }
}

/// Every setting a tenant may hold, in the order `tenants show` prints them.
pub const SETTINGS: &[Setting] = &[
    plain("FUYUN_CLIENT_ID", Vendor::Fuyun),
    secret("FUYUN_CLIENT_SECRET", Vendor::Fuyun),
    secret("FUYUN_PRIVATE_KEY", Vendor::Fuyun),
    plain("FUYUN_SCOPE", Vendor::Fuyun),
    plain("FUYUN_REDIRECT_URL", Vendor::Fuyun),
    plain("FUYUN_ISSUER", Vendor::Fuyun),
    plain("FUYUN_APP_NAME", Vendor::Fuyun),
    plain("FUYUN_TOKEN_URL", Vendor::Fuyun),
    plain("FUYUN_JWT_TTL_SECONDS", Vendor::Fuyun),
    plain("FUYUN_JWT_EXP_MILLIS", Vendor::Fuyun),
    plain("CEC_BASE_URL", Vendor::Cec),
    plain("CEC_AGENT_INFO_PATH", Vendor::Cec),
    plain("CEC_APP_KEY", Vendor::Cec),
    secret("CEC_APP_SECRET", Vendor::Cec),
    plain("CEC_TENANT_SPACE_ID", Vendor::Cec),
    plain("CEC_TOKEN_EXPIRE_SECONDS", Vendor::Cec),
    plain("AGENT_SYNC_MAX_DEACTIVATE_PERCENT", Vendor::Cec),
    plain("IDENTITY_MODES", Vendor::Identity),
    plain("IDENTITY_DEFAULT_MODE", Vendor::Identity),
    plain("IDENTITY_ID_X_KEY", Vendor::Identity),
];

/// Longest value of a setting (a PEM RSA-4096 key is about 3.3 KB).
pub const MAX_VALUE_BYTES: usize = 8 * 1024;

/// The setting called `name`.
pub fn setting(name: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.name == name)
}

/// Why a tenant's settings could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    #[error("{0} is not a tenant setting")]
    Unknown(String),
    #[error("{0}: the value is over {MAX_VALUE_BYTES} bytes or holds control characters")]
    BadValue(&'static str),
    #[error("{name} does not open: {reason}")]
    Sealed { name: String, reason: String },
}

/// The key that seals a tenant's secret settings, derived from its index key's text.
#[derive(Clone)]
pub struct SettingsKey(std::sync::Arc<Keyring>);

impl fmt::Debug for SettingsKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SettingsKey(…)")
    }
}

fn aad(tenant: &TenantId, name: &str) -> Vec<u8> {
    let mut aad = b"cc-callbacks tenant setting\0".to_vec();
    aad.extend_from_slice(tenant.as_str().as_bytes());
    aad.push(0);
    aad.extend_from_slice(name.as_bytes());
    aad
}

impl SettingsKey {
    pub(crate) fn from_index_text(text: &str) -> Result<Self, KeyError> {
        let key = derive("cc-callbacks tenant settings", text)?;
        Ok(SettingsKey(std::sync::Arc::new(Keyring::single(&key))))
    }

    fn seal(&self, tenant: &TenantId, name: &str, value: &str) -> Result<String, KeyError> {
        self.0.seal_bytes(&aad(tenant, name), value.as_bytes())
    }

    fn open(&self, tenant: &TenantId, name: &str, sealed: &str) -> Result<String, OpenError> {
        let plain = self.0.open_bytes(&aad(tenant, name), sealed)?;
        String::from_utf8(plain).map_err(|_| OpenError::Malformed)
    }
}

/// A tenant's settings as the registry holds them (secrets sealed), with the revision that
/// every change bumps (what caches of built clients and tokens are keyed by).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredSettings {
    pub rev: u64,
    pub values: BTreeMap<String, String>,
}

/// A tenant's settings in the clear, as a function uses them. Its `Debug` shows names only.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct TenantSettings {
    pub rev: u64,
    values: BTreeMap<String, String>,
}

impl fmt::Debug for TenantSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TenantSettings")
            .field("rev", &self.rev)
            .field("names", &self.values.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl TenantSettings {
    pub fn values(&self) -> &BTreeMap<String, String> {
        &self.values
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// Whether any setting of `vendor` is set.
    pub fn has(&self, vendor: Vendor) -> bool {
        self.values
            .keys()
            .any(|n| setting(n).is_some_and(|s| s.vendor == vendor))
    }

    /// Sets (`Some`) or unsets (`None`) `name`, checked against the vocabulary.
    pub fn set(&mut self, name: &str, value: Option<String>) -> Result<(), SettingsError> {
        let s = setting(name).ok_or_else(|| SettingsError::Unknown(name.to_string()))?;
        match value {
            None => {
                self.values.remove(s.name);
            }
            Some(v) => {
                // A secret read from a file may end in a newline; a key spans lines.
                let v = v.trim().to_string();
                let control = v
                    .chars()
                    .any(|c| c.is_control() && !(s.secret && matches!(c, '\n' | '\r' | '\t')));
                if v.len() > MAX_VALUE_BYTES || control {
                    return Err(SettingsError::BadValue(s.name));
                }
                if v.is_empty() {
                    self.values.remove(s.name);
                } else {
                    self.values.insert(s.name.to_string(), v);
                }
            }
        }
        Ok(())
    }

    /// The stored form: secrets sealed for `tenant` under `key`, revision `rev`.
    pub fn seal(
        &self,
        key: &SettingsKey,
        tenant: &TenantId,
        rev: u64,
    ) -> Result<StoredSettings, KeyError> {
        let mut values = BTreeMap::new();
        for (name, value) in &self.values {
            let stored = match setting(name) {
                Some(s) if s.secret => key.seal(tenant, name, value)?,
                _ => value.clone(),
            };
            values.insert(name.clone(), stored);
        }
        Ok(StoredSettings { rev, values })
    }
}

impl StoredSettings {
    /// Only `vendor`'s settings that are not secrets (identity verification's modes): no key
    /// is needed and no secret is opened.
    pub fn plain_of(&self, vendor: Vendor) -> TenantSettings {
        let values = self
            .values
            .iter()
            .filter(|(name, _)| setting(name).is_some_and(|s| s.vendor == vendor && !s.secret))
            .map(|(n, v)| (n.clone(), v.clone()))
            .collect();
        TenantSettings {
            rev: self.rev,
            values,
        }
    }

    /// In the clear: every secret opened with `key` for `tenant`. A name outside the
    /// vocabulary (written by a newer release) is left out.
    pub fn open(
        &self,
        key: &SettingsKey,
        tenant: &TenantId,
    ) -> Result<TenantSettings, SettingsError> {
        let mut values = BTreeMap::new();
        for (name, stored) in &self.values {
            let Some(s) = setting(name) else { continue };
            let value = if s.secret {
                key.open(tenant, name, stored)
                    .map_err(|e| SettingsError::Sealed {
                        name: name.clone(),
                        reason: e.to_string(),
                    })?
            } else {
                stored.clone()
            };
            values.insert(name.clone(), value);
        }
        Ok(TenantSettings {
            rev: self.rev,
            values,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::protect::generate_key_text;

    fn key() -> SettingsKey {
        SettingsKey::from_index_text(&generate_key_text().unwrap()).unwrap()
    }

    fn id(s: &str) -> TenantId {
        TenantId::parse(s).unwrap()
    }

    #[test]
    fn secrets_are_sealed_for_their_tenant_and_name_only() {
        let key = key();
        let mut plain = TenantSettings::default();
        plain
            .set("FUYUN_CLIENT_ID", Some("client-a".into()))
            .unwrap();
        plain
            .set("FUYUN_CLIENT_SECRET", Some("s3cret-value\n".into()))
            .unwrap();
        let stored = plain.seal(&key, &id("acme"), 3).unwrap();
        assert_eq!(stored.values["FUYUN_CLIENT_ID"], "client-a");
        assert!(!stored.values["FUYUN_CLIENT_SECRET"].contains("s3cret"));
        let back = stored.open(&key, &id("acme")).unwrap();
        assert_eq!(back.get("FUYUN_CLIENT_SECRET"), Some("s3cret-value"));
        assert_eq!((back.rev, back.values()), (3, plain.values()));
        assert!(stored.open(&key, &id("globex")).is_err());
        assert!(stored.open(&self::key(), &id("acme")).is_err());
        // A sealed value moved onto another secret's name does not open.
        let mut moved = stored.clone();
        let sealed = moved.values.remove("FUYUN_CLIENT_SECRET").unwrap();
        moved.values.insert("CEC_APP_SECRET".into(), sealed);
        assert!(matches!(
            moved.open(&key, &id("acme")),
            Err(SettingsError::Sealed { name, .. }) if name == "CEC_APP_SECRET"
        ));
        assert!(!format!("{back:?}").contains("s3cret"));
    }

    #[test]
    fn names_and_values_are_checked() {
        let mut s = TenantSettings::default();
        assert_eq!(
            s.set("FUYUN_CLIENT", Some("x".into())),
            Err(SettingsError::Unknown("FUYUN_CLIENT".into()))
        );
        assert_eq!(
            s.set("FUYUN_SCOPE", Some("a\nb".into())),
            Err(SettingsError::BadValue("FUYUN_SCOPE"))
        );
        assert_eq!(
            s.set("FUYUN_SCOPE", Some("x".repeat(MAX_VALUE_BYTES + 1))),
            Err(SettingsError::BadValue("FUYUN_SCOPE"))
        );
        s.set("FUYUN_PRIVATE_KEY", Some("-----BEGIN\nabc\n".into()))
            .unwrap();
        s.set("CEC_BASE_URL", Some("https://cec".into())).unwrap();
        assert!(s.has(Vendor::Cec) && s.has(Vendor::Fuyun));
        s.set("CEC_BASE_URL", Some(" ".into())).unwrap();
        s.set("FUYUN_PRIVATE_KEY", None).unwrap();
        assert!(!s.has(Vendor::Cec) && !s.has(Vendor::Fuyun));
    }
}
