//! Production edges, black-box: browser apps on other origins (CORS), request budgets per
//! application and per citizen (429 + Retry-After), the in-flight limit and the request
//! timeout (503), slow bodies cut off (408), large bodies waiting for the body budget, and the
//! drain on SIGTERM. Limits are set small in
//! a configuration file so that every refusal is reached by counting requests, never by
//! measuring time; slow clients are raw TCP connections that stop sending.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;

const READ: &str = "patient/Observation.rs patient/Patient.rs";
const APP_ORIGIN: &str = "http://127.0.0.1:9";

/// A configuration file in `dir` with `text`; returns its path.
fn config_file(dir: &Path, text: &str) -> String {
    let path = dir.join("phr.toml");
    std::fs::write(&path, text).expect("write the configuration");
    path.display().to_string()
}

fn header<'a>(response: &'a reqwest::blocking::Response, name: &str) -> Option<&'a str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
}

fn preflight(server: &Server, url: &str, origin: &str) -> reqwest::blocking::Response {
    server
        .client
        .request(reqwest::Method::OPTIONS, url)
        .header("Origin", origin)
        .header("Access-Control-Request-Method", "GET")
        .header("Access-Control-Request-Headers", "authorization, accept")
        .send()
        .expect("OPTIONS")
}

/// The value of the counter `name` in `/metrics`.
fn counter(server: &Server, name: &str) -> u64 {
    let text = server
        .client
        .get(format!("{}/metrics", server.root))
        .send()
        .expect("metrics")
        .text()
        .expect("metrics text");
    let series = format!("{name} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&series))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {series} in /metrics"))
}

/// The value of the refusal counter `reason` in `/metrics`.
fn refused(server: &Server, reason: &str) -> u64 {
    counter(
        server,
        &format!("phr_refused_requests_total{{reason=\"{reason}\"}}"),
    )
}

#[test]
fn browser_apps_on_registered_and_configured_origins_may_call_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(
        dir.path(),
        "[cors]\nextra_origins = [\"https://extra.example.fi\"]\n",
    );
    let server = Server::start_in(dir.path(), &["--config", &config]);
    server.register_app("cors-app", READ);
    let hetu = test_hetu("010170", 901);
    let (patient, token) = server.token(&hetu, "cors-app", READ);
    let observations = server.url("Observation");

    // Preflight from the origin of the app's redirect URI: answered, the origin echoed.
    let answer = preflight(&server, &observations, APP_ORIGIN);
    assert_eq!(answer.status(), 204);
    assert_eq!(
        header(&answer, "access-control-allow-origin"),
        Some(APP_ORIGIN)
    );
    let allowed_headers = header(&answer, "access-control-allow-headers")
        .unwrap_or_default()
        .to_ascii_lowercase();
    assert!(
        allowed_headers.contains("authorization"),
        "{allowed_headers}"
    );
    assert!(
        header(&answer, "access-control-allow-methods")
            .unwrap_or_default()
            .contains("GET")
    );
    assert!(
        header(&answer, "vary")
            .unwrap_or_default()
            .contains("Origin")
    );
    assert_eq!(header(&answer, "access-control-allow-credentials"), None);

    // The actual request from it: served, readable by the page.
    let answer = server
        .client
        .get(format!("{observations}?patient={patient}"))
        .bearer_auth(&token)
        .header("Origin", APP_ORIGIN)
        .send()
        .unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(
        header(&answer, "access-control-allow-origin"),
        Some(APP_ORIGIN)
    );
    assert!(
        header(&answer, "access-control-expose-headers")
            .unwrap_or_default()
            .contains("Location")
    );
    assert_eq!(header(&answer, "access-control-allow-credentials"), None);

    // A configured extra origin; the token endpoint too.
    assert_eq!(
        preflight(&server, &observations, "https://extra.example.fi").status(),
        204
    );
    let token_endpoint = format!("{}/oauth/token", server.root);
    let answer = preflight(&server, &token_endpoint, APP_ORIGIN);
    assert_eq!(answer.status(), 204);
    assert_eq!(
        header(&answer, "access-control-allow-origin"),
        Some(APP_ORIGIN)
    );

    // Another origin: the preflight is refused with an OperationOutcome, no CORS headers.
    for origin in ["https://evil.example.com", "null", "http://127.0.0.1:10"] {
        let answer = preflight(&server, &observations, origin);
        assert_eq!(answer.status(), 403, "{origin}");
        assert_eq!(header(&answer, "access-control-allow-origin"), None);
        let outcome = body(answer);
        assert_eq!(outcome["resourceType"], "OperationOutcome");
    }
    assert_eq!(
        preflight(&server, &token_endpoint, "https://evil.example.com").status(),
        403
    );
    // Its actual request is answered without CORS headers: the browser keeps it from the page.
    let answer = server
        .client
        .get(format!("{observations}?patient={patient}"))
        .bearer_auth(&token)
        .header("Origin", "https://evil.example.com")
        .send()
        .unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(header(&answer, "access-control-allow-origin"), None);

    // The public discovery documents answer any origin, without credentials.
    for path in [
        format!("{}/metadata", server.base),
        format!("{}/.well-known/smart-configuration", server.base),
    ] {
        let answer = server
            .client
            .get(&path)
            .header("Origin", "https://evil.example.com")
            .send()
            .unwrap();
        assert_eq!(answer.status(), 200, "{path}");
        assert_eq!(header(&answer, "access-control-allow-origin"), Some("*"));
        assert_eq!(header(&answer, "access-control-allow-credentials"), None);
    }

    // An application registered while the server runs is allowed at once.
    let late = "https://late.example.fi";
    assert_eq!(preflight(&server, &observations, late).status(), 403);
    server.admin(&[
        "app",
        "register",
        "--id",
        "late-app",
        "--name",
        "Late app",
        "--scope",
        READ,
        "--redirect-uri",
        "https://late.example.fi/callback",
    ]);
    let answer = preflight(&server, &observations, late);
    assert_eq!(answer.status(), 204);
    assert_eq!(header(&answer, "access-control-allow-origin"), Some(late));

    // Browser pages are not cross-origin resources.
    let answer = server
        .client
        .get(format!("{}/portal", server.root))
        .header("Origin", APP_ORIGIN)
        .send()
        .unwrap();
    assert_eq!(header(&answer, "access-control-allow-origin"), None);
    assert!(refused(&server, "cors_origin") >= 4);
}

