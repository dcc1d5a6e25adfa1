//! `Observation/$stats` black-box: the real `phr` binary, data stored over HTTP, and every
//! statistic compared with a naive computation over a search of the same data. Bad input is
//! a 400 OperationOutcome that changes nothing; a citizen's token sees only that citizen's
//! data; the operation is declared in `/metadata`.

mod common;

use common::*;
use serde_json::{Value, json};

const GLUCOSE: &str = "http://loinc.org|14745-4";
const READ_WRITE: &str = "patient/Observation.read patient/Observation.write patient/Patient.read";

/// Every match of a search (following `next` links).
fn search_all(server: &Server, token: Option<&str>, path: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut url = server.url(path);
    loop {
        let mut request = server.client.get(&url);
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        let bundle = body(request.send().unwrap());
        for e in bundle["entry"].as_array().into_iter().flatten() {
            if e["search"]["mode"] == "match" {
                out.push(e["resource"].clone());
            }
        }
        match bundle["link"]
            .as_array()
            .and_then(|l| l.iter().find(|l| l["relation"] == "next"))
        {
            Some(next) => url = next["url"].as_str().unwrap().to_string(),
            None => break,
        }
    }
    out
}

/// The `statistic` Observations of a `$stats` answer as (start, count, min, max, average,
/// below, within, above).
type Row = (String, u64, f64, f64, f64, u64, u64, u64);

fn rows(parameters: &Value) -> Vec<Row> {
    parameters["parameter"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            assert_eq!(p["name"], "statistic");
            let o = &p["resource"];
            let component = |system: &str, code: &str| -> Value {
                o["component"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|c| {
                        c["code"]["coding"][0]["system"] == system
                            && c["code"]["coding"][0]["code"] == code
                    })
                    .cloned()
                    .unwrap_or(Value::Null)
            };
            let stat = |code: &str| component("http://hl7.org/fhir/observation-statistics", code);
            let range = |code: &str| {
                component("urn:phr:observation-statistics-range", code)["valueInteger"]
                    .as_u64()
                    .unwrap_or(0)
            };
            (
                o["effectivePeriod"]["start"]
                    .as_str()
                    .unwrap()
                    .replace(".000Z", "Z"),
                stat("count")["valueInteger"].as_u64().unwrap(),
                stat("minimum")["valueQuantity"]["value"].as_f64().unwrap(),
                stat("maximum")["valueQuantity"]["value"].as_f64().unwrap(),
                stat("average")["valueQuantity"]["value"].as_f64().unwrap(),
                range("below"),
                range("within"),
                range("above"),
            )
        })
        .collect()
}

fn day(i: u32) -> String {
    format!("2024-03-{:02}T00:00:00Z", i + 1)
}

/// The same rows computed naively from the searched resources, per day of March 2024.
fn naive(resources: &[Value], days: u32) -> Vec<Row> {
    let mut out = Vec::new();
    for d in 0..days {
        let (start, end) = (day(d), day(d + 1));
        let values: Vec<f64> = resources
            .iter()
            .filter(|r| {
                let at = r["effectiveDateTime"].as_str().unwrap();
                // Every stored time is UTC with seconds: text order is time order.
                at >= start.as_str() && at < end.as_str()
            })
            .map(|r| r["valueQuantity"]["value"].as_f64().unwrap())
            .collect();
        if values.is_empty() {
            continue;
        }
        let n = values.len() as u64;
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let mean = values.iter().sum::<f64>() / n as f64;
        let below = values.iter().filter(|v| **v < 3.9).count() as u64;
        let above = values.iter().filter(|v| **v > 10.0).count() as u64;
        out.push((start, n, min, max, mean, below, n - below - above, above));
    }
    out
}

fn assert_rows_agree(found: &[Row], expected: &[Row]) {
    assert_eq!(found.len(), expected.len(), "{found:?}\n{expected:?}");
    for (f, e) in found.iter().zip(expected) {
        assert_eq!(
            (&f.0, f.1, f.2, f.3, f.5, f.6, f.7),
            (&e.0, e.1, e.2, e.3, e.5, e.6, e.7)
        );
        assert!((f.4 - e.4).abs() < 1e-9, "{f:?} vs {e:?}");
    }
}

fn stats_path(patient: &str, extra: &str) -> String {
    format!(
        "Observation/$stats?subject=Patient/{patient}&coding={}&statistic=average,minimum,maximum,count\
         &period=2024-03-01T00:00:00Z/2024-03-04T00:00:00Z{extra}",
        GLUCOSE.replace('|', "%7C")
    )
}

