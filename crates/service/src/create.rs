//! `create`: a new resource with a server-assigned id, or with `If-None-Exist` the existing
//! match (Kanta's idempotent sync: conditional create by identifier).

use phr_auth::Interaction;
use phr_store::{NewVersion, Rejection, StoredResource, WriteOp, WriteOutcome};
use serde_json::Value;

use crate::caller::Caller;
use crate::error::{Error, Result};
use crate::patients::Patients;
use crate::resource::{parse_if_none_exist, resource_type_of};
use crate::service::FhirService;
use crate::time::now_micros;
use crate::written::{Change, Version, Written, multiple_matches, rejection};

impl FhirService {
    /// Create with a server-assigned id; with `if_none_exist`, returns the existing match
    /// instead when exactly one exists.
    pub fn create(
        &self,
        caller: &Caller,
        resource: Value,
        if_none_exist: Option<&str>,
    ) -> Result<Written> {
        let op = self.prepare_create(caller, resource, if_none_exist, &mut self.patients())?;
        let result = self.write_one(&op)?;
        self.finish_create(op, result)
    }

    /// The first half of a create: checks and the prepared version. The storage engine
    /// resolves `If-None-Exist` inside its write, where a concurrent create of the same
    /// identifier cannot slip between the lookup and the insert; looking first here too
    /// would only cost every conditional create a second query.
    pub(crate) fn prepare_create(
        &self,
        caller: &Caller,
        resource: Value,
        if_none_exist: Option<&str>,
        patients: &mut Patients,
    ) -> Result<WriteOp> {
        let resource_type = resource_type_of(&resource)?;
        self.check_type(&resource_type)?;
        self.check_writable(&resource_type)?;
        caller.permit_resource(Interaction::Create, &resource)?;
        let condition = if_none_exist.map(parse_if_none_exist).transpose()?;
        let id = new_resource_id();
        let new = self
            .pipeline
            .prepare(caller, resource, &id, 1, now_micros(), patients)?;
        Ok(WriteOp::Create {
            new,
            if_none_exist: condition,
        })
    }

    /// Reads a resource an identifier lookup in `compartment` matched. Storage looked for it
    /// in that compartment (among every Patient for a Patient), so it is read from there: on
    /// PostgreSQL that is the citizen's partition, not every partition.
    pub(crate) fn read_match(
        &self,
        resource_type: &str,
        compartment: Option<&str>,
        id: &str,
    ) -> Result<Option<StoredResource>> {
        Ok(match compartment {
            Some(patient) if resource_type != "Patient" => {
                self.storage.read_in(patient, resource_type, id)?
            }
            _ => self.storage.read(resource_type, id)?,
        })
    }

    /// The second half of a create: turns the storage outcome into a result.
    pub(crate) fn finish_create(
        &self,
        op: WriteOp,
        result: std::result::Result<WriteOutcome, Rejection>,
    ) -> Result<Written> {
        let WriteOp::Create { new, .. } = op else {
            return Err(Error::internal("a create was finished as another write"));
        };
        match result.map_err(rejection)? {
            WriteOutcome::Created { version } => Ok(Written::new(Change::Created, new, version)),
            WriteOutcome::Existing { ids } => match ids.as_slice() {
                [existing] => self.existing(&new, existing),
                _ => Err(multiple_matches(&new.resource_type, ids.len())),
            },
            other => Err(Error::internal(format!(
                "storage answered a create with {other:?}"
            ))),
        }
    }

    /// The resource a conditional create matched.
    fn existing(&self, new: &NewVersion, id: &str) -> Result<Written> {
        let stored = self
            .read_match(&new.resource_type, new.patient.as_deref(), id)?
            .ok_or_else(|| Error::internal("a conditional match vanished while being read"))?;
        Ok(Written {
            change: Change::Existing,
            version: Version::from(stored),
        })
    }
}

/// The id of a resource created here: a version 7 UUID. Its first 48 bits are the time in
/// milliseconds; then comes a counter that starts at a random value each millisecond (so
/// the ids of this process stay in order), then 32 random bits. Ids created together sort
/// together, so the store's indexes by id grow at their end instead of at a random page
/// each: with random (version 4) ids every created resource rewrote one more page of each.
/// The time they show is the creation time, which `meta.lastUpdated` of the first version
/// shows too.
pub(crate) fn new_resource_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

#[cfg(test)]
mod tests {
    use super::new_resource_id;

    #[test]
    fn resource_ids_are_version_7_uuids_in_the_order_they_were_created() {
        // Many within one millisecond: the order holds there too.
        let ids: Vec<String> = (0..2000).map(|_| new_resource_id()).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids out of order");
        for id in &ids {
            let uuid = uuid::Uuid::parse_str(id).expect("a UUID");
            assert_eq!(uuid.get_version_num(), 7);
            assert_eq!(uuid.hyphenated().to_string(), *id);
        }
    }
}
