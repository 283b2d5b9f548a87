//! Opens the store the configuration names: DynamoDB when `TABLE_NAME` is set, otherwise the
//! embedded SQLite store under the data directory.

use std::path::Path;
use std::sync::Arc;

use cc_shared::config::{ConfigError, StoreLocation};
use cc_shared::store::dynamo::{self, DynamoStore};
use cc_shared::store::embedded::EmbeddedStore;
use cc_shared::store::{AgentStore, AuditStore, IdentityStore, MappingStore, StoreError};

/// Every store trait of the bundle, from one backend.
#[derive(Clone)]
pub struct Stores {
    pub mapping: Arc<dyn MappingStore>,
    pub identity: Arc<dyn IdentityStore>,
    pub audit: Arc<dyn AuditStore>,
    pub agents: Arc<dyn AgentStore>,
    /// The AWS SDK configuration, loaded once (DynamoDB, Secrets Manager).
    pub sdk: Option<aws_config::SdkConfig>,
    pub location: StoreLocation,
    dynamo: Option<Arc<DynamoStore>>,
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Stores {
    pub async fn open(data_dir: &Path) -> Result<Stores, OpenError> {
        let location = StoreLocation::from_env(data_dir)?;
        Ok(match &location {
            StoreLocation::DynamoDb { table } => {
                let sdk = cc_shared::aws::sdk_config().await?;
                let store = Arc::new(DynamoStore::new(dynamo::client(&sdk), table.clone()));
                Stores {
                    mapping: store.clone(),
                    identity: store.clone(),
                    audit: store.clone(),
                    agents: store.clone(),
                    sdk: Some(sdk),
                    location,
                    dynamo: Some(store),
                }
            }
            StoreLocation::Embedded { data_dir } => {
                let store = Arc::new(EmbeddedStore::open(data_dir)?);
                // AWS is needed only to read secrets kept in Secrets Manager.
                let secret_arns = [
                    cc_shared::aws::PEPPER_ARN_VAR,
                    token_exchange::SECRET_ARN_VAR,
                    agent_sync::SECRET_ARN_VAR,
                ];
                let sdk = if secret_arns
                    .iter()
                    .any(|v| cc_shared::config::optional(v).is_some())
                {
                    Some(cc_shared::aws::sdk_config().await?)
                } else {
                    None
                };
                Stores {
                    mapping: store.clone(),
                    identity: store.clone(),
                    audit: store.clone(),
                    agents: store,
                    sdk,
                    location,
                    dynamo: None,
                }
            }
        })
    }

    /// The DynamoDB store, when that is the backend.
    pub fn dynamo(&self) -> Option<&DynamoStore> {
        self.dynamo.as_deref()
    }

    /// The PIN pepper: Secrets Manager (`IDENTITY_PIN_PEPPER_SECRET_ARN`), else
    /// `IDENTITY_PIN_PEPPER`, else the file kept in the data directory.
    pub async fn pepper(
        &self,
        data_dir: &Path,
    ) -> Result<cc_shared::domain::identity::Pepper, ConfigError> {
        cc_shared::aws::pepper(self.sdk.as_ref(), Some(data_dir)).await
    }

    /// The token-exchange secrets, or None when token exchange is not configured here
    /// (neither `FUYUN_CLIENT_ID` nor `FUYUN_SECRET_ARN` set).
    pub async fn fuyun_secrets(&self) -> Result<Option<token_exchange::FuyunSecrets>, ConfigError> {
        if cc_shared::config::optional("FUYUN_CLIENT_ID").is_none()
            && cc_shared::config::optional(token_exchange::SECRET_ARN_VAR).is_none()
        {
            return Ok(None);
        }
        token_exchange::FuyunSecrets::load(self.sdk.as_ref())
            .await
            .map(Some)
    }

    /// The CEC client, or None when the agent directory is not configured here (no
    /// `CEC_BASE_URL`).
    pub async fn cec(&self) -> Result<Option<agent_sync::cec_client::CecClient>, ConfigError> {
        if cc_shared::config::optional("CEC_BASE_URL").is_none() {
            return Ok(None);
        }
        let secrets = agent_sync::CecSecrets::load(self.sdk.as_ref()).await?;
        agent_sync::cec_from_env(secrets).map(Some)
    }

    pub fn describe(&self) -> String {
        match &self.location {
            StoreLocation::DynamoDb { table } => format!("DynamoDB table {table}"),
            StoreLocation::Embedded { data_dir } => format!(
                "embedded store {}",
                data_dir.join(cc_shared::store::embedded::DB_FILE).display()
            ),
        }
    }
}
