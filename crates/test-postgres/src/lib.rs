//! Real PostgreSQL for tests: a fresh database per test, on the cluster `scripts/test`
//! started (`PHR_TEST_POSTGRES_URL`) or on a private cluster this process starts and that
//! stops with it.
//!
//! Owns starting, crashing, restarting and removing throw-away clusters through
//! `scripts/pg-cluster`. It must never skip a test because PostgreSQL is missing or broken:
//! every failure panics with the reason (this crate is only used by tests).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The variable `scripts/test` sets to the URL of the cluster it started for the whole run.
pub const URL_VAR: &str = "PHR_TEST_POSTGRES_URL";

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/pg-cluster")
}

/// The URL of a new, empty database for one test. `hint` becomes part of its name.
pub fn database(hint: &str) -> String {
    create_database(server_url(), hint)
}

/// The maintenance URL of the cluster tests share in this process.
pub fn server_url() -> &'static str {
    static SHARED: OnceLock<String> = OnceLock::new();
    static CLUSTER: OnceLock<Cluster> = OnceLock::new();
    SHARED.get_or_init(|| match std::env::var(URL_VAR) {
        Ok(url) if !url.is_empty() => url,
        // Never dropped: the server stops, and its folder is removed, when the process exits.
        _ => CLUSTER.get_or_init(Cluster::start).url(),
    })
}

