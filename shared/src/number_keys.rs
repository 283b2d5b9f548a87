//! The number keys (`domain::protect`), read once at init: each from its Secrets Manager secret
//! when its `*_SECRET_ARN` variable is set (Lambda: the stack generates both), else from its
//! variable, else (outside Lambda only) from a file in the data directory, generated with mode
//! 0600 only for a store that holds nothing it protects (`local_key`: the one rule for every
//! local key file). The index key and the keyring are separate secrets, so identity
//! verification, which only looks numbers up, is never given the encryption keys.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::{self, ConfigError};
use crate::domain::protect::{generate_key_text, IndexKey, Keyring, KeyringText, NumberProtection};
use crate::resources::Resources;
use crate::store::{KeyUse, KeyedRecords};

/// Where keys are read from: the data directory (outside Lambda), the AWS configuration for
/// Secrets Manager, and the store the keys protect (asked, where a key file is missing,
/// whether a new key may be generated). A function's `Resources` give all three.
#[derive(Clone, Copy, Default)]
pub struct KeyPlace<'a> {
    pub data_dir: Option<&'a Path>,
    #[cfg(any(feature = "secrets", feature = "dynamodb"))]
    pub sdk: Option<&'a aws_config::SdkConfig>,
    /// None: nothing can tell whether the store is empty, so no key is generated.
    pub keyed: Option<&'a dyn KeyedRecords>,
}

impl<'a> From<&'a Resources> for KeyPlace<'a> {
    fn from(res: &'a Resources) -> Self {
        KeyPlace {
            data_dir: res.data_dir.as_deref(),
            #[cfg(any(feature = "secrets", feature = "dynamodb"))]
            sdk: res.sdk.as_ref(),
            keyed: res.keyed.as_deref(),
        }
    }
}

pub const INDEX_KEY_ARN_VAR: &str = "NUMBER_INDEX_KEY_SECRET_ARN";
pub const INDEX_KEY_VAR: &str = "NUMBER_INDEX_KEY";
pub const INDEX_KEY_FILE: &str = "number-index-key";
pub const KEYRING_ARN_VAR: &str = "NUMBER_KEYRING_SECRET_ARN";
pub const KEYRING_VAR: &str = "NUMBER_KEYRING";
pub const KEYRING_FILE: &str = "number-keyring.json";

/// Where one key's text comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    Secret(String),
    Variable,
    File(PathBuf),
}

fn invalid(name: &'static str, reason: impl std::fmt::Display) -> ConfigError {
    ConfigError::Invalid {
        name,
        reason: reason.to_string(),
    }
}

/// Where the key of `arn_var`/`var`/`file` is read from, as init would.
pub fn source(
    data_dir: Option<&Path>,
    arn_var: &'static str,
    var: &'static str,
    file: &str,
) -> Result<KeySource, ConfigError> {
    if let Some(arn) = config::optional(arn_var) {
        return Ok(KeySource::Secret(arn));
    }
    if config::optional(var).is_some() {
        return Ok(KeySource::Variable);
    }
    match data_dir {
        Some(dir) if !config::in_lambda() => Ok(KeySource::File(dir.join(file))),
        _ => Err(ConfigError::Missing(arn_var)),
    }
}

async fn text(
    res: KeyPlace<'_>,
    what: KeyUse,
    arn_var: &'static str,
    var: &'static str,
    file: &str,
    generate: impl FnOnce() -> Result<String, ConfigError>,
) -> Result<String, ConfigError> {
    match source(res.data_dir, arn_var, var, file)? {
        KeySource::Secret(_) => secret(res, arn_var).await,
        KeySource::Variable => config::required(var),
        KeySource::File(path) => local_key(res, what, &path, var, arn_var, generate).await,
    }
}

