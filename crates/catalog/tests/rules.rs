//! Kanta's write-path data rules: each rule broken alone by a resource that is otherwise
//! fine, and the precise FHIRPath expression the rule reports.

use phr_catalog::rules::{self, App, PatientRef};
use phr_catalog::urls;
use phr_fhir::{Issue, IssueType, Severity};
use serde_json::{Value, json};

const PATIENT: &str = "25a53703-27f9-4354-8f1b-a8b2f8f3ee86";

fn example(name: &str) -> Value {
    let path = format!(
        "{}/../../../shared/kanta/examples/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn errors(issues: &[Issue]) -> Vec<&Issue> {
    issues.iter().filter(|i| i.is_error()).collect()
}

/// The only error `check` finds, with its expression.
fn only_error(resource: &Value) -> (IssueType, String) {
    let issues = rules::check(resource);
    let errors = errors(&issues);
    assert_eq!(
        errors.len(),
        1,
        "expected exactly one error, got {errors:#?}"
    );
    (
        errors[0].code,
        errors[0].expression.clone().unwrap_or_default(),
    )
}

fn assert_clean(resource: &Value) {
    let issues = rules::check(resource);
    assert!(errors(&issues).is_empty(), "{:#?}", issues);
}

fn body_weight() -> Value {
    example("Observation-example-BodyWeight-min.json")
}

fn insulin() -> Value {
    let mut ma = example("MedicationAdministration-InsulinDosage-mandatory.json");
    ma["performer"] = json!([{"actor": {"reference": format!("Patient/{PATIENT}")}}]);
    ma
}

fn care_plan() -> Value {
    json!({
        "resourceType": "CarePlan",
        "meta": {"profile": [urls::SELF_CARE_PLAN]},
        "language": "fi",
        "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">Painonhallinta</div>"},
        "identifier": [{"system": "urn:ietf:rfc:3986", "value": "urn:uuid:0b0c3e06-7a39-4b34-9b0e-5d2e2b4f1a10"}],
        "status": "completed",
        "intent": "plan",
        "category": [{"coding": [{"system": urls::CS_CAREPLAN_CATEGORY, "code": "42", "display": "Painonhallinta"}]}],
        "title": "Painonhallinta",
        "description": "Oma suunnitelma",
        "subject": {"reference": format!("Patient/{PATIENT}")},
        "author": {"reference": format!("Patient/{PATIENT}")}
    })
}

fn questionnaire_response() -> Value {
    json!({
        "resourceType": "QuestionnaireResponse",
        "meta": {"profile": [urls::QUESTIONNAIRE_RESPONSE]},
        "language": "fi",
        "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">Vastaus</div>"},
        "identifier": {"system": "urn:ietf:rfc:3986", "value": "urn:uuid:7e1f7c1e-55aa-4c57-8f6b-0a6a7c1d2e3f"},
        "questionnaire": "http://example.org/Questionnaire/q1",
        "status": "completed",
        "subject": {"reference": format!("Patient/{PATIENT}")},
        "authored": "2024-01-01T10:00:00+02:00",
        "source": {"reference": format!("Patient/{PATIENT}")},
        "item": [{"linkId": "1", "answer": [{"valueBoolean": true}]}]
    })
}

fn questionnaire() -> Value {
    json!({
        "resourceType": "Questionnaire",
        "meta": {"profile": [urls::QUESTIONNAIRE]},
        "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">Kysely</div>"},
        "url": "http://example.org/Questionnaire/q1",
        "identifier": [{"system": "urn:ietf:rfc:3986", "value": "urn:uuid:5d3c2b1a-0f9e-4d8c-b7a6-958473625140"}],
        "status": "active"
    })
}

fn patient() -> Value {
    example("example-patient.json")
}

// --- Examples -------------------------------------------------------------------------

#[test]
fn accepted_examples_pass_the_data_rules() {
    for name in [
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
        "bloodglucose-min.json",
        "observation-example-bloodglucose-astext.json",
        "observation-example-bloodglucose-dataabsentreason.json",
        "Observation-example-duplicate-7.json",
        "MedicationAdministration-InsulinDosage-mandatory.json",
        "example-patient.json",
    ] {
        let issues = rules::check(&example(name));
        assert!(errors(&issues).is_empty(), "{name}: {issues:#?}");
    }
}

#[test]
fn a_second_unknown_profile_is_accepted_with_a_warning() {
    let issues = rules::check(&example("Bloodglucose-max.json"));
    let warnings: Vec<&Issue> = issues
        .iter()
        .filter(|i| i.severity == Severity::Warning)
        .collect();
    assert_eq!(warnings.len(), 1, "{issues:#?}");
    assert_eq!(
        warnings[0].expression.as_deref(),
        Some("Observation.meta.profile[1]")
    );
    assert!(errors(&issues).is_empty(), "{issues:#?}");
}

#[test]
fn every_entry_of_the_kanta_batch_passes_the_data_rules() {
    let bundle = example("diabetes-data-bundle-kantaphr-r4-en.json");
    let entries = bundle["entry"].as_array().expect("entries");
    assert_eq!(entries.len(), 300);
    for entry in entries {
        let issues = rules::check(&entry["resource"]);
        assert!(errors(&issues).is_empty(), "{issues:#?}");
    }
}

#[test]
fn resources_without_a_finnish_phr_profile_are_rejected_naming_meta_profile() {
    let vendor = example("diabetes-data-bundle.json");
    for entry in vendor["entry"].as_array().expect("entries") {
        let issues = rules::check(&entry["resource"]);
        let rt = entry["resource"]["resourceType"].as_str().expect("type");
        let expected = format!("{rt}.meta.profile");
        assert!(
            errors(&issues)
                .iter()
                .any(|i| i.expression.as_deref() == Some(expected.as_str())),
            "{issues:#?}"
        );
    }
    let bolus = rules::check(&example(
        "medication-administration-insulin-bolus-dose-fi.json",
    ));
    assert!(
        errors(&bolus)
            .iter()
            .any(|i| i.expression.as_deref() == Some("MedicationAdministration.meta.profile"))
    );
    for n in 1..=5 {
        let issues = rules::check(&example(&format!("example-patient-{n}.json")));
        assert!(!errors(&issues).is_empty());
    }
    let sandbox = rules::check(&example("kanta-phr-patient-1.json"));
    let expressions: Vec<&str> = errors(&sandbox)
        .iter()
        .filter_map(|i| i.expression.as_deref())
        .collect();
    assert!(
        expressions.contains(&"Patient.meta.profile"),
        "{expressions:?}"
    );
    assert!(expressions.contains(&"Patient.name"), "{expressions:?}");
}

// --- meta.profile ----------------------------------------------------------------------

#[test]
fn missing_profile_is_reported_at_meta_profile() {
    let mut obs = body_weight();
    obs["meta"] = json!({});
    assert_eq!(
        only_error(&obs),
        (IssueType::Required, "Observation.meta.profile".into())
    );
}

#[test]
fn profile_of_another_type_is_reported_at_its_entry() {
    let mut obs = body_weight();
    obs["meta"]["profile"] = json!([urls::BODY_WEIGHT, urls::PATIENT]);
    assert_eq!(
        only_error(&obs),
        (IssueType::Invalid, "Observation.meta.profile[1]".into())
    );
}

#[test]
fn abstract_base_profile_is_not_enough() {
    let mut obs = example("observation-example-StepsTaken-min.json");
    obs["meta"]["profile"] = json!([urls::STEPS, urls::FITNESS]);
    assert_eq!(
        only_error(&obs),
        (IssueType::Invalid, "Observation.meta.profile[1]".into())
    );
}

#[test]
fn unknown_finnish_phr_profile_is_not_supported() {
    let mut obs = body_weight();
    obs["meta"]["profile"] = json!([
        urls::BODY_WEIGHT,
        "http://phr.kanta.fi/StructureDefinition/fiphr-sd-spirometry"
    ]);
    assert_eq!(
        only_error(&obs),
        (
            IssueType::NotSupported,
            "Observation.meta.profile[1]".into()
        )
    );
}

#[test]
fn resource_types_without_a_phr_profile_are_not_stored() {
    let condition = json!({"resourceType": "Condition", "meta": {"profile": [urls::BODY_WEIGHT]}});
    assert_eq!(
        only_error(&condition),
        (IssueType::NotSupported, "Condition".into())
    );
}

// --- language and narrative ------------------------------------------------------------

#[test]
fn missing_language_is_reported() {
    let mut obs = body_weight();
    obs.as_object_mut().expect("object").remove("language");
    assert_eq!(
        only_error(&obs),
        (IssueType::Required, "Observation.language".into())
    );
}

#[test]
fn missing_narrative_is_reported() {
    let mut ma = insulin();
    ma.as_object_mut().expect("object").remove("text");
    assert_eq!(
        only_error(&ma),
        (IssueType::Required, "MedicationAdministration.text".into())
    );
    let mut obs = body_weight();
    obs["text"] = json!({"status": "generated"});
    assert_eq!(
        only_error(&obs),
        (IssueType::Required, "Observation.text.div".into())
    );
}

#[test]
fn contained_resources_carry_no_narrative() {
    let mut obs = body_weight();
    obs["contained"] = json!([{"resourceType": "Device", "id": "d",
        "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>"}}]);
    assert_eq!(
        only_error(&obs),
        (IssueType::Invalid, "Observation.contained[0].text".into())
    );
}

