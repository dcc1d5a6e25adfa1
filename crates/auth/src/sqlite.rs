//! The SQLite engine of the authorization state (`<data>/auth.db`): the connection every
//! SQLite store shares, and the versioned schema.
//!
//! It holds citizens (a keyed hash of the identity code, never the code), applications,
//! grants, authorization codes, refresh-token families, signing keys, sessions and the
//! append-only audit records. Bearer secrets are stored as digests only.
//!
//! Owns only the connection and the schema: every statement on a table lives in the
//! `sqlite.rs` beside the module that owns the table (`apps/sqlite.rs`, `audit/sqlite.rs`,
//! …), behind that module's storage trait. Never add a query here.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::Connection;

use crate::error::{AuthError, Result};

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
    r#"
-- One session store for the authorization pages and the portal: `kind` keeps their records
-- apart. Login-page sessions in flight at the upgrade are carried over.
CREATE TABLE sessions_v3 (
    session_digest BLOB PRIMARY KEY,
    kind           TEXT NOT NULL,            -- login | portal
    data           TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    idle_until     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL
);
INSERT INTO sessions_v3 (session_digest, kind, data, created_at, idle_until, expires_at)
    SELECT session_digest, 'login', data, expires_at, expires_at, expires_at FROM sessions;
INSERT INTO sessions_v3 (session_digest, kind, data, created_at, idle_until, expires_at)
    SELECT session_digest, 'portal', data, created_at, idle_until, expires_at FROM browser_sessions;
DROP TABLE sessions;
DROP TABLE browser_sessions;
ALTER TABLE sessions_v3 RENAME TO sessions;
CREATE INDEX sessions_by_expiry ON sessions(expires_at);

-- Never written: authorization requests live in the login session.
DROP TABLE auth_requests;

-- The audit hash chain names the encoding each record was hashed in (1: the JSON of the
-- first release; 2: the canonical field list of `audit/encoding.rs`), and records carry the
-- request's route template and method.
ALTER TABLE audit ADD COLUMN encoding INTEGER NOT NULL DEFAULT 1;
ALTER TABLE audit ADD COLUMN route TEXT;
ALTER TABLE audit ADD COLUMN method TEXT;
"#,
    r#"
