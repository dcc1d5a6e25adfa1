//! The audit records in PostgreSQL: `audit_log` (one row per record, in the compact form of
//! `packed.rs`), `audit_names` (the texts records refer to by number) and `audit_head`: the
//! chain value and position of the newest record. Appends from every node lock the head row,
//! so the nodes' batches follow one another in one chain; positions (`seq`) and name numbers
//! are given under that lock, not by sequences. Triggers refuse UPDATE, DELETE and TRUNCATE
//! of records and names (the tables stay ordinary tables on the Citus coordinator, where
//! triggers are allowed).

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use phr_store::postgres::PgError;
use phr_store::postgres::pool::Conn;
use postgres::Row;
use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::{ToSql, Type};

use super::encoding::{self, CURRENT, GENESIS};
use super::packed::{self, Packed};
use super::{AuditQuery, AuditRecord, AuditStore, StoredAudit, Usage};
use crate::error::{AuthError, Result};
use crate::postgres::{Postgres, Sql, count, db, get};

pub(crate) const SCHEMA: &[&str] = &[
    r#"
CREATE TABLE audit (
    seq             BIGINT PRIMARY KEY,      -- position in the chain
    id              TEXT NOT NULL UNIQUE,
    recorded_us     BIGINT NOT NULL,
    patient_id      TEXT,
    app_id          TEXT,
    app_name        TEXT,
    actor           TEXT NOT NULL,
    usage           TEXT NOT NULL,
    interaction     TEXT,
    resource_type   TEXT,
    search_criteria TEXT,
    status          BIGINT NOT NULL,
    error_code      TEXT,
    error_detail    TEXT,
    amount          BIGINT NOT NULL,
    resources       TEXT NOT NULL,           -- JSON array of "Type/id"
    client_address  TEXT,
    user_rights     TEXT,
    route           TEXT,
    method          TEXT,
    encoding        BIGINT NOT NULL,
    chain           BYTEA NOT NULL           -- SHA-256(previous chain || this record)
);
CREATE INDEX audit_by_patient ON audit (patient_id, recorded_us);
CREATE INDEX audit_by_time ON audit (recorded_us);

CREATE TABLE audit_head (
    one   BOOLEAN PRIMARY KEY CHECK (one),
    seq   BIGINT NOT NULL,
    chain BYTEA NOT NULL
);
INSERT INTO audit_head VALUES (true, 0, decode(repeat('00', 32), 'hex'));

CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'audit records are append-only'; END $$;
CREATE TRIGGER audit_no_change BEFORE UPDATE OR DELETE ON audit
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
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
-- Audit records in their compact form (audit/packed.rs): the texts that repeat from record
-- to record once in audit_names, a record's other fields in one body. The records of the
-- wide audit table are moved over in the same transaction (`LOG_MIGRATION`).
CREATE TABLE audit_names (
    id   BIGINT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);
CREATE TABLE audit_log (
    seq         BIGINT PRIMARY KEY,        -- position in the chain
    recorded_us BIGINT NOT NULL,
    patient     BIGINT,                    -- audit_names numbers
    app         BIGINT,
    app_name    BIGINT,
    usage       BIGINT NOT NULL,
    encoding    BIGINT NOT NULL,           -- of the chain (audit/encoding.rs)
    body        BYTEA NOT NULL,
    chain       BYTEA NOT NULL             -- SHA-256(previous chain || encoding of the record)
);
CREATE INDEX audit_log_by_patient ON audit_log (patient, recorded_us);
CREATE INDEX audit_log_by_time ON audit_log (recorded_us);
CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_names_no_change BEFORE UPDATE OR DELETE ON audit_names
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_names_no_truncate BEFORE TRUNCATE ON audit_names
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
"#,
];

/// The migration (its index in [`SCHEMA`]) after which the wide audit table's records are
/// moved into `audit_log`.
pub(crate) const LOG_MIGRATION: usize = 2;

/// Names a node remembers; past this many it forgets them all and starts again (one name
/// per citizen would otherwise grow without bound).
const REMEMBERED_NAMES: usize = 100_000;

