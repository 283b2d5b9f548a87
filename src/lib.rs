//! The local side of cc-callbacks: a gateway serving every callback on one port through the
//! very handlers the Lambda binaries run, and the admin commands, all on the configured store.

pub mod admin;
pub mod cli;
pub mod gateway;
pub mod numbers;
pub mod stores;