#[test]
fn questionnaires_may_be_multilingual_but_need_a_narrative() {
    assert_clean(&questionnaire());
    let mut q = questionnaire();
    q.as_object_mut().expect("object").remove("text");
    assert_eq!(
        only_error(&q),
        (IssueType::Required, "Questionnaire.text".into())
    );
}

// --- identifier ------------------------------------------------------------------------

#[test]
fn a_globally_unique_identifier_is_required() {
    let mut obs = body_weight();
    obs["identifier"] = json!([{"system": "http://example.org/ids", "value": "42"}]);
    assert_eq!(
        only_error(&obs),
        (IssueType::Required, "Observation.identifier".into())
    );
}

#[test]
fn an_rfc3986_identifier_must_be_a_urn_uuid() {
    let mut obs = body_weight();
    obs["identifier"] = json!([{"system": "urn:ietf:rfc:3986", "value": "urn:uuid:not-a-uuid"}]);
    assert_eq!(
        only_error(&obs),
        (IssueType::Invalid, "Observation.identifier[0].value".into())
    );
}

// --- status ----------------------------------------------------------------------------

#[test]
fn observations_are_stored_only_final() {
    let mut obs = body_weight();
    obs["status"] = json!("preliminary");
    assert_eq!(
        only_error(&obs),
        (IssueType::Value, "Observation.status".into())
    );
}

