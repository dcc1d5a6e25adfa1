//! The deprecated FHIR STU3 endpoint `/fhir/stu3`, black-box: Kanta's STU3 and R4 example
//! Bundles written through one endpoint and read through the other, the same ids, versions,
//! ETags, history and paging on both, deprecation headers on every answer, what cannot cross
//! between the versions answered precisely, and the STU3 CapabilityStatement and
//! StructureDefinitions. Runs on SQLite and (with `PHR_TEST_ENGINE=postgres`) PostgreSQL.

mod common;

use std::collections::HashMap;

use common::*;
use serde_json::{Value, json};

const STU3_BUNDLE: &str = "diabetes-data-bundle-kantaphr-sv.json";
const STU3_PATIENT: &str = "cafbe8e7-38fe-4807-b995-6770e5390365";
const R4_BUNDLE: &str = "diabetes-data-bundle-kantaphr-r4-en.json";
const R4_PATIENT: &str = "77c2c8d2-11ce-41d5-8150-75489f8b0b0a";
const CAT_STU3: &str = "http://hl7.org/fhir/observation-category";
const CAT_R4: &str = "http://terminology.hl7.org/CodeSystem/observation-category";
const STU3_GLUCOSE: &str = "http://phr.kanta.fi/StructureDefinition/fiphr-bloodglucose-stu3";

/// An absolute URL at the STU3 endpoint.
fn stu3(server: &Server, path: &str) -> String {
    format!("{}/fhir/stu3/{}", server.root, path.trim_start_matches('/'))
}

fn get(server: &Server, url: &str) -> (u16, Value, reqwest::header::HeaderMap) {
    let response = server.client.get(url).send().unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, body(response), headers)
}

fn send(
    server: &Server,
    method: reqwest::Method,
    url: &str,
    resource: &Value,
) -> (u16, Value, reqwest::header::HeaderMap) {
    let response = server
        .json(server.client.request(method, url), resource)
        .send()
        .unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, body(response), headers)
}

