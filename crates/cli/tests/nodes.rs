//! Several `phr serve` nodes on one PostgreSQL database (whatever `PHR_TEST_ENGINE` says):
//! what one node writes the other reads and finds, tokens and paging links work on either,
//! a withdrawal or suspension on one cuts tokens on the other within a second, racing
//! conditional creates across nodes store each identifier once, a killed node or a crashed
//! database loses no acknowledged write, and an SQLite folder copied with `phr migrate-store`
//! answers as before.

mod common;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::browser::{Browser, csrf_of};
use common::*;
use reqwest::StatusCode;
use serde_json::Value;

const HETU: &str = "010190-900P";
const SCOPE: &str = "patient/Observation.read patient/Observation.write patient/Patient.read";

/// One database, an identity key, and two nodes A and B behind one public URL (A's own).
struct Nodes {
    url: String,
    key: PathBuf,
    a: Server,
    b: Server,
    _dirs: [tempfile::TempDir; 2],
}

impl Nodes {
    fn start(hint: &str) -> Nodes {
        let url = phr_test_postgres::database(hint);
        let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let key = dir_a.path().join("shared-identity.key");
        std::fs::write(&key, [7u8; 32]).unwrap();
        // These tests race one citizen's writes across nodes (800 requests in one test): the
        // citizen's budget, tested in `edges.rs`, is off so that every answer is the race's.
        let config = dir_a.path().join("phr.toml");
        std::fs::write(&config, "[limits.citizen]\nburst = 0\nper_hour = 0\n").unwrap();
        let config = config.display().to_string();
        let args = ["--config", config.as_str()];
        let a = Server::start_node(dir_a.path(), &url, &key, None, &args);
        let b = Server::start_node(dir_b.path(), &url, &key, Some(&a.root), &args);
        Nodes {
            url,
            key,
            a,
            b,
            _dirs: [dir_a, dir_b],
        }
    }

    /// An operator command on the shared database, for the nodes' public URL.
    fn admin(&self, args: &[&str]) -> String {
        let key = self.key.display().to_string();
        let mut all = args.to_vec();
        all.extend([
            "--database",
            &self.url,
            "--identity-key",
            &key,
            "--public-url",
            &self.a.root,
        ]);
        phr_ok(&all)
    }

    /// Registers `app` and mints a token for the test citizen: (Patient id, token).
    fn token(&self, app: &str) -> (String, String) {
        self.admin(&[
            "app",
            "register",
            "--id",
            app,
            "--name",
            app,
            "--scope",
            SCOPE,
            "--redirect-uri",
            "http://127.0.0.1:9/cb",
        ]);
        let out = self.admin(&["token", "--hetu", HETU, "--app", app, "--scope", SCOPE]);
        let patient = out
            .lines()
            .find_map(|l| l.strip_prefix("patient: "))
            .expect("patient")
            .to_string();
        (patient, out.lines().last().expect("token").to_string())
    }
}

/// `link` of relation `relation` in a searchset.
fn link(bundle: &Value, relation: &str) -> Option<String> {
    bundle["link"]
        .as_array()?
        .iter()
        .find(|l| l["relation"] == relation)
        .and_then(|l| l["url"].as_str())
        .map(str::to_string)
}

