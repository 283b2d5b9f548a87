//! Builds the local `Resources` from the configuration: DynamoDB when `TABLE_NAME` is set,
//! otherwise the embedded SQLite store under the data directory. The gateway hands them to
//! each function's `init`, as the Lambda `main` does with its own.

use std::path::Path;
use std::sync::Arc;

use cc_shared::config::{ConfigError, StoreLocation};
use cc_shared::domain::identity::Pepper;
use cc_shared::domain::protect::NumberProtection;
use cc_shared::domain::tenant::{LookupKeys, Tenant, TenantId, TenantKeys};
use cc_shared::domain::tenant_settings::TenantSettings;
use cc_shared::number_keys::{self, KeyPlace};
use cc_shared::resources::{Resources, StoreSet};
use cc_shared::store::dynamo::{self, DynamoStore};
use cc_shared::store::embedded::EmbeddedStore;
use cc_shared::store::{
    IdentityStore, KeyedRecords, NumbersAdmin, StoreError, TenantEntry, TenantRegistry,
    TenantScoped, UnmaskingQuery,
};

/// A command's failure, as the CLI reports it.
pub type Failure = Box<dyn std::error::Error + Send + Sync>;

/// Builds the bulk work on a tenant's mapping.
type TenantAdmin = Arc<dyn Fn(&TenantId) -> Arc<dyn NumbersAdmin> + Send + Sync>;
/// Builds the queries of a scope's unmasking records (None: the default tenant's).
type Unmaskings = Arc<dyn Fn(Option<&TenantId>) -> Arc<dyn UnmaskingQuery> + Send + Sync>;
use cc_shared::web::auth::Credentials;

/// The resources of a local process (gateway, CLI), and where their store lives.
pub struct Stores {
    pub res: Resources,
    pub location: StoreLocation,
    admin: Arc<dyn NumbersAdmin>,
    tenants: Arc<dyn TenantRegistry>,
    /// The bulk work on a tenant's mapping.
    tenant_admin: TenantAdmin,
    unmaskings: Unmaskings,
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

/// The admin commands' views of one store.
type AdminOf = (
    Arc<dyn NumbersAdmin>,
    Arc<dyn KeyedRecords>,
    Arc<dyn TenantRegistry>,
    TenantAdmin,
    Unmaskings,
);

/// What the admin commands use of `store`: bulk work on the mapping (the default tenant's, and
/// a tenant's), the key question, the tenant registry.
fn admin_of<S>(store: Arc<S>) -> AdminOf
where
    S: NumbersAdmin + KeyedRecords + TenantRegistry + UnmaskingQuery + TenantScoped + 'static,
{
    let scoped = store.clone();
    let tenant_admin: TenantAdmin =
        Arc::new(move |id: &TenantId| Arc::new(scoped.for_tenant(id)) as Arc<dyn NumbersAdmin>);
    let scoped = store.clone();
    let unmaskings: Unmaskings = Arc::new(move |id: Option<&TenantId>| match id {
        Some(id) => Arc::new(scoped.for_tenant(id)) as Arc<dyn UnmaskingQuery>,
        None => scoped.clone() as Arc<dyn UnmaskingQuery>,
    });
    (
        store.clone(),
        store.clone(),
        store,
        tenant_admin,
        unmaskings,
    )
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
        let ((stores, sdk), (admin, keyed, tenants, tenant_admin, unmaskings)) = match &location {
            StoreLocation::DynamoDb { table } => {
                let sdk = cc_shared::aws::sdk_config().await?;
                let store = Arc::new(DynamoStore::new(dynamo::client(&sdk), table.clone()));
                (
                    (StoreSet::Dynamo(store.clone()), Some(sdk)),
                    admin_of(store),
                )
            }
            StoreLocation::Embedded { data_dir } => {
                let store = Arc::new(EmbeddedStore::open(data_dir)?);
                let sdk = sdk_for(&location).await?;
                ((StoreSet::each(store.clone()), sdk), admin_of(store))
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
            tenant_admin,
            unmaskings,
        })
    }

    /// The unmasking records of `tenant`'s scope (None: the default tenant's).
    pub fn unmaskings(&self, tenant: Option<&TenantId>) -> Arc<dyn UnmaskingQuery> {
        (self.unmaskings)(tenant)
    }

    /// A registered tenant's mapping, its own number keys (unwrapped with the stack's
    /// `stack`) and its PIN pepper.
    pub async fn tenant_numbers(
        &self,
        id: &TenantId,
        stack: &NumberProtection,
    ) -> Result<(Arc<dyn NumbersAdmin>, NumberProtection, Pepper), Failure> {
        let entry = self.registered(id).await?;
        let keys = self.tenant_keys(&entry.tenant, stack)?;
        let pepper = keys.lookup()?.pepper;
        Ok(((self.tenant_admin)(id), keys.protection()?, pepper))
    }