#[test]
fn stats_agree_with_a_naive_computation_over_a_search() {
    let server = Server::open_sandbox();
    let p = create_patient(&server, &uuid());
    let other = create_patient(&server, &uuid());
    // Three days of readings every 40 minutes, one exactly at each midnight, values
    // crossing the 3.9-10 range; the other citizen's readings are far off.
    let mut batch = Vec::new();
    for i in 0..(3 * 36) {
        let minutes = i * 40;
        let at = format!(
            "2024-03-{:02}T{:02}:{:02}:00Z",
            1 + minutes / 1440,
            (minutes % 1440) / 60,
            minutes % 60
        );
        let value = 2.0 + ((i * 7) % 130) as f64 / 10.0;
        batch.push(glucose(&p, &at, value));
        batch.push(glucose(&other, &at, 30.0 + value));
    }
    let response = server.post("", &conditional_batch(&batch));
    assert_eq!(response.status(), 200);
    // One reading updated, one deleted: statistics read current versions only.
    let stored = search_all(
        &server,
        None,
        &format!("Observation?patient={p}&code={GLUCOSE}&_count=100"),
    );
    let mut changed = stored[5].clone();
    changed["valueQuantity"]["value"] = json!(25.5);
    let id = changed["id"].as_str().unwrap().to_string();
    assert_eq!(
        server.put(&format!("Observation/{id}"), &changed).status(),
        200
    );
    let gone = stored[9]["id"].as_str().unwrap().to_string();
    assert_eq!(server.delete(&format!("Observation/{gone}")).status(), 204);

    let resources = search_all(
        &server,
        None,
        &format!("Observation?patient={p}&code={GLUCOSE}&_count=100"),
    );
    assert_eq!(resources.len(), 3 * 36 - 1);
    let response = server.get(&stats_path(&p, "&interval=24&range-low=3.9&range-high=10"));
    assert_eq!(response.status(), 200);
    let answer = body(response);
    assert_rows_agree(&rows(&answer), &naive(&resources, 3));
    let first = &answer["parameter"][0]["resource"];
    assert_eq!(first["code"]["coding"][0]["code"], "14745-4");
    assert_eq!(first["subject"]["reference"], format!("Patient/{p}"));
    assert_eq!(first["effectivePeriod"]["end"], "2024-03-02T00:00:00.000Z");
    let average = &first["component"][0]["valueQuantity"];
    assert_eq!(average["code"], "mmol/L");

    // The whole period as one interval, by POST with a Parameters resource.
    let post = server.post(
        "Observation/$stats",
        &json!({"resourceType": "Parameters", "parameter": [
            {"name": "subject", "valueUri": format!("Patient/{p}")},
            {"name": "coding", "valueCoding": {"system": "http://loinc.org", "code": "14745-4"}},
            {"name": "period", "valuePeriod": {"start": "2024-03-01T00:00:00Z", "end": "2024-03-04T00:00:00Z"}},
            {"name": "statistic", "valueCode": "count"},
            {"name": "statistic", "valueCode": "maximum"},
        ]}),
    );
    assert_eq!(post.status(), 200);
    let whole = body(post);
    let components = &whole["parameter"][0]["resource"]["component"];
    assert_eq!(components[0]["valueInteger"], json!(3 * 36 - 1));
    assert_eq!(components[1]["valueQuantity"]["value"], json!(25.5));
    assert_eq!(whole["parameter"].as_array().unwrap().len(), 1);
}

#[test]
fn bad_stats_requests_are_400_and_change_nothing() {
    let server = Server::open_sandbox();
    let p = create_patient(&server, &uuid());
    assert_eq!(
        server
            .post("Observation", &glucose(&p, "2024-03-01T10:00:00Z", 5.0))
            .status(),
        201
    );
    let before = search_all(&server, None, &format!("Observation?patient={p}"));
    for (path, needle) in [
        (
            stats_path(&p, "").replace("average,", "median,"),
            "average, minimum, maximum, count, sum",
        ),
        (stats_path(&p, "&interval=0"), "interval"),
        (stats_path(&p, "&range-low=4"), "range-high"),
        (stats_path(&p, "&bogus=1"), "bogus"),
        (stats_path(&p, "&duration=2"), "not both"),
        (
            format!("Observation/$stats?subject=Patient/{p}&statistic=count"),
            "code",
        ),
        (
            format!(
                "Observation/$stats?coding={}&statistic=count",
                GLUCOSE.replace('|', "%7C")
            ),
            "subject",
        ),
        (
            stats_path(&p, "").replace("2024-03-04T00:00:00Z", "yesterday"),
            "instant",
        ),
    ] {
        let response = server.get(&path);
        assert_eq!(response.status(), 400, "{path}");
        let outcome = body(response);
        assert_eq!(outcome["resourceType"], "OperationOutcome", "{path}");
        assert!(outcome.to_string().contains(needle), "{path}: {outcome}");
    }
    let include = server.get(&stats_path(&p, "&include=true"));
    assert_eq!(include.status(), 501);
    assert_eq!(body(include)["resourceType"], "OperationOutcome");
    assert_eq!(server.get("Patient/$stats").status(), 404);
    assert_eq!(
        search_all(&server, None, &format!("Observation?patient={p}")),
        before
    );
    // The operation is declared.
    let capabilities = body(server.get("metadata"));
    let observation = capabilities["rest"][0]["resource"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "Observation")
        .unwrap()
        .clone();
    assert!(
        observation["operation"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["name"] == "stats"
                && o["definition"] == "http://hl7.org/fhir/OperationDefinition/Observation-stats"),
        "{observation}"
    );
}

