//! Round trips over generated resources of every Finnish PHR content.
//!
//! Each generated case is a pair: the same data written in STU3 and in R4, built from
//! optional parts chosen at random (fixed seeds), each part written once per version. The
//! property: STU3 → R4 gives exactly the R4 form, R4 → STU3 exactly the STU3 form; so
//! STU3 → R4 → STU3 and R4 → STU3 → R4 keep every element both versions can hold. Parts that
//! only one version can hold are checked to fail with an error naming them.

use phr_catalog::stu3::{self as twins, TWINS};
use phr_catalog::{Catalog, DataContent};
use phr_stu3::{Reason, to_r4, to_stu3};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Map, Value, json};

const CASES_PER_CONTENT: u64 = 64;
const CAT_STU3: &str = "http://hl7.org/fhir/observation-category";
const CAT_R4: &str = "http://terminology.hl7.org/CodeSystem/observation-category";

/// One optional part of a resource: its STU3 and R4 forms (top-level elements).
struct Part {
    stu3: Value,
    r4: Value,
}

fn part(stu3: Value, r4: Value) -> Part {
    Part { stu3, r4 }
}

fn same(v: Value) -> Part {
    part(v.clone(), v)
}

fn merge(into: &mut Map<String, Value>, from: &Value) {
    for (k, v) in from.as_object().unwrap() {
        into.insert(k.clone(), v.clone());
    }
}

