//! What every function's `main` does once its dependencies are built: report an init failure
//! (naming the setting) in the JSON log, or serve API Gateway events with the handler.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use lambda_http::{service_fn, Body, Error, Request, Response};

use crate::config::ConfigError;

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
