//! Platform mode: each tenant exchanges at its own AICCS app (README "Platform mode"). A
//! tenant's IdP client and signer are built from its settings (`tenants set`, opened by the
//! frame's tenancy) by the same code as the stack's (`config::Fuyun`), once per instance and
//! settings revision: a changed setting takes effect when the registry's cache time has
//! passed, and the tenant's cached tokens of the earlier revision are dropped then.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use cc_shared::domain::protect::IndexKey;
use cc_shared::domain::tenant::TenantId;
use cc_shared::resources::StoreSet;
use cc_shared::store::AuditStore;
use cc_shared::web::error::ApiError;
use cc_shared::web::tenancy::{Tenancy, TenantCaller, MAX_CACHED_TENANTS};

use crate::cache::TokenCache;
use crate::config::{Fuyun, IdpTimeouts};
use crate::FUNCTION;

/// What a tenant's settings built: its IdP, or the setting that is wrong and why.
type Built = Result<Arc<Fuyun>, Arc<(&'static str, String)>>;

pub struct Tenants {
    pub tenancy: Tenancy,
    stores: StoreSet,
    pub index: IndexKey,
    /// By tenant: the settings revision built, and what it built.
    built: Mutex<HashMap<TenantId, (u64, Built)>>,
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
            built: Mutex::new(HashMap::new()),
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
        let settings = &tenant.settings;
        if !settings.has(cc_shared::domain::tenant_settings::Vendor::Fuyun) {
            return Err(ApiError::Unconfigured(format!(
                "token exchange is not configured for tenant {id}: set its FUYUN_* settings \
                 with `cc-callbacks tenants set {id} ...` (README \"Platform mode\")"
            )));
        }
        let built = {
            let map = self.built.lock().unwrap_or_else(|p| p.into_inner());
            map.get(id)
                .filter(|(rev, _)| *rev == settings.rev)
                .map(|(_, b)| b.clone())
        };
        let built = match built {
            Some(b) => b,
            None => {
                let b: Built = Fuyun::for_tenant(settings, timeouts)
                    .map(Arc::new)
                    .map_err(|e| {
                        let name = match &e {
                            cc_shared::config::ConfigError::Missing(n) => *n,
                            cc_shared::config::ConfigError::Invalid { name, .. } => *name,
                        };
                        Arc::new((name, e.to_string()))
                    });
                let mut map = self.built.lock().unwrap_or_else(|p| p.into_inner());
                if map.len() >= MAX_CACHED_TENANTS {
                    map.clear();
                }
                if let Some((old, _)) = map.insert(id.clone(), (settings.rev, b.clone())) {
                    if old != settings.rev {
                        cache.forget_prefix(&cache_prefix(id, old));
                    }
                }
                b
            }
        };
        built.map_err(|e| {
            let (name, reason) = &*e;
            tracing::error!(
                function = FUNCTION,
                tenant = %id,
                setting = name,
                error = %reason,
                "tenant settings unusable"
            );
            ApiError::Unconfigured(format!(
                "token exchange is not available for tenant {id}: its setting {name} is not \
                 valid (see `cc-callbacks tenants show {id}`)"
            ))
        })
    }
}