#[test]
fn medication_administrations_are_stored_only_completed() {
    let mut ma = insulin();
    ma["status"] = json!("in-progress");
    assert_eq!(
        only_error(&ma),
        (IssueType::Value, "MedicationAdministration.status".into())
    );
}

#[test]
fn care_plans_are_stored_only_completed() {
    assert_clean(&care_plan());
    let mut cp = care_plan();
    cp["status"] = json!("active");
    assert_eq!(
        only_error(&cp),
        (IssueType::Value, "CarePlan.status".into())
    );
}

#[test]
fn erroneous_questionnaire_responses_are_not_stored() {
    assert_clean(&questionnaire_response());
    let mut qr = questionnaire_response();
    qr["status"] = json!("entered-in-error");
    assert_eq!(
        only_error(&qr),
        (
            IssueType::BusinessRule,
            "QuestionnaireResponse.status".into()
        )
    );
    qr["status"] = json!("amended");
    assert_clean(&qr);
}

// --- references to the user's Patient --------------------------------------------------

#[test]
fn subject_must_be_a_local_literal_patient_reference() {
    let mut obs = body_weight();
    obs["subject"] =
        json!({"reference": format!("https://elsewhere.example/fhir/Patient/{PATIENT}")});
    assert_eq!(
        only_error(&obs),
        (IssueType::Invalid, "Observation.subject.reference".into())
    );
    obs["subject"] = json!({"identifier": {"system": "urn:ietf:rfc:3986", "value": "urn:uuid:x"}});
    assert_eq!(
        only_error(&obs),
        (IssueType::Required, "Observation.subject.reference".into())
    );
    obs.as_object_mut().expect("object").remove("subject");
    assert_eq!(
        only_error(&obs),
        (IssueType::Required, "Observation.subject".into())
    );
}

#[test]
fn performer_must_be_the_users_patient() {
    let mut obs = body_weight();
    obs["performer"] = json!([{"reference": "Practitioner/p1"}]);
    assert_eq!(
        only_error(&obs),
        (
            IssueType::Invalid,
            "Observation.performer[0].reference".into()
        )
    );
}

#[test]
fn medication_performer_actor_must_be_a_patient_reference() {
    let mut ma = insulin();
    ma["performer"] = json!([{"actor": {"reference": "#me"}}]);
    assert_eq!(
        only_error(&ma),
        (
            IssueType::Invalid,
            "MedicationAdministration.performer[0].actor.reference".into()
        )
    );
}

#[test]
fn care_plan_author_may_not_be_version_specific() {
    let mut cp = care_plan();
    cp["author"] = json!({"reference": format!("Patient/{PATIENT}/_history/2")});
    assert_eq!(
        only_error(&cp),
        (IssueType::Invalid, "CarePlan.author.reference".into())
    );
}

