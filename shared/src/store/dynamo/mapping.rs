//! Number mapping items, both directions stored so that each is one key lookup, and no
//! number in the clear (see `domain::protect`):
//! - `pk = "NUM#<number index>"`, `sk = "MAP"`: `uid` (as created), `created_at`
//! - `pk = "UID#<uid, lowercase>"`, `sk = "MAP"`: `uid`, `number` (sealed), `kv` (its key
//!   version), `nix` (the number index), `created_at`
//!
//! A tenant's items are the same under its scope: `T#<tenant>#NUM#…`, `T#<tenant>#UID#…`
//! (`DynamoStore::for_tenant`); the default tenant's keys are unprefixed, as before.
//!
//! Known numbers cost one BatchGetItem (up to 100 keys); new numbers one conditional
//! TransactWriteItems per 50 (two puts each, 100 actions at most).

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{
    AttributeValue, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
};

use super::{backoff, number_attr, string_attr, DynamoStore, MAX_ATTEMPTS, PK};
use crate::domain::clock::now_epoch;
use crate::domain::protect::{NumberIndex, SealedNumber};
use crate::domain::uid::Uid;
use crate::store::{MappingStore, Sealer, StoreError, StoredMapping};

pub(super) const NUMBER_PREFIX: &str = "NUM#";
pub(super) const UID_PREFIX: &str = "UID#";
/// Two puts per mapping: DynamoDB's 100 actions per TransactWriteItems.
pub(super) const MAPPINGS_PER_TRANSACTION: usize = 50;
/// Transactions proposing a batch of new numbers together before each number left is
/// proposed alone.
const GROUP_TRANSACTIONS: usize = 2;
/// Single-number transactions in flight at once (connections opened).
const SINGLES_AT_ONCE: usize = 10;

impl DynamoStore {
    /// The key of a number's item in this store's scope.
    pub(super) fn number_pk(&self, index: &NumberIndex) -> String {
        format!("{}{NUMBER_PREFIX}{}", self.scope, index.as_str())
    }

    /// The key of an ID's item in this store's scope.
    pub(super) fn uid_pk(&self, uid: &Uid) -> String {
        format!("{}{UID_PREFIX}{}", self.scope, uid.key())
    }

    /// The two items of one mapping, in this store's scope.
    pub(super) fn mapping_items(&self, m: &StoredMapping) -> MappingItems {
        mapping_items(self.number_pk(&m.index), self.uid_pk(&m.uid), m)
    }
}

type MappingItems = (
    HashMap<String, AttributeValue>,
    HashMap<String, AttributeValue>,
);

fn mapping_items(
    number_pk: String,
    uid_pk: String,
    m: &StoredMapping,
) -> (
    HashMap<String, AttributeValue>,
    HashMap<String, AttributeValue>,
) {
    let created = AttributeValue::N(m.created_at.to_string());
    let number_item = DynamoStore::key(number_pk)
        .into_iter()
        .chain([
            ("uid".to_string(), AttributeValue::S(m.uid.as_str().into())),
            ("created_at".to_string(), created.clone()),
        ])
        .collect();
    let uid_item = DynamoStore::key(uid_pk)
        .into_iter()
        .chain([
            ("uid".to_string(), AttributeValue::S(m.uid.as_str().into())),
            (
                "number".to_string(),
                AttributeValue::S(m.sealed.as_str().into()),
            ),
            (
                "kv".to_string(),
                AttributeValue::N(m.sealed.version().unwrap_or(0).to_string()),
            ),
            (
                "nix".to_string(),
                AttributeValue::S(m.index.as_str().into()),
            ),
            ("created_at".to_string(), created),
        ])
        .collect();
    (number_item, uid_item)
}

/// A mapping read back from its `UID#` item.
pub(super) fn parse_uid_item(item: &HashMap<String, AttributeValue>) -> Option<StoredMapping> {
    Some(StoredMapping {
        index: NumberIndex::from_stored(string_attr(item, "nix")?),
        uid: Uid::parse(&string_attr(item, "uid")?)?,
        sealed: SealedNumber::from_stored(string_attr(item, "number")?),
        created_at: number_attr(item, "created_at").unwrap_or(0),
    })
}

/// A conditional put of a new item (`attribute_not_exists`), returning the existing item on
/// a failed check when `report_existing`.
pub(super) fn put_new(
    table: &str,
    item: HashMap<String, AttributeValue>,
    report_existing: bool,
) -> Result<TransactWriteItem, StoreError> {
    let mut put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression("attribute_not_exists(#pk)")
        .expression_attribute_names("#pk", PK);
    if report_existing {
        put = put
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
    }
    let put = put.build().map_err(|e| StoreError::Failed(e.to_string()))?;
    Ok(TransactWriteItem::builder().put(put).build())
}

impl DynamoStore {
    /// One conditional transaction creating `batch`, and what it decided for each number.
    async fn create_batch(
        &self,
        batch: &[NumberIndex],
        seal: &Sealer,
    ) -> Result<BatchOutcome, StoreError> {
        let now = now_epoch();
        let mut proposed = Vec::with_capacity(batch.len());
        let mut actions = Vec::with_capacity(batch.len() * 2);
        for index in batch {
            let uid = Uid::generate().map_err(|e| StoreError::Failed(e.to_string()))?;
            let mapping = StoredMapping {
                index: index.clone(),
                sealed: seal(index, &uid)?,
                uid: uid.clone(),
                created_at: now,
            };
            let (number_item, uid_item) = self.mapping_items(&mapping);
            // A number created concurrently comes back with its ID: no re-read.
            actions.push(put_new(&self.table, number_item, true)?);
            actions.push(put_new(&self.table, uid_item, false)?);
            proposed.push(uid);
        }
        let mut outcome = BatchOutcome::default();
        let Some(reasons) = self.transact(actions).await? else {
            outcome.settled.extend(batch.iter().cloned().zip(proposed));
            return Ok(outcome);
        };
        for (i, index) in batch.iter().enumerate() {
            let reason = reasons.get(2 * i);
            let existing = reason
                .and_then(|r| r.item())
                .and_then(|item| string_attr(item, "uid"))
                .and_then(|u| Uid::parse(&u));
            match (reason.and_then(|r| r.code()), existing) {
                (Some("ConditionalCheckFailed"), Some(uid)) => {
                    outcome.settled.insert(index.clone(), uid);
                }
                // There, but its ID did not come back: read it.
                (Some("ConditionalCheckFailed"), None) => outcome.unread.push(index.clone()),
                // Cancelled for another number's sake, being written by another transaction
                // right now, throttled, or its own proposed ID taken: propose again.
                _ => outcome.unsettled.push(index.clone()),
            }
        }
        Ok(outcome)
    }

