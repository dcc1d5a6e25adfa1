//! The `grants` table in SQLite.

use std::sync::Arc;

use rusqlite::{OptionalExtension, TransactionBehavior, params};

use super::{GrantStore, Recorded, StoredGrant};
use crate::error::Result;
use crate::sqlite::Sqlite;

pub(crate) struct SqliteGrantStore {
    db: Arc<Sqlite>,
}

impl SqliteGrantStore {
    pub fn new(db: Arc<Sqlite>) -> SqliteGrantStore {
        SqliteGrantStore { db }
    }
}

const COLUMNS: &str = "grant_id, patient_id, app_id, scope, status, created_at, ended_at";

fn grant_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<StoredGrant> {
    Ok(StoredGrant {
        grant_id: row.get(0)?,
        patient_id: row.get(1)?,
        app_id: row.get(2)?,
        scope: row.get(3)?,
        status: row.get(4)?,
        created_at: row.get(5)?,
        ended_at: row.get(6)?,
    })
}

fn active(
    conn: &rusqlite::Connection,
    patient_id: &str,
    app_id: &str,
) -> rusqlite::Result<Option<StoredGrant>> {
    conn.query_row(
        &format!(
            "SELECT {COLUMNS} FROM grants WHERE patient_id = ?1 AND app_id = ?2 AND status = 'active'"
        ),
        params![patient_id, app_id],
        grant_from_row,
    )
    .optional()
}

impl GrantStore for SqliteGrantStore {
    fn get(&self, grant_id: &str) -> Result<Option<StoredGrant>> {
        self.db.run(|conn| {
            conn.query_row(
                &format!("SELECT {COLUMNS} FROM grants WHERE grant_id = ?1"),
                [grant_id],
                grant_from_row,
            )
            .optional()
        })
    }

    fn active(&self, patient_id: &str, app_id: &str) -> Result<Option<StoredGrant>> {
        self.db.run(|conn| active(conn, patient_id, app_id))
    }

    fn for_patient(&self, patient_id: &str) -> Result<Vec<StoredGrant>> {
        self.db.run(|conn| {
            let mut stmt = conn.prepare(&format!(
                "SELECT {COLUMNS} FROM grants WHERE patient_id = ?1
                 ORDER BY status <> 'active', created_at DESC, rowid DESC"
            ))?;
            stmt.query_map([patient_id], grant_from_row)?.collect()
        })
    }

    fn active_for_app(&self, app_id: &str) -> Result<Vec<StoredGrant>> {
        self.db.run(|conn| {
            let mut stmt = conn.prepare(&format!(
                "SELECT {COLUMNS} FROM grants WHERE app_id = ?1 AND status = 'active'
                 ORDER BY created_at, rowid"
            ))?;
            stmt.query_map([app_id], grant_from_row)?.collect()
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
        self.db.run(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let current = active(&tx, patient_id, app_id)?;
            let mut superseded = None;
            match current {
                Some(grant) if keep(&grant.scope) => {}
                current => {
                    if let Some(old) = current {
                        tx.execute(
                            "UPDATE grants SET status = 'superseded', ended_at = ?1 WHERE grant_id = ?2",
                            params![at, old.grant_id],
                        )?;
                        superseded = Some(old.grant_id);
                    }
                    tx.execute(
                        "INSERT INTO grants (grant_id, patient_id, app_id, scope, status, created_at)
                         VALUES (?1, ?2, ?3, ?4, 'active', ?5)",
                        params![uuid::Uuid::new_v4().to_string(), patient_id, app_id, scope, at],
                    )?;
                }
            }
            let grant = active(&tx, patient_id, app_id)?
                .ok_or(rusqlite::Error::QueryReturnedNoRows)?;
            tx.commit()?;
            Ok(Recorded { grant, superseded })
        })
    }

    fn withdraw(&self, patient_id: &str, grant_id: &str, at: i64) -> Result<Option<StoredGrant>> {
        self.db.run(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let grant = tx
                .query_row(
                    &format!(
                        "SELECT {COLUMNS} FROM grants WHERE grant_id = ?1 AND patient_id = ?2 AND status = 'active'"
                    ),
                    params![grant_id, patient_id],
                    grant_from_row,
                )
                .optional()?;
            if grant.is_some() {
                tx.execute(
                    "UPDATE grants SET status = 'withdrawn', ended_at = ?1 WHERE grant_id = ?2",
                    params![at, grant_id],
                )?;
            }
            tx.commit()?;
            Ok(grant)
        })
    }

