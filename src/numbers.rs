//! `cc-callbacks numbers ...`: the number mapping as a system of record. Import of the
//! enterprise's own IDs, export, erasure, re-encryption under a new key version, and the
//! conversion of a store written by an earlier release. Nothing here prints a number: rows
//! are named by their line, customers by their position on the command line.

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use indicatif::{ProgressBar, ProgressStyle};

use cc_shared::domain::clock::now_epoch;
use cc_shared::domain::identity::Pepper;
use cc_shared::domain::phone::{PhoneKey, PhoneNormalizer};
use cc_shared::domain::protect::NumberProtection;
use cc_shared::domain::uid::Uid;
use cc_shared::store::{ImportOutcome, NumbersAdmin, StoreError, StoredMapping};

use crate::admin::{parse_rfc3339, rfc3339};

/// Import batches written at once (each one transaction of up to 50 on DynamoDB).
const IMPORT_IN_FLIGHT: usize = 8;
/// Mappings re-encrypted per store call during a rekey.
const RESEAL_BATCH: usize = 100;
/// Scan pages buffered between the scanning tasks and the export file.
const EXPORT_BUFFER: usize = 8;

pub type Failure = Box<dyn std::error::Error + Send + Sync>;

/// A progress bar on stderr, drawn only when stderr is a terminal (indicatif's default);
/// `len` None for a spinner with a count.
pub fn progress(len: Option<u64>, what: &str) -> ProgressBar {
    let bar = match len {
        Some(n) => ProgressBar::new(n).with_style(
            ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} ({per_sec}, {eta} left)")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        ),
        None => ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{msg} {pos} ({per_sec})")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        ),
    };
    bar.set_message(what.to_string());
    bar
}

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

/// One good row of the file.
struct Row {
    line: u64,
    phone: PhoneKey,
    uid: Uid,
    created_at: Option<i64>,
}

/// The import's columns: `number,uid` and optionally `created_at` (what export writes).
fn check_header(reader: &mut csv::Reader<std::fs::File>) -> Result<bool, String> {
    let header = header_names(reader)?;
    match header.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["number", "uid"] => Ok(false),
        ["number", "uid", "created_at"] => Ok(true),
        _ => Err("the header must be number,uid (or number,uid,created_at)".into()),
    }
}

/// A CSV file's column names, trimmed and lowercased.
fn header_names(reader: &mut csv::Reader<std::fs::File>) -> Result<Vec<String>, String> {
    Ok(reader
        .headers()
        .map_err(|e| format!("cannot read the header: {e}"))?
        .iter()
        .map(|h| h.trim().to_ascii_lowercase())
        .collect())
}

fn reader(path: &Path) -> Result<csv::Reader<std::fs::File>, String> {
    csv_reader(crate::admin::open_csv(path)?)
}

fn csv_reader(file: std::fs::File) -> Result<csv::Reader<std::fs::File>, String> {
    Ok(csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::All)
        .flexible(true)
        .from_reader(file))
}

/// An import's input, read twice (checked whole, then written): a regular file is opened
/// again; anything else (a pipe, `/dev/stdin`) is copied once into an anonymous temporary
/// file of mode 0600, gone when the command ends, and read from there.
enum Input<'a> {
    File(&'a Path),
    Spooled(std::fs::File),
}

impl<'a> Input<'a> {
    fn new(path: &'a Path) -> Result<Self, String> {
        let mut source = crate::admin::open_csv(path)?;
        let regular = source.metadata().map(|m| m.is_file()).unwrap_or(false);
        if regular {
            return Ok(Input::File(path));
        }
        let mut spool = tempfile::tempfile()
            .map_err(|e| format!("cannot create a temporary file for {}: {e}", path.display()))?;
        std::io::copy(&mut source, &mut spool)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Ok(Input::Spooled(spool))
    }

