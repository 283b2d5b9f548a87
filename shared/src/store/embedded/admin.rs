//! Whole-store work for the admin CLI: import, scan (export, rekey), reseal, forget.

use async_trait::async_trait;
use rusqlite::{params, OptionalExtension, TransactionBehavior};

use super::mapping::INSERT_MAPPING;
use super::{failed, from_sqlite, EmbeddedStore};
use crate::domain::protect::{NumberIndex, SealedNumber};
use crate::domain::uid::Uid;
use crate::store::{Forgotten, ImportOutcome, NumbersAdmin, ScanPage, StoreError, StoredMapping};

/// A stored number index without this store's scope.
fn unscoped(scope: &str, stored: String) -> Result<NumberIndex, StoreError> {
    match stored.strip_prefix(scope) {
        Some(index) => Ok(NumberIndex::from_stored(index.to_string())),
        None => Err(failed("a mapping outside this store's scope")),
    }
}

/// Mappings one import transaction takes.
const IMPORT_BATCH: usize = 5000;
/// Rows a scan page holds.
const SCAN_PAGE: i64 = 1000;

#[async_trait]
impl NumbersAdmin for EmbeddedStore {
    fn import_batch(&self) -> usize {
        IMPORT_BATCH
    }

    async fn import(&self, batch: &[StoredMapping]) -> Result<Vec<ImportOutcome>, StoreError> {
        let (batch, scope) = (batch.to_vec(), self.scope.clone());
        self.with_conn(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(from_sqlite)?;
            let mut outcomes = Vec::with_capacity(batch.len());
            {
                let mut by_number = tx
                    .prepare_cached("SELECT uid_key FROM number_map WHERE number_index = ?1")
                    .map_err(from_sqlite)?;
                let mut by_uid = tx
                    .prepare_cached("SELECT number_index FROM number_map WHERE uid_key = ?1")
                    .map_err(from_sqlite)?;
                let mut insert = tx.prepare_cached(INSERT_MAPPING).map_err(from_sqlite)?;
                for m in &batch {
                    let index_key = Self::scoped(&scope, m.index.as_str());
                    let uid_key = Self::scoped(&scope, &m.uid.key());
                    let number_uid: Option<String> = by_number
                        .query_row(params![index_key], |r| r.get(0))
                        .optional()
                        .map_err(from_sqlite)?;
                    let uid_number: Option<String> = by_uid
                        .query_row(params![uid_key], |r| r.get(0))
                        .optional()
                        .map_err(from_sqlite)?;
                    let outcome = match (number_uid, uid_number) {
                        (None, None) => {
                            insert
                                .execute(params![
                                    index_key,
                                    uid_key,
                                    m.uid.as_str(),
                                    m.sealed.as_str(),
                                    m.sealed.version().unwrap_or(0),
                                    m.created_at
                                ])
                                .map_err(from_sqlite)?;
                            ImportOutcome::Written
                        }
                        (Some(uid), _) if uid == uid_key => ImportOutcome::Unchanged,
                        (Some(_), _) => ImportOutcome::NumberTaken,
                        (None, Some(_)) => ImportOutcome::UidTaken,
                    };
                    outcomes.push(outcome);
                }
            }
            tx.commit().map_err(from_sqlite)?;
            Ok(outcomes)
        })
        .await
    }

    fn scan_segments(&self) -> usize {
        1
    }

    async fn scan(
        &self,
        _segment: usize,
        _segments: usize,
        start: Option<String>,
    ) -> Result<ScanPage, StoreError> {
        let scope = self.scope.clone();
        self.with_conn(move |conn| {
            // This store's scope only: a tenant's keys start with it, the default tenant's
            // hold no '#'.
            let mut stmt = conn
                .prepare_cached(
                    "SELECT number_index, uid, sealed, created_at, uid_key FROM number_map
                     WHERE uid_key > ?1 AND CASE WHEN ?3 = '' THEN instr(uid_key, '#') = 0
                         ELSE substr(uid_key, 1, length(?3)) = ?3 END
                     ORDER BY uid_key LIMIT ?2",
                )
                .map_err(from_sqlite)?;
            let mut rows = stmt
                .query(params![start.unwrap_or_default(), SCAN_PAGE, scope])
                .map_err(from_sqlite)?;
            let mut page = ScanPage::default();
            let mut last = None;
            while let Some(row) = rows.next().map_err(from_sqlite)? {
                let uid: String = row.get(1).map_err(from_sqlite)?;
                let index: String = row.get(0).map_err(from_sqlite)?;
                page.mappings.push(StoredMapping {
                    index: unscoped(&scope, index)?,
                    uid: Uid::parse(&uid).ok_or_else(|| failed("stored user ID is malformed"))?,
                    sealed: SealedNumber::from_stored(row.get(2).map_err(from_sqlite)?),
                    created_at: row.get(3).map_err(from_sqlite)?,
                });
                last = Some(row.get::<_, String>(4).map_err(from_sqlite)?);
            }
            if page.mappings.len() as i64 == SCAN_PAGE {
                page.next = last;
            }
            Ok(page)
        })
        .await
    }

    async fn mappings_of(&self, uids: &[Uid]) -> Result<Vec<StoredMapping>, StoreError> {
        let (uids, scope) = (uids.to_vec(), self.scope.clone());
        self.with_conn(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT number_index, uid, sealed, created_at FROM number_map
                     WHERE uid_key = ?1",
                )
                .map_err(from_sqlite)?;
            let mut found = Vec::with_capacity(uids.len());
            for uid in uids {
                let row = stmt
                    .query_row(params![Self::scoped(&scope, &uid.key())], |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, i64>(3)?,
                        ))
                    })
                    .optional()
                    .map_err(from_sqlite)?;
                if let Some((index, uid, sealed, created_at)) = row {
                    found.push(StoredMapping {
                        index: unscoped(&scope, index)?,
                        uid: Uid::parse(&uid)
                            .ok_or_else(|| failed("stored user ID is malformed"))?,
                        sealed: SealedNumber::from_stored(sealed),
                        created_at,
                    });
                }
            }
            Ok(found)
        })
        .await
    }

    async fn reseal(&self, batch: &[(StoredMapping, SealedNumber)]) -> Result<usize, StoreError> {
        let (batch, scope) = (batch.to_vec(), self.scope.clone());
        self.with_conn(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(from_sqlite)?;
            let mut replaced = 0;
            {
                let mut update = tx
                    .prepare_cached(
                        "UPDATE number_map SET sealed = ?1, key_version = ?2
                         WHERE uid_key = ?3 AND sealed = ?4",
                    )
                    .map_err(from_sqlite)?;
                for (m, new) in &batch {
                    replaced += update
                        .execute(params![
                            new.as_str(),
                            new.version().unwrap_or(0),
                            Self::scoped(&scope, &m.uid.key()),
                            m.sealed.as_str()
                        ])
                        .map_err(from_sqlite)?;
                }
            }
            tx.commit().map_err(from_sqlite)?;
            Ok(replaced)
        })
        .await
    }

    async fn forget(
        &self,
        index: &NumberIndex,
        uid: Option<&Uid>,
        record_key: Option<&str>,
    ) -> Result<Forgotten, StoreError> {
        let (index, uid, record_key) = (index.clone(), uid.cloned(), record_key.map(String::from));
        let scope = self.scope.clone();
        self.with_conn(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(from_sqlite)?;
            let mut mapping = tx
                .execute(
                    "DELETE FROM number_map WHERE number_index = ?1",
                    params![Self::scoped(&scope, index.as_str())],
                )
                .map_err(from_sqlite)?
                > 0;
            if let Some(uid) = &uid {
                mapping |= tx
                    .execute(
                        "DELETE FROM number_map WHERE uid_key = ?1",
                        params![Self::scoped(&scope, &uid.key())],
                    )
                    .map_err(from_sqlite)?
                    > 0;
            }
            let pin = tx
                .execute(
                    "DELETE FROM pins WHERE number_index = ?1",
                    params![Self::scoped(&scope, index.as_str())],
                )
                .map_err(from_sqlite)?
                > 0;
            let records = match &record_key {
                Some(key) => tx
                    .execute(
                        "DELETE FROM verification_records WHERE number_key = ?1",
                        params![Self::scoped(&scope, key)],
                    )
                    .map_err(from_sqlite)?,
                None => 0,
            };
            tx.commit().map_err(from_sqlite)?;
            Ok(Forgotten {
                mapping,
                pin,
                records,
            })
        })
        .await
    }
}
