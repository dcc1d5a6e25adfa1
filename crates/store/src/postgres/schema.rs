//! The PostgreSQL schema, its ordered migrations, and how its tables are placed: hash
//! partitions by citizen on plain PostgreSQL, distributed (and co-located) by citizen with
//! Citus.
//!
//! Rules every migration keeps, so that Citus can distribute the schema by citizen (and the
//! test `schema_keeps_the_citizen_first_rules` checks them in the catalog):
//! - every table in [`PATIENT_TABLES`] has `pid` (the citizen's compartment key) as the first
//!   column of its primary key and of every unique index;
//! - no foreign keys, no triggers, no sequences or identity columns, no unique constraint
//!   without `pid`; nothing in the write path is global (see `writer.rs` for the per-citizen
//!   sequence);
//! - tables without citizen data ([`SHARED_TABLES`]) are small, written rarely, and become
//!   Citus reference tables.
//!
//! Text columns compare byte-wise (`COLLATE "C"`, the order SQLite uses), whatever the
//! database's default collation, so string ranges, prefixes and sorts match the SQLite engine.
//! This module must never run DDL outside [`migrate`].

use ::postgres::{Client, Transaction};

use super::PgError;

/// `seq_to` of an index row whose version is still current.
pub const CURRENT: i64 = i64::MAX;

/// Tables holding citizen data: distributed by `pid`, co-located, in this order.
pub const PATIENT_TABLES: &[&str] = &[
    "compartments",
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

/// Tables without citizen data: Citus reference tables (copied to every node).
pub const SHARED_TABLES: &[&str] = &[
    "schema_migrations",
    "meta",
    "types",
    "params",
    "systems",
    "param_kinds",
];

/// How the patient tables are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Plain PostgreSQL: every patient table is `PARTITION BY HASH (pid)` into this many
    /// partitions (fixed when the schema is created).
    Partitioned { partitions: u32 },
    /// Citus: plain tables distributed by `pid` (co-located with `compartments`); the shared
    /// tables become reference tables. Needs the `citus` extension.
    Citus,
}

impl Default for Layout {
    fn default() -> Self {
        Layout::Partitioned { partitions: 16 }
    }
}

impl Layout {
    fn name(self) -> String {
        match self {
            Layout::Partitioned { partitions } => format!("partitioned:{partitions}"),
            Layout::Citus => "citus".into(),
        }
    }
}

/// One migration: SQL with `{partitioned}` where a patient table's `PARTITION BY` clause goes.
/// New patient tables must also be added to [`PATIENT_TABLES`] (partitions and Citus
/// distribution are made from that list).
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE meta (
    key   TEXT COLLATE "C" PRIMARY KEY,
    value BYTEA NOT NULL
);

-- Interned names. Ids are 63-bit hashes of the names (see names.rs): every node computes
-- them without asking the database, and an id can never change meaning.
CREATE TABLE types  (tid BIGINT PRIMARY KEY, name TEXT COLLATE "C" NOT NULL UNIQUE);
CREATE TABLE params (param BIGINT PRIMARY KEY, name TEXT COLLATE "C" NOT NULL UNIQUE);
CREATE TABLE systems (sys BIGINT PRIMARY KEY, uri TEXT COLLATE "C" NOT NULL UNIQUE);
-- Which index table each (type, parameter) was written to: sorting and :missing need it.
CREATE TABLE param_kinds (
    tid   BIGINT NOT NULL,
    param BIGINT NOT NULL,
    kind  BIGINT NOT NULL,
    PRIMARY KEY (tid, param, kind)
);

-- One row per citizen compartment (pid = hash of the Patient id; 0 = resources outside
-- every compartment). `seq` is the compartment's own sequence: every write transaction
-- locks the row and advances it, so a citizen's writes are serialized (conditional create
-- is exactly-once) and a page cursor is pinned to a compartment snapshot. Versions pruned
-- for cursors are recorded in `pruned_through`.
CREATE TABLE compartments (
    pid            BIGINT NOT NULL,
    patient        TEXT COLLATE "C" NOT NULL,
    seq            BIGINT NOT NULL,
    pruned_through BIGINT NOT NULL,
    PRIMARY KEY (pid)
) {partitioned};

