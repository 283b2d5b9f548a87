//! Storage: one trait per record family, each with a DynamoDB backend (Lambda) and an embedded
//! SQLite backend (local gateway, CLI), both run through the same contract tests.
//!
//! No store ever sees a phone number: records are keyed by a number's blind index
//! ([`NumberIndex`]) and the number itself arrives already sealed ([`SealedNumber`]); the
//! keys stay with the callers (`domain::protect`). Only the one-off conversion of a store
//! written by an earlier release (`numbers migrate`) reads plaintext numbers, to remove them.

use std::collections::HashMap;

use async_trait::async_trait;

use crate::domain::agents::{Agent, SyncState};
use crate::domain::audit::AuditRecord;
use crate::domain::factor::Factor;
use crate::domain::identity::{Counters, PinDigest, PinState, RecordQuery, VerificationRecord};
use crate::domain::protect::{NumberIndex, SealedNumber};
use crate::domain::tenant::{Tenant, TenantCredential, TenantId, WrappedKeys, WrappedLookup};
use crate::domain::tenant_settings::StoredSettings;
use crate::domain::uid::Uid;
use crate::domain::unmasking::{BudgetTake, Unmasking};

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

/// Seals a number, known to the caller by its index, for a user ID the store proposes.
pub type Sealer =
    std::sync::Arc<dyn Fn(&NumberIndex, &Uid) -> Result<SealedNumber, StoreError> + Send + Sync>;

/// The two directions of the number <-> user ID mapping.
#[async_trait]
pub trait MappingStore: Send + Sync {
    /// The user IDs of those of `numbers` that have one.
    async fn uids_of(
        &self,
        numbers: &[NumberIndex],
    ) -> Result<HashMap<NumberIndex, Uid>, StoreError>;

    /// The sealed numbers of those of `uids` that are known.
    async fn sealed_of(&self, uids: &[Uid]) -> Result<HashMap<Uid, SealedNumber>, StoreError>;

    /// Gives each of `numbers` a new random user ID unless it has one already (perhaps given
    /// a moment ago by a concurrent request), storing the number as `seal` seals it for that
    /// ID, and returns the ID each number ends up with. Every number gets exactly one ID and
    /// no ID is given to two numbers.
    async fn create_uids(
        &self,
        numbers: &[NumberIndex],
        seal: &Sealer,
    ) -> Result<HashMap<NumberIndex, Uid>, StoreError>;
}

/// One stored mapping, as imported, exported and re-encrypted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMapping {
    pub index: NumberIndex,
    pub uid: Uid,
    pub sealed: SealedNumber,
    pub created_at: i64,
}

/// What an import decided for one mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportOutcome {
    /// Written now.
    Written,
    /// Already stored exactly so: nothing to do.
    Unchanged,
    /// The number is mapped to another ID (not written).
    NumberTaken,
    /// The ID belongs to another number (not written).
    UidTaken,
}

/// One page of a scan.
#[derive(Debug, Default)]
pub struct ScanPage {
    pub mappings: Vec<StoredMapping>,
    /// Where the next page starts; None at the end.
    pub next: Option<String>,
}

/// What `numbers migrate` converted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct MigrateReport {
    pub mappings: usize,
    pub pins: usize,
    /// Numbers given a new ID by this release before their old mapping was converted: the
    /// new mapping is kept (one ID per number), the old one removed.
    pub superseded: usize,
}

/// What `forget` removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Forgotten {
    pub mapping: bool,
    pub pin: bool,
    pub records: usize,
}

/// Whole-store work on the mapping for the admin CLI (`cc-callbacks numbers ...`): bulk
/// import, export, re-encryption and erasure. Not used by any Lambda function.
#[async_trait]
pub trait NumbersAdmin: Send + Sync {
    /// Most mappings one `import` call takes.
    fn import_batch(&self) -> usize;

    /// Writes each mapping unless its number or its ID is taken: all or nothing per mapping,
    /// with the same conditions as `create_uids`, so a concurrent PhoneToUID can never leave a
    /// number with two IDs. Outcomes in the order given.
    async fn import(&self, batch: &[StoredMapping]) -> Result<Vec<ImportOutcome>, StoreError>;

