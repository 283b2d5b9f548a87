//! The agent directory's settings and secrets (the CEC's AK/SK), read and checked once at
//! init, and its limits.

use std::time::Duration;

use cc_shared::config::{self, ConfigError, Vars};
use cc_shared::domain::tenant_settings::{TenantSettings, Vendor};
use cc_shared::resources::Resources;

use crate::cec_client::{self, CecClient, CecSettings};
use crate::sync::DeactivationGuard;

pub const CREDENTIALS_VAR: &str = "AGENT_DIRECTORY_CREDENTIALS";
/// Which of its two functions this binary is (template.yaml sets it on each).
pub const ROLE_VAR: &str = "AGENT_SYNC_ROLE";

/// The two functions of one binary, each with its own least-privilege policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// An EventBridge schedule (or `aws lambda invoke`) runs one sync.
    Schedule,
    /// API Gateway's `POST /agents/softphone`.
    Softphone,
}

/// `AGENT_SYNC_ROLE`: `schedule` or `softphone`; anything else (or nothing) fails init naming it.
pub fn role() -> Result<Role, ConfigError> {
    match config::optional(ROLE_VAR).as_deref() {
        Some("schedule") => Ok(Role::Schedule),
        Some("softphone") => Ok(Role::Softphone),
        Some(other) => Err(ConfigError::Invalid {
            name: ROLE_VAR,
            reason: format!("{other:?}: must be schedule or softphone"),
        }),
        None => Err(ConfigError::Missing(ROLE_VAR)),
    }
}
pub const SECRET_ARN_VAR: &str = "CEC_SECRET_ARN";

/// Whether the CEC is configured in this process (`CEC_BASE_URL`): the local gateway serves
/// the agent directory only then, and answers 503 otherwise.
pub fn configured() -> bool {
    cc_shared::config::optional("CEC_BASE_URL").is_some()
}

/// What to set when it is not.
pub const UNCONFIGURED: &str = "CEC_BASE_URL is not set";
/// The default tenant's answer while it is not (platform tenants bring their own CEC).
pub const UNCONFIGURED_ANSWER: &str = "the agent directory is not configured on this gateway \
                                       (set CEC_BASE_URL, CEC_APP_KEY and CEC_APP_SECRET)";

/// The default tenant's CEC client, None when `CEC_BASE_URL` is not set here.
pub async fn default_cec(res: &Resources) -> Result<Option<CecClient>, ConfigError> {
    if !configured() {
        return Ok(None);
    }
    cec_from_env(CecSecrets::load(res).await?).map(Some)
}

/// The bounds of one scheduled run over the default tenant and every tenant with a CEC.
#[derive(Debug, Clone, Copy)]
pub struct RunLimits {
    /// Tenants synced at once (`AGENT_SYNC_CONCURRENCY`, 1 to 32, default 8).
    pub concurrency: usize,
    /// The whole run (`AGENT_SYNC_RUN_BUDGET_MS`, default 50 s of the function's 60 s): no
    /// tenant's sync starts unless it can end inside it.
    pub run_budget: Duration,
    /// One tenant's sync (`AGENT_SYNC_TENANT_BUDGET_MS`, default 20 s).
    pub tenant_budget: Duration,
    /// Most tenants one run starts (`AGENT_SYNC_TENANTS_PER_RUN`, default 1000).
    pub per_run: usize,
    /// A tenant whose last successful sync is older is stale (`AGENT_SYNC_STALE_HOURS`,
    /// default 3, the stack's `AgentSyncStaleHours`).
    pub stale_after_seconds: i64,
}

impl RunLimits {
    pub fn from_env() -> Result<Self, ConfigError> {
        let run_budget = config::number("AGENT_SYNC_RUN_BUDGET_MS", 50_000u64, 1_000..=55_000)?;
        let tenant_budget =
            config::number("AGENT_SYNC_TENANT_BUDGET_MS", 20_000u64, 500..=run_budget)?;
        Ok(RunLimits {
            concurrency: config::number("AGENT_SYNC_CONCURRENCY", 8usize, 1..=32)?,
            run_budget: Duration::from_millis(run_budget),
            tenant_budget: Duration::from_millis(tenant_budget),
            per_run: config::number("AGENT_SYNC_TENANTS_PER_RUN", 1000usize, 1..=100_000)?,
            stale_after_seconds: config::number("AGENT_SYNC_STALE_HOURS", 3i64, 1..=168)? * 3600,
        })
    }
}
/// Largest accepted softphone request body.
pub const MAX_BODY_BYTES: usize = 4 * 1024;
/// The store budget of one softphone request (`STORE_BUDGET_MS`): two reads (the link, the
/// agent) before the CEC is asked.
pub const DEFAULT_STORE_BUDGET_MS: u64 = 2000;
/// How long one softphone request may wait for the CEC in all (`CEC_BUDGET_MS`): a token, the
/// directory and the one renewal a 401 allows are each bounded by `CEC_TIMEOUT_MS`, and
/// together by this, so that with the store budget the caller is answered (504) before the
/// function's own 10 s run out.
pub const CEC_BUDGET_VAR: &str = "CEC_BUDGET_MS";
pub const DEFAULT_CEC_BUDGET_MS: u64 = 7000;

/// `CEC_BUDGET_MS` as configured (50 to 9000 ms), or the default.
pub fn cec_budget() -> Result<Duration, ConfigError> {
    let ms = config::number(CEC_BUDGET_VAR, DEFAULT_CEC_BUDGET_MS, 50..=9_000)?;
    Ok(Duration::from_millis(ms))
}

