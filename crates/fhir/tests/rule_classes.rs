//! The rule classes the reference (HL7 Java) validator enforces beyond a plain snapshot walk,
//! one test (or a few) per class, each on resources written here: whole Bundles, extension
//! contexts and policy, FHIRPath details of invariants, bindings and data types,
//! conformance resources, and definitions loaded from differentials.

use std::sync::Arc;

use phr_fhir::validator::Options;
use phr_fhir::{Definitions, Issue, Severity, Validator};
use serde_json::{Value, json};

const NARRATIVE: &str = "<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>";

fn weight() -> Value {
    json!({
        "resourceType": "Observation",
        "id": "w1",
        "text": {"status": "generated", "div": NARRATIVE},
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": "2024-05-01T10:00:00+03:00",
        "valueQuantity": {"value": 80.5, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"}
    })
}

fn patient(id: &str) -> Value {
    json!({"resourceType": "Patient", "id": id, "text": {"status": "generated", "div": NARRATIVE}})
}

fn with(mut r: Value, f: impl FnOnce(&mut Value)) -> Value {
    f(&mut r);
    r
}

fn errors(issues: &[Issue]) -> Vec<(String, String)> {
    issues
        .iter()
        .filter(|i| i.is_error())
        .map(|i| (i.expression.clone().unwrap_or_default(), i.message.clone()))
        .collect()
}

/// Asserts that the only errors are at `expression`, with `text` in the message.
#[track_caller]
fn only_error(issues: &[Issue], expression: &str, text: &str) {
    let errors = errors(issues);
    assert!(
        !errors.is_empty(),
        "expected an error at {expression}: {issues:#?}"
    );
    for (e, m) in &errors {
        assert_eq!(e, expression, "{issues:#?}");
        assert!(m.contains(text), "{m:?} lacks {text:?}");
    }
}

#[track_caller]
fn no_errors(issues: &[Issue]) {
    assert!(errors(issues).is_empty(), "{issues:#?}");
}

fn base() -> Validator {
    Validator::r4()
}

/// R4 plus `resources` (definitions, possibly differential-only).
fn with_definitions(resources: &[Value]) -> Validator {
    let mut defs = (*Definitions::r4()).clone();
    let report = defs.add_resources(resources.iter());
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    Validator::new(Arc::new(defs))
}

fn profile(url: &str, type_name: &str, diff: Value) -> Value {
    json!({"resourceType": "StructureDefinition", "url": url, "name": "P", "status": "active",
        "kind": "resource", "abstract": false, "type": type_name, "derivation": "constraint",
        "baseDefinition": format!("http://hl7.org/fhir/StructureDefinition/{type_name}"),
        "differential": {"element": diff}})
}

fn extension_definition(url: &str, context: Value, value_type: &str) -> Value {
    json!({"resourceType": "StructureDefinition", "url": url, "name": "E", "status": "active",
    "kind": "complex-type", "abstract": false, "type": "Extension", "derivation": "constraint",
    "context": context,
    "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Extension",
    "differential": {"element": [
        {"id": "Extension.url", "path": "Extension.url", "fixedUri": url},
        {"id": "Extension.value[x]", "path": "Extension.value[x]", "type": [{"code": value_type}]}
    ]}})
}

fn bundle(kind: &str, entries: Value) -> Value {
    let mut b = json!({"resourceType": "Bundle", "type": kind});
    if entries.as_array().is_some_and(|e| !e.is_empty()) {
        b["entry"] = entries;
    }
    b
}

// ---------------------------------------------------------------- whole Bundles

#[test]
fn a_bundle_profile_applies_to_the_bundle_and_entries_to_their_declared_profiles() {
    let bundle_profile = profile(
        "http://x/bundle-with-id",
        "Bundle",
        json!([{"id": "Bundle.identifier", "path": "Bundle.identifier", "min": 1}]),
    );
    let v = with_definitions(&[bundle_profile]);
    let b = bundle(
        "collection",
        json!([{"fullUrl": "http://x/fhir/Observation/w1", "resource": with(weight(), |w| {
            w["meta"] = json!({"profile": ["http://hl7.org/fhir/StructureDefinition/vitalsigns"]});
        })}]),
    );
    let issues = v.validate(&b, &["http://x/bundle-with-id"]);
    let errs = errors(&issues);
    assert!(
        errs.iter().any(|(e, _)| e == "Bundle.identifier"),
        "{issues:#?}"
    );
    // The vital-signs profile of the entry requires a category; the Bundle profile is not
    // applied to the Observation.
    assert!(
        errs.iter()
            .any(|(e, _)| e == "Bundle.entry[0].resource.category"),
        "{issues:#?}"
    );
    assert!(
        !errs.iter().any(|(_, m)| m.contains("bundle-with-id")),
        "{issues:#?}"
    );
}

#[test]
fn full_urls_are_absolute_required_and_agree_with_the_resource() {
    only_error(
        &base().validate(
            &bundle(
                "collection",
                json!([{"fullUrl": "Observation/w1", "resource": weight()}]),
            ),
            &[],
        ),
        "Bundle.entry[0].fullUrl",
        "absolute",
    );
    only_error(
        &base().validate(
            &bundle(
                "collection",
                json!([{"fullUrl": "http://x/fhir/Observation/w2", "resource": weight()}]),
            ),
            &[],
        ),
        "Bundle.entry[0].fullUrl",
        "/Observation/w1",
    );
    only_error(
        &base().validate(&bundle("collection", json!([{"resource": weight()}])), &[]),
        "Bundle.entry[0]",
        "fullUrl is required",
    );
    // A transaction may create resources without a fullUrl.
    no_errors(&base().validate(
        &bundle(
            "transaction",
            json!([{"resource": with(weight(), |w| { w.as_object_mut().unwrap().remove("id"); }),
                    "request": {"method": "POST", "url": "Observation"}}]),
        ),
        &[],
    ));
}

#[test]
fn duplicate_entries_are_errors() {
    let b = bundle(
        "collection",
        json!([
            {"fullUrl": "http://x/fhir/Observation/w1", "resource": weight()},
            {"fullUrl": "http://x/fhir/Observation/w1", "resource": weight()}
        ]),
    );
    let issues = base().validate(&b, &[]);
    assert!(
        errors(&issues)
            .iter()
            .any(|(e, m)| e == "Bundle.entry[1]" && m.contains("duplicate")),
        "{issues:#?}"
    );
    // Two versions of one resource are not duplicates.
    let versions = bundle(
        "collection",
        json!([
            {"fullUrl": "http://x/fhir/Observation/w1", "resource": with(weight(), |w| w["meta"] = json!({"versionId": "1"}))},
            {"fullUrl": "http://x/fhir/Observation/w1", "resource": with(weight(), |w| w["meta"] = json!({"versionId": "2"}))}
        ]),
    );
    no_errors(&base().validate(&versions, &[]));
}

#[test]
fn paging_links_belong_to_searches_and_self_appears_once() {
    let mut b = bundle("collection", json!([]));
    b["link"] = json!([{"relation": "next", "url": "http://x/fhir/Observation?page=2"}]);
    only_error(
        &base().validate(&b, &[]),
        "Bundle.link[0].relation",
        "only for search",
    );
    b["type"] = json!("searchset");
    b["link"] = json!([{"relation": "self", "url": "http://x/a"}, {"relation": "self", "url": "http://x/b"}]);
    only_error(
        &base().validate(&b, &[]),
        "Bundle.link[1].relation",
        "only once",
    );
}

#[test]
fn urn_references_must_name_an_entry() {
    let obs = with(weight(), |w| {
        w["subject"]["reference"] = json!("urn:uuid:3c1b7a56-6b5c-4b89-9c1e-2a5d1b0c9e11");
    });
    let missing = bundle(
        "transaction",
        json!([{"fullUrl": "urn:uuid:9a1b7a56-6b5c-4b89-9c1e-2a5d1b0c9e11",
        "resource": obs, "request": {"method": "POST", "url": "Observation"}}]),
    );
    only_error(
        &base().validate(&missing, &[]),
        "Bundle.entry[0].resource.subject.reference",
        "names no entry",
    );
    let mut present = missing.clone();
    present["entry"].as_array_mut().unwrap().push(json!({
        "fullUrl": "urn:uuid:3c1b7a56-6b5c-4b89-9c1e-2a5d1b0c9e11", "resource": patient("p1"),
        "request": {"method": "POST", "url": "Patient"}}));
    no_errors(&base().validate(&present, &[]));
}

fn document(section_refs: Value, observation_version: &str) -> Value {
    let composition = json!({"resourceType": "Composition", "id": "c1",
        "text": {"status": "generated", "div": NARRATIVE},
        "status": "final", "type": {"text": "note"}, "date": "2024-12-01",
        "title": "Note", "author": [{"reference": "Patient/p1"}], "subject": {"reference": "Patient/p1"},
        "section": [{"title": "s", "text": {"status": "generated", "div": NARRATIVE}, "entry": section_refs}]});
    let mut b = bundle(
        "document",
        json!([
            {"fullUrl": "http://x/fhir/Composition/c1", "resource": composition},
            {"fullUrl": "http://x/fhir/Observation/w1", "resource": with(weight(), |w| w["meta"] = json!({"versionId": observation_version}))},
            {"fullUrl": "http://x/fhir/Patient/p1", "resource": patient("p1")}
        ]),
    );
    b["identifier"] = json!({"system": "urn:ietf:rfc:3986", "value": "urn:uuid:ba2d1426-ed83-4d55-8032-c6345382c92b"});
    b["timestamp"] = json!("2024-12-01T13:28:17+02:00");
    b
}

#[test]
fn a_document_refers_only_to_what_it_holds_in_the_version_it_holds() {
    no_errors(&base().validate(
        &document(json!([{"reference": "Observation/w1"}]), "1"),
        &[],
    ));
    no_errors(&base().validate(
        &document(json!([{"reference": "Observation/w1/_history/1"}]), "1"),
        &[],
    ));
    let wrong_version = base().validate(
        &document(json!([{"reference": "Observation/w1/_history/3"}]), "1"),
        &[],
    );
    let errs = errors(&wrong_version);
    assert!(
        errs.iter().any(
            |(e, m)| e == "Bundle.entry[0].resource.section[0].entry[0].reference"
                && m.contains("not this version")
        ),
        "{wrong_version:#?}"
    );
    let elsewhere = base().validate(
        &document(json!([{"reference": "Observation/other"}]), "1"),
        &[],
    );
    assert!(
        errors(&elsewhere)
            .iter()
            .any(|(_, m)| m.contains("is not in the document")),
        "{elsewhere:#?}"
    );
}

#[test]
fn every_document_entry_is_reached_from_the_composition() {
    let mut doc = document(json!([{"reference": "Observation/w1"}]), "1");
    doc["entry"].as_array_mut().unwrap().push(json!({
        "fullUrl": "http://x/fhir/Practitioner/d1",
        "resource": {"resourceType": "Practitioner", "id": "d1", "text": {"status": "generated", "div": NARRATIVE}}
    }));
    only_error(
        &base().validate(&doc, &[]),
        "Bundle.entry[3]",
        "not referred to",
    );
}

#[test]
fn bundle_invariants_are_checked() {
    let mut b = bundle("collection", json!([]));
    b["total"] = json!(3);
    only_error(&base().validate(&b, &[]), "Bundle", "bdl-1");
}

// ---------------------------------------------------------------- extensions

#[test]
fn an_extension_is_allowed_only_in_its_contexts() {
    let v = with_definitions(&[
        extension_definition(
            "http://x/ext/on-patient",
            json!([{"type": "element", "expression": "Patient"}]),
            "string",
        ),
        extension_definition(
            "http://x/ext/on-quantity",
            json!([{"type": "element", "expression": "Quantity"}]),
            "string",
        ),
        extension_definition(
            "http://x/ext/on-value",
            json!([{"type": "element", "expression": "Observation.value[x]"}]),
            "string",
        ),
    ]);
    let on = |url: &str| json!([{"url": url, "valueString": "x"}]);
    no_errors(&v.validate(
        &with(patient("p1"), |p| {
            p["extension"] = on("http://x/ext/on-patient")
        }),
        &[],
    ));
    only_error(
        &v.validate(
            &with(weight(), |w| w["extension"] = on("http://x/ext/on-patient")),
            &[],
        ),
        "Observation.extension[0]",
        "not allowed on Observation",
    );
    no_errors(&v.validate(
        &with(weight(), |w| {
            w["valueQuantity"]["extension"] = on("http://x/ext/on-quantity")
        }),
        &[],
    ));
    no_errors(&v.validate(
        &with(weight(), |w| {
            w["valueQuantity"]["extension"] = on("http://x/ext/on-value")
        }),
        &[],
    ));
    only_error(
        &v.validate(
            &with(weight(), |w| {
                w["code"]["extension"] = on("http://x/ext/on-quantity")
            }),
            &[],
        ),
        "Observation.code.extension[0]",
        "not allowed on Observation.code",
    );
}

#[test]
fn the_contexts_of_core_extensions_are_enforced() {
    let v = Validator::r4();
    let birth_place = json!([{"url": "http://hl7.org/fhir/StructureDefinition/patient-birthPlace",
        "valueAddress": {"city": "Oulu"}}]);
    no_errors(&v.validate(
        &with(patient("p1"), |p| p["extension"] = birth_place.clone()),
        &[],
    ));
    only_error(
        &v.validate(&with(weight(), |w| w["extension"] = birth_place), &[]),
        "Observation.extension[0]",
        "not allowed on Observation",
    );
    // Allowed on elements of a StructureDefinition (as R4's own definitions use it), not on
    // an Observation.
    let normative = json!([{"url":
        "http://hl7.org/fhir/StructureDefinition/structuredefinition-normative-version",
        "valueCode": "4.0.0"}]);
    only_error(
        &v.validate(&with(weight(), |w| w["extension"] = normative), &[]),
        "Observation.extension[0]",
        "not allowed on Observation",
    );
}

/// Every definition Kela publishes was generated by the R4 tooling, which puts a few core
/// extensions where their own `context` does not list them; the reference validator accepts
/// them there, and so must we.
#[test]
fn kelas_definitions_use_core_extensions_only_where_they_are_allowed() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/kanta");
    let v = Validator::r4();
    // Two definitions carry all three of those extensions (validating every definition's
    // snapshot takes minutes in a debug build); every example is checked.
    let mut paths = vec![
        dir.join("conformance/FIPHREXTBoolean.json"),
        dir.join("conformance/FIPHRSDBodyWeight.json"),
    ];
    for entry in std::fs::read_dir(dir.join("examples")).expect("the Kanta examples") {
        paths.push(entry.expect("a directory entry").path());
    }
    let mut checked = 0;
    for path in paths
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
    {
        let resource: Value =
            serde_json::from_slice(&std::fs::read(path).expect("readable")).expect("JSON");
        let misplaced: Vec<String> = v
            .validate(&resource, &[])
            .into_iter()
            .filter(|i| i.message.contains("is not allowed on"))
            .map(|i| i.message)
            .collect();
        assert!(misplaced.is_empty(), "{}: {misplaced:#?}", path.display());
        checked += 1;
    }
    assert!(checked > 30, "only {checked} files checked");
}

