//! One test per validation rule: a valid resource, then a copy that breaks only that rule,
//! with the exact FHIRPath expression the issue must carry.

use phr_fhir::{Issue, Severity, validate};
use serde_json::{Value, json};

fn weight() -> Value {
    json!({
        "resourceType": "Observation",
        "id": "w1",
        "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">Paino 80.5 kg</div>"},
        "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7", "display": "Body weight"}]},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": "2024-05-01T10:00:00+03:00",
        "valueQuantity": {"value": 80.5, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"}
    })
}

/// (expression, message) of every issue at `severity`.
fn at(issues: &[Issue], severity: Severity) -> Vec<(String, String)> {
    issues
        .iter()
        .filter(|i| i.severity == severity)
        .map(|i| (i.expression.clone().unwrap_or_default(), i.message.clone()))
        .collect()
}

/// Asserts exactly one error, at `expression`, whose message contains `text`.
fn one_error(resource: &Value, expression: &str, text: &str) {
    let issues = validate(resource, &[]);
    let errors = at(&issues, Severity::Error);
    assert_eq!(
        errors.len(),
        1,
        "expected one error at {expression}, got {issues:#?}"
    );
    assert_eq!(errors[0].0, expression, "{issues:#?}");
    assert!(
        errors[0].1.contains(text),
        "message {:?} lacks {text:?}",
        errors[0].1
    );
    assert!(
        errors[0].1.starts_with(&format!("{expression}: ")),
        "{}",
        errors[0].1
    );
}

fn with(mut r: Value, f: impl FnOnce(&mut Value)) -> Value {
    f(&mut r);
    r
}

fn remove(r: &mut Value, key: &str) {
    r.as_object_mut().unwrap().remove(key);
}

#[test]
fn a_valid_observation_has_no_issues() {
    assert_eq!(validate(&weight(), &[]), vec![]);
}

#[test]
fn resource_type_must_be_present_and_known() {
    let issues = validate(&with(weight(), |r| remove(r, "resourceType")), &[]);
    assert_eq!(issues.len(), 1);
    assert!(issues[0].message.contains("resourceType is missing"));
    let issues = validate(&json!({"resourceType": "Observatio"}), &[]);
    assert!(
        issues[0]
            .message
            .contains("unknown resourceType 'Observatio'")
    );
    let issues = validate(&json!([1]), &[]);
    assert!(issues[0].message.contains("must be a JSON object"));
}

#[test]
fn unknown_elements_are_errors() {
    one_error(
        &with(weight(), |r| r["foo"] = json!(1)),
        "Observation.foo",
        "unknown element 'foo'",
    );
    one_error(
        &with(weight(), |r| r["code"]["coding"][0]["sytem"] = json!("x")),
        "Observation.code.coding[0].sytem",
        "unknown element",
    );
}

#[test]
fn choice_types_allow_listed_suffixes_only() {
    let r = with(weight(), |r| {
        remove(r, "valueQuantity");
        r["valueFoo"] = json!("x");
    });
    one_error(
        &r,
        "Observation.valueFoo",
        "not an allowed type for value[x]",
    );
    let two = with(weight(), |r| r["valueString"] = json!("heavy"));
    one_error(
        &two,
        "Observation.valueString",
        "only one of 'valueQuantity' and 'valueString'",
    );
}

#[test]
fn minimum_cardinality() {
    one_error(
        &with(weight(), |r| remove(r, "status")),
        "Observation.status",
        "minimum required = 1",
    );
}

#[test]
fn maximum_cardinality_and_array_shape() {
    one_error(
        &with(weight(), |r| r["code"] = json!([r["code"].clone()])),
        "Observation.code",
        "must not be an array",
    );
    one_error(
        &with(weight(), |r| r["category"] = r["category"][0].clone()),
        "Observation.category",
        "must be an array",
    );
}

#[test]
fn primitive_json_types() {
    one_error(
        &with(weight(), |r| r["status"] = json!(1)),
        "Observation.status",
        "must be a JSON string",
    );
    one_error(
        &with(weight(), |r| r["valueQuantity"]["value"] = json!("80.5")),
        "Observation.valueQuantity.value",
        "a decimal must be a JSON number",
    );
}

