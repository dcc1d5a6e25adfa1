//! Validation and Kanta's data rules on the write path: every bad resource
//! gets 422 with the precise FHIRPath of what is wrong, and nothing is stored.

mod common;

use common::*;
use serde_json::{Value, json};

/// Examples the Kanta example README says a faithful endpoint accepts.
const ACCEPTED: &[&str] = &[
    "Observation-example-BodyWeight-min.json",
    "Observation-example-BodyWeight-max.json",
    "Observation-example-Bloodpressure-min.json",
    "Observation-example-CalorieIntake-min.json",
    "Observation-example-CalorieIntake-max.json",
    "Observation-example-CarbohydrateIntakeEstimated-min.json",
    "Observation-example-ExerciseTracking-min.json",
    "Observation-example-MET-min.json",
    "Observation-example-ModerateToVigorousPATime-min.json",
    "Observation-example-ModerateToVigorousPATime-max.json",
    "observation-example-StepsTaken-min.json",
    "Observation-example-StepsTaken-max.json",
    "MedicationAdministration-InsulinDosage-mandatory.json",
];

/// Points every Patient reference of `resource` at `patient` and drops the example's id.
fn for_patient(mut resource: Value, patient: &str) -> Value {
    fn walk(v: &mut Value, patient: &str) {
        match v {
            Value::Object(map) => {
                for (k, child) in map.iter_mut() {
                    if k == "reference" && child.as_str().is_some_and(|r| r.starts_with("Patient/"))
                    {
                        *child = json!(format!("Patient/{patient}"));
                    } else {
                        walk(child, patient);
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|i| walk(i, patient)),
            _ => {}
        }
    }
    walk(&mut resource, patient);
    resource.as_object_mut().unwrap().remove("id");
    resource
}

fn server_with_patient() -> (Server, String) {
    let server = Server::open_sandbox();
    let patient = create_patient(&server, &uuid());
    (server, patient)
}

/// Posts `resource` and expects 422 with an error at `expression`.
fn assert_rejected_at(server: &Server, resource: &Value, expression: &str) {
    let rtype = resource["resourceType"].as_str().unwrap();
    let response = server.post(rtype, resource);
    let status = response.status();
    let outcome = body(response);
    assert_eq!(status, 422, "expected 422 at {expression}: {outcome}");
    let found = issues(&outcome);
    assert!(
        found
            .iter()
            .any(|(severity, _, at)| severity == "error" && at == expression),
        "no error at {expression}: {outcome:#}"
    );
}

#[test]
fn every_valid_kanta_example_is_accepted_and_stored() {
    let (server, patient) = server_with_patient();
    for name in ACCEPTED {
        let resource = for_patient(kanta_example(name), &patient);
        let rtype = resource["resourceType"].as_str().unwrap().to_string();
        let response = server.post(&rtype, &resource);
        let status = response.status();
        let stored = body(response);
        assert_eq!(status, 201, "{name}: {stored:#}");
        assert_eq!(
            body(server.get(&format!("{rtype}/{}", stored["id"].as_str().unwrap()))),
            stored
        );
    }
}

#[test]
fn the_kanta_example_patient_is_accepted() {
    let server = Server::open_sandbox();
    let patient = kanta_example("example-patient.json");
    let id = patient["id"].as_str().unwrap().to_string();
    let response = server.put(&format!("Patient/{id}"), &patient);
    assert_eq!(response.status(), 201, "{}", response.text().unwrap());
}

#[test]
fn examples_without_a_finnish_phr_profile_are_rejected() {
    let (server, patient) = server_with_patient();
    let device_vendor = for_patient(
        kanta_example("medication-administration-insulin-bolus-dose-fi.json"),
        &patient,
    );
    assert_rejected_at(
        &server,
        &device_vendor,
        "MedicationAdministration.meta.profile",
    );
    for name in ["example-patient-1.json", "kanta-phr-patient-1.json"] {
        let mut patient = kanta_example(name);
        patient.as_object_mut().unwrap().remove("id");
        let response = server.post("Patient", &patient);
        assert_eq!(response.status(), 422, "{name}");
    }
    let mut batch = kanta_example("diabetes-data-bundle.json");
    // 958 entries: more than one request may carry; the first 100 make the point.
    batch["entry"].as_array_mut().unwrap().truncate(100);
    let response = body(server.post("", &batch));
    for entry in response["entry"].as_array().unwrap() {
        assert!(
            entry["response"]["status"]
                .as_str()
                .unwrap()
                .starts_with("422"),
            "{entry}"
        );
    }
}

/// Examples the example README lists as valid, but which Kela's official StructureDefinitions
/// reject (the catalogue's differential test runs the same examples through the official
/// definitions): each with the rule that breaks it. The official definitions win.
const INVALID_BY_OFFICIAL_DEFINITIONS: &[(&str, &str)] = &[
    // Only 15074-8: PHR-2 demands 14743-9 beside it (the glucometer pair).
    ("bloodglucose-min.json", "PHR-2"),
    // Only 14743-9: PHR-3 demands 15074-8 beside it.
    ("observation-example-bloodglucose-astext.json", "PHR-3"),
    (
        "observation-example-bloodglucose-dataabsentreason.json",
        "PHR-3",
    ),
    // A second coding inside the VSCat category slice, whose system and code are fixed.
    ("Bloodglucose-max.json", "Observation.category[0].coding[1]"),
    // The body height value is the JSON string "182", not a number.
    (
        "Observation-example-duplicate-7.json",
        "Observation.valueQuantity.value",
    ),
];

#[test]
fn examples_the_official_definitions_reject_are_rejected() {
    let (server, patient) = server_with_patient();
    for (name, rule) in INVALID_BY_OFFICIAL_DEFINITIONS {
        let resource = for_patient(kanta_example(name), &patient);
        let response = server.post("Observation", &resource);
        assert_eq!(response.status(), 422, "{name}");
        let outcome = body(response);
        assert!(
            outcome.to_string().contains(rule),
            "{name}: expected {rule} in {outcome:#}"
        );
    }
}

#[test]
fn unknown_elements_are_rejected_with_their_path() {
    let (server, patient) = server_with_patient();
    let mut obs = weight(&patient, 80.0);
    obs["valueQuantity"]["colour"] = json!("blue");
    assert_rejected_at(&server, &obs, "Observation.valueQuantity.colour");
}

#[test]
fn malformed_primitives_are_rejected() {
    let (server, patient) = server_with_patient();
    let mut obs = weight(&patient, 80.0);
    obs["effectiveDateTime"] = json!("2024-02-30T08:00:00+02:00");
    assert_rejected_at(&server, &obs, "Observation.effectiveDateTime");
    let mut obs = weight(&patient, 80.0);
    obs["valueQuantity"]["value"] = json!("80");
    assert_rejected_at(&server, &obs, "Observation.valueQuantity.value");
}

#[test]
fn required_bindings_are_enforced() {
    let (server, patient) = server_with_patient();
    let mut obs = weight(&patient, 80.0);
    obs["status"] = json!("bogus");
    assert_rejected_at(&server, &obs, "Observation.status");
}

#[test]
fn wrong_unit_for_the_profile_is_rejected() {
    let (server, patient) = server_with_patient();
    let mut obs = weight(&patient, 80.0);
    obs["valueQuantity"]["code"] = json!("g");
    assert_rejected_at(&server, &obs, "Observation.valueQuantity.code");
}

#[test]
fn kanta_rule_profile_must_be_a_finnish_phr_profile() {
    let (server, patient) = server_with_patient();
    let mut obs = weight(&patient, 80.0);
    obs["meta"]["profile"] = json!(["http://hl7.org/fhir/StructureDefinition/bodyweight"]);
    assert_rejected_at(&server, &obs, "Observation.meta.profile");
    obs.as_object_mut().unwrap().remove("meta");
    assert_rejected_at(&server, &obs, "Observation.meta.profile");
}

#[test]
fn kanta_rule_language_and_narrative_are_required() {
    let (server, patient) = server_with_patient();
    let mut obs = weight(&patient, 80.0);
    obs.as_object_mut().unwrap().remove("language");
    assert_rejected_at(&server, &obs, "Observation.language");
    let mut obs = weight(&patient, 80.0);
    obs.as_object_mut().unwrap().remove("text");
    assert_rejected_at(&server, &obs, "Observation.text");
}

#[test]
fn kanta_rule_a_urn_uuid_identifier_is_required() {
    let (server, patient) = server_with_patient();
    let mut obs = weight(&patient, 80.0);
    obs["identifier"] = json!([{"system": "http://example.org/ids", "value": "123"}]);
    assert_rejected_at(&server, &obs, "Observation.identifier");
}

#[test]
fn kanta_rule_status_values() {
    let (server, patient) = server_with_patient();
    let mut obs = weight(&patient, 80.0);
    obs["status"] = json!("preliminary");
    assert_rejected_at(&server, &obs, "Observation.status");
    let mut insulin = for_patient(
        kanta_example("MedicationAdministration-InsulinDosage-mandatory.json"),
        &patient,
    );
    insulin["status"] = json!("in-progress");
    assert_rejected_at(&server, &insulin, "MedicationAdministration.status");
}

#[test]
fn kanta_rule_subject_must_be_an_existing_local_patient() {
    let (server, patient) = server_with_patient();
    let mut obs = weight(&patient, 80.0);
    obs["subject"]["reference"] = json!(format!("Patient/{}", uuid()));
    assert_rejected_at(&server, &obs, "Observation.subject.reference");
    let mut obs = weight(&patient, 80.0);
    obs["performer"][0]["reference"] = json!("https://elsewhere.example/Patient/1");
    assert_rejected_at(&server, &obs, "Observation.performer[0].reference");
}

#[test]
fn kanta_rule_patient_is_only_a_pseudonym() {
    let server = Server::open_sandbox();
    let id = uuid();
    let mut patient = kanta_patient(&id);
    patient["name"] = json!([{"family": "Virtanen"}]);
    let response = server.put(&format!("Patient/{id}"), &patient);
    assert_eq!(response.status(), 422);
    let outcome = body(response);
    assert!(
        issues(&outcome)
            .iter()
            .any(|(s, _, at)| s == "error" && at.starts_with("Patient.name")),
        "{outcome}"
    );
    assert_eq!(server.get(&format!("Patient/{id}")).status(), 404);
}

#[test]
fn issued_is_set_to_the_storage_time() {
    let (server, patient) = server_with_patient();
    let stored = body(server.post("Observation", &weight(&patient, 80.0)));
    assert_eq!(
        stored["issued"], stored["meta"]["lastUpdated"],
        "{stored:#}"
    );
}

#[test]
fn every_issue_is_reported_at_once() {
    let (server, patient) = server_with_patient();
    let mut obs = weight(&patient, 80.0);
    obs["status"] = json!("preliminary");
    obs.as_object_mut().unwrap().remove("language");
    obs["valueQuantity"]["colour"] = json!("blue");
    let outcome = body(server.post("Observation", &obs));
    let at: Vec<String> = issues(&outcome)
        .into_iter()
        .filter(|(s, _, _)| s == "error")
        .map(|(_, _, e)| e)
        .collect();
    for expected in [
        "Observation.status",
        "Observation.language",
        "Observation.valueQuantity.colour",
    ] {
        assert!(
            at.iter().any(|e| e == expected),
            "{expected} missing from {at:?}"
        );
    }
}

#[test]
fn resources_without_a_kanta_profile_get_base_validation_only() {
    let server = Server::open_sandbox();
    let ok = server.post(
        "Basic",
        &json!({"resourceType": "Basic", "code": {"text": "note"}}),
    );
    assert_eq!(ok.status(), 201);
    let bad = json!({"resourceType": "Basic"});
    assert_rejected_at(&server, &bad, "Basic.code");
}

#[test]
fn a_meta_that_is_not_an_object_is_400_and_stores_nothing() {
    let (server, patient) = server_with_patient();
    for meta in [json!("fiphr-sd-bodyweight"), json!([1]), json!(5)] {
        let mut resource = weight(&patient, 70.0);
        resource["meta"] = meta.clone();
        let response = server.post("Observation", &resource);
        assert_eq!(response.status(), 400, "meta {meta}");
        let outcome = body(response);
        assert_eq!(outcome["issue"][0]["expression"][0], "Observation.meta");
    }
    let stored = body(server.get(&format!("Observation?patient={patient}")));
    assert_eq!(stored["total"], 0, "{stored}");
}

#[test]
fn validate_answers_every_issue_and_refuses_unknown_parameters() {
    let (server, patient) = server_with_patient();
    let resource = weight(&patient, 70.0);
    let ok = server.post("Observation/$validate", &resource);
    assert_eq!(ok.status(), 200);
    assert_eq!(body(ok)["resourceType"], "OperationOutcome");
    // A Parameters body names the resource, profiles and mode; nothing else.
    let parameters = json!({"resourceType": "Parameters", "parameter": [
        {"name": "resource", "resource": resource},
        {"name": "profiel", "valueUri": "http://phr.kanta.fi/StructureDefinition/fiphr-sd-bodyweight"}
    ]});
    let response = server.post("Observation/$validate", &parameters);
    assert_eq!(response.status(), 400);
    let outcome = body(response);
    assert!(
        outcome["issue"][0]["diagnostics"]
            .as_str()
            .is_some_and(|d| d.contains("profiel")),
        "{outcome}"
    );
    // The same in the URL.
    let response = server.post("Observation/$validate?profiel=x", &resource);
    assert_eq!(response.status(), 400);
    // Validating stored nothing.
    let stored = body(server.get(&format!("Observation?patient={patient}")));
    assert_eq!(stored["total"], 0, "{stored}");
}

#[test]
fn unknown_extensions_are_rejected_under_a_finnish_phr_profile() {
    let (server, patient) = server_with_patient();
    let mut weight = for_patient(
        kanta_example("Observation-example-BodyWeight-min.json"),
        &patient,
    );
    weight["identifier"][0]["value"] = json!(format!("urn:uuid:{}", uuid()));
    let extensions = weight["extension"].as_array().cloned().unwrap_or_default();
    let at = format!("Observation.extension[{}]", extensions.len());
    let mut with_unknown = extensions;
    with_unknown.push(json!({"url": "http://example.org/unknown", "valueString": "x"}));
    weight["extension"] = json!(with_unknown);
    assert_rejected_at(&server, &weight, &at);
    // $validate says the same, with the same path.
    let response = server.post("Observation/$validate", &weight);
    assert_eq!(response.status(), 200);
    let outcome = body(response);
    assert!(
        issues(&outcome)
            .iter()
            .any(|(severity, _, expression)| severity == "error" && *expression == at),
        "{outcome:#}"
    );
}

#[test]
fn validate_judges_a_bundle_whole_then_each_entry() {
    let (server, patient) = server_with_patient();
    let full_url = format!("urn:uuid:{}", uuid());
    let mut broken = weight(&patient, 70.0);
    broken["status"] = json!("bogus");
    let bundle = json!({"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": full_url, "resource": weight(&patient, 70.0)},
        {"fullUrl": full_url, "resource": broken}
    ]});
    let response = server.post("Bundle/$validate", &bundle);
    assert_eq!(response.status(), 200);
    let outcome = body(response);
    let errors: Vec<String> = issues(&outcome)
        .into_iter()
        .filter(|(severity, _, _)| severity == "error")
        .map(|(_, _, at)| at)
        .collect();
    // The Bundle's own rule (the same resource twice) and the entry's own problem, at its
    // place in the Bundle.
    assert!(
        errors.iter().any(|at| at == "Bundle.entry[1]"),
        "{outcome:#}"
    );
    assert!(
        errors
            .iter()
            .any(|at| at == "Bundle.entry[1].resource.status"),
        "{outcome:#}"
    );
    assert!(
        !errors.iter().any(|at| at.starts_with("Bundle.entry[0]")),
        "{outcome:#}"
    );
}