fn ids(bundle: &Value) -> Vec<String> {
    bundle["entry"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .filter_map(|e| e["resource"]["id"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Asks `status_of` until it answers `wanted` or `within` has passed since `since`; the
/// time it took, or a failure naming the last status.
fn answers_within(
    wanted: StatusCode,
    since: Instant,
    within: Duration,
    status_of: impl Fn() -> StatusCode,
) -> Duration {
    loop {
        let status = status_of();
        let elapsed = since.elapsed();
        if status == wanted {
            return elapsed;
        }
        assert!(
            elapsed < within,
            "still {status} after {elapsed:?}, wanted {wanted} within {within:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn what_one_node_writes_the_other_reads_finds_and_pages() {
    let nodes = Nodes::start("nodes_share");
    let (patient, token) = nodes.token("share-app");
    let mut written = Vec::new();
    for i in 0..5 {
        let response = nodes.a.post_as(
            &token,
            "Observation",
            &weight(&patient, 70.0 + f64::from(i)),
        );
        assert_eq!(response.status(), StatusCode::CREATED);
        written.push(body(response)["id"].as_str().unwrap().to_string());
    }
    // The token minted for the nodes' URL works on B; B reads what A wrote.
    for id in &written {
        let read = nodes.b.get_as(&token, &format!("Observation/{id}"));
        assert_eq!(read.status(), StatusCode::OK, "Observation/{id} on B");
    }
    let search = format!("Observation?patient={patient}&code=http://loinc.org|29463-7");
    let found = body(nodes.b.get_as(&token, &format!("{search}&_count=50")));
    assert_eq!(found["total"], 5);
    let mut seen = ids(&found);
    seen.sort();
    let mut expected = written.clone();
    expected.sort();
    assert_eq!(seen, expected);

    // A's paging link, followed on B: the page cursor's key and snapshot are in the database.
    let first = body(nodes.a.get_as(&token, &format!("{search}&_count=2")));
    let mut paged = ids(&first);
    let mut next = link(&first, "next");
    while let Some(url) = next {
        let on_b = url.replace(&nodes.a.base, &nodes.b.base);
        assert_ne!(on_b, url, "the link names the nodes' public URL");
        let page = body(nodes.b.get_as(&token, &on_b));
        paged.extend(ids(&page));
        next = link(&page, "next");
    }
    paged.sort();
    assert_eq!(paged, expected, "every resource once across the pages");
}

#[test]
fn a_withdrawal_or_suspension_on_one_node_cuts_tokens_on_the_other_within_a_second() {
    let nodes = Nodes::start("nodes_withdraw");
    let (patient, token) = nodes.token("withdrawn-app");
    let path = format!("Patient/{patient}");
    // B has checked the token once (its caches are warm).
    assert_eq!(nodes.b.get_as(&token, &path).status(), StatusCode::OK);

    // The citizen withdraws the grant in A's portal.
    let mut browser = Browser::new(&nodes.a);
    browser.login(HETU);
    let apps = browser.get("/portal/apps");
    let page = browser.post(
        "/portal/apps/withdraw",
        &[("csrf", &csrf_of(&apps.body)), ("app", "withdrawn-app")],
    );
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let withdrawn = Instant::now();
    let took = answers_within(
        StatusCode::UNAUTHORIZED,
        withdrawn,
        Duration::from_secs(1),
        || nodes.b.get_as(&token, &path).status(),
    );
    eprintln!("B refused the withdrawn grant's token after {took:?}");

    // An operator suspends an app (a third process): both nodes refuse its token.
    let (_, other) = nodes.token("suspended-app");
    assert_eq!(nodes.a.get_as(&other, &path).status(), StatusCode::OK);
    assert_eq!(nodes.b.get_as(&other, &path).status(), StatusCode::OK);
    nodes.admin(&["app", "suspend", "suspended-app"]);
    let suspended = Instant::now();
    for node in [&nodes.a, &nodes.b] {
        answers_within(
            StatusCode::UNAUTHORIZED,
            suspended,
            Duration::from_secs(1),
            || node.get_as(&other, &path).status(),
        );
    }
}

#[test]
fn clients_racing_on_both_nodes_store_each_identifier_once() {
    let nodes = Arc::new(Nodes::start("nodes_race"));
    let (patient, token) = nodes.token("race-app");
    let identifiers: Vec<String> = (0..50).map(|_| format!("urn:uuid:{}", uuid())).collect();
    let threads: Vec<_> = (0..16)
        .map(|t| {
            let (nodes, patient, token, identifiers) = (
                nodes.clone(),
                patient.clone(),
                token.clone(),
                identifiers.clone(),
            );
            std::thread::spawn(move || {
                let node = if t % 2 == 0 { &nodes.a } else { &nodes.b };
                for (i, identifier) in identifiers.iter().enumerate() {
                    let mut observation = weight(&patient, 60.0 + i as f64);
                    observation["identifier"][0]["value"] = Value::from(identifier.as_str());
                    let response = node
                        .json(
                            node.client
                                .post(node.url("Observation"))
                                .bearer_auth(&token),
                            &observation,
                        )
                        .header(
                            "If-None-Exist",
                            format!("identifier=urn:ietf:rfc:3986|{identifier}"),
                        )
                        .send()
                        .expect("POST");
                    assert!(
                        response.status() == StatusCode::CREATED
                            || response.status() == StatusCode::OK,
                        "{}",
                        response.status()
                    );
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let counted = body(nodes.a.get_as(
        &token,
        &format!("Observation?patient={patient}&_summary=count"),
    ));
    assert_eq!(counted["total"], 50);
}

/// Posts weights through `node` from `clients` threads until `stop`, recording the ids of
/// acknowledged (201) writes and how many requests failed. Every request must be answered
/// within the client's timeout: a hang fails the ingest.
fn ingest(
    node: &Server,
    token: Option<&str>,
    patient: &str,
    clients: usize,
    stop: &Arc<std::sync::atomic::AtomicBool>,
) -> Vec<std::thread::JoinHandle<(Vec<String>, u64)>> {
    (0..clients)
        .map(|_| {
            let client = reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap();
            let (url, token, patient, stop) = (
                node.url("Observation"),
                token.map(str::to_string),
                patient.to_string(),
                stop.clone(),
            );
            std::thread::spawn(move || {
                let (mut acked, mut failed) = (Vec::new(), 0u64);
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let mut request = client
                        .post(&url)
                        .header("Content-Type", FHIR_JSON)
                        .body(serde_json::to_vec(&weight(&patient, 70.0)).unwrap());
                    if let Some(token) = &token {
                        request = request.bearer_auth(token);
                    }
                    match request.send() {
                        Ok(r) if r.status() == StatusCode::CREATED => {
                            let id = body(r)["id"].as_str().unwrap().to_string();
                            acked.push(id);
                        }
                        Ok(r) => {
                            assert!(
                                r.status().is_server_error(),
                                "an ingest request got {}",
                                r.status()
                            );
                            failed += 1;
                        }
                        Err(e) => {
                            assert!(!e.is_timeout(), "a request hung: {e}");
                            // The node is gone (killed): the connection broke.
                            failed += 1;
                            std::thread::sleep(Duration::from_millis(50));
                        }
                    }
                }
                (acked, failed)
            })
        })
        .collect()
}

fn wait_for(what: &str, within: Duration, done: impl Fn() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "{what} did not happen");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn collect(handles: Vec<std::thread::JoinHandle<(Vec<String>, u64)>>) -> (Vec<String>, u64) {
    let mut all = (Vec::new(), 0);
    for handle in handles {
        let (acked, failed) = handle.join().expect("an ingest client failed");
        all.0.extend(acked);
        all.1 += failed;
    }
    all
}

#[test]
fn a_node_killed_during_an_ingest_loses_no_acknowledged_write() {
    let nodes = Nodes::start("nodes_kill");
    let (patient, token) = nodes.token("kill-app");
    let Nodes { a, b, .. } = nodes;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let counter = b.client.clone();
    let handles = ingest(&a, Some(&token), &patient, 4, &stop);
    // Kill A once some writes were acknowledged (seen through B), mid-ingest.
    let search = format!("Observation?patient={patient}&_summary=count");
    wait_for("20 acknowledged writes", Duration::from_secs(120), || {
        let counted: Value = counter
            .get(b.url(&search))
            .bearer_auth(&token)
            .send()
            .and_then(|r| r.json())
            .unwrap_or_default();
        counted["total"].as_u64().unwrap_or(0) >= 20
    });
    a.kill();
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (acked, failed) = collect(handles);
    assert!(
        acked.len() >= 20 && failed > 0,
        "{} acked, {failed} failed",
        acked.len()
    );
    for id in &acked {
        let read = b.get_as(&token, &format!("Observation/{id}"));
        assert_eq!(
            read.status(),
            StatusCode::OK,
            "acknowledged Observation/{id}"
        );
    }
}

#[test]
fn a_database_crash_during_an_ingest_gives_errors_not_hangs_and_loses_no_acknowledged_write() {
    let cluster = phr_test_postgres::Cluster::start();
    let url = cluster.database("crash");
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("identity.key");
    std::fs::write(&key, [9u8; 32]).unwrap();
    let node = Server::start_node(dir.path(), &url, &key, None, &["--open-sandbox"]);
    let ready = |node: &Server| {
        node.client
            .get(format!("{}/ready", node.root))
            .send()
            .map(|r| r.status())
            .unwrap_or(StatusCode::BAD_GATEWAY)
    };
    assert_eq!(ready(&node), StatusCode::OK);
    let patient = create_patient_open(&node);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let handles = ingest(&node, None, &patient, 4, &stop);
    let acked_before = Arc::new(Mutex::new(0));
    wait_for("some acknowledged writes", Duration::from_secs(120), || {
        let counted = body(node.get(&format!("Observation?patient={patient}&_summary=count")));
        *acked_before.lock().unwrap() = counted["total"].as_u64().unwrap_or(0);
        counted["total"].as_u64().unwrap_or(0) >= 20
    });
    cluster.crash();
    // While the database is down: 503s and errors within the client's timeout, never a hang.
    wait_for("/ready answering 503", Duration::from_secs(60), || {
        ready(&node) == StatusCode::SERVICE_UNAVAILABLE
    });
    let down = node.get(&format!("Observation?patient={patient}"));
    assert_eq!(down.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body(down)["resourceType"], "OperationOutcome");
    std::thread::sleep(Duration::from_secs(1));
    cluster.restart();
    // The node recovers by itself.
    wait_for(
        "/ready answering 200 again",
        Duration::from_secs(60),
        || ready(&node) == StatusCode::OK,
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (acked, failed) = collect(handles);
    assert!(failed > 0, "the crash went unnoticed");
    for id in &acked {
        let read = node.get(&format!("Observation/{id}"));
        assert_eq!(
            read.status(),
            StatusCode::OK,
            "acknowledged Observation/{id}"
        );
    }
    let after = node.post("Observation", &weight(&patient, 71.0));
    assert_eq!(after.status(), StatusCode::CREATED, "writes work again");
}

/// A Patient stored through the open sandbox.
fn create_patient_open(node: &Server) -> String {
    let id = uuid();
    let response = node.put(&format!("Patient/{id}"), &kanta_patient(&id));
    assert!(response.status().is_success(), "{}", response.status());
    id
}

#[test]
fn an_sqlite_folder_copied_with_migrate_store_answers_as_before() {
    let folder = tempfile::tempdir().unwrap();
    let data = folder.path().to_str().unwrap().to_string();
    phr_ok(&["demo", "--days", "3", "--data", &data]);
    // A version history with an update and a deletion, and audit records.
    let sqlite = Server::start_sqlite(folder.path(), &["--open-sandbox"]);
    let patient = demo_patient(folder.path());
    let search = format!("Observation?patient={patient}&_sort=-date&_count=1000");
    let all = body(sqlite.get(&search));
    let ids = ids(&all);
    assert!(ids.len() > 10, "{} demo observations", ids.len());
    let updated = all["entry"][0]["resource"].clone();
    let changed = sqlite.put(&format!("Observation/{}", ids[0]), &updated);
    assert_eq!(changed.status(), StatusCode::OK);
    assert_eq!(
        sqlite.delete(&format!("Observation/{}", ids[1])).status(),
        StatusCode::NO_CONTENT
    );
    let queries = [
        search.clone(),
        format!("Observation?patient={patient}&code=http://loinc.org|29463-7&_sort=date"),
        format!("Observation?patient={patient}&date=ge2000-01-01&_summary=count"),
        format!("Observation/{}/_history", ids[0]),
        format!("Patient/{patient}"),
    ];
    let before: Vec<Value> = queries.iter().map(|q| body(sqlite.get(q))).collect();
    sqlite.terminate();

    let url = phr_test_postgres::database("migrate_store");
    let out = phr_ok(&["migrate-store", "--from", &data, "--to", &url]);
    for line in [
        "versions:",
        "resources:",
        "audit_log:",
        "the audit hash chain is intact",
    ] {
        assert!(out.contains(line), "{line} missing from:\n{out}");
    }
    let key = folder.path().join("identity.key");
    let node_dir = tempfile::tempdir().unwrap();
    let node = Server::start_node(node_dir.path(), &url, &key, None, &["--open-sandbox"]);
    for (query, expected) in queries.iter().zip(&before) {
        let answer = body(node.get(query));
        assert_eq!(
            comparable(&answer),
            comparable(expected),
            "{query} answers differently after the copy"
        );
    }
    let key = key.display().to_string();
    let verified = phr_ok(&[
        "audit",
        "verify",
        "--database",
        &url,
        "--identity-key",
        &key,
    ]);
    assert!(verified.contains("intact"), "{verified}");
    // Copying into a database that holds data is refused.
    let again = phr_fails(&["migrate-store", "--from", &data, "--to", &url]);
    assert!(again.contains("already holds"), "{again}");
}

/// An answer without what names the server or the moment (links, ids of the Bundle).
fn comparable(answer: &Value) -> Value {
    let mut answer = answer.clone();
    if let Some(map) = answer.as_object_mut() {
        for field in ["link", "id", "meta"] {
            if map.get("resourceType") == Some(&Value::from("Bundle")) {
                map.remove(field);
            }
        }
        if let Some(entries) = map.get_mut("entry").and_then(Value::as_array_mut) {
            for entry in entries {
                if let Some(e) = entry.as_object_mut() {
                    e.remove("fullUrl");
                }
            }
        }
    }
    answer
}

fn demo_patient(data: &Path) -> String {
    let marker: Value =
        serde_json::from_slice(&std::fs::read(data.join("demo.json")).unwrap()).unwrap();
    marker["patients"][0].as_str().unwrap().to_string()
}
