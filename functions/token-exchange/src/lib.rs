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
pub mod wire;

use std::sync::Arc;

use cc_shared::config::ConfigError;
use cc_shared::domain::clock::{Clock, SystemClock};
use cc_shared::resources::Resources;
use cc_shared::store::AuditStore;
use cc_shared::web::auth::Credentials;

use cache::TokenCache;
pub use config::{Config, FuyunSecrets, CACHE_CAPACITY, CREDENTIALS_VAR, SECRET_ARN_VAR};
pub use handler::handle;

/// The function's name, as in its log lines.
pub const FUNCTION: &str = "token-exchange";

/// The handler's dependencies, built once per process.
pub struct TokenExchange {
    config: Config,
    cache: TokenCache,
    store: Arc<dyn AuditStore>,
    clock: Arc<dyn Clock>,
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
        }
    }
}

/// Builds the function from `res`: the Fuyun secrets (Secrets Manager in Lambda), the IdP
/// client and the signer.
pub async fn init(res: &Resources) -> Result<TokenExchange, ConfigError> {
    let secrets = FuyunSecrets::load(res).await?;
    let config = Config::from_env(res.dev_credentials.clone(), secrets)?;
    Ok(TokenExchange::new(
        config,
        res.audit(),
        Arc::new(SystemClock),
    ))
}

#[cfg(test)]
mod tests;
