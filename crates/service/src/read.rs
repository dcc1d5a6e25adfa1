//! `read` and `vread`: the current version (404 when it never existed, 410 when deleted) and
//! a given one, of stored resources and of the catalogue's conformance resources.

use phr_auth::{Access, Interaction};
use phr_store::StoredResource;
use serde_json::Value;

use crate::caller::Caller;
use crate::conformance;
use crate::error::{Error, Result};
use crate::professional::Shown;
use crate::resource::{stamp, to_bytes};
use crate::service::FhirService;

impl FhirService {
    /// The current version; not found when it never existed, gone when deleted.
    pub fn read(&self, caller: &Caller, resource_type: &str, id: &str) -> Result<StoredResource> {
        self.read_shown(caller, resource_type, id)
            .map(|(stored, _)| stored)
    }

    /// [`FhirService::read`], and for a professional caller what they were shown.
    pub fn read_shown(
        &self,
        caller: &Caller,
        resource_type: &str,
        id: &str,
    ) -> Result<(StoredResource, Option<Shown>)> {
        let access = self.read_access(caller, resource_type)?;
        if conformance::is_conformance_type(resource_type) {
            return Ok((self.conformance_read(resource_type, id)?, None));
        }
        let found = self.current_for(caller, resource_type, id)?;
        self.shown_read(caller, &access, resource_type, id, found)
    }

    /// [`FhirService::read_shown`] if it can be answered at once, without waiting for a
    /// storage connection or the authorization database; `None` when it cannot, and the
    /// caller then calls `read_shown` on a thread that may block. A professional's read
    /// checks the consent in the database, so it never runs here.
    pub fn read_shown_now(
        &self,
        caller: &Caller,
        resource_type: &str,
        id: &str,
    ) -> Option<Result<(StoredResource, Option<Shown>)>> {
        if caller.professional().is_some() || conformance::is_conformance_type(resource_type) {
            return None;
        }
        let access = match self.read_access(caller, resource_type) {
            Ok(access) => access,
            Err(e) => return Some(Err(e)),
        };
        let found = match caller.compartment() {
            Some(patient) => self.storage.read_in_now(patient, resource_type, id)?,
            None => self.storage.read_now(resource_type, id)?,
        };
        Some(
            found
                .map_err(Error::from)
                .and_then(|found| self.shown_read(caller, &access, resource_type, id, found)),
        )
    }

    fn read_access(&self, caller: &Caller, resource_type: &str) -> Result<Access> {
        self.check_type(resource_type)?;
        caller.permit(resource_type, Interaction::Read)
    }

    /// What a read of `resource_type/id` answers `caller`, given the current version found.
    fn shown_read(
        &self,
        caller: &Caller,
        access: &Access,
        resource_type: &str,
        id: &str,
        found: Option<StoredResource>,
    ) -> Result<(StoredResource, Option<Shown>)> {
        let stored =
            found.ok_or_else(|| Error::not_found(format!("{resource_type}/{id} is not known")))?;
        caller.may_see(&stored)?;
        let permit = self.professional_may_see(caller, &stored)?;
        if stored.deleted {
            return Err(Error::gone(format!("{resource_type}/{id} was deleted")));
        }
        crate::contents::check_read(caller, &stored)?;
        check_filtered(access, &stored)?;
        let shown = permit.map(|p| p.shown([&stored]));
        Ok((stored, shown))
    }

    pub fn vread(
        &self,
        caller: &Caller,
        resource_type: &str,
        id: &str,
        version: &str,
    ) -> Result<StoredResource> {
        self.vread_shown(caller, resource_type, id, version)
            .map(|(stored, _)| stored)
    }

    /// [`FhirService::vread`], and for a professional caller what they were shown.
    pub fn vread_shown(
        &self,
        caller: &Caller,
        resource_type: &str,
        id: &str,
        version: &str,
    ) -> Result<(StoredResource, Option<Shown>)> {
        self.check_type(resource_type)?;
        let access = caller.permit(resource_type, Interaction::Read)?;
        if conformance::is_conformance_type(resource_type) {
            return match version {
                "1" => Ok((self.conformance_read(resource_type, id)?, None)),
                _ => Err(Error::not_found(format!(
                    "{resource_type}/{id} has only version 1"
                ))),
            };
        }
        let number: u64 = version.parse().map_err(|_| {
            Error::not_found(format!(
                "'{version}' is not a version of {resource_type}/{id}"
            ))
        })?;
        let stored = match caller.compartment() {
            Some(patient) => self.storage.vread_in(patient, resource_type, id, number)?,
            None => self.storage.vread(resource_type, id, number)?,
        }
        .ok_or_else(|| Error::not_found(format!("{resource_type}/{id} has no version {number}")))?;
        caller.may_see(&stored)?;
        let permit = self.professional_may_see(caller, &stored)?;
        if stored.deleted {
            return Err(Error::gone(format!(
                "version {number} of {resource_type}/{id} is a deletion"
            )));
        }
        crate::contents::check_read(caller, &stored)?;
        check_filtered(&access, &stored)?;
        let shown = permit.map(|p| p.shown([&stored]));
        Ok((stored, shown))
    }

    /// The current version of a stored resource as `caller` may look for it: a caller
    /// confined to a citizen's compartment sees nothing outside it anyway, so the read asks
    /// that citizen's data alone (one partition, one Citus shard); others read everywhere.
    /// For reads only: a write must see a resource wherever it is.
    pub(crate) fn current_for(
        &self,
        caller: &Caller,
        resource_type: &str,
        id: &str,
    ) -> Result<Option<StoredResource>> {
        Ok(match caller.compartment() {
            Some(patient) => self.storage.read_in(patient, resource_type, id)?,
            None => self.storage.read(resource_type, id)?,
        })
    }

    /// A catalogue conformance resource as if stored (version 1, written at start-up).
    fn conformance_read(&self, resource_type: &str, id: &str) -> Result<StoredResource> {
        let resource = self.conformance.read(resource_type, id)?;
        let Value::Object(map) = resource.clone() else {
            return Err(Error::internal(format!(
                "the catalogue's {resource_type}/{id} is not a JSON object"
            )));
        };
        let body = to_bytes(&Value::Object(stamp(map, id, 1, self.started)?))?;
        Ok(StoredResource {
            resource_type: resource_type.to_string(),
            id: id.to_string(),
            version: 1,
            last_updated: self.started,
            deleted: false,
            body,
            patient: None,
            app: None,
            created_by: None,
        })
    }
}

/// Under granular scopes, a stored resource outside them does not exist for the caller.
pub(crate) fn check_filtered(access: &Access, stored: &StoredResource) -> Result<()> {
    if let Access::Filtered(_) = access
        && !stored.deleted
    {
        let resource: Value = serde_json::from_slice(&stored.body)
            .map_err(|_| Error::internal("a stored resource is not valid JSON"))?;
        if !access.permits_resource(&resource) {
            return Err(Error::not_found(format!(
                "{}/{} is not known",
                stored.resource_type, stored.id
            )));
        }
    }
    Ok(())
}