#[test]
fn questionnaire_response_source_is_required() {
    let mut qr = questionnaire_response();
    qr.as_object_mut().expect("object").remove("source");
    assert_eq!(
        only_error(&qr),
        (IssueType::Required, "QuestionnaireResponse.source".into())
    );
}

#[test]
fn patient_references_lists_what_the_server_must_resolve() {
    let refs = rules::patient_references(&body_weight());
    assert_eq!(
        refs,
        vec![
            PatientRef {
                expression: "Observation.subject.reference".into(),
                id: PATIENT.into()
            },
            PatientRef {
                expression: "Observation.performer[0].reference".into(),
                id: PATIENT.into()
            },
        ]
    );
    let refs = rules::patient_references(&insulin());
    let expressions: Vec<&str> = refs.iter().map(|r| r.expression.as_str()).collect();
    assert_eq!(
        expressions,
        [
            "MedicationAdministration.subject.reference",
            "MedicationAdministration.performer[0].actor.reference"
        ]
    );
    assert!(rules::patient_references(&patient()).is_empty());
    let mut obs = body_weight();
    obs["performer"] = json!([{"reference": "Practitioner/p1"}]);
    assert_eq!(
        rules::patient_references(&obs).len(),
        1,
        "malformed ones are not listed"
    );
}

// --- the Patient pseudonym -------------------------------------------------------------

