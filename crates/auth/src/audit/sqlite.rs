//! The audit records in SQLite: `audit_log` (one row per record, in the compact form of
//! `packed.rs`) and `audit_names` (the texts records refer to by number). Both are
//! append-only: triggers abort UPDATE and DELETE.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::encoding::{self, CURRENT, GENESIS};
use super::packed::{self, Packed};
use super::{AuditQuery, AuditRecord, AuditStore, StoredAudit, Usage};
use crate::error::{AuthError, Result};
use crate::sqlite::Sqlite;

/// Names the writer remembers; past this many it forgets them all and starts again (one
/// name per citizen would otherwise grow without bound).
const REMEMBERED_NAMES: usize = 100_000;

pub(crate) struct SqliteAuditStore {
    db: Arc<Sqlite>,
    /// Numbers of names already in `audit_names` (only committed ones).
    names: Mutex<HashMap<String, i64>>,
}

impl SqliteAuditStore {
    pub fn new(db: Arc<Sqlite>) -> SqliteAuditStore {
        SqliteAuditStore {
            db,
            names: Mutex::new(HashMap::new()),
        }
    }
}

pub(super) const COLUMNS: &str =
    "seq, recorded_us, patient, app, app_name, usage, encoding, body, chain";

/// The `audit_names` number of a citizen's id (none when no record names them).
const PATIENT: &str = "(SELECT id FROM audit_names WHERE name = ?1)";

/// `?2 IS NULL OR …` keeps one statement for both cases.
const PATIENT_FILTER: &str = "patient = (SELECT id FROM audit_names WHERE name = ?1)
    AND (?2 IS NULL OR app = (SELECT id FROM audit_names WHERE name = ?2))
    AND recorded_us >= ?3 AND recorded_us < ?4";

pub(super) fn packed_from_row(
    row: &rusqlite::Row<'_>,
) -> rusqlite::Result<(i64, Packed, i64, Vec<u8>)> {
    Ok((
        row.get(0)?,
        Packed {
            recorded_us: row.get(1)?,
            patient: row.get(2)?,
            app: row.get(3)?,
            app_name: row.get(4)?,
            usage: row.get(5)?,
            body: row.get(7)?,
        },
        row.get(6)?,
        row.get(8)?,
    ))
}

/// Turns stored rows back into records, looking each name number up once.
struct Unpacker<'c> {
    conn: &'c Connection,
    names: HashMap<i64, String>,
}

impl<'c> Unpacker<'c> {
    fn new(conn: &'c Connection) -> Self {
        Unpacker {
            conn,
            names: HashMap::new(),
        }
    }

    fn stored(
        &mut self,
        (_, packed, encoding, chain): (i64, Packed, i64, Vec<u8>),
    ) -> Result<StoredAudit> {
        let record = packed::unpack(&packed, &mut |id| self.name(id))?;
        Ok(StoredAudit {
            record,
            encoding: u8::try_from(encoding).unwrap_or(u8::MAX),
            chain,
        })
    }

    fn name(&mut self, id: i64) -> Result<String> {
        if let Some(name) = self.names.get(&id) {
            return Ok(name.clone());
        }
        let name: String = self
            .conn
            .prepare_cached("SELECT name FROM audit_names WHERE id = ?1")?
            .query_row([id], |r| r.get(0))
            .optional()?
            .ok_or_else(|| AuthError::Storage(format!("audit name {id} is missing")))?;
        self.names.insert(id, name.clone());
        Ok(name)
    }
}

/// The number of `name` in `audit_names`, adding it if needed: from `known` (committed),
/// or `added` (added by the current transaction), or the table.
fn name_id(
    conn: &Connection,
    known: &HashMap<String, i64>,
    added: &mut HashMap<String, i64>,
    name: &str,
) -> Result<i64> {
    if let Some(id) = known.get(name).or_else(|| added.get(name)) {
        return Ok(*id);
    }
    conn.prepare_cached(
        "INSERT INTO audit_names (name) VALUES (?1) ON CONFLICT (name) DO NOTHING",
    )?
    .execute([name])?;
    let id: i64 = conn
        .prepare_cached("SELECT id FROM audit_names WHERE name = ?1")?
        .query_row([name], |r| r.get(0))?;
    added.insert(name.to_owned(), id);
    Ok(id)
}

