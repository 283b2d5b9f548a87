//! In-memory token cache with single flight: one upstream exchange per (mode, subject) at a
//! time, its result shared with every request that arrived meanwhile. Failures are shared with
//! those waiters but never cached.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;

use crate::wire::TokenResponse;
use cc_shared::web::error::ApiError;
use tokio::sync::watch;

type Outcome = Option<Result<TokenResponse, ApiError>>;

enum Slot {
    Ready {
        token: TokenResponse,
        /// Epoch seconds when the IdP's token expires.
        expires_at: i64,
        /// Epoch seconds after which the cache no longer hands it out (safety margin).
        fresh_until: i64,
    },
    Pending {
        flight: u64,
        outcome: watch::Receiver<Outcome>,
    },
}

enum Step {
    Hit(TokenResponse),
    Wait(watch::Receiver<Outcome>),
    Lead(u64, watch::Sender<Outcome>),
}

/// Where an answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Cache,
    /// This request made the upstream exchange.
    Upstream,
    /// Another request's exchange, waited for.
    Shared,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Cache => "cache",
            Source::Upstream => "upstream",
            Source::Shared => "shared",
        }
    }
}

pub struct TokenCache {
    slots: Mutex<HashMap<String, Slot>>,
    margin_seconds: i64,
    capacity: usize,
    next_flight: std::sync::atomic::AtomicU64,
}

/// Removes a flight's pending slot if its leader goes away without finishing, so waiters and
/// later requests start a new flight instead of waiting forever.
struct FlightGuard<'a> {
    cache: &'a TokenCache,
    key: &'a str,
    flight: u64,
    done: bool,
}

impl Drop for FlightGuard<'_> {
    fn drop(&mut self) {
        if !self.done {
            let mut slots = self.cache.lock();
            if matches!(slots.get(self.key), Some(Slot::Pending { flight, .. }) if *flight == self.flight)
            {
                slots.remove(self.key);
            }
        }
    }
}

impl TokenCache {
    pub fn new(margin_seconds: i64, capacity: usize) -> Self {
        TokenCache {
            slots: Mutex::new(HashMap::new()),
            margin_seconds,
            capacity,
            next_flight: std::sync::atomic::AtomicU64::new(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Slot>> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Drops every ready token whose key starts with `prefix` (a tenant's tokens of settings
    /// that changed); flights under way finish and are not cached past their own use.
    pub fn forget_prefix(&self, prefix: &str) {
        self.lock()
            .retain(|k, s| !(k.starts_with(prefix) && matches!(s, Slot::Ready { .. })));
    }

    /// The token for `key`: from the cache while fresh at `now()`, else from `fetch`, run by
    /// one request at a time per key.
    pub async fn get<F, Fut>(
        &self,
        key: &str,
        now: impl Fn() -> i64,
        fetch: F,
    ) -> (Result<TokenResponse, ApiError>, Source)
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<TokenResponse, ApiError>>,
    {
        let mut fetch = Some(fetch);
        loop {
            // Decide under the lock; wait (if at all) after it is released.
            let step = {
                let mut slots = self.lock();
                match slots.get(key) {
                    Some(Slot::Ready {
                        token,
                        expires_at,
                        fresh_until,
                    }) if now() < *fresh_until => {
                        let mut token = token.clone();
                        token.expires_in = (*expires_at - now()).max(0) as u64;
                        Step::Hit(token)
                    }
                    Some(Slot::Pending { outcome, .. }) => Step::Wait(outcome.clone()),
                    _ => {
                        let flight = self
                            .next_flight
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let (tx, rx) = watch::channel(None);
                        slots.insert(
                            key.to_string(),
                            Slot::Pending {
                                flight,
                                outcome: rx,
                            },
                        );
                        Step::Lead(flight, tx)
                    }
                }
            };
            let (flight, sender) = match step {
                Step::Hit(token) => return (Ok(token), Source::Cache),
                Step::Wait(mut outcome) => {
                    if outcome.wait_for(Option::is_some).await.is_ok() {
                        let shared = outcome.borrow().clone();
                        if let Some(result) = shared {
                            return (result, Source::Shared);
                        }
                    }
                    continue; // the leader went away: try again
                }
                Step::Lead(flight, sender) => (flight, sender),
            };
            let mut guard = FlightGuard {
                cache: self,
                key,
                flight,
                done: false,
            };
            let Some(fetch) = fetch.take() else {
                // Unreachable: a request leads at most one flight.
                return (
                    Err(ApiError::UpstreamFailed {
                        timeout: false,
                        reason: "flight lost".into(),
                    }),
                    Source::Upstream,
                );
            };
            let result = fetch().await;
            {
                let mut slots = self.lock();
                slots.remove(key);
                if let Ok(token) = &result {
                    let t = now();
                    let expires_at = t + token.expires_in as i64;
                    let fresh_until = expires_at - self.margin_seconds;
                    if fresh_until > t {
                        if slots.len() >= self.capacity {
                            slots.retain(|_, s| {
                                matches!(s, Slot::Ready { fresh_until, .. } if *fresh_until > t)
                                    || matches!(s, Slot::Pending { .. })
                            });
                        }
                        if slots.len() < self.capacity {
                            slots.insert(
                                key.to_string(),
                                Slot::Ready {
                                    token: token.clone(),
                                    expires_at,
                                    fresh_until,
                                },
                            );
                        }
                    }
                }
                guard.done = true;
            }
            let _ = sender.send(Some(result.clone()));
            return (result, Source::Upstream);
        }
    }
}
