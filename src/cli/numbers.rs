//! `cc-callbacks numbers ...`: the number mapping as a system of record. Import of the
//! enterprise's own IDs, export, erasure, re-encryption under a new key version, and the
//! conversion of a store written by an earlier release. Nothing here prints a number: rows
//! are named by their line, customers by their position on the command line.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Subcommand;

use cc_shared::domain::clock::now_epoch;
use cc_shared::domain::identity::Pepper;
use cc_shared::domain::phone::{PhoneKey, PhoneNormalizer};
use cc_shared::domain::protect::NumberProtection;
use cc_shared::domain::uid::Uid;
use cc_shared::store::{ImportOutcome, NumbersAdmin, StoreError, StoredMapping};

use super::csv_import::{self, Duplicates, RowKind};
use super::output::{parse_rfc3339, progress, rejected_rows, rfc3339};
use super::CliResult;
use crate::stores::Stores;

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Loads the enterprise's own customer IDs from a `number,uid` CSV (a CRM's): checks the
    /// whole file, writes the good rows, reports each bad one by line; exit status 1 if any
    /// row was rejected. Re-running after an interruption completes the job.
    Import {
        file: PathBuf,
        /// Prepended to every ID of the file (for numeric CRM IDs), e.g. `crm-`.
        #[arg(long)]
        prefix: Option<String>,
        /// The tenant whose mapping this is (platform mode; absent: the default tenant).
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Writes every mapping (number in E.164, uid, created_at) to a new file of mode 0600.
    Export {
        #[arg(long)]
        out: PathBuf,
        #[arg(long, value_enum, default_value = "csv")]
        format: Format,
        /// Replace the file if it exists.
        #[arg(long)]
        force: bool,
        /// The tenant whose mapping this is (platform mode; absent: the default tenant).
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Erases customers: the mapping both ways, the PIN and its lockout, the verification
    /// records. Give numbers, or `--uid` IDs, or `--file` (a CSV with a number or uid column).
    Forget {
        numbers: Vec<String>,
        #[arg(long = "uid")]
        uids: Vec<String>,
        #[arg(long)]
        file: Option<PathBuf>,
        /// The tenant whose customers these are (platform mode; absent: the default tenant).
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Adds a generated encryption key as the keyring's next version and makes it current
    /// (in its file, or as a new version of its Secrets Manager secret).
    AddKey {
        /// Add it to this tenant's own keyring instead (platform mode; kept wrapped in the
        /// registry).
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Re-encrypts every number sealed under an older key version with the current one (and,
    /// for the default tenant, re-wraps every tenant's keys under the current version).
    Rekey {
        /// Re-encrypt this tenant's numbers under its own current key (platform mode).
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Converts a store written by an earlier release (numbers in the clear) to this one's
    /// layout. Idempotent; can be interrupted and run again.
    Migrate,
}

pub async fn run(data_dir: &Path, command: Command) -> CliResult {
    match command {
        Command::Migrate => migrate(data_dir).await,
        Command::AddKey {
            tenant: Some(tenant),
        } => {
            let stores = Stores::open(data_dir, None).await?;
            let id = super::tenants::tenant_id(&tenant)?;
            let stack = stores.keys().await?;
            let version = stores.add_tenant_key_version(&id, &stack).await?;
            println!(
                "tenant {id}'s key version {version} added and made current: functions seal its \
                 new numbers with it within TENANT_CACHE_SECONDS (60 s by default); then run \
                 `cc-callbacks numbers rekey --tenant {id}`"
            );
            Ok(())
        }
        Command::AddKey { tenant: None } => {
            let stores = Stores::open(data_dir, None).await?;
            let version = cc_shared::number_keys::add_key_version(&stores.res).await?;
            println!(
                "key version {version} added and made current: running functions and gateways \
                 seal new numbers with it within NUMBER_KEYRING_REFRESH_SECONDS (5 minutes by \
                 default); then run `cc-callbacks numbers rekey`"
            );
            Ok(())
        }
        Command::Import {
            file,
            prefix,
            tenant,
        } => {
            let Opened {
                stores,
                admin,
                keys,
                ..
            } = open_with_keys(data_dir, tenant.as_deref()).await?;
            let phones = cc_shared::config::phone_normalizer()?;
            let r = import(admin, &keys, &phones, &file, prefix.as_deref()).await?;
            println!(
                "{} rows: {} written, {} already there, {} rejected ({})",
                r.rows,
                r.written,
                r.unchanged,
                r.rejected.len(),
                stores.describe()
            );
            rejected_rows(r.rejected.iter().map(|(l, r)| (*l, r.as_str())), "imported")
        }
        Command::Export {
            out,
            format,
            force,
            tenant,
        } => {
            let Opened { admin, keys, .. } = open_with_keys(data_dir, tenant.as_deref()).await?;
            let r = export(admin, &keys, &out, format, force).await?;
            println!("exported {} mappings to {}", r.exported, out.display());
            unopened_ids(&r.unopened, "left out of the export")
        }
        Command::Forget {
            numbers: given,
            uids,
            file,
            tenant,
        } => {
            let Opened {
                stores,
                admin,
                keys,
                tenant_pepper,
            } = open_with_keys(data_dir, tenant.as_deref()).await?;
            let mut targets: Vec<Target> = given.into_iter().map(Target::Number).collect();
            targets.extend(uids.into_iter().map(Target::Uid));
            if let Some(file) = file {
                targets.extend(targets_from_file(&file)?);
            }
            if targets.is_empty() {
                return Err("give numbers, --uid IDs or --file".into());
            }
            let phones = cc_shared::config::phone_normalizer()?;
            // The records are found by the number under the tenant's own pepper.
            let pepper = match tenant_pepper {
                Some(pepper) => pepper,
                None => stores.pepper().await?,
            };
            let r = forget(admin, &keys, Some(&pepper), &phones, &targets).await?;
            println!(
                "forgot {} customers: {} mappings, {} PINs, {} verification records; \
                 {} unknown (nothing was stored) ({})",
                r.customers,
                r.mappings,
                r.pins,
                r.records,
                r.unknown,
                stores.describe()
            );
            if r.records_unreached.is_empty() {
                return Ok(());
            }
            for id in &r.records_unreached {
                println!("  verification records not reached: {}", id.as_str());
            }
            Err(format!(
                "{} IDs' numbers could not be opened: their mapping and PIN are erased, but \
                 their verification records are found by the number: run `cc-callbacks numbers \
                 forget NUMBER` for them",
                r.records_unreached.len()
            )
            .into())
        }
        Command::Rekey { tenant } => {
            let Opened {
                stores,
                admin,
                keys,
                ..
            } = open_with_keys(data_dir, tenant.as_deref()).await?;
            if tenant.is_none() {
                let (rewrapped, total) = stores.rewrap_tenants(&keys).await?;
                if total > 0 {
                    println!(
                        "{rewrapped} of {total} tenants' keys re-wrapped under keyring version {}",
                        keys.keyring.as_deref().map_or(0, |k| k.current_version())
                    );
                }
            }
            let r = rekey(admin, &keys).await?;
            println!(
                "{} mappings scanned: {} re-encrypted, {} changed meanwhile and left \
                 as they are ({})",
                r.scanned,
                r.resealed,
                r.raced,
                stores.describe()
            );
            if !r.unopened.is_empty() {
                return unopened_ids(&r.unopened, "left as they are");
            }
            if r.resealed == 0 && r.raced == 0 {
                println!(
                    "every number is sealed under the current version: older versions may be \
                     removed once a run started NUMBER_KEYRING_REFRESH_SECONDS (5 minutes) or \
                     more after `numbers add-key` says so (until then a function may still \
                     seal with the previous version)"
                );
            } else {
                println!("run it again until it re-encrypts none");
            }
            Ok(())
        }
    }
}

/// What the `numbers` commands work on: the store of `data_dir` (or `TABLE_NAME`), the
/// mapping of a tenant or the default tenant, its number keys as number mapping reads them,
/// and, for a tenant, its PIN pepper (the default tenant's is read only where it is needed).
struct Opened {
    stores: Stores,
    admin: Arc<dyn NumbersAdmin>,
    keys: cc_shared::domain::protect::NumberProtection,
    tenant_pepper: Option<Pepper>,
}

async fn open_with_keys(
    data_dir: &std::path::Path,
    tenant: Option<&str>,
) -> Result<Opened, Failure> {
    let stores = Stores::open(data_dir, None).await?;
    let stack = stores.keys().await?;
    let Some(tenant) = tenant else {
        return Ok(Opened {
            admin: stores.admin(),
            stores,
            keys: stack,
            tenant_pepper: None,
        });
    };
    let id = super::tenants::tenant_id(tenant)?;
    let (admin, keys, pepper) = stores.tenant_numbers(&id, &stack).await?;
    Ok(Opened {
        stores,
        admin,
        keys,
        tenant_pepper: Some(pepper),
    })
}

/// `numbers migrate`: the embedded store is converted without being opened (this release
/// refuses to open its old layout); DynamoDB item by item.
async fn migrate(data_dir: &std::path::Path) -> CliResult {
    use cc_shared::config::StoreLocation;
    let location = StoreLocation::from_env(data_dir)?;
    let report = match &location {
        StoreLocation::Embedded { data_dir } => {
            let sdk = crate::stores::sdk_for(&location).await?;
            let file = cc_shared::store::embedded::EmbeddedFile(data_dir.clone());
            let place = cc_shared::number_keys::KeyPlace {
                data_dir: Some(data_dir),
                sdk: sdk.as_ref(),
                keyed: Some(&file),
            };
            let keys = cc_shared::number_keys::protection(place).await?;
            let dir = data_dir.clone();
            tokio::task::spawn_blocking(move || cc_shared::store::embedded::migrate(&dir, &keys))
                .await??
        }
        StoreLocation::DynamoDb { .. } => {
            let Opened { stores, keys, .. } = open_with_keys(data_dir, None).await?;
            let dynamo = stores.dynamo().ok_or("not a DynamoDB store")?;
            let bar = progress(None, "converting items");
            let report = dynamo.migrate_legacy(&keys, &|| bar.inc(1)).await?;
            bar.finish_and_clear();
            report
        }
    };
    println!(
        "converted {} mappings and {} PINs; {} old mappings superseded by newer ones ({})",
        report.mappings,
        report.pins,
        report.superseded,
        crate::stores::describe(&location)
    );
    Ok(())
}

/// Lists the IDs whose number did not open (never a number); then an error (exit status 1) if
/// there was any, saying what became of them and of the others.
fn unopened_ids(ids: &[cc_shared::domain::uid::Uid], what: &str) -> CliResult {
    if ids.is_empty() {
        return Ok(());
    }
    for id in ids {
        println!("  could not be opened: {}", id.as_str());
    }
    Err(format!(
        "{} mappings could not be opened (a damaged or tampered item, or a key version missing \
         from the keyring) and were {what}; every other mapping was done. Restore the keyring if \
         a version is missing; `cc-callbacks numbers forget --uid ID` erases a damaged item",
        ids.len()
    )
    .into())
}

/// Import batches written at once (each one transaction of up to 50 on DynamoDB).
const IMPORT_IN_FLIGHT: usize = 8;
/// Mappings re-encrypted per store call during a rekey.
const RESEAL_BATCH: usize = 100;
/// Scan pages buffered between the scanning tasks and the export file.
const EXPORT_BUFFER: usize = 8;

pub use crate::stores::Failure;

// ---------------------------------------------------------------------------------------------
// import

/// What `numbers import` did. Rejected rows are by line number, with the reason.
#[derive(Debug, Default)]
pub struct ImportReport {
    pub rows: u64,
    pub written: u64,
    pub unchanged: u64,
    pub rejected: BTreeMap<u64, String>,
}

impl ImportReport {
    /// Counts what the store decided for the row of `line`.
    fn settle(&mut self, line: u64, outcome: ImportOutcome) {
        let rejected = match outcome {
            ImportOutcome::Written => {
                self.written += 1;
                return;
            }
            ImportOutcome::Unchanged => {
                self.unchanged += 1;
                return;
            }
            ImportOutcome::NumberTaken => "the number is already mapped to another ID",
            ImportOutcome::UidTaken => "the ID is already used by another number",
        };
        self.rejected.insert(line, rejected.into());
    }
}

/// Checks `--prefix`: the characters of an ID, at most 32 of them.
pub fn check_prefix(prefix: &str) -> Result<(), String> {
    let ok = !prefix.is_empty()
        && prefix.len() <= 32
        && prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err("--prefix must be 1 to 32 ASCII letters, digits, '-' or '_'".into())
    }
}

/// A `number,uid[,created_at]` row (what export writes).
struct MappingRows<'a> {
    phones: &'a PhoneNormalizer,
    prefix: Option<&'a str>,
    with_created: bool,
}

/// One good row of the file.
struct Row {
    phone: PhoneKey,
    uid: Uid,
    created_at: Option<i64>,
}

impl RowKind for MappingRows<'_> {
    type Row = Row;
    const DUPLICATES: Duplicates = Duplicates::AllRejected;

    fn header(&mut self, names: &[String]) -> Result<(), String> {
        self.with_created = match names.iter().map(String::as_str).collect::<Vec<_>>()[..] {
            ["number", "uid"] => false,
            ["number", "uid", "created_at"] => true,
            _ => return Err("the header must be number,uid (or number,uid,created_at)".into()),
        };
        Ok(())
    }

    fn parse(&self, record: &csv::StringRecord) -> Result<Row, String> {
        let expected = if self.with_created { 3 } else { 2 };
        if record.len() != expected {
            return Err(format!(
                "expected {expected} fields, found {}",
                record.len()
            ));
        }
        let phone = self
            .phones
            .normalize(&record[0])
            .map_err(|e| format!("malformed number: {e}"))?;
        let raw = format!("{}{}", self.prefix.unwrap_or(""), &record[1]);
        let uid = Uid::imported(&raw).map_err(|e| format!("malformed ID: {e}"))?;
        let created_at = match record.get(2) {
            Some(t) if self.with_created && !t.is_empty() => Some(
                parse_rfc3339(t)
                    .or_else(|_| t.parse::<i64>().map_err(|_| ()))
                    .map_err(|_| "created_at is neither RFC 3339 nor epoch seconds".to_string())?,
            ),
            _ => None,
        };
        Ok(Row {
            phone,
            uid,
            created_at,
        })
    }

    /// The number and the ID (in its matching form: IDs match in any case).
    fn unique(&self, row: &Row) -> Vec<(&'static str, [u8; 16])> {
        vec![
            ("number", csv_import::fingerprint(row.phone.as_str())),
            ("ID", csv_import::fingerprint(&row.uid.key())),
        ]
    }
}

/// `numbers import FILE`: checks the whole file (every row's number and ID, and the same
/// number or ID twice: `csv_import`), then writes the good rows in batches of conditional
/// writes, a few batches at once.
pub async fn import(
    admin: Arc<dyn NumbersAdmin>,
    keys: &NumberProtection,
    phones: &PhoneNormalizer,
    path: &Path,
    prefix: Option<&str>,
) -> Result<ImportReport, Failure> {
    if let Some(p) = prefix {
        check_prefix(p)?;
    }
    let mut kind = MappingRows {
        phones,
        prefix,
        with_created: false,
    };
    let checking = progress(None, "checking rows");
    let checked = csv_import::check(path, &mut kind, || checking.inc(1))?;
    checking.finish_and_clear();
    let mut report = ImportReport {
        rows: checked.rows,
        rejected: checked.rejected.clone(),
        ..ImportReport::default()
    };

    let good = report.rows - report.rejected.len() as u64;
    let writing = progress(Some(good), "importing");
    let now = now_epoch();
    let batch_size = admin.import_batch();
    let mut tasks = tokio::task::JoinSet::new();
    let mut batch: Vec<(u64, StoredMapping)> = Vec::with_capacity(batch_size);
    let mut rows = checked.good_rows(&kind)?;
    loop {
        let next = rows.next();
        let done = next.is_none();
        if let Some((line, row)) = next {
            writing.inc(1);
            let row = row?;
            let sealed = keys.seal(&row.uid, &row.phone)?;
            batch.push((
                line,
                StoredMapping {
                    index: keys.index(&row.phone),
                    uid: row.uid,
                    sealed,
                    created_at: row.created_at.unwrap_or(now),
                },
            ));
        }
        let full = batch.len() >= batch_size || (done && !batch.is_empty());
        if full {
            let (lines, mappings): (Vec<u64>, Vec<StoredMapping>) = batch.drain(..).unzip();
            let admin = admin.clone();
            tasks.spawn(async move {
                let decided = admin.import(&mappings).await?;
                Ok::<_, StoreError>(lines.into_iter().zip(decided).collect::<Vec<_>>())
            });
        }
        while tasks.len() >= IMPORT_IN_FLIGHT || (done && !tasks.is_empty()) {
            if let Some(done) = tasks.join_next().await {
                for (line, outcome) in done?? {
                    report.settle(line, outcome);
                }
            }
        }
        if done {
            break;
        }
    }
    writing.finish_and_clear();
    Ok(report)
}

// ---------------------------------------------------------------------------------------------
// export

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Csv,
    Jsonl,
}

/// Creates `path` for writing with mode 0600; an existing file is replaced only with `force`,
/// and only a regular file or a symbolic link (the link itself, never what it points to): a
/// device, FIFO, socket or directory is refused, so that `--force` can never unlink a system
/// node or feed every number to a reader at the other end of a pipe.
fn create_export(path: &Path, force: bool) -> Result<std::fs::File, String> {
    use cc_shared::config::create_private;
    match create_private(path) {
        Ok(f) => Ok(f),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && force => {
            let kind = std::fs::symlink_metadata(path)
                .map_err(|e| format!("cannot replace {}: {e}", path.display()))?
                .file_type();
            if !(kind.is_file() || kind.is_symlink()) {
                return Err(format!(
                    "{} is not a regular file (a {}): --force replaces only a regular file; \
                     choose another --out",
                    path.display(),
                    file_kind(&kind)
                ));
            }
            std::fs::remove_file(path)
                .map_err(|e| format!("cannot replace {}: {e}", path.display()))?;
            create_private(path).map_err(|e| format!("cannot create {}: {e}", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(format!(
            "{} exists: pass --force to replace it",
            path.display()
        )),
        Err(e) => Err(format!("cannot create {}: {e}", path.display())),
    }
}

/// What a file that is not a regular one is, for messages.
fn file_kind(kind: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return "FIFO";
        }
        if kind.is_socket() {
            return "socket";
        }
        if kind.is_char_device() || kind.is_block_device() {
            return "device";
        }
    }
    if kind.is_dir() {
        "directory"
    } else {
        "special file"
    }
}

/// Every page of every scan segment, read concurrently, sent to `tx`.
fn scan_all(
    admin: Arc<dyn NumbersAdmin>,
    tx: tokio::sync::mpsc::Sender<Result<Vec<StoredMapping>, StoreError>>,
) {
    let segments = admin.scan_segments();
    for segment in 0..segments {
        let (admin, tx) = (admin.clone(), tx.clone());
        tokio::spawn(async move {
            let mut start = None;
            loop {
                match admin.scan(segment, segments, start.take()).await {
                    Ok(page) => {
                        let next = page.next;
                        if tx.send(Ok(page.mappings)).await.is_err() {
                            return;
                        }
                        match next {
                            Some(n) => start = Some(n),
                            None => return,
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                }
            }
        });
    }
}

/// What `numbers export` wrote, and the IDs whose number did not open (a damaged or tampered
/// item, or a key version missing from the keyring): left out, every other row written.
#[derive(Debug, Default)]
pub struct ExportReport {
    pub exported: u64,
    pub unopened: Vec<Uid>,
}

/// `numbers export`: every mapping, the number in E.164 (or the digits a short number was
/// stored as), to a new file of mode 0600.
pub async fn export(
    admin: Arc<dyn NumbersAdmin>,
    keys: &NumberProtection,
    out: &Path,
    format: Format,
    force: bool,
) -> Result<ExportReport, Failure> {
    let file = create_export(out, force)?;
    let result = write_export(admin, keys, file, format).await;
    if result.is_err() {
        let _ = std::fs::remove_file(out);
    }
    result
}

/// Where exported rows go.
enum Sink {
    Csv(Box<csv::Writer<std::io::BufWriter<std::fs::File>>>),
    Jsonl(std::io::BufWriter<std::fs::File>),
}

async fn write_export(
    admin: Arc<dyn NumbersAdmin>,
    keys: &NumberProtection,
    file: std::fs::File,
    format: Format,
) -> Result<ExportReport, Failure> {
    let out = std::io::BufWriter::new(file);
    let mut sink = match format {
        Format::Csv => {
            let mut w = csv::Writer::from_writer(out);
            w.write_record(["number", "uid", "created_at"])?;
            Sink::Csv(Box::new(w))
        }
        Format::Jsonl => Sink::Jsonl(out),
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel(EXPORT_BUFFER);
    scan_all(admin, tx);
    let bar = progress(None, "exporting");
    let mut report = ExportReport::default();
    while let Some(page) = rx.recv().await {
        for m in page? {
            let Ok(phone) = keys.open(&m.uid, &m.sealed) else {
                report.unopened.push(m.uid);
                continue;
            };
            let created = rfc3339(m.created_at);
            match &mut sink {
                Sink::Csv(w) => w.write_record([phone.as_str(), m.uid.as_str(), &created])?,
                Sink::Jsonl(w) => {
                    let line = serde_json::json!({
                        "number": phone.as_str(),
                        "uid": m.uid.as_str(),
                        "created_at": created,
                    });
                    writeln!(w, "{line}")?;
                }
            }
            report.exported += 1;
        }
        bar.set_position(report.exported);
    }
    let mut out = match sink {
        Sink::Csv(w) => w.into_inner().map_err(|e| e.to_string())?,
        Sink::Jsonl(w) => w,
    };
    out.flush()?;
    out.get_ref().sync_all()?;
    bar.finish_and_clear();
    Ok(report)
}

// ---------------------------------------------------------------------------------------------
// forget

/// Whom to forget: a number, or a user ID.
#[derive(Debug, Clone)]
pub enum Target {
    Number(String),
    Uid(String),
}

/// What `numbers forget` did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ForgetReport {
    /// Customers of whom something was erased.
    pub customers: usize,
    pub mappings: usize,
    pub pins: usize,
    pub records: usize,
    /// Numbers and IDs of which nothing was stored.
    pub unknown: usize,
    /// IDs whose mapping and PIN were erased but whose number did not open, so that their
    /// verification records (keyed by the number) could not be found: forget those by number.
    pub records_unreached: Vec<Uid>,
}

/// Reads `--file`: a CSV whose header has a `number` or a `uid` column (an export will do).
pub fn targets_from_file(path: &Path) -> Result<Vec<Target>, String> {
    let (header, mut csv) = csv_import::read_once(path)?;
    let (column, is_number) = match (
        header.iter().position(|h| h == "number"),
        header.iter().position(|h| h == "uid"),
    ) {
        (Some(c), _) => (c, true),
        (None, Some(c)) => (c, false),
        _ => return Err("the file's header needs a number or a uid column".into()),
    };
    let mut targets = Vec::new();
    for record in csv.records() {
        let record = record.map_err(|e| {
            format!(
                "line {}: not valid CSV",
                e.position().map_or(0, |p| p.line())
            )
        })?;
        let value = record.get(column).unwrap_or("").to_string();
        targets.push(if is_number {
            Target::Number(value)
        } else {
            Target::Uid(value)
        });
    }
    Ok(targets)
}

/// One customer to erase: by number (the record key is known), or by a stored mapping whose
/// number did not open (its mapping and PIN are erased by their keys, not its records).
enum Erasure {
    Number(PhoneKey, Option<Uid>),
    Unopened(StoredMapping),
}

/// `numbers forget`: every input is checked first (a malformed one stops the command before
/// anything is erased), then each customer's mapping and PIN are removed together, and their
/// verification records after. Nothing is opened to erase: an ID's mapping is found by the ID,
/// so a damaged item is erased like any other.
pub async fn forget(
    admin: Arc<dyn NumbersAdmin>,
    keys: &NumberProtection,
    pepper: Option<&Pepper>,
    phones: &PhoneNormalizer,
    targets: &[Target],
) -> Result<ForgetReport, Failure> {
    let mut numbers: Vec<PhoneKey> = Vec::new();
    let mut ids: Vec<Uid> = Vec::new();
    for (i, t) in targets.iter().enumerate() {
        match t {
            Target::Number(n) => numbers.push(
                phones
                    .normalize(n)
                    .map_err(|e| format!("entry {}: {e}", i + 1))?,
            ),
            Target::Uid(u) => {
                ids.push(Uid::parse(u).ok_or_else(|| format!("entry {}: not a user ID", i + 1))?)
            }
        }
    }
    let mut report = ForgetReport::default();
    let mut uid_of: HashMap<PhoneKey, Uid> = HashMap::new();
    let mut unopened: Vec<StoredMapping> = Vec::new();
    ids.sort();
    ids.dedup();
    for chunk in ids.chunks(cc_shared::store::MAX_BATCH) {
        let found = admin.mappings_of(chunk).await?;
        report.unknown += chunk.len() - found.len();
        for m in found {
            match keys.open(&m.uid, &m.sealed) {
                Ok(phone) => {
                    uid_of.insert(phone.clone(), m.uid);
                    numbers.push(phone);
                }
                Err(_) => unopened.push(m),
            }
        }
    }
    numbers.sort();
    numbers.dedup();
    let mut todo: Vec<Erasure> = numbers
        .into_iter()
        .map(|p| {
            let uid = uid_of.remove(&p);
            Erasure::Number(p, uid)
        })
        .collect();
    todo.extend(unopened.into_iter().map(Erasure::Unopened));
    let bar = progress(Some(todo.len() as u64), "forgetting");
    for erasure in todo {
        let gone = match &erasure {
            Erasure::Number(phone, uid) => {
                admin
                    .forget(
                        &keys.index(phone),
                        uid.as_ref(),
                        pepper.map(|p| p.record_key(phone)).as_deref(),
                    )
                    .await?
            }
            // No number, no record key: the records stay for `forget NUMBER`.
            Erasure::Unopened(m) => admin.forget(&m.index, Some(&m.uid), None).await?,
        };
        if let Erasure::Unopened(m) = erasure {
            report.records_unreached.push(m.uid);
        }
        let erased = gone.mapping || gone.pin || gone.records > 0;
        report.customers += usize::from(erased);
        report.unknown += usize::from(!erased);
        report.mappings += usize::from(gone.mapping);
        report.pins += usize::from(gone.pin);
        report.records += gone.records;
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(report)
}

// ---------------------------------------------------------------------------------------------
// rekey

/// What `numbers rekey` did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RekeyReport {
    pub scanned: u64,
    pub resealed: u64,
    /// Changed by someone else between the read and the write: left as they are (a re-run
    /// takes them if they are still under an old key).
    pub raced: u64,
    /// IDs whose number did not open (a damaged or tampered item, or a key version missing
    /// from the keyring): left as they are, every other mapping re-encrypted.
    pub unopened: Vec<Uid>,
}

/// `numbers rekey`: every mapping sealed under another version than the current one is
/// sealed again under the current one, with a conditional write per mapping. Resumable:
/// a re-run finds only what is left.
pub async fn rekey(
    admin: Arc<dyn NumbersAdmin>,
    keys: &NumberProtection,
) -> Result<RekeyReport, Failure> {
    let current = keys
        .keyring
        .as_ref()
        .ok_or("the keyring is not loaded")?
        .current_version();
    let (tx, mut rx) = tokio::sync::mpsc::channel(EXPORT_BUFFER);
    scan_all(admin.clone(), tx);
    let bar = progress(None, "re-encrypting");
    let mut report = RekeyReport::default();
    while let Some(page) = rx.recv().await {
        let page = page?;
        report.scanned += page.len() as u64;
        let mut todo = Vec::new();
        for m in page {
            if m.sealed.version() == Some(current) {
                continue;
            }
            let Ok(phone) = keys.open(&m.uid, &m.sealed) else {
                report.unopened.push(m.uid);
                continue;
            };
            let new = keys.seal(&m.uid, &phone)?;
            todo.push((m, new));
        }
        for chunk in todo.chunks(RESEAL_BATCH) {
            let replaced = admin.reseal(chunk).await? as u64;
            report.resealed += replaced;
            report.raced += chunk.len() as u64 - replaced;
        }
        bar.set_position(report.scanned);
    }
    bar.finish_and_clear();
    Ok(report)
}
