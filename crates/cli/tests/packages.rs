//! `phr validate` and the server's `--package` option: the snapshot validator
//! loads folders of official conformance JSON, and judges the same as the catalogue.

mod common;

use common::*;
use serde_json::{Value, json};

const WEIGHT: &str = "Observation-example-BodyWeight-min.json";
const OFFICIAL: &str = "kanta/conformance";

fn write_json(dir: &std::path::Path, name: &str, value: &Value) -> String {
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_vec_pretty(value).unwrap()).unwrap();
    path.display().to_string()
}

/// The weight example with its unit broken (the profile fixes `kg`).
fn broken_weight() -> Value {
    let mut weight = kanta_example(WEIGHT);
    weight["valueQuantity"]["code"] = json!("[lb_av]");
    weight
}

#[test]
fn validate_accepts_a_good_example_and_names_what_is_wrong_in_a_bad_one() {
    let tmp = tempfile::tempdir().unwrap();
    let good = shared(&format!("kanta/examples/{WEIGHT}"));
    let good = good.to_str().unwrap();
    let out = phr_ok(&["validate", good]);
    assert!(out.contains(": valid"), "{out}");

    let bad = write_json(tmp.path(), "bad.json", &broken_weight());
    let err = phr_fails(&["validate", &bad]);
    assert!(err.contains("1 of 1 resources are not valid"), "{err}");
    let output = phr().args(["validate", "--json", &bad]).output().unwrap();
    let line: Value = serde_json::from_slice(&output.stdout).expect("one JSON line");
    assert_eq!(line["resource"], bad.as_str());
    assert_eq!(line["outcome"]["resourceType"], "OperationOutcome");
    assert!(
        line["outcome"]["issue"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["severity"] == "error"
                && i["expression"][0]
                    .as_str()
                    .unwrap_or("")
                    .contains("valueQuantity")),
        "{line}"
    );
}

#[test]
fn official_definitions_alone_give_the_same_verdicts_as_the_catalogue() {
    let tmp = tempfile::tempdir().unwrap();
    let official = shared(OFFICIAL);
    let official = official.to_str().unwrap();
    let good = shared(&format!("kanta/examples/{WEIGHT}"));
    let good = good.to_str().unwrap();
    let bad = write_json(tmp.path(), "bad.json", &broken_weight());
    for args in [vec![], vec!["--no-catalog", "--package", official]] {
        let mut ok = vec!["validate"];
        ok.extend(&args);
        ok.push(good);
        phr_ok(&ok);
        let mut fails = vec!["validate"];
        fails.extend(&args);
        fails.push(&bad);
        phr_fails(&fails);
    }
    // Without the catalogue or a package, a Kanta profile is unknown: said, not ignored.
    let err = phr_fails(&[
        "validate",
        "--no-catalog",
        "--profile",
        "http://phr.kanta.fi/StructureDefinition/fiphr-sd-bodyweight",
        good,
    ]);
    assert!(err.contains("unknown profile"), "{err}");
}

#[test]
fn a_bundle_is_validated_entry_by_entry() {
    let tmp = tempfile::tempdir().unwrap();
    let bundle = json!({
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": kanta_example(WEIGHT)}, {"resource": broken_weight()}]
    });
    let path = write_json(tmp.path(), "bundle.json", &bundle);
    let output = phr().args(["validate", &path]).output().unwrap();
    assert!(!output.status.success());
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(stdout.contains("#entry[0]: valid"), "{stdout}");
    assert!(stdout.contains("#entry[1]: "), "{stdout}");
    assert!(
        String::from_utf8(output.stderr)
            .unwrap()
            .contains("1 of 2 resources are not valid")
    );
}

#[test]
fn the_server_validates_with_a_loaded_package() {
    let official = shared(OFFICIAL);
    let server = Server::start(&["--open-sandbox", "--package", official.to_str().unwrap()]);
    let patient = create_patient(&server, &uuid());
    let mut weight = kanta_example(WEIGHT);
    weight["subject"]["reference"] = json!(format!("Patient/{patient}"));
    weight["identifier"][0]["value"] = json!(format!("urn:uuid:{}", uuid()));
    if weight.get("performer").is_some() {
        weight["performer"][0]["reference"] = json!(format!("Patient/{patient}"));
    }
    let stored = server.post("Observation", &weight);
    assert_eq!(stored.status(), 201, "{}", stored.text().unwrap());
    let mut bad = weight.clone();
    bad["valueQuantity"]["code"] = json!("[lb_av]");
    bad["identifier"][0]["value"] = json!(format!("urn:uuid:{}", uuid()));
    assert_eq!(server.post("Observation", &bad).status(), 422);
}

#[test]
fn the_server_refuses_to_start_with_a_package_it_cannot_read() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("broken.json"), "{ not json").unwrap();
    let data = tempfile::tempdir().unwrap();
    let output = phr()
        .args([
            "serve",
            "--open-sandbox",
            "--listen",
            "127.0.0.1:0",
            "--package",
        ])
        .arg(tmp.path())
        .arg("--data")
        .arg(data.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("definitions package"), "{stderr}");
    assert!(stderr.contains("broken.json"), "{stderr}");
}
