//! The one list of the functions. Each is named here once, with what the rest needs: the
//! gateway routes from it, the log filter and `cc-callbacks functions` (which `cc-bench` and
//! `scripts/build-arm64` read) list it, the local composition asks it which secrets exist, and
//! `tests/it/functions.rs` checks that `template.yaml`, `openapi.yaml`, `events/`,
//! `schemathesis.toml` and the README's function table agree with it. Adding a function: its
//! folder, one entry here, and the files that test names.

use std::future::Future;
use std::pin::Pin;

use cc_shared::config::ConfigError;
use cc_shared::number_keys::{INDEX_KEY_ARN_VAR, KEYRING_ARN_VAR};
use cc_shared::resources::Resources;
use cc_shared::web::envelope::Serve;

/// A function built for the gateway by its own `init`.
pub type Built<'a> = Pin<Box<dyn Future<Output = Result<Box<dyn Serve>, ConfigError>> + 'a>>;

/// One function, as the local process and the tests know it.
pub struct Function {
    /// The crate's and binary's name (its `FUNCTION`, the `Function` metric dimension).
    pub name: &'static str,
    /// The path API Gateway routes to it (`POST`).
    pub route: &'static str,
    /// The variable holding its callers' BasicAuth entries.
    pub credentials_var: &'static str,
    /// The variables naming its secrets in Secrets Manager.
    pub secret_arn_vars: &'static [&'static str],
    /// For a function that calls a vendor: whether the default tenant's is configured in this
    /// process (None: it needs nothing beyond the store and the keys). Every function serves
    /// platform tenants' callers too, each tenant with its own vendor settings.
    pub vendor: Option<Vendor>,
    /// Builds it with its `init`, as its Lambda `main` does.
    pub build: for<'a> fn(&'a Resources) -> Built<'a>,
}

/// A vendor's settings a function needs, asked of the function's own `config.rs` and `wire.rs`.
pub struct Vendor {
    /// Whether they are given in this process.
    pub configured: fn() -> bool,
    /// What to set when they are not (the function then answers the default tenant's
    /// callers 503 in their format itself).
    pub missing: &'static str,
}

impl Function {
    /// The target of its crate's log lines (`number_mapping` for `number-mapping`).
    pub fn log_target(&self) -> String {
        self.name.replace('-', "_")
    }

    /// Whether its vendor is configured here for the default tenant.
    pub fn is_configured(&self) -> bool {
        self.vendor.as_ref().is_none_or(|v| (v.configured)())
    }

    /// Whether its callers' credentials are given in this process.
    pub fn credentials_given(&self) -> bool {
        cc_shared::config::optional(self.credentials_var).is_some()
    }
}

/// Every function, in the order of the README's table.
pub const FUNCTIONS: &[Function] = &[
    Function {
        name: number_mapping::FUNCTION,
        route: "/number-mapping",
        credentials_var: number_mapping::CREDENTIALS_VAR,
        secret_arn_vars: &[INDEX_KEY_ARN_VAR, KEYRING_ARN_VAR],
        vendor: None,
        build: |res| Box::pin(async move { boxed(number_mapping::init(res).await) }),
    },
    Function {
        name: identity_verification::FUNCTION,
        route: "/identity/verify",
        credentials_var: identity_verification::CREDENTIALS_VAR,
        secret_arn_vars: &[
            identity_verification::config::PEPPER_ARN_VAR,
            INDEX_KEY_ARN_VAR,
        ],
        vendor: None,
        build: |res| Box::pin(async move { boxed(identity_verification::init(res).await) }),
    },
    Function {
        name: token_exchange::FUNCTION,
        route: "/token-exchange",
        credentials_var: token_exchange::CREDENTIALS_VAR,
        secret_arn_vars: &[token_exchange::SECRET_ARN_VAR, INDEX_KEY_ARN_VAR],
        vendor: Some(Vendor {
            configured: token_exchange::config::configured,
            missing: token_exchange::config::UNCONFIGURED,
        }),
        build: |res| Box::pin(async move { boxed(token_exchange::init(res).await) }),
    },
    Function {
        name: agent_sync::FUNCTION,
        route: "/agents/softphone",
        credentials_var: agent_sync::CREDENTIALS_VAR,
        secret_arn_vars: &[agent_sync::SECRET_ARN_VAR, INDEX_KEY_ARN_VAR],
        vendor: Some(Vendor {
            configured: agent_sync::config::configured,
            missing: agent_sync::config::UNCONFIGURED,
        }),
        build: |res| Box::pin(async move { boxed(agent_sync::init(res).await) }),
    },
];

fn boxed<S: Serve + 'static>(built: Result<S, ConfigError>) -> Result<Box<dyn Serve>, ConfigError> {
    Ok(Box::new(built?))
}

/// The function served at `route`.
pub fn by_route(route: &str) -> Option<&'static Function> {
    FUNCTIONS.iter().find(|f| f.route == route)
}

/// Every route, in the list's order.
pub fn routes() -> impl Iterator<Item = &'static str> {
    FUNCTIONS.iter().map(|f| f.route)
}

/// The log targets of this process's crates: the CLI and every function.
pub fn log_targets() -> Vec<String> {
    std::iter::once("cc_callbacks".to_string())
        .chain(FUNCTIONS.iter().map(Function::log_target))
        .collect()
}

/// Whether any function's secret is named as kept in Secrets Manager (then a local process
/// needs an AWS configuration even on the embedded store).
pub fn secrets_in_secrets_manager() -> bool {
    FUNCTIONS
        .iter()
        .flat_map(|f| f.secret_arn_vars.iter())
        .any(|v| cc_shared::config::optional(v).is_some())
}