    /// How many parts a full scan may be read in at once.
    fn scan_segments(&self) -> usize;

    /// A page of segment `segment` of `segments` of every mapping, from `start`.
    async fn scan(
        &self,
        segment: usize,
        segments: usize,
        start: Option<String>,
    ) -> Result<ScanPage, StoreError>;

    /// The stored mappings of those of `uids` (at most [`MAX_BATCH`]) that are known, read by
    /// the ID alone: erasure by ID needs no number, so a mapping whose sealed number no
    /// longer opens can still be erased.
    async fn mappings_of(&self, uids: &[Uid]) -> Result<Vec<StoredMapping>, StoreError>;

    /// Replaces each mapping's sealed number by the new one, only where it is still the old
    /// one (a concurrent change wins). Returns how many were replaced.
    async fn reseal(&self, batch: &[(StoredMapping, SealedNumber)]) -> Result<usize, StoreError>;

    /// Removes the mapping of `index` (both directions, and `uid`'s if it is given and
    /// different), its PIN enrolment with its lockout state: all or nothing. Then the
    /// verification records under `record_key`, when it is known. Idempotent.
    async fn forget(
        &self,
        index: &NumberIndex,
        uid: Option<&Uid>,
        record_key: Option<&str>,
    ) -> Result<Forgotten, StoreError>;
}

/// What a local key file protects in a store. A key may be generated only for a store that
/// holds none of it: over existing data a new key would silently give known customers new
/// IDs, leave sealed numbers unopenable, or make every enrolled PIN wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyUse {
    /// The index key: mappings and PIN enrolments (keyed by the blind index).
    IndexKey,
    /// The keyring: mappings (the sealed numbers).
    Keyring,
    /// The PIN pepper: PIN digests (of any layout) and verification records.
    Pepper,
}

/// Whether a store holds records a key protects (asked only where a key file is missing).
#[async_trait]
pub trait KeyedRecords: Send + Sync {
    async fn holds_keyed(&self, what: KeyUse) -> Result<bool, StoreError>;
}

/// Enrolled PINs, lockout counters and verification records.
#[async_trait]
pub trait IdentityStore: Send + Sync {
    /// The customer's PIN state and, when number mapping knows the number, its user ID:
    /// one read.
    async fn load_customer(
        &self,
        number: &NumberIndex,
    ) -> Result<(Option<PinState>, Option<Uid>), StoreError>;

    /// `load_customer` and whether `work_no` is an active agent of the directory, in the same
    /// one read (identity verification with `IDENTITY_REQUIRE_KNOWN_AGENT`).
    async fn load_customer_and_agent(
        &self,
        number: &NumberIndex,
        work_no: &str,
    ) -> Result<(Option<PinState>, Option<Uid>, bool), StoreError>;

    /// Sets the counters if the PIN's version is still `expected_version` (bumping it);
    /// returns false, having written nothing, when it is not (or the customer is gone).
    async fn update_counters(
        &self,
        number: &NumberIndex,
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
    async fn put_pins(&self, pins: &[(NumberIndex, PinDigest)]) -> Result<(), StoreError> {
        self.put_factors(Factor::Pin, pins).await
    }

    /// Enrols or replaces these customers' values of `factor` (their digests), keeping their
    /// other factors; the customer starts afresh (no failures, no lock), as a new PIN does.
    async fn put_factors(
        &self,
        factor: Factor,
        digests: &[(NumberIndex, PinDigest)],
    ) -> Result<(), StoreError>;

    /// Removes a customer's `factor`, keeping the others; false when it was not enrolled.
    async fn forget_factor(&self, number: &NumberIndex, factor: Factor)
        -> Result<bool, StoreError>;

    /// Lifts a lock and clears the failures; false when the customer is not enrolled.
    async fn unlock(&self, number: &NumberIndex) -> Result<bool, StoreError>;

    /// Records matching `query`, newest first, at most `query.limit`: one key lookup.
    async fn list_records(
        &self,
        query: &RecordQuery,
    ) -> Result<Vec<VerificationRecord>, StoreError>;
}

/// The attribute (DynamoDB) or column (embedded) of a customer's item holding the digest of
/// `factor`: a PIN's is `digest`, as before factors existed.
pub fn factor_attribute(factor: Factor) -> &'static str {
    match factor {
        Factor::Pin => "digest",
        Factor::IdLast6 => "d_id_last6",
        Factor::BirthDate => "d_birth_date",
        Factor::CardLast4 => "d_card_last4",
    }
}

