//! `cc-callbacks tenants ...`: platform mode's tenants, added, listed, suspended and resumed
//! against a deployed stage's table (no deploy). Nothing printed is ever a key or a digest.

use std::path::Path;

use clap::Subcommand;

use cc_shared::domain::clock::now_epoch;
use cc_shared::domain::tenant::{Tenant, TenantId, TenantKeys};

use super::output::rfc3339;
use super::CliResult;
use crate::stores::Stores;

/// Longest tenant name (free text for ops).
pub const MAX_NAME_CHARS: usize = 200;

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Register a tenant and generate its own number keys (wrapped under the stack's keyring).
    Add {
        /// 1 to 32 lowercase ASCII letters, digits and '-', starting with a letter.
        id: String,
        /// What ops call it.
        #[arg(long, default_value = "")]
        name: String,
    },
    /// Every tenant: ID, name, created, suspended, credentials.
    List {
        /// One JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Refuse the tenant's callers (401) until resumed; its data is kept.
    Suspend { id: String },
    /// Serve a suspended tenant's callers again.
    Resume { id: String },
}

/// A tenant ID given on the command line, checked.
pub fn tenant_id(id: &str) -> Result<TenantId, String> {
    TenantId::parse(id).map_err(|e| format!("{id:?}: {e}"))
}

pub async fn run(data_dir: &Path, command: Command) -> CliResult {
    let stores = Stores::open(data_dir, None).await?;
    let registry = stores.tenants();
    match command {
        Command::Add { id, name } => {
            let id = tenant_id(&id)?;
            if name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) {
                return Err(format!(
                    "--name is at most {MAX_NAME_CHARS} characters, without control characters"
                )
                .into());
            }
            let stack = stores.keys().await?;
            let keyring = stack
                .keyring
                .as_deref()
                .ok_or("the stack's keyring is needed to wrap a tenant's keys")?;
            let keys = TenantKeys::generate()?;
            let tenant = Tenant {
                keys: keys.wrap(keyring, &id)?,
                id: id.clone(),
                name,
                created_at: now_epoch(),
                suspended: false,
            };
            if !registry.add_tenant(&tenant).await? {
                return Err(format!("tenant {id} exists already ({})", stores.describe()).into());
            }
            println!(
                "added tenant {id}: its own number keys generated, wrapped under keyring \
                 version {} ({})",
                keyring.current_version(),
                stores.describe()
            );
            Ok(())
        }
        Command::List { json } => {
            // The credentials sit in each tenant's one record: counted from the same read.
            let rows: Vec<(Tenant, usize)> = registry
                .list_tenants()
                .await?
                .into_iter()
                .map(|e| (e.tenant, e.credentials.len()))
                .collect();
            if json {
                let rows: Vec<serde_json::Value> = rows
                    .iter()
                    .map(|(t, credentials)| {
                        serde_json::json!({
                            "id": t.id.as_str(),
                            "name": t.name,
                            "created": rfc3339(t.created_at),
                            "suspended": t.suspended,
                            "credentials": credentials,
                        })
                    })
                    .collect();
                println!("{}", serde_json::Value::Array(rows));
                return Ok(());
            }
            println!(
                "{:<32}  {:<20}  {:<9}  {:>11}  name",
                "id", "created", "suspended", "credentials"
            );
            for (t, credentials) in &rows {
                println!(
                    "{:<32}  {:<20}  {:<9}  {:>11}  {}",
                    t.id.as_str(),
                    rfc3339(t.created_at),
                    if t.suspended { "yes" } else { "no" },
                    credentials,
                    t.name
                );
            }
            println!("{} tenants ({})", rows.len(), stores.describe());
            Ok(())
        }
        Command::Suspend { id } => set_suspended(&stores, &id, true).await,
        Command::Resume { id } => set_suspended(&stores, &id, false).await,
    }
}

async fn set_suspended(stores: &Stores, id: &str, suspended: bool) -> CliResult {
    let id = tenant_id(id)?;
    if !stores.tenants().set_suspended(&id, suspended).await? {
        return Err(format!("no tenant {id} ({})", stores.describe()).into());
    }
    let what = if suspended { "suspended" } else { "resumed" };
    println!("{what} tenant {id}");
    Ok(())
}
