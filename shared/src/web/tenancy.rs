//! Platform mode's callers, resolved once per request in the frame (`envelope::handle`): a
//! BasicAuth user name `NAME@ID` that the default tenant's credentials do not know is looked up
//! in tenant `ID`'s registry entry: its credentials for this function, its suspension, its
//! keys (its whole keys unwrapped under the stack's keyring where the function reads numbers
//! back, its lookup keys under the stack's index key where it only looks numbers up:
//! [`StackKeys`]). What the registry says is cached in the
//! instance for `TENANT_CACHE_SECONDS`, unknown tenants included, so a warm request of a known
//! tenant makes no extra round trip and a flood of wrong passwords for one tenant reads the
//! store once per cache time, not once per attempt.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};

use crate::domain::identity::Pepper;
use crate::domain::protect::{IndexKey, Keyring, NumberProtection, OpenError};
use crate::domain::tenant::{LookupKeys, Tenant, TenantId, TenantKeys, TenantUser};
use crate::domain::tenant_settings::{SettingsKey, TenantSettings, Vendor};
use crate::store::{StoreError, TenantLookup};

/// The variable of the cache time, in seconds (read in each function's `config.rs`).
pub const CACHE_VAR: &str = "TENANT_CACHE_SECONDS";
pub const DEFAULT_CACHE_SECONDS: u64 = 60;
/// Longest cache time accepted (a revoked credential must stop working in reasonable time).
pub const MAX_CACHE_SECONDS: u64 = 3600;
/// The cache time of `TENANT_CACHE_SECONDS` (default 60, at most 3600; 0 reads the registry
/// on every tenant's request), for the `config.rs` of each function that serves tenants.
pub fn cache_time_from_env() -> Result<Duration, crate::config::ConfigError> {
    let seconds = crate::config::number(CACHE_VAR, DEFAULT_CACHE_SECONDS, 0..=MAX_CACHE_SECONDS)?;
    Ok(Duration::from_secs(seconds))
}

/// Most tenants one instance keeps in its cache; past it, expired entries go, then all.
pub const MAX_CACHED_TENANTS: usize = 1024;

/// A tenant's caller, authenticated: what the function's work is handed.
#[derive(Debug)]
pub struct TenantCaller {
    pub id: TenantId,
    /// The tenant's own number keys (without a keyring where the function only looks up).
    pub protection: NumberProtection,
    /// The tenant's own PIN pepper.
    pub pepper: Pepper,
    /// Its own vendor settings, secrets opened (empty unless the function reads them:
    /// [`Tenancy::with_settings`]).
    pub settings: TenantSettings,
}

/// What opens a tenant's keys in this function: the stack's keyring (a function that reads
/// numbers back: the tenant's whole keys; None when it could not be read) or the stack's
/// index key (a function that only looks numbers up, never given a keyring: the tenant's
/// lookup keys).
pub enum StackKeys<'a> {
    Keyring(Option<Arc<Keyring>>),
    Index(&'a IndexKey),
}

/// A tenant's keys that did not open: retryable (503) when wrapped under a stack key version
/// this instance has not read yet (a rotation in progress), as for a sealed number.
fn unopened(id: &TenantId, what: &str, e: OpenError) -> StoreError {
    let reason = format!("tenant {id}'s {what}: {e}");
    match e {
        OpenError::UnknownVersion(_) => StoreError::Unavailable(reason),
        _ => StoreError::Failed(reason),
    }
}

/// The keys of `tenant` that `stack` opens, as the function's work uses them.
fn open_keys(
    tenant: &Tenant,
    stack: &StackKeys<'_>,
) -> Result<(NumberProtection, Pepper, SettingsKey), StoreError> {
    let id = &tenant.id;
    let failed = |e: crate::domain::protect::KeyError| {
        StoreError::Failed(format!("tenant {id}'s keys: {e}"))
    };
    match stack {
        StackKeys::Keyring(ring) => {
            let ring = ring.as_deref().ok_or_else(|| {
                StoreError::Failed("no keyring here to unwrap a tenant's keys".into())
            })?;
            let keys =
                TenantKeys::unwrap(&tenant.keys, ring, id).map_err(|e| unopened(id, "keys", e))?;
            let lookup = keys.lookup().map_err(failed)?;
            Ok((
                keys.protection().map_err(failed)?,
                lookup.pepper,
                lookup.settings,
            ))
        }
        StackKeys::Index(index) => {
            if tenant.lookup.as_str().is_empty() {
                return Err(StoreError::Failed(format!(
                    "tenant {id} has no lookup keys (registered before identity verification \
                     served tenants): run `cc-callbacks numbers rekey` once"
                )));
            }
            let keys = LookupKeys::unwrap(&tenant.lookup, index, id)
                .map_err(|e| unopened(id, "lookup keys", e))?;
            let protection = NumberProtection {
                index: keys.index,
                keyring: None,
            };
            Ok((protection, keys.pepper, keys.settings))
        }
    }
}

