//! One request: admitted (credentials, method, body), parsed, verified, answered in
//! Huawei's format and logged in one line (the number masked, never a PIN).

use std::time::Instant;

use cc_shared::domain::identity::Reason;
use cc_shared::domain::phone::PhoneKey;
use cc_shared::metrics::{self, name};
use cc_shared::web::envelope::{admit, latency_ms};
use cc_shared::web::error::ApiError;
use cc_shared::web::http::describe_json_error;
use lambda_http::{Body, Request, Response};
use serde_json::Value;

use crate::config::{valid_name, MAX_BODY_BYTES, MAX_TYPE_CODE_CHARS, MAX_WORK_NO_CHARS};
use crate::wire::{self, VerifyAnswer};
use crate::{IdentityVerification, FUNCTION};

/// The validated request.
pub(crate) struct Attempt {
    pub(crate) phone: PhoneKey,
    pub(crate) agent: String,
    pub(crate) verify_type_code: String,
    pub(crate) input: String,
}

/// What is known of a request, for its record and log line, even when it is refused.
#[derive(Default)]
pub(crate) struct Facts {
    pub(crate) caller: Option<String>,
    pub(crate) phone: Option<PhoneKey>,
    pub(crate) agent: String,
    pub(crate) verify_type_code: String,
}

/// Answers one request; every error becomes Huawei's format here.
pub async fn handle(svc: &IdentityVerification, req: Request) -> Response<Body> {
    let started = Instant::now();
    let mut facts = Facts::default();
    let result = process(svc, &req, &mut facts).await;
    let class = ApiError::class_of(&result);
    let (response, reason) = match &result {
        Ok(answer) => {
            if answer.started_lockout() {
                metrics::count(name::LOCKOUTS_STARTED, 1);
            }
            (wire::answer_response(answer), answer.reason)
        }
        Err(err) => {
            if let ApiError::Store(e) = err {
                tracing::error!(function = FUNCTION, error = %e, "store failure");
            }
            let reason = match err {
                ApiError::Store(_) => Reason::Unavailable,
                _ => Reason::BadRequest,
            };
            (wire::error_response(err), reason)
        }
    };
    let latency_ms = latency_ms(started);
    metrics::request(class, latency_ms);
    metrics::count(reason_metric(reason), 1);
    tracing::info!(
        function = FUNCTION,
        caller = facts.caller,
        status = response.status().as_u16(),
        latency_ms,
        agent = facts.agent,
        verify_type_code = facts.verify_type_code,
        customer = facts.phone.as_ref().map(PhoneKey::masked),
        result = wire::verify_result(reason),
        reason = reason.as_str(),
        "request"
    );
    response
}

/// The metric counting answers given for `reason`.
fn reason_metric(reason: Reason) -> &'static str {
    match reason {
        Reason::Ok => name::VERIFY_OK,
        Reason::WrongPin => name::VERIFY_WRONG_PIN,
        Reason::Locked => name::VERIFY_LOCKED,
        Reason::UnknownCustomer => name::VERIFY_UNKNOWN_CUSTOMER,
        Reason::UnknownAgent => name::VERIFY_UNKNOWN_AGENT,
        Reason::BadRequest => name::VERIFY_BAD_REQUEST,
        Reason::Unavailable => name::VERIFY_UNAVAILABLE,
    }
}

async fn process(
    svc: &IdentityVerification,
    req: &Request,
    facts: &mut Facts,
) -> Result<VerifyAnswer, ApiError> {
    let attempt = match admit(
        req,
        &svc.config.credentials,
        MAX_BODY_BYTES,
        &mut facts.caller,
    )
    .and_then(|body| parse(svc, body, facts))
    {
        Ok(attempt) => attempt,
        // Without credentials nothing is recorded; a refused but authenticated request is an
        // attempt too, and keeps its record.
        Err(e @ ApiError::Unauthorized) => return Err(e),
        Err(e) => {
            svc.record_refusal(facts).await;
            return Err(e);
        }
    };
    let budget = svc.config.store_budget;
    budget
        .run(svc.verify(attempt))
        .await
        .map_err(ApiError::from)
}

/// A calldata value as text, as sent (never trimmed: limits hold for what was sent): the IVR
/// may send strings or numbers. None when absent; an error saying what is wrong with a value
/// of another kind, or a number that is not a whole, non-negative one of 64 bits
/// (`13920000004.0`, `1.39E10`, `-1`, 30 digits): such a number cannot be spelled back as the
/// digits that were typed.
fn text_field(
    calldata: &serde_json::Map<String, Value>,
    name: &str,
) -> Result<Option<String>, ApiError> {
    match calldata.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(n) => Ok(Some(n.to_string())),
            None => Err(ApiError::bad_request(format!(
                "calldata.{name} is a number but not a whole, non-negative one of 64 bits (it \
                 has a decimal point, an exponent, a sign or too many digits): send the digits \
                 as a string"
            ))),
        },
        Some(_) => Err(ApiError::bad_request(format!(
            "calldata.{name} must be a string or a number"
        ))),
    }
}

fn parse(svc: &IdentityVerification, body: &[u8], facts: &mut Facts) -> Result<Attempt, ApiError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| ApiError::bad_request(describe_json_error(&e)))?;
    let calldata = value
        .get("calldata")
        .and_then(Value::as_object)
        .ok_or_else(|| ApiError::bad_request("calldata must be an object"))?;

    let agent = text_field(calldata, "verifyWorkNo")?
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::bad_request("calldata.verifyWorkNo is missing"))?;
    if !valid_name(&agent.replace('-', "_"), MAX_WORK_NO_CHARS) {
        return Err(ApiError::bad_request(format!(
            "calldata.verifyWorkNo must be up to {MAX_WORK_NO_CHARS} letters, digits, '-' or '_'"
        )));
    }
    facts.agent = agent.clone();

    let verify_type_code = match calldata.get("verifyTypeCode") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) if s.is_empty() => String::new(),
        Some(Value::String(s)) if valid_name(s, MAX_TYPE_CODE_CHARS) => s.clone(),
        Some(_) => {
            return Err(ApiError::bad_request(format!(
                "calldata.verifyTypeCode must be up to {MAX_TYPE_CODE_CHARS} letters, digits or underscores"
            )))
        }
    };
    facts.verify_type_code = verify_type_code.clone();

    let number = text_field(calldata, "verifyServiceNo")?
        .ok_or_else(|| ApiError::bad_request("calldata.verifyServiceNo is missing"))?;
    let phone = svc
        .config
        .phones
        .normalize(&number)
        .map_err(|e| ApiError::bad_request(format!("calldata.verifyServiceNo: {e}")))?;
    facts.phone = Some(phone.clone());

    // Only a string: a JSON number would have lost a PIN's leading zeros.
    let field = &svc.config.input_field;
    let input = match calldata.get(field.as_str()) {
        // As typed: anything but 4 to 12 ASCII digits (whitespace included) is a wrong PIN.
        Some(Value::String(s)) => s.clone(),
        Some(_) => {
            return Err(ApiError::bad_request(format!(
                "calldata.{field} must be a string of digits"
            )))
        }
        None => {
            return Err(ApiError::bad_request(format!(
                "calldata.{field} is missing"
            )))
        }
    };
    Ok(Attempt {
        phone,
        agent,
        verify_type_code,
        input,
    })
}