    fn count_active(&self) -> Result<u64> {
        self.db.run(|conn| {
            let n: i64 = conn.query_row(
                "SELECT count(*) FROM grants WHERE status = 'active'",
                [],
                |r| r.get(0),
            )?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
    }
}

/// A store whose database knows the citizens `p` and `q` and the apps `a`, `b` and `app`
/// (grants reference both).
#[cfg(test)]
pub(super) fn test_store() -> SqliteGrantStore {
    let db = Sqlite::in_memory();
    // Grants reference their citizen and application.
    db.run(|conn| {
            conn.execute_batch(
                "INSERT INTO citizens (patient_id, identity_key, birth_date, terms_version, terms_accepted_at, created_at)
                     VALUES ('p', x'01', '1990-01-01', 't', 0, 0), ('q', x'02', '1990-01-01', 't', 0, 0);
                 INSERT INTO apps (app_id, name, kind, client_type, redirect_uris, scope, status, created_at, status_changed_at)
                     VALUES ('a', 'A', 'wellbeing', 'public', '[]', '', 'accepted', 0, 0),
                            ('b', 'B', 'wellbeing', 'public', '[]', '', 'accepted', 0, 0),
                            ('app', 'App', 'wellbeing', 'public', '[]', '', 'accepted', 0, 0);",
            )
        })
        .unwrap();
    SqliteGrantStore::new(db)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> SqliteGrantStore {
        test_store()
    }

    #[test]
    fn record_keeps_or_supersedes_as_told() {
        let store = store();
        let first = store.record("p", "a", "s1", 1, &|_| false).unwrap();
        assert_eq!(first.superseded, None);
        assert_eq!(
            (first.grant.scope.as_str(), first.grant.status.as_str()),
            ("s1", "active")
        );
        let kept = store.record("p", "a", "s1", 2, &|old| old == "s1").unwrap();
        assert_eq!(
            kept,
            Recorded {
                grant: first.grant.clone(),
                superseded: None
            }
        );
        let replaced = store.record("p", "a", "s2", 3, &|old| old == "s2").unwrap();
        assert_eq!(replaced.superseded, Some(first.grant.grant_id.clone()));
        let old = store.get(&first.grant.grant_id).unwrap().unwrap();
        assert_eq!((old.status.as_str(), old.ended_at), ("superseded", Some(3)));
        assert_eq!(store.active("p", "a").unwrap(), Some(replaced.grant));
        assert_eq!(store.count_active().unwrap(), 1);
    }

    #[test]
    fn a_citizens_grants_list_active_first_then_newest() {
        let store = store();
        let old = store.record("p", "a", "s", 1, &|_| false).unwrap().grant;
        store.withdraw("p", &old.grant_id, 2).unwrap();
        let b = store.record("p", "b", "s", 3, &|_| false).unwrap().grant;
        let a = store.record("p", "a", "s", 4, &|_| false).unwrap().grant;
        store.record("q", "a", "s", 5, &|_| false).unwrap();
        let ids: Vec<String> = store
            .for_patient("p")
            .unwrap()
            .into_iter()
            .map(|g| g.grant_id)
            .collect();
        assert_eq!(ids, [a.grant_id, b.grant_id, old.grant_id]);
    }

    #[test]
    fn withdraw_needs_the_citizen_and_an_active_grant() {
        let store = store();
        let grant = store.record("p", "a", "s", 1, &|_| false).unwrap().grant;
        assert_eq!(store.withdraw("q", &grant.grant_id, 2).unwrap(), None);
        let withdrawn = store.withdraw("p", &grant.grant_id, 2).unwrap().unwrap();
        assert_eq!(withdrawn.grant_id, grant.grant_id);
        assert_eq!(store.withdraw("p", &grant.grant_id, 3).unwrap(), None);
        let stored = store.get(&grant.grant_id).unwrap().unwrap();
        assert_eq!(
            (stored.status.as_str(), stored.ended_at),
            ("withdrawn", Some(2))
        );
    }
}
