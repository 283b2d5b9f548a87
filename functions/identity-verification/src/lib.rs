//! Huawei AICC's third-party identity verification callback.
//!
//! `POST /identity/verify` with BasicAuth and `{"calldata": {"verifyServiceNo": <customer
//! number>, "verifyWorkNo": <agent>, "<input field>": <digits typed>, "verifyTypeCode": ...}}`;
//! always answers HTTP 200 `{"calldata": {"data": {"verifyResult": 1|2|3, "verifyReturn1":
//! <reason>, "verifyReturn2": <attempts left>, "verifyReturn3": <user ID>}}}`, except 401 for
//! missing or wrong credentials.
//!
//! `config.rs` its settings and the PIN pepper, `handler.rs` one request, `verify.rs` the
//! lockout and the check, `wire.rs` Huawei's format.

pub mod config;
pub mod handler;
mod verify;
pub mod wire;

use std::sync::Arc;

use cc_shared::config::ConfigError;
use cc_shared::domain::clock::{Clock, SystemClock};
use cc_shared::domain::tenant_settings::Vendor;
use cc_shared::resources::{Resources, StoreSet};
use cc_shared::store::IdentityStore;
use cc_shared::web::tenancy::{BuiltPerTenant, Tenancy};

pub use config::{Config, LockoutPolicy, CREDENTIALS_VAR, MAX_BODY_BYTES};
pub use handler::handle;

/// The function's name, as in its log lines.
pub const FUNCTION: &str = "identity-verification";

/// The handler's dependencies, built once per process.
pub struct IdentityVerification {
    config: Config,
    /// The default tenant's records (a request's are in its `verify::Scope`).
    default_store: Arc<dyn IdentityStore>,
    clock: Arc<dyn Clock>,
    /// The default tenant's modes (`config.modes`), shared with each request's scope.
    default_modes: Arc<config::ModeSettings>,
    /// Platform mode: the registry (cached) and the stores a tenant's records are read from.
    tenants: Option<(Tenancy, StoreSet)>,
    /// Each tenant's modes, read from its settings once per revision.
    tenant_modes: BuiltPerTenant<config::ModeSettings>,
}

impl IdentityVerification {
    /// The function serving the default tenant only.
    pub fn new(config: Config, store: Arc<dyn IdentityStore>, clock: Arc<dyn Clock>) -> Self {
        IdentityVerification {
            default_modes: Arc::new(config.modes.clone()),
            config,
            default_store: store,
            clock,
            tenants: None,
            tenant_modes: BuiltPerTenant::default(),
        }
    }

    /// Serving the tenants of `stores`' registry too (platform mode), each with its own
    /// modes (its plain identity settings; none of its secrets is opened).
    pub fn serving_tenants(mut self, tenancy: Tenancy, stores: StoreSet) -> Self {
        self.tenants = Some((tenancy.with_plain_settings_of(Vendor::Identity), stores));
        self
    }

    pub fn config(&self) -> &Config {
        &self.config
    }
}

/// Builds the function from `res`: the phone metadata (CPU-bound, ~5 ms) loads on a blocking
/// thread while the pepper and the number index key are read (Secrets Manager in Lambda) and
/// the DynamoDB connection is opened, all at once.
pub async fn init(res: &Resources) -> Result<IdentityVerification, ConfigError> {
    let phones = tokio::task::spawn_blocking(cc_shared::config::phone_normalizer);
    let (pepper, index, primed) = tokio::join!(
        config::pepper(res),
        cc_shared::number_keys::index_key(res),
        res.prime("NPIN#")
    );
    primed?;
    let phones = cc_shared::web::lambda::joined(phones.await)?;
    let config = Config::from_env(res.dev_credentials.clone(), pepper?, index?, phones)?;
    let tenancy = Tenancy::new(FUNCTION, res.tenants(), config::tenant_cache()?);
    Ok(
        IdentityVerification::new(config, res.identity(), Arc::new(SystemClock))
            .serving_tenants(tenancy, res.stores.clone()),
    )
}

#[cfg(test)]
mod tests;
