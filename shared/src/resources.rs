//! What a function's `init` is given, built once per process by one of two callers: the Lambda
//! `main` (DynamoDB only, so the Lambda binaries never link SQLite) and the local gateway (the
//! store its configuration names). Both then call the same `init` of each function, so a
//! function's settings and secrets are read in one place, its `config.rs`.

use std::path::PathBuf;
use std::sync::Arc;

use crate::config::{self, ConfigError};
use crate::domain::tenant::TenantId;
use crate::store::{
    AgentStore, AuditStore, IdentityStore, KeyedRecords, MappingStore, TenantListing, TenantLookup,
    TenantScoped, UnmaskingLog,
};
use crate::web::auth::Credentials;

pub struct Resources {
    /// The stores: ask for them with `mapping()`, `identity()`, `audit()`, `agents()`.
    pub stores: StoreSet,
    /// The AWS SDK configuration, when one was loaded (always in Lambda; locally when the
    /// store is DynamoDB or a secret is kept in Secrets Manager).
    #[cfg(any(feature = "secrets", feature = "dynamodb"))]
    pub sdk: Option<aws_config::SdkConfig>,
    /// Where local state lives (the embedded store, generated keys); None in Lambda.
    pub data_dir: Option<PathBuf>,
    /// The store, asked whether it holds data a missing local key file protects (a key is
    /// generated only for one that holds none); None in Lambda, where keys are never
    /// generated (and so the binaries never link the question's scan).
    pub keyed: Option<Arc<dyn KeyedRecords>>,
    /// Credentials accepted where a function's `*_CREDENTIALS` is unset: the gateway's
    /// `dev:dev` on a loopback address; None in Lambda and anywhere else.
    pub dev_credentials: Option<Credentials>,
}

/// Builds the stores of one tenant's scope (platform mode).
pub type ScopedStores = Arc<dyn Fn(&TenantId) -> StoreSet + Send + Sync>;

/// Where the stores are. DynamoDB is kept as its one concrete store, and each function asks
/// for the trait it uses: a Lambda binary then links only its own record families' code (four
/// trait objects built up front would pull every family's DynamoDB code into every binary).
#[derive(Clone)]
pub enum StoreSet {
    #[cfg(feature = "dynamodb")]
    Dynamo(Arc<crate::store::dynamo::DynamoStore>),
    /// Any backend, one trait object per family (the embedded store, tests).
    Each {
        mapping: Arc<dyn MappingStore>,
        identity: Arc<dyn IdentityStore>,
        audit: Arc<dyn AuditStore>,
        agents: Arc<dyn AgentStore>,
        tenants: Arc<dyn TenantLookup>,
        listing: Arc<dyn TenantListing>,
        unmaskings: Arc<dyn UnmaskingLog>,
        /// The same stores in a tenant's scope.
        scoped: ScopedStores,
    },
}

impl StoreSet {
    /// Every family from one store that implements them all.
    pub fn each<S>(store: Arc<S>) -> StoreSet
    where
        S: MappingStore
            + IdentityStore
            + AuditStore
            + AgentStore
            + TenantLookup
            + TenantListing
            + UnmaskingLog
            + TenantScoped
            + 'static,
    {
        let scoped = store.clone();
        StoreSet::Each {
            mapping: store.clone(),
            identity: store.clone(),
            audit: store.clone(),
            agents: store.clone(),
            tenants: store.clone(),
            listing: store.clone(),
            unmaskings: store,
            scoped: Arc::new(move |tenant: &TenantId| {
                StoreSet::each(Arc::new(scoped.for_tenant(tenant)))
            }),
        }
    }

    /// The stores of `tenant`'s scope: its records only (platform mode).
    pub fn for_tenant(&self, tenant: &TenantId) -> StoreSet {
        match self {
            #[cfg(feature = "dynamodb")]
            StoreSet::Dynamo(store) => StoreSet::Dynamo(Arc::new(store.for_tenant(tenant))),
            StoreSet::Each { scoped, .. } => scoped(tenant),
        }
    }

    pub fn mapping(&self) -> Arc<dyn MappingStore> {
        match self {
            #[cfg(feature = "dynamodb")]
            StoreSet::Dynamo(store) => store.clone(),
            StoreSet::Each { mapping, .. } => mapping.clone(),
        }
    }

    pub fn identity(&self) -> Arc<dyn IdentityStore> {
        match self {
            #[cfg(feature = "dynamodb")]
            StoreSet::Dynamo(store) => store.clone(),
            StoreSet::Each { identity, .. } => identity.clone(),
        }
    }

    pub fn audit(&self) -> Arc<dyn AuditStore> {
        match self {
            #[cfg(feature = "dynamodb")]
            StoreSet::Dynamo(store) => store.clone(),
            StoreSet::Each { audit, .. } => audit.clone(),
        }
    }

