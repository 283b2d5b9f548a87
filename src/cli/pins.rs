//! `cc-callbacks pins ...`: enrol identity-verification PINs from a CSV (the `pin` factor's
//! importer, `factors.rs`, with the header `number,pin`), lift a lockout. Output never shows
//! a full number or a PIN.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Subcommand;

use cc_shared::domain::factor::Factor;
use cc_shared::domain::identity::Pepper;
use cc_shared::domain::protect::IndexKey;
use cc_shared::store::IdentityStore;

use super::factors::run_import;
use super::CliResult;
use crate::stores::{Failure, Stores};

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Enrol or replace PINs from a CSV file with the header `number,pin`.
    Import {
        /// The CSV file.
        file: PathBuf,
        /// The tenant whose customers these are (platform mode; absent: the default tenant).
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Lift a customer's lockout.
    Unlock {
        /// The customer's number, in any spelling.
        number: String,
        /// The tenant whose customer this is (platform mode; absent: the default tenant).
        #[arg(long)]
        tenant: Option<String>,
    },
}

/// The identity records of `tenant` (None: the default tenant's) and its index key and pepper.
pub(super) async fn open(
    stores: &Stores,
    tenant: Option<&str>,
) -> Result<(Arc<dyn IdentityStore>, IndexKey, Pepper), Failure> {
    match tenant {
        None => {
            let (pepper, index) = (stores.pepper().await?, stores.index_key().await?);
            Ok((stores.identity(), index, pepper))
        }
        Some(tenant) => {
            let id = super::tenants::tenant_id(tenant)?;
            let (store, keys) = stores.tenant_identity(&id).await?;
            Ok((store, keys.index, keys.pepper))
        }
    }
}

pub async fn run(data_dir: &Path, command: Command) -> CliResult {
    match command {
        Command::Import { file, tenant } => {
            run_import(
                data_dir,
                &file,
                tenant.as_deref(),
                Factor::Pin,
                "pin",
                "PINs",
            )
            .await
        }
        Command::Unlock { number, tenant } => {
            let stores = Stores::open(data_dir, None).await?;
            let phone = cc_shared::config::phone_normalizer()?
                .normalize(&number)
                .map_err(|e| format!("the number: {e}"))?;
            let (store, index, _) = open(&stores, tenant.as_deref()).await?;
            if store.unlock(&index.index(&phone)).await? {
                println!("unlocked {}", phone.masked());
                Ok(())
            } else {
                Err(format!("{} has no enrolled PIN", phone.masked()).into())
            }
        }
    }
}