pub(crate) struct PostgresAuditStore {
    pg: Arc<Postgres>,
    /// Numbers of names already in `audit_names` (only committed ones).
    names: Mutex<HashMap<String, i64>>,
}

impl PostgresAuditStore {
    pub fn new(pg: Arc<Postgres>) -> PostgresAuditStore {
        PostgresAuditStore {
            pg,
            names: Mutex::new(HashMap::new()),
        }
    }
}

const COLUMNS: &str = "seq, recorded_us, patient, app, app_name, usage, encoding, body, chain";

const COLUMN_TYPES: [Type; 9] = [
    Type::INT8,
    Type::INT8,
    Type::INT8,
    Type::INT8,
    Type::INT8,
    Type::INT8,
    Type::INT8,
    Type::BYTEA,
    Type::BYTEA,
];

/// A stored row: its position, the packed record, its encoding and chain value.
type StoredRow = (i64, Packed, i64, Vec<u8>);

fn row_of(row: &Row) -> Result<StoredRow, PgError> {
    Ok((
        get(row, 0)?,
        Packed {
            recorded_us: get(row, 1)?,
            patient: get(row, 2)?,
            app: get(row, 3)?,
            app_name: get(row, 4)?,
            usage: get(row, 5)?,
            body: get(row, 7)?,
        },
        get(row, 6)?,
        get(row, 8)?,
    ))
}

/// Unpacks stored rows, loading the names they refer to in one statement (`names` keeps
/// those already loaded).
fn unpack_rows(
    conn: &mut Conn,
    rows: Vec<StoredRow>,
    names: &mut HashMap<i64, String>,
) -> Result<Vec<(i64, StoredAudit)>, PgError> {
    let mut wanted = Vec::new();
    for (_, packed, _, _) in &rows {
        packed::name_numbers(packed, &mut wanted).map_err(damaged)?;
    }
    wanted.retain(|id| !names.contains_key(id));
    wanted.sort_unstable();
    wanted.dedup();
    if !wanted.is_empty() {
        for row in conn.rows(
            "SELECT id, name FROM audit_names WHERE id = ANY($1)",
            &[&wanted],
        )? {
            names.insert(get(&row, 0)?, get(&row, 1)?);
        }
    }
    rows.into_iter()
        .map(|(seq, packed, encoding, chain)| {
            let record = packed::unpack(&packed, &mut |id| {
                names
                    .get(&id)
                    .cloned()
                    .ok_or_else(|| AuthError::Storage(format!("audit name {id} is missing")))
            })
            .map_err(damaged)?;
            let encoding = u8::try_from(encoding).unwrap_or(u8::MAX);
            Ok((
                seq,
                StoredAudit {
                    record,
                    encoding,
                    chain,
                },
            ))
        })
        .collect()
}

fn damaged(error: AuthError) -> PgError {
    PgError::Corrupt(error.to_string())
}

/// The numbers of `wanted` names, adding those `audit_names` lacks. Runs under the chain
/// head's lock, which every writer of names holds, so numbering after the largest is safe.
fn number_names(
    conn: &mut Conn,
    wanted: &BTreeSet<String>,
) -> Result<HashMap<String, i64>, PgError> {
    let wanted: Vec<&str> = wanted.iter().map(String::as_str).collect();
    conn.rows(
        "WITH wanted AS (SELECT DISTINCT unnest($1::text[]) AS name),
              fresh AS (SELECT w.name FROM wanted w
                        WHERE NOT EXISTS (SELECT 1 FROM audit_names n WHERE n.name = w.name)),
              added AS (INSERT INTO audit_names (id, name)
                        SELECT (SELECT coalesce(max(id), 0) FROM audit_names)
                               + row_number() OVER (ORDER BY fresh.name), fresh.name
                        FROM fresh
                        RETURNING id, name)
         SELECT id, name FROM added
         UNION ALL
         SELECT n.id, n.name FROM audit_names n JOIN wanted w ON w.name = n.name",
        &[&wanted],
    )?
    .iter()
    .map(|r| Ok((get(r, 1)?, get(r, 0)?)))
    .collect()
}

