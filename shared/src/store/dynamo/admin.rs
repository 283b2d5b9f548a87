//! Whole-table work for the admin CLI: import, scan (export, rekey), reseal, forget.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, WriteRequest};

use super::identity::{pin_key, record_pk, PIN_PREFIX, RECORD_NUMBER_PREFIX};
use super::legacy::LEGACY_PIN;
use super::mapping::{
    parse_uid_item, put_new, MAPPINGS_PER_TRANSACTION, NUMBER_PREFIX, UID_PREFIX,
};
use super::{
    backoff, classify, delete_action, failed, string_attr, DynamoStore, MAX_ATTEMPTS, PK, SK,
};
use crate::domain::protect::{NumberIndex, SealedNumber};
use crate::domain::uid::Uid;
use crate::store::{
    Forgotten, ImportOutcome, KeyUse, KeyedRecords, NumbersAdmin, ScanPage, StoreError,
    StoredMapping,
};

/// Items a scan page evaluates (a page is also cut at DynamoDB's 1 MB).
const SCAN_PAGE: i32 = 500;
/// Parallel scan segments of an export or rekey.
const SCAN_SEGMENTS: usize = 4;
/// Conditional updates in flight at once during a reseal.
const RESEALS_AT_ONCE: usize = 16;

/// A scan position as text: the last evaluated key's `pk` and `sk`.
pub(super) fn encode_start(key: Option<HashMap<String, AttributeValue>>) -> Option<String> {
    let key = key?;
    let pk = string_attr(&key, PK)?;
    let sk = string_attr(&key, SK)?;
    Some(serde_json::json!([pk, sk]).to_string())
}

pub(super) fn decode_start(
    start: Option<String>,
) -> Result<Option<HashMap<String, AttributeValue>>, StoreError> {
    let Some(start) = start else { return Ok(None) };
    let (pk, sk): (String, String) =
        serde_json::from_str(&start).map_err(|_| failed("malformed scan position"))?;
    Ok(Some(HashMap::from([
        (PK.to_string(), AttributeValue::S(pk)),
        (SK.to_string(), AttributeValue::S(sk)),
    ])))
}

