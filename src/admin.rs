//! Admin commands on the configured store: PIN enrolment and unlocking, verification records.
//! Output never shows a full number or a PIN.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use cc_shared::domain::agents::printable;
use cc_shared::domain::identity::{valid_pin, Pepper, PinDigest, RecordQuery, VerificationRecord};
use cc_shared::domain::phone::{PhoneKey, PhoneNormalizer};
use cc_shared::domain::protect::{IndexKey, NumberIndex};
use cc_shared::store::IdentityStore;

/// Rows per store write during an import.
const IMPORT_CHUNK: usize = 500;
/// Largest CSV accepted by `pins import`.
pub const MAX_IMPORT_ROWS: usize = 1_000_000;

/// What `pins import` did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub enrolled: usize,
    /// (line number, reason): rows not written.
    pub rejected: Vec<(u64, String)>,
}

/// Reads a `number,pin` CSV and enrols every good row; bad rows are reported by line number
/// and not written. The file is validated completely before anything is written.
pub async fn import_pins(
    store: &dyn IdentityStore,
    phones: &PhoneNormalizer,
    pepper: &Pepper,
    index: &IndexKey,
    csv_text: impl std::io::Read,
) -> Result<ImportReport, String> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::All)
        .flexible(true)
        .from_reader(csv_text);
    let header = reader
        .headers()
        .map_err(|e| format!("cannot read the header: {e}"))?
        .iter()
        .map(str::to_ascii_lowercase)
        .collect::<Vec<_>>();
    if header != ["number", "pin"] {
        return Err("the header must be exactly: number,pin".into());
    }
    let mut report = ImportReport::default();
    let mut good: Vec<(NumberIndex, PinDigest)> = Vec::new();
    let mut first_line: HashMap<PhoneKey, u64> = HashMap::new();
    for (i, row) in reader.records().enumerate() {
        if i >= MAX_IMPORT_ROWS {
            return Err(format!("more than {MAX_IMPORT_ROWS} rows: split the file"));
        }
        let row = match row {
            Ok(row) => row,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                report.rejected.push((line, "not valid CSV".into()));
                continue;
            }
        };
        let line = row.position().map_or(0, |p| p.line());
        if row.len() != 2 {
            report
                .rejected
                .push((line, format!("expected 2 fields, found {}", row.len())));
            continue;
        }
        let phone = match phones.normalize(&row[0]) {
            Ok(p) => p,
            Err(e) => {
                report.rejected.push((line, e.to_string()));
                continue;
            }
        };
        if !valid_pin(&row[1]) {
            report
                .rejected
                .push((line, "the PIN must be 4 to 12 digits".into()));
            continue;
        }
        if let Some(first) = first_line.get(&phone) {
            report
                .rejected
                .push((line, format!("the same number as line {first}")));
            continue;
        }
        first_line.insert(phone.clone(), line);
        let digest = pepper.pin_digest(&phone, &row[1]);
        good.push((index.index(&phone), digest));
    }
    for chunk in good.chunks(IMPORT_CHUNK) {
        store
            .put_pins(chunk)
            .await
            .map_err(|e| format!("after {} PINs were enrolled: {e}", report.enrolled))?;
        report.enrolled += chunk.len();
    }
    Ok(report)
}

/// Prints records newest first, as a table or (with `json`) one JSON array.
pub fn print_records(
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
        "{:<20}  {:<6}  {:<16}  {:<10}  {:<16}  CUSTOMER",
        "TIME", "RESULT", "REASON", "AGENT", "TYPE"
    )?;
    for r in records {
        writeln!(
            out,
            "{:<20}  {:<6}  {:<16}  {:<10}  {:<16}  {}",
            rfc3339(r.time),
            r.result,
            r.reason,
            r.agent,
            r.verify_type_code,
            r.masked_number
        )?;
    }
    Ok(())
}

pub fn rfc3339(epoch: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(epoch)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| epoch.to_string())
}

pub fn parse_rfc3339(s: &str) -> Result<i64, String> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map(|t| t.unix_timestamp())
        .map_err(|e| format!("--since must be an RFC 3339 time such as 2026-11-21T08:00:00Z: {e}"))
}

/// The query for `records list`.
pub fn record_query(
    phones: &PhoneNormalizer,
    pepper: &Pepper,
    number: Option<&str>,
    agent: Option<String>,
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
        since: since.map(parse_rfc3339).transpose()?,
        limit,
        now: cc_shared::domain::clock::now_epoch(),
    })
}

/// Reads the CSV file, refusing anything but a regular file.
pub fn open_csv(path: &Path) -> Result<std::fs::File, String> {
    std::fs::File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))
}

/// Prints the agent directory: a table (control characters of texts stored by an earlier
/// release escaped), or (with `json`) `{"last_sync", "agents"}`.
pub fn print_agents(
    out: &mut impl Write,
    agents: &[cc_shared::domain::agents::Agent],
    last_sync: Option<&cc_shared::domain::agents::SyncState>,
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
