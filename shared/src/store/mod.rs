//! Storage: one trait per record family, each with a DynamoDB backend (Lambda) and an embedded
//! SQLite backend (local gateway, CLI), both run through the same contract tests.

use std::collections::HashMap;

use async_trait::async_trait;

use crate::domain::agents::{Agent, SyncState};
use crate::domain::audit::AuditRecord;
use crate::domain::identity::{Counters, PinDigest, PinState, RecordQuery, VerificationRecord};
use crate::domain::phone::PhoneKey;
use crate::domain::uid::Uid;

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
