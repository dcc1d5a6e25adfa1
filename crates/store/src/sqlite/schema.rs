//! The database schema and its migrations: plain SQL, applied in order, recorded in `meta`.
//!
//! Every table that holds patient data starts its key with `pid` (the interned patient
//! compartment; 0 = no compartment), then the resource type and the search parameter, so a
//! compartment query is one index range scan. The same DDL runs on PostgreSQL with
//! `INTEGER` -> `BIGINT`, `BLOB` -> `BYTEA`, `REAL` -> `DOUBLE PRECISION`, `WITHOUT ROWID`
//! dropped (PG tables are heaps; the primary key becomes the btree index) and
//! `AUTOINCREMENT` -> `GENERATED ALWAYS AS IDENTITY`. Distribution (Citus) is by `pid`.

use rusqlite::{Connection, OptionalExtension, params};

use super::EngineError;

/// `seq_to` of an index row whose version is still current.
pub const CURRENT: i64 = i64::MAX;

/// Migrations in order; `meta.schema_version` is the number applied so far.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value BLOB NOT NULL
);

-- Interned names. Ids are never reused (AUTOINCREMENT), so a cached id stays valid.
CREATE TABLE patients (pid INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE);
CREATE TABLE types    (tid INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE);
CREATE TABLE params   (param INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE);
CREATE TABLE systems  (sys INTEGER PRIMARY KEY AUTOINCREMENT, uri TEXT NOT NULL UNIQUE);
-- Which index table each (type, parameter) was written to: sorting and :missing need it.
CREATE TABLE param_kinds (
    tid   INTEGER NOT NULL,
    param INTEGER NOT NULL,
    kind  INTEGER NOT NULL,
    PRIMARY KEY (tid, param, kind)
) WITHOUT ROWID;

-- The widest period (high - low) ever indexed per compartment, type and date parameter:
-- bounds how far before a searched period a matching value can start, so date range scans
-- stay short.
CREATE TABLE date_spans (
    pid   INTEGER NOT NULL,
    tid   INTEGER NOT NULL,
    param INTEGER NOT NULL,
    span  INTEGER NOT NULL,
    PRIMARY KEY (pid, tid, param)
) WITHOUT ROWID;

-- One row per resource: where its current version is.
CREATE TABLE resources (
    rid        INTEGER PRIMARY KEY,
    tid        INTEGER NOT NULL,
    id         TEXT NOT NULL,
    pid        INTEGER NOT NULL,
    version    INTEGER NOT NULL,
    seq        INTEGER NOT NULL,
    deleted    INTEGER NOT NULL,
    created_by TEXT,
    UNIQUE (tid, id)
);

-- Every version ever written (until erased). `seq` is a global, never reused commit
-- sequence: a search snapshot is "every version with seq <= S that was current at S".
-- `manifest` lists the version's index rows (see rows.rs) so they can be found by key
-- when the version is superseded or erased, and read for _include.
CREATE TABLE versions (
    seq          INTEGER PRIMARY KEY,
    rid          INTEGER NOT NULL,
    version      INTEGER NOT NULL,
    tid          INTEGER NOT NULL,
    pid          INTEGER NOT NULL,
    last_updated INTEGER NOT NULL,
    deleted      INTEGER NOT NULL,
    app          TEXT,
    body         BLOB NOT NULL,
    manifest     BLOB NOT NULL
);
CREATE UNIQUE INDEX versions_by_resource ON versions (rid, version);
CREATE INDEX versions_by_compartment ON versions (pid, seq);
CREATE INDEX versions_by_type ON versions (tid, seq);

-- Superseded versions whose index rows are still kept for open page cursors; pruned after
-- the cursor lifetime.
CREATE TABLE superseded (
    seq_to INTEGER NOT NULL,
    seq    INTEGER NOT NULL,
    at     INTEGER NOT NULL,
    PRIMARY KEY (seq_to, seq)
) WITHOUT ROWID;

