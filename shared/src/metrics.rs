//! CloudWatch metrics in the Embedded Metric Format: JSON lines on stdout that CloudWatch Logs
//! turns into metrics, so no API call and no permission beyond the function's log group.
//!
//! Code counts through the `metrics` facade (`count`, `record_ms`, `request`); in a Lambda
//! process [`install`] registers the collector of `metrics_cloudwatch_embedded` and the runner
//! writes what was counted after each invocation ([`flush`]). Elsewhere (the local gateway,
//! tests) nothing is installed and counting is a no-op.
//!
//! Namespace `cc-callbacks`; the only dimensions are `Function` and `Stage`: an outcome or a
//! reason is part of the metric's name, never a dimension, and no number, ID, account or
//! token is ever a dimension or a property. Every name is declared in [`name`], with its unit
//! in [`UNITS`]; template.yaml's alarms and dashboard use the same names (tests/it/template.rs
//! checks they exist).

use std::io::Write;
use std::sync::OnceLock;

use metrics::Unit;
use metrics_cloudwatch_embedded::Collector;

use crate::config::{self, ConfigError};

pub const NAMESPACE: &str = "cc-callbacks";

/// The stage a function serves, its `Stage` dimension (template.yaml sets it).
pub const STAGE_VAR: &str = "STAGE";

/// Every metric the functions emit.
pub mod name {
    /// 1 in the first flush of a process.
    pub const COLD_START: &str = "ColdStart";

    // Per request, by outcome class: a count and a latency (ms, from the request's arrival
    // to its answer) for each.
    pub const REQUESTS_OK: &str = "RequestsOk";
    pub const REQUESTS_CLIENT_ERROR: &str = "RequestsClientError";
    pub const REQUESTS_AUTH_FAILURE: &str = "RequestsAuthFailure";
    pub const REQUESTS_STORE_FAILURE: &str = "RequestsStoreFailure";
    pub const REQUESTS_UPSTREAM_FAILURE: &str = "RequestsUpstreamFailure";
    pub const LATENCY_OK: &str = "LatencyOk";
    pub const LATENCY_CLIENT_ERROR: &str = "LatencyClientError";
    pub const LATENCY_AUTH_FAILURE: &str = "LatencyAuthFailure";
    pub const LATENCY_STORE_FAILURE: &str = "LatencyStoreFailure";
    pub const LATENCY_UPSTREAM_FAILURE: &str = "LatencyUpstreamFailure";

    // number-mapping
    pub const NUMBERS_LOOKED_UP: &str = "NumbersLookedUp";
    pub const IDS_CREATED: &str = "IdsCreated";
    pub const UNKNOWN_IDS: &str = "UnknownIds";
    /// Numbers UIDToPhone answered (each unmasking recorded first).
    pub const NUMBERS_UNMASKED: &str = "NumbersUnmasked";
    /// UIDToPhone requests refused because their caller spent its budget of the minute
    /// (`UNMASK_MAX_PER_MINUTE`).
    pub const UNMASK_REQUESTS_REFUSED: &str = "UnmaskRequestsRefused";

    // identity-verification: one count per result reason, and the lockouts begun.
    pub const VERIFY_OK: &str = "VerifyOk";
    pub const VERIFY_WRONG_PIN: &str = "VerifyWrongPin";
    /// A wrong value of a factor other than the PIN (`wrong_id_last6`, `wrong_birth_date`,
    /// `wrong_card_last4`).
    pub const VERIFY_WRONG_FACTOR: &str = "VerifyWrongFactor";
    /// A `verifyTypeCode` no mode names.
    pub const VERIFY_UNKNOWN_MODE: &str = "VerifyUnknownMode";
    pub const VERIFY_LOCKED: &str = "VerifyLocked";
    pub const VERIFY_UNKNOWN_CUSTOMER: &str = "VerifyUnknownCustomer";
    pub const VERIFY_UNKNOWN_AGENT: &str = "VerifyUnknownAgent";
    pub const VERIFY_BAD_REQUEST: &str = "VerifyBadRequest";
    pub const VERIFY_UNAVAILABLE: &str = "VerifyUnavailable";
    pub const LOCKOUTS_STARTED: &str = "LockoutsStarted";