fn statuses(bundle: &Value) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for e in bundle["entry"].as_array().unwrap() {
        *counts
            .entry(e["response"]["status"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    counts
}

/// A server that takes Kanta's 958-entry STU3 batch in one request (the default limit is
/// 300 entries, Kanta practice for R4 uploads; the STU3 example was written as one Bundle).
fn server() -> Server {
    Server::start(&["--open-sandbox", "--max-bundle-entries", "1000"])
}

fn stu3_patient(id: &str) -> Value {
    json!({
        "resourceType": "Patient",
        "id": id,
        "meta": {"profile": ["http://phr.kanta.fi/StructureDefinition/fiphr-patient-stu3"]},
        "identifier": [{"system": "urn:ietf:rfc:3986", "value": format!("urn:uuid:{id}")}],
        "active": true,
    })
}

fn assert_deprecated(headers: &reqwest::header::HeaderMap, server: &Server) {
    assert!(headers.get("deprecation").is_some(), "{headers:?}");
    let link = headers.get("link").unwrap().to_str().unwrap();
    assert_eq!(
        link,
        format!("<{}>; rel=\"successor-version\"", server.base)
    );
    assert!(
        headers
            .get("warning")
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("299 ")
    );
}

#[test]
fn the_stu3_kanta_batch_loads_through_stu3_and_reads_valid_through_r4() {
    let server = server();
    let (status, _, headers) = send(
        &server,
        reqwest::Method::PUT,
        &stu3(&server, &format!("Patient/{STU3_PATIENT}")),
        &stu3_patient(STU3_PATIENT),
    );
    assert_eq!(status, 201);
    assert_deprecated(&headers, &server);
    let bundle = kanta_example(STU3_BUNDLE);
    let (status, answer, _) = send(&server, reqwest::Method::POST, &stu3(&server, ""), &bundle);
    assert_eq!(status, 200, "{answer:#}");
    assert_eq!(
        statuses(&answer),
        HashMap::from([("201 Created".to_string(), 958)])
    );
    // Reposted: every entry is found by its identifier.
    let (_, again, _) = send(&server, reqwest::Method::POST, &stu3(&server, ""), &bundle);
    assert_eq!(
        statuses(&again),
        HashMap::from([("200 OK".to_string(), 958)])
    );

    // Every resource, read through R4: the same id and version, its R4 profile and category
    // system, and valid against that profile.
    let mut profiles: HashMap<String, usize> = HashMap::new();
    for (entry, posted) in answer["entry"]
        .as_array()
        .unwrap()
        .iter()
        .zip(bundle["entry"].as_array().unwrap())
    {
        let location = entry["response"]["location"].as_str().unwrap();
        let (rtype_id, _) = location.split_once("/_history/").unwrap();
        let response = server.get(rtype_id);
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["etag"], "W/\"1\"");
        let r4 = body(response);
        assert_eq!(r4["identifier"], posted["resource"]["identifier"]);
        if r4["resourceType"] == "Observation"
            && posted["resource"]["category"][0]["coding"][0]["system"] == CAT_STU3
        {
            assert_eq!(r4["category"][0]["coding"][0]["system"], CAT_R4);
        }
        *profiles
            .entry(r4["meta"]["profile"][0].as_str().unwrap().to_string())
            .or_default() += 1;
        let outcome = body(server.get(&format!("{rtype_id}/$validate")));
        let errors: Vec<_> = issues(&outcome)
            .into_iter()
            .filter(|i| i.0 == "error")
            .collect();
        assert!(errors.is_empty(), "{rtype_id}: {outcome:#}");
    }
    assert_eq!(
        profiles["http://phr.kanta.fi/StructureDefinition/fiphr-sd-bloodglucose"],
        637
    );
    assert_eq!(
        profiles["http://phr.kanta.fi/StructureDefinition/fiphr-sd-insulindosing-r4"],
        312
    );
    assert_eq!(
        profiles["http://phr.kanta.fi/StructureDefinition/fiphr-sd-macronutrientintake"],
        9
    );

    // Searchable through R4, by the R4 category system, and through STU3 by the STU3 one.
    let r4 = body(server.get(&format!(
        "Observation?patient={STU3_PATIENT}&category={CAT_R4}|vital-signs&_count=0"
    )));
    assert_eq!(r4["total"], 637);
    let (_, s, _) = get(
        &server,
        &stu3(
            &server,
            &format!("Observation?patient={STU3_PATIENT}&category={CAT_STU3}|vital-signs&_count=0"),
        ),
    );
    assert_eq!(s["total"], 637);
    let r4 = body(server.get(&format!(
        "MedicationAdministration?patient={STU3_PATIENT}&_count=0"
    )));
    assert_eq!(r4["total"], 312);
}

#[test]
fn the_r4_kanta_batch_reads_through_stu3_in_the_stu3_shape() {
    let server = server();
    create_patient(&server, R4_PATIENT);
    let bundle = kanta_example(R4_BUNDLE);
    let answer = body(server.post("", &bundle));
    assert_eq!(
        statuses(&answer),
        HashMap::from([("201 Created".to_string(), 300)])
    );
    for entry in answer["entry"].as_array().unwrap() {
        let location = entry["response"]["location"].as_str().unwrap();
        let (rtype_id, _) = location.split_once("/_history/").unwrap();
        let (status, resource, headers) = get(&server, &stu3(&server, rtype_id));
        assert_eq!(status, 200, "{resource:#}");
        assert_eq!(headers["etag"], "W/\"1\"");
        assert_deprecated(&headers, &server);
        let profile = resource["meta"]["profile"][0].as_str().unwrap();
        assert!(profile.ends_with("-stu3"), "{profile}");
        let r4 = body(server.get(rtype_id));
        if r4["category"][0]["coding"][0]["system"] == CAT_R4 {
            assert_eq!(
                resource["category"][0]["coding"][0]["system"], CAT_STU3,
                "{resource:#}"
            );
        }
        assert_eq!(resource["identifier"], r4["identifier"]);
        // In the STU3 shape: the STU3 endpoint's $validate (STU3 structure, then the R4
        // profile after conversion) finds no error.
        let rtype = resource["resourceType"].as_str().unwrap();
        let (status, outcome, _) = send(
            &server,
            reqwest::Method::POST,
            &stu3(&server, &format!("{rtype}/$validate")),
            &resource,
        );
        assert_eq!(status, 200);
        let errors: Vec<_> = issues(&outcome)
            .into_iter()
            .filter(|i| i.0 == "error")
            .collect();
        assert!(errors.is_empty(), "{rtype_id}: {outcome:#}");
    }
}

#[test]
fn both_endpoints_share_ids_versions_etags_history_and_paging() {
    let server = server();
    create_patient(&server, STU3_PATIENT);
    let bundle = kanta_example(STU3_BUNDLE);
    let glucose = bundle["entry"][0]["resource"].clone();
    assert_eq!(glucose["meta"]["profile"][0], STU3_GLUCOSE);
    let (status, created, headers) = send(
        &server,
        reqwest::Method::POST,
        &stu3(&server, "Observation"),
        &glucose,
    );
    assert_eq!(status, 201, "{created:#}");
    let id = created["id"].as_str().unwrap().to_string();
    let location = headers["location"].to_str().unwrap();
    assert_eq!(
        location,
        stu3(&server, &format!("Observation/{id}/_history/1"))
    );
    assert_eq!(created["meta"]["profile"][0], STU3_GLUCOSE);
    assert_eq!(created["category"][0]["coding"][0]["system"], CAT_STU3);

    // Updated through R4: version 2 on both.
    let mut r4 = body(server.get(&format!("Observation/{id}")));
    r4["valueQuantity"]["value"] = json!(7.5);
    let response = server.put(&format!("Observation/{id}"), &r4);
    assert_eq!(response.status(), 200);
    let (_, read, headers) = get(&server, &stu3(&server, &format!("Observation/{id}")));
    assert_eq!(headers["etag"], "W/\"2\"");
    assert_eq!(read["meta"]["versionId"], "2");
    assert_eq!(read["valueQuantity"]["value"], json!(7.5));
    let (status, v1, _) = get(
        &server,
        &stu3(&server, &format!("Observation/{id}/_history/1")),
    );
    assert_eq!(status, 200);
    assert_eq!(
        v1["valueQuantity"]["value"],
        glucose["valueQuantity"]["value"]
    );
    let (_, history, _) = get(
        &server,
        &stu3(&server, &format!("Observation/{id}/_history")),
    );
    assert_eq!(history["type"], "history");
    assert_eq!(history["entry"].as_array().unwrap().len(), 2);
    for entry in history["entry"].as_array().unwrap() {
        assert_eq!(entry["resource"]["meta"]["profile"][0], STU3_GLUCOSE);
        assert!(
            entry["fullUrl"]
                .as_str()
                .unwrap()
                .starts_with(&stu3(&server, ""))
        );
    }

    // Updated through STU3 with If-Match: version 3, read through R4.
    let response = server
        .json(
            server
                .client
                .put(stu3(&server, &format!("Observation/{id}")))
                .header("If-Match", "W/\"2\""),
            &read,
        )
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        server.get(&format!("Observation/{id}")).headers()["etag"],
        "W/\"3\""
    );

    // Paging: next links stay at the STU3 endpoint and carry on.
    let batch = body(
        server
            .client
            .post(stu3(&server, ""))
            .header("Content-Type", FHIR_JSON)
            .body(
                serde_json::to_vec(&{
                    let mut b = bundle.clone();
                    b["entry"] = json!(b["entry"].as_array().unwrap()[1..41].to_vec());
                    b
                })
                .unwrap(),
            )
            .send()
            .unwrap(),
    );
    assert_eq!(statuses(&batch)["201 Created"], 40);
    let mut url = stu3(
        &server,
        &format!("Observation?patient={STU3_PATIENT}&_count=7"),
    );
    let mut seen = Vec::new();
    loop {
        let (status, page, _) = get(&server, &url);
        assert_eq!(status, 200, "{page:#}");
        for e in page["entry"].as_array().into_iter().flatten() {
            assert!(
                e["fullUrl"]
                    .as_str()
                    .unwrap()
                    .starts_with(&stu3(&server, ""))
            );
            seen.push(e["resource"]["id"].as_str().unwrap().to_string());
        }
        let next = page["link"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["relation"] == "next");
        match next {
            Some(link) => {
                url = link["url"].as_str().unwrap().to_string();
                assert!(url.starts_with(&stu3(&server, "Observation?")), "{url}");
            }
            None => break,
        }
    }
    let r4_ids: Vec<String> = {
        let page = body(server.get(&format!("Observation?patient={STU3_PATIENT}&_count=100")));
        page["entry"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["resource"]["id"].as_str().unwrap().to_string())
            .collect()
    };
    let posted = bundle["entry"].as_array().unwrap()[0..41]
        .iter()
        .filter(|e| e["resource"]["resourceType"] == "Observation")
        .count();
    assert!(posted > 7 * 2, "{posted}: several pages");
    assert_eq!(seen.len(), posted);
    assert_eq!(seen, r4_ids);

    // Deleted through STU3: gone on both.
    let response = server
        .client
        .delete(stu3(&server, &format!("Observation/{id}")))
        .send()
        .unwrap();
    assert_eq!(response.status(), 204);
    assert_deprecated(response.headers(), &server);
    assert_eq!(server.get(&format!("Observation/{id}")).status(), 410);
}

