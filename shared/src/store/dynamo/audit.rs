//! Audit items: `pk = "TXA#<caller>"` (a platform tenant's under its scope,
//! `T#<tenant>#TXA#<caller>`, so `tenants remove` erases them), `sk = "<12-digit epoch>#<id>"`, listed by time through
//! index `gsi2` (`gsi2pk = "TXAUDIT"`), expiring through the table's TTL.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;

use super::{classify, number_attr, string_attr, DynamoStore, GSI_BY_TIME, PK, SK, TTL_ATTRIBUTE};
use crate::domain::audit::AuditRecord;
use crate::store::{AuditStore, StoreError};

const AUDIT_ALL: &str = "TXAUDIT";

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn parse(item: &HashMap<String, AttributeValue>) -> Option<AuditRecord> {
    Some(AuditRecord {
        time: number_attr(item, "time")?,
        id: string_attr(item, "id")?,
        caller: string_attr(item, "caller")?,
        mode: string_attr(item, "mode")?,
        subject: string_attr(item, "subject")?,
        outcome: string_attr(item, "outcome")?,
        jti: string_attr(item, "jti"),
        expires_at: number_attr(item, TTL_ATTRIBUTE)?,
    })
}

#[async_trait]
impl AuditStore for DynamoStore {
    async fn put_audit(&self, r: &AuditRecord) -> Result<(), StoreError> {
        let sk = format!("{:012}#{}", r.time.max(0), r.id);
        let mut item = HashMap::from([
            (PK.to_string(), s(format!("{}TXA#{}", self.scope, r.caller))),
            (SK.to_string(), s(sk.clone())),
            ("gsi2pk".into(), s(AUDIT_ALL)),
            ("gsi2sk".into(), s(sk)),
            ("time".into(), AttributeValue::N(r.time.to_string())),
            ("id".into(), s(r.id.clone())),
            ("caller".into(), s(r.caller.clone())),
            ("mode".into(), s(r.mode.clone())),
            ("subject".into(), s(r.subject.clone())),
            ("outcome".into(), s(r.outcome.clone())),
            (
                TTL_ATTRIBUTE.into(),
                AttributeValue::N(r.expires_at.to_string()),
            ),
        ]);
        if let Some(jti) = &r.jti {
            item.insert("jti".into(), s(jti.clone()));
        }
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn list_audit(&self, limit: usize, now: i64) -> Result<Vec<AuditRecord>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(GSI_BY_TIME)
            .key_condition_expression("gsi2pk = :pk")
            .filter_expression("#ttl > :now")
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(":pk", s(AUDIT_ALL))
            .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
            .scan_index_forward(false)
            .limit(limit.clamp(1, 1000) as i32)
            .send()
            .await
            .map_err(classify)?;
        Ok(out.items().iter().filter_map(parse).collect())
    }
}
