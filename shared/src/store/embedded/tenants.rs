//! The tenant registry of the embedded store: tables `tenants` and `tenant_credentials`
//! (layout 3; the `lookup` column layout 4, `settings` and `settings_rev` layout 5).

use async_trait::async_trait;
use std::collections::HashMap;

use rusqlite::{params, Connection, Row};

use super::{failed, from_sqlite, EmbeddedStore};
use crate::domain::tenant::{Tenant, TenantCredential, TenantId, WrappedKeys, WrappedLookup};
use crate::domain::tenant_settings::StoredSettings;
use crate::store::{
    tenant_scope, CredentialAdded, Erased, StoreError, TenantEntry, TenantListing, TenantLookup,
    TenantRegistry, MAX_TENANT_CREDENTIALS,
};

const TENANT_COLUMNS: &str =
    "id, name, created_at, suspended, keys, lookup, settings, settings_rev";

type TenantRow = (String, String, i64, bool, String, String, String, i64);

fn tenant_from_row(r: &Row<'_>) -> rusqlite::Result<TenantRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
    ))
}

fn tenant(row: TenantRow) -> Result<(Tenant, StoredSettings), StoreError> {
    let (id, name, created_at, suspended, keys, lookup, settings, rev) = row;
    let settings = StoredSettings {
        rev: rev.max(0) as u64,
        values: serde_json::from_str(&settings)
            .map_err(|_| failed("a tenant's stored settings are malformed"))?,
    };
    let tenant = Tenant {
        id: TenantId::parse(&id).map_err(|_| failed("a stored tenant ID is malformed"))?,
        name,
        created_at,
        suspended,
        keys: WrappedKeys::from_stored(keys),
        lookup: WrappedLookup::from_stored(lookup),
    };
    Ok((tenant, settings))
}

/// The tenant `only` (or every tenant) with its credentials, by ID, read in one transaction.
fn entries(conn: &mut Connection, only: Option<&TenantId>) -> Result<Vec<TenantEntry>, StoreError> {
    let only = only.map(|id| id.as_str().to_string());
    let tx = conn.transaction().map_err(from_sqlite)?;
    let rows = tx
        .prepare_cached(&format!(
            "SELECT {TENANT_COLUMNS} FROM tenants WHERE ?1 IS NULL OR id = ?1 ORDER BY id"
        ))
        .map_err(from_sqlite)?
        .query_map(params![only], tenant_from_row)
        .map_err(from_sqlite)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(from_sqlite)?;
    let mut credentials: HashMap<String, Vec<TenantCredential>> = HashMap::new();
    let mut stmt = tx
        .prepare_cached(
            "SELECT tenant, user, function, digest, created_at FROM tenant_credentials
             WHERE ?1 IS NULL OR tenant = ?1 ORDER BY tenant, function, user",
        )
        .map_err(from_sqlite)?;
    let found = stmt
        .query_map(params![only], |r| {
            Ok((
                r.get::<_, String>(0)?,
                TenantCredential {
                    user: r.get(1)?,
                    function: r.get(2)?,
                    digest: r.get(3)?,
                    created_at: r.get(4)?,
                },
            ))
        })
        .map_err(from_sqlite)?;
    for row in found {
        let (tenant, credential) = row.map_err(from_sqlite)?;
        credentials.entry(tenant).or_default().push(credential);
    }
    rows.into_iter()
        .map(|row| {
            let credentials = credentials.remove(&row.0).unwrap_or_default();
            let (tenant, settings) = tenant(row)?;
            Ok(TenantEntry {
                tenant,
                credentials,
                settings,
            })
        })
        .collect()
}

#[async_trait]
impl TenantLookup for EmbeddedStore {
    async fn tenant(&self, id: &TenantId) -> Result<Option<TenantEntry>, StoreError> {
        let id = id.clone();
        self.with_conn(move |conn| Ok(entries(conn, Some(&id))?.pop()))
            .await
    }
}

#[async_trait]
impl TenantListing for EmbeddedStore {
    async fn list_tenants(&self) -> Result<Vec<TenantEntry>, StoreError> {
        self.with_conn(|conn| entries(conn, None)).await
    }
}

#[async_trait]
impl TenantRegistry for EmbeddedStore {
    async fn add_tenant(&self, t: &Tenant) -> Result<bool, StoreError> {
        let t = t.clone();
        self.with_conn(move |conn| {
            let n = conn
                .execute(
                    "INSERT INTO tenants (id, name, created_at, suspended, keys, lookup)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (id) DO NOTHING",
                    params![
                        t.id.as_str(),
                        t.name,
                        t.created_at,
                        t.suspended,
                        t.keys.as_str(),
                        t.lookup.as_str()
                    ],
                )
                .map_err(from_sqlite)?;
            Ok(n == 1)
        })
        .await
    }

    async fn set_suspended(&self, id: &TenantId, suspended: bool) -> Result<bool, StoreError> {
        let id = id.clone();
        self.with_conn(move |conn| {
            let n = conn
                .execute(
                    "UPDATE tenants SET suspended = ?2 WHERE id = ?1",
                    params![id.as_str(), suspended],
                )
                .map_err(from_sqlite)?;
            Ok(n == 1)
        })
        .await
    }

