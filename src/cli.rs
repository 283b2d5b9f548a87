//! Command-line interface of the `cc-callbacks` binary.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use crate::gateway::{self, Gateway};
use crate::stores::Stores;

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
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:3000")]
        listen: SocketAddr,
    },
    /// Manage callback credentials.
    #[command(subcommand)]
    Credentials(CredentialsCommand),
    /// Manage the DynamoDB table (TABLE_NAME; AWS_ENDPOINT_URL_DYNAMODB for DynamoDB Local).
    #[command(subcommand)]
    Table(TableCommand),
}

#[derive(Debug, Subcommand)]
pub enum CredentialsCommand {
    /// Generate a strong password and its `user:sha256:<hex>` entry.
    New {
        /// The BasicAuth user name the caller will send.
        #[arg(long)]
        user: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum TableCommand {
    /// Create the table with the key schema and TTL of template.yaml.
    Create,
}

pub type CliResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

pub async fn run(cli: Cli) -> CliResult {
    match cli.command.unwrap_or(Command::Serve {
        listen: "127.0.0.1:3000".parse()?,
    }) {
        Command::Serve { listen } => serve(&cli.data_dir, listen).await,
        Command::Credentials(CredentialsCommand::New { user }) => {
            if user.is_empty() || user.contains([':', ',']) {
                return Err("the user name must be non-empty, without ':' or ','".into());
            }
            let (password, entry) = cc_shared::auth::generate_entry(&user)?;
            println!("password (give it to the caller, then forget it): {password}");
            println!("entry (append to the function's *_CREDENTIALS parameter): {entry}");
            Ok(())
        }
        Command::Table(TableCommand::Create) => {
            let stores = Stores::open(&cli.data_dir).await?;
            let dynamo = stores
                .dynamo()
                .ok_or("TABLE_NAME is not set: the embedded store needs no table")?;
            dynamo.create_table().await?;
            println!("created table {}", dynamo.table());
            Ok(())
        }
    }
}

async fn serve(data_dir: &std::path::Path, listen: SocketAddr) -> CliResult {
    cc_shared::logging::init();
    let stores = Stores::open(data_dir).await?;
    let gateway = Arc::new(Gateway::from_env(&stores, &listen)?);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let addr = listener.local_addr()?;
    eprintln!(
        "cc-callbacks listening on http://{addr} ({})",
        stores.describe()
    );
    for route in gateway::ROUTES {
        eprintln!("  POST http://{addr}{route}");
    }
    if gateway.dev_credentials {
        eprintln!(
            "  no credentials configured: accepting the development credentials dev:dev (loopback only)"
        );
    }
    eprintln!(
        "try:\n  curl -s -u dev:dev -H 'content-type: application/json' \\\n    -d '{{\"Numbers\":[\"13988888888\"],\"Mode\":\"PhoneToUID\"}}' http://{addr}/number-mapping"
    );
    gateway::serve(listener, gateway, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}