impl DynamoStore {
    /// One transaction importing `batch` (at most 50), and the outcome of each, None where the
    /// transaction was cancelled for another mapping's sake.
    async fn import_once(
        &self,
        batch: &[&StoredMapping],
    ) -> Result<Vec<Option<ImportOutcome>>, StoreError> {
        let mut actions = Vec::with_capacity(batch.len() * 2);
        for m in batch {
            let (number_item, uid_item) = self.mapping_items(m);
            actions.push(put_new(&self.table, number_item, true)?);
            actions.push(put_new(&self.table, uid_item, true)?);
        }
        let Some(reasons) = self.transact(actions).await? else {
            return Ok(vec![Some(ImportOutcome::Written); batch.len()]);
        };
        let check = |i: usize| {
            reasons
                .get(i)
                .and_then(|r| (r.code() == Some("ConditionalCheckFailed")).then(|| r.item()))
        };
        Ok(batch
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let number = check(2 * i);
                let uid = check(2 * i + 1);
                let number_uid = number.flatten().and_then(|it| string_attr(it, "uid"));
                let uid_index = uid.flatten().and_then(|it| string_attr(it, "nix"));
                match (number, uid) {
                    (None, None) => None,
                    _ if number_uid.as_deref().and_then(Uid::parse).as_ref() == Some(&m.uid)
                        && uid_index.as_deref() == Some(m.index.as_str()) =>
                    {
                        Some(ImportOutcome::Unchanged)
                    }
                    (Some(_), _) => Some(ImportOutcome::NumberTaken),
                    (None, Some(_)) => Some(ImportOutcome::UidTaken),
                }
            })
            .collect())
    }

    /// The mapping, PIN and records of one customer, given what is stored under its keys.
    async fn forget_items(
        &self,
        index: &NumberIndex,
        uid: Option<&Uid>,
    ) -> Result<(bool, bool), StoreError> {
        let mut keys = vec![
            Self::key(self.number_pk(index)),
            pin_key(&self.scope, index),
        ];
        if let Some(uid) = uid {
            keys.push(Self::key(self.uid_pk(uid)));
        }
        let items = self.batch_get_items(keys, None).await?;
        let pin_pk = pin_key(&self.scope, index)
            .remove(PK)
            .and_then(|v| v.as_s().ok().cloned());
        let mut actions = Vec::new();
        let (mut mapping, mut pin) = (false, false);
        let mut uids: Vec<String> = uid.map(|u| self.uid_pk(u)).into_iter().collect();
        for item in &items {
            let Some(pk) = string_attr(item, PK) else {
                continue;
            };
            if pk == self.number_pk(index) {
                mapping = true;
                if let Some(u) = string_attr(item, "uid").and_then(|u| Uid::parse(&u)) {
                    uids.push(self.uid_pk(&u));
                }
            } else if Some(&pk) == pin_pk.as_ref() {
                pin = true;
            } else if pk.starts_with(&format!("{}{UID_PREFIX}", self.scope)) {
                mapping = true;
            }
        }
        uids.sort();
        uids.dedup();
        if mapping {
            actions.push(delete_action(
                &self.table,
                Self::key(self.number_pk(index)),
            )?);
            for pk in uids {
                actions.push(delete_action(&self.table, Self::key(pk))?);
            }
        }
        if pin {
            actions.push(delete_action(&self.table, pin_key(&self.scope, index))?);
        }
        if !actions.is_empty() {
            self.client
                .transact_write_items()
                .set_transact_items(Some(actions))
                .send()
                .await
                .map_err(classify)?;
        }
        Ok((mapping, pin))
    }

    /// Deletes every verification record under `record_key`; returns how many.
    async fn delete_records(&self, record_key: &str) -> Result<usize, StoreError> {
        let pk = record_pk(&self.scope, record_key);
        let mut deleted = 0;
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("#pk = :pk")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#sk", SK)
                .expression_attribute_values(":pk", AttributeValue::S(pk.clone()))
                .projection_expression("#pk, #sk")
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(classify)?;
            let keys: Vec<_> = out.items.unwrap_or_default();
            let requests = keys
                .iter()
                .map(|key| {
                    DeleteRequest::builder()
                        .set_key(Some(key.clone()))
                        .build()
                        .map(|d| WriteRequest::builder().delete_request(d).build())
                        .map_err(failed)
                })
                .collect::<Result<Vec<_>, _>>()?;
            self.batch_write(requests).await?;
            deleted += keys.len();
            match out.last_evaluated_key {
                Some(key) => start = Some(key),
                None => return Ok(deleted),
            }
        }
    }

    async fn reseal_one(&self, m: StoredMapping, new: SealedNumber) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(self.uid_pk(&m.uid))))
            .update_expression("SET #n = :new, kv = :kv")
            .condition_expression("#n = :old")
            .expression_attribute_names("#n", "number")
            .expression_attribute_values(":new", AttributeValue::S(new.as_str().into()))
            .expression_attribute_values(":old", AttributeValue::S(m.sealed.as_str().into()))
            .expression_attribute_values(
                ":kv",
                AttributeValue::N(new.version().unwrap_or(0).to_string()),
            )
            .send()
            .await;
        super::identity::condition_held(result)
    }
}

#[async_trait]
impl NumbersAdmin for DynamoStore {
    fn import_batch(&self) -> usize {
        MAPPINGS_PER_TRANSACTION
    }

    async fn import(&self, batch: &[StoredMapping]) -> Result<Vec<ImportOutcome>, StoreError> {
        let mut outcomes: Vec<Option<ImportOutcome>> = vec![None; batch.len()];
        for chunk_start in (0..batch.len()).step_by(MAPPINGS_PER_TRANSACTION) {
            let end = (chunk_start + MAPPINGS_PER_TRANSACTION).min(batch.len());
            // Cancelled mappings are proposed again; each cancellation settles at least the
            // mapping whose check failed, unless another transaction was busy on the same
            // items (then back off and retry).
            for attempt in 1..=MAX_ATTEMPTS * 4 {
                let todo: Vec<usize> = (chunk_start..end)
                    .filter(|&i| outcomes[i].is_none())
                    .collect();
                if todo.is_empty() {
                    break;
                }
                let mappings: Vec<&StoredMapping> = todo.iter().map(|&i| &batch[i]).collect();
                let decided = self.import_once(&mappings).await?;
                let progressed = decided.iter().any(Option::is_some);
                for (i, outcome) in todo.into_iter().zip(decided) {
                    outcomes[i] = outcome;
                }
                if !progressed {
                    backoff(attempt.min(6)).await;
                }
            }
        }
        outcomes
            .into_iter()
            .map(|o| {
                o.ok_or_else(|| {
                    StoreError::Unavailable("import transactions kept being cancelled".into())
                })
            })
            .collect()
    }

