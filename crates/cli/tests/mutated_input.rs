//! Structurally mutated Kanta examples and Bundles posted to the real binary: the wrong JSON
//! type at every path, numbers at the edges of every range, nesting past the parser's limit,
//! odd Unicode (lone surrogates, NUL, right-to-left marks, combining and non-NFC text, bytes
//! that are not UTF-8), empty strings, arrays and objects, duplicate keys, unknown properties.
//! Each is sent as a create, an update, a conditional create, and inside a batch and a
//! transaction, in the open sandbox and with an application's token.
//!
//! For every request: no 5xx, an error is an OperationOutcome, and what was stored is exactly
//! what the answers say was stored (the versions in the system history are counted before and
//! after; a rejected request adds none). Afterwards the server still serves a good request.
//!
//! The corpus is generated from a fixed seed (no randomness between runs) from the official
//! examples, read where they are published beside the repository.

mod common;

use common::*;
use serde_json::{Map, Value, json};

const SEED: u64 = 0x9e37_79b9_7f4a_7c15;
/// The id every example is given before it is mutated; each request replaces it with its own.
const MUTATION_ID: &str = "mutation-id";

/// The R4 examples Kanta's endpoint accepts (after pointing them at an existing Patient).
const EXAMPLES: &[&str] = &[
    "Observation-example-BodyWeight-min.json",
    "Observation-example-BodyWeight-max.json",
    "Observation-example-Bloodpressure-min.json",
    "Observation-example-CalorieIntake-min.json",
    "Observation-example-CalorieIntake-max.json",
    "Observation-example-CarbohydrateIntakeEstimated-min.json",
    "Observation-example-ExerciseTracking-min.json",
    "Observation-example-MET-min.json",
    "Observation-example-ModerateToVigorousPATime-min.json",
    "Observation-example-ModerateToVigorousPATime-max.json",
    "observation-example-StepsTaken-min.json",
    "Observation-example-StepsTaken-max.json",
    "bloodglucose-min.json",
    "observation-example-bloodglucose-astext.json",
    "observation-example-bloodglucose-dataabsentreason.json",
    "MedicationAdministration-InsulinDosage-mandatory.json",
    "example-patient.json",
];
/// Every path of this one gets every other JSON type; the others a sample of paths each.
const EVERY_PATH: &[&str] = &["Observation-example-BodyWeight-max.json"];
const KANTA_BUNDLE: &str = "diabetes-data-bundle-kantaphr-r4-en.json";
const KANTA_BUNDLE_PATIENT: &str = "77c2c8d2-11ce-41d5-8150-75489f8b0b0a";
const SCOPE: &str = "patient/Observation.read patient/Observation.write \
    patient/MedicationAdministration.read patient/MedicationAdministration.write \
    patient/Patient.read patient/Patient.write";

/// A fixed-seed generator (xorshift64*): the same corpus on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    /// Up to `k` distinct items of `items`, in their order.
    fn sample<T: Clone>(&mut self, items: &[T], k: usize) -> Vec<T> {
        let mut picked: Vec<usize> = Vec::new();
        while picked.len() < k.min(items.len()) {
            let i = self.below(items.len());
            if !picked.contains(&i) {
                picked.push(i);
            }
        }
        picked.sort_unstable();
        picked.into_iter().map(|i| items[i].clone()).collect()
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Step {
    Key(String),
    Index(usize),
}

type Path = Vec<Step>;

fn paths(value: &Value, at: &mut Path, out: &mut Vec<Path>) {
    if !at.is_empty() {
        out.push(at.clone());
    }
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                at.push(Step::Key(k.clone()));
                paths(v, at, out);
                at.pop();
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                at.push(Step::Index(i));
                paths(v, at, out);
                at.pop();
            }
        }
        _ => {}
    }
}

fn all_paths(value: &Value) -> Vec<Path> {
    let mut out = Vec::new();
    paths(value, &mut Vec::new(), &mut out);
    out
}

fn node<'a>(value: &'a mut Value, path: &[Step]) -> &'a mut Value {
    path.iter().fold(value, |v, step| match step {
        Step::Key(k) => &mut v[k.as_str()],
        Step::Index(i) => &mut v[*i],
    })
}

