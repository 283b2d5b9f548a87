//! Number mapping's settings, read and checked once at init, and its limits.

use cc_shared::config::ConfigError;
use cc_shared::domain::phone::PhoneNormalizer;
use cc_shared::store::MAX_BATCH;
use cc_shared::web::auth::Credentials;
use cc_shared::web::StoreBudget;

/// Largest accepted request body (100 numbers of 32 characters fit in about 4 KiB).
pub const MAX_BODY_BYTES: usize = 32 * 1024;
/// Most entries in `Numbers`: one DynamoDB BatchGetItem.
pub const MAX_NUMBERS: usize = MAX_BATCH;
/// Longest entry accepted in UIDToPhone mode (IDs are 16 characters; longer is malformed).
pub const MAX_UID_INPUT_CHARS: usize = 64;

pub const CREDENTIALS_VAR: &str = "NUMBER_MAPPING_CREDENTIALS";
/// The store budget of one request (`STORE_BUDGET_MS`): three attempts of the SDK's 1 s
/// attempt timeout, so a stalled DynamoDB answers `{"Code": 503}` after 3 s, while a contact
/// center waiting to show an agent the caller is still on the line.
pub const DEFAULT_STORE_BUDGET_MS: u64 = 3000;
/// How long an unmasking's record is kept by default (PIPL and GDPR ask for the processing
/// record to outlive the calls it accounts for).
pub const DEFAULT_UNMASK_TTL_DAYS: i64 = 180;
/// IDs one caller may ask of UIDToPhone per minute by default (`UNMASK_MAX_PER_MINUTE`; 0
/// turns the budget off): ten a second, far above an agent desk's dialling, far below a
/// scrape of the directory.
pub const DEFAULT_UNMASK_MAX_PER_MINUTE: u32 = 600;
/// The largest budget accepted (a typo of more digits fails at init rather than open it).
pub const MAX_UNMASK_MAX_PER_MINUTE: u32 = 1_000_000;

/// How often a serving process re-reads the number keys, so that a key version added while
/// it serves is used for new numbers (`NUMBER_KEYRING_REFRESH_SECONDS`, default 300; 0 never).
pub const DEFAULT_KEYRING_REFRESH_SECONDS: u64 = 300;

pub fn keyring_refresh() -> Result<Option<std::time::Duration>, ConfigError> {
    let seconds = cc_shared::config::number(
        "NUMBER_KEYRING_REFRESH_SECONDS",
        DEFAULT_KEYRING_REFRESH_SECONDS,
        0..=86_400,
    )?;
    Ok((seconds > 0).then(|| std::time::Duration::from_secs(seconds)))
}

/// How long an instance keeps what the tenant registry said (`TENANT_CACHE_SECONDS`, default
/// 60, at most 3600; 0 reads it on every tenant's request): a revoked credential or a suspended
/// tenant stops working within it.
pub fn tenant_cache() -> Result<std::time::Duration, ConfigError> {
    cc_shared::web::tenancy::cache_time_from_env()
}

/// Settings read once at start-up.
pub struct Config {
    pub credentials: Credentials,
    pub phones: PhoneNormalizer,
    pub store_budget: StoreBudget,
    /// How long an unmasking's record is kept (`UNMASK_AUDIT_TTL_DAYS`, 1 to 3650, default 180).
    pub unmask_ttl_days: i64,
    /// IDs one caller (per tenant) may ask of UIDToPhone per minute, counted in the store
    /// across every instance (`UNMASK_MAX_PER_MINUTE`, default 600); None when 0 (off).
    pub unmask_budget: Option<u32>,
}

impl Config {
    /// Reads `NUMBER_MAPPING_CREDENTIALS` (required unless `fallback`, the gateway's
    /// development credentials, is given), `DEFAULT_COUNTRY` (default `CN`), `PHONE_REGIONS`
    /// (extra regions, default none), `STORE_BUDGET_MS`, `UNMASK_AUDIT_TTL_DAYS` and
    /// `UNMASK_MAX_PER_MINUTE`.
    pub fn from_env(fallback: Option<Credentials>) -> Result<Self, ConfigError> {
        let credentials = Credentials::from_env(CREDENTIALS_VAR, fallback)?;
        let phones = cc_shared::config::phone_normalizer()?;
        Ok(Config {
            credentials,
            phones,
            store_budget: StoreBudget::from_env(DEFAULT_STORE_BUDGET_MS)?,
            unmask_ttl_days: cc_shared::config::number(
                "UNMASK_AUDIT_TTL_DAYS",
                DEFAULT_UNMASK_TTL_DAYS,
                1..=3650,
            )?,
            unmask_budget: Some(cc_shared::config::number(
                "UNMASK_MAX_PER_MINUTE",
                DEFAULT_UNMASK_MAX_PER_MINUTE,
                0..=MAX_UNMASK_MAX_PER_MINUTE,
            )?)
            .filter(|&n| n > 0),
        })
    }
}
