//! `POST /agents/softphone`: admitted (credentials, method, body), the link and the agent read
//! within the store budget, the details fetched live from the CEC within the CEC budget, logged
//! in one line (never the softphone password).

use std::time::Instant;

use cc_shared::metrics;
use cc_shared::store::StoreError;
use cc_shared::web::envelope::{admit, latency_ms};
use cc_shared::web::error::ApiError;
use cc_shared::web::http::describe_json_error;
use lambda_http::{Body, Request, Response};

use crate::config::MAX_BODY_BYTES;
use crate::wire::{self, Softphone, SoftphoneRequest};
use crate::{AgentDirectory, FUNCTION};

/// `POST /agents/softphone`: the linked agent's softphone details, fetched live from the CEC.
pub async fn handle(svc: &AgentDirectory, req: Request) -> Response<Body> {
    let started = Instant::now();
    let mut caller = None;
    let result = softphone(svc, &req, &mut caller).await;
    let response = match &result {
        Ok(s) => wire::softphone_response(s),
        Err(e) => wire::error_response(e),
    };
    let latency_ms = latency_ms(started);
    metrics::request(ApiError::class_of(&result), latency_ms);
    tracing::info!(
        function = FUNCTION,
        caller,
        status = response.status().as_u16(),
        latency_ms,
        work_no = result.as_ref().ok().map(|s| s.work_no.as_str()),
        "request"
    );
    response
}

async fn softphone(
    svc: &AgentDirectory,
    req: &Request,
    caller: &mut Option<String>,
) -> Result<Softphone, ApiError> {
    let body = admit(req, &svc.credentials, MAX_BODY_BYTES, caller)?;
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
    let live = tokio::time::timeout(svc.cec_budget, svc.cec.directory(svc.clock.now()))
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
