//! Token exchange's settings and secrets (the client secret and the agent-signing key), read
//! and checked once at init, and its limits.

use std::time::Duration;

use cc_shared::config::{self, ConfigError, Vars};
use cc_shared::domain::tenant_settings::{TenantSettings, Vendor};
use cc_shared::resources::Resources;
use cc_shared::web::auth::Credentials;
use cc_shared::web::StoreBudget;

use crate::idp::{IdpClient, IdpSettings};
use crate::jwt::{self, Signer};

/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 16 * 1024;
pub const MAX_ACCOUNT_NAME_CHARS: usize = 128;
pub const MAX_SUBJECT_TOKEN_CHARS: usize = 8192;
/// Most tokens kept in memory.
pub const CACHE_CAPACITY: usize = 10_000;
pub const DEFAULT_TOKEN_URL: &str = "https://signin.rhinokeen.com/oauth/token_exchange";

pub const CREDENTIALS_VAR: &str = "TOKEN_EXCHANGE_CREDENTIALS";
pub const SECRET_ARN_VAR: &str = "FUYUN_SECRET_ARN";

/// Whether the Fuyun IdP is configured in this process (`FUYUN_CLIENT_ID`, or its secret's
/// ARN) for the default tenant; without, the default tenant's callers are answered 503 (a
/// platform's tenants are served with their own settings either way).
pub fn configured() -> bool {
    cc_shared::config::optional("FUYUN_CLIENT_ID").is_some()
        || cc_shared::config::optional(SECRET_ARN_VAR).is_some()
}

/// What to set when it is not.
pub const UNCONFIGURED: &str = "FUYUN_CLIENT_ID is not set";
/// The default tenant's answer while it is not (the words of the local gateway's answer).
pub const UNCONFIGURED_ANSWER: &str = "token exchange is not configured on this gateway \
                                       (set FUYUN_CLIENT_ID and the other FUYUN_* settings)";
/// The store budget of one request (`STORE_BUDGET_MS`): the audit record written after the
/// exchange, one PutItem. 2 s on top of the IdP's 5 s timeout stays inside the function's 10 s.
pub const DEFAULT_STORE_BUDGET_MS: u64 = 2000;

/// The two secrets: from one Secrets Manager secret in Lambda, from the environment locally.
pub struct FuyunSecrets {
    pub client_secret: String,
    pub private_key: Option<String>,
}

impl FuyunSecrets {
    /// `FUYUN_CLIENT_SECRET` and `FUYUN_PRIVATE_KEY` (local runs).
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(FuyunSecrets {
            client_secret: config::required("FUYUN_CLIENT_SECRET")?,
            private_key: config::optional("FUYUN_PRIVATE_KEY"),
        })
    }

    /// The JSON secret `{"client_secret": "...", "private_key": "..."}`.
    pub fn from_json(text: &str) -> Result<Self, ConfigError> {
        #[derive(serde::Deserialize)]
        struct Secret {
            client_secret: String,
            #[serde(default)]
            private_key: Option<String>,
        }
        let s: Secret = serde_json::from_str(text).map_err(|_| ConfigError::Invalid {
            name: SECRET_ARN_VAR,
            reason: "the secret must be JSON with client_secret (and private_key for JWT mode)"
                .into(),
        })?;
        Ok(FuyunSecrets {
            client_secret: s.client_secret,
            private_key: s.private_key.filter(|k| !k.trim().is_empty()),
        })
    }

    /// From the secret named by `FUYUN_SECRET_ARN` when set, else the environment; None
    /// when the default tenant's IdP is not configured here (`configured`).
    pub async fn load(res: &Resources) -> Result<Option<Self>, ConfigError> {
        if !configured() {
            return Ok(None);
        }
        Self::read(res).await.map(Some)
    }

    async fn read(res: &Resources) -> Result<Self, ConfigError> {
        match res.secret(SECRET_ARN_VAR).await? {
            Some(json) => Self::from_json(&json),
            // In Lambda the secret is expected; the environment is for local runs (and the
            // benchmark harness's runtime emulator).
            None if config::in_lambda() && config::optional("FUYUN_CLIENT_SECRET").is_none() => {
                Err(ConfigError::Missing(SECRET_ARN_VAR))
            }
            None => Self::from_env(),
        }
    }
}

/// The IdP's timeouts: the stack's, for every tenant (`FUYUN_CONNECT_TIMEOUT_MS`,
/// `FUYUN_TIMEOUT_MS`).
#[derive(Debug, Clone, Copy)]
pub struct IdpTimeouts {
    pub connect: Duration,
    pub total: Duration,
}

impl IdpTimeouts {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(IdpTimeouts {
            connect: Duration::from_millis(config::number(
                "FUYUN_CONNECT_TIMEOUT_MS",
                2000,
                50..=30_000,
            )?),
            // At most 7.5 s: with the audit write's budget (2 s) inside the function's 10 s.
            total: Duration::from_millis(config::number("FUYUN_TIMEOUT_MS", 5000, 50..=7_500)?),
        })
    }
}