#[test]
fn an_unknown_extension_is_a_warning_unless_the_policy_is_strict() {
    let unknown = with(weight(), |w| {
        w["extension"] = json!([{"url": "http://x/ext/unknown", "valueString": "x"}])
    });
    let lenient = base().validate(&unknown, &[]);
    no_errors(&lenient);
    assert!(
        lenient
            .iter()
            .any(|i| i.severity == Severity::Warning && i.message.contains("not known"))
    );
    let strict = base().with_options(Options {
        strict_extensions: true,
    });
    only_error(
        &strict.validate(&unknown, &[]),
        "Observation.extension[0]",
        "not known",
    );

    // Under a profile the registry marks strict, the same extension is an error.
    let mut defs = (*Definitions::r4()).clone();
    defs.add_resource(&profile(
        "http://strict.example/StructureDefinition/obs",
        "Observation",
        json!([
        {"id": "Observation", "path": "Observation"}]),
    ));
    defs.set_strict_extensions("http://strict.example/");
    let v = Validator::new(Arc::new(defs));
    only_error(
        &v.validate(&unknown, &["http://strict.example/StructureDefinition/obs"]),
        "Observation.extension[0]",
        "not known",
    );
    no_errors(&v.validate(&unknown, &[]));
}

#[test]
fn an_unknown_modifier_extension_is_an_error() {
    only_error(
        &base().validate(
            &with(weight(), |w| {
                w["modifierExtension"] = json!([{"url": "http://x/ext/m", "valueBoolean": true}])
            }),
            &[],
        ),
        "Observation.modifierExtension[0]",
        "modifier",
    );
}

