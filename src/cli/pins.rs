//! `cc-callbacks pins ...`: enrol identity-verification PINs from a CSV, lift a lockout. Output
//! never shows a full number or a PIN.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Subcommand;

use cc_shared::domain::identity::{valid_pin, Pepper, PinDigest};
use cc_shared::domain::phone::{PhoneKey, PhoneNormalizer};
use cc_shared::domain::protect::IndexKey;
use cc_shared::store::IdentityStore;

use super::csv_import::{self, Duplicates, RowKind};
use super::output::rejected_rows;
use super::CliResult;
use crate::stores::{Failure, Stores};

/// Rows per store write during an import.
const IMPORT_CHUNK: usize = 500;
/// Largest CSV accepted by `pins import`.
pub const MAX_IMPORT_ROWS: u64 = 1_000_000;

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
async fn open(
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
            let stores = Stores::open(data_dir, None).await?;
            let (store, index, pepper) = open(&stores, tenant.as_deref()).await?;
            let phones = cc_shared::config::phone_normalizer()?;
            let report = import(&*store, &phones, &pepper, &index, &file).await?;
            println!(
                "enrolled {} PINs, rejected {} rows ({})",
                report.enrolled,
                report.rejected.len(),
                stores.describe()
            );
            rejected_rows(
                report.rejected.iter().map(|(l, r)| (*l, r.as_str())),
                "enrolled",
            )
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

/// What `pins import` did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub enrolled: usize,
    /// (line number, reason): rows not written.
    pub rejected: Vec<(u64, String)>,
}

/// A `number,pin` row: the number and the PIN's digest (the PIN itself is not kept).
struct PinRows<'a> {
    phones: &'a PhoneNormalizer,
    pepper: &'a Pepper,
}

impl RowKind for PinRows<'_> {
    type Row = (PhoneKey, PinDigest);
    const DUPLICATES: Duplicates = Duplicates::FirstWins;
    const MAX_ROWS: Option<u64> = Some(MAX_IMPORT_ROWS);

    fn header(&mut self, names: &[String]) -> Result<(), String> {
        if names == ["number", "pin"] {
            Ok(())
        } else {
            Err("the header must be exactly: number,pin".into())
        }
    }

    fn parse(&self, row: &csv::StringRecord) -> Result<Self::Row, String> {
        if row.len() != 2 {
            return Err(format!("expected 2 fields, found {}", row.len()));
        }
        let phone = self.phones.normalize(&row[0]).map_err(|e| e.to_string())?;
        if !valid_pin(&row[1]) {
            return Err("the PIN must be 4 to 12 digits".into());
        }
        let digest = self.pepper.pin_digest(&phone, &row[1]);
        Ok((phone, digest))
    }

    fn unique(&self, (phone, _): &Self::Row) -> Vec<(&'static str, [u8; 16])> {
        vec![("number", csv_import::fingerprint(phone.as_str()))]
    }
}

/// `pins import FILE`: the whole file checked first (`csv_import`), then every good row
/// enrolled, in chunks; bad rows reported by line number and not written.
pub async fn import(
    store: &dyn IdentityStore,
    phones: &PhoneNormalizer,
    pepper: &Pepper,
    index: &IndexKey,
    path: &Path,
) -> Result<ImportReport, String> {
    let mut kind = PinRows { phones, pepper };
    let checked = csv_import::check(path, &mut kind, || {})?;
    let mut report = ImportReport {
        enrolled: 0,
        rejected: checked
            .rejected
            .iter()
            .map(|(l, r)| (*l, r.clone()))
            .collect(),
    };
    let mut chunk = Vec::with_capacity(IMPORT_CHUNK);
    let mut rows = checked.good_rows(&kind)?.peekable();
    while let Some((_, row)) = rows.next() {
        let (phone, digest) = row?;
        chunk.push((index.index(&phone), digest));
        if chunk.len() == IMPORT_CHUNK || rows.peek().is_none() {
            store
                .put_pins(&chunk)
                .await
                .map_err(|e| format!("after {} PINs were enrolled: {e}", report.enrolled))?;
            report.enrolled += chunk.len();
            chunk.clear();
        }
    }
    Ok(report)
}
