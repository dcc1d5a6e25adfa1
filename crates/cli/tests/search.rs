//! FHIR search over HTTP: every parameter type, prefixes, modifiers, sorting,
//! paging under concurrent writes, includes, chaining, strict and lenient handling, totals,
//! compartment search, Kanta's rules, and counts over Kanta's 300-entry batch that are
//! computed here from the bundle itself.

mod common;

use std::collections::HashSet;

use common::*;
use serde_json::{Value, json};

const KANTA_BUNDLE: &str = "diabetes-data-bundle-kantaphr-r4-en.json";
const KANTA_PATIENT: &str = "77c2c8d2-11ce-41d5-8150-75489f8b0b0a";

fn weight_at(patient: &str, kg: f64, when: &str) -> Value {
    let mut obs = weight(patient, kg);
    obs["effectiveDateTime"] = json!(when);
    obs
}

fn create(server: &Server, resource: &Value) -> Value {
    let rtype = resource["resourceType"].as_str().unwrap();
    let response = server.post(rtype, resource);
    let status = response.status();
    let body = body(response);
    assert_eq!(status, 201, "{body:#}");
    body
}

/// Ids of the matches of a search (all pages).
fn search_ids(server: &Server, query: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut url = server.url(query);
    loop {
        let response = server.client.get(&url).send().unwrap();
        let status = response.status();
        let bundle = body(response);
        assert_eq!(status, 200, "{query}: {bundle:#}");
        for entry in bundle["entry"].as_array().into_iter().flatten() {
            if entry["search"]["mode"] == "match" {
                ids.push(entry["resource"]["id"].as_str().unwrap().to_string());
            }
        }
        match next_link(&bundle) {
            Some(next) => url = next,
            None => return ids,
        }
    }
}

fn next_link(bundle: &Value) -> Option<String> {
    bundle["link"]
        .as_array()?
        .iter()
        .find(|l| l["relation"] == "next")
        .map(|l| l["url"].as_str().unwrap().to_string())
}

fn count(server: &Server, query: &str) -> usize {
    search_ids(server, query).len()
}

fn status(server: &Server, query: &str) -> u16 {
    server.get(query).status().as_u16()
}

fn id(resource: &Value) -> String {
    resource["id"].as_str().unwrap().to_string()
}

/// Kanta's batch bundle loaded for its Patient, and the bundle itself.
fn kanta_server() -> (Server, Value) {
    let server = Server::open_sandbox();
    create_patient(&server, KANTA_PATIENT);
    let bundle = kanta_example(KANTA_BUNDLE);
    let response = body(server.post("", &bundle));
    assert!(
        response["entry"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["response"]["status"].as_str().unwrap().starts_with("201"))
    );
    (server, bundle)
}

fn resources_of<'a>(bundle: &'a Value, rtype: &str) -> Vec<&'a Value> {
    bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["resource"])
        .filter(|r| r["resourceType"] == rtype)
        .collect()
}