/// What the registry said of one tenant, as this function needs it.
struct Resolved {
    suspended: bool,
    /// (SHA-256 of the name, SHA-256 of the password) of each credential for this function.
    credentials: Vec<([u8; 32], [u8; 32])>,
    caller: Arc<TenantCaller>,
}

/// When the registry was read for a tenant, and what it said (None: no such tenant).
type Cached = (Instant, Option<Arc<Resolved>>);

/// The registry and the instance's cache of it, for one function.
pub struct Tenancy {
    function: &'static str,
    registry: Arc<dyn TenantLookup>,
    ttl: Duration,
    cache: Mutex<HashMap<TenantId, Cached>>,
    /// Which of the tenants' own settings the function reads.
    settings: SettingsUse,
}

/// Which of a tenant's settings a function is handed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SettingsUse {
    None,
    /// All, secrets opened (token exchange, the agent directory).
    All,
    /// One vendor's plain settings, no secret opened (identity verification's modes).
    PlainOf(Vendor),
}

fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

impl Tenancy {
    pub fn new(function: &'static str, registry: Arc<dyn TenantLookup>, ttl: Duration) -> Self {
        Tenancy {
            function,
            registry,
            ttl,
            cache: Mutex::new(HashMap::new()),
            settings: SettingsUse::None,
        }
    }

    /// Opening each tenant's own vendor settings too (token exchange, the agent directory):
    /// a function that does not use them never holds their secrets.
    pub fn with_settings(mut self) -> Self {
        self.settings = SettingsUse::All;
        self
    }

    /// Handing each tenant's plain settings of `vendor` only (identity verification's modes):
    /// no secret of the tenant is opened.
    pub fn with_plain_settings_of(mut self, vendor: Vendor) -> Self {
        self.settings = SettingsUse::PlainOf(vendor);
        self
    }

    /// The tenant's caller `user` is with `password`; None when not (unknown or suspended
    /// tenant, no such credential for this function, wrong password). `stack` unwraps the
    /// tenant's keys. Errors: the registry could not be read, or the keys do not open.
    pub async fn authenticate(
        &self,
        user: &TenantUser,
        password: &str,
        stack: &StackKeys<'_>,
    ) -> Result<Option<Arc<TenantCaller>>, StoreError> {
        let Some(resolved) = self.resolve(&user.tenant, stack).await? else {
            return Ok(None);
        };
        let (name, digest) = (sha256(user.name.as_bytes()), sha256(password.as_bytes()));
        let mut ok = Choice::from(0);
        for (n, d) in &resolved.credentials {
            ok |= n.ct_eq(&name) & d.ct_eq(&digest);
        }
        Ok((bool::from(ok) && !resolved.suspended).then(|| resolved.caller.clone()))
    }

    fn cached(&self, id: &TenantId) -> Option<Option<Arc<Resolved>>> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        let (at, entry) = cache.get(id)?;
        (at.elapsed() < self.ttl).then(|| entry.clone())
    }

    async fn resolve(
        &self,
        id: &TenantId,
        stack: &StackKeys<'_>,
    ) -> Result<Option<Arc<Resolved>>, StoreError> {
        if let Some(entry) = self.cached(id) {
            return Ok(entry);
        }
        let resolved = match self.registry.tenant(id).await? {
            None => None,
            Some(entry) => {
                // Not cached when the keys do not open: the stack's keys may be re-read.
                let (protection, pepper, settings_key) = open_keys(&entry.tenant, stack)?;
                let settings = match self.settings {
                    SettingsUse::All => entry
                        .settings
                        .open(&settings_key, id)
                        .map_err(|e| StoreError::Failed(format!("tenant {id}'s settings: {e}")))?,
                    SettingsUse::PlainOf(vendor) => entry.settings.plain_of(vendor),
                    SettingsUse::None => TenantSettings::default(),
                };
                let credentials = entry
                    .credentials
                    .iter()
                    .filter(|c| c.function == self.function)
                    .filter_map(|c| {
                        let mut digest = [0u8; 32];
                        hex::decode_to_slice(&c.digest, &mut digest).ok()?;
                        Some((sha256(c.user.as_bytes()), digest))
                    })
                    .collect();
                Some(Arc::new(Resolved {
                    suspended: entry.tenant.suspended,
                    credentials,
                    caller: Arc::new(TenantCaller {
                        id: id.clone(),
                        protection,
                        pepper,
                        settings,
                    }),
                }))
            }
        };
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= MAX_CACHED_TENANTS {
            let ttl = self.ttl;
            cache.retain(|_, (at, _)| at.elapsed() < ttl);
            if cache.len() >= MAX_CACHED_TENANTS {
                cache.clear();
            }
        }
        cache.insert(id.clone(), (Instant::now(), resolved.clone()));
        Ok(resolved)
    }
}

