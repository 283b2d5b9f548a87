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
    #[error(
        "the CEC's answer would deactivate {deactivated} of {active} active agents (more than \
         {max_percent}%): nothing written. A CEC_BASE_URL, CEC_AGENT_INFO_PATH or \
         CEC_TENANT_SPACE_ID pointing at another directory looks like this; if the agents really \
         left, run `cc-callbacks agents sync --allow-mass-deactivation` once"
    )]
    TooManyDeactivations {
        deactivated: usize,
        active: usize,
        max_percent: u8,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How many of the active agents one sync may deactivate (`AGENT_SYNC_MAX_DEACTIVATE_PERCENT`):
/// a directory answer that would deactivate more is refused whole, since an empty or foreign
/// directory (the wrong tenant space or path) would otherwise take every agent out of service
/// at once. A few deactivations are always allowed, so a small directory can shrink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeactivationGuard {
    max_percent: u8,
}

impl DeactivationGuard {
    pub const DEFAULT_PERCENT: u8 = 50;
    /// Deactivations allowed whatever the share.
    pub const ALWAYS_ALLOWED: usize = 5;
    /// No limit (`--allow-mass-deactivation`, or the setting at 100).
    pub const OFF: DeactivationGuard = DeactivationGuard { max_percent: 100 };

    /// At most `max_percent` (1 to 100) of the active agents.
    pub fn at_most(max_percent: u8) -> Self {
        DeactivationGuard {
            max_percent: max_percent.clamp(1, 100),
        }
    }

    /// Ok, or the refusal of a plan deactivating `counts.deactivated` of `active` agents.
    pub fn check(&self, counts: &SyncCounts, active: usize) -> Result<(), SyncError> {
        let deactivated = counts.deactivated;
        if deactivated <= Self::ALWAYS_ALLOWED
            || deactivated * 100 <= usize::from(self.max_percent) * active
        {
            return Ok(());
        }
        Err(SyncError::TooManyDeactivations {
            deactivated,
            active,
            max_percent: self.max_percent,
        })
    }
}

impl Default for DeactivationGuard {
    fn default() -> Self {
        Self::at_most(Self::DEFAULT_PERCENT)
    }
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

/// One sync: fetch the whole directory (any failure changes nothing), check the plan against
/// `guard`, then write only what changed. A second sync right after writes no agent.
pub async fn sync(
    store: &dyn AgentStore,
    cec: &CecClient,
    clock: &dyn Clock,
    guard: DeactivationGuard,
) -> Result<SyncCounts, SyncError> {
    let started = Instant::now();
    let now = clock.now();
    let result = async {
        let live = cec.directory(now).await.map_err(SyncError::Upstream)?;
        let current = store.list_agents().await?;
        let (writes, counts) = plan(&current, &live, now);
        guard.check(&counts, current.iter().filter(|a| a.active).count())?;
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

    #[test]
    fn the_guard_refuses_deactivating_more_than_its_share_beyond_a_few() {
        let counts = |deactivated| SyncCounts {
            deactivated,
            ..SyncCounts::default()
        };
        let half = DeactivationGuard::default();
        // A few are always allowed, even all of a small directory.
        assert!(half.check(&counts(5), 5).is_ok());
        // Up to the share, and not one more.
        assert!(half.check(&counts(50), 100).is_ok());
        let refused = half.check(&counts(51), 100).unwrap_err();
        assert!(matches!(
            refused,
            SyncError::TooManyDeactivations {
                deactivated: 51,
                active: 100,
                max_percent: 50
            }
        ));
        assert!(refused.to_string().contains("--allow-mass-deactivation"));
        assert!(half.check(&counts(6), 6).is_err(), "an empty answer");
        assert!(DeactivationGuard::OFF.check(&counts(100), 100).is_ok());
    }
}
