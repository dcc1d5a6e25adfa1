//! Node settings in SQLite's `meta` table; job claims always succeed (one server per data
//! folder runs the jobs; the operator's commands never do).

use std::sync::Arc;

use rusqlite::{OptionalExtension, params};

use super::ClusterStore;
use crate::error::Result;
use crate::sqlite::Sqlite;

pub(crate) struct SqliteClusterStore {
    db: Arc<Sqlite>,
}

impl SqliteClusterStore {
    pub fn new(db: Arc<Sqlite>) -> SqliteClusterStore {
        SqliteClusterStore { db }
    }
}

impl ClusterStore for SqliteClusterStore {
    fn claim(&self, _job: &str, _slot: i64, _now: i64) -> Result<bool> {
        Ok(true)
    }

    fn forget_claims_before(&self, _before: i64) -> Result<()> {
        Ok(())
    }

    fn setting(&self, key: &str) -> Result<Option<String>> {
        self.db.run(|conn| {
            conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
                .optional()
        })
    }

    fn set_setting(&self, key: &str, value: &str) -> Result<()> {
        self.db.run(|conn| {
            conn.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![key, value],
            )?;
            Ok(())
        })
    }

    fn setting_or_insert(&self, key: &str, value: &str) -> Result<String> {
        self.db.run(|conn| {
            conn.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO NOTHING",
                params![key, value],
            )?;
            conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_keep_the_first_value_only_when_asked() {
        let store = SqliteClusterStore::new(Sqlite::in_memory());
        assert_eq!(store.setting("k").unwrap(), None);
        assert_eq!(store.setting_or_insert("k", "a").unwrap(), "a");
        assert_eq!(store.setting_or_insert("k", "b").unwrap(), "a");
        store.set_setting("k", "c").unwrap();
        assert_eq!(store.setting("k").unwrap().as_deref(), Some("c"));
        assert!(store.claim("job", 1, 1).unwrap() && store.claim("job", 1, 1).unwrap());
    }
}