/// Appends records at the end of the chain, under the head's lock, inside the caller's
/// transaction. Records already stored (a retried batch whose COMMIT was sent when the
/// connection broke: the same ids at the same times) are not written twice. `placed` gives each record's position, encoding
/// and chain value when they are moved from the wide table; new ones are chained in
/// [`CURRENT`]. Returns the names it numbered.
fn insert(
    conn: &mut Conn,
    known: &HashMap<String, i64>,
    records: &[AuditRecord],
    placed: Option<&[(i64, u8, Vec<u8>)]>,
) -> Result<HashMap<String, i64>, PgError> {
    let head = conn
        .row(
            "SELECT seq, chain FROM audit_head WHERE one FOR UPDATE",
            &[],
        )?
        .ok_or_else(|| PgError::Corrupt("the audit chain head is missing".into()))?;
    let (mut seq, mut chain): (i64, Vec<u8>) = (get(&head, 0)?, get(&head, 1)?);
    let times: Vec<i64> = records.iter().map(|r| r.recorded_us).collect();
    let present: Vec<String> = conn
        .rows(
            "SELECT body FROM audit_log WHERE recorded_us = ANY($1)",
            &[&times],
        )?
        .iter()
        .filter_map(|r| get::<Vec<u8>>(r, 0).ok().and_then(|b| packed::id_of(&b)))
        .collect();
    // Pack with the names already known; a record that uses a new one is packed again once
    // its names are numbered (all in one statement).
    let mut wanted = BTreeSet::new();
    let mut packs = Vec::with_capacity(records.len());
    for record in records {
        let mut complete = true;
        let packed = packed::pack(record, &mut |name| {
            Ok(known.get(name).copied().unwrap_or_else(|| {
                complete = false;
                wanted.insert(name.to_owned());
                0
            }))
        })
        .map_err(damaged)?;
        packs.push(complete.then_some(packed));
    }
    let added = if wanted.is_empty() {
        HashMap::new()
    } else {
        number_names(conn, &wanted)?
    };
    let sink = conn
        .client
        .copy_in(&format!(
            "COPY audit_log ({COLUMNS}) FROM STDIN (FORMAT binary)"
        ))
        .map_err(db)?;
    let mut writer = BinaryCopyInWriter::new(sink, &COLUMN_TYPES);
    for ((index, record), packed) in records.iter().enumerate().zip(packs) {
        if present.contains(&record.id) {
            continue;
        }
        let encoding = match placed.and_then(|p| p.get(index)) {
            Some((at, encoding, stored_chain)) => {
                seq = *at;
                chain.clone_from(stored_chain);
                *encoding
            }
            None => {
                seq += 1;
                chain = encoding::chain_next(&chain, CURRENT, record).ok_or_else(|| {
                    PgError::Corrupt("the current audit encoding is unknown".into())
                })?;
                CURRENT
            }
        };
        let packed = match packed {
            Some(packed) => packed,
            None => packed::pack(record, &mut |name| {
                known
                    .get(name)
                    .or_else(|| added.get(name))
                    .copied()
                    .ok_or_else(|| {
                        AuthError::Storage(format!("audit name {name} was not numbered"))
                    })
            })
            .map_err(damaged)?,
        };
        let encoding = i64::from(encoding);
        let values: [&(dyn ToSql + Sync); 9] = [
            &seq,
            &packed.recorded_us,
            &packed.patient,
            &packed.app,
            &packed.app_name,
            &packed.usage,
            &encoding,
            &packed.body,
            &chain,
        ];
        writer.write(&values).map_err(db)?;
    }
    writer.finish().map_err(db)?;
    conn.exec(
        "UPDATE audit_head SET seq = $1, chain = $2 WHERE one",
        &[&seq, &chain],
    )?;
    Ok(added)
}

