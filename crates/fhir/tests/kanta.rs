//! The public Kanta PHR examples against base R4 and against the official Kanta profiles
//! (loaded from `../shared/kanta/conformance`, never copied into the repository).
//!
//! Verdicts recorded here (each checked by hand against the official StructureDefinitions):
//! - every R4 example passes base R4 except `Observation-example-duplicate-7.json`, whose
//!   `valueQuantity.value` is the JSON string "182" (a decimal must be a JSON number);
//! - with the official profiles, all 300 entries of the R4 diabetes bundle pass;
//! - `bloodglucose-min.json` fails PHR-2 (15074-8 without 14743-9) and the `-astext` and
//!   `-dataabsentreason` examples fail PHR-3 (14743-9 without 15074-8): the official profile's
//!   invariants require both codes together;
//! - `Bloodglucose-max.json` fails the vital-signs `VSCat` category slice: the slice fixes
//!   `coding.system` and `coding.code` of every coding of that category, and the example adds a
//!   second, example.org coding to it;
//! - `example-CarePlan-mandatory.json` uses `status: active` where the profile fixes
//!   `completed` (the optional one says `completed`), and both CarePlans write identifier
//!   systems `urn:uuid:ietf:rfc:3986` (not a UUID; `urn:ietf:rfc:3986` was meant).

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use phr_fhir::{Definitions, Issue, Severity, Validator, declared_profiles};
use serde_json::Value;

fn kanta() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/kanta");
    if dir.is_dir() {
        Some(dir)
    } else {
        println!("note: {} is absent; Kanta tests skipped", dir.display());
        None
    }
}

fn validator() -> &'static Validator {
    static V: OnceLock<Validator> = OnceLock::new();
    V.get_or_init(|| {
        let mut defs = (*Definitions::r4()).clone();
        let dir = kanta().expect("checked by the caller").join("conformance");
        let report = defs.load_dir(&dir).expect("Kanta conformance loads");
        assert_eq!(report.structure_definitions.len(), 21, "{report:?}");
        assert!(report.rejected.is_empty(), "{report:?}");
        Validator::new(Arc::new(defs))
    })
}

