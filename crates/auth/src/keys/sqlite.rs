//! The `signing_keys` table in SQLite.

use std::sync::Arc;

use rusqlite::{TransactionBehavior, params};

use super::{KeyStore, StoredKey};
use crate::error::Result;
use crate::sqlite::Sqlite;

pub(crate) struct SqliteKeyStore {
    db: Arc<Sqlite>,
}

impl SqliteKeyStore {
    pub fn new(db: Arc<Sqlite>) -> SqliteKeyStore {
        SqliteKeyStore { db }
    }
}

impl KeyStore for SqliteKeyStore {
    fn newest_signing_created_at(&self) -> Result<Option<i64>> {
        self.db.run(|conn| {
            conn.query_row(
                "SELECT max(created_at) FROM signing_keys WHERE retired_at IS NULL",
                [],
                |r| r.get(0),
            )
        })
    }

    fn add_and_retire_others(&self, key: &StoredKey, now: i64) -> Result<()> {
        self.db.run(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.execute(
                "INSERT INTO signing_keys (kid, private_der, x, y, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![key.kid, key.private_der, key.x, key.y, key.created_at],
            )?;
            tx.execute(
                "UPDATE signing_keys SET retired_at = ?1 WHERE retired_at IS NULL AND kid <> ?2",
                params![now, key.kid],
            )?;
            tx.commit()
        })
    }

    fn usable(&self, retired_after: i64) -> Result<Vec<StoredKey>> {
        self.db.run(|conn| {
            let mut stmt = conn.prepare(
                "SELECT kid, private_der, x, y, created_at, retired_at FROM signing_keys
                 WHERE retired_at IS NULL OR retired_at > ?1 ORDER BY created_at DESC, rowid DESC",
            )?;
            stmt.query_map([retired_after], |r| {
                Ok(StoredKey {
                    kid: r.get(0)?,
                    private_der: r.get(1)?,
                    x: r.get(2)?,
                    y: r.get(3)?,
                    created_at: r.get(4)?,
                    retired_at: r.get(5)?,
                })
            })?
            .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(kid: &str, created_at: i64) -> StoredKey {
        StoredKey {
            kid: kid.into(),
            private_der: vec![1, 2, 3],
            x: "x".into(),
            y: "y".into(),
            created_at,
            retired_at: None,
        }
    }

    #[test]
    fn a_new_key_retires_the_others_which_stay_usable_for_a_while() {
        let store = SqliteKeyStore::new(Sqlite::in_memory());
        assert_eq!(store.newest_signing_created_at().unwrap(), None);
        store.add_and_retire_others(&key("a", 10), 10).unwrap();
        store.add_and_retire_others(&key("b", 20), 20).unwrap();
        assert_eq!(store.newest_signing_created_at().unwrap(), Some(20));
        let usable = store.usable(15).unwrap();
        let mut a = key("a", 10);
        a.retired_at = Some(20);
        assert_eq!(usable, vec![key("b", 20), a]);
        // Retired at 20: gone for a cut-off at 20.
        assert_eq!(store.usable(20).unwrap(), vec![key("b", 20)]);
    }
}