#[test]
fn a_client_over_its_budget_waits_and_others_are_not_held_up() {
    let dir = tempfile::tempdir().unwrap();
    // Two requests per citizen at once, one more each second; four per application at once,
    // and in practice no refill within the test.
    let config = config_file(
        dir.path(),
        "[limits.citizen]\nburst = 2\nper_hour = 3600\n\n[limits.app]\nburst = 4\nper_hour = 1\n",
    );
    let server = Server::start_in(dir.path(), &["--config", &config]);
    server.register_app("busy-app", READ);
    server.register_app("calm-app", READ);
    let anna = test_hetu("010170", 902);
    let bert = test_hetu("020270", 903);
    let (anna_id, busy_anna) = server.token(&anna, "busy-app", READ);
    let (bert_id, busy_bert) = server.token(&bert, "busy-app", READ);
    let (_, calm_anna) = server.token(&anna, "calm-app", READ);
    let read = |token: &str, patient: &str| server.get_as(token, &format!("Patient/{patient}"));

    assert_eq!(read(&busy_anna, &anna_id).status(), 200);
    assert_eq!(read(&busy_anna, &anna_id).status(), 200);
    let refused_answer = read(&busy_anna, &anna_id);
    assert_eq!(refused_answer.status(), 429);
    let retry: u64 = header(&refused_answer, "retry-after")
        .expect("Retry-After")
        .parse()
        .expect("Retry-After in seconds");
    assert!((1..=2).contains(&retry), "{retry}");
    let outcome = body(refused_answer);
    assert_eq!(outcome["resourceType"], "OperationOutcome");
    assert_eq!(outcome["issue"][0]["code"], "throttled");

    // Another application for the same citizen is not held up.
    assert_eq!(read(&calm_anna, &anna_id).status(), 200);

    // After the wait it says, the client gets through.
    std::thread::sleep(Duration::from_secs(retry));
    assert_eq!(read(&busy_anna, &anna_id).status(), 200);

    // The application's own budget (4) is spent across its citizens: 3 above, then Bert.
    assert_eq!(read(&busy_bert, &bert_id).status(), 200);
    let refused_answer = read(&busy_bert, &bert_id);
    assert_eq!(refused_answer.status(), 429);
    let retry: u64 = header(&refused_answer, "retry-after")
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry > 60, "{retry}");
    // ... and still not the other application's.
    assert_eq!(read(&calm_anna, &anna_id).status(), 200);

    assert_eq!(refused(&server, "citizen_budget"), 1);
    assert_eq!(refused(&server, "app_budget"), 1);
}