CREATE TABLE organisations (
    oid        TEXT PRIMARY KEY,
    name_fi    TEXT NOT NULL,
    name_sv    TEXT NOT NULL,
    name_en    TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
ALTER TABLE apps ADD COLUMN org TEXT;        -- the organisation of a professional app
"#,
    r#"
ALTER TABLE apps ADD COLUMN certificate_oid TEXT; -- Subject serialNumber of its client certificate
"#,
    r#"
-- The public application list and joint testing: who makes the app and where it runs, the
-- data contents it is accepted for in production, and the test rounds per content.
ALTER TABLE apps ADD COLUMN supplier TEXT;
ALTER TABLE apps ADD COLUMN platform TEXT;      -- web | ios | android | server
CREATE TABLE app_contents (
    app_id      TEXT NOT NULL REFERENCES apps(app_id),
    content     TEXT NOT NULL,                 -- catalogue code, e.g. blood-pressure
    can_read    INTEGER NOT NULL,
    can_write   INTEGER NOT NULL,
    accepted_at INTEGER NOT NULL,
    PRIMARY KEY (app_id, content)
);
CREATE TABLE app_rounds (
    app_id  TEXT NOT NULL REFERENCES apps(app_id),
    content TEXT NOT NULL,
    round   INTEGER NOT NULL,                  -- 1..3 per content
    at      INTEGER NOT NULL,
    outcome TEXT NOT NULL,                     -- pass | fail
    note    TEXT,
    PRIMARY KEY (app_id, content, round)
);
"#,
    r#"
-- What applications did in the sandbox, for the acceptance checks (30 days, no identity
-- codes): see traffic/mod.rs.
CREATE TABLE sandbox_traffic (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    app_id        TEXT NOT NULL,
    at_us         INTEGER NOT NULL,
    kind          TEXT NOT NULL,                -- request | resource
    interaction   TEXT NOT NULL,
    resource_type TEXT,
    status        INTEGER NOT NULL,
    content       TEXT,
    detail        TEXT NOT NULL                 -- JSON
);
CREATE INDEX sandbox_traffic_by_app ON sandbox_traffic (app_id, at_us);
CREATE INDEX sandbox_traffic_by_time ON sandbox_traffic (at_us);
"#,
    r#"
-- A professional's access names the professional, their organisation, the care relationship
-- it was allowed under and the data contents read (JSON array of catalogue keys).
ALTER TABLE audit ADD COLUMN professional_id TEXT;
ALTER TABLE audit ADD COLUMN professional_name TEXT;
ALTER TABLE audit ADD COLUMN org_oid TEXT;
ALTER TABLE audit ADD COLUMN org_name TEXT;
ALTER TABLE audit ADD COLUMN care_id TEXT;
ALTER TABLE audit ADD COLUMN contents TEXT NOT NULL DEFAULT '[]';
"#,
    r#"
-- Who registered an application in the developer console: it is shown to them only.
ALTER TABLE apps ADD COLUMN developer TEXT;
"#,
    r#"
-- The FHIR versions an application uses ('r4', 'stu3' or 'r4 stu3'); applications
-- registered before STU3 was served keep both.
ALTER TABLE apps ADD COLUMN fhir_versions TEXT NOT NULL DEFAULT 'r4 stu3';
"#,
    r#"
-- Audit records in their compact form (audit/packed.rs): the texts that repeat from record
-- to record once in audit_names, a record's other fields in one body. The records of the
-- wide audit table are moved over in the same transaction (`AUDIT_LOG_MIGRATION`).
CREATE TABLE audit_names (
    id   INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);
CREATE TABLE audit_log (
    seq         INTEGER PRIMARY KEY,       -- position in the chain
    recorded_us INTEGER NOT NULL,
    patient     INTEGER,                   -- audit_names numbers
    app         INTEGER,
    app_name    INTEGER,
    usage       INTEGER NOT NULL,
    encoding    INTEGER NOT NULL,          -- of the chain (audit/encoding.rs)
    body        BLOB NOT NULL,
    chain       BLOB NOT NULL              -- SHA-256(previous chain || encoding of the record)
);
CREATE INDEX audit_log_by_patient ON audit_log(patient, recorded_us);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
CREATE TRIGGER audit_names_no_update BEFORE UPDATE ON audit_names
BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
CREATE TRIGGER audit_names_no_delete BEFORE DELETE ON audit_names
BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
"#,
];

/// The migration (its index in [`MIGRATIONS`]) after which the wide audit table's records
/// are moved into `audit_log`.
const AUDIT_LOG_MIGRATION: usize = 10;

/// The SQLite connection the stores of one process share. Statements are short; the mutex
/// serialises them, and WAL lets other processes (the operator CLI) read and write meanwhile.
pub(crate) struct Sqlite {
    conn: Mutex<Connection>,
}

impl From<rusqlite::Error> for AuthError {
    fn from(error: rusqlite::Error) -> Self {
        AuthError::Storage(error.to_string())
    }
}

impl Sqlite {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    /// Refuses a schema newer than this build knows.
    pub fn open(path: &Path) -> Result<Arc<Sqlite>> {
        let mut conn = Connection::open(path)?;
        configure(&conn)?;
        migrate(&mut conn)?;
        Ok(Arc::new(Sqlite {
            conn: Mutex::new(conn),
        }))
    }

    /// Another connection to a database [`Sqlite::open`] has set up (the audit writer's).
    pub fn open_existing(path: &Path) -> Result<Arc<Sqlite>> {
        let conn = Connection::open(path)?;
        configure(&conn)?;
        Ok(Arc::new(Sqlite {
            conn: Mutex::new(conn),
        }))
    }

    /// A private in-memory database with the schema (unit tests of the stores).
    #[cfg(test)]
    pub fn in_memory() -> Arc<Sqlite> {
        let mut conn = Connection::open_in_memory().expect("in-memory SQLite");
        migrate(&mut conn).expect("schema applies");
        Arc::new(Sqlite {
            conn: Mutex::new(conn),
        })
    }