    // token-exchange
    pub const TOKEN_CACHE_HITS: &str = "TokenCacheHits";
    pub const TOKEN_CACHE_MISSES: &str = "TokenCacheMisses";
    pub const UPSTREAM_EXCHANGES: &str = "UpstreamExchanges";
    pub const UPSTREAM_LATENCY: &str = "UpstreamLatency";
    pub const UPSTREAM_REFUSED: &str = "UpstreamRefused";
    pub const UPSTREAM_TIMEOUTS: &str = "UpstreamTimeouts";
    pub const UPSTREAM_ERRORS: &str = "UpstreamErrors";

    // agent-sync (the scheduled role)
    pub const AGENTS_ADDED: &str = "AgentsAdded";
    pub const AGENTS_UPDATED: &str = "AgentsUpdated";
    pub const AGENTS_DEACTIVATED: &str = "AgentsDeactivated";
    pub const SYNC_SUCCEEDED: &str = "SyncSucceeded";
    pub const SYNC_FAILURES: &str = "SyncFailures";
    /// Platform tenants whose sync failed in a run and last succeeded longer ago than the
    /// stale time (or never).
    pub const SYNC_STALE_TENANTS: &str = "SyncStaleTenants";
}

/// Every metric name with its CloudWatch unit.
pub const UNITS: &[(&str, Unit)] = {
    use name::*;
    use Unit::{Count, Milliseconds};
    &[
        (COLD_START, Count),
        (REQUESTS_OK, Count),
        (REQUESTS_CLIENT_ERROR, Count),
        (REQUESTS_AUTH_FAILURE, Count),
        (REQUESTS_STORE_FAILURE, Count),
        (REQUESTS_UPSTREAM_FAILURE, Count),
        (LATENCY_OK, Milliseconds),
        (LATENCY_CLIENT_ERROR, Milliseconds),
        (LATENCY_AUTH_FAILURE, Milliseconds),
        (LATENCY_STORE_FAILURE, Milliseconds),
        (LATENCY_UPSTREAM_FAILURE, Milliseconds),
        (NUMBERS_LOOKED_UP, Count),
        (IDS_CREATED, Count),
        (UNKNOWN_IDS, Count),
        (NUMBERS_UNMASKED, Count),
        (UNMASK_REQUESTS_REFUSED, Count),
        (VERIFY_OK, Count),
        (VERIFY_WRONG_PIN, Count),
        (VERIFY_WRONG_FACTOR, Count),
        (VERIFY_UNKNOWN_MODE, Count),
        (VERIFY_LOCKED, Count),
        (VERIFY_UNKNOWN_CUSTOMER, Count),
        (VERIFY_UNKNOWN_AGENT, Count),
        (VERIFY_BAD_REQUEST, Count),
        (VERIFY_UNAVAILABLE, Count),
        (LOCKOUTS_STARTED, Count),
        (TOKEN_CACHE_HITS, Count),
        (TOKEN_CACHE_MISSES, Count),
        (UPSTREAM_EXCHANGES, Count),
        (UPSTREAM_LATENCY, Milliseconds),
        (UPSTREAM_REFUSED, Count),
        (UPSTREAM_TIMEOUTS, Count),
        (UPSTREAM_ERRORS, Count),
        (AGENTS_ADDED, Count),
        (AGENTS_UPDATED, Count),
        (AGENTS_DEACTIVATED, Count),
        (SYNC_SUCCEEDED, Count),
        (SYNC_FAILURES, Count),
        (SYNC_STALE_TENANTS, Count),
    ]
};

/// A request's outcome class (`ApiError::class` gives an error's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Ok,
    /// A request we refuse (400, 404, 405): the caller's to fix.
    ClientError,
    /// Missing or wrong credentials (401).
    AuthFailure,
    /// The store failed or did not answer in time.
    StoreFailure,
    /// A vendor we call failed, refused or did not answer in time.
    UpstreamFailure,
}

