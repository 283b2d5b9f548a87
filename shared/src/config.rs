//! Configuration read once at start-up from the environment into typed structs.

use std::env;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0} is not set")]
    Missing(&'static str),
    #[error("{name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

/// A set, non-empty variable, trimmed.
pub fn optional(name: &'static str) -> Option<String> {
    env::var(name)
        .ok()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

pub fn required(name: &'static str) -> Result<String, ConfigError> {
    optional(name).ok_or(ConfigError::Missing(name))
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
    let Some(raw) = optional(name) else {
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
    match optional(name).as_deref() {
        None => Ok(default),
        Some("true") => Ok(true),
        Some("false") => Ok(false),
        Some(_) => Err(ConfigError::Invalid {
            name,
            reason: "must be true or false".into(),
        }),
    }
}
