//! Operations endpoints of the real binary: liveness, readiness, Prometheus metrics by route
//! template, and request logs that never carry ids, identity codes or query strings.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use common::*;

#[test]
fn health_and_ready_answer_ok() {
    let server = Server::open_sandbox();
    let health = server
        .client
        .get(format!("{}/health", server.root))
        .send()
        .unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(health.text().unwrap(), "ok");
    let ready = server
        .client
        .get(format!("{}/ready", server.root))
        .send()
        .unwrap();
    assert_eq!(ready.status(), 200);
}

#[test]
fn metrics_count_requests_by_route_template_and_status() {
    let server = Server::open_sandbox();
    let patient = create_patient(&server, &uuid());
    let created = server.post("Observation", &weight(&patient, 72.5));
    assert_eq!(created.status(), 201, "{}", created.text().unwrap());
    for _ in 0..3 {
        assert_eq!(server.get(&format!("Patient/{patient}")).status(), 200);
    }
    assert_eq!(server.get("Observation/no-such-id").status(), 404);
    let text = server
        .client
        .get(format!("{}/metrics", server.root))
        .send()
        .unwrap()
        .text()
        .unwrap();
    let count = |line_start: &str| -> u64 {
        text.lines()
            .find(|l| l.starts_with(line_start))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no {line_start} in\n{text}"))
    };
    assert_eq!(
        count(
            "phr_http_requests_total{method=\"GET\",route=\"/fhir/r4/{type}/{id}\",status=\"200\"}"
        ),
        3
    );
    assert_eq!(
        count(
            "phr_http_requests_total{method=\"GET\",route=\"/fhir/r4/{type}/{id}\",status=\"404\"}"
        ),
        1
    );
    assert_eq!(
        count("phr_http_requests_total{method=\"POST\",route=\"/fhir/r4/{type}\",status=\"201\"}"),
        1
    );
    assert!(
        count(
            "phr_http_request_duration_seconds_count{method=\"GET\",route=\"/fhir/r4/{type}/{id}\"}"
        ) >= 4
    );
    // The Patient PUT and the Observation POST were committed.
    assert!(count("phr_store_commits_total") >= 2);
    assert!(count("phr_store_size_bytes") > 0);
    assert!(count("process_resident_memory_bytes") > 0);
    // Labels are templates: no id ever appears.
    assert!(!text.contains(&patient), "an id leaked into the metrics");
    assert!(!text.contains("no-such-id"));
}

#[test]
fn request_logs_are_json_with_route_templates_and_no_identifiers() {
    let tmp = tempfile::tempdir().unwrap();
    let mut child = phr()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--open-sandbox",
            "--data",
        ])
        .arg(tmp.path())
        .env("PHR_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut base = None;
    for line in stdout.lines() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("PHR is serving FHIR R4 at ") {
            base = Some(rest.trim().to_string());
            break;
        }
    }
    let base = base.expect("server address");
    let client = reqwest::blocking::Client::new();
    let hetu = "010190-900P";
    let secret = "eyJhbGciOiJFUzI1NiJ9.secret-token";
    let response = client
        .get(format!(
            "{base}/Observation?patient=p-123&identifier={hetu}"
        ))
        .header("Authorization", format!("Bearer {secret}"))
        .send()
        .unwrap();
    let _ = response.text();
    let _ = client
        .get(format!("{base}/Patient/p-123"))
        .send()
        .unwrap()
        .text();
    // Stop the server, then read everything it logged.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    child.wait().unwrap();
    let mut logs = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut logs).unwrap();
    let request_lines: Vec<serde_json::Value> = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["target"] == "phr::request")
        .collect();
    assert!(request_lines.len() >= 2, "no request log lines in:\n{logs}");
    let read = request_lines
        .iter()
        .find(|v| v["fields"]["route"] == "/fhir/r4/{type}/{id}")
        .unwrap_or_else(|| panic!("no read logged:\n{logs}"));
    assert_eq!(read["fields"]["method"], "GET");
    assert!(read["fields"]["status"].as_u64().is_some());
    assert!(read["fields"]["duration_ms"].as_f64().is_some());
    for forbidden in [hetu, secret, "p-123", "identifier="] {
        assert!(
            !logs.contains(forbidden),
            "{forbidden} leaked into the logs:\n{logs}"
        );
    }
}
