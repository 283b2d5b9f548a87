//! The Lambda entry point: configuration and the DynamoDB client are built once, at init.

use std::sync::Arc;

use cc_shared::store::dynamo::{client_from_env, DynamoStore};
use lambda_http::{service_fn, Error, Request};
use number_mapping::{handle, Config, NumberMapping};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    cc_shared::logging::init();
    let svc = match init().await {
        Ok(svc) => Arc::new(svc),
        Err(e) => {
            tracing::error!(function = "number-mapping", error = %e, "init failed");
            return Err(e.into());
        }
    };
    lambda_http::run(service_fn(move |req: Request| {
        let svc = svc.clone();
        async move { Ok::<_, std::convert::Infallible>(handle(&svc, req).await) }
    }))
    .await
}

async fn init() -> Result<NumberMapping, cc_shared::config::ConfigError> {
    let config = Config::from_env(None)?;
    let table = cc_shared::config::required("TABLE_NAME")?;
    let client = client_from_env().await;
    Ok(NumberMapping::new(
        config,
        Arc::new(DynamoStore::new(client, table)),
    ))
}
