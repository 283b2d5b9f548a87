//! `cc-callbacks credentials ...`: a caller's password, and either the entry to configure (the
//! default tenant: a stack parameter) or, with `--tenant`, the digest kept in that tenant's
//! registry entry (platform mode: no deploy). A password is printed once and never stored.

use std::path::Path;

use clap::Subcommand;

use cc_shared::domain::clock::now_epoch;
use cc_shared::domain::tenant::{check_caller_name, password_digest, TenantCredential};
use cc_shared::store::CredentialAdded;

use super::output::rfc3339;
use super::tenants::tenant_id;
use super::CliResult;
use crate::stores::Stores;

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generate a strong password: its `user:sha256:<hex>` entry, or with `--tenant` its
    /// digest stored for that tenant and function.
    New {
        /// The BasicAuth user name the caller will send (with `--tenant`: NAME, sent as
        /// NAME@TENANT).
        #[arg(long)]
        user: String,
        /// The tenant the caller belongs to (platform mode).
        #[arg(long, requires = "function")]
        tenant: Option<String>,
        /// The function the credential is for (a name of `cc-callbacks functions`); with
        /// `--tenant` only.
        #[arg(long, requires = "tenant")]
        function: Option<String>,
    },
    /// A tenant's credentials: names, functions, created (never a digest).
    List {
        #[arg(long)]
        tenant: String,
    },
    /// Remove a tenant's caller's credentials (every function).
    Revoke {
        #[arg(long)]
        user: String,
        #[arg(long)]
        tenant: String,
    },
}

pub async fn run(data_dir: &Path, command: Command) -> CliResult {
    match command {
        Command::New {
            user,
            tenant: None,
            function: _,
        } => {
            if user.is_empty() || user.contains([':', ',']) {
                return Err("the user name must be non-empty, without ':' or ','".into());
            }
            let (password, entry) = cc_shared::web::auth::generate_entry(&user)?;
            println!("password (give it to the caller, then forget it): {password}");
            println!("entry (append to the function's *_CREDENTIALS parameter): {entry}");
            Ok(())
        }
        Command::New {
            user,
            tenant: Some(tenant),
            function,
        } => {
            let id = tenant_id(&tenant)?;
            check_caller_name(&user).map_err(|e| format!("--user: {e}"))?;
            let function = function.ok_or("--function is required with --tenant")?;
            let functions = crate::functions::FUNCTIONS;
            if !functions.iter().any(|f| f.name == function) {
                let names: Vec<&str> = functions.iter().map(|f| f.name).collect();
                return Err(format!("--function must be one of: {}", names.join(", ")).into());
            }
            let stores = Stores::open(data_dir, None).await?;
            let (password, _) = cc_shared::web::auth::generate_entry(&user)?;
            let credential = TenantCredential {
                user: user.clone(),
                function: function.clone(),
                digest: password_digest(&password),
                created_at: now_epoch(),
            };
            match stores.tenants().add_credential(&id, &credential).await? {
                CredentialAdded::Added => {
                    println!("password (give it to the caller, then forget it): {password}");
                    println!(
                        "user name (the caller sends it with the password): {user}@{id} \
                         ({function}, {})",
                        stores.describe()
                    );
                    Ok(())
                }
                CredentialAdded::NoTenant => Err(format!("no tenant {id}").into()),
                CredentialAdded::Taken => Err(format!(
                    "tenant {id} has a credential {user} for {function} already: revoke it, \
                     or give the new one another name (both stay valid until one is revoked)"
                )
                .into()),
                CredentialAdded::Full => Err(format!(
                    "tenant {id} holds {} credentials, the most one tenant may: revoke one first",
                    cc_shared::store::MAX_TENANT_CREDENTIALS
                )
                .into()),
            }
        }
        Command::List { tenant } => {
            let id = tenant_id(&tenant)?;
            let stores = Stores::open(data_dir, None).await?;
            let entry = stores
                .tenants()
                .tenant(&id)
                .await?
                .ok_or_else(|| format!("no tenant {id}"))?;
            println!("{:<24}  {:<22}  created", "user", "function");
            for c in &entry.credentials {
                println!(
                    "{:<24}  {:<22}  {}",
                    format!("{}@{id}", c.user),
                    c.function,
                    rfc3339(c.created_at)
                );
            }
            println!("{} credentials of tenant {id}", entry.credentials.len());
            Ok(())
        }
        Command::Revoke { user, tenant } => {
            let id = tenant_id(&tenant)?;
            let stores = Stores::open(data_dir, None).await?;
            if stores.tenants().tenant(&id).await?.is_none() {
                return Err(format!("no tenant {id}").into());
            }
            match stores.tenants().revoke_credentials(&id, &user).await? {
                0 => Err(format!("tenant {id} has no credential {user}").into()),
                n => {
                    println!("revoked {n} credentials of {user}@{id}");
                    Ok(())
                }
            }
        }
    }
}