/// A guarded counters update: applied only if the PIN's version is still `expected_version`.
#[derive(Debug, Clone, Copy)]
pub struct CountersUpdate<'a> {
    pub number: &'a NumberIndex,
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

/// Where number mapping records each unmasking (its own trait, so that the Lambda binary
/// links the write and none of the queries).
#[async_trait]
pub trait UnmaskingLog: Send + Sync {
    /// Writes these records (one per ID asked), all or fail.
    async fn put_unmaskings(&self, records: &[Unmasking]) -> Result<(), StoreError>;

    /// Adds `take.count` to the caller's count of its minute if the sum stays within
    /// `take.limit` (true), or adds nothing (false): one conditional write, atomic across
    /// every process sharing the store.
    async fn take_unmask_budget(&self, take: &BudgetTake) -> Result<bool, StoreError>;
}

/// Most records one query returns.
pub const MAX_UNMASKINGS_LISTED: usize = 10_000;

/// The unmasking records, queried (`cc-callbacks unmaskings list`), newest first, none expired
/// at `now`, with times in `since..=until`.
#[async_trait]
pub trait UnmaskingQuery: Send + Sync {
    /// One user ID's records: a key query.
    async fn unmaskings_of(
        &self,
        uid: &str,
        since: i64,
        until: i64,
        now: i64,
        limit: usize,
    ) -> Result<Vec<Unmasking>, StoreError>;

    /// Every ID's records in the time range, by `caller` when given: a query of the time
    /// index (on DynamoDB `gsi2`), the caller a filter on it.
    async fn unmaskings_between(
        &self,
        caller: Option<&str>,
        since: i64,
        until: i64,
        now: i64,
        limit: usize,
    ) -> Result<Vec<Unmasking>, StoreError>;
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

    /// Where the scheduled sync's round of tenants goes on: the tenant ID after which the
    /// next run starts (None: from the first).
    async fn sync_cursor(&self) -> Result<Option<String>, StoreError>;

    async fn put_sync_cursor(&self, after: Option<&str>) -> Result<(), StoreError>;
}

/// What the keys of a tenant's records start with in either backend: `T#<tenant>#` (the
/// default tenant's keys are unprefixed, as before platform mode). A tenant ID holds no `#`.
pub fn tenant_scope(tenant: &TenantId) -> String {
    format!("T#{tenant}#")
}

/// What erasing a tenant's records removed (`tenants remove`), by kind.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Erased {
    /// Mappings (counted by their number's item).
    pub mappings: usize,
    pub pins: usize,
    pub records: usize,
    /// Other items of the tenant (each mapping's ID item, and any kind added later).
    pub other: usize,
}

impl Erased {
    pub fn add(&mut self, other: Erased) {
        self.mappings += other.mappings;
        self.pins += other.pins;
        self.records += other.records;
        self.other += other.other;
    }
}

/// A store that can hold a tenant's records apart (platform mode): the same store, its keys
/// under [`tenant_scope`].
pub trait TenantScoped {
    fn for_tenant(&self, tenant: &TenantId) -> Self;
}

#[cfg(feature = "dynamodb")]
impl TenantScoped for dynamo::DynamoStore {
    fn for_tenant(&self, tenant: &TenantId) -> Self {
        dynamo::DynamoStore::for_tenant(self, tenant)
    }
}

#[cfg(feature = "embedded")]
impl TenantScoped for embedded::EmbeddedStore {
    fn for_tenant(&self, tenant: &TenantId) -> Self {
        embedded::EmbeddedStore::for_tenant(self, tenant)
    }
}