    fn scan_segments(&self) -> usize {
        SCAN_SEGMENTS
    }

    async fn scan(
        &self,
        segment: usize,
        segments: usize,
        start: Option<String>,
    ) -> Result<ScanPage, StoreError> {
        let out = self
            .client
            .scan()
            .table_name(&self.table)
            .segment(segment as i32)
            .total_segments(segments as i32)
            .limit(SCAN_PAGE)
            .consistent_read(true)
            .filter_expression("begins_with(#pk, :uid) AND attribute_exists(nix)")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_values(
                ":uid",
                AttributeValue::S(format!("{}{UID_PREFIX}", self.scope)),
            )
            .set_exclusive_start_key(decode_start(start)?)
            .send()
            .await
            .map_err(classify)?;
        Ok(ScanPage {
            mappings: out
                .items
                .unwrap_or_default()
                .iter()
                .filter_map(parse_uid_item)
                .collect(),
            next: encode_start(out.last_evaluated_key),
        })
    }

    async fn mappings_of(&self, uids: &[Uid]) -> Result<Vec<StoredMapping>, StoreError> {
        let keys = uids.iter().map(|u| Self::key(self.uid_pk(u))).collect();
        Ok(self
            .batch_get_items(keys, None)
            .await?
            .iter()
            .filter_map(parse_uid_item)
            .collect())
    }

    async fn reseal(&self, batch: &[(StoredMapping, SealedNumber)]) -> Result<usize, StoreError> {
        let done = super::at_once(batch.iter().cloned(), RESEALS_AT_ONCE, |(m, new)| {
            let store = self.clone();
            async move { store.reseal_one(m, new).await }
        })
        .await?;
        Ok(done.into_iter().filter(|&replaced| replaced).count())
    }

    async fn forget(
        &self,
        index: &NumberIndex,
        uid: Option<&Uid>,
        record_key: Option<&str>,
    ) -> Result<Forgotten, StoreError> {
        let (mapping, pin) = self.forget_items(index, uid).await?;
        let records = match record_key {
            Some(key) => self.delete_records(key).await?,
            None => 0,
        };
        Ok(Forgotten {
            mapping,
            pin,
            records,
        })
    }
}

/// Asked only by a local process whose key file is missing (never in Lambda): a scan for the
/// first item under the key's prefixes, which on a table that holds one usually ends on the
/// first page, and on an empty one at once.
#[async_trait]
impl KeyedRecords for DynamoStore {
    async fn holds_keyed(&self, what: KeyUse) -> Result<bool, StoreError> {
        let prefixes: &[&str] = match what {
            // The registry holds the tenants' lookup keys wrapped under the index key, and
            // their whole keys under the keyring; every mapping has its `NUM#` item beside the
            // `UID#` one that holds the seal.
            KeyUse::IndexKey => &[NUMBER_PREFIX, PIN_PREFIX, super::tenants::REGISTRY_PK],
            KeyUse::Keyring => &[NUMBER_PREFIX, super::tenants::REGISTRY_PK],
            KeyUse::Pepper => &[PIN_PREFIX, LEGACY_PIN, RECORD_NUMBER_PREFIX],
        };
        let filter = (0..prefixes.len())
            .map(|i| format!("begins_with(#pk, :p{i})"))
            .collect::<Vec<_>>()
            .join(" OR ");
        let mut start = None;
        loop {
            let mut scan = self
                .client
                .scan()
                .table_name(&self.table)
                .limit(SCAN_PAGE * 2)
                .filter_expression(&filter)
                .projection_expression("#pk")
                .expression_attribute_names("#pk", PK)
                .set_exclusive_start_key(start.take());
            for (i, p) in prefixes.iter().enumerate() {
                scan = scan.expression_attribute_values(
                    format!(":p{i}"),
                    AttributeValue::S(p.to_string()),
                );
            }
            let out = scan.send().await.map_err(classify)?;
            if !out.items().is_empty() {
                return Ok(true);
            }
            match out.last_evaluated_key {
                Some(key) => start = Some(key),
                None => return Ok(false),
            }
        }
    }
}