-- Index tables. Common columns: pid, tid, param, seq (the version), seq_to (the seq of the
-- version that replaced it; CURRENT while current). A row is visible at snapshot S when
-- seq <= S AND seq_to > S.
CREATE TABLE idx_token (
    pid INTEGER NOT NULL, tid INTEGER NOT NULL, param INTEGER NOT NULL,
    code TEXT NOT NULL, seq INTEGER NOT NULL, sys INTEGER NOT NULL,
    seq_to INTEGER NOT NULL, text TEXT,
    PRIMARY KEY (pid, tid, param, code, seq, sys)
) WITHOUT ROWID;

CREATE TABLE idx_string (
    pid INTEGER NOT NULL, tid INTEGER NOT NULL, param INTEGER NOT NULL,
    norm TEXT NOT NULL, seq INTEGER NOT NULL, exact TEXT NOT NULL,
    seq_to INTEGER NOT NULL,
    PRIMARY KEY (pid, tid, param, norm, seq, exact)
) WITHOUT ROWID;

CREATE TABLE idx_date (
    pid INTEGER NOT NULL, tid INTEGER NOT NULL, param INTEGER NOT NULL,
    low INTEGER NOT NULL, seq INTEGER NOT NULL, high INTEGER NOT NULL,
    seq_to INTEGER NOT NULL,
    PRIMARY KEY (pid, tid, param, low, seq, high)
) WITHOUT ROWID;
-- Descending date sorts go by the end of the period.
CREATE INDEX idx_date_high ON idx_date (pid, tid, param, high, seq);

CREATE TABLE idx_number (
    pid INTEGER NOT NULL, tid INTEGER NOT NULL, param INTEGER NOT NULL,
    value REAL NOT NULL, seq INTEGER NOT NULL, low REAL NOT NULL, high REAL NOT NULL,
    seq_to INTEGER NOT NULL,
    PRIMARY KEY (pid, tid, param, value, seq, low, high)
) WITHOUT ROWID;

CREATE TABLE idx_quantity (
    pid INTEGER NOT NULL, tid INTEGER NOT NULL, param INTEGER NOT NULL,
    sys INTEGER NOT NULL, code TEXT NOT NULL, value REAL NOT NULL, seq INTEGER NOT NULL,
    low REAL NOT NULL, high REAL NOT NULL, unit TEXT,
    seq_to INTEGER NOT NULL,
    PRIMARY KEY (pid, tid, param, sys, code, value, seq)
) WITHOUT ROWID;

CREATE TABLE idx_reference (
    pid INTEGER NOT NULL, tid INTEGER NOT NULL, param INTEGER NOT NULL,
    target_id TEXT NOT NULL, ttype INTEGER NOT NULL, url TEXT NOT NULL, seq INTEGER NOT NULL,
    version TEXT,
    seq_to INTEGER NOT NULL,
    PRIMARY KEY (pid, tid, param, target_id, ttype, url, seq)
) WITHOUT ROWID;

CREATE TABLE idx_uri (
    pid INTEGER NOT NULL, tid INTEGER NOT NULL, param INTEGER NOT NULL,
    uri TEXT NOT NULL, seq INTEGER NOT NULL,
    seq_to INTEGER NOT NULL,
    PRIMARY KEY (pid, tid, param, uri, seq)
) WITHOUT ROWID;

-- Two-component composites whose first component is a token (every R4 composite the PHR
-- uses: code-value-quantity, component-code-value-quantity, code-value-concept, ...). The
-- second component fills the columns of its kind (k2: 1 token, 2 quantity/number, 3 date,
-- 4 string).
CREATE TABLE idx_composite (
    pid INTEGER NOT NULL, tid INTEGER NOT NULL, param INTEGER NOT NULL,
    code1 TEXT NOT NULL, sys1 INTEGER NOT NULL, seq INTEGER NOT NULL, ord INTEGER NOT NULL,
    k2 INTEGER NOT NULL, sys2 INTEGER, code2 TEXT, num2 REAL, low2 REAL, high2 REAL,
    dlow2 INTEGER, dhigh2 INTEGER, text2 TEXT,
    seq_to INTEGER NOT NULL,
    PRIMARY KEY (pid, tid, param, code1, sys1, seq, ord)
) WITHOUT ROWID;

