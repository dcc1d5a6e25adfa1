//! The `audit` table in SQLite (append-only: triggers abort UPDATE and DELETE).

use std::collections::HashMap;
use std::sync::Arc;

use rusqlite::{OptionalExtension, TransactionBehavior, params};

use super::encoding::{self, CURRENT, GENESIS};
use super::{AuditQuery, AuditRecord, AuditStore, StoredAudit, Usage};
use crate::error::{AuthError, Result};
use crate::sqlite::Sqlite;

pub(crate) struct SqliteAuditStore {
    db: Arc<Sqlite>,
}

impl SqliteAuditStore {
    pub fn new(db: Arc<Sqlite>) -> SqliteAuditStore {
        SqliteAuditStore { db }
    }
}

const COLUMNS: &str = "id, recorded_us, patient_id, app_id, app_name, actor, usage, interaction, resource_type,
    search_criteria, status, error_code, error_detail, amount, resources, client_address, user_rights,
    route, method, encoding, chain, professional_id, professional_name, org_oid, org_name, care_id,
    contents";

fn stored_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<StoredAudit> {
    let usage: String = row.get(6)?;
    let resources: String = row.get(14)?;
    let encoding: i64 = row.get(19)?;
    let contents: String = row.get(26)?;
    Ok(StoredAudit {
        record: AuditRecord {
            id: row.get(0)?,
            recorded_us: row.get(1)?,
            patient_id: row.get(2)?,
            app_id: row.get(3)?,
            app_name: row.get(4)?,
            actor: row.get(5)?,
            // An unknown code cannot have been written by this software; it reads as an
            // application access and fails chain verification.
            usage: Usage::parse(&usage).unwrap_or(Usage::Application),
            interaction: row.get(7)?,
            resource_type: row.get(8)?,
            search_criteria: row.get(9)?,
            status: row.get(10)?,
            error_code: row.get(11)?,
            error_detail: row.get(12)?,
            amount: u64::try_from(row.get::<_, i64>(13)?).unwrap_or(0),
            resources: serde_json::from_str(&resources).unwrap_or_default(),
            client_address: row.get(15)?,
            user_rights: row.get(16)?,
            route: row.get(17)?,
            method: row.get(18)?,
            professional_id: row.get(21)?,
            professional_name: row.get(22)?,
            org_oid: row.get(23)?,
            org_name: row.get(24)?,
            care_id: row.get(25)?,
            contents: serde_json::from_str(&contents).unwrap_or_default(),
        },
        encoding: u8::try_from(encoding).unwrap_or(u8::MAX),
        chain: row.get(20)?,
    })
}

/// `?2 IS NULL OR app_id = ?2` keeps one statement for both cases.
const PATIENT_FILTER: &str =
    "patient_id = ?1 AND (?2 IS NULL OR app_id = ?2) AND recorded_us >= ?3 AND recorded_us < ?4";

