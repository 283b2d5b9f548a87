//! `cc-callbacks agents ...`: the Huawei CEC agent directory: sync it now, list it, link a
//! business-system account to an agent.

use std::io::Write;
use std::path::Path;

use clap::Subcommand;

use cc_shared::domain::agents::{printable, Agent, SyncState};
use std::sync::Arc;

use cc_shared::domain::clock::SystemClock;
use cc_shared::domain::tenant_settings::{TenantSettings, Vendor};
use cc_shared::store::AgentStore;

use super::output::rfc3339;
use super::CliResult;
use crate::stores::{Failure, Stores};

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Fetch the directory from the CEC now and update the store.
    Sync {
        /// Deactivate the agents missing from the answer however many they are (a sync is
        /// otherwise refused past AGENT_SYNC_MAX_DEACTIVATE_PERCENT of the active agents).
        #[arg(long)]
        allow_mass_deactivation: bool,
        /// The tenant whose directory to sync, from its own CEC (platform mode; absent: the
        /// default tenant's).
        #[arg(long)]
        tenant: Option<String>,
    },
    /// List the agents of the store.
    List {
        /// One JSON object instead of a table.
        #[arg(long)]
        json: bool,
        /// The tenant whose directory to list (platform mode; absent: the default tenant's).
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Link a business-system account to an (active) agent.
    Link {
        /// The business-system account.
        account: String,
        /// The agent's work number.
        work_no: String,
        /// The tenant whose account and agent these are (platform mode; absent: the default
        /// tenant's).
        #[arg(long)]
        tenant: Option<String>,
    },
}

/// The directory of `tenant` (None: the default tenant's) and its own settings.
async fn directory(
    stores: &Stores,
    tenant: Option<&str>,
) -> Result<(Arc<dyn AgentStore>, Option<TenantSettings>), Failure> {
    match tenant {
        None => Ok((stores.agents(), None)),
        Some(tenant) => {
            let id = super::tenants::tenant_id(tenant)?;
            let (store, settings) = stores.tenant_agents(&id).await?;
            Ok((store, Some(settings)))
        }
    }
}

pub async fn run(data_dir: &Path, command: Command) -> CliResult {
    let stores = Stores::open(data_dir, None).await?;
    match command {
        Command::Sync {
            allow_mass_deactivation,
            tenant,
        } => {
            let (store, settings) = directory(&stores, tenant.as_deref()).await?;
            let (cec, guard) = match (&settings, tenant.as_deref()) {
                (Some(settings), Some(id)) => {
                    if !settings.has(Vendor::Cec) {
                        return Err(format!(
                            "tenant {id} has no CEC: set its CEC_* settings with `cc-callbacks \
                             tenants set {id} ...`"
                        )
                        .into());
                    }
                    let timeouts = agent_sync::config::CecTimeouts::from_env()?;
                    agent_sync::config::tenant_cec(settings, timeouts)
                        .map_err(|e| format!("tenant {id}: {e}"))?
                }
                _ => {
                    let cec = stores
                        .cec()
                        .await?
                        .ok_or("CEC_BASE_URL is not set: configure the CEC (see README)")?;
                    (cec, agent_sync::deactivation_guard()?)
                }
            };
            let guard = if allow_mass_deactivation {
                agent_sync::DeactivationGuard::OFF
            } else {
                guard
            };
            let c = agent_sync::sync(&*store, &cec, &SystemClock, guard).await?;
            println!(
                "added {}, updated {}, deactivated {}, unchanged {} ({})",
                c.added,
                c.updated,
                c.deactivated,
                c.unchanged,
                stores.describe()
            );
            Ok(())
        }
        Command::List { json, tenant } => {
            let (store, _) = directory(&stores, tenant.as_deref()).await?;
            let agents = store.list_agents().await?;
            let last = store.last_sync().await?;
            print_agents(&mut std::io::stdout().lock(), &agents, last.as_ref(), json)?;
            Ok(())
        }
        Command::Link {
            account,
            work_no,
            tenant,
        } => {
            let (store, _) = directory(&stores, tenant.as_deref()).await?;
            link(&*store, account.trim(), &work_no).await
        }
    }
}

/// Links `account` to `work_no`, an active agent of the directory.
async fn link(store: &dyn AgentStore, account: &str, work_no: &str) -> CliResult {
    if !cc_shared::domain::agents::valid_account(account) {
        return Err("the account must be 1 to 128 characters, without control characters".into());
    }
    match store.get_agent(work_no).await? {
        Some(a) if a.active => {}
        Some(_) => return Err(format!("agent {work_no} is inactive").into()),
        None => {
            return Err(format!(
                "agent {work_no} is not in the directory (run `cc-callbacks agents sync`)"
            )
            .into())
        }
    }
    store.link_account(account, work_no).await?;
    println!("linked {account} to agent {work_no}");
    Ok(())
}

/// Prints the agent directory: a table (control characters of texts stored by an earlier
/// release escaped), or (with `json`) `{"last_sync", "agents"}`.
fn print_agents(
    out: &mut impl Write,
    agents: &[Agent],
    last_sync: Option<&SyncState>,
    json: bool,
) -> std::io::Result<()> {
    if json {
        let value = serde_json::json!({ "last_sync": last_sync, "agents": agents });
        return writeln!(out, "{value}");
    }
    match last_sync {
        Some(s) => writeln!(out, "directory as of the sync at {}", rfc3339(s.at))?,
        None => writeln!(out, "never synced")?,
    }
    writeln!(
        out,
        "{:<12}  {:<8}  {:<16}  {:<16}  {:<20}  INACTIVE SINCE",
        "WORK NO", "STATE", "ACCOUNT", "SOFTPHONE", "LAST SEEN"
    )?;
    for a in agents {
        writeln!(
            out,
            "{:<12}  {:<8}  {:<16}  {:<16}  {:<20}  {}",
            a.work_no,
            if a.active { "active" } else { "inactive" },
            printable(a.account_code.as_deref().unwrap_or("-")),
            printable(a.sip_account.as_deref().unwrap_or("-")),
            rfc3339(a.last_seen),
            a.inactive_since.map(rfc3339).unwrap_or_default()
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use cc_shared::domain::agents::Agent;

    #[test]
    fn the_agent_table_escapes_control_characters_stored_earlier() {
        let agent = Agent {
            work_no: "1001".into(),
            account_code: Some("acc\r\nx\u{1b}[2J".into()),
            sip_account: None,
            active: true,
            first_seen: 0,
            last_seen: 0,
            inactive_since: None,
        };
        let mut out = Vec::new();
        print_agents(&mut out, &[agent], None, false).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().count(), 3, "{text}");
        assert!(text.contains(r"acc\r\nx\u{1b}[2J"), "{text}");
        assert!(!text.chars().any(|c| c.is_control() && c != '\n'), "{text}");
    }
}
