//! `phr import` and `phr export` on a data folder: the Kanta batch Bundle imports (its
//! Patient first), a second import stores nothing new, rejected lines are reported with their
//! place and fail the command, and export gives back what was stored.

mod common;

use common::*;

const KANTA_PATIENT: &str = "77c2c8d2-11ce-41d5-8150-75489f8b0b0a";

/// Runs `phr` on the data folder `--data` names, on the run's engine.
fn run(args: &[&str]) -> (bool, String, String) {
    let mut command = phr();
    command.args(args);
    if let Some(data) = args
        .iter()
        .position(|a| *a == "--data")
        .and_then(|i| args.get(i + 1))
    {
        std::fs::create_dir_all(data).unwrap();
        command.args(engine_args(std::path::Path::new(data)));
    }
    let output = command.output().unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).to_string(),
        String::from_utf8_lossy(&output.stderr).to_string(),
    )
}

#[test]
fn import_then_export_round_trips_the_kanta_bundle() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let patient_file = tmp.path().join("patient.ndjson");
    std::fs::write(
        &patient_file,
        format!(
            "{}\n",
            serde_json::to_string(&kanta_patient(KANTA_PATIENT)).unwrap()
        ),
    )
    .unwrap();
    let bundle = shared("kanta/examples/diabetes-data-bundle-kantaphr-r4-en.json");
    let data_arg = data.to_str().unwrap();
    // The Bundle first on the command line: Patients are stored first anyway.
    let (ok, stdout, stderr) = run(&[
        "import",
        "--data",
        data_arg,
        bundle.to_str().unwrap(),
        patient_file.to_str().unwrap(),
    ]);
    assert!(ok, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("301 stored, 0 already there, 0 rejected"),
        "{stdout}"
    );

    let (ok, stdout, _) = run(&["import", "--data", data_arg, bundle.to_str().unwrap()]);
    assert!(ok);
    assert!(stdout.contains("0 stored, 300 already there"), "{stdout}");

    let out = tmp.path().join("export.json");
    let (ok, _, stderr) = run(&[
        "export",
        "--data",
        data_arg,
        "--patient",
        KANTA_PATIENT,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    let exported: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(exported["type"], "collection");
    let entries = exported["entry"].as_array().unwrap();
    assert_eq!(entries.len(), 301);
    assert_eq!(entries[0]["resource"]["resourceType"], "Patient");

    let folder = tmp.path().join("ndjson");
    std::fs::create_dir(&folder).unwrap();
    let (ok, _, stderr) = run(&[
        "export",
        "--data",
        data_arg,
        "--out",
        folder.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    let lines = |name: &str| {
        std::fs::read_to_string(folder.join(name))
            .unwrap_or_default()
            .lines()
            .count()
    };
    assert_eq!(lines("Patient.ndjson"), 1);
    assert_eq!(lines("Observation.ndjson"), 189);
    assert_eq!(lines("MedicationAdministration.ndjson"), 111);

    // The NDJSON export imports into a fresh folder, every resource stored.
    let fresh = tmp.path().join("fresh");
    let mut args = vec![
        "import".to_string(),
        "--data".into(),
        fresh.to_str().unwrap().into(),
    ];
    for name in [
        "Observation.ndjson",
        "MedicationAdministration.ndjson",
        "Patient.ndjson",
    ] {
        args.push(folder.join(name).to_str().unwrap().into());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, stdout, stderr) = run(&args);
    assert!(ok, "{stdout}\n{stderr}");
    assert!(stdout.contains("301 stored"), "{stdout}");
}

#[test]
fn rejected_resources_are_reported_by_line_and_fail_the_import() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("bad.ndjson");
    let patient = uuid();
    let mut bad = weight(&patient, 80.0);
    bad["status"] = serde_json::json!("preliminary");
    std::fs::write(
        &file,
        format!(
            "{}\n{}\nthis is not json\n",
            serde_json::to_string(&kanta_patient(&patient)).unwrap(),
            serde_json::to_string(&bad).unwrap()
        ),
    )
    .unwrap();
    let data = tmp.path().join("data");
    let (ok, stdout, stderr) = run(&[
        "import",
        "--data",
        data.to_str().unwrap(),
        file.to_str().unwrap(),
    ]);
    assert!(!ok, "an import with rejections must fail:\n{stdout}");
    assert!(
        stdout.contains("1 stored, 0 already there, 2 rejected"),
        "{stdout}\n{stderr}"
    );
    assert!(
        stderr.contains("bad.ndjson line 2: rejected: unprocessable"),
        "{stderr}"
    );
    assert!(stderr.contains("Observation.status"), "{stderr}");
    assert!(
        stderr.contains("bad.ndjson line 3: rejected: not valid JSON"),
        "{stderr}"
    );
}