-- One row per resource: where its current version is. A resource lives in the compartment
-- of its current version; ids are unique within a compartment (server-assigned UUIDs make
-- them unique everywhere; a Patient is always in its own compartment).
CREATE TABLE resources (
    pid        BIGINT NOT NULL,
    tid        BIGINT NOT NULL,
    id         TEXT COLLATE "C" NOT NULL,
    version    BIGINT NOT NULL,
    seq        BIGINT NOT NULL,
    deleted    BOOLEAN NOT NULL,
    created_by TEXT,
    PRIMARY KEY (pid, tid, id)
) {partitioned};
-- Reads by id without a compartment (operators) ask every partition.
CREATE INDEX resources_by_id ON resources (tid, id);

-- Every version ever written (until erased), in the compartment it was written in.
-- `manifest` lists the version's index rows (rows.rs) so they can be found by key when the
-- version is superseded or erased, and read for _include.
CREATE TABLE versions (
    pid          BIGINT NOT NULL,
    seq          BIGINT NOT NULL,
    tid          BIGINT NOT NULL,
    id           TEXT COLLATE "C" NOT NULL,
    version      BIGINT NOT NULL,
    last_updated BIGINT NOT NULL,
    deleted      BOOLEAN NOT NULL,
    app          TEXT,
    created_by   TEXT,
    body         BYTEA NOT NULL,
    manifest     BYTEA NOT NULL,
    PRIMARY KEY (pid, seq)
) {partitioned};
CREATE INDEX versions_by_id ON versions (tid, id, version);

-- Superseded versions whose index rows are still kept for open page cursors.
CREATE TABLE superseded (
    pid    BIGINT NOT NULL,
    seq_to BIGINT NOT NULL,
    seq    BIGINT NOT NULL,
    at     BIGINT NOT NULL,
    PRIMARY KEY (pid, seq_to, seq)
) {partitioned};
CREATE INDEX superseded_by_time ON superseded (at);

-- The widest period (high - low) indexed per compartment, type and date parameter.
CREATE TABLE date_spans (
    pid   BIGINT NOT NULL,
    tid   BIGINT NOT NULL,
    param BIGINT NOT NULL,
    span  BIGINT NOT NULL,
    PRIMARY KEY (pid, tid, param)
) {partitioned};

-- Index tables, as in the SQLite engine. A row is visible at snapshot S of its compartment
-- when seq <= S AND seq_to > S; `seq_to` rides in the key index so visibility needs no
-- table visit.
CREATE TABLE idx_token (
    pid BIGINT NOT NULL, tid BIGINT NOT NULL, param BIGINT NOT NULL,
    code TEXT COLLATE "C" NOT NULL, seq BIGINT NOT NULL, sys BIGINT NOT NULL,
    seq_to BIGINT NOT NULL, text TEXT COLLATE "C",
    PRIMARY KEY (pid, tid, param, code, seq, sys) INCLUDE (seq_to)
) {partitioned};

CREATE TABLE idx_string (
    pid BIGINT NOT NULL, tid BIGINT NOT NULL, param BIGINT NOT NULL,
    norm TEXT COLLATE "C" NOT NULL, seq BIGINT NOT NULL, exact TEXT COLLATE "C" NOT NULL,
    seq_to BIGINT NOT NULL,
    PRIMARY KEY (pid, tid, param, norm, seq, exact) INCLUDE (seq_to)
) {partitioned};

CREATE TABLE idx_date (
    pid BIGINT NOT NULL, tid BIGINT NOT NULL, param BIGINT NOT NULL,
    low BIGINT NOT NULL, seq BIGINT NOT NULL, high BIGINT NOT NULL,
    seq_to BIGINT NOT NULL,
    PRIMARY KEY (pid, tid, param, low, seq, high) INCLUDE (seq_to)
) {partitioned};
-- Descending date sorts go by the end of the period.
CREATE INDEX idx_date_high ON idx_date (pid, tid, param, high, seq) INCLUDE (low, seq_to);

CREATE TABLE idx_number (
    pid BIGINT NOT NULL, tid BIGINT NOT NULL, param BIGINT NOT NULL,
    value DOUBLE PRECISION NOT NULL, seq BIGINT NOT NULL,
    low DOUBLE PRECISION NOT NULL, high DOUBLE PRECISION NOT NULL,
    seq_to BIGINT NOT NULL,
    PRIMARY KEY (pid, tid, param, value, seq, low, high) INCLUDE (seq_to)
) {partitioned};

