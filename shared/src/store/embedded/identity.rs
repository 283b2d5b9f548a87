//! Identity verification tables of the embedded store (see `SCHEMA`). A tenant's rows have
//! its scope before the key columns (`pins.number_index`, `verification_records.number_key`,
//! the agent asked for), as number mapping's do.

use async_trait::async_trait;
use rusqlite::{params, OptionalExtension, Row};

use super::{failed, from_sqlite, EmbeddedStore};
use crate::domain::factor::{Factor, FACTORS};
use crate::domain::identity::{Counters, PinDigest, PinState, RecordQuery, VerificationRecord};
use crate::domain::protect::NumberIndex;
use crate::domain::uid::Uid;
use crate::store::{factor_attribute, fresh_version, CountersUpdate, IdentityStore, StoreError};

const UPDATE_COUNTERS: &str = "UPDATE pins SET failures = ?1, window_start = ?2, locked_until = ?3,
     version = ?4 + 1 WHERE number_index = ?5 AND version = ?4";

fn record_from_row(r: &Row<'_>) -> rusqlite::Result<VerificationRecord> {
    Ok(VerificationRecord {
        number_key: r.get(0)?,
        time: r.get(1)?,
        id: r.get(2)?,
        masked_number: r.get(3)?,
        agent: r.get(4)?,
        verify_type_code: r.get(5)?,
        result: r.get(6)?,
        reason: r.get(7)?,
        expires_at: r.get(8)?,
        factor: r.get(9)?,
    })
}

/// A customer's row: its factors' digest columns ('' where not enrolled) in `FACTORS` order,
/// then its counters and version.
const CUSTOMER_COLUMNS: &str =
    "digest, d_id_last6, d_birth_date, d_card_last4, failures, window_start, locked_until, version";

fn customer_from_row(r: &Row<'_>) -> rusqlite::Result<Result<PinState, StoreError>> {
    let mut digests = std::collections::BTreeMap::new();
    for (i, factor) in FACTORS.into_iter().enumerate() {
        let hex: String = r.get(i)?;
        if hex.is_empty() {
            continue;
        }
        match PinDigest::from_hex(&hex) {
            Some(d) => digests.insert(factor, d),
            None => return Ok(Err(failed("a stored factor digest is malformed"))),
        };
    }
    Ok(Ok(PinState {
        digests,
        counters: Counters {
            failures: r.get(4)?,
            window_start: r.get(5)?,
            locked_until: r.get(6)?,
        },
        version: r.get::<_, i64>(7)? as u64,
    }))
}

// SQLite integers are i64; versions are kept below 2^52 (`fresh_version`), counters small.
fn to_i64(v: u64) -> i64 {
    v as i64
}

#[async_trait]
impl IdentityStore for EmbeddedStore {
    async fn load_customer(
        &self,
        phone: &NumberIndex,
    ) -> Result<(Option<PinState>, Option<Uid>), StoreError> {
        let phone = Self::scoped(&self.scope, phone.as_str());
        self.with_conn(move |conn| {
            let pin = conn
                .prepare_cached(&format!(
                    "SELECT {CUSTOMER_COLUMNS} FROM pins WHERE number_index = ?1"
                ))
                .map_err(from_sqlite)?
                .query_row(params![phone], customer_from_row)
                .optional()
                .map_err(from_sqlite)?
                .transpose()?;
            let uid: Option<String> = conn
                .prepare_cached("SELECT uid FROM number_map WHERE number_index = ?1")
                .map_err(from_sqlite)?
                .query_row(params![phone], |r| r.get(0))
                .optional()
                .map_err(from_sqlite)?;
            Ok((pin, uid.as_deref().and_then(Uid::parse)))
        })
        .await
    }

    async fn load_customer_and_agent(
        &self,
        phone: &NumberIndex,
        work_no: &str,
    ) -> Result<(Option<PinState>, Option<Uid>, bool), StoreError> {
        let (pin, uid) = self.load_customer(phone).await?;
        let work_no = Self::scoped(&self.scope, work_no);
        let active = self
            .with_conn(move |conn| {
                conn.query_row(
                    "SELECT active FROM agents WHERE work_no = ?1",
                    params![work_no],
                    |r| r.get::<_, bool>(0),
                )
                .optional()
                .map_err(from_sqlite)
            })
            .await?
            .unwrap_or(false);
        Ok((pin, uid, active))
    }

    async fn update_counters(
        &self,
        phone: &NumberIndex,
        expected_version: u64,
        c: Counters,
    ) -> Result<bool, StoreError> {
        let phone = Self::scoped(&self.scope, phone.as_str());
        self.with_conn(move |conn| {
            let changed = conn
                .prepare_cached(UPDATE_COUNTERS)
                .map_err(from_sqlite)?
                .execute(params![
                    c.failures,
                    c.window_start,
                    c.locked_until,
                    to_i64(expected_version),
                    phone
                ])
                .map_err(from_sqlite)?;
            Ok(changed == 1)
        })
        .await
    }