    /// Runs `f` on the connection.
    pub fn run<T>(&self, f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>) -> Result<T> {
        Ok(f(&mut self.lock())?)
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite consistent (transactions roll back),
        // so a poisoned lock is still usable.
        self.conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
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
    let known = MIGRATIONS.len();
    let applied = usize::try_from(applied).unwrap_or(0);
    if applied > known {
        return Err(AuthError::Config(format!(
            "auth.db has schema version {applied}; this build knows up to {known}"
        )));
    }
    for (index, script) in MIGRATIONS.iter().enumerate().skip(applied) {
        let tx = conn.transaction()?;
        tx.execute_batch(script)?;
        if index == AUDIT_LOG_MIGRATION {
            crate::audit::move_wide_sqlite_table(&tx)?;
        }
        tx.pragma_update(
            None,
            "user_version",
            i64::try_from(index + 1).unwrap_or(i64::MAX),
        )?;
        tx.commit()?;
    }
    Ok(())
}

/// A database with the schema up to (and including) migration `version`, for tests that
/// write rows exactly as an older release did.
#[cfg(test)]
pub(crate) fn open_at_version(path: &Path, version: usize) -> Connection {
    let mut conn = Connection::open(path).expect("opens");
    configure(&conn).expect("configures");
    for (index, script) in MIGRATIONS.iter().enumerate().take(version) {
        let tx = conn.transaction().expect("transaction");
        tx.execute_batch(script).expect("migration applies");
        tx.pragma_update(None, "user_version", (index + 1) as i64)
            .expect("version");
        tx.commit().expect("commit");
    }
    conn
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_db() -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth.db");
        (dir, path)
    }

    #[test]
    fn audit_rows_cannot_be_changed_or_deleted() {
        let (_dir, path) = temp_db();
        let db = Sqlite::open(&path).unwrap();
        db.run(|conn| {
            conn.execute("INSERT INTO audit_names (name) VALUES ('p')", [])?;
            conn.execute(
                "INSERT INTO audit_log (recorded_us, patient, usage, encoding, body, chain)
                 VALUES (1, 1, 1, 2, x'01', x'00')",
                [],
            )?;
            for change in [
                "UPDATE audit_log SET usage = 2",
                "DELETE FROM audit_log",
                "UPDATE audit_names SET name = 'q'",
                "DELETE FROM audit_names",
            ] {
                assert!(conn.execute(change, []).is_err(), "{change}");
            }
            let count: i64 = conn.query_row(
                "SELECT count(*) FROM audit_log JOIN audit_names ON id = patient WHERE name = 'p'",
                [],
                |r| r.get(0),
            )?;
            assert_eq!(count, 1);
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn reopening_keeps_schema_version() {
        let (_dir, path) = temp_db();
        drop(Sqlite::open(&path).unwrap());
        let db = Sqlite::open(&path).unwrap();
        let version: i64 = db
            .run(|conn| conn.pragma_query_value(None, "user_version", |row| row.get(0)))
            .unwrap();
        assert_eq!(version, MIGRATIONS.len() as i64);
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let (_dir, path) = temp_db();
        drop(Sqlite::open(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        drop(conn);
        let error = Sqlite::open(&path).err().unwrap().to_string();
        assert!(error.contains("schema version 99"), "{error}");
    }

    #[test]
    fn sessions_of_both_kinds_survive_the_merge_into_one_store() {
        let (_dir, path) = temp_db();
        let conn = open_at_version(&path, 2);
        conn.execute(
            "INSERT INTO sessions (session_digest, data, expires_at) VALUES (x'01', '{}', 100)",
            [],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO browser_sessions (session_digest, data, created_at, idle_until, expires_at)
             VALUES (x'02', '{\"p\":1}', 10, 50, 200)",
            [],
        )
        .unwrap();
        drop(conn);
        let db = Sqlite::open(&path).unwrap();
        let rows: Vec<(String, i64, i64)> = db
            .run(|conn| {
                let mut stmt = conn.prepare(
                    "SELECT kind, idle_until, expires_at FROM sessions ORDER BY session_digest",
                )?;
                stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                    .collect()
            })
            .unwrap();
        assert_eq!(
            rows,
            vec![("login".into(), 100, 100), ("portal".into(), 50, 200)]
        );
    }
}
