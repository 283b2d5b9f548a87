//! The embedded backend: one SQLite file under the data directory, in WAL mode with full
//! fsync, so it survives crashes and several processes (the gateway, the admin CLI) can use it
//! at once. Calls run on tokio's blocking pool.
//!
//! The layout is versioned with `rusqlite_migration` (SQLite's `user_version`): see
//! `layout.rs`. Deleted content is overwritten (`secure_delete`), so an erased or migrated
//! number does not linger in free pages.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::Connection;

use async_trait::async_trait;

use super::{KeyUse, KeyedRecords, StoreError};

mod admin;
mod agents;
mod audit;
mod identity;
mod layout;
mod mapping;
mod tenants;
mod unmasking;

pub use layout::{create_layout_1, migrate, LayoutError, LAYOUT_VERSION};

pub const DB_FILE: &str = "cc-callbacks.sqlite3";
/// SQLite's write-ahead log and shared-memory index beside the database file.
pub const WAL_FILE: &str = "cc-callbacks.sqlite3-wal";
pub const SHM_FILE: &str = "cc-callbacks.sqlite3-shm";

#[derive(Clone)]
pub struct EmbeddedStore {
    conn: Arc<Mutex<Connection>>,
    /// What a tenant's key columns start with (`T#<tenant>#`, as DynamoDB's keys); empty for
    /// the default tenant, whose rows are as before platform mode. The admin commands' scans
    /// see the default tenant's rows only (their keys hold no `#`).
    scope: String,
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

/// Opens the database file in `data_dir` (creating both if needed) with the connection's
/// settings, without looking at its layout. The directory is created 0700 and the file 0600
/// (SQLite gives its WAL and SHM files the database file's mode); files an earlier release
/// left readable by others are narrowed to 0600.
fn connect(data_dir: &Path) -> Result<Connection, StoreError> {
    crate::config::create_private_dir(data_dir)
        .map_err(|e| failed(format!("cannot create {}: {e}", data_dir.display())))?;
    let path = data_dir.join(DB_FILE);
    for file in [DB_FILE, WAL_FILE, SHM_FILE] {
        crate::config::narrow_to_owner(&data_dir.join(file))
            .map_err(|e| failed(format!("cannot restrict {}: {e}", data_dir.display())))?;
    }
    match crate::config::create_private(&path) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(failed(format!("cannot create {}: {e}", path.display()))),
    }
    let conn = Connection::open(&path).map_err(from_sqlite)?;
    conn.busy_timeout(Duration::from_secs(5))
        .map_err(from_sqlite)?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(from_sqlite)?;
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(from_sqlite)?;
    conn.pragma_update(None, "secure_delete", "ON")
        .map_err(from_sqlite)?;
    Ok(conn)
}

impl EmbeddedStore {
    /// Opens the store in `data_dir`, creating it at the current layout if it is new; a store
    /// of an older or newer layout is refused with what to run (`LayoutError`).
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        let mut conn = connect(data_dir)?;
        layout::open_current(&mut conn, &data_dir.join(DB_FILE))?;
        Ok(EmbeddedStore {
            conn: Arc::new(Mutex::new(conn)),
            scope: String::new(),
        })
    }

    /// The same store, with the number mapping under `tenant`'s keys.
    pub fn for_tenant(&self, tenant: &crate::domain::tenant::TenantId) -> Self {
        EmbeddedStore {
            conn: self.conn.clone(),
            scope: super::tenant_scope(tenant),
        }
    }

    /// A key column's value in this store's scope.
    pub(super) fn scoped(scope: &str, key: &str) -> String {
        format!("{scope}{key}")
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
impl KeyedRecords for EmbeddedStore {
    async fn holds_keyed(&self, what: KeyUse) -> Result<bool, StoreError> {
        self.with_conn(move |conn| layout::holds_keyed(conn, what))
            .await
    }
}

/// The store file of `data_dir` in whatever layout it has, asked what it holds without being
/// opened as a store (`numbers migrate` converts a layout this release does not open).
pub struct EmbeddedFile(pub std::path::PathBuf);

#[async_trait]
impl KeyedRecords for EmbeddedFile {
    async fn holds_keyed(&self, what: KeyUse) -> Result<bool, StoreError> {
        let dir = self.0.clone();
        tokio::task::spawn_blocking(move || layout::holds_keyed(&connect(&dir)?, what))
            .await
            .map_err(failed)?
    }
}
