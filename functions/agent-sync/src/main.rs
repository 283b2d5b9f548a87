//! The Lambda entry point, in one of two roles (`AGENT_SYNC_ROLE`), each its own function in
//! template.yaml with its own least-privilege policy:
//! - `schedule`: an EventBridge schedule (or `aws lambda invoke`) runs one sync;
//! - `softphone`: API Gateway's `POST /agents/softphone`.

use std::sync::Arc;

use agent_sync::{cec_from_env, handle, sync, AgentDirectory, CecSecrets};
use cc_shared::config::{self, ConfigError};
use cc_shared::domain::clock::SystemClock;
use cc_shared::store::dynamo::{self, DynamoStore};
use cc_shared::web::StoreBudget;
use lambda_http::lambda_runtime::{self, LambdaEvent};
use lambda_http::Error;

struct Deps {
    cec: Arc<agent_sync::cec_client::CecClient>,
    store: Arc<DynamoStore>,
}

async fn deps() -> Result<Deps, ConfigError> {
    let table = config::required("TABLE_NAME")?;
    let sdk = cc_shared::aws::lambda_sdk_config()?;
    let cec = cec_from_env(CecSecrets::load(Some(&sdk)).await?)?;
    Ok(Deps {
        cec: Arc::new(cec),
        store: Arc::new(DynamoStore::new(dynamo::client(&sdk), table)),
    })
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    cc_shared::logging::init();
    let role = config::optional("AGENT_SYNC_ROLE");
    match role.as_deref() {
        Some("schedule") => {
            let deps = match deps().await {
                Ok(d) => Arc::new(d),
                Err(e) => {
                    tracing::error!(function = "agent-sync", error = %e, "init failed");
                    return Err(e.into());
                }
            };
            lambda_runtime::run(lambda_runtime::service_fn(
                move |_event: LambdaEvent<serde_json::Value>| {
                    let deps = deps.clone();
                    async move {
                        let counts = sync(&*deps.store, &deps.cec, &SystemClock).await?;
                        Ok::<_, Error>(serde_json::to_value(counts)?)
                    }
                },
            ))
            .await
        }
        Some("softphone") => {
            let svc = async {
                let deps = deps().await?;
                Ok(AgentDirectory::new(
                    cc_shared::web::auth::Credentials::from_env(agent_sync::CREDENTIALS_VAR, None)?,
                    deps.cec,
                    deps.store,
                    Arc::new(SystemClock),
                )
                .with_store_budget(StoreBudget::from_env(agent_sync::DEFAULT_STORE_BUDGET_MS)?))
            }
            .await;
            cc_shared::web::lambda::run("agent-directory", svc, |svc, req| async move {
                handle(&svc, req).await
            })
            .await
        }
        other => {
            let e = ConfigError::Invalid {
                name: "AGENT_SYNC_ROLE",
                reason: format!("{other:?}: must be schedule or softphone"),
            };
            tracing::error!(function = "agent-sync", error = %e, "init failed");
            Err(e.into())
        }
    }
}
