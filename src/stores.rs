//! Opens the store the configuration names: DynamoDB when `TABLE_NAME` is set, otherwise the
//! embedded SQLite store under the data directory.

use std::path::Path;
use std::sync::Arc;

use cc_shared::config::ConfigError;
use cc_shared::store::dynamo::{client_from_env, DynamoStore};
use cc_shared::store::embedded::EmbeddedStore;
use cc_shared::store::{MappingStore, StoreError, StoreLocation};

/// Every store trait of the bundle, from one backend.
#[derive(Clone)]
pub struct Stores {
    pub mapping: Arc<dyn MappingStore>,
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
                let store = Arc::new(DynamoStore::new(client_from_env().await, table.clone()));
                Stores {
                    mapping: store.clone(),
                    location,
                    dynamo: Some(store),
                }
            }
            StoreLocation::Embedded { data_dir } => {
                let store = Arc::new(EmbeddedStore::open(data_dir)?);
                Stores {
                    mapping: store,
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
