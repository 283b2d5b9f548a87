//! The Lambda entry point: configuration and the DynamoDB client are built once, at init.

use std::sync::Arc;

use cc_shared::store::dynamo::{client_from_env, DynamoStore};
use number_mapping::{handle, Config, NumberMapping};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    cc_shared::logging::init();
    let svc = init().await;
    cc_shared::lambda::run("number-mapping", svc, |svc, req| async move {
        handle(&svc, req).await
    })
    .await
}

async fn init() -> Result<NumberMapping, cc_shared::config::ConfigError> {
    let config = Config::from_env(None)?;
    let table = cc_shared::config::required("TABLE_NAME")?;
    let store = DynamoStore::new(client_from_env().await, table);
    if cc_shared::config::flag("DYNAMODB_PRIME", true)? {
        store.prime("PHONE#").await;
    }
    Ok(NumberMapping::new(config, Arc::new(store)))
}
