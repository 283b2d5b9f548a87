//! The local side of cc-callbacks: a gateway serving every callback on one port through the
//! very handlers the Lambda binaries run, and the admin commands, all on the configured store.

pub mod cli;
pub mod functions;
pub mod gateway;
pub mod stores;
