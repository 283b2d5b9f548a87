//! One scheduled run: the default tenant's directory (when its CEC is configured) and every
//! platform tenant's with a CEC of its own (README "Platform mode"), each by `sync::sync`.
//!
//! Tenants are synced `RunLimits::concurrency` at a time, each bounded by its own budget, so a
//! failing or stalled CEC costs its tenant's slot and budget only; no tenant's sync starts
//! unless it can end inside the run's budget, so the run ends inside the function's timeout.
//! Tenants go in ID order from where the previous run stopped (the cursor in the default
//! tenant's directory partition), so a platform with more tenants than one run reaches is
//! gone round over successive runs. A tenant's failure is its own: logged with the tenant,
//! counted (`SyncFailures`, and `SyncStaleTenants` once its last success is older than
//! `AGENT_SYNC_STALE_HOURS`); the run fails (and so retries, then dead-letters) only when the
//! default tenant's sync fails or the registry cannot be read, as before platform mode.

use std::sync::Arc;
use std::time::Instant;

use cc_shared::domain::agents::SyncCounts;
use cc_shared::domain::clock::Clock;
use cc_shared::domain::protect::IndexKey;
use cc_shared::domain::tenant::TenantId;
use cc_shared::domain::tenant_settings::{TenantSettings, Vendor};
use cc_shared::metrics::{self, name};
use cc_shared::resources::StoreSet;
use cc_shared::store::{AgentStore, StoreError, TenantListing};
use cc_shared::web::tenancy::{open_settings, Built, BuiltPerTenant, StackKeys};
use tracing::Instrument;

use crate::cec_client::CecClient;
use crate::config::{tenant_cec, CecTimeouts, RunLimits};
use crate::sync::{sync, DeactivationGuard, SyncError};
use crate::FUNCTION;

/// What the scheduled run needs of platform mode: the registry, the stores of each tenant's
/// scope, the stack's index key (which opens a tenant's settings) and the CEC timeouts.
pub struct Platform {
    pub listing: Arc<dyn TenantListing>,
    pub stores: StoreSet,
    pub index: IndexKey,
    pub timeouts: CecTimeouts,
    /// Each tenant's CEC client and guard, kept while its settings are unchanged, so a warm
    /// instance's next run reuses its TLS setup and its CEC token.
    pub clients: BuiltPerTenant<(CecClient, DeactivationGuard)>,
}

/// The scheduled sync's dependencies.
pub struct Scheduler {
    /// The default tenant's CEC and guard (None: not configured here).
    pub default: Option<(CecClient, DeactivationGuard)>,
    /// The default tenant's directory (and the run's cursor).
    pub store: Arc<dyn AgentStore>,
    pub platform: Option<Platform>,
    pub limits: RunLimits,
}

/// What one run did.
#[derive(Debug, Default, serde::Serialize)]
pub struct RunReport {
    /// The default tenant's sync (None: its CEC is not configured here).
    pub default: Option<SyncCounts>,
    /// Tenants with a CEC of their own synced in this run, and those that failed.
    pub tenants_synced: usize,
    pub tenants_failed: Vec<String>,
    /// Failed tenants whose last successful sync is older than the stale time (or none).
    pub tenants_stale: usize,
    /// Tenants with a CEC left of the round after this run (the next run starts with them;
    /// 0: the round is complete, the next run starts a new one).
    pub tenants_left: usize,
}

/// One tenant's part of a run.
enum Outcome {
    Synced,
    Failed { stale: bool },
}

/// A tenant with a CEC of its own, in the order of the round.
struct Job {
    id: TenantId,
    settings: TenantSettings,
}

/// The tenants with a CEC of their own, not suspended, in ID order: those after `cursor`
/// (the rest of the round), or all of them when none is left (a new round). A tenant whose
/// settings do not open is logged and left out.
fn round(
    platform: &Platform,
    entries: Vec<cc_shared::store::TenantEntry>,
    cursor: Option<&str>,
) -> Vec<Job> {
    let stack = StackKeys::Index(&platform.index);
    let mut jobs: Vec<Job> = entries
        .into_iter()
        .filter(|e| !e.tenant.suspended && e.settings.values.keys().any(|k| k.starts_with("CEC_")))
        .filter_map(|e| match open_settings(&e, &stack) {
            Ok(settings) if settings.has(Vendor::Cec) => Some(Job {
                id: e.tenant.id,
                settings,
            }),
            Ok(_) => None,
            Err(error) => {
                metrics::count(name::SYNC_FAILURES, 1);
                tracing::error!(function = FUNCTION, tenant = %e.tenant.id, %error, "sync failed");
                None
            }
        })
        .collect();
    jobs.sort_by(|a, b| a.id.cmp(&b.id));
    // The rest of the round after the cursor; a new round when nothing is left of it.
    if let Some(cursor) = cursor {
        let split = jobs.partition_point(|j| j.id.as_str() <= cursor);
        if split < jobs.len() {
            jobs.drain(..split);
        }
    }
    jobs
}

