//! The models crate of cc-callbacks: wire types, phone numbers, user IDs, auth, storage,
//! configuration, logging, and the mapping of errors to each caller's response format.

pub mod alibaba;
pub mod audit;
pub mod auth;
pub mod cec;
pub mod clock;
pub mod config;
pub mod error;
pub mod http;
pub mod huawei;
pub mod identity;
pub mod lambda;
pub mod logging;
pub mod phone;
pub mod secrets;
pub mod store;
pub mod tencent;
pub mod uid;
#[cfg(feature = "upstream")]
pub mod upstream;