#[test]
fn kanta_bundle_counts_by_code_date_value_and_insulin() {
    let (server, bundle) = kanta_server();
    let observations = resources_of(&bundle, "Observation");
    let p = KANTA_PATIENT;

    let cgm = observations
        .iter()
        .filter(|o| o["code"]["coding"][0]["code"] == "14745-4")
        .count();
    assert_eq!(
        count(
            &server,
            &format!("Observation?patient={p}&code=14745-4&_count=50")
        ),
        cgm
    );
    assert_eq!(
        count(
            &server,
            &format!("Observation?patient={p}&code=http://loinc.org|14745-4")
        ),
        cgm
    );
    assert_eq!(
        count(
            &server,
            &format!("Observation?patient={p}&code=9059-7,14745-4")
        ),
        observations.len()
    );

    // One day of CGM readings, by the date prefix on the local date of the first entry.
    let day = observations[0]["effectiveDateTime"].as_str().unwrap()[..10].to_string();
    let same_day = observations
        .iter()
        .filter(|o| {
            o["effectiveDateTime"]
                .as_str()
                .is_some_and(|d| d.starts_with(&day) && d.ends_with("+03:00"))
        })
        .filter(|o| {
            // Readings in the first three hours after local midnight fall on the previous UTC day.
            let hour: u32 = o["effectiveDateTime"].as_str().unwrap()[11..13]
                .parse()
                .unwrap();
            hour >= 3
        })
        .count();
    let next_day = next_date(&day);
    let query = format!(
        "Observation?patient={p}&date=ge{day}T03:00:00%2B03:00&date=lt{next_day}T03:00:00%2B03:00"
    );
    let in_utc_day = observations
        .iter()
        .filter(|o| {
            let t = o["effectiveDateTime"].as_str().unwrap();
            t.ends_with("+03:00")
                && ((t.starts_with(&day) && &t[11..13] >= "03")
                    || (t.starts_with(&next_day) && &t[11..13] < "03"))
        })
        .count();
    assert!(same_day <= in_utc_day);
    assert_eq!(count(&server, &query), in_utc_day, "{query}");

    let high = observations
        .iter()
        .filter(|o| {
            o["valueQuantity"]["value"]
                .as_f64()
                .is_some_and(|v| v > 10.0)
                && o["valueQuantity"]["code"] == "mmol/L"
        })
        .count();
    assert!(high > 0);
    let q = format!("Observation?patient={p}&value-quantity=gt10|http://unitsofmeasure.org|mmol/L");
    assert_eq!(count(&server, &q), high);

    let insulin = resources_of(&bundle, "MedicationAdministration");
    assert_eq!(
        count(
            &server,
            &format!("MedicationAdministration?patient={p}&code=ins-short-fast")
        ),
        insulin
            .iter()
            .filter(|m| m["medicationCodeableConcept"]["coding"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["code"] == "ins-short-fast"))
            .count()
    );
    assert_eq!(
        count(&server, &format!("MedicationAdministration?patient={p}")),
        insulin.len()
    );
    let total = body(server.get(&format!(
        "MedicationAdministration?patient={p}&_summary=count"
    )));
    assert_eq!(total["total"], json!(insulin.len()));
    assert!(total["entry"].as_array().is_none_or(|e| e.is_empty()));
}

