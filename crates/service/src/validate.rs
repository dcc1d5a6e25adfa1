//! FHIR operations: `$validate` (type and instance level, optional `profile`).

use phr_catalog::rules;
use phr_fhir::{Issue, IssueType, declared_profiles};
use serde_json::Value;

use super::error::ApiError;
use super::pipeline::Caller;
use super::service::{FhirService, resource_type_of};

/// What `$validate` was asked: the resource (from the body, or the stored one) and profiles.
pub struct ValidateRequest {
    pub resource: Value,
    pub profiles: Vec<String>,
}

/// Reads a `$validate` body: a resource, or a Parameters with `resource` and `profile`.
pub fn validate_request(
    body: Value,
    query_profiles: Vec<String>,
) -> Result<ValidateRequest, ApiError> {
    let mut profiles = query_profiles;
    if body["resourceType"] != "Parameters" {
        return Ok(ValidateRequest {
            resource: body,
            profiles,
        });
    }
    let mut resource = None;
    for parameter in body["parameter"].as_array().into_iter().flatten() {
        match parameter["name"].as_str() {
            Some("resource") => resource = Some(parameter["resource"].clone()),
            Some("profile") => {
                let url = parameter["valueUri"]
                    .as_str()
                    .or(parameter["valueCanonical"].as_str());
                profiles.extend(url.map(str::to_string));
            }
            Some("mode") => match parameter["valueCode"].as_str() {
                Some("create" | "update") | None => {}
                Some(other) => {
                    return Err(ApiError::not_implemented(format!(
                        "$validate mode '{other}' is not supported"
                    )));
                }
            },
            _ => {}
        }
    }
    let resource = resource
        .ok_or_else(|| ApiError::bad_request("the Parameters carry no 'resource' to validate"))?;
    Ok(ValidateRequest { resource, profiles })
}

impl FhirService {
    /// Validates without storing: Kanta's data rules (for types with a Finnish PHR profile)
    /// and the base type plus the declared and requested profiles. Every issue is returned;
    /// the HTTP answer is 200 either way.
    pub fn validate(
        &self,
        caller: &Caller,
        resource_type: &str,
        request: ValidateRequest,
    ) -> Result<Vec<Issue>, ApiError> {
        self.check_type(resource_type)?;
        caller.permit(resource_type, phr_auth::Interaction::Read)?;
        let found = resource_type_of(&request.resource)?;
        if found != resource_type {
            return Err(ApiError::bad_request(format!(
                "the resource is a {found}, but $validate was called on {resource_type}"
            )));
        }
        let mut issues = Vec::new();
        if self.pipeline.is_kanta_type(resource_type) {
            issues.extend(rules::check(&request.resource));
        }
        let mut profiles: Vec<&str> = declared_profiles(&request.resource);
        profiles.extend(request.profiles.iter().map(String::as_str));
        for profile in &request.profiles {
            if self
                .pipeline
                .definitions()
                .structure_definition(profile)
                .is_none()
            {
                issues.push(Issue::error(
                    IssueType::NotSupported,
                    format!("profile {profile} is not known here"),
                ));
            }
        }
        issues.extend(
            self.pipeline
                .validator()
                .validate(&request.resource, &profiles),
        );
        issues.sort_by_key(|i| i.severity);
        Ok(issues)
    }
}
