//! `delete`: a tombstone version. Only the creating application or the citizen may delete
//! (see [`Caller::may_delete`]); deleting something already deleted succeeds again.

use phr_auth::Interaction;
use phr_fhir::IssueType;
use phr_store::{Rejection, WriteOp};

use crate::caller::Caller;
use crate::error::{Error, Result};
use crate::read::check_filtered;
use crate::service::FhirService;
use crate::time::now_micros;
use crate::update::WRITE_RETRIES;
use crate::written::rejection;

/// Types that cannot be deleted through the API.
pub(crate) const UNDELETABLE_TYPES: &[&str] = &["Patient"];

impl FhirService {
    /// Delete: a tombstone version. Deleting something already deleted succeeds again.
    pub fn delete(
        &self,
        caller: &Caller,
        resource_type: &str,
        id: &str,
        if_match: Option<u64>,
    ) -> Result<()> {
        self.check_type(resource_type)?;
        for _ in 0..WRITE_RETRIES {
            let Some(op) = self.prepare_delete(caller, resource_type, id, if_match)? else {
                return Ok(());
            };
            match self.write_one(&op)? {
                Ok(_) => return Ok(()),
                Err(Rejection::VersionConflict { .. }) if if_match.is_none() => continue,
                Err(other) => return Err(rejection(other)),
            }
        }
        Err(Error::conflict(
            IssueType::Conflict,
            format!("{resource_type}/{id} kept changing while being deleted; try again"),
        ))
    }

    /// The delete to write, or None when the resource is already deleted.
    pub(crate) fn prepare_delete(
        &self,
        caller: &Caller,
        resource_type: &str,
        id: &str,
        if_match: Option<u64>,
    ) -> Result<Option<WriteOp>> {
        self.check_writable(resource_type)?;
        if UNDELETABLE_TYPES.contains(&resource_type) {
            return Err(Error::method_not_allowed(format!(
                "{resource_type} resources cannot be deleted through the API"
            )));
        }
        let access = caller.permit(resource_type, Interaction::Delete)?;
        let current = self
            .current_for(caller, resource_type, id)?
            .ok_or_else(|| Error::not_found(format!("{resource_type}/{id} is not known")))?;
        caller.may_see(&current)?;
        check_filtered(&access, &current)?;
        if let Some(expected) = if_match
            && current.version != expected
        {
            return Err(Error::precondition(format!(
                "If-Match expects version {expected} of {resource_type}/{id}, the current is {}",
                current.version
            )));
        }
        if current.deleted {
            return Ok(None);
        }
        caller.may_delete(&current)?;
        crate::contents::check_write_stored(caller, &current)?;
        Ok(Some(WriteOp::Delete {
            resource_type: resource_type.to_string(),
            id: id.to_string(),
            version: current.version.saturating_add(1),
            last_updated: now_micros(),
            app: caller.app_id().map(str::to_string),
        }))
    }
}
