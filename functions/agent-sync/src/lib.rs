//! Huawei CEC agent directory: keeps the enterprise's copy of the CEC's agents (sync by
//! schedule and on demand), links business accounts to agents, and hands an agent's softphone
//! details out live (`POST /agents/softphone`), never storing the softphone password.

pub mod cec_client;
pub mod wire;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cc_shared::config::{self, ConfigError};
use cc_shared::domain::agents::{Agent, SyncCounts, SyncState};
use cc_shared::domain::clock::Clock;
use cc_shared::store::{AgentStore, StoreError};
use cc_shared::web::auth::Credentials;
use cc_shared::web::error::ApiError;
use cc_shared::web::http::{body_bytes, describe_json_error, require_post};
use cc_shared::web::StoreBudget;
use lambda_http::{Body, Request, Response};
use wire::{Softphone, SoftphoneRequest};

use cec_client::{CecClient, CecSettings, Directory};

pub const CREDENTIALS_VAR: &str = "AGENT_DIRECTORY_CREDENTIALS";
pub const SECRET_ARN_VAR: &str = "CEC_SECRET_ARN";
/// Largest accepted softphone request body.
pub const MAX_BODY_BYTES: usize = 4 * 1024;
/// The store budget of one softphone request (`STORE_BUDGET_MS`): two reads (the link, the
/// agent) before the CEC is asked.
pub const DEFAULT_STORE_BUDGET_MS: u64 = 2000;

/// `CEC_APP_KEY` and `CEC_APP_SECRET`: one Secrets Manager secret in Lambda, the environment
/// locally.
pub struct CecSecrets {
    pub app_key: String,
    pub app_secret: String,
}

impl CecSecrets {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(CecSecrets {
            app_key: config::required("CEC_APP_KEY")?,
            app_secret: config::required("CEC_APP_SECRET")?,
        })
    }

    /// The JSON secret `{"app_key": "...", "app_secret": "..."}`.
    pub fn from_json(text: &str) -> Result<Self, ConfigError> {
        #[derive(serde::Deserialize)]
        struct Secret {
            app_key: String,
            app_secret: String,
        }
        let s: Secret = serde_json::from_str(text).map_err(|_| ConfigError::Invalid {
            name: SECRET_ARN_VAR,
            reason: "the secret must be JSON with app_key and app_secret".into(),
        })?;
        Ok(CecSecrets {
            app_key: s.app_key,
            app_secret: s.app_secret,
        })
    }

    /// From the secret named by `CEC_SECRET_ARN` when set, else the environment.
    #[cfg(feature = "aws")]
    pub async fn load(sdk: Option<&aws_config::SdkConfig>) -> Result<Self, ConfigError> {
        match cc_shared::aws::configured_secret(sdk, SECRET_ARN_VAR).await? {
            Some(json) => Self::from_json(&json),
            // In Lambda the secret is expected; the environment is for local runs (and the
            // benchmark harness's runtime emulator).
            None if config::in_lambda() && config::optional("CEC_APP_SECRET").is_none() => {
                Err(ConfigError::Missing(SECRET_ARN_VAR))
            }
            None => Self::from_env(),
        }
    }
}

/// The CEC client from `CEC_BASE_URL`, `CEC_AGENT_INFO_PATH`, `CEC_TOKEN_EXPIRE_SECONDS`,
/// `CEC_CONNECT_TIMEOUT_MS` and `CEC_TIMEOUT_MS`.
pub fn cec_from_env(secrets: CecSecrets) -> Result<CecClient, ConfigError> {
    CecClient::new(CecSettings {
        base_url: config::required("CEC_BASE_URL")?,
        agent_info_path: config::optional("CEC_AGENT_INFO_PATH")
            .unwrap_or_else(|| cec_client::DEFAULT_AGENT_INFO_PATH.into()),
        app_key: secrets.app_key,
        app_secret: secrets.app_secret,
        token_expire_seconds: config::number("CEC_TOKEN_EXPIRE_SECONDS", 3600, 120..=3600)?,
        connect_timeout: Duration::from_millis(config::number(
            "CEC_CONNECT_TIMEOUT_MS",
            2000,
            50..=30_000,
        )?),
        timeout: Duration::from_millis(config::number("CEC_TIMEOUT_MS", 10_000, 50..=60_000)?),
    })
}

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
    let latency_ms = (started.elapsed().as_secs_f64() * 1e6).round() / 1e3;
    match &result {
        Ok(c) => tracing::info!(
            function = "agent-sync",
            added = c.added,
            updated = c.updated,
            deactivated = c.deactivated,
            unchanged = c.unchanged,
            latency_ms,
            "sync"
        ),
        Err(e) => tracing::error!(function = "agent-sync", error = %e, latency_ms, "sync failed"),
    }
    result
}

