//! The `cc-callbacks` command. One module per command group, each holding its arguments, its
//! logic and its printing; this file only dispatches. The local composition (which store,
//! which keys, which function settings) is built in `crate::stores`; imports share one CSV
//! pipeline (`csv_import`), and what is printed one style (`output`).

mod agents;
mod credentials;
mod csv_import;
mod factors;
mod functions;
mod numbers;
mod output;
mod pins;
mod preflight;
mod records;
mod serve;
mod table;
mod tenant_settings;
mod tenants;
mod unmaskings;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "cc-callbacks",
    version,
    about = "Local gateway and admin commands of the cc-callbacks bundle"
)]
pub struct Cli {
    /// Where the embedded store lives (used when TABLE_NAME is not set).
    #[arg(long, global = true, default_value = ".data", env = "CC_DATA_DIR")]
    pub data_dir: PathBuf,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve every callback locally (the default command).
    Serve(serve::Args),
    /// Manage callback credentials.
    #[command(subcommand)]
    Credentials(credentials::Command),
    /// Enrol and unlock identity-verification PINs.
    #[command(subcommand)]
    Pins(pins::Command),
    /// Enrol or forget other verification factors (ID digits, birth date, card digits).
    #[command(subcommand)]
    Factors(factors::Command),
    /// Identity verification records.
    #[command(subcommand)]
    Records(records::Command),
    /// Who had customers' numbers revealed (UIDToPhone), when, from where.
    #[command(subcommand)]
    Unmaskings(unmaskings::Command),
    /// The Huawei CEC agent directory.
    #[command(subcommand)]
    Agents(agents::Command),
    /// Manage the DynamoDB table (TABLE_NAME; AWS_ENDPOINT_URL_DYNAMODB for DynamoDB Local).
    #[command(subcommand)]
    Table(table::Command),
    /// The number mapping as a system of record: import, export, erasure, keys.
    #[command(subcommand)]
    Numbers(numbers::Command),
    /// List the functions: name, route, credentials variable, whether served here.
    Functions(functions::Args),
    /// Platform mode: the enterprises this stack serves (README "Platform mode").
    #[command(subcommand)]
    Tenants(tenants::Command),
    /// Before `sam deploy`: whether a stage's reserved concurrency fits the AWS account.
    Preflight(preflight::Args),
}

pub type CliResult = Result<(), crate::stores::Failure>;

pub async fn run(cli: Cli) -> CliResult {
    let data_dir = cli.data_dir.as_path();
    match cli.command {
        None => serve::run(data_dir, serve::Args::defaults()?).await,
        Some(Command::Serve(args)) => serve::run(data_dir, args).await,
        Some(Command::Credentials(c)) => credentials::run(data_dir, c).await,
        Some(Command::Pins(c)) => pins::run(data_dir, c).await,
        Some(Command::Factors(c)) => factors::run(data_dir, c).await,
        Some(Command::Records(c)) => records::run(data_dir, c).await,
        Some(Command::Unmaskings(c)) => unmaskings::run(data_dir, c).await,
        Some(Command::Agents(c)) => agents::run(data_dir, c).await,
        Some(Command::Table(c)) => table::run(data_dir, c).await,
        Some(Command::Numbers(c)) => numbers::run(data_dir, c).await,
        Some(Command::Functions(args)) => functions::run(args),
        Some(Command::Tenants(c)) => tenants::run(data_dir, c).await,
        Some(Command::Preflight(args)) => preflight::run(args).await,
    }
}
