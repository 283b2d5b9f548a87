//! The embedded store's layout versions, kept in SQLite's `user_version` by
//! `rusqlite_migration`:
//!
//! 1. what releases before number protection wrote (never versioned: `user_version` 0 with
//!    tables in the file): numbers in the clear in `number_map.phone` and `pins.phone`;
//! 2. numbers only as a blind index and sealed (`domain::protect`);
//! 3. layout 2 and platform mode's tenant registry (`tenants`, `tenant_credentials`);
//! 4. layout 3 and each tenant's lookup keys (`tenants.lookup`, for identity verification);
//! 5. layout 4 and each tenant's own vendor settings (`tenants.settings`, a JSON object,
//!    secrets sealed; `tenants.settings_rev`), its agent directory's links and sync state
//!    (`tenant_account_links`, `tenant_agent_sync`; its agents are in `agents` under its scope)
//!    and the scheduled sync's place in the round of tenants (`agent_sync_cursor`);
//! 6. layout 5 and the unmasking records (`unmaskings`: who asked UIDToPhone for which ID);
//! 7. layout 6, each caller's count of unmaskings per minute (`unmask_budget`), the
//!    customers' other factors (`pins.d_id_last6`, `d_birth_date`, `d_card_last4`; `pins.digest`
//!    '' for a customer with no PIN) and the factor a verification checked
//!    (`verification_records.factor`).
//!
//! A new file is created at the latest layout. Going from 1 to 2 needs the number keys, so it
//! is never done on opening: `cc-callbacks numbers migrate` does it (`migrate`), in one
//! transaction, so an interruption leaves layout 1 whole and the command can simply be run
//! again. Going from 2 to 3, 4, 5, 6 or 7 only adds empty tables and columns: opening does it.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use rusqlite::{params, Connection, Transaction};
use rusqlite_migration::{HookError, Migrations, SchemaVersion, M};

use super::{connect, failed, from_sqlite, DB_FILE};
use crate::domain::phone::PhoneKey;
use crate::domain::protect::NumberProtection;
use crate::domain::uid::Uid;
use crate::store::{KeyUse, MigrateReport, StoreError};

/// The layout this release reads and writes.
pub const LAYOUT_VERSION: usize = 7;