#[test]
fn what_stu3_cannot_express_is_answered_precisely_never_dropped() {
    let server = server();
    create_patient(&server, STU3_PATIENT);
    // Steps: an R4-only content (Kanta never served it in STU3).
    let mut steps = kanta_example("Observation-example-StepsTaken-max.json");
    let object = steps.as_object_mut().unwrap();
    object.remove("id");
    object.remove("meta");
    steps["meta"] =
        json!({"profile": ["http://phr.kanta.fi/StructureDefinition/fiphr-sd-stepstaken"]});
    steps["subject"] = json!({"reference": format!("Patient/{STU3_PATIENT}")});
    steps["performer"] = json!([{"reference": format!("Patient/{STU3_PATIENT}")}]);
    let created = server.post("Observation", &steps);
    let status = created.status();
    let created = body(created);
    assert_eq!(status, 201, "{created:#}");
    let id = created["id"].as_str().unwrap();
    let (status, outcome, headers) = get(&server, &stu3(&server, &format!("Observation/{id}")));
    assert_eq!(status, 406, "{outcome:#}");
    assert_deprecated(&headers, &server);
    assert_eq!(
        issues(&outcome),
        vec![(
            "error".to_string(),
            "not-supported".to_string(),
            "Observation.meta.profile[0]".to_string()
        )]
    );
    assert!(
        outcome.to_string().contains("/fhir/r4/Observation/"),
        "{outcome:#}"
    );
    // In a searchset it is an OperationOutcome entry, not a missing match.
    let weight = weight(STU3_PATIENT, 70.0);
    assert_eq!(server.post("Observation", &weight).status(), 201);
    let (_, page, _) = get(
        &server,
        &stu3(&server, &format!("Observation?patient={STU3_PATIENT}")),
    );
    assert_eq!(page["total"], 2);
    let modes: Vec<&str> = page["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["search"]["mode"].as_str().unwrap())
        .collect();
    assert_eq!(modes.iter().filter(|m| **m == "match").count(), 1);
    assert_eq!(modes.iter().filter(|m| **m == "outcome").count(), 1);
    let shown = page["entry"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["search"]["mode"] == "match")
        .unwrap();
    assert_eq!(
        shown["resource"]["meta"]["profile"][0],
        "http://phr.kanta.fi/StructureDefinition/fiphr-vitalsigns-stu3"
    );
    // Written through R4 as body weight, it is the STU3 vital signs and back again.
}

#[test]
fn stu3_input_that_cannot_cross_is_refused_by_element_and_changes_nothing() {
    let server = server();
    create_patient(&server, STU3_PATIENT);
    let bundle = kanta_example(STU3_BUNDLE);
    let mut bad = bundle["entry"][1]["resource"].clone();
    bad["valueAttachment"] = json!({"url": "http://example.org/x"});
    bad.as_object_mut().unwrap().remove("valueQuantity");
    let (status, outcome, headers) = send(
        &server,
        reqwest::Method::POST,
        &stu3(&server, "Observation"),
        &bad,
    );
    assert_eq!(status, 422, "{outcome:#}");
    assert_deprecated(&headers, &server);
    assert_eq!(issues(&outcome)[0].2, "Observation.valueAttachment");

    // A batch: the bad entry answers alone, in its place; the others are written.
    let mut entries: Vec<Value> = bundle["entry"].as_array().unwrap()[0..3].to_vec();
    entries[1]["resource"] = bad.clone();
    let batch = json!({"resourceType": "Bundle", "type": "batch", "entry": entries});
    let (status, answer, _) = send(&server, reqwest::Method::POST, &stu3(&server, ""), &batch);
    assert_eq!(status, 200);
    let statuses: Vec<&str> = answer["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["response"]["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        ["201 Created", "422 Unprocessable Entity", "201 Created"]
    );
    assert_eq!(
        issues(&answer["entry"][1]["response"]["outcome"])[0].2,
        "Bundle.entry[1].resource.valueAttachment"
    );

    // A transaction with it writes nothing.
    let mut entries: Vec<Value> = bundle["entry"].as_array().unwrap()[3..6].to_vec();
    entries[2]["resource"] = bad;
    let transaction = json!({"resourceType": "Bundle", "type": "transaction", "entry": entries});
    let (status, outcome, _) = send(
        &server,
        reqwest::Method::POST,
        &stu3(&server, ""),
        &transaction,
    );
    assert_eq!(status, 422, "{outcome:#}");
    let total = body(server.get(&format!("Observation?patient={STU3_PATIENT}&_count=0")));
    assert_eq!(total["total"], 2);

    // Types Kanta never served in STU3 are not found there.
    let (status, outcome, headers) = get(
        &server,
        &stu3(&server, &format!("Goal?patient={STU3_PATIENT}")),
    );
    assert_eq!(status, 404, "{outcome:#}");
    assert_deprecated(&headers, &server);
}

#[test]
fn the_stu3_capability_statement_and_profiles_say_what_is_served() {
    let server = server();
    let (status, cs, headers) = get(&server, &stu3(&server, "metadata"));
    assert_eq!(status, 200);
    assert_deprecated(&headers, &server);
    assert_eq!(cs["fhirVersion"], "3.0.1");
    assert_eq!(cs["acceptUnknown"], "no");
    assert_eq!(
        cs["implementation"]["url"],
        stu3(&server, "").trim_end_matches('/')
    );
    let types: Vec<&str> = cs["rest"][0]["resource"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "CarePlan",
            "MedicationAdministration",
            "Observation",
            "Patient",
            "Questionnaire",
            "QuestionnaireResponse",
            "StructureDefinition"
        ]
    );
    let profiles: Vec<&str> = cs["profile"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["reference"].as_str().unwrap())
        .collect();
    assert!(profiles.contains(&STU3_GLUCOSE));
    assert_eq!(profiles.len(), 9);
    let obs = cs["rest"][0]["resource"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "Observation")
        .unwrap();
    assert!(obs.get("supportedProfile").is_none());
    assert!(
        obs["searchParam"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "category")
    );
    // Each listed profile is served.
    for url in profiles {
        let (status, found, _) = get(
            &server,
            &stu3(&server, &format!("StructureDefinition?url={url}")),
        );
        assert_eq!(status, 200);
        assert_eq!(found["total"], 1, "{url}");
        let sd = &found["entry"][0]["resource"];
        assert_eq!(sd["fhirVersion"], "3.0.1");
        let id = sd["id"].as_str().unwrap();
        let (status, read, _) = get(
            &server,
            &stu3(&server, &format!("StructureDefinition/{id}")),
        );
        assert_eq!(status, 200);
        assert_eq!(&read, sd);
    }
}

