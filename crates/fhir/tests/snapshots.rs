//! Snapshot generation against Kela's published snapshots: every official Finnish PHR
//! StructureDefinition (`../shared/kanta/conformance/`) is loaded with its snapshot removed,
//! so that its snapshot is generated from its differential and its base (generated too, for
//! profiles on profiles), and compared with the published one on every element property that
//! matters to validation.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use phr_fhir::Definitions;
use serde_json::{Value, json};

fn conformance() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/kanta/conformance")
}

fn published() -> Vec<Value> {
    let mut out = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(conformance())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let v: Value = serde_json::from_str(text.trim_start_matches('\u{feff}')).unwrap();
        if v["resourceType"] == "StructureDefinition" {
            out.push(v);
        }
    }
    out
}

/// Invariants every element of a type carries by its type (its type definition's root
/// constraints, `ele-1`): published snapshots repeat them on each element, the generated
/// ones leave them to the type, which the validator walks anyway.
fn type_constraints(defs: &Definitions, e: &Value) -> HashSet<String> {
    let mut keys: HashSet<String> = HashSet::from(["ele-1".to_string()]);
    // A choice narrowed to other types keeps the invariants of the types it had (`qty-3`
    // on a CodeableConcept value), which hold trivially.
    let all = [
        "Quantity",
        "SimpleQuantity",
        "Reference",
        "Period",
        "Range",
        "Ratio",
    ];
    for t in e["type"]
        .as_array()
        .into_iter()
        .flatten()
        .cloned()
        .chain(all.iter().map(|c| json!({"code": c})))
    {
        let code = t["code"].as_str().unwrap_or_default();
        let mut urls = vec![format!("http://hl7.org/fhir/StructureDefinition/{code}")];
        urls.extend(
            t["profile"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| p.as_str().map(str::to_string)),
        );
        for url in urls {
            if let Some(s) = defs.snapshot_json(&url) {
                for c in s[0]["constraint"].as_array().into_iter().flatten() {
                    keys.insert(c["key"].as_str().unwrap_or_default().to_string());
                }
            }
        }
    }
    keys
}

/// What validation reads from an element, in a comparable form.
fn essentials(e: &Value, inherited: &HashSet<String>) -> BTreeMap<&'static str, Value> {
    let mut m = BTreeMap::new();
    m.insert("path", e["path"].clone());
    m.insert("min", e["min"].clone());
    m.insert("max", e["max"].clone());
    m.insert("sliceName", e["sliceName"].clone());
    let types: Vec<Value> = e["type"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| {
            // `id` and `url` are typed with FHIRPath system types, which some snapshots
            // leave out.
            let code = t["code"]
                .as_str()
                .filter(|c| !c.starts_with("http://hl7.org/fhirpath/System."));
            json!({"code": code, "profile": t["profile"], "targetProfile": t["targetProfile"]})
        })
        .collect();
    m.insert("type", json!(types));
    let values: BTreeMap<String, Value> = e
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| {
            ["fixed", "pattern", "minValue", "maxValue"]
                .iter()
                .any(|p| {
                    k.strip_prefix(p)
                        .is_some_and(|r| r.starts_with(|c: char| c.is_ascii_uppercase()))
                })
                || *k == "maxLength"
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    m.insert("values", json!(values));
    m.insert(
        "binding",
        json!({"strength": e["binding"]["strength"], "valueSet": e["binding"]["valueSet"]}),
    );
    let mut constraints: Vec<(String, String)> = e["constraint"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            (
                c["key"].as_str().unwrap_or_default().to_string(),
                c["expression"].as_str().unwrap_or_default().to_string(),
            )
        })
        .filter(|(k, _)| !inherited.contains(k))
        .collect();
    constraints.sort();
    constraints.dedup();
    m.insert("constraint", json!(constraints));
    let path = e["path"].as_str().unwrap_or_default();
    let is_extension = path.ends_with(".extension") || path.ends_with(".modifierExtension");
    // Every extension element is sliced by url; published snapshots say so everywhere.
    let url_slicing = e["slicing"]["discriminator"] == json!([{"type": "value", "path": "url"}])
        && e["slicing"]["rules"] == "open";
    m.insert(
        "slicing",
        if e["slicing"].is_null() || (is_extension && url_slicing) {
            Value::Null
        } else {
            json!({"discriminator": e["slicing"]["discriminator"], "rules": e["slicing"]["rules"],
            "ordered": e["slicing"]["ordered"].as_bool().unwrap_or(false)})
        },
    );
    m
}

