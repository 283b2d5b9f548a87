//! The token-exchange audit table of the embedded store.

use async_trait::async_trait;
use rusqlite::params;

use super::{from_sqlite, EmbeddedStore};
use crate::domain::audit::AuditRecord;
use crate::store::{AuditStore, StoreError};

#[async_trait]
impl AuditStore for EmbeddedStore {
    async fn put_audit(&self, r: &AuditRecord) -> Result<(), StoreError> {
        let r = r.clone();
        self.with_conn(move |conn| {
            conn.prepare_cached(
                "INSERT INTO token_audit (time, id, caller, mode, subject, outcome, jti, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )
            .map_err(from_sqlite)?
            .execute(params![
                r.time,
                r.id,
                r.caller,
                r.mode,
                r.subject,
                r.outcome,
                r.jti,
                r.expires_at
            ])
            .map_err(from_sqlite)?;
            Ok(())
        })
        .await
    }

    async fn list_audit(&self, limit: usize, now: i64) -> Result<Vec<AuditRecord>, StoreError> {
        self.with_conn(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT time, id, caller, mode, subject, outcome, jti, expires_at
                     FROM token_audit WHERE expires_at > ?1 ORDER BY time DESC, id DESC LIMIT ?2",
                )
                .map_err(from_sqlite)?;
            let rows = stmt
                .query_map(params![now, limit as i64], |r| {
                    Ok(AuditRecord {
                        time: r.get(0)?,
                        id: r.get(1)?,
                        caller: r.get(2)?,
                        mode: r.get(3)?,
                        subject: r.get(4)?,
                        outcome: r.get(5)?,
                        jti: r.get(6)?,
                        expires_at: r.get(7)?,
                    })
                })
                .map_err(from_sqlite)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(from_sqlite)
        })
        .await
    }
}