fn next_date(day: &str) -> String {
    let (y, m, d): (i32, u32, u32) = (
        day[..4].parse().unwrap(),
        day[5..7].parse().unwrap(),
        day[8..10].parse().unwrap(),
    );
    let days_in_month = match m {
        2 if y % 4 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    let (y, m, d) = if d < days_in_month {
        (y, m, d + 1)
    } else if m < 12 {
        (y, m + 1, 1)
    } else {
        (y + 1, 1, 1)
    };
    format!("{y:04}-{m:02}-{d:02}")
}

#[test]
fn kanta_rules_patient_is_mandatory_and_codes_default_to_loinc() {
    let server = Server::open_sandbox();
    let patient = create_patient(&server, &uuid());
    create(&server, &weight(&patient, 80.0));
    for rtype in [
        "Observation",
        "MedicationAdministration",
        "QuestionnaireResponse",
        "CarePlan",
    ] {
        let response = server.get(&format!("{rtype}?_count=1"));
        assert_eq!(response.status(), 400, "{rtype}");
        assert_eq!(body(response)["issue"][0]["code"], "required");
    }
    assert_eq!(
        count(
            &server,
            &format!("Observation?patient={patient}&code=29463-7")
        ),
        1
    );
    assert_eq!(
        count(
            &server,
            &format!("Observation?patient={patient}&code=http://snomed.info/sct|29463-7")
        ),
        0
    );
}

#[test]
fn date_prefixes() {
    let server = Server::open_sandbox();
    let p = create_patient(&server, &uuid());
    let a = id(&create(
        &server,
        &weight_at(&p, 70.0, "2024-01-10T12:00:00Z"),
    ));
    let b = id(&create(
        &server,
        &weight_at(&p, 71.0, "2024-01-20T12:00:00Z"),
    ));
    let c = id(&create(
        &server,
        &weight_at(&p, 72.0, "2024-02-05T12:00:00Z"),
    ));
    let set = |q: &str| -> HashSet<String> {
        search_ids(&server, &format!("Observation?patient={p}&{q}"))
            .into_iter()
            .collect()
    };
    let of = |ids: &[&String]| -> HashSet<String> { ids.iter().map(|s| s.to_string()).collect() };
    assert_eq!(set("date=2024-01"), of(&[&a, &b]));
    assert_eq!(set("date=eq2024-01-20"), of(&[&b]));
    assert_eq!(set("date=ne2024-01-20"), of(&[&a, &c]));
    assert_eq!(set("date=gt2024-01-20"), of(&[&c]));
    assert_eq!(set("date=ge2024-01-20"), of(&[&b, &c]));
    assert_eq!(set("date=lt2024-01-20"), of(&[&a]));
    assert_eq!(set("date=le2024-01-20"), of(&[&a, &b]));
    assert_eq!(set("date=sa2024-01-15"), of(&[&b, &c]));
    assert_eq!(set("date=eb2024-01-15"), of(&[&a]));
    assert!(set("date=ap2024-01-21").contains(&b));
    assert_eq!(set("date=ge2024-01-15&date=lt2024-02-01"), of(&[&b]));
    assert_eq!(set("date=2024-01-10,2024-02-05"), of(&[&a, &c]));
    assert_eq!(
        status(&server, &format!("Observation?patient={p}&date=xx2024")),
        400
    );
    assert_eq!(
        status(&server, &format!("Observation?patient={p}&date=2024-13-01")),
        400
    );
}

#[test]
fn sort_count_and_paging_links() {
    let server = Server::open_sandbox();
    let p = create_patient(&server, &uuid());
    let mut made = Vec::new();
    for (i, day) in [
        "2024-03-05",
        "2024-03-01",
        "2024-03-09",
        "2024-03-03",
        "2024-03-07",
    ]
    .iter()
    .enumerate()
    {
        made.push((
            day.to_string(),
            id(&create(
                &server,
                &weight_at(&p, 60.0 + i as f64, &format!("{day}T08:00:00Z")),
            )),
        ));
    }
    let mut by_date = made.clone();
    by_date.sort();
    let ascending: Vec<String> = by_date.iter().map(|(_, id)| id.clone()).collect();
    assert_eq!(
        search_ids(
            &server,
            &format!("Observation?patient={p}&_sort=date&_count=2")
        ),
        ascending
    );
    let mut descending = ascending.clone();
    descending.reverse();
    assert_eq!(
        search_ids(&server, &format!("Observation?patient={p}&_sort=-date")),
        descending
    );
    let mut by_id: Vec<String> = ascending.clone();
    by_id.sort();
    assert_eq!(
        search_ids(&server, &format!("Observation?patient={p}&_sort=_id")),
        by_id
    );
    let created_order: Vec<String> = made.iter().map(|(_, id)| id.clone()).collect();
    assert_eq!(
        search_ids(
            &server,
            &format!("Observation?patient={p}&_sort=_lastUpdated")
        ),
        created_order
    );
    assert_eq!(
        search_ids(
            &server,
            &format!("Observation?patient={p}&_sort=code,-date")
        ),
        descending
    );

    let first = body(server.get(&format!(
        "Observation?patient={p}&_sort=date&_count=2&_total=accurate"
    )));
    assert_eq!(first["total"], 5);
    assert_eq!(first["entry"].as_array().unwrap().len(), 2);
    let second = body(
        server
            .client
            .get(next_link(&first).unwrap())
            .send()
            .unwrap(),
    );
    let previous = second["link"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["relation"] == "previous")
        .expect("previous link");
    let back = body(
        server
            .client
            .get(previous["url"].as_str().unwrap())
            .send()
            .unwrap(),
    );
    assert_eq!(
        back["entry"][0]["resource"]["id"],
        first["entry"][0]["resource"]["id"]
    );
    // A tampered cursor is refused.
    let next = next_link(&first).unwrap();
    let tampered = next.replace("_page=", "_page=x");
    assert_eq!(server.client.get(tampered).send().unwrap().status(), 400);
}

#[test]
fn paging_is_stable_while_writes_happen() {
    let server = Server::open_sandbox();
    let p = create_patient(&server, &uuid());
    let mut before = HashSet::new();
    for i in 0..12 {
        before.insert(id(&create(
            &server,
            &weight_at(
                &p,
                60.0 + i as f64,
                &format!("2024-04-{:02}T08:00:00Z", i + 1),
            ),
        )));
    }
    let mut seen = Vec::new();
    let mut url = server.url(&format!("Observation?patient={p}&_sort=date&_count=5"));
    loop {
        let page = body(server.client.get(&url).send().unwrap());
        for e in page["entry"].as_array().unwrap() {
            seen.push(e["resource"]["id"].as_str().unwrap().to_string());
        }
        // Writes between pages: new entries before and after the cursor position.
        create(&server, &weight_at(&p, 50.0, "2024-04-01T07:00:00Z"));
        create(&server, &weight_at(&p, 90.0, "2024-04-30T08:00:00Z"));
        match next_link(&page) {
            Some(next) => url = next,
            None => break,
        }
    }
    let unique: HashSet<String> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "a resource appeared on two pages");
    assert_eq!(
        unique, before,
        "paging must show exactly the snapshot of the first page"
    );
}

