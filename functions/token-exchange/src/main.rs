//! The Lambda entry point: the Fuyun secrets (Secrets Manager), the IdP client, the signer and
//! the DynamoDB client are read and built once, at init.

use std::sync::Arc;

use cc_shared::domain::clock::SystemClock;
use cc_shared::store::dynamo::{self, DynamoStore};
use token_exchange::{handle, Config, FuyunSecrets, TokenExchange};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    cc_shared::logging::init();
    let svc = init().await;
    cc_shared::web::lambda::run("token-exchange", svc, |svc, req| async move {
        handle(&svc, req).await
    })
    .await
}

async fn init() -> Result<TokenExchange, cc_shared::config::ConfigError> {
    let table = cc_shared::config::required("TABLE_NAME")?;
    let sdk = cc_shared::aws::lambda_sdk_config()?;
    let secrets = FuyunSecrets::load(Some(&sdk)).await?;
    let config = Config::from_env(None, secrets)?;
    Ok(TokenExchange::new(
        config,
        Arc::new(DynamoStore::new(dynamo::client(&sdk), table)),
        Arc::new(SystemClock),
    ))
}
