//! Patients as the write pipeline and the authorization server need them: which exist
//! (Kanta's rule that references to the user's Patient resolve), and storing a citizen's
//! pseudonymous Patient when they take the service into use.

use std::collections::HashSet;
use std::sync::Arc;

use phr_auth::PatientRegistry;
use phr_store::Storage;
use serde_json::Value;

use crate::caller::Caller;
use crate::error::Result;
use crate::pipeline::PatientDirectory;
use crate::service::FhirService;

/// Patients known to exist during one request: stored ones (looked up once) and those a
/// transaction is about to create.
pub struct Patients<'a> {
    storage: &'a dyn Storage,
    known: HashSet<String>,
    pending: HashSet<String>,
}

impl<'a> Patients<'a> {
    pub fn new(storage: &'a dyn Storage) -> Self {
        Patients {
            storage,
            known: HashSet::new(),
            pending: HashSet::new(),
        }
    }

    /// Counts `id` as existing: a transaction creates it along with the rest.
    pub fn add_pending(&mut self, id: &str) {
        self.pending.insert(id.to_string());
    }
}

impl PatientDirectory for Patients<'_> {
    fn exists(&mut self, id: &str) -> Result<bool> {
        if self.known.contains(id) || self.pending.contains(id) {
            return Ok(true);
        }
        let live = matches!(self.storage.read("Patient", id)?, Some(p) if !p.deleted);
        if live {
            self.known.insert(id.to_string());
        }
        Ok(live)
    }
}

/// Stores a citizen's pseudonymous Patient when they take the service into use (the
/// authorization server calls it), as the server itself.
pub struct StoredPatients(pub Arc<FhirService>);

impl PatientRegistry for StoredPatients {
    fn ensure_patient(&self, patient: &Value) -> std::result::Result<(), String> {
        let id = patient
            .get("id")
            .and_then(Value::as_str)
            .ok_or("the Patient has no id")?;
        match self.0.storage.read("Patient", id) {
            Ok(Some(existing)) if !existing.deleted => return Ok(()),
            Ok(_) => {}
            Err(e) => return Err(e.to_string()),
        }
        self.0
            .update(&Caller::System, "Patient", id, patient.clone(), None)
            .map(|_| ())
            .map_err(|e| e.summary())
    }
}
