//! Slicing and profile rules with small hand-written profiles: each discriminator type,
//! the slicing rules, order and per-slice cardinality, each broken alone.

use std::sync::{Arc, OnceLock};

use phr_fhir::{Definitions, Validator};
use serde_json::{Value, json};

const LOINC: &str = "http://loinc.org";

fn profile(url: &str, elements: Value) -> Value {
    let mut all = vec![json!({"id": "Observation", "path": "Observation", "min": 0, "max": "*"})];
    all.extend(elements.as_array().unwrap().iter().cloned());
    json!({"resourceType": "StructureDefinition", "url": url, "name": "T", "kind": "resource",
        "type": "Observation", "derivation": "constraint",
        "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Observation",
        "snapshot": {"element": all}})
}

fn path_of(id: &str) -> String {
    id.split('.')
        .map(|s| s.split(':').next().unwrap())
        .collect::<Vec<_>>()
        .join(".")
}

fn many(id: &str, extra: Value) -> Value {
    let path = path_of(id);
    let mut e = json!({"id": id, "path": path, "min": 0, "max": "*",
        "base": {"path": path, "min": 0, "max": "*"}});
    e.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    e
}

fn one(id: &str, extra: Value) -> Value {
    let path = path_of(id);
    let mut e = json!({"id": id, "path": path, "min": 0, "max": "1", "base": {"path": path, "min": 0, "max": "1"}});
    e.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    e
}

fn slice(id: &str, min: u32, max: &str, extra: Value) -> Value {
    let (base, name) = id.rsplit_once(':').unwrap();
    let mut e = json!({"id": id, "path": base, "sliceName": name, "min": min, "max": max,
        "base": {"path": base, "min": 0, "max": "*"}});
    e.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    e
}

