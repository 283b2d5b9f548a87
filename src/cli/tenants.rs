//! `cc-callbacks tenants ...`: platform mode's tenants, added, listed, suspended and resumed
//! against a deployed stage's table (no deploy). Nothing printed is ever a key or a digest.

use std::path::Path;

use clap::Subcommand;

use cc_shared::domain::clock::now_epoch;
use cc_shared::domain::tenant::{Tenant, TenantId, TenantKeys};
use cc_shared::store::Erased;

use super::output::{progress, rfc3339};
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
    /// Set the tenant's own vendor settings (its AICCS app, its Huawei CEC), named as the
    /// single-enterprise variables: `NAME=VALUE`, `NAME=` unsets. Secrets
    /// (FUYUN_CLIENT_SECRET, FUYUN_PRIVATE_KEY, CEC_APP_SECRET) only as `NAME=@FILE` or
    /// `NAME=-` (standard input). Checked as the functions check them; nothing is changed
    /// when one is refused.
    Set {
        id: String,
        /// NAME=VALUE, NAME=@FILE, NAME=- or NAME=
        #[arg(required = true, value_name = "NAME=VALUE")]
        settings: Vec<String>,
    },
    /// The tenant: its state, credentials and settings (secrets only as set or unset).
    Show {
        id: String,
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Erase everything held for the tenant: mappings, PINs, lockout state, verification
    /// records, credentials and its keys (final: what it sealed can never be opened again).
    /// Idempotent; a second run finishes an interrupted one.
    Remove {
        id: String,
        /// Confirm: nothing of the tenant can be restored afterwards.
        #[arg(long)]
        yes: bool,
    },
}

/// A tenant as `tenants list|show --json` print it, with its `credentials` (a count, or the
/// list).
pub fn tenant_json(t: &Tenant, credentials: serde_json::Value) -> serde_json::Value {
    serde_json::json!({
        "id": t.id.as_str(),
        "name": t.name,
        "created": rfc3339(t.created_at),
        "suspended": t.suspended,
        "credentials": credentials,
    })
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
            let keys = TenantKeys::generate()?;
            let tenant = Tenant::new(id.clone(), name, now_epoch(), &keys, &stack)?;
            if !registry.add_tenant(&tenant).await? {
                return Err(format!("tenant {id} exists already ({})", stores.describe()).into());
            }
            println!(
                "added tenant {id}: its own number keys generated, wrapped under keyring \
                 version {} ({})",
                tenant.keys.version().unwrap_or_default(),
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
                    .map(|(t, credentials)| tenant_json(t, serde_json::json!(credentials)))
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
        Command::Set { id, settings } => super::tenant_settings::set(&stores, &id, &settings).await,
        Command::Show { id, json } => super::tenant_settings::show(&stores, &id, json).await,
        Command::Suspend { id } => set_suspended(&stores, &id, true).await,
        Command::Resume { id } => set_suspended(&stores, &id, false).await,
        Command::Remove { id, yes } => {
            let id = tenant_id(&id)?;
            if !yes {
                return Err(format!(
                    "this erases every record and the keys of tenant {id} for good: add --yes"
                )
                .into());
            }
            remove(&stores, &id).await
        }
    }
}

/// `tenants remove`: the tenant suspended first (its callers refused), then every item under
/// its scope erased in bounded parallel pages, then its registry entry and keys.
async fn remove(stores: &Stores, id: &TenantId) -> CliResult {
    let registry = stores.tenants();
    let entry = registry.tenant(id).await?;
    // Registered and serving until now: a cached instance may still write for a while.
    let was_serving = entry.as_ref().is_some_and(|e| !e.tenant.suspended);
    if entry.is_some() {
        registry.set_suspended(id, true).await?;
    }
    let bar = progress(None, "erasing records");
    let segments = registry.erase_segments();
    let mut tasks = tokio::task::JoinSet::new();
    for segment in 0..segments {
        let (registry, id, bar) = (registry.clone(), id.clone(), bar.clone());
        tasks.spawn(async move {
            let mut erased = Erased::default();
            let mut start = None;
            loop {
                let (page, next) = registry.erase_page(&id, segment, segments, start).await?;
                bar.inc((page.mappings + page.pins + page.records + page.other) as u64);
                erased.add(page);
                match next {
                    Some(n) => start = Some(n),
                    None => return Ok::<_, cc_shared::store::StoreError>(erased),
                }
            }
        });
    }
    let mut erased = Erased::default();
    while let Some(joined) = tasks.join_next().await {
        erased.add(joined.map_err(|e| format!("erasing task: {e}"))??);
    }
    bar.finish_and_clear();
    let removed = registry.remove_tenant(id).await?;
    if !removed && erased == Erased::default() {
        println!("tenant {id}: nothing of it is left ({})", stores.describe());
        return Ok(());
    }
    println!(
        "removed tenant {id}: {} mappings, {} PINs, {} verification records, {} other items, \
         {} credentials; its keys are deleted ({})",
        erased.mappings,
        erased.pins,
        erased.records,
        erased.other,
        entry.map_or(0, |e| e.credentials.len()),
        stores.describe()
    );
    if was_serving {
        println!(
            "it was not suspended before: an instance that had it in its cache may have \
             written for it until the cache time (TENANT_CACHE_SECONDS) passed; run this \
             command again after it to erase what it wrote"
        );
    }
    Ok(())
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
