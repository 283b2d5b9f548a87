//! The scheduled sync: fetch the CEC's whole directory, decide what changes (`plan`, pure),
//! write only that.

use std::collections::HashMap;
use std::time::Instant;

use cc_shared::domain::agents::{Agent, SyncCounts, SyncState};
use cc_shared::domain::clock::Clock;
use cc_shared::metrics::{self, name};
use cc_shared::store::{AgentStore, StoreError};
use cc_shared::web::envelope::latency_ms;
use cc_shared::web::error::ApiError;

use crate::cec_client::{CecClient, Directory};
use crate::FUNCTION;

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("the CEC directory could not be fetched: {0}")]
    Upstream(ApiError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What changes a directory answer makes to our copy (pure: decided before anything is written).
pub fn plan(current: &[Agent], live: &Directory, now: i64) -> (Vec<Agent>, SyncCounts) {
    let mut by_work_no: HashMap<&str, &Agent> =
        current.iter().map(|a| (a.work_no.as_str(), a)).collect();
    let mut writes = Vec::new();
    let mut counts = SyncCounts::default();
    for l in &live.agents {
        match by_work_no.remove(l.work_no.as_str()) {
            None => {
                counts.added += 1;
                writes.push(Agent {
                    work_no: l.work_no.clone(),
                    account_code: l.account_code.clone(),
                    sip_account: l.sip_account.clone(),
                    active: true,
                    first_seen: now,
                    last_seen: now,
                    inactive_since: None,
                });
            }
            Some(old)
                if !old.active
                    || old.account_code != l.account_code
                    || old.sip_account != l.sip_account =>
            {
                counts.updated += 1;
                writes.push(Agent {
                    account_code: l.account_code.clone(),
                    sip_account: l.sip_account.clone(),
                    active: true,
                    last_seen: now,
                    inactive_since: None,
                    ..old.clone()
                });
            }
            Some(_) => counts.unchanged += 1,
        }
    }
    // Missing from a successful answer: marked inactive, never deleted.
    let mut gone: Vec<&Agent> = by_work_no.into_values().filter(|a| a.active).collect();
    gone.sort_by(|a, b| a.work_no.cmp(&b.work_no));
    for old in gone {
        counts.deactivated += 1;
        writes.push(Agent {
            active: false,
            inactive_since: Some(now),
            ..old.clone()
        });
    }
    (writes, counts)
}

/// One sync: fetch the whole directory (any failure changes nothing), then write only what
/// changed. A second sync right after writes no agent.
pub async fn sync(
    store: &dyn AgentStore,
    cec: &CecClient,
    clock: &dyn Clock,
) -> Result<SyncCounts, SyncError> {
    let started = Instant::now();
    let now = clock.now();
    let result = async {
        let live = cec.directory(now).await.map_err(SyncError::Upstream)?;
        let current = store.list_agents().await?;
        let (writes, counts) = plan(&current, &live, now);
        store.put_agents(&writes).await?;
        store.put_last_sync(&SyncState { at: now, counts }).await?;
        Ok(counts)
    }
    .await;
    let latency_ms = latency_ms(started);
    match &result {
        Ok(c) => {
            metrics::count(name::SYNC_SUCCEEDED, 1);
            metrics::count(name::AGENTS_ADDED, c.added as u64);
            metrics::count(name::AGENTS_UPDATED, c.updated as u64);
            metrics::count(name::AGENTS_DEACTIVATED, c.deactivated as u64);
        }
        Err(_) => metrics::count(name::SYNC_FAILURES, 1),
    }
    match &result {
        Ok(c) => tracing::info!(
            function = FUNCTION,
            added = c.added,
            updated = c.updated,
            deactivated = c.deactivated,
            unchanged = c.unchanged,
            latency_ms,
            "sync"
        ),
        Err(e) => tracing::error!(function = FUNCTION, error = %e, latency_ms, "sync failed"),
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cec_client::LiveAgent;

    fn live(agents: &[(&str, Option<&str>)]) -> Directory {
        Directory {
            sip_service_ip: None,
            sip_service_port: None,
            agents: agents
                .iter()
                .map(|(w, sip)| LiveAgent {
                    work_no: w.to_string(),
                    account_code: None,
                    sip_account: sip.map(str::to_string),
                    sip_pwd: Some("secret".into()),
                })
                .collect(),
        }
    }

    #[test]
    fn plan_adds_updates_deactivates_and_is_idempotent() {
        let (w1, c1) = plan(&[], &live(&[("1", Some("100")), ("2", None)]), 10);
        assert_eq!((c1.added, c1.updated, c1.deactivated), (2, 0, 0));
        let (w2, c2) = plan(&w1, &live(&[("1", Some("100")), ("2", None)]), 20);
        assert!(w2.is_empty(), "a second identical sync writes nothing");
        assert_eq!(
            (c2.added, c2.updated, c2.deactivated, c2.unchanged),
            (0, 0, 0, 2)
        );
        let (w3, c3) = plan(&w1, &live(&[("1", Some("101"))]), 30);
        assert_eq!((c3.added, c3.updated, c3.deactivated), (0, 1, 1));
        let gone = w3.iter().find(|a| a.work_no == "2").unwrap();
        assert_eq!((gone.active, gone.inactive_since), (false, Some(30)));
        let changed = w3.iter().find(|a| a.work_no == "1").unwrap();
        assert_eq!((changed.first_seen, changed.last_seen), (10, 30));
        // Back again: reactivated.
        let (w4, c4) = plan(&w3, &live(&[("2", None)]), 40);
        assert_eq!((c4.updated, c4.deactivated), (1, 1));
        assert!(w4
            .iter()
            .any(|a| a.work_no == "2" && a.active && a.inactive_since.is_none()));
    }
}