#[test]
fn a_patient_carries_no_personal_data() {
    let mut p = patient();
    p["name"] = json!([{"family": "Virtanen"}]);
    assert_eq!(only_error(&p), (IssueType::Invalid, "Patient.name".into()));
    let mut p = patient();
    p["text"] = json!({"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">Matti</div>"});
    assert_eq!(only_error(&p), (IssueType::Invalid, "Patient.text".into()));
}

#[test]
fn the_pseudonym_identifier_is_system_and_value_only() {
    let mut p = patient();
    p["identifier"][0]["use"] = json!("official");
    assert_eq!(
        only_error(&p),
        (IssueType::Invalid, "Patient.identifier[0].use".into())
    );
    let mut p = patient();
    p["identifier"][0]["system"] = json!("urn:oid:1.2.246.21");
    assert_eq!(
        only_error(&p),
        (IssueType::Value, "Patient.identifier[0].system".into())
    );
}

#[test]
fn the_pseudonym_equals_the_patient_id() {
    let mut p = patient();
    p["identifier"][0]["value"] = json!("urn:uuid:00000000-0000-4000-8000-000000000000");
    assert_eq!(
        only_error(&p),
        (IssueType::Value, "Patient.identifier[0].value".into())
    );
    let mut p = patient();
    p["identifier"].as_array_mut().expect("list").push(json!({"system": "urn:ietf:rfc:3986", "value": "urn:uuid:00000000-0000-4000-8000-000000000000"}));
    assert_eq!(
        only_error(&p),
        (IssueType::Invalid, "Patient.identifier".into())
    );
    let mut new = patient();
    new.as_object_mut().expect("object").remove("id");
    assert_clean(&new);
    assert_eq!(
        rules::pseudonym_id(&new),
        Some("36749a02-1710-44e7-aa76-0e934eb7860a")
    );
}

// --- creatingApplication and issued ----------------------------------------------------

const APP: App<'static> = App {
    id: "1.2.246.10.12345678.10.1",
    name: "Hyvinvointisovellus",
};

#[test]
fn creating_application_is_filled_from_the_registration() {
    let mut obs = body_weight();
    assert!(rules::apply_creating_application(&mut obs, APP).is_empty());
    let ext = &obs["extension"][0];
    assert_eq!(ext["url"], urls::EXT_CREATING_APPLICATION);
    assert_eq!(
        ext["extension"][0],
        json!({"url": "name", "valueString": APP.name})
    );
    assert_eq!(
        ext["extension"][1],
        json!({"url": "applicationId", "valueString": APP.id})
    );
    // Applying again changes nothing.
    let before = obs.clone();
    assert!(rules::apply_creating_application(&mut obs, APP).is_empty());
    assert_eq!(obs, before);
}

#[test]
fn creating_application_naming_another_application_is_rejected() {
    let mut obs = body_weight();
    obs["extension"] = json!([
        {"url": "http://example.org/other", "valueString": "x"},
        {"url": urls::EXT_CREATING_APPLICATION, "extension": [
            {"url": "name", "valueString": "Toinen"},
            {"url": "applicationId", "valueString": "1.2.3"}]}
    ]);
    let issues = rules::apply_creating_application(&mut obs, APP);
    let errors = errors(&issues);
    assert_eq!(errors.len(), 1, "{issues:#?}");
    assert_eq!(errors[0].code, IssueType::Forbidden);
    assert_eq!(
        errors[0].expression.as_deref(),
        Some("Observation.extension[1].extension[1].valueString")
    );
}

#[test]
fn creating_application_name_is_corrected_to_the_registered_one() {
    let mut obs = body_weight();
    obs["extension"] = json!([{"url": urls::EXT_CREATING_APPLICATION, "extension": [
        {"url": "name", "valueString": "Old name"},
        {"url": "applicationId", "valueString": APP.id}]}]);
    let issues = rules::apply_creating_application(&mut obs, APP);
    assert!(errors(&issues).is_empty());
    assert_eq!(issues.len(), 1);
    assert_eq!(
        issues[0].expression.as_deref(),
        Some("Observation.extension[0].extension[0].valueString")
    );
    assert_eq!(obs["extension"][0]["extension"][0]["valueString"], APP.name);
}

#[test]
fn creating_application_is_named_once() {
    let mut obs = body_weight();
    let mine = json!({"url": urls::EXT_CREATING_APPLICATION, "extension": [
        {"url": "name", "valueString": APP.name},
        {"url": "applicationId", "valueString": APP.id}]});
    obs["extension"] = json!([mine.clone(), mine]);
    let issues = rules::apply_creating_application(&mut obs, APP);
    assert_eq!(errors(&issues).len(), 1);
    assert_eq!(
        issues[0].expression.as_deref(),
        Some("Observation.extension[1]")
    );
}

#[test]
fn patients_get_no_creating_application() {
    let mut p = patient();
    let before = p.clone();
    assert!(rules::apply_creating_application(&mut p, APP).is_empty());
    assert_eq!(p, before);
}

#[test]
fn issued_is_the_storage_time() {
    let mut obs = example("Observation-example-duplicate-7.json");
    assert!(obs.get("issued").is_none());
    assert!(rules::set_issued(&mut obs, "2026-11-23T15:20:01.123Z"));
    assert_eq!(obs["issued"], "2026-11-23T15:20:01.123Z");
    let keys: Vec<&String> = obs.as_object().expect("object").keys().collect();
    let at = keys.iter().position(|k| *k == "issued").expect("issued");
    assert_eq!(
        keys[at - 1],
        "effectiveDateTime",
        "issued follows effective[x]"
    );
    let mut weight = body_weight();
    assert!(rules::set_issued(&mut weight, "2026-11-23T15:20:01.123Z"));
    assert_eq!(weight["issued"], "2026-11-23T15:20:01.123Z");
    let mut ma = insulin();
    assert!(!rules::set_issued(&mut ma, "2026-11-23T15:20:01.123Z"));
    assert!(ma.get("issued").is_none());
}

// Found by the black-box mutation test: `"issued": 42` was replaced by the storage time
// without a word. A wrong JSON type stays, for the validator to refuse.
#[test]
fn an_issued_of_the_wrong_json_type_is_left_for_the_validator() {
    for wrong in [
        json!(42),
        json!(null),
        json!(["2024-01-01T00:00:00Z"]),
        json!({}),
    ] {
        let mut weight = body_weight();
        weight["issued"] = wrong.clone();
        assert!(!rules::set_issued(&mut weight, "2026-11-23T15:20:01.123Z"));
        assert_eq!(weight["issued"], wrong);
    }
}

#[test]
fn a_mistyped_uuid_is_accepted_with_a_warning() {
    // Kanta's own CalorieIntake and MVPA examples carry such identifiers.
    let issues = rules::check(&example("Observation-example-CalorieIntake-min.json"));
    assert!(errors(&issues).is_empty(), "{issues:#?}");
    assert_eq!(issues.len(), 1);
    assert_eq!(issues[0].severity, Severity::Warning);
    assert_eq!(
        issues[0].expression.as_deref(),
        Some("Observation.identifier[0].value")
    );
}

#[test]
fn a_single_identifier_is_checked_too() {
    let mut qr = questionnaire_response();
    qr["identifier"]["value"] = json!("4711");
    assert_eq!(
        only_error(&qr),
        (
            IssueType::Invalid,
            "QuestionnaireResponse.identifier.value".into()
        )
    );
}
