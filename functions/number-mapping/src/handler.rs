//! One request in the frame of `web::envelope` (credentials, method, body, the answer, the
//! metrics, the one log line): parsed, answered from the store (counts only logged, never
//! numbers or IDs).

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use cc_shared::domain::phone::PhoneKey;
use cc_shared::domain::protect::NumberProtection;
use cc_shared::domain::protect::{NumberIndex, OpenError, SealedNumber};
use cc_shared::domain::uid::Uid;
use cc_shared::domain::unmasking::{BudgetTake, Unmasking};
use cc_shared::metrics::{self, name};
use cc_shared::store::{MappingStore, Sealer, StoreError, UnmaskingLog};
use cc_shared::web::auth::Credentials;
use cc_shared::web::envelope::{self, Callback, Caller, RequestLine, TenancyRef};
use cc_shared::web::error::ApiError;
use cc_shared::web::http::describe_json_error;
use cc_shared::web::tenancy::StackKeys;
use lambda_http::{Body, Request, Response};

use crate::config::{MAX_BODY_BYTES, MAX_NUMBERS, MAX_UID_INPUT_CHARS};
use crate::wire::{self, MappingRequest, MappingResult, Mode};
use crate::{NumberMapping, FUNCTION};

/// What one request did, for its log line (counts only, never numbers or IDs).
#[derive(Default)]
pub struct Outcome {
    mode: Option<&'static str>,
    numbers: usize,
    created: usize,
    unknown: usize,
    /// UIDToPhone: numbers answered, and unmasking records written.
    unmasked: usize,
    recorded: usize,
    /// Refused: the caller had spent its budget of unmaskings for the minute.
    over_budget: bool,
}

/// Answers one request (the frame of `web::envelope`, with the work below).
pub async fn handle(svc: &NumberMapping, req: Request) -> Response<Body> {
    envelope::handle(svc, req).await
}

impl Callback for NumberMapping {
    type Answer = Vec<MappingResult>;
    type Facts = Outcome;
    const FUNCTION: &'static str = FUNCTION;
    const MAX_BODY: usize = MAX_BODY_BYTES;

    fn credentials(&self) -> &Credentials {
        &self.config.credentials
    }

    fn tenancy(&self) -> Option<TenancyRef<'_>> {
        let (tenancy, _) = self.tenants.as_ref()?;
        Some(TenancyRef {
            tenancy,
            stack: StackKeys::Keyring(self.keys.get().keyring.clone()),
        })
    }

    fn work(
        &self,
        caller: &Caller,
        body: &[u8],
        outcome: &mut Outcome,
    ) -> impl Future<Output = Result<Vec<MappingResult>, ApiError>> + Send {
        process(self, caller, body, outcome)
    }

    /// Every failure becomes Tencent's error format here.
    fn respond(
        &self,
        result: Result<Vec<MappingResult>, ApiError>,
        outcome: &mut Outcome,
    ) -> Response<Body> {
        match result {
            Ok(results) => {
                metrics::count(name::NUMBERS_LOOKED_UP, outcome.numbers as u64);
                metrics::count(name::IDS_CREATED, outcome.created as u64);
                metrics::count(name::UNKNOWN_IDS, outcome.unknown as u64);
                metrics::count(name::NUMBERS_UNMASKED, outcome.unmasked as u64);
                wire::ok_response(results)
            }
            Err(err) => {
                if let ApiError::Store(e) = &err {
                    tracing::error!(function = FUNCTION, error = %e, "store failure");
                }
                if outcome.over_budget {
                    metrics::count(name::UNMASK_REQUESTS_REFUSED, 1);
                }
                wire::error_response(&err)
            }
        }
    }

    fn log(line: &RequestLine<'_>, outcome: &Outcome) {
        tracing::info!(
            function = line.function,
            caller = line.caller,
            status = line.status,
            latency_ms = line.latency_ms,
            mode = outcome.mode,
            numbers = outcome.numbers,
            created = outcome.created,
            unknown = outcome.unknown,
            recorded = outcome.recorded,
            over_budget = outcome.over_budget,
            "request"
        );
    }
}

/// Where a request's mapping lives and which keys protect it: the caller's tenant's, or the
/// default tenant's (the stack's keys, re-read on a new version).
struct Scope<'a> {
    svc: &'a NumberMapping,
    store: Arc<dyn MappingStore>,
    /// Where its unmaskings are recorded.
    unmaskings: Arc<dyn UnmaskingLog>,
    caller: &'a Caller,
    /// The tenant's keys; None for the default tenant's live keys.
    tenant_keys: Option<&'a NumberProtection>,
}