/// Sets the chain head from the newest stored record (after records were copied in with
/// their chain values).
pub(crate) fn reset_head(conn: &mut Conn) -> Result<(), PgError> {
    conn.exec(
        "UPDATE audit_head SET (seq, chain) = (
             SELECT coalesce(max(seq), 0),
                    coalesce((SELECT chain FROM audit_log ORDER BY seq DESC LIMIT 1), $1)
             FROM audit_log)",
        &[&GENESIS.as_slice()],
    )?;
    Ok(())
}

/// The `audit_names` number of a citizen's id (none when no record names them).
const PATIENT: &str = "(SELECT id FROM audit_names WHERE name = $1)";

/// The filter of a citizen's records; `$2 IS NULL OR …` keeps one statement.
const PATIENT_FILTER: &str = "patient = (SELECT id FROM audit_names WHERE name = $1)
    AND ($2::text IS NULL OR app = (SELECT id FROM audit_names WHERE name = $2))
    AND recorded_us >= $3 AND recorded_us < $4";

/// Records read per statement by [`AuditStore::scan`] (each statement stays short).
const SCAN_PAGE: i64 = 5000;

impl AuditStore for PostgresAuditStore {
    fn append(&self, records: &[AuditRecord]) -> Result<()> {
        let mut names = self.names.lock().unwrap_or_else(|p| p.into_inner());
        let added = self
            .pg
            .transaction(|conn| insert(conn, &names, records, None))?;
        if names.len() + added.len() > REMEMBERED_NAMES {
            names.clear();
        }
        names.extend(added);
        Ok(())
    }

    fn for_patient(
        &self,
        patient_id: &str,
        query: &AuditQuery,
        count_limit: usize,
        offset: usize,
    ) -> Result<(u64, Vec<AuditRecord>)> {
        let since = query.since_us.unwrap_or(i64::MIN);
        let until = query.until_us.unwrap_or(i64::MAX);
        let limit = i64::try_from(count_limit).unwrap_or(i64::MAX);
        let offset = i64::try_from(offset).unwrap_or(i64::MAX);
        self.pg.read(|conn| {
            let total: i64 = conn
                .row(
                    &format!("SELECT count(*) FROM audit_log WHERE {PATIENT_FILTER}"),
                    &[&patient_id, &query.app_id, &since, &until],
                )?
                .map(|r| get(&r, 0))
                .transpose()?
                .unwrap_or(0);
            let rows = conn
                .rows(
                    &format!(
                        "SELECT {COLUMNS} FROM audit_log WHERE {PATIENT_FILTER}
                         ORDER BY recorded_us DESC, seq DESC LIMIT $5 OFFSET $6"
                    ),
                    &[&patient_id, &query.app_id, &since, &until, &limit, &offset],
                )?
                .iter()
                .map(row_of)
                .collect::<Result<Vec<_>, PgError>>()?;
            let records = unpack_rows(conn, rows, &mut HashMap::new())?
                .into_iter()
                .map(|(_, stored)| stored.record)
                .collect();
            Ok((count(total), records))
        })
    }

    fn apps_for_patient(&self, patient_id: &str) -> Result<Vec<(String, String)>> {
        self.pg.read(|conn| {
            conn.rows(
                &format!(
                    "SELECT a.name, coalesce(max(n.name), a.name) FROM audit_log l
                     JOIN audit_names a ON a.id = l.app LEFT JOIN audit_names n ON n.id = l.app_name
                     WHERE l.patient = {PATIENT} GROUP BY a.name
                     ORDER BY coalesce(max(n.name), a.name) COLLATE \"C\""
                ),
                &[&patient_id],
            )?
            .iter()
            .map(|r| Ok((get(r, 0)?, get(r, 1)?)))
            .collect()
        })
    }

    fn last_access_by_app(&self, patient_id: &str) -> Result<HashMap<String, i64>> {
        let application = packed::usage_number(Usage::Application);
        self.pg.read(|conn| {
            conn.rows(
                &format!(
                    "SELECT a.name, max(l.recorded_us) FROM audit_log l JOIN audit_names a ON a.id = l.app
                     WHERE l.patient = {PATIENT} AND l.usage = $2 GROUP BY a.name"
                ),
                &[&patient_id, &application],
            )?
            .iter()
            .map(|r| Ok((get(r, 0)?, get(r, 1)?)))
            .collect()
        })
    }

