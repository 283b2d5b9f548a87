//! Identity verification's settings and secrets, read and checked once at init, and its
//! limits. The PIN pepper comes from Secrets Manager in Lambda, locally from the environment
//! or a file generated once in the data directory.

use cc_shared::config::{self, ConfigError, Vars};
use cc_shared::domain::factor::Modes;
use cc_shared::domain::identity::Pepper;
use cc_shared::domain::phone::PhoneNormalizer;
use cc_shared::domain::protect::IndexKey;
use cc_shared::domain::tenant_settings::{TenantSettings, Vendor};
use cc_shared::resources::Resources;
use cc_shared::store::KeyUse;
use cc_shared::web::auth::Credentials;
use cc_shared::web::StoreBudget;

/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 16 * 1024;
/// Longest agent work number and verifyTypeCode accepted.
pub const MAX_WORK_NO_CHARS: usize = 32;
pub const MAX_TYPE_CODE_CHARS: usize = 64;

pub const CREDENTIALS_VAR: &str = "IDENTITY_VERIFY_CREDENTIALS";
/// The store budget of one verification (`STORE_BUDGET_MS`): a checked PIN is three round
/// trips, each bounded by the SDK's 1 s attempt timeout; past 3 s the IVR gets verifyResult 3
/// / `unavailable` and can branch (retry, transfer) while the caller is still listening.
pub const DEFAULT_STORE_BUDGET_MS: u64 = 3000;

/// When a customer is locked out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutPolicy {
    /// Failed attempts allowed within `window_seconds`; the next check is refused.
    pub max_failures: u32,
    pub window_seconds: i64,
    pub lock_seconds: i64,
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        LockoutPolicy {
            max_failures: 5,
            window_seconds: 15 * 60,
            lock_seconds: 15 * 60,
        }
    }
}

/// Settings read once at start-up.
pub struct Config {
    pub credentials: Credentials,
    pub phones: PhoneNormalizer,
    pub pepper: Pepper,
    /// The key of numbers' blind index (`cc_shared::number_keys`): PINs and mappings are
    /// looked up by it.
    pub index: IndexKey,
    /// The calldata field holding the digits the caller typed (`IDENTITY_INPUT_FIELD`).
    pub input_field: String,
    pub lockout: LockoutPolicy,
    pub record_ttl_days: i64,
    /// `IDENTITY_REQUIRE_KNOWN_AGENT`: a verifyWorkNo that is not an active agent of the CEC
    /// directory (agent-sync) is answered 3 / `unknown_agent`.
    pub require_known_agent: bool,
    pub store_budget: StoreBudget,
    /// The default tenant's modes (`IDENTITY_MODES`, `IDENTITY_DEFAULT_MODE`,
    /// `IDENTITY_ID_X_KEY`); a platform tenant's are its own settings.
    pub modes: ModeSettings,
}

/// Which factor each `verifyTypeCode` checks, and the key callers press for an ID number's
/// check character `X`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModeSettings {
    pub modes: Modes,
    pub id_x_key: char,
}

/// The key standing for `X` by default (`IDENTITY_ID_X_KEY`).
pub const DEFAULT_ID_X_KEY: char = '*';

/// No modes: every request checks the PIN.
impl Default for ModeSettings {
    fn default() -> Self {
        ModeSettings {
            modes: Modes::default(),
            id_x_key: DEFAULT_ID_X_KEY,
        }
    }
}

impl ModeSettings {
    /// Reads `IDENTITY_MODES` (unset: every request checks the PIN, as before modes),
    /// `IDENTITY_DEFAULT_MODE` and `IDENTITY_ID_X_KEY` (`*` or `#`, default `*`) from `vars`.
    pub fn read(vars: &Vars<'_>) -> Result<Self, ConfigError> {
        let list = vars.optional("IDENTITY_MODES").unwrap_or_default();
        let default = vars.optional("IDENTITY_DEFAULT_MODE");
        let modes = Modes::parse(&list, default.as_deref()).map_err(|e| ConfigError::Invalid {
            name: if e.0.contains("IDENTITY_DEFAULT_MODE") {
                "IDENTITY_DEFAULT_MODE"
            } else {
                "IDENTITY_MODES"
            },
            reason: e.0,
        })?;
        let id_x_key = match vars.optional("IDENTITY_ID_X_KEY").as_deref() {
            None => DEFAULT_ID_X_KEY,
            Some("*") => '*',
            Some("#") => '#',
            Some(_) => {
                return Err(ConfigError::Invalid {
                    name: "IDENTITY_ID_X_KEY",
                    reason: "the key for an ID number's X is * or #".into(),
                })
            }
        };
        Ok(ModeSettings { modes, id_x_key })
    }

