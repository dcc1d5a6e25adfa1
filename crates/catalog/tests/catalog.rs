//! The catalogue as a whole: it builds, what it generates is well-formed, and the metadata the
//! portal reads says what the declarations say.

use std::collections::HashSet;

use phr_catalog::{Catalog, ChartKind, Kind, Lang, urls};
use phr_fhir::fhirpath::CompiledPath;
use serde_json::{Value, json};

fn sd(url: &str) -> &'static Value {
    Catalog::get()
        .structure_definition(url)
        .unwrap_or_else(|| panic!("{url} is not in the catalogue"))
}

fn snapshot_element<'a>(sd: &'a Value, id: &str) -> &'a Value {
    sd["snapshot"]["element"]
        .as_array()
        .and_then(|list| list.iter().find(|e| e["id"] == id))
        .unwrap_or_else(|| panic!("{} has no element {id}", sd["url"]))
}

#[test]
fn catalogue_builds_from_its_declarations() {
    if let Err(e) = Catalog::build() {
        panic!("{e}");
    }
}

#[test]
fn snapshots_have_unique_ids_and_paths_matching_ids() {
    for sd in Catalog::get().structure_definitions() {
        let elements = sd["snapshot"]["element"].as_array().expect("snapshot");
        let mut seen = HashSet::new();
        for e in elements {
            let id = e["id"].as_str().expect("id");
            assert!(seen.insert(id), "{}: duplicate element {id}", sd["url"]);
            assert_eq!(
                e["path"].as_str(),
                Some(phr_catalog::model::path_of(id).as_str()),
                "{}: path of {id}",
                sd["url"]
            );
        }
        for d in sd["differential"]["element"]
            .as_array()
            .expect("differential")
        {
            let id = d["id"].as_str().expect("id");
            assert!(
                seen.contains(id),
                "{}: differential {id} not in snapshot",
                sd["url"]
            );
        }
    }
}

#[test]
fn slices_follow_their_sliced_element_and_its_children() {
    for sd in Catalog::get().structure_definitions() {
        let ids: Vec<&str> = sd["snapshot"]["element"]
            .as_array()
            .expect("snapshot")
            .iter()
            .filter_map(|e| e["id"].as_str())
            .collect();
        for (i, id) in ids.iter().enumerate() {
            let Some((base, _)) = id.rsplit_once(':') else {
                continue;
            };
            if base.contains('.') && !id[base.len()..].contains('.') {
                let base_at = ids.iter().position(|x| x == &base);
                assert!(
                    base_at.is_some_and(|b| b < i),
                    "{}: slice {id} before its base {base}",
                    sd["url"]
                );
                // Every element between the base and the slice lies inside the base.
                for between in &ids[base_at.unwrap_or(0) + 1..i] {
                    assert!(
                        between.starts_with(base),
                        "{}: {between} between {base} and its slice {id}",
                        sd["url"]
                    );
                }
            }
        }
    }
}

#[test]
fn concrete_profiles_fix_their_own_url_in_meta_profile() {
    let catalog = Catalog::get();
    for profile in catalog.profiles().iter().filter(|p| p.is_instantiable()) {
        let sd = sd(profile.url);
        let rt = profile.type_name;
        let fixed = if rt == "Patient" {
            snapshot_element(sd, "Patient.meta.profile")["fixedCanonical"].clone()
        } else if profile.url == urls::VITAL_SIGNS {
            continue;
        } else {
            snapshot_element(sd, &format!("{rt}.meta.profile:fiphrProfile"))["fixedCanonical"]
                .clone()
        };
        assert_eq!(fixed, json!(profile.url), "{}", profile.url);
    }
}