/// One tenant's sync within `limits.tenant_budget`; on failure, whether it is stale.
async fn sync_tenant(
    id: TenantId,
    client: Built<(CecClient, DeactivationGuard)>,
    stores: StoreSet,
    clock: Arc<dyn Clock>,
    limits: RunLimits,
) -> (TenantId, Outcome) {
    let store = stores.for_tenant(&id).agents();
    let span = tracing::info_span!("tenant", tenant = %id);
    let work = async {
        let client = match client {
            Ok(client) => client,
            Err(fault) => {
                metrics::count(name::SYNC_FAILURES, 1);
                let (setting, error) = &*fault;
                tracing::error!(
                    function = FUNCTION,
                    setting,
                    error,
                    "sync failed: tenant settings unusable"
                );
                return false;
            }
        };
        let (cec, guard) = &*client;
        match tokio::time::timeout(limits.tenant_budget, sync(&*store, cec, &*clock, *guard)).await
        {
            Ok(result) => result.is_ok(),
            Err(_) => {
                metrics::count(name::SYNC_FAILURES, 1);
                tracing::error!(
                    function = FUNCTION,
                    budget_ms = limits.tenant_budget.as_millis() as u64,
                    "sync failed: over the tenant's budget"
                );
                false
            }
        }
    }
    .instrument(span);
    if work.await {
        return (id, Outcome::Synced);
    }
    // Stale unless a recent sync succeeded (an unreadable state counts as stale).
    let last = tokio::time::timeout(limits.tenant_budget, store.last_sync()).await;
    let stale = match last {
        Ok(Ok(Some(state))) => clock.now() - state.at > limits.stale_after_seconds,
        _ => true,
    };
    (id, Outcome::Failed { stale })
}

/// The tenants' part of a run: their syncs, bounded, and the cursor moved on.
async fn run_tenants(
    s: &Scheduler,
    platform: &Platform,
    clock: Arc<dyn Clock>,
    deadline: Instant,
    report: &mut RunReport,
) -> Result<(), StoreError> {
    let limits = s.limits;
    let listed = tokio::time::timeout(limits.tenant_budget, async {
        let entries = platform.listing.list_tenants().await?;
        let cursor = s.store.sync_cursor().await?;
        Ok::<_, StoreError>((entries, cursor))
    })
    .await
    .map_err(|_| StoreError::Unavailable("the tenant registry did not answer in time".into()))??;
    let (entries, cursor) = listed;
    let jobs = round(platform, entries, cursor.as_deref());
    let total = jobs.len();
    let mut queue = jobs.into_iter().take(limits.per_run);
    let mut running = tokio::task::JoinSet::new();
    let (mut launched, mut last_launched) = (0usize, None::<TenantId>);
    let mut stopped = false;
    loop {
        while !stopped && running.len() < limits.concurrency {
            // A tenant starts only if its whole budget fits in what is left of the run's.
            if Instant::now() + limits.tenant_budget > deadline {
                stopped = true;
                break;
            }
            let Some(job) = queue.next() else {
                stopped = true;
                break;
            };
            launched += 1;
            last_launched = Some(job.id.clone());
            let timeouts = platform.timeouts;
            let (client, _) = platform
                .clients
                .get_for(&job.id, &job.settings, |settings| {
                    tenant_cec(settings, timeouts)
                });
            running.spawn(sync_tenant(
                job.id,
                client,
                platform.stores.clone(),
                clock.clone(),
                limits,
            ));
        }
        let Some(joined) = running.join_next().await else {
            break;
        };
        match joined {
            Ok((_, Outcome::Synced)) => report.tenants_synced += 1,
            Ok((id, Outcome::Failed { stale })) => {
                report.tenants_failed.push(id.to_string());
                report.tenants_stale += usize::from(stale);
            }
            Err(e) => report.tenants_failed.push(format!("(a task ended: {e})")),
        }
    }
    report.tenants_failed.sort();
    report.tenants_left = total - launched;
    // Where the next run starts: after the last tenant started, or from the first.
    let next = (report.tenants_left > 0).then_some(last_launched).flatten();
    if next.is_some() || cursor.is_some() {
        let write = s.store.put_sync_cursor(next.as_ref().map(TenantId::as_str));
        tokio::time::timeout(limits.tenant_budget, write)
            .await
            .map_err(|_| StoreError::Unavailable("the cursor was not written in time".into()))??;
    }
    Ok(())
}

/// One scheduled run (see the module's comment).
pub async fn run(s: Arc<Scheduler>, clock: Arc<dyn Clock>) -> Result<RunReport, SyncError> {
    let deadline = Instant::now() + s.limits.run_budget;
    let default = async {
        match &s.default {
            Some((cec, guard)) => {
                let sync = sync(&*s.store, cec, &*clock, *guard);
                match tokio::time::timeout(s.limits.tenant_budget, sync).await {
                    Ok(result) => result.map(Some),
                    Err(_) => Err({
                        metrics::count(name::SYNC_FAILURES, 1);
                        SyncError::Upstream(cc_shared::web::error::ApiError::UpstreamFailed {
                            timeout: true,
                            reason: "the sync did not end within its budget".into(),
                        })
                    }),
                }
            }
            None => Ok(None),
        }
    };
    let mut report = RunReport::default();
    let tenants = async {
        match &s.platform {
            Some(platform) => run_tenants(&s, platform, clock.clone(), deadline, &mut report).await,
            None => Ok(()),
        }
    };
    let (default, tenants) = tokio::join!(default, tenants);
    if report.tenants_stale > 0 {
        metrics::count(name::SYNC_STALE_TENANTS, report.tenants_stale as u64);
    }
    if !report.tenants_failed.is_empty() || report.tenants_left > 0 {
        tracing::warn!(
            function = FUNCTION,
            synced = report.tenants_synced,
            failed = report.tenants_failed.len(),
            stale = report.tenants_stale,
            left = report.tenants_left,
            "tenants' syncs"
        );
    }
    report.default = default?;
    tenants?;
    Ok(report)
}
