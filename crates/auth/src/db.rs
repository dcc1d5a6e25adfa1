//! The authorization database (`<data>/auth.db`, SQLite): schema and connection setup.
//!
//! It holds citizens (a keyed hash of the identity code, never the code), applications,
//! grants, authorization codes, refresh-token families, signing keys, sessions and the
//! append-only audit records. Bearer secrets are stored as digests only.

use std::path::Path;

use rusqlite::Connection;

use crate::error::Result;

/// Schema migrations, applied in order; `PRAGMA user_version` counts the applied ones.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE citizens (
    patient_id        TEXT PRIMARY KEY,
    identity_key      BLOB NOT NULL UNIQUE,   -- HMAC-SHA256(identity key file, HETU)
    birth_date        TEXT NOT NULL,
    terms_version     TEXT NOT NULL,
    terms_accepted_at INTEGER NOT NULL,
    created_at        INTEGER NOT NULL,
    patient_stored    INTEGER NOT NULL DEFAULT 0,
    professional_sharing INTEGER NOT NULL DEFAULT 0,
    professional_sharing_changed_at INTEGER
);

CREATE TABLE apps (
    app_id        TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    kind          TEXT NOT NULL,             -- wellbeing | professional
    client_type   TEXT NOT NULL,             -- public | confidential | private_key_jwt
    secret_digest BLOB,
    jwks          TEXT,
    jwks_uri      TEXT,
    redirect_uris TEXT NOT NULL,             -- JSON array
    scope         TEXT NOT NULL,
    status        TEXT NOT NULL,             -- sandbox | accepted | suspended | revoked
    contact       TEXT,
    created_at    INTEGER NOT NULL,
    status_changed_at INTEGER NOT NULL
);

CREATE TABLE grants (
    grant_id   TEXT PRIMARY KEY,
    patient_id TEXT NOT NULL REFERENCES citizens(patient_id),
    app_id     TEXT NOT NULL REFERENCES apps(app_id),
    scope      TEXT NOT NULL,
    status     TEXT NOT NULL,                -- active | withdrawn | superseded
    created_at INTEGER NOT NULL,
    ended_at   INTEGER
);
CREATE INDEX grants_by_patient ON grants(patient_id, app_id, status);

CREATE TABLE sessions (
    session_digest BLOB PRIMARY KEY,
    data           TEXT NOT NULL,            -- JSON SessionData
    expires_at     INTEGER NOT NULL
);

CREATE TABLE auth_requests (
    request_id TEXT PRIMARY KEY,
    data       TEXT NOT NULL,                -- JSON AuthorizeRequest
    expires_at INTEGER NOT NULL
);

CREATE TABLE auth_codes (
    code_digest    BLOB PRIMARY KEY,
    data           TEXT NOT NULL,            -- JSON CodeData
    expires_at     INTEGER NOT NULL,
    used_at        INTEGER,
    family_id      TEXT
);

CREATE TABLE token_families (
    family_id  TEXT PRIMARY KEY,
    grant_id   TEXT NOT NULL,
    app_id     TEXT NOT NULL,
    patient_id TEXT NOT NULL,
    scope      TEXT NOT NULL,
    status     TEXT NOT NULL,                -- active | revoked
    revoked_reason TEXT,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE INDEX families_by_grant ON token_families(grant_id);

CREATE TABLE refresh_tokens (
    token_digest BLOB PRIMARY KEY,
    family_id    TEXT NOT NULL REFERENCES token_families(family_id),
    generation   INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    used_at      INTEGER
);

CREATE TABLE revoked_access_tokens (
    jti        TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL
);

CREATE TABLE client_assertions (
    app_id     TEXT NOT NULL,
    jti        TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (app_id, jti)
);

CREATE TABLE signing_keys (
    kid         TEXT PRIMARY KEY,
    private_der BLOB NOT NULL,               -- PKCS#8
    x           TEXT NOT NULL,
    y           TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    retired_at  INTEGER
);

CREATE TABLE audit (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              TEXT NOT NULL UNIQUE,
    recorded_us     INTEGER NOT NULL,
    patient_id      TEXT,
    app_id          TEXT,
    app_name        TEXT,
    actor           TEXT NOT NULL,
    usage           TEXT NOT NULL,
    interaction     TEXT,
    resource_type   TEXT,
    search_criteria TEXT,
    status          INTEGER NOT NULL,
    error_code      TEXT,
    error_detail    TEXT,
    amount          INTEGER NOT NULL,
    resources       TEXT NOT NULL,           -- JSON array of "Type/id"
    client_address  TEXT,
    user_rights     TEXT,
    chain           BLOB NOT NULL            -- SHA-256(previous chain || this record)
);
CREATE INDEX audit_by_patient ON audit(patient_id, recorded_us);

CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
"#,
    r#"
-- Browser sessions of first-party clients (the citizen portal): the cookie value's digest
-- keys the client's own JSON; a session ends when idle past idle_until or at expires_at.
CREATE TABLE browser_sessions (
    session_digest BLOB PRIMARY KEY,
    data           TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    idle_until     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL
);
"#,
];

/// Opens (creating if needed) the database at `path` and brings its schema up to date.
pub fn open(path: &Path) -> Result<Connection> {
    let mut conn = Connection::open(path)?;
    configure(&conn)?;
    migrate(&mut conn)?;
    Ok(conn)
}

/// Opens another connection to an existing database (the audit writer's).
pub fn open_existing(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path)?;
    configure(&conn)?;
    Ok(conn)
}

fn configure(conn: &Connection) -> Result<()> {
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(())
}

fn migrate(conn: &mut Connection) -> Result<()> {
    let applied: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    for (index, script) in MIGRATIONS
        .iter()
        .enumerate()
        .skip(usize::try_from(applied).unwrap_or(0))
    {
        let tx = conn.transaction()?;
        tx.execute_batch(script)?;
        tx.pragma_update(None, "user_version", (index + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}

/// Applies the schema to an in-memory connection (unit tests of other modules).
#[cfg(test)]
pub(crate) fn migrate_for_tests(conn: &mut Connection) {
    migrate(conn).expect("schema applies");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_rows_cannot_be_changed_or_deleted() {
        let dir = std::env::temp_dir().join(format!("phr-auth-db-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let conn = open(&dir.join("auth.db")).unwrap();
        conn.execute(
            "INSERT INTO audit (id, recorded_us, actor, usage, status, amount, resources, chain)
             VALUES ('a', 1, 'x', 'read', 200, 0, '[]', x'00')",
            [],
        )
        .unwrap();
        assert!(conn.execute("UPDATE audit SET status = 500", []).is_err());
        assert!(conn.execute("DELETE FROM audit", []).is_err());
        let count: i64 = conn
            .query_row("SELECT count(*) FROM audit WHERE status = 200", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(count, 1);
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn reopening_keeps_schema_version() {
        let dir = std::env::temp_dir().join(format!("phr-auth-db-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        drop(open(&dir.join("auth.db")).unwrap());
        let conn = open(&dir.join("auth.db")).unwrap();
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .unwrap();
        assert_eq!(version, MIGRATIONS.len() as i64);
        std::fs::remove_dir_all(&dir).ok();
    }
}
