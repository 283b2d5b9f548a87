//! Alibaba Cloud AICCS token exchange for the enterprise's CRM.
//!
//! `POST /token-exchange` with BasicAuth and `{"mode": "jwt", "accountName": ...}` or
//! `{"mode": "oauth", "subjectToken": ...}`: we sign a JWT for the agent (JWT mode) or pass the
//! CRM's OAuth token on (OAuth mode), exchange it at the Fuyun IdP and answer with the AICCS
//! access token. The private key and client secret never leave this function.

pub mod cache;
pub mod idp;
pub mod jwt;
pub mod wire;

use std::sync::Arc;
use std::time::{Duration, Instant};

use cc_shared::config::{self, ConfigError};
use cc_shared::domain::audit::{token_fingerprint, AuditRecord};
use cc_shared::domain::clock::Clock;
use cc_shared::store::AuditStore;
use cc_shared::web::auth::Credentials;
use cc_shared::web::error::ApiError;
use cc_shared::web::http::{body_bytes, describe_json_error, require_post};
use cc_shared::web::StoreBudget;
use lambda_http::{Body, Request, Response};
use sha2::{Digest, Sha256};
use wire::{TokenRequest, TokenResponse};

use cache::{Source, TokenCache};
use idp::{IdpClient, IdpSettings};
use jwt::Signer;

/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 16 * 1024;
pub const MAX_ACCOUNT_NAME_CHARS: usize = 128;
pub const MAX_SUBJECT_TOKEN_CHARS: usize = 8192;
/// Most tokens kept in memory.
pub const CACHE_CAPACITY: usize = 10_000;
pub const DEFAULT_TOKEN_URL: &str = "https://signin.rhinokeen.com/oauth/token_exchange";

pub const CREDENTIALS_VAR: &str = "TOKEN_EXCHANGE_CREDENTIALS";
pub const SECRET_ARN_VAR: &str = "FUYUN_SECRET_ARN";
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

    /// From the secret named by `FUYUN_SECRET_ARN` when set, else the environment.
    #[cfg(feature = "aws")]
    pub async fn load(sdk: Option<&aws_config::SdkConfig>) -> Result<Self, ConfigError> {
        match cc_shared::aws::configured_secret(sdk, SECRET_ARN_VAR).await? {
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

/// Settings read once at start-up.
pub struct Config {
    pub credentials: Credentials,
    /// JWT mode, when `FUYUN_ISSUER` and a private key are configured.
    pub signer: Option<Signer>,
    /// OAuth mode's `subject_issuer`, when `FUYUN_APP_NAME` is configured.
    pub app_name: Option<String>,
    pub idp: IdpClient,
    pub cache_margin_seconds: i64,
    pub audit_ttl_days: i64,
    pub store_budget: StoreBudget,
}

impl Config {
    pub fn from_env(
        fallback: Option<Credentials>,
        secrets: FuyunSecrets,
    ) -> Result<Self, ConfigError> {
        let credentials = Credentials::from_env(CREDENTIALS_VAR, fallback)?;
        let url = cc_shared::upstream::url_setting(
            "FUYUN_TOKEN_URL",
            &config::optional("FUYUN_TOKEN_URL").unwrap_or_else(|| DEFAULT_TOKEN_URL.into()),
        )?;
        let signer = match (config::optional("FUYUN_ISSUER"), secrets.private_key) {
            (Some(issuer), Some(key)) => {
                let invalid = |e: jwt::KeyError| ConfigError::Invalid {
                    name: "FUYUN_PRIVATE_KEY",
                    reason: e.to_string(),
                };
                let key = jwt::parse_private_key(&key).map_err(invalid)?;
                let exp_millis = config::flag("FUYUN_JWT_EXP_MILLIS", false)?;
                let ttl = config::number("FUYUN_JWT_TTL_SECONDS", 300, 10..=3600)?;
                Some(Signer::new(key, issuer, ttl, exp_millis).map_err(invalid)?)
            }
            (Some(_), None) => return Err(ConfigError::Missing("FUYUN_PRIVATE_KEY")),
            (None, Some(_)) => return Err(ConfigError::Missing("FUYUN_ISSUER")),
            (None, None) => None,
        };
        let app_name = config::optional("FUYUN_APP_NAME");
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
            client_id: config::required("FUYUN_CLIENT_ID")?,
            client_secret: secrets.client_secret,
            scope: config::required("FUYUN_SCOPE")?,
            redirect_url: config::required("FUYUN_REDIRECT_URL")?,
            connect_timeout: Duration::from_millis(config::number(
                "FUYUN_CONNECT_TIMEOUT_MS",
                2000,
                50..=30_000,
            )?),
            timeout: Duration::from_millis(config::number("FUYUN_TIMEOUT_MS", 5000, 50..=60_000)?),
        })?;
        Ok(Config {
            credentials,
            signer,
            app_name,
            idp,
            cache_margin_seconds: config::number("TOKEN_CACHE_MARGIN_SECONDS", 60, 0..=3600)?,
            audit_ttl_days: config::number("TOKEN_AUDIT_TTL_DAYS", 90, 1..=3650)?,
            store_budget: StoreBudget::from_env(DEFAULT_STORE_BUDGET_MS)?,
        })
    }
}

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

/// The validated request.
enum Subject {
    Jwt { account: String },
    OAuth { token: String },
}

impl Subject {
    fn mode(&self) -> &'static str {
        match self {
            Subject::Jwt { .. } => "jwt",
            Subject::OAuth { .. } => "oauth",
        }
    }

    /// How the subject appears in audit records and logs: never a token.
    fn audit_name(&self) -> String {
        match self {
            Subject::Jwt { account } => account.clone(),
            Subject::OAuth { token } => token_fingerprint(token),
        }
    }

    fn cache_key(&self) -> String {
        match self {
            Subject::Jwt { account } => format!("jwt:{account}"),
            Subject::OAuth { token } => {
                format!("oauth:{}", hex::encode(Sha256::digest(token.as_bytes())))
            }
        }
    }
}

