//! Conversion by example: Kanta's STU3 and R4 example Bundles, and one test per difference
//! between the versions that matters for the Finnish PHR contents.

use phr_catalog::Catalog;
use phr_catalog::stu3 as twins;
use serde_json::{Value, json};

use crate::observation::{CATEGORY_R4, CATEGORY_STU3};
use crate::{Reason, Version, to_r4, to_stu3};

fn example(name: &str) -> Value {
    let path = format!(
        "{}/../../../shared/kanta/examples/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap()
}

fn resources(bundle: &Value) -> Vec<Value> {
    bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["resource"].clone())
        .collect()
}

fn errors(resource: &Value) -> Vec<String> {
    Catalog::validator()
        .validate(resource, &phr_fhir::declared_profiles(resource))
        .into_iter()
        .filter(|i| i.is_error())
        .map(|i| format!("{:?}", i))
        .collect()
}

#[test]
fn every_entry_of_the_stu3_kanta_bundle_converts_to_a_valid_r4_resource() {
    let bundle = example("diabetes-data-bundle-kantaphr-sv.json");
    let all = resources(&bundle);
    assert_eq!(all.len(), 958);
    for stu3 in &all {
        let r4 = to_r4(stu3).unwrap();
        assert_eq!(errors(&r4), Vec::<String>::new(), "{r4:#}");
        // and back, unchanged
        assert_eq!(&to_stu3(&r4).unwrap(), stu3);
    }
}

#[test]
fn stu3_glucose_is_stored_under_the_r4_glucose_profile_and_category_system() {
    let bundle = example("diabetes-data-bundle-kantaphr-sv.json");
    let stu3 = &resources(&bundle)[0];
    let r4 = to_r4(stu3).unwrap();
    assert_eq!(
        r4["meta"]["profile"],
        json!([phr_catalog::urls::BLOOD_GLUCOSE])
    );
    assert_eq!(r4["category"][0]["coding"][0]["system"], CATEGORY_R4);
    assert_eq!(stu3["category"][0]["coding"][0]["system"], CATEGORY_STU3);
}

#[test]
fn every_entry_of_the_r4_kanta_bundle_reads_as_stu3_and_back() {
    let bundle = example("diabetes-data-bundle-kantaphr-r4-en.json");
    for r4 in resources(&bundle) {
        let stu3 = to_stu3(&r4).unwrap();
        let profile = stu3["meta"]["profile"][0].as_str().unwrap();
        assert!(twins::twin_of_stu3(profile).is_some(), "{profile}");
        assert_eq!(to_r4(&stu3).unwrap(), r4);
    }
}

