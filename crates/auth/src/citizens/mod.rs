//! Citizens: identification by personal identity code, the age rule, acceptance of the
//! terms of use, and the pseudonymous Patient id the rest of the system knows them by.
//!
//! Only a keyed digest of the identity code is stored (to find the citizen again) together
//! with the birth date; the code itself is dropped as soon as it has been checked.
//!
//! Owns the `citizens` table through [`CitizenStore`] (SQLite in `sqlite.rs`, PostgreSQL in `postgres.rs`) and the
//! identity key. Never stores, logs or returns an identity code.

pub(crate) mod postgres;
mod sqlite;

use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::clock::Clock;
use crate::error::{AuthError, Result};
use crate::hetu::Hetu;

pub(crate) use postgres::PostgresCitizenStore;
pub(crate) use sqlite::SqliteCitizenStore;

/// A citizen who has taken the service into use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Citizen {
    /// The Patient id (a UUID): `Patient/<patient_id>` in FHIR, `sub` and `patient` in tokens.
    pub patient_id: String,
    pub birth_date: String,
    pub terms_version: String,
    pub created_at: i64,
    /// Whether the Patient resource has been stored through the [`PatientRegistry`].
    pub patient_stored: bool,
    /// Whether the citizen allows professionals (with a care relationship) to read their data.
    pub professional_sharing: bool,
}

/// A citizen to store: who (by identity digest), born when, which terms accepted when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCitizen {
    pub patient_id: String,
    /// Keyed digest of the identity code.
    pub identity: Vec<u8>,
    pub birth_date: String,
    pub terms_version: String,
    pub accepted_at: i64,
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

/// Where citizens are kept.
pub trait CitizenStore: Send + Sync {
    fn by_identity(&self, identity: &[u8]) -> Result<Option<Citizen>>;
    fn by_patient(&self, patient_id: &str) -> Result<Option<Citizen>>;
    /// Stores a citizen unless the identity is already known (two logins racing: the second
    /// finds the first one's row).
    fn insert_if_absent(&self, citizen: &NewCitizen) -> Result<()>;
    fn mark_patient_stored(&self, patient_id: &str) -> Result<()>;
    /// `false` when there is no such citizen.
    fn set_professional_sharing(&self, patient_id: &str, allowed: bool, at: i64) -> Result<bool>;
}

/// Creates the citizen's `Patient/<id>` in the FHIR store. The server implements it; it must
/// be idempotent (an update-as-create of the given resource), because a failed sign-up is
/// retried at the citizen's next login.
pub trait PatientRegistry: Send + Sync {
    fn ensure_patient(&self, patient: &Value) -> std::result::Result<(), String>;
}

/// The pseudonymous Patient resource for `patient_id` (fiphr-sd-patient: only a `urn:uuid`
/// identifier, nothing that identifies the person).
pub fn patient_resource(patient_id: &str) -> Value {
    json!({
        "resourceType": "Patient",
        "id": patient_id,
        "meta": { "profile": ["http://phr.kanta.fi/StructureDefinition/fiphr-sd-patient"] },
        "language": "fi",
        "identifier": [{ "system": "urn:ietf:rfc:3986", "value": format!("urn:uuid:{patient_id}") }],
        "active": true
    })
}

/// The rules about citizens over a [`CitizenStore`].
pub struct Citizens {
    store: Arc<dyn CitizenStore>,
    clock: Arc<dyn Clock>,
    identity_key: Vec<u8>,
    minimum_age: u32,
    terms_version: String,
    sandbox: bool,
    registry: RwLock<Option<Arc<dyn PatientRegistry>>>,
}

impl Citizens {
    pub fn new(
        store: Arc<dyn CitizenStore>,
        clock: Arc<dyn Clock>,
        identity_key: Vec<u8>,
        config: &crate::config::AuthConfig,
    ) -> Citizens {
        Citizens {
            store,
            clock,
            identity_key,
            minimum_age: config.minimum_age,
            terms_version: config.terms_version.clone(),
            sandbox: config.mode.is_sandbox(),
            registry: RwLock::new(None),
        }
    }

    /// Sets the hook that stores a new citizen's Patient resource.
    pub fn set_registry(&self, registry: Arc<dyn PatientRegistry>) {
        if let Ok(mut slot) = self.registry.write() {
            *slot = Some(registry);
        }
    }

