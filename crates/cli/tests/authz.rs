//! The authorization matrix, black-box: the real `phr` binary serving without
//! `--open-sandbox`, applications registered and tokens minted with the operator commands
//! (`phr app`, `phr token`, `phr grant`), and every answer checked over HTTP: citizen ×
//! application × scope × endpoint.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

const READ_ONLY: &str = "patient/Observation.read";
const READ_WRITE: &str = "patient/Observation.read patient/Observation.write patient/Patient.read patient/AuditEvent.read";
const VITAL_SIGNS_ONLY: &str = "patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|vital-signs";
const CREATING_APPLICATION: &str =
    "http://phr.kanta.fi/StructureDefinition/fiphr-ext-creatingapplication";

/// Two citizens, a read-only app, a read/write app and a second writer, on a server that
/// requires tokens.
struct World {
    server: Server,
    anna: Citizen,
    bert: Citizen,
}

struct Citizen {
    hetu: String,
    patient: String,
    /// Token of the read/write app.
    rw: String,
    /// Token of the read-only app.
    ro: String,
}

fn world() -> World {
    let server = Server::start(&[]);
    server.register_app("ro-app", READ_ONLY);
    server.register_app("rw-app", READ_WRITE);
    server.register_app("rw2-app", READ_WRITE);
    let citizen = |hetu: String| {
        let (patient, rw) = server.token(&hetu, "rw-app", READ_WRITE);
        let (same, ro) = server.token(&hetu, "ro-app", READ_ONLY);
        assert_eq!(patient, same, "one citizen, one Patient");
        Citizen {
            hetu,
            patient,
            rw,
            ro,
        }
    };
    let anna = citizen(test_hetu("010190", 901));
    let bert = citizen(test_hetu("020285", 902));
    assert_ne!(anna.patient, bert.patient);
    World { server, anna, bert }
}

/// Stores a body weight for `citizen` with their read/write token; returns its id.
fn store_weight(server: &Server, token: &str, patient: &str, kg: f64) -> String {
    let response = server.post_as(token, "Observation", &weight(patient, kg));
    assert_eq!(response.status(), 201, "{}", response.text().unwrap());
    body(response)["id"].as_str().unwrap().to_string()
}

/// A Kanta daily-steps Observation (category `fitness`, not vital signs) for `patient`.
fn steps(patient: &str, count: u32) -> Value {
    let mut obs = kanta_example("observation-example-StepsTaken-min.json");
    let object = obs.as_object_mut().unwrap();
    object.remove("id");
    object.remove("meta");
    obs["meta"] =
        json!({"profile": ["http://phr.kanta.fi/StructureDefinition/fiphr-sd-stepstaken"]});
    obs["identifier"][0]["value"] = json!(format!("urn:uuid:{}", uuid()));
    obs["subject"]["reference"] = json!(format!("Patient/{patient}"));
    obs["performer"][0]["reference"] = json!(format!("Patient/{patient}"));
    obs["valueQuantity"]["value"] = json!(count);
    obs
}

fn total(bundle: &Value) -> u64 {
    bundle["total"]
        .as_u64()
        .unwrap_or_else(|| panic!("no total: {bundle}"))
}

