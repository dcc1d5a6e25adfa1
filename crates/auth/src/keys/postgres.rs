//! The `signing_keys` table in PostgreSQL.

use std::sync::Arc;

use super::{KeyStore, StoredKey};
use crate::error::Result;
use crate::postgres::{Postgres, Sql, get};

pub(crate) const SCHEMA: &[&str] = &[r#"
CREATE TABLE signing_keys (
    kid         TEXT PRIMARY KEY,
    private_der BYTEA NOT NULL,              -- PKCS#8
    x           TEXT NOT NULL,
    y           TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    retired_at  BIGINT,
    inserted    BIGINT NOT NULL DEFAULT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint
);
"#];

pub(crate) struct PostgresKeyStore {
    pg: Arc<Postgres>,
}

impl PostgresKeyStore {
    pub fn new(pg: Arc<Postgres>) -> PostgresKeyStore {
        PostgresKeyStore { pg }
    }
}

impl KeyStore for PostgresKeyStore {
    fn newest_signing_created_at(&self) -> Result<Option<i64>> {
        self.pg.read(|conn| {
            let row = conn.row(
                "SELECT max(created_at) FROM signing_keys WHERE retired_at IS NULL",
                &[],
            )?;
            Ok(row
                .map(|r| get::<Option<i64>>(&r, 0))
                .transpose()?
                .flatten())
        })
    }

    fn add_and_retire_others(&self, key: &StoredKey, now: i64) -> Result<()> {
        self.pg.transaction(|conn| {
            conn.exec(
                "INSERT INTO signing_keys (kid, private_der, x, y, created_at) VALUES ($1, $2, $3, $4, $5)",
                &[&key.kid, &key.private_der, &key.x, &key.y, &key.created_at],
            )?;
            conn.exec(
                "UPDATE signing_keys SET retired_at = $1 WHERE retired_at IS NULL AND kid <> $2",
                &[&now, &key.kid],
            )?;
            Ok(())
        })
    }

    fn usable(&self, retired_after: i64) -> Result<Vec<StoredKey>> {
        self.pg.read(|conn| {
            conn.rows(
                "SELECT kid, private_der, x, y, created_at, retired_at FROM signing_keys
                 WHERE retired_at IS NULL OR retired_at > $1 ORDER BY created_at DESC, inserted DESC",
                &[&retired_after],
            )?
            .iter()
            .map(|r| {
                Ok(StoredKey {
                    kid: get(r, 0)?,
                    private_der: get(r, 1)?,
                    x: get(r, 2)?,
                    y: get(r, 3)?,
                    created_at: get(r, 4)?,
                    retired_at: get(r, 5)?,
                })
            })
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
        let store = PostgresKeyStore::new(crate::postgres::tests::database("keys"));
        assert_eq!(store.newest_signing_created_at().unwrap(), None);
        store.add_and_retire_others(&key("a", 10), 10).unwrap();
        store.add_and_retire_others(&key("b", 20), 20).unwrap();
        assert_eq!(store.newest_signing_created_at().unwrap(), Some(20));
        let mut a = key("a", 10);
        a.retired_at = Some(20);
        assert_eq!(store.usable(15).unwrap(), vec![key("b", 20), a]);
        assert_eq!(store.usable(20).unwrap(), vec![key("b", 20)]);
    }
}
