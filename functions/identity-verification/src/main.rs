//! The Lambda entry point: configuration, the pepper (Secrets Manager) and the DynamoDB client
//! are read and built once, at init.

use std::sync::Arc;

use cc_shared::clock::SystemClock;
use cc_shared::store::dynamo::{self, DynamoStore};
use identity_verification::{handle, Config, IdentityVerification};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    cc_shared::logging::init();
    let svc = init().await;
    cc_shared::lambda::run("identity-verification", svc, |svc, req| async move {
        handle(&svc, req).await
    })
    .await
}

async fn init() -> Result<IdentityVerification, cc_shared::config::ConfigError> {
    let table = cc_shared::config::required("TABLE_NAME")?;
    let sdk = cc_shared::secrets::sdk_config().await;
    let pepper = cc_shared::secrets::pepper(Some(&sdk), None).await?;
    let config = Config::from_env(None, pepper)?;
    let store = DynamoStore::new(dynamo::client(&sdk), table);
    if cc_shared::config::flag("DYNAMODB_PRIME", true)? {
        store.prime("PIN#").await;
    }
    Ok(IdentityVerification::new(
        config,
        Arc::new(store),
        Arc::new(SystemClock),
    ))
}