fn describe(path: &[Step]) -> String {
    path.iter()
        .map(|s| match s {
            Step::Key(k) => format!(".{k}"),
            Step::Index(i) => format!("[{i}]"),
        })
        .collect()
}

/// Text to splice in place of a marker string: what a `Value` cannot hold (a lone surrogate,
/// bytes that are not UTF-8, a number's exact text, nesting deeper than a serializer
/// recurses).
const MARKER: &str = "\u{1}splice\u{1}";

fn with_raw(mut value: Value, path: &[Step], raw: &[u8]) -> Vec<u8> {
    *node(&mut value, path) = json!(MARKER);
    let text = serde_json::to_vec(&value).unwrap();
    let marker = serde_json::to_vec(&json!(MARKER)).unwrap();
    let at = text
        .windows(marker.len())
        .position(|w| w == marker.as_slice())
        .unwrap();
    [&text[..at], raw, &text[at + marker.len()..]].concat()
}

fn kind_of(v: &Value) -> usize {
    match v {
        Value::String(_) => 0,
        Value::Number(_) => 1,
        Value::Bool(_) => 2,
        Value::Null => 3,
        Value::Array(_) => 4,
        Value::Object(_) => 5,
    }
}

/// One value of each JSON type, non-empty (empty ones are their own class).
fn of_kind(kind: usize) -> Value {
    match kind {
        0 => json!("text"),
        1 => json!(42),
        2 => json!(true),
        3 => Value::Null,
        4 => json!(["text"]),
        _ => json!({"value": "text"}),
    }
}

const NUMBERS: &[&str] = &[
    "1e308",
    "-1e-308",
    "18446744073709551616",
    "0.0000000001",
    "-0",
    "1E400",
    "123456789012345678901234567890.123456789012345678901234567890",
];

fn long_digits() -> String {
    format!("1{}", "0".repeat(400))
}