/// Appends records at the end of the chain inside the caller's transaction; returns the names
/// it added. `seq`, `encoding` and `chain` are given for records moved from the old table,
/// computed (next position, [`CURRENT`]) for new ones.
fn insert(
    conn: &Connection,
    known: &HashMap<String, i64>,
    record: &AuditRecord,
    placed: Option<(i64, u8, &[u8])>,
    chain: &mut Vec<u8>,
    added: &mut HashMap<String, i64>,
) -> Result<()> {
    let (seq, encoding) = match placed {
        Some((seq, encoding, stored_chain)) => {
            *chain = stored_chain.to_vec();
            (Some(seq), encoding)
        }
        None => {
            *chain = encoding::chain_next(chain, CURRENT, record).ok_or_else(|| {
                AuthError::Storage("the current audit encoding is unknown".into())
            })?;
            (None, CURRENT)
        }
    };
    let packed = packed::pack(record, &mut |name| name_id(conn, known, added, name))?;
    conn.prepare_cached(
        "INSERT INTO audit_log (seq, recorded_us, patient, app, app_name, usage, encoding, body, chain)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        seq,
        packed.recorded_us,
        packed.patient,
        packed.app,
        packed.app_name,
        packed.usage,
        encoding,
        packed.body,
        &chain[..],
    ])?;
    Ok(())
}

impl AuditStore for SqliteAuditStore {
    fn append(&self, records: &[AuditRecord]) -> Result<()> {
        let mut names = self.names.lock().unwrap_or_else(|p| p.into_inner());
        let mut added = HashMap::new();
        let result = self.db.run(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let written = (|| -> Result<()> {
                let mut chain: Vec<u8> = tx
                    .query_row(
                        "SELECT chain FROM audit_log ORDER BY seq DESC LIMIT 1",
                        [],
                        |r| r.get(0),
                    )
                    .optional()?
                    .unwrap_or_else(|| GENESIS.to_vec());
                for record in records {
                    insert(&tx, &names, record, None, &mut chain, &mut added)?;
                }
                Ok(())
            })();
            match written {
                Ok(()) => tx.commit().map(|()| Ok(())),
                // Dropping the transaction rolls it back.
                Err(e) => Ok(Err(e)),
            }
        });
        let result = result.and_then(|written| written);
        if result.is_ok() {
            if names.len() + added.len() > REMEMBERED_NAMES {
                names.clear();
            }
            names.extend(added);
        }
        result
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
            Ok((|| -> Result<(u64, Vec<AuditRecord>)> {
                let total: i64 = conn.query_row(
                    &format!("SELECT count(*) FROM audit_log WHERE {PATIENT_FILTER}"),
                    params![patient_id, query.app_id, since, until],
                    |r| r.get(0),
                )?;
                let mut stmt = conn.prepare(&format!(
                    "SELECT {COLUMNS} FROM audit_log WHERE {PATIENT_FILTER}
                     ORDER BY recorded_us DESC, seq DESC LIMIT ?5 OFFSET ?6"
                ))?;
                let rows = stmt.query_map(
                    params![
                        patient_id,
                        query.app_id,
                        since,
                        until,
                        i64::try_from(count).unwrap_or(i64::MAX),
                        i64::try_from(offset).unwrap_or(i64::MAX)
                    ],
                    packed_from_row,
                )?;
                let mut unpacker = Unpacker::new(conn);
                let records = rows
                    .map(|row| Ok(unpacker.stored(row?)?.record))
                    .collect::<Result<Vec<_>>>()?;
                Ok((u64::try_from(total).unwrap_or(0), records))
            })())
        })?
    }

    fn apps_for_patient(&self, patient_id: &str) -> Result<Vec<(String, String)>> {
        self.db.run(|conn| {
            let mut stmt = conn.prepare(&format!(
                "SELECT a.name, coalesce(max(n.name), a.name) FROM audit_log l
                 JOIN audit_names a ON a.id = l.app LEFT JOIN audit_names n ON n.id = l.app_name
                 WHERE l.patient = {PATIENT} GROUP BY l.app ORDER BY 2"
            ))?;
            stmt.query_map([patient_id], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect()
        })
    }

    fn last_access_by_app(&self, patient_id: &str) -> Result<HashMap<String, i64>> {
        self.db.run(|conn| {
            let mut stmt = conn.prepare(&format!(
                "SELECT a.name, max(l.recorded_us) FROM audit_log l JOIN audit_names a ON a.id = l.app
                 WHERE l.patient = {PATIENT} AND l.usage = ?2 GROUP BY l.app"
            ))?;
            stmt.query_map(
                params![patient_id, packed::usage_number(Usage::Application)],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?
            .collect()
        })
    }

    fn scan(
        &self,
        since_us: i64,
        until_us: i64,
        visit: &mut dyn FnMut(StoredAudit) -> Result<()>,
    ) -> Result<()> {
        self.db.run(|conn| {
            Ok((|| -> Result<()> {
                let mut stmt = conn.prepare(&format!(
                    "SELECT {COLUMNS} FROM audit_log WHERE recorded_us >= ?1 AND recorded_us < ?2 ORDER BY seq"
                ))?;
                let mut unpacker = Unpacker::new(conn);
                let rows = stmt.query_map(params![since_us, until_us], packed_from_row)?;
                for row in rows {
                    visit(unpacker.stored(row?)?)?;
                }
                Ok(())
            })())
        })?
    }
}

/// Moves the records of the wide `audit` table (every release before the compact form) into
/// `audit_log` with their positions, encodings and chain values, then drops it. Runs inside
/// the migration's transaction.
pub(crate) fn move_wide_table(conn: &Connection) -> Result<()> {
    let known = HashMap::new();
    let mut added = HashMap::new();
    let mut chain = Vec::new();
    let mut stmt = conn.prepare(&format!(
        "SELECT seq, {WIDE_COLUMNS} FROM audit ORDER BY seq"
    ))?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let seq: i64 = row.get(0)?;
        let stored = wide_from_row(row)?;
        insert(
            conn,
            &known,
            &stored.record,
            Some((seq, stored.encoding, &stored.chain)),
            &mut chain,
            &mut added,
        )?;
    }
    drop(rows);
    drop(stmt);
    conn.execute_batch("DROP TABLE audit")?;
    Ok(())
}

