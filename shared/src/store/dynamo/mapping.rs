//! Number mapping items, both directions stored so that each is one key lookup:
//! - `pk = "PHONE#<key>"`, `sk = "MAP"`, `uid`, `created_at`
//! - `pk = "UID#<uid>"`,   `sk = "MAP"`, `phone`, `created_at`
//!
//! Known numbers cost one BatchGetItem (up to 100 keys); new numbers one conditional
//! TransactWriteItems per 50 (two puts each, 100 actions at most).

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
};

use super::{backoff, classify, classify_service, string_attr, DynamoStore, MAX_ATTEMPTS, PK};
use crate::domain::clock::now_epoch;
use crate::domain::phone::PhoneKey;
use crate::domain::uid::Uid;
use crate::store::{MappingStore, StoreError};

pub(super) const PHONE_PREFIX: &str = "PHONE#";
const UID_PREFIX: &str = "UID#";
/// Two puts per mapping: DynamoDB's 100 actions per TransactWriteItems.
const MAPPINGS_PER_TRANSACTION: usize = 50;
/// Transactions proposing a batch of new numbers together before each number left is
/// proposed alone.
const GROUP_TRANSACTIONS: usize = 2;
/// Single-number transactions in flight at once (connections opened).
const SINGLES_AT_ONCE: usize = 10;