CREATE TABLE idx_quantity (
    pid BIGINT NOT NULL, tid BIGINT NOT NULL, param BIGINT NOT NULL,
    sys BIGINT NOT NULL, code TEXT COLLATE "C" NOT NULL, value DOUBLE PRECISION NOT NULL,
    seq BIGINT NOT NULL,
    low DOUBLE PRECISION NOT NULL, high DOUBLE PRECISION NOT NULL, unit TEXT COLLATE "C",
    seq_to BIGINT NOT NULL,
    PRIMARY KEY (pid, tid, param, sys, code, value, seq) INCLUDE (seq_to)
) {partitioned};

CREATE TABLE idx_reference (
    pid BIGINT NOT NULL, tid BIGINT NOT NULL, param BIGINT NOT NULL,
    target_id TEXT COLLATE "C" NOT NULL, ttype BIGINT NOT NULL, url TEXT COLLATE "C" NOT NULL,
    seq BIGINT NOT NULL, version TEXT COLLATE "C",
    seq_to BIGINT NOT NULL,
    PRIMARY KEY (pid, tid, param, target_id, ttype, url, seq) INCLUDE (seq_to)
) {partitioned};

CREATE TABLE idx_uri (
    pid BIGINT NOT NULL, tid BIGINT NOT NULL, param BIGINT NOT NULL,
    uri TEXT COLLATE "C" NOT NULL, seq BIGINT NOT NULL,
    seq_to BIGINT NOT NULL,
    PRIMARY KEY (pid, tid, param, uri, seq) INCLUDE (seq_to)
) {partitioned};

CREATE TABLE idx_composite (
    pid BIGINT NOT NULL, tid BIGINT NOT NULL, param BIGINT NOT NULL,
    code1 TEXT COLLATE "C" NOT NULL, sys1 BIGINT NOT NULL, seq BIGINT NOT NULL, ord BIGINT NOT NULL,
    k2 BIGINT NOT NULL, sys2 BIGINT, code2 TEXT COLLATE "C", num2 DOUBLE PRECISION,
    low2 DOUBLE PRECISION, high2 DOUBLE PRECISION, dlow2 BIGINT, dhigh2 BIGINT,
    text2 TEXT COLLATE "C",
    seq_to BIGINT NOT NULL,
    PRIMARY KEY (pid, tid, param, code1, sys1, seq, ord) INCLUDE (seq_to)
) {partitioned};

CREATE TABLE idx_code_date (
    pid BIGINT NOT NULL, tid BIGINT NOT NULL, tparam BIGINT NOT NULL, dparam BIGINT NOT NULL,
    code TEXT COLLATE "C" NOT NULL, sys BIGINT NOT NULL, low BIGINT NOT NULL, seq BIGINT NOT NULL,
    high BIGINT NOT NULL,
    seq_to BIGINT NOT NULL,
    PRIMARY KEY (pid, tid, tparam, dparam, code, sys, low, seq, high) INCLUDE (seq_to)
) {partitioned};
CREATE INDEX idx_code_date_high ON idx_code_date (pid, tid, tparam, dparam, code, sys, high, seq)
    INCLUDE (low, seq_to);
"#,
    r#"
-- A code x date row's quantity (unit system, unit code, value) when the version's
-- code-value-quantity has exactly one for the row's code: a chart's aggregate reads it
-- without joining idx_composite. Rows without one (none, several, or written before this
-- migration) are joined as before.
ALTER TABLE idx_code_date ADD COLUMN usys BIGINT, ADD COLUMN ucode TEXT COLLATE "C",
    ADD COLUMN num DOUBLE PRECISION;
"#,
];

/// The schema version this program writes and reads.
pub fn schema_version() -> i64 {
    MIGRATIONS.len() as i64
}

/// Serializes migrations of nodes starting at the same time.
const MIGRATION_LOCK: i64 = 0x7068_725f_6d69_6772; // "phr_migr"

/// What [`migrate`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migrated {
    /// The version found before (0 for an empty database).
    pub from: i64,
    pub to: i64,
    /// The layout recorded when the schema was created (`partitioned:16`, `citus`).
    pub layout: String,
}

