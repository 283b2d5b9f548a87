//! `cc-callbacks records ...`: identity verification's records, newest first. Output shows the
//! masked number only.

use std::io::Write;
use std::path::Path;

use clap::Subcommand;

use cc_shared::domain::identity::{Pepper, RecordQuery, VerificationRecord};
use cc_shared::domain::phone::PhoneNormalizer;

use super::output::{parse_rfc3339, rfc3339};
use super::CliResult;
use crate::stores::Stores;

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List verification records, newest first.
    List {
        /// Only this customer's records (any spelling of the number).
        #[arg(long)]
        number: Option<String>,
        /// Only this agent's (work number) records.
        #[arg(long)]
        agent: Option<String>,
        /// Only this mode's records (Huawei's verifyTypeCode, e.g. IDCARD).
        #[arg(long)]
        mode: Option<String>,
        /// Only records at or after this time (RFC 3339, e.g. 2026-11-21T08:00:00Z).
        #[arg(long)]
        since: Option<String>,
        /// At most this many records.
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u16).range(1..=1000))]
        limit: u16,
        /// One JSON array instead of a table.
        #[arg(long)]
        json: bool,
        /// The tenant whose records these are (platform mode; absent: the default tenant).
        #[arg(long)]
        tenant: Option<String>,
    },
}

pub async fn run(data_dir: &Path, command: Command) -> CliResult {
    match command {
        Command::List {
            number,
            agent,
            mode,
            since,
            limit,
            json,
            tenant,
        } => {
            let stores = Stores::open(data_dir, None).await?;
            let (store, pepper) = match tenant {
                None => (stores.identity(), stores.pepper().await?),
                Some(tenant) => {
                    let id = super::tenants::tenant_id(&tenant)?;
                    let (store, keys) = stores.tenant_identity(&id).await?;
                    (store, keys.pepper)
                }
            };
            let query = record_query(
                &cc_shared::config::phone_normalizer()?,
                &pepper,
                number.as_deref(),
                agent,
                mode,
                since.as_deref(),
                usize::from(limit),
            )?;
            let records = store.list_records(&query).await?;
            print_records(&mut std::io::stdout().lock(), &records, json)?;
            Ok(())
        }
    }
}

/// The query for `records list`.
fn record_query(
    phones: &PhoneNormalizer,
    pepper: &Pepper,
    number: Option<&str>,
    agent: Option<String>,
    mode: Option<String>,
    since: Option<&str>,
    limit: usize,
) -> Result<RecordQuery, String> {
    let number_key = number
        .map(|n| {
            phones
                .normalize(n)
                .map(|p| pepper.record_key(&p))
                .map_err(|e| format!("--number: {e}"))
        })
        .transpose()?;
    Ok(RecordQuery {
        number_key,
        agent,
        mode,
        since: since.map(parse_rfc3339).transpose()?,
        limit,
        now: cc_shared::domain::clock::now_epoch(),
    })
}

/// Prints records newest first, as a table or (with `json`) one JSON array.
fn print_records(
    out: &mut impl Write,
    records: &[VerificationRecord],
    json: bool,
) -> std::io::Result<()> {
    if json {
        let rows: Vec<serde_json::Value> = records
            .iter()
            .map(|r| {
                let mut v = serde_json::to_value(r).unwrap_or_default();
                v["time"] = serde_json::Value::String(rfc3339(r.time));
                v
            })
            .collect();
        return writeln!(out, "{}", serde_json::Value::Array(rows));
    }
    writeln!(
        out,
        "{:<20}  {:<6}  {:<16}  {:<10}  {:<16}  {:<10}  CUSTOMER",
        "TIME", "RESULT", "REASON", "AGENT", "MODE", "FACTOR"
    )?;
    for r in records {
        writeln!(
            out,
            "{:<20}  {:<6}  {:<16}  {:<10}  {:<16}  {:<10}  {}",
            rfc3339(r.time),
            r.result,
            r.reason,
            r.agent,
            r.verify_type_code,
            r.factor,
            r.masked_number
        )?;
    }
    Ok(())
}
