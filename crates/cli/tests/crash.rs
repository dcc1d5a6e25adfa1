//! Durability: every write the server acknowledged survives SIGKILL of the server process.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;

#[test]
fn acknowledged_writes_survive_sigkill() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start_in(data.path(), &["--open-sandbox"]);
    let patient = create_patient(&server, &uuid());
    let acknowledged: Arc<Mutex<Vec<String>>> = Arc::default();
    let base = server.base.clone();
    let stop_at = Instant::now() + Duration::from_millis(1500);
    let writers: Vec<_> = (0..8)
        .map(|_| {
            let acknowledged = acknowledged.clone();
            let base = base.clone();
            let patient = patient.clone();
            std::thread::spawn(move || {
                let client = reqwest::blocking::Client::new();
                // Keep writing past the kill: requests in flight when it lands must simply fail.
                while Instant::now() < stop_at + Duration::from_millis(500) {
                    let response = client
                        .post(format!("{base}/Observation"))
                        .header("Content-Type", FHIR_JSON)
                        .header("Prefer", "return=minimal")
                        .body(serde_json::to_vec(&weight(&patient, 70.0)).unwrap())
                        .send();
                    match response {
                        Ok(r) if r.status() == 201 => {
                            let location = r.headers()["location"].to_str().unwrap().to_string();
                            acknowledged.lock().unwrap().push(location);
                        }
                        Ok(r) => panic!("unexpected status {}", r.status()),
                        Err(_) => break,
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(stop_at - Instant::now());
    server.kill();
    for writer in writers {
        writer.join().unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        acknowledged.len() > 20,
        "only {} writes were acknowledged before the kill",
        acknowledged.len()
    );

    let restarted = Server::start_in(data.path(), &["--open-sandbox"]);
    let mut missing = Vec::new();
    for location in &acknowledged {
        let path = location.strip_prefix(&format!("{base}/")).unwrap();
        let path = path.replace(&base, &restarted.base);
        if restarted.get(&path).status() != 200 {
            missing.push(path);
        }
    }
    eprintln!(
        "crash test: {} acknowledged writes, {} missing after SIGKILL",
        acknowledged.len(),
        missing.len()
    );
    assert!(missing.is_empty(), "lost acknowledged writes: {missing:?}");
}
