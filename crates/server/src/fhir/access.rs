//! Where the FHIR layer meets the authorization server: who the caller is (from the bearer
//! token), one audit record per request, and the Patient store the authorization server uses
//! when a citizen takes the service into use.

use std::sync::Arc;

use axum::http::{HeaderMap, StatusCode, header};
use phr_auth::{AuditRecord, Interaction, PatientRegistry, Usage};
use serde_json::Value;

use super::error::ApiError;
use super::pipeline::Caller;
use super::service::FhirService;
use crate::AppState;

/// Who is calling: the bearer token's citizen and application, or, in the open sandbox and
/// without a token, nobody in particular. A token, when sent, is always checked.
pub fn caller(state: &AppState, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match authorization {
        None if state.config.open_sandbox => Ok(Caller::open_sandbox()),
        authorization => state
            .auth
            .authenticate(authorization)
            .map(Caller::with_token)
            .map_err(ApiError::from_access),
    }
}

/// What one FHIR request did, for the audit log.
#[derive(Debug, Default)]
pub struct AuditEntry {
    /// The FHIR interaction code (`read`, `search-type`, `create`, `batch`, ...).
    pub interaction: &'static str,
    pub resource_type: Option<String>,
    /// The data subject, when the caller's token does not say (open sandbox).
    pub patient: Option<String>,
    pub search_criteria: Option<String>,
    pub amount: u64,
    /// `Type/id` of what was read or written.
    pub resources: Vec<String>,
}

impl AuditEntry {
    pub fn new(interaction: &'static str, resource_type: impl Into<Option<String>>) -> Self {
        AuditEntry {
            interaction,
            resource_type: resource_type.into(),
            ..AuditEntry::default()
        }
    }
}

/// Queues the audit record of one request (`error` set when it failed). Never fails the
/// request: a record that cannot be queued is logged as an error.
pub fn audit(
    state: &AppState,
    caller: &Caller,
    entry: AuditEntry,
    status: StatusCode,
    error: Option<&ApiError>,
) {
    let mut record = match &caller.access {
        Some(context) => {
            let mut record = AuditRecord::for_access(
                context,
                Interaction::Read,
                entry.resource_type.as_deref().unwrap_or(""),
            );
            record.resource_type = entry.resource_type.clone();
            record
        }
        None if caller.portal => AuditRecord::new(Usage::CitizenPortal, caller_actor(caller)),
        None => AuditRecord::new(Usage::OpenSandbox, "anonymous"),
    };
    record.interaction = Some(entry.interaction.to_string());
    record.resource_type = entry.resource_type;
    if record.patient_id.is_none() {
        record.patient_id = caller.patient.clone().or(entry.patient);
    }
    if record.app_id.is_none()
        && let Some(app) = &caller.app
    {
        record.app_id = Some(app.id.clone());
        record.app_name = Some(app.name.clone());
    }
    record.search_criteria = entry.search_criteria;
    record.status = status.as_u16();
    record.amount = entry.amount;
    record.resources = entry.resources;
    if let Some(error) = error
        && let Some(issue) = error.issues.first()
    {
        record.error_code = Some(issue.code.code().to_string());
        record.error_detail = Some(issue.message.clone());
    }
    if let Err(e) = state.auth.audit(record) {
        tracing::error!(error = %e, "could not queue an audit record");
    }
}

fn caller_actor(caller: &Caller) -> String {
    match &caller.patient {
        Some(patient) => format!("Patient/{patient}"),
        None => "anonymous".to_string(),
    }
}

/// Stores a citizen's pseudonymous Patient when they take the service into use.
pub struct StoredPatients(pub Arc<FhirService>);

impl PatientRegistry for StoredPatients {
    fn ensure_patient(&self, patient: &Value) -> Result<(), String> {
        let id = patient["id"].as_str().ok_or("the Patient has no id")?;
        match self.0.storage.read("Patient", id) {
            Ok(Some(existing)) if !existing.deleted => return Ok(()),
            Ok(_) => {}
            Err(e) => return Err(e.to_string()),
        }
        self.0
            .update(&Caller::system(), "Patient", id, patient.clone(), None)
            .map(|_| ())
            .map_err(|e| {
                e.issues
                    .iter()
                    .map(|i| i.message.as_str())
                    .collect::<Vec<_>>()
                    .join("; ")
            })
    }
}
