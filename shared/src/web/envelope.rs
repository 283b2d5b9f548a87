//! The frame of every callback's request, written once: the timer; the caller's credentials
//! (401), then the method (405), then the body (400: over the function's limit, or not received
//! whole), in that order, so every function answers an unauthenticated request 401 whatever
//! else is wrong with it and says nothing more; the function's work; its answer; the request's
//! outcome class and latency metric; the one log line. A function supplies what differs
//! ([`Callback`]): its limits, its work, its wire format and its own log fields.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use lambda_http::{Body, Request, Response};

use super::auth::{decode_basic, Credentials};
use super::error::ApiError;
use super::http::{body_bytes, require_post};
use super::tenancy::{StackKeys, Tenancy, TenantCaller};
use crate::domain::tenant::{TenantId, TenantUser};

/// Where a request came from: API Gateway's request ID and the client's address (the local
/// gateway's own ID and the peer's address), as the event or connection says; "" when not
/// known. Set as a request extension by `web::lambda` and the local gateway.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestMeta {
    pub request_id: String,
    pub source_ip: String,
}

/// The caller the credentials authenticated, handed to the function's work, with its tenant
/// resolved here, once per request (platform mode; None: the default tenant).
#[derive(Debug, Clone)]
pub struct Caller {
    /// The BasicAuth user name (`NAME@ID` for a tenant's caller).
    pub user: String,
    pub tenant: Option<Arc<TenantCaller>>,
    /// Where the request came from.
    pub request: RequestMeta,
}

impl Caller {
    /// The caller's tenant, None for the default tenant.
    pub fn tenant_id(&self) -> Option<&TenantId> {
        self.tenant.as_ref().map(|t| &t.id)
    }
}

/// A function's platform mode: the registry's cache and the stack's key that unwraps a
/// tenant's keys.
pub struct TenancyRef<'a> {
    pub tenancy: &'a Tenancy,
    pub stack: StackKeys<'a>,
}

/// What the frame knows of every request, the first fields of its log line.
#[derive(Debug, Clone, Copy)]
pub struct RequestLine<'a> {
    pub function: &'static str,
    /// None when the credentials did not pass.
    pub caller: Option<&'a str>,
    pub status: u16,
    pub latency_ms: f64,
}

/// One callback function, as the frame drives it.
pub trait Callback: Send + Sync {
    /// What the work produces for the answer.
    type Answer: Send;
    /// What the request's log line and counts need to know, filled in as it goes.
    type Facts: Default + Send;
    /// The function's name (`FUNCTION`), as in its log lines.
    const FUNCTION: &'static str;
    /// The largest body accepted.
    const MAX_BODY: usize;

    fn credentials(&self) -> &Credentials;

    /// Platform mode, for a function that serves tenants' callers (None: a `NAME@ID` caller
    /// the default credentials do not know is refused like any other).
    fn tenancy(&self) -> Option<TenancyRef<'_>> {
        None
    }

    /// The admitted request's work: parse, logic.
    fn work(
        &self,
        caller: &Caller,
        body: &[u8],
        facts: &mut Self::Facts,
    ) -> impl Future<Output = Result<Self::Answer, ApiError>> + Send;

    /// A request whose caller is known but whose method or body was refused (nothing by
    /// default; identity verification keeps a record of it).
    fn refused(
        &self,
        _caller: &Caller,
        _facts: &mut Self::Facts,
    ) -> impl Future<Output = ()> + Send {
        async {}
    }

    /// The answer in the caller's format, with the function's own counts.
    fn respond(
        &self,
        result: Result<Self::Answer, ApiError>,
        facts: &mut Self::Facts,
    ) -> Response<Body>;

    /// The request's one log line: `line`'s fields first, then the function's own (counts and
    /// outcomes only: never a number, PIN, key or token).
    fn log(line: &RequestLine<'_>, facts: &Self::Facts);
}

/// Answers one request to `svc`.
pub async fn handle<C: Callback>(svc: &C, req: Request) -> Response<Body> {
    let started = Instant::now();
    let mut facts = C::Facts::default();
    // A registry that cannot be read answers as the store does (503), not 401.
    let authorization = req.headers().get(http::header::AUTHORIZATION);
    let meta = req
        .extensions()
        .get::<RequestMeta>()
        .cloned()
        .unwrap_or_default();
    let (caller, refused) = match authenticate(svc, authorization, meta).await {
        Ok(caller) => (caller, ApiError::Unauthorized),
        Err(e) => (None, e),
    };
    let result = match &caller {
        None => Err(refused),
        Some(caller) => match require_post(&req).and_then(|()| body_bytes(&req, C::MAX_BODY)) {
            Ok(body) => svc.work(caller, body, &mut facts).await,
            Err(e) => {
                svc.refused(caller, &mut facts).await;
                Err(e)
            }
        },
    };
    let class = ApiError::class_of(&result);
    let response = svc.respond(result, &mut facts);
    let latency_ms = latency_ms(started);
    crate::metrics::request(class, latency_ms);
    let line = RequestLine {
        function: C::FUNCTION,
        caller: caller.as_ref().map(|c| c.user.as_str()),
        status: response.status().as_u16(),
        latency_ms,
    };
    C::log(&line, &facts);
    response
}

/// The caller of `authorization`: the default tenant's credentials first (exactly as before
/// platform mode), then a tenant's caller `NAME@ID` where the function serves tenants.
async fn authenticate<C: Callback>(
    svc: &C,
    authorization: Option<&http::HeaderValue>,
    request: RequestMeta,
) -> Result<Option<Caller>, ApiError> {
    let Some((user, password)) = authorization.and_then(decode_basic) else {
        return Ok(None);
    };
    if svc.credentials().verify_pair(&user, &password) {
        return Ok(Some(Caller {
            user,
            tenant: None,
            request,
        }));
    }
    let (Some(tenancy), Some(tenant_user)) = (svc.tenancy(), TenantUser::parse(&user)) else {
        return Ok(None);
    };
    let tenant = tenancy
        .tenancy
        .authenticate(&tenant_user, &password, &tenancy.stack)
        .await?;
    Ok(tenant.map(|t| Caller {
        user,
        tenant: Some(t),
        request,
    }))
}

/// A callback as the local gateway holds it: one of several, behind one type.
pub trait Serve: Send + Sync {
    fn serve<'a>(
        &'a self,
        req: Request,
    ) -> Pin<Box<dyn Future<Output = Response<Body>> + Send + 'a>>;
}

impl<C: Callback> Serve for C {
    fn serve<'a>(
        &'a self,
        req: Request,
    ) -> Pin<Box<dyn Future<Output = Response<Body>> + Send + 'a>> {
        Box::pin(handle(self, req))
    }
}

/// A request's `latency_ms` log field: milliseconds since `started`, to the microsecond.
pub fn latency_ms(started: Instant) -> f64 {
    (started.elapsed().as_secs_f64() * 1e6).round() / 1e3
}
