//! The `citizens` table in SQLite.

use std::sync::Arc;

use rusqlite::{OptionalExtension, params};

use super::{Citizen, CitizenStore, NewCitizen};
use crate::error::Result;
use crate::sqlite::Sqlite;

pub(crate) struct SqliteCitizenStore {
    db: Arc<Sqlite>,
}

impl SqliteCitizenStore {
    pub fn new(db: Arc<Sqlite>) -> SqliteCitizenStore {
        SqliteCitizenStore { db }
    }
}

const COLUMNS: &str =
    "patient_id, birth_date, terms_version, created_at, patient_stored, professional_sharing";

fn citizen_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Citizen> {
    Ok(Citizen {
        patient_id: row.get(0)?,
        birth_date: row.get(1)?,
        terms_version: row.get(2)?,
        created_at: row.get(3)?,
        patient_stored: row.get::<_, i64>(4)? != 0,
        professional_sharing: row.get::<_, i64>(5)? != 0,
    })
}

impl CitizenStore for SqliteCitizenStore {
    fn by_identity(&self, identity: &[u8]) -> Result<Option<Citizen>> {
        self.db.run(|conn| {
            conn.query_row(
                &format!("SELECT {COLUMNS} FROM citizens WHERE identity_key = ?1"),
                [identity],
                citizen_from_row,
            )
            .optional()
        })
    }

    fn by_patient(&self, patient_id: &str) -> Result<Option<Citizen>> {
        self.db.run(|conn| {
            conn.query_row(
                &format!("SELECT {COLUMNS} FROM citizens WHERE patient_id = ?1"),
                [patient_id],
                citizen_from_row,
            )
            .optional()
        })
    }

    fn insert_if_absent(&self, citizen: &NewCitizen) -> Result<()> {
        self.db.run(|conn| {
            conn.execute(
                "INSERT INTO citizens (patient_id, identity_key, birth_date, terms_version, terms_accepted_at, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5) ON CONFLICT (identity_key) DO NOTHING",
                params![
                    citizen.patient_id,
                    citizen.identity,
                    citizen.birth_date,
                    citizen.terms_version,
                    citizen.accepted_at
                ],
            )?;
            Ok(())
        })
    }

    fn mark_patient_stored(&self, patient_id: &str) -> Result<()> {
        self.db.run(|conn| {
            conn.execute(
                "UPDATE citizens SET patient_stored = 1 WHERE patient_id = ?1",
                [patient_id],
            )?;
            Ok(())
        })
    }

    fn set_professional_sharing(&self, patient_id: &str, allowed: bool, at: i64) -> Result<bool> {
        self.db.run(|conn| {
            let changed = conn.execute(
                "UPDATE citizens SET professional_sharing = ?1, professional_sharing_changed_at = ?2 WHERE patient_id = ?3",
                params![i64::from(allowed), at, patient_id],
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
    fn a_citizen_is_found_by_identity_and_by_patient() {
        let store = SqliteCitizenStore::new(Sqlite::in_memory());
        store.insert_if_absent(&new("p1", 1)).unwrap();
        let expected = Citizen {
            patient_id: "p1".into(),
            birth_date: "1990-01-01".into(),
            terms_version: "2026-1".into(),
            created_at: 42,
            patient_stored: false,
            professional_sharing: false,
        };
        assert_eq!(store.by_identity(&[1; 32]).unwrap(), Some(expected.clone()));
        assert_eq!(store.by_patient("p1").unwrap(), Some(expected));
        assert_eq!(store.by_identity(&[2; 32]).unwrap(), None);
    }

    #[test]
    fn a_known_identity_keeps_its_first_patient_id() {
        let store = SqliteCitizenStore::new(Sqlite::in_memory());
        store.insert_if_absent(&new("first", 1)).unwrap();
        store.insert_if_absent(&new("second", 1)).unwrap();
        assert_eq!(
            store.by_identity(&[1; 32]).unwrap().unwrap().patient_id,
            "first"
        );
        assert_eq!(store.by_patient("second").unwrap(), None);
    }

    #[test]
    fn flags_are_stored() {
        let store = SqliteCitizenStore::new(Sqlite::in_memory());
        store.insert_if_absent(&new("p1", 1)).unwrap();
        store.mark_patient_stored("p1").unwrap();
        assert!(store.set_professional_sharing("p1", true, 50).unwrap());
        assert!(!store.set_professional_sharing("p2", true, 50).unwrap());
        let citizen = store.by_patient("p1").unwrap().unwrap();
        assert!(citizen.patient_stored && citizen.professional_sharing);
    }
}
