//! The FHIR REST interactions, driven over HTTP against the real binary.

mod common;

use common::*;
use serde_json::{Value, json};

fn server_with_patient() -> (Server, String) {
    let server = Server::open_sandbox();
    let patient = create_patient(&server, &uuid());
    (server, patient)
}

#[test]
fn create_then_read_returns_the_stored_version_with_headers() {
    let (server, patient) = server_with_patient();
    let response = server.post("Observation", &weight(&patient, 80.5));
    assert_eq!(response.status(), 201);
    let location = response.headers()["location"].to_str().unwrap().to_string();
    assert!(
        location.starts_with(&format!("{}/Observation/", server.base)),
        "{location}"
    );
    assert!(location.ends_with("/_history/1"));
    assert_eq!(response.headers()["etag"], "W/\"1\"");
    assert!(response.headers().contains_key("last-modified"));
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/fhir+json")
    );
    let created = body(response);
    let id = created["id"].as_str().unwrap();
    assert_eq!(created["meta"]["versionId"], "1");

    let read = server.get(&format!("Observation/{id}"));
    assert_eq!(read.status(), 200);
    assert_eq!(read.headers()["etag"], "W/\"1\"");
    let read = body(read);
    assert_eq!(read, created);
    assert_eq!(read["valueQuantity"]["value"], json!(80.5));
}

#[test]
fn decimals_keep_their_exact_text() {
    let (server, patient) = server_with_patient();
    let mut obs = weight(&patient, 1.0);
    obs["valueQuantity"]["value"] = serde_json::from_str("80.50").unwrap();
    let response = server.post("Observation", &obs);
    assert_eq!(response.status(), 201);
    let text = response.text().unwrap();
    assert!(text.contains("\"value\":80.50"), "{text}");
}

#[test]
fn update_makes_a_new_version_and_vread_keeps_the_old_one() {
    let (server, patient) = server_with_patient();
    let created = body(server.post("Observation", &weight(&patient, 80.0)));
    let id = created["id"].as_str().unwrap().to_string();
    let mut changed = created.clone();
    changed["valueQuantity"]["value"] = json!(81.0);
    let response = server.put(&format!("Observation/{id}"), &changed);
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["etag"], "W/\"2\"");
    assert!(
        response.headers()["location"]
            .to_str()
            .unwrap()
            .ends_with("/_history/2")
    );

    let v1 = body(server.get(&format!("Observation/{id}/_history/1")));
    assert_eq!(v1["valueQuantity"]["value"], json!(80.0));
    let v2 = body(server.get(&format!("Observation/{id}/_history/2")));
    assert_eq!(v2["valueQuantity"]["value"], json!(81.0));
    assert_eq!(
        server.get(&format!("Observation/{id}/_history/3")).status(),
        404
    );
}

#[test]
fn if_match_guards_update_and_delete() {
    let (server, patient) = server_with_patient();
    let created = body(server.post("Observation", &weight(&patient, 80.0)));
    let id = created["id"].as_str().unwrap().to_string();
    let stale = server
        .json(
            server.client.put(server.url(&format!("Observation/{id}"))),
            &created,
        )
        .header("If-Match", "W/\"7\"")
        .send()
        .unwrap();
    assert_eq!(stale.status(), 412);
    assert_eq!(body(stale)["resourceType"], "OperationOutcome");
    let fresh = server
        .json(
            server.client.put(server.url(&format!("Observation/{id}"))),
            &created,
        )
        .header("If-Match", "W/\"1\"")
        .send()
        .unwrap();
    assert_eq!(fresh.status(), 200);
    let stale_delete = server
        .client
        .delete(server.url(&format!("Observation/{id}")))
        .header("If-Match", "W/\"1\"")
        .send()
        .unwrap();
    assert_eq!(stale_delete.status(), 412);
    assert_eq!(server.get(&format!("Observation/{id}")).status(), 200);
}

