//! Batch and transaction Bundles, including Kanta's 300-entry batch.

mod common;

use common::*;
use serde_json::{Value, json};

const KANTA_BUNDLE: &str = "diabetes-data-bundle-kantaphr-r4-en.json";
const KANTA_BUNDLE_PATIENT: &str = "77c2c8d2-11ce-41d5-8150-75489f8b0b0a";

fn statuses(response: &Value) -> Vec<String> {
    response["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["response"]["status"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn kanta_batch_bundle_loads_then_reposting_finds_every_entry() {
    let server = Server::open_sandbox();
    create_patient(&server, KANTA_BUNDLE_PATIENT);
    let first = post_twice_finding_every_entry(&server, &kanta_example(KANTA_BUNDLE));
    assert_eq!(first["type"], "batch-response");
}

/// Posts `bundle` (300 conditional creates) twice: the first time every entry is created,
/// the second every entry is found, naming the resources the first created. Returns the
/// first answer.
fn post_twice_finding_every_entry(server: &Server, bundle: &Value) -> Value {
    let first = server.post("", bundle);
    assert_eq!(first.status(), 200);
    let first = body(first);
    let codes = statuses(&first);
    assert_eq!(codes.len(), 300);
    for (i, code) in codes.iter().enumerate() {
        assert!(
            code.starts_with("201"),
            "entry {i}: {code}: {}",
            first["entry"][i]["response"]
        );
    }
    let again = body(server.post("", bundle));
    for (i, code) in statuses(&again).iter().enumerate() {
        assert!(code.starts_with("200"), "entry {i}: {code}");
    }
    for (a, b) in first["entry"]
        .as_array()
        .unwrap()
        .iter()
        .zip(again["entry"].as_array().unwrap())
    {
        assert_eq!(a["resource"]["id"], b["resource"]["id"]);
    }
    first
}

#[test]
fn batch_entries_fail_independently() {
    let server = Server::open_sandbox();
    let patient = create_patient(&server, &uuid());
    let bundle = json!({
        "resourceType": "Bundle", "type": "batch",
        "entry": [
            {"resource": weight(&patient, 80.0), "request": {"method": "POST", "url": "Observation"}},
            {"request": {"method": "GET", "url": "Observation/missing"}},
            {"resource": {"resourceType": "Observation"}, "request": {"method": "POST", "url": "Patient"}},
            {"request": {"method": "GET", "url": format!("Patient/{patient}")}},
        ]
    });
    let response = body(server.post("", &bundle));
    let codes = statuses(&response);
    assert!(codes[0].starts_with("201"));
    assert!(codes[1].starts_with("404"));
    assert!(codes[2].starts_with("400"));
    assert!(codes[3].starts_with("200"));
    assert_eq!(
        response["entry"][1]["response"]["outcome"]["resourceType"],
        "OperationOutcome"
    );
}

#[test]
fn transaction_resolves_urn_uuid_references() {
    let server = Server::open_sandbox();
    let patient = uuid();
    let mut obs = weight("placeholder", 80.0);
    obs["subject"]["reference"] = json!("urn:uuid:11111111-2222-4333-8444-555555555555");
    obs["performer"][0]["reference"] = json!("urn:uuid:11111111-2222-4333-8444-555555555555");
    let bundle = json!({
        "resourceType": "Bundle", "type": "transaction",
        "entry": [
            {"fullUrl": "urn:uuid:aaaaaaaa-2222-4333-8444-555555555555", "resource": obs,
             "request": {"method": "POST", "url": "Observation"}},
            {"fullUrl": "urn:uuid:11111111-2222-4333-8444-555555555555", "resource": kanta_patient(&patient),
             "request": {"method": "PUT", "url": format!("Patient/{patient}")}},
        ]
    });
    let response = server.post("", &bundle);
    assert_eq!(response.status(), 200);
    let response = body(response);
    assert_eq!(response["type"], "transaction-response");
    let codes = statuses(&response);
    assert!(codes[0].starts_with("201"), "{codes:?}");
    assert!(codes[1].starts_with("201"), "{codes:?}");
    let location = response["entry"][0]["response"]["location"]
        .as_str()
        .unwrap();
    let stored = body(server.get(location.split("/_history").next().unwrap()));
    assert_eq!(stored["subject"]["reference"], format!("Patient/{patient}"));
    assert_eq!(
        stored["performer"][0]["reference"],
        format!("Patient/{patient}")
    );
}

#[test]
fn transaction_conditional_creates_resolve_to_the_resources_they_match() {
    let server = Server::open_sandbox();
    create_patient(&server, KANTA_BUNDLE_PATIENT);
    // Kanta's 300 conditional creates as one transaction, twice: the second finds them all.
    let mut bundle = kanta_example(KANTA_BUNDLE);
    bundle["type"] = json!("transaction");
    let first = post_twice_finding_every_entry(&server, &bundle);
    assert_eq!(first["type"], "transaction-response");

    // A reference to a conditional create's fullUrl names the resource it matched.
    let existing = first["entry"][0]["resource"].clone();
    let existing_id = existing["id"].as_str().unwrap();
    let identifier = &existing["identifier"][0];
    let condition = format!(
        "identifier={}|{}",
        identifier["system"].as_str().unwrap(),
        identifier["value"].as_str().unwrap()
    );
    let note = json!({"resourceType": "Basic", "code": {"text": "measured after a run"},
        "subject": {"reference": "urn:uuid:cccccccc-2222-4333-8444-555555555555"}});
    let linked = json!({
        "resourceType": "Bundle", "type": "transaction",
        "entry": [
            {"fullUrl": "urn:uuid:aaaaaaaa-2222-4333-8444-555555555555", "resource": note,
             "request": {"method": "POST", "url": "Basic"}},
            {"fullUrl": "urn:uuid:cccccccc-2222-4333-8444-555555555555", "resource": existing,
             "request": {"method": "POST", "url": "Observation", "ifNoneExist": condition}},
        ]
    });
    let response = body(server.post("", &linked));
    let codes = statuses(&response);
    assert!(codes[0].starts_with("201"), "{codes:?}");
    assert!(codes[1].starts_with("200"), "{codes:?}");
    let note_id = response["entry"][0]["resource"]["id"].as_str().unwrap();
    let stored = body(server.get(&format!("Basic/{note_id}")));
    assert_eq!(
        stored["subject"]["reference"],
        format!("Observation/{existing_id}")
    );
}

#[test]
fn a_transaction_whose_condition_matches_twice_stores_nothing() {
    let server = Server::open_sandbox();
    let patient = create_patient(&server, &uuid());
    let twin = weight(&patient, 80.0);
    for _ in 0..2 {
        assert_eq!(server.post("Observation", &twin).status(), 201);
    }
    let value = twin["identifier"][0]["value"].as_str().unwrap();
    let bundle = json!({
        "resourceType": "Bundle", "type": "transaction",
        "entry": [
            {"resource": weight(&patient, 81.0), "request": {"method": "POST", "url": "Observation"}},
            {"resource": twin, "request": {"method": "POST", "url": "Observation",
             "ifNoneExist": format!("identifier={value}")}},
        ]
    });
    let response = server.post("", &bundle);
    assert_eq!(response.status(), 412);
    let outcome = body(response);
    assert_eq!(outcome["resourceType"], "OperationOutcome");
    let search = body(server.get(&format!("Observation?patient={patient}&_summary=count")));
    assert_eq!(search["total"], 2, "nothing of the transaction was stored");
}

#[test]
fn transaction_links_entries_created_together() {
    let server = Server::open_sandbox();
    let patient = create_patient(&server, &uuid());
    let note = json!({"resourceType": "Basic", "code": {"text": "weighed after the sauna"},
        "subject": {"reference": "urn:uuid:bbbbbbbb-2222-4333-8444-555555555555"}});
    let bundle = json!({
        "resourceType": "Bundle", "type": "transaction",
        "entry": [
            {"fullUrl": "urn:uuid:aaaaaaaa-2222-4333-8444-555555555555", "resource": note,
             "request": {"method": "POST", "url": "Basic"}},
            {"fullUrl": "urn:uuid:bbbbbbbb-2222-4333-8444-555555555555", "resource": weight(&patient, 81.0),
             "request": {"method": "POST", "url": "Observation"}},
        ]
    });
    let response = body(server.post("", &bundle));
    let note_id = response["entry"][0]["resource"]["id"]
        .as_str()
        .expect("note created");
    let weight_id = response["entry"][1]["resource"]["id"]
        .as_str()
        .expect("weight created");
    let stored = body(server.get(&format!("Basic/{note_id}")));
    assert_eq!(
        stored["subject"]["reference"],
        format!("Observation/{weight_id}")
    );
}

#[test]
fn transaction_is_atomic_when_one_entry_fails() {
    let server = Server::open_sandbox();
    let patient = create_patient(&server, &uuid());
    let good = weight(&patient, 80.0);
    let identifier = good["identifier"][0]["value"].as_str().unwrap().to_string();
    let bundle = json!({
        "resourceType": "Bundle", "type": "transaction",
        "entry": [
            {"resource": good, "request": {"method": "POST", "url": "Observation"}},
            {"request": {"method": "DELETE", "url": "Observation/not-there"}},
        ]
    });
    let response = server.post("", &bundle);
    assert_eq!(response.status(), 404);
    let outcome = body(response);
    assert!(
        outcome["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .contains("Bundle.entry[1]"),
        "{outcome}"
    );
    // Nothing of the transaction was stored: a conditional create finds no match.
    let probe = server
        .json(
            server.client.post(server.url("Observation")),
            &weight(&patient, 1.0),
        )
        .header("If-None-Exist", format!("identifier={identifier}"))
        .send()
        .unwrap();
    assert_eq!(probe.status(), 201);
}

#[test]
fn bundle_limit_is_configurable() {
    let server = Server::start(&["--open-sandbox", "--max-bundle-entries", "2"]);
    let entries: Vec<Value> = (0..3)
        .map(|_| json!({"request": {"method": "GET", "url": "Patient/x"}}))
        .collect();
    let response = server.post(
        "",
        &json!({"resourceType": "Bundle", "type": "batch", "entry": entries}),
    );
    assert_eq!(response.status(), 413);
}

#[test]
fn only_batch_and_transaction_bundles_are_accepted_at_the_base() {
    let server = Server::open_sandbox();
    let response = server.post("", &json!({"resourceType": "Bundle", "type": "collection"}));
    assert_eq!(response.status(), 400);
    let response = server.post("", &json!({"resourceType": "Patient"}));
    assert_eq!(response.status(), 400);
}

#[test]
fn entries_of_the_wrong_json_type_are_400_and_store_nothing() {
    let server = Server::open_sandbox();
    let patient = create_patient(&server, &uuid());
    let good = json!({"resource": weight(&patient, 80.0), "request": {"method": "POST", "url": "Observation"}});
    let wrong: [(Value, &str); 7] = [
        (json!("x"), "Bundle.entry[1]"),
        (json!(7), "Bundle.entry[1]"),
        (json!([good.clone()]), "Bundle.entry[1]"),
        (
            json!({"request": "POST Observation"}),
            "Bundle.entry[1].request",
        ),
        (json!({"request": ["POST"]}), "Bundle.entry[1].request"),
        (
            json!({"resource": [weight(&patient, 81.0)], "request": {"method": "POST", "url": "Observation"}}),
            "Bundle.entry[1].resource",
        ),
        (
            json!({"resource": "text", "request": {"method": "POST", "url": "Observation"}}),
            "Bundle.entry[1].resource",
        ),
    ];
    for kind in ["batch", "transaction"] {
        for (entry, at) in &wrong {
            let bundle =
                json!({"resourceType": "Bundle", "type": kind, "entry": [good.clone(), entry]});
            let response = server.post("", &bundle);
            assert_eq!(response.status(), 400, "{kind} with {entry}");
            let outcome = body(response);
            assert_eq!(outcome["resourceType"], "OperationOutcome");
            assert_eq!(outcome["issue"][0]["expression"][0], *at, "{outcome}");
        }
    }
    // The malformed Bundle of the original report, the shortest one.
    let response = server.post(
        "",
        &json!({"resourceType": "Bundle", "type": "batch", "entry": ["x"]}),
    );
    assert_eq!(response.status(), 400);
    // Nothing of any of them was stored, and the server still serves.
    let stored = body(server.get(&format!("Observation?patient={patient}")));
    assert_eq!(stored["total"], 0, "{stored}");
    assert_eq!(server.get("metadata").status(), 200);
}