    fn scan(
        &self,
        since_us: i64,
        until_us: i64,
        visit: &mut dyn FnMut(StoredAudit) -> Result<()>,
    ) -> Result<()> {
        let mut after = 0i64;
        let mut names = HashMap::new();
        loop {
            let page = self.pg.read(|conn| {
                let rows = conn
                    .rows(
                        &format!(
                            "SELECT {COLUMNS} FROM audit_log WHERE seq > $1 AND recorded_us >= $2 AND recorded_us < $3
                             ORDER BY seq LIMIT $4"
                        ),
                        &[&after, &since_us, &until_us, &SCAN_PAGE],
                    )?
                    .iter()
                    .map(row_of)
                    .collect::<Result<Vec<_>, PgError>>()?;
                unpack_rows(conn, rows, &mut names)
            })?;
            let full = page.len() as i64 == SCAN_PAGE;
            for (seq, stored) in page {
                after = seq;
                visit(stored)?;
            }
            if !full {
                return Ok(());
            }
        }
    }
}

/// Moves the records of the wide `audit` table (every release before the compact form) into
/// `audit_log` with their positions, encodings and chain values, then drops it. Runs inside
/// the migration's transaction, a page at a time.
pub(crate) fn move_wide_table(conn: &mut Conn) -> Result<(), PgError> {
    let mut after = 0i64;
    let mut known = HashMap::new();
    loop {
        let page: Vec<(i64, StoredAudit)> = conn
            .rows(
                &format!("SELECT {WIDE_COLUMNS} FROM audit WHERE seq > $1 ORDER BY seq LIMIT $2"),
                &[&after, &SCAN_PAGE],
            )?
            .iter()
            .map(wide_from_row)
            .collect::<Result<_, _>>()?;
        let Some((last, _)) = page.last() else { break };
        after = *last;
        let placed: Vec<(i64, u8, Vec<u8>)> = page
            .iter()
            .map(|(seq, s)| (*seq, s.encoding, s.chain.clone()))
            .collect();
        let records: Vec<AuditRecord> = page.into_iter().map(|(_, s)| s.record).collect();
        known.extend(insert(conn, &known, &records, Some(&placed))?);
    }
    conn.client.batch_execute("DROP TABLE audit").map_err(db)?;
    reset_head(conn)
}

const WIDE_COLUMNS: &str = "id, recorded_us, patient_id, app_id, app_name, actor, usage, interaction, resource_type,
    search_criteria, status, error_code, error_detail, amount, resources, client_address, user_rights,
    route, method, encoding, chain, seq, professional_id, professional_name, org_oid, org_name,
    care_id, contents";