#[test]
fn a_token_works_on_both_endpoints() {
    let server = Server::start(&[]);
    let scope = "patient/Observation.read patient/Observation.write patient/Patient.read";
    server.register_app("both-app", scope);
    let (patient, token) = server.token(&test_hetu("010180", 901), "both-app", scope);
    let mut obs = kanta_example(STU3_BUNDLE)["entry"][0]["resource"].clone();
    obs["subject"]["reference"] = json!(format!("Patient/{patient}"));
    obs["performer"][0]["reference"] = json!(format!("Patient/{patient}"));
    let response = server
        .json(
            server
                .client
                .post(stu3(&server, "Observation"))
                .bearer_auth(&token),
            &obs,
        )
        .send()
        .unwrap();
    let status = response.status();
    let created = body(response);
    assert_eq!(status, 201, "{created:#}");
    let id = created["id"].as_str().unwrap();
    // The creating application was filled in from the registration, as on R4.
    let read = body(server.get_as(&token, &format!("Observation/{id}")));
    assert!(
        read["extension"].to_string().contains("both-app"),
        "{read:#}"
    );
    let response = server
        .client
        .get(stu3(&server, &format!("Observation/{id}")))
        .bearer_auth(&token)
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    // An application registered for R4 only is still served STU3 in the sandbox (production
    // refuses it with 403; unit-tested in phr-auth and the server's request extractor).
    let out = server.admin(&[
        "app",
        "register",
        "--id",
        "r4-app",
        "--name",
        "R4 app",
        "--scope",
        scope,
        "--redirect-uri",
        "http://127.0.0.1:9/callback",
        "--fhir-version",
        "r4",
    ]);
    assert!(out.contains("fhir_versions: r4\n"), "{out}");
    let shown: Value =
        serde_json::from_str(&server.admin(&["app", "show", "r4-app", "--json"])).unwrap();
    assert_eq!(
        shown["fhir_versions"],
        json!({"r4": true, "stu3": false}),
        "{shown:#}"
    );
    let (_, r4_token) = server.token(&test_hetu("010180", 901), "r4-app", scope);
    let response = server
        .client
        .get(stu3(&server, &format!("Observation/{id}")))
        .bearer_auth(&r4_token)
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    let error = server.admin_fails(&[
        "app",
        "register",
        "--id",
        "x-app",
        "--name",
        "X",
        "--scope",
        scope,
        "--redirect-uri",
        "http://127.0.0.1:9/callback",
        "--fhir-version",
        "dstu2",
    ]);
    assert!(error.contains("use r4, stu3 or r4,stu3"), "{error}");
    // Without a token: refused, and still marked deprecated.
    let response = server
        .client
        .get(stu3(&server, &format!("Observation/{id}")))
        .send()
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_deprecated(response.headers(), &server);
}

