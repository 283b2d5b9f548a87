//! One request in the frame of `web::envelope`: parsed, verified (`verify.rs`), answered in
//! Huawei's format and logged in one line (the number masked, never a PIN).

use cc_shared::domain::identity::Reason;
use cc_shared::domain::phone::PhoneKey;
use cc_shared::metrics::{self, name};
use cc_shared::web::auth::Credentials;
use cc_shared::web::envelope::{self, Callback, Caller, RequestLine, TenancyRef};
use cc_shared::web::error::ApiError;
use cc_shared::web::http::describe_json_error;
use cc_shared::web::tenancy::StackKeys;
use lambda_http::{Body, Request, Response};
use serde_json::Value;

use crate::config::{valid_name, MAX_BODY_BYTES, MAX_TYPE_CODE_CHARS, MAX_WORK_NO_CHARS};
use crate::verify::{Attempt, Scope, Subject, Verdict};
use crate::wire;
use crate::{IdentityVerification, FUNCTION};

/// What is known of a request, for its record and log line, even when it is refused.
#[derive(Default)]
pub struct Facts {
    subject: Subject,
    /// The answer's reason, once answered.
    reason: Option<Reason>,
}

/// Answers one request (the frame of `web::envelope`, with the work below).
pub async fn handle(svc: &IdentityVerification, req: Request) -> Response<Body> {
    envelope::handle(svc, req).await
}

impl Callback for IdentityVerification {
    type Answer = Verdict;
    type Facts = Facts;
    const FUNCTION: &'static str = FUNCTION;
    const MAX_BODY: usize = MAX_BODY_BYTES;

    fn credentials(&self) -> &Credentials {
        &self.config.credentials
    }

    fn tenancy(&self) -> Option<TenancyRef<'_>> {
        let (tenancy, _) = self.tenants.as_ref()?;
        Some(TenancyRef {
            tenancy,
            stack: StackKeys::Index(&self.config.index),
        })
    }

    async fn work(
        &self,
        caller: &Caller,
        body: &[u8],
        facts: &mut Facts,
    ) -> Result<Verdict, ApiError> {
        let scope = Scope::of(self, caller);
        // A refused but authenticated request is an attempt too, and keeps its record.
        let (phone, input) = match parse(self, body, &mut facts.subject) {
            Ok(parsed) => parsed,
            Err(e) => {
                self.record_refusal(&scope, &facts.subject).await;
                return Err(e);
            }
        };
        let budget = self.config.store_budget;
        // The mode's factor (IDENTITY_MODES; the PIN when none is set).
        let (factor, x_key) = scope.factor_of(&facts.subject.verify_type_code)?;
        let Some(factor) = factor else {
            return budget
                .run(self.unknown_mode(&scope, &facts.subject))
                .await
                .map_err(ApiError::from);
        };
        facts.subject.factor = Some(factor);
        let attempt = Attempt {
            subject: facts.subject.clone(),
            phone,
            factor,
            input,
            x_key,
        };
        budget
            .run(self.verify(&scope, attempt))
            .await
            .map_err(ApiError::from)
    }

    async fn refused(&self, caller: &Caller, facts: &mut Facts) {
        self.record_refusal(&Scope::of(self, caller), &facts.subject)
            .await
    }

    /// Every error becomes Huawei's format here.
    fn respond(&self, result: Result<Verdict, ApiError>, facts: &mut Facts) -> Response<Body> {
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
                    ApiError::Store(_) | ApiError::Unconfigured(_) => Reason::Unavailable,
                    _ => Reason::BadRequest,
                };
                (wire::error_response(err), reason)
            }
        };
        metrics::count(reason_metric(reason), 1);
        facts.reason = Some(reason);
        response
    }

    fn log(line: &RequestLine<'_>, facts: &Facts) {
        let reason = facts.reason.unwrap_or(Reason::BadRequest);
        tracing::info!(
            function = line.function,
            caller = line.caller,
            status = line.status,
            latency_ms = line.latency_ms,
            agent = facts.subject.agent,
            verify_type_code = facts.subject.verify_type_code,
            factor = facts.subject.factor.map(|f| f.as_str()),
            customer = facts.subject.phone.as_ref().map(PhoneKey::masked),
            result = wire::verify_result(reason),
            reason = reason.as_str(),
            "request"
        );
    }
}

/// The metric counting answers given for `reason`.
fn reason_metric(reason: Reason) -> &'static str {
    match reason {
        Reason::Ok => name::VERIFY_OK,
        Reason::WrongPin => name::VERIFY_WRONG_PIN,
        Reason::WrongIdLast6 | Reason::WrongBirthDate | Reason::WrongCardLast4 => {
            name::VERIFY_WRONG_FACTOR
        }
        Reason::UnknownMode => name::VERIFY_UNKNOWN_MODE,
        Reason::Locked => name::VERIFY_LOCKED,
        Reason::UnknownCustomer => name::VERIFY_UNKNOWN_CUSTOMER,
        Reason::UnknownAgent => name::VERIFY_UNKNOWN_AGENT,
        Reason::BadRequest => name::VERIFY_BAD_REQUEST,
        Reason::Unavailable => name::VERIFY_UNAVAILABLE,
    }
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

/// The customer's number and the digits typed, as sent (the mode's factor reads them).
fn parse(
    svc: &IdentityVerification,
    body: &[u8],
    facts: &mut Subject,
) -> Result<(PhoneKey, String), ApiError> {
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
        // As typed: anything the factor cannot read (a PIN: but 4 to 12 ASCII digits,
        // whitespace included) is a wrong value.
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
    Ok((phone, input))
}