impl Scope<'_> {
    async fn keys(&self) -> Arc<NumberProtection> {
        match self.tenant_keys {
            Some(keys) => Arc::new(keys.clone()),
            None => self.svc.keys.refresh_if_due().await,
        }
    }

    /// The keys again after a number named a key version they do not hold.
    async fn reload(&self) -> Arc<NumberProtection> {
        match self.tenant_keys {
            Some(keys) => Arc::new(keys.clone()),
            None => self.svc.keys.reload().await,
        }
    }
}

async fn process(
    svc: &NumberMapping,
    caller: &Caller,
    body: &[u8],
    outcome: &mut Outcome,
) -> Result<Vec<MappingResult>, ApiError> {
    let request: MappingRequest =
        serde_json::from_slice(body).map_err(|e| ApiError::bad_request(describe_json_error(&e)))?;
    let mode = Mode::parse(&request.mode)
        .ok_or_else(|| ApiError::bad_request("Mode must be \"PhoneToUID\" or \"UIDToPhone\""))?;
    outcome.mode = Some(mode.as_str());
    outcome.numbers = request.numbers.len();
    if request.numbers.is_empty() {
        return Err(ApiError::bad_request("Numbers is empty"));
    }
    if request.numbers.len() > MAX_NUMBERS {
        return Err(ApiError::bad_request(format!(
            "Numbers has {} entries; at most {MAX_NUMBERS} are accepted",
            request.numbers.len()
        )));
    }
    let (store, unmaskings) = match (caller.tenant_id(), &svc.tenants) {
        (Some(id), Some((_, stores))) => {
            let scoped = stores.for_tenant(id);
            (scoped.mapping(), scoped.unmasking_log())
        }
        _ => (svc.store.clone(), svc.unmaskings.clone()),
    };
    let scope = Scope {
        svc,
        store,
        unmaskings,
        caller,
        tenant_keys: caller.tenant.as_ref().map(|t| &t.protection),
    };
    let work = async {
        match mode {
            Mode::PhoneToUid => phone_to_uid(&scope, request.numbers, outcome).await,
            Mode::UidToPhone => uid_to_phone(&scope, request.numbers, outcome).await,
        }
    };
    svc.config.store_budget.run(work).await
}

async fn phone_to_uid(
    scope: &Scope<'_>,
    numbers: Vec<String>,
    outcome: &mut Outcome,
) -> Result<Vec<MappingResult>, ApiError> {
    let svc = scope.svc;
    // Validate the whole batch before touching the store: a rejected request writes nothing.
    let keys = numbers
        .iter()
        .enumerate()
        .map(|(i, n)| {
            svc.config
                .phones
                .normalize(n)
                .map_err(|e| ApiError::bad_request(format!("Numbers[{i}]: {e}")))
        })
        .collect::<Result<Vec<PhoneKey>, _>>()?;
    // Each distinct number once, by its blind index: the store never sees the number.
    let protection = scope.keys().await;
    let indexes: Vec<NumberIndex> = keys.iter().map(|k| protection.index(k)).collect();
    let mut by_index: HashMap<NumberIndex, PhoneKey> = indexes.iter().cloned().zip(keys).collect();
    let unique: Vec<NumberIndex> = by_index.keys().cloned().collect();

    let mut uids = scope.store.uids_of(&unique).await?;
    by_index.retain(|index, _| !uids.contains_key(index));
    if !by_index.is_empty() {
        let missing: Vec<NumberIndex> = by_index.keys().cloned().collect();
        let keys = protection.clone();
        let seal: Sealer = Arc::new(move |index: &NumberIndex, uid: &Uid| {
            let phone = by_index
                .get(index)
                .ok_or_else(|| StoreError::Failed("sealing an unknown number".into()))?;
            keys.seal(uid, phone)
                .map_err(|e| StoreError::Failed(e.to_string()))
        });
        uids.extend(scope.store.create_uids(&missing, &seal).await?);
        // Counted once written: a failed write created nothing.
        outcome.created = missing.len();
    }
    numbers
        .into_iter()
        .zip(indexes)
        .map(|(input, index)| match uids.get(&index) {
            Some(uid) => Ok(MappingResult {
                key: input,
                value: uid.as_str().to_string(),
            }),
            None => Err(ApiError::Store(StoreError::Failed(
                "a created user ID was not returned".into(),
            ))),
        })
        .collect()
}

/// The records of an UIDToPhone request asking `ids` (README "Privacy": every ID asked, found
/// or not, by whom, from where; never a number).
fn unmaskings(scope: &Scope<'_>, ids: &[Uid], now: i64) -> Vec<Unmasking> {
    let expires_at = now + scope.svc.config.unmask_ttl_days * 86_400;
    let request = &scope.caller.request;
    ids.iter()
        .map(|uid| Unmasking {
            time: now,
            id: cc_shared::domain::uid::sortable_id(),
            uid: uid.key(),
            caller: scope.caller.user.clone(),
            request_id: request.request_id.clone(),
            source_ip: request.source_ip.clone(),
            expires_at,
        })
        .collect()
}