    fn reader(&self) -> Result<csv::Reader<std::fs::File>, String> {
        use std::io::{Seek, SeekFrom};
        match self {
            Input::File(path) => reader(path),
            Input::Spooled(spool) => {
                let mut file = spool.try_clone().map_err(|e| e.to_string())?;
                file.seek(SeekFrom::Start(0)).map_err(|e| e.to_string())?;
                csv_reader(file)
            }
        }
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

fn parse_row(
    record: &csv::StringRecord,
    line: u64,
    phones: &PhoneNormalizer,
    prefix: Option<&str>,
    with_created: bool,
) -> Result<Row, String> {
    let expected = if with_created { 3 } else { 2 };
    if record.len() != expected {
        return Err(format!(
            "expected {expected} fields, found {}",
            record.len()
        ));
    }
    let phone = phones
        .normalize(&record[0])
        .map_err(|e| format!("malformed number: {e}"))?;
    let raw = format!("{}{}", prefix.unwrap_or(""), &record[1]);
    let uid = Uid::imported(&raw).map_err(|e| format!("malformed ID: {e}"))?;
    let created_at = match record.get(2) {
        Some(t) if with_created && !t.is_empty() => Some(
            parse_rfc3339(t)
                .or_else(|_| t.parse::<i64>().map_err(|_| ()))
                .map_err(|_| "created_at is neither RFC 3339 nor epoch seconds".to_string())?,
        ),
        _ => None,
    };
    Ok(Row {
        line,
        phone,
        uid,
        created_at,
    })
}

/// A 128-bit fingerprint of an ID's matching form, for finding duplicates without keeping
/// the IDs (two SipHash-1-3 runs; a false duplicate needs a 2^-128 collision).
fn uid_fingerprint(uid: &Uid) -> u128 {
    let key = uid.key();
    let mut halves = [0u64; 2];
    for (seed, half) in halves.iter_mut().enumerate() {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        seed.hash(&mut h);
        key.hash(&mut h);
        *half = h.finish();
    }
    (u128::from(halves[0]) << 64) | u128::from(halves[1])
}

/// Lines of entries seen more than once, each with a reason naming another line.
fn duplicates<K: Ord + Copy>(mut seen: Vec<(K, u32)>, what: &str) -> Vec<(u64, String)> {
    seen.sort_unstable();
    let mut out = Vec::new();
    for run in seen.chunk_by(|a, b| a.0 == b.0).filter(|r| r.len() > 1) {
        for (i, (_, line)) in run.iter().enumerate() {
            let other = if i == 0 { run[1].1 } else { run[0].1 };
            out.push((u64::from(*line), format!("the same {what} as line {other}")));
        }
    }
    out
}

/// `numbers import FILE`: checks the whole file (every row's number and ID, and the same
/// number or ID twice), then writes the good rows in batches of conditional writes. Memory
/// holds two fingerprints per row (46 bytes), never the file.
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
    let mut report = ImportReport::default();
    let input = Input::new(path)?;

    // Pass 1: every row checked, nothing written.
    let mut csv = input.reader()?;
    let with_created = check_header(&mut csv)?;
    // Line numbers as u32 (4 billion rows): with the fingerprints, ~46 bytes a row.
    let mut numbers: Vec<([u8; 22], u32)> = Vec::new();
    let mut uids: Vec<([u8; 16], u32)> = Vec::new();
    let checking = progress(None, "checking rows");
    for record in csv.records() {
        report.rows += 1;
        checking.inc(1);
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                report.rejected.insert(line, "not valid CSV".into());
                continue;
            }
        };
        let line = record.position().map_or(0, |p| p.line());
        let short_line = u32::try_from(line).map_err(|_| "more than 4 billion lines")?;
        match parse_row(&record, line, phones, prefix, with_created) {
            Ok(row) => {
                let index = keys.index(&row.phone);
                let mut fp = [0u8; 22];
                fp.copy_from_slice(&index.as_str().as_bytes()[..22]);
                numbers.push((fp, short_line));
                uids.push((uid_fingerprint(&row.uid).to_le_bytes(), short_line));
            }
            Err(reason) => {
                report.rejected.insert(line, reason);
            }
        }
    }
    checking.finish_and_clear();
    for (line, reason) in duplicates(numbers, "number")
        .into_iter()
        .chain(duplicates(uids, "ID"))
    {
        report.rejected.entry(line).or_insert(reason);
    }

    // Pass 2: the good rows, in batches, a few at once.
    let writing = progress(Some(report.rows), "importing");
    let mut csv = input.reader()?;
    check_header(&mut csv)?;
    let now = now_epoch();
    let batch_size = admin.import_batch();
    let mut tasks = tokio::task::JoinSet::new();
    let mut batch: Vec<(u64, StoredMapping)> = Vec::with_capacity(batch_size);
    let mut records = csv.records();
    loop {
        let next = records.next();
        if let Some(Ok(record)) = &next {
            let line = record.position().map_or(0, |p| p.line());
            if !report.rejected.contains_key(&line) {
                let row = parse_row(record, line, phones, prefix, with_created)?;
                let sealed = keys.seal(&row.uid, &row.phone)?;
                batch.push((
                    row.line,
                    StoredMapping {
                        index: keys.index(&row.phone),
                        uid: row.uid,
                        sealed,
                        created_at: row.created_at.unwrap_or(now),
                    },
                ));
            }
        }
        writing.inc(u64::from(next.is_some()));
        let full = batch.len() >= batch_size || (next.is_none() && !batch.is_empty());
        if full {
            let (lines, mappings): (Vec<u64>, Vec<StoredMapping>) = batch.drain(..).unzip();
            let admin = admin.clone();
            tasks.spawn(async move {
                let decided = admin.import(&mappings).await?;
                Ok::<_, StoreError>(lines.into_iter().zip(decided).collect::<Vec<_>>())
            });
        }
        while tasks.len() >= IMPORT_IN_FLIGHT || (next.is_none() && !tasks.is_empty()) {
            if let Some(done) = tasks.join_next().await {
                for (line, outcome) in done?? {
                    report.settle(line, outcome);
                }
            }
        }
        if next.is_none() {
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
    let mut csv = reader(path)?;
    let header = header_names(&mut csv)?;
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
    pepper: &Pepper,
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
                        Some(&pepper.record_key(phone)),
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
