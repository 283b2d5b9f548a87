//! The crate the cc-callbacks functions share, in layers; a module imports only from the
//! layers below its own (ARCHITECTURE.md says how to check):
//!
//! ```text
//!   number_keys   the number keys, read at init (Secrets Manager, variable or local file)
//!   resources     what each function's init is given: the stores, the AWS configuration
//!   upstream      the HTTP client for vendor APIs (errors are web::ApiError)
//!   web           ApiError, BasicAuth, request body and responses, store budget, Lambda runner
//!   store         the store traits and StoreError; dynamo/ and embedded/ backends
//!   aws           AWS SDK configuration and its bounds, Secrets Manager reads
//!   config        settings read once at start-up; logging; metrics (EMF)
//!   domain        pure types and rules: numbers, number protection, IDs, clock, PINs,
//!                 records, agents, audit
//! ```
//!
//! Vendor wire formats are not here: each lives in the function that speaks it (`wire.rs`).

#[cfg(any(feature = "secrets", feature = "dynamodb"))]
pub mod aws;
pub mod config;
pub mod domain;
pub mod logging;
pub mod metrics;
pub mod number_keys;
pub mod resources;
pub mod store;
#[cfg(feature = "upstream")]
pub mod upstream;
pub mod web;
