//! Identity verification items.
//!
//! - PIN: `pk = "NPIN#<number index>"`, `sk = "PIN"`: `digest` (hex HMAC), `failures`, `window_start`,
//!   `locked_until`, `version`.
//! - Record: `pk = "VNUM#<record key>"`, `sk = "VREC#<12-digit epoch>#<id>"`, with
//!   `gsi1pk = "VAGT#<agent>"` / `gsi1sk` (index `gsi1`, by agent) and `gsi2pk = "VREC"` /
//!   `gsi2sk` (index `gsi2`, all records by time), and `expires_at` for the table's TTL.
//!
//! A tenant's items are the same under its scope (`T#<tenant>#NPIN#…`, `T#<tenant>#VNUM#…`,
//! `gsi1pk = T#<tenant>#VAGT#…`, `gsi2pk = T#<tenant>#VREC`), and the agent it asks for is
//! its own directory's (`T#<tenant>#AGENTS`).

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};

use super::{classify, classify_service, failed, number_attr, string_attr, DynamoStore};
use super::{MAP_SK, PK, SK};
use crate::domain::factor::{Factor, FACTORS};
use crate::domain::identity::{Counters, PinDigest, PinState, RecordQuery, VerificationRecord};
use crate::domain::protect::NumberIndex;
use crate::domain::uid::Uid;
use crate::store::{factor_attribute, fresh_version, CountersUpdate, IdentityStore, StoreError};

pub(super) const PIN_PREFIX: &str = "NPIN#";
const PIN_SK: &str = "PIN";
pub(super) const RECORD_NUMBER_PREFIX: &str = "VNUM#";
const RECORD_AGENT_PREFIX: &str = "VAGT#";
const RECORD_ALL: &str = "VREC";
const RECORD_SK_PREFIX: &str = "VREC#";
/// Customers whose factor `put_factors` writes at once (one UpdateItem each).
const PUT_FACTORS_AT_ONCE: usize = 16;

pub const GSI_BY_AGENT: &str = "gsi1";
pub const GSI_BY_TIME: &str = "gsi2";

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// The key of a PIN item in `scope` (`""` for the default tenant).
pub(super) fn pin_key(scope: &str, number: &NumberIndex) -> HashMap<String, AttributeValue> {
    HashMap::from([
        (
            PK.into(),
            s(format!("{scope}{PIN_PREFIX}{}", number.as_str())),
        ),
        (SK.into(), s(PIN_SK)),
    ])
}

fn record_sk(time: i64, id: &str) -> String {
    format!("{RECORD_SK_PREFIX}{:012}#{id}", time.max(0))
}

fn or_dash(v: &str) -> &str {
    if v.is_empty() {
        "-"
    } else {
        v
    }
}

/// The guarded update of a PIN's counters (also used inside a transaction).
fn counters_update(
    table: &str,
    scope: &str,
    number: &NumberIndex,
    expected_version: u64,
    c: Counters,
) -> Result<Update, StoreError> {
    Update::builder()
        .table_name(table)
        .set_key(Some(pin_key(scope, number)))
        .update_expression("SET failures = :f, window_start = :w, locked_until = :l, version = :nv")
        .condition_expression("version = :v")
        .expression_attribute_values(":f", n(c.failures))
        .expression_attribute_values(":w", n(c.window_start))
        .expression_attribute_values(":l", n(c.locked_until))
        .expression_attribute_values(":v", n(expected_version))
        .expression_attribute_values(":nv", n(expected_version.wrapping_add(1)))
        .build()
        .map_err(failed)
}

/// The partition of a customer's records in `scope`.
pub(super) fn record_pk(scope: &str, record_key: &str) -> String {
    format!("{scope}{RECORD_NUMBER_PREFIX}{}", or_dash(record_key))
}

