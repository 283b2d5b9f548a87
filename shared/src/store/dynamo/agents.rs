//! Agent directory items: `pk = "AGENTS"`, `sk = "AGENT#<workNo>"` (one partition, listed by one
//! Query), the sync state `pk = "AGENTS"`, `sk = "SYNC"`, and links `pk = "LINK#<account>"`,
//! `sk = "LINK"`; a platform tenant's the same under its scope (`T#<tenant>#AGENTS`,
//! `T#<tenant>#LINK#<account>`). The scheduled sync's place in the round of tenants is
//! `pk = "AGENTS"`, `sk = "CURSOR"`. No softphone password is ever written.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;

use super::{classify, number_attr, string_attr, DynamoStore, PK, SK};
use crate::domain::agents::{Agent, SyncCounts, SyncState};
use crate::store::{AgentStore, StoreError};

pub(super) const AGENTS_PK: &str = "AGENTS";
pub(super) const AGENT_SK_PREFIX: &str = "AGENT#";
const SYNC_SK: &str = "SYNC";
const CURSOR_SK: &str = "CURSOR";

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub(super) fn agent_key(work_no: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([
        (PK.into(), s(AGENTS_PK)),
        (SK.into(), s(format!("{AGENT_SK_PREFIX}{work_no}"))),
    ])
}

impl DynamoStore {
    fn agents_pk(&self) -> String {
        format!("{}{AGENTS_PK}", self.scope)
    }

    fn link_pk(&self, account: &str) -> String {
        format!("{}LINK#{account}", self.scope)
    }

    fn scoped_agent_key(&self, work_no: &str) -> HashMap<String, AttributeValue> {
        let mut key = agent_key(work_no);
        key.insert(PK.into(), s(self.agents_pk()));
        key
    }
}

fn agent_item(pk: &str, a: &Agent) -> HashMap<String, AttributeValue> {
    let mut item = agent_key(&a.work_no);
    item.insert(PK.into(), s(pk));
    item.insert("work_no".into(), s(a.work_no.clone()));
    item.insert("active".into(), AttributeValue::Bool(a.active));
    item.insert("first_seen".into(), n(a.first_seen));
    item.insert("last_seen".into(), n(a.last_seen));
    if let Some(v) = &a.account_code {
        item.insert("account_code".into(), s(v.clone()));
    }
    if let Some(v) = &a.sip_account {
        item.insert("sip_account".into(), s(v.clone()));
    }
    if let Some(t) = a.inactive_since {
        item.insert("inactive_since".into(), n(t));
    }
    item
}

pub(super) fn parse_agent(item: &HashMap<String, AttributeValue>) -> Option<Agent> {
    Some(Agent {
        work_no: string_attr(item, "work_no")?,
        account_code: string_attr(item, "account_code"),
        sip_account: string_attr(item, "sip_account"),
        active: matches!(item.get("active"), Some(AttributeValue::Bool(true))),
        first_seen: number_attr(item, "first_seen")?,
        last_seen: number_attr(item, "last_seen")?,
        inactive_since: number_attr(item, "inactive_since"),
    })
}

#[async_trait]
impl AgentStore for DynamoStore {
    async fn list_agents(&self) -> Result<Vec<Agent>, StoreError> {
        let mut agents = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .consistent_read(true)
                .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#sk", SK)
                .expression_attribute_values(":pk", s(self.agents_pk()))
                .expression_attribute_values(":prefix", s(AGENT_SK_PREFIX))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(classify)?;
            agents.extend(out.items().iter().filter_map(parse_agent));
            match out.last_evaluated_key {
                Some(key) => start = Some(key),
                None => break,
            }
        }
        Ok(agents)
    }

    async fn get_agent(&self, work_no: &str) -> Result<Option<Agent>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(self.scoped_agent_key(work_no)))
            .consistent_read(true)
            .send()
            .await
            .map_err(classify)?;
        Ok(out.item.as_ref().and_then(parse_agent))
    }

    async fn put_agents(&self, agents: &[Agent]) -> Result<(), StoreError> {
        let pk = self.agents_pk();
        self.batch_put(agents.iter().map(|a| agent_item(&pk, a)).collect())
            .await
    }

    async fn last_sync(&self) -> Result<Option<SyncState>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, s(self.agents_pk()))
            .key(SK, s(SYNC_SK))
            .consistent_read(true)
            .send()
            .await
            .map_err(classify)?;
        Ok(out.item.and_then(|item| {
            Some(SyncState {
                at: number_attr(&item, "at")?,
                counts: SyncCounts {
                    added: number_attr(&item, "added")?,
                    updated: number_attr(&item, "updated")?,
                    deactivated: number_attr(&item, "deactivated")?,
                    unchanged: number_attr(&item, "unchanged")?,
                },
            })
        }))
    }

    async fn put_last_sync(&self, state: &SyncState) -> Result<(), StoreError> {
        let c = state.counts;
        self.client
            .put_item()
            .table_name(&self.table)
            .item(PK, s(self.agents_pk()))
            .item(SK, s(SYNC_SK))
            .item("at", n(state.at))
            .item("added", n(c.added as i64))
            .item("updated", n(c.updated as i64))
            .item("deactivated", n(c.deactivated as i64))
            .item("unchanged", n(c.unchanged as i64))
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn link_account(&self, account: &str, work_no: &str) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item(PK, s(self.link_pk(account)))
            .item(SK, s("LINK"))
            .item("work_no", s(work_no))
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn linked_work_no(&self, account: &str) -> Result<Option<String>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, s(self.link_pk(account)))
            .key(SK, s("LINK"))
            .consistent_read(true)
            .send()
            .await
            .map_err(classify)?;
        Ok(out.item.as_ref().and_then(|i| string_attr(i, "work_no")))
    }

    async fn sync_cursor(&self) -> Result<Option<String>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, s(self.agents_pk()))
            .key(SK, s(CURSOR_SK))
            .consistent_read(true)
            .send()
            .await
            .map_err(classify)?;
        Ok(out
            .item
            .as_ref()
            .and_then(|i| string_attr(i, "after"))
            .filter(|a| !a.is_empty()))
    }

    async fn put_sync_cursor(&self, after: Option<&str>) -> Result<(), StoreError> {
        // An empty `after` is the start of the round (a PutItem either way: no DeleteItem code
        // in the binary for this).
        self.client
            .put_item()
            .table_name(&self.table)
            .item(PK, s(self.agents_pk()))
            .item(SK, s(CURSOR_SK))
            .item("after", s(after.unwrap_or_default()))
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }
}