/// A raw connection that sends the head of a request (`POST Patient`, say) announcing
/// `length` bytes of body and only `sent` of them.
fn trickle(server: &Server, request: &str, length: usize, sent: &[u8]) -> TcpStream {
    let address = server.root.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    let (method, path) = request.split_once(' ').expect("METHOD path");
    let head = format!(
        "{method} /fhir/r4/{path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/fhir+json\r\n\
         Content-Length: {length}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).expect("send the head");
    stream.write_all(sent).expect("send part of the body");
    stream.flush().unwrap();
    stream
}

/// True when the server has answered on (or closed) a raw connection.
fn answered(stream: &TcpStream) -> bool {
    stream.set_nonblocking(true).unwrap();
    let peeked = stream.peek(&mut [0u8; 1]);
    stream.set_nonblocking(false).unwrap();
    !matches!(peeked, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
}

/// The status and body of the answer on a raw connection (read until the server closes it or
/// the body announced by Content-Length is in).
fn answer(stream: &mut TcpStream) -> (u16, String) {
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => {
                received.extend_from_slice(buffer.get(..n).unwrap());
                let text = String::from_utf8_lossy(&received);
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let length = head.lines().find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .and_then(|v| v.trim().parse::<usize>().ok())
                    });
                    if length.is_some_and(|n| body.len() >= n) {
                        break;
                    }
                }
            }
            Err(e) => panic!("reading the answer: {e}"),
        }
    }
    let text = String::from_utf8_lossy(&received).to_string();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

#[test]
fn a_slow_body_is_cut_off_and_the_server_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(
        dir.path(),
        "[limits]\nmax_in_flight = 1\nbody_timeout_seconds = 10\n",
    );
    let server = Server::start_in(dir.path(), &["--open-sandbox", "--config", &config]);
    let start_slow = || trickle(&server, "POST Patient", 1000, b"{\"resourceType\":");
    let mut slow = start_slow();

    // While it holds the only slot, other requests are refused at once with 503 (not
    // queued); the probes still answer.
    let deadline = Instant::now() + Duration::from_secs(60);
    let refused_answer = loop {
        assert!(Instant::now() < deadline, "never refused");
        let answer = server.get("metadata");
        if answer.status() == 503 {
            break answer;
        }
        assert_eq!(answer.status(), 200);
        // On a busy machine the probe can reach the server first and take the slot: then
        // the slow request itself was refused, and is sent again.
        if answered(&slow) {
            slow = start_slow();
        }
    };
    assert!(header(&refused_answer, "retry-after").is_some());
    assert_eq!(body(refused_answer)["resourceType"], "OperationOutcome");
    let health = server
        .client
        .get(format!("{}/health", server.root))
        .send()
        .unwrap();
    assert_eq!(health.status(), 200);

    // The slow client is cut off with 408 and an OperationOutcome.
    let (status, text) = answer(&mut slow);
    assert_eq!(status, 408, "{text}");
    assert!(text.contains("OperationOutcome"), "{text}");

    // The server goes on serving.
    let created = server.post("Patient", &kanta_patient(&uuid()));
    assert!(created.status().is_success(), "{}", created.status());
    assert!(refused(&server, "slow_body") >= 1);
    assert!(refused(&server, "in_flight") >= 1);
}

/// A Patient as JSON padded with trailing spaces (valid JSON) to exactly `length` bytes.
fn padded_patient(length: usize) -> Vec<u8> {
    let mut bytes = serde_json::to_vec(&kanta_patient(&uuid())).unwrap();
    assert!(bytes.len() < length);
    bytes.resize(length, b' ');
    bytes
}

