//! Valid resources and Bundles the structure-aware targets start from: what the Kanta
//! profiles accept, written here (the official examples are read at run time from beside the
//! repository when present, never copied into it).

use serde_json::{Value, json};

use crate::PATIENT;

fn narrative(text: &str) -> Value {
    json!({"status": "generated", "div": format!("<div xmlns=\"http://www.w3.org/1999/xhtml\">{text}</div>")})
}

fn vital_signs() -> Value {
    json!([{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}])
}

pub fn body_weight() -> Value {
    json!({
        "resourceType": "Observation",
        "meta": {"profile": ["http://phr.kanta.fi/StructureDefinition/fiphr-sd-bodyweight"]},
        "language": "fi",
        "text": narrative("Paino 72.5 kg"),
        "identifier": [{"system": "urn:ietf:rfc:3986", "value": "urn:uuid:0d3b8c1e-5b7a-4f7e-9a51-6a1f0e2c3d41"}],
        "status": "final",
        "category": vital_signs(),
        "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7", "display": "Body weight"}]},
        "subject": {"reference": format!("Patient/{PATIENT}")},
        "effectiveDateTime": "2024-05-01T08:00:00+03:00",
        "issued": "2024-05-01T08:00:00+03:00",
        "performer": [{"reference": format!("Patient/{PATIENT}")}],
        "valueQuantity": {"value": 72.5, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"}
    })
}

pub fn blood_pressure() -> Value {
    json!({
        "resourceType": "Observation",
        "meta": {"profile": ["http://phr.kanta.fi/StructureDefinition/fiphr-sd-bloodpressure"]},
        "language": "fi",
        "text": narrative("Verenpaine 120/80 mmHg"),
        "identifier": [{"system": "urn:ietf:rfc:3986", "value": "urn:uuid:3c1f2a9e-8d4b-4e6f-b1a2-9c8d7e6f5a43"}],
        "status": "final",
        "category": vital_signs(),
        "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9", "display": "Blood pressure panel with all children optional"}]},
        "subject": {"reference": format!("Patient/{PATIENT}")},
        "effectiveDateTime": "2024-05-01T08:00:00+03:00",
        "issued": "2024-05-01T08:00:00+03:00",
        "performer": [{"reference": format!("Patient/{PATIENT}")}],
        "component": [
            {"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6", "display": "Systolic blood pressure"}]},
             "valueQuantity": {"value": 120, "unit": "mm[Hg]", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}},
            {"code": {"coding": [{"system": "http://loinc.org", "code": "8462-4", "display": "Diastolic blood pressure"}]},
             "valueQuantity": {"value": 80, "unit": "mm[Hg]", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}}
        ]
    })
}

pub fn patient() -> Value {
    json!({
        "resourceType": "Patient",
        "id": PATIENT,
        "meta": {"profile": ["http://phr.kanta.fi/StructureDefinition/fiphr-sd-patient"]},
        "identifier": [{"system": "urn:ietf:rfc:3986", "value": format!("urn:uuid:{PATIENT}")}],
        "active": true
    })
}

/// A base-R4 resource with a bit of everything: contained, extensions, a choice, a Period.
pub fn questionnaire_response() -> Value {
    json!({
        "resourceType": "QuestionnaireResponse",
        "contained": [{"resourceType": "Practitioner", "id": "c1", "name": [{"family": "Mäkinen", "given": ["Ülla"]}]}],
        "extension": [{"url": "http://example.org/ext", "valueString": "x"}],
        "status": "completed",
        "subject": {"reference": format!("Patient/{PATIENT}")},
        "author": {"reference": "#c1"},
        "authored": "2024-05-01T08:00:00+03:00",
        "item": [{"linkId": "1", "text": "Mood", "answer": [{"valueInteger": 4}, {"valueCoding": {"system": "http://loinc.org", "code": "LA6568-5"}}],
                  "item": [{"linkId": "1.1", "answer": [{"valueDate": "2024-05"}]}]}]
    })
}

pub fn resources() -> Vec<Value> {
    vec![
        body_weight(),
        blood_pressure(),
        patient(),
        questionnaire_response(),
    ]
}

/// A batch or transaction with a create, a conditional create, an update and a read, one
/// resource referring to another by `urn:uuid`.
pub fn bundle(kind: &str) -> Value {
    let mut weight = body_weight();
    weight["subject"] = json!({"reference": "urn:uuid:5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9"});
    json!({
        "resourceType": "Bundle",
        "type": kind,
        "entry": [
            {"fullUrl": "urn:uuid:5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9", "resource": patient(),
             "request": {"method": "PUT", "url": format!("Patient/{PATIENT}")}},
            {"fullUrl": "urn:uuid:1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d", "resource": weight,
             "request": {"method": "POST", "url": "Observation", "ifNoneExist": "identifier=urn:ietf:rfc:3986|urn:uuid:0d3b8c1e-5b7a-4f7e-9a51-6a1f0e2c3d41"}},
            {"resource": blood_pressure(), "request": {"method": "POST", "url": "Observation"}},
            {"request": {"method": "GET", "url": format!("Observation?patient={PATIENT}&code=29463-7")}},
            {"request": {"method": "DELETE", "url": "Observation/does-not-exist"}}
        ]
    })
}