#[test]
fn extensions_are_not_allowed_on_ids_and_urls() {
    only_error(
        &base().validate(
            &with(
                weight(),
                |w| w["_id"] = json!({"extension": [{"url": "http://x/e", "valueString": "x"}]}),
            ),
            &[],
        ),
        "Observation._id",
        "cannot have extensions",
    );
    only_error(
        &base().validate(
            &with(weight(), |w| {
                w["extension"] = json!([{"url": "http://x/e", "_url": {"extension": [{"url": "http://x/f", "valueString": "y"}]}, "valueString": "x"}])
            }),
            &[],
        ),
        "Observation.extension[0]._url",
        "cannot have extensions",
    );
}

// ---------------------------------------------------------------- invariants and FHIRPath

#[test]
fn period_bounds_of_different_precision_that_agree_cannot_be_ordered() {
    let period = |start: &str, end: &str| {
        with(weight(), |w| {
            w.as_object_mut().unwrap().remove("effectiveDateTime");
            w["effectivePeriod"] = json!({"start": start, "end": end});
        })
    };
    only_error(
        &base().validate(&period("2023-06-21", "2023-06-21T06:20:00Z"), &[]),
        "Observation.effectivePeriod",
        "per-1",
    );
    no_errors(&base().validate(&period("2023-06-20", "2023-06-21T06:20:00Z"), &[]));
    no_errors(&base().validate(
        &period("2023-06-21T06:00:00Z", "2023-06-21T06:20:00.5Z"),
        &[],
    ));
    only_error(
        &base().validate(&period("2023-06-22", "2023-06-21T06:20:00Z"), &[]),
        "Observation.effectivePeriod",
        "per-1",
    );
}