#[test]
fn dates_are_real_and_times_carry_a_zone() {
    one_error(
        &with(weight(), |r| r["effectiveDateTime"] = json!("2023-02-29")),
        "Observation.effectiveDateTime",
        "does not exist",
    );
    one_error(
        &with(weight(), |r| {
            r["effectiveDateTime"] = json!("2024-05-01T10:00:00")
        }),
        "Observation.effectiveDateTime",
        "timezone",
    );
    one_error(
        &with(weight(), |r| r["issued"] = json!("2024-05-01")),
        "Observation.issued",
        "an instant needs",
    );
}

#[test]
fn ids_have_their_charset_and_length() {
    one_error(
        &with(weight(), |r| r["id"] = json!("w_1")),
        "Observation.id",
        "not a valid id",
    );
}

#[test]
fn integers_have_ranges() {
    let r = with(weight(), |r| {
        remove(r, "valueQuantity");
        r["valueInteger"] = serde_json::from_str("2147483648").unwrap();
    });
    one_error(&r, "Observation.valueInteger", "out of range");
}

#[test]
fn empty_strings_objects_arrays_and_nulls_are_errors() {
    one_error(
        &with(weight(), |r| r["status"] = json!("")),
        "Observation.status",
        "must not be empty",
    );
    one_error(
        &with(weight(), |r| r["subject"] = json!({})),
        "Observation.subject",
        "empty object",
    );
    one_error(
        &with(weight(), |r| r["category"] = json!([])),
        "Observation.category",
        "arrays must not be empty",
    );
    one_error(
        &with(weight(), |r| r["issued"] = Value::Null),
        "Observation.issued",
        "null is not allowed",
    );
}

#[test]
fn primitive_extensions_and_null_alignment() {
    let ext = json!({"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason", "valueCode": "unknown"}]});
    let patient = json!({"resourceType": "Patient", "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>"},
        "name": [{"given": ["Anna", null], "_given": [null, ext.clone()]}]});
    assert_eq!(validate(&patient, &[]), vec![]);
    let both_null = with(patient.clone(), |r| {
        r["name"][0]["_given"] = json!([null, null])
    });
    one_error(
        &both_null,
        "Observation.name[0].given[1]"
            .replace("Observation", "Patient")
            .as_str(),
        "null in both",
    );
    let misaligned = with(patient, |r| r["name"][0]["_given"] = json!([null]));
    let issues = validate(&misaligned, &[]);
    assert!(
        at(&issues, Severity::Error)
            .iter()
            .any(|(e, m)| e == "Patient.name[0].given" && m.contains("must align"))
    );
    one_error(
        &with(weight(), |r| r["_code"] = json!({"id": "x"})),
        "Observation._code",
        "only allowed for primitive elements",
    );
    // The extension part of a primitive is addressed like its value in FHIRPath.
    one_error(
        &with(weight(), |r| r["_status"] = json!({"foo": 1})),
        "Observation.status.foo",
        "unknown element",
    );
}

#[test]
fn required_bindings_are_errors() {
    one_error(
        &with(weight(), |r| r["status"] = json!("done")),
        "Observation.status",
        "'done' is not in the value set http://hl7.org/fhir/ValueSet/observation-status (required binding)",
    );
}

#[test]
fn extensible_bindings_are_warnings() {
    let r = with(weight(), |r| {
        remove(r, "valueQuantity");
        r["dataAbsentReason"] =
            json!({"coding": [{"system": "http://example.org/reasons", "code": "broken"}]});
    });
    let issues = validate(&r, &[]);
    assert!(at(&issues, Severity::Error).is_empty(), "{issues:#?}");
    let warnings = at(&issues, Severity::Warning);
    assert_eq!(warnings.len(), 1);
    assert_eq!(warnings[0].0, "Observation.dataAbsentReason");
    assert!(warnings[0].1.contains("extensible binding"));
}

#[test]
fn unexpandable_value_sets_warn_instead_of_failing() {
    // Quantity units in vital signs are bound to UCUM, which we check by grammar only; LOINC
    // in a required binding cannot be listed at all: use the core bodyweight profile's
    // required UCUM binding with a unit that is valid UCUM syntax.
    let issues = validate(
        &weight(),
        &["http://hl7.org/fhir/StructureDefinition/bodyweight"],
    );
    assert!(at(&issues, Severity::Error).is_empty(), "{issues:#?}");
}

