//! `cc-callbacks serve` (the default command): every callback on one port, through the very
//! handlers the Lambda binaries run, on the configured store.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use super::CliResult;
use crate::gateway::{self, Gateway};
use crate::stores::Stores;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:3000")]
    listen: SocketAddr,
    #[command(flatten)]
    limits: gateway::Limits,
}

impl Args {
    /// `cc-callbacks` without a subcommand: the defaults, and the limits from their variables.
    pub fn defaults() -> Result<Args, clap::Error> {
        Ok(Args {
            listen: SocketAddr::from(([127, 0, 0, 1], 3000)),
            limits: gateway::Limits::from_env()?,
        })
    }
}

pub async fn run(data_dir: &Path, Args { listen, limits }: Args) -> CliResult {
    cc_shared::logging::init(&crate::functions::log_targets());
    let stores = Stores::open(data_dir, Gateway::dev_credentials(&listen)?).await?;
    let gateway = Arc::new(Gateway::new(&stores.res).await?);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let addr = listener.local_addr()?;
    eprintln!(
        "cc-callbacks listening on http://{addr} ({})",
        stores.describe()
    );
    for route in crate::functions::routes() {
        eprintln!("  POST http://{addr}{route}");
    }
    for f in gateway.unconfigured() {
        let missing = f.vendor.as_ref().map_or("", |v| v.missing);
        eprintln!(
            "  {} is off for the default tenant: {missing} (platform tenants use their own \
             settings; see README)",
            f.name
        );
    }
    if gateway.dev_credentials {
        eprintln!(
            "  no credentials configured: accepting the development credentials dev:dev (loopback only)"
        );
    }
    eprintln!(
        "try:\n  curl -s -u dev:dev -H 'content-type: application/json' \\\n    -d '{{\"Numbers\":[\"13988888888\"],\"Mode\":\"PhoneToUID\"}}' http://{addr}/number-mapping"
    );
    gateway::serve(listener, gateway, limits, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}