#[test]
fn a_citizens_token_counts_only_that_citizens_data() {
    let server = Server::start(&[]);
    server.register_app("rw-app", READ_WRITE);
    let (anna, anna_token) = server.token(&test_hetu("010170", 905), "rw-app", READ_WRITE);
    let (bert, bert_token) = server.token(&test_hetu("020270", 906), "rw-app", READ_WRITE);
    for (patient, token, value) in [(&anna, &anna_token, 5.0), (&bert, &bert_token, 15.0)] {
        for hour in 0..4 {
            let at = format!("2024-03-01T{:02}:00:00Z", 10 + hour);
            let response = server.post_as(token, "Observation", &glucose(patient, &at, value));
            assert_eq!(response.status(), 201, "{}", response.text().unwrap());
        }
    }
    let own = server.get_as(&anna_token, &stats_path(&anna, ""));
    assert_eq!(own.status(), 200);
    let own = rows(&body(own));
    assert_eq!(own.len(), 1);
    assert_eq!((own[0].1, own[0].3), (4, 5.0));
    // Another citizen's subject with Anna's token is refused, never counted.
    let foreign = server.get_as(&anna_token, &stats_path(&bert, ""));
    assert_eq!(foreign.status(), 403);
    assert_eq!(body(foreign)["resourceType"], "OperationOutcome");
    // Without a token nothing is answered.
    assert_eq!(server.get(&stats_path(&anna, "")).status(), 401);
}

#[test]
fn a_professional_needs_consent_and_care_as_for_a_search() {
    const ORG: &str = "1.2.246.10.1111111.10.0";
    const PRO_SCOPE: &str = "user/Observation.rs user/Patient.rs";
    let server = Server::start(&[]);
    server.admin(&[
        "org",
        "register",
        "--oid",
        ORG,
        "--name",
        "Testin terveysasema",
    ]);
    server.admin(&[
        "app",
        "register",
        "--id",
        "pro-app",
        "--name",
        "Potilastietojärjestelmä",
        "--kind",
        "professional",
        "--org",
        ORG,
        "--scope",
        PRO_SCOPE,
        "--redirect-uri",
        "http://127.0.0.1:9/callback",
        "--sandbox",
    ]);
    server.register_app("rw-app", READ_WRITE);
    let hetu = test_hetu("150375", 951);
    let (patient, token) = server.token(&hetu, "rw-app", READ_WRITE);
    for hour in 0..3 {
        let at = format!("2024-03-02T{:02}:00:00Z", 8 + hour);
        let response = server.post_as(
            &token,
            "Observation",
            &glucose(&patient, &at, 6.0 + hour as f64),
        );
        assert_eq!(response.status(), 201, "{}", response.text().unwrap());
    }
    let pro = server
        .admin(&[
            "token",
            "--professional",
            "tp-1",
            "--professional-name",
            "Doctor Test Person",
            "--org",
            ORG,
            "--app",
            "pro-app",
            "--scope",
            PRO_SCOPE,
        ])
        .lines()
        .last()
        .expect("a token")
        .to_string();
    let path = stats_path(&patient, "");
    // Neither consent nor a care relationship: refused, as a search would be.
    let refused = server.get_as(&pro, &path);
    assert_eq!(refused.status(), 403);
    assert_eq!(body(refused)["resourceType"], "OperationOutcome");
    server.admin(&["consent", "give", "--hetu", &hetu]);
    let still = server.get_as(&pro, &path);
    assert_eq!(still.status(), 403, "consent alone is not enough");
    server.admin(&["care", "add", "--hetu", &hetu, "--org", ORG]);
    let allowed = server.get_as(&pro, &path);
    assert_eq!(allowed.status(), 200);
    let found = rows(&body(allowed));
    assert_eq!(found.len(), 1);
    assert_eq!((found[0].1, found[0].2, found[0].3), (3, 6.0, 8.0));
    // The search the professional may run counts the same.
    let searched = search_all(
        &server,
        Some(&pro),
        &format!("Observation?patient={patient}&code={GLUCOSE}"),
    );
    assert_eq!(searched.len() as u64, found[0].1);
}