/// `AGENT_SYNC_MAX_DEACTIVATE_PERCENT` (1 to 100), or the default: how many of the active agents
/// one sync may deactivate.
pub fn deactivation_guard() -> Result<DeactivationGuard, ConfigError> {
    deactivation_guard_in(Vars::Env)
}

/// The same, from `vars` (the stack's environment or a tenant's settings).
pub fn deactivation_guard_in(vars: Vars<'_>) -> Result<DeactivationGuard, ConfigError> {
    let percent = vars.number(
        "AGENT_SYNC_MAX_DEACTIVATE_PERCENT",
        DeactivationGuard::DEFAULT_PERCENT,
        1..=100,
    )?;
    Ok(DeactivationGuard::at_most(percent))
}

/// `CEC_APP_KEY` and `CEC_APP_SECRET`: one Secrets Manager secret in Lambda, the environment
/// locally.
pub struct CecSecrets {
    pub app_key: String,
    pub app_secret: String,
}

impl CecSecrets {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(CecSecrets {
            app_key: config::required("CEC_APP_KEY")?,
            app_secret: config::required("CEC_APP_SECRET")?,
        })
    }

    /// The JSON secret `{"app_key": "...", "app_secret": "..."}`.
    pub fn from_json(text: &str) -> Result<Self, ConfigError> {
        #[derive(serde::Deserialize)]
        struct Secret {
            app_key: String,
            app_secret: String,
        }
        let s: Secret = serde_json::from_str(text).map_err(|_| ConfigError::Invalid {
            name: SECRET_ARN_VAR,
            reason: "the secret must be JSON with app_key and app_secret".into(),
        })?;
        Ok(CecSecrets {
            app_key: s.app_key,
            app_secret: s.app_secret,
        })
    }

    /// From the secret named by `CEC_SECRET_ARN` when set, else the environment.
    pub async fn load(res: &Resources) -> Result<Self, ConfigError> {
        match res.secret(SECRET_ARN_VAR).await? {
            Some(json) => Self::from_json(&json),
            // In Lambda the secret is expected; the environment is for local runs (and the
            // benchmark harness's runtime emulator).
            None if config::in_lambda() && config::optional("CEC_APP_SECRET").is_none() => {
                Err(ConfigError::Missing(SECRET_ARN_VAR))
            }
            None => Self::from_env(),
        }
    }
}

/// The CEC's timeouts: the stack's, for every tenant (`CEC_CONNECT_TIMEOUT_MS`,
/// `CEC_TIMEOUT_MS`).
#[derive(Debug, Clone, Copy)]
pub struct CecTimeouts {
    pub connect: Duration,
    pub total: Duration,
}

impl CecTimeouts {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(CecTimeouts {
            connect: Duration::from_millis(config::number(
                "CEC_CONNECT_TIMEOUT_MS",
                2000,
                50..=30_000,
            )?),
            total: Duration::from_millis(config::number("CEC_TIMEOUT_MS", 10_000, 50..=60_000)?),
        })
    }
}

/// The CEC client from `CEC_BASE_URL`, `CEC_AGENT_INFO_PATH`, `CEC_TOKEN_EXPIRE_SECONDS`,
/// `CEC_CONNECT_TIMEOUT_MS` and `CEC_TIMEOUT_MS`.
pub fn cec_from_env(secrets: CecSecrets) -> Result<CecClient, ConfigError> {
    cec_in(Vars::Env, secrets, CecTimeouts::from_env()?)
}

/// The CEC client from `vars` (the stack's environment or a tenant's settings).
pub fn cec_in(
    vars: Vars<'_>,
    secrets: CecSecrets,
    timeouts: CecTimeouts,
) -> Result<CecClient, ConfigError> {
    CecClient::new(CecSettings {
        base_url: vars.required("CEC_BASE_URL")?,
        agent_info_path: vars
            .optional("CEC_AGENT_INFO_PATH")
            .unwrap_or_else(|| cec_client::DEFAULT_AGENT_INFO_PATH.into()),
        app_key: secrets.app_key,
        app_secret: secrets.app_secret,
        token_expire_seconds: vars.number("CEC_TOKEN_EXPIRE_SECONDS", 3600, 120..=3600)?,
        connect_timeout: timeouts.connect,
        timeout: timeouts.total,
        tenant_space_id: vars.optional("CEC_TENANT_SPACE_ID"),
    })
}

/// A platform tenant's own CEC client and deactivation guard, from its settings.
pub fn tenant_cec(
    settings: &TenantSettings,
    timeouts: CecTimeouts,
) -> Result<(CecClient, DeactivationGuard), ConfigError> {
    let vars = Vars::Map(settings.values());
    let secrets = CecSecrets {
        app_key: vars.required("CEC_APP_KEY")?,
        app_secret: vars.required("CEC_APP_SECRET")?,
    };
    Ok((
        cec_in(vars, secrets, timeouts)?,
        deactivation_guard_in(vars)?,
    ))
}

/// Checks a tenant's settings as the function will read them (`tenants set`): Ok when they
/// configure no CEC at all.
pub fn check_tenant(settings: &TenantSettings) -> Result<(), ConfigError> {
    if settings.has(Vendor::Cec) {
        tenant_cec(settings, CecTimeouts::from_env()?)?;
    }
    Ok(())
}
