//! Durability: every write the server acknowledged survives SIGKILL of the server process.

mod common;

use std::sync::mpsc;

use common::*;

/// How many acknowledged writes the kill waits for: enough that commits are in flight when
/// it lands (8 writers keep several group commits going), few enough to stay quick.
const ACKNOWLEDGED_BEFORE_KILL: usize = 200;

#[test]
fn acknowledged_writes_survive_sigkill() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start_in(data.path(), &["--open-sandbox"]);
    let patient = create_patient(&server, &uuid());
    let base = server.base.clone();
    let (acks, acknowledged) = mpsc::channel::<String>();
    let writers: Vec<_> = (0..8)
        .map(|_| {
            let acks = acks.clone();
            let base = base.clone();
            let patient = patient.clone();
            std::thread::spawn(move || {
                let client = reqwest::blocking::Client::new();
                // Keep writing until the server is gone: requests in flight when the kill
                // lands must simply fail.
                loop {
                    let response = client
                        .post(format!("{base}/Observation"))
                        .header("Content-Type", FHIR_JSON)
                        .header("Prefer", "return=minimal")
                        .body(serde_json::to_vec(&weight(&patient, 70.0)).unwrap())
                        .send();
                    match response {
                        Ok(r) if r.status() == 201 => {
                            let location = r.headers()["location"].to_str().unwrap().to_string();
                            if acks.send(location).is_err() {
                                break;
                            }
                        }
                        Ok(r) => panic!("unexpected status {}", r.status()),
                        Err(_) => break,
                    }
                }
            })
        })
        .collect();
    drop(acks);
    let mut locations: Vec<String> = acknowledged.iter().take(ACKNOWLEDGED_BEFORE_KILL).collect();
    server.kill();
    for writer in writers {
        writer.join().unwrap();
    }
    // Writes acknowledged between the count and the kill count too.
    locations.extend(acknowledged.try_iter());
    assert!(locations.len() >= ACKNOWLEDGED_BEFORE_KILL);

    let restarted = Server::start_in(data.path(), &["--open-sandbox"]);
    let mut missing = Vec::new();
    for location in &locations {
        let path = location.strip_prefix(&format!("{base}/")).unwrap();
        if restarted.get(path).status() != 200 {
            missing.push(path.to_string());
        }
    }
    eprintln!(
        "crash test: {} acknowledged writes, {} missing after SIGKILL",
        locations.len(),
        missing.len()
    );
    assert!(missing.is_empty(), "lost acknowledged writes: {missing:?}");
}
