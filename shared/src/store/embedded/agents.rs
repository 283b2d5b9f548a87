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

#[async_trait]
impl AgentStore for EmbeddedStore {
    async fn list_agents(&self) -> Result<Vec<Agent>, StoreError> {
        self.with_conn(|conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {AGENT_COLUMNS} FROM agents ORDER BY work_no"
                ))
                .map_err(from_sqlite)?;
            let rows = stmt.query_map([], agent_from_row).map_err(from_sqlite)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(from_sqlite)
        })
        .await
    }

    async fn get_agent(&self, work_no: &str) -> Result<Option<Agent>, StoreError> {
        let work_no = work_no.to_string();
        self.with_conn(move |conn| {
            conn.prepare_cached(&format!(
                "SELECT {AGENT_COLUMNS} FROM agents WHERE work_no = ?1"
            ))
            .map_err(from_sqlite)?
            .query_row(params![work_no], agent_from_row)
            .optional()
            .map_err(from_sqlite)
        })
        .await
    }

    async fn put_agents(&self, agents: &[Agent]) -> Result<(), StoreError> {
        let agents = agents.to_vec();
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
                        a.work_no,
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
        self.with_conn(|conn| {
            conn.query_row(
                "SELECT at, added, updated, deactivated, unchanged FROM agent_sync WHERE id = 1",
                [],
                |r| {
                    Ok(SyncState {
                        at: r.get(0)?,
                        counts: SyncCounts {
                            added: r.get::<_, i64>(1)? as usize,
                            updated: r.get::<_, i64>(2)? as usize,
                            deactivated: r.get::<_, i64>(3)? as usize,
                            unchanged: r.get::<_, i64>(4)? as usize,
                        },
                    })
                },
            )
            .optional()
            .map_err(from_sqlite)
        })
        .await
    }

    async fn put_last_sync(&self, state: &SyncState) -> Result<(), StoreError> {
        let state = state.clone();
        self.with_conn(move |conn| {
            let c = state.counts;
            conn.execute(
                "INSERT OR REPLACE INTO agent_sync (id, at, added, updated, deactivated, unchanged)
                 VALUES (1, ?1, ?2, ?3, ?4, ?5)",
                params![
                    state.at,
                    c.added as i64,
                    c.updated as i64,
                    c.deactivated as i64,
                    c.unchanged as i64
                ],
            )
            .map_err(from_sqlite)?;
            Ok(())
        })
        .await
    }

    async fn link_account(&self, account: &str, work_no: &str) -> Result<(), StoreError> {
        let (account, work_no) = (account.to_string(), work_no.to_string());
        self.with_conn(move |conn| {
            conn.execute(
                "INSERT OR REPLACE INTO account_links (account, work_no) VALUES (?1, ?2)",
                params![account, work_no],
            )
            .map_err(from_sqlite)?;
            Ok(())
        })
        .await
    }

    async fn linked_work_no(&self, account: &str) -> Result<Option<String>, StoreError> {
        let account = account.to_string();
        self.with_conn(move |conn| {
            conn.query_row(
                "SELECT work_no FROM account_links WHERE account = ?1",
                params![account],
                |r| r.get(0),
            )
            .optional()
            .map_err(from_sqlite)
        })
        .await
    }
}
