//! Durability at the engine level, for both engines: a writer process (a node) is SIGKILLed
//! in the middle of a write load; after reopening, every write it had acknowledged must be
//! readable.
//!
//! The test binary re-invokes itself: `writer_process` (ignored in normal runs) is the child,
//! started with `PHR_DURABILITY_DIR` (SQLite) or `PHR_DURABILITY_URL` (PostgreSQL) set; it
//! prints `ack <id>` after each acknowledged write.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};

use phr_search::{IndexEntry, IndexValue};
use phr_store::postgres::PostgresStore;
use phr_store::sqlite::SqliteStore;
use phr_store::{Atomicity, NewVersion, Storage, WriteOp};

const DIR_VAR: &str = "PHR_DURABILITY_DIR";
const URL_VAR: &str = "PHR_DURABILITY_URL";
/// Acknowledged writes to wait for before the kill.
const BEFORE_KILL: usize = 300;

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

enum Target {
    Sqlite(PathBuf),
    Postgres(String),
}

impl Target {
    fn open(&self) -> Arc<dyn Storage> {
        match self {
            Target::Sqlite(dir) => Arc::new(SqliteStore::open(&dir.join("phr.db")).expect("opens")),
            Target::Postgres(url) => Arc::new(PostgresStore::open(url).expect("opens")),
        }
    }
}

#[test]
#[ignore = "the child process of acknowledged_writes_survive_sigkill_*"]
fn writer_process() {
    let target = match (std::env::var_os(DIR_VAR), std::env::var(URL_VAR)) {
        (Some(dir), _) => Target::Sqlite(PathBuf::from(dir)),
        (None, Ok(url)) => Target::Postgres(url),
        _ => return,
    };
    let store = target.open();
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

/// Runs the writer child against `target`, SIGKILLs it once it acknowledged enough writes,
/// and checks every acknowledged write after reopening.
fn acknowledged_writes_survive_sigkill(target: Target) {
    let mut command = Command::new(std::env::current_exe().expect("test binary"));
    command.args([
        "--exact",
        "writer_process",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ]);
    match &target {
        Target::Sqlite(dir) => command.env(DIR_VAR, dir),
        Target::Postgres(url) => command.env(URL_VAR, url),
    };
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starts the writer process");
    let stdout = child.stdout.take().expect("piped");
    let (acks, acked) = mpsc::channel::<String>();
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
    // Kill it without warning in the middle of its load.
    let mut ids: Vec<String> = Vec::new();
    while ids.len() < BEFORE_KILL {
        match acked.recv() {
            Ok(id) => ids.push(id),
            Err(_) => panic!("the writer stopped after {} acknowledged writes", ids.len()),
        }
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
    reader.join().expect("reader");
    ids.extend(acked.try_iter());

    let store = target.open();
    let missing: Vec<&String> = ids
        .iter()
        .filter(|id| store.read("Observation", id).expect("reads").is_none())
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged writes lost: {:?}",
        missing.len(),
        ids.len(),
        &missing[..missing.len().min(5)]
    );
    eprintln!(
        "{} acknowledged writes, all readable after SIGKILL",
        ids.len()
    );
}

#[test]
fn acknowledged_writes_survive_sigkill_sqlite() {
    let dir = std::env::temp_dir().join(format!("phr-store-durability-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    acknowledged_writes_survive_sigkill(Target::Sqlite(dir.clone()));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn acknowledged_writes_survive_sigkill_of_a_postgres_node() {
    acknowledged_writes_survive_sigkill(Target::Postgres(phr_test_postgres::database(
        "durability",
    )));
}