#[test]
fn kanta_units_and_codes_are_fixed_as_kanta_fixes_them() {
    let glucose = sd(urls::BLOOD_GLUCOSE);
    assert_eq!(
        snapshot_element(glucose, "Observation.value[x].unit")["fixedString"],
        "mmol/l"
    );
    assert_eq!(
        snapshot_element(glucose, "Observation.value[x].code")["fixedCode"],
        "mmol/L"
    );
    let bp = sd(urls::BLOOD_PRESSURE);
    assert_eq!(snapshot_element(bp, "Observation.value[x]")["max"], "0");
    assert_eq!(snapshot_element(bp, "Observation.component")["min"], 2);
    assert_eq!(
        snapshot_element(bp, "Observation.component:systolic.value[x].code")["fixedCode"],
        "mm[Hg]"
    );
    let steps = sd(urls::STEPS);
    assert_eq!(
        snapshot_element(steps, "Observation.value[x].unit")["fixedString"],
        "1"
    );
    let height = sd(urls::BODY_HEIGHT);
    assert_eq!(
        snapshot_element(height, "Observation.code.coding:fiphrCode.code")["fixedCode"],
        "8302-2"
    );
    assert_eq!(
        snapshot_element(height, "Observation.value[x].code")["fixedCode"],
        "cm"
    );
}

#[test]
fn glucose_declares_kantas_invariants() {
    let root = snapshot_element(sd(urls::BLOOD_GLUCOSE), "Observation");
    let keys: Vec<&str> = root["constraint"]
        .as_array()
        .expect("constraints")
        .iter()
        .filter_map(|c| c["key"].as_str())
        .collect();
    for key in ["PHR-1", "PHR-2", "PHR-3", "PHR-5", "vs-2", "obs-6"] {
        assert!(keys.contains(&key), "{key} missing from {keys:?}");
    }
    // Kela's coding-level rule, on each coding as Kela has it.
    let coding = snapshot_element(sd(urls::BLOOD_GLUCOSE), "Observation.code.coding");
    assert!(
        coding["constraint"]
            .as_array()
            .is_some_and(|l| l.iter().any(|c| c["key"] == "PHR-4"))
    );
}

/// Every invariant the catalogue adds parses, and evaluates as Kanta means it.
#[test]
fn invariants_compile_and_decide_as_declared() {
    let mut count = 0;
    for sd in Catalog::get().structure_definitions() {
        for e in sd["snapshot"]["element"].as_array().expect("snapshot") {
            for c in e["constraint"].as_array().into_iter().flatten() {
                if c["source"]
                    .as_str()
                    .is_some_and(|s| s.starts_with(urls::SD_BASE))
                {
                    let expr = c["expression"].as_str().expect("expression");
                    CompiledPath::compile(expr).unwrap_or_else(|e| panic!("{e}"));
                    count += 1;
                }
            }
        }
    }
    assert!(count >= 8, "only {count} catalogue invariants");
    let glucose = |codes: &[&str]| {
        json!({"resourceType": "Observation", "code": {"coding": codes.iter()
            .map(|c| json!({"system": "http://loinc.org", "code": c})).collect::<Vec<_>>()}})
    };
    let holds = |key: &str, resource: &Value| {
        let inv = snapshot_element(sd(urls::BLOOD_GLUCOSE), "Observation")["constraint"]
            .as_array()
            .and_then(|l| l.iter().find(|c| c["key"] == key))
            .expect("invariant")
            .clone();
        CompiledPath::compile(inv["expression"].as_str().expect("expression"))
            .and_then(|p| p.evaluate_bool(resource))
            .expect("evaluates")
    };
    assert_eq!(holds("PHR-2", &glucose(&["15074-8"])), Some(false));
    assert_eq!(
        holds("PHR-2", &glucose(&["15074-8", "14743-9"])),
        Some(true)
    );
    assert_eq!(holds("PHR-3", &glucose(&["14743-9"])), Some(false));
    assert_eq!(holds("PHR-1", &glucose(&["14745-4"])), Some(true));
    assert_eq!(holds("PHR-1", &glucose(&["2339-0"])), Some(false));
    let mut dar = glucose(&["14745-4"]);
    dar["dataAbsentReason"] =
        json!({"coding": [{"system": urls::DATA_ABSENT_REASON, "code": "unknown"}]});
    assert_eq!(holds("PHR-5", &dar), Some(false));
    dar["dataAbsentReason"]["coding"][0]["code"] = json!("error");
    assert_eq!(holds("PHR-5", &dar), Some(true));
    dar["dataAbsentReason"]["coding"][0]["code"] = json!("astext");
    assert_eq!(holds("PHR-5", &dar), Some(true));
    assert_eq!(holds("PHR-5", &glucose(&["14745-4"])), Some(true));
    let phr4 = CompiledPath::compile(phr_catalog_invariant("PHR-4")).expect("compiles");
    let coding = |system: &str, code: &str| json!({"system": system, "code": code});
    assert_eq!(
        phr4.evaluate_bool(&coding("http://loinc.org", "15074-8"))
            .expect("evaluates"),
        Some(true)
    );
    assert_eq!(
        phr4.evaluate_bool(&coding("http://example.org", "15074-8"))
            .expect("evaluates"),
        Some(false)
    );
    assert_eq!(
        phr4.evaluate_bool(&coding("http://example.org", "12345"))
            .expect("evaluates"),
        Some(true)
    );
}

