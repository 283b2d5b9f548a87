//! Tencent Cloud Contact Center's "actual number mapped to user ID" callback.
//!
//! `POST /number-mapping` with `{"Numbers": [...], "Mode": "PhoneToUID" | "UIDToPhone"}` and
//! BasicAuth; answers `{"Code": 0, "Results": [{"Key", "Value"}]}` in request order.
//!
//! `config.rs` its settings, `handler.rs` one request, `wire.rs` Tencent's format.

pub mod config;
pub mod handler;
pub mod wire;

use std::sync::Arc;

use cc_shared::config::ConfigError;
use cc_shared::domain::clock::{Clock, SystemClock};
use cc_shared::number_keys::LiveKeys;
use cc_shared::resources::{Resources, StoreSet};
use cc_shared::store::{MappingStore, UnmaskingLog};
use cc_shared::web::tenancy::Tenancy;

pub use config::{Config, CREDENTIALS_VAR, MAX_BODY_BYTES};
pub use handler::handle;

/// The function's name, as in its log lines.
pub const FUNCTION: &str = "number-mapping";

/// The handler's dependencies, built once per process.
pub struct NumberMapping {
    config: Config,
    keys: LiveKeys,
    /// The default tenant's mapping.
    store: Arc<dyn MappingStore>,
    /// Where the default tenant's unmaskings are recorded (a tenant's: its scope's).
    unmaskings: Arc<dyn UnmaskingLog>,
    clock: Arc<dyn Clock>,
    /// Platform mode: the registry (cached) and the stores a tenant's mapping is read from.
    tenants: Option<(Tenancy, StoreSet)>,
}

impl NumberMapping {
    /// The function serving the default tenant only, recording its unmaskings in
    /// `unmaskings`.
    pub fn new(
        config: Config,
        keys: LiveKeys,
        store: Arc<dyn MappingStore>,
        unmaskings: Arc<dyn UnmaskingLog>,
    ) -> Self {
        NumberMapping {
            config,
            keys,
            store,
            unmaskings,
            clock: Arc::new(SystemClock),
            tenants: None,
        }
    }

    /// The same with another clock (tests).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Serving the tenants of `stores`' registry too (platform mode).
    pub fn serving_tenants(mut self, tenancy: Tenancy, stores: StoreSet) -> Self {
        self.tenants = Some((tenancy, stores));
        self
    }
}

/// Builds the function from `res`: the settings (the phone metadata, CPU-bound, ~5 ms, on a
/// blocking thread) while the number keys are read and the DynamoDB connection is opened
/// (both mostly waiting on the network).
pub async fn init(res: &Resources) -> Result<NumberMapping, ConfigError> {
    let fallback = res.dev_credentials.clone();
    let config = tokio::task::spawn_blocking(move || Config::from_env(fallback));
    let refresh = config::keyring_refresh()?;
    let tenancy = Tenancy::new(FUNCTION, res.tenants(), config::tenant_cache()?);
    let (keys, primed) = tokio::join!(LiveKeys::load(res, refresh), res.prime("NUM#"));
    primed?;
    let config = cc_shared::web::lambda::joined(config.await)?;
    Ok(
        NumberMapping::new(config, keys?, res.mapping(), res.stores.unmasking_log())
            .serving_tenants(tenancy, res.stores.clone()),
    )
}

#[cfg(test)]
mod tests;