/// The softphone endpoint's dependencies, built once per process.
pub struct AgentDirectory {
    credentials: Credentials,
    cec: Arc<CecClient>,
    store: Arc<dyn AgentStore>,
    clock: Arc<dyn Clock>,
    store_budget: StoreBudget,
}

impl AgentDirectory {
    pub fn new(
        credentials: Credentials,
        cec: Arc<CecClient>,
        store: Arc<dyn AgentStore>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        AgentDirectory {
            credentials,
            cec,
            store,
            clock,
            store_budget: StoreBudget::from_millis(DEFAULT_STORE_BUDGET_MS),
        }
    }

    /// `STORE_BUDGET_MS` as configured (the default otherwise).
    pub fn with_store_budget(mut self, budget: StoreBudget) -> Self {
        self.store_budget = budget;
        self
    }
}

/// `POST /agents/softphone`: the linked agent's softphone details, fetched live from the CEC.
pub async fn handle(svc: &AgentDirectory, req: Request) -> Response<Body> {
    let started = Instant::now();
    let mut caller = None;
    let result = softphone(svc, &req, &mut caller).await;
    let response = match &result {
        Ok(s) => wire::softphone_response(s),
        Err(e) => wire::error_response(e),
    };
    tracing::info!(
        function = "agent-directory",
        caller,
        work_no = result.as_ref().ok().map(|s| s.work_no.as_str()),
        status = response.status().as_u16(),
        latency_ms = (started.elapsed().as_secs_f64() * 1e6).round() / 1e3,
        "request"
    );
    response
}

async fn softphone(
    svc: &AgentDirectory,
    req: &Request,
    caller: &mut Option<String>,
) -> Result<Softphone, ApiError> {
    *caller = Some(
        svc.credentials
            .verify(req.headers().get(http::header::AUTHORIZATION))
            .ok_or(ApiError::Unauthorized)?,
    );
    require_post(req)?;
    let body = body_bytes(req, MAX_BODY_BYTES)?;
    let request: SoftphoneRequest =
        serde_json::from_slice(body).map_err(|e| ApiError::bad_request(describe_json_error(&e)))?;
    let account = request.account.trim();
    if !cc_shared::domain::agents::valid_account(account) {
        return Err(ApiError::bad_request(
            "account must be 1 to 128 characters, without control characters",
        ));
    }
    let lookup = async {
        let Some(work_no) = svc.store.linked_work_no(account).await? else {
            return Ok((None, None));
        };
        let agent = svc.store.get_agent(&work_no).await?;
        Ok::<_, StoreError>((Some(work_no), agent))
    };
    let (work_no, agent) = svc.store_budget.run(lookup).await?;
    let work_no = work_no
        .ok_or_else(|| ApiError::NotFound("this account is not linked to an agent".into()))?;
    match agent {
        Some(a) if a.active => {}
        _ => {
            return Err(ApiError::NotFound(
                "the linked agent is not active in the directory".into(),
            ))
        }
    }
    let live = svc.cec.directory(svc.clock.now()).await?;
    let agent = live
        .agents
        .into_iter()
        .find(|a| a.work_no == work_no)
        .ok_or_else(|| ApiError::NotFound("the linked agent is no longer in the CEC".into()))?;
    Ok(Softphone {
        work_no: agent.work_no,
        sip_account: agent.sip_account,
        sip_pwd: agent.sip_pwd,
        sip_service_ip: live.sip_service_ip,
        sip_service_port: live.sip_service_port,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use cec_client::LiveAgent;

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