/// Brings the schema up to date in one transaction and makes sure the page-cursor key
/// exists. Refuses a database whose schema is newer than this program. The layout only
/// matters when the schema is created; later it is read from `meta`.
pub fn migrate(client: &mut Client, layout: Layout) -> Result<Migrated, PgError> {
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    let from = applied_version(&mut tx)?;
    let known = schema_version();
    if from > known {
        return Err(PgError::Schema(format!(
            "the database has schema version {from}, newer than this program's {known}: \
             upgrade the program before opening it"
        )));
    }
    let layout_name = if from == 0 {
        if layout == Layout::Citus {
            let has_citus = tx
                .query_opt("SELECT 1 FROM pg_extension WHERE extname = 'citus'", &[])?
                .is_some();
            if !has_citus {
                return Err(PgError::Schema(
                    "the Citus layout needs the citus extension: CREATE EXTENSION citus on the coordinator first"
                        .into(),
                ));
            }
        }
        tx.batch_execute(
            "CREATE TABLE schema_migrations (
                 version    BIGINT PRIMARY KEY,
                 applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
             )",
        )?;
        layout.name()
    } else {
        let row = tx.query_opt("SELECT value FROM meta WHERE key = 'layout'", &[])?;
        let value: Vec<u8> = row.map(|r| r.get(0)).unwrap_or_default();
        String::from_utf8_lossy(&value).into_owned()
    };
    let current = parse_layout(&layout_name)
        .ok_or_else(|| PgError::Schema(format!("unknown schema layout {layout_name:?} in meta")))?;
    for (n, sql) in MIGRATIONS.iter().enumerate().skip(from as usize) {
        tx.batch_execute(&render(sql, current))?;
        tx.execute(
            "INSERT INTO schema_migrations (version) VALUES ($1)",
            &[&(n as i64 + 1)],
        )?;
    }
    if from == 0 {
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('layout', $1)",
            &[&layout_name.as_bytes()],
        )?;
    }
    if from < known {
        for statement in placement_statements(current, from) {
            tx.batch_execute(&statement)?;
        }
    }
    let fresh: [u8; 32] = rand::random();
    tx.execute(
        "INSERT INTO meta (key, value) VALUES ('cursor_key', $1) ON CONFLICT (key) DO NOTHING",
        &[&fresh.as_slice()],
    )?;
    tx.commit()?;
    Ok(Migrated {
        from,
        to: known,
        layout: layout_name,
    })
}

/// The schema version of the database (0 when empty), without changing anything.
pub fn applied_version(tx: &mut Transaction<'_>) -> Result<i64, PgError> {
    let exists: bool = tx
        .query_one("SELECT to_regclass('schema_migrations') IS NOT NULL", &[])?
        .get(0);
    if !exists {
        return Ok(0);
    }
    let v: Option<i64> = tx
        .query_one("SELECT max(version) FROM schema_migrations", &[])?
        .get(0);
    Ok(v.unwrap_or(0))
}

fn parse_layout(name: &str) -> Option<Layout> {
    if name == "citus" {
        return Some(Layout::Citus);
    }
    let partitions = name.strip_prefix("partitioned:")?.parse().ok()?;
    Some(Layout::Partitioned { partitions })
}

fn render(sql: &str, layout: Layout) -> String {
    let clause = match layout {
        Layout::Partitioned { .. } => "PARTITION BY HASH (pid)",
        Layout::Citus => "",
    };
    sql.replace("{partitioned}", clause)
}

/// Statements that place the tables created by migrations after `from`: partitions of
/// every patient table, or the Citus distribution calls. Only tables of the first
/// migration exist so far, so `from` = 0 means "all".
pub fn placement_statements(layout: Layout, from: i64) -> Vec<String> {
    if from > 0 {
        return vec![];
    }
    match layout {
        Layout::Partitioned { partitions } => {
            let n = partitions.max(1);
            PATIENT_TABLES
                .iter()
                .flat_map(|table| {
                    (0..n).map(move |i| {
                        format!(
                            "CREATE TABLE {table}_p{i} PARTITION OF {table} FOR VALUES WITH (MODULUS {n}, REMAINDER {i})"
                        )
                    })
                })
                .collect()
        }
        Layout::Citus => citus_statements(),
    }
}

/// The Citus calls: every shared table a reference table; `compartments` distributed by
/// `pid`, every other patient table distributed by `pid` and co-located with it, so a
/// citizen's rows of every table are on one node and every join on `pid` stays there.
pub fn citus_statements() -> Vec<String> {
    let mut out: Vec<String> = SHARED_TABLES
        .iter()
        .map(|t| format!("SELECT create_reference_table('{t}')"))
        .collect();
    let mut patient = PATIENT_TABLES.iter();
    if let Some(first) = patient.next() {
        out.push(format!("SELECT create_distributed_table('{first}', 'pid')"));
        for t in patient {
            out.push(format!(
                "SELECT create_distributed_table('{t}', 'pid', colocate_with => '{first}')"
            ));
        }
    }
    out
}