impl DynamoStore {
    /// One conditional transaction creating `batch`, and what it decided for each number.
    async fn create_batch(&self, batch: &[PhoneKey]) -> Result<BatchOutcome, StoreError> {
        let now = now_epoch().to_string();
        let mut proposed = Vec::with_capacity(batch.len());
        let mut actions = Vec::with_capacity(batch.len() * 2);
        for phone in batch {
            let uid = Uid::generate().map_err(|e| StoreError::Failed(e.to_string()))?;
            let phone_item = Self::key(format!("{PHONE_PREFIX}{}", phone.as_str()))
                .into_iter()
                .chain([
                    ("uid".to_string(), AttributeValue::S(uid.as_str().into())),
                    ("created_at".to_string(), AttributeValue::N(now.clone())),
                ])
                .collect();
            let uid_item = Self::key(format!("{UID_PREFIX}{}", uid.as_str()))
                .into_iter()
                .chain([
                    (
                        "phone".to_string(),
                        AttributeValue::S(phone.as_str().into()),
                    ),
                    ("created_at".to_string(), AttributeValue::N(now.clone())),
                ])
                .collect();
            for (item, report_existing) in [(phone_item, true), (uid_item, false)] {
                let mut put = Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(item))
                    .condition_expression("attribute_not_exists(#pk)")
                    .expression_attribute_names("#pk", PK);
                if report_existing {
                    // A number created concurrently comes back with its ID: no re-read.
                    put = put.return_values_on_condition_check_failure(
                        ReturnValuesOnConditionCheckFailure::AllOld,
                    );
                }
                let put = put.build().map_err(|e| StoreError::Failed(e.to_string()))?;
                actions.push(TransactWriteItem::builder().put(put).build());
            }
            proposed.push(uid);
        }

        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(actions))
            .send()
            .await;
        let mut outcome = BatchOutcome::default();
        match result {
            Ok(_) => outcome.settled.extend(batch.iter().cloned().zip(proposed)),
            Err(SdkError::ServiceError(ctx)) => match ctx.into_err() {
                TransactWriteItemsError::TransactionCanceledException(e) => {
                    let reasons = e.cancellation_reasons();
                    for (i, phone) in batch.iter().enumerate() {
                        let reason = reasons.get(2 * i);
                        let existing = reason
                            .and_then(|r| r.item())
                            .and_then(|item| string_attr(item, "uid"))
                            .and_then(|u| Uid::parse(&u));
                        match (reason.and_then(|r| r.code()), existing) {
                            (Some("ConditionalCheckFailed"), Some(uid)) => {
                                outcome.settled.insert(phone.clone(), uid);
                            }
                            // There, but its ID did not come back: read it.
                            (Some("ConditionalCheckFailed"), None) => {
                                outcome.unread.push(phone.clone())
                            }
                            // Cancelled for another number's sake, being written by another
                            // transaction right now, throttled, or its own proposed ID
                            // taken: propose again.
                            _ => outcome.unsettled.push(phone.clone()),
                        }
                    }
                }
                other => return Err(classify_service(&other)),
            },
            Err(e) => return Err(classify(e)),
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
        chunk: &[PhoneKey],
        settled: &mut HashMap<PhoneKey, Uid>,
    ) -> Result<(), StoreError> {
        let mut todo = chunk.to_vec();
        for _ in 0..GROUP_TRANSACTIONS {
            let outcome = self.create_batch(&todo).await?;
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
        for group in todo.chunks(SINGLES_AT_ONCE) {
            let mut tasks = tokio::task::JoinSet::new();
            for phone in group {
                let store = self.clone();
                let phone = phone.clone();
                tasks.spawn(async move { store.create_one(phone).await });
            }
            while let Some(joined) = tasks.join_next().await {
                let (phone, uid) =
                    joined.map_err(|e| StoreError::Failed(format!("creating task: {e}")))??;
                settled.insert(phone, uid);
            }
        }
        Ok(())
    }

    /// One number's ID, in transactions of that number alone: created, or found already
    /// there; retried (with backoff) only while the number is being written by another
    /// transaction, throttled, or its proposed ID collides.
    async fn create_one(&self, phone: PhoneKey) -> Result<(PhoneKey, Uid), StoreError> {
        for attempt in 1..=MAX_ATTEMPTS {
            let outcome = self.create_batch(std::slice::from_ref(&phone)).await?;
            let found = match outcome.settled.get(&phone) {
                Some(uid) => Some(uid.clone()),
                None if !outcome.unread.is_empty() => self
                    .uids_of(std::slice::from_ref(&phone))
                    .await?
                    .remove(&phone),
                None => None,
            };
            if let Some(uid) = found {
                return Ok((phone, uid));
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
    settled: HashMap<PhoneKey, Uid>,
    /// Already there, but the ID did not come back with the check failure.
    unread: Vec<PhoneKey>,
    /// Not written: the transaction was cancelled.
    unsettled: Vec<PhoneKey>,
}

#[async_trait]
impl MappingStore for DynamoStore {
    async fn uids_of(&self, phones: &[PhoneKey]) -> Result<HashMap<PhoneKey, Uid>, StoreError> {
        let pks = phones
            .iter()
            .map(|p| format!("{PHONE_PREFIX}{}", p.as_str()))
            .collect();
        let found = self.batch_get(pks, "uid").await?;
        Ok(found
            .into_iter()
            .filter_map(|(pk, uid)| {
                let phone = pk.strip_prefix(PHONE_PREFIX)?.to_string();
                Some((PhoneKey::from_stored(phone), Uid::parse(&uid)?))
            })
            .collect())
    }

    async fn phones_of(&self, uids: &[Uid]) -> Result<HashMap<Uid, PhoneKey>, StoreError> {
        let pks = uids
            .iter()
            .map(|u| format!("{UID_PREFIX}{}", u.as_str()))
            .collect();
        let found = self.batch_get(pks, "phone").await?;
        Ok(found
            .into_iter()
            .filter_map(|(pk, phone)| {
                let uid = Uid::parse(pk.strip_prefix(UID_PREFIX)?)?;
                Some((uid, PhoneKey::from_stored(phone)))
            })
            .collect())
    }

    async fn create_uids(&self, phones: &[PhoneKey]) -> Result<HashMap<PhoneKey, Uid>, StoreError> {
        let mut pending: Vec<PhoneKey> = phones.to_vec();
        pending.sort();
        pending.dedup(); // a transaction may not touch one item twice
        let mut settled = HashMap::with_capacity(pending.len());
        for chunk in pending.chunks(MAPPINGS_PER_TRANSACTION) {
            self.create_chunk(chunk, &mut settled).await?;
        }
        Ok(settled)
    }
}