/// One enterprise's AICCS app, built: the stack's own (the environment) or a platform
/// tenant's (`tenants set`), read and checked by the same code.
pub struct Fuyun {
    /// JWT mode, when `FUYUN_ISSUER` and a private key are configured.
    pub signer: Option<Signer>,
    /// OAuth mode's `subject_issuer`, when `FUYUN_APP_NAME` is configured.
    pub app_name: Option<String>,
    pub idp: IdpClient,
}

impl Fuyun {
    /// From `vars` (the `FUYUN_*` names) and the two secrets.
    pub fn read(
        vars: Vars<'_>,
        secrets: FuyunSecrets,
        timeouts: IdpTimeouts,
    ) -> Result<Self, ConfigError> {
        let url = cc_shared::upstream::url_setting(
            "FUYUN_TOKEN_URL",
            &vars
                .optional("FUYUN_TOKEN_URL")
                .unwrap_or_else(|| DEFAULT_TOKEN_URL.into()),
        )?;
        let signer = match (vars.optional("FUYUN_ISSUER"), secrets.private_key) {
            (Some(issuer), Some(key)) => {
                let invalid = |e: jwt::KeyError| ConfigError::Invalid {
                    name: "FUYUN_PRIVATE_KEY",
                    reason: e.to_string(),
                };
                let key = jwt::parse_private_key(&key).map_err(invalid)?;
                let exp_millis = vars.flag("FUYUN_JWT_EXP_MILLIS", false)?;
                let ttl = vars.number("FUYUN_JWT_TTL_SECONDS", 300, 10..=3600)?;
                Some(Signer::new(key, issuer, ttl, exp_millis).map_err(invalid)?)
            }
            (Some(_), None) => return Err(ConfigError::Missing("FUYUN_PRIVATE_KEY")),
            (None, Some(_)) => return Err(ConfigError::Missing("FUYUN_ISSUER")),
            (None, None) => None,
        };
        let app_name = vars.optional("FUYUN_APP_NAME");
        if signer.is_none() && app_name.is_none() {
            return Err(ConfigError::Invalid {
                name: "FUYUN_ISSUER",
                reason: "no mode is configured: set FUYUN_ISSUER and FUYUN_PRIVATE_KEY (JWT \
                         mode) and/or FUYUN_APP_NAME (OAuth mode)"
                    .into(),
            });
        }
        let idp = IdpClient::new(IdpSettings {
            url,
            client_id: vars.required("FUYUN_CLIENT_ID")?,
            client_secret: secrets.client_secret,
            scope: vars.required("FUYUN_SCOPE")?,
            redirect_url: vars.required("FUYUN_REDIRECT_URL")?,
            connect_timeout: timeouts.connect,
            timeout: timeouts.total,
        })?;
        Ok(Fuyun {
            signer,
            app_name,
            idp,
        })
    }

    /// A platform tenant's own, from its settings (`FUYUN_CLIENT_SECRET` and
    /// `FUYUN_PRIVATE_KEY` among them).
    pub fn for_tenant(
        settings: &TenantSettings,
        timeouts: IdpTimeouts,
    ) -> Result<Self, ConfigError> {
        let vars = Vars::Map(settings.values());
        let secrets = FuyunSecrets {
            client_secret: vars.required("FUYUN_CLIENT_SECRET")?,
            private_key: vars.optional("FUYUN_PRIVATE_KEY"),
        };
        Self::read(vars, secrets, timeouts)
    }
}

/// Checks a tenant's settings as the function will read them (`tenants set`): Ok when they
/// configure no Fuyun IdP at all.
pub fn check_tenant(settings: &TenantSettings) -> Result<(), ConfigError> {
    if settings.has(Vendor::Fuyun) {
        Fuyun::for_tenant(settings, IdpTimeouts::from_env()?)?;
    }
    Ok(())
}

/// Settings read once at start-up.
pub struct Config {
    pub credentials: Credentials,
    /// The default tenant's IdP; None when it is not configured here.
    pub fuyun: Option<std::sync::Arc<Fuyun>>,
    pub timeouts: IdpTimeouts,
    pub cache_margin_seconds: i64,
    pub audit_ttl_days: i64,
    pub store_budget: StoreBudget,
    /// How long a tenant's registry entry (and the clients built from its settings) is kept.
    pub tenant_cache: Duration,
}

impl Config {
    pub fn from_env(
        fallback: Option<Credentials>,
        secrets: Option<FuyunSecrets>,
    ) -> Result<Self, ConfigError> {
        let credentials = Credentials::from_env(CREDENTIALS_VAR, fallback)?;
        let timeouts = IdpTimeouts::from_env()?;
        let fuyun = match secrets {
            Some(secrets) => Some(std::sync::Arc::new(Fuyun::read(
                Vars::Env,
                secrets,
                timeouts,
            )?)),
            None => None,
        };
        Ok(Config {
            credentials,
            fuyun,
            timeouts,
            cache_margin_seconds: config::number("TOKEN_CACHE_MARGIN_SECONDS", 60, 0..=3600)?,
            audit_ttl_days: config::number("TOKEN_AUDIT_TTL_DAYS", 90, 1..=3650)?,
            store_budget: StoreBudget::from_env(DEFAULT_STORE_BUDGET_MS)?,
            tenant_cache: cc_shared::web::tenancy::cache_time_from_env()?,
        })
    }
}