#[test]
fn a_stu3_dose_not_given_meets_the_r4_status_rule() {
    let server = server();
    create_patient(&server, STU3_PATIENT);
    let bundle = kanta_example(STU3_BUNDLE);
    let insulin = bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["resource"].clone())
        .find(|r| r["resourceType"] == "MedicationAdministration")
        .unwrap();
    // Given: stored with its dosage, read through R4 as the insulin-dosing R4 profile.
    let (status, created, _) = send(
        &server,
        reqwest::Method::POST,
        &stu3(&server, "MedicationAdministration"),
        &insulin,
    );
    assert_eq!(status, 201, "{created:#}");
    let r4 = body(server.get(&format!(
        "MedicationAdministration/{}",
        created["id"].as_str().unwrap()
    )));
    assert_eq!(
        r4["meta"]["profile"][0],
        "http://phr.kanta.fi/StructureDefinition/fiphr-sd-insulindosing-r4"
    );
    assert_eq!(r4["dosage"], insulin["dosage"]);
    assert_eq!(r4["status"], "completed");
    // Not given: R4 status not-done, which Kanta does not store (completed only).
    let mut not_given = insulin.clone();
    not_given["notGiven"] = json!(true);
    not_given["identifier"][0]["value"] = json!(format!("urn:uuid:{}", uuid()));
    let (status, outcome, _) = send(
        &server,
        reqwest::Method::POST,
        &stu3(&server, "MedicationAdministration"),
        &not_given,
    );
    assert_eq!(status, 422, "{outcome:#}");
    assert!(
        issues(&outcome)
            .iter()
            .any(|i| i.2 == "MedicationAdministration.status"),
        "{outcome:#}"
    );
}