fn uuid(rng: &mut StdRng) -> String {
    let n: u128 = rng.random();
    let h = format!("{n:032x}");
    format!(
        "{}-{}-4{}-8{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

fn quantity(rng: &mut StdRng, unit: &str) -> Value {
    json!({"value": rng.random_range(1..500) as f64 / 10.0, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit})
}

fn datetime(rng: &mut StdRng) -> String {
    format!(
        "2021-{:02}-{:02}T{:02}:{:02}:00+03:00",
        rng.random_range(1..13),
        rng.random_range(1..29),
        rng.random_range(0..24),
        rng.random_range(0..60)
    )
}

/// Parts every resource may have.
fn common(rng: &mut StdRng) -> Vec<Part> {
    vec![
        same(json!({"id": uuid(rng)})),
        same(json!({"language": (["fi", "sv", "en"][rng.random_range(0..3)])})),
        same(
            json!({"text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>"}}),
        ),
        same(
            json!({"identifier": [{"system": "urn:ietf:rfc:3986", "value": format!("urn:uuid:{}", uuid(rng))}]}),
        ),
        same(
            json!({"extension": [{"url": phr_catalog::urls::EXT_CREATING_APPLICATION, "extension": [{"url": "name", "valueString": "App"}, {"url": "applicationId", "valueString": "1.2.3"}]}]}),
        ),
        part(
            json!({"extension": [{"url": "http://phr.kanta.fi/StructureDefinition/fiphr-boolean", "valueBoolean": true}]}),
            json!({"extension": [{"url": phr_catalog::urls::EXT_BOOLEAN, "valueBoolean": true}]}),
        ),
    ]
}

fn observation_parts(rng: &mut StdRng, content: &DataContent) -> Vec<Part> {
    let unit = content.unit.map_or("1", |u| u.ucum);
    let code = content.codes.first().map_or(
        json!({"text": "x"}),
        |c| json!({"coding": [{"system": c.system, "code": c.code}]}),
    );
    let patient = json!({"reference": format!("Patient/{}", uuid(rng))});
    let mut parts = vec![
        same(json!({"status": "final", "code": code})),
        part(
            json!({"category": [{"coding": [{"system": CAT_STU3, "code": "vital-signs"}]}]}),
            json!({"category": [{"coding": [{"system": CAT_R4, "code": "vital-signs"}]}]}),
        ),
        same(json!({"subject": patient.clone(), "performer": [patient]})),
        same(json!({"issued": "2023-04-16T21:21:34.671+03:00"})),
        part(
            json!({"context": {"reference": "Encounter/e1"}}),
            json!({"encounter": {"reference": "Encounter/e1"}}),
        ),
        part(
            json!({"comment": "felt fine"}),
            json!({"note": [{"text": "felt fine"}]}),
        ),
        part(
            json!({"interpretation": {"text": "high"}}),
            json!({"interpretation": [{"text": "high"}]}),
        ),
        part(
            json!({"related": [{"type": "has-member", "target": {"reference": "Observation/a"}}, {"type": "derived-from", "target": {"reference": "Observation/b"}}]}),
            json!({"hasMember": [{"reference": "Observation/a"}], "derivedFrom": [{"reference": "Observation/b"}]}),
        ),
        same(json!({"referenceRange": [{"low": quantity(rng, unit), "text": "normal"}]})),
        same(
            json!({"bodySite": {"text": "arm"}, "method": {"text": "m"}, "device": {"reference": "Device/d"}}),
        ),
    ];
    parts.push(if rng.random_bool(0.5) {
        same(json!({"effectiveDateTime": datetime(rng)}))
    } else {
        same(json!({"effectivePeriod": {"start": datetime(rng)}}))
    });
    parts.push(match rng.random_range(0..4) {
        0 => same(json!({"valueQuantity": quantity(rng, unit)})),
        1 => same(json!({"valueCodeableConcept": {"text": "c"}})),
        2 => same(json!({"valueString": "s"})),
        _ => same(json!({"dataAbsentReason": {"text": "error"}})),
    });
    if !content.series.is_empty() {
        let components: Vec<(Value, Value)> = content
            .series
            .iter()
            .map(|s| {
                let base = json!({"code": {"coding": [{"system": s.code.system, "code": s.code.code}]}, "valueQuantity": quantity(rng, s.unit.ucum)});
                let mut stu3 = base.clone();
                let mut r4 = base;
                stu3["interpretation"] = json!({"text": "n"});
                r4["interpretation"] = json!([{"text": "n"}]);
                (stu3, r4)
            })
            .collect();
        parts.push(part(
            json!({"component": components.iter().map(|c| c.0.clone()).collect::<Vec<_>>()}),
            json!({"component": components.iter().map(|c| c.1.clone()).collect::<Vec<_>>()}),
        ));
    }
    parts
}

fn medication_parts(rng: &mut StdRng) -> Vec<Part> {
    let dose = quantity(rng, "[iU]");
    vec![
        same(
            json!({"medicationCodeableConcept": {"coding": [{"system": phr_catalog::urls::CS_INSULIN_CODE, "code": "ins-short-fast"}]}}),
        ),
        same(
            json!({"subject": {"reference": "Patient/p1"}, "effectivePeriod": {"start": datetime(rng), "end": datetime(rng)}}),
        ),
        same(
            json!({"context": {"reference": "Encounter/e1"}, "supportingInformation": [{"reference": "Observation/o"}]}),
        ),
        same(
            json!({"dosage": {"text": "t", "route": {"text": "sc"}, "site": {"text": "arm"}, "dose": dose, "rateRatio": {"numerator": quantity(rng, "[iU]"), "denominator": quantity(rng, "h")}}}),
        ),
        same(json!({"performer": [{"actor": {"reference": "Patient/p1"}}]})),
        part(
            json!({"prescription": {"reference": "MedicationRequest/r"}}),
            json!({"request": {"reference": "MedicationRequest/r"}}),
        ),
        if rng.random_bool(0.3) {
            part(
                json!({"status": "completed", "notGiven": true, "reasonNotGiven": [{"text": "no"}]}),
                json!({"status": "not-done", "statusReason": [{"text": "no"}]}),
            )
        } else {
            same(json!({"status": "completed", "reasonCode": [{"text": "meal"}]}))
        },
        same(json!({"note": [{"text": "n", "time": datetime(rng)}]})),
    ]
}

fn patient_parts(rng: &mut StdRng) -> Vec<Part> {
    vec![
        same(json!({"active": true})),
        same(json!({"gender": "female", "birthDate": "1980-01-01", "deceasedBoolean": false})),
        part(
            json!({"link": [{"other": {"reference": "Patient/x"}, "type": "replace"}]}),
            json!({"link": [{"other": {"reference": "Patient/x"}, "type": "replaced-by"}]}),
        ),
        same(json!({"multipleBirthInteger": rng.random_range(1..3)})),
    ]
}

fn questionnaire_parts(rng: &mut StdRng) -> Vec<Part> {
    vec![
        same(json!({"status": "active", "url": "http://example.org/q", "title": "Q", "code": [{"code": "c"}]})),
        part(
            json!({"item": [
                {"linkId": "1", "type": "boolean", "text": "A?"},
                {"linkId": "2", "type": "choice", "enableWhen": [{"question": "1", "answerBoolean": true}], "options": {"reference": "http://example.org/vs"}, "initialCoding": {"code": "x"}},
                {"linkId": "3", "type": "choice", "enableWhen": [{"question": "1", "hasAnswer": true}, {"question": "2", "answerCoding": {"code": "y"}}], "option": [{"valueInteger": rng.random_range(0..9)}, {"valueString": "z"}]}
            ]}),
            json!({"item": [
                {"linkId": "1", "type": "boolean", "text": "A?"},
                {"linkId": "2", "type": "choice", "enableWhen": [{"question": "1", "operator": "=", "answerBoolean": true}], "answerValueSet": "http://example.org/vs", "initial": [{"valueCoding": {"code": "x"}}]},
                {"linkId": "3", "type": "choice", "enableWhen": [{"question": "1", "operator": "exists", "answerBoolean": true}, {"question": "2", "operator": "=", "answerCoding": {"code": "y"}}], "enableBehavior": "any", "answerOption": [{"valueInteger": 0}, {"valueString": "z"}]}
            ]}),
        ),
    ]
    .into_iter()
    .map(|mut p| {
        // The same random integer in both forms.
        if let Some(v) = p.stu3.pointer("/item/2/option/0/valueInteger").cloned() {
            p.r4["item"][2]["answerOption"][0]["valueInteger"] = v;
        }
        p
    })
    .collect()
}

fn response_parts(rng: &mut StdRng) -> Vec<Part> {
    vec![
        same(
            json!({"status": "completed", "subject": {"reference": "Patient/p1"}, "authored": datetime(rng), "source": {"reference": "Patient/p1"}}),
        ),
        part(
            json!({"questionnaire": {"reference": "Questionnaire/q"}}),
            json!({"questionnaire": "Questionnaire/q"}),
        ),
        part(
            json!({"context": {"reference": "Encounter/e"}, "parent": [{"reference": "Observation/o"}]}),
            json!({"encounter": {"reference": "Encounter/e"}, "partOf": [{"reference": "Observation/o"}]}),
        ),
        same(
            json!({"item": [{"linkId": "1", "text": "A?", "answer": [{"valueBoolean": true}, {"valueQuantity": quantity(rng, "kg"), "item": [{"linkId": "1.1", "answer": [{"valueString": "x"}]}]}]}]}),
        ),
    ]
}

fn careplan_parts(rng: &mut StdRng) -> Vec<Part> {
    let status = ([
        ("draft", "draft"),
        ("active", "active"),
        ("suspended", "on-hold"),
        ("cancelled", "revoked"),
        ("completed", "completed"),
    ])[rng.random_range(0..5)];
    vec![
        part(
            json!({"status": status.0, "intent": "plan"}),
            json!({"status": status.1, "intent": "plan"}),
        ),
        same(
            json!({"category": [{"coding": [{"system": phr_catalog::urls::CS_CAREPLAN_CATEGORY, "code": "1"}]}], "title": "T", "description": "D", "subject": {"reference": "Patient/p1"}, "period": {"start": datetime(rng)}}),
        ),
        part(
            json!({"author": [{"reference": "Patient/p1"}]}),
            json!({"author": {"reference": "Patient/p1"}}),
        ),
        part(
            json!({"context": {"reference": "Encounter/e"}, "definition": [{"reference": "http://example.org/PlanDefinition/p"}]}),
            json!({"encounter": {"reference": "Encounter/e"}, "instantiatesCanonical": ["http://example.org/PlanDefinition/p"]}),
        ),
        part(
            json!({"activity": [{"progress": [{"text": "p"}], "detail": {"code": {"text": "walk"}, "status": "in-progress", "statusReason": "r", "prohibited": false, "scheduledString": "daily", "description": "d"}}]}),
            json!({"activity": [{"progress": [{"text": "p"}], "detail": {"code": {"text": "walk"}, "status": "in-progress", "statusReason": {"text": "r"}, "doNotPerform": false, "scheduledString": "daily", "description": "d"}}]}),
        ),
        same(json!({"note": [{"text": "n"}], "goal": [{"reference": "Goal/g"}]})),
    ]
}

/// A generated pair: the STU3 and R4 forms of one resource.
fn generate(
    rng: &mut StdRng,
    rtype: &str,
    stu3_profile: &str,
    r4_profile: &str,
    parts: Vec<Part>,
) -> (Value, Value) {
    let mut stu3 = Map::new();
    let mut r4 = Map::new();
    stu3.insert("resourceType".into(), json!(rtype));
    r4.insert("resourceType".into(), json!(rtype));
    stu3.insert(
        "meta".into(),
        json!({"versionId": "1", "lastUpdated": "2023-01-01T00:00:00Z", "profile": [stu3_profile]}),
    );
    r4.insert(
        "meta".into(),
        json!({"versionId": "1", "lastUpdated": "2023-01-01T00:00:00Z", "profile": [r4_profile]}),
    );
    let mut all = common(rng);
    all.extend(parts);
    for p in all {
        // An Observation always has its code: the R4 profile of a vital sign depends on it.
        if p.stu3.get("code").is_some() || rng.random_bool(0.6) {
            merge(&mut stu3, &p.stu3);
            merge(&mut r4, &p.r4);
        }
    }
    (Value::Object(stu3), Value::Object(r4))
}

fn check(stu3: &Value, r4: &Value) {
    assert_eq!(
        &to_r4(stu3).unwrap_or_else(|e| panic!("{e}\n{stu3:#}")),
        r4,
        "STU3 → R4 of {stu3:#}"
    );
    assert_eq!(
        &to_stu3(r4).unwrap_or_else(|e| panic!("{e}\n{r4:#}")),
        stu3,
        "R4 → STU3 of {r4:#}"
    );
    assert_eq!(&to_stu3(&to_r4(stu3).unwrap()).unwrap(), stu3);
    assert_eq!(&to_r4(&to_stu3(r4).unwrap()).unwrap(), r4);
}

#[test]
fn every_observation_content_with_a_stu3_twin_round_trips() {
    let mut checked = 0;
    for content in Catalog::get()
        .contents()
        .iter()
        .filter(|c| c.resource_type == "Observation")
    {
        let Some(twin) = twins::twin_of_r4(content.profile) else {
            continue;
        };
        let mut rng = StdRng::seed_from_u64(content.profile.len() as u64 * 7919);
        for _ in 0..CASES_PER_CONTENT {
            let parts = observation_parts(&mut rng, content);
            let (stu3, r4) = generate(&mut rng, "Observation", twin.url, content.profile, parts);
            check(&stu3, &r4);
            checked += 1;
        }
    }
    assert!(checked >= 5 * CASES_PER_CONTENT, "{checked}");
}

#[test]
fn the_other_contents_round_trip() {
    for twin in TWINS.iter().filter(|t| t.resource_type != "Observation") {
        let r4_profile = twin.r4[0];
        let mut rng = StdRng::seed_from_u64(twin.url.len() as u64);
        for _ in 0..CASES_PER_CONTENT {
            let parts = match twin.resource_type {
                "MedicationAdministration" => medication_parts(&mut rng),
                "Patient" => patient_parts(&mut rng),
                "Questionnaire" => questionnaire_parts(&mut rng),
                "QuestionnaireResponse" => response_parts(&mut rng),
                "CarePlan" => careplan_parts(&mut rng),
                other => panic!("no generator for {other}"),
            };
            let (stu3, r4) = generate(&mut rng, twin.resource_type, twin.url, r4_profile, parts);
            check(&stu3, &r4);
        }
    }
}

#[test]
fn contents_kanta_served_in_r4_only_are_refused_at_their_profile() {
    let mut refused = 0;
    for content in Catalog::get().contents() {
        if twins::twin_of_r4(content.profile).is_some() {
            continue;
        }
        let mut rng = StdRng::seed_from_u64(1);
        let parts = observation_parts(&mut rng, content);
        let (_, r4) = generate(&mut rng, content.resource_type, "x", content.profile, parts);
        let e = to_stu3(&r4).unwrap_err();
        assert_eq!(e.reason, Reason::NotExpressible);
        assert_eq!(e.path, format!("{}.meta.profile[0]", content.resource_type));
        refused += 1;
    }
    // steps, MVPA time, MET, calorie intake
    assert!(refused >= 4, "{refused}");
}

#[test]
fn elements_only_r4_holds_are_refused_wherever_they_appear() {
    let mut rng = StdRng::seed_from_u64(42);
    let content = Catalog::get()
        .content(phr_catalog::Kind::BloodGlucose)
        .unwrap();
    for r4_only in [
        json!({"partOf": [{"reference": "Procedure/p"}]}),
        json!({"focus": [{"reference": "Patient/p"}]}),
        json!({"valueInteger": 1}),
        json!({"effectiveTiming": {"event": ["2021-01-01"]}}),
        json!({"note": [{"text": "a"}, {"text": "b"}]}),
    ] {
        let parts = observation_parts(&mut rng, content);
        let (_, mut r4) = generate(
            &mut rng,
            "Observation",
            twins::BLOOD_GLUCOSE,
            content.profile,
            parts,
        );
        let name = r4_only.as_object().unwrap().keys().next().unwrap().clone();
        // One value[x] at a time.
        if name.starts_with("value") {
            let object = r4.as_object_mut().unwrap();
            object.retain(|k, _| !k.starts_with("value"));
        }
        if name.starts_with("effective") {
            r4.as_object_mut()
                .unwrap()
                .retain(|k, _| !k.starts_with("effective"));
        }
        merge(r4.as_object_mut().unwrap(), &r4_only);
        let e = to_stu3(&r4).unwrap_err();
        assert_eq!(e.path, format!("Observation.{name}"), "{e}");
        assert_eq!(e.reason, Reason::NotExpressible);
    }
}