#[test]
fn vital_signs_take_the_r4_profile_of_their_code() {
    let weight = json!({
        "resourceType": "Observation",
        "meta": {"profile": [twins::VITAL_SIGNS]},
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
        "valueQuantity": {"value": 70, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"}
    });
    assert_eq!(
        to_r4(&weight).unwrap()["meta"]["profile"][0],
        phr_catalog::urls::BODY_WEIGHT
    );
    let mut heart = weight.clone();
    heart["code"]["coding"][0]["code"] = json!("8867-4");
    assert_eq!(
        to_r4(&heart).unwrap()["meta"]["profile"][0],
        phr_catalog::urls::VITAL_SIGNS
    );
}

#[test]
fn not_given_is_r4_status_not_done_and_back() {
    let stu3 = json!({
        "resourceType": "MedicationAdministration",
        "status": "completed",
        "notGiven": true,
        "reasonNotGiven": [{"text": "forgot"}],
        "medicationCodeableConcept": {"text": "insulin"},
        "subject": {"reference": "Patient/p"},
        "context": {"reference": "Encounter/e"},
        "effectiveDateTime": "2021-09-04T17:23:17+03:00",
        "prescription": {"reference": "MedicationRequest/m"},
        "dosage": {"dose": {"value": 2, "unit": "IU", "system": "http://unitsofmeasure.org", "code": "[iU]"}}
    });
    let r4 = to_r4(&stu3).unwrap();
    assert_eq!(r4["status"], "not-done");
    assert!(r4.get("notGiven").is_none());
    assert_eq!(r4["statusReason"], json!([{"text": "forgot"}]));
    assert_eq!(r4["context"], stu3["context"]);
    assert_eq!(r4["request"], stu3["prescription"]);
    assert_eq!(r4["dosage"], stu3["dosage"]);
    assert_eq!(to_stu3(&r4).unwrap(), stu3);
}

#[test]
fn a_dose_not_given_with_another_status_cannot_cross() {
    let stu3 = json!({"resourceType": "MedicationAdministration", "status": "in-progress", "notGiven": true});
    let e = to_r4(&stu3).unwrap_err();
    assert_eq!(e.path, "MedicationAdministration.status");
    assert_eq!(e.reason, Reason::NotExpressible);
}

#[test]
fn elements_the_other_version_lacks_are_named() {
    let cases = [
        (
            Version::Stu3,
            json!({"resourceType": "Observation", "valueAttachment": {"url": "x"}}),
            "Observation.valueAttachment",
        ),
        (
            Version::R4,
            json!({"resourceType": "Observation", "valueInteger": 3}),
            "Observation.valueInteger",
        ),
        (
            Version::R4,
            json!({"resourceType": "Observation", "effectiveInstant": "2021-01-01T00:00:00Z"}),
            "Observation.effectiveInstant",
        ),
        (
            Version::R4,
            json!({"resourceType": "Observation", "focus": [{"reference": "Patient/p"}]}),
            "Observation.focus",
        ),
        (
            Version::R4,
            json!({"resourceType": "Observation", "interpretation": [{"text": "a"}, {"text": "b"}]}),
            "Observation.interpretation",
        ),
        (
            Version::R4,
            json!({"resourceType": "Observation", "note": [{"text": "a", "time": "2021"}]}),
            "Observation.note",
        ),
        (
            Version::Stu3,
            json!({"resourceType": "Observation", "related": [{"type": "replaces", "target": {"reference": "Observation/o"}}]}),
            "Observation.related[0].type",
        ),
        (
            Version::Stu3,
            json!({"resourceType": "MedicationAdministration", "performer": [{"actor": {"reference": "Patient/p"}, "onBehalfOf": {"reference": "Organization/o"}}]}),
            "MedicationAdministration.performer[0].onBehalfOf",
        ),
        (
            Version::R4,
            json!({"resourceType": "Observation", "meta": {"source": "x"}}),
            "Observation.meta.source",
        ),
        (
            Version::R4,
            json!({"resourceType": "Observation", "meta": {"profile": [phr_catalog::urls::STEPS]}}),
            "Observation.meta.profile[0]",
        ),
        (
            Version::Stu3,
            json!({"resourceType": "Patient", "animal": {"species": {"text": "dog"}}}),
            "Patient.animal",
        ),
        (
            Version::Stu3,
            json!({"resourceType": "Questionnaire", "item": [{"linkId": "1", "type": "question"}]}),
            "Questionnaire.item[0].type",
        ),
        (
            Version::R4,
            json!({"resourceType": "Questionnaire", "item": [{"linkId": "1", "type": "string", "enableWhen": [{"question": "a", "operator": ">", "answerInteger": 1}]}]}),
            "Questionnaire.item[0].enableWhen[0].operator",
        ),
        (
            Version::R4,
            json!({"resourceType": "CarePlan", "contributor": [{"reference": "Patient/p"}]}),
            "CarePlan.contributor",
        ),
        (Version::R4, json!({"resourceType": "Goal"}), "Goal"),
        (
            Version::Stu3,
            json!({"resourceType": "Observation", "_status": {"extension": []}, "status": "final", "unknownThing": 1}),
            "Observation.unknownThing",
        ),
    ];
    for (from, resource, path) in cases {
        let result = match from {
            Version::Stu3 => to_r4(&resource),
            Version::R4 => to_stu3(&resource),
        };
        let e = result.expect_err(path);
        assert_eq!(e.path, path, "{e}");
        assert!(e.to_issue().to_json()["expression"][0] == path);
    }
}

#[test]
fn misspelled_stu3_elements_are_unknown_not_dropped() {
    let e = to_r4(&json!({"resourceType": "Observation", "valueQuantityy": {}})).unwrap_err();
    assert_eq!(e.reason, Reason::Unknown);
    assert_eq!(e.path, "Observation.valueQuantityy");
    let e = to_r4(&json!({"resourceType": "Observation", "hasMember": []})).unwrap_err();
    assert_eq!(e.reason, Reason::Unknown, "an R4 element posted as STU3");
}

#[test]
fn an_r4_profile_named_in_stu3_input_points_at_its_twin() {
    let e = to_r4(&json!({"resourceType": "Observation", "meta": {"profile": [phr_catalog::urls::BLOOD_GLUCOSE]}})).unwrap_err();
    assert!(e.message.contains(twins::BLOOD_GLUCOSE), "{e}");
}

#[test]
fn questionnaire_conditions_and_options_cross_both_ways() {
    let stu3 = json!({
        "resourceType": "Questionnaire",
        "meta": {"profile": [twins::QUESTIONNAIRE]},
        "status": "active",
        "item": [{
            "linkId": "2", "type": "choice", "text": "Q",
            "enableWhen": [{"question": "1", "hasAnswer": true}, {"question": "0", "answerCoding": {"code": "x"}}],
            "options": {"reference": "http://phr.kanta.fi/ValueSet/x"},
            "initialString": "a",
            "item": [{"linkId": "2.1", "type": "choice", "option": [{"valueString": "a"}]}]
        }]
    });
    let r4 = to_r4(&stu3).unwrap();
    let item = &r4["item"][0];
    assert_eq!(
        item["enableWhen"][0],
        json!({"question": "1", "operator": "exists", "answerBoolean": true})
    );
    assert_eq!(item["enableWhen"][1]["operator"], "=");
    assert_eq!(item["enableBehavior"], "any");
    assert_eq!(item["answerValueSet"], "http://phr.kanta.fi/ValueSet/x");
    assert_eq!(item["initial"], json!([{"valueString": "a"}]));
    assert_eq!(
        item["item"][0]["answerOption"],
        json!([{"valueString": "a"}])
    );
    assert_eq!(r4["meta"]["profile"][0], phr_catalog::urls::QUESTIONNAIRE);
    assert_eq!(to_stu3(&r4).unwrap(), stu3);
}

#[test]
fn responses_and_care_plans_cross_both_ways() {
    let response = json!({
        "resourceType": "QuestionnaireResponse",
        "meta": {"profile": [twins::QUESTIONNAIRE_RESPONSE]},
        "parent": [{"reference": "Observation/o"}],
        "questionnaire": {"reference": "Questionnaire/q"},
        "status": "completed",
        "context": {"reference": "Encounter/e"},
        "item": [{"linkId": "1", "answer": [{"valueString": "x", "item": [{"linkId": "1.1"}]}]}]
    });
    let r4 = to_r4(&response).unwrap();
    assert_eq!(r4["questionnaire"], "Questionnaire/q");
    assert_eq!(r4["partOf"], response["parent"]);
    assert_eq!(r4["encounter"], response["context"]);
    assert_eq!(to_stu3(&r4).unwrap(), response);

    let plan = json!({
        "resourceType": "CarePlan",
        "meta": {"profile": [twins::SELF_CARE_PLAN]},
        "status": "suspended",
        "intent": "plan",
        "author": [{"reference": "Patient/p"}],
        "activity": [{"detail": {"status": "on-hold", "statusReason": "ill", "prohibited": false}}]
    });
    let r4 = to_r4(&plan).unwrap();
    assert_eq!(r4["status"], "on-hold");
    assert_eq!(r4["author"], json!({"reference": "Patient/p"}));
    assert_eq!(
        r4["activity"][0]["detail"]["statusReason"],
        json!({"text": "ill"})
    );
    assert_eq!(r4["activity"][0]["detail"]["doNotPerform"], false);
    assert_eq!(to_stu3(&r4).unwrap(), plan);
}

#[test]
fn primitive_extensions_travel_with_renamed_elements() {
    let stu3 = json!({
        "resourceType": "MedicationAdministration",
        "status": "completed",
        "identifier": [{"value": "x"}],
        "_status": {"extension": [{"url": "http://example.org/x", "valueString": "y"}]}
    });
    let e = to_r4(&stu3).unwrap_err();
    assert_eq!(e.path, "MedicationAdministration.status");
    let obs = json!({"resourceType": "Observation", "status": "final", "_status": {"id": "s"}});
    assert_eq!(to_stu3(&to_r4(&obs).unwrap()).unwrap(), obs);
}