/// Layout 1: what releases before number protection wrote (and never versioned).
const LAYOUT_1: &str = "
CREATE TABLE IF NOT EXISTS number_map (
    phone      TEXT PRIMARY KEY,
    uid        TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS pins (
    phone        TEXT PRIMARY KEY,
    digest       TEXT NOT NULL,
    failures     INTEGER NOT NULL,
    window_start INTEGER NOT NULL,
    locked_until INTEGER NOT NULL,
    version      INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS verification_records (
    number_key       TEXT NOT NULL,
    time             INTEGER NOT NULL,
    id               TEXT NOT NULL,
    masked_number    TEXT NOT NULL,
    agent            TEXT NOT NULL,
    verify_type_code TEXT NOT NULL,
    result           INTEGER NOT NULL,
    reason           TEXT NOT NULL,
    expires_at       INTEGER NOT NULL,
    PRIMARY KEY (number_key, time, id)
);
CREATE INDEX IF NOT EXISTS records_by_agent ON verification_records (agent, time);
CREATE INDEX IF NOT EXISTS records_by_time ON verification_records (time);
CREATE TABLE IF NOT EXISTS token_audit (
    time       INTEGER NOT NULL,
    id         TEXT NOT NULL,
    caller     TEXT NOT NULL,
    mode       TEXT NOT NULL,
    subject    TEXT NOT NULL,
    outcome    TEXT NOT NULL,
    jti        TEXT,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (time, id)
);
CREATE TABLE IF NOT EXISTS agents (
    work_no        TEXT PRIMARY KEY,
    account_code   TEXT,
    sip_account    TEXT,
    active         INTEGER NOT NULL,
    first_seen     INTEGER NOT NULL,
    last_seen      INTEGER NOT NULL,
    inactive_since INTEGER
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS agent_sync (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    at          INTEGER NOT NULL,
    added       INTEGER NOT NULL,
    updated     INTEGER NOT NULL,
    deactivated INTEGER NOT NULL,
    unchanged   INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS account_links (
    account TEXT PRIMARY KEY,
    work_no TEXT NOT NULL
) WITHOUT ROWID;
";

const LAYOUT_2: &str = "
ALTER TABLE number_map RENAME TO legacy_number_map;
ALTER TABLE pins RENAME TO legacy_pins;
CREATE TABLE number_map (
    number_index TEXT PRIMARY KEY,
    uid_key      TEXT NOT NULL UNIQUE,
    uid          TEXT NOT NULL,
    sealed       TEXT NOT NULL,
    key_version  INTEGER NOT NULL,
    created_at   INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX number_map_by_key_version ON number_map (key_version);
CREATE TABLE pins (
    number_index TEXT PRIMARY KEY,
    digest       TEXT NOT NULL,
    failures     INTEGER NOT NULL,
    window_start INTEGER NOT NULL,
    locked_until INTEGER NOT NULL,
    version      INTEGER NOT NULL
) WITHOUT ROWID;
";

const LAYOUT_3: &str = "
CREATE TABLE tenants (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    suspended  INTEGER NOT NULL,
    keys       TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE tenant_credentials (
    tenant     TEXT NOT NULL REFERENCES tenants (id),
    function   TEXT NOT NULL,
    user       TEXT NOT NULL,
    digest     TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (tenant, function, user)
) WITHOUT ROWID;
";

const LAYOUT_4: &str = "ALTER TABLE tenants ADD COLUMN lookup TEXT NOT NULL DEFAULT '';";

const LAYOUT_5: &str = "
ALTER TABLE tenants ADD COLUMN settings TEXT NOT NULL DEFAULT '{}';
ALTER TABLE tenants ADD COLUMN settings_rev INTEGER NOT NULL DEFAULT 0;
CREATE TABLE tenant_account_links (
    scope   TEXT NOT NULL,
    account TEXT NOT NULL,
    work_no TEXT NOT NULL,
    PRIMARY KEY (scope, account)
) WITHOUT ROWID;
CREATE TABLE tenant_agent_sync (
    scope       TEXT PRIMARY KEY,
    at          INTEGER NOT NULL,
    added       INTEGER NOT NULL,
    updated     INTEGER NOT NULL,
    deactivated INTEGER NOT NULL,
    unchanged   INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE agent_sync_cursor (
    scope TEXT PRIMARY KEY,
    after TEXT NOT NULL
) WITHOUT ROWID;
";

const LAYOUT_6: &str = "
CREATE TABLE unmaskings (
    scope      TEXT NOT NULL,
    uid_key    TEXT NOT NULL,
    time       INTEGER NOT NULL,
    id         TEXT NOT NULL,
    uid        TEXT NOT NULL,
    caller     TEXT NOT NULL,
    request_id TEXT NOT NULL,
    source_ip  TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (scope, uid_key, time, id)
) WITHOUT ROWID;
CREATE INDEX unmaskings_by_time ON unmaskings (scope, time);
";

const LAYOUT_7: &str = "
CREATE TABLE unmask_budget (
    scope  TEXT NOT NULL,
    caller TEXT NOT NULL,
    minute INTEGER NOT NULL,
    count  INTEGER NOT NULL,
    PRIMARY KEY (scope, caller, minute)
) WITHOUT ROWID;
ALTER TABLE pins ADD COLUMN d_id_last6 TEXT NOT NULL DEFAULT '';
ALTER TABLE pins ADD COLUMN d_birth_date TEXT NOT NULL DEFAULT '';
ALTER TABLE pins ADD COLUMN d_card_last4 TEXT NOT NULL DEFAULT '';
ALTER TABLE verification_records ADD COLUMN factor TEXT NOT NULL DEFAULT '';
";

/// A store this release cannot use as it is, and what to run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    #[error(
        "{path} has layout {found} (phone numbers in the clear, written by an earlier release); \
         this release needs layout {LAYOUT_VERSION}: run `cc-callbacks numbers migrate` \
         (it keeps every mapping and PIN)"
    )]
    Older { path: String, found: usize },
    #[error(
        "{path} has layout {found}, newer than this release's {LAYOUT_VERSION}: run the \
         release that wrote it, or a newer one"
    )]
    Newer { path: String, found: usize },
}

/// Converted rows, counted by the migration hook.
#[derive(Default)]
struct Counts {
    mappings: AtomicUsize,
    pins: AtomicUsize,
}

fn migrations(protection: Option<NumberProtection>, counts: Arc<Counts>) -> Migrations<'static> {
    let hook = move |tx: &Transaction| convert_2(tx, protection.as_ref(), &counts);
    Migrations::new(vec![
        M::up(LAYOUT_1),
        M::up_with_hook(LAYOUT_2, hook),
        M::up(LAYOUT_3),
        M::up(LAYOUT_4),
        M::up(LAYOUT_5),
        M::up(LAYOUT_6),
        M::up(LAYOUT_7),
    ])
}

/// Moves layout 1's rows into layout 2's tables, then drops the plaintext tables.
fn convert_2(
    tx: &Transaction,
    protection: Option<&NumberProtection>,
    counts: &Counts,
) -> Result<(), HookError> {
    let rows: i64 = tx.query_row(
        "SELECT (SELECT count(*) FROM legacy_number_map) + (SELECT count(*) FROM legacy_pins)",
        [],
        |r| r.get(0),
    )?;
    if rows > 0 {
        let p = protection
            .ok_or_else(|| HookError::Hook("the number keys are needed to convert".into()))?;
        let mut read = tx.prepare("SELECT phone, uid, created_at FROM legacy_number_map")?;
        let mut write = tx.prepare(
            "INSERT INTO number_map (number_index, uid_key, uid, sealed, key_version, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        let mut rows = read.query([])?;
        while let Some(row) = rows.next()? {
            let phone = PhoneKey::from_stored(row.get(0)?);
            let uid: String = row.get(1)?;
            let uid = Uid::parse(&uid)
                .ok_or_else(|| HookError::Hook("a stored ID is malformed".into()))?;
            let sealed = p
                .seal(&uid, &phone)
                .map_err(|e| HookError::Hook(e.to_string()))?;
            let created_at: i64 = row.get(2)?;
            write.execute(params![
                p.index(&phone).as_str(),
                uid.key(),
                uid.as_str(),
                sealed.as_str(),
                sealed.version().unwrap_or(0),
                created_at
            ])?;
            counts.mappings.fetch_add(1, Ordering::Relaxed);
        }
        let mut read = tx.prepare(
            "SELECT phone, digest, failures, window_start, locked_until, version FROM legacy_pins",
        )?;
        let mut write = tx.prepare(
            "INSERT INTO pins (number_index, digest, failures, window_start, locked_until, version)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        let mut rows = read.query([])?;
        while let Some(row) = rows.next()? {
            let phone = PhoneKey::from_stored(row.get(0)?);
            write.execute(params![
                p.index(&phone).as_str(),
                row.get::<_, String>(1)?,
                row.get::<_, i64>(2)?,
                row.get::<_, i64>(3)?,
                row.get::<_, i64>(4)?,
                row.get::<_, i64>(5)?
            ])?;
            counts.pins.fetch_add(1, Ordering::Relaxed);
        }
    }
    tx.execute_batch("DROP TABLE legacy_number_map; DROP TABLE legacy_pins;")?;
    Ok(())
}

fn is_empty(conn: &Connection) -> Result<bool, StoreError> {
    let tables: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table'",
            [],
            |r| r.get(0),
        )
        .map_err(from_sqlite)?;
    Ok(tables == 0)
}

/// The layout of `conn`'s file: 0 for a new empty file.
fn found_layout(conn: &Connection) -> Result<usize, StoreError> {
    let version = migrations(None, Arc::default())
        .current_version(conn)
        .map_err(failed)?;
    Ok(match version {
        SchemaVersion::NoneSet if is_empty(conn)? => 0,
        SchemaVersion::NoneSet => 1,
        SchemaVersion::Inside(v) | SchemaVersion::Outside(v) => v.get(),
    })
}

/// Whether the file holds records that a key of `what` protects, in whatever layout it has:
/// layout 1 kept numbers in the clear (nothing under the number keys) but its PINs under the
/// pepper; a newer layout than this release knows is taken to hold everything.
pub(super) fn holds_keyed(conn: &Connection, what: KeyUse) -> Result<bool, StoreError> {
    let tables: &[&str] = match (found_layout(conn)?, what) {
        (0, _) | (1, KeyUse::IndexKey | KeyUse::Keyring) => &[],
        (found, _) if found > LAYOUT_VERSION => return Ok(true),
        (2 | 3, KeyUse::IndexKey) => &["number_map", "pins"],
        // The registry holds the tenants' lookup keys wrapped under the index key.
        (_, KeyUse::IndexKey) => &["number_map", "pins", "tenants"],
        (2, KeyUse::Keyring) => &["number_map"],
        // The registry holds the tenants' keys wrapped under the keyring.
        (_, KeyUse::Keyring) => &["number_map", "tenants"],
        (_, KeyUse::Pepper) => &["pins", "verification_records"],
    };
    for table in tables {
        // A platform tenant's rows (their key starts with its scope, `T#<tenant>#`) are under
        // the tenant's own keys, not the stack's: only the default tenant's count (the
        // registry, which wraps the tenants' keys under the stack's, is checked whole).
        let default_only = match *table {
            "number_map" | "pins" if found_layout(conn)? >= 2 => {
                "WHERE substr(number_index, 1, 2) <> 'T#'"
            }
            "verification_records" => "WHERE substr(number_key, 1, 2) <> 'T#'",
            _ => "",
        };
        let any: bool = conn
            .query_row(
                &format!("SELECT EXISTS (SELECT 1 FROM {table} {default_only})"),
                [],
                |r| r.get(0),
            )
            .map_err(from_sqlite)?;
        if any {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Creates a new file's tables, accepts the current layout, refuses any other.
pub(super) fn open_current(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let path = path.display().to_string();
    match found_layout(conn)? {
        // New, or layout 2 to 6 (numbers protected): what follows only adds tables and
        // columns.
        0 | 2..=6 => migrations(None, Arc::default())
            .to_latest(conn)
            .map_err(failed),
        LAYOUT_VERSION => Ok(()),
        found if found < LAYOUT_VERSION => Err(StoreError::Failed(
            LayoutError::Older { path, found }.to_string(),
        )),
        found => Err(StoreError::Failed(
            LayoutError::Newer { path, found }.to_string(),
        )),
    }
}

/// Brings the store in `data_dir` to the current layout with the number keys, then removes
/// what the old layout leaves in the file's free pages and the write-ahead log.
pub fn migrate(
    data_dir: &Path,
    protection: &NumberProtection,
) -> Result<MigrateReport, StoreError> {
    let mut conn = connect(data_dir)?;
    let found = found_layout(&conn)?;
    if found > LAYOUT_VERSION {
        let path = data_dir.join(DB_FILE).display().to_string();
        return Err(StoreError::Failed(
            LayoutError::Newer { path, found }.to_string(),
        ));
    }
    let counts = Arc::new(Counts::default());
    if found < LAYOUT_VERSION {
        migrations(Some(protection.clone()), counts.clone())
            .to_latest(&mut conn)
            .map_err(failed)?;
    }
    conn.execute_batch("VACUUM; PRAGMA wal_checkpoint(TRUNCATE);")
        .map_err(from_sqlite)?;
    Ok(MigrateReport {
        mappings: counts.mappings.load(Ordering::Relaxed),
        pins: counts.pins.load(Ordering::Relaxed),
        superseded: 0,
    })
}

/// Creates a store at layout 1, as an earlier release did: for the migration's tests.
pub fn create_layout_1(data_dir: &Path) -> Result<(), StoreError> {
    let conn = connect(data_dir)?;
    conn.execute_batch(LAYOUT_1).map_err(from_sqlite)
}