    pub fn agents(&self) -> Arc<dyn AgentStore> {
        match self {
            #[cfg(feature = "dynamodb")]
            StoreSet::Dynamo(store) => store.clone(),
            StoreSet::Each { agents, .. } => agents.clone(),
        }
    }

    /// Where unmaskings are recorded (number mapping).
    pub fn unmasking_log(&self) -> Arc<dyn UnmaskingLog> {
        match self {
            #[cfg(feature = "dynamodb")]
            StoreSet::Dynamo(store) => store.clone(),
            StoreSet::Each { unmaskings, .. } => unmaskings.clone(),
        }
    }

    /// Every tenant of the registry (the scheduled agent sync).
    pub fn tenant_listing(&self) -> Arc<dyn TenantListing> {
        match self {
            #[cfg(feature = "dynamodb")]
            StoreSet::Dynamo(store) => store.clone(),
            StoreSet::Each { listing, .. } => listing.clone(),
        }
    }
}

impl Resources {
    /// A Lambda function's resources: the DynamoDB table `TABLE_NAME` with the SDK
    /// configuration of Lambda's environment (`aws::lambda_sdk_config`).
    #[cfg(feature = "dynamodb")]
    pub fn lambda() -> Result<Resources, ConfigError> {
        let table = config::required("TABLE_NAME")?;
        let sdk = crate::aws::lambda_sdk_config()?;
        let store = Arc::new(crate::store::dynamo::DynamoStore::new(
            crate::store::dynamo::client(&sdk),
            table,
        ));
        Ok(Resources {
            stores: StoreSet::Dynamo(store),
            sdk: Some(sdk),
            data_dir: None,
            keyed: None,
            dev_credentials: None,
        })
    }

    pub fn mapping(&self) -> Arc<dyn MappingStore> {
        self.stores.mapping()
    }

    pub fn identity(&self) -> Arc<dyn IdentityStore> {
        self.stores.identity()
    }

    pub fn audit(&self) -> Arc<dyn AuditStore> {
        self.stores.audit()
    }

    pub fn agents(&self) -> Arc<dyn AgentStore> {
        self.stores.agents()
    }

    /// The registry of platform mode's tenants.
    pub fn tenants(&self) -> Arc<dyn TenantLookup> {
        match &self.stores {
            #[cfg(feature = "dynamodb")]
            StoreSet::Dynamo(store) => store.clone(),
            StoreSet::Each { tenants, .. } => tenants.clone(),
        }
    }

    /// The DynamoDB store, when that is the backend.
    #[cfg(feature = "dynamodb")]
    pub fn dynamo(&self) -> Option<&crate::store::dynamo::DynamoStore> {
        match &self.stores {
            StoreSet::Dynamo(store) => Some(store),
            StoreSet::Each { .. } => None,
        }
    }

    /// Opens the DynamoDB connection now, with a read of a key that never exists under
    /// `pk_prefix` (one the function's policy allows), unless `DYNAMODB_PRIME=false`; nothing
    /// for the embedded store.
    pub async fn prime(&self, pk_prefix: &str) -> Result<(), ConfigError> {
        let prime = config::flag("DYNAMODB_PRIME", true)?;
        #[cfg(feature = "dynamodb")]
        if let (true, Some(store)) = (prime, self.dynamo()) {
            store.prime(pk_prefix).await;
        }
        let _ = (prime, pk_prefix);
        Ok(())
    }

    /// The string value of the Secrets Manager secret named by the variable `arn_var`, when it
    /// is set (None: the function falls back to its local settings).
    #[cfg(feature = "secrets")]
    pub async fn secret(&self, arn_var: &'static str) -> Result<Option<String>, ConfigError> {
        crate::aws::configured_secret(self.sdk.as_ref(), arn_var).await
    }
}

/// A Lambda function's whole `main` after logging starts: its resources from Lambda's
/// environment, its `init` on them, then API Gateway events served by `handler` (an init
/// failure is logged naming the setting, and ends the process).
#[cfg(feature = "dynamodb")]
pub async fn serve<S, H, Fut>(
    function: &'static str,
    init: impl AsyncFnOnce(&Resources) -> Result<S, ConfigError>,
    handler: H,
) -> Result<(), lambda_http::Error>
where
    S: Send + Sync + 'static,
    H: Fn(Arc<S>, lambda_http::Request) -> Fut,
    Fut: std::future::Future<Output = lambda_http::Response<lambda_http::Body>> + Send,
{
    let svc = match crate::metrics::install(function).and_then(|()| Resources::lambda()) {
        Ok(res) => init(&res).await,
        Err(e) => Err(e),
    };
    crate::web::lambda::run(function, svc, handler).await
}
