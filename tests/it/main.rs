//! The workspace's black-box tests, in one test binary (one link of the SDK, SQLite and the
//! functions, instead of one per file). Two files keep binaries of their own: `tests/logs.rs`
//! (tracing's per-thread subscribers meet other threads logging in the same process) and
//! `tests/secrets.rs` (it sets process environment variables).

#[macro_use]
mod support;

mod admin_cli;
mod agents;
mod bad_inputs;
mod dynamodb_restart;
mod events;
mod functions;
mod gateway;
mod gateway_limits;
mod identity;
mod identity_contract;
mod identity_modes;
mod keys_and_damage;
mod lambda_binaries;
mod mapping;
mod numbers_cli;
mod numbers_contract;
mod numbers_migrate;
mod openapi;
mod platform;
mod platform_agents;
mod platform_token;
mod preflight;
mod store_contract;
mod template;
mod tenants_cli;
mod tenants_contract;
mod token;
mod unmaskings;
