//! The verification proper: lockout counted before the digits are compared, by a
//! version-guarded update, so concurrent attempts can never run more checks than the window
//! allows; the result recorded with the counters it changes, atomically. It takes and returns
//! its own types; the handler translates them from and to Huawei's format.

use std::sync::Arc;

use cc_shared::domain::factor::Factor;
use cc_shared::domain::identity::{Counters, Pepper, PinState, Reason, VerificationRecord};
use cc_shared::domain::phone::PhoneKey;
use cc_shared::domain::protect::IndexKey;
use cc_shared::store::{CountersUpdate, IdentityStore, StoreError};
use cc_shared::web::envelope::Caller;
use cc_shared::web::error::ApiError;
use cc_shared::web::tenancy::{unusable_settings, SettingFault};

use crate::config::ModeSettings;
use crate::{IdentityVerification, FUNCTION};

/// Whose records a request reads and writes, under which keys, with which modes: the default
/// tenant's (the stack's index key, pepper and `IDENTITY_MODES`) or the caller's tenant's own
/// (platform mode: its keys and its own mode settings), resolved by the frame.
pub struct Scope<'a> {
    store: Arc<dyn IdentityStore>,
    index: &'a IndexKey,
    pepper: &'a Pepper,
    /// The modes, or the setting a tenant's failed on.
    modes: Result<Arc<ModeSettings>, (SettingFault, &'a cc_shared::domain::tenant::TenantId)>,
}

impl<'a> Scope<'a> {
    pub fn of(svc: &'a IdentityVerification, caller: &'a Caller) -> Self {
        match (&caller.tenant, &svc.tenants) {
            (Some(tenant), Some((_, stores))) => Scope {
                store: stores.for_tenant(&tenant.id).identity(),
                index: &tenant.protection.index,
                pepper: &tenant.pepper,
                modes: svc
                    .tenant_modes
                    .get(tenant, ModeSettings::for_tenant)
                    .0
                    .map_err(|fault| (fault, &tenant.id)),
            },
            _ => Scope {
                store: svc.default_store.clone(),
                index: &svc.config.index,
                pepper: &svc.config.pepper,
                modes: Ok(svc.default_modes.clone()),
            },
        }
    }

    /// The factor the request's mode checks (None: an unknown mode), and the key standing
    /// for an ID number's `X`; an error when a tenant's mode settings are unusable.
    pub fn factor_of(&self, code: &str) -> Result<(Option<Factor>, char), ApiError> {
        match &self.modes {
            Ok(m) => Ok((m.modes.factor_of(code), m.id_x_key)),
            Err((fault, tenant)) => Err(unusable_settings(
                FUNCTION,
                "identity verification",
                tenant,
                fault,
            )),
        }
    }
}

/// Who is verified, by which agent and in which mode: what a record keeps of any request,
/// even one refused before its number was read.
#[derive(Debug, Clone, Default)]
pub struct Subject {
    pub phone: Option<PhoneKey>,
    pub agent: String,
    pub verify_type_code: String,
    /// The factor the mode checks, once known.
    pub factor: Option<Factor>,
}

/// A well-formed attempt: the customer's number, the factor its mode checks and the digits
/// typed (`x_key` standing for an ID number's `X`).
pub struct Attempt {
    pub subject: Subject,
    pub phone: PhoneKey,
    pub factor: Factor,
    pub input: String,
    pub x_key: char,
}

/// What a verification concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub reason: Reason,
    /// Attempts left before a lockout (None where it does not apply).
    pub attempts_left: Option<u32>,
    /// The customer's number-mapping user ID, when known.
    pub uid: Option<String>,
}

impl Verdict {
    /// Whether this is the failure that used up the customer's attempts (the only wrong-PIN
    /// verdict with none left: later ones are `locked`).
    pub fn started_lockout(&self) -> bool {
        self.reason.is_wrong_value() && self.attempts_left == Some(0)
    }
}

/// Guarded updates retried after losing a race, before answering `unavailable`.
const MAX_RACES: usize = 8;

impl IdentityVerification {
    /// Keeps the record of a refused (authenticated) request, within the store budget; a
    /// failure to write it is logged, the refusal answered all the same.
    pub(crate) async fn record_refusal(&self, scope: &Scope<'_>, subject: &Subject) {
        let record = self.record(scope, subject, Reason::BadRequest);
        let write = scope.store.write_attempt(&record, None);
        if let Err(e) = self.config.store_budget.run(write).await {
            tracing::error!(function = FUNCTION, error = %e, "record not written");
        }
    }

