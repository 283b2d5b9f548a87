//! The one CSV import pipeline (`pins import`, `numbers import`): the header checked; the whole
//! file checked before anything is written, each bad row rejected with its reason by line, a
//! value that must be unique found twice rejected too; then the good rows read again for the
//! command to write. Memory holds a 128-bit fingerprint and a line number per unique value
//! (20 bytes), never the file; input that cannot be read twice (a pipe, `/dev/stdin`) is first
//! copied once into an anonymous temporary file of mode 0600, gone when the command ends.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::path::Path;

/// How a value given twice in a file is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Duplicates {
    /// The first row is kept; each later one is rejected, naming the first.
    FirstWins,
    /// Every row involved is rejected, naming another (which one was meant is unknown).
    AllRejected,
}

/// One kind of row: how its file's header and rows are read.
pub trait RowKind {
    type Row;
    const DUPLICATES: Duplicates;
    /// Most rows a file may have (None: any number).
    const MAX_ROWS: Option<u64> = None;

    /// Accepts the header (names trimmed and lowercased), or says what it must be.
    fn header(&mut self, names: &[String]) -> Result<(), String>;

    /// One row, checked; the reason when it is bad (never quoting a number or a secret).
    fn parse(&self, record: &csv::StringRecord) -> Result<Self::Row, String>;

    /// What must be unique in the file: each value's name ("number", "ID") and fingerprint.
    fn unique(&self, row: &Self::Row) -> Vec<(&'static str, [u8; 16])>;
}

/// A 128-bit fingerprint of `value` (two SipHash-1-3 runs; a false duplicate needs a 2^-128
/// collision), for finding duplicates without keeping the values.
pub fn fingerprint(value: &str) -> [u8; 16] {
    let mut halves = [0u64; 2];
    for (seed, half) in halves.iter_mut().enumerate() {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        seed.hash(&mut h);
        value.hash(&mut h);
        *half = h.finish();
    }
    ((u128::from(halves[0]) << 64) | u128::from(halves[1])).to_le_bytes()
}

/// A file checked whole: how many rows it has and which were rejected.
pub struct Checked<'a> {
    input: Input<'a>,
    pub rows: u64,
    pub rejected: BTreeMap<u64, String>,
}

/// Pass 1: every row of `path` checked, nothing written.
pub fn check<'a, K: RowKind>(
    path: &'a Path,
    kind: &mut K,
    on_row: impl Fn(),
) -> Result<Checked<'a>, String> {
    let input = Input::new(path)?;
    let mut csv = input.reader()?;
    kind.header(&header_names(&mut csv)?)?;
    let mut rejected = BTreeMap::new();
    let mut unique: BTreeMap<&'static str, Vec<([u8; 16], u32)>> = BTreeMap::new();
    let mut rows = 0u64;
    for record in csv.records() {
        rows += 1;
        on_row();
        if K::MAX_ROWS.is_some_and(|max| rows > max) {
            return Err(format!(
                "more than {} rows: split the file",
                K::MAX_ROWS.unwrap_or_default()
            ));
        }
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                rejected.insert(line, "not valid CSV".to_string());
                continue;
            }
        };
        let line = record.position().map_or(0, |p| p.line());
        let short_line = u32::try_from(line).map_err(|_| "more than 4 billion lines")?;
        match kind.parse(&record) {
            Ok(row) => {
                for (what, fp) in kind.unique(&row) {
                    unique.entry(what).or_default().push((fp, short_line));
                }
            }
            Err(reason) => {
                rejected.insert(line, reason);
            }
        }
    }
    for (what, seen) in unique {
        for (line, reason) in duplicates(seen, what, K::DUPLICATES) {
            rejected.entry(line).or_insert(reason);
        }
    }
    Ok(Checked {
        input,
        rows,
        rejected,
    })
}

impl Checked<'_> {
    /// Pass 2: the good rows with their lines, read again.
    pub fn good_rows<'k, K: RowKind>(
        &self,
        kind: &'k K,
    ) -> Result<impl Iterator<Item = (u64, Result<K::Row, String>)> + use<'_, 'k, K>, String> {
        let mut csv = self.input.reader()?;
        header_names(&mut csv)?;
        Ok(csv.into_records().filter_map(move |record| {
            let record = record.ok()?;
            let line = record.position().map_or(0, |p| p.line());
            if self.rejected.contains_key(&line) {
                return None;
            }
            Some((line, kind.parse(&record)))
        }))
    }
}

/// Lines of values seen more than once, each with a reason naming another line.
fn duplicates(mut seen: Vec<([u8; 16], u32)>, what: &str, rule: Duplicates) -> Vec<(u64, String)> {
    seen.sort_unstable();
    let mut out = Vec::new();
    for run in seen.chunk_by(|a, b| a.0 == b.0).filter(|r| r.len() > 1) {
        for (i, (_, line)) in run.iter().enumerate() {
            let other = match (rule, i) {
                (Duplicates::FirstWins, 0) => continue,
                (Duplicates::AllRejected, 0) => run[1].1,
                _ => run[0].1,
            };
            out.push((u64::from(*line), format!("the same {what} as line {other}")));
        }
    }
    out
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

pub fn open_csv(path: &Path) -> Result<std::fs::File, String> {
    std::fs::File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))
}

/// A CSV reader of `file` as every import reads it: a header, fields trimmed, rows of any
/// length (checked by the row's kind).
pub fn csv_reader(file: std::fs::File) -> csv::Reader<std::fs::File> {
    csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::All)
        .flexible(true)
        .from_reader(file)
}

/// A CSV file with a header read once (`numbers forget --file`): its column names, and the
/// reader at its first row.
pub fn read_once(path: &Path) -> Result<(Vec<String>, csv::Reader<std::fs::File>), String> {
    let mut csv = csv_reader(open_csv(path)?);
    let names = header_names(&mut csv)?;
    Ok((names, csv))
}

/// An import's input, read twice: a regular file is opened again; anything else is spooled.
enum Input<'a> {
    File(&'a Path),
    Spooled(std::fs::File),
}

impl<'a> Input<'a> {
    fn new(path: &'a Path) -> Result<Self, String> {
        let mut source = open_csv(path)?;
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
            Input::File(path) => Ok(csv_reader(open_csv(path)?)),
            Input::Spooled(spool) => {
                let mut file = spool.try_clone().map_err(|e| e.to_string())?;
                file.seek(SeekFrom::Start(0)).map_err(|e| e.to_string())?;
                Ok(csv_reader(file))
            }
        }
    }
}