/// The answer to a caller past its budget (README "Privacy"): Tencent's error shape with
/// `Code` 429, until the minute ends.
fn over_budget(take: &BudgetTake, now: i64) -> ApiError {
    let retry_after = take.retry_after(now);
    tracing::warn!(
        function = FUNCTION,
        caller = %take.caller,
        asked = take.count,
        limit = take.limit,
        "unmasking budget spent: UIDToPhone refused until the minute ends"
    );
    ApiError::OverBudget {
        reason: format!(
            "this caller asked for more than {} user IDs in a minute (UNMASK_MAX_PER_MINUTE); \
             no number is answered for {retry_after} s",
            take.limit
        ),
        retry_after_secs: u64::try_from(retry_after).unwrap_or(60),
    }
}

/// Unknown IDs (and strings that cannot be one of our IDs) get an empty `Value`, never a
/// made-up number; the rest of the batch is answered normally.
async fn uid_to_phone(
    scope: &Scope<'_>,
    numbers: Vec<String>,
    outcome: &mut Outcome,
) -> Result<Vec<MappingResult>, ApiError> {
    let mut parsed = Vec::with_capacity(numbers.len());
    for (i, n) in numbers.iter().enumerate() {
        // An empty or blank entry is simply no ID: an empty Value, like any other non-ID.
        if n.chars().count() > MAX_UID_INPUT_CHARS {
            return Err(ApiError::bad_request(format!(
                "Numbers[{i}] is longer than {MAX_UID_INPUT_CHARS} characters"
            )));
        }
        parsed.push(Uid::parse(n));
    }
    let mut lookup: Vec<Uid> = parsed.iter().flatten().cloned().collect();
    lookup.sort();
    lookup.dedup();
    // Every ID asked is recorded before any number leaves, in the same step as the read (at
    // once, not after it): no record, no number.
    let sealed: HashMap<Uid, SealedNumber> = if lookup.is_empty() {
        HashMap::new()
    } else {
        let now = scope.svc.clock.now();
        let records = unmaskings(scope, &lookup, now);
        // The caller's budget is taken in the same step: a refused request still leaves its
        // records (every ID asked), never a number.
        let take = scope.svc.config.unmask_budget.map(|limit| {
            let asked = u32::try_from(lookup.len()).unwrap_or(u32::MAX);
            BudgetTake::at(now, &scope.caller.user, asked, limit)
        });
        let within_budget = async {
            match &take {
                Some(take) => scope.unmaskings.take_unmask_budget(take).await,
                None => Ok(true),
            }
        };
        let (sealed, recorded, within_budget) = tokio::join!(
            scope.store.sealed_of(&lookup),
            scope.unmaskings.put_unmaskings(&records),
            within_budget
        );
        recorded?;
        outcome.recorded = records.len();
        if let (false, Some(take)) = (within_budget?, &take) {
            outcome.over_budget = true;
            return Err(over_budget(take, now));
        }
        sealed?
    };
    let mut phones: HashMap<&Uid, PhoneKey> = HashMap::with_capacity(sealed.len());
    let mut keys = scope.keys().await;
    for uid in &lookup {
        if let Some(s) = sealed.get(uid) {
            let mut opened = keys.open(uid, s);
            if let Err(OpenError::UnknownVersion(_)) = opened {
                // Sealed by a process that already has a newer key version: read the keys.
                keys = scope.reload().await;
                opened = keys.open(uid, s);
            }
            // A number that does not open is a store fault (a key missing, or an item
            // tampered with): the whole request fails rather than answer a wrong number.
            let phone = opened.map_err(|e| {
                ApiError::Store(match e {
                    OpenError::UnknownVersion(_) => StoreError::Unavailable(e.to_string()),
                    _ => StoreError::Failed(e.to_string()),
                })
            })?;
            phones.insert(uid, phone);
        }
    }
    let results: Vec<MappingResult> = numbers
        .into_iter()
        .zip(parsed)
        .map(|(input, uid)| MappingResult {
            key: input,
            value: uid
                .and_then(|u| phones.get(&u))
                .map(PhoneKey::dial_string)
                .unwrap_or_default(),
        })
        .collect();
    outcome.unknown = results.iter().filter(|r| r.value.is_empty()).count();
    outcome.unmasked = results.len() - outcome.unknown;
    Ok(results)
}