fn validator() -> &'static Validator {
    static V: OnceLock<Validator> = OnceLock::new();
    V.get_or_init(|| {
        let mut defs = (*Definitions::r4()).clone();
        let bp_code = |code: &str| json!({"coding": [{"system": LOINC, "code": code}]});
        let profiles = [
            // pattern discriminator, closed, ordered, and slice content (a fixed unit)
            profile("http://t/bp", json!([
                many("Observation.component", json!({"type": [{"code": "BackboneElement"}],
                    "slicing": {"discriminator": [{"type": "pattern", "path": "code"}], "rules": "closed", "ordered": true}})),
                slice("Observation.component:sys", 1, "1", json!({"type": [{"code": "BackboneElement"}]})),
                one("Observation.component:sys.code", json!({"min": 1, "type": [{"code": "CodeableConcept"}], "patternCodeableConcept": bp_code("8480-6")})),
                one("Observation.component:sys.value[x]", json!({"type": [{"code": "Quantity"}]})),
                one("Observation.component:sys.value[x].code", json!({"type": [{"code": "code"}], "fixedCode": "mm[Hg]"})),
                slice("Observation.component:dia", 1, "1", json!({"type": [{"code": "BackboneElement"}]})),
                one("Observation.component:dia.code", json!({"min": 1, "type": [{"code": "CodeableConcept"}], "patternCodeableConcept": bp_code("8462-4")})),
            ])),
            // value discriminator through a nested path, open at end
            profile("http://t/category", json!([
                many("Observation.category", json!({"type": [{"code": "CodeableConcept"}],
                    "slicing": {"discriminator": [{"type": "value", "path": "coding.code"}], "rules": "openAtEnd"}})),
                slice("Observation.category:vs", 1, "1", json!({"type": [{"code": "CodeableConcept"}]})),
                many("Observation.category:vs.coding", json!({"type": [{"code": "Coding"}]})),
                one("Observation.category:vs.coding.code", json!({"type": [{"code": "code"}], "fixedCode": "vital-signs"})),
            ])),
            // exists discriminator
            profile("http://t/exists", json!([
                many("Observation.component", json!({"type": [{"code": "BackboneElement"}],
                    "slicing": {"discriminator": [{"type": "exists", "path": "dataAbsentReason"}], "rules": "open"}})),
                slice("Observation.component:absent", 0, "1", json!({"type": [{"code": "BackboneElement"}]})),
                one("Observation.component:absent.dataAbsentReason", json!({"min": 1, "type": [{"code": "CodeableConcept"}]})),
                slice("Observation.component:measured", 1, "*", json!({"type": [{"code": "BackboneElement"}]})),
                one("Observation.component:measured.dataAbsentReason", json!({"max": "0", "type": [{"code": "CodeableConcept"}]})),
            ])),
            // type slicing of a choice
            profile("http://t/type", json!([
                one("Observation.value[x]", json!({"type": [{"code": "Quantity"}, {"code": "string"}],
                    "slicing": {"discriminator": [{"type": "type", "path": "$this"}], "rules": "open"}})),
                one("Observation.value[x]:valueQuantity", json!({"sliceName": "valueQuantity", "min": 1, "type": [{"code": "Quantity"}]})),
            ])),
            // profile discriminator on contained resources, closed
            profile("http://t/profile", json!([
                many("Observation.contained", json!({"type": [{"code": "Resource"}],
                    "slicing": {"discriminator": [{"type": "profile", "path": "$this"}], "rules": "closed"}})),
                slice("Observation.contained:patient", 0, "*",
                    json!({"type": [{"code": "Patient", "profile": ["http://hl7.org/fhir/StructureDefinition/Patient"]}]})),
            ])),
            // discriminator paths with functions: extension('url'), ofType(), resolve()
            profile("http://t/side", json!([
                many("Observation.component", json!({"type": [{"code": "BackboneElement"}],
                    "slicing": {"discriminator": [{"type": "value", "path": "extension('http://t/ext/side').value"}], "rules": "closed"}})),
                slice("Observation.component:left", 0, "1", json!({"type": [{"code": "BackboneElement"}]})),
                many("Observation.component:left.extension", json!({"type": [{"code": "Extension"}],
                    "slicing": {"discriminator": [{"type": "value", "path": "url"}], "rules": "open"}})),
                slice("Observation.component:left.extension:side", 1, "1", json!({"type": [{"code": "Extension", "profile": ["http://t/ext/side"]}]})),
                one("Observation.component:left.extension:side.value[x]", json!({"type": [{"code": "code"}], "fixedCode": "left"})),
                slice("Observation.component:right", 0, "1", json!({"type": [{"code": "BackboneElement"}]})),
                many("Observation.component:right.extension", json!({"type": [{"code": "Extension"}],
                    "slicing": {"discriminator": [{"type": "value", "path": "url"}], "rules": "open"}})),
                slice("Observation.component:right.extension:side", 1, "1", json!({"type": [{"code": "Extension", "profile": ["http://t/ext/side"]}]})),
                one("Observation.component:right.extension:side.value[x]", json!({"type": [{"code": "code"}], "fixedCode": "right"})),
            ])),
            profile("http://t/of-type", json!([
                many("Observation.component", json!({"type": [{"code": "BackboneElement"}],
                    "slicing": {"discriminator": [{"type": "value", "path": "value.ofType(Quantity).code"}], "rules": "closed"}})),
                slice("Observation.component:kg", 0, "*", json!({"type": [{"code": "BackboneElement"}]})),
                one("Observation.component:kg.value[x]", json!({"type": [{"code": "Quantity"}]})),
                one("Observation.component:kg.value[x].code", json!({"type": [{"code": "code"}], "fixedCode": "kg"})),
            ])),
            profile("http://t/resolve", json!([
                many("Observation.performer", json!({"type": [{"code": "Reference"}],
                    "slicing": {"discriminator": [{"type": "type", "path": "resolve()"}], "rules": "closed"}})),
                slice("Observation.performer:practitioner", 0, "*", json!({"type": [{"code": "Reference",
                    "targetProfile": ["http://hl7.org/fhir/StructureDefinition/Practitioner"]}]})),
            ])),
        ];
        let report = defs.add_resources(profiles.iter());
        assert_eq!(report.structure_definitions.len(), 8, "{report:?}");
        Validator::new(Arc::new(defs))
    })
}