#[test]
fn literal_references_have_a_syntax() {
    one_error(
        &with(weight(), |r| r["subject"]["reference"] = json!("Patient")),
        "Observation.subject.reference",
        "not a valid literal reference",
    );
    one_error(
        &with(weight(), |r| {
            r["subject"]["reference"] = json!("Pateint/p1")
        }),
        "Observation.subject.reference",
        "unknown resource type 'Pateint'",
    );
    for ok in [
        "Patient/p1/_history/2",
        "https://phr.example.fi/fhir/r4/Patient/p1",
        "urn:uuid:0f2e6c2a-8b3e-4a7a-9d5c-1c2b3a4d5e6f",
    ] {
        let r = with(weight(), |r| r["subject"]["reference"] = json!(ok));
        assert_eq!(validate(&r, &[]), vec![], "{ok}");
    }
}

#[test]
fn reference_targets_follow_target_profiles() {
    one_error(
        &with(weight(), |r| {
            r["subject"]["reference"] = json!("Medication/m1")
        }),
        "Observation.subject.reference",
        "a reference to a Medication is not allowed here (allowed: Patient, Group, Device, Location)",
    );
}

#[test]
fn contained_resources_are_validated_and_referenced() {
    let with_contained = with(weight(), |r| {
        r["contained"] = json!([{"resourceType": "Patient", "id": "p", "gender": "x"}]);
        r["subject"]["reference"] = json!("#p");
    });
    one_error(
        &with_contained,
        "Observation.contained[0].gender",
        "required binding",
    );
    let unreferenced = with(weight(), |r| {
        r["contained"] = json!([{"resourceType": "Patient", "id": "p"}]);
    });
    one_error(&unreferenced, "Observation.contained[0]", "dom-3");
    let dangling = with(weight(), |r| r["subject"]["reference"] = json!("#nobody"));
    one_error(
        &dangling,
        "Observation.subject.reference",
        "refers to no contained resource",
    );
    let nested = with(weight(), |r| {
        r["contained"] = json!([{"resourceType": "Patient", "id": "p",
            "contained": [{"resourceType": "Patient", "id": "q"}], "link": [{"other": {"reference": "#q"}, "type": "seealso"}]}]);
        r["subject"]["reference"] = json!("#p");
    });
    let issues = validate(&nested, &[]);
    assert!(
        at(&issues, Severity::Error)
            .iter()
            .any(|(e, m)| e == "Observation.contained[0]" && m.contains("dom-2")),
        "{issues:#?}"
    );
    let versioned = with(weight(), |r| {
        r["contained"] =
            json!([{"resourceType": "Patient", "id": "p", "meta": {"versionId": "1"}}]);
        r["subject"]["reference"] = json!("#p");
    });
    one_error(&versioned, "Observation.contained[0]", "dom-4");
}

#[test]
fn bundle_entries_are_validated_by_their_own_type() {
    let bundle = json!({"resourceType": "Bundle", "type": "collection",
        "entry": [{"fullUrl": "urn:uuid:0f2e6c2a-8b3e-4a7a-9d5c-1c2b3a4d5e6f", "resource": weight()},
                  {"fullUrl": "urn:uuid:1f2e6c2a-8b3e-4a7a-9d5c-1c2b3a4d5e6f",
                   "resource": with(weight(), |r| r["status"] = json!("done"))}]});
    one_error(
        &bundle,
        "Bundle.entry[1].resource.status",
        "required binding",
    );
}

#[test]
fn extensions_need_a_url_and_value_xor_children() {
    one_error(
        &with(weight(), |r| r["extension"] = json!([{"valueString": "x"}])),
        "Observation.extension[0].url",
        "minimum required = 1",
    );
    let both = json!([{"url": "http://example.org/x", "valueString": "x",
        "extension": [{"url": "y", "valueString": "z"}]}]);
    let issues = validate(&with(weight(), |r| r["extension"] = both), &[]);
    let errors = at(&issues, Severity::Error);
    assert_eq!(errors.len(), 1, "{issues:#?}");
    assert_eq!(errors[0].0, "Observation.extension[0]");
    assert!(errors[0].1.contains("ext-1"));
}

