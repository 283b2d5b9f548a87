//! Huawei CEC agent directory: keeps the enterprise's copy of the CEC's agents (sync by
//! schedule and on demand), links business accounts to agents, and hands an agent's softphone
//! details out live (`POST /agents/softphone`), never storing the softphone password.
//!
//! `config.rs` its settings and the AK/SK, `sync.rs` the scheduled sync, `handler.rs` the
//! softphone endpoint, `cec_client.rs` the CEC, `wire.rs` our endpoint's format.

pub mod cec_client;
pub mod config;
pub mod handler;
pub mod sync;
pub mod wire;

use std::sync::Arc;
use std::time::Duration;

use cc_shared::config::ConfigError;
use cc_shared::domain::clock::{Clock, SystemClock};
use cc_shared::resources::Resources;
use cc_shared::store::AgentStore;
use cc_shared::web::auth::Credentials;
use cc_shared::web::StoreBudget;

use cec_client::CecClient;
pub use config::{cec_from_env, deactivation_guard, CecSecrets, CREDENTIALS_VAR, SECRET_ARN_VAR};
pub use handler::handle;
pub use sync::{plan, sync, DeactivationGuard, SyncError};

/// The function's name, as in its log lines (both roles).
pub const FUNCTION: &str = "agent-sync";

/// The softphone endpoint's dependencies, built once per process.
pub struct AgentDirectory {
    credentials: Credentials,
    cec: Arc<CecClient>,
    store: Arc<dyn AgentStore>,
    clock: Arc<dyn Clock>,
    store_budget: StoreBudget,
    cec_budget: Duration,
}

impl AgentDirectory {
    pub fn new(
        credentials: Credentials,
        cec: Arc<CecClient>,
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
}

/// The scheduled sync's dependencies.
pub struct Scheduler {
    pub cec: CecClient,
    pub store: Arc<dyn AgentStore>,
    pub guard: DeactivationGuard,
}

/// The softphone endpoint from `res`: its credentials, the CEC client (AK/SK from Secrets
/// Manager in Lambda), the store budget and the CEC budget.
pub async fn init(res: &Resources) -> Result<AgentDirectory, ConfigError> {
    let cec = cec_from_env(CecSecrets::load(res).await?)?;
    Ok(AgentDirectory::new(
        Credentials::from_env(CREDENTIALS_VAR, res.dev_credentials.clone())?,
        Arc::new(cec),
        res.agents(),
        Arc::new(SystemClock),
    )
    .with_store_budget(StoreBudget::from_env(config::DEFAULT_STORE_BUDGET_MS)?)
    .with_cec_budget(config::cec_budget()?))
}

/// The scheduled sync from `res`.
pub async fn init_scheduler(res: &Resources) -> Result<Scheduler, ConfigError> {
    Ok(Scheduler {
        cec: cec_from_env(CecSecrets::load(res).await?)?,
        store: res.agents(),
        guard: config::deactivation_guard()?,
    })
}

#[cfg(test)]
mod tests;
