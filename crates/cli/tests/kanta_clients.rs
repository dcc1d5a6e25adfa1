//! What Kanta PHR's open-source client applications rely on, sent the way they send it: a CGM
//! and insulin uploader with its own FHIR client writes with single conditional creates and
//! 300-entry batches, then reads back wide date ranges with `_count=20000&_sort=date`, keeps
//! the entries only when `Bundle.total > 0`, reads `entry.resource.identifier[0]` of every
//! entry, and lists a citizen's Observations by compartment search. (The token response's
//! `sub` = Patient id is checked by the OAuth flow tests and the Python client tests.)

mod common;

use common::*;
use serde_json::{Value, json};

const CHARSET_JSON: &str = "application/fhir+json; charset=UTF-8";

/// An instant `minutes` after the first of January 2024 (Helsinki winter time).
fn at(minutes: u32) -> String {
    let (day, rest) = (1 + minutes / 1440, minutes % 1440);
    format!(
        "2024-01-{day:02}T{:02}:{:02}:00+02:00",
        rest / 60,
        rest % 60
    )
}

/// `count` CGM readings five minutes apart from the start of 2024, stored with batches of at
/// most 300 posted to the base with a trailing slash.
fn upload_cgm(server: &Server, patient: &str, count: u32) -> Vec<Value> {
    let readings: Vec<Value> = (0..count)
        .map(|i| glucose(patient, &at(i * 5), 4.0 + f64::from(i % 50) / 10.0))
        .collect();
    for chunk in readings.chunks(300) {
        let response = server
            .client
            .post(format!("{}/", server.base))
            .header("Content-Type", CHARSET_JSON)
            .body(serde_json::to_vec(&conditional_batch(chunk)).unwrap())
            .send()
            .unwrap();
        assert_eq!(response.status(), 200);
        let answer = body(response);
        assert_eq!(answer["type"], "batch-response");
        for entry in answer["entry"].as_array().unwrap() {
            assert_eq!(entry["response"]["status"], "201 Created", "{entry:#}");
        }
    }
    readings
}

