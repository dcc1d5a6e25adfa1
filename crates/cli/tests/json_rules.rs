//! FHIR's JSON rules on every response, as a property over generated requests: no empty array
//! (`[]`) and no empty object (`{}`) anywhere in any answer, whatever was asked. A seeded
//! generator mixes searches (type and compartment, every result parameter, lenient and strict,
//! wrong values), their paging links, history, batch and transaction Bundles (empty ones too)
//! with every `Prefer: return=`, `_summary`, `_elements`, reads, writes, `$validate`,
//! `/metadata` and errors; each answer is walked completely.
//!
//! A failure names the seed and the request; `PHR_JSON_RULES_SEED=N` replays one seed.

mod common;

use common::*;
use reqwest::Method;
use serde_json::{Value, json};

/// Requests generated per seed.
const REQUESTS: usize = 150;

/// A small deterministic generator (xorshift64*): the same seed, the same requests.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % n
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

/// Every path in `value` to an empty array or object.
fn empty_paths(value: &Value, path: &str, out: &mut Vec<String>) {
    match value {
        Value::Array(items) if items.is_empty() => out.push(format!("{path} = []")),
        Value::Object(map) if map.is_empty() => out.push(format!("{path} = {{}}")),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                empty_paths(item, &format!("{path}[{i}]"), out);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                empty_paths(item, &format!("{path}.{key}"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn the_walk_finds_empty_arrays_and_objects() {
    let mut found = Vec::new();
    empty_paths(
        &json!({"a": [], "b": {"c": {}}, "d": [1, {"e": []}], "f": "x"}),
        "$",
        &mut found,
    );
    assert_eq!(found, ["$.a = []", "$.b.c = {}", "$.d[1].e = []"]);
}

/// What the generator works on: a server with two citizens' data.
struct World {
    server: Server,
    patients: Vec<String>,
    observations: Vec<String>,
}

fn world() -> World {
    let server = Server::open_sandbox();
    let patients = vec![
        create_patient(&server, &uuid()),
        create_patient(&server, &uuid()),
    ];
    let mut observations = Vec::new();
    for (i, p) in patients.iter().enumerate() {
        for k in 0..4 {
            let minutes = k * 5;
            let reading = glucose(
                p,
                &format!("2024-02-0{}T10:{minutes:02}:00+02:00", i + 1),
                5.5,
            );
            let response = server.post("Observation", &reading);
            assert_eq!(response.status(), 201);
            observations.push(body(response)["id"].as_str().unwrap().to_string());
        }
        let response = server.post("Observation", &weight(p, 80.0));
        observations.push(body(response)["id"].as_str().unwrap().to_string());
    }
    World {
        server,
        patients,
        observations,
    }
}

/// One generated request: method, path below the base (or an absolute URL), headers, body.
struct Request {
    method: Method,
    path: String,
    headers: Vec<(&'static str, String)>,
    body: Option<Value>,
}

impl Request {
    fn get(path: String) -> Self {
        Request {
            method: Method::GET,
            path,
            headers: Vec::new(),
            body: None,
        }
    }

    fn describe(&self) -> String {
        format!(
            "{} {} {:?} {}",
            self.method,
            self.path,
            self.headers,
            self.body
                .as_ref()
                .map(|b| b.to_string())
                .unwrap_or_default()
        )
    }
}

const PREFERS: &[&str] = &[
    "return=minimal",
    "return=representation",
    "return=OperationOutcome",
    "handling=lenient",
    "handling=strict",
];

fn search(rng: &mut Rng, w: &World) -> Request {
    let p = rng.pick(&w.patients).clone();
    let types = [
        "Observation",
        "MedicationAdministration",
        "CarePlan",
        "QuestionnaireResponse",
        "Patient",
        "Goal",
        "Consent",
        "Questionnaire",
        "StructureDefinition",
        "ValueSet",
        "AuditEvent",
    ];
    let rtype = *rng.pick(&types);
    let compartment =
        rng.chance(40) && !matches!(rtype, "Questionnaire" | "StructureDefinition" | "ValueSet");
    let mut params: Vec<String> = Vec::new();
    if !compartment && rng.chance(85) {
        params.push(format!("patient={p}"));
    }
    let pool = [
        "_count=0",
        "_count=1",
        "_count=2",
        "_count=20000",
        "_count=x",
        "_total=none",
        "_total=estimate",
        "_total=accurate",
        "_summary=true",
        "_summary=false",
        "_summary=count",
        "_summary=data",
        "_summary=text",
        "_elements=code,valueQuantity",
        "_elements=id",
        "_elements=nonsense",
        "_sort=date",
        "_sort=-_lastUpdated",
        "_sort=shoe-size",
        "code=14745-4",
        "code=29463-7",
        "code=8867-4",
        "code=",
        "date=ge2024-02-01",
        "date=lt2024-02-02",
        "date=2024-13-01",
        "shoe-size=42",
        "_include=Observation:subject",
        "_revinclude=Observation:subject",
        "_include=*",
        "url=http://phr.kanta.fi/StructureDefinition/fiphr-sd-bloodglucose",
        "_id=nope",
    ];
    for _ in 0..rng.below(4) {
        params.push(rng.pick(&pool).to_string());
    }
    let path = if compartment {
        format!("Patient/{p}/{rtype}")
    } else {
        rtype.to_string()
    };
    let mut request = Request::get(format!("{path}?{}", params.join("&")));
    if rng.chance(30) {
        request
            .headers
            .push(("Prefer", rng.pick(PREFERS).to_string()));
    }
    if rng.chance(15) {
        // The same as a POST `_search` form.
        request.method = Method::POST;
        request.path = format!("{path}/_search");
        request.headers.push((
            "Content-Type",
            "application/x-www-form-urlencoded".to_string(),
        ));
        request.body = Some(Value::String(params.join("&")));
    }
    request
}

fn bundle(rng: &mut Rng, w: &World) -> Request {
    let p = rng.pick(&w.patients).clone();
    let mut entries = Vec::new();
    for _ in 0..rng.below(4) {
        let entry = match rng.below(6) {
            0 => {
                let reading = glucose(&p, "2024-03-01T08:00:00+02:00", 6.0);
                conditional_batch(&[reading])["entry"][0].clone()
            }
            1 => json!({"request": {"method": "POST", "url": "Observation"},
                "resource": {"resourceType": "Observation", "status": "final"}}),
            2 => json!({"request": {"method": "GET",
                "url": format!("Observation/{}", rng.pick(&w.observations))}}),
            3 => json!({"request": {"method": "GET", "url": "Observation/nope"}}),
            4 => json!({"request": {"method": "DELETE", "url": "Observation/nope"}}),
            _ => json!({"request": {"method": "POST", "url": "Observation"},
                "resource": weight(&p, 70.0)}),
        };
        entries.push(entry);
    }
    let kind = *rng.pick(&["batch", "transaction"]);
    let mut body = json!({"resourceType": "Bundle", "type": kind});
    if !entries.is_empty() {
        body["entry"] = Value::Array(entries);
    }
    let mut request = Request {
        method: Method::POST,
        path: String::new(),
        headers: vec![("Content-Type", FHIR_JSON.to_string())],
        body: Some(body),
    };
    if rng.chance(50) {
        request
            .headers
            .push(("Prefer", rng.pick(PREFERS).to_string()));
    }
    request
}

fn other(rng: &mut Rng, w: &World) -> Request {
    let p = rng.pick(&w.patients).clone();
    let o = rng.pick(&w.observations).clone();
    let mut request = match rng.below(12) {
        0 => Request::get("metadata".into()),
        1 => Request::get(format!("Observation/{o}")),
        2 => Request::get(format!("Observation/{o}/_history")),
        3 => Request::get(format!("Observation/_history?_count={}", rng.below(3))),
        4 => Request::get("Observation/_history?_since=2999-01-01T00:00:00Z".into()),
        5 => Request::get(format!("Observation/{o}/$validate")),
        6 => Request::get("Nope/1".into()),
        7 => Request::get(format!("Patient/{p}/_history/99")),
        8 => Request {
            method: Method::POST,
            path: "Observation".into(),
            headers: vec![("Content-Type", FHIR_JSON.to_string())],
            body: Some(if rng.chance(50) {
                weight(&p, 81.0)
            } else {
                json!({"resourceType": "Observation"})
            }),
        },
        9 => Request {
            method: Method::POST,
            path: "Observation/$validate".into(),
            headers: vec![("Content-Type", FHIR_JSON.to_string())],
            body: Some(weight(&p, 82.0)),
        },
        10 => Request {
            method: Method::DELETE,
            path: "Observation/nope".into(),
            headers: Vec::new(),
            body: None,
        },
        _ => Request {
            method: Method::PUT,
            path: format!("Patient/{p}"),
            headers: vec![("Content-Type", FHIR_JSON.to_string())],
            body: Some(kanta_patient(&p)),
        },
    };
    if rng.chance(40) {
        request
            .headers
            .push(("Prefer", rng.pick(PREFERS).to_string()));
    }
    request
}

/// Sends `request` and checks its answer; returns the answer's JSON, if any.
fn check(w: &World, seed: u64, request: &Request) -> Option<Value> {
    let url = if request.path.starts_with("http") {
        request.path.clone()
    } else {
        w.server.url(&request.path)
    };
    let mut builder = w.server.client.request(request.method.clone(), &url);
    for (name, value) in &request.headers {
        builder = builder.header(*name, value);
    }
    builder = match &request.body {
        Some(Value::String(form)) => builder.body(form.clone()),
        Some(json) => builder.body(serde_json::to_vec(json).unwrap()),
        None => builder,
    };
    let response = builder.send().unwrap();
    let status = response.status();
    let text = response.text().unwrap();
    let what = format!("seed {seed}: {} -> {status}", request.describe());
    assert!(status.as_u16() < 500, "{what}: {text}");
    if text.is_empty() {
        return None;
    }
    let answer: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {text}"));
    assert!(answer["resourceType"].is_string(), "{what}: {text}");
    let mut empty = Vec::new();
    empty_paths(&answer, "$", &mut empty);
    assert!(empty.is_empty(), "{what}: {empty:?} in {text}");
    if answer["type"] == "searchset" {
        // Only a lenient search reports, and then in one outcome entry.
        let outcomes = answer["entry"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["resource"]["resourceType"] == "OperationOutcome")
            .count();
        let lenient = request.headers.iter().any(|(_, v)| v == "handling=lenient");
        assert!(outcomes <= usize::from(lenient), "{what}: {text}");
        let form = match &request.body {
            Some(Value::String(form)) => form.as_str(),
            _ => "",
        };
        if !request.path.contains("_total=none") && !form.contains("_total=none") {
            assert!(answer["total"].is_u64(), "{what}: no total in {text}");
        }
    }
    Some(answer)
}

fn run(seed: u64, w: &World) {
    let mut rng = Rng(seed | 1);
    for _ in 0..REQUESTS {
        let request = match rng.below(10) {
            0..=5 => search(&mut rng, w),
            6..=7 => bundle(&mut rng, w),
            _ => other(&mut rng, w),
        };
        let Some(answer) = check(w, seed, &request) else {
            continue;
        };
        // Paging links answer by the same rules (with the request's headers).
        for relation in ["next", "previous", "self"] {
            let link = answer["link"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|l| l["relation"] == relation)
                .and_then(|l| l["url"].as_str());
            if let Some(link) = link
                && rng.chance(50)
            {
                let follow = Request {
                    method: Method::GET,
                    path: link.to_string(),
                    headers: request
                        .headers
                        .iter()
                        .filter(|(name, _)| *name == "Prefer")
                        .cloned()
                        .collect(),
                    body: None,
                };
                check(w, seed, &follow);
            }
        }
    }
}

#[test]
fn no_response_has_an_empty_array_or_object() {
    let w = world();
    let seeds: Vec<u64> = match std::env::var("PHR_JSON_RULES_SEED") {
        Ok(seed) => vec![seed.parse().expect("a number")],
        Err(_) => vec![1, 2, 3],
    };
    for seed in seeds {
        run(seed, &w);
    }
}
