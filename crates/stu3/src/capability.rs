//! The STU3 CapabilityStatement, generated from the R4 one (what the server really does)
//! restricted to what the STU3 endpoint serves: the Kanta STU3 resource types, their STU3
//! profiles, and the STU3 StructureDefinitions.

use phr_catalog::stu3::{RESOURCE_TYPES, TWINS};
use serde_json::{Map, Value, json};

/// The resource types the STU3 endpoint serves besides the data: the STU3 profiles.
pub const CONFORMANCE_TYPES: &[&str] = &["StructureDefinition"];

/// The STU3 statement derived from the R4 `statement`, for the endpoint at `stu3_base`,
/// naming `r4_base` as its successor.
pub fn capability_statement(r4: &Value, stu3_base: &str, r4_base: &str) -> Value {
    let mut out = Map::new();
    let src = r4.as_object().cloned().unwrap_or_default();
    for (key, value) in src {
        match key.as_str() {
            "fhirVersion" => {
                out.insert(key, json!(crate::Version::Stu3.number()));
            }
            "implementation" => {
                let mut implementation = value.as_object().cloned().unwrap_or_default();
                implementation.insert("url".into(), json!(stu3_base));
                implementation.insert("description".into(), json!(
                    "PHR: personal health record repository (Kanta PHR compatible), FHIR STU3 view \
                     (deprecated: use the R4 endpoint)"
                ));
                out.insert(key, Value::Object(implementation));
            }
            "format" => {
                out.insert("acceptUnknown".into(), json!("no"));
                out.insert(key, value);
            }
            "rest" => {
                let rest: Vec<Value> = value
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|r| rest_to_stu3(r, r4_base))
                    .collect();
                out.insert(key, Value::Array(rest));
            }
            _ => {
                out.insert(key, value);
            }
        }
    }
    out.insert(
        "profile".into(),
        Value::Array(TWINS.iter().map(|t| json!({"reference": t.url})).collect()),
    );
    Value::Object(out)
}

fn rest_to_stu3(rest: &Value, r4_base: &str) -> Value {
    let mut rest = rest.clone();
    let Some(object) = rest.as_object_mut() else {
        return rest;
    };
    if let Some(doc) = object.get("documentation").and_then(Value::as_str) {
        let doc = format!(
            "Deprecated FHIR STU3 (3.0.1) view of the same data as the R4 endpoint {r4_base} \
             (resources are stored once, in R4; ids, versions and paging are shared). Every \
             answer carries a Deprecation header and a Link to the R4 endpoint. A stored \
             resource STU3 cannot express is answered with an OperationOutcome naming the \
             element. {doc}"
        );
        object.insert("documentation".into(), json!(doc));
    }
    if let Some(security) = object.get_mut("security") {
        let text = serde_json::to_string(security).unwrap_or_default().replace(
            "http://terminology.hl7.org/CodeSystem/restful-security-service",
            "http://hl7.org/fhir/restful-security-service",
        );
        if let Ok(value) = serde_json::from_str(&text) {
            *security = value;
        }
    }
    if let Some(resources) = object.get("resource").and_then(Value::as_array) {
        let served: Vec<Value> = resources
            .iter()
            .filter(|r| {
                r["type"]
                    .as_str()
                    .is_some_and(|t| RESOURCE_TYPES.contains(&t) || CONFORMANCE_TYPES.contains(&t))
            })
            .map(resource_to_stu3)
            .collect();
        let mut operations: Vec<Value> = Vec::new();
        for op in resources
            .iter()
            .filter_map(|r| r.get("operation").and_then(Value::as_array))
            .flatten()
        {
            let stu3 = json!({
                "name": op.get("name").cloned().unwrap_or(Value::Null),
                "definition": {"reference": op.get("definition").cloned().unwrap_or(Value::Null)},
            });
            if !operations.contains(&stu3) {
                operations.push(stu3);
            }
        }
        object.insert("resource".into(), Value::Array(served));
        if !operations.is_empty() {
            object.insert("operation".into(), Value::Array(operations));
        }
    }
    rest
}

fn resource_to_stu3(resource: &Value) -> Value {
    let mut out = Map::new();
    let rtype = resource["type"].as_str().unwrap_or("");
    for (key, value) in resource.as_object().into_iter().flatten() {
        match key.as_str() {
            "profile" => {
                out.insert(key.clone(), json!({"reference": value}));
            }
            // R4 lists supported profiles per type; STU3 lists them once (`profile` above).
            "supportedProfile" => {
                let profiles: Vec<&str> = TWINS
                    .iter()
                    .filter(|t| t.resource_type == rtype)
                    .map(|t| t.url)
                    .collect();
                if !profiles.is_empty() {
                    out.insert(
                        "documentation".into(),
                        json!(
                            format!(
                                "{} STU3 profiles: {}.",
                                resource
                                    .get("documentation")
                                    .and_then(Value::as_str)
                                    .unwrap_or(""),
                                profiles.join(", ")
                            )
                            .trim_start()
                        ),
                    );
                }
            }
            "documentation" if out.contains_key("documentation") => {}
            // STU3 lists operations once per server (`rest.operation`, below).
            "operation" => {}
            _ => {
                out.insert(key.clone(), value.clone());
            }
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_are_listed_once_per_server_in_stu3() {
        let r4 = json!({
            "resourceType": "CapabilityStatement",
            "fhirVersion": "4.0.1",
            "implementation": {"url": "http://x/fhir/r4"},
            "format": ["json"],
            "rest": [{"mode": "server", "documentation": "d", "resource": [
                {"type": "Observation", "profile": "http://hl7.org/fhir/StructureDefinition/Observation",
                 "supportedProfile": ["http://phr.kanta.fi/StructureDefinition/fiphr-sd-bloodglucose"],
                 "operation": [{"name": "validate", "definition": "http://hl7.org/fhir/OperationDefinition/Resource-validate"}]},
                {"type": "Goal", "operation": [{"name": "validate", "definition": "http://hl7.org/fhir/OperationDefinition/Resource-validate"}]},
            ]}],
        });
        let stu3 = capability_statement(&r4, "http://x/fhir/stu3", "http://x/fhir/r4");
        assert_eq!(stu3["fhirVersion"], "3.0.1");
        assert_eq!(stu3["acceptUnknown"], "no");
        assert_eq!(stu3["implementation"]["url"], "http://x/fhir/stu3");
        let rest = &stu3["rest"][0];
        assert_eq!(
            rest["resource"].as_array().unwrap().len(),
            1,
            "Goal is not served in STU3"
        );
        let obs = &rest["resource"][0];
        assert!(obs.get("operation").is_none());
        assert!(obs.get("supportedProfile").is_none());
        assert_eq!(
            obs["profile"]["reference"],
            "http://hl7.org/fhir/StructureDefinition/Observation"
        );
        assert_eq!(
            rest["operation"],
            json!([{"name": "validate", "definition": {"reference": "http://hl7.org/fhir/OperationDefinition/Resource-validate"}}])
        );
        assert!(
            rest["documentation"]
                .as_str()
                .unwrap()
                .contains("http://x/fhir/r4")
        );
    }
}