#[test]
fn large_bodies_beyond_the_body_budget_wait_their_turn_and_are_then_served() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(
        dir.path(),
        "[limits]\nbody_budget_mib = 1\nbody_timeout_seconds = 0\n",
    );
    let server = Server::start_in(dir.path(), &["--open-sandbox", "--config", &config]);
    // The first body (700,000 bytes of a 1 MiB budget) arrives slowly and holds its share.
    let first = padded_patient(700_000);
    let (head, rest) = first.split_at(100);
    let mut slow = trickle(&server, "POST Patient", first.len(), head);
    // Its share is taken when its head arrives, before the body is read.
    let deadline = Instant::now() + Duration::from_secs(60);
    while counter(&server, "phr_body_budget_in_use_bytes") < 700_000 {
        assert!(
            Instant::now() < deadline,
            "the first body never took its share"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // A small body fits beside it and is served at once.
    let created = server.post("Patient", &kanta_patient(&uuid()));
    assert_eq!(created.status(), 201);
    assert_eq!(counter(&server, "phr_body_budget_waits_total"), 0);

    // A second large body does not fit beside it: it waits, and is counted as waiting.
    let second = padded_patient(400_000);
    let address = server.root.trim_start_matches("http://").to_string();
    let waiting = std::thread::spawn(move || {
        let mut stream = TcpStream::connect(&address).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(120)))
            .unwrap();
        let head = format!(
            "POST /fhir/r4/Patient HTTP/1.1\r\nHost: {address}\r\nContent-Type: \
             application/fhir+json\r\nContent-Length: {}\r\n\r\n",
            second.len()
        );
        stream.write_all(head.as_bytes()).expect("send the head");
        stream.write_all(&second).expect("send the body");
        answer(&mut stream)
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    while counter(&server, "phr_body_budget_waits_total") == 0 {
        assert!(Instant::now() < deadline, "the second body never waited");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Requests without a body are not held up.
    assert_eq!(server.get("metadata").status(), 200);
    assert!(!waiting.is_finished());

    // Once the first body is in and answered, the second is admitted and served.
    slow.write_all(rest).expect("send the rest of the body");
    let (status, text) = answer(&mut slow);
    assert_eq!(status, 201, "{text}");
    let (status, text) = waiting.join().expect("the waiting client");
    assert_eq!(status, 201, "{text}");
    assert_eq!(counter(&server, "phr_body_budget_waits_total"), 1);
    assert_eq!(counter(&server, "phr_body_budget_in_use_bytes"), 0);
}

#[test]
fn a_request_held_past_the_timeout_gets_503() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(
        dir.path(),
        "[limits]\nrequest_timeout_seconds = 2\nbody_timeout_seconds = 0\n",
    );
    let server = Server::start_in(dir.path(), &["--open-sandbox", "--config", &config]);
    let mut held = trickle(&server, "POST Patient", 1000, b"{");
    let (status, text) = answer(&mut held);
    assert_eq!(status, 503, "{text}");
    assert!(text.contains("OperationOutcome"), "{text}");
    assert!(server.get("metadata").status().is_success());
    assert_eq!(refused(&server, "timeout"), 1);
    // Memory is reported as anonymous and mapped, separately.
    let metrics = server
        .client
        .get(format!("{}/metrics", server.root))
        .send()
        .unwrap()
        .text()
        .unwrap();
    for kind in ["anonymous", "mapped"] {
        let series = format!("phr_process_memory_bytes{{kind=\"{kind}\"}} ");
        let bytes: u64 = metrics
            .lines()
            .find_map(|l| l.strip_prefix(&series))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {series} in /metrics"));
        assert!(bytes > 0, "{kind}");
    }
}

/// Whether process `pid` has exited (it is gone or a zombie waiting to be reaped).
fn exited(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => true,
    }
}

fn sigterm(server: &Server) {
    unsafe {
        libc::kill(server.pid() as i32, libc::SIGTERM);
    }
}

#[test]
fn sigterm_drains_first_and_finishes_requests_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(
        dir.path(),
        "[limits]\ndrain_seconds = 3\ngrace_seconds = 60\n",
    );
    let server = Server::start_in(dir.path(), &["--open-sandbox", "--config", &config]);
    let id = uuid();
    let patient = serde_json::to_vec(&kanta_patient(&id)).unwrap();
    let (first, rest) = patient.split_at(10);
    let mut in_flight = trickle(&server, &format!("PUT Patient/{id}"), patient.len(), first);
    // The request is in: the server has the head (a second request on a fresh connection
    // is answered, so the first one's connection was accepted before it).
    assert!(server.get("metadata").status().is_success());

    sigterm(&server);
    // /ready turns 503 while the server still answers.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(Instant::now() < deadline, "/ready never turned 503");
        let ready = server
            .client
            .get(format!("{}/ready", server.root))
            .send()
            .expect("the server still answers while draining");
        if ready.status() == 503 {
            break;
        }
        assert_eq!(ready.status(), 200);
    }

    // The request in flight finishes.
    in_flight.write_all(rest).unwrap();
    let (status, text) = answer(&mut in_flight);
    assert!(status == 201 || status == 200, "{text}");
    drop(in_flight);

    let deadline = Instant::now() + Duration::from_secs(120);
    while !exited(server.pid()) {
        assert!(Instant::now() < deadline, "the server did not exit");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(server.terminate().success());
    // What it acknowledged is there after a restart.
    let again = Server::start_in(dir.path(), &["--open-sandbox"]);
    assert_eq!(again.get(&format!("Patient/{id}")).status(), 200);
}

#[test]
fn the_grace_period_ends_requests_that_do_not_finish() {
    let dir = tempfile::tempdir().unwrap();
    // No timeouts: only the grace period can end the stuck request.
    let config = config_file(
        dir.path(),
        "[limits]\ngrace_seconds = 1\nrequest_timeout_seconds = 0\nbody_timeout_seconds = 0\n",
    );
    let server = Server::start_in(dir.path(), &["--open-sandbox", "--config", &config]);
    let _stuck = trickle(&server, "POST Patient", 1000, b"{");
    assert!(server.get("metadata").status().is_success());
    sigterm(&server);
    let deadline = Instant::now() + Duration::from_secs(120);
    while !exited(server.pid()) {
        assert!(Instant::now() < deadline, "the server did not exit");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(server.terminate().success());
}