    /// A registered tenant's identity verification records and its lookup keys (its index key
    /// and PIN pepper), opened with the stack's index key as identity verification opens them.
    pub async fn tenant_identity(
        &self,
        id: &TenantId,
    ) -> Result<(Arc<dyn IdentityStore>, LookupKeys), Failure> {
        let (_, keys) = self.tenant_lookup(id).await?;
        Ok((self.res.stores.for_tenant(id).identity(), keys))
    }

    /// A registered tenant's registry entry and its lookup keys (index key, PIN pepper, the
    /// key of its sealed settings), opened with the stack's index key as the functions do.
    pub async fn tenant_lookup(&self, id: &TenantId) -> Result<(TenantEntry, LookupKeys), Failure> {
        let entry = self.registered(id).await?;
        if entry.tenant.lookup.as_str().is_empty() {
            return Err(format!(
                "tenant {id} has no lookup keys (registered before identity verification served \
                 tenants): run `cc-callbacks numbers rekey` once"
            )
            .into());
        }
        let index = self.index_key().await?;
        let keys = LookupKeys::unwrap(&entry.tenant.lookup, &index, id).map_err(|e| {
            format!(
                "tenant {id}'s lookup keys do not open with this index key ({e}): use the \
                 stack's index key"
            )
        })?;
        Ok((entry, keys))
    }

    async fn registered(&self, id: &TenantId) -> Result<TenantEntry, Failure> {
        Ok(self
            .tenants
            .tenant(id)
            .await?
            .ok_or_else(|| format!("no tenant {id} ({})", self.describe()))?)
    }

    fn tenant_keys(&self, tenant: &Tenant, stack: &NumberProtection) -> Result<TenantKeys, String> {
        let ring = stack
            .keyring
            .as_deref()
            .ok_or("the stack's keyring is needed to open a tenant's keys")?;
        TenantKeys::unwrap(&tenant.keys, ring, &tenant.id).map_err(|e| {
            format!(
                "tenant {}'s keys do not open with this keyring ({e}): restore the stack's \
                 keyring version they were wrapped with",
                tenant.id
            )
        })
    }

    /// Adds a generated key to a tenant's own keyring as its current version, the keys
    /// re-wrapped in the registry only where nobody changed them meanwhile.
    pub async fn add_tenant_key_version(
        &self,
        id: &TenantId,
        stack: &NumberProtection,
    ) -> Result<u32, Failure> {
        let ring = stack.keyring.as_deref().ok_or("no keyring here")?;
        let entry = self.registered(id).await?;
        let mut keys = self.tenant_keys(&entry.tenant, stack)?;
        let version = keys.keyring.add_version()?;
        let new = keys.wrap(ring, id)?;
        let lookup = keys.wrap_lookup(&stack.index, id)?;
        if !self
            .tenants
            .rewrap_keys(id, &entry.tenant.keys, &new, &lookup)
            .await?
        {
            return Err(format!(
                "tenant {id}'s keys changed while this ran (another add-key or rekey): run it again"
            )
            .into());
        }
        Ok(version)
    }

    /// Re-wraps every tenant's keys under the stack keyring's current version (after
    /// `numbers add-key`), and wraps the lookup keys of a tenant registered without them (the
    /// first platform-mode release): (re-wrapped now, tenants).
    pub async fn rewrap_tenants(
        &self,
        stack: &NumberProtection,
    ) -> Result<(usize, usize), Failure> {
        let ring = stack.keyring.as_deref().ok_or("no keyring here")?;
        let entries = self.tenants.list_tenants().await?;
        let mut rewrapped = 0;
        for entry in &entries {
            let t = &entry.tenant;
            if t.keys.version() == Some(ring.current_version()) && !t.lookup.as_str().is_empty() {
                continue;
            }
            let keys = self.tenant_keys(t, stack)?;
            let (new, lookup) = (
                keys.wrap(ring, &t.id)?,
                keys.wrap_lookup(&stack.index, &t.id)?,
            );
            if self
                .tenants
                .rewrap_keys(&t.id, &t.keys, &new, &lookup)
                .await?
            {
                rewrapped += 1;
            }
        }
        Ok((rewrapped, entries.len()))
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

    /// A registered tenant's agent directory (its scope) and its own settings, opened with
    /// the stack's index key as the functions open them.
    pub async fn tenant_agents(
        &self,
        id: &TenantId,
    ) -> Result<(Arc<dyn cc_shared::store::AgentStore>, TenantSettings), Failure> {
        let (entry, keys) = self.tenant_lookup(id).await?;
        let settings = entry
            .settings
            .open(&keys.settings, id)
            .map_err(|e| format!("tenant {id}'s settings do not open ({e})"))?;
        Ok((self.res.stores.for_tenant(id).agents(), settings))
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
