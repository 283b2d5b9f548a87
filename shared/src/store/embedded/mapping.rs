//! Number mapping rows: `number_map (phone, uid, created_at)`, each column unique, so that
//! a number has one ID and an ID one number.

use std::collections::HashMap;

use async_trait::async_trait;
use rusqlite::{params, OptionalExtension, TransactionBehavior};

use super::{failed, from_sqlite, EmbeddedStore};
use crate::domain::clock::now_epoch;
use crate::domain::phone::PhoneKey;
use crate::domain::uid::Uid;
use crate::store::{MappingStore, StoreError};

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