/// The expression of glucose's coding-level invariant `key`.
fn phr_catalog_invariant(key: &str) -> &'static str {
    snapshot_element(sd(urls::BLOOD_GLUCOSE), "Observation.code.coding")["constraint"]
        .as_array()
        .and_then(|l| l.iter().find(|c| c["key"] == key))
        .and_then(|c| c["expression"].as_str())
        .expect("invariant")
}

#[test]
fn observation_profiles_exclude_abstract_bases() {
    let urls: Vec<&str> = Catalog::get()
        .profiles_for_type("Observation")
        .map(|p| p.url)
        .collect();
    assert!(urls.contains(&urls::BODY_WEIGHT));
    assert!(urls.contains(&urls::BODY_HEIGHT));
    assert!(urls.contains(&urls::VITAL_SIGNS));
    assert!(!urls.contains(&urls::FITNESS));
    assert!(!urls.contains(&urls::NUTRITION));
    assert_eq!(urls.len(), 11);
    let profile = Catalog::get()
        .profile(&format!("{}|0.1.0", urls::BLOOD_PRESSURE))
        .expect("versioned canonical resolves");
    assert_eq!(profile.names.get(Lang::Sv), "Blodtryck");
}

#[test]
fn names_come_in_three_languages() {
    let catalog = Catalog::get();
    assert_eq!(catalog.display("8867-4", Lang::Fi), Some("Syke"));
    assert_eq!(catalog.display("8867-4", Lang::Sv), Some("Puls"));
    assert_eq!(catalog.display("8867-4", Lang::En), Some("Heart rate"));
    assert_eq!(
        catalog.display_in(urls::CS_CAREPLAN_CATEGORY, "45", Lang::Sv),
        Some("Sömncoachning")
    );
    assert_eq!(
        catalog.display_in(urls::CS_INSULIN_CODE, "ins-short-fast", Lang::Fi),
        Some("Lyhytvaikutteinen insuliini")
    );
    assert_eq!(catalog.display("no-such-code", Lang::Fi), None);
    let bp = catalog
        .content(Kind::BloodPressure)
        .expect("blood pressure");
    assert_eq!(
        (bp.name(Lang::Fi), bp.name(Lang::Sv), bp.name(Lang::En)),
        ("Verenpaine", "Blodtryck", "Blood pressure")
    );
}

#[test]
fn portal_metadata_follows_the_declarations() {
    let catalog = Catalog::get();
    let bp = catalog.content(Kind::BloodPressure).expect("bp");
    assert_eq!(bp.chart, ChartKind::PairedLine);
    assert_eq!(
        bp.code_search().as_deref(),
        Some("http://loinc.org|85354-9")
    );
    let series: Vec<&str> = bp.series.iter().map(|s| s.code.code).collect();
    assert_eq!(series, ["8480-6", "8462-4"]);
    assert!(bp.series.iter().all(|s| s.unit.ucum == "mm[Hg]"));
    let glucose = catalog.content(Kind::BloodGlucose).expect("glucose");
    assert_eq!(
        glucose.code_search().as_deref(),
        Some("http://loinc.org|15074-8,http://loinc.org|14743-9,http://loinc.org|14745-4")
    );
    assert_eq!(
        glucose.unit.map(|u| (u.unit, u.ucum)),
        Some(("mmol/l", "mmol/L"))
    );
    let steps = catalog.content(Kind::Steps).expect("steps");
    assert_eq!(
        steps.code_search().as_deref(),
        Some("http://loinc.org|66334-4")
    );
    let heart = catalog.content(Kind::HeartRate).expect("heart rate");
    assert_eq!(heart.profile, urls::VITAL_SIGNS);
    let kinds: HashSet<Kind> = catalog.contents().iter().map(|c| c.kind).collect();
    assert_eq!(
        kinds.len(),
        catalog.contents().len(),
        "one content per kind"
    );
    assert!(catalog.contents().len() >= 22);
}

