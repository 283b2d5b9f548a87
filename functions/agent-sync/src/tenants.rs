//! Platform mode: each tenant's agent directory, from its own CEC (README "Platform mode"). A
//! tenant's CEC client is built from its settings (`tenants set`, opened by the frame's
//! tenancy) by the same code as the stack's (`config::cec_in`), once per instance and
//! settings revision; its agents, links and sync state are kept under its scope.

use std::sync::Arc;

use cc_shared::domain::protect::IndexKey;
use cc_shared::domain::tenant::TenantId;
use cc_shared::domain::tenant_settings::Vendor;
use cc_shared::resources::StoreSet;
use cc_shared::store::AgentStore;
use cc_shared::web::error::ApiError;
use cc_shared::web::tenancy::{
    unconfigured_tenant, unusable_settings, BuiltPerTenant, Tenancy, TenantCaller,
};

use crate::cec_client::CecClient;
use crate::config::{tenant_cec, CecTimeouts};
use crate::FUNCTION;

/// How this function's answers name what it does.
pub const SERVICE: &str = "the agent directory";

pub struct Tenants {
    pub tenancy: Tenancy,
    stores: StoreSet,
    pub index: IndexKey,
    timeouts: CecTimeouts,
    built: BuiltPerTenant<CecClient>,
}

impl Tenants {
    pub fn new(tenancy: Tenancy, stores: StoreSet, index: IndexKey, timeouts: CecTimeouts) -> Self {
        Tenants {
            tenancy,
            stores,
            index,
            timeouts,
            built: BuiltPerTenant::default(),
        }
    }

    /// The tenant's agent directory (its scope).
    pub fn agents(&self, tenant: &TenantId) -> Arc<dyn AgentStore> {
        self.stores.for_tenant(tenant).agents()
    }

    /// The tenant's CEC: 503 (`Unconfigured`) when it has no CEC settings, or when they no
    /// longer pass the checks of `tenants set` (logged, naming the tenant and the setting).
    pub fn cec(&self, tenant: &TenantCaller) -> Result<Arc<CecClient>, ApiError> {
        let id = &tenant.id;
        if !tenant.settings.has(Vendor::Cec) {
            return Err(unconfigured_tenant(SERVICE, id, "CEC_*"));
        }
        let timeouts = self.timeouts;
        let (built, _) = self
            .built
            .get(tenant, |settings| Ok(tenant_cec(settings, timeouts)?.0));
        built.map_err(|fault| unusable_settings(FUNCTION, SERVICE, id, &fault))
    }
}
