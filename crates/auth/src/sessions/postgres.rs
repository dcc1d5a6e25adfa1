//! The `sessions` table in PostgreSQL.

use std::sync::Arc;

use super::{SessionKind, SessionRecord, SessionStore};
use crate::error::Result;
use crate::postgres::{Postgres, Sql, get};

pub(crate) const SCHEMA: &[&str] = &[r#"
CREATE TABLE sessions (
    session_digest BYTEA PRIMARY KEY,
    kind           TEXT NOT NULL,            -- login | portal
    data           TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    idle_until     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL
);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);
"#];

pub(crate) struct PostgresSessionStore {
    pg: Arc<Postgres>,
}

impl PostgresSessionStore {
    pub fn new(pg: Arc<Postgres>) -> PostgresSessionStore {
        PostgresSessionStore { pg }
    }
}

impl SessionStore for PostgresSessionStore {
    fn insert(&self, key: &[u8], record: &SessionRecord) -> Result<()> {
        self.pg.write(|conn| {
            conn.exec(
                "INSERT INTO sessions (session_digest, kind, data, created_at, idle_until, expires_at)
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[
                    &key,
                    &record.kind.code(),
                    &record.data,
                    &record.created_at,
                    &record.idle_until,
                    &record.expires_at,
                ],
            )?;
            Ok(())
        })
    }

    fn touch(
        &self,
        key: &[u8],
        kind: SessionKind,
        now: i64,
        idle_until: i64,
    ) -> Result<Option<String>> {
        // One statement: moving the deadline and reading the data cannot be torn apart.
        self.pg.write(|conn| {
            conn.row(
                "UPDATE sessions SET idle_until = LEAST($1, expires_at)
                 WHERE session_digest = $2 AND kind = $3 AND idle_until > $4 AND expires_at > $4
                 RETURNING data",
                &[&idle_until, &key, &kind.code(), &now],
            )?
            .map(|r| get(&r, 0))
            .transpose()
        })
    }

    fn update(&self, key: &[u8], kind: SessionKind, data: &str) -> Result<bool> {
        self.pg.write(|conn| {
            let changed = conn.exec(
                "UPDATE sessions SET data = $1 WHERE session_digest = $2 AND kind = $3",
                &[&data, &key, &kind.code()],
            )?;
            Ok(changed == 1)
        })
    }

    fn delete(&self, key: &[u8]) -> Result<()> {
        self.pg.write(|conn| {
            conn.exec("DELETE FROM sessions WHERE session_digest = $1", &[&key])?;
            Ok(())
        })
    }

    fn take(&self, key: &[u8], kind: SessionKind, now: i64) -> Result<Option<String>> {
        self.pg.write(|conn| {
            conn.row(
                "DELETE FROM sessions WHERE session_digest = $1 AND kind = $2
                 AND idle_until > $3 AND expires_at > $3
                 RETURNING data",
                &[&key, &kind.code(), &now],
            )?
            .map(|r| get(&r, 0))
            .transpose()
        })
    }

    fn delete_expired(&self, now: i64) -> Result<()> {
        self.pg.write(|conn| {
            conn.exec(
                "DELETE FROM sessions WHERE expires_at <= $1 OR idle_until <= $1",
                &[&now],
            )?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(kind: SessionKind, idle_until: i64, expires_at: i64) -> SessionRecord {
        SessionRecord {
            kind,
            data: "{}".into(),
            created_at: 0,
            idle_until,
            expires_at,
        }
    }

    #[test]
    fn a_session_is_taken_once_only_of_its_kind_and_only_while_live() {
        let store = PostgresSessionStore::new(crate::postgres::tests::database("sessions_take"));
        store
            .insert(b"link", &record(SessionKind::OperatorLink, 60, 60))
            .unwrap();
        assert!(
            store
                .take(b"link", SessionKind::Operator, 1)
                .unwrap()
                .is_none()
        );
        assert!(
            store
                .take(b"link", SessionKind::OperatorLink, 60)
                .unwrap()
                .is_none()
        );
        assert_eq!(
            store
                .take(b"link", SessionKind::OperatorLink, 1)
                .unwrap()
                .as_deref(),
            Some("{}")
        );
        assert!(
            store
                .take(b"link", SessionKind::OperatorLink, 1)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn sessions_live_until_idle_or_their_lifetime_and_keep_their_kind() {
        let store = PostgresSessionStore::new(crate::postgres::tests::database("sessions"));
        store
            .insert(b"k", &record(SessionKind::Login, 10, 30))
            .unwrap();
        assert!(
            store
                .touch(b"k", SessionKind::Portal, 5, 100)
                .unwrap()
                .is_none()
        );
        assert!(
            store
                .touch(b"k", SessionKind::Login, 5, 100)
                .unwrap()
                .is_some()
        );
        assert!(
            store
                .touch(b"k", SessionKind::Login, 29, 29)
                .unwrap()
                .is_some()
        );
        assert!(
            store
                .touch(b"k", SessionKind::Login, 30, 100)
                .unwrap()
                .is_none()
        );
        store
            .insert(b"idle", &record(SessionKind::Portal, 10, 100))
            .unwrap();
        store
            .insert(b"live", &record(SessionKind::Portal, 100, 100))
            .unwrap();
        store.delete_expired(10).unwrap();
        assert!(!store.update(b"idle", SessionKind::Portal, "x").unwrap());
        assert!(store.update(b"live", SessionKind::Portal, "x").unwrap());
        assert_eq!(
            store
                .touch(b"live", SessionKind::Portal, 11, 50)
                .unwrap()
                .as_deref(),
            Some("x")
        );
        store.delete(b"live").unwrap();
        assert!(
            store
                .touch(b"live", SessionKind::Portal, 11, 50)
                .unwrap()
                .is_none()
        );
    }
}
