//! [`FhirService`]: the FHIR interactions as plain, blocking functions over the storage
//! engine. The web layer and Bundle processing both call them, so a batch entry behaves
//! exactly like the same request sent alone; the CLI and the portal call them too.
//!
//! This file holds the service itself and the checks every interaction shares; each family
//! of interactions has its own module (`read`, `create`, `update`, `delete`, `history`,
//! `search`, `validate`, `bundle`).

use std::sync::Arc;

use phr_store::{Atomicity, Rejection, Storage, WriteOp, WriteOutcome};

use crate::conformance::{self, Conformance};
use crate::error::{Error, Result};
use crate::patients::Patients;
use crate::pipeline::Pipeline;
use crate::subset::Subsetter;
use crate::time::now_micros;

/// The configuration the interactions need.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The FHIR base URL clients see (e.g. `https://phr.example.fi/fhir/r4`), without a
    /// trailing slash: `fullUrl`s and paging links start with it, and absolute `request.url`s
    /// of Bundle entries are read relative to it.
    pub base_url: String,
    /// Search page size when `_count` is absent.
    pub default_page_size: usize,
    /// The largest `_count` honoured.
    pub max_page_size: usize,
    /// Most entries accepted in one batch or transaction Bundle.
    pub max_bundle_entries: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            base_url: "http://127.0.0.1:8080/fhir/r4".into(),
            default_page_size: 50,
            max_page_size: 1000,
            max_bundle_entries: 300,
        }
    }
}

pub struct FhirService {
    pub storage: Arc<dyn Storage>,
    pub pipeline: Pipeline,
    pub subsetter: Subsetter,
    pub conformance: Conformance,
    pub settings: Settings,
    /// When this process started: the `lastUpdated` of the generated conformance resources.
    pub(crate) started: i64,
}

impl FhirService {
    pub fn new(storage: Arc<dyn Storage>, pipeline: Pipeline, settings: Settings) -> Self {
        FhirService {
            storage,
            pipeline,
            subsetter: Subsetter::new(),
            conformance: Conformance::new(),
            settings,
            started: now_micros(),
        }
    }

    /// A Patient lookup for one request (cached: a Bundle's entries mostly name one Patient).
    pub fn patients(&self) -> Patients<'_> {
        Patients::new(self.storage.as_ref())
    }

    /// Stores one operation on its own and gives its outcome.
    pub(crate) fn write_one(
        &self,
        op: &WriteOp,
    ) -> Result<std::result::Result<WriteOutcome, Rejection>> {
        self.storage
            .write(vec![op.clone()], Atomicity::Independent)?
            .into_iter()
            .next()
            .ok_or_else(|| Error::internal("storage answered a write with nothing"))
    }

    /// `fullUrl` of a resource.
    pub fn full_url(&self, resource_type: &str, id: &str) -> String {
        format!("{}/{resource_type}/{id}", self.settings.base_url)
    }

    pub fn check_type(&self, resource_type: &str) -> Result<()> {
        if self.pipeline.is_resource_type(resource_type) {
            Ok(())
        } else {
            Err(Error::not_found(format!(
                "'{resource_type}' is not a FHIR R4 resource type served here"
            )))
        }
    }

    /// Types nobody writes through the API: the catalogue's conformance resources and the
    /// audit trail.
    pub fn check_writable(&self, resource_type: &str) -> Result<()> {
        if conformance::is_conformance_type(resource_type) {
            return Err(conformance::read_only(resource_type));
        }
        if resource_type == "AuditEvent" {
            return Err(Error::method_not_allowed(
                "audit records cannot be created, changed or deleted through the API",
            ));
        }
        Ok(())
    }
}