    async fn write_attempt(
        &self,
        record: &VerificationRecord,
        update: Option<CountersUpdate<'_>>,
    ) -> Result<bool, StoreError> {
        let mut record = record.clone();
        record.number_key = Self::scoped(&self.scope, &record.number_key);
        let scope = self.scope.clone();
        let update = update.map(|u| {
            let number = Self::scoped(&scope, u.number.as_str());
            (number, u.expected_version, u.counters)
        });
        self.with_conn(move |conn| {
            let tx = conn.transaction().map_err(from_sqlite)?;
            if let Some((phone, version, c)) = update {
                let changed = tx
                    .prepare_cached(UPDATE_COUNTERS)
                    .map_err(from_sqlite)?
                    .execute(params![
                        c.failures,
                        c.window_start,
                        c.locked_until,
                        to_i64(version),
                        phone
                    ])
                    .map_err(from_sqlite)?;
                if changed != 1 {
                    return Ok(false); // dropping the transaction rolls it back
                }
            }
            tx.prepare_cached(
                "INSERT INTO verification_records (number_key, time, id, masked_number, agent,
                 verify_type_code, result, reason, expires_at, factor)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )
            .map_err(from_sqlite)?
            .execute(params![
                record.number_key,
                record.time,
                record.id,
                record.masked_number,
                record.agent,
                record.verify_type_code,
                record.result,
                record.reason,
                record.expires_at,
                record.factor
            ])
            .map_err(from_sqlite)?;
            tx.commit().map_err(from_sqlite)?;
            Ok(true)
        })
        .await
    }

    async fn put_factors(
        &self,
        factor: Factor,
        digests: &[(NumberIndex, PinDigest)],
    ) -> Result<(), StoreError> {
        let rows: Vec<(String, PinDigest)> = digests
            .iter()
            .map(|(number, digest)| (Self::scoped(&self.scope, number.as_str()), digest.clone()))
            .collect();
        let column = factor_attribute(factor);
        // A new customer's other factors are '' (not enrolled; `digest` has no default); an
        // enrolled one's stay.
        let columns = match factor {
            Factor::Pin => "digest".to_string(),
            _ => format!("digest, {column}"),
        };
        let values = match factor {
            Factor::Pin => "?2",
            _ => "'', ?2",
        };
        self.with_conn(move |conn| {
            let tx = conn.transaction().map_err(from_sqlite)?;
            {
                let mut stmt = tx
                    .prepare_cached(&format!(
                        "INSERT INTO pins (number_index, {columns}, failures, window_start,
                         locked_until, version) VALUES (?1, {values}, 0, 0, 0, ?3)
                         ON CONFLICT (number_index) DO UPDATE SET {column} = excluded.{column},
                         failures = 0, window_start = 0, locked_until = 0,
                         version = excluded.version"
                    ))
                    .map_err(from_sqlite)?;
                for (phone, digest) in &rows {
                    stmt.execute(params![phone, digest.to_hex(), to_i64(fresh_version())])
                        .map_err(from_sqlite)?;
                }
            }
            tx.commit().map_err(from_sqlite)
        })
        .await
    }

    async fn forget_factor(
        &self,
        number: &NumberIndex,
        factor: Factor,
    ) -> Result<bool, StoreError> {
        let phone = Self::scoped(&self.scope, number.as_str());
        let column = factor_attribute(factor);
        self.with_conn(move |conn| {
            let changed = conn
                .execute(
                    &format!(
                        "UPDATE pins SET {column} = '' WHERE number_index = ?1 AND {column} <> ''"
                    ),
                    params![phone],
                )
                .map_err(from_sqlite)?;
            Ok(changed == 1)
        })
        .await
    }

    async fn unlock(&self, phone: &NumberIndex) -> Result<bool, StoreError> {
        let phone = Self::scoped(&self.scope, phone.as_str());
        self.with_conn(move |conn| {
            let changed = conn
                .execute(
                    "UPDATE pins SET failures = 0, window_start = 0, locked_until = 0,
                     version = version + 1 WHERE number_index = ?1",
                    params![phone],
                )
                .map_err(from_sqlite)?;
            Ok(changed == 1)
        })
        .await
    }

    async fn list_records(&self, q: &RecordQuery) -> Result<Vec<VerificationRecord>, StoreError> {
        let q = q.clone();
        let scope = self.scope.clone();
        self.with_conn(move |conn| {
            // This store's scope only: a tenant's keys start with it, the default tenant's
            // never start with "T#" (hex, or empty).
            let mut stmt = conn
                .prepare_cached(
                    "SELECT number_key, time, id, masked_number, agent, verify_type_code, result,
                     reason, expires_at, factor FROM verification_records
                     WHERE (?1 IS NULL OR number_key = ?1) AND (?2 IS NULL OR agent = ?2)
                       AND (?7 IS NULL OR verify_type_code = ?7)
                       AND time >= ?3 AND expires_at > ?4
                       AND CASE WHEN ?6 = '' THEN substr(number_key, 1, 2) <> 'T#'
                           ELSE substr(number_key, 1, length(?6)) = ?6 END
                     ORDER BY time DESC, id DESC LIMIT ?5",
                )
                .map_err(from_sqlite)?;
            let rows = stmt
                .query_map(
                    params![
                        q.number_key.as_deref().map(|k| Self::scoped(&scope, k)),
                        q.agent,
                        q.since.unwrap_or(0),
                        q.now,
                        q.limit as i64,
                        scope,
                        q.mode
                    ],
                    record_from_row,
                )
                .map_err(from_sqlite)?;
            let mut records = rows.collect::<Result<Vec<_>, _>>().map_err(from_sqlite)?;
            for r in &mut records {
                if let Some(key) = r.number_key.strip_prefix(scope.as_str()) {
                    r.number_key = key.to_string();
                }
            }
            Ok(records)
        })
        .await
    }
}