/// Odd text as JSON string literals, and whether no JSON reader may accept it (lone
/// surrogates, bytes that are not UTF-8).
const UNICODE: &[(&[u8], bool)] = &[
    (br#""\ud800""#, true),
    (br#""x\udc00y""#, true),
    (br#""a\u0000b""#, false),
    ("\"\u{202e}lanimreT\"".as_bytes(), false),
    ("\"e\u{301}\u{301}\u{301}\"".as_bytes(), false),
    ("\"A\u{30a}ngstr\u{f6}m\"".as_bytes(), false),
    ("\"\u{feff}\u{fffe}\u{ffff}\"".as_bytes(), false),
    (b"\"\xff\xfe\"", true),
    (b"\"\xc0\xaf\"", true),
    ("\"\u{1f600}\u{200d}\u{1f4bb}\"".as_bytes(), false),
];

fn nested_arrays(depth: usize) -> Vec<u8> {
    [b"[".repeat(depth), b"]".repeat(depth)].concat()
}

fn nested_objects(depth: usize) -> Vec<u8> {
    [b"{\"a\":".repeat(depth), b"1".to_vec(), b"}".repeat(depth)].concat()
}

/// Extensions inside extensions: FHIR-shaped, `depth` levels (two JSON levels each).
fn nested_extensions(depth: usize) -> Vec<u8> {
    let open = br#"[{"url":"http://example.org/x","extension":"#;
    let inner = br#"[{"url":"http://example.org/x","valueString":"deep"}]"#;
    [open.repeat(depth), inner.to_vec(), b"}]".repeat(depth)].concat()
}

/// The text of an object with the member `key` written twice (the first time with
/// `first`), or, with `escaped`, once more under an escaped spelling of its name.
fn duplicate_key(object: &Map<String, Value>, key: &str, escaped: bool) -> Vec<u8> {
    let mut parts: Vec<String> = object
        .iter()
        .map(|(k, v)| format!("{}:{}", json!(k), v))
        .collect();
    let value = &object[key];
    let name = if escaped {
        let mut chars = key.chars();
        let first = chars.next().unwrap();
        format!("\"\\u{:04x}{}\"", first as u32, chars.as_str())
    } else {
        json!(key).to_string()
    };
    let other = match value {
        Value::String(_) => json!("other"),
        _ => value.clone(),
    };
    parts.push(format!("{name}:{other}"));
    format!("{{{}}}", parts.join(",")).into_bytes()
}

/// One mutated resource: what was done, the JSON text, and whether FHIR leaves no way to
/// accept it (a wrong type, an empty value, an unknown property, a duplicate key, text that
/// is not UTF-8 or not Unicode, nesting beyond any resource's depth).
struct Mutation {
    label: String,
    text: Vec<u8>,
    invalid: bool,
}

fn m(label: String, text: Vec<u8>, invalid: bool) -> Mutation {
    Mutation {
        label,
        text,
        invalid,
    }
}

/// The mutations of one resource.
fn mutations(resource: &Value, every_path: bool, rng: &mut Rng) -> Vec<Mutation> {
    let mut out = Vec::new();
    let all = all_paths(resource);
    let to_text = |v: &Value| serde_json::to_vec(v).unwrap();

    // The wrong JSON type: at every path every other type, or a sample of paths.
    let chosen = if every_path {
        all.clone()
    } else {
        rng.sample(&all, 10)
    };
    for path in &chosen {
        let mut current = resource.clone();
        let here = kind_of(node(&mut current, path));
        let kinds: Vec<usize> = (0..6).filter(|k| *k != here).collect();
        let kinds = if every_path {
            kinds
        } else {
            vec![kinds[rng.below(kinds.len())]]
        };
        for kind in kinds {
            let mut v = resource.clone();
            *node(&mut v, path) = of_kind(kind);
            out.push(m(
                format!("type {kind} at {}", describe(path)),
                to_text(&v),
                true,
            ));
        }
    }

    // Edge numbers, where numbers are and elsewhere.
    let numeric: Vec<Path> = all
        .iter()
        .filter(|p| node(&mut resource.clone(), p).is_number())
        .cloned()
        .collect();
    let mut spots = rng.sample(&numeric, 2);
    spots.extend(rng.sample(&all, 1));
    for path in &spots {
        let mut texts: Vec<String> = NUMBERS.iter().map(|n| (*n).to_owned()).collect();
        texts.push(long_digits());
        for text in rng.sample(&texts, 3) {
            out.push(m(
                format!("number {text:.20} at {}", describe(path)),
                with_raw(resource.clone(), path, text.as_bytes()),
                false,
            ));
        }
    }

    // Nesting past any parser's or validator's recursion limit.
    let path = &all[rng.below(all.len())];
    for (what, raw) in [
        ("arrays 200 deep", nested_arrays(200)),
        ("arrays 100000 deep", nested_arrays(100_000)),
        ("objects 1000 deep", nested_objects(1000)),
    ] {
        out.push(m(
            format!("{what} at {}", describe(path)),
            with_raw(resource.clone(), path, &raw),
            true,
        ));
    }
    for depth in [30, 200] {
        let mut v = resource.clone();
        v["extension"] = json!(MARKER);
        out.push(m(
            format!("extensions {depth} deep"),
            with_raw(
                v,
                &[Step::Key("extension".into())],
                &nested_extensions(depth),
            ),
            depth > 64,
        ));
    }

    // Odd Unicode in strings.
    let strings: Vec<Path> = all
        .iter()
        .filter(|p| node(&mut resource.clone(), p).is_string())
        .cloned()
        .collect();
    for path in rng.sample(&strings, 3) {
        let (raw, invalid) = UNICODE[rng.below(UNICODE.len())];
        out.push(m(
            format!(
                "unicode {} at {}",
                String::from_utf8_lossy(raw),
                describe(&path)
            ),
            with_raw(resource.clone(), &path, raw),
            invalid,
        ));
    }

    // Empty strings, arrays and objects.
    for path in rng.sample(&all, 3) {
        for empty in [json!(""), json!([]), json!({})] {
            let mut v = resource.clone();
            *node(&mut v, &path) = empty.clone();
            out.push(m(
                format!("empty {empty} at {}", describe(&path)),
                to_text(&v),
                true,
            ));
        }
    }

    // Duplicate keys, plainly and under an escaped spelling, at the top and deeper.
    let objects: Vec<Path> = std::iter::once(Vec::new())
        .chain(
            all.iter()
                .filter(|p| {
                    node(&mut resource.clone(), p)
                        .as_object()
                        .is_some_and(|o| !o.is_empty())
                })
                .cloned(),
        )
        .collect();
    for path in rng.sample(&objects, 2) {
        let mut v = resource.clone();
        let object = node(&mut v, &path).as_object().unwrap().clone();
        let keys: Vec<&String> = object.keys().collect();
        let key = keys[rng.below(keys.len())].clone();
        for escaped in [false, true] {
            let raw = duplicate_key(&object, &key, escaped);
            let text = if path.is_empty() {
                raw
            } else {
                with_raw(resource.clone(), &path, &raw)
            };
            out.push(m(
                format!(
                    "duplicate {key} (escaped: {escaped}) at {}",
                    describe(&path)
                ),
                text,
                true,
            ));
        }
    }

    // Unknown properties in objects.
    for path in rng.sample(&objects, 2) {
        let mut v = resource.clone();
        if let Some(object) = node(&mut v, &path).as_object_mut() {
            object.insert("unknownProperty".into(), json!("x"));
        }
        out.push(m(
            format!("unknown property at {}", describe(&path)),
            to_text(&v),
            true,
        ));
    }
    out
}

#[derive(Clone, Copy, Debug)]
enum Send {
    Create,
    Update,
    Conditional,
    Batch,
    Transaction,
}

/// What a request is, for its checks: its description, whether it carries the token, and
/// whether the mutated resource in it cannot be valid.
struct Case<'a> {
    label: &'a str,
    with_token: bool,
    invalid: bool,
}

struct Poster<'a> {
    server: &'a Server,
    token: String,
    token_patient: String,
    open_patient: String,
    /// Versions the answers say were written.
    written: usize,
    requests: usize,
}

impl Poster<'_> {
    fn send(&mut self, case: &Case, send: Send, resource_type: &str, id: &str, text: &[u8]) {
        let (path, body, methods, condition) = match send {
            Send::Create => (resource_type.to_owned(), text.to_vec(), vec!["POST"], None),
            Send::Conditional => (
                resource_type.to_owned(),
                text.to_vec(),
                vec!["POST"],
                Some(format!("identifier=urn:ietf:rfc:3986|urn:uuid:{}", uuid())),
            ),
            Send::Update => (
                format!("{resource_type}/{id}"),
                text.to_vec(),
                vec!["PUT"],
                None,
            ),
            Send::Batch | Send::Transaction => {
                let kind = if matches!(send, Send::Batch) {
                    "batch"
                } else {
                    "transaction"
                };
                let patient = if case.with_token {
                    &self.token_patient
                } else {
                    &self.open_patient
                };
                let good = serde_json::to_vec(&weight(patient, 70.0)).unwrap();
                let body = [
                    format!(r#"{{"resourceType":"Bundle","type":"{kind}","entry":[{{"fullUrl":"urn:uuid:{}","resource":"#, uuid()).as_bytes(),
                    text,
                    format!(r#","request":{{"method":"POST","url":"{resource_type}"}}}},{{"resource":"#).as_bytes(),
                    &good,
                    br#","request":{"method":"POST","url":"Observation"}}]}"#,
                ]
                .concat();
                (String::new(), body, vec!["POST", "POST"], None)
            }
        };
        let put = matches!(send, Send::Update);
        self.post(case, &path, body, &methods, condition, put);
    }

    /// Sends one request and checks its answer; `methods` are those of the entries when it
    /// is a Bundle, to count the versions its answer says were written.
    fn post(
        &mut self,
        case: &Case,
        path: &str,
        body: Vec<u8>,
        methods: &[&str],
        condition: Option<String>,
        put: bool,
    ) {
        let Case {
            label,
            with_token,
            invalid,
        } = *case;
        let url = self.server.url(path);
        let mut request = if put {
            self.server.client.put(url)
        } else {
            self.server.client.post(url)
        };
        request = request.header("Content-Type", FHIR_JSON).body(body);
        if let Some(condition) = condition {
            request = request.header("If-None-Exist", condition);
        }
        if with_token {
            request = request.bearer_auth(&self.token);
        }
        let retry = request.try_clone().expect("the body is in memory");
        let response = match request.send() {
            Ok(response) => response,
            // The server closes a connection after answering a body it refused without
            // reading it all; the client's pool can hand that connection out again just as
            // it closes (seen under load as `IncompleteMessage`). Send once more on a fresh
            // one; a refused body is refused again, and anything stored would be found below.
            Err(e) if e.is_request() => retry.send().expect("the server answers"),
            Err(e) => panic!("the server answers: {e}"),
        };
        self.requests += 1;
        let status = response.status().as_u16();
        let text = response.text().expect("a body");
        assert!(status < 500, "{label}: {status} {text}");
        let answer: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{label}: {status}: not JSON ({e}): {text}"));
        if status >= 400 {
            assert_eq!(
                answer["resourceType"], "OperationOutcome",
                "{label}: {text}"
            );
            return;
        }
        // Accepted: then never the mutated resource when it cannot be valid (in a batch, its
        // entry, the first, must have failed alone).
        if invalid {
            let first = &answer["entry"][0]["response"]["status"];
            assert!(
                path.is_empty() && first.as_str().is_some_and(|s| s.starts_with('4')),
                "{label}: accepted: {status} {text}"
            );
        }
        self.written += match answer["resourceType"].as_str() {
            Some("Bundle") if path.is_empty() => answer["entry"]
                .as_array()
                .unwrap()
                .iter()
                .zip(methods)
                .filter(|(e, method)| {
                    let code = e["response"]["status"].as_str().unwrap_or("");
                    assert!(!code.starts_with('5'), "{label}: entry {code}: {text}");
                    code.starts_with("201") || (code.starts_with("200") && **method == "PUT")
                })
                .count(),
            _ => usize::from(status == 201 || put),
        };
    }
}

/// The types the examples are of: every version a request can write is in their histories.
const TYPES: &[&str] = &["Observation", "MedicationAdministration", "Patient"];

/// Every version stored, from the type histories (the open sandbox sees every compartment).
fn versions(server: &Server) -> usize {
    let mut count = 0;
    for resource_type in TYPES {
        let mut next = Some(server.url(&format!("{resource_type}/_history?_count=1000")));
        while let Some(url) = next {
            let response = server.client.get(&url).send().unwrap();
            assert_eq!(response.status(), 200, "{url}");
            let page = body(response);
            count += page["entry"].as_array().map_or(0, Vec::len);
            next = page["link"]
                .as_array()
                .and_then(|links| links.iter().find(|l| l["relation"] == "next"))
                .and_then(|l| l["url"].as_str())
                .map(str::to_owned);
        }
    }
    count
}

#[test]
fn mutated_kanta_examples_and_bundles_are_refused_cleanly_and_store_nothing() {
    let server = Server::open_sandbox();
    server.register_app("mutations-app", SCOPE);
    let (token_patient, token) = server.token(&test_hetu("010180", 901), "mutations-app", SCOPE);
    // The server stores the token citizen's Patient before serving their first request:
    // make that request now, so every version counted later comes from the corpus.
    let own = server.get_as(&token, &format!("Patient/{token_patient}"));
    assert_eq!(own.status(), 200);
    let open_patient = create_patient(&server, &uuid());
    create_patient(&server, KANTA_BUNDLE_PATIENT);
    let before = versions(&server);
    let mut poster = Poster {
        server: &server,
        token,
        token_patient,
        open_patient,
        written: 0,
        requests: 0,
    };
    let mut rng = Rng(SEED);
    let sends = [
        Send::Create,
        Send::Update,
        Send::Conditional,
        Send::Batch,
        Send::Transaction,
    ];
    let mut n = 0usize;
    for (e, name) in EXAMPLES.iter().enumerate() {
        let mut example = kanta_example(name);
        example["id"] = json!(MUTATION_ID);
        let references = example_patients(&example);
        let resource_type = example["resourceType"].as_str().unwrap().to_owned();
        for Mutation {
            label,
            text,
            invalid,
        } in mutations(&example, EVERY_PATH.contains(name), &mut rng)
        {
            let send = sends[n % sends.len()];
            let with_token = (n / sends.len() + e) % 2 == 1;
            n += 1;
            // Each request pointed at the caller's Patient, with an id of its own.
            let patient = if with_token {
                &poster.token_patient
            } else {
                &poster.open_patient
            };
            let id = uuid();
            let mut text = replace(
                &text,
                &json!(MUTATION_ID).to_string(),
                &json!(id).to_string(),
            );
            for reference in &references {
                text = replace(
                    &text,
                    &json!(reference).to_string(),
                    &json!(format!("Patient/{patient}")).to_string(),
                );
            }
            let label = format!("{name}: {label} ({send:?}, token: {with_token})");
            let case = Case {
                label: &label,
                with_token,
                invalid,
            };
            poster.send(&case, send, &resource_type, &id, &text);
        }
        // Nothing but what the answers said was stored, after each example's mutations.
        assert_eq!(versions(&server), before + poster.written, "after {name}");
    }

    // The 300-entry batch Bundle, mutated: wrong types in the Bundle's own structure and
    // inside entries, an edge number, duplicate keys, deep nesting.
    let bundle = kanta_example(KANTA_BUNDLE);
    let bundle_paths: Vec<Path> = all_paths(&bundle)
        .into_iter()
        .filter(|p| p.len() <= 4)
        .collect();
    // (what, text, whether no part of it may be stored)
    let mut posts: Vec<(String, Vec<u8>, bool)> = Vec::new();
    for path in rng.sample(&bundle_paths, 4) {
        let mut v = bundle.clone();
        let here = kind_of(node(&mut v, &path));
        *node(&mut v, &path) = of_kind((here + 1 + rng.below(5)) % 6);
        posts.push((
            format!("bundle: type at {}", describe(&path)),
            serde_json::to_vec(&v).unwrap(),
            false,
        ));
    }
    let value_path = vec![
        Step::Key("entry".into()),
        Step::Index(299),
        Step::Key("resource".into()),
    ];
    posts.push((
        "bundle: 1e308 as entry 299".into(),
        with_raw(bundle.clone(), &value_path, b"1e308"),
        false,
    ));
    posts.push((
        "bundle: duplicate type".into(),
        duplicate_key(bundle.as_object().unwrap(), "type", true),
        true,
    ));
    posts.push((
        "bundle: entry 0 nested 100000 deep".into(),
        with_raw(bundle.clone(), &value_path[..2], &nested_arrays(100_000)),
        true,
    ));
    for (i, (label, text, invalid)) in posts.into_iter().enumerate() {
        let with_token = i % 2 == 1;
        let text = if with_token {
            replace(&text, KANTA_BUNDLE_PATIENT, &poster.token_patient)
        } else {
            text
        };
        let case = Case {
            label: &label,
            with_token,
            invalid,
        };
        poster.post(&case, "", text, &["POST"; 300], None, false);
    }
    assert_eq!(
        versions(&server),
        before + poster.written,
        "after the Bundles"
    );
    eprintln!(
        "posted {} mutated requests; {} versions written by the ones accepted",
        poster.requests, poster.written
    );

    // The server still serves: a good create succeeds and reads back.
    let good = server.post("Observation", &weight(&poster.open_patient, 71.5));
    assert_eq!(good.status(), 201);
    let id = body(good)["id"].as_str().unwrap().to_owned();
    assert_eq!(server.get(&format!("Observation/{id}")).status(), 200);
    assert_eq!(versions(&server), before + poster.written + 1);
}

/// The Patient references of an example (`Patient/x`), to re-point them.
fn example_patients(example: &Value) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::String(s) if s.starts_with("Patient/") && !out.contains(s) => {
                out.push(s.clone())
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            Value::Object(map) => map.values().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    walk(example, &mut out);
    out
}

/// `text` with every `from` replaced by `to` (bytes: the text need not be UTF-8).
fn replace(text: &[u8], from: &str, to: &str) -> Vec<u8> {
    let from = from.as_bytes();
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        if text[i..].starts_with(from) {
            out.extend_from_slice(to.as_bytes());
            i += from.len();
        } else {
            out.push(text[i]);
            i += 1;
        }
    }
    out
}
