//! The `organisations` table in PostgreSQL.

use std::sync::Arc;

use phr_store::postgres::PgError;
use postgres::Row;

use super::{OrgStore, Organisation};
use crate::error::Result;
use crate::postgres::{Postgres, Sql, get};

pub(crate) const SCHEMA: &[&str] = &[r#"
CREATE TABLE organisations (
    oid        TEXT PRIMARY KEY,
    name_fi    TEXT NOT NULL,
    name_sv    TEXT NOT NULL,
    name_en    TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
"#];

pub(crate) struct PostgresOrgStore {
    pg: Arc<Postgres>,
}

impl PostgresOrgStore {
    pub fn new(pg: Arc<Postgres>) -> PostgresOrgStore {
        PostgresOrgStore { pg }
    }
}

const COLUMNS: &str = "oid, name_fi, name_sv, name_en, created_at";

fn org_from_row(row: &Row) -> Result<Organisation, PgError> {
    Ok(Organisation {
        oid: get(row, 0)?,
        name_fi: get(row, 1)?,
        name_sv: get(row, 2)?,
        name_en: get(row, 3)?,
        created_at: get(row, 4)?,
    })
}

impl OrgStore for PostgresOrgStore {
    fn insert(&self, org: &Organisation) -> Result<bool> {
        self.pg.write(|conn| {
            let inserted = conn.exec(
                &format!(
                    "INSERT INTO organisations ({COLUMNS}) VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (oid) DO NOTHING"
                ),
                &[
                    &org.oid,
                    &org.name_fi,
                    &org.name_sv,
                    &org.name_en,
                    &org.created_at,
                ],
            )?;
            Ok(inserted == 1)
        })
    }

    fn get(&self, oid: &str) -> Result<Option<Organisation>> {
        self.pg.read(|conn| {
            conn.row(
                &format!("SELECT {COLUMNS} FROM organisations WHERE oid = $1"),
                &[&oid],
            )?
            .map(|r| org_from_row(&r))
            .transpose()
        })
    }

    fn list(&self) -> Result<Vec<Organisation>> {
        self.pg.read(|conn| {
            conn.rows(
                &format!("SELECT {COLUMNS} FROM organisations ORDER BY oid"),
                &[],
            )?
            .iter()
            .map(org_from_row)
            .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_round_trip_and_a_taken_oid_is_not_replaced() {
        let store = PostgresOrgStore::new(crate::postgres::tests::database("auth_orgs"));
        let org = Organisation {
            oid: "1.2.246.10.7".into(),
            name_fi: "Terveysasema".into(),
            name_sv: "Hälsocentral".into(),
            name_en: "Health Centre".into(),
            created_at: 5,
        };
        assert!(store.insert(&org).unwrap());
        let mut other = org.clone();
        other.name_fi = "Toinen".into();
        assert!(!store.insert(&other).unwrap());
        assert_eq!(store.get("1.2.246.10.7").unwrap(), Some(org.clone()));
        assert_eq!(store.get("1.2.3").unwrap(), None);
        assert_eq!(store.list().unwrap(), vec![org]);
    }
}