#[test]
fn delete_is_logical_and_read_afterwards_is_gone() {
    let (server, patient) = server_with_patient();
    let created = body(server.post("Observation", &weight(&patient, 80.0)));
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(server.delete(&format!("Observation/{id}")).status(), 204);
    let gone = server.get(&format!("Observation/{id}"));
    assert_eq!(gone.status(), 410);
    assert_eq!(body(gone)["issue"][0]["code"], "deleted");
    // The old version stays readable by vread; deleting again is fine.
    assert_eq!(
        server.get(&format!("Observation/{id}/_history/1")).status(),
        200
    );
    assert_eq!(server.delete(&format!("Observation/{id}")).status(), 204);
    let history = body(server.get(&format!("Observation/{id}/_history")));
    assert_eq!(history["type"], "history");
    let entries = history["entry"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["request"]["method"], "DELETE");
    assert_eq!(entries[1]["resource"]["meta"]["versionId"], "1");
}

#[test]
fn unknown_ids_and_types_are_404_outcomes() {
    let server = Server::open_sandbox();
    let missing = server.get("Observation/does-not-exist");
    assert_eq!(missing.status(), 404);
    assert_eq!(body(missing)["issue"][0]["code"], "not-found");
    let bad_type = server.get("NotAType/1");
    assert_eq!(bad_type.status(), 404);
    assert_eq!(body(bad_type)["resourceType"], "OperationOutcome");
    assert_eq!(server.get("nothing/here/at/all/really").status(), 404);
}

