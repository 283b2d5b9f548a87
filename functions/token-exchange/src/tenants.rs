//! Platform mode: each tenant exchanges at its own AICCS app (README "Platform mode"). A
//! tenant's IdP client and signer are built from its settings (`tenants set`, opened by the
//! frame's tenancy) by the same code as the stack's (`config::Fuyun`), once per instance and
//! settings revision: a changed setting takes effect when the registry's cache time has
//! passed, and the tenant's cached tokens of the earlier revision are dropped then.

use std::sync::Arc;

use cc_shared::domain::protect::IndexKey;
use cc_shared::domain::tenant::TenantId;
use cc_shared::domain::tenant_settings::Vendor;
use cc_shared::resources::StoreSet;
use cc_shared::store::AuditStore;
use cc_shared::web::error::ApiError;
use cc_shared::web::tenancy::{
    unconfigured_tenant, unusable_settings, BuiltPerTenant, Tenancy, TenantCaller,
};

use crate::cache::TokenCache;
use crate::config::{Fuyun, IdpTimeouts};
use crate::FUNCTION;

/// How this function's answers name what it does.
const SERVICE: &str = "token exchange";

pub struct Tenants {
    pub tenancy: Tenancy,
    stores: StoreSet,
    pub index: IndexKey,
    built: BuiltPerTenant<Fuyun>,
}

/// The token cache's keys of one tenant's settings revision start with this.
pub fn cache_prefix(tenant: &TenantId, rev: u64) -> String {
    format!("{tenant}#{rev}#")
}

impl Tenants {
    pub fn new(tenancy: Tenancy, stores: StoreSet, index: IndexKey) -> Self {
        Tenants {
            tenancy,
            stores,
            index,
            built: BuiltPerTenant::default(),
        }
    }

    /// Where the tenant's audit records go: its own scope (`tenants remove` erases them).
    pub fn audit(&self, tenant: &TenantId) -> Arc<dyn AuditStore> {
        self.stores.for_tenant(tenant).audit()
    }

    /// The tenant's IdP: 503 (`Unconfigured`) when it has no Fuyun settings, or when they no
    /// longer pass the checks of `tenants set` (logged, naming the tenant and the setting).
    pub fn fuyun(
        &self,
        tenant: &TenantCaller,
        timeouts: IdpTimeouts,
        cache: &TokenCache,
    ) -> Result<Arc<Fuyun>, ApiError> {
        let id = &tenant.id;
        if !tenant.settings.has(Vendor::Fuyun) {
            return Err(unconfigured_tenant(SERVICE, id, "FUYUN_*"));
        }
        let (built, replaced) = self
            .built
            .get(tenant, |settings| Fuyun::for_tenant(settings, timeouts));
        if let Some(old) = replaced {
            cache.forget_prefix(&cache_prefix(id, old));
        }
        built.map_err(|fault| unusable_settings(FUNCTION, SERVICE, id, &fault))
    }
}