fn obs(extra: Value) -> Value {
    let mut o = json!({"resourceType": "Observation", "status": "final",
        "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>"},
        "code": {"text": "test"}});
    o.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    o
}

fn component(code: &str, unit: &str) -> Value {
    json!({"code": {"coding": [{"system": LOINC, "code": code}]},
        "valueQuantity": {"value": 120, "system": "http://unitsofmeasure.org", "code": unit}})
}

/// The errors as (expression, message).
fn errors(r: &Value, profile: &str) -> Vec<(String, String)> {
    validator()
        .validate(r, &[profile])
        .into_iter()
        .filter(|i| i.is_error())
        .map(|i| (i.expression.unwrap_or_default(), i.message))
        .collect()
}

fn assert_one(r: &Value, profile: &str, expression: &str, text: &str) {
    let e = errors(r, profile);
    assert_eq!(e.len(), 1, "{e:#?}");
    assert_eq!(e[0].0, expression);
    assert!(e[0].1.contains(text), "{}", e[0].1);
}

#[test]
fn pattern_slices_match_and_validate_their_content() {
    let p = "http://t/bp";
    let ok =
        obs(json!({"component": [component("8480-6", "mm[Hg]"), component("8462-4", "mm[Hg]")]}));
    assert_eq!(errors(&ok, p), vec![]);
    let bad_unit =
        obs(json!({"component": [component("8480-6", "kPa"), component("8462-4", "mm[Hg]")]}));
    assert_one(
        &bad_unit,
        p,
        "Observation.component[0].valueQuantity.code",
        "does not match the fixed value 'mm[Hg]'",
    );
}

#[test]
fn per_slice_minimum_and_maximum() {
    let p = "http://t/bp";
    let missing = obs(json!({"component": [component("8480-6", "mm[Hg]")]}));
    assert_one(
        &missing,
        p,
        "Observation.component",
        "slice 'dia' requires at least 1, but found 0",
    );
    let twice = obs(
        json!({"component": [component("8480-6", "mm[Hg]"), component("8480-6", "mm[Hg]"), component("8462-4", "mm[Hg]")]}),
    );
    let e = errors(&twice, p);
    assert!(
        e.iter().any(|(x, m)| x == "Observation.component"
            && m.contains("slice 'sys' allows at most 1, but found 2")),
        "{e:#?}"
    );
}

#[test]
fn closed_slicing_rejects_unmatched_items() {
    let p = "http://t/bp";
    let extra = obs(
        json!({"component": [component("8480-6", "mm[Hg]"), component("8462-4", "mm[Hg]"), component("8867-4", "/min")]}),
    );
    assert_one(
        &extra,
        p,
        "Observation.component[2]",
        "matches none of the slices (sys, dia) and the slicing is closed",
    );
}

#[test]
fn ordered_slices_must_keep_their_order() {
    let p = "http://t/bp";
    let swapped =
        obs(json!({"component": [component("8462-4", "mm[Hg]"), component("8480-6", "mm[Hg]")]}));
    assert_one(&swapped, p, "Observation.component[1]", "out of order");
}