#[derive(Default)]
struct Facts {
    caller: Option<String>,
    mode: Option<&'static str>,
    subject: Option<String>,
    source: Option<Source>,
}

/// Answers one request; every error becomes the OAuth-style format here.
pub async fn handle(svc: &TokenExchange, req: Request) -> Response<Body> {
    let started = Instant::now();
    let mut facts = Facts::default();
    let result = process(svc, &req, &mut facts).await;
    let response = match &result {
        Ok(token) => wire::ok_response(token),
        Err(err) => {
            if let ApiError::Store(e) = err {
                tracing::error!(function = "token-exchange", error = %e, "audit not written");
            }
            wire::error_response(err)
        }
    };
    tracing::info!(
        function = "token-exchange",
        caller = facts.caller,
        mode = facts.mode,
        subject = facts.subject,
        source = facts.source.map(Source::as_str),
        status = response.status().as_u16(),
        latency_ms = (started.elapsed().as_secs_f64() * 1e6).round() / 1e3,
        "request"
    );
    response
}

fn parse(svc: &TokenExchange, body: &[u8]) -> Result<Subject, ApiError> {
    let request: TokenRequest =
        serde_json::from_slice(body).map_err(|e| ApiError::bad_request(describe_json_error(&e)))?;
    let text = |v: Option<String>, field: &str, max: usize| -> Result<String, ApiError> {
        let v = v
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ApiError::bad_request(format!("{field} is required in this mode")))?;
        if v.chars().count() > max || v.chars().any(char::is_control) {
            return Err(ApiError::bad_request(format!(
                "{field} must be at most {max} characters, without control characters"
            )));
        }
        Ok(v)
    };
    match request.mode.as_str() {
        "jwt" => {
            if request.subject_token.is_some() {
                return Err(ApiError::bad_request(
                    "subjectToken is not used in jwt mode",
                ));
            }
            if svc.config.signer.is_none() {
                return Err(ApiError::bad_request("jwt mode is not configured here"));
            }
            Ok(Subject::Jwt {
                account: text(request.account_name, "accountName", MAX_ACCOUNT_NAME_CHARS)?,
            })
        }
        "oauth" => {
            if request.account_name.is_some() {
                return Err(ApiError::bad_request(
                    "accountName is not used in oauth mode",
                ));
            }
            if svc.config.app_name.is_none() {
                return Err(ApiError::bad_request("oauth mode is not configured here"));
            }
            Ok(Subject::OAuth {
                token: text(
                    request.subject_token,
                    "subjectToken",
                    MAX_SUBJECT_TOKEN_CHARS,
                )?,
            })
        }
        _ => Err(ApiError::bad_request("mode must be \"jwt\" or \"oauth\"")),
    }
}

async fn process(
    svc: &TokenExchange,
    req: &Request,
    facts: &mut Facts,
) -> Result<TokenResponse, ApiError> {
    let user = svc
        .config
        .credentials
        .verify(req.headers().get(http::header::AUTHORIZATION))
        .ok_or(ApiError::Unauthorized)?;
    facts.caller = Some(user.clone());
    require_post(req)?;
    let subject = parse(svc, body_bytes(req, MAX_BODY_BYTES)?)?;
    facts.mode = Some(subject.mode());
    facts.subject = Some(subject.audit_name());
    let (result, source) = svc
        .cache
        .get(
            &subject.cache_key(),
            || svc.clock.now(),
            || exchange(svc, &subject, &user),
        )
        .await;
    facts.source = Some(source);
    result
}

/// One upstream exchange and its audit record. Fails closed: a token whose issuance could not
/// be recorded is not handed out (nor cached).
async fn exchange(
    svc: &TokenExchange,
    subject: &Subject,
    caller: &str,
) -> Result<TokenResponse, ApiError> {
    let now = svc.clock.now();
    let (result, jti) = match subject {
        Subject::Jwt { account } => {
            // Checked in `parse`: JWT mode is only accepted with a signer.
            let Some(signer) = &svc.config.signer else {
                return Err(ApiError::bad_request("jwt mode is not configured here"));
            };
            match signer.sign(account, now) {
                Ok((jwt, jti)) => (
                    svc.config.idp.exchange(&jwt, signer.issuer()).await,
                    Some(jti),
                ),
                Err(e) => (
                    Err(ApiError::UpstreamFailed {
                        timeout: false,
                        reason: e.to_string(),
                    }),
                    None,
                ),
            }
        }
        Subject::OAuth { token } => {
            let app = svc.config.app_name.as_deref().unwrap_or_default();
            (svc.config.idp.exchange(token, app).await, None)
        }
    };
    let outcome = match &result {
        Ok(_) => "ok",
        Err(ApiError::UpstreamRefused { .. }) => "refused",
        Err(ApiError::UpstreamFailed { timeout: true, .. }) => "timeout",
        Err(_) => "upstream_error",
    };
    let record = AuditRecord {
        time: now,
        id: cc_shared::domain::uid::sortable_id(),
        caller: caller.to_string(),
        mode: subject.mode().to_string(),
        subject: subject.audit_name(),
        outcome: outcome.to_string(),
        jti,
        expires_at: now + svc.config.audit_ttl_days * 86_400,
    };
    let budget = svc.config.store_budget;
    budget.run(svc.store.put_audit(&record)).await?;
    if let Err(e) = &result {
        tracing::warn!(function = "token-exchange", error = %e, outcome, "exchange failed");
    }
    result
}
