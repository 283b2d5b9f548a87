//! The Lambda entry point: configuration, the pepper (Secrets Manager) and the DynamoDB client
//! are read and built once, at init.

use std::sync::Arc;

use cc_shared::domain::clock::SystemClock;
use cc_shared::store::dynamo::{self, DynamoStore};
use cc_shared::web::lambda::joined;
use identity_verification::{handle, Config, IdentityVerification};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    cc_shared::logging::init();
    let svc = init().await;
    cc_shared::web::lambda::run("identity-verification", svc, |svc, req| async move {
        handle(&svc, req).await
    })
    .await
}

async fn init() -> Result<IdentityVerification, cc_shared::config::ConfigError> {
    // The phone metadata (CPU-bound, ~5 ms) loads on another thread while the pepper is read
    // from Secrets Manager and the DynamoDB connection is opened, both at once.
    let phones = tokio::task::spawn_blocking(cc_shared::config::phone_normalizer);
    let table = cc_shared::config::required("TABLE_NAME")?;
    let sdk = cc_shared::aws::lambda_sdk_config()?;
    let store = DynamoStore::new(dynamo::client(&sdk), table);
    let prime = cc_shared::config::flag("DYNAMODB_PRIME", true)?;
    let (pepper, ()) = tokio::join!(cc_shared::aws::pepper(Some(&sdk), None), async {
        if prime {
            store.prime("PIN#").await;
        }
    });
    let config = Config::from_env(None, pepper?, joined(phones.await)?)?;
    Ok(IdentityVerification::new(
        config,
        Arc::new(store),
        Arc::new(SystemClock),
    ))
}