    /// A platform tenant's own, from its settings (`tenants set ID IDENTITY_MODES=...`).
    pub fn for_tenant(settings: &TenantSettings) -> Result<Self, ConfigError> {
        ModeSettings::read(&Vars::Map(settings.values()))
    }
}

/// Checks a tenant's settings as the function will read them (`tenants set`).
pub fn check_tenant(settings: &TenantSettings) -> Result<(), ConfigError> {
    if settings.has(Vendor::Identity) {
        ModeSettings::for_tenant(settings)?;
    }
    Ok(())
}

impl Config {
    /// Reads every setting but the pepper (which may need AWS: see `cc_shared::aws`) and
    /// the phone metadata (loaded in parallel at init: `cc_shared::config::phone_normalizer`).
    pub fn from_env(
        fallback: Option<Credentials>,
        pepper: Pepper,
        index: IndexKey,
        phones: PhoneNormalizer,
    ) -> Result<Self, ConfigError> {
        let credentials = Credentials::from_env(CREDENTIALS_VAR, fallback)?;
        let input_field =
            config::optional("IDENTITY_INPUT_FIELD").unwrap_or_else(|| "verifyCode".into());
        if !valid_name(&input_field, MAX_TYPE_CODE_CHARS) {
            return Err(ConfigError::Invalid {
                name: "IDENTITY_INPUT_FIELD",
                reason: "use letters, digits and underscores".into(),
            });
        }
        Ok(Config {
            credentials,
            phones,
            pepper,
            index,
            input_field,
            lockout: LockoutPolicy {
                max_failures: config::number("IDENTITY_MAX_FAILURES", 5, 1..=100)?,
                window_seconds: config::number(
                    "IDENTITY_FAILURE_WINDOW_SECONDS",
                    900,
                    1..=86_400 * 30,
                )?,
                lock_seconds: config::number("IDENTITY_LOCK_SECONDS", 900, 1..=86_400 * 30)?,
            },
            record_ttl_days: config::number("IDENTITY_RECORD_TTL_DAYS", 90, 1..=3650)?,
            require_known_agent: config::flag("IDENTITY_REQUIRE_KNOWN_AGENT", false)?,
            store_budget: StoreBudget::from_env(DEFAULT_STORE_BUDGET_MS)?,
            modes: ModeSettings::read(&Vars::Env)?,
        })
    }
}

/// How long an instance keeps what the tenant registry said (`TENANT_CACHE_SECONDS`, default
/// 60, at most 3600): a revoked credential or a suspended tenant stops working within it.
pub fn tenant_cache() -> Result<std::time::Duration, ConfigError> {
    cc_shared::web::tenancy::cache_time_from_env()
}

