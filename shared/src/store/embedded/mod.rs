//! The embedded backend: one SQLite file under the data directory, in WAL mode with full
//! fsync, so it survives crashes and several processes (the gateway, the admin CLI) can use it
//! at once. Calls run on tokio's blocking pool.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::{now_epoch, MappingStore, StoreError};

mod agents;
mod audit;
mod identity;
use crate::phone::PhoneKey;
use crate::uid::Uid;

pub const DB_FILE: &str = "cc-callbacks.sqlite3";

const SCHEMA: &str = "
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

#[derive(Clone)]
pub struct EmbeddedStore {
    conn: Arc<Mutex<Connection>>,
}

pub(super) fn failed(e: impl std::fmt::Display) -> StoreError {
    StoreError::Failed(e.to_string())
}

pub(super) fn from_sqlite(e: rusqlite::Error) -> StoreError {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DatabaseBusy) | Some(rusqlite::ErrorCode::DatabaseLocked) => {
            StoreError::Unavailable("database is busy".into())
        }
        _ => failed(e),
    }
}

impl EmbeddedStore {
    /// Opens (creating if needed) the store in `data_dir`.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir)
            .map_err(|e| failed(format!("cannot create {}: {e}", data_dir.display())))?;
        let path = data_dir.join(DB_FILE);
        let conn = Connection::open(&path).map_err(from_sqlite)?;
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(from_sqlite)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(from_sqlite)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(from_sqlite)?;
        conn.execute_batch(SCHEMA).map_err(from_sqlite)?;
        Ok(EmbeddedStore {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Runs `f` on the connection on the blocking pool.
    pub(super) async fn with_conn<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn
                .lock()
                .map_err(|_| failed("connection mutex poisoned"))?;
            f(&mut guard)
        })
        .await
        .map_err(failed)?
    }
}

#[async_trait]
impl MappingStore for EmbeddedStore {
    async fn uids_of(&self, phones: &[PhoneKey]) -> Result<HashMap<PhoneKey, Uid>, StoreError> {
        let phones = phones.to_vec();
        self.with_conn(move |conn| {
            let mut stmt = conn
                .prepare_cached("SELECT uid FROM number_map WHERE phone = ?1")
                .map_err(from_sqlite)?;
            let mut found = HashMap::with_capacity(phones.len());
            for phone in phones {
                let uid: Option<String> = stmt
                    .query_row(params![phone.as_str()], |r| r.get(0))
                    .optional()
                    .map_err(from_sqlite)?;
                if let Some(uid) = uid.as_deref().and_then(Uid::parse) {
                    found.insert(phone, uid);
                }
            }
            Ok(found)
        })
        .await
    }

    async fn phones_of(&self, uids: &[Uid]) -> Result<HashMap<Uid, PhoneKey>, StoreError> {
        let uids = uids.to_vec();
        self.with_conn(move |conn| {
            let mut stmt = conn
                .prepare_cached("SELECT phone FROM number_map WHERE uid = ?1")
                .map_err(from_sqlite)?;
            let mut found = HashMap::with_capacity(uids.len());
            for uid in uids {
                let phone: Option<String> = stmt
                    .query_row(params![uid.as_str()], |r| r.get(0))
                    .optional()
                    .map_err(from_sqlite)?;
                if let Some(phone) = phone {
                    found.insert(uid, PhoneKey::from_stored(phone));
                }
            }
            Ok(found)
        })
        .await
    }

    async fn create_uids(&self, phones: &[PhoneKey]) -> Result<HashMap<PhoneKey, Uid>, StoreError> {
        let phones = phones.to_vec();
        self.with_conn(move |conn| {
            // IMMEDIATE takes the write lock up front, so concurrent writers (other processes
            // included) queue on busy_timeout instead of failing mid-transaction.
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(from_sqlite)?;
            let now = now_epoch();
            let mut settled = HashMap::with_capacity(phones.len());
            {
                let mut insert = tx
                    .prepare_cached(
                        "INSERT INTO number_map (phone, uid, created_at) VALUES (?1, ?2, ?3)
                         ON CONFLICT (phone) DO NOTHING",
                    )
                    .map_err(from_sqlite)?;
                let mut select = tx
                    .prepare_cached("SELECT uid FROM number_map WHERE phone = ?1")
                    .map_err(from_sqlite)?;
                for phone in phones {
                    // An ID collision violates the UNIQUE constraint: draw again.
                    let mut attempts = 0;
                    loop {
                        attempts += 1;
                        let uid = Uid::generate().map_err(failed)?;
                        match insert.execute(params![phone.as_str(), uid.as_str(), now]) {
                            Ok(_) => break,
                            Err(e)
                                if attempts < 5
                                    && e.sqlite_error_code()
                                        == Some(rusqlite::ErrorCode::ConstraintViolation) =>
                            {
                                continue
                            }
                            Err(e) => return Err(from_sqlite(e)),
                        }
                    }
                    let uid: String = select
                        .query_row(params![phone.as_str()], |r| r.get(0))
                        .map_err(from_sqlite)?;
                    let uid =
                        Uid::parse(&uid).ok_or_else(|| failed("stored user ID is malformed"))?;
                    settled.insert(phone, uid);
                }
            }
            tx.commit().map_err(from_sqlite)?;
            Ok(settled)
        })
        .await
    }
}
