//! The CapabilityStatement at `/metadata`, generated from what this server really does: the
//! resource types the pipeline accepts, the interactions the handlers implement and the
//! restrictions the service enforces.

use serde_json::{Value, json};

use crate::conformance::is_conformance_type;
use crate::delete::UNDELETABLE_TYPES;
use crate::pipeline::Pipeline;
use crate::update::UPDATE_CREATE_TYPES;

/// Facts about the running server that the statement reports.
pub struct ServerFacts<'a> {
    /// The FHIR base URL.
    pub base_url: &'a str,
    pub version: &'a str,
    pub open_sandbox: bool,
    pub max_bundle_entries: usize,
    /// Where the authorization server's endpoints are (SMART `oauth-uris`).
    pub oauth: OAuthUris<'a>,
}

/// The OAuth endpoints a SMART client discovers from the statement.
pub struct OAuthUris<'a> {
    pub authorize: &'a str,
    pub token: &'a str,
    pub introspect: &'a str,
    pub revoke: &'a str,
}

fn update_create(resource_type: &str) -> bool {
    UPDATE_CREATE_TYPES.contains(&resource_type)
}

fn deletable(resource_type: &str) -> bool {
    !UNDELETABLE_TYPES.contains(&resource_type)
}

pub fn capability_statement(pipeline: &Pipeline, facts: &ServerFacts) -> Value {
    let search = phr_search::Registry::global();
    let catalog = phr_catalog::Catalog::get();
    let validate = json!({"name": "validate", "definition": "http://hl7.org/fhir/OperationDefinition/Resource-validate"});
    let resources: Vec<Value> = pipeline
        .resource_types()
        .into_iter()
        .map(|t| {
            let mut interactions: Vec<&str> = if is_conformance_type(t) {
                vec!["read", "vread", "search-type"]
            } else if t == "AuditEvent" {
                vec!["search-type"]
            } else {
                vec!["read", "vread", "update", "create", "search-type", "history-instance", "history-type"]
            };
            if deletable(t) && interactions.contains(&"create") {
                interactions.push("delete");
            }
            let mut resource = json!({
                "type": t,
                "profile": format!("http://hl7.org/fhir/StructureDefinition/{t}"),
                "interaction": interactions.iter().map(|code| json!({"code": code})).collect::<Vec<_>>(),
                "versioning": "versioned-update",
                "readHistory": true,
                "updateCreate": update_create(t),
                "conditionalCreate": interactions.contains(&"create"),
                "conditionalRead": "not-supported",
                "conditionalUpdate": false,
                "conditionalDelete": "not-supported",
                "referencePolicy": ["literal", "local"],
                "searchInclude": search.search_includes(t),
                "searchRevInclude": search.search_rev_includes(t),
                "searchParam": search.capability_search_params(t),
                "operation": [validate.clone()],
            });
            let profiles: Vec<&str> = catalog.profiles_for_type(t).map(|p| p.url).collect();
            if !profiles.is_empty()
                && let Some(object) = resource.as_object_mut()
            {
                object.insert("supportedProfile".into(), json!(profiles));
            }
            resource
        })
        .collect();
    let mut security = json!({
        "cors": true,
        "service": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/restful-security-service", "code": "SMART-on-FHIR"}]}],
        "extension": [{
            "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
            "extension": [
                {"url": "authorize", "valueUri": facts.oauth.authorize},
                {"url": "token", "valueUri": facts.oauth.token},
                {"url": "introspect", "valueUri": facts.oauth.introspect},
                {"url": "revoke", "valueUri": facts.oauth.revoke},
            ],
        }],
        "description": "OAuth 2.0 / SMART App Launch; see .well-known/smart-configuration",
    });
    if facts.open_sandbox
        && let Some(security) = security.as_object_mut()
    {
        security.insert("description".into(), json!(
            "Open sandbox: requests without a token are served without authentication (a token, when sent, \
             is checked). Do not store real personal data."
        ));
    }
    json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": crate::time::to_instant(crate::time::now_micros()),
        "kind": "instance",
        "software": {"name": "PHR", "version": facts.version},
        "implementation": {
            "description": "PHR: personal health record repository (Kanta PHR compatible)",
            "url": facts.base_url,
        },
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "rest": [{
            "mode": "server",
            "documentation": format!(
                "Batch and transaction Bundles of up to {} entries. Conditional create only with If-None-Exist: identifier=...",
                facts.max_bundle_entries
            ),
            "security": security,
            "resource": resources,
            "interaction": [{"code": "transaction"}, {"code": "batch"}],
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statement() -> Value {
        let facts = ServerFacts {
            base_url: "http://x/fhir/r4",
            version: "0",
            open_sandbox: true,
            max_bundle_entries: 300,
            oauth: OAuthUris {
                authorize: "http://x/oauth/authorize",
                token: "http://x/oauth/token",
                introspect: "http://x/oauth/introspect",
                revoke: "http://x/oauth/revoke",
            },
        };
        capability_statement(&Pipeline::new(), &facts)
    }

    #[test]
    fn lists_the_kanta_resource_types() {
        let cs = statement();
        let types: Vec<&str> = cs["rest"][0]["resource"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["type"].as_str().unwrap())
            .collect();
        for t in [
            "Patient",
            "Observation",
            "MedicationAdministration",
            "CarePlan",
            "Questionnaire",
            "QuestionnaireResponse",
            "Goal",
            "Consent",
            "StructureDefinition",
            "ValueSet",
            "CodeSystem",
        ] {
            assert!(types.contains(&t), "{t} missing");
        }
        assert!(!types.contains(&"DomainResource"));
    }

    #[test]
    fn lists_search_parameters_and_kanta_profiles() {
        let cs = statement();
        let obs = cs["rest"][0]["resource"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["type"] == "Observation")
            .unwrap();
        let params: Vec<&str> = obs["searchParam"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        for p in [
            "patient",
            "code",
            "date",
            "category",
            "identifier",
            "_lastUpdated",
            "value-quantity",
        ] {
            assert!(params.contains(&p), "{p} missing");
        }
        let profiles = obs["supportedProfile"].as_array().unwrap();
        assert!(
            profiles
                .iter()
                .any(|p| p == "http://phr.kanta.fi/StructureDefinition/fiphr-sd-bloodpressure")
        );
    }

    #[test]
    fn conformance_types_and_audit_events_are_read_only() {
        let cs = statement();
        for t in ["StructureDefinition", "AuditEvent"] {
            let r = cs["rest"][0]["resource"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["type"] == t)
                .unwrap();
            assert!(
                !r["interaction"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|i| i["code"] == "create"),
                "{t}"
            );
        }
    }

    #[test]
    fn patient_is_update_create_and_not_deletable() {
        let cs = statement();
        let patient = cs["rest"][0]["resource"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["type"] == "Patient")
            .unwrap();
        assert_eq!(patient["updateCreate"], true);
        assert!(
            !patient["interaction"]
                .as_array()
                .unwrap()
                .iter()
                .any(|i| i["code"] == "delete")
        );
    }
}
