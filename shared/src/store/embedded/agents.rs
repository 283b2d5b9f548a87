//! The agent directory tables of the embedded store.

use async_trait::async_trait;
use rusqlite::{params, OptionalExtension, Row};

use super::{from_sqlite, EmbeddedStore};
use crate::domain::agents::{Agent, SyncCounts, SyncState};
use crate::store::{AgentStore, StoreError};

const AGENT_COLUMNS: &str =
    "work_no, account_code, sip_account, active, first_seen, last_seen, inactive_since";

fn agent_from_row(r: &Row<'_>) -> rusqlite::Result<Agent> {
    Ok(Agent {
        work_no: r.get(0)?,
        account_code: r.get(1)?,
        sip_account: r.get(2)?,
        active: r.get(3)?,
        first_seen: r.get(4)?,
        last_seen: r.get(5)?,
        inactive_since: r.get(6)?,
    })
}

/// A work number's key in `agents` under `scope` (a tenant's: `T#<tenant>#<work no>`; a work
/// number never holds `#`, so no default-tenant key can look like a tenant's).
fn agent_key(scope: &str, work_no: &str) -> String {
    EmbeddedStore::scoped(scope, work_no)
}

/// The agent read from a row of `scope`, its work number without the scope.
fn unscoped(scope: &str, mut agent: Agent) -> Agent {
    if let Some(w) = agent.work_no.strip_prefix(scope) {
        agent.work_no = w.to_string();
    }
    agent
}

fn sync_state(r: &Row<'_>) -> rusqlite::Result<SyncState> {
    Ok(SyncState {
        at: r.get(0)?,
        counts: SyncCounts {
            added: r.get::<_, i64>(1)? as usize,
            updated: r.get::<_, i64>(2)? as usize,
            deactivated: r.get::<_, i64>(3)? as usize,
            unchanged: r.get::<_, i64>(4)? as usize,
        },
    })
}

