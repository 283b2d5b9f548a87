//! The Lambda entry point: configuration and the DynamoDB client are built once, at init.

use std::sync::Arc;

use cc_shared::store::dynamo::{lambda_client, DynamoStore};
use number_mapping::{handle, Config, NumberMapping};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    cc_shared::logging::init();
    let svc = init().await;
    cc_shared::web::lambda::run("number-mapping", svc, |svc, req| async move {
        handle(&svc, req).await
    })
    .await
}

async fn init() -> Result<NumberMapping, cc_shared::config::ConfigError> {
    // The phone metadata (CPU-bound, ~5 ms) loads on another thread while the DynamoDB
    // connection is opened (mostly waiting on the network).
    let config = tokio::task::spawn_blocking(|| Config::from_env(None));
    let table = cc_shared::config::required("TABLE_NAME")?;
    let store = DynamoStore::new(lambda_client()?, table);
    if cc_shared::config::flag("DYNAMODB_PRIME", true)? {
        store.prime("PHONE#").await;
    }
    let config = cc_shared::web::lambda::joined(config.await)?;
    Ok(NumberMapping::new(config, Arc::new(store)))
}
