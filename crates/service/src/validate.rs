//! `$validate` (type and instance level): a resource from the body, or the stored one, checked
//! against Kanta's data rules, the base type and the declared and requested profiles without
//! storing anything. Every parameter is understood or refused: an unknown one is an error,
//! not silently ignored.

use phr_auth::Interaction;
use phr_catalog::rules;
use phr_fhir::{Issue, IssueType, declared_profiles};
use serde_json::Value;

use crate::caller::Caller;
use crate::error::{Error, Result};
use crate::resource::resource_type_of;
use crate::service::FhirService;

/// What `$validate` was asked: the resource (from the body, or the stored one) and profiles.
pub struct ValidateRequest {
    pub resource: Value,
    pub profiles: Vec<String>,
}

/// `$validate`'s URL parameters: `profile` (repeatable) and `mode`; `_format` and `_pretty`
/// concern the response and are the web layer's.
pub fn query_profiles(params: &[(String, String)]) -> Result<Vec<String>> {
    let mut profiles = Vec::new();
    for (name, value) in params {
        match name.as_str() {
            "profile" => profiles.push(value.clone()),
            "mode" => check_mode(Some(value))?,
            "_format" | "_pretty" => {}
            other => {
                return Err(Error::invalid(format!(
                    "$validate takes the parameters profile and mode, not '{other}'"
                )));
            }
        }
    }
    Ok(profiles)
}

fn check_mode(mode: Option<&str>) -> Result<()> {
    match mode {
        Some("create" | "update") | None => Ok(()),
        Some(other) => Err(Error::not_implemented(format!(
            "$validate mode '{other}' is not supported"
        ))),
    }
}

/// Reads a `$validate` body: a resource, or a Parameters with `resource`, `profile` and
/// `mode`. `profiles` are those already given in the URL.
pub fn validate_request(body: Value, profiles: Vec<String>) -> Result<ValidateRequest> {
    let mut profiles = profiles;
    if body.get("resourceType").and_then(Value::as_str) != Some("Parameters") {
        return Ok(ValidateRequest {
            resource: body,
            profiles,
        });
    }
    let parameters = match body.get("parameter") {
        None => &[][..],
        Some(Value::Array(list)) => list.as_slice(),
        Some(_) => {
            return Err(Error::invalid_at(
                "Parameters.parameter must be an array",
                "Parameters.parameter",
            ));
        }
    };
    let mut resource = None;
    for (i, parameter) in parameters.iter().enumerate() {
        let at = format!("Parameters.parameter[{i}]");
        let name = parameter.get("name").and_then(Value::as_str);
        match name {
            Some("resource") => {
                resource = Some(parameter.get("resource").cloned().ok_or_else(|| {
                    Error::invalid_at("the 'resource' parameter has no resource", &at)
                })?)
            }
            Some("profile") => {
                let url = parameter
                    .get("valueUri")
                    .or_else(|| parameter.get("valueCanonical"))
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        Error::invalid_at(
                            "the 'profile' parameter needs a valueUri or valueCanonical",
                            &at,
                        )
                    })?;
                profiles.push(url.to_string());
            }
            Some("mode") => check_mode(parameter.get("valueCode").and_then(Value::as_str))?,
            Some(other) => {
                return Err(Error::invalid_at(
                    format!(
                        "$validate takes the parameters resource, profile and mode, not '{other}'"
                    ),
                    format!("{at}.name"),
                ));
            }
            None => {
                return Err(Error::invalid_at(
                    "every parameter needs a name",
                    format!("{at}.name"),
                ));
            }
        }
    }
    let resource =
        resource.ok_or_else(|| Error::invalid("the Parameters carry no 'resource' to validate"))?;
    Ok(ValidateRequest { resource, profiles })
}

impl FhirService {
    /// `$validate` on `resource_type`: with a body (type level, or instance level with a
    /// body), or the stored `id` (instance level without one).
    pub fn validate_operation(
        &self,
        caller: &Caller,
        resource_type: &str,
        id: Option<&str>,
        body: Option<Value>,
        params: &[(String, String)],
    ) -> Result<Vec<Issue>> {
        let profiles = query_profiles(params)?;
        let request = match (body, id) {
            (Some(body), _) => validate_request(body, profiles)?,
            (None, Some(id)) => {
                let stored = self.read(caller, resource_type, id)?;
                ValidateRequest {
                    resource: serde_json::from_slice(&stored.body)
                        .map_err(|_| Error::internal("a stored resource is not valid JSON"))?,
                    profiles,
                }
            }
            (None, None) => return Err(Error::invalid("$validate needs a resource")),
        };
        self.validate(caller, resource_type, request)
    }

    /// Validates without storing: Kanta's data rules (for types with a Finnish PHR profile)
    /// and the base type plus the declared and requested profiles. Every issue is returned;
    /// the operation succeeds either way.
    pub fn validate(
        &self,
        caller: &Caller,
        resource_type: &str,
        request: ValidateRequest,
    ) -> Result<Vec<Issue>> {
        self.check_type(resource_type)?;
        caller.permit(resource_type, Interaction::Read)?;
        let found = resource_type_of(&request.resource)?;
        if found != resource_type {
            return Err(Error::invalid(format!(
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_parameters_are_refused() {
        let body = json!({"resourceType": "Parameters", "parameter": [
            {"name": "resource", "resource": {"resourceType": "Patient"}},
            {"name": "profil", "valueUri": "http://x"}
        ]});
        let err = validate_request(body, Vec::new()).err().unwrap();
        assert_eq!(err.kind(), crate::ErrorKind::Invalid);
        assert_eq!(
            err.issues()[0].expression.as_deref(),
            Some("Parameters.parameter[1].name")
        );
        let query = vec![("profiel".to_string(), "x".to_string())];
        assert!(query_profiles(&query).is_err());
    }

    #[test]
    fn profiles_come_from_the_url_and_the_parameters() {
        let query = vec![
            ("profile".to_string(), "http://a".to_string()),
            ("_pretty".to_string(), "true".to_string()),
        ];
        let profiles = query_profiles(&query).unwrap();
        let body = json!({"resourceType": "Parameters", "parameter": [
            {"name": "resource", "resource": {"resourceType": "Patient"}},
            {"name": "profile", "valueCanonical": "http://b"},
            {"name": "mode", "valueCode": "create"}
        ]});
        let request = validate_request(body, profiles).unwrap();
        assert_eq!(request.profiles, ["http://a", "http://b"]);
        assert_eq!(request.resource["resourceType"], "Patient");
    }

    #[test]
    fn a_plain_resource_body_is_the_resource() {
        let request = validate_request(json!({"resourceType": "Patient"}), Vec::new()).unwrap();
        assert_eq!(request.resource["resourceType"], "Patient");
    }
}
