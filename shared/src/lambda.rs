//! What every function's `main` does once its dependencies are built: report an init failure
//! (naming the setting) in the JSON log, or serve API Gateway events with the handler.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use lambda_http::{service_fn, Body, Error, Request, Response};

use crate::config::ConfigError;

/// The result of init work run with `tokio::task::spawn_blocking`; a panic in it (which aborts
/// in release builds) is passed on as it is.
pub fn joined<T>(result: Result<T, tokio::task::JoinError>) -> T {
    result.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
}

pub async fn run<S, H, Fut>(
    function: &'static str,
    init: Result<S, ConfigError>,
    handler: H,
) -> Result<(), Error>
where
    S: Send + Sync + 'static,
    H: Fn(Arc<S>, Request) -> Fut,
    Fut: Future<Output = Response<Body>> + Send,
{
    let svc = match init {
        Ok(svc) => Arc::new(svc),
        Err(e) => {
            tracing::error!(function, error = %e, "init failed");
            return Err(e.into());
        }
    };
    lambda_http::run(service_fn(move |req: Request| {
        let response = handler(svc.clone(), req);
        async move { Ok::<_, Infallible>(response.await) }
    }))
    .await
}
