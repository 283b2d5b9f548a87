//! `cc-callbacks preflight [--config-env dev|staging|prod]`: before `sam deploy`, whether the
//! stage's reserved concurrency fits the account. Read-only: Lambda `GetAccountSettings`,
//! `ListFunctions` and `GetFunctionConcurrency` with the AWS credentials and region of the
//! target account (`AWS_ENDPOINT_URL_LAMBDA` points it at a fake for the tests).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::CliResult;

/// The template's reserved-concurrency parameters.
pub const PARAMETERS: [&str; 5] = [
    "NumberMappingConcurrency",
    "IdentityVerificationConcurrency",
    "TokenExchangeConcurrency",
    "AgentDirectoryConcurrency",
    "AgentSyncConcurrency",
];

/// Lambda keeps this many executions of an account unreserved.
pub const MIN_UNRESERVED: i64 = 100;

/// The Service Quotas code of Lambda's "Concurrent executions".
pub const QUOTA_CODE: &str = "L-B99A9384";

/// How long the whole check may take.
const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The stage's config-env in samconfig.toml.
    #[arg(long, default_value = "dev")]
    config_env: String,
    /// The SAM template.
    #[arg(long, default_value = "template.yaml")]
    template: PathBuf,
    /// The SAM configuration.
    #[arg(long, default_value = "samconfig.toml")]
    samconfig: PathBuf,
}

/// What a stage would reserve: its stack and each parameter's value.
#[derive(Debug, PartialEq, Eq)]
pub struct Stage {
    pub stack: String,
    pub reservations: BTreeMap<&'static str, i64>,
}

impl Stage {
    pub fn total(&self) -> i64 {
        self.reservations.values().sum()
    }
}

/// The account as Lambda reports it.
#[derive(Debug)]
struct Account {
    limit: i64,
    unreserved: i64,
    /// What the stage's functions reserve now (0 when it is not deployed).
    reserved_by_stage: i64,
}

pub async fn run(args: Args) -> CliResult {
    let stage = stage(&args.template, &args.samconfig, &args.config_env)?;
    let sdk = cc_shared::aws::sdk_config().await?;
    let account = tokio::time::timeout(TIMEOUT, account(&sdk, &stage.stack))
        .await
        .map_err(|_| format!("Lambda did not answer within {} s", TIMEOUT.as_secs()))??;
    let wanted = stage.total();
    let after = account.unreserved + account.reserved_by_stage - wanted;
    println!(
        "stage {} (stack {}): reserves {wanted} ({})",
        args.config_env,
        stage.stack,
        stage
            .reservations
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "account: concurrency limit {}, unreserved now {}, reserved by this stack now {}",
        account.limit, account.unreserved, account.reserved_by_stage
    );
    if wanted == 0 {
        println!(
            "fits: the stage reserves no concurrency (it shares the account's unreserved pool)"
        );
        return Ok(());
    }
    // Lambda grants a reservation only while the account keeps MIN_UNRESERVED unreserved.
    if after >= MIN_UNRESERVED {
        println!(
            "fits: {after} would stay unreserved after the deploy (Lambda needs {MIN_UNRESERVED})"
        );
        return Ok(());
    }
    Err(format!(
        "does not fit: {after} would stay unreserved after the deploy, Lambda needs \
         {MIN_UNRESERVED}. Lower this config-env's *Concurrency parameters in {} (0 means no \
         reservation), or request an increase of the Lambda quota \"Concurrent executions\" \
         ({QUOTA_CODE}) in Service Quotas",
        args.samconfig.display()
    )
    .into())
}

/// The stage's reservations: the template's defaults, overridden by the config-env's
/// `parameter_overrides`.
pub fn stage(template: &Path, samconfig: &Path, env: &str) -> Result<Stage, String> {
    let read = |p: &Path| {
        std::fs::read_to_string(p).map_err(|e| format!("cannot read {}: {e}", p.display()))
    };
    let template = read(template)?;
    let config: toml::Table = read(samconfig)?
        .parse()
        .map_err(|e| format!("{}: {e}", samconfig.display()))?;
    let section = |command: &str| -> Option<&toml::Table> {
        config.get(env)?.get(command)?.get("parameters")?.as_table()
    };
    let stack = section("global")
        .or_else(|| section("deploy"))
        .and_then(|t| t.get("stack_name"))
        .and_then(toml::Value::as_str)
        .ok_or_else(|| {
            format!(
                "{}: no config-env {env} with a stack_name",
                samconfig.display()
            )
        })?
        .to_string();
    let overrides = section("deploy")
        .and_then(|t| t.get("parameter_overrides"))
        .map(|v| match v {
            toml::Value::String(s) => s.split_whitespace().map(str::to_string).collect(),
            toml::Value::Array(a) => a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        })
        .unwrap_or_default();
    let mut reservations = BTreeMap::new();
    for name in PARAMETERS {
        let given = overrides
            .iter()
            .find_map(|o| o.strip_prefix(name)?.strip_prefix('='))
            .map(|v| v.trim_matches('"').to_string());
        let value = match given {
            Some(v) => v,
            None => template_default(&template, name)
                .ok_or_else(|| format!("the template has no parameter {name} with a Default"))?,
        };
        let value: i64 = value
            .parse()
            .map_err(|_| format!("{name}={value} is not a number"))?;
        reservations.insert(name, value);
    }
    Ok(Stage {
        stack,
        reservations,
    })
}

/// The `Default:` of a top-level parameter of the template (its block under `Parameters`).
fn template_default(template: &str, name: &str) -> Option<String> {
    let header = format!("\n  {name}:\n");
    let start = template.find(&header)? + header.len();
    template[start..]
        .lines()
        .take_while(|l| {
            l.starts_with("    ") || l.trim().is_empty() || l.trim_start().starts_with('#')
        })
        .find_map(|l| l.trim().strip_prefix("Default:"))
        .map(|v| v.trim().trim_matches('"').to_string())
}

async fn account(sdk: &aws_config::SdkConfig, stack: &str) -> Result<Account, String> {
    let lambda = aws_sdk_lambda::Client::new(sdk);
    let failed = |what: &str, e: &dyn std::fmt::Display| format!("Lambda {what}: {e}");
    let settings = lambda.get_account_settings().send().await.map_err(|e| {
        failed(
            "GetAccountSettings",
            &aws_sdk_lambda::error::DisplayErrorContext(e),
        )
    })?;
    let limits = settings
        .account_limit()
        .ok_or("Lambda GetAccountSettings: no AccountLimit in the answer")?;
    let prefix = format!("{stack}-");
    let mut reserved_by_stage = 0;
    let mut pages = lambda.list_functions().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| {
            failed(
                "ListFunctions",
                &aws_sdk_lambda::error::DisplayErrorContext(e),
            )
        })?;
        for f in page.functions() {
            let Some(name) = f.function_name().filter(|n| n.starts_with(&prefix)) else {
                continue;
            };
            let concurrency = lambda
                .get_function_concurrency()
                .function_name(name)
                .send()
                .await
                .map_err(|e| {
                    failed(
                        "GetFunctionConcurrency",
                        &aws_sdk_lambda::error::DisplayErrorContext(e),
                    )
                })?;
            reserved_by_stage +=
                i64::from(concurrency.reserved_concurrent_executions().unwrap_or(0));
        }
    }
    Ok(Account {
        limit: i64::from(limits.concurrent_executions()),
        unreserved: limits
            .unreserved_concurrent_executions()
            .map(i64::from)
            .unwrap_or_else(|| i64::from(limits.concurrent_executions())),
        reserved_by_stage,
    })
}
