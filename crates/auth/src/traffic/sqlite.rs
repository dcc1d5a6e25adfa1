//! The `sandbox_traffic` table in SQLite.

use std::sync::Arc;

use rusqlite::{Row, params};

use super::{RowKind, TrafficRow, TrafficStore};
use crate::error::Result;
use crate::sqlite::Sqlite;

pub(crate) struct SqliteTrafficStore {
    db: Arc<Sqlite>,
}

impl SqliteTrafficStore {
    pub fn new(db: Arc<Sqlite>) -> SqliteTrafficStore {
        SqliteTrafficStore { db }
    }
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<TrafficRow> {
    let bad = |i: usize| {
        rusqlite::Error::FromSqlConversionFailure(
            i,
            rusqlite::types::Type::Text,
            "unreadable sandbox traffic row".into(),
        )
    };
    let kind: String = row.get(2)?;
    let detail: String = row.get(7)?;
    Ok(TrafficRow {
        app_id: row.get(0)?,
        at_us: row.get(1)?,
        kind: RowKind::parse(&kind).ok_or_else(|| bad(2))?,
        interaction: row.get(3)?,
        resource_type: row.get(4)?,
        status: row.get(5)?,
        content: row.get(6)?,
        detail: serde_json::from_str(&detail).map_err(|_| bad(7))?,
    })
}

impl TrafficStore for SqliteTrafficStore {
    fn insert(&self, rows: &[TrafficRow]) -> Result<()> {
        self.db.run(|conn| {
            let tx = conn.transaction()?;
            {
                let mut stmt = tx.prepare_cached(
                    "INSERT INTO sandbox_traffic (app_id, at_us, kind, interaction, resource_type, status, content, detail)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )?;
                for row in rows {
                    stmt.execute(params![
                        row.app_id,
                        row.at_us,
                        row.kind.code(),
                        row.interaction,
                        row.resource_type,
                        row.status,
                        row.content,
                        row.detail.to_string(),
                    ])?;
                }
            }
            tx.commit()
        })
    }

    fn list(&self, app_id: &str, since_us: i64) -> Result<Vec<TrafficRow>> {
        self.db.run(|conn| {
            let mut stmt = conn.prepare(
                "SELECT app_id, at_us, kind, interaction, resource_type, status, content, detail
                 FROM sandbox_traffic WHERE app_id = ?1 AND at_us >= ?2 ORDER BY at_us, seq",
            )?;
            stmt.query_map(params![app_id, since_us], from_row)?
                .collect()
        })
    }

    fn delete_before(&self, before_us: i64) -> Result<u64> {
        self.db.run(|conn| {
            let n = conn.execute("DELETE FROM sandbox_traffic WHERE at_us < ?1", [before_us])?;
            Ok(n as u64)
        })
    }
}
