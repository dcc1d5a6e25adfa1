//! The `citizens` table in PostgreSQL.

use std::sync::Arc;

use phr_store::postgres::PgError;
use postgres::Row;

use super::{Citizen, CitizenStore, NewCitizen};
use crate::error::Result;
use crate::postgres::{Postgres, Sql, get};

pub(crate) const SCHEMA: &[&str] = &[r#"
CREATE TABLE citizens (
    patient_id        TEXT PRIMARY KEY,
    identity_key      BYTEA NOT NULL UNIQUE,   -- HMAC-SHA256(identity key file, HETU)
    birth_date        TEXT NOT NULL,
    terms_version     TEXT NOT NULL,
    terms_accepted_at BIGINT NOT NULL,
    created_at        BIGINT NOT NULL,
    patient_stored    BOOLEAN NOT NULL DEFAULT false,
    professional_sharing BOOLEAN NOT NULL DEFAULT false,
    professional_sharing_changed_at BIGINT
);
"#];

pub(crate) struct PostgresCitizenStore {
    pg: Arc<Postgres>,
}

impl PostgresCitizenStore {
    pub fn new(pg: Arc<Postgres>) -> PostgresCitizenStore {
        PostgresCitizenStore { pg }
    }
}

const COLUMNS: &str =
    "patient_id, birth_date, terms_version, created_at, patient_stored, professional_sharing";

fn citizen_from_row(row: &Row) -> Result<Citizen, PgError> {
    Ok(Citizen {
        patient_id: get(row, 0)?,
        birth_date: get(row, 1)?,
        terms_version: get(row, 2)?,
        created_at: get(row, 3)?,
        patient_stored: get(row, 4)?,
        professional_sharing: get(row, 5)?,
    })
}

impl CitizenStore for PostgresCitizenStore {
    fn by_identity(&self, identity: &[u8]) -> Result<Option<Citizen>> {
        self.pg.read(|conn| {
            conn.row(
                &format!("SELECT {COLUMNS} FROM citizens WHERE identity_key = $1"),
                &[&identity],
            )?
            .map(|r| citizen_from_row(&r))
            .transpose()
        })
    }

    fn by_patient(&self, patient_id: &str) -> Result<Option<Citizen>> {
        self.pg.read(|conn| {
            conn.row(
                &format!("SELECT {COLUMNS} FROM citizens WHERE patient_id = $1"),
                &[&patient_id],
            )?
            .map(|r| citizen_from_row(&r))
            .transpose()
        })
    }

    fn insert_if_absent(&self, citizen: &NewCitizen) -> Result<()> {
        self.pg.write(|conn| {
            // Two logins of one person racing: the identity's unique index keeps one row.
            conn.exec(
                "INSERT INTO citizens (patient_id, identity_key, birth_date, terms_version, terms_accepted_at, created_at)
                 VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (identity_key) DO NOTHING",
                &[
                    &citizen.patient_id,
                    &citizen.identity,
                    &citizen.birth_date,
                    &citizen.terms_version,
                    &citizen.accepted_at,
                ],
            )?;
            Ok(())
        })
    }

    fn mark_patient_stored(&self, patient_id: &str) -> Result<()> {
        self.pg.write(|conn| {
            conn.exec(
                "UPDATE citizens SET patient_stored = true WHERE patient_id = $1",
                &[&patient_id],
            )?;
            Ok(())
        })
    }

    fn set_professional_sharing(&self, patient_id: &str, allowed: bool, at: i64) -> Result<bool> {
        self.pg.write(|conn| {
            let changed = conn.exec(
                "UPDATE citizens SET professional_sharing = $1, professional_sharing_changed_at = $2
                 WHERE patient_id = $3",
                &[&allowed, &at, &patient_id],
            )?;
            Ok(changed == 1)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(patient: &str, identity: u8) -> NewCitizen {
        NewCitizen {
            patient_id: patient.into(),
            identity: vec![identity; 32],
            birth_date: "1990-01-01".into(),
            terms_version: "2026-1".into(),
            accepted_at: 42,
        }
    }

    #[test]
    fn a_citizen_keeps_the_first_patient_id_and_their_flags() {
        let store = PostgresCitizenStore::new(crate::postgres::tests::database("citizens"));
        store.insert_if_absent(&new("first", 1)).unwrap();
        store.insert_if_absent(&new("second", 1)).unwrap();
        let citizen = store.by_identity(&[1; 32]).unwrap().unwrap();
        assert_eq!(
            citizen,
            Citizen {
                patient_id: "first".into(),
                birth_date: "1990-01-01".into(),
                terms_version: "2026-1".into(),
                created_at: 42,
                patient_stored: false,
                professional_sharing: false,
            }
        );
        assert_eq!(store.by_patient("second").unwrap(), None);
        store.mark_patient_stored("first").unwrap();
        assert!(store.set_professional_sharing("first", true, 50).unwrap());
        assert!(!store.set_professional_sharing("nobody", true, 50).unwrap());
        let citizen = store.by_patient("first").unwrap().unwrap();
        assert!(citizen.patient_stored && citizen.professional_sharing);
    }
}
