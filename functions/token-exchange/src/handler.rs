//! One request in the frame of `web::envelope`: parsed, answered from the cache or by one
//! upstream exchange (audited), logged in one line (never a token).

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use cc_shared::domain::audit::{token_fingerprint, AuditRecord};
use cc_shared::metrics::{self, name};
use cc_shared::store::AuditStore;
use cc_shared::web::auth::Credentials;
use cc_shared::web::envelope::{self, latency_ms, Callback, Caller, RequestLine, TenancyRef};
use cc_shared::web::error::ApiError;
use cc_shared::web::http::describe_json_error;
use cc_shared::web::tenancy::StackKeys;
use lambda_http::{Body, Request, Response};
use sha2::{Digest, Sha256};

use crate::cache::Source;
use crate::config::Fuyun;
use crate::config::{MAX_ACCOUNT_NAME_CHARS, MAX_BODY_BYTES, MAX_SUBJECT_TOKEN_CHARS};
use crate::tenants::cache_prefix;
use crate::wire::{self, TokenRequest, TokenResponse};
use crate::{TokenExchange, FUNCTION};

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

    /// Its key in the token cache, after `prefix` (a tenant's and its settings revision's,
    /// so that no token of one tenant is ever served to another).
    fn cache_key(&self, prefix: &str) -> String {
        match self {
            Subject::Jwt { account } => format!("{prefix}jwt:{account}"),
            Subject::OAuth { token } => {
                format!(
                    "{prefix}oauth:{}",
                    hex::encode(Sha256::digest(token.as_bytes()))
                )
            }
        }
    }
}

/// What the request's log line names (never a token).
#[derive(Default)]
pub struct Facts {
    mode: Option<&'static str>,
    subject: Option<String>,
    source: Option<Source>,
}

/// Answers one request (the frame of `web::envelope`, with the work below).
pub async fn handle(svc: &TokenExchange, req: Request) -> Response<Body> {
    envelope::handle(svc, req).await
}

impl Callback for TokenExchange {
    type Answer = TokenResponse;
    type Facts = Facts;
    const FUNCTION: &'static str = FUNCTION;
    const MAX_BODY: usize = MAX_BODY_BYTES;

    fn credentials(&self) -> &Credentials {
        &self.config.credentials
    }

    fn tenancy(&self) -> Option<TenancyRef<'_>> {
        self.tenants.as_ref().map(|t| TenancyRef {
            tenancy: &t.tenancy,
            stack: StackKeys::Index(&t.index),
        })
    }

    fn work(
        &self,
        caller: &Caller,
        body: &[u8],
        facts: &mut Facts,
    ) -> impl Future<Output = Result<TokenResponse, ApiError>> + Send {
        process(self, caller, body, facts)
    }

    /// Every error becomes the OAuth-style format here.
    fn respond(
        &self,
        result: Result<TokenResponse, ApiError>,
        facts: &mut Facts,
    ) -> Response<Body> {
        let response = match &result {
            Ok(token) => wire::ok_response(token),
            Err(err) => {
                if let ApiError::Store(e) = err {
                    tracing::error!(function = FUNCTION, error = %e, "audit not written");
                }
                wire::error_response(err)
            }
        };
        match facts.source {
            Some(Source::Cache | Source::Shared) => metrics::count(name::TOKEN_CACHE_HITS, 1),
            Some(Source::Upstream) => metrics::count(name::TOKEN_CACHE_MISSES, 1),
            None => {}
        }
        response
    }

    fn log(line: &RequestLine<'_>, facts: &Facts) {
        tracing::info!(
            function = line.function,
            caller = line.caller,
            status = line.status,
            latency_ms = line.latency_ms,
            mode = facts.mode,
            subject = facts.subject,
            source = facts.source.map(Source::as_str),
            "request"
        );
    }
}

fn parse(fuyun: &Fuyun, body: &[u8]) -> Result<Subject, ApiError> {
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
            if fuyun.signer.is_none() {
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
            if fuyun.app_name.is_none() {
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

/// The caller's IdP, where its token cache entries live, and where its audit records go.
struct Route {
    fuyun: Arc<Fuyun>,
    cache_prefix: String,
    audit: Arc<dyn AuditStore>,
}

/// The default tenant's IdP, or the caller's tenant's own (platform mode).
fn route(svc: &TokenExchange, caller: &Caller) -> Result<Route, ApiError> {
    match (&caller.tenant, &svc.tenants) {
        (Some(tenant), Some(tenants)) => Ok(Route {
            fuyun: tenants.fuyun(tenant, svc.config.timeouts, &svc.cache)?,
            cache_prefix: cache_prefix(&tenant.id, tenant.settings.rev),
            audit: tenants.audit(&tenant.id),
        }),
        _ => {
            Ok(Route {
                fuyun: svc.config.fuyun.clone().ok_or_else(|| {
                    ApiError::Unconfigured(crate::config::UNCONFIGURED_ANSWER.into())
                })?,
                cache_prefix: String::new(),
                audit: svc.store.clone(),
            })
        }
    }
}

async fn process(
    svc: &TokenExchange,
    caller: &Caller,
    body: &[u8],
    facts: &mut Facts,
) -> Result<TokenResponse, ApiError> {
    let user = caller.user.as_str();
    let route = route(svc, caller)?;
    let subject = parse(&route.fuyun, body)?;
    facts.mode = Some(subject.mode());
    facts.subject = Some(subject.audit_name());
    let (result, source) = svc
        .cache
        .get(
            &subject.cache_key(&route.cache_prefix),
            || svc.clock.now(),
            || exchange(svc, &route, &subject, user),
        )
        .await;
    facts.source = Some(source);
    result
}

/// One upstream exchange and its audit record. Fails closed: a token whose issuance could not
/// be recorded is not handed out (nor cached).
async fn exchange(
    svc: &TokenExchange,
    route: &Route,
    subject: &Subject,
    caller: &str,
) -> Result<TokenResponse, ApiError> {
    let fuyun = &route.fuyun;
    let now = svc.clock.now();
    let asked = Instant::now();
    let (result, jti) = match subject {
        Subject::Jwt { account } => {
            // Checked in `parse`: JWT mode is only accepted with a signer.
            let Some(signer) = &fuyun.signer else {
                return Err(ApiError::bad_request("jwt mode is not configured here"));
            };
            match signer.sign(account, now) {
                Ok((jwt, jti)) => (fuyun.idp.exchange(&jwt, signer.issuer()).await, Some(jti)),
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
            let app = fuyun.app_name.as_deref().unwrap_or_default();
            (fuyun.idp.exchange(token, app).await, None)
        }
    };
    metrics::count(name::UPSTREAM_EXCHANGES, 1);
    metrics::record_ms(name::UPSTREAM_LATENCY, latency_ms(asked));
    let (outcome, failure) = match &result {
        Ok(_) => ("ok", None),
        Err(ApiError::UpstreamRefused { .. }) => ("refused", Some(name::UPSTREAM_REFUSED)),
        Err(ApiError::UpstreamFailed { timeout: true, .. }) => {
            ("timeout", Some(name::UPSTREAM_TIMEOUTS))
        }
        Err(_) => ("upstream_error", Some(name::UPSTREAM_ERRORS)),
    };
    if let Some(failure) = failure {
        metrics::count(failure, 1);
    }
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
    budget.run(route.audit.put_audit(&record)).await?;
    if let Err(e) = &result {
        tracing::warn!(function = FUNCTION, error = %e, outcome, "exchange failed");
    }
    result
}
