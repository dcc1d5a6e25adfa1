//! The write pipeline every stored version goes through, whatever the route (create, update,
//! batch or transaction entry, portal entry): Kanta's data rules, validation, stamping of
//! id and meta, index extraction, and the patient compartment it belongs to.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;

use axum::http::StatusCode;
use phr_auth::{Access, AccessContext, Interaction};
use phr_catalog::{Catalog, rules};
use phr_fhir::outcome::has_errors;
use phr_fhir::{Definitions, Issue, IssueType, Validator, declared_profiles};
use phr_store::{NewVersion, StoredResource};
use serde_json::Value;

use super::error::ApiError;
use super::service::{resource_type_of, stamp};
use crate::time::to_instant;

/// Who is calling, as far as the FHIR layer cares.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    /// The citizen whose compartment the caller is confined to (the token's patient). None in
    /// the open sandbox and for the operator.
    pub patient: Option<String>,
    /// The calling application (id used in `creatingApplication`, and its name).
    pub app: Option<App>,
    /// The citizen acting through the portal: may delete anything in their own compartment.
    pub portal: bool,
    /// What the access token allows; None when no token is involved (the open sandbox
    /// without a token, the portal, the server itself).
    pub access: Option<AccessContext>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct App {
    pub id: String,
    pub name: String,
}

impl Caller {
    /// The unauthenticated caller of the open sandbox.
    pub fn open_sandbox() -> Self {
        Caller::default()
    }

    /// A caller with an access token.
    pub fn with_token(access: AccessContext) -> Self {
        Caller {
            patient: access.patient.clone(),
            app: Some(App {
                id: access.app_id.clone(),
                name: access.app_name.clone(),
            }),
            portal: false,
            access: Some(access),
        }
    }

    /// The server itself (storing a citizen's Patient when they take the service into use).
    pub fn system() -> Self {
        Caller::default()
    }

    /// Whether the token's scopes allow `interaction` on `resource_type` (403 if not), and
    /// under which granular filters.
    pub fn permit(
        &self,
        resource_type: &str,
        interaction: Interaction,
    ) -> Result<Access, ApiError> {
        match &self.access {
            None => Ok(Access::Unrestricted),
            Some(context) => context
                .require(resource_type, interaction)
                .map_err(ApiError::from_access),
        }
    }

    /// [`Caller::permit`] for one resource: granular scopes (`?category=`) must cover it.
    pub fn permit_resource(
        &self,
        interaction: Interaction,
        resource: &Value,
    ) -> Result<(), ApiError> {
        let resource_type = resource["resourceType"].as_str().unwrap_or("Resource");
        if self
            .permit(resource_type, interaction)?
            .permits_resource(resource)
        {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "the token's scopes do not cover this {resource_type} (its category is outside the granted ones)"
            )))
        }
    }

    pub fn compartment(&self) -> Option<&str> {
        self.patient.as_deref()
    }

    pub fn app_id(&self) -> Option<&str> {
        self.app.as_ref().map(|a| a.id.as_str())
    }

    /// A resource outside the caller's compartment does not exist for the caller: 404, so
    /// that not even its existence leaks.
    pub fn may_see(&self, stored: &StoredResource) -> Result<(), ApiError> {
        match &self.patient {
            Some(patient) if stored.patient.as_deref() != Some(patient.as_str()) => {
                Err(ApiError::not_found(format!(
                    "{}/{} is not known",
                    stored.resource_type, stored.id
                )))
            }
            _ => Ok(()),
        }
    }

    /// Only the application that created a resource, or the citizen through the portal, may
    /// delete it (Kanta: "only the source of the resource or OmaKanta can delete").
    pub fn may_delete(&self, stored: &StoredResource) -> Result<(), ApiError> {
        if self.portal || self.patient.is_none() && self.app.is_none() {
            return Ok(());
        }
        if stored.created_by.is_some() && stored.created_by.as_deref() == self.app_id() {
            return Ok(());
        }
        Err(ApiError::forbidden(format!(
            "{}/{} was stored by another application; only that application or the citizen may delete it",
            stored.resource_type, stored.id
        )))
    }
}

/// Answers whether a Patient exists, for Kanta's rule that references to the user's Patient
/// resolve.
pub trait PatientDirectory {
    fn exists(&mut self, id: &str) -> Result<bool, ApiError>;
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
        Self::with_packages(&[]).expect("no packages, nothing to fail")
    }

    /// The R4 core and the catalogue, then every StructureDefinition, ValueSet and CodeSystem
    /// found in `packages` (folders of conformance JSON, e.g. a newer official Kanta release):
    /// a definition with a url already known replaces it.
    pub fn with_packages(packages: &[PathBuf]) -> Result<Self, PackageError> {
        let catalog = Catalog::get();
        let mut definitions = catalog.definitions();
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
        let definitions = Arc::new(definitions);
        let kanta_types = catalog
            .profiles()
            .iter()
            .filter(|p| p.is_instantiable())
            .map(|p| p.type_name)
            .collect();
        Ok(Pipeline {
            validator: Validator::new(definitions.clone()),
            definitions,
            search: phr_search::Registry::global(),
            kanta_types,
        })
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
        if resource["resourceType"] == "Patient" {
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
    ) -> Result<NewVersion, ApiError> {
        let resource_type = resource_type_of(&resource)?;
        if !self.is_resource_type(&resource_type) {
            return Err(ApiError::with_issues(
                StatusCode::BAD_REQUEST,
                vec![
                    Issue::error(
                        IssueType::NotSupported,
                        format!("unknown resourceType '{resource_type}'"),
                    )
                    .at("resourceType"),
                ],
            ));
        }
        if !resource.is_object() {
            return Err(ApiError::bad_request("the body must be a JSON object"));
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
            if let Some(app) = &caller.app {
                issues.extend(rules::apply_creating_application(
                    &mut resource,
                    rules::App {
                        id: &app.id,
                        name: &app.name,
                    },
                ));
            }
            rules::set_issued(&mut resource, &to_instant(now));
        }
        let Value::Object(object) = resource else {
            unreachable!("checked to be an object")
        };
        let stamped = Value::Object(stamp(object, id, version, now));
        issues.extend(
            self.validator
                .validate(&stamped, &declared_profiles(&stamped)),
        );
        if has_errors(&issues) {
            issues.sort_by_key(|i| i.severity);
            return Err(ApiError::unprocessable(issues));
        }
        let index = self
            .search
            .extract(&stamped)
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let patient = self.search.patient_compartment(&stamped, &index);
        if let (Some(own), Some(target)) = (caller.compartment(), patient.as_deref())
            && own != target
        {
            return Err(ApiError::forbidden(format!(
                "{resource_type} belongs to another patient's compartment than the caller's"
            )));
        }
        let body = serde_json::to_vec(&stamped).expect("serde_json::Value always serializes");
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