fn record_item(scope: &str, r: &VerificationRecord) -> HashMap<String, AttributeValue> {
    let sk = record_sk(r.time, &r.id);
    HashMap::from([
        (PK.into(), s(record_pk(scope, &r.number_key))),
        (SK.into(), s(sk.clone())),
        (
            "gsi1pk".into(),
            s(format!("{scope}{RECORD_AGENT_PREFIX}{}", or_dash(&r.agent))),
        ),
        ("gsi1sk".into(), s(sk.clone())),
        ("gsi2pk".into(), s(format!("{scope}{RECORD_ALL}"))),
        ("gsi2sk".into(), s(sk)),
        ("time".into(), n(r.time)),
        ("masked_number".into(), s(r.masked_number.clone())),
        ("agent".into(), s(r.agent.clone())),
        ("verify_type_code".into(), s(r.verify_type_code.clone())),
        ("factor".into(), s(r.factor.clone())),
        ("result".into(), n(r.result)),
        ("reason".into(), s(r.reason.clone())),
        (super::TTL_ATTRIBUTE.into(), n(r.expires_at)),
    ])
}

fn parse_record(scope: &str, item: &HashMap<String, AttributeValue>) -> Option<VerificationRecord> {
    let pk = string_attr(item, PK)?;
    let sk = string_attr(item, SK)?;
    let number_key = pk.strip_prefix(scope)?.strip_prefix(RECORD_NUMBER_PREFIX)?;
    Some(VerificationRecord {
        time: number_attr(item, "time")?,
        id: sk.rsplit('#').next()?.to_string(),
        number_key: if number_key == "-" { "" } else { number_key }.to_string(),
        masked_number: string_attr(item, "masked_number").unwrap_or_default(),
        agent: string_attr(item, "agent").unwrap_or_default(),
        verify_type_code: string_attr(item, "verify_type_code").unwrap_or_default(),
        factor: string_attr(item, "factor").unwrap_or_default(),
        result: number_attr(item, "result")?,
        reason: string_attr(item, "reason")?,
        expires_at: number_attr(item, super::TTL_ATTRIBUTE)?,
    })
}

/// A customer's item: every factor's digest it holds (a malformed one is left out, so the
/// customer is not enrolled for it), its counters and version.
fn parse_pin(item: &HashMap<String, AttributeValue>) -> Option<PinState> {
    let digests = FACTORS
        .into_iter()
        .filter_map(|f| {
            let digest = PinDigest::from_hex(&string_attr(item, factor_attribute(f))?)?;
            Some((f, digest))
        })
        .collect();
    Some(PinState {
        digests,
        counters: Counters {
            failures: number_attr(item, "failures")?,
            window_start: number_attr(item, "window_start")?,
            locked_until: number_attr(item, "locked_until")?,
        },
        version: number_attr(item, "version")?,
    })
}

/// A conditional UpdateItem's outcome: whether its condition held (and it was written).
pub(super) fn condition_held<T, R: std::fmt::Debug>(
    result: Result<T, SdkError<UpdateItemError, R>>,
) -> Result<bool, StoreError> {
    match result {
        Ok(_) => Ok(true),
        Err(SdkError::ServiceError(ctx))
            if matches!(
                ctx.err(),
                UpdateItemError::ConditionalCheckFailedException(_)
            ) =>
        {
            Ok(false)
        }
        Err(e) => Err(classify(e)),
    }
}