pub(crate) fn valid_name(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.chars().count() <= max
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

pub const PEPPER_ARN_VAR: &str = "IDENTITY_PIN_PEPPER_SECRET_ARN";
pub const PEPPER_VAR: &str = "IDENTITY_PIN_PEPPER";
pub const PEPPER_FILE: &str = "pin-pepper";

fn pepper_from(name: &'static str, value: String) -> Result<Pepper, ConfigError> {
    Pepper::new(value.into_bytes()).map_err(|reason| ConfigError::Invalid { name, reason })
}

/// The PIN pepper: the Secrets Manager secret named by `IDENTITY_PIN_PEPPER_SECRET_ARN`, else
/// `IDENTITY_PIN_PEPPER`, else (outside Lambda only) `<data_dir>/pin-pepper`, generated with
/// mode 0600 only for a store that holds no PIN or verification record
/// (`number_keys::local_key`).
pub async fn pepper(res: &Resources) -> Result<Pepper, ConfigError> {
    if let Some(value) = res.secret(PEPPER_ARN_VAR).await? {
        return pepper_from(PEPPER_ARN_VAR, value);
    }
    if let Some(value) = config::optional(PEPPER_VAR) {
        return pepper_from(PEPPER_VAR, value);
    }
    let dir = match res.data_dir.as_deref() {
        Some(dir) if !config::in_lambda() => dir,
        _ => return Err(ConfigError::Missing(PEPPER_ARN_VAR)),
    };
    let text = cc_shared::number_keys::local_key(
        res.into(),
        KeyUse::Pepper,
        &dir.join(PEPPER_FILE),
        PEPPER_VAR,
        PEPPER_ARN_VAR,
        || {
            Pepper::generate()
                .map(|p| hex::encode(p.as_bytes()))
                .map_err(|e| ConfigError::Invalid {
                    name: PEPPER_VAR,
                    reason: e.to_string(),
                })
        },
    )
    .await?;
    pepper_from(PEPPER_VAR, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::sync::Arc;

    use cc_shared::domain::identity::PinDigest;
    use cc_shared::resources::StoreSet;
    use cc_shared::store::embedded::EmbeddedStore;
    use cc_shared::store::IdentityStore;

    fn local(dir: &std::path::Path) -> (Resources, Arc<EmbeddedStore>) {
        let store = Arc::new(EmbeddedStore::open(dir).unwrap());
        let res = Resources {
            stores: StoreSet::each(store.clone()),
            sdk: None,
            data_dir: Some(dir.to_path_buf()),
            keyed: Some(store.clone()),
            dev_credentials: None,
        };
        (res, store)
    }

    #[test]
    fn mode_settings_are_checked_naming_the_setting() {
        let map = |pairs: &[(&str, &str)]| -> std::collections::BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let none = ModeSettings::read(&Vars::Map(&map(&[]))).unwrap();
        assert_eq!(none, ModeSettings::default());
        let set = map(&[
            ("IDENTITY_MODES", "PIN=pin,IDCARD=id_last6"),
            ("IDENTITY_DEFAULT_MODE", "PIN"),
            ("IDENTITY_ID_X_KEY", "#"),
        ]);
        let read = ModeSettings::read(&Vars::Map(&set)).unwrap();
        assert_eq!(read.id_x_key, '#');
        assert_eq!(
            read.modes.factor_of(""),
            Some(cc_shared::domain::factor::Factor::Pin)
        );
        for (pairs, named) in [
            (&[("IDENTITY_MODES", "PIN=face")][..], "IDENTITY_MODES"),
            (
                &[
                    ("IDENTITY_MODES", "PIN=pin"),
                    ("IDENTITY_DEFAULT_MODE", "DOB"),
                ][..],
                "IDENTITY_DEFAULT_MODE",
            ),
            (&[("IDENTITY_ID_X_KEY", "X")][..], "IDENTITY_ID_X_KEY"),
        ] {
            let err = ModeSettings::read(&Vars::Map(&map(pairs))).unwrap_err();
            assert!(err.to_string().starts_with(named), "{err}");
        }
    }

    #[tokio::test]
    async fn a_local_pepper_is_generated_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let (res, _) = local(dir.path());
        let a = pepper(&res).await.unwrap();
        let b = pepper(&res).await.unwrap();
        assert_eq!(a.as_bytes(), b.as_bytes());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(PEPPER_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    /// A platform tenant's enrolments are under its own pepper: they do not stop the default
    /// tenant's local pepper from being generated.
    #[tokio::test]
    async fn a_tenants_enrolments_do_not_hold_the_stacks_pepper() {
        let dir = tempfile::tempdir().unwrap();
        let (res, store) = local(dir.path());
        let acme = cc_shared::domain::tenant::TenantId::parse("acme").unwrap();
        let index = cc_shared::domain::protect::IndexKey::from_text(&"i".repeat(64)).unwrap();
        let phone = config::phone_normalizer()
            .unwrap()
            .normalize("13900001111")
            .unwrap();
        let tenant_pepper = Pepper::new(vec![7; 32]).unwrap();
        store
            .for_tenant(&acme)
            .put_pins(&[(
                index.index(&phone),
                tenant_pepper.pin_digest(&phone, "1234"),
            )])
            .await
            .unwrap();
        pepper(&res).await.unwrap();
        assert!(dir.path().join(PEPPER_FILE).exists());
    }

    #[tokio::test]
    async fn a_lost_pepper_is_not_replaced_over_enrolled_pins() {
        let dir = tempfile::tempdir().unwrap();
        let (res, store) = local(dir.path());
        let first = pepper(&res).await.unwrap();
        let index = cc_shared::domain::protect::IndexKey::from_text(&"i".repeat(64)).unwrap();
        let phone = config::phone_normalizer()
            .unwrap()
            .normalize("13900001111")
            .unwrap();
        let digest: PinDigest = first.pin_digest(&phone, "123456");
        store
            .put_pins(&[(index.index(&phone), digest)])
            .await
            .unwrap();
        std::fs::remove_file(dir.path().join(PEPPER_FILE)).unwrap();
        let err = pepper(&res).await.unwrap_err().to_string();
        assert!(err.contains("pin-pepper is missing"), "{err}");
        assert!(err.contains("restore the file from a backup"), "{err}");
        assert!(
            !dir.path().join(PEPPER_FILE).exists(),
            "a new pepper was written"
        );
    }
}
