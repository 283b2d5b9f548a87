//! The HTTP layer the four callbacks share: `ApiError` (what a callback can answer, each
//! function turning it into its caller's format in its `wire.rs`), BasicAuth, body and
//! response helpers, the store budget, and the Lambda runner with its event conversion.

pub mod auth;
pub mod budget;
pub mod envelope;
pub mod error;
pub mod http;
pub mod lambda;
pub mod tenancy;

pub use budget::StoreBudget;