#[test]
fn a_canonical_reference_to_a_contained_resource_counts_for_dom_3() {
    let q = json!({"resourceType": "Questionnaire", "id": "q", "status": "active",
        "text": {"status": "generated", "div": NARRATIVE},
        "contained": [{"resourceType": "ValueSet", "id": "options", "status": "active",
            "compose": {"include": [{"system": "http://x/cs", "concept": [{"code": "a"}]}]}}],
        "item": [{"linkId": "1", "type": "choice", "answerValueSet": "#options"}]});
    no_errors(&base().validate(&q, &[]));
    let unreferenced = with(q, |q| q["item"][0]["answerValueSet"] = json!("http://x/vs"));
    only_error(
        &base().validate(&unreferenced, &[]),
        "Observation.contained[0]"
            .replace("Observation", "Questionnaire")
            .as_str(),
        "dom-3",
    );
}

#[test]
fn root_resource_of_a_bundle_entry_is_the_entry() {
    let p = profile(
        "http://x/obs-root",
        "Observation",
        json!([{"id": "Observation", "path": "Observation", "constraint": [
            {"key": "x-1", "severity": "error", "human": "root is the resource itself",
             "expression": "%rootResource.id = %resource.id"},
            {"key": "x-2", "severity": "error", "human": "a LOINC code",
             "expression": "code.coding.where(system = 'http://loinc.org').code.exists() and effective.exists()"}
        ]}]),
    );
    let v = with_definitions(&[p]);
    let declared = with(weight(), |w| {
        w["meta"] = json!({"profile": ["http://x/obs-root"]})
    });
    no_errors(&v.validate(&declared, &["http://x/obs-root"]));
    no_errors(&v.validate(
        &bundle(
            "collection",
            json!([{"fullUrl": "http://x/fhir/Observation/w1", "resource": declared}]),
        ),
        &[],
    ));
}

