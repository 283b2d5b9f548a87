//! Storage: one trait per record family, each with a DynamoDB backend (Lambda) and an embedded
//! SQLite backend (local gateway, CLI), both run through the same contract tests.

use std::collections::HashMap;

use async_trait::async_trait;

use crate::audit::AuditRecord;
use crate::cec::{Agent, SyncState};
use crate::identity::{Counters, PinDigest, PinState, RecordQuery, VerificationRecord};
use crate::phone::PhoneKey;
use crate::uid::Uid;

#[cfg(feature = "dynamodb")]
pub mod dynamo;
#[cfg(feature = "embedded")]
pub mod embedded;

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// Throttling, network trouble, timeouts: the caller may retry.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// Anything else (bad table, permissions, corrupt data).
    #[error("storage failed: {0}")]
    Failed(String),
}

/// How long one request may spend on the store in all (`STORE_BUDGET_MS`, each function with
/// its own default), its calls and their retries together: past it the request is answered in
/// its caller's "unavailable" format, well before the function's own timeout (10 s), so that a
/// stalled store never leaves a caller waiting for API Gateway's bare 5xx.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreBudget(std::time::Duration);

impl StoreBudget {
    pub const VAR: &'static str = "STORE_BUDGET_MS";

    pub fn from_env(default_ms: u64) -> Result<StoreBudget, crate::config::ConfigError> {
        let ms = crate::config::number(Self::VAR, default_ms, 50..=9_000)?;
        Ok(StoreBudget(std::time::Duration::from_millis(ms)))
    }

    pub fn from_millis(ms: u64) -> StoreBudget {
        StoreBudget(std::time::Duration::from_millis(ms))
    }

    /// `work` (a request's store calls), or `Unavailable` once the budget is spent. Work cut
    /// off is dropped: a write in flight may still land, so every write is safe to repeat
    /// (conditional, or keyed by what it writes).
    pub async fn run<T, E: From<StoreError>>(
        self,
        work: impl std::future::Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        match tokio::time::timeout(self.0, work).await {
            Ok(result) => result,
            Err(_) => Err(E::from(StoreError::Unavailable(format!(
                "no answer within the store budget of {} ms",
                self.0.as_millis()
            )))),
        }
    }
}

/// Largest batch a caller may pass to one call of [`MappingStore`] (DynamoDB's BatchGetItem
/// limit, so that a batch of known numbers is one round trip).
pub const MAX_BATCH: usize = 100;

/// The two directions of the number <-> user ID mapping.
#[async_trait]
pub trait MappingStore: Send + Sync {
    /// The user IDs of those of `phones` that have one.
    async fn uids_of(&self, phones: &[PhoneKey]) -> Result<HashMap<PhoneKey, Uid>, StoreError>;

    /// The numbers of those of `uids` that are known.
    async fn phones_of(&self, uids: &[Uid]) -> Result<HashMap<Uid, PhoneKey>, StoreError>;

    /// Gives each of `phones` a new random user ID unless it has one already (perhaps given a
    /// moment ago by a concurrent request), and returns the ID each number ends up with.
    /// Every number gets exactly one ID and no ID is given to two numbers.
    async fn create_uids(&self, phones: &[PhoneKey]) -> Result<HashMap<PhoneKey, Uid>, StoreError>;
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
    pub fn from_env(
        data_dir: &std::path::Path,
    ) -> Result<StoreLocation, crate::config::ConfigError> {
        match crate::config::optional("TABLE_NAME") {
            Some(table) => Ok(StoreLocation::DynamoDb { table }),
            None if crate::config::in_lambda() => {
                Err(crate::config::ConfigError::Missing("TABLE_NAME"))
            }
            None => Ok(StoreLocation::Embedded {
                data_dir: data_dir.to_path_buf(),
            }),
        }
    }
}