impl AuditStore for SqliteAuditStore {
    fn append(&self, records: &[AuditRecord]) -> Result<()> {
        let mut failure = None;
        self.db.run(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut chain: Vec<u8> = tx
                .query_row(
                    "SELECT chain FROM audit ORDER BY seq DESC LIMIT 1",
                    [],
                    |r| r.get(0),
                )
                .optional()?
                .unwrap_or_else(|| GENESIS.to_vec());
            {
                let mut stmt = tx.prepare_cached(
                    "INSERT INTO audit (id, recorded_us, patient_id, app_id, app_name, actor, usage, interaction,
                        resource_type, search_criteria, status, error_code, error_detail, amount, resources,
                        client_address, user_rights, route, method, encoding, chain, professional_id,
                        professional_name, org_oid, org_name, care_id, contents)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21,
                        ?22, ?23, ?24, ?25, ?26, ?27)",
                )?;
                for r in records {
                    let Some(next) = encoding::chain_next(&chain, CURRENT, r) else {
                        failure = Some("the current audit encoding is unknown");
                        return Ok(());
                    };
                    chain = next;
                    stmt.execute(params![
                        r.id,
                        r.recorded_us,
                        r.patient_id,
                        r.app_id,
                        r.app_name,
                        r.actor,
                        r.usage.code(),
                        r.interaction,
                        r.resource_type,
                        r.search_criteria,
                        r.status,
                        r.error_code,
                        r.error_detail,
                        i64::try_from(r.amount).unwrap_or(i64::MAX),
                        serde_json::to_string(&r.resources).unwrap_or_else(|_| "[]".into()),
                        r.client_address,
                        r.user_rights,
                        r.route,
                        r.method,
                        CURRENT,
                        chain,
                        r.professional_id,
                        r.professional_name,
                        r.org_oid,
                        r.org_name,
                        r.care_id,
                        serde_json::to_string(&r.contents).unwrap_or_else(|_| "[]".into()),
                    ])?;
                }
            }
            tx.commit()
        })?;
        match failure {
            Some(why) => Err(AuthError::Storage(why.into())),
            None => Ok(()),
        }
    }

    fn for_patient(
        &self,
        patient_id: &str,
        query: &AuditQuery,
        count: usize,
        offset: usize,
    ) -> Result<(u64, Vec<AuditRecord>)> {
        let since = query.since_us.unwrap_or(i64::MIN);
        let until = query.until_us.unwrap_or(i64::MAX);
        self.db.run(|conn| {
            let total: i64 = conn.query_row(
                &format!("SELECT count(*) FROM audit WHERE {PATIENT_FILTER}"),
                params![patient_id, query.app_id, since, until],
                |r| r.get(0),
            )?;
            let mut stmt = conn.prepare(&format!(
                "SELECT {COLUMNS} FROM audit WHERE {PATIENT_FILTER}
                 ORDER BY recorded_us DESC, seq DESC LIMIT ?5 OFFSET ?6"
            ))?;
            let records = stmt
                .query_map(
                    params![
                        patient_id,
                        query.app_id,
                        since,
                        until,
                        i64::try_from(count).unwrap_or(i64::MAX),
                        i64::try_from(offset).unwrap_or(i64::MAX)
                    ],
                    stored_from_row,
                )?
                .map(|row| row.map(|stored| stored.record))
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok((u64::try_from(total).unwrap_or(0), records))
        })
    }

    fn apps_for_patient(&self, patient_id: &str) -> Result<Vec<(String, String)>> {
        self.db.run(|conn| {
            let mut stmt = conn.prepare(
                "SELECT app_id, coalesce(max(app_name), app_id) FROM audit
                 WHERE patient_id = ?1 AND app_id IS NOT NULL GROUP BY app_id ORDER BY 2",
            )?;
            stmt.query_map([patient_id], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect()
        })
    }

    fn last_access_by_app(&self, patient_id: &str) -> Result<HashMap<String, i64>> {
        self.db.run(|conn| {
            let mut stmt = conn.prepare(
                "SELECT app_id, max(recorded_us) FROM audit
                 WHERE patient_id = ?1 AND app_id IS NOT NULL AND usage = 'application' GROUP BY app_id",
            )?;
            stmt.query_map([patient_id], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect()
        })
    }

    fn scan(
        &self,
        since_us: i64,
        until_us: i64,
        visit: &mut dyn FnMut(StoredAudit) -> Result<()>,
    ) -> Result<()> {
        let mut failure = None;
        self.db.run(|conn| {
            let mut stmt = conn.prepare(&format!(
                "SELECT {COLUMNS} FROM audit WHERE recorded_us >= ?1 AND recorded_us < ?2 ORDER BY seq"
            ))?;
            let rows = stmt.query_map(params![since_us, until_us], stored_from_row)?;
            for row in rows {
                if let Err(e) = visit(row?) {
                    failure = Some(e);
                    break;
                }
            }
            Ok(())
        })?;
        match failure {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}
