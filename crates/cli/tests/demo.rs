//! `phr demo` and `phr serve --demo`: the demo sandbox loads through the write pipeline, says
//! how to log in, loads only once, and its data is served.

mod common;

use common::*;

#[test]
fn demo_loads_once_and_its_data_is_served() {
    let tmp = tempfile::tempdir().unwrap();
    let output = phr()
        .args(["demo", "--days", "12", "--data"])
        .arg(tmp.path())
        .args(engine_args(tmp.path()))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("0 failed"), "{stdout}");
    for hetu in ["010190-900P", "150585-901P", "311299-902A"] {
        assert!(
            stdout.contains(hetu),
            "test login {hetu} not shown:\n{stdout}"
        );
    }
    let marker: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tmp.path().join("demo.json")).unwrap()).unwrap();
    let created = marker["created"].as_u64().unwrap();
    // 12 days of 5-minute CGM for the diabetic citizen alone is over 3000 resources.
    assert!(created > 3000, "{marker}");
    let patient = marker["patients"][0].as_str().unwrap().to_string();
    assert!(
        !serde_json::to_string(&marker).unwrap().contains("900P"),
        "a HETU in demo.json"
    );

    let again = phr()
        .args(["demo", "--days", "12", "--data"])
        .arg(tmp.path())
        .args(engine_args(tmp.path()))
        .output()
        .unwrap();
    assert!(again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("already loaded"),
        "{}",
        String::from_utf8_lossy(&again.stdout)
    );

    let server = Server::start_in(tmp.path(), &["--open-sandbox"]);
    // The demo's glucose and activity apps are on the public list; the general one is not.
    let listed = body(
        server
            .client
            .get(format!("{}/apps.json", server.root))
            .send()
            .unwrap(),
    );
    let ids: Vec<&str> = listed["applications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["demo-activity", "demo-glucose"], "{listed}");
    let stored = body(server.get(&format!("Patient/{patient}")));
    assert_eq!(stored["id"], patient.as_str());
    let history = body(server.get("Observation/_history?_count=5"));
    let first = &history["entry"][0]["resource"];
    assert_eq!(first["resourceType"], "Observation");
    assert!(first["text"]["div"].as_str().unwrap().contains("xmlns"));
    assert!(
        first["identifier"][0]["value"]
            .as_str()
            .unwrap()
            .starts_with("urn:uuid:")
    );
    assert!(
        first["meta"]["profile"][0]
            .as_str()
            .unwrap()
            .starts_with("http://phr.kanta.fi/")
    );
    assert!(
        first["extension"]
            .to_string()
            .contains("creatingApplication")
            || first["extension"]
                .to_string()
                .contains("creatingapplication")
    );
}

#[test]
fn serve_demo_prints_the_welcome_with_logins_and_a_curl_example() {
    use std::io::{BufRead, BufReader};
    let tmp = tempfile::tempdir().unwrap();
    let mut child = phr()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--open-sandbox",
            "--demo",
            "--demo-days",
            "3",
            "--data",
        ])
        .arg(tmp.path())
        .env("PHR_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = String::new();
    while let Some(Ok(line)) = lines.next() {
        seen.push_str(&line);
        seen.push('\n');
        if line.trim_start().starts_with("curl ") {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(seen.contains("PHR is serving FHIR R4 at"), "{seen}");
    assert!(seen.contains("010190-900P"), "{seen}");
    assert!(seen.contains("/portal"), "{seen}");
    assert!(seen.contains("/viewer"), "the professional viewer: {seen}");
    assert!(seen.contains("tp-1 Doctor Test Person"), "{seen}");
    assert!(seen.contains("curl "), "{seen}");
}
