//! The local gateway: one HTTP server standing in for API Gateway, routing each function's
//! path (`functions::FUNCTIONS`) to the same handler its Lambda binary runs.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cc_shared::config::ConfigError;
use cc_shared::resources::Resources;
use cc_shared::web::auth::Credentials;
use cc_shared::web::envelope::{RequestMeta, Serve};
use cc_shared::web::http::BodyDefect;
use http::{Response, StatusCode};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use lambda_http::Body;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::functions::{Function, FUNCTIONS};

/// API Gateway's own payload limit; each function enforces its smaller one.
pub const MAX_GATEWAY_BODY: usize = 10 * 1024 * 1024;

/// The handlers' dependencies, built once: each function of the list.
pub struct Gateway {
    served: Vec<(&'static Function, Box<dyn Serve>)>,
    /// Whether the development credentials `dev:dev` are in use.
    pub dev_credentials: bool,
}

impl Gateway {
    /// Each function of the list built by its own `init` from `res`, as its Lambda `main`
    /// builds it (one whose vendor is not configured here for the default tenant answers its
    /// callers 503 itself, and serves platform tenants with their own settings).
    pub async fn new(res: &Resources) -> Result<Gateway, ConfigError> {
        let mut served = Vec::with_capacity(FUNCTIONS.len());
        for f in FUNCTIONS {
            served.push((f, (f.build)(res).await?));
        }
        Ok(Gateway {
            served,
            dev_credentials: res.dev_credentials.is_some()
                && FUNCTIONS.iter().any(|f| !f.credentials_given()),
        })
    }

    /// The development credentials `dev:dev` for a gateway on `listen`: only on a loopback
    /// address; elsewhere every function's `*_CREDENTIALS` must be set (the error names the
    /// first that is not).
    pub fn dev_credentials(listen: &SocketAddr) -> Result<Option<Credentials>, ConfigError> {
        if listen.ip().is_loopback() {
            return Ok(Some(Credentials::dev()));
        }
        match FUNCTIONS.iter().find(|f| !f.credentials_given()) {
            Some(f) => Err(ConfigError::Invalid {
                name: f.credentials_var,
                reason: format!(
                    "not set, and the development credentials dev:dev are only allowed on a \
                     loopback address, not {listen}"
                ),
            }),
            None => Ok(None),
        }
    }

    /// The functions whose vendor is not configured here for the default tenant.
    pub fn unconfigured(&self) -> impl Iterator<Item = &'static Function> + '_ {
        self.served
            .iter()
            .filter(|(f, _)| !f.is_configured())
            .map(|(f, _)| *f)
    }

    /// Routes one request as API Gateway would.
    pub async fn dispatch(&self, req: lambda_http::Request) -> Response<Body> {
        let path = req.uri().path();
        match self.served.iter().find(|(f, _)| f.route == path) {
            Some((_, svc)) => svc.serve(req).await,
            None => not_found(),
        }
    }
}

fn not_found() -> Response<Body> {
    cc_shared::web::http::json_response(
        StatusCode::NOT_FOUND,
        &serde_json::json!({ "message": "Not Found" }),
    )
}

/// The gateway's defences against slow and numerous clients (README, "Limits").
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct Limits {
    /// Most connections served at once; further clients wait in the listen backlog, so a
    /// flood of idle connections cannot use up the process's file descriptors.
    #[arg(long, default_value_t = 256, env = "CC_GATEWAY_MAX_CONNECTIONS",
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub max_connections: u32,
    /// Milliseconds a client has to send a request's headers, from connecting or from the
    /// previous answer on a kept-alive connection: idle connections are closed after it.
    #[arg(long, default_value_t = 10_000, env = "CC_GATEWAY_HEADER_TIMEOUT_MS",
          value_parser = clap::value_parser!(u64).range(1..=600_000))]
    pub header_timeout_ms: u64,
    /// Milliseconds a client has to send a request's whole body once its headers are in.
    #[arg(long, default_value_t = 10_000, env = "CC_GATEWAY_BODY_TIMEOUT_MS",
          value_parser = clap::value_parser!(u64).range(1..=600_000))]
    pub body_timeout_ms: u64,
}

