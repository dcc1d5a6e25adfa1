//! The `sessions` table in SQLite.

use std::sync::Arc;

use rusqlite::{OptionalExtension, params};

use super::{SessionKind, SessionRecord, SessionStore};
use crate::error::Result;
use crate::sqlite::Sqlite;

pub(crate) struct SqliteSessionStore {
    db: Arc<Sqlite>,
}

impl SqliteSessionStore {
    pub fn new(db: Arc<Sqlite>) -> SqliteSessionStore {
        SqliteSessionStore { db }
    }
}

impl SessionStore for SqliteSessionStore {
    fn insert(&self, key: &[u8], record: &SessionRecord) -> Result<()> {
        self.db.run(|conn| {
            conn.execute(
                "INSERT INTO sessions (session_digest, kind, data, created_at, idle_until, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    key,
                    record.kind.code(),
                    record.data,
                    record.created_at,
                    record.idle_until,
                    record.expires_at
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
        self.db.run(|conn| {
            let data: Option<String> = conn
                .query_row(
                    "SELECT data FROM sessions WHERE session_digest = ?1 AND kind = ?2
                     AND idle_until > ?3 AND expires_at > ?3",
                    params![key, kind.code(), now],
                    |r| r.get(0),
                )
                .optional()?;
            if data.is_some() {
                conn.execute(
                    "UPDATE sessions SET idle_until = min(?1, expires_at) WHERE session_digest = ?2",
                    params![idle_until, key],
                )?;
            }
            Ok(data)
        })
    }

    fn update(&self, key: &[u8], kind: SessionKind, data: &str) -> Result<bool> {
        self.db.run(|conn| {
            let changed = conn.execute(
                "UPDATE sessions SET data = ?1 WHERE session_digest = ?2 AND kind = ?3",
                params![data, key, kind.code()],
            )?;
            Ok(changed == 1)
        })
    }

    fn delete(&self, key: &[u8]) -> Result<()> {
        self.db.run(|conn| {
            conn.execute("DELETE FROM sessions WHERE session_digest = ?1", [key])?;
            Ok(())
        })
    }

    fn take(&self, key: &[u8], kind: SessionKind, now: i64) -> Result<Option<String>> {
        self.db.run(|conn| {
            conn.query_row(
                "DELETE FROM sessions WHERE session_digest = ?1 AND kind = ?2
                 AND idle_until > ?3 AND expires_at > ?3
                 RETURNING data",
                params![key, kind.code(), now],
                |r| r.get(0),
            )
            .optional()
        })
    }

    fn delete_expired(&self, now: i64) -> Result<()> {
        self.db.run(|conn| {
            conn.execute(
                "DELETE FROM sessions WHERE expires_at <= ?1 OR idle_until <= ?1",
                [now],
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
    fn touch_extends_the_idle_deadline_up_to_the_lifetime() {
        let store = SqliteSessionStore::new(Sqlite::in_memory());
        store
            .insert(b"k", &record(SessionKind::Login, 10, 30))
            .unwrap();
        assert!(
            store
                .touch(b"k", SessionKind::Login, 5, 100)
                .unwrap()
                .is_some()
        );
        // The deadline moved to 30 (the lifetime), not 100.
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
    }

    #[test]
    fn expired_sessions_are_deleted_and_live_ones_kept() {
        let store = SqliteSessionStore::new(Sqlite::in_memory());
        store
            .insert(b"idle", &record(SessionKind::Portal, 10, 100))
            .unwrap();
        store
            .insert(b"old", &record(SessionKind::Portal, 100, 10))
            .unwrap();
        store
            .insert(b"live", &record(SessionKind::Portal, 100, 100))
            .unwrap();
        store.delete_expired(10).unwrap();
        assert!(!store.update(b"idle", SessionKind::Portal, "x").unwrap());
        assert!(!store.update(b"old", SessionKind::Portal, "x").unwrap());
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