/// A key kept in a local file: its text, or, where there is no file, a key made by `generate`
/// (mode 0600), but only for a local store that holds nothing the key protects. Over existing
/// data a new key would give known customers second IDs, leave sealed numbers unopenable or
/// make every PIN wrong, so then every command and the gateway refuse to start, naming the
/// missing file and what to do. The one rule for every local key file.
pub async fn local_key(
    place: KeyPlace<'_>,
    what: KeyUse,
    path: &Path,
    var: &'static str,
    arn_var: &'static str,
    generate: impl FnOnce() -> Result<String, ConfigError>,
) -> Result<String, ConfigError> {
    if let Some(text) = config::read_local_secret(path, var)? {
        return Ok(text);
    }
    if !config::store_is_local() {
        return Err(invalid(
            arn_var,
            "not set, and the table is not a local one: set it to the stage's secret (see the \
             stack's outputs); secrets are only generated for a local store",
        ));
    }
    let cannot_tell = |why: String| {
        invalid(
            var,
            format!(
                "{} is missing and {why}, so no key was generated: restore the file from a \
                 backup of the data directory (or set {var})",
                path.display()
            ),
        )
    };
    let holds = match place.keyed {
        Some(store) => store.holds_keyed(what).await.map_err(|e| {
            cannot_tell(format!(
                "the store cannot be asked whether it holds data the key protects ({e})"
            ))
        })?,
        None => return Err(cannot_tell("this process has no store to ask".into())),
    };
    if holds {
        let lost = match what {
            KeyUse::IndexKey => {
                "without it no stored customer can be found, and a new key would give known \
                 customers second IDs and make their PINs unknown"
            }
            KeyUse::Keyring => {
                "without it no stored number opens, and numbers sealed under a new key would \
                 never open under the restored one"
            }
            KeyUse::Pepper => {
                "without it no enrolled PIN matches and customers would lock \
                 themselves out"
            }
        };
        return Err(invalid(
            var,
            format!(
                "{} is missing, and the store holds data this key protects ({lost}): restore \
                 the file from a backup of the data directory (or set {var}); no new key was \
                 generated",
                path.display()
            ),
        ));
    }
    config::create_local_secret(path, var, generate)
}

#[cfg(feature = "secrets")]
async fn secret(res: KeyPlace<'_>, arn_var: &'static str) -> Result<String, ConfigError> {
    crate::aws::configured_secret(res.sdk, arn_var)
        .await?
        .ok_or(ConfigError::Missing(arn_var))
}

#[cfg(not(feature = "secrets"))]
async fn secret(_: KeyPlace<'_>, arn_var: &'static str) -> Result<String, ConfigError> {
    Err(invalid(arn_var, "this build cannot read Secrets Manager"))
}

/// The index key alone (identity verification).
pub async fn index_key(res: impl Into<KeyPlace<'_>>) -> Result<IndexKey, ConfigError> {
    let text = text(
        res.into(),
        KeyUse::IndexKey,
        INDEX_KEY_ARN_VAR,
        INDEX_KEY_VAR,
        INDEX_KEY_FILE,
        || generate_key_text().map_err(|e| invalid(INDEX_KEY_VAR, e)),
    )
    .await?;
    IndexKey::from_text(&text).map_err(|e| invalid(INDEX_KEY_VAR, e))
}

/// The keyring's text.
pub async fn keyring_text(res: impl Into<KeyPlace<'_>>) -> Result<KeyringText, ConfigError> {
    let text = text(
        res.into(),
        KeyUse::Keyring,
        KEYRING_ARN_VAR,
        KEYRING_VAR,
        KEYRING_FILE,
        || {
            KeyringText::generate()
                .map(|k| k.to_json())
                .map_err(|e| invalid(KEYRING_VAR, e))
        },
    )
    .await?;
    KeyringText::parse(&text).map_err(|e| invalid(KEYRING_VAR, e))
}

/// The index key and the keyring (number mapping, the CLI), read concurrently.
pub async fn protection(res: impl Into<KeyPlace<'_>>) -> Result<NumberProtection, ConfigError> {
    let res = res.into();
    let (index, ring) = tokio::join!(index_key(res), keyring_text(res));
    let index = index?;
    let keyring = Keyring::new(&ring?, &index).map_err(|e| invalid(KEYRING_VAR, e))?;
    Ok(NumberProtection {
        index,
        keyring: Some(Arc::new(keyring)),
    })
}

