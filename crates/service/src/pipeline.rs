//! The write pipeline every stored version goes through, whatever the interaction (create, update,
//! batch or transaction entry, portal entry): Kanta's data rules, validation, stamping of
//! id and meta, index extraction, and the patient compartment it belongs to.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;

use phr_catalog::{Catalog, rules};
use phr_fhir::outcome::has_errors;
use phr_fhir::{Definitions, Issue, IssueType, Validator, declared_profiles};
use phr_store::NewVersion;
use serde_json::Value;

use crate::caller::Caller;
use crate::error::{Error, ErrorKind, Result};
use crate::resource::{resource_type_of, stamp};
use crate::time::to_instant;

/// Answers whether a Patient exists, for Kanta's rule that references to the user's Patient
/// resolve.
pub trait PatientDirectory {
    fn exists(&mut self, id: &str) -> Result<bool>;
}

/// A definitions package that cannot be loaded.
#[derive(Debug, thiserror::Error)]
#[error("definitions package {0}")]
pub struct PackageError(pub String);

/// The checks and transformations of the write path.
pub struct Pipeline {
    definitions: Arc<Definitions>,
    validator: Validator,
    search: &'static phr_search::Registry,
    /// Types Kanta stores under a Finnish PHR profile: their data rules apply.
    kanta_types: HashSet<&'static str>,
}

impl Default for Pipeline {
    fn default() -> Self {
        Self::new()
    }
}

impl Pipeline {
    /// The R4 definitions plus the Finnish PHR catalogue's generated ones.
    pub fn new() -> Self {
        Self::from_definitions(Catalog::get().definitions())
    }

    /// The R4 core and the catalogue, then every StructureDefinition, ValueSet and CodeSystem
    /// found in `packages` (folders of conformance JSON, e.g. a newer official Kanta release):
    /// a definition with a url already known replaces it.
    pub fn with_packages(packages: &[PathBuf]) -> std::result::Result<Self, PackageError> {
        let mut definitions = Catalog::get().definitions();
        for dir in packages {
            let report = definitions
                .load_dir(dir)
                .map_err(|e| PackageError(format!("{}: {e}", dir.display())))?;
            if !report.rejected.is_empty() {
                return Err(PackageError(format!(
                    "{}: definitions that cannot be used: {}",
                    dir.display(),
                    report.rejected.join("; ")
                )));
            }
            tracing::info!(
                package = %dir.display(),
                structure_definitions = report.structure_definitions.len(),
                value_sets = report.value_sets.len(),
                code_systems = report.code_systems.len(),
                "loaded a definitions package"
            );
        }
        Ok(Self::from_definitions(definitions))
    }

    fn from_definitions(definitions: Definitions) -> Self {
        let definitions = Arc::new(definitions);
        let kanta_types = Catalog::get()
            .profiles()
            .iter()
            .filter(|p| p.is_instantiable())
            .map(|p| p.type_name)
            .collect();
        Pipeline {
            validator: Validator::new(definitions.clone()),
            definitions,
            search: phr_search::Registry::global(),
            kanta_types,
        }
    }

    pub fn definitions(&self) -> &Arc<Definitions> {
        &self.definitions
    }

    pub fn validator(&self) -> &Validator {
        &self.validator
    }

    pub fn is_resource_type(&self, name: &str) -> bool {
        self.definitions.is_resource_type(name)
    }

    /// Every concrete R4 resource type, sorted.
    pub fn resource_types(&self) -> Vec<&str> {
        let mut types: Vec<&str> = self.definitions.resource_types().collect();
        types.sort_unstable();
        types
    }

    /// Whether Kanta's data rules (a Finnish PHR profile, language, narrative, ...) apply.
    pub fn is_kanta_type(&self, resource_type: &str) -> bool {
        self.kanta_types.contains(resource_type)
    }

    /// The compartment in which `If-None-Exist` looks for matches: the resource's patient,
    /// or for a Patient the caller's own (a new Patient has no id yet).
    pub fn compartment(&self, caller: &Caller, resource: &Value) -> Option<String> {
        if resource.get("resourceType").and_then(Value::as_str) == Some("Patient") {
            return caller.compartment().map(str::to_string);
        }
        rules::patient_references(resource)
            .into_iter()
            .next()
            .map(|r| r.id)
    }

    /// Checks `resource` and turns it into the version to store as `id`/`version`: Kanta's
    /// data rules, `creatingApplication` and `issued`, validation against the base type and
    /// the declared profiles, `id`/`meta` stamping, index entries, compartment. Every problem
    /// found is reported at once (422).
    pub fn prepare(
        &self,
        caller: &Caller,
        mut resource: Value,
        id: &str,
        version: u64,
        now: i64,
        patients: &mut dyn PatientDirectory,
    ) -> Result<NewVersion> {
        let resource_type = resource_type_of(&resource)?;
        if !self.is_resource_type(&resource_type) {
            return Err(Error::with_issues(
                ErrorKind::Invalid,
                vec![
                    Issue::error(
                        IssueType::NotSupported,
                        format!("unknown resourceType '{resource_type}'"),
                    )
                    .at("resourceType"),
                ],
            ));
        }
        let mut issues = Vec::new();
        if self.is_kanta_type(&resource_type) {
            issues.extend(rules::check(&resource));
            for reference in rules::patient_references(&resource) {
                match caller.compartment() {
                    Some(own) if own != reference.id => issues.push(
                        Issue::error(
                            IssueType::Forbidden,
                            format!(
                                "{}: must refer to the user's own Patient/{own}",
                                reference.expression
                            ),
                        )
                        .at(&reference.expression),
                    ),
                    _ if !patients.exists(&reference.id)? => issues.push(
                        Issue::error(
                            IssueType::NotFound,
                            format!(
                                "{}: Patient/{} does not exist",
                                reference.expression, reference.id
                            ),
                        )
                        .at(&reference.expression),
                    ),
                    _ => {}
                }
            }
            if let Some(app) = caller.app() {
                issues.extend(rules::apply_creating_application(
                    &mut resource,
                    rules::App {
                        id: app.id,
                        name: app.name,
                    },
                ));
            }
            rules::set_issued(&mut resource, &to_instant(now));
        }
        let Value::Object(object) = resource else {
            return Err(Error::invalid(
                "the body must be a FHIR resource (a JSON object)",
            ));
        };
        let stamped = Value::Object(stamp(object, id, version, now)?);
        issues.extend(
            self.validator
                .validate(&stamped, &declared_profiles(&stamped)),
        );
        if has_errors(&issues) {
            issues.sort_by_key(|i| i.severity);
            return Err(Error::unprocessable(issues));
        }
        let index = self
            .search
            .extract(&stamped)
            .map_err(|e| Error::invalid(e.to_string()))?;
        let patient = self.search.patient_compartment(&stamped, &index);
        if let (Some(own), Some(target)) = (caller.compartment(), patient.as_deref())
            && own != target
        {
            return Err(Error::forbidden(format!(
                "{resource_type} belongs to another patient's compartment than the caller's"
            )));
        }
        let body = crate::resource::to_bytes(&stamped)?;
        Ok(NewVersion {
            resource_type,
            id: id.to_string(),
            version,
            last_updated: now,
            body,
            patient,
            app: caller.app_id().map(str::to_string),
            index,
        })
    }
}