impl DynamoStore {
    /// One BatchGetItem: the PIN, the number-mapping ID and, when asked, the agent.
    async fn load(
        &self,
        number: &NumberIndex,
        work_no: Option<&str>,
    ) -> Result<(Option<PinState>, Option<Uid>, bool), StoreError> {
        let pin_pk = format!("{}{PIN_PREFIX}{}", self.scope, number.as_str());
        let map_pk = self.number_pk(number);
        let agents_pk = format!("{}{}", self.scope, super::agents::AGENTS_PK);
        let mut keys = vec![
            pin_key(&self.scope, number),
            HashMap::from([(PK.into(), s(map_pk.clone())), (SK.into(), s(MAP_SK))]),
        ];
        if let Some(w) = work_no {
            let mut key = super::agents::agent_key(w);
            key.insert(PK.into(), s(agents_pk.clone()));
            keys.push(key);
        }
        let (mut pin, mut uid, mut agent_active) = (None, None, false);
        for item in self.batch_get_items(keys, None).await? {
            match string_attr(&item, PK) {
                Some(pk) if pk == pin_pk => pin = parse_pin(&item),
                Some(pk) if pk == map_pk => {
                    uid = string_attr(&item, "uid").and_then(|u| Uid::parse(&u))
                }
                Some(pk) if pk == agents_pk => {
                    agent_active = super::agents::parse_agent(&item).is_some_and(|a| a.active)
                }
                _ => {}
            }
        }
        Ok((pin, uid, agent_active))
    }
}

#[async_trait]
impl IdentityStore for DynamoStore {
    async fn load_customer(
        &self,
        number: &NumberIndex,
    ) -> Result<(Option<PinState>, Option<Uid>), StoreError> {
        let (pin, uid, _) = self.load(number, None).await?;
        Ok((pin, uid))
    }

    async fn load_customer_and_agent(
        &self,
        number: &NumberIndex,
        work_no: &str,
    ) -> Result<(Option<PinState>, Option<Uid>, bool), StoreError> {
        self.load(number, Some(work_no)).await
    }