/// Adds a generated key as the keyring's next version and makes it current, where the
/// keyring is kept: its file (replaced atomically, mode 0600) or its secret (a new secret
/// version). Returns the new version.
pub async fn add_key_version(res: impl Into<KeyPlace<'_>>) -> Result<u32, ConfigError> {
    let res = res.into();
    match source(res.data_dir, KEYRING_ARN_VAR, KEYRING_VAR, KEYRING_FILE)? {
        KeySource::File(path) => add_key_version_to_file(res, &path).await,
        KeySource::Variable => Err(invalid(
            KEYRING_VAR,
            "the keyring is given in the environment: add the version there \
             (or keep it in a file or Secrets Manager)",
        )),
        KeySource::Secret(arn) => {
            let mut ring = keyring_text(res).await?;
            let version = ring.add_version().map_err(|e| invalid(KEYRING_VAR, e))?;
            put_secret(res, &arn, &ring.to_json(), version).await?;
            Ok(version)
        }
    }
}

/// The keyring file's next version. The new file is written beside it and renamed over it;
/// being created exclusively, it is also the lock that keeps two `add-key` runs from each
/// adding a different key as the same version (numbers sealed with the lost one would never
/// open again). An interrupted run leaves it behind, and the next one says so.
async fn add_key_version_to_file(res: KeyPlace<'_>, path: &Path) -> Result<u32, ConfigError> {
    use std::io::Write;
    let tmp = path.with_extension("json.new");
    let mut file = config::create_private(&tmp).map_err(|e| {
        let reason = match e.kind() {
            std::io::ErrorKind::AlreadyExists => format!(
                "{} exists: another add-key is running, or one was interrupted (remove the \
                 file if none is running, then run add-key again)",
                tmp.display()
            ),
            _ => format!("{}: {e}", tmp.display()),
        };
        invalid(KEYRING_VAR, reason)
    })?;
    let added = async {
        let mut ring = keyring_text(res).await?;
        let version = ring.add_version().map_err(|e| invalid(KEYRING_VAR, e))?;
        file.write_all(ring.to_json().as_bytes())
            .and_then(|()| file.sync_all())
            .and_then(|()| std::fs::rename(&tmp, path))
            .map_err(|e| invalid(KEYRING_VAR, format!("{}: {e}", path.display())))?;
        Ok(version)
    }
    .await;
    if added.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    added
}

/// The `ClientRequestToken` of the secret version holding keyring version `version`. Secrets
/// Manager refuses a second value under one token, so two `add-key` runs that both read the
/// same keyring cannot each store a different key as the same version (numbers sealed with the
/// lost one would never open again): the second fails, and a retry reads the first's keyring.
#[cfg(feature = "secrets")]
fn keyring_version_token(version: u32) -> String {
    format!("cc-callbacks-number-keyring-v{version:010}")
}

#[cfg(feature = "secrets")]
async fn put_secret(
    res: KeyPlace<'_>,
    arn: &str,
    value: &str,
    version: u32,
) -> Result<(), ConfigError> {
    use aws_sdk_secretsmanager::operation::put_secret_value::PutSecretValueError;
    let sdk = res
        .sdk
        .ok_or_else(|| invalid(KEYRING_ARN_VAR, "no AWS configuration was loaded"))?;
    aws_sdk_secretsmanager::Client::new(sdk)
        .put_secret_value()
        .secret_id(arn)
        .secret_string(value)
        .client_request_token(keyring_version_token(version))
        .send()
        .await
        .map_err(|e| {
            let reason = match e.as_service_error() {
                Some(PutSecretValueError::ResourceExistsException(_)) => format!(
                    "version {version} of the keyring was already stored with another key \
                     (another add-key ran meanwhile, or the secret was set back by hand): \
                     nothing changed; check the secret's current value, then run add-key again"
                ),
                _ => format!(
                    "the new version could not be stored: {}",
                    aws_sdk_secretsmanager::error::DisplayErrorContext(&e)
                ),
            };
            invalid(KEYRING_ARN_VAR, reason)
        })?;
    Ok(())
}

#[cfg(not(feature = "secrets"))]
async fn put_secret(_: KeyPlace<'_>, _: &str, _: &str, _: u32) -> Result<(), ConfigError> {
    Err(invalid(
        KEYRING_ARN_VAR,
        "this build cannot write Secrets Manager",
    ))
}