#[test]
fn history_lists_versions_newest_first_with_since_and_count() {
    let (server, patient) = server_with_patient();
    let created = body(server.post("Observation", &weight(&patient, 70.0)));
    let id = created["id"].as_str().unwrap().to_string();
    let mut current = created;
    for kg in [71.0, 72.0] {
        current["valueQuantity"]["value"] = json!(kg);
        current = body(server.put(&format!("Observation/{id}"), &current));
    }
    let history = body(server.get(&format!("Observation/{id}/_history")));
    let versions: Vec<&str> = history["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["resource"]["meta"]["versionId"].as_str().unwrap())
        .collect();
    assert_eq!(versions, ["3", "2", "1"]);

    let page = body(server.get(&format!("Observation/{id}/_history?_count=2")));
    assert_eq!(page["entry"].as_array().unwrap().len(), 2);
    let next = page["link"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["relation"] == "next")
        .expect("next link");
    let rest = body(
        server
            .client
            .get(next["url"].as_str().unwrap())
            .send()
            .unwrap(),
    );
    assert_eq!(rest["entry"][0]["resource"]["meta"]["versionId"], "1");

    let v3_time = current["meta"]["lastUpdated"].as_str().unwrap().to_string();
    let since = body(server.get(&format!(
        "Observation/{id}/_history?_since={}",
        v3_time.replace('+', "%2B")
    )));
    assert_eq!(since["entry"].as_array().unwrap().len(), 1);

    let type_history = body(server.get("Observation/_history"));
    assert!(type_history["entry"].as_array().unwrap().len() >= 3);
    assert_eq!(
        server.get("Observation/_history?_since=yesterday").status(),
        400
    );
}

#[test]
fn conditional_create_by_identifier_returns_existing() {
    let (server, patient) = server_with_patient();
    let obs = weight(&patient, 80.0);
    let identifier = obs["identifier"][0]["value"].as_str().unwrap().to_string();
    let condition = format!("identifier=urn:ietf:rfc:3986|{identifier}");
    let send = || {
        server
            .json(server.client.post(server.url("Observation")), &obs)
            .header("If-None-Exist", &condition)
            .send()
            .unwrap()
    };
    let first = send();
    assert_eq!(first.status(), 201);
    let first = body(first);
    let second = send();
    assert_eq!(second.status(), 200);
    assert_eq!(body(second)["id"], first["id"]);
    // Without the system the identifier value alone matches too.
    let loose = server
        .json(server.client.post(server.url("Observation")), &obs)
        .header("If-None-Exist", format!("identifier={identifier}"))
        .send()
        .unwrap();
    assert_eq!(loose.status(), 200);
}

#[test]
fn conditional_create_with_several_matches_is_412() {
    let (server, patient) = server_with_patient();
    let obs = weight(&patient, 80.0);
    assert_eq!(server.post("Observation", &obs).status(), 201);
    assert_eq!(server.post("Observation", &obs).status(), 201);
    let identifier = obs["identifier"][0]["value"].as_str().unwrap();
    let response = server
        .json(server.client.post(server.url("Observation")), &obs)
        .header("If-None-Exist", format!("identifier={identifier}"))
        .send()
        .unwrap();
    assert_eq!(response.status(), 412);
    assert_eq!(body(response)["issue"][0]["code"], "multiple-matches");
}

#[test]
fn conditional_create_with_other_conditions_is_400() {
    let (server, patient) = server_with_patient();
    let response = server
        .json(
            server.client.post(server.url("Observation")),
            &weight(&patient, 80.0),
        )
        .header("If-None-Exist", "code=29463-7")
        .send()
        .unwrap();
    assert_eq!(response.status(), 400);
}

#[test]
fn update_as_create_is_allowed_for_patient_only() {
    let server = Server::open_sandbox();
    let id = uuid();
    let response = server.put(&format!("Patient/{id}"), &kanta_patient(&id));
    assert_eq!(response.status(), 201);
    let mut obs = weight(&id, 80.0);
    obs["id"] = json!("chosen-by-client");
    let response = server.put("Observation/chosen-by-client", &obs);
    assert_eq!(response.status(), 405);
    assert_eq!(body(response)["resourceType"], "OperationOutcome");
}

#[test]
fn update_body_must_match_the_url() {
    let (server, patient) = server_with_patient();
    let created = body(server.post("Observation", &weight(&patient, 80.0)));
    let id = created["id"].as_str().unwrap();
    let mut wrong = created.clone();
    wrong["id"] = json!("other");
    assert_eq!(
        server.put(&format!("Observation/{id}"), &wrong).status(),
        400
    );
    assert_eq!(server.put(&format!("Patient/{id}"), &created).status(), 400);
}

#[test]
fn patients_cannot_be_deleted() {
    let (server, patient) = server_with_patient();
    assert_eq!(server.delete(&format!("Patient/{patient}")).status(), 405);
    assert_eq!(server.get(&format!("Patient/{patient}")).status(), 200);
}

#[test]
fn prefer_return_minimal_and_operation_outcome() {
    let (server, patient) = server_with_patient();
    let minimal = server
        .json(
            server.client.post(server.url("Observation")),
            &weight(&patient, 80.0),
        )
        .header("Prefer", "return=minimal")
        .send()
        .unwrap();
    assert_eq!(minimal.status(), 201);
    assert!(minimal.headers().contains_key("location"));
    assert!(minimal.text().unwrap().is_empty());
    let outcome = server
        .json(
            server.client.post(server.url("Observation")),
            &weight(&patient, 80.0),
        )
        .header("Prefer", "return=OperationOutcome")
        .send()
        .unwrap();
    assert_eq!(outcome.status(), 201);
    assert_eq!(body(outcome)["resourceType"], "OperationOutcome");
}

#[test]
fn xml_is_refused_with_406_and_415() {
    let (server, patient) = server_with_patient();
    let by_accept = server
        .client
        .get(server.url(&format!("Patient/{patient}")))
        .header("Accept", "application/fhir+xml")
        .send()
        .unwrap();
    assert_eq!(by_accept.status(), 406);
    assert_eq!(body(by_accept)["resourceType"], "OperationOutcome");
    assert_eq!(
        server
            .get(&format!("Patient/{patient}?_format=xml"))
            .status(),
        406
    );
    assert_eq!(
        server
            .get(&format!("Patient/{patient}?_format=json"))
            .status(),
        200
    );
    let plain = server
        .client
        .get(server.url(&format!("Patient/{patient}")))
        .header("Accept", "application/json")
        .send()
        .unwrap();
    assert_eq!(plain.status(), 200);
    assert!(
        plain.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );

    let xml_body = server
        .client
        .post(server.url("Observation"))
        .header("Content-Type", "application/fhir+xml")
        .body("<Observation/>")
        .send()
        .unwrap();
    assert_eq!(xml_body.status(), 415);
    let no_type = server
        .client
        .post(server.url("Observation"))
        .body("{}")
        .send()
        .unwrap();
    assert_eq!(no_type.status(), 415);
}

#[test]
fn pretty_printing_on_request() {
    let (server, patient) = server_with_patient();
    let compact = server.get(&format!("Patient/{patient}")).text().unwrap();
    assert!(!compact.contains('\n'));
    let pretty = server
        .get(&format!("Patient/{patient}?_pretty=true"))
        .text()
        .unwrap();
    assert!(pretty.contains("\n  \"resourceType\""), "{pretty}");
}

#[test]
fn errors_answer_in_the_negotiated_format() {
    let server = Server::open_sandbox();
    for path in [
        "Observation/nope?_pretty=true",
        "Observation?_count=many&_pretty=true",
        "?_pretty=true",
    ] {
        let response = server.get(path);
        assert!(response.status().is_client_error(), "{path}");
        let text = response.text().unwrap();
        assert!(text.contains("\n  \"resourceType\""), "{path}: {text}");
    }
    let plain = server
        .client
        .get(server.url("Observation/nope"))
        .header("Accept", "application/json")
        .send()
        .unwrap();
    assert_eq!(plain.status(), 404);
    assert!(
        plain.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json"),
        "{:?}",
        plain.headers()
    );
    // A Bundle posted to the base with a trailing slash is answered the same way.
    let response = server
        .client
        .post(format!("{}/?_pretty=true", server.base))
        .header("Content-Type", FHIR_JSON)
        .body(r#"{"resourceType":"Bundle","type":"batch","entry":["x"]}"#)
        .send()
        .unwrap();
    assert_eq!(response.status(), 400);
    assert!(response.text().unwrap().contains("\n  \"resourceType\""));
}

#[test]
fn malformed_json_is_400_and_stores_nothing() {
    let server = Server::open_sandbox();
    for bad in ["{", "[]", "\"text\"", "{\"status\": \"final\"}"] {
        let response = server
            .client
            .post(server.url("Observation"))
            .header("Content-Type", FHIR_JSON)
            .body(bad)
            .send()
            .unwrap();
        assert_eq!(response.status(), 400, "{bad}");
        assert_eq!(body(response)["resourceType"], "OperationOutcome");
    }
    let history = body(server.get("Observation/_history"));
    assert!(history["entry"].as_array().is_none_or(|e| e.is_empty()));
}

#[test]
fn wrong_resource_type_for_the_url_is_400() {
    let (server, patient) = server_with_patient();
    let response = server.post("Patient", &weight(&patient, 80.0));
    assert_eq!(response.status(), 400);
}

#[test]
fn body_over_the_limit_is_413() {
    let server = Server::start(&["--open-sandbox", "--max-body-bytes", "1024"]);
    let big = json!({"resourceType": "Basic", "code": {"text": "x".repeat(4096)}});
    let response = server.post("Basic", &big);
    assert_eq!(response.status(), 413);
    assert_eq!(body(response)["issue"][0]["code"], "too-long");
}

#[test]
fn capability_statement_is_generated_and_lists_kanta_types() {
    let server = Server::open_sandbox();
    let cs = body(server.get("metadata"));
    assert_eq!(cs["resourceType"], "CapabilityStatement");
    assert_eq!(cs["fhirVersion"], "4.0.1");
    let resources = cs["rest"][0]["resource"].as_array().unwrap();
    for t in [
        "Patient",
        "Observation",
        "MedicationAdministration",
        "CarePlan",
        "Questionnaire",
        "QuestionnaireResponse",
        "Goal",
        "Consent",
        "StructureDefinition",
        "ValueSet",
        "CodeSystem",
    ] {
        assert!(
            resources.iter().any(|r| r["type"] == t),
            "{t} missing from /metadata"
        );
    }
    assert!(
        cs["implementation"]["url"]
            .as_str()
            .unwrap()
            .starts_with(&server.root)
    );
    let interactions: Vec<&Value> = cs["rest"][0]["interaction"]
        .as_array()
        .unwrap()
        .iter()
        .collect();
    assert!(interactions.iter().any(|i| i["code"] == "transaction"));
}

#[test]
fn without_open_sandbox_the_api_needs_a_token() {
    let server = Server::start(&[]);
    let response = server.get("Patient/x");
    assert_eq!(response.status(), 401);
    assert_eq!(body(response)["resourceType"], "OperationOutcome");
    assert_eq!(server.get("metadata").status(), 200);
}

#[test]
fn open_sandbox_refuses_a_network_address() {
    let out = phr()
        .args(["serve", "--open-sandbox", "--listen", "0.0.0.0:0", "--data"])
        .arg(std::env::temp_dir())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--i-know-this-is-open"));
}

#[test]
fn sigterm_shuts_down_cleanly() {
    let server = Server::open_sandbox();
    assert_eq!(server.get("metadata").status(), 200);
    let status = server.terminate();
    assert!(status.success(), "{status:?}");
}