#[test]
fn content_of_classifies_instances() {
    let catalog = Catalog::get();
    let heart = json!({"resourceType": "Observation",
        "meta": {"profile": [urls::VITAL_SIGNS]},
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]}});
    assert_eq!(
        catalog.content_of(&heart).map(|c| c.kind),
        Some(Kind::HeartRate)
    );
    let weight = json!({"resourceType": "Observation",
        "meta": {"profile": [urls::BODY_WEIGHT, "http://example.org/x"]}});
    assert_eq!(
        catalog.content_of(&weight).map(|c| c.kind),
        Some(Kind::BodyWeight)
    );
    let unknown = json!({"resourceType": "Observation",
        "meta": {"profile": [urls::VITAL_SIGNS]},
        "code": {"coding": [{"system": "http://loinc.org", "code": "0000-0"}]}});
    assert!(catalog.content_of(&unknown).is_none());
}

#[test]
fn terminology_resources_carry_their_codes() {
    let catalog = Catalog::get();
    let find = |list: &'static [Value], url: &str| {
        list.iter()
            .find(|r| r["url"] == url)
            .unwrap_or_else(|| panic!("{url} missing"))
    };
    let careplan = find(catalog.code_systems(), urls::CS_CAREPLAN_CATEGORY);
    assert_eq!(careplan["concept"].as_array().map(Vec::len), Some(48));
    assert_eq!(careplan["content"], "complete");
    let vnr = find(catalog.code_systems(), urls::CS_VNR);
    assert_eq!(vnr["content"], "not-present");
    let activity = find(catalog.value_sets(), urls::VS_EXERCISE_ACTIVITY);
    assert_eq!(
        activity["compose"]["include"][0]["concept"]
            .as_array()
            .map(Vec::len),
        Some(49)
    );
    let confidentiality = find(catalog.value_sets(), urls::VS_CONFIDENTIALITY);
    assert_eq!(
        confidentiality["compose"]["include"][0]["system"],
        urls::CONFIDENTIALITY
    );
    assert_eq!(catalog.code_systems().len(), 7);
    assert_eq!(catalog.value_sets().len(), 17);
}

/// Kela's official definition of `url`, from the shared reference folder (read once).
fn official(url: &str) -> Option<&'static Value> {
    static ALL: std::sync::OnceLock<Vec<Value>> = std::sync::OnceLock::new();
    let all = ALL.get_or_init(|| {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/kanta/conformance"
        );
        std::fs::read_dir(dir)
            .expect("shared conformance folder")
            .filter_map(|entry| {
                let text = std::fs::read_to_string(entry.ok()?.path()).ok()?;
                serde_json::from_str::<Value>(&text).ok()
            })
            .filter(|r| r["resourceType"] == "StructureDefinition")
            .collect()
    });
    all.iter().find(|sd| sd["url"] == url)
}

/// The element path with slice names removed (`value[x]:valueQuantity` is `value[x]`).
fn plain(id: &str) -> String {
    phr_catalog::model::path_of(id)
}

/// (path, fixed property, value) of every fixed value, and every prohibited path.
fn facts(sd: &Value) -> (HashSet<(String, String, String)>, HashSet<String>) {
    let mut fixed = HashSet::new();
    let mut prohibited = HashSet::new();
    for e in sd["snapshot"]["element"].as_array().expect("snapshot") {
        let id = e["id"].as_str().unwrap_or_default();
        let path = plain(id);
        for (k, v) in e.as_object().expect("element") {
            if k.starts_with("fixed") {
                fixed.insert((path.clone(), k.clone(), v.to_string()));
            }
        }
        let last = id.rsplit('.').next().unwrap_or_default();
        if e["max"] == "0" && !last.contains(':') {
            prohibited.insert(path);
        }
    }
    (fixed, prohibited)
}