/// Where Kela's published snapshot differs from the one its own differential and base give,
/// and why the generated one is right.
const JUSTIFIED: &[(&str, &str)] = &[
    // Kela's snapshot leaves out `value[x]` itself and keeps only its type slice; the
    // generated one keeps the choice with closed type slicing, so another type is rejected.
    (
        "fiphr-ext-boolean: Extension.value[x] extra",
        "the sliced choice belongs in the snapshot",
    ),
    // These two snapshots were generated on an earlier fiphr-sd-vitalsigns: the published
    // base prohibits `hasMember` (max 0) and does not require `code.coding`.
    (
        "fiphr-sd-bloodpressure: Observation.code.coding min",
        "stale base",
    ),
    (
        "fiphr-sd-bloodpressure: Observation.hasMember max",
        "stale base",
    ),
    (
        "fiphr-sd-bodyweight: Observation.code.coding min",
        "stale base",
    ),
    (
        "fiphr-sd-bodyweight: Observation.hasMember max",
        "stale base",
    ),
    // Generated on an earlier fiphr-sd-nutrition: the published base requires `meta` and
    // slices `category.coding` by system and code.
    ("fiphr-sd-calorieintake: Observation.meta min", "stale base"),
    (
        "fiphr-sd-calorieintake: Observation.category.coding slicing",
        "stale base",
    ),
];

#[test]
fn generated_snapshots_equal_kelas_published_ones() {
    let official = published();
    assert!(
        official.len() >= 20,
        "Kela's StructureDefinitions are there"
    );
    let stripped: Vec<Value> = official
        .iter()
        .map(|sd| {
            let mut sd = sd.clone();
            sd.as_object_mut().unwrap().remove("snapshot");
            sd
        })
        .collect();
    let mut defs = (*Definitions::r4()).clone();
    let report = defs.add_resources(stripped.iter());
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    assert_eq!(report.generated_snapshots.len(), official.len());
    let mut differences = Vec::new();
    for sd in &official {
        let url = sd["url"].as_str().unwrap();
        let generated = defs.snapshot_json(url).unwrap();
        let by_id: BTreeMap<&str, &Value> = generated
            .iter()
            .map(|e| (e["id"].as_str().unwrap(), e))
            .collect();
        for e in sd["snapshot"]["element"].as_array().unwrap() {
            let id = e["id"].as_str().unwrap();
            let Some(g) = by_id.get(id) else {
                differences.push(format!("{url}: {id} missing"));
                continue;
            };
            let inherited = type_constraints(&defs, e);
            let (a, b) = (essentials(e, &inherited), essentials(g, &inherited));
            for (k, v) in &a {
                if b[k] != *v {
                    differences.push(format!(
                        "{url}: {id} {k}: published {v}, generated {}",
                        b[k]
                    ));
                }
            }
        }
        let published_ids: std::collections::HashSet<&str> = sd["snapshot"]["element"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_str().unwrap())
            .collect();
        for id in by_id.keys() {
            if !published_ids.contains(id) {
                differences.push(format!("{url}: {id} extra"));
            }
        }
    }
    let short = |d: &str| d.replace("http://phr.kanta.fi/StructureDefinition/", "");
    let unexplained: Vec<String> = differences
        .iter()
        .map(|d| short(d))
        .filter(|d| !JUSTIFIED.iter().any(|(j, _)| d.starts_with(j)))
        .collect();
    assert!(
        unexplained.is_empty(),
        "{} differences:\n{}",
        unexplained.len(),
        unexplained.join("\n")
    );
    for (j, why) in JUSTIFIED {
        assert!(
            differences.iter().any(|d| short(d).starts_with(j)),
            "documented difference no longer occurs ({why}): {j}"
        );
    }
}

#[test]
fn generated_snapshots_give_the_published_verdicts_on_kanta_examples() {
    let official = published();
    let stripped: Vec<Value> = official
        .iter()
        .map(|sd| {
            let mut sd = sd.clone();
            sd.as_object_mut().unwrap().remove("snapshot");
            sd
        })
        .collect();
    let mut with_published = (*Definitions::r4()).clone();
    with_published.load_dir(conformance()).unwrap();
    let mut with_generated = (*Definitions::r4()).clone();
    with_generated.load_dir(conformance()).unwrap();
    with_generated.add_resources(stripped.iter());
    let published = phr_fhir::Validator::new(std::sync::Arc::new(with_published));
    let generated = phr_fhir::Validator::new(std::sync::Arc::new(with_generated));
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/kanta/examples");
    let mut resources = Vec::new();
    for f in std::fs::read_dir(examples).unwrap() {
        let path = f.unwrap().path();
        if path.extension().is_none_or(|x| x != "json") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let v: Value = serde_json::from_str(text.trim_start_matches('\u{feff}')).unwrap();
        if v["resourceType"] == "Bundle" {
            for e in v["entry"].as_array().into_iter().flatten() {
                resources.push((path.display().to_string(), e["resource"].clone()));
            }
        } else {
            resources.push((path.display().to_string(), v));
        }
    }
    assert!(resources.len() > 300);
    let mut disagreements = Vec::new();
    for (name, r) in &resources {
        let profiles = phr_fhir::declared_profiles(r);
        let a = phr_fhir::outcome::has_errors(&published.validate(r, &profiles));
        let b = phr_fhir::outcome::has_errors(&generated.validate(r, &profiles));
        if a != b {
            disagreements.push(format!("{name}: published {a}, generated {b}"));
        }
    }
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
}