#[test]
fn value_discriminator_and_open_at_end() {
    let p = "http://t/category";
    let vs = json!({"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]});
    let other = json!({"text": "something else"});
    assert_eq!(
        errors(&obs(json!({"category": [vs.clone(), other.clone()]})), p),
        vec![]
    );
    assert_one(
        &obs(json!({"category": [other.clone(), vs]})),
        p,
        "Observation.category[1]",
        "openAtEnd",
    );
    assert_one(
        &obs(json!({"category": [other]})),
        p,
        "Observation.category",
        "slice 'vs' requires at least 1",
    );
}

#[test]
fn exists_discriminator() {
    let p = "http://t/exists";
    let measured = json!({"code": {"text": "a"}, "valueQuantity": {"value": 1}});
    let absent = json!({"code": {"text": "b"}, "dataAbsentReason": {"text": "broken"}});
    assert_eq!(
        errors(&obs(json!({"component": [measured, absent.clone()]})), p),
        vec![]
    );
    let e = errors(&obs(json!({"component": [absent.clone(), absent]})), p);
    let messages: Vec<&str> = e.iter().map(|(_, m)| m.as_str()).collect();
    assert_eq!(
        messages,
        [
            "Observation.component: slice 'absent' allows at most 1, but found 2",
            "Observation.component: slice 'measured' requires at least 1, but found 0"
        ]
    );
}

#[test]
fn type_slices_of_a_choice() {
    let p = "http://t/type";
    assert_eq!(
        errors(&obs(json!({"valueQuantity": {"value": 1}})), p),
        vec![]
    );
    // Reported where the value is, naming the type slice it misses.
    assert_one(
        &obs(json!({"valueString": "x"})),
        p,
        "Observation.valueString",
        "slice 'valueQuantity' requires at least 1",
    );
}

#[test]
fn profile_discriminator() {
    let p = "http://t/profile";
    let patient = json!({"resourceType": "Patient", "id": "x"});
    let practitioner = json!({"resourceType": "Practitioner", "id": "x"});
    let with = |c: Value| obs(json!({"contained": [c], "performer": [{"reference": "#x"}]}));
    assert_eq!(errors(&with(patient), p), vec![]);
    assert_one(
        &with(practitioner),
        p,
        "Observation.contained[0]",
        "the slicing is closed",
    );
}

#[test]
fn extension_function_in_a_discriminator_path() {
    let p = "http://t/side";
    let side = |code: &str| {
        json!({"code": {"coding": [{"system": LOINC, "code": "8480-6"}]},
            "extension": [{"url": "http://t/ext/side", "valueCode": code}]})
    };
    assert_eq!(
        errors(&obs(json!({"component": [side("left"), side("right")]})), p),
        vec![]
    );
    // Two items in the one-item slice `left`: the url selects the extension, its value
    // the slice.
    assert_one(
        &obs(json!({"component": [side("left"), side("left")]})),
        p,
        "Observation.component",
        "slice 'left' allows at most 1",
    );
    assert_one(
        &obs(json!({"component": [side("left"), side("up")]})),
        p,
        "Observation.component[1]",
        "the slicing is closed",
    );
}

#[test]
fn of_type_function_in_a_discriminator_path() {
    let p = "http://t/of-type";
    let kg = json!({"code": {"coding": [{"system": LOINC, "code": "29463-7"}]},
        "valueQuantity": {"value": 80, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"}});
    assert_eq!(errors(&obs(json!({"component": [kg.clone()]})), p), vec![]);
    let mut grams = kg.clone();
    grams["valueQuantity"]["code"] = json!("g");
    assert_one(
        &obs(json!({"component": [kg.clone(), grams]})),
        p,
        "Observation.component[1]",
        "the slicing is closed",
    );
    // A string is not of type Quantity, whatever it says.
    let text =
        json!({"code": {"coding": [{"system": LOINC, "code": "29463-7"}]}, "valueString": "kg"});
    assert_one(
        &obs(json!({"component": [text]})),
        p,
        "Observation.component[0]",
        "the slicing is closed",
    );
}

#[test]
fn resolve_function_in_a_discriminator_path() {
    let p = "http://t/resolve";
    let by = |performer: Value| {
        obs(json!({"contained": [performer], "performer": [{"reference": "#x"}]}))
    };
    assert_eq!(
        errors(&by(json!({"resourceType": "Practitioner", "id": "x"})), p),
        vec![]
    );
    assert_one(
        &by(json!({"resourceType": "Organization", "id": "x", "name": "Clinic"})),
        p,
        "Observation.performer[0]",
        "the slicing is closed",
    );
}