/// A tenant's own vendor settings, opened with the stack's keys `stack`: for work that
/// resolves no caller (the scheduled agent sync goes through every tenant).
pub fn open_settings(
    entry: &crate::store::TenantEntry,
    stack: &StackKeys<'_>,
) -> Result<TenantSettings, StoreError> {
    let id = &entry.tenant.id;
    let (_, _, key) = open_keys(&entry.tenant, stack)?;
    entry
        .settings
        .open(&key, id)
        .map_err(|e| StoreError::Failed(format!("tenant {id}'s settings: {e}")))
}

/// The setting a tenant's settings failed on, and why (never a value).
pub type SettingFault = Arc<(&'static str, String)>;

/// What a function builds from each tenant's settings (its vendor client), kept per instance
/// and settings revision, so a warm request builds nothing and a changed setting is used once
/// the registry's cache time has passed. A build that failed is kept too (until the settings
/// change), so a tenant with broken settings costs no rebuild per request.
pub struct BuiltPerTenant<T> {
    built: Mutex<HashMap<TenantId, (u64, Built<T>)>>,
}

/// What a tenant's settings built, or the setting they failed on.
pub type Built<T> = Result<Arc<T>, SettingFault>;

impl<T> Default for BuiltPerTenant<T> {
    fn default() -> Self {
        BuiltPerTenant {
            built: Mutex::new(HashMap::new()),
        }
    }
}

impl<T> BuiltPerTenant<T> {
    /// What `build` made of `tenant`'s current settings, and the revision it replaced (whose
    /// cached results the caller may drop).
    pub fn get(
        &self,
        tenant: &TenantCaller,
        build: impl FnOnce(&TenantSettings) -> Result<T, crate::config::ConfigError>,
    ) -> (Built<T>, Option<u64>) {
        self.get_for(&tenant.id, &tenant.settings, build)
    }

    /// The same for tenant `id` with its opened `settings` (work that serves no caller).
    pub fn get_for(
        &self,
        id: &TenantId,
        settings: &TenantSettings,
        build: impl FnOnce(&TenantSettings) -> Result<T, crate::config::ConfigError>,
    ) -> (Built<T>, Option<u64>) {
        let rev = settings.rev;
        {
            let map = self.built.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((r, b)) = map.get(id) {
                if *r == rev {
                    return (b.clone(), None);
                }
            }
        }
        let built = build(settings).map(Arc::new).map_err(|e| {
            let name = match &e {
                crate::config::ConfigError::Missing(n) => *n,
                crate::config::ConfigError::Invalid { name, .. } => *name,
            };
            Arc::new((name, e.to_string()))
        });
        let mut map = self.built.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_CACHED_TENANTS {
            map.clear();
        }
        let replaced = map
            .insert(id.clone(), (rev, built.clone()))
            .map(|(old, _)| old)
            .filter(|old| *old != rev);
        (built, replaced)
    }
}

/// The answer (503, not retryable) to a tenant's caller whose settings for `service` (say
/// "token exchange") no longer pass the checks, logged naming the tenant and the setting.
pub fn unusable_settings(
    function: &'static str,
    service: &str,
    tenant: &TenantId,
    fault: &SettingFault,
) -> crate::web::error::ApiError {
    let (name, reason) = &**fault;
    tracing::error!(
        function,
        tenant = %tenant,
        setting = name,
        error = %reason,
        "tenant settings unusable"
    );
    crate::web::error::ApiError::Unconfigured(format!(
        "{service} is not available for tenant {tenant}: its setting {name} is not valid (see \
         `cc-callbacks tenants show {tenant}`)"
    ))
}

/// The answer (503, not retryable) to a tenant's caller with no settings for `service`:
/// what to set (`names`, e.g. "FUYUN_*").
pub fn unconfigured_tenant(
    service: &str,
    tenant: &TenantId,
    names: &str,
) -> crate::web::error::ApiError {
    crate::web::error::ApiError::Unconfigured(format!(
        "{service} is not configured for tenant {tenant}: set its {names} settings with \
         `cc-callbacks tenants set {tenant} ...` (README \"Platform mode\")"
    ))
}
