//! The audit log records every request, whatever its outcome: a request refused with 401 or
//! 403 is in `phr audit export` with its status and the client's address, which comes from a
//! forwarded header only when a trusted proxy sent it.

mod common;

use common::*;
use serde_json::Value;

const READ_ONLY: &str = "patient/Observation.read";
const ACCESS_LOG: &str = "patient/Observation.read patient/AuditEvent.read";

/// Every audit record of a stopped server's data folder, oldest first.
fn exported(data: &std::path::Path) -> Vec<Value> {
    let out = phr_ok(&["audit", "export", "--data", data.to_str().unwrap()]);
    out.lines()
        .map(|l| serde_json::from_str(l).expect("NDJSON"))
        .collect()
}

fn with_status(records: &[Value], status: u16) -> Vec<&Value> {
    records.iter().filter(|r| r["status"] == status).collect()
}

#[test]
fn refused_requests_are_audited_with_their_status_and_client_address() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start_in(data.path(), &[]);
    server.register_app("ro-app", READ_ONLY);
    let (patient, token) = server.token(&test_hetu("010280", 931), "ro-app", READ_ONLY);
    // No token: 401. A token without the scope: 403.
    assert_eq!(
        server
            .get(&format!("Observation?patient={patient}"))
            .status(),
        401
    );
    assert_eq!(
        server
            .get_as(&token, &format!("Patient/{patient}"))
            .status(),
        403
    );
    // A clean stop writes every queued record.
    assert!(server.terminate().success());
    let records = exported(data.path());

    let unauthorized = with_status(&records, 401);
    assert_eq!(unauthorized.len(), 1, "{records:#?}");
    let record = unauthorized[0];
    assert_eq!(record["client_address"], "127.0.0.1");
    assert_eq!(record["error_code"], "login");
    assert_eq!(record["actor"], "anonymous");
    assert_eq!(record["route"], "/fhir/r4/{type}");
    assert_eq!(record["method"], "GET");

    let forbidden = with_status(&records, 403);
    assert_eq!(forbidden.len(), 1, "{records:#?}");
    let record = forbidden[0];
    assert_eq!(record["client_address"], "127.0.0.1");
    assert_eq!(record["error_code"], "forbidden");
    assert_eq!(record["app_id"], "ro-app");
    assert_eq!(record["patient_id"], patient.as_str());
    assert_eq!(record["interaction"], "read");
    assert_eq!(record["resource_type"], "Patient");
    assert_eq!(record["route"], "/fhir/r4/{type}/{id}");

    let verified = phr_ok(&["audit", "verify", "--data", data.path().to_str().unwrap()]);
    assert!(verified.contains("intact"), "{verified}");
}

#[test]
fn a_trusted_proxy_names_the_client_and_anyone_else_cannot() {
    let refused_with = |server: &Server, header: &str, value: &str| {
        let response = server
            .client
            .get(server.url("Observation?patient=p"))
            .header(header, value)
            .send()
            .unwrap();
        assert_eq!(response.status(), 401);
    };

    // Behind a trusted proxy (the test itself, on loopback).
    let data = tempfile::tempdir().unwrap();
    let server = Server::start_in(data.path(), &["--trusted-proxy", "127.0.0.0/8"]);
    refused_with(&server, "x-forwarded-for", "203.0.113.9, 127.0.0.2");
    refused_with(
        &server,
        "forwarded",
        "for=\"[2001:db8::7]:4711\";proto=https",
    );
    assert!(server.terminate().success());
    let addresses: Vec<Value> = with_status(&exported(data.path()), 401)
        .iter()
        .map(|r| r["client_address"].clone())
        .collect();
    assert_eq!(addresses, ["203.0.113.9", "2001:db8::7"]);

    // Nobody trusted: the header is the client's word, and ignored.
    let data = tempfile::tempdir().unwrap();
    let server = Server::start_in(data.path(), &[]);
    refused_with(&server, "x-forwarded-for", "203.0.113.9");
    assert!(server.terminate().success());
    let addresses: Vec<Value> = with_status(&exported(data.path()), 401)
        .iter()
        .map(|r| r["client_address"].clone())
        .collect();
    assert_eq!(addresses, ["127.0.0.1"]);
}

#[test]
fn the_access_log_pages_by_record_number_and_refuses_a_bad_page() {
    let server = Server::start(&[]);
    server.register_app("log-app", ACCESS_LOG);
    let (patient, token) = server.token(&test_hetu("020380", 932), "log-app", ACCESS_LOG);
    for _ in 0..3 {
        let search = format!("Observation?patient={patient}");
        assert_eq!(server.get_as(&token, &search).status(), 200);
    }
    let log = |query: &str| server.get_as(&token, &format!("AuditEvent?{query}"));
    let first = body(log(&format!("patient=Patient/{patient}&_count=2")));
    assert_eq!(first["entry"].as_array().map(Vec::len), Some(2), "{first}");
    let next = first["link"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["relation"] == "next")
        .and_then(|l| l["url"].as_str())
        .expect("a next link")
        .to_string();
    assert!(
        next.contains(&format!("patient={patient}&_count=2&_page=2")),
        "{next}"
    );
    let second = server.client.get(&next).bearer_auth(&token).send().unwrap();
    assert_eq!(second.status(), 200);
    for bad in [
        "_page=x",
        "_page=-1",
        "_page=99999",
        "_page=99999999999999999999999",
    ] {
        let response = log(&format!("patient={patient}&{bad}"));
        assert_eq!(response.status(), 400, "{bad}");
        assert_eq!(body(response)["resourceType"], "OperationOutcome");
    }
}

#[test]
fn phr_token_without_a_public_url_mints_for_the_url_the_server_serves_at() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().to_str().unwrap();
    let server = Server::start_behind(data.path(), "https://phr.example.fi", &[]);
    phr_ok(&[
        "app",
        "register",
        "--data",
        dir,
        "--id",
        "ro-app",
        "--name",
        "Reader",
        "--scope",
        READ_ONLY,
        "--redirect-uri",
        "http://127.0.0.1:9/cb",
    ]);
    let out = phr_ok(&[
        "token",
        "--data",
        dir,
        "--hetu",
        &test_hetu("030480", 933),
        "--app",
        "ro-app",
        "--scope",
        READ_ONLY,
    ]);
    let token = out.lines().last().unwrap();
    let patient = out
        .lines()
        .find_map(|l| l.strip_prefix("patient: "))
        .unwrap();
    let response = server.get_as(token, &format!("Observation?patient={patient}"));
    assert_eq!(response.status(), 200, "{}", response.text().unwrap());
    // Told another URL, phr token mints for that one, which this server refuses.
    let out = phr_ok(&[
        "token",
        "--data",
        dir,
        "--public-url",
        "http://127.0.0.1:8080",
        "--hetu",
        &test_hetu("030480", 933),
        "--app",
        "ro-app",
        "--scope",
        READ_ONLY,
    ]);
    let elsewhere = out.lines().last().unwrap();
    assert_eq!(
        server
            .get_as(elsewhere, &format!("Observation?patient={patient}"))
            .status(),
        401
    );
}