/// Creates a database named after `hint`, this process and a counter on the server at
/// `server` (a URL whose database is a maintenance database), and returns its URL.
pub fn create_database(server: &str, hint: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let clean: String = hint
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .take(30)
        .collect::<String>()
        .to_ascii_lowercase();
    let name = format!(
        "t{}_{}_{clean}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    let mut client = postgres::Client::connect(server, postgres::NoTls)
        .unwrap_or_else(|e| panic!("cannot connect to the test PostgreSQL at {server}: {e}"));
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .unwrap_or_else(|e| panic!("cannot create the test database {name}: {e}"));
    with_database(server, &name)
}

/// `url` with its database replaced by `name`.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority_end = base
        .find("://")
        .map(|i| i + 3)
        .and_then(|start| base[start..].find('/').map(|j| start + j))
        .unwrap_or(base.len());
    let mut out = format!("{}/{name}", &base[..authority_end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// A private cluster in a temporary folder on a free port, run by `scripts/pg-cluster run`.
/// Dropping it stops the server and removes the folder; so does the end of the process.
pub struct Cluster {
    dir: PathBuf,
    port: u16,
    child: Mutex<Option<Child>>,
}

impl Cluster {
    /// Creates and starts a cluster; returns once it accepts connections.
    pub fn start() -> Cluster {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "phr-pg-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        let cluster = Cluster {
            dir,
            port: free_port(),
            child: Mutex::new(None),
        };
        cluster.run();
        cluster
    }

    /// The URL of the cluster's `postgres` database.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// A new, empty database on this cluster.
    pub fn database(&self, hint: &str) -> String {
        create_database(&self.url(), hint)
    }

    /// `pg_ctl stop -m immediate`: the server processes quit at once, as in a crash; the
    /// data stays for [`Cluster::restart`]. Returns when the server is gone.
    pub fn crash(&self) {
        let status = Command::new(script())
            .args(["kill", &self.dir.to_string_lossy()])
            .status()
            .unwrap_or_else(|e| panic!("cannot run pg-cluster kill: {e}"));
        assert!(status.success(), "pg_ctl stop -m immediate failed");
        if let Some(mut child) = self.child.lock().map(|mut c| c.take()).unwrap_or(None) {
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same data and port (after [`Cluster::crash`]).
    pub fn restart(&self) {
        self.run();
    }

    fn run(&self) {
        let mut command = Command::new(script());
        command
            .args(["run", &self.dir.to_string_lossy(), &self.port.to_string()])
            .env("PHR_PG_TEMPLATE", template_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = spawn_from_keeper(command);
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if postgres::Client::connect(&self.url(), postgres::NoTls).is_ok() {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                let mut err = String::new();
                if let Some(mut stderr) = child.stderr.take() {
                    let _ = stderr.read_to_string(&mut err);
                }
                panic!("the test PostgreSQL exited ({status}) before accepting connections: {err}");
            }
            assert!(
                Instant::now() < deadline,
                "the test PostgreSQL did not accept connections within 2 minutes"
            );
            // Waiting for another process to open its port: there is nothing to block on.
            std::thread::sleep(Duration::from_millis(50));
        }
        // The server's own messages are not needed once it runs; keep the pipe drained.
        if let Some(mut stderr) = child.stderr.take() {
            std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
        }
        if let Ok(mut slot) = self.child.lock() {
            *slot = Some(child);
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.lock().map(|mut c| c.take()).unwrap_or(None) {
            // SIGTERM to the runner: it stops the server and removes the folder.
            // SAFETY: kill(2) on the pid of a child we own and have not reaped yet.
            unsafe {
                libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
            }
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Where the cluster copied by every private cluster is made once.
fn template_dir() -> PathBuf {
    std::env::temp_dir().join("phr-pg-template")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free local port: {e}"))
}

type SpawnRequest = (Command, mpsc::Sender<std::io::Result<Child>>);

/// Spawns `command` from a thread that lives as long as the process: the runner asks the
/// kernel for a signal when its parent *thread* ends, so spawning from a short-lived test
/// thread would stop the server as soon as that thread finished.
fn spawn_from_keeper(command: Command) -> Child {
    static KEEPER: OnceLock<Mutex<mpsc::Sender<SpawnRequest>>> = OnceLock::new();
    let keeper = KEEPER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        std::thread::Builder::new()
            .name("phr-test-postgres".into())
            .spawn(move || {
                for (mut command, reply) in rx {
                    let _ = reply.send(command.spawn());
                }
                // Keep the thread alive for the children's sake once the channel closes.
                loop {
                    std::thread::park();
                }
            })
            .unwrap_or_else(|e| panic!("cannot start the keeper thread: {e}"));
        Mutex::new(tx)
    });
    let (reply, answer) = mpsc::channel();
    keeper
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .send((command, reply))
        .unwrap_or_else(|e| panic!("the keeper thread is gone: {e}"));
    answer
        .recv()
        .unwrap_or_else(|e| panic!("the keeper thread is gone: {e}"))
        .unwrap_or_else(|e| panic!("cannot run scripts/pg-cluster: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_database_replaces_only_the_database() {
        assert_eq!(
            with_database("postgres://u@h:5432/postgres", "t1"),
            "postgres://u@h:5432/t1"
        );
        assert_eq!(
            with_database("postgres://u@h:5432/postgres?sslmode=disable", "t1"),
            "postgres://u@h:5432/t1?sslmode=disable"
        );
        assert_eq!(with_database("postgres://u@h", "t1"), "postgres://u@h/t1");
    }

    #[test]
    fn a_private_cluster_serves_crashes_and_restarts_on_its_data() {
        let cluster = Cluster::start();
        let url = cluster.database("restart");
        let mut client = postgres::Client::connect(&url, postgres::NoTls).expect("connects");
        client
            .batch_execute("CREATE TABLE t (x int); INSERT INTO t VALUES (7)")
            .expect("writes");
        cluster.crash();
        assert!(
            client.simple_query("SELECT 1").is_err(),
            "the server is gone"
        );
        cluster.restart();
        let mut client = postgres::Client::connect(&url, postgres::NoTls).expect("reconnects");
        let x: i32 = client
            .query_one("SELECT x FROM t", &[])
            .expect("reads")
            .get(0);
        assert_eq!(x, 7);
        let dir = cluster.dir.clone();
        drop(cluster);
        assert!(!dir.exists(), "the folder is removed");
    }
}