// ---------------------------------------------------------------- bindings and data types

#[test]
fn a_required_binding_wants_a_code_not_only_an_extension() {
    let absent = json!({"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason", "valueCode": "unknown"}]});
    only_error(
        &base().validate(
            &with(weight(), |w| {
                w.as_object_mut().unwrap().remove("status");
                w["_status"] = absent.clone();
            }),
            &[],
        ),
        "Observation.status",
        "no code provided",
    );
}

#[test]
fn a_code_system_supplement_is_not_a_coding_system() {
    let supplement = json!({"resourceType": "CodeSystem", "url": "http://x/supplement", "status": "active",
        "content": "supplement", "supplements": "http://loinc.org"});
    let v = with_definitions(&[supplement]);
    only_error(
        &v.validate(
            &with(weight(), |w| {
                w["code"]["coding"][0]["system"] = json!("http://x/supplement")
            }),
            &[],
        ),
        "Observation.code.coding[0].system",
        "supplement",
    );
}

#[test]
fn min_and_max_values_apply_to_dates() {
    let p = profile(
        "http://x/born-2000s",
        "Patient",
        json!([{"id": "Patient.birthDate", "path": "Patient.birthDate", "minValueDate": "2000-01-01", "maxValueDate": "2099-12-31"}]),
    );
    let v = with_definitions(&[p]);
    no_errors(&v.validate(
        &with(patient("p"), |p| p["birthDate"] = json!("2001-02-03")),
        &["http://x/born-2000s"],
    ));
    only_error(
        &v.validate(
            &with(patient("p"), |p| p["birthDate"] = json!("1999-12-31")),
            &["http://x/born-2000s"],
        ),
        "Patient.birthDate",
        "below the minimum",
    );
}

#[test]
fn attachment_size_and_hash_match_the_inline_data() {
    let document = |attachment: Value| {
        json!({"resourceType": "DocumentReference", "status": "current",
            "text": {"status": "generated", "div": NARRATIVE},
            "content": [{"attachment": attachment}]})
    };
    no_errors(&base().validate(
        &document(json!({"contentType": "text/plain", "data": "SGVsbG8=", "size": 5, "hash": "9/+ei3uy4Jtwk1pdeF4MxdnQq/A="})),
        &[],
    ));
    only_error(
        &base().validate(
            &document(json!({"contentType": "text/plain", "data": "SGVsbG8=", "size": 6})),
            &[],
        ),
        "DocumentReference.content[0].attachment.size",
        "does not match",
    );
    only_error(
        &base().validate(
            &document(json!({"contentType": "text/plain", "data": "SGVsbG8=", "hash": "2jmj7l5rSw0yVb/vlWAYkK/YBwk="})),
            &[],
        ),
        "DocumentReference.content[0].attachment.hash",
        "SHA-1",
    );
}

#[test]
fn internal_links_of_the_narrative_resolve() {
    let div = |body: &str| format!("<div xmlns=\"http://www.w3.org/1999/xhtml\">{body}</div>");
    no_errors(&base().validate(
        &with(weight(), |w| {
            w["text"]["div"] = json!(div("<a href=\"#n\">see</a> <p id=\"n\">note</p>"))
        }),
        &[],
    ));
    only_error(
        &base().validate(
            &with(weight(), |w| {
                w["text"]["div"] = json!(div("<a href=\"#missing\">see</a>"))
            }),
            &[],
        ),
        "Observation.text.div",
        "#missing",
    );
}

#[test]
fn a_target_profile_we_do_not_know_cannot_be_checked_but_is_not_an_error() {
    let p = profile(
        "http://x/obs-subject",
        "Observation",
        json!([{"id": "Observation.subject", "path": "Observation.subject",
            "type": [{"code": "Reference", "targetProfile": ["http://example.org/StructureDefinition/my-patient"]}]}]),
    );
    let v = with_definitions(&[p]);
    let issues = v.validate(&weight(), &["http://x/obs-subject"]);
    no_errors(&issues);
    assert!(
        issues
            .iter()
            .any(|i| i.severity == Severity::Warning && i.message.contains("my-patient")),
        "{issues:#?}"
    );
}

// ---------------------------------------------------------------- conformance resources

#[test]
fn a_derived_search_parameter_agrees_with_its_parent() {
    let sp = |base: &str, ty: &str| {
        json!({"resourceType": "SearchParameter", "url": "http://x/sp/code", "name": "code", "status": "active",
            "description": "d", "code": "code", "base": [base], "type": ty,
            "expression": format!("{base}.code"),
            "derivedFrom": "http://hl7.org/fhir/SearchParameter/clinical-code"})
    };
    no_errors(&base().validate(&sp("Observation", "token"), &[]));
    only_error(
        &base().validate(&sp("Observation", "string"), &[]),
        "SearchParameter.type",
        "differs",
    );
    only_error(
        &base().validate(&sp("Patient", "token"), &[]),
        "SearchParameter.base[0]",
        "not a base",
    );
}

