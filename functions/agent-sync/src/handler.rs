//! `POST /agents/softphone`, in the frame of `web::envelope`: the link and the agent read
//! within the store budget, the details fetched live from the CEC within the CEC budget, logged
//! in one line (never the softphone password).

use std::future::Future;
use std::sync::Arc;

use cc_shared::store::{AgentStore, StoreError};
use cc_shared::web::auth::Credentials;
use cc_shared::web::envelope::{self, Callback, Caller, RequestLine, TenancyRef};
use cc_shared::web::error::ApiError;
use cc_shared::web::http::describe_json_error;
use cc_shared::web::tenancy::StackKeys;
use lambda_http::{Body, Request, Response};

use crate::cec_client::CecClient;
use crate::config::MAX_BODY_BYTES;
use crate::wire::{self, Softphone, SoftphoneRequest};
use crate::{AgentDirectory, FUNCTION};

/// What the request's log line names: the agent answered for (never the password).
#[derive(Default)]
pub struct Facts {
    work_no: Option<String>,
}

/// `POST /agents/softphone`: the linked agent's softphone details, fetched live from the CEC
/// (the frame of `web::envelope`, with the work below).
pub async fn handle(svc: &AgentDirectory, req: Request) -> Response<Body> {
    envelope::handle(svc, req).await
}

impl Callback for AgentDirectory {
    type Answer = Softphone;
    type Facts = Facts;
    const FUNCTION: &'static str = FUNCTION;
    const MAX_BODY: usize = MAX_BODY_BYTES;

    fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    fn tenancy(&self) -> Option<TenancyRef<'_>> {
        self.tenants.as_ref().map(|t| TenancyRef {
            tenancy: &t.tenancy,
            stack: StackKeys::Index(&t.index),
        })
    }

    fn work(
        &self,
        caller: &Caller,
        body: &[u8],
        _facts: &mut Facts,
    ) -> impl Future<Output = Result<Softphone, ApiError>> + Send {
        softphone(self, caller, body)
    }

    fn respond(&self, result: Result<Softphone, ApiError>, facts: &mut Facts) -> Response<Body> {
        match result {
            Ok(s) => {
                facts.work_no = Some(s.work_no.clone());
                wire::softphone_response(&s)
            }
            Err(e) => wire::error_response(&e),
        }
    }

    fn log(line: &RequestLine<'_>, facts: &Facts) {
        tracing::info!(
            function = line.function,
            caller = line.caller,
            status = line.status,
            latency_ms = line.latency_ms,
            work_no = facts.work_no.as_deref(),
            "request"
        );
    }
}

/// The caller's directory and CEC: the default tenant's, or its tenant's own.
fn route(
    svc: &AgentDirectory,
    caller: &Caller,
) -> Result<(Arc<dyn AgentStore>, Arc<CecClient>), ApiError> {
    match (&caller.tenant, &svc.tenants) {
        (Some(tenant), Some(tenants)) => Ok((tenants.agents(&tenant.id), tenants.cec(tenant)?)),
        _ => {
            let cec = svc
                .cec
                .clone()
                .ok_or_else(|| ApiError::Unconfigured(crate::config::UNCONFIGURED_ANSWER.into()))?;
            Ok((svc.store.clone(), cec))
        }
    }
}

async fn softphone(
    svc: &AgentDirectory,
    caller: &Caller,
    body: &[u8],
) -> Result<Softphone, ApiError> {
    let request: SoftphoneRequest =
        serde_json::from_slice(body).map_err(|e| ApiError::bad_request(describe_json_error(&e)))?;
    let account = request.account.trim();
    if !cc_shared::domain::agents::valid_account(account) {
        return Err(ApiError::bad_request(
            "account must be 1 to 128 characters, without control characters",
        ));
    }
    let (store, cec) = route(svc, caller)?;
    let lookup = async {
        let Some(work_no) = store.linked_work_no(account).await? else {
            return Ok((None, None));
        };
        let agent = store.get_agent(&work_no).await?;
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
    let live = tokio::time::timeout(svc.cec_budget, cec.directory(svc.clock.now()))
        .await
        .map_err(|_| ApiError::UpstreamFailed {
            timeout: true,
            reason: format!(
                "the CEC did not answer within the request's budget of {} ms",
                svc.cec_budget.as_millis()
            ),
        })??;
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