    /// Creates the IDs of at most 50 numbers (one transaction's worth). A transaction is all
    /// or nothing: one number created by someone else a moment ago cancels it for all the
    /// others (its check failure returns that number's ID). The others are proposed together
    /// once more, which settles the usual race; if that is cancelled too, the batch is under
    /// contention, and proposing the rest together could be cancelled again without end. So
    /// each number left goes in a transaction of its own (`SINGLES_AT_ONCE` at a time), which
    /// only that number can cancel. README ("Round trips") counts what this costs at worst.
    async fn create_chunk(
        &self,
        chunk: &[NumberIndex],
        seal: &Sealer,
        settled: &mut HashMap<NumberIndex, Uid>,
    ) -> Result<(), StoreError> {
        let mut todo = chunk.to_vec();
        for _ in 0..GROUP_TRANSACTIONS {
            let outcome = self.create_batch(&todo, seal).await?;
            settled.extend(outcome.settled);
            if !outcome.unread.is_empty() {
                settled.extend(self.uids_of(&outcome.unread).await?);
            }
            todo = outcome
                .unsettled
                .into_iter()
                .chain(outcome.unread)
                .filter(|p| !settled.contains_key(p))
                .collect();
            if todo.is_empty() {
                return Ok(());
            }
        }
        let created = super::at_once(todo, SINGLES_AT_ONCE, |index| {
            let (store, seal) = (self.clone(), seal.clone());
            async move { store.create_one(index, &seal).await }
        })
        .await?;
        settled.extend(created);
        Ok(())
    }

    /// One number's ID, in transactions of that number alone: created, or found already
    /// there; retried (with backoff) only while the number is being written by another
    /// transaction, throttled, or its proposed ID collides.
    async fn create_one(
        &self,
        index: NumberIndex,
        seal: &Sealer,
    ) -> Result<(NumberIndex, Uid), StoreError> {
        for attempt in 1..=MAX_ATTEMPTS {
            let outcome = self
                .create_batch(std::slice::from_ref(&index), seal)
                .await?;
            let found = match outcome.settled.get(&index) {
                Some(uid) => Some(uid.clone()),
                None if !outcome.unread.is_empty() => self
                    .uids_of(std::slice::from_ref(&index))
                    .await?
                    .remove(&index),
                None => None,
            };
            if let Some(uid) = found {
                return Ok((index, uid));
            }
            backoff(attempt).await;
        }
        Err(StoreError::Unavailable(
            "a new user ID could not be written after repeated conflicts".into(),
        ))
    }
}

/// What one creating transaction decided, number by number.
#[derive(Default)]
struct BatchOutcome {
    /// Created, or already there with the returned ID.
    settled: HashMap<NumberIndex, Uid>,
    /// Already there, but the ID did not come back with the check failure.
    unread: Vec<NumberIndex>,
    /// Not written: the transaction was cancelled.
    unsettled: Vec<NumberIndex>,
}

#[async_trait]
impl MappingStore for DynamoStore {
    async fn uids_of(
        &self,
        numbers: &[NumberIndex],
    ) -> Result<HashMap<NumberIndex, Uid>, StoreError> {
        let pks = numbers.iter().map(|n| self.number_pk(n)).collect();
        let found = self.batch_get(pks, "uid").await?;
        Ok(found
            .into_iter()
            .filter_map(|(pk, uid)| {
                let index = pk
                    .strip_prefix(self.scope.as_str())?
                    .strip_prefix(NUMBER_PREFIX)?
                    .to_string();
                Some((NumberIndex::from_stored(index), Uid::parse(&uid)?))
            })
            .collect())
    }

    async fn sealed_of(&self, uids: &[Uid]) -> Result<HashMap<Uid, SealedNumber>, StoreError> {
        let pks = uids.iter().map(|u| self.uid_pk(u)).collect();
        let found = self.batch_get(pks, "number").await?;
        Ok(found
            .into_iter()
            .filter_map(|(pk, sealed)| {
                let uid = Uid::parse(
                    pk.strip_prefix(self.scope.as_str())?
                        .strip_prefix(UID_PREFIX)?,
                )?;
                Some((uid, SealedNumber::from_stored(sealed)))
            })
            .collect())
    }

    async fn create_uids(
        &self,
        numbers: &[NumberIndex],
        seal: &Sealer,
    ) -> Result<HashMap<NumberIndex, Uid>, StoreError> {
        let mut pending: Vec<NumberIndex> = numbers.to_vec();
        pending.sort();
        pending.dedup(); // a transaction may not touch one item twice
        let mut settled = HashMap::with_capacity(pending.len());
        for chunk in pending.chunks(MAPPINGS_PER_TRANSACTION) {
            self.create_chunk(chunk, seal, &mut settled).await?;
        }
        Ok(settled)
    }
}