/// Most credentials one tenant may hold (each function's callers, rotation included).
pub const MAX_TENANT_CREDENTIALS: usize = 100;

/// A tenant and its callers' credentials, read together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantEntry {
    pub tenant: Tenant,
    pub credentials: Vec<TenantCredential>,
    /// Its own vendor settings (`tenants set`), secrets sealed.
    pub settings: StoredSettings,
}

/// What adding a credential did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialAdded {
    Added,
    /// No such tenant (nothing written).
    NoTenant,
    /// The tenant already has this user name for this function (nothing written).
    Taken,
    /// The tenant holds [`MAX_TENANT_CREDENTIALS`] already (nothing written).
    Full,
}

/// What a function reads of the tenant registry: one tenant, in one read. (Its own trait, so
/// that a Lambda binary links none of the registry's administration.)
#[async_trait]
pub trait TenantLookup: Send + Sync {
    /// The tenant and its credentials (one read); None when it is not registered.
    async fn tenant(&self, id: &TenantId) -> Result<Option<TenantEntry>, StoreError>;
}

/// Every tenant of the registry: what the scheduled agent sync reads (its own trait, so that
/// it links the listing and none of the administration).
#[async_trait]
pub trait TenantListing: Send + Sync {
    /// Every registered tenant with its credentials, by ID (on DynamoDB one Query, paged).
    async fn list_tenants(&self) -> Result<Vec<TenantEntry>, StoreError>;
}

/// The registry of platform mode's tenants (README "Platform mode"): each tenant with its
/// wrapped keys, its suspension and its callers' credential digests, in one record, so that a
/// function resolves a tenant in one read. Administered by the CLI.
#[async_trait]
pub trait TenantRegistry: TenantLookup + TenantListing {
    /// Registers a new tenant; false, having written nothing, when the ID is taken.
    async fn add_tenant(&self, tenant: &Tenant) -> Result<bool, StoreError>;

    /// Suspends or resumes; false when the tenant is not registered.
    async fn set_suspended(&self, id: &TenantId, suspended: bool) -> Result<bool, StoreError>;

    /// Adds a caller's credential to a registered tenant.
    async fn add_credential(
        &self,
        id: &TenantId,
        credential: &TenantCredential,
    ) -> Result<CredentialAdded, StoreError>;

    /// Removes every credential of the caller `user` (all functions); how many there were.
    async fn revoke_credentials(&self, id: &TenantId, user: &str) -> Result<usize, StoreError>;

    /// Replaces the tenant's settings with `settings` (its `rev` one past `expected_rev`),
    /// only while they are still at `expected_rev` (so two concurrent changes never lose one);
    /// false when they are not (or the tenant is gone).
    async fn set_settings(
        &self,
        id: &TenantId,
        expected_rev: u64,
        settings: &StoredSettings,
    ) -> Result<bool, StoreError>;

    /// How many parts `erase_page` may be run in at once.
    fn erase_segments(&self) -> usize;

    /// Erases one page of segment `segment` of `segments` of everything held under the
    /// tenant's scope (mappings, PINs and lockout state, verification records), never its
    /// registry entry: what it erased, and where the next page starts (None at the end).
    async fn erase_page(
        &self,
        id: &TenantId,
        segment: usize,
        segments: usize,
        start: Option<String>,
    ) -> Result<(Erased, Option<String>), StoreError>;

    /// Removes the registry entry, its credentials and its wrapped keys with it (so nothing
    /// the tenant sealed can be opened again); false when there was none.
    async fn remove_tenant(&self, id: &TenantId) -> Result<bool, StoreError>;

    /// Replaces the tenant's wrapped keys, only where they are still `old` (key rotation),
    /// and its wrapped lookup keys with `lookup` (filling them in for a tenant registered
    /// without); false when they are not (or the tenant is gone).
    async fn rewrap_keys(
        &self,
        id: &TenantId,
        old: &WrappedKeys,
        new: &WrappedKeys,
        lookup: &WrappedLookup,
    ) -> Result<bool, StoreError>;
}