#[async_trait]
impl AgentStore for EmbeddedStore {
    async fn list_agents(&self) -> Result<Vec<Agent>, StoreError> {
        let scope = self.scope.clone();
        self.with_conn(move |conn| {
            // The default tenant's rows are those without a tenant's scope.
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {AGENT_COLUMNS} FROM agents
                     WHERE CASE WHEN ?1 = '' THEN substr(work_no, 1, 2) <> 'T#'
                                ELSE substr(work_no, 1, length(?1)) = ?1 END
                     ORDER BY work_no"
                ))
                .map_err(from_sqlite)?;
            let rows = stmt
                .query_map(params![scope], agent_from_row)
                .map_err(from_sqlite)?;
            let agents = rows.collect::<Result<Vec<_>, _>>().map_err(from_sqlite)?;
            Ok(agents.into_iter().map(|a| unscoped(&scope, a)).collect())
        })
        .await
    }

    async fn get_agent(&self, work_no: &str) -> Result<Option<Agent>, StoreError> {
        let scope = self.scope.clone();
        let key = agent_key(&scope, work_no);
        self.with_conn(move |conn| {
            let agent = conn
                .prepare_cached(&format!(
                    "SELECT {AGENT_COLUMNS} FROM agents WHERE work_no = ?1"
                ))
                .map_err(from_sqlite)?
                .query_row(params![key], agent_from_row)
                .optional()
                .map_err(from_sqlite)?;
            Ok(agent.map(|a| unscoped(&scope, a)))
        })
        .await
    }

    async fn put_agents(&self, agents: &[Agent]) -> Result<(), StoreError> {
        let agents = agents.to_vec();
        let scope = self.scope.clone();
        self.with_conn(move |conn| {
            let tx = conn.transaction().map_err(from_sqlite)?;
            {
                let mut stmt = tx
                    .prepare_cached(&format!(
                        "INSERT OR REPLACE INTO agents ({AGENT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
                    ))
                    .map_err(from_sqlite)?;
                for a in &agents {
                    stmt.execute(params![
                        agent_key(&scope, &a.work_no),
                        a.account_code,
                        a.sip_account,
                        a.active,
                        a.first_seen,
                        a.last_seen,
                        a.inactive_since
                    ])
                    .map_err(from_sqlite)?;
                }
            }
            tx.commit().map_err(from_sqlite)
        })
        .await
    }

    async fn last_sync(&self) -> Result<Option<SyncState>, StoreError> {
        let scope = self.scope.clone();
        self.with_conn(move |conn| {
            let columns = "at, added, updated, deactivated, unchanged";
            if scope.is_empty() {
                conn.query_row(
                    &format!("SELECT {columns} FROM agent_sync WHERE id = 1"),
                    [],
                    sync_state,
                )
            } else {
                conn.query_row(
                    &format!("SELECT {columns} FROM tenant_agent_sync WHERE scope = ?1"),
                    params![scope],
                    sync_state,
                )
            }
            .optional()
            .map_err(from_sqlite)
        })
        .await
    }

    async fn put_last_sync(&self, state: &SyncState) -> Result<(), StoreError> {
        let state = state.clone();
        let scope = self.scope.clone();
        self.with_conn(move |conn| {
            let c = state.counts;
            let values = params![
                scope,
                state.at,
                c.added as i64,
                c.updated as i64,
                c.deactivated as i64,
                c.unchanged as i64
            ];
            if scope.is_empty() {
                conn.execute(
                    "INSERT OR REPLACE INTO agent_sync (id, at, added, updated, deactivated, unchanged)
                     VALUES (1, ?1, ?2, ?3, ?4, ?5)",
                    &values[1..],
                )
            } else {
                conn.execute(
                    "INSERT OR REPLACE INTO tenant_agent_sync
                     (scope, at, added, updated, deactivated, unchanged)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    values,
                )
            }
            .map_err(from_sqlite)?;
            Ok(())
        })
        .await
    }

    async fn link_account(&self, account: &str, work_no: &str) -> Result<(), StoreError> {
        let (account, work_no) = (account.to_string(), work_no.to_string());
        let scope = self.scope.clone();
        self.with_conn(move |conn| {
            if scope.is_empty() {
                conn.execute(
                    "INSERT OR REPLACE INTO account_links (account, work_no) VALUES (?1, ?2)",
                    params![account, work_no],
                )
            } else {
                conn.execute(
                    "INSERT OR REPLACE INTO tenant_account_links (scope, account, work_no)
                     VALUES (?1, ?2, ?3)",
                    params![scope, account, work_no],
                )
            }
            .map_err(from_sqlite)?;
            Ok(())
        })
        .await
    }

    async fn linked_work_no(&self, account: &str) -> Result<Option<String>, StoreError> {
        let account = account.to_string();
        let scope = self.scope.clone();
        self.with_conn(move |conn| {
            if scope.is_empty() {
                conn.query_row(
                    "SELECT work_no FROM account_links WHERE account = ?1",
                    params![account],
                    |r| r.get(0),
                )
            } else {
                conn.query_row(
                    "SELECT work_no FROM tenant_account_links WHERE scope = ?1 AND account = ?2",
                    params![scope, account],
                    |r| r.get(0),
                )
            }
            .optional()
            .map_err(from_sqlite)
        })
        .await
    }

    async fn sync_cursor(&self) -> Result<Option<String>, StoreError> {
        let scope = self.scope.clone();
        self.with_conn(move |conn| {
            let after: Option<String> = conn
                .query_row(
                    "SELECT after FROM agent_sync_cursor WHERE scope = ?1",
                    params![scope],
                    |r| r.get(0),
                )
                .optional()
                .map_err(from_sqlite)?;
            Ok(after.filter(|a| !a.is_empty()))
        })
        .await
    }

    async fn put_sync_cursor(&self, after: Option<&str>) -> Result<(), StoreError> {
        let scope = self.scope.clone();
        let after = after.unwrap_or_default().to_string();
        self.with_conn(move |conn| {
            conn.execute(
                "INSERT OR REPLACE INTO agent_sync_cursor (scope, after) VALUES (?1, ?2)",
                params![scope, after],
            )
            .map_err(from_sqlite)?;
            Ok(())
        })
        .await
    }
}