fn entry_ids(bundle: &Value) -> Vec<String> {
    bundle["entry"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .map(|e| e["resource"]["id"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Every resource of a searchset belongs to `patient`.
fn assert_only_patient(bundle: &Value, patient: &str) {
    for entry in bundle["entry"].as_array().into_iter().flatten() {
        let subject = entry["resource"]["subject"]["reference"].as_str();
        assert_eq!(
            subject,
            Some(format!("Patient/{patient}").as_str()),
            "another citizen's resource leaked: {entry}"
        );
    }
}

/// Repeats `request` until it answers `status` (another process's change reaches the
/// running server within half a second); panics after two seconds.
fn eventually_status(what: &str, status: u16, request: impl Fn() -> reqwest::blocking::Response) {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let got = request().status().as_u16();
        if got == status {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: still {got} after 2 s, expected {status}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn assert_unauthorized(response: reqwest::blocking::Response, what: &str) {
    assert_eq!(response.status(), 401, "{what}");
    let challenge = response
        .headers()
        .get("www-authenticate")
        .unwrap_or_else(|| panic!("{what}: 401 without WWW-Authenticate"))
        .to_str()
        .unwrap()
        .to_string();
    assert!(challenge.starts_with("Bearer"), "{what}: {challenge}");
    let outcome = body(response);
    assert_eq!(outcome["resourceType"], "OperationOutcome", "{what}");
}

#[test]
fn each_citizen_reads_their_own_compartment_and_never_anothers() {
    let World { server, anna, bert } = world();
    let anna_obs: Vec<String> = (0..3)
        .map(|i| store_weight(&server, &anna.rw, &anna.patient, 70.0 + f64::from(i)))
        .collect();
    let bert_obs = store_weight(&server, &bert.rw, &bert.patient, 90.0);

    // Own data, through both apps.
    for token in [&anna.rw, &anna.ro] {
        let read = server.get_as(token, &format!("Observation/{}", anna_obs[0]));
        assert_eq!(read.status(), 200);
        assert_eq!(
            body(read)["subject"]["reference"],
            format!("Patient/{}", anna.patient)
        );
    }
    let own = body(server.get_as(&anna.ro, &format!("Observation?patient={}", anna.patient)));
    assert_eq!(total(&own), 3);
    assert_only_patient(&own, &anna.patient);
    let own_patient = server.get_as(&anna.rw, &format!("Patient/{}", anna.patient));
    assert_eq!(
        own_patient.status(),
        200,
        "the citizen's own Patient is readable"
    );

    // Another citizen's resource does not exist for Anna, whatever the app.
    for token in [&anna.rw, &anna.ro] {
        let read = server.get_as(token, &format!("Observation/{bert_obs}"));
        assert_eq!(read.status(), 404);
        let history = server.get_as(token, &format!("Observation/{bert_obs}/_history/1"));
        assert_eq!(history.status(), 404);
    }
    assert_eq!(
        server
            .get_as(&anna.rw, &format!("Patient/{}", bert.patient))
            .status(),
        404
    );

    // Searching with Bert as the patient: refused (403, or 400 where Kanta's rules want
    // `patient` itself), or nothing of his.
    for query in [
        format!("Observation?patient={}", bert.patient),
        format!("Observation?subject=Patient/{}", bert.patient),
        format!("Observation?patient={}&_summary=count", bert.patient),
        format!("Observation?_id={bert_obs}"),
    ] {
        let response = server.get_as(&anna.ro, &query);
        let status = response.status().as_u16();
        if status == 200 {
            let bundle = body(response);
            assert_eq!(
                bundle["total"].as_u64().unwrap_or(0),
                0,
                "{query}: {bundle}"
            );
            assert!(entry_ids(&bundle).is_empty(), "{query}: {bundle}");
        } else {
            assert!(matches!(status, 400 | 403), "{query}: {status}");
        }
    }

    // Counting and paging see Anna's three only, although four are stored.
    let count = body(server.get_as(
        &anna.ro,
        &format!("Observation?patient={}&_summary=count", anna.patient),
    ));
    assert_eq!(total(&count), 3);
    assert!(count["entry"].as_array().is_none_or(Vec::is_empty));
    let mut seen = Vec::new();
    let mut page = body(server.get_as(
        &anna.ro,
        &format!("Observation?patient={}&_count=1", anna.patient),
    ));
    loop {
        assert_only_patient(&page, &anna.patient);
        seen.extend(entry_ids(&page));
        let next = page["link"]
            .as_array()
            .and_then(|links| links.iter().find(|l| l["relation"] == "next"))
            .and_then(|l| l["url"].as_str())
            .map(str::to_string);
        let Some(next) = next else { break };
        let response = server
            .client
            .get(&next)
            .bearer_auth(&anna.ro)
            .send()
            .unwrap();
        assert_eq!(response.status(), 200);
        page = body(response);
    }
    seen.sort();
    let mut expected = anna_obs.clone();
    expected.sort();
    assert_eq!(seen, expected);

    // Bert's paging link is no key to his data for Anna.
    let bert_page = body(server.get_as(
        &bert.ro,
        &format!("Observation?patient={}&_count=1", bert.patient),
    ));
    assert_eq!(total(&bert_page), 1);

    // Writing into Bert's compartment is refused.
    let response = server.post_as(&anna.rw, "Observation", &weight(&bert.patient, 60.0));
    assert!(
        matches!(response.status().as_u16(), 403 | 422),
        "{}",
        response.status()
    );
    assert_eq!(
        total(&body(server.get_as(
            &bert.ro,
            &format!("Observation?patient={}", bert.patient)
        ))),
        1
    );
    let _ = &bert.hetu;
}

#[test]
fn scopes_decide_what_an_app_may_do() {
    let World { server, anna, .. } = world();
    let stored = store_weight(&server, &anna.rw, &anna.patient, 72.0);

    // Read-only scope: every write is 403, reads work.
    let create = server.post_as(&anna.ro, "Observation", &weight(&anna.patient, 73.0));
    assert_eq!(create.status(), 403);
    let mut changed = body(server.get_as(&anna.ro, &format!("Observation/{stored}")));
    changed["valueQuantity"]["value"] = json!(74.0);
    let update = server.put_as(&anna.ro, &format!("Observation/{stored}"), &changed);
    assert_eq!(update.status(), 403);
    let delete = server.delete_as(&anna.ro, &format!("Observation/{stored}"));
    assert_eq!(delete.status(), 403);
    // A type outside the scopes: 403 also for reading.
    let patient = server.get_as(&anna.ro, &format!("Patient/{}", anna.patient));
    assert_eq!(patient.status(), 403);
    assert_eq!(
        total(&body(server.get_as(
            &anna.ro,
            &format!("Observation?patient={}", anna.patient)
        ))),
        1
    );

    // No token, a garbage token, a token signed for another server: 401 with a challenge.
    assert_unauthorized(server.get("Observation"), "no token");
    assert_unauthorized(server.get_as("garbage", "Observation"), "garbage token");
    let mut forged = anna.ro.clone();
    forged.pop();
    forged.push(if anna.ro.ends_with('A') { 'B' } else { 'A' });
    assert_unauthorized(server.get_as(&forged, "Observation"), "altered signature");
    assert_unauthorized(
        server.post("Observation", &weight(&anna.patient, 70.0)),
        "write without a token",
    );
}

#[test]
fn only_the_creating_app_deletes_and_creating_application_comes_from_the_token() {
    let World { server, anna, .. } = world();
    let (_, other_writer) = server.token(&anna.hetu, "rw2-app", READ_WRITE);

    let created = server.post_as(&anna.rw, "Observation", &weight(&anna.patient, 80.0));
    assert_eq!(created.status(), 201);
    let created = body(created);
    let id = created["id"].as_str().unwrap().to_string();
    let extension = created["extension"]
        .as_array()
        .and_then(|list| list.iter().find(|e| e["url"] == CREATING_APPLICATION))
        .unwrap_or_else(|| panic!("no creatingApplication: {created}"));
    let parts = extension["extension"].as_array().unwrap();
    let application_id = parts
        .iter()
        .find(|p| p["url"] == "applicationId")
        .map(|p| p["valueString"].clone());
    assert_eq!(application_id, Some(json!("rw-app")));

    // Naming another application is refused, at the extension.
    let mut impostor = weight(&anna.patient, 81.0);
    impostor["extension"] = json!([{
        "url": CREATING_APPLICATION,
        "extension": [
            {"url": "name", "valueString": "Test app rw2-app"},
            {"url": "applicationId", "valueString": "rw2-app"}
        ]
    }]);
    let refused = server.post_as(&anna.rw, "Observation", &impostor);
    assert_eq!(refused.status(), 422);
    let outcome = body(refused);
    assert!(
        issues(&outcome)
            .iter()
            .any(|(severity, _, at)| severity == "error" && at.contains("extension")),
        "{outcome}"
    );

    // Another app of the same citizen, with write scope, may not delete it.
    let delete = server.delete_as(&other_writer, &format!("Observation/{id}"));
    assert_eq!(delete.status(), 403);
    assert_eq!(
        server
            .get_as(&anna.ro, &format!("Observation/{id}"))
            .status(),
        200
    );
    // The creator may.
    let delete = server.delete_as(&anna.rw, &format!("Observation/{id}"));
    assert_eq!(delete.status(), 204);
    assert_eq!(
        server
            .get_as(&anna.ro, &format!("Observation/{id}"))
            .status(),
        410
    );
}

#[test]
fn a_granular_scope_sees_vital_signs_but_not_fitness_data() {
    let server = Server::start(&[]);
    server.register_app("rw-app", READ_WRITE);
    server.register_app("vitals-app", VITAL_SIGNS_ONLY);
    let hetu = test_hetu("030370", 903);
    let (patient, writer) = server.token(&hetu, "rw-app", READ_WRITE);
    let (_, vitals) = server.token(&hetu, "vitals-app", VITAL_SIGNS_ONLY);

    let weight_id = store_weight(&server, &writer, &patient, 65.0);
    let stored_steps = server.post_as(&writer, "Observation", &steps(&patient, 5000));
    assert_eq!(
        stored_steps.status(),
        201,
        "{}",
        stored_steps.text().unwrap()
    );
    let steps_id = body(stored_steps)["id"].as_str().unwrap().to_string();
    assert_eq!(
        total(&body(
            server.get_as(&writer, &format!("Observation?patient={patient}"))
        )),
        2
    );

    let found = body(server.get_as(&vitals, &format!("Observation?patient={patient}")));
    assert_eq!(entry_ids(&found), vec![weight_id.clone()]);
    assert_eq!(total(&found), 1);
    let counted = body(server.get_as(
        &vitals,
        &format!("Observation?patient={patient}&_summary=count"),
    ));
    assert_eq!(total(&counted), 1);
    assert_eq!(
        server
            .get_as(&vitals, &format!("Observation/{weight_id}"))
            .status(),
        200
    );
    let hidden = server.get_as(&vitals, &format!("Observation/{steps_id}"));
    assert!(
        matches!(hidden.status().as_u16(), 403 | 404),
        "{}",
        hidden.status()
    );
    // Read and search only: no writes.
    let write = server.post_as(&vitals, "Observation", &weight(&patient, 66.0));
    assert_eq!(write.status(), 403);
}

#[test]
fn a_citizen_reads_their_own_audit_events_only() {
    let World { server, anna, bert } = world();
    let id = store_weight(&server, &anna.rw, &anna.patient, 70.0);
    assert_eq!(
        server
            .get_as(&anna.ro, &format!("Observation/{id}"))
            .status(),
        200
    );
    assert_eq!(
        server
            .get_as(&bert.ro, &format!("Observation/{id}"))
            .status(),
        404
    );

    // Every request's record is queued before its response; the search writes the queue
    // out before it reads.
    let response = server.get_as(&anna.rw, &format!("AuditEvent?patient={}", anna.patient));
    assert_eq!(response.status(), 200);
    let events: Vec<Value> = body(response)["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| e["resource"].clone())
        .collect();
    assert!(
        events.iter().any(|e| e.to_string().contains(&id)),
        "no audit event names Observation/{id}: {events:?}"
    );
    for event in &events {
        assert_eq!(event["resourceType"], "AuditEvent");
        let text = event.to_string();
        assert!(
            text.contains(&anna.patient),
            "an event of Anna's log does not name her: {text}"
        );
        assert!(
            !text.contains(&bert.patient),
            "Bert's access leaked: {text}"
        );
        assert!(!text.contains(&anna.hetu), "the identity code leaked");
    }

    let other = server.get_as(&anna.rw, &format!("AuditEvent?patient={}", bert.patient));
    assert_eq!(other.status(), 403);
    // Records cannot be changed through the API.
    let write = server.post_as(
        &anna.rw,
        "AuditEvent",
        &json!({"resourceType": "AuditEvent"}),
    );
    assert!(
        matches!(write.status().as_u16(), 403 | 405),
        "{}",
        write.status()
    );
}

#[test]
fn metadata_and_discovery_documents_are_public() {
    let server = Server::start(&[]);
    let metadata = server.get("metadata");
    assert_eq!(metadata.status(), 200);
    let capabilities = body(metadata);
    assert_eq!(capabilities["resourceType"], "CapabilityStatement");
    let security = &capabilities["rest"][0]["security"];
    assert!(
        security.to_string().contains("SMART-on-FHIR"),
        "the capability statement names SMART: {security}"
    );
    for path in [
        "/.well-known/smart-configuration",
        "/fhir/r4/.well-known/smart-configuration",
        "/.well-known/openid-configuration",
        "/oauth/jwks",
    ] {
        let response = server
            .client
            .get(format!("{}{path}", server.root))
            .send()
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let document = body(response);
        assert!(document.is_object(), "{path}");
    }
    let smart = body(
        server
            .client
            .get(format!("{}/.well-known/smart-configuration", server.root))
            .send()
            .unwrap(),
    );
    assert_eq!(
        smart["token_endpoint"],
        format!("{}/oauth/token", server.root)
    );
    // Everything else needs a token.
    assert_unauthorized(server.get("Observation"), "search without a token");
    assert_unauthorized(server.get("Patient/x"), "read without a token");
}

#[test]
fn suspending_revoking_and_withdrawing_cut_tokens_at_once() {
    let World { server, anna, bert } = world();
    let read = |token: &str, patient: &str| {
        server.get_as(token, &format!("Observation?patient={patient}"))
    };
    assert_eq!(read(&anna.ro, &anna.patient).status(), 200);

    // Suspension cuts every token of the app, for every citizen; reinstating restores them.
    server.admin(&["app", "suspend", "ro-app"]);
    eventually_status("suspended app", 401, || read(&anna.ro, &anna.patient));
    assert_unauthorized(
        read(&bert.ro, &bert.patient),
        "suspended app, another citizen",
    );
    assert_eq!(
        read(&anna.rw, &anna.patient).status(),
        200,
        "other apps keep working"
    );
    let refused = server.admin_fails(&[
        "token", "--hetu", &anna.hetu, "--app", "ro-app", "--scope", READ_ONLY,
    ]);
    assert!(refused.contains("suspended"), "{refused}");
    server.admin(&["app", "accept", "ro-app"]);
    eventually_status("reinstated app", 200, || read(&anna.ro, &anna.patient));

    // Withdrawing Anna's grant to the read/write app cuts her token at once, not Bert's.
    server.admin(&["grant", "withdraw", "--hetu", &anna.hetu, "--app", "rw-app"]);
    eventually_status("withdrawn grant", 401, || read(&anna.rw, &anna.patient));
    assert_eq!(read(&bert.rw, &bert.patient).status(), 200);
    // A new grant makes a new token that works; the old one stays dead.
    let (_, fresh) = server.token(&anna.hetu, "rw-app", READ_WRITE);
    assert_eq!(read(&fresh, &anna.patient).status(), 200);
    assert_unauthorized(
        read(&anna.rw, &anna.patient),
        "token of the withdrawn grant",
    );

    // Revocation is final.
    server.admin(&["app", "revoke", "ro-app"]);
    eventually_status("revoked app", 401, || read(&anna.ro, &anna.patient));
    let refused = server.admin_fails(&["app", "accept", "ro-app"]);
    assert!(refused.contains("revoked"), "{refused}");
    assert_unauthorized(read(&bert.ro, &bert.patient), "revoked app");

    let listed: Value =
        serde_json::from_str(&server.admin(&["app", "list", "--json"])).expect("JSON list");
    let status_of = |id: &str| {
        listed
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["app_id"] == id)
            .map(|a| a["status"].clone())
    };
    assert_eq!(status_of("ro-app"), Some(json!("revoked")));
    assert_eq!(status_of("rw-app"), Some(json!("accepted")));
}

#[test]
fn an_expired_token_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("phr.toml");
    std::fs::write(&config, "[auth]\naccess_token_lifetime = 3\n").unwrap();
    let config = config.display().to_string();
    let server = Server::start(&["--config", &config]);
    server.register_app("ro-app", READ_ONLY);
    // `phr token` reads the same configuration, so it mints with the same lifetime.
    let args = server.admin_args(&[
        "token",
        "--hetu",
        &test_hetu("040480", 904),
        "--app",
        "ro-app",
        "--scope",
        READ_ONLY,
        "--config",
        &config,
    ]);
    let out = phr_ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(out.contains("expires_in: 3"), "{out}");
    let token = out.lines().last().unwrap().to_string();
    let patient = out
        .lines()
        .find_map(|l| l.strip_prefix("patient: "))
        .expect("phr token prints the patient");
    let search = format!("Observation?patient={patient}");
    assert_eq!(server.get_as(&token, &search).status(), 200);
    // The same token issued four seconds ago, past its 3-second lifetime: no waiting.
    let mut args = args;
    args.extend(["--issued-seconds-ago".to_string(), "4".to_string()]);
    let out = phr_ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let token = out.lines().last().unwrap().to_string();
    let response = server.get_as(&token, &search);
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    assert_unauthorized(response, "expired token");
    assert!(challenge.contains("invalid_token"), "{challenge}");
}

#[test]
fn operator_commands_export_and_verify_the_audit_log_and_rotate_keys() {
    let server = Server::start(&[]);
    server.register_app("ro-app", READ_ONLY);
    let hetu = test_hetu("050575", 905);
    let (patient, token) = server.token(&hetu, "ro-app", READ_ONLY);
    let search = format!("Observation?patient={patient}");
    assert_eq!(server.get_as(&token, &search).status(), 200);

    // A confidential client's secret is shown once, at registration.
    let registered = server.admin(&[
        "app",
        "register",
        "--name",
        "Backend",
        "--scope",
        READ_ONLY,
        "--client-type",
        "confidential",
        "--redirect-uri",
        "https://backend.example.fi/cb",
        "--json",
    ]);
    let registered: Value = serde_json::from_str(&registered).unwrap();
    assert!(
        registered["client_secret"]
            .as_str()
            .is_some_and(|s| s.len() >= 32)
    );
    assert_eq!(registered["app"]["status"], "accepted");
    let listed = server.admin(&["app", "list"]);
    assert!(!listed.contains(registered["client_secret"].as_str().unwrap()));
    assert!(
        listed.contains("ro-app") && listed.contains("Backend"),
        "{listed}"
    );

    // The export holds the search (a request audited by the server) and the operator's own
    // actions, with the hash chain, and never the identity code. The server writes its queued
    // records out when the access log is read through the API.
    server.register_app("log-app", "patient/AuditEvent.read");
    let (_, log_token) = server.token(&hetu, "log-app", "patient/AuditEvent.read");
    let log = format!("AuditEvent?patient={patient}");
    assert_eq!(server.get_as(&log_token, &log).status(), 200);
    let exported = server.admin(&["audit", "export"]);
    let records: Vec<Value> = exported
        .lines()
        .map(|l| serde_json::from_str(l).expect("NDJSON"))
        .collect();
    assert!(records.len() >= 3, "{exported}");
    assert!(
        records
            .iter()
            .all(|r| r["chain"].as_str().is_some_and(|c| c.len() == 64))
    );
    assert!(
        records
            .iter()
            .any(|r| r.to_string().contains(&patient) && r.to_string().contains("search")),
        "{exported}"
    );
    assert!(!exported.contains(&hetu));
    assert_eq!(
        server.admin(&["audit", "export", "--since", "2100-01-01"]),
        ""
    );
    assert_eq!(
        server.admin(&["audit", "export", "--until", "1970-01-02"]),
        ""
    );
    let file = server.data.join("audit-export.ndjson");
    server.admin(&["audit", "export", "--out", file.to_str().unwrap()]);
    assert!(std::fs::read_to_string(&file).unwrap().lines().count() >= records.len());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the export is readable by its owner only");
    }
    let verified = server.admin(&["audit", "verify"]);
    assert!(verified.contains("intact"), "{verified}");

    // A rotated key signs new tokens; the running server accepts them, and the old ones.
    let rotated = server.admin(&["key", "rotate"]);
    let kid = rotated
        .trim()
        .strip_prefix("new signing key ")
        .unwrap_or_else(|| panic!("{rotated}"))
        .to_string();
    let (_, fresh) = server.token(&hetu, "ro-app", READ_ONLY);
    eventually_status("token of the rotated key", 200, || {
        server.get_as(&fresh, &search)
    });
    assert_eq!(server.get_as(&token, &search).status(), 200);
    let jwks = body(
        server
            .client
            .get(format!("{}/oauth/jwks", server.root))
            .send()
            .unwrap(),
    );
    assert!(
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["kid"] == kid.as_str()),
        "{jwks}"
    );
}

#[test]
fn phr_token_refuses_what_it_must_not_mint() {
    let server = Server::start(&[]);
    server.register_app("ro-app", READ_ONLY);
    let adult = test_hetu("060680", 906);
    let unknown = server.admin_fails(&[
        "token", "--hetu", &adult, "--app", "nope", "--scope", READ_ONLY,
    ]);
    assert!(unknown.contains("nope"), "{unknown}");
    // Not a test identity (individual number below 900).
    let real = server.admin_fails(&[
        "token",
        "--hetu",
        "010190-123F",
        "--app",
        "ro-app",
        "--scope",
        READ_ONLY,
    ]);
    assert!(
        !real.contains("010190-123F"),
        "the identity code is not echoed: {real}"
    );
    // A scope the app is not registered for.
    let scope = server.admin_fails(&[
        "token",
        "--hetu",
        &adult,
        "--app",
        "ro-app",
        "--scope",
        "patient/Observation.write",
    ]);
    assert!(scope.contains("scope"), "{scope}");
    // Under 16 (born ten years ago).
    let this_year = time::OffsetDateTime::now_utc().year();
    let young = format!("0101{:02}A905", (this_year - 10) % 100);
    let young = {
        let digits: u64 = format!("{}{}", &young[0..6], &young[7..10])
            .parse()
            .unwrap();
        let check = b"0123456789ABCDEFHJKLMNPRSTUVWXY"[(digits % 31) as usize] as char;
        format!("{young}{check}")
    };
    let minor = server.admin_fails(&[
        "token", "--hetu", &young, "--app", "ro-app", "--scope", READ_ONLY,
    ]);
    assert!(minor.contains("16"), "{minor}");
    // Operator commands on a folder without an authorization database say so.
    let empty = tempfile::tempdir().unwrap();
    let missing = phr_fails(&["app", "list", "--data", empty.path().to_str().unwrap()]);
    assert!(missing.contains("no authorization database"), "{missing}");
}

#[test]
fn metrics_count_active_grants_and_refreshable_logins() {
    let server = Server::start(&[]);
    let offline = format!("{READ_ONLY} offline_access");
    server.register_app("ro-app", &offline);
    let gauge = |name: &str| -> u64 {
        let text = server
            .client
            .get(format!("{}/metrics", server.root))
            .send()
            .unwrap()
            .text()
            .unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} missing:\n{text}"))
            .parse()
            .unwrap()
    };
    assert_eq!(gauge("phr_auth_active_grants"), 0);
    assert_eq!(gauge("phr_auth_refreshable_logins"), 0);
    let hetu = test_hetu("060606", 906);
    server.token(&hetu, "ro-app", READ_ONLY);
    assert_eq!(gauge("phr_auth_active_grants"), 1);
    assert_eq!(
        gauge("phr_auth_refreshable_logins"),
        0,
        "no offline_access, no refresh"
    );
    server.token(&hetu, "ro-app", &offline);
    assert_eq!(gauge("phr_auth_refreshable_logins"), 1);
    server.admin(&["grant", "withdraw", "--hetu", &hetu, "--app", "ro-app"]);
    assert_eq!(gauge("phr_auth_active_grants"), 0);
    assert_eq!(gauge("phr_auth_refreshable_logins"), 0);
}
