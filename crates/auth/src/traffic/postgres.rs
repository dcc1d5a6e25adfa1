//! The `sandbox_traffic` table in PostgreSQL.

use std::sync::Arc;

use phr_store::postgres::PgError;
use postgres::Row;

use super::{RowKind, TrafficRow, TrafficStore};
use crate::error::Result;
use crate::postgres::{Postgres, Sql, count, get};

pub(crate) const SCHEMA: &[&str] = &[r#"
CREATE TABLE sandbox_traffic (
    seq           BIGSERIAL PRIMARY KEY,
    app_id        TEXT NOT NULL,
    at_us         BIGINT NOT NULL,
    kind          TEXT NOT NULL,                  -- request | resource
    interaction   TEXT NOT NULL,
    resource_type TEXT,
    status        INTEGER NOT NULL,
    content       TEXT,
    detail        TEXT NOT NULL                   -- JSON
);
CREATE INDEX sandbox_traffic_by_app ON sandbox_traffic (app_id, at_us);
CREATE INDEX sandbox_traffic_by_time ON sandbox_traffic (at_us);
"#];

pub(crate) struct PostgresTrafficStore {
    pg: Arc<Postgres>,
}

impl PostgresTrafficStore {
    pub fn new(pg: Arc<Postgres>) -> PostgresTrafficStore {
        PostgresTrafficStore { pg }
    }
}

fn from_row(row: &Row) -> Result<TrafficRow, PgError> {
    let bad = || PgError::Corrupt("unreadable row in sandbox_traffic".into());
    let kind: String = get(row, 2)?;
    let status: i32 = get(row, 5)?;
    let detail: String = get(row, 7)?;
    Ok(TrafficRow {
        app_id: get(row, 0)?,
        at_us: get(row, 1)?,
        kind: RowKind::parse(&kind).ok_or_else(bad)?,
        interaction: get(row, 3)?,
        resource_type: get(row, 4)?,
        status: u16::try_from(status).map_err(|_| bad())?,
        content: get(row, 6)?,
        detail: serde_json::from_str(&detail).map_err(|_| bad())?,
    })
}

impl TrafficStore for PostgresTrafficStore {
    fn insert(&self, rows: &[TrafficRow]) -> Result<()> {
        self.pg.transaction(|conn| {
            for row in rows {
                let status = i32::from(row.status);
                conn.exec(
                    "INSERT INTO sandbox_traffic (app_id, at_us, kind, interaction, resource_type, status, content, detail)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    &[
                        &row.app_id,
                        &row.at_us,
                        &row.kind.code(),
                        &row.interaction,
                        &row.resource_type,
                        &status,
                        &row.content,
                        &row.detail.to_string(),
                    ],
                )?;
            }
            Ok(())
        })
    }

    fn list(&self, app_id: &str, since_us: i64) -> Result<Vec<TrafficRow>> {
        self.pg.read(|conn| {
            conn.rows(
                "SELECT app_id, at_us, kind, interaction, resource_type, status, content, detail
                 FROM sandbox_traffic WHERE app_id = $1 AND at_us >= $2 ORDER BY at_us, seq",
                &[&app_id, &since_us],
            )?
            .iter()
            .map(from_row)
            .collect()
        })
    }

    fn delete_before(&self, before_us: i64) -> Result<u64> {
        self.pg.write(|conn| {
            let n = conn.exec(
                "DELETE FROM sandbox_traffic WHERE at_us < $1",
                &[&before_us],
            )?;
            Ok(count(i64::try_from(n).unwrap_or(i64::MAX)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_on_postgres() {
        crate::traffic::tests::rows_are_kept_per_app_and_expire(Arc::new(
            PostgresTrafficStore::new(crate::postgres::tests::database("auth_traffic")),
        ));
    }
}
