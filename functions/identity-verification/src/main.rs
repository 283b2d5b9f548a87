//! The Lambda entry point: configuration, the pepper (Secrets Manager) and the DynamoDB client
//! are read and built once, at init.

use std::sync::Arc;

use cc_shared::clock::SystemClock;
use cc_shared::store::dynamo::DynamoStore;
use identity_verification::{handle, Config, IdentityVerification};
use lambda_http::{service_fn, Error, Request};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    cc_shared::logging::init();
    let svc = match init().await {
        Ok(svc) => Arc::new(svc),
        Err(e) => {
            tracing::error!(function = "identity-verification", error = %e, "init failed");
            return Err(e.into());
        }
    };
    lambda_http::run(service_fn(move |req: Request| {
        let svc = svc.clone();
        async move { Ok::<_, std::convert::Infallible>(handle(&svc, req).await) }
    }))
    .await
}

async fn init() -> Result<IdentityVerification, cc_shared::config::ConfigError> {
    let table = cc_shared::config::required("TABLE_NAME")?;
    let sdk = cc_shared::secrets::sdk_config().await;
    let pepper = cc_shared::secrets::pepper(&sdk, None).await?;
    let config = Config::from_env(None, pepper)?;
    let store = DynamoStore::new(cc_shared::store::dynamo::client(&sdk), table);
    Ok(IdentityVerification::new(
        config,
        Arc::new(store),
        Arc::new(SystemClock),
    ))
}
