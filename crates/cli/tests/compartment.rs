//! Compartment search over HTTP: `GET Patient/[id]/[type]?…` and
//! `POST Patient/[id]/[type]/_search` answer exactly as `[type]?patient=[id]` does (paging,
//! totals, strictness), only for the types of the Patient compartment, and only within the
//! citizen a token is bound to.

mod common;

use common::*;
use serde_json::Value;

fn match_ids(bundle: &Value) -> Vec<String> {
    bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["search"]["mode"] == "match")
        .map(|e| e["resource"]["id"].as_str().unwrap().to_string())
        .collect()
}

fn link(bundle: &Value, relation: &str) -> Option<String> {
    bundle["link"]
        .as_array()?
        .iter()
        .find(|l| l["relation"] == relation)
        .map(|l| l["url"].as_str().unwrap().to_string())
}

fn get_url(server: &Server, url: &str) -> Value {
    let response = server.client.get(url).send().unwrap();
    assert_eq!(response.status(), 200, "{url}");
    body(response)
}

/// Every match of a search, following `next` links; checks `total` on every page.
fn all_pages(server: &Server, first: &str) -> Vec<String> {
    let mut bundle = body(server.get(first));
    let total = bundle["total"].as_u64().expect("a total");
    let mut ids = match_ids(&bundle);
    while let Some(next) = link(&bundle, "next") {
        bundle = get_url(server, &next);
        assert_eq!(bundle["total"].as_u64(), Some(total), "{next}");
        ids.extend(match_ids(&bundle));
    }
    assert_eq!(ids.len() as u64, total, "{first}");
    ids
}

fn store(server: &Server, resource: &Value) -> String {
    let response = server.post("Observation", resource);
    assert_eq!(response.status(), 201);
    body(response)["id"].as_str().unwrap().to_string()
}

#[test]
fn compartment_search_answers_as_the_patient_parameter_with_working_links() {
    let server = Server::open_sandbox();
    let p = create_patient(&server, &uuid());
    let other = create_patient(&server, &uuid());
    for i in 0..5 {
        store(&server, &weight(&p, 70.0 + f64::from(i)));
    }
    store(&server, &weight(&other, 90.0));

    let by_parameter = all_pages(
        &server,
        &format!("Observation?patient={p}&code=29463-7&_sort=-_lastUpdated&_count=2"),
    );
    let by_path = all_pages(
        &server,
        &format!("Patient/{p}/Observation?code=29463-7&_sort=-_lastUpdated&_count=2"),
    );
    assert_eq!(by_path.len(), 5);
    assert_eq!(by_path, by_parameter);

    // `self` names the compartment path and reproduces the page; so does a later page's.
    let first = body(server.get(&format!("Patient/{p}/Observation?_count=2")));
    let own = link(&first, "self").unwrap();
    assert!(
        own.starts_with(&format!("{}/Patient/{p}/Observation?", server.base)),
        "{own}"
    );
    assert_eq!(match_ids(&get_url(&server, &own)), match_ids(&first));
    let second = get_url(&server, &link(&first, "next").unwrap());
    let second_self = link(&second, "self").unwrap();
    assert!(second_self.contains(&format!("/Patient/{p}/Observation?")));
    assert_eq!(
        match_ids(&get_url(&server, &second_self)),
        match_ids(&second)
    );
    let back = get_url(&server, &link(&second, "previous").unwrap());
    assert_eq!(match_ids(&back), match_ids(&first));

    // POST .../_search with form parameters.
    let response = server
        .client
        .post(server.url(&format!("Patient/{p}/Observation/_search")))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("code=29463-7&_count=100")
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    let posted = body(response);
    assert_eq!(posted["total"], 5);
    let mut posted_ids = match_ids(&posted);
    posted_ids.sort();
    let mut expected = by_path.clone();
    expected.sort();
    assert_eq!(posted_ids, expected);

    // Kanta's mandatory patient is satisfied by the path; another patient is refused.
    assert_eq!(
        body(server.get(&format!("Patient/{p}/MedicationAdministration")))["total"],
        0
    );
    assert_eq!(
        body(server.get(&format!("Patient/{p}/Observation?patient={p}")))["total"],
        5
    );
    assert_eq!(
        server
            .get(&format!("Patient/{p}/Observation?patient={other}"))
            .status(),
        400
    );
    // The same strictness as a type search.
    assert_eq!(
        server
            .get(&format!("Patient/{p}/Observation?shoe-size=42"))
            .status(),
        400
    );
    // The Patient is in its own compartment.
    assert_eq!(
        match_ids(&body(server.get(&format!("Patient/{p}/Patient")))),
        std::slice::from_ref(&p)
    );
}

