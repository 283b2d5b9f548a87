//! The bound on a request's store work.

use crate::store::StoreError;

/// How long one request may spend on the store in all (`STORE_BUDGET_MS`, each function with
/// its own default), its calls and their retries together: past it the request is answered in
/// its caller's "unavailable" format, well before the function's own timeout (10 s), so that a
/// stalled store never leaves a caller waiting for API Gateway's bare 5xx.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreBudget(std::time::Duration);

impl StoreBudget {
    pub const VAR: &'static str = "STORE_BUDGET_MS";

    pub fn from_env(default_ms: u64) -> Result<StoreBudget, crate::config::ConfigError> {
        let ms = crate::config::number(Self::VAR, default_ms, 50..=9_000)?;
        Ok(StoreBudget(std::time::Duration::from_millis(ms)))
    }

    pub fn from_millis(ms: u64) -> StoreBudget {
        StoreBudget(std::time::Duration::from_millis(ms))
    }

    /// `work` (a request's store calls), or `Unavailable` once the budget is spent. Work cut
    /// off is dropped: a write in flight may still land, so every write is safe to repeat
    /// (conditional, or keyed by what it writes).
    pub async fn run<T, E: From<StoreError>>(
        self,
        work: impl std::future::Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        match tokio::time::timeout(self.0, work).await {
            Ok(result) => result,
            Err(_) => Err(E::from(StoreError::Unavailable(format!(
                "no answer within the store budget of {} ms",
                self.0.as_millis()
            )))),
        }
    }
}