#[test]
fn known_extensions_are_validated_against_their_definition() {
    let ext = json!([{"url": "http://hl7.org/fhir/StructureDefinition/patient-birthTime", "valueString": "noon"}]);
    let patient = json!({"resourceType": "Patient", "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>"},
        "birthDate": "2000-01-01", "_birthDate": {"extension": ext}});
    let issues = validate(&patient, &[]);
    let errors = at(&issues, Severity::Error);
    assert_eq!(
        errors.iter().map(|(e, _)| e.as_str()).collect::<Vec<_>>(),
        [
            "Patient.birthDate.extension[0].valueString",
            "Patient.birthDate.extension[0].value"
        ],
        "{issues:#?}"
    );
    assert!(
        errors[0]
            .1
            .contains("'valueString' is not an allowed type for value[x] (allowed: valueDateTime)")
    );
    assert!(errors[1].1.contains("minimum required = 1"));
}

#[test]
fn unknown_extensions_warn_and_unknown_modifier_extensions_fail() {
    let ext = json!([{"url": "http://example.org/unknown", "valueString": "x"}]);
    let issues = validate(&with(weight(), |r| r["extension"] = ext.clone()), &[]);
    assert!(at(&issues, Severity::Error).is_empty());
    assert_eq!(
        at(&issues, Severity::Warning)[0].0,
        "Observation.extension[0]"
    );
    one_error(
        &with(weight(), |r| r["modifierExtension"] = ext),
        "Observation.modifierExtension[0]",
        "unknown modifier extension",
    );
}

#[test]
fn invariants_by_simple_logic() {
    // obs-6: dataAbsentReason only when there is no value.
    let r = with(weight(), |r| {
        r["dataAbsentReason"] = json!({"coding": [{"system": "http://terminology.hl7.org/CodeSystem/data-absent-reason", "code": "unknown"}]});
    });
    one_error(&r, "Observation", "constraint obs-6 failed");
    // qty-3 at an indexed component.
    let r = with(weight(), |r| {
        r["component"] = json!([
            {"code": {"text": "a"}, "valueQuantity": {"value": 1, "system": "http://unitsofmeasure.org", "code": "kg"}},
            {"code": {"text": "b"}, "valueQuantity": {"value": 2, "code": "kg"}}
        ]);
    });
    one_error(
        &r,
        "Observation.component[1].valueQuantity",
        "constraint qty-3 failed",
    );
}

#[test]
fn invariants_through_fhirpath() {
    // obs-7: a component must not repeat the observation's code when there is a value.
    let r = with(weight(), |r| {
        r["component"] = json!([{"code": r["code"].clone(), "valueQuantity": {"value": 1}}]);
    });
    one_error(&r, "Observation", "constraint obs-7 failed");
}

#[test]
fn periods_and_ranges_are_ordered() {
    let r = with(weight(), |r| {
        remove(r, "effectiveDateTime");
        r["effectivePeriod"] = json!({"start": "2024-05-02", "end": "2024-05-01"});
    });
    one_error(&r, "Observation.effectivePeriod", "per-1");
    let r = with(weight(), |r| {
        r["referenceRange"] = json!([{"text": "adults",
            "age": {"low": {"value": 90, "unit": "a"}, "high": {"value": 60, "unit": "a"}}}]);
    });
    one_error(&r, "Observation.referenceRange[0].age", "rng-2");
}

#[test]
fn narrative_is_safe_xhtml_with_content() {
    one_error(
        &with(weight(), |r| r["text"]["div"] = json!("<div>x</div>")),
        "Observation.text.div",
        "xmlns",
    );
    one_error(
        &with(weight(), |r| {
            r["text"]["div"] = json!("<div xmlns=\"http://www.w3.org/1999/xhtml\"> </div>")
        }),
        "Observation.text.div",
        "txt-2",
    );
    let no_text = validate(&with(weight(), |r| remove(r, "text")), &[]);
    assert_eq!(at(&no_text, Severity::Warning).len(), 1);
    assert!(at(&no_text, Severity::Warning)[0].1.contains("dom-6"));
}

#[test]
fn unknown_profiles_warn() {
    let issues = validate(&weight(), &["http://example.org/StructureDefinition/nope"]);
    assert_eq!(issues.len(), 1);
    assert_eq!(issues[0].severity, Severity::Warning);
    assert!(issues[0].message.contains("not known here"));
}

#[test]
fn profile_of_another_type_is_an_error() {
    let issues = validate(
        &weight(),
        &["http://hl7.org/fhir/StructureDefinition/Patient"],
    );
    assert!(
        at(&issues, Severity::Error)[0]
            .1
            .contains("is for Patient, not Observation")
    );
}