fn load(file: &str) -> Value {
    let path = kanta().expect("checked by the caller").join(file);
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

fn errors(issues: &[Issue]) -> Vec<String> {
    issues
        .iter()
        .filter(|i| i.is_error())
        .map(|i| i.expression.clone().unwrap_or_default())
        .collect()
}

const R4_EXAMPLES: &[&str] = &[
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
    "Bloodglucose-max.json",
    "observation-example-bloodglucose-astext.json",
    "observation-example-bloodglucose-dataabsentreason.json",
    "MedicationAdministration-InsulinDosage-mandatory.json",
    "Observation-example-duplicate-7.json",
    "example-patient.json",
    "example-patient-1.json",
    "kanta-phr-patient-1.json",
    "medication-administration-insulin-bolus-dose-fi.json",
];

#[test]
fn r4_examples_pass_base_r4_except_the_string_decimal() {
    if kanta().is_none() {
        return;
    }
    for file in R4_EXAMPLES {
        let r = load(&format!("examples/{file}"));
        let issues = Validator::r4().validate(&r, &[]);
        let expected: &[&str] = if *file == "Observation-example-duplicate-7.json" {
            &["Observation.valueQuantity.value"]
        } else {
            &[]
        };
        assert_eq!(errors(&issues), expected, "{file}: {issues:#?}");
    }
}

#[test]
fn examples_against_the_official_profiles() {
    if kanta().is_none() {
        return;
    }
    let verdicts: &[(&str, &[&str])] = &[
        ("examples/Observation-example-BodyWeight-min.json", &[]),
        ("examples/Observation-example-BodyWeight-max.json", &[]),
        ("examples/Observation-example-Bloodpressure-min.json", &[]),
        ("examples/Observation-example-CalorieIntake-min.json", &[]),
        ("examples/Observation-example-CalorieIntake-max.json", &[]),
        (
            "examples/Observation-example-CarbohydrateIntakeEstimated-min.json",
            &[],
        ),
        (
            "examples/Observation-example-ExerciseTracking-min.json",
            &[],
        ),
        ("examples/Observation-example-MET-min.json", &[]),
        (
            "examples/Observation-example-ModerateToVigorousPATime-min.json",
            &[],
        ),
        (
            "examples/Observation-example-ModerateToVigorousPATime-max.json",
            &[],
        ),
        ("examples/observation-example-StepsTaken-min.json", &[]),
        ("examples/Observation-example-StepsTaken-max.json", &[]),
        (
            "examples/MedicationAdministration-InsulinDosage-mandatory.json",
            &[],
        ),
        ("examples/example-patient.json", &[]),
        ("examples/bloodglucose-min.json", &["Observation"]),
        (
            "examples/observation-example-bloodglucose-astext.json",
            &["Observation"],
        ),
        (
            "examples/observation-example-bloodglucose-dataabsentreason.json",
            &["Observation"],
        ),
        (
            "examples/Bloodglucose-max.json",
            &[
                "Observation.category[0].coding[1].system",
                "Observation.category[0].coding[1].code",
            ],
        ),
        (
            "conformance/example-CarePlan-mandatory.json",
            &["CarePlan.identifier[0].system", "CarePlan.status"],
        ),
        (
            "conformance/example-CarePlan-optional.json",
            &[
                "CarePlan.identifier[0].system",
                "CarePlan.identifier[1].system",
            ],
        ),
    ];
    for (file, expected) in verdicts {
        let r = load(file);
        let issues = validator().validate(&r, &declared_profiles(&r));
        assert_eq!(errors(&issues), *expected, "{file}: {issues:#?}");
    }
}

#[test]
fn profile_failures_say_what_is_wrong() {
    if kanta().is_none() {
        return;
    }
    let r = load("conformance/example-CarePlan-mandatory.json");
    let issues = validator().validate(&r, &declared_profiles(&r));
    assert!(issues.iter().any(|i| i.message
        == "CarePlan.status: value 'active' does not match the fixed value 'completed'"));
    let r = load("examples/bloodglucose-min.json");
    let issues = validator().validate(&r, &declared_profiles(&r));
    assert!(issues.iter().any(|i| i.message.contains(
        "constraint PHR-2 failed: When using code '15074-8' also code '14743-9' SHALL be used"
    )));
    let r = load("examples/Bloodglucose-max.json");
    let issues = validator().validate(&r, &declared_profiles(&r));
    let warning = issues
        .iter()
        .find(|i| i.severity == Severity::Warning)
        .expect("a warning about the unknown second profile");
    assert!(
        warning
            .message
            .contains("other-bloodglucose-structuredefinition is not known here")
    );
}

#[test]
fn every_entry_of_the_r4_diabetes_bundle_passes_its_profile() {
    if kanta().is_none() {
        return;
    }
    let bundle = load("examples/diabetes-data-bundle-kantaphr-r4-en.json");
    let entries = bundle["entry"].as_array().unwrap();
    assert_eq!(entries.len(), 300);
    for (i, e) in entries.iter().enumerate() {
        let r = &e["resource"];
        let profiles = declared_profiles(r);
        assert!(!profiles.is_empty());
        let issues = validator().validate(r, &profiles);
        assert!(issues.is_empty(), "entry {i}: {issues:#?}");
    }
}

#[test]
fn kanta_profile_rules_catch_broken_copies() {
    if kanta().is_none() {
        return;
    }
    let weight = load("examples/Observation-example-BodyWeight-min.json");
    let check = |mutate: &dyn Fn(&mut Value), expression: &str, text: &str| {
        let mut r = weight.clone();
        mutate(&mut r);
        let issues = validator().validate(
            &r,
            &["http://phr.kanta.fi/StructureDefinition/fiphr-sd-bodyweight"],
        );
        let errs: Vec<&Issue> = issues.iter().filter(|i| i.is_error()).collect();
        assert_eq!(errs.len(), 1, "{expression}: {issues:#?}");
        assert_eq!(errs[0].expression.as_deref(), Some(expression));
        assert!(errs[0].message.contains(text), "{}", errs[0].message);
    };
    // fixed value
    check(
        &|r| r["status"] = "preliminary".into(),
        "Observation.status",
        "value 'preliminary' does not match the fixed value 'final'",
    );
    // fixed unit inside the profile's valueQuantity
    check(
        &|r| r["valueQuantity"]["unit"] = "g".into(),
        "Observation.valueQuantity.unit",
        "does not match the fixed value 'kg'",
    );
    // max 0 in the profile
    check(
        &|r| r["bodySite"] = serde_json::json!({"text": "arm"}),
        "Observation.bodySite",
        "not allowed here (max 0)",
    );
    // min 1 in the profile
    check(
        &|r| {
            r.as_object_mut().unwrap().remove("issued");
        },
        "Observation.issued",
        "minimum required = 1",
    );
    // required slice (meta.profile:fiphrProfile) missing
    check(
        &|r| r["meta"]["profile"] = serde_json::json!(["http://example.org/other"]),
        "Observation.meta.profile",
        "slice 'fiphrProfile' requires at least 1",
    );
    // required binding in the profile (language)
    check(
        &|r| r["language"] = "xx-notalanguage".into(),
        "Observation.language",
        "not in the value set http://hl7.org/fhir/ValueSet/languages (required binding)",
    );
    // reference target restricted to the PHR patient profile's type
    check(
        &|r| r["performer"][0]["reference"] = "Practitioner/x".into(),
        "Observation.performer[0].reference",
        "a reference to a Practitioner is not allowed here",
    );
}
