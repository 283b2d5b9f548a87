//! Configuration read once at start-up from the environment into typed structs.

use std::env;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0} is not set")]
    Missing(&'static str),
    #[error("{name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

/// Where settings are read from: the process's environment, or a map of the same names (a
/// platform-mode tenant's own settings, `tenants set`), so that both are read and checked by
/// the same code.
#[derive(Debug, Clone, Copy)]
pub enum Vars<'a> {
    Env,
    Map(&'a std::collections::BTreeMap<String, String>),
}

impl Vars<'_> {
    /// A set, non-empty setting, trimmed.
    pub fn optional(&self, name: &'static str) -> Option<String> {
        let raw = match self {
            Vars::Env => env::var(name).ok(),
            Vars::Map(map) => map.get(name).cloned(),
        };
        raw.map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
    }

    pub fn required(&self, name: &'static str) -> Result<String, ConfigError> {
        self.optional(name).ok_or(ConfigError::Missing(name))
    }

    /// A number with a default, rejected when it does not parse or falls outside `range`.
    pub fn number<T>(
        &self,
        name: &'static str,
        default: T,
        range: std::ops::RangeInclusive<T>,
    ) -> Result<T, ConfigError>
    where
        T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
    {
        let Some(raw) = self.optional(name) else {
            return Ok(default);
        };
        let v: T = raw.parse().map_err(|_| ConfigError::Invalid {
            name,
            reason: format!("'{raw}' is not a number"),
        })?;
        if !range.contains(&v) {
            return Err(ConfigError::Invalid {
                name,
                reason: format!("{v} is outside {}..={}", range.start(), range.end()),
            });
        }
        Ok(v)
    }

    /// A boolean setting: `true` or `false`, else the default.
    pub fn flag(&self, name: &'static str, default: bool) -> Result<bool, ConfigError> {
        match self.optional(name).as_deref() {
            None => Ok(default),
            Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(_) => Err(ConfigError::Invalid {
                name,
                reason: "must be true or false".into(),
            }),
        }
    }
}

/// A set, non-empty variable, trimmed.
pub fn optional(name: &'static str) -> Option<String> {
    Vars::Env.optional(name)
}

pub fn required(name: &'static str) -> Result<String, ConfigError> {
    Vars::Env.required(name)
}

/// A number with a default, rejected when it does not parse or falls outside `range`.
pub fn number<T>(
    name: &'static str,
    default: T,
    range: std::ops::RangeInclusive<T>,
) -> Result<T, ConfigError>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
{
    Vars::Env.number(name, default, range)
}