#[test]
fn token_modifiers() {
    let server = Server::open_sandbox();
    let p = create_patient(&server, &uuid());
    let w = create(&server, &weight(&p, 80.0));
    let mut bp = kanta_example("Observation-example-Bloodpressure-min.json");
    bp["subject"]["reference"] = json!(format!("Patient/{p}"));
    bp["performer"][0]["reference"] = json!(format!("Patient/{p}"));
    bp.as_object_mut().unwrap().remove("id");
    let bp = create(&server, &bp);
    let ids = |q: &str| search_ids(&server, &format!("Observation?patient={p}&{q}"));
    assert_eq!(ids("code:not=29463-7"), vec![id(&bp)]);
    assert_eq!(ids("code:text=body weight"), vec![id(&w)]);
    let identifier = w["identifier"][0]["value"].as_str().unwrap();
    assert_eq!(ids(&format!("identifier={identifier}")), vec![id(&w)]);
    assert_eq!(
        ids(&format!("identifier=urn:ietf:rfc:3986|{identifier}")),
        vec![id(&w)]
    );
    assert_eq!(ids("category=vital-signs").len(), 2);
    assert_eq!(ids("value-quantity:missing=true"), vec![id(&bp)]);
    assert_eq!(ids("value-quantity:missing=false"), vec![id(&w)]);
    assert_eq!(
        status(&server, &format!("Observation?patient={p}&code:exact=x")),
        400
    );
}

#[test]
fn quantity_and_composite_parameters() {
    let server = Server::open_sandbox();
    let p = create_patient(&server, &uuid());
    let light = id(&create(&server, &weight(&p, 62.5)));
    let heavy = id(&create(&server, &weight(&p, 95.0)));
    let ids = |q: &str| search_ids(&server, &format!("Observation?patient={p}&{q}"));
    assert_eq!(ids("value-quantity=gt80"), vec![heavy.clone()]);
    assert_eq!(
        ids("value-quantity=le62.5|http://unitsofmeasure.org|kg"),
        vec![light.clone()]
    );
    assert_eq!(ids("value-quantity=62.5"), vec![light.clone()]);
    assert!(ids("value-quantity=62|http://unitsofmeasure.org|g").is_empty());
    assert_eq!(
        ids("code-value-quantity=http://loinc.org|29463-7$gt90"),
        vec![heavy]
    );

    let mut bp = kanta_example("Observation-example-Bloodpressure-min.json");
    bp["subject"]["reference"] = json!(format!("Patient/{p}"));
    bp["performer"][0]["reference"] = json!(format!("Patient/{p}"));
    bp.as_object_mut().unwrap().remove("id");
    let systolic = bp["component"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["code"]["coding"][0]["code"] == "8480-6")
        .unwrap()["valueQuantity"]["value"]
        .as_f64()
        .unwrap();
    let bp = id(&create(&server, &bp));
    assert_eq!(
        ids(&format!(
            "component-code-value-quantity=http://loinc.org|8480-6$ge{systolic}"
        )),
        vec![bp.clone()]
    );
    assert!(
        ids(&format!(
            "component-code-value-quantity=http://loinc.org|8480-6$gt{systolic}"
        ))
        .is_empty()
    );
    assert_eq!(
        ids(&format!("component-value-quantity={systolic}")),
        vec![bp]
    );
}

