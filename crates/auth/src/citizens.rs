//! Citizens: identification by personal identity code, the age rule, acceptance of the
//! terms of use, and the pseudonymous Patient id the rest of the system knows them by.
//!
//! Only a keyed digest of the identity code is stored (to find the citizen again) together
//! with the birth date; the code itself is dropped as soon as it has been checked.

use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::error::{AuthError, Result};
use crate::hetu::Hetu;
use crate::service::{AuthService, patient_resource};

/// A citizen who has taken the service into use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Citizen {
    /// The Patient id (a UUID): `Patient/<patient_id>` in FHIR, `sub` and `patient` in tokens.
    pub patient_id: String,
    pub birth_date: String,
    pub terms_version: String,
    pub created_at: i64,
    /// Whether the Patient resource has been stored through the [`crate::PatientRegistry`].
    pub patient_stored: bool,
    /// Whether the citizen allows professionals (with a care relationship) to read their data.
    pub professional_sharing: bool,
}

/// An identified person who has not yet accepted the terms. Holds no identity code, only
/// its keyed digest, so it can sit in a login session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingCitizen {
    /// Hex of the keyed identity digest.
    pub identity: String,
    pub birth_date: String,
}

/// The outcome of identifying a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identified {
    Known(Citizen),
    /// Old enough, but has not taken the service into use yet.
    New(PendingCitizen),
}

const CITIZEN_COLUMNS: &str =
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

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

impl AuthService {
    /// Identifies a person: a known citizen, or a new one who is old enough. Refuses people
    /// under the minimum age with [`AuthError::UnderAge`].
    pub fn identify(&self, hetu: &Hetu) -> Result<Identified> {
        let identity = self.identity_digest(hetu);
        let known = self
            .db()
            .query_row(
                &format!("SELECT {CITIZEN_COLUMNS} FROM citizens WHERE identity_key = ?1"),
                [&identity],
                citizen_from_row,
            )
            .optional()?;
        if let Some(citizen) = known {
            return Ok(Identified::Known(self.ensure_patient_stored(citizen)?));
        }
        let minimum = self.config().minimum_age;
        if hetu.age_on(self.0.clock.today()) < minimum {
            return Err(AuthError::UnderAge(minimum));
        }
        Ok(Identified::New(PendingCitizen {
            identity: hex(&identity),
            birth_date: hetu.birth_date().to_string(),
        }))
    }

    /// Takes the service into use for an identified person who accepted the terms: creates
    /// the citizen with a fresh Patient id and stores the Patient resource.
    pub fn take_into_use(&self, pending: &PendingCitizen) -> Result<Citizen> {
        let identity = unhex(&pending.identity)
            .ok_or_else(|| AuthError::Invalid("bad pending identity".into()))?;
        let birth = time::Date::parse(
            &pending.birth_date,
            &time::format_description::well_known::Iso8601::DATE,
        )
        .map_err(|_| AuthError::Invalid("bad pending birth date".into()))?;
        let minimum = self.config().minimum_age;
        if crate::hetu::age_on(birth, self.0.clock.today()) < minimum {
            return Err(AuthError::UnderAge(minimum));
        }
        let now = self.now();
        let patient_id = uuid::Uuid::new_v4().to_string();
        {
            let conn = self.db();
            // Two logins racing: the second finds the first one's row.
            conn.execute(
                "INSERT INTO citizens (patient_id, identity_key, birth_date, terms_version, terms_accepted_at, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5) ON CONFLICT (identity_key) DO NOTHING",
                params![patient_id, identity, pending.birth_date, self.config().terms_version, now],
            )?;
        }
        let citizen = self.db().query_row(
            &format!("SELECT {CITIZEN_COLUMNS} FROM citizens WHERE identity_key = ?1"),
            [&identity],
            citizen_from_row,
        )?;
        self.ensure_patient_stored(citizen)
    }

    /// Identifies and, if needed, takes into use in one step (operator `phr token`; sandbox
    /// mode only, test identities only).
    pub fn citizen_for_sandbox_identity(&self, hetu: &Hetu) -> Result<Citizen> {
        if !self.config().mode.is_sandbox() {
            return Err(AuthError::NotAllowed("only in sandbox mode".into()));
        }
        if !hetu.is_test_identity() {
            return Err(AuthError::NotAllowed(
                "the sandbox accepts only test identities (individual number 900–999)".into(),
            ));
        }
        match self.identify(hetu)? {
            Identified::Known(citizen) => Ok(citizen),
            Identified::New(pending) => self.take_into_use(&pending),
        }
    }

    pub fn citizen(&self, patient_id: &str) -> Result<Option<Citizen>> {
        Ok(self
            .db()
            .query_row(
                &format!("SELECT {CITIZEN_COLUMNS} FROM citizens WHERE patient_id = ?1"),
                [patient_id],
                citizen_from_row,
            )
            .optional()?)
    }

    /// The citizen's decision on sharing their data with professionals (portal).
    pub fn set_professional_sharing(&self, patient_id: &str, allowed: bool) -> Result<()> {
        let now = self.now();
        let changed = self.db().execute(
            "UPDATE citizens SET professional_sharing = ?1, professional_sharing_changed_at = ?2 WHERE patient_id = ?3",
            params![allowed as i64, now, patient_id],
        )?;
        if changed == 0 {
            return Err(AuthError::NotFound(format!("citizen {patient_id}")));
        }
        Ok(())
    }

    /// Stores the citizen's Patient through the registry if it is not stored yet (a no-op
    /// without a registry, as in the operator CLI).
    pub(crate) fn store_patient_of(&self, patient_id: &str) -> Result<()> {
        if let Some(citizen) = self.citizen(patient_id)? {
            self.ensure_patient_stored(citizen)?;
        }
        Ok(())
    }

    fn ensure_patient_stored(&self, mut citizen: Citizen) -> Result<Citizen> {
        if citizen.patient_stored {
            return Ok(citizen);
        }
        let registry = self.0.patients.read().ok().and_then(|r| r.clone());
        let Some(registry) = registry else {
            return Ok(citizen);
        };
        registry
            .ensure_patient(&patient_resource(&citizen.patient_id))
            .map_err(AuthError::PatientRegistry)?;
        self.db().execute(
            "UPDATE citizens SET patient_stored = 1 WHERE patient_id = ?1",
            [&citizen.patient_id],
        )?;
        citizen.patient_stored = true;
        Ok(citizen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips() {
        let bytes = vec![0u8, 1, 0xab, 0xff];
        assert_eq!(unhex(&hex(&bytes)), Some(bytes));
        assert_eq!(unhex("abc"), None);
        assert_eq!(unhex("zz"), None);
    }
}
