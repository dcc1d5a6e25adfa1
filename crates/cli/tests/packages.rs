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
fn a_bundle_is_validated_whole_then_entry_by_entry() {
    let tmp = tempfile::tempdir().unwrap();
    let bundle = json!({
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"fullUrl": format!("urn:uuid:{}", uuid()), "resource": kanta_example(WEIGHT)},
            {"fullUrl": format!("urn:uuid:{}", uuid()), "resource": broken_weight()}
        ]
    });
    let path = write_json(tmp.path(), "bundle.json", &bundle);
    let output = phr().args(["validate", &path]).output().unwrap();
    assert!(!output.status.success());
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(stdout.contains(&format!("{path}: valid")), "{stdout}");
    assert!(stdout.contains("#entry[0]: valid"), "{stdout}");
    assert!(stdout.contains("#entry[1]: "), "{stdout}");
    assert!(
        String::from_utf8(output.stderr)
            .unwrap()
            .contains("1 of 3 resources are not valid")
    );

    // The Bundle's own rules: an entry without fullUrl in a collection is the Bundle's fault.
    let mut no_full_url = bundle.clone();
    no_full_url["entry"][1] = json!({"resource": kanta_example(WEIGHT)});
    let path = write_json(tmp.path(), "no-full-url.json", &no_full_url);
    let output = phr().args(["validate", "--json", &path]).output().unwrap();
    assert!(!output.status.success());
    let lines: Vec<Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(lines[0]["resource"], path.as_str());
    assert!(
        lines[0]["outcome"]["issue"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["severity"] == "error" && i["expression"][0] == "Bundle.entry[1]"),
        "{}",
        lines[0]
    );
}

#[test]
fn a_byte_order_mark_is_accepted_and_bad_json_is_placed_by_line_and_column() {
    let tmp = tempfile::tempdir().unwrap();
    let mut text = b"\xEF\xBB\xBF".to_vec();
    text.extend(serde_json::to_vec_pretty(&kanta_example(WEIGHT)).unwrap());
    let bom = tmp.path().join("bom.json");
    std::fs::write(&bom, &text).unwrap();
    phr_ok(&["validate", bom.to_str().unwrap()]);

    let broken = tmp.path().join("broken.json");
    std::fs::write(
        &broken,
        "{\n  \"resourceType\": \"Observation\",\n  \"status\": \"final\",\n}\n",
    )
    .unwrap();
    let err = phr_fails(&["validate", broken.to_str().unwrap()]);
    assert!(err.contains("line 4, column 1"), "{err}");

    let duplicate = tmp.path().join("duplicate.json");
    std::fs::write(&duplicate, "{\"resourceType\": \"Basic\",\n \"code\": {\"text\": \"a\"},\n \"code\": {\"text\": \"b\"}}").unwrap();
    let err = phr_fails(&["validate", duplicate.to_str().unwrap()]);
    assert!(
        err.contains("line 3, column 2") && err.contains("duplicate property name 'code'"),
        "{err}"
    );
}

#[test]
fn a_package_published_with_only_differentials_judges_like_the_published_snapshots() {
    // Kela's definitions with their snapshots removed: the snapshots are generated.
    let tmp = tempfile::tempdir().unwrap();
    let package = tmp.path().join("package");
    std::fs::create_dir(&package).unwrap();
    for entry in std::fs::read_dir(shared(OFFICIAL)).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read(&path).unwrap();
        let mut value = phr_fhir::json::parse(&text).unwrap();
        if let Some(obj) = value.as_object_mut() {
            obj.remove("snapshot");
        }
        write_json(
            &package,
            path.file_name().unwrap().to_str().unwrap(),
            &value,
        );
    }
    let package = package.to_str().unwrap();
    let good = shared(&format!("kanta/examples/{WEIGHT}"));
    let bad = write_json(tmp.path(), "bad.json", &broken_weight());
    phr_ok(&[
        "validate",
        "--no-catalog",
        "--package",
        package,
        good.to_str().unwrap(),
    ]);
    let err = phr_fails(&["validate", "--no-catalog", "--package", package, &bad]);
    assert!(err.contains("1 of 1 resources are not valid"), "{err}");
}

#[test]
fn unknown_extensions_are_errors_under_the_strict_option_and_finnish_profiles() {
    let tmp = tempfile::tempdir().unwrap();
    let mut observation = json!({"resourceType": "Observation", "status": "final",
        "code": {"text": "note"},
        "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>"},
        "extension": [{"url": "http://example.org/unknown", "valueString": "x"}]});
    let path = write_json(tmp.path(), "plain.json", &observation);
    let out = phr_ok(&["validate", &path]);
    assert!(
        out.contains("warning") && out.contains("http://example.org/unknown"),
        "{out}"
    );
    let err = phr_fails(&["validate", "--strict-extensions", &path]);
    assert!(err.contains("1 of 1 resources are not valid"), "{err}");

    let mut weight = kanta_example(WEIGHT);
    weight["extension"] = observation["extension"].take();
    let path = write_json(tmp.path(), "weight.json", &weight);
    let output = phr().args(["validate", &path]).output().unwrap();
    assert!(!output.status.success());
    assert!(
        String::from_utf8(output.stdout)
            .unwrap()
            .contains("not known here, and unknown extensions are not allowed")
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
