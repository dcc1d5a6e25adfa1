//! The `audit` table in PostgreSQL, and `audit_head`: the chain value and position of the
//! newest record. Appends from every node lock the head row, so the nodes' batches follow
//! one another in one chain; positions (`seq`) come from the head, not from a sequence.
//! Triggers refuse UPDATE, DELETE and TRUNCATE of records (the table stays an ordinary table
//! on the Citus coordinator, where triggers are allowed).

use std::collections::HashMap;
use std::sync::Arc;

use phr_store::postgres::PgError;
use phr_store::postgres::pool::Conn;
use postgres::Row;
use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::{ToSql, Type};

use super::encoding::{self, CURRENT, GENESIS};
use super::{AuditQuery, AuditRecord, AuditStore, StoredAudit, Usage};
use crate::error::Result;
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
];

pub(crate) struct PostgresAuditStore {
    pg: Arc<Postgres>,
}

impl PostgresAuditStore {
    pub fn new(pg: Arc<Postgres>) -> PostgresAuditStore {
        PostgresAuditStore { pg }
    }
}

const COLUMNS: &str = "id, recorded_us, patient_id, app_id, app_name, actor, usage, interaction, resource_type,
    search_criteria, status, error_code, error_detail, amount, resources, client_address, user_rights,
    route, method, encoding, chain, seq, professional_id, professional_name, org_oid, org_name,
    care_id, contents";

const COLUMN_TYPES: [Type; 28] = [
    Type::TEXT,
    Type::INT8,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::INT8,
    Type::TEXT,
    Type::TEXT,
    Type::INT8,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::INT8,
    Type::BYTEA,
    Type::INT8,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
];

fn stored_from_row(row: &Row) -> Result<(i64, StoredAudit), PgError> {
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

/// Sets the chain head from the newest stored record (after records were copied in with
/// their chain values).
pub(crate) fn reset_head(conn: &mut Conn) -> Result<(), PgError> {
    conn.exec(
        "UPDATE audit_head SET (seq, chain) = (
             SELECT coalesce(max(seq), 0),
                    coalesce((SELECT chain FROM audit ORDER BY seq DESC LIMIT 1), $1)
             FROM audit)",
        &[&GENESIS.as_slice()],
    )?;
    Ok(())
}

/// The filter of a citizen's records; `$2 IS NULL OR app_id = $2` keeps one statement.
const PATIENT_FILTER: &str = "patient_id = $1 AND ($2::text IS NULL OR app_id = $2) AND recorded_us >= $3 AND recorded_us < $4";

/// Records read per statement by [`AuditStore::scan`] (each statement stays short).
const SCAN_PAGE: i64 = 5000;