-- Code x date pairs for the configured (type, token param, date param) pairs
-- (Observation code/date...): the portal timeline "this code, this period, by date" is one
-- range scan in date order, whatever else the citizen has stored.
CREATE TABLE idx_code_date (
    pid INTEGER NOT NULL, tid INTEGER NOT NULL, tparam INTEGER NOT NULL, dparam INTEGER NOT NULL,
    code TEXT NOT NULL, sys INTEGER NOT NULL, low INTEGER NOT NULL, seq INTEGER NOT NULL,
    high INTEGER NOT NULL,
    seq_to INTEGER NOT NULL,
    PRIMARY KEY (pid, tid, tparam, dparam, code, sys, low, seq, high)
) WITHOUT ROWID;
CREATE INDEX idx_code_date_high ON idx_code_date (pid, tid, tparam, dparam, code, sys, high, seq);
"#,
    r#"
-- A code x date row's quantity (unit system, unit code, value) when the version's
-- code-value-quantity has exactly one for the row's code: a chart's aggregate reads it
-- without joining idx_composite. Rows without one (none, several, or written before this
-- migration) are joined as before.
ALTER TABLE idx_code_date ADD COLUMN usys INTEGER;
ALTER TABLE idx_code_date ADD COLUMN ucode TEXT;
ALTER TABLE idx_code_date ADD COLUMN num REAL;
"#,
];

/// Brings the schema up to date and makes sure the cursor signing key exists.
pub fn migrate(conn: &mut Connection) -> Result<(), EngineError> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let has_meta: bool = tx
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'meta'",
            [],
            |row| row.get::<_, i64>(0),
        )
        .map(|n| n > 0)?;
    let applied: usize = if has_meta {
        tx.query_row(
            "SELECT value FROM meta WHERE key = 'schema_version'",
            [],
            |row| row.get::<_, i64>(0),
        )
        .optional()?
        .map_or(0, |v| usize::try_from(v).unwrap_or(0))
    } else {
        0
    };
    if applied > MIGRATIONS.len() {
        return Err(EngineError::Schema(format!(
            "the database has schema version {applied}, newer than this program's {}",
            MIGRATIONS.len()
        )));
    }
    for sql in MIGRATIONS.iter().skip(applied) {
        tx.execute_batch(sql)?;
    }
    tx.execute(
        "INSERT INTO meta (key, value) VALUES ('schema_version', ?1)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        params![MIGRATIONS.len() as i64],
    )?;
    let key: Option<Vec<u8>> = tx
        .query_row(
            "SELECT value FROM meta WHERE key = 'cursor_key'",
            [],
            |row| row.get(0),
        )
        .optional()?;
    if key.is_none() {
        let fresh: [u8; 32] = rand::random();
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('cursor_key', ?1)",
            params![fresh.to_vec()],
        )?;
    }
    for (key, value) in [("last_seq", 0i64), ("pruned_through", 0i64)] {
        tx.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO NOTHING",
            params![key, value],
        )?;
    }
    tx.commit()?;
    Ok(())
}

pub fn schema_version() -> usize {
    MIGRATIONS.len()
}

/// Every table holding resource data, for erasure checks and tests.
pub const DATA_TABLES: &[&str] = &[
    "resources",
    "versions",
    "superseded",
    "date_spans",
    "idx_token",
    "idx_string",
    "idx_date",
    "idx_number",
    "idx_quantity",
    "idx_reference",
    "idx_uri",
    "idx_composite",
    "idx_code_date",
];
