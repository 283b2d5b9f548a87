//! Huawei AICC's third-party identity verification callback.
//!
//! `POST /identity/verify` with BasicAuth and `{"calldata": {"verifyServiceNo": <customer
//! number>, "verifyWorkNo": <agent>, "<input field>": <digits typed>, "verifyTypeCode": ...}}`;
//! always answers HTTP 200 `{"calldata": {"data": {"verifyResult": 1|2|3, "verifyReturn1":
//! <reason>, "verifyReturn2": <attempts left>, "verifyReturn3": <user ID>}}}`, except 401 for
//! missing or wrong credentials.
//!
//! Lockout: a check is counted *before* the digits are compared, by a version-guarded update,
//! so concurrent attempts can never run more checks than the window allows.

pub mod wire;

use std::sync::Arc;
use std::time::Instant;

use cc_shared::config::{self, ConfigError};
use cc_shared::domain::clock::Clock;
use cc_shared::domain::identity::{
    valid_pin, Counters, Pepper, PinState, Reason, VerificationRecord,
};
use cc_shared::domain::phone::{PhoneKey, PhoneNormalizer};
use cc_shared::store::{CountersUpdate, IdentityStore, StoreError};
use cc_shared::web::auth::Credentials;
use cc_shared::web::error::ApiError;
use cc_shared::web::http::{body_bytes, describe_json_error, require_post};
use cc_shared::web::StoreBudget;
use lambda_http::{Body, Request, Response};
use serde_json::Value;
use wire::VerifyAnswer;

/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 16 * 1024;
/// Longest agent work number and verifyTypeCode accepted.
pub const MAX_WORK_NO_CHARS: usize = 32;
pub const MAX_TYPE_CODE_CHARS: usize = 64;
/// Guarded updates retried after losing a race, before answering `unavailable`.
const MAX_RACES: usize = 8;

pub const CREDENTIALS_VAR: &str = "IDENTITY_VERIFY_CREDENTIALS";
/// The store budget of one verification (`STORE_BUDGET_MS`): a checked PIN is three round
/// trips, each bounded by the SDK's 1 s attempt timeout; past 3 s the IVR gets verifyResult 3
/// / `unavailable` and can branch (retry, transfer) while the caller is still listening.
pub const DEFAULT_STORE_BUDGET_MS: u64 = 3000;

/// When a customer is locked out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutPolicy {
    /// Failed attempts allowed within `window_seconds`; the next check is refused.
    pub max_failures: u32,
    pub window_seconds: i64,
    pub lock_seconds: i64,
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        LockoutPolicy {
            max_failures: 5,
            window_seconds: 15 * 60,
            lock_seconds: 15 * 60,
        }
    }
}

/// Settings read once at start-up.
pub struct Config {
    pub credentials: Credentials,
    pub phones: PhoneNormalizer,
    pub pepper: Pepper,
    /// The calldata field holding the digits the caller typed (`IDENTITY_INPUT_FIELD`).
    pub input_field: String,
    pub lockout: LockoutPolicy,
    pub record_ttl_days: i64,
    /// `IDENTITY_REQUIRE_KNOWN_AGENT`: a verifyWorkNo that is not an active agent of the CEC
    /// directory (agent-sync) is answered 3 / `unknown_agent`.
    pub require_known_agent: bool,
    pub store_budget: StoreBudget,
}

impl Config {
    /// Reads every setting but the pepper (which may need AWS: see `cc_shared::aws`) and
    /// the phone metadata (loaded in parallel at init: `cc_shared::config::phone_normalizer`).
    pub fn from_env(
        fallback: Option<Credentials>,
        pepper: Pepper,
        phones: PhoneNormalizer,
    ) -> Result<Self, ConfigError> {
        let credentials = Credentials::from_env(CREDENTIALS_VAR, fallback)?;
        let input_field =
            config::optional("IDENTITY_INPUT_FIELD").unwrap_or_else(|| "verifyCode".into());
        if !valid_name(&input_field, MAX_TYPE_CODE_CHARS) {
            return Err(ConfigError::Invalid {
                name: "IDENTITY_INPUT_FIELD",
                reason: "use letters, digits and underscores".into(),
            });
        }
        Ok(Config {
            credentials,
            phones,
            pepper,
            input_field,
            lockout: LockoutPolicy {
                max_failures: config::number("IDENTITY_MAX_FAILURES", 5, 1..=100)?,
                window_seconds: config::number(
                    "IDENTITY_FAILURE_WINDOW_SECONDS",
                    900,
                    1..=86_400 * 30,
                )?,
                lock_seconds: config::number("IDENTITY_LOCK_SECONDS", 900, 1..=86_400 * 30)?,
            },
            record_ttl_days: config::number("IDENTITY_RECORD_TTL_DAYS", 90, 1..=3650)?,
            require_known_agent: config::flag("IDENTITY_REQUIRE_KNOWN_AGENT", false)?,
            store_budget: StoreBudget::from_env(DEFAULT_STORE_BUDGET_MS)?,
        })
    }
}

