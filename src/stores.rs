//! Builds the local `Resources` from the configuration: DynamoDB when `TABLE_NAME` is set,
//! otherwise the embedded SQLite store under the data directory. The gateway hands them to
//! each function's `init`, as the Lambda `main` does with its own.

use std::path::Path;
use std::sync::Arc;

use cc_shared::config::{ConfigError, StoreLocation};
use cc_shared::domain::protect::NumberProtection;
use cc_shared::number_keys::{self, KeyPlace};
use cc_shared::resources::{Resources, StoreSet};
use cc_shared::store::dynamo::{self, DynamoStore};
use cc_shared::store::embedded::EmbeddedStore;
use cc_shared::store::{KeyedRecords, NumbersAdmin, StoreError, TenantRegistry};
use cc_shared::web::auth::Credentials;

/// The resources of a local process (gateway, CLI), and where their store lives.
pub struct Stores {
    pub res: Resources,
    pub location: StoreLocation,
    admin: Arc<dyn NumbersAdmin>,
    tenants: Arc<dyn TenantRegistry>,
}

impl std::ops::Deref for Stores {
    type Target = Resources;
    fn deref(&self) -> &Resources {
        &self.res
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The AWS configuration a local process needs at `location`: for DynamoDB, or for secrets
/// kept in Secrets Manager (a function's secret ARN variable is set: the embedded store then
/// needs an AWS configuration too).
pub async fn sdk_for(
    location: &StoreLocation,
) -> Result<Option<aws_config::SdkConfig>, ConfigError> {
    let needed = matches!(location, StoreLocation::DynamoDb { .. })
        || crate::functions::secrets_in_secrets_manager();
    Ok(if needed {
        Some(cc_shared::aws::sdk_config().await?)
    } else {
        None
    })
}

impl Stores {
    /// `dev_credentials`: accepted where a function's `*_CREDENTIALS` is unset (the gateway on
    /// loopback), else None.
    pub async fn open(
        data_dir: &Path,
        dev_credentials: Option<Credentials>,
    ) -> Result<Stores, OpenError> {
        let location = StoreLocation::from_env(data_dir)?;
        type Opened = (
            StoreSet,
            Arc<dyn NumbersAdmin>,
            Arc<dyn KeyedRecords>,
            Arc<dyn TenantRegistry>,
        );
        let ((stores, admin, keyed, tenants), sdk): (Opened, _) = match &location {
            StoreLocation::DynamoDb { table } => {
                let sdk = cc_shared::aws::sdk_config().await?;
                let store = Arc::new(DynamoStore::new(dynamo::client(&sdk), table.clone()));
                (
                    (
                        StoreSet::Dynamo(store.clone()),
                        store.clone(),
                        store.clone(),
                        store,
                    ),
                    Some(sdk),
                )
            }
            StoreLocation::Embedded { data_dir } => {
                let store = Arc::new(EmbeddedStore::open(data_dir)?);
                (
                    (
                        StoreSet::each(store.clone()),
                        store.clone(),
                        store.clone(),
                        store,
                    ),
                    sdk_for(&location).await?,
                )
            }
        };
        let res = Resources {
            stores,
            sdk,
            data_dir: Some(data_dir.to_path_buf()),
            keyed: Some(keyed),
            dev_credentials,
        };
        Ok(Stores {
            res,
            location,
            admin,
            tenants,
        })
    }

    /// The registry of platform mode's tenants (`cc-callbacks tenants ...`).
    pub fn tenants(&self) -> Arc<dyn TenantRegistry> {
        self.tenants.clone()
    }

    /// Bulk work on the number mapping (`cc-callbacks numbers ...`).
    pub fn admin(&self) -> Arc<dyn NumbersAdmin> {
        self.admin.clone()
    }

    /// The index key and the keyring, as number mapping reads them.
    pub async fn keys(&self) -> Result<NumberProtection, ConfigError> {
        number_keys::protection(KeyPlace::from(&self.res)).await
    }

    /// The number index key alone, as identity verification reads it.
    pub async fn index_key(&self) -> Result<cc_shared::domain::protect::IndexKey, ConfigError> {
        number_keys::index_key(&self.res).await
    }

    /// The PIN pepper, as identity verification reads it.
    pub async fn pepper(&self) -> Result<cc_shared::domain::identity::Pepper, ConfigError> {
        identity_verification::config::pepper(&self.res).await
    }

    /// The CEC client, or None when the agent directory is not configured here (no
    /// `CEC_BASE_URL`).
    pub async fn cec(&self) -> Result<Option<agent_sync::cec_client::CecClient>, ConfigError> {
        if !agent_sync::config::configured() {
            return Ok(None);
        }
        let secrets = agent_sync::CecSecrets::load(&self.res).await?;
        agent_sync::cec_from_env(secrets).map(Some)
    }

    pub fn describe(&self) -> String {
        describe(&self.location)
    }
}

/// The store at `location`, for messages.
pub fn describe(location: &StoreLocation) -> String {
    match location {
        StoreLocation::DynamoDb { table } => format!("DynamoDB table {table}"),
        StoreLocation::Embedded { data_dir } => format!(
            "embedded store {}",
            data_dir.join(cc_shared::store::embedded::DB_FILE).display()
        ),
    }
}