    async fn add_credential(
        &self,
        id: &TenantId,
        c: &TenantCredential,
    ) -> Result<CredentialAdded, StoreError> {
        let (id, c) = (id.clone(), c.clone());
        self.with_conn(move |conn| {
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(from_sqlite)?;
            let known: bool = tx
                .query_row(
                    "SELECT EXISTS (SELECT 1 FROM tenants WHERE id = ?1)",
                    params![id.as_str()],
                    |r| r.get(0),
                )
                .map_err(from_sqlite)?;
            if !known {
                return Ok(CredentialAdded::NoTenant);
            }
            let held: i64 = tx
                .query_row(
                    "SELECT count(*) FROM tenant_credentials WHERE tenant = ?1",
                    params![id.as_str()],
                    |r| r.get(0),
                )
                .map_err(from_sqlite)?;
            let n = tx
                .execute(
                    "INSERT INTO tenant_credentials (tenant, function, user, digest, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
                    params![id.as_str(), c.function, c.user, c.digest, c.created_at],
                )
                .map_err(from_sqlite)?;
            if n == 0 {
                return Ok(CredentialAdded::Taken);
            }
            if held >= MAX_TENANT_CREDENTIALS as i64 {
                return Ok(CredentialAdded::Full); // dropped with the transaction
            }
            tx.commit().map_err(from_sqlite)?;
            Ok(CredentialAdded::Added)
        })
        .await
    }

    async fn revoke_credentials(&self, id: &TenantId, user: &str) -> Result<usize, StoreError> {
        let (id, user) = (id.clone(), user.to_string());
        self.with_conn(move |conn| {
            conn.execute(
                "DELETE FROM tenant_credentials WHERE tenant = ?1 AND user = ?2",
                params![id.as_str(), user],
            )
            .map_err(from_sqlite)
        })
        .await
    }

    async fn set_settings(
        &self,
        id: &TenantId,
        expected_rev: u64,
        settings: &StoredSettings,
    ) -> Result<bool, StoreError> {
        let id = id.clone();
        let values = serde_json::to_string(&settings.values).map_err(failed)?;
        let rev = settings.rev as i64;
        self.with_conn(move |conn| {
            let n = conn
                .execute(
                    "UPDATE tenants SET settings = ?2, settings_rev = ?3
                     WHERE id = ?1 AND settings_rev = ?4",
                    params![id.as_str(), values, rev, expected_rev as i64],
                )
                .map_err(from_sqlite)?;
            Ok(n == 1)
        })
        .await
    }

    fn erase_segments(&self) -> usize {
        1
    }

    /// Everything in one transaction (a local store): one page.
    async fn erase_page(
        &self,
        id: &TenantId,
        _segment: usize,
        _segments: usize,
        _start: Option<String>,
    ) -> Result<(Erased, Option<String>), StoreError> {
        let scope = tenant_scope(id);
        let id = id.clone();
        self.with_conn(move |conn| {
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(from_sqlite)?;
            // Exact prefix comparison (LIKE would ignore case and treat '_' as a wildcard).
            let delete = |table: &str, column: &str| {
                tx.execute(
                    &format!("DELETE FROM {table} WHERE substr({column}, 1, length(?1)) = ?1"),
                    params![scope],
                )
                .map_err(from_sqlite)
            };
            // Token-exchange audit records name the tenant's caller `NAME@ID`.
            let audit = tx
                .execute(
                    "DELETE FROM token_audit WHERE substr(caller, -length(?1)) = ?1",
                    params![format!("@{id}")],
                )
                .map_err(from_sqlite)?;
            // The agent directory: its agents under the scope, its links and sync state by it.
            let mut other = audit + delete("agents", "work_no")?;
            for table in [
                "tenant_account_links",
                "tenant_agent_sync",
                "unmaskings",
                "unmask_budget",
            ] {
                other += tx
                    .execute(
                        &format!("DELETE FROM {table} WHERE scope = ?1"),
                        params![scope],
                    )
                    .map_err(from_sqlite)?;
            }
            let erased = Erased {
                mappings: delete("number_map", "number_index")?,
                pins: delete("pins", "number_index")?,
                records: delete("verification_records", "number_key")?,
                other,
            };
            tx.commit().map_err(from_sqlite)?;
            Ok((erased, None))
        })
        .await
    }

    async fn remove_tenant(&self, id: &TenantId) -> Result<bool, StoreError> {
        let id = id.clone();
        self.with_conn(move |conn| {
            let tx = conn.transaction().map_err(from_sqlite)?;
            tx.execute(
                "DELETE FROM tenant_credentials WHERE tenant = ?1",
                params![id.as_str()],
            )
            .map_err(from_sqlite)?;
            let n = tx
                .execute("DELETE FROM tenants WHERE id = ?1", params![id.as_str()])
                .map_err(from_sqlite)?;
            tx.commit().map_err(from_sqlite)?;
            // What the erasure and this removal overwrote (secure_delete) may still sit in
            // the write-ahead log: fold it into the file now (best effort while another
            // process reads).
            let _ = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);");
            Ok(n == 1)
        })
        .await
    }

    async fn rewrap_keys(
        &self,
        id: &TenantId,
        old: &WrappedKeys,
        new: &WrappedKeys,
        lookup: &WrappedLookup,
    ) -> Result<bool, StoreError> {
        let (id, old, new, lookup) = (id.clone(), old.clone(), new.clone(), lookup.clone());
        self.with_conn(move |conn| {
            let n = conn
                .execute(
                    "UPDATE tenants SET keys = ?3, lookup = ?4 WHERE id = ?1 AND keys = ?2",
                    params![id.as_str(), old.as_str(), new.as_str(), lookup.as_str()],
                )
                .map_err(from_sqlite)?;
            Ok(n == 1)
        })
        .await
    }
}