fn valid_name(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.chars().count() <= max
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The handler's dependencies, built once per process.
pub struct IdentityVerification {
    config: Config,
    store: Arc<dyn IdentityStore>,
    clock: Arc<dyn Clock>,
}

impl IdentityVerification {
    pub fn new(config: Config, store: Arc<dyn IdentityStore>, clock: Arc<dyn Clock>) -> Self {
        IdentityVerification {
            config,
            store,
            clock,
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }
}

/// The validated request.
struct Attempt {
    phone: PhoneKey,
    agent: String,
    verify_type_code: String,
    input: String,
}

/// What is known of a request, for its record and log line, even when it is refused.
#[derive(Default)]
struct Facts {
    caller: Option<String>,
    phone: Option<PhoneKey>,
    agent: String,
    verify_type_code: String,
}

/// Answers one request; every error becomes Huawei's format here.
pub async fn handle(svc: &IdentityVerification, req: Request) -> Response<Body> {
    let started = Instant::now();
    let mut facts = Facts::default();
    let result = process(svc, &req, &mut facts).await;
    let (response, reason) = match &result {
        Ok(answer) => (wire::answer_response(answer), answer.reason),
        Err(err) => {
            if let ApiError::Store(e) = err {
                tracing::error!(function = "identity-verification", error = %e, "store failure");
            }
            let reason = match err {
                ApiError::Unauthorized => None,
                ApiError::Store(_) => Some(Reason::Unavailable),
                _ => Some(Reason::BadRequest),
            };
            // A refused (but authenticated) request is an attempt too: keep its record.
            if reason == Some(Reason::BadRequest) {
                let record = svc.record(&facts, Reason::BadRequest);
                let write = svc.store.write_attempt(&record, None);
                if let Err(e) = svc.config.store_budget.run(write).await {
                    tracing::error!(function = "identity-verification", error = %e, "record not written");
                }
            }
            (
                wire::error_response(err),
                reason.unwrap_or(Reason::BadRequest),
            )
        }
    };
    tracing::info!(
        function = "identity-verification",
        caller = facts.caller,
        agent = facts.agent,
        verify_type_code = facts.verify_type_code,
        customer = facts.phone.as_ref().map(PhoneKey::masked),
        result = wire::verify_result(reason),
        reason = reason.as_str(),
        status = response.status().as_u16(),
        latency_ms = (started.elapsed().as_secs_f64() * 1e6).round() / 1e3,
        "request"
    );
    response
}

async fn process(
    svc: &IdentityVerification,
    req: &Request,
    facts: &mut Facts,
) -> Result<VerifyAnswer, ApiError> {
    let user = svc
        .config
        .credentials
        .verify(req.headers().get(http::header::AUTHORIZATION))
        .ok_or(ApiError::Unauthorized)?;
    facts.caller = Some(user);
    require_post(req)?;
    let attempt = parse(svc, body_bytes(req, MAX_BODY_BYTES)?, facts)?;
    let budget = svc.config.store_budget;
    budget
        .run(svc.verify(attempt))
        .await
        .map_err(ApiError::from)
}

/// A calldata value as text, as sent (never trimmed: limits hold for what was sent): the IVR
/// may send strings or numbers.
fn text_field(calldata: &serde_json::Map<String, Value>, name: &str) -> Option<String> {
    match calldata.get(name)? {
        Value::String(s) => Some(s.clone()),
        // A whole, non-negative number only: -139... or 1.5 are no numbers or work numbers.
        Value::Number(n) => n.as_u64().map(|n| n.to_string()),
        _ => None,
    }
}

fn parse(svc: &IdentityVerification, body: &[u8], facts: &mut Facts) -> Result<Attempt, ApiError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| ApiError::bad_request(describe_json_error(&e)))?;
    let calldata = value
        .get("calldata")
        .and_then(Value::as_object)
        .ok_or_else(|| ApiError::bad_request("calldata must be an object"))?;

    let agent = text_field(calldata, "verifyWorkNo")
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

    let number = text_field(calldata, "verifyServiceNo")
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

impl IdentityVerification {
    fn record(&self, facts: &Facts, reason: Reason) -> VerificationRecord {
        let now = self.clock.now();
        VerificationRecord {
            time: now,
            id: cc_shared::domain::uid::sortable_id(),
            number_key: facts
                .phone
                .as_ref()
                .map(|p| self.config.pepper.record_key(p))
                .unwrap_or_default(),
            masked_number: facts
                .phone
                .as_ref()
                .map(PhoneKey::masked)
                .unwrap_or_default(),
            agent: facts.agent.clone(),
            verify_type_code: facts.verify_type_code.clone(),
            result: wire::verify_result(reason),
            reason: reason.as_str().to_string(),
            expires_at: now + self.config.record_ttl_days * 86_400,
        }
    }

    /// The verification proper. Store errors end it as `unavailable`, with nothing written.
    async fn verify(&self, a: Attempt) -> Result<VerifyAnswer, StoreError> {
        let policy = self.config.lockout;
        let facts = Facts {
            caller: None,
            phone: Some(a.phone.clone()),
            agent: a.agent.clone(),
            verify_type_code: a.verify_type_code.clone(),
        };
        let (mut pin, uid) = if self.config.require_known_agent {
            let (pin, uid, agent_active) = self
                .store
                .load_customer_and_agent(&a.phone, &a.agent)
                .await?;
            if !agent_active {
                self.store
                    .write_attempt(&self.record(&facts, Reason::UnknownAgent), None)
                    .await?;
                return Ok(VerifyAnswer {
                    reason: Reason::UnknownAgent,
                    attempts_left: None,
                    uid: None,
                });
            }
            (pin, uid)
        } else {
            self.store.load_customer(&a.phone).await?
        };
        let uid = uid.map(|u| u.to_string());
        let answer = |reason, attempts_left| VerifyAnswer {
            reason,
            attempts_left,
            uid: uid.clone(),
        };

        // 1. Reserve a check: count it before comparing digits, guarded by the version.
        let mut races = 0;
        let reserved = loop {
            let Some(state) = pin else {
                self.store
                    .write_attempt(&self.record(&facts, Reason::UnknownCustomer), None)
                    .await?;
                return Ok(answer(Reason::UnknownCustomer, None));
            };
            let now = self.clock.now();
            let mut c = state.counters;
            if c.window_start == 0 || now - c.window_start >= policy.window_seconds {
                c.failures = 0;
                c.window_start = now;
            }
            // Locked, or the window's checks are all taken (some perhaps still in flight).
            if c.locked_until > now || c.failures >= policy.max_failures {
                self.store
                    .write_attempt(&self.record(&facts, Reason::Locked), None)
                    .await?;
                return Ok(answer(Reason::Locked, Some(0)));
            }
            c.failures += 1;
            if self
                .store
                .update_counters(&a.phone, state.version, c)
                .await?
            {
                break PinState {
                    counters: c,
                    version: state.version.wrapping_add(1),
                    ..state
                };
            }
            races += 1;
            if races >= MAX_RACES {
                return Err(StoreError::Unavailable("lockout counters contended".into()));
            }
            pin = self.store.load_customer(&a.phone).await?.0;
        };

        // 2. Compare in constant time (a malformed input is simply a wrong PIN).
        let correct = valid_pin(&a.input)
            && reserved
                .digest
                .matches(&self.config.pepper.pin_digest(&a.phone, &a.input));

        // 3. Settle: a correct PIN clears the failures (an active lock stays); the failure
        //    that uses up the window locks the customer. Written with the record, atomically.
        let reason = if correct {
            Reason::Ok
        } else {
            Reason::WrongPin
        };
        let record = self.record(&facts, reason);
        let lock_now = !correct && reserved.counters.failures >= policy.max_failures;
        if !correct && !lock_now {
            self.store.write_attempt(&record, None).await?;
            let left = policy.max_failures - reserved.counters.failures;
            return Ok(answer(Reason::WrongPin, Some(left)));
        }
        let mut state = reserved;
        for _ in 0..MAX_RACES {
            let now = self.clock.now();
            let counters = if correct {
                Counters {
                    failures: 0,
                    window_start: 0,
                    locked_until: state.counters.locked_until,
                }
            } else {
                Counters {
                    failures: 0,
                    window_start: 0,
                    locked_until: now + policy.lock_seconds,
                }
            };
            let update = CountersUpdate {
                phone: &a.phone,
                expected_version: state.version,
                counters,
            };
            if self.store.write_attempt(&record, Some(update)).await? {
                return Ok(if correct {
                    answer(Reason::Ok, Some(policy.max_failures))
                } else {
                    answer(Reason::WrongPin, Some(0))
                });
            }
            match self.store.load_customer(&a.phone).await?.0 {
                Some(fresh) => state = fresh,
                // Removed meanwhile: keep the record of what was decided.
                None => {
                    self.store.write_attempt(&record, None).await?;
                    return Ok(answer(reason, None));
                }
            }
        }
        Err(StoreError::Unavailable("lockout counters contended".into()))
    }
}

#[cfg(test)]
mod tests;