#[test]
fn string_number_uri_and_reference_parameters() {
    let server = Server::open_sandbox();
    let org = |name: &str| json!({"resourceType": "Organization", "name": name});
    let a = id(&create(&server, &org("Äänekosken terveysasema")));
    let b = id(&create(&server, &org("Helsinki Health")));
    let ids = |q: &str| -> Vec<String> { search_ids(&server, q) };
    assert_eq!(ids("Organization?name=aanekosken"), vec![a.clone()]);
    assert_eq!(ids("Organization?name:contains=terveys"), vec![a.clone()]);
    assert_eq!(
        ids("Organization?name:exact=Helsinki Health"),
        vec![b.clone()]
    );
    assert!(ids("Organization?name:exact=helsinki health").is_empty());

    let library = |url: &str| {
        json!({"resourceType": "Library", "status": "active", "url": url,
        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/library-type", "code": "logic-library"}]}})
    };
    let l1 = id(&create(&server, &library("http://example.org/Library/one")));
    create(&server, &library("http://example.org/Library/two"));
    assert_eq!(ids("Library?url=http://example.org/Library/one"), vec![l1]);
    assert_eq!(ids("Library?url:below=http://example.org/Library").len(), 2);

    let p = create_patient(&server, &uuid());
    let risk = |prob: &str| {
        json!({"resourceType": "RiskAssessment", "status": "final", "subject": {"reference": format!("Patient/{p}")},
        "prediction": [{"probabilityDecimal": serde_json::from_str::<Value>(prob).unwrap()}]})
    };
    let low = id(&create(&server, &risk("0.1")));
    let high = id(&create(&server, &risk("0.85")));
    assert_eq!(
        ids(&format!(
            "RiskAssessment?subject=Patient/{p}&probability=gt0.5"
        )),
        vec![high.clone()]
    );
    assert_eq!(
        ids(&format!("RiskAssessment?patient={p}&probability=0.1")),
        vec![low]
    );
    assert_eq!(
        ids(&format!(
            "RiskAssessment?subject:Patient={p}&probability=ge0.85"
        )),
        vec![high]
    );
    assert_eq!(
        status(
            &server,
            &format!("RiskAssessment?patient={p}&probability=abc")
        ),
        400
    );
}

#[test]
fn include_revinclude_chaining_and_has() {
    let server = Server::open_sandbox();
    let p = create_patient(&server, &uuid());
    let w = id(&create(&server, &weight(&p, 80.0)));
    let bundle = body(server.get(&format!(
        "Observation?patient={p}&_include=Observation:subject"
    )));
    let modes: Vec<(String, String)> = bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["search"]["mode"].as_str().unwrap().to_string(),
                e["resource"]["resourceType"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(modes.contains(&("match".into(), "Observation".into())));
    assert!(modes.contains(&("include".into(), "Patient".into())));

    let rev = body(server.get(&format!("Patient?_id={p}&_revinclude=Observation:subject")));
    let included: Vec<&str> = rev["entry"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["search"]["mode"] == "include")
        .map(|e| e["resource"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(included, vec![w.as_str()]);

    let pseudonym = format!("urn:uuid:{p}");
    assert_eq!(
        search_ids(
            &server,
            &format!("Observation?patient={p}&subject:Patient.identifier={pseudonym}")
        ),
        vec![w.clone()]
    );
    assert!(
        search_ids(
            &server,
            &format!(
                "Observation?patient={p}&subject:Patient.identifier=urn:uuid:{}",
                uuid()
            )
        )
        .is_empty()
    );
    assert_eq!(
        search_ids(&server, "Patient?_has:Observation:subject:code=29463-7"),
        vec![p.clone()]
    );
    assert!(search_ids(&server, "Patient?_has:Observation:subject:code=8867-4").is_empty());
}

#[test]
fn summary_and_elements_subset_the_results() {
    let server = Server::open_sandbox();
    let p = create_patient(&server, &uuid());
    create(&server, &weight(&p, 80.0));
    let summary = body(server.get(&format!("Observation?patient={p}&_summary=true")));
    let resource = &summary["entry"][0]["resource"];
    assert!(resource.get("text").is_none());
    assert!(resource.get("valueQuantity").is_some());
    assert!(
        resource["meta"]["tag"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["code"] == "SUBSETTED")
    );
    let elements = body(server.get(&format!(
        "Observation?patient={p}&_elements=valueQuantity,effective"
    )));
    let resource = &elements["entry"][0]["resource"];
    assert!(resource.get("valueQuantity").is_some() && resource.get("effectiveDateTime").is_some());
    assert!(resource.get("performer").is_none());
    let data = body(server.get(&format!("Observation?patient={p}&_summary=data")));
    assert!(data["entry"][0]["resource"].get("text").is_none());
}

/// The entries of a searchset with `search.mode` `mode`.
fn entries_in_mode<'a>(bundle: &'a Value, mode: &str) -> Vec<&'a Value> {
    bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["search"]["mode"] == mode)
        .collect()
}

/// A GET with a `Prefer` header.
fn get_preferring(server: &Server, query: &str, prefer: &str) -> reqwest::blocking::Response {
    server
        .client
        .get(server.url(query))
        .header("Prefer", prefer)
        .send()
        .unwrap()
}

/// The diagnostics of a 400 answer.
fn refusal(response: reqwest::blocking::Response) -> String {
    assert_eq!(response.status(), 400);
    let outcome = body(response);
    assert_eq!(outcome["resourceType"], "OperationOutcome");
    outcome["issue"][0]["diagnostics"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn unknown_parameters_and_sort_keys_are_refused_naming_the_supported_ones() {
    let server = Server::open_sandbox();
    let p = create_patient(&server, &uuid());
    create(&server, &weight(&p, 80.0));
    for prefer in [None, Some("handling=strict")] {
        let query = format!("Observation?patient={p}&shoe-size=42");
        let response = match prefer {
            Some(prefer) => get_preferring(&server, &query, prefer),
            None => server.get(&query),
        };
        let text = refusal(response);
        for needle in ["shoe-size", "code", "date", "_sort"] {
            assert!(text.contains(needle), "{needle}: {text}");
        }
    }
    let text = refusal(server.get(&format!("Observation?patient={p}&_sort=shoe-size")));
    assert!(
        text.contains("shoe-size") && text.contains("date"),
        "{text}"
    );
    // MedicationAdministration has no `date`: its sort key is effective-time.
    let text = refusal(server.get(&format!("MedicationAdministration?patient={p}&_sort=date")));
    assert!(text.contains("effective-time"), "{text}");
    assert_eq!(
        status(
            &server,
            &format!("MedicationAdministration?patient={p}&_sort=effective-time")
        ),
        200
    );
    let text = refusal(server.get(&format!("Observation?patient={p}&_contained=true")));
    assert!(text.contains("_contained"), "{text}");
    // A parameter without a value asks for nothing.
    let empty = body(server.get(&format!("Observation?patient={p}&code=")));
    assert_eq!(entries_in_mode(&empty, "match").len(), 1);
    assert!(entries_in_mode(&empty, "outcome").is_empty());
}

#[test]
fn lenient_handling_ignores_and_reports_in_one_outcome_entry() {
    let server = Server::open_sandbox();
    let p = create_patient(&server, &uuid());
    create(&server, &weight(&p, 80.0));
    let lenient = body(get_preferring(
        &server,
        &format!("Observation?patient={p}&shoe-size=42&_sort=shoe-size,-date"),
        "handling=lenient",
    ));
    assert_eq!(entries_in_mode(&lenient, "match").len(), 1);
    assert_eq!(lenient["total"], 1);
    let outcomes = entries_in_mode(&lenient, "outcome");
    assert_eq!(outcomes.len(), 1, "{lenient:#}");
    let outcome = &outcomes[0]["resource"];
    assert_eq!(outcome["resourceType"], "OperationOutcome");
    assert_eq!(outcome["issue"].as_array().unwrap().len(), 2);
    assert!(outcome.to_string().contains("shoe-size"));
    assert!(
        outcome["issue"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["severity"] == "warning")
    );
    // Nothing to report: no outcome entry, leniently or not.
    let clean = body(get_preferring(
        &server,
        &format!("Observation?patient={p}&_count=20000"),
        "handling=lenient",
    ));
    assert!(entries_in_mode(&clean, "outcome").is_empty(), "{clean:#}");
}

#[test]
fn every_searchset_carries_its_total_on_every_page_unless_none_is_asked() {
    let server = Server::open_sandbox();
    let p = create_patient(&server, &uuid());
    for day in 1..=7 {
        create(
            &server,
            &weight_at(
                &p,
                70.0 + f64::from(day),
                &format!("2024-03-0{day}T08:00:00Z"),
            ),
        );
    }
    for total in ["", "&_total=estimate", "&_total=accurate"] {
        let mut url = server.url(&format!("Observation?patient={p}&_count=3{total}"));
        let mut read = 0;
        let mut pages = 0;
        loop {
            let page = body(server.client.get(&url).send().unwrap());
            assert_eq!(page["total"], 7, "page {pages} of '{total}': {page:#}");
            read += entries_in_mode(&page, "match").len();
            pages += 1;
            match next_link(&page) {
                Some(next) => url = next,
                None => break,
            }
        }
        assert_eq!((read, pages), (7, 3), "{total}");
    }
    let none = body(server.get(&format!("Observation?patient={p}&_count=3&_total=none")));
    assert!(none.get("total").is_none(), "{none:#}");
    assert_eq!(entries_in_mode(&none, "match").len(), 3);
    // Nothing matches: a total of 0 and no entries.
    let nothing = body(server.get(&format!("Observation?patient={p}&code=8867-4")));
    assert_eq!(nothing["total"], 0);
    assert!(nothing.get("entry").is_none(), "{nothing:#}");
}

#[test]
fn count_zero_and_summary_count_answer_the_total_alone() {
    let server = Server::open_sandbox();
    let p = create_patient(&server, &uuid());
    for _ in 0..4 {
        create(&server, &weight(&p, 80.0));
    }
    for query in [
        format!("Observation?patient={p}&_count=0"),
        format!("Observation?patient={p}&_summary=count"),
        format!("Patient/{p}/Observation?_count=0"),
    ] {
        let bundle = body(server.get(&query));
        assert_eq!(bundle["total"], 4, "{query}: {bundle:#}");
        assert!(bundle.get("entry").is_none(), "{query}: {bundle:#}");
        assert!(next_link(&bundle).is_none(), "{query}");
    }
}

#[test]
fn post_search_takes_form_parameters() {
    let server = Server::open_sandbox();
    let p = create_patient(&server, &uuid());
    let w = id(&create(&server, &weight(&p, 80.0)));
    let response = server
        .client
        .post(server.url("Observation/_search"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!("patient={p}&code=29463-7"))
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(body(response)["entry"][0]["resource"]["id"], json!(w));
}

#[test]
fn count_above_the_maximum_is_capped_silently_and_the_next_link_carries_on() {
    let server = Server::open_sandbox();
    let p = create_patient(&server, &uuid());
    for _ in 0..3 {
        create(&server, &weight(&p, 80.0));
    }
    let one = body(server.get(&format!("Observation?patient={p}&_count=1")));
    assert_eq!(one["entry"].as_array().unwrap().len(), 1);
    assert!(next_link(&one).is_some());
    let capped = body(server.get(&format!("Observation?patient={p}&_count=100000")));
    assert_eq!(entries_in_mode(&capped, "match").len(), 3);
    assert_eq!(capped["entry"].as_array().unwrap().len(), 3, "{capped:#}");

    // On a server whose pages hold two, `_count=20000` pages through by twos.
    let small = Server::start(&["--open-sandbox", "--config", &small_pages(&server)]);
    let p = create_patient(&small, &uuid());
    for _ in 0..5 {
        create(&small, &weight(&p, 80.0));
    }
    let mut url = small.url(&format!("Observation?patient={p}&_count=20000"));
    let mut sizes = Vec::new();
    loop {
        let page = body(small.client.get(&url).send().unwrap());
        assert_eq!(page["total"], 5);
        assert!(entries_in_mode(&page, "outcome").is_empty(), "{page:#}");
        sizes.push(page["entry"].as_array().unwrap().len());
        match next_link(&page) {
            Some(next) => {
                assert!(next.contains("_count=20000"), "{next}");
                url = next;
            }
            None => break,
        }
    }
    assert_eq!(sizes, [2, 2, 1]);
}

/// A configuration file with a maximum page size of 2, written into `server`'s data folder.
fn small_pages(server: &Server) -> String {
    let path = server.data.join("small-pages.toml");
    std::fs::write(&path, "default_page_size = 2\nmax_page_size = 2\n").unwrap();
    path.display().to_string()
}
