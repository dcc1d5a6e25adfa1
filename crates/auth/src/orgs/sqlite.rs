//! The `organisations` table in SQLite.

use std::sync::Arc;

use rusqlite::{OptionalExtension, Row, params};

use super::{OrgStore, Organisation};
use crate::error::Result;
use crate::sqlite::Sqlite;

pub(crate) struct SqliteOrgStore {
    db: Arc<Sqlite>,
}

impl SqliteOrgStore {
    pub fn new(db: Arc<Sqlite>) -> SqliteOrgStore {
        SqliteOrgStore { db }
    }
}

const COLUMNS: &str = "oid, name_fi, name_sv, name_en, created_at";

fn org_from_row(row: &Row<'_>) -> rusqlite::Result<Organisation> {
    Ok(Organisation {
        oid: row.get(0)?,
        name_fi: row.get(1)?,
        name_sv: row.get(2)?,
        name_en: row.get(3)?,
        created_at: row.get(4)?,
    })
}

impl OrgStore for SqliteOrgStore {
    fn insert(&self, org: &Organisation) -> Result<bool> {
        self.db.run(|conn| {
            let inserted = conn.execute(
                &format!(
                    "INSERT INTO organisations ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (oid) DO NOTHING"
                ),
                params![
                    org.oid,
                    org.name_fi,
                    org.name_sv,
                    org.name_en,
                    org.created_at
                ],
            )?;
            Ok(inserted == 1)
        })
    }

    fn get(&self, oid: &str) -> Result<Option<Organisation>> {
        self.db.run(|conn| {
            conn.query_row(
                &format!("SELECT {COLUMNS} FROM organisations WHERE oid = ?1"),
                [oid],
                org_from_row,
            )
            .optional()
        })
    }

    fn list(&self) -> Result<Vec<Organisation>> {
        self.db.run(|conn| {
            let mut stmt =
                conn.prepare(&format!("SELECT {COLUMNS} FROM organisations ORDER BY oid"))?;
            stmt.query_map([], org_from_row)?.collect()
        })
    }
}