impl Limits {
    /// The limits from their environment variables, else the defaults (for `cc-callbacks`
    /// run without a subcommand).
    pub fn from_env() -> Result<Limits, clap::Error> {
        #[derive(clap::Parser)]
        struct Only {
            #[command(flatten)]
            limits: Limits,
        }
        <Only as clap::Parser>::try_parse_from(["cc-callbacks"]).map(|o| o.limits)
    }
}

/// How long the accept loop pauses after a failed accept (descriptors exhausted, ...).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Serves until `shutdown` completes. A failed accept is logged and retried after a pause,
/// never fatal.
pub async fn serve(
    listener: TcpListener,
    gateway: Arc<Gateway>,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    tokio::pin!(shutdown);
    let permits = Arc::new(Semaphore::new(limits.max_connections as usize));
    let header_timeout = Duration::from_millis(limits.header_timeout_ms);
    let body_timeout = Duration::from_millis(limits.body_timeout_ms);
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => return Ok(()), // the semaphore is never closed
            },
            () = &mut shutdown => return Ok(()),
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed; pausing before the next accept");
                    tokio::select! {
                        () = tokio::time::sleep(ACCEPT_BACKOFF) => continue,
                        () = &mut shutdown => return Ok(()),
                    }
                }
            },
            () = &mut shutdown => return Ok(()),
        };
        let gateway = gateway.clone();
        tokio::spawn(async move {
            let _permit = permit; // released when the connection ends
            let service = service_fn(move |req| {
                let gateway = gateway.clone();
                async move {
                    Ok::<_, Infallible>(to_hyper(answer(&gateway, req, peer, body_timeout).await))
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Reads the body (at most API Gateway's limit, within `body_timeout`) and dispatches. A body
/// that cannot be read whole is left to the handler as a [`BodyDefect`], so that it is
/// answered in the caller's own format (after its credentials), and the connection closed.
async fn answer(
    gateway: &Gateway,
    req: http::Request<Incoming>,
    peer: std::net::SocketAddr,
    body_timeout: Duration,
) -> Response<Body> {
    let (mut parts, body) = req.into_parts();
    // As API Gateway gives its request ID and the client's address.
    parts.extensions.insert(RequestMeta {
        request_id: cc_shared::domain::uid::sortable_id(),
        source_ip: peer.ip().to_string(),
    });
    let read = tokio::time::timeout(body_timeout, Limited::new(body, MAX_GATEWAY_BODY).collect());
    let body = match read.await {
        Ok(Ok(collected)) => {
            let bytes = collected.to_bytes();
            if bytes.is_empty() {
                Body::Empty
            } else {
                match String::from_utf8(bytes.to_vec()) {
                    Ok(text) => Body::Text(text),
                    Err(e) => Body::Binary(e.into_bytes()),
                }
            }
        }
        Ok(Err(e)) if e.is::<LengthLimitError>() => {
            parts
                .extensions
                .insert(BodyDefect::TooLarge(MAX_GATEWAY_BODY));
            Body::Empty
        }
        Ok(Err(_)) | Err(_) => {
            parts.extensions.insert(BodyDefect::Incomplete);
            Body::Empty
        }
    };
    let defective = parts.extensions.get::<BodyDefect>().is_some();
    let mut response = gateway
        .dispatch(http::Request::from_parts(parts, body))
        .await;
    if defective {
        // The rest of the body is not read: the connection cannot carry another request.
        response.headers_mut().insert(
            http::header::CONNECTION,
            http::HeaderValue::from_static("close"),
        );
    }
    response
}

fn to_hyper(resp: Response<Body>) -> Response<Full<Bytes>> {
    resp.map(|body| match body {
        Body::Text(s) => Full::new(Bytes::from(s)),
        Body::Binary(b) => Full::new(Bytes::from(b)),
        _ => Full::new(Bytes::new()),
    })
}
