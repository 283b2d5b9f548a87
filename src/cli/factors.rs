//! `cc-callbacks factors ...`: enrol customers for a verification factor from a CSV (`pins
//! import` is the `pin` factor's importer, with its own header) and forget one factor of a
//! customer. Output never shows a full number or a value; only a value's keyed digest is kept
//! (an ID number reduced to its last six first).

use std::path::{Path, PathBuf};

use clap::Subcommand;

use cc_shared::domain::factor::Factor;
use cc_shared::domain::identity::{Pepper, PinDigest};
use cc_shared::domain::phone::{PhoneKey, PhoneNormalizer};
use cc_shared::domain::protect::IndexKey;
use cc_shared::store::IdentityStore;

use super::csv_import::{self, Duplicates, RowKind};
use super::output::rejected_rows;
use super::CliResult;
use crate::stores::Stores;

/// Rows per store write during an import.
const IMPORT_CHUNK: usize = 500;
/// Largest CSV accepted by `factors import` and `pins import`.
pub const MAX_IMPORT_ROWS: u64 = 1_000_000;

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Enrol or replace one factor's values from a CSV file with the header `number,value`.
    Import {
        /// The CSV file.
        file: PathBuf,
        /// pin, id_last6 (an 18-character ID number or its last six), birth_date (YYYYMMDD
        /// or YYYY-MM-DD) or card_last4.
        #[arg(long, value_parser = parse_factor)]
        factor: Factor,
        /// The tenant whose customers these are (platform mode; absent: the default tenant).
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Remove one factor of a customer (its other factors and its lockout state stay).
    Forget {
        /// The customer's number, in any spelling.
        number: String,
        #[arg(long, value_parser = parse_factor)]
        factor: Factor,
        /// The tenant whose customer this is (platform mode; absent: the default tenant).
        #[arg(long)]
        tenant: Option<String>,
    },
}

fn parse_factor(s: &str) -> Result<Factor, String> {
    Factor::parse(s).ok_or_else(|| format!("'{s}' is not a factor: {}", Factor::names()))
}

pub async fn run(data_dir: &Path, command: Command) -> CliResult {
    match command {
        Command::Import {
            file,
            factor,
            tenant,
        } => {
            let what = format!("values of {factor}");
            run_import(data_dir, &file, tenant.as_deref(), factor, "value", &what).await
        }
        Command::Forget {
            number,
            factor,
            tenant,
        } => {
            let stores = Stores::open(data_dir, None).await?;
            let phone = cc_shared::config::phone_normalizer()?
                .normalize(&number)
                .map_err(|e| format!("the number: {e}"))?;
            let (store, index, _) = super::pins::open(&stores, tenant.as_deref()).await?;
            if store.forget_factor(&index.index(&phone), factor).await? {
                println!("forgot {}'s {factor}", phone.masked());
                Ok(())
            } else {
                Err(format!("{} is not enrolled for {factor}", phone.masked()).into())
            }
        }
    }
}

/// `factors import` (and `pins import`, the `pin` factor with the header `number,pin`): the
/// file imported into `tenant`'s store (None: the default tenant's), `what` was enrolled
/// printed with the rejected rows.
pub(super) async fn run_import(
    data_dir: &Path,
    file: &Path,
    tenant: Option<&str>,
    factor: Factor,
    header: &'static str,
    what: &str,
) -> CliResult {
    let stores = Stores::open(data_dir, None).await?;
    let (store, index, pepper) = super::pins::open(&stores, tenant).await?;
    let phones = cc_shared::config::phone_normalizer()?;
    let rows = FactorRows {
        phones: &phones,
        pepper: &pepper,
        factor,
        header,
    };
    let report = import(&*store, rows, &index, file).await?;
    println!(
        "enrolled {} {what}, rejected {} rows ({})",
        report.enrolled,
        report.rejected.len(),
        stores.describe()
    );
    rejected_rows(
        report.rejected.iter().map(|(l, r)| (*l, r.as_str())),
        "enrolled",
    )
}

/// What an import did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub enrolled: usize,
    /// (line number, reason): rows not written.
    pub rejected: Vec<(u64, String)>,
}

/// A `number,<header>` row of `factor`: the number and the value's digest (the value itself
/// is not kept).
struct FactorRows<'a> {
    phones: &'a PhoneNormalizer,
    pepper: &'a Pepper,
    factor: Factor,
    /// The value column's name (`value`; `pin` for `pins import`).
    header: &'static str,
}

impl RowKind for FactorRows<'_> {
    type Row = (PhoneKey, PinDigest);
    const DUPLICATES: Duplicates = Duplicates::FirstWins;
    const MAX_ROWS: Option<u64> = Some(MAX_IMPORT_ROWS);

    fn header(&mut self, names: &[String]) -> Result<(), String> {
        if names == ["number", self.header] {
            Ok(())
        } else {
            Err(format!(
                "the header must be exactly: number,{}",
                self.header
            ))
        }
    }

    fn parse(&self, row: &csv::StringRecord) -> Result<Self::Row, String> {
        if row.len() != 2 {
            return Err(format!("expected 2 fields, found {}", row.len()));
        }
        let phone = self.phones.normalize(&row[0]).map_err(|e| e.to_string())?;
        let value = self.factor.enrolment_value(&row[1])?;
        let digest = self.pepper.factor_digest(self.factor, &phone, &value);
        Ok((phone, digest))
    }

    fn unique(&self, (phone, _): &Self::Row) -> Vec<(&'static str, [u8; 16])> {
        vec![("number", csv_import::fingerprint(phone.as_str()))]
    }
}

/// The whole file checked first (`csv_import`), then every good row enrolled, in chunks; bad
/// rows reported by line number and not written.
async fn import(
    store: &dyn IdentityStore,
    mut kind: FactorRows<'_>,
    index: &IndexKey,
    path: &Path,
) -> Result<ImportReport, String> {
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
                .put_factors(kind.factor, &chunk)
                .await
                .map_err(|e| format!("after {} values were enrolled: {e}", report.enrolled))?;
            report.enrolled += chunk.len();
            chunk.clear();
        }
    }
    Ok(report)
}
