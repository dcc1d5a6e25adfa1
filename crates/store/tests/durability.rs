//! Durability at the engine level: a writer process is SIGKILLed in the middle of a write
//! load; after reopening, every write it had acknowledged must be readable.
//!
//! The test binary re-invokes itself: `writer_process` (ignored in normal runs) is the child,
//! started with `PHR_DURABILITY_DIR` set; it prints `ack <id>` after each acknowledged write.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use phr_search::{IndexEntry, IndexValue};
use phr_store::sqlite::SqliteStore;
use phr_store::{Atomicity, NewVersion, Storage, WriteOp};

const DIR_VAR: &str = "PHR_DURABILITY_DIR";
/// How many acknowledged writes the kill waits for (4 writer threads of 10-write batches).
const ACKED_BEFORE_KILL: usize = 400;

fn observation(id: &str, patient: &str, at: i64) -> NewVersion {
    NewVersion {
        resource_type: "Observation".into(),
        id: id.into(),
        version: 1,
        last_updated: at,
        body: format!(r#"{{"resourceType":"Observation","id":"{id}"}}"#).into_bytes(),
        patient: Some(patient.into()),
        app: Some("app".into()),
        index: vec![
            IndexEntry {
                param: "code".into(),
                value: IndexValue::Token {
                    system: Some("http://loinc.org".into()),
                    code: Some("15074-8".into()),
                    text: None,
                },
            },
            IndexEntry {
                param: "date".into(),
                value: IndexValue::Date { low: at, high: at },
            },
        ],
    }
}

#[test]
#[ignore = "the child process of acknowledged_writes_survive_sigkill"]
fn writer_process() {
    let Some(dir) = std::env::var_os(DIR_VAR) else {
        return;
    };
    let store = Arc::new(SqliteStore::open(&PathBuf::from(dir).join("phr.db")).expect("opens"));
    let out = Arc::new(Mutex::new(std::io::stdout()));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let (store, out) = (store.clone(), out.clone());
            std::thread::spawn(move || {
                for batch in 0.. {
                    let ids: Vec<String> = (0..10).map(|i| format!("t{t}-b{batch}-{i}")).collect();
                    let ops = ids
                        .iter()
                        .map(|id| WriteOp::Create {
                            new: observation(id, &format!("p{t}"), batch),
                            if_none_exist: None,
                        })
                        .collect();
                    let results = store.write(ops, Atomicity::AllOrNothing).expect("writes");
                    assert!(results.iter().all(|r| r.is_ok()));
                    let mut out = out.lock().expect("stdout");
                    for id in &ids {
                        writeln!(out, "ack {id}").expect("prints");
                    }
                    out.flush().expect("flushes");
                }
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    let dir = std::env::temp_dir().join(format!("phr-store-durability-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "writer_process",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(DIR_VAR, &dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starts the writer process");
    let stdout = child.stdout.take().expect("piped");
    // The reader passes acknowledgements on as they come, so the kill can wait for a count
    // of them instead of a time.
    let (acks, acknowledged) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).split(b'\n') {
            let Ok(line) = line else { break };
            if let Some(id) = std::str::from_utf8(&line)
                .ok()
                .and_then(|l| l.strip_prefix("ack "))
                && acks.send(id.to_owned()).is_err()
            {
                break;
            }
        }
    });
    // Let it acknowledge a good number of batches, then kill it without warning while it
    // keeps writing.
    let mut acked: Vec<String> = acknowledged.iter().take(ACKED_BEFORE_KILL).collect();
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
    reader.join().expect("reader");
    acked.extend(acknowledged.try_iter());
    assert!(acked.len() >= ACKED_BEFORE_KILL);

    let store = SqliteStore::open(&dir.join("phr.db")).expect("reopens after the crash");
    let missing: Vec<&String> = acked
        .iter()
        .filter(|id| store.read("Observation", id).expect("reads").is_none())
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged writes lost: {:?}",
        missing.len(),
        acked.len(),
        &missing[..missing.len().min(5)]
    );
    eprintln!(
        "{} acknowledged writes, all readable after SIGKILL",
        acked.len()
    );
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}