fn code_system(properties: Value, concepts: Value) -> Value {
    json!({"resourceType": "CodeSystem", "url": "http://x/cs", "status": "active", "content": "complete",
        "text": {"status": "generated", "div": NARRATIVE},
        "property": properties, "concept": concepts})
}

#[test]
fn code_system_properties_are_declared_typed_and_codes_unique() {
    let props = json!([{"code": "weight", "type": "decimal"}]);
    no_errors(&base().validate(
        &code_system(
            props.clone(),
            json!([{"code": "a", "property": [{"code": "weight", "valueDecimal": 1.5}]}]),
        ),
        &[],
    ));
    only_error(
        &base().validate(
            &code_system(
                props.clone(),
                json!([{"code": "a", "property": [{"code": "colour", "valueCode": "red"}]}]),
            ),
            &[],
        ),
        "CodeSystem.concept[0].property[0].code",
        "not declared",
    );
    only_error(
        &base().validate(
            &code_system(
                props.clone(),
                json!([{"code": "a", "property": [{"code": "weight", "valueString": "1.5"}]}]),
            ),
            &[],
        ),
        "CodeSystem.concept[0].property[0]",
        "valueDecimal",
    );
    let twice = base().validate(
        &code_system(props, json!([{"code": "a"}, {"code": "a"}])),
        &[],
    );
    assert!(
        errors(&twice)
            .iter()
            .any(|(e, m)| e == "CodeSystem.concept[1].code" && m.contains("more than once")),
        "{twice:#?}"
    );
}

#[test]
fn value_set_filters_use_properties_the_code_system_defines() {
    let cs = code_system(
        json!([{"code": "weight", "type": "decimal"}]),
        json!([{"code": "a"}]),
    );
    let vs = |property: &str| {
        json!({"resourceType": "ValueSet", "url": "http://x/vs", "status": "active",
            "text": {"status": "generated", "div": NARRATIVE},
            "compose": {"include": [{"system": "http://x/cs",
                "filter": [{"property": property, "op": "=", "value": "1"}]}]}})
    };
    let v = with_definitions(std::slice::from_ref(&cs));
    no_errors(&v.validate(&vs("weight"), &[]));
    no_errors(&v.validate(&vs("concept"), &[]));
    only_error(
        &v.validate(&vs("colour"), &[]),
        "ValueSet.compose.include[0].filter[0].property",
        "not a property",
    );
    // The same rule when the ValueSet is loaded with a package.
    let mut defs = (*Definitions::r4()).clone();
    let report = defs.add_resources([cs, vs("colour")].iter());
    assert!(
        report.problems.iter().any(|p| p.contains("colour")),
        "{report:?}"
    );
}

// ---------------------------------------------------------------- differential-only definitions

#[test]
fn a_profile_on_a_profile_published_with_only_differentials_is_enforced() {
    // Loaded child first: the order of a package does not matter.
    let child = json!({"resourceType": "StructureDefinition", "url": "http://x/child", "name": "C",
    "status": "active", "kind": "resource", "abstract": false, "type": "Observation",
    "derivation": "constraint", "baseDefinition": "http://x/parent",
    "differential": {"element": [
        {"id": "Observation.valueQuantity", "path": "Observation.valueQuantity", "min": 1},
        {"id": "Observation.valueQuantity.code", "path": "Observation.valueQuantity.code", "fixedCode": "kg"}
    ]}});
    let parent = profile(
        "http://x/parent",
        "Observation",
        json!([{"id": "Observation.subject", "path": "Observation.subject", "min": 1}]),
    );
    let mut defs = (*Definitions::r4()).clone();
    let report = defs.add_resources([child, parent].iter());
    assert!(report.rejected.is_empty(), "{report:?}");
    assert_eq!(report.generated_snapshots.len(), 2);
    let v = Validator::new(Arc::new(defs));
    no_errors(&v.validate(&weight(), &["http://x/child"]));
    only_error(
        &v.validate(
            &with(weight(), |w| w["valueQuantity"]["code"] = json!("g")),
            &["http://x/child"],
        ),
        "Observation.valueQuantity.code",
        "fixed",
    );
    only_error(
        &v.validate(
            &with(weight(), |w| {
                w.as_object_mut().unwrap().remove("subject");
            }),
            &["http://x/child"],
        ),
        "Observation.subject",
        "minimum required",
    );
    // The choice renamed to valueQuantity admits no other type.
    let string_value = with(weight(), |w| {
        w.as_object_mut().unwrap().remove("valueQuantity");
        w["valueString"] = json!("80");
    });
    assert!(!errors(&v.validate(&string_value, &["http://x/child"])).is_empty());
}