/// Most often a process re-reads the keys when it meets a key version it does not hold.
const MIN_RELOAD_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// The number keys of a serving process, re-read from where they came from: at most every
/// `refresh` (so that a key version added while the functions serve is used for new writes
/// within that time), and at once (at most once a second) when a stored number names a
/// version this process does not hold yet, so that it reads what newer processes wrote.
/// Keys that cannot be re-read are kept as they were (logged).
pub struct LiveKeys {
    data_dir: Option<PathBuf>,
    #[cfg(any(feature = "secrets", feature = "dynamodb"))]
    sdk: Option<aws_config::SdkConfig>,
    keyed: Option<Arc<dyn KeyedRecords>>,
    refresh: Option<std::time::Duration>,
    current: std::sync::RwLock<Arc<NumberProtection>>,
    loaded_at: tokio::sync::Mutex<std::time::Instant>,
    /// When a stored number last made this process re-read its keys.
    forced_at: tokio::sync::Mutex<Option<std::time::Instant>>,
}

impl LiveKeys {
    /// Reads the keys as `protection` does, remembering where from.
    pub async fn load(
        res: &Resources,
        refresh: Option<std::time::Duration>,
    ) -> Result<LiveKeys, ConfigError> {
        let keys = protection(res).await?;
        Ok(LiveKeys {
            data_dir: res.data_dir.clone(),
            #[cfg(any(feature = "secrets", feature = "dynamodb"))]
            sdk: res.sdk.clone(),
            keyed: res.keyed.clone(),
            refresh,
            current: std::sync::RwLock::new(Arc::new(keys)),
            loaded_at: tokio::sync::Mutex::new(std::time::Instant::now()),
            forced_at: tokio::sync::Mutex::new(None),
        })
    }

    /// Keys that are never re-read (tests, tools).
    pub fn fixed(keys: NumberProtection) -> LiveKeys {
        LiveKeys {
            data_dir: None,
            #[cfg(any(feature = "secrets", feature = "dynamodb"))]
            sdk: None,
            keyed: None,
            refresh: None,
            current: std::sync::RwLock::new(Arc::new(keys)),
            loaded_at: tokio::sync::Mutex::new(std::time::Instant::now()),
            forced_at: tokio::sync::Mutex::new(None),
        }
    }

    pub fn get(&self) -> Arc<NumberProtection> {
        match self.current.read() {
            Ok(keys) => keys.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn place(&self) -> KeyPlace<'_> {
        KeyPlace {
            data_dir: self.data_dir.as_deref(),
            #[cfg(any(feature = "secrets", feature = "dynamodb"))]
            sdk: self.sdk.as_ref(),
            keyed: self.keyed.as_deref(),
        }
    }

    /// Re-reads the keys if `refresh` has passed since they were read.
    pub async fn refresh_if_due(&self) -> Arc<NumberProtection> {
        if let Some(every) = self.refresh {
            if let Ok(mut at) = self.loaded_at.try_lock() {
                if at.elapsed() >= every {
                    self.reload_locked(&mut at).await;
                }
            }
        }
        self.get()
    }

    /// Re-reads the keys now: a stored number names a version these keys do not hold. At
    /// most once a second, so that a forged version in the store cannot turn every request
    /// into a read of the secrets.
    pub async fn reload(&self) -> Arc<NumberProtection> {
        let mut forced = self.forced_at.lock().await;
        let due = forced.is_none_or(|t| t.elapsed() >= MIN_RELOAD_INTERVAL);
        if due && (self.data_dir.is_some() || self.has_sdk()) {
            *forced = Some(std::time::Instant::now());
            let mut at = self.loaded_at.lock().await;
            self.reload_locked(&mut at).await;
        }
        drop(forced);
        self.get()
    }

    #[cfg(any(feature = "secrets", feature = "dynamodb"))]
    fn has_sdk(&self) -> bool {
        self.sdk.is_some()
    }

    #[cfg(not(any(feature = "secrets", feature = "dynamodb")))]
    fn has_sdk(&self) -> bool {
        false
    }

    async fn reload_locked(&self, at: &mut std::time::Instant) {
        *at = std::time::Instant::now();
        // Boxed: the SDK's futures are deep, and this sits inside every request's future.
        match Box::pin(protection(self.place())).await {
            Ok(keys) => {
                if let Ok(mut current) = self.current.write() {
                    *current = Arc::new(keys);
                }
            }
            Err(e) => tracing::warn!(error = %e, "number keys not re-read; kept as they were"),
        }
    }
}