impl AuditStore for PostgresAuditStore {
    fn append(&self, records: &[AuditRecord]) -> Result<()> {
        self.pg.transaction(|conn| {
            {
                let head = conn
                    .row(
                        "SELECT seq, chain FROM audit_head WHERE one FOR UPDATE",
                        &[],
                    )?
                    .ok_or_else(|| PgError::Corrupt("the audit chain head is missing".into()))?;
                let (mut seq, mut chain): (i64, Vec<u8>) = (get(&head, 0)?, get(&head, 1)?);
                // A batch whose COMMIT was sent when the connection broke may be stored
                // already: the writer retries it, and what is stored is not written twice.
                let ids: Vec<&str> = records.iter().map(|r| r.id.as_str()).collect();
                let present: Vec<String> = conn
                    .rows("SELECT id FROM audit WHERE id = ANY($1)", &[&ids])?
                    .iter()
                    .map(|r| get(r, 0))
                    .collect::<Result<_, PgError>>()?;
                let sink = conn
                    .client
                    .copy_in(&format!(
                        "COPY audit ({COLUMNS}) FROM STDIN (FORMAT binary)"
                    ))
                    .map_err(db)?;
                let mut writer = BinaryCopyInWriter::new(sink, &COLUMN_TYPES);
                for r in records.iter().filter(|r| !present.contains(&r.id)) {
                    chain = encoding::chain_next(&chain, CURRENT, r).ok_or_else(|| {
                        PgError::Corrupt("the current audit encoding is unknown".into())
                    })?;
                    seq += 1;
                    let resources =
                        serde_json::to_string(&r.resources).unwrap_or_else(|_| "[]".into());
                    let contents =
                        serde_json::to_string(&r.contents).unwrap_or_else(|_| "[]".into());
                    let values: [&(dyn ToSql + Sync); 28] = [
                        &r.id,
                        &r.recorded_us,
                        &r.patient_id,
                        &r.app_id,
                        &r.app_name,
                        &r.actor,
                        &r.usage.code(),
                        &r.interaction,
                        &r.resource_type,
                        &r.search_criteria,
                        &i64::from(r.status),
                        &r.error_code,
                        &r.error_detail,
                        &i64::try_from(r.amount).unwrap_or(i64::MAX),
                        &resources,
                        &r.client_address,
                        &r.user_rights,
                        &r.route,
                        &r.method,
                        &i64::from(CURRENT),
                        &chain,
                        &seq,
                        &r.professional_id,
                        &r.professional_name,
                        &r.org_oid,
                        &r.org_name,
                        &r.care_id,
                        &contents,
                    ];
                    writer.write(&values).map_err(db)?;
                }
                writer.finish().map_err(db)?;
                conn.exec(
                    "UPDATE audit_head SET seq = $1, chain = $2 WHERE one",
                    &[&seq, &chain],
                )?;
                Ok(())
            }
        })
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
                    &format!("SELECT count(*) FROM audit WHERE {PATIENT_FILTER}"),
                    &[&patient_id, &query.app_id, &since, &until],
                )?
                .map(|r| get(&r, 0))
                .transpose()?
                .unwrap_or(0);
            let records = conn
                .rows(
                    &format!(
                        "SELECT {COLUMNS} FROM audit WHERE {PATIENT_FILTER}
                         ORDER BY recorded_us DESC, seq DESC LIMIT $5 OFFSET $6"
                    ),
                    &[&patient_id, &query.app_id, &since, &until, &limit, &offset],
                )?
                .iter()
                .map(|r| stored_from_row(r).map(|(_, s)| s.record))
                .collect::<Result<Vec<_>, PgError>>()?;
            Ok((count(total), records))
        })
    }

    fn apps_for_patient(&self, patient_id: &str) -> Result<Vec<(String, String)>> {
        self.pg.read(|conn| {
            conn.rows(
                "SELECT app_id, coalesce(max(app_name), app_id) FROM audit
                 WHERE patient_id = $1 AND app_id IS NOT NULL GROUP BY app_id
                 ORDER BY coalesce(max(app_name), app_id) COLLATE \"C\"",
                &[&patient_id],
            )?
            .iter()
            .map(|r| Ok((get(r, 0)?, get(r, 1)?)))
            .collect()
        })
    }

    fn last_access_by_app(&self, patient_id: &str) -> Result<HashMap<String, i64>> {
        self.pg.read(|conn| {
            conn.rows(
                "SELECT app_id, max(recorded_us) FROM audit
                 WHERE patient_id = $1 AND app_id IS NOT NULL AND usage = 'application' GROUP BY app_id",
                &[&patient_id],
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
        loop {
            let page = self.pg.read(|conn| {
                conn.rows(
                    &format!(
                        "SELECT {COLUMNS} FROM audit WHERE seq > $1 AND recorded_us >= $2 AND recorded_us < $3
                         ORDER BY seq LIMIT $4"
                    ),
                    &[&after, &since_us, &until_us, &SCAN_PAGE],
                )?
                .iter()
                .map(stored_from_row)
                .collect::<Result<Vec<_>, PgError>>()
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
            .map(|i| record(&format!("0-0-{i}"), "p", 5))
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
        let changed = pg.write(|conn| conn.exec("UPDATE audit SET status = 500", &[]));
        assert!(changed.is_err());
        let deleted = pg.write(|conn| conn.exec("DELETE FROM audit", &[]));
        assert!(deleted.is_err());
        let truncated = pg.write(|conn| conn.exec("TRUNCATE audit", &[]));
        assert!(truncated.is_err());
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
