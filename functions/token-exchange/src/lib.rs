//! Alibaba Cloud AICCS token exchange for the enterprise's CRM.
//!
//! `POST /token-exchange` with BasicAuth and `{"mode": "jwt", "accountName": ...}` or
//! `{"mode": "oauth", "subjectToken": ...}`: we sign a JWT for the agent (JWT mode) or pass the
//! CRM's OAuth token on (OAuth mode), exchange it at the Fuyun IdP and answer with the AICCS
//! access token. The private key and client secret never leave this function.
//!
//! `config.rs` its settings and secrets, `handler.rs` one request, `cache.rs` the token cache,
//! `idp.rs` the IdP client, `jwt.rs` the signer, `wire.rs` our endpoint's format.

pub mod cache;
pub mod config;
pub mod handler;
pub mod idp;
pub mod jwt;
pub mod tenants;
pub mod wire;

use std::sync::Arc;

use cc_shared::config::ConfigError;
use cc_shared::domain::clock::{Clock, SystemClock};
use cc_shared::domain::protect::IndexKey;
use cc_shared::resources::{Resources, StoreSet};
use cc_shared::store::AuditStore;
use cc_shared::web::auth::Credentials;
use cc_shared::web::tenancy::Tenancy;

use cache::TokenCache;
pub use config::{
    Config, Fuyun, FuyunSecrets, IdpTimeouts, CACHE_CAPACITY, CREDENTIALS_VAR, SECRET_ARN_VAR,
};
pub use handler::handle;

/// The function's name, as in its log lines.
pub const FUNCTION: &str = "token-exchange";

/// The handler's dependencies, built once per process.
pub struct TokenExchange {
    config: Config,
    cache: TokenCache,
    store: Arc<dyn AuditStore>,
    clock: Arc<dyn Clock>,
    /// Platform mode: each tenant's own IdP (`tenants.rs`).
    tenants: Option<tenants::Tenants>,
}

impl TokenExchange {
    /// The same service accepting other callers (tests, sample events).
    pub fn with_credentials(mut self, credentials: Credentials) -> Self {
        self.config.credentials = credentials;
        self
    }

    pub fn new(config: Config, store: Arc<dyn AuditStore>, clock: Arc<dyn Clock>) -> Self {
        let cache = TokenCache::new(config.cache_margin_seconds, CACHE_CAPACITY);
        TokenExchange {
            config,
            cache,
            store,
            clock,
            tenants: None,
        }
    }

    /// Serving the tenants of `stores`' registry too, each with its own IdP settings
    /// (platform mode); `index` is the stack's index key, which opens their lookup keys and
    /// so their sealed settings.
    pub fn serving_tenants(mut self, tenancy: Tenancy, stores: StoreSet, index: IndexKey) -> Self {
        self.tenants = Some(tenants::Tenants::new(
            tenancy.with_settings(),
            stores,
            index,
        ));
        self
    }
}

/// Builds the function from `res`: the default tenant's Fuyun secrets (Secrets Manager in
/// Lambda; none when it is not configured), the stack's index key (which opens the tenants'
/// sealed settings), both read at once; the IdP client and the signer.
pub async fn init(res: &Resources) -> Result<TokenExchange, ConfigError> {
    let (secrets, index) = tokio::join!(
        FuyunSecrets::load(res),
        cc_shared::number_keys::index_key(res)
    );
    let config = Config::from_env(res.dev_credentials.clone(), secrets?)?;
    let tenancy = Tenancy::new(FUNCTION, res.tenants(), config.tenant_cache);
    Ok(
        TokenExchange::new(config, res.audit(), Arc::new(SystemClock)).serving_tenants(
            tenancy,
            res.stores.clone(),
            index?,
        ),
    )
}

#[cfg(test)]
mod tests;