/// Seconds since the Unix epoch.
pub fn now_epoch() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Enrolled PINs, lockout counters and verification records.
#[async_trait]
pub trait IdentityStore: Send + Sync {
    /// The customer's PIN state and, when number mapping knows the number, its user ID:
    /// one read.
    async fn load_customer(
        &self,
        phone: &PhoneKey,
    ) -> Result<(Option<PinState>, Option<Uid>), StoreError>;

    /// `load_customer` and whether `work_no` is an active agent of the directory, in the same
    /// one read (identity verification with `IDENTITY_REQUIRE_KNOWN_AGENT`).
    async fn load_customer_and_agent(
        &self,
        phone: &PhoneKey,
        work_no: &str,
    ) -> Result<(Option<PinState>, Option<Uid>, bool), StoreError>;

    /// Sets the counters if the PIN's version is still `expected_version` (bumping it);
    /// returns false, having written nothing, when it is not (or the customer is gone).
    async fn update_counters(
        &self,
        phone: &PhoneKey,
        expected_version: u64,
        counters: Counters,
    ) -> Result<bool, StoreError>;

    /// Writes `record`, together with a guarded counters update when one is given: all or
    /// nothing. Returns false, having written nothing, when the update's version is stale.
    async fn write_attempt(
        &self,
        record: &VerificationRecord,
        update: Option<CountersUpdate<'_>>,
    ) -> Result<bool, StoreError>;

    /// Enrols or replaces PINs; a replaced PIN starts afresh (no failures, no lock).
    async fn put_pins(&self, pins: &[(PhoneKey, PinDigest)]) -> Result<(), StoreError>;

    /// Lifts a lock and clears the failures; false when the customer is not enrolled.
    async fn unlock(&self, phone: &PhoneKey) -> Result<bool, StoreError>;

    /// Records matching `query`, newest first, at most `query.limit`: one key lookup.
    async fn list_records(
        &self,
        query: &RecordQuery,
    ) -> Result<Vec<VerificationRecord>, StoreError>;
}

/// A guarded counters update: applied only if the PIN's version is still `expected_version`.
#[derive(Debug, Clone, Copy)]
pub struct CountersUpdate<'a> {
    pub phone: &'a PhoneKey,
    pub expected_version: u64,
    pub counters: Counters,
}

/// A random version for a freshly written PIN, so that a stale guarded update can never
/// match it by chance of counting from zero again.
pub fn fresh_version() -> u64 {
    getrandom::u64().unwrap_or(1) >> 12
}

/// Token-exchange audit records.
#[async_trait]
pub trait AuditStore: Send + Sync {
    async fn put_audit(&self, record: &AuditRecord) -> Result<(), StoreError>;

    /// The newest records first, at most `limit`, none expired at `now`.
    async fn list_audit(&self, limit: usize, now: i64) -> Result<Vec<AuditRecord>, StoreError>;
}

/// An id for records listed by time: the wall clock in nanoseconds first (records of one
/// second still sort newest first), then randomness against collisions.
pub fn sortable_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let random = crate::uid::Uid::generate()
        .map(|u| u.as_str()[..8].to_string())
        .unwrap_or_default();
    format!("{nanos:020}{random}")
}

/// Our copy of the CEC agent directory and the links from business accounts to agents.
#[async_trait]
pub trait AgentStore: Send + Sync {
    /// Every agent, active or not, by work number.
    async fn list_agents(&self) -> Result<Vec<Agent>, StoreError>;

    async fn get_agent(&self, work_no: &str) -> Result<Option<Agent>, StoreError>;

    /// Inserts or replaces these agents.
    async fn put_agents(&self, agents: &[Agent]) -> Result<(), StoreError>;

    async fn last_sync(&self) -> Result<Option<SyncState>, StoreError>;

    async fn put_last_sync(&self, state: &SyncState) -> Result<(), StoreError>;

    /// Links a business-system account to a work number (replacing an earlier link).
    async fn link_account(&self, account: &str, work_no: &str) -> Result<(), StoreError>;

    /// The work number an account is linked to.
    async fn linked_work_no(&self, account: &str) -> Result<Option<String>, StoreError>;
}