/// A row of the wide table: its position and record.
fn wide_from_row(row: &Row) -> Result<(i64, StoredAudit), PgError> {
    let usage: String = get(row, 6)?;
    let resources: String = get(row, 14)?;
    let encoding: i64 = get(row, 19)?;
    let status: i64 = get(row, 10)?;
    let contents: String = get(row, 27)?;
    let stored = StoredAudit {
        record: AuditRecord {
            id: get(row, 0)?,
            recorded_us: get(row, 1)?,
            patient_id: get(row, 2)?,
            app_id: get(row, 3)?,
            app_name: get(row, 4)?,
            actor: get(row, 5)?,
            // An unknown code cannot have been written by this software; it reads as an
            // application access and fails chain verification.
            usage: Usage::parse(&usage).unwrap_or(Usage::Application),
            interaction: get(row, 7)?,
            resource_type: get(row, 8)?,
            search_criteria: get(row, 9)?,
            status: u16::try_from(status).unwrap_or(u16::MAX),
            error_code: get(row, 11)?,
            error_detail: get(row, 12)?,
            amount: count(get(row, 13)?),
            resources: serde_json::from_str(&resources).unwrap_or_default(),
            client_address: get(row, 15)?,
            user_rights: get(row, 16)?,
            route: get(row, 17)?,
            method: get(row, 18)?,
            professional_id: get(row, 22)?,
            professional_name: get(row, 23)?,
            org_oid: get(row, 24)?,
            org_name: get(row, 25)?,
            care_id: get(row, 26)?,
            contents: serde_json::from_str(&contents).unwrap_or_default(),
        },
        encoding: u8::try_from(encoding).unwrap_or(u8::MAX),
        chain: get(row, 20)?,
    };
    Ok((get(row, 21)?, stored))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::AuditLog;
    use crate::clock::ManualClock;

    fn record(id: &str, patient: &str, at: i64) -> AuditRecord {
        let mut r = AuditRecord::new(Usage::Application, format!("Patient/{patient}"));
        r.id = id.into();
        r.recorded_us = at;
        r.patient_id = Some(patient.into());
        r.app_id = Some("app".into());
        r.app_name = Some("Steps".into());
        r.resources = vec!["Observation/1".into()];
        r
    }

    fn log(store: Arc<dyn AuditStore>) -> AuditLog {
        AuditLog::start(
            store.clone(),
            store,
            Arc::new(ManualClock::at_micros(1_000_000)),
            100,
            std::env::temp_dir(),
        )
        .unwrap()
    }

    #[test]
    fn appends_from_several_nodes_form_one_chain_and_a_retried_batch_is_stored_once() {
        let pg = crate::postgres::tests::database("audit_chain");
        let nodes: Vec<Arc<PostgresAuditStore>> = (0..2)
            .map(|_| Arc::new(PostgresAuditStore::new(pg.clone())))
            .collect();
        let threads: Vec<_> = (0..6)
            .map(|t| {
                let store = nodes[t % 2].clone();
                std::thread::spawn(move || {
                    for b in 0..10 {
                        let batch: Vec<AuditRecord> = (0..20)
                            .map(|i| record(&format!("{t}-{b}-{i}"), "p", 1000 + i))
                            .collect();
                        store.append(&batch).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let retried: Vec<AuditRecord> = (0..3)
            // A retry hands over the same records: the same ids and times.
            .map(|i| record(&format!("0-0-{i}"), "p", 1000 + i))
            .collect();
        nodes[1].append(&retried).unwrap();
        let log = log(nodes[0].clone());
        assert_eq!(log.verify().unwrap(), None, "one intact chain");
        let (total, _) = log.for_patient("p", &AuditQuery::default(), 1, 0).unwrap();
        assert_eq!(total, 6 * 10 * 20);
        let mut seqs = 0;
        nodes[0]
            .scan(i64::MIN, i64::MAX, &mut |_| {
                seqs += 1;
                Ok(())
            })
            .unwrap();
        assert_eq!(seqs, 1200, "scanned across pages");
    }

    #[test]
    fn records_of_the_wide_table_move_to_the_compact_one_and_the_chain_goes_on() {
        let url = phr_test_postgres::database("audit_wide");
        crate::postgres::migrate_database(&url).unwrap();
        // Put the audit module back as the previous release left it, with three records.
        let mut client = ::postgres::Client::connect(&url, ::postgres::NoTls).unwrap();
        client
            .batch_execute(
                "DROP TABLE audit_log, audit_names, audit_head;
                 DROP FUNCTION audit_append_only CASCADE;
                 UPDATE auth_schema SET version = 2 WHERE module = 'audit';",
            )
            .unwrap();
        client.batch_execute(SCHEMA[0]).unwrap();
        client.batch_execute(SCHEMA[1]).unwrap();
        let mut professional = crate::audit::tests::professional_access("pro-1", "p");
        professional.recorded_us = 20;
        let old = [record("a", "p", 10), professional, record("c", "q", 30)];
        let mut chain = GENESIS.to_vec();
        for (seq, r) in (1i64..).zip(&old) {
            chain = encoding::chain_next(&chain, CURRENT, r).unwrap();
            client
                .execute(
                    "INSERT INTO audit (seq, id, recorded_us, patient_id, app_id, app_name, actor, usage,
                        interaction, resource_type, status, amount, resources, encoding, chain,
                        professional_id, professional_name, org_oid, org_name, care_id, contents)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, 'application', $8, $9, 200, $10, $11, 2, $12,
                        $13, $14, $15, $16, $17, $18)",
                    &[
                        &seq,
                        &r.id,
                        &r.recorded_us,
                        &r.patient_id,
                        &r.app_id,
                        &r.app_name,
                        &r.actor,
                        &r.interaction,
                        &r.resource_type,
                        &(r.amount as i64),
                        &serde_json::to_string(&r.resources).unwrap(),
                        &chain,
                        &r.professional_id,
                        &r.professional_name,
                        &r.org_oid,
                        &r.org_name,
                        &r.care_id,
                        &serde_json::to_string(&r.contents).unwrap(),
                    ],
                )
                .unwrap();
        }
        client
            .execute(
                "UPDATE audit_head SET seq = 3, chain = $1 WHERE one",
                &[&chain],
            )
            .unwrap();
        let moved = crate::postgres::migrate_database(&url).unwrap();
        assert!(
            moved
                .iter()
                .any(|m| m.module == "audit" && m.from == 2 && m.to == 3)
        );
        let gone: i64 = client
            .query_one("SELECT count(*) FROM pg_class WHERE relname = 'audit'", &[])
            .unwrap()
            .get(0);
        assert_eq!(gone, 0, "the wide table is dropped");
        let store = Arc::new(PostgresAuditStore::new(Postgres::open(&url).unwrap()));
        let (_, records) = store
            .for_patient("p", &AuditQuery::default(), 10, 0)
            .unwrap();
        assert_eq!(records, vec![old[1].clone(), old[0].clone()]);
        store.append(&[record("d", "q", 40)]).unwrap();
        let log = log(store.clone());
        assert_eq!(log.verify().unwrap(), None, "one chain across the move");
        let (total, _) = store
            .for_patient("q", &AuditQuery::default(), 10, 0)
            .unwrap();
        assert_eq!(total, 2);
    }

    #[test]
    fn a_professionals_access_is_stored_with_who_for_whom_and_what_and_chains() {
        let pg = crate::postgres::tests::database("audit_professional");
        let store = Arc::new(PostgresAuditStore::new(pg));
        let record = crate::audit::tests::professional_access("pro-1", "p");
        store.append(std::slice::from_ref(&record)).unwrap();
        let (_, records) = store
            .for_patient("p", &AuditQuery::default(), 10, 0)
            .unwrap();
        assert_eq!(records, vec![record]);
        assert_eq!(log(store).verify().unwrap(), None);
    }

    #[test]
    fn records_cannot_be_changed_or_deleted_and_queries_filter() {
        let pg = crate::postgres::tests::database("audit_rows");
        let store = PostgresAuditStore::new(pg.clone());
        store
            .append(&[
                record("a", "p", 10),
                record("b", "p", 20),
                record("c", "q", 30),
            ])
            .unwrap();
        for change in [
            "UPDATE audit_log SET usage = 2",
            "DELETE FROM audit_log",
            "TRUNCATE audit_log",
            "UPDATE audit_names SET name = 'x'",
            "DELETE FROM audit_names",
            "TRUNCATE audit_names",
        ] {
            assert!(pg.write(|conn| conn.exec(change, &[])).is_err(), "{change}");
        }
        let query = AuditQuery {
            since_us: Some(15),
            ..AuditQuery::default()
        };
        let (total, records) = store.for_patient("p", &query, 10, 0).unwrap();
        assert_eq!(total, 1);
        assert_eq!(records[0].id, "b");
        assert_eq!(
            store.apps_for_patient("p").unwrap(),
            vec![("app".into(), "Steps".into())]
        );
        assert_eq!(store.last_access_by_app("q").unwrap().get("app"), Some(&30));
    }
}
