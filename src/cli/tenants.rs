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
    /// Every tenant: ID, name, created, suspended, credentials, when its agent directory was
    /// last synced from its own CEC (stale past AGENT_SYNC_STALE_HOURS).
    List {
        /// One JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Refuse the tenant's callers (401) until resumed; its data is kept.
    Suspend { id: String },
    /// Serve a suspended tenant's callers again.
    Resume { id: String },
    /// Set the tenant's own vendor settings (its AICCS app, its Huawei CEC, its identity
    /// verification modes), named as the
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

/// When a tenant's agent directory was last synced successfully.
enum AgentsSynced {
    /// It has no CEC of its own.
    NoCec,
    Never,
    At(i64),
}

/// Each tenant's last successful agent sync, read from its directory (at most 16 at once).
async fn agents_synced(
    stores: &Stores,
    entries: &[cc_shared::store::TenantEntry],
) -> Result<Vec<AgentsSynced>, cc_shared::store::StoreError> {
    let mut out = Vec::with_capacity(entries.len());
    for chunk in entries.chunks(16) {
        let mut reads = tokio::task::JoinSet::new();
        for (i, e) in chunk.iter().enumerate() {
            if !e.settings.values.contains_key("CEC_BASE_URL") {
                continue;
            }
            let store = stores.stores.for_tenant(&e.tenant.id).agents();
            reads.spawn(async move { (i, store.last_sync().await) });
        }
        let mut found: Vec<AgentsSynced> = chunk.iter().map(|_| AgentsSynced::NoCec).collect();
        while let Some(joined) = reads.join_next().await {
            let (i, state) = joined.map_err(|e| {
                cc_shared::store::StoreError::Failed(format!("reading a sync state: {e}"))
            })?;
            found[i] = state?.map_or(AgentsSynced::Never, |s| AgentsSynced::At(s.at));
        }
        out.extend(found);
    }
    Ok(out)
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
            let entries = registry.list_tenants().await?;
            let synced = agents_synced(&stores, &entries).await?;
            let stale_after = agent_sync::config::RunLimits::from_env()?.stale_after_seconds;
            let now = now_epoch();
            let rows: Vec<(Tenant, usize, AgentsSynced)> = entries
                .into_iter()
                .zip(synced)
                .map(|(e, synced)| (e.tenant, e.credentials.len(), synced))
                .collect();
            let stale = |s: &AgentsSynced| match s {
                AgentsSynced::NoCec => false,
                AgentsSynced::Never => true,
                AgentsSynced::At(at) => now - at > stale_after,
            };
            if json {
                let rows: Vec<serde_json::Value> = rows
                    .iter()
                    .map(|(t, credentials, synced)| {
                        let mut row = tenant_json(t, serde_json::json!(credentials));
                        row["agents_synced"] = match synced {
                            AgentsSynced::At(at) => serde_json::json!(rfc3339(*at)),
                            _ => serde_json::Value::Null,
                        };
                        row["agents_stale"] = serde_json::json!(stale(synced));
                        row
                    })
                    .collect();
                println!("{}", serde_json::Value::Array(rows));
                return Ok(());
            }
            println!(
                "{:<32}  {:<20}  {:<9}  {:>11}  {:<26}  name",
                "id", "created", "suspended", "credentials", "agents synced"
            );
            for (t, credentials, synced) in &rows {
                let synced_text = match synced {
                    AgentsSynced::NoCec => "-".to_string(),
                    AgentsSynced::Never => "never (stale)".to_string(),
                    AgentsSynced::At(at) if stale(synced) => format!("{} (stale)", rfc3339(*at)),
                    AgentsSynced::At(at) => rfc3339(*at),
                };
                println!(
                    "{:<32}  {:<20}  {:<9}  {:>11}  {:<26}  {}",
                    t.id.as_str(),
                    rfc3339(t.created_at),
                    if t.suspended { "yes" } else { "no" },
                    credentials,
                    synced_text,
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