#[test]
fn an_extension_made_for_another_extension_is_allowed_only_inside_it() {
    let parent = json!({"resourceType": "StructureDefinition", "url": "http://x/ext/parent", "name": "P",
    "status": "active", "kind": "complex-type", "abstract": false, "type": "Extension",
    "derivation": "constraint", "context": [{"type": "element", "expression": "Observation"}],
    "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Extension",
    "differential": {"element": [
        {"id": "Extension.url", "path": "Extension.url", "fixedUri": "http://x/ext/parent"},
        {"id": "Extension.value[x]", "path": "Extension.value[x]", "max": "0"}
    ]}});
    let part = extension_definition(
        "http://x/ext/part",
        json!([{"type": "extension", "expression": "http://x/ext/parent"}]),
        "string",
    );
    let v = with_definitions(&[parent, part]);
    let inside = with(weight(), |w| {
        w["extension"] = json!([{"url": "http://x/ext/parent",
            "extension": [{"url": "http://x/ext/part", "valueString": "x"}]}])
    });
    no_errors(&v.validate(&inside, &[]));
    let alone = with(weight(), |w| {
        w["extension"] = json!([{"url": "http://x/ext/part", "valueString": "x"}])
    });
    only_error(
        &v.validate(&alone, &[]),
        "Observation.extension[0]",
        "not allowed",
    );
}

// ---------------------------------------------------------------- closing the known gaps

#[test]
fn a_reference_type_must_agree_with_the_reference() {
    no_errors(&base().validate(
        &with(weight(), |w| w["subject"]["type"] = json!("Patient")),
        &[],
    ));
    // The core definition's url names the same type.
    no_errors(&base().validate(
        &with(weight(), |w| {
            w["subject"]["type"] = json!("http://hl7.org/fhir/StructureDefinition/Patient")
        }),
        &[],
    ));
    only_error(
        &base().validate(
            &with(weight(), |w| w["subject"]["type"] = json!("Group")),
            &[],
        ),
        "Observation.subject.type",
        "does not match the reference 'Patient/p1'",
    );
    // Without a literal reference the stated type is checked against the target profiles
    // (Observation.subject: Patient, Group, Device, Location).
    let by_identifier = |ty: &str| {
        with(weight(), |w| {
            w["subject"] = json!({"type": ty, "identifier": {"system": "urn:ietf:rfc:3986",
                "value": "urn:uuid:3c1b7a56-6b5c-4b89-9c1e-2a5d1b0c9e11"}})
        })
    };
    no_errors(&base().validate(&by_identifier("Group"), &[]));
    only_error(
        &base().validate(&by_identifier("Practitioner"), &[]),
        "Observation.subject.type",
        "a reference to a Practitioner is not allowed here",
    );
}

#[test]
fn an_extension_context_written_in_fhirpath_is_evaluated() {
    let v = with_definitions(&[extension_definition(
        "http://x/ext/on-blood-pressure-component",
        json!([{"type": "fhirpath",
            "expression": "Observation.component.where(code.coding.code = '8480-6')"}]),
        "string",
    )]);
    let ext = json!([{"url": "http://x/ext/on-blood-pressure-component", "valueString": "x"}]);
    let component = |code: &str| {
        json!({"code": {"coding": [{"system": "http://loinc.org", "code": code}]},
            "valueQuantity": {"value": 120, "unit": "mm[Hg]", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}})
    };
    let pressure = |ext_on: usize| {
        with(weight(), |w| {
            w.as_object_mut().unwrap().remove("valueQuantity");
            w["code"]["coding"][0]["code"] = json!("85354-9");
            w["component"] = json!([component("8480-6"), component("8462-4")]);
            w["component"][ext_on]["extension"] = ext.clone();
        })
    };
    no_errors(&v.validate(&pressure(0), &[]));
    only_error(
        &v.validate(&pressure(1), &[]),
        "Observation.component[1].extension[0]",
        "not allowed on Observation.component",
    );
    only_error(
        &v.validate(&with(weight(), |w| w["extension"] = ext.clone()), &[]),
        "Observation.extension[0]",
        "not allowed on Observation",
    );
}

#[test]
fn an_invariant_that_evaluates_to_nothing_fails() {
    let p = profile(
        "http://x/obs-text",
        "Observation",
        json!([{"id": "Observation", "path": "Observation", "constraint": [
            {"key": "x-3", "severity": "error", "human": "the code has a text starting with W",
             "expression": "code.text.startsWith('W')"}
        ]}]),
    );
    let v = with_definitions(&[p]);
    no_errors(&v.validate(
        &with(weight(), |w| w["code"]["text"] = json!("Weight")),
        &["http://x/obs-text"],
    ));
    only_error(
        &v.validate(
            &with(weight(), |w| w["code"]["text"] = json!("Paino")),
            &["http://x/obs-text"],
        ),
        "Observation",
        "x-3",
    );
    // No code.text: `{}.startsWith('W')` is empty, which is not true.
    only_error(
        &v.validate(&weight(), &["http://x/obs-text"]),
        "Observation",
        "x-3",
    );
}