impl Class {
    /// The count and latency metrics of this class.
    pub fn names(self) -> (&'static str, &'static str) {
        use name::*;
        match self {
            Class::Ok => (REQUESTS_OK, LATENCY_OK),
            Class::ClientError => (REQUESTS_CLIENT_ERROR, LATENCY_CLIENT_ERROR),
            Class::AuthFailure => (REQUESTS_AUTH_FAILURE, LATENCY_AUTH_FAILURE),
            Class::StoreFailure => (REQUESTS_STORE_FAILURE, LATENCY_STORE_FAILURE),
            Class::UpstreamFailure => (REQUESTS_UPSTREAM_FAILURE, LATENCY_UPSTREAM_FAILURE),
        }
    }
}

static COLLECTOR: OnceLock<&'static Collector> = OnceLock::new();

/// Registers the EMF collector for this process (dimensions `Function` = `function`, `Stage`
/// from `STAGE`, "local" when unset) and counts the cold start. Called once, before init, by
/// the Lambda entry points; a second call changes nothing.
pub fn install(function: &'static str) -> Result<(), ConfigError> {
    if COLLECTOR.get().is_some() {
        return Ok(());
    }
    let stage = config::optional(STAGE_VAR).unwrap_or_else(|| "local".into());
    if !valid_stage(&stage) {
        return Err(ConfigError::Invalid {
            name: STAGE_VAR,
            reason: "must be 1 to 32 letters, digits or '-'".into(),
        });
    }
    let collector = metrics_cloudwatch_embedded::Builder::new()
        .cloudwatch_namespace(NAMESPACE)
        .with_dimension("Function", function)
        .with_dimension("Stage", stage)
        .init()
        .map_err(|e| ConfigError::Invalid {
            name: STAGE_VAR,
            reason: format!("metrics: {e}"),
        })?;
    // Milliseconds are distributions (`record_ms`), the rest counters (`count`).
    for (name, unit) in UNITS {
        match unit {
            Unit::Milliseconds => metrics::describe_histogram!(*name, *unit, ""),
            _ => metrics::describe_counter!(*name, *unit, ""),
        }
    }
    let _ = COLLECTOR.set(collector);
    count(name::COLD_START, 1);
    Ok(())
}

/// A stage name as a dimension value: 1 to 32 letters, digits or '-'.
fn valid_stage(stage: &str) -> bool {
    (1..=32).contains(&stage.len())
        && stage
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// Adds `n` to the counter `name` (one of [`name`]).
pub fn count(name: &'static str, n: u64) {
    if n > 0 {
        metrics::counter!(name).increment(n);
    }
}

/// Records one value, in milliseconds, of the distribution `name`.
pub fn record_ms(name: &'static str, ms: f64) {
    metrics::histogram!(name).record(ms);
}

/// One request's count and latency, under its class.
pub fn request(class: Class, latency_ms: f64) {
    let (requests, latency) = class.names();
    count(requests, 1);
    record_ms(latency, latency_ms);
}

/// Writes what was counted since the last flush to stdout, one EMF document per line, in one
/// write (so that no log line lands inside it). Nothing when no collector is installed.
pub fn flush() {
    let mut buffer = Vec::with_capacity(1024);
    flush_into(&mut buffer);
    if !buffer.is_empty() {
        let _ = std::io::stdout().lock().write_all(&buffer);
    }
}

/// [`flush`], into `buffer` (the benchmark's sink).
pub fn flush_into(buffer: &mut Vec<u8>) {
    if let Some(collector) = COLLECTOR.get() {
        if collector.flush(&mut *buffer).is_err() {
            buffer.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_are_checked() {
        for ok in ["dev", "prod", "local", "eu-west-1-blue"] {
            assert!(valid_stage(ok), "{ok}");
        }
        for bad in ["", "a b", "dev\n", "staging/1", &"x".repeat(33)] {
            assert!(!valid_stage(bad), "{bad:?}");
        }
    }

    #[test]
    fn every_name_has_one_unit() {
        let mut names: Vec<&str> = UNITS.iter().map(|(n, _)| *n).collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(names.len(), before, "a metric is declared twice");
        for class in [
            Class::Ok,
            Class::ClientError,
            Class::AuthFailure,
            Class::StoreFailure,
            Class::UpstreamFailure,
        ] {
            let (count, latency) = class.names();
            assert!(names.contains(&count) && names.contains(&latency));
        }
    }
}