#[test]
fn a_wide_date_range_read_with_a_huge_count_carries_the_total_and_pages_on() {
    let server = Server::open_sandbox();
    let p = create_patient(&server, &uuid());
    let stored = upload_cgm(&server, &p, 1200);
    let query = format!(
        "Observation?_count=20000&_sort=date&patient={p}&code=14745-4&date=ge2023-12-31&date=le2024-01-31"
    );
    let mut url = server.url(&query);
    let mut identifiers = Vec::new();
    let mut pages = 0;
    loop {
        let response = server
            .client
            .get(&url)
            .header("Accept", "application/json+fhir")
            .send()
            .unwrap();
        assert_eq!(response.status(), 200);
        let bundle = body(response);
        assert_eq!(bundle["total"], 1200, "page {pages}");
        for entry in bundle["entry"].as_array().unwrap() {
            // The uploader reads the identifier of every entry: no OperationOutcome among them.
            assert_eq!(entry["resource"]["resourceType"], "Observation");
            identifiers.push(
                entry["resource"]["identifier"][0]["value"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            );
        }
        pages += 1;
        let next = bundle["link"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["relation"] == "next")
            .map(|l| l["url"].as_str().unwrap().to_string());
        match next {
            Some(next) => url = next,
            None => break,
        }
    }
    assert_eq!(pages, 2, "1000 on the first page, the rest on the second");
    let expected: Vec<String> = stored
        .iter()
        .map(|r| r["identifier"][0]["value"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(identifiers, expected, "every reading once, oldest first");

    // The uploader's `getObservations`: a compartment search.
    let listed = body(server.get(&format!("Patient/{p}/Observation")));
    assert_eq!(listed["total"], 1200);
    assert_eq!(listed["entry"].as_array().unwrap().len(), 50);
}

#[test]
fn insulin_is_searched_by_code_and_effective_time_sorted() {
    let server = Server::open_sandbox();
    let p = create_patient(&server, &uuid());
    // An insulin dose of Kanta's diabetes batch, moved to this citizen.
    let bundle = kanta_example("diabetes-data-bundle-kantaphr-r4-en.json");
    let mut dose = bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["resource"].clone())
        .find(|r| r["resourceType"] == "MedicationAdministration")
        .unwrap();
    dose["subject"]["reference"] = json!(format!("Patient/{p}"));
    dose["identifier"][0]["value"] = json!(format!("urn:uuid:{}", uuid()));
    dose["identifier"][1]["value"] = json!(format!("urn:uuid:{}", uuid()));
    let response = server.post("MedicationAdministration", &dose);
    assert_eq!(response.status(), 201, "{}", response.text().unwrap());
    let day = &dose["effectivePeriod"]["start"].as_str().unwrap()[..10];
    let found = body(server.get(&format!(
        "MedicationAdministration?_count=40000&_sort=effective-time&patient={p}&code=ins-short-fast&effective-time=ge{day}"
    )));
    assert_eq!(found["total"], 1, "{found:#}");
    assert_eq!(
        found["entry"][0]["resource"]["resourceType"],
        "MedicationAdministration"
    );
    assert!(found["entry"][0]["resource"]["identifier"][0]["value"].is_string());
}

#[test]
fn accept_json_plus_fhir_is_answered_as_fhir_json() {
    let server = Server::open_sandbox();
    let p = create_patient(&server, &uuid());
    for path in [
        format!("Patient/{p}"),
        format!("Observation?patient={p}"),
        "metadata".into(),
    ] {
        let response = server
            .client
            .get(server.url(&path))
            .header("Accept", "application/json+fhir")
            .send()
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(
            content_type.starts_with("application/fhir+json"),
            "{path}: {content_type}"
        );
    }
}

#[test]
fn single_conditional_creates_answer_201_with_location_then_200_with_the_existing_resource() {
    let server = Server::open_sandbox();
    let p = create_patient(&server, &uuid());
    let reading = glucose(&p, &at(0), 5.4);
    let identifier = reading["identifier"][0]["value"]
        .as_str()
        .unwrap()
        .to_string();
    // The uploader's single create: plain JSON, If-None-Exist, return=representation.
    let send = |content_type: &str| {
        server
            .client
            .post(server.url("Observation"))
            .header("Content-Type", content_type)
            .header("If-None-Exist", format!("identifier={identifier}"))
            .header("Prefer", "return=representation")
            .body(serde_json::to_vec(&reading).unwrap())
            .send()
            .unwrap()
    };
    let created = send("application/json");
    assert_eq!(created.status(), 201);
    let location = created.headers()["location"].to_str().unwrap().to_string();
    let created = body(created);
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(
        location,
        format!("{}/Observation/{id}/_history/1", server.base)
    );
    assert_eq!(created["identifier"][0]["value"], identifier.as_str());
    for content_type in ["application/json", CHARSET_JSON] {
        let again = send(content_type);
        assert_eq!(again.status(), 200, "{content_type}");
        let existing = body(again);
        assert_eq!(existing["id"], id.as_str());
        assert_eq!(existing["meta"]["versionId"], "1");
    }
    // The same reading in a batch posted to the base with a trailing slash: 200 too.
    let response = server
        .client
        .post(format!("{}/", server.base))
        .header("Content-Type", CHARSET_JSON)
        .body(serde_json::to_vec(&conditional_batch(&[reading])).unwrap())
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    let answer = body(response);
    assert_eq!(answer["entry"][0]["response"]["status"], "200 OK");
    assert_eq!(answer["entry"][0]["resource"]["id"], id.as_str());
}

#[test]
fn prefer_return_minimal_representation_and_operation_outcome() {
    let server = Server::open_sandbox();
    let p = create_patient(&server, &uuid());
    let send = |prefer: &str| {
        let response = server
            .client
            .post(server.url("Observation"))
            .header("Content-Type", CHARSET_JSON)
            .header("Prefer", prefer)
            .body(serde_json::to_vec(&glucose(&p, &at(5), 6.1)).unwrap())
            .send()
            .unwrap();
        assert_eq!(response.status(), 201, "{prefer}");
        assert!(response.headers().contains_key("location"), "{prefer}");
        response.text().unwrap()
    };
    assert!(send("return=minimal").is_empty());
    let representation: Value = serde_json::from_str(&send("return=representation")).unwrap();
    assert_eq!(representation["resourceType"], "Observation");
    let outcome: Value = serde_json::from_str(&send("return=OperationOutcome")).unwrap();
    assert_eq!(outcome["resourceType"], "OperationOutcome");
}
