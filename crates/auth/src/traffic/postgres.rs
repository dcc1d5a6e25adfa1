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
    /// One statement for the whole batch: an ingest of a 300-entry Bundle makes 301 rows.
    fn insert(&self, rows: &[TrafficRow]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let app_ids: Vec<&str> = rows.iter().map(|r| r.app_id.as_str()).collect();
        let at_us: Vec<i64> = rows.iter().map(|r| r.at_us).collect();
        let kinds: Vec<&str> = rows.iter().map(|r| r.kind.code()).collect();
        let interactions: Vec<&str> = rows.iter().map(|r| r.interaction.as_str()).collect();
        let types: Vec<Option<&str>> = rows.iter().map(|r| r.resource_type.as_deref()).collect();
        let statuses: Vec<i32> = rows.iter().map(|r| i32::from(r.status)).collect();
        let contents: Vec<Option<&str>> = rows.iter().map(|r| r.content.as_deref()).collect();
        let details: Vec<String> = rows.iter().map(|r| r.detail.to_string()).collect();
        self.pg.transaction(|conn| {
            conn.exec(
                "INSERT INTO sandbox_traffic (app_id, at_us, kind, interaction, resource_type, status, content, detail)
                 SELECT app_id, at_us, kind, interaction, resource_type, status, content, detail
                 FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::int[], $7::text[], $8::text[])
                 WITH ORDINALITY AS u(app_id, at_us, kind, interaction, resource_type, status, content, detail, n)
                 ORDER BY n",
                &[
                    &app_ids,
                    &at_us,
                    &kinds,
                    &interactions,
                    &types,
                    &statuses,
                    &contents,
                    &details,
                ],
            )?;
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
