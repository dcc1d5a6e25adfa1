//! The CapabilityStatement at `/metadata`, generated from what this server really does: the
//! resource types the pipeline accepts, the interactions the handlers implement, the
//! restrictions the service enforces and the search rules (in the `documentation` texts).
//! Like every response, it has no empty arrays.

use serde_json::{Map, Value, json};

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
    /// The largest search page (`_count` above it is lowered to it).
    pub max_page_size: usize,
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

/// The search rules every client meets, as `rest.documentation` says them.
fn search_rules(max_page_size: usize) -> String {
    format!(
        "Search: every searchset carries Bundle.total unless _total=none is asked (_total=estimate \
         answers the exact count too); _count=0 answers the total alone. A _count above \
         {max_page_size} is lowered to {max_page_size} silently and the next link carries on. An \
         unknown or unsupported search parameter, _sort key, _elements name or _include=* is a 400 \
         OperationOutcome naming what is supported; with the header Prefer: handling=lenient it \
         is ignored instead and reported in one OperationOutcome entry (search.mode = outcome), \
         the only OperationOutcome a searchset ever carries. A parameter without a value is \
         skipped. Searching {} needs patient=[id]; the compartment search Patient/[id]/[type] \
         (GET, or POST .../_search) follows the rules of [type]?patient=[id]. A token bound to a \
         citizen searches that citizen's compartment only.",
        phr_search::kanta::PATIENT_REQUIRED.join(", ")
    )
}

/// Inserts `key` unless `values` is empty (FHIR JSON has no empty arrays).
fn insert_list<T: serde::Serialize>(object: &mut Map<String, Value>, key: &str, values: Vec<T>) {
    if !values.is_empty() {
        object.insert(key.into(), json!(values));
    }
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
            let mut resource = Map::new();
            resource.insert("type".into(), json!(t));
            resource.insert(
                "profile".into(),
                json!(format!("http://hl7.org/fhir/StructureDefinition/{t}")),
            );
            insert_list(
                &mut resource,
                "supportedProfile",
                catalog.profiles_for_type(t).map(|p| p.url).collect(),
            );
            if phr_search::kanta::patient_required(t) {
                resource.insert(
                    "documentation".into(),
                    json!(format!(
                        "Searching {t} needs patient=[id], or the compartment search Patient/[id]/{t}."
                    )),
                );
            }
            insert_list(
                &mut resource,
                "interaction",
                interactions.iter().map(|code| json!({"code": code})).collect(),
            );
            for (key, value) in [
                ("versioning", json!("versioned-update")),
                ("readHistory", json!(true)),
                ("updateCreate", json!(update_create(t))),
                ("conditionalCreate", json!(interactions.contains(&"create"))),
                ("conditionalRead", json!("not-supported")),
                ("conditionalUpdate", json!(false)),
                ("conditionalDelete", json!("not-supported")),
                ("referencePolicy", json!(["literal", "local"])),
            ] {
                resource.insert(key.into(), value);
            }
            insert_list(&mut resource, "searchInclude", search.search_includes(t));
            insert_list(&mut resource, "searchRevInclude", search.search_rev_includes(t));
            insert_list(&mut resource, "searchParam", search.capability_search_params(t));
            let mut operations = vec![validate.clone()];
            if t == "Observation" {
                operations.push(json!({
                    "name": "stats",
                    "definition": "http://hl7.org/fhir/OperationDefinition/Observation-stats",
                    "documentation": format!(
                        "Statistics of one citizen's numeric Observations, computed exactly: {}. \
                         Beyond R4: interval (decimal hours) gives one statistic per interval; \
                         range-low and range-high count the values below, within and above \
                         ({}). GET takes period as [start]/[end].",
                        crate::stats::SUPPORTED.join(", "),
                        crate::stats::RANGE_SYSTEM
                    ),
                }));
            }
            resource.insert("operation".into(), Value::Array(operations));
            Value::Object(resource)
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
        "description": "OAuth 2.0 / SMART App Launch; see .well-known/smart-configuration. \
            Wellbeing applications act for a citizen with patient/ scopes. Certified professional \
            applications act for a professional (fhirUser = Practitioner) with read-only user/ \
            scopes (user/*.rs, user/Observation.rs, user/Patient.rs) and see only what a citizen \
            shares with the professional's organisation under an active care relationship.",
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
                "Batch and transaction Bundles of up to {} entries. Conditional create only with If-None-Exist: identifier=... {}",
                facts.max_bundle_entries,
                search_rules(facts.max_page_size),
            ),
            "security": security,
            "resource": resources,
            "interaction": [{"code": "transaction"}, {"code": "batch"}],
            "compartment": ["http://hl7.org/fhir/CompartmentDefinition/patient"],
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
            max_page_size: 1000,
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
    fn search_rules_and_the_patient_compartment_are_documented() {
        let cs = statement();
        let rest = &cs["rest"][0];
        let text = rest["documentation"].as_str().unwrap();
        for needle in [
            "_total=none",
            "lowered to 1000 silently",
            "Prefer: handling=lenient",
            "Patient/[id]/[type]",
        ] {
            assert!(text.contains(needle), "{needle}: {text}");
        }
        assert_eq!(
            rest["compartment"][0],
            "http://hl7.org/fhir/CompartmentDefinition/patient"
        );
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
