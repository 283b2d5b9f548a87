//! Huawei CEC agent directory: keeps the enterprise's copy of the CEC's agents (sync by
//! schedule and on demand), links business accounts to agents, and hands an agent's softphone
//! details out live (`POST /agents/softphone`), never storing the softphone password.
//!
//! `config.rs` its settings and the AK/SK, `sync.rs` the scheduled sync, `handler.rs` the
//! softphone endpoint, `cec_client.rs` the CEC, `wire.rs` our endpoint's format.

pub mod cec_client;
pub mod config;
pub mod handler;
pub mod schedule;
pub mod sync;
pub mod tenants;
pub mod wire;

use std::sync::Arc;
use std::time::Duration;

use cc_shared::config::ConfigError;
use cc_shared::domain::clock::{Clock, SystemClock};
use cc_shared::resources::Resources;
use cc_shared::store::AgentStore;
use cc_shared::web::auth::Credentials;
use cc_shared::web::tenancy::Tenancy;
use cc_shared::web::StoreBudget;

use cec_client::CecClient;
pub use config::{cec_from_env, deactivation_guard, CecSecrets, CREDENTIALS_VAR, SECRET_ARN_VAR};
pub use handler::handle;
pub use schedule::{run, Platform, RunReport, Scheduler};
pub use sync::{plan, sync, DeactivationGuard, SyncError};

/// The function's name, as in its log lines (both roles).
pub const FUNCTION: &str = "agent-sync";

/// The softphone endpoint's dependencies, built once per process.
pub struct AgentDirectory {
    credentials: Credentials,
    /// The default tenant's CEC (None: not configured here; its callers get 503).
    cec: Option<Arc<CecClient>>,
    store: Arc<dyn AgentStore>,
    clock: Arc<dyn Clock>,
    store_budget: StoreBudget,
    cec_budget: Duration,
    /// Platform mode: each tenant's own CEC and directory.
    tenants: Option<tenants::Tenants>,
}

impl AgentDirectory {
    pub fn new(
        credentials: Credentials,
        cec: Arc<CecClient>,
        store: Arc<dyn AgentStore>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self::with_default_cec(credentials, Some(cec), store, clock)
    }

    /// The default tenant's CEC may be absent (a platform whose tenants bring their own).
    pub fn with_default_cec(
        credentials: Credentials,
        cec: Option<Arc<CecClient>>,
        store: Arc<dyn AgentStore>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        AgentDirectory {
            credentials,
            cec,
            store,
            clock,
            store_budget: StoreBudget::from_millis(config::DEFAULT_STORE_BUDGET_MS),
            cec_budget: Duration::from_millis(config::DEFAULT_CEC_BUDGET_MS),
            tenants: None,
        }
    }

    /// `STORE_BUDGET_MS` as configured (the default otherwise).
    pub fn with_store_budget(mut self, budget: StoreBudget) -> Self {
        self.store_budget = budget;
        self
    }

    /// `CEC_BUDGET_MS` as configured (the default otherwise).
    pub fn with_cec_budget(mut self, budget: Duration) -> Self {
        self.cec_budget = budget;
        self
    }

    /// Serving platform tenants' callers too, each from its own CEC and directory.
    pub fn serving_tenants(mut self, tenants: tenants::Tenants) -> Self {
        self.tenants = Some(tenants);
        self
    }
}

/// The softphone endpoint from `res`: its credentials, the default tenant's CEC client (AK/SK
/// from Secrets Manager in Lambda; none when not configured), the budgets, and platform mode
/// (the stack's index key opens the tenants' settings).
pub async fn init(res: &Resources) -> Result<AgentDirectory, ConfigError> {
    let (cec, index) = tokio::join!(
        config::default_cec(res),
        cc_shared::number_keys::index_key(res)
    );
    let tenancy = Tenancy::new(
        FUNCTION,
        res.tenants(),
        cc_shared::web::tenancy::cache_time_from_env()?,
    )
    .with_settings();
    let tenants = tenants::Tenants::new(
        tenancy,
        res.stores.clone(),
        index?,
        config::CecTimeouts::from_env()?,
    );
    Ok(AgentDirectory::with_default_cec(
        Credentials::from_env(CREDENTIALS_VAR, res.dev_credentials.clone())?,
        cec?.map(Arc::new),
        res.agents(),
        Arc::new(SystemClock),
    )
    .with_store_budget(StoreBudget::from_env(config::DEFAULT_STORE_BUDGET_MS)?)
    .with_cec_budget(config::cec_budget()?)
    .serving_tenants(tenants))
}

/// The scheduled sync from `res`: the default tenant's CEC (if configured) and every
/// tenant's of the registry.
pub async fn init_scheduler(res: &Resources) -> Result<Scheduler, ConfigError> {
    let (cec, index) = tokio::join!(
        config::default_cec(res),
        cc_shared::number_keys::index_key(res)
    );
    let default = match cec? {
        Some(cec) => Some((cec, config::deactivation_guard()?)),
        None => None,
    };
    Ok(Scheduler {
        default,
        store: res.agents(),
        platform: Some(Platform {
            listing: res.stores.tenant_listing(),
            stores: res.stores.clone(),
            index: index?,
            timeouts: config::CecTimeouts::from_env()?,
            clients: Default::default(),
        }),
        limits: config::RunLimits::from_env()?,
    })
}

#[cfg(test)]
mod tests;
