//! Unmasking records: `pk = "UNM#<uid key>"` (a platform tenant's under its scope), `sk =
//! "<12-digit epoch>#<id>"`, so one ID's records are one Query; listed by time through index
//! `gsi2` (`gsi2pk = "<scope>UNMASK"`); expiring through the table's TTL. No number is written.
//!
//! A caller's budget (`UNMASK_MAX_PER_MINUTE`): `pk = "UNB#<caller>"` (under the scope), `sk =
//! "<12-digit epoch minute>"`, an attribute `n` added to by one conditional UpdateItem.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};

use super::identity::condition_held;
use super::{
    classify, failed, number_attr, string_attr, DynamoStore, GSI_BY_TIME, PK, SK, TTL_ATTRIBUTE,
};
use crate::domain::unmasking::{BudgetTake, Unmasking};
use crate::store::{StoreError, UnmaskingLog, UnmaskingQuery, MAX_UNMASKINGS_LISTED};

pub(super) const UNMASK_PREFIX: &str = "UNM#";
const BUDGET_PREFIX: &str = "UNB#";
const UNMASK_ALL: &str = "UNMASK";

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn sort_key(time: i64, id: &str) -> String {
    format!("{:012}#{id}", time.max(0))
}

fn parse(item: &HashMap<String, AttributeValue>) -> Option<Unmasking> {
    Some(Unmasking {
        time: number_attr(item, "time")?,
        id: string_attr(item, "id")?,
        uid: string_attr(item, "uid")?,
        caller: string_attr(item, "caller")?,
        request_id: string_attr(item, "request_id").unwrap_or_default(),
        source_ip: string_attr(item, "source_ip").unwrap_or_default(),
        expires_at: number_attr(item, TTL_ATTRIBUTE)?,
    })
}

impl DynamoStore {
    fn unmask_pk(&self, uid: &str) -> String {
        format!("{}{UNMASK_PREFIX}{}", self.scope, uid.to_ascii_lowercase())
    }
}

#[async_trait]
impl UnmaskingLog for DynamoStore {
    async fn put_unmaskings(&self, records: &[Unmasking]) -> Result<(), StoreError> {
        let all = format!("{}{UNMASK_ALL}", self.scope);
        let mut writes = Vec::with_capacity(records.len());
        for r in records {
            let sk = sort_key(r.time, &r.id);
            let item = HashMap::from([
                (PK.to_string(), s(self.unmask_pk(&r.uid))),
                (SK.to_string(), s(sk.clone())),
                ("gsi2pk".into(), s(all.clone())),
                ("gsi2sk".into(), s(sk)),
                ("time".into(), n(r.time)),
                ("id".into(), s(r.id.clone())),
                ("uid".into(), s(r.uid.clone())),
                ("caller".into(), s(r.caller.clone())),
                ("request_id".into(), s(r.request_id.clone())),
                ("source_ip".into(), s(r.source_ip.clone())),
                (TTL_ATTRIBUTE.into(), n(r.expires_at)),
            ]);
            let put = PutRequest::builder()
                .set_item(Some(item))
                .build()
                .map_err(failed)?;
            writes.push(WriteRequest::builder().put_request(put).build());
        }
        self.batch_write(writes).await
    }

    async fn take_unmask_budget(&self, take: &BudgetTake) -> Result<bool, StoreError> {
        if take.never_fits() {
            return Ok(false);
        }
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(
                PK,
                s(format!("{}{BUDGET_PREFIX}{}", self.scope, take.caller)),
            )
            .key(SK, s(format!("{:012}", take.minute.max(0))))
            .update_expression("ADD #n :count SET #ttl = :ttl")
            .condition_expression("attribute_not_exists(#n) OR #n <= :room")
            .expression_attribute_names("#n", "n")
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(":count", n(i64::from(take.count)))
            .expression_attribute_values(":room", n(i64::from(take.limit - take.count)))
            .expression_attribute_values(":ttl", n(take.expires_at))
            .send()
            .await;
        condition_held(result)
    }
}

impl DynamoStore {
    /// A newest-first Query of `pk` (on `index` when given) with the sort key in the range,
    /// filtered, at most `limit` items, paged.
    #[allow(clippy::too_many_arguments)]
    async fn query_unmaskings(
        &self,
        index: Option<&str>,
        pk_name: &str,
        sk_name: &str,
        pk: String,
        since: i64,
        until: i64,
        now: i64,
        caller: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Unmasking>, StoreError> {
        let limit = limit.clamp(1, MAX_UNMASKINGS_LISTED);
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let mut filter = "#ttl > :now".to_string();
            if caller.is_some() {
                filter.push_str(" AND caller = :caller");
            }
            let mut q = self
                .client
                .query()
                .table_name(&self.table)
                .set_index_name(index.map(str::to_string))
                .key_condition_expression("#pk = :pk AND #sk BETWEEN :lo AND :hi")
                .filter_expression(filter)
                .expression_attribute_names("#pk", pk_name)
                .expression_attribute_names("#sk", sk_name)
                .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
                .expression_attribute_values(":pk", s(pk.clone()))
                .expression_attribute_values(":lo", s(format!("{:012}#", since.max(0))))
                .expression_attribute_values(":hi", s(format!("{:012}#\u{10FFFF}", until.max(0))))
                .expression_attribute_values(":now", n(now))
                .scan_index_forward(false)
                .set_exclusive_start_key(start.take());
            if let Some(caller) = caller {
                q = q.expression_attribute_values(":caller", s(caller));
            }
            let page = q.send().await.map_err(classify)?;
            out.extend(page.items().iter().filter_map(parse));
            if out.len() >= limit {
                out.truncate(limit);
                return Ok(out);
            }
            match page.last_evaluated_key {
                Some(key) => start = Some(key),
                None => return Ok(out),
            }
        }
    }
}

#[async_trait]
impl UnmaskingQuery for DynamoStore {
    async fn unmaskings_of(
        &self,
        uid: &str,
        since: i64,
        until: i64,
        now: i64,
        limit: usize,
    ) -> Result<Vec<Unmasking>, StoreError> {
        let pk = self.unmask_pk(uid);
        self.query_unmaskings(None, PK, SK, pk, since, until, now, None, limit)
            .await
    }

    async fn unmaskings_between(
        &self,
        caller: Option<&str>,
        since: i64,
        until: i64,
        now: i64,
        limit: usize,
    ) -> Result<Vec<Unmasking>, StoreError> {
        let pk = format!("{}{UNMASK_ALL}", self.scope);
        self.query_unmaskings(
            Some(GSI_BY_TIME),
            "gsi2pk",
            "gsi2sk",
            pk,
            since,
            until,
            now,
            caller,
            limit,
        )
        .await
    }
}