    fn identity_digest(&self, hetu: &Hetu) -> Vec<u8> {
        crate::secrets::keyed_digest(&self.identity_key, hetu.canonical().as_bytes())
    }

    /// Identifies a person: a known citizen, or a new one who is old enough. Refuses people
    /// under the minimum age with [`AuthError::UnderAge`].
    pub fn identify(&self, hetu: &Hetu) -> Result<Identified> {
        let identity = self.identity_digest(hetu);
        if let Some(citizen) = self.store.by_identity(&identity)? {
            return Ok(Identified::Known(self.ensure_patient_stored(citizen)?));
        }
        if hetu.age_on(self.clock.today()) < self.minimum_age {
            return Err(AuthError::UnderAge(self.minimum_age));
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
        if crate::hetu::age_on(birth, self.clock.today()) < self.minimum_age {
            return Err(AuthError::UnderAge(self.minimum_age));
        }
        self.store.insert_if_absent(&NewCitizen {
            patient_id: uuid::Uuid::new_v4().to_string(),
            identity: identity.clone(),
            birth_date: pending.birth_date.clone(),
            terms_version: self.terms_version.clone(),
            accepted_at: self.clock.now(),
        })?;
        let citizen = self
            .store
            .by_identity(&identity)?
            .ok_or_else(|| AuthError::NotFound("citizen just stored".into()))?;
        self.ensure_patient_stored(citizen)
    }

    fn sandbox_only(&self, hetu: &Hetu) -> Result<()> {
        if !self.sandbox {
            return Err(AuthError::NotAllowed("only in sandbox mode".into()));
        }
        if !hetu.is_test_identity() {
            return Err(AuthError::NotAllowed(
                "the sandbox accepts only test identities (individual number 900–999)".into(),
            ));
        }
        Ok(())
    }

    /// Identifies and, if needed, takes into use in one step (operator `phr token`; sandbox
    /// mode only, test identities only).
    pub fn for_sandbox_identity(&self, hetu: &Hetu) -> Result<Citizen> {
        self.sandbox_only(hetu)?;
        match self.identify(hetu)? {
            Identified::Known(citizen) => Ok(citizen),
            Identified::New(pending) => self.take_into_use(&pending),
        }
    }

    /// Sandbox only: takes a test identity into use with a given Patient id, as if the person
    /// had logged in and accepted the terms (the demo's citizens, whose seeded data is stored
    /// under known pseudonyms). A known identity keeps the Patient id it has.
    pub fn enroll_sandbox_identity(&self, hetu: &Hetu, patient_id: &str) -> Result<Citizen> {
        self.sandbox_only(hetu)?;
        self.store.insert_if_absent(&NewCitizen {
            patient_id: patient_id.to_owned(),
            identity: self.identity_digest(hetu),
            birth_date: hetu.birth_date().to_string(),
            terms_version: self.terms_version.clone(),
            accepted_at: self.clock.now(),
        })?;
        match self.identify(hetu)? {
            Identified::Known(citizen) => Ok(citizen),
            Identified::New(_) => Err(AuthError::Invalid("the identity was not stored".into())),
        }
    }

    /// The Patient id of a citizen who has taken the service into use, looked up by identity
    /// code without taking anyone into use (a professional system looking the citizen up).
    pub fn patient_of(&self, hetu: &Hetu) -> Result<Option<String>> {
        Ok(self
            .store
            .by_identity(&self.identity_digest(hetu))?
            .map(|c| c.patient_id))
    }

    pub fn get(&self, patient_id: &str) -> Result<Option<Citizen>> {
        self.store.by_patient(patient_id)
    }

    /// The citizen's decision on sharing their data with professionals (portal).
    pub fn set_professional_sharing(&self, patient_id: &str, allowed: bool) -> Result<()> {
        if !self
            .store
            .set_professional_sharing(patient_id, allowed, self.clock.now())?
        {
            return Err(AuthError::NotFound(format!("citizen {patient_id}")));
        }
        Ok(())
    }

    /// Stores the citizen's Patient through the registry if it is not stored yet (a no-op
    /// without a registry, as in the operator CLI).
    pub fn store_patient_of(&self, patient_id: &str) -> Result<()> {
        if let Some(citizen) = self.get(patient_id)? {
            self.ensure_patient_stored(citizen)?;
        }
        Ok(())
    }

    fn ensure_patient_stored(&self, mut citizen: Citizen) -> Result<Citizen> {
        if citizen.patient_stored {
            return Ok(citizen);
        }
        let registry = self.registry.read().ok().and_then(|r| r.clone());
        let Some(registry) = registry else {
            return Ok(citizen);
        };
        registry
            .ensure_patient(&patient_resource(&citizen.patient_id))
            .map_err(AuthError::PatientRegistry)?;
        self.store.mark_patient_stored(&citizen.patient_id)?;
        citizen.patient_stored = true;
        Ok(citizen)
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Recording(Mutex<Vec<Value>>);

    impl PatientRegistry for Recording {
        fn ensure_patient(&self, patient: &Value) -> std::result::Result<(), String> {
            self.0.lock().unwrap().push(patient.clone());
            Ok(())
        }
    }

    fn citizens(config: crate::config::AuthConfig) -> Citizens {
        // 1 June 2026.
        let clock = Arc::new(ManualClock::at_micros(1_780_272_000_000_000));
        let store = Arc::new(SqliteCitizenStore::new(crate::sqlite::Sqlite::in_memory()));
        Citizens::new(store, clock, vec![7; 32], &config)
    }

    #[test]
    fn hex_round_trips() {
        let bytes = vec![0u8, 1, 0xab, 0xff];
        assert_eq!(unhex(&hex(&bytes)), Some(bytes));
        assert_eq!(unhex("abc"), None);
        assert_eq!(unhex("zz"), None);
    }

    #[test]
    fn a_new_citizen_is_known_after_taking_the_service_into_use() {
        let citizens = citizens(crate::config::AuthConfig::default());
        let registry = Arc::new(Recording::default());
        citizens.set_registry(registry.clone());
        let hetu = Hetu::parse("010190-900P").unwrap();
        let Identified::New(pending) = citizens.identify(&hetu).unwrap() else {
            panic!("not known yet");
        };
        assert_eq!(pending.birth_date, "1990-01-01");
        assert!(!pending.identity.contains("010190"));
        let citizen = citizens.take_into_use(&pending).unwrap();
        assert!(citizen.patient_stored);
        assert_eq!(registry.0.lock().unwrap().len(), 1);
        assert_eq!(
            citizens.identify(&hetu).unwrap(),
            Identified::Known(citizen.clone())
        );
        // Taking into use twice (two logins racing) keeps one citizen.
        assert_eq!(citizens.take_into_use(&pending).unwrap(), citizen);
    }

    #[test]
    fn under_age_people_are_refused() {
        let citizens = citizens(crate::config::AuthConfig::default());
        // Born 1 July 2010: 15 on 1 June 2026.
        let hetu = Hetu::parse(&crate::hetu::tests_support::hetu("010710", 'A', 901)).unwrap();
        assert!(matches!(
            citizens.identify(&hetu),
            Err(AuthError::UnderAge(16))
        ));
    }

    #[test]
    fn sandbox_helpers_refuse_production_and_real_identities() {
        let citizens = citizens(crate::config::AuthConfig::default());
        let real = Hetu::parse(&crate::hetu::tests_support::hetu("010190", '-', 123)).unwrap();
        assert!(matches!(
            citizens.for_sandbox_identity(&real),
            Err(AuthError::NotAllowed(_))
        ));
        let citizens = self::citizens(crate::config::AuthConfig {
            mode: crate::config::Mode::Production,
            ..crate::config::AuthConfig::default()
        });
        let test = Hetu::parse("010190-900P").unwrap();
        assert!(matches!(
            citizens.enroll_sandbox_identity(&test, "p"),
            Err(AuthError::NotAllowed(_))
        ));
    }

    #[test]
    fn sandbox_identities_are_enrolled_with_their_patient_once() {
        let citizens = citizens(crate::config::AuthConfig::default());
        let hetu = Hetu::parse("010190-900P").unwrap();
        let citizen = citizens
            .enroll_sandbox_identity(&hetu, "demo-patient-1")
            .unwrap();
        assert_eq!(citizen.patient_id, "demo-patient-1");
        let again = citizens.enroll_sandbox_identity(&hetu, "other").unwrap();
        assert_eq!(again.patient_id, "demo-patient-1");
        citizens
            .set_professional_sharing("demo-patient-1", true)
            .unwrap();
        assert!(
            citizens
                .get("demo-patient-1")
                .unwrap()
                .unwrap()
                .professional_sharing
        );
        assert!(matches!(
            citizens.set_professional_sharing("nobody", true),
            Err(AuthError::NotFound(_))
        ));
    }
}
