//! Number mapping rows: `number_map (number_index, uid_key, uid, sealed, key_version,
//! created_at)`, index and ID key each unique, so that a number has one ID and an ID one
//! number. No number in the clear (see `domain::protect`). A tenant's rows have both keys
//! under its scope (`EmbeddedStore::for_tenant`), so its IDs are unique within it.

use std::collections::HashMap;

use async_trait::async_trait;
use rusqlite::{params, OptionalExtension, TransactionBehavior};

use super::{failed, from_sqlite, EmbeddedStore};
use crate::domain::clock::now_epoch;
use crate::domain::protect::{NumberIndex, SealedNumber};
use crate::domain::uid::Uid;
use crate::store::{MappingStore, Sealer, StoreError};

pub(super) const INSERT_MAPPING: &str =
    "INSERT INTO number_map (number_index, uid_key, uid, sealed, key_version, created_at)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6)";

#[async_trait]
impl MappingStore for EmbeddedStore {
    async fn uids_of(
        &self,
        numbers: &[NumberIndex],
    ) -> Result<HashMap<NumberIndex, Uid>, StoreError> {
        let (numbers, scope) = (numbers.to_vec(), self.scope.clone());
        self.with_conn(move |conn| {
            let mut stmt = conn
                .prepare_cached("SELECT uid FROM number_map WHERE number_index = ?1")
                .map_err(from_sqlite)?;
            let mut found = HashMap::with_capacity(numbers.len());
            for number in numbers {
                let uid: Option<String> = stmt
                    .query_row(params![Self::scoped(&scope, number.as_str())], |r| r.get(0))
                    .optional()
                    .map_err(from_sqlite)?;
                if let Some(uid) = uid.as_deref().and_then(Uid::parse) {
                    found.insert(number, uid);
                }
            }
            Ok(found)
        })
        .await
    }

    async fn sealed_of(&self, uids: &[Uid]) -> Result<HashMap<Uid, SealedNumber>, StoreError> {
        let (uids, scope) = (uids.to_vec(), self.scope.clone());
        self.with_conn(move |conn| {
            let mut stmt = conn
                .prepare_cached("SELECT sealed FROM number_map WHERE uid_key = ?1")
                .map_err(from_sqlite)?;
            let mut found = HashMap::with_capacity(uids.len());
            for uid in uids {
                let sealed: Option<String> = stmt
                    .query_row(params![Self::scoped(&scope, &uid.key())], |r| r.get(0))
                    .optional()
                    .map_err(from_sqlite)?;
                if let Some(sealed) = sealed {
                    found.insert(uid, SealedNumber::from_stored(sealed));
                }
            }
            Ok(found)
        })
        .await
    }

    async fn create_uids(
        &self,
        numbers: &[NumberIndex],
        seal: &Sealer,
    ) -> Result<HashMap<NumberIndex, Uid>, StoreError> {
        let (numbers, scope) = (numbers.to_vec(), self.scope.clone());
        let seal = seal.clone();
        self.with_conn(move |conn| {
            // IMMEDIATE takes the write lock up front, so concurrent writers (other processes
            // included) queue on busy_timeout instead of failing mid-transaction.
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(from_sqlite)?;
            let now = now_epoch();
            let mut settled = HashMap::with_capacity(numbers.len());
            {
                let mut existing = tx
                    .prepare_cached("SELECT uid FROM number_map WHERE number_index = ?1")
                    .map_err(from_sqlite)?;
                let mut insert = tx.prepare_cached(INSERT_MAPPING).map_err(from_sqlite)?;
                for number in numbers {
                    let index_key = Self::scoped(&scope, number.as_str());
                    let found: Option<String> = existing
                        .query_row(params![index_key], |r| r.get(0))
                        .optional()
                        .map_err(from_sqlite)?;
                    if let Some(uid) = found {
                        let uid = Uid::parse(&uid)
                            .ok_or_else(|| failed("stored user ID is malformed"))?;
                        settled.insert(number, uid);
                        continue;
                    }
                    // An ID collision violates the UNIQUE constraint: draw again.
                    let mut attempts = 0;
                    let uid = loop {
                        attempts += 1;
                        let uid = Uid::generate().map_err(failed)?;
                        let sealed = seal(&number, &uid)?;
                        match insert.execute(params![
                            index_key,
                            Self::scoped(&scope, &uid.key()),
                            uid.as_str(),
                            sealed.as_str(),
                            sealed.version().unwrap_or(0),
                            now
                        ]) {
                            Ok(_) => break uid,
                            Err(e)
                                if attempts < 5
                                    && e.sqlite_error_code()
                                        == Some(rusqlite::ErrorCode::ConstraintViolation) =>
                            {
                                continue
                            }
                            Err(e) => return Err(from_sqlite(e)),
                        }
                    };
                    settled.insert(number, uid);
                }
            }
            tx.commit().map_err(from_sqlite)?;
            Ok(settled)
        })
        .await
    }
}