/// A comma-separated list (empty when unset).
pub fn list(name: &'static str) -> Vec<String> {
    optional(name)
        .map(|v| {
            v.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

/// True inside the Lambda execution environment (the runtime API is only set there, or by
/// an emulator such as `cargo lambda watch`).
pub fn in_lambda() -> bool {
    env::var_os("AWS_LAMBDA_RUNTIME_API").is_some()
}

/// A boolean setting: `true` or `false`, else the default.
pub fn flag(name: &'static str, default: bool) -> Result<bool, ConfigError> {
    Vars::Env.flag(name, default)
}

/// Where the stores live, chosen once at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLocation {
    /// `TABLE_NAME` is set.
    DynamoDb { table: String },
    /// Local runs without `TABLE_NAME`: a SQLite file under the data directory.
    Embedded { data_dir: std::path::PathBuf },
}

impl StoreLocation {
    /// DynamoDB when `TABLE_NAME` is set; otherwise the embedded store in `data_dir`, except
    /// inside Lambda, where a missing `TABLE_NAME` is a configuration error.
    pub fn from_env(data_dir: &std::path::Path) -> Result<StoreLocation, ConfigError> {
        match optional("TABLE_NAME") {
            Some(table) => Ok(StoreLocation::DynamoDb { table }),
            None if in_lambda() => Err(ConfigError::Missing("TABLE_NAME")),
            None => Ok(StoreLocation::Embedded {
                data_dir: data_dir.to_path_buf(),
            }),
        }
    }
}

impl From<crate::domain::phone::RegionError> for ConfigError {
    fn from(e: crate::domain::phone::RegionError) -> Self {
        ConfigError::Invalid {
            name: e.setting,
            reason: e.reason,
        }
    }
}

/// The phone-number normaliser from `DEFAULT_COUNTRY` (default `CN`) and `PHONE_REGIONS`
/// (comma-separated, default none).
pub fn phone_normalizer() -> Result<crate::domain::phone::PhoneNormalizer, ConfigError> {
    let country = optional("DEFAULT_COUNTRY").unwrap_or_else(|| "CN".into());
    Ok(crate::domain::phone::PhoneNormalizer::new(
        &country,
        &list("PHONE_REGIONS"),
    )?)
}

/// A new file at `path`, readable by the owner only; `AlreadyExists` if there is one.
pub fn create_private(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

/// Creates `path` readable by the owner only with `text`; leaves a file already there as it
/// is (another process created it first).
pub fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    match create_private(path) {
        Ok(mut f) => {
            f.write_all(text.as_bytes())?;
            f.sync_all()
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Whether the store this process uses is a local one (the embedded store, or DynamoDB at a
/// loopback endpoint: DynamoDB Local), for which keys may be generated on first use. Against
/// a table in AWS, a generated key would be a different key from the stack's: every number
/// looked up or imported with it would be a new customer.
pub fn store_is_local() -> bool {
    if optional("TABLE_NAME").is_none() {
        return true;
    }
    let endpoint = optional("AWS_ENDPOINT_URL_DYNAMODB")
        .or_else(|| optional("AWS_ENDPOINT_URL"))
        .unwrap_or_default();
    let authority = endpoint
        .split("://")
        .nth(1)
        .unwrap_or_default()
        .split('/')
        .next()
        .unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Creates `dir` (and its parents) if it does not exist; the directory itself with mode 0700.
/// One that exists is left as it is (it may be one the operator shares on purpose).
pub fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Narrows the file at `path` to mode 0600 if others may read or write it; returns whether
/// it did. Nothing there is nothing to do.
pub fn narrow_to_owner(path: &std::path::Path) -> std::io::Result<bool> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = match std::fs::symlink_metadata(path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e),
        };
        if meta.is_file() && meta.permissions().mode() & 0o077 != 0 {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
            return Ok(true);
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(false)
}

/// A local secret file's text (a key, the PIN pepper), or None when there is no file. A file
/// others may read is repaired to 0600 with a warning (it is still the key the data needs,
/// so refusing it would stop the service for no gain; the warning says to find out who read
/// it). Any other failure names the file.
pub fn read_local_secret(
    path: &std::path::Path,
    name: &'static str,
) -> Result<Option<String>, ConfigError> {
    let at = |e: &dyn std::fmt::Display| invalid(name, format!("{}: {e}", path.display()));
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text.trim().to_string(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(at(&format!(
                "{e}: restore the file from a backup of the data directory"
            )))
        }
    };
    if narrow_to_owner(path).map_err(|e| at(&e))? {
        crate::logging::warn_operator(&format!(
            "{} was readable by other users: its mode is now 0600 (whoever could read it may \
             hold a copy of the key)",
            path.display()
        ));
    }
    if text.is_empty() {
        return Err(at(
            &"the file is empty: restore it from a backup of the data directory",
        ));
    }
    Ok(Some(text))
}

/// Creates the local secret file at `path` (mode 0600, its directory 0700) with what
/// `generate` makes, unless another process created it first, and returns the file's text.
/// The caller decides first whether a key may be generated at all.
pub fn create_local_secret(
    path: &std::path::Path,
    name: &'static str,
    generate: impl FnOnce() -> Result<String, ConfigError>,
) -> Result<String, ConfigError> {
    let at = |e: &dyn std::fmt::Display| invalid(name, format!("{}: {e}", path.display()));
    if let Some(dir) = path.parent() {
        create_private_dir(dir).map_err(|e| at(&e))?;
    }
    write_private(path, &generate()?).map_err(|e| at(&e))?;
    std::fs::read_to_string(path)
        .map(|t| t.trim().to_string())
        .map_err(|e| at(&e))
}

fn invalid(name: &'static str, reason: impl std::fmt::Display) -> ConfigError {
    ConfigError::Invalid {
        name,
        reason: reason.to_string(),
    }
}