#[test]
fn invariants_with_iif_and_to_integer_are_evaluated() {
    // eld-2: `min.empty() or max.empty() or (max = '*') or iif(max != '*', min <= max.toInteger())`.
    let definition = |min: u32, max: &str| {
        with(
            profile(
                "http://x/p",
                "Observation",
                json!([{"id": "Observation.note", "path": "Observation.note", "min": min, "max": max}]),
            ),
            |sd| sd["text"] = json!({"status": "generated", "div": NARRATIVE}),
        )
    };
    let eld_2 = |issues: &[Issue]| {
        errors(issues)
            .iter()
            .filter(|(_, m)| m.contains("eld-2"))
            .map(|(e, _)| e.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        eld_2(&base().validate(&definition(1, "2"), &[])),
        Vec::<String>::new()
    );
    assert_eq!(
        eld_2(&base().validate(&definition(3, "2"), &[])),
        vec!["StructureDefinition.differential.element[0]".to_string()]
    );
}

#[test]
fn context_variables_inside_a_contained_resource() {
    // %resource is the contained resource itself, %rootResource the resource holding it.
    let p = profile(
        "http://x/contained-patient",
        "Patient",
        json!([{"id": "Patient", "path": "Patient", "constraint": [
            {"key": "x-4", "severity": "error", "human": "contained in an Observation",
             "expression": "%resource.resourceType = 'Patient' and %rootResource.resourceType = 'Observation'"}
        ]}]),
    );
    let v = with_definitions(&[p]);
    let contained = with(patient("p1"), |p| {
        p["meta"] = json!({"profile": ["http://x/contained-patient"]});
        p.as_object_mut().unwrap().remove("text");
    });
    let obs = with(weight(), |w| {
        w["contained"] = json!([contained.clone()]);
        w["subject"]["reference"] = json!("#p1");
    });
    no_errors(&v.validate(&obs, &[]));
    let encounter = json!({"resourceType": "Encounter", "id": "e1",
        "text": {"status": "generated", "div": NARRATIVE}, "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "contained": [contained.clone()], "subject": {"reference": "#p1"}});
    only_error(
        &v.validate(&encounter, &[]),
        "Encounter.contained[0]",
        "x-4",
    );
    only_error(
        &v.validate(&patient("p1"), &["http://x/contained-patient"]),
        "Patient",
        "x-4",
    );
}

#[test]
fn min_and_max_values_apply_to_times_and_date_times() {
    let p = profile(
        "http://x/morning",
        "Observation",
        json!([
            {"id": "Observation.effective[x]", "path": "Observation.effective[x]",
             "type": [{"code": "dateTime"}], "minValueDateTime": "2024-01-01T00:00:00Z"},
            {"id": "Observation.value[x]", "path": "Observation.value[x]",
             "type": [{"code": "time"}], "minValueTime": "08:00:00", "maxValueTime": "12:00:00"}
        ]),
    );
    let v = with_definitions(&[p]);
    let at = |effective: &str, time: &str| {
        with(weight(), |w| {
            w.as_object_mut().unwrap().remove("valueQuantity");
            w["effectiveDateTime"] = json!(effective);
            w["valueTime"] = json!(time);
        })
    };
    // 2023-12-31T23:00:00-02:00 is 2024-01-01T01:00:00Z.
    no_errors(&v.validate(
        &at("2023-12-31T23:00:00-02:00", "08:00:00"),
        &["http://x/morning"],
    ));
    only_error(
        &v.validate(
            &at("2023-12-31T23:00:00Z", "09:30:00"),
            &["http://x/morning"],
        ),
        "Observation.effectiveDateTime",
        "below the minimum",
    );
    only_error(
        &v.validate(
            &at("2024-05-01T10:00:00+03:00", "12:00:01"),
            &["http://x/morning"],
        ),
        "Observation.valueTime",
        "above the maximum",
    );
}

#[test]
fn conformance_rules_apply_to_search_parameters_and_code_systems_loaded_with_a_package() {
    let sp = json!({"resourceType": "SearchParameter", "url": "http://x/sp/code", "name": "code",
        "status": "active", "description": "d", "code": "code", "base": ["Observation"],
        "type": "string", "expression": "Observation.code",
        "derivedFrom": "http://hl7.org/fhir/SearchParameter/clinical-code"});
    let cs = code_system(
        json!([{"code": "weight", "type": "decimal"}]),
        json!([{"code": "a", "property": [{"code": "colour", "valueCode": "red"}]}]),
    );
    let mut defs = (*Definitions::r4()).clone();
    let report = defs.add_resources([sp, cs].iter());
    assert!(report.rejected.is_empty(), "{report:?}");
    let about = |url: &str, text: &str| {
        report
            .problems
            .iter()
            .any(|p| p.starts_with(url) && p.contains(text))
    };
    assert!(about("http://x/sp/code: type", "differs"), "{report:?}");
    assert!(
        about("http://x/cs: concept[0].property[0].code", "not declared"),
        "{report:?}"
    );
    assert_eq!(report.problems.len(), 2, "{report:?}");
}
