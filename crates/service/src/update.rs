//! `update` (PUT): a new version of an existing resource; update-as-create only for the
//! types that allow it (Kanta: the Patient, whose id the authorization server assigns).

use phr_auth::Interaction;
use phr_fhir::IssueType;
use phr_store::{Rejection, WriteOp, WriteOutcome};
use serde_json::Value;

use crate::caller::Caller;
use crate::error::{Error, Result};
use crate::patients::Patients;
use crate::read::check_filtered;
use crate::resource::check_body_identity;
use crate::service::FhirService;
use crate::time::now_micros;
use crate::written::{Change, Written, rejection};

/// Update-as-create is allowed for these types only (Kanta's CapabilityStatement).
pub(crate) const UPDATE_CREATE_TYPES: &[&str] = &["Patient"];
/// How often a write retries when another writer changed the resource in between.
pub(crate) const WRITE_RETRIES: usize = 5;

impl FhirService {
    /// Update (PUT). Creates only for types that allow update-as-create.
    pub fn update(
        &self,
        caller: &Caller,
        resource_type: &str,
        id: &str,
        resource: Value,
        if_match: Option<u64>,
    ) -> Result<Written> {
        self.check_type(resource_type)?;
        check_body_identity(&resource, resource_type, id)?;
        for _ in 0..WRITE_RETRIES {
            let op = self.prepare_update(
                caller,
                resource_type,
                id,
                resource.clone(),
                if_match,
                &mut self.patients(),
            )?;
            match self.write_one(&op)? {
                Err(Rejection::VersionConflict { .. }) if if_match.is_none() => continue,
                result => return finish_update(op, result),
            }
        }
        Err(Error::conflict(
            IssueType::Conflict,
            format!("{resource_type}/{id} kept changing while being updated; try again"),
        ))
    }

    pub(crate) fn prepare_update(
        &self,
        caller: &Caller,
        resource_type: &str,
        id: &str,
        resource: Value,
        if_match: Option<u64>,
        patients: &mut Patients,
    ) -> Result<WriteOp> {
        self.check_writable(resource_type)?;
        caller.permit_resource(Interaction::Update, &resource)?;
        let current = self.storage.read(resource_type, id)?;
        if let Some(current) = &current {
            caller.may_see(current)?;
            let access = caller.permit(resource_type, Interaction::Update)?;
            check_filtered(&access, current)?;
        }
        let current_version = current.as_ref().map(|c| c.version);
        if let Some(expected) = if_match
            && current_version != Some(expected)
        {
            return Err(Error::precondition(match current_version {
                Some(v) => format!(
                    "If-Match expects version {expected} of {resource_type}/{id}, the current is {v}"
                ),
                None => format!(
                    "If-Match expects version {expected} of {resource_type}/{id}, which does not exist"
                ),
            }));
        }
        let create_if_missing = UPDATE_CREATE_TYPES.contains(&resource_type);
        if current.is_none() && !create_if_missing {
            return Err(Error::method_not_allowed(format!(
                "{resource_type}/{id} does not exist, and this server assigns {resource_type} ids itself: \
                 create it with POST"
            )));
        }
        let version = current_version.map_or(1, |v| v.saturating_add(1));
        let new = self
            .pipeline
            .prepare(caller, resource, id, version, now_micros(), patients)?;
        Ok(WriteOp::Update {
            new,
            create_if_missing,
        })
    }
}

/// The second half of an update: turns the storage outcome into a result.
pub(crate) fn finish_update(
    op: WriteOp,
    result: std::result::Result<WriteOutcome, Rejection>,
) -> Result<Written> {
    let WriteOp::Update { new, .. } = op else {
        return Err(Error::internal("an update was finished as another write"));
    };
    match result.map_err(rejection)? {
        WriteOutcome::Updated { version } => Ok(Written::new(Change::Updated, new, version)),
        WriteOutcome::Created { version } => Ok(Written::new(Change::Created, new, version)),
        other => Err(Error::internal(format!(
            "storage answered an update with {other:?}"
        ))),
    }
}