    async fn update_counters(
        &self,
        number: &NumberIndex,
        expected_version: u64,
        counters: Counters,
    ) -> Result<bool, StoreError> {
        let u = counters_update(&self.table, &self.scope, number, expected_version, counters)?;
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(u.key))
            .update_expression(u.update_expression)
            .set_condition_expression(u.condition_expression)
            .set_expression_attribute_values(u.expression_attribute_values)
            .send()
            .await;
        condition_held(result)
    }

    async fn write_attempt(
        &self,
        record: &VerificationRecord,
        update: Option<CountersUpdate<'_>>,
    ) -> Result<bool, StoreError> {
        let Some(update) = update else {
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(record_item(&self.scope, record)))
                .send()
                .await
                .map_err(classify)?;
            return Ok(true);
        };
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(record_item(&self.scope, record)))
            .build()
            .map_err(failed)?;
        let result = self
            .client
            .transact_write_items()
            .transact_items(
                TransactWriteItem::builder()
                    .update(counters_update(
                        &self.table,
                        &self.scope,
                        update.number,
                        update.expected_version,
                        update.counters,
                    )?)
                    .build(),
            )
            .transact_items(TransactWriteItem::builder().put(put).build())
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(SdkError::ServiceError(ctx)) => match ctx.into_err() {
                TransactWriteItemsError::TransactionCanceledException(e)
                    if e.cancellation_reasons().first().and_then(|r| r.code())
                        == Some("ConditionalCheckFailed") =>
                {
                    Ok(false)
                }
                TransactWriteItemsError::TransactionCanceledException(_) => Err(
                    StoreError::Unavailable("verification transaction cancelled".into()),
                ),
                other => Err(classify_service(&other)),
            },
            Err(e) => Err(classify(e)),
        }
    }

    async fn put_factors(
        &self,
        factor: Factor,
        digests: &[(NumberIndex, PinDigest)],
    ) -> Result<(), StoreError> {
        // One UpdateItem per customer (its other factors stay), a few at once; the last entry
        // for a number wins.
        let mut latest: HashMap<&NumberIndex, &PinDigest> = HashMap::new();
        for (number, digest) in digests {
            latest.insert(number, digest);
        }
        let updates: Vec<_> = latest
            .into_iter()
            .map(|(number, digest)| {
                self.client
                    .update_item()
                    .table_name(&self.table)
                    .set_key(Some(pin_key(&self.scope, number)))
                    .update_expression(
                        "SET #d = :d, failures = :z, window_start = :z, locked_until = :z, \
                         version = :v",
                    )
                    .expression_attribute_names("#d", factor_attribute(factor))
                    .expression_attribute_values(":d", s(digest.to_hex()))
                    .expression_attribute_values(":z", n(0))
                    .expression_attribute_values(":v", n(fresh_version()))
            })
            .collect();
        super::at_once(updates, PUT_FACTORS_AT_ONCE, |update| async move {
            update.send().await.map(drop).map_err(classify)
        })
        .await?;
        Ok(())
    }

    async fn forget_factor(
        &self,
        number: &NumberIndex,
        factor: Factor,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(pin_key(&self.scope, number)))
            .update_expression("REMOVE #d")
            .condition_expression("attribute_exists(#d)")
            .expression_attribute_names("#d", factor_attribute(factor))
            .send()
            .await;
        condition_held(result)
    }

    async fn unlock(&self, number: &NumberIndex) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(pin_key(&self.scope, number)))
            .update_expression(
                "SET failures = :z, window_start = :z, locked_until = :z, version = version + :one",
            )
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_values(":z", n(0))
            .expression_attribute_values(":one", n(1))
            .send()
            .await;
        condition_held(result)
    }

    async fn list_records(&self, q: &RecordQuery) -> Result<Vec<VerificationRecord>, StoreError> {
        // One key: the customer's partition, else the agent's (gsi1), else all (gsi2).
        let (index, pk_attr, sk_attr, pk_value, agent_filter) = match (&q.number_key, &q.agent) {
            (Some(key), agent) => (None, PK, SK, record_pk(&self.scope, key), agent.clone()),
            (None, Some(agent)) => (
                Some(GSI_BY_AGENT),
                "gsi1pk",
                "gsi1sk",
                format!("{}{RECORD_AGENT_PREFIX}{agent}", self.scope),
                None,
            ),
            (None, None) => (
                Some(GSI_BY_TIME),
                "gsi2pk",
                "gsi2sk",
                format!("{}{RECORD_ALL}", self.scope),
                None,
            ),
        };
        let since = record_sk(q.since.unwrap_or(0), "");
        let mut filter = "#ttl > :now".to_string();
        if agent_filter.is_some() {
            filter.push_str(" AND #agent = :agent"); // AGENT is a reserved word
        }
        if q.mode.is_some() {
            filter.push_str(" AND verify_type_code = :mode");
        }
        let mut records = Vec::new();
        let mut start_key = None;
        loop {
            let mut query = self
                .client
                .query()
                .table_name(&self.table)
                .set_index_name(index.map(str::to_string))
                .key_condition_expression("#pk = :pk AND #sk >= :since")
                .filter_expression(filter.clone())
                .expression_attribute_names("#pk", pk_attr)
                .expression_attribute_names("#sk", sk_attr)
                .expression_attribute_names("#ttl", super::TTL_ATTRIBUTE)
                .expression_attribute_values(":pk", s(pk_value.clone()))
                .expression_attribute_values(":since", s(since.clone()))
                .expression_attribute_values(":now", n(q.now))
                .scan_index_forward(false)
                .limit(q.limit.clamp(1, 1000) as i32)
                .set_exclusive_start_key(start_key.take());
            if let Some(agent) = &agent_filter {
                query = query
                    .expression_attribute_names("#agent", "agent")
                    .expression_attribute_values(":agent", s(agent.clone()));
            }
            if let Some(mode) = &q.mode {
                query = query.expression_attribute_values(":mode", s(mode.clone()));
            }
            let out = query.send().await.map_err(classify)?;
            records.extend(
                out.items
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|item| parse_record(&self.scope, item)),
            );
            if records.len() >= q.limit || out.last_evaluated_key.is_none() {
                break;
            }
            start_key = out.last_evaluated_key;
        }
        records.truncate(q.limit);
        Ok(records)
    }
}
