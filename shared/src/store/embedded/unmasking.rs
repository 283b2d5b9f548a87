//! Unmasking records of the embedded store: table `unmaskings` (layout 6), keyed by scope (a
//! platform tenant's, "" for the default tenant), ID and time; listed by time through its
//! index. Expired records are left out of every answer. Each caller's count of unmaskings
//! per minute is table `unmask_budget` (layout 7), one row per scope, caller and minute.

use async_trait::async_trait;
use rusqlite::{params, Row};

use super::{from_sqlite, EmbeddedStore};
use crate::domain::unmasking::{BudgetTake, Unmasking};
use crate::store::{StoreError, UnmaskingLog, UnmaskingQuery, MAX_UNMASKINGS_LISTED};

const COLUMNS: &str = "time, id, uid, caller, request_id, source_ip, expires_at";

fn from_row(r: &Row<'_>) -> rusqlite::Result<Unmasking> {
    Ok(Unmasking {
        time: r.get(0)?,
        id: r.get(1)?,
        uid: r.get(2)?,
        caller: r.get(3)?,
        request_id: r.get(4)?,
        source_ip: r.get(5)?,
        expires_at: r.get(6)?,
    })
}

#[async_trait]
impl UnmaskingLog for EmbeddedStore {
    async fn put_unmaskings(&self, records: &[Unmasking]) -> Result<(), StoreError> {
        let records = records.to_vec();
        let scope = self.scope.clone();
        self.with_conn(move |conn| {
            let tx = conn.transaction().map_err(from_sqlite)?;
            {
                let mut stmt = tx
                    .prepare_cached(&format!(
                        "INSERT INTO unmaskings (scope, uid_key, {COLUMNS})
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
                    ))
                    .map_err(from_sqlite)?;
                for r in &records {
                    stmt.execute(params![
                        scope,
                        r.uid.to_ascii_lowercase(),
                        r.time,
                        r.id,
                        r.uid,
                        r.caller,
                        r.request_id,
                        r.source_ip,
                        r.expires_at
                    ])
                    .map_err(from_sqlite)?;
                }
            }
            tx.commit().map_err(from_sqlite)
        })
        .await
    }

    async fn take_unmask_budget(&self, take: &BudgetTake) -> Result<bool, StoreError> {
        if take.never_fits() {
            return Ok(false);
        }
        let take = take.clone();
        let scope = self.scope.clone();
        self.with_conn(move |conn| {
            // One statement: SQLite runs it atomically, whichever process shares the file.
            let added = conn
                .prepare_cached(
                    "INSERT INTO unmask_budget (scope, caller, minute, count) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (scope, caller, minute) DO UPDATE
                     SET count = count + excluded.count WHERE count + excluded.count <= ?5",
                )
                .and_then(|mut stmt| {
                    stmt.execute(params![
                        scope,
                        take.caller,
                        take.minute,
                        take.count,
                        take.limit
                    ])
                })
                .map_err(from_sqlite)?;
            // The caller's earlier minutes are never read again.
            conn.prepare_cached(
                "DELETE FROM unmask_budget WHERE scope = ?1 AND caller = ?2 AND minute < ?3",
            )
            .and_then(|mut stmt| stmt.execute(params![scope, take.caller, take.minute]))
            .map_err(from_sqlite)?;
            Ok(added == 1)
        })
        .await
    }
}

#[async_trait]
impl UnmaskingQuery for EmbeddedStore {
    async fn unmaskings_of(
        &self,
        uid: &str,
        since: i64,
        until: i64,
        now: i64,
        limit: usize,
    ) -> Result<Vec<Unmasking>, StoreError> {
        let (scope, uid) = (self.scope.clone(), uid.to_ascii_lowercase());
        let limit = limit.clamp(1, MAX_UNMASKINGS_LISTED) as i64;
        self.with_conn(move |conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM unmaskings
                     WHERE scope = ?1 AND uid_key = ?2 AND time BETWEEN ?3 AND ?4 AND expires_at > ?5
                     ORDER BY time DESC, id DESC LIMIT ?6"
                ))
                .map_err(from_sqlite)?;
            let rows = stmt
                .query_map(params![scope, uid, since, until, now, limit], from_row)
                .map_err(from_sqlite)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(from_sqlite)
        })
        .await
    }

    async fn unmaskings_between(
        &self,
        caller: Option<&str>,
        since: i64,
        until: i64,
        now: i64,
        limit: usize,
    ) -> Result<Vec<Unmasking>, StoreError> {
        let (scope, caller) = (self.scope.clone(), caller.map(str::to_string));
        let limit = limit.clamp(1, MAX_UNMASKINGS_LISTED) as i64;
        self.with_conn(move |conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM unmaskings
                     WHERE scope = ?1 AND time BETWEEN ?2 AND ?3 AND expires_at > ?4
                       AND (?5 IS NULL OR caller = ?5)
                     ORDER BY time DESC, id DESC LIMIT ?6"
                ))
                .map_err(from_sqlite)?;
            let rows = stmt
                .query_map(params![scope, since, until, now, caller, limit], from_row)
                .map_err(from_sqlite)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(from_sqlite)
        })
        .await
    }
}