/// Whether `path` or one of its ancestors is in `set`.
fn under(path: &str, set: &HashSet<String>) -> bool {
    let parts: Vec<&str> = path.split('.').collect();
    (1..=parts.len()).any(|n| set.contains(&parts[..n].join(".")))
}

/// A transcription check independent of any validator: every value Kela's definitions fix,
/// and every element they prohibit, the catalogue fixes and prohibits too (or prohibits an
/// ancestor).
#[test]
fn every_fixed_value_and_prohibition_of_kelas_definitions_is_declared() {
    let mut compared = 0;
    for profile in Catalog::get().profiles() {
        let Some(kela) = official(profile.url) else {
            // The two definitions Kela never published.
            assert!(
                [urls::BODY_HEIGHT, urls::EXT_QUESTIONNAIRE_ENABLE_WHEN].contains(&profile.url),
                "{} has no official definition",
                profile.url
            );
            continue;
        };
        compared += 1;
        let (kela_fixed, kela_prohibited) = facts(kela);
        let (our_fixed, our_prohibited) = facts(sd(profile.url));
        for (path, key, value) in &kela_fixed {
            if under(path, &our_prohibited) {
                continue;
            }
            assert!(
                our_fixed.contains(&(path.clone(), key.clone(), value.clone())),
                "{}: Kela fixes {path} {key}={value}",
                profile.url
            );
        }
        for path in &kela_prohibited {
            assert!(
                under(path, &our_prohibited),
                "{}: Kela prohibits {path}",
                profile.url
            );
        }
    }
    assert_eq!(compared, 21, "every profile Kela published was compared");
}

#[test]
fn met_and_exercise_chart_their_measurements_not_their_conventions() {
    let catalog = Catalog::get();
    let met: Vec<&str> = catalog
        .content(Kind::MetByStandardRmr)
        .expect("met")
        .series
        .iter()
        .map(|s| s.code.code)
        .collect();
    assert_eq!(met, ["82261-9", "82262-7", "82263-5", "82271-8"]);
    let exercise: Vec<(&str, &str)> = catalog
        .content(Kind::ExerciseTracking)
        .expect("exercise")
        .series
        .iter()
        .map(|s| (s.code.code, s.unit.ucum))
        .collect();
    assert_eq!(exercise, [("55411-3", "min"), ("55421-2", "kcal")]);
}

#[test]
fn an_unknown_extension_is_an_error_under_a_finnish_phr_profile_only() {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/kanta/examples"
    );
    let text =
        std::fs::read_to_string(format!("{dir}/Observation-example-BodyWeight-min.json")).unwrap();
    let mut weight: Value = serde_json::from_str(text.trim_start_matches('\u{feff}')).unwrap();
    weight["extension"] = json!([{"url": "http://example.org/unknown", "valueString": "x"}]);
    let validator = Catalog::validator();
    let issues = validator.validate(&weight, &phr_fhir::declared_profiles(&weight));
    assert!(
        issues.iter().any(|i| i.is_error()
            && i.expression.as_deref() == Some("Observation.extension[0]")
            && i.message.contains("not known")),
        "{issues:#?}"
    );
    // Against base R4 alone the same extension is only a warning.
    let base = validator.validate(&weight, &[]);
    assert!(
        !base
            .iter()
            .any(|i| i.is_error() && i.expression.as_deref() == Some("Observation.extension[0]")),
        "{base:#?}"
    );
}

#[test]
fn served_code_systems_and_value_sets_pass_the_validator() {
    let validator = Catalog::validator();
    let mut problems = Vec::new();
    let catalog = Catalog::get();
    for r in catalog.code_systems().iter().chain(catalog.value_sets()) {
        for issue in validator.validate(r, &[]) {
            if issue.is_error() {
                problems.push(format!("{}: {}", r["url"], issue.message));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // The same rules as a package: nothing to report when loading them.
    let mut defs = phr_fhir::Definitions::r4().as_ref().clone();
    let report = defs.add_resources(Catalog::get().conformance_resources());
    assert!(report.problems.is_empty(), "{:?}", report.problems);
}