#[test]
fn compartment_search_serves_the_patient_compartment_types_only() {
    let server = Server::open_sandbox();
    let p = create_patient(&server, &uuid());
    let response = server.get(&format!("Patient/{p}/Questionnaire"));
    assert_eq!(response.status(), 400);
    let text = body(response)["issue"][0]["diagnostics"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(text.contains("not in the Patient compartment"), "{text}");
    assert!(
        text.contains("Observation") && text.contains("CarePlan"),
        "{text}"
    );
    assert_eq!(server.get(&format!("Patient/{p}/Nope")).status(), 404);
    assert_eq!(server.get("Patient/a%20b/Observation").status(), 400);
    assert_eq!(server.get("Patient/a%20b/AuditEvent").status(), 400);
    assert_eq!(
        server.get(&format!("Encounter/{p}/Observation")).status(),
        404
    );
    // Other methods on the compartment path are not allowed.
    assert_eq!(
        server
            .client
            .delete(server.url(&format!("Patient/{p}/Observation")))
            .send()
            .unwrap()
            .status(),
        405
    );
}

#[test]
fn compartment_search_is_confined_to_the_tokens_citizen() {
    let server = Server::start(&[]);
    let scope = "patient/Observation.read patient/Observation.write patient/AuditEvent.read";
    server.register_app("compartment-app", scope);
    let (anna, anna_token) = server.token(&test_hetu("010190", 911), "compartment-app", scope);
    let (bert, bert_token) = server.token(&test_hetu("020285", 912), "compartment-app", scope);
    for i in 0..3 {
        let response = server.post_as(
            &anna_token,
            "Observation",
            &weight(&anna, 60.0 + f64::from(i)),
        );
        assert_eq!(response.status(), 201);
    }
    let response = server.post_as(&bert_token, "Observation", &weight(&bert, 90.0));
    assert_eq!(response.status(), 201);

    // Anna's own compartment, page by page with her token.
    let mut page =
        body(server.get_as(&anna_token, &format!("Patient/{anna}/Observation?_count=2")));
    assert_eq!(page["total"], 3);
    let mut seen = match_ids(&page);
    while let Some(next) = link(&page, "next") {
        let response = server
            .client
            .get(&next)
            .bearer_auth(&anna_token)
            .send()
            .unwrap();
        assert_eq!(response.status(), 200);
        page = body(response);
        seen.extend(match_ids(&page));
    }
    assert_eq!(seen.len(), 3);

    // Bert's compartment: refused exactly as `Observation?patient=bert` is.
    for query in [
        format!("Patient/{bert}/Observation"),
        format!("Observation?patient={bert}"),
        format!("Patient/{bert}/AuditEvent"),
        format!("AuditEvent?patient={bert}"),
    ] {
        assert_eq!(server.get_as(&anna_token, &query).status(), 403, "{query}");
    }

    // The access log as a compartment search.
    let log = body(server.get_as(&anna_token, &format!("Patient/{anna}/AuditEvent")));
    assert_eq!(log["resourceType"], "Bundle");
    assert!(log["total"].as_u64().unwrap() > 0, "{log:#}");
    assert!(
        link(&log, "self")
            .unwrap()
            .contains(&format!("/Patient/{anna}/AuditEvent?"))
    );
}