const WIDE_COLUMNS: &str = "id, recorded_us, patient_id, app_id, app_name, actor, usage, interaction, resource_type,
    search_criteria, status, error_code, error_detail, amount, resources, client_address, user_rights,
    route, method, encoding, chain, professional_id, professional_name, org_oid, org_name, care_id,
    contents";

/// A row of the wide table, from column 1 on (column 0 is `seq`).
fn wide_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<StoredAudit> {
    let at = |i: usize| i + 1;
    let usage: String = row.get(at(6))?;
    let resources: String = row.get(at(14))?;
    let encoding: i64 = row.get(at(19))?;
    let contents: String = row.get(at(26))?;
    Ok(StoredAudit {
        record: AuditRecord {
            id: row.get(at(0))?,
            recorded_us: row.get(at(1))?,
            patient_id: row.get(at(2))?,
            app_id: row.get(at(3))?,
            app_name: row.get(at(4))?,
            actor: row.get(at(5))?,
            // An unknown code cannot have been written by this software; it reads as an
            // application access and fails chain verification.
            usage: Usage::parse(&usage).unwrap_or(Usage::Application),
            interaction: row.get(at(7))?,
            resource_type: row.get(at(8))?,
            search_criteria: row.get(at(9))?,
            status: row.get(at(10))?,
            error_code: row.get(at(11))?,
            error_detail: row.get(at(12))?,
            amount: u64::try_from(row.get::<_, i64>(at(13))?).unwrap_or(0),
            resources: serde_json::from_str(&resources).unwrap_or_default(),
            client_address: row.get(at(15))?,
            user_rights: row.get(at(16))?,
            route: row.get(at(17))?,
            method: row.get(at(18))?,
            professional_id: row.get(at(21))?,
            professional_name: row.get(at(22))?,
            org_oid: row.get(at(23))?,
            org_name: row.get(at(24))?,
            care_id: row.get(at(25))?,
            contents: serde_json::from_str(&contents).unwrap_or_default(),
        },
        encoding: u8::try_from(encoding).unwrap_or(u8::MAX),
        chain: row.get(at(20))?,
    })
}
