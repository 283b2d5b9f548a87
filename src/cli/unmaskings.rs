//! `cc-callbacks unmaskings list`: who had a customer's number revealed by UIDToPhone, when,
//! from where (README "Privacy"). By ID or number: a key query of that ID's records; otherwise
//! a query of the time index, by caller as a filter. Never prints a number.

use std::io::Write;
use std::path::Path;

use clap::Subcommand;

use cc_shared::domain::clock::now_epoch;
use cc_shared::domain::uid::Uid;
use cc_shared::domain::unmasking::Unmasking;
use cc_shared::store::MAX_UNMASKINGS_LISTED;

use super::output::{parse_rfc3339, rfc3339};
use super::CliResult;
use crate::stores::Stores;

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List unmasking records (UIDToPhone answers), newest first.
    List {
        /// Only this user ID's records.
        #[arg(long, conflicts_with = "number")]
        uid: Option<String>,
        /// Only this customer's records (any spelling; its ID is found through the blind
        /// index, the number itself is never printed).
        #[arg(long)]
        number: Option<String>,
        /// Only this caller's records (the BasicAuth user, `NAME@ID` for a tenant's caller).
        #[arg(long)]
        caller: Option<String>,
        /// Only records at or after this time (RFC 3339).
        #[arg(long)]
        since: Option<String>,
        /// Only records at or before this time (RFC 3339).
        #[arg(long)]
        until: Option<String>,
        /// The tenant whose records these are (platform mode; absent: the default tenant).
        #[arg(long)]
        tenant: Option<String>,
        /// At most this many records.
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u16).range(1..=10000))]
        limit: u16,
        /// One JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(data_dir: &Path, command: Command) -> CliResult {
    let Command::List {
        uid,
        number,
        caller,
        since,
        until,
        tenant,
        limit,
        json,
    } = command;
    let stores = Stores::open(data_dir, None).await?;
    let tenant = tenant.map(|t| super::tenants::tenant_id(&t)).transpose()?;
    let since = since.map(|s| parse_rfc3339(&s)).transpose()?.unwrap_or(0);
    let until = until
        .map(|s| parse_rfc3339(&s))
        .transpose()?
        .unwrap_or(i64::MAX / 2);
    let limit = usize::from(limit).min(MAX_UNMASKINGS_LISTED);
    // The customer's ID: given, or found from the number through the scope's blind index.
    let uid: Option<Option<Uid>> = match (uid, number) {
        (Some(uid), _) => {
            Some(Some(Uid::parse(&uid).ok_or_else(|| {
                format!("{uid:?} is not a user ID of ours")
            })?))
        }
        (None, Some(number)) => {
            let phones = cc_shared::config::phone_normalizer()?;
            let phone = phones
                .normalize(&number)
                .map_err(|e| format!("--number: {e}"))?;
            let (mapping, index) = match &tenant {
                None => (stores.mapping(), stores.index_key().await?),
                Some(id) => {
                    let (_, keys) = stores.tenant_lookup(id).await?;
                    (stores.stores.for_tenant(id).mapping(), keys.index)
                }
            };
            let index = index.index(&phone);
            let found = mapping.uids_of(std::slice::from_ref(&index)).await?;
            Some(found.get(&index).cloned())
        }
        (None, None) => None,
    };
    let query = stores.unmaskings(tenant.as_ref());
    let now = now_epoch();
    let records = match uid {
        // A number without an ID was never unmasked.
        Some(None) => Vec::new(),
        Some(Some(uid)) => {
            let mut records = query
                .unmaskings_of(&uid.key(), since, until, now, limit)
                .await?;
            if let Some(caller) = &caller {
                records.retain(|r| &r.caller == caller);
            }
            records
        }
        None => {
            query
                .unmaskings_between(caller.as_deref(), since, until, now, limit)
                .await?
        }
    };
    print(&mut std::io::stdout().lock(), &records, json)?;
    Ok(())
}

fn print(out: &mut impl Write, records: &[Unmasking], json: bool) -> std::io::Result<()> {
    if json {
        let rows: Vec<serde_json::Value> = records
            .iter()
            .map(|r| {
                serde_json::json!({
                    "time": rfc3339(r.time), "uid": r.uid, "caller": r.caller,
                    "request_id": r.request_id, "source_ip": r.source_ip,
                })
            })
            .collect();
        return writeln!(out, "{}", serde_json::Value::Array(rows));
    }
    writeln!(
        out,
        "{:<20}  {:<32}  {:<24}  {:<16}  request",
        "time", "user ID", "caller", "source"
    )?;
    for r in records {
        writeln!(
            out,
            "{:<20}  {:<32}  {:<24}  {:<16}  {}",
            rfc3339(r.time),
            r.uid,
            r.caller,
            r.source_ip,
            r.request_id
        )?;
    }
    writeln!(out, "{} unmaskings", records.len())
}