    /// The answer to a mode no setting names: verifyResult 3 `unknown_mode`, recorded, not
    /// counted against the customer.
    pub(crate) async fn unknown_mode(
        &self,
        scope: &Scope<'_>,
        subject: &Subject,
    ) -> Result<Verdict, StoreError> {
        let record = self.record(scope, subject, Reason::UnknownMode);
        scope.store.write_attempt(&record, None).await?;
        Ok(Verdict {
            reason: Reason::UnknownMode,
            attempts_left: None,
            uid: None,
        })
    }

    fn record(&self, scope: &Scope<'_>, facts: &Subject, reason: Reason) -> VerificationRecord {
        let now = self.clock.now();
        VerificationRecord {
            time: now,
            id: cc_shared::domain::uid::sortable_id(),
            number_key: facts
                .phone
                .as_ref()
                .map(|p| scope.pepper.record_key(p))
                .unwrap_or_default(),
            masked_number: facts
                .phone
                .as_ref()
                .map(PhoneKey::masked)
                .unwrap_or_default(),
            agent: facts.agent.clone(),
            verify_type_code: facts.verify_type_code.clone(),
            factor: facts
                .factor
                .map(|f| f.as_str().to_string())
                .unwrap_or_default(),
            result: reason.result(),
            reason: reason.as_str().to_string(),
            expires_at: now + self.config.record_ttl_days * 86_400,
        }
    }

    /// The verification proper. Store errors end it as `unavailable`, with nothing written.
    pub(crate) async fn verify(
        &self,
        scope: &Scope<'_>,
        a: Attempt,
    ) -> Result<Verdict, StoreError> {
        let policy = self.config.lockout;
        let facts = &a.subject;
        let store = &scope.store;
        // Records are found by the number's blind index only (domain::protect).
        let number = scope.index.index(&a.phone);
        let (mut pin, uid) = if self.config.require_known_agent {
            let (pin, uid, agent_active) =
                store.load_customer_and_agent(&number, &facts.agent).await?;
            if !agent_active {
                store
                    .write_attempt(&self.record(scope, facts, Reason::UnknownAgent), None)
                    .await?;
                return Ok(Verdict {
                    reason: Reason::UnknownAgent,
                    attempts_left: None,
                    uid: None,
                });
            }
            (pin, uid)
        } else {
            store.load_customer(&number).await?
        };
        let uid = uid.map(|u| u.to_string());
        let answer = |reason, attempts_left| Verdict {
            reason,
            attempts_left,
            uid: uid.clone(),
        };

        // 1. Reserve a check: count it before comparing digits, guarded by the version.
        let mut races = 0;
        let reserved = loop {
            // Not enrolled at all, or not for this mode's factor: an unknown customer, the
            // factor named in the record.
            let Some(state) = pin.filter(|p| p.digest(a.factor).is_some()) else {
                store
                    .write_attempt(&self.record(scope, facts, Reason::UnknownCustomer), None)
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
                store
                    .write_attempt(&self.record(scope, facts, Reason::Locked), None)
                    .await?;
                return Ok(answer(Reason::Locked, Some(0)));
            }
            c.failures += 1;
            if store.update_counters(&number, state.version, c).await? {
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
            pin = store.load_customer(&number).await?.0;
        };

        // 2. Compare in constant time (a malformed input is simply a wrong value).
        let correct = match (a.factor.typed(&a.input, a.x_key), reserved.digest(a.factor)) {
            (Some(typed), Some(enrolled)) => {
                enrolled.matches(&scope.pepper.factor_digest(a.factor, &a.phone, &typed))
            }
            _ => false,
        };

        // 3. Settle: a correct value clears the failures (an active lock stays); the failure
        //    that uses up the window locks the customer, whatever the factor (one lock per
        //    customer). Written with the record, atomically.
        let reason = if correct {
            Reason::Ok
        } else {
            Reason::wrong(a.factor)
        };
        let record = self.record(scope, facts, reason);
        let lock_now = !correct && reserved.counters.failures >= policy.max_failures;
        if !correct && !lock_now {
            store.write_attempt(&record, None).await?;
            let left = policy.max_failures - reserved.counters.failures;
            return Ok(answer(reason, Some(left)));
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
                number: &number,
                expected_version: state.version,
                counters,
            };
            if store.write_attempt(&record, Some(update)).await? {
                return Ok(if correct {
                    answer(Reason::Ok, Some(policy.max_failures))
                } else {
                    answer(reason, Some(0))
                });
            }
            match store.load_customer(&number).await?.0 {
                Some(fresh) => state = fresh,
                // Removed meanwhile: keep the record of what was decided.
                None => {
                    store.write_attempt(&record, None).await?;
                    return Ok(answer(reason, None));
                }
            }
        }
        Err(StoreError::Unavailable("lockout counters contended".into()))
    }
}
