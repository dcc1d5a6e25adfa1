//! The `grants` table in PostgreSQL.

use std::sync::Arc;

use phr_store::postgres::PgError;
use postgres::Row;

use super::{GrantStore, Recorded, StoredGrant};
use crate::error::Result;
use crate::postgres::{Postgres, Sql, count, get};
use phr_store::postgres::pool::Conn;

pub(crate) const SCHEMA: &[&str] = &[r#"
CREATE TABLE grants (
    grant_id   TEXT PRIMARY KEY,
    patient_id TEXT NOT NULL,
    app_id     TEXT NOT NULL,
    scope      TEXT NOT NULL,
    status     TEXT NOT NULL,                -- active | withdrawn | superseded
    created_at BIGINT NOT NULL,
    ended_at   BIGINT,
    -- Breaks ties of created_at (seconds) in insertion order, as SQLite's rowid does.
    inserted   BIGINT NOT NULL DEFAULT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint
);
CREATE INDEX grants_by_patient ON grants (patient_id, app_id, status);
-- At most one active grant per citizen and application, whichever node records it.
CREATE UNIQUE INDEX grants_one_active ON grants (patient_id, app_id) WHERE status = 'active';
"#];

pub(crate) struct PostgresGrantStore {
    pg: Arc<Postgres>,
}

impl PostgresGrantStore {
    pub fn new(pg: Arc<Postgres>) -> PostgresGrantStore {
        PostgresGrantStore { pg }
    }
}

const COLUMNS: &str = "grant_id, patient_id, app_id, scope, status, created_at, ended_at";

fn grant_from_row(row: &Row) -> Result<StoredGrant, PgError> {
    Ok(StoredGrant {
        grant_id: get(row, 0)?,
        patient_id: get(row, 1)?,
        app_id: get(row, 2)?,
        scope: get(row, 3)?,
        status: get(row, 4)?,
        created_at: get(row, 5)?,
        ended_at: get(row, 6)?,
    })
}

fn active(conn: &mut Conn, patient_id: &str, app_id: &str) -> Result<Option<StoredGrant>, PgError> {
    conn.row(
        &format!(
            "SELECT {COLUMNS} FROM grants WHERE patient_id = $1 AND app_id = $2 AND status = 'active'"
        ),
        &[&patient_id, &app_id],
    )?
    .map(|r| grant_from_row(&r))
    .transpose()
}

impl GrantStore for PostgresGrantStore {
    fn get(&self, grant_id: &str) -> Result<Option<StoredGrant>> {
        self.pg.read(|conn| {
            conn.row(
                &format!("SELECT {COLUMNS} FROM grants WHERE grant_id = $1"),
                &[&grant_id],
            )?
            .map(|r| grant_from_row(&r))
            .transpose()
        })
    }

    fn active(&self, patient_id: &str, app_id: &str) -> Result<Option<StoredGrant>> {
        self.pg.read(|conn| active(conn, patient_id, app_id))
    }

    fn for_patient(&self, patient_id: &str) -> Result<Vec<StoredGrant>> {
        self.pg.read(|conn| {
            conn.rows(
                &format!(
                    "SELECT {COLUMNS} FROM grants WHERE patient_id = $1
                     ORDER BY status <> 'active', created_at DESC, inserted DESC"
                ),
                &[&patient_id],
            )?
            .iter()
            .map(grant_from_row)
            .collect()
        })
    }

    fn active_for_app(&self, app_id: &str) -> Result<Vec<StoredGrant>> {
        self.pg.read(|conn| {
            conn.rows(
                &format!(
                    "SELECT {COLUMNS} FROM grants WHERE app_id = $1 AND status = 'active'
                     ORDER BY created_at, inserted"
                ),
                &[&app_id],
            )?
            .iter()
            .map(grant_from_row)
            .collect()
        })
    }

    fn record(
        &self,
        patient_id: &str,
        app_id: &str,
        scope: &str,
        at: i64,
        keep: &dyn Fn(&str) -> bool,
    ) -> Result<Recorded> {
        self.pg.transaction(|conn| {
            // Consents of one citizen to one application are decided one at a time, on
            // whichever node they arrive (the lock ends with the transaction).
            conn.exec(
                "SELECT pg_advisory_xact_lock(hashtext($1), hashtext($2))",
                &[&patient_id, &app_id],
            )?;
            let current = active(conn, patient_id, app_id)?;
            let mut superseded = None;
            match current {
                Some(grant) if keep(&grant.scope) => {}
                current => {
                    if let Some(old) = current {
                        conn.exec(
                            "UPDATE grants SET status = 'superseded', ended_at = $1 WHERE grant_id = $2",
                            &[&at, &old.grant_id],
                        )?;
                        superseded = Some(old.grant_id);
                    }
                    conn.exec(
                        "INSERT INTO grants (grant_id, patient_id, app_id, scope, status, created_at)
                         VALUES ($1, $2, $3, $4, 'active', $5)",
                        &[&uuid::Uuid::new_v4().to_string(), &patient_id, &app_id, &scope, &at],
                    )?;
                }
            }
            let grant = active(conn, patient_id, app_id)?
                .ok_or_else(|| PgError::Corrupt("the recorded grant is not active".into()))?;
            Ok(Recorded { grant, superseded })
        })
    }

    fn withdraw(&self, patient_id: &str, grant_id: &str, at: i64) -> Result<Option<StoredGrant>> {
        self.pg.write(|conn| {
            conn.row(
                &format!(
                    "UPDATE grants SET status = 'withdrawn', ended_at = $1
                     WHERE grant_id = $2 AND patient_id = $3 AND status = 'active'
                     RETURNING {COLUMNS}"
                ),
                &[&at, &grant_id, &patient_id],
            )?
            .map(|r| {
                // The grant as it was: active until now.
                let mut grant = grant_from_row(&r)?;
                grant.status = "active".into();
                grant.ended_at = None;
                Ok(grant)
            })
            .transpose()
        })
    }

    fn count_active(&self) -> Result<u64> {
        self.pg.read(|conn| {
            let row = conn.row("SELECT count(*) FROM grants WHERE status = 'active'", &[])?;
            Ok(count(row.map(|r| get(&r, 0)).transpose()?.unwrap_or(0)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consents_recorded_on_two_nodes_at_once_leave_one_active_grant() {
        let pg = crate::postgres::tests::database("grants_race");
        let nodes: Vec<Arc<PostgresGrantStore>> = (0..2)
            .map(|_| Arc::new(PostgresGrantStore::new(pg.clone())))
            .collect();
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let store = nodes[i % 2].clone();
                std::thread::spawn(move || {
                    store
                        .record("p", "a", &format!("s{i}"), 1, &|_| false)
                        .unwrap()
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let grants = nodes[0].for_patient("p").unwrap();
        assert_eq!(grants.len(), 8);
        assert_eq!(grants.iter().filter(|g| g.is_active()).count(), 1);
        assert_eq!(nodes[1].count_active().unwrap(), 1);
    }

    #[test]
    fn record_keeps_supersedes_and_withdraw_ends() {
        let store = PostgresGrantStore::new(crate::postgres::tests::database("grants"));
        let first = store.record("p", "a", "s1", 1, &|_| false).unwrap();
        let kept = store.record("p", "a", "s1", 2, &|old| old == "s1").unwrap();
        assert_eq!(kept.grant, first.grant);
        let replaced = store.record("p", "a", "s2", 3, &|old| old == "s2").unwrap();
        assert_eq!(replaced.superseded, Some(first.grant.grant_id.clone()));
        let b = store.record("p", "b", "s", 3, &|_| false).unwrap().grant;
        // Same second: the later consent lists first.
        let ids: Vec<String> = store
            .for_patient("p")
            .unwrap()
            .into_iter()
            .map(|g| g.grant_id)
            .collect();
        assert_eq!(
            ids,
            [
                b.grant_id.clone(),
                replaced.grant.grant_id.clone(),
                first.grant.grant_id
            ]
        );
        assert_eq!(store.withdraw("q", &b.grant_id, 4).unwrap(), None);
        let withdrawn = store.withdraw("p", &b.grant_id, 4).unwrap().unwrap();
        assert_eq!(
            (withdrawn.status.as_str(), withdrawn.ended_at),
            ("active", None)
        );
        assert_eq!(store.withdraw("p", &b.grant_id, 5).unwrap(), None);
        let stored = store.get(&b.grant_id).unwrap().unwrap();
        assert_eq!(
            (stored.status.as_str(), stored.ended_at),
            ("withdrawn", Some(4))
        );
    }
}
